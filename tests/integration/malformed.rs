//! Thousands of generated malformed inputs per parser family — chip TOML, CSV, IDX, NIR and
//! command-line values — in process: none may panic or abort, and every error names its file
//! (or flag). (Damaged NIR files found a header that claimed an 11 TB dataset: the reader now
//! bounds every dataset by what the file could hold. For a longer run raise `cases` in
//! `nir_files`: 20,000 cases take about 10 s.)
//! The longer run over the whole binary, with memory caps and timeouts, is
//! `python3 tests/adversarial.py` (ARCHITECTURE.md §12).

use std::path::{Path, PathBuf};

use accord::chip;
use accord::data::{self, CsvOptions};
use proptest::prelude::*;

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("accord-malformed-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn shipped(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("hw_models/{name}.toml")),
    )
    .unwrap()
}

/// One edit of a text: replace a value, delete a line, duplicate a line, flip a byte, or cut.
#[derive(Clone, Debug)]
enum Edit {
    Value(usize, String),
    Delete(usize),
    Duplicate(usize),
    Flip(usize, u8),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let values = prop_oneof![
        Just("0".to_string()),
        Just("-1".to_string()),
        Just("1e308".to_string()),
        Just("-1e308".to_string()),
        Just("nan".to_string()),
        Just("inf".to_string()),
        Just("4294967296".to_string()),
        Just("18446744073709551616".to_string()),
        Just("\"text\"".to_string()),
        Just("[]".to_string()),
        Just("true".to_string()),
        Just("{ a = 1 }".to_string()),
        any::<i64>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| format!("{v:?}")),
    ];
    prop_oneof![
        (any::<usize>(), values).prop_map(|(l, v)| Edit::Value(l, v)),
        any::<usize>().prop_map(Edit::Delete),
        any::<usize>().prop_map(Edit::Duplicate),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> Vec<u8> {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut bytes: Option<Vec<u8>> = None;
    for e in edits {
        if lines.is_empty() {
            break;
        }
        let n = lines.len();
        match e {
            Edit::Value(l, v) => {
                let line = &mut lines[l % n];
                if let Some(eq) = line.find('=') {
                    line.truncate(eq + 1);
                    line.push(' ');
                    line.push_str(v);
                }
            }
            Edit::Delete(l) => {
                lines.remove(l % n);
            }
            Edit::Duplicate(l) => {
                let copy = lines[l % n].clone();
                lines.insert(l % n, copy);
            }
            Edit::Flip(i, b) => {
                let mut v = bytes
                    .take()
                    .unwrap_or_else(|| lines.join("\n").into_bytes());
                if !v.is_empty() {
                    let k = i % v.len();
                    v[k] = *b;
                }
                bytes = Some(v);
            }
            Edit::Truncate(i) => {
                let mut v = bytes
                    .take()
                    .unwrap_or_else(|| lines.join("\n").into_bytes());
                v.truncate(i % (v.len() + 1));
                bytes = Some(v);
            }
        }
    }
    bytes.unwrap_or_else(|| lines.join("\n").into_bytes())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    /// Mutated chip files: parsed or refused with the file (and the key, when one is at fault).
    #[test]
    fn chip_files(model in 0usize..4, edits in proptest::collection::vec(edit(), 1..4)) {
        let name = ["balance-core", "loihi", "reckon", "truenorth"][model];
        let bytes = apply(&shipped(name), &edits);
        let Ok(text) = String::from_utf8(bytes) else { return Ok(()); };
        if let Err(e) = chip::parse(&text, "mutant.toml") {
            let s = e.to_string();
            prop_assert!(s.starts_with("mutant.toml: "), "{}", s);
            if let Some(key) = &e.key {
                prop_assert!(s.contains(key.as_str()), "{}", s);
            }
        }
    }

    /// Mutated CSVs: read or refused naming the file and, for a cell, its line.
    #[test]
    fn csv_files(edits in proptest::collection::vec(edit(), 1..4), seed in 0u64..1000) {
        let mut text = String::new();
        for i in 0..12u64 {
            text.push_str(&format!("{},{}.5,{}\n", (i * 7 + seed) % 13, i, i % 3));
        }
        let bytes = apply(&text.replace(',', " = "), &edits);
        let bytes: Vec<u8> = String::from_utf8_lossy(&bytes).replace(" = ", ",").into_bytes();
        let dir = scratch("csv");
        let p = dir.join(format!("m{seed}.csv"));
        std::fs::write(&p, &bytes).unwrap();
        match data::read_csv(&p, &CsvOptions::default()) {
            Ok(ds) => {
                prop_assert_eq!(ds.features.len(), ds.len() * ds.dim);
                // The split checks refuse what a classifier cannot learn, never by panicking.
                if let Err(e) = data::load(p.to_str().unwrap(), &dir, seed) {
                    prop_assert!(e.to_string().contains(&format!("m{seed}")), "{}", e);
                }
            }
            Err(e) => prop_assert!(e.to_string().contains(&format!("m{seed}.csv")), "{}", e),
        }
    }

    /// Mutated IDX files (header fields, lengths, bytes): read or refused naming the file.
    #[test]
    fn idx_files(
        n in 0u32..6, rows in 0u32..5, cols in 0u32..5,
        field in 0usize..4, value in prop_oneof![Just(0u32), Just(u32::MAX), Just(1u32 << 31), any::<u32>()],
        cut in any::<usize>(), flip in any::<(usize, u8)>(), labels_n in 0u32..7,
    ) {
        let mut img = vec![0u8, 0, 8, 3];
        for v in [n, rows, cols] {
            img.extend(v.to_be_bytes());
        }
        img.extend((0..n * rows * cols).map(|i| i as u8));
        let at = 4 * field;
        img[at..at + 4].copy_from_slice(&value.to_be_bytes());
        match cut % 3 {
            0 => img.truncate(cut % (img.len() + 1)),
            1 => {
                let k = flip.0 % img.len();
                img[k] = flip.1;
            }
            _ => {}
        }
        let mut lab = vec![0u8, 0, 8, 1];
        lab.extend(labels_n.to_be_bytes());
        lab.extend((0..labels_n).map(|i| (i % 12) as u8));
        let dir = scratch("idx");
        let tag = format!("{n}-{rows}-{cols}-{field}-{value}-{cut}");
        let (pi, pl) = (dir.join(format!("i{tag}")), dir.join(format!("l{tag}")));
        std::fs::write(&pi, &img).unwrap();
        std::fs::write(&pl, &lab).unwrap();
        match data::read_mnist(&pi, &pl, "m") {
            Ok(ds) => prop_assert_eq!(ds.features.len(), ds.len() * ds.dim),
            Err(e) => {
                let s = e.to_string();
                prop_assert!(s.contains(&format!("i{tag}")) || s.contains(&format!("l{tag}")), "{}", s);
            }
        }
        let _ = std::fs::remove_file(&pi);
        let _ = std::fs::remove_file(&pl);
    }

    /// Bad values of the command line's numeric options: refused naming the option.
    #[test]
    fn cli_values(
        which in 0usize..12,
        value in prop_oneof![
            Just("-1".to_string()), Just("0".to_string()), Just("nan".to_string()),
            Just("inf".to_string()), Just("".to_string()), Just("1e308".to_string()),
            Just("4294967296".to_string()), Just("18446744073709551616".to_string()),
            Just("x".to_string()), Just("3,,4".to_string()), Just("-0".to_string()),
            any::<i64>().prop_map(|v| v.to_string()), any::<f64>().prop_map(|v| v.to_string()),
            "[ -~]{0,12}",
        ],
    ) {
        let (cmd, flag) = [
            ("train", "--lr"), ("train", "--epochs"), ("train", "--hidden"), ("train", "--ticks"),
            ("train", "--threads"), ("train", "--message-threshold"), ("train", "--batch"),
            ("train", "--weight-bits"), ("verify", "--nets"), ("all-to-all", "--n"),
            ("modules", "--rates"), ("train", "--max-memory"),
        ][which];
        let argv = ["accord", cmd, flag, value.as_str()];
        if let Err(e) = accord::cli::command().try_get_matches_from(argv) {
            let s = e.to_string();
            prop_assert!(
                s.contains(flag) || e.kind() == clap::error::ErrorKind::DisplayHelp,
                "{:?}: {}", argv, s
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

    /// Damaged NIR files (bytes flipped, cut, zeroed): read or refused naming the file.
    #[test]
    fn nir_files(
        which in 0usize..5,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        cut in proptest::option::of(any::<usize>()),
    ) {
        let name = ["lif_mlp.nir", "if_mlp.nir", "conv.nir", "pool.nir", "lif_net.nir"][which];
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nir").join(name);
        let mut bytes = std::fs::read(&src).unwrap();
        for (i, b) in &flips {
            let k = i % bytes.len();
            bytes[k] = *b;
        }
        if let Some(c) = cut {
            bytes.truncate(c % (bytes.len() + 1));
        }
        let dir = scratch("nir");
        let p = dir.join(format!("damaged-{which}-{}.nir", flips.len()));
        std::fs::write(&p, &bytes).unwrap();
        match accord::nir::read(&p) {
            Ok(g) => {
                if let Ok(c) = g.to_layered() {
                    let _ = c.discrete(&g, accord::nir::DEFAULT_DT);
                }
            }
            Err(e) => prop_assert!(e.to_string().contains("damaged-"), "{}", e),
        }
    }
}
