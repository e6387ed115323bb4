//! The paper's three assumptions, turned into experiments on the `f64` reference (ARCHITECTURE.md §1.3).
//!
//! Fan & Mysore list three things biology must still confirm for the rule to be gradient
//! descent. Each probe breaks one of them on purpose, on a layered network and on an
//! all-to-all one, and measures what is lost:
//!
//! * [`balance`] — **precision mapping**, `g = f'`: a quantised balance table (entries, output
//!   bits), a constant `g`, a shifted `g`. Reports test accuracy after training and the cosine
//!   between the rule's update and the true gradient.
//! * [`equilibrium`] — **credit equilibrium before plasticity**: plasticity after only `k`
//!   retrograde steps (truncated), or applied after every retrograde step (interleaved).
//!   Reports the same two figures against `k`.
//! * [`clamp`] — **clamping against instability**: the output credit injected once instead of
//!   held. Reports the credit norm per step, its growth rate, and the step at which it
//!   vanished or left the representable range.
//!
//! **True gradient.** For the layered network, the independent
//! [`backprop`](crate::backprop) oracle. For the all-to-all network, recurrent
//! backpropagation (Almeida–Pineda) at the settled firing state, solved *directly*: the
//! credits `c = (I − Wᵀ diag(f'(u)))⁻¹ e` by Gaussian elimination, independent of the rule's
//! credit iteration ([`ap_gradient`]). The cosine is the mean, over the first
//! `probe_samples` test rows, of `cos(Δθ_rule, −∇L)` over all weights and biases; it is
//! measured on the initial network (`cos_init`, the same network for every variant) and on
//! the network each variant trained (`cos_final`). Because the output neurons' gradient
//! dominates the norm at initialisation, `cos_hidden_init` repeats the measurement over the
//! synapses onto hidden neurons only. With `g = f'` and the credit settled every cosine is 1
//! to round-off (checked by the tests to 1e-12).
//!
//! ```
//! use accord::experiments::probe::{ProbeConfig, balance::{self, BalanceConfig}};
//!
//! let mut cfg = ProbeConfig::quick(); // a tiny configuration for examples and tests
//! cfg.epochs = 1;
//! let split = accord::data::load("digits", &accord::data::default_data_dir(), 0)?;
//! let report = balance::run(&cfg, &BalanceConfig::quick(), &split)?;
//! let exact = &report.layered[0];
//! assert_eq!(exact.variant, "exact");
//! assert!((exact.cos_init - 1.0).abs() < 1e-12);
//! assert!((exact.cos_hidden_init - 1.0).abs() < 1e-12);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod balance;
pub mod clamp;
pub mod equilibrium;

use crate::backprop::Mlp;
use crate::data::{Dataset, Split};
use crate::error::{Invalid, Setting, at_least_one};
use crate::experiments::modularity::ModularityError;
use crate::experiments::modularity::experiment::Recipe;
use crate::limits::LimitError;
use crate::rule::{
    Activation, Balance, CreditOptions, GeneralNet, GeneralState, LayeredNet, LayeredState, Loss,
    Settle, Steps, argmax,
};
use crate::train::epochs as epochs_of;
use serde::Serialize;

