//! The emulator: a network placed on a modelled chip and run as the chip runs it — cores
//! executing the firmware's handlers on their own state, packets crossing a routed mesh, every
//! core stepping in parallel each timestep behind a barrier (ARCHITECTURE.md §4).
//!
//! * [`engine`](self) — cores, the compute / exchange / barrier timestep, threads.
//! * `mesh` — the routers: dimension-order routes link by link, buffers, link capacities,
//!   stall or drop, per-link load.
//! * [`ChipNet`] — a layered network on the chip and its pipelined sample schedule; [`all_to_all`]
//!   — all-to-all networks, firing and credit relaxed as rounds of timesteps.
//! * [`FloatPath`] — the `f64` twin of the firmware's integer datapath ([`FixedNarrow`],
//!   [`FixedWide`]): the same handlers, the same events, exact numbers.
//!
//! Determinism: every random stream is keyed by (entity, step, purpose); a core's handlers
//! touch only its state, packets are injected in core order and delivered in cycle order, and
//! counts are integers — so a seed gives bit-identical results at any thread count. Training
//! runs samples in order and spreads each large timestep's cores over threads; evaluation runs
//! blocks of test samples on copies of the chip that share its synapse memory.
//!
//! ```
//! use accord::chip;
//! use accord::emulator::{Arith, EmuConfig, run};
//! use accord::emulator::FiringMode;
//! use accord::rule::{Activation, Loss};
//!
//! let split = accord::data::load("iris", &accord::data::default_data_dir(), 0).unwrap();
//! let cfg = EmuConfig {
//!     chip: chip::open("balance-core").unwrap(),
//!     hidden: vec![8],
//!     activation: Activation::HardSigmoid,
//!     loss: Loss::CrossEntropy,
//!     lr: 0.05,
//!     epochs: 2,
//!     seed: 1,
//!     mode: FiringMode::Graded,
//!     arith: Arith::Fixed,
//!     threads: 1,
//!     message_threshold: 0.0,
//!     rule: accord::emulator::ChipRule::Balance,
//!     placement: accord::mapping::Placement::FewestCores,
//!     duplicate_inputs: true,
//! };
//! let report = run(&cfg, &split, None).unwrap();
//! assert!(report.ledger.training.get(chip::Action::Sop) > 0);
//! // A graded 4-8-3 training sample: 3 firing timesteps, then 2 credit timesteps.
//! assert_eq!(report.timescales.timesteps_per_train_sample, 5.0);
//! ```

pub mod all_to_all;
mod build;
mod crossbar;
mod engine;
mod error;
mod float;
mod layered;
mod mesh;
mod report;
mod router;
#[cfg(test)]
mod tests;

pub use build::{FixedNarrow, FixedWide, PopSpec};
pub use engine::{EngineState, Tally, Workload};
pub use error::{EmuError, Result};
pub use float::{FloatPath, FloatPop};
pub use layered::{
    ChipNet, ChipState, CrossbarFit, Encoding, FiringMode, Glorot, NetSpec, SampleOutcome,
    WeightSource, crossbar_fit,
};
pub use mesh::LinkLoad;
pub use report::{
    EmuReport, EpochRow, LedgerBlock, MeshBlock, NeuroBench, PhaseEnergy, finalize_ledger,
};

pub use accord_firmware::datapath::{Datapath, SpikingSoma};

use crate::checkpoint::{Checkpoint, Position};
use crate::chip::{Action, ChipModel};
use crate::data::{Dataset, Split};
use crate::error::Invalid;
use crate::ledger::VarCounters;
use crate::mapping::{self, Mapping};
use crate::rule::{Activation, Balance, LayeredNet, Loss};
use crate::train::{RunStatus, Status, Watch};

/// Fixed point or the float twin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arith {
    /// The chip's number formats.
    Fixed,
    /// `f64`, no quantisation: the float twin.
    Float,
}

