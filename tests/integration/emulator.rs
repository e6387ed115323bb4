//! The emulator against the `f64` reference: the float twin is the rule to round-off, wide fixed
//! point is within its quantisation bound, the ledger matches closed forms derived from the
//! state, energy is Σ count × price, and a seed gives the same report at any thread count.

use accord::chip::{self, Action, ChipModel};
use accord::emulator::{
    self, Arith, ChipNet, ChipRule, ChipState, Datapath, EmuConfig, FiringMode, FixedNarrow,
    FixedWide, Tally, finalize_ledger, float_path, layered_pops,
};
use accord::ledger::{VarCounters, energy::price};
use accord::mapping::{Mapping, map_layered};
use accord::rule::{Activation, LayeredNet, Loss, Steps};

fn rel(a: &[f64], b: &[f64]) -> f64 {
    let d: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        .sqrt();
    let s: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    if d == 0.0 { 0.0 } else { d / s.max(1e-300) }
}

/// `net` on `chip` with datapath `dp`, one thread, the balance rule.
fn on_chip<D: Datapath>(
    net: &LayeredNet,
    dp: D,
    mapping: &Mapping,
    chip: &ChipModel,
    mode: FiringMode,
    loss: Loss,
) -> ChipNet<D> {
    let mut vars = VarCounters::default();
    ChipNet::from_net(
        dp,
        net,
        mapping,
        chip,
        mode,
        loss,
        ChipRule::Balance,
        None,
        &mut vars,
    )
}

fn acts_of(net: &LayeredNet) -> Vec<Activation> {
    net.layers.iter().map(|l| l.act).collect()
}

fn float_dp(chip: &ChipModel, net: &LayeredNet, lr: f64) -> emulator::FloatPath {
    float_path(chip, &layered_pops(&acts_of(net), &[]), lr, 0.0, 7)
}

fn fixed_dp(chip: &ChipModel, net: &LayeredNet, lr: f64) -> FixedNarrow {
    let mut vars = VarCounters::default();
    emulator::fixed_path(
        chip,
        &layered_pops(&acts_of(net), &[]),
        lr,
        0.0,
        ChipRule::Balance,
        5,
        &mut vars,
    )
    .expect("datapath")
}

/// `after.w − before.w` of synaptic layer `l`.
fn weight_change(after: &LayeredNet, before: &LayeredNet, l: usize) -> Vec<f64> {
    after.layers[l]
        .w
        .iter()
        .zip(&before.layers[l].w)
        .map(|(a, b)| a - b)
        .collect()
}

fn balance_core() -> ChipModel {
    chip::open("balance-core").expect("shipped chip")
}

/// A small net with non-zero biases, inputs with some zeros (silent neurons).
fn small_net(acts: &[Activation], sizes: &[usize], seed: u64) -> (LayeredNet, Vec<f64>) {
    let mut net = LayeredNet::glorot(sizes, acts, seed);
    for (l, layer) in net.layers.iter_mut().enumerate() {
        for (i, b) in layer.b.iter_mut().enumerate() {
            *b = 0.05 * ((i + l) % 5) as f64 - 0.05;
        }
    }
    let x: Vec<f64> = (0..sizes[0])
        .map(|k| {
            if k % 3 == 0 {
                0.0
            } else {
                0.1 + 0.8 * ((k * 7) % 10) as f64 / 10.0
            }
        })
        .collect();
    (net, x)
}

fn reference_step(
    net: &LayeredNet,
    x: &[f64],
    label: usize,
    loss: Loss,
    lr: f64,
) -> (accord::rule::LayeredState, LayeredNet) {
    let mut s = net.new_state();
    net.fire(x, &mut s);
    net.credit(&mut s, label, loss, Steps::UntilSettled, true);
    let mut after = net.clone();
    after.apply_plasticity(&s, lr);
    (s, after)
}

/// Float twin, graded mode: credits, messages and updated weights equal the reference to 1e-12.
#[test]
fn float_twin_equals_reference() {
    let chip = balance_core();
    for (acts, sizes, loss) in [
        (
            vec![Activation::Sigmoid, Activation::Identity],
            vec![20, 300, 10],
            Loss::CrossEntropy,
        ),
        (
            vec![Activation::Tanh, Activation::Relu, Activation::Sigmoid],
            vec![12, 9, 7, 4],
            Loss::Mse,
        ),
        (
            vec![
                Activation::HardSigmoid,
                Activation::HardSigmoid,
                Activation::Identity,
            ],
            vec![30, 270, 16, 3],
            Loss::CrossEntropy,
        ),
    ] {
        let (net, x) = small_net(&acts, &sizes, 3);
        let lr = 0.3;
        let mapping = map_layered(&sizes, &chip).expect("fits");
        let mut cn = on_chip(
            &net,
            float_dp(&chip, &net, lr),
            &mapping,
            &chip,
            FiringMode::Graded,
            loss,
        );
        let mut t = Tally::default();
        let label = 1;
        cn.sample(&x, label, true, 0, &mut t);
        let (c, d, out) = cn.probe();
        let (s, after) = reference_step(&net, &x, label, loss, lr);
        let m = net.depth();
        assert!(rel(&out, &s.r[m]) <= 1e-12);
        for k in 1..=m {
            assert!(
                rel(&c[k], &s.c[k]) <= 1e-12,
                "credit layer {k}: {}",
                rel(&c[k], &s.c[k])
            );
            assert!(rel(&d[k], &s.delta[k - 1]) <= 1e-12, "delta layer {k}");
        }
        let got = cn.export();
        for l in 0..m {
            let dw_chip = weight_change(&got, &net, l);
            let dw_ref = weight_change(&after, &net, l);
            assert!(
                rel(&dw_chip, &dw_ref) <= 1e-12,
                "update layer {l}: {}",
                rel(&dw_chip, &dw_ref)
            );
        }
        // One training sample of a graded net: m + 1 firing and m credit timesteps.
        assert_eq!(t.timesteps, (2 * m + 1) as u64);
    }
}

/// A chip whose formats are all ≥ 32 bits wide.
fn wide_chip() -> ChipModel {
    let sets = [
        ("formats.weight.bits", "40"),
        ("formats.weight.frac", "30"),
        ("formats.weight.rounding", "nearest-even"),
        ("formats.membrane.bits", "40"),
        ("formats.membrane.frac", "30"),
        ("formats.rate.bits", "36"),
        ("formats.rate.frac", "32"),
        ("formats.credit.bits", "36"),
        ("formats.credit.frac", "32"),
        ("formats.delta.bits", "36"),
        ("formats.delta.frac", "32"),
        ("formats.lut.bits", "34"),
        ("formats.lut.frac", "32"),
        ("formats.accumulator.bits", "40"),
        ("formats.accumulator.frac", "30"),
        ("core.accumulator", "wide"),
        ("formats.learning_rate.bits", "34"),
        ("formats.learning_rate.frac", "32"),
    ];
    let sets: Vec<(String, String)> = sets
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    chip::open_with("balance-core", &sets).expect("wide chip passes the DRC")
}