/// Why a probe cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// A probe setting out of range (names its field).
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The all-to-all recipe the probes share refused its settings.
    #[error(transparent)]
    Recipe(#[from] ModularityError),
    /// A net larger than the memory limit allows.
    #[error(transparent)]
    Limit(#[from] LimitError),
    /// A net the probe cannot take.
    #[error("{0}")]
    Net(String),
}

impl Setting for ProbeError {
    fn invalid(&self) -> Option<&Invalid> {
        match self {
            ProbeError::Invalid(i) => Some(i),
            ProbeError::Recipe(e) => e.invalid(),
            _ => None,
        }
    }
    fn limit(&self) -> Option<&LimitError> {
        match self {
            ProbeError::Limit(l) => Some(l),
            ProbeError::Recipe(e) => e.limit(),
            _ => None,
        }
    }
}

/// `Result` of the probes.
pub type Result<T, E = ProbeError> = std::result::Result<T, E>;

/// What every probe shares: the two networks, their training and the cosine measurement.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProbeConfig {
    /// Dataset name or path.
    pub data: String,
    /// Hidden widths of the layered network (sigmoid-like hidden layers, linear outputs with
    /// softmax cross-entropy, as `accord train`).
    pub hidden: Vec<usize>,
    /// Hidden activation of the layered network.
    pub activation: Activation,
    /// Learning rate of the layered network.
    pub layered_lr: f64,
    /// The all-to-all network: the `accord modules` recipe (one activation for hidden and
    /// output neurons, MSE), usually smaller.
    pub recipe: Recipe,
    /// Learning rate of the all-to-all network.
    pub a2a_lr: f64,
    /// Training epochs per variant.
    pub epochs: usize,
    /// Use only the first `samples` training and test rows (`None`: all).
    pub samples: Option<usize>,
    /// Test rows over which the gradient cosine is averaged.
    pub probe_samples: usize,
    /// Seed of the initial weights and sample order (the same for every variant).
    pub seed: u64,
    /// Worker threads (results do not depend on it).
    pub threads: usize,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            data: "digits".into(),
            hidden: vec![32, 32],
            activation: Activation::Sigmoid,
            layered_lr: 0.05,
            recipe: Recipe {
                n: 150,
                credit_tol: 1e-10,
                credit_max_steps: 2000,
                ..Recipe::default()
            },
            a2a_lr: 0.3,
            epochs: 3,
            samples: None,
            probe_samples: 100,
            seed: 1,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

impl ProbeConfig {
    /// A tiny configuration (N = 90, 200 samples, 1 epoch, 20 probe samples) for examples and
    /// tests.
    pub fn quick() -> Self {
        let mut c = ProbeConfig::default();
        c.recipe.n = 90;
        c.hidden = vec![16, 16];
        c.epochs = 1;
        c.samples = Some(200);
        c.probe_samples = 20;
        c.threads = 1;
        c
    }

    /// Check the configuration against a dataset; errors name the field.
    pub fn check(&self, split: &Split) -> Result<()> {
        if self.hidden.is_empty() {
            return Err(Invalid::new("hidden", " needs at least one width").into());
        }
        at_least_one("epochs", Some(self.epochs))?;
        at_least_one("probe_samples", Some(self.probe_samples))?;
        at_least_one("threads", Some(self.threads))?;
        at_least_one("samples", self.samples)?;
        // The probes also run the layered net as a general net of all its neurons (dense
        // n × n matrices).
        let n_total = self.hidden.iter().fold(
            split.train.dim.saturating_add(split.train.n_classes),
            |a, &h| a.saturating_add(h),
        );
        crate::limits::check_field(
            "hidden",
            format!(
                "{} (probed as a general net of {n_total} neurons)",
                self.hidden
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            crate::limits::all_to_all_bytes(n_total),
        )?;
        for (name, lr) in [("layered_lr", self.layered_lr), ("a2a_lr", self.a2a_lr)] {
            if !(lr.is_finite() && lr > 0.0 && lr <= 1e6) {
                return Err(Invalid::new(
                    name,
                    format!(" {lr} is not allowed (must be in (0, 1e6])"),
                )
                .into());
            }
        }
        Ok(self.recipe.check(split.train.dim, split.train.n_classes)?)
    }

    /// `split` cut to the first [`samples`](Self::samples) rows of each half.
    pub fn limit(&self, split: &Split) -> Split {
        split.first(self.samples)
    }

    /// The initial layered network (Glorot, seeded).
    pub fn layered_net(&self, split: &Split) -> LayeredNet {
        let mut sizes = vec![split.train.dim];
        sizes.extend(&self.hidden);
        sizes.push(split.train.n_classes);
        let mut acts = vec![self.activation; self.hidden.len()];
        acts.push(Activation::Identity);
        LayeredNet::glorot(&sizes, &acts, self.seed)
    }

    /// The initial all-to-all network (hidden and outputs share [`activation`]).
    ///
    /// [`activation`]: Self::activation
    pub fn a2a_net(&self, split: &Split) -> GeneralNet {
        let mut r = self.recipe.clone();
        r.hidden_act = self.activation;
        r.output_act = self.activation;
        r.init_net(split.train.dim, split.train.n_classes, self.seed)
    }
}

/// How the credit phase of one sample relates to plasticity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Plan {
    /// Credit relaxed until settled (layered: `m − 1` steps; all-to-all: to tolerance),
    /// then plasticity: the rule as intended.
    Settled,
    /// Plasticity after exactly `k` retrograde steps from zero credit.
    Truncate(usize),
    /// `k` retrograde steps with plasticity after each step (and after step 0, when only
    /// the outputs hold credit), each with rate `η / (k + 1)`: plasticity runs while the
    /// credits still move.
    Interleave(usize),
}

/// One layered sample: fire, credit by `plan`, plasticity at rate `lr`.
pub fn layered_sample(
    net: &mut LayeredNet,
    s: &mut LayeredState,
    x: &[f64],
    label: usize,
    lr: f64,
    plan: Plan,
) {
    let loss = Loss::CrossEntropy;
    net.fire(x, s);
    match plan {
        Plan::Settled => {
            net.credit(s, label, loss, Steps::UntilSettled, true);
            net.apply_plasticity(s, lr);
        }
        Plan::Truncate(k) => {
            net.credit(s, label, loss, Steps::Exactly(k), true);
            net.apply_plasticity(s, lr);
        }
        Plan::Interleave(k) => {
            let share = lr / (k + 1) as f64;
            net.credit(s, label, loss, Steps::Exactly(0), true);
            net.apply_plasticity(s, share);
            for _ in 0..k {
                // One more synchronous step from the credits held (no reset).
                net.credit(s, label, loss, Steps::Exactly(1), false);
                net.apply_plasticity(s, share);
            }
        }
    }
}

/// One all-to-all sample: fire from zero, credit by `plan`, plasticity at rate `lr`. Returns
/// whether plasticity was applied (it is skipped when firing does not converge, or when a
/// settled credit does not converge or any credit diverges).
pub fn a2a_sample(
    net: &mut GeneralNet,
    s: &mut GeneralState,
    x: &[f64],
    label: usize,
    recipe: &Recipe,
    lr: f64,
    plan: Plan,
) -> bool {
    s.r.fill(0.0);
    if net.fire(x, s, &recipe.relax_options()).settle != Settle::Converged {
        return false;
    }
    match plan {
        Plan::Settled => {
            let c = net.credit(s, label, recipe.loss, &recipe.credit_options());
            if c.settle != Settle::Converged {
                return false;
            }
            net.apply_plasticity(s, lr);
        }
        Plan::Truncate(k) => {
            let opt = CreditOptions {
                max_steps: k,
                tol: 0.0,
                ..recipe.credit_options()
            };
            if net.credit(s, label, recipe.loss, &opt).settle == Settle::Diverged {
                return false;
            }
            net.apply_plasticity(s, lr);
        }
        Plan::Interleave(k) => {
            let share = lr / (k + 1) as f64;
            let n = net.n;
            let out0 = n - net.n_out;
            let mut e = vec![0.0; n];
            recipe
                .loss
                .output_credit(&s.r[out0..], label, &mut e[out0..]);
            let g = net.balance_values(s);
            s.c.copy_from_slice(&e);
            for step in 0..=k {
                if step > 0 {
                    // c ← e + Wᵀ (g ⊙ c) with the weights as they are now.
                    let mut next = e.clone();
                    for ((&gi, &ci), row) in g.iter().zip(&s.c).zip(net.w.chunks_exact(n)) {
                        let d = gi * ci;
                        if d != 0.0 {
                            for (nj, &w) in next.iter_mut().zip(row) {
                                *nj += d * w;
                            }
                        }
                    }
                    if next.iter().any(|v| !v.is_finite()) {
                        return false;
                    }
                    s.c = next;
                }
                for ((d, &gi), &ci) in s.delta.iter_mut().zip(&g).zip(&s.c) {
                    *d = gi * ci;
                }
                net.apply_plasticity(s, share);
            }
        }
    }
    true
}

/// Test accuracy of a layered network.
pub fn layered_accuracy(net: &LayeredNet, data: &Dataset) -> f64 {
    crate::train::evaluate(net, data, Loss::CrossEntropy).1
}

/// Train a layered network for `epochs` with the given plan; the sample order is
/// [`crate::train::epochs`] of `seed`.
pub fn train_layered(
    net: &mut LayeredNet,
    data: &Dataset,
    lr: f64,
    epochs: usize,
    seed: u64,
    plan: Plan,
) {
    let mut s = net.new_state();
    for ep in epochs_of(data.len(), seed, (0, 0), epochs) {
        for (_, idx) in ep.samples() {
            layered_sample(net, &mut s, data.row(idx), data.labels[idx], lr, plan);
        }
    }
}

/// Train an all-to-all network; returns the number of samples whose update was skipped.
pub fn train_a2a(
    net: &mut GeneralNet,
    data: &Dataset,
    recipe: &Recipe,
    lr: f64,
    epochs: usize,
    seed: u64,
    plan: Plan,
) -> usize {
    let mut s = net.new_state();
    let mut skipped = 0;
    for ep in epochs_of(data.len(), seed, (0, 0), epochs) {
        for (_, idx) in ep.samples() {
            if !a2a_sample(
                net,
                &mut s,
                data.row(idx),
                data.labels[idx],
                recipe,
                lr,
                plan,
            ) {
                skipped += 1;
            }
        }
    }
    skipped
}

/// Test accuracy of an all-to-all network.
pub fn a2a_accuracy(net: &GeneralNet, data: &Dataset, recipe: &Recipe) -> f64 {
    let relax = recipe.relax_options();
    let mut s = net.new_state();
    let mut correct = 0usize;
    for k in 0..data.len() {
        s.r.fill(0.0);
        net.fire(data.row(k), &mut s, &relax);
        correct += usize::from(argmax(net.output(&s)) == data.labels[k]);
    }
    correct as f64 / data.len().max(1) as f64
}

/// Cosine similarity; 0 when either vector is zero.
pub fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

fn flatten_layered(net: &LayeredNet) -> Vec<f64> {
    net.layers
        .iter()
        .flat_map(|l| l.w.iter().chain(&l.b).copied())
        .collect()
}

/// Mean gradient cosines over a set of samples.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Cos {
    /// Over all weights and biases.
    pub all: f64,
    /// Over the synapses and biases of hidden neurons only (where `g` and the retrograde
    /// steps matter; the output neurons' own update does not depend on them in the layered
    /// net).
    pub hidden: f64,
}

