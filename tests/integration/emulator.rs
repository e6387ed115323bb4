//! The emulator against the `f64` reference: the float twin is the rule to round-off, wide fixed
//! point is within its quantisation bound, the ledger matches closed forms, energy is
//! Σ count × price, and a seed gives the same report at any thread count.

use accord::chip::{self, Action, ChipModel};
use accord::emulator::{
    self, Arith, ChipNet, EmuConfig, FiringMode, FixedPath, FloatPath, Tally, finalize_ledger,
};
use accord::ledger::{VarCounters, energy::price};
use accord::mapping::map_layered;
use accord::rule::{Activation, Balance, LayeredNet, Loss, Steps};

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

/// `net` placed by `mapping` on `chip`, graded firing, one thread.
fn graded<D: accord::emulator::Datapath + Clone>(
    net: &LayeredNet,
    dp: D,
    mapping: &accord::mapping::Mapping,
    chip: &ChipModel,
    loss: Loss,
    seed: u64,
    vars: &mut VarCounters,
) -> ChipNet<D> {
    ChipNet::new(
        dp,
        net,
        mapping,
        chip,
        FiringMode::Graded,
        loss,
        1,
        seed,
        vars,
    )
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
        let dp = FloatPath::new(acts.clone(), vec![Balance::Exact; acts.len()], lr, 0.0);
        let mut vars = VarCounters::default();
        let mut cn = graded(&net, dp, &mapping, &chip, loss, 7, &mut vars);
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
        let got = cn.export(&net);
        for l in 0..m {
            let dw_chip = weight_change(&got, &net, l);
            let dw_ref = weight_change(&after, &net, l);
            assert!(
                rel(&dw_chip, &dw_ref) <= 1e-12,
                "update layer {l}: {}",
                rel(&dw_chip, &dw_ref)
            );
        }
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
    let dp = FixedPath::new(
        &chip,
        &acts,
        &[Balance::Exact, Balance::Exact],
        lr,
        0.0,
        5,
        &mut vars,
    )
    .expect("datapath");
    let mut cn = graded(&net, dp, &mapping, &chip, loss, 5, &mut vars);
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
    let got = cn.export(&net);
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
    let mut vars = VarCounters::default();
    let dp = FixedPath::new(
        &chip16,
        &acts,
        &[Balance::Exact, Balance::Exact],
        lr,
        0.0,
        5,
        &mut vars,
    )
    .expect("datapath");
    let mut cn16 = graded(
        &net,
        dp,
        &map_layered(&sizes, &chip16).unwrap(),
        &chip16,
        loss,
        5,
        &mut vars,
    );
    cn16.sample(&x, 3, true, 0, &mut Tally::default());
    let (c16, _, _) = cn16.probe();
    assert!(rel(&c16[1], &s.c[1]) > bound);
}

