//! `accord modules`: the learning-rate → modularity sweep on all-to-all networks.

use anyhow::{Context, Result};
use clap::Args;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use super::{emit, parse_positive};
use crate::data;
use crate::experiments::modularity::community::reorder;
use crate::experiments::modularity::experiment::{
    DoneRun, Event, Recipe, RunResult, Stat, Sweep, SweepConfig, reanalyse, run_sweep_from,
};
use crate::experiments::modularity::protocol::{Protocol, Stop};
use crate::experiments::modularity::study::{StudyTable, lens_verdicts};
use crate::plot::{self, Heatmap, Legend, LineChart, Series};
use serde::{Deserialize, Serialize};

/// `accord modules` options.
#[derive(Args, Debug, Clone)]
pub struct ModulesArgs {
    /// Dataset: a bundled name (digits, iris, mnist) or a CSV path.
    #[arg(long, default_value = "digits")]
    pub data: String,
    /// Neurons in the all-to-all network (inputs + hidden + outputs).
    #[arg(long, default_value = "300", value_parser = clap::value_parser!(u32).range(2..=4000))]
    pub n: u32,
    /// Learning rates, comma-separated (each finite and > 0).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "0.001,0.003,0.01,0.03,0.1,0.3,1",
        value_parser = parse_positive,
        allow_hyphen_values = true
    )]
    pub rates: Vec<f64>,
    /// Seeds, comma-separated (initial weights and sample order; shared by all rates).
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    pub seeds: Vec<u64>,
    /// Epochs per run.
    #[arg(long, default_value = "20", value_parser = clap::value_parser!(u32).range(1..))]
    pub epochs: u32,
    /// Use only the first SAMPLES training and test rows (for quick runs).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub samples: Option<u32>,
    /// Worker threads (default: the machine's cores). Results do not depend on it.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub threads: Option<u32>,
    /// Initial weights uniform in ±SCALE/sqrt(n).
    #[arg(long, default_value = "1.0", value_parser = parse_positive)]
    pub init_scale: f64,
    /// Firing relaxation damping α in (0, 1] (the f64 reference's; a chip's is undamped).
    #[arg(long, default_value = "1.0", value_parser = parse_damping)]
    pub damping: f64,
    /// Tolerance of the firing and credit relaxations (max |Δ| per iteration).
    #[arg(long, default_value = "1e-6", value_parser = parse_positive)]
    pub tol: f64,
    /// Iteration cap of the firing and credit relaxations.
    #[arg(long, default_value = "200", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_iter: u32,
    /// Louvain restarts per matrix (the partition with the best Q is kept).
    #[arg(long, default_value = "4", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub louvain_restarts: u32,
    /// Train every run on this chip model (shipped name or TOML) instead of the f64 reference;
    /// about 3× slower per epoch in fixed point.
    #[arg(long)]
    pub chip: Option<String>,
    /// Arithmetic on the chip (with --chip only).
    #[arg(long, value_enum, default_value = "fixed", requires = "chip")]
    pub arith: super::ArithArg,
    /// Seed of the train/test split (digits, iris, CSV).
    #[arg(long, default_value = "0")]
    pub split_seed: u64,
    /// Directory for sweep.csv, per_rate.csv, sweep.json and the PNG figures.
    #[arg(long, default_value = "out/modules")]
    pub out: PathBuf,
    /// Let --out replace an earlier run's files in its directory (accord's own .png, .csv,
    /// .json, .txt and .bin files there are removed first; anything else makes the run refuse).
    #[arg(long)]
    pub force: bool,
    /// Continue the sweep whose finished runs are in --out (its runs.bin, written as each run
    /// finishes): they are not run again, and the results equal an uninterrupted sweep's.
    #[arg(long, conflicts_with = "force")]
    pub resume: bool,
    /// Print the sweep as one JSON document on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Training protocol(s), comma-separated, or `all`: equal-epochs, equal-progress,
    /// convergence, dale, modular-task, weight-decay. With more than one, each runs into
    /// --out/PROTOCOL/ and the verdict table of all of them goes to --out/verdict.{md,csv,json}.
    #[arg(long, value_delimiter = ',', default_value = "equal-epochs", value_parser = parse_protocol)]
    pub protocol: Vec<ProtocolChoice>,
    /// Epoch cap of equal-progress and convergence (instead of --epochs).
    #[arg(long, default_value = "40", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_epochs: u32,
    /// equal-progress: stop when a quarter epoch's mean training loss is at or below this.
    #[arg(long, default_value = "0.2", value_parser = parse_positive)]
    pub target_loss: f64,
    /// convergence: stop when the training loss improved by less than this share over
    /// --patience epochs.
    #[arg(long, default_value = "0.01", value_parser = parse_positive)]
    pub plateau: f64,
    /// convergence: epochs over which the improvement is measured.
    #[arg(long, default_value = "3", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub patience: u32,
    /// dale: share of inhibitory neurons (every 1/share-th neuron).
    #[arg(long, default_value = "0.2", value_parser = parse_share)]
    pub inhibitory: f64,
    /// weight-decay: λ of the L2 penalty (w ← (1 − ηλ) w after each update).
    #[arg(long, default_value = "1e-4", value_parser = parse_positive)]
    pub weight_decay: f64,
    /// Null matrices per run and lens (p-values of 1/(K+1) at best).
    #[arg(long, default_value = "19", value_parser = clap::value_parser!(u32).range(1..=999))]
    pub nulls: u32,
    /// With --resume: see the finished runs through the lenses again (after a change of the
    /// lenses or their null model), from their saved weights; their training is kept.
    #[arg(long, requires = "resume")]
    pub reanalyse: bool,
}

