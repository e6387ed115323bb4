//! The run report: accuracy, the exact ledger, energy and modelled time per sample for training
//! and inference, the NeuroBench block and the mapping — as a stable JSON document and a
//! readable terminal table.

use super::engine::{Tally, Workload};
use super::mesh::LinkLoad;
use super::{Arith, ChipNet, ChipRule, EmuConfig, FiringMode};
use crate::chip::{Action, ChipModel};
use crate::data::Split;
use crate::ledger::energy::{EnergyBreakdown, price};
use crate::ledger::{Ledger, VarCounters, ser_vars};
use crate::mapping::Mapping;
use accord_firmware::datapath::Datapath;
use serde::Serialize;
use std::fmt::Write as _;

/// One epoch of an emulated training run.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct EpochRow {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean loss over the epoch's samples before each update.
    pub train_loss: f64,
    /// Share of training samples classified right before their update (online).
    pub train_accuracy_online: f64,
    /// Test loss after the epoch.
    pub test_loss: f64,
    /// Test accuracy after the epoch.
    pub test_accuracy: f64,
    /// Wall time of the epoch's training pass, seconds (host time, not modelled time).
    pub seconds: f64,
}

impl EpochRow {
    /// The row as a checkpoint keeps it.
    pub fn figures(&self) -> crate::checkpoint::Row {
        (
            self.epoch,
            [
                self.train_loss,
                self.train_accuracy_online,
                self.test_loss,
                self.test_accuracy,
                self.seconds,
                0.0,
            ],
        )
    }

    /// The row [`EpochRow::figures`] gave.
    pub fn from_figures(epoch: usize, v: [f64; 6]) -> Self {
        EpochRow {
            epoch,
            train_loss: v[0],
            train_accuracy_online: v[1],
            test_loss: v[2],
            test_accuracy: v[3],
            seconds: v[4],
        }
    }
}

/// The exact counts of a run.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct LedgerBlock {
    /// Training samples processed.
    pub train_samples: u64,
    /// Inference samples processed (the final test evaluation).
    pub inference_samples: u64,
    /// Counts over all training samples (fire + credit + plasticity), memory bits included.
    pub training: Ledger,
    /// Counts over the final test evaluation (fire only).
    pub inference: Ledger,
    /// Saturations, wraps, invalid inputs, rounding draws and table clamps per variable,
    /// training and inference together (and weight quantisation at load).
    #[serde(serialize_with = "ser_vars")]
    pub format_events: VarCounters,
    /// Retrograde messages dropped by the message threshold.
    pub dropped_messages: u64,
}

/// Energy and time of one kind of sample.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PhaseEnergy {
    /// Samples.
    pub samples: u64,
    /// Dynamic energy per sample, pJ (Σ count × price / samples).
    pub dynamic_pj_per_sample: f64,
    /// Static energy per sample, pJ (static power × cores used × modelled time), if modelled:
    /// the cores the net does not use are taken as power-gated at no cost.
    pub static_pj_per_sample: Option<f64>,
    /// The other bound: static energy per sample if every core of the chip (of every chip of
    /// a system) leaks beside the net, none power-gated, pJ.
    pub static_whole_system_pj_per_sample: Option<f64>,
    /// Modelled hardware time per sample, ns.
    pub time_ns_per_sample: f64,
    /// Share of dynamic energy spent in the retrograde phase (lut_read, retro_sop,
    /// retro_packet, credit_accumulate, and the hops of retrograde packets).
    pub retro_share: f64,
    /// The same energy and time split by phase.
    pub by_phase: PhaseSplit,
    /// Per-action pricing of the totals.
    pub breakdown: EnergyBreakdown,
}

/// Energy and time per sample by phase. Dynamic energy: the credit step's own actions
/// (table reads, retrograde walks, credit accumulates, retrograde packets and their hops, the
/// credit and δ formats' rounding draws), the plasticity phase's (weight updates, the memory
/// traffic they make, the weight format's rounding draws), and firing — the rest (forward
/// synaptic ops, somas, forward packets and hops, barriers, encoder draws). Static energy and
/// time: the firing timesteps and the learning timesteps (those that send credit or apply
/// plasticity; a layered net applies plasticity in its credit steps, so the two phases share
/// that static energy).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PhaseSplit {
    /// Firing, dynamic, pJ per sample.
    pub firing_dynamic_pj: f64,
    /// Credit, dynamic, pJ per sample.
    pub credit_dynamic_pj: f64,
    /// Plasticity, dynamic, pJ per sample.
    pub plasticity_dynamic_pj: f64,
    /// Static energy of the firing timesteps, pJ per sample (if modelled).
    pub firing_static_pj: Option<f64>,
    /// Static energy of the learning timesteps (credit and plasticity), pJ per sample.
    pub learning_static_pj: Option<f64>,
    /// Modelled time of the firing timesteps, ns per sample.
    pub firing_ns: f64,
    /// Modelled time of the learning timesteps, ns per sample.
    pub learning_ns: f64,
}