/// Mean over the first `p` rows of `data` of the cosine between the change the rule's
/// `plan` makes to `net` (at rate `lr`) and the negative backprop gradient.
pub fn layered_cosine(net: &LayeredNet, data: &Dataset, p: usize, lr: f64, plan: Plan) -> Cos {
    let mlp = Mlp::from_layered(net);
    let before = flatten_layered(net);
    let top = net.layers.last().map_or(0, |l| l.w.len() + l.b.len());
    let hidden_len = before.len() - top;
    let mut s = net.new_state();
    let (mut sum, mut sum_h) = (0.0, 0.0);
    let p = p.min(data.len());
    for k in 0..p {
        let (x, label) = (data.row(k), data.labels[k]);
        let grad = mlp.gradients(x, label, Loss::CrossEntropy);
        let neg: Vec<f64> = grad
            .dw
            .iter()
            .zip(&grad.db)
            .flat_map(|(w, b)| w.data.iter().chain(b).map(|v| -v))
            .collect();
        let mut trial = net.clone();
        layered_sample(&mut trial, &mut s, x, label, lr, plan);
        let after = flatten_layered(&trial);
        let update: Vec<f64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
        sum += cosine(&update, &neg);
        sum_h += cosine(&update[..hidden_len], &neg[..hidden_len]);
    }
    let d = p.max(1) as f64;
    Cos {
        all: sum / d,
        hidden: sum_h / d,
    }
}

