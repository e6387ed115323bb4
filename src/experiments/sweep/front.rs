//! What a sweep's finished points say: per problem and platform (the `data`, `chip` and `rule`
//! axes) the accuracy–energy front, the cheapest configuration within one point of the widest
//! weights, test accuracy against each numeric axis, and energy by part per trained point.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde_json::Value;

use super::{Point, Spec};

/// The axes that set the problem and the platform: fronts and comparisons are made within
/// each of their settings.
const CONTEXT: [&str; 3] = ["data", "chip", "rule"];

/// The most lines an accuracy-against-axis figure draws.
const MAX_LINES: usize = 10;

/// The most points the energy figure draws.
const MAX_BARS: usize = 80;

/// A finished point's figures: accuracy and energies per sample (pJ).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Figures {
    /// The point.
    pub index: usize,
    /// Its options, by axis.
    pub options: BTreeMap<String, String>,
    /// Test accuracy.
    pub accuracy: f64,
    /// Dynamic energy per inference sample, pJ (0: not priced).
    pub infer_pj: f64,
    /// Dynamic energy per training sample, pJ (0: not trained on a chip).
    pub train_pj: f64,
    /// Static energy per training sample, pJ.
    pub train_static_pj: f64,
    /// Share of the training energy spent on retrograde credit.
    pub retro_share: f64,
}

impl Figures {
    /// The figures of `p`, if it finished with a test accuracy.
    pub fn of(p: &Point) -> Option<Figures> {
        let r = p.result.as_ref()?;
        let f = |ptr: &str| r.pointer(ptr).and_then(Value::as_f64);
        Some(Figures {
            index: p.index,
            options: p.options.clone(),
            accuracy: f("/test_accuracy")?,
            infer_pj: f("/energy/inference/dynamic_pj_per_sample").unwrap_or(0.0),
            train_pj: f("/energy/training/dynamic_pj_per_sample").unwrap_or(0.0),
            train_static_pj: f("/energy/training/static_pj_per_sample").unwrap_or(0.0),
            retro_share: f("/energy/training/retro_share").unwrap_or(0.0),
        })
    }

    /// `key=value` of every option, space-separated.
    pub fn label(&self) -> String {
        self.options
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The accuracy–energy front of one problem and platform.
#[derive(Clone, Debug, Serialize)]
pub struct Front {
    /// The setting of the `data`, `chip` and `rule` axes (`all points` if none is an axis).
    pub context: String,
    /// Points with an inference energy in this setting.
    pub priced: usize,
    /// The points no other beats on both accuracy (higher) and inference energy (lower),
    /// cheapest first.
    pub points: Vec<Figures>,
}

/// Per problem and platform, the cheapest configuration whose mean accuracy over seeds is
/// within 1 point of the best at the widest weights.
#[derive(Clone, Debug, Serialize)]
pub struct Cheapest {
    /// The setting of the `data`, `chip` and `rule` axes (empty if none is an axis).
    pub context: String,
    /// The weight-width axis (`weight-bits` or `set:formats.weight.bits`).
    pub axis: String,
    /// Its widest value.
    pub widest: String,
    /// The best mean accuracy at the widest weights.
    pub best: f64,
    /// The configuration (`key=value` of the other axes but `seed`).
    pub configuration: String,
    /// Its mean accuracy over seeds.
    pub accuracy: f64,
    /// Its mean inference energy over seeds, pJ.
    pub infer_pj: f64,
    /// Seeds it ran with.
    pub seeds: usize,
}

/// One line of test accuracy against an axis: one setting of the other axes (but `seed`).
#[derive(Clone, Debug, Serialize)]
pub struct Curve {
    /// The setting (`mean over seeds` if there is no other axis).
    pub name: String,
    /// `(value, mean accuracy, standard deviation over seeds)`, by value.
    pub points: Vec<(f64, f64, f64)>,
}

/// Test accuracy against a numeric axis (not `seed`) with two values or more.
#[derive(Clone, Debug, Serialize)]
pub struct AccuracyVs {
    /// The axis.
    pub axis: String,
    /// One line per setting of the other axes.
    pub lines: Vec<Curve>,
}

impl AccuracyVs {
    /// Whether its figure is drawn: 1 to 10 lines.
    pub fn drawn(&self) -> bool {
        (1..=MAX_LINES).contains(&self.lines.len())
    }
}

/// What a sweep's finished points say; renders as the table `accord sweep` prints.
#[derive(Clone, Debug, Serialize)]
pub struct SweepSummary {
    /// Every finished point with a test accuracy, in point order.
    pub figures: Vec<Figures>,
    /// Per setting of the `data`, `chip` and `rule` axes, in order: the accuracy–energy front
    /// (none if no point has an inference energy).
    pub fronts: Vec<Front>,
    /// Per setting, the cheapest configuration within 1 point of the widest weights (if the
    /// weight width is an axis).
    pub cheapest: Vec<Cheapest>,
    /// Test accuracy against each numeric axis.
    pub accuracy_vs: Vec<AccuracyVs>,
}

/// The points no other beats on both accuracy (higher) and inference energy (lower), cheapest
/// first.
fn front<'a>(pts: &[&'a Figures]) -> Vec<&'a Figures> {
    let mut v: Vec<&Figures> = pts.to_vec();
    v.sort_by(|a, b| {
        a.infer_pj
            .total_cmp(&b.infer_pj)
            .then(b.accuracy.total_cmp(&a.accuracy))
    });
    let mut out: Vec<&Figures> = Vec::new();
    for p in v {
        if out.last().is_none_or(|l| p.accuracy > l.accuracy) {
            out.push(p);
        }
    }
    out
}

