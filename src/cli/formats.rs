//! `accord formats`: number formats proposed for a network on a chip from the ranges its
//! variables take in a calibration run (the experiment is [`crate::experiments::formats`]).

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use super::{TrainArgs, chip_model, emit, train_config};
use crate::data;
use crate::experiments::formats::{FormatsConfig, propose};

/// `accord formats` options.
#[derive(Args, Debug, Clone)]
pub struct FormatsArgs {
    /// The run to calibrate (as for `accord train`: data, widths, activation, chip, overrides).
    #[command(flatten)]
    pub train: TrainArgs,
    /// The share of observed magnitudes each proposed format holds (the rest saturate).
    #[arg(long, default_value_t = 0.999)]
    pub quantile: f64,
    /// Training samples fired for the ranges after the reference has trained.
    #[arg(long, default_value_t = 2000)]
    pub calibration_samples: usize,
}

/// Run `accord formats`.
///
/// # Errors
/// Bad options, data that does not load, or a chip that does not open.
pub fn run(a: &FormatsArgs) -> Result<ExitCode> {
    let cfg = FormatsConfig {
        quantile: a.quantile,
        calibration_samples: a.calibration_samples,
    };
    cfg.check()?;
    let t = &a.train;
    let chip = chip_model(t)?;
    let split = data::load(&t.data, &data::default_data_dir(), t.split_seed)
        .with_context(|| format!("loading --data {}", t.data))?;
    let overrides: Vec<(String, String)> = t
        .set
        .iter()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let report = propose(&cfg, &train_config(t), &split, &chip, &t.chip, &overrides)?;
    if t.json {
        emit(&format!("{}\n", serde_json::to_string_pretty(&report)?))?;
    } else {
        emit(&report.to_string())?;
    }
    Ok(ExitCode::SUCCESS)
}