/// The Almeida–Pineda gradient at the firing state in `s`, by a direct linear solve:
/// `c = (I − Wᵀ diag(f'(u))) ⁻¹ e` with `e = −∂L/∂r` on the outputs, then `−∂L/∂w_ij = f'(u_i)
/// c_i r_j` (existing synapses) and `−∂L/∂b_i = f'(u_i) c_i`. Uses the exact `f'` whatever
/// the network's balance function. Returns `(−∂L/∂W, −∂L/∂b)`, or `None` if the system is
/// singular.
pub fn ap_gradient(
    net: &GeneralNet,
    s: &GeneralState,
    label: usize,
    loss: Loss,
) -> Option<(Vec<f64>, Vec<f64>)> {
    let n = net.n;
    let out0 = n - net.n_out;
    let fp: Vec<f64> = (0..n)
        .map(|i| {
            if i < net.n_in {
                0.0
            } else {
                net.act(i).df(s.u[i])
            }
        })
        .collect();
    // A[j][i] = δ_ji − w_ij f'_i.
    let mut a = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            a[j * n + i] = -net.w[i * n + j] * fp[i];
        }
    }
    for j in 0..n {
        a[j * n + j] += 1.0;
    }
    let mut c = vec![0.0; n];
    loss.output_credit(&s.r[out0..], label, &mut c[out0..]);
    solve(&mut a, &mut c, n)?;
    let delta: Vec<f64> = (0..n).map(|i| fp[i] * c[i]).collect();
    let mut dw = vec![0.0; n * n];
    for i in net.n_in..n {
        for j in 0..n {
            if net.mask[i * n + j] {
                dw[i * n + j] = delta[i] * s.r[j];
            }
        }
    }
    let db: Vec<f64> = (0..n)
        .map(|i| if i < net.n_in { 0.0 } else { delta[i] })
        .collect();
    Some((dw, db))
}