/// Fixed point with wide formats: within the quantisation bound of the reference. With
/// hard-sigmoid hidden neurons and linear outputs both `f` and `g = f'` are exact in integers
/// (the table's bins fall on 0 and 1), so the only error is rounding at 2⁻³⁰: every value is
/// off by at most a few LSB times the fan-in, far below 1e-6 relative.
#[test]
fn wide_fixed_point_is_within_quantisation_bound() {
    let chip = wide_chip();
    let acts = vec![Activation::HardSigmoid, Activation::Identity];
    let sizes = vec![16, 24, 5];
    let (net, x) = small_net(&acts, &sizes, 11);
    let lr = 0.25;
    let loss = Loss::CrossEntropy;
    let mapping = map_layered(&sizes, &chip).expect("fits");
    let mut vars = VarCounters::default();
    let dp: FixedWide = emulator::fixed_path(
        &chip,
        &layered_pops(&acts, &[]),
        lr,
        0.0,
        ChipRule::Balance,
        5,
        &mut vars,
    )
    .expect("datapath");
    let mut cn = on_chip(&net, dp, &mapping, &chip, FiringMode::Graded, loss);
    let mut t = Tally::default();
    cn.sample(&x, 3, true, 0, &mut t);
    let (c, d, out) = cn.probe();
    let (s, after) = reference_step(&net, &x, 3, loss, lr);
    let bound = 1e-6;
    assert!(
        rel(&out, &s.r[2]) <= bound,
        "outputs {}",
        rel(&out, &s.r[2])
    );
    for k in 1..=2 {
        assert!(
            rel(&c[k], &s.c[k]) <= bound,
            "credit {k}: {}",
            rel(&c[k], &s.c[k])
        );
        assert!(
            rel(&d[k], &s.delta[k - 1]) <= bound,
            "delta {k}: {}",
            rel(&d[k], &s.delta[k - 1])
        );
    }
    let got = cn.export();
    for l in 0..2 {
        let dw_chip = weight_change(&got, &net, l);
        let dw_ref = weight_change(&after, &net, l);
        assert!(
            rel(&dw_chip, &dw_ref) <= bound,
            "update {l}: {}",
            rel(&dw_chip, &dw_ref)
        );
    }
    assert_eq!(
        t.vars.overflow_events(),
        0,
        "no saturation with wide formats"
    );
    // And the bound is not vacuous: balance-core's own 16-bit formats are measurably coarser.
    let chip16 = balance_core();
    let dp = fixed_dp(&chip16, &net, lr);
    let mut cn16 = on_chip(
        &net,
        dp,
        &map_layered(&sizes, &chip16).unwrap(),
        &chip16,
        FiringMode::Graded,
        loss,
    );
    cn16.sample(&x, 3, true, 0, &mut Tally::default());
    let (c16, _, _) = cn16.probe();
    assert!(rel(&c16[1], &s.c[1]) > bound);
}

/// Tiny cores, so that layers spread over several cores and routes have hops.
fn tiny_core_chip() -> ChipModel {
    chip::open_with(
        "balance-core",
        &[
            ("formats.weight.rounding".into(), "nearest-even".into()),
            ("core.neurons".into(), "3".into()),
        ],
    )
    .unwrap()
}

fn nnz(v: &[f64]) -> u64 {
    v.iter().filter(|&&a| a != 0.0).count() as u64
}

