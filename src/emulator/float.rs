//! The float twin: the firmware's [`Datapath`] over `f64`, with exact activations and balance
//! functions, no quantisation and nothing to count. The core handlers run unchanged on it, so
//! the twin walks exactly the events of the fixed-point chip.

use accord_firmware::datapath::{Datapath, Key, SpikingSoma, TransferKind, Vars};

use crate::rule::{Activation, Balance};

/// One population of the float twin: its activation and balance function.
#[derive(Clone, Debug)]
pub struct FloatPop {
    /// Activation.
    pub act: Activation,
    /// Balance function.
    pub balance: Balance,
    /// Whether the population is a linear read-out (identity outputs).
    pub readout: bool,
    /// Its own spiking soma (`None`: the chip's).
    pub soma: Option<SpikingSoma>,
}

/// The `f64` twin of a chip's datapath.
#[derive(Clone, Debug)]
pub struct FloatPath {
    pops: Vec<FloatPop>,
    lr: f64,
    threshold: f64,
    soma: SpikingSoma,
    seed: u64,
}

impl FloatPath {
    /// A twin for these populations, learning rate, message threshold (real units), spiking
    /// soma program and seed (for Poisson draws).
    pub fn new(pops: Vec<FloatPop>, lr: f64, threshold: f64, soma: SpikingSoma, seed: u64) -> Self {
        FloatPath {
            pops,
            lr,
            threshold,
            soma,
            seed,
        }
    }

    fn pop(&self, pop: usize) -> Option<&FloatPop> {
        self.pops.get(pop)
    }
}

impl Datapath for FloatPath {
    type V = f64;
    type W = f64;
    type Acc = f64;

