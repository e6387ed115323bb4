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
use crate::chip::calibration::{BestSet, Recorded, RecordedRow};
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
    /// A file could not be written (synthetic or derived data).
    #[error(transparent)]
    Output(#[from] OutputError),
    /// The bundled dataset a workload's data is derived from cannot be read or cut.
    #[error("workload {workload}: data.derived: {reason}")]
    Data {
        /// The workload.
        workload: String,
        /// Why (the data reader's message, or what does not fit).
        reason: String,
    },
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
    /// A bundled image dataset cropped (and thresholded) as the source prepared it.
    pub derived: Option<Derived>,
}

/// A bundled dataset of square images, cut and thresholded as a source prepared its inputs
/// (MNIST cut to its central 20 × 20 pixels and made binary, for example).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Derived {
    /// The bundled dataset: `mnist` (the one of square images).
    pub from: String,
    /// Pixels cut from each side.
    pub crop: usize,
    /// Pixels above it become 1, the rest 0; `None`: values kept.
    pub threshold: Option<f64>,
    /// Rows taken from the start of the dataset's training half (accord splits them into
    /// train and test as any CSV).
    pub rows: usize,
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
    /// Energy per training sample, µJ (what the source measured: the workload says whether
    /// dynamic or total).
    pub train_uj_per_sample: Option<f64>,
    /// Time per training sample, ms.
    pub train_ms_per_sample: Option<f64>,
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

