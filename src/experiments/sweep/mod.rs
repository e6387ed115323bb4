//! A grid (or a seeded random sample of it) over `accord train`'s options: what does each
//! setting cost and how well does it learn, and which settings form the accuracy–energy
//! front? (`accord sweep`, `accord sweep merge`)
//!
//! Each point is one `accord train … --json` through the [`Runner`] the sweep is given (the
//! command line's runs a child process of its own binary): a point that fails (a format that
//! does not fit, a chip that cannot train, even a crash) is recorded with its error and the
//! sweep goes on. A sweep's directory holds its [`Spec`] and share ([`Shard`]) in `spec.json`
//! and one [`Point`] per finished point in `points.jsonl` and `points.csv`, each appended as
//! soon as the point finishes, so a killed sweep resumes ([`Sweep::start`] with `resume`) with
//! the points it has not finished; at the end both are rewritten in point order. A point's
//! result depends only on its options (every run is seeded and single-threaded), so a resumed
//! sweep, an uninterrupted one and the [`Merge`] of its shards give the same files, byte for
//! byte. [`SweepSummary`] is what the finished points say (the fronts, the cheapest
//! configuration within one point of the widest weights, accuracy against each numeric axis).
//!
//! ```
//! use accord::experiments::sweep::Spec;
//!
//! let spec = Spec::from_sources(None, &["weight-bits=6,8".into()], &["--data".into(), "iris".into()])?;
//! assert_eq!(spec.len(), 2);
//! assert_eq!(spec.args(1), ["--data", "iris", "--weight-bits", "8", "--json"]);
//! # Ok::<(), accord::experiments::sweep::SweepError>(())
//! ```

mod front;
mod spec;

pub use front::{AccuracyVs, Cheapest, Curve, Figures, Front, SweepSummary};
pub use spec::{RandomSpec, Shard, Spec};

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Invalid, Setting, at_least_one};
use crate::experiments::runner::{Runner, TrainRun};
use crate::output::{OutputError, write_atomic};

/// Why a sweep or a merge cannot run or go on (a point that fails is a [`Point`] with its
/// error, not this).
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// A setting out of range (names its field: `jobs`, `shard`, `grid`, `dirs`).
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The spec file cannot be read.
    #[error("{}", self.text(&|f| f.to_string()))]
    SpecRead {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The spec file is not TOML or not a spec (the message names the key).
    #[error("{}", self.text(&|f| f.to_string()))]
    SpecParse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        error: toml::de::Error,
    },
    /// A `[grid]` value that is not a string, number or boolean.
    #[error("[grid] {axis}: {value} is not a string, number or boolean")]
    GridValue {
        /// The axis.
        axis: String,
        /// The value, as TOML.
        value: String,
    },
    /// An axis refused (`reason` starts with its separator: `" has no values"`).
    #[error("grid axis '{axis}'{reason}")]
    Axis {
        /// The axis.
        axis: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No axis at all.
    #[error("{}", self.text(&|f| f.to_string()))]
    NoAxis,
    /// More points than a sweep takes.
    #[error("the grid has more than {} points", spec::MAX_POINTS)]
    TooManyPoints,
    /// A random sample of none or more points than the grid has.
    #[error("[random] samples = {samples}: the grid has {total} points (allowed 1..={total})")]
    Samples {
        /// Points asked for.
        samples: usize,
        /// Points of the grid.
        total: usize,
    },
    /// Train options the sweep sets itself.
    #[error(
        "the train options of a sweep may not include --json, --save, --resume or --plot (the sweep records each point)"
    )]
    ReservedOption,
    /// A directory without a sweep's record.
    #[error("{}: not a sweep directory: {error}", path.display())]
    NotASweep {
        /// Its `spec.json`.
        path: PathBuf,
        /// Why it cannot be read.
        error: std::io::Error,
    },
    /// A record that does not parse.
    #[error("{}: not a sweep spec: {error}", path.display())]
    NotASpec {
        /// The `spec.json`.
        path: PathBuf,
        /// The parser's message.
        error: serde_json::Error,
    },
    /// The directory of a resumed sweep cannot be resumed.
    #[error("{}", self.text(&|f| f.to_string()))]
    Resume(Box<SweepError>),
    /// The directory of a resumed sweep holds another sweep.
    #[error("{}", self.text(&|f| f.to_string()))]
    OtherSweep {
        /// The directory.
        dir: PathBuf,
    },
    /// A line of `points.jsonl` that is not a point (only a torn last line is skipped).
    #[error("{}:{line}: not a point record ({error})", path.display())]
    PointRecord {
        /// The file.
        path: PathBuf,
        /// Its line, from 1.
        line: usize,
        /// The parser's message.
        error: serde_json::Error,
    },
    /// A file that cannot be read or opened.
    #[error("{}: {error}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// A merge given shards of different sweeps.
    #[error("{}: a shard of another spec than {} (a merge takes the shards of one sweep)", dir.display(), first.display())]
    OtherSpec {
        /// The shard.
        dir: PathBuf,
        /// The first shard.
        first: PathBuf,
    },
    /// A merged point outside the spec.
    #[error("point {index} is outside the spec's {points} points")]
    Outside {
        /// The point.
        index: usize,
        /// The spec's points.
        points: usize,
    },
    /// Points recorded by more than one shard.
    #[error("points recorded more than once: {0:?} (merge each shard once)")]
    Twice(Vec<usize>),
    /// Points no shard recorded.
    #[error("{}", self.text(&|f| f.to_string()))]
    Missing {
        /// The points missing.
        missing: Vec<usize>,
        /// The spec's points.
        total: usize,
    },
    /// A record that cannot be written.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// A log that cannot be appended to.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A record that cannot be serialised.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