/// The counts of one graded training sample, derived independently from the chip's own state
/// after the sample (the values each handler saw), the mapping and the formats:
///
/// * fire: `spike_packet = trace_update = Σ_l nnz(r_l)·cores(l+1)`,
///   `sop = Σ_l nnz(r_l)·n_(l+1)`, `neuron_update_active = Σ_(l≥1) n_l`;
/// * credit: `lut_read = Σ_k nnz(c_k)`, `retro_sop = Σ_(k≥2) Σ_cores nnz(δ_k on core)·n_(k−1)`,
///   `credit_accumulate = nnz(clamp) + retro_packet`, `retro_packet ≤ Σ (axon, core) pairs
///   with some δ on the core` (= in the float twin the pairs whose exact message is non-zero);
/// * plasticity: `weight_update = Σ_l nnz(δ_(l+1))·(nnz(r_l) + 1)`;
/// * `barrier = 2m + 1` timesteps; hops: forward `Σ_l Σ_(j active) Σ_dest hops`, retrograde
///   the hops of the pairs that sent;
/// * memory bits at the stored widths, handler by handler (see the firmware's cost table).
fn check_graded_closed_form<D: Datapath>(
    cn: &ChipNet<D>,
    t: &Tally,
    mapping: &Mapping,
    chip: &ChipModel,
    exact_messages: bool,
) {
    let (c, d, _) = cn.probe();
    let ChipState { r, .. } = cn.state();
    let sizes = cn.sizes().to_vec();
    let m = sizes.len() - 1;
    let cores = |l: usize| mapping.layers[l].chunks.len() as u64;
    let n = |l: usize| sizes[l] as u64;
    let l = &t.ledger;
    let pk: u64 = (0..m).map(|k| nnz(&r[k]) * cores(k + 1)).sum();
    assert_eq!(l.get(Action::SpikePacket), pk);
    assert_eq!(l.get(Action::TraceUpdate), pk);
    let sop: u64 = (0..m).map(|k| nnz(&r[k]) * n(k + 1)).sum();
    assert_eq!(l.get(Action::Sop), sop);
    let upd: u64 = (1..=m).map(n).sum();
    assert_eq!(l.get(Action::NeuronUpdateActive), upd);
    assert_eq!(l.get(Action::NeuronUpdateIdle), 0);
    let lut: u64 = (1..=m).map(|k| nnz(&c[k])).sum();
    assert_eq!(l.get(Action::LutRead), lut);
    let mut rsop = 0;
    let mut pairs = 0;
    let mut retro_hops = 0u64;
    let export = cn.export();
    for k in 2..=m {
        for ch in &mapping.layers[k].chunks {
            let dd = &d[k][ch.start..ch.start + ch.len];
            rsop += nnz(dd) * n(k - 1);
            if nnz(dd) == 0 {
                continue;
            }
            for j in 0..sizes[k - 1] {
                let mj: f64 = (0..ch.len)
                    .map(|i| export.layers[k - 1].w[(ch.start + i) * sizes[k - 1] + j] * dd[i])
                    .sum();
                if !exact_messages || mj != 0.0 {
                    pairs += 1;
                    retro_hops += mapping.hops(ch.core, mapping.core_of(k - 1, j)) as u64;
                }
            }
        }
    }
    assert_eq!(l.get(Action::RetroSop), rsop);
    let packets = l.get(Action::RetroPacket);
    if exact_messages {
        assert_eq!(packets, pairs);
    } else {
        assert!(packets <= pairs && packets > 0);
    }
    let clamps = nnz(&c[m]);
    assert_eq!(l.get(Action::CreditAccumulate), clamps + packets);
    let syn_updates: u64 = (0..m).map(|k| nnz(&d[k + 1]) * nnz(&r[k])).sum();
    let bias_updates: u64 = (1..=m).map(|k| nnz(&d[k])).sum();
    assert_eq!(l.get(Action::WeightUpdate), syn_updates + bias_updates);
    assert_eq!(l.get(Action::Barrier), 2 * m as u64 + 1);
    let mut fwd_hops = 0u64;
    for (layer, rates) in r.iter().take(m).enumerate() {
        for (j, &rj) in rates.iter().enumerate() {
            if rj != 0.0 {
                for dc in &mapping.layers[layer + 1].chunks {
                    fwd_hops += mapping.hops(mapping.core_of(layer, j), dc.core) as u64;
                }
            }
        }
    }
    assert!(fwd_hops > 0, "the test should exercise routing");
    if exact_messages {
        assert_eq!(l.get(Action::Hop), fwd_hops + retro_hops);
        assert_eq!(t.retro_hops, retro_hops);
    } else {
        assert!(l.get(Action::Hop) >= fwd_hops);
    }
    // Memory bits, handler by handler, at the stored widths.
    let f = &chip.formats;
    let (wb, mb, rb, cb, db, lb) = (
        f.weight.bits as u64,
        f.membrane.bits as u64,
        f.rate.bits as u64,
        f.credit.bits as u64,
        f.delta.bits as u64,
        f.lut.bits as u64,
    );
    assert_eq!(
        l.get(Action::SynapseMemReadBit),
        (sop + rsop + syn_updates) * wb
    );
    assert_eq!(l.get(Action::SynapseMemWriteBit), syn_updates * wb);
    // Cores of layer k with δ on them latch δ once for the retrograde walk (k ≥ 2) and once
    // for plasticity; rows with an active trace are read once per core holding δ.
    let mut latch = 0u64;
    let mut rows = 0u64;
    for k in 1..=m {
        for ch in &mapping.layers[k].chunks {
            let z = nnz(&d[k][ch.start..ch.start + ch.len]);
            if z > 0 {
                latch += z * if k >= 2 { 2 } else { 1 };
                rows += nnz(&r[k - 1]);
            }
        }
    }
    let credit_arrivals = clamps + packets;
    let neu_read = upd * wb
        + lut * (mb + cb + lb)
        + credit_arrivals * cb
        + latch * db
        + rows * rb
        + bias_updates * wb;
    let neu_write = pk * rb + upd * (mb + rb) + lut * db + credit_arrivals * cb + bias_updates * wb;
    assert_eq!(l.get(Action::NeuronMemReadBit), neu_read);
    assert_eq!(l.get(Action::NeuronMemWriteBit), neu_write);
}

/// Ledger counts equal closed forms on a small net, graded, in the float twin and in fixed
/// point.
#[test]
fn graded_ledger_matches_closed_forms() {
    let chip = tiny_core_chip();
    let acts = vec![Activation::Relu, Activation::Identity];
    let sizes = vec![7, 5, 4];
    let (net, x) = small_net(&acts, &sizes, 2);
    let mapping = map_layered(&sizes, &chip).expect("fits");
    fn check<D: Datapath>(
        dp: D,
        float: bool,
        net: &LayeredNet,
        x: &[f64],
        mapping: &Mapping,
        chip: &ChipModel,
    ) {
        let mut cn = on_chip(
            net,
            dp,
            mapping,
            chip,
            FiringMode::Graded,
            Loss::CrossEntropy,
        );
        let mut t = Tally::default();
        cn.sample(x, 2, true, 0, &mut t);
        check_graded_closed_form(&cn, &t, mapping, chip, float);
    }
    check(float_dp(&chip, &net, 0.1), true, &net, &x, &mapping, &chip);
    check(fixed_dp(&chip, &net, 0.1), false, &net, &x, &mapping, &chip);
}

/// Spiking inference: every spike of layer `l` is one packet per core of layer `l + 1` and one
/// row walk there; every neuron of layers ≥ 1 updates once per tick; the sample takes `T + m`
/// timesteps (a pipeline), each with one barrier; memory bits follow handler by handler.
#[test]
fn spiking_ledger_matches_closed_forms() {
    let chip = tiny_core_chip();
    let acts = vec![Activation::HardSigmoid, Activation::Identity];
    let sizes = vec![7, 5, 4];
    let (mut net, x) = small_net(&acts, &sizes, 2);
    // Strong positive weights so that hidden neurons spike.
    for w in &mut net.layers[0].w {
        *w = w.abs() + 0.2;
    }
    let mapping = map_layered(&sizes, &chip).expect("fits");
    let ticks = 16u32;
    let mode = FiringMode::Spiking {
        ticks,
        encoding: emulator::Encoding::Regular,
    };
    for fixed in [false, true] {
        let mut t = Tally::default();
        let (st, ledger) = if fixed {
            let mut cn = on_chip(
                &net,
                fixed_dp(&chip, &net, 0.1),
                &mapping,
                &chip,
                mode,
                Loss::CrossEntropy,
            );
            cn.sample(&x, 1, false, 3, &mut t);
            (cn.state(), t.ledger)
        } else {
            let mut cn = on_chip(
                &net,
                float_dp(&chip, &net, 0.1),
                &mapping,
                &chip,
                mode,
                Loss::CrossEntropy,
            );
            cn.sample(&x, 1, false, 3, &mut t);
            (cn.state(), t.ledger)
        };
        let m = sizes.len() - 1;
        let spikes = |l: usize| st.counts[l].iter().map(|&k| k as u64).sum::<u64>();
        assert!(spikes(1) > 0, "hidden neurons should spike");
        let cores = |l: usize| mapping.layers[l].chunks.len() as u64;
        let pk: u64 = (0..m).map(|l| spikes(l) * cores(l + 1)).sum();
        assert_eq!(ledger.get(Action::SpikePacket), pk, "fixed {fixed}");
        assert_eq!(ledger.get(Action::TraceUpdate), pk);
        let sop: u64 = (0..m).map(|l| spikes(l) * sizes[l + 1] as u64).sum();
        assert_eq!(ledger.get(Action::Sop), sop);
        let n: u64 = sizes[1..].iter().map(|&k| k as u64).sum();
        assert_eq!(
            ledger.get(Action::NeuronUpdateActive) + ledger.get(Action::NeuronUpdateIdle),
            n * u64::from(ticks)
        );
        assert_eq!(ledger.get(Action::Barrier), u64::from(ticks) + m as u64);
        assert_eq!(t.timesteps, u64::from(ticks) + m as u64);
        assert_eq!(ledger.get(Action::RngDraw), 0);
        let f = &chip.formats;
        let (wb, mb, rb) = (
            f.weight.bits as u64,
            f.membrane.bits as u64,
            f.rate.bits as u64,
        );
        assert_eq!(ledger.get(Action::SynapseMemReadBit), sop * wb);
        assert_eq!(
            ledger.get(Action::NeuronMemReadBit),
            n * u64::from(ticks) * (mb + wb)
        );
        assert_eq!(
            ledger.get(Action::NeuronMemWriteBit),
            n * u64::from(ticks) * mb + n * (mb + rb) + pk * rb
        );
    }
}

