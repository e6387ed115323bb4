//! Dendritic accumulation (`core.neuron_fanin`, `core.dendrite_compartments`): a neuron whose
//! fan-in exceeds one compartment's synapses is built of compartments on its core, joined in
//! its dendrite within the timestep — neuron slots and compartment updates, no partial-sum
//! packets, no extra timestep — or, past its compartments, split across cores as before.

use crate::support::{accord, stderr};

fn json(args: &[&str]) -> serde_json::Value {
    let o = accord(args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// `accord map` of MNIST 784-128-10 on balance-core with `sets`.
fn map_mnist_args<'a>(sets: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "map",
        "--chip",
        "balance-core",
        "--data",
        "mnist",
        "--hidden",
        "128",
    ];
    for s in sets {
        args.extend(["--set", s]);
    }
    args
}

fn map_mnist(sets: &[&str]) -> serde_json::Value {
    let mut args = map_mnist_args(sets);
    args.push("--json");
    json(&args)["mapping"].clone()
}

/// MNIST 784-128-10 on balance-core with 256 synapses per compartment: with 4 compartments a
/// hidden neuron takes 4 slots on its core (64 a core, 2 cores); with one, the fan-in is split
/// over 4 dendrite segments on other cores.
#[test]
fn a_fan_in_over_a_compartment_is_built_of_compartments_or_split_across_cores() {
    let m = map_mnist(&["core.neuron_fanin=256", "core.dendrite_compartments=4"]);
    let l1 = &m["layers"][1];
    assert_eq!(l1["compartments"], 4);
    assert_eq!(l1["segments"].as_array().unwrap().len(), 0);
    assert_eq!(l1["max_chunk"], 256 / 4);
    assert_eq!(l1["limited_by"], "neurons");
    assert_eq!(l1["cores"].as_array().unwrap().len(), 2);
    for c in m["cores"].as_array().unwrap() {
        if c["layer"] == 1 {
            // 64 neurons × 4 compartments of 256 slots.
            assert_eq!(c["neurons"], 64);
            assert_eq!(c["neurons_util"], 1.0);
        }
    }
    // The pressure counts slots: 64 neurons of 4 compartments fill a core.
    let neurons = m["pressure"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["resource"] == "neurons")
        .unwrap();
    assert_eq!(
        (neurons["used"].as_u64(), neurons["layer"].as_u64()),
        (Some(256), Some(1))
    );
    // The read-out's 128 inputs fit one compartment: left out of the JSON.
    assert!(m["layers"][2].get("compartments").is_none());
    let split = map_mnist(&["core.neuron_fanin=256"]);
    assert!(split["layers"][1].get("compartments").is_none());
    assert_eq!(split["layers"][1]["segments"].as_array().unwrap().len(), 4);
    // Without the per-neuron limit: neither.
    let plain = map_mnist(&[]);
    assert_eq!(plain["layers"][1]["segments"].as_array().unwrap().len(), 0);
    assert!(plain["layers"][1].get("compartments").is_none());
    let o = accord(&map_mnist_args(&[
        "core.neuron_fanin=256",
        "core.dendrite_compartments=4",
    ]));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains(
            "dendritic accumulation: layer 1's neurons take more than 256 synapses \
             (core.neuron_fanin): each is built of 4 compartments on its core"
        ),
        "{text}"
    );
}

