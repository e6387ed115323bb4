//! `accord sweep`: every point recorded (failures with their error), a killed sweep resumed to
//! the same files, and shards merged to the same files as one run.

use std::path::Path;

use crate::support::{accord, scratch, stderr};

const GRID: [&str; 4] = [
    "--grid",
    "weight-bits=8,12",
    "--grid",
    "chip=balance-core,truenorth",
];
const BASE: [&str; 9] = [
    "--",
    "--data",
    "iris",
    "--hidden",
    "4",
    "--epochs",
    "1",
    "--activation",
    "hard-sigmoid",
];

fn sweep(out: &Path, extra: &[&str]) -> String {
    let mut args = vec!["sweep", "--out", out.to_str().unwrap()];
    args.extend(GRID);
    args.extend(extra);
    args.extend(BASE);
    let o = accord(&args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap()
}

#[test]
fn a_sweep_records_every_point_and_resumes_and_merges_to_the_same_files() {
    let root = scratch("sweep");
    let full = root.join("full");
    let text = sweep(&full, &["--jobs", "2"]);
    // The front of accuracy against inference energy, as a table and a figure; accuracy
    // against the numeric axis; energy by part per point.
    assert!(
        text.contains("accuracy–energy front, chip=balance-core (")
            && text.contains("cheapest within 1 point of weight-bits=12"),
        "{text}"
    );
    for png in ["pareto.png", "accuracy_vs_weight_bits.png", "energy.png"] {
        let bytes = std::fs::read(full.join(png)).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "{png}");
    }
    let csv = read(&full, "points.csv");
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 5, "a header and 4 points:\n{csv}");
    assert!(rows[0].starts_with("index,chip,weight-bits,status,test_accuracy,"));
    // balance-core trains; TrueNorth cannot, and says why in the row — the sweep goes on.
    assert!(rows[1].starts_with("0,balance-core,8,ok,"), "{}", rows[1]);
    assert!(rows[2].starts_with("1,balance-core,12,ok,"), "{}", rows[2]);
    assert!(
        rows[3].starts_with("2,truenorth,8,failed,") && rows[3].contains("training"),
        "{}",
        rows[3]
    );
    let jsonl = read(&full, "points.jsonl");
    let first: serde_json::Value = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
    assert!(
        first["result"]["energy"]["training"]["dynamic_pj_per_sample"]
            .as_f64()
            .unwrap()
            > 0.0
    );

    // Killed after one point and a torn line: --resume runs the rest, to the same files.
    let killed = root.join("killed");
    sweep(&killed, &[]);
    let one = jsonl.lines().next().unwrap();
    std::fs::write(
        killed.join("points.jsonl"),
        format!("{one}\n{{\"index\": 3, \"opt"),
    )
    .unwrap();
    sweep(&killed, &["--resume"]);
    assert_eq!(read(&killed, "points.jsonl"), jsonl);
    assert_eq!(read(&killed, "points.csv"), csv);
    // Killed between a record and its newline, then killed again while resuming: the record
    // is not glued to the next one.
    std::fs::write(killed.join("points.jsonl"), one).unwrap();
    sweep(&killed, &["--resume"]);
    assert_eq!(read(&killed, "points.jsonl"), jsonl);

    // Two shards, merged: the same files as one run.
    let (s0, s1, merged) = (root.join("s0"), root.join("s1"), root.join("merged"));
    sweep(&s0, &["--shard", "1/2"]);
    assert_eq!(read(&s0, "points.jsonl").lines().count(), 2);
    let m = |dirs: &[&Path], out: &Path| {
        let mut args = vec!["sweep", "merge"];
        args.extend(dirs.iter().map(|d| d.to_str().unwrap()));
        args.extend(["--out", out.to_str().unwrap()]);
        accord(&args)
    };
    let o = m(&[&s0], &merged);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("2 of 4 points are missing"),
        "{}",
        stderr(&o)
    );
    sweep(&s1, &["--shard", "2/2"]);
    let o = m(&[&s0, &s1], &merged);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read(&merged, "points.jsonl"), jsonl);
    assert_eq!(read(&merged, "points.csv"), csv);
    let o = m(&[&s0, &s1, &s1], &root.join("twice"));
    assert!(stderr(&o).contains("more than once"), "{}", stderr(&o));

    // A different spec is not merged, nor resumed.
    let other = root.join("other");
    let o = accord(&[
        "sweep",
        "--out",
        other.to_str().unwrap(),
        "--grid",
        "seed=1,2",
        "--",
        "--data",
        "iris",
        "--epochs",
        "0",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = m(&[&s0, &other], &root.join("mixed"));
    assert!(stderr(&o).contains("another spec"), "{}", stderr(&o));
    let mut args = vec!["sweep", "--out", other.to_str().unwrap(), "--resume"];
    args.extend(GRID);
    args.extend(BASE);
    let o = accord(&args);
    assert!(stderr(&o).contains("another spec"), "{}", stderr(&o));
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_spec_file_samples_its_grid_and_bad_specs_are_named() {
    let root = scratch("sweep-spec");
    let spec = root.join("spec.toml");
    std::fs::write(
        &spec,
        r#"base = ["--data", "iris", "--epochs", "0"]
[grid]
seed = [1, 2, 3, 4, 5]
"set:formats.weight.bits" = [10, 12, 16]
reference = [true, false]
[random]
samples = 4
seed = 7
"#,
    )
    .unwrap();
    let out = root.join("out");
    let o = accord(&[
        "sweep",
        "--spec",
        spec.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = read(&out, "points.csv");
    assert_eq!(csv.lines().count(), 5, "{csv}");
    let record: serde_json::Value = serde_json::from_str(&read(&out, "spec.json")).unwrap();
    assert_eq!(record["spec"]["points"].as_array().unwrap().len(), 4);
    // A reference point takes no chip-file key: recorded as a failure naming the option; the
    // chip points run.
    for row in csv.lines().skip(1) {
        if row.contains(",true,") {
            assert!(
                row.contains("failed") && row.contains("--set applies"),
                "{row}"
            );
        } else {
            assert!(row.contains(",ok,"), "{row}");
        }
    }
    // A grid value replaces the base's option of the same name (here --epochs 0 → 1), and the
    // sample's points are the same for the same seed.
    let again = root.join("again");
    let o = accord(&[
        "sweep",
        "--spec",
        spec.to_str().unwrap(),
        "--grid",
        "epochs=1",
        "--out",
        again.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let first = read(&again, "points.jsonl");
    let first: serde_json::Value = serde_json::from_str(first.lines().last().unwrap()).unwrap();
    assert_eq!(first["options"]["epochs"], "1");
    // The shipped example spec parses (a shard that holds none of its 120 points runs none).
    let o = accord(&[
        "sweep",
        "--spec",
        concat!(env!("CARGO_MANIFEST_DIR"), "/assets/sweep.toml"),
        "--shard",
        "200/200",
        "--out",
        root.join("example").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let record: serde_json::Value =
        serde_json::from_str(&read(&root.join("example"), "spec.json")).unwrap();
    assert_eq!(record["spec"]["points"].as_array().unwrap().len(), 120);
    for (args, needle) in [
        (
            vec!["sweep", "--out", "x", "--", "--data", "iris"],
            "at least one axis",
        ),
        (vec!["sweep", "--grid", "epochs", "--out", "x"], "KEY=V1,V2"),
        (
            vec!["sweep", "--grid=--epochs=1,2", "--out", "x"],
            "without its dashes",
        ),
        (vec!["sweep", "--grid", "seed=1,1", "--out", "x"], "twice"),
        (
            vec!["sweep", "--grid", "seed=1", "--shard", "0/2", "--out", "x"],
            "1 <= I <= N",
        ),
        (
            vec![
                "sweep", "--grid", "seed=1", "--out", "x", "--", "--save", "f",
            ],
            "may not include",
        ),
    ] {
        let o = accord(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn weight_bits_alone_choose_the_split_the_weights_need() {
    let run = |extra: &[&str]| {
        let mut args = vec![
            "train", "--data", "iris", "--hidden", "8", "--epochs", "2", "--json",
        ];
        args.extend(extra);
        accord(&args)
    };
    let o = run(&["--weight-bits", "10"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    let note = e
        .lines()
        .find(|l| l.contains("--weight-bits 10:"))
        .unwrap_or_default();
    // iris's reference weights stay below 2 (a sign, 1 or 2 integer bits, the rest fraction).
    assert!(
        note.contains("f64 reference trained with this configuration")
            && (note.contains("1 integer and 8 fractional")
                || note.contains("2 integer and 7 fractional")),
        "{e}"
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let weight = v["chip"]["formats"][0][1].as_str().unwrap();
    assert!(
        weight.starts_with("s10.8 ") || weight.starts_with("s10.7 "),
        "{weight}"
    );
    // Given a split, it is taken as it is; too few bits for the range are refused by name.
    let o = run(&["--weight-bits", "10", "--weight-frac", "6"]);
    assert!(o.status.success() && !stderr(&o).contains("chosen because"));
    let o = run(&["--weight-bits", "1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--weight-bits 1: the weights reach"),
        "{}",
        stderr(&o)
    );
}

/// `accord formats --load` and `--model` calibrate that net, not a fresh one: the weight row's
/// largest magnitude is the saved net's, and a model's absent synapses are no weights. Options
/// of `accord train` a calibration does not use are refused by name.
#[test]
fn formats_calibrates_a_saved_or_imported_net() {
    let dir = scratch("formats-start");
    let ck = dir.join("iris.ckpt");
    let o = accord(&[
        "train",
        "--reference",
        "--data",
        "iris",
        "--hidden",
        "6",
        "--epochs",
        "3",
        "--lr",
        "0.5",
        "--save",
        ck.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let saved = accord::checkpoint::Checkpoint::load(&ck).unwrap();
    let largest = |net: &accord::rule::LayeredNet, masks: &[Option<bitvec::vec::BitVec>]| {
        let mut m = 0f64;
        for (l, layer) in net.layers.iter().enumerate() {
            for (k, w) in layer.w.iter().enumerate() {
                if masks.get(l).and_then(Option::as_ref).is_none_or(|b| b[k]) {
                    m = m.max(w.abs());
                }
            }
            m = layer.b.iter().fold(m, |m, b| m.max(b.abs()));
        }
        m
    };
    let weight_max = |args: &[&str]| {
        let o = accord(args);
        assert!(o.status.success(), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["rows"][4]["observed_max"].as_f64().unwrap()
    };
    // The global memory limit applies here too (it is not one of train's options to refuse).
    let loaded = weight_max(&[
        "formats",
        "--data",
        "iris",
        "--load",
        ck.to_str().unwrap(),
        "--epochs",
        "0",
        "--max-memory",
        "1G",
        "--json",
    ]);
    assert_eq!(loaded, largest(&saved.net, &[]));
    let fresh = weight_max(&[
        "formats", "--data", "iris", "--hidden", "6", "--epochs", "0", "--json",
    ]);
    assert_ne!(
        fresh, loaded,
        "a fresh net's weights are not the saved net's"
    );
    // conv.nir at dt = 1 (IF neurons with r = 1: no factor folded into the weights).
    let data = crate::support::image_csv(&dir);
    let model = crate::support::nir_fixture("conv.nir");
    let chain = accord::nir::read(&model).unwrap().to_layered().unwrap();
    let imported = weight_max(&[
        "formats",
        "--data",
        data.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--dt",
        "1",
        "--epochs",
        "0",
        "--json",
    ]);
    assert_eq!(imported, largest(&chain.net, &chain.masks));
    for (args, needle) in [
        (
            vec!["formats", "--data", "iris", "--save", "x.ckpt"],
            "--save does not apply to accord formats",
        ),
        (
            vec!["formats", "--data", "iris", "--mode", "spiking"],
            "--mode does not apply to accord formats",
        ),
        (
            vec![
                "formats",
                "--data",
                "iris",
                "--model",
                model.to_str().unwrap(),
            ],
            "takes 36 inputs and gives 3 outputs; --data iris has 4 inputs",
        ),
    ] {
        let o = accord(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains(needle), "{}", stderr(&o));
    }
}

#[test]
fn formats_proposes_per_variable_formats_with_their_saturation_rates() {
    let o = accord(&[
        "formats", "--data", "iris", "--hidden", "6", "--epochs", "3", "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = v["rows"].as_array().unwrap();
    let keys: Vec<&str> = rows.iter().map(|r| r["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["membrane", "rate", "credit", "delta", "weight"]);
    for r in rows {
        // The proposal holds the 0.999 quantile: at most 0.1 % of the observed values saturate,
        // and it names what it would set.
        let rate = r["expected_saturation_rate"].as_f64().unwrap();
        assert!(rate <= 0.001 + 1e-12, "{r}");
        let frac = r["proposed_frac"].as_i64().unwrap();
        let key = r["key"].as_str().unwrap();
        let line = format!("--set formats.{key}.frac={frac}");
        let current = r["current"].as_str().unwrap();
        let listed = v["set_lines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str() == Some(line.as_str()));
        assert_eq!(listed, !current.contains(&format!(".{frac} ")), "{r}");
    }
    // The text form gives the same proposal as --set lines and as a chip-file fragment.
    let o = accord(&[
        "formats", "--data", "iris", "--hidden", "6", "--epochs", "3",
    ]);
    let text = String::from_utf8_lossy(&o.stdout);
    for line in v["set_lines"].as_array().unwrap() {
        let line = line.as_str().unwrap();
        assert!(text.contains(line), "{text}");
        let (key, value) = line.trim_start_matches("--set ").split_once('=').unwrap();
        let (table, field) = key.rsplit_once('.').unwrap();
        assert!(
            text.contains(&format!("[{table}]\n  {field} = {value}")),
            "{text}"
        );
    }
    for (args, needle) in [
        (
            vec!["formats", "--data", "iris", "--quantile", "0"],
            "--quantile",
        ),
        (
            vec!["formats", "--data", "iris", "--calibration-samples", "0"],
            "--calibration-samples",
        ),
    ] {
        let o = accord(&args);
        assert_eq!(o.status.code(), Some(2));
        assert!(stderr(&o).contains(needle), "{}", stderr(&o));
    }
}
