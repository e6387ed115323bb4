//! Compile-time number formats: a chip's formats as [`fixed`] types, with the run-time
//! [`Format`] derived from the type and typed entry points to the run-time kernels.
//!
//! A firmware build for one chip knows its formats when it is compiled. Where a `fixed` type of
//! exactly the format's width exists (8, 16 or 32 bits), the format *is* that type: its raw bits
//! are the chip's raw value (`to_bits`/`from_bits`, no conversion), its range is the format's
//! range, and [`format_of`] derives the run-time [`Format`] from it (`bits` = `INT_NBITS +
//! FRAC_NBITS`, `frac` = `FRAC_NBITS`, `signed` = `IS_SIGNED`), adding the chip's rounding and
//! overflow modes, which a type does not carry. [`TypedFormat`] pairs a type with those modes
//! and runs the run-time kernels ([`Format::from_f64`], [`fit`], [`requantize`]) on typed
//! values. Formats of other widths (e.g. a 24-bit membrane, a 12-bit table entry) have no exact
//! `fixed` type and stay run-time [`Format`] constants with raw `i64` values.
//!
//! The arithmetic is always the run-time kernel's: `fixed`'s operators are not used on the
//! datapath, because each has one built-in rounding and it is not the chip's configurable mode:
//! `*`, `>>` and fixed-to-fixed conversions floor, integer `/` truncates toward zero, and only
//! float conversion rounds to nearest with ties to even (as [`Format::from_f64`] does). Where
//! `fixed` and a run-time kernel define the same operation, the tests of this module show them
//! bit-identical: float quantisation, saturating and wrapping `+` and `−`, `*` and
//! fixed-to-fixed conversions under floor rounding, and `wide_mul` products rounded by moving the
//! binary point (floor, or `round_ties_even` for the chip's nearest-even). Where they differ, the
//! tests say how.
//!
//! [`balance_core`] holds the formats of `hw_models/balance-core.toml` and its typed kernels.
//!
//! ```
//! use accord_firmware::arith::{CounterRng, Counters, Format, Overflow, Rounding};
//! use accord_firmware::typed::TypedFormat;
//! use accord_firmware::typed::balance_core::{
//!     self as bc, Credit, Delta, LearningRate, Rate, Weight,
//! };
//!
//! // The run-time formats are derived from the types (plus the chip's modes).
//! assert_eq!(bc::WEIGHT, Format::new(16, 12, true, Rounding::Stochastic, Overflow::Saturate));
//! assert_eq!(bc::RATE, Format::new(16, 15, false, Rounding::NearestEven, Overflow::Saturate));
//!
//! let mut c = Counters::default();
//! let mut rng = CounterRng::new(1, 0, 0, 3);
//! // Typed values come from `fixed`'s constructors or from the chip's quantiser (counted).
//! let (w, r) = (Weight::from_num(0.5), Rate::from_num(0.75));
//! assert_eq!(bc::RATE_TYPED.from_f64(0.75, &mut c), r);
//! assert_eq!(bc::RATE_TYPED.from_f64(3.0, &mut c), Rate::MAX); // saturates, counted
//! assert_eq!(c.saturations, 1);
//!
//! // δ = g·c with g raw in the 12-bit table format (no `fixed` type): 0.5 · (−0.75).
//! let d = bc::delta(1024, Credit::from_num(-0.75), &mut rng, &mut c);
//! assert_eq!(d, Delta::from_num(-0.375));
//!
//! // Δw = η·δ·r = (1/16)·0.25·0.75 = 48/4096 exactly: no rounding, no random draw.
//! let lr = LearningRate::from_num(1.0 / 16.0);
//! let w2 = bc::weight_update(w, Delta::from_num(0.25), r, lr, &mut rng, &mut c);
//! assert_eq!(w2.to_bits(), w.to_bits() + 48);
//! assert_eq!(c.rng_draws, 0);
//!
//! // Where both define an operation, `fixed` and the run-time kernels agree bit for bit:
//! // `fixed`'s `*` floors, so compare under Rounding::Floor.
//! let floor = TypedFormat::<Weight>::new(Rounding::Floor, Overflow::Saturate);
//! let x = Weight::from_num(-1.3);
//! assert_eq!(floor.mul(x, w2, &mut rng, &mut c), x.saturating_mul(w2));
//! assert_eq!(floor.add(Weight::MAX, w2, &mut c), Weight::MAX.saturating_add(w2));
//! ```
//!
//! # Cost
//!
//! Typed kernels cost what the run-time kernel they call costs: the type only moves a value
//! between its `fixed` wrapper and a raw integer, which is the same register.
//!
//! | Kernel | shifts | adds | multiplies | cmps | RNG draws |
//! |---|---|---|---|---|---|
//! | [`format_of`], [`TypedFormat::format`] | 0 | 0 | 0 | 0 | 0 (compile time) |
//! | [`FixedWord::to_raw`], [`FixedWord::from_raw`] | 0 | 0 | 0 | 0 | 0 (an extension or truncation) |
//! | [`TypedFormat::fit`] (in range) | 0 | 0 | 0 | 2 | 0 |
//! | [`TypedFormat::add`], [`TypedFormat::sub`] (in range) | 0 | 1 | 0 | 2 | 0 |
//! | [`TypedFormat::mul`] | [`requantize`] | [`requantize`] | 1 | [`requantize`] | ≤ 1 if stochastic |
//! | [`TypedFormat::convert`], [`TypedFormat::requantize`] | [`requantize`] | [`requantize`] | 0 | [`requantize`] | ≤ 1 if stochastic |
//! | [`balance_core::mac`] (one SOP) | 0 | 1 | 1 | 0 | 0 |
//! | other [`balance_core`] kernels | as the [`credit`](crate::credit) or [`plasticity`](crate::plasticity) kernel called | | | | |

use core::marker::PhantomData;

use fixed::traits::Fixed;
use fixed::types::extra::{LeEqU8, LeEqU16, LeEqU32};
use fixed::{FixedI8, FixedI16, FixedI32, FixedU8, FixedU16, FixedU32};

use crate::arith::{Counters, Format, Overflow, RandomBits, Rounding, fit, requantize};

mod sealed {
    /// Implemented only for the `fixed` types of [`super::FixedWord`].
    pub trait Sealed {}
}

/// A `fixed` type that a run-time [`Format`] can describe exactly: `FixedI8`, `FixedI16`,
/// `FixedI32`, `FixedU8`, `FixedU16` or `FixedU32` with any number of fractional bits (a
/// [`Format`] holds at most 40 bits, so the 64- and 128-bit types are left out).
///
/// Its raw bits are the run-time kernels' raw value: `x.to_raw()` is `x.to_bits()` widened to
/// `i64`, and `from_raw` is `from_bits` of the low bits.
pub trait FixedWord: Fixed + sealed::Sealed {
    /// The raw bits, sign- or zero-extended to `i64`.
    fn to_raw(self) -> i64;
    /// The value whose raw bits are the low bits of `raw` (in-range values are kept exactly).
    fn from_raw(raw: i64) -> Self;
}

