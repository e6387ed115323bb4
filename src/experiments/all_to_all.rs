//! The all-to-all recipe on a chip: the recipe network of the modularity experiment
//! ([`Recipe`]), trained on a chip model (fixed point or float twin) beside the `f64` reference
//! with the same seed, rate and sample order; accuracy, convergence, energy per sample and the
//! block structure of both trained `W` (`accord all-to-all`).

use std::fmt;

use serde::Serialize;

use super::modularity::experiment::{self, Recipe, Structure};
use super::modularity::{ModularityError, Result};
use crate::chip::ChipModel;
use crate::data::Split;
use crate::emulator::{self, Arith, all_to_all::AllToAllRun};
use crate::error::at_least_one;

/// What to run.
#[derive(Clone, Debug)]
pub struct AllToAllConfig {
    /// The chip model.
    pub chip: ChipModel,
    /// Arithmetic on the chip.
    pub arith: Arith,
    /// Neurons (inputs and outputs included).
    pub n: usize,
    /// Learning rate.
    pub lr: f64,
    /// Epochs.
    pub epochs: usize,
    /// Seed (weights and sample order, shared by chip and reference).
    pub seed: u64,
    /// Train on the first `samples` training rows only (`None`: all).
    pub samples: Option<usize>,
}

/// The block structure of a trained `W`, as reported.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StructureFigures {
    /// Newman modularity `Q` of the detected partition.
    pub q: f64,
    /// Share of `Σ|w_ij|` inside the detected communities.
    pub within: f64,
    /// Its chance level.
    pub within_chance: f64,
    /// Share of `Σ|w_ij|` inside the input/hidden/output groups.
    pub group_within: f64,
}

impl From<&Structure> for StructureFigures {
    fn from(s: &Structure) -> Self {
        StructureFigures {
            q: s.q,
            within: s.within,
            within_chance: s.within_chance,
            group_within: s.group_within,
        }
    }
}

/// The `f64` reference's figures.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReferenceFigures {
    /// Final test accuracy.
    pub test_accuracy: f64,
    /// Test accuracy after each epoch.
    pub epochs: Vec<f64>,
}

/// Chip beside reference (serialised as `accord all-to-all --json` prints it).
#[derive(Clone, Debug, Serialize)]
pub struct AllToAllReport {
    /// The chip run.
    pub chip_run: AllToAllRun,
    /// Its trained `W`'s structure.
    pub chip_structure: StructureFigures,
    /// The `f64` reference.
    pub reference: ReferenceFigures,
    /// Its trained `W`'s structure.
    pub reference_structure: StructureFigures,
    /// Training and test rows, neurons, rate, epochs and seed (for the heading).
    #[serde(skip)]
    setup: (usize, usize, usize, f64, usize, u64),
}

/// The settings that do not depend on the chip: `samples` at least 1, `n` large enough for
/// `split`'s inputs and outputs and within the memory limit (a front end checks these before
/// it opens the chip).
///
/// # Errors
/// Naming `samples` or `n`.
pub fn check(n: usize, samples: Option<usize>, split: &Split) -> Result<()> {
    at_least_one("samples", samples)?;
    let recipe = Recipe {
        n,
        ..Recipe::default()
    };
    recipe.check(split.train.dim, split.train.n_classes)
}

