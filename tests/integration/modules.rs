//! `accord modules`: the sweep runs end to end, is independent of the thread count, and bad
//! input gives clear errors.

use crate::support::{accord, scratch};
use accord::data;
use accord::experiments::modularity::experiment::{Outcome, Recipe, SweepConfig, run_sweep};
use accord::experiments::modularity::protocol::Protocol;

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
        protocol: Protocol::EqualEpochs,
        nulls: 3,
    }
}

#[test]
fn tiny_cli_run_writes_json_csv_and_figures() {
    let out = scratch("modules-cli");
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
        assert_eq!(x.lenses.len(), 4);
        assert_eq!(x.lenses, y.lenses, "lenses and their null models");
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
        (&["modules", "--protocol", "dales"], "--protocol"),
        (
            &["modules", "--protocol", "dale", "--inhibitory", "1"],
            "--inhibitory",
        ),
        (&["modules", "--target-loss", "0"], "--target-loss"),
        (&["modules", "--nulls", "-1"], "--nulls"),
        (&["modules", "--init-scale", "1e308"], "--init-scale 1e308"),
        (&["modules", "--tol", "1e308"], "--tol 1e308"),
        (&["modules", "--tol", "1"], "--tol 1e0"),
        (
            &[
                "modules",
                "--protocol",
                "dale",
                "--chip",
                "balance-core",
                "--rates",
                "0.1",
            ],
            "--protocol dale",
        ),
        (
            &["modules", "--protocol", "modular-task", "--n", "100"],
            "--n 100",
        ),
        // Options no chosen protocol reads are refused, naming the protocols that read them.
        (
            &["modules", "--target-loss", "0.5"],
            "--target-loss applies to --protocol equal-progress only",
        ),
        (&["modules", "--plateau", "0.1"], "--plateau"),
        (&["modules", "--patience", "2"], "--patience"),
        (
            &[
                "modules",
                "--protocol",
                "convergence",
                "--inhibitory",
                "0.3",
            ],
            "--inhibitory",
        ),
        (&["modules", "--weight-decay", "0.01"], "--weight-decay"),
        (&["modules", "--max-epochs", "5"], "--max-epochs"),
        (
            &["modules", "--protocol", "convergence", "--epochs", "5"],
            "--epochs",
        ),
        (
            &["modules", "--chip", "balance-core", "--damping", "0.5"],
            "--damping",
        ),
        (
            &["modules", "--data", "mnist", "--split-seed", "3"],
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

/// Every protocol at toy size through the command line: one folder per protocol, the verdict
/// table of all of them, every lens with its null model, and the protocols' own reports.
#[test]
fn a_tiny_study_writes_the_verdict_table() {
    let out = scratch("modules-study");
    let study = |last: &[&str]| {
        let mut args = vec![
            "modules",
            "--protocol",
            "all",
            "--n",
            "160",
            "--rates",
            "0.01,1",
            "--seeds",
            "1,2",
            "--epochs",
            "1",
            "--max-epochs",
            "2",
            "--samples",
            "60",
            "--nulls",
            "3",
            "--louvain-restarts",
            "1",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(last);
        accord(&args)
    };
    let o = study(&["--force"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("verdict table"), "{text}");
    assert!(text.contains("E→I"), "Dale's blocks are reported: {text}");
    assert!(text.contains("stop rule reached"), "{text}");
    for p in Protocol::ALL {
        let d = out.join(p.name());
        for f in ["sweep.json", "lenses.csv", "w_by_community_lowest_rate.png"] {
            assert!(d.join(f).is_file(), "{} missing", d.join(f).display());
        }
    }
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("verdict.json")).unwrap()).unwrap();
    let rows = v["table"]["rows"].as_array().unwrap();
    // 4 detected lenses per protocol, 2 ground-truth lenses more for the modular task.
    assert_eq!(rows.len(), 6 * 4 + 2);
    for r in rows {
        let c = &r["low_more_within"];
        let p = c["p"].as_f64().unwrap();
        // Two seeds against two: 6 relabellings, so p is a multiple of 1/6.
        assert!((p * 6.0 - (p * 6.0).round()).abs() < 1e-9, "{r}");
        assert!(["yes", "opposite", "no-difference"].contains(&c["answer"].as_str().unwrap()));
    }
    let md = std::fs::read_to_string(out.join("verdict.md")).unwrap();
    assert_eq!(md.lines().count(), 2 + rows.len());
    assert!(md.contains("| modular-task | abs-truth |"));
    let csv = std::fs::read_to_string(out.join("verdict.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + rows.len());
    // The modular task doubled the inputs and outputs.
    let sweep: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join("modular-task").join("sweep.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        (sweep["inputs"].as_u64(), sweep["outputs"].as_u64()),
        (Some(128), Some(20))
    );
    // Resuming the finished study runs nothing again and writes the same table: protocols may
    // run apart (one per cluster task) and be gathered this way.
    let verdict = std::fs::read_to_string(out.join("verdict.csv")).unwrap();
    std::fs::remove_file(out.join("verdict.csv")).unwrap();
    let resumed = study(&["--resume"]);
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert!(String::from_utf8_lossy(&resumed.stderr).contains("4 finished run(s) taken"));
    assert_eq!(
        std::fs::read_to_string(out.join("verdict.csv")).unwrap(),
        verdict
    );
    // Seeing the saved runs through the lenses again rebuilds each run's initial weights and
    // seeds exactly as the run did: the same table.
    let again = study(&["--resume", "--reanalyse"]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("through the lenses again"));
    assert_eq!(
        std::fs::read_to_string(out.join("verdict.csv")).unwrap(),
        verdict
    );
    // A second study into the same folder without --force is refused before any run.
    let again = accord(&[
        "modules",
        "--protocol",
        "dale,weight-decay",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--out"));
    std::fs::remove_dir_all(&out).ok();
}