impl SweepSummary {
    /// The summary of `points` (in point order) of a sweep of `spec`.
    pub fn of(spec: &Spec, points: &[Point]) -> SweepSummary {
        let figures: Vec<Figures> = points.iter().filter_map(Figures::of).collect();
        // Per dataset, chip and rule (where they are axes): its points and its front.
        let group_of = |f: &Figures| -> String {
            let g: Vec<String> = CONTEXT
                .iter()
                .filter_map(|k| f.options.get(*k).map(|v| format!("{k}={v}")))
                .collect();
            if g.is_empty() {
                "all points".into()
            } else {
                g.join(" ")
            }
        };
        let mut groups: BTreeMap<String, Vec<&Figures>> = BTreeMap::new();
        for f in figures.iter().filter(|f| f.infer_pj > 0.0) {
            groups.entry(group_of(f)).or_default().push(f);
        }
        let fronts = groups
            .into_iter()
            .map(|(context, pts)| Front {
                priced: pts.len(),
                points: front(&pts).into_iter().cloned().collect(),
                context,
            })
            .collect();
        let cheapest = within_one_point(spec, &figures);
        let accuracy_vs = spec
            .axes
            .iter()
            .filter_map(|(axis, values)| accuracy_vs(&figures, axis, values))
            .collect();
        SweepSummary {
            figures,
            fronts,
            cheapest,
            accuracy_vs,
        }
    }

    /// The points with an inference energy, in point order.
    pub fn priced(&self) -> impl Iterator<Item = &Figures> {
        self.figures.iter().filter(|f| f.infer_pj > 0.0)
    }

    /// The points trained on a chip (with a training energy), in point order.
    pub fn trained(&self) -> Vec<&Figures> {
        self.figures.iter().filter(|f| f.train_pj > 0.0).collect()
    }

    /// The trained points whose energy by part is drawn: all of them, unless there are more
    /// than 80 (then none).
    pub fn energy_bars(&self) -> Vec<&Figures> {
        let t = self.trained();
        if t.len() > MAX_BARS { Vec::new() } else { t }
    }
}

/// Test accuracy against numeric axis `axis` (mean and spread over seeds, one line per setting
/// of the other axes); `None` for `seed`, an axis of one value or a non-numeric one.
fn accuracy_vs(figs: &[Figures], axis: &str, values: &[String]) -> Option<AccuracyVs> {
    if axis == "seed" || values.len() < 2 || values.iter().any(|v| v.parse::<f64>().is_err()) {
        return None;
    }
    let mut lines: BTreeMap<String, BTreeMap<String, Vec<f64>>> = BTreeMap::new();
    for f in figs {
        let rest: Vec<String> = f
            .options
            .iter()
            .filter(|(k, _)| *k != axis && *k != "seed")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let x = f.options.get(axis).cloned().unwrap_or_default();
        lines
            .entry(rest.join(" "))
            .or_default()
            .entry(x)
            .or_default()
            .push(f.accuracy);
    }
    let lines = lines
        .into_iter()
        .map(|(name, by_x)| {
            let mut points: Vec<(f64, f64, f64)> = by_x
                .into_iter()
                .map(|(x, acc)| {
                    let n = acc.len() as f64;
                    let mean = acc.iter().sum::<f64>() / n;
                    let var = acc.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / n;
                    (x.parse().unwrap_or(0.0), mean, var.sqrt())
                })
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            let name = if name.is_empty() {
                "mean over seeds".into()
            } else {
                name
            };
            Curve { name, points }
        })
        .collect();
    Some(AccuracyVs {
        axis: axis.to_string(),
        lines,
    })
}

