//! `cuba_lif_step` against Lava 0.10's `PyLifModelBitAcc`, step by step.
//!
//! The vectors in `lava_lif/vectors.txt` were produced by running Lava's own model code
//! (`lava_lif/generate.py`, which documents how to regenerate them). Each case gives the
//! parameters and the initial state; each step line gives the input and the state and spike
//! after the step. Every step must match exactly.

use accord_firmware::arith::Counters;
use accord_firmware::soma::{CUBA_U_MAX, CUBA_V_MAX, CubaLif, cuba_lif_step};

const VECTORS: &str = include_str!("lava_lif/vectors.txt");

struct Case {
    name: String,
    line: usize,
    p: CubaLif,
    u0: i64,
    v0: i64,
    /// (line, a_in, u, v, spike)
    steps: Vec<(usize, i64, i64, i64, bool)>,
}

fn ints(fields: &[&str], line: usize) -> Vec<i64> {
    fields
        .iter()
        .map(|f| {
            f.parse()
                .unwrap_or_else(|e| panic!("line {line}: bad integer {f:?}: {e}"))
        })
        .collect()
}

fn parse(text: &str) -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = l.split_whitespace().collect();
        if f[0] == "case" {
            assert_eq!(f.len(), 9, "line {line}: case line needs 8 fields");
            let x = ints(&f[2..], line);
            cases.push(Case {
                name: f[1].to_string(),
                line,
                p: CubaLif {
                    du: x[0],
                    dv: x[1],
                    vth: x[2],
                    bias_mant: x[3],
                    bias_exp: x[4],
                },
                u0: x[5],
                v0: x[6],
                steps: Vec::new(),
            });
        } else {
            assert_eq!(f.len(), 4, "line {line}: step line needs 4 fields");
            let x = ints(&f, line);
            assert!(x[3] == 0 || x[3] == 1, "line {line}: spike must be 0 or 1");
            let case = cases
                .last_mut()
                .unwrap_or_else(|| panic!("line {line}: step before any case"));
            case.steps.push((line, x[0], x[1], x[2], x[3] == 1));
        }
    }
    cases
}

#[test]
fn cuba_lif_matches_lava_bit_accurate_model() {
    let cases = parse(VECTORS);
    let mut c = Counters::default();
    let (mut compared, mut differing, mut spikes) = (0usize, 0usize, 0usize);
    let mut first: Option<String> = None;
    for case in &cases {
        assert!(!case.steps.is_empty(), "case {} has no steps", case.name);
        let (mut u, mut v) = (case.u0, case.v0);
        for (k, &(line, a, u_want, v_want, s_want)) in case.steps.iter().enumerate() {
            let s = cuba_lif_step(&mut u, &mut v, a, &case.p, &mut c);
            compared += 1;
            spikes += s as usize;
            if (u, v, s) != (u_want, v_want, s_want) {
                differing += 1;
                first.get_or_insert_with(|| {
                    format!(
                        "case {} (line {}, {:?}), step {k} (line {line}), a_in {a}: \
                         got (u, v, spike) = ({u}, {v}, {s}), Lava ({u_want}, {v_want}, {s_want})",
                        case.name, case.line, case.p
                    )
                });
                // Continue from Lava's state so one difference is not counted at every later step.
                (u, v) = (u_want, v_want);
            }
        }
    }
    println!(
        "lava_lif: compared {} cases, {compared} steps ({spikes} spikes, {} wraps of u, {} clips of v): \
         {differing} differing steps",
        cases.len(),
        c.wraps,
        c.saturations
    );
    assert_eq!(differing, 0, "first difference: {}", first.unwrap());
    // The vectors are meant to exercise every rule: keep them from silently losing coverage.
    assert!(cases.len() >= 100 && compared >= 1000, "too few vectors");
    assert!(spikes > 0 && c.wraps > 0 && c.saturations > 0);
    assert_eq!(c.invalid, 0, "Lava's du, dv are all in 0..=4095");
    let all = cases.iter().flat_map(|k| &k.steps);
    assert!(all.clone().any(|s| s.2 == CUBA_U_MAX), "u = +2^23 exactly");
    assert!(all.clone().any(|s| s.3 == CUBA_V_MAX) && all.clone().any(|s| s.3 == -CUBA_V_MAX));
}
