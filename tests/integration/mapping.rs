//! Mapping a layered network onto a chip: closed-form placements on small nets, the MNIST net on
//! the shipped chips, every infeasibility as a clear error, and (by property test) every mapping
//! respects every capacity and places every neuron exactly once.

use crate::support::accord;

use accord::chip::{self, ChipModel, Mesh};
use accord::mapping::{
    MapError, Mapping, Placement, Segment, map_layered, map_net, map_net_opts, map_net_with,
};
use proptest::prelude::*;

/// `balance-core` with its capacities and mesh replaced.
fn chip_with(neurons: u32, synapses: u32, axons: u32, fanout: u32, mesh: (u32, u32)) -> ChipModel {
    let mut c = chip::open("balance-core").expect("shipped model");
    c.name = "toy".into();
    c.core.neurons = neurons;
    c.core.synapses = synapses;
    c.core.input_axons = axons;
    c.core.fanout = fanout;
    c.mesh = Mesh {
        cols: mesh.0,
        rows: mesh.1,
    };
    c
}

fn lens(m: &Mapping, layer: usize) -> Vec<usize> {
    m.layers[layer].chunks.iter().map(|c| c.len).collect()
}

fn core(m: &Mapping, id: usize) -> &accord::mapping::CoreUse {
    m.cores.iter().find(|c| c.core == id).expect("core used")
}

/// Sizes 4-6-2 on 3-neuron cores (ample synapses, axons, fan-out), 4 x 2 mesh:
///
/// * layer 2: 2 neurons, fan-in 6 → 1 core; layer 1: 6 neurons → 2 cores of 3;
///   layer 0: 4 relays, each needs 2 routing entries (2 cores in layer 1) → 2 cores of 2.
/// * snake order on a 4-wide mesh: 0 1 2 3 | 7 6 5 4 → layer 0 on cores 0,1, layer 1 on 2,3,
///   layer 2 on core 7 at (3,1).
/// * routes (neuron, dest core): core 0 (x0) → core 2 (x2): 2 hops, → core 3: 3 hops;
///   core 1 → 2: 1, → 3: 2; each carries 2 neurons. Core 2 (2,0) → 7 (3,1): 2 hops; core 3
///   (3,0) → 7: 1 hop; each carries 3 neurons.
///   h1 = 2 + 3 = 5, h2 = 2 + 2 + 3 = 7, h3 = 2; total 14 = 4·2 + 6·1; mean 25/14.
#[test]
fn closed_form_4_6_2_on_three_neuron_cores() {
    let m = map_layered(&[4, 6, 2], &chip_with(3, 1000, 100, 100, (4, 2))).expect("fits");
    assert_eq!(m.cores_used(), 5);
    assert_eq!(lens(&m, 0), [2, 2]);
    assert_eq!(lens(&m, 1), [3, 3]);
    assert_eq!(lens(&m, 2), [2]);
    assert_eq!(m.dest_cores(0), [0, 1]);
    assert_eq!(m.dest_cores(1), [2, 3]);
    assert_eq!(m.dest_cores(2), [7]);
    let ids: Vec<usize> = m.cores.iter().map(|c| c.core).collect();
    assert_eq!(ids, [0, 1, 2, 3, 7], "core-id order");
    // Input relays: no synapses, no axons; 2 routing entries each.
    for id in [0, 1] {
        let c = core(&m, id);
        assert_eq!(
            (c.layer, c.neurons, c.synapses, c.input_axons, c.fanout),
            (0, 2, 0, 0, 4)
        );
    }
    // Hidden: 3 neurons × fan-in 4 = 12 synapses, 4 axons, 3 × 1 routing entries.
    for id in [2, 3] {
        let c = core(&m, id);
        assert_eq!(
            (c.layer, c.neurons, c.synapses, c.input_axons, c.fanout),
            (1, 3, 12, 4, 3)
        );
    }
    // Output: 2 × 6 = 12 synapses, 6 axons, no fan-out.
    let c = core(&m, 7);
    assert_eq!((c.x, c.y), (3, 1));
    assert_eq!(
        (c.layer, c.neurons, c.synapses, c.input_axons, c.fanout),
        (2, 2, 12, 6, 0)
    );
    assert!((c.neurons_util - 2.0 / 3.0).abs() < 1e-12);
    assert!((c.synapses_util - 0.012).abs() < 1e-12);
    assert_eq!(m.hop_histogram, [0, 5, 7, 2]);
    assert_eq!(m.total_routes, 14);
    assert_eq!(m.max_hops, 3);
    assert!((m.mean_hops - 25.0 / 14.0).abs() < 1e-12);
    assert_eq!(m.core_of(1, 4), 3);
    assert_eq!(m.hops(0, 7), 4);
}

/// Same net with only 3 routing entries per core: a layer-0 relay needs 2 (one per hidden
/// core), so a core takes ⌊3/2⌋ = 1 relay → 4 input cores (0..3), hidden on 7,6, output on 5.
/// Hidden cores use 3 × 1 = 3 entries: exactly full.
#[test]
fn fanout_limit_shrinks_the_chunks_of_the_layer_before() {
    let m = map_layered(&[4, 6, 2], &chip_with(3, 1000, 100, 3, (4, 2))).expect("fits");
    assert_eq!(lens(&m, 0), [1, 1, 1, 1]);
    assert_eq!(
        (m.layers[0].max_chunk, m.layers[0].limited_by),
        (1, "fanout")
    );
    assert_eq!(m.dest_cores(0), [0, 1, 2, 3]);
    assert_eq!(m.dest_cores(1), [7, 6]);
    assert_eq!(m.dest_cores(2), [5]);
    assert_eq!(core(&m, 2).fanout, 2);
    assert_eq!(core(&m, 7).fanout, 3);
    let fan = m
        .pressure
        .iter()
        .find(|p| p.resource == "fanout")
        .expect("fanout");
    assert_eq!((fan.core, fan.used, fan.capacity), (6, 3, 3));
    assert!((fan.utilisation - 1.0).abs() < 1e-12);
}

/// Synapse memory limits the chunk: fan-in 10, 35 synapses → 3 neurons per core.
#[test]
fn synapse_memory_limits_the_chunk() {
    let m = map_layered(&[10, 7], &chip_with(16, 35, 16, 100, (4, 4))).expect("fits");
    assert_eq!(lens(&m, 1), [3, 2, 2]);
    assert_eq!(core(&m, 1).synapses, 30);
}

/// MNIST 784-128-10 on balance-core (256 neurons, 65 536 synapses, 1024 axons and fan-out,
/// 4 x 4): hidden chunks ≤ ⌊65536/784⌋ = 83 → 2 cores of 64; inputs ≤ 256 → 4 cores of 196;
/// outputs 1 core. 7 of 16 cores.
#[test]
fn mnist_on_balance_core_uses_seven_cores() {
    let m = map_layered(&[784, 128, 10], &chip::open("balance-core").unwrap()).expect("fits");
    assert_eq!(m.cores_used(), 7);
    assert_eq!(lens(&m, 0), [196; 4]);
    assert_eq!(lens(&m, 1), [64, 64]);
    assert_eq!(lens(&m, 2), [10]);
    let limits: Vec<(usize, &str)> = m
        .layers
        .iter()
        .map(|l| (l.max_chunk, l.limited_by))
        .collect();
    assert_eq!(
        limits,
        [(256, "neurons"), (83, "synapses"), (256, "neurons")]
    );
    assert_eq!(m.dest_cores(1), [7, 6]);
    assert_eq!(m.dest_cores(2), [5]);
    let syn = m
        .pressure
        .iter()
        .find(|p| p.resource == "synapses")
        .unwrap();
    assert_eq!(syn.used, 64 * 784);
    assert_eq!(m.total_routes, 784 * 2 + 128);
}

/// On Loihi (1024 neurons, 116 508 synapses ≥ 128 × 784, 4096 axons) every layer fits one core.
#[test]
fn mnist_on_loihi_uses_three_cores() {
    let m = map_layered(&[784, 128, 10], &chip::open("loihi").unwrap()).expect("fits");
    assert_eq!(m.cores_used(), 3);
    assert_eq!(m.dest_cores(0), [0]);
    assert_eq!(m.dest_cores(1), [1]);
    assert_eq!(m.dest_cores(2), [2]);
    assert_eq!(m.hop_histogram, [0, 784 + 128]);
}