/// Energy is Σ count × price, exactly, including emulated primitives (each via action charged
/// once) and nothing for unpriced ones (which are listed).
#[test]
fn energy_is_sum_of_count_times_price() {
    for name in ["balance-core", "loihi", "reckon"] {
        let chip = chip::open(name).unwrap();
        let mut l = accord::ledger::Ledger::default();
        for (k, a) in Action::ALL.into_iter().enumerate() {
            l.add(a, 1000 + 37 * k as u64);
        }
        let e = price(&l, &chip);
        let mut want = 0.0;
        let mut unpriced = Vec::new();
        for a in Action::ALL {
            match chip.energy_pj(a) {
                Some(p) => want += l.get(a) as f64 * p,
                None => unpriced.push(a.name()),
            }
        }
        assert_eq!(e.dynamic_pj, want, "{name}");
        assert_eq!(e.unpriced, unpriced, "{name}");
        for (a, em) in &chip.emulations {
            if chip.missing.contains(a) {
                let via: Option<f64> = em.via.iter().map(|v| chip.energy_pj(*v)).sum();
                assert_eq!(chip.energy_pj(*a), via, "{name} {a}");
            }
        }
    }
}

fn tiny_config(threads: usize, mode: FiringMode, arith: Arith) -> EmuConfig {
    EmuConfig {
        chip: balance_core(),
        hidden: vec![12],
        activation: Activation::HardSigmoid,
        loss: Loss::CrossEntropy,
        lr: 0.05,
        epochs: 2,
        seed: 4,
        mode,
        arith,
        threads,
        message_threshold: 0.0,
        rule: ChipRule::Balance,
        placement: accord::mapping::Placement::FewestCores,
        duplicate_inputs: true,
    }
}

fn without_wall_time(mut v: serde_json::Value) -> serde_json::Value {
    for e in v["epochs"].as_array_mut().unwrap() {
        e.as_object_mut().unwrap().remove("seconds");
    }
    v["config"].as_object_mut().unwrap().remove("threads");
    v
}

/// Same seed ⇒ bit-identical JSON report at 1, 2 and 4 threads (wall time and the thread count
/// itself aside), with every timestep's cores spread over threads (threshold 0): graded fixed
/// point with stochastic rounding, spiking training with Poisson inputs, the float twin, and a
/// comparison rule.
#[test]
fn same_report_at_any_thread_count() {
    let split = accord::data::load("iris", &accord::data::default_data_dir(), 0).unwrap();
    let tiny_cores = chip::open_with("balance-core", &[("core.neurons".into(), "4".into())])
        .expect("chip with 4-neuron cores");
    for (mode, arith, rule) in [
        (FiringMode::Graded, Arith::Fixed, ChipRule::Balance),
        (
            FiringMode::Spiking {
                ticks: 8,
                encoding: emulator::Encoding::Poisson,
            },
            Arith::Fixed,
            ChipRule::Balance,
        ),
        (FiringMode::Graded, Arith::Float, ChipRule::Balance),
        (FiringMode::Graded, Arith::Fixed, ChipRule::Backprop),
    ] {
        let mut reports = Vec::new();
        for threads in [1, 2, 4] {
            let mut cfg = tiny_config(threads, mode, arith);
            cfg.chip = tiny_cores.clone();
            cfg.rule = rule;
            let r = emulator::run_with(&cfg, &split, None, 0).expect("runs");
            reports.push(without_wall_time(serde_json::to_value(&r).unwrap()));
        }
        assert_eq!(reports[0], reports[1], "{mode:?} {rule:?} 1 vs 2 threads");
        assert_eq!(reports[0], reports[2], "{mode:?} {rule:?} 1 vs 4 threads");
    }
    // A split fan-in (the 12 hidden neurons' outputs over cores of 5 axons: three segments that
    // send retrograde messages of their own).
    let split_cores = chip::open_with(
        "balance-core",
        &[
            ("core.neurons".into(), "4".into()),
            ("core.input_axons".into(), "5".into()),
        ],
    )
    .expect("chip with 5-axon cores");
    for mode in [
        FiringMode::Graded,
        FiringMode::Spiking {
            ticks: 8,
            encoding: emulator::Encoding::Poisson,
        },
    ] {
        let reports: Vec<_> = [1, 2, 4]
            .into_iter()
            .map(|threads| {
                let mut cfg = tiny_config(threads, mode, Arith::Fixed);
                cfg.chip = split_cores.clone();
                let r = emulator::run_with(&cfg, &split, None, 0).expect("runs");
                assert_eq!(r.mapping.layers[2].segments.len(), 3);
                without_wall_time(serde_json::to_value(&r).unwrap())
            })
            .collect();
        assert_eq!(reports[0], reports[1], "split {mode:?} 1 vs 2 threads");
        assert_eq!(reports[0], reports[2], "split {mode:?} 1 vs 4 threads");
    }
}