impl SweepError {
    /// The message with each field shown as `option` shows it.
    fn text(&self, option: &dyn Fn(&str) -> String) -> String {
        match self {
            SweepError::Invalid(i) => i.named(&option(i.field)),
            SweepError::SpecRead { path, error } => {
                format!("{} {}: {error}", option("spec"), path.display())
            }
            SweepError::SpecParse { path, error } => {
                format!("{} {}: {error}", option("spec"), path.display())
            }
            SweepError::NoAxis => format!(
                "a sweep needs at least one axis ({} KEY=V1,V2 or a [grid] table in {})",
                option("grid"),
                option("spec")
            ),
            SweepError::Resume(e) => format!("{}: {}", option("resume"), e.text(option)),
            SweepError::OtherSweep { dir } => format!(
                "{} {}: the directory holds a sweep of another spec or shard; start a new one with another {}",
                option("resume"),
                dir.display(),
                option("out")
            ),
            SweepError::Missing { missing, total } => format!(
                "{} of {total} points are missing (e.g. {:?}); run the shards that hold them (or {} them) first",
                missing.len(),
                &missing[..missing.len().min(10)],
                option("resume")
            ),
            other => other.to_string(),
        }
    }
}

impl Setting for SweepError {
    fn invalid(&self) -> Option<&Invalid> {
        match self {
            SweepError::Invalid(i) => Some(i),
            _ => None,
        }
    }
    fn named(&self, option: &dyn Fn(&str) -> String) -> Option<String> {
        Some(self.text(option))
    }
}

/// What a sweep's directory records of its spec (`spec.json`): the spec, and which share of
/// its points the directory holds.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Record {
    spec: Spec,
    /// `(i, n)`: the points whose index is `i − 1` modulo `n` (`(1, 1)`: all).
    shard: Shard,
}

/// One finished point, as a line of `points.jsonl`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Point {
    /// The point's index in the spec.
    pub index: usize,
    /// Its options, by axis.
    pub options: BTreeMap<String, String>,
    /// `ok`, `diverged`, `interrupted` (the run's outcome), or `failed`.
    pub status: String,
    /// Why the point failed.
    pub error: Option<String>,
    /// The run's report, without what depends on the machine (wall-clock seconds).
    pub result: Option<Value>,
}

