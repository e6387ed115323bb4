//! The emulator: a layered network placed on a modelled chip, run event by event in the chip's
//! fixed-point formats (or as its exact `f64` twin), with every primitive action counted.
//!
//! Per sample, the three phases of DESIGN §2:
//!
//! * **fire** — graded: one packet per active presynaptic neuron and destination core carrying
//!   its rate; spiking: `T` ticks of integrate-and-fire with binary spikes. The post core walks
//!   the axon's synapse row (SOPs), the soma reads the row sum into its membrane format and
//!   computes the rate. Silent neurons send nothing.
//! * **credit** — the host clamps the output credit; each neuron holding credit reads its
//!   balance table (`g(u)`) and forms `δ = g·c`; the post core aggregates `m_j = Σ_i w_ij δ_i`
//!   over the *same* rows and sends one retrograde packet per (axon, core) with a non-zero
//!   message; the presynaptic core accumulates `c_j += m_j`. Zero credit sends nothing; an
//!   optional message threshold drops small `δ` (counted).
//! * **plasticity** — `w_ij += η δ_i r_j` for every synapse with `δ_i ≠ 0` and `r_j ≠ 0`, through
//!   the firmware's rounding (stochastic rounding draws keyed by synapse and sample).
//!
//! Determinism: every random stream is keyed by (entity, sample, purpose); cores that are
//! simulated on several threads write disjoint state and their counts are integer sums, so a
//! seed gives bit-identical results at any thread count. Evaluation runs test samples in
//! parallel blocks (each sample is independent); training runs samples in order and spreads a
//! phase's cores over threads when the phase is large.
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
//! };
//! let report = run(&cfg, &split, None).unwrap();
//! assert!(report.ledger.training.get(chip::Action::Sop) > 0);
//! ```

mod datapath;
pub mod general;
mod net;
mod report;

pub use datapath::{ACTIVATION_TABLE_ENTRIES, Datapath, FixedPath, FloatPath, purpose};
pub use net::{ChipNet, ChipRule, Encoding, FiringMode, SampleOutcome, Tally, Workload};
pub use report::{EmuReport, EpochRow, LedgerBlock, NeuroBench, PhaseEnergy, finalize_ledger};

use crate::chip::{Action, ChipModel};
use crate::data::{Dataset, Split};
use crate::ledger::VarCounters;
use crate::mapping::{self, Mapping};
use crate::rule::{Activation, Balance, LayeredNet, Loss};
use crate::train::epoch_order;
use anyhow::{Context, Result, bail};

/// Fixed point or the float twin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arith {
    /// The chip's number formats.
    Fixed,
    /// `f64`, no quantisation: the float twin.
    Float,
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
    /// Retrograde messages with `|δ|` below this are dropped (0: only zero credit is dropped).
    pub message_threshold: f64,
    /// The learning rule (the balance rule, or a comparison rule on the same chip).
    pub rule: ChipRule,
}

impl EmuConfig {
    /// The `f64` reference network this run starts from (same sizes, activations and seed as
    /// `accord train --reference`).
    pub fn reference_net(&self, dim: usize, classes: usize) -> LayeredNet {
        self.train_config().init_net(dim, classes)
    }

    fn train_config(&self) -> crate::train::TrainConfig {
        crate::train::TrainConfig {
            data: String::new(),
            hidden: self.hidden.clone(),
            activation: self.activation,
            loss: self.loss,
            lr: self.lr,
            epochs: self.epochs,
            batch: 1,
            seed: self.seed,
            rule: crate::train::RuleKind::Balance,
            steps: None,
        }
    }
}

/// Mixed into the seed to draw feedback alignment's fixed feedback matrices.
pub const FEEDBACK_SEED: u64 = 0xFEED_BAC4_0000_0001;

/// Per-sample progress callback (`samples done in this epoch`, `epoch`).
pub type Progress<'a> = &'a mut dyn FnMut(usize, usize);