/// Per problem and platform (the `data`, `chip` and `rule` axes), the cheapest configuration
/// (mean over seeds) whose accuracy is within 1 point of the best at the widest weights
/// (`weight-bits` or `set:formats.weight.bits`): the answer to "how narrow can the weights go".
fn within_one_point(spec: &Spec, figs: &[Figures]) -> Vec<Cheapest> {
    let Some((axis, values)) = spec
        .axes
        .iter()
        .find(|(k, _)| k == "weight-bits" || k == "set:formats.weight.bits")
    else {
        return Vec::new();
    };
    let Some(widest) = values
        .iter()
        .filter_map(|v| v.parse::<f64>().ok().map(|x| (x, v)))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, v)| v.clone())
    else {
        return Vec::new();
    };
    // context → configuration → (its options, (accuracies, inference energies) over seeds).
    type Runs = (Vec<f64>, Vec<f64>);
    type Configs = BTreeMap<String, (BTreeMap<String, String>, Runs)>;
    let mut by: BTreeMap<String, Configs> = BTreeMap::new();
    for f in figs {
        let o = &f.options;
        let ctx: Vec<String> = o
            .iter()
            .filter(|(k, _)| CONTEXT.contains(&k.as_str()))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let cfg: BTreeMap<String, String> = o
            .iter()
            .filter(|(k, _)| !CONTEXT.contains(&k.as_str()) && *k != "seed")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let key = cfg
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ");
        let e = by
            .entry(ctx.join(" "))
            .or_default()
            .entry(key)
            .or_insert_with(|| (cfg, (Vec::new(), Vec::new())));
        e.1.0.push(f.accuracy);
        e.1.1.push(f.infer_pj);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let mut out = Vec::new();
    for (ctx, cfgs) in by {
        let best = cfgs
            .values()
            .filter(|(c, _)| c.get(axis) == Some(&widest))
            .map(|(_, r)| mean(&r.0))
            .fold(f64::NEG_INFINITY, f64::max);
        if !best.is_finite() {
            continue;
        }
        let pick = cfgs
            .iter()
            .filter(|(_, (_, r))| mean(&r.0) >= best - 0.01 && mean(&r.1) > 0.0)
            .min_by(|a, b| mean(&a.1.1.1).total_cmp(&mean(&b.1.1.1)));
        if let Some((name, (_, r))) = pick {
            out.push(Cheapest {
                context: ctx,
                axis: axis.clone(),
                widest: widest.clone(),
                best,
                configuration: name.clone(),
                accuracy: mean(&r.0),
                infer_pj: mean(&r.1),
                seeds: r.0.len(),
            });
        }
    }
    out
}

impl fmt::Display for SweepSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.fronts.is_empty() {
            return writeln!(f, "no point has an inference energy: no front, no figures");
        }
        for g in &self.fronts {
            writeln!(
                f,
                "accuracy–energy front, {} ({} of {} priced points):\n{:>6}  {:>9}  {:>12}  {:>12}  options",
                g.context,
                g.points.len(),
                g.priced,
                "point",
                "accuracy",
                "infer nJ",
                "train nJ"
            )?;
            for p in &g.points {
                writeln!(
                    f,
                    "{:>6}  {:>8.2}%  {:>12.3}  {:>12.3}  {}",
                    p.index,
                    100.0 * p.accuracy,
                    p.infer_pj / 1000.0,
                    p.train_pj / 1000.0,
                    p.label()
                )?;
            }
        }
        for c in &self.cheapest {
            writeln!(
                f,
                "{}cheapest within 1 point of {}={} ({:.2} %): {} — {:.2} % at {:.3} nJ per inference (mean over {} seed(s))",
                if c.context.is_empty() {
                    String::new()
                } else {
                    format!("{}: ", c.context)
                },
                c.axis,
                c.widest,
                100.0 * c.best,
                c.configuration,
                100.0 * c.accuracy,
                c.infer_pj / 1000.0,
                c.seeds
            )?;
        }
        for a in &self.accuracy_vs {
            if a.lines.len() > MAX_LINES {
                writeln!(
                    f,
                    "accuracy_vs_{}.png: not drawn, {} settings of the other axes (at most {MAX_LINES} lines)",
                    a.axis,
                    a.lines.len()
                )?;
            }
        }
        if self.trained().len() > MAX_BARS {
            writeln!(
                f,
                "energy.png: not drawn for more than {MAX_BARS} trained points (see points.csv)"
            )?;
        }
        Ok(())
    }
}
