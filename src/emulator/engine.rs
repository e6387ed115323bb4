//! The engine: the chip's cores running the firmware handlers, the mesh carrying their packets,
//! and time advancing in barrier-synchronised timesteps (ARCHITECTURE.md §4).
//!
//! A timestep has three parts:
//!
//! 1. **compute** — every core with a command drains its input queue (the packets delivered in
//!    the previous timestep) through [`Core::arrive`] and runs its command (fire, tick, credit,
//!    plasticity). Cores touch only their own state, so a large step spreads its cores over
//!    threads (`crossbeam` scoped workers, cores dealt by estimated work); the results do not
//!    depend on which thread ran which core.
//! 2. **exchange** — the host expands each core's outbox through its routing tables (core order,
//!    then emission order) and puts the payloads into the destination cores' input queues in
//!    that order; the [`Mesh`] routes the same packets link by link for the exchange's cycles,
//!    stalls and drops (on a router thread of its own when there are several threads, while the
//!    next timestep's cores step; it may run up to [`MAX_LAG`] timesteps or [`MAX_INFLIGHT`]
//!    packets behind). Under `drop` only the packets the mesh delivers are queued. A queue full
//!    at the chip's depth is drained then and there, as the core would while the mesh stalls.
//! 3. **barrier** — modelled time advances by the busiest core, plus the exchange's router
//!    cycles, plus the time full queues took to drain early, plus the barrier (which may grow
//!    with the cores taking part).
//!
//! The host never computes neuron or synapse state: it writes inputs and output clamps (the
//! chip's I/O), issues commands, delivers packets and advances time.

use std::collections::VecDeque;
use std::sync::Arc;

use accord_firmware::datapath::{Datapath, Vars};
use accord_firmware::handlers::{
    AxonIds, Bits, CopyLayout, Core, CoreMem, CreditMode, Layout, Neuron, Op, Ops, Outbox, Packet,
    PopRange, QUEUE_CAPACITY, RowBound, Rows, Status,
};
use accord_firmware::queue::{EventQueue, EventQueueView};
use bitvec::prelude::*;

use super::mesh::{ExchangeCounts, LinkLoad, Mesh};
use super::router::{Job, JobResult, Packets, RouterHost};
use crate::chip::{Action, ChipModel, OverflowPolicy};
use crate::ledger::{Ledger, N_ACTIONS};

/// Latency of each action in integer picoseconds (0 where the chip gives none). Integer time
/// keeps sums exact and independent of the order samples are merged in.
pub(super) type Latencies = [u64; N_ACTIONS];

/// Latencies of every action on `chip` (0 where unknown).
pub(crate) fn latencies(chip: &ChipModel) -> Latencies {
    let mut lat = [0u64; N_ACTIONS];
    for a in Action::ALL {
        let ns = chip.latency_ns(a).unwrap_or(0.0);
        // Chip files bound latencies (finite, non-negative); the cast saturates beyond u64.
        lat[a as usize] = (ns * 1000.0).round() as u64;
    }
    lat
}

/// The host action a firmware op is counted as.
pub(crate) const fn action_of(op: Op) -> Action {
    match op {
        Op::Sop => Action::Sop,
        Op::RetroSop => Action::RetroSop,
        Op::TraceUpdate => Action::TraceUpdate,
        Op::NeuronUpdateActive => Action::NeuronUpdateActive,
        Op::NeuronUpdateIdle => Action::NeuronUpdateIdle,
        Op::LutRead => Action::LutRead,
        Op::ActivationRead => Action::ActivationRead,
        Op::CreditAccumulate => Action::CreditAccumulate,
        Op::WeightUpdate => Action::WeightUpdate,
        Op::RngDraw => Action::RngDraw,
        Op::SynapseMemReadBit => Action::SynapseMemReadBit,
        Op::SynapseMemWriteBit => Action::SynapseMemWriteBit,
        Op::NeuronMemReadBit => Action::NeuronMemReadBit,
        Op::NeuronMemWriteBit => Action::NeuronMemWriteBit,
    }
}

/// NeuroBench workload counts accumulated over samples.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Workload {
    /// Samples.
    pub samples: u64,
    /// Dense synaptic operations (every synapse every step).
    pub dense_synops: u64,
    /// Effective synaptic operations with graded (non-binary) inputs: MACs.
    pub effective_macs: u64,
    /// Effective synaptic operations with binary (spike) inputs: ACs.
    pub effective_acs: u64,
    /// Neuron outputs that were zero (over layers, steps and samples).
    pub zero_activations: u64,
    /// Neuron outputs counted.
    pub activations: u64,
    /// Neuron state updates that changed the membrane.
    pub membrane_updates: u64,
    /// Neuron updates that did work: the active updates, those of a core that received input
    /// since its last soma step (the firmware does not tell its neurons apart; so this equals
    /// `membrane_updates`). A visit to a core's neurons without input is charged as the chip
    /// charges it but is not an effective operation.
    pub neuron_ops: u64,
    /// Neuron updates a dense engine would perform (every neuron every step: active + idle).
    pub neuron_dense_ops: u64,
    /// `activations` by layer (datapath population), the first
    /// [`STATUS_POPS`](accord_firmware::handlers::STATUS_POPS). Not kept in checkpoints: it
    /// describes inference, which a resumed run evaluates afresh.
    pub layer_activations: [u64; accord_firmware::handlers::STATUS_POPS],
    /// `zero_activations` by layer, likewise.
    pub layer_zero_activations: [u64; accord_firmware::handlers::STATUS_POPS],
}

impl Workload {
    /// Add another workload.
    pub fn merge(&mut self, o: &Workload) {
        self.samples += o.samples;
        self.dense_synops += o.dense_synops;
        self.effective_macs += o.effective_macs;
        self.effective_acs += o.effective_acs;
        self.zero_activations += o.zero_activations;
        self.activations += o.activations;
        self.membrane_updates += o.membrane_updates;
        self.neuron_ops += o.neuron_ops;
        self.neuron_dense_ops += o.neuron_dense_ops;
        for (a, b) in self.layer_activations.iter_mut().zip(&o.layer_activations) {
            *a += b;
        }
        for (a, b) in self
            .layer_zero_activations
            .iter_mut()
            .zip(&o.layer_zero_activations)
        {
            *a += b;
        }
    }
}

/// Counts a run leaves behind: primitive actions, format events, workload, mesh events, time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tally {
    /// Primitive actions (core actions, packets and hops, barriers; encoder draws).
    pub ledger: Ledger,
    /// Format events.
    pub vars: Vars,
    /// NeuroBench workload.
    pub work: Workload,
    /// Retrograde messages dropped by the message threshold.
    pub dropped_messages: u64,
    /// Modelled hardware time, ps.
    pub time_ps: u64,
    /// Timesteps (every barrier-synchronised step: firing, credit, plasticity).
    pub timesteps: u64,
    /// Firing timesteps (graded layer steps, spiking ticks, relaxation rounds).
    pub ticks: u64,
    /// Retrograde timesteps.
    pub retro_steps: u64,
    /// Plasticity events (per sample that updated weights).
    pub plasticity_events: u64,
    /// Router hops (inside and between chips) of retrograde packets.
    pub retro_hops: u64,
    /// The mesh's counts (cycles, stalls, drops).
    pub mesh: ExchangeCounts,
    /// Packets handled early because a core's queue filled under `stall`.
    pub early_drains: u64,
    /// The credit phase's share of the ledger: its core actions (credit accumulates, table
    /// reads, retrograde walks, their memory bits), its packets and their hops.
    pub retro: Ledger,
    /// The longest timestep, ps.
    pub max_step_ps: u64,
    /// Of the forward packets, partial sums of split fan-ins (dendrite segment to home core).
    pub partial_packets: u64,
    /// Of the retrograde packets, `δ`s of split fan-ins (soma core to its segments).
    pub segment_delta_packets: u64,
    /// The plasticity phase's share of the ledger: weight updates and the memory reads and
    /// writes they make.
    pub plasticity: Ledger,
    /// Modelled time of the learning timesteps (those that send credit or apply plasticity),
    /// ps.
    pub learning_time_ps: u64,
}

