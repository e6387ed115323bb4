//! Published measurements on silicon beside what accord's chip models predict for the same
//! workload (ARCHITECTURE.md §9): which price set of a chip predicts its measured energy best?
//! (`accord calibrate`)
//!
//! Each workload is a TOML file in `hw_models/calibration/` ([`default_dir`]): the chip, the
//! arguments of the `accord train` run that rebuilds the network as closely as the source
//! allows, the data (bundled, or synthetic inputs where the source's data is not bundled), the
//! measured figures with their units, the source (citation and location), what the source
//! leaves open and every approximation the recipe makes. [`run`] runs every workload once per
//! price set of its chip (`--set price_set=NAME`, each an `accord train --json` through the
//! [`Runner`] it is given) and returns a [`Calibration`]: emulated against measured with the
//! percentage error, and per chip which price set predicts the measured energy best.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::ffi::{OsStr, OsString};
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};

use crate::chip::ChipError;
use crate::error::{Invalid, Setting};
use crate::experiments::runner::Runner;
use crate::output::OutputError;

/// Why a calibration cannot run (a run that fails is a [`Row`] with its error, not this).
#[derive(Debug, thiserror::Error)]
pub enum CalibrateError {
    /// A setting out of range (names its field: `only`, `dir`).
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The workload folder cannot be listed.
    #[error("reading dir {}: {error}", dir.display())]
    Dir {
        /// The folder.
        dir: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// A workload file cannot be read.
    #[error("reading {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// A workload file is not TOML or not a workload (the message names the key).
    #[error("{}: {error}", path.display())]
    Toml {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        error: toml::de::Error,
    },
    /// A workload file's values are refused (the reason names the key).
    #[error("{}: {reason}", path.display())]
    Workload {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the key (`measured.tick_ms`, `data.synthetic`, …).
        reason: String,
    },
    /// A workload name that cannot name files in the output folder.
    #[error("{}", self.text(&|f| f.to_string()))]
    Name {
        /// The file.
        path: PathBuf,
        /// The name it gives.
        name: String,
    },
    /// A workload's chip model cannot be opened.
    #[error("workload {workload}: chip {chip}: {error}")]
    Chip {
        /// The workload.
        workload: String,
        /// The chip it names.
        chip: String,
        /// Why.
        error: Box<ChipError>,
    },
    /// A file could not be written (synthetic data).
    #[error(transparent)]
    Output(#[from] OutputError),
}

impl CalibrateError {
    /// The message with each field shown as `option` shows it.
    fn text(&self, option: &dyn Fn(&str) -> String) -> String {
        match self {
            CalibrateError::Invalid(i) => i.named(&option(i.field)),
            CalibrateError::Dir { dir, error } => {
                format!("reading {} {}: {error}", option("dir"), dir.display())
            }
            CalibrateError::Name { path, name } => format!(
                "{}: name '{name}' must be letters, digits, '-' and '_' only (it names files in {})",
                path.display(),
                option("out")
            ),
            other => other.to_string(),
        }
    }
}

impl Setting for CalibrateError {
    fn invalid(&self) -> Option<&Invalid> {
        match self {
            CalibrateError::Invalid(i) => Some(i),
            _ => None,
        }
    }
    fn named(&self, option: &dyn Fn(&str) -> String) -> Option<String> {
        Some(self.text(option))
    }
}

/// The shipped workloads: `hw_models/calibration/` beside the chip models.
pub fn default_dir() -> PathBuf {
    crate::chip::builtin_dir().join("calibration")
}

/// One workload file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// Short name (the file's stem by convention).
    pub name: String,
    /// One line saying what was measured.
    pub title: String,
    /// The chip model (shipped name or path).
    pub chip: String,
    /// Arguments of `accord train` after `--chip` and `--data`.
    pub args: Vec<String>,
    /// For a chip that cannot learn: arguments of an `accord train` run on the `f64`
    /// reference (after `--data`) whose network is saved and then loaded (`--load`) by the
    /// chip run.
    #[serde(default)]
    pub pretrain: Vec<String>,
    /// The data.
    pub data: DataSpec,
    /// The measured figures.
    pub measured: Measured,
    /// Where they come from.
    pub source: Source,
    /// Every way accord's recipe departs from the measured workload.
    pub approximations: Vec<String>,
}

/// The data a workload runs on.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    /// A bundled dataset.
    pub bundled: Option<String>,
    /// Synthetic inputs: uniform features in [0, 1], labels cycling through the classes.
    pub synthetic: Option<Synthetic>,
}

