//! `accord probe`: the paper's three assumptions as experiments (balance function, credit
//! equilibrium, output clamp), as terminal tables, JSON and PNG figures.

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use super::emit;
use super::{ActArg, parse_positive};
use crate::data;
use crate::experiments::probe::ProbeConfig;
use crate::experiments::probe::balance::{self, BalanceConfig, BalanceReport, Variant};
use crate::experiments::probe::clamp::{self, ClampConfig, ClampReport};
use crate::experiments::probe::equilibrium::{self, EquilibriumConfig, EquilibriumReport};
use crate::plot::{self, Legend, LineChart, Series};
use crate::rule::Activation;

/// Which probe to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProbeKind {
    /// g ≠ f': quantised, constant and shifted balance functions.
    Balance,
    /// Plasticity after k retrograde steps, or interleaved with them.
    Equilibrium,
    /// No output clamp: credit norm per step, growth rate, where it leaves the range.
    Clamp,
    /// All three.
    All,
}

/// `accord probe` options.
#[derive(Args, Debug, Clone)]
pub struct ProbeArgs {
    /// Which probe.
    #[arg(value_enum, default_value = "all")]
    pub kind: ProbeKind,
    /// Dataset: a bundled name (digits, iris, mnist) or a CSV path.
    #[arg(long, default_value = "digits")]
    pub data: String,
    /// Hidden widths of the layered net (linear outputs, cross-entropy).
    #[arg(long, default_value = "32,32", value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub hidden: Vec<u32>,
    /// Hidden activation (layered); hidden and output activation (all-to-all, MSE).
    #[arg(long, value_enum, default_value = "sigmoid")]
    pub activation: ActArg,
    /// Learning rate of the layered net.
    #[arg(long, default_value = "0.05", value_parser = parse_positive, allow_hyphen_values = true)]
    pub lr: f64,
    /// Learning rate of the all-to-all net.
    #[arg(long, default_value = "0.3", value_parser = parse_positive, allow_hyphen_values = true)]
    pub a2a_lr: f64,
    /// Neurons of the all-to-all net (inputs + hidden + outputs).
    #[arg(long, default_value = "150", value_parser = clap::value_parser!(u32).range(2..=4000))]
    pub n: u32,
    /// Training epochs per variant.
    #[arg(long, default_value = "3", value_parser = clap::value_parser!(u32).range(1..))]
    pub epochs: u32,
    /// Use only the first SAMPLES training and test rows.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub samples: Option<u32>,
    /// Test rows over which the gradient cosine is averaged.
    #[arg(long, default_value = "100", value_parser = clap::value_parser!(u32).range(1..))]
    pub probe_samples: u32,
    /// Seed of the initial weights and sample order.
    #[arg(long, default_value = "1")]
    pub seed: u64,
    /// Seed of the train/test split.
    #[arg(long, default_value = "0")]
    pub split_seed: u64,
    /// Worker threads (default: the machine's cores). Results do not depend on it.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub threads: Option<u32>,
    /// balance: table output bits to sweep (at --lut-entries entries).
    #[arg(long, value_delimiter = ',', default_value = "1,2,3,4,6,8", value_parser = clap::value_parser!(u32).range(1..=52))]
    pub bits: Vec<u32>,
    /// balance: table sizes to sweep (at --lut-bits bits).
    #[arg(long, value_delimiter = ',', default_value = "2,4,8,16,32,256", value_parser = clap::value_parser!(u32).range(2..=1048576))]
    pub entries: Vec<u32>,
    /// balance: entries of the table in the bits sweep.
    #[arg(long, default_value = "64", value_parser = clap::value_parser!(u32).range(2..=1048576))]
    pub lut_entries: u32,
    /// balance: bits of the table in the entries sweep.
    #[arg(long, default_value = "8", value_parser = clap::value_parser!(u32).range(1..=52))]
    pub lut_bits: u32,
    /// balance: input range ±R of the table (default: sigmoid 8, tanh 4, others 2).
    #[arg(long, value_parser = parse_positive)]
    pub lut_range: Option<f64>,
    /// balance: shifts s of g(u) = f'(u − s).
    #[arg(long, value_delimiter = ',', default_value = "0.5,1,2", allow_hyphen_values = true, value_parser = parse_finite)]
    pub shifts: Vec<f64>,
    /// equilibrium: retrograde step counts k for the all-to-all net (layered: 0..m).
    #[arg(long, value_delimiter = ',', default_value = "0,1,2,3,5,8,13,21", value_parser = clap::value_parser!(u32).range(0..=100000))]
    pub steps: Vec<u32>,
    /// clamp: gains applied to the all-to-all weights.
    #[arg(long, value_delimiter = ',', default_value = "1,4,8,16,32,64", value_parser = parse_positive, allow_hyphen_values = true)]
    pub gains: Vec<f64>,
    /// clamp: damping of the firing relaxation.
    #[arg(long, default_value = "0.5", value_parser = parse_positive)]
    pub clamp_damping: f64,
    /// clamp: retrograde step cap.
    #[arg(long, default_value = "100000", value_parser = clap::value_parser!(u32).range(1..=10000000))]
    pub max_steps: u32,
    /// clamp: vanishing bound relative to the injected credit (default: f64::MIN_POSITIVE).
    #[arg(long, value_parser = parse_positive)]
    pub vanish: Option<f64>,
    /// clamp: divergence bound relative to the injected credit (default: f64::MAX).
    #[arg(long, value_parser = parse_positive)]
    pub diverge: Option<f64>,
    /// clamp: test row whose firing state is probed.
    #[arg(long, default_value = "0")]
    pub sample: usize,
    /// Directory for the PNG figures.
    #[arg(long, default_value = "out/probe")]
    pub out: PathBuf,
    /// Let --out replace an earlier run's files in its directory (accord's own .png, .csv,
    /// .json, .txt and .bin files there are removed first; anything else makes the run refuse).
    #[arg(long)]
    pub force: bool,
    /// Print one JSON document on stdout instead of the tables.
    #[arg(long)]
    pub json: bool,
}

