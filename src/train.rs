//! Training loops: the balance rule (or the backprop oracle) on a dataset, with per-epoch loss
//! and accuracy.
//!
//! Reproducibility: the initial weights come from [`LayeredNet::glorot`] seeded by `seed`, the
//! sample order of epoch `e` from a portable `Xoshiro256PlusPlus` seeded by `seed + 1 + e`. The
//! same configuration gives bit-identical weights and reports on every run; `--rule balance`
//! and `--rule backprop` see the same initial weights and the same order.

use crate::backprop::Mlp;
use crate::checkpoint::{Checkpoint, Position, Row};
use crate::data::{Dataset, Split};
use crate::rule::{Activation, LayeredNet, LayeredState, Loss, Steps, Updates, argmax};
use bitvec::prelude::{BitVec, Lsb0};
use rand::RngExt;
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use serde::Serialize;
use std::ops::ControlFlow;
use std::time::Instant;

/// Which learning rule trains the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleKind {
    /// The E-I balance rule (retrograde credit through the same synapses).
    Balance,
    /// The backprop oracle (transposed weights), for comparison.
    Backprop,
}

/// A training run's configuration.
#[derive(Clone, Debug, Serialize)]
pub struct TrainConfig {
    /// Dataset name or path, as given.
    pub data: String,
    /// Hidden layer widths.
    pub hidden: Vec<usize>,
    /// Hidden activation.
    pub activation: Activation,
    /// Loss. Cross-entropy uses linear (identity) outputs; MSE uses the hidden activation.
    pub loss: Loss,
    /// Learning rate `η`.
    pub lr: f64,
    /// Epochs.
    pub epochs: usize,
    /// Samples per weight update (1 = per-sample plasticity).
    pub batch: usize,
    /// Seed for weights and sample order.
    pub seed: u64,
    /// Learning rule.
    pub rule: RuleKind,
    /// Retrograde steps per sample; `None` = until settled.
    pub steps: Option<usize>,
}

impl TrainConfig {
    /// Output activation implied by the loss.
    pub fn output_activation(&self) -> Activation {
        match self.loss {
            Loss::CrossEntropy => Activation::Identity,
            Loss::Mse => self.activation,
        }
    }

    /// Neuron-layer sizes for a dataset of `dim` features and `classes` classes.
    pub fn sizes(&self, dim: usize, classes: usize) -> Vec<usize> {
        let mut s = vec![dim];
        s.extend(&self.hidden);
        s.push(classes);
        s
    }

    /// The initial network.
    pub fn init_net(&self, dim: usize, classes: usize) -> LayeredNet {
        let sizes = self.sizes(dim, classes);
        let mut acts = vec![self.activation; sizes.len() - 2];
        acts.push(self.output_activation());
        LayeredNet::glorot(&sizes, &acts, self.seed)
    }
}

/// Statistics of one epoch.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct EpochStats {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean loss over the epoch's samples, measured before each sample's update.
    pub train_loss: f64,
    /// Accuracy on the training split after the epoch.
    pub train_accuracy: f64,
    /// Mean loss on the test split after the epoch.
    pub test_loss: f64,
    /// Accuracy on the test split after the epoch.
    pub test_accuracy: f64,
    /// Wall time of the epoch's training pass (excluding evaluation), seconds.
    pub seconds: f64,
    /// Retrograde steps per sample in this epoch (mean).
    pub mean_retro_steps: f64,
}

impl EpochStats {
    /// The row as a checkpoint keeps it.
    pub fn figures(&self) -> Row {
        (
            self.epoch,
            [
                self.train_loss,
                self.train_accuracy,
                self.test_loss,
                self.test_accuracy,
                self.seconds,
                self.mean_retro_steps,
            ],
        )
    }

    /// The row [`EpochStats::figures`] gave.
    pub fn from_figures(epoch: usize, v: [f64; 6]) -> Self {
        EpochStats {
            epoch,
            train_loss: v[0],
            train_accuracy: v[1],
            test_loss: v[2],
            test_accuracy: v[3],
            seconds: v[4],
            mean_retro_steps: v[5],
        }
    }
}

