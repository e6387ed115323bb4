//! All-to-all (recurrent) networks on a chip: firing and credit both relax to equilibrium as
//! rounds of timesteps on the same engine, cores and mesh as a layered net.
//!
//! Placement: the net's [graph](crate::graph) is one group projecting onto itself, placed by
//! [`crate::mapping::map_graph`] as every layer is: neurons `0..N` in even contiguous chunks
//! along the mesh's snake, each chunk as large as the core's neuron count, synapse memory
//! (`k × N` incoming synapses) and fan-out allow; every core needs `N` input axons, and every
//! neuron sends to every core. Inputs are relays (the host writes their rates); the other
//! neurons are two populations, hidden and output. The cores are built by the same builder as
//! a layered net's (`layered.rs`'s `Layout`: the group is a recurrent layer 0 holding its
//! relays); only the schedule below is this module's.
//!
//! * **Firing** — a first timestep in which only the relays send, then one graded firing step
//!   per round: each core walks the rows of the packets that arrived (the rates of the previous
//!   round), updates its free neurons and sends the new rates. A round whose largest change is
//!   within the tolerance ends the relaxation; the packets that round sent are discarded.
//! * **Credit** — each round the host clamps the outputs' external credit; every core takes
//!   the credit that arrived (`c = clamp + Σ m`), reads `g(u)` for every neuron holding credit,
//!   aggregates `m_j = Σ_i w_ij δ_i` over its rows for every non-input axon and sends one
//!   retrograde packet per (axon, core) with a non-zero message. The same tolerance rule ends
//!   it; `δ` of the last round matches the settled credit.
//! * **Plasticity** — one timestep: `w_ij += η δ_i r_j` on existing synapses, with `r_j` the
//!   last rate each core received from neuron `j` (the event-driven trace: within the firing
//!   tolerance of the settled rate).
//!
//! In fixed point a relaxation can dither by one LSB or by one step of the activation table, so
//! the tolerance is raised to twice the larger of the two.

use super::error::{EmuError, Result};
use crate::error::Invalid;
use accord_firmware::datapath::Datapath;
use accord_firmware::handlers::CreditMode;

use super::build::{self, PopSpec};
use super::engine::{Cmd, CoreBox, Engine, Tally};
use super::layered::{FiringMode, Layout, NetSpec, WeightSource};
use crate::chip::ChipModel;
use crate::ledger::VarCounters;
use crate::rule::{Activation, GeneralNet, Loss, argmax};

/// An all-to-all network placed on a chip.
#[derive(Clone, Debug)]
pub struct AllToAllChipNet<D: Datapath> {
    engine: Engine<D>,
    n: usize,
    n_in: usize,
    n_out: usize,
    /// `(start, len)` per engine core.
    chunks: Vec<(usize, usize)>,
    loss: Loss,
}

/// No feed-forward synapses: an all-to-all group's are its loop's ([`Layout::fill_group`]).
struct LoopOnly;

impl WeightSource for LoopOnly {
    fn weights(&self, _: &mut dyn FnMut(usize, usize, usize, f64)) {}
    fn bias(&self, _: usize, _: usize) -> f64 {
        0.0
    }
}

/// The placement of `net` on `chip` (its graph's one group, [`crate::mapping::map_graph`]).
///
/// # Errors
/// A net the chip cannot hold ([`EmuError::Map`]).
pub fn place(net: &GeneralNet, chip: &ChipModel) -> Result<crate::mapping::Mapping> {
    let map = |source| EmuError::Map {
        sizes: vec![net.n],
        chip: chip.name.clone(),
        source,
    };
    let graph = crate::graph::Graph::of_general(net)
        .map_err(|e| map(crate::mapping::MapError::Graph(e)))?;
    crate::mapping::map_graph(&graph, chip, crate::mapping::MapOptions::default()).map_err(map)
}

/// How a relaxation on the chip ended: rounds taken and whether it met the tolerance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rounds {
    /// Rounds taken.
    pub rounds: usize,
    /// Whether the last round changed nothing by more than the tolerance.
    pub converged: bool,
}

