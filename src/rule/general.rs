//! The rule on general (recurrent, all-to-all) networks: firing and credit both relax to
//! equilibrium, and both report whether they got there.

// Loops index neurons by id across several arrays (w, r, u, g, mask); iterator chains would hide
// which neuron is meant.
#![allow(clippy::needless_range_loop)]

use super::activation::{Activation, Balance};
use super::layered::{axpy, dot};
use super::loss::Loss;
use rand::RngExt;
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;

/// A general network over `n` neurons with a dense weight matrix. Neurons `0..n_in` are the
/// inputs (clamped to the data), neurons `n − n_out..n` the outputs; the rest are hidden. A
/// synapse `j → i` exists where `mask[i * n + j]` is true; plasticity never creates one.
#[derive(Clone, Debug)]
pub struct GeneralNet {
    /// Number of neurons.
    pub n: usize,
    /// Input neurons `0..n_in`.
    pub n_in: usize,
    /// Output neurons `n − n_out..n`.
    pub n_out: usize,
    /// Weights, row-major `n × n`: `w[i * n + j] = w_ij` (from `j` to `i`).
    pub w: Vec<f64>,
    /// Which synapses exist.
    pub mask: Vec<bool>,
    /// Biases.
    pub b: Vec<f64>,
    /// Activation of hidden neurons.
    pub hidden_act: Activation,
    /// Activation of output neurons.
    pub output_act: Activation,
    /// Balance function of every non-input neuron.
    pub balance: Balance,
}

/// Options of the firing relaxation `r ← (1 − α) r + α f(W r + b)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RelaxOptions {
    /// Stop when `max |Δr| < tol`.
    pub tol: f64,
    /// Iteration cap.
    pub max_iter: usize,
    /// Damping `α` in `(0, 1]`; 1 is plain fixed-point iteration.
    pub damping: f64,
}

impl Default for RelaxOptions {
    fn default() -> Self {
        RelaxOptions {
            tol: 1e-10,
            max_iter: 500,
            damping: 1.0,
        }
    }
}

/// How a relaxation (firing or credit) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Settle {
    /// Reached the tolerance.
    Converged,
    /// Hit the iteration cap with finite values.
    IterationCap,
    /// Values left the representable range (non-finite or beyond the divergence bound); the
    /// state was restored to the last finite iterate.
    Diverged,
    /// No clamp: the credit norm fell below the vanishing bound.
    Vanished,
}

impl std::fmt::Display for Settle {
    /// One word: `converged`, `cap`, `diverged`, `vanished`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            Settle::Converged => "converged",
            Settle::IterationCap => "cap",
            Settle::Diverged => "diverged",
            Settle::Vanished => "vanished",
        })
    }
}

/// Result of the firing relaxation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Relaxation {
    /// How it ended.
    pub settle: Settle,
    /// Iterations taken.
    pub iterations: usize,
    /// `max |Δr|` of the last iteration.
    pub residual: f64,
}

/// Options of the credit iteration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CreditOptions {
    /// Stop when `max |Δc| < tol`.
    pub tol: f64,
    /// Step cap.
    pub max_steps: usize,
    /// Inject the external credit `−∂L/∂r` at the outputs on every step (the clamp). Without
    /// it, the external credit is injected once and then left to the network.
    pub clamp: bool,
    /// Without clamp: the credit is said to have vanished when `‖c‖ < vanish · ‖c₀‖`.
    pub vanish: f64,
    /// The credit is said to have diverged when `‖c‖ > diverge · ‖c₀‖` or is not finite.
    pub diverge: f64,
}

impl Default for CreditOptions {
    fn default() -> Self {
        CreditOptions {
            tol: 1e-10,
            max_steps: 500,
            clamp: true,
            vanish: 1e-12,
            diverge: 1e12,
        }
    }
}

/// Result of the credit iteration.
#[derive(Clone, Debug, PartialEq)]
pub struct CreditOutcome {
    /// How it ended.
    pub settle: Settle,
    /// Steps taken.
    pub steps: usize,
    /// `‖c‖₂` after each step, `norms[0]` the injected credit.
    pub norms: Vec<f64>,
    /// Geometric-mean growth factor of `‖c‖` per step over the second half of the run (< 1
    /// shrinking, > 1 growing); `None` with fewer than two steps or a zero norm.
    pub growth_rate: Option<f64>,
    /// Step at which the credit left the range `[vanish, diverge] · ‖c₀‖`, if it did.
    pub left_range_at: Option<usize>,
}