/// The parts of an `accord train --json` report a sweep keeps, with wall-clock times taken
/// out so that a point's record depends on its options alone.
fn keep(mut v: Value) -> Value {
    if let Some(epochs) = v.get_mut("epochs").and_then(Value::as_array_mut) {
        for e in epochs {
            if let Some(o) = e.as_object_mut() {
                o.remove("seconds");
            }
        }
    }
    let mut out = serde_json::Map::new();
    for k in [
        "test_accuracy",
        "outcome",
        "epochs",
        "energy",
        "timescales",
        "neurobench",
        "ledger",
        "notes",
    ] {
        if let Some(x) = v.get_mut(k) {
            out.insert(k.into(), x.take());
        }
    }
    // The per-action breakdown repeats the ledger with prices: keep the totals.
    if let Some(e) = out.get_mut("energy").and_then(Value::as_object_mut) {
        for phase in e.values_mut() {
            if let Some(p) = phase.as_object_mut() {
                p.remove("breakdown");
            }
        }
    }
    Value::Object(out)
}

/// Point `i` of `spec` from its run (`Err`: the run could not start).
fn point_of(spec: &Spec, i: usize, run: Result<TrainRun, String>) -> Point {
    let fail = |error: String| Point {
        index: i,
        options: spec.options(i),
        status: "failed".into(),
        error: Some(error),
        result: None,
    };
    let run = match run {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    match run.report {
        Some(v) => {
            let status = v["outcome"]["status"]
                .as_str()
                .map_or_else(|| "ok".to_string(), |s| s.to_lowercase());
            Point {
                index: i,
                options: spec.options(i),
                status: if status == "completed" {
                    "ok".into()
                } else {
                    status
                },
                error: None,
                result: Some(keep(v)),
            }
        }
        None => fail(format!("{} ({})", run.error, run.status)),
    }
}

/// The points recorded in `dir/points.jsonl` (a torn last line — a killed sweep — is skipped).
fn read_points(dir: &Path) -> Result<Vec<Point>, SweepError> {
    let path = dir.join("points.jsonl");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(SweepError::File { path, error }),
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut points = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        match serde_json::from_str::<Point>(line) {
            Ok(p) => points.push(p),
            Err(_) if n + 1 == lines.len() && !text.ends_with('\n') => {}
            Err(error) => {
                return Err(SweepError::PointRecord {
                    path,
                    line: n + 1,
                    error,
                });
            }
        }
    }
    Ok(points)
}

fn read_record(dir: &Path) -> Result<Record, SweepError> {
    let path = dir.join("spec.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(error) => return Err(SweepError::NotASweep { path, error }),
    };
    serde_json::from_str(&text).map_err(|error| SweepError::NotASpec { path, error })
}

/// The columns of `points.csv` after the index and the axes, and where each comes from in a
/// point's result (`saturations`: summed over the format events).
const COLS: [(&str, &str); 10] = [
    ("test_accuracy", "/test_accuracy"),
    ("train_pj", "/energy/training/dynamic_pj_per_sample"),
    ("train_static_pj", "/energy/training/static_pj_per_sample"),
    ("infer_pj", "/energy/inference/dynamic_pj_per_sample"),
    ("infer_static_pj", "/energy/inference/static_pj_per_sample"),
    ("retro_share", "/energy/training/retro_share"),
    ("train_ns", "/timescales/train_ns_per_sample"),
    ("infer_latency_ns", "/timescales/inference_latency_ns"),
    ("footprint_bytes", "/neurobench/footprint"),
    ("saturations", ""),
];

