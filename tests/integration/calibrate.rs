//! `accord calibrate`: every workload runs under every price set of its chip, emulated beside
//! measured with the error; a run that fails is reported, not hidden.

use crate::support::{accord, accord_in, scratch, stderr};

const WORKLOAD: &str = r#"name = "tiny"
title = "a tiny synthetic workload"
chip = "loihi"
args = ["--hidden", "16", "--mode", "spiking", "--ticks", "8", "--epochs", "0"]
approximations = ["everything"]
[data]
synthetic = { features = 12, classes = 3, rows = 30, seed = 2 }
[measured]
dynamic_uj_per_inference = 1.0
total_uj_per_inference = 2.0
inferences_per_s = 1000.0
[source]
citation = "none"
location = "here"
open = ["all of it"]
"#;

/// `accord [GLOBAL] calibrate --dir DIR --out OUT --force --seeds SEEDS --json` with `env`.
fn calibrate(
    env: &[(&str, &std::path::Path)],
    global: &[&str],
    (dir, out): (&std::path::Path, &std::path::Path),
    seeds: &str,
) -> std::process::Output {
    let mut args = global.to_vec();
    args.extend([
        "calibrate",
        "--dir",
        dir.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--force",
        "--seeds",
        seeds,
        "--json",
    ]);
    accord_in(env, &args)
}

