//! Probe 2, the equilibrium requirement: plasticity before the credit has settled.
//!
//! Two ways to break it, each against the number of retrograde steps `k`:
//!
//! * **truncate** — plasticity once, after `k` synchronous retrograde steps from zero credit.
//!   In an `m`-layer net the first `m − 1 − k` synaptic layers then see zero credit; from
//!   `k = m − 1` on the update is exact.
//! * **interleave** — plasticity after each of the steps `0, 1, …, k` at rate `η / (k + 1)`:
//!   weights change while the credits still move, and each change uses the credits reached
//!   so far. Even at `k = m − 1` the lower layers get only part of their gradient.
//!
//! The all-to-all network has no depth: its credit iteration converges geometrically, so `k`
//! is compared with the steps the relaxation takes to reach tolerance (the `settled` row).

use super::Result;
use super::{
    Cos, Plan, ProbeConfig, a2a_accuracy, a2a_cosine, layered_accuracy, layered_cosine, train_a2a,
    train_layered,
};
use crate::data::Split;
use crate::error::Invalid;
use serde::Serialize;

/// Step counts of the all-to-all sweep.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EquilibriumConfig {
    /// Retrograde steps `k` for the all-to-all network (the layered one uses `0..m`).
    pub a2a_steps: Vec<usize>,
}

impl Default for EquilibriumConfig {
    fn default() -> Self {
        EquilibriumConfig {
            a2a_steps: vec![0, 1, 2, 3, 5, 8, 13, 21],
        }
    }
}

impl EquilibriumConfig {
    /// Check the values; errors name the field.
    pub fn check(&self) -> Result<()> {
        if let Some(k) = self.a2a_steps.iter().find(|k| **k > 100_000) {
            return Err(
                Invalid::new("a2a_steps", format!(": {k} is not allowed (0..=100000)")).into(),
            );
        }
        Ok(())
    }
}

/// One row: a plan and what it did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EquilibriumRow {
    /// `"truncate"`, `"interleave"` or `"settled"`.
    pub mode: String,
    /// Retrograde steps `k` (`None` for `settled`).
    pub k: Option<usize>,
    /// Test accuracy after training with this plan.
    pub accuracy: f64,
    /// Mean gradient cosine on the initial network.
    pub cos_init: f64,
    /// The same over the synapses onto hidden neurons only.
    pub cos_hidden_init: f64,
    /// Mean gradient cosine on the network this plan trained.
    pub cos_final: f64,
    /// Samples whose update was skipped.
    pub skipped: usize,
}

/// The equilibrium probe's result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EquilibriumReport {
    /// `"equilibrium"`.
    pub probe: String,
    /// Shared configuration.
    pub config: ProbeConfig,
    /// Synaptic layers `m` of the layered network.
    pub layered_depth: usize,
    /// Step counts of the all-to-all sweep.
    pub steps: EquilibriumConfig,
    /// Layered rows: settled, then truncate and interleave for `k = 0..m`.
    pub layered: Vec<EquilibriumRow>,
    /// All-to-all rows: settled, then truncate and interleave for each `k`.
    pub all_to_all: Vec<EquilibriumRow>,
}

fn plans(ks: &[usize]) -> Vec<Plan> {
    let mut p = vec![Plan::Settled];
    p.extend(ks.iter().map(|&k| Plan::Truncate(k)));
    p.extend(ks.iter().map(|&k| Plan::Interleave(k)));
    p
}

fn row(plan: Plan, accuracy: f64, cos0: Cos, cos_final: f64, skipped: usize) -> EquilibriumRow {
    let (mode, k) = match plan {
        Plan::Settled => ("settled", None),
        Plan::Truncate(k) => ("truncate", Some(k)),
        Plan::Interleave(k) => ("interleave", Some(k)),
    };
    EquilibriumRow {
        mode: mode.into(),
        k,
        accuracy,
        cos_init: cos0.all,
        cos_hidden_init: cos0.hidden,
        cos_final,
        skipped,
    }
}

