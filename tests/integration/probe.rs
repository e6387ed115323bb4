//! `accord probe`: the gradient cosine is exactly 1 when the assumptions hold, each broken
//! assumption shows up as measured, and the command line reports it as tables and JSON.

use crate::support::accord;
use accord::data::Dataset;
use accord::experiments::modularity::experiment::Recipe;
use accord::experiments::probe::{
    Plan, a2a_cosine, ap_gradient, clamp, layered_as_general, layered_cosine,
};
use accord::rule::{
    Activation, Balance, CreditOptions, GeneralNet, LayeredNet, Loss, RelaxOptions, Settle, Steps,
};

/// A small random dataset with `dim` features in [0, 1] and `classes` classes.
fn random_data(dim: usize, classes: usize, rows: usize, seed: u64) -> Dataset {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 11) as f64 / (1u64 << 53) as f64
    };
    let f: Vec<f64> = (0..rows * dim).map(|_| next()).collect();
    let l: Vec<usize> = (0..rows).map(|k| k % classes).collect();
    Dataset::new("random", f, l, dim, classes).unwrap()
}

/// `g = f'` and `m − 1` retrograde steps (or settled): cosine 1 to 1e-12 against the
/// independent backprop oracle, for every activation and several depths.
#[test]
fn layered_cosine_is_one_with_exact_balance_and_m_minus_1_steps() {
    let data = random_data(6, 3, 8, 1);
    for (d, act) in Activation::ALL.into_iter().enumerate() {
        for hidden in [vec![5], vec![7, 4], vec![6, 5, 4]] {
            let mut sizes = vec![6];
            sizes.extend(&hidden);
            sizes.push(3);
            let mut acts = vec![act; hidden.len()];
            acts.push(Activation::Identity);
            let mut net = LayeredNet::glorot(&sizes, &acts, 10 + d as u64);
            for l in &mut net.layers {
                l.b.iter_mut()
                    .enumerate()
                    .for_each(|(i, b)| *b = 0.1 * i as f64 - 0.2);
            }
            let m = net.depth();
            for plan in [Plan::Settled, Plan::Truncate(m - 1)] {
                let c = layered_cosine(&net, &data, 8, 0.1, plan);
                assert!(
                    (c.all - 1.0).abs() < 1e-12,
                    "{act} {hidden:?} {plan:?}: {}",
                    c.all
                );
                assert!(
                    (c.hidden - 1.0).abs() < 1e-12,
                    "{act} {hidden:?} {plan:?}: {}",
                    c.hidden
                );
            }
            // Before m − 1 steps the first layer has no credit: its cosine share is gone.
            let c = layered_cosine(&net, &data, 8, 0.1, Plan::Truncate(0));
            assert_eq!(c.hidden, 0.0, "{act} {hidden:?}");
            assert!(c.all < 1.0 - 1e-9);
        }
    }
}

fn a2a_recipe(n: usize) -> Recipe {
    Recipe {
        n,
        fire_tol: 1e-14,
        fire_max_iter: 10_000,
        credit_tol: 1e-15,
        credit_max_steps: 10_000,
        ..Recipe::default()
    }
}

/// All-to-all: the rule's settled credit against the Almeida–Pineda gradient solved directly:
/// cosine 1 to 1e-12 for g = f'; below 1 for a constant g.
#[test]
fn all_to_all_cosine_is_one_with_exact_balance_at_equilibrium() {
    let data = random_data(4, 3, 6, 2);
    for (seed, act) in [(1u64, Activation::Sigmoid), (2, Activation::Tanh)] {
        let recipe = a2a_recipe(14);
        let mut net = GeneralNet::all_to_all(14, 4, 3, act, act, 1.5, seed);
        net.b
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = 0.03 * i as f64 - 0.2);
        let c = a2a_cosine(&net, &data, 6, &recipe, 0.2, Plan::Settled);
        assert!((c.all - 1.0).abs() < 1e-12, "{act}: {}", c.all);
        assert!((c.hidden - 1.0).abs() < 1e-12, "{act}: {}", c.hidden);
        net.balance = Balance::custom("constant", move |_| act.df(0.0));
        let c = a2a_cosine(&net, &data, 6, &recipe, 0.2, Plan::Settled);
        assert!(
            c.hidden < 1.0 - 1e-6,
            "{act}: a constant g should not be exact: {}",
            c.hidden
        );
    }
}