impl Tally {
    /// Add another tally.
    pub fn merge(&mut self, o: &Tally) {
        self.ledger.merge(&o.ledger);
        self.vars.merge(&o.vars);
        self.work.merge(&o.work);
        self.dropped_messages += o.dropped_messages;
        self.time_ps = self.time_ps.saturating_add(o.time_ps);
        self.timesteps += o.timesteps;
        self.ticks += o.ticks;
        self.retro_steps += o.retro_steps;
        self.plasticity_events += o.plasticity_events;
        self.retro_hops += o.retro_hops;
        self.mesh.merge(&o.mesh);
        self.early_drains += o.early_drains;
        self.partial_packets += o.partial_packets;
        self.segment_delta_packets += o.segment_delta_packets;
        self.retro.merge(&o.retro);
        self.max_step_ps = self.max_step_ps.max(o.max_step_ps);
        self.plasticity.merge(&o.plasticity);
        self.learning_time_ps = self.learning_time_ps.saturating_add(o.learning_time_ps);
    }

    /// Every count as one word list, in a fixed order (for checkpoints; [`Tally::from_words`]
    /// reads it back).
    pub fn to_words(&self) -> Vec<u64> {
        let mut w: Vec<u64> = Action::ALL.iter().map(|&a| self.ledger.get(a)).collect();
        for (_, c) in self.vars.entries() {
            w.extend([
                c.saturations,
                c.wraps,
                c.invalid,
                c.rng_draws,
                c.lut_clamps,
                c.queue_drops,
            ]);
        }
        let k = &self.work;
        w.extend([
            k.samples,
            k.dense_synops,
            k.effective_macs,
            k.effective_acs,
            k.zero_activations,
            k.activations,
            k.membrane_updates,
            k.neuron_ops,
            k.neuron_dense_ops,
        ]);
        w.extend([
            self.dropped_messages,
            self.time_ps,
            self.timesteps,
            self.ticks,
            self.retro_steps,
            self.plasticity_events,
            self.retro_hops,
        ]);
        let m = &self.mesh;
        w.extend([
            m.cycles,
            m.hops,
            m.interchip_hops,
            m.retro_hops,
            m.link_drops,
            m.queue_drops,
            m.stall_cycles,
            m.max_xings,
        ]);
        w.push(self.early_drains);
        w.extend(Action::ALL.iter().map(|&a| self.retro.get(a)));
        w.push(self.max_step_ps);
        w.push(self.partial_packets);
        w.push(self.segment_delta_packets);
        w.extend(Action::ALL.iter().map(|&a| self.plasticity.get(a)));
        w.push(self.learning_time_ps);
        w
    }

    /// The tally [`Tally::to_words`] wrote, or `None` if `w` has the wrong length.
    pub fn from_words(w: &[u64]) -> Option<Tally> {
        let n = Action::ALL.len();
        if w.len() != 3 * n + 7 * 6 + 9 + 7 + 8 + 5 {
            return None;
        }
        let mut it = w.iter().copied();
        let mut next = || it.next().unwrap_or(0);
        let mut t = Tally::default();
        for &a in &Action::ALL {
            t.ledger.add(a, next());
        }
        let v = &mut t.vars;
        for c in [
            &mut v.weight,
            &mut v.membrane,
            &mut v.rate,
            &mut v.credit,
            &mut v.delta,
            &mut v.lut,
            &mut v.accumulator,
        ] {
            c.saturations = next();
            c.wraps = next();
            c.invalid = next();
            c.rng_draws = next();
            c.lut_clamps = next();
            c.queue_drops = next();
        }
        let k = &mut t.work;
        for f in [
            &mut k.samples,
            &mut k.dense_synops,
            &mut k.effective_macs,
            &mut k.effective_acs,
            &mut k.zero_activations,
            &mut k.activations,
            &mut k.membrane_updates,
            &mut k.neuron_ops,
            &mut k.neuron_dense_ops,
        ] {
            *f = next();
        }
        for f in [
            &mut t.dropped_messages,
            &mut t.time_ps,
            &mut t.timesteps,
            &mut t.ticks,
            &mut t.retro_steps,
            &mut t.plasticity_events,
            &mut t.retro_hops,
        ] {
            *f = next();
        }
        let m = &mut t.mesh;
        for f in [
            &mut m.cycles,
            &mut m.hops,
            &mut m.interchip_hops,
            &mut m.retro_hops,
            &mut m.link_drops,
            &mut m.queue_drops,
            &mut m.stall_cycles,
            &mut m.max_xings,
        ] {
            *f = next();
        }
        t.early_drains = next();
        for &a in &Action::ALL {
            t.retro.add(a, next());
        }
        t.max_step_ps = next();
        t.partial_packets = next();
        t.segment_delta_packets = next();
        for &a in &Action::ALL {
            t.plasticity.add(a, next());
        }
        t.learning_time_ps = next();
        Some(t)
    }
}

/// What an engine carries from one sample to the next besides its synapses and neurons: the
/// counts so far, the mesh's link counters, and per core the handler time taken early and not
/// yet charged. With the weights, it is everything a checkpoint needs to continue bit for bit.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EngineState {
    /// [`Tally::to_words`].
    pub tally: Vec<u64>,
    /// The mesh's link counters (`Mesh::link_words`).
    pub links: Vec<u64>,
    /// Per core, early handler time, ps.
    pub early: Vec<u64>,
}

/// Destinations of a range of a core's neurons: every neuron `start + k` of the range sends to
/// each destination core on axon `axon_base + k`.
#[derive(Clone, Debug, Default)]
pub(crate) struct FanGroup {
    pub(crate) start: u32,
    pub(crate) len: u32,
    /// `(engine core, axon of neuron start)` per destination.
    pub(crate) dests: Vec<(u32, u32)>,
}

/// A core's event buffer for one step (the host side of the firmware's [`Outbox`]).
#[derive(Clone, Debug, Default)]
pub(crate) struct CoreOut<V> {
    spikes: Vec<(u32, Option<V>)>,
    /// Retrograde messages: the axons that sent one (they come in ascending order) and their
    /// values in that order. A training timestep on small cores sends one per axon and core
    /// (half a million on a 10 M-synapse net): 8 bytes each and a bit, not 16.
    retro_axons: BitVec<usize, Lsb0>,
    retro_values: Vec<V>,
    deltas: Vec<(u32, V)>,
    partials: Vec<(u32, V)>,
    seg_deltas: Vec<(u32, V)>,
}

impl<V> Outbox<V> for CoreOut<V> {
    #[inline]
    fn spike(&mut self, neuron: u32, payload: Option<V>) {
        self.spikes.push((neuron, payload));
    }
    #[inline]
    fn retro(&mut self, axon: u32, value: V) {
        let a = axon as usize;
        // The bit set and the values pair up only in ascending axon order (one comparison
        // per message; a handler that broke it would pair values with the wrong axons).
        assert!(
            a >= self.retro_axons.len(),
            "retrograde messages out of axon order"
        );
        self.retro_axons.resize(a, false);
        self.retro_axons.push(true);
        self.retro_values.push(value);
    }
    fn reserve_retros(&mut self, n: usize) {
        self.retro_values.reserve_exact(n);
    }
    #[inline]
    fn delta(&mut self, neuron: u32, value: V) {
        self.deltas.push((neuron, value));
    }
    #[inline]
    fn partial(&mut self, neuron: u32, value: V) {
        self.partials.push((neuron, value));
    }
    #[inline]
    fn segment_delta(&mut self, neuron: u32, value: V) {
        self.seg_deltas.push((neuron, value));
    }
}