/// The result of a training run.
#[derive(Clone, Debug, Serialize)]
pub struct TrainReport {
    /// The configuration.
    pub config: TrainConfig,
    /// Network sizes, input first.
    pub sizes: Vec<usize>,
    /// Parameter count.
    pub params: usize,
    /// Training and test samples.
    pub train_samples: usize,
    /// Test samples.
    pub test_samples: usize,
    /// Per-epoch statistics.
    pub epochs: Vec<EpochStats>,
    /// Final test accuracy.
    pub test_accuracy: f64,
    /// Final training accuracy.
    pub train_accuracy: f64,
    /// Retrograde steps per sample in the last epoch (mean).
    pub mean_retro_steps: f64,
    /// How the run ended (`status`: completed, diverged or interrupted; where it stopped).
    #[serde(flatten)]
    pub outcome: RunStatus,
}

/// Per-sample progress callback (`samples done in this epoch`, `epoch`), called between
/// samples; [`ControlFlow::Break`] stops the run there (status [`Status::Interrupted`]).
pub type Progress<'a> = &'a mut dyn FnMut(usize, usize) -> ControlFlow<()>;

/// How a training run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Every epoch ran and the loss stayed finite and bounded.
    Completed,
    /// The loss became non-finite or exploded ([`Watch`]); training stopped at that sample.
    Diverged,
    /// Stopped between samples on request (SIGINT on the command line).
    Interrupted,
}

/// How a run ended and, when it ended early, where and why.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct RunStatus {
    /// The outcome.
    pub status: Status,
    /// 1-based epoch it stopped in (early endings only).
    pub stopped_at_epoch: Option<usize>,
    /// 1-based sample of that epoch at which it stopped (early endings only).
    pub stopped_at_sample: Option<usize>,
    /// What was seen.
    pub reason: Option<String>,
}

impl RunStatus {
    /// A run that went to the end.
    pub fn completed() -> Self {
        RunStatus {
            status: Status::Completed,
            stopped_at_epoch: None,
            stopped_at_sample: None,
            reason: None,
        }
    }

    /// A run stopped on request after sample `k` (0-based) of epoch `e` (0-based).
    pub fn interrupted(e: usize, k: usize) -> Self {
        RunStatus {
            status: Status::Interrupted,
            stopped_at_epoch: Some(e + 1),
            stopped_at_sample: Some(k + 1),
            reason: Some("stopped on request between samples".into()),
        }
    }

    /// One line for the terminal: `diverged in epoch 1 at sample 37: …`.
    pub fn describe(&self) -> String {
        let status = match self.status {
            Status::Completed => return "completed".into(),
            Status::Diverged => "diverged",
            Status::Interrupted => "interrupted",
        };
        format!(
            "{status} in epoch {} at sample {}: {}",
            self.stopped_at_epoch.unwrap_or(0),
            self.stopped_at_sample.unwrap_or(0),
            self.reason.as_deref().unwrap_or("")
        )
    }
}

/// The running mean of an epoch's sample losses that counts as an explosion, in multiples of
/// the chance loss (the loss of all-zero outputs: `ln K` for cross-entropy).
pub const DIVERGENCE_FACTOR: f64 = 100.0;

/// Samples of an epoch seen before its running mean is judged (a non-finite loss is judged at
/// once).
pub const DIVERGENCE_MIN_SAMPLES: usize = 16;

/// The divergence watch shared by the reference and the chips (ARCHITECTURE.md §12): a sample
/// loss that is not finite, or an epoch whose running mean loss (after
/// [`DIVERGENCE_MIN_SAMPLES`] samples) exceeds [`DIVERGENCE_FACTOR`] × the chance loss, ends
/// the run as [`Status::Diverged`] at that sample.
///
/// A bounded loss (MSE on sigmoid outputs) cannot explode, so [`Watch::weights`] also judges
/// the weights at the end of every epoch: non-finite, or a largest magnitude over
/// [`WEIGHT_GROWTH`] × max(the initial one, 1), is divergence too.
#[derive(Clone, Debug, PartialEq)]
pub struct Watch {
    chance: f64,
    sum: f64,
    seen: usize,
    initial_w: Option<f64>,
}

