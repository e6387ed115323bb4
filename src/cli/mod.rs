//! The `accord` command line: argument parsing, validation and the commands' terminal output.
//!
//! Every bad flag or value ends in a message naming it and a non-zero exit status, never a
//! panic. `accord` with no arguments runs `accord train` with its defaults.

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::io::IsTerminal;
use std::process::ExitCode;

use crate::data;
use crate::rule::{Activation, Loss};
use crate::train::{RuleKind, TrainConfig, TrainReport, train};
use crate::verify;

pub mod modules;
pub mod probe;

/// accord: the E-I balance rule (Fan & Mysore, arXiv:2405.14139) as a reference and on
/// modelled neuromorphic chips.
#[derive(Parser, Debug)]
#[command(name = "accord", version, about, long_about = None)]
pub struct Cli {
    /// What to run (default: train).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train a layered network on a dataset and print loss and accuracy per epoch.
    Train(TrainArgs),
    /// Check on random networks that the rule's credits and updates equal backprop's.
    Verify(VerifyArgs),
    /// Sweep the learning rate of all-to-all networks and measure their block structure.
    Modules(modules::ModulesArgs),
    /// Probe the paper's assumptions: balance function, credit equilibrium, output clamp.
    Probe(probe::ProbeArgs),
}

/// Activation choices on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ActArg {
    /// Logistic sigmoid.
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
    /// Rectified linear.
    Relu,
    /// clip(u, 0, 1).
    HardSigmoid,
    /// Identity.
    Identity,
}

impl From<ActArg> for Activation {
    fn from(a: ActArg) -> Self {
        match a {
            ActArg::Sigmoid => Activation::Sigmoid,
            ActArg::Tanh => Activation::Tanh,
            ActArg::Relu => Activation::Relu,
            ActArg::HardSigmoid => Activation::HardSigmoid,
            ActArg::Identity => Activation::Identity,
        }
    }
}

/// Loss choices.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LossArg {
    /// Mean squared error on the activation's outputs.
    Mse,
    /// Softmax cross-entropy on linear outputs.
    Ce,
}

/// Rule choices.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum RuleArg {
    /// The E-I balance rule.
    Balance,
    /// The backprop oracle.
    Backprop,
}

/// `accord train` options.
#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    /// Dataset: a bundled name (mnist, digits, iris) or a path to a numeric CSV
    /// (features then integer label).
    #[arg(long, default_value = "digits")]
    pub data: String,
    /// Hidden layer widths, comma-separated (e.g. 128,64).
    #[arg(long, default_value = "32", value_delimiter = ',', value_parser = parse_width)]
    pub hidden: Vec<usize>,
    /// Hidden activation.
    #[arg(long, value_enum, default_value = "sigmoid")]
    pub activation: ActArg,
    /// Loss.
    #[arg(long, value_enum, default_value = "ce")]
    pub loss: LossArg,
    /// Learning rate η (> 0).
    #[arg(long, default_value = "0.05", value_parser = parse_positive, allow_hyphen_values = true)]
    pub lr: f64,
    /// Epochs (≥ 1).
    #[arg(long, default_value = "30", value_parser = clap::value_parser!(u32).range(1..))]
    pub epochs: u32,
    /// Samples per weight update (1 = per sample).
    #[arg(long, default_value = "1", value_parser = clap::value_parser!(u32).range(1..))]
    pub batch: u32,
    /// Seed for the initial weights and the sample order.
    #[arg(long, default_value = "1")]
    pub seed: u64,
    /// Seed of the train/test split for datasets without one (digits, iris, CSV).
    #[arg(long, default_value = "0")]
    pub split_seed: u64,
    /// Learning rule.
    #[arg(long, value_enum, default_value = "balance")]
    pub rule: RuleArg,
    /// Retrograde steps per sample (default: until settled). Fewer than depth − 1 breaks the
    /// equilibrium requirement.
    #[arg(long)]
    pub steps: Option<usize>,
    /// Print one JSON document instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// `accord verify` options.
#[derive(Args, Debug, Clone)]
pub struct VerifyArgs {
    /// Number of random networks (depths 2–6 in turn).
    #[arg(long, default_value = "200", value_parser = clap::value_parser!(u32).range(1..))]
    pub nets: u32,
    /// Seed.
    #[arg(long, default_value = "1")]
    pub seed: u64,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
}

fn parse_width(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("a layer width must be at least 1".into()),
        Ok(n) if n > 1 << 20 => Err(format!("width {n} is too large (allowed 1..=1048576)")),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("'{s}' is not a layer width (a whole number ≥ 1)")),
    }
}

