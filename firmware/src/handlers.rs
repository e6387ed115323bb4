//! The handlers of one core: the only code that touches a core's state.
//!
//! A core holds its neurons' state, the synapse rows of its postsynaptic neurons (one row per
//! input axon, axon-major: `rows[j·n + i] = w_ij`), a presynaptic trace per axon, its
//! working registers (dendritic accumulators, `δ`) and a bounded input queue of [`Packet`]s. The
//! host lends all of it to a [`Core`] view for one step; the view's methods are the handlers:
//!
//! | handler | when | what it does |
//! |---|---|---|
//! | [`Core::arrive`] | a packet is taken from the input queue | spike / graded: walk the axon's row into the accumulators, update the axon's trace; retrograde: `c_next += m`; clamp: `c_next += c_ext`; partial sum (split fan-in): `acc += p`; segment `δ`: store it; `δ` (comparison rules): walk the copy row |
//! | [`Core::drain`] | start of every step | [`arrive`](Core::arrive) for every queued packet, in arrival order |
//! | [`Core::fire_graded`] | a graded firing step | `u = acc + b`, `r = f(u)`, send `r` if non-zero; relays send their input rate; dendrite segments send `acc` to their soma core |
//! | [`Core::fire_tick`] | one tick of a spiking window | the chip's soma program on `acc + b`, send spikes; at the window's end `u` = mean input, `r` = count / T |
//! | [`Core::credit_step`] | a retrograde step | `c = c_next`; `δ = g(u)·c` by a balance-table read (dendrite segments take the `δ` their soma core sent, which a soma core sends to them); per axon `m_j = Σ_i w_ij δ_i` over the same rows, sent if non-zero (balance rule), or `δ_i` sent to the presynaptic cores (comparison rules) |
//! | [`Core::plasticity`] | after the core's credit step | `w_ij += η δ_i r_j` for `δ_i ≠ 0`, `r_j ≠ 0`; `b_i += η δ_i` |
//!
//! Outgoing events go to an [`Outbox`] that the host's router implements (the core names the
//! sending neuron or the answering axon; the router's tables name the destinations). Every
//! primitive is counted where it executes, in [`Ops`]; every rounding and overflow in
//! [`Vars`].
//!
//! # Cost (what each handler counts)
//!
//! Memory bits are counted at the chip's stored widths ([`Bits`]). The dendritic accumulators
//! and the latched `δ` of a row walk are working registers of the core, priced inside the
//! arithmetic actions; synapse memory holds the rows, neuron memory the neurons' state, the
//! axon traces and the tables.
//!
//! | handler | actions | synapse memory | neuron memory |
//! |---|---|---|---|
//! | spike / graded arrival | 1 `trace_update`, `s` `sop` (`s` synapses in the row) | read `s·w` | write `r` (trace) |
//! | retrograde / clamp arrival | 1 `credit_accumulate` | — | read + write `c` |
//! | partial-sum arrival (split fan-in) | 1 `sop` (kept out of the NeuroBench workload) | — | — |
//! | segment `δ` arrival | — | — | write `δ` |
//! | copy-row arrival (`δ`) | `n` `retro_sop` (+ `n` `weight_update` for backprop) | read `n·w` (+ write `n·w`) | read `n·r` |
//! | graded soma, per neuron | 1 `neuron_update_active` or `_idle` per compartment (+ 1 `activation_read` for a table `f`) | — | read `b`; write `u`, `r` (+ read `r` per table read) |
//! | spiking soma, per neuron and tick | 1 `neuron_update_active` or `_idle` per compartment | — | read `v` (+ `cur`), `b`; write `v` (+ `cur`); at the window's end write `u`, `r` |
//! | dendrite segment's partial sums, per neuron and firing step | `compartments − 1` `neuron_update_active` or `_idle` (the joins) | 1 partial-sum packet if non-zero | — |
//! | relay, per tick (Poisson) | 1 `rng_draw` per non-zero input | — | — |
//! | credit step, per neuron with `c ≠ 0` | 1 `lut_read` | — | read `u`, `c`, one table entry (`lut`); write `δ` |
//! | retrograde walk | `retro_sop` per synapse with `δ_i ≠ 0` | read `w` per `retro_sop` | read `δ` once per neuron with `δ ≠ 0` (latched) |
//! | plasticity, per row with `r_j ≠ 0` | `weight_update` per synapse with `δ_i ≠ 0` (twice on a mirror chip) | read + write `w` per update (twice on a mirror chip) | read `r_j` once, `δ` latched once per neuron |
//! | bias update, per neuron with `δ ≠ 0` (not on dendrite segments) | 1 `weight_update` | — | read + write `b` |

use bitvec::prelude::*;

use crate::datapath::{Datapath, Key, SpikingSoma, TransferKind, Vars, purpose};
use crate::queue::EventQueueView;

/// Capacity of a core's input queue (the chip file declares a depth up to this).
pub const QUEUE_CAPACITY: usize = 4096;

/// The primitive actions a core counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(usize)]
pub enum Op {
    /// Forward synaptic op.
    Sop,
    /// Retrograde multiply-accumulate.
    RetroSop,
    /// Presynaptic trace update per arrival.
    TraceUpdate,
    /// Soma update of a neuron whose core received input.
    NeuronUpdateActive,
    /// Soma update of a neuron whose core received no input.
    NeuronUpdateIdle,
    /// Balance-table read.
    LutRead,
    /// Activation-table read.
    ActivationRead,
    /// Credit accumulate per retrograde or clamp packet.
    CreditAccumulate,
    /// Synapse (or bias) read-modify-write.
    WeightUpdate,
    /// Random draw of an encoder (stochastic-rounding draws are counted per format in [`Vars`]).
    RngDraw,
    /// Synapse-memory bit read.
    SynapseMemReadBit,
    /// Synapse-memory bit written.
    SynapseMemWriteBit,
    /// Neuron-memory bit read.
    NeuronMemReadBit,
    /// Neuron-memory bit written.
    NeuronMemWriteBit,
}