/// One core of the chip: its memory, its layout and its routing tables, owned by the host and
/// lent to the firmware handlers one step at a time.
#[derive(Clone, Debug)]
pub(crate) struct CoreBox<D: Datapath> {
    /// Position in the system grid.
    pub(crate) grid: u32,
    pub(crate) n: usize,
    pub(crate) axons: usize,
    pub(crate) gid_base: u64,
    /// What never changes: ids, populations, masks, routes (shared by the chip's copies).
    pub(crate) wire: Arc<Wiring>,
    pub(crate) bits: Bits,
    pub(crate) mirror: bool,
    pub(crate) copy: Option<CopyLayout>,
    pub(crate) neurons: Vec<Neuron<D::V, D::Acc>>,
    acc: Vec<D::Acc>,
    pub(crate) delta: Vec<D::V>,
    trace: Vec<D::V>,
    trace_count: Vec<u32>,
    /// Synapse rows, shared (read-only) between evaluation copies of the chip.
    pub(crate) rows: Arc<Vec<D::W>>,
    /// Per-row magnitude bounds, shared like the rows they describe.
    pub(crate) row_max: Arc<Vec<u32>>,
    pub(crate) copy_rows: Arc<Vec<D::W>>,
    copy_acc: Vec<D::Acc>,
    nz: Vec<u32>,
    nz_bits: BitVec<usize, Lsb0>,
    row_nz: Vec<u32>,
    queue: InQueue<Packet<D::V>>,
    pub(crate) status: Status,
    pub(crate) ops: Ops,
    mark: Ops,
    /// Ops of credit steps (drain + credit step), and their mark.
    retro_ops: Ops,
    retro_mark: Ops,
    /// Ops of plasticity, and their mark.
    plast_ops: Ops,
    plast_mark: Ops,
    pub(crate) vars: Vars,
    out: CoreOut<D::V>,
    /// Synapses of the core (for NeuroBench's dense count).
    pub(crate) syn_total: u64,
}

/// The read-only part of a core: global ids, populations, masks and routing tables. What is
/// per axon is held as runs where it can be (a core's axons come from a few contiguous ranges
/// of neurons), so that a core with thousands of rows and few neurons stays small.
#[derive(Clone, Debug, Default)]
pub(crate) struct Wiring {
    /// `(first axon, global id)` runs of the axons' presynaptic neurons ([`AxonIds`]).
    pub(crate) axon_gid: Vec<(u32, u64)>,
    pub(crate) pops: Vec<PopRange>,
    pub(crate) credit_axons: Option<BitVec<usize, Lsb0>>,
    pub(crate) mask: Option<BitVec<usize, Lsb0>>,
    /// Synapses per row; empty without a mask (then `n` each).
    pub(crate) row_syn: Vec<u32>,
    /// Spike routes.
    pub(crate) fanout: Vec<FanGroup>,
    /// Return addresses of the axons' presynaptic neurons as runs `(first axon, engine core,
    /// its local neuron)`: axon `j` of the run starting at `a` answers local neuron
    /// `neuron + (j − a)` of that core ([`Wiring::retro_to`]).
    pub(crate) retro_runs: Vec<(u32, u32, u32)>,
    /// Axons with a return address.
    pub(crate) retro_axons: u32,
    /// Comparison rules: the cores a local neuron's `δ` goes to, and the layer index of local
    /// neuron 0 there.
    pub(crate) delta_to: Option<(Vec<u32>, u32)>,
    /// Dendrite segments: the engine core holding their neurons' somas (segment `i` feeds
    /// neuron `i` there).
    pub(crate) home: Option<u32>,
    /// A soma core of a split fan-in: the engine cores of its dendrite segments (each neuron's
    /// `δ` goes to all of them).
    pub(crate) segments: Vec<u32>,
    /// Compartments per neuron.
    pub(crate) compartments: u32,
}

/// A core's input queue: the firmware's [`EventQueue`] holding at most the chip's
/// `core.input_queue` packets, its storage the next size up from 16, 64, 256, 1024 and
/// [`QUEUE_CAPACITY`] (so a 256-deep queue does not carry 4096 slots).
pub(crate) struct InQueue<T>(Box<EventQueueView<T>>);

impl<T> InQueue<T> {
    pub(crate) fn new(depth: usize) -> Self {
        const _: () = assert!(QUEUE_CAPACITY == 4096);
        let d = depth.clamp(1, QUEUE_CAPACITY);
        InQueue(match d {
            ..=16 => Box::new(EventQueue::<T, 16>::with_limit(d)),
            17..=64 => Box::new(EventQueue::<T, 64>::with_limit(d)),
            65..=256 => Box::new(EventQueue::<T, 256>::with_limit(d)),
            257..=1024 => Box::new(EventQueue::<T, 1024>::with_limit(d)),
            _ => Box::new(EventQueue::<T, QUEUE_CAPACITY>::with_limit(d)),
        })
    }
}

impl<T: Clone> Clone for InQueue<T> {
    /// The same depth and contents (the drop count is not carried: the engine never drops
    /// into a queue, it drains a full one).
    fn clone(&self) -> Self {
        let mut q = InQueue::new(self.0.capacity());
        for p in self.0.iter() {
            let _ = q.0.push(p.clone());
        }
        q
    }
}

impl<T> std::fmt::Debug for InQueue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<T> std::ops::Deref for InQueue<T> {
    type Target = EventQueueView<T>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<T> std::ops::DerefMut for InQueue<T> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

/// Static description of a core to build.
#[derive(Clone, Debug)]
pub(crate) struct CoreSpec {
    pub(crate) grid: u32,
    pub(crate) n: usize,
    pub(crate) axons: usize,
    pub(crate) gid_base: u64,
    pub(crate) axon_gid: Vec<u64>,
    pub(crate) pops: Vec<PopRange>,
    pub(crate) credit_axons: Option<BitVec<usize, Lsb0>>,
    pub(crate) mask: Option<BitVec<usize, Lsb0>>,
    pub(crate) bits: Bits,
    pub(crate) mirror: bool,
    pub(crate) copy: Option<(CopyLayout, usize)>,
    pub(crate) fanout: Vec<FanGroup>,
    pub(crate) retro_to: Vec<(u32, u32)>,
    pub(crate) delta_to: Option<(Vec<u32>, u32)>,
    pub(crate) home: Option<u32>,
    pub(crate) segments: Vec<u32>,
    /// Compartments per neuron, joined in its dendrite (1: none; mapping's
    /// `LayerPlacement::compartments`).
    pub(crate) compartments: u32,
    /// Whether the core takes spikes (a spiking net): only then does it count them per axon.
    pub(crate) spike_counts: bool,
}

/// Runs `(first axon, id)` of consecutive ids.
pub(crate) fn id_runs(ids: &[u64]) -> Vec<(u32, u64)> {
    let mut runs: Vec<(u32, u64)> = Vec::new();
    for (j, &id) in ids.iter().enumerate() {
        match runs.last() {
            Some(&(a, first)) if first + (j as u64 - u64::from(a)) == id => {}
            _ => runs.push((j as u32, id)),
        }
    }
    runs.shrink_to_fit();
    runs
}

/// Runs `(first axon, core, neuron)` of return addresses that advance by one neuron on one
/// core, and the number of axons they cover.
pub(crate) fn retro_runs(to: &[(u32, u32)]) -> (Vec<(u32, u32, u32)>, u32) {
    let mut runs: Vec<(u32, u32, u32)> = Vec::new();
    for (j, &(core, neuron)) in to.iter().enumerate() {
        match runs.last() {
            Some(&(a, c, first)) if c == core && first + (j as u32 - a) == neuron => {}
            _ => runs.push((j as u32, core, neuron)),
        }
    }
    runs.shrink_to_fit();
    (runs, to.len() as u32)
}

impl Wiring {
    /// The return address (engine core, local neuron) of axon `axon`'s presynaptic neuron.
    #[inline]
    pub(crate) fn retro_to(&self, axon: u32) -> Option<(u32, u32)> {
        if axon >= self.retro_axons {
            return None;
        }
        let k = self
            .retro_runs
            .partition_point(|r| r.0 <= axon)
            .checked_sub(1)?;
        let (a, core, neuron) = self.retro_runs[k];
        Some((core, neuron + (axon - a)))
    }
}

impl<D: Datapath> CoreBox<D> {
    /// A copy that never learns (an evaluation copy): no presynaptic traces, everything else
    /// as [`Clone`] (synapse memory shared). It fires, counts and converts exactly as the
    /// original.
    fn inference_copy(&self) -> Self {
        CoreBox {
            grid: self.grid,
            n: self.n,
            axons: self.axons,
            gid_base: self.gid_base,
            wire: Arc::clone(&self.wire),
            bits: self.bits,
            mirror: self.mirror,
            copy: self.copy,
            neurons: self.neurons.clone(),
            acc: self.acc.clone(),
            delta: self.delta.clone(),
            trace: Vec::new(),
            trace_count: self.trace_count.clone(),
            rows: Arc::clone(&self.rows),
            row_max: Arc::clone(&self.row_max),
            copy_rows: Arc::clone(&self.copy_rows),
            copy_acc: self.copy_acc.clone(),
            nz: self.nz.clone(),
            nz_bits: self.nz_bits.clone(),
            row_nz: self.row_nz.clone(),
            queue: self.queue.clone(),
            status: self.status,
            ops: self.ops,
            mark: self.mark,
            retro_ops: self.retro_ops,
            retro_mark: self.retro_mark,
            plast_ops: self.plast_ops,
            plast_mark: self.plast_mark,
            vars: self.vars.clone(),
            out: self.out.clone(),
            syn_total: self.syn_total,
        }
    }