/// NeuroBench metrics, under NeuroBench's names.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct NeuroBench {
    /// Parameters and neuron-state buffers at their stored bit widths, bytes.
    pub footprint: u64,
    /// The same in bits.
    pub footprint_bits: u64,
    /// Weights and biases.
    pub parameter_count: u64,
    /// Share of zero weights after training.
    pub connection_sparsity: f64,
    /// Share of zero neuron outputs over layers, steps and inference samples (spiking read-out
    /// neurons, which integrate without spiking, are not counted).
    pub activation_sparsity: f64,
    /// The same per layer of neurons (layer 0 is the first after the inputs; `null` for a
    /// layer with no counted output, and only the first 16 layers are counted one by one).
    pub activation_sparsity_per_layer: Vec<Option<f64>>,
    /// Synaptic operations per inference sample.
    pub synaptic_operations: SynOps,
    /// Neurons whose membrane changed, per inference sample.
    pub membrane_updates: f64,
    /// Neuron updates that did work (input or a state change) and a dense engine's count
    /// (every neuron every step), per inference sample.
    pub neuron_ops: NeuronOps,
    /// NeuroBench's model execution rate, Hz: forward passes per second in the time-stepped
    /// model's own time — here timesteps per second of modelled hardware time in inference
    /// (`None` when the chip models no time, as ReckOn).
    pub model_execution_rate: Option<f64>,
}

/// NeuroBench synaptic operations per sample.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[allow(non_snake_case)]
pub struct SynOps {
    /// Every synapse every step.
    pub Dense: f64,
    /// Effective multiply-accumulates (graded inputs).
    pub Effective_MACs: f64,
    /// Effective accumulates (binary spikes).
    pub Effective_ACs: f64,
}

/// NeuroBench neuron operations per sample.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct NeuronOps {
    /// Updates that did work: neurons of a core that received input since its last step.
    pub effective: f64,
    /// Every neuron every step.
    pub dense: f64,
}

/// Biological and modelled timescales.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Timescales {
    /// Firing timesteps per training sample (`m + 1` graded, `T + m` spiking: a layered net is
    /// a pipeline).
    pub ticks_per_sample: f64,
    /// Timesteps per training sample (firing, credit and plasticity).
    pub timesteps_per_train_sample: f64,
    /// Timesteps per inference sample.
    pub timesteps_per_inference_sample: f64,
    /// Modelled latency of one inference sample, ns (the same as `inference_ns_per_sample`).
    pub inference_latency_ns: f64,
    /// Inference throughput if samples overlap in the pipeline, samples per second: one sample
    /// enters every initiation interval (1 timestep graded, `T` spiking), and each timestep
    /// lasts as long as the longest timestep measured. An estimate: link contention between
    /// overlapping samples is not simulated.
    pub pipelined_inference_per_s: f64,
    /// Barrier latency per timestep, ns.
    pub barrier_ns: f64,
    /// Retrograde steps per training sample.
    pub retro_steps_per_sample: f64,
    /// Plasticity events (weight-update phases) in the run.
    pub plasticity_events: u64,
    /// Modelled hardware time per training sample, ns.
    pub train_ns_per_sample: f64,
    /// Modelled hardware time per inference sample, ns.
    pub inference_ns_per_sample: f64,
}

/// What the chip model contributes to the report.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ChipSummary {
    /// Name.
    pub name: String,
    /// File.
    pub origin: String,
    /// Process and operating point.
    pub process: String,
    /// Primitives the chip lacks and runs by emulation, with the note from the chip file.
    pub emulated: Vec<(String, String)>,
    /// Actions with no price (left out of the totals).
    pub unpriced: Vec<String>,
    /// Evidence grade of each priced action.
    pub grades: Vec<(String, String)>,
    /// Static power per core, mW, if modelled.
    pub static_mw_per_core: Option<f64>,
    /// The prices already hold the static power (all-in): the dynamic energy is a total.
    pub static_in_prices: bool,
    /// Formats in use (after overrides).
    pub formats: Vec<(String, String)>,
    /// The price set in force.
    pub price_set: String,
    /// What measured silicon says of this chip model's prices: the recorded errors of
    /// `accord calibrate` for exactly this model (by its fingerprint), if any.
    pub calibration: crate::chip::calibration::Coverage,
}

/// The configuration as reported.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct RunSummary {
    /// Dataset sizes.
    pub train_samples: usize,
    /// Test samples.
    pub test_samples: usize,
    /// Network sizes.
    pub sizes: Vec<usize>,
    /// Hidden activation.
    pub activation: String,
    /// Loss.
    pub loss: String,
    /// Learning rate.
    pub lr: f64,
    /// Epochs.
    pub epochs: usize,
    /// Seed.
    pub seed: u64,
    /// Firing mode.
    pub mode: FiringMode,
    /// Arithmetic.
    pub arith: Arith,
    /// Threads.
    pub threads: usize,
    /// Message threshold.
    pub message_threshold: f64,
    /// Learning rule.
    pub rule: super::ChipRule,
}

/// The mesh's view of a phase: router cycles, waits, drops and the busiest links.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct MeshPhase {
    /// Router cycles over the phase.
    pub cycles: u64,
    /// Cycles packets waited at full buffers or queues.
    pub stall_cycles: u64,
    /// Packets dropped at full router buffers.
    pub link_drops: u64,
    /// Packets dropped at full core input queues.
    pub queue_drops: u64,
    /// Packets a core handled early because its queue filled under `stall`.
    pub early_drains: u64,
    /// Partial sums of split fan-ins (dendrite segment to soma core), among the forward
    /// packets.
    pub partial_packets: u64,
    /// `δ`s of split fan-ins (soma core to its segments), among the retrograde packets.
    pub segment_delta_packets: u64,
    /// Links that carried traffic.
    pub links_used: usize,
    /// The busiest links (at most 8), by packets.
    pub busiest: Vec<LinkLoad>,
}