/// Number of [`Op`]s.
pub const N_OPS: usize = 14;

impl Op {
    /// Every op, in order.
    pub const ALL: [Op; N_OPS] = [
        Op::Sop,
        Op::RetroSop,
        Op::TraceUpdate,
        Op::NeuronUpdateActive,
        Op::NeuronUpdateIdle,
        Op::LutRead,
        Op::ActivationRead,
        Op::CreditAccumulate,
        Op::WeightUpdate,
        Op::RngDraw,
        Op::SynapseMemReadBit,
        Op::SynapseMemWriteBit,
        Op::NeuronMemReadBit,
        Op::NeuronMemWriteBit,
    ];
}

/// Counts of a core's actions, plus the retrograde messages its threshold dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ops {
    /// Counts indexed by [`Op`].
    pub counts: [u64; N_OPS],
    /// Retrograde messages (or comparison-rule `δ` packets) not sent because of the message
    /// threshold.
    pub dropped_messages: u64,
    /// Of the [`Op::Sop`]s, partial sums of split fan-ins added at their soma core (hardware
    /// work, not synaptic operations of the network).
    pub partial_adds: u64,
}

impl Ops {
    /// Adds `n` to `op`.
    #[inline(always)]
    pub fn add(&mut self, op: Op, n: u64) {
        self.counts[op as usize] = self.counts[op as usize].wrapping_add(n);
    }

    /// The count of `op`.
    #[inline]
    pub fn get(&self, op: Op) -> u64 {
        self.counts[op as usize]
    }

    /// Adds every count of `o`.
    pub fn merge(&mut self, o: &Ops) {
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a = a.wrapping_add(*b);
        }
        self.dropped_messages = self.dropped_messages.wrapping_add(o.dropped_messages);
        self.partial_adds = self.partial_adds.wrapping_add(o.partial_adds);
    }

    /// `self − earlier`, count by count.
    pub fn since(&self, earlier: &Ops) -> Ops {
        let mut d = *self;
        for (a, b) in d.counts.iter_mut().zip(&earlier.counts) {
            *a = a.wrapping_sub(*b);
        }
        d.dropped_messages = d.dropped_messages.wrapping_sub(earlier.dropped_messages);
        d.partial_adds = d.partial_adds.wrapping_sub(earlier.partial_adds);
        d
    }
}

/// A packet as it arrives at a core.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Packet<V> {
    /// A binary spike on input axon `axon`.
    Spike {
        /// Destination axon.
        axon: u32,
    },
    /// A graded event carrying a rate.
    Graded {
        /// Destination axon.
        axon: u32,
        /// The rate (raw in the rate format, or real).
        rate: V,
    },
    /// A retrograde message `m_j` for local neuron `neuron`.
    Retro {
        /// Local neuron.
        neuron: u32,
        /// The message (credit format).
        value: V,
    },
    /// The host's output clamp `c_ext` for local neuron `neuron`.
    Clamp {
        /// Local neuron.
        neuron: u32,
        /// The external credit (credit format).
        value: V,
    },
    /// A partial sum for local neuron `neuron` from one of its dendrite segments on another
    /// core (a neuron whose fan-in was split across cores), in accumulator units.
    Partial {
        /// Local neuron.
        neuron: u32,
        /// The segment's sum (accumulator units).
        value: V,
    },
    /// The `δ` of local neuron `neuron`, computed by its soma core, for this dendrite segment's
    /// retrograde walk and plasticity (a split fan-in).
    SegmentDelta {
        /// Local neuron (the segment's index of the neuron).
        neuron: u32,
        /// `δ` (delta format).
        value: V,
    },
    /// A comparison rule's `δ` of postsynaptic neuron `post` (its index in its layer), for this
    /// core's copy rows.
    Delta {
        /// The postsynaptic neuron's index in its layer.
        post: u32,
        /// `δ` (delta format).
        value: V,
    },
}

/// Where a core's outgoing events go (implemented by the host's router).
pub trait Outbox<V> {
    /// Local neuron `neuron` fired: a binary spike (`None`) or a graded event.
    fn spike(&mut self, neuron: u32, payload: Option<V>);
    /// A retrograde message for the presynaptic neuron of axon `axon`. A credit step sends
    /// them in ascending axon order (an outbox may keep the axons as a bit set).
    fn retro(&mut self, axon: u32, value: V);
    /// A credit step is about to send up to `n` retrograde messages (room can be made once).
    fn reserve_retros(&mut self, n: usize) {
        let _ = n;
    }
    /// A comparison rule's `δ` of local neuron `neuron`, for every presynaptic core.
    fn delta(&mut self, neuron: u32, value: V);
    /// Dendrite segment `neuron`'s partial sum, for its neuron's home core.
    fn partial(&mut self, neuron: u32, value: V);
    /// Local neuron `neuron`'s `δ`, for every dendrite segment of its fan-in.
    fn segment_delta(&mut self, neuron: u32, value: V);
}

/// Stored widths of the formats, for memory-bit counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bits {
    /// Weight (and bias) bits.
    pub weight: u64,
    /// Membrane bits.
    pub membrane: u64,
    /// Rate / trace bits.
    pub rate: u64,
    /// Credit bits.
    pub credit: u64,
    /// `δ` bits.
    pub delta: u64,
    /// Balance-table entry bits.
    pub lut: u64,
}

/// What a range of a core's neurons is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PopKind {
    /// Input relays: their rate is written by the host; they only send.
    Relay,
    /// Neurons of datapath population `pop`.
    Neuron {
        /// Population index (selects the transfer and the tables).
        pop: u8,
    },
    /// Dendrite segments: each holds part of the fan-in of one neuron whose soma lives on
    /// another core, and sends its sum there every firing step (ARCHITECTURE.md §5, fan-in
    /// splitting). No soma, no bias, no credit.
    Dendrite,
}

