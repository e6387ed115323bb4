//! Integer datapath: number formats, rounding, overflow, event counters and counter-based
//! random bits.
//!
//! A [`Format`] says how a raw integer `q` stands for the real `q / 2^frac`, and what happens when
//! a value enters it: [`Rounding`] when fractional bits are discarded, [`Overflow`] when it does
//! not fit `bits`. Every kernel of the crate moves values between formats with [`requantize`]
//! (round, then fit) or [`fit`] (fit only), and records every saturation, wrap, NaN and random
//! draw in a [`Counters`] value that the caller owns. Nothing panics on data.
//!
//! ```
//! use accord_firmware::arith::{requantize, CounterRng, Counters, Format, Overflow, Rounding};
//!
//! // Q3.4 signed, 8 bits: raw range -128..=127, i.e. -8.0..=7.9375.
//! let q = Format::new(8, 4, true, Rounding::NearestEven, Overflow::Saturate);
//! q.validate().unwrap();
//! let mut c = Counters::default();
//! let mut rng = CounterRng::new(1, 0, 0, 0);
//!
//! assert_eq!(q.from_f64(1.53125, &mut c), 24); // 1.53125 * 16 = 24.5 -> tie to even 24
//! assert_eq!(q.to_f64(24), 1.5);
//! // 0b1_0111 with 3 fractional bits (2.875) into 4 fractional bits: exact left shift.
//! assert_eq!(requantize(23, 3, &q, &mut rng, &mut c), 46);
//! // 100.0 does not fit: saturates to 127 and is counted.
//! assert_eq!(q.from_f64(100.0, &mut c), 127);
//! assert_eq!(c.saturations, 1);
//! ```
//!
//! # Cost
//!
//! Primitive actions per call (*and* is a bit mask; *cmp* a compare):
//!
//! | Kernel | shifts | adds | ands | cmps | multiplies | RNG draws |
//! |---|---|---|---|---|---|---|
//! | [`fit`] (in range) | 0 | 0 | 0 | 2 | 0 | 0 |
//! | [`requantize`], floor | 1 | 0 | 0 | 2 | 0 | 0 |
//! | [`requantize`], toward zero / nearest-even | 1 | 1 | 1 | 2 + 2 | 0 | 0 |
//! | [`requantize`], stochastic | 2 | 2 | 1 | 1 + 2 | 0 | 1 if discarded bits ≠ 0 |
//! | [`CounterRng::next_u64`] | 3 | 2 | 0 | 0 | 3 (+ 3 xors) | — |
//!
//! A left shift (more fractional bits) is exact and costs one shift and a range check. On a
//! 32-bit core the 128-bit intermediates are multi-word operations; the counts above are per
//! operation, whatever its width.

use core::fmt;

/// How a value with more fractional bits than its destination is rounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rounding {
    /// Round to nearest, ties to even.
    NearestEven,
    /// Truncate toward zero.
    TowardZero,
    /// Round toward negative infinity.
    Floor,
    /// Round up with probability equal to the discarded fraction (one random draw per rounding).
    Stochastic,
}

/// What happens when a value does not fit its destination format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Overflow {
    /// Clamp to the nearest representable value (counted).
    Saturate,
    /// Keep the low `bits` bits, two's complement (counted).
    Wrap,
}

/// A fixed-point number format: `bits` total bits (1..=40), `frac` fractional bits (0..=40),
/// signed or unsigned, with a rounding and an overflow mode. A raw value `q` stands for
/// `q / 2^frac`.
///
/// Check a format read from a configuration with [`Format::validate`]. The kernels never panic on
/// an unvalidated format: they use `bits` clamped to 1..=40 and `frac` clamped to 0..=40.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Format {
    /// Total stored bits, sign included (1..=40).
    pub bits: u8,
    /// Fractional bits (0..=40); may exceed `bits` for formats of small magnitude.
    pub frac: u8,
    /// Two's complement signed if true, unsigned otherwise.
    pub signed: bool,
    /// Rounding mode used when a value enters this format.
    pub rounding: Rounding,
    /// Overflow mode used when a value enters this format.
    pub overflow: Overflow,
}

/// Largest allowed [`Format::bits`] and [`Format::frac`].
pub const MAX_BITS: u8 = 40;

/// A [`Format`] field outside its allowed range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FormatError {
    /// `bits` is outside `1..=40`; holds the value found.
    Bits(u8),
    /// `frac` is outside `0..=40`; holds the value found.
    Frac(u8),
}

impl FormatError {
    /// Name of the offending field (`"bits"` or `"frac"`).
    pub const fn field(&self) -> &'static str {
        match self {
            Self::Bits(_) => "bits",
            Self::Frac(_) => "frac",
        }
    }

    /// Allowed range of the offending field, inclusive.
    pub const fn allowed(&self) -> (u8, u8) {
        match self {
            Self::Bits(_) => (1, MAX_BITS),
            Self::Frac(_) => (0, MAX_BITS),
        }
    }

    /// The value that was found.
    pub const fn found(&self) -> u8 {
        match self {
            Self::Bits(v) | Self::Frac(v) => *v,
        }
    }
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (lo, hi) = self.allowed();
        write!(
            f,
            "format field `{}` = {} is out of range: allowed {}..={}",
            self.field(),
            self.found(),
            lo,
            hi
        )
    }
}