/// Growth of the largest weight magnitude over its initial value that counts as divergence.
pub const WEIGHT_GROWTH: f64 = 1e4;

/// The largest magnitude in `w` (`NaN` if any value is not finite).
pub fn max_abs<'a>(w: impl IntoIterator<Item = &'a f64>) -> f64 {
    w.into_iter().fold(0.0f64, |m, &x| {
        if x.is_finite() && m.is_finite() {
            m.max(x.abs())
        } else {
            f64::NAN
        }
    })
}

/// The largest weight magnitude of a layered net ([`max_abs`]: NaN if any is not finite).
fn largest_weight(net: &LayeredNet) -> f64 {
    max_abs(net.layers.iter().flat_map(|l| l.w.iter()))
}

impl Watch {
    /// A watch for `loss` over `classes` outputs.
    pub fn new(loss: Loss, classes: usize) -> Self {
        let zeros = vec![0.0; classes.max(1)];
        Watch {
            chance: loss.value(&zeros, 0).max(1e-3),
            sum: 0.0,
            seen: 0,
            initial_w: None,
        }
    }

    /// Judge the weights after epoch `e` (0-based) of `n` samples by their largest magnitude;
    /// the first call sets the scale (call it once before training).
    pub fn weights(&mut self, max_abs: f64, e: usize, n: usize) -> Option<RunStatus> {
        let Some(w0) = self.initial_w else {
            // At least 1: nets that start from tiny or zero weights may grow to order one.
            self.initial_w = Some(max_abs.max(1.0));
            return None;
        };
        let reason = if !max_abs.is_finite() {
            "a weight is not finite".to_string()
        } else if max_abs > WEIGHT_GROWTH * w0 {
            format!(
                "the largest weight magnitude is {max_abs:.4e}, over {WEIGHT_GROWTH:e} × {w0:.4} (its initial value, at least 1; lower the learning rate)"
            )
        } else {
            return None;
        };
        Some(RunStatus {
            status: Status::Diverged,
            stopped_at_epoch: Some(e + 1),
            stopped_at_sample: Some(n),
            reason: Some(reason),
        })
    }

    /// The watch as words (for checkpoints): chance loss, the epoch's sum (bits), samples seen,
    /// initial weight scale (bits; `u64::MAX` before it is set).
    pub fn to_words(&self) -> [u64; 4] {
        [
            self.chance.to_bits(),
            self.sum.to_bits(),
            self.seen as u64,
            self.initial_w.map_or(u64::MAX, f64::to_bits),
        ]
    }

    /// The watch [`Watch::to_words`] wrote.
    pub fn from_words(w: [u64; 4]) -> Self {
        Watch {
            chance: f64::from_bits(w[0]),
            sum: f64::from_bits(w[1]),
            seen: usize::try_from(w[2]).unwrap_or(usize::MAX),
            initial_w: (w[3] != u64::MAX).then(|| f64::from_bits(w[3])),
        }
    }

    /// Begin an epoch.
    pub fn start_epoch(&mut self) {
        self.sum = 0.0;
        self.seen = 0;
    }