/// The direct Almeida–Pineda solve agrees with finite differences of the loss through the
/// whole firing relaxation.
#[test]
// Indices name synapses and neurons of the perturbed copies as well as of the gradient.
#[allow(clippy::needless_range_loop)]
fn ap_gradient_matches_finite_differences() {
    let recipe = a2a_recipe(8);
    let net = GeneralNet::all_to_all(8, 2, 2, Activation::Tanh, Activation::Tanh, 1.3, 4);
    let (x, label) = ([0.6, -0.3], 1);
    let loss_at = |n: &GeneralNet| {
        let mut s = n.new_state();
        assert_eq!(
            n.fire(&x, &mut s, &recipe.relax_options()).settle,
            Settle::Converged
        );
        Loss::Mse.value(n.output(&s), label)
    };
    let mut s = net.new_state();
    net.fire(&x, &mut s, &recipe.relax_options());
    let (gw, gb) = ap_gradient(&net, &s, label, Loss::Mse).expect("non-singular");
    let h = 1e-6;
    let mut checked = 0;
    for k in 0..net.n * net.n {
        if !net.mask[k] {
            assert_eq!(gw[k], 0.0);
            continue;
        }
        let (mut p, mut m) = (net.clone(), net.clone());
        p.w[k] += h;
        m.w[k] -= h;
        let fd = (loss_at(&p) - loss_at(&m)) / (2.0 * h);
        assert!(
            (gw[k] + fd).abs() < 1e-7 * (1.0 + fd.abs()),
            "w[{k}]: {} vs {}",
            gw[k],
            -fd
        );
        checked += 1;
    }
    for i in net.n_in..net.n {
        let (mut p, mut m) = (net.clone(), net.clone());
        p.b[i] += h;
        m.b[i] -= h;
        let fd = (loss_at(&p) - loss_at(&m)) / (2.0 * h);
        assert!((gb[i] + fd).abs() < 1e-7 * (1.0 + fd.abs()), "b[{i}]");
    }
    assert_eq!(checked, 6 * 7);
}

/// A layered net seen as a general net fires and credits the same way.
#[test]
fn layered_as_general_is_the_same_network() {
    let net = LayeredNet::glorot(
        &[5, 6, 4, 3],
        &[Activation::Tanh, Activation::Tanh, Activation::Identity],
        3,
    );
    let g = layered_as_general(&net).unwrap();
    let x = [0.1, 0.5, 0.9, 0.2, 0.0];
    let mut ls = net.new_state();
    net.fire(&x, &mut ls);
    net.credit(&mut ls, 2, Loss::CrossEntropy, Steps::UntilSettled, true);
    let mut gs = g.new_state();
    let f = g.fire(
        &x,
        &mut gs,
        &RelaxOptions {
            tol: 1e-15,
            ..RelaxOptions::default()
        },
    );
    assert_eq!(f.settle, Settle::Converged);
    for (a, b) in g.output(&gs).iter().zip(net.output(&ls)) {
        assert!((a - b).abs() < 1e-14);
    }
    let c = g.credit(
        &mut gs,
        2,
        Loss::CrossEntropy,
        &CreditOptions {
            tol: 1e-15,
            ..CreditOptions::default()
        },
    );
    assert_eq!(c.settle, Settle::Converged);
    // Hidden layer 1 occupies neurons 5..11.
    for (a, b) in gs.c[5..11].iter().zip(&ls.c[1]) {
        assert!((a - b).abs() < 1e-14, "{a} vs {b}");
    }
}

/// Without the clamp: the layered credit is gone at step m + 1; the all-to-all credit's
/// growth per step is its spectral radius, and it leaves the f64 range, not earlier.
#[test]
fn unclamped_credit_vanishes_or_diverges_at_its_spectral_radius() {
    let split = accord::data::load("digits", &accord::data::default_data_dir(), 0).unwrap();
    let mut cfg = accord::experiments::probe::ProbeConfig::quick();
    cfg.recipe.n = 90;
    cfg.hidden = vec![8];
    // tanh: gain 1 settles with ρ ≈ 0.34, gain 8 (damped firing) with ρ ≈ 1.09.
    cfg.activation = Activation::Tanh;
    let c = clamp::ClampConfig {
        gains: vec![1.0, 8.0],
        max_steps: 50_000,
        ..clamp::ClampConfig::default()
    };
    let r = clamp::run(&cfg, &c, &split).unwrap();
    let l = &r.layered[0];
    assert_eq!(l.unclamped, Settle::Vanished);
    assert_eq!(l.left_range_at, Some(cfg.hidden.len() + 2));
    assert_eq!(l.radius, 0.0);
    for row in &r.all_to_all {
        let g = row.growth_rate.expect("growth rate");
        assert!(
            (g - row.radius).abs() < 0.01 * row.radius,
            "gain {}: growth {g} vs ρ {}",
            row.gain,
            row.radius
        );
        match row.unclamped {
            Settle::Vanished => assert!(row.final_norm < 1e-300 && row.radius < 1.0),
            Settle::Diverged => assert!(row.final_norm > 1e300 && row.radius > 1.0),
            other => panic!("gain {}: unexpected {other:?}", row.gain),
        }
    }
    assert_eq!(r.all_to_all[0].unclamped, Settle::Vanished);
    assert_eq!(r.all_to_all[1].unclamped, Settle::Diverged);
    // Where the unclamped credit diverges the clamped one cannot settle either.
    assert_eq!(r.all_to_all[1].clamped, Settle::Diverged);
    assert_eq!(r.all_to_all[0].clamped, Settle::Converged);
}