impl Format {
    /// A format from its fields (not validated; see [`Format::validate`]).
    #[inline]
    pub const fn new(
        bits: u8,
        frac: u8,
        signed: bool,
        rounding: Rounding,
        overflow: Overflow,
    ) -> Self {
        Self {
            bits,
            frac,
            signed,
            rounding,
            overflow,
        }
    }

    /// Checks `bits` in `1..=40` and `frac` in `0..=40`.
    pub const fn validate(&self) -> Result<(), FormatError> {
        if self.bits == 0 || self.bits > MAX_BITS {
            return Err(FormatError::Bits(self.bits));
        }
        if self.frac > MAX_BITS {
            return Err(FormatError::Frac(self.frac));
        }
        Ok(())
    }

    /// `bits` clamped to 1..=40.
    #[inline]
    const fn eff_bits(&self) -> u32 {
        let b = self.bits as u32;
        if b == 0 {
            1
        } else if b > MAX_BITS as u32 {
            MAX_BITS as u32
        } else {
            b
        }
    }

    /// `frac` clamped to 0..=40.
    #[inline]
    pub(crate) const fn eff_frac(&self) -> u32 {
        let f = self.frac as u32;
        if f > MAX_BITS as u32 {
            MAX_BITS as u32
        } else {
            f
        }
    }

    /// Smallest raw value: `-2^(bits-1)` if signed, else 0.
    #[inline]
    pub const fn min_raw(&self) -> i64 {
        if self.signed {
            -(1i64 << (self.eff_bits() - 1))
        } else {
            0
        }
    }

    /// Largest raw value: `2^(bits-1) - 1` if signed, else `2^bits - 1`.
    #[inline]
    pub const fn max_raw(&self) -> i64 {
        if self.signed {
            (1i64 << (self.eff_bits() - 1)) - 1
        } else {
            (1i64 << self.eff_bits()) - 1
        }
    }

    /// Value of one raw unit, `2^-frac` (exact).
    #[inline]
    pub const fn lsb(&self) -> f64 {
        // Build the power of two from its exponent field: no std math needed.
        f64::from_bits(((1023 - self.eff_frac()) as u64) << 52)
    }

    /// Real value of a raw integer, `raw · 2^-frac` (exact for |raw| < 2^53).
    #[inline]
    pub fn to_f64(&self, raw: i64) -> f64 {
        raw as f64 * self.lsb()
    }

    /// Quantises a real into this format: scaled by `2^frac` exactly, rounded with this format's
    /// rounding (nearest-even when the mode is [`Rounding::Stochastic`]: no randomness is used
    /// here), then fitted with its overflow mode (counted). NaN gives 0 and counts `invalid`;
    /// ±∞ saturate to the end of the range and count `saturations` whatever the overflow mode.
    pub fn from_f64(&self, x: f64, c: &mut Counters) -> i64 {
        if x.is_nan() {
            bump(&mut c.invalid);
            return 0;
        }
        if x.is_infinite() {
            bump(&mut c.saturations);
            return if x > 0.0 {
                self.max_raw()
            } else {
                self.min_raw()
            };
        }
        // x = ±m · 2^e exactly.
        let bits = x.to_bits();
        let exp = ((bits >> 52) & 0x7ff) as i32;
        let man = bits & ((1u64 << 52) - 1);
        let (m, e) = if exp == 0 {
            (man, -1074)
        } else {
            (man | (1u64 << 52), exp - 1075)
        };
        let v = if bits >> 63 != 0 {
            -(m as i128)
        } else {
            m as i128
        };
        let rounding = match self.rounding {
            Rounding::Stochastic => Rounding::NearestEven,
            r => r,
        };
        let k = e + self.eff_frac() as i32;
        let exact = if k >= 0 {
            shl_exact(v, k as u32)
        } else {
            Exact::Fits(round_shr(v, k.unsigned_abs(), rounding, &mut NoBits, c))
        };
        fit_exact(exact, self, c)
    }
}

/// Event counters: every saturation, wrap, invalid input, random draw, table clamp and dropped
/// event is added here by the kernel that caused it. Counts saturate at `u64::MAX`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Values clamped to the end of their format's range.
    pub saturations: u64,
    /// Values wrapped modulo `2^bits`.
    pub wraps: u64,
    /// Invalid inputs replaced by a defined value (NaN quantised to 0, out-of-range parameters).
    pub invalid: u64,
    /// Random 64-bit draws consumed by stochastic rounding.
    pub rng_draws: u64,
    /// Balance-table lookups whose input lay outside the table's range.
    pub lut_clamps: u64,
    /// Events rejected by a full queue.
    pub queue_drops: u64,
}

