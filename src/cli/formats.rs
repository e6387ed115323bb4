//! `accord formats`: number formats proposed for a network on a chip from the ranges its
//! variables take in a calibration run (issue 11).
//!
//! The calibration is the `f64` reference trained with the run's configuration: the training
//! samples (up to `--calibration-samples`) are fired and their credit relaxed on the initial
//! net (where errors, credits and `δ` are largest) and on the trained one (where weights and
//! inputs are), and the magnitudes of `u` (membrane), `r` (rate), `c` (credit), `δ` and the
//! trained weights are collected.
//! For each variable the proposal keeps the chip's width and gives the integer part just
//! enough to hold the `--quantile` of the observed magnitudes with a 10 % margin; the expected
//! saturation rate is the share of observed values that fall outside it (beside the chip's
//! current format's). The proposal is checked by the chip's design-rule check and printed as
//! `--set` lines.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;

use super::{TrainArgs, chip_model, emit, train_config};
use crate::data;
use crate::rule::{LayeredNet, Steps};
use crate::train::TrainConfig;

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

/// One variable's observed range and proposed format.
#[derive(Serialize, Debug)]
struct Row {
    variable: &'static str,
    key: &'static str,
    observed_max: f64,
    quantile_value: f64,
    current: String,
    current_saturation_rate: f64,
    proposed_frac: i64,
    proposed: String,
    expected_saturation_rate: f64,
}

#[derive(Serialize, Debug)]
struct Report {
    reference_test_accuracy: f64,
    samples: usize,
    quantile: f64,
    rows: Vec<Row>,
    set_lines: Vec<String>,
    /// The chip's design-rule check of the proposal (`None`: it passes).
    design_rule_check: Option<String>,
}

/// The share of `v` (magnitudes) at or above `limit`.
fn above(v: &[f64], limit: f64) -> f64 {
    v.iter().filter(|&&x| x >= limit).count() as f64 / v.len().max(1) as f64
}

