//! NIR files as the Python `nir` package (1.0.8) writes them — fixtures and their expected
//! values made by `tests/fixtures/nir/make_fixtures.py` — read, converted, written back and
//! refused with named errors when malformed.

use std::path::{Path, PathBuf};

use crate::support::{accord, stderr};
use accord::nir::{self, Graph, Node};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/nir")
        .join(name)
}

fn params(node: &Node) -> Vec<(&'static str, Vec<f64>)> {
    match node {
        Node::Affine { weight, bias } => {
            vec![("weight", weight.data.clone()), ("bias", bias.clone())]
        }
        Node::Linear { weight } => vec![("weight", weight.data.clone())],
        other => other
            .params()
            .into_iter()
            .map(|(p, v)| (p, v.to_vec()))
            .collect(),
    }
}

#[test]
fn files_written_by_the_reference_client_read_with_every_parameter() {
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("expected.json")).unwrap()).unwrap();
    for file in ["lif_mlp.nir", "if_mlp.nir"] {
        let g = nir::read(&fixture(file)).unwrap();
        let want = &expected[file];
        let edges: Vec<(String, String)> = want["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e[0].as_str().unwrap().into(), e[1].as_str().unwrap().into()))
            .collect();
        assert_eq!(g.edges, edges, "{file}");
        let nodes = want["nodes"].as_object().unwrap();
        assert_eq!(g.nodes.len(), nodes.len(), "{file}");
        for (name, w) in nodes {
            let node = &g.nodes[name];
            assert_eq!(node.kind(), w["type"].as_str().unwrap(), "{file} {name}");
            for (p, values) in params(node) {
                let exp: Vec<f32> = w[p]
                    .as_array()
                    .unwrap_or_else(|| panic!("{file} {name}: no {p} expected"))
                    .iter()
                    .map(|x| x.as_f64().unwrap() as f32)
                    .collect();
                let got: Vec<f32> = values.iter().map(|&x| x as f32).collect();
                assert_eq!(got, exp, "{file} {name} {p}");
            }
        }
    }
}

#[test]
fn chains_become_layered_nets() {
    let c = nir::read(&fixture("lif_mlp.nir"))
        .unwrap()
        .to_layered()
        .unwrap();
    assert_eq!(c.net.sizes(), [3, 4, 2]);
    assert_eq!(
        c.layers,
        [
            ("fc1".to_string(), Some("lif1".to_string())),
            ("fc2".to_string(), Some("lif2".to_string()))
        ]
    );
    // A Linear node is an Affine one without bias.
    assert!(c.net.layers[1].b.iter().all(|&b| b == 0.0));
    let c = nir::read(&fixture("if_mlp.nir"))
        .unwrap()
        .to_layered()
        .unwrap();
    assert_eq!(c.net.sizes(), [4, 5, 3]);
    assert_eq!(c.layers[1], ("fc2".to_string(), None), "linear read-out");
    assert_eq!(c.net.layers[1].act, accord::rule::Activation::Identity);
}

#[test]
fn what_accord_does_not_take_yet_is_named() {
    let mut g = nir::read(&fixture("if_mlp.nir")).unwrap();
    g.nodes.insert(
        "if1".into(),
        Node::Other {
            kind: "Delay".into(),
        },
    );
    let e = g.to_layered().unwrap_err().to_string();
    assert!(
        e.contains("'if1' (Delay)") && e.contains("does not take"),
        "{e}"
    );
    let e = nir::read(&fixture("recurrent.nir"))
        .unwrap()
        .to_layered()
        .unwrap_err()
        .to_string();
    assert!(e.contains("recurrent"), "{e}");
}