/// Synthetic inputs for a workload whose data is not bundled.
#[derive(Clone, Copy, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Synthetic {
    /// Features per row.
    pub features: usize,
    /// Classes.
    pub classes: usize,
    /// Rows (train and test together).
    pub rows: usize,
    /// Seed of the features.
    pub seed: u64,
}

/// Measured figures; each is optional, at least one must be given.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Measured {
    /// Dynamic energy per inference, µJ.
    pub dynamic_uj_per_inference: Option<f64>,
    /// Total energy per inference (dynamic and static), µJ.
    pub total_uj_per_inference: Option<f64>,
    /// Time per inference, ms.
    pub ms_per_inference: Option<f64>,
    /// Inferences per second.
    pub inferences_per_s: Option<f64>,
    /// Test accuracy (for reference; not an error term).
    pub accuracy: Option<f64>,
    /// A power budget while learning, µW (upper bound).
    pub power_uw_at_most: Option<f64>,
    /// Real-time timestep, ms (for the power budget).
    pub tick_ms: Option<f64>,
}

/// Where a measurement comes from.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// Authors, title, venue, year.
    pub citation: String,
    /// Table, figure, page or file.
    pub location: String,
    /// What the source leaves open.
    pub open: Vec<String>,
}

/// Sizes a synthetic workload may ask for (a typo must not allocate gigabytes).
const MAX_SYNTHETIC_VALUES: usize = 50_000_000;

impl Workload {
    /// Read and check a workload file.
    ///
    /// # Errors
    /// Unreadable file, TOML or schema errors (naming the key), no measured figure, a
    /// figure that is not finite and positive, bad synthetic sizes or both or neither data
    /// source: [`CalibrateError`] naming the file.
    pub fn load(path: &Path) -> Result<Workload, CalibrateError> {
        let text = std::fs::read_to_string(path).map_err(|error| CalibrateError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        let w: Workload = toml::from_str(&text).map_err(|error| CalibrateError::Toml {
            path: path.to_path_buf(),
            error,
        })?;
        w.check(path)?;
        Ok(w)
    }

    /// Check a workload (read from `path`, which the errors name): measured figures finite
    /// and positive and at least one to compare, a name usable as a file name, exactly one
    /// data source and bounded synthetic sizes.
    ///
    /// # Errors
    /// [`CalibrateError::Workload`] or [`CalibrateError::Name`] naming the file.
    pub fn check(&self, path: &Path) -> Result<(), CalibrateError> {
        let w = self;
        let bad = |reason: String| CalibrateError::Workload {
            path: path.to_path_buf(),
            reason,
        };
        let m = &w.measured;
        let figures = [
            ("dynamic_uj_per_inference", m.dynamic_uj_per_inference),
            ("total_uj_per_inference", m.total_uj_per_inference),
            ("ms_per_inference", m.ms_per_inference),
            ("inferences_per_s", m.inferences_per_s),
            ("accuracy", m.accuracy),
            ("power_uw_at_most", m.power_uw_at_most),
            ("tick_ms", m.tick_ms),
        ];
        for (key, v) in figures {
            if let Some(v) = v
                && !(v.is_finite() && v > 0.0)
            {
                return Err(bad(format!("measured.{key} = {v} must be finite and > 0")));
            }
        }
        if figures[..4].iter().all(|(_, v)| v.is_none()) && m.power_uw_at_most.is_none() {
            return Err(bad(
                "[measured] gives no figure to compare (dynamic_uj_per_inference, total_uj_per_inference, ms_per_inference, inferences_per_s or power_uw_at_most)".into(),
            ));
        }
        if m.power_uw_at_most.is_some() != m.tick_ms.is_some() {
            return Err(bad(
                "measured.power_uw_at_most and measured.tick_ms go together".into(),
            ));
        }
        if w.name.is_empty()
            || !w
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(CalibrateError::Name {
                path: path.to_path_buf(),
                name: w.name.clone(),
            });
        }
        match (&w.data.bundled, &w.data.synthetic) {
            (Some(_), None) => {}
            (None, Some(s)) => {
                if s.features == 0 || s.classes < 2 || s.rows < s.classes.saturating_mul(5) {
                    return Err(bad(format!(
                        "data.synthetic needs features ≥ 1, classes ≥ 2 and rows ≥ 5 × classes (has {} features, {} classes, {} rows)",
                        s.features, s.classes, s.rows
                    )));
                }
                if s.features.saturating_mul(s.rows) > MAX_SYNTHETIC_VALUES {
                    return Err(bad(format!(
                        "data.synthetic asks for {} × {} values (at most {MAX_SYNTHETIC_VALUES})",
                        s.rows, s.features
                    )));
                }
            }
            _ => {
                return Err(bad(
                    "[data] needs exactly one of bundled = \"NAME\" or synthetic = { … }".into(),
                ));
            }
        }
        Ok(())
    }
}