/// The same iris run three ways: compartments change the neuron updates by the closed form and
/// nothing else; a split instead adds partial sums and a timestep.
#[test]
fn compartments_cost_an_update_each_and_change_nothing_computed() {
    let run = |sets: &[&str]| {
        let mut args = vec![
            "train", "--data", "iris", "--hidden", "16", "--epochs", "2", "--lr", "0.1", "--json",
        ];
        for s in sets {
            args.extend(["--set", s]);
        }
        json(&args)
    };
    let plain = run(&[]);
    // 2 synapses per compartment, up to 8: layer 1 (fan-in 4) takes 2, layer 2 (16) takes 8.
    let comp = run(&["core.neuron_fanin=2", "core.dendrite_compartments=8"]);
    let layers = &comp["mapping"]["layers"];
    assert_eq!(layers[1]["compartments"], 2);
    assert_eq!(layers[2]["compartments"], 8);
    assert_eq!(plain["test_accuracy"], comp["test_accuracy"]);
    assert_eq!(
        plain["timescales"]["timesteps_per_inference_sample"],
        comp["timescales"]["timesteps_per_inference_sample"]
    );
    let get = |v: &serde_json::Value, phase: &str, key: &str| {
        v["ledger"][phase][key]
            .as_u64()
            .unwrap_or_else(|| panic!("{phase} {key}"))
    };
    let samples = comp["config"]["test_samples"].as_u64().unwrap();
    for key in ["sop", "spike_packet", "weight_update"] {
        for phase in ["training", "inference"] {
            assert_eq!(
                get(&plain, phase, key),
                get(&comp, phase, key),
                "{phase} {key}"
            );
        }
    }
    let updates = |v: &serde_json::Value| {
        get(v, "inference", "neuron_update_active") + get(v, "inference", "neuron_update_idle")
    };
    // One update per neuron and sample before (16 + 3); one per compartment now.
    assert_eq!(updates(&plain), samples * (16 + 3));
    assert_eq!(updates(&comp), samples * (16 * 2 + 3 * 8));
    assert!(
        comp["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().starts_with(
                "COMPARTMENTS: neurons built of compartments joined in the dendrite (layer 1's of \
                 2, layer 2's of 8)"
            )),
        "{}",
        comp["notes"]
    );
    // One compartment of 2 synapses: both layers split across cores instead, a timestep each
    // for the partial sums.
    let split = run(&["core.neuron_fanin=2"]);
    assert!(
        split["mapping"]["layers"][2]["segments"]
            .as_array()
            .unwrap()
            .len()
            > 1
    );
    let steps = |v: &serde_json::Value| {
        v["timescales"]["timesteps_per_inference_sample"]
            .as_f64()
            .unwrap()
    };
    assert_eq!(steps(&split), steps(&plain) + 2.0);
    assert_eq!(updates(&split), updates(&plain));
    // Up to 2 compartments of 2: layer 1 (4 inputs) is built of 2; layer 2's 16 inputs are
    // split over 4 segments of 4, each neuron there built of 2 compartments joined before the
    // partial sum leaves: 16 × 2 + 3 soma updates and 4 × 3 joins a sample, one timestep more.
    let both = run(&["core.neuron_fanin=2", "core.dendrite_compartments=2"]);
    let layers = &both["mapping"]["layers"];
    assert_eq!(layers[1]["compartments"], 2);
    assert_eq!(layers[2]["compartments"], 2);
    assert_eq!(layers[2]["segments"].as_array().unwrap().len(), 4);
    assert_eq!(updates(&both), samples * (16 * 2 + 3 + 4 * 3));
    assert_eq!(steps(&both), steps(&plain) + 1.0);
    assert_eq!(plain["test_accuracy"], both["test_accuracy"]);
    assert!(get(&split, "inference", "spike_packet") > get(&plain, "inference", "spike_packet"));
}

/// Bad declarations are refused by key; a neuron that needs more compartments than a core has
/// slots is refused by layer.
#[test]
fn compartment_declarations_that_cannot_hold_are_refused() {
    for (set, key) in [
        ("core.dendrite_compartments=0", "core.dendrite_compartments"),
        (
            "core.dendrite_compartments=5000",
            "core.dendrite_compartments",
        ),
        ("core.neuron_fanin=0", "core.neuron_fanin"),
    ] {
        let o = accord(&[
            "map",
            "--chip",
            "balance-core",
            "--data",
            "iris",
            "--set",
            set,
        ]);
        assert!(!o.status.success(), "{set}");
        assert!(stderr(&o).contains(key), "{set}: {}", stderr(&o));
    }
    let o = accord(&[
        "map",
        "--chip",
        "balance-core",
        "--data",
        "iris",
        "--hidden",
        "4",
        "--set",
        "core.neurons=3",
        "--set",
        "core.neuron_fanin=1",
        "--set",
        "core.dendrite_compartments=4",
    ]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("a neuron of layer 1 is built of 4 compartments")
            && e.contains("3 neuron slots"),
        "{e}"
    );
}
