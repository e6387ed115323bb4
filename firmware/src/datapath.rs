//! The datapath a core's handlers run on: every arithmetic step of the rule behind one trait,
//! implemented in the chip's integer formats ([`Fixed`]) and, on the host, as an exact `f64`
//! twin. The handlers of [`crate::handlers`] are generic over [`Datapath`], so both arithmetics walk
//! exactly the same events and differ only in the numbers.
//!
//! A value type `V` holds state (a raw integer in its format, or `f64`), a word type `W` holds a
//! stored synapse (`i16` for weights of at most 16 bits, so synapse memory costs what the chip's
//! memory would; `i64` otherwise) and an accumulator type `Acc` holds a dendritic or retrograde
//! sum (`i64` or `i128`).
//!
//! # The accumulator
//!
//! A chip declares how its multiply-accumulate unit applies the accumulator format
//! ([`AccMode`]): **per add** (each product is rounded to the accumulator's fractional bits and
//! every add is fitted to its range, saturation or wrap counted per add: what a fixed-width MAC
//! does) or **wide** (a declared wide accumulator: products summed exactly, the accumulator
//! format applied once when the sum is read out). Per-add saturation is checked exactly but
//! cheaply: each synapse row carries an upper bound of its weights' magnitude, and a row walk
//! that provably cannot leave the range skips the per-add test (the result is the same bits).
//!
//! # Random streams
//!
//! Every stochastic rounding draws from a [`CounterRng`] keyed by `(seed, entity, step,
//! purpose)`, with one [`purpose`] per format and phase, so no two roundings share a stream.
//! Per-synapse draws use the presynaptic neuron as entity and the postsynaptic neuron's global id
//! as the draw index (`draw_at`): one mix per synapse, independent of cores and threads.
//!
//! # Cost
//!
//! The handlers in [`crate::handlers`] count the primitive actions; the datapath only moves values
//! between formats (see the cost tables of [`crate::arith`], [`crate::credit`],
//! [`crate::plasticity`], [`crate::soma`] and [`crate::balance`]).

use core::fmt::Debug;
use core::marker::PhantomData;

use crate::arith::{
    CounterRng, Counters, Exact, Format, NoBits, Overflow, RandomBits, bump, fit, fit_exact,
    requantize, rescale, round_shr, shl_exact,
};
use crate::balance::Table;
use crate::credit;
use crate::plasticity;
use crate::soma::{self, CubaLif, Transfer};

/// Rounding and overflow events per state variable (each a [`Counters`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Vars {
    /// Weights and biases (plasticity, loading).
    pub weight: Counters,
    /// Membrane / balance `u`, spiking state.
    pub membrane: Counters,
    /// Rates and traces.
    pub rate: Counters,
    /// Credits and retrograde messages.
    pub credit: Counters,
    /// Messages `δ`.
    pub delta: Counters,
    /// Balance-table entries and lookups (lookups outside the table's range are `lut_clamps`).
    pub lut: Counters,
    /// Row-sum accumulators.
    pub accumulator: Counters,
}

impl Vars {
    /// Names and counters in report order.
    pub fn entries(&self) -> [(&'static str, &Counters); 7] {
        [
            ("weight", &self.weight),
            ("membrane", &self.membrane),
            ("rate", &self.rate),
            ("credit", &self.credit),
            ("delta", &self.delta),
            ("lut", &self.lut),
            ("accumulator", &self.accumulator),
        ]
    }

    /// Adds every count of `o`.
    pub fn merge(&mut self, o: &Vars) {
        self.weight.merge(&o.weight);
        self.membrane.merge(&o.membrane);
        self.rate.merge(&o.rate);
        self.credit.merge(&o.credit);
        self.delta.merge(&o.delta);
        self.lut.merge(&o.lut);
        self.accumulator.merge(&o.accumulator);
    }

    /// Saturations + wraps + invalid inputs over all variables.
    pub fn overflow_events(&self) -> u64 {
        self.entries()
            .iter()
            .map(|(_, c)| c.saturations + c.wraps + c.invalid)
            .fold(0u64, u64::saturating_add)
    }

    /// Random draws over all variables (stochastic rounding).
    pub fn rng_draws(&self) -> u64 {
        self.entries()
            .iter()
            .map(|(_, c)| c.rng_draws)
            .fold(0u64, u64::saturating_add)
    }
}

/// Purpose tags of the counter-based random streams: one per format and phase.
pub mod purpose {
    /// Stochastic rounding of a weight update.
    pub const WEIGHT_ROUND: u32 = 1;
    /// Stochastic rounding of a bias update.
    pub const BIAS_ROUND: u32 = 2;
    /// Poisson input encoding.
    pub const POISSON: u32 = 3;
    /// A graded soma reading its row sum into the membrane format.
    pub const SOMA_U: u32 = 4;
    /// A graded soma's rate `f(u)` into the rate format.
    pub const TRANSFER: u32 = 5;
    /// `δ = g·c` into the delta format.
    pub const DELTA: u32 = 6;
    /// A retrograde row sum into the credit format.
    pub const RETRO_FINISH: u32 = 7;
    /// A spiking soma's tick input into the membrane format.
    pub const TICK_INPUT: u32 = 8;
    /// A forward product rounded into a per-add accumulator.
    pub const ACC_FORWARD: u32 = 9;
    /// A retrograde product rounded into a per-add accumulator.
    pub const ACC_RETRO: u32 = 10;
    /// A backprop / feedback-alignment copy sum into the credit format.
    pub const COPY_FINISH: u32 = 11;
}

/// Key of a random stream: the entity (a neuron's or axon's global id) and the step (sample and
/// tick). The purpose is chosen by the operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Key {
    /// Global id of the neuron (or presynaptic neuron of a row).
    pub entity: u64,
    /// Sample and tick.
    pub step: u64,
}

impl Key {
    /// A key.
    #[inline]
    pub const fn new(entity: u64, step: u64) -> Self {
        Key { entity, step }
    }
}

/// How the multiply-accumulate unit applies the accumulator format (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccMode {
    /// Every product is rounded to the accumulator's fractional bits and every add fitted to its
    /// range (counted per add).
    PerAdd,
    /// Products summed exactly; the accumulator format applied once at read-out.
    Wide,
}

/// The spiking soma program a chip runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpikingSoma {
    /// Integrate-and-fire, threshold 1, reset by subtraction ([`soma::if_step`]).
    If,
    /// Leaky integrate-and-fire ([`soma::lif_step`]) with a 12-bit decay.
    Lif {
        /// Voltage decay, 0..=4096 (0: no leak).
        decay: u16,
    },
    /// Loihi's current-based LIF ([`soma::cuba_lif_step`], bit-identical to Lava 0.10's
    /// `PyLifModelBitAcc`): threshold 1.0, reset to zero; the bias enters the voltage.
    CubaLif {
        /// Current decay, 0..=4095.
        du: u16,
        /// Voltage decay, 0..=4095.
        dv: u16,
    },
}

/// How a graded neuron's rate is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransferKind {
    /// A linear read-out: the rate *is* `u`, kept in the membrane format.
    Readout,
    /// `max(u, 0)`.
    Relu,
    /// `clip(u, 0, 1)`.
    HardSigmoid,
    /// `u` into the rate format.
    Identity,
    /// A tabulated `f` (sigmoid, tanh): one activation-table read.
    Table,
}