/// Write the synthetic data of `s` as a CSV (features then the label) into `path`.
fn write_synthetic(s: &Synthetic, path: &Path) -> Result<(), OutputError> {
    let mut rng = crate::data::SplitMix64::new(s.seed);
    let mut text = String::with_capacity(s.rows * s.features * 6);
    for r in 0..s.rows {
        for _ in 0..s.features {
            let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            let _ = write!(text, "{u:.4},");
        }
        let _ = writeln!(text, "{}", r % s.classes);
    }
    crate::output::write_atomic(path, text.as_bytes())
}

/// Emulated figures of one run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Emulated {
    /// Test accuracy.
    pub accuracy: Option<f64>,
    /// Dynamic energy per inference, µJ.
    pub dynamic_uj_per_inference: Option<f64>,
    /// Static energy per inference, µJ (`None`: not modelled by the price set).
    pub static_uj_per_inference: Option<f64>,
    /// Dynamic + static, µJ (`None` when the price set models no static power).
    pub total_uj_per_inference: Option<f64>,
    /// Modelled time per inference, ms.
    pub ms_per_inference: Option<f64>,
    /// Pipelined inferences per second.
    pub inferences_per_s: Option<f64>,
    /// Power while learning in real time, µW: the dynamic energy of a training sample over its
    /// timesteps (firing, credit and plasticity) at the workload's tick period, plus the static
    /// power of the cores the net occupies.
    pub learning_power_uw: Option<f64>,
}

/// One workload under one price set.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// Workload name.
    pub workload: String,
    /// Chip model.
    pub chip: String,
    /// Price set.
    pub price_set: String,
    /// Whether the set is the chip file's default.
    pub default_set: bool,
    /// What accord predicts (absent when the run failed).
    pub emulated: Option<Emulated>,
    /// Why the run failed.
    pub error: Option<String>,
    /// What was measured.
    pub measured: Measured,
}

/// Relative error `(emulated − measured) / measured`.
pub fn rel_error(emulated: Option<f64>, measured: Option<f64>) -> Option<f64> {
    match (emulated, measured) {
        (Some(e), Some(m)) if m != 0.0 && e.is_finite() => Some((e - m) / m),
        _ => None,
    }
}

impl Row {
    /// Energy error: dynamic where measured, else total.
    pub fn energy_error(&self) -> Option<f64> {
        let e = self.emulated.as_ref()?;
        rel_error(
            e.dynamic_uj_per_inference,
            self.measured.dynamic_uj_per_inference,
        )
        .or_else(|| {
            rel_error(
                e.total_uj_per_inference,
                self.measured.total_uj_per_inference,
            )
        })
    }
}

/// A whole calibration.
#[derive(Clone, Debug, Serialize)]
pub struct Calibration {
    /// The workloads as read.
    pub workloads: Vec<Workload>,
    /// One row per workload and price set.
    pub rows: Vec<Row>,
}

impl Calibration {
    /// Rows whose run failed (the command line exits with status 1 if there are any).
    pub fn failures(&self) -> usize {
        self.rows.iter().filter(|r| r.emulated.is_none()).count()
    }

