//! Soma programs: integrate-and-fire, leaky integrate-and-fire and graded (rate) neurons, all in
//! integers.
//!
//! * [`if_step`]: `v ← fit(v + input)`; if `v ≥ threshold`, `v ← fit(v − threshold)` and the
//!   neuron spikes (reset by subtraction). At most one spike per tick: a residual still above
//!   threshold stays in `v` and fires on a later tick.
//! * [`lif_step`]: the same after a leak `v ← sign(v)·⌊|v|·(4096 − decay) / 4096⌋`, i.e. the
//!   decayed value is rounded toward zero, as in Loihi's bit-accurate model (Lava
//!   `PyLifModelBitAcc`): the magnitude never grows and never crosses zero.
//! * [`graded_rate`]: `r = f(u)` as a fixed-point payload (Loihi 2 graded spikes), exact for the
//!   piecewise-linear transfers and read from a [`Table`] for smooth ones.
//!
//! ```
//! use accord_firmware::arith::{Counters, Format, Overflow, Rounding};
//! use accord_firmware::soma::if_step;
//!
//! let v_fmt = Format::new(16, 8, true, Rounding::NearestEven, Overflow::Saturate);
//! let mut c = Counters::default();
//! let (mut v, threshold) = (0i64, 256); // threshold 1.0
//! // A constant input of 0.4 (raw 102) fires 2 spikes in 6 ticks: rate ≈ 0.4.
//! let spikes = (0..6).filter(|_| if_step(&mut v, 102, threshold, &v_fmt, &mut c)).count();
//! assert_eq!(spikes, 2);
//! assert_eq!(v, 6 * 102 - 2 * 256);
//! ```
//!
//! # Cost
//!
//! | Kernel | reads/writes | adds/subs | multiplies | cmps | RNG draws |
//! |---|---|---|---|---|---|
//! | [`if_step`] | 1 / 1 (v) | 1 + 1 on spike | 0 | 3 (+2 on spike) | 0 |
//! | [`lif_step`] | 1 / 1 (v) | 1 + 1 on spike | 1 (+ 1 shift) | 4 (+2 on spike) | 0 |
//! | [`graded_rate`] Identity / Relu / HardSigmoid | 0 | 0 | 0 | ≤ 2 + requantize | ≤ 1 if stochastic |
//! | [`graded_rate`] Table | 1 LUT read | see [`Table::lookup`] | | + requantize | ≤ 1 if stochastic |
//!
//! [`Table::lookup`]: crate::balance::Table::lookup

use crate::arith::{Counters, Format, RandomBits, Rounding, bump, fit, requantize, rescale};
use crate::balance::Table;

/// One integrate-and-fire tick with reset by subtraction.
///
/// `v ← fit(v + input)` (overflow policy of `fmt`, counted); then if `v ≥ threshold`,
/// `v ← fit(v − threshold)` and returns `true`. At most one spike per tick.
#[inline]
pub fn if_step(v: &mut i64, input: i64, threshold: i64, fmt: &Format, c: &mut Counters) -> bool {
    let x = fit(*v as i128 + input as i128, fmt, c);
    let spike = x >= threshold;
    *v = if spike {
        fit(x as i128 - threshold as i128, fmt, c)
    } else {
        x
    };
    spike
}

/// Loihi-style leak: `sign(v)·⌊|v|·(4096 − decay) / 4096⌋`. `decay` above 4096 is treated as
/// 4096 (full leak) and counted in `invalid`.
#[inline]
pub fn leak(v: i64, decay: u16, c: &mut Counters) -> i64 {
    let d = if decay > 4096 {
        bump(&mut c.invalid);
        4096
    } else {
        decay
    };
    let p = v as i128 * (4096 - d) as i128;
    // Toward zero: shift the magnitude. |result| <= |v|, so it fits any format v fits.
    (if p < 0 { -((-p) >> 12) } else { p >> 12 }) as i64
}

/// One leaky integrate-and-fire tick: [`leak`] with the 12-bit `decay` (0 = no leak,
/// 4096 = full reset), then [`if_step`].
#[inline]
pub fn lif_step(
    v: &mut i64,
    input: i64,
    threshold: i64,
    decay: u16,
    fmt: &Format,
    c: &mut Counters,
) -> bool {
    *v = leak(*v, decay, c);
    if_step(v, input, threshold, fmt, c)
}

