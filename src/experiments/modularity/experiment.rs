//! All-to-all training with the rule, and the learning-rate → modularity experiment behind
//! `accord modules` (ARCHITECTURE.md §1.4).
//!
//! # Training an all-to-all network with the rule
//!
//! [`train_all_to_all`] trains a [`GeneralNet`] in which every non-input neuron receives a
//! synapse from every other neuron (inputs receive none; no autapses). Per sample:
//!
//! 1. **firing**: inputs clamped to the data, rates relaxed from zero by `r ← f(W r + b)`
//!    until `max |Δr| < tol` or the iteration cap;
//! 2. **credit**: the outputs clamped to `c = −∂L/∂r` on every step, the credit relaxed by
//!    `c ← e + Wᵀ (g ⊙ c)` until `max |Δc| < tol` or the cap. Its fixed point is the
//!    recurrent-backprop (Almeida–Pineda) gradient; it exists when the spectral radius `ρ`
//!    of `Wᵀ diag(g)` is below 1;
//! 3. **plasticity** `Δw_ij = η δ_i r_j`, `Δb_i = η δ_i`, only if both relaxations converged.
//!    Otherwise the update is skipped and counted ([`Convergence`]): a sample whose credit
//!    cannot settle (`ρ ≥ 1`) never changes a weight.
//!
//! The exact `ρ` (Gelfand's formula, [`GeneralNet::credit_spectral_radius`]) is monitored at
//! the firing state of the first training row before training and after every epoch.
//! With `g = f'`, `Wᵀ diag(f')` has the spectrum of the firing Jacobian, so wherever plain
//! firing iteration converges, `ρ < 1` and the credit converges too.
//!
//! ## The recipe ([`Recipe::default`])
//!
//! Found by experiment for UCI digits (64 inputs, 10 outputs) at `N = 300` (226 hidden):
//!
//! | setting | value | why |
//! |---|---|---|
//! | activations | sigmoid hidden **and** output, MSE loss | bounded rates: the firing relaxation cannot run away. Linear outputs with cross-entropy (the layered default) diverge here: the outputs feed back with unbounded gain |
//! | initial weights | uniform `±1/√N` | `ρ ≈ 0.13` at the start |
//! | firing | undamped, `tol = 1e-6`, cap 200 | ≈ 9 iterations per sample at the start, ≈ 20 after training at `η = 1` |
//! | credit | clamped, `tol = 1e-6`, cap 200 | ≈ 6–10 steps per sample |
//! | learning rates | `1e-3 … 1` | `η = 3` saturates the sigmoids and the net stops learning (10 % accuracy) |
//!
//! With it, 20 epochs at `η = 0.3` reach ≈ 96 % test accuracy; `ρ` stays below 0.7 and
//! firing failures are rare (3 skipped samples in the 604 k of the default sweep, all at
//! `η = 1`). One epoch (1 438 samples) takes ≈ 1–2 s on one core.
//!
//! # The experiment
//!
//! [`run_sweep`] trains one network per (learning rate, seed), in parallel over runs, and
//! for each trained `W` detects communities on `|W|` with Louvain ([`analyse`]), measures
//! Newman's `Q`, the share of `Σ|w_ij|` within communities and its chance level, and the same
//! share for the fixed input/hidden/output groups. The learned part `W − W₀` is analysed
//! too. [`verdict()`] compares the lowest with the highest rate over the seeds.
//!
//! Reproducibility: a run's initial weights and sample order depend on its seed only (so
//! every rate starts from the same network), its Louvain restarts on (seed, rate index); the
//! sweep's result does not depend on the thread count.
//!
//! ```
//! use accord::experiments::modularity::experiment::{Recipe, analyse, train_all_to_all};
//!
//! let split = accord::data::load("digits", &accord::data::default_data_dir(), 0)?;
//! let small = accord::data::Split {
//!     train: split.train.subset(&(0..100).collect::<Vec<_>>()),
//!     test: split.test.subset(&(0..50).collect::<Vec<_>>()),
//! };
//! let recipe = Recipe { n: 90, radius_samples: 0, ..Recipe::default() };
//! let t = train_all_to_all(&recipe, &small, 0.3, 1, 7, &|| {})?;
//! assert_eq!(t.convergence.samples, 100);
//! assert_eq!(t.convergence.updates_applied + t.convergence.updates_skipped, 100);
//! let net = &t.net;
//! let s = analyse(&net.w, &net.mask, net.n, net.n_in, net.n_out, 7, 2)?;
//! assert!(s.q > 0.0 && s.within > 0.0 && s.within <= 1.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use super::community::{self, CommunityError, WeightedGraph};
use super::lens::{LensResult, LensSetup, analyse_lenses};
use super::protocol::{self, Protocol, Stop};
use super::{ModularityError, Result};
use crate::data::{Dataset, Split};
use crate::emulator::all_to_all::Schedule;
use crate::error::{Invalid, at_least_one};
use crate::rule::{
    Activation, CreditOptions, GeneralNet, GeneralState, Loss, RelaxOptions, Settle, argmax,
};
use crate::train::{RunStatus, Watch, max_abs};
use serde::Serialize;
use std::time::Instant;

/// How an all-to-all network is built and trained: the documented recipe.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Recipe {
    /// Neurons `N` (inputs and outputs included).
    pub n: usize,
    /// Activation of hidden neurons.
    pub hidden_act: Activation,
    /// Activation of output neurons.
    pub output_act: Activation,
    /// Loss clamped onto the outputs.
    pub loss: Loss,
    /// Initial weights uniform in `±init_scale / sqrt(N)` (see [`GeneralNet::all_to_all`]).
    pub init_scale: f64,
    /// Firing relaxation: stop when `max |Δr| < fire_tol`.
    pub fire_tol: f64,
    /// Firing relaxation: iteration cap.
    pub fire_max_iter: usize,
    /// Firing relaxation: damping `α` in `(0, 1]`.
    pub damping: f64,
    /// Credit iteration: stop when `max |Δc| < credit_tol`.
    pub credit_tol: f64,
    /// Credit iteration: step cap.
    pub credit_max_steps: usize,
    /// Start each sample's firing relaxation from the previous sample's rates (`true`) or
    /// from zero (`false`).
    pub warm_start: bool,
    /// Samples (fixed, the first training rows) at whose firing equilibrium the exact
    /// spectral radius of the credit iteration is computed before training and after each
    /// epoch.
    pub radius_samples: usize,
    /// Dale's law: the share of inhibitory neurons (0: none; see [`protocol`]).
    pub inhibitory: f64,
    /// L2 weight decay `λ`: after each update `w ← (1 − ηλ) w` (0: none).
    pub weight_decay: f64,
    /// When a run stops before its epoch cap.
    pub stop: Stop,
}

impl Default for Recipe {
    fn default() -> Self {
        Recipe {
            n: 300,
            hidden_act: Activation::Sigmoid,
            output_act: Activation::Sigmoid,
            loss: Loss::Mse,
            init_scale: 1.0,
            fire_tol: 1e-6,
            fire_max_iter: 200,
            damping: 1.0,
            credit_tol: 1e-6,
            credit_max_steps: 200,
            warm_start: false,
            radius_samples: 1,
            inhibitory: 0.0,
            weight_decay: 0.0,
            stop: Stop::Epochs,
        }
    }
}

impl Recipe {
    /// The firing relaxation options.
    pub fn relax_options(&self) -> RelaxOptions {
        RelaxOptions {
            tol: self.fire_tol,
            max_iter: self.fire_max_iter,
            damping: self.damping,
        }
    }

    /// The credit iteration options (clamped).
    pub fn credit_options(&self) -> CreditOptions {
        CreditOptions {
            tol: self.credit_tol,
            max_steps: self.credit_max_steps,
            clamp: true,
            ..CreditOptions::default()
        }
    }

    /// Epoch `e`'s record after `n` samples of summed loss and `correct` answers (`sums`), with
    /// the test accuracy and the spectral radius measured now.
    fn record(
        &self,
        net: &GeneralNet,
        split: &Split,
        e: usize,
        (loss_sum, correct, n): (f64, usize, usize),
        convergence: Convergence,
        start: Instant,
    ) -> EpochRecord {
        let seconds = start.elapsed().as_secs_f64();
        let n = n.max(1) as f64;
        EpochRecord {
            epoch: e + 1,
            train_loss: loss_sum / n,
            train_accuracy: correct as f64 / n,
            test_accuracy: accuracy(net, &split.test, self).0,
            spectral_radius: monitored_radius(net, &split.train, self),
            convergence,
            seconds,
        }
    }

    /// The recipe's training as a chip runs it: its tolerances and caps at `lr`, `epochs`, `seed`.
    pub fn chip_schedule(&self, lr: f64, epochs: usize, seed: u64) -> Schedule {
        Schedule {
            lr,
            epochs,
            seed,
            tol: (self.fire_tol, self.credit_tol),
            max_rounds: (self.fire_max_iter, self.credit_max_steps),
        }
    }