/// `points.csv`'s header, and the rows of `points`, as CSV text.
fn csv_text(spec: &Spec, points: &[Point], header: bool) -> Result<Vec<u8>, SweepError> {
    // `csv` quotes a field holding a comma, a quote or a line break (RFC 4180).
    let mut w = csv::Writer::from_writer(Vec::new());
    let keys: Vec<&String> = spec.axes.iter().map(|(k, _)| k).collect();
    if header {
        let mut h: Vec<String> = vec!["index".into()];
        h.extend(keys.iter().map(|k| (*k).clone()));
        h.push("status".into());
        h.extend(COLS.iter().map(|(c, _)| (*c).to_string()));
        h.push("error".into());
        w.write_record(&h).map_err(csv_error)?;
    }
    for p in points {
        let mut row = vec![p.index.to_string()];
        row.extend(
            keys.iter()
                .map(|k| p.options.get(*k).cloned().unwrap_or_default()),
        );
        row.push(p.status.clone());
        for (name, ptr) in COLS {
            let v = p.result.as_ref().and_then(|r| {
                if name == "saturations" {
                    let ev = r.pointer("/ledger/format_events")?.as_object()?;
                    Some(Value::from(
                        ev.values()
                            .filter_map(|e| e.get("saturations").and_then(Value::as_u64))
                            .sum::<u64>(),
                    ))
                } else {
                    r.pointer(ptr).cloned()
                }
            });
            row.push(match v {
                Some(Value::Number(n)) => n.to_string(),
                Some(Value::String(s)) => s,
                _ => String::new(),
            });
        }
        row.push(p.error.clone().unwrap_or_default());
        w.write_record(&row).map_err(csv_error)?;
    }
    w.into_inner()
        .map_err(|e| csv_error(csv::Error::from(e.into_error())))
}

/// A CSV writer's error as the I/O error it is (into memory it has no other cause).
fn csv_error(e: csv::Error) -> SweepError {
    SweepError::Io(std::io::Error::other(format!("points.csv: {e}")))
}

/// Write `points` (in the order given) as `points.jsonl` and `points.csv`.
fn write_logs(dir: &Path, spec: &Spec, points: &[Point]) -> Result<(), SweepError> {
    let mut jsonl = String::new();
    for p in points {
        jsonl.push_str(&serde_json::to_string(p)?);
        jsonl.push('\n');
    }
    write_atomic(&dir.join("points.jsonl"), jsonl.as_bytes())?;
    write_atomic(&dir.join("points.csv"), &csv_text(spec, points, true)?)?;
    Ok(())
}

/// Write the points in index order (`points.jsonl`) and as a table (`points.csv`).
fn write_results(dir: &Path, spec: &Spec, points: &mut [Point]) -> Result<(), SweepError> {
    points.sort_by_key(|p| p.index);
    write_logs(dir, spec, points)
}

/// A sweep in its directory, ready to run the points it has left.
#[derive(Debug)]
pub struct Sweep {
    dir: PathBuf,
    record: Record,
    done: Vec<Point>,
    todo: Vec<usize>,
}

impl Sweep {
    /// Start the sweep of `spec`'s share `shard` in `dir`, or resume the one there
    /// (`resume`). A new sweep writes its record (`spec.json`) and empty logs into `dir`,
    /// which must exist and hold no earlier results (the command line prepares its `--out`
    /// first); a resumed one checks that `dir` holds a sweep of the same spec and shard and
    /// keeps the points it recorded (its logs rewritten from what parsed, so that a torn last
    /// record is not glued to the next one).
    ///
    /// # Errors
    /// A resumed directory without a sweep's record, of another spec or shard, or with a point
    /// record that does not parse; files that cannot be written.
    pub fn start(dir: &Path, spec: Spec, shard: Shard, resume: bool) -> Result<Sweep, SweepError> {
        let record = Record { spec, shard };
        let mut done: Vec<Point> = Vec::new();
        if resume {
            let old = read_record(dir).map_err(|e| SweepError::Resume(Box::new(e)))?;
            if old != record {
                return Err(SweepError::OtherSweep {
                    dir: dir.to_path_buf(),
                });
            }
            done = read_points(dir)?;
            write_logs(dir, &record.spec, &done)?;
        } else {
            write_atomic(
                &dir.join("spec.json"),
                serde_json::to_string_pretty(&record)?.as_bytes(),
            )?;
            write_logs(dir, &record.spec, &[])?;
        }
        let todo: Vec<usize> = (0..record.spec.len())
            .filter(|i| shard.holds(*i) && !done.iter().any(|p| p.index == *i))
            .collect();
        Ok(Sweep {
            dir: dir.to_path_buf(),
            record,
            done,
            todo,
        })
    }