    /// Per chip: the price set with the smallest mean |energy error| over its workloads, and
    /// that error.
    pub fn best_sets(&self) -> Vec<(String, String, f64)> {
        let chips: std::collections::BTreeSet<&str> =
            self.rows.iter().map(|r| r.chip.as_str()).collect();
        let mut out = Vec::new();
        for chip in chips {
            let mut sets: Vec<&str> = self
                .rows
                .iter()
                .filter(|r| r.chip == chip)
                .map(|r| r.price_set.as_str())
                .collect();
            sets.sort_unstable();
            sets.dedup();
            let mut best: Option<(String, f64)> = None;
            for set in sets {
                let errs: Vec<f64> = self
                    .rows
                    .iter()
                    .filter(|r| r.chip == chip && r.price_set == set)
                    .filter_map(Row::energy_error)
                    .map(f64::abs)
                    .collect();
                if errs.is_empty() {
                    continue;
                }
                let mean = errs.iter().sum::<f64>() / errs.len() as f64;
                if best.as_ref().is_none_or(|(_, b)| mean < *b) {
                    best = Some((set.to_owned(), mean));
                }
            }
            if let Some((set, err)) = best {
                out.push((chip.to_owned(), set, err));
            }
        }
        out
    }

    /// The rows as CSV.
    ///
    /// # Errors
    /// The CSV writer's (none is expected writing into memory).
    pub fn csv(&self) -> Result<String, csv::Error> {
        let f = |x: Option<f64>| x.map_or(String::new(), |v| format!("{v}"));
        let mut w = csv::Writer::from_writer(Vec::new());
        let header = [
            "workload",
            "chip",
            "price_set",
            "default_set",
            "accuracy",
            "dynamic_uj",
            "dynamic_uj_measured",
            "dynamic_error",
            "total_uj",
            "total_uj_measured",
            "total_error",
            "ms_per_inference",
            "ms_measured",
            "ms_error",
            "inferences_per_s",
            "inferences_per_s_measured",
            "throughput_error",
            "learning_power_uw",
            "power_uw_at_most",
            "error",
        ];
        w.write_record(header)?;
        for r in &self.rows {
            let e = r.emulated.clone().unwrap_or_default();
            let m = &r.measured;
            w.write_record([
                r.workload.clone(),
                r.chip.clone(),
                r.price_set.clone(),
                r.default_set.to_string(),
                f(e.accuracy),
                f(e.dynamic_uj_per_inference),
                f(m.dynamic_uj_per_inference),
                f(rel_error(
                    e.dynamic_uj_per_inference,
                    m.dynamic_uj_per_inference,
                )),
                f(e.total_uj_per_inference),
                f(m.total_uj_per_inference),
                f(rel_error(
                    e.total_uj_per_inference,
                    m.total_uj_per_inference,
                )),
                f(e.ms_per_inference),
                f(m.ms_per_inference),
                f(rel_error(e.ms_per_inference, m.ms_per_inference)),
                f(e.inferences_per_s),
                f(m.inferences_per_s),
                f(rel_error(e.inferences_per_s, m.inferences_per_s)),
                f(e.learning_power_uw),
                f(m.power_uw_at_most),
                r.error.clone().unwrap_or_default(),
            ])?;
        }
        let bytes = w
            .into_inner()
            .map_err(|e| csv::Error::from(e.into_error()))?;
        // Every field is a Rust string: the bytes are UTF-8.
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

fn cell(emulated: Option<f64>, measured: Option<f64>, digits: usize) -> String {
    let v = |x: f64| {
        if x != 0.0 && (x.abs() < 1e-2 || x.abs() >= 1e5) {
            format!("{x:.2e}")
        } else {
            format!("{x:.digits$}")
        }
    };
    match (emulated, measured) {
        (_, None) => "—".into(),
        (None, Some(m)) => format!("? / {}", v(m)),
        (Some(e), Some(m)) => match rel_error(Some(e), Some(m)) {
            Some(err) => format!("{} / {} ({:+.0} %)", v(e), v(m), 100.0 * err),
            None => format!("{} / {}", v(e), v(m)),
        },
    }
}

impl fmt::Display for Calibration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "| workload | chip | price set | accuracy (accord / measured) | dynamic µJ/inference (accord / measured, error) | static µJ/inference (accord) | total µJ/inference | inferences/s | learning power µW (≤ budget) |"
        )?;
        writeln!(f, "|---|---|---|---|---|---|---|---|---|")?;
        for r in &self.rows {
            let set = if r.default_set {
                format!("{} (default)", r.price_set)
            } else {
                r.price_set.clone()
            };
            let Some(e) = &r.emulated else {
                writeln!(
                    f,
                    "| {} | {} | {set} | run failed: {} | | | | | |",
                    r.workload,
                    r.chip,
                    r.error.as_deref().unwrap_or("?")
                )?;
                continue;
            };
            let m = &r.measured;
            let acc = match (e.accuracy, m.accuracy) {
                (Some(a), Some(b)) => format!("{:.1} % / {:.1} %", 100.0 * a, 100.0 * b),
                (Some(a), None) => format!("{:.1} %", 100.0 * a),
                _ => "—".into(),
            };
            let total = cell(e.total_uj_per_inference, m.total_uj_per_inference, 2);
            let power = match (e.learning_power_uw, m.power_uw_at_most) {
                (Some(p), Some(b)) => format!(
                    "{p:.1} (≤ {b}: {})",
                    if p <= b { "within" } else { "exceeds" }
                ),
                (_, None) => "—".into(),
                (None, Some(b)) => format!("? (≤ {b})"),
            };
            writeln!(
                f,
                "| {} | {} | {set} | {acc} | {} | {} | {total} | {} | {power} |",
                r.workload,
                r.chip,
                cell(e.dynamic_uj_per_inference, m.dynamic_uj_per_inference, 2),
                e.static_uj_per_inference
                    .map_or_else(|| "not modelled".to_string(), |s| format!("{s:.3}")),
                cell(e.inferences_per_s, m.inferences_per_s, 0),
            )?;
        }
        for (chip, set, err) in self.best_sets() {
            writeln!(
                f,
                "\n{chip}: price set '{set}' predicts the measured energy best here (mean |error| {:.0} %)",
                100.0 * err
            )?;
        }
        for w in &self.workloads {
            writeln!(f, "\n{} — {}", w.name, w.title)?;
            writeln!(f, "  source: {}; {}", w.source.citation, w.source.location)?;
            for o in &w.source.open {
                writeln!(f, "  left open by the source: {o}")?;
            }
            for a in &w.approximations {
                writeln!(f, "  approximation: {a}")?;
            }
        }
        Ok(())
    }
}

