//! All-to-all (recurrent) networks on a chip: firing and credit both relax to equilibrium as
//! rounds of graded events, in the chip's formats (or the float twin), every event counted.
//!
//! Placement: neurons `0..N` in contiguous chunks, one chunk per core, each chunk as large as the
//! core's neuron count, synapse memory (`k × N` incoming synapses) and fan-out allow; every core
//! needs `N` input axons. One firing round: every active neuron sends one packet per core, each
//! core walks the arriving axons' synapse rows and updates its free (non-input) neurons. One
//! credit round: the host injects the output clamp, each neuron holding credit reads its balance
//! table, each core aggregates `m_j = Σ_i w_ij δ_i` over its rows for every non-input `j` and
//! sends one retrograde packet per (axon, core) with a non-zero message. A round that changes no
//! value by more than the tolerance ends the relaxation; the caps end it otherwise. In fixed
//! point a relaxation can dither by one LSB or by one step of the activation table, so the
//! tolerance is raised to twice the larger of the two.

use super::datapath::Datapath;
use super::net::{Latencies, Tally, latencies};
use crate::chip::{Action, ChipModel};
use crate::ledger::VarCounters;
use crate::rule::{Activation, GeneralNet, Loss, argmax};
use anyhow::{Result, bail};

/// An all-to-all network placed on a chip.
#[derive(Clone, Debug)]
pub struct GeneralChipNet<D: Datapath + Clone> {
    dp: D,
    n: usize,
    n_in: usize,
    n_out: usize,
    hidden_act: Activation,
    output_act: Activation,
    /// `(start, len, core)` per chunk.
    chunks: Vec<(usize, usize, usize)>,
    /// Synapse rows per chunk, axon-major: `w[k][j * len + i]`; absent synapses hold 0.
    w: Vec<Vec<D::V>>,
    mask: Vec<Vec<bool>>,
    b: Vec<D::V>,
    /// Σ hops from neuron `j`'s core to every core.
    fan_hops: Vec<u64>,
    max_hops: u32,
    core_of: Vec<usize>,
    cols: usize,
    lat: Latencies,
    loss: Loss,
    r: Vec<D::V>,
    u: Vec<D::V>,
    c: Vec<D::V>,
    delta: Vec<D::V>,
}

/// How a relaxation on the chip ended: rounds taken and whether it met the tolerance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rounds {
    /// Rounds taken.
    pub rounds: usize,
    /// Whether the last round changed nothing by more than the tolerance.
    pub converged: bool,
}

fn hops(cols: usize, a: usize, b: usize) -> u32 {
    ((a % cols).abs_diff(b % cols) + (a / cols).abs_diff(b / cols)) as u32
}