/// One `--protocol` value: a protocol or `all`.
#[derive(Clone, Debug)]
pub enum ProtocolChoice {
    /// One protocol.
    One(Protocol),
    /// Every protocol.
    All,
}

fn parse_protocol(s: &str) -> Result<ProtocolChoice, String> {
    let s = s.trim();
    if s == "all" {
        return Ok(ProtocolChoice::All);
    }
    Protocol::parse(s).map(ProtocolChoice::One).ok_or_else(|| {
        let names: Vec<&str> = Protocol::ALL.iter().map(|p| p.name()).collect();
        format!(
            "'{s}' is not a protocol (one of {}, or all)",
            names.join(", ")
        )
    })
}

fn parse_share(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v > 0.0 && v < 1.0 => Ok(v),
        Ok(v) => Err(format!("{v} is not allowed (must be in (0, 1))")),
        Err(_) => Err(format!("'{s}' is not a number")),
    }
}

/// The protocols `--protocol` names, each once, in the order of [`Protocol::ALL`].
pub fn protocols(a: &ModulesArgs) -> Vec<Protocol> {
    Protocol::ALL
        .into_iter()
        .filter(|p| {
            a.protocol.iter().any(|c| match c {
                ProtocolChoice::All => true,
                ProtocolChoice::One(q) => q == p,
            })
        })
        .collect()
}

fn parse_damping(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 1.0 => Ok(v),
        Ok(v) => Err(format!("{v} is not allowed (must be in (0, 1])")),
        Err(_) => Err(format!("'{s}' is not a number")),
    }
}

/// The sweep configuration the arguments describe, for `protocol`.
pub fn sweep_config(a: &ModulesArgs, protocol: Protocol) -> SweepConfig {
    let mut rates = a.rates.clone();
    rates.sort_by(f64::total_cmp);
    rates.dedup();
    let threads = a.threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |t| t as usize,
    );
    SweepConfig {
        recipe: Recipe {
            n: a.n as usize,
            init_scale: a.init_scale,
            damping: a.damping,
            fire_tol: a.tol,
            credit_tol: a.tol,
            fire_max_iter: a.max_iter as usize,
            credit_max_steps: a.max_iter as usize,
            inhibitory: if protocol == Protocol::Dale {
                a.inhibitory
            } else {
                0.0
            },
            weight_decay: if protocol == Protocol::WeightDecay {
                a.weight_decay
            } else {
                0.0
            },
            stop: match protocol {
                Protocol::EqualProgress => Stop::TargetLoss {
                    loss: a.target_loss,
                },
                Protocol::Convergence => Stop::Plateau {
                    relative: a.plateau,
                    patience: a.patience as usize,
                },
                _ => Stop::Epochs,
            },
            ..Recipe::default()
        },
        data: a.data.clone(),
        rates,
        seeds: a.seeds.clone(),
        epochs: match protocol {
            Protocol::EqualProgress | Protocol::Convergence => a.max_epochs as usize,
            _ => a.epochs as usize,
        },
        samples: a.samples.map(|s| s as usize),
        threads,
        louvain_restarts: a.louvain_restarts as usize,
        chip: None,
        protocol,
        nulls: a.nulls as usize,
    }
}