/// Ledger counts equal closed forms on a small net, computed from the reference state:
///
/// * fire: `spike_packet = trace_update = Σ_l nnz(r_l) · cores(l+1)`,
///   `sop = Σ_l nnz(r_l) · n_(l+1)`, `neuron_update_active = Σ_l n_(l+1)` (every layer had input);
/// * credit: `lut_read = Σ_k nnz(c_k)`, `retro_sop = Σ_(k≥2) Σ_cores nnz(δ_k on core) · n_(k−1)`,
///   `retro_packet = Σ (axon, core) pairs with a non-zero message`,
///   `credit_accumulate = n_out + retro_packet`;
/// * plasticity: `weight_update = Σ_l nnz(δ_(l+1)) · (nnz(r_l) + 1)` (the +1 is the bias);
/// * `barrier = m (fire) + m (credit) + 1 (plasticity)`;
/// * hops: `Σ_l Σ_(j active) Σ_(dest cores) hops(core(j), dest)` forward, plus the retro hops.
#[test]
fn ledger_matches_closed_forms() {
    // Tiny cores so that layers spread over several cores and routes have hops.
    let chip = chip::open_with(
        "balance-core",
        &[
            ("formats.weight.rounding".into(), "nearest-even".into()),
            ("core.neurons".into(), "3".into()),
        ],
    )
    .unwrap();
    let acts = vec![Activation::Relu, Activation::Identity];
    let sizes = vec![7, 5, 4];
    let (net, x) = small_net(&acts, &sizes, 2);
    let mapping = map_layered(&sizes, &chip).expect("fits");
    let dp = FloatPath::new(acts.clone(), vec![Balance::Exact; 2], 0.1, 0.0);
    let mut vars = VarCounters::default();
    let mut cn = graded(&net, dp, &mapping, &chip, Loss::CrossEntropy, 1, &mut vars);
    let mut t = Tally::default();
    cn.sample(&x, 2, true, 0, &mut t);
    let (s, _) = reference_step(&net, &x, 2, Loss::CrossEntropy, 0.1);
    let nnz = |v: &[f64]| v.iter().filter(|&&a| a != 0.0).count() as u64;
    let cores = |l: usize| mapping.layers[l].chunks.len() as u64;
    let n = |l: usize| sizes[l] as u64;
    let l = &t.ledger;
    let pk = nnz(&s.r[0]) * cores(1) + nnz(&s.r[1]) * cores(2);
    assert_eq!(l.get(Action::SpikePacket), pk);
    assert_eq!(l.get(Action::TraceUpdate), pk);
    assert_eq!(
        l.get(Action::Sop),
        nnz(&s.r[0]) * n(1) + nnz(&s.r[1]) * n(2)
    );
    assert_eq!(l.get(Action::NeuronUpdateActive), n(1) + n(2));
    assert_eq!(l.get(Action::NeuronUpdateIdle), 0);
    assert_eq!(l.get(Action::LutRead), nnz(&s.c[1]) + nnz(&s.c[2]));
    let mut rsop = 0;
    let mut packets = 0;
    let mut retro_hops = 0u64;
    for ch in &mapping.layers[2].chunks {
        let d: Vec<f64> = s.delta[1][ch.start..ch.start + ch.len].to_vec();
        rsop += nnz(&d) * n(1);
        for j in 0..sizes[1] {
            let m: f64 = (0..ch.len)
                .map(|i| net.layers[1].w[(ch.start + i) * sizes[1] + j] * d[i])
                .sum();
            if m != 0.0 {
                packets += 1;
                retro_hops += mapping.hops(ch.core, mapping.core_of(1, j)) as u64;
            }
        }
    }
    assert_eq!(l.get(Action::RetroSop), rsop);
    assert_eq!(l.get(Action::RetroPacket), packets);
    assert_eq!(l.get(Action::CreditAccumulate), n(2) + packets);
    assert_eq!(
        l.get(Action::WeightUpdate),
        nnz(&s.delta[0]) * (nnz(&s.r[0]) + 1) + nnz(&s.delta[1]) * (nnz(&s.r[1]) + 1)
    );
    assert_eq!(l.get(Action::Barrier), 2 + 2 + 1);
    let mut fwd_hops = 0u64;
    for (layer, rates) in s.r.iter().take(2).enumerate() {
        for (j, &rj) in rates.iter().enumerate() {
            if rj != 0.0 {
                for d in &mapping.layers[layer + 1].chunks {
                    fwd_hops += mapping.hops(mapping.core_of(layer, j), d.core) as u64;
                }
            }
        }
    }
    assert!(fwd_hops > 0, "the test should exercise routing");
    assert_eq!(l.get(Action::Hop), fwd_hops + retro_hops);
    // Memory bits follow from the counts at the stored widths.
    let fin = finalize_ledger(&t, &chip.formats);
    let wb = chip.formats.weight.bits as u64;
    assert_eq!(
        fin.get(Action::SynapseMemReadBit),
        (l.get(Action::Sop) + l.get(Action::RetroSop) + l.get(Action::WeightUpdate)) * wb
    );
    assert_eq!(
        fin.get(Action::SynapseMemWriteBit),
        l.get(Action::WeightUpdate) * wb
    );
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
        // Emulated actions cost the sum of their via actions.
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
        rule: emulator::ChipRule::Balance,
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
/// itself aside), in graded fixed point with stochastic rounding and in spiking mode with
/// Poisson inputs.
#[test]
fn same_report_at_any_thread_count() {
    let split = accord::data::load("iris", &accord::data::default_data_dir(), 0).unwrap();
    for (mode, arith) in [
        (FiringMode::Graded, Arith::Fixed),
        (
            FiringMode::Spiking {
                ticks: 8,
                encoding: emulator::Encoding::Poisson,
            },
            Arith::Fixed,
        ),
        (FiringMode::Graded, Arith::Float),
    ] {
        let mut reports = Vec::new();
        for threads in [1, 2, 4] {
            let cfg = tiny_config(threads, mode, arith);
            let r = emulator::run_with(&cfg, &split, None, 0).expect("runs");
            reports.push(without_wall_time(serde_json::to_value(&r).unwrap()));
        }
        assert_eq!(reports[0], reports[1], "{mode:?} 1 vs 2 threads");
        assert_eq!(reports[0], reports[2], "{mode:?} 1 vs 4 threads");
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
}

/// The comparison rules on the same chip: backprop computes the same update as the balance rule
/// but pays for a transposed copy (a second write per weight update, δ shipped to every
/// presynaptic core); feedback alignment ships δ the same way but through a fixed random
/// matrix, so only the top layer's update agrees with the balance rule.
#[test]
fn comparison_rules_cost_and_compute_as_documented() {
    use accord::emulator::ChipRule;
    // Two cores per hidden layer so that credit crosses several cores.
    let chip = chip::open_with("balance-core", &[("core.neurons".into(), "4".into())]).unwrap();
    let acts = vec![Activation::Tanh, Activation::Sigmoid, Activation::Identity];
    let sizes = vec![6, 7, 5, 3];
    let (net, x) = small_net(&acts, &sizes, 8);
    let mapping = map_layered(&sizes, &chip).expect("fits");
    let run =
        |rule: ChipRule| {
            let dp = FloatPath::new(acts.clone(), vec![Balance::Exact; 3], 0.2, 0.0);
            let mut vars = VarCounters::default();
            let feedback = LayeredNet::glorot(&sizes, &acts, 99);
            let mut cn = graded(&net, dp, &mapping, &chip, Loss::CrossEntropy, 1, &mut vars)
                .with_rule(rule, Some(&feedback), &mut vars);
            let mut t = Tally::default();
            cn.sample(&x, 1, true, 0, &mut t);
            let (_, d, _) = cn.probe();
            (cn.export(&net), t, d)
        };
    let (w_bal, t_bal, d_bal) = run(ChipRule::Balance);
    let (w_bp, t_bp, _) = run(ChipRule::Backprop);
    let (w_fa, t_fa, _) = run(ChipRule::FeedbackAlignment);
    // Same numbers for backprop (to round-off: the sums associate differently across cores).
    for l in 0..3 {
        assert!(
            rel(&w_bp.layers[l].w, &w_bal.layers[l].w) <= 1e-12,
            "layer {l}"
        );
    }
    // Feedback alignment: the top layer agrees, the first layer does not.
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
    // Costs. Backprop writes every weight twice (biases once).
    let (s, _) = reference_step(&net, &x, 1, Loss::CrossEntropy, 0.2);
    let nnz = |v: &[f64]| v.iter().filter(|&&a| a != 0.0).count() as u64;
    let mirror: u64 = (0..3).map(|l| nnz(&s.delta[l]) * nnz(&s.r[l])).sum();
    assert_eq!(
        t_bp.ledger.get(Action::WeightUpdate),
        t_bal.ledger.get(Action::WeightUpdate) + mirror
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
    // The same retrograde multiply-accumulates in all three.
    assert_eq!(
        t_bp.ledger.get(Action::RetroSop),
        t_bal.ledger.get(Action::RetroSop)
    );
}

/// All-to-all nets on the chip: the float twin's settled firing, credits and updates equal the
/// f64 reference's relaxations (both run to a tight tolerance), and every synapse the update
/// touches exists.
#[test]
fn all_to_all_float_twin_equals_reference() {
    use accord::emulator::general::GeneralChipNet;
    use accord::rule::{CreditOptions, GeneralNet, RelaxOptions};
    let chip = chip::open_with("balance-core", &[("core.neurons".into(), "7".into())]).unwrap();
    let mut net =
        GeneralNet::all_to_all(20, 4, 3, Activation::Sigmoid, Activation::Sigmoid, 1.0, 3);
    net.b
        .iter_mut()
        .enumerate()
        .for_each(|(i, b)| *b = 0.02 * i as f64 - 0.2);
    let x = [0.9, 0.0, 0.4, 0.7];
    let (label, lr) = (2, 0.5);
    let acts = vec![Activation::Sigmoid, Activation::Sigmoid];
    let dp = FloatPath::new(acts, vec![Balance::Exact; 2], lr, 0.0);
    let mut vars = VarCounters::default();
    let mut cn = GeneralChipNet::new(dp, &net, &chip, Loss::Mse, &mut vars).unwrap();
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