macro_rules! fixed_word {
    ($($Fix:ident<$LeEq:ident>: $Bits:ty;)*) => {$(
        impl<Frac: $LeEq> sealed::Sealed for $Fix<Frac> {}

        impl<Frac: $LeEq> FixedWord for $Fix<Frac> {
            #[inline]
            fn to_raw(self) -> i64 {
                self.to_bits() as i64
            }

            #[inline]
            fn from_raw(raw: i64) -> Self {
                Self::from_bits(raw as $Bits)
            }
        }
    )*};
}

fixed_word! {
    FixedI8<LeEqU8>: i8;
    FixedI16<LeEqU16>: i16;
    FixedI32<LeEqU32>: i32;
    FixedU8<LeEqU8>: u8;
    FixedU16<LeEqU16>: u16;
    FixedU32<LeEqU32>: u32;
}

/// The run-time [`Format`] of a `fixed` type: `bits` = `INT_NBITS + FRAC_NBITS` (the type's
/// width), `frac` = `FRAC_NBITS`, `signed` = `IS_SIGNED`, with the given rounding and overflow
/// modes. Its raw range is exactly the type's: `min_raw() == F::MIN.to_raw()` and
/// `max_raw() == F::MAX.to_raw()`.
///
/// ```
/// use accord_firmware::arith::{Format, Overflow, Rounding};
/// use accord_firmware::typed::format_of;
/// use fixed::FixedI16;
/// use fixed::types::extra::U12;
///
/// const W: Format = format_of::<FixedI16<U12>>(Rounding::Stochastic, Overflow::Saturate);
/// assert_eq!((W.bits, W.frac, W.signed), (16, 12, true));
/// ```
#[inline]
pub const fn format_of<F: FixedWord>(rounding: Rounding, overflow: Overflow) -> Format {
    Format::new(
        (<F as Fixed>::INT_NBITS + <F as Fixed>::FRAC_NBITS) as u8,
        <F as Fixed>::FRAC_NBITS as u8,
        <F as Fixed>::IS_SIGNED,
        rounding,
        overflow,
    )
}

/// A `fixed` type with a rounding and an overflow mode: a compile-time [`Format`] whose kernels
/// take and return typed values. Each method calls the run-time kernel on the raw bits, so it
/// rounds, saturates or wraps, and counts, exactly as the untyped datapath does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TypedFormat<F> {
    /// Rounding mode used when a value enters this format.
    pub rounding: Rounding,
    /// Overflow mode used when a value enters this format.
    pub overflow: Overflow,
    ty: PhantomData<F>,
}

impl<F: FixedWord> TypedFormat<F> {
    /// The format of type `F` with these modes.
    #[inline]
    pub const fn new(rounding: Rounding, overflow: Overflow) -> Self {
        Self {
            rounding,
            overflow,
            ty: PhantomData,
        }
    }

    /// The run-time [`Format`] ([`format_of`]).
    #[inline]
    pub const fn format(&self) -> Format {
        format_of::<F>(self.rounding, self.overflow)
    }

    /// Quantises a real ([`Format::from_f64`]: NaN gives 0 and counts `invalid`, ±∞ saturate).
    #[inline]
    pub fn from_f64(&self, x: f64, c: &mut Counters) -> F {
        F::from_raw(self.format().from_f64(x, c))
    }

    /// Real value (exact).
    #[inline]
    pub fn to_f64(&self, x: F) -> f64 {
        self.format().to_f64(x.to_raw())
    }

    /// Fits a raw value already at this format's fractional bits ([`fit`]).
    #[inline]
    pub fn fit(&self, value: i128, c: &mut Counters) -> F {
        F::from_raw(fit(value, &self.format(), c))
    }

    /// Moves a raw value with `from_frac` fractional bits into this format ([`requantize`]).
    #[inline]
    pub fn requantize(
        &self,
        value: i128,
        from_frac: u32,
        rng: &mut impl RandomBits,
        c: &mut Counters,
    ) -> F {
        F::from_raw(requantize(value, from_frac, &self.format(), rng, c))
    }

    /// A value of another `fixed` type in this format: rounded to this format's fractional bits
    /// and fitted ([`requantize`]).
    #[inline]
    pub fn convert<G: FixedWord>(&self, x: G, rng: &mut impl RandomBits, c: &mut Counters) -> F {
        self.requantize(x.to_raw() as i128, <G as Fixed>::FRAC_NBITS, rng, c)
    }

    /// `a + b`, fitted with this format's overflow mode (counted).
    #[inline]
    pub fn add(&self, a: F, b: F, c: &mut Counters) -> F {
        self.fit(a.to_raw() as i128 + b.to_raw() as i128, c)
    }

    /// `a − b`, fitted with this format's overflow mode (counted).
    #[inline]
    pub fn sub(&self, a: F, b: F, c: &mut Counters) -> F {
        self.fit(a.to_raw() as i128 - b.to_raw() as i128, c)
    }

    /// `a · b` of any two typed operands: the exact product (fractional bits added) rounded once
    /// into this format ([`requantize`]).
    #[inline]
    pub fn mul<A: FixedWord, B: FixedWord>(
        &self,
        a: A,
        b: B,
        rng: &mut impl RandomBits,
        c: &mut Counters,
    ) -> F {
        let p = a.to_raw() as i128 * b.to_raw() as i128;
        self.requantize(
            p,
            <A as Fixed>::FRAC_NBITS + <B as Fixed>::FRAC_NBITS,
            rng,
            c,
        )
    }
}

pub mod balance_core {
    //! The formats of `hw_models/balance-core.toml` and typed entry points to its kernels.
    //!
    //! | Format | toml | type | rounding | overflow |
    //! |---|---|---|---|---|
    //! | weight (and bias) | s16, frac 12 | [`Weight`] = `FixedI16<U12>` | stochastic | saturate |
    //! | membrane | s24, frac 16 | none: [`MEMBRANE`], raw `i64` | nearest-even | saturate |
    //! | rate | u16, frac 15 | [`Rate`] = `FixedU16<U15>` | nearest-even | saturate |
    //! | credit | s16, frac 14 | [`Credit`] = `FixedI16<U14>` | nearest-even | saturate |
    //! | delta | s16, frac 14 | [`Delta`] = `FixedI16<U14>` | nearest-even | saturate |
    //! | lut | u12, frac 11 | none: [`LUT`], raw `i64` | nearest-even | saturate |
    //! | accumulator | s40, frac 27 | none: [`ACCUMULATOR`], raw `i64` | nearest-even | saturate |
    //! | learning rate | u16, frac 16 | [`LearningRate`] = `FixedU16<U16>` | nearest-even | saturate |
    //!
    //! `fixed` has no 24-, 12- or 40-bit type, so the membrane, the balance table and the
    //! accumulator (40 bits: a 16 × 16-bit product enters it exactly, with 8 guard bits for the
    //! sum, as in a DSP MAC) stay run-time [`Format`]s. The types are aliases: [`Credit`] and [`Delta`] are the same type, so the
    //! compiler does not tell a credit from a `δ` (the kernels' signatures do). The toml defines no
    //! bias format; biases use the weight format, as the host emulator does.