/// Train the recipe net on the chip and on the `f64` reference (digits: `split`).
///
/// # Errors
/// A recipe value out of range (`n`, `samples`), a net the chip cannot hold or train, a
/// learning rate its format cannot hold.
pub fn run(cfg: &AllToAllConfig, split: &Split) -> Result<AllToAllReport> {
    check(cfg.n, cfg.samples, split)?;
    let mut split = split.clone();
    if let Some(k) = cfg.samples {
        let idx: Vec<usize> = (0..k.min(split.train.len())).collect();
        split.train = split.train.subset(&idx);
    }
    let recipe = Recipe {
        n: cfg.n,
        ..Recipe::default()
    };
    let (dim, classes) = (split.train.dim, split.train.n_classes);
    let chip = &cfg.chip;
    // Placed before the net is built (its n × n weights): an all-to-all group holds dense
    // rows, so its placement does not depend on the mask.
    let graph = crate::graph::Graph::all_to_all(recipe.n, dim, classes, None)
        .map_err(|e| map_error(chip, recipe.n, e.into()))?;
    crate::mapping::map_graph(&graph, chip, crate::mapping::MapOptions::default())
        .map_err(|e| map_error(chip, recipe.n, e))?;
    if cfg.arith == Arith::Fixed {
        emulator::lr_raw(chip, cfg.lr)?;
    }
    let init = recipe.init_net(dim, classes, cfg.seed);
    let chip_run = emulator::all_to_all::train_on_chip(
        chip,
        cfg.arith,
        &init,
        recipe.loss,
        &split,
        recipe.chip_schedule(cfg.lr, cfg.epochs, cfg.seed),
    )?;
    let reference =
        experiment::train_all_to_all(&recipe, &split, cfg.lr, cfg.epochs, cfg.seed, &|| {})?;
    let analyse =
        |w: &[f64]| experiment::analyse(w, &init.mask, recipe.n, dim, classes, cfg.seed, 4);
    let chip_structure = (&analyse(&chip_run.weights)?).into();
    let reference_structure = (&analyse(&reference.net.w)?).into();
    Ok(AllToAllReport {
        chip_run,
        chip_structure,
        reference: ReferenceFigures {
            test_accuracy: reference.test_accuracy,
            epochs: reference.epochs.iter().map(|e| e.test_accuracy).collect(),
        },
        reference_structure,
        setup: (
            split.train.len(),
            split.test.len(),
            recipe.n,
            cfg.lr,
            cfg.epochs,
            cfg.seed,
        ),
    })
}

/// A placement error of the recipe net of `n` neurons on `chip`, as the emulator words it.
fn map_error(chip: &ChipModel, n: usize, source: crate::mapping::MapError) -> ModularityError {
    ModularityError::Chip(emulator::EmuError::Map {
        sizes: vec![n],
        chip: chip.name.clone(),
        source,
    })
}

impl fmt::Display for AllToAllReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.chip_run;
        let (train, test, n, lr, epochs, seed) = self.setup;
        writeln!(
            f,
            "accord all-to-all: digits ({train} train / {test} test), N = {n}, η = {lr}, {epochs} epoch(s), seed {seed}; chip '{}' ({:?}, {} cores) vs the f64 reference",
            c.chip, c.arith, c.cores
        )?;
        writeln!(f, "{:>5}  {:>10}  {:>10}", "epoch", "chip acc", "ref acc")?;
        for (e, (a, r)) in c
            .test_accuracy
            .iter()
            .zip(&self.reference.epochs)
            .enumerate()
        {
            writeln!(f, "{:>5}  {:>9.2}%  {:>9.2}%", e + 1, 100.0 * a, 100.0 * r)?;
        }
        writeln!(
            f,
            "chip relaxation: {:.1} firing and {:.1} credit rounds per sample; {} firing and {} credit relaxations hit the cap (updates skipped); tolerances {:.2e} / {:.2e}",
            c.mean_fire_rounds,
            c.mean_credit_rounds,
            c.fire_failures,
            c.credit_failures,
            c.tolerances.0,
            c.tolerances.1
        )?;
        let unpriced = &c.training.breakdown.unpriced;
        writeln!(
            f,
            "energy per sample on '{}': training {:.1} nJ (retrograde share {:.1}%), inference {:.1} nJ; modelled time {:.1} / {:.1} µs; unpriced: {}",
            c.chip,
            c.training.dynamic_pj_per_sample / 1e3,
            100.0 * c.training.retro_share,
            c.inference.dynamic_pj_per_sample / 1e3,
            c.training.time_ns_per_sample / 1e3,
            c.inference.time_ns_per_sample / 1e3,
            if unpriced.is_empty() {
                "none".to_string()
            } else {
                unpriced.join(", ")
            }
        )?;
        writeln!(
            f,
            "format events (saturations+wraps+invalid): {}",
            c.format_events.overflow_events()
        )?;
        writeln!(
            f,
            "{:>10}  {:>7}  {:>7}  {:>7}  {:>13}",
            "", "Q", "within", "chance", "group within"
        )?;
        for (name, s) in [
            ("chip", &self.chip_structure),
            ("reference", &self.reference_structure),
        ] {
            writeln!(
                f,
                "{name:>10}  {:>7.4}  {:>7.3}  {:>7.3}  {:>13.3}",
                s.q, s.within, s.within_chance, s.group_within
            )?;
        }
        Ok(())
    }
}