/// MNIST's image side, pixels.
const MNIST_SIDE: usize = 28;

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

    /// CRC-32 of what a run of the workload depends on and is compared with (chip, arguments,
    /// pretraining, data, measured figures); its prose (title, source, approximations) may
    /// change without it.
    pub fn run_fingerprint(&self) -> u32 {
        let key = (
            &self.chip,
            &self.args,
            &self.pretrain,
            &self.data,
            &self.measured,
        );
        serde_json::to_vec(&key).map_or(0, |b| crc32fast::hash(&b))
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
            ("train_uj_per_sample", m.train_uj_per_sample),
            ("train_ms_per_sample", m.train_ms_per_sample),
        ];
        for (key, v) in figures {
            if let Some(v) = v
                && !(v.is_finite() && v > 0.0)
            {
                return Err(bad(format!("measured.{key} = {v} must be finite and > 0")));
            }
        }
        if figures[..4]
            .iter()
            .chain(&figures[7..])
            .all(|(_, v)| v.is_none())
            && m.power_uw_at_most.is_none()
        {
            return Err(bad(
                "[measured] gives no figure to compare (dynamic_uj_per_inference, total_uj_per_inference, ms_per_inference, inferences_per_s, train_uj_per_sample, train_ms_per_sample or power_uw_at_most)".into(),
            ));
        }
        if let Some(a) = w
            .args
            .iter()
            .chain(&w.pretrain)
            .find(|a| *a == "--seed" || a.starts_with("--seed="))
        {
            return Err(bad(format!(
                "args and pretrain must not set the seed ('{a}'): accord calibrate runs seeds 1..=N itself (--seeds N)"
            )));
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
        match (&w.data.bundled, &w.data.synthetic, &w.data.derived) {
            (Some(_), None, None) => {}
            (None, None, Some(d)) => {
                if d.from != "mnist" {
                    return Err(bad(format!(
                        "data.derived.from = \"{}\": only \"mnist\" (square images) can be cut",
                        d.from
                    )));
                }
                if d.crop >= MNIST_SIDE / 2 {
                    return Err(bad(format!(
                        "data.derived.crop = {} leaves nothing of a {MNIST_SIDE} × {MNIST_SIDE} image",
                        d.crop
                    )));
                }
                if d.rows < 50 {
                    return Err(bad(format!(
                        "data.derived.rows = {} is too few to split into train and test (at least 50)",
                        d.rows
                    )));
                }
                if let Some(t) = d.threshold
                    && !(t.is_finite() && t > 0.0 && t < 1.0)
                {
                    return Err(bad(format!(
                        "data.derived.threshold = {t} must lie in (0, 1)"
                    )));
                }
            }
            (None, Some(s), None) => {
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
                    "[data] needs exactly one of bundled = \"NAME\", synthetic = { … } or derived = { … }".into(),
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

/// Write `d`'s rows of its bundled dataset, cut and thresholded, as a CSV (pixels then the
/// label) into `path`.
fn write_derived(name: &str, d: &Derived, path: &Path) -> Result<(), CalibrateError> {
    let bad = |reason: String| CalibrateError::Data {
        workload: name.to_owned(),
        reason,
    };
    let split = crate::data::load_bundled(&d.from, &crate::data::default_data_dir(), 0)
        .map_err(|e| bad(e.to_string()))?;
    let ds = &split.train;
    if ds.dim != MNIST_SIDE * MNIST_SIDE {
        return Err(bad(format!(
            "{} has {} features per row, not {MNIST_SIDE} × {MNIST_SIDE} pixels",
            d.from, ds.dim
        )));
    }
    if d.rows > ds.len() {
        return Err(bad(format!(
            "rows = {} but {}'s training half has {} rows",
            d.rows,
            d.from,
            ds.len()
        )));
    }
    let keep = d.crop..MNIST_SIDE - d.crop;
    let mut text = String::with_capacity(d.rows * keep.len() * keep.len() * 2);
    for i in 0..d.rows {
        let row = ds.row(i);
        for y in keep.clone() {
            for x in keep.clone() {
                let v = row[y * MNIST_SIDE + x];
                match d.threshold {
                    Some(t) => text.push_str(if v > t { "1," } else { "0," }),
                    None => {
                        let _ = write!(text, "{v:.4},");
                    }
                }
            }
        }
        let _ = writeln!(text, "{}", ds.labels[i]);
    }
    crate::output::write_atomic(path, text.as_bytes())?;
    Ok(())
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
    /// Dynamic energy per training sample, µJ (firing, credit and plasticity).
    pub train_dynamic_uj_per_sample: Option<f64>,
    /// Static energy per training sample, µJ (`None`: not modelled by the price set).
    pub train_static_uj_per_sample: Option<f64>,
    /// Modelled time per training sample, ms.
    pub train_ms_per_sample: Option<f64>,
}

impl Emulated {
    /// Every figure, in field order (for means and spreads over seeds).
    fn figures(&self) -> [Option<f64>; 10] {
        [
            self.accuracy,
            self.dynamic_uj_per_inference,
            self.static_uj_per_inference,
            self.total_uj_per_inference,
            self.ms_per_inference,
            self.inferences_per_s,
            self.learning_power_uw,
            self.train_dynamic_uj_per_sample,
            self.train_static_uj_per_sample,
            self.train_ms_per_sample,
        ]
    }

    fn from_figures(f: [Option<f64>; 10]) -> Self {
        Emulated {
            accuracy: f[0],
            dynamic_uj_per_inference: f[1],
            static_uj_per_inference: f[2],
            total_uj_per_inference: f[3],
            ms_per_inference: f[4],
            inferences_per_s: f[5],
            learning_power_uw: f[6],
            train_dynamic_uj_per_sample: f[7],
            train_static_uj_per_sample: f[8],
            train_ms_per_sample: f[9],
        }
    }

    /// Field by field over `runs`: the mean, and the sample standard deviation (`None` for
    /// fewer than two runs). A figure missing from any run is missing from both.
    pub fn mean_and_spread(runs: &[Emulated]) -> (Emulated, Option<Emulated>) {
        let n = runs.len() as f64;
        let column =
            |k: usize| -> Option<Vec<f64>> { runs.iter().map(|r| r.figures()[k]).collect() };
        let mut mean = [None; 10];
        let mut sd = [None; 10];
        for k in 0..10 {
            let Some(xs) = column(k).filter(|xs| !xs.is_empty()) else {
                continue;
            };
            let m = xs.iter().sum::<f64>() / n;
            mean[k] = Some(m);
            if xs.len() >= 2 {
                let var = xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0);
                sd[k] = Some(var.sqrt());
            }
        }
        let spread = (runs.len() >= 2).then(|| Emulated::from_figures(sd));
        (Emulated::from_figures(mean), spread)
    }
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
    /// What accord predicts: the mean over the seeds (absent when a run failed).
    pub emulated: Option<Emulated>,
    /// The sample standard deviation of each figure over the seeds (absent for one seed).
    pub spread: Option<Emulated>,
    /// The seeds run (`--seed` of the pretraining and of the chip run).
    pub seeds: Vec<u64>,
    /// Each seed's figures, in the order of `seeds`.
    pub per_seed: Vec<Emulated>,
    /// Why a run failed (the first failure, naming its seed).
    pub error: Option<String>,
    /// What was measured.
    pub measured: Measured,
    /// [`ChipModel::fingerprint`](crate::chip::ChipModel::fingerprint) of the chip model
    /// under this price set (before the workload's own `--set` arguments).
    pub chip_fingerprint: Option<u32>,
    /// The set's prices hold the static power: its energy is total energy only.
    pub static_in_prices: bool,
}

/// Relative error `(emulated − measured) / measured`.
pub fn rel_error(emulated: Option<f64>, measured: Option<f64>) -> Option<f64> {
    match (emulated, measured) {
        (Some(e), Some(m)) if m != 0.0 && e.is_finite() => Some((e - m) / m),
        _ => None,
    }
}

/// One step of the fit-on-one, test-on-the-others check: every price of a set scaled by the
/// one factor that makes workload `fit_on` exact, and the error that leaves on `test_on`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CrossCheck {
    /// The chip model.
    pub chip: String,
    /// The price set scaled.
    pub price_set: String,
    /// The workload the factor is fitted on.
    pub fit_on: String,
    /// The factor on dynamic energy.
    pub scale: f64,
    /// The workload it is tested on.
    pub test_on: String,
    /// Its energy error before scaling.
    pub error_before: f64,
    /// Its energy error after.
    pub error_after: f64,
}

impl Row {
    /// The price set's name, marked when it is the chip's default.
    fn set_label(&self) -> String {
        if self.default_set {
            format!("{} (default)", self.price_set)
        } else {
            self.price_set.clone()
        }
    }

    /// A table line for a failed run: its error, then `blanks` empty cells.
    fn failed_line(&self, set: &str, blanks: usize) -> String {
        format!(
            "| {} | {} | {set} | run failed: {} |{}",
            self.workload,
            self.chip,
            self.error.as_deref().unwrap_or("?"),
            " |".repeat(blanks)
        )
    }

    /// Which energy per inference [`energy_error`](Self::energy_error) compares: `dynamic`
    /// where measured, else `total`.
    pub fn energy_figure(&self) -> Option<&'static str> {
        if self.measured.dynamic_uj_per_inference.is_some() {
            Some("dynamic")
        } else if self.measured.total_uj_per_inference.is_some() {
            Some("total")
        } else {
            None
        }
    }

    /// Dynamic energy per inference scaled by `k`, as the measured figure counts it (plus
    /// static where the measurement is total), against the measurement.
    fn scaled_energy_error(&self, k: f64) -> Option<f64> {
        let e = self.emulated.as_ref()?;
        let dynamic = e.dynamic_uj_per_inference? * k;
        match self.energy_figure()? {
            "dynamic" => rel_error(Some(dynamic), self.measured.dynamic_uj_per_inference),
            _ => rel_error(
                e.static_uj_per_inference.map(|s| dynamic + s),
                self.measured.total_uj_per_inference,
            ),
        }
    }

    /// The factor on dynamic energy that makes this row's energy exact.
    fn exact_scale(&self) -> Option<f64> {
        let e = self.emulated.as_ref()?;
        let d = e.dynamic_uj_per_inference.filter(|d| *d > 0.0)?;
        let k = match self.energy_figure()? {
            "dynamic" => self.measured.dynamic_uj_per_inference? / d,
            _ => (self.measured.total_uj_per_inference? - e.static_uj_per_inference?) / d,
        };
        (k.is_finite() && k > 0.0).then_some(k)
    }

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
    /// Seeds per row (`1..=seeds`).
    pub seeds: u64,
}