/// The learning rule run on the chip. The balance rule is the subject; the other two are the
/// comparison rules (ARCHITECTURE.md §7), run on the same chip model so that
/// their costs compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChipRule {
    /// The E-I balance rule: the post core aggregates `m_j = Σ_i w_ij δ_i` over its own synapse
    /// rows and sends one retrograde packet per (axon, core); no second weight copy.
    Balance,
    /// Backprop as a chip would run it without a retrograde primitive: a transposed copy `Wᵀ`
    /// lives in the presynaptic cores, `δ_i` travels to every presynaptic core (one packet per
    /// (neuron, pre core)), the pre core sums `Σ_i w_ij δ_i` over its copy and writes the copy
    /// when the post core writes the synapse (two weight updates). Numerically the same
    /// gradient.
    Backprop,
    /// Feedback alignment: like backprop's traffic, but the pre core holds a fixed random matrix
    /// `B` instead of `Wᵀ` (no second write; different numbers).
    FeedbackAlignment,
}

impl ChipRule {
    /// The rule's name as the chip's reports and the command line write it.
    pub fn name(self) -> &'static str {
        match self {
            ChipRule::Balance => "balance",
            ChipRule::Backprop => "backprop",
            ChipRule::FeedbackAlignment => "feedback-alignment",
        }
    }
}

/// An emulation run.
#[derive(Clone, Debug)]
pub struct EmuConfig {
    /// The chip model (with any overrides applied and re-checked).
    pub chip: ChipModel,
    /// Hidden widths.
    pub hidden: Vec<usize>,
    /// Hidden activation.
    pub activation: Activation,
    /// Loss (cross-entropy uses linear outputs).
    pub loss: Loss,
    /// Learning rate.
    pub lr: f64,
    /// Epochs (0 = inference only with the initial weights).
    pub epochs: usize,
    /// Seed (weights, order, random streams).
    pub seed: u64,
    /// Firing mode.
    pub mode: FiringMode,
    /// Arithmetic.
    pub arith: Arith,
    /// Threads.
    pub threads: usize,
    /// Retrograde messages with `|m|` below this are not sent (0: only zero messages).
    pub message_threshold: f64,
    /// The learning rule (the balance rule, or a comparison rule on the same chip).
    pub rule: ChipRule,
    /// How sparse layers (a NIR model's convolutions and pools) are placed.
    pub placement: mapping::Placement,
    /// On a crossbar chip, duplicate a layer's inputs onto two axons where its cores have room
    /// ([`crate::mapping#duplicated-inputs`]); `false`: one axon per input.
    pub duplicate_inputs: bool,
}

impl EmuConfig {
    /// Neuron-layer sizes for a dataset of `dim` features and `classes` classes.
    pub fn sizes(&self, dim: usize, classes: usize) -> Vec<usize> {
        let mut s = vec![dim];
        s.extend(&self.hidden);
        s.push(classes);
        s
    }

    /// Activation per synaptic layer (linear outputs for cross-entropy).
    pub fn acts(&self, layers: usize) -> Vec<Activation> {
        let mut acts = vec![self.activation; layers.saturating_sub(1)];
        acts.push(match self.loss {
            Loss::CrossEntropy => Activation::Identity,
            Loss::Mse => self.activation,
        });
        acts
    }

    /// The `f64` reference network this run starts from (same sizes, activations and seed as
    /// `accord train --reference`).
    pub fn reference_net(&self, dim: usize, classes: usize) -> crate::rule::LayeredNet {
        let sizes = self.sizes(dim, classes);
        crate::rule::LayeredNet::glorot(&sizes, &self.acts(sizes.len() - 1), self.seed)
    }

    /// The datapath populations (one per synaptic layer).
    pub fn pops(&self, layers: usize) -> Vec<PopSpec> {
        layered_pops(&self.acts(layers), &[])
    }
}

/// The datapath populations of a layered net with these activations (a linear read-out on top
/// when the last one is the identity), all with `g = f'` unless `balance` says otherwise.
pub fn layered_pops(acts: &[Activation], balance: &[Balance]) -> Vec<PopSpec> {
    let last = acts.len().saturating_sub(1);
    acts.iter()
        .enumerate()
        .map(|(l, &act)| PopSpec {
            act,
            balance: balance.get(l).cloned().unwrap_or_default(),
            readout: l == last && act == Activation::Identity,
            soma: None,
        })
        .collect()
}

