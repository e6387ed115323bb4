//! Unit tests of the placement helpers and the report.

use super::report::{chunk_sizes, core_runs};
use super::*;
use crate::chip::{self, Mesh};

fn chip_with(
    neurons: u32,
    synapses: u32,
    axons: u32,
    fanout: u32,
    cols: u32,
    rows: u32,
) -> ChipModel {
    let mut c = chip::open("balance-core").expect("shipped model");
    c.name = "test-chip".into();
    c.core.neurons = neurons;
    c.core.synapses = synapses;
    c.core.input_axons = axons;
    c.core.fanout = fanout;
    c.mesh = Mesh { cols, rows };
    c
}

#[test]
fn snake_walks_rows_alternately() {
    let order: Vec<u64> = (0..12).map(|i| snake_core(i, 4)).collect();
    assert_eq!(order, [0, 1, 2, 3, 7, 6, 5, 4, 8, 9, 10, 11]);
    // One column: straight down.
    let order: Vec<u64> = (0..3).map(|i| snake_core(i, 1)).collect();
    assert_eq!(order, [0, 1, 2]);
}

#[test]
fn consecutive_snake_cores_are_one_hop_apart() {
    let c = chip_with(1, 100, 100, 100, 5, 4);
    let m = map_layered(&[5, 5, 5, 5], &c).expect("20 cores fit a 5 x 4 mesh");
    let walk: Vec<usize> = m.layers.iter().flat_map(|l| l.cores.clone()).collect();
    assert_eq!(walk.len(), 20);
    for w in walk.windows(2) {
        assert_eq!(m.hops(w[0], w[1]), 1, "{walk:?}");
    }
}

#[test]
fn chunk_sizes_and_core_runs_read_well() {
    let ch = |lens: &[usize]| -> Vec<Chunk> {
        let mut start = 0;
        lens.iter()
            .enumerate()
            .map(|(i, &len)| {
                let c = Chunk {
                    core: i,
                    start,
                    len,
                };
                start += len;
                c
            })
            .collect()
    };
    assert_eq!(chunk_sizes(&ch(&[196, 196, 196, 196])), "4 x 196");
    assert_eq!(chunk_sizes(&ch(&[43, 43, 42])), "2 x 43, 42");
    assert_eq!(chunk_sizes(&ch(&[7])), "7");
    assert_eq!(core_runs(&[0, 1, 2, 3], 80), "0-3");
    assert_eq!(core_runs(&[7, 6, 5, 4, 8], 80), "7-4, 8");
    assert_eq!(core_runs(&[3, 7], 80), "3, 7");
    let long: Vec<usize> = (0..40).map(|i| i * 2).collect();
    let s = core_runs(&long, 20);
    assert!(s.contains("more)"), "{s}");
    assert!(s.len() < 40, "{s}");
}

#[test]
fn hops_are_manhattan_distances() {
    let c = chip_with(4, 100, 100, 100, 4, 3);
    let m = map_layered(&[2, 2], &c).expect("fits");
    assert_eq!(m.hops(0, 0), 0);
    assert_eq!(m.hops(0, 11), 3 + 2);
    assert_eq!(m.hops(11, 0), 5);
    assert_eq!(m.hops(5, 6), 1);
    assert_eq!(m.hops(3, 4), 3 + 1);
}

#[test]
fn core_of_finds_every_neuron_and_agrees_with_chunks() {
    let c = chip_with(3, 1000, 100, 100, 8, 8);
    let m = map_layered(&[10, 7, 1], &c).expect("fits");
    for lp in &m.layers {
        for ch in &lp.chunks {
            for i in ch.start..ch.start + ch.len {
                assert_eq!(m.core_of(lp.layer, i), ch.core);
            }
        }
    }
    // 10 = 3 + 3 + 2 + 2 (even split, larger first).
    let lens: Vec<usize> = m.layers[0].chunks.iter().map(|c| c.len).collect();
    assert_eq!(lens, [3, 3, 2, 2]);
}

#[test]
#[should_panic(expected = "out of range")]
fn core_of_panics_past_the_layer() {
    let c = chip_with(3, 1000, 100, 100, 8, 8);
    let m = map_layered(&[4, 2], &c).expect("fits");
    let _ = m.core_of(0, 4);
}

#[test]
fn zero_capacity_in_an_edited_model_is_an_error() {
    let c = chip_with(0, 1000, 100, 100, 8, 8);
    let e = map_layered(&[4, 2], &c).unwrap_err();
    assert!(matches!(
        e,
        MapError::ZeroCapacity {
            resource: "neurons",
            ..
        }
    ));
    assert!(e.to_string().contains("core.neurons = 0"), "{e}");
}

#[test]
fn describe_names_every_section() {
    let c = chip_with(3, 1000, 100, 100, 4, 2);
    let m = map_layered(&[4, 6, 2], &c).expect("fits");
    let d = m.describe();
    for needle in [
        "mapping of 4-6-2 onto chip 'test-chip'",
        "cores used: 5 of 8",
        "chunk sizes",
        "2 x 2",
        "(3,1)",
        "pressure",
        "input axons",
        "mean 1.786 hops, max 3",
        "retrograde",
    ] {
        assert!(d.contains(needle), "missing {needle:?} in\n{d}");
    }
}

#[test]
fn describe_elides_long_core_tables() {
    let c = chip_with(1, 1000, 100, 100, 10, 10);
    let m = map_layered(&[50, 40], &c).expect("90 cores fit");
    let d = m.describe();
    assert!(d.contains("58 more cores"), "{d}");
    assert!(d.lines().count() < 80);
}

#[test]
fn describe_buckets_long_hop_histograms() {
    let c = chip_with(1, 1000, 100, 100, 40, 2);
    let m = map_layered(&[40, 40], &c).expect("80 cores fit a 40 x 2 mesh");
    // Layer 0 fills row 0, layer 1 row 1: routes (x, 0) -> (x', 1) have 1..=40 hops, so the
    // histogram has 41 rows, shown in buckets of ceil(41 / 20) = 3 hops.
    assert_eq!(m.hop_histogram.len(), 41);
    let d = m.describe();
    assert!(d.lines().any(|l| l.trim_start().starts_with("0-2 ")), "{d}");
    assert!(
        d.lines().any(|l| l.trim_start().starts_with("39-40 ")),
        "{d}"
    );
    let hist_rows = d.lines().skip_while(|l| !l.contains("share")).count();
    assert!(hist_rows <= 22, "{d}");
}