    /// Presynaptic traces held (0 in an evaluation copy).
    #[cfg(test)]
    pub(crate) fn traces(&self) -> usize {
        self.trace.len()
    }

    /// Synapses in row `j` (0 past the last row).
    #[inline]
    pub(crate) fn row_syn(&self, j: usize) -> u64 {
        if j >= self.axons {
            return 0;
        }
        self.wire
            .row_syn
            .get(j)
            .map_or(self.n as u64, |&s| u64::from(s))
    }

    /// An empty core (zero weights and biases) from its spec.
    pub(crate) fn new(spec: CoreSpec) -> Self {
        let (n, axons) = (spec.n, spec.axons);
        let row_syn: Vec<u32> = match &spec.mask {
            None => Vec::new(),
            Some(m) => (0..axons)
                .map(|j| m[j * n..(j + 1) * n].count_ones() as u32)
                .collect(),
        };
        let syn_total = match &spec.mask {
            None => (n * axons) as u64,
            Some(_) => row_syn.iter().map(|&s| u64::from(s)).sum(),
        };
        let (retro_runs, retro_axons) = retro_runs(&spec.retro_to);
        let copy_len = spec.copy.map_or(0, |(_, posts)| posts * n);
        CoreBox {
            grid: spec.grid,
            n,
            axons,
            gid_base: spec.gid_base,
            wire: Arc::new(Wiring {
                axon_gid: id_runs(&spec.axon_gid),
                pops: spec.pops,
                credit_axons: spec.credit_axons,
                mask: spec.mask,
                row_syn,
                fanout: spec.fanout,
                retro_runs,
                retro_axons,
                delta_to: spec.delta_to,
                home: spec.home,
                segments: spec.segments,
                compartments: spec.compartments,
            }),
            bits: spec.bits,
            mirror: spec.mirror,
            copy: spec.copy.map(|(c, _)| c),
            neurons: vec![Neuron::default(); n],
            acc: vec![D::Acc::default(); n],
            delta: vec![D::V::default(); n],
            trace: vec![D::V::default(); axons],
            trace_count: if spec.spike_counts {
                vec![0; axons]
            } else {
                Vec::new()
            },
            rows: Arc::new(vec![D::W::default(); axons * n]),
            row_max: Arc::new(vec![0; axons]),
            copy_rows: Arc::new(vec![D::W::default(); copy_len]),
            copy_acc: vec![D::Acc::default(); if copy_len > 0 { n } else { 0 }],
            nz: vec![0; n],
            nz_bits: bitvec![usize, Lsb0; 0; n],
            row_nz: vec![0; n],
            // Sized to the chip's depth when the engine takes the core.
            queue: InQueue::new(1),
            status: Status::default(),
            ops: Ops::default(),
            mark: Ops::default(),
            retro_ops: Ops::default(),
            retro_mark: Ops::default(),
            plast_ops: Ops::default(),
            plast_mark: Ops::default(),
            vars: Vars::default(),
            out: CoreOut::default(),
            syn_total,
        }
    }

    /// Recompute the per-row magnitude bounds after the rows were written by the host.
    pub(crate) fn refresh_row_max(&mut self) {
        let n = self.n;
        for (j, m) in Arc::make_mut(&mut self.row_max).iter_mut().enumerate() {
            *m = RowBound::put(
                self.rows[j * n..(j + 1) * n]
                    .iter()
                    .map(|&w| D::w_mag(w))
                    .max()
                    .unwrap_or(0),
            );
        }
    }