#[test]
fn a_convolution_expands_into_the_dense_layer_that_computes_it() {
    let g = nir::read(&fixture("conv.nir")).unwrap();
    let c = g.to_layered().unwrap();
    assert_eq!(c.net.sizes(), [36, 32, 3], "1×6×6 → 2×4×4 → flatten → 3");
    // 32 rows of 36: each output sees a 3×3 window, the other 27 inputs are structural zeros.
    assert_eq!(c.expanded, [("conv".to_string(), 32 * 27, 32 * 36)]);
    let want: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("conv_expected.json")).unwrap())
            .unwrap();
    let x: Vec<f64> = want["input"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let l = &c.net.layers[0];
    for (i, y) in want["output"].as_array().unwrap().iter().enumerate() {
        let got: f64 = l.b[i] + (0..36).map(|j| l.w[i * 36 + j] * x[j]).sum::<f64>();
        let y = y.as_f64().unwrap();
        assert!((got - y).abs() < 1e-9, "output {i}: {got} vs NumPy {y}");
    }
    // And it writes back as it came.
    let dir = std::env::temp_dir().join(format!("accord-nir-conv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    nir::write(&dir.join("c.nir"), &g).unwrap();
    assert_eq!(nir::read(&dir.join("c.nir")).unwrap(), g);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn pooling_and_scale_compose_into_the_layer_that_computes_them() {
    let c = nir::read(&fixture("pool.nir"))
        .unwrap()
        .to_layered()
        .unwrap();
    assert_eq!(c.net.sizes(), [50, 18, 3], "2×5×5 → pool 2×3×3 → 3");
    assert_eq!(
        c.layers[0],
        ("pool+scale".to_string(), Some("if1".to_string()))
    );
    // A 3×3 window at stride 2 with padding 1 over 5 rows covers 2, 3, 2 of them: 7 × 7
    // synapses per channel exist, the rest of the 18 × 50 are structural zeros.
    let nnz = 2 * 7 * 7;
    assert_eq!(
        c.expanded,
        [("pool+scale".to_string(), 18 * 50 - nnz, 18 * 50)]
    );
    let mask = c.masks[0].as_ref().unwrap();
    assert_eq!(mask.count_ones(), nnz);
    assert!(c.masks[1].is_none(), "the read-out is dense");
    let want: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("pool_expected.json")).unwrap())
            .unwrap();
    let x = floats(&want["input"]);
    let l = &c.net.layers[0];
    for (i, y) in floats(&want["output"]).into_iter().enumerate() {
        let got: f64 = l.b[i] + (0..50).map(|j| l.w[i * 50 + j] * x[j]).sum::<f64>();
        assert!((got - y).abs() < 1e-12, "output {i}: {got} vs NumPy {y}");
        for j in 0..50 {
            assert_eq!(mask[i * 50 + j], l.w[i * 50 + j] != 0.0, "({i}, {j})");
        }
    }
}

#[test]
fn a_mnist_conv_net_with_sum_pooling_computes_what_numpy_computed() {
    let c = nir::read(&fixture("conv_mnist.nir"))
        .unwrap()
        .to_layered()
        .unwrap();
    assert_eq!(c.net.sizes(), [784, 576, 10]);
    assert_eq!(
        c.layers,
        [
            ("conv".to_string(), Some("if1".to_string())),
            ("pool+fc".to_string(), None)
        ]
    );
    // Each of the 576 conv neurons sees a 5×5 window; the pooling folds into a dense read-out.
    assert_eq!(c.masks[0].as_ref().unwrap().count_ones(), 576 * 25);
    assert!(c.masks[1].is_none());
    let want: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("conv_mnist_expected.json")).unwrap(),
    )
    .unwrap();
    let mut s = c.net.new_state();
    for (img, logits) in want["images"]
        .as_array()
        .unwrap()
        .iter()
        .zip(want["logits"].as_array().unwrap())
    {
        c.net.fire(&floats(img), &mut s);
        for (got, y) in s.r[2].iter().zip(floats(logits)) {
            assert!(
                (got - y).abs() < 1e-9 * y.abs().max(1.0),
                "{got} vs NumPy {y}"
            );
        }
    }
}

