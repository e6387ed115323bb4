//! The plasticity program: `Δw_ij = η·δ_i·r_j` and `Δb_i = η·δ_i`, per sample or accumulated
//! over a batch.
//!
//! The product is exact in `i128` (three operands of at most 40 bits: below 2¹²⁰), at
//! `η.frac + δ.frac + r.frac` fractional bits. It is rounded once to the weight's fractional bits
//! with the weight format's rounding (stochastic: at most one RNG draw), added to `w`, and the sum
//! is fitted with the weight format's overflow mode (counted). `Δ` itself is never fitted to the
//! weight's range before the add: only the new weight must fit. Operands outside their own
//! formats are first fitted into them (counted); in-format operands never are.
//!
//! ```
//! use accord_firmware::arith::{CounterRng, Counters, Format, Overflow, Rounding};
//! use accord_firmware::plasticity::weight_update;
//!
//! let w_fmt = Format::new(16, 8, true, Rounding::NearestEven, Overflow::Saturate);
//! let q = Format::new(16, 8, true, Rounding::NearestEven, Overflow::Saturate);
//! let mut c = Counters::default();
//! let mut rng = CounterRng::new(1, 0, 0, 3);
//! // w = 1.0, η = 0.5, δ = 0.25, r = 0.75: Δ = 0.09375 = 24/256.
//! let w = weight_update(256, &w_fmt, 64, &q, 192, &q, 128, &q, &mut rng, &mut c);
//! assert_eq!(w, 256 + 24);
//! ```
//!
//! # Cost
//!
//! | Kernel | synapse reads / writes | adds | multiplies | cmps | RNG draws |
//! |---|---|---|---|---|---|
//! | [`weight_update`] | 1 / 1 | 1 + rounding | 2 | 6 (operand fits) + 2 | ≤ 1 if stochastic |
//! | [`bias_update`] | 1 / 1 | 1 + rounding | 1 | 4 + 2 | ≤ 1 if stochastic |
//! | [`UpdateAccumulator::add`] | 0 / 0 | 1 | 2 | 4 | 0 |
//! | [`UpdateAccumulator::apply`] | 1 / 1 | 1 + rounding | 0 | 2 | ≤ 1 if stochastic |

use crate::arith::{
    Counters, Format, Overflow, RandomBits, Rounding, bump, fit, fit_exact, rescale,
};

/// Format of the implicit rate `r = 1` of a bias update.
const UNIT: Format = Format::new(2, 0, true, Rounding::Floor, Overflow::Saturate);

/// Adds the exact product `p` (at `frac` fractional bits) to `w`, rounding once to `w_fmt`.
#[inline]
fn apply_exact(
    w: i64,
    w_fmt: &Format,
    p: i128,
    frac: u32,
    rng: &mut impl RandomBits,
    c: &mut Counters,
) -> i64 {
    let d = rescale(p, frac, w_fmt.eff_frac(), w_fmt.rounding, rng, c);
    fit_exact(d.add(w as i128), w_fmt, c)
}

/// `w + η·δ·r`, rounded once to `w_fmt` and fitted with its overflow mode (see the module doc).
#[inline]
#[allow(clippy::too_many_arguments)]
pub fn weight_update(
    w: i64,
    w_fmt: &Format,
    delta: i64,
    delta_fmt: &Format,
    rate: i64,
    rate_fmt: &Format,
    lr: i64,
    lr_fmt: &Format,
    rng: &mut impl RandomBits,
    c: &mut Counters,
) -> i64 {
    let (d, r, l) = (
        fit(delta as i128, delta_fmt, c),
        fit(rate as i128, rate_fmt, c),
        fit(lr as i128, lr_fmt, c),
    );
    let p = l as i128 * d as i128 * r as i128;
    let frac = lr_fmt.eff_frac() + delta_fmt.eff_frac() + rate_fmt.eff_frac();
    apply_exact(w, w_fmt, p, frac, rng, c)
}

/// `b + η·δ`, rounded once to `b_fmt` and fitted with its overflow mode.
#[inline]
#[allow(clippy::too_many_arguments)]
pub fn bias_update(
    b: i64,
    b_fmt: &Format,
    delta: i64,
    delta_fmt: &Format,
    lr: i64,
    lr_fmt: &Format,
    rng: &mut impl RandomBits,
    c: &mut Counters,
) -> i64 {
    let (d, l) = (fit(delta as i128, delta_fmt, c), fit(lr as i128, lr_fmt, c));
    let p = l as i128 * d as i128;
    apply_exact(
        b,
        b_fmt,
        p,
        lr_fmt.eff_frac() + delta_fmt.eff_frac(),
        rng,
        c,
    )
}