    /// Lend the core to the firmware for one call.
    fn with<R>(&mut self, dp: &D, f: impl FnOnce(&mut Core<'_, D>, &mut CoreOut<D::V>) -> R) -> R {
        let CoreBox {
            n,
            axons,
            gid_base,
            wire,
            bits,
            mirror,
            copy,
            neurons,
            acc,
            delta,
            trace,
            trace_count,
            rows,
            row_max,
            copy_rows,
            copy_acc,
            nz,
            nz_bits,
            row_nz,
            queue,
            status,
            ops,
            vars,
            out,
            ..
        } = self;
        let lay = Layout {
            n: *n,
            axons: *axons,
            gid_base: *gid_base,
            axon_gid: AxonIds::new(&wire.axon_gid),
            pops: &wire.pops,
            credit_axons: wire.credit_axons.as_deref(),
            mask: wire.mask.as_deref(),
            row_syn: &wire.row_syn,
            bits: *bits,
            mirror: *mirror,
            copy: *copy,
            segmented: !wire.segments.is_empty(),
            compartments: wire.compartments,
        };
        let mut core = Core {
            dp,
            lay: &lay,
            mem: CoreMem {
                neurons,
                acc,
                delta,
                trace,
                trace_count,
                rows: lend(rows),
                row_max: lend(row_max),
                copy_rows: lend(copy_rows),
                copy_acc,
                nz,
                nz_bits,
                row_nz,
                queue: &mut **queue,
                status,
            },
            ops,
            vars,
        };
        f(&mut core, out)
    }

    /// Clear a sample's dynamic state.
    pub(crate) fn reset_sample(&mut self, dp: &D) {
        self.with(dp, |c, _| c.reset_sample());
        self.out = CoreOut::default();
    }

    /// Run one command.
    fn run(&mut self, dp: &D, cmd: Cmd, step: u64, learn: bool) {
        let credit = matches!(cmd, Cmd::Credit { .. });
        let before = self.ops;
        let after = self.with(dp, |c, out| {
            c.drain(step, learn);
            match cmd {
                Cmd::Drain => {}
                Cmd::Inputs => {
                    // Only the relays send (the first step of a relaxation).
                    let pops = c.lay.pops;
                    for &pr in pops {
                        if pr.kind == accord_firmware::handlers::PopKind::Relay {
                            for i in pr.start..pr.start + pr.len {
                                let r = c.mem.neurons[i as usize].r;
                                if !D::is_zero(r) {
                                    out.spike(i, Some(r));
                                }
                            }
                        }
                    }
                }
                Cmd::Graded => c.fire_graded(step, out),
                Cmd::Tick {
                    tick,
                    ticks,
                    poisson,
                } => c.fire_tick(tick, ticks, poisson, step, out),
                Cmd::Credit {
                    mode,
                    finish_copy,
                    plasticity,
                } => {
                    if finish_copy {
                        c.finish_copy(step);
                    }
                    c.credit_step(mode, step, out);
                    let after = *c.ops;
                    let plast = plasticity.then(|| {
                        c.plasticity(step);
                        c.ops.since(&after)
                    });
                    return (Some(after), plast);
                }
                Cmd::Plasticity => {
                    let from = *c.ops;
                    c.plasticity(step);
                    return (None, Some(c.ops.since(&from)));
                }
            }
            (None, None)
        });
        if credit && let Some(a) = after.0 {
            self.retro_ops.merge(&a.since(&before));
        }
        if let Some(p) = after.1 {
            self.plast_ops.merge(&p);
        }
    }

    /// Write the host's input rate into relay neuron `i`.
    pub(crate) fn set_rate(&mut self, i: usize, r: D::V) {
        self.neurons[i].r = r;
    }

    /// Queue the host's output clamp for local neuron `i` (host I/O: it is not a mesh packet).
    pub(crate) fn clamp(&mut self, i: usize, c: D::V) {
        let _ = self.queue.push(Packet::Clamp {
            neuron: i as u32,
            value: c,
        });
    }

    /// Empty the input queue (stale traffic between phases).
    pub(crate) fn clear_queue(&mut self) {
        self.queue.clear();
    }

    /// The synapse rows.
    pub(crate) fn rows(&self) -> &[D::W] {
        &self.rows
    }

    /// Mutable synapse rows (host loading), unique copy.
    pub(crate) fn rows_mut(&mut self) -> &mut Vec<D::W> {
        Arc::make_mut(&mut self.rows)
    }

    /// Declare which synapses exist (axon-major like the rows; host loading): rows walk and
    /// count only these.
    pub(crate) fn set_mask(&mut self, mask: BitVec<usize, Lsb0>) {
        let n = self.n;
        let wire = Arc::make_mut(&mut self.wire);
        wire.row_syn = (0..self.axons)
            .map(|j| mask[j * n..(j + 1) * n].count_ones() as u32)
            .collect();
        self.syn_total = wire.row_syn.iter().map(|&s| u64::from(s)).sum();
        wire.mask = Some(mask);
    }

    /// Mutable copy rows (host loading).
    pub(crate) fn copy_rows_mut(&mut self) -> &mut Vec<D::W> {
        Arc::make_mut(&mut self.copy_rows)
    }

    /// A rough cost of running `cmd` (for deciding whether to use threads).
    fn work(&self, cmd: Cmd) -> u64 {
        let (n, a) = (self.n as u64, self.axons as u64);
        match cmd {
            Cmd::Credit { .. } | Cmd::Plasticity => n * a,
            _ => self.queue.len() as u64 * n + n,
        }
    }
}

/// What a core does in a timestep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cmd {
    /// Only drain the input queue.
    Drain,
    /// Relays send their input rates (graded); nothing else fires.
    Inputs,
    /// A graded firing step.
    Graded,
    /// One tick of a spiking window.
    Tick {
        tick: u32,
        ticks: u32,
        poisson: bool,
    },
    /// A credit step (optionally closing a comparison rule's copy sums first, and followed by
    /// plasticity).
    Credit {
        mode: CreditMode,
        finish_copy: bool,
        plasticity: bool,
    },
    /// Plasticity alone.
    Plasticity,
}

/// What a timestep reports to its driver.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct StepReport {
    /// Largest output change of a graded firing step.
    pub(crate) fire_change: f64,
    /// Largest credit change of a credit step.
    pub(crate) credit_change: f64,
}

/// Timesteps a router thread may run behind the cores.
const MAX_LAG: usize = 16;

/// Packets the router thread may hold beyond its oldest timestep (each costs 8 bytes in the
/// job, 12 more while it sits in a router's FIFO).
const MAX_INFLIGHT: usize = 1 << 18;

/// A timestep waiting for its exchange's result to get its time.
#[derive(Clone, Debug, Default)]
struct PendingStep {
    /// Busy time of each core that had a command, ps.
    busy: Vec<(u32, u64)>,
    firing: bool,
    retro: bool,
    /// A step that sends credit or applies plasticity (for the time by phase).
    learning: bool,
}

/// The chip: cores, mesh, prices of time.
#[derive(Debug)]
pub(crate) struct Engine<D: Datapath> {
    pub(crate) dp: Arc<D>,
    pub(crate) cores: Vec<CoreBox<D>>,
    router: RouterHost,
    /// An empty mesh of the same chip and placement (copies of the engine start from it).
    fresh: Mesh,
    policy: OverflowPolicy,
    lat: Latencies,
    barrier_ps: u64,
    queue_depth: usize,
    /// The input queues were swapped for empty minimal ones while the engine idles
    /// ([`Engine::release_buffers`]); the next sample (or copy) gets the chip's again.
    queues_released: bool,
    pub(crate) threads: usize,
    /// Estimated work a timestep needs before its cores are spread over threads.
    pub(crate) par_threshold: u64,
    pub(crate) tally: Tally,
    pending: VecDeque<PendingStep>,
    /// Per core, handler time of packets taken early in an exchange, not yet taken off the
    /// core's next busy time, ps.
    early: Vec<u64>,
    /// Packets submitted to the routers and not yet settled.
    inflight: usize,
    /// Emptied packet buffers of exchanges the routers finished, for the next ones.
    spare: Vec<Packets>,
    /// Where engine cores share a physical core (layers packed onto one core), each engine
    /// core's grid position: a timestep's busy time is then summed per position. `None`:
    /// every engine core is a core of its own.
    shared_grid: Option<Arc<Vec<u32>>>,
}

impl<D: Datapath + Clone> Clone for Engine<D> {
    /// A copy for another block of samples: the same cores (synapse memory shared), a mesh of
    /// its own on the calling thread, no pending work.
    fn clone(&self) -> Self {
        self.copy_with(self.cores.clone())
    }
}

impl<D: Datapath> Engine<D> {
    /// [`Clone`] for a copy that only evaluates: its cores keep no presynaptic traces
    /// ([`CoreBox::inference_copy`]); it runs and counts as a clone does.
    pub(crate) fn inference_copy(&self) -> Self {
        self.copy_with(self.cores.iter().map(CoreBox::inference_copy).collect())
    }

    /// A copy of this engine with `cores`.
    fn copy_with(&self, mut cores: Vec<CoreBox<D>>) -> Self {
        if self.queues_released {
            for c in &mut cores {
                c.queue = InQueue::new(self.queue_depth);
            }
        }
        Engine {
            dp: Arc::clone(&self.dp),
            cores,
            router: RouterHost::local(self.fresh.clone()),
            fresh: self.fresh.clone(),
            policy: self.policy,
            lat: self.lat,
            barrier_ps: self.barrier_ps,
            queue_depth: self.queue_depth,
            queues_released: false,
            threads: 1,
            par_threshold: self.par_threshold,
            tally: Tally::default(),
            pending: VecDeque::new(),
            early: vec![0; self.cores.len()],
            inflight: 0,
            spare: Vec::new(),
            shared_grid: self.shared_grid.clone(),
        }
    }
}

