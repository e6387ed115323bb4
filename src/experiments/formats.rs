//! Number formats proposed for a network on a chip from the ranges its variables take in a
//! calibration run (`accord formats`; ARCHITECTURE.md §3).
//!
//! The calibration is the `f64` reference trained with the run's configuration: the training
//! samples (up to [`FormatsConfig::calibration_samples`]) are fired and their credit relaxed on
//! the initial net (where errors, credits and `δ` are largest) and on the trained one (where
//! weights and inputs are), and the magnitudes of `u` (membrane), `r` (rate), `c` (credit), `δ`
//! and the trained weights are collected. For each variable the proposal keeps the chip's width
//! and gives the integer part just enough to hold the [`FormatsConfig::quantile`] of the
//! observed magnitudes with a 10 % margin; the expected saturation rate is the share of
//! observed values that fall outside it (beside the chip's current format's). The proposal is
//! checked by the chip's design-rule check and listed as chip-file overrides.

use std::fmt;

use accord_firmware::arith::Format;
use serde::Serialize;

use crate::chip::ChipModel;
use crate::data;
use crate::error::Invalid;
use crate::rule::{Activation, LayeredNet, Steps};
use crate::train::TrainConfig;

/// What to calibrate on and how much of it each format must hold.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FormatsConfig {
    /// The share of observed magnitudes each proposed format holds (the rest saturate), in
    /// (0, 1].
    pub quantile: f64,
    /// Training samples fired for the ranges (at most the training set), at least 1.
    pub calibration_samples: usize,
}

impl FormatsConfig {
    /// Refuse a quantile outside (0, 1] or no calibration samples, naming the field.
    ///
    /// # Errors
    /// [`Invalid`] naming `quantile` or `calibration_samples`.
    pub fn check(&self) -> Result<(), Invalid> {
        if !(self.quantile > 0.0 && self.quantile <= 1.0) {
            return Err(Invalid::new(
                "quantile",
                format!(" {} is not in (0, 1]", self.quantile),
            ));
        }
        crate::error::at_least_one("calibration_samples", Some(self.calibration_samples))
    }
}

/// One variable's observed range and proposed format.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FormatRow {
    /// The variable, as printed (`u (membrane)`).
    pub variable: &'static str,
    /// Its key in the chip file's `[formats]` table.
    pub key: &'static str,
    /// The largest magnitude observed.
    pub observed_max: f64,
    /// The quantile of the magnitudes the proposal holds.
    pub quantile_value: f64,
    /// The chip's format, described (`s16.12 (|x| < 8)`).
    pub current: String,
    /// The share of observed magnitudes the chip's format saturates.
    pub current_saturation_rate: f64,
    /// The proposed fraction bits.
    pub proposed_frac: i64,
    /// The proposed format, described.
    pub proposed: String,
    /// The share of observed magnitudes the proposal saturates.
    pub expected_saturation_rate: f64,
}

/// What [`propose`] found: per variable its range and format, the overrides that apply the
/// proposal and the design-rule check's verdict on it. `Display` renders the table
/// `accord formats` prints; serde gives its JSON.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FormatsReport {
    /// The chip model's name (in the text, not the JSON).
    #[serde(skip)]
    pub chip: String,
    /// The trained `f64` reference's test accuracy.
    pub reference_test_accuracy: f64,
    /// Training samples fired per phase.
    pub samples: usize,
    /// The quantile each proposal holds.
    pub quantile: f64,
    /// One row per variable: membrane, rate, credit, δ, weight.
    pub rows: Vec<FormatRow>,
    /// The chip-file keys the proposal changes and their values (`formats.credit.frac`, `14`);
    /// in the JSON as `set_lines`, command-line overrides (`--set formats.KEY.frac=F`).
    #[serde(rename = "set_lines", serialize_with = "as_set_lines")]
    pub sets: Vec<(String, String)>,
    /// The chip's design-rule check of the proposal (`None`: it passes).
    pub design_rule_check: Option<String>,
}

/// The integer bits a format needs to hold magnitudes up to `need`: the smallest `int` with
/// `2^int > need` (negative for magnitudes below 1/2).
pub fn integer_bits(need: f64) -> i32 {
    (need.max(f64::MIN_POSITIVE).log2().floor() as i32).saturating_add(1)
}

/// The net a calibration starts from: a saved or imported net instead of `train`'s initial one,
/// and the synapses that exist in its sparse layers (see [`crate::train::TrainHooks`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct Start<'a> {
    /// Initial weights (the run's sizes and activations); `None`: the configuration's own.
    pub net: Option<&'a LayeredNet>,
    /// Per synaptic layer, the synapses that exist (`None` or missing: all).
    pub masks: &'a [Option<bitvec::vec::BitVec<usize, bitvec::order::Lsb0>>],
}