/// The emulator learns: digits on balance-core in fixed point, graded and spiking.
#[test]
fn learns_digits_on_balance_core() {
    let split = accord::data::load("digits", &accord::data::default_data_dir(), 0).unwrap();
    let mut cfg = tiny_config(2, FiringMode::Graded, Arith::Fixed);
    cfg.hidden = vec![32];
    cfg.epochs = 4;
    let r = emulator::run(&cfg, &split, None).unwrap();
    assert!(r.test_accuracy > 0.9, "graded fixed: {}", r.test_accuracy);
    cfg.mode = FiringMode::Spiking {
        ticks: 16,
        encoding: emulator::Encoding::Regular,
    };
    let r = emulator::run(&cfg, &split, None).unwrap();
    assert!(r.test_accuracy > 0.85, "spiking fixed: {}", r.test_accuracy);
    assert!(r.neurobench.synaptic_operations.Effective_ACs > 0.0);
    // A sparse spiking run: effective neuron operations (neurons of cores that had input) are
    // fewer than a dense engine's every-neuron-every-step count.
    let ops = &r.neurobench.neuron_ops;
    assert!(
        ops.effective > 0.0 && ops.effective < ops.dense,
        "{} vs {}",
        ops.effective,
        ops.dense
    );
    // Activation sparsity per layer of neurons: the hidden layer is counted, and the overall
    // figure lies between the layers' (it is their output-weighted mean).
    let per = &r.neurobench.activation_sparsity_per_layer;
    assert_eq!(per.len(), 2, "{per:?}");
    let counted: Vec<f64> = per.iter().flatten().copied().collect();
    assert!(!counted.is_empty() && per[0].is_some(), "{per:?}");
    let (lo, hi) = counted
        .iter()
        .fold((1.0f64, 0.0f64), |(a, b), &x| (a.min(x), b.max(x)));
    let all = r.neurobench.activation_sparsity;
    assert!(
        all >= lo - 1e-12 && all <= hi + 1e-12,
        "{all} not within {per:?}"
    );
}

/// Training needs primitives TrueNorth lacks: a clear error naming them; inference maps.
#[test]
fn truenorth_cannot_train() {
    let split = accord::data::load("iris", &accord::data::default_data_dir(), 0).unwrap();
    let mut cfg = tiny_config(
        1,
        FiringMode::Spiking {
            ticks: 8,
            encoding: emulator::Encoding::Regular,
        },
        Arith::Fixed,
    );
    cfg.chip = chip::open("truenorth").unwrap();
    let e = emulator::run(&cfg, &split, None).unwrap_err().to_string();
    for p in ["lut_read", "retro_sop", "weight_update"] {
        assert!(e.contains(p), "{e}");
    }
    cfg.epochs = 0;
    let r = emulator::run(&cfg, &split, None).expect("inference runs on truenorth");
    assert_eq!(r.ledger.training.get(Action::WeightUpdate), 0);
    assert!(r.ledger.inference.get(Action::Sop) > 0);
    // A pipeline, not a layer loop: T + m = 8 + 2 timesteps of (at least) one 1 ms tick each.
    assert_eq!(r.timescales.timesteps_per_inference_sample, 10.0);
    let tick_ns = 1e6;
    assert!(r.timescales.inference_latency_ns >= 10.0 * tick_ns);
    assert!(r.timescales.inference_latency_ns < 11.0 * tick_ns);
    // NeuroBench's model execution rate: the timestep rate in modelled time, here the 1 kHz
    // tick (10 timesteps in exactly 10 ms when no timestep overruns its tick).
    let rate = r.neurobench.model_execution_rate.unwrap();
    assert!(
        (rate - 1e9 * 10.0 / r.timescales.inference_latency_ns).abs() < 1e-9 && rate <= 1000.0,
        "{rate}"
    );
    // Its default price set charges static power: 2.3 pJ per synaptic event beside it.
    assert_eq!(r.chip.price_set, "akopyan-fit");
    let inf = &r.energy.inference;
    let used = inf.static_pj_per_sample.unwrap();
    assert!(used > 0.0);
    // mW × ns = pJ: the cores used, and the other bound, all 4,096 cores leaking.
    let mw = cfg.chip.static_power.as_ref().unwrap().mw_per_core;
    let cores = r.mapping.cores_used() as f64;
    assert!((used - mw * cores * inf.time_ns_per_sample).abs() <= 1e-9 * used);
    let whole = inf.static_whole_system_pj_per_sample.unwrap();
    assert!((whole - used * 4096.0 / cores).abs() <= 1e-9 * whole);
}

/// The comparison rules on the same chip: backprop computes the same update as the balance rule
/// but keeps a transposed copy in the presynaptic cores, which receive every δ as a packet, sum
/// over the copy and write it (a second weight update per synapse); feedback alignment ships δ
/// the same way but through a fixed random matrix, so only the top layer's update agrees.
#[test]
fn comparison_rules_cost_and_compute_as_documented() {
    // Two cores per hidden layer so that credit crosses several cores.
    let chip = chip::open_with("balance-core", &[("core.neurons".into(), "4".into())]).unwrap();
    let acts = vec![Activation::Tanh, Activation::Sigmoid, Activation::Identity];
    let sizes = vec![6, 7, 5, 3];
    let (net, x) = small_net(&acts, &sizes, 8);
    let mapping = map_layered(&sizes, &chip).expect("fits");
    let run = |rule: ChipRule| {
        let dp = float_path(&chip, &layered_pops(&acts, &[]), 0.2, 0.0, 1);
        let mut vars = VarCounters::default();
        let feedback = LayeredNet::glorot(&sizes, &acts, 99);
        let mut cn = ChipNet::from_net(
            dp,
            &net,
            &mapping,
            &chip,
            FiringMode::Graded,
            Loss::CrossEntropy,
            rule,
            Some(&feedback),
            &mut vars,
        );
        let mut t = Tally::default();
        cn.sample(&x, 1, true, 0, &mut t);
        let (_, d, _) = cn.probe();
        (cn.export(), t, d)
    };
    let (w_bal, t_bal, d_bal) = run(ChipRule::Balance);
    let (w_bp, t_bp, _) = run(ChipRule::Backprop);
    let (w_fa, t_fa, _) = run(ChipRule::FeedbackAlignment);
    for l in 0..3 {
        assert!(
            rel(&w_bp.layers[l].w, &w_bal.layers[l].w) <= 1e-12,
            "layer {l}"
        );
    }
    assert!(rel(&w_fa.layers[2].w, &w_bal.layers[2].w) <= 1e-12);
    let dw = |a: &LayeredNet| -> Vec<f64> {
        a.layers[0]
            .w
            .iter()
            .zip(&net.layers[0].w)
            .map(|(x, y)| x - y)
            .collect()
    };
    assert!(rel(&dw(&w_fa), &dw(&w_bal)) > 1e-3);
    // Costs. Backprop's presynaptic cores write their copy of every synapse of layers 2 and 3
    // that the post core writes (biases and layer 1 have no copy).
    let (s, _) = reference_step(&net, &x, 1, Loss::CrossEntropy, 0.2);
    let copy_writes: u64 = (1..3).map(|l| nnz(&s.delta[l]) * nnz(&s.r[l])).sum();
    assert_eq!(
        t_bp.ledger.get(Action::WeightUpdate),
        t_bal.ledger.get(Action::WeightUpdate) + copy_writes
    );
    assert_eq!(
        t_fa.ledger.get(Action::WeightUpdate),
        t_bal.ledger.get(Action::WeightUpdate)
    );
    // δ travels to every core of the layer below: Σ_(k≥2) Σ_cores nnz(δ_k on core) · cores(k−1).
    let packets: u64 = (2..=3)
        .map(|k: usize| nnz(&d_bal[k]) * mapping.layers[k - 1].chunks.len() as u64)
        .sum();
    assert_eq!(t_bp.ledger.get(Action::RetroPacket), packets);
    assert_eq!(t_fa.ledger.get(Action::RetroPacket), packets);
    // The copy walks: one retro_sop per (δ packet, neuron of the receiving core).
    let copy_sops: u64 = (2..=3)
        .map(|k: usize| nnz(&d_bal[k]) * sizes[k - 1] as u64)
        .sum();
    assert_eq!(t_bp.ledger.get(Action::RetroSop), copy_sops);
    assert_eq!(t_bal.ledger.get(Action::RetroSop), copy_sops);
}