/// Rates, balances, credits and messages of a general network.
#[derive(Clone, Debug, Default)]
pub struct GeneralState {
    /// Rates.
    pub r: Vec<f64>,
    /// Balances (zero for inputs).
    pub u: Vec<f64>,
    /// Credits.
    pub c: Vec<f64>,
    /// Messages `δ_i = g(u_i) c_i` (zero for inputs: a clamped neuron's rate does not depend
    /// on its balance).
    pub delta: Vec<f64>,
}

impl GeneralNet {
    /// An all-to-all network of `n` neurons (no self-connections, inputs receive no synapses)
    /// with weights uniform in `±scale / sqrt(n)` from a portable `Xoshiro256PlusPlus` seeded by
    /// `seed` (value-stable), zero biases.
    pub fn all_to_all(
        n: usize,
        n_in: usize,
        n_out: usize,
        hidden_act: Activation,
        output_act: Activation,
        scale: f64,
        seed: u64,
    ) -> Self {
        assert!(n_in + n_out <= n, "inputs and outputs must fit in n");
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let a = scale / (n as f64).sqrt();
        let mut w = vec![0.0; n * n];
        let mut mask = vec![false; n * n];
        for i in n_in..n {
            for j in 0..n {
                if i != j {
                    mask[i * n + j] = true;
                    w[i * n + j] = a * (2.0 * rng.random::<f64>() - 1.0);
                }
            }
        }
        GeneralNet {
            n,
            n_in,
            n_out,
            w,
            mask,
            b: vec![0.0; n],
            hidden_act,
            output_act,
            balance: Balance::Exact,
        }
    }

    /// Activation of neuron `i`.
    #[inline]
    pub fn act(&self, i: usize) -> Activation {
        if i >= self.n - self.n_out {
            self.output_act
        } else {
            self.hidden_act
        }
    }

    /// A zeroed state.
    pub fn new_state(&self) -> GeneralState {
        GeneralState {
            r: vec![0.0; self.n],
            u: vec![0.0; self.n],
            c: vec![0.0; self.n],
            delta: vec![0.0; self.n],
        }
    }