/// Run the equilibrium probe.
pub fn run(cfg: &ProbeConfig, e: &EquilibriumConfig, split: &Split) -> Result<EquilibriumReport> {
    cfg.check(split)?;
    e.check()?;
    let split = &cfg.limit(split);
    let m = cfg.hidden.len() + 1;
    let layered_ks: Vec<usize> = (0..m).collect();
    let jobs: Vec<(bool, Plan)> = plans(&layered_ks)
        .into_iter()
        .map(|p| (false, p))
        .chain(plans(&e.a2a_steps).into_iter().map(|p| (true, p)))
        .collect();
    let rows = crate::parallel::over(&jobs, cfg.threads, &|&(a2a, plan)| {
        if a2a {
            let mut net = cfg.a2a_net(split);
            let p = cfg.probe_samples;
            let cos_init = a2a_cosine(&net, &split.test, p, &cfg.recipe, cfg.a2a_lr, plan);
            let skipped = train_a2a(
                &mut net,
                &split.train,
                &cfg.recipe,
                cfg.a2a_lr,
                cfg.epochs,
                cfg.seed,
                plan,
            );
            let acc = a2a_accuracy(&net, &split.test, &cfg.recipe);
            let cos_final = a2a_cosine(&net, &split.test, p, &cfg.recipe, cfg.a2a_lr, plan).all;
            row(plan, acc, cos_init, cos_final, skipped)
        } else {
            let mut net = cfg.layered_net(split);
            let p = cfg.probe_samples;
            let cos_init = layered_cosine(&net, &split.test, p, cfg.layered_lr, plan);
            train_layered(
                &mut net,
                &split.train,
                cfg.layered_lr,
                cfg.epochs,
                cfg.seed,
                plan,
            );
            let acc = layered_accuracy(&net, &split.test);
            let cos_final = layered_cosine(&net, &split.test, p, cfg.layered_lr, plan).all;
            row(plan, acc, cos_init, cos_final, 0)
        }
    });
    let (layered, all_to_all): (Vec<_>, Vec<_>) =
        rows.into_iter().zip(&jobs).partition(|(_, (a2a, _))| !*a2a);
    Ok(EquilibriumReport {
        probe: "equilibrium".into(),
        config: cfg.clone(),
        layered_depth: m,
        steps: e.clone(),
        layered: layered.into_iter().map(|(r, _)| r).collect(),
        all_to_all: all_to_all.into_iter().map(|(r, _)| r).collect(),
    })
}

impl std::fmt::Display for EquilibriumReport {
    /// The equilibrium probe's table.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = self;
        writeln!(
            f,
            "\nprobe equilibrium — plasticity after k retrograde steps (truncate) or during them (interleave)"
        )?;
        writeln!(
            f,
            "layered depth m = {} (exact from k = m − 1 = {}); all-to-all: the settled row relaxes to tolerance {:e}",
            r.layered_depth,
            r.layered_depth - 1,
            r.config.recipe.credit_tol
        )?;
        for (name, rows) in [("layered", &r.layered), ("all-to-all", &r.all_to_all)] {
            writeln!(
                f,
                "{:<11} {:<11} {:>5} | {:>7} {:>7} {:>8} {:>7} {:>7}",
                name, "mode", "k", "acc", "cos₀", "cos₀ hid", "cos_T", "skipped"
            )?;
            for x in rows.iter() {
                writeln!(
                    f,
                    "{:<11} {:<11} {:>5} | {:>6.1}% {:>7.4} {:>8.4} {:>7.4} {:>7}",
                    "",
                    x.mode,
                    x.k.map_or("—".into(), |k| k.to_string()),
                    100.0 * x.accuracy,
                    x.cos_init,
                    x.cos_hidden_init,
                    x.cos_final,
                    x.skipped
                )?;
            }
        }
        Ok(())
    }
}