    /// Judge sample `k` (0-based) of epoch `e` (0-based) with loss `loss`.
    pub fn sample(&mut self, loss: f64, e: usize, k: usize) -> Option<RunStatus> {
        self.sum += loss;
        self.seen += 1;
        let mean = self.sum / self.seen as f64;
        let reason = if !loss.is_finite() {
            format!("the sample's loss is {loss} (lower the learning rate)")
        } else if !mean.is_finite() {
            format!("the epoch's summed loss overflowed ({mean})")
        } else if self.seen >= DIVERGENCE_MIN_SAMPLES && mean > DIVERGENCE_FACTOR * self.chance {
            format!(
                "the epoch's mean loss over {} samples is {mean:.4e}, over {DIVERGENCE_FACTOR} × the chance loss {:.4} (lower the learning rate)",
                self.seen, self.chance
            )
        } else {
            return None;
        };
        Some(RunStatus {
            status: Status::Diverged,
            stopped_at_epoch: Some(e + 1),
            stopped_at_sample: Some(k + 1),
            reason: Some(reason),
        })
    }
}

/// Loss and accuracy of `net` on `data`.
pub fn evaluate(net: &LayeredNet, data: &Dataset, loss: Loss) -> (f64, f64) {
    let mut s = net.new_state();
    let mut total = 0.0;
    let mut correct = 0usize;
    for k in 0..data.len() {
        net.fire(data.row(k), &mut s);
        let out = net.output(&s);
        total += loss.value(out, data.labels[k]);
        correct += usize::from(argmax(out) == data.labels[k]);
    }
    let n = data.len().max(1) as f64;
    (total / n, correct as f64 / n)
}

/// The sample order of epoch `epoch` (0-based): a Fisher–Yates shuffle.
pub fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed.wrapping_add(1 + epoch as u64));
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng.random_range(0..=i);
        order.swap(i, j);
    }
    order
}

/// One epoch of a training run: its index, its sample order ([`epoch_order`]) and the first
/// sample still to run (a run resumed mid-epoch starts there).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Epoch {
    /// Which epoch (0-based).
    pub index: usize,
    /// The sample order of the whole epoch.
    pub order: Vec<usize>,
    /// The position in `order` of the first sample to run.
    pub first: usize,
}

impl Epoch {
    /// Whether the epoch starts mid-way (a resumed run).
    pub fn resumed(&self) -> bool {
        self.first > 0
    }

    /// Samples in the epoch.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether the epoch has no samples.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// `(position, sample)` of the samples still to run, in order.
    pub fn samples(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.order.iter().copied().enumerate().skip(self.first)
    }
}

/// The epochs `from.0 .. until` of a training set of `n` samples under `seed`, the first
/// starting at position `from.1` (`(0, 0)`: from the start). Every training loop in accord —
/// the reference, the chip, the all-to-all nets, the probes — takes its samples from here.
pub fn epochs(
    n: usize,
    seed: u64,
    from: (usize, usize),
    until: usize,
) -> impl Iterator<Item = Epoch> {
    (from.0..until).map(move |index| Epoch {
        index,
        order: epoch_order(n, seed, index),
        first: if index == from.0 { from.1 } else { 0 },
    })
}

/// Train a layered network on `split` and return the report and the trained network.
pub fn train(
    cfg: &TrainConfig,
    split: &Split,
    progress: Option<Progress<'_>>,
) -> (TrainReport, LayeredNet) {
    let hooks = TrainHooks {
        progress,
        ..TrainHooks::default()
    };
    match train_hooked(cfg, split, hooks) {
        Ok(r) => r,
        // Without a start net, a checkpoint or a saving hook nothing can fail.
        Err(e) => unreachable!("training without hooks failed: {e}"),
    }
}

/// What a reference run starts from and reports to, besides its configuration.
#[derive(Default)]
pub struct TrainHooks<'a> {
    /// Called between samples; `Break` stops the run (status `interrupted`).
    pub progress: Option<Progress<'a>>,
    /// Initial weights instead of Glorot's: the run's sizes and activations.
    pub start: Option<&'a LayeredNet>,
    /// Continue a saved run.
    pub resume: Option<&'a Checkpoint>,
    /// Receives the state to save, at the end of every epoch and when training stops early
    /// (with `--batch` above 1, only at epoch ends: a partial batch is not saved).
    pub checkpoint: Option<crate::checkpoint::Hook<'a>>,
    /// Per synaptic layer, the synapses that exist (row-major `(out, in)`, as
    /// [`crate::nir::Chain::masks`]; `None` or a missing entry: all). The reference trains
    /// only these, as a chip does: an absent synapse stays a zero weight.
    pub masks: &'a [Option<BitVec<usize, Lsb0>>],
}