/// The float twin for `pops` on `chip` (its spiking soma), learning rate, threshold and seed.
pub fn float_path(
    chip: &ChipModel,
    pops: &[PopSpec],
    lr: f64,
    threshold: f64,
    seed: u64,
) -> FloatPath {
    FloatPath::new(
        pops.iter()
            .map(|p| FloatPop {
                act: p.act,
                balance: p.balance.clone(),
                readout: p.readout,
                soma: p.soma,
            })
            .collect(),
        lr,
        threshold,
        build::soma(chip),
        seed,
    )
}

pub use build::fixed as fixed_path;
pub use build::lr_raw;
pub use build::thresholds as message_thresholds;

/// Mixed into the seed to draw feedback alignment's fixed feedback matrices.
pub const FEEDBACK_SEED: u64 = 0xFEED_BAC4_0000_0001;

pub use crate::train::Progress;

/// Check that the chip can run a configuration and place its network.
///
/// # Errors
/// A missing primitive, graded mode on a binary-spike chip, or a network that does not fit.
pub fn place(cfg: &EmuConfig, dim: usize, classes: usize, training: bool) -> Result<Mapping> {
    place_net(cfg, dim, classes, training, &[], &[], &[])
}

/// [`place`] for a net whose neuron layers may project onto themselves (`recurrent[l]` for
/// neuron layer `l`, [`crate::mapping::map_net`]). A recurrent net runs in spiking mode (its
/// spikes of one tick reach it in the next) and does not train on the chip.
/// A layer with a synapse mask (`masks[l]` for synaptic layer `l`) is placed by receptive
/// field ([`crate::mapping#receptive-fields`]); one with a kernel (`kernels[l]`, whose weights
/// the caller has checked hold one per channel: [`shared_kernels`]) stores it once per channel
/// on a chip that declares weight sharing ([`crate::mapping#weight-sharing`]) — in inference:
/// a training run places every layer expanded, since the chip trains each synapse on its own.
///
/// # Errors
/// As [`place`]; training or graded mode with a recurrent layer.
pub fn place_net(
    cfg: &EmuConfig,
    dim: usize,
    classes: usize,
    training: bool,
    recurrent: &[bool],
    masks: &[Option<bitvec::vec::BitVec<usize, bitvec::order::Lsb0>>],
    kernels: &[Option<crate::graph::Kernel>],
) -> Result<Mapping> {
    if let Some(l) = recurrent.iter().position(|&r| r) {
        if training {
            return Err(Invalid::new(
                "epochs",
                format!(
                    " {}: layer {l} projects onto itself; the balance rule on a chip trains \
                     feed-forward projections only (a recurrent projection's credit would need \
                     the net unrolled in time): run the recurrent net with 0 epochs",
                    cfg.epochs
                ),
            )
            .into());
        }
        if cfg.mode == FiringMode::Graded {
            return Err(Invalid::new(
                "mode",
                format!(
                    " graded: layer {l} projects onto itself, and a graded sample fires each \
                     layer once; a recurrent net runs in spiking mode (its spikes of one tick \
                     reach it in the next)"
                ),
            )
            .into());
        }
    }
    cfg.chip.require(&cfg.chip.required_actions(training))?;
    if matches!(cfg.mode, FiringMode::Graded) && !cfg.chip.core.graded_events {
        return Err(Invalid::new(
            "mode",
            format!(
                " graded: chip '{}' has no graded events (core.graded_events = false in {}); \
                 run it in spiking mode",
                cfg.chip.name, cfg.chip.origin
            ),
        )
        .into());
    }
    let sizes = cfg.sizes(dim, classes);
    let widths: Vec<String> = cfg.hidden.iter().map(usize::to_string).collect();
    crate::limits::check_field(
        "hidden",
        format!(
            "{} (a {sizes:?} net on chip '{}')",
            widths.join(","),
            cfg.chip.name
        ),
        // A recurrent layer holds its own n × n rows too (16 bytes a synapse, as the estimate).
        crate::limits::chip_bytes(&sizes).saturating_add(
            sizes
                .iter()
                .zip(recurrent)
                .filter(|(_, r)| **r)
                .map(|(&n, _)| (n as u64).saturating_mul(n as u64).saturating_mul(16))
                .fold(0, u64::saturating_add),
        ),
    )?;
    let map_err = |source| EmuError::Map {
        sizes: sizes.clone(),
        chip: cfg.chip.name.clone(),
        source,
    };
    // Tied kernel updates are not modelled: a training run keeps a weight per synapse.
    let kernels = if training { &[] } else { kernels };
    let graph = crate::graph::Graph::layered(&sizes, recurrent, masks.to_vec())
        .and_then(|g| g.with_kernels(kernels))
        .map_err(|e| map_err(mapping::MapError::Graph(e)))?;
    let opts = mapping::MapOptions {
        placement: cfg.placement,
        duplicate_inputs: cfg.duplicate_inputs,
    };
    let m = mapping::map_graph(&graph, &cfg.chip, opts).map_err(map_err)?;
    if training && let Some(t) = cfg.chip.core.axon_types {
        return Err(Invalid::new(
            "epochs",
            format!(
                " {}: chip '{}' holds weights in a binary crossbar with {t} axon types \
                 (core.axon_types in {}): its weights are fitted to that form once, when the net \
                 is built, and cannot learn per synapse; train elsewhere and evaluate the trained \
                 net here with 0 epochs",
                cfg.epochs, cfg.chip.name, cfg.chip.origin
            ),
        )
        .into());
    }
    if training
        && cfg.rule != ChipRule::Balance
        && let Some(lp) = m.layers.iter().find(|lp| !lp.segments.is_empty())
    {
        return Err(Invalid::new(
            "rule",
            format!(
                " {}: layer {} of {sizes:?} has a fan-in of {} that chip '{}' splits over {} \
                 cores; the comparison rules do not train split layers (their transposed copies \
                 would have to follow the segments): use the balance rule, or a chip whose cores \
                 hold the fan-in",
                cfg.rule.name(),
                lp.layer,
                sizes[lp.layer - 1],
                cfg.chip.name,
                lp.segments.len(),
            ),
        )
        .into());
    }
    Ok(m)
}