impl Counters {
    /// Adds every count of `other` into `self`.
    pub fn merge(&mut self, other: &Counters) {
        self.saturations = self.saturations.saturating_add(other.saturations);
        self.wraps = self.wraps.saturating_add(other.wraps);
        self.invalid = self.invalid.saturating_add(other.invalid);
        self.rng_draws = self.rng_draws.saturating_add(other.rng_draws);
        self.lut_clamps = self.lut_clamps.saturating_add(other.lut_clamps);
        self.queue_drops = self.queue_drops.saturating_add(other.queue_drops);
    }
}

/// Adds one to a counter, saturating.
#[inline]
pub(crate) fn bump(x: &mut u64) {
    *x = x.saturating_add(1);
}

/// A source of uniformly distributed 64-bit words.
pub trait RandomBits {
    /// The next 64 random bits.
    fn next_u64(&mut self) -> u64;
}

/// Never drawn from (used where the rounding mode cannot be stochastic).
pub(crate) struct NoBits;

impl RandomBits for NoBits {
    #[inline]
    fn next_u64(&mut self) -> u64 {
        0
    }
}

const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function (Steele, Lea & Flood 2014).
#[inline]
const fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A counter-based random generator keyed by `(seed, entity, step, purpose)`.
///
/// The key is hashed into 64 bits with SplitMix64's mixer, one stage per field:
/// `h₀ = mix(seed + γ)`, then `h ← mix((h + γ) ⊕ x)` for `x` = entity, step, purpose, where
/// `γ = 0x9E3779B97F4A7C15`. Draw number `i` (from 0) is `mix(key + γ·(i + 1))`, i.e. the
/// SplitMix64 stream seeded with the key; [`CounterRng::draw_at`] reads any draw directly.
///
/// **Reproducibility.** The generator is *portable* and *value-stable*: it uses only wrapping
/// 64-bit integer arithmetic, so a key gives the same stream on every platform, build and thread
/// count, whichever thread or order the entities are processed in. The outputs are pinned by a
/// value-stability test; changing them is a breaking change. It is not cryptographic.
///
/// ```
/// use accord_firmware::arith::{CounterRng, RandomBits};
/// let mut a = CounterRng::new(42, 7, 3, 1);
/// let b = CounterRng::new(42, 7, 3, 1);
/// let first = a.next_u64();
/// assert_eq!(first, b.draw_at(0));
/// assert_ne!(first, CounterRng::new(42, 8, 3, 1).draw_at(0));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CounterRng {
    key: u64,
    counter: u64,
}

impl CounterRng {
    /// The stream for `(seed, entity, step, purpose)`, positioned at its first draw.
    #[inline]
    pub const fn new(seed: u64, entity: u64, step: u64, purpose: u32) -> Self {
        let mut h = mix64(seed.wrapping_add(GAMMA));
        h = mix64(h.wrapping_add(GAMMA) ^ entity);
        h = mix64(h.wrapping_add(GAMMA) ^ step);
        h = mix64(h.wrapping_add(GAMMA) ^ purpose as u64);
        Self::from_key(h)
    }

    /// The stream for an already mixed 64-bit key (plain SplitMix64 seeded with `key`).
    #[inline]
    pub const fn from_key(key: u64) -> Self {
        Self { key, counter: 0 }
    }

    /// The mixed key.
    #[inline]
    pub const fn key(&self) -> u64 {
        self.key
    }

    /// Number of draws taken so far (the position in the stream).
    #[inline]
    pub const fn draws(&self) -> u64 {
        self.counter
    }

    /// Draw number `i` of this stream, without moving the position.
    #[inline]
    pub const fn draw_at(&self, i: u64) -> u64 {
        mix64(self.key.wrapping_add(GAMMA.wrapping_mul(i.wrapping_add(1))))
    }
}

impl RandomBits for CounterRng {
    #[inline]
    fn next_u64(&mut self) -> u64 {
        let x = self.draw_at(self.counter);
        self.counter = self.counter.wrapping_add(1);
        x
    }
}

/// A value computed exactly, or the sign and low 128 bits of one too large for `i128`
/// (which is beyond any format's range).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Exact {
    Fits(i128),
    Over { neg: bool, low: i128 },
}

impl Exact {
    /// `self + w`, exactly (or its sign and low bits).
    #[inline]
    pub(crate) fn add(self, w: i128) -> Exact {
        match self {
            Exact::Fits(x) => match x.checked_add(w) {
                Some(s) => Exact::Fits(s),
                None => Exact::Over {
                    neg: x < 0,
                    low: x.wrapping_add(w),
                },
            },
            Exact::Over { neg, low } => Exact::Over {
                neg,
                low: low.wrapping_add(w),
            },
        }
    }
}

/// `v · 2^l`, exactly.
#[inline]
pub(crate) fn shl_exact(v: i128, l: u32) -> Exact {
    if l < 127 {
        let r = v << l;
        if r >> l == v {
            return Exact::Fits(r);
        }
    } else if v == 0 {
        return Exact::Fits(0);
    }
    Exact::Over {
        neg: v < 0,
        low: if l < 128 { v.wrapping_shl(l) } else { 0 },
    }
}