    use fixed::types::extra::{U12, U14, U15, U16};
    use fixed::{FixedI16, FixedU16};

    use super::{FixedWord, TypedFormat};
    use crate::arith::{Counters, Format, Overflow, RandomBits, Rounding};
    use crate::credit::{self, RetroAccumulator};
    use crate::plasticity;

    const NE: Rounding = Rounding::NearestEven;
    const SAT: Overflow = Overflow::Saturate;

    /// Weight `w_ij` (and bias `b_i`): Q4.12 signed, range [−8, 8).
    pub type Weight = FixedI16<U12>;
    /// Rate `r_j`: Q1.15 unsigned, range [0, 2).
    pub type Rate = FixedU16<U15>;
    /// Credit `c_i` and retrograde message `m_j`: Q2.14 signed, range [−2, 2).
    pub type Credit = FixedI16<U14>;
    /// Message `δ_i = g(u_i)·c_i`: Q2.14 signed, range [−2, 2) (the same type as [`Credit`]).
    pub type Delta = FixedI16<U14>;
    /// Learning rate `η`: Q0.16 unsigned, range [0, 1).
    pub type LearningRate = FixedU16<U16>;

    /// Weight format: stochastic rounding keeps small updates `η·δ·r` alive.
    pub const WEIGHT_TYPED: TypedFormat<Weight> = TypedFormat::new(Rounding::Stochastic, SAT);
    /// Rate format.
    pub const RATE_TYPED: TypedFormat<Rate> = TypedFormat::new(NE, SAT);
    /// Credit format.
    pub const CREDIT_TYPED: TypedFormat<Credit> = TypedFormat::new(NE, SAT);
    /// `δ` format.
    pub const DELTA_TYPED: TypedFormat<Delta> = TypedFormat::new(NE, SAT);
    /// Learning-rate format.
    pub const LEARNING_RATE_TYPED: TypedFormat<LearningRate> = TypedFormat::new(NE, SAT);

    /// Weight format, s16 frac 12, stochastic, saturating (from [`Weight`]).
    pub const WEIGHT: Format = WEIGHT_TYPED.format();
    /// Membrane format, s24 frac 16, nearest-even, saturating (no `fixed` type: run time only).
    pub const MEMBRANE: Format = Format::new(24, 16, true, NE, SAT);
    /// Rate format, u16 frac 15, nearest-even, saturating (from [`Rate`]).
    pub const RATE: Format = RATE_TYPED.format();
    /// Credit format, s16 frac 14, nearest-even, saturating (from [`Credit`]).
    pub const CREDIT: Format = CREDIT_TYPED.format();
    /// `δ` format, s16 frac 14, nearest-even, saturating (from [`Delta`]).
    pub const DELTA: Format = DELTA_TYPED.format();
    /// Balance-table entry format, u12 frac 11, nearest-even, saturating (no `fixed` type).
    pub const LUT: Format = Format::new(12, 11, false, NE, SAT);
    /// Accumulator format, s40 frac 27, nearest-even, saturating (no `fixed` type: run time
    /// only). Forward (12 + 15) and retrograde (12 + 14) products enter it exactly.
    pub const ACCUMULATOR: Format = Format::new(40, 27, true, NE, SAT);
    /// Learning-rate format, u16 frac 16, nearest-even, saturating (from [`LearningRate`]).
    pub const LEARNING_RATE: Format = LEARNING_RATE_TYPED.format();

    /// Fractional bits of a forward product `w·r` (12 + 15).
    pub const MAC_FRAC: u32 = WEIGHT.frac as u32 + RATE.frac as u32;
    /// Fractional bits of a retrograde product `w·δ` (12 + 14).
    pub const RETRO_FRAC: u32 = WEIGHT.frac as u32 + DELTA.frac as u32;

    /// Forward synaptic op: `acc += w·r`, exact (at [`MAC_FRAC`] fractional bits).
    #[inline]
    pub fn mac(acc: &mut i128, w: Weight, r: Rate) {
        *acc += w.to_raw() as i128 * r.to_raw() as i128;
    }

    /// A forward row sum (from [`mac`]) into the accumulator format ([`requantize`]:
    /// nearest-even, saturating, counted).
    ///
    /// [`requantize`]: crate::arith::requantize
    #[inline]
    pub fn row_sum(acc: i128, rng: &mut impl RandomBits, c: &mut Counters) -> i64 {
        crate::arith::requantize(acc, MAC_FRAC, &ACCUMULATOR, rng, c)
    }

    /// `δ = g·c` ([`credit::delta`]), with `g` raw in the [`LUT`] format.
    #[inline]
    pub fn delta(g: i64, credit: Credit, rng: &mut impl RandomBits, c: &mut Counters) -> Delta {
        Delta::from_raw(credit::delta(
            g,
            &LUT,
            credit.to_raw(),
            &CREDIT,
            &DELTA,
            rng,
            c,
        ))
    }

    /// `c_j + m_j` in the credit format ([`credit::accumulate_credit`]).
    #[inline]
    pub fn accumulate_credit(credit: Credit, message: Credit, c: &mut Counters) -> Credit {
        Credit::from_raw(credit::accumulate_credit(
            credit.to_raw(),
            message.to_raw(),
            &CREDIT,
            c,
        ))
    }

    /// `w + η·δ·r`, rounded once (stochastically) to the weight format
    /// ([`plasticity::weight_update`]).
    #[inline]
    pub fn weight_update(
        w: Weight,
        delta: Delta,
        rate: Rate,
        lr: LearningRate,
        rng: &mut impl RandomBits,
        c: &mut Counters,
    ) -> Weight {
        Weight::from_raw(plasticity::weight_update(
            w.to_raw(),
            &WEIGHT,
            delta.to_raw(),
            &DELTA,
            rate.to_raw(),
            &RATE,
            lr.to_raw(),
            &LEARNING_RATE,
            rng,
            c,
        ))
    }