/// Train (and evaluate) on the chip.
///
/// # Errors
/// If the chip lacks a primitive the run needs, the network does not fit, or a format cannot
/// hold the learning rate.
pub fn run(cfg: &EmuConfig, split: &Split, progress: Option<Progress<'_>>) -> Result<EmuReport> {
    run_with(cfg, split, progress, DEFAULT_PAR_THRESHOLD)
}

/// Estimated work (synapses touched) a timestep must reach before its cores are spread over
/// threads.
pub const DEFAULT_PAR_THRESHOLD: u64 = 1 << 16;

/// [`run`] with an explicit threshold for spreading a timestep's cores over threads (0: always,
/// when `threads > 1`; tests use it to exercise the parallel path on small nets).
///
/// # Errors
/// As [`run`].
pub fn run_with(
    cfg: &EmuConfig,
    split: &Split,
    progress: Option<Progress<'_>>,
    par_threshold: u64,
) -> Result<EmuReport> {
    let hooks = Hooks {
        progress,
        ..Hooks::default()
    };
    run_hooked(cfg, split, hooks, par_threshold)
}

/// What a run starts from and reports to, besides its configuration.
#[derive(Default)]
pub struct Hooks<'a> {
    /// Called between samples; `Break` stops the run (status `interrupted`).
    pub progress: Option<Progress<'a>>,
    /// Initial weights instead of Glorot's (`accord train --load`): same sizes as the run's net.
    pub start: Option<&'a LayeredNet>,
    /// Continue a saved run (its weights, position, rows and engine state).
    pub resume: Option<&'a Checkpoint>,
    /// Per synaptic layer, the synapses that exist (a sparse layer, e.g. an expanded
    /// convolution from [`crate::nir::Chain::masks`]); empty: every layer dense.
    pub masks: &'a [Option<bitvec::vec::BitVec<usize, bitvec::order::Lsb0>>],
    /// Per synaptic layer, its neurons' own spiking soma (a NIR neuron's converted decays,
    /// [`crate::nir::Discrete`]); `None` or a missing entry: the chip's `[soma]`.
    pub somas: &'a [Option<SpikingSoma>],
    /// Per synaptic layer, its neurons' projection onto themselves (`n × n` real weights,
    /// [`crate::nir::Chain::recurrent`]); empty: none. A recurrent net runs inference only, in
    /// spiking mode ([`place_net`]).
    pub recurrent: &'a [Option<Vec<f64>>],
    /// Receives the state to save.
    pub checkpoint: Option<crate::checkpoint::Hook<'a>>,
    /// Per synaptic layer, its convolution's kernel ([`crate::nir::Chain::kernels`]); empty:
    /// none. Used where the start weights hold it ([`shared_kernels`]), in inference, on a
    /// chip that declares weight sharing.
    pub kernels: &'a [Option<crate::graph::Kernel>],
}