/// Parse a finite, strictly positive number.
pub fn parse_positive(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        Ok(v) => Err(format!("{v} is not allowed (must be finite and > 0)")),
        Err(_) => Err(format!("'{s}' is not a number")),
    }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let command =
        cli.command
            .unwrap_or_else(|| match Cli::parse_from(["accord", "train"]).command {
                Some(c) => c,
                None => unreachable!("'train' parses to a command"),
            });
    let result = match command {
        Command::Train(a) => run_train(&a),
        Command::Verify(a) => run_verify(&a),
        Command::Modules(a) => modules::run(&a),
        Command::Probe(a) => probe::run(&a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// The training configuration the arguments describe.
pub fn train_config(a: &TrainArgs) -> TrainConfig {
    TrainConfig {
        data: a.data.clone(),
        hidden: a.hidden.clone(),
        activation: a.activation.into(),
        loss: match a.loss {
            LossArg::Mse => Loss::Mse,
            LossArg::Ce => Loss::CrossEntropy,
        },
        lr: a.lr,
        epochs: a.epochs as usize,
        batch: a.batch as usize,
        seed: a.seed,
        rule: match a.rule {
            RuleArg::Balance => RuleKind::Balance,
            RuleArg::Backprop => RuleKind::Backprop,
        },
        steps: a.steps,
    }
}

fn run_train(a: &TrainArgs) -> Result<ExitCode> {
    let cfg = train_config(a);
    if a.hidden.is_empty() {
        bail!("--hidden needs at least one width");
    }
    let split = data::load(&a.data, &data::default_data_dir(), a.split_seed)
        .with_context(|| format!("loading --data {}", a.data))?;
    let total = (cfg.epochs * split.train.len()) as u64;
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(total)
    } else {
        indicatif::ProgressBar::hidden()
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} epoch {msg} [{bar:30}] {pos}/{len} samples ({per_sec}, eta {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    let n_train = split.train.len();
    let mut tick = |k: usize, e: usize| {
        if k.is_multiple_of(256) || k == n_train {
            bar.set_message(format!("{}/{}", e + 1, cfg.epochs));
            bar.set_position((e * n_train + k) as u64);
        }
    };
    let (report, _) = train(&cfg, &split, Some(&mut tick));
    bar.finish_and_clear();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_train(&report);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_train(r: &TrainReport) {
    let sizes: Vec<String> = r.sizes.iter().map(|s| s.to_string()).collect();
    println!(
        "accord train: {} ({} train / {} test), net {} ({} params), {} {}, loss {}, rule {:?}, lr {}, batch {}, seed {}",
        r.config.data,
        r.train_samples,
        r.test_samples,
        sizes.join("-"),
        r.params,
        r.config.activation,
        if r.config.loss == Loss::CrossEntropy {
            "+ linear out"
        } else {
            "out"
        },
        r.config.loss,
        r.config.rule,
        r.config.lr,
        r.config.batch,
        r.config.seed
    );
    println!(
        "{:>5}  {:>10}  {:>9}  {:>9}  {:>9}  {:>7}",
        "epoch", "train loss", "train acc", "test loss", "test acc", "seconds"
    );
    for e in &r.epochs {
        println!(
            "{:>5}  {:>10.4}  {:>8.2}%  {:>9.4}  {:>8.2}%  {:>7.2}",
            e.epoch,
            e.train_loss,
            100.0 * e.train_accuracy,
            e.test_loss,
            100.0 * e.test_accuracy,
            e.seconds
        );
    }
    println!(
        "final: test accuracy {:.2}%, train accuracy {:.2}%, {:.1} retrograde steps per sample",
        100.0 * r.test_accuracy,
        100.0 * r.train_accuracy,
        r.mean_retro_steps
    );
}

fn run_verify(a: &VerifyArgs) -> Result<ExitCode> {
    let report = verify::verify(a.nets as usize, a.seed);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "accord verify: {} random layered nets (depth 2-6, widths 1-64, every activation, mse and ce), seed {}",
            report.nets, report.seed
        );
        println!("{:>5}  {:>5}  {:>14}", "depth", "nets", "max rel dev");
        for (d, n, dev) in &report.per_depth {
            println!("{d:>5}  {n:>5}  {dev:>14.3e}");
        }
        println!(
            "overall max relative deviation {:.3e} (tolerance {:.0e}): {}",
            report.max_rel_dev,
            verify::TOLERANCE,
            if report.pass { "PASS" } else { "FAIL" }
        );
    }
    Ok(if report.pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
