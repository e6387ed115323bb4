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
//! * [`cuba_lif_step`]: Loihi's current-based LIF compartment, bit-identical to Lava 0.10's
//!   `PyLifModelBitAcc` (see [below](#loihis-current-based-lif)).
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
//! # Loihi's current-based LIF
//!
//! [`cuba_lif_step`] is the neuron of Loihi (Davies et al. 2018) as Lava 0.10 models it bit for
//! bit (`PyLifModelBitAcc`, `lava/proc/lif/models.py`). It has two 24-bit state variables, a
//! synaptic current `u` that low-pass filters the input and a voltage `v` that integrates `u`,
//! and per step computes (each rule with its line in Lava's `models.py`):
//!
//! 1. current: `u ← sign(p)·(|p| >> 12)` with `p = u·(4096 − (du + 1))`
//!    (`decay_const_u = self.du + self.ds_offset`, `ds_offset = 1`, lines 94, 145–153), then
//!    `u ← u + (a_in << 6)` (`act_shift = 6`, lines 108, 155–157), then a wrap into
//!    `(−2^23, 2^23]`: `u − 2^24` if `u > 2^23`, `u + 2^24` if `u ≤ −2^23` (lines 161–171);
//! 2. voltage: `v ← sign(q)·(|q| >> 12)` with `q = v·(4096 − dv)` (`dm_offset = 0`, lines 95,
//!    174–184), then `v ← v + u + bias` (line 185) with `bias = bias_mant << bias_exp`, or
//!    `bias_mant >> −bias_exp` (arithmetic, i.e. floor) when `bias_exp < 0` (`scale_bias`,
//!    lines 116–121, called every step at line 202), then a clip to `[−(2^23 − 1), 2^23 − 1]`
//!    (lines 176–177, 186);
//! 3. spike if `v > vth << 6`, strictly (`vth_shift = 6`, `scale_threshold`, lines 107, 273;
//!    `spiking_activation`, line 278);
//! 4. on a spike `v ← 0`; `u` is not reset (`reset_voltage`, line 192; `run_spk`, lines 200–215).
//!
//! Against [`lif_step`] it differs in four rules: it resets to 0 instead of subtracting the
//! threshold; it fires on `v > vth·64` (strictly) instead of `v ≥ threshold`; its ranges are
//! fixed by the hardware instead of a [`Format`]: `v` is clipped to the symmetric
//! `±(2^23 − 1)` and `u` wraps modulo `2^24` into `(−2^23, 2^23]`, Lava's convention (`+2^23` is
//! kept, `−2^23` becomes `+2^23`), not the two's complement `[−2^23, 2^23)`; and the input
//! drives `v` through the current state `u` (with its own decay `du`, which always decays by at
//! least 1/4096) instead of directly. Every wrap of `u` is counted in
//! [`Counters::wraps`](crate::arith::Counters::wraps) and every clip of `v` in
//! [`Counters::saturations`](crate::arith::Counters::saturations); Lava does the same
//! arithmetic silently.
//!
//! ```
//! use accord_firmware::arith::Counters;
//! use accord_firmware::soma::{cuba_lif_step, CubaLif};
//!
//! // du = 4095: u = a_in << 6 every step; dv = 0: v does not leak; threshold 10 << 6 = 640.
//! let p = CubaLif { du: 4095, dv: 0, vth: 10, bias_mant: 0, bias_exp: 0 };
//! let (mut u, mut v, mut c) = (0, 0, Counters::default());
//! assert!(!cuba_lif_step(&mut u, &mut v, 10, &p, &mut c)); // v = 640: not above 640
//! assert_eq!((u, v), (640, 640));
//! assert!(cuba_lif_step(&mut u, &mut v, 1, &p, &mut c)); // v = 704 > 640: spike, v = 0
//! assert_eq!((u, v), (64, 0));
//! assert_eq!(c, Counters::default());
//! ```
//!
//! `firmware/tests/lava_lif.rs` replays golden vectors produced by running Lava's own model code
//! (`firmware/tests/lava_lif/generate.py`) and requires every step to match.
//!
//! # Cost
//!
//! | Kernel | reads/writes | adds/subs | multiplies | cmps | RNG draws |
//! |---|---|---|---|---|---|
//! | [`if_step`] | 1 / 1 (v) | 1 + 1 on spike | 0 | 3 (+2 on spike) | 0 |
//! | [`lif_step`] | 1 / 1 (v) | 1 + 1 on spike | 1 (+ 1 shift) | 4 (+2 on spike) | 0 |
//! | [`cuba_lif_step`] | 2 / 2 (u, v) | 3 (+ 3 decay constants, + 1 on wrap) | 2 (+ 5 shifts) | 10 (+ 4 parameter checks) | 0 |
//! | [`graded_rate`] Identity / Relu / HardSigmoid | 0 | 0 | 0 | ≤ 2 + requantize | ≤ 1 if stochastic |
//! | [`graded_rate`] Table | 1 LUT read | see [`Table::lookup`] | | + requantize | ≤ 1 if stochastic |
//!
//! For [`cuba_lif_step`]: the adds are `u + (a_in << 6)` and `v + u + bias`; the decay constants
//! `du + 1`, `4096 − (du + 1)` and `4096 − dv`, the bias shift and `vth << 6` depend only on the
//! parameters and can be computed once per population; the shifts are the two `>> 12` of the
//! decays, `a_in << 6`, the bias shift and `vth << 6`; the compares are the two sign tests of the
//! decays, two for the wrap, two for the clip, one for the threshold, one for the sign of the bias
//! exponent and the two range checks inside [`leak`]; the 4 parameter checks clamp `du` and `dv`
//! to `0..=4095`. The sign-magnitude decays also negate twice each (not counted as adds).
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