/// The eight formats of the rule's state (ARCHITECTURE.md §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FormatSet {
    /// Synaptic weights and biases.
    pub weight: Format,
    /// Membrane / net input.
    pub membrane: Format,
    /// Rates and traces.
    pub rate: Format,
    /// Credits and retrograde messages.
    pub credit: Format,
    /// `δ`.
    pub delta: Format,
    /// Balance-table entries.
    pub lut: Format,
    /// Accumulators.
    pub accumulator: Format,
    /// Learning rate.
    pub learning_rate: Format,
}

/// What a datapath needs to know of each population (a layer, or the hidden / output groups of
/// an all-to-all net): its transfer and its balance table.
#[derive(Clone, Debug)]
pub struct FixedPop<S> {
    /// Graded transfer.
    pub transfer: TransferKind,
    /// Activation table (for [`TransferKind::Table`]).
    pub f: Option<Table<S>>,
    /// Balance table `g(u)`.
    pub g: Table<S>,
    /// This population's spiking soma, where it differs from the chip's (e.g. a NIR neuron's
    /// own decays); `None`: the chip's.
    pub soma: Option<SpikingSoma>,
}

/// Largest number of populations a datapath holds.
pub const MAX_POPS: usize = 32;

/// A stored value type of an integer datapath.
pub trait Word: Copy + Default + PartialEq + Debug + Send + Sync + 'static {
    /// Bits the word holds.
    const BITS: u32;
    /// The raw value.
    fn get(self) -> i64;
    /// A raw value that fits the word (callers fit it to a format of at most `BITS` bits first).
    fn put(v: i64) -> Self;
}

impl Word for i16 {
    const BITS: u32 = 16;
    #[inline(always)]
    fn get(self) -> i64 {
        self as i64
    }
    #[inline(always)]
    fn put(v: i64) -> Self {
        v as i16
    }
}

impl Word for i32 {
    const BITS: u32 = 32;
    #[inline(always)]
    fn get(self) -> i64 {
        self as i64
    }
    #[inline(always)]
    fn put(v: i64) -> Self {
        v as i32
    }
}

impl Word for i64 {
    const BITS: u32 = 64;
    #[inline(always)]
    fn get(self) -> i64 {
        self
    }
    #[inline(always)]
    fn put(v: i64) -> Self {
        v
    }
}

/// An accumulator integer of an integer datapath.
pub trait AccWord: Copy + Default + Debug + Send + Sync + 'static {
    /// Widens to `i128`.
    fn wide(self) -> i128;
    /// Narrows from `i128` (callers guarantee it fits).
    fn narrow(v: i128) -> Self;
    /// `self + x` where the caller guarantees no overflow.
    fn add_i64(self, x: i64) -> Self;
    /// `self + (w·x << shift)`, the product taken at the accumulator's width (callers guarantee
    /// no overflow, see [`fits_words`]).
    fn mac(self, w: i64, x: i64, shift: u32) -> Self;
    /// `self + round(w·x / 2^s)`, rounding to nearest, ties to even (`s ≥ 1`).
    fn mac_ne(self, w: i64, x: i64, s: u32) -> Self;
    /// `self + floor(w·x / 2^s)`.
    fn mac_floor(self, w: i64, x: i64, s: u32) -> Self;
}

impl AccWord for i64 {
    #[inline(always)]
    fn wide(self) -> i128 {
        self as i128
    }
    #[inline(always)]
    fn narrow(v: i128) -> Self {
        v as i64
    }
    #[inline(always)]
    fn add_i64(self, x: i64) -> Self {
        self.wrapping_add(x)
    }
    #[inline(always)]
    fn mac(self, w: i64, x: i64, shift: u32) -> Self {
        self.wrapping_add(w.wrapping_mul(x) << shift)
    }
    #[inline(always)]
    fn mac_ne(self, w: i64, x: i64, s: u32) -> Self {
        let p = w.wrapping_mul(x);
        // Half minus one, plus the parity of the quotient: ties go to even.
        self.wrapping_add((p + ((1i64 << (s - 1)) - 1) + ((p >> s) & 1)) >> s)
    }
    #[inline(always)]
    fn mac_floor(self, w: i64, x: i64, s: u32) -> Self {
        self.wrapping_add(w.wrapping_mul(x) >> s)
    }
}

impl AccWord for i128 {
    #[inline(always)]
    fn wide(self) -> i128 {
        self
    }
    #[inline(always)]
    fn narrow(v: i128) -> Self {
        v
    }
    #[inline(always)]
    fn add_i64(self, x: i64) -> Self {
        self.wrapping_add(x as i128)
    }
    #[inline(always)]
    fn mac(self, w: i64, x: i64, shift: u32) -> Self {
        self.wrapping_add((w as i128 * x as i128) << shift)
    }
    #[inline(always)]
    fn mac_ne(self, w: i64, x: i64, s: u32) -> Self {
        let p = w as i128 * x as i128;
        self.wrapping_add((p + ((1i128 << (s - 1)) - 1) + ((p >> s) & 1)) >> s)
    }
    #[inline(always)]
    fn mac_floor(self, w: i64, x: i64, s: u32) -> Self {
        self.wrapping_add((w as i128 * x as i128) >> s)
    }
}

/// Every arithmetic step the core handlers take, in one number type.
///
/// The methods are the rule's primitives; a handler calls them and counts the actions. All
/// methods record rounding and overflow events in the [`Vars`] they are given.
pub trait Datapath: Send + Sync {
    /// A stored state value (raw integer in its format, or `f64`).
    type V: Copy + Default + PartialEq + Debug + Send + Sync;
    /// A stored synapse.
    type W: Copy + Default + PartialEq + Debug + Send + Sync;
    /// A dendritic or retrograde accumulator.
    type Acc: Copy + Default + Debug + Send + Sync;

    /// Whether a value is zero (a silent neuron, a zero credit).
    fn is_zero(v: Self::V) -> bool;
    /// Magnitude of a stored synapse, for the per-add bound (0 for the float twin).
    fn w_mag(w: Self::W) -> u64;
    /// Magnitude of a rate / message payload for the per-add bound.
    fn v_mag(v: Self::V) -> u64;
    /// Whether row walks of magnitude bound `bound` may skip the per-add range test (always
    /// true for the float twin and for wide accumulators).
    fn bound_ok(&self, bound: u64) -> bool;
    /// The product bound of a row of magnitude `w` times a payload of magnitude `v`, in the
    /// accumulator's units (saturating).
    fn product_bound(&self, w: u64, v: u64, retro: bool) -> u64;

    /// A real weight into a stored synapse (counted).
    fn weight_in(&self, x: f64, c: &mut Vars) -> Self::W;
    /// The real value of a stored synapse.
    fn weight_out(&self, w: Self::W) -> f64;
    /// A real bias (weight format).
    fn bias_in(&self, x: f64, c: &mut Vars) -> Self::V;
    /// The real value of a bias.
    fn bias_out(&self, b: Self::V) -> f64;
    /// A real rate (an input neuron's rate from the host).
    fn rate_in(&self, x: f64, c: &mut Vars) -> Self::V;
    /// The real value of a rate.
    fn rate_out(&self, v: Self::V) -> f64;
    /// The real value of a membrane value.
    fn u_out(&self, v: Self::V) -> f64;
    /// A real credit (the host's output clamp).
    fn credit_in(&self, x: f64, c: &mut Vars) -> Self::V;
    /// The real value of a credit.
    fn credit_out(&self, v: Self::V) -> f64;
    /// The real value of a `δ`.
    fn delta_out(&self, v: Self::V) -> f64;
    /// The real output of population `pop` (membrane format for a linear read-out).
    fn out_value(&self, r: Self::V, pop: usize) -> f64;

