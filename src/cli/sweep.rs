//! `accord sweep`: a grid (or a seeded random sample of it) over `accord train`'s options, run
//! point by point on local threads or spread over a cluster with `--shard`, and
//! `accord sweep merge` to join the shards.
//!
//! Each point is a separate `accord train … --json` process of this same binary: a point that
//! fails (a format that does not fit, a chip that cannot train, even a crash) is recorded with
//! its error and the sweep goes on. Each finished point is appended to `points.jsonl` and
//! `points.csv` at once, so a killed sweep resumes (`--resume`) with the points it has not
//! finished; at the end both are rewritten in point order. A point's result
//! depends only on its options (every run is seeded and single-threaded), so a resumed sweep,
//! an uninterrupted one and the merge of its shards give the same files, byte for byte.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::emit;

/// `accord sweep` options.
#[derive(Args, Debug, Clone)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SweepArgs {
    /// Join shard directories.
    #[command(subcommand)]
    pub command: Option<SweepCommand>,
    /// A TOML spec: `base = ["--data", "digits", …]`, a `[grid]` table of option → values
    /// (`weight-bits = [6, 8]`, `"set:formats.lut.bits" = [6, 8]` for a chip-file key,
    /// `reference = [true, false]` for a flag), and optionally `[random]` with `samples` and
    /// `seed` to run a random sample of the grid's points.
    #[arg(long, value_name = "FILE.toml")]
    pub spec: Option<PathBuf>,
    /// A grid axis `KEY=V1,V2,…` (KEY as in a spec's `[grid]`); repeatable, beside or
    /// instead of `--spec`.
    #[arg(long = "grid", value_name = "KEY=V1,V2")]
    pub grid: Vec<String>,
    /// The directory of the results (`spec.json`, `points.jsonl`, `points.csv`).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Points run at once (each a single-threaded `accord train`).
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Run share `I` of `N` (`1/3`, `2/3`, `3/3`): the points whose index is `I − 1` modulo
    /// `N` — one shard per task of a batch job array; join them with `accord sweep merge`.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Continue the sweep in `--out` (same spec): run only the points it has not finished.
    #[arg(long)]
    pub resume: bool,
    /// Replace the results of an earlier sweep in `--out`.
    #[arg(long)]
    pub force: bool,
    /// Options of `accord train` every point shares, after `--` (added to a spec's `base`).
    #[arg(last = true, value_name = "TRAIN OPTIONS")]
    pub base: Vec<String>,
}

/// `accord sweep merge`.
#[derive(Subcommand, Debug, Clone)]
pub enum SweepCommand {
    /// Join the result directories of a sweep's shards into one, checking that they come from
    /// the same spec and that every point is there exactly once.
    Merge {
        /// The shards' `--out` directories.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// The directory of the merged results.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Replace the results in `--out`.
        #[arg(long)]
        force: bool,
    },
}

/// A spec file.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct SpecFile {
    #[serde(default)]
    base: Vec<String>,
    #[serde(default)]
    grid: BTreeMap<String, Vec<toml::Value>>,
    random: Option<RandomSpec>,
}

/// A random sample of the grid.
#[derive(Deserialize, Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct RandomSpec {
    samples: usize,
    seed: u64,
}

/// What a sweep runs: the shared options, the axes (in key order) and the sample.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Spec {
    base: Vec<String>,
    axes: Vec<(String, Vec<String>)>,
    random: Option<RandomSpec>,
    /// The points' value indices, one per axis, in point order.
    points: Vec<Vec<usize>>,
}

/// The most points a sweep takes.
const MAX_POINTS: usize = 1_000_000;