/// The message threshold drops retrograde messages (packets), counts them, and a threshold below
/// one LSB of the credit format is refused.
#[test]
fn message_threshold_drops_messages() {
    let split = accord::data::load("iris", &accord::data::default_data_dir(), 0).unwrap();
    let mut cfg = tiny_config(1, FiringMode::Graded, Arith::Fixed);
    cfg.hidden = vec![12, 8];
    cfg.epochs = 1;
    let base = emulator::run(&cfg, &split, None).unwrap();
    cfg.message_threshold = 0.01;
    let thr = emulator::run(&cfg, &split, None).unwrap();
    let sent = |r: &emulator::EmuReport| r.ledger.training.get(Action::RetroPacket);
    assert!(thr.ledger.dropped_messages > 0);
    // Every dropped message is a packet not sent (the schedules may differ after the first
    // update, so compare the first sample's worth loosely: fewer packets overall).
    assert!(sent(&thr) < sent(&base));
    cfg.message_threshold = 1e-9;
    let e = emulator::run(&cfg, &split, None).unwrap_err().to_string();
    assert!(e.contains("below one LSB"), "{e}");
}

/// All-to-all nets on the chip: the float twin's settled firing, credits and updates equal the
/// f64 reference's relaxations (both run to a tight tolerance), and every synapse the update
/// touches exists.
#[test]
fn all_to_all_float_twin_equals_reference() {
    use accord::emulator::all_to_all::AllToAllChipNet;
    use accord::rule::{Balance, CreditOptions, GeneralNet, RelaxOptions};
    let chip = chip::open_with("balance-core", &[("core.neurons".into(), "7".into())]).unwrap();
    let mut net =
        GeneralNet::all_to_all(20, 4, 3, Activation::Sigmoid, Activation::Sigmoid, 1.0, 3);
    net.b
        .iter_mut()
        .enumerate()
        .for_each(|(i, b)| *b = 0.02 * i as f64 - 0.2);
    let x = [0.9, 0.0, 0.4, 0.7];
    let (label, lr) = (2, 0.5);
    let pops = vec![
        emulator::PopSpec {
            act: Activation::Sigmoid,
            balance: Balance::Exact,
            readout: false,
            soma: None,
        };
        2
    ];
    let dp = float_path(&chip, &pops, lr, 0.0, 1);
    let mut vars = VarCounters::default();
    let mut cn = AllToAllChipNet::new(dp, &net, &chip, Loss::Mse, &mut vars).unwrap();
    assert_eq!(cn.cores_used(), 3);
    let mut t = Tally::default();
    assert!(cn.fire(&x, 1e-14, 10_000, 0, &mut t).converged);
    assert!(cn.credit(label, 1e-14, 10_000, 0, &mut t).converged);
    cn.plasticity(0, &mut t);
    let mut s = net.new_state();
    let relax = RelaxOptions {
        tol: 1e-14,
        max_iter: 10_000,
        damping: 1.0,
    };
    net.fire(&x, &mut s, &relax);
    let copt = CreditOptions {
        tol: 1e-14,
        max_steps: 10_000,
        ..CreditOptions::default()
    };
    net.credit(&mut s, label, Loss::Mse, &copt);
    let mut after = net.clone();
    after.apply_plasticity(&s, lr);
    let got = cn.weights();
    let dw_chip: Vec<f64> = got.iter().zip(&net.w).map(|(a, b)| a - b).collect();
    let dw_ref: Vec<f64> = after.w.iter().zip(&net.w).map(|(a, b)| a - b).collect();
    assert!(rel(&dw_chip, &dw_ref) <= 1e-9, "{}", rel(&dw_chip, &dw_ref));
    for (k, d) in dw_chip.iter().enumerate() {
        if !net.mask[k] {
            assert_eq!(*d, 0.0, "synapse {k} does not exist");
        }
    }
    assert!(t.ledger.get(Action::RetroSop) > 0 && t.ledger.get(Action::RetroPacket) > 0);
    assert!(
        t.ledger.get(Action::Hop) > 0,
        "three cores: packets cross the mesh"
    );
}

/// Graded energy and latency on the shipped chips are finalised consistently: the ledger's
/// rng_draw is the format events' draws.
#[test]
fn finalize_adds_rounding_draws() {
    let split = accord::data::load("iris", &accord::data::default_data_dir(), 0).unwrap();
    let cfg = tiny_config(1, FiringMode::Graded, Arith::Fixed);
    let r = emulator::run(&cfg, &split, None).unwrap();
    let draws: u64 = r
        .ledger
        .format_events
        .entries()
        .iter()
        .map(|(_, c)| c.rng_draws)
        .sum();
    assert_eq!(
        r.ledger.training.get(Action::RngDraw) + r.ledger.inference.get(Action::RngDraw),
        draws
    );
    let t = Tally::default();
    assert_eq!(finalize_ledger(&t).total(), 0);
}