    /// Graded row walk: `acc[i] += w[i]·r` for every synapse of the row (accumulator per the
    /// chip's [`AccMode`]). `key.entity` is the row's presynaptic neuron; `post_base` the global
    /// id of the row's first postsynaptic neuron.
    #[allow(clippy::too_many_arguments)]
    fn mac_row(
        &self,
        acc: &mut [Self::Acc],
        row: &[Self::W],
        r: Self::V,
        unchecked: bool,
        key: Key,
        post_base: u64,
        c: &mut Vars,
    );
    /// Binary-spike row walk: `acc[i] += w[i]`.
    fn add_row(&self, acc: &mut [Self::Acc], row: &[Self::W], unchecked: bool, c: &mut Vars);

    /// Graded soma: `u = acc + b` into the membrane format.
    fn soma_u(&self, acc: Self::Acc, b: Self::V, key: Key, c: &mut Vars) -> Self::V;
    /// Graded rate of population `pop`.
    fn transfer(&self, u: Self::V, pop: usize, key: Key, c: &mut Vars) -> Self::V;
    /// The transfer of population `pop`.
    fn transfer_kind(&self, pop: usize) -> TransferKind;
    /// Spiking tick input `acc + b` (binary-spike sum) in the membrane format.
    fn tick_input(&self, acc: Self::Acc, b: Self::V, key: Key, c: &mut Vars) -> Self::V;
    /// One tick of population `pop`'s spiking soma ([`spiking_soma`](Self::spiking_soma)). `v`
    /// membrane, `cur` current (CUBA), `acc` the binary-spike sum, `b` the bias, `input` =
    /// [`tick_input`](Self::tick_input). Returns the spike.
    #[allow(clippy::too_many_arguments)]
    fn spike_step(
        &self,
        pop: usize,
        v: &mut Self::V,
        cur: &mut Self::V,
        acc: Self::Acc,
        b: Self::V,
        input: Self::V,
        c: &mut Vars,
    ) -> bool;
    /// The spiking soma program of population `pop`: its own, or the chip's.
    fn spiking_soma(&self, pop: usize) -> SpikingSoma;
    /// `total += input`, exact.
    fn drive_add(&self, total: &mut Self::Acc, input: Self::V);
    /// A dendrite segment's sum as a partial-sum payload (an `i64` in accumulator units; a
    /// wider sum saturates, counted).
    fn partial_out(&self, acc: Self::Acc, c: &mut Vars) -> Self::V;
    /// `acc += partial` at the home core, with the accumulator's own add rule (per add or wide).
    fn partial_add(&self, acc: &mut Self::Acc, v: Self::V, c: &mut Vars);
    /// Mean of a window's inputs, `total / ticks`, in the membrane format.
    fn mean_u(&self, total: Self::Acc, ticks: u32, c: &mut Vars) -> Self::V;
    /// Rate `count / ticks`.
    fn rate_from_count(&self, count: u32, ticks: u32, c: &mut Vars) -> Self::V;
    /// One tick of a regular encoder.
    fn regular_step(&self, phase: &mut Self::V, p: Self::V) -> bool;
    /// A Bernoulli draw of a Poisson encoder.
    fn bernoulli(&self, draw: u64, p: Self::V) -> bool;
    /// The first draw of the stream `(seed, key, purpose)`.
    fn draw(&self, key: Key, purpose: u32) -> u64;

    /// Balance-table read `g(u)` of population `pop`.
    fn g(&self, u: Self::V, pop: usize, c: &mut Vars) -> Self::V;
    /// `δ = g·c`.
    fn delta(&self, g: Self::V, cr: Self::V, key: Key, c: &mut Vars) -> Self::V;
    /// Retrograde row walk: `Σ_i w[i]·δ[i]` over a whole row (zeros add nothing).
    fn retro_row(
        &self,
        row: &[Self::W],
        delta: &[Self::V],
        unchecked: bool,
        key: Key,
        post_base: u64,
        c: &mut Vars,
    ) -> Self::Acc;
    /// Retrograde row walk over the listed synapses only.
    #[allow(clippy::too_many_arguments)]
    fn retro_gather(
        &self,
        row: &[Self::W],
        delta: &[Self::V],
        nz: &[u32],
        unchecked: bool,
        key: Key,
        post_base: u64,
        c: &mut Vars,
    ) -> Self::Acc;
    /// A retrograde row sum as a message in the credit format.
    fn retro_finish(&self, acc: Self::Acc, key: Key, c: &mut Vars) -> Self::V;
    /// One term of a comparison rule's copy sum `Σ_i M_ji δ_i` (exact).
    fn copy_mac(&self, acc: &mut Self::Acc, w: Self::W, d: Self::V);
    /// A comparison rule's exact copy sum as a credit (rounded once).
    fn copy_finish(&self, acc: Self::Acc, key: Key, c: &mut Vars) -> Self::V;
    /// Whether a retrograde message (credit format) is sent under the message threshold.
    fn passes(&self, m: Self::V) -> bool;
    /// Whether a `δ` packet (delta format) is sent under the message threshold.
    fn passes_delta(&self, d: Self::V) -> bool;
    /// `c + m` at the presynaptic core.
    fn credit_add(&self, cj: Self::V, m: Self::V, c: &mut Vars) -> Self::V;

    /// Plasticity on one row: `w[i] += η·δ[i]·r` for each listed `i`. `key.entity` is the
    /// presynaptic neuron; the rounding draw of synapse `i` is number `post_base + i` of its
    /// stream. Returns the new largest `|w|` written (for the row bound).
    #[allow(clippy::too_many_arguments)]
    fn update_row(
        &self,
        row: &mut [Self::W],
        delta: &[Self::V],
        nz: &[u32],
        r: Self::V,
        key: Key,
        post_base: u64,
        c: &mut Vars,
    ) -> u64;
    /// One synapse of a comparison rule's copy: `w += η·δ·r` with the draw the post core's
    /// update of the same synapse takes (so both copies stay bit-identical).
    fn update_one(
        &self,
        w: Self::W,
        d: Self::V,
        r: Self::V,
        key: Key,
        post: u64,
        c: &mut Vars,
    ) -> Self::W;
    /// `b + η·δ`.
    fn bias_update(&self, b: Self::V, d: Self::V, key: Key, c: &mut Vars) -> Self::V;
}

/// The chip's integer datapath: every value a raw integer in its format, every step a firmware
/// kernel. `W` is the synapse word, `A` the accumulator integer, `S` the table storage.
#[derive(Clone, Debug)]
pub struct Fixed<W, A, S> {
    /// The formats.
    pub f: FormatSet,
    seed: u64,
    lr: i64,
    thr_credit: i64,
    thr_delta: i64,
    acc_mode: AccMode,
    soma: SpikingSoma,
    pops: heapless::Vec<FixedPop<S>, MAX_POPS>,
    /// Forward product fractional bits `w.frac + r.frac`.
    fwd_frac: u32,
    /// Retrograde product fractional bits `w.frac + δ.frac`.
    retro_frac: u32,
    acc_frac: u32,
    acc_lo: i64,
    acc_hi: i64,
    _w: PhantomData<(W, A)>,
}