impl std::fmt::Debug for TrainHooks<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainHooks")
            .field("start", &self.start.is_some())
            .field("resume", &self.resume.is_some())
            .field("checkpoint", &self.checkpoint.is_some())
            .field("masks", &self.masks.iter().filter(|m| m.is_some()).count())
            .finish_non_exhaustive()
    }
}

/// Why a reference run cannot start or go on.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A start net or checkpoint that is not of this run's net.
    #[error("{0}")]
    Shape(String),
    /// Saving a checkpoint failed (the run stops).
    #[error(transparent)]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
}

/// [`train`] with [`TrainHooks`].
///
/// # Errors
/// A start net or checkpoint of another shape; a checkpoint hook's error.
pub fn train_hooked(
    cfg: &TrainConfig,
    split: &Split,
    mut hooks: TrainHooks<'_>,
) -> Result<(TrainReport, LayeredNet), TrainError> {
    let Start {
        mut net,
        mut epochs,
        mut mean_steps,
        mut watch,
        at: (e0, k0, loss0, steps0),
    } = start(cfg, split, &hooks)?;
    let masks = hooks.masks;
    for (l, m) in masks.iter().enumerate() {
        let Some(m) = m else { continue };
        match net.layers.get(l) {
            Some(layer) if layer.w.len() == m.len() => {}
            _ => {
                return Err(TrainError::Shape(format!(
                    "synapse mask {l} has {} entries; the net's layer {l} has {} weights",
                    m.len(),
                    net.layers.get(l).map_or(0, |x| x.w.len())
                )));
            }
        }
    }
    mask_net(&mut net, masks);
    let mut mlp = Mlp::from_layered(&net);
    let mut outcome = RunStatus::completed();
    // The state to save when training stops early (none mid-batch).
    let mut stopped_at: Option<Position> = None;
    let mut saved = false;
    for ep in self::epochs(split.train.len(), cfg.seed, (e0, k0), cfg.epochs) {
        let (start, e) = (Instant::now(), ep.index);
        if !ep.resumed() {
            watch.start_epoch();
        }
        let mut sums = if ep.resumed() {
            (loss0, steps0)
        } else {
            (0.0, 0)
        };
        let mut stop = |e: usize, k: usize, loss: f64, watch: &mut Watch| -> Option<RunStatus> {
            if let Some(d) = watch.sample(loss, e, k) {
                return Some(d);
            }
            if let Some(p) = hooks.progress.as_mut()
                && p(k + 1, e).is_break()
            {
                return Some(RunStatus::interrupted(e, k));
            }
            None
        };
        let stopped = epoch_samples(
            cfg,
            split,
            masks,
            (&mut net, &mut mlp),
            &ep,
            &mut sums,
            &mut watch,
            &mut stop,
        );
        let (loss_sum, steps_sum) = sums;
        if let Some((d, p)) = stopped {
            outcome = d;
            stopped_at = p;
            break;
        }
        let seconds = start.elapsed().as_secs_f64();
        let n = ep.len().max(1) as f64;
        mean_steps = steps_sum as f64 / n;
        epochs.push(EpochStats::measure(
            &net,
            split,
            cfg.loss,
            e,
            loss_sum / n,
            seconds,
            mean_steps,
        ));
        let weights = watch.weights(largest_weight(&net), e, ep.len());
        if let Some(save) = hooks.checkpoint.as_mut() {
            let p = Position {
                epoch: e + 1,
                sample: 0,
                loss_sum: 0.0,
                count: 0,
                watch: watch.clone(),
            };
            let status = weights.clone().unwrap_or_else(RunStatus::completed);
            save(&snapshot(&net, p, &epochs, status))?;
            saved = true;
        }
        if let Some(d) = weights {
            outcome = d;
            break;
        }
    }
    if let (Some(p), Some(save)) = (stopped_at, hooks.checkpoint.as_mut()) {
        save(&snapshot(&net, p, &epochs, outcome.clone()))?;
    } else if let (false, Some(save)) = (saved, hooks.checkpoint.as_mut()) {
        // No epoch ran (`--epochs 0`): the net as it started is what there is to save.
        let p = Position {
            epoch: e0,
            sample: k0,
            loss_sum: loss0,
            count: steps0,
            watch: watch.clone(),
        };
        save(&snapshot(&net, p, &epochs, outcome.clone()))?;
    }
    let (_, train_accuracy) = evaluate(&net, &split.train, cfg.loss);
    let (_, test_accuracy) = evaluate(&net, &split.test, cfg.loss);
    let report = TrainReport {
        config: cfg.clone(),
        sizes: net.sizes(),
        params: net.n_params(),
        train_samples: split.train.len(),
        test_samples: split.test.len(),
        epochs,
        test_accuracy,
        train_accuracy,
        mean_retro_steps: mean_steps,
        outcome,
    };
    Ok((report, net))
}