/// What a child `accord train --json` reported.
fn emulated_of(v: &Value, tick_ms: Option<f64>) -> Emulated {
    let inf = &v["energy"]["inference"];
    let dynamic = inf["dynamic_pj_per_sample"].as_f64().map(|x| x / 1e6);
    let stat = inf["static_pj_per_sample"].as_f64().map(|x| x / 1e6);
    let training = &v["energy"]["training"];
    let steps = v["timescales"]["timesteps_per_train_sample"].as_f64();
    let static_uw = v["chip"]["static_mw_per_core"]
        .as_f64()
        .zip(v["mapping"]["cores"].as_array().map(Vec::len))
        .map_or(0.0, |(mw, cores)| mw * cores as f64 * 1e3);
    let learning_power_uw = match (
        training["dynamic_pj_per_sample"].as_f64(),
        steps,
        tick_ms,
        training["samples"].as_u64(),
    ) {
        // pJ per (timesteps × ms) = 1e-3 µW.
        (Some(d), Some(t), Some(ms), Some(n)) if n > 0 && t > 0.0 => {
            Some(d * 1e-3 / (t * ms) + static_uw)
        }
        _ => None,
    };
    Emulated {
        accuracy: v["test_accuracy"].as_f64(),
        dynamic_uj_per_inference: dynamic,
        static_uj_per_inference: stat,
        total_uj_per_inference: dynamic.zip(stat).map(|(d, s)| d + s),
        ms_per_inference: inf["time_ns_per_sample"].as_f64().map(|x| x / 1e6),
        inferences_per_s: v["timescales"]["pipelined_inference_per_s"].as_f64(),
        learning_power_uw,
    }
}

/// What [`run`] is about to do, for a progress line.
#[derive(Clone, Copy, Debug)]
pub enum Progress<'a> {
    /// Train `workload`'s network on the `f64` reference (its `pretrain` arguments).
    Pretraining {
        /// The workload.
        workload: &'a Workload,
    },
    /// Run `workload` on its chip under `price_set`.
    Running {
        /// The workload.
        workload: &'a Workload,
        /// The price set.
        price_set: &'a str,
    },
}