    /// `b + η·δ`, rounded once (stochastically) to the weight format
    /// ([`plasticity::bias_update`]).
    #[inline]
    pub fn bias_update(
        b: Weight,
        delta: Delta,
        lr: LearningRate,
        rng: &mut impl RandomBits,
        c: &mut Counters,
    ) -> Weight {
        Weight::from_raw(plasticity::bias_update(
            b.to_raw(),
            &WEIGHT,
            delta.to_raw(),
            &DELTA,
            lr.to_raw(),
            &LEARNING_RATE,
            rng,
            c,
        ))
    }

    /// Retrograde aggregation over one synapse row, `m_j = Σ_i w_ij·δ_i`, into the credit format
    /// (a typed [`RetroAccumulator`]).
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct RetroRow(RetroAccumulator);

    impl Default for RetroRow {
        fn default() -> Self {
            Self::new()
        }
    }

    impl RetroRow {
        /// An empty row sum (weights in [`WEIGHT`], messages in [`DELTA`]).
        #[inline]
        pub fn new() -> Self {
            Self(RetroAccumulator::new(&WEIGHT, &DELTA))
        }

        /// Adds one retrograde synaptic op, `w·δ` (exact).
        #[inline]
        pub fn add(&mut self, w: Weight, delta: Delta) {
            self.0.add(w.to_raw(), delta.to_raw());
        }

        /// The message `m` in the credit format (nearest-even, saturating, counted).
        #[inline]
        pub fn finish(&self, rng: &mut impl RandomBits, c: &mut Counters) -> Credit {
            Credit::from_raw(self.0.finish(&CREDIT, rng, c))
        }

        /// The untyped accumulator (exact sum, fractional bits, terms).
        #[inline]
        pub fn raw(&self) -> &RetroAccumulator {
            &self.0
        }

