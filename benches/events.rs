//! Event-path throughput of the emulator (DESIGN §7: speed is measured here, never asserted in
//! tests).
//!
//! * `forward`: one graded fire phase on a random 1000×1000 layer at 10 % input activity, fixed
//!   point on balance-core: 100,000 synaptic ops per iteration (throughput in SOP/s).
//! * `retrograde`: the credit phase over the same 1000×1000 rows with 10 % of the upper layer
//!   holding credit: 100,000 retrograde SOPs per iteration.
//! * `train_sample`: one training sample (fire + credit + plasticity) of 784-128-10 on MNIST
//!   data in graded and spiking (T = 32) mode.

use accord::chip::{self, Action};
use accord::emulator::{ChipNet, Encoding, FiringMode, FixedPath, Tally};
use accord::ledger::VarCounters;
use accord::mapping::map_layered;
use accord::rule::{Activation, Balance, LayeredNet, Loss};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

fn net_1000(acts: &[Activation], sizes: &[usize]) -> (ChipNet<FixedPath>, LayeredNet) {
    // balance-core's 4×4 mesh holds 1000-wide layers at 64 neurons per core only with more
    // cores: widen the mesh (the per-core datapath, formats and prices are unchanged).
    let mut chip = chip::open("balance-core").unwrap();
    chip.mesh.cols = 8;
    chip.mesh.rows = 8;
    let net = LayeredNet::glorot(sizes, acts, 1);
    let mapping = map_layered(sizes, &chip).unwrap();
    let mut vars = VarCounters::default();
    let bal = vec![Balance::Exact; acts.len()];
    let dp = FixedPath::new(&chip, acts, &bal, 0.01, 0.0, 1, &mut vars).unwrap();
    let cn = ChipNet::new(
        dp,
        &net,
        &mapping,
        &chip,
        FiringMode::Graded,
        Loss::CrossEntropy,
        1,
        1,
        &mut vars,
    );
    (cn, net)
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
    let (mut cn, _) = net_1000(&[Activation::HardSigmoid], &[1000, 1000]);
    let x = sparse_input(1000);
    let mut t = Tally::default();
    cn.fire(&x, 0, &mut t);
    let sops = t.ledger.get(Action::Sop);
    assert_eq!(sops, 100 * 1000);
    let mut g = c.benchmark_group("forward");
    g.throughput(Throughput::Elements(sops));
    g.bench_function("graded_fixed_1000x1000_10pct", |b| {
        b.iter(|| {
            let mut t = Tally::default();
            cn.fire(black_box(&x), 0, &mut t);
            black_box(t.ledger.get(Action::Sop))
        })
    });
    g.finish();
}

fn retrograde(c: &mut Criterion) {
    let (mut cn, _) = net_1000(
        &[Activation::HardSigmoid, Activation::Identity],
        &[10, 1000, 1000],
    );
    let mut t = Tally::default();
    cn.fire(&sparse_input(10), 0, &mut t);
    let credit: Vec<f64> = (0..1000)
        .map(|i| if i % 10 == 0 { 0.05 } else { 0.0 })
        .collect();
    let mut t = Tally::default();
    cn.set_credit(2, &credit, &mut t);
    cn.propagate_credit(2, 0, &mut t);
    let rsops = t.ledger.get(Action::RetroSop);
    assert_eq!(rsops, 100 * 1000);
    let mut g = c.benchmark_group("retrograde");
    g.throughput(Throughput::Elements(rsops));
    g.bench_function("fixed_1000x1000_10pct", |b| {
        b.iter(|| {
            let mut t = Tally::default();
            cn.set_credit(1, &[0.0; 1000], &mut t);
            cn.set_credit(2, black_box(&credit), &mut t);
            cn.propagate_credit(2, 0, &mut t);
            black_box(t.ledger.get(Action::RetroSop))
        })
    });
    g.finish();
}

fn train_sample(c: &mut Criterion) {
    let split = accord::data::load("mnist", &accord::data::default_data_dir(), 0).unwrap();
    let chip = chip::open("balance-core").unwrap();
    let sizes = [784, 128, 10];
    let acts = [Activation::HardSigmoid, Activation::Identity];
    let net = LayeredNet::glorot(&sizes, &acts, 1);
    let mapping = map_layered(&sizes, &chip).unwrap();
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
        let mut vars = VarCounters::default();
        let dp = FixedPath::new(
            &chip,
            &acts,
            &[Balance::Exact, Balance::Exact],
            0.02,
            0.0,
            1,
            &mut vars,
        )
        .unwrap();
        let mut cn = ChipNet::new(
            dp,
            &net,
            &mapping,
            &chip,
            mode,
            Loss::CrossEntropy,
            1,
            1,
            &mut vars,
        );
        let mut k = 0usize;
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut t = Tally::default();
                let i = k % split.train.len();
                k += 1;
                black_box(cn.sample(
                    split.train.row(i),
                    split.train.labels[i],
                    true,
                    k as u64,
                    &mut t,
                ))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, forward, retrograde, train_sample);
criterion_main!(benches);