/// Why an integer datapath cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FixedError {
    /// More than [`MAX_POPS`] populations.
    TooManyPops(usize),
    /// The accumulator or the weights need a wider word than `W`/`A` provide; holds the bits
    /// needed.
    Width(u32),
}

impl core::fmt::Display for FixedError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FixedError::TooManyPops(n) => {
                write!(f, "{n} populations; a datapath holds at most {MAX_POPS}")
            }
            FixedError::Width(b) => write!(f, "values of {b} bits do not fit the datapath's words"),
        }
    }
}

/// Whether an integer datapath with synapse word `W` and accumulator `A` holds `f` exactly
/// (weights fit the word; per-add products and sums fit the accumulator integer with margin).
pub fn fits_words<W: Word, A: AccWord>(f: &FormatSet, mode: AccMode) -> bool {
    let acc_bits: u32 = if core::mem::size_of::<A>() >= 16 {
        126
    } else {
        62
    };
    let wb = f.weight.bits as u32;
    if wb > W::BITS {
        return false;
    }
    let pay = (f.rate.bits as u32).max(f.delta.bits as u32);
    let prod = wb + pay;
    let af = f.accumulator.frac as u32;
    let pf =
        (f.weight.frac as u32 + f.rate.frac as u32).min(f.weight.frac as u32 + f.delta.frac as u32);
    let lift = af.saturating_sub(pf);
    match mode {
        // A product shifted into the accumulator, plus the accumulator's own range.
        AccMode::PerAdd => prod + lift < acc_bits && (f.accumulator.bits as u32) < acc_bits,
        // Exact sums of up to 2^17 products.
        AccMode::Wide => prod + 17 <= acc_bits,
    }
}

/// How a product at some fractional bits enters a per-add accumulator without a random draw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Entry {
    /// Exact: shift left by this many bits.
    Lift(u32),
    /// Round to nearest even, discarding this many bits.
    Nearest(u32),
    /// Floor, discarding this many bits.
    Floor(u32),
    /// Any other rounding (toward zero, stochastic): the general path.
    General,
}

/// A uniform word from draw `i` of a keyed stream (one draw per rounding).
struct DrawAt<'a> {
    rng: &'a CounterRng,
    i: u64,
}

impl RandomBits for DrawAt<'_> {
    #[inline]
    fn next_u64(&mut self) -> u64 {
        let x = self.rng.draw_at(self.i);
        self.i = self.i.wrapping_add(1 << 40);
        x
    }
}

impl<W: Word, A: AccWord, S: AsRef<[i64]>> Fixed<W, A, S> {
    /// A datapath for formats `f`, learning rate `lr` (raw in `f.learning_rate`), message
    /// thresholds (raw, credit and delta formats), the chip's accumulator mode and spiking soma,
    /// and one [`FixedPop`] per population.
    ///
    /// # Errors
    /// Too many populations, or formats wider than the words (see [`fits_words`]).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        f: FormatSet,
        seed: u64,
        lr: i64,
        thresholds: (i64, i64),
        acc_mode: AccMode,
        soma: SpikingSoma,
        pops: impl IntoIterator<Item = FixedPop<S>>,
    ) -> Result<Self, FixedError> {
        if !fits_words::<W, A>(&f, acc_mode) {
            return Err(FixedError::Width(
                f.weight.bits as u32 + (f.rate.bits as u32).max(f.delta.bits as u32),
            ));
        }
        let mut v = heapless::Vec::new();
        let mut n = 0;
        for p in pops {
            n += 1;
            if v.push(p).is_err() {
                return Err(FixedError::TooManyPops(n));
            }
        }
        Ok(Fixed {
            fwd_frac: f.weight.frac as u32 + f.rate.frac as u32,
            retro_frac: f.weight.frac as u32 + f.delta.frac as u32,
            acc_frac: f.accumulator.frac as u32,
            acc_lo: f.accumulator.min_raw(),
            acc_hi: f.accumulator.max_raw(),
            f,
            seed,
            lr,
            thr_credit: thresholds.0,
            thr_delta: thresholds.1,
            acc_mode,
            soma,
            pops: v,
            _w: PhantomData,
        })
    }

    /// The populations.
    pub fn pops(&self) -> &[FixedPop<S>] {
        &self.pops
    }

    /// The accumulator mode.
    pub fn acc_mode(&self) -> AccMode {
        self.acc_mode
    }

    /// The largest jump of population `pop`'s rate between adjacent activation-table entries
    /// (0 for piecewise-linear transfers): the resolution below which a fixed-point firing
    /// relaxation can dither.
    pub fn transfer_resolution(&self, pop: usize) -> f64 {
        self.pops
            .get(pop)
            .and_then(|p| p.f.as_ref())
            .map_or(0.0, |t| {
                t.entries()
                    .windows(2)
                    .map(|p| (self.f.rate.to_f64(p[1]) - self.f.rate.to_f64(p[0])).abs())
                    .fold(0.0, f64::max)
            })
    }

    #[inline]
    fn rng(&self, key: Key, purpose: u32) -> CounterRng {
        CounterRng::new(self.seed, key.entity, key.step, purpose)
    }

    /// A product at `frac` fractional bits into the per-add accumulator's units (rounded with
    /// the accumulator's rounding when bits are discarded).
    #[inline]
    fn to_acc(&self, p: i128, frac: u32, rng: &mut impl RandomBits, c: &mut Counters) -> Exact {
        rescale(p, frac, self.acc_frac, self.f.accumulator.rounding, rng, c)
    }

    /// One per-add step: `fit(acc + x)` in the accumulator format (counted).
    #[inline]
    fn add_fit(&self, a: i128, x: Exact, c: &mut Counters) -> i128 {
        fit_exact(x.add(a), &self.f.accumulator, c) as i128
    }

    /// The general per-add row walk (any rounding, checked adds).
    #[allow(clippy::too_many_arguments)]
    fn per_add_row(
        &self,
        acc: &mut [A],
        row: &[W],
        pay: i64,
        frac: u32,
        key: Key,
        post_base: u64,
        purpose: u32,
        c: &mut Counters,
    ) {
        let rng = self.rng(key, purpose);
        for (i, (a, w)) in acc.iter_mut().zip(row).enumerate() {
            let p = w.get() as i128 * pay as i128;
            let mut d = DrawAt {
                rng: &rng,
                i: post_base + i as u64,
            };
            let x = self.to_acc(p, frac, &mut d, c);
            *a = A::narrow(self.add_fit(a.wide(), x, c));
        }
    }

    /// [`plasticity::weight_update`] over a row, inlined for the common case: operands in
    /// their formats (`δ` always is: it comes from [`Datapath::delta`]), the exact product `η·δ·r` within `i64`, and a rounding of 1 to 62 bits by
    /// floor, nearest-even or stochastic (one draw, `draw_at(post)`, when bits are discarded).
    /// The same bits and counts as the kernel; `None` where the case does not hold.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn update_row_fast(
        &self,
        row: &mut [W],
        delta: &[i64],
        nz: &[u32],
        r: i64,
        rng: &CounterRng,
        post_base: u64,
        c: &mut Vars,
    ) -> Option<u64> {
        let f = &self.f;
        let (lf, df, rf, wf) = (
            f.learning_rate.frac as u32,
            f.delta.frac as u32,
            f.rate.frac as u32,
            f.weight.frac as u32,
        );
        let wide = f.learning_rate.bits as u32 + f.delta.bits as u32 + f.rate.bits as u32;
        let frac = lf + df + rf;
        if wide > 62 || frac <= wf || frac - wf > 62 {
            return None;
        }
        let s = frac - wf;
        let mode = f.weight.rounding;
        if matches!(mode, crate::arith::Rounding::TowardZero) {
            return None;
        }
        let in_fmt = |v: i64, fm: &Format| v >= fm.min_raw() && v <= fm.max_raw();
        if !in_fmt(r, &f.rate) || !in_fmt(self.lr, &f.learning_rate) {
            return None;
        }
        // `δ` is in its format by construction: every `δ` comes from `delta`, which fits it.
        let (lo, hi) = (f.weight.min_raw(), f.weight.max_raw());
        let mask = (1i64 << s) - 1;
        let half = 1i64 << (s - 1);
        let lr = self.lr;
        let (mut draws, mut sats, mut wraps, mut mx) = (0u64, 0u64, 0u64, 0u64);
        for &i in nz {
            let i = i as usize;
            let p = lr * delta[i] * r;
            let q = p >> s;
            let rem = p & mask;
            let d = match mode {
                crate::arith::Rounding::Floor => q,
                crate::arith::Rounding::NearestEven => {
                    q + i64::from(rem > half || (rem == half && (q & 1) == 1))
                }
                _ => {
                    if rem == 0 {
                        q
                    } else {
                        draws += 1;
                        let u = (rng.draw_at(post_base + i as u64) >> (64 - s)) as i64;
                        q + ((rem + u) >> s)
                    }
                }
            };
            let w = row[i].get() + d;
            let w = if w < lo || w > hi {
                match f.weight.overflow {
                    Overflow::Saturate => {
                        sats += 1;
                        w.clamp(lo, hi)
                    }
                    Overflow::Wrap => {
                        wraps += 1;
                        fit(w as i128, &f.weight, &mut Counters::default())
                    }
                }
            } else {
                w
            };
            mx = mx.max(w.unsigned_abs());
            row[i] = W::put(w);
        }
        let cw = &mut c.weight;
        cw.rng_draws = cw.rng_draws.saturating_add(draws);
        cw.saturations = cw.saturations.saturating_add(sats);
        cw.wraps = cw.wraps.saturating_add(wraps);
        Some(mx)
    }

    /// How products at `frac` enter the per-add accumulator.
    #[inline]
    fn entry(&self, frac: u32) -> Entry {
        if self.acc_frac >= frac {
            return Entry::Lift(self.acc_frac - frac);
        }
        let s = frac - self.acc_frac;
        if s > 62 {
            return Entry::General;
        }
        match self.f.accumulator.rounding {
            crate::arith::Rounding::NearestEven => Entry::Nearest(s),
            crate::arith::Rounding::Floor => Entry::Floor(s),
            _ => Entry::General,
        }
    }
}