/// Neurons `start..start + len` of a core and what they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PopRange {
    /// First local neuron.
    pub start: u32,
    /// Number of neurons.
    pub len: u32,
    /// Kind.
    pub kind: PopKind,
}

/// A comparison rule's copy rows on this (presynaptic) core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyLayout {
    /// Global id of postsynaptic neuron 0 of the layer the copy mirrors.
    pub post_gid_base: u64,
    /// Whether the copy is written by plasticity (backprop's `Wᵀ`) or fixed (feedback
    /// alignment's `B`).
    pub learns: bool,
}

/// The global ids of a core's axons' presynaptic neurons, held as runs of consecutive ids: a
/// core's axons come from a few contiguous ranges of neurons (the layer below, its own layer,
/// a segment), so a core pays a few words, not one per axon.
#[derive(Clone, Copy, Debug, Default)]
pub struct AxonIds<'a> {
    /// `(first axon, its global id)` per run, in axon order; axon `j` of the run starting at
    /// `a` has id `id + (j − a)`.
    runs: &'a [(u32, u64)],
}

impl<'a> AxonIds<'a> {
    /// Ids from runs `(first axon, its id)`, sorted by axon, the first at axon 0.
    pub const fn new(runs: &'a [(u32, u64)]) -> Self {
        AxonIds { runs }
    }

    /// The global id of axon `j`'s presynaptic neuron (0 when the core has no axons).
    ///
    /// | runs | cost |
    /// |---|---|
    /// | 1 (a layer below, a segment, an all-to-all net) | one add |
    /// | `k` | a binary search over `k` |
    #[inline]
    pub fn gid(&self, j: usize) -> u64 {
        let k = match self.runs {
            [] => return 0,
            [_] => 0,
            runs => runs.partition_point(|r| r.0 as usize <= j).max(1) - 1,
        };
        let (a, id) = self.runs[k];
        id + (j as u64).saturating_sub(u64::from(a))
    }
}

/// A row's magnitude bound `max |w|` held in 32 bits: exact up to `u32::MAX − 1`, and
/// `u32::MAX` for anything larger, read back as "unbounded" (`u64::MAX`), so the bound stays
/// an upper bound and only the choice of the unchecked fast path can change, never a result.
/// Storing is monotone, so the maximum of stored bounds is the stored maximum.
#[derive(Clone, Copy, Debug)]
pub struct RowBound;

impl RowBound {
    /// The stored form of bound `m`.
    #[inline]
    pub fn put(m: u64) -> u32 {
        u32::try_from(m).unwrap_or(u32::MAX)
    }

    /// The bound a stored value stands for.
    #[inline]
    pub fn get(s: u32) -> u64 {
        if s == u32::MAX {
            u64::MAX
        } else {
            u64::from(s)
        }
    }
}

/// What does not change while a core runs: sizes, global ids, populations, masks, widths.
#[derive(Clone, Copy, Debug)]
pub struct Layout<'a> {
    /// Neurons.
    pub n: usize,
    /// Input axons (synapse rows).
    pub axons: usize,
    /// Global id of local neuron 0 (neuron `i` is `gid_base + i`).
    pub gid_base: u64,
    /// Global id of each axon's presynaptic neuron.
    pub axon_gid: AxonIds<'a>,
    /// The populations, tiling `0..n`.
    pub pops: &'a [PopRange],
    /// Axons whose presynaptic neuron takes credit (answered by retrograde messages); `None`:
    /// no axon does.
    pub credit_axons: Option<&'a BitSlice<usize, Lsb0>>,
    /// Which synapses exist, axon-major like the rows; `None`: all of them.
    pub mask: Option<&'a BitSlice<usize, Lsb0>>,
    /// Synapses per row; empty: `n` in every row (no mask).
    pub row_syn: &'a [u32],
    /// Stored widths.
    pub bits: Bits,
    /// Whether the chip keeps a mirror copy of every learnable synapse (an emulated retrograde
    /// walk): every synapse update is written twice.
    pub mirror: bool,
    /// Copy rows of a comparison rule (`copy_rows[post·n + i]`), if any.
    pub copy: Option<CopyLayout>,
    /// Whether the neurons' fan-in lives in dendrite segments on other cores (which then need
    /// every `δ`).
    pub segmented: bool,
    /// Compartments per neuron, their sums joined in its dendrite within the step: each is
    /// updated every soma step (1: a neuron is one compartment).
    pub compartments: u32,
}

/// The state of one neuron.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Neuron<V, A> {
    /// Balance: the graded net input, or the mean input of a spiking window.
    pub u: V,
    /// Membrane potential (spiking).
    pub v: V,
    /// Synaptic current (current-based LIF).
    pub cur: V,
    /// Rate (graded output, or spike count / T; a relay's input rate).
    pub r: V,
    /// Bias.
    pub b: V,
    /// Credit used by the last credit step.
    pub c: V,
    /// Credit arriving for the next credit step.
    pub c_next: V,
    /// Spikes in the current window.
    pub count: u32,
    /// Sum of the window's inputs.
    pub drive: A,
    /// A relay's regular-encoder phase.
    pub phase: V,
}

/// Populations (layers) whose outputs a core's [`Status`] counts one by one; outputs of
/// populations beyond are in the totals only.
pub const STATUS_POPS: usize = 16;

/// Per-step status a core reports to the engine.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Status {
    /// Whether a spike or graded event arrived since the last soma step.
    pub had_input: bool,
    /// Upper bound of `|acc|` since the last soma step (accumulator units).
    pub bound: u64,
    /// Largest change of a neuron's output (real units) in the last graded firing step.
    pub fire_change: f64,
    /// Largest change of a neuron's credit (real units) in the last credit step.
    pub credit_change: f64,
    /// Neurons with `δ ≠ 0` after the last credit step.
    pub nz: u32,
    /// Neuron outputs produced by the last firing step (graded rates, or ticks of spiking
    /// neurons), relays excluded.
    pub outputs: u32,
    /// Of which zero (a silent neuron).
    pub zeros: u32,
    /// `outputs` by datapath population (`PopKind::Neuron { pop }`), the first
    /// [`STATUS_POPS`].
    pub pop_outputs: [u32; STATUS_POPS],
    /// `zeros` by datapath population, likewise.
    pub pop_zeros: [u32; STATUS_POPS],
}