/// The kernels of `kernels` that the weights of `start` hold, one value per channel and tap
/// ([`crate::graph::Kernel::shared_by`]); none without a start net (Glorot's weights are drawn
/// per synapse).
pub fn shared_kernels(
    kernels: &[Option<crate::graph::Kernel>],
    masks: &[Option<bitvec::vec::BitVec<usize, bitvec::order::Lsb0>>],
    start: Option<&LayeredNet>,
) -> Vec<Option<crate::graph::Kernel>> {
    let Some(net) = start else {
        return Vec::new();
    };
    kernels
        .iter()
        .zip(masks)
        .zip(&net.layers)
        .map(|((k, m), layer)| {
            let (k, m) = (k.as_ref()?, m.as_ref()?);
            k.shared_by(&layer.w, layer.n_in, m).ok()?;
            Some(k.clone())
        })
        .collect()
}

impl std::fmt::Debug for Hooks<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("start", &self.start.is_some())
            .field("resume", &self.resume.is_some())
            .field("checkpoint", &self.checkpoint.is_some())
            .finish_non_exhaustive()
    }
}

/// [`run_with`] with [`Hooks`]: start from given weights, continue a checkpoint, or save one.
///
/// # Errors
/// As [`run`]; a start net or checkpoint whose shape is not the run's net.
pub fn run_hooked(
    cfg: &EmuConfig,
    split: &Split,
    mut hooks: Hooks<'_>,
    par_threshold: u64,
) -> Result<EmuReport> {
    let (dim, classes) = (split.train.dim, split.train.n_classes);
    let training = cfg.epochs > 0;
    let sizes = cfg.sizes(dim, classes);
    let m = sizes.len() - 1;
    if hooks.recurrent.len() > m {
        return Err(EmuError::Shape(format!(
            "{} recurrent projections for a net of {m} synaptic layers",
            hooks.recurrent.len()
        )));
    }
    let mut rec_layers = vec![false; m + 1];
    for (l, r) in hooks.recurrent.iter().enumerate() {
        let Some(w) = r else { continue };
        let n = sizes[l + 1];
        if w.len() != n * n {
            return Err(EmuError::Shape(format!(
                "the recurrent projection of layer {} has {} weights, not {n} × {n}",
                l + 1,
                w.len()
            )));
        }
        rec_layers[l + 1] = true;
    }
    let start = hooks.resume.map(|c| &c.net).or(hooks.start);
    let kernels = shared_kernels(hooks.kernels, hooks.masks, start);
    let mapping = place_net(
        cfg,
        dim,
        classes,
        training,
        &rec_layers,
        hooks.masks,
        &kernels,
    )?;
    let acts = cfg.acts(m);
    if hooks.somas.len() > m {
        return Err(EmuError::Shape(format!(
            "{} soma programs for a net of {m} synaptic layers",
            hooks.somas.len()
        )));
    }
    let mut pops = cfg.pops(m);
    for (p, s) in pops.iter_mut().zip(hooks.somas) {
        p.soma = *s;
    }
    if cfg.mode == FiringMode::Graded && cfg.arith == Arith::Fixed {
        build::check_activation_table(&cfg.chip, &pops)?;
    }
    let mut setup = VarCounters::default();
    let weights = Glorot {
        sizes: sizes.clone(),
        seed: cfg.seed,
    };
    let feedback = Glorot {
        sizes: sizes.clone(),
        seed: cfg.seed ^ FEEDBACK_SEED,
    };
    check_hooks(cfg, &hooks, start, (&sizes, &acts))?;
    let spec = NetSpec {
        sizes: &sizes,
        acts: &acts,
        weights: start.map_or(&weights as &dyn WeightSource, |n| n as &dyn WeightSource),
        masks: hooks.masks,
        recurrent: hooks.recurrent,
        feedback: (cfg.rule == ChipRule::FeedbackAlignment).then_some(&feedback as _),
        mapping: &mapping,
        mode: cfg.mode,
        loss: cfg.loss,
        rule: cfg.rule,
        threads: cfg.threads,
        training,
    };
    // A convolution the chip would share, placed expanded because the run trains.
    let expanded_for_training =
        training && cfg.chip.core.weight_sharing && kernels.iter().any(Option::is_some);
    // The learning rate is checked against its format only when the chip will learn.
    let lr = if training { cfg.lr } else { 0.0 };
    let mut report = match cfg.arith {
        Arith::Fixed => {
            let lr = if training {
                build::lr_raw(&cfg.chip, lr)?;
                lr
            } else {
                cfg.chip.formats.learning_rate.lsb()
            };
            macro_rules! go {
                ($ty:ty) => {{
                    let dp: $ty = build::fixed(
                        &cfg.chip,
                        &pops,
                        lr,
                        cfg.message_threshold,
                        cfg.rule,
                        cfg.seed,
                        &mut setup,
                    )?;
                    let net = ChipNet::build(dp, &spec, &cfg.chip, &mut setup);
                    drive(cfg, split, net, &mapping, setup, &mut hooks, par_threshold)
                }};
            }
            if build::narrow_fits(&cfg.chip) {
                go!(FixedNarrow)
            } else {
                go!(FixedWide)
            }
        }
        Arith::Float => {
            build::thresholds(&cfg.chip, cfg.message_threshold, cfg.rule)?;
            let dp = float_path(&cfg.chip, &pops, cfg.lr, cfg.message_threshold, cfg.seed);
            let net = ChipNet::build(dp, &spec, &cfg.chip, &mut setup);
            drive(cfg, split, net, &mapping, setup, &mut hooks, par_threshold)
        }
    }?;
    if expanded_for_training {
        report.notes.push(format!(
            "SHARING: chip '{}' shares convolution weights (core.weight_sharing), but a training \
             run places every convolution expanded, a weight per synapse: accord trains each \
             synapse on its own and does not tie a shared kernel's updates, so the copies of a \
             kernel drift apart and the trained net keeps a weight per synapse",
            cfg.chip.name
        ));
    }
    Ok(report)
}