/// Solve `A x = b` in place (Gaussian elimination, partial pivoting); `b` becomes `x`.
fn solve(a: &mut [f64], b: &mut [f64], n: usize) -> Option<()> {
    for col in 0..n {
        let piv =
            (col..n).max_by(|&p, &q| a[p * n + col].abs().total_cmp(&a[q * n + col].abs()))?;
        if a[piv * n + col].abs() < 1e-300 {
            return None;
        }
        if piv != col {
            for k in 0..n {
                a.swap(piv * n + k, col * n + k);
            }
            b.swap(piv, col);
        }
        let d = a[col * n + col];
        for row in col + 1..n {
            let f = a[row * n + col] / d;
            if f != 0.0 {
                for k in col..n {
                    a[row * n + k] -= f * a[col * n + k];
                }
                b[row] -= f * b[col];
            }
        }
    }
    for col in (0..n).rev() {
        let mut v = b[col];
        for k in col + 1..n {
            v -= a[col * n + k] * b[k];
        }
        b[col] = v / a[col * n + col];
    }
    b.iter().all(|v| v.is_finite()).then_some(())
}

/// Mean over the first `p` rows of `data` of the cosine between the change the rule's `plan`
/// makes to `net` and the Almeida–Pineda gradient at the same firing state. Samples whose
/// firing does not converge, or whose update was skipped, count as cosine 0.
pub fn a2a_cosine(
    net: &GeneralNet,
    data: &Dataset,
    p: usize,
    recipe: &Recipe,
    lr: f64,
    plan: Plan,
) -> Cos {
    let (mut sum, mut sum_h) = (0.0, 0.0);
    let n = net.n;
    let hidden = net.n_in..n - net.n_out;
    let p = p.min(data.len());
    let relax = recipe.relax_options();
    for k in 0..p {
        let (x, label) = (data.row(k), data.labels[k]);
        let mut s = net.new_state();
        if net.fire(x, &mut s, &relax).settle != Settle::Converged {
            continue;
        }
        let Some((gw, gb)) = ap_gradient(net, &s, label, recipe.loss) else {
            continue;
        };
        let mut trial = net.clone();
        let mut ts = trial.new_state();
        if !a2a_sample(&mut trial, &mut ts, x, label, recipe, lr, plan) {
            continue;
        }
        let update: Vec<f64> = trial
            .w
            .iter()
            .zip(&net.w)
            .chain(trial.b.iter().zip(&net.b))
            .map(|(a, b)| a - b)
            .collect();
        let grad: Vec<f64> = gw.iter().chain(&gb).copied().collect();
        sum += cosine(&update, &grad);
        // Rows of hidden neurons, then their biases.
        let pick = |v: &[f64]| -> Vec<f64> {
            v[hidden.start * n..hidden.end * n]
                .iter()
                .chain(&v[n * n + hidden.start..n * n + hidden.end])
                .copied()
                .collect()
        };
        sum_h += cosine(&pick(&update), &pick(&grad));
    }
    let d = p.max(1) as f64;
    Cos {
        all: sum / d,
        hidden: sum_h / d,
    }
}

