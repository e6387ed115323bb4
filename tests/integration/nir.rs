//! NIR files as the Python `nir` package (1.0.8) writes them — fixtures and their expected
//! values made by `tests/fixtures/nir/make_fixtures.py` — read, converted, written back and
//! refused with named errors when malformed.

use std::path::Path;

use crate::support::{accord, image_csv, nir_fixture as fixture, stderr};
use accord::nir::{self, Graph, Node};

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
    // Graphs that are not chains: each error names the nodes with their types.
    let edit = |f: &dyn Fn(&mut Graph)| {
        let mut g = nir::read(&fixture("if_mlp.nir")).unwrap();
        f(&mut g);
        g.to_layered().unwrap_err().to_string()
    };
    // A cycle through two nodes (fc2 → fc1 closes input → fc1 → if1 → fc2).
    let e = edit(&|g| g.edges.push(("fc2".into(), "fc1".into())));
    assert!(
        e.contains("'fc1' (Affine) has 2 incoming edges (from 'input' (Input), 'fc2' (Affine))"),
        "{e}"
    );
    // A cycle back through the input (fc2 → input instead of fc2 → output).
    let e = edit(&|g| {
        g.edges.retain(|(a, b)| !(a == "fc2" && b == "output"));
        g.edges.push(("fc2".into(), "input".into()));
    });
    assert!(
        e.contains("the edge 'fc2' (Affine) → 'input' (Input) closes a cycle"),
        "{e}"
    );
    // A branch.
    let e = edit(&|g| g.edges.push(("if1".into(), "output".into())));
    assert!(
        e.contains("'if1' (IF) branches to") && e.contains("'output' (Output)"),
        "{e}"
    );
    // An orphan node.
    let e = edit(&|g| {
        g.nodes.insert(
            "stray".into(),
            Node::Scale {
                scale: vec![1.0; 5],
            },
        );
    });
    assert!(
        e.contains("'stray' (Scale) is not on the chain") && e.contains("orphan"),
        "{e}"
    );
    // A loop through a node that is not Affine or Linear is named.
    let mut g = nir::read(&fixture("recurrent.nir")).unwrap();
    g.nodes.insert(
        "rec".into(),
        Node::Scale {
            scale: vec![1.0; 3],
        },
    );
    let e = g.to_layered().unwrap_err().to_string();
    assert!(
        e.contains("'rec' (Scale) closes a loop on 'lif'") && e.contains("Affine and Linear"),
        "{e}"
    );
    // A loop of the wrong shape too.
    let mut g = nir::read(&fixture("recurrent.nir")).unwrap();
    g.nodes.insert(
        "rec".into(),
        Node::Linear {
            weight: nir::Tensor {
                shape: vec![3, 2],
                data: vec![0.0; 6],
            },
        },
    );
    let e = g.to_layered().unwrap_err().to_string();
    assert!(
        e.contains("'rec' (Linear) closes a loop on 'lif' (3 neurons) but has weight shape [3, 2]"),
        "{e}"
    );
    // A loop on a read-out that does not spike would carry nothing: refused.
    let mut g = nir::read(&fixture("recurrent.nir")).unwrap();
    g.nodes.insert(
        "lif".into(),
        Node::Li {
            tau: vec![0.02; 3],
            r: vec![1.0; 3],
            v_leak: vec![0.0; 3],
        },
    );
    let e = g.to_layered().unwrap_err().to_string();
    assert!(
        e.contains("'rec' (Affine) closes a loop on 'lif', a linear read-out"),
        "{e}"
    );
}

/// Issue 13's recurrent nets: a loop `lif → rec → lif` becomes the layer's recurrent
/// projection, its weights kept as written and its bias added to the layer's.
#[test]
fn a_recurrent_loop_becomes_the_layers_own_projection() {
    let g = nir::read(&fixture("recurrent.nir")).unwrap();
    assert_eq!(g.loops().get("lif").map(String::as_str), Some("rec"));
    let c = g.to_layered().unwrap();
    assert_eq!(c.net.sizes(), [2, 3]);
    let r = c.recurrent[0].as_ref().expect("the loop on 'lif'");
    assert_eq!(r.node, "rec");
    let Node::Affine { weight, bias } = &g.nodes["rec"] else {
        panic!("rec is an Affine")
    };
    assert_eq!(r.w, weight.data);
    let Node::Affine { bias: b_fc, .. } = &g.nodes["fc"] else {
        panic!("fc is an Affine")
    };
    let sum: Vec<f64> = b_fc.iter().zip(bias).map(|(a, b)| a + b).collect();
    assert_eq!(c.net.layers[0].b, sum);
}

/// Spike counts of the recurrent fixtures on Loihi's float twin: exactly NIR's equations
/// (`make_recurrent.py`, NumPy, the loop carrying the previous step's spikes).
#[test]
fn recurrent_nets_spike_in_the_float_twin_as_nirs_equations_say() {
    // The hand-written loop (one layer of 3 LIF neurons).
    let (reference, float, _) = loihi_float_twin(("recurrent.nir", "recurrent_ref.json"));
    let total: u32 = reference.iter().flatten().flatten().sum();
    assert!(total > 50, "the reference is not silent: {total} spikes");
    assert_eq!(float, reference, "spike counts, float twin vs NumPy");
    // snnTorch's RLeaky, exported by snnTorch (nodes '1.lif' ⇄ '1.w_rec').
    let (reference, float, _) =
        loihi_float_twin(("snntorch_rleaky.nir", "snntorch_rleaky_ref.json"));
    let total: u32 = reference.iter().flatten().flatten().sum();
    assert!(total > 1000, "the reference is not silent: {total} spikes");
    assert_eq!(float, reference, "spike counts, float twin vs NumPy");
    // snnTorch's own simulation departs (its RLeaky zeroes the membrane a step after a
    // spike): the reference is NIR's equations, not that rule.
    let want: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("snntorch_rleaky_ref.json")).unwrap(),
    )
    .unwrap();
    let snn: Counts = serde_json::from_value(want["snntorch_counts"].clone()).unwrap();
    assert_ne!(snn, reference);
    // A recurrent net snnTorch trained on digits, on 40 digits.
    let files = ("snntorch_rdigits.nir", "snntorch_rdigits_ref.json");
    let (reference, float, _) = loihi_float_twin(files);
    let total: u32 = reference.iter().flatten().flatten().sum();
    assert!(total > 3000, "the reference is not silent: {total} spikes");
    assert_eq!(float, reference, "spike counts, float twin vs NumPy");
    // Loihi's own arithmetic (9-bit weights, 24-bit state) moves some spikes, not many.
    let moved = moved_on_loihi_fixed(files, &reference);
    eprintln!("Loihi fixed point moved {moved} of {total} spikes of the recurrent digits net");
    assert!(
        f64::from(moved) <= 0.1 * f64::from(total),
        "fixed point moved {moved} of {total} spikes"
    );
}