/// Count one output of population `pop` (zero or not) in per-population tallies.
#[inline]
fn count_pop(
    outputs: &mut [u32; STATUS_POPS],
    zeros: &mut [u32; STATUS_POPS],
    pop: usize,
    zero: bool,
) {
    if pop < STATUS_POPS {
        outputs[pop] += 1;
        zeros[pop] += u32::from(zero);
    }
}

/// The mutable memory of one core, lent by the host for one step.
#[derive(Debug)]
pub struct CoreMem<'a, D: Datapath> {
    /// Neuron state.
    pub neurons: &'a mut [Neuron<D::V, D::Acc>],
    /// Dendritic accumulators (working registers), one per neuron.
    pub acc: &'a mut [D::Acc],
    /// `δ` per neuron (working registers).
    pub delta: &'a mut [D::V],
    /// Presynaptic trace per axon (the rate `r_j` of its last window or event). Empty in a
    /// core that never learns (an evaluation copy): arrivals and windows then compute and
    /// count as ever, and nothing is stored.
    pub trace: &'a mut [D::V],
    /// Spikes per axon in the current window; empty in a core that never takes spikes (a
    /// graded net).
    pub trace_count: &'a mut [u32],
    /// Synapse rows, axon-major (`axons × n`).
    pub rows: Rows<'a, D::W>,
    /// Upper bound of `|w|` per row (writable exactly when `rows` is), in 32 bits
    /// ([`RowBound`]).
    pub row_max: Rows<'a, u32>,
    /// Copy rows of a comparison rule (`posts × n`), empty otherwise.
    pub copy_rows: Rows<'a, D::W>,
    /// Copy-row sums per neuron.
    pub copy_acc: &'a mut [D::Acc],
    /// Scratch: indices of neurons with `δ ≠ 0` (length `n`).
    pub nz: &'a mut [u32],
    /// Scratch: the same as bits (length `n`).
    pub nz_bits: &'a mut BitSlice<usize, Lsb0>,
    /// Scratch: a row's synapses with `δ ≠ 0` (length `n`).
    pub row_nz: &'a mut [u32],
    /// The input queue.
    pub queue: &'a mut EventQueueView<Packet<D::V>>,
    /// Status.
    pub status: &'a mut Status,
}

/// Synapse memory as lent to a step: writable while training, shared (read-only) while several
/// inference runs read one copy.
#[derive(Debug)]
pub enum Rows<'a, W> {
    /// Read-only: plasticity and copy updates are refused (counted as invalid).
    Read(&'a [W]),
    /// Writable.
    Write(&'a mut [W]),
}

impl<W> Rows<'_, W> {
    /// The rows.
    #[inline]
    pub fn get(&self) -> &[W] {
        match self {
            Rows::Read(r) => r,
            Rows::Write(w) => w,
        }
    }

    /// The rows for writing, if writable.
    #[inline]
    pub fn get_mut(&mut self) -> Option<&mut [W]> {
        match self {
            Rows::Read(_) => None,
            Rows::Write(w) => Some(w),
        }
    }
}

/// How a credit step sends credit back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreditMode {
    /// The balance rule: per axon, `m_j = Σ_i w_ij δ_i` over the core's own rows.
    Retrograde,
    /// Backprop / feedback alignment: `δ_i` itself travels to the presynaptic cores.
    Transport,
}

/// A core for one step: the datapath, its layout, its memory and its counters.
#[derive(Debug)]
pub struct Core<'a, D: Datapath> {
    /// The arithmetic.
    pub dp: &'a D,
    /// The static layout.
    pub lay: &'a Layout<'a>,
    /// The memory.
    pub mem: CoreMem<'a, D>,
    /// Action counts.
    pub ops: &'a mut Ops,
    /// Format events.
    pub vars: &'a mut Vars,
}

/// Of the neurons `nz`, those with a synapse in the row whose mask is `row_mask`, written to
/// the front of `out`; returns how many.
#[inline]
fn existing(row_mask: &BitSlice<usize, Lsb0>, nz: &[u32], out: &mut [u32]) -> usize {
    let mut k = 0;
    for &i in nz {
        if row_mask[i as usize] {
            out[k] = i;
            k += 1;
        }
    }
    k
}

/// Step key of tick `tick` of sample `step`.
#[inline]
pub const fn tick_step(step: u64, tick: u32) -> u64 {
    (step << 16) ^ tick as u64
}