impl Calibration {
    /// Rows whose run failed (the command line exits with status 1 if there are any).
    pub fn failures(&self) -> usize {
        self.rows.iter().filter(|r| r.emulated.is_none()).count()
    }

    /// Per chip: the price set with the smallest mean
    /// |energy error|, the mean taken over the workloads on which every set of the chip has an
    /// energy error (so that no set wins by skipping a workload; an all-in set has no dynamic
    /// figure for a dynamic measurement), with that error and the number of those workloads.
    /// A chip whose sets share no such workload has no entry ([`undecided`](Self::undecided)).
    pub fn best_sets(&self) -> Vec<(String, String, f64, usize)> {
        let mut out = Vec::new();
        for (chip, sets, common) in self.comparable() {
            if common.is_empty() {
                continue;
            }
            let mut best: Option<(String, f64)> = None;
            for set in sets {
                let errs: Vec<f64> = self
                    .rows
                    .iter()
                    .filter(|r| r.chip == chip && r.price_set == set)
                    .filter(|r| common.contains(&r.workload.as_str()))
                    .filter_map(Row::energy_error)
                    .map(f64::abs)
                    .collect();
                let mean = errs.iter().sum::<f64>() / errs.len().max(1) as f64;
                if best.as_ref().is_none_or(|(_, b)| mean < *b) {
                    best = Some((set.to_owned(), mean));
                }
            }
            if let Some((set, err)) = best {
                out.push((chip.to_owned(), set, err, common.len()));
            }
        }
        out
    }

    /// Chips with two or more price sets that share no workload with an energy error for every
    /// set: the calibration cannot choose between them.
    pub fn undecided(&self) -> Vec<String> {
        self.comparable()
            .into_iter()
            .filter(|(_, sets, common)| sets.len() >= 2 && common.is_empty())
            .map(|(chip, _, _)| chip.to_owned())
            .collect()
    }

    /// Per chip: its price sets and the workloads on which each of them has an energy error.
    fn comparable(&self) -> Vec<(&str, Vec<&str>, Vec<&str>)> {
        let chips: std::collections::BTreeSet<&str> =
            self.rows.iter().map(|r| r.chip.as_str()).collect();
        chips
            .into_iter()
            .map(|chip| {
                let of = |f: fn(&Row) -> &str| {
                    let mut v: Vec<&str> =
                        self.rows.iter().filter(|r| r.chip == chip).map(f).collect();
                    v.sort_unstable();
                    v.dedup();
                    v
                };
                let sets = of(|r| r.price_set.as_str());
                let common = of(|r| r.workload.as_str())
                    .into_iter()
                    .filter(|w| {
                        sets.iter().all(|s| {
                            self.rows.iter().any(|r| {
                                r.chip == chip
                                    && r.price_set == *s
                                    && r.workload == *w
                                    && r.energy_error().is_some()
                            })
                        })
                    })
                    .collect();
                (chip, sets, common)
            })
            .collect()
    }

    /// Fit on one, test on the others: per chip and price set with two or more workloads that
    /// measure energy, every price scaled by the factor that makes one workload exact, and the
    /// error that leaves on each other workload. A factor that holds across workloads says the
    /// set is off by a constant; one that does not says the error is in what is counted.
    pub fn cross_checks(&self) -> Vec<CrossCheck> {
        let mut out = Vec::new();
        for fit in &self.rows {
            let Some(k) = fit.exact_scale() else { continue };
            for test in self.rows.iter().filter(|r| {
                r.chip == fit.chip && r.price_set == fit.price_set && r.workload != fit.workload
            }) {
                if let (Some(before), Some(after)) =
                    (test.energy_error(), test.scaled_energy_error(k))
                {
                    out.push(CrossCheck {
                        chip: fit.chip.clone(),
                        price_set: fit.price_set.clone(),
                        fit_on: fit.workload.clone(),
                        scale: k,
                        test_on: test.workload.clone(),
                        error_before: before,
                        error_after: after,
                    });
                }
            }
        }
        out
    }

