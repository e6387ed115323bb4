//! `accord formats`: number formats proposed for a network on a chip from the ranges its
//! variables take in a calibration run (the experiment is [`crate::experiments::formats`]).

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;

use super::nir;
use super::{TrainArgs, chip_model, emit, train_config};
use crate::data;
use crate::experiments::formats::{FormatsConfig, Start, propose};

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

/// The `accord train` options a calibration has no use for: it trains the `f64` reference
/// once, writes nothing but its report, and places nothing on the chip (whose formats it
/// reads).
const NOT_FOR_FORMATS: [&str; 13] = [
    "reference",
    "mode",
    "ticks",
    "encoding",
    "arith",
    "threads",
    "message_threshold",
    "placement",
    "no_duplicate_inputs",
    "plot",
    "force",
    "save",
    "resume",
];

/// Run `accord formats` (`given`: the options on the command line).
///
/// # Errors
/// Bad options (those of `accord train` a calibration does not use are named), data that does
/// not load, a net (`--load`, `--model`) that is not of the data, or a chip that does not open.
pub fn run(a: &FormatsArgs, given: &[String]) -> Result<ExitCode> {
    let cfg = FormatsConfig {
        quantile: a.quantile,
        calibration_samples: a.calibration_samples,
    };
    cfg.check()?;
    if let Some(id) = NOT_FOR_FORMATS.iter().find(|id| super::gave(given, id)) {
        bail!(
            "{} does not apply to accord formats (it calibrates the f64 reference's ranges \
             and proposes formats; it saves, plots and places nothing): drop it",
            super::flag(id)
        );
    }
    if matches!(a.train.rule, super::RuleArg::FeedbackAlignment) {
        bail!(
            "--rule feedback-alignment runs on a chip only; accord formats calibrates the f64 \
             reference (--rule balance or backprop)"
        );
    }
    super::check_split_seed(&a.train.data, given)?;
    // The net to calibrate: a saved one (--load), a NIR model's (--model), or a fresh one.
    let mut t = a.train.clone();
    let (start, _) = super::start_net(&mut t, given)?;
    let masks = match &t.model {
        Some(p) => nir::load_model(p, t.dt, None)?.chain.masks,
        None => Vec::new(),
    };
    let t = &t;
    let chip = chip_model(t)?;
    let split = data::load(&t.data, &data::default_data_dir(), t.split_seed)
        .with_context(|| format!("loading --data {}", t.data))?;
    let train = train_config(t);
    if let Some(net) = &start {
        let what = match (&t.load, &t.model) {
            (Some(p), _) => format!("--load {}", p.display()),
            (_, Some(p)) => format!("--model {}", p.display()),
            _ => "the net".to_string(),
        };
        super::fits_data(&net.sizes(), &what, &t.data, &split)?;
    }
    let overrides: Vec<(String, String)> = t
        .set
        .iter()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let report = propose(
        &cfg,
        &train,
        &split,
        &chip,
        &t.chip,
        &overrides,
        Start {
            net: start.as_ref(),
            masks: &masks,
        },
    )?;
    if t.json {
        emit(&format!("{}\n", serde_json::to_string_pretty(&report)?))?;
    } else {
        emit(&report.to_string())?;
    }
    Ok(ExitCode::SUCCESS)
}