    /// Check a learning rate for this recipe: finite and positive, and with the weight decay
    /// below one per update.
    pub fn check_rate(&self, lr: f64) -> Result<()> {
        if !(lr.is_finite() && lr > 0.0) {
            return Err(Invalid::new(
                "lr",
                format!(" {lr} is not allowed (must be finite and > 0)"),
            )
            .into());
        }
        if lr * self.weight_decay >= 1.0 {
            return Err(Invalid::new(
                "weight_decay",
                format!(
                    " {} at learning rate {lr} would zero or flip every weight each update (need rate × decay < 1)",
                    self.weight_decay
                ),
            )
            .into());
        }
        Ok(())
    }

    /// After a sample fired (`fire`), relax its credit and learn where both settled (then the
    /// protocol's constraints); otherwise count the update skipped. `rule`: the credit options,
    /// the learning rate and the inhibitory neurons.
    fn learn(
        &self,
        net: &mut GeneralNet,
        s: &mut GeneralState,
        label: usize,
        fire: Settle,
        (copt, lr, inhibitory): (&CreditOptions, f64, &[bool]),
        conv: &mut Convergence,
    ) {
        if fire == Settle::Converged {
            let c = net.credit(s, label, self.loss, copt);
            conv.record_credit(c.settle, c.steps);
            if c.settle == Settle::Converged {
                net.apply_plasticity(s, lr);
                conv.sign_clipped += self.constrain(net, lr, inhibitory);
                conv.updates_applied += 1;
            } else {
                conv.updates_skipped += 1;
            }
        } else {
            conv.updates_skipped += 1;
            // A non-finite or unsettled state must not leak into the next warm start.
            s.r.fill(0.0);
        }
    }

    /// Check the recipe against a dataset of `dim` features and `classes` classes.
    pub fn check(&self, dim: usize, classes: usize) -> Result<()> {
        crate::limits::check_field(
            "n",
            format!("{} (an all-to-all net)", self.n),
            crate::limits::all_to_all_bytes(self.n),
        )?;
        if self.n < dim + classes + 1 {
            return Err(Invalid::new(
                "n",
                format!(
                    " {} is too small: {} inputs + {} outputs + at least 1 hidden neuron need n ≥ {}",
                    self.n,
                    dim,
                    classes,
                    dim + classes + 1
                ),
            )
            .into());
        }
        // Rates lie in [0, 1]: a tolerance of 1 or more accepts any state at once.
        for (field, tol) in [("fire_tol", self.fire_tol), ("credit_tol", self.credit_tol)] {
            if !(tol.is_finite() && tol > 0.0 && tol < 1.0) {
                return Err(Invalid::new(
                    field,
                    format!(
                        " {tol:e} is not allowed (must lie in (0, 1): a relaxation stops once no value changes by that much)"
                    ),
                )
                .into());
            }
        }
        if !(self.damping > 0.0 && self.damping <= 1.0) {
            return Err(Invalid::new(
                "damping",
                format!(" {} is not allowed (must be in (0, 1])", self.damping),
            )
            .into());
        }
        if !(self.inhibitory >= 0.0 && self.inhibitory < 1.0) {
            return Err(Invalid::new(
                "inhibitory",
                format!(
                    " share {} is not allowed (must be in [0, 1))",
                    self.inhibitory
                ),
            )
            .into());
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(Invalid::new(
                "weight_decay",
                format!(
                    " {} is not allowed (must be finite and ≥ 0)",
                    self.weight_decay
                ),
            )
            .into());
        }
        match self.stop {
            Stop::TargetLoss { loss } if !(loss.is_finite() && loss > 0.0) => {
                return Err(Invalid::new(
                    "target_loss",
                    format!(" {loss} is not allowed (must be finite and > 0)"),
                )
                .into());
            }
            Stop::Plateau { relative, patience }
                if !(relative.is_finite() && relative > 0.0) || patience == 0 =>
            {
                return Err(Invalid::new(
                    "plateau",
                    format!(
                        " rule ({relative} over {patience} epochs) is not allowed (need > 0 and ≥ 1 epoch)"
                    ),
                )
                .into());
            }
            _ => {}
        }
        if !(self.init_scale.is_finite() && self.init_scale >= 0.0) {
            return Err(Invalid::new(
                "init_scale",
                format!(
                    " {} is not allowed (must be finite and ≥ 0)",
                    self.init_scale
                ),
            )
            .into());
        }
        // The N² initial weights of magnitude up to init_scale/√N must have a finite total |W|
        // (community detection sums it).
        let n = self.n as f64;
        if !(n * n * self.init_scale / n.sqrt()).is_finite() {
            return Err(Invalid::new(
                "init_scale",
                format!(
                    " {:e} is not allowed for n = {}: the initial weights' total |w| would overflow f64",
                    self.init_scale, self.n
                ),
            )
            .into());
        }
        Ok(())
    }

    /// The initial network for a dataset of `dim` features and `classes` classes (with
    /// Dale's signs when [`inhibitory`](Self::inhibitory) is set).
    pub fn init_net(&self, dim: usize, classes: usize, seed: u64) -> GeneralNet {
        let mut net = GeneralNet::all_to_all(
            self.n,
            dim,
            classes,
            self.hidden_act,
            self.output_act,
            self.init_scale,
            seed,
        );
        let inh = protocol::inhibitory(self.n, self.inhibitory);
        if !inh.is_empty() {
            protocol::dale_init(&mut net.w, self.n, &inh, self.inhibitory);
        }
        net
    }

    /// What the recipe does after the rule's update of one sample at rate `lr`: weight
    /// decay, then Dale's projection (`inhibitory` from [`protocol::inhibitory`]). Returns
    /// the weights clipped.
    fn constrain(&self, net: &mut GeneralNet, lr: f64, inhibitory: &[bool]) -> usize {
        if self.weight_decay > 0.0 {
            let k = 1.0 - lr * self.weight_decay;
            net.w.iter_mut().for_each(|w| *w *= k);
        }
        if inhibitory.is_empty() {
            0
        } else {
            protocol::dale_project(&mut net.w, net.n, inhibitory)
        }
    }
}

/// Per-sample convergence counts of a stretch of training (an epoch or a run).
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Convergence {
    /// Samples seen.
    pub samples: usize,
    /// Firing relaxations that reached the tolerance.
    pub fire_converged: usize,
    /// Firing relaxations that hit the iteration cap.
    pub fire_capped: usize,
    /// Firing relaxations whose rates left the representable range.
    pub fire_diverged: usize,
    /// Credit iterations that reached the tolerance (run only after a converged firing).
    pub credit_converged: usize,
    /// Credit iterations that hit the step cap (spectral radius ≥ 1 or too slow).
    pub credit_capped: usize,
    /// Credit iterations that diverged.
    pub credit_diverged: usize,
    /// Samples whose plasticity was applied (firing and credit both converged).
    pub updates_applied: usize,
    /// Samples whose plasticity was skipped because firing or credit did not converge.
    pub updates_skipped: usize,
    /// Total firing iterations.
    pub fire_iterations: usize,
    /// Most firing iterations of one sample.
    pub fire_iterations_max: usize,
    /// Total credit steps.
    pub credit_steps: usize,
    /// Most credit steps of one sample.
    pub credit_steps_max: usize,
    /// Weights clipped back onto their sign under Dale's law.
    #[serde(default)]
    pub sign_clipped: usize,
}

impl Convergence {
    /// Add another stretch's counts.
    pub fn add(&mut self, o: &Convergence) {
        self.samples += o.samples;
        self.fire_converged += o.fire_converged;
        self.fire_capped += o.fire_capped;
        self.fire_diverged += o.fire_diverged;
        self.credit_converged += o.credit_converged;
        self.credit_capped += o.credit_capped;
        self.credit_diverged += o.credit_diverged;
        self.updates_applied += o.updates_applied;
        self.updates_skipped += o.updates_skipped;
        self.fire_iterations += o.fire_iterations;
        self.fire_iterations_max = self.fire_iterations_max.max(o.fire_iterations_max);
        self.credit_steps += o.credit_steps;
        self.credit_steps_max = self.credit_steps_max.max(o.credit_steps_max);
        self.sign_clipped += o.sign_clipped;
    }

    /// Firing failures (capped or diverged).
    pub fn fire_failures(&self) -> usize {
        self.fire_capped + self.fire_diverged
    }

    /// Credit failures (capped or diverged).
    pub fn credit_failures(&self) -> usize {
        self.credit_capped + self.credit_diverged
    }

    /// Mean firing iterations per sample.
    pub fn mean_fire_iterations(&self) -> f64 {
        self.fire_iterations as f64 / self.samples.max(1) as f64
    }

    /// Mean credit steps per credit phase.
    pub fn mean_credit_steps(&self) -> f64 {
        let phases = self.credit_converged + self.credit_capped + self.credit_diverged;
        self.credit_steps as f64 / phases.max(1) as f64
    }