/// Build the placed network for a configuration (checks the chip can run it).
pub fn place(
    cfg: &EmuConfig,
    dim: usize,
    classes: usize,
    training: bool,
) -> Result<(LayeredNet, Mapping)> {
    cfg.chip.require(&cfg.chip.required_actions(training))?;
    if matches!(cfg.mode, FiringMode::Graded) && !cfg.chip.core.graded_events {
        bail!(
            "chip '{}' has no graded events (core.graded_events = false in {}): use --mode spiking",
            cfg.chip.name,
            cfg.chip.origin
        );
    }
    let net = cfg.reference_net(dim, classes);
    let mapping = mapping::map_layered(&net.sizes(), &cfg.chip)
        .with_context(|| format!("mapping {:?} onto chip '{}'", net.sizes(), cfg.chip.name))?;
    Ok((net, mapping))
}

/// Train (and evaluate) on the chip.
///
/// # Errors
/// If the chip lacks a primitive the run needs, the network does not fit, or a format cannot
/// hold the learning rate.
pub fn run(cfg: &EmuConfig, split: &Split, progress: Option<Progress<'_>>) -> Result<EmuReport> {
    run_with(cfg, split, progress, DEFAULT_PAR_THRESHOLD)
}

/// Synaptic ops a training phase must reach before its cores are spread over threads.
pub const DEFAULT_PAR_THRESHOLD: u64 = 1 << 20;

/// [`run`] with an explicit threshold for spreading a training phase's cores over threads (0:
/// always, when `threads > 1`; tests use it to exercise the parallel path on small nets).
///
/// # Errors
/// As [`run`].
pub fn run_with(
    cfg: &EmuConfig,
    split: &Split,
    progress: Option<Progress<'_>>,
    par_threshold: u64,
) -> Result<EmuReport> {
    let (dim, classes) = (split.train.dim, split.train.n_classes);
    let (net, mapping) = place(cfg, dim, classes, cfg.epochs > 0)?;
    let acts: Vec<Activation> = net.layers.iter().map(|l| l.act).collect();
    let balance: Vec<Balance> = net.layers.iter().map(|l| l.balance.clone()).collect();
    let mut setup = VarCounters::default();
    // Feedback alignment's fixed random feedback: Glorot weights from a seed of its own.
    let feedback = (cfg.rule == ChipRule::FeedbackAlignment)
        .then(|| LayeredNet::glorot(&net.sizes(), &acts, cfg.seed ^ FEEDBACK_SEED));
    let placed = Placed {
        net: &net,
        mapping: &mapping,
        feedback: feedback.as_ref(),
        par_threshold,
    };
    match cfg.arith {
        Arith::Fixed => {
            let dp = FixedPath::new(
                &cfg.chip,
                &acts,
                &balance,
                cfg.lr,
                cfg.message_threshold,
                cfg.seed,
                &mut setup,
            )?;
            let chip_net = placed.on_cores(dp, cfg, &mut setup);
            drive(cfg, split, chip_net, &net, &mapping, setup, progress)
        }
        Arith::Float => {
            let dp = FloatPath::new(acts.clone(), balance.clone(), cfg.lr, cfg.message_threshold);
            let chip_net = placed.on_cores(dp, cfg, &mut setup);
            drive(cfg, split, chip_net, &net, &mapping, setup, progress)
        }
    }
}

/// What every arithmetic's chip network is built from.
struct Placed<'a> {
    net: &'a LayeredNet,
    mapping: &'a Mapping,
    feedback: Option<&'a LayeredNet>,
    par_threshold: u64,
}

