//! The credit handler: what a neuron sends back (`δ_i = g(u_i)·c_i`), how a core aggregates
//! retrograde messages over a synapse row (`m_j = Σ_i w_ij·δ_i`), and how the presynaptic core
//! accumulates them into its credit (`c_j += m_j`).
//!
//! Products are exact (`i128`, fractional bits added); only the final value is rounded into its
//! format with [`requantize`], so an aggregate is rounded once, not once per term.
//!
//! ```
//! use accord_firmware::arith::{CounterRng, Counters, Format, Overflow, Rounding};
//! use accord_firmware::credit::{RetroAccumulator, delta, passes_threshold};
//!
//! let q = Format::new(16, 8, true, Rounding::NearestEven, Overflow::Saturate);
//! let mut c = Counters::default();
//! let mut rng = CounterRng::new(7, 0, 0, 0);
//! // δ = g·c = 0.5 · (-0.75) = -0.375 -> raw -96 with 8 fractional bits.
//! let d = delta(128, &q, -192, &q, &q, &mut rng, &mut c);
//! assert_eq!(d, -96);
//! assert!(passes_threshold(d, 1));
//! // Retrograde message over a row of two synapses: 1.0·δ + (-2.0)·0.25 = -0.875.
//! let mut m = RetroAccumulator::new(&q, &q);
//! m.add(256, d);
//! m.add(-512, 64);
//! assert_eq!(m.finish(&q, &mut rng, &mut c), -224);
//! ```
//!
//! # Cost
//!
//! | Kernel | reads | adds | multiplies | cmps | RNG draws |
//! |---|---|---|---|---|---|
//! | [`delta`] | 1 (g: LUT) | requantize | 1 | requantize | ≤ 1 if stochastic |
//! | [`RetroAccumulator::add`] (one retro-SOP) | 1 (w) | 1 | 1 | 0 | 0 |
//! | [`RetroAccumulator::finish`] | 0 | requantize | 0 | requantize | ≤ 1 if stochastic |
//! | [`accumulate_credit`] (one per packet) | 1 | 1 | 0 | 2 | 0 |
//! | [`passes_threshold`] | 0 | 0 | 0 | 2 | 0 |

use crate::arith::{Counters, Format, RandomBits, bump, fit, requantize};

/// `δ = g·c`: the exact product (fractional bits `g_fmt.frac + c_fmt.frac`) requantized into
/// `delta_fmt` (its rounding and overflow, counted).
#[inline]
pub fn delta(
    g_raw: i64,
    g_fmt: &Format,
    c_raw: i64,
    c_fmt: &Format,
    delta_fmt: &Format,
    rng: &mut impl RandomBits,
    c: &mut Counters,
) -> i64 {
    let p = g_raw as i128 * c_raw as i128;
    requantize(p, g_fmt.eff_frac() + c_fmt.eff_frac(), delta_fmt, rng, c)
}

/// Whether a `δ` is sent: `|δ| ≥ threshold` and `δ ≠ 0` (a zero credit sends nothing). A
/// threshold of 0 or below sends every nonzero `δ`.
#[inline]
pub fn passes_threshold(delta_raw: i64, threshold_raw: i64) -> bool {
    delta_raw != 0 && delta_raw.unsigned_abs() >= threshold_raw.max(0).unsigned_abs()
}

/// `c_j + m_j` fitted into the credit format (overflow counted): the presynaptic core's add per
/// retrograde packet.
#[inline]
pub fn accumulate_credit(credit_raw: i64, message_raw: i64, fmt: &Format, c: &mut Counters) -> i64 {
    fit(credit_raw as i128 + message_raw as i128, fmt, c)
}

/// Exact sum of `w·δ` products over a synapse row, at `w.frac + δ.frac` fractional bits.
///
/// The `i128` sum is exact for any realistic row (a product of two 40-bit values is below
/// 2⁸⁰, leaving 2⁴⁷ terms of headroom); should it ever overflow it saturates, and
/// [`finish`](Self::finish) counts one saturation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetroAccumulator {
    acc: i128,
    frac: u32,
    terms: u64,
    saturated: bool,
}

impl RetroAccumulator {
    /// An empty accumulator for weights in `w_fmt` and credits `δ` in `delta_fmt`.
    #[inline]
    pub fn new(w_fmt: &Format, delta_fmt: &Format) -> Self {
        Self {
            acc: 0,
            frac: w_fmt.eff_frac() + delta_fmt.eff_frac(),
            terms: 0,
            saturated: false,
        }
    }

    /// Adds one retrograde synaptic op, `w·δ`.
    #[inline]
    pub fn add(&mut self, w_raw: i64, delta_raw: i64) {
        let p = w_raw as i128 * delta_raw as i128;
        match self.acc.checked_add(p) {
            Some(s) => self.acc = s,
            None => {
                self.acc = if p < 0 { i128::MIN } else { i128::MAX };
                self.saturated = true;
            }
        }
        self.terms = self.terms.saturating_add(1);
    }

    /// The exact sum so far, at [`frac`](Self::frac) fractional bits.
    #[inline]
    pub fn value(&self) -> i128 {
        self.acc
    }

    /// Fractional bits of [`value`](Self::value).
    #[inline]
    pub fn frac(&self) -> u32 {
        self.frac
    }

    /// Number of terms added (retrograde synaptic ops).
    #[inline]
    pub fn terms(&self) -> u64 {
        self.terms
    }