impl<D: Datapath + Clone> GeneralChipNet<D> {
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
            bail!(
                "all-to-all nets on a chip need bounded output neurons (e.g. sigmoid): linear outputs feed back \
                 into the network but are read out in the membrane format"
            );
        }
        let caps = &chip.core;
        if (caps.input_axons as usize) < n {
            bail!(
                "an all-to-all net of {n} neurons needs {n} input axons per core; a {} core has {} (over by {})",
                chip.name,
                caps.input_axons,
                n - caps.input_axons as usize
            );
        }
        let by_synapses = caps.synapses as usize / n;
        let cores_needed = |k: usize| n.div_ceil(k.max(1));
        let mut k = (caps.neurons as usize).min(by_synapses).min(n);
        // Fan-out: every neuron of a chunk needs one routing entry per core.
        while k > 0 && k * cores_needed(k) > caps.fanout as usize {
            k -= 1;
        }
        if k == 0 {
            bail!(
                "chip '{}' cannot hold any neuron of an all-to-all net of {n}: synapse memory fits {by_synapses} \
                 neurons' rows, fan-out {} entries",
                chip.name,
                caps.fanout
            );
        }
        let count = cores_needed(k);
        if count as u64 > chip.mesh.cores() {
            bail!(
                "an all-to-all net of {n} neurons needs {count} cores of {k} neurons on chip '{}', which has {} (short by {})",
                chip.name,
                chip.mesh.cores(),
                count as u64 - chip.mesh.cores()
            );
        }
        let base = n / count;
        let extra = n % count;
        let mut chunks = Vec::with_capacity(count);
        let mut start = 0;
        for core in 0..count {
            let len = base + usize::from(core < extra);
            chunks.push((start, len, core));
            start += len;
        }
        let cols = chip.mesh.cols as usize;
        let mut core_of = vec![0; n];
        for &(s, len, core) in &chunks {
            core_of[s..s + len].fill(core);
        }
        let fan_hops: Vec<u64> = (0..n)
            .map(|j| {
                chunks
                    .iter()
                    .map(|&(_, _, c)| hops(cols, core_of[j], c) as u64)
                    .sum()
            })
            .collect();
        let max_hops = chunks
            .iter()
            .flat_map(|a| chunks.iter().map(move |b| hops(cols, a.2, b.2)))
            .max()
            .unwrap_or(0);
        let mut w = Vec::with_capacity(count);
        let mut mask = Vec::with_capacity(count);
        for &(s, len, _) in &chunks {
            let mut rows = vec![D::V::default(); n * len];
            let mut m = vec![false; n * len];
            for j in 0..n {
                for i in 0..len {
                    let (post, idx) = (s + i, j * len + i);
                    if net.mask[post * n + j] {
                        rows[idx] = dp.weight_in(net.w[post * n + j], vars);
                        m[idx] = true;
                    }
                }
            }
            w.push(rows);
            mask.push(m);
        }
        let b = net.b.iter().map(|&x| dp.weight_in(x, vars)).collect();
        let z = || vec![D::V::default(); n];
        Ok(GeneralChipNet {
            dp,
            n,
            n_in: net.n_in,
            n_out: net.n_out,
            hidden_act: net.hidden_act,
            output_act: net.output_act,
            chunks,
            w,
            mask,
            b,
            fan_hops,
            max_hops,
            core_of,
            cols,
            lat: latencies(chip),
            loss,
            r: z(),
            u: z(),
            c: z(),
            delta: z(),
        })
    }

    /// Cores used.
    pub fn cores_used(&self) -> usize {
        self.chunks.len()
    }

    /// Synaptic layer index of neuron `i` for the datapath's tables: 0 hidden, 1 output.
    fn layer(&self, i: usize) -> usize {
        usize::from(i >= self.n - self.n_out)
    }

    fn act(&self, i: usize) -> Activation {
        if self.layer(i) == 1 {
            self.output_act
        } else {
            self.hidden_act
        }
    }

    /// Real value of neuron `i`'s rate (a linear read-out stays in the membrane format).
    fn rate_real(&self, i: usize) -> f64 {
        if self.layer(i) == 1 && self.output_act == Activation::Identity {
            self.dp.u_out(self.r[i])
        } else {
            self.dp.rate_out(self.r[i])
        }
    }

    /// Output rates as reals.
    pub fn outputs(&self) -> Vec<f64> {
        (self.n - self.n_out..self.n)
            .map(|i| self.rate_real(i))
            .collect()
    }

    fn barrier(&self, t: &mut Tally, busy: u64) {
        t.time_ps += busy
            + self.max_hops as u64 * self.lat[Action::Hop as usize]
            + self.lat[Action::Barrier as usize];
        t.ledger.add(Action::Barrier, 1);
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
        self.r.fill(D::V::default());
        for (j, &xj) in x.iter().enumerate() {
            self.r[j] = self.dp.rate_in(xj, &mut t.vars);
        }
        for round in 1..=max_rounds {
            let active: Vec<usize> = (0..self.n).filter(|&j| !D::is_zero(self.r[j])).collect();
            let na = active.len() as u64;
            let cores = self.chunks.len() as u64;
            t.ledger.add(Action::SpikePacket, na * cores);
            t.ledger.add(Action::TraceUpdate, na * cores);
            t.ledger
                .add(Action::Hop, active.iter().map(|&j| self.fan_hops[j]).sum());
            let mut next = self.r.clone();
            let mut busy = 0u64;
            let mut sops = 0u64;
            for (k, &(s, len, _)) in self.chunks.iter().enumerate() {
                let rows = &self.w[k];
                let mut acc = vec![D::Acc::default(); len];
                let mut core_sops = 0u64;
                for &j in &active {
                    let row = &rows[j * len..(j + 1) * len];
                    let m = &self.mask[k][j * len..(j + 1) * len];
                    for ((a, &wij), &e) in acc.iter_mut().zip(row).zip(m) {
                        if e {
                            D::mac(a, wij, self.r[j]);
                            core_sops += 1;
                        }
                    }
                }
                sops += core_sops;
                let free = (s..s + len).filter(|&i| i >= self.n_in).count() as u64;
                for (i_local, a) in acc.into_iter().enumerate() {
                    let i = s + i_local;
                    if i < self.n_in {
                        continue;
                    }
                    let key = ((i as u64) << 20 | round as u64, step);
                    let ui = self.dp.soma_u(a, self.b[i], key, &mut t.vars);
                    self.u[i] = ui;
                    next[i] = self
                        .dp
                        .transfer(ui, self.layer(i), self.act(i), key, &mut t.vars);
                }
                let update = if na > 0 {
                    Action::NeuronUpdateActive
                } else {
                    Action::NeuronUpdateIdle
                };
                t.ledger.add(update, free);
                busy = busy.max(
                    core_sops * self.lat[Action::Sop as usize] + free * self.lat[update as usize],
                );
            }
            t.ledger.add(Action::Sop, sops);
            t.work.effective_macs += sops;
            t.ticks += 1;
            let old: Vec<f64> = (self.n_in..self.n).map(|i| self.rate_real(i)).collect();
            self.r = next;
            let change = (self.n_in..self.n)
                .zip(&old)
                .map(|(i, &o)| (self.rate_real(i) - o).abs())
                .fold(0.0, f64::max);
            self.barrier(
                t,
                busy + na * cores * self.lat[Action::SpikePacket as usize],
            );
            if change <= tol {
                return Rounds {
                    rounds: round,
                    converged: true,
                };
            }
        }
        Rounds {
            rounds: max_rounds,
            converged: false,
        }
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
        let e: Vec<D::V> = ext
            .iter()
            .map(|&v| self.dp.credit_in(v, &mut t.vars))
            .collect();
        self.c.fill(D::V::default());
        for round in 1..=max_rounds {
            // δ from the current credits: one table read per free neuron holding credit.
            let mut lut = 0u64;
            for i in self.n_in..self.n {
                self.delta[i] = if D::is_zero(self.c[i]) {
                    D::V::default()
                } else {
                    lut += 1;
                    let g = self.dp.g(self.u[i], self.layer(i), &mut t.vars);
                    self.dp.delta(
                        g,
                        self.c[i],
                        ((i as u64) << 20 | round as u64, step),
                        &mut t.vars,
                    )
                };
            }
            t.ledger.add(Action::LutRead, lut);
            let mut next = vec![D::V::default(); self.n];
            for (k, &v) in e.iter().enumerate() {
                next[self.n - self.n_out + k] = v;
            }
            t.ledger.add(Action::CreditAccumulate, self.n_out as u64);
            let mut busy = lut * self.lat[Action::LutRead as usize];
            let (mut rsops, mut packets, mut hop_sum) = (0u64, 0u64, 0u64);
            for (k, &(s, len, core)) in self.chunks.iter().enumerate() {
                let nz: Vec<usize> = (0..len)
                    .filter(|&i| !D::is_zero(self.delta[s + i]))
                    .collect();
                if nz.is_empty() {
                    continue;
                }
                let rows = &self.w[k];
                let mut core_rsops = 0u64;
                let mut core_packets = 0u64;
                // Clamped inputs take no credit: only non-input axons are answered.
                for j in self.n_in..self.n {
                    let row = &rows[j * len..(j + 1) * len];
                    let m = &self.mask[k][j * len..(j + 1) * len];
                    let mut acc = D::Acc::default();
                    for &i in &nz {
                        if m[i] {
                            D::retro_mac(&mut acc, row[i], self.delta[s + i]);
                            core_rsops += 1;
                        }
                    }
                    let mj = self.dp.retro_finish(
                        acc,
                        ((j as u64) << 20 | (k as u64) << 8 | round as u64, step),
                        &mut t.vars,
                    );
                    if !D::is_zero(mj) {
                        core_packets += 1;
                        hop_sum += hops(self.cols, core, self.core_of[j]) as u64;
                        next[j] = self.dp.credit_add(next[j], mj, &mut t.vars);
                    }
                }
                rsops += core_rsops;
                packets += core_packets;
                busy = busy.max(
                    core_rsops * self.lat[Action::RetroSop as usize]
                        + core_packets
                            * (self.lat[Action::RetroPacket as usize]
                                + self.lat[Action::CreditAccumulate as usize]),
                );
            }
            t.ledger.add(Action::RetroSop, rsops);
            t.ledger.add(Action::RetroPacket, packets);
            t.ledger.add(Action::CreditAccumulate, packets);
            t.ledger.add(Action::Hop, hop_sum);
            t.retro_hops += hop_sum;
            t.retro_steps += 1;
            let change = (self.n_in..self.n)
                .map(|i| (self.dp.credit_out(next[i]) - self.dp.credit_out(self.c[i])).abs())
                .fold(0.0, f64::max);
            self.c = next;
            self.barrier(t, busy);
            if change <= tol {
                // δ consistent with the settled credits, for plasticity.
                for i in self.n_in..self.n {
                    self.delta[i] = if D::is_zero(self.c[i]) {
                        D::V::default()
                    } else {
                        let g = self.dp.g(self.u[i], self.layer(i), &mut t.vars);
                        self.dp.delta(
                            g,
                            self.c[i],
                            ((i as u64) << 20, step ^ 1 << 63),
                            &mut t.vars,
                        )
                    };
                }
                t.ledger.add(
                    Action::LutRead,
                    (self.n_in..self.n)
                        .filter(|&i| !D::is_zero(self.c[i]))
                        .count() as u64,
                );
                return Rounds {
                    rounds: round,
                    converged: true,
                };
            }
        }
        Rounds {
            rounds: max_rounds,
            converged: false,
        }
    }

    /// Plasticity: `w_ij += η δ_i r_j` on existing synapses with `δ_i ≠ 0`, `r_j ≠ 0`.
    pub fn plasticity(&mut self, step: u64, t: &mut Tally) {
        let active: Vec<usize> = (0..self.n).filter(|&j| !D::is_zero(self.r[j])).collect();
        let (mut updates, mut busy) = (0u64, 0u64);
        for (k, &(s, len, _)) in self.chunks.iter().enumerate() {
            let mut core_updates = 0u64;
            for i_local in 0..len {
                let i = s + i_local;
                let d = self.delta[i];
                if i < self.n_in || D::is_zero(d) {
                    continue;
                }
                for &j in &active {
                    let idx = j * len + i_local;
                    if self.mask[k][idx] {
                        let key = ((i as u64) << 32 | j as u64, step);
                        self.w[k][idx] =
                            self.dp
                                .weight_update(self.w[k][idx], d, self.r[j], key, &mut t.vars);
                        core_updates += 1;
                    }
                }
                self.b[i] = self
                    .dp
                    .bias_update(self.b[i], d, (i as u64, step), &mut t.vars);
                core_updates += 1;
            }
            updates += core_updates;
            busy = busy.max(core_updates * self.lat[Action::WeightUpdate as usize]);
        }
        t.ledger.add(Action::WeightUpdate, updates);
        t.plasticity_events += 1;
        self.barrier(t, busy);
    }

    /// The weights as a real matrix (row-major `N × N`, `w[i * N + j]`).
    pub fn weights(&self) -> Vec<f64> {
        let n = self.n;
        let mut out = vec![0.0; n * n];
        for (k, &(s, len, _)) in self.chunks.iter().enumerate() {
            for j in 0..n {
                for i in 0..len {
                    out[(s + i) * n + j] = self.dp.weight_out(self.w[k][j * len + i]);
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
    pub format_events: VarCounters,
    /// The trained weights (real values, row-major `N × N`).
    #[serde(skip)]
    pub weights: Vec<f64>,
}

/// Train the all-to-all net `net` on `chip` for `epochs` epochs at rate `lr` (sample order as
/// in [`crate::train::epoch_order`] with `seed`); `tol`/`max_rounds` as in the f64 recipe, the
/// tolerance raised in fixed point to twice the rate format's LSB or activation-table step
/// (firing) and twice the credit format's LSB (credit).
///
/// # Errors
/// If the chip cannot train, the net does not fit, or a format cannot hold the learning rate.
#[allow(clippy::too_many_arguments)]
pub fn train_on_chip(
    chip: &ChipModel,
    arith: super::Arith,
    net: &GeneralNet,
    loss: Loss,
    split: &crate::data::Split,
    lr: f64,
    epochs: usize,
    seed: u64,
    tol: (f64, f64),
    max_rounds: (usize, usize),
) -> Result<AllToAllRun> {
    chip.require(&chip.required_actions(epochs > 0))?;
    if !chip.core.graded_events {
        bail!(
            "chip '{}' has no graded events: all-to-all relaxation on a chip needs them",
            chip.name
        );
    }
    let acts = vec![net.hidden_act, net.output_act];
    let bal = vec![net.balance.clone(), net.balance.clone()];
    let mut vars = VarCounters::default();
    match arith {
        super::Arith::Fixed => {
            let f = &chip.formats;
            let dp = super::FixedPath::new(chip, &acts, &bal, lr, 0.0, seed, &mut vars)?;
            // A fixed-point relaxation can dither by one LSB, or by one activation-table step.
            let table = dp.transfer_resolution(0).max(dp.transfer_resolution(1));
            let tol = (
                tol.0.max(2.0 * f.rate.lsb()).max(2.0 * table),
                tol.1.max(2.0 * f.credit.lsb()),
            );
            let cn = GeneralChipNet::new(dp, net, chip, loss, &mut vars)?;
            drive_general(
                chip, arith, cn, split, lr, epochs, seed, tol, max_rounds, vars,
            )
        }
        super::Arith::Float => {
            let dp = super::FloatPath::new(acts, bal, lr, 0.0);
            let cn = GeneralChipNet::new(dp, net, chip, loss, &mut vars)?;
            drive_general(
                chip, arith, cn, split, lr, epochs, seed, tol, max_rounds, vars,
            )
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn drive_general<D: Datapath + Clone>(
    chip: &ChipModel,
    arith: super::Arith,
    mut cn: GeneralChipNet<D>,
    split: &crate::data::Split,
    lr: f64,
    epochs: usize,
    seed: u64,
    tol: (f64, f64),
    max_rounds: (usize, usize),
    setup: VarCounters,
) -> Result<AllToAllRun> {
    let mut train = Tally::default();
    train.vars.merge(&setup);
    let (mut fire_fail, mut credit_fail, mut fire_rounds, mut credit_rounds, mut samples) =
        (0, 0, 0, 0, 0);
    let (mut fire_max, mut credit_max) = (0, 0);
    let mut test_accuracy = Vec::new();
    let mut infer = Tally::default();
    let evaluate = |cn: &mut GeneralChipNet<D>, t: &mut Tally| {
        let mut correct = 0usize;
        for k in 0..split.test.len() {
            cn.fire(split.test.row(k), tol.0, max_rounds.0, k as u64, t);
            t.work.samples += 1;
            correct += usize::from(cn.predict() == split.test.labels[k]);
        }
        correct as f64 / split.test.len().max(1) as f64
    };
    for e in 0..epochs {
        for (k, &idx) in crate::train::epoch_order(split.train.len(), seed, e)
            .iter()
            .enumerate()
        {
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
    let f = &chip.formats;
    let cores = cn.cores_used();
    let phase =
        |t: &Tally| super::report::phase_energy(&super::finalize_ledger(t, f), t, chip, cores);
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
