//! Probe 3, instability: the credit without its output clamp.
//!
//! With the clamp, the external credit `e = −∂L/∂r` is injected at the outputs on every
//! retrograde step and the credit settles at the recurrent-backprop gradient whenever the
//! spectral radius `ρ` of `Wᵀ diag(g)` is below 1. Without it, `e` is injected once and the
//! credit has no source: it decays like `ρᵏ` (vanishes) or grows like `ρᵏ` (diverges). This
//! probe measures, per step, the credit norm, its growth rate, and the step at which it left
//! the representable range (by default the `f64` range, `[f64::MIN_POSITIVE, f64::MAX]`).
//!
//! * **Layered** nets are nilpotent (`ρ = 0`): the unclamped credit passes down the `m`
//!   layers, reaches the input layer at step `m` and is exactly zero at step `m + 1`.
//! * **All-to-all** nets are swept over a weight gain (`W ← gain · W`, firing relaxed again).
//!   The credit matrix has the spectrum of the firing Jacobian, so wherever plain firing
//!   iteration settles, `ρ < 1` and the unclamped credit vanishes. Damped firing (default
//!   `α = 0.5`) also settles at states that plain iteration cannot hold; there `ρ ≥ 1` and
//!   the credit diverges — clamped or not.

use super::Result;
use super::{ProbeConfig, layered_as_general};
use crate::data::Split;
use crate::error::Invalid;
use crate::rule::{CreditOptions, GeneralNet, Settle, norm2};
use serde::Serialize;

/// The clamp probe's sweep.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClampConfig {
    /// Gains applied to the all-to-all weights.
    pub gains: Vec<f64>,
    /// Damping of the firing relaxation (credit is never damped).
    pub damping: f64,
    /// Firing iteration cap.
    pub fire_max_iter: usize,
    /// Retrograde step cap.
    pub max_steps: usize,
    /// Vanishing bound relative to the injected credit norm (`None`: `f64::MIN_POSITIVE`
    /// absolute).
    pub vanish: Option<f64>,
    /// Divergence bound relative to the injected credit norm (`None`: `f64::MAX` absolute).
    pub diverge: Option<f64>,
    /// Test row whose firing state is probed.
    pub sample: usize,
}

impl Default for ClampConfig {
    fn default() -> Self {
        ClampConfig {
            gains: vec![1.0, 4.0, 8.0, 16.0, 32.0, 64.0],
            damping: 0.5,
            fire_max_iter: 5000,
            max_steps: 100_000,
            vanish: None,
            diverge: None,
            sample: 0,
        }
    }
}

impl ClampConfig {
    /// Check the values; errors name the field.
    pub fn check(&self, test_rows: usize) -> Result<()> {
        if self.gains.is_empty() {
            return Err(Invalid::new("gains", " needs at least one gain").into());
        }
        if let Some(g) = self.gains.iter().find(|g| !(g.is_finite() && **g > 0.0)) {
            return Err(Invalid::new(
                "gains",
                format!(": {g} is not allowed (every gain must be finite and > 0)"),
            )
            .into());
        }
        if !(self.damping > 0.0 && self.damping <= 1.0) {
            return Err(Invalid::new(
                "damping",
                format!(" {} is not allowed (must be in (0, 1])", self.damping),
            )
            .into());
        }
        if self.max_steps == 0 {
            return Err(Invalid::new("max_steps", " must be at least 1").into());
        }
        if let Some(v) = self.vanish
            && !(v > 0.0 && v < 1.0)
        {
            return Err(
                Invalid::new("vanish", format!(" {v} is not allowed (must be in (0, 1))")).into(),
            );
        }
        if let Some(d) = self.diverge
            && !(d > 1.0 && d.is_finite())
        {
            return Err(Invalid::new(
                "diverge",
                format!(" {d} is not allowed (must be finite and > 1)"),
            )
            .into());
        }
        if self.sample >= test_rows {
            return Err(Invalid::new(
                "sample",
                format!(
                    " {} is out of range (the test set has {test_rows} rows)",
                    self.sample
                ),
            )
            .into());
        }
        Ok(())
    }
}

/// One row: a network at one gain, its credit with and without clamp.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClampRow {
    /// `"layered"` or `"all-to-all"`.
    pub net: String,
    /// Weight gain (1 for the layered net).
    pub gain: f64,
    /// How the firing relaxation ended.
    pub fire: Settle,
    /// Firing iterations.
    pub fire_iterations: usize,
    /// Spectral radius of the credit iteration at the firing state.
    pub radius: f64,
    /// How the clamped credit ended.
    pub clamped: Settle,
    /// Clamped credit steps.
    pub clamped_steps: usize,
    /// How the unclamped credit ended.
    pub unclamped: Settle,
    /// Unclamped credit steps.
    pub steps: usize,
    /// Geometric-mean growth factor of the unclamped norm per step (second half of the run).
    pub growth_rate: Option<f64>,
    /// Step at which the unclamped credit left the representable range.
    pub left_range_at: Option<usize>,
    /// Injected credit norm `‖e‖`.
    pub initial_norm: f64,
    /// Last finite norm.
    pub final_norm: f64,
    /// `(step, ‖c‖)`, every step up to 2000 points, then evenly thinned.
    pub norms: Vec<(usize, f64)>,
}

/// The clamp probe's result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClampReport {
    /// `"clamp"`.
    pub probe: String,
    /// Shared configuration.
    pub config: ProbeConfig,
    /// The sweep.
    pub sweep: ClampConfig,
    /// Layered network (one row).
    pub layered: Vec<ClampRow>,
    /// All-to-all network, one row per gain.
    pub all_to_all: Vec<ClampRow>,
}