impl EpochStats {
    /// Epoch `e`'s row: its mean training loss, its time and retrograde steps, and the
    /// accuracies (and test loss) of `net` measured now.
    fn measure(
        net: &LayeredNet,
        split: &Split,
        loss: Loss,
        e: usize,
        train_loss: f64,
        seconds: f64,
        mean_retro_steps: f64,
    ) -> Self {
        let (_, train_accuracy) = evaluate(net, &split.train, loss);
        let (test_loss, test_accuracy) = evaluate(net, &split.test, loss);
        EpochStats {
            epoch: e + 1,
            train_loss,
            train_accuracy,
            test_loss,
            test_accuracy,
            seconds,
            mean_retro_steps,
        }
    }
}

/// Where a reference run starts: its net (fresh, given or resumed), the epoch rows done, the
/// divergence watch and the position in the epoch (epoch, sample, loss sum, step count).
struct Start {
    net: LayeredNet,
    epochs: Vec<EpochStats>,
    mean_steps: f64,
    watch: Watch,
    at: (usize, usize, f64, usize),
}

/// The run's [`Start`]: a start net or checkpoint of another shape is refused.
fn start(cfg: &TrainConfig, split: &Split, hooks: &TrainHooks<'_>) -> Result<Start, TrainError> {
    let (dim, classes) = (split.train.dim, split.train.n_classes);
    let mut net = cfg.init_net(dim, classes);
    if let Some(start) = hooks.resume.map(|c| &c.net).or(hooks.start) {
        let acts: Vec<Activation> = net.layers.iter().map(|l| l.act).collect();
        if start.sizes() != net.sizes()
            || start.layers.iter().map(|l| l.act).collect::<Vec<_>>() != acts
        {
            return Err(TrainError::Shape(format!(
                "the saved net is {:?} ({:?}), this run's is {:?} ({acts:?})",
                start.sizes(),
                start.layers.iter().map(|l| l.act).collect::<Vec<_>>(),
                net.sizes()
            )));
        }
        net = start.clone();
    }
    let mut epochs = Vec::new();
    let mut mean_steps = 0.0;
    let mut watch = Watch::new(cfg.loss, classes);
    watch.weights(largest_weight(&net), 0, 0);
    let (mut e0, mut k0, mut loss0, mut steps0) = (0, 0, 0.0, 0);
    if let Some(c) = hooks.resume {
        if c.engine.is_some() {
            return Err(TrainError::Shape(
                "the checkpoint is of a chip run, not of the f64 reference".into(),
            ));
        }
        epochs = c
            .rows
            .iter()
            .map(|&(e, v)| EpochStats::from_figures(e, v))
            .collect();
        mean_steps = c.rows.last().map_or(0.0, |r| r.1[5]);
        let p = &c.position;
        (e0, k0, loss0, steps0) = (p.epoch, p.sample, p.loss_sum, p.count);
        watch = p.watch.clone();
    }
    Ok(Start {
        net,
        epochs,
        mean_steps,
        watch,
        at: (e0, k0, loss0, steps0),
    })
}