/// Width of Loihi's compartment state registers `u` and `v`, in bits (Lava: `uv_bitwidth`).
pub const LOIHI_STATE_BITS: u32 = 24;

/// Upper end of the current after [`cuba_lif_step`]'s wrap: `u` lies in `−2^23 < u ≤ 2^23`
/// (Lava: `max_uv_val`; note that `+2^23` itself is a state Lava keeps).
pub const CUBA_U_MAX: i64 = 1 << (LOIHI_STATE_BITS - 1);

/// Clip bound of the voltage in [`cuba_lif_step`]: `v` lies in `−(2^23 − 1) ..= 2^23 − 1`.
pub const CUBA_V_MAX: i64 = (1 << (LOIHI_STATE_BITS - 1)) - 1;

/// Largest decay constant `du`, `dv` of [`CubaLif`] (12 bits unsigned; decays are in units of
/// 1/4096).
pub const LOIHI_DECAY_MAX: i64 = 4095;

/// Left shift that MSB-aligns the synaptic input `a_in` with the 24-bit state (Lava:
/// `act_shift`).
pub const LOIHI_ACT_SHIFT: u32 = 6;

/// Left shift that MSB-aligns the threshold `vth` with the 24-bit voltage (Lava: `vth_shift`).
pub const LOIHI_VTH_SHIFT: u32 = 6;

/// Parameters of Loihi's current-based LIF compartment, as Lava 0.10's `PyLifModelBitAcc` holds them.
///
/// Lava's ranges (its docstring and var precisions): `du`, `dv` in `0..=4095`; `vth` in
/// `0..=131071` (17 bits); `bias_mant` in `−4096..=4095` (13 bits); `bias_exp` documented as
/// `0..=7`, while Lava's `scale_bias` also accepts negative exponents (a right shift).
/// [`cuba_lif_step`] accepts any values: `du` and `dv` are clamped to `0..=4095` (counted in
/// `invalid`), the rest is computed exactly (see [`cuba_lif_step`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CubaLif {
    /// Current decay: each step keeps `(4096 − (du + 1)) / 4096` of `u` (Lava adds
    /// `ds_offset = 1`, so `du = 4095` clears `u` and `du = 0` still decays by 1/4096).
    pub du: i64,
    /// Voltage decay: each step keeps `(4096 − dv) / 4096` of `v` (`dv = 0`: no leak).
    pub dv: i64,
    /// Threshold mantissa: the neuron spikes when `v > vth << 6`.
    pub vth: i64,
    /// Bias mantissa, added to `v` every step as `bias_mant << bias_exp`.
    pub bias_mant: i64,
    /// Bias exponent; negative values shift the mantissa right (floor).
    pub bias_exp: i64,
}

