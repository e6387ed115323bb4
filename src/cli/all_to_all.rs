//! `accord all-to-all`: the all-to-all recipe network of `accord modules`, trained on a chip
//! model (fixed point or float twin) beside the `f64` reference with the same seed, rate and
//! sample order; accuracy, convergence, energy per sample and the block structure of both `W`.

use super::{ArithArg, emit, parse_positive};
use crate::data;
use crate::emulator::{self, general};
use crate::experiments::modularity::experiment::{self, Recipe};
use anyhow::{Context, Result, bail};
use clap::Args;
use std::fmt::Write as _;
use std::process::ExitCode;

/// `accord all-to-all` options.
#[derive(Args, Debug, Clone)]
pub struct AllToAllArgs {
    /// Chip model (shipped name or TOML file).
    #[arg(long, default_value = "balance-core")]
    pub chip: String,
    /// Arithmetic on the chip.
    #[arg(long, value_enum, default_value = "fixed")]
    pub arith: ArithArg,
    /// Neurons (64 inputs and 10 outputs of digits included).
    #[arg(long, default_value = "300")]
    pub n: usize,
    /// Learning rate.
    #[arg(long, default_value = "0.1", value_parser = parse_positive)]
    pub lr: f64,
    /// Epochs.
    #[arg(long, default_value = "3", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub epochs: u32,
    /// Seed (weights and sample order, shared by chip and reference).
    #[arg(long, default_value = "1")]
    pub seed: u64,
    /// Train on the first K training samples only (all by default).
    #[arg(long)]
    pub samples: Option<usize>,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// Run `accord all-to-all`.
///
/// # Errors
/// Bad values, a chip that cannot train or hold the net.
pub fn run(a: &AllToAllArgs) -> Result<ExitCode> {
    let mut split = data::load("digits", &data::default_data_dir(), 0).context("loading digits")?;
    if let Some(k) = a.samples {
        if k == 0 {
            bail!("--samples must be at least 1");
        }
        let idx: Vec<usize> = (0..k.min(split.train.len())).collect();
        split.train = split.train.subset(&idx);
    }
    let recipe = Recipe {
        n: a.n,
        ..Recipe::default()
    };
    let (dim, classes) = (split.train.dim, split.train.n_classes);
    recipe.check(dim, classes)?;
    let chip = crate::chip::open(&a.chip).map_err(|e| anyhow::anyhow!("--chip {}: {e}", a.chip))?;
    crate::mapping::all_to_all(&chip, recipe.n)?;
    if matches!(a.arith, ArithArg::Fixed) {
        emulator::lr_raw(&chip, a.lr).map_err(|e| anyhow::anyhow!("--lr {}: {e}", a.lr))?;
    }
    let epochs = a.epochs as usize;
    let init = recipe.init_net(dim, classes, a.seed);
    let arith: emulator::Arith = a.arith.into();
    let on_chip = general::train_on_chip(
        &chip,
        arith,
        &init,
        recipe.loss,
        &split,
        a.lr,
        epochs,
        a.seed,
        (recipe.fire_tol, recipe.credit_tol),
        (recipe.fire_max_iter, recipe.credit_max_steps),
    )?;
    let reference = experiment::train_all_to_all(&recipe, &split, a.lr, epochs, a.seed, &|| {})?;
    let n = recipe.n;
    let analyse = |w: &[f64]| experiment::analyse(w, &init.mask, n, dim, classes, a.seed, 4);
    let s_chip = analyse(&on_chip.weights).map_err(|e| anyhow::anyhow!("{e}"))?;
    let s_ref = analyse(&reference.net.w).map_err(|e| anyhow::anyhow!("{e}"))?;
    if a.json {
        let doc = serde_json::json!({
            "chip_run": on_chip,
            "chip_structure": { "q": s_chip.q, "within": s_chip.within, "within_chance": s_chip.within_chance,
                                "group_within": s_chip.group_within },
            "reference": { "test_accuracy": reference.test_accuracy,
                           "epochs": reference.epochs.iter().map(|e| e.test_accuracy).collect::<Vec<_>>() },
            "reference_structure": { "q": s_ref.q, "within": s_ref.within, "within_chance": s_ref.within_chance,
                                     "group_within": s_ref.group_within },
        });
        emit(&format!("{}\n", serde_json::to_string_pretty(&doc)?))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut o = String::new();
    let _ = writeln!(
        o,
        "accord all-to-all: digits ({} train / {} test), N = {n}, η = {}, {epochs} epoch(s), seed {}; chip '{}' ({:?}, {} cores) vs the f64 reference",
        split.train.len(),
        split.test.len(),
        a.lr,
        a.seed,
        on_chip.chip,
        on_chip.arith,
        on_chip.cores
    );
    let _ = writeln!(o, "{:>5}  {:>10}  {:>10}", "epoch", "chip acc", "ref acc");
    for (e, (c, r)) in on_chip
        .test_accuracy
        .iter()
        .zip(&reference.epochs)
        .enumerate()
    {
        let _ = writeln!(
            o,
            "{:>5}  {:>9.2}%  {:>9.2}%",
            e + 1,
            100.0 * c,
            100.0 * r.test_accuracy
        );
    }
    let _ = writeln!(
        o,
        "chip relaxation: {:.1} firing and {:.1} credit rounds per sample; {} firing and {} credit relaxations hit the cap (updates skipped); tolerances {:.2e} / {:.2e}",
        on_chip.mean_fire_rounds,
        on_chip.mean_credit_rounds,
        on_chip.fire_failures,
        on_chip.credit_failures,
        on_chip.tolerances.0,
        on_chip.tolerances.1
    );
    let _ = writeln!(
        o,
        "energy per sample on '{}': training {:.1} nJ (retrograde share {:.1}%), inference {:.1} nJ; modelled time {:.1} / {:.1} µs; unpriced: {}",
        on_chip.chip,
        on_chip.training.dynamic_pj_per_sample / 1e3,
        100.0 * on_chip.training.retro_share,
        on_chip.inference.dynamic_pj_per_sample / 1e3,
        on_chip.training.time_ns_per_sample / 1e3,
        on_chip.inference.time_ns_per_sample / 1e3,
        if on_chip.training.breakdown.unpriced.is_empty() {
            "none".to_string()
        } else {
            on_chip.training.breakdown.unpriced.join(", ")
        }
    );
    let _ = writeln!(
        o,
        "format events (saturations+wraps+invalid): {}",
        on_chip.format_events.overflow_events()
    );
    let _ = writeln!(
        o,
        "{:>10}  {:>7}  {:>7}  {:>7}  {:>13}",
        "", "Q", "within", "chance", "group within"
    );
    for (name, s) in [("chip", &s_chip), ("reference", &s_ref)] {
        let _ = writeln!(
            o,
            "{name:>10}  {:>7.4}  {:>7.3}  {:>7.3}  {:>13.3}",
            s.q, s.within, s.within_chance, s.group_within
        );
    }
    emit(&o)?;
    Ok(ExitCode::SUCCESS)
}