/// `floor(v / 2^k)` with bit 0 set if any discarded bit was nonzero (a sticky bit). Keeps floor,
/// toward-zero and nearest-even results of a later shift by at least 2 bits unchanged.
#[inline]
fn shr_sticky(v: i128, k: u32) -> i128 {
    if k >= 127 {
        if v < 0 { -1 } else { (v != 0) as i128 }
    } else {
        (v >> k) | ((v & ((1i128 << k) - 1)) != 0) as i128
    }
}

/// `v / 2^s` rounded with `mode`, exact for every sign; `s == 0` returns `v`.
///
/// Shifts beyond 126 bits first fold the excess bits into a sticky bit (exact for the
/// deterministic modes). Stochastic: one draw if the discarded bits are nonzero.
#[inline]
pub(crate) fn round_shr(
    mut v: i128,
    mut s: u32,
    mode: Rounding,
    rng: &mut impl RandomBits,
    c: &mut Counters,
) -> i128 {
    if s == 0 {
        return v;
    }
    if s > 126 {
        v = shr_sticky(v, s - 126);
        s = 126;
    }
    let q = v >> s; // floor
    let rem = v & ((1i128 << s) - 1); // in [0, 2^s)
    match mode {
        Rounding::Floor => q,
        Rounding::TowardZero => q + (v < 0 && rem != 0) as i128,
        Rounding::NearestEven => {
            let half = 1i128 << (s - 1);
            q + (rem > half || (rem == half && (q & 1) == 1)) as i128
        }
        Rounding::Stochastic => {
            if rem == 0 {
                return q;
            }
            bump(&mut c.rng_draws);
            let r = rng.next_u64();
            // A uniform integer in [0, 2^s): the top s bits of the draw when s <= 64, the draw
            // scaled up by 2^(s-64) otherwise.
            let r = if s <= 64 {
                (r >> (64 - s)) as i128
            } else {
                (r as i128) << (s - 64)
            };
            q + ((rem + r) >> s)
        }
    }
}

/// Exact rescale from `from_frac` to `to_frac` fractional bits with `mode`.
#[inline]
pub(crate) fn rescale(
    v: i128,
    from_frac: u32,
    to_frac: u32,
    mode: Rounding,
    rng: &mut impl RandomBits,
    c: &mut Counters,
) -> Exact {
    if from_frac >= to_frac {
        Exact::Fits(round_shr(v, from_frac - to_frac, mode, rng, c))
    } else {
        shl_exact(v, to_frac - from_frac)
    }
}

/// Low `bits` bits of `v`, sign-extended if signed.
#[inline]
fn wrap_bits(v: i128, to: &Format) -> i64 {
    let b = to.eff_bits();
    let m = (v as u128 & ((1u128 << b) - 1)) as i64;
    if to.signed && (m >> (b - 1)) & 1 == 1 {
        m - (1i64 << b)
    } else {
        m
    }
}

/// Fits a value into `to.bits` with `to.overflow`; no rounding. A value outside the range is
/// clamped (`saturations` += 1) or wrapped to its low `bits` bits (`wraps` += 1).
#[inline]
pub fn fit(value: i128, to: &Format, c: &mut Counters) -> i64 {
    let (lo, hi) = (to.min_raw(), to.max_raw());
    if value >= lo as i128 && value <= hi as i128 {
        return value as i64;
    }
    match to.overflow {
        Overflow::Saturate => {
            bump(&mut c.saturations);
            if value < lo as i128 { lo } else { hi }
        }
        Overflow::Wrap => {
            bump(&mut c.wraps);
            wrap_bits(value, to)
        }
    }
}

/// [`fit`] for an [`Exact`] value.
#[inline]
pub(crate) fn fit_exact(e: Exact, to: &Format, c: &mut Counters) -> i64 {
    match e {
        Exact::Fits(v) => fit(v, to, c),
        Exact::Over { neg, low } => match to.overflow {
            Overflow::Saturate => {
                bump(&mut c.saturations);
                if neg { to.min_raw() } else { to.max_raw() }
            }
            Overflow::Wrap => {
                bump(&mut c.wraps);
                wrap_bits(low, to)
            }
        },
    }
}