impl Placed<'_> {
    fn on_cores<D: Datapath + Clone>(
        &self,
        dp: D,
        cfg: &EmuConfig,
        setup: &mut VarCounters,
    ) -> ChipNet<D> {
        let mut chip_net = ChipNet::new(
            dp,
            self.net,
            self.mapping,
            &cfg.chip,
            cfg.mode,
            cfg.loss,
            cfg.threads,
            cfg.seed,
            setup,
        );
        chip_net.par_threshold = self.par_threshold;
        chip_net.with_rule(cfg.rule, self.feedback, setup)
    }
}

/// Step keys: training sample `k` of epoch `e`, and evaluation sample `k`.
fn train_step(e: usize, k: usize) -> u64 {
    ((e as u64 + 1) << 32) | k as u64
}
fn eval_step(k: usize) -> u64 {
    k as u64
}

/// Inference over a dataset, in parallel blocks of samples (each sample independent).
pub fn evaluate<D: Datapath + Clone + Send>(
    chip_net: &ChipNet<D>,
    data: &Dataset,
    threads: usize,
) -> (f64, f64, Tally) {
    let n = data.len();
    let blocks = threads.max(1).min(n.max(1));
    let per = n.div_ceil(blocks).max(1);
    let results = net::map_blocks(blocks, threads, |b| {
        let mut local = chip_net.clone();
        let mut t = Tally::default();
        let outcomes: Vec<SampleOutcome> = (b * per..((b + 1) * per).min(n))
            .map(|k| local.sample(data.row(k), data.labels[k], false, eval_step(k), &mut t))
            .collect();
        (outcomes, t)
    });
    // Integer tallies merge exactly; losses are summed in sample order, so the result does not
    // depend on how samples were split over threads.
    let mut t = Tally::default();
    let (mut loss, mut correct) = (0.0, 0usize);
    for (outcomes, tb) in results {
        for o in outcomes {
            loss += o.loss;
            correct += usize::from(o.correct);
        }
        t.merge(&tb);
    }
    let denom = n.max(1) as f64;
    (loss / denom, correct as f64 / denom, t)
}

fn drive<D: Datapath + Clone + Send>(
    cfg: &EmuConfig,
    split: &Split,
    mut chip_net: ChipNet<D>,
    net: &LayeredNet,
    mapping: &Mapping,
    setup: VarCounters,
    mut progress: Option<Progress<'_>>,
) -> Result<EmuReport> {
    let mut epochs = Vec::new();
    let mut train_tally = Tally::default();
    train_tally.vars.merge(&setup);
    for e in 0..cfg.epochs {
        let start = std::time::Instant::now();
        let order = epoch_order(split.train.len(), cfg.seed, e);
        let (mut loss, mut correct) = (0.0, 0usize);
        for (k, &idx) in order.iter().enumerate() {
            let o = chip_net.sample(
                split.train.row(idx),
                split.train.labels[idx],
                true,
                train_step(e, k),
                &mut train_tally,
            );
            loss += o.loss;
            correct += usize::from(o.correct);
            if let Some(p) = progress.as_mut() {
                p(k + 1, e);
            }
        }
        let seconds = start.elapsed().as_secs_f64();
        let (test_loss, test_accuracy, _) = evaluate(&chip_net, &split.test, cfg.threads);
        let n = order.len().max(1) as f64;
        epochs.push(EpochRow {
            epoch: e + 1,
            train_loss: loss / n,
            train_accuracy_online: correct as f64 / n,
            test_loss,
            test_accuracy,
            seconds,
        });
    }
    let (test_loss, test_accuracy, infer_tally) = evaluate(&chip_net, &split.test, cfg.threads);
    let trained = chip_net.export(net);
    Ok(report::build(
        cfg,
        split,
        mapping,
        &trained,
        epochs,
        test_loss,
        test_accuracy,
        train_tally,
        infer_tally,
    ))
}

/// Actions of the retrograde (credit) phase: their energy share is "retrograde traffic".
pub const RETRO_ACTIONS: [Action; 4] = [
    Action::RetroSop,
    Action::RetroPacket,
    Action::CreditAccumulate,
    Action::LutRead,
];
