//! Event-path throughput of the engine (speed is measured here, never asserted in tests).
//!
//! * `forward`: one graded firing of a random 1000×1000 layer at 10 % input activity, fixed
//!   point on balance-core: 100,000 synaptic ops per iteration (throughput in SOP/s), the
//!   cycle-level mesh's 1,600 packets included; on 1 thread, and on 2 (the mesh on a router
//!   thread of its own).
//! * `retrograde`: the credit step over the same 1000×1000 rows with 10 % of the upper layer
//!   holding credit: 100,000 retrograde SOPs per iteration.
//! * `train_sample_784_128_10`: one training sample (fire + credit + plasticity) on MNIST data,
//!   graded and spiking (T = 32).
//! * `train_sample_784_1000_1000_10`: one graded fixed-point training sample of a 1.8 M-synapse
//!   net on 1 and 2 threads (the same bits either way).

use accord::chip::{self, Action, ChipModel};
use accord::data::Dataset;
use accord::emulator::{
    self, ChipNet, ChipRule, Encoding, FiringMode, FixedNarrow, Tally, layered_pops,
};
use accord::ledger::VarCounters;
use accord::mapping::map_layered;
use accord::rule::{Activation, LayeredNet, Loss};
use criterion::{Bencher, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

/// balance-core on an 8 × 8 mesh: 1000-wide layers need more than its 16 cores (the per-core
/// datapath, formats and prices are unchanged).
fn wide_mesh() -> ChipModel {
    chip::open_with(
        "balance-core",
        &[
            ("mesh.cols".into(), "8".into()),
            ("mesh.rows".into(), "8".into()),
        ],
    )
    .unwrap()
}

fn net_on(
    chip: &ChipModel,
    acts: &[Activation],
    sizes: &[usize],
    mode: FiringMode,
) -> ChipNet<FixedNarrow> {
    let net = LayeredNet::glorot(sizes, acts, 1);
    let mapping = map_layered(sizes, chip).unwrap();
    let mut vars = VarCounters::default();
    let dp: FixedNarrow = emulator::fixed_path(
        chip,
        &layered_pops(acts, &[]),
        0.01,
        0.0,
        ChipRule::Balance,
        1,
        &mut vars,
    )
    .unwrap();
    ChipNet::from_net(
        dp,
        &net,
        &mapping,
        chip,
        mode,
        Loss::CrossEntropy,
        ChipRule::Balance,
        None,
        &mut vars,
    )
}

/// 10 % of `n` inputs active (every tenth), rates in (0, 1).
fn sparse_input(n: usize) -> Vec<f64> {
    (0..n)
        .map(|j| {
            if j % 10 == 0 {
                0.25 + 0.5 * ((j * 7) % 13) as f64 / 13.0
            } else {
                0.0
            }
        })
        .collect()
}

fn forward(c: &mut Criterion) {
    let chip = wide_mesh();
    let mut cn = net_on(
        &chip,
        &[Activation::HardSigmoid],
        &[1000, 1000],
        FiringMode::Graded,
    );
    let x = sparse_input(1000);
    let mut t = Tally::default();
    cn.fire(&x, 0, &mut t);
    let sops = t.ledger.get(Action::Sop);
    assert_eq!(sops, 100 * 1000);
    let mut g = c.benchmark_group("forward");
    g.throughput(Throughput::Elements(sops));
    for threads in [1, 2] {
        // With 2 threads the mesh runs on a router thread beside the cores.
        cn.set_threads(threads, emulator::DEFAULT_PAR_THRESHOLD);
        g.bench_function(
            format!("graded_fixed_1000x1000_10pct_{threads}_threads"),
            |b| {
                b.iter(|| {
                    let mut t = Tally::default();
                    cn.fire(black_box(&x), 0, &mut t);
                    black_box(t.ledger.get(Action::Sop))
                })
            },
        );
    }
    g.finish();
}

fn retrograde(c: &mut Criterion) {
    let chip = wide_mesh();
    let mut cn = net_on(
        &chip,
        &[Activation::HardSigmoid, Activation::Identity],
        &[10, 1000, 1000],
        FiringMode::Graded,
    );
    let mut t = Tally::default();
    // Inputs chosen so every hidden neuron sits in hard-sigmoid's linear range (g = 1).
    cn.fire(&[0.5; 10], 0, &mut t);
    let credit: Vec<f64> = (0..1000)
        .map(|i| if i % 10 == 0 { 0.05 } else { 0.0 })
        .collect();
    let mut t = Tally::default();
    cn.set_credit(2, &credit);
    cn.propagate_credit(2, 0, false, &mut t);
    let rsops = t.ledger.get(Action::RetroSop);
    assert_eq!(rsops, 100 * 1000);
    let mut g = c.benchmark_group("retrograde");
    g.throughput(Throughput::Elements(rsops));
    g.bench_function("fixed_1000x1000_10pct", |b| {
        b.iter(|| {
            let mut t = Tally::default();
            cn.set_credit(2, black_box(&credit));
            cn.propagate_credit(2, 0, false, &mut t);
            black_box(t.ledger.get(Action::RetroSop))
        })
    });
    g.finish();
}

/// One training sample per iteration, the training set's samples in turn.
fn train_in_turn(b: &mut Bencher<'_>, cn: &mut ChipNet<FixedNarrow>, data: &Dataset) {
    let mut k = 0usize;
    b.iter(|| {
        let mut t = Tally::default();
        let i = k % data.len();
        k += 1;
        black_box(cn.sample(data.row(i), data.labels[i], true, k as u64, &mut t))
    })
}

fn train_sample(c: &mut Criterion) {
    let split = accord::data::load("mnist", &accord::data::default_data_dir(), 0).unwrap();
    let chip = chip::open("balance-core").unwrap();
    let sizes = [784, 128, 10];
    let acts = [Activation::HardSigmoid, Activation::Identity];
    let mut g = c.benchmark_group("train_sample_784_128_10");
    for (name, mode) in [
        ("graded", FiringMode::Graded),
        (
            "spiking_t32",
            FiringMode::Spiking {
                ticks: 32,
                encoding: Encoding::Regular,
            },
        ),
    ] {
        let mut cn = net_on(&chip, &acts, &sizes, mode);
        g.bench_function(name, |b| train_in_turn(b, &mut cn, &split.train));
    }
    g.finish();
}

fn train_sample_big(c: &mut Criterion) {
    let split = accord::data::load("mnist", &accord::data::default_data_dir(), 0).unwrap();
    let chip = wide_mesh();
    let sizes = [784, 1000, 1000, 10];
    let acts = [
        Activation::HardSigmoid,
        Activation::HardSigmoid,
        Activation::Identity,
    ];
    let mut g = c.benchmark_group("train_sample_784_1000_1000_10");
    g.sample_size(30);
    for threads in [1usize, 2] {
        let mut cn = net_on(&chip, &acts, &sizes, FiringMode::Graded);
        cn.set_threads(threads, emulator::DEFAULT_PAR_THRESHOLD);
        g.bench_function(format!("graded_fixed_{threads}_threads"), |b| {
            train_in_turn(b, &mut cn, &split.train)
        });
    }
    g.finish();
}

criterion_group!(benches, forward, retrograde, train_sample, train_sample_big);
criterion_main!(benches);
