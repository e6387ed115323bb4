//! The two arithmetics a chip can run: fixed point (the chip's formats, through the firmware
//! kernels, every rounding and overflow counted) and the float twin (`f64`, no quantisation).
//!
//! Both implement [`Datapath`]; the emulator is generic over it, so the float twin walks exactly
//! the same events as the fixed-point chip.

use crate::chip::{ChipModel, Formats};
use crate::ledger::VarCounters;
use crate::rule::{Activation, Balance};
use accord_firmware::arith::{CounterRng, Counters, fit, requantize};
use accord_firmware::balance::Table;
use accord_firmware::credit;
use accord_firmware::plasticity;
use accord_firmware::soma::{self, Transfer};
use anyhow::{Result, bail};

/// Purpose tags of the counter-based random streams (DESIGN §3: keyed by entity, step, purpose).
pub mod purpose {
    /// Stochastic rounding of a weight update.
    pub const WEIGHT_ROUND: u32 = 1;
    /// Stochastic rounding of a bias update.
    pub const BIAS_ROUND: u32 = 2;
    /// Poisson input encoding.
    pub const POISSON: u32 = 3;
    /// Any other stochastic rounding on the datapath (δ, credit, membrane).
    pub const DATAPATH_ROUND: u32 = 4;
}

/// What the emulator needs from an arithmetic. `V` is a stored value, `Acc` an exact row sum.
pub trait Datapath: Sync {
    /// A stored value (raw fixed-point integer, or `f64`).
    type V: Copy + Default + PartialEq + Send + Sync + std::fmt::Debug;
    /// An exact accumulator of products.
    type Acc: Copy + Default + Send + Sync;

    /// Whether `v` is zero (a silent neuron, a zero credit).
    fn is_zero(v: Self::V) -> bool;
    /// Weight (or bias) from a real number.
    fn weight_in(&self, x: f64, c: &mut VarCounters) -> Self::V;
    /// Rate from a real number (graded input encoding).
    fn rate_in(&self, x: f64, c: &mut VarCounters) -> Self::V;
    /// Credit from a real number (the host's output clamp).
    fn credit_in(&self, x: f64, c: &mut VarCounters) -> Self::V;
    /// Real value of a weight.
    fn weight_out(&self, v: Self::V) -> f64;
    /// Real value of a rate.
    fn rate_out(&self, v: Self::V) -> f64;
    /// Real value of a membrane / balance value.
    fn u_out(&self, v: Self::V) -> f64;
    /// Real value of a credit.
    fn credit_out(&self, v: Self::V) -> f64;
    /// Real value of a message `δ`.
    fn delta_out(&self, v: Self::V) -> f64;

    /// Graded synaptic op: `acc += w · r`, exact.
    fn mac(acc: &mut Self::Acc, w: Self::V, r: Self::V);
    /// Binary-spike synaptic op: `acc += w`, exact.
    fn add_weight(acc: &mut Self::Acc, w: Self::V);
    /// Soma of a graded neuron: `u = acc + b` into the membrane format (through the accumulator
    /// format).
    fn soma_u(&self, acc: Self::Acc, b: Self::V, key: (u64, u64), c: &mut VarCounters) -> Self::V;
    /// Spiking input of one tick, `acc + b`, in the membrane format.
    fn tick_input(
        &self,
        acc: Self::Acc,
        b: Self::V,
        key: (u64, u64),
        c: &mut VarCounters,
    ) -> Self::V;
    /// Integrate-and-fire step with threshold 1 and reset by subtraction.
    fn if_step(&self, v: &mut Self::V, input: Self::V, c: &mut VarCounters) -> bool;
    /// Balance of a spiking neuron over a window: `Σ_t input_t / T` in the membrane format.
    fn mean_u(&self, total: Self::Acc, ticks: u32, c: &mut VarCounters) -> Self::V;
    /// Add a membrane value to an exact accumulator (for `mean_u`).
    fn acc_u(acc: &mut Self::Acc, u: Self::V, this: &Self);
    /// Rate `count / T`.
    fn rate_from_count(&self, count: u32, ticks: u32, c: &mut VarCounters) -> Self::V;
    /// Rate of a graded neuron of synaptic layer `l` with activation `act`.
    fn transfer(
        &self,
        u: Self::V,
        l: usize,
        act: Activation,
        key: (u64, u64),
        c: &mut VarCounters,
    ) -> Self::V;
    /// Balance function `g(u)` of synaptic layer `l` (a table read on a chip).
    fn g(&self, u: Self::V, l: usize, c: &mut VarCounters) -> Self::V;
    /// `δ = g · c`.
    fn delta(&self, g: Self::V, cr: Self::V, key: (u64, u64), c: &mut VarCounters) -> Self::V;
    /// Whether a `δ` is sent (message threshold; a zero never is).
    fn passes(&self, d: Self::V) -> bool;
    /// Retrograde synaptic op: `acc += w · δ`, exact.
    fn retro_mac(acc: &mut Self::Acc, w: Self::V, d: Self::V);
    /// A retrograde row sum as a credit message.
    fn retro_finish(&self, acc: Self::Acc, key: (u64, u64), c: &mut VarCounters) -> Self::V;
    /// `c_j + m_j` at the presynaptic core.
    fn credit_add(&self, cj: Self::V, m: Self::V, c: &mut VarCounters) -> Self::V;
    /// `w + η δ r` (the rounding stream keyed by `key`).
    fn weight_update(
        &self,
        w: Self::V,
        d: Self::V,
        r: Self::V,
        key: (u64, u64),
        c: &mut VarCounters,
    ) -> Self::V;
    /// `b + η δ`.
    fn bias_update(&self, b: Self::V, d: Self::V, key: (u64, u64), c: &mut VarCounters) -> Self::V;
    /// Compare a uniform draw with a rate: Poisson encoding.
    fn bernoulli(&self, draw: u64, p: Self::V) -> bool;
    /// One tick of a regular (deterministic) encoder: `phase += p`; spike and subtract 1 when
    /// `phase ≥ 1`.
    fn regular_step(&self, phase: &mut Self::V, p: Self::V) -> bool;
}