/// Synapse memory for a step: writable while this copy of the chip holds it alone, read-only
/// while evaluation copies share it.
fn lend<W>(rows: &mut Arc<Vec<W>>) -> Rows<'_, W> {
    if Arc::get_mut(rows).is_some() {
        // Checked just above; `get_mut` again to hand out the borrow.
        Rows::Write(Arc::get_mut(rows).map_or(&mut [], Vec::as_mut_slice))
    } else {
        Rows::Read(rows.as_slice())
    }
}

/// Every packet of an outbox, in emission order (spikes, then retrograde messages, then a
/// segment's partial sums, then a soma core's `δ`s for its segments, then a comparison rule's
/// `δ`s): `f(destination core, payload)`.
fn for_each_packet<V: Copy>(wire: &Wiring, out: &CoreOut<V>, mut f: impl FnMut(u32, Packet<V>)) {
    for &(i, payload) in &out.spikes {
        // Every group holding the neuron: a split layer above partitions a core's neurons
        // among its segments; a recurrent layer adds one group over all of them.
        for g in wire
            .fanout
            .iter()
            .filter(|g| i >= g.start && i < g.start + g.len)
        {
            for &(dst, base) in &g.dests {
                let axon = base + (i - g.start);
                f(
                    dst,
                    match payload {
                        Some(rate) => Packet::Graded { axon, rate },
                        None => Packet::Spike { axon },
                    },
                );
            }
        }
    }
    for (axon, &value) in out.retro_axons.iter_ones().zip(&out.retro_values) {
        if let Some((dst, neuron)) = wire.retro_to(axon as u32) {
            f(dst, Packet::Retro { neuron, value });
        }
    }
    if let Some(home) = wire.home {
        for &(neuron, value) in &out.partials {
            f(home, Packet::Partial { neuron, value });
        }
    }
    for &(neuron, value) in &out.seg_deltas {
        for &dst in &wire.segments {
            f(dst, Packet::SegmentDelta { neuron, value });
        }
    }
    if let Some((dests, base)) = &wire.delta_to {
        for &(i, value) in &out.deltas {
            for &dst in dests {
                f(
                    dst,
                    Packet::Delta {
                        post: base + i,
                        value,
                    },
                );
            }
        }
    }
}

/// Put a packet into a core's input queue; a full queue (the chip's depth) is drained first
/// (its handlers, its order: the same arithmetic, earlier).
fn put<D: Datapath>(c: &mut CoreBox<D>, p: Packet<D::V>, dp: &D, step: u64, learn: bool) {
    if let Err(p) = c.queue.push(p) {
        c.run(dp, Cmd::Drain, step, learn);
        let _ = c.queue.push(p);
    }
}

impl<D: Datapath> Engine<D> {
    /// An engine over `cores` on `chip`.
    pub(crate) fn new(dp: D, mut cores: Vec<CoreBox<D>>, chip: &ChipModel, threads: usize) -> Self {
        for c in &mut cores {
            c.queue = InQueue::new(chip.core.input_queue as usize);
        }
        let pos: Vec<u32> = cores.iter().map(|c| c.grid).collect();
        let mut distinct = pos.clone();
        distinct.sort_unstable();
        distinct.dedup();
        let shared_grid = (distinct.len() < pos.len()).then(|| Arc::new(pos.clone()));
        let lat = latencies(chip);
        let extra = (chip.timing.barrier_ns_per_core * 1000.0).round() as u64;
        let barrier_ps = lat[Action::Barrier as usize]
            .saturating_add(extra.saturating_mul(distinct.len().saturating_sub(1) as u64));
        let fresh = Mesh::new(chip, &pos);
        let mut e = Engine {
            dp: Arc::new(dp),
            router: RouterHost::local(fresh.clone()),
            fresh,
            policy: chip.router.overflow,
            early: vec![0; cores.len()],
            cores,
            lat,
            barrier_ps,
            queue_depth: chip.core.input_queue as usize,
            queues_released: false,
            threads: 1,
            par_threshold: 1 << 20,
            tally: Tally::default(),
            pending: VecDeque::new(),
            inflight: 0,
            spare: Vec::new(),
            shared_grid,
        };
        e.set_threads(threads);
        e
    }

    /// Threads for a timestep's cores; with more than one, the mesh runs on a router thread
    /// beside them.
    pub(crate) fn set_threads(&mut self, threads: usize) {
        self.finish();
        self.threads = threads.max(1);
        self.router.set_remote(self.threads > 1);
    }

    /// Modelled barrier latency, ps.
    pub(crate) fn barrier_ps(&self) -> u64 {
        self.barrier_ps
    }

    /// Clear every core's dynamic state (a new sample).
    pub(crate) fn reset_sample(&mut self) {
        self.restore_queues();
        let dp = &*self.dp;
        for c in &mut self.cores {
            c.reset_sample(dp);
        }
    }

    /// Discard queued packets everywhere (stale traffic at the end of a relaxation; the
    /// routers still carry them, for time and counts).
    pub(crate) fn clear_traffic(&mut self) {
        for c in &mut self.cores {
            c.clear_queue();
        }
    }

    /// Busy time of core `k` since its mark, its counts folded into the tally.
    fn settle(&mut self, k: usize, graded: Option<bool>) -> u64 {
        settle(&mut self.cores[k], &self.lat, &mut self.tally, graded)
    }

    /// Run one timestep: `cmds` (engine core, command), sorted by core, keyed by `step`;
    /// `learn` allows weight writes.
    ///
    /// The payloads go straight into the destination cores' queues, in injection order (source
    /// core, then emission order); the routers work out the exchange's cycles, stalls and drops
    /// — on the router thread, while the next timestep's cores already run — and the step's
    /// time is settled when their answer comes. Under `drop`, the routers answer first: only
    /// the packets that arrive are delivered.
    pub(crate) fn timestep(&mut self, cmds: &[(u32, Cmd)], step: u64, learn: bool) -> StepReport {
        self.restore_queues();
        // 1. Compute.
        let work: u64 = cmds
            .iter()
            .map(|&(k, cmd)| self.cores[k as usize].work(cmd))
            .sum();
        let dp = Arc::clone(&self.dp);
        if self.threads > 1 && cmds.len() > 1 && work >= self.par_threshold {
            run_parallel(&mut self.cores, cmds, &dp, step, learn, self.threads);
        } else {
            for &(k, cmd) in cmds {
                self.cores[k as usize].run(&dp, cmd, step, learn);
            }
        }
        // 2. Settle the compute and expand the outboxes, core by core.
        let mut report = StepReport::default();
        let mut pending = PendingStep {
            busy: Vec::with_capacity(cmds.len()),
            ..PendingStep::default()
        };
        for &(k, cmd) in cmds {
            let graded = match cmd {
                Cmd::Graded | Cmd::Inputs => Some(true),
                Cmd::Tick { .. } => Some(false),
                _ => None,
            };
            pending.firing |= graded.is_some();
            pending.retro |= matches!(cmd, Cmd::Credit { .. });
            pending.learning |= matches!(cmd, Cmd::Credit { .. } | Cmd::Plasticity);
            let busy = self.settle(k as usize, graded);
            if matches!(cmd, Cmd::Graded | Cmd::Tick { .. }) {
                self.count_firing(k as usize);
            }
            let c = &self.cores[k as usize];
            report.fire_change = report.fire_change.max(c.status.fire_change);
            report.credit_change = report.credit_change.max(c.status.credit_change);
            pending.busy.push((k, busy));
        }
        let mut packets = self.spare.pop().unwrap_or_default();
        for (&(k, _), (_, busy)) in cmds.iter().zip(pending.busy.iter_mut()) {
            let injected = self.route_out(k as usize, &mut packets);
            *busy = busy.saturating_add(injected);
        }
        // 3. Exchange.
        self.inflight += packets.flits.len();
        let job = Job {
            packets,
            cores: self.cores.len(),
            depth: self.queue_depth,
            track: self.policy == OverflowPolicy::Drop,
        };
        self.tally.ledger.add(Action::Barrier, 1);
        self.tally.timesteps += 1;
        self.tally.ticks += u64::from(pending.firing);
        self.tally.retro_steps += u64::from(pending.retro);
        self.pending.push_back(pending);
        self.router.submit(job);
        // A router thread may run a few timesteps (and packets) behind the cores, no more.
        while self.router.pending() > MAX_LAG
            || (self.router.pending() > 1 && self.inflight > MAX_INFLIGHT)
        {
            if let Some(r) = self.router.next() {
                self.settle_step(r);
            }
        }
        // 4. Delivery, while the routers work: every core's compute was settled first, since
        // a delivery may drain a full queue early and that work is the destination's next
        // step's.
        let mut delivered = None;
        if self.policy == OverflowPolicy::Drop {
            // Only what arrives is delivered: wait for the routers.
            while let Some(mut r) = self.router.next() {
                if self.router.pending() == 0 {
                    delivered = Some(std::mem::take(&mut r.delivered));
                }
                self.settle_step(r);
            }
        }
        self.deliver(cmds, delivered.as_deref(), &dp, step, learn);
        if matches!(self.router, RouterHost::Local(..)) {
            // On this thread the answer is already there.
            while let Some(r) = self.router.next() {
                self.settle_step(r);
            }
        }
        report
    }