impl<D: Datapath> AllToAllChipNet<D> {
    /// Place `net` on `chip`.
    ///
    /// # Errors
    /// If a core cannot take the `N` input axons, or the chunks need more cores than the mesh.
    pub fn new(
        dp: D,
        net: &GeneralNet,
        chip: &ChipModel,
        loss: Loss,
        vars: &mut VarCounters,
    ) -> Result<Self> {
        let n = net.n;
        if net.output_act == Activation::Identity {
            // A linear read-out lives in the membrane format; in an all-to-all net the outputs
            // are also presynaptic, and synapses take rates in the rate format.
            return Err(Invalid::new(
                "output_act",
                " identity: all-to-all nets on a chip need bounded output neurons (e.g. sigmoid): \
                 linear outputs feed back into the network but are read out in the membrane format",
            )
            .into());
        }
        let m = place(net, chip)?;
        // The cores as every net's are built: one per chunk of the group, the loop's rows
        // and the group's biases filled from the net.
        let lay = Layout::all_to_all(&m, n, net.n_in, net.n_out);
        let spec = NetSpec {
            sizes: &[n],
            acts: &[net.hidden_act, net.output_act],
            weights: &LoopOnly,
            masks: &[],
            recurrent: &[],
            feedback: None,
            mapping: &m,
            mode: FiringMode::Graded,
            loss,
            rule: super::ChipRule::Balance,
            threads: 1,
            training: true,
        };
        let mut cores: Vec<CoreBox<D>> = lay.cores(&spec, chip);
        lay.fill_group(&dp, net, &mut cores, vars);
        let chunks = lay.group_chunks();
        Ok(AllToAllChipNet {
            engine: Engine::new(dp, cores, chip, 1),
            n,
            n_in: net.n_in,
            n_out: net.n_out,
            chunks,
            loss,
        })
    }

    /// Cores used.
    pub fn cores_used(&self) -> usize {
        self.chunks.len()
    }

    fn all(&self, cmd: Cmd) -> Vec<(u32, Cmd)> {
        (0..self.chunks.len()).map(|k| (k as u32, cmd)).collect()
    }

    /// Output values (real).
    pub fn outputs(&self) -> Vec<f64> {
        let dp = &*self.engine.dp;
        (self.n - self.n_out..self.n)
            .map(|i| {
                let k = self.chunks.partition_point(|&(s, _)| s <= i) - 1;
                let (s, _) = self.chunks[k];
                dp.out_value(self.engine.cores[k].neurons[i - s].r, 1)
            })
            .collect()
    }

    /// Firing relaxation from rest with the inputs clamped to `x`.
    pub fn fire(
        &mut self,
        x: &[f64],
        tol: f64,
        max_rounds: usize,
        step: u64,
        t: &mut Tally,
    ) -> Rounds {
        self.engine.reset_sample();
        let dp = std::sync::Arc::clone(&self.engine.dp);
        for (k, &(s, len)) in self.chunks.iter().enumerate() {
            let core = &mut self.engine.cores[k];
            for i in 0..len {
                if s + i < self.n_in {
                    let r = dp.rate_in(x.get(s + i).copied().unwrap_or(0.0), &mut core.vars);
                    core.set_rate(i, r);
                }
            }
        }
        let first = self.all(Cmd::Inputs);
        self.engine.timestep(&first, step, false);
        let round_cmds = self.all(Cmd::Graded);
        self.relax(tol, max_rounds, t, |net| {
            net.engine.timestep(&round_cmds, step, false).fire_change
        })
    }

    /// Rounds of `round` (which returns the round's largest change) until a change within
    /// `tol` or `max_rounds`; the traffic still in flight is discarded, the tally kept.
    fn relax(
        &mut self,
        tol: f64,
        max_rounds: usize,
        t: &mut Tally,
        mut round: impl FnMut(&mut Self) -> f64,
    ) -> Rounds {
        let mut result = Rounds {
            rounds: max_rounds,
            converged: false,
        };
        for k in 1..=max_rounds {
            if round(self) <= tol {
                result = Rounds {
                    rounds: k,
                    converged: true,
                };
                break;
            }
        }
        self.engine.clear_traffic();
        t.merge(&self.engine.take_tally());
        result
    }

    /// Credit relaxation with the output clamp injected every round (Almeida–Pineda).
    pub fn credit(
        &mut self,
        label: usize,
        tol: f64,
        max_rounds: usize,
        step: u64,
        t: &mut Tally,
    ) -> Rounds {
        let out = self.outputs();
        let mut ext = vec![0.0; self.n_out];
        self.loss.output_credit(&out, label, &mut ext);
        let dp = std::sync::Arc::clone(&self.engine.dp);
        let cmds = self.all(Cmd::Credit {
            mode: CreditMode::Retrograde,
            finish_copy: false,
            plasticity: false,
        });
        self.relax(tol, max_rounds, t, |net| {
            for (o, &e) in ext.iter().enumerate() {
                let i = net.n - net.n_out + o;
                let k = net.chunks.partition_point(|&(s, _)| s <= i) - 1;
                let s = net.chunks[k].0;
                let core = &mut net.engine.cores[k];
                let c = dp.credit_in(e, &mut core.vars);
                if !D::is_zero(c) {
                    core.clamp(i - s, c);
                }
            }
            net.engine.timestep(&cmds, step, false).credit_change
        })
    }