fn parse_finite(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(v) => Err(format!("{v} is not allowed (must be finite)")),
        Err(_) => Err(format!("'{s}' is not a number")),
    }
}

/// The shared probe configuration the arguments describe.
pub fn probe_config(a: &ProbeArgs) -> ProbeConfig {
    let mut c = ProbeConfig {
        data: a.data.clone(),
        hidden: a.hidden.iter().map(|&h| h as usize).collect(),
        activation: Activation::from(a.activation),
        layered_lr: a.lr,
        a2a_lr: a.a2a_lr,
        epochs: a.epochs as usize,
        samples: a.samples.map(|s| s as usize),
        probe_samples: a.probe_samples as usize,
        seed: a.seed,
        ..ProbeConfig::default()
    };
    c.recipe.n = a.n as usize;
    c.recipe.hidden_act = c.activation;
    c.recipe.output_act = c.activation;
    if let Some(t) = a.threads {
        c.threads = t as usize;
    }
    c
}

/// The options only some probes read, with the probes that read them.
const PROBE_ONLY: [(&str, &[ProbeKind]); 17] = {
    use ProbeKind::{Balance as B, Clamp as C, Equilibrium as E};
    [
        ("lr", &[B, E]),
        ("a2a_lr", &[B, E]),
        ("epochs", &[B, E]),
        ("probe_samples", &[B, E]),
        ("bits", &[B]),
        ("entries", &[B]),
        ("lut_entries", &[B]),
        ("lut_bits", &[B]),
        ("lut_range", &[B]),
        ("shifts", &[B]),
        ("steps", &[E]),
        ("gains", &[C]),
        ("clamp_damping", &[C]),
        ("max_steps", &[C]),
        ("vanish", &[C]),
        ("diverge", &[C]),
        ("sample", &[C]),
    ]
};