/// Exact batch accumulation of `Σ η·δ·r` for one weight (or `Σ η·δ` for one bias), applied once
/// with a single rounding.
///
/// The `i128` sum is exact while `|Σ| < 2¹²⁷`: at least 2⁷ worst-case products of three 40-bit
/// operands, and any realistic batch for 16- to 24-bit formats. Beyond it the sum saturates and
/// [`apply`](Self::apply) counts one saturation.
///
/// ```
/// use accord_firmware::arith::{CounterRng, Counters, Format, Overflow, Rounding};
/// use accord_firmware::plasticity::UpdateAccumulator;
///
/// let q = Format::new(16, 8, true, Rounding::NearestEven, Overflow::Saturate);
/// let mut c = Counters::default();
/// let mut rng = CounterRng::new(1, 0, 0, 3);
/// let mut acc = UpdateAccumulator::new(128, &q, &q, &q, &mut c); // η = 0.5
/// acc.add(64, 192, &mut c); // δ = 0.25, r = 0.75
/// acc.add(-64, 64, &mut c); // δ = -0.25, r = 0.25
/// // Δ = 0.5·(0.1875 − 0.0625) = 0.0625 = 16/256.
/// assert_eq!(acc.apply(256, &q, &mut rng, &mut c), 272);
/// assert_eq!(acc.samples(), 0); // apply empties it
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateAccumulator {
    lr: i64,
    lr_fmt: Format,
    delta_fmt: Format,
    rate_fmt: Format,
    acc: i128,
    samples: u64,
    saturated: bool,
}

impl UpdateAccumulator {
    /// An empty weight accumulator for learning rate `lr` (raw in `lr_fmt`, fitted and counted),
    /// credits in `delta_fmt` and rates in `rate_fmt`.
    #[inline]
    pub fn new(
        lr: i64,
        lr_fmt: &Format,
        delta_fmt: &Format,
        rate_fmt: &Format,
        c: &mut Counters,
    ) -> Self {
        Self {
            lr: fit(lr as i128, lr_fmt, c),
            lr_fmt: *lr_fmt,
            delta_fmt: *delta_fmt,
            rate_fmt: *rate_fmt,
            acc: 0,
            samples: 0,
            saturated: false,
        }
    }

    /// An empty bias accumulator: add with `rate = 1`.
    #[inline]
    pub fn for_bias(lr: i64, lr_fmt: &Format, delta_fmt: &Format, c: &mut Counters) -> Self {
        Self::new(lr, lr_fmt, delta_fmt, &UNIT, c)
    }

    /// Adds one sample's exact `η·δ·r` (operands outside their formats fitted and counted).
    #[inline]
    pub fn add(&mut self, delta: i64, rate: i64, c: &mut Counters) {
        let d = fit(delta as i128, &self.delta_fmt, c);
        let r = fit(rate as i128, &self.rate_fmt, c);
        let p = self.lr as i128 * d as i128 * r as i128;
        match self.acc.checked_add(p) {
            Some(s) => self.acc = s,
            None => {
                self.acc = if p < 0 { i128::MIN } else { i128::MAX };
                self.saturated = true;
            }
        }
        self.samples = self.samples.saturating_add(1);
    }

    /// The exact pending `Σ η·δ·r`, at [`frac`](Self::frac) fractional bits.
    #[inline]
    pub fn pending(&self) -> i128 {
        self.acc
    }

    /// Fractional bits of [`pending`](Self::pending): `η.frac + δ.frac + r.frac`.
    #[inline]
    pub fn frac(&self) -> u32 {
        self.lr_fmt.eff_frac() + self.delta_fmt.eff_frac() + self.rate_fmt.eff_frac()
    }