/// `d` clamped to `0..=4095`, counting a clamp in `invalid`.
#[inline]
fn decay_param(d: i64, c: &mut Counters) -> u16 {
    if !(0..=LOIHI_DECAY_MAX).contains(&d) {
        bump(&mut c.invalid);
    }
    d.clamp(0, LOIHI_DECAY_MAX) as u16
}

/// `x` modulo `2^24`, in `(−2^23, 2^23]` (Lava's wrap of the current).
#[inline]
fn wrap_current(x: i128) -> i64 {
    let m = 1i128 << LOIHI_STATE_BITS;
    let r = x.rem_euclid(m);
    (if r > CUBA_U_MAX as i128 { r - m } else { r }) as i64
}

/// `bias_mant << bias_exp`, or `bias_mant >> −bias_exp` (floor) for a negative exponent,
/// exactly. A left shift of 64 bits or more of a nonzero mantissa is larger in magnitude than
/// any other term of the voltage sum, and is represented by `±2^100`, which the clip then
/// saturates identically.
#[inline]
fn cuba_bias(mant: i64, exp: i64) -> i128 {
    if exp < 0 {
        (mant >> exp.unsigned_abs().min(63)) as i128
    } else if exp < 64 {
        // |mant| <= 2^63, so the result is at most 2^126 in magnitude.
        (mant as i128) << exp
    } else {
        mant.signum() as i128 * (1i128 << 100)
    }
}