/// Mesh statistics of training and inference.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct MeshBlock {
    /// Over all training samples.
    pub training: MeshPhase,
    /// Over the final test evaluation.
    pub inference: MeshPhase,
}

/// An emulated run's report. The JSON top level is stable: `test_accuracy`, `test_loss`,
/// `epochs`, `config`, `chip`, `mapping`, `ledger`, `energy`, `neurobench`, `timescales`,
/// `mesh`.
#[derive(Clone, Debug, Serialize)]
pub struct EmuReport {
    /// Final test accuracy.
    pub test_accuracy: f64,
    /// Final test loss.
    pub test_loss: f64,
    /// Per-epoch rows.
    pub epochs: Vec<EpochRow>,
    /// The run.
    pub config: RunSummary,
    /// The chip.
    pub chip: ChipSummary,
    /// The placement.
    pub mapping: Mapping,
    /// Exact counts.
    pub ledger: LedgerBlock,
    /// Energy and time per sample.
    pub energy: EnergyBlock,
    /// NeuroBench metrics (inference).
    pub neurobench: NeuroBench,
    /// Timescales.
    pub timescales: Timescales,
    /// Router statistics.
    pub mesh: MeshBlock,
    /// Caveats of this run's model (approximations the numbers above rest on).
    pub notes: Vec<String>,
    /// How the run ended (`status`: completed, diverged or interrupted; where it stopped).
    #[serde(flatten)]
    pub outcome: crate::train::RunStatus,
}

/// Energy for training and inference.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct EnergyBlock {
    /// Per training sample (fire + credit + plasticity).
    pub training: PhaseEnergy,
    /// Per inference sample (fire).
    pub inference: PhaseEnergy,
}

/// Complete a ledger: add the random draws of stochastic rounding (counted per format by the
/// firmware) to the `rng_draw` count. Every other count, memory bits included, was made where
/// the primitive executed.
pub fn finalize_ledger(t: &Tally) -> Ledger {
    let mut l = t.ledger;
    l.add(Action::RngDraw, t.vars.rng_draws());
    l
}

pub(crate) fn phase_energy(l: &Ledger, t: &Tally, chip: &ChipModel, cores: usize) -> PhaseEnergy {
    let b = price(l, chip);
    let n = t.work.samples.max(1) as f64;
    let time_ns = t.time_ps as f64 / 1000.0;
    // Static energy per sample of `cores` cores over `ns` of modelled time (mW × ns = pJ).
    let static_over = |cores: f64, ns: f64| {
        chip.static_power
            .as_ref()
            .map(|s| s.mw_per_core * cores * ns / n)
    };
    let used = cores as f64;
    // Retrograde traffic: the credit phase's own counts, priced like the rest, with the
    // rounding draws of the formats it writes (credit, δ); plasticity's likewise (weights).
    let v = &t.vars;
    let mut retro_l = t.retro;
    retro_l.add(Action::RngDraw, v.credit.rng_draws + v.delta.rng_draws);
    let mut plast_l = t.plasticity;
    plast_l.add(Action::RngDraw, v.weight.rng_draws);
    let retro = price(&retro_l, chip).dynamic_pj;
    let plast = price(&plast_l, chip).dynamic_pj;
    let learning_ns = t.learning_time_ps as f64 / 1000.0;
    let by_phase = PhaseSplit {
        firing_dynamic_pj: (b.dynamic_pj - retro - plast) / n,
        credit_dynamic_pj: retro / n,
        plasticity_dynamic_pj: plast / n,
        firing_static_pj: static_over(used, time_ns - learning_ns),
        learning_static_pj: static_over(used, learning_ns),
        firing_ns: (time_ns - learning_ns) / n,
        learning_ns: learning_ns / n,
    };
    PhaseEnergy {
        samples: t.work.samples,
        dynamic_pj_per_sample: b.dynamic_pj / n,
        static_pj_per_sample: static_over(used, time_ns),
        static_whole_system_pj_per_sample: static_over(chip.grid().cores() as f64, time_ns),
        time_ns_per_sample: time_ns / n,
        retro_share: if b.dynamic_pj > 0.0 {
            retro / b.dynamic_pj
        } else {
            0.0
        },
        by_phase,
        breakdown: b,
    }
}

fn mesh_phase(t: &Tally, links: Vec<LinkLoad>) -> MeshPhase {
    MeshPhase {
        cycles: t.mesh.cycles,
        stall_cycles: t.mesh.stall_cycles,
        link_drops: t.mesh.link_drops,
        queue_drops: t.mesh.queue_drops,
        early_drains: t.early_drains,
        partial_packets: t.partial_packets,
        segment_delta_packets: t.segment_delta_packets,
        links_used: links.len(),
        busiest: links.into_iter().take(8).collect(),
    }
}

fn per_sample(x: u64, w: &Workload) -> f64 {
    x as f64 / w.samples.max(1) as f64
}