#[test]
fn every_price_set_is_run_and_compared() {
    let dir = scratch("cal-dir");
    std::fs::write(dir.join("tiny.toml"), WORKLOAD).unwrap();
    // A second workload whose run must fail: 'graded' mode on a binary-spike chip.
    std::fs::write(
        dir.join("broken.toml"),
        WORKLOAD
            .replace("name = \"tiny\"", "name = \"broken\"")
            .replace("\"spiking\"", "\"graded\""),
    )
    .unwrap();
    let out = scratch("cal-out");
    let o = calibrate(&[], &[], (&dir, &out), "2");
    assert_eq!(
        o.status.code(),
        Some(1),
        "a failed run fails the calibration: {}",
        stderr(&o)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = v["rows"].as_array().unwrap();
    // loihi offers two price sets (base, sana-fe), for each of the two workloads.
    assert_eq!(rows.len(), 4);
    let tiny: Vec<&serde_json::Value> = rows.iter().filter(|r| r["workload"] == "tiny").collect();
    let sets: Vec<&str> = tiny
        .iter()
        .map(|r| r["price_set"].as_str().unwrap())
        .collect();
    assert_eq!(sets, ["base", "sana-fe"]);
    let dynamic =
        |r: &serde_json::Value| r["emulated"]["dynamic_uj_per_inference"].as_f64().unwrap();
    assert!(dynamic(tiny[0]) > 0.0 && dynamic(tiny[1]) > 0.0);
    assert_ne!(
        dynamic(tiny[0]),
        dynamic(tiny[1]),
        "the price sets price differently"
    );
    // Each row is the mean of its two seeds, with their spread.
    for r in &tiny {
        let per_seed = r["per_seed"].as_array().unwrap();
        assert_eq!(per_seed.len(), 2);
        let mean = (per_seed[0]["dynamic_uj_per_inference"].as_f64().unwrap()
            + per_seed[1]["dynamic_uj_per_inference"].as_f64().unwrap())
            / 2.0;
        assert!((dynamic(r) - mean).abs() <= 1e-12 * mean, "{r}");
        assert!(r["spread"]["dynamic_uj_per_inference"].as_f64().is_some());
    }
    // The base set has Loihi's static power, SANA-FE's set has none.
    assert!(
        tiny[0]["emulated"]["static_uj_per_inference"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert!(tiny[1]["emulated"]["static_uj_per_inference"].is_null());
    for r in rows.iter().filter(|r| r["workload"] == "broken") {
        assert!(r["emulated"].is_null());
        assert!(r["error"].as_str().unwrap().contains("graded"), "{r}");
    }
    let text = std::fs::read_to_string(out.join("calibration.txt")).unwrap();
    assert!(text.contains("| tiny | loihi | base (default) |"), "{text}");
    assert!(text.contains("run failed"));
    assert!(text.contains("approximation: everything"));
    assert!(out.join("tiny.csv").is_file(), "the synthetic data is kept");
    let csv = std::fs::read_to_string(out.join("calibration.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5);
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&out).ok();
}

#[test]
fn bad_calibrate_input_is_named() {
    let o = accord(&[
        "calibrate",
        "--only",
        "no-such-workload",
        "--out",
        "/tmp/accord-cal-x",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--only no-such-workload"),
        "{}",
        stderr(&o)
    );
    let o = accord(&["calibrate", "--dir", "/no/such/dir"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--dir"), "{}", stderr(&o));
    let dir = scratch("cal-bad");
    std::fs::write(
        dir.join("w.toml"),
        WORKLOAD.replace("chip = \"loihi\"", "chip = 3"),
    )
    .unwrap();
    let o = accord(&["calibrate", "--dir", dir.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("w.toml") && stderr(&o).contains("chip"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("panicked"));
    // The seeds are calibrate's own; a workload must not set them, nor cut MNIST to nothing.
    for (name, text, needle) in [
        (
            "seeded.toml",
            WORKLOAD.replace(
                "\"--epochs\", \"0\"]",
                "\"--epochs\", \"0\", \"--seed\", \"3\"]",
            ),
            "must not set the seed",
        ),
        (
            "cut.toml",
            WORKLOAD.replace(
                "synthetic = { features = 12, classes = 3, rows = 30, seed = 2 }",
                "derived = { from = \"mnist\", crop = 14, rows = 100 }",
            ),
            "data.derived.crop = 14",
        ),
    ] {
        std::fs::remove_file(dir.join("w.toml")).ok();
        std::fs::write(dir.join(name), text).unwrap();
        let o = accord(&["calibrate", "--dir", dir.to_str().unwrap()]);
        assert!(!o.status.success());
        assert!(stderr(&o).contains(needle), "{needle}: {}", stderr(&o));
        std::fs::remove_file(dir.join(name)).ok();
    }
    std::fs::write(dir.join("tiny.toml"), WORKLOAD).unwrap();
    let out = scratch("cal-bad-out");
    let o = calibrate(&[], &[], (&dir, &out), "0");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--seeds 0"), "{}", stderr(&o));
    let o = accord(&["calibrate", "--record", "--only", "tiny"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--record"), "{}", stderr(&o));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&out).ok();
}

/// `--max-memory` reaches every workload's run (as it does a sweep's points): a budget too
/// small for the workload's data fails its runs, each naming the budget.
#[test]
fn the_memory_limit_reaches_the_workload_runs() {
    let dir = scratch("cal-mem");
    std::fs::write(dir.join("tiny.toml"), WORKLOAD).unwrap();
    let out = scratch("cal-mem-out");
    let o = calibrate(&[], &["--max-memory", "1K"], (&dir, &out), "1");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = v["rows"].as_array().unwrap();
    assert!(!rows.is_empty());
    for r in rows {
        let e = r["error"].as_str().unwrap_or_default();
        assert!(e.contains("budget"), "{r}");
    }
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&out).ok();
}

/// The recorded calibration the reports quote is the calibration of the shipped chip files
/// and workloads: every shipped workload under every price set of its chip is recorded, each
/// row for exactly the model and workload file it names (else `accord calibrate --record` is
/// due), and each chip's default price set is the one that predicts measured energy best.
#[test]
fn the_recorded_calibration_is_of_the_shipped_files_and_picks_the_defaults() {
    use accord::chip::calibration::{load_recorded, recorded_path};
    use accord::experiments::calibrate::{default_dir, workloads};
    let rec = load_recorded(&recorded_path()).unwrap();
    let rerun = "re-run `accord calibrate --record` (release build)";
    let shipped = workloads(&default_dir(), &[]).unwrap();
    for w in &shipped {
        let chip = accord::chip::open(&w.chip).unwrap();
        for (set, _) in &chip.price_sets {
            let row = rec
                .rows
                .iter()
                .find(|r| r.workload == w.name && &r.price_set == set)
                .unwrap_or_else(|| panic!("{} under {set} is not recorded: {rerun}", w.name));
            let model =
                accord::chip::open_with(&w.chip, &[("price_set".into(), set.clone())]).unwrap();
            assert_eq!(
                Some(row.chip_fingerprint),
                model.fingerprint(),
                "{} {set}: the chip model changed since it was recorded: {rerun}",
                w.chip
            );
            assert_eq!(
                row.workload_fingerprint,
                w.run_fingerprint(),
                "{}: the workload file changed since it was recorded: {rerun}",
                w.name
            );
            assert_eq!(row.seeds, rec.seeds);
        }
    }
    assert_eq!(
        rec.rows.len(),
        shipped
            .iter()
            .map(|w| accord::chip::open(&w.chip).unwrap().price_sets.len())
            .sum::<usize>(),
        "rows of workloads no longer shipped: {rerun}"
    );
    assert!(!rec.best.is_empty());
    // Every chip with several price sets is either decided or said to be undecided.
    for w in &shipped {
        let chip = accord::chip::open(&w.chip).unwrap();
        if chip.price_sets.len() >= 2 {
            assert!(
                rec.best.iter().any(|b| b.chip == chip.name) || rec.undecided.contains(&chip.name),
                "{}: {rerun}",
                chip.name
            );
        }
    }
    for b in &rec.best {
        let chip = accord::chip::open(&b.chip).unwrap();
        assert_eq!(
            chip.price_set,
            b.price_set,
            "{}: price set '{}' predicts measured energy best (mean |error| {:.0} %); the chip file's default is '{}'",
            b.chip,
            b.price_set,
            100.0 * b.mean_abs_energy_error,
            chip.price_set
        );
    }
    // A report on a shipped chip quotes its rows; on a changed one, none.
    let loihi = accord::chip::open("loihi").unwrap();
    assert!(matches!(
        accord::chip::calibration::coverage(&loihi),
        accord::chip::calibration::Coverage::Covered { .. }
    ));
    let changed =
        accord::chip::open_with("loihi", &[("prices.sop.energy_pj".into(), "1.0".into())]).unwrap();
    assert!(matches!(
        accord::chip::calibration::coverage(&changed),
        accord::chip::calibration::Coverage::Other { .. }
    ));
}

/// A workload whose data cannot be derived (here: no MNIST where the data folder points) fails
/// its own rows, named; the other workloads still run.
#[test]
fn underivable_data_fails_its_workload_only() {
    let dir = scratch("cal-derived");
    std::fs::write(dir.join("tiny.toml"), WORKLOAD).unwrap();
    std::fs::write(
        dir.join("cut.toml"),
        WORKLOAD
            .replace("name = \"tiny\"", "name = \"cut\"")
            .replace(
                "synthetic = { features = 12, classes = 3, rows = 30, seed = 2 }",
                "derived = { from = \"mnist\", crop = 4, threshold = 0.5, rows = 100 }",
            ),
    )
    .unwrap();
    let out = scratch("cal-derived-out");
    let empty = scratch("cal-no-data");
    let o = calibrate(&[("ACCORD_DATA", empty.as_path())], &[], (&dir, &out), "1");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for r in v["rows"].as_array().unwrap() {
        if r["workload"] == "cut" {
            assert!(r["emulated"].is_null());
            assert!(r["error"].as_str().unwrap().contains("data.derived"), "{r}");
        } else {
            assert!(r["emulated"]["dynamic_uj_per_inference"].as_f64().unwrap() > 0.0);
        }
    }
    for d in [dir, out, empty] {
        std::fs::remove_dir_all(&d).ok();
    }
}