    /// Samples added since the last apply or clear.
    #[inline]
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// `w + Σ η·δ·r` rounded once to `w_fmt` and fitted (counted); then empties the accumulator.
    #[inline]
    pub fn apply(
        &mut self,
        w: i64,
        w_fmt: &Format,
        rng: &mut impl RandomBits,
        c: &mut Counters,
    ) -> i64 {
        if self.saturated {
            bump(&mut c.saturations);
        }
        let out = apply_exact(w, w_fmt, self.acc, self.frac(), rng, c);
        self.clear();
        out
    }

    /// Empties the accumulator.
    #[inline]
    pub fn clear(&mut self) {
        self.acc = 0;
        self.samples = 0;
        self.saturated = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arith::CounterRng;

    const S: Overflow = Overflow::Saturate;
    const LR: Format = Format::new(12, 8, false, Rounding::NearestEven, S);
    const D: Format = Format::new(16, 12, true, Rounding::NearestEven, S);
    const R: Format = Format::new(9, 8, false, Rounding::NearestEven, S);

    fn wf(r: Rounding) -> Format {
        Format::new(16, 8, true, r, S)
    }

    /// Golden: η = 3/256, δ = -1229/4096, r = 192/256 into w with 8 fractional bits.
    /// p = 3·(-1229)·192 = -707904 at frac 28; / 2^20 = -0.67512: floor -1, rem 340672.
    #[test]
    fn golden_weight_update_deterministic() {
        let mut c = Counters::default();
        let mut rng = CounterRng::new(0, 0, 0, 0);
        let up = |r: Rounding, w: i64, c: &mut Counters, rng: &mut CounterRng| {
            weight_update(w, &wf(r), -1229, &D, 192, &R, 3, &LR, rng, c)
        };
        assert_eq!(up(Rounding::NearestEven, 100, &mut c, &mut rng), 99);
        assert_eq!(up(Rounding::Floor, 100, &mut c, &mut rng), 99);
        assert_eq!(up(Rounding::TowardZero, 100, &mut c, &mut rng), 100);
        // At the bottom of the range, -32768 - 1 saturates (counted); wrap gives 32767.
        assert_eq!(up(Rounding::NearestEven, -32768, &mut c, &mut rng), -32768);
        assert_eq!(c.saturations, 1);
        let wrap = Format {
            overflow: Overflow::Wrap,
            ..wf(Rounding::NearestEven)
        };
        assert_eq!(
            weight_update(-32768, &wrap, -1229, &D, 192, &R, 3, &LR, &mut rng, &mut c),
            32767
        );
        assert_eq!(c.wraps, 1);
        assert_eq!(c.rng_draws, 0);
        // Δ alone exceeds the weight range but the new weight fits (no count): η = 4095/256,
        // δ = 32767/4096, r = 511/256: p = 68566422015 at frac 28, / 2^20 = 65390.0356 -> 65390;
        // -32700 + 65390 = 32690. From w = -32000 the sum 33390 saturates at 32767.
        let big = |w: i64, c: &mut Counters, rng: &mut CounterRng| {
            weight_update(
                w,
                &wf(Rounding::NearestEven),
                32767,
                &D,
                511,
                &R,
                4095,
                &LR,
                rng,
                c,
            )
        };
        assert_eq!(big(-32700, &mut c, &mut rng), 32690);
        assert_eq!(c.saturations, 1);
        assert_eq!(big(-32000, &mut c, &mut rng), 32767);
        assert_eq!(c.saturations, 2);
    }

    /// Golden: stochastic rounding of the same update under a fixed key
    /// (seed 2024, entity 19, step 5, purpose 3). Round up iff the top 20 bits of the draw are
    /// at least 2^20 - 340672 = 707904 (probability 0.325). The draws' top 20 bits are 384746,
    /// 508761, 472450, 967788, 490817, 813706 (Python reference of `CounterRng`): down, down,
    /// down, up, down, up -> Δ = -1, -1, -1, 0, -1, 0.
    #[test]
    fn golden_weight_update_stochastic() {
        let mut c = Counters::default();
        let mut rng = CounterRng::new(2024, 19, 5, 3);
        let mut w = 100;
        let mut trace = [0i64; 6];
        for t in &mut trace {
            w = weight_update(
                w,
                &wf(Rounding::Stochastic),
                -1229,
                &D,
                192,
                &R,
                3,
                &LR,
                &mut rng,
                &mut c,
            );
            *t = w;
        }
        assert_eq!(trace, GOLDEN_STOCHASTIC);
        assert_eq!(c.rng_draws, 6);
        // An exact update takes no draw: η = 1/256, δ = 1.0, r = 1.0 -> Δ = 1/256 = 1 LSB.
        assert_eq!(
            weight_update(
                0,
                &wf(Rounding::Stochastic),
                4096,
                &D,
                256,
                &R,
                1,
                &LR,
                &mut rng,
                &mut c
            ),
            1
        );
        assert_eq!(c.rng_draws, 6);
    }

    const GOLDEN_STOCHASTIC: [i64; 6] = [99, 98, 97, 97, 96, 96];

    /// Golden: bias update, η = 3/256, δ = -1229/4096: p = -3687 at frac 20; / 2^12 = -0.9001.
    #[test]
    fn golden_bias_update() {
        let mut c = Counters::default();
        let mut rng = CounterRng::new(0, 0, 0, 0);
        assert_eq!(
            bias_update(
                10,
                &wf(Rounding::NearestEven),
                -1229,
                &D,
                3,
                &LR,
                &mut rng,
                &mut c
            ),
            9
        );
        assert_eq!(
            bias_update(
                10,
                &wf(Rounding::TowardZero),
                -1229,
                &D,
                3,
                &LR,
                &mut rng,
                &mut c
            ),
            10
        );
        assert_eq!(
            bias_update(
                10,
                &wf(Rounding::Floor),
                -1229,
                &D,
                3,
                &LR,
                &mut rng,
                &mut c
            ),
            9
        );
        assert_eq!(c, Counters::default());
    }

    /// Golden: batch accumulation rounds once. Samples (δ, r): (-1229, 192), (2048, 64),
    /// (-100, 255) with η = 3: products -707904, 393216, -76500; sum -391188 at frac 28,
    /// / 2^20 = -0.37306 -> nearest 0, floor -1. Per-sample nearest would give -1 + 0 + 0 = -1.
    #[test]
    fn golden_batch() {
        let mut c = Counters::default();
        let mut rng = CounterRng::new(0, 0, 0, 0);
        let mut acc = UpdateAccumulator::new(3, &LR, &D, &R, &mut c);
        for (d, r) in [(-1229, 192), (2048, 64), (-100, 255)] {
            acc.add(d, r, &mut c);
        }
        assert_eq!((acc.pending(), acc.frac(), acc.samples()), (-391188, 28, 3));
        let snapshot = acc.clone();
        assert_eq!(
            acc.apply(100, &wf(Rounding::NearestEven), &mut rng, &mut c),
            100
        );
        assert_eq!(acc.pending(), 0);
        let mut acc = snapshot;
        assert_eq!(acc.apply(100, &wf(Rounding::Floor), &mut rng, &mut c), 99);
        let mut w = 100;
        for (d, r) in [(-1229, 192), (2048, 64), (-100, 255)] {
            w = weight_update(
                w,
                &wf(Rounding::NearestEven),
                d,
                &D,
                r,
                &R,
                3,
                &LR,
                &mut rng,
                &mut c,
            );
        }
        assert_eq!(w, 99);
        // Bias accumulator: η·δ summed: 3·(-1229) + 3·(-100) = -3987 at frac 20 -> /4096 = -0.973
        // -> nearest -1.
        let mut b = UpdateAccumulator::for_bias(3, &LR, &D, &mut c);
        b.add(-1229, 1, &mut c);
        b.add(-100, 1, &mut c);
        assert_eq!((b.pending(), b.frac()), (-3987, 20));
        assert_eq!(b.apply(0, &wf(Rounding::NearestEven), &mut rng, &mut c), -1);
        assert_eq!(c, Counters::default());
    }

    /// Out-of-format operands are fitted (counted) before the exact product.
    #[test]
    fn operands_fitted() {
        let mut c = Counters::default();
        let mut rng = CounterRng::new(0, 0, 0, 0);
        // r = 1000 does not fit 9-bit unsigned (max 511): r -> 511; δ = i64::MIN -> -32768.
        // Δ = 3·(-32768)·511 / 2^20 = -47.9 -> -48.
        let w = weight_update(
            0,
            &wf(Rounding::NearestEven),
            i64::MIN,
            &D,
            1000,
            &R,
            3,
            &LR,
            &mut rng,
            &mut c,
        );
        assert_eq!(w, -48);
        assert_eq!(c.saturations, 2);
    }
}