    /// The message `m = Σ w·δ` requantized into `credit_fmt` (rounding, overflow and any
    /// accumulator saturation counted). The accumulator is left unchanged; see
    /// [`clear`](Self::clear).
    #[inline]
    pub fn finish(&self, credit_fmt: &Format, rng: &mut impl RandomBits, c: &mut Counters) -> i64 {
        if self.saturated {
            bump(&mut c.saturations);
        }
        requantize(self.acc, self.frac, credit_fmt, rng, c)
    }

    /// Empties the accumulator (same formats).
    #[inline]
    pub fn clear(&mut self) {
        self.acc = 0;
        self.terms = 0;
        self.saturated = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arith::{CounterRng, Overflow, Rounding};

    const G: Format = Format::new(12, 10, false, Rounding::NearestEven, Overflow::Saturate);
    const C: Format = Format::new(16, 12, true, Rounding::NearestEven, Overflow::Saturate);
    const D: Format = Format::new(16, 12, true, Rounding::NearestEven, Overflow::Saturate);

    /// Golden: δ = g·c with g in Q2.10 (unsigned), c and δ in Q4.12.
    #[test]
    fn golden_delta() {
        let mut c = Counters::default();
        let mut rng = CounterRng::new(0, 0, 0, 0);
        // g = 0.25 (256), c = -0.3 (-1229): product -314624 at frac 22; / 2^10 = -307.25
        // -> nearest -307.
        assert_eq!(delta(256, &G, -1229, &C, &D, &mut rng, &mut c), -307);
        // g = 1023/1024, c = 3 (12288): 12570624 / 1024 = 12276.0 exactly.
        assert_eq!(delta(1023, &G, 12288, &C, &D, &mut rng, &mut c), 12276);
        // Tie: g = 2^-10 (raw 1), c = -0.375 (raw -1536): -1536 / 2^10 = -1.5 -> even -2.
        assert_eq!(delta(1, &G, -1536, &C, &D, &mut rng, &mut c), -2);
        // toward zero gives -1, floor -2.
        let dz = Format {
            rounding: Rounding::TowardZero,
            ..D
        };
        let df = Format {
            rounding: Rounding::Floor,
            ..D
        };
        assert_eq!(delta(1, &G, -1536, &C, &dz, &mut rng, &mut c), -1);
        assert_eq!(delta(1, &G, -1536, &C, &df, &mut rng, &mut c), -2);
        // g = 4.0 - 1/1024 (4095) times c = 7.99 (32767) = 3.996·7.9998 ≈ 31.97 > 8: saturates.
        assert_eq!(delta(4095, &G, 32767, &C, &D, &mut rng, &mut c), 32767);
        assert_eq!(c.saturations, 1);
        assert_eq!(c.rng_draws, 0);
    }

    #[test]
    fn golden_threshold() {
        assert!(!passes_threshold(0, 0));
        assert!(!passes_threshold(0, -5));
        assert!(passes_threshold(1, 0));
        assert!(passes_threshold(-3, 3));
        assert!(!passes_threshold(-2, 3));
        assert!(passes_threshold(i64::MIN, i64::MAX));
        assert!(passes_threshold(5, -1));
    }

    /// Golden: retrograde aggregation with w in Q4.8 and δ in Q4.12 (sum at frac 20).
    #[test]
    fn golden_retro() {
        let w = Format::new(12, 8, true, Rounding::NearestEven, Overflow::Saturate);
        let mut c = Counters::default();
        let mut rng = CounterRng::new(0, 0, 0, 0);
        let mut m = RetroAccumulator::new(&w, &D);
        assert_eq!(m.frac(), 20);
        // 0.5·0.25 + (-1.25)·0.1 (410) + 2.0·(-0.0625):
        // 128·1024 = 131072; -320·410 = -131200; 512·(-256) = -131072; sum = -131200.
        m.add(128, 1024);
        m.add(-320, 410);
        m.add(512, -256);
        assert_eq!((m.value(), m.terms()), (-131200, 3));
        // To credit frac 12: -131200 / 256 = -512.5 -> even -512.
        assert_eq!(m.finish(&C, &mut rng, &mut c), -512);
        // Floor would give -513, toward zero -512.
        let cf = Format {
            rounding: Rounding::Floor,
            ..C
        };
        assert_eq!(m.finish(&cf, &mut rng, &mut c), -513);
        // Into a tiny 8-bit credit format it saturates at -128.
        let tiny = Format { bits: 8, ..C };
        assert_eq!(m.finish(&tiny, &mut rng, &mut c), -128);
        assert_eq!(c.saturations, 1);
        m.clear();
        assert_eq!((m.value(), m.terms()), (0, 0));
        // Accumulate at the pre core: 30000 + 5000 saturates at 32767 (counted).
        assert_eq!(accumulate_credit(30000, 5000, &C, &mut c), 32767);
        assert_eq!(accumulate_credit(-100, 40, &C, &mut c), -60);
        assert_eq!(c.saturations, 2);
    }

    /// An accumulator overflow (only with out-of-format operands) saturates and is counted.
    #[test]
    fn retro_overflow_counted() {
        let mut c = Counters::default();
        let mut rng = CounterRng::new(0, 0, 0, 0);
        let mut m = RetroAccumulator::new(&C, &D);
        for _ in 0..3 {
            m.add(i64::MAX, i64::MAX);
        }
        assert_eq!(m.value(), i128::MAX);
        assert_eq!(m.finish(&C, &mut rng, &mut c), C.max_raw());
        assert_eq!(c.saturations, 2);
    }
}