impl<D: Datapath> Core<'_, D> {
    #[inline]
    fn n(&self) -> usize {
        self.lay.n
    }

    /// Clears everything a sample leaves behind (queue, accumulators, neuron dynamics, traces,
    /// credits), keeping weights and biases.
    pub fn reset_sample(&mut self) {
        self.mem.queue.clear();
        for a in self.mem.acc.iter_mut() {
            *a = D::Acc::default();
        }
        for d in self.mem.delta.iter_mut() {
            *d = D::V::default();
        }
        for t in self.mem.trace.iter_mut() {
            *t = D::V::default();
        }
        self.mem.trace_count.fill(0);
        for a in self.mem.copy_acc.iter_mut() {
            *a = D::Acc::default();
        }
        for nr in self.mem.neurons.iter_mut() {
            *nr = Neuron {
                b: nr.b,
                ..Neuron::default()
            };
        }
        *self.mem.status = Status::default();
    }

    /// Handles one arriving packet (see the module table). `step` keys the copy update of a
    /// comparison rule; `learn` enables it.
    pub fn arrive(&mut self, p: Packet<D::V>, step: u64, learn: bool) {
        let bits = self.lay.bits;
        match p {
            Packet::Spike { axon } | Packet::Graded { axon, .. } => {
                let j = axon as usize;
                let n = self.n();
                if j >= self.lay.axons {
                    self.vars.accumulator.invalid = self.vars.accumulator.invalid.wrapping_add(1);
                    return;
                }
                let row = &self.mem.rows.get()[j * n..(j + 1) * n];
                let syn = self.lay.row_syn.get(j).copied().unwrap_or(n as u32) as u64;
                let st = &mut *self.mem.status;
                match p {
                    Packet::Graded { rate, .. } => {
                        let pb = self.dp.product_bound(
                            RowBound::get(self.mem.row_max.get()[j]),
                            D::v_mag(rate),
                            false,
                        );
                        st.bound = st.bound.saturating_add(pb);
                        let unchecked = self.dp.bound_ok(st.bound);
                        self.dp.mac_row(
                            self.mem.acc,
                            row,
                            rate,
                            unchecked,
                            Key::new(self.lay.axon_gid.gid(j), step),
                            self.lay.gid_base,
                            self.vars,
                        );
                        if let Some(t) = self.mem.trace.get_mut(j) {
                            *t = rate;
                        }
                    }
                    _ => {
                        let pb = self.dp.product_bound(
                            RowBound::get(self.mem.row_max.get()[j]),
                            1,
                            false,
                        );
                        st.bound = st.bound.saturating_add(pb);
                        let unchecked = self.dp.bound_ok(st.bound);
                        self.dp.add_row(self.mem.acc, row, unchecked, self.vars);
                        if let Some(k) = self.mem.trace_count.get_mut(j) {
                            *k = k.saturating_add(1);
                        }
                    }
                }
                st.had_input = true;
                self.ops.add(Op::TraceUpdate, 1);
                self.ops.add(Op::Sop, syn);
                self.ops.add(Op::SynapseMemReadBit, syn * bits.weight);
                self.ops.add(Op::NeuronMemWriteBit, bits.rate);
            }
            Packet::Retro { neuron, value } | Packet::Clamp { neuron, value } => {
                let Some(nr) = self.mem.neurons.get_mut(neuron as usize) else {
                    self.vars.credit.invalid = self.vars.credit.invalid.wrapping_add(1);
                    return;
                };
                nr.c_next = self.dp.credit_add(nr.c_next, value, self.vars);
                self.ops.add(Op::CreditAccumulate, 1);
                self.ops.add(Op::NeuronMemReadBit, bits.credit);
                self.ops.add(Op::NeuronMemWriteBit, bits.credit);
            }
            Packet::Partial { neuron, value } => {
                let Some(a) = self.mem.acc.get_mut(neuron as usize) else {
                    self.vars.accumulator.invalid = self.vars.accumulator.invalid.wrapping_add(1);
                    return;
                };
                self.dp.partial_add(a, value, self.vars);
                self.mem.status.had_input = true;
                // One accumulate of a unit-weight synapse (priced as a synaptic op, but not one
                // of the network's: kept out of the NeuroBench workload).
                self.ops.add(Op::Sop, 1);
                self.ops.partial_adds = self.ops.partial_adds.wrapping_add(1);
            }
            Packet::SegmentDelta { neuron, value } => {
                let Some(d) = self.mem.delta.get_mut(neuron as usize) else {
                    self.vars.delta.invalid = self.vars.delta.invalid.wrapping_add(1);
                    return;
                };
                *d = value;
                self.ops.add(Op::NeuronMemWriteBit, bits.delta);
            }
            Packet::Delta { post, value } => self.copy_walk(post, value, step, learn),
        }
    }

    /// A comparison rule's `δ` of postsynaptic neuron `post`: walk the copy row
    /// (`copy_acc_j += M_(post, j)·δ`), then (backprop) write the copy like the post core writes
    /// the synapse.
    fn copy_walk(&mut self, post: u32, d: D::V, step: u64, learn: bool) {
        let n = self.n();
        let bits = self.lay.bits;
        let Some(cl) = self.lay.copy else {
            self.vars.delta.invalid = self.vars.delta.invalid.wrapping_add(1);
            return;
        };
        let p = post as usize;
        if (p + 1) * n > self.mem.copy_rows.get().len() {
            self.vars.delta.invalid = self.vars.delta.invalid.wrapping_add(1);
            return;
        }
        let row = &self.mem.copy_rows.get()[p * n..(p + 1) * n];
        for (a, w) in self.mem.copy_acc.iter_mut().zip(row.iter()) {
            self.dp.copy_mac(a, *w, d);
        }
        self.ops.add(Op::RetroSop, n as u64);
        self.ops.add(Op::SynapseMemReadBit, n as u64 * bits.weight);
        if learn && cl.learns {
            let Some(rows) = self.mem.copy_rows.get_mut() else {
                self.vars.weight.invalid = self.vars.weight.invalid.wrapping_add(1);
                return;
            };
            let row = &mut rows[p * n..(p + 1) * n];
            let post_gid = cl.post_gid_base + post as u64;
            let mut updates = 0u64;
            for (i, w) in row.iter_mut().enumerate() {
                let r = self.mem.neurons[i].r;
                if D::is_zero(r) {
                    continue;
                }
                let key = Key::new(self.lay.gid_base + i as u64, step);
                *w = self.dp.update_one(*w, d, r, key, post_gid, self.vars);
                updates += 1;
            }
            self.ops.add(Op::WeightUpdate, updates);
            self.ops.add(Op::SynapseMemWriteBit, updates * bits.weight);
            self.ops.add(Op::NeuronMemReadBit, updates * bits.rate);
        }
    }

    /// Handles every queued packet, oldest first.
    pub fn drain(&mut self, step: u64, learn: bool) {
        while let Some(p) = self.mem.queue.pop() {
            self.arrive(p, step, learn);
        }
    }

    fn count_update(&mut self) {
        // One update per compartment of the neuron.
        let k = u64::from(self.lay.compartments.max(1));
        if self.mem.status.had_input {
            self.ops.add(Op::NeuronUpdateActive, k);
        } else {
            self.ops.add(Op::NeuronUpdateIdle, k);
        }
    }

    /// Dendrite segments `s..e` send their non-zero sums to their home core and clear them.
    fn send_partials(&mut self, s: usize, e: usize, out: &mut impl Outbox<D::V>) {
        // A segment neuron of several compartments joins them first: one update each beyond
        // the first.
        let joins = u64::from(self.lay.compartments.max(1) - 1) * (e - s) as u64;
        if joins > 0 {
            let op = if self.mem.status.had_input {
                Op::NeuronUpdateActive
            } else {
                Op::NeuronUpdateIdle
            };
            self.ops.add(op, joins);
        }
        for i in s..e {
            let acc = core::mem::take(&mut self.mem.acc[i]);
            let v = self.dp.partial_out(acc, self.vars);
            if !D::is_zero(v) {
                out.partial(i as u32, v);
            }
        }
    }

    /// A graded firing step: every neuron reads its accumulator (`u = acc + b`, `r = f(u)`) and
    /// sends a non-zero `r`; relays send their input rate. Records the largest output change.
    pub fn fire_graded(&mut self, step: u64, out: &mut impl Outbox<D::V>) {
        let bits = self.lay.bits;
        let mut change = 0.0f64;
        let (mut outputs, mut zeros) = (0u32, 0u32);
        let (mut pop_outputs, mut pop_zeros) = ([0u32; STATUS_POPS], [0u32; STATUS_POPS]);
        for pr in self.lay.pops {
            let (s, e) = (pr.start as usize, (pr.start + pr.len) as usize);
            match pr.kind {
                PopKind::Relay => {
                    for i in s..e {
                        let r = self.mem.neurons[i].r;
                        if !D::is_zero(r) {
                            out.spike(i as u32, Some(r));
                        }
                    }
                }
                PopKind::Dendrite => self.send_partials(s, e, out),
                PopKind::Neuron { pop } => {
                    let pop = pop as usize;
                    let table = self.dp.transfer_kind(pop) == TransferKind::Table;
                    for i in s..e {
                        let key = Key::new(self.lay.gid_base + i as u64, step);
                        let acc = core::mem::take(&mut self.mem.acc[i]);
                        let b = self.mem.neurons[i].b;
                        let u = self.dp.soma_u(acc, b, key, self.vars);
                        let r = self.dp.transfer(u, pop, key, self.vars);
                        let old = self.mem.neurons[i].r;
                        change = change
                            .max(abs(self.dp.out_value(r, pop) - self.dp.out_value(old, pop)));
                        let nr = &mut self.mem.neurons[i];
                        nr.u = u;
                        nr.r = r;
                        self.count_update();
                        self.ops.add(Op::NeuronMemReadBit, bits.weight);
                        self.ops
                            .add(Op::NeuronMemWriteBit, bits.membrane + bits.rate);
                        if table {
                            self.ops.add(Op::ActivationRead, 1);
                            self.ops.add(Op::NeuronMemReadBit, bits.rate);
                        }
                        outputs += 1;
                        count_pop(&mut pop_outputs, &mut pop_zeros, pop, D::is_zero(r));
                        if D::is_zero(r) {
                            zeros += 1;
                        } else {
                            out.spike(i as u32, Some(r));
                        }
                    }
                }
            }
        }
        let st = &mut *self.mem.status;
        st.fire_change = change;
        st.had_input = false;
        st.bound = 0;
        st.outputs = outputs;
        st.zeros = zeros;
        st.pop_outputs = pop_outputs;
        st.pop_zeros = pop_zeros;
    }

    /// One tick of a spiking window of `ticks` ticks (the first tick clears the window's
    /// state; the last computes `u` and `r`). Relays encode their input rate (`poisson`: a
    /// Bernoulli draw per tick, else a regular phase accumulator).
    pub fn fire_tick(
        &mut self,
        tick: u32,
        ticks: u32,
        poisson: bool,
        step: u64,
        out: &mut impl Outbox<D::V>,
    ) {
        let bits = self.lay.bits;
        let ticks = ticks.max(1);
        let last = tick + 1 >= ticks;
        let ts = tick_step(step, tick);
        let (mut outputs, mut zeros) = (0u32, 0u32);
        let (mut pop_outputs, mut pop_zeros) = ([0u32; STATUS_POPS], [0u32; STATUS_POPS]);
        for pr in self.lay.pops {
            let (s, e) = (pr.start as usize, (pr.start + pr.len) as usize);
            match pr.kind {
                PopKind::Relay => {
                    for i in s..e {
                        let gid = self.lay.gid_base + i as u64;
                        let nr = &mut self.mem.neurons[i];
                        if tick == 0 {
                            nr.phase = D::V::default();
                            nr.count = 0;
                        }
                        let p = nr.r;
                        let fired = if poisson {
                            if D::is_zero(p) {
                                false
                            } else {
                                self.ops.add(Op::RngDraw, 1);
                                let draw = self.dp.draw(Key::new(gid, ts), purpose::POISSON);
                                self.dp.bernoulli(draw, p)
                            }
                        } else {
                            self.dp.regular_step(&mut nr.phase, p)
                        };
                        if fired {
                            nr.count += 1;
                            out.spike(i as u32, None);
                        }
                    }
                }
                PopKind::Dendrite => self.send_partials(s, e, out),
                PopKind::Neuron { pop } => {
                    let readout = self.dp.transfer_kind(pop as usize) == TransferKind::Readout;
                    let cuba = matches!(
                        self.dp.spiking_soma(pop as usize),
                        SpikingSoma::CubaLif { .. }
                    );
                    for i in s..e {
                        let key = Key::new(self.lay.gid_base + i as u64, ts);
                        if tick == 0 {
                            let nr = &mut self.mem.neurons[i];
                            nr.v = D::V::default();
                            nr.cur = D::V::default();
                            nr.count = 0;
                            nr.drive = D::Acc::default();
                        }
                        let acc = core::mem::take(&mut self.mem.acc[i]);
                        let b = self.mem.neurons[i].b;
                        let input = self.dp.tick_input(acc, b, key, self.vars);
                        let nr = &mut self.mem.neurons[i];
                        self.dp.drive_add(&mut nr.drive, input);
                        let state = if cuba {
                            2 * bits.membrane
                        } else {
                            bits.membrane
                        };
                        if !readout {
                            let spiked = self.dp.spike_step(
                                pop as usize,
                                &mut nr.v,
                                &mut nr.cur,
                                acc,
                                b,
                                input,
                                self.vars,
                            );
                            outputs += 1;
                            count_pop(&mut pop_outputs, &mut pop_zeros, pop as usize, !spiked);
                            if spiked {
                                nr.count += 1;
                                out.spike(i as u32, None);
                            } else {
                                zeros += 1;
                            }
                        }
                        if last {
                            let nr = &mut self.mem.neurons[i];
                            nr.u = self.dp.mean_u(nr.drive, ticks, self.vars);
                            nr.r = if readout {
                                nr.u
                            } else {
                                self.dp.rate_from_count(nr.count, ticks, self.vars)
                            };
                            self.ops
                                .add(Op::NeuronMemWriteBit, bits.membrane + bits.rate);
                        }
                        self.count_update();
                        self.ops.add(Op::NeuronMemReadBit, state + bits.weight);
                        self.ops.add(Op::NeuronMemWriteBit, state);
                    }
                }
            }
        }
        if last {
            // The axon traces: each axon's spike count over the window as a rate.
            for (j, &k) in self.mem.trace_count.iter().enumerate() {
                let r = self.dp.rate_from_count(k, ticks, self.vars);
                if let Some(t) = self.mem.trace.get_mut(j) {
                    *t = r;
                }
            }
            for k in self.mem.trace_count.iter_mut() {
                *k = 0;
            }
        }
        let st = &mut *self.mem.status;
        st.had_input = false;
        st.bound = 0;
        st.outputs = outputs;
        st.zeros = zeros;
        st.pop_outputs = pop_outputs;
        st.pop_zeros = pop_zeros;
    }

    /// A credit step: take the credit that arrived (`c = c_next`), form `δ = g(u)·c` by a
    /// balance-table read for every neuron holding credit, and send credit back (per `mode`).
    /// Records the largest credit change and the neurons with `δ ≠ 0`.
    pub fn credit_step(&mut self, mode: CreditMode, step: u64, out: &mut impl Outbox<D::V>) {
        let bits = self.lay.bits;
        let n = self.n();
        let mut change = 0.0f64;
        let mut nz = 0usize;
        self.mem.nz_bits.fill(false);
        for pr in self.lay.pops {
            let (s, e) = (pr.start as usize, (pr.start + pr.len) as usize);
            let pop = match pr.kind {
                PopKind::Neuron { pop } => pop,
                PopKind::Dendrite => {
                    // Segments walk with the δ their soma core sent.
                    for i in s..e {
                        if !D::is_zero(self.mem.delta[i]) {
                            self.mem.nz[nz] = i as u32;
                            self.mem.nz_bits.set(i, true);
                            nz += 1;
                        }
                    }
                    continue;
                }
                PopKind::Relay => {
                    for i in s..e {
                        self.mem.neurons[i].c_next = D::V::default();
                        self.mem.delta[i] = D::V::default();
                    }
                    continue;
                }
            };
            for i in s..e {
                let nr = &mut self.mem.neurons[i];
                let c = core::mem::take(&mut nr.c_next);
                change = change.max(abs(self.dp.credit_out(c) - self.dp.credit_out(nr.c)));
                nr.c = c;
                let d = if D::is_zero(c) {
                    D::V::default()
                } else {
                    let key = Key::new(self.lay.gid_base + i as u64, step);
                    let g = self.dp.g(nr.u, pop as usize, self.vars);
                    self.ops.add(Op::LutRead, 1);
                    self.ops
                        .add(Op::NeuronMemReadBit, bits.membrane + bits.credit + bits.lut);
                    self.ops.add(Op::NeuronMemWriteBit, bits.delta);
                    let d = self.dp.delta(g, c, key, self.vars);
                    if mode == CreditMode::Transport && !D::is_zero(d) && !self.dp.passes_delta(d) {
                        self.ops.dropped_messages += 1;
                        D::V::default()
                    } else {
                        d
                    }
                };
                self.mem.delta[i] = d;
                if !D::is_zero(d) {
                    self.mem.nz[nz] = i as u32;
                    self.mem.nz_bits.set(i, true);
                    nz += 1;
                }
            }
        }
        {
            let st = &mut *self.mem.status;
            st.credit_change = change;
            st.nz = nz as u32;
        }
        if nz == 0 {
            return;
        }
        if self.lay.segmented {
            for k in 0..nz {
                let i = self.mem.nz[k];
                out.segment_delta(i, self.mem.delta[i as usize]);
            }
        }
        match mode {
            CreditMode::Transport => {
                for k in 0..nz {
                    let i = self.mem.nz[k];
                    out.delta(i, self.mem.delta[i as usize]);
                }
            }
            CreditMode::Retrograde => {
                let Some(credit_axons) = self.lay.credit_axons else {
                    return;
                };
                self.ops.add(Op::NeuronMemReadBit, nz as u64 * bits.delta);
                // Dense walks when most neurons hold δ, gathers otherwise: the same sums.
                let dense = nz * 4 >= n;
                let dmax = self.mem.nz[..nz]
                    .iter()
                    .map(|&i| D::v_mag(self.mem.delta[i as usize]))
                    .max()
                    .unwrap_or(0);
                let mut rsops = 0u64;
                out.reserve_retros(self.lay.axons.min(credit_axons.count_ones()));
                for j in credit_axons.iter_ones() {
                    if j >= self.lay.axons {
                        break;
                    }
                    let row = &self.mem.rows.get()[j * n..(j + 1) * n];
                    let pb =
                        self.dp
                            .product_bound(RowBound::get(self.mem.row_max.get()[j]), dmax, true);
                    let unchecked = self.dp.bound_ok(pb.saturating_mul(nz as u64));
                    let key = Key::new(self.lay.axon_gid.gid(j), step);
                    let (acc, terms) = match self.lay.mask {
                        None => {
                            let acc = if dense {
                                self.dp.retro_row(
                                    row,
                                    self.mem.delta,
                                    unchecked,
                                    key,
                                    self.lay.gid_base,
                                    self.vars,
                                )
                            } else {
                                self.dp.retro_gather(
                                    row,
                                    self.mem.delta,
                                    &self.mem.nz[..nz],
                                    unchecked,
                                    key,
                                    self.lay.gid_base,
                                    self.vars,
                                )
                            };
                            (acc, nz as u64)
                        }
                        Some(mask) => {
                            let k = existing(
                                &mask[j * n..(j + 1) * n],
                                &self.mem.nz[..nz],
                                self.mem.row_nz,
                            );
                            let acc = self.dp.retro_gather(
                                row,
                                self.mem.delta,
                                &self.mem.row_nz[..k],
                                unchecked,
                                key,
                                self.lay.gid_base,
                                self.vars,
                            );
                            (acc, k as u64)
                        }
                    };
                    rsops += terms;
                    let m = self.dp.retro_finish(acc, key, self.vars);
                    if !D::is_zero(m) {
                        if self.dp.passes(m) {
                            out.retro(j as u32, m);
                        } else {
                            self.ops.dropped_messages += 1;
                        }
                    }
                }
                self.ops.add(Op::RetroSop, rsops);
                self.ops.add(Op::SynapseMemReadBit, rsops * bits.weight);
            }
        }
    }

    /// Plasticity after the core's credit step: `w_ij += η δ_i r_j` on every existing synapse
    /// with `δ_i ≠ 0` and trace `r_j ≠ 0`, then `b_i += η δ_i`.
    pub fn plasticity(&mut self, step: u64) {
        let bits = self.lay.bits;
        let n = self.n();
        let nz = self.mem.status.nz as usize;
        if nz == 0 {
            return;
        }
        self.ops.add(Op::NeuronMemReadBit, nz as u64 * bits.delta);
        if self.mem.rows.get_mut().is_none() {
            self.vars.weight.invalid = self.vars.weight.invalid.wrapping_add(1);
            return;
        }
        let copies = if self.lay.mirror { 2 } else { 1 };
        let mut updates = 0u64;
        let mut rows = 0u64;
        for j in 0..self.lay.axons {
            // A core without traces (an evaluation copy) has nothing to learn from.
            let Some(&r) = self.mem.trace.get(j) else {
                break;
            };
            if D::is_zero(r) {
                continue;
            }
            rows += 1;
            let key = Key::new(self.lay.axon_gid.gid(j), step);
            let list: &[u32] = match self.lay.mask {
                None => &self.mem.nz[..nz],
                Some(mask) => {
                    let k = existing(
                        &mask[j * n..(j + 1) * n],
                        &self.mem.nz[..nz],
                        self.mem.row_nz,
                    );
                    &self.mem.row_nz[..k]
                }
            };
            updates += list.len() as u64;
            let Some(rows) = self.mem.rows.get_mut() else {
                return;
            };
            let row = &mut rows[j * n..(j + 1) * n];
            let mx = self.dp.update_row(
                row,
                self.mem.delta,
                list,
                r,
                key,
                self.lay.gid_base,
                self.vars,
            );
            if let Some(m) = self.mem.row_max.get_mut() {
                m[j] = m[j].max(RowBound::put(mx));
            }
        }
        self.ops.add(Op::WeightUpdate, copies * updates);
        self.ops
            .add(Op::SynapseMemReadBit, copies * updates * bits.weight);
        self.ops
            .add(Op::SynapseMemWriteBit, copies * updates * bits.weight);
        self.ops.add(Op::NeuronMemReadBit, rows * bits.rate);
        // Dendrite segments have no bias (a core holds segments only, or none): their
        // neuron's soma core updates it.
        if self.lay.pops.iter().any(|p| p.kind == PopKind::Dendrite) {
            return;
        }
        for k in 0..nz {
            let i = self.mem.nz[k] as usize;
            let key = Key::new(self.lay.gid_base + i as u64, step);
            let nr = &mut self.mem.neurons[i];
            nr.b = self.dp.bias_update(nr.b, self.mem.delta[i], key, self.vars);
        }
        self.ops.add(Op::WeightUpdate, nz as u64);
        self.ops.add(Op::NeuronMemReadBit, nz as u64 * bits.weight);
        self.ops.add(Op::NeuronMemWriteBit, nz as u64 * bits.weight);
    }

    /// Ends a comparison rule's credit phase on a presynaptic core: the copy sums become the
    /// arriving credit (`c_next`), one credit accumulate per neuron.
    pub fn finish_copy(&mut self, step: u64) {
        let bits = self.lay.bits;
        for i in 0..self.n() {
            let acc = core::mem::take(&mut self.mem.copy_acc[i]);
            let key = Key::new(self.lay.gid_base + i as u64, step);
            let c = self.dp.copy_finish(acc, key, self.vars);
            let nr = &mut self.mem.neurons[i];
            nr.c_next = self.dp.credit_add(nr.c_next, c, self.vars);
        }
        self.ops.add(Op::CreditAccumulate, self.n() as u64);
        self.ops
            .add(Op::NeuronMemReadBit, self.n() as u64 * bits.credit);
        self.ops
            .add(Op::NeuronMemWriteBit, self.n() as u64 * bits.credit);
    }
}

#[inline]
fn abs(x: f64) -> f64 {
    if x < 0.0 { -x } else { x }
}
