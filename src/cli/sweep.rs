//! `accord sweep`: a grid (or a seeded random sample of it) over `accord train`'s options, run
//! point by point on local threads or spread over a cluster with `--shard`, and
//! `accord sweep merge` to join the shards. The spec, the records, resuming, merging and the
//! front are [`crate::experiments::sweep`]'s; here each point is a child `accord train … --json`
//! of this binary, with a progress bar, and the figures are drawn (`pareto.png`,
//! `accuracy_vs_<axis>.png`, `energy.png`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};

use super::out_dir::OutDir;
use super::{ChildTrain, emit};
use crate::error::at_least_one;
use crate::experiments::sweep::{Merge, Shard, Spec, Sweep, SweepSummary};

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
    #[arg(long, conflicts_with = "force")]
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
    at_least_one("jobs", Some(a.jobs))?;
    let spec = Spec::from_sources(a.spec.as_deref(), &a.grid, &a.base)?;
    let shard = a
        .shard
        .as_deref()
        .map(str::parse::<Shard>)
        .transpose()?
        .unwrap_or(Shard::ALL);
    if !a.resume {
        OutDir::prepare(out, a.force, "--out")?.clear()?;
    }
    let sweep = Sweep::start(out, spec, shard, a.resume)?;
    let extra = max_memory.map_or_else(Vec::new, |m| vec!["--max-memory".into(), m.to_string()]);
    let runner = ChildTrain::new(extra)?;
    let bar = indicatif::ProgressBar::new(sweep.todo() as u64);
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_style(
            indicatif::ProgressStyle::with_template("sweep {bar:30} {pos}/{len} points, eta {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
    } else {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let report = sweep.run(a.jobs, &runner, |_| bar.inc(1))?;
    bar.finish_and_clear();
    draw(out, &report.summary)?;
    emit(&report.to_string())?;
    Ok(ExitCode::SUCCESS)
}

/// `accord sweep merge`.
fn merge(dirs: &[PathBuf], out: &Path, force: bool) -> Result<ExitCode> {
    let merged = Merge::read(dirs)?;
    OutDir::prepare(out, force, "--out")?.clear()?;
    let report = merged.write(out)?;
    draw(out, &report.summary)?;
    emit(&report.to_string())?;
    Ok(ExitCode::SUCCESS)
}

/// Draw `pareto.png`, `accuracy_vs_<axis>.png` and `energy.png` in `dir` from the finished
/// points (none if no point has an inference energy; the summary says which it leaves out).
fn draw(dir: &Path, summary: &SweepSummary) -> Result<()> {
    use crate::plot::{LineChart, Series, draw_lines};
    if summary.fronts.is_empty() {
        return Ok(());
    }
    let mut series = vec![
        Series::new(
            "every point",
            summary
                .priced()
                .map(|f| (f.infer_pj / 1000.0, f.accuracy))
                .collect(),
        )
        .scatter(),
    ];
    for g in &summary.fronts {
        series.push(Series::new(
            format!("front: {}", g.context),
            g.points
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
    draw_accuracy_vs(dir, summary)?;
    draw_energy(dir, summary)
}

/// `accuracy_vs_<axis>.png`: accuracy (mean ± sd over seeds) against each axis drawn.
fn draw_accuracy_vs(dir: &Path, summary: &SweepSummary) -> Result<()> {
    use crate::plot::{LineChart, Series, draw_lines};
    for a in summary.accuracy_vs.iter().filter(|a| a.drawn()) {
        let series: Vec<Series> = a
            .lines
            .iter()
            .map(|line| {
                let err = line.points.iter().map(|p| p.2).collect();
                Series::new(
                    line.name.clone(),
                    line.points.iter().map(|p| (p.0, p.1)).collect(),
                )
                .with_err(err)
            })
            .collect();
        let file: String = a
            .axis
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        draw_lines(
            &dir.join(format!("accuracy_vs_{file}.png")),
            &LineChart {
                title: format!("test accuracy against {} (mean ± sd over seeds)", a.axis),
                x_label: a.axis.clone(),
                y_label: "test accuracy".into(),
                legend: crate::plot::Legend::LowerRight,
                ..LineChart::default()
            },
            &series,
        )?;
    }
    Ok(())
}

/// `energy.png`: each trained point's energy per training sample, stacked by part.
fn draw_energy(dir: &Path, summary: &SweepSummary) -> Result<()> {
    let trained = summary.energy_bars();
    if !trained.is_empty() {
        let labels: Vec<String> = trained
            .iter()
            .map(|f| {
                let short: Vec<&str> = f.options.values().map(String::as_str).collect();
                format!("#{} {}", f.index, short.join(" "))
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
    Ok(())
}