/// Packets of a recurrent net counted where they are sent, against the closed form: every
/// relay spike goes to the hidden core, every hidden spike to the output core and back to its
/// own core, output spikes nowhere (all on one core per layer here).
#[test]
fn a_recurrent_layers_spikes_travel_to_its_own_core_too() {
    let chip = accord::chip::open("loihi").unwrap();
    let (mut cn, _, want) = nir_chip_net(
        ("snntorch_rleaky.nir", "snntorch_rleaky_ref.json"),
        |pops| accord::emulator::float_path(&chip, pops, 0.01, 0.0, 1),
        &chip,
    );
    let ticks = want["ticks"].as_u64().unwrap() as usize;
    for (k, x) in want["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .take(5)
        .enumerate()
    {
        let x = floats(x);
        let mut t = accord::emulator::Tally::default();
        cn.fire(&x, k as u64, &mut t);
        // Regular encoding: a phase accumulator per input.
        let mut relay = 0u64;
        for &r in &x {
            let mut phase = 0.0;
            for _ in 0..ticks {
                phase += r;
                if phase >= 1.0 {
                    phase -= 1.0;
                    relay += 1;
                }
            }
        }
        let hidden: u64 = cn.state().counts[1].iter().map(|&c| u64::from(c)).sum();
        assert!(hidden > 0);
        assert_eq!(
            t.ledger.get(accord::chip::Action::SpikePacket),
            relay + 2 * hidden,
            "sample {k}: {relay} relay spikes, {hidden} hidden spikes"
        );
    }
}

/// The command line runs a recurrent NIR net for inference and refuses what it cannot do,
/// naming the loop's node.
#[test]
fn a_recurrent_model_runs_inference_and_refuses_training_by_name() {
    let model = fixture("snntorch_rdigits.nir");
    let model = model.to_str().unwrap();
    let base = [
        "train", "--data", "digits", "--model", model, "--dt", "1e-4", "--chip", "loihi",
    ];
    let run = |extra: &[&str]| {
        let mut a: Vec<&str> = base.to_vec();
        a.extend(extra);
        accord(&a)
    };
    let o = run(&[
        "--epochs", "0", "--mode", "spiking", "--ticks", "32", "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let acc = v["test_accuracy"].as_f64().unwrap();
    assert!(acc > 0.85, "the trained recurrent net on Loihi: {acc}");
    assert_eq!(v["mapping"]["layers"][1]["recurrent"], true);
    for (extra, want) in [
        (&["--epochs", "1", "--mode", "spiking"][..], "'1.w_rec'"),
        (&["--epochs", "0"][..], "'1.w_rec'"),
        (&["--epochs", "0", "--reference"][..], "'1.w_rec'"),
    ] {
        let o = run(extra);
        assert!(!o.status.success(), "{extra:?}");
        assert!(stderr(&o).contains(want), "{extra:?}: {}", stderr(&o));
    }
    let o = accord(&["import", model, "--dt", "1e-4"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("layer 1 projects onto itself through '1.w_rec'"),
        "{text}"
    );
}

/// Without its loop the recurrent net spikes differently: the recurrent rows are walked.
#[test]
fn a_recurrent_projection_changes_what_the_layer_does() {
    let g = nir::read(&fixture("snntorch_rleaky.nir")).unwrap();
    let mut cut = g.clone();
    cut.nodes.remove("1.w_rec");
    cut.edges.retain(|(a, b)| a != "1.w_rec" && b != "1.w_rec");
    let path = std::env::temp_dir().join(format!("accord-cut-{}.nir", std::process::id()));
    nir::write(&path, &cut).unwrap();
    let name = path.to_str().unwrap().to_string();
    let (_, with, _) = loihi_float_twin(("snntorch_rleaky.nir", "snntorch_rleaky_ref.json"));
    let want = fixture("snntorch_rleaky_ref.json");
    let (_, without, _) = loihi_float_twin((name.as_str(), want.to_str().unwrap()));
    let _ = std::fs::remove_file(&path);
    let hidden = |c: &Counts| c.iter().map(|s| s[0].clone()).collect::<Vec<_>>();
    assert_ne!(
        hidden(&with),
        hidden(&without),
        "the loop must change the hidden layer's spikes"
    );
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
    // And it writes back as it came, the IF node's parameters in their (2, 4, 4) shape (the
    // Python client's type inference checks it against the convolution's output).
    assert_eq!(g.shapes["if1"], [2, 4, 4]);
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
    // Placed by receptive field: 8 cores against 14 with dense rows; the conv layer's neurons
    // in receptive-field order (its 4 channels of one position side by side) and its cores
    // holding rows only for the pixels their chunk sees.
    let m = &v["mapping"];
    assert_eq!(m["sparse"]["chosen"], "receptive-field");
    assert_eq!(m["sparse"]["receptive_field_cores"], 8);
    assert_eq!(m["sparse"]["dense_cores"], 14);
    let order: Vec<u64> = m["layers"][1]["order"].as_array().unwrap()[..8]
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect();
    assert_eq!(order, [0, 144, 288, 432, 1, 145, 289, 433]);
    let conv = &m["layers"][1];
    let fields = conv["receptive"].as_array().unwrap();
    let rows = |f: &serde_json::Value| -> u64 {
        f.as_array()
            .unwrap()
            .iter()
            .map(|g| g["axons"].as_u64().unwrap())
            .sum()
    };
    let stored: u64 = conv["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .zip(fields)
        .map(|(c, f)| c["len"].as_u64().unwrap() * rows(f))
        .sum();
    let held: u64 = m["cores"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["layer"] == 1)
        .map(|c| c["synapses"].as_u64().unwrap())
        .sum();
    assert_eq!(held, stored);
    assert!(stored * 2 < 576 * 784, "{stored} rows of 451,584");
    // The README's 176,832 synapses stored: these and the read-out's 10 × 576.
    assert_eq!(stored, 171_072);
}

/// On TrueNorth the same net takes 12 cores by receptive field (a 256-axon core holds a band of
/// 9 pixel rows: 144 conv neurons, 3 output rows of all 4 channels) against 29 with dense rows
/// (its 784-pixel fan-in split over 4 dendrite segments): no conv neuron's fan-in is split.
#[test]
fn a_conv_net_on_truenorth_takes_the_placement_with_fewer_cores() {
    let model = fixture("conv_mnist.nir");
    let o = accord(&[
        "map",
        "--chip",
        "truenorth",
        "--model",
        model.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let m = &v["mapping"];
    assert_eq!(m["sparse"]["chosen"], "receptive-field");
    assert_eq!(m["sparse"]["receptive_field_cores"], 12);
    assert_eq!(m["sparse"]["dense_cores"], 29);
    assert_eq!(m["layers"][1]["receptive"].as_array().unwrap().len(), 4);
    assert_eq!(m["layers"][1]["segments"].as_array().unwrap().len(), 0);
    let o = accord(&[
        "map",
        "--chip",
        "truenorth",
        "--model",
        model.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&o.stdout).contains(
        "sparse layers: placed by receptive field (by receptive field: 12 cores; dense rows, \
         zeros stored: 29 cores"
    ));
    // Dense rows asked by name: 29 cores, the conv fan-in split over 4 segments.
    let o = accord(&[
        "map",
        "--chip",
        "truenorth",
        "--model",
        model.to_str().unwrap(),
        "--placement",
        "dense",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let m = &v["mapping"];
    assert_eq!(m["sparse"]["chosen"], "dense");
    assert_eq!(m["sparse"]["asked"], "dense");
    assert_eq!(m["cores"].as_array().unwrap().len(), 29);
    assert_eq!(m["layers"][1]["receptive"].as_array().unwrap().len(), 0);
    assert_eq!(m["layers"][1]["segments"].as_array().unwrap().len(), 4);
}

/// A `--model` run resumed from its checkpoint keeps the model's masks and the placement asked
/// (the checkpoint records `--model`, `--dt` and `--placement`): two epochs with a save after
/// the first give the bits of two epochs straight.
#[test]
fn a_resumed_model_run_keeps_its_masks_and_placement() {
    let dir = crate::support::scratch("resume-model");
    let data = image_csv(&dir);
    let model = fixture("conv.nir");
    let ck = dir.join("run.ckpt");
    let train = |extra: &[&str]| {
        let mut args = vec![
            "train",
            "--data",
            data.to_str().unwrap(),
            "--model",
            model.to_str().unwrap(),
            "--placement",
            "dense",
            // conv.nir's IF neurons have r = 1: at dt = 1 one step adds the input.
            "--dt",
            "1",
        ];
        args.extend_from_slice(extra);
        accord(&args)
    };
    let o = train(&["--epochs", "1", "--save", ck.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = accord(&[
        "train",
        "--resume",
        ck.to_str().unwrap(),
        "--epochs",
        "2",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let resumed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let o = train(&["--epochs", "2", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let straight: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(resumed["mapping"]["sparse"]["asked"], "dense");
    for key in ["test_loss", "test_accuracy", "ledger", "mapping"] {
        assert_eq!(resumed[key], straight[key], "{key}");
    }
}

/// `--placement` changes where a conv net's rows sit, not what it computes: on the same
/// inputs both placements give the same outputs and synaptic operations (dense rows store and
/// route more). A model without sparse layers refuses a placement, naming it; so do a run
/// without `--model` and the `f64` reference.
#[test]
fn a_placement_by_name_changes_the_cores_not_the_outputs() {
    let dir = crate::support::scratch("placement");
    let data = image_csv(&dir);
    let model = fixture("conv.nir");
    let run = |placement: &str| {
        let o = accord(&[
            "train",
            "--data",
            data.to_str().unwrap(),
            "--model",
            model.to_str().unwrap(),
            "--epochs",
            "0",
            "--placement",
            placement,
            "--dt",
            "1",
            "--json",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    // On MNIST's conv net the two placements take different cores (balance-core: 14 with
    // dense rows, 8 by receptive field); a placement that does not fit names itself.
    let conv_mnist = fixture("conv_mnist.nir");
    let cores = |placement: &str| {
        accord(&[
            "map",
            "--model",
            conv_mnist.to_str().unwrap(),
            "--placement",
            placement,
            "--json",
        ])
    };
    for (p, n) in [("dense", 14), ("receptive-field", 8)] {
        let o = cores(p);
        assert!(o.status.success(), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["mapping"]["cores"].as_array().unwrap().len(), n, "{p}");
    }
    let o = accord(&[
        "train",
        "--data",
        "mnist",
        "--model",
        conv_mnist.to_str().unwrap(),
        "--placement",
        "dense",
        "--epochs",
        "0",
        "--set",
        "mesh.cols=3",
        "--set",
        "mesh.rows=3",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("with --placement dense"),
        "{}",
        stderr(&o)
    );
    let (dense, field) = (run("dense"), run("receptive-field"));
    assert_eq!(dense["mapping"]["sparse"]["chosen"], "dense");
    assert_eq!(field["mapping"]["sparse"]["chosen"], "receptive-field");
    for key in ["test_accuracy", "test_loss"] {
        assert_eq!(dense[key], field[key], "{key}");
    }
    let sop = |v: &serde_json::Value| v["ledger"]["inference"]["sop"].clone();
    assert!(sop(&dense).as_u64().unwrap() > 0);
    assert_eq!(sop(&dense), sop(&field));
    let o = accord(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--model",
        fixture("lif_mlp.nir").to_str().unwrap(),
        "--epochs",
        "0",
        "--placement",
        "dense",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--placement dense: --model"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("has no sparse layers"),
        "{}",
        stderr(&o)
    );
    let o = accord(&["map", "--placement", "dense"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--model"), "{}", stderr(&o));
    let o = accord(&[
        "train",
        "--reference",
        "--data",
        data.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--epochs",
        "0",
        "--placement",
        "dense",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--placement applies to a chip run, not to --reference"),
        "{}",
        stderr(&o)
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_sparse_layer_trains_on_chip_and_stays_sparse() {
    let dir = std::env::temp_dir().join(format!("accord-nir-sparse-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let data = image_csv(&dir);
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
        // r = 1: at dt = 1 one step adds the input (at 1e-4 the chip would hold the conv's
        // weights as zeros).
        "--dt",
        "1",
    ];
    let mut args = base.to_vec();
    args.extend(["--save", ck.to_str().unwrap()]);
    let o = accord(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    trained_only_existing_synapses(&model, &ck, "chip");
    // The comparison rules keep a dense transposed copy: refused on sparse layers.
    let mut args = base.to_vec();
    args.extend(["--rule", "backprop"]);
    let o = accord(&args);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("sparse layers"), "{}", stderr(&o));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The net saved in `ck` from `model`'s first layer: every absent synapse still a zero
/// weight, and some existing ones moved (`what` names the run).
fn trained_only_existing_synapses(model: &Path, ck: &Path, what: &str) {
    let before = nir::read(model).unwrap().to_layered().unwrap();
    let after = accord::checkpoint::Checkpoint::load(ck).unwrap();
    let mask = before.masks[0].as_ref().unwrap();
    let (l0, t0) = (&before.net.layers[0], &after.net.layers[0]);
    let mut moved = 0;
    for (k, exists) in mask.iter().by_vals().enumerate() {
        if exists {
            moved += usize::from(l0.w[k] != t0.w[k]);
        } else {
            assert_eq!(t0.w[k], 0.0, "{what}: synapse {k} does not exist");
        }
    }
    assert!(moved > 0, "{what}: the conv synapses learn");
}

/// The `f64` reference trains only a model's synapses, as a chip does: by the balance rule
/// and by backprop, an absent synapse of the expanded convolution stays a zero weight.
#[test]
fn the_reference_trains_only_a_models_synapses() {
    let dir = crate::support::scratch("ref-sparse");
    let data = image_csv(&dir);
    let model = fixture("conv.nir");
    for rule in ["balance", "backprop"] {
        let ck = dir.join(format!("{rule}.ckpt"));
        let o = accord(&[
            "train",
            "--reference",
            "--rule",
            rule,
            "--data",
            data.to_str().unwrap(),
            "--model",
            model.to_str().unwrap(),
            "--epochs",
            "2",
            "--lr",
            "0.05",
            "--save",
            ck.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{rule}: {}", stderr(&o));
        trained_only_existing_synapses(&model, &ck, rule);
    }
}

/// `--load` of a checkpoint saved by a `--model` run keeps the model's structure: its
/// evaluation walks, counts and places the sparse layer as the run that saved it did (not as a
/// dense layer of zeros). Without the model file it is refused by name.
#[test]
fn a_loaded_model_checkpoint_keeps_its_structure() {
    let dir = crate::support::scratch("load-model");
    let data = image_csv(&dir);
    let model = dir.join("conv.nir");
    std::fs::copy(fixture("conv.nir"), &model).unwrap();
    let ck = dir.join("run.ckpt");
    let o = accord(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--dt",
        "1",
        "--placement",
        "dense",
        "--epochs",
        "1",
        "--save",
        ck.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let trained: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let load = || {
        accord(&[
            "train",
            "--data",
            data.to_str().unwrap(),
            "--load",
            ck.to_str().unwrap(),
            "--epochs",
            "0",
            "--json",
        ])
    };
    let o = load();
    assert!(o.status.success(), "{}", stderr(&o));
    let loaded: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // The saved run's --dt and --placement come with its model.
    assert_eq!(loaded["mapping"]["sparse"]["asked"], "dense");
    for key in ["test_accuracy", "mapping", "neurobench"] {
        assert_eq!(loaded[key], trained[key], "{key}");
    }
    assert_eq!(
        loaded["energy"]["inference"], trained["energy"]["inference"],
        "inference energy"
    );
    std::fs::remove_file(&model).unwrap();
    let o = load();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("--load") && e.contains("conv.nir") && e.contains("not found"),
        "{e}"
    );
}

#[test]
fn a_nir_conv_net_runs_inference_on_balance_core_and_loihi() {
    let dir = std::env::temp_dir().join(format!("accord-nir-convrun-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let data = image_csv(&dir);
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
            // r = 1: at dt = 1 one step adds the input (at 1e-4 Loihi would hold the conv's
            // weights as zeros, which a run refuses).
            "--dt",
            "1",
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
        (
            "float16.nir",
            "node 'fc1' (Affine): parameter 'weight' holds no value accord can read for shape [5, 4]",
        ),
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
    // Every fixture accord reads, written back by accord: the same graph (conv, pool and
    // Conv1d nodes, neuron kinds and stored shapes included).
    for file in [
        "lif_mlp.nir",
        "if_mlp.nir",
        "conv.nir",
        "conv1d.nir",
        "conv_mnist.nir",
        "pool.nir",
        "recurrent.nir",
        "lif_net.nir",
        "snntorch_cuba.nir",
        "snntorch_digits.nir",
    ] {
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
    nir::write(&out, &Graph::from_layered(&net, nir::DEFAULT_DT).unwrap()).unwrap();
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
    let e = Graph::from_layered(&sigmoid, nir::DEFAULT_DT)
        .unwrap_err()
        .to_string();
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
    // The neurons' decays in Loihi's 12-bit fields at the default step of 10⁻⁴ s: LIF
    // τ = 20 ms → dv = 4096 · 0.005 = 20.48 → 20; the CubaLIF's τ_syn = 5 ms → du + 1 = 81.92.
    let neurons: Vec<(String, u64)> = loihi["neurons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["parameter"].as_str().unwrap().to_string(),
                p["stored"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        neurons,
        [("dv".into(), 20), ("du".into(), 81), ("dv".into(), 20)]
    );
    // TrueNorth's crossbar cores have room for the 3-4-2 net's inputs twice: both layers'
    // inputs duplicated; Loihi (a weight per synapse) duplicates none.
    let truenorth = chips.iter().find(|c| c["chip"] == "truenorth").unwrap();
    let notes = truenorth["notes"].to_string();
    for l in [1, 2] {
        assert!(
            notes.contains(&format!(
                "neuron layer {l}: its inputs duplicated onto 2 axons"
            )),
            "{notes}"
        );
    }
    assert!(!loihi["notes"].to_string().contains("duplicated"));
    let reckon = chips.iter().find(|c| c["chip"] == "reckon").unwrap();
    assert_eq!(reckon["cores"], 1, "packed onto ReckOn's one core");
    let notes = reckon["notes"].to_string();
    assert!(
        notes.contains("no leak") && notes.contains("steady-state current"),
        "{notes}"
    );
    // Each layer's weights in the chip's weight format, with the error it makes: at dt = 1 s
    // an IF neuron with r = 1 takes its weights as they are, and ReckOn's 8-bit weights (6
    // fractional: −2 ..= 127/64) cannot hold every one of the convolution's, counted per
    // stored synapse (a kernel weight once per output position) and bias.
    let c = nir::read(&fixture("conv.nir"))
        .unwrap()
        .to_layered()
        .unwrap();
    let l = &c.net.layers[0];
    let outside = c.masks[0]
        .as_ref()
        .unwrap()
        .iter_ones()
        .map(|k| l.w[k])
        .chain(l.b.iter().copied())
        .filter(|&x| !(-128..=127).contains(&((x * 64.0).round() as i64)))
        .count();
    assert!(outside > 0);
    let o = accord(&[
        "import",
        fixture("conv.nir").to_str().unwrap(),
        "--json",
        "--dt",
        "1",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let chips = v["chips"].as_array().unwrap();
    let reckon = chips.iter().find(|c| c["chip"] == "reckon").unwrap();
    let conv = &reckon["conversion"][0];
    assert_eq!(conv["node"], "conv");
    assert_eq!(conv["saturations"], outside as u64);
    assert!(conv["max_error"].as_f64().unwrap() <= 0.5 / 64.0 + 1e-12);
    let loihi = chips.iter().find(|c| c["chip"] == "loihi").unwrap();
    assert_eq!(loihi["conversion"][0]["saturations"], 0);
    let o = accord(&["import", fixture("conv.nir").to_str().unwrap()]);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("as a layered net: 36-32-3")
            // Its graph: 1×6×6 → 2 channels of 3×3 kernels (4×4 positions, 9 inputs each).
            && text.contains(
                "as a graph: groups 0 'input' 36 | 1 'if1' 32 IF | 2 'fc' 3 graded identity; \
                 projections 0 → 1 'conv' masked (288 of 1152 synapses), 1 → 2 'fc' dense (96 \
                 synapses)"
            )
            && text.contains("expanded into a masked layer")
            && text.contains("placed by receptive field"),
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

/// The NIR net `net` on `chip` (datapath from `make_dp`), its neurons stepped at the `dt` of
/// `reference` (a JSON file beside it) in spiking mode for its ticks, a loop onto a layer as
/// its recurrent projection; with the soma programs chosen and the reference itself.
fn nir_chip_net<D: accord::emulator::Datapath>(
    (net, reference): (&str, &str),
    make_dp: impl FnOnce(&[accord::emulator::PopSpec]) -> D,
    chip: &accord::chip::ChipModel,
) -> (
    accord::emulator::ChipNet<D>,
    Vec<nir::Program>,
    serde_json::Value,
) {
    use accord::emulator::{ChipNet, ChipRule, Encoding, FiringMode, NetSpec, layered_pops};
    let want: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture(reference)).unwrap()).unwrap();
    let g = nir::read(&fixture(net)).unwrap();
    let mut c = g.to_layered().unwrap();
    let d = c.discrete(&g, want["dt"].as_f64().unwrap()).unwrap();
    let programs: Vec<Option<nir::Program>> = d
        .iter()
        .map(|d| d.as_ref().map(|d| d.program(chip.soma)))
        .collect();
    c.apply(&d, &programs);
    let acts: Vec<_> = c.net.layers.iter().map(|l| l.act).collect();
    let mut pops = layered_pops(&acts, &[]);
    for (p, prog) in pops.iter_mut().zip(&programs) {
        p.soma = prog.as_ref().map(|p| p.soma);
    }
    let recurrent = c.recurrent_weights();
    let sizes = c.net.sizes();
    let mapping = accord::mapping::map_net(&sizes, &c.recurrent_layers(), &[], chip).unwrap();
    let mut vars = accord::ledger::VarCounters::default();
    let ticks = want["ticks"].as_u64().unwrap() as u32;
    let spec = NetSpec {
        sizes: &sizes,
        acts: &acts,
        weights: &c.net,
        masks: &[],
        recurrent: &recurrent,
        feedback: None,
        mapping: &mapping,
        mode: FiringMode::Spiking {
            ticks,
            encoding: Encoding::Regular,
        },
        loss: accord::rule::Loss::Mse,
        rule: ChipRule::Balance,
        threads: 1,
        training: false,
    };
    let cn = ChipNet::build(make_dp(&pops), &spec, chip, &mut vars);
    (cn, programs.into_iter().flatten().collect(), want)
}

/// Spike counts per input and layer of the NIR net `net` run on `chip` with the inputs, step
/// and ticks of `reference` ([`nir_chip_net`]), and the soma programs chosen.
fn lif_counts<D: accord::emulator::Datapath>(
    files: (&str, &str),
    make_dp: impl FnOnce(&[accord::emulator::PopSpec]) -> D,
    chip: &accord::chip::ChipModel,
) -> (Vec<Vec<Vec<u32>>>, Vec<nir::Program>) {
    let (mut cn, programs, want) = nir_chip_net(files, make_dp, chip);
    let mut out = Vec::new();
    for (k, x) in want["inputs"].as_array().unwrap().iter().enumerate() {
        let mut t = accord::emulator::Tally::default();
        cn.fire(&floats(x), k as u64, &mut t);
        out.push(cn.state().counts[1..].to_vec());
    }
    (out, programs)
}

/// Spikes that Loihi's fixed point moves against `reference` (Σ |fixed − reference| over
/// inputs, layers and neurons) for the NIR net and inputs of `files`.
fn moved_on_loihi_fixed(files: (&str, &str), reference: &Counts) -> u32 {
    let chip = accord::chip::open("loihi").unwrap();
    let (fixed, _) = lif_counts(
        files,
        |pops| {
            let dp: accord::emulator::FixedNarrow = accord::emulator::fixed_path(
                &chip,
                pops,
                0.01,
                0.0,
                accord::emulator::ChipRule::Balance,
                1,
                &mut accord::ledger::VarCounters::default(),
            )
            .unwrap();
            dp
        },
        &chip,
    );
    fixed
        .iter()
        .flatten()
        .flatten()
        .zip(reference.iter().flatten().flatten())
        .map(|(a, b)| a.abs_diff(*b))
        .sum()
}

/// The hand-written LIF fixture and its NumPy reference (`make_fixtures.py`).
const LIF_NET: (&str, &str) = ("lif_net.nir", "lif_reference.json");

#[test]
fn an_imported_lif_net_spikes_as_the_numpy_reference_in_the_float_twin() {
    let want: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("lif_reference.json")).unwrap())
            .unwrap();
    let reference: Vec<Vec<Vec<u32>>> = serde_json::from_value(want["counts"].clone()).unwrap();
    // Loihi's current-based program runs NIR's LIF exactly: du = 4095 (the current is the
    // input), dv = 4096 / 16 and 4096 / 8 with no quantisation error.
    let chip = accord::chip::open("loihi").unwrap();
    let (float, programs) = lif_counts(
        LIF_NET,
        |pops| accord::emulator::float_path(&chip, pops, 0.01, 0.0, 1),
        &chip,
    );
    let dv: Vec<(u16, f64)> = programs
        .iter()
        .flat_map(|p| &p.params)
        .map(|p| (p.stored, p.error))
        .collect();
    assert_eq!(dv, [(256, 0.0), (512, 0.0)]);
    assert_eq!(float, reference, "spike counts, float twin vs NumPy");
    let total: u32 = reference.iter().flatten().flatten().sum();
    assert!(total > 500, "the reference is not silent: {total} spikes");
    // The chip's own arithmetic (24-bit state, 9-bit weights) moves a few spikes, not many.
    let moved = moved_on_loihi_fixed(LIF_NET, &reference);
    eprintln!("Loihi fixed point moved {moved} of {total} spikes");
    assert!(
        f64::from(moved) <= 0.1 * f64::from(total),
        "fixed point moved {moved} of {total} spikes"
    );
    // balance-core's if program has no leak: the same net spikes differently there, and says so.
    let bc = accord::chip::open("balance-core").unwrap();
    let notes: Vec<String> = lif_counts(
        LIF_NET,
        |pops| accord::emulator::float_path(&bc, pops, 0.01, 0.0, 1),
        &bc,
    )
    .1
    .into_iter()
    .flat_map(|p| p.notes)
    .collect();
    assert!(notes.iter().any(|n| n.contains("no leak")), "{notes:?}");
}

/// The reference counts of `fixtures.1`, and the counts and soma programs of the NIR net
/// `fixtures.0` on Loihi's float twin with the same inputs.
fn loihi_float_twin(fixtures: (&str, &str)) -> (Counts, Counts, Vec<nir::Program>) {
    let want: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture(fixtures.1)).unwrap()).unwrap();
    let reference: Counts = serde_json::from_value(want["counts"].clone()).unwrap();
    let chip = accord::chip::open("loihi").unwrap();
    let (float, programs) = lif_counts(
        fixtures,
        |pops| accord::emulator::float_path(&chip, pops, 0.01, 0.0, 1),
        &chip,
    );
    (reference, float, programs)
}

/// Spike counts per input, layer and neuron.
type Counts = Vec<Vec<Vec<u32>>>;

/// Issue 13's check against a framework's own simulation: a net built and exported by
/// snnTorch (`export_to_nir`, its dt = 1e-4 s) and simulated by snnTorch on the same rate-coded
/// inputs (`make_snntorch.py`, which also checks snnTorch against NumPy's NIR equations).
#[test]
fn an_snntorch_net_spikes_in_the_float_twin_as_snntorch_simulates_it() {
    let (reference, float, programs) =
        loihi_float_twin(("snntorch_lif.nir", "snntorch_reference.json"));
    let total: u32 = reference.iter().flatten().flatten().sum();
    assert!(total > 1000, "the reference is not silent: {total} spikes");
    // β = 15/16 and 7/8: Loihi's 12-bit dv holds them (τ is stored as float32, so the decay is
    // off by about 1e-9 per step).
    let dv: Vec<u16> = programs
        .iter()
        .flat_map(|p| &p.params)
        .map(|p| p.stored)
        .collect();
    assert_eq!(dv, [256, 512]);
    assert_eq!(float, reference, "spike counts, float twin vs snnTorch");
}

/// A current-based net exported by snnTorch (`Synaptic` → CubaLIF nodes, no biases): the float
/// twin follows NIR's CubaLIF equations (an independent NumPy simulation of them), spike for
/// spike (3,021). snnTorch's own simulation gives 1,630: its `Synaptic` zeroes the membrane one
/// step after a spike, which NIR's equations do not (`make_snntorch.py` checks that rule).
#[test]
fn an_snntorch_cuba_net_spikes_in_the_float_twin_as_nirs_equations() {
    let (reference, float, programs) =
        loihi_float_twin(("snntorch_cuba.nir", "snntorch_cuba_ref.json"));
    let total: u32 = reference.iter().flatten().flatten().sum();
    assert!(total > 1000, "the reference is not silent: {total} spikes");
    assert_eq!(
        programs.len(),
        2,
        "both CubaLIF nodes run Loihi's current-based program"
    );
    assert_eq!(
        float, reference,
        "spike counts, float twin vs NIR's CubaLIF equations"
    );
}

/// The same with a net snnTorch trained (64-32-10 on digits by backpropagation through time;
/// 95.8 % on its own hold-out): spike counts on the first 40 digits, neuron by neuron.
#[test]
fn a_trained_snntorch_net_spikes_in_the_float_twin_as_snntorch_simulates_it() {
    let (reference, float, _) =
        loihi_float_twin(("snntorch_digits.nir", "snntorch_digits_ref.json"));
    assert_eq!(reference.len(), 40);
    assert_eq!(float, reference, "spike counts, float twin vs snnTorch");
}

#[test]
fn nodes_that_cannot_run_are_named_with_the_reason() {
    // `file` with node `name` replaced by `node`: the error of taking it as a chain.
    let refused = |file: &str, name: &str, node: Node| -> String {
        let mut g = nir::read(&fixture(file)).unwrap();
        g.nodes.insert(name.into(), node);
        g.to_layered().unwrap_err().to_string()
    };
    let pool = |average, kernel, stride| Node::Pool2d {
        average,
        kernel,
        stride,
        padding: [0, 0],
    };
    // A pooling window larger than its input.
    let e = refused("pool.nir", "pool", pool(true, [9, 9], [1, 1]));
    assert!(
        e.contains("'pool' (AvgPool2d)") && e.contains("does not fit"),
        "{e}"
    );
    // A pooling after a Flatten has no (C, H, W) to pool over.
    let e = refused("conv.nir", "fc", pool(false, [2, 2], [2, 2]));
    assert!(
        e.contains("'fc' (SumPool2d)") && e.contains("(C, H, W)"),
        "{e}"
    );
    // A (damaged) input too large for a dense layer: refused before anything is allocated.
    let e = refused(
        "pool.nir",
        "input",
        Node::Input {
            shape: vec![2, 65536, 65536],
        },
    );
    assert!(e.contains("memory limit"), "{e}");
    // A leaky integrator does not spike: only the read-out.
    let li = Node::Li {
        tau: vec![0.02; 4],
        r: vec![1.0; 4],
        v_leak: vec![0.0; 4],
    };
    let e = refused("lif_mlp.nir", "lif1", li);
    assert!(e.contains("'lif1' (LI)") && e.contains("read-out"), "{e}");
    // A step longer than a time constant, or no step at all.
    let g = nir::read(&fixture("lif_mlp.nir")).unwrap();
    let c = g.to_layered().unwrap();
    let e = c.discrete(&g, 0.01).unwrap_err().to_string();
    assert!(
        e.contains("'lif2' (CubaLIF)") && e.contains("tau_syn"),
        "{e}"
    );
    for dt in [0.0, -1.0, f64::NAN] {
        assert!(c.discrete(&g, dt).is_err(), "dt {dt}");
    }
    // A neuron whose input never reaches its voltage (r = 0).
    let mut g0 = g.clone();
    if let Some(Node::Lif { r, .. }) = g0.nodes.get_mut("lif1") {
        r[2] = 0.0;
    }
    let e = c.discrete(&g0, 1e-4).unwrap_err().to_string();
    assert!(
        e.contains("'lif1' (LIF)") && e.contains("neuron 2") && e.contains("r = 0"),
        "{e}"
    );
    let o = accord(&[
        "import",
        fixture("lif_mlp.nir").to_str().unwrap(),
        "--dt",
        "0.01",
    ]);
    // import reports the graph and why it cannot run, and exits 2 so that a script sees it.
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("accord cannot run this graph") && out.contains("shorter than the step"),
        "{out}"
    );
    for dt in ["0", "-1", "nan"] {
        let o = accord(&[
            "import",
            fixture("lif_mlp.nir").to_str().unwrap(),
            "--dt",
            dt,
        ]);
        assert_eq!(o.status.code(), Some(2), "--dt {dt}");
        assert!(stderr(&o).contains("--dt"), "{}", stderr(&o));
    }
}

/// A recurrent layer spread over many cores spikes exactly as NIR's equations say, and a
/// recurrent net with a split layer below it, on small or packed cores, spikes as it does with
/// one core per layer (the loop's packets find every core of the layer).
#[test]
fn a_recurrent_layer_spikes_the_same_on_any_placement() {
    use accord::emulator::{ChipNet, ChipRule, Encoding, FiringMode, NetSpec, layered_pops};
    let loihi = accord::chip::open("loihi").unwrap();
    let with = |neurons: u32, axons: u32, packed: bool| {
        let mut c = loihi.clone();
        c.core.neurons = neurons;
        c.core.input_axons = axons;
        c.core.external_inputs = packed;
        c.core.recurrent = packed;
        c
    };
    for n in [3, 7] {
        let chip = with(n, 4096, false);
        for files in [
            ("snntorch_rdigits.nir", "snntorch_rdigits_ref.json"),
            ("snntorch_rleaky.nir", "snntorch_rleaky_ref.json"),
        ] {
            let want: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(fixture(files.1)).unwrap()).unwrap();
            let reference: Counts = serde_json::from_value(want["counts"].clone()).unwrap();
            let (counts, _) = lif_counts(
                files,
                |pops| accord::emulator::float_path(&chip, pops, 0.01, 0.0, 1),
                &chip,
            );
            assert_eq!(counts, reference, "{} on {n}-neuron cores", files.0);
        }
    }
    // 40-12-9-4, layer 2 looping: weights on a 1/64 grid (sums exact in any order).
    let sizes = [40usize, 12, 9, 4];
    let grid = |k: usize, salt: usize| (((k * 37 + salt * 11) % 65) as f64 - 30.0) / 64.0;
    let net = accord::rule::LayeredNet {
        layers: sizes
            .windows(2)
            .enumerate()
            .map(|(l, w)| accord::rule::Layer {
                n_in: w[0],
                n_out: w[1],
                w: (0..w[0] * w[1]).map(|k| grid(k, l)).collect(),
                b: (0..w[1]).map(|k| grid(k, l + 7) / 8.0).collect(),
                act: accord::rule::Activation::HardSigmoid,
                balance: Default::default(),
            })
            .collect(),
    };
    let acts: Vec<_> = net.layers.iter().map(|l| l.act).collect();
    let recurrent = vec![None, Some((0..81).map(|k| grid(k, 3)).collect()), None];
    let flags = [false, false, true, false];
    let counts = |chip: &accord::chip::ChipModel| {
        let mapping = accord::mapping::map_net(&sizes, &flags, &[], chip).unwrap();
        let spec = NetSpec {
            sizes: &sizes,
            acts: &acts,
            weights: &net,
            masks: &[],
            recurrent: &recurrent,
            feedback: None,
            mapping: &mapping,
            mode: FiringMode::Spiking {
                ticks: 24,
                encoding: Encoding::Regular,
            },
            loss: accord::rule::Loss::Mse,
            rule: ChipRule::Balance,
            threads: 1,
            training: false,
        };
        let pops = layered_pops(&acts, &[]);
        let dp = accord::emulator::float_path(chip, &pops, 0.01, 0.0, 1);
        let mut cn = ChipNet::build(dp, &spec, chip, &mut accord::ledger::VarCounters::default());
        let runs: Vec<Vec<Vec<u32>>> = (0..10u64)
            .map(|k| {
                let x: Vec<f64> = (0..40)
                    .map(|i| ((i as u64 * 7 + k * 13) % 17) as f64 / 16.0)
                    .collect();
                cn.fire(&x, k, &mut accord::emulator::Tally::default());
                cn.state().counts[1..].to_vec()
            })
            .collect();
        (runs, mapping)
    };
    let (want, m) = counts(&loihi);
    assert!(
        m.layers
            .iter()
            .all(|l| l.chunks.len() == 1 && l.segments.is_empty())
    );
    let total: u32 = want.iter().flatten().flatten().sum();
    assert!(total > 200, "not silent: {total} spikes");
    for (chip, what) in [
        (with(4, 30, false), "4-neuron cores, layer 1 split"),
        (with(2, 25, false), "2-neuron cores, layer 1 split"),
        (with(30, 4096, true), "packed, the loop inside one core"),
        (with(7, 60, true), "packed over several cores"),
    ] {
        let (got, m) = counts(&chip);
        if what.contains("split") {
            assert!(!m.layers[1].segments.is_empty(), "{what}");
            assert!(m.layers[2].chunks.len() > 1, "{what}");
        } else {
            assert!(m.packed, "{what}");
        }
        assert_eq!(got, want, "{what}");
    }
}

/// `--weight-bits` sizes the weight format from every weight of the run, the loop's too: with
/// the loop's weights made the largest, the note names them.
#[test]
fn the_weight_split_holds_a_recurrent_loops_weights() {
    let mut g = nir::read(&fixture("snntorch_rdigits.nir")).unwrap();
    if let Some(Node::Affine { weight, .. }) = g.nodes.get_mut("1.w_rec") {
        weight.data.iter_mut().for_each(|w| *w *= 8.0);
    }
    let path = std::env::temp_dir().join(format!("accord-loop8-{}.nir", std::process::id()));
    nir::write(&path, &g).unwrap();
    // The loop's largest weight as a balance-core run takes it from the file (float32), its
    // neuron's factor folded in.
    let g = nir::read(&path).unwrap();
    let chip = accord::chip::open("balance-core").unwrap();
    let mut c = g.to_layered().unwrap();
    let d = c.discrete(&g, 1e-4).unwrap();
    let programs: Vec<_> = d
        .iter()
        .map(|d| d.as_ref().map(|d| d.program(chip.soma)))
        .collect();
    c.apply(&d, &programs);
    let looped = c.recurrent[0]
        .as_ref()
        .unwrap()
        .w
        .iter()
        .fold(0.0f64, |m, w| m.max(w.abs()));
    let layered = c
        .net
        .layers
        .iter()
        .flat_map(|l| l.w.iter().chain(&l.b))
        .fold(0.0f64, |m, w| m.max(w.abs()));
    assert!(looped > layered, "{looped} vs {layered}");
    let o = accord(&[
        "train",
        "--data",
        "digits",
        "--model",
        path.to_str().unwrap(),
        "--dt",
        "1e-4",
        "--epochs",
        "0",
        "--mode",
        "spiking",
        "--weight-bits",
        "12",
    ]);
    let _ = std::fs::remove_file(&path);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains(&format!("is {looped:.4}")),
        "{looped:.4}: {err}"
    );
}

/// A chain read out by an `LI` node (its steady state linear) trains and infers from the
/// command line like one read out by no node, and a data file of another width is refused
/// naming both widths.
#[test]
fn an_li_read_out_trains_and_a_data_width_mismatch_is_named() {
    let dir = std::env::temp_dir().join(format!("accord-nir-li-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut g = nir::read(&fixture("lif_net.nir")).unwrap();
    g.nodes.insert(
        "lif2".into(),
        Node::Li {
            tau: vec![0.02; 3],
            r: vec![1.0; 3],
            v_leak: vec![0.0; 3],
        },
    );
    let model = dir.join("li.nir");
    nir::write(&model, &g).unwrap();
    let mut csv = String::from("a,b,c,d,e,f,label\n");
    for r in 0..30 {
        let x: Vec<String> = (0..6)
            .map(|j| format!("{:.2}", ((r * 3 + j) % 7) as f64 / 7.0))
            .collect();
        csv.push_str(&format!("{},{}\n", x.join(","), r % 3));
    }
    let data = dir.join("d.csv");
    std::fs::write(&data, csv).unwrap();
    let (m, d) = (model.to_str().unwrap(), data.to_str().unwrap());
    for extra in [
        &["--epochs", "1"][..],
        &["--epochs", "0", "--mode", "spiking"][..],
    ] {
        let mut args = vec!["train", "--data", d, "--model", m, "--json"];
        args.extend(extra);
        let o = accord(&args);
        assert!(o.status.success(), "{extra:?}: {}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(
            v["config"]["loss"], "ce",
            "a linear read-out takes cross-entropy"
        );
    }
    let o = accord(&["train", "--data", "iris", "--model", m]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("takes 6 inputs and gives 3 outputs")
            && e.contains("has 4 inputs and 3 classes"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// A NIR `Conv1d` (written by the Python `nir` package: kernel 3, stride 2, padding 1,
/// dilation 2 over 2 × 12) expands into the dense layer that computes it, checked against
/// NumPy, and writes back as a `Conv1d`.
#[test]
fn a_1d_convolution_expands_into_the_dense_layer_that_computes_it() {
    let g = nir::read(&fixture("conv1d.nir")).unwrap();
    assert_eq!(g.nodes["conv"].kind(), "Conv1d");
    let c = g.to_layered().unwrap();
    // 2×12 → 4×5 (L_out = (12 + 2 − 2·2 − 1) / 2 + 1) → flatten → 3.
    assert_eq!(c.net.sizes(), [24, 20, 3]);
    // Each output sees 2 channels × 3 taps of its window; the taps that fall on the zero
    // padding (the first output's first tap in each channel) are structural zeros too.
    let (name, zeros, all) = &c.expanded[0];
    assert_eq!((name.as_str(), *all), ("conv", 20 * 24));
    assert_eq!(*zeros, 20 * 24 - (20 * 6 - 4 * 2));
    let want: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("conv1d_expected.json")).unwrap())
            .unwrap();
    let x = floats(&want["input"]);
    let l = &c.net.layers[0];
    for (i, y) in floats(&want["output"]).iter().enumerate() {
        let got: f64 = l.b[i] + (0..24).map(|j| l.w[i * 24 + j] * x[j]).sum::<f64>();
        assert!((got - y).abs() < 1e-9, "output {i}: {got} vs NumPy {y}");
    }
    let dir = std::env::temp_dir().join(format!("accord-nir-conv1d-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    nir::write(&dir.join("c.nir"), &g).unwrap();
    let back = nir::read(&dir.join("c.nir")).unwrap();
    assert_eq!(back, g);
    assert_eq!(back.nodes["conv"].kind(), "Conv1d");
    assert_eq!(back.shapes["if1"], [4, 5]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A chain as a run starts from it: read, converted, its neurons folded in at `dt` with no
/// chip program (the `f64` reference's start).
fn started(file: &str) -> (Graph, nir::Chain, Vec<Option<nir::Discrete>>) {
    let g = nir::read(&fixture(file)).unwrap();
    let mut chain = g.to_layered().unwrap();
    let d = chain.discrete(&g, nir::DEFAULT_DT).unwrap();
    chain.apply(&d, &[]);
    (g, chain, d)
}

/// Issue 13's round trip for trained nets: `Chain::export` writes a net back into the graph
/// it was read from. Untouched layers keep the file's nodes (a conv stays a conv); a trained
/// dense layer keeps its node with the neurons' factors taken out (read and folded again, it
/// is the trained layer); a trained conv, whose expanded synapses no longer share a kernel,
/// becomes a Flatten and an Affine, and the layer after it, which read the conv's shape, too.
#[test]
fn a_trained_chain_is_written_back_into_its_graph() {
    let dir = std::env::temp_dir().join(format!("accord-nir-back-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Untrained: the file's own graph, node for node.
    let (g, chain, d) = started("conv_mnist.nir");
    let e = chain.export(&g, &d, &[], &chain.net, 1e-12).unwrap();
    assert_eq!(e.graph, g);
    assert!(e.layers.iter().all(|(_, w)| *w == nir::Written::Unchanged));
    // One conv synapse trained: the conv and the pool after it are written dense.
    let mut net = chain.net.clone();
    let at = chain.masks[0].as_ref().unwrap().first_one().unwrap();
    net.layers[0].w[at] += 0.25;
    let e = chain.export(&g, &d, &[], &net, 1e-12).unwrap();
    assert!(
        matches!(&e.layers[0].1, nir::Written::Dense { node, zeros: 437_184, cells: 451_584 } if node == "conv"),
        "{:?}",
        e.layers
    );
    assert!(
        matches!(&e.layers[1].1, nir::Written::Dense { node, zeros: 0, .. } if node == "pool_fc")
    );
    assert_eq!(e.graph.nodes["conv"].kind(), "Affine");
    assert_eq!(e.graph.nodes["conv_flat"].kind(), "Flatten");
    assert_eq!(e.graph.nodes["if1"].kind(), "IF");
    assert!(!e.graph.nodes.contains_key("pool") && !e.graph.nodes.contains_key("flat"));
    let out = dir.join("conv_trained.nir");
    nir::write(&out, &e.graph).unwrap();
    let back = nir::read(&out).unwrap();
    assert_eq!(
        back.chain_order().unwrap(),
        ["input", "conv_flat", "conv", "if1", "pool_fc", "output"]
    );
    let mut again = back.to_layered().unwrap();
    let d2 = again.discrete(&back, nir::DEFAULT_DT).unwrap();
    again.apply(&d2, &[]);
    for (a, b) in net.layers.iter().zip(&again.net.layers) {
        for (x, y) in a.w.iter().chain(&a.b).zip(b.w.iter().chain(&b.b)) {
            assert!((x - y).abs() <= 1e-6 * x.abs().max(1.0), "{x} vs {y}");
        }
    }
    // A LIF net: the LIF nodes stay, the trained Affine holds the weights before the fold.
    let (g, chain, d) = started("snntorch_digits.nir");
    let mut net = chain.net.clone();
    net.layers[1].w[3] += 0.5;
    net.layers[1].b[2] -= 0.125;
    let e = chain.export(&g, &d, &[], &net, 1e-12).unwrap();
    assert_eq!(e.layers[0].1, nir::Written::Unchanged);
    assert_eq!(e.layers[1].1, nir::Written::Updated);
    for n in ["1", "3"] {
        assert_eq!(e.graph.nodes[n], g.nodes[n], "neuron node {n}");
    }
    let out = dir.join("lif_trained.nir");
    nir::write(&out, &e.graph).unwrap();
    let back = nir::read(&out).unwrap();
    let mut again = back.to_layered().unwrap();
    let d2 = again.discrete(&back, nir::DEFAULT_DT).unwrap();
    again.apply(&d2, &[]);
    for (x, y) in net.layers[1].w.iter().zip(&again.net.layers[1].w) {
        assert!((x - y).abs() <= 1e-6 * x.abs().max(1.0), "{x} vs {y}");
    }
    for (x, y) in net.layers[1].b.iter().zip(&again.net.layers[1].b) {
        assert!((x - y).abs() <= 1e-6 * x.abs().max(1.0), "{x} vs {y}");
    }
    // A Linear node stays Linear while its bias is 0, and becomes an Affine when it is not.
    let (g, chain, d) = started("lif_mlp.nir");
    let mut net = chain.net.clone();
    net.layers[1].w[0] += 0.5;
    let e = chain.export(&g, &d, &[], &net, 1e-12).unwrap();
    assert_eq!(e.graph.nodes["fc2"].kind(), "Linear");
    net.layers[1].b[0] += 0.5;
    let e = chain.export(&g, &d, &[], &net, 1e-12).unwrap();
    assert_eq!(e.graph.nodes["fc2"].kind(), "Affine");
    // A net of another shape, a recurrent chain: refused, named.
    let other = accord::rule::LayeredNet::glorot(
        &[3, 5, 2],
        &[
            accord::rule::Activation::HardSigmoid,
            accord::rule::Activation::Identity,
        ],
        1,
    );
    let err = chain
        .export(&g, &d, &[], &other, 1e-12)
        .unwrap_err()
        .to_string();
    assert!(err.contains("3-5-2") && err.contains("3-4-2"), "{err}");
    let (g, chain, d) = started("recurrent.nir");
    let err = chain
        .export(&g, &d, &[], &chain.net, 1e-12)
        .unwrap_err()
        .to_string();
    assert!(err.contains("recurrent"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `train --model F --epochs 0 --save` keeps the net it started from, and `export` writes
/// it back as F's own graph (a LIF net keeps its LIF nodes); after training, the layers hold
/// the trained weights and the run from the written file equals the run from the checkpoint.
#[test]
fn export_writes_a_model_run_back_into_its_file() {
    let dir = std::env::temp_dir().join(format!("accord-nir-mexp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = fixture("snntorch_digits.nir");
    let m = model.to_str().unwrap();
    let run = |args: &[&str]| {
        let o = accord(args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let (ck0, out0) = (dir.join("e0.ckpt"), dir.join("e0.nir"));
    let (c0, o0) = (ck0.to_str().unwrap(), out0.to_str().unwrap());
    run(&[
        "train", "--data", "digits", "--model", m, "--epochs", "0", "--save", c0,
    ]);
    assert!(ck0.exists(), "--epochs 0 --save writes the start net");
    // So does a native net, on a chip and in the f64 reference; it resumes from there.
    for extra in [&[][..], &["--reference"][..]] {
        let ck = dir.join("native.ckpt");
        let c = ck.to_str().unwrap();
        let mut a = vec!["train", "--data", "iris", "--hidden", "4", "--epochs", "0"];
        a.extend(extra);
        a.extend(["--save", c, "--force"]);
        run(&a);
        assert!(ck.exists(), "{extra:?}");
        run(&["train", "--resume", c, "--epochs", "1"]);
        std::fs::remove_file(&ck).unwrap();
    }
    let said = run(&["export", "--load", c0, "--out", o0]);
    assert!(
        said.contains("0: as in") && said.contains("2: as in"),
        "{said}"
    );
    assert_eq!(nir::read(&out0).unwrap(), nir::read(&model).unwrap());
    let (ck1, out1) = (dir.join("e1.ckpt"), dir.join("e1.nir"));
    let (c1, o1) = (ck1.to_str().unwrap(), out1.to_str().unwrap());
    run(&[
        "train", "--data", "digits", "--model", m, "--epochs", "1", "--save", c1,
    ]);
    let said = run(&["export", "--load", c1, "--out", o1]);
    assert!(said.contains("0: the trained weights"), "{said}");
    let back = nir::read(&out1).unwrap();
    assert_eq!(back.nodes["1"].kind(), "LIF");
    let acc = |args: &[&str]| {
        let mut a = vec!["train", "--data", "digits", "--epochs", "0", "--json"];
        a.extend(args);
        let v: serde_json::Value = serde_json::from_str(&run(&a)).unwrap();
        v["test_accuracy"].clone()
    };
    assert_eq!(acc(&["--load", c1]), acc(&["--model", o1]));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A `--model` run shows how the file's weights go into the chip's format, as `import` does,
/// warns where values are flushed or saturated, and refuses an inference run whose layer the
/// chip would hold as zeros (a step so small that the folded factors vanish).
#[test]
fn a_model_run_reports_its_conversion_and_refuses_a_net_of_zeros() {
    let m = fixture("snntorch_digits.nir");
    let m = m.to_str().unwrap();
    let base = ["train", "--data", "digits", "--model", m, "--epochs"];
    let o = accord(&[&base[..], &["0"]].concat());
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("note: --model")
            && err.contains("0: weights and biases")
            && err.contains("in 16 bits, 12 fractional"),
        "{err}"
    );
    let o = accord(&[&base[..], &["0", "--dt", "1e-300"]].concat());
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("2080 of 2080 non-zero flushed to 0") && err.contains("stored as 0"),
        "{err}"
    );
    // Training may start from zeros; it is said.
    let o = accord(&[&base[..], &["1", "--dt", "1e-300"]].concat());
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("warning: --model") && err.contains("the layer starts from zero"),
        "{err}"
    );
}

/// `accord map` and `accord import` on a crossbar chip report how the weights fit it, and
/// their figures are the ones a run reports (the same layout and fit): the Glorot start of a
/// `--hidden` net, a `--model`'s folded weights.
#[test]
fn map_and_import_report_the_crossbar_fit_a_run_makes() {
    let dir = crate::support::scratch("crossbar-fit");
    let data = image_csv(&dir);
    let model = fixture("conv.nir");
    let (d, m) = (data.to_str().unwrap(), model.to_str().unwrap());
    let json = |args: &[&str]| -> serde_json::Value {
        let o = accord(args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    // (connected, slots, relative error to 3 decimals) per layer, from a run's notes.
    let from_run = |v: &serde_json::Value| -> Vec<(u64, u64, String)> {
        v["notes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|n| n.as_str()?.strip_prefix("CROSSBAR: "))
            .map(|n| {
                let w: Vec<&str> = n.split_whitespace().collect();
                let at = w.iter().position(|x| *x == "synapses").unwrap();
                let e = n.split("‖W‖ = ").nth(1).unwrap();
                (
                    w[at - 3].parse().unwrap(),
                    w[at - 1].parse().unwrap(),
                    e[..5].to_string(),
                )
            })
            .collect()
    };
    let from_map = |v: &serde_json::Value| -> Vec<(u64, u64, String)> {
        v["crossbar"]["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["connected"].as_u64().unwrap(),
                    l["synapses"].as_u64().unwrap(),
                    format!("{:.3}", l["relative_error"].as_f64().unwrap()),
                )
            })
            .collect()
    };
    let run = json(&[
        "train",
        "--data",
        "digits",
        "--hidden",
        "16",
        "--activation",
        "hard-sigmoid",
        "--epochs",
        "0",
        "--chip",
        "truenorth",
        "--mode",
        "spiking",
        "--json",
    ]);
    let map = json(&[
        "map",
        "--chip",
        "truenorth",
        "--data",
        "digits",
        "--hidden",
        "16",
        "--json",
    ]);
    let fits = from_map(&map);
    assert_eq!(fits.len(), 2);
    assert_eq!(fits, from_run(&run));
    let run = json(&[
        "train",
        "--data",
        d,
        "--model",
        m,
        "--dt",
        "1",
        "--epochs",
        "0",
        "--chip",
        "truenorth",
        "--mode",
        "spiking",
        "--json",
    ]);
    let map = json(&[
        "map",
        "--chip",
        "truenorth",
        "--model",
        m,
        "--dt",
        "1",
        "--json",
    ]);
    assert_eq!(from_map(&map), from_run(&run));
    assert!(
        map["crossbar"]["weights"]
            .as_str()
            .unwrap()
            .contains("--model")
    );
    // map --model keeps the file's names and neuron kinds.
    let pop = &map["graph"]["groups"][1]["populations"][0];
    assert_eq!(pop["name"], "if1");
    assert_eq!(pop["kind"]["model"], "if");
    assert_eq!(map["graph"]["projections"][0]["name"], "conv");
    // import: the same figures on its truenorth row; none on a chip without a crossbar.
    let imp = json(&["import", m, "--dt", "1", "--json"]);
    let chips = imp["chips"].as_array().unwrap();
    let row = |name: &str| chips.iter().find(|c| c["chip"] == name).unwrap();
    let tn: Vec<(u64, u64)> = row("truenorth")["crossbar"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["connected"].as_u64().unwrap(),
                l["synapses"].as_u64().unwrap(),
            )
        })
        .collect();
    let want: Vec<(u64, u64)> = from_map(&map).iter().map(|f| (f.0, f.1)).collect();
    assert_eq!(tn, want);
    assert!(row("loihi")["crossbar"].as_array().unwrap().is_empty());
    // Per chip, whether the graph trains there, or what stops it.
    let says = |name: &str, what: &str| {
        row(name)["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().starts_with(what))
    };
    assert!(says("balance-core", "trains on the chip"));
    assert!(says("loihi", "trains on the chip"));
    assert!(says("truenorth", "inference only: the crossbar"));
    let imp = json(&[
        "import",
        fixture("recurrent.nir").to_str().unwrap(),
        "--json",
    ]);
    let rows = imp["chips"].as_array().unwrap();
    let bc = rows.iter().find(|c| c["chip"] == "balance-core").unwrap();
    assert!(
        bc["notes"].as_array().unwrap().iter().any(|n| n
            .as_str()
            .unwrap()
            .starts_with("inference only: node 'rec'")),
        "{bc}"
    );
}

/// `accord map` prices a split fan-in per firing step: at most one partial sum per neuron and
/// segment, its links and its add at the soma core (closed form from the chip's prices), and
/// that bound is what the engine sends when every segment's sum is non-zero (positive
/// inputs): graded inference sends exactly `packets` partial sums per sample.
#[test]
fn a_split_is_priced_in_the_mapping_as_the_engine_sends_it() {
    let dir = crate::support::scratch("split-cost");
    let data = dir.join("pos.csv");
    let mut text = String::new();
    for r in 0..45 {
        let row: Vec<String> = (0..40)
            .map(|j| format!("{}", 1 + (r * 7 + j * 3) % 9))
            .collect();
        text.push_str(&format!("{},{}\n", row.join(","), r % 3));
    }
    std::fs::write(&data, text).unwrap();
    let d = data.to_str().unwrap();
    let json = |args: &[&str]| -> serde_json::Value {
        let o = accord(args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let set = ["--set", "core.input_axons=16"];
    let map = json(&[&["map", "--data", d, "--hidden", "6", "--json"][..], &set].concat());
    let splits = map["splits"].as_array().unwrap();
    assert_eq!(splits.len(), 1);
    let s = &splits[0];
    // 40 inputs over 16 axons: 3 segments for each of the 6 neurons.
    assert_eq!(
        (s["layer"].as_u64(), s["segments"].as_u64()),
        (Some(1), Some(3))
    );
    let packets = s["packets"].as_u64().unwrap();
    assert_eq!(packets, 18);
    // The closed form from balance-core's prices (pJ): spike packet 8.1, SOP 1.13, hop 10.2;
    // back: retrograde packet 5.6 and the δ's neuron-memory write (0.15625 pJ a bit).
    let hops = s["hops"].as_u64().unwrap() as f64;
    let forward = s["forward_pj"].as_f64().unwrap();
    assert!(
        (forward - (18.0 * (8.1 + 1.13) + hops * 10.2)).abs() < 1e-9,
        "{forward}"
    );
    assert!(s["backward_pj"].as_f64().unwrap() > hops * 10.2 + 18.0 * 5.6);
    let run = json(
        &[
            &[
                "train",
                "--data",
                d,
                "--hidden",
                "6",
                "--activation",
                "hard-sigmoid",
                "--epochs",
                "0",
                "--json",
            ][..],
            &set,
        ]
        .concat(),
    );
    let samples = run["config"]["test_samples"].as_u64().unwrap();
    assert_eq!(
        run["mesh"]["inference"]["partial_packets"].as_u64(),
        Some(packets * samples)
    );
    assert_eq!(run["mapping"]["layers"], map["mapping"]["layers"]);
}

/// An inference run of given weights prints the same weights' accuracy in the `f64`
/// reference beside the chip's: for a net the reference trained, the reference's own final
/// figure.
#[test]
fn an_inference_run_shows_the_f64_reference_beside_the_chip() {
    let dir = crate::support::scratch("inference-ref");
    let ck = dir.join("ref.ckpt");
    let c = ck.to_str().unwrap();
    let json = |args: &[&str]| -> serde_json::Value {
        let o = accord(args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let trained = json(&[
        "train",
        "--data",
        "digits",
        "--hidden",
        "16",
        "--activation",
        "hard-sigmoid",
        "--epochs",
        "1",
        "--reference",
        "--save",
        c,
        "--json",
    ]);
    let run = json(&[
        "train", "--data", "digits", "--load", c, "--epochs", "0", "--json",
    ]);
    assert_eq!(run["reference_test_accuracy"], trained["test_accuracy"]);
    assert!(run["test_accuracy"].as_f64().unwrap() > 0.5);
    // A training run has no such line: its weights move.
    let run = json(&[
        "train", "--data", "digits", "--load", c, "--epochs", "1", "--json",
    ]);
    assert!(run.get("reference_test_accuracy").is_none());
}