/// A neuron's transfer function `f` for graded (rate) firing.
#[derive(Clone, Copy, Debug)]
pub enum Transfer<'a> {
    /// `f(u) = u`.
    Identity,
    /// `f(u) = max(u, 0)`.
    Relu,
    /// `f(u) = clip(u, 0, 1)` (hard sigmoid / clipped ReLU: an IF neuron's rate).
    HardSigmoid,
    /// A tabulated `f` (sigmoid, tanh, …), e.g. `Transfer::Table(table.view())`.
    Table(Table<&'a [i64]>),
}

/// Graded rate `r = f(u)`: `u` raw in `u_fmt`, result raw in `rate_fmt`.
///
/// Piecewise-linear transfers are exact on `u` and then [`requantize`]d from `u_fmt.frac` to
/// `rate_fmt` (its rounding and overflow, counted). A table is looked up with
/// [`Table::lookup`] (clamps counted) and its entry requantized from the table's output format
/// to `rate_fmt`; if `u_fmt.frac` differs from the table's input format, `u` is first rescaled to
/// it with floor rounding.
#[inline]
pub fn graded_rate(
    u: i64,
    u_fmt: &Format,
    transfer: &Transfer<'_>,
    rate_fmt: &Format,
    rng: &mut impl RandomBits,
    c: &mut Counters,
) -> i64 {
    let uf = u_fmt.eff_frac();
    let (val, frac) = match transfer {
        Transfer::Identity => (u as i128, uf),
        Transfer::Relu => ((u as i128).max(0), uf),
        Transfer::HardSigmoid => ((u as i128).clamp(0, 1i128 << uf), uf),
        Transfer::Table(t) => {
            let tf = t.in_fmt().eff_frac();
            let e = rescale(u as i128, uf, tf, Rounding::Floor, rng, c);
            (t.lookup_exact(e, c) as i128, t.out_fmt().eff_frac())
        }
    };
    requantize(val, frac, rate_fmt, rng, c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arith::{CounterRng, Overflow};

    const V: Format = Format::new(12, 4, true, Rounding::NearestEven, Overflow::Saturate);

    /// Golden: IF sequence, threshold 40 (2.5), input 17: v = 17, 34, 51→11 spike, 28, 45→5 spike.
    #[test]
    fn golden_if_sequence() {
        let mut c = Counters::default();
        let mut v = 0;
        let mut trace = [(0i64, false); 5];
        for t in &mut trace {
            let s = if_step(&mut v, 17, 40, &V, &mut c);
            *t = (v, s);
        }
        assert_eq!(
            trace,
            [(17, false), (34, false), (11, true), (28, false), (5, true)]
        );
        // One spike per tick: input 100 with threshold 40 gives v 60 and one spike.
        let mut v = 0;
        assert!(if_step(&mut v, 100, 40, &V, &mut c));
        assert_eq!(v, 60);
        // Saturation at the 12-bit top (2047): 2000 + 100 -> 2047 (counted), spike -> 2007.
        let mut v = 2000;
        assert!(if_step(&mut v, 100, 40, &V, &mut c));
        assert_eq!((v, c.saturations), (2007, 1));
        // Wrap: 2000 + 100 = 2100 -> 2100 - 4096 = -1996, no spike, counted.
        let w = Format {
            overflow: Overflow::Wrap,
            ..V
        };
        let mut v = 2000;
        assert!(!if_step(&mut v, 100, 40, &w, &mut c));
        assert_eq!((v, c.wraps), (-1996, 1));
        // Negative input never spikes.
        let mut v = 0;
        assert!(!if_step(&mut v, -30, 40, &V, &mut c));
        assert_eq!(v, -30);
    }

    /// Golden: LIF with decay 1024 (keeps 3/4): leak rounds toward zero.
    #[test]
    fn golden_lif_sequence() {
        let mut c = Counters::default();
        // leak(100) = 100·3072/4096 = 75; leak(-101) = -(101·3072 >> 12) = -(310272 >> 12) = -75
        // (exact -75.75: toward zero), leak(-1) = 0, leak(7) = 21504 >> 12 = 5.
        assert_eq!(leak(100, 1024, &mut c), 75);
        assert_eq!(leak(-101, 1024, &mut c), -75);
        assert_eq!(leak(-1, 1024, &mut c), 0);
        assert_eq!(leak(7, 1024, &mut c), 5);
        assert_eq!(leak(7, 0, &mut c), 7);
        assert_eq!(leak(7, 4096, &mut c), 0);
        assert_eq!(c, Counters::default());
        assert_eq!(leak(7, 5000, &mut c), 0);
        assert_eq!(c.invalid, 1);
        // Sequence, input 20, threshold 40, decay 1024:
        // t0: leak 0 -> 0, +20 = 20
        // t1: leak 20 -> 15, +20 = 35
        // t2: leak 35 -> 26 (26.25), +20 = 46 >= 40 -> 6, spike
        // t3: leak 6 -> 4 (4.5), +20 = 24
        // t4: leak 24 -> 18, +20 = 38
        // t5: leak 38 -> 28 (28.5), +20 = 48 -> 8, spike
        let mut c = Counters::default();
        let mut v = 0;
        let mut trace = [(0i64, false); 6];
        for t in &mut trace {
            let s = lif_step(&mut v, 20, 40, 1024, &V, &mut c);
            *t = (v, s);
        }
        assert_eq!(
            trace,
            [
                (20, false),
                (35, false),
                (6, true),
                (24, false),
                (38, false),
                (8, true)
            ]
        );
    }

    /// Golden: graded rates from u in Q?.4 (frac 4) to rate frac 2.
    #[test]
    fn golden_graded() {
        let mut c = Counters::default();
        let mut rng = CounterRng::new(0, 0, 0, 0);
        let r = Format::new(8, 2, true, Rounding::NearestEven, Overflow::Saturate);
        // u = -22/16 = -1.375 -> frac 2: -5.5 -> even -6 (identity); relu 0; hard sigmoid 0.
        // u = 22/16 = 1.375 -> 5.5 -> 6 (identity, relu); hard sigmoid 1.0 -> 4.
        // u = 10/16 = 0.625 -> 2.5 -> 2 for all three.
        let cases = [(-22i64, [-6i64, 0, 0]), (22, [6, 6, 4]), (10, [2, 2, 2])];
        for (u, want) in cases {
            let got = [Transfer::Identity, Transfer::Relu, Transfer::HardSigmoid]
                .map(|t| graded_rate(u, &V, &t, &r, &mut rng, &mut c));
            assert_eq!(got, want, "u = {u}");
        }
        // Identity of a large u saturates the 8-bit rate: 2000/16 = 125.0 -> 500 -> 127.
        assert_eq!(
            graded_rate(2000, &V, &Transfer::Identity, &r, &mut rng, &mut c),
            127
        );
        assert_eq!(c.saturations, 1);
    }

    /// Graded rate through a table, with an input format that differs from the table's.
    #[test]
    fn golden_graded_table() {
        let mut c = Counters::default();
        let mut rng = CounterRng::new(0, 0, 0, 0);
        let in_fmt = Format::new(12, 2, true, Rounding::NearestEven, Overflow::Saturate);
        let out = Format::new(8, 4, true, Rounding::NearestEven, Overflow::Saturate);
        // 4 bins over [-2, 2): raw lo -8, hi 8 (frac 2), centres -1.5, -0.5, 0.5, 1.5; g(x) = x
        // -> entries -24, -8, 8, 24 (frac 4).
        let mut buf = [0i64; 4];
        let t = Table::build(&mut buf[..], -2.0, 2.0, &in_fmt, &out, |x| x, &mut c).unwrap();
        assert_eq!(t.entries(), &[-24, -8, 8, 24]);
        let tr = Transfer::Table(t.view());
        let rate = Format::new(8, 2, true, Rounding::NearestEven, Overflow::Saturate);
        // u = 5/16 (frac 4) floors to 1/4 (frac 2): raw 1 -> bin (1+8)·4/16 = 2 -> 8/16 = 0.5 -> 2.
        assert_eq!(graded_rate(5, &V, &tr, &rate, &mut rng, &mut c), 2);
        // u = -1/16 floors to -1/4: raw -1 -> bin 7·4/16 = 1 -> -8/16 = -0.5 -> -2.
        assert_eq!(graded_rate(-1, &V, &tr, &rate, &mut rng, &mut c), -2);
        assert_eq!(c.lut_clamps, 0);
        // u = 2000/16 is beyond hi: clamped to the last bin (counted) -> 24/16 = 1.5 -> 6.
        assert_eq!(graded_rate(2000, &V, &tr, &rate, &mut rng, &mut c), 6);
        assert_eq!(c.lut_clamps, 1);
    }
}