    /// The calibration as `accord calibrate --record` writes it: per row the fingerprints of
    /// the chip model and the workload file beside the errors, and the best set per chip.
    pub fn recorded(&self) -> Recorded {
        let rows = self
            .rows
            .iter()
            .filter_map(|r| {
                let e = r.emulated.as_ref()?;
                Some(RecordedRow {
                    workload: r.workload.clone(),
                    chip: r.chip.clone(),
                    price_set: r.price_set.clone(),
                    chip_fingerprint: r.chip_fingerprint?,
                    workload_fingerprint: self
                        .workloads
                        .iter()
                        .find(|w| w.name == r.workload)
                        .map_or(0, Workload::run_fingerprint),
                    energy_figure: r.energy_figure().map(str::to_owned),
                    energy_error: r.energy_error(),
                    latency_error: rel_error(e.ms_per_inference, r.measured.ms_per_inference),
                    throughput_error: rel_error(e.inferences_per_s, r.measured.inferences_per_s),
                    seeds: r.seeds.len() as u64,
                })
            })
            .collect();
        let best = self
            .best_sets()
            .into_iter()
            .map(|(chip, price_set, err, workloads)| BestSet {
                workloads,
                chip,
                price_set,
                mean_abs_energy_error: err,
            })
            .collect();
        Recorded {
            accord_version: env!("CARGO_PKG_VERSION").to_owned(),
            seeds: self.seeds,
            rows,
            best,
            undecided: self.undecided(),
        }
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
            "train_uj",
            "train_uj_measured",
            "train_error",
            "train_ms",
            "train_ms_measured",
            "seeds",
            "dynamic_uj_sd",
            "total_uj_sd",
            "ms_sd",
            "error",
        ];
        w.write_record(header)?;
        for r in &self.rows {
            let e = r.emulated.clone().unwrap_or_default();
            let sd = r.spread.clone().unwrap_or_default();
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
                f(e.train_dynamic_uj_per_sample),
                f(m.train_uj_per_sample),
                f(rel_error(
                    e.train_dynamic_uj_per_sample,
                    m.train_uj_per_sample,
                )),
                f(e.train_ms_per_sample),
                f(m.train_ms_per_sample),
                r.seeds.len().to_string(),
                f(sd.dynamic_uj_per_inference),
                f(sd.total_uj_per_inference),
                f(sd.ms_per_inference),
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
        (None, None) => "—".into(),
        (Some(e), None) => format!("{} / —", v(e)),
        (None, Some(m)) => format!("? / {}", v(m)),
        (Some(e), Some(m)) => match rel_error(Some(e), Some(m)) {
            Some(err) => format!("{} / {} ({:+.0} %)", v(e), v(m), 100.0 * err),
            None => format!("{} / {}", v(e), v(m)),
        },
    }
}

/// `mean ± sd` (the sd left out when there is none; a nonzero sd below the mean's last digit
/// in two significant digits).
fn mean_sd(mean: Option<f64>, sd: Option<f64>, digits: usize) -> String {
    match (mean, sd) {
        (None, _) => "—".into(),
        (Some(m), None) => format!("{m:.digits$}"),
        (Some(m), Some(s)) if s > 0.0 && s < 0.5 * 10f64.powi(-(digits as i32)) => {
            format!("{m:.digits$} ± {s:.1e}")
        }
        (Some(m), Some(s)) => format!("{m:.digits$} ± {s:.digits$}"),
    }
}