impl Spec {
    fn new(
        base: Vec<String>,
        axes: Vec<(String, Vec<String>)>,
        random: Option<RandomSpec>,
    ) -> Result<Spec> {
        for (k, v) in &axes {
            if v.is_empty() {
                bail!("grid axis '{k}' has no values");
            }
            if k.starts_with('-') {
                bail!(
                    "grid axis '{k}': give the option without its dashes ('{}')",
                    k.trim_start_matches('-')
                );
            }
            if let Some(dup) = v.iter().enumerate().find(|(i, x)| v[..*i].contains(x)) {
                bail!("grid axis '{k}' lists '{}' twice", dup.1);
            }
        }
        let total = axes
            .iter()
            .try_fold(1usize, |a, (_, v)| a.checked_mul(v.len()))
            .filter(|&n| n <= MAX_POINTS)
            .ok_or_else(|| anyhow::anyhow!("the grid has more than {MAX_POINTS} points"))?;
        // Point k: the last axis varies fastest.
        let point = |mut k: usize| -> Vec<usize> {
            let mut idx = vec![0; axes.len()];
            for (a, (_, v)) in axes.iter().enumerate().rev() {
                idx[a] = k % v.len();
                k /= v.len();
            }
            idx
        };
        let order: Vec<usize> = match random {
            None => (0..total).collect(),
            Some(r) => {
                if r.samples == 0 || r.samples > total {
                    bail!(
                        "[random] samples = {}: the grid has {total} points (allowed 1..={total})",
                        r.samples
                    );
                }
                use rand::SeedableRng;
                let mut rng = rand::rngs::Xoshiro256PlusPlus::seed_from_u64(r.seed);
                let mut picked = rand::seq::index::sample(&mut rng, total, r.samples).into_vec();
                picked.sort_unstable();
                picked
            }
        };
        Ok(Spec {
            base,
            points: order.into_iter().map(point).collect(),
            axes,
            random,
        })
    }

    /// Point `i`'s options, by axis.
    fn options(&self, i: usize) -> BTreeMap<String, String> {
        self.axes
            .iter()
            .zip(&self.points[i])
            .map(|((k, v), &j)| (k.clone(), v[j].clone()))
            .collect()
    }

    /// Point `i`'s `accord train` arguments: the base options, then the point's; a later
    /// option replaces an earlier one of the same name (of the same key, for `--set`).
    fn args(&self, i: usize) -> Vec<String> {
        let mut a = self.base.clone();
        for ((k, v), &j) in self.axes.iter().zip(&self.points[i]) {
            let value = &v[j];
            if let Some(key) = k.strip_prefix("set:") {
                a.push("--set".into());
                a.push(format!("{key}={value}"));
            } else if value == "true" {
                a.push(format!("--{k}"));
            } else if value == "false" {
                a.push(format!("--no-{k}"));
            } else {
                a.push(format!("--{k}"));
                a.push(value.clone());
            }
        }
        let mut out = last_wins(&a);
        out.push("--json".into());
        out
    }
}

/// `args` with each option given once, its last value kept (`--set` once per key; a
/// `--no-FLAG` from a `false` grid value drops the flag).
fn last_wins(args: &[String]) -> Vec<String> {
    // (name, tokens) in order of last occurrence.
    let mut opts: Vec<(String, Vec<String>)> = Vec::new();
    let mut k = 0;
    while k < args.len() {
        let t = &args[k];
        let takes_value = k + 1 < args.len() && !args[k + 1].starts_with("--");
        let (name, tokens) =
            if let Some((flag, rest)) = t.split_once('=').filter(|_| t.starts_with("--")) {
                // `--set=KEY=VALUE` is one setting per key, like `--set KEY=VALUE`.
                let name = if flag == "--set" {
                    format!("--set {}", rest.split('=').next().unwrap_or_default())
                } else {
                    flag.to_string()
                };
                (name, vec![t.clone()])
            } else if t == "--set" && takes_value {
                let key = args[k + 1].split('=').next().unwrap_or_default();
                (format!("--set {key}"), vec![t.clone(), args[k + 1].clone()])
            } else if takes_value {
                (t.clone(), vec![t.clone(), args[k + 1].clone()])
            } else {
                (t.clone(), vec![t.clone()])
            };
        k += tokens.len();
        let base = name.strip_prefix("--no-").map(|f| format!("--{f}"));
        opts.retain(|(n, _)| *n != name && Some(n) != base.as_ref());
        if base.is_none() {
            opts.push((name, tokens));
        }
    }
    opts.into_iter().flat_map(|(_, t)| t).collect()
}

/// What a sweep's directory records of its spec (`spec.json`): the spec, and which share of
/// its points the directory holds.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Record {
    spec: Spec,
    /// `(i, n)`: the points whose index is `i − 1` modulo `n` (`(1, 1)`: all).
    shard: (usize, usize),
}