        /// Empties the row sum.
        #[inline]
        pub fn clear(&mut self) {
            self.0.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    //! `fixed`'s own arithmetic against the run-time kernels, wherever both define the same
    //! operation. What `fixed` does, verified in its 1.31 source and below:
    //!
    //! * float → fixed (`from_num`, `saturating_from_num`, `wrapping_from_num`): round to
    //!   nearest, ties to even, then saturate or wrap: the same as [`Format::from_f64`] under
    //!   [`Rounding::NearestEven`] (ties included). NaN panics in `fixed`; the run-time
    //!   quantiser gives 0 and counts it. `wrapping_from_num(±∞)` panics; the run-time quantiser
    //!   saturates ±∞ whatever the overflow mode. Those inputs are left out of the comparison.
    //! * fixed → fixed (`from_num`, `saturating_from_num`, `to_num`): discards fractional bits
    //!   by **flooring**: compared with [`requantize`] under [`Rounding::Floor`].
    //! * `saturating_mul`, `wrapping_mul`, `add_prod`: the product's extra fractional bits are
    //!   **floored**: compared under [`Rounding::Floor`]. The chip rounds products to nearest-even
    //!   (or stochastically for weights), so `fixed`'s `*` is *not* the chip's multiply.
    //! * `wide_mul`, `wide_mul_unsigned`: exact double-width products, the same as the kernels'
    //!   exact `i128` products. A nearest-even rounding of them is built from `fixed`'s own
    //!   `round_ties_even` after moving the binary point (`from_bits` of the same bits into a
    //!   type with `s` fewer fractional bits is an exact division by `2^s`).
    //! * There is no stochastic rounding in `fixed`: the weight update's stochastic result is
    //!   only checked to lie on the floor or one LSB above it.
    use super::balance_core::*;
    use super::*;
    use crate::arith::CounterRng;
    use crate::{credit, plasticity};
    use core::fmt::Debug;
    use fixed::types::extra::{LeEqU64, U5, U11, U12, U14, U15, U22, U26, U27, U30, U33};
    use fixed::{FixedI32, FixedI64, FixedU16, FixedU32};

    /// A 32-bit accumulator type (Q10.22) for the generic property tests.
    type Acc32 = FixedI32<U22>;
    use proptest::prelude::*;
    use proptest::test_runner::TestCaseError;

    const FL: Rounding = Rounding::Floor;
    const NE: Rounding = Rounding::NearestEven;
    const SAT: Overflow = Overflow::Saturate;
    const WRAP: Overflow = Overflow::Wrap;

    /// Cases per property (proptest's default is 256).
    const CASES: u32 = 4096;

    fn rng() -> CounterRng {
        CounterRng::new(0, 0, 0, 0)
    }

    /// `fixed`'s nearest-even rounding of an exact value with raw `bits` to `s` fewer fractional
    /// bits: `FixedI64::<S>::from_bits(bits)` is the value times `2^to_frac` (moving the binary
    /// point is an exact division by `2^s`), which `round_ties_even` rounds to an integer.
    fn ne_shift<S: LeEqU64>(bits: i64) -> i64 {
        FixedI64::<S>::from_bits(bits)
            .round_ties_even()
            .to_num::<i64>()
    }

    // ---- the formats --------------------------------------------------------------------------

    /// One `[formats.NAME]` section of a chip toml: (bits, frac, signed, rounding, overflow).
    fn toml_format(toml: &str, name: &str) -> Format {
        let header = format!("[formats.{name}]");
        let body = toml
            .split(&header)
            .nth(1)
            .unwrap_or_else(|| panic!("no {header}"));
        let body = body.split("\n[").next().unwrap();
        let field = |key: &str| -> String {
            body.lines()
                .map(|l| l.split('#').next().unwrap().trim())
                .find_map(|l| {
                    let (k, v) = l.split_once('=')?;
                    (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
                })
                .unwrap_or_else(|| panic!("{header} has no {key}"))
        };
        let rounding = match field("rounding").as_str() {
            "nearest-even" => Rounding::NearestEven,
            "stochastic" => Rounding::Stochastic,
            "floor" => Rounding::Floor,
            "toward-zero" => Rounding::TowardZero,
            r => panic!("rounding {r}"),
        };
        let overflow = match field("overflow").as_str() {
            "saturate" => SAT,
            "wrap" => WRAP,
            o => panic!("overflow {o}"),
        };
        Format::new(
            field("bits").parse().unwrap(),
            field("frac").parse().unwrap(),
            field("signed").parse().unwrap(),
            rounding,
            overflow,
        )
    }

    /// The constants are the chip model's formats, field for field.
    #[test]
    fn balance_core_formats_match_the_chip_model() {
        let toml = include_str!("../../hw_models/balance-core.toml");
        for (name, fmt) in [
            ("weight", WEIGHT),
            ("membrane", MEMBRANE),
            ("rate", RATE),
            ("credit", CREDIT),
            ("delta", DELTA),
            ("lut", LUT),
            ("accumulator", ACCUMULATOR),
            ("learning_rate", LEARNING_RATE),
        ] {
            assert_eq!(toml_format(toml, name), fmt, "{name}");
            assert_eq!(fmt.validate(), Ok(()), "{name}");
        }
    }

    fn check_format_of<F: FixedWord>() {
        let f = format_of::<F>(NE, SAT);
        assert_eq!(f.bits as usize, 8 * core::mem::size_of::<F>());
        assert_eq!(f.frac as u32, F::FRAC_NBITS);
        assert_eq!(f.signed, F::IS_SIGNED);
        assert_eq!(
            (f.min_raw(), f.max_raw()),
            (F::MIN.to_raw(), F::MAX.to_raw())
        );
        assert_eq!(f.lsb(), F::DELTA.to_num::<f64>());
        for raw in [
            f.min_raw(),
            f.min_raw() + 1,
            0,
            1,
            f.max_raw() - 1,
            f.max_raw(),
        ] {
            assert_eq!(F::from_raw(raw).to_raw(), raw);
            assert_eq!(f.to_f64(raw), F::from_raw(raw).to_num::<f64>());
        }
    }

    /// `format_of` gives each type's width, fractional bits, sign, range and LSB.
    #[test]
    fn format_of_matches_the_type() {
        check_format_of::<Weight>();
        check_format_of::<Rate>();
        check_format_of::<Credit>();
        check_format_of::<LearningRate>();
        check_format_of::<Acc32>();
        check_format_of::<FixedI8<U5>>();
        check_format_of::<FixedU8<U5>>();
        check_format_of::<FixedU32<U27>>();
        check_format_of::<FixedI32<U30>>();
    }

    // ---- strategies ---------------------------------------------------------------------------

    /// Values of `F`: uniform over its raw range, its edges, and coarse values (the low half of
    /// the bits zero), whose products are often exact or exact ties after rounding.
    fn word<F: FixedWord + Debug + 'static>() -> impl Strategy<Value = F> {
        let f = format_of::<F>(FL, SAT);
        let (lo, hi, half) = (f.min_raw(), f.max_raw(), f.bits / 2);
        let edges = vec![lo, lo + 1, (-1).max(lo), 0, 1, hi - 1, hi];
        prop_oneof![
            6 => lo..=hi,
            1 => prop::sample::select(edges),
            2 => (lo >> half..=hi >> half).prop_map(move |k| k << half),
        ]
        .prop_map(F::from_raw)
    }

    /// Finite reals for `F`: in and around its range, exact ties (k + ½)·LSB, and any finite
    /// f64 (huge, tiny, subnormal).
    fn real_for<F: FixedWord>() -> impl Strategy<Value = f64> {
        let f = format_of::<F>(FL, SAT);
        let (lo, hi, lsb) = (f.to_f64(f.min_raw()), f.to_f64(f.max_raw()), f.lsb());
        let margin = (hi - lo) / 8.0;
        let (klo, khi) = (f.min_raw() - 64, f.max_raw() + 64);
        prop_oneof![
            3 => (lo - margin)..(hi + margin),
            3 => (klo..=khi).prop_map(move |k| (k as f64 + 0.5) * lsb),
            1 => (klo..=khi).prop_map(move |k| k as f64 * lsb),
            1 => any::<f64>().prop_filter("finite", |x| x.is_finite()),
        ]
    }

    // ---- float quantisation -------------------------------------------------------------------

    /// `Format::from_f64` (nearest-even) against `saturating_from_num` / `wrapping_from_num`,
    /// with the counters against `overflowing_from_num`'s flag.
    fn check_from_f64<F: FixedWord + Debug>(x: f64) -> Result<(), TestCaseError> {
        let (want, over) = F::overflowing_from_num(x);
        for (mode, fx) in [
            (SAT, F::saturating_from_num(x)),
            (WRAP, F::wrapping_from_num(x)),
        ] {
            let mut c = Counters::default();
            let got = TypedFormat::<F>::new(NE, mode).from_f64(x, &mut c);
            prop_assert_eq!(got, fx, "{:?} {}", mode, x);
            prop_assert_eq!(c.saturations + c.wraps, over as u64, "{:?} {}", mode, x);
            if mode == WRAP {
                prop_assert_eq!(got, want);
            }
            if !over {
                prop_assert_eq!(got, F::from_num(x)); // plain `from_num` panics on overflow
            }
        }
        // The chip's weight format rounds stochastically, but quantising a real uses
        // nearest-even (no random draw): the same bits again.
        let mut c = Counters::default();
        let st = TypedFormat::<F>::new(Rounding::Stochastic, SAT).from_f64(x, &mut c);
        prop_assert_eq!(st, F::saturating_from_num(x));
        prop_assert_eq!(c.rng_draws, 0);
        Ok(())
    }

    /// Every tie (k + ½)·LSB and every exact value of the 16-bit types, exhaustively.
    #[test]
    fn from_f64_matches_from_num_on_every_tie() {
        fn all<F: FixedWord + Debug>() {
            let f = format_of::<F>(NE, SAT);
            for k in f.min_raw() - 2..=f.max_raw() + 2 {
                for x in [k as f64 * f.lsb(), (k as f64 + 0.5) * f.lsb()] {
                    check_from_f64::<F>(x).unwrap();
                }
            }
        }
        all::<Weight>();
        all::<Rate>();
        all::<Credit>();
        all::<LearningRate>();
        // ties to even, not away from zero: 0.5 LSB -> 0, 1.5 LSB -> 2, -2.5 LSB -> -2.
        let lsb = WEIGHT.lsb();
        assert_eq!(Weight::from_num(0.5 * lsb).to_bits(), 0);
        assert_eq!(Weight::from_num(1.5 * lsb).to_bits(), 2);
        assert_eq!(Weight::from_num(-2.5 * lsb).to_bits(), -2);
        // ±∞ saturate in both.
        let mut c = Counters::default();
        for x in [f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(
                WEIGHT_TYPED.from_f64(x, &mut c),
                Weight::saturating_from_num(x)
            );
        }
    }

    // ---- addition and multiplication ----------------------------------------------------------

    /// `fit(a + b)` against `saturating_add` / `wrapping_add` (and `a − b` against `*_sub`),
    /// counters against `overflowing_add`'s flag.
    fn check_add<F: FixedWord + Debug>(a: F, b: F) -> Result<(), TestCaseError> {
        let (s, w) = (
            TypedFormat::<F>::new(NE, SAT),
            TypedFormat::<F>::new(NE, WRAP),
        );
        let mut c = Counters::default();
        prop_assert_eq!(s.add(a, b, &mut c), a.saturating_add(b));
        prop_assert_eq!(w.add(a, b, &mut c), a.wrapping_add(b));
        prop_assert_eq!(c.saturations, a.overflowing_add(b).1 as u64);
        prop_assert_eq!(c.wraps, a.overflowing_add(b).1 as u64);
        let mut c = Counters::default();
        prop_assert_eq!(s.sub(a, b, &mut c), a.saturating_sub(b));
        prop_assert_eq!(w.sub(a, b, &mut c), a.wrapping_sub(b));
        prop_assert_eq!(c.saturations, a.overflowing_sub(b).1 as u64);
        Ok(())
    }

    /// `requantize(a·b, 2·frac)` under floor rounding against `saturating_mul` /
    /// `wrapping_mul`, counters against `overflowing_mul`'s flag.
    fn check_mul<F: FixedWord + Debug>(a: F, b: F) -> Result<(), TestCaseError> {
        let mut c = Counters::default();
        let mut r = rng();
        let s = TypedFormat::<F>::new(FL, SAT).mul(a, b, &mut r, &mut c);
        let w = TypedFormat::<F>::new(FL, WRAP).mul(a, b, &mut r, &mut c);
        prop_assert_eq!(s, a.saturating_mul(b));
        prop_assert_eq!(w, a.wrapping_mul(b));
        let over = a.overflowing_mul(b).1 as u64;
        prop_assert_eq!((c.saturations, c.wraps), (over, over));
        Ok(())
    }

    /// `fixed`'s `*` floors; the chip's formats round to nearest-even. They differ by one LSB
    /// whenever the discarded bits are at least a half: this is a real difference, not a bug.
    #[test]
    fn fixed_mul_floors_where_the_chip_rounds_to_nearest() {
        let mut c = Counters::default();
        // (3·2^-12)·0.5 = 1.5 LSB: fixed floors to 1, nearest-even gives 2.
        let (a, b) = (Weight::from_bits(3), Weight::from_num(0.5));
        assert_eq!(a.saturating_mul(b).to_bits(), 1);
        let ne = TypedFormat::<Weight>::new(NE, SAT);
        assert_eq!(ne.mul(a, b, &mut rng(), &mut c).to_bits(), 2);
        // (−1·2^-12)·0.5 = −0.5 LSB: fixed floors to −1, nearest-even gives 0.
        let a = Weight::from_bits(-1);
        assert_eq!(a.saturating_mul(b).to_bits(), -1);
        assert_eq!(ne.mul(a, b, &mut rng(), &mut c).to_bits(), 0);
        // fixed-to-fixed conversion floors too: −1 LSB of a credit (2^-14) is −0.25 LSB of a
        // weight: fixed gives −1, the chip's nearest-even gives 0.
        let x = Credit::from_bits(-1);
        assert_eq!(Weight::from_num(x).to_bits(), -1);
        assert_eq!(ne.convert(x, &mut rng(), &mut c).to_bits(), 0);
        assert_eq!(c, Counters::default());
    }

    // ---- conversions between formats ----------------------------------------------------------

    /// `requantize` into `B` under floor rounding against `B::saturating_from_num(a)` /
    /// `wrapping_from_num(a)` and `a.saturating_to_num::<B>()`, counters against
    /// `overflowing_from_num`'s flag.
    fn check_convert<A: FixedWord, B: FixedWord + Debug>(a: A) -> Result<(), TestCaseError> {
        let mut c = Counters::default();
        let mut r = rng();
        let s = TypedFormat::<B>::new(FL, SAT).convert(a, &mut r, &mut c);
        let w = TypedFormat::<B>::new(FL, WRAP).convert(a, &mut r, &mut c);
        prop_assert_eq!(s, B::saturating_from_num(a));
        prop_assert_eq!(s, a.saturating_to_num::<B>());
        prop_assert_eq!(w, B::wrapping_from_num(a));
        let over = B::overflowing_from_num(a).1 as u64;
        prop_assert_eq!((c.saturations, c.wraps), (over, over));
        Ok(())
    }

    /// Every value of each 16-bit format into every other typed format of the chip, plus
    /// wider containers (exact left shifts), exhaustively.
    #[test]
    fn conversions_match_fixed_exhaustively() {
        fn from<A: FixedWord>() {
            let f = format_of::<A>(FL, SAT);
            for k in f.min_raw()..=f.max_raw() {
                let a = A::from_raw(k);
                check_convert::<A, Weight>(a).unwrap();
                check_convert::<A, Rate>(a).unwrap();
                check_convert::<A, Credit>(a).unwrap();
                check_convert::<A, LearningRate>(a).unwrap();
                check_convert::<A, Acc32>(a).unwrap();
                check_convert::<A, FixedU32<U27>>(a).unwrap();
            }
        }
        from::<Weight>();
        from::<Rate>();
        from::<Credit>();
        from::<LearningRate>();
    }

    // ---- the exact-product-then-round kernels -------------------------------------------------

    /// `credit::delta` (g in the 12-bit table format, held exactly in a `FixedU16<U11>`) against
    /// `wide_mul_unsigned`: floored by `saturating_from_num`, or rounded nearest-even by
    /// `round_ties_even` after moving the binary point by 11 bits.
    fn check_delta(g: i64, cr: Credit) -> Result<(), TestCaseError> {
        let p = cr.wide_mul_unsigned(FixedU16::<U11>::from_bits(g as u16)); // FixedI32<U25>
        let mut c = Counters::default();
        let mut r = rng();
        // The chip's δ format (nearest-even, saturating) through the typed kernel.
        let ne = ne_shift::<U11>(p.to_raw()); // FixedI32<U25> -> 14 fractional bits
        let ne = Delta::saturating_from_num(FixedI64::<U14>::from_bits(ne));
        prop_assert_eq!(delta(g, cr, &mut r, &mut c), ne);
        // Floor rounding through the untyped kernel.
        let df = Format {
            rounding: FL,
            ..DELTA
        };
        let got = credit::delta(g, &LUT, cr.to_raw(), &CREDIT, &df, &mut r, &mut c);
        prop_assert_eq!(Delta::from_raw(got), Delta::saturating_from_num(p));
        Ok(())
    }

    /// A retrograde row `Σ w·δ` against a sum of `wide_mul` products: floor and nearest-even
    /// into the credit format.
    fn check_retro(row: &[(Weight, Delta)]) -> Result<(), TestCaseError> {
        let mut typed_row = RetroRow::new();
        let mut sum = FixedI64::<U26>::ZERO;
        for &(w, d) in row {
            typed_row.add(w, d);
            sum += FixedI64::<U26>::from_num(w.wide_mul(d)); // exact: FixedI32<U26> -> I64
        }
        let mut c = Counters::default();
        let mut r = rng();
        prop_assert_eq!(typed_row.raw().value(), sum.to_bits() as i128);
        let ne = ne_shift::<U12>(sum.to_bits()); // 26 -> 14 fractional bits
        let want = Credit::saturating_from_num(FixedI64::<U14>::from_bits(ne));
        prop_assert_eq!(typed_row.finish(&mut r, &mut c), want);
        let cf = Format {
            rounding: FL,
            ..CREDIT
        };
        let got = Credit::from_raw(typed_row.raw().finish(&cf, &mut r, &mut c));
        prop_assert_eq!(got, Credit::saturating_from_num(sum));
        Ok(())
    }

    /// A forward row `Σ w·r` against a sum of `wide_mul_unsigned` products, into the
    /// accumulator format: floor and nearest-even.
    fn check_forward(row: &[(Weight, Rate)]) -> Result<(), TestCaseError> {
        let mut acc = 0i128;
        let mut sum = FixedI64::<U27>::ZERO;
        for &(w, r) in row {
            mac(&mut acc, w, r);
            sum += FixedI64::<U27>::from_num(w.wide_mul_unsigned(r)); // FixedI32<U27>
        }
        prop_assert_eq!(acc, sum.to_bits() as i128);
        let mut c = Counters::default();
        let mut r = rng();
        // balance-core's 40-bit accumulator holds the products exactly: only saturation.
        let lim = (1i64 << 39) - 1;
        prop_assert_eq!(
            row_sum(acc, &mut r, &mut c),
            sum.to_bits().clamp(-lim - 1, lim)
        );
        // Into a 32-bit Q10.22 accumulator: nearest-even and floor against `fixed`.
        let ne = ne_shift::<U5>(sum.to_bits()); // 27 -> 22 fractional bits
        let want = Acc32::saturating_from_num(FixedI64::<U22>::from_bits(ne));
        let near = TypedFormat::<Acc32>::new(NE, SAT);
        prop_assert_eq!(near.requantize(acc, MAC_FRAC, &mut r, &mut c), want);
        let floor = TypedFormat::<Acc32>::new(FL, SAT);
        prop_assert_eq!(
            floor.requantize(acc, MAC_FRAC, &mut r, &mut c),
            Acc32::saturating_from_num(sum)
        );
        Ok(())
    }

    /// `w + η·δ·r` and `b + η·δ` against `wide_mul` chains: the exact product `η·δ·r` is
    /// `(δ ×ᵤ η) ×ᵤ r` in `FixedI64<U45>`; `Δ` is rounded to 12 fractional bits (floor:
    /// `from_num`; nearest-even: `round_ties_even`), then added with `saturating_add` or
    /// `wrapping_add`. `|Δ| < 4` always fits the weight format, so rounding `Δ` first and fitting
    /// only the sum is what the kernel does. The chip's stochastic result lies on the floor or
    /// one LSB above it.
    fn check_update(
        w: Weight,
        d: Delta,
        rt: Rate,
        lr: LearningRate,
        key: u64,
    ) -> Result<(), TestCaseError> {
        let dl = d.wide_mul_unsigned(lr); // FixedI32<U30>, exact
        let p = dl.wide_mul_unsigned(FixedU32::<U15>::from_num(rt)); // FixedI64<U45>, exact
        let floor_dw = Weight::checked_from_num(p);
        prop_assert!(floor_dw.is_some());
        let floor_dw = floor_dw.unwrap();
        let ne_dw = Weight::from_bits(ne_shift::<U33>(p.to_bits()) as i16); // 45 -> 12
        let upd = |rounding, overflow, c: &mut Counters, r: &mut CounterRng| {
            let wf = Format {
                rounding,
                overflow,
                ..WEIGHT
            };
            Weight::from_raw(plasticity::weight_update(
                w.to_raw(),
                &wf,
                d.to_raw(),
                &DELTA,
                rt.to_raw(),
                &RATE,
                lr.to_raw(),
                &LEARNING_RATE,
                r,
                c,
            ))
        };
        let mut c = Counters::default();
        let mut r = rng();
        prop_assert_eq!(upd(FL, SAT, &mut c, &mut r), w.saturating_add(floor_dw));
        prop_assert_eq!(upd(FL, WRAP, &mut c, &mut r), w.wrapping_add(floor_dw));
        prop_assert_eq!(upd(NE, SAT, &mut c, &mut r), w.saturating_add(ne_dw));
        // The chip's (stochastic) update through the typed kernel.
        let mut r = CounterRng::from_key(key);
        let mut c = Counters::default();
        let st = weight_update(w, d, rt, lr, &mut r, &mut c);
        let inexact = p != floor_dw; // any nonzero discarded bit
        let ceil_dw = if inexact {
            floor_dw + Weight::DELTA
        } else {
            floor_dw
        };
        prop_assert!(st == w.saturating_add(floor_dw) || st == w.saturating_add(ceil_dw));
        prop_assert_eq!(c.rng_draws, inexact as u64);
        // Bias: b + η·δ, the product floored into the weight format.
        let mut c = Counters::default();
        let bf = Format {
            rounding: FL,
            ..WEIGHT
        };
        let b = plasticity::bias_update(
            w.to_raw(),
            &bf,
            d.to_raw(),
            &DELTA,
            lr.to_raw(),
            &LEARNING_RATE,
            &mut r,
            &mut c,
        );
        prop_assert_eq!(Weight::from_raw(b), w.saturating_add(Weight::from_num(dl)));
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(CASES))]