/// The options only some protocols read, with the protocols that read them.
const PROTOCOL_ONLY: [(&str, &[Protocol]); 7] = {
    use Protocol::{Convergence, Dale, EqualEpochs, EqualProgress, ModularTask, WeightDecay};
    [
        ("epochs", &[EqualEpochs, Dale, ModularTask, WeightDecay]),
        ("max_epochs", &[EqualProgress, Convergence]),
        ("target_loss", &[EqualProgress]),
        ("plateau", &[Convergence]),
        ("patience", &[Convergence]),
        ("inhibitory", &[Dale]),
        ("weight_decay", &[WeightDecay]),
    ]
};

/// Refuse options the chosen protocols would ignore (`given`: the options on the command
/// line): one no chosen protocol reads, `--damping` on a chip (whose firing relaxation is
/// undamped), and mnist's split seed.
///
/// # Errors
/// The first such option, named with the protocols that read it.
pub fn check_applies(a: &ModulesArgs, given: &[String]) -> Result<()> {
    super::refuse_unread(given, &PROTOCOL_ONLY, &protocols(a), "--protocol", |p| {
        p.name().to_string()
    })?;
    if a.chip.is_some() && super::gave(given, "damping") {
        anyhow::bail!(
            "--damping applies to the f64 reference's firing relaxation; the chip's firing relaxation is undamped (α = 1): drop one of the two"
        );
    }
    super::check_split_seed(&a.data, given)
}

