//! `accord all-to-all`: the all-to-all recipe network of `accord modules`, trained on a chip
//! model (fixed point or float twin) beside the `f64` reference with the same seed, rate and
//! sample order; accuracy, convergence, energy per sample and the block structure of both `W`.

use super::{ArithArg, emit, parse_positive};
use crate::data;
use crate::experiments::all_to_all::{self, AllToAllConfig};
use anyhow::{Context, Result};
use clap::Args;
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
    let split = data::load("digits", &data::default_data_dir(), 0).context("loading digits")?;
    all_to_all::check(a.n, a.samples, &split)?;
    let chip = crate::chip::open(&a.chip).map_err(|e| anyhow::anyhow!("--chip {}: {e}", a.chip))?;
    let cfg = AllToAllConfig {
        chip,
        arith: a.arith.into(),
        n: a.n,
        lr: a.lr,
        epochs: a.epochs as usize,
        seed: a.seed,
        samples: a.samples,
    };
    let report = all_to_all::run(&cfg, &split)?;
    if a.json {
        emit(&format!("{}\n", serde_json::to_string_pretty(&report)?))?;
    } else {
        emit(&report.to_string())?;
    }
    Ok(ExitCode::SUCCESS)
}