impl<W: Word, A: AccWord, S: AsRef<[i64]> + Send + Sync> Datapath for Fixed<W, A, S> {
    type V = i64;
    type W = W;
    type Acc = A;

    #[inline(always)]
    fn is_zero(v: i64) -> bool {
        v == 0
    }
    #[inline(always)]
    fn w_mag(w: W) -> u64 {
        w.get().unsigned_abs()
    }
    #[inline(always)]
    fn v_mag(v: i64) -> u64 {
        v.unsigned_abs()
    }
    #[inline]
    fn bound_ok(&self, bound: u64) -> bool {
        match self.acc_mode {
            AccMode::Wide => true,
            AccMode::PerAdd => {
                self.f.accumulator.overflow == Overflow::Saturate
                    && bound <= self.acc_hi.min(-(self.acc_lo + 1)).max(0) as u64
            }
        }
    }
    #[inline]
    fn product_bound(&self, w: u64, v: u64, retro: bool) -> u64 {
        let frac = if retro {
            self.retro_frac
        } else {
            self.fwd_frac
        };
        let p = (w as u128).saturating_mul(v as u128);
        let p = if self.acc_frac >= frac {
            p.checked_shl(self.acc_frac - frac).unwrap_or(u128::MAX)
        } else {
            // Rounding may add one unit.
            (p >> (frac - self.acc_frac)) + 1
        };
        u64::try_from(p).unwrap_or(u64::MAX)
    }

    fn weight_in(&self, x: f64, c: &mut Vars) -> W {
        W::put(self.f.weight.from_f64(x, &mut c.weight))
    }
    fn weight_out(&self, w: W) -> f64 {
        self.f.weight.to_f64(w.get())
    }
    fn bias_in(&self, x: f64, c: &mut Vars) -> i64 {
        self.f.weight.from_f64(x, &mut c.weight)
    }
    fn bias_out(&self, b: i64) -> f64 {
        self.f.weight.to_f64(b)
    }
    fn rate_in(&self, x: f64, c: &mut Vars) -> i64 {
        self.f.rate.from_f64(x, &mut c.rate)
    }
    fn rate_out(&self, v: i64) -> f64 {
        self.f.rate.to_f64(v)
    }
    fn u_out(&self, v: i64) -> f64 {
        self.f.membrane.to_f64(v)
    }
    fn credit_in(&self, x: f64, c: &mut Vars) -> i64 {
        self.f.credit.from_f64(x, &mut c.credit)
    }
    fn credit_out(&self, v: i64) -> f64 {
        self.f.credit.to_f64(v)
    }
    fn delta_out(&self, v: i64) -> f64 {
        self.f.delta.to_f64(v)
    }
    fn out_value(&self, r: i64, pop: usize) -> f64 {
        match self.transfer_kind(pop) {
            TransferKind::Readout => self.u_out(r),
            _ => self.rate_out(r),
        }
    }

    #[inline]
    fn mac_row(
        &self,
        acc: &mut [A],
        row: &[W],
        r: i64,
        unchecked: bool,
        key: Key,
        post_base: u64,
        c: &mut Vars,
    ) {
        match self.acc_mode {
            AccMode::Wide => {
                // Exact products at fwd_frac.
                for (a, w) in acc.iter_mut().zip(row) {
                    *a = a.mac(w.get(), r, 0);
                }
            }
            AccMode::PerAdd => match self.entry(self.fwd_frac) {
                Entry::Lift(l) if unchecked => {
                    for (a, w) in acc.iter_mut().zip(row) {
                        *a = a.mac(w.get(), r, l);
                    }
                }
                Entry::Nearest(sh) if unchecked => {
                    for (a, w) in acc.iter_mut().zip(row) {
                        *a = a.mac_ne(w.get(), r, sh);
                    }
                }
                Entry::Floor(sh) if unchecked => {
                    for (a, w) in acc.iter_mut().zip(row) {
                        *a = a.mac_floor(w.get(), r, sh);
                    }
                }
                _ => self.per_add_row(
                    acc,
                    row,
                    r,
                    self.fwd_frac,
                    key,
                    post_base,
                    purpose::ACC_FORWARD,
                    &mut c.accumulator,
                ),
            },
        }
    }