        #[test]
        fn prop_from_f64_weight(x in real_for::<Weight>()) { check_from_f64::<Weight>(x)?; }
        #[test]
        fn prop_from_f64_rate(x in real_for::<Rate>()) { check_from_f64::<Rate>(x)?; }
        #[test]
        fn prop_from_f64_credit(x in real_for::<Credit>()) { check_from_f64::<Credit>(x)?; }
        #[test]
        fn prop_from_f64_learning_rate(x in real_for::<LearningRate>()) {
            check_from_f64::<LearningRate>(x)?;
        }
        #[test]
        fn prop_from_f64_accumulator(x in real_for::<Acc32>()) {
            check_from_f64::<Acc32>(x)?;
        }

        #[test]
        fn prop_add_weight(a in word::<Weight>(), b in word::<Weight>()) { check_add(a, b)?; }
        #[test]
        fn prop_add_rate(a in word::<Rate>(), b in word::<Rate>()) { check_add(a, b)?; }
        #[test]
        fn prop_add_credit(a in word::<Credit>(), b in word::<Credit>()) { check_add(a, b)?; }
        #[test]
        fn prop_add_learning_rate(a in word::<LearningRate>(), b in word::<LearningRate>()) {
            check_add(a, b)?;
        }
        #[test]
        fn prop_add_accumulator(a in word::<Acc32>(), b in word::<Acc32>()) {
            check_add(a, b)?;
        }