    #[inline(always)]
    fn is_zero(v: f64) -> bool {
        v == 0.0
    }
    #[inline(always)]
    fn w_mag(_: f64) -> u64 {
        0
    }
    #[inline(always)]
    fn v_mag(_: f64) -> u64 {
        0
    }
    #[inline(always)]
    fn bound_ok(&self, _: u64) -> bool {
        true
    }
    #[inline(always)]
    fn product_bound(&self, _: u64, _: u64, _: bool) -> u64 {
        0
    }
    fn weight_in(&self, x: f64, _: &mut Vars) -> f64 {
        x
    }
    fn weight_out(&self, w: f64) -> f64 {
        w
    }
    fn bias_in(&self, x: f64, _: &mut Vars) -> f64 {
        x
    }
    fn bias_out(&self, b: f64) -> f64 {
        b
    }
    fn rate_in(&self, x: f64, _: &mut Vars) -> f64 {
        x
    }
    fn rate_out(&self, v: f64) -> f64 {
        v
    }
    fn u_out(&self, v: f64) -> f64 {
        v
    }
    fn credit_in(&self, x: f64, _: &mut Vars) -> f64 {
        x
    }
    fn credit_out(&self, v: f64) -> f64 {
        v
    }
    fn delta_out(&self, v: f64) -> f64 {
        v
    }
    fn out_value(&self, r: f64, _: usize) -> f64 {
        r
    }
    #[inline]
    fn mac_row(&self, acc: &mut [f64], row: &[f64], r: f64, _: bool, _: Key, _: u64, _: &mut Vars) {
        for (a, &w) in acc.iter_mut().zip(row) {
            *a += w * r;
        }
    }
    #[inline]
    fn add_row(&self, acc: &mut [f64], row: &[f64], _: bool, _: &mut Vars) {
        for (a, &w) in acc.iter_mut().zip(row) {
            *a += w;
        }
    }
    fn soma_u(&self, acc: f64, b: f64, _: Key, _: &mut Vars) -> f64 {
        acc + b
    }
    fn transfer(&self, u: f64, pop: usize, _: Key, _: &mut Vars) -> f64 {
        match self.pop(pop) {
            Some(p) if p.readout => u,
            Some(p) => p.act.f(u),
            None => 0.0,
        }
    }
    fn transfer_kind(&self, pop: usize) -> TransferKind {
        match self.pop(pop) {
            Some(p) if p.readout => TransferKind::Readout,
            Some(p) => match p.act {
                Activation::Relu => TransferKind::Relu,
                Activation::HardSigmoid => TransferKind::HardSigmoid,
                Activation::Identity => TransferKind::Identity,
                Activation::Sigmoid | Activation::Tanh => TransferKind::Table,
            },
            None => TransferKind::Identity,
        }
    }
    fn tick_input(&self, acc: f64, b: f64, _: Key, _: &mut Vars) -> f64 {
        acc + b
    }
    fn spike_step(
        &self,
        pop: usize,
        v: &mut f64,
        cur: &mut f64,
        acc: f64,
        b: f64,
        input: f64,
        _: &mut Vars,
    ) -> bool {
        match self.spiking_soma(pop) {
            SpikingSoma::If => {
                *v += input;
                if *v >= 1.0 {
                    *v -= 1.0;
                    true
                } else {
                    false
                }
            }
            SpikingSoma::Lif { decay } => {
                *v *= 1.0 - f64::from(decay.min(4096)) / 4096.0;
                *v += input;
                if *v >= 1.0 {
                    *v -= 1.0;
                    true
                } else {
                    false
                }
            }
            SpikingSoma::CubaLif { du, dv } => {
                // Lava's dynamics without its integer rounding: u decays by (du + 1)/4096, v by
                // dv/4096; the bias enters v; v > 1 spikes and resets to 0.
                *cur = *cur * (1.0 - (f64::from(du) + 1.0) / 4096.0) + acc;
                *v = *v * (1.0 - f64::from(dv) / 4096.0) + *cur + b;
                if *v > 1.0 {
                    *v = 0.0;
                    true
                } else {
                    false
                }
            }
        }
    }
    fn spiking_soma(&self, pop: usize) -> SpikingSoma {
        self.pop(pop).and_then(|p| p.soma).unwrap_or(self.soma)
    }
    #[inline]
    fn drive_add(&self, total: &mut f64, input: f64) {
        *total += input;
    }
    fn partial_out(&self, acc: f64, _: &mut Vars) -> f64 {
        acc
    }
    fn partial_add(&self, acc: &mut f64, v: f64, _: &mut Vars) {
        *acc += v;
    }
    fn mean_u(&self, total: f64, ticks: u32, _: &mut Vars) -> f64 {
        total / f64::from(ticks.max(1))
    }
    fn rate_from_count(&self, count: u32, ticks: u32, _: &mut Vars) -> f64 {
        f64::from(count) / f64::from(ticks.max(1))
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
    fn bernoulli(&self, draw: u64, p: f64) -> bool {
        ((draw >> 11) as f64) * (1.0 / (1u64 << 53) as f64) < p
    }
    fn draw(&self, key: Key, purpose: u32) -> u64 {
        accord_firmware::arith::CounterRng::new(self.seed, key.entity, key.step, purpose).draw_at(0)
    }
    fn g(&self, u: f64, pop: usize, _: &mut Vars) -> f64 {
        match self.pop(pop) {
            Some(p) => p.balance.g(p.act, u),
            None => 0.0,
        }
    }
    fn delta(&self, g: f64, cr: f64, _: Key, _: &mut Vars) -> f64 {
        g * cr
    }
    #[inline]
    fn retro_row(&self, row: &[f64], delta: &[f64], _: bool, _: Key, _: u64, _: &mut Vars) -> f64 {
        let mut s = 0.0;
        for (&w, &d) in row.iter().zip(delta) {
            if d != 0.0 {
                s += w * d;
            }
        }
        s
    }
    #[inline]
    fn retro_gather(
        &self,
        row: &[f64],
        delta: &[f64],
        nz: &[u32],
        _: bool,
        _: Key,
        _: u64,
        _: &mut Vars,
    ) -> f64 {
        let mut s = 0.0;
        for &i in nz {
            s += row[i as usize] * delta[i as usize];
        }
        s
    }
    fn retro_finish(&self, acc: f64, _: Key, _: &mut Vars) -> f64 {
        acc
    }
    #[inline]
    fn copy_mac(&self, acc: &mut f64, w: f64, d: f64) {
        *acc += w * d;
    }
    fn copy_finish(&self, acc: f64, _: Key, _: &mut Vars) -> f64 {
        acc
    }
    fn passes(&self, m: f64) -> bool {
        m != 0.0 && m.abs() >= self.threshold
    }
    fn passes_delta(&self, d: f64) -> bool {
        d != 0.0 && d.abs() >= self.threshold
    }
    fn credit_add(&self, cj: f64, m: f64, _: &mut Vars) -> f64 {
        cj + m
    }
    fn update_row(
        &self,
        row: &mut [f64],
        delta: &[f64],
        nz: &[u32],
        r: f64,
        _: Key,
        _: u64,
        _: &mut Vars,
    ) -> u64 {
        for &i in nz {
            let i = i as usize;
            row[i] += self.lr * delta[i] * r;
        }
        0
    }
    fn update_one(&self, w: f64, d: f64, r: f64, _: Key, _: u64, _: &mut Vars) -> f64 {
        w + self.lr * d * r
    }
    fn bias_update(&self, b: f64, d: f64, _: Key, _: &mut Vars) -> f64 {
        b + self.lr * d
    }
}