    /// What the sweep runs.
    pub fn spec(&self) -> &Spec {
        &self.record.spec
    }

    /// The points it has left to run (of its shard).
    pub fn todo(&self) -> usize {
        self.todo.len()
    }

    /// Run the points left, `jobs` at a time on threads of their own, each through `runner`,
    /// appending each to the logs as it finishes (`finished` hears of it then); at the end
    /// the logs are rewritten in point order.
    ///
    /// # Errors
    /// `jobs` of 0; logs that cannot be written. A point that fails does not stop the sweep.
    pub fn run<R>(
        self,
        jobs: usize,
        runner: &R,
        mut finished: impl FnMut(&Point),
    ) -> Result<SweepReport, SweepError>
    where
        R: Runner + Sync + ?Sized,
    {
        at_least_one("jobs", Some(jobs))?;
        let Sweep {
            dir,
            record,
            mut done,
            todo,
        } = self;
        let spec = &record.spec;
        let append = |name: &str| {
            let path = dir.join(name);
            std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .map_err(|error| SweepError::File { path, error })
        };
        let (mut log, mut table) = (append("points.jsonl")?, append("points.csv")?);
        let next = std::sync::atomic::AtomicUsize::new(0);
        let (tx, rx) = crossbeam::channel::unbounded::<Point>();
        let mut failed = 0usize;
        std::thread::scope(|s| -> Result<(), SweepError> {
            for _ in 0..jobs.min(todo.len().max(1)) {
                let tx = tx.clone();
                let (todo, next) = (&todo, &next);
                s.spawn(move || {
                    loop {
                        let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(&i) = todo.get(k) else { break };
                        let point = point_of(
                            spec,
                            i,
                            runner.train(
                                &spec.args(i).into_iter().map(Into::into).collect::<Vec<_>>(),
                            ),
                        );
                        if tx.send(point).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(tx);
            for p in rx {
                writeln!(log, "{}", serde_json::to_string(&p)?)?;
                log.flush()?;
                table.write_all(&csv_text(spec, std::slice::from_ref(&p), false)?)?;
                table.flush()?;
                failed += usize::from(p.status == "failed");
                finished(&p);
                done.push(p);
            }
            Ok(())
        })?;
        write_results(&dir, spec, &mut done)?;
        Ok(SweepReport {
            summary: SweepSummary::of(spec, &done),
            done: done.len(),
            total: spec.len(),
            shard: record.shard,
            failed,
            dir,
        })
    }
}

/// A sweep run: what its points say and what it did.
#[derive(Clone, Debug, Serialize)]
pub struct SweepReport {
    /// What the finished points say.
    pub summary: SweepSummary,
    /// Points the directory holds.
    pub done: usize,
    /// Points of the spec.
    pub total: usize,
    /// The share run.
    pub shard: Shard,
    /// Points that failed in this run.
    pub failed: usize,
    /// The directory.
    pub dir: PathBuf,
}

impl fmt::Display for SweepReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.summary)?;
        writeln!(
            f,
            "sweep: {} of {} points in {} ({} failed this run); results in {} and {}",
            self.done,
            self.total,
            if self.shard.count() > 1 {
                format!("shard {}", self.shard)
            } else {
                "this run".into()
            },
            self.failed,
            self.dir.join("points.jsonl").display(),
            self.dir.join("points.csv").display()
        )
    }
}

/// The shards of one sweep, read and checked: the same spec, every point exactly once.
#[derive(Debug)]
pub struct Merge {
    spec: Spec,
    points: Vec<Point>,
    dirs: usize,
}

impl Merge {
    /// Read the shards' directories `dirs`.
    ///
    /// # Errors
    /// No directory; a directory without a sweep's record or with a point record that does
    /// not parse; shards of different specs; points outside the spec, recorded twice or
    /// missing.
    pub fn read(dirs: &[PathBuf]) -> Result<Merge, SweepError> {
        let Some(first_dir) = dirs.first() else {
            return Err(Invalid::new("dirs", ": no shard directory given").into());
        };
        let spec = read_record(first_dir)?.spec;
        let mut points: Vec<Point> = Vec::new();
        for d in dirs {
            let r = read_record(d)?;
            if r.spec != spec {
                return Err(SweepError::OtherSpec {
                    dir: d.clone(),
                    first: first_dir.clone(),
                });
            }
            points.extend(read_points(d)?);
        }
        let mut seen = vec![0u32; spec.len()];
        for p in &points {
            match seen.get_mut(p.index) {
                Some(c) => *c += 1,
                None => {
                    return Err(SweepError::Outside {
                        index: p.index,
                        points: spec.len(),
                    });
                }
            }
        }
        let missing: Vec<usize> = (0..seen.len()).filter(|&i| seen[i] == 0).collect();
        let twice: Vec<usize> = (0..seen.len()).filter(|&i| seen[i] > 1).collect();
        if !twice.is_empty() {
            return Err(SweepError::Twice(twice));
        }
        if !missing.is_empty() {
            return Err(SweepError::Missing {
                missing,
                total: seen.len(),
            });
        }
        Ok(Merge {
            spec,
            points,
            dirs: dirs.len(),
        })
    }