        #[test]
        fn prop_mul_weight(a in word::<Weight>(), b in word::<Weight>()) { check_mul(a, b)?; }
        #[test]
        fn prop_mul_rate(a in word::<Rate>(), b in word::<Rate>()) { check_mul(a, b)?; }
        #[test]
        fn prop_mul_credit(a in word::<Credit>(), b in word::<Credit>()) { check_mul(a, b)?; }
        #[test]
        fn prop_mul_learning_rate(a in word::<LearningRate>(), b in word::<LearningRate>()) {
            check_mul(a, b)?;
        }
        #[test]
        fn prop_mul_accumulator(a in word::<Acc32>(), b in word::<Acc32>()) {
            check_mul(a, b)?;
        }

        #[test]
        fn prop_convert_from_accumulator(a in word::<Acc32>()) {
            check_convert::<Acc32, Weight>(a)?;
            check_convert::<Acc32, Rate>(a)?;
            check_convert::<Acc32, Credit>(a)?;
            check_convert::<Acc32, LearningRate>(a)?;
            check_convert::<Acc32, FixedU32<U27>>(a)?;
            check_convert::<Acc32, FixedI8<U5>>(a)?;
        }

        #[test]
        fn prop_delta_matches_wide_mul(g in 0i64..=LUT.max_raw(), cr in word::<Credit>()) {
            check_delta(g, cr)?;
        }