    fn record_fire(&mut self, settle: Settle, iterations: usize) {
        self.samples += 1;
        match settle {
            Settle::Converged => self.fire_converged += 1,
            Settle::Diverged => self.fire_diverged += 1,
            Settle::IterationCap | Settle::Vanished => self.fire_capped += 1,
        }
        self.fire_iterations += iterations;
        self.fire_iterations_max = self.fire_iterations_max.max(iterations);
    }

    fn record_credit(&mut self, settle: Settle, steps: usize) {
        match settle {
            Settle::Converged => self.credit_converged += 1,
            Settle::Diverged => self.credit_diverged += 1,
            Settle::IterationCap | Settle::Vanished => self.credit_capped += 1,
        }
        self.credit_steps += steps;
        self.credit_steps_max = self.credit_steps_max.max(steps);
    }
}

/// One epoch of all-to-all training.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean loss of the epoch's samples, before each sample's update.
    pub train_loss: f64,
    /// Share of the epoch's samples classified correctly before their update.
    pub train_accuracy: f64,
    /// Test accuracy after the epoch.
    pub test_accuracy: f64,
    /// Largest spectral radius of the credit iteration over the monitored samples after the
    /// epoch (`None` when no sample is monitored).
    pub spectral_radius: Option<f64>,
    /// Convergence counts of the epoch's training samples.
    pub convergence: Convergence,
    /// Wall time of the training pass, seconds.
    pub seconds: f64,
}

/// An all-to-all network after training, with its record.
#[derive(Clone, Debug)]
pub struct Trained {
    /// The trained network.
    pub net: GeneralNet,
    /// Its weights before training.
    pub initial_w: Vec<f64>,
    /// Spectral radius before training (over the monitored samples).
    pub initial_radius: Option<f64>,
    /// Per-epoch record.
    pub epochs: Vec<EpochRecord>,
    /// Final test accuracy.
    pub test_accuracy: f64,
    /// Firing failures while evaluating the test set (the prediction is then read from the
    /// last finite iterate).
    pub test_fire_failures: usize,
    /// Convergence counts over all epochs.
    pub convergence: Convergence,
    /// How training ended: completed, or diverged (epoch, sample and why).
    pub outcome: RunStatus,
    /// Training stopped by the recipe's [`Stop`] rule before the epoch cap.
    pub stop_reached: bool,
}

/// Train an all-to-all network with the rule, one sample at a time.
///
/// Per sample: inputs clamped to the data, firing relaxed to equilibrium; then the output
/// credit clamped to `−∂L/∂r` and the credit relaxed to equilibrium; then
/// `Δw_ij = η δ_i r_j`. A sample whose firing or credit does not converge (the credit cannot
/// when the spectral radius is ≥ 1) is counted and its update skipped. Weight init and sample
/// order depend on `seed` only (same seed, same init and order at every learning rate);
/// `progress` is called after every sample.
pub fn train_all_to_all(
    recipe: &Recipe,
    split: &Split,
    lr: f64,
    epochs: usize,
    seed: u64,
    progress: &(dyn Fn() + Sync),
) -> Result<Trained> {
    let (dim, classes) = (split.train.dim, split.train.n_classes);
    recipe.check(dim, classes)?;
    recipe.check_rate(lr)?;
    let mut net = recipe.init_net(dim, classes, seed);
    let initial_w = net.w.clone();
    let relax = recipe.relax_options();
    let copt = recipe.credit_options();
    let initial_radius = monitored_radius(&net, &split.train, recipe);
    let mut records = Vec::with_capacity(epochs);
    let mut total = Convergence::default();
    let mut s = net.new_state();
    let mut watch = Watch::new(recipe.loss, classes);
    watch.weights(max_abs(&net.w), 0, 0);
    let mut outcome = RunStatus::completed();
    let inhibitory = protocol::inhibitory(net.n, recipe.inhibitory);
    // A target loss is checked on the mean of every quarter epoch's samples, so that a fast
    // rate does not overshoot by a whole epoch.
    let window = split.train.len().div_ceil(4).max(1);
    let (mut window_sum, mut window_len): (f64, usize);
    let mut losses = Vec::new();
    let mut stop_reached = false;
    'epochs: for ep in crate::train::epochs(split.train.len(), seed, (0, 0), epochs) {
        let e = ep.index;
        // Quarter-epoch windows start afresh with every epoch.
        (window_sum, window_len) = (0.0, 0);
        let start = Instant::now();
        let mut conv = Convergence::default();
        let (mut loss_sum, mut correct) = (0.0, 0usize);
        watch.start_epoch();
        for (k, idx) in ep.samples() {
            let label = split.train.labels[idx];
            if !recipe.warm_start {
                s.r.fill(0.0);
            }
            let fire = net.fire(split.train.row(idx), &mut s, &relax);
            conv.record_fire(fire.settle, fire.iterations);
            let out = net.output(&s);
            let loss = recipe.loss.value(out, label);
            loss_sum += loss;
            correct += usize::from(argmax(out) == label);
            if let Some(d) = watch.sample(loss, e, k) {
                outcome = d;
                total.add(&conv);
                break 'epochs;
            }
            let rule = (&copt, lr, inhibitory.as_slice());
            recipe.learn(&mut net, &mut s, label, fire.settle, rule, &mut conv);
            progress();
            window_sum += loss;
            window_len += 1;
            if window_len == window {
                let mean = window_sum / window_len as f64;
                (window_sum, window_len) = (0.0, 0);
                if matches!(recipe.stop, Stop::TargetLoss { .. }) && recipe.stop.reached(&[mean]) {
                    stop_reached = true;
                    total.add(&conv);
                    let sums = (loss_sum, correct, k + 1);
                    records.push(recipe.record(&net, split, e, sums, conv, start));
                    break 'epochs;
                }
            }
        }
        total.add(&conv);
        losses.push(loss_sum / ep.len().max(1) as f64);
        let sums = (loss_sum, correct, ep.len());
        records.push(recipe.record(&net, split, e, sums, conv, start));
        if let Some(d) = watch.weights(max_abs(&net.w), e, ep.len()) {
            outcome = d;
            break;
        }
        if matches!(recipe.stop, Stop::Plateau { .. }) && recipe.stop.reached(&losses) {
            stop_reached = true;
            break;
        }
    }
    let (test_accuracy, test_fire_failures) = accuracy(&net, &split.test, recipe);
    Ok(Trained {
        stop_reached,
        outcome,
        net,
        initial_w,
        initial_radius,
        epochs: records,
        test_accuracy,
        test_fire_failures,
        convergence: total,
    })
}

/// Accuracy of `net` on `data` (firing from zero for every sample) and the number of samples
/// whose firing did not converge.
pub fn accuracy(net: &GeneralNet, data: &Dataset, recipe: &Recipe) -> (f64, usize) {
    let relax = recipe.relax_options();
    let mut s = net.new_state();
    let (mut correct, mut failures) = (0usize, 0usize);
    for k in 0..data.len() {
        s.r.fill(0.0);
        let f = net.fire(data.row(k), &mut s, &relax);
        failures += usize::from(f.settle != Settle::Converged);
        correct += usize::from(argmax(net.output(&s)) == data.labels[k]);
    }
    (correct as f64 / data.len().max(1) as f64, failures)
}

/// Largest exact spectral radius of the credit iteration over the first
/// `recipe.radius_samples` rows of `data`.
fn monitored_radius(net: &GeneralNet, data: &Dataset, recipe: &Recipe) -> Option<f64> {
    let relax = recipe.relax_options();
    let mut worst: Option<f64> = None;
    for k in 0..recipe.radius_samples.min(data.len()) {
        let mut s: GeneralState = net.new_state();
        net.fire(data.row(k), &mut s, &relax);
        let r = net.credit_spectral_radius(&s);
        worst = Some(worst.map_or(r, |w| w.max(r)));
    }
    worst
}

/// Names of the fixed neuron groups, in the order of [`Structure::group_blocks`].
pub const GROUPS: [&str; 3] = ["input", "hidden", "output"];

/// Block structure of one weight matrix: detected communities and fixed groups.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Structure {
    /// Newman modularity `Q` of the detected partition on the symmetrised `|W|`.
    pub q: f64,
    /// Number of detected communities.
    pub communities: usize,
    /// Community sizes, largest first.
    pub community_sizes: Vec<usize>,
    /// Share of the off-diagonal `Σ|w_ij|` inside detected communities.
    pub within: f64,
    /// The within share weights spread evenly over the existing synapses would give for
    /// this partition (the chance level of `within`).
    pub within_chance: f64,
    /// Share of `Σ|w_ij|` inside the fixed groups (input, hidden, output).
    pub group_within: f64,
    /// The chance level of `group_within` (weights spread evenly over existing synapses).
    pub group_within_chance: f64,
    /// `group_blocks[a][b]`: share of `Σ|w_ij|` on synapses from group `b` onto group `a`
    /// (groups as in [`GROUPS`]).
    pub group_blocks: [[f64; 3]; 3],
    /// Community label of every neuron.
    #[serde(skip)]
    pub labels: Vec<usize>,
}