/// Assemble the report.
#[allow(clippy::too_many_arguments)]
pub(crate) fn build<D: Datapath>(
    cfg: &EmuConfig,
    split: &Split,
    mapping: &Mapping,
    net: &ChipNet<D>,
    epochs: Vec<EpochRow>,
    (test_loss, test_accuracy): (f64, f64),
    (train, infer): (Tally, Tally),
    (train_links, infer_links): (Vec<LinkLoad>, Vec<LinkLoad>),
    outcome: crate::train::RunStatus,
) -> EmuReport {
    let chip = &cfg.chip;
    let train_l = finalize_ledger(&train);
    let infer_l = finalize_ledger(&infer);
    let cores = mapping.cores_used();
    let mut vars = train.vars.clone();
    vars.merge(&infer.vars);
    let sizes = net.sizes().to_vec();
    let mut neurobench = neurobench(cfg, mapping, net, &infer.work);
    let energy = EnergyBlock {
        training: phase_energy(&train_l, &train, chip, cores),
        inference: phase_energy(&infer_l, &infer, chip, cores),
    };
    let timescales = timescales(cfg, net, &train, &infer, &energy);
    neurobench.model_execution_rate = (timescales.inference_ns_per_sample > 0.0).then(|| {
        timescales.timesteps_per_inference_sample / (timescales.inference_ns_per_sample * 1e-9)
    });
    let mesh_block = MeshBlock {
        training: mesh_phase(&train, train_links),
        inference: mesh_phase(&infer, infer_links),
    };
    let mut notes = notes(cfg, net, &train, &infer, &mesh_block);
    for lp in &mapping.layers {
        if let Some(w) = &lp.shared {
            notes.push(format!(
                "SHARING: layer {}: {} (core.weight_sharing); the footprint counts the kernels, \
                 while every synaptic operation, its weight read and its energy are counted as \
                 for the expanded layer",
                lp.layer,
                w.describe()
            ));
        }
    }
    let built: Vec<String> = mapping
        .layers
        .iter()
        .filter(|lp| lp.compartments > 1)
        .map(|lp| format!("layer {}'s of {}", lp.layer, lp.compartments))
        .collect();
    if chip.core.accumulator == crate::chip::AccumulateSpec::PerAdd && !built.is_empty() {
        notes.push(format!(
            "COMPARTMENTS: neurons built of compartments joined in the dendrite ({}); the chip's \
             per-add accumulator is applied to each neuron's whole sum, as one accumulator \
             would: a compartment whose own partial sum would saturate before the join is not \
             modelled",
            built.join(", ")
        ));
    }
    EmuReport {
        notes,
        outcome,
        test_accuracy,
        test_loss,
        epochs,
        config: RunSummary {
            train_samples: split.train.len(),
            test_samples: split.test.len(),
            sizes: sizes.clone(),
            activation: cfg.activation.name().to_string(),
            loss: cfg.loss.name().to_string(),
            lr: cfg.lr,
            epochs: cfg.epochs,
            seed: cfg.seed,
            mode: cfg.mode,
            arith: cfg.arith,
            threads: cfg.threads,
            message_threshold: cfg.message_threshold,
            rule: cfg.rule,
        },
        chip: chip_summary(chip),
        mapping: mapping.clone(),
        ledger: LedgerBlock {
            train_samples: train.work.samples,
            inference_samples: infer.work.samples,
            training: train_l,
            inference: infer_l,
            format_events: vars,
            dropped_messages: train.dropped_messages + infer.dropped_messages,
        },
        energy,
        neurobench,
        timescales,
        mesh: mesh_block,
    }
}

/// NeuroBench's figures of the inference phase: footprint (weights, a comparison rule's second
/// matrix or a mirror chip's mirror, biases, neuron state, tables), sparsities, operations.
fn neurobench<D: Datapath>(
    cfg: &EmuConfig,
    mapping: &Mapping,
    net: &ChipNet<D>,
    w: &Workload,
) -> NeuroBench {
    let chip = &cfg.chip;
    let f = &chip.formats;
    let sizes = net.sizes().to_vec();
    let (n_weights, zeros) = net.weight_stats();
    let n_bias: u64 = sizes[1..].iter().map(|&n| n as u64).sum();
    let neurons = n_bias;
    let state_bits = f.membrane.bits as u64 + f.rate.bits as u64 + f.credit.bits as u64;
    // A comparison rule keeps a second matrix (Wᵀ or B) of every synaptic layer above the
    // first; a mirror chip a mirror of every learnable synapse while it trains.
    let m = sizes.len() - 1;
    let second: u64 = if cfg.rule != ChipRule::Balance {
        (1..m).map(|l| sizes[l] as u64 * sizes[l + 1] as u64).sum()
    } else if chip.mirror_rows() && cfg.epochs > 0 {
        n_weights
    } else {
        0
    };
    // Tables: each core of a layer holds its balance table, and its activation table for a
    // tabulated f.
    let smooth = matches!(
        cfg.activation,
        crate::rule::Activation::Sigmoid | crate::rule::Activation::Tanh
    ) && matches!(cfg.mode, FiringMode::Graded);
    let table_bits: u64 = mapping.layers[1..]
        .iter()
        .enumerate()
        .map(|(l, lp)| {
            let hidden = l + 1 < m || cfg.loss == crate::rule::Loss::Mse;
            let act = if smooth && hidden {
                chip.activation_table
                    .map_or(0, |t| u64::from(t.entries) * u64::from(f.rate.bits))
            } else {
                0
            };
            lp.chunks.len() as u64
                * (u64::from(chip.balance_table.entries) * u64::from(f.lut.bits) + act)
        })
        .sum();
    // The footprint is what the chip stores: a duplicated input's two slots, and a shared
    // convolution's kernels (once per channel on each core) in place of its rows.
    let slots = mapping
        .layers
        .iter()
        .fold(net.weight_slots(), |acc, lp| match lp.shared {
            Some(w) => acc - net.layer_weight_slots(lp.layer) + w.stored as u64,
            None => acc,
        });
    let footprint_bits =
        (slots + second + n_bias) * f.weight.bits as u64 + neurons * state_bits + table_bits;
    let layer_count = mapping.layers.len().saturating_sub(1);
    NeuroBench {
        footprint: footprint_bits.div_ceil(8),
        footprint_bits,
        parameter_count: n_weights + n_bias,
        connection_sparsity: zeros as f64 / n_weights.max(1) as f64,
        activation_sparsity: w.zero_activations as f64 / w.activations.max(1) as f64,
        activation_sparsity_per_layer: (0..layer_count.min(w.layer_activations.len()))
            .map(|l| {
                let n = w.layer_activations[l];
                (n > 0).then(|| w.layer_zero_activations[l] as f64 / n as f64)
            })
            .collect(),
        synaptic_operations: SynOps {
            Dense: per_sample(w.dense_synops, w),
            Effective_MACs: per_sample(w.effective_macs, w),
            Effective_ACs: per_sample(w.effective_acs, w),
        },
        membrane_updates: per_sample(w.membrane_updates, w),
        neuron_ops: NeuronOps {
            effective: per_sample(w.neuron_ops, w),
            dense: per_sample(w.neuron_dense_ops, w),
        },
        model_execution_rate: None,
    }
}