/// The run's hooks against its net: a starting or resumed net of this run's sizes and
/// activations, synapse masks of its layers' shapes, and sparse layers only under the balance
/// rule.
fn check_hooks(
    cfg: &EmuConfig,
    hooks: &Hooks<'_>,
    start: Option<&LayeredNet>,
    (sizes, acts): (&[usize], &[Activation]),
) -> Result<()> {
    let m = sizes.len() - 1;
    if let Some(net) = start {
        if net.sizes() != *sizes {
            return Err(EmuError::Shape(format!(
                "the saved net is {:?}, this run's is {sizes:?} (same data and widths needed)",
                net.sizes()
            )));
        }
        if net.layers.iter().map(|l| l.act).collect::<Vec<_>>() != *acts {
            return Err(EmuError::Shape(format!(
                "the saved net's activations are not this run's ({acts:?})"
            )));
        }
    }
    if hooks.masks.len() > m {
        return Err(EmuError::Shape(format!(
            "{} synapse masks for a net of {m} synaptic layers",
            hooks.masks.len()
        )));
    }
    for (l, mask) in hooks.masks.iter().enumerate() {
        if let Some(mask) = mask
            && mask.len() != sizes[l] * sizes[l + 1]
        {
            return Err(EmuError::Shape(format!(
                "the synapse mask of layer {} has {} entries, not {} × {}",
                l + 1,
                mask.len(),
                sizes[l + 1],
                sizes[l]
            )));
        }
    }
    if hooks.masks.iter().any(Option::is_some) && cfg.rule != ChipRule::Balance {
        return Err(Invalid::new(
            "rule",
            format!(
                " {} keeps a dense transposed copy of every layer; a net with sparse layers (an \
                 expanded convolution or pooling) runs with the balance rule",
                cfg.rule.name()
            ),
        )
        .into());
    }
    Ok(())
}

/// Step keys: training sample `k` of epoch `e`, and evaluation sample `k`.
fn train_step(e: usize, k: usize) -> u64 {
    ((e as u64 + 1) << 32) | k as u64
}
fn eval_step(k: usize) -> u64 {
    k as u64
}

/// Samples per evaluation block: blocks are fixed whatever the thread count, so per-block
/// counters merge to the same totals.
const EVAL_BLOCK: usize = 64;