    #[inline]
    fn add_row(&self, acc: &mut [A], row: &[W], unchecked: bool, c: &mut Vars) {
        let wf = self.f.weight.frac as u32;
        match self.acc_mode {
            AccMode::Wide => {
                for (a, w) in acc.iter_mut().zip(row) {
                    *a = a.add_i64(w.get());
                }
            }
            AccMode::PerAdd => match self.entry(wf) {
                Entry::Lift(l) if unchecked => {
                    for (a, w) in acc.iter_mut().zip(row) {
                        *a = a.mac(w.get(), 1, l);
                    }
                }
                // Checked adds (or weights finer than the accumulator, rounded per add).
                _ => self.per_add_row(
                    acc,
                    row,
                    1,
                    wf,
                    Key::default(),
                    0,
                    purpose::ACC_FORWARD,
                    &mut c.accumulator,
                ),
            },
        }
    }

    fn soma_u(&self, acc: A, b: i64, key: Key, c: &mut Vars) -> i64 {
        let mut rng = self.rng(key, purpose::SOMA_U);
        let wf = self.f.weight.frac as u32;
        let a = match self.acc_mode {
            // The exact row sum enters the accumulator format once.
            AccMode::Wide => requantize(
                acc.wide(),
                self.fwd_frac,
                &self.f.accumulator,
                &mut rng,
                &mut c.accumulator,
            ) as i128,
            AccMode::PerAdd => acc.wide(),
        };
        // The bias is added in the accumulator (one more add), then read into the membrane.
        let bias = self.to_acc(b as i128, wf, &mut rng, &mut c.accumulator);
        let sum = self.add_fit(a, bias, &mut c.accumulator);
        requantize(
            sum,
            self.acc_frac,
            &self.f.membrane,
            &mut rng,
            &mut c.membrane,
        )
    }

    fn transfer(&self, u: i64, pop: usize, key: Key, c: &mut Vars) -> i64 {
        let Some(p) = self.pops.get(pop) else {
            bump(&mut c.rate.invalid);
            return 0;
        };
        let t = match (p.transfer, &p.f) {
            (TransferKind::Readout, _) => return u,
            (TransferKind::Table, Some(t)) => Transfer::Table(t.view()),
            (TransferKind::Relu, _) => Transfer::Relu,
            (TransferKind::HardSigmoid, _) => Transfer::HardSigmoid,
            (TransferKind::Table, None) => {
                // A tabulated activation on a chip without the table: no rate.
                bump(&mut c.rate.invalid);
                return 0;
            }
            (TransferKind::Identity, _) => Transfer::Identity,
        };
        let mut rng = self.rng(key, purpose::TRANSFER);
        soma::graded_rate(u, &self.f.membrane, &t, &self.f.rate, &mut rng, &mut c.rate)
    }

    fn transfer_kind(&self, pop: usize) -> TransferKind {
        self.pops
            .get(pop)
            .map_or(TransferKind::Identity, |p| p.transfer)
    }

    fn tick_input(&self, acc: A, b: i64, key: Key, c: &mut Vars) -> i64 {
        let mut rng = self.rng(key, purpose::TICK_INPUT);
        let wf = self.f.weight.frac as u32;
        match self.acc_mode {
            AccMode::Wide => requantize(
                acc.wide() + b as i128,
                wf,
                &self.f.membrane,
                &mut rng,
                &mut c.membrane,
            ),
            AccMode::PerAdd => {
                let bias = self.to_acc(b as i128, wf, &mut rng, &mut c.accumulator);
                let sum = self.add_fit(acc.wide(), bias, &mut c.accumulator);
                requantize(
                    sum,
                    self.acc_frac,
                    &self.f.membrane,
                    &mut rng,
                    &mut c.membrane,
                )
            }
        }
    }

    fn spike_step(
        &self,
        pop: usize,
        v: &mut i64,
        cur: &mut i64,
        acc: A,
        b: i64,
        input: i64,
        c: &mut Vars,
    ) -> bool {
        let one = 1i64 << self.f.membrane.frac.min(62);
        match self.spiking_soma(pop) {
            SpikingSoma::If => soma::if_step(v, input, one, &self.f.membrane, &mut c.membrane),
            SpikingSoma::Lif { decay } => {
                soma::lif_step(v, input, one, decay, &self.f.membrane, &mut c.membrane)
            }
            SpikingSoma::CubaLif { du, dv } => {
                // Lava's a_in is the dendritic sum in weight units; the compartment shifts it
                // by 6 into the 24-bit state. The bias enters the voltage as mantissa << 6.
                let a_in = match self.acc_mode {
                    AccMode::Wide => acc.wide(),
                    AccMode::PerAdd => {
                        let wf = self.f.weight.frac as u32;
                        round_shr(
                            acc.wide(),
                            self.acc_frac.saturating_sub(wf),
                            crate::arith::Rounding::Floor,
                            &mut NoBits,
                            &mut c.accumulator,
                        )
                    }
                };
                let a_in = a_in.clamp(i64::MIN as i128, i64::MAX as i128) as i64;
                let p = CubaLif {
                    du: du as i64,
                    dv: dv as i64,
                    vth: one >> 6,
                    bias_mant: b,
                    bias_exp: 6,
                };
                soma::cuba_lif_step(cur, v, a_in, &p, &mut c.membrane)
            }
        }
    }

    fn spiking_soma(&self, pop: usize) -> SpikingSoma {
        self.pops.get(pop).and_then(|p| p.soma).unwrap_or(self.soma)
    }

    #[inline]
    fn drive_add(&self, total: &mut A, input: i64) {
        *total = total.add_i64(input);
    }

    fn partial_out(&self, acc: A, c: &mut Vars) -> i64 {
        let w = acc.wide();
        i64::try_from(w).unwrap_or_else(|_| {
            c.accumulator.saturations = c.accumulator.saturations.saturating_add(1);
            if w < 0 { i64::MIN } else { i64::MAX }
        })
    }

    fn partial_add(&self, acc: &mut A, v: i64, c: &mut Vars) {
        *acc = match self.acc_mode {
            AccMode::Wide => acc.add_i64(v),
            AccMode::PerAdd => {
                A::narrow(self.add_fit(acc.wide(), Exact::Fits(i128::from(v)), &mut c.accumulator))
            }
        };
    }

    fn mean_u(&self, total: A, ticks: u32, c: &mut Vars) -> i64 {
        fit(
            div_round(total.wide(), ticks.max(1) as i128),
            &self.f.membrane,
            &mut c.membrane,
        )
    }

    fn rate_from_count(&self, count: u32, ticks: u32, c: &mut Vars) -> i64 {
        let x = shl_exact(count as i128, self.f.rate.frac as u32);
        let x = match x {
            Exact::Fits(v) => v,
            Exact::Over { .. } => i128::MAX,
        };
        fit(
            div_round(x, ticks.max(1) as i128),
            &self.f.rate,
            &mut c.rate,
        )
    }

    fn regular_step(&self, phase: &mut i64, p: i64) -> bool {
        let one = 1i64 << self.f.rate.frac.min(62);
        *phase = phase.saturating_add(p);
        if *phase >= one {
            *phase -= one;
            true
        } else {
            false
        }
    }

    fn bernoulli(&self, draw: u64, p: i64) -> bool {
        let fr = self.f.rate.frac as u32;
        let u = if fr == 0 {
            0
        } else {
            (draw >> (64 - fr.min(63))) as i64
        };
        u < p
    }

    fn draw(&self, key: Key, purpose: u32) -> u64 {
        self.rng(key, purpose).draw_at(0)
    }