/// Timesteps, latency and throughput per sample.
fn timescales<D: Datapath>(
    cfg: &EmuConfig,
    net: &ChipNet<D>,
    train: &Tally,
    infer: &Tally,
    energy: &EnergyBlock,
) -> Timescales {
    let ts = train.work.samples.max(1) as f64;
    let is = infer.work.samples.max(1) as f64;
    let (fire_steps, _) = net.timesteps();
    let ii = match cfg.mode {
        FiringMode::Graded => 1.0,
        FiringMode::Spiking { ticks, .. } => f64::from(ticks.max(1)),
    };
    let period_s = ii * infer.max_step_ps as f64 * 1e-12;
    Timescales {
        ticks_per_sample: fire_steps as f64,
        timesteps_per_train_sample: train.timesteps as f64 / ts,
        timesteps_per_inference_sample: infer.timesteps as f64 / is,
        inference_latency_ns: energy.inference.time_ns_per_sample,
        pipelined_inference_per_s: if period_s > 0.0 { 1.0 / period_s } else { 0.0 },
        barrier_ns: net.engine.barrier_ps() as f64 / 1000.0,
        retro_steps_per_sample: train.retro_steps as f64 / ts,
        plasticity_events: train.plasticity_events,
        train_ns_per_sample: energy.training.time_ns_per_sample,
        inference_ns_per_sample: energy.inference.time_ns_per_sample,
    }
}

/// The chip's name, origin, emulations, unpriced actions, price grades, static power, formats.
fn chip_summary(chip: &crate::chip::ChipModel) -> ChipSummary {
    let f = &chip.formats;
    ChipSummary {
        name: chip.name.clone(),
        origin: chip.origin.clone(),
        process: chip.process.clone(),
        emulated: chip
            .emulations
            .iter()
            .filter(|(a, _)| chip.missing.contains(a))
            .map(|(a, e)| (a.name().to_string(), e.note.clone()))
            .collect(),
        unpriced: chip
            .unpriced()
            .iter()
            .map(|a| a.name().to_string())
            .collect(),
        grades: chip
            .prices
            .iter()
            .filter(|(_, p)| p.energy_pj.is_some())
            .map(|(a, p)| (a.name().to_string(), p.grade.name().to_string()))
            .collect(),
        static_mw_per_core: chip.static_power.as_ref().map(|s| s.mw_per_core),
        static_in_prices: chip.static_in_prices,
        formats: f
            .entries()
            .iter()
            .map(|(n, fm)| (n.to_string(), crate::chip::format_summary(fm)))
            .collect(),
        price_set: chip.price_set.clone(),
        calibration: crate::chip::calibration::coverage(chip),
    }
}

