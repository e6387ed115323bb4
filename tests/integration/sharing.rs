//! Weight sharing (`core.weight_sharing`): a convolution's kernel stored once per channel on a
//! core, its synapse memory counted as channels × kernel weights, the computation unchanged;
//! refused on a crossbar; expanded while training.

use crate::support::{accord, image_csv, nir_fixture as fixture, scratch, stderr};
use accord::nir::{self, Node};

fn json(args: &[&str]) -> serde_json::Value {
    let o = accord(args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Every expanded synapse's tap names the kernel weight it holds: the file's tensor rebuilds
/// the layer's weights synapse by synapse, and a perturbed copy is found by channel and tap.
#[test]
fn a_convolutions_taps_rebuild_its_weights_and_catch_a_copy_that_differs() {
    let g = nir::read(&fixture("conv_mnist.nir")).unwrap();
    let c = g.to_layered().unwrap();
    let Node::Conv2d { weight, .. } = &g.nodes["conv"] else {
        panic!("conv is a Conv2d")
    };
    let k = c.kernels[0].as_ref().expect("the conv layer has a kernel");
    // 4 channels of 12 × 12 positions; a 1 × 5 × 5 kernel.
    assert_eq!((k.positions, k.taps), (144, 25));
    assert!(c.kernels[1].is_none(), "pool+fc is a composition");
    let mask = c.masks[0].as_ref().unwrap();
    assert_eq!(k.tap.len(), mask.count_ones());
    let layer = &c.net.layers[0];
    for (rank, cell) in mask.iter_ones().enumerate() {
        let (i, t) = (cell / layer.n_in, k.tap[rank] as usize);
        let want = weight.data[k.channel(i) * 25 + t];
        assert_eq!(layer.w[cell], want, "synapse {cell}: tap {t}");
    }
    assert_eq!(k.shared_by(&layer.w, layer.n_in, mask), Ok(()));
    // One copy moved: neuron 150 is channel 1; its third synapse is its kernel's tap 2.
    let mut w = layer.w.clone();
    let cell = mask[150 * 784..151 * 784].iter_ones().nth(2).unwrap() + 150 * 784;
    w[cell] += 1.0 / 64.0;
    let e = k.shared_by(&w, layer.n_in, mask).unwrap_err();
    assert_eq!((e.channel, e.tap, e.neurons), (1, 2, (144, 150)));
    assert_eq!(e.weights.1 - e.weights.0, 1.0 / 64.0);
}

/// On a chip that shares weights, each core of the conv layer stores its channels' kernels
/// (4 × 25 weights) in place of a row per neuron; with synapse memory the binding limit, the
/// layer takes fewer cores.
#[test]
fn a_shared_convolution_stores_its_kernel_once_per_channel_on_each_core() {
    let model = fixture("conv_mnist.nir");
    let map = |sets: &[&str]| {
        let mut args = vec![
            "map",
            "--chip",
            "balance-core",
            "--model",
            model.to_str().unwrap(),
            "--json",
        ];
        for s in sets {
            args.extend(["--set", s]);
        }
        json(&args)["mapping"].clone()
    };
    // balance-core declares no sharing: no `shared` key.
    let plain = map(&[]);
    assert!(plain["layers"][1].get("shared").is_none());
    let shared = map(&["core.weight_sharing=true"]);
    let s = &shared["layers"][1]["shared"];
    assert_eq!(s["taps"], 25);
    assert_eq!(s["channels"], 4);
    assert_eq!(s["synapses"], 576 * 25);
    // Receptive-field order puts the 4 channels of a position side by side: every core of the
    // layer hosts all 4 channels.
    let conv_cores: Vec<&serde_json::Value> = shared["cores"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["layer"] == 1)
        .collect();
    for c in &conv_cores {
        assert_eq!(c["synapses"], 4 * 25, "{c}");
    }
    assert_eq!(s["stored"], conv_cores.len() * 100);
    // Synapse memory the binding limit (20,000 per core): rows over receptive fields need
    // more cores than kernels do, which are then limited by neurons.
    let small = "core.synapses=20000";
    let rows = map(&[small]);
    let kernels = map(&[small, "core.weight_sharing=true"]);
    let layer_cores = |m: &serde_json::Value| m["layers"][1]["cores"].as_array().unwrap().len();
    assert_eq!(rows["layers"][1]["limited_by"], "synapses");
    assert_eq!(kernels["layers"][1]["limited_by"], "neurons");
    assert!(
        layer_cores(&kernels) < layer_cores(&rows),
        "{} vs {}",
        layer_cores(&kernels),
        layer_cores(&rows)
    );
    let text = accord(&[
        "map",
        "--chip",
        "balance-core",
        "--model",
        model.to_str().unwrap(),
        "--set",
        "core.weight_sharing=true",
    ]);
    assert!(
        String::from_utf8_lossy(&text.stdout).contains(
            "weight sharing: layer 1: 4 channels of a 25-weight kernel, stored once per channel \
             on each core that hosts it: 300 weights over the layer's cores instead of one per \
             synapse, 14400"
        ),
        "{}",
        String::from_utf8_lossy(&text.stdout)
    );
}

/// Sharing changes what is stored, not what is computed: the same accuracy and synaptic
/// operations with and without it, and a footprint smaller by the rows the kernels replace.
#[test]
fn sharing_changes_the_footprint_and_nothing_the_chip_computes() {
    let dir = scratch("sharing-run");
    let data = image_csv(&dir);
    let model = fixture("conv.nir");
    // Conv.nir on Loihi, spiking at 16 ticks, r = 1 at dt = 1 (see nir.rs).
    let run = |epochs: &str, sets: &[&str]| {
        let mut args = vec![
            "train",
            "--data",
            data.to_str().unwrap(),
            "--model",
            model.to_str().unwrap(),
            "--chip",
            "loihi",
            "--mode",
            "spiking",
            "--ticks",
            "16",
            "--epochs",
            epochs,
            "--dt",
            "1",
            "--json",
        ];
        for set in sets {
            args.extend(["--set", set]);
        }
        json(&args)
    };
    let (on, off) = (
        run("0", &["core.weight_sharing=true"]),
        run("0", &["core.weight_sharing=false"]),
    );
    assert_eq!(on["test_accuracy"], off["test_accuracy"]);
    assert_eq!(on["config"], off["config"]);
    let ops = |v: &serde_json::Value| v["neurobench"]["synaptic_operations"].clone();
    assert_eq!(ops(&on), ops(&off));
    assert_eq!(
        on["energy"]["inference"]["dynamic_pj_per_sample"],
        off["energy"]["inference"]["dynamic_pj_per_sample"]
    );
    // Loihi hosts the 32 conv neurons on one core either way: its 2 channels × 9 weights
    // replace 32 rows over the 36-pixel field the core sees.
    let shared = &on["mapping"]["layers"][1]["shared"];
    assert_eq!(shared["stored"], 18);
    assert!(off["mapping"]["layers"][1].get("shared").is_none());
    let rows: u64 = off["mapping"]["cores"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["layer"] == 1)
        .map(|c| c["synapses"].as_u64().unwrap())
        .sum();
    let bits = |v: &serde_json::Value| v["neurobench"]["footprint_bits"].as_u64().unwrap();
    // 9-bit weights on Loihi.
    assert_eq!(bits(&off) - bits(&on), (rows - 18) * 9);
    let notes = on["notes"].as_array().unwrap();
    assert!(
        notes.iter().any(|n| n
            .as_str()
            .unwrap()
            .starts_with("SHARING: layer 1: 2 channels")),
        "{notes:?}"
    );
    // Training places the conv expanded, and says why.
    let trained = run("1", &[]);
    assert!(trained["mapping"]["layers"][1].get("shared").is_none());
    assert!(
        trained["notes"].as_array().unwrap().iter().any(|n| n
            .as_str()
            .unwrap()
            .contains("does not tie a shared kernel's updates")),
        "{}",
        trained["notes"]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A crossbar stores connections per synapse and weights per neuron: sharing is refused by key.
#[test]
fn weight_sharing_on_a_crossbar_is_refused_by_key() {
    let o = accord(&[
        "map",
        "--chip",
        "truenorth",
        "--data",
        "iris",
        "--set",
        "core.weight_sharing=true",
    ]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("core.weight_sharing") && e.contains("binary crossbar"),
        "{e}"
    );
}

/// Import says per chip how the conv is stored: Loihi shares it; balance-core does not.
#[test]
fn import_says_how_each_chip_stores_a_convolution() {
    let o = accord(&["import", fixture("conv_mnist.nir").to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains(
        "weights shared: 4 channels of a 25-weight kernel, stored once per channel on each core \
         that hosts it: 100 weights over the layer's cores instead of one per synapse, 14400"
    ));
    assert!(text.contains("the chip declares no weight sharing"));
    assert!(text.contains("its convolutions expanded while it trains"));
    // `accord map` places it as import and a run do (the weights converted for Loihi's
    // neurons): the same cores and kernels.
    let m = json(&[
        "map",
        "--chip",
        "loihi",
        "--model",
        fixture("conv_mnist.nir").to_str().unwrap(),
        "--json",
    ])["mapping"]
        .clone();
    assert_eq!(m["layers"][1]["shared"]["stored"], 100);
    assert_eq!(m["cores"].as_array().unwrap().len(), 3);
    assert!(text.contains("  loihi          3 cores"), "{text}");
}