/// Inference over a dataset, in blocks of samples on copies of the chip that share its synapse
/// memory. Returns the mean loss, the accuracy, the counts, and the mesh of the copies (for
/// link loads).
pub fn evaluate<D>(
    chip_net: &ChipNet<D>,
    data: &Dataset,
    threads: usize,
) -> (f64, f64, Tally, Vec<LinkLoad>)
where
    D: Datapath + Clone,
{
    let n = data.len();
    let blocks = n.div_ceil(EVAL_BLOCK);
    let run_block = |b: usize| {
        let mut local = chip_net.inference_copy();
        local.set_threads(1, u64::MAX);
        local.engine.tally = Tally::default();
        let mut t = Tally::default();
        let outcomes: Vec<SampleOutcome> = (b * EVAL_BLOCK..((b + 1) * EVAL_BLOCK).min(n))
            .map(|k| local.sample(data.row(k), data.labels[k], false, eval_step(k), &mut t))
            .collect();
        (outcomes, t, local.engine.mesh_snapshot())
    };
    let results = crate::parallel::map(threads, blocks, &run_block);
    // Integer tallies merge exactly; losses are summed in sample order.
    let mut t = Tally::default();
    let (mut loss, mut correct) = (0.0, 0usize);
    let mut mesh = chip_net.engine.fresh_mesh();
    for (outcomes, tb, mb) in results {
        for o in outcomes {
            loss += o.loss;
            correct += usize::from(o.correct);
        }
        t.merge(&tb);
        mesh.merge_links(&mb);
    }
    let denom = n.max(1) as f64;
    (loss / denom, correct as f64 / denom, t, mesh.link_loads())
}

fn drive<D>(
    cfg: &EmuConfig,
    split: &Split,
    mut chip_net: ChipNet<D>,
    mapping: &Mapping,
    setup: VarCounters,
    hooks: &mut Hooks<'_>,
    par_threshold: u64,
) -> Result<EmuReport>
where
    D: Datapath + Clone,
{
    chip_net.set_threads(cfg.threads, par_threshold);
    let Resumed {
        mut epochs,
        mut train_tally,
        mut watch,
        at: (e0, k0, loss0, correct0),
    } = resume(cfg, split, &mut chip_net, setup, hooks.resume)?;
    let mut outcome = RunStatus::completed();
    let mut position = Position {
        epoch: e0,
        sample: k0,
        loss_sum: loss0,
        count: correct0,
        watch: watch.clone(),
    };
    let mut saved = false;
    'epochs: for ep in crate::train::epochs(split.train.len(), cfg.seed, (e0, k0), cfg.epochs) {
        let (start, e) = (std::time::Instant::now(), ep.index);
        if !ep.resumed() {
            watch.start_epoch();
        }
        let (mut loss, mut correct) = if ep.resumed() {
            (loss0, correct0)
        } else {
            (0.0, 0)
        };
        for (k, idx) in ep.samples() {
            let o = chip_net.sample(
                split.train.row(idx),
                split.train.labels[idx],
                true,
                train_step(e, k),
                &mut train_tally,
            );
            loss += o.loss;
            correct += usize::from(o.correct);
            let stop = if let Some(d) = watch.sample(o.loss, e, k) {
                Some(d)
            } else if let Some(p) = hooks.progress.as_mut()
                && p(k + 1, e).is_break()
            {
                Some(RunStatus::interrupted(e, k))
            } else {
                None
            };
            if let Some(d) = stop {
                outcome = d;
                position = Position {
                    epoch: e,
                    sample: k + 1,
                    loss_sum: loss,
                    count: correct,
                    watch: watch.clone(),
                };
                break 'epochs;
            }
        }
        chip_net.finish(&mut train_tally);
        let seconds = start.elapsed().as_secs_f64();
        let (test_loss, test_accuracy, _, _) = evaluate(&chip_net, &split.test, cfg.threads);
        let n = ep.len().max(1) as f64;
        epochs.push(EpochRow {
            epoch: e + 1,
            train_loss: loss / n,
            train_accuracy_online: correct as f64 / n,
            test_loss,
            test_accuracy,
            seconds,
        });
        position = Position {
            epoch: e + 1,
            sample: 0,
            loss_sum: 0.0,
            count: 0,
            watch: watch.clone(),
        };
        let grown = watch.weights(chip_net.max_abs_weight(), e, ep.len());
        let status = grown.clone().unwrap_or_else(RunStatus::completed);
        if let Some(save) = hooks.checkpoint.as_mut() {
            save(&snapshot(
                &mut chip_net,
                &train_tally,
                &position,
                &epochs,
                &status,
            ))?;
            saved = true;
        }
        if let Some(d) = grown {
            outcome = d;
            break;
        }
    }
    // A stop inside an epoch (one at its end was saved above), or no epoch at all
    // (`--epochs 0`: the net as it started is what there is to save).
    if (outcome.status != Status::Completed && position.sample > 0)
        || (!saved && hooks.checkpoint.is_some())
    {
        chip_net.finish(&mut train_tally);
        if let Some(save) = hooks.checkpoint.as_mut() {
            save(&snapshot(
                &mut chip_net,
                &train_tally,
                &position,
                &epochs,
                &outcome,
            ))?;
        }
    }
    let train_links = chip_net.engine.link_loads();
    let (test_loss, test_accuracy, infer_tally, infer_links) =
        evaluate(&chip_net, &split.test, cfg.threads);
    Ok(report::build(
        cfg,
        split,
        mapping,
        &chip_net,
        epochs,
        (test_loss, test_accuracy),
        (train_tally, infer_tally),
        (train_links, infer_links),
        outcome,
    ))
}