/// `--no-duplicate-inputs` gives every input one axon on a crossbar chip (the mapping of the
/// library's `map_net_opts(.., false)`), and is refused where it changes nothing: on a chip
/// with a weight per synapse and beside `--reference`.
#[test]
fn duplicated_inputs_can_be_turned_off() {
    let chip = chip::open("truenorth").unwrap();
    let sizes = [784, 128, 10];
    let single = map_net_opts(&sizes, &[], &[], &chip, Placement::FewestCores, false).unwrap();
    assert!(single.layers.iter().all(|lp| lp.copies == 1));
    assert_eq!(single.total_routes, 784 + 4 * 128 + 128);
    assert_eq!(single.cores[9].input_axons, 128);
    let map = |extra: &[&str]| {
        let mut args = vec![
            "map",
            "--chip",
            "truenorth",
            "--data",
            "mnist",
            "--hidden",
            "128",
        ];
        args.extend_from_slice(extra);
        args.push("--json");
        let o = accord(&args);
        assert!(o.status.success(), "{}", crate::support::stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["mapping"]["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["copies"].as_u64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(map(&[]), [1, 1, 2]);
    assert_eq!(map(&["--no-duplicate-inputs"]), [1, 1, 1]);
    let o = accord(&["map", "--hidden", "8", "--no-duplicate-inputs"]);
    assert!(!o.status.success());
    let e = crate::support::stderr(&o);
    assert!(
        e.contains("--no-duplicate-inputs") && e.contains("weight per synapse"),
        "{e}"
    );
    let o = accord(&[
        "train",
        "--reference",
        "--data",
        "iris",
        "--no-duplicate-inputs",
    ]);
    assert!(!o.status.success());
    assert!(
        crate::support::stderr(&o).contains("--no-duplicate-inputs applies to a chip run"),
        "{}",
        crate::support::stderr(&o)
    );
}

#[test]
fn mnist_on_truenorth_splits_the_fan_in() {
    // 784 inputs do not fit 256 axons: four dendrite segments of 196 axons, each on its own
    // core with the 128 hidden neurons' rows, and one core for the somas.
    let m = map_layered(&[784, 128, 10], &chip::open("truenorth").unwrap()).unwrap();
    let l1 = &m.layers[1];
    assert_eq!(
        l1.segments,
        (0..4)
            .map(|g| Segment {
                start: 196 * g,
                axons: 196
            })
            .collect::<Vec<_>>()
    );
    assert_eq!(l1.segment_cores, [vec![4, 5, 6, 7]]);
    assert_eq!(l1.cores, [8]);
    assert!(m.layers[0].segments.is_empty() && m.layers[2].segments.is_empty());
    assert_eq!(m.cores_used(), 4 + 5 + 1);
    for (core, g) in (4..8).zip(0..) {
        let u = &m.cores[core];
        assert_eq!(u.segment, Some(g));
        assert_eq!(
            (u.neurons, u.synapses, u.input_axons, u.fanout),
            (128, 128 * 196, 196, 128)
        );
    }
    // The output core has room for its 128 inputs twice (crossbar: duplicated inputs), so each
    // hidden soma takes two routing entries.
    let soma = &m.cores[8];
    assert_eq!(
        (soma.segment, soma.synapses, soma.input_axons, soma.fanout),
        (None, 0, 0, 256)
    );
    let out = &m.cores[9];
    assert_eq!((out.synapses, out.input_axons), (10 * 256, 256));
    assert_eq!(
        m.layers.iter().map(|lp| lp.copies).collect::<Vec<_>>(),
        [1, 1, 2]
    );
    // Inputs to their segment (784), partial sums to the somas (4 × 128), hidden to output's
    // two axons each.
    assert_eq!(m.total_routes, 784 + 4 * 128 + 2 * 128);
    let d = m.describe();
    assert!(
        d.contains("4 dendrite segments of at most 196 axons"),
        "{d}"
    );
}

#[test]
fn digits_net_maps_on_every_chip_and_packs_onto_reckons_one_core() {
    for name in ["balance-core", "loihi", "truenorth"] {
        let m = map_layered(&[64, 32, 10], &chip::open(name).unwrap()).expect(name);
        assert_eq!(m.cores_used(), 3, "{name}");
        assert!(!m.packed);
    }
    // ReckOn: the inputs arrive off-chip, the hidden and output layers share its one core and
    // reach each other through its recurrent array (no input axon, no routing entry).
    let reckon = chip::open("reckon").unwrap();
    let m = map_layered(&[64, 32, 10], &reckon).unwrap();
    assert!(m.packed);
    assert_eq!(m.cores_used(), 1);
    let rows: Vec<(usize, usize, usize, usize, usize)> = m
        .cores
        .iter()
        .map(|u| (u.layer, u.neurons, u.synapses, u.input_axons, u.fanout))
        .collect();
    assert_eq!(
        rows,
        [
            (0, 0, 0, 0, 0),
            (1, 32, 64 * 32, 64, 0),
            (2, 10, 32 * 10, 0, 0)
        ]
    );
    // The net ReckOn was built for, (256)-256-16, fills its neurons and input axons exactly.
    let m = map_layered(&[256, 256, 16], &reckon).unwrap();
    assert_eq!(m.cores_used(), 1);
    let p = |r: &str| {
        m.pressure
            .iter()
            .find(|p| p.resource == r)
            .unwrap()
            .utilisation
    };
    assert_eq!((p("neurons"), p("input_axons")), (1.0, 1.0));
    // 300 neurons do not fit its 272; a fan-in wider than its axons is not split.
    let e = map_layered(&[256, 200, 100], &reckon).unwrap_err();
    assert!(
        matches!(
            e,
            MapError::PackedCores {
                needed: 2,
                available: 1,
                ..
            }
        ),
        "{e}"
    );
    let e = map_layered(&[784, 128, 10], &reckon).unwrap_err();
    assert!(
        matches!(e, MapError::PackedFanIn { fan_in: 784, .. }),
        "{e}"
    );
}

#[test]
fn layers_packed_onto_shared_cores_compute_what_separate_cores_compute() {
    // 64-50-50-10 fits balance-core's 256-neuron core whole: on a 1×1 mesh the layers pack
    // onto it with the same chunks as one layer per core on the 4×4 mesh, so every number but
    // the hops and the time agrees bit for bit.
    let run = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec![
            "train",
            "--data",
            "digits",
            "--hidden",
            "50,50",
            "--activation",
            "hard-sigmoid",
            "--epochs",
            "1",
            "--json",
        ];
        args.extend(extra);
        let o = accord(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let fresh = run(&[]);
    let packed = run(&["--set", "mesh.cols=1", "--set", "mesh.rows=1"]);
    assert_eq!(fresh["mapping"]["packed"], false);
    assert_eq!(packed["mapping"]["packed"], true);
    assert_eq!(packed["test_accuracy"], fresh["test_accuracy"]);
    assert_eq!(
        packed["epochs"][0]["test_loss"],
        fresh["epochs"][0]["test_loss"]
    );
    for phase in ["training", "inference"] {
        let (a, b) = (&fresh["ledger"][phase], &packed["ledger"][phase]);
        for (k, v) in a.as_object().unwrap() {
            if k == "hop" {
                assert_eq!(b[k], 0, "one core: no hops");
            } else {
                assert_eq!(&b[k], v, "{phase} {k}");
            }
        }
    }
}

#[test]
fn too_many_cores_names_needed_available_and_shortfall() {
    let e = map_layered(&[5, 3], &chip_with(1, 100, 100, 100, (2, 2))).unwrap_err();
    assert_eq!(
        e,
        MapError::TooManyCores {
            chip: "toy".into(),
            needed: 8,
            available: 4,
            per_layer: vec![5, 3]
        }
    );
    let s = e.to_string();
    assert!(s.contains("needs 8 cores"), "{s}");
    assert!(s.contains("5 + 3"), "{s}");
    assert!(s.contains("the toy chip has 4 (short by 4)"), "{s}");
}

/// One neuron per core and 2 routing entries: a relay must reach all 3 output cores.
#[test]
fn fanout_overflow_is_an_error_naming_the_layer() {
    let e = map_layered(&[1, 3], &chip_with(1, 100, 100, 2, (4, 4))).unwrap_err();
    assert_eq!(
        e,
        MapError::Fanout {
            layer: 0,
            reach: accord::mapping::Reach::Next,
            chip: "toy".into(),
            needed: 3,
            capacity: 2
        }
    );
    let s = e.to_string();
    assert!(
        s.contains(
            "layer 0 needs 3 fan-out routing entries for a single neuron (one per core of layer 1)"
        ),
        "{s}"
    );
    assert!(s.contains("a toy core has 2 (over by 1)"), "{s}");
}

#[test]
fn fan_in_above_synapse_memory_is_split() {
    // 5 synapses per core: a neuron with fan-in 6 takes two segments of 3.
    let m = map_layered(&[6, 1], &chip_with(4, 5, 100, 100, (4, 4))).unwrap();
    assert_eq!(
        m.layers[1].segments,
        [
            Segment { start: 0, axons: 3 },
            Segment { start: 3, axons: 3 }
        ]
    );
    assert_eq!(m.cores_used(), 2 + 2 + 1);
}

#[test]
fn degenerate_networks_are_errors_not_panics() {
    let c = chip::open("balance-core").unwrap();
    assert_eq!(
        map_layered(&[], &c).unwrap_err(),
        MapError::TooFewLayers { layers: 0 }
    );
    assert_eq!(
        map_layered(&[10], &c).unwrap_err(),
        MapError::TooFewLayers { layers: 1 }
    );
    let e = map_layered(&[10, 0, 3], &c).unwrap_err();
    assert_eq!(e, MapError::ZeroWidth { layer: 1 });
    assert!(e.to_string().contains("layer 1 has width 0"));
}

/// Violations that do not depend on the placement are all named, not only the first.
#[test]
fn independent_violations_are_all_reported() {
    let c = chip::open("balance-core").unwrap();
    let e = map_layered(&[10, 0, 3, 0], &c).unwrap_err();
    assert_eq!(
        e,
        MapError::Several(vec![
            MapError::ZeroWidth { layer: 1 },
            MapError::ZeroWidth { layer: 3 }
        ])
    );
    assert_eq!(
        e.to_string(),
        "2 violations: (1) layer 1 has width 0; every layer needs at least one neuron; (2) layer \
         3 has width 0; every layer needs at least one neuron"
    );
    // Two recurrent layers, each wider than a core's 1024 axons with its own neurons.
    let e = map_net(&[900, 600, 700, 10], &[false, true, true, false], &[], &c).unwrap_err();
    let MapError::Several(v) = &e else {
        panic!("{e}")
    };
    let layers: Vec<usize> = v
        .iter()
        .map(|e| match e {
            MapError::RecurrentSplit { layer, .. } => *layer,
            e => panic!("{e}"),
        })
        .collect();
    assert_eq!(layers, [1, 2]);
    // Compartments beyond a core's slots, in two layers (1: 10 synapses, 2: 8, one each).
    let mut small = c.clone();
    small.core.neurons = 6;
    small.core.neuron_fanin = Some(1);
    small.core.dendrite_compartments = 16;
    let e = map_layered(&[10, 8, 3], &small).unwrap_err();
    assert_eq!(
        e,
        MapError::Several(vec![
            MapError::Compartments {
                chip: "balance-core".into(),
                layer: 1,
                compartments: 10,
                neurons: 6
            },
            MapError::Compartments {
                chip: "balance-core".into(),
                layer: 2,
                compartments: 8,
                neurons: 6
            },
        ])
    );
}

#[test]
fn mapping_is_deterministic() {
    let c = chip::open("loihi").unwrap();
    let sizes = [300, 500, 700, 40];
    let a = map_layered(&sizes, &c).unwrap();
    let b = map_layered(&sizes, &c).unwrap();
    assert_eq!(a, b);
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
}

/// The command: MNIST onto TrueNorth maps, and the report names the split and the
/// crossbar.
#[test]
fn cli_maps_mnist_onto_truenorth_with_a_split_and_its_crossbar() {
    let o = accord(&[
        "map",
        "--chip",
        "truenorth",
        "--data",
        "mnist",
        "--hidden",
        "128",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for needle in [
        "cores used: 10 of 4096",
        "split: layer 1's fan-in of 784",
        "4 dendrite segments of at most 196 axons",
        "crossbar: each core holds binary connections, 4 axon types",
        "1/s3",
    ] {
        assert!(out.contains(needle), "{needle:?} not in {out}");
    }
}

#[test]
fn cli_map_json_has_chip_sizes_and_mapping() {
    let o = accord(&["map", "--chip", "loihi", "--sizes", "784,128,10", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON document");
    assert_eq!(v["chip"]["name"], "loihi");
    assert_eq!(v["chip"]["mesh"]["cols"], 8);
    assert_eq!(v["sizes"], serde_json::json!([784, 128, 10]));
    let m = &v["mapping"];
    assert_eq!(m["cores"].as_array().expect("cores").len(), 3);
    assert_eq!(m["layers"][0]["chunks"][0]["len"], 784);
    assert_eq!(m["hop_histogram"], serde_json::json!([0, 912]));
    for key in [
        "mesh_cols",
        "mesh_rows",
        "pressure",
        "total_routes",
        "mean_hops",
    ] {
        assert!(m.get(key).is_some(), "mapping.{key}");
    }
}

#[test]
fn cli_map_defaults_to_the_digits_net_on_balance_core() {
    let o = accord(&["map"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("mapping of 64-32-10 onto chip 'balance-core'"),
        "{out}"
    );
    assert!(out.contains("cores used: 3 of 16"), "{out}");
    assert!(out.contains("hops"), "{out}");
}

#[test]
fn cli_map_takes_widths_from_a_dataset() {
    let o = accord(&["map", "--data", "iris", "--hidden", "8,5", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["sizes"], serde_json::json!([4, 8, 5, 3]));
}

#[test]
fn cli_map_errors_are_clear() {
    let o = accord(&["map", "--chip", "loihi-9000"]);
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    for name in ["loihi-9000", "balance-core", "loihi", "reckon", "truenorth"] {
        assert!(e.contains(name), "{name} not in {e}");
    }
    let o = accord(&["map", "--chip", "reckon", "--sizes", "784,128,10"]);
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("cores") && e.contains("reckon"), "{e}");
    assert!(!e.contains("panicked"), "{e}");
    for (args, needle) in [
        (&["map", "--sizes", "10,0"][..], "--sizes"),
        (&["map", "--sizes", "10"][..], "at least two layers"),
        (&["map", "--sizes", "4,2", "--data", "iris"][..], "--data"),
        (&["map", "--data", "no-such.csv"][..], "no-such.csv"),
    ] {
        let o = accord(args);
        assert!(!o.status.success(), "{args:?} should fail");
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(e.contains(needle), "{args:?}: {needle:?} not in {e}");
        assert!(!e.contains("panicked"), "{e}");
    }
}

/// Checks a packed mapping (layers sharing cores) against `sizes` and the chip: chunks tile
/// each layer in core order, every core's rows sum within its capacities (recomputed from the
/// chunks), and the routes are the (neuron, destination core) pairs.
fn check_packed(m: &Mapping, sizes: &[usize], chip: &ChipModel) -> Result<(), TestCaseError> {
    let caps = chip.core;
    let cols = chip.mesh.cols as usize;
    prop_assert_eq!(m.layers.len(), sizes.len());
    let mut used = std::collections::BTreeMap::<usize, [usize; 4]>::new();
    let mut last_core = 0;
    let mut routes = std::collections::BTreeMap::<u32, u64>::new();
    for (l, lp) in m.layers.iter().enumerate() {
        prop_assert!(lp.segments.is_empty(), "packing does not split");
        let mut next = 0;
        for ch in &lp.chunks {
            prop_assert_eq!(ch.start, next);
            prop_assert!(ch.len >= 1);
            next += ch.len;
            prop_assert!((ch.core as u64) < chip.mesh.cores());
            // Snake order: a layer never goes back to an earlier core.
            let walk = |c: usize| {
                let (x, y) = (c % cols, c / cols);
                y * cols + if y % 2 == 0 { x } else { cols - 1 - x }
            };
            prop_assert!(walk(ch.core) >= last_core);
            last_core = walk(ch.core);
            let u = m
                .cores
                .iter()
                .find(|u| u.core == ch.core && u.layer == l)
                .unwrap();
            let relays = l == 0 && caps.external_inputs;
            let fan_in = if l > 0 { sizes[l - 1] } else { 0 };
            let local = caps.recurrent
                && l > 0
                && !(l == 1 && caps.external_inputs)
                && m.layers[l - 1].chunks.iter().all(|c| c.core == ch.core);
            // Destination cores, less one of its own whose chunk takes no input axon.
            let mut dest: Vec<usize> = m.layers.get(l + 1).map_or(Vec::new(), |n| {
                n.chunks
                    .iter()
                    .filter(|c| {
                        let internal = m
                            .cores
                            .iter()
                            .find(|u| u.core == c.core && u.layer == l + 1)
                            .is_some_and(|u| u.input_axons == 0);
                        !(caps.recurrent && c.core == ch.core && internal)
                    })
                    .map(|c| c.core)
                    .collect()
            });
            dest.dedup();
            let want = [
                if relays { 0 } else { ch.len },
                ch.len * fan_in,
                if local { 0 } else { fan_in },
                if relays { 0 } else { ch.len * dest.len() },
            ];
            prop_assert_eq!(
                [u.neurons, u.synapses, u.input_axons, u.fanout],
                want,
                "layer {} on core {}",
                l,
                ch.core
            );
            let e = used.entry(ch.core).or_default();
            for (a, b) in e.iter_mut().zip(want) {
                *a += b;
            }
            if let Some(n) = m.layers.get(l + 1) {
                for d in &n.chunks {
                    let h = m.hops(ch.core, d.core);
                    *routes.entry(h).or_default() += ch.len as u64;
                }
            }
        }
        prop_assert_eq!(next, sizes[l]);
    }
    for (core, [n, s, a, f]) in &used {
        prop_assert!(*n <= caps.neurons as usize, "core {} neurons {}", core, n);
        prop_assert!(*s <= caps.synapses as usize, "core {} synapses {}", core, s);
        prop_assert!(*a <= caps.input_axons as usize, "core {} axons {}", core, a);
        prop_assert!(*f <= caps.fanout as usize, "core {} fan-out {}", core, f);
    }
    prop_assert_eq!(m.cores_used(), used.len());
    let total: u64 = routes.values().sum();
    prop_assert_eq!(m.total_routes, total);
    for (h, n) in m.hop_histogram.iter().enumerate() {
        prop_assert_eq!(*n, routes.get(&(h as u32)).copied().unwrap_or(0));
    }
    Ok(())
}

/// Checks every invariant of `m` against `sizes` and the chip, independently of the placer.
fn check_mapping(m: &Mapping, sizes: &[usize], chip: &ChipModel) -> Result<(), TestCaseError> {
    if m.packed {
        return check_packed(m, sizes, chip);
    }
    let caps = chip.core;
    let cols = chip.mesh.cols as usize;
    prop_assert_eq!(m.layers.len(), sizes.len());
    let mut owner = std::collections::BTreeMap::new();
    let per_core = (caps.input_axons as usize).min(caps.synapses as usize);
    for (l, lp) in m.layers.iter().enumerate() {
        prop_assert_eq!(lp.layer, l);
        prop_assert_eq!(lp.size, sizes[l]);
        // A fan-in is split exactly when it does not fit a core, into the fewest even segments
        // that do, tiling the presynaptic layer.
        let fan_in = if l > 0 { sizes[l - 1] } else { 0 };
        if fan_in <= per_core {
            prop_assert!(lp.segments.is_empty() && lp.segment_cores.is_empty());
        } else {
            prop_assert_eq!(lp.segments.len(), fan_in.div_ceil(per_core));
            let mut next = 0;
            for g in &lp.segments {
                prop_assert_eq!(g.start, next);
                prop_assert!(g.axons <= per_core && g.axons + 1 >= fan_in / lp.segments.len());
                next += g.axons;
            }
            prop_assert_eq!(next, fan_in);
            prop_assert_eq!(lp.segment_cores.len(), lp.chunks.len());
            for cs in &lp.segment_cores {
                prop_assert_eq!(cs.len(), lp.segments.len());
                for &core in cs {
                    prop_assert!(owner.insert(core, l).is_none(), "core {} reused", core);
                }
            }
        }
        // Chunks tile 0..size: every neuron exactly once.
        let mut next = 0;
        for ch in &lp.chunks {
            prop_assert_eq!(ch.start, next);
            prop_assert!(ch.len >= 1);
            next += ch.len;
            prop_assert!(
                owner.insert(ch.core, l).is_none(),
                "core {} reused",
                ch.core
            );
            prop_assert!((ch.core as u64) < chip.mesh.cores());
        }
        prop_assert_eq!(next, sizes[l]);
        // Even split.
        let (lo, hi) = lp
            .chunks
            .iter()
            .fold((usize::MAX, 0), |(a, b), c| (a.min(c.len), b.max(c.len)));
        prop_assert!(hi - lo <= 1);
        prop_assert_eq!(
            &lp.cores,
            &lp.chunks.iter().map(|c| c.core).collect::<Vec<_>>()
        );
        for ch in &lp.chunks {
            for i in [ch.start, ch.start + ch.len - 1] {
                prop_assert_eq!(m.core_of(l, i), ch.core);
            }
        }
    }
    prop_assert_eq!(m.cores_used(), owner.len());
    let ids: Vec<usize> = m.cores.iter().map(|c| c.core).collect();
    prop_assert_eq!(ids, owner.keys().copied().collect::<Vec<_>>());
    // Capacities, recomputed from the chunks.
    let mut routes = std::collections::BTreeMap::<u32, u64>::new();
    let in_range = |v: f64| (0.0..=1.0).contains(&v);
    for (l, lp) in m.layers.iter().enumerate() {
        let split = !lp.segments.is_empty();
        // The rows a neuron keeps on one core: its fan-in, or its largest segment.
        let fan_in = if l == 0 {
            0
        } else {
            lp.segments
                .iter()
                .map(|g| g.axons)
                .max()
                .unwrap_or(sizes[l - 1])
        };
        let dest = m.layers.get(l + 1).map_or(0, |n| n.chunks.len());
        for (c, ch) in lp.chunks.iter().enumerate() {
            for (g, sg) in lp.segments.iter().enumerate() {
                let core = lp.segment_cores[c][g];
                let u = m.cores.iter().find(|u| u.core == core).unwrap();
                prop_assert_eq!(u.segment, Some(g));
                prop_assert_eq!((u.layer, u.start, u.neurons), (l, ch.start, ch.len));
                prop_assert_eq!(u.synapses, ch.len * sg.axons);
                prop_assert_eq!(u.input_axons, sg.axons);
                prop_assert_eq!(u.fanout, ch.len);
                prop_assert!(u.neurons <= caps.neurons as usize);
                prop_assert!(u.synapses <= caps.synapses as usize);
                prop_assert!(u.input_axons <= caps.input_axons as usize);
                prop_assert!(u.fanout <= caps.fanout as usize);
                prop_assert!(in_range(u.synapses_util) && in_range(u.fanout_util));
                // Partial sums to the somas, one route per neuron.
                *routes.entry(m.hops(core, ch.core)).or_default() += ch.len as u64;
            }
            let u = m.cores.iter().find(|c| c.core == ch.core).unwrap();
            prop_assert_eq!(u.segment, None);
            prop_assert_eq!((u.x, u.y), (ch.core % cols, ch.core / cols));
            prop_assert_eq!(u.neurons, ch.len);
            let rows = if split { 0 } else { fan_in };
            prop_assert_eq!(u.synapses, ch.len * rows);
            prop_assert_eq!(u.input_axons, rows);
            prop_assert_eq!(u.fanout, ch.len * dest);
            prop_assert!(u.neurons <= caps.neurons as usize);
            prop_assert!(u.synapses <= caps.synapses as usize);
            prop_assert!(u.input_axons <= caps.input_axons as usize);
            prop_assert!(u.fanout <= caps.fanout as usize);
            for util in [
                u.neurons_util,
                u.synapses_util,
                u.input_axons_util,
                u.fanout_util,
            ] {
                prop_assert!((0.0..=1.0).contains(&util));
            }
            // Routes of each neuron, one by one: to each chunk of the next layer, at the
            // segment holding its axon where that layer is split.
            if let Some(next) = m.layers.get(l + 1) {
                for j in ch.start..ch.start + ch.len {
                    for (c, d) in next.chunks.iter().enumerate() {
                        let to = match next
                            .segments
                            .iter()
                            .position(|g| (g.start..g.start + g.axons).contains(&j))
                        {
                            Some(g) => next.segment_cores[c][g],
                            None => d.core,
                        };
                        let (ax, ay) = (ch.core % cols, ch.core / cols);
                        let (bx, by) = (to % cols, to / cols);
                        let h = (ax.abs_diff(bx) + ay.abs_diff(by)) as u32;
                        prop_assert_eq!(m.hops(ch.core, to), h);
                        *routes.entry(h).or_default() += 1;
                    }
                }
            }
        }
        // Minimal core count: one core fewer breaks a capacity.
        let c = lp.chunks.len();
        if c > 1 {
            let k = sizes[l].div_ceil(c - 1);
            let over = k > caps.neurons as usize
                || k * fan_in > caps.synapses as usize
                || k * dest > caps.fanout as usize
                || (split && k > caps.fanout as usize);
            prop_assert!(over, "layer {} could use {} cores", l, c - 1);
        }
        // The recorded chunk limit is the capacity bound it names.
        let bound = |r: &str| match r {
            "neurons" => caps.neurons as usize,
            "synapses" => caps.synapses as usize / fan_in,
            "fanout" => caps.fanout as usize / dest.max(1),
            _ => 0,
        };
        prop_assert_eq!(lp.max_chunk, bound(lp.limited_by));
        prop_assert!(lp.chunks.iter().all(|c| c.len <= lp.max_chunk));
    }
    let total: u64 = routes.values().sum();
    prop_assert_eq!(m.total_routes, total);
    prop_assert_eq!(m.hop_histogram.iter().sum::<u64>(), total);
    for (h, n) in m.hop_histogram.iter().enumerate() {
        prop_assert_eq!(*n, routes.get(&(h as u32)).copied().unwrap_or(0));
    }
    Ok(())
}

/// Checks that an error's claim is true of `sizes` and the chip.
fn check_error(e: &MapError, sizes: &[usize], chip: &ChipModel) -> Result<(), TestCaseError> {
    let caps = chip.core;
    match e {
        MapError::Fanout {
            needed, capacity, ..
        } => prop_assert!(needed > capacity),
        MapError::TooManyCores {
            needed,
            available,
            per_layer,
            ..
        } => {
            prop_assert_eq!(*available, chip.grid().cores());
            prop_assert!(needed > available);
            prop_assert_eq!(*needed, per_layer.iter().sum::<usize>() as u64);
            // Each layer needs at least ceil(size / neurons) cores.
            for (s, c) in sizes.iter().zip(per_layer) {
                prop_assert!(*c >= s.div_ceil(caps.neurons as usize));
            }
        }
        // Packing was tried too: its claims, recomputed.
        MapError::PackedCores {
            needed, available, ..
        } => {
            prop_assert_eq!(*available, chip.grid().cores());
            prop_assert!(needed > available);
            let total: usize = sizes.iter().sum();
            prop_assert!(*needed >= total.div_ceil(caps.neurons as usize) as u64);
        }
        MapError::PackedFanout {
            needed, capacity, ..
        } => prop_assert!(needed > capacity),
        other => prop_assert!(false, "unexpected error {}", other),
    }
    prop_assert!(e.to_string().contains("toy"), "{}", e);
    Ok(())
}

// About 40% of these draws map (most with split layers); the rest hit each error kind, whose
// claims `check_error` verifies.
proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_mapping_respects_every_capacity(
        sizes in prop::collection::vec(1usize..=32, 2..=5),
        neurons in 1u32..=16,
        synapses in 1u32..=600,
        axons in 1u32..=80,
        fanout in 1u32..=80,
        cols in 1u32..=8,
        rows in 1u32..=8,
    ) {
        let chip = chip_with(neurons, synapses, axons, fanout, (cols, rows));
        match map_layered(&sizes, &chip) {
            Ok(m) => check_mapping(&m, &sizes, &chip)?,
            Err(e) => check_error(&e, &sizes, &chip)?,
        }
    }
}

#[test]
fn reckon_runs_and_trains_a_net_on_its_one_core() {
    let o = accord(&[
        "train",
        "--chip",
        "reckon",
        "--data",
        "digits",
        "--hidden",
        "64",
        "--mode",
        "spiking",
        "--activation",
        "hard-sigmoid",
        "--epochs",
        "1",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["mapping"]["packed"], true);
    let acc = v["test_accuracy"].as_f64().unwrap();
    assert!(acc > 0.6, "one epoch on ReckOn: {acc}");
    // One core: no packet leaves it.
    assert_eq!(v["ledger"]["training"]["hop"], 0);
}

/// A recurrent layer (issue 13): 4-6-2 with layer 1 projecting onto itself, on 3-neuron cores
/// (ample synapses, axons and fan-out), 4 × 2 mesh. Layer 1's fan-in is 4 + 6 = 10 rows per
/// neuron; each of its neurons sends to the output's core and to its own layer's 2 cores.
#[test]
fn a_recurrent_layer_holds_its_own_rows_and_sends_to_its_own_cores() {
    let chip = chip_with(3, 1000, 100, 100, (4, 2));
    let flat = map_layered(&[4, 6, 2], &chip).unwrap();
    let m = map_net(&[4, 6, 2], &[false, true], &[], &chip).unwrap();
    assert!(m.layers[1].recurrent && !m.layers[2].recurrent);
    assert_eq!(lens(&m, 1), [3, 3]);
    for ch in &m.layers[1].chunks {
        let u = core(&m, ch.core);
        assert_eq!((u.input_axons, u.synapses), (4 + 6, 3 * (4 + 6)));
        assert_eq!(
            u.fanout,
            3 * (1 + 2),
            "each neuron: the output core and its own two"
        );
    }
    // Routes: the feed-forward ones, plus 6 neurons × 2 own cores.
    assert_eq!(m.total_routes, flat.total_routes + 6 * 2);
    let own: u64 = m.layers[1]
        .chunks
        .iter()
        .flat_map(|a| m.layers[1].chunks.iter().map(move |b| (a, b)))
        .map(|(a, b)| u64::from(m.hops(a.core, b.core)) * a.len as u64)
        .sum();
    let hop_sum = |m: &Mapping| -> u64 {
        m.hop_histogram
            .iter()
            .enumerate()
            .map(|(h, &k)| h as u64 * k)
            .sum()
    };
    assert_eq!(hop_sum(&m), hop_sum(&flat) + own);
    assert!(
        m.describe()
            .contains("recurrent: layer 1 projects onto itself")
    );
}

/// A recurrent layer's own cores count against its neurons' fan-out: 8 neurons on 4-neuron
/// cores with one output core. A chunk of `k` neurons needs `k × (1 + ⌈8 / k⌉)` routing
/// entries: with 4 per core even `k = 1` needs 9, so the net does not fit, by name; with 10,
/// `k = 4` needs 12, `k = 3` 12, `k = 2` 10: chunks of 2.
#[test]
fn a_recurrent_layers_own_cores_take_routing_entries() {
    let chip = chip_with(4, 1000, 100, 4, (8, 8));
    assert!(map_layered(&[2, 8, 1], &chip).is_ok());
    let e = map_net(&[2, 8, 1], &[false, true], &[], &chip).unwrap_err();
    assert!(
        matches!(e, MapError::Fanout { layer: 1, .. }),
        "{e}: one neuron per core would need 1 + 8 routing entries"
    );
    let chip = chip_with(4, 1000, 100, 10, (8, 8));
    let m = map_net(&[2, 8, 1], &[false, true], &[], &chip).unwrap();
    assert_eq!(
        (m.layers[1].max_chunk, m.layers[1].limited_by),
        (2, "fanout")
    );
    assert_eq!(lens(&m, 1), [2, 2, 2, 2]);
    for ch in &m.layers[1].chunks {
        assert_eq!(core(&m, ch.core).fanout, 2 * (1 + 4));
    }
}

/// A recurrent fan-in over a core is refused with the numbers (not split); the input layer
/// cannot be recurrent.
#[test]
fn recurrent_fan_ins_are_not_split_and_inputs_are_not_recurrent() {
    let tn = chip::open("truenorth").unwrap();
    let e = map_net(&[200, 100, 10], &[false, true], &[], &tn).unwrap_err();
    assert_eq!(
        e,
        MapError::RecurrentSplit {
            chip: "truenorth".into(),
            layer: 1,
            size: 100,
            fan_in: 300,
            capacity: 256,
        }
    );
    assert!(e.to_string().contains("over by 44"), "{e}");
    // The same widths without the loop split the fan-in.
    assert!(
        !map_layered(&[300, 100, 10], &tn).unwrap().layers[1]
            .segments
            .is_empty()
    );
    assert_eq!(
        map_net(&[4, 3], &[true], &[], &tn).unwrap_err(),
        MapError::RecurrentInput
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// With recurrent layers: every core within every capacity, a recurrent layer's cores
    /// holding `len × (below + size)` synapses and (unpacked) `len × (next cores + own cores)`
    /// routing entries; a recurrent split refused only where the fan-in exceeds a core (the
    /// other refusals' reasons are checked for layered nets by the property test above).
    #[test]
    fn recurrent_mappings_respect_every_capacity(
        sizes in prop::collection::vec(1usize..=24, 2..=4),
        flags in prop::collection::vec(any::<bool>(), 4),
        neurons in 1u32..=16,
        synapses in 1u32..=600,
        axons in 1u32..=80,
        fanout in 1u32..=80,
        cols in 1u32..=8,
        rows in 1u32..=8,
    ) {
        let chip = chip_with(neurons, synapses, axons, fanout, (cols, rows));
        let mut rec = flags[..sizes.len()].to_vec();
        rec[0] = false;
        match map_net(&sizes, &rec, &[], &chip) {
            Ok(m) => {
                within_capacity(&m, &chip)?;
                for (l, lp) in m.layers.iter().enumerate() {
                    prop_assert_eq!(lp.recurrent, rec[l]);
                    prop_assert_eq!(lp.chunks.iter().map(|c| c.len).sum::<usize>(), sizes[l]);
                    if !rec[l] {
                        continue;
                    }
                    let next = m.layers.get(l + 1).map_or(0, |n| n.chunks.len());
                    for ch in &lp.chunks {
                        let u = core(&m, ch.core);
                        let u = m
                            .cores
                            .iter()
                            .find(|u| u.core == ch.core && u.layer == l)
                            .unwrap_or(u);
                        prop_assert_eq!(u.synapses, ch.len * (sizes[l - 1] + sizes[l]));
                        // Packed layers share cores: a destination core counts once.
                        if !m.packed {
                            prop_assert_eq!(u.fanout, ch.len * (next + lp.chunks.len()));
                        }
                    }
                }
            }
            Err(e) => {
                // Several recurrent layers too wide: each is named.
                let all = match e {
                    MapError::Several(v) => {
                        prop_assert!(v.len() > 1);
                        v
                    }
                    e => vec![e],
                };
                for e in all {
                    match e {
                        e @ MapError::RecurrentSplit { layer, fan_in, capacity, .. } => {
                            prop_assert!(rec[layer], "{}", e);
                            prop_assert_eq!(fan_in, sizes[layer - 1] + sizes[layer]);
                            prop_assert_eq!(capacity, (axons.min(synapses)) as usize);
                            prop_assert!(fan_in > capacity);
                        }
                        MapError::Fanout { .. }
                        | MapError::TooManyCores { .. }
                        | MapError::PackedCores { .. }
                        | MapError::PackedFanIn { .. }
                        | MapError::PackedFanout { .. } => {}
                        e => prop_assert!(false, "unexpected refusal: {}", e),
                    }
                }
            }
        }
    }
}

/// ReckOn's own topology, (256)-r256-16: the recurrent layer wholly on its one core talks to
/// itself through the internal array (no input axon, no routing entry for its own neurons),
/// and the core's 135,168 synapses hold exactly input, recurrent and output rows.
#[test]
fn reckons_recurrent_layer_fills_its_core_through_the_internal_array() {
    let reckon = chip::open("reckon").unwrap();
    let m = map_net(&[256, 256, 16], &[false, true, false], &[], &reckon).unwrap();
    assert_eq!(m.cores_used(), 1);
    let row = |l: usize| m.cores.iter().find(|u| u.layer == l).unwrap();
    assert_eq!(
        (row(1).input_axons, row(1).synapses, row(1).fanout),
        (256, 256 * 512, 0)
    );
    assert_eq!((row(2).input_axons, row(2).synapses), (0, 16 * 256));
    let synapses: usize = m.cores.iter().map(|u| u.synapses).sum();
    assert_eq!(synapses as u32, reckon.core.synapses);
    // On a chip without the internal array the same loop needs 256 more axons per core.
    let mut plain = chip::open("loihi").unwrap();
    plain.core.external_inputs = true;
    let m = map_net(&[256, 256, 16], &[false, true, false], &[], &plain).unwrap();
    let l1 = m.cores.iter().find(|u| u.layer == 1).unwrap();
    assert_eq!(l1.input_axons, 512);
    // A loop local to a packed core does not make the layer below pay routing entries for it.
    let mut local = chip::open("loihi").unwrap();
    local.core.recurrent = true;
    local.core.fanout = 8;
    let flat = map_net(&[6, 9, 4], &[], &[], &local).unwrap();
    let looped = map_net(&[6, 9, 4], &[false, false, true], &[], &local).unwrap();
    let fan = |m: &Mapping, l: usize| -> usize {
        m.cores
            .iter()
            .filter(|u| u.layer == l)
            .map(|u| u.fanout)
            .sum()
    };
    assert_eq!(fan(&looped, 1), fan(&flat, 1));
    assert_eq!(fan(&looped, 2), 0, "the loop stays inside the core");
}

/// A 1-D convolution, kernel 5: neuron `i` of a 60-wide layer sees inputs `i..i + 5` of 64.
fn conv_mask() -> bitvec::vec::BitVec<usize, bitvec::order::Lsb0> {
    let mut m = bitvec::bitvec![usize, bitvec::order::Lsb0; 0; 60 * 64];
    for i in 0..60 {
        m[i * 64 + i..i * 64 + i + 5].fill(true);
    }
    m
}

/// 64-60-8 with the conv layer above on 16-neuron cores (4,096 synapses, 64 axons, 64 entries):
///
/// * layer 1 by receptive field: a chunk of `k` neighbours sees `k + 4` inputs, so 4 chunks of
///   at most 16 (the neuron limit), evened out to 15 each: fields 0..19, 15..34, 30..49, 45..64;
/// * the relays: inputs 15..19, 30..34 and 45..49 reach two cores, the rest one: 76 routes,
///   16 relays a core (the neuron limit; 17, 21, 21 and 17 entries);
/// * dense rows: layer 1 in four even chunks of 15, every relay reaching all four (256
///   routes). Both take 9 cores, and the tie goes to receptive fields.
#[test]
fn a_sparse_layer_is_placed_by_receptive_field() {
    use accord::mapping::SparseChoice;
    let chip = chip_with(16, 4096, 64, 64, (8, 8));
    let masks = [Some(conv_mask()), None];
    let m = map_net(&[64, 60, 8], &[], &masks, &chip).unwrap();
    assert_eq!(
        m.sparse,
        Some(SparseChoice {
            chosen: "receptive-field",
            asked: Placement::FewestCores,
            receptive_field_cores: Some(9),
            dense_cores: Some(9),
        })
    );
    assert_eq!(lens(&m, 1), [15; 4]);
    let fields: Vec<Vec<Segment>> = [(0, 19), (15, 19), (30, 19), (45, 19)]
        .iter()
        .map(|&(start, axons)| vec![Segment { start, axons }])
        .collect();
    assert_eq!(m.layers[1].receptive, fields);
    for (ch, f) in m.layers[1].chunks.iter().zip(&fields) {
        let u = core(&m, ch.core);
        assert_eq!(
            (u.input_axons, u.synapses),
            (f[0].axons, f[0].axons * ch.len)
        );
    }
    assert_eq!(lens(&m, 0), [16; 4]);
    let entries: Vec<usize> = m.layers[0]
        .chunks
        .iter()
        .map(|c| core(&m, c.core).fanout)
        .collect();
    assert_eq!(entries, [17, 21, 21, 17]);
    assert_eq!(m.total_routes, 76 + 60);
    assert!(m.describe().contains("receptive fields: layer 1 is sparse"));

    let dense = map_net(&[64, 60, 8], &[], &[], &chip).unwrap();
    assert_eq!(lens(&dense, 1), [15; 4]);
    assert_eq!(dense.total_routes, 64 * 4 + 60);
    assert_eq!(dense.sparse, None);

    // With 4 routing entries a core, dense rows do not fit (a relay would need one entry for
    // each of layer 1's 15 four-neuron cores) and receptive fields do: fields 4c..4c + 8, so
    // relays 4..60 reach two cores (two relays a core) and the 4 at either end one (four a
    // core): 1 + 28 + 1 relay cores, 15 for layer 1, 1 for the outputs. (Three relays a core
    // would take 31: 0..3, 3..5, then pairs to 59, 59..62, 62..64.)
    let tight = chip_with(16, 4096, 64, 4, (16, 16));
    let t = map_net(&[64, 60, 8], &[], &masks, &tight).unwrap();
    assert_eq!(
        t.sparse,
        Some(SparseChoice {
            chosen: "receptive-field",
            asked: Placement::FewestCores,
            receptive_field_cores: Some(46),
            dense_cores: None,
        })
    );
    assert_eq!(lens(&t, 1), [4; 15]);
    let mut relays = vec![4];
    relays.extend([2; 28]);
    relays.push(4);
    assert_eq!(lens(&t, 0), relays);
    assert!(matches!(
        map_net(&[64, 60, 8], &[], &[], &tight),
        Err(MapError::Fanout { layer: 0, .. })
    ));

    // A mask of the wrong length is named.
    let short = [Some(bitvec::bitvec![usize, bitvec::order::Lsb0; 1; 10])];
    assert_eq!(
        map_net(&[64, 60, 8], &[], &short, &chip).unwrap_err(),
        MapError::MaskShape {
            layer: 1,
            len: 10,
            size: 60,
            below: 64
        }
    );
}

/// `net` (with its synapse `masks`) on `chip` under `mapping`: graded, fixed point (balance-
/// core's narrow datapath, η = 0.05), the balance rule, one thread.
fn sparse_chip_net(
    chip: &ChipModel,
    net: &accord::rule::LayeredNet,
    masks: &[Option<bitvec::vec::BitVec<usize, bitvec::order::Lsb0>>],
    mapping: &Mapping,
    training: bool,
) -> accord::emulator::ChipNet<accord::emulator::FixedNarrow> {
    use accord::emulator::{self, ChipNet, ChipRule, FiringMode, NetSpec, layered_pops};
    let sizes = net.sizes();
    let acts: Vec<_> = net.layers.iter().map(|l| l.act).collect();
    let mut vars = accord::ledger::VarCounters::default();
    let dp = emulator::fixed_path(
        chip,
        &layered_pops(&acts, &[]),
        0.05,
        0.0,
        ChipRule::Balance,
        1,
        &mut vars,
    )
    .unwrap();
    let spec = NetSpec {
        sizes: &sizes,
        acts: &acts,
        weights: net,
        masks,
        recurrent: &[],
        feedback: None,
        mapping,
        mode: FiringMode::Graded,
        loss: accord::rule::Loss::CrossEntropy,
        rule: ChipRule::Balance,
        threads: 1,
        training,
    };
    ChipNet::build(dp, &spec, chip, &mut vars)
}

/// The same sparse net placed by receptive field and with dense rows computes the same bits:
/// outputs, synaptic operations and, for this net, trained weights (in general a different
/// cut may round a core's partial credit sums differently); only its packets differ, each by
/// its closed form (a relay reaches the cores whose field holds it, or every core).
#[test]
fn receptive_field_placement_computes_what_dense_rows_compute() {
    use accord::emulator::Tally;
    use accord::rule::{Activation, LayeredNet};
    let chip = chip_with(16, 4096, 64, 64, (8, 8));
    let mask = conv_mask();
    let masks = [Some(mask.clone()), None];
    let sizes = [64, 60, 8];
    let acts = [Activation::HardSigmoid, Activation::Identity];
    let net = LayeredNet::glorot(&sizes, &acts, 3);
    let build = |m: &Mapping| sparse_chip_net(&chip, &net, &masks, m, true);
    let by_field = map_net(&sizes, &[], &masks, &chip).unwrap();
    assert_eq!(by_field.sparse.unwrap().chosen, "receptive-field");
    let dense = map_net(&sizes, &[], &[], &chip).unwrap();
    let (mut a, mut b) = (build(&by_field), build(&dense));
    // How many cores of layer 1 see input j.
    let seen_by = |j: usize| cores_seeing(&by_field.layers[1], j) as u64;
    let sop = accord::chip::Action::Sop;
    let packets = accord::chip::Action::SpikePacket;
    for k in 0..12u64 {
        // Every third input silent, the rest rates in (0, 1).
        let x: Vec<f64> = (0..64)
            .map(|j| {
                if (j as u64 + k).is_multiple_of(3) {
                    0.0
                } else {
                    ((j * 7 + k as usize) % 11) as f64 / 11.0
                }
            })
            .collect();
        let (mut ta, mut tb) = (Tally::default(), Tally::default());
        let oa = a.sample(&x, (k % 8) as usize, true, k, &mut ta);
        let ob = b.sample(&x, (k % 8) as usize, true, k, &mut tb);
        assert_eq!(oa.loss.to_bits(), ob.loss.to_bits(), "sample {k}");
        assert_eq!(ta.ledger.get(sop), tb.ledger.get(sop), "sample {k}");
        let relays: Vec<usize> = (0..64).filter(|&j| x[j] != 0.0).collect();
        // Layer 1's active neurons reach the one output core in either placement.
        let hidden = a.state().r[1].iter().filter(|&&r| r != 0.0).count() as u64;
        let seen: u64 = relays.iter().map(|&j| seen_by(j)).sum();
        assert_eq!(ta.ledger.get(packets), seen + hidden, "sample {k}");
        assert_eq!(
            tb.ledger.get(packets),
            relays.len() as u64 * 4 + hidden,
            "sample {k}"
        );
    }
    let (wa, wb) = (a.export(), b.export());
    for (i, row) in wa.layers[0].w.chunks(64).enumerate() {
        for j in 0..64 {
            if mask[i * 64 + j] {
                assert_eq!(
                    row[j].to_bits(),
                    wb.layers[0].w[i * 64 + j].to_bits(),
                    "w[{i}][{j}]"
                );
            } else {
                assert_eq!(row[j], 0.0, "no synapse outside the field: w[{i}][{j}]");
            }
        }
    }
    assert_eq!(wa.layers[1].w, wb.layers[1].w);
    assert_eq!(wa.layers[0].b, wb.layers[0].b);
}

/// Every core of `m` within every capacity of `chip` (a packed core's rows each within it).
fn within_capacity(m: &Mapping, chip: &ChipModel) -> Result<(), TestCaseError> {
    let c = &chip.core;
    for u in &m.cores {
        prop_assert!(u.neurons <= c.neurons as usize);
        prop_assert!(u.synapses <= c.synapses as usize);
        prop_assert!(u.input_axons <= c.input_axons as usize);
        prop_assert!(u.fanout <= c.fanout as usize);
    }
    Ok(())
}

/// Which cores of `lp` (a layer placed by receptive field) see presynaptic neuron `j`.
fn cores_seeing(lp: &accord::mapping::LayerPlacement, j: usize) -> usize {
    lp.receptive
        .iter()
        .filter(|f| f.iter().any(|g| (g.start..g.start + g.axons).contains(&j)))
        .count()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// With sparse layers (random masks): every core within every capacity; a layer placed by
    /// receptive field holds, per chunk, exactly the union of its neurons' fields as maximal
    /// runs, and `len × field` synapses; every core's routing entries and the routes count the
    /// cores that see each neuron; dense rows are taken only when they need fewer cores.
    #[test]
    fn sparse_mappings_hold_each_chunks_receptive_field(
        sizes in prop::collection::vec(1usize..=24, 2..=4),
        density in 1u32..=10,
        seed in any::<u64>(),
        neurons in 1u32..=16,
        synapses in 1u32..=600,
        axons in 1u32..=80,
        fanout in 1u32..=80,
        cols in 1u32..=8,
        rows in 1u32..=8,
    ) {
        let chip = chip_with(neurons, synapses, axons, fanout, (cols, rows));
        // Layers 1.. sparse in turn (the read-out of a 2-layer net included), bits drawn by
        // a small LCG at `density` tenths.
        let mut x = seed | 1;
        let masks: Vec<Option<bitvec::vec::BitVec<usize, bitvec::order::Lsb0>>> = sizes
            .windows(2)
            .enumerate()
            .map(|(l, w)| {
                (l % 2 == 0).then(|| {
                    (0..w[0] * w[1])
                        .map(|_| {
                            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                            (x >> 33) % 10 < u64::from(density)
                        })
                        .collect()
                })
            })
            .collect();
        let m = match map_net(&sizes, &[], &masks, &chip) {
            Ok(m) => m,
            Err(
                MapError::Fanout { .. }
                | MapError::TooManyCores { .. }
                | MapError::PackedCores { .. }
                | MapError::PackedFanIn { .. }
                | MapError::PackedFanout { .. },
            ) => return Ok(()),
            Err(e) => return Err(TestCaseError::fail(format!("unexpected refusal: {e}"))),
        };
        let sc = m.sparse.expect("sparse layers say how they were placed");
        match sc.chosen {
            "dense" => {
                let d = sc.dense_cores.expect("dense fits");
                prop_assert!(sc.receptive_field_cores.is_none_or(|f| d < f));
                prop_assert!(m.layers.iter().all(|lp| lp.receptive.is_empty()));
            }
            _ => prop_assert!(sc.dense_cores.is_none_or(|d| d >= m.cores_used())),
        }
        within_capacity(&m, &chip)?;
        // Routes, counted here unless a layer is split (its partial sums route too).
        let mut routes = Some(0usize);
        for (l, lp) in m.layers.iter().enumerate() {
            prop_assert_eq!(lp.chunks.iter().map(|c| c.len).sum::<usize>(), sizes[l]);
            if !lp.receptive.is_empty() {
                let mask = masks[l - 1].as_ref().expect("placed by field only where masked");
                prop_assert_eq!(lp.receptive.len(), lp.chunks.len());
                // Chunks and fields count positions: neurons in each layer's `order`.
                let at = |o: &[usize], k: usize| o.get(k).copied().unwrap_or(k);
                let below = &m.layers[l - 1].order;
                let mut sorted = lp.order.clone();
                sorted.sort_unstable();
                prop_assert!(sorted.is_empty() || sorted == (0..sizes[l]).collect::<Vec<_>>());
                for (ch, field) in lp.chunks.iter().zip(&lp.receptive) {
                    let want: Vec<usize> = (0..sizes[l - 1])
                        .filter(|&p| {
                            (ch.start..ch.start + ch.len)
                                .any(|q| mask[at(&lp.order, q) * sizes[l - 1] + at(below, p)])
                        })
                        .collect();
                    let got: Vec<usize> = field.iter().flat_map(|g| g.start..g.start + g.axons).collect();
                    prop_assert_eq!(&got, &want);
                    // Maximal runs: no two touch.
                    prop_assert!(field.windows(2).all(|w| w[0].start + w[0].axons < w[1].start));
                    prop_assert!(field.iter().all(|g| g.axons > 0));
                    let u = core(&m, ch.core);
                    prop_assert_eq!((u.input_axons, u.synapses), (want.len(), want.len() * ch.len));
                }
            }
            let Some(next) = m.layers.get(l + 1) else { continue };
            if m.packed {
                // Packed placement (dense rows) counts shared destination cores once.
                prop_assert!(lp.receptive.is_empty() && sc.chosen == "dense");
                routes = None;
                continue;
            }
            let sees = |j: usize| if next.receptive.is_empty() { next.chunks.len() } else { cores_seeing(next, j) };
            if next.segments.is_empty() {
                for ch in &lp.chunks {
                    let want: usize = (ch.start..ch.start + ch.len).map(sees).sum();
                    prop_assert_eq!(core(&m, ch.core).fanout, want);
                    routes = routes.map(|r| r + want);
                }
            } else {
                routes = None;
            }
        }
        if let Some(r) = routes {
            prop_assert_eq!(m.total_routes, r as u64);
        }
    }
}

/// A two-channel 1-D convolution (kernel 5 over 34 inputs, channel-major: neuron `c·30 + x`
/// sees inputs `x..x + 5`) and a per-channel pool of pairs (neuron `c·15 + y` sees conv
/// neurons `c·30 + 2y` and `+ 1`), then a dense read-out of 4: both sparse layers are placed
/// in receptive-field order (the channels of one position side by side), and the chip
/// computes the same bits as with dense rows in natural order: every neuron's state after
/// each sample, the synaptic operations, and (for this net) the trained weights. (Weights
/// round to nearest here: a reordered core keys its random streams by position, so
/// stochastic rounding would draw differently, as any other placement does.)
#[test]
fn a_net_placed_in_receptive_field_order_computes_what_dense_rows_compute() {
    use accord::emulator::Tally;
    use accord::rule::{Activation, LayeredNet};
    let sizes = [34, 60, 30, 4];
    let mut conv = bitvec::bitvec![usize, bitvec::order::Lsb0; 0; 60 * 34];
    for c in 0..2 {
        for x in 0..30 {
            let i = c * 30 + x;
            conv[i * 34 + x..i * 34 + x + 5].fill(true);
        }
    }
    let mut pool = bitvec::bitvec![usize, bitvec::order::Lsb0; 0; 30 * 60];
    for c in 0..2 {
        for y in 0..15 {
            let i = c * 15 + y;
            pool[i * 60 + c * 30 + 2 * y..i * 60 + c * 30 + 2 * y + 2].fill(true);
        }
    }
    let masks = [Some(conv), Some(pool), None];
    let mut chip = chip_with(16, 4096, 64, 64, (8, 8));
    chip.formats.weight.rounding = accord_firmware::arith::Rounding::NearestEven;
    let acts = [
        Activation::HardSigmoid,
        Activation::HardSigmoid,
        Activation::Identity,
    ];
    let net = LayeredNet::glorot(&sizes, &acts, 5);
    let by_field = map_net(&sizes, &[], &masks, &chip).unwrap();
    assert_eq!(by_field.sparse.unwrap().chosen, "receptive-field");
    // Conv neurons by first input: x = 0 of both channels, then x = 1, …
    let interleaved: Vec<usize> = (0..30).flat_map(|x| [x, 30 + x]).collect();
    assert_eq!(by_field.layers[1].order, interleaved);
    // Pool neurons by their first conv neuron's position (2y in channel 0 at 4y, channel 1
    // at 4y + 1): interleaved too.
    let pooled: Vec<usize> = (0..15).flat_map(|y| [y, 15 + y]).collect();
    assert_eq!(by_field.layers[2].order, pooled);
    assert!(
        by_field.layers[3].order.is_empty(),
        "the read-out keeps its order"
    );
    let dense = map_net(&sizes, &[], &[], &chip).unwrap();
    let build = |m: &Mapping| sparse_chip_net(&chip, &net, &masks, m, true);
    let (mut a, mut b) = (build(&by_field), build(&dense));
    let sop = accord::chip::Action::Sop;
    for k in 0..10u64 {
        let x: Vec<f64> = (0..34)
            .map(|j| ((j * 5 + k as usize) % 9) as f64 / 9.0)
            .collect();
        let (mut ta, mut tb) = (Tally::default(), Tally::default());
        let oa = a.sample(&x, (k % 4) as usize, true, k, &mut ta);
        let ob = b.sample(&x, (k % 4) as usize, true, k, &mut tb);
        assert_eq!(oa.loss.to_bits(), ob.loss.to_bits(), "sample {k}");
        assert_eq!(ta.ledger.get(sop), tb.ledger.get(sop), "sample {k}");
        assert_eq!(a.state(), b.state(), "sample {k}");
        assert_eq!(a.probe(), b.probe(), "sample {k}");
    }
    let (wa, wb) = (a.export(), b.export());
    for (l, m) in masks.iter().enumerate() {
        let m = m.as_ref();
        for (k, (&x, &y)) in wa.layers[l].w.iter().zip(&wb.layers[l].w).enumerate() {
            if m.is_none_or(|m| m[k]) {
                assert_eq!(x.to_bits(), y.to_bits(), "layer {l} weight {k}");
            }
        }
        assert_eq!(wa.layers[l].b, wb.layers[l].b, "layer {l}");
        // The samples did train: weights moved by more than the quantisation of the start.
        let moved = (wa.layers[l].w.iter().zip(&net.layers[l].w))
            .filter(|(x, y)| (*x - *y).abs() > 1e-3)
            .count();
        assert!(moved > 0, "layer {l}: no weight learned");
    }
}

/// A sparse layer in which half the neurons see nothing (sizes 200-20-4, neuron `i < 10` sees
/// inputs `2i..2i + 3`): the chunks of the blind neurons hold no rows and use no axons on the
/// chip either (the engine holds exactly the synapses the mapping counts), and the net fires
/// as with dense rows (here split, 200 inputs being over the core's 64 axons).
#[test]
fn a_chunk_that_sees_nothing_holds_no_rows() {
    use accord::emulator::Tally;
    use accord::rule::{Activation, LayeredNet};
    let sizes = [200, 20, 4];
    let mut mask = bitvec::bitvec![usize, bitvec::order::Lsb0; 0; 20 * 200];
    for i in 0..10 {
        mask[i * 200 + 2 * i..i * 200 + 2 * i + 3].fill(true);
    }
    let masks = [Some(mask), None];
    let chip = chip_with(8, 100_000, 64, 1000, (8, 8));
    let m = map_net(&sizes, &[], &masks, &chip).unwrap();
    assert_eq!(m.sparse.unwrap().chosen, "receptive-field");
    let blind = m.layers[1]
        .receptive
        .iter()
        .filter(|f| f.is_empty())
        .count();
    assert!(blind > 0, "{:?}", m.layers[1].receptive);
    let acts = [Activation::HardSigmoid, Activation::Identity];
    let net = LayeredNet::glorot(&sizes, &acts, 2);
    let build = |m: &Mapping| sparse_chip_net(&chip, &net, &masks, m, false);
    let (mut a, mut b) = (build(&m), build(&map_net(&sizes, &[], &[], &chip).unwrap()));
    let stored: usize = m.cores.iter().map(|u| u.synapses).sum();
    assert_eq!(a.weight_stats().0, stored as u64);
    for k in 0..4u64 {
        let x: Vec<f64> = (0..200)
            .map(|j| ((j + k as usize) % 7) as f64 / 7.0)
            .collect();
        let (mut ta, mut tb) = (Tally::default(), Tally::default());
        a.fire(&x, k, &mut ta);
        b.fire(&x, k, &mut tb);
        assert_eq!(a.state(), b.state(), "sample {k}");
    }
}

/// A masked layer whose every neuron sees more than a core's axons takes dense rows (split),
/// and the mapping says it was not placed by receptive field.
#[test]
fn a_mask_wider_than_a_core_is_placed_dense_and_says_so() {
    let mut mask = bitvec::bitvec![usize, bitvec::order::Lsb0; 1; 8 * 300];
    for i in 0..8 {
        mask.set(i * 300 + i, false);
    }
    let chip = chip_with(16, 65536, 64, 1024, (8, 8));
    let m = map_net(&[300, 8, 2], &[], &[Some(mask), None], &chip).unwrap();
    let sc = m.sparse.unwrap();
    assert_eq!(sc.chosen, "dense");
    assert_eq!(sc.receptive_field_cores, None);
    assert_eq!(sc.dense_cores, Some(m.cores_used()));
    assert!(
        m.layers
            .iter()
            .all(|lp| lp.receptive.is_empty() && lp.order.is_empty())
    );
    assert!(!m.layers[1].segments.is_empty());
    assert!(
        m.describe()
            .contains("sparse layers: placed with dense rows (by receptive field: not possible")
    );
    // Asked for by name, receptive fields are refused with the reason.
    let mut mask = bitvec::bitvec![usize, bitvec::order::Lsb0; 1; 8 * 300];
    mask.set(0, false);
    let e = map_net_with(
        &[300, 8, 2],
        &[],
        &[Some(mask), None],
        &chip,
        Placement::ReceptiveField,
    )
    .unwrap_err();
    assert!(matches!(e, MapError::NoReceptiveField { .. }), "{e}");
    assert!(
        e.to_string().contains("wider than a core's input axons"),
        "{e}"
    );
}

/// A placement asked by name is taken whatever the cores: dense rows where receptive fields
/// need as few (the same mapping as the net without masks, but for the choice it records);
/// receptive fields where dense rows do not fit; dense rows that do not fit are the dense
/// placement's error.
#[test]
fn a_placement_asked_by_name_is_taken() {
    let chip = chip_with(16, 4096, 64, 64, (8, 8));
    let masks = [Some(conv_mask()), None];
    let sizes = [64, 60, 8];
    let mut dense = map_net_with(&sizes, &[], &masks, &chip, Placement::Dense).unwrap();
    let sc = dense.sparse.take().unwrap();
    assert_eq!(
        (
            sc.chosen,
            sc.asked,
            sc.receptive_field_cores,
            sc.dense_cores
        ),
        ("dense", Placement::Dense, Some(9), Some(9))
    );
    assert_eq!(dense, map_net(&sizes, &[], &[], &chip).unwrap());
    dense.sparse = Some(sc);
    assert!(dense.describe().contains("placed with dense rows (by receptive field: 9 cores; dense rows, zeros stored: 9 cores; dense rows, as asked)"));
    let by_field = map_net_with(&sizes, &[], &masks, &chip, Placement::ReceptiveField).unwrap();
    assert_eq!(
        by_field.sparse.map(|s| (s.chosen, s.asked)),
        Some(("receptive-field", Placement::ReceptiveField))
    );
    assert_eq!(
        by_field.layers[1].receptive,
        map_net(&sizes, &[], &masks, &chip).unwrap().layers[1].receptive
    );
    let tight = chip_with(16, 4096, 64, 4, (16, 16));
    let t = map_net_with(&sizes, &[], &masks, &tight, Placement::ReceptiveField).unwrap();
    assert_eq!(t.cores_used(), 46);
    assert_eq!(
        map_net_with(&sizes, &[], &masks, &tight, Placement::Dense).unwrap_err(),
        map_net(&sizes, &[], &[], &tight).unwrap_err()
    );
    // Without masks the placement changes nothing.
    for p in [Placement::Dense, Placement::ReceptiveField] {
        assert_eq!(
            map_net_with(&sizes, &[], &[], &chip, p).unwrap(),
            map_net(&sizes, &[], &[], &chip).unwrap()
        );
    }
}

/// Value stability of placements: the full mapping (every chunk, core row, route count and
/// hop histogram, as its JSON) of a set of nets on every shipped chip, hashed and pinned. A
/// change that moves one is a placement change: list it in CHANGELOG.md and re-pin
/// (`ACCORD_PRINT_GOLDEN=1` prints the table).
#[test]
fn placements_are_value_stable() {
    fn fnv(bytes: &[u8]) -> u64 {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100_0000_01b3);
        }
        h
    }
    let mut conv = bitvec::bitvec![usize, bitvec::order::Lsb0; 0; 60 * 34];
    for c in 0..2 {
        for x in 0..30 {
            let i = c * 30 + x;
            conv[i * 34 + x..i * 34 + x + 5].fill(true);
        }
    }
    type Net = (
        &'static str,
        Vec<usize>,
        Vec<bool>,
        Vec<Option<bitvec::vec::BitVec<usize, bitvec::order::Lsb0>>>,
    );
    let nets: Vec<Net> = vec![
        ("mnist", vec![784, 128, 10], vec![], vec![]),
        ("iris", vec![4, 6, 3], vec![], vec![]),
        ("deep", vec![300, 500, 500, 10], vec![], vec![]),
        ("recurrent", vec![64, 40, 10], vec![false, true], vec![]),
        ("conv", vec![34, 60, 8], vec![], vec![Some(conv), None]),
    ];
    let mut got = Vec::new();
    for chip_name in ["balance-core", "loihi", "truenorth", "reckon"] {
        let chip = chip::open(chip_name).unwrap();
        for (name, sizes, rec, masks) in &nets {
            let text = match map_net(sizes, rec, masks, &chip) {
                Ok(m) => serde_json::to_string(&m).unwrap(),
                Err(e) => e.to_string(),
            };
            got.push((chip_name, *name, fnv(text.as_bytes())));
        }
        // The all-to-all recipe's group (digits: 64 inputs, 10 classes) of 300 and of 900.
        for (name, n) in [("all-to-all 300", 300), ("all-to-all 900", 900)] {
            let g = accord::graph::Graph::all_to_all(n, 64, 10, None).unwrap();
            let text = match accord::mapping::map_graph(&g, &chip, Default::default()) {
                Ok(m) => serde_json::to_string(&m).unwrap(),
                Err(e) => e.to_string(),
            };
            got.push((chip_name, name, fnv(text.as_bytes())));
        }
    }
    if std::env::var_os("ACCORD_PRINT_GOLDEN").is_some() {
        for g in &got {
            eprintln!("{g:?},");
        }
    }
    let want: &[(&str, &str, u64)] = &[
        ("balance-core", "mnist", 822879653117250316),
        ("balance-core", "iris", 2522956805793130178),
        ("balance-core", "deep", 16629256356435789333),
        ("balance-core", "recurrent", 5530474299662726514),
        ("balance-core", "conv", 9176928765930282157),
        ("balance-core", "all-to-all 300", 9051564954626222081),
        ("balance-core", "all-to-all 900", 6062000777781009748),
        ("loihi", "mnist", 11601979380883293027),
        ("loihi", "iris", 11951563040003761310),
        ("loihi", "deep", 3951286542505155600),
        ("loihi", "recurrent", 9916119968591730448),
        ("loihi", "conv", 12929217461272083502),
        ("loihi", "all-to-all 300", 16747034830010384025),
        ("loihi", "all-to-all 900", 12917991633144020906),
        ("truenorth", "mnist", 18190015431179488996),
        ("truenorth", "iris", 4697156806174370208),
        ("truenorth", "deep", 4884673184736135326),
        ("truenorth", "recurrent", 18426651126954434172),
        ("truenorth", "conv", 5833508511242535870),
        ("truenorth", "all-to-all 300", 10135279371056554339),
        ("truenorth", "all-to-all 900", 6986320383808072689),
        ("reckon", "mnist", 18210681989907329399),
        ("reckon", "iris", 7032099218432821334),
        ("reckon", "deep", 12849068419283397887),
        ("reckon", "recurrent", 7567262129290592221),
        ("reckon", "conv", 11960814954343343852),
        ("reckon", "all-to-all 300", 12872184725799948038),
        ("reckon", "all-to-all 900", 9550230899368591138),
    ];
    assert_eq!(got, want);
}

/// One graph, one policy: a chain given as a graph maps exactly as by its widths, and an
/// all-to-all group maps as a recurrent layer holding its relays, by the closed forms.
#[test]
fn graphs_map_by_one_policy() {
    use accord::graph::Graph;
    use accord::mapping::{MapOptions, map_graph};
    let bc = chip::open("balance-core").unwrap();
    for (sizes, rec) in [
        (vec![784, 128, 10], vec![]),
        (vec![64, 40, 10], vec![false, true]),
        (vec![300, 500, 500, 10], vec![]),
    ] {
        let g = Graph::layered(&sizes, &rec, Vec::new()).unwrap();
        assert_eq!(
            map_graph(&g, &bc, MapOptions::default()).unwrap(),
            map_net(&sizes, &rec, &[], &bc).unwrap()
        );
    }
    // A masked chain, under each placement, and with and without duplicated inputs on
    // TrueNorth: the graph path equals the widths-and-masks path.
    let mask: bitvec::vec::BitVec = (0..60 * 64).map(|i| (i % 64) / 8 == (i / 64) % 8).collect();
    let masks = vec![Some(mask), None];
    let tn = chip::open("truenorth").unwrap();
    let g = Graph::layered(&[64, 60, 8], &[], masks.clone()).unwrap();
    for (c, placement, duplicate_inputs) in [
        (&bc, Placement::FewestCores, true),
        (&bc, Placement::Dense, true),
        (&bc, Placement::ReceptiveField, true),
        (&tn, Placement::FewestCores, false),
        (&tn, Placement::Dense, true),
    ] {
        let opts = MapOptions {
            placement,
            duplicate_inputs,
        };
        let want = accord::mapping::map_net_opts(
            &[64, 60, 8],
            &[],
            &masks,
            c,
            placement,
            duplicate_inputs,
        )
        .unwrap();
        assert_eq!(map_graph(&g, c, opts).unwrap(), want, "{placement:?}");
    }
    // N = 90 on 12-neuron cores of 4,096 synapses and 64 routing entries: k ≤ 12 (neurons),
    // k × 90 ≤ 4,096 (45), k × ⌈90/k⌉ ≤ 64 (12 × 8 = 96 no, 7 × 13 = 91 no, 6 × 15 = 90 no,
    // 5 × 18 = 90 no, 4 × 23 = 92 no, 3 × 30 = 90 no, 2 × 45 no, 1 × 90 no): nothing fits.
    let tight = chip_with(12, 4096, 128, 64, (4, 4));
    let g = Graph::all_to_all(90, 64, 10, None).unwrap();
    let e = map_graph(&g, &tight, MapOptions::default()).unwrap_err();
    assert!(matches!(e, MapError::Fanout { layer: 0, .. }), "{e:?}");
    // The group sends to its own cores, and the message says so.
    assert!(
        e.to_string().contains("(one per core of layer 0 itself)"),
        "{e}"
    );
    // With 128 entries: k = 12 needs 12 × 8 = 96 ≤ 128, so 8 cores of 12 or 11 neurons along
    // the snake (row 0 left to right, row 1 right to left).
    let roomy = chip_with(12, 4096, 128, 128, (4, 4));
    let m = map_graph(&g, &roomy, MapOptions::default()).unwrap();
    assert_eq!(m.layers.len(), 1);
    let lp = &m.layers[0];
    assert!(lp.recurrent);
    assert_eq!(lens(&m, 0), [12, 12, 11, 11, 11, 11, 11, 11]);
    assert_eq!(lp.cores, [0, 1, 2, 3, 7, 6, 5, 4]);
    assert_eq!((lp.max_chunk, lp.limited_by), (12, "neurons"));
    for c in &m.cores {
        assert_eq!(c.input_axons, 90);
        assert_eq!(c.synapses, c.neurons * 90);
        assert_eq!(c.fanout, c.neurons * 8);
    }
    // Every neuron reaches every core of the group.
    assert_eq!(m.total_routes, 90 * 8);
    // A core with fewer input axons than the group's neurons refuses it, with the numbers.
    let narrow = chip_with(12, 4096, 80, 128, (4, 4));
    let e = map_graph(&g, &narrow, MapOptions::default()).unwrap_err();
    assert!(
        e.to_string()
            .contains("layer 0 projects onto itself and its fan-in of 90 (90 of them its own neurons) exceeds a toy core's 80"),
        "{e}"
    );
    // Not enough cores: the general error, with the count.
    let small = chip_with(12, 4096, 128, 128, (2, 2));
    assert!(matches!(
        map_graph(&g, &small, MapOptions::default()),
        Err(MapError::TooManyCores {
            needed: 8,
            available: 4,
            ..
        })
    ));
    // Two such chips side by side in a system offer 8 cores: the group takes all of them, its
    // routes counted on the system's grid (4 × 2), so some cross between the chips.
    let mut two = small.clone();
    two.system.chips_x = 2;
    let m = map_graph(&g, &two, MapOptions::default()).unwrap();
    assert_eq!((m.mesh_cols, m.mesh_rows, m.cores_available), (4, 2, 8));
    assert_eq!(m.layers[0].cores, [0, 1, 2, 3, 7, 6, 5, 4]);
    // Every neuron reaches every core: on the 4 × 2 grid the distances from one core to all
    // eight sum to 16 from a corner column and 12 from a middle one.
    assert_eq!((0..8).map(|d| m.hops(0, d)).sum::<u32>(), 16);
    assert_eq!((0..8).map(|d| m.hops(5, d)).sum::<u32>(), 12);
    let per_core: usize = m.layers[0]
        .chunks
        .iter()
        .map(|c| c.len * (0..8).map(|d| m.hops(c.core, d) as usize).sum::<usize>())
        .sum();
    let histogram: usize = m
        .hop_histogram
        .iter()
        .enumerate()
        .map(|(h, &n)| h * n as usize)
        .sum();
    assert_eq!(histogram, per_core);
    assert_eq!(m.hops(3, 4), 4);
    // A chain that needs more than one chip's cores maps onto the system, too.
    let sizes = [20, 30, 10];
    assert!(map_net(&sizes, &[], &[], &small).is_err());
    let m = map_net(&sizes, &[], &[], &two).unwrap();
    assert!(m.cores.iter().any(|c| c.core >= 4), "{:?}", m.layers);

    // A graph of a shape the mapping does not place is refused, naming the projection.
    let mut skip = Graph::layered(&[4, 6, 3], &[], Vec::new()).unwrap();
    skip.projections.push(accord::graph::Projection {
        name: String::new(),
        from: 0,
        to: 2,
        mask: None,
        kernel: None,
    });
    let e = map_graph(&skip, &bc, MapOptions::default()).unwrap_err();
    assert!(matches!(e, MapError::Graph(_)), "{e}");
    assert!(
        e.to_string()
            .contains("projection 2 joins group 0 to group 2"),
        "{e}"
    );
}