    #[inline]
    fn g(&self, u: i64, pop: usize, c: &mut Vars) -> i64 {
        match self.pops.get(pop) {
            Some(p) => p.g.lookup(u, &mut c.lut),
            None => {
                bump(&mut c.lut.invalid);
                0
            }
        }
    }

    fn delta(&self, g: i64, cr: i64, key: Key, c: &mut Vars) -> i64 {
        let mut rng = self.rng(key, purpose::DELTA);
        credit::delta(
            g,
            &self.f.lut,
            cr,
            &self.f.credit,
            &self.f.delta,
            &mut rng,
            &mut c.delta,
        )
    }

    #[inline]
    fn retro_row(
        &self,
        row: &[W],
        delta: &[i64],
        unchecked: bool,
        key: Key,
        post_base: u64,
        c: &mut Vars,
    ) -> A {
        match (self.acc_mode, self.entry(self.retro_frac)) {
            (AccMode::Wide, _) => {
                let mut s = A::default();
                for (w, &d) in row.iter().zip(delta) {
                    s = s.mac(w.get(), d, 0);
                }
                s
            }
            (AccMode::PerAdd, Entry::Lift(l)) if unchecked => {
                let mut s = A::default();
                for (w, &d) in row.iter().zip(delta) {
                    s = s.mac(w.get(), d, l);
                }
                s
            }
            (AccMode::PerAdd, Entry::Nearest(sh)) if unchecked => {
                let mut s = A::default();
                for (w, &d) in row.iter().zip(delta) {
                    s = s.mac_ne(w.get(), d, sh);
                }
                s
            }
            (AccMode::PerAdd, Entry::Floor(sh)) if unchecked => {
                let mut s = A::default();
                for (w, &d) in row.iter().zip(delta) {
                    s = s.mac_floor(w.get(), d, sh);
                }
                s
            }
            _ => {
                let rng = self.rng(key, purpose::ACC_RETRO);
                let mut s = 0i128;
                for (i, (w, &d)) in row.iter().zip(delta).enumerate() {
                    if d == 0 {
                        continue;
                    }
                    let mut dr = DrawAt {
                        rng: &rng,
                        i: post_base + i as u64,
                    };
                    let x = self.to_acc(
                        w.get() as i128 * d as i128,
                        self.retro_frac,
                        &mut dr,
                        &mut c.accumulator,
                    );
                    s = self.add_fit(s, x, &mut c.accumulator);
                }
                A::narrow(s)
            }
        }
    }

    #[inline]
    fn retro_gather(
        &self,
        row: &[W],
        delta: &[i64],
        nz: &[u32],
        unchecked: bool,
        key: Key,
        post_base: u64,
        c: &mut Vars,
    ) -> A {
        match (self.acc_mode, self.entry(self.retro_frac)) {
            (AccMode::Wide, _) => {
                let mut s = A::default();
                for &i in nz {
                    let i = i as usize;
                    s = s.mac(row[i].get(), delta[i], 0);
                }
                s
            }
            (AccMode::PerAdd, Entry::Lift(l)) if unchecked => {
                let mut s = A::default();
                for &i in nz {
                    let i = i as usize;
                    s = s.mac(row[i].get(), delta[i], l);
                }
                s
            }
            (AccMode::PerAdd, Entry::Nearest(sh)) if unchecked => {
                let mut s = A::default();
                for &i in nz {
                    let i = i as usize;
                    s = s.mac_ne(row[i].get(), delta[i], sh);
                }
                s
            }
            (AccMode::PerAdd, Entry::Floor(sh)) if unchecked => {
                let mut s = A::default();
                for &i in nz {
                    let i = i as usize;
                    s = s.mac_floor(row[i].get(), delta[i], sh);
                }
                s
            }
            _ => {
                let rng = self.rng(key, purpose::ACC_RETRO);
                let mut s = 0i128;
                for &i in nz {
                    let i = i as usize;
                    let mut dr = DrawAt {
                        rng: &rng,
                        i: post_base + i as u64,
                    };
                    let x = self.to_acc(
                        row[i].get() as i128 * delta[i] as i128,
                        self.retro_frac,
                        &mut dr,
                        &mut c.accumulator,
                    );
                    s = self.add_fit(s, x, &mut c.accumulator);
                }
                A::narrow(s)
            }
        }
    }

    fn retro_finish(&self, acc: A, key: Key, c: &mut Vars) -> i64 {
        let mut rng = self.rng(key, purpose::RETRO_FINISH);
        let frac = match self.acc_mode {
            AccMode::Wide => self.retro_frac,
            AccMode::PerAdd => self.acc_frac,
        };
        requantize(acc.wide(), frac, &self.f.credit, &mut rng, &mut c.credit)
    }

    #[inline]
    fn copy_mac(&self, acc: &mut A, w: W, d: i64) {
        // The comparison rules sum their copy exactly and round once (`copy_finish`).
        *acc = acc.mac(w.get(), d, 0);
    }

    fn copy_finish(&self, acc: A, key: Key, c: &mut Vars) -> i64 {
        let mut rng = self.rng(key, purpose::COPY_FINISH);
        requantize(
            acc.wide(),
            self.retro_frac,
            &self.f.credit,
            &mut rng,
            &mut c.credit,
        )
    }

    #[inline]
    fn passes(&self, m: i64) -> bool {
        credit::passes_threshold(m, self.thr_credit)
    }

    #[inline]
    fn passes_delta(&self, d: i64) -> bool {
        credit::passes_threshold(d, self.thr_delta)
    }

    fn credit_add(&self, cj: i64, m: i64, c: &mut Vars) -> i64 {
        credit::accumulate_credit(cj, m, &self.f.credit, &mut c.credit)
    }

    fn update_row(
        &self,
        row: &mut [W],
        delta: &[i64],
        nz: &[u32],
        r: i64,
        key: Key,
        post_base: u64,
        c: &mut Vars,
    ) -> u64 {
        let rng = self.rng(key, purpose::WEIGHT_ROUND);
        let f = &self.f;
        if let Some(mx) = self.update_row_fast(row, delta, nz, r, &rng, post_base, c) {
            return mx;
        }
        let mut mx = 0u64;
        for &i in nz {
            let i = i as usize;
            let mut d = DrawAt {
                rng: &rng,
                i: post_base + i as u64,
            };
            let w = plasticity::weight_update(
                row[i].get(),
                &f.weight,
                delta[i],
                &f.delta,
                r,
                &f.rate,
                self.lr,
                &f.learning_rate,
                &mut d,
                &mut c.weight,
            );
            mx = mx.max(w.unsigned_abs());
            row[i] = W::put(w);
        }
        mx
    }

    fn update_one(&self, w: W, d: i64, r: i64, key: Key, post: u64, c: &mut Vars) -> W {
        let rng = self.rng(key, purpose::WEIGHT_ROUND);
        let mut dr = DrawAt { rng: &rng, i: post };
        let f = &self.f;
        W::put(plasticity::weight_update(
            w.get(),
            &f.weight,
            d,
            &f.delta,
            r,
            &f.rate,
            self.lr,
            &f.learning_rate,
            &mut dr,
            &mut c.weight,
        ))
    }

    fn bias_update(&self, b: i64, d: i64, key: Key, c: &mut Vars) -> i64 {
        let mut rng = self.rng(key, purpose::BIAS_ROUND);
        plasticity::bias_update(
            b,
            &self.f.weight,
            d,
            &self.f.delta,
            self.lr,
            &self.f.learning_rate,
            &mut rng,
            &mut c.weight,
        )
    }
}