/// A fan-in split over dendrite segments computes what the whole fan-in computes, in inference
/// and in training: in fixed point the same outputs and weights bit for bit (partial sums travel
/// in accumulator units, no add saturates here, and the segments' random streams are the whole
/// rows'); in the float twin the same up to summation order (segments sum first); one more
/// timestep per split layer and phase; per segment and neuron one partial-sum packet (a forward
/// packet and one accumulate) and one `δ` packet back.
#[test]
fn a_split_fan_in_computes_what_the_whole_one_does() {
    let split = accord::data::load("digits", &accord::data::default_data_dir(), 0).unwrap();
    // 64 inputs over cores of 20 axons: four segments of 16.
    let narrow =
        chip::open_with("balance-core", &[("core.input_axons".into(), "20".into())]).unwrap();
    for mode in [
        FiringMode::Graded,
        FiringMode::Spiking {
            ticks: 8,
            encoding: emulator::Encoding::Regular,
        },
    ] {
        for arith in [Arith::Fixed, Arith::Float] {
            for epochs in [0, 1] {
                let what = format!("{mode:?} {arith:?} {epochs} epochs");
                let mut cfg = tiny_config(1, mode, arith);
                cfg.epochs = epochs;
                let whole = emulator::run(&cfg, &split, None).unwrap();
                cfg.chip = narrow.clone();
                let parts = emulator::run(&cfg, &split, None).unwrap();
                assert_eq!(parts.mapping.layers[1].segments.len(), 4, "{what}");
                assert!(whole.mapping.layers[1].segments.is_empty());
                let same = |a: f64, b: f64| match arith {
                    Arith::Fixed => a == b,
                    Arith::Float => (a - b).abs() <= 1e-12 * b.abs().max(1.0),
                };
                assert_eq!(parts.test_accuracy, whole.test_accuracy, "{what}");
                assert!(same(parts.test_loss, whole.test_loss), "{what}");
                for (a, b) in parts.epochs.iter().zip(&whole.epochs) {
                    assert!(same(a.train_loss, b.train_loss), "{what}");
                    assert!(same(a.test_loss, b.test_loss), "{what}");
                    assert_eq!(a.test_accuracy, b.test_accuracy, "{what}");
                }
                let (w, p) = (&whole.ledger.inference, &parts.ledger.inference);
                let partials = parts.mesh.inference.partial_packets;
                assert!(partials > 0);
                assert_eq!(whole.mesh.inference.partial_packets, 0);
                assert_eq!(p.get(Action::Sop), w.get(Action::Sop) + partials);
                // The network's own synaptic operations are unchanged.
                let (ws, ps) = (
                    &whole.neurobench.synaptic_operations,
                    &parts.neurobench.synaptic_operations,
                );
                assert_eq!(
                    (ps.Effective_MACs, ps.Effective_ACs),
                    (ws.Effective_MACs, ws.Effective_ACs),
                    "{what}"
                );
                assert_eq!(
                    p.get(Action::SpikePacket),
                    w.get(Action::SpikePacket) + partials
                );
                assert_eq!(
                    parts.timescales.timesteps_per_inference_sample,
                    whole.timescales.timesteps_per_inference_sample + 1.0
                );
                if epochs > 0 {
                    let (w, p) = (&whole.ledger.training, &parts.ledger.training);
                    for a in [Action::WeightUpdate, Action::RetroSop, Action::LutRead] {
                        assert_eq!(p.get(a), w.get(a), "{what}: {a:?}");
                    }
                    let deltas = parts.mesh.training.segment_delta_packets;
                    assert!(deltas > 0);
                    assert_eq!(
                        p.get(Action::RetroPacket),
                        w.get(Action::RetroPacket) + deltas,
                        "{what}"
                    );
                    assert_eq!(
                        parts.timescales.timesteps_per_train_sample,
                        whole.timescales.timesteps_per_train_sample + 2.0
                    );
                }
            }
        }
    }
    // The comparison rules do not train split layers: refused, with the ways out named.
    let mut cfg = tiny_config(1, FiringMode::Graded, Arith::Fixed);
    cfg.chip = narrow;
    cfg.rule = ChipRule::Backprop;
    let e = emulator::run(&cfg, &split, None).unwrap_err().to_string();
    assert!(
        e.contains("balance rule") && e.contains("splits over 4 cores"),
        "{e}"
    );
}

/// balance-core with a 2-type binary crossbar, 5 neurons and `axons` input axons per core.
fn crossbar_chip(axons: usize) -> ChipModel {
    chip::open_with(
        "balance-core",
        &[
            ("core.axon_types".into(), "2".into()),
            ("core.neurons".into(), "5".into()),
            ("core.input_axons".into(), axons.to_string()),
        ],
    )
    .unwrap()
}

/// A chip with a binary crossbar (`core.axon_types`) holds only crossbar weights: per core and
/// neuron at most one value per axon type, so at most `T` distinct non-zero weights; the fit's
/// figures agree with the weights the chip holds; rows walk only connected synapses; a crossbar
/// chip refuses to learn; and the key is range-checked. (Cores of 12 input axons have no room
/// to duplicate the 9 and 8 inputs; the next test gives them room.)
#[test]
fn a_crossbar_chip_holds_crossbar_weights() {
    let chip = crossbar_chip(12);
    let acts = vec![Activation::HardSigmoid, Activation::Identity];
    let sizes = vec![9, 8, 3];
    let (net, x) = small_net(&acts, &sizes, 5);
    let mapping = map_layered(&sizes, &chip).unwrap();
    assert!(mapping.layers.iter().all(|lp| lp.copies == 1));
    let cn = on_chip(
        &net,
        float_dp(&chip, &net, 0.1),
        &mapping,
        &chip,
        FiringMode::Graded,
        Loss::CrossEntropy,
    );
    let held = cn.export();
    let fits = cn.crossbar();
    assert_eq!(fits.len(), 2);
    for (l, f) in fits.iter().enumerate() {
        let (w, w0) = (&held.layers[l], &net.layers[l]);
        assert_eq!(f.synapses, (w.n_in * w.n_out) as u64);
        let connected = w.w.iter().filter(|&&v| v != 0.0).count() as u64;
        assert_eq!(f.connected, connected, "layer {l}");
        assert!(
            connected < f.synapses,
            "layer {l}: a lossless fit proves nothing"
        );
        let err2: f64 = w.w.iter().zip(&w0.w).map(|(a, b)| (a - b).powi(2)).sum();
        assert!(
            (err2 - f.err2).abs() < 1e-9,
            "layer {l}: {err2} vs {}",
            f.err2
        );
        assert!(f.relative_error() > 0.0 && f.relative_error() < 1.0);
        // Neurons of one chunk share their axons' types: at most 2 levels per neuron.
        for i in 0..w.n_out {
            let mut levels: Vec<f64> = w.w[i * w.n_in..(i + 1) * w.n_in]
                .iter()
                .copied()
                .filter(|&v| v != 0.0)
                .collect();
            levels.sort_by(f64::total_cmp);
            levels.dedup();
            assert!(levels.len() <= 2, "layer {l} neuron {i}: {levels:?}");
        }
    }
    // Rows walk connected synapses only: every SOP of a graded sample is one.
    let mut cn = cn;
    let mut t = Tally::default();
    cn.fire(&x, 0, &mut t);
    let active: Vec<usize> = (0..9).filter(|&j| x[j] != 0.0).collect();
    let hidden = cn.state().r[1].clone();
    let want: usize = active
        .iter()
        .map(|&j| {
            (0..8)
                .filter(|&i| held.layers[0].w[i * 9 + j] != 0.0)
                .count()
        })
        .sum::<usize>()
        + (0..8)
            .filter(|&j| hidden[j] != 0.0)
            .map(|j| {
                (0..3)
                    .filter(|&i| held.layers[1].w[i * 8 + j] != 0.0)
                    .count()
            })
            .sum::<usize>();
    assert_eq!(t.ledger.get(Action::Sop), want as u64);
    // No learning on a crossbar.
    let split = accord::data::load("iris", &accord::data::default_data_dir(), 0).unwrap();
    let mut cfg = tiny_config(1, FiringMode::Graded, Arith::Fixed);
    cfg.chip = chip.clone();
    let e = emulator::run(&cfg, &split, None).unwrap_err().to_string();
    assert!(
        e.starts_with("epochs 2: ") && e.contains("crossbar") && e.contains("with 0 epochs"),
        "{e}"
    );
    cfg.epochs = 0;
    let r = emulator::run(&cfg, &split, None).unwrap();
    assert_eq!(
        r.notes.iter().filter(|n| n.starts_with("CROSSBAR")).count(),
        2
    );
    for bad in ["0", "17"] {
        let e = chip::open_with("balance-core", &[("core.axon_types".into(), bad.into())])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("core.axon_types") && e.contains("1 to 16"),
            "{e}"
        );
    }
}