impl fmt::Display for Progress<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Progress::Pretraining { workload } => {
                write!(f, "{}: training on the f64 reference", workload.name)
            }
            Progress::Running {
                workload,
                price_set,
            } => write!(
                f,
                "{} on {} with price set {price_set}",
                workload.name, workload.chip
            ),
        }
    }
}

/// The `f64` reference run of a workload with `pretrain`, saved to `ckpt`.
fn pretrain(runner: &dyn Runner, w: &Workload, data: &OsStr, ckpt: &Path) -> Result<(), String> {
    let mut args: Vec<OsString> = vec!["--data".into(), data.into()];
    args.extend(w.pretrain.iter().map(OsString::from));
    args.extend([
        "--save".into(),
        ckpt.as_os_str().into(),
        "--force".into(),
        "--json".into(),
    ]);
    let run = runner.train(&args)?;
    if run.success {
        Ok(())
    } else {
        Err(format!("pretraining: {}", run.error))
    }
}

/// Run one workload under one price set.
fn run_one(
    runner: &dyn Runner,
    w: &Workload,
    data: &OsStr,
    ckpt: Option<&Path>,
    set: &str,
) -> Result<Emulated, String> {
    let mut args: Vec<OsString> = vec![
        "--chip".into(),
        w.chip.as_str().into(),
        "--data".into(),
        data.into(),
    ];
    args.extend(w.args.iter().map(OsString::from));
    if let Some(c) = ckpt {
        args.extend(["--load".into(), c.as_os_str().into()]);
    }
    args.extend([
        "--set".into(),
        format!("price_set={set}").into(),
        "--json".into(),
    ]);
    let run = runner.train(&args)?;
    match &run.report {
        Some(v) => Ok(emulated_of(v, w.measured.tick_ms)),
        None => Err(run.error),
    }
}

/// The workload files in `dir`, sorted by name, filtered by `only`.
///
/// # Errors
/// An unreadable folder or file, a bad file, a name in `only` that matches no workload, no
/// workload at all.
pub fn workloads(dir: &Path, only: &[String]) -> Result<Vec<Workload>, CalibrateError> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|error| CalibrateError::Dir {
            dir: dir.to_path_buf(),
            error,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    let mut all = paths
        .iter()
        .map(|p| Workload::load(p))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(miss) = only.iter().find(|n| !all.iter().any(|w| &w.name == *n)) {
        let names: Vec<&str> = all.iter().map(|w| w.name.as_str()).collect();
        return Err(Invalid::new(
            "only",
            format!(
                " {miss}: no such workload in {} (has {})",
                dir.display(),
                names.join(", ")
            ),
        )
        .into());
    }
    if !only.is_empty() {
        all.retain(|w| only.contains(&w.name));
    }
    if all.is_empty() {
        return Err(Invalid::new(
            "dir",
            format!(" {}: no workload files (*.toml)", dir.display()),
        )
        .into());
    }
    Ok(all)
}

