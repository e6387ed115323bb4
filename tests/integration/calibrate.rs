//! `accord calibrate`: every workload runs under every price set of its chip, emulated beside
//! measured with the error; a run that fails is reported, not hidden.

use crate::support::{accord, scratch, stderr};

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
    let o = accord(&[
        "calibrate",
        "--dir",
        dir.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--force",
        "--json",
    ]);
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
    std::fs::remove_dir_all(&dir).ok();
}