/// Run `accord modules`: one protocol's sweep into --out, or several, each into
/// --out/PROTOCOL, with the verdict table of all of them in --out.
pub fn run(a: &ModulesArgs, given: &[String]) -> Result<ExitCode> {
    check_applies(a, given)?;
    let list = protocols(a);
    if let [one] = list[..] {
        let (sweep, files, wall) = run_protocol(a, one, &a.out)?;
        if a.json {
            emit(&format!("{}\n", serde_json::to_string_pretty(&sweep)?))?;
        } else {
            let mut o = sweep.to_string();
            o.push_str("files:\n");
            for f in &files {
                let _ = writeln!(o, "  {}", f.display());
            }
            let _ = writeln!(o, "wall time {wall:.1} s");
            emit(&o)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    // Every protocol's settings and folder are checked before the first run, not after an hour
    // of work.
    let split = data::load(&a.data, &data::default_data_dir(), a.split_seed)
        .with_context(|| format!("loading --data {}", a.data))?;
    for &p in &list {
        let cfg = sweep_config(a, p);
        cfg.check()?;
        if a.chip.is_some() && p != Protocol::EqualEpochs {
            anyhow::bail!(
                "--protocol {p} runs on the f64 reference only; on a chip only equal-epochs is implemented"
            );
        }
        let ready = cfg.prepare(&split);
        cfg.recipe
            .check(ready.train.dim, ready.train.n_classes)
            .with_context(|| format!("--protocol {p}"))?;
    }
    for p in &list {
        let dir = a.out.join(p.name());
        if a.resume {
            if !dir.join(RUN_LOG).is_file() {
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("creating --out {}", dir.display()))?;
            }
        } else {
            super::out_dir::OutDir::prepare(&dir, a.force, "--out")?;
        }
    }
    let start = Instant::now();
    let mut rows = Vec::new();
    let mut sweeps = Vec::new();
    for &p in &list {
        eprintln!("accord modules: protocol {p}");
        let (sweep, _, _) = run_protocol(a, p, &a.out.join(p.name()))?;
        if !a.json {
            emit(&format!("{sweep}\n"))?;
        }
        rows.extend(lens_verdicts(&sweep));
        sweeps.push(sweep);
    }
    let table = StudyTable { rows };
    let files = write_study(&table, &sweeps, &a.out)?;
    let wall = start.elapsed().as_secs_f64();
    if a.json {
        emit(&format!("{}\n", serde_json::to_string_pretty(&table)?))?;
    } else {
        let mut o = format!(
            "verdict table ({} protocols × lenses; lowest rate {} vs highest {}; excess = share − its null-model mean):\n{table}files:\n",
            list.len(),
            sweeps[0].config.rates[0],
            sweeps[0].config.rates[sweeps[0].config.rates.len() - 1]
        );
        for f in &files {
            let _ = writeln!(o, "  {}", f.display());
        }
        let _ = writeln!(o, "wall time {wall:.1} s");
        emit(&o)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// verdict.md, verdict.csv and verdict.json of a study in `dir`.
fn write_study(table: &StudyTable, sweeps: &[Sweep], dir: &Path) -> Result<Vec<PathBuf>> {
    #[derive(Serialize)]
    struct Study<'a> {
        table: &'a StudyTable,
        configs: Vec<&'a SweepConfig>,
        wall_seconds: Vec<f64>,
    }
    let mut files = Vec::new();
    let mut put = |name: &str, text: String| -> Result<()> {
        let p = dir.join(name);
        crate::output::write_atomic(&p, text.as_bytes())?;
        files.push(p);
        Ok(())
    };
    put("verdict.md", table.to_string())?;
    put("verdict.csv", table.csv())?;
    put(
        "verdict.json",
        serde_json::to_string_pretty(&Study {
            table,
            configs: sweeps.iter().map(|s| &s.config).collect(),
            wall_seconds: sweeps.iter().map(|s| s.wall_seconds).collect(),
        })?,
    )?;
    Ok(files)
}

/// The run log of `out`: resumed (its finished runs, seen through the lenses again with
/// `--reanalyse`) or created afresh in a cleared folder.
fn open_log(
    a: &ModulesArgs,
    cfg: &SweepConfig,
    split: &data::Split,
    out: &Path,
) -> Result<(RunLog, Vec<DoneRun>)> {
    let (log, done) = if a.resume && out.join(RUN_LOG).is_file() {
        RunLog::resume(&out.join(RUN_LOG), cfg, a.split_seed)?
    } else if a.resume && protocols(a).len() == 1 {
        anyhow::bail!(
            "--resume: {} has no {RUN_LOG} to resume from",
            out.display()
        );
    } else {
        super::out_dir::OutDir::prepare(out, a.force || a.resume, "--out")?.clear()?;
        (
            RunLog::create(&out.join(RUN_LOG), cfg, a.split_seed)?,
            Vec::new(),
        )
    };
    if !done.is_empty() {
        eprintln!(
            "accord modules: {} finished run(s) taken from {}",
            done.len(),
            out.join(RUN_LOG).display()
        );
    }
    if a.reanalyse && !done.is_empty() {
        eprintln!(
            "accord modules: seeing {} finished run(s) through the lenses again",
            done.len()
        );
        let done = reanalyse(cfg, split, done)?;
        // The log is rewritten with the new lens results, so that a later --resume keeps them.
        drop(log);
        let mut log = RunLog::create(&out.join(RUN_LOG), cfg, a.split_seed)?;
        for (r, w) in &done {
            log.append(r, w)?;
        }
        Ok((log, done))
    } else {
        Ok((log, done))
    }
}

/// One protocol's sweep into `out`: the sweep, its files and the wall time.
fn run_protocol(
    a: &ModulesArgs,
    protocol: Protocol,
    out: &Path,
) -> Result<(Sweep, Vec<PathBuf>, f64)> {
    let mut cfg = sweep_config(a, protocol);
    cfg.check()?;
    if let Some(name) = &a.chip {
        let model = crate::chip::open(name).map_err(|e| anyhow::anyhow!("--chip {name}: {e}"))?;
        model.require(&model.required_actions(true))?;
        let arith: crate::emulator::Arith = a.arith.into();
        cfg.chip = Some(crate::experiments::modularity::experiment::ChipRun { model, arith });
    }
    cfg.check()?;
    let split = data::load(&a.data, &data::default_data_dir(), a.split_seed)
        .with_context(|| format!("loading --data {}", a.data))?;
    {
        let ready = cfg.prepare(&split);
        cfg.recipe.check(ready.train.dim, ready.train.n_classes)?;
    }
    let (log, done) = open_log(a, &cfg, &split, out)?;
    let log = std::sync::Mutex::new(log);
    let n_train = cfg.prepare(&split).train.len();
    let total = (cfg.rates.len() * cfg.seeds.len() * cfg.epochs * n_train) as u64;
    let start = Instant::now();
    eprintln!(
        "accord modules: {} runs ({} rates × {} seeds), N = {}, {} epochs of {} samples, {} thread(s)",
        cfg.rates.len() * cfg.seeds.len(),
        cfg.rates.len(),
        cfg.seeds.len(),
        cfg.recipe.n,
        cfg.epochs,
        n_train,
        cfg.threads
    );
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(total)
    } else {
        indicatif::ProgressBar::hidden()
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} [{bar:30}] {pos}/{len} samples ({per_sec}, {elapsed} elapsed, eta {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    let progress = |ev: Event<'_>| match ev {
        Event::Sample => bar.inc(1),
        Event::RunDone(r, w) => {
            if let Ok(mut log) = log.lock()
                && let Err(e) = log.append(r, w)
            {
                // The sweep goes on; only its resumability is lost.
                eprintln!("warning: {e:#}");
            }
            let line = format!("  done {r}");
            if bar.is_hidden() {
                eprintln!("{line}");
            } else {
                bar.println(line);
            }
        }
    };
    let sweep = run_sweep_from(&cfg, &split, &progress, done)?;
    bar.finish_and_clear();
    let files = write_outputs(&sweep, out)?;
    Ok((sweep, files, start.elapsed().as_secs_f64()))
}

/// Write sweep.csv, per_rate.csv, sweep.json and the figures into `dir`; return the paths.
pub fn write_outputs(s: &Sweep, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let write = |name: &str, text: String, files: &mut Vec<PathBuf>| -> Result<()> {
        let p = dir.join(name);
        crate::output::write_atomic(&p, text.as_bytes())?;
        files.push(p);
        Ok(())
    };
    write("sweep.csv", s.runs_csv(), &mut files)?;
    write("per_rate.csv", s.per_rate_csv(), &mut files)?;
    write("lenses.csv", s.lenses_csv(), &mut files)?;
    write("sweep.json", serde_json::to_string_pretty(s)?, &mut files)?;
    let first_seed = s.config.seeds[0];
    let last = s.config.rates.len() - 1;
    for (k, tag) in [(0usize, "lowest"), (last, "highest")] {
        if tag == "highest" && last == 0 {
            break;
        }
        if let Some(i) = s
            .runs
            .iter()
            .position(|r| r.rate_index == k && r.seed == first_seed)
        {
            let p = dir.join(format!("w_by_community_{tag}_rate.png"));
            community_heatmap(s, i, &p)?;
            files.push(p);
            let p = dir.join(format!("w_by_group_{tag}_rate.png"));
            group_heatmap(s, i, &p)?;
            files.push(p);
        }
    }
    let p = dir.join("modularity_vs_rate.png");
    trend_chart(s, &p)?;
    files.push(p);
    let p = dir.join("accuracy_vs_rate.png");
    let acc = Series::new(
        "test accuracy",
        s.per_rate
            .iter()
            .map(|p| (p.rate, p.accuracy.mean))
            .collect(),
    )
    .with_err(s.per_rate.iter().map(|p| p.accuracy.sd).collect());
    plot::draw_lines(
        &p,
        &LineChart {
            title: format!(
                "All-to-all N = {}: test accuracy after {} epochs ({} seeds, mean ± sd)",
                s.config.recipe.n,
                s.config.epochs,
                s.config.seeds.len()
            ),
            x_label: "learning rate η".into(),
            y_label: "test accuracy".into(),
            log_x: true,
            legend: Legend::LowerRight,
            ..LineChart::default()
        },
        &[acc],
    )?;
    files.push(p);
    Ok(files)
}

fn trend_chart(s: &Sweep, p: &Path) -> Result<()> {
    let pr = &s.per_rate;
    let line =
        |name: &str,
         f: &dyn Fn(&crate::experiments::modularity::experiment::RateSummary) -> Stat| {
            Series::new(name, pr.iter().map(|x| (x.rate, f(x).mean)).collect())
                .with_err(pr.iter().map(|x| f(x).sd).collect())
        };
    let series = [
        line("Q (Louvain on |W|)", &|x| x.q),
        line("within-community share of |W|", &|x| x.within),
        Series::new(
            "chance level of the within share",
            pr.iter().map(|x| (x.rate, x.within_chance.mean)).collect(),
        )
        .dashed(),
        line("within input/hidden/output groups", &|x| x.group_within),
        Series::new(
            "chance level of the group share",
            pr.iter()
                .map(|x| (x.rate, x.group_within_chance.mean))
                .collect(),
        )
        .dashed(),
    ];
    plot::draw_lines(
        p,
        &LineChart {
            title: format!(
                "Block structure of W vs learning rate (N = {}, {} epochs, {} seeds: mean ± sd)",
                s.config.recipe.n,
                s.config.epochs,
                s.config.seeds.len()
            ),
            x_label: "learning rate η".into(),
            y_label: "modularity Q / share of Σ|w_ij|".into(),
            log_x: true,
            y_range: Some((0.0, 1.0)),
            legend: Legend::UpperLeft,
            ..LineChart::default()
        },
        &series,
    )
}

/// |W| colour cap: the 99th percentile of the non-zero magnitudes.
fn cap_99(w: &[f64]) -> f64 {
    let mut a: Vec<f64> = w.iter().map(|x| x.abs()).filter(|x| *x > 0.0).collect();
    if a.is_empty() {
        return 1.0;
    }
    a.sort_by(f64::total_cmp);
    a[((a.len() - 1) as f64 * 0.99) as usize]
}

fn community_heatmap(s: &Sweep, i: usize, p: &Path) -> Result<()> {
    let r = &s.runs[i];
    let w = &s.weights[i];
    let n = s.config.recipe.n;
    let labels = &r.structure.labels;
    let perm = reorder(labels);
    let mut m = vec![0.0; n * n];
    for a in 0..n {
        for b in 0..n {
            m[a * n + b] = w[perm[a] * n + perm[b]].abs();
        }
    }
    let mut boundaries = Vec::new();
    for a in 1..n {
        if labels[perm[a]] != labels[perm[a - 1]] {
            boundaries.push(a);
        }
    }
    let cap = cap_99(&m);
    plot::heatmap_with(
        p,
        &Heatmap {
            title: format!(
                "|W| reordered by community, η = {}, seed {}: Q = {:.3}, within {:.2} (chance {:.2})",
                r.rate, r.seed, r.structure.q, r.structure.within, r.structure.within_chance
            ),
            scale_label: format!(
                "|w_ij| (capped at 99th pct {})",
                crate::output::format_value(cap)
            ),
            x_label: "presynaptic neuron j (community order)".into(),
            y_label: "postsynaptic neuron i (community order)".into(),
            range: Some((0.0, cap)),
            boundaries,
        },
        &m,
        n,
        n,
    )
}

fn group_heatmap(s: &Sweep, i: usize, p: &Path) -> Result<()> {
    let r = &s.runs[i];
    let w = &s.weights[i];
    let n = s.config.recipe.n;
    let m: Vec<f64> = w.iter().map(|x| x.abs()).collect();
    let (n_in, n_out) = (s.inputs, s.outputs);
    let cap = cap_99(&m);
    plot::heatmap_with(
        p,
        &Heatmap {
            title: format!(
                "|W| by input/hidden/output group, η = {}, seed {}: group within {:.2} (chance {:.2})",
                r.rate, r.seed, r.structure.group_within, r.structure.group_within_chance
            ),
            scale_label: format!(
                "|w_ij| (capped at 99th pct {})",
                crate::output::format_value(cap)
            ),
            x_label: format!(
                "presynaptic neuron j (inputs 0–{}, outputs last {n_out})",
                n_in - 1
            ),
            y_label: "postsynaptic neuron i".into(),
            range: Some((0.0, cap)),
            boundaries: vec![n_in, n - n_out],
        },
        &m,
        n,
        n,
    )
}

/// The file in `--out` that holds the finished runs of a sweep.
pub const RUN_LOG: &str = "runs.bin";

const RUN_LOG_MAGIC: &[u8; 16] = b"accord-runs v1\n\0";

/// One finished run as the log keeps it (the community labels are not part of a run's JSON).
#[derive(Serialize, Deserialize)]
struct RunRecord {
    run: RunResult,
    labels: Vec<usize>,
    learned_labels: Vec<usize>,
    weights: Vec<f64>,
}

/// The finished runs of a sweep, appended as each finishes so that `--resume` can skip them:
/// a magic line, the sweep's configuration, then one record per run — length, CRC-32 and the
/// run in `postcard` (every `f64` exact). A record cut short by a kill is dropped on resume.
#[derive(Debug)]
struct RunLog {
    file: std::fs::File,
    path: PathBuf,
}

impl RunLog {
    /// What identifies a sweep: its configuration without the thread count.
    fn key(cfg: &SweepConfig, split_seed: u64) -> Result<Vec<u8>> {
        let mut c = cfg.clone();
        c.threads = 0;
        let mut k = serde_json::to_vec(&c)?;
        k.extend(format!(" split-seed {split_seed}").bytes());
        Ok(k)
    }

    fn record(file: &mut std::fs::File, body: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        let len = u32::try_from(body.len()).map_err(std::io::Error::other)?;
        file.write_all(&len.to_le_bytes())?;
        file.write_all(&crc32fast::hash(body).to_le_bytes())?;
        file.write_all(body)?;
        file.flush()?;
        file.sync_data()
    }

    fn create(path: &Path, cfg: &SweepConfig, split_seed: u64) -> Result<RunLog> {
        use std::io::Write;
        let io = |e: std::io::Error| anyhow::anyhow!("writing {}: {e}", path.display());
        let mut file = std::fs::File::create(path).map_err(io)?;
        file.write_all(RUN_LOG_MAGIC).map_err(io)?;
        Self::record(&mut file, &Self::key(cfg, split_seed)?).map_err(io)?;
        Ok(RunLog {
            file,
            path: path.to_path_buf(),
        })
    }

    fn append(&mut self, r: &RunResult, w: &[f64]) -> Result<()> {
        let rec = RunRecord {
            run: r.clone(),
            labels: r.structure.labels.clone(),
            learned_labels: r.learned.labels.clone(),
            weights: w.to_vec(),
        };
        let body = postcard::to_stdvec(&rec)?;
        Self::record(&mut self.file, &body)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", self.path.display()))
    }

    /// Open the log of an interrupted sweep: its finished runs, and the log to append to (a
    /// torn last record cut off).
    fn resume(path: &Path, cfg: &SweepConfig, split_seed: u64) -> Result<(RunLog, Vec<DoneRun>)> {
        let name = path.display();
        let bytes = crate::limits::read_bounded(path, crate::limits::max_memory())
            .map_err(|e| anyhow::anyhow!("--resume: {name}: {e}"))?;
        let body = bytes.strip_prefix(RUN_LOG_MAGIC).ok_or_else(|| {
            anyhow::anyhow!("--resume: {name} is not a log of accord modules runs")
        })?;
        let mut at = 0usize;
        let mut next = || -> Option<&[u8]> {
            let head = body.get(at..at + 8)?;
            let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
            let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
            let rec = body.get(at + 8..at + 8 + len)?;
            if crc32fast::hash(rec) != crc {
                return None;
            }
            at += 8 + len;
            Some(rec)
        };
        let key = next()
            .ok_or_else(|| anyhow::anyhow!("--resume: {name} has no configuration record"))?;
        if key != Self::key(cfg, split_seed)?.as_slice() {
            anyhow::bail!(
                "--resume: the runs in {name} belong to another configuration (every option but --threads must be the same)"
            );
        }
        let mut done = Vec::new();
        while let Some(rec) = next() {
            let r: RunRecord = postcard::from_bytes(rec).map_err(|e| {
                anyhow::anyhow!("--resume: {name}: a run record does not decode: {e}")
            })?;
            let mut run = r.run;
            run.structure.labels = r.labels;
            run.learned.labels = r.learned_labels;
            done.push((run, r.weights));
        }
        let good = (RUN_LOG_MAGIC.len() + at) as u64;
        if good < bytes.len() as u64 {
            eprintln!(
                "accord modules: {name}: the log is cut short or damaged at byte {good}; the {} bytes from there are dropped and their runs run again",
                bytes.len() as u64 - good
            );
        }
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| anyhow::anyhow!("--resume: {name}: {e}"))?;
        file.set_len(good)
            .map_err(|e| anyhow::anyhow!("--resume: {name}: {e}"))?;
        Ok((
            RunLog {
                file,
                path: path.to_path_buf(),
            },
            done,
        ))
    }
}