/// Run every workload of `workloads` once per price set of its chip, each through `runner`,
/// and return emulated beside measured. `out` is the folder of the runs' own files (the
/// synthetic data `NAME.csv`, the pretrained network `NAME-pretrained.bin`); it must exist.
/// `progress` hears of each step before it starts. A run that fails is a row with its error;
/// accuracy on synthetic inputs (labels cycling through the classes) is not reported.
///
/// # Errors
/// A workload's chip model that cannot be opened, synthetic data that cannot be written.
pub fn run(
    workloads: Vec<Workload>,
    out: &Path,
    runner: &dyn Runner,
    mut progress: impl FnMut(Progress<'_>),
) -> Result<Calibration, CalibrateError> {
    // Workloads built in code get the checks a file's get (a name that is a file name, one
    // data source, bounded sizes) before any file is written.
    for w in &workloads {
        w.check(Path::new(&format!("workload '{}'", w.name)))?;
    }
    let mut rows = Vec::new();
    for w in &workloads {
        let model = crate::chip::open(&w.chip).map_err(|error| CalibrateError::Chip {
            workload: w.name.clone(),
            chip: w.chip.clone(),
            error: Box::new(error),
        })?;
        let data = match (&w.data.bundled, &w.data.synthetic) {
            (Some(name), _) => OsString::from(name),
            (None, synthetic) => {
                // `check` allows no workload without a data source.
                let Some(s) = synthetic else { continue };
                let p = out.join(format!("{}.csv", w.name));
                write_synthetic(s, &p)?;
                p.into_os_string()
            }
        };
        let ckpt = out.join(format!("{}-pretrained.bin", w.name));
        let trained = if w.pretrain.is_empty() {
            Ok(None)
        } else {
            progress(Progress::Pretraining { workload: w });
            pretrain(runner, w, &data, &ckpt).map(|()| Some(ckpt.as_path()))
        };
        for (set, _) in &model.price_sets {
            progress(Progress::Running {
                workload: w,
                price_set: set,
            });
            let mut result = trained
                .clone()
                .and_then(|c| run_one(runner, w, &data, c, set));
            // Accuracy on synthetic inputs with cycling labels means nothing.
            if w.data.synthetic.is_some()
                && let Ok(e) = &mut result
            {
                e.accuracy = None;
            }
            rows.push(Row {
                workload: w.name.clone(),
                chip: model.name.clone(),
                price_set: set.clone(),
                default_set: *set == model.price_set,
                error: result.as_ref().err().cloned(),
                emulated: result.ok(),
                measured: w.measured.clone(),
            });
        }
    }
    Ok(Calibration { workloads, rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_workloads_load() {
        let all = workloads(&default_dir(), &[]).unwrap();
        assert!(all.len() >= 3);
        let chips: std::collections::BTreeSet<&str> = all.iter().map(|w| w.chip.as_str()).collect();
        assert!(chips.len() >= 2, "{chips:?}");
        for w in &all {
            assert!(crate::chip::open(&w.chip).is_ok(), "{}", w.chip);
            assert!(!w.source.citation.is_empty() && !w.approximations.is_empty());
        }
    }

    #[test]
    fn bad_workloads_are_named() {
        let dir = std::env::temp_dir().join(format!("accord-cal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let base = r#"name = "x"
title = "t"
chip = "loihi"
args = []
approximations = ["a"]
[data]
bundled = "iris"
[source]
citation = "c"
location = "l"
open = []
"#;
        let cases = [
            ("[measured]\n", "no figure"),
            (
                "[measured]\ndynamic_uj_per_inference = -1.0\n",
                "dynamic_uj_per_inference",
            ),
            ("[measured]\npower_uw_at_most = 5.0\n", "tick_ms"),
            ("[measured]\ninferences_per_s = 3.0\nbogus = 1\n", "bogus"),
        ];
        for (i, (extra, needle)) in cases.iter().enumerate() {
            let p = dir.join(format!("w{i}.toml"));
            std::fs::write(&p, format!("{base}{extra}")).unwrap();
            let e = Workload::load(&p).unwrap_err().to_string();
            assert!(e.contains(needle), "{needle}: {e}");
        }
        let p = dir.join("syn.toml");
        let text = base.replace(
            "bundled = \"iris\"",
            "synthetic = { features = 100000, classes = 2, rows = 1000000, seed = 1 }",
        );
        std::fs::write(&p, format!("{text}[measured]\ninferences_per_s = 1.0\n")).unwrap();
        assert!(
            Workload::load(&p)
                .unwrap_err()
                .to_string()
                .contains("at most")
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn errors_and_best_set() {
        assert_eq!(rel_error(Some(1.5), Some(1.0)), Some(0.5));
        assert_eq!(rel_error(None, Some(1.0)), None);
        let row = |set: &str, dynamic: f64| Row {
            workload: "w".into(),
            chip: "c".into(),
            price_set: set.into(),
            default_set: set == "a",
            emulated: Some(Emulated {
                dynamic_uj_per_inference: Some(dynamic),
                ..Emulated::default()
            }),
            error: None,
            measured: Measured {
                dynamic_uj_per_inference: Some(10.0),
                ..Measured::default()
            },
        };
        let cal = Calibration {
            workloads: vec![],
            rows: vec![row("a", 5.0), row("b", 12.0)],
        };
        let best = cal.best_sets();
        assert_eq!(best.len(), 1);
        assert_eq!(best[0].1, "b");
        assert!((best[0].2 - 0.2).abs() < 1e-12);
        let text = cal.to_string();
        assert!(text.contains("5.00 / 10.00 (-50 %)"), "{text}");
        assert!(text.contains("a (default)"));
    }
}