fn thin(norms: &[f64]) -> Vec<(usize, f64)> {
    let stride = norms.len().div_ceil(2000).max(1);
    let mut v: Vec<(usize, f64)> = norms.iter().copied().enumerate().step_by(stride).collect();
    if let Some(last) = norms.len().checked_sub(1)
        && v.last().map(|p| p.0) != Some(last)
    {
        v.push((last, norms[last]));
    }
    v
}

/// Probe one network at the firing state of `x`.
pub fn probe_net(
    net: &GeneralNet,
    x: &[f64],
    label: usize,
    name: &str,
    gain: f64,
    cfg: &ProbeConfig,
    c: &ClampConfig,
) -> ClampRow {
    let relax = crate::rule::RelaxOptions {
        damping: c.damping,
        max_iter: c.fire_max_iter,
        ..cfg.recipe.relax_options()
    };
    let loss = cfg.recipe.loss;
    let mut s = net.new_state();
    let fire = net.fire(x, &mut s, &relax);
    let radius = net.credit_spectral_radius(&s);
    let clamped = net.credit(
        &mut s,
        label,
        loss,
        &CreditOptions {
            max_steps: c.max_steps,
            ..cfg.recipe.credit_options()
        },
    );
    let out0 = net.n - net.n_out;
    let mut e = vec![0.0; net.n_out];
    loss.output_credit(&s.r[out0..], label, &mut e);
    let norm0 = norm2(&e);
    let (vanish, diverge) = if norm0 > 0.0 {
        (
            c.vanish.unwrap_or(f64::MIN_POSITIVE / norm0),
            c.diverge.unwrap_or(f64::MAX / norm0),
        )
    } else {
        (0.0, f64::INFINITY)
    };
    let free = net.credit(
        &mut s,
        label,
        loss,
        &CreditOptions {
            clamp: false,
            max_steps: c.max_steps,
            vanish,
            diverge,
            ..cfg.recipe.credit_options()
        },
    );
    ClampRow {
        net: name.into(),
        gain,
        fire: fire.settle,
        fire_iterations: fire.iterations,
        radius,
        clamped: clamped.settle,
        clamped_steps: clamped.steps,
        unclamped: free.settle,
        steps: free.steps,
        growth_rate: free.growth_rate,
        left_range_at: free.left_range_at,
        initial_norm: norm0,
        final_norm: free.norms.last().copied().unwrap_or(norm0),
        norms: thin(&free.norms),
    }
}

/// Run the clamp probe (on the initial networks; no training).
pub fn run(cfg: &ProbeConfig, c: &ClampConfig, split: &Split) -> Result<ClampReport> {
    cfg.check(split)?;
    let split = &cfg.limit(split);
    c.check(split.test.len())?;
    let (x, label) = (split.test.row(c.sample), split.test.labels[c.sample]);
    let layered = layered_as_general(&cfg.layered_net(split))?;
    // The layered net has linear outputs with cross-entropy.
    let mut lcfg = cfg.clone();
    lcfg.recipe.loss = crate::rule::Loss::CrossEntropy;
    let layered_row = probe_net(&layered, x, label, "layered", 1.0, &lcfg, c);
    let base = cfg.a2a_net(split);
    let rows = crate::parallel::over(&c.gains, cfg.threads, &|&gain| {
        let mut net = base.clone();
        net.w.iter_mut().for_each(|w| *w *= gain);
        probe_net(&net, x, label, "all-to-all", gain, cfg, c)
    });
    Ok(ClampReport {
        probe: "clamp".into(),
        config: cfg.clone(),
        sweep: c.clone(),
        layered: vec![layered_row],
        all_to_all: rows,
    })
}

impl std::fmt::Display for ClampReport {
    /// The clamp probe's table.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = self;
        writeln!(
            f,
            "\nprobe clamp — output credit injected once, not held (test row {}; all-to-all N = {}, firing damping {}; range {})",
            r.sweep.sample,
            r.config.recipe.n,
            r.sweep.damping,
            match (r.sweep.vanish, r.sweep.diverge) {
                (None, None) => "f64".to_string(),
                (v, d) => format!(
                    "[{} , {}] × ‖c₀‖",
                    v.map_or("f64 min".into(), |x| format!("{x:e}")),
                    d.map_or("f64 max".into(), |x| format!("{x:e}"))
                ),
            }
        )?;
        writeln!(
            f,
            "{:<11} {:>5} | {:>13} {:>6} | {:>22} | {:>10} {:>6} {:>9} {:>8} {:>10}",
            "net",
            "gain",
            "firing",
            "ρ",
            "clamped credit",
            "unclamped",
            "steps",
            "growth/st",
            "left at",
            "last ‖c‖"
        )?;
        for x in r.layered.iter().chain(&r.all_to_all) {
            writeln!(
                f,
                "{:<11} {:>5} | {:>13} {:>6.3} | {:>22} | {:>10} {:>6} {:>9} {:>8} {:>10.3e}",
                x.net,
                x.gain,
                format!("{} ({})", x.fire, x.fire_iterations),
                x.radius,
                format!("{} ({} steps)", x.clamped, x.clamped_steps),
                x.unclamped,
                x.steps,
                x.growth_rate.map_or("—".into(), |g| format!("{g:.4}")),
                x.left_range_at.map_or("—".into(), |s| s.to_string()),
                x.final_norm
            )?;
        }
        Ok(())
    }
}
