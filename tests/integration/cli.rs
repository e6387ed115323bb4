//! The command line: defaults, JSON shape, and clear errors on bad input.

use crate::support::{accord, stderr};

#[test]
fn train_json_has_the_documented_top_level() {
    let o = accord(&[
        "train", "--data", "iris", "--hidden", "8", "--epochs", "3", "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON document");
    let acc = v["test_accuracy"].as_f64().expect("test_accuracy");
    assert!((0.0..=1.0).contains(&acc));
    assert_eq!(v["epochs"].as_array().expect("epochs").len(), 3);
    assert!(v["epochs"][0]["train_loss"].as_f64().is_some());
}

#[test]
fn verify_passes_and_prints_per_depth() {
    let o = accord(&["verify", "--nets", "25", "--seed", "3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("PASS"));
    for d in 2..=6 {
        assert!(
            out.lines()
                .any(|l| l.trim_start().starts_with(&d.to_string()))
        );
    }
}

#[test]
fn bad_values_give_clear_errors_not_panics() {
    let cases: &[(&[&str], &str)] = &[
        (&["train", "--lr", "-1"], "--lr"),
        (&["train", "--lr", "nan"], "--lr"),
        (&["train", "--epochs", "many"], "--epochs"),
        (&["train", "--hidden", "32,0"], "--hidden"),
        (&["train", "--hidden", "abc"], "--hidden"),
        (&["train", "--activation", "swish"], "swish"),
        (&["train", "--data", "no-such-data.csv"], "no-such-data.csv"),
        (&["train", "--bogus"], "--bogus"),
        (&["verify", "--nets", "0"], "--nets"),
    ];
    for (args, needle) in cases {
        let o = accord(args);
        assert!(!o.status.success(), "{args:?} should fail");
        let e = stderr(&o);
        assert!(
            e.contains(needle),
            "{args:?}: message should name {needle}: {e}"
        );
        assert!(!e.contains("panicked"), "{args:?} panicked: {e}");
    }
}

#[test]
fn bad_csv_names_file_and_line() {
    let dir = std::env::temp_dir().join(format!("accord-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.csv");
    std::fs::write(&path, "0.1,0.2,0\n0.3,abc,1\n").unwrap();
    let o = accord(&["train", "--data", path.to_str().unwrap(), "--epochs", "1"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("bad.csv") && e.contains("line 2"), "{e}");
    let path = dir.join("nan.csv");
    std::fs::write(&path, "0.1,0.2,0\n0.3,NaN,1\n").unwrap();
    let o = accord(&["train", "--data", path.to_str().unwrap(), "--epochs", "1"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("nan.csv") && e.contains("line 2"), "{e}");
}

#[test]
fn chip_train_json_has_the_report_top_level() {
    let o = accord(&[
        "train", "--data", "iris", "--hidden", "8", "--epochs", "2", "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON document");
    for key in [
        "test_accuracy",
        "ledger",
        "energy",
        "neurobench",
        "mapping",
        "chip",
        "epochs",
        "timescales",
    ] {
        assert!(v.get(key).is_some(), "missing top-level key {key}");
    }
    assert_eq!(v["chip"]["name"], "balance-core");
    assert!(v["ledger"]["training"]["sop"].as_u64().unwrap() > 0);
    assert!(
        v["energy"]["training"]["dynamic_pj_per_sample"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert!(
        v["neurobench"]["synaptic_operations"]["Dense"]
            .as_f64()
            .unwrap()
            > 0.0
    );
}

#[test]
fn chip_commands_and_chip_errors() {
    let o = accord(&["chip", "check", "loihi"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("passes the design-rule check"));
    let o = accord(&["chip", "show", "truenorth"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("26"));
    // The recorded calibration, per price set: the all-in base set has no dynamic figure.
    assert!(
        text.contains("  base: truenorth-mnist no comparable energy")
            && text.contains("  akopyan-fit: truenorth-mnist dynamic energy +"),
        "{text}"
    );
    let cases: &[(&[&str], &[&str])] = &[
        // Training on an inference-only chip names the missing primitives.
        (
            &[
                "train",
                "--chip",
                "truenorth",
                "--mode",
                "spiking",
                "--epochs",
                "1",
            ],
            &["lut_read", "weight_update"],
        ),
        // Loihi has no graded events.
        (
            &["train", "--chip", "loihi", "--epochs", "1"],
            &["--mode graded", "spiking mode"],
        ),
        // Overrides are checked by the design rules.
        (
            &["train", "--set", "formats.weight.bits=64", "--epochs", "1"],
            &["formats.weight.bits", "1..=40"],
        ),
        (
            &[
                "train",
                "--set",
                "formats.weight.colour=red",
                "--epochs",
                "1",
            ],
            &["unknown field"],
        ),
        (
            &["train", "--lut-entries", "1", "--epochs", "1"],
            &["entries"],
        ),
        (
            &["train", "--chip", "no-such-chip", "--epochs", "1"],
            &["no-such-chip", "balance-core"],
        ),
        // A network that does not fit names the constraint.
        (
            &[
                "train", "--chip", "reckon", "--data", "mnist", "--hidden", "128", "--epochs", "0",
                "--mode", "spiking",
            ],
            &["fan-in of 784", "reckon core whole", "256 input"],
        ),
        (
            &["chip", "check", "/no/such/file.toml"],
            &["/no/such/file.toml"],
        ),
    ];
    for (args, needles) in cases {
        let o = accord(args);
        assert!(!o.status.success(), "{args:?} should fail");
        let e = stderr(&o);
        for n in *needles {
            assert!(e.contains(n), "{args:?}: message should contain {n:?}: {e}");
        }
        assert!(!e.contains("panicked"), "{args:?} panicked: {e}");
    }
}

#[test]
fn plot_writes_png_figures() {
    let dir = std::env::temp_dir().join(format!("accord-plot-{}", std::process::id()));
    let o = accord(&[
        "train",
        "--data",
        "iris",
        "--hidden",
        "6",
        "--epochs",
        "2",
        "--plot",
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in ["accuracy.png", "energy.png"] {
        let bytes = std::fs::read(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{f} is a PNG");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn all_to_all_runs_on_chip_beside_the_reference() {
    let o = accord(&[
        "all-to-all",
        "--n",
        "90",
        "--samples",
        "60",
        "--epochs",
        "1",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert!(
        v["chip_run"]["training"]["dynamic_pj_per_sample"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert!(v["chip_structure"]["q"].as_f64().is_some());
    assert!(v["reference"]["test_accuracy"].as_f64().is_some());
    let o = accord(&["all-to-all", "--n", "50"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--n 50"), "{}", stderr(&o));
}

#[test]
fn modules_sweep_runs_on_a_chip() {
    let dir = std::env::temp_dir().join(format!("accord-modchip-{}", std::process::id()));
    let out = dir.to_str().unwrap();
    let o = accord(&[
        "modules",
        "--n",
        "80",
        "--rates",
        "0.01,0.5",
        "--seeds",
        "1",
        "--epochs",
        "1",
        "--samples",
        "40",
        "--chip",
        "balance-core",
        "--out",
        out,
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v["config"]["chip"]["model"]["name"], "balance-core");
    assert_eq!(v["runs"].as_array().map(|r| r.len()), Some(2));
    // A rate the chip's learning-rate format cannot hold is refused before any run.
    let o = accord(&[
        "modules",
        "--rates",
        "0.01,1",
        "--chip",
        "balance-core",
        "--out",
        out,
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("learning_rate format"),
        "{}",
        stderr(&o)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tabulated_activations_need_the_chip_table_only_when_graded() {
    // TrueNorth declares no activation table: graded sigmoid is refused (it has no graded
    // events either, so ask a copy of balance-core without its table), spiking sigmoid runs
    // (the soma does not read the table).
    let dir = std::env::temp_dir().join(format!("accord-notable-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("hw_models/balance-core.toml"),
    )
    .unwrap();
    let start = src
        .find("[activation_table]")
        .expect("balance-core has a table");
    let end = src[start + 1..]
        .find("\n[")
        .map_or(src.len(), |e| start + 1 + e);
    let file = dir.join("notable.toml");
    std::fs::write(
        &file,
        format!("{}{}", &src[..start], &src[end..])
            .replace("name = \"balance-core\"", "name = \"notable\""),
    )
    .unwrap();
    let chip = file.to_str().unwrap();
    let o = accord(&[
        "train", "--data", "iris", "--hidden", "4", "--epochs", "1", "--chip", chip,
    ]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("activation 'sigmoid' needs an activation table") && e.contains("notable.toml"),
        "{e}"
    );
    for args in [
        vec!["--mode", "spiking", "--ticks", "4"],
        vec!["--activation", "hard-sigmoid"],
    ] {
        let mut a = vec![
            "train", "--data", "iris", "--hidden", "4", "--epochs", "1", "--chip", chip, "--json",
        ];
        a.extend(args);
        let o = accord(&a);
        assert!(o.status.success(), "{a:?}: {}", stderr(&o));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn map_places_the_all_to_all_net_as_one_group() {
    let o = accord(&["map", "--all-to-all", "300"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("cores used: 2 of 16"), "{out}");
    assert!(
        out.starts_with(
            "graph: groups 0 'input' 64 + 'hidden' 226 + 'output' 10; projections 0 → 0 masked \
             (70564 of 90000 synapses)\n"
        ),
        "{out}"
    );
    assert!(out.contains("all-to-all: layer 0 is one group"), "{out}");
    assert!(
        out.contains("forward routes (presynaptic neuron -> destination core): 600"),
        "{out}"
    );
    let o = accord(&["map", "--all-to-all", "300", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v["sizes"], serde_json::json!([300]));
    assert_eq!(v["mapping"]["layers"][0]["recurrent"], true);
    assert_eq!(v["graph"]["groups"][0]["populations"][1]["size"], 226);
    // The recipe's synapses: 236 neurons (not the 64 inputs) from each of the other 299.
    assert_eq!(v["graph"]["projections"][0]["existing"], 236 * 299);
    // Too few neurons for digits' 64 inputs and 10 outputs; too many for a TrueNorth core.
    let o = accord(&["map", "--all-to-all", "50"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--all-to-all 50"), "{}", stderr(&o));
    let o = accord(&["map", "--all-to-all", "300", "--chip", "truenorth"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("256 input axons"), "{}", stderr(&o));
    // Flags that do not apply to the group are refused, not ignored.
    for extra in [
        &["--hidden", "32"][..],
        &["--chip", "truenorth", "--no-duplicate-inputs"],
    ] {
        let mut args = vec!["map", "--all-to-all", "300"];
        args.extend(extra);
        let o = accord(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains("cannot be used with"), "{}", stderr(&o));
    }
    // A placement for sparse layers, asked where there are none, is refused by name.
    for net in [&["--all-to-all", "300"][..], &["--sizes", "4,3"]] {
        let mut args = vec!["map", "--placement", "dense"];
        args.extend(net);
        let o = accord(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains("--placement dense"), "{}", stderr(&o));
    }
}