#[test]
fn a_mnist_conv_net_infers_on_balance_core_walking_only_existing_synapses() {
    let model = fixture("conv_mnist.nir");
    let o = accord(&[
        "train",
        "--data",
        "mnist",
        "--model",
        model.to_str().unwrap(),
        "--epochs",
        "0",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // The NumPy rate net scores 91.9 % on the whole 10k test file.
    let acc = v["test_accuracy"].as_f64().unwrap();
    assert!(acc > 0.88, "accuracy {acc}");
    // Every existing synapse once per sample: 576 × 25 conv synapses and the 10 × 576 read-out,
    // not the 576 × 784 of the dense rows.
    let dense = v["neurobench"]["synaptic_operations"]["Dense"]
        .as_f64()
        .unwrap();
    assert_eq!(dense, (576 * 25 + 10 * 576) as f64);
    assert!(
        v["energy"]["inference"]["dynamic_pj_per_sample"]
            .as_f64()
            .unwrap()
            > 0.0
    );
}

#[test]
fn a_sparse_layer_trains_on_chip_and_stays_sparse() {
    let dir = std::env::temp_dir().join(format!("accord-nir-sparse-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("img.csv");
    let mut text = String::new();
    for r in 0..60 {
        let row: Vec<String> = (0..36)
            .map(|j| format!("{}", (r * 7 + j * 3) % 11))
            .collect();
        text.push_str(&format!("{},{}\n", row.join(","), r % 3));
    }
    std::fs::write(&data, text).unwrap();
    let model = fixture("conv.nir");
    let ck = dir.join("net.ckpt");
    let base = [
        "train",
        "--data",
        data.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--epochs",
        "2",
        "--lr",
        "0.05",
    ];
    let mut args = base.to_vec();
    args.extend(["--save", ck.to_str().unwrap()]);
    let o = accord(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let before = nir::read(&model).unwrap().to_layered().unwrap();
    let after = accord::checkpoint::Checkpoint::load(&ck).unwrap();
    let mask = before.masks[0].as_ref().unwrap();
    let (l0, t0) = (&before.net.layers[0], &after.net.layers[0]);
    let mut moved = 0;
    for (k, exists) in mask.iter().by_vals().enumerate() {
        if exists {
            moved += usize::from(l0.w[k] != t0.w[k]);
        } else {
            assert_eq!(
                t0.w[k], 0.0,
                "synapse {k} does not exist and must stay absent"
            );
        }
    }
    assert!(moved > 0, "the conv synapses learn");
    // The comparison rules keep a dense transposed copy: refused on sparse layers.
    let mut args = base.to_vec();
    args.extend(["--rule", "backprop"]);
    let o = accord(&args);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("sparse layers"), "{}", stderr(&o));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_nir_conv_net_runs_inference_on_balance_core_and_loihi() {
    let dir = std::env::temp_dir().join(format!("accord-nir-convrun-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // 36 features (a 6×6 image), 3 classes.
    let data = dir.join("img.csv");
    let mut text = String::new();
    for r in 0..60 {
        let row: Vec<String> = (0..36)
            .map(|j| format!("{}", (r * 7 + j * 3) % 11))
            .collect();
        text.push_str(&format!("{},{}\n", row.join(","), r % 3));
    }
    std::fs::write(&data, text).unwrap();
    let model = fixture("conv.nir");
    for extra in [
        &[][..],
        &["--chip", "loihi", "--mode", "spiking", "--ticks", "16"][..],
    ] {
        let mut args = vec![
            "train",
            "--data",
            data.to_str().unwrap(),
            "--model",
            model.to_str().unwrap(),
            "--epochs",
            "0",
            "--json",
        ];
        args.extend(extra);
        let o = crate::support::accord(&args);
        assert!(
            o.status.success(),
            "{extra:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let pj = v["energy"]["inference"]["dynamic_pj_per_sample"]
            .as_f64()
            .unwrap();
        assert!(pj > 0.0, "{extra:?}: energy per inference {pj}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn malformed_files_are_refused_by_name() {
    let cases = [
        ("truncated.nir", "unexpected EOF"),
        (
            "no_weight.nir",
            "node 'fc1' (Affine): parameter 'weight' is missing",
        ),
        (
            "wrong_type.nir",
            "node 'fc1' (Affine): parameter 'weight' is not a numeric array",
        ),
        ("make_fixtures.py", "not an HDF5 file"),
    ];
    for (file, needle) in cases {
        let e = nir::read(&fixture(file)).unwrap_err().to_string();
        assert!(e.contains(file) && e.contains(needle), "{file}: {e}");
    }
    let e = nir::read(Path::new("/no/such.nir"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("/no/such.nir"), "{e}");
}

#[test]
fn read_write_read_gives_the_same_graph() {
    let dir = std::env::temp_dir().join(format!("accord-nir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["lif_mlp.nir", "if_mlp.nir"] {
        let g = nir::read(&fixture(file)).unwrap();
        let out = dir.join(file);
        nir::write(&out, &g).unwrap();
        assert_eq!(nir::read(&out).unwrap(), g, "{file}");
    }
    // A trained layered net goes out and comes back as the same chain (weights in float32).
    let net = accord::rule::LayeredNet::glorot(
        &[6, 5, 3],
        &[
            accord::rule::Activation::HardSigmoid,
            accord::rule::Activation::Identity,
        ],
        3,
    );
    let out = dir.join("net.nir");
    nir::write(&out, &Graph::from_layered(&net).unwrap()).unwrap();
    let back = nir::read(&out).unwrap().to_layered().unwrap();
    assert_eq!(back.net.sizes(), net.sizes());
    for (a, b) in net.layers.iter().zip(&back.net.layers) {
        let a32: Vec<f32> = a.w.iter().map(|&x| x as f32).collect();
        let b32: Vec<f32> = b.w.iter().map(|&x| x as f32).collect();
        assert_eq!(a32, b32);
        assert_eq!(a.act, b.act);
    }
    let sigmoid = accord::rule::LayeredNet::glorot(
        &[2, 2, 2],
        &[
            accord::rule::Activation::Sigmoid,
            accord::rule::Activation::Identity,
        ],
        1,
    );
    let e = Graph::from_layered(&sigmoid).unwrap_err().to_string();
    assert!(e.contains("Sigmoid") && e.contains("hard-sigmoid"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn import_reports_the_graph_and_every_chip_and_export_writes_a_checkpoint_net() {
    let o = accord(&["import", fixture("lif_mlp.nir").to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["chain"], serde_json::json!([3, 4, 2]));
    let chips = v["chips"].as_array().unwrap();
    assert_eq!(chips.len(), 4);
    let loihi = chips.iter().find(|c| c["chip"] == "loihi").unwrap();
    assert_eq!(loihi["cores"], 3);
    let reckon = chips.iter().find(|c| c["chip"] == "reckon").unwrap();
    assert!(reckon["cores"].is_null());
    // Each synapse node's weights in the chip's weight format, with the error it makes:
    // ReckOn's 8-bit weights (6 fractional) cannot hold fc1's −2.325.
    let fc1 = &reckon["conversion"][0];
    assert_eq!(fc1["node"], "fc1");
    assert_eq!(fc1["saturations"], 1);
    assert!(fc1["max_error"].as_f64().unwrap() <= 0.5 / 64.0 + 1e-12);
    assert_eq!(loihi["conversion"][0]["saturations"], 0);
    let o = accord(&["import", fixture("conv.nir").to_str().unwrap()]);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("as a layered net: 36-32-3") && text.contains("expanded into a dense layer"),
        "{text}"
    );
    let o = accord(&["import", fixture("no_weight.nir").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("parameter 'weight' is missing"));

    let dir = std::env::temp_dir().join(format!("accord-nir-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ck, out) = (dir.join("net.ckpt"), dir.join("net.nir"));
    let o = accord(&[
        "train",
        "--data",
        "iris",
        "--hidden",
        "6",
        "--activation",
        "hard-sigmoid",
        "--epochs",
        "2",
        "--save",
        ck.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = accord(&[
        "export",
        "--load",
        ck.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let back = nir::read(&out).unwrap().to_layered().unwrap();
    assert_eq!(back.net.sizes(), [4, 6, 3]);
    let o = accord(&[
        "export",
        "--load",
        ck.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "an existing file is not replaced without --force"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_net_run_from_its_nir_file_equals_the_native_run() {
    let accord = |args: &[&str]| {
        let o = crate::support::accord(args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        o
    };
    let dir = std::env::temp_dir().join(format!("accord-nir-eq-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ck, file) = (dir.join("d.ckpt"), dir.join("d.nir"));
    let base = ["train", "--data", "digits", "--epochs", "0", "--json"];
    accord(&[
        "train",
        "--data",
        "digits",
        "--hidden",
        "16",
        "--activation",
        "hard-sigmoid",
        "--epochs",
        "2",
        "--save",
        ck.to_str().unwrap(),
    ]);
    accord(&[
        "export",
        "--load",
        ck.to_str().unwrap(),
        "--out",
        file.to_str().unwrap(),
    ]);
    let figures = |extra: &[&str]| {
        let mut a = base.to_vec();
        a.extend(extra);
        let v: serde_json::Value = serde_json::from_slice(&accord(&a).stdout).unwrap();
        (
            v["test_accuracy"].clone(),
            v["ledger"].clone(),
            v["energy"]["inference"].clone(),
        )
    };
    // float32 in the file, the chip's 16-bit weights either way: the same words, the same run.
    assert_eq!(
        figures(&["--load", ck.to_str().unwrap()]),
        figures(&["--model", file.to_str().unwrap()])
    );
    let o = crate::support::accord(&[
        "map",
        "--model",
        fixture("lif_mlp.nir").to_str().unwrap(),
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["sizes"], serde_json::json!([3, 4, 2]));
    std::fs::remove_dir_all(&dir).unwrap();
}