/// Train the `f64` reference with `train` on `split` from `start`, collect its variables'
/// magnitudes and propose a format per variable for `chip`. The design-rule check reopens the
/// chip file `chip_source` with `overrides` and the proposal's keys (so that coupled formats
/// the chip's rules tie together show up).
///
/// # Errors
/// [`Invalid`] naming `quantile` or `calibration_samples` (see [`FormatsConfig::check`]), or
/// `start` when its net is not of this configuration's sizes and activations.
#[allow(clippy::too_many_arguments)]
pub fn propose(
    cfg: &FormatsConfig,
    train: &TrainConfig,
    split: &data::Split,
    chip: &ChipModel,
    chip_source: &str,
    overrides: &[(String, String)],
    start: Start<'_>,
) -> Result<FormatsReport, Invalid> {
    cfg.check()?;
    let hooks = crate::train::TrainHooks {
        start: start.net,
        masks: start.masks,
        ..Default::default()
    };
    let (report, net) = crate::train::train_hooked(train, split, hooks)
        .map_err(|e| Invalid::new("start", format!(": {e}")))?;
    let n = split.train.len().min(cfg.calibration_samples);
    let initial = match start.net {
        Some(s) => s.clone(),
        None => train.init_net(split.train.dim, split.train.n_classes),
    };
    let [u, r, c, d] = magnitudes(train, split, (&initial, &net), n);
    // The weights of synapses that exist (an absent one's zero is no weight the chip holds).
    let mut w: Vec<f64> = Vec::new();
    for (l, layer) in net.layers.iter().enumerate() {
        match start.masks.get(l).and_then(Option::as_ref) {
            Some(m) => w.extend(
                m.iter_ones()
                    .filter_map(|k| layer.w.get(k))
                    .map(|x| x.abs()),
            ),
            None => w.extend(layer.w.iter().map(|x| x.abs())),
        }
        w.extend(layer.b.iter().map(|x| x.abs()));
    }
    let f = &chip.formats;
    let vars: [Variable; 5] = [
        ("u (membrane)", "membrane", u, f.membrane),
        ("r (rate)", "rate", r, f.rate),
        ("c (credit)", "credit", c, f.credit),
        ("δ (delta)", "delta", d, f.delta),
        ("w (weights, biases)", "weight", w, f.weight),
    ];
    let (rows, sets) = rows_of(vars, cfg.quantile);
    let mut all = overrides.to_vec();
    all.extend(sets.iter().cloned());
    let design_rule_check = crate::chip::open_with(chip_source, &all)
        .err()
        .map(|e| e.to_string());
    Ok(FormatsReport {
        chip: chip.name.clone(),
        reference_test_accuracy: report.test_accuracy,
        samples: n,
        quantile: cfg.quantile,
        rows,
        sets,
        design_rule_check,
    })
}

/// Overrides as the command line takes them: `--set KEY=VALUE`.
fn set_lines(sets: &[(String, String)]) -> Vec<String> {
    sets.iter().map(|(k, v)| format!("--set {k}={v}")).collect()
}

fn as_set_lines<S: serde::Serializer>(sets: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(set_lines(sets))
}

/// A variable's printed name, its `[formats]` key, its observed magnitudes and its format.
type Variable = (&'static str, &'static str, Vec<f64>, Format);

/// The share of `v` (magnitudes) at or above `limit`.
fn above(v: &[f64], limit: f64) -> f64 {
    v.iter().filter(|&&x| x >= limit).count() as f64 / v.len().max(1) as f64
}