/// What a reader must know to read the figures: approximations, lower bounds, clamps, drops.
fn notes<D: Datapath>(
    cfg: &EmuConfig,
    net: &ChipNet<D>,
    train: &Tally,
    infer: &Tally,
    mesh_block: &MeshBlock,
) -> Vec<String> {
    let chip = &cfg.chip;
    let smooth = matches!(
        cfg.activation,
        crate::rule::Activation::Sigmoid | crate::rule::Activation::Tanh
    ) && matches!(cfg.mode, FiringMode::Graded);
    let mut notes = Vec::new();
    if !chip.core.graded_events && train.partial_packets + infer.partial_packets > 0 {
        notes.push(
            "SPLIT: this chip sends binary spikes only, yet split fan-ins send each partial sum \
             as one graded packet (a modelling device); rate-coding it would take several \
             packets, so the partial-sum packets and their energy are a lower bound"
                .to_owned(),
        );
    }
    for f in net.crossbar() {
        notes.push(format!(
            "CROSSBAR: layer {}'s weights fitted to {} axon types with binary connections and one \
             weight per neuron and type: {}",
            f.layer,
            chip.core.axon_types.unwrap_or(0),
            f.describe()
        ));
    }
    if !chip.core.graded_events && train.ledger.get(Action::RetroPacket) > 0 {
        notes.push(format!(
            "chip '{}' has binary spikes only: a retrograde message (and the credit it carries into the \
             presynaptic neuron) would be rate-coded over several spikes; accord charges one retro_packet, \
             one credit_accumulate and the retro_sops of one graded message, so the retrograde phase's packets, \
             credit accumulation and retrograde synaptic ops are lower bounds",
            chip.name
        ));
    }
    // (The balance table's slope matters only where the rule runs: a training run.)
    if let (FiringMode::Spiking { .. }, true) = (cfg.mode, cfg.epochs > 0) {
        let soma = match chip.soma {
            crate::chip::SomaSpec::If => None,
            crate::chip::SomaSpec::Lif { .. } => Some("leaky integrate-and-fire"),
            crate::chip::SomaSpec::CubaLif { .. } => {
                Some("current-based LIF with reset to zero (Loihi)")
            }
        };
        if cfg.activation != crate::rule::Activation::HardSigmoid {
            notes.push(format!(
                "spiking mode: the neurons' rate realises roughly clip(u, 0, 1), while the balance table holds the \
                 derivative of {}; use the hard-sigmoid activation for g = f'",
                cfg.activation
            ));
        }
        if let Some(s) = soma {
            notes.push(format!(
                "spiking mode on a {s} soma: its rate is not exactly clip(u, 0, 1), so the balance table's g = f' \
                 of hard-sigmoid is an approximation of the neuron's true slope"
            ));
        }
    }
    if cfg.arith == Arith::Fixed
        && smooth
        && let Some(t) = &chip.activation_table
    {
        notes.push(format!(
            "graded {} neurons read their rate from the chip's {}-entry activation table over [{}, {}] \
             (activation_read, counted and priced)",
            cfg.activation, t.entries, t.input_min, t.input_max
        ));
    }
    if chip.mirror_rows() && cfg.epochs > 0 {
        notes.push(format!(
            "chip '{}' emulates the retrograde walk with mirror rows: every synapse update is written twice \
             (counted as two weight_updates) and the mirror is in the footprint; the mapping does not reserve \
             the mirror's synapse memory",
            chip.name
        ));
    }
    notes.extend(run_notes(train, infer, mesh_block));
    notes
}

/// What happened to values and packets in the run: clamps, time overflow, drops.
fn run_notes(train: &Tally, infer: &Tally, mesh_block: &MeshBlock) -> Vec<String> {
    let mut notes = Vec::new();
    let left: Vec<String> = [
        ("weights", train.vars.weight.saturations),
        ("credits", train.vars.credit.saturations),
        ("messages δ", train.vars.delta.saturations),
        ("net inputs", train.vars.membrane.saturations),
    ]
    .iter()
    .filter(|(_, n)| *n > 0)
    .map(|(what, n)| format!("{what} {n} times"))
    .collect();
    if !left.is_empty() {
        notes.push(format!(
            "RANGE: during training values left their formats' ranges and were clamped ({}); \
             the run learned with clamped values (see the format events; widen the format or \
             lower the learning rate)",
            left.join(", ")
        ));
    }
    for (phase, t) in [("training", train), ("inference", infer)] {
        if t.time_ps == u64::MAX {
            notes.push(format!(
                "OVERFLOW: the modelled {phase} time reached 2^64 ps (213 days) and stopped there: its time, latency and static energy are lower bounds (check the chip's latency_ns prices)"
            ));
        }
    }
    if mesh_block.training.link_drops + mesh_block.training.queue_drops > 0
        || mesh_block.inference.link_drops + mesh_block.inference.queue_drops > 0
    {
        notes.push(format!(
            "the mesh dropped packets (router.overflow = \"drop\"): training {} at links, {} at queues; inference {} at \
             links, {} at queues — the results include their loss",
            mesh_block.training.link_drops,
            mesh_block.training.queue_drops,
            mesh_block.inference.link_drops,
            mesh_block.inference.queue_drops
        ));
    }
    notes
}

/// What measured silicon says of the chip's prices, in one line.
fn calibration_line(chip: &ChipSummary) -> String {
    use crate::chip::calibration::Coverage;
    let set = &chip.price_set;
    match &chip.calibration {
        Coverage::Covered { rows } => {
            let pct = |x: f64| format!("{:+.0} %", 100.0 * x);
            let parts: Vec<String> = rows
                .iter()
                .map(|r| {
                    let mut p = Vec::new();
                    if let (Some(fig), Some(e)) = (&r.energy_figure, r.energy_error) {
                        p.push(format!("{fig} energy {}", pct(e)));
                    }
                    if let Some(e) = r.latency_error {
                        p.push(format!("time {}", pct(e)));
                    }
                    if let Some(e) = r.throughput_error {
                        p.push(format!("throughput {}", pct(e)));
                    }
                    if p.is_empty() {
                        p.push("no comparable figure".into());
                    }
                    format!("{} {}", r.workload, p.join(", "))
                })
                .collect();
            format!(
                "calibration against measured silicon (accord calibrate, recorded): price set '{set}' — {}",
                parts.join("; ")
            )
        }
        Coverage::Other { recorded_sets } => format!(
            "calibration: recorded for chip '{}' under price set(s) {} of the shipped file, not for this model as configured (an edited file or a --set changes it): its errors do not apply here",
            chip.name,
            recorded_sets.join(", ")
        ),
        Coverage::NoWorkload => format!(
            "calibration: no measured workload runs on chip '{}' (hw_models/calibration/)",
            chip.name
        ),
        Coverage::Unreadable { reason } => format!("calibration: not read ({reason})"),
    }
}

fn fmt_pj(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.3} µJ", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.3} nJ", x / 1e3)
    } else {
        format!("{x:.3} pJ")
    }
}

impl std::fmt::Display for EmuReport {
    /// The readable terminal report ([`EmuReport::render`]).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render())
    }
}

