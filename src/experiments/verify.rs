//! The equivalence check behind `accord verify`: on random layered networks, the balance rule's
//! credits and updates against the backprop oracle.
//!
//! Deviations are relative (`‖a − b‖₂ / ‖b‖₂`), except that a retrograde credit
//! `c_j = Σ_i w_ij δ_i` is measured against the magnitude of the terms it sums,
//! `‖Σ_i |w_ij| |δ_i|‖₂`: where those terms cancel to nearly zero, the two summation orders
//! (rule and oracle) differ by rounding in the terms, and no `f64` sum could hold the tiny
//! result to 1e-12 of itself. (Seen: one of 65,536 random nets, a 1-input credit summing 59
//! terms, deviated by 2.4e-12 of itself while its weights' updates agreed to 5e-16.)

use crate::backprop::Mlp;
use crate::rule::{Activation, LayeredNet, Loss, Steps};
use rand::RngExt;
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use serde::Serialize;

/// The tolerance of the claim: relative deviation in `f64`.
pub const TOLERANCE: f64 = 1e-12;

/// Norm-based relative deviation `‖a − b‖₂ / ‖b‖₂`, robust near zero: 0 when both are zero,
/// and measured against `‖a‖₂` when only `b` is zero.
pub fn rel_dev(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let diff = norm_diff(a, b);
    let scale = norm(b);
    let scale = if scale > 0.0 { scale } else { norm(a) };
    if diff == 0.0 { 0.0 } else { diff / scale }
}

/// `‖a‖₂`.
fn norm(a: &[f64]) -> f64 {
    a.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// `‖a − b‖₂`.
fn norm_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt()
}

/// `rel_dev(a, b)` with `‖b‖₂` raised to `terms` when larger: the deviation of a sum relative
/// to the magnitude of the terms it adds (see the module docs).
pub fn rel_dev_of_sum(a: &[f64], b: &[f64], terms: f64) -> f64 {
    if terms <= norm(b) {
        return rel_dev(a, b);
    }
    norm_diff(a, b) / terms
}

/// `‖Σ_i |w_ij| |δ_i|‖₂` over the presynaptic neurons `j` of neuron layer `l` (0 for the
/// output layer, whose credit is clamped, not summed).
fn credit_terms(net: &LayeredNet, delta: &[Vec<f64>], l: usize) -> f64 {
    let (Some(layer), Some(d)) = (net.layers.get(l), delta.get(l)) else {
        return 0.0;
    };
    (0..layer.n_in)
        .map(|j| {
            let t: f64 = (0..layer.n_out)
                .map(|i| (layer.w[i * layer.n_in + j] * d[i]).abs())
                .sum();
            t * t
        })
        .sum::<f64>()
        .sqrt()
}

/// Deviations of one network and sample.
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct Deviation {
    /// Credits vs `−∂L/∂r`, worst layer.
    pub credit: f64,
    /// Weight updates vs `−η ∂L/∂W`, worst layer.
    pub weight: f64,
    /// Bias updates vs `−η ∂L/∂b`, worst layer.
    pub bias: f64,
}

impl Deviation {
    /// The largest of the three.
    pub fn max(&self) -> f64 {
        self.credit.max(self.weight).max(self.bias)
    }
}

/// Compare the rule with the oracle on one network and sample, with `steps` retrograde steps.
pub fn compare(
    net: &LayeredNet,
    x: &[f64],
    label: usize,
    loss: Loss,
    lr: f64,
    steps: Steps,
) -> Deviation {
    let mut s = net.new_state();
    net.fire(x, &mut s);
    net.credit(&mut s, label, loss, steps, true);
    let up = net.updates(&s, lr);
    let g = Mlp::from_layered(net).gradients(x, label, loss);
    let mut d = Deviation {
        credit: 0.0,
        weight: 0.0,
        bias: 0.0,
    };
    for (l, (c, da)) in s.c.iter().zip(&g.da).enumerate() {
        let neg: Vec<f64> = da.iter().map(|v| -v).collect();
        let terms = credit_terms(net, &s.delta, l);
        d.credit = d.credit.max(rel_dev_of_sum(c, &neg, terms));
    }
    for l in 0..net.depth() {
        let dw: Vec<f64> = g.dw[l].data.iter().map(|v| -lr * v).collect();
        let db: Vec<f64> = g.db[l].iter().map(|v| -lr * v).collect();
        d.weight = d.weight.max(rel_dev(&up.w[l], &dw));
        d.bias = d.bias.max(rel_dev(&up.b[l], &db));
    }
    d
}

