//! Training on the bundled data: the rule learns, is deterministic, and matches the backprop
//! oracle weight for weight over a whole epoch.

use accord::data;
use accord::rule::{Activation, Loss};
use accord::train::{RuleKind, TrainConfig, train};

fn digits() -> data::Split {
    data::load("digits", &data::default_data_dir(), 0).expect("bundled digits")
}

fn config(rule: RuleKind, epochs: usize) -> TrainConfig {
    TrainConfig {
        data: "digits".into(),
        hidden: vec![32],
        activation: Activation::Sigmoid,
        loss: Loss::CrossEntropy,
        lr: 0.05,
        epochs,
        batch: 1,
        seed: 1,
        rule,
        steps: None,
    }
}

fn max_rel(a: &accord::rule::LayeredNet, b: &accord::rule::LayeredNet) -> f64 {
    let mut worst = 0.0f64;
    for (la, lb) in a.layers.iter().zip(&b.layers) {
        let d: f64 =
            la.w.iter()
                .zip(&lb.w)
                .map(|(x, y)| (x - y).powi(2))
                .sum::<f64>()
                .sqrt();
        let s: f64 = lb.w.iter().map(|y| y * y).sum::<f64>().sqrt();
        worst = worst.max(d / s);
    }
    worst
}

/// `--rule balance` and `--rule backprop` with the same seed end an epoch with weights equal to
/// 1e-9 relative (the bar), also with mini-batches.
#[test]
fn balance_and_backprop_agree_after_an_epoch() {
    let split = digits();
    for batch in [1, 16] {
        let mut a = config(RuleKind::Balance, 1);
        a.batch = batch;
        let mut b = config(RuleKind::Backprop, 1);
        b.batch = batch;
        let (ra, na) = train(&a, &split, None);
        let (rb, nb) = train(&b, &split, None);
        let dev = max_rel(&na, &nb);
        assert!(
            dev <= 1e-9,
            "batch {batch}: relative weight deviation {dev}"
        );
        assert!((ra.test_accuracy - rb.test_accuracy).abs() < 1e-12);
    }
}

/// Digits, 64-32-10, sigmoid + CE: the bar of ≥ 96 % test accuracy with the default
/// configuration of `accord train` (30 epochs, η = 0.05).
#[test]
fn digits_reaches_the_bar_and_is_deterministic() {
    let split = digits();
    let cfg = config(RuleKind::Balance, 30);
    let (r1, n1) = train(&cfg, &split, None);
    assert!(
        r1.test_accuracy >= 0.96,
        "test accuracy {}",
        r1.test_accuracy
    );
    assert_eq!(r1.epochs.len(), 30);
    let (r2, n2) = train(&cfg, &split, None);
    assert_eq!(r1.test_accuracy, r2.test_accuracy);
    for (a, b) in n1.layers.iter().zip(&n2.layers) {
        assert!(
            a.w.iter()
                .zip(&b.w)
                .all(|(x, y)| x.to_bits() == y.to_bits())
        );
    }
    // Learning happened: the loss fell from the first epoch to the last.
    assert!(r1.epochs[29].train_loss < r1.epochs[0].train_loss);
}

/// The reference trains only the synapses a mask keeps (`TrainHooks::masks`, a NIR model's
/// sparse layers): an absent synapse is a zero weight after every update, by the rule and by
/// backprop, per sample and in mini-batches; the two rules still agree weight for weight; a
/// mask of the wrong size is refused.
#[test]
fn masked_synapses_stay_absent_and_the_rules_still_agree() {
    use accord::train::{TrainError, TrainHooks, train_hooked};
    use bitvec::prelude::*;
    let split = digits();
    let sizes = config(RuleKind::Balance, 1).sizes(split.train.dim, split.train.n_classes);
    // Every third synapse of the first layer absent; the read-out dense.
    let mask: BitVec = (0..sizes[0] * sizes[1]).map(|k| k % 3 != 0).collect();
    let masks = vec![Some(mask.clone()), None];
    for batch in [1, 4] {
        let mut nets = Vec::new();
        for rule in [RuleKind::Balance, RuleKind::Backprop] {
            let mut cfg = config(rule, 1);
            cfg.batch = batch;
            let hooks = TrainHooks {
                masks: &masks,
                ..TrainHooks::default()
            };
            let (report, net) = train_hooked(&cfg, &split, hooks).unwrap();
            assert!(report.test_accuracy > 0.5, "{rule:?}, batch {batch}");
            for (k, exists) in mask.iter().by_vals().enumerate() {
                assert!(exists || net.layers[0].w[k] == 0.0, "synapse {k}");
            }
            assert!(net.layers[0].w.iter().any(|&w| w != 0.0));
            nets.push(net);
        }
        let rel = max_rel(&nets[0], &nets[1]);
        assert!(
            rel < 1e-9,
            "batch {batch}: balance and backprop differ by {rel:e}"
        );
    }
    let short = vec![Some(bitvec![1; 10])];
    let hooks = TrainHooks {
        masks: &short,
        ..TrainHooks::default()
    };
    match train_hooked(&config(RuleKind::Balance, 1), &split, hooks) {
        Err(TrainError::Shape(m)) => assert!(m.contains("mask 0 has 10 entries"), "{m}"),
        other => panic!("a short mask: {:?}", other.map(|(r, _)| r.test_accuracy)),
    }
}