/// Run `accord formats`.
///
/// # Errors
/// Bad options, data that does not load, or a chip that does not open.
pub fn run(a: &FormatsArgs) -> Result<ExitCode> {
    if !(a.quantile > 0.0 && a.quantile <= 1.0) {
        anyhow::bail!("--quantile {} is not in (0, 1]", a.quantile);
    }
    if a.calibration_samples == 0 {
        anyhow::bail!("--calibration-samples must be at least 1");
    }
    let t = &a.train;
    let chip = chip_model(t)?;
    let split = data::load(&t.data, &data::default_data_dir(), t.split_seed)
        .with_context(|| format!("loading --data {}", t.data))?;
    let cfg = train_config(t);
    let (report, net) = crate::train::train(&cfg, &split, None);
    let n = split.train.len().min(a.calibration_samples);
    let [u, r, c, d] = magnitudes(&cfg, &split, &net, n);
    let w: Vec<f64> = net
        .layers
        .iter()
        .flat_map(|l| l.w.iter().chain(&l.b))
        .map(|x| x.abs())
        .collect();
    let f = &chip.formats;
    let vars: [(&str, &str, Vec<f64>, accord_firmware::arith::Format); 5] = [
        ("u (membrane)", "membrane", u, f.membrane),
        ("r (rate)", "rate", r, f.rate),
        ("c (credit)", "credit", c, f.credit),
        ("δ (delta)", "delta", d, f.delta),
        ("w (weights, biases)", "weight", w, f.weight),
    ];
    let (rows, sets) = propose(vars, a.quantile);
    let drc = crate::chip::open_with(&t.chip, &{
        let mut all: Vec<(String, String)> = t
            .set
            .iter()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        all.extend(sets.iter().cloned());
        all
    })
    .err()
    .map(|e| e.to_string());
    let out = Report {
        reference_test_accuracy: report.test_accuracy,
        samples: n,
        quantile: a.quantile,
        rows,
        set_lines: sets.iter().map(|(k, v)| format!("--set {k}={v}")).collect(),
        design_rule_check: drc,
    };
    if t.json {
        emit(&format!("{}\n", serde_json::to_string_pretty(&out)?))?;
    } else {
        emit(&render(&out, &chip.name))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// |u|, |r|, |c| and |δ| over the first `n` training samples, on the initial net (largest
/// errors, so largest credits and δ) and on the trained `net` (largest weights and inputs).
fn magnitudes(cfg: &TrainConfig, split: &data::Split, net: &LayeredNet, n: usize) -> [Vec<f64>; 4] {
    let (mut u, mut r, mut c, mut d) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // States at the start of training (largest errors, so largest credits and δ) and at the
    // end (largest weights and inputs).
    let start = cfg.init_net(split.train.dim, split.train.n_classes);
    let m = net.depth();
    let readout = net
        .layers
        .last()
        .is_some_and(|l| l.act == crate::rule::Activation::Identity);
    let hidden_rates = if readout { m - 1 } else { m };
    for phase in [&start, net] {
        let mut s = phase.new_state();
        for i in 0..n {
            phase.fire(split.train.row(i), &mut s);
            phase.credit(
                &mut s,
                split.train.labels[i],
                cfg.loss,
                Steps::UntilSettled,
                true,
            );
            u.extend(s.u.iter().flatten().map(|x| x.abs()));
            // A linear read-out's values stay in the membrane format: rates are the hidden
            // ones (and the outputs' when they are not a read-out).
            r.extend(s.r[1..=hidden_rates].iter().flatten().map(|x| x.abs()));
            c.extend(s.c[1..].iter().flatten().map(|x| x.abs()));
            d.extend(s.delta.iter().flatten().map(|x| x.abs()));
        }
    }
    [u, r, c, d]
}

/// Per variable, its observed range, the format in force and the split proposed so that the
/// `quantile` of its magnitudes fits (with 10 % headroom); the `--set` keys that change.
#[allow(clippy::type_complexity)]
fn propose(
    vars: [(
        &'static str,
        &'static str,
        Vec<f64>,
        accord_firmware::arith::Format,
    ); 5],
    quantile: f64,
) -> (Vec<Row>, Vec<(String, String)>) {
    let mut rows = Vec::new();
    let mut sets = Vec::new();
    for (variable, key, mut v, fmt) in vars {
        v.sort_by(f64::total_cmp);
        let max = v.last().copied().unwrap_or(0.0);
        let k = ((v.len() as f64 * quantile).ceil() as usize).clamp(1, v.len().max(1)) - 1;
        let q = v.get(k).copied().unwrap_or(0.0);
        let int = i64::from(super::integer_bits(q * 1.1));
        let frac = i64::from(fmt.bits) - i64::from(fmt.signed) - int;
        let frac = frac.clamp(0, 40);
        let range = |fr: i64| 2f64.powi((i64::from(fmt.bits) - i64::from(fmt.signed) - fr) as i32);
        let describe = |fr: i64| {
            format!(
                "{}{}.{fr} (|x| < {})",
                if fmt.signed { "s" } else { "u" },
                fmt.bits,
                crate::plot::format_value(range(fr))
            )
        };
        let current_frac = i64::from(fmt.frac);
        rows.push(Row {
            variable,
            key,
            observed_max: max,
            quantile_value: q,
            current: describe(current_frac),
            current_saturation_rate: above(&v, range(current_frac)),
            proposed_frac: frac,
            proposed: describe(frac),
            expected_saturation_rate: above(&v, range(frac)),
        });
        if frac != current_frac {
            sets.push((format!("formats.{key}.frac"), frac.to_string()));
        }
    }
    (rows, sets)
}

fn render(r: &Report, chip: &str) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "accord formats on chip '{chip}': ranges from the f64 reference ({:.2} % test accuracy), {} training samples fired and relaxed on its initial and its trained net; each proposal holds the {} quantile of |x| with a 10 % margin",
        100.0 * r.reference_test_accuracy,
        r.samples,
        r.quantile
    );
    let _ = writeln!(
        o,
        "{:<22} {:>11} {:>11}  {:<22} {:>9}  {:<22} {:>9}",
        "variable", "max |x|", "quantile", "chip's format", "saturate", "proposed", "saturate"
    );
    for row in &r.rows {
        let _ = writeln!(
            o,
            "{:<22} {:>11.4e} {:>11.4e}  {:<22} {:>8.4}%  {:<22} {:>8.4}%",
            row.variable,
            row.observed_max,
            row.quantile_value,
            row.current,
            100.0 * row.current_saturation_rate,
            row.proposed,
            100.0 * row.expected_saturation_rate
        );
    }
    if r.set_lines.is_empty() {
        let _ = writeln!(o, "the chip's formats already match; nothing to set");
    } else {
        let _ = writeln!(o, "to use them: {}", r.set_lines.join(" "));
        let _ = writeln!(o, "or, in a copy of the chip file:");
        for line in &r.set_lines {
            // `--set formats.KEY.frac=F` → `[formats.KEY]` / `frac = F`.
            if let Some((key, value)) = line.trim_start_matches("--set ").split_once('=')
                && let Some((table, field)) = key.rsplit_once('.')
            {
                let _ = writeln!(o, "  [{table}]\n  {field} = {value}");
            }
        }
    }
    if let Some(e) = &r.design_rule_check {
        let _ = writeln!(
            o,
            "note: the chip's design-rule check refuses this proposal as it stands (adjust the coupled formats too):\n{e}"
        );
    }
    o
}