/// The float twin: `f64`, exact activations and `g`, no quantisation, nothing counted.
#[derive(Clone, Debug)]
pub struct FloatPath {
    acts: Vec<Activation>,
    balance: Vec<Balance>,
    lr: f64,
    threshold: f64,
}

impl FloatPath {
    /// A float twin for layers with these activations and balance functions.
    pub fn new(acts: Vec<Activation>, balance: Vec<Balance>, lr: f64, threshold: f64) -> Self {
        FloatPath {
            acts,
            balance,
            lr,
            threshold,
        }
    }
}

impl Datapath for FloatPath {
    type V = f64;
    type Acc = f64;
    #[inline]
    fn is_zero(v: f64) -> bool {
        v == 0.0
    }
    fn weight_in(&self, x: f64, _: &mut VarCounters) -> f64 {
        x
    }
    fn rate_in(&self, x: f64, _: &mut VarCounters) -> f64 {
        x
    }
    fn credit_in(&self, x: f64, _: &mut VarCounters) -> f64 {
        x
    }
    fn weight_out(&self, v: f64) -> f64 {
        v
    }
    fn rate_out(&self, v: f64) -> f64 {
        v
    }
    fn u_out(&self, v: f64) -> f64 {
        v
    }
    fn credit_out(&self, v: f64) -> f64 {
        v
    }
    fn delta_out(&self, v: f64) -> f64 {
        v
    }
    #[inline]
    fn mac(acc: &mut f64, w: f64, r: f64) {
        *acc += w * r;
    }
    #[inline]
    fn add_weight(acc: &mut f64, w: f64) {
        *acc += w;
    }
    #[inline]
    fn soma_u(&self, acc: f64, b: f64, _: (u64, u64), _: &mut VarCounters) -> f64 {
        acc + b
    }
    #[inline]
    fn tick_input(&self, acc: f64, b: f64, _: (u64, u64), _: &mut VarCounters) -> f64 {
        acc + b
    }
    #[inline]
    fn if_step(&self, v: &mut f64, input: f64, _: &mut VarCounters) -> bool {
        *v += input;
        if *v >= 1.0 {
            *v -= 1.0;
            true
        } else {
            false
        }
    }
    fn mean_u(&self, total: f64, ticks: u32, _: &mut VarCounters) -> f64 {
        total / ticks as f64
    }
    #[inline]
    fn acc_u(acc: &mut f64, u: f64, _: &Self) {
        *acc += u;
    }
    fn rate_from_count(&self, count: u32, ticks: u32, _: &mut VarCounters) -> f64 {
        count as f64 / ticks as f64
    }
    #[inline]
    fn transfer(
        &self,
        u: f64,
        _l: usize,
        act: Activation,
        _: (u64, u64),
        _: &mut VarCounters,
    ) -> f64 {
        act.f(u)
    }
    #[inline]
    fn g(&self, u: f64, l: usize, _: &mut VarCounters) -> f64 {
        self.balance[l].g(self.acts[l], u)
    }
    #[inline]
    fn delta(&self, g: f64, cr: f64, _: (u64, u64), _: &mut VarCounters) -> f64 {
        g * cr
    }
    #[inline]
    fn passes(&self, d: f64) -> bool {
        d != 0.0 && d.abs() >= self.threshold
    }
    #[inline]
    fn retro_mac(acc: &mut f64, w: f64, d: f64) {
        *acc += w * d;
    }
    fn retro_finish(&self, acc: f64, _: (u64, u64), _: &mut VarCounters) -> f64 {
        acc
    }
    fn credit_add(&self, cj: f64, m: f64, _: &mut VarCounters) -> f64 {
        cj + m
    }
    #[inline]
    fn weight_update(&self, w: f64, d: f64, r: f64, _: (u64, u64), _: &mut VarCounters) -> f64 {
        w + self.lr * d * r
    }
    fn bias_update(&self, b: f64, d: f64, _: (u64, u64), _: &mut VarCounters) -> f64 {
        b + self.lr * d
    }
    fn bernoulli(&self, draw: u64, p: f64) -> bool {
        ((draw >> 11) as f64) * (1.0 / (1u64 << 53) as f64) < p
    }
    fn regular_step(&self, phase: &mut f64, p: f64) -> bool {
        *phase += p;
        if *phase >= 1.0 {
            *phase -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Fixed point: every value a raw integer in its chip format, every kernel a firmware kernel.
#[derive(Clone, Debug)]
pub struct FixedPath {
    f: Formats,
    seed: u64,
    lr: i64,
    threshold: i64,
    /// Balance tables per synaptic layer.
    g_tables: Vec<Table<Vec<i64>>>,
    /// Activation tables per synaptic layer (sigmoid, tanh); `None` for piecewise-linear ones.
    f_tables: Vec<Option<Table<Vec<i64>>>>,
    /// Output-layer identity read-outs stay in the membrane format.
    out_identity: bool,
    n_layers: usize,
    /// Fractional bits of a product `w · r` (the MAC's internal precision).
    mac_frac: u32,
    retro_frac: u32,
}

/// Entries of the activation table used for smooth activations (sigmoid, tanh) on a chip.
pub const ACTIVATION_TABLE_ENTRIES: usize = 4096;

impl FixedPath {
    /// A fixed-point datapath for `chip`'s formats and balance table, for layers with these
    /// activations and balance functions, learning rate `lr` and message threshold (real units).
    ///
    /// # Errors
    /// If the learning rate or threshold does not fit its format, or a table cannot be built.
    pub fn new(
        chip: &ChipModel,
        acts: &[Activation],
        balance: &[Balance],
        lr: f64,
        threshold: f64,
        seed: u64,
        vars: &mut VarCounters,
    ) -> Result<Self> {
        let f = chip.formats;
        let mut c = Counters::default();
        let lr_raw = f.learning_rate.from_f64(lr, &mut c);
        if lr_raw == 0 || c.saturations > 0 {
            bail!(
                "learning rate {lr} is not representable in chip '{}''s learning_rate format ({} bits, {} fractional: range {}..{}, step {})",
                chip.name,
                f.learning_rate.bits,
                f.learning_rate.frac,
                f.learning_rate.to_f64(f.learning_rate.min_raw()),
                f.learning_rate.to_f64(f.learning_rate.max_raw()),
                f.learning_rate.lsb()
            );
        }
        let thr_raw = f.delta.from_f64(threshold, &mut c);
        let spec = &chip.balance_table;
        let mut g_tables = Vec::new();
        let mut f_tables = Vec::new();
        for (l, (&act, bal)) in acts.iter().zip(balance).enumerate() {
            let g = Table::build(
                vec![0i64; spec.entries as usize],
                spec.input_min,
                spec.input_max,
                &f.membrane,
                &f.lut,
                |u| bal.g(act, u),
                &mut vars.lut,
            )
            .map_err(|e| anyhow::anyhow!("balance table of layer {}: {e}", l + 1))?;
            g_tables.push(g);
            let ft = match act {
                Activation::Sigmoid | Activation::Tanh => Some(
                    Table::build(
                        vec![0i64; ACTIVATION_TABLE_ENTRIES],
                        spec.input_min,
                        spec.input_max,
                        &f.membrane,
                        &f.rate,
                        |u| act.f(u),
                        &mut vars.rate,
                    )
                    .map_err(|e| anyhow::anyhow!("activation table of layer {}: {e}", l + 1))?,
                ),
                _ => None,
            };
            f_tables.push(ft);
        }
        let out_identity = acts.last() == Some(&Activation::Identity);
        Ok(FixedPath {
            mac_frac: f.weight.frac as u32 + f.rate.frac as u32,
            retro_frac: f.weight.frac as u32 + f.delta.frac as u32,
            f,
            seed,
            lr: lr_raw,
            threshold: thr_raw,
            g_tables,
            f_tables,
            out_identity,
            n_layers: acts.len(),
        })
    }

    /// The chip formats in use.
    pub fn formats(&self) -> &Formats {
        &self.f
    }

    /// The largest jump of synaptic layer `l`'s rate between adjacent activation-table entries
    /// (0 for piecewise-linear activations computed exactly): the resolution below which a
    /// fixed-point firing relaxation can dither.
    pub fn transfer_resolution(&self, l: usize) -> f64 {
        self.f_tables[l].as_ref().map_or(0.0, |t| {
            t.entries()
                .windows(2)
                .map(|p| (self.f.rate.to_f64(p[1]) - self.f.rate.to_f64(p[0])).abs())
                .fold(0.0, f64::max)
        })
    }

    fn rng(&self, key: (u64, u64), purpose: u32) -> CounterRng {
        CounterRng::new(self.seed, key.0, key.1, purpose)
    }
}

/// Round-to-nearest (ties away from zero) integer division of an exact value by a positive `d`.
fn div_round(x: i128, d: i128) -> i128 {
    if x >= 0 {
        (2 * x + d) / (2 * d)
    } else {
        -((-2 * x + d) / (2 * d))
    }
}

impl Datapath for FixedPath {
    type V = i64;
    type Acc = i128;
    #[inline]
    fn is_zero(v: i64) -> bool {
        v == 0
    }
    fn weight_in(&self, x: f64, c: &mut VarCounters) -> i64 {
        self.f.weight.from_f64(x, &mut c.weight)
    }
    fn rate_in(&self, x: f64, c: &mut VarCounters) -> i64 {
        self.f.rate.from_f64(x, &mut c.rate)
    }
    fn credit_in(&self, x: f64, c: &mut VarCounters) -> i64 {
        self.f.credit.from_f64(x, &mut c.credit)
    }
    fn weight_out(&self, v: i64) -> f64 {
        self.f.weight.to_f64(v)
    }
    fn rate_out(&self, v: i64) -> f64 {
        self.f.rate.to_f64(v)
    }
    fn u_out(&self, v: i64) -> f64 {
        self.f.membrane.to_f64(v)
    }
    fn credit_out(&self, v: i64) -> f64 {
        self.f.credit.to_f64(v)
    }
    fn delta_out(&self, v: i64) -> f64 {
        self.f.delta.to_f64(v)
    }
    #[inline]
    fn mac(acc: &mut i128, w: i64, r: i64) {
        *acc += (w as i128) * (r as i128);
    }
    #[inline]
    fn add_weight(acc: &mut i128, w: i64) {
        *acc += w as i128;
    }
    fn soma_u(&self, acc: i128, b: i64, key: (u64, u64), c: &mut VarCounters) -> i64 {
        // The row sum enters the accumulator format, the bias is added there, and the soma reads
        // the result into the membrane format.
        let mut rng = self.rng(key, purpose::DATAPATH_ROUND);
        let a = requantize(
            acc,
            self.mac_frac,
            &self.f.accumulator,
            &mut rng,
            &mut c.accumulator,
        );
        let bias = rescale_exact(
            b as i128,
            self.f.weight.frac as u32,
            self.f.accumulator.frac as u32,
        );
        let sum = fit(a as i128 + bias, &self.f.accumulator, &mut c.accumulator);
        requantize(
            sum as i128,
            self.f.accumulator.frac as u32,
            &self.f.membrane,
            &mut rng,
            &mut c.membrane,
        )
    }
    fn tick_input(&self, acc: i128, b: i64, key: (u64, u64), c: &mut VarCounters) -> i64 {
        let mut rng = self.rng(key, purpose::DATAPATH_ROUND);
        requantize(
            acc + b as i128,
            self.f.weight.frac as u32,
            &self.f.membrane,
            &mut rng,
            &mut c.membrane,
        )
    }
    fn if_step(&self, v: &mut i64, input: i64, c: &mut VarCounters) -> bool {
        let one = 1i64 << self.f.membrane.frac;
        soma::if_step(v, input, one, &self.f.membrane, &mut c.membrane)
    }
    fn mean_u(&self, total: i128, ticks: u32, c: &mut VarCounters) -> i64 {
        fit(
            div_round(total, ticks as i128),
            &self.f.membrane,
            &mut c.membrane,
        )
    }
    fn acc_u(acc: &mut i128, u: i64, _: &Self) {
        *acc += u as i128;
    }
    fn rate_from_count(&self, count: u32, ticks: u32, c: &mut VarCounters) -> i64 {
        let x = (count as i128) << self.f.rate.frac;
        fit(div_round(x, ticks as i128), &self.f.rate, &mut c.rate)
    }
    fn transfer(
        &self,
        u: i64,
        l: usize,
        act: Activation,
        key: (u64, u64),
        c: &mut VarCounters,
    ) -> i64 {
        if l + 1 == self.n_layers && self.out_identity {
            return u; // linear read-out: stays in the membrane format
        }
        let mut rng = self.rng(key, purpose::DATAPATH_ROUND);
        let t = match (act, &self.f_tables[l]) {
            (_, Some(t)) => Transfer::Table(t.view()),
            (Activation::Relu, None) => Transfer::Relu,
            (Activation::HardSigmoid, None) => Transfer::HardSigmoid,
            _ => Transfer::Identity,
        };
        soma::graded_rate(u, &self.f.membrane, &t, &self.f.rate, &mut rng, &mut c.rate)
    }
    #[inline]
    fn g(&self, u: i64, l: usize, c: &mut VarCounters) -> i64 {
        self.g_tables[l].lookup(u, &mut c.lut)
    }
    fn delta(&self, g: i64, cr: i64, key: (u64, u64), c: &mut VarCounters) -> i64 {
        let mut rng = self.rng(key, purpose::DATAPATH_ROUND);
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
    fn passes(&self, d: i64) -> bool {
        credit::passes_threshold(d, self.threshold)
    }
    #[inline]
    fn retro_mac(acc: &mut i128, w: i64, d: i64) {
        *acc += (w as i128) * (d as i128);
    }
    fn retro_finish(&self, acc: i128, key: (u64, u64), c: &mut VarCounters) -> i64 {
        let mut rng = self.rng(key, purpose::DATAPATH_ROUND);
        requantize(
            acc,
            self.retro_frac,
            &self.f.credit,
            &mut rng,
            &mut c.credit,
        )
    }
    fn credit_add(&self, cj: i64, m: i64, c: &mut VarCounters) -> i64 {
        credit::accumulate_credit(cj, m, &self.f.credit, &mut c.credit)
    }
    #[inline]
    fn weight_update(&self, w: i64, d: i64, r: i64, key: (u64, u64), c: &mut VarCounters) -> i64 {
        let mut rng = self.rng(key, purpose::WEIGHT_ROUND);
        plasticity::weight_update(
            w,
            &self.f.weight,
            d,
            &self.f.delta,
            r,
            &self.f.rate,
            self.lr,
            &self.f.learning_rate,
            &mut rng,
            &mut c.weight,
        )
    }
    fn bias_update(&self, b: i64, d: i64, key: (u64, u64), c: &mut VarCounters) -> i64 {
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
    fn bernoulli(&self, draw: u64, p: i64) -> bool {
        // p is raw in the rate format: compare the top `frac` bits of the draw.
        let fr = self.f.rate.frac as u32;
        let u = if fr == 0 {
            0
        } else {
            (draw >> (64 - fr.min(63))) as i64
        };
        u < p
    }
    fn regular_step(&self, phase: &mut i64, p: i64) -> bool {
        let one = 1i64 << self.f.rate.frac;
        *phase += p;
        if *phase >= one {
            *phase -= one;
            true
        } else {
            false
        }
    }
}

/// `x` at `from` fractional bits, shifted exactly to `to` (left shifts are exact; right shifts
/// floor, used only for the bias, whose format is the weight format).
fn rescale_exact(x: i128, from: u32, to: u32) -> i128 {
    if to >= from {
        x << (to - from)
    } else {
        x >> (from - to)
    }
}