impl Calibration {
    /// The first table: per inference, emulated (mean over the seeds) beside measured.
    fn write_inference(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Per inference (accord: mean over {} seed(s)):\n",
            self.seeds
        )?;
        writeln!(
            f,
            "| workload | chip | price set | accuracy (accord / measured) | dynamic µJ (accord / measured, error) | static µJ (accord) | total µJ | ms | inferences/s | learning power µW (≤ budget) |"
        )?;
        writeln!(f, "|---|---|---|---|---|---|---|---|---|---|")?;
        for r in &self.rows {
            let set = r.set_label();
            let Some(e) = &r.emulated else {
                writeln!(f, "{}", r.failed_line(&set, 6))?;
                continue;
            };
            let m = &r.measured;
            let acc = match (e.accuracy, m.accuracy) {
                (Some(a), Some(b)) => format!("{:.1} % / {:.1} %", 100.0 * a, 100.0 * b),
                (Some(a), None) => format!("{:.1} %", 100.0 * a),
                _ => "—".into(),
            };
            let power = match (e.learning_power_uw, m.power_uw_at_most) {
                (Some(p), Some(b)) => format!(
                    "{p:.1} (≤ {b}: {})",
                    if p <= b { "within" } else { "exceeds" }
                ),
                (_, None) => "—".into(),
                (None, Some(b)) => format!("? (≤ {b})"),
            };
            let (dynamic, stat) = if r.static_in_prices {
                (
                    match m.dynamic_uj_per_inference {
                        Some(d) => format!("all-in: none / {d:.2}"),
                        None => "all-in: none".to_string(),
                    },
                    "inside the prices".to_string(),
                )
            } else {
                (
                    cell(e.dynamic_uj_per_inference, m.dynamic_uj_per_inference, 2),
                    e.static_uj_per_inference
                        .map_or_else(|| "not modelled".to_string(), |s| format!("{s:.3}")),
                )
            };
            writeln!(
                f,
                "| {} | {} | {set} | {acc} | {dynamic} | {stat} | {} | {} | {} | {power} |",
                r.workload,
                r.chip,
                cell(e.total_uj_per_inference, m.total_uj_per_inference, 2),
                cell(e.ms_per_inference, m.ms_per_inference, 3),
                cell(e.inferences_per_s, m.inferences_per_s, 0),
            )?;
        }
        Ok(())
    }

    /// Training per sample, for the workloads that measured it.
    fn write_training(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows: Vec<&Row> = self
            .rows
            .iter()
            .filter(|r| {
                r.measured.train_uj_per_sample.is_some() || r.measured.train_ms_per_sample.is_some()
            })
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        writeln!(
            f,
            "\nPer training sample (accord's dynamic energy beside the measured figure):\n"
        )?;
        writeln!(
            f,
            "| workload | chip | price set | µJ (accord / measured, error) | static µJ (accord) | ms (accord / measured, error) |"
        )?;
        writeln!(f, "|---|---|---|---|---|---|")?;
        for r in rows {
            let set = r.set_label();
            let Some(e) = &r.emulated else {
                writeln!(f, "{}", r.failed_line(&set, 2))?;
                continue;
            };
            writeln!(
                f,
                "| {} | {} | {set} | {} | {} | {} |",
                r.workload,
                r.chip,
                cell(
                    e.train_dynamic_uj_per_sample,
                    r.measured.train_uj_per_sample,
                    2
                ),
                e.train_static_uj_per_sample
                    .map_or_else(|| "not modelled".to_string(), |s| format!("{s:.3}")),
                cell(e.train_ms_per_sample, r.measured.train_ms_per_sample, 3),
            )?;
        }
        Ok(())
    }

    /// NeuroBench's system track: energy and latency per inference with their spread.
    fn write_system_track(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "\nNeuroBench system track (emulated; mean ± sample sd over seeds 1..={}):\n",
            self.seeds
        )?;
        writeln!(
            f,
            "| workload | chip | price set | energy per inference µJ | latency ms | inferences/s |"
        )?;
        writeln!(f, "|---|---|---|---|---|---|")?;
        for r in &self.rows {
            let (Some(e), s) = (&r.emulated, r.spread.clone().unwrap_or_default()) else {
                continue;
            };
            let energy = match e.total_uj_per_inference {
                Some(t) => format!("{} total", mean_sd(Some(t), s.total_uj_per_inference, 3)),
                None => format!(
                    "{} dynamic (no static modelled)",
                    mean_sd(e.dynamic_uj_per_inference, s.dynamic_uj_per_inference, 3)
                ),
            };
            let set = r.set_label();
            writeln!(
                f,
                "| {} | {} | {set} | {energy} | {} | {} |",
                r.workload,
                r.chip,
                mean_sd(e.ms_per_inference, s.ms_per_inference, 4),
                mean_sd(e.inferences_per_s, s.inferences_per_s, 0),
            )?;
        }
        Ok(())
    }

    /// The best set per chip and the fit-on-one, test-on-the-others check.
    fn write_verdicts(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (chip, set, err, n) in self.best_sets() {
            writeln!(
                f,
                "\n{chip}: price set '{set}' predicts the measured energy best here (mean |error| {:.0} % over the {n} workload(s) every set predicts)",
                100.0 * err
            )?;
        }
        for chip in self.undecided() {
            writeln!(
                f,
                "\n{chip}: no workload that every price set predicts comparably (an all-in set prices total energy only, and a workload measures dynamic energy): the calibration does not choose"
            )?;
        }
        let checks = self.cross_checks();
        if !checks.is_empty() {
            writeln!(
                f,
                "\nFit on one, test on the others (every dynamic price of a set scaled to make one workload exact):\n"
            )?;
            writeln!(
                f,
                "| chip | price set | fitted on | factor | tested on | error before | error after |"
            )?;
            writeln!(f, "|---|---|---|---|---|---|---|")?;
            for c in checks {
                writeln!(
                    f,
                    "| {} | {} | {} | {:.3} | {} | {:+.0} % | {:+.0} % |",
                    c.chip,
                    c.price_set,
                    c.fit_on,
                    c.scale,
                    c.test_on,
                    100.0 * c.error_before,
                    100.0 * c.error_after
                )?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for Calibration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_inference(f)?;
        self.write_training(f)?;
        self.write_system_track(f)?;
        self.write_verdicts(f)?;
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
    // A price set whose prices hold the static power (all-in) prices total energy: it has no
    // dynamic figure to compare with a dynamic measurement.
    let all_in = v["chip"]["static_in_prices"].as_bool().unwrap_or(false);
    let priced = inf["dynamic_pj_per_sample"].as_f64().map(|x| x / 1e6);
    let (dynamic, all_in_total) = if all_in {
        (None, priced)
    } else {
        (priced, None)
    };
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
    let trained = training["samples"].as_u64().is_some_and(|n| n > 0);
    let train_figure = |key: &str, scale: f64| {
        training[key]
            .as_f64()
            .filter(|_| trained)
            .map(|x| x / scale)
    };
    Emulated {
        accuracy: v["test_accuracy"].as_f64(),
        dynamic_uj_per_inference: dynamic,
        static_uj_per_inference: stat,
        total_uj_per_inference: all_in_total.or_else(|| dynamic.zip(stat).map(|(d, s)| d + s)),
        // A chip without latencies (ReckOn) models no time: none, not zero.
        ms_per_inference: inf["time_ns_per_sample"]
            .as_f64()
            .filter(|x| *x > 0.0)
            .map(|x| x / 1e6),
        inferences_per_s: v["timescales"]["pipelined_inference_per_s"]
            .as_f64()
            .filter(|x| x.is_finite() && *x > 0.0),
        learning_power_uw,
        train_dynamic_uj_per_sample: train_figure("dynamic_pj_per_sample", 1e6).filter(|_| !all_in),
        train_static_uj_per_sample: train_figure("static_pj_per_sample", 1e6),
        train_ms_per_sample: train_figure("time_ns_per_sample", 1e6),
    }
}

/// What [`run`] is about to do, for a progress line.
#[derive(Clone, Copy, Debug)]
pub enum Progress<'a> {
    /// Train `workload`'s network on the `f64` reference (its `pretrain` arguments).
    Pretraining {
        /// The workload.
        workload: &'a Workload,
        /// The seed.
        seed: u64,
    },
    /// Run `workload` on its chip under `price_set`.
    Running {
        /// The workload.
        workload: &'a Workload,
        /// The price set.
        price_set: &'a str,
        /// The seed.
        seed: u64,
    },
}

impl fmt::Display for Progress<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Progress::Pretraining { workload, seed } => write!(
                f,
                "{}: training on the f64 reference, seed {seed}",
                workload.name
            ),
            Progress::Running {
                workload,
                price_set,
                seed,
            } => write!(
                f,
                "{} on {} with price set {price_set}, seed {seed}",
                workload.name, workload.chip
            ),
        }
    }
}