        /// Rows of any operands (sums mostly saturate the credit format), of small operands
        /// (|w| ≤ 1, |δ| ≤ 1/4: sums mostly in range), and either row closed by a term
        /// `2^-12 · δ` that makes the sum an exact tie at the credit format's LSB.
        #[test]
        fn prop_retro_row_matches_wide_mul(
            row in prop::collection::vec((word::<Weight>(), word::<Delta>()), 1..16),
            small in any::<bool>(),
            tie in any::<bool>(),
        ) {
            let mut row = row;
            if small {
                for (w, d) in row.iter_mut() {
                    *w = Weight::from_bits(w.to_bits() >> 3);
                    *d = Delta::from_bits(d.to_bits() >> 3);
                }
            }
            if tie {
                let sum: i64 = row.iter().map(|(w, d)| w.to_raw() * d.to_raw()).sum();
                let fix = (0x800 - (sum & 0xfff)) & 0xfff;
                row.push((Weight::from_bits(1), Delta::from_bits(fix as i16)));
            }
            check_retro(&row)?;
        }

        #[test]
        fn prop_forward_row_matches_wide_mul(
            row in prop::collection::vec((word::<Weight>(), word::<Rate>()), 1..80)
        ) {
            check_forward(&row)?;
        }

        #[test]
        fn prop_weight_update_matches_wide_mul(
            w in word::<Weight>(),
            d in word::<Delta>(),
            r in word::<Rate>(),
            lr in word::<LearningRate>(),
            key in any::<u64>(),
        ) {
            check_update(w, d, r, lr, key)?;
        }

        /// Updates whose `η·δ·r` is an exact tie at the weight's LSB (see [`tie_update`]).
        #[test]
        fn prop_weight_update_ties(
            w in word::<Weight>(),
            (d, r, lr) in tie_update(),
            key in any::<u64>(),
        ) {
            check_update(w, d, r, lr, key)?;
        }
    }

    /// `(δ, r, η)` with raw product `η·δ·r = odd · 2^32`: at 16 + 14 + 15 = 45 fractional bits,
    /// exactly half a weight LSB (2^-12) plus whole LSBs. Raw `η = odd·2^i`, `δ = ±odd·2^j`,
    /// `r = odd·2^k` with `i + j + k = 32`, each in its format's range.
    fn tie_update() -> impl Strategy<Value = (Delta, Rate, LearningRate)> {
        (3u32..=15)
            .prop_flat_map(|i| (Just(i), (17 - i).max(3)..=14))
            .prop_flat_map(|(i, j)| {
                (
                    Just((i, j, 32 - i - j)),
                    any::<(u16, u16, u16)>(),
                    any::<bool>(),
                )
            })
            .prop_map(|((i, j, k), (oa, ob, oc), neg)| {
                // An odd number below 2^room.
                let odd = |o: u16, room: u32| (o as i64 & ((1 << room) - 1)) | 1;
                let (a, b, c) = (
                    odd(oa, 16 - i) << i,
                    odd(ob, 15 - j) << j,
                    odd(oc, 16 - k) << k,
                );
                let b = if neg { -b } else { b };
                (
                    Delta::from_raw(b),
                    Rate::from_raw(c),
                    LearningRate::from_raw(a),
                )
            })
    }

    /// The typed kernels are the untyped kernels on the raw bits.
    #[test]
    fn typed_kernels_are_the_runtime_kernels() {
        let mut c = Counters::default();
        let (w, d, r, lr) = (
            Weight::from_num(-1.25),
            Delta::from_num(0.3),
            Rate::from_num(0.7),
            LearningRate::from_num(0.01),
        );
        let key = 99;
        let typed = weight_update(w, d, r, lr, &mut CounterRng::from_key(key), &mut c);
        let raw = plasticity::weight_update(
            w.to_raw(),
            &WEIGHT,
            d.to_raw(),
            &DELTA,
            r.to_raw(),
            &RATE,
            lr.to_raw(),
            &LEARNING_RATE,
            &mut CounterRng::from_key(key),
            &mut c,
        );
        assert_eq!(typed.to_raw(), raw);
        let b = bias_update(w, d, lr, &mut CounterRng::from_key(key), &mut c);
        let braw = plasticity::bias_update(
            w.to_raw(),
            &WEIGHT,
            d.to_raw(),
            &DELTA,
            lr.to_raw(),
            &LEARNING_RATE,
            &mut CounterRng::from_key(key),
            &mut c,
        );
        assert_eq!(b.to_raw(), braw);
        // Credit accumulation saturates at the credit format's end (counted).
        let mut c = Counters::default();
        let m = Credit::from_num(1.5);
        assert_eq!(accumulate_credit(m, m, &mut c), Credit::MAX);
        assert_eq!(c.saturations, 1);
        assert_eq!(accumulate_credit(m, -m, &mut c), m.saturating_add(-m));
        let mut row = RetroRow::default();
        row.add(Weight::from_num(2), Delta::from_num(-0.25));
        assert_eq!(row.finish(&mut rng(), &mut c), Credit::from_num(-0.5));
        row.clear();
        assert_eq!(row.raw().terms(), 0);
        assert_eq!(WEIGHT_TYPED.to_f64(w), -1.25);
    }
}