    /// Plasticity: `w_ij += η δ_i r_j` on existing synapses with `δ_i ≠ 0`, `r_j ≠ 0`.
    pub fn plasticity(&mut self, step: u64, t: &mut Tally) {
        let cmds = self.all(Cmd::Plasticity);
        self.engine.timestep(&cmds, step, true);
        self.engine.tally.plasticity_events += 1;
        t.merge(&self.engine.take_tally());
    }

    /// The weights as a real matrix (row-major `N × N`, `w[i * N + j]`).
    pub fn weights(&self) -> Vec<f64> {
        let n = self.n;
        let dp = &*self.engine.dp;
        let mut out = vec![0.0; n * n];
        for (k, &(s, len)) in self.chunks.iter().enumerate() {
            let rows = self.engine.cores[k].rows();
            for j in 0..n {
                for i in 0..len {
                    out[(s + i) * n + j] = dp.weight_out(rows[j * len + i]);
                }
            }
        }
        out
    }

    /// Predicted class after a firing relaxation.
    pub fn predict(&self) -> usize {
        argmax(&self.outputs())
    }
}

/// An all-to-all training run on a chip.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AllToAllRun {
    /// Chip.
    pub chip: String,
    /// Arithmetic.
    pub arith: super::Arith,
    /// Cores used.
    pub cores: usize,
    /// Learning rate.
    pub lr: f64,
    /// Test accuracy after each epoch.
    pub test_accuracy: Vec<f64>,
    /// Samples whose firing relaxation hit the cap (their update skipped).
    pub fire_failures: usize,
    /// Samples whose credit relaxation hit the cap (their update skipped).
    pub credit_failures: usize,
    /// Mean firing rounds per training sample.
    pub mean_fire_rounds: f64,
    /// Mean credit rounds per training sample.
    pub mean_credit_rounds: f64,
    /// Firing rounds over all training samples, and the most any sample took.
    pub fire_rounds: (usize, usize),
    /// Credit rounds over all training samples, and the most any sample took.
    pub credit_rounds: (usize, usize),
    /// Tolerances used (firing, credit), real units.
    pub tolerances: (f64, f64),
    /// Training ledger, priced.
    pub training: super::PhaseEnergy,
    /// Inference ledger (final test evaluation), priced.
    pub inference: super::PhaseEnergy,
    /// Format events.
    #[serde(serialize_with = "crate::ledger::ser_vars")]
    pub format_events: VarCounters,
    /// The trained weights (real values, row-major `N × N`).
    #[serde(skip)]
    pub weights: Vec<f64>,
}

/// How an all-to-all net trains on a chip: rate, epochs, seed (sample order as in
/// [`crate::train::epoch_order`]), and the relaxations' tolerances and round caps (firing,
/// credit) as in the `f64` recipe.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    /// Learning rate.
    pub lr: f64,
    /// Epochs (0: evaluate only).
    pub epochs: usize,
    /// Seed of the sample order and the random streams.
    pub seed: u64,
    /// Tolerances (firing, credit), real units.
    pub tol: (f64, f64),
    /// Round caps (firing, credit).
    pub max_rounds: (usize, usize),
}