    /// Output rates.
    pub fn output<'a>(&self, s: &'a GeneralState) -> &'a [f64] {
        &s.r[self.n - self.n_out..]
    }

    /// Firing equilibrium with inputs clamped to `x`, starting from the state's current rates
    /// (warm start; call [`new_state`](Self::new_state) for a cold one). Never returns NaN: on
    /// divergence the last finite iterate is kept and [`Settle::Diverged`] reported.
    pub fn fire(&self, x: &[f64], s: &mut GeneralState, opt: &RelaxOptions) -> Relaxation {
        let n = self.n;
        s.r[..self.n_in].copy_from_slice(x);
        let mut next = vec![0.0; n];
        let mut residual = f64::INFINITY;
        for it in 1..=opt.max_iter {
            residual = 0.0;
            let mut finite = true;
            for i in self.n_in..n {
                let ui = dot(&self.w[i * n..(i + 1) * n], &s.r) + self.b[i];
                let target = self.act(i).f(ui);
                let ri = s.r[i] + opt.damping * (target - s.r[i]);
                finite &= ri.is_finite() && ui.is_finite();
                residual = f64::max(residual, (ri - s.r[i]).abs());
                next[i] = ri;
            }
            if !finite {
                // Keep the last finite iterate, with balances consistent with it.
                self.refresh_u(s);
                return Relaxation {
                    settle: Settle::Diverged,
                    iterations: it,
                    residual: f64::INFINITY,
                };
            }
            s.r[self.n_in..].copy_from_slice(&next[self.n_in..]);
            if residual < opt.tol {
                // Balances consistent with the final rates.
                self.refresh_u(s);
                return Relaxation {
                    settle: Settle::Converged,
                    iterations: it,
                    residual,
                };
            }
        }
        self.refresh_u(s);
        Relaxation {
            settle: Settle::IterationCap,
            iterations: opt.max_iter,
            residual,
        }
    }

    fn refresh_u(&self, s: &mut GeneralState) {
        let n = self.n;
        for i in self.n_in..n {
            s.u[i] = dot(&self.w[i * n..(i + 1) * n], &s.r) + self.b[i];
        }
    }

    /// `g(u_i)` for every neuron (zero for inputs).
    pub fn balance_values(&self, s: &GeneralState) -> Vec<f64> {
        (0..self.n)
            .map(|i| {
                if i < self.n_in {
                    0.0
                } else {
                    self.balance.g(self.act(i), s.u[i])
                }
            })
            .collect()
    }

    /// Credit phase at the firing state in `s`: `c_j ← e_j + Σ_i w_ij g(u_i) c_i`, where `e`
    /// is the external credit `−∂L/∂r` on the outputs (zero elsewhere). With the clamp `e` is
    /// injected every step and the fixed point is the gradient of recurrent backpropagation
    /// (Almeida–Pineda); in a layered net, whose outputs project nowhere, it is exactly the
    /// clamp `c_k = −∂L/∂r_k`. Without the clamp `e` is injected once and the norm is tracked
    /// until it settles, vanishes or diverges. Credits start from zero. Never returns NaN: on
    /// divergence the last finite credits are kept.
    pub fn credit(
        &self,
        s: &mut GeneralState,
        label: usize,
        loss: Loss,
        opt: &CreditOptions,
    ) -> CreditOutcome {
        let n = self.n;
        let out0 = n - self.n_out;
        let mut e = vec![0.0; n];
        loss.output_credit(&s.r[out0..], label, &mut e[out0..]);
        let g = self.balance_values(s);
        s.c.copy_from_slice(&e);
        let norm0 = norm2(&s.c);
        let mut norms = vec![norm0];
        let mut settle = Settle::IterationCap;
        let mut left_range_at = None;
        let mut steps = 0;
        let mut next = vec![0.0; n];
        while steps < opt.max_steps {
            steps += 1;
            if opt.clamp {
                next.copy_from_slice(&e);
            } else {
                next.fill(0.0);
            }
            for i in 0..n {
                let d = g[i] * s.c[i];
                if d != 0.0 {
                    axpy(d, &self.w[i * n..(i + 1) * n], &mut next);
                }
            }
            let nn = norm2(&next);
            if !nn.is_finite() || nn > opt.diverge * norm0 {
                settle = Settle::Diverged;
                left_range_at = Some(steps);
                if nn.is_finite() {
                    s.c.copy_from_slice(&next);
                    norms.push(nn);
                }
                break;
            }
            let residual = next
                .iter()
                .zip(&s.c)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            s.c.copy_from_slice(&next);
            norms.push(nn);
            if !opt.clamp && nn < opt.vanish * norm0 {
                settle = Settle::Vanished;
                left_range_at = Some(steps);
                break;
            }
            // Without a clamp the only fixed point is zero: that is vanishing, not settling.
            if opt.clamp && residual < opt.tol {
                settle = Settle::Converged;
                break;
            }
        }
        for i in 0..n {
            s.delta[i] = g[i] * s.c[i];
        }
        CreditOutcome {
            settle,
            steps,
            growth_rate: growth_rate(&norms),
            norms,
            left_range_at,
        }
    }

    /// The update `Δw_ij = η δ_i r_j` (existing synapses only) and `Δb_i = η δ_i`.
    pub fn updates(&self, s: &GeneralState, lr: f64) -> (Vec<f64>, Vec<f64>) {
        let n = self.n;
        let mut dw = vec![0.0; n * n];
        let mut db = vec![0.0; n];
        for i in self.n_in..n {
            let d = s.delta[i];
            if d == 0.0 {
                continue;
            }
            db[i] = lr * d;
            for j in 0..n {
                if self.mask[i * n + j] {
                    dw[i * n + j] = lr * d * s.r[j];
                }
            }
        }
        (dw, db)
    }

    /// Apply the plasticity of one sample.
    pub fn apply_plasticity(&mut self, s: &GeneralState, lr: f64) {
        let n = self.n;
        for i in self.n_in..n {
            let k = lr * s.delta[i];
            if k == 0.0 {
                continue;
            }
            self.b[i] += k;
            let row = &mut self.w[i * n..(i + 1) * n];
            let mrow = &self.mask[i * n..(i + 1) * n];
            for ((w, &m), &r) in row.iter_mut().zip(mrow).zip(&s.r) {
                if m {
                    *w += k * r;
                }
            }
        }
    }

    /// Spectral radius of the credit iteration `c ← Wᵀ diag(g) c` at the firing state in `s`
    /// (the "unclamped part": inputs have `g = 0`). Below 1 the clamped credit iteration
    /// converges; see [`spectral_radius`].
    pub fn credit_spectral_radius(&self, s: &GeneralState) -> f64 {
        let n = self.n;
        let g = self.balance_values(s);
        // M[j][i] = w_ij g_i.
        let mut m = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                m[j * n + i] = self.w[i * n + j] * g[i];
            }
        }
        spectral_radius(&m, n)
    }
}