/// Absent synapses (`masks`, checked against the net's shape) back to zero weights, layer by
/// layer of `weights`.
fn mask<'a>(
    weights: impl Iterator<Item = &'a mut Vec<f64>>,
    masks: &[Option<BitVec<usize, Lsb0>>],
) {
    for (w, m) in weights.zip(masks) {
        for i in m.iter().flat_map(|m| m.iter_zeros()) {
            if let Some(x) = w.get_mut(i) {
                *x = 0.0;
            }
        }
    }
}

fn mask_net(net: &mut LayeredNet, masks: &[Option<BitVec<usize, Lsb0>>]) {
    mask(net.layers.iter_mut().map(|l| &mut l.w), masks);
}

fn mask_mlp(mlp: &mut Mlp, masks: &[Option<BitVec<usize, Lsb0>>]) {
    mask(mlp.w.iter_mut().map(|w| &mut w.data), masks);
}

/// The position after sample `k` of epoch `e` with the epoch's `sums` so far (loss, steps).
fn after(e: usize, k: usize, (loss_sum, count): (f64, usize), watch: &Watch) -> Position {
    Position {
        epoch: e,
        sample: k + 1,
        loss_sum,
        count,
        watch: watch.clone(),
    }
}

/// What ends an epoch early: a divergence or an interrupt seen after sample `k` of epoch `e`.
type StopCheck<'a> = dyn FnMut(usize, usize, f64, &mut Watch) -> Option<RunStatus> + 'a;

/// Epoch `e`'s samples in `order` from `first` on, by the configured rule (the rule on `net`,
/// or backprop on `mlp`, written back into `net`), adding to `sums` (loss, retrograde steps).
/// Returns how it stopped early, with the position to save (none mid-batch), if it did.
#[allow(clippy::too_many_arguments)]
fn epoch_samples(
    cfg: &TrainConfig,
    split: &Split,
    masks: &[Option<BitVec<usize, Lsb0>>],
    (net, mlp): (&mut LayeredNet, &mut Mlp),
    ep: &Epoch,
    (loss_sum, steps_sum): &mut (f64, usize),
    watch: &mut Watch,
    stop: &mut StopCheck<'_>,
) -> Option<(RunStatus, Option<Position>)> {
    let e = ep.index;
    let steps = cfg.steps.map_or(Steps::UntilSettled, Steps::Exactly);
    let batch = cfg.batch.max(1);
    match cfg.rule {
        RuleKind::Balance => {
            let mut s: LayeredState = net.new_state();
            let mut acc = Updates::zeros(net);
            for (k, idx) in ep.samples() {
                let label = split.train.labels[idx];
                net.fire(split.train.row(idx), &mut s);
                let loss = cfg.loss.value(net.output(&s), label);
                *loss_sum += loss;
                *steps_sum += net.credit(&mut s, label, cfg.loss, steps, true).steps;
                if batch == 1 {
                    net.apply_plasticity(&s, cfg.lr);
                    mask_net(net, masks);
                } else {
                    net.accumulate(&s, &mut acc);
                    if acc.samples == batch || k + 1 == ep.len() {
                        net.apply_updates(&mut acc, cfg.lr);
                        mask_net(net, masks);
                    }
                }
                if let Some(d) = stop(e, k, loss, watch) {
                    let at =
                        (acc.samples == 0).then(|| after(e, k, (*loss_sum, *steps_sum), watch));
                    return Some((d, at));
                }
            }
        }
        RuleKind::Backprop => {
            let mut pending: Vec<crate::backprop::Gradients> = Vec::new();
            for (k, idx) in ep.samples() {
                let label = split.train.labels[idx];
                let g = mlp.gradients(split.train.row(idx), label, cfg.loss);
                let loss = cfg.loss.value(g.a.last().map_or(&[][..], |v| v), label);
                *loss_sum += loss;
                *steps_sum += net.depth();
                if batch == 1 {
                    mlp.sgd_step(&g, cfg.lr);
                    mask_mlp(mlp, masks);
                } else {
                    pending.push(g);
                    if pending.len() == batch || k + 1 == ep.len() {
                        let scale = cfg.lr / pending.len() as f64;
                        for g in pending.drain(..) {
                            mlp.sgd_step(&g, scale);
                        }
                        mask_mlp(mlp, masks);
                    }
                }
                if let Some(d) = stop(e, k, loss, watch) {
                    mlp.write_into(net);
                    let at = pending
                        .is_empty()
                        .then(|| after(e, k, (*loss_sum, *steps_sum), watch));
                    return Some((d, at));
                }
            }
            mlp.write_into(net);
        }
    }
    None
}