/// Group (0 input, 1 hidden, 2 output) of every neuron.
pub fn group_labels(n: usize, n_in: usize, n_out: usize) -> Vec<usize> {
    (0..n)
        .map(|i| {
            if i < n_in {
                0
            } else if i >= n - n_out {
                2
            } else {
                1
            }
        })
        .collect()
}

/// Share of the existing synapses (`mask`, diagonal excluded) whose two ends share a label:
/// the within share of weights spread evenly over the synapses that exist.
pub fn masked_chance(mask: &[bool], n: usize, labels: &[usize]) -> f64 {
    let (mut inside, mut all) = (0usize, 0usize);
    for i in 0..n {
        for j in 0..n {
            if i != j && mask[i * n + j] {
                all += 1;
                inside += usize::from(labels[i] == labels[j]);
            }
        }
    }
    if all == 0 {
        0.0
    } else {
        inside as f64 / all as f64
    }
}

/// Detect communities on `|W|` (Louvain, best of `restarts` seeds derived from `seed`) and
/// measure the within/across shares by community and by the fixed groups. `mask` marks the
/// existing synapses (for the chance levels).
pub fn analyse(
    w: &[f64],
    mask: &[bool],
    n: usize,
    n_in: usize,
    n_out: usize,
    seed: u64,
    restarts: usize,
) -> Result<Structure, CommunityError> {
    let graph = WeightedGraph::from_abs_weights(w, n)?;
    let seeds: Vec<u64> = (0..restarts.max(1) as u64)
        .map(|k| seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(k))
        .collect();
    let part = community::louvain_best(&graph, &seeds);
    let shares = community::block_shares(w, n, &part.labels)?;
    let groups = group_labels(n, n_in, n_out);
    let gshares = community::block_shares(w, n, &groups)?;
    let mut blocks = [[0.0; 3]; 3];
    for i in 0..n {
        for j in 0..n {
            if i != j {
                blocks[groups[i]][groups[j]] += w[i * n + j].abs();
            }
        }
    }
    if gshares.total > 0.0 {
        blocks
            .iter_mut()
            .flatten()
            .for_each(|x| *x /= gshares.total);
    }
    let mut sizes = part.sizes();
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    Ok(Structure {
        q: part.modularity,
        communities: part.num_communities,
        community_sizes: sizes,
        within: shares.within,
        within_chance: masked_chance(mask, n, &part.labels),
        group_within: gshares.within,
        group_within_chance: masked_chance(mask, n, &groups),
        group_blocks: blocks,
        labels: part.labels,
    })
}

impl Structure {
    /// `within − within_chance`: how much more of `|W|` sits inside the detected communities
    /// than evenly spread weights would put there. Unlike the raw within share it does not
    /// grow just because fewer, larger communities were found.
    pub fn within_excess(&self) -> f64 {
        self.within - self.within_chance
    }

    /// `group_within − group_within_chance` for the fixed input/hidden/output groups.
    pub fn group_within_excess(&self) -> f64 {
        self.group_within - self.group_within_chance
    }
}

/// A learning-rate sweep: every rate × every seed, one all-to-all run each.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SweepConfig {
    /// The network and relaxation recipe.
    pub recipe: Recipe,
    /// Dataset name or path, as given.
    pub data: String,
    /// Learning rates, ascending.
    pub rates: Vec<f64>,
    /// Seeds (initial weights and sample order; shared by all rates, so that rates are
    /// compared on the same initial network).
    pub seeds: Vec<u64>,
    /// Epochs per run.
    pub epochs: usize,
    /// Use only the first `samples` training and test rows (`None`: all).
    pub samples: Option<usize>,
    /// Worker threads (results do not depend on it).
    pub threads: usize,
    /// Louvain restarts per matrix (the best `Q` is kept).
    pub louvain_restarts: usize,
    /// Train on a chip model instead of the `f64` reference (see [`ChipRun`]).
    pub chip: Option<ChipRun>,
    /// The training protocol (its parameters are in [`recipe`](Self::recipe); the modular
    /// task also changes the data, see [`SweepConfig::prepare`]).
    pub protocol: Protocol,
    /// Shuffles of the lenses' null model per run ([`lens`](super::lens)).
    pub nulls: usize,
}

/// Where a sweep trains when it runs on a chip: the model and the arithmetic.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChipRun {
    /// The chip model.
    pub model: crate::chip::ChipModel,
    /// Fixed point or the float twin.
    pub arith: crate::emulator::Arith,
}

/// [`train_all_to_all`] on a chip ([`crate::emulator::all_to_all::train_on_chip`]), reported in the
/// same shape. Per-epoch train loss and accuracy are not measured on the chip (NaN); the
/// spectral radius is measured in `f64` on the initial and on the chip-trained weights (reported
/// for the last epoch); skipped updates are counted as capped relaxations.
pub fn train_all_to_all_on_chip(
    recipe: &Recipe,
    chip: &ChipRun,
    split: &Split,
    lr: f64,
    epochs: usize,
    seed: u64,
) -> Result<Trained> {
    let (dim, classes) = (split.train.dim, split.train.n_classes);
    recipe.check(dim, classes)?;
    let mut net = recipe.init_net(dim, classes, seed);
    let initial_w = net.w.clone();
    let initial_radius = monitored_radius(&net, &split.train, recipe);
    let start = Instant::now();
    let run = crate::emulator::all_to_all::train_on_chip(
        &chip.model,
        chip.arith,
        &net,
        recipe.loss,
        split,
        recipe.chip_schedule(lr, epochs, seed),
    )?;
    net.w = run.weights.clone();
    let samples = split.train.len() * epochs;
    let skipped = run.fire_failures + run.credit_failures;
    let convergence = Convergence {
        samples,
        fire_converged: samples - run.fire_failures,
        fire_capped: run.fire_failures,
        credit_converged: samples - skipped,
        credit_capped: run.credit_failures,
        updates_applied: samples - skipped,
        updates_skipped: skipped,
        fire_iterations: run.fire_rounds.0,
        fire_iterations_max: run.fire_rounds.1,
        credit_steps: run.credit_rounds.0,
        credit_steps_max: run.credit_rounds.1,
        ..Convergence::default()
    };
    let final_radius = monitored_radius(&net, &split.train, recipe);
    let last = run.test_accuracy.len();
    let per_epoch = start.elapsed().as_secs_f64() / epochs.max(1) as f64;
    let epochs_rec = run
        .test_accuracy
        .iter()
        .enumerate()
        .map(|(e, &acc)| EpochRecord {
            epoch: e + 1,
            train_loss: f64::NAN,
            train_accuracy: f64::NAN,
            test_accuracy: acc,
            spectral_radius: if e + 1 == last { final_radius } else { None },
            convergence: Convergence::default(),
            seconds: per_epoch,
        })
        .collect();
    let mut watch = Watch::new(recipe.loss, classes);
    watch.weights(max_abs(&initial_w), 0, 0);
    let outcome = watch
        .weights(max_abs(&net.w), epochs.saturating_sub(1), split.train.len())
        .unwrap_or_else(RunStatus::completed);
    Ok(Trained {
        stop_reached: false,
        outcome,
        net,
        initial_w,
        initial_radius,
        epochs: epochs_rec,
        test_accuracy: run.test_accuracy.last().copied().unwrap_or(0.0),
        test_fire_failures: 0,
        convergence,
    })
}

impl SweepConfig {
    /// Check the configuration; errors name the field (`rates`, `seeds`, …).
    pub fn check(&self) -> Result<()> {
        if self.rates.is_empty() {
            return Err(Invalid::new("rates", " needs at least one learning rate").into());
        }
        if let Some(r) = self
            .rates
            .iter()
            .find(|r| !(r.is_finite() && **r > 0.0 && **r <= 1e6))
        {
            return Err(Invalid::new(
                "rates",
                format!(": {r} is not allowed (every rate must be in (0, 1e6])"),
            )
            .into());
        }
        if self.seeds.is_empty() {
            return Err(Invalid::new("seeds", " needs at least one seed").into());
        }
        at_least_one("epochs", Some(self.epochs))?;
        at_least_one("threads", Some(self.threads))?;
        at_least_one("samples", self.samples)?;
        if let Some(chip) = &self.chip {
            let f = chip.model.formats.learning_rate;
            let (lo, hi) = (f.lsb(), f.to_f64(f.max_raw()));
            if let Some(r) = self.rates.iter().find(|&&r| r < lo || r > hi) {
                return Err(Invalid::new(
                    "rates",
                    format!(
                        ": {r} is outside chip '{}''s learning_rate format ({lo} ..= {hi}); choose rates within it",
                        chip.model.name
                    ),
                )
                .into());
            }
        }
        if self.chip.is_some() && self.protocol != Protocol::EqualEpochs {
            return Err(Invalid::new(
                "protocol",
                format!(
                    " {} runs on the f64 reference only; on a chip only equal-epochs is implemented",
                    self.protocol
                ),
            )
            .into());
        }
        Ok(())
    }