/// Train the all-to-all net `net` on `chip` by `schedule`, the tolerance raised in fixed point
/// to twice the rate format's LSB or activation-table step (firing) and twice the credit
/// format's LSB (credit).
///
/// # Errors
/// If the chip cannot train, the net does not fit, or a format cannot hold the learning rate.
pub fn train_on_chip(
    chip: &ChipModel,
    arith: super::Arith,
    net: &GeneralNet,
    loss: Loss,
    split: &crate::data::Split,
    schedule: Schedule,
) -> Result<AllToAllRun> {
    let Schedule {
        lr,
        epochs,
        seed,
        tol,
        ..
    } = schedule;
    chip.require(&chip.required_actions(epochs > 0))?;
    if !chip.core.graded_events {
        return Err(Invalid::new(
            "chip",
            format!(
                " '{}' has no graded events: all-to-all relaxation on a chip needs them",
                chip.name
            ),
        )
        .into());
    }
    let pops = vec![
        PopSpec {
            act: net.hidden_act,
            balance: net.balance.clone(),
            readout: false,
            soma: None,
        },
        PopSpec {
            act: net.output_act,
            balance: net.balance.clone(),
            readout: false,
            soma: None,
        },
    ];
    let mut vars = VarCounters::default();
    let rule = super::ChipRule::Balance;
    match arith {
        super::Arith::Fixed => {
            let f = &chip.formats;
            macro_rules! go {
                ($ty:ty) => {{
                    build::check_activation_table(chip, &pops)?;
                    let dp: $ty = build::fixed(chip, &pops, lr, 0.0, rule, seed, &mut vars)?;
                    // A fixed-point relaxation can dither by one LSB, or by one table step.
                    let table = dp.transfer_resolution(0).max(dp.transfer_resolution(1));
                    let tol = (
                        tol.0.max(2.0 * f.rate.lsb()).max(2.0 * table),
                        tol.1.max(2.0 * f.credit.lsb()),
                    );
                    let cn = AllToAllChipNet::new(dp, net, chip, loss, &mut vars)?;
                    drive_all_to_all(chip, arith, cn, split, Schedule { tol, ..schedule }, vars)
                }};
            }
            if build::narrow_fits(chip) {
                go!(super::FixedNarrow)
            } else {
                go!(super::FixedWide)
            }
        }
        super::Arith::Float => {
            let fpops = pops
                .into_iter()
                .map(|p| super::FloatPop {
                    act: p.act,
                    balance: p.balance,
                    readout: false,
                    soma: None,
                })
                .collect();
            let dp = super::FloatPath::new(fpops, lr, 0.0, build::soma(chip), seed);
            let cn = AllToAllChipNet::new(dp, net, chip, loss, &mut vars)?;
            drive_all_to_all(chip, arith, cn, split, schedule, vars)
        }
    }
}

fn drive_all_to_all<D>(
    chip: &ChipModel,
    arith: super::Arith,
    mut cn: AllToAllChipNet<D>,
    split: &crate::data::Split,
    schedule: Schedule,
    setup: VarCounters,
) -> Result<AllToAllRun>
where
    D: Datapath + Clone,
{
    let Schedule {
        lr,
        epochs,
        seed,
        tol,
        max_rounds,
    } = schedule;
    let mut train = Tally::default();
    train.vars.merge(&setup);
    let (mut fire_fail, mut credit_fail, mut fire_rounds, mut credit_rounds, mut samples) =
        (0, 0, 0, 0, 0);
    let (mut fire_max, mut credit_max) = (0, 0);
    let mut test_accuracy = Vec::new();
    let mut infer = Tally::default();
    let evaluate = |cn: &mut AllToAllChipNet<D>, t: &mut Tally| {
        let mut correct = 0usize;
        for k in 0..split.test.len() {
            cn.fire(split.test.row(k), tol.0, max_rounds.0, k as u64, t);
            t.work.samples += 1;
            correct += usize::from(cn.predict() == split.test.labels[k]);
        }
        correct as f64 / split.test.len().max(1) as f64
    };
    for ep in crate::train::epochs(split.train.len(), seed, (0, 0), epochs) {
        let e = ep.index;
        for (k, idx) in ep.samples() {
            let step = ((e as u64 + 1) << 32) | k as u64;
            let f = cn.fire(split.train.row(idx), tol.0, max_rounds.0, step, &mut train);
            train.work.samples += 1;
            samples += 1;
            fire_rounds += f.rounds;
            fire_max = fire_max.max(f.rounds);
            if !f.converged {
                fire_fail += 1;
                continue;
            }
            let c = cn.credit(
                split.train.labels[idx],
                tol.1,
                max_rounds.1,
                step,
                &mut train,
            );
            credit_rounds += c.rounds;
            credit_max = credit_max.max(c.rounds);
            if !c.converged {
                credit_fail += 1;
                continue;
            }
            cn.plasticity(step, &mut train);
        }
        let mut scratch = Tally::default();
        test_accuracy.push(evaluate(&mut cn, &mut scratch));
    }
    let acc = evaluate(&mut cn, &mut infer);
    if epochs == 0 {
        test_accuracy.push(acc);
    }
    let cores = cn.cores_used();
    let phase = |t: &Tally| super::report::phase_energy(&super::finalize_ledger(t), t, chip, cores);
    let mut format_events = train.vars.clone();
    format_events.merge(&infer.vars);
    Ok(AllToAllRun {
        chip: chip.name.clone(),
        arith,
        cores,
        lr,
        test_accuracy,
        fire_failures: fire_fail,
        credit_failures: credit_fail,
        mean_fire_rounds: fire_rounds as f64 / samples.max(1) as f64,
        mean_credit_rounds: credit_rounds as f64 / (samples - fire_fail).max(1) as f64,
        fire_rounds: (fire_rounds, fire_max),
        credit_rounds: (credit_rounds, credit_max),
        tolerances: tol,
        training: phase(&train),
        inference: phase(&infer),
        format_events,
        weights: cn.weights(),
    })
}