impl EmuReport {
    /// The readable terminal report.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let c = &self.config;
        let sizes: Vec<String> = c
            .sizes
            .iter()
            .enumerate()
            .map(|(l, x)| {
                let rec = self.mapping.layers.get(l).is_some_and(|lp| lp.recurrent);
                format!("{x}{}", if rec { " (recurrent)" } else { "" })
            })
            .collect();
        let mode = match c.mode {
            FiringMode::Graded => "graded".to_string(),
            FiringMode::Spiking { ticks, encoding } => {
                format!("spiking T={ticks} ({encoding:?} inputs)")
            }
        };
        let _ = writeln!(
            s,
            "accord train on chip '{}' ({}): {:?} rule, net {} {} + linear out, loss {}, lr {}, {} arithmetic, {} mode, {} threads, seed {}",
            self.chip.name,
            self.chip.process,
            c.rule,
            sizes.join("-"),
            c.activation,
            c.loss,
            c.lr,
            match c.arith {
                Arith::Fixed => "fixed-point",
                Arith::Float => "float-twin",
            },
            mode,
            c.threads,
            c.seed
        );
        s.push('\n');
        let _ = crate::train::write_epoch_table(
            &mut s,
            true,
            self.epochs.iter().map(|e| {
                (
                    e.epoch,
                    e.train_loss,
                    e.train_accuracy_online,
                    e.test_loss,
                    e.test_accuracy,
                    e.seconds,
                )
            }),
        );
        if self.outcome.status != crate::train::Status::Completed {
            let _ = writeln!(s, "status: {}", self.outcome.describe());
        }
        let _ = writeln!(s, "final test accuracy {:.2}%", 100.0 * self.test_accuracy);
        self.render_energy(&mut s);
        self.render_format_events(&mut s);
        self.render_neurobench(&mut s);
        self.render_timing(&mut s);
        let _ = writeln!(s, "\n{}", self.mapping.describe());
        for n in &self.notes {
            let _ = writeln!(s, "note: {n}");
        }
        s
    }

    /// The ledger and energy per sample, priced action by action, and static energy.
    fn render_energy(&self, s: &mut String) {
        let tr = &self.energy.training;
        let inf = &self.energy.inference;
        let _ = writeln!(
            s,
            "\nLedger and energy per sample (training = fire + credit + plasticity; inference = fire)"
        );
        let _ = writeln!(
            s,
            "{:<22} {:>14} {:>14} {:>11} {:>13} {:>13}  charge",
            "action", "train/sample", "infer/sample", "pJ each", "train pJ", "infer pJ"
        );
        let nt = tr.samples.max(1) as f64;
        let ni = inf.samples.max(1) as f64;
        for (rt, ri) in tr.breakdown.actions.iter().zip(&inf.breakdown.actions) {
            if rt.count == 0 && ri.count == 0 {
                continue;
            }
            let charge = match &rt.charge {
                crate::ledger::energy::ChargeKind::Priced => rt.grade.unwrap_or("").to_string(),
                crate::ledger::energy::ChargeKind::Emulated { via } => {
                    format!("emulated via {}", via.join("+"))
                }
                crate::ledger::energy::ChargeKind::Included { by } => format!("included in {by}"),
                crate::ledger::energy::ChargeKind::Unpriced => "UNPRICED".to_string(),
                crate::ledger::energy::ChargeKind::Missing => "MISSING".to_string(),
            };
            let _ = writeln!(
                s,
                "{:<22} {:>14.1} {:>14.1} {:>11} {:>13.1} {:>13.1}  {}",
                rt.action,
                rt.count as f64 / nt,
                ri.count as f64 / ni,
                rt.pj_each.map_or("-".to_string(), |p| format!("{p:.4}")),
                rt.pj_total / nt,
                ri.pj_total / ni,
                charge
            );
        }
        let _ = writeln!(
            s,
            "dynamic energy per sample: training {}, inference {}",
            fmt_pj(tr.dynamic_pj_per_sample),
            fmt_pj(inf.dynamic_pj_per_sample)
        );
        if let (Some(a), Some(b)) = (tr.static_pj_per_sample, inf.static_pj_per_sample) {
            let _ = writeln!(
                s,
                "static energy per sample:  training {}, inference {} (the {} cores the net uses; the others power-gated at no cost)",
                fmt_pj(a),
                fmt_pj(b),
                self.mapping.cores_used()
            );
            let _ = writeln!(
                s,
                "  if the whole system leaked beside it (no power gating): training {}, inference {}",
                fmt_pj(tr.static_whole_system_pj_per_sample.unwrap_or(0.0)),
                fmt_pj(inf.static_whole_system_pj_per_sample.unwrap_or(0.0))
            );
        } else {
            let _ = writeln!(
                s,
                "static energy: {} price set '{}'",
                if self.chip.static_in_prices {
                    "inside the all-in prices (the energy above is total energy) of"
                } else {
                    "not modelled by"
                },
                self.chip.price_set
            );
        }
        let _ = writeln!(
            s,
            "modelled time per sample: training {:.1} ns, inference {:.1} ns; retrograde share of training energy {:.1}%",
            tr.time_ns_per_sample,
            inf.time_ns_per_sample,
            100.0 * tr.retro_share
        );
        if tr.samples > 0 {
            let p = &tr.by_phase;
            let stat = |x: Option<f64>| x.map_or_else(|| "not modelled".to_string(), fmt_pj);
            let _ = writeln!(
                s,
                "training energy by phase, per sample: dynamic — firing {}, credit {}, plasticity {}; static — firing timesteps {} ({:.1} ns), credit and plasticity timesteps {} ({:.1} ns)",
                fmt_pj(p.firing_dynamic_pj),
                fmt_pj(p.credit_dynamic_pj),
                fmt_pj(p.plasticity_dynamic_pj),
                stat(p.firing_static_pj),
                p.firing_ns,
                stat(p.learning_static_pj),
                p.learning_ns,
            );
        }
        let _ = writeln!(s, "{}", calibration_line(&self.chip));
        if !tr.breakdown.unpriced.is_empty() || !inf.breakdown.unpriced.is_empty() {
            let mut u: Vec<&str> = tr
                .breakdown
                .unpriced
                .iter()
                .chain(&inf.breakdown.unpriced)
                .copied()
                .collect();
            u.sort();
            u.dedup();
            let _ = writeln!(
                s,
                "UNPRICED (counted, left out of the totals): {}",
                u.join(", ")
            );
        }
        for (a, note) in &self.chip.emulated {
            let _ = writeln!(s, "emulated: {a} — {note}");
        }
    }

    /// Format events per format, and dropped retrograde messages.
    fn render_format_events(&self, s: &mut String) {
        let ev = &self.ledger.format_events;
        let _ = writeln!(
            s,
            "\nFormat events (saturations / wraps / invalid / rounding draws / table clamps):"
        );
        for (name, c) in ev.entries() {
            let _ = writeln!(
                s,
                "  {:<12} {:>10} {:>8} {:>8} {:>12} {:>10}",
                name, c.saturations, c.wraps, c.invalid, c.rng_draws, c.lut_clamps
            );
        }
        let _ = writeln!(
            s,
            "  dropped retrograde messages: {}",
            self.ledger.dropped_messages
        );
    }

    /// NeuroBench's figures.
    fn render_neurobench(&self, s: &mut String) {
        let nb = &self.neurobench;
        let _ = writeln!(s, "\nNeuroBench (inference, per sample)");
        let _ = writeln!(
            s,
            "  footprint {} B ({} bits) | parameters {} | connection sparsity {:.4} | activation sparsity {:.4}",
            nb.footprint,
            nb.footprint_bits,
            nb.parameter_count,
            nb.connection_sparsity,
            nb.activation_sparsity
        );
        let _ = writeln!(
            s,
            "  SynOps Dense {:.0} | Effective_MACs {:.0} | Effective_ACs {:.0} | membrane updates {:.0} | neuron ops {:.0} (dense {:.0})",
            nb.synaptic_operations.Dense,
            nb.synaptic_operations.Effective_MACs,
            nb.synaptic_operations.Effective_ACs,
            nb.membrane_updates,
            nb.neuron_ops.effective,
            nb.neuron_ops.dense
        );
        let per_layer: Vec<String> = nb
            .activation_sparsity_per_layer
            .iter()
            .enumerate()
            .map(|(l, x)| match x {
                Some(x) => format!("layer {} {x:.4}", l + 1),
                None => format!("layer {} —", l + 1),
            })
            .collect();
        if !per_layer.is_empty() {
            let _ = writeln!(
                s,
                "  activation sparsity by layer: {}",
                per_layer.join(" | ")
            );
        }
        let _ = writeln!(
            s,
            "  model execution rate: {}",
            nb.model_execution_rate.map_or_else(
                || "— (the chip models no time)".to_string(),
                |r| format!("{r:.0} Hz (timesteps per second of modelled time)")
            )
        );
    }

    /// Timescales and the mesh's traffic per phase.
    fn render_timing(&self, s: &mut String) {
        let ts = &self.timescales;
        let _ = writeln!(
            s,
            "\nTimescales: {:.0} firing timesteps ({:.0} per training sample with credit and plasticity), {:.1} retrograde steps per training sample, {} plasticity events",
            ts.ticks_per_sample,
            ts.timesteps_per_train_sample,
            ts.retro_steps_per_sample,
            ts.plasticity_events
        );
        let _ = writeln!(
            s,
            "modelled inference latency {:.1} ns ({:.0} timesteps, barrier {:.0} ns each); pipelined throughput {:.0} samples/s (estimate)",
            ts.inference_latency_ns,
            ts.timesteps_per_inference_sample,
            ts.barrier_ns,
            ts.pipelined_inference_per_s
        );
        for (phase, m) in [
            ("training", &self.mesh.training),
            ("inference", &self.mesh.inference),
        ] {
            let _ = writeln!(
                s,
                "mesh ({phase}): {} router cycles, {} stall cycles, {} link drops, {} queue drops, {} early drains, {} links used{}",
                m.cycles,
                m.stall_cycles,
                m.link_drops,
                m.queue_drops,
                m.early_drains,
                m.links_used,
                if m.partial_packets > 0 {
                    format!(
                        ", split fan-ins: {} partial sums, {} δ to segments",
                        m.partial_packets, m.segment_delta_packets
                    )
                } else {
                    String::new()
                }
            );
            for l in m.busiest.iter().take(3) {
                let _ = writeln!(
                    s,
                    "  busiest: router ({},{}) {} port{}: {} packets, max {} per timestep, mean {:.1}, {} stall cycles, {} drops",
                    l.x,
                    l.y,
                    l.port,
                    if l.interchip { " (between chips)" } else { "" },
                    l.packets,
                    l.max_per_timestep,
                    l.mean_per_timestep,
                    l.stall_cycles,
                    l.drops
                );
            }
        }
    }
}