    /// NeuroBench's workload of core `k`'s firing: activations and zeros (per population) and
    /// the dense synaptic operations its rows stand for.
    fn count_firing(&mut self, k: usize) {
        let c = &self.cores[k];
        let w = &mut self.tally.work;
        w.activations += c.status.outputs as u64;
        w.zero_activations += c.status.zeros as u64;
        for (p, (o, z)) in c
            .status
            .pop_outputs
            .iter()
            .zip(&c.status.pop_zeros)
            .enumerate()
        {
            w.layer_activations[p] += u64::from(*o);
            w.layer_zero_activations[p] += u64::from(*z);
        }
        if c.axons > 0 {
            w.dense_synops += c.syn_total;
        }
    }

    /// Put the packets the cores of `cmds` sent into their destinations' queues, in injection
    /// order (`delivered`: under the drop policy, which of them arrived), and keep the
    /// outboxes' capacity for the next step.
    fn deliver(
        &mut self,
        cmds: &[(u32, Cmd)],
        delivered: Option<&[bool]>,
        dp: &Arc<D>,
        step: u64,
        learn: bool,
    ) {
        let mut id = 0usize;
        for &(k, _) in cmds {
            let k = k as usize;
            let out = std::mem::take(&mut self.cores[k].out);
            let wire = Arc::clone(&self.cores[k].wire);
            let cores = &mut self.cores;
            for_each_packet(&wire, &out, |dst, p| {
                if delivered.is_none_or(|d| d.get(id).copied().unwrap_or(false)) {
                    put(&mut cores[dst as usize], p, dp, step, learn);
                }
                id += 1;
            });
            // Keep the buffers' capacity for the next step.
            let mut out = out;
            out.spikes.clear();
            out.retro_axons.clear();
            out.retro_values.clear();
            out.deltas.clear();
            out.partials.clear();
            out.seg_deltas.clear();
            self.cores[k].out = out;
        }
    }

    /// Give a timestep its time from its exchange's result: the busiest core (less what it
    /// handled early in an earlier exchange) + router cycles + early drains + the barrier.
    fn settle_step(&mut self, mut r: JobResult) {
        self.inflight = self.inflight.saturating_sub(r.sent);
        if self.spare.len() <= MAX_LAG {
            self.spare.push(std::mem::take(&mut r.spare));
        }
        let step = self.pending.pop_front().unwrap_or_default();
        let mut busiest = 0u64;
        // Engine cores on one physical core run one after another: their times add.
        let mut per_grid: Vec<(u32, u64)> = Vec::new();
        for &(k, ps) in &step.busy {
            let e = &mut self.early[k as usize];
            let take = (*e).min(ps);
            *e -= take;
            match &self.shared_grid {
                None => busiest = busiest.max(ps - take),
                Some(grid) => {
                    let g = grid[k as usize];
                    match per_grid.iter_mut().find(|(p, _)| *p == g) {
                        Some((_, t)) => *t = t.saturating_add(ps - take),
                        None => per_grid.push((g, ps - take)),
                    }
                }
            }
        }
        for &(_, t) in &per_grid {
            busiest = busiest.max(t);
        }
        for &(k, ps) in &r.early {
            let e = &mut self.early[k as usize];
            *e = e.saturating_add(ps);
        }
        let counts = r.counts;
        self.tally.early_drains += r.early.len() as u64;
        self.tally.ledger.add(Action::Hop, counts.hops);
        self.tally
            .ledger
            .add(Action::InterchipHop, counts.interchip_hops);
        self.tally.retro_hops += counts.retro_hops;
        self.tally.retro.add(Action::Hop, counts.retro_hops);
        let hop_ps = self.lat[Action::Hop as usize];
        // A link between chips takes its own latency instead of one router cycle.
        let chip_extra = self.lat[Action::InterchipHop as usize].saturating_sub(hop_ps);
        let exchange_ps = counts
            .cycles
            .saturating_mul(hop_ps)
            .saturating_add(counts.max_xings.saturating_mul(chip_extra));
        self.tally.mesh.merge(&counts);
        let step_ps = busiest
            .saturating_add(exchange_ps)
            .saturating_add(r.drains_ps)
            .saturating_add(self.barrier_ps);
        self.tally.time_ps = self.tally.time_ps.saturating_add(step_ps);
        if step.learning {
            self.tally.learning_time_ps = self.tally.learning_time_ps.saturating_add(step_ps);
        }
        self.tally.max_step_ps = self.tally.max_step_ps.max(step_ps);
    }

    /// Drop the buffers a timestep fills and a sample reuses (outboxes, spare packet lists),
    /// between samples: an idle engine (evaluation copies at work) holds only its state.
    pub(crate) fn release_buffers(&mut self) {
        for c in &mut self.cores {
            c.out = CoreOut::default();
        }
        self.spare = Vec::new();
        // Between samples every queue is empty; should one not be, all are kept as they are.
        if !self.queues_released && self.cores.iter().all(|c| c.queue.is_empty()) {
            for c in &mut self.cores {
                c.queue = InQueue::new(1);
            }
            self.queues_released = true;
        }
    }

    /// Each core's input-queue capacity (for tests).
    #[cfg(test)]
    pub(crate) fn queue_capacities(&self) -> Vec<usize> {
        self.cores.iter().map(|c| c.queue.capacity()).collect()
    }

    /// Give back the chip's input queues after [`release_buffers`](Self::release_buffers).
    fn restore_queues(&mut self) {
        if self.queues_released {
            for c in &mut self.cores {
                c.queue = InQueue::new(self.queue_depth);
            }
            self.queues_released = false;
        }
    }

    /// Wait for every exchange still with the routers and settle its timestep.
    pub(crate) fn finish(&mut self) {
        while let Some(r) = self.router.next() {
            self.settle_step(r);
        }
    }