/// One finished point, as a line of `points.jsonl`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Point {
    index: usize,
    options: BTreeMap<String, String>,
    /// `ok`, `diverged`, `interrupted` (the run's outcome), or `failed`.
    status: String,
    /// Why the point failed.
    error: Option<String>,
    /// The run's report, without what depends on the machine (wall-clock seconds).
    result: Option<Value>,
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

/// Run point `i` as a child `accord train`.
fn run_point(spec: &Spec, i: usize, exe: &Path, max_memory: Option<u64>) -> Point {
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("train").args(spec.args(i));
    if let Some(m) = max_memory {
        cmd.arg("--max-memory").arg(m.to_string());
    }
    let out = cmd.stdin(std::process::Stdio::null()).output();
    let fail = |error: String| Point {
        index: i,
        options: spec.options(i),
        status: "failed".into(),
        error: Some(error),
        result: None,
    };
    let out = match out {
        Ok(o) => o,
        Err(e) => return fail(format!("cannot start {}: {e}", exe.display())),
    };
    match serde_json::from_slice::<Value>(&out.stdout) {
        Ok(v) => {
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
        Err(_) => fail(format!(
            "{} ({})",
            super::child_error(&out.stderr),
            out.status
        )),
    }
}

/// The points recorded in `dir/points.jsonl` (a torn last line — a killed sweep — is skipped).
fn read_points(dir: &Path) -> Result<Vec<Point>> {
    let path = dir.join("points.jsonl");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| path.display().to_string()),
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut points = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        match serde_json::from_str::<Point>(line) {
            Ok(p) => points.push(p),
            Err(_) if n + 1 == lines.len() && !text.ends_with('\n') => {}
            Err(e) => bail!("{}:{}: not a point record ({e})", path.display(), n + 1),
        }
    }
    Ok(points)
}

fn read_record(dir: &Path) -> Result<Record> {
    let path = dir.join("spec.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{}: not a sweep directory", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not a sweep spec", path.display()))
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
fn csv_text(spec: &Spec, points: &[Point], header: bool) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let keys: Vec<&String> = spec.axes.iter().map(|(k, _)| k).collect();
    if header {
        let mut h: Vec<String> = vec!["index".into()];
        h.extend(keys.iter().map(|k| (*k).clone()));
        h.push("status".into());
        h.extend(COLS.iter().map(|(c, _)| (*c).to_string()));
        h.push("error".into());
        w.write_record(&h)?;
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
        w.write_record(&row)?;
    }
    w.into_inner()
        .map_err(|e| anyhow::anyhow!("points.csv: {e}"))
}

/// Write `points` (in the order given) as `points.jsonl` and `points.csv`.
fn write_logs(dir: &Path, spec: &Spec, points: &[Point]) -> Result<()> {
    let mut jsonl = String::new();
    for p in points {
        jsonl.push_str(&serde_json::to_string(p)?);
        jsonl.push('\n');
    }
    crate::output::write_atomic(&dir.join("points.jsonl"), jsonl.as_bytes())?;
    crate::output::write_atomic(&dir.join("points.csv"), &csv_text(spec, points, true)?)?;
    Ok(())
}

/// Write the points in index order (`points.jsonl`) and as a table (`points.csv`).
fn write_results(dir: &Path, spec: &Spec, points: &mut [Point]) -> Result<()> {
    points.sort_by_key(|p| p.index);
    write_logs(dir, spec, points)
}

/// `I/N` with `1 <= I <= N`.
fn parse_shard(s: &str) -> Result<(usize, usize)> {
    let bad = || anyhow::anyhow!("--shard {s}: expected I/N with 1 <= I <= N (e.g. 1/4)");
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (i, n): (usize, usize) = (
        i.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if i == 0 || i > n {
        return Err(bad());
    }
    Ok((i, n))
}

/// The spec of `a`: its file, its `--grid` axes and its `--` options.
fn spec_of(a: &SweepArgs) -> Result<Spec> {
    let file: SpecFile = match &a.spec {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("--spec {}", p.display()))?;
            toml::from_str(&text).with_context(|| format!("--spec {}", p.display()))?
        }
        None => SpecFile::default(),
    };
    let mut axes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, vs) in file.grid {
        let vals = vs
            .into_iter()
            .map(|v| match v {
                toml::Value::String(s) => Ok(s),
                toml::Value::Integer(i) => Ok(i.to_string()),
                toml::Value::Float(f) => Ok(f.to_string()),
                toml::Value::Boolean(b) => Ok(b.to_string()),
                other => bail!("[grid] {k}: {other} is not a string, number or boolean"),
            })
            .collect::<Result<Vec<_>>>()?;
        axes.insert(k, vals);
    }
    for g in &a.grid {
        let (k, v) = g.split_once('=').ok_or_else(|| {
            anyhow::anyhow!("--grid {g}: expected KEY=V1,V2,… (e.g. weight-bits=6,8)")
        })?;
        // A `set:` axis's values may themselves hold '=': only the first one splits.
        if axes.contains_key(k) {
            bail!("--grid {g}: axis '{k}' is given twice");
        }
        axes.insert(k.to_string(), v.split(',').map(str::to_string).collect());
    }
    if axes.is_empty() {
        bail!("a sweep needs at least one axis (--grid KEY=V1,V2 or a [grid] table in --spec)");
    }
    let mut base = file.base;
    base.extend(a.base.iter().cloned());
    if base
        .iter()
        .any(|b| b == "--json" || b == "--save" || b == "--resume" || b == "--plot")
    {
        bail!(
            "the train options of a sweep may not include --json, --save, --resume or --plot (the sweep records each point)"
        );
    }
    Spec::new(base, axes.into_iter().collect(), file.random)
}