/// |u|, |r|, |c| and |δ| over the first `n` training samples, on the initial net `start`
/// (largest errors, so largest credits and δ) and on the trained `net` (largest weights and
/// inputs).
fn magnitudes(
    cfg: &TrainConfig,
    split: &data::Split,
    (start, net): (&LayeredNet, &LayeredNet),
    n: usize,
) -> [Vec<f64>; 4] {
    let (mut u, mut r, mut c, mut d) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let m = net.depth();
    let readout = net
        .layers
        .last()
        .is_some_and(|l| l.act == Activation::Identity);
    let hidden_rates = if readout { m - 1 } else { m };
    for phase in [start, net] {
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
/// `quantile` of its magnitudes fits (with 10 % headroom); the keys that change.
fn rows_of(vars: [Variable; 5], quantile: f64) -> (Vec<FormatRow>, Vec<(String, String)>) {
    let mut rows = Vec::new();
    let mut sets = Vec::new();
    for (variable, key, mut v, fmt) in vars {
        v.sort_by(f64::total_cmp);
        let max = v.last().copied().unwrap_or(0.0);
        let k = ((v.len() as f64 * quantile).ceil() as usize).clamp(1, v.len().max(1)) - 1;
        let q = v.get(k).copied().unwrap_or(0.0);
        let int = i64::from(integer_bits(q * 1.1));
        let frac = i64::from(fmt.bits) - i64::from(fmt.signed) - int;
        let frac = frac.clamp(0, 40);
        let range = |fr: i64| 2f64.powi((i64::from(fmt.bits) - i64::from(fmt.signed) - fr) as i32);
        let describe = |fr: i64| {
            format!(
                "{}{}.{fr} (|x| < {})",
                if fmt.signed { "s" } else { "u" },
                fmt.bits,
                crate::output::format_value(range(fr))
            )
        };
        let current_frac = i64::from(fmt.frac);
        rows.push(FormatRow {
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

impl fmt::Display for FormatsReport {
    fn fmt(&self, o: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            o,
            "accord formats on chip '{}': ranges from the f64 reference ({:.2} % test accuracy), {} training samples fired and relaxed on its initial and its trained net; each proposal holds the {} quantile of |x| with a 10 % margin",
            self.chip,
            100.0 * self.reference_test_accuracy,
            self.samples,
            self.quantile
        )?;
        writeln!(
            o,
            "{:<22} {:>11} {:>11}  {:<22} {:>9}  {:<22} {:>9}",
            "variable", "max |x|", "quantile", "chip's format", "saturate", "proposed", "saturate"
        )?;
        for row in &self.rows {
            writeln!(
                o,
                "{:<22} {:>11.4e} {:>11.4e}  {:<22} {:>8.4}%  {:<22} {:>8.4}%",
                row.variable,
                row.observed_max,
                row.quantile_value,
                row.current,
                100.0 * row.current_saturation_rate,
                row.proposed,
                100.0 * row.expected_saturation_rate
            )?;
        }
        if self.sets.is_empty() {
            writeln!(o, "the chip's formats already match; nothing to set")?;
        } else {
            writeln!(o, "to use them: {}", set_lines(&self.sets).join(" "))?;
            writeln!(o, "or, in a copy of the chip file:")?;
            for (key, value) in &self.sets {
                // `formats.KEY.frac` = F → `[formats.KEY]` / `frac = F`.
                if let Some((table, field)) = key.rsplit_once('.') {
                    writeln!(o, "  [{table}]\n  {field} = {value}")?;
                }
            }
        }
        if let Some(e) = &self.design_rule_check {
            writeln!(
                o,
                "note: the chip's design-rule check refuses this proposal as it stands (adjust the coupled formats too):\n{e}"
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_bits_hold_the_magnitude_with_nothing_to_spare() {
        assert_eq!(integer_bits(0.3), -1); // 2^-1 = 0.5 > 0.3
        assert_eq!(integer_bits(0.5), 0); // 2^0 = 1 > 0.5
        assert_eq!(integer_bits(1.0), 1);
        assert_eq!(integer_bits(3.9), 2);
        assert_eq!(integer_bits(4.0), 3);
        assert_eq!(integer_bits(0.0), -1021);
    }

    #[test]
    fn a_proposal_holds_its_quantile_and_names_only_the_keys_that_change() {
        use accord_firmware::arith::{Overflow, Rounding};
        let fmt = Format::new(16, 12, true, Rounding::NearestEven, Overflow::Saturate);
        // 1,000 magnitudes 0.001 … 1.0 and one outlier at 100: the 0.999 quantile is 1.0, so
        // with 10 % headroom the integer part needs 2^1 > 1.1 → 1 bit, 14 fraction bits.
        let mut v: Vec<f64> = (1..=1000).map(|i| f64::from(i) / 1000.0).collect();
        v.push(100.0);
        let vars: [Variable; 5] = [
            ("u (membrane)", "membrane", v.clone(), fmt),
            ("r (rate)", "rate", v.clone(), fmt),
            ("c (credit)", "credit", v.clone(), fmt),
            ("δ (delta)", "delta", v.clone(), fmt),
            (
                "w (weights, biases)",
                "weight",
                vec![1.0; 10],
                Format { frac: 14, ..fmt },
            ),
        ];
        let (rows, sets) = rows_of(vars, 0.999);
        assert_eq!(rows[0].proposed_frac, 14);
        assert_eq!(rows[0].observed_max, 100.0);
        assert_eq!(rows[0].quantile_value, 1.0);
        // s16.12 holds |x| < 8: only the outlier saturates; s16.14 (|x| < 2) the same one.
        assert_eq!(rows[0].current_saturation_rate, 1.0 / 1001.0);
        assert_eq!(rows[0].expected_saturation_rate, 1.0 / 1001.0);
        assert_eq!(rows[0].current, "s16.12 (|x| < 8)");
        // The weights already have 14 fraction bits: no override for them.
        assert_eq!(rows[4].proposed_frac, 14);
        assert_eq!(sets.len(), 4);
        assert!(sets.iter().all(|(k, v)| k.ends_with(".frac") && v == "14"));
        assert!(!sets.iter().any(|(k, _)| k == "formats.weight.frac"));
    }

    #[test]
    fn a_quantile_outside_the_unit_interval_or_no_samples_is_refused_by_field() {
        let ok = FormatsConfig {
            quantile: 0.999,
            calibration_samples: 10,
        };
        assert!(ok.check().is_ok());
        let e = FormatsConfig {
            quantile: 0.0,
            ..ok
        }
        .check()
        .unwrap_err();
        assert_eq!(e.field, "quantile");
        let e = FormatsConfig {
            quantile: f64::NAN,
            ..ok
        }
        .check()
        .unwrap_err();
        assert_eq!(e.field, "quantile");
        let e = FormatsConfig {
            calibration_samples: 0,
            ..ok
        }
        .check()
        .unwrap_err();
        assert_eq!(e.to_string(), "calibration_samples must be at least 1");
    }
}