    /// Expand core `k`'s outbox into routed packets for the routers (the payloads stay in the
    /// outbox until delivery); returns the injection time, ps.
    fn route_out(&mut self, k: usize, flits: &mut Packets) -> u64 {
        let (mut fwd, mut back, mut partials, mut seg_deltas) = (0u64, 0u64, 0u64, 0u64);
        let lat = &self.lat;
        let sop = lat[Action::Sop as usize];
        let trace = lat[Action::TraceUpdate as usize];
        let credit = lat[Action::CreditAccumulate as usize];
        let rsop = lat[Action::RetroSop as usize];
        let cores = &self.cores;
        let c = &cores[k];
        for_each_packet(&c.wire, &c.out, |dst, p| {
            let d = &cores[dst as usize];
            let (retro, cost) = match p {
                Packet::Graded { axon, .. } | Packet::Spike { axon } => {
                    let syn = d.row_syn(axon as usize);
                    fwd += 1;
                    (false, syn.saturating_mul(sop).saturating_add(trace))
                }
                Packet::Retro { .. } => {
                    back += 1;
                    (true, credit)
                }
                Packet::Partial { .. } => {
                    fwd += 1;
                    partials += 1;
                    (false, sop)
                }
                Packet::SegmentDelta { .. } => {
                    back += 1;
                    seg_deltas += 1;
                    // One neuron-memory write, timed like a credit accumulate.
                    (true, credit)
                }
                _ => {
                    back += 1;
                    (true, (d.n as u64).saturating_mul(rsop))
                }
            };
            flits.push(k as u32, dst, retro, cost);
        });
        self.tally.ledger.add(Action::SpikePacket, fwd);
        self.tally.partial_packets += partials;
        self.tally.segment_delta_packets += seg_deltas;
        self.tally.ledger.add(Action::RetroPacket, back);
        self.tally.retro.add(Action::RetroPacket, back);
        fwd.saturating_mul(self.lat[Action::SpikePacket as usize])
            .saturating_add(back.saturating_mul(self.lat[Action::RetroPacket as usize]))
    }

    /// The links that carried traffic (every exchange settled first).
    pub(crate) fn link_loads(&mut self) -> Vec<LinkLoad> {
        self.finish();
        self.router.link_loads()
    }

    /// A copy of the mesh with its link counters (every exchange settled first).
    pub(crate) fn mesh_snapshot(&mut self) -> Mesh {
        self.finish();
        self.router.snapshot()
    }

    /// The state a checkpoint needs (every exchange settled first); the run fills in its tally.
    pub(crate) fn state(&mut self) -> EngineState {
        self.finish();
        EngineState {
            tally: Vec::new(),
            links: self.router.snapshot().link_words(),
            early: self.early.clone(),
        }
    }

    /// Continue from `st` (a state of an engine of the same chip, net and placement): its link
    /// counters and early handler time. Its tally is the caller's (the run keeps its counts
    /// outside the engine between epochs).
    ///
    /// # Errors
    /// A state of another shape (a different chip, net or accord version).
    pub(crate) fn restore(&mut self, st: &EngineState) -> Result<(), String> {
        self.finish();
        if st.early.len() != self.early.len() {
            return Err(format!(
                "the checkpoint has {} cores, this chip net {}",
                st.early.len(),
                self.early.len()
            ));
        }
        self.router.restore_links(&st.links)?;
        self.early.clone_from(&st.early);
        Ok(())
    }

    /// An empty mesh of this chip and placement.
    pub(crate) fn fresh_mesh(&self) -> Mesh {
        self.fresh.clone()
    }

    /// Fold every core's format events into the tally.
    pub(crate) fn collect_vars(&mut self) {
        for c in &mut self.cores {
            self.tally.vars.merge(&c.vars);
            c.vars = Vars::default();
        }
    }

    /// Take the tally (format events folded in), leaving an empty one. With the mesh on its own
    /// thread, the time, hops and router counts of the last few timesteps may still be with the
    /// routers: they land in a later take ([`Engine::finish`] settles them all). Counts that
    /// come from the cores, and the timesteps themselves, are always complete.
    pub(crate) fn take_tally(&mut self) -> Tally {
        if matches!(self.router, RouterHost::Local(..)) {
            self.finish();
        }
        self.collect_vars();
        std::mem::take(&mut self.tally)
    }
}

/// A worker's share of a timestep: its estimated work and its cores with their commands.
type Bin<'a, D> = (u64, Vec<(&'a mut CoreBox<D>, Cmd)>);

/// Busy time of a core since its mark (Σ actions × latencies), its counts folded into `tally`.
fn settle<D: Datapath>(
    c: &mut CoreBox<D>,
    lat: &Latencies,
    tally: &mut Tally,
    graded: Option<bool>,
) -> u64 {
    let d = c.ops.since(&c.mark);
    c.mark = c.ops;
    let mut busy = 0u64;
    for op in Op::ALL {
        let n = d.get(op);
        if n == 0 {
            continue;
        }
        let a = action_of(op);
        tally.ledger.add(a, n);
        busy = busy.saturating_add(n.saturating_mul(lat[a as usize]));
    }
    tally.dropped_messages += d.dropped_messages;
    let r = c.retro_ops.since(&c.retro_mark);
    c.retro_mark = c.retro_ops;
    let p = c.plast_ops.since(&c.plast_mark);
    c.plast_mark = c.plast_ops;
    for op in Op::ALL {
        let n = r.get(op);
        if n > 0 {
            tally.retro.add(action_of(op), n);
        }
        let n = p.get(op);
        if n > 0 {
            tally.plasticity.add(action_of(op), n);
        }
    }
    let w = &mut tally.work;
    // The network's synaptic operations: partial sums of split fan-ins are hardware work.
    let sops = d.get(Op::Sop).wrapping_sub(d.partial_adds);
    match graded {
        Some(true) => w.effective_macs += sops,
        Some(false) => w.effective_acs += sops,
        None => {}
    }
    let upd = d.get(Op::NeuronUpdateActive);
    let idle = d.get(Op::NeuronUpdateIdle);
    w.membrane_updates += upd;
    w.neuron_ops += upd;
    w.neuron_dense_ops += upd + idle;
    busy
}

/// Run the commands of one timestep on several threads: the cores are dealt into `threads`
/// bins of about equal estimated work (largest first), one bin per `crossbeam` scoped worker
/// (the calling thread takes the first). Each core is run by exactly one worker and touches
/// only its own state, so the bins do not change the results.
fn run_parallel<D: Datapath>(
    cores: &mut [CoreBox<D>],
    cmds: &[(u32, Cmd)],
    dp: &D,
    step: u64,
    learn: bool,
    threads: usize,
) {
    let workers = threads.min(cmds.len()).max(1);
    let mut items: Vec<(u64, &mut CoreBox<D>, Cmd)> = Vec::with_capacity(cmds.len());
    let mut next = cmds.iter().peekable();
    for (k, core) in cores.iter_mut().enumerate() {
        while let Some(&&(ck, _)) = next.peek() {
            if (ck as usize) < k {
                next.next();
            } else {
                break;
            }
        }
        if let Some(&&(ck, cmd)) = next.peek()
            && ck as usize == k
        {
            items.push((core.work(cmd), core, cmd));
            next.next();
        }
    }
    // Longest processing time first: the heaviest core goes to the lightest bin.
    items.sort_by_key(|it| std::cmp::Reverse(it.0));
    let mut bins: Vec<Bin<'_, D>> = (0..workers).map(|_| (0, Vec::new())).collect();
    for (w, core, cmd) in items {
        let bin = bins
            .iter_mut()
            .min_by_key(|b| b.0)
            .expect("at least one bin");
        bin.0 += w;
        bin.1.push((core, cmd));
    }
    let mut bins = bins.into_iter().map(|b| b.1);
    let mine = bins.next().unwrap_or_default();
    crossbeam::scope(|s| {
        for bin in bins {
            s.spawn(move |_| {
                for (core, cmd) in bin {
                    core.run(dp, cmd, step, learn);
                }
            });
        }
        for (core, cmd) in mine {
            core.run(dp, cmd, step, learn);
        }
    })
    .unwrap_or_else(|e| std::panic::resume_unwind(e));
}