/// One step of the compartment: updates the current `u` and voltage `v` (24-bit values held in i64) from the synaptic input `a_in` (as Lava's process receives it) and returns whether it spiked.
///
/// With `du`, `dv` clamped to `0..=4095` (each clamp counted in `invalid`):
///
/// 1. `u ← wrap(leak(u, du + 1) + (a_in << 6))`, where [`leak`] is
///    `sign(x)·((|x|·(4096 − d)) >> 12)` and `wrap` reduces modulo `2^24` into `(−2^23, 2^23]`
///    (counted in `wraps` when it changes the value);
/// 2. `v ← clip(leak(v, dv) + u + bias)` with the new `u`, `bias = bias_mant << bias_exp`
///    (`bias_mant >> −bias_exp`, floor, for a negative exponent) and the clip to
///    `±(2^23 − 1)` (counted in `saturations`);
/// 3. spike iff `v > vth << 6`; then `v ← 0` (`u` keeps its value).
///
/// All intermediates are exact (`i128`), so no input panics or overflows: a state outside 24
/// bits is brought back by the wrap and the clip. Lava computes the same in numpy `int32`
/// (`int64` for the decay products); the two agree whenever Lava's `int32` arithmetic does not
/// overflow and its single `±2^24` correction brings `u` back into range, i.e. for
/// `|a_in| ≤ 2^18` (the port's declared precision is 16 bits), `bias_mant` in `int16` (Lava's
/// storage), `|bias| < 2^31 − 2^24` (Lava adds it to `v + u` in `int32`), and initial states in
/// range. Lava's ranges for the parameters lie well inside. The
/// input is `a_in` as Lava receives it from an `int32` sender such as `PyDenseModelBitAcc`; an
/// `int16` sender would make Lava wrap `a_in << 6` at 16 bits.
#[inline]
pub fn cuba_lif_step(u: &mut i64, v: &mut i64, a_in: i64, p: &CubaLif, c: &mut Counters) -> bool {
    let du = decay_param(p.du, c);
    let dv = decay_param(p.dv, c);
    // Current: decay by du + ds_offset (<= 4096, so `leak` counts nothing), input, wrap.
    let x = leak(*u, du + 1, c) as i128 + ((a_in as i128) << LOIHI_ACT_SHIFT);
    let u_new = wrap_current(x);
    if u_new as i128 != x {
        bump(&mut c.wraps);
    }
    // Voltage: decay by dv, integrate the new current and the bias, clip.
    let y = leak(*v, dv, c) as i128 + u_new as i128 + cuba_bias(p.bias_mant, p.bias_exp);
    let v_new = y.clamp(-CUBA_V_MAX as i128, CUBA_V_MAX as i128) as i64;
    if v_new as i128 != y {
        bump(&mut c.saturations);
    }
    let spike = v_new as i128 > (p.vth as i128) << LOIHI_VTH_SHIFT;
    *u = u_new;
    *v = if spike { 0 } else { v_new };
    spike
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

    const CUBA: CubaLif = CubaLif {
        du: 4095,
        dv: 0,
        vth: 10,
        bias_mant: 0,
        bias_exp: 0,
    };

    /// Runs `inputs` from `(u, v)` and returns the state and spike after each step.
    fn cuba_run<const N: usize>(
        p: &CubaLif,
        mut u: i64,
        mut v: i64,
        inputs: [i64; N],
        c: &mut Counters,
    ) -> [(i64, i64, bool); N] {
        inputs.map(|a| {
            let s = cuba_lif_step(&mut u, &mut v, a, p, c);
            (u, v, s)
        })
    }

    /// Golden: du = 1023 (keeps 3072/4096 of u), dv = 2048 (keeps half of v), threshold
    /// 2 << 6 = 128, bias 3 << 1 = 6, inputs 1, 1, 1, −3, 0 (i.e. 64, 64, 64, −192, 0):
    /// t0: u = 0 + 64 = 64;                    v = 0 + 64 + 6 = 70
    /// t1: u = 64·3072 >> 12 = 48, + 64 = 112; v = 70·2048 >> 12 = 35, + 112 + 6 = 153 > 128: spike, 0
    /// t2: u = 112·3072 >> 12 = 84, + 64 = 148; v = 0 + 148 + 6 = 154 > 128: spike, 0
    /// t3: u = 148·3072 >> 12 = 111, − 192 = −81; v = 0 − 81 + 6 = −75
    /// t4: u = −(81·3072 >> 12) = −60 (−60.75 toward zero); v = −(75·2048 >> 12) = −37 (−37.5),
    ///     − 60 + 6 = −91
    #[test]
    fn golden_cuba_lif_sequence() {
        let p = CubaLif {
            du: 1023,
            dv: 2048,
            vth: 2,
            bias_mant: 3,
            bias_exp: 1,
        };
        let mut c = Counters::default();
        assert_eq!(
            cuba_run(&p, 0, 0, [1, 1, 1, -3, 0], &mut c),
            [
                (64, 70, false),
                (112, 0, true),
                (148, 0, true),
                (-81, -75, false),
                (-60, -91, false)
            ]
        );
        assert_eq!(c, Counters::default());
    }

    /// Golden: strict threshold, reset to 0 with u kept, vth = 0, and the decay extremes.
    #[test]
    fn golden_cuba_lif_threshold_and_decays() {
        let mut c = Counters::default();
        // du = 4095: u = a_in << 6; dv = 0: v integrates. 640 = 10 << 6 does not fire, 704 does.
        assert_eq!(
            cuba_run(&CUBA, 0, 0, [10, 0, 1, 0], &mut c),
            [
                (640, 640, false),
                (0, 640, false),
                (64, 0, true),
                (0, 0, false)
            ]
        );
        // vth = 0: v = 0 does not fire, any positive v does; negative v never.
        let p = CubaLif { vth: 0, ..CUBA };
        assert_eq!(
            cuba_run(&p, 0, 0, [0, 1, -1, 1], &mut c),
            [
                (0, 0, false),
                (64, 0, true),
                (-64, -64, false),
                (64, 0, false)
            ]
        );
        // du = 0 still decays u by 1/4096 (ds_offset): 4096·4095 >> 12 = 4095; dv = 0 keeps v.
        // dv = 4095 keeps 1/4096 of v: 8191 >> 12 = 1.
        let p = CubaLif {
            du: 0,
            vth: 1000,
            ..CUBA
        };
        assert_eq!(
            cuba_run(&p, 4096, 5, [0, 0], &mut c),
            [(4095, 4100, false), (4094, 8194, false)]
        );
        let p = CubaLif {
            du: 0,
            dv: 4095,
            vth: 1000,
            ..CUBA
        };
        assert_eq!(
            cuba_run(&p, 0, 8191, [0, 0], &mut c),
            [(0, 1, false), (0, 0, false)]
        );
        assert_eq!(c, Counters::default());
    }

    /// Golden: the bias shift, with negative exponents flooring.
    #[test]
    fn golden_cuba_bias() {
        assert_eq!(cuba_bias(5, 6), 320);
        assert_eq!(cuba_bias(-4096, 7), -524_288);
        assert_eq!(cuba_bias(3, -1), 1);
        assert_eq!(cuba_bias(-3, -1), -2); // floor(-1.5)
        assert_eq!(cuba_bias(-4096, -13), -1);
        assert_eq!(cuba_bias(4095, -13), 0);
        assert_eq!(cuba_bias(-1, -100), -1);
        assert_eq!(cuba_bias(7, i64::MIN), 0);
        assert_eq!(cuba_bias(i64::MIN, 63), -(1i128 << 126));
        assert_eq!(cuba_bias(1, 64), 1i128 << 100);
        assert_eq!(cuba_bias(-2, i64::MAX), -(1i128 << 100));
        assert_eq!(cuba_bias(0, i64::MAX), 0);
        // In a step: bias -3 >> 1 = -2 per step with no input.
        let p = CubaLif {
            bias_mant: -3,
            bias_exp: -1,
            ..CUBA
        };
        let mut c = Counters::default();
        assert_eq!(
            cuba_run(&p, 0, 0, [0, 0], &mut c),
            [(0, -2, false), (0, -4, false)]
        );
    }

    /// Golden: the wrap of u into (−2^23, 2^23] and the clip of v to ±(2^23 − 1), counted.
    #[test]
    fn golden_cuba_lif_wrap_and_clip() {
        assert_eq!(
            (CUBA_U_MAX, CUBA_V_MAX, LOIHI_STATE_BITS),
            (8_388_608, 8_388_607, 24)
        );
        let mut c = Counters::default();
        // From u = 2^23 with du = 0: 2^23·4095 >> 12 = 2^23 − 2048, + (32 << 6) = 2^23 (kept,
        // not wrapped); + (33 << 6) = 2^23 + 64 -> −2^23 + 64 (wrapped). dv = 4095 keeps v small;
        // vth = 2^17 puts the threshold at 2^23, above every v.
        let p = CubaLif {
            du: 0,
            dv: 4095,
            vth: 1 << 17,
            ..CUBA
        };
        assert_eq!(
            cuba_run(&p, CUBA_U_MAX, 0, [32, 33], &mut c),
            [
                (CUBA_U_MAX, CUBA_V_MAX, false),
                (-CUBA_U_MAX + 64, -CUBA_U_MAX + 64 + 2047, false)
            ]
        );
        assert_eq!((c.wraps, c.saturations), (1, 1));
        // du = 4095: u = a_in << 6. −2^17 << 6 = −2^23 wraps to +2^23; 2^17 << 6 = 2^23 is kept.
        let p = CubaLif {
            dv: 4095,
            vth: 1 << 17,
            ..CUBA
        };
        let mut c = Counters::default();
        assert_eq!(
            cuba_run(&p, 0, 0, [-(1 << 17), 1 << 17, (1 << 17) + 1], &mut c),
            [
                (CUBA_U_MAX, CUBA_V_MAX, false),
                (CUBA_U_MAX, CUBA_V_MAX, false),
                (-CUBA_U_MAX + 64, -CUBA_U_MAX + 64 + 2047, false)
            ]
        );
        assert_eq!((c.wraps, c.saturations), (2, 2));
        // v saturates at both ends with a full-scale 16-bit input (no decay of v).
        let p = CubaLif {
            vth: 1 << 17,
            ..CUBA
        };
        let mut c = Counters::default();
        let up = cuba_run(&p, 0, 0, [32767; 5], &mut c);
        assert_eq!(up[3], (2_097_088, 4 * 2_097_088, false));
        assert_eq!(up[4], (2_097_088, CUBA_V_MAX, false));
        let down = cuba_run(&p, 0, 0, [-32768; 5], &mut c);
        // −4·2_097_152 = −2^23 is already one below the clip.
        assert_eq!(down[3], (-2_097_152, -CUBA_V_MAX, false));
        assert_eq!(down[4], (-2_097_152, -CUBA_V_MAX, false));
        assert_eq!((c.wraps, c.saturations), (0, 3));
        // A clipped v still fires when the threshold is below the clip: 131071 << 6 < 2^23 − 1.
        let p = CubaLif {
            vth: 131_071,
            ..CUBA
        };
        let (mut u, mut v) = (0, CUBA_V_MAX);
        assert!(cuba_lif_step(&mut u, &mut v, 32767, &p, &mut c));
        assert_eq!((u, v, c.saturations), (2_097_088, 0, 4));
    }

    /// du, dv outside 0..=4095 are clamped and counted; extreme values never panic.
    #[test]
    fn cuba_lif_invalid_and_extreme() {
        let mut c = Counters::default();
        let bad = CubaLif {
            du: -1,
            dv: 9999,
            vth: 5,
            bias_mant: 7,
            bias_exp: 2,
        };
        let good = CubaLif {
            du: 0,
            dv: 4095,
            ..bad
        };
        let got = cuba_run(&bad, 1000, -1000, [3, -5, 100], &mut c);
        assert_eq!(c.invalid, 6);
        let mut c2 = Counters::default();
        assert_eq!(got, cuba_run(&good, 1000, -1000, [3, -5, 100], &mut c2));
        assert_eq!(c2, Counters::default());
        let ext = [i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX];
        for &x in &ext {
            for &y in &ext {
                let p = CubaLif {
                    du: x,
                    dv: y,
                    vth: x,
                    bias_mant: y,
                    bias_exp: x,
                };
                let (mut u, mut v) = (x, y);
                cuba_lif_step(&mut u, &mut v, y, &p, &mut c);
                assert!(
                    (-CUBA_U_MAX + 1..=CUBA_U_MAX).contains(&u),
                    "{x} {y}: u {u}"
                );
                assert!((-CUBA_V_MAX..=CUBA_V_MAX).contains(&v), "{x} {y}: v {v}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn prop_cuba_lif_stays_in_range(
            u0 in proptest::prelude::any::<i64>(),
            v0 in proptest::prelude::any::<i64>(),
            a in proptest::prelude::any::<i64>(),
            du in -5000i64..5000,
            dv in -5000i64..5000,
            vth in proptest::prelude::any::<i64>(),
            bias_mant in proptest::prelude::any::<i64>(),
            bias_exp in -200i64..200,
        ) {
            let p = CubaLif { du, dv, vth, bias_mant, bias_exp };
            let mut c = Counters::default();
            let (mut u, mut v) = (u0, v0);
            let s = cuba_lif_step(&mut u, &mut v, a, &p, &mut c);
            proptest::prop_assert!(u > -CUBA_U_MAX && u <= CUBA_U_MAX);
            proptest::prop_assert!((-CUBA_V_MAX..=CUBA_V_MAX).contains(&v));
            proptest::prop_assert!(!s || v == 0);
            proptest::prop_assert!(c.wraps <= 1 && c.saturations <= 1 && c.invalid <= 2);
        }
    }
}