/// Round-to-nearest (ties away from zero) division of an exact value by a positive `d`.
#[inline]
fn div_round(x: i128, d: i128) -> i128 {
    if x >= 0 {
        (2 * x + d) / (2 * d)
    } else {
        -((-2 * x + d) / (2 * d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arith::Rounding;
    use proptest::prelude::*;

    fn fmt(bits: u8, frac: u8, signed: bool, rounding: Rounding) -> Format {
        Format::new(bits, frac, signed, rounding, Overflow::Saturate)
    }

    /// balance-core's formats with a chosen accumulator.
    fn formats(acc: Format) -> FormatSet {
        FormatSet {
            weight: fmt(16, 12, true, Rounding::NearestEven),
            membrane: fmt(24, 16, true, Rounding::NearestEven),
            rate: fmt(16, 15, false, Rounding::NearestEven),
            credit: fmt(16, 14, true, Rounding::NearestEven),
            delta: fmt(16, 14, true, Rounding::NearestEven),
            lut: fmt(12, 11, false, Rounding::NearestEven),
            accumulator: acc,
            learning_rate: fmt(16, 16, false, Rounding::NearestEven),
        }
    }

    fn dp(acc: Format, mode: AccMode) -> Fixed<i16, i64, [i64; 2]> {
        Fixed::new(
            formats(acc),
            1,
            1,
            (0, 0),
            mode,
            SpikingSoma::If,
            core::iter::empty(),
        )
        .unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// The fast per-add row walks (exact lift, nearest-even, floor) give the bits of the
        /// general per-add path, which rounds each product with the firmware's `rescale` and
        /// fits each add; the retrograde walks likewise.
        #[test]
        fn fast_per_add_walks_equal_the_general_path(
            row in proptest::collection::vec(any::<i16>(), 1..40),
            r in 0i64..32768,
            d in proptest::collection::vec(-32768i64..32768, 40),
            acc_frac in 18u8..34,
            floor in any::<bool>(),
        ) {
            let rounding = if floor { Rounding::Floor } else { Rounding::NearestEven };
            let p = dp(fmt(40, acc_frac, true, rounding), AccMode::PerAdd);
            let mut v = Vars::default();
            let n = row.len();
            // The unchecked walks are taken only under a bound that rules out saturation.
            let wmax = row.iter().map(|&w| w.unsigned_abs() as u64).max().unwrap_or(0);
            let dmax = d[..n].iter().map(|x| x.unsigned_abs()).max().unwrap_or(0);
            prop_assume!(p.bound_ok(n as u64 * p.product_bound(wmax, r as u64, false)));
            prop_assume!(p.bound_ok(n as u64 * p.product_bound(wmax, dmax, true)));
            let mut fast = [0i64; 40];
            let mut slow = [0i64; 40];
            p.mac_row(&mut fast[..n], &row, r, true, Key::default(), 0, &mut v);
            p.per_add_row(&mut slow[..n], &row, r, p.fwd_frac, Key::default(), 0, purpose::ACC_FORWARD, &mut v.accumulator);
            prop_assert_eq!(&fast[..n], &slow[..n]);
            let a = p.retro_row(&row, &d[..n], true, Key::default(), 0, &mut v);
            let b = p.retro_row(&row, &d[..n], false, Key::default(), 0, &mut v);
            prop_assert_eq!(a, b);
            let nz: heapless::Vec<u32, 40> = (0..n as u32).filter(|&i| d[i as usize] != 0).collect();
            let c = p.retro_gather(&row, &d[..n], &nz, true, Key::default(), 0, &mut v);
            prop_assert_eq!(a, c);
            prop_assert_eq!(v.accumulator.saturations, 0);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        /// The inlined plasticity row gives the bits and the counts of the firmware kernel
        /// `plasticity::weight_update`, for stochastic, nearest-even and floor rounding,
        /// saturating and wrapping weights.
        #[test]
        fn fast_update_row_equals_the_kernel(
            row in proptest::collection::vec(any::<i16>(), 1..24),
            d in proptest::collection::vec(-32768i64..32768, 24),
            r in 0i64..65536,
            lr in 1i64..65536,
            mode in 0u8..3,
            wrap in any::<bool>(),
            step in any::<u64>(),
        ) {
            let rounding = [Rounding::Stochastic, Rounding::NearestEven, Rounding::Floor][mode as usize];
            let mut fs = formats(fmt(40, 27, true, Rounding::NearestEven));
            fs.weight = Format::new(16, 12, true, rounding, if wrap { Overflow::Wrap } else { Overflow::Saturate });
            let p: Fixed<i16, i64, [i64; 2]> = Fixed::new(fs, 9, lr, (0, 0), AccMode::PerAdd, SpikingSoma::If, core::iter::empty()).unwrap();
            let n = row.len();
            let nz: heapless::Vec<u32, 24> = (0..n as u32).filter(|&i| d[i as usize] != 0).collect();
            let key = Key::new(77, step);
            let mut fast = row.clone();
            let mut vf = Vars::default();
            let rng = p.rng(key, purpose::WEIGHT_ROUND);
            let mx = p.update_row_fast(&mut fast, &d[..n], &nz, r, &rng, 1000, &mut vf);
            prop_assert!(mx.is_some());
            let mut slow = row.clone();
            let mut vs = Vars::default();
            for &i in &nz {
                let i = i as usize;
                let mut dr = DrawAt { rng: &rng, i: 1000 + i as u64 };
                slow[i] = plasticity::weight_update(slow[i] as i64, &fs.weight, d[i], &fs.delta, r, &fs.rate, lr, &fs.learning_rate, &mut dr, &mut vs.weight) as i16;
            }
            prop_assert_eq!(fast, slow);
            prop_assert_eq!(vf, vs);
        }
    }

    /// Per add, saturation happens where the running sum leaves the range, and a later add
    /// can bring it back: +3, +3, −3 in a range of ±4 gives 1 (3 → 4 saturated → 1), while a
    /// wide accumulator gives 3. The handlers only take the unchecked walk when a bound proves
    /// no partial sum can leave the range.
    #[test]
    fn per_add_saturates_where_it_happens() {
        let acc = fmt(4, 0, true, Rounding::NearestEven); // -8..=7
        let f = FormatSet {
            weight: fmt(8, 0, true, Rounding::NearestEven),
            ..formats(acc)
        };
        let per_add: Fixed<i16, i64, [i64; 2]> = Fixed::new(
            FormatSet {
                rate: fmt(8, 0, false, Rounding::NearestEven),
                ..f
            },
            1,
            1,
            (0, 0),
            AccMode::PerAdd,
            SpikingSoma::If,
            core::iter::empty(),
        )
        .unwrap();
        let mut v = Vars::default();
        let mut a = [0i64; 1];
        for w in [6i16, 6, -6] {
            per_add.mac_row(&mut a, &[w], 1, false, Key::default(), 0, &mut v);
        }
        assert_eq!(a[0], 1);
        assert_eq!(v.accumulator.saturations, 1);
        // The bound test: 3 rows of |w| ≤ 6 times r = 1 exceed 7, so the walk must be checked.
        let b = per_add.product_bound(6, 1, false);
        assert!(per_add.bound_ok(b) && !per_add.bound_ok(2 * b));
    }
}