    /// `split` cut to the first [`samples`](Self::samples) rows of each half, made into the
    /// modular task under that protocol ([`protocol::modular_task`]).
    pub fn prepare(&self, split: &Split) -> Split {
        let cut = self.limit(split);
        if self.protocol == Protocol::ModularTask {
            Split {
                train: protocol::modular_task(&cut.train),
                test: protocol::modular_task(&cut.test),
            }
        } else {
            cut
        }
    }

    /// `split` cut to the first [`samples`](Self::samples) rows of each half.
    fn limit(&self, split: &Split) -> Split {
        split.first(self.samples)
    }
}

/// One run of the sweep.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct RunResult {
    /// Index of the rate in [`SweepConfig::rates`].
    pub rate_index: usize,
    /// Learning rate.
    pub rate: f64,
    /// Seed.
    pub seed: u64,
    /// Final test accuracy.
    pub test_accuracy: f64,
    /// Training loss of the last epoch.
    pub final_train_loss: f64,
    /// Structure of the trained `W`.
    pub structure: Structure,
    /// Structure of the learned part `W − W₀`.
    pub learned: Structure,
    /// `Q` of the initial `W₀` (the same for every rate of a seed).
    pub initial_q: f64,
    /// Spectral radius of the credit iteration before training.
    pub initial_radius: Option<f64>,
    /// Largest spectral radius after any epoch.
    pub max_radius: Option<f64>,
    /// Convergence counts over all epochs.
    pub convergence: Convergence,
    /// Firing failures while evaluating the test set after training.
    pub test_fire_failures: usize,
    /// How training ended (`status`: completed or diverged, with where and why).
    pub outcome: RunStatus,
    /// Per-epoch records (the last one partial when a target loss stopped the run inside
    /// it).
    pub epochs: Vec<EpochRecord>,
    /// Training stopped by the protocol's rule (target loss or plateau) before the epoch
    /// cap.
    pub stop_reached: bool,
    /// The trained `W` through every lens, each against its null model.
    pub lenses: Vec<LensResult>,
    /// Under Dale's law: the excitatory/inhibitory blocks of `|W|`.
    pub ei_blocks: Option<EiBlocks>,
    /// Wall time of the run (training and analysis), seconds.
    pub seconds: f64,
}

/// The share of `Σ|w_ij|` in each excitatory/inhibitory block, `[post][pre]` with 0 = E and
/// 1 = I (so `shares[0][1]` is I→E), after training and before, beside the share of the
/// synapses in the block (what evenly spread weights would give).
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct EiBlocks {
    /// After training.
    pub shares: [[f64; 2]; 2],
    /// Before training.
    pub initial: [[f64; 2]; 2],
    /// Share of the existing synapses.
    pub synapses: [[f64; 2]; 2],
}

impl EiBlocks {
    /// The blocks of `w` (and `w0`) for the inhibitory flags `inh`.
    pub fn of(w: &[f64], w0: &[f64], mask: &[bool], n: usize, inh: &[bool]) -> EiBlocks {
        let blocks = |f: &dyn Fn(usize) -> f64| {
            let mut b = [[0.0; 2]; 2];
            let mut total = 0.0;
            for i in 0..n {
                for j in 0..n {
                    let k = i * n + j;
                    if mask[k] {
                        let x = f(k);
                        b[usize::from(inh[i])][usize::from(inh[j])] += x;
                        total += x;
                    }
                }
            }
            if total > 0.0 {
                b.iter_mut().flatten().for_each(|x| *x /= total);
            }
            b
        };
        EiBlocks {
            shares: blocks(&|k| w[k].abs()),
            initial: blocks(&|k| w0[k].abs()),
            synapses: blocks(&|_| 1.0),
        }
    }
}

/// Mean, sample standard deviation, minimum and maximum of a few values.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Stat {
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (0 for one value).
    pub sd: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

impl Stat {
    /// Statistics of `v` (all `NaN` for an empty slice).
    pub fn of(v: &[f64]) -> Stat {
        if v.is_empty() {
            return Stat {
                mean: f64::NAN,
                sd: f64::NAN,
                min: f64::NAN,
                max: f64::NAN,
            };
        }
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let sd = if v.len() > 1 {
            (v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0)).sqrt()
        } else {
            0.0
        };
        Stat {
            mean,
            sd,
            min: v.iter().copied().fold(f64::INFINITY, f64::min),
            max: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }
}

/// The seeds' spread at one learning rate.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RateSummary {
    /// Learning rate.
    pub rate: f64,
    /// Runs (seeds).
    pub runs: usize,
    /// Test accuracy.
    pub accuracy: Stat,
    /// Modularity `Q` of `|W|`.
    pub q: Stat,
    /// Within-community share of `|W|`.
    pub within: Stat,
    /// Its chance level.
    pub within_chance: Stat,
    /// `within − within_chance`.
    pub within_excess: Stat,
    /// Within-group share (fixed input/hidden/output groups).
    pub group_within: Stat,
    /// Its chance level.
    pub group_within_chance: Stat,
    /// `Q` of the learned part `|W − W₀|`.
    pub learned_q: Stat,
    /// Within excess of the learned part.
    pub learned_within_excess: Stat,
    /// Samples whose update was skipped (firing or credit not converged), summed over seeds.
    pub skipped: usize,
    /// Firing failures, summed.
    pub fire_failures: usize,
    /// Credit failures, summed.
    pub credit_failures: usize,
}

/// How the lowest and highest rates compare on one index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Separation {
    /// Every seed at the lowest rate is above every seed at the highest rate.
    LowAbove,
    /// Every seed at the lowest rate is below every seed at the highest rate.
    LowBelow,
    /// The seed ranges overlap.
    Overlap,
}

impl Separation {
    fn of(low: &Stat, high: &Stat) -> Separation {
        if low.min > high.max {
            Separation::LowAbove
        } else if low.max < high.min {
            Separation::LowBelow
        } else {
            Separation::Overlap
        }
    }
}

/// The measured answer to "do low rates give more block-diagonal structure than high ones?".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Low rates are more block-diagonal on both indices, for every seed.
    Reproduces,
    /// Low rates are less block-diagonal on at least one index for every seed, and on
    /// neither index more.
    DoesNotReproduce,
    /// Mixed or overlapping, or too few seeds or rates.
    Inconclusive,
}

impl Outcome {
    /// The words used in the summary.
    pub fn words(self) -> &'static str {
        match self {
            Outcome::Reproduces => "reproduces",
            Outcome::DoesNotReproduce => "does not reproduce",
            Outcome::Inconclusive => "inconclusive",
        }
    }
}

/// The verdict, with the numbers behind it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Verdict {
    /// The outcome by the rule in [`verdict()`].
    pub outcome: Outcome,
    /// Lowest rate.
    pub low_rate: f64,
    /// Highest rate.
    pub high_rate: f64,
    /// Seeds compared.
    pub seeds: Vec<u64>,
    /// `Q` at the lowest rate (over seeds).
    pub q_low: Stat,
    /// `Q` at the highest rate.
    pub q_high: Stat,
    /// Within excess at the lowest rate.
    pub excess_low: Stat,
    /// Within excess at the highest rate.
    pub excess_high: Stat,
    /// Raw within share at the lowest rate.
    pub within_low: Stat,
    /// Raw within share at the highest rate.
    pub within_high: Stat,
    /// Separation of `Q`.
    pub q_separation: Separation,
    /// Separation of the within share.
    pub within_separation: Separation,
    /// Fixed-group within excess at the lowest rate.
    pub group_excess_low: Stat,
    /// Fixed-group within excess at the highest rate.
    pub group_excess_high: Stat,
    /// Spearman rank correlation of `Q` with the learning rate over all runs (`null`:
    /// undefined, with one rate or a constant `Q`).
    pub q_rank_correlation: Option<f64>,
    /// Spearman rank correlation of the within share with the learning rate over all runs
    /// (`null`: undefined).
    pub within_rank_correlation: Option<f64>,
    /// One paragraph saying what was measured.
    pub text: String,
}

/// The whole sweep.
#[derive(Clone, Debug, Serialize)]
pub struct Sweep {
    /// The configuration.
    pub config: SweepConfig,
    /// Input neurons (the dataset's features).
    pub inputs: usize,
    /// Output neurons (the dataset's classes).
    pub outputs: usize,
    /// Training samples per run.
    pub train_samples: usize,
    /// Test samples.
    pub test_samples: usize,
    /// Every run, ordered by (rate index, seed index).
    pub runs: Vec<RunResult>,
    /// Per rate, over seeds.
    pub per_rate: Vec<RateSummary>,
    /// The verdict.
    pub verdict: Verdict,
    /// Wall time of the sweep, seconds.
    pub wall_seconds: f64,
    /// Trained weights of every run, in the order of `runs`.
    #[serde(skip)]
    pub weights: Vec<Vec<f64>>,
}