#[test]
fn each_probe_prints_json_with_the_documented_keys() {
    let out = std::env::temp_dir().join(format!("accord-probe-{}", std::process::id()));
    // A killed earlier run under a recycled process id may have left the directory.
    let _ = std::fs::remove_dir_all(&out);
    let common = [
        "--n",
        "90",
        "--hidden",
        "8,8",
        "--samples",
        "80",
        "--threads",
        "2",
        "--json",
    ];
    // Each probe takes only its own options (the others are refused).
    let training = ["--epochs", "1", "--probe-samples", "10"];
    let balance = ["--bits", "2", "--entries", "4", "--shifts", "1"];
    for (kind, own, extra) in [
        (
            "balance",
            [&training[..], &balance].concat(),
            &["layered", "all_to_all", "variants"][..],
        ),
        (
            "equilibrium",
            [&training[..], &["--steps", "0,2"]].concat(),
            &["layered", "all_to_all", "layered_depth"][..],
        ),
        (
            "clamp",
            vec!["--gains", "1,64"],
            &["layered", "all_to_all", "sweep"][..],
        ),
    ] {
        let mut args = vec!["probe", kind];
        args.extend(common);
        args.extend(own);
        // Each probe into a folder of its own: --out refuses one with an earlier run's files.
        let dir = out.join(kind);
        args.extend(["--out", dir.to_str().unwrap()]);
        let o = accord(&args);
        assert!(
            o.status.success(),
            "{kind}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON document");
        assert_eq!(v["probe"], kind);
        assert!(v.get("config").is_some(), "{kind}: config");
        for k in extra {
            assert!(v.get(*k).is_some(), "{kind}: missing key {k}");
        }
        assert!(!v["all_to_all"].as_array().unwrap().is_empty());
    }
    // The exact balance row is first and exact.
    let o = accord(&[
        "probe",
        "balance",
        "--n",
        "90",
        "--hidden",
        "8",
        "--samples",
        "60",
        "--epochs",
        "1",
        "--probe-samples",
        "5",
        "--bits",
        "3",
        "--entries",
        "8",
        "--shifts",
        "1",
        "--json",
        "--out",
        out.join("exact").to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["layered"][0]["variant"], "exact");
    let cos = v["layered"][0]["cos_init"].as_f64().unwrap();
    assert!((cos - 1.0).abs() < 1e-12, "{cos}");
    for (kind, f) in [
        ("balance", "balance_bits.png"),
        ("equilibrium", "equilibrium_layered.png"),
        ("clamp", "clamp_norms.png"),
        ("clamp", "clamp_growth.png"),
    ] {
        assert!(out.join(kind).join(f).is_file(), "{f} not written");
    }
}

#[test]
fn table_output_names_the_probes() {
    let out = std::env::temp_dir().join(format!("accord-probe-t-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let o = accord(&[
        "probe",
        "clamp",
        "--n",
        "90",
        "--hidden",
        "8",
        "--samples",
        "20",
        "--gains",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(s.contains("probe clamp") && s.contains("vanished"), "{s}");
}

#[test]
fn bad_probe_input_gives_clear_errors_not_panics() {
    let cases: &[(&[&str], &str)] = &[
        (&["probe", "balance", "--bits", "0"], "--bits"),
        (&["probe", "balance", "--entries", "1"], "--entries"),
        (&["probe", "clamp", "--gains", "1,-2"], "--gains"),
        (
            &["probe", "clamp", "--clamp-damping", "0"],
            "--clamp-damping",
        ),
        (&["probe", "clamp", "--sample", "100000"], "--sample"),
        (&["probe", "--n", "20"], "--n 20"),
        (&["probe", "--a2a-lr", "-0.1"], "--a2a-lr"),
        (&["probe", "bogus"], "bogus"),
        (&["probe", "--shifts", "nan"], "--shifts"),
        // Options of one probe given to another are refused, naming the probes that read them.
        (
            &["probe", "clamp", "--lr", "0.1"],
            "--lr applies to probe balance and equilibrium",
        ),
        (&["probe", "clamp", "--epochs", "2"], "--epochs"),
        (
            &["probe", "clamp", "--bits", "4"],
            "--bits applies to probe balance only",
        ),
        (
            &["probe", "balance", "--steps", "1"],
            "--steps applies to probe equilibrium",
        ),
        (
            &["probe", "equilibrium", "--gains", "2"],
            "--gains applies to probe clamp",
        ),
        (&["probe", "balance", "--sample", "1"], "--sample"),
        (
            &["probe", "--data", "mnist", "--split-seed", "3"],
            "--split-seed",
        ),
    ];
    for (args, needle) in cases {
        let o = accord(args);
        assert!(!o.status.success(), "{args:?} should fail");
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(
            e.contains(needle),
            "{args:?}: message should name {needle}: {e}"
        );
        assert!(!e.contains("panicked"), "{args:?} panicked: {e}");
    }
}