/// Refuse options the chosen probe would ignore (`given`: the options on the command line),
/// and mnist's split seed.
///
/// # Errors
/// The first such option, named with the probes that read it.
pub fn check_applies(a: &ProbeArgs, given: &[String]) -> Result<()> {
    use ProbeKind::{All, Balance, Clamp, Equilibrium};
    let chosen = match a.kind {
        All => vec![Balance, Equilibrium, Clamp],
        k => vec![k],
    };
    super::refuse_unread(given, &PROBE_ONLY, &chosen, "probe", |k| kind_name(*k))?;
    super::check_split_seed(&a.data, given)
}

fn kind_name(k: ProbeKind) -> String {
    k.to_possible_value()
        .map_or_else(|| format!("{k:?}"), |v| v.get_name().to_string())
}

/// Run `accord probe`.
pub fn run(a: &ProbeArgs, given: &[String]) -> Result<ExitCode> {
    check_applies(a, given)?;
    let cfg = probe_config(a);
    let split = data::load(&a.data, &data::default_data_dir(), a.split_seed)
        .with_context(|| format!("loading --data {}", a.data))?;
    cfg.check(&split)?;
    let bcfg = BalanceConfig {
        bits: a.bits.clone(),
        entry_counts: a.entries.iter().map(|&e| e as usize).collect(),
        entries: a.lut_entries as usize,
        default_bits: a.lut_bits,
        shifts: a.shifts.clone(),
        range: a.lut_range,
    };
    let ecfg = EquilibriumConfig {
        a2a_steps: a.steps.iter().map(|&k| k as usize).collect(),
    };
    let ccfg = ClampConfig {
        gains: a.gains.clone(),
        damping: a.clamp_damping,
        max_steps: a.max_steps as usize,
        vanish: a.vanish,
        diverge: a.diverge,
        sample: a.sample,
        ..ClampConfig::default()
    };
    // Validate everything before the (slow) runs start.
    bcfg.check()?;
    ecfg.check()?;
    ccfg.check(cfg.limit(&split).test.len())?;
    super::out_dir::OutDir::prepare(&a.out, a.force, "--out")?.clear()?;
    let want = |k: ProbeKind| a.kind == k || a.kind == ProbeKind::All;
    let mut json = serde_json::Map::new();
    let mut files = Vec::new();
    let start = Instant::now();
    if want(ProbeKind::Balance) {
        eprintln!(
            "accord probe balance: {} variants × 2 networks …",
            balance::variants(&bcfg).len()
        );
        let r = balance::run(&cfg, &bcfg, &split)?;
        files.extend(balance_figures(&r, &a.out)?);
        if !a.json {
            emit(&r.to_string())?;
        }
        json.insert("balance".into(), serde_json::to_value(&r)?);
    }
    if want(ProbeKind::Equilibrium) {
        eprintln!("accord probe equilibrium …");
        let r = equilibrium::run(&cfg, &ecfg, &split)?;
        files.extend(equilibrium_figures(&r, &a.out)?);
        if !a.json {
            emit(&r.to_string())?;
        }
        json.insert("equilibrium".into(), serde_json::to_value(&r)?);
    }
    if want(ProbeKind::Clamp) {
        eprintln!("accord probe clamp …");
        let r = clamp::run(&cfg, &ccfg, &split)?;
        files.extend(clamp_figures(&r, &a.out)?);
        if !a.json {
            emit(&r.to_string())?;
        }
        json.insert("clamp".into(), serde_json::to_value(&r)?);
    }
    if a.json {
        let doc = if json.len() == 1 {
            json.into_iter().next().map(|(_, v)| v).unwrap_or_default()
        } else {
            serde_json::Value::Object(json)
        };
        emit(&format!("{}\n", serde_json::to_string_pretty(&doc)?))?;
    } else {
        let mut o = String::from("figures:\n");
        for f in &files {
            let _ = writeln!(o, "  {}", f.display());
        }
        let _ = writeln!(o, "wall time {:.1} s", start.elapsed().as_secs_f64());
        emit(&o)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn balance_figures(r: &BalanceReport, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let pick = |rows: &[balance::BalanceRow],
                want: &dyn Fn(&Variant) -> Option<f64>,
                f: &dyn Fn(&balance::BalanceRow) -> f64| {
        rows.iter()
            .filter_map(|x| want(&x.spec).map(|v| (v, f(x))))
            .collect::<Vec<_>>()
    };
    let entries = r.variants.entries;
    let bits = r.variants.default_bits;
    let by_bits = move |v: &Variant| match v {
        Variant::Lut { entries: e, bits } if *e == entries => Some(*bits as f64),
        _ => None,
    };
    let by_entries = move |v: &Variant| match v {
        Variant::Lut { entries, bits: b } if *b == bits => Some(*entries as f64),
        _ => None,
    };
    for (name, sel, x_label, log_x, what) in [
        (
            "balance_bits.png",
            &by_bits as &dyn Fn(&Variant) -> Option<f64>,
            "balance-table output bits".to_string(),
            false,
            format!("{entries} entries, bits swept"),
        ),
        (
            "balance_entries.png",
            &by_entries,
            "balance-table entries".to_string(),
            true,
            format!("{bits} bits, entries swept"),
        ),
    ] {
        let mut series = Vec::new();
        for (net, rows) in [("layered", &r.layered), ("all-to-all", &r.all_to_all)] {
            series.push(Series::new(
                format!("{net}: cosine, all synapses"),
                pick(rows, sel, &|x| x.cos_init),
            ));
            series.push(Series::new(
                format!("{net}: cosine, onto hidden neurons"),
                pick(rows, sel, &|x| x.cos_hidden_init),
            ));
            series.push(
                Series::new(
                    format!("{net}: test accuracy"),
                    pick(rows, sel, &|x| x.accuracy),
                )
                .dashed(),
            );
        }
        if series.iter().all(|s| s.points.is_empty()) {
            continue;
        }
        let p = dir.join(name);
        plot::draw_lines(
            &p,
            &LineChart {
                title: format!(
                    "Quantised balance table g ({what}; {} epochs)",
                    r.config.epochs
                ),
                x_label,
                y_label: "cosine to true gradient (initial net) / test accuracy".into(),
                log_x,
                y_range: Some((0.0, 1.05)),
                legend: Legend::LowerRight,
                ..LineChart::default()
            },
            &series,
        )?;
        files.push(p);
    }
    for (name, rows, net) in [
        ("balance_variants_layered.png", &r.layered, "layered"),
        (
            "balance_variants_all_to_all.png",
            &r.all_to_all,
            "all-to-all",
        ),
    ] {
        let bars: Vec<(String, f64)> = rows
            .iter()
            .map(|x| (x.variant.clone(), x.cos_hidden_init))
            .collect();
        let p = dir.join(name);
        plot::bar_chart(
            &p,
            &format!("Balance function g, {net} net: rule update vs true gradient"),
            "mean cosine, synapses onto hidden neurons (initial net)",
            &bars,
        )?;
        files.push(p);
    }
    Ok(files)
}

fn equilibrium_figures(r: &EquilibriumReport, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for (name, rows, net) in [
        (
            "equilibrium_layered.png",
            &r.layered,
            format!("layered, m = {}", r.layered_depth),
        ),
        (
            "equilibrium_all_to_all.png",
            &r.all_to_all,
            format!("all-to-all, N = {}", r.config.recipe.n),
        ),
    ] {
        let of = |mode: &str, f: &dyn Fn(&equilibrium::EquilibriumRow) -> f64| {
            rows.iter()
                .filter(|x| x.mode == mode)
                .filter_map(|x| x.k.map(|k| (k as f64, f(x))))
                .collect::<Vec<_>>()
        };
        let settled = rows.iter().find(|x| x.mode == "settled");
        let kmax = rows.iter().filter_map(|x| x.k).max().unwrap_or(1) as f64;
        let mut series = vec![
            Series::new(
                "truncate: cosine, all synapses",
                of("truncate", &|x| x.cos_init),
            ),
            Series::new(
                "truncate: cosine, onto hidden",
                of("truncate", &|x| x.cos_hidden_init),
            ),
            Series::new("truncate: test accuracy", of("truncate", &|x| x.accuracy)),
            Series::new(
                "interleave: cosine, all synapses",
                of("interleave", &|x| x.cos_init),
            ),
            Series::new(
                "interleave: cosine, onto hidden",
                of("interleave", &|x| x.cos_hidden_init),
            ),
            Series::new(
                "interleave: test accuracy",
                of("interleave", &|x| x.accuracy),
            ),
        ];
        if let Some(s) = settled {
            series.push(
                Series::new(
                    "settled: test accuracy",
                    vec![(0.0, s.accuracy), (kmax, s.accuracy)],
                )
                .dashed(),
            );
        }
        let p = dir.join(name);
        plot::draw_lines(
            &p,
            &LineChart {
                title: format!(
                    "Plasticity before credit equilibrium ({net}, {} epochs)",
                    r.config.epochs
                ),
                x_label: "retrograde steps k before / during plasticity".into(),
                y_label: "cosine to true gradient (initial net) / test accuracy".into(),
                y_range: Some((0.0, 1.05)),
                legend: Legend::LowerRight,
                ..LineChart::default()
            },
            &series,
        )?;
        files.push(p);
    }
    Ok(files)
}

fn clamp_figures(r: &ClampReport, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let series: Vec<Series> = r
        .layered
        .iter()
        .chain(&r.all_to_all)
        .map(|x| {
            Series::new(
                format!(
                    "{} gain {} (ρ = {:.2}, {})",
                    x.net, x.gain, x.radius, x.unclamped
                ),
                x.norms.iter().map(|&(k, v)| (k as f64, v)).collect(),
            )
        })
        .collect();
    let p = dir.join("clamp_norms.png");
    plot::draw_lines(
        &p,
        &LineChart {
            title: format!(
                "Credit without output clamp: ‖c‖ per retrograde step (N = {})",
                r.config.recipe.n
            ),
            x_label: "retrograde step".into(),
            y_label: "credit norm ‖c‖₂".into(),
            log_y: true,
            legend: Legend::UpperRight,
            ..LineChart::default()
        },
        &series,
    )?;
    files.push(p);
    let rad: Vec<(f64, f64)> = r.all_to_all.iter().map(|x| (x.gain, x.radius)).collect();
    let growth: Vec<(f64, f64)> = r
        .all_to_all
        .iter()
        .filter_map(|x| x.growth_rate.map(|g| (x.gain, g)))
        .collect();
    let p = dir.join("clamp_growth.png");
    plot::draw_lines(
        &p,
        &LineChart {
            title: format!(
                "Unclamped credit: growth per step vs weight gain (N = {}, damping {})",
                r.config.recipe.n, r.sweep.damping
            ),
            x_label: "weight gain".into(),
            y_label: "factor per step".into(),
            log_x: true,
            legend: Legend::UpperLeft,
            ..LineChart::default()
        },
        &[
            Series::new("spectral radius ρ of Wᵀ diag(g)", rad),
            Series::new("measured growth of ‖c‖ per step", growth).dashed(),
            Series::new(
                "1 (vanish below, diverge above)",
                r.all_to_all.iter().map(|x| (x.gain, 1.0)).collect(),
            )
            .dashed(),
        ],
    )?;
    files.push(p);
    Ok(files)
}