/// Where a crossbar chip's cores have room for each input twice, the mapping duplicates the
/// inputs (two axons per input, each of its own type): the fit counts both copies' slots, its
/// error is that of the copies' sums — the weights the chip computes with — and it is never
/// worse than one axon per input on the same net. Without a crossbar no input is duplicated.
#[test]
fn a_crossbar_with_room_takes_each_input_twice() {
    let acts = vec![Activation::HardSigmoid, Activation::Identity];
    let sizes = vec![9, 8, 3];
    let (net, _) = small_net(&acts, &sizes, 5);
    let fits = |axons: usize| {
        let chip = crossbar_chip(axons);
        let mapping = map_layered(&sizes, &chip).unwrap();
        let cn = on_chip(
            &net,
            float_dp(&chip, &net, 0.1),
            &mapping,
            &chip,
            FiringMode::Graded,
            Loss::CrossEntropy,
        );
        (mapping, cn.crossbar().to_vec(), cn.export())
    };
    let (_, single, _) = fits(12);
    let (mapping, pair, held) = fits(18);
    let copies: Vec<usize> = mapping.layers.iter().map(|lp| lp.copies).collect();
    assert_eq!(copies, [1, 2, 2]);
    // The layer-2 core takes 2 × 8 axons; each hidden neuron sends one packet per axon.
    assert!(mapping.describe().contains("duplicated inputs: layer 2"));
    let out = mapping.cores.iter().find(|c| c.layer == 2).unwrap();
    assert_eq!((out.input_axons, out.synapses), (16, 16 * 3));
    assert_eq!(mapping.total_routes, 9 * 2 * 2 + 8 * 2);
    for (l, (p, s)) in pair.iter().zip(&single).enumerate() {
        let (w, w0) = (&held.layers[l], &net.layers[l]);
        assert_eq!(p.copies, 2);
        assert_eq!(p.synapses, 2 * (w.n_in * w.n_out) as u64);
        let err2: f64 = w.w.iter().zip(&w0.w).map(|(a, b)| (a - b).powi(2)).sum();
        assert!(
            (err2 - p.err2).abs() < 1e-9,
            "layer {l}: {err2} vs {}",
            p.err2
        );
        assert!(
            p.err2 <= s.err2 + 1e-12,
            "layer {l}: {} > {}",
            p.err2,
            s.err2
        );
    }
    let m = map_layered(&sizes, &chip::open("balance-core").unwrap()).unwrap();
    assert!(m.layers.iter().all(|lp| lp.copies == 1));
}

/// Training energy by phase: each phase holds at least the energy of the actions only it
/// performs (forward synaptic ops and spike packets in firing; table reads, retrograde walks,
/// credit accumulates and retrograde packets in credit; weight updates in plasticity), and the
/// static energy and time of the firing and learning timesteps add up to the whole.
#[test]
fn training_energy_splits_by_phase() {
    let split = accord::data::load("iris", &accord::data::default_data_dir(), 0).unwrap();
    for (chip, mode) in [
        ("balance-core", FiringMode::Graded),
        (
            "loihi",
            FiringMode::Spiking {
                ticks: 8,
                encoding: emulator::Encoding::Regular,
            },
        ),
    ] {
        let mut cfg = tiny_config(1, mode, Arith::Fixed);
        cfg.chip = chip::open(chip).unwrap();
        let r = emulator::run(&cfg, &split, None).unwrap();
        let tr = &r.energy.training;
        let p = &tr.by_phase;
        let n = tr.samples as f64;
        // Each action's energy as the report charges it (priced, or by its declared emulation).
        let own = |actions: &[Action]| -> f64 {
            tr.breakdown
                .actions
                .iter()
                .filter(|row| actions.iter().any(|a| a.name() == row.action))
                .map(|row| row.pj_total)
                .sum::<f64>()
                / n
        };
        let tol = 1e-9 * tr.dynamic_pj_per_sample;
        let firing = own(&[Action::Sop, Action::SpikePacket]);
        let credit = own(&[
            Action::LutRead,
            Action::RetroSop,
            Action::CreditAccumulate,
            Action::RetroPacket,
        ]);
        let plasticity = own(&[Action::WeightUpdate]);
        assert!(firing > 0.0 && credit > 0.0 && plasticity > 0.0, "{chip}");
        assert!(
            p.firing_dynamic_pj >= firing - tol,
            "{chip}: {p:?} vs {firing}"
        );
        assert!(
            p.credit_dynamic_pj >= credit - tol,
            "{chip}: {p:?} vs {credit}"
        );
        assert!(
            p.plasticity_dynamic_pj >= plasticity - tol,
            "{chip}: {p:?} vs {plasticity}"
        );
        assert!(p.firing_ns > 0.0 && p.learning_ns > 0.0, "{chip}: {p:?}");
        assert!(
            (p.firing_ns + p.learning_ns - tr.time_ns_per_sample).abs()
                <= 1e-9 * tr.time_ns_per_sample,
            "{chip}: {p:?}"
        );
        let stat = p.firing_static_pj.unwrap() + p.learning_static_pj.unwrap();
        assert!((stat - tr.static_pj_per_sample.unwrap()).abs() <= 1e-9 * stat);
    }
}