    /// What the shards run.
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// Write the merged sweep into `out` (which must exist and hold no earlier results): its
    /// record, as one run's, and its points in point order.
    ///
    /// # Errors
    /// Files that cannot be written.
    pub fn write(self, out: &Path) -> Result<MergeReport, SweepError> {
        let Merge {
            spec,
            mut points,
            dirs,
        } = self;
        let record = Record {
            spec,
            shard: Shard::ALL,
        };
        write_atomic(
            &out.join("spec.json"),
            serde_json::to_string_pretty(&record)?.as_bytes(),
        )?;
        write_results(out, &record.spec, &mut points)?;
        Ok(MergeReport {
            summary: SweepSummary::of(&record.spec, &points),
            points: points.len(),
            dirs,
            dir: out.to_path_buf(),
        })
    }
}

/// A merge: what the sweep's points say and where they went.
#[derive(Clone, Debug, Serialize)]
pub struct MergeReport {
    /// What the points say.
    pub summary: SweepSummary,
    /// Points merged.
    pub points: usize,
    /// Shard directories merged.
    pub dirs: usize,
    /// The merged directory.
    pub dir: PathBuf,
}

impl fmt::Display for MergeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.summary)?;
        writeln!(
            f,
            "merged {} points from {} directories into {}",
            self.points,
            self.dirs,
            self.dir.display()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_records_its_run() {
        let spec = Spec::new(vec![], vec![("seed".into(), vec!["1".into()])], None).unwrap();
        let ok = point_of(
            &spec,
            0,
            Ok(TrainRun::completed(serde_json::json!({
                "test_accuracy": 0.5,
                "outcome": { "status": "Completed" },
                "epochs": [{ "loss": 1.0, "seconds": 2.0 }],
                "config": {},
            }))),
        );
        assert_eq!(ok.status, "ok");
        assert_eq!(
            ok.result.unwrap(),
            serde_json::json!({
                "test_accuracy": 0.5,
                "outcome": { "status": "Completed" },
                "epochs": [{ "loss": 1.0 }],
            })
        );
        let failed = point_of(&spec, 0, Ok(TrainRun::failed("no", "exit status: 2")));
        assert_eq!(failed.status, "failed");
        assert_eq!(failed.error.as_deref(), Some("no (exit status: 2)"));
        let e = SweepError::Missing {
            missing: vec![1, 2],
            total: 4,
        };
        assert_eq!(
            e.named(&|f| format!("--{f}")).unwrap(),
            "2 of 4 points are missing (e.g. [1, 2]); run the shards that hold them (or --resume them) first"
        );
        assert!(e.to_string().contains("(or resume them)"));
    }
}