/// Euclidean norm, finite for every finite input: where the plain sum of squares would
/// overflow (entries beyond ~1e154) or underflow (below ~1e-146), it is recomputed with the
/// entries scaled by the largest magnitude. Non-finite entries give a non-finite norm.
pub fn norm2(x: &[f64]) -> f64 {
    let s = x.iter().map(|v| v * v).sum::<f64>();
    // Above this, squares lost to underflow change the sum by less than one ulp per entry.
    if s.is_finite() && s >= f64::MIN_POSITIVE / f64::EPSILON {
        return s.sqrt();
    }
    let m = x.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    if m == 0.0 || !m.is_finite() || s.is_nan() {
        return if s.is_nan() { f64::NAN } else { m };
    }
    m * x.iter().map(|v| (v / m) * (v / m)).sum::<f64>().sqrt()
}

fn growth_rate(norms: &[f64]) -> Option<f64> {
    if norms.len() < 3 {
        return None;
    }
    let half = (norms.len() - 1) / 2;
    let (a, b) = (norms[half], norms[norms.len() - 1]);
    let k = (norms.len() - 1 - half) as f64;
    if a > 0.0 && b > 0.0 {
        Some((b / a).powf(1.0 / k))
    } else {
        None
    }
}

/// Spectral radius of a dense `n × n` matrix by Gelfand's formula `ρ = lim ‖Aᵏ‖^{1/k}`,
/// evaluated with 40 renormalised squarings (`k = 2⁴⁰`). Exact for nilpotent matrices (0), and
/// robust to complex leading eigenvalues, where power iteration oscillates. Cost: 40 dense
/// `n³` products.
pub fn spectral_radius(a: &[f64], n: usize) -> f64 {
    let mut b = a.to_vec();
    let nb = norm2(&b);
    if nb == 0.0 {
        return 0.0;
    }
    b.iter_mut().for_each(|x| *x /= nb);
    // log ‖A^(2^t)‖ = scale_t; ρ ≈ exp(scale_t / 2^t).
    let mut log_scale = nb.ln();
    let mut k = 1.0f64;
    let mut tmp = vec![0.0; n * n];
    for _ in 0..40 {
        tmp.fill(0.0);
        for i in 0..n {
            for l in 0..n {
                let x = b[i * n + l];
                if x != 0.0 {
                    axpy(x, &b[l * n..(l + 1) * n], &mut tmp[i * n..(i + 1) * n]);
                }
            }
        }
        let nt = norm2(&tmp);
        if nt == 0.0 {
            return 0.0;
        }
        tmp.iter_mut().for_each(|x| *x /= nt);
        std::mem::swap(&mut b, &mut tmp);
        log_scale = 2.0 * log_scale + nt.ln();
        k *= 2.0;
    }
    (log_scale / k).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norm2_is_finite_across_the_f64_range() {
        assert_eq!(norm2(&[3.0, 4.0]), 5.0);
        assert_eq!(norm2(&[]), 0.0);
        assert_eq!(norm2(&[0.0, 0.0]), 0.0);
        let big = norm2(&[3e200, 4e200]);
        assert!((big / 5e200 - 1.0).abs() < 1e-15, "{big}");
        let tiny = norm2(&[3e-200, 4e-200]);
        assert!((tiny / 5e-200 - 1.0).abs() < 1e-15, "{tiny}");
        assert_eq!(norm2(&[1.0, f64::INFINITY]), f64::INFINITY);
        assert!(norm2(&[1.0, f64::NAN]).is_nan());
        assert!(norm2(&[1e-300, f64::NAN]).is_nan());
    }

    #[test]
    fn spectral_radius_of_known_matrices() {
        // Rotation by 90° scaled by 0.5: eigenvalues ±0.5i (complex), radius 0.5.
        let r = spectral_radius(&[0.0, -0.5, 0.5, 0.0], 2);
        assert!((r - 0.5).abs() < 1e-9, "{r}");
        // Upper triangular with diagonal 0.3, 0.9: radius 0.9.
        let r = spectral_radius(&[0.3, 5.0, 0.0, 0.9], 2);
        assert!((r - 0.9).abs() < 1e-9, "{r}");
        // Nilpotent.
        assert_eq!(spectral_radius(&[0.0, 1.0, 0.0, 0.0], 2), 0.0);
    }
}
