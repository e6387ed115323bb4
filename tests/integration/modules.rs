//! `accord modules`: the sweep runs end to end, is independent of the thread count, and bad
//! input gives clear errors.

use crate::support::accord;
use accord::data;
use accord::experiments::modularity::experiment::{Outcome, Recipe, SweepConfig, run_sweep};

fn tmp(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("accord-modules-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn tiny(threads: usize) -> SweepConfig {
    SweepConfig {
        recipe: Recipe {
            n: 80,
            radius_samples: 1,
            ..Recipe::default()
        },
        data: "digits".into(),
        rates: vec![0.01, 1.0],
        seeds: vec![1, 2],
        epochs: 1,
        samples: Some(60),
        threads,
        louvain_restarts: 2,
        chip: None,
    }
}

#[test]
fn tiny_cli_run_writes_json_csv_and_figures() {
    let out = tmp("cli");
    let o = accord(&[
        "modules",
        "--n",
        "90",
        "--rates",
        "0.01,1",
        "--seeds",
        "1",
        "--epochs",
        "1",
        "--samples",
        "100",
        "--threads",
        "2",
        "--out",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON document");
    for key in [
        "config",
        "runs",
        "per_rate",
        "verdict",
        "wall_seconds",
        "train_samples",
    ] {
        assert!(v.get(key).is_some(), "missing top-level key {key}");
    }
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    for r in runs {
        let q = r["structure"]["q"].as_f64().unwrap();
        assert!((-0.5..=1.0).contains(&q));
        assert_eq!(r["convergence"]["samples"].as_u64(), Some(100));
    }
    // One seed: the verdict must decline to decide.
    assert_eq!(v["verdict"]["outcome"], "inconclusive");
    for f in [
        "sweep.csv",
        "per_rate.csv",
        "sweep.json",
        "w_by_community_lowest_rate.png",
        "w_by_community_highest_rate.png",
        "w_by_group_lowest_rate.png",
        "modularity_vs_rate.png",
        "accuracy_vs_rate.png",
    ] {
        let p = out.join(f);
        let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        assert!(len > 100, "{} missing or empty", p.display());
    }
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "header + one row per run");
    assert!(csv.starts_with("rate,seed,test_accuracy"));
}

#[test]
fn sweep_does_not_depend_on_thread_count() {
    let split = data::load("digits", &data::default_data_dir(), 0).unwrap();
    let a = run_sweep(&tiny(1), &split, &|_| {}).unwrap();
    let b = run_sweep(&tiny(2), &split, &|_| {}).unwrap();
    assert_eq!(a.runs.len(), 4);
    assert_eq!(
        a.weights, b.weights,
        "trained weights differ between 1 and 2 threads"
    );
    for (x, y) in a.runs.iter().zip(&b.runs) {
        assert_eq!(x.test_accuracy, y.test_accuracy);
        assert_eq!(x.structure, y.structure);
        assert_eq!(x.convergence, y.convergence);
    }
    assert_eq!(a.verdict.outcome, b.verdict.outcome);
    // Same seed, different rate: same initial network (paired design).
    assert_eq!(a.runs[0].initial_q, a.runs[2].initial_q);
    assert!(matches!(
        a.verdict.outcome,
        Outcome::Reproduces | Outcome::DoesNotReproduce | Outcome::Inconclusive
    ));
}

#[test]
fn bad_modules_input_gives_clear_errors_not_panics() {
    let cases: &[(&[&str], &str)] = &[
        (&["modules", "--rates", "0.1,-1"], "--rates"),
        (&["modules", "--rates", "0"], "--rates"),
        (&["modules", "--rates", "abc"], "--rates"),
        (&["modules", "--n", "50"], "--n 50"),
        (&["modules", "--epochs", "0"], "--epochs"),
        (&["modules", "--threads", "0"], "--threads"),
        (&["modules", "--samples", "0"], "--samples"),
        (&["modules", "--damping", "1.5"], "--damping"),
        (&["modules", "--seeds", "x"], "--seeds"),
        (&["modules", "--data", "no-such.csv"], "no-such.csv"),
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