/// Set every layer's balance function to `make(layer activation)`.
pub fn set_layered_balance(net: &mut LayeredNet, make: &dyn Fn(Activation) -> Balance) {
    for l in &mut net.layers {
        l.balance = make(l.act);
    }
}

/// The layered network as a [`GeneralNet`] over all its neurons (input layer first), with
/// synapses only between consecutive layers. Needs every hidden layer to share one
/// activation.
pub fn layered_as_general(net: &LayeredNet) -> Result<GeneralNet> {
    let sizes = net.sizes();
    let m = net.depth();
    let hidden_act = net.layers[0].act;
    if net.layers[..m - 1].iter().any(|l| l.act != hidden_act) {
        return Err(ProbeError::Net(
            "layered_as_general needs one activation for all hidden layers".into(),
        ));
    }
    let n: usize = sizes.iter().sum();
    let mut offs = vec![0usize];
    for s in &sizes {
        offs.push(offs.last().copied().unwrap_or(0) + s);
    }
    let mut g = GeneralNet::all_to_all(
        n,
        sizes[0],
        sizes[m],
        hidden_act,
        net.layers[m - 1].act,
        0.0,
        0,
    );
    g.w.fill(0.0);
    g.mask.fill(false);
    for (l, layer) in net.layers.iter().enumerate() {
        for i in 0..layer.n_out {
            let gi = offs[l + 1] + i;
            g.b[gi] = layer.b[i];
            for j in 0..layer.n_in {
                let gj = offs[l] + j;
                g.mask[gi * n + gj] = true;
                g.w[gi * n + gj] = layer.w[i * layer.n_in + j];
            }
        }
    }
    Ok(g)
}

/// The line naming both probed networks and the cosine measurement, for the reports.
pub(crate) fn nets_line(cfg: &ProbeConfig, layered_sizes: &[usize]) -> String {
    let sizes: Vec<String> = layered_sizes.iter().map(|s| s.to_string()).collect();
    format!(
        "layered {} ({} hidden, linear out, CE, η = {}); all-to-all N = {} ({} hidden and out, MSE, η = {}); \
         {} epoch(s), seed {}; cosine = mean over {} test rows of cos(rule update, −true gradient), \
         cos₀ on the initial net (cos₀ hid: synapses onto hidden neurons only), cos_T after training",
        sizes.join("-"),
        cfg.activation,
        cfg.layered_lr,
        cfg.recipe.n,
        cfg.activation,
        cfg.a2a_lr,
        cfg.epochs,
        cfg.seed,
        cfg.probe_samples
    )
}