/// The `f64` reference run of a workload with `pretrain` and `seed`, saved to `ckpt`.
fn pretrain(
    runner: &dyn Runner,
    w: &Workload,
    data: &OsStr,
    seed: u64,
    ckpt: &Path,
) -> Result<(), String> {
    let mut args: Vec<OsString> = vec!["--data".into(), data.into()];
    args.extend(w.pretrain.iter().map(OsString::from));
    args.extend([
        "--seed".into(),
        seed.to_string().into(),
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

/// Run one workload under one price set with one seed.
fn run_one(
    runner: &dyn Runner,
    w: &Workload,
    data: &OsStr,
    ckpt: Option<&Path>,
    set: &str,
    seed: u64,
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
        "--seed".into(),
        seed.to_string().into(),
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

/// Most seeds a calibration runs per workload and price set.
pub const MAX_SEEDS: u64 = 100;

/// Run every workload of `workloads` under every price set of its chip, with seeds
/// `1..=seeds` each (the seed of its pretraining and of its chip run), through `runner`, and
/// return emulated beside measured: per row the mean over the seeds and their spread. `out`
/// is the folder of the runs' own files (the synthetic or derived data `NAME.csv`, the
/// pretrained networks `NAME-pretrained-seedS.bin`); it must exist. `progress` hears of each
/// step before it starts. A run that fails makes its row a failure with its error; accuracy
/// on synthetic inputs (labels cycling through the classes) is not reported.
///
/// # Errors
/// `seeds` outside `1..=`[`MAX_SEEDS`], a workload's chip model that cannot be opened, data
/// that cannot be written (data that cannot be derived fails that workload's rows instead).
pub fn run(
    workloads: Vec<Workload>,
    out: &Path,
    runner: &dyn Runner,
    seeds: u64,
    mut progress: impl FnMut(Progress<'_>),
) -> Result<Calibration, CalibrateError> {
    if !(1..=MAX_SEEDS).contains(&seeds) {
        return Err(Invalid::new("seeds", format!(" {seeds} must lie in 1..={MAX_SEEDS}")).into());
    }
    // Workloads built in code get the checks a file's get (a name that is a file name, one
    // data source, bounded sizes) before any file is written.
    for w in &workloads {
        w.check(Path::new(&format!("workload '{}'", w.name)))?;
    }
    let seed_list: Vec<u64> = (1..=seeds).collect();
    let mut rows = Vec::new();
    for w in &workloads {
        let model = crate::chip::open(&w.chip).map_err(|error| CalibrateError::Chip {
            workload: w.name.clone(),
            chip: w.chip.clone(),
            error: Box::new(error),
        })?;
        // Data that cannot be derived fails this workload's rows, not the calibration.
        let data = match workload_data(w, out) {
            Ok(d) => d,
            Err(CalibrateError::Data { reason, .. }) => {
                for (set, _) in &model.price_sets {
                    rows.push(Row {
                        workload: w.name.clone(),
                        chip: model.name.clone(),
                        price_set: set.clone(),
                        default_set: *set == model.price_set,
                        emulated: None,
                        spread: None,
                        seeds: seed_list.clone(),
                        per_seed: Vec::new(),
                        error: Some(format!("data.derived: {reason}")),
                        measured: w.measured.clone(),
                        chip_fingerprint: None,
                        static_in_prices: false,
                    });
                }
                continue;
            }
            Err(e) => return Err(e),
        };
        // Per seed: the pretrained network (if any), or why pretraining failed.
        let mut trained: Vec<Result<Option<PathBuf>, String>> = Vec::new();
        for &seed in &seed_list {
            if w.pretrain.is_empty() {
                trained.push(Ok(None));
                continue;
            }
            progress(Progress::Pretraining { workload: w, seed });
            let ckpt = out.join(format!("{}-pretrained-seed{seed}.bin", w.name));
            trained.push(pretrain(runner, w, &data, seed, &ckpt).map(|()| Some(ckpt)));
        }
        for (set, _) in &model.price_sets {
            let mut per_seed = Vec::new();
            let mut error = None;
            for (&seed, ckpt) in seed_list.iter().zip(&trained) {
                progress(Progress::Running {
                    workload: w,
                    price_set: set,
                    seed,
                });
                let result = ckpt
                    .clone()
                    .and_then(|c| run_one(runner, w, &data, c.as_deref(), set, seed));
                match result {
                    // Accuracy on synthetic inputs with cycling labels means nothing.
                    Ok(mut e) => {
                        if w.data.synthetic.is_some() {
                            e.accuracy = None;
                        }
                        per_seed.push(e);
                    }
                    Err(e) => {
                        error = Some(format!("seed {seed}: {e}"));
                        break;
                    }
                }
            }
            let (emulated, spread) = if error.is_none() {
                let (m, s) = Emulated::mean_and_spread(&per_seed);
                (Some(m), s)
            } else {
                (None, None)
            };
            let set_model =
                crate::chip::open_with(&w.chip, &[("price_set".to_owned(), set.clone())]).ok();
            let chip_fingerprint = set_model.as_ref().and_then(|m| m.fingerprint());
            let static_in_prices = set_model.as_ref().is_some_and(|m| m.static_in_prices);
            rows.push(Row {
                workload: w.name.clone(),
                chip: model.name.clone(),
                price_set: set.clone(),
                default_set: *set == model.price_set,
                emulated,
                spread,
                seeds: seed_list.clone(),
                per_seed,
                error,
                measured: w.measured.clone(),
                chip_fingerprint,
                static_in_prices,
            });
        }
    }
    Ok(Calibration {
        workloads,
        rows,
        seeds,
    })
}

/// The `--data` of a workload's runs: a bundled name, or the synthetic or derived CSV written
/// into `out`.
fn workload_data(w: &Workload, out: &Path) -> Result<OsString, CalibrateError> {
    let p = out.join(format!("{}.csv", w.name));
    match (&w.data.bundled, &w.data.synthetic, &w.data.derived) {
        (Some(name), _, _) => return Ok(OsString::from(name)),
        (None, Some(s), _) => write_synthetic(s, &p)?,
        (None, None, Some(d)) => write_derived(&w.name, d, &p)?,
        // `check` allows no workload without a data source.
        (None, None, None) => {
            return Err(CalibrateError::Workload {
                path: PathBuf::from(&w.name),
                reason: "no data source".into(),
            });
        }
    }
    Ok(p.into_os_string())
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
        let cal = Calibration {
            workloads: vec![],
            rows: vec![row("w", "a", 5.0, 10.0), row("w", "b", 12.0, 10.0)],
            seeds: 1,
        };
        let best = cal.best_sets();
        assert_eq!(best.len(), 1);
        assert_eq!(best[0].1, "b");
        assert!((best[0].2 - 0.2).abs() < 1e-12);
        let text = cal.to_string();
        assert!(text.contains("5.00 / 10.00 (-50 %)"), "{text}");
        assert!(text.contains("a (default)"));
    }

    fn row(workload: &str, set: &str, dynamic: f64, measured: f64) -> Row {
        Row {
            workload: workload.into(),
            chip: "c".into(),
            price_set: set.into(),
            default_set: set == "a",
            emulated: Some(Emulated {
                dynamic_uj_per_inference: Some(dynamic),
                ..Emulated::default()
            }),
            spread: None,
            seeds: vec![1],
            per_seed: vec![],
            error: None,
            measured: Measured {
                dynamic_uj_per_inference: Some(measured),
                ..Measured::default()
            },
            chip_fingerprint: Some(7),
            static_in_prices: false,
        }
    }

    #[test]
    fn sets_are_compared_only_where_each_predicts_the_measured_figure() {
        // Set "all" prices total energy only (all-in): no dynamic figure for workload u, which
        // measures dynamic energy; on v (measured total) both compare.
        let mut all_u = row("u", "all", 0.0, 10.0);
        all_u.emulated = Some(Emulated {
            total_uj_per_inference: Some(11.0),
            ..Emulated::default()
        });
        let split_u = row("u", "split", 10.5, 10.0);
        let cal = Calibration {
            workloads: vec![],
            rows: vec![all_u.clone(), split_u.clone()],
            seeds: 1,
        };
        assert!(cal.best_sets().is_empty());
        assert_eq!(cal.undecided(), ["c"]);
        assert!(
            cal.to_string()
                .contains("c: no workload that every price set predicts")
        );
        let total = |set: &str, t: f64| {
            let mut r = row("v", set, 0.0, 1.0);
            r.measured = Measured {
                total_uj_per_inference: Some(20.0),
                ..Measured::default()
            };
            r.emulated = Some(Emulated {
                total_uj_per_inference: Some(t),
                ..Emulated::default()
            });
            r
        };
        let cal = Calibration {
            workloads: vec![],
            rows: vec![all_u, split_u, total("all", 21.0), total("split", 30.0)],
            seeds: 1,
        };
        // Over v alone: all +5 %, split +50 % (split's 5 % on u is not counted).
        let best = cal.best_sets();
        assert_eq!(best.len(), 1);
        assert_eq!((best[0].1.as_str(), best[0].3), ("all", 1));
        assert!((best[0].2 - 0.05).abs() < 1e-12);
        assert!(cal.undecided().is_empty());
    }

    #[test]
    fn fit_on_one_test_on_the_other() {
        // Set a: 5 against 10 on u (factor 2 makes it exact), 30 against 20 on v.
        let cal = Calibration {
            workloads: vec![],
            rows: vec![row("u", "a", 5.0, 10.0), row("v", "a", 30.0, 20.0)],
            seeds: 1,
        };
        let checks = cal.cross_checks();
        assert_eq!(checks.len(), 2);
        let on_u = &checks[0];
        assert_eq!((on_u.fit_on.as_str(), on_u.test_on.as_str()), ("u", "v"));
        assert!((on_u.scale - 2.0).abs() < 1e-12);
        assert!((on_u.error_before - 0.5).abs() < 1e-12);
        // 2 × 30 = 60 against 20: +200 %.
        assert!((on_u.error_after - 2.0).abs() < 1e-12);
        let on_v = &checks[1];
        assert!((on_v.scale - 2.0 / 3.0).abs() < 1e-12);
        // 5 × 2/3 against 10: −66.7 %.
        assert!((on_v.error_after + 2.0 / 3.0).abs() < 1e-12);
        let text = cal.to_string();
        assert!(
            text.contains("| c | a | u | 2.000 | v | +50 % | +200 % |"),
            "{text}"
        );
    }

    #[test]
    fn a_total_measurement_is_fitted_beside_static_energy() {
        let mut r = row("u", "a", 4.0, 1.0);
        r.measured = Measured {
            total_uj_per_inference: Some(10.0),
            ..Measured::default()
        };
        r.emulated = Some(Emulated {
            dynamic_uj_per_inference: Some(4.0),
            static_uj_per_inference: Some(2.0),
            total_uj_per_inference: Some(6.0),
            ..Emulated::default()
        });
        assert_eq!(r.energy_figure(), Some("total"));
        assert!((r.energy_error().unwrap() + 0.4).abs() < 1e-12);
        // (10 − 2) / 4 = 2: dynamic doubled, static kept.
        assert!((r.exact_scale().unwrap() - 2.0).abs() < 1e-12);
        assert!(r.scaled_energy_error(2.0).unwrap().abs() < 1e-12);
    }

    #[test]
    fn seeds_give_a_mean_and_a_sample_spread() {
        let e = |d: f64, ms: Option<f64>| Emulated {
            dynamic_uj_per_inference: Some(d),
            ms_per_inference: ms,
            ..Emulated::default()
        };
        let (m, s) = Emulated::mean_and_spread(&[e(1.0, Some(2.0)), e(3.0, None)]);
        assert_eq!(m.dynamic_uj_per_inference, Some(2.0));
        // Sample sd of {1, 3}: sqrt(2).
        let sd = s.unwrap().dynamic_uj_per_inference.unwrap();
        assert!((sd - 2f64.sqrt()).abs() < 1e-12);
        // A figure one run lacks is no figure.
        assert_eq!(m.ms_per_inference, None);
        let (one, none) = Emulated::mean_and_spread(&[e(5.0, None)]);
        assert_eq!(one.dynamic_uj_per_inference, Some(5.0));
        assert!(none.is_none());
    }

    #[test]
    fn derived_data_is_the_cut_binary_image() {
        let dir = std::env::temp_dir().join(format!("accord-cal-derived-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let d = Derived {
            from: "mnist".into(),
            crop: 4,
            threshold: Some(0.5),
            rows: 60,
        };
        let p = dir.join("m.csv");
        write_derived("m", &d, &p).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        let split =
            crate::data::load_bundled("mnist", &crate::data::default_data_dir(), 0).unwrap();
        assert_eq!(text.lines().count(), 60);
        for (i, line) in text.lines().enumerate() {
            let cells: Vec<&str> = line.split(',').collect();
            assert_eq!(cells.len(), 401);
            assert_eq!(cells[400], split.train.labels[i].to_string());
            // Pixel (y, x) of the cut image is (y + 4, x + 4) of the original.
            for (k, c) in cells[..400].iter().enumerate() {
                let (y, x) = (k / 20 + 4, k % 20 + 4);
                let v = split.train.row(i)[y * 28 + x];
                assert_eq!(*c, if v > 0.5 { "1" } else { "0" });
            }
        }
        let too_many = Derived { rows: 1 << 30, ..d };
        let e = write_derived("m", &too_many, &p).unwrap_err().to_string();
        assert!(e.contains("rows = 1073741824"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