/// Moves `value` (with `from_frac` fractional bits) into format `to`: rounds to `to.frac` with
/// `to.rounding`, then fits `to.bits` with `to.overflow` (see [`fit`]).
///
/// * Left shifts (`to.frac > from_frac`) are exact; a result too large even for `i128` still
///   saturates by its sign or wraps to its exact low bits.
/// * Nearest-even, toward-zero and floor are exact rational roundings of `value / 2^s`,
///   `s = from_frac − to.frac`, for either sign (e.g. nearest-even: −2.5 → −2, −3.5 → −4;
///   toward zero: −2.5 → −2; floor: −2.5 → −3).
/// * Stochastic: `floor((value + r) / 2^s)` with `r` uniform in `[0, 2^s)`, so the result is
///   `floor` or `floor + 1`, rounding up with probability equal to the discarded fraction.
///   `r` is the top `s` bits of **one** 64-bit draw from `rng` (for `s > 64`, the draw times
///   `2^(s−64)`: the probability is resolved to 2⁻⁶⁴). A draw is taken, and `rng_draws`
///   counted, only when the discarded bits are nonzero; exact values consume no randomness.
/// * Shifts beyond 126 bits fold the excess into a sticky bit first (exact for the
///   deterministic modes).
#[inline]
pub fn requantize(
    value: i128,
    from_frac: u32,
    to: &Format,
    rng: &mut impl RandomBits,
    c: &mut Counters,
) -> i64 {
    let e = rescale(value, from_frac, to.eff_frac(), to.rounding, rng, c);
    fit_exact(e, to, c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: Overflow = Overflow::Saturate;
    const W: Overflow = Overflow::Wrap;

    fn f(bits: u8, frac: u8, signed: bool, r: Rounding, o: Overflow) -> Format {
        Format::new(bits, frac, signed, r, o)
    }

    fn rq(v: i128, from: u32, to: &Format) -> (i64, Counters) {
        let mut c = Counters::default();
        let mut rng = CounterRng::new(0, 0, 0, 0);
        (requantize(v, from, to, &mut rng, &mut c), c)
    }

    #[test]
    fn format_validate_and_ranges() {
        let q = f(8, 4, true, Rounding::NearestEven, S);
        assert_eq!(q.validate(), Ok(()));
        assert_eq!((q.min_raw(), q.max_raw()), (-128, 127));
        let u = f(8, 4, false, Rounding::NearestEven, S);
        assert_eq!((u.min_raw(), u.max_raw()), (0, 255));
        let one = f(1, 0, true, Rounding::Floor, S);
        assert_eq!((one.min_raw(), one.max_raw()), (-1, 0));
        let big = f(40, 40, false, Rounding::Floor, S);
        assert_eq!(big.max_raw(), (1i64 << 40) - 1);
        assert_eq!(big.lsb(), 1.0 / 1099511627776.0);
        assert_eq!(q.lsb(), 0.0625);
        assert_eq!(
            f(0, 0, true, Rounding::Floor, S).validate(),
            Err(FormatError::Bits(0))
        );
        assert_eq!(
            f(41, 0, true, Rounding::Floor, S).validate(),
            Err(FormatError::Bits(41))
        );
        assert_eq!(
            f(8, 41, true, Rounding::Floor, S).validate(),
            Err(FormatError::Frac(41))
        );
        let msg = format!("{}", FormatError::Bits(41));
        assert_eq!(
            msg,
            "format field `bits` = 41 is out of range: allowed 1..=40"
        );
        let msg = format!("{}", FormatError::Frac(99));
        assert_eq!(
            msg,
            "format field `frac` = 99 is out of range: allowed 0..=40"
        );
        // Invalid formats never panic: bits clamp to 1..=40.
        assert_eq!(f(0, 0, true, Rounding::Floor, S).max_raw(), 0);
        assert_eq!(
            f(200, 0, true, Rounding::Floor, S).max_raw(),
            (1i64 << 39) - 1
        );
    }

    /// Golden: each rounding mode on ±x.5, ±x.25, ±x.75 (2 bits discarded, s = 2).
    #[test]
    fn golden_rounding_modes() {
        use Rounding::*;
        // raw with frac 2: 10 = 2.5, 14 = 3.5, 9 = 2.25, 11 = 2.75, and their negatives.
        let inputs = [10i128, 14, 9, 11, -10, -14, -9, -11];
        let expect = [
            // 2.5  3.5  2.25 2.75 -2.5 -3.5 -2.25 -2.75
            (NearestEven, [2i64, 4, 2, 3, -2, -4, -2, -3]),
            (TowardZero, [2, 3, 2, 2, -2, -3, -2, -2]),
            (Floor, [2, 3, 2, 2, -3, -4, -3, -3]),
        ];
        for (mode, want) in expect {
            let to = f(16, 0, true, mode, S);
            for (v, w) in inputs.iter().zip(want) {
                assert_eq!(rq(*v, 2, &to).0, w, "{mode:?} {v}/4");
            }
        }
        // Larger shift, s = 8: -384/256 = -1.5 -> even -2; -640/256 = -2.5 -> -2;
        // -641/256 = -2.5039 -> -3.
        let to = f(16, 0, true, NearestEven, S);
        assert_eq!(rq(-384, 8, &to).0, -2);
        assert_eq!(rq(-640, 8, &to).0, -2);
        assert_eq!(rq(-641, 8, &to).0, -3);
        // Left shift is exact: -3 (frac 0) -> frac 4 is -48.
        assert_eq!(rq(-3, 0, &f(16, 4, true, Floor, S)).0, -48);
        // Product-sized shift (s = 120): -(2^119 + 1) / 2^120 = -0.5 - tiny -> nearest -1.
        assert_eq!(rq(-((1i128 << 119) + 1), 120, &to).0, -1);
        assert_eq!(rq(-(1i128 << 119), 120, &to).0, 0); // exactly -0.5 -> even 0
        // Shift of 127 (folded to 126 with a sticky bit): 2^126 / 2^127 = 0.5 -> even 0, but
        // (2^126 + 1) / 2^127 is just above a half -> 1 (the lost low bit must be remembered).
        assert_eq!(rq(1i128 << 126, 127, &to).0, 0);
        assert_eq!(rq((1i128 << 126) + 1, 127, &to).0, 1);
        assert_eq!(rq(i128::MIN, 127, &to).0, -1);
        // Shifts past 126 bits: -1 / 2^200 floors to -1, rounds to 0 otherwise.
        assert_eq!(rq(-1, 200, &f(16, 0, true, Floor, S)).0, -1);
        assert_eq!(rq(-1, 200, &to).0, 0);
        assert_eq!(rq(-1, 200, &f(16, 0, true, TowardZero, S)).0, 0);
    }

    /// Golden: saturate vs wrap in signed and unsigned 8-bit formats.
    #[test]
    fn golden_saturate_wrap() {
        let mut c = Counters::default();
        let s8 = f(8, 0, true, Rounding::Floor, S);
        let w8 = f(8, 0, true, Rounding::Floor, W);
        let u8w = f(8, 0, false, Rounding::Floor, W);
        let u8s = f(8, 0, false, Rounding::Floor, S);
        assert_eq!(fit(127, &s8, &mut c), 127);
        assert_eq!(fit(128, &s8, &mut c), 127);
        assert_eq!(fit(-129, &s8, &mut c), -128);
        assert_eq!(c.saturations, 2);
        // 128 = 0x80 -> -128; 300 = 0x12C -> 0x2C = 44; -129 = ...0x7F -> 127.
        assert_eq!(fit(128, &w8, &mut c), -128);
        assert_eq!(fit(300, &w8, &mut c), 44);
        assert_eq!(fit(-129, &w8, &mut c), 127);
        // unsigned: -1 -> 255 (wrap) or 0 (saturate); 256 -> 0 (wrap).
        assert_eq!(fit(-1, &u8w, &mut c), 255);
        assert_eq!(fit(256, &u8w, &mut c), 0);
        assert_eq!(fit(-1, &u8s, &mut c), 0);
        assert_eq!(c.wraps, 5);
        assert_eq!(c.saturations, 3);
        // Requantize: 1000 (frac 2) = 250 -> frac 0 fits unsigned 8; 1028/4 = 257 wraps to 1.
        assert_eq!(rq(1000, 2, &u8w), (250, Counters::default()));
        let (v, c2) = rq(1028, 2, &u8w);
        assert_eq!((v, c2.wraps), (1, 1));
        // Left shift by 40 into 8 bits: 3 · 2^40 has zero low 8 bits -> wraps to 0 (counted).
        let (v, c3) = rq(3, 0, &f(8, 40, true, Rounding::Floor, W));
        assert_eq!((v, c3.wraps), (0, 1));
        // Left-shift overflow beyond i128: -2^100 · 2^40 saturates by its sign.
        let (v, c4) = rq(-(1i128 << 100), 0, &f(8, 40, true, Rounding::Floor, S));
        assert_eq!((v, c4.saturations), (-128, 1));
        let (v, c5) = rq((1i128 << 100) + 1, 0, &f(8, 40, true, Rounding::Floor, W));
        // (2^100 + 1) · 2^40 mod 2^8 = 0: wrapped, counted.
        assert_eq!((v, c5.wraps), (0, 1));
    }

    #[test]
    fn golden_from_to_f64() {
        let mut c = Counters::default();
        let q = f(8, 4, true, Rounding::NearestEven, S);
        // 1.53125·16 = 24.5 -> 24 (even); -1.53125 -> -24; 1.59375·16 = 25.5 -> 26.
        assert_eq!(q.from_f64(1.53125, &mut c), 24);
        assert_eq!(q.from_f64(-1.53125, &mut c), -24);
        assert_eq!(q.from_f64(1.59375, &mut c), 26);
        let qf = f(8, 4, true, Rounding::Floor, S);
        let qz = f(8, 4, true, Rounding::TowardZero, S);
        let qs = f(8, 4, true, Rounding::Stochastic, S);
        // -1.53125·16 = -24.5: floor -25, toward zero -24, stochastic uses nearest-even -24.
        assert_eq!(qf.from_f64(-1.53125, &mut c), -25);
        assert_eq!(qz.from_f64(-1.53125, &mut c), -24);
        assert_eq!(qs.from_f64(-1.53125, &mut c), -24);
        assert_eq!(c, Counters::default());
        assert_eq!(q.from_f64(-0.0, &mut c), 0);
        assert_eq!(q.from_f64(1e-300, &mut c), 0);
        assert_eq!(qf.from_f64(-1e-300, &mut c), -1);
        assert_eq!(qf.from_f64(f64::MIN_POSITIVE / 4.0, &mut c), 0); // subnormal
        assert_eq!(c, Counters::default());
        assert_eq!(q.from_f64(f64::NAN, &mut c), 0);
        assert_eq!(c.invalid, 1);
        let qw = f(8, 4, true, Rounding::NearestEven, W);
        assert_eq!(qw.from_f64(f64::INFINITY, &mut c), 127);
        assert_eq!(q.from_f64(f64::NEG_INFINITY, &mut c), -128);
        assert_eq!(q.from_f64(1e300, &mut c), 127);
        assert_eq!(c.saturations, 3);
        // 8.0·16 = 128 wraps to -128; 1e300 wraps to 0 (its low bits are zero).
        assert_eq!(qw.from_f64(8.0, &mut c), -128);
        assert_eq!(qw.from_f64(1e300, &mut c), 0);
        assert_eq!(c.wraps, 2);
        assert_eq!(q.to_f64(-24), -1.5);
    }

    /// Golden: stochastic rounding under a fixed key; draws counted only when bits are discarded.
    #[test]
    fn golden_stochastic() {
        let to = f(16, 0, true, Rounding::Stochastic, S);
        let mut c = Counters::default();
        let mut rng = CounterRng::from_key(0);
        // SplitMix64(0) draws: 0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F.
        // 5/4 = 1.25, s = 2: r = top 2 bits of 0xE2.. = 0b11 = 3; (1 + 3) >> 2 = 1 -> 2.
        assert_eq!(requantize(5, 2, &to, &mut rng, &mut c), 2);
        // exact value: no draw.
        assert_eq!(requantize(8, 2, &to, &mut rng, &mut c), 2);
        // -5/4 = -1.25: floor -2, rem 3; r = top 2 bits of 0x6E.. = 0b01 = 1; (3+1)>>2 = 1 -> -1.
        assert_eq!(requantize(-5, 2, &to, &mut rng, &mut c), -1);
        // 5/4 again: r = top 2 bits of 0x06.. = 0; (1 + 0) >> 2 = 0 -> 1.
        assert_eq!(requantize(5, 2, &to, &mut rng, &mut c), 1);
        assert_eq!(c.rng_draws, 3);
        assert_eq!(rng.draws(), 3);
    }

    /// Value stability of the generator (rand's habit): exact first outputs.
    #[test]
    fn golden_counter_rng() {
        // Key 0 is plain SplitMix64 seeded with 0 (published reference values).
        let mut r = CounterRng::from_key(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(r.next_u64(), 0x06C4_5D18_8009_454F);
        // Keyed streams (computed by an independent Python implementation of the same mixing).
        let mut r = CounterRng::new(42, 7, 3, 1);
        assert_eq!(r.key(), GOLDEN_KEY);
        assert_eq!(r.next_u64(), GOLDEN_DRAWS[0]);
        assert_eq!(r.next_u64(), GOLDEN_DRAWS[1]);
        assert_eq!(r.draw_at(0), GOLDEN_DRAWS[0]);
        // Each key field matters.
        let base = CounterRng::new(1, 2, 3, 4).draw_at(0);
        assert_ne!(base, CounterRng::new(0, 2, 3, 4).draw_at(0));
        assert_ne!(base, CounterRng::new(1, 0, 3, 4).draw_at(0));
        assert_ne!(base, CounterRng::new(1, 2, 0, 4).draw_at(0));
        assert_ne!(base, CounterRng::new(1, 2, 3, 0).draw_at(0));
        // Swapping fields changes the stream.
        assert_ne!(base, CounterRng::new(1, 3, 2, 4).draw_at(0));
    }

    const GOLDEN_KEY: u64 = 0xB1CF_C630_36A8_5C3A;
    const GOLDEN_DRAWS: [u64; 2] = [0xD44B_1E9E_8AAC_5776, 0xED78_A0DB_9B9F_D90F];

    #[test]
    fn counters_merge() {
        let mut a = Counters {
            saturations: 1,
            wraps: 2,
            invalid: 3,
            rng_draws: 4,
            lut_clamps: 5,
            queue_drops: 6,
        };
        let b = Counters {
            saturations: 10,
            wraps: 20,
            invalid: 30,
            rng_draws: 40,
            lut_clamps: 50,
            queue_drops: u64::MAX,
        };
        a.merge(&b);
        assert_eq!(
            a,
            Counters {
                saturations: 11,
                wraps: 22,
                invalid: 33,
                rng_draws: 44,
                lut_clamps: 55,
                queue_drops: u64::MAX
            }
        );
    }

    /// Exhaustive small-range check of every deterministic mode against f64 references.
    #[test]
    fn deterministic_modes_match_f64_reference() {
        for s in 0..6u32 {
            for v in -300i128..300 {
                let x = v as f64 / (1u64 << s) as f64;
                for (mode, want) in [
                    (Rounding::NearestEven, x.round_ties_even()),
                    (Rounding::TowardZero, x.trunc()),
                    (Rounding::Floor, x.floor()),
                ] {
                    let to = f(40, 0, true, mode, S);
                    assert_eq!(rq(v, s, &to).0 as f64, want, "{mode:?} {v}/2^{s}");
                }
            }
        }
    }

    fn any_format() -> impl Strategy<Value = Format> {
        (1u8..=40, 0u8..=40, any::<bool>(), any::<bool>()).prop_map(|(b, fr, sg, sat)| {
            Format::new(b, fr, sg, Rounding::NearestEven, if sat { S } else { W })
        })
    }

    /// Slow reference: round-half-even of v / 2^s with Euclidean division.
    fn ref_nearest_even(v: i128, s: u32) -> i128 {
        let d = 1i128 << s;
        let q = v.div_euclid(d);
        let r = v.rem_euclid(d);
        match (2 * r).cmp(&d) {
            core::cmp::Ordering::Less => q,
            core::cmp::Ordering::Greater => q + 1,
            core::cmp::Ordering::Equal => q + (q.rem_euclid(2)),
        }
    }

    proptest! {
        #[test]
        fn prop_nearest_even_matches_reference(v in -(1i128 << 100)..(1i128 << 100), s in 0u32..100) {
            let to = f(40, 0, true, Rounding::NearestEven, S);
            let want = ref_nearest_even(v, s).clamp(to.min_raw() as i128, to.max_raw() as i128);
            prop_assert_eq!(rq(v, s, &to).0 as i128, want);
        }

        #[test]
        fn prop_floor_and_toward_zero_match_reference(v in -(1i128 << 100)..(1i128 << 100), s in 0u32..100) {
            let d = 1i128 << s;
            let fl = f(40, 0, true, Rounding::Floor, W);
            let tz = f(40, 0, true, Rounding::TowardZero, W);
            let m = 1i128 << 40;
            let wrap = |x: i128| { let y = x.rem_euclid(m); if y >= m / 2 { y - m } else { y } };
            prop_assert_eq!(rq(v, s, &fl).0 as i128, wrap(v.div_euclid(d)));
            prop_assert_eq!(rq(v, s, &tz).0 as i128, wrap(v / d));
        }

        #[test]
        fn prop_saturating_fit_is_clamp(v in any::<i128>(), fmt in any_format()) {
            let to = Format { overflow: S, ..fmt };
            let mut c = Counters::default();
            let got = fit(v, &to, &mut c);
            let want = v.clamp(to.min_raw() as i128, to.max_raw() as i128);
            prop_assert_eq!(got as i128, want);
            prop_assert_eq!(c.saturations, (want != v) as u64);
        }

        #[test]
        fn prop_wrap_fit_is_modular(v in any::<i128>(), fmt in any_format()) {
            let to = Format { overflow: W, ..fmt };
            let mut c = Counters::default();
            let got = fit(v, &to, &mut c) as i128;
            let m = 1i128 << to.bits;
            prop_assert!(got >= to.min_raw() as i128 && got <= to.max_raw() as i128);
            prop_assert_eq!((got - v).rem_euclid(m), 0);
        }

        #[test]
        fn prop_stochastic_floor_or_ceil(v in -(1i128 << 90)..(1i128 << 90), s in 1u32..120, key in any::<u64>()) {
            let to = f(40, 0, true, Rounding::Stochastic, W);
            let mut c = Counters::default();
            let mut rng = CounterRng::from_key(key);
            let got = requantize(v, s, &to, &mut rng, &mut c) as i128;
            let fl = v.div_euclid(1i128 << s);
            let m = 1i128 << 40;
            let wrap = |x: i128| { let y = x.rem_euclid(m); if y >= m / 2 { y - m } else { y } };
            prop_assert!(got == wrap(fl) || got == wrap(fl + 1));
            prop_assert_eq!(c.rng_draws, (v.rem_euclid(1i128 << s) != 0) as u64);
        }

        #[test]
        fn prop_f64_round_trip(raw in any::<i64>(), fmt in any_format()) {
            let raw = raw.clamp(fmt.min_raw(), fmt.max_raw());
            let mut c = Counters::default();
            prop_assert_eq!(fmt.from_f64(fmt.to_f64(raw), &mut c), raw);
            prop_assert_eq!(c, Counters::default());
        }

        #[test]
        fn prop_from_f64_within_half_lsb(t in 0.0f64..1.0, fmt in any_format()) {
            let (lo, hi) = (fmt.to_f64(fmt.min_raw()), fmt.to_f64(fmt.max_raw()));
            let x = lo + t * (hi - lo);
            let mut c = Counters::default();
            let q = fmt.from_f64(x, &mut c);
            prop_assert!((fmt.to_f64(q) - x).abs() <= fmt.lsb() / 2.0);
            prop_assert_eq!(c, Counters::default());
        }
    }

    /// Stochastic rounding is unbiased: the mean over many keyed draws approaches v / 2^s.
    #[test]
    fn stochastic_is_unbiased() {
        let to = f(40, 0, true, Rounding::Stochastic, S);
        for (v, s) in [
            (5i128, 2u32),
            (-5, 2),
            (1, 10),
            (-1000, 7),
            (3 << 70, 72),
            ((1 << 80) + 7, 82),
        ] {
            let n = 20_000u64;
            let mut c = Counters::default();
            let mut sum = 0i128;
            for i in 0..n {
                let mut rng = CounterRng::new(9, i, 0, 0);
                sum += requantize(v, s, &to, &mut rng, &mut c) as i128;
            }
            let mean = sum as f64 / n as f64;
            let exact = v as f64 / 2f64.powi(s as i32);
            // Bernoulli variance <= 1/4: standard error of the mean <= 0.5/sqrt(n) = 0.0035.
            assert!(
                (mean - exact).abs() < 0.02,
                "{v}/2^{s}: mean {mean}, exact {exact}"
            );
            assert_eq!(c.rng_draws, n);
        }
    }
}