/// The points already done: none in a fresh (cleared) folder holding the spec, or those a
/// resumed folder of the same spec and shard recorded (its logs rewritten from what parsed).
fn start_or_resume(a: &SweepArgs, out: &Path, record: &Record) -> Result<Vec<Point>> {
    let spec = &record.spec;
    let mut done: Vec<Point> = Vec::new();
    if a.resume {
        let old = read_record(out).context("--resume")?;
        if old != *record {
            bail!(
                "--resume {}: the directory holds a sweep of another spec or shard; start a new one with another --out",
                out.display()
            );
        }
        done = read_points(out)?;
        // Start the logs again from what parsed, so that a torn last record is not glued to
        // the next one.
        write_logs(out, spec, &done)?;
    } else {
        let dir = crate::output::OutDir::prepare(out, a.force, "--out")?;
        dir.clear()?;
        crate::output::write_atomic(
            &out.join("spec.json"),
            serde_json::to_string_pretty(record)?.as_bytes(),
        )?;
        write_logs(out, spec, &[])?;
    }
    Ok(done)
}

/// Run `accord sweep`.
///
/// # Errors
/// A bad spec, an `--out` that holds other results, or results that cannot be written. A
/// point that fails does not stop the sweep.
pub fn run(a: &SweepArgs, max_memory: Option<u64>) -> Result<ExitCode> {
    if let Some(SweepCommand::Merge { dirs, out, force }) = &a.command {
        return merge(dirs, out, *force);
    }
    let Some(out) = &a.out else {
        bail!("--out DIR is needed: where the sweep's results go");
    };
    if a.jobs == 0 {
        bail!("--jobs must be at least 1");
    }
    let spec = spec_of(a)?;
    let shard = a
        .shard
        .as_deref()
        .map(parse_shard)
        .transpose()?
        .unwrap_or((1, 1));
    let record = Record {
        spec: spec.clone(),
        shard,
    };
    let mut done = start_or_resume(a, out, &record)?;
    let todo: Vec<usize> = (0..spec.points.len())
        .filter(|i| i % shard.1 == shard.0 - 1 && !done.iter().any(|p| p.index == *i))
        .collect();
    let exe = std::env::current_exe().context("the accord binary's path")?;
    let bar = indicatif::ProgressBar::new(todo.len() as u64);
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_style(
            indicatif::ProgressStyle::with_template("sweep {bar:30} {pos}/{len} points, eta {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
    } else {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let append = |name: &str| {
        std::fs::OpenOptions::new()
            .append(true)
            .open(out.join(name))
            .with_context(|| format!("{}", out.join(name).display()))
    };
    let (mut log, mut table) = (append("points.jsonl")?, append("points.csv")?);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let (tx, rx) = crossbeam::channel::unbounded::<Point>();
    let mut failed = 0usize;
    std::thread::scope(|s| -> Result<()> {
        for _ in 0..a.jobs.min(todo.len().max(1)) {
            let tx = tx.clone();
            let (spec, todo, next, exe) = (&spec, &todo, &next, &exe);
            s.spawn(move || {
                loop {
                    let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(&i) = todo.get(k) else { break };
                    if tx.send(run_point(spec, i, exe, max_memory)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for p in rx {
            writeln!(log, "{}", serde_json::to_string(&p)?)?;
            log.flush()?;
            table.write_all(&csv_text(&spec, std::slice::from_ref(&p), false)?)?;
            table.flush()?;
            failed += usize::from(p.status == "failed");
            bar.inc(1);
            done.push(p);
        }
        Ok(())
    })?;
    bar.finish_and_clear();
    write_results(out, &spec, &mut done)?;
    emit(&draw(out, &spec, &done)?)?;
    emit(&format!(
        "sweep: {} of {} points in {} ({} failed this run); results in {} and {}\n",
        done.len(),
        spec.points.len(),
        if shard.1 > 1 {
            format!("shard {}/{}", shard.0, shard.1)
        } else {
            "this run".into()
        },
        failed,
        out.join("points.jsonl").display(),
        out.join("points.csv").display()
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// `accord sweep merge`.
fn merge(dirs: &[PathBuf], out: &Path, force: bool) -> Result<ExitCode> {
    let first = read_record(&dirs[0])?;
    let spec = first.spec.clone();
    let mut points: Vec<Point> = Vec::new();
    for d in dirs {
        let r = read_record(d)?;
        if r.spec != spec {
            bail!(
                "{}: a shard of another spec than {} (a merge takes the shards of one sweep)",
                d.display(),
                dirs[0].display()
            );
        }
        points.extend(read_points(d)?);
    }
    let mut seen = vec![0u32; spec.points.len()];
    for p in &points {
        match seen.get_mut(p.index) {
            Some(c) => *c += 1,
            None => bail!(
                "point {} is outside the spec's {} points",
                p.index,
                spec.points.len()
            ),
        }
    }
    let missing: Vec<usize> = (0..seen.len()).filter(|&i| seen[i] == 0).collect();
    let twice: Vec<usize> = (0..seen.len()).filter(|&i| seen[i] > 1).collect();
    if !twice.is_empty() {
        bail!(
            "points recorded more than once: {:?} (merge each shard once)",
            twice
        );
    }
    if !missing.is_empty() {
        bail!(
            "{} of {} points are missing (e.g. {:?}); run the shards that hold them (or --resume them) first",
            missing.len(),
            seen.len(),
            &missing[..missing.len().min(10)]
        );
    }
    let dir = crate::output::OutDir::prepare(out, force, "--out")?;
    dir.clear()?;
    let record = Record {
        spec: spec.clone(),
        shard: (1, 1),
    };
    crate::output::write_atomic(
        &out.join("spec.json"),
        serde_json::to_string_pretty(&record)?.as_bytes(),
    )?;
    write_results(out, &spec, &mut points)?;
    emit(&draw(out, &spec, &points)?)?;
    emit(&format!(
        "merged {} points from {} directories into {}\n",
        points.len(),
        dirs.len(),
        out.display()
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// The axes that set the problem and the platform: fronts and comparisons are made within
/// each of their settings.
const CONTEXT: [&str; 3] = ["data", "chip", "rule"];

/// A finished point's figures: accuracy and energies per sample (pJ).
struct Figures<'a> {
    point: &'a Point,
    accuracy: f64,
    infer_pj: f64,
    train_pj: f64,
    train_static_pj: f64,
    retro_share: f64,
}

fn figures_of(p: &Point) -> Option<Figures<'_>> {
    let r = p.result.as_ref()?;
    let f = |ptr: &str| r.pointer(ptr).and_then(Value::as_f64);
    Some(Figures {
        point: p,
        accuracy: f("/test_accuracy")?,
        infer_pj: f("/energy/inference/dynamic_pj_per_sample").unwrap_or(0.0),
        train_pj: f("/energy/training/dynamic_pj_per_sample").unwrap_or(0.0),
        train_static_pj: f("/energy/training/static_pj_per_sample").unwrap_or(0.0),
        retro_share: f("/energy/training/retro_share").unwrap_or(0.0),
    })
}

/// The points no other beats on both accuracy (higher) and inference energy (lower), cheapest
/// first.
fn front<'a>(pts: &[&'a Figures<'a>]) -> Vec<&'a Figures<'a>> {
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

/// Draw `pareto.png`, `accuracy_vs_<axis>.png` and `energy.png` in `dir` from the finished
/// points, and return the accuracy–energy front as a table.
fn draw(dir: &Path, spec: &Spec, points: &[Point]) -> Result<String> {
    use crate::plot::{LineChart, Series, draw_lines};
    let figs: Vec<Figures> = points.iter().filter_map(figures_of).collect();
    let priced: Vec<&Figures> = figs.iter().filter(|f| f.infer_pj > 0.0).collect();
    let mut table = String::new();
    if priced.is_empty() {
        return Ok("no point has an inference energy: no front, no figures\n".into());
    }
    let label = |p: &Point| {
        p.options
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    // Per dataset, chip and rule (where they are axes): its points and its front.
    let group_of = |p: &Point| -> String {
        let g: Vec<String> = CONTEXT
            .iter()
            .filter_map(|k| p.options.get(*k).map(|v| format!("{k}={v}")))
            .collect();
        if g.is_empty() {
            "all points".into()
        } else {
            g.join(" ")
        }
    };
    let mut groups: BTreeMap<String, Vec<&Figures>> = BTreeMap::new();
    for f in &priced {
        groups.entry(group_of(f.point)).or_default().push(f);
    }
    let mut series = vec![
        Series::new(
            "every point",
            priced
                .iter()
                .map(|f| (f.infer_pj / 1000.0, f.accuracy))
                .collect(),
        )
        .scatter(),
    ];
    for (g, pts) in &groups {
        series.push(Series::new(
            format!("front: {g}"),
            front(pts)
                .iter()
                .map(|f| (f.infer_pj / 1000.0, f.accuracy))
                .collect(),
        ));
    }
    draw_lines(
        &dir.join("pareto.png"),
        &LineChart {
            title: "accuracy against energy per inference".into(),
            x_label: "dynamic energy per inference sample (nJ)".into(),
            y_label: "test accuracy".into(),
            log_x: true,
            legend: crate::plot::Legend::LowerRight,
            ..LineChart::default()
        },
        &series,
    )?;
    for (g, pts) in &groups {
        let f = front(pts);
        table.push_str(&format!(
            "accuracy–energy front, {g} ({} of {} priced points):\n{:>6}  {:>9}  {:>12}  {:>12}  options\n",
            f.len(),
            pts.len(),
            "point",
            "accuracy",
            "infer nJ",
            "train nJ"
        ));
        for f in &f {
            table.push_str(&format!(
                "{:>6}  {:>8.2}%  {:>12.3}  {:>12.3}  {}\n",
                f.point.index,
                100.0 * f.accuracy,
                f.infer_pj / 1000.0,
                f.train_pj / 1000.0,
                label(f.point)
            ));
        }
    }
    table.push_str(&within_one_point(spec, &figs));
    for (axis, values) in &spec.axes {
        table.push_str(&draw_accuracy_vs(dir, &figs, axis, values)?);
    }
    table.push_str(&draw_energy(dir, &figs)?);
    Ok(table)
}

/// Test accuracy against numeric axis `axis` (mean and spread over seeds, one line per setting
/// of the other axes) as `accuracy_vs_AXIS.png`; what the table should say if it is not drawn.
fn draw_accuracy_vs(dir: &Path, figs: &[Figures], axis: &str, values: &[String]) -> Result<String> {
    use crate::plot::{LineChart, Series, draw_lines};
    if axis == "seed" || values.len() < 2 || values.iter().any(|v| v.parse::<f64>().is_err()) {
        return Ok(String::new());
    }
    let mut lines: BTreeMap<String, BTreeMap<String, Vec<f64>>> = BTreeMap::new();
    for f in figs {
        let rest: Vec<String> = f
            .point
            .options
            .iter()
            .filter(|(k, _)| *k != axis && *k != "seed")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let x = f.point.options.get(axis).cloned().unwrap_or_default();
        lines
            .entry(rest.join(" "))
            .or_default()
            .entry(x)
            .or_default()
            .push(f.accuracy);
    }
    if lines.len() > 10 {
        return Ok(format!(
            "accuracy_vs_{axis}.png: not drawn, {} settings of the other axes (at most 10 lines)\n",
            lines.len()
        ));
    }
    if lines.is_empty() {
        return Ok(String::new());
    }
    let series: Vec<Series> = lines
        .into_iter()
        .map(|(name, by_x)| {
            let mut pts: Vec<(f64, f64, f64)> = by_x
                .into_iter()
                .map(|(x, acc)| {
                    let n = acc.len() as f64;
                    let mean = acc.iter().sum::<f64>() / n;
                    let var = acc.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / n;
                    (x.parse().unwrap_or(0.0), mean, var.sqrt())
                })
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            let err = pts.iter().map(|p| p.2).collect();
            let name = if name.is_empty() {
                "mean over seeds".into()
            } else {
                name
            };
            Series::new(name, pts.iter().map(|p| (p.0, p.1)).collect()).with_err(err)
        })
        .collect();
    let file: String = axis
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    draw_lines(
        &dir.join(format!("accuracy_vs_{file}.png")),
        &LineChart {
            title: format!("test accuracy against {axis} (mean ± sd over seeds)"),
            x_label: axis.to_string(),
            y_label: "test accuracy".into(),
            legend: crate::plot::Legend::LowerRight,
            ..LineChart::default()
        },
        &series,
    )?;
    Ok(String::new())
}

/// Energy per training sample by part, per point, as `energy.png`; what the table should say if
/// it is not drawn.
fn draw_energy(dir: &Path, figs: &[Figures]) -> Result<String> {
    let mut table = String::new();
    let trained: Vec<&Figures> = figs.iter().filter(|f| f.train_pj > 0.0).collect();
    if trained.len() > 80 {
        table.push_str("energy.png: not drawn for more than 80 trained points (see points.csv)\n");
    } else if !trained.is_empty() {
        let labels: Vec<String> = trained
            .iter()
            .map(|f| {
                let short: Vec<&str> = f.point.options.values().map(String::as_str).collect();
                format!("#{} {}", f.point.index, short.join(" "))
            })
            .collect();
        let nj = |x: f64| x / 1000.0;
        let retro: Vec<f64> = trained
            .iter()
            .map(|f| nj(f.retro_share * f.train_pj))
            .collect();
        let rest: Vec<f64> = trained
            .iter()
            .map(|f| nj((1.0 - f.retro_share) * f.train_pj))
            .collect();
        let mut stacks = vec![
            ("firing and plasticity".to_string(), rest),
            ("retrograde (credit)".to_string(), retro),
        ];
        if trained.iter().any(|f| f.train_static_pj > 0.0) {
            stacks.push((
                "static".to_string(),
                trained.iter().map(|f| nj(f.train_static_pj)).collect(),
            ));
        }
        crate::plot::stacked_bars(
            &dir.join("energy.png"),
            "energy per training sample",
            "nJ per training sample",
            &labels,
            &stacks,
        )?;
    }
    Ok(table)
}

/// Per problem and platform (the `data`, `chip` and `rule` axes), the cheapest configuration
/// (mean over seeds) whose accuracy is within 1 point of the best at the widest weights
/// (`weight-bits` or `set:formats.weight.bits`): the answer to "how narrow can the weights go".
fn within_one_point(spec: &Spec, figs: &[Figures]) -> String {
    let Some((axis, values)) = spec
        .axes
        .iter()
        .find(|(k, _)| k == "weight-bits" || k == "set:formats.weight.bits")
    else {
        return String::new();
    };
    let Some(widest) = values
        .iter()
        .filter_map(|v| v.parse::<f64>().ok().map(|x| (x, v)))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, v)| v.clone())
    else {
        return String::new();
    };
    // context → configuration → (its options, (accuracies, inference energies) over seeds).
    type Runs = (Vec<f64>, Vec<f64>);
    type Configs = BTreeMap<String, (BTreeMap<String, String>, Runs)>;
    let mut by: BTreeMap<String, Configs> = BTreeMap::new();
    for f in figs {
        let o = &f.point.options;
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
    let mut out = String::new();
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
            out.push_str(&format!(
                "{}cheapest within 1 point of {axis}={widest} ({:.2} %): {name} — {:.2} % at {:.3} nJ per inference (mean over {} seed(s))\n",
                if ctx.is_empty() { String::new() } else { format!("{ctx}: ") },
                100.0 * best,
                100.0 * mean(&r.0),
                mean(&r.1) / 1000.0,
                r.0.len()
            ));
        }
    }
    out
}