/// Progress events of a sweep.
#[derive(Debug)]
pub enum Event<'a> {
    /// One training sample done (in any run).
    Sample,
    /// A run finished.
    /// A run finished: its result and trained weights.
    RunDone(&'a RunResult, &'a [f64]),
}

/// Run one (rate, seed) of a sweep.
pub fn run_one(
    cfg: &SweepConfig,
    split: &Split,
    rate_index: usize,
    seed: u64,
    progress: &(dyn Fn(Event<'_>) + Sync),
) -> Result<(RunResult, Vec<f64>)> {
    let start = Instant::now();
    let rate = cfg.rates[rate_index];
    let t = match &cfg.chip {
        None => train_all_to_all(&cfg.recipe, split, rate, cfg.epochs, seed, &|| {
            progress(Event::Sample)
        })?,
        Some(chip) => train_all_to_all_on_chip(&cfg.recipe, chip, split, rate, cfg.epochs, seed)?,
    };
    let net = &t.net;
    // Louvain seeds from (seed, rate index): every run's analysis is independent.
    let lseed = seed.wrapping_mul(1_000_003).wrapping_add(rate_index as u64);
    let restarts = cfg.louvain_restarts;
    let structure = analyse(
        &net.w, &net.mask, net.n, net.n_in, net.n_out, lseed, restarts,
    )?;
    let dw: Vec<f64> = net.w.iter().zip(&t.initial_w).map(|(a, b)| a - b).collect();
    let learned = analyse(&dw, &net.mask, net.n, net.n_in, net.n_out, lseed, restarts)?;
    let initial = analyse(
        &t.initial_w,
        &net.mask,
        net.n,
        net.n_in,
        net.n_out,
        seed,
        restarts,
    )?;
    let lenses = analyse_lenses(&net.w, &t.initial_w, &lens_setup(cfg, net), lseed)?;
    let inh = protocol::inhibitory(net.n, cfg.recipe.inhibitory);
    let ei_blocks =
        (!inh.is_empty()).then(|| EiBlocks::of(&net.w, &t.initial_w, &net.mask, net.n, &inh));
    let max_radius = t
        .epochs
        .iter()
        .filter_map(|e| e.spectral_radius)
        .fold(None, |m: Option<f64>, r| Some(m.map_or(r, |m| m.max(r))));
    let result = RunResult {
        rate_index,
        rate,
        seed,
        test_accuracy: t.test_accuracy,
        final_train_loss: t.epochs.last().map_or(f64::NAN, |e| e.train_loss),
        structure,
        learned,
        initial_q: initial.q,
        initial_radius: t.initial_radius,
        max_radius,
        convergence: t.convergence.clone(),
        test_fire_failures: t.test_fire_failures,
        outcome: t.outcome.clone(),
        epochs: t.epochs.clone(),
        stop_reached: t.stop_reached,
        lenses,
        ei_blocks,
        seconds: start.elapsed().as_secs_f64(),
    };
    progress(Event::RunDone(&result, &t.net.w));
    Ok((result, t.net.w))
}

/// What the lenses of a run of `cfg` on `net` need.
fn lens_setup(cfg: &SweepConfig, net: &GeneralNet) -> LensSetup {
    LensSetup {
        n: net.n,
        n_in: net.n_in,
        n_out: net.n_out,
        mask: net.mask.clone(),
        restarts: cfg.louvain_restarts,
        nulls: cfg.nulls,
        truth: if cfg.protocol == Protocol::ModularTask {
            protocol::truth_modules(net.n, net.n_in, net.n_out)
        } else {
            Vec::new()
        },
    }
}

/// See finished runs through the lenses again (after a change of the lenses or their null
/// model): each run's initial weights are rebuilt from its seed, its trained weights are the
/// saved ones, and the lens analysis is the one [`run_one`] does (same seeds). Everything
/// else a run recorded is kept. The runs are spread over `cfg.threads` threads; the result
/// does not depend on their number.
///
/// # Errors
/// A run whose weights do not fit the configuration's network; a non-finite weight.
pub fn reanalyse(cfg: &SweepConfig, split: &Split, done: Vec<DoneRun>) -> Result<Vec<DoneRun>> {
    let split = &cfg.prepare(split);
    let (dim, classes) = (split.train.dim, split.train.n_classes);
    crate::parallel::try_map(cfg.threads, done.len(), &|k| {
        let (run, w) = &done[k];
        let mut net = cfg.recipe.init_net(dim, classes, run.seed);
        if w.len() != net.w.len() {
            return Err(ModularityError::SavedRun(format!(
                "a saved run (rate {}, seed {}) has {} weights, the network {}",
                run.rate,
                run.seed,
                w.len(),
                net.w.len()
            )));
        }
        let initial = std::mem::replace(&mut net.w, w.clone());
        let lseed = run
            .seed
            .wrapping_mul(1_000_003)
            .wrapping_add(run.rate_index as u64);
        let mut run = run.clone();
        run.lenses = analyse_lenses(w, &initial, &lens_setup(cfg, &net), lseed)?;
        Ok((run, w.clone()))
    })
}

/// Run the sweep on `split` (cut to [`SweepConfig::samples`]), the runs spread over
/// `cfg.threads` threads. Every run is seeded by its own (seed, rate index), so the result
/// does not depend on the thread count.
pub fn run_sweep(
    cfg: &SweepConfig,
    split: &Split,
    progress: &(dyn Fn(Event<'_>) + Sync),
) -> Result<Sweep> {
    run_sweep_from(cfg, split, progress, Vec::new())
}

/// A finished run and its trained weights.
pub type DoneRun = (RunResult, Vec<f64>);

/// [`run_sweep`] that takes runs already done (an interrupted sweep's, with their trained
/// weights) instead of running them again: the result equals an uninterrupted sweep's.
///
/// # Errors
/// As [`run_sweep`]; a done run that is not part of this sweep.
pub fn run_sweep_from(
    cfg: &SweepConfig,
    split: &Split,
    progress: &(dyn Fn(Event<'_>) + Sync),
    done: Vec<DoneRun>,
) -> Result<Sweep> {
    cfg.check()?;
    let split = &cfg.prepare(split);
    cfg.recipe.check(split.train.dim, split.train.n_classes)?;
    let start = Instant::now();
    let jobs: Vec<(usize, u64)> = (0..cfg.rates.len())
        .flat_map(|r| cfg.seeds.iter().map(move |&s| (r, s)))
        .collect();
    type Slot = Option<Result<(RunResult, Vec<f64>)>>;
    let mut prefilled: Vec<Slot> = (0..jobs.len()).map(|_| None).collect();
    for (run, w) in done {
        let k = jobs
            .iter()
            .position(|&(r, s)| r == run.rate_index && s == run.seed && cfg.rates[r] == run.rate)
            .ok_or_else(|| {
                ModularityError::SavedRun(format!(
                    "a saved run (rate {}, seed {}) is not part of this sweep",
                    run.rate, run.seed
                ))
            })?;
        prefilled[k] = Some(Ok((run, w)));
    }
    let todo: Vec<usize> = (0..jobs.len())
        .filter(|&k| prefilled[k].is_none())
        .collect();
    let fresh = crate::parallel::try_map(cfg.threads, todo.len(), &|i| {
        let (r, s) = jobs[todo[i]];
        run_one(cfg, split, r, s, progress)
    })?;
    for (&k, run) in todo.iter().zip(fresh) {
        prefilled[k] = Some(Ok(run));
    }
    let mut runs = Vec::with_capacity(jobs.len());
    let mut weights = Vec::with_capacity(jobs.len());
    for slot in prefilled {
        match slot {
            Some(Ok((r, w))) => {
                runs.push(r);
                weights.push(w);
            }
            Some(Err(e)) => return Err(e),
            None => unreachable!("every job of the sweep was run or given"),
        }
    }
    let per_rate = summarise(cfg, &runs);
    let verdict = verdict(cfg, &runs, &per_rate);
    Ok(Sweep {
        config: cfg.clone(),
        inputs: split.train.dim,
        outputs: split.train.n_classes,
        train_samples: split.train.len(),
        test_samples: split.test.len(),
        runs,
        per_rate,
        verdict,
        wall_seconds: start.elapsed().as_secs_f64(),
        weights,
    })
}

/// Per-rate statistics over seeds.
pub fn summarise(cfg: &SweepConfig, runs: &[RunResult]) -> Vec<RateSummary> {
    (0..cfg.rates.len())
        .map(|k| {
            let rs: Vec<&RunResult> = runs.iter().filter(|r| r.rate_index == k).collect();
            let st = |f: &dyn Fn(&RunResult) -> f64| {
                Stat::of(&rs.iter().map(|r| f(r)).collect::<Vec<_>>())
            };
            RateSummary {
                rate: cfg.rates[k],
                runs: rs.len(),
                accuracy: st(&|r| r.test_accuracy),
                q: st(&|r| r.structure.q),
                within: st(&|r| r.structure.within),
                within_chance: st(&|r| r.structure.within_chance),
                within_excess: st(&|r| r.structure.within_excess()),
                group_within: st(&|r| r.structure.group_within),
                group_within_chance: st(&|r| r.structure.group_within_chance),
                learned_q: st(&|r| r.learned.q),
                learned_within_excess: st(&|r| r.learned.within_excess()),
                skipped: rs.iter().map(|r| r.convergence.updates_skipped).sum(),
                fire_failures: rs.iter().map(|r| r.convergence.fire_failures()).sum(),
                credit_failures: rs.iter().map(|r| r.convergence.credit_failures()).sum(),
            }
        })
        .collect()
}

/// Spearman rank correlation (average ranks for ties); `None` (undefined) when either side is
/// constant — one rate, or a measure that does not vary.
pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    fn ranks(v: &[f64]) -> Vec<f64> {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
        let mut r = vec![0.0; v.len()];
        let mut i = 0;
        while i < idx.len() {
            let mut j = i;
            while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
                j += 1;
            }
            let avg = (i + j) as f64 / 2.0;
            for &k in &idx[i..=j] {
                r[k] = avg;
            }
            i = j + 1;
        }
        r
    }
    let (rx, ry) = (ranks(x), ranks(y));
    let n = x.len() as f64;
    let (mx, my) = (rx.iter().sum::<f64>() / n, ry.iter().sum::<f64>() / n);
    let cov: f64 = rx.iter().zip(&ry).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = rx.iter().map(|a| (a - mx) * (a - mx)).sum();
    let vy: f64 = ry.iter().map(|b| (b - my) * (b - my)).sum();
    (vx > 0.0 && vy > 0.0).then(|| cov / (vx * vy).sqrt())
}

/// The verdict rule. "Block-diagonal" is measured by two indices on `|W|`: Newman's `Q` of
/// the detected communities, and the share of `Σ|w_ij|` inside them (the within share).
/// Compare the seeds at the lowest rate with those at the highest:
///
/// * **reproduces** — on both indices every low-rate seed lies above every high-rate seed;
/// * **does not reproduce** — on at least one index every low-rate seed lies *below* every
///   high-rate seed, and on neither index above;
/// * **inconclusive** — anything else (overlapping seed ranges, mixed directions), or fewer
///   than 2 seeds or 2 rates.
///
/// With 3 seeds, complete separation in a given direction happens by chance with
/// probability 1/20 per index when rates make no difference. The raw within share also
/// grows when fewer, larger communities are found; its chance level (weights spread evenly
/// over the synapses) and the excess over it are reported beside it, as are the shares by
/// the fixed input/hidden/output groups.
pub fn verdict(cfg: &SweepConfig, runs: &[RunResult], per_rate: &[RateSummary]) -> Verdict {
    let (lo, hi) = (0, per_rate.len().saturating_sub(1));
    let pick = |k: usize, f: &dyn Fn(&RunResult) -> f64| {
        Stat::of(
            &runs
                .iter()
                .filter(|r| r.rate_index == k)
                .map(f)
                .collect::<Vec<_>>(),
        )
    };
    let q_low = pick(lo, &|r| r.structure.q);
    let q_high = pick(hi, &|r| r.structure.q);
    let excess_low = pick(lo, &|r| r.structure.within_excess());
    let excess_high = pick(hi, &|r| r.structure.within_excess());
    let within_low = pick(lo, &|r| r.structure.within);
    let within_high = pick(hi, &|r| r.structure.within);
    let group_excess_low = pick(lo, &|r| r.structure.group_within_excess());
    let group_excess_high = pick(hi, &|r| r.structure.group_within_excess());
    let q_separation = Separation::of(&q_low, &q_high);
    let within_separation = Separation::of(&within_low, &within_high);
    let enough = cfg.seeds.len() >= 2 && cfg.rates.len() >= 2;
    let seps = [q_separation, within_separation];
    let outcome = if !enough {
        Outcome::Inconclusive
    } else if seps.iter().all(|s| *s == Separation::LowAbove) {
        Outcome::Reproduces
    } else if seps.contains(&Separation::LowBelow) && !seps.contains(&Separation::LowAbove) {
        Outcome::DoesNotReproduce
    } else {
        Outcome::Inconclusive
    };
    let lr: Vec<f64> = runs.iter().map(|r| r.rate).collect();
    let q_rank_correlation = spearman(&lr, &runs.iter().map(|r| r.structure.q).collect::<Vec<_>>());
    let within_rank_correlation = spearman(
        &lr,
        &runs.iter().map(|r| r.structure.within).collect::<Vec<_>>(),
    );
    let (low_rate, high_rate) = (cfg.rates[lo], cfg.rates[hi]);
    let sep_words = |s: Separation| match s {
        Separation::LowAbove => "every low-rate seed above every high-rate seed",
        Separation::LowBelow => "every low-rate seed below every high-rate seed",
        Separation::Overlap => "seed ranges overlap",
    };
    let ms = |s: &Stat| format!("{:.4} ± {:.4}", s.mean, s.sd);
    let rho = |r: Option<f64>| {
        r.map_or_else(
            || "undefined (one rate, or no variation)".to_string(),
            |r| format!("{r:+.2}"),
        )
    };
    let mut text = format!(
        "Lowest rate {low_rate} vs highest rate {high_rate} over {} seed(s) (mean ± sd): \
         Q {} vs {} ({}); within share {} vs {} ({}). \
         Spearman correlation with the rate over all runs: Q {}, within share {}. \
         Within share minus its chance level (weights spread evenly): {} vs {}. \
         Fixed input/hidden/output groups, within share minus chance: {} vs {}.",
        cfg.seeds.len(),
        ms(&q_low),
        ms(&q_high),
        sep_words(q_separation),
        ms(&within_low),
        ms(&within_high),
        sep_words(within_separation),
        rho(q_rank_correlation),
        rho(within_rank_correlation),
        ms(&excess_low),
        ms(&excess_high),
        ms(&group_excess_low),
        ms(&group_excess_high),
    );
    if !enough {
        text.push_str(" Fewer than 2 seeds or 2 rates: no verdict is possible.");
    }
    Verdict {
        outcome,
        low_rate,
        high_rate,
        seeds: cfg.seeds.clone(),
        q_low,
        q_high,
        excess_low,
        excess_high,
        within_low,
        within_high,
        q_separation,
        within_separation,
        group_excess_low,
        group_excess_high,
        q_rank_correlation,
        within_rank_correlation,
        text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Dataset;

    fn structure(q: f64, within: f64) -> Structure {
        Structure {
            q,
            communities: 2,
            community_sizes: vec![2, 2],
            within,
            within_chance: 0.3,
            group_within: 0.5,
            group_within_chance: 0.5,
            group_blocks: [[0.0; 3]; 3],
            labels: vec![],
        }
    }

    fn run(rate_index: usize, rate: f64, seed: u64, q: f64, within: f64) -> RunResult {
        RunResult {
            rate_index,
            rate,
            seed,
            test_accuracy: 0.9,
            final_train_loss: 0.1,
            structure: structure(q, within),
            learned: structure(q, within),
            initial_q: 0.0,
            initial_radius: None,
            max_radius: None,
            convergence: Convergence::default(),
            test_fire_failures: 0,
            outcome: RunStatus::completed(),
            epochs: vec![],
            stop_reached: false,
            lenses: vec![],
            ei_blocks: None,
            seconds: 0.0,
        }
    }

    fn cfg(seeds: usize) -> SweepConfig {
        SweepConfig {
            recipe: Recipe::default(),
            data: "digits".into(),
            rates: vec![0.01, 1.0],
            seeds: (1..=seeds as u64).collect(),
            epochs: 1,
            samples: None,
            threads: 1,
            louvain_restarts: 1,
            chip: None,
            protocol: Protocol::EqualEpochs,
            nulls: 0,
        }
    }

    /// (low-rate Q, within) and (high-rate Q, within) per seed → outcome.
    fn outcome(low: &[(f64, f64)], high: &[(f64, f64)]) -> Outcome {
        let c = cfg(low.len());
        let mut runs = Vec::new();
        for (k, (&(ql, wl), &(qh, wh))) in low.iter().zip(high).enumerate() {
            runs.push(run(0, 0.01, k as u64 + 1, ql, wl));
            runs.push(run(1, 1.0, k as u64 + 1, qh, wh));
        }
        let per = summarise(&c, &runs);
        verdict(&c, &runs, &per).outcome
    }

    #[test]
    fn verdict_rule() {
        let lo = [(0.30, 0.8), (0.31, 0.82), (0.29, 0.79)];
        let hi = [(0.10, 0.5), (0.12, 0.52), (0.11, 0.49)];
        assert_eq!(outcome(&lo, &hi), Outcome::Reproduces);
        assert_eq!(outcome(&hi, &lo), Outcome::DoesNotReproduce);
        // Q separated the paper's way, within share the other way: mixed.
        let mixed = [(0.10, 0.9), (0.12, 0.92), (0.11, 0.91)];
        assert_eq!(outcome(&lo, &mixed), Outcome::Inconclusive);
        // Overlapping seeds on both.
        let over = [(0.30, 0.8), (0.10, 0.5), (0.2, 0.6)];
        assert_eq!(outcome(&over, &hi), Outcome::Inconclusive);
        // One index opposite, the other overlapping: does not reproduce.
        let q_up = [(0.40, 0.8), (0.41, 0.5), (0.42, 0.6)];
        assert_eq!(outcome(&over, &q_up), Outcome::DoesNotReproduce);
        // One seed: never a verdict.
        assert_eq!(outcome(&lo[..1], &hi[..1]), Outcome::Inconclusive);
    }

    #[test]
    fn stats_and_rank_correlation() {
        let s = Stat::of(&[1.0, 2.0, 3.0]);
        assert_eq!((s.mean, s.sd, s.min, s.max), (2.0, 1.0, 1.0, 3.0));
        assert_eq!(Stat::of(&[5.0]).sd, 0.0);
        assert!(Stat::of(&[]).mean.is_nan());
        assert!((spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 15.0]).unwrap() - 0.5).abs() < 1e-12);
        assert!((spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]).unwrap() + 1.0).abs() < 1e-12);
        assert_eq!(spearman(&[1.0, 1.0], &[1.0, 2.0]), None);
    }

    /// Three planted groups of 4 neurons, strong inside, weak across: the analysis finds them,
    /// and the chance level counts existing synapses only.
    #[test]
    fn analyse_finds_planted_blocks() {
        let n = 12;
        let mut w = vec![0.0; n * n];
        let mask: Vec<bool> = (0..n * n).map(|k| k / n != k % n).collect();
        for i in 0..n {
            for j in 0..n {
                if i != j {
                    w[i * n + j] = if i / 4 == j / 4 { -1.0 } else { 0.01 };
                }
            }
        }
        let s = analyse(&w, &mask, n, 2, 2, 1, 3).unwrap();
        assert_eq!(s.communities, 3);
        assert_eq!(s.community_sizes, vec![4, 4, 4]);
        assert!(s.within > 0.95, "{}", s.within);
        // 3 blocks of 4: 3·4·3 = 36 of the 132 ordered pairs are inside.
        assert!((s.within_chance - 36.0 / 132.0).abs() < 1e-12);
        assert!(s.q > 0.6, "{}", s.q);
        let g = group_labels(12, 2, 2);
        assert_eq!(&g[..3], &[0, 0, 1]);
        assert_eq!(g[11], 2);
        let total: f64 = s.group_blocks.iter().flatten().sum();
        assert!((total - 1.0).abs() < 1e-12);
    }

    fn tiny_split() -> Split {
        // 4 inputs, 2 classes: the class is which half of the inputs is bright.
        let mut f = Vec::new();
        let mut l = Vec::new();
        for k in 0..12 {
            let c = k % 2;
            for j in 0..4 {
                f.push(if (j < 2) == (c == 0) { 0.9 } else { 0.1 });
            }
            l.push(c);
        }
        let ds = Dataset::new("tiny", f, l, 4, 2).unwrap();
        Split {
            train: ds.clone(),
            test: ds,
        }
    }

    /// Firing or credit that does not converge skips the update and is counted.
    #[test]
    fn non_convergence_skips_and_counts() {
        let split = tiny_split();
        let base = Recipe {
            n: 10,
            radius_samples: 1,
            ..Recipe::default()
        };
        let ok = train_all_to_all(&base, &split, 0.5, 2, 3, &|| {}).unwrap();
        assert_eq!(ok.convergence.samples, 24);
        assert_eq!(ok.convergence.updates_applied, 24);
        assert!(ok.initial_radius.is_some_and(|r| r > 0.0 && r < 1.0));
        assert!(ok.net.w != ok.initial_w);
        // Firing capped after one iteration: nothing may change.
        let capped = Recipe {
            fire_max_iter: 1,
            ..base.clone()
        };
        let t = train_all_to_all(&capped, &split, 0.5, 1, 3, &|| {}).unwrap();
        assert_eq!(t.convergence.fire_capped, 12);
        assert_eq!(t.convergence.updates_skipped, 12);
        assert_eq!(
            t.convergence.credit_converged + t.convergence.credit_capped,
            0
        );
        assert_eq!(t.net.w, t.initial_w);
        // Credit capped after one step with a tolerance it cannot reach.
        let credit_capped = Recipe {
            credit_max_steps: 1,
            credit_tol: 1e-300,
            ..base.clone()
        };
        let t = train_all_to_all(&credit_capped, &split, 0.5, 1, 3, &|| {}).unwrap();
        assert_eq!(t.convergence.credit_capped, 12);
        assert_eq!(t.convergence.updates_skipped, 12);
        assert_eq!(t.net.w, t.initial_w);
        assert!(t.epochs[0].train_loss.is_finite());
    }

    /// The protocols' training changes do what [`protocol`] documents.
    #[test]
    fn protocols_change_training_as_documented() {
        let split = tiny_split();
        let base = Recipe {
            n: 10,
            radius_samples: 0,
            ..Recipe::default()
        };
        // A target loss every sample meets stops the run after the first quarter epoch.
        let easy = Recipe {
            stop: Stop::TargetLoss { loss: 10.0 },
            ..base.clone()
        };
        let t = train_all_to_all(&easy, &split, 0.5, 5, 3, &|| {}).unwrap();
        assert!(t.stop_reached);
        assert_eq!(t.convergence.samples, 3, "12 samples: quarters of 3");
        assert_eq!(t.epochs.len(), 1);
        // An unreachable target runs to the cap.
        let hard = Recipe {
            stop: Stop::TargetLoss { loss: 1e-12 },
            ..base.clone()
        };
        let t = train_all_to_all(&hard, &split, 0.5, 2, 3, &|| {}).unwrap();
        assert!(!t.stop_reached);
        assert_eq!(t.convergence.samples, 24);
        // A plateau rule no progress can satisfy stops after patience + 1 epochs.
        let plateau = Recipe {
            stop: Stop::Plateau {
                relative: 1.0,
                patience: 1,
            },
            ..base.clone()
        };
        let t = train_all_to_all(&plateau, &split, 0.5, 5, 3, &|| {}).unwrap();
        assert!(t.stop_reached);
        assert_eq!(t.epochs.len(), 2);
        // Dale's law: every weight keeps its presynaptic sign through training.
        let dale = Recipe {
            inhibitory: 0.2,
            ..base.clone()
        };
        let t = train_all_to_all(&dale, &split, 1.0, 3, 3, &|| {}).unwrap();
        let inh = protocol::inhibitory(10, 0.2);
        assert_eq!(inh.iter().filter(|&&x| x).count(), 2);
        for (k, &x) in t.net.w.iter().enumerate() {
            let ok = if inh[k % 10] { x <= 0.0 } else { x >= 0.0 };
            assert!(ok, "w[{}][{}] = {x}", k / 10, k % 10);
        }
        assert!(t.net.w != t.initial_w);
        // Weight decay: the same run ends with smaller weights.
        let plain = train_all_to_all(&base, &split, 0.5, 3, 3, &|| {}).unwrap();
        let decay = Recipe {
            weight_decay: 0.5,
            ..base.clone()
        };
        let decayed = train_all_to_all(&decay, &split, 0.5, 3, 3, &|| {}).unwrap();
        let norm = |w: &[f64]| w.iter().map(|x| x * x).sum::<f64>();
        assert!(norm(&decayed.net.w) < norm(&plain.net.w));
        assert_eq!(plain.convergence.sign_clipped, 0);
    }

    #[test]
    fn bad_configuration_is_named() {
        let split = tiny_split();
        let r = Recipe {
            n: 6,
            ..Recipe::default()
        };
        let e = train_all_to_all(&r, &split, 0.1, 1, 1, &|| {}).unwrap_err();
        assert!(e.to_string().starts_with("n 6 is too small"), "{e}");
        let r = Recipe {
            n: 10,
            ..Recipe::default()
        };
        let e = train_all_to_all(&r, &split, -1.0, 1, 1, &|| {}).unwrap_err();
        assert!(e.to_string().starts_with("lr -1 is not allowed"), "{e}");
        let mut c = cfg(1);
        c.rates = vec![0.1, 0.0];
        assert!(c.check().unwrap_err().to_string().starts_with("rates"));
        let mut c = cfg(1);
        c.seeds.clear();
        assert!(c.check().unwrap_err().to_string().starts_with("seeds"));
    }
}