/// Where a chip run starts: its epoch table, counts and divergence watch so far, and its
/// position (epoch, sample, the epoch's loss sum and correct count).
struct Resumed {
    epochs: Vec<EpochRow>,
    train_tally: Tally,
    watch: Watch,
    at: (usize, usize, f64, usize),
}

/// The beginning (the build's counts in the training tally), or the checkpoint's position,
/// counts and engine state restored into `chip_net`.
fn resume<D: Datapath>(
    cfg: &EmuConfig,
    split: &Split,
    chip_net: &mut ChipNet<D>,
    setup: VarCounters,
    checkpoint: Option<&Checkpoint>,
) -> Result<Resumed> {
    let mut watch = Watch::new(cfg.loss, split.train.n_classes);
    watch.weights(chip_net.max_abs_weight(), 0, 0);
    let Some(c) = checkpoint else {
        let mut train_tally = Tally::default();
        train_tally.vars.merge(&setup);
        return Ok(Resumed {
            epochs: Vec::new(),
            train_tally,
            watch,
            at: (0, 0, 0.0, 0),
        });
    };
    let st = c.engine.as_ref().ok_or_else(|| {
        EmuError::Shape("the checkpoint is of an f64 reference run, not a chip run".into())
    })?;
    let train_tally = Tally::from_words(&st.tally).ok_or_else(|| {
        EmuError::Shape("the checkpoint's counts are of another accord version".into())
    })?;
    chip_net
        .engine
        .restore(st)
        .map_err(|e| EmuError::Shape(format!("the checkpoint's engine state: {e}")))?;
    let p = &c.position;
    Ok(Resumed {
        epochs: c
            .rows
            .iter()
            .map(|&(epoch, v)| EpochRow::from_figures(epoch, v))
            .collect(),
        train_tally,
        watch: p.watch.clone(),
        at: (p.epoch, p.sample, p.loss_sum, p.count),
    })
}

/// The run's state for a checkpoint (every exchange settled first). The arguments are the
/// caller's to fill in.
fn snapshot<D: Datapath + Clone>(
    chip_net: &mut ChipNet<D>,
    train_tally: &Tally,
    position: &Position,
    epochs: &[EpochRow],
    outcome: &RunStatus,
) -> Checkpoint {
    let mut engine = chip_net.engine.state();
    engine.tally = train_tally.to_words();
    Checkpoint {
        args: Vec::new(),
        net: chip_net.export(),
        position: position.clone(),
        rows: epochs.iter().map(EpochRow::figures).collect(),
        engine: Some(engine),
        status: outcome.clone(),
    }
}

/// Actions of the retrograde (credit) phase: their energy share is "retrograde traffic".
pub const RETRO_ACTIONS: [Action; 4] = [
    Action::RetroSop,
    Action::RetroPacket,
    Action::CreditAccumulate,
    Action::LutRead,
];
