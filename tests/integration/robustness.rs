//! Bad input ends in a clear error, never a panic, an abort or a runaway allocation; divergence
//! and interruption are results; outputs are whole or absent. One test per root cause of the
//! adversarial run in issue 8 (the harness itself: `tests/adversarial.py`).

use crate::support::{accord, accord_in, scratch, stderr};
use std::path::Path;
use std::process::{Command, Output};

/// A clean failure: exit status 2 (an error, not a panic's 101 or a signal) whose message
/// contains every needle.
fn fails_naming(o: &Output, needles: &[&str]) {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(2), "expected a clean error, got: {e}");
    assert!(!e.contains("panicked"), "{e}");
    for n in needles {
        assert!(e.contains(n), "error should name {n:?}: {e}");
    }
}

/// An IDX image file of `n` images of `side × side` pixels.
fn idx_images(n: u32, side: u32) -> Vec<u8> {
    let mut b = vec![0, 0, 8, 3];
    for v in [n, side, side] {
        b.extend(v.to_be_bytes());
    }
    b.extend((0..n * side * side).map(|i| (i * 37 % 256) as u8));
    b
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 8, 1];
    b.extend((labels.len() as u32).to_be_bytes());
    b.extend(labels);
    b
}

#[test]
fn mnist_train_and_test_of_different_widths_is_an_error_on_every_path() {
    let d = scratch("idx");
    let put = |name: &str, bytes: Vec<u8>| {
        std::fs::write(d.join(format!("mnist10k-{name}-ubyte.gz")), bytes).unwrap();
    };
    put("train-images-idx3", idx_images(6, 2));
    put("train-labels-idx1", idx_labels(&[0, 1, 0, 1, 0, 1]));
    put("test-images-idx3", idx_images(2, 3));
    put("test-labels-idx1", idx_labels(&[0, 1]));
    for extra in [&["--reference"][..], &[]] {
        let mut args = vec!["train", "--data", "mnist", "--hidden", "4", "--epochs", "1"];
        args.extend(extra);
        let o = accord_in(&[("ACCORD_DATA", &d)], &args);
        fails_naming(&o, &["--data mnist", "4 features", "test rows have 9"]);
    }
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn labels_must_be_every_class_from_zero_and_more_than_one() {
    let d = scratch("labels");
    let stray = d.join("stray.csv");
    let mut text = String::new();
    for i in 0..40 {
        text.push_str(&format!("{},{},{}\n", i % 7, i % 5, i % 3));
    }
    text.push_str("1,2,65535\n");
    std::fs::write(&stray, text).unwrap();
    let o = accord(&[
        "train",
        "--data",
        stray.to_str().unwrap(),
        "--reference",
        "--epochs",
        "1",
    ]);
    fails_naming(&o, &["stray", "3-65534", "huge output layer"]);
    let single = d.join("single.csv");
    std::fs::write(&single, "1,2,0\n3,4,0\n5,6,0\n7,8,0\n9,1,0\n").unwrap();
    let o = accord(&["train", "--data", single.to_str().unwrap(), "--epochs", "1"]);
    fails_naming(&o, &["single", "only one class"]);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn sizes_are_checked_against_the_memory_limit_before_allocation() {
    let o = accord(&[
        "train",
        "--data",
        "iris",
        "--hidden",
        "65536,65536",
        "--reference",
        "--epochs",
        "1",
    ]);
    fails_naming(&o, &["--hidden 65536,65536", "128.0 GiB", "--max-memory"]);
    let o = accord(&["all-to-all", "--n", "4294967296"]);
    fails_naming(&o, &["--n 4294967296", "overflows"]);
    let o = accord(&["all-to-all", "--n", "20000"]);
    fails_naming(&o, &["--n 20000", "14.9 GiB"]);
    // Raised, the same size goes on to the chip's own capacity check (no allocation first).
    let o = accord(&["all-to-all", "--n", "20000", "--max-memory", "32G"]);
    fails_naming(&o, &["fan-in of 20000", "1024 input axons"]);
    // Lowered, even iris's file is over the input budget.
    let o = accord(&["train", "--data", "iris", "--max-memory", "1K"]);
    fails_naming(&o, &["iris.csv", "more than 64 B"]);
    let o = accord(&["train", "--max-memory", "lots"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--max-memory"), "{}", stderr(&o));
}

#[test]
fn inputs_are_read_no_further_than_their_budget() {
    use std::io::Write;
    let d = scratch("bomb");
    // 64 MiB of zeros in a 64 kB gzip: over the 4 MiB data budget of --max-memory 64M.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let block = vec![b'0'; 1 << 20];
    for _ in 0..64 {
        gz.write_all(&block).unwrap();
    }
    let bomb = d.join("bomb.csv.gz");
    std::fs::write(&bomb, gz.finish().unwrap()).unwrap();
    let o = accord(&[
        "train",
        "--data",
        bomb.to_str().unwrap(),
        "--max-memory",
        "64M",
    ]);
    fails_naming(&o, &["bomb.csv.gz", "decompresses to more than 4.0 MiB"]);
    #[cfg(unix)]
    {
        let o = accord(&["chip", "check", "/dev/zero"]);
        fails_naming(&o, &["/dev/zero", "not a regular file"]);
    }
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn divergence_is_a_result_with_epoch_sample_and_status() {
    let o = accord(&[
        "train",
        "--data",
        "iris",
        "--reference",
        "--lr",
        "1000",
        "--epochs",
        "3",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("diverged in epoch 1 at sample"),
        "{}",
        stderr(&o)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("the report still");
    assert_eq!(v["status"], "diverged");
    assert_eq!(v["stopped_at_epoch"], 1);
    assert!(v["stopped_at_sample"].as_u64().unwrap() >= 1);
    let o = accord(&[
        "train",
        "--data",
        "iris",
        "--reference",
        "--lr",
        "1e308",
        "--epochs",
        "3",
    ]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("loss is NaN"), "{}", stderr(&o));
    // A healthy run says so.
    let o = accord(&[
        "train", "--data", "iris", "--hidden", "4", "--epochs", "1", "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["status"], "completed");
    assert!(v["stopped_at_epoch"].is_null());
}

#[test]
fn options_a_run_would_ignore_are_refused() {
    let cases: &[(&[&str], &str)] = &[
        (&["--reference", "--weight-bits", "200"], "--weight-bits"),
        (&["--reference", "--chip", "loihi"], "--chip"),
        (&["--reference", "--set", "mesh.cols=2"], "--set"),
        (&["--ticks", "8"], "--ticks applies to --mode spiking"),
        (&["--encoding", "poisson"], "--encoding"),
        (&["--arith", "float", "--lut-bits", "4"], "--lut-bits"),
        (
            &["--arith", "float", "--set", "formats.weight.frac=9"],
            "formats.weight.frac",
        ),
        (
            &["--arith", "float", "--set", "balance_table.entries=4"],
            "balance_table.entries",
        ),
        (
            &["--reference", "--rule", "backprop", "--steps", "1"],
            "--steps applies to the balance rule",
        ),
        (&["--force"], "--force applies to --plot"),
        (&["--lr", "1"], "--lr 1"),
    ];
    for (extra, needle) in cases {
        let mut args = vec!["train", "--data", "iris", "--hidden", "4", "--epochs", "1"];
        args.extend(*extra);
        fails_naming(&accord(&args), &[needle]);
    }
    fails_naming(
        &accord(&["train", "--data", "mnist", "--split-seed", "4"]),
        &["--split-seed"],
    );
    // An evaluation-only run takes no training option.
    for (opt, v) in [
        ("--lr", "0.1"),
        ("--batch", "4"),
        ("--steps", "2"),
        ("--message-threshold", "0.01"),
        ("--rounding", "floor"),
    ] {
        fails_naming(
            &accord(&["train", "--data", "iris", "--epochs", "0", opt, v]),
            &[opt, "--epochs 0"],
        );
    }
    fails_naming(&accord(&["modules", "--arith", "float"]), &["--chip"]);
    // accord formats calibrates the f64 reference: a chip-only rule and mnist's split seed
    // are refused as by train.
    fails_naming(
        &accord(&["formats", "--data", "iris", "--rule", "feedback-alignment"]),
        &["--rule feedback-alignment"],
    );
    fails_naming(
        &accord(&["formats", "--data", "mnist", "--split-seed", "4"]),
        &["--split-seed"],
    );
    // accord export: a time step is positive and finite.
    for dt in ["0", "-1", "inf", "NaN"] {
        fails_naming(
            &accord(&[
                "export",
                "--load",
                "x.ckpt",
                "--out",
                "x.nir",
                &format!("--dt={dt}"),
            ]),
            &["--dt", "positive"],
        );
    }
    // A sweep either resumes or replaces.
    let o = accord(&["sweep", "--resume", "--force", "--", "--data", "iris"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
}

#[test]
fn output_folders_are_checked_before_the_work_and_never_mixed() {
    let d = scratch("out");
    let file = d.join("plain");
    std::fs::write(&file, b"").unwrap();
    let bad = file.join("figs");
    let o = accord(&[
        "train",
        "--data",
        "digits",
        "--epochs",
        "30",
        "--plot",
        bad.to_str().unwrap(),
    ]);
    fails_naming(&o, &["--plot"]);
    let figs = d.join("figs");
    std::fs::create_dir_all(&figs).unwrap();
    std::fs::write(figs.join("old.png"), b"stale").unwrap();
    let args = [
        "train",
        "--data",
        "iris",
        "--hidden",
        "4",
        "--epochs",
        "1",
        "--plot",
        figs.to_str().unwrap(),
    ];
    fails_naming(
        &accord(&args),
        &["--plot", "not empty", "old.png", "--force"],
    );
    let mut forced = args.to_vec();
    forced.push("--force");
    let o = accord(&forced);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut names: Vec<String> = std::fs::read_dir(&figs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["accuracy.png", "energy.png"],
        "stale file cleared, no temp"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn chip_prices_past_any_chip_and_free_by_omission_are_design_rule_errors() {
    let o = accord(&[
        "train",
        "--data",
        "iris",
        "--hidden",
        "4",
        "--epochs",
        "1",
        "--set",
        "prices.sop.latency_ns=1e12",
    ]);
    fails_naming(&o, &["prices.sop.latency_ns", "0..=1e9 ns"]);
    let o = accord(&[
        "train",
        "--data",
        "iris",
        "--hidden",
        "4",
        "--epochs",
        "1",
        "--set",
        "balance_table.input_max=1e12",
    ]);
    fails_naming(&o, &["balance_table.input_max", "membrane format"]);
    let d = scratch("chip");
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("hw_models/reckon.toml"),
    )
    .unwrap();
    let without = text.replacen("free = true\n", "", 1);
    assert_ne!(text, without, "reckon declares its free retro_packet");
    let f = d.join("reckon-nofree.toml");
    std::fs::write(&f, without).unwrap();
    let o = accord(&["chip", "check", f.to_str().unwrap()]);
    fails_naming(&o, &["emulations.retro_packet.via", "free by omission"]);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn undefined_statistics_are_reported_as_undefined() {
    let d = scratch("modules");
    let o = accord(&[
        "modules",
        "--rates",
        "0.1",
        "--seeds",
        "1",
        "--epochs",
        "1",
        "--samples",
        "40",
        "--n",
        "90",
        "--json",
        "--out",
        d.join("m").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["verdict"]["q_rank_correlation"].is_null());
    let text = v["verdict"]["text"].as_str().unwrap();
    assert!(
        text.contains("undefined") && !text.contains("NaN"),
        "{text}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[cfg(unix)]
#[test]
fn sigint_stops_between_samples_and_leaves_whole_files() {
    let d = scratch("sigint");
    let figs = d.join("figs");
    let child = Command::new(env!("CARGO_BIN_EXE_accord"))
        .args([
            "train",
            "--data",
            "digits",
            "--hidden",
            "32",
            "--epochs",
            "1000",
            "--reference",
            "--json",
            "--plot",
            figs.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Long enough for a few epochs (well under 0.5 s each), far short of the thousand asked for.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("a whole report");
    assert_eq!(v["status"], "interrupted");
    let epochs = v["epochs"].as_array().unwrap().len();
    assert!((1..1000).contains(&epochs), "{epochs} epochs");
    let names: Vec<String> = std::fs::read_dir(&figs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["accuracy.png"],
        "one whole figure, no temporary file"
    );
    let png = std::fs::read(figs.join("accuracy.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.ends_with(b"IEND\xaeB`\x82"));
    std::fs::remove_dir_all(&d).unwrap();
}

/// The report without wall-clock seconds and the thread count (the only figures a resumed run
/// may change).
fn results(o: &Output) -> serde_json::Value {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.remove("seconds");
                m.remove("threads");
                m.values_mut().for_each(strip);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("a JSON report");
    strip(&mut v);
    v
}

#[test]
fn a_run_saved_after_epoch_k_and_resumed_equals_the_uninterrupted_run() {
    let d = scratch("resume");
    for (tag, extra) in [
        ("graded", &["--data", "digits", "--hidden", "16"][..]),
        (
            "spiking",
            &[
                "--data", "iris", "--hidden", "8", "--mode", "spiking", "--ticks", "8",
            ][..],
        ),
        (
            "reference",
            &["--data", "digits", "--hidden", "16", "--reference"][..],
        ),
    ] {
        let run = |epochs: &str, more: &[&str]| {
            let mut a = vec!["train", "--epochs", epochs, "--json"];
            a.extend(extra);
            a.extend(more);
            let o = accord(&a);
            assert!(o.status.success(), "{tag}: {}", stderr(&o));
            o
        };
        let whole = run("3", &[]);
        let ck = d.join(format!("{tag}.ckpt"));
        run("1", &["--save", ck.to_str().unwrap()]);
        let mut resume = vec![
            "train",
            "--resume",
            ck.to_str().unwrap(),
            "--epochs",
            "3",
            "--json",
        ];
        if tag != "reference" {
            // On another thread count: the same bits.
            resume.extend(["--threads", "2"]);
        }
        let o = accord(&resume);
        assert!(o.status.success(), "{tag}: {}", stderr(&o));
        assert_eq!(
            results(&whole),
            results(&o),
            "{tag}: resumed ≠ uninterrupted"
        );
    }
    std::fs::remove_dir_all(&d).unwrap();
}

#[cfg(unix)]
#[test]
fn a_run_interrupted_mid_epoch_resumes_bit_for_bit() {
    let d = scratch("resume-mid");
    let args = [
        "train", "--data", "mnist", "--hidden", "16", "--epochs", "2", "--json",
    ];
    let whole = accord(&args);
    assert!(whole.status.success(), "{}", stderr(&whole));
    let ck = d.join("mid.ckpt");
    let mut a = args.to_vec();
    a.extend(["--save", ck.to_str().unwrap()]);
    let child = Command::new(env!("CARGO_BIN_EXE_accord"))
        .args(&a)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(600));
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let first = child.wait_with_output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    // On a fast machine the run may finish first; the resume must match either way.
    if v["status"] == "interrupted" {
        assert_eq!(first.status.code(), Some(130));
        assert!(v["stopped_at_sample"].as_u64().unwrap() > 0);
    }
    let o = accord(&["train", "--resume", ck.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(results(&whole), results(&o));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_saved_net_reloads_on_another_chip_and_bad_checkpoints_are_refused() {
    let d = scratch("load");
    let ck = d.join("net.ckpt");
    let o = accord(&[
        "train",
        "--data",
        "iris",
        "--hidden",
        "8",
        "--epochs",
        "4",
        "--reference",
        "--save",
        ck.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let trained: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // Reloaded on the reference it is the same net.
    let o = accord(&[
        "train",
        "--data",
        "iris",
        "--load",
        ck.to_str().unwrap(),
        "--epochs",
        "0",
        "--reference",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["test_accuracy"], trained["test_accuracy"]);
    // And it runs on a spiking chip.
    let o = accord(&[
        "train",
        "--data",
        "iris",
        "--load",
        ck.to_str().unwrap(),
        "--epochs",
        "0",
        "--chip",
        "loihi",
        "--mode",
        "spiking",
        "--ticks",
        "16",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    fails_naming(
        &accord(&["train", "--load", ck.to_str().unwrap(), "--hidden", "4"]),
        &["--hidden", "--load"],
    );
    fails_naming(
        &accord(&["train", "--resume", ck.to_str().unwrap(), "--lr", "0.5"]),
        &["--lr", "--resume"],
    );
    fails_naming(
        &accord(&["train", "--data", "digits", "--save", ck.to_str().unwrap()]),
        &["--save", "exists", "--force"],
    );
    let mut bytes = std::fs::read(&ck).unwrap();
    bytes.truncate(bytes.len() / 2);
    let cut = d.join("cut.ckpt");
    std::fs::write(&cut, bytes).unwrap();
    fails_naming(
        &accord(&["train", "--resume", cut.to_str().unwrap()]),
        &["cut.ckpt", "truncated"],
    );
    fails_naming(
        &accord(&["train", "--load", "/dev/null"]),
        &["/dev/null", "not an accord checkpoint"],
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_killed_modules_sweep_resumes_per_finished_run() {
    let d = scratch("sweep");
    let (a, b) = (d.join("a"), d.join("b"));
    let common = [
        "modules",
        "--rates",
        "0.03,0.3",
        "--seeds",
        "1,2",
        "--epochs",
        "1",
        "--samples",
        "60",
        "--n",
        "90",
        "--threads",
        "2",
        "--json",
    ];
    let run = |out: &Path, more: &[&str]| {
        let mut args = common.to_vec();
        args.extend(["--out", out.to_str().unwrap()]);
        args.extend(more);
        accord(&args)
    };
    let whole = run(&a, &[]);
    assert!(whole.status.success(), "{}", stderr(&whole));
    // A sweep killed after its first run finished, while writing the second: the log holds
    // the configuration, one whole run and a torn record.
    let log = std::fs::read(a.join("runs.bin")).unwrap();
    let record_end = |at: usize| {
        let len = u32::from_le_bytes(log[at..at + 4].try_into().unwrap()) as usize;
        at + 8 + len
    };
    let after_config = record_end(16);
    let after_first = record_end(after_config);
    let torn = after_first + (record_end(after_first) - after_first) / 2;
    std::fs::create_dir_all(&b).unwrap();
    std::fs::write(b.join("runs.bin"), &log[..torn]).unwrap();
    let resumed = run(&b, &["--resume"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert!(
        stderr(&resumed).contains("1 finished run(s) taken"),
        "{}",
        stderr(&resumed)
    );
    assert!(
        stderr(&resumed).contains("cut short"),
        "{}",
        stderr(&resumed)
    );
    let strip = |o: &Output| {
        let mut v = results(o);
        v.as_object_mut().unwrap().remove("wall_seconds");
        v
    };
    assert_eq!(
        strip(&whole),
        strip(&resumed),
        "resumed sweep ≠ uninterrupted"
    );
    // Another configuration cannot take these runs.
    let mut other = common.to_vec();
    other[6] = "2";
    other.extend(["--out", b.to_str().unwrap(), "--resume"]);
    fails_naming(&accord(&other), &["--resume", "another configuration"]);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn checkpoints_of_extended_loaded_and_imported_runs_resume_again() {
    let d = scratch("chain");
    let ck = d.join("a.ckpt");
    let ok = |args: &[&str]| {
        let o = accord(args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        o
    };
    let c = ck.to_str().unwrap();
    ok(&[
        "train", "--data", "iris", "--hidden", "5", "--epochs", "1", "--save", c,
    ]);
    // Extended twice: the saved configuration stays parseable, and saving goes on by default.
    ok(&["train", "--resume", c, "--epochs", "2"]);
    ok(&["train", "--resume", c, "--epochs", "3"]);
    fails_naming(
        &accord(&["train", "--resume", c, "--epochs", "1"]),
        &["--epochs 1", "3 epoch"],
    );
    ok(&[
        "--max-memory",
        "1G",
        "train",
        "--resume",
        c,
        "--epochs",
        "4",
    ]);
    // A run started from a saved net records its widths: it resumes and reloads.
    let b = d.join("b.ckpt");
    ok(&[
        "train",
        "--data",
        "iris",
        "--load",
        c,
        "--epochs",
        "1",
        "--save",
        b.to_str().unwrap(),
    ]);
    ok(&["train", "--resume", b.to_str().unwrap(), "--epochs", "2"]);
    ok(&[
        "train",
        "--data",
        "iris",
        "--load",
        b.to_str().unwrap(),
        "--epochs",
        "0",
    ]);
    // So does a run of a NIR model.
    let nir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nir/if_mlp.nir");
    let m = d.join("m.ckpt");
    ok(&[
        "train",
        "--data",
        "iris",
        "--model",
        nir.to_str().unwrap(),
        "--epochs",
        "1",
        "--save",
        m.to_str().unwrap(),
    ]);
    ok(&[
        "train",
        "--data",
        "iris",
        "--load",
        m.to_str().unwrap(),
        "--epochs",
        "0",
    ]);
    // --force never deletes the run's own inputs.
    let figs = d.join("figs");
    std::fs::create_dir_all(&figs).unwrap();
    let data = figs.join("data.csv");
    std::fs::write(
        &data,
        "1,2,0\n2,1,1\n3,3,0\n1,1,1\n2,2,0\n3,1,1\n1,3,0\n2,3,1\n3,2,0\n1,2,1\n",
    )
    .unwrap();
    fails_naming(
        &accord(&[
            "train",
            "--data",
            data.to_str().unwrap(),
            "--epochs",
            "1",
            "--plot",
            figs.to_str().unwrap(),
            "--force",
        ]),
        &["--data", "would delete"],
    );
    assert!(data.exists());
    std::fs::remove_dir_all(&d).unwrap();
}