impl std::fmt::Display for TrainReport {
    /// The readable report: heading, epoch table, status, final figures.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = self;
        let sizes: Vec<String> = r.sizes.iter().map(|s| s.to_string()).collect();
        writeln!(
            f,
            "accord train: {} ({} train / {} test), net {} ({} params), {} {}, loss {}, rule {:?}, lr {}, batch {}, seed {}",
            r.config.data,
            r.train_samples,
            r.test_samples,
            sizes.join("-"),
            r.params,
            r.config.activation,
            if r.config.loss == Loss::CrossEntropy {
                "+ linear out"
            } else {
                "out"
            },
            r.config.loss,
            r.config.rule,
            r.config.lr,
            r.config.batch,
            r.config.seed
        )?;
        write_epoch_table(
            f,
            false,
            r.epochs.iter().map(|e| {
                (
                    e.epoch,
                    e.train_loss,
                    e.train_accuracy,
                    e.test_loss,
                    e.test_accuracy,
                    e.seconds,
                )
            }),
        )?;
        if r.outcome.status != crate::train::Status::Completed {
            writeln!(f, "status: {}", r.outcome.describe())?;
        }
        writeln!(
            f,
            "final: test accuracy {:.2}%, train accuracy {:.2}%, {:.1} retrograde steps per sample",
            100.0 * r.test_accuracy,
            100.0 * r.train_accuracy,
            r.mean_retro_steps
        )?;
        Ok(())
    }
}

/// The epoch table of a report: `(epoch, train loss, train accuracy, test loss, test
/// accuracy, seconds)` per row; `online` marks a train accuracy measured on each sample before
/// its update (a chip run's).
pub fn write_epoch_table(
    f: &mut dyn std::fmt::Write,
    online: bool,
    rows: impl Iterator<Item = (usize, f64, f64, f64, f64, f64)>,
) -> std::fmt::Result {
    writeln!(
        f,
        "{:>5}  {:>10}  {:>12}  {:>9}  {:>9}  {:>8}",
        "epoch",
        "train loss",
        if online { "train acc*" } else { "train acc" },
        "test loss",
        "test acc",
        "seconds"
    )?;
    for (epoch, train_loss, train_acc, test_loss, test_acc, seconds) in rows {
        writeln!(
            f,
            "{epoch:>5}  {train_loss:>10.4}  {:>11.2}%  {test_loss:>9.4}  {:>8.2}%  {seconds:>8.2}",
            100.0 * train_acc,
            100.0 * test_acc,
        )?;
    }
    if online {
        writeln!(f, "(* online: measured on each sample before its update)")?;
    }
    Ok(())
}

/// A reference run's state for a checkpoint (the caller fills in the arguments).
fn snapshot(
    net: &LayeredNet,
    position: Position,
    epochs: &[EpochStats],
    status: RunStatus,
) -> Checkpoint {
    Checkpoint {
        args: Vec::new(),
        net: net.clone(),
        position,
        rows: epochs.iter().map(EpochStats::figures).collect(),
        engine: None,
        status,
    }
}