/// A random network and sample for the check: `depth` synaptic layers, widths in `1..=64`, a
/// random activation per layer, input in `[-1, 1]`, random label.
pub fn random_case(
    rng: &mut Xoshiro256PlusPlus,
    depth: usize,
) -> (LayeredNet, Vec<f64>, usize, Loss) {
    let sizes: Vec<usize> = (0..=depth).map(|_| rng.random_range(1..=64)).collect();
    let acts: Vec<Activation> = (0..depth)
        .map(|_| Activation::ALL[rng.random_range(0..Activation::ALL.len())])
        .collect();
    let mut net = LayeredNet::glorot(&sizes, &acts, rng.random());
    for layer in &mut net.layers {
        for b in &mut layer.b {
            *b = rng.random::<f64>() - 0.5;
        }
    }
    let x: Vec<f64> = (0..sizes[0])
        .map(|_| 2.0 * rng.random::<f64>() - 1.0)
        .collect();
    let label = rng.random_range(0..sizes[depth]);
    let loss = if rng.random::<bool>() {
        Loss::Mse
    } else {
        Loss::CrossEntropy
    };
    (net, x, label, loss)
}

/// Result of `accord verify`.
#[derive(Clone, Debug, Serialize)]
pub struct VerifyReport {
    /// Networks checked.
    pub nets: usize,
    /// Seed.
    pub seed: u64,
    /// `(depth, networks, max relative deviation)` per depth 2–6.
    pub per_depth: Vec<(usize, usize, f64)>,
    /// Largest deviation overall.
    pub max_rel_dev: f64,
    /// Whether every deviation is within [`TOLERANCE`].
    pub pass: bool,
}

/// The table `accord verify` prints: the largest deviation per depth and the verdict.
impl std::fmt::Display for VerifyReport {
    fn fmt(&self, o: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            o,
            "accord verify: {} random layered nets (depth 2-6, widths 1-64, every activation, mse and ce), seed {}",
            self.nets, self.seed
        )?;
        writeln!(o, "{:>5}  {:>5}  {:>14}", "depth", "nets", "max rel dev")?;
        for (d, n, dev) in &self.per_depth {
            writeln!(o, "{d:>5}  {n:>5}  {dev:>14.3e}")?;
        }
        writeln!(
            o,
            "overall max relative deviation {:.3e} (tolerance {:.0e}): {}",
            self.max_rel_dev,
            TOLERANCE,
            if self.pass { "PASS" } else { "FAIL" }
        )
    }
}

/// Check `nets` random networks (depths 2–6 in turn) from `seed`.
pub fn verify(nets: usize, seed: u64) -> VerifyReport {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut per_depth: Vec<(usize, usize, f64)> = (2..=6).map(|d| (d, 0, 0.0)).collect();
    for k in 0..nets {
        let depth = 2 + k % 5;
        let (net, x, label, loss) = random_case(&mut rng, depth);
        // `depth` steps: every credit, the clamped input layer's included.
        let dev = compare(&net, &x, label, loss, 0.1, Steps::Exactly(depth)).max();
        let e = &mut per_depth[depth - 2];
        e.1 += 1;
        e.2 = e.2.max(dev);
    }
    let max_rel_dev = per_depth.iter().map(|e| e.2).fold(0.0, f64::max);
    VerifyReport {
        nets,
        seed,
        per_depth,
        max_rel_dev,
        pass: max_rel_dev <= TOLERANCE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sum_is_measured_against_its_terms_and_a_wrong_one_is_still_caught() {
        // Terms of magnitude 1 that cancel to 1e-15: a rounding of 1e-27 in them is 1e-12 of
        // the result but 1e-27 of the terms.
        let (a, b) = ([1e-15 + 1e-27], [1e-15]);
        assert!(rel_dev(&a, &b) > 1e-13);
        assert!(rel_dev_of_sum(&a, &b, 1.0) < 1e-26);
        // Terms no larger than the result: the plain relative deviation.
        assert_eq!(
            rel_dev_of_sum(&[2.0, 1.0], &[2.0, 2.0], 0.5),
            rel_dev(&[2.0, 1.0], &[2.0, 2.0])
        );
        // A credit that is wrong, not rounded, stays far over the tolerance.
        assert!(rel_dev_of_sum(&[0.5], &[1.0], 2.0) > 0.2);
        assert_eq!(rel_dev_of_sum(&[0.0], &[0.0], 0.0), 0.0);
    }
}
