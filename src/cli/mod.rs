//! The `accord` command line: argument parsing, validation and the commands' terminal output.
//!
//! Every bad flag or value ends in a message naming it and a non-zero exit status, never a
//! panic. `accord` with no arguments runs `accord train` with its defaults.

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::process::ExitCode;

use crate::chip::ChipModel;
use crate::data;
use crate::emulator;
use crate::experiments::verify;
use crate::rule::{Activation, Loss};
use crate::train::{RuleKind, TrainConfig};

pub mod all_to_all;
pub mod calibrate;
pub mod formats;
pub mod map;
pub mod modules;
pub mod nir;
pub mod out_dir;
pub mod probe;
pub mod sweep;

/// accord: the E-I balance rule (Fan & Mysore, arXiv:2405.14139) as a reference and on
/// modelled neuromorphic chips.
#[derive(Parser, Debug)]
#[command(name = "accord", version, about, long_about = None)]
pub struct Cli {
    /// What to run (default: train).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Memory limit for what a run is estimated to need (e.g. 8G, 512M; default 2G): layer
    /// widths, `--n`, input files, checkpoints and NIR files are checked against it before
    /// anything is allocated.
    #[arg(long, global = true, value_name = "SIZE", value_parser = crate::limits::parse_size)]
    pub max_memory: Option<u64>,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train a layered network on a dataset and print loss and accuracy per epoch.
    Train(TrainArgs),
    /// Check on random networks that the rule's credits and updates equal backprop's.
    Verify(VerifyArgs),
    /// Check or show a chip model.
    #[command(subcommand)]
    Chip(ChipCommand),
    /// Place a network (layered, a NIR --model, or --all-to-all) on a chip model: cores,
    /// utilisation, pressure, hop histogram.
    Map(map::MapArgs),
    /// Sweep the learning rate of all-to-all networks and measure their block structure.
    Modules(modules::ModulesArgs),
    /// Probe the paper's assumptions: balance function, credit equilibrium, output clamp.
    Probe(probe::ProbeArgs),
    /// Train the all-to-all recipe network on a chip model beside the f64 reference.
    AllToAll(all_to_all::AllToAllArgs),
    /// Read a NIR graph: its nodes, whether accord can run it, and its mapping on every shipped chip.
    Import(nir::ImportArgs),
    /// Write the network of a checkpoint (`train --save`) as a NIR graph.
    Export(nir::ExportArgs),
    /// Run `accord train` over a grid of options (locally or in shards on a cluster) and
    /// record every point's accuracy, energy, latency and footprint.
    Sweep(sweep::SweepArgs),
    /// Propose number formats for a network on a chip from the ranges its variables take in
    /// a calibration run of the f64 reference, with the saturation rate each would have.
    Formats(formats::FormatsArgs),
    /// Run published measured-on-silicon workloads on their chip models, under every price
    /// set, and print emulated against measured with the error.
    Calibrate(calibrate::CalibrateArgs),
}

/// `accord chip …`
#[derive(Subcommand, Debug)]
pub enum ChipCommand {
    /// Load a chip model and run its design-rule check.
    Check {
        /// Shipped model name (loihi, truenorth, reckon, balance-core) or path to a TOML file.
        file: String,
    },
    /// Print a chip model: mesh, capacities, formats, prices with grades and sources.
    Show {
        /// Shipped model name or path to a TOML file.
        file: String,
        /// Print the model as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Firing modes on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ModeArg {
    /// One event per active neuron carrying its rate.
    Graded,
    /// Integrate-and-fire neurons over `--ticks` ticks.
    Spiking,
}

/// Arithmetic on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ArithArg {
    /// The chip's fixed-point formats.
    Fixed,
    /// `f64` twin, no quantisation.
    Float,
}

/// Input encodings on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum EncodingArg {
    /// Deterministic regular spike trains.
    Regular,
    /// Seeded Poisson (Bernoulli per tick) spike trains.
    Poisson,
}

/// Rounding modes on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum RoundingArg {
    /// Round to nearest, ties to even.
    NearestEven,
    /// Truncate toward zero.
    TowardZero,
    /// Round toward −∞.
    Floor,
    /// Stochastic rounding.
    Stochastic,
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

impl From<LossArg> for Loss {
    fn from(l: LossArg) -> Self {
        match l {
            LossArg::Mse => Loss::Mse,
            LossArg::Ce => Loss::CrossEntropy,
        }
    }
}

impl From<ArithArg> for emulator::Arith {
    fn from(a: ArithArg) -> Self {
        match a {
            ArithArg::Fixed => emulator::Arith::Fixed,
            ArithArg::Float => emulator::Arith::Float,
        }
    }
}

/// Rule choices.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum RuleArg {
    /// The E-I balance rule.
    Balance,
    /// Backprop (the oracle on the reference; on a chip, with a transposed weight copy).
    Backprop,
    /// Feedback alignment (on a chip only): a fixed random feedback matrix.
    FeedbackAlignment,
}

/// How a `--model`'s sparse layers are placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PlacementArg {
    /// By receptive field or with dense rows, whichever needs fewer cores (a tie goes to
    /// receptive fields).
    FewestCores,
    /// Dense rows, the zeros stored and masked (on TrueNorth a core then fits fewer neurons'
    /// rows to its crossbar: a closer fit, more cores).
    Dense,
    /// By receptive field: a core holds rows only for the inputs its neurons see.
    ReceptiveField,
}

impl From<PlacementArg> for crate::mapping::Placement {
    fn from(p: PlacementArg) -> Self {
        match p {
            PlacementArg::FewestCores => Self::FewestCores,
            PlacementArg::Dense => Self::Dense,
            PlacementArg::ReceptiveField => Self::ReceptiveField,
        }
    }
}

/// Refuse `--no-duplicate-inputs` on a chip with a weight per synapse (where no input is
/// duplicated, so it would change nothing).
pub(crate) fn check_duplication(
    off: bool,
    chip: &crate::chip::ChipModel,
    given: &str,
) -> Result<()> {
    if off && chip.core.axon_types.is_none() {
        bail!(
            "--no-duplicate-inputs: --chip {given} holds a weight per synapse (no core.axon_types), \
             so no input is duplicated; it applies to crossbar chips such as truenorth"
        );
    }
    Ok(())
}

/// Refuse a placement other than the default for a `--model` without sparse layers (where it
/// would change nothing).
pub(crate) fn check_placement(
    p: PlacementArg,
    model: &std::path::Path,
    sparse: bool,
) -> Result<()> {
    if p != PlacementArg::FewestCores && !sparse {
        bail!(
            "--placement {}: --model {} has no sparse layers (convolutions, pools): every \
             projection is dense, so there is nothing to place another way",
            crate::mapping::Placement::from(p).name(),
            model.display()
        );
    }
    Ok(())
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
    /// Epochs (0: no training, inference only with the initial weights — e.g. on chips that
    /// cannot learn).
    #[arg(long, default_value = "30", value_parser = clap::value_parser!(u32).range(0..=100000))]
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
    /// Learning rule: the balance rule, or a comparison rule (backprop on the reference or on a
    /// chip with a transposed weight copy; feedback alignment on a chip).
    #[arg(long, value_enum, default_value = "balance")]
    pub rule: RuleArg,
    /// Retrograde steps per sample (default: until settled). Fewer than depth − 1 breaks the
    /// equilibrium requirement.
    #[arg(long)]
    pub steps: Option<usize>,
    /// Print one JSON document instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Run the f64 rule reference on the host instead of a chip.
    #[arg(long)]
    pub reference: bool,
    /// Chip model: a shipped name (balance-core, loihi, reckon, truenorth) or a TOML file.
    #[arg(long, default_value = "balance-core")]
    pub chip: String,
    /// Firing mode on the chip.
    #[arg(long, value_enum, default_value = "graded")]
    pub mode: ModeArg,
    /// Ticks per sample in spiking mode (≥ 1).
    #[arg(long, default_value = "32", value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub ticks: u32,
    /// Input spike trains in spiking mode.
    #[arg(long, value_enum, default_value = "regular")]
    pub encoding: EncodingArg,
    /// Arithmetic on the chip: its fixed-point formats, or the f64 float twin.
    #[arg(long, value_enum, default_value = "fixed")]
    pub arith: ArithArg,
    /// Threads simulating the chip (results are identical at any count).
    #[arg(long, default_value = "1", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub threads: u32,
    /// Drop retrograde messages with |δ| below this (0: only zero credit sends nothing).
    #[arg(long, default_value = "0", value_parser = parse_non_negative)]
    pub message_threshold: f64,
    /// Weight format: total bits. Without --weight-frac the integer/fraction split is chosen
    /// from the range the weights need (the starting net's, or the f64 reference trained with
    /// this configuration), and the run says which and why.
    #[arg(long)]
    pub weight_bits: Option<u8>,
    /// Weight format: fractional bits.
    #[arg(long)]
    pub weight_frac: Option<u8>,
    /// Rounding of weight updates.
    #[arg(long, value_enum)]
    pub rounding: Option<RoundingArg>,
    /// Balance-table entries.
    #[arg(long)]
    pub lut_entries: Option<u32>,
    /// Balance-table output bits (keeps the integer bits).
    #[arg(long)]
    pub lut_bits: Option<u8>,
    /// Write PNG figures into this folder: accuracy per epoch, and on a chip the energy per
    /// training sample by primitive. Checked before training starts; must be empty (or new)
    /// unless --force.
    #[arg(long, value_name = "DIR")]
    pub plot: Option<std::path::PathBuf>,
    /// Let --plot replace the figures of an earlier run in its folder (accord's own .png, .csv,
    /// .json, .txt and .bin files there are removed first), and --save replace an existing file.
    #[arg(long)]
    pub force: bool,
    /// Any chip-file override, KEY=VALUE with dotted keys (formats.credit.frac=12,
    /// balance_table.input_min=-4, …); repeatable, applied after the flags above.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Save a checkpoint here after every epoch and when training stops early (interrupt or
    /// divergence): weights, position, counts and the configuration. An existing file is
    /// replaced only with --force or when it is the --resume file.
    #[arg(long, value_name = "FILE")]
    pub save: Option<std::path::PathBuf>,
    /// Continue the run saved in FILE, bit for bit, with its configuration (only --epochs, to
    /// train longer, and --save, --threads, --json, --plot and --force may be given beside it).
    #[arg(long, value_name = "FILE", conflicts_with = "load")]
    pub resume: Option<std::path::PathBuf>,
    /// Start from the network saved in FILE (its widths, activation and loss) instead of random
    /// weights, on this run's chip or the reference: with --epochs 0, evaluate it.
    #[arg(long, value_name = "FILE")]
    pub load: Option<std::path::PathBuf>,
    /// Run the network of a NIR file (a chain of Affine/Linear/Conv1d/Conv2d/pooling and IF, LIF,
    /// CubaLIF nodes, an LI read-out; a neuron node may loop onto itself through one Affine or
    /// Linear node, which runs in spiking mode with --epochs 0): its widths and weights, its
    /// neurons' time constants and thresholds at --dt folded into the weights and the chip's
    /// soma program; spiking neurons are hard-sigmoid units in graded mode, a linear read-out
    /// takes cross-entropy, a spiking output MSE. With --epochs 0, evaluate it as it came.
    #[arg(long, value_name = "FILE.nir", conflicts_with_all = ["load", "resume"])]
    pub model: Option<std::path::PathBuf>,
    /// How a --model's sparse layers (convolutions, pools) are placed: by receptive field or
    /// with dense rows, whichever needs fewer cores; or the one named. `accord map --model`
    /// shows both.
    #[arg(long, value_enum, default_value = "fewest-cores", requires = "model")]
    pub placement: PlacementArg,
    /// On a crossbar chip (TrueNorth), give every input one axon: by default a layer whose
    /// cores have room takes each input on two axons, each with a type (closer weights, more
    /// packets and connected synapses).
    #[arg(long)]
    pub no_duplicate_inputs: bool,
    /// The time step, seconds, at which a --model's neurons are stepped (forward Euler; the
    /// default is the step snnTorch's NIR export assumes).
    #[arg(long, value_name = "SECONDS", default_value_t = crate::nir::DEFAULT_DT, requires = "model")]
    pub dt: f64,
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

/// A layer width to build (`accord train`, …): 1 to 2^20.
fn parse_width(s: &str) -> Result<usize, String> {
    width_at_most(s, 1 << 20)
}

/// A layer width from 1 to `max`.
fn width_at_most(s: &str, max: usize) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("a layer width must be at least 1".into()),
        Ok(n) if n > max => Err(format!("width {n} is too large (allowed 1..={max})")),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("'{s}' is not a layer width (a whole number ≥ 1)")),
    }
}

/// Parse a finite number ≥ 0.
pub fn parse_non_negative(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        Ok(v) => Err(format!("{v} is not allowed (must be finite and ≥ 0)")),
        Err(_) => Err(format!("'{s}' is not a number")),
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

/// Write `text` to standard output; a closed pipe (`accord … | head`) ends the output quietly
/// instead of panicking, any other write error is reported.
///
/// # Errors
/// A write error other than a broken pipe.
pub fn emit(text: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).context("writing to stdout"),
        _ => Ok(()),
    }
}

/// What a failed child `accord` said: its first `error:` line (without the prefix), else its
/// last non-empty line of standard error.
fn child_error(stderr: &[u8]) -> String {
    let err = String::from_utf8_lossy(stderr);
    err.lines()
        .find(|l| l.starts_with("error:"))
        .or_else(|| err.lines().rev().find(|l| !l.trim().is_empty()))
        .unwrap_or("no output")
        .trim_start_matches("error: ")
        .to_string()
}

/// The drivers' runner: each run a child `accord train` process of this binary, with `extra`
/// after the run's arguments.
pub(crate) struct ChildTrain {
    exe: std::path::PathBuf,
    extra: Vec<String>,
}

impl ChildTrain {
    /// A runner of this binary.
    ///
    /// # Errors
    /// The binary's path is unknown.
    pub(crate) fn new(extra: Vec<String>) -> Result<ChildTrain> {
        let exe = std::env::current_exe().context("the accord binary's path")?;
        Ok(ChildTrain { exe, extra })
    }
}

impl crate::experiments::runner::Runner for ChildTrain {
    fn train(
        &self,
        args: &[std::ffi::OsString],
    ) -> Result<crate::experiments::runner::TrainRun, String> {
        let out = std::process::Command::new(&self.exe)
            .arg("train")
            .args(args)
            .args(&self.extra)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| format!("cannot start {}: {e}", self.exe.display()))?;
        Ok(crate::experiments::runner::TrainRun {
            report: serde_json::from_slice(&out.stdout).ok(),
            success: out.status.success(),
            error: child_error(&out.stderr),
            status: out.status.to_string(),
        })
    }
}

/// The command-line grammar: [`Cli`], where a negative number after an option is that
/// option's value (refused with the option's name by its parser), not an unknown option.
pub fn command() -> clap::Command {
    fn negatives(c: clap::Command) -> clap::Command {
        use std::any::TypeId;
        let text = [TypeId::of::<String>(), TypeId::of::<std::path::PathBuf>()];
        c.mut_args(|a| {
            let parses = a.get_value_parser().type_id();
            if !a.get_action().takes_values() {
                a
            } else if text.iter().any(|t| parses == *t) {
                a.allow_negative_numbers(true)
            } else {
                // A number-valued option takes any value after it (`-inf`, `-1,4`) and its
                // parser refuses it by name.
                a.allow_hyphen_values(true)
            }
        })
        .mut_subcommands(negatives)
    }
    use clap::CommandFactory;
    negatives(Cli::command())
}

/// The first command-line argument that is not UTF-8, named by its position and the option
/// before it (clap's own message names neither).
fn non_utf8_argument() -> Option<String> {
    // The program's own path (argument 0) may be anything the file system allows.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let i = 1 + args.iter().skip(1).position(|a| a.to_str().is_none())?;
    let after = match i.checked_sub(1).and_then(|p| args[p].to_str()) {
        Some(prev) if prev.starts_with('-') => format!(" (the value of {prev})"),
        _ => String::new(),
    };
    Some(format!(
        "argument {i}{after} is not valid UTF-8: '{}'",
        args[i].to_string_lossy()
    ))
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    use clap::FromArgMatches;
    if let Some(msg) = non_utf8_argument() {
        eprintln!("error: {msg}");
        return ExitCode::from(2);
    }
    let matches = command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // The options given on the command line (not defaulted), to refuse those a run ignores.
    let given = given_options(&matches);
    if let Some(bytes) = cli.max_memory {
        crate::limits::set_max_memory(bytes);
    }
    let command =
        cli.command
            .unwrap_or_else(|| match Cli::parse_from(["accord", "train"]).command {
                Some(c) => c,
                None => unreachable!("'train' parses to a command"),
            });
    // Library errors name configuration fields; these commands call some by other names.
    let options: &[(&str, &str)] = match &command {
        Command::Probe(_) => PROBE_OPTIONS,
        Command::AllToAll(_) | Command::Modules(_) => RECIPE_OPTIONS,
        _ => &[],
    };
    let result = match command {
        Command::Train(a) => run_train(&a, &given),
        Command::Verify(a) => run_verify(&a),
        Command::Chip(c) => run_chip(&c),
        Command::Map(a) => map::run(&a),
        Command::Modules(a) => modules::run(&a, &given),
        Command::Probe(a) => probe::run(&a, &given),
        Command::AllToAll(a) => all_to_all::run(&a),
        Command::Import(a) => nir::run_import(&a),
        Command::Export(a) => nir::run_export(&a, &given),
        Command::Sweep(a) => sweep::run(&a, cli.max_memory),
        Command::Formats(a) => formats::run(&a, &given),
        Command::Calibrate(a) => calibrate::run(&a, cli.max_memory),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", render_error(&e, options));
            ExitCode::from(2)
        }
    }
}

/// `accord probe`'s options for the fields of the probe configurations whose names differ.
const PROBE_OPTIONS: &[(&str, &str)] = &[
    ("layered_lr", "--lr"),
    ("damping", "--clamp-damping"),
    ("a2a_steps", "--steps"),
    ("entry_counts", "--entries"),
    ("entries", "--lut-entries"),
    ("default_bits", "--lut-bits"),
    ("range", "--lut-range"),
];

/// The all-to-all recipe's fields that `accord all-to-all` and `accord modules` do not take as
/// options: shown by name.
const RECIPE_OPTIONS: &[(&str, &str)] = &[
    ("activation", "activation"),
    ("output_act", "output activation"),
    ("fire_tol", "--tol"),
    ("credit_tol", "--tol"),
];

/// An error as the command line shows it (`{:#}`, causes joined by ": "), with every refused
/// setting under its option instead of its configuration field (`probe_samples` →
/// `--probe-samples`, or as `options` renames it) and the memory limit under `--max-memory`.
pub fn render_error(e: &anyhow::Error, options: &[(&str, &str)]) -> String {
    use crate::error::Setting;
    let option = |field: &str| {
        options.iter().find(|o| o.0 == field).map_or_else(
            || format!("--{}", field.replace('_', "-")),
            |o| o.1.to_string(),
        )
    };
    fn setting<'a>(c: &'a (dyn std::error::Error + 'static)) -> Option<&'a dyn Setting> {
        if let Some(s) = c.downcast_ref::<crate::error::Invalid>() {
            return Some(s);
        }
        if let Some(s) = c.downcast_ref::<crate::limits::LimitError>() {
            return Some(s);
        }
        if let Some(s) = c.downcast_ref::<crate::emulator::EmuError>() {
            return Some(s);
        }
        if let Some(s) = c.downcast_ref::<crate::experiments::probe::ProbeError>() {
            return Some(s);
        }
        if let Some(s) = c.downcast_ref::<crate::experiments::sweep::SweepError>() {
            return Some(s);
        }
        if let Some(s) = c.downcast_ref::<crate::experiments::calibrate::CalibrateError>() {
            return Some(s);
        }
        c.downcast_ref::<crate::experiments::modularity::ModularityError>()
            .map(|s| s as &dyn Setting)
    }
    let raise = |g: u64| format!("raise it with --max-memory, e.g. --max-memory {g}G");
    // A read budget's message is embedded in its file's error: name the option after it.
    let budgets = format!("{} (--max-memory)", crate::limits::READ_BUDGETS);
    e.chain()
        .map(|c| {
            let s = setting(c);
            if let Some(text) = s.and_then(|s| s.named(&option)) {
                text.replace(crate::limits::READ_BUDGETS, &budgets)
            } else if let Some(i) = s.and_then(Setting::invalid) {
                i.named(&option(i.field))
            } else if let Some(l) = s.and_then(Setting::limit) {
                l.named(&l.field.map(option).unwrap_or_default(), &raise)
            } else {
                c.to_string().replace(crate::limits::READ_BUDGETS, &budgets)
            }
        })
        .collect::<Vec<_>>()
        .join(": ")
}

/// The training configuration the arguments describe.
pub fn train_config(a: &TrainArgs) -> TrainConfig {
    TrainConfig {
        data: a.data.clone(),
        hidden: a.hidden.clone(),
        activation: a.activation.into(),
        loss: a.loss.into(),
        lr: a.lr,
        epochs: a.epochs as usize,
        batch: a.batch as usize,
        seed: a.seed,
        rule: match a.rule {
            RuleArg::Balance => RuleKind::Balance,
            // run_train rejects feedback alignment on the reference before we get here.
            RuleArg::Backprop | RuleArg::FeedbackAlignment => RuleKind::Backprop,
        },
        steps: a.steps,
    }
}

/// The chip model the arguments describe: the convenience flags and `--set` pairs become
/// overrides of the chip file, which then goes through the loader's schema and design-rule
/// checks like any file.
pub fn chip_model(a: &TrainArgs) -> Result<ChipModel> {
    let base = crate::chip::open(&a.chip).map_err(|e| anyhow::anyhow!("--chip {}: {e}", a.chip))?;
    let mut sets: Vec<(String, String)> = Vec::new();
    if let Some(bits) = a.weight_bits {
        sets.push(("formats.weight.bits".into(), bits.to_string()));
        if a.weight_frac.is_none() {
            // Keep the integer bits: only the resolution changes.
            let w = base.formats.weight;
            let frac = (bits as i32 - (w.bits as i32 - w.frac as i32)).max(0);
            sets.push(("formats.weight.frac".into(), frac.to_string()));
        }
    }
    if let Some(frac) = a.weight_frac {
        sets.push(("formats.weight.frac".into(), frac.to_string()));
    }
    if let Some(r) = a.rounding {
        let name = match r {
            RoundingArg::NearestEven => "nearest-even",
            RoundingArg::TowardZero => "toward-zero",
            RoundingArg::Floor => "floor",
            RoundingArg::Stochastic => "stochastic",
        };
        sets.push(("formats.weight.rounding".into(), name.into()));
    }
    if let Some(n) = a.lut_entries {
        sets.push(("balance_table.entries".into(), n.to_string()));
    }
    if let Some(bits) = a.lut_bits {
        let l = base.formats.lut;
        let frac = (bits as i32 - (l.bits as i32 - l.frac as i32)).max(0);
        sets.push(("formats.lut.bits".into(), bits.to_string()));
        sets.push(("formats.lut.frac".into(), frac.to_string()));
    }
    sets.extend(parse_sets(&a.set)?);
    crate::chip::open_with(&a.chip, &sets)
        .map_err(|e| anyhow::anyhow!("--chip {} with overrides: {e}", a.chip))
}

/// `--set KEY=VALUE` options as chip-file overrides (keys and values trimmed).
///
/// # Errors
/// An option without `=`.
pub(crate) fn parse_sets(set: &[String]) -> Result<Vec<(String, String)>> {
    set.iter()
        .map(|kv| {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("--set '{kv}': expected KEY=VALUE"))?;
            Ok((k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

/// The emulator configuration the arguments describe.
pub fn emu_config(a: &TrainArgs) -> Result<emulator::EmuConfig> {
    if a.batch != 1 {
        bail!(
            "--batch {} is not supported on a chip yet (plasticity is per sample); use --reference for batches",
            a.batch
        );
    }
    if a.steps.is_some() {
        bail!(
            "--steps is supported by the f64 reference only (the chip always lets credit settle); add --reference"
        );
    }

    Ok(emulator::EmuConfig {
        chip: chip_model(a)?,
        hidden: a.hidden.clone(),
        activation: a.activation.into(),
        loss: a.loss.into(),
        lr: a.lr,
        epochs: a.epochs as usize,
        seed: a.seed,
        mode: match a.mode {
            ModeArg::Graded => emulator::FiringMode::Graded,
            ModeArg::Spiking => emulator::FiringMode::Spiking {
                ticks: a.ticks,
                encoding: match a.encoding {
                    EncodingArg::Regular => emulator::Encoding::Regular,
                    EncodingArg::Poisson => emulator::Encoding::Poisson,
                },
            },
        },
        arith: a.arith.into(),
        threads: a.threads as usize,
        message_threshold: a.message_threshold,
        placement: a.placement.into(),
        duplicate_inputs: !a.no_duplicate_inputs,
        rule: match a.rule {
            RuleArg::Balance => emulator::ChipRule::Balance,
            RuleArg::Backprop => emulator::ChipRule::Backprop,
            RuleArg::FeedbackAlignment => emulator::ChipRule::FeedbackAlignment,
        },
    })
}

/// A progress bar over `epochs × n_train` samples, drawn only on a terminal.
fn progress_bar(epochs: usize, n_train: usize) -> indicatif::ProgressBar {
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new((epochs * n_train) as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} epoch {msg} [{bar:30}] {pos}/{len} samples ({per_sec}, eta {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Set by the first SIGINT (Ctrl-C) while training; the run stops after the current sample.
static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Make SIGINT stop training between samples: the first one asks the run to stop (its report
/// and figures are still written, whole, with status `interrupted`); a second one exits at
/// once (files are written by rename, so none is left half-written).
fn stop_on_interrupt() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let handler = || {
            use std::sync::atomic::Ordering;
            if INTERRUPTED.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
            eprintln!("\ninterrupt: stopping after this sample (Ctrl-C again to quit now)");
        };
        if let Err(e) = ctrlc::set_handler(handler) {
            eprintln!("warning: Ctrl-C will end the run without a report ({e})");
        }
    });
}

/// The per-sample progress callback for `bar`, redrawing every `every` samples; it stops the
/// run once SIGINT has been received.
fn ticker(
    bar: &indicatif::ProgressBar,
    epochs: usize,
    n_train: usize,
    every: usize,
) -> impl FnMut(usize, usize) -> std::ops::ControlFlow<()> + '_ {
    move |k: usize, e: usize| {
        if k.is_multiple_of(every) || k == n_train {
            bar.set_message(format!("{}/{}", e + 1, epochs));
            bar.set_position((e * n_train + k) as u64);
        }
        if INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
            std::ops::ControlFlow::Break(())
        } else {
            std::ops::ControlFlow::Continue(())
        }
    }
}

/// The exit status of a run that ended as `outcome`: 0 completed, 3 diverged, 130
/// interrupted (as a shell reports SIGINT); the reason goes to stderr.
fn exit_for(outcome: &crate::train::RunStatus) -> ExitCode {
    use crate::train::Status;
    match outcome.status {
        Status::Completed => ExitCode::SUCCESS,
        Status::Diverged => {
            eprintln!("error: training {}", outcome.describe());
            ExitCode::from(3)
        }
        Status::Interrupted => {
            eprintln!("training {}", outcome.describe());
            ExitCode::from(130)
        }
    }
}

/// Whether option `id` (its clap id, `message_threshold`) is among `given`, the options on the
/// command line.
pub(crate) fn gave(given: &[String], id: &str) -> bool {
    given.iter().any(|g| g == id)
}

/// Option `id` as typed: `message_threshold` → `--message-threshold`.
pub(crate) fn flag(id: &str) -> String {
    format!("--{}", id.replace('_', "-"))
}

/// Refuse the first option of `only` given on the command line that none of the `chosen` runs
/// reads. `only` lists options with the runs (probes, protocols: a `noun`, named by `name`)
/// that read them.
///
/// # Errors
/// That option, named with the runs that read it.
pub(crate) fn refuse_unread<K: PartialEq>(
    given: &[String],
    only: &[(&str, &[K])],
    chosen: &[K],
    noun: &str,
    name: impl Fn(&K) -> String,
) -> Result<()> {
    let list = |ks: &[K]| {
        let names: Vec<String> = ks.iter().map(&name).collect();
        match names.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
            _ => names.join(""),
        }
    };
    for &(id, readers) in only {
        if gave(given, id) && !chosen.iter().any(|k| readers.contains(k)) {
            bail!(
                "{} applies to {noun} {} only, not to {noun} {}: drop it or choose a {noun} that reads it",
                flag(id),
                list(readers),
                list(chosen)
            );
        }
    }
    Ok(())
}

/// Refuse options the chosen run would ignore (`given`: the options on the command line).
///
/// # Errors
/// The first such option, named with why it does not apply.
pub fn check_applies(a: &TrainArgs, given: &[String]) -> Result<()> {
    let gave = |id: &str| gave(given, id);
    if a.reference {
        const CHIP_ONLY: [&str; 15] = [
            "chip",
            "placement",
            "no_duplicate_inputs",
            "mode",
            "ticks",
            "encoding",
            "arith",
            "threads",
            "message_threshold",
            "weight_bits",
            "weight_frac",
            "rounding",
            "lut_entries",
            "lut_bits",
            "set",
        ];
        if let Some(id) = CHIP_ONLY.iter().find(|id| gave(id)) {
            bail!(
                "{} applies to a chip run, not to --reference (the f64 reference has no chip, number formats or firing mode): drop one of the two",
                flag(id)
            );
        }
        if matches!(a.rule, RuleArg::FeedbackAlignment) {
            bail!("--rule feedback-alignment runs on a chip only (drop --reference)");
        }
    } else {
        if matches!(a.mode, ModeArg::Graded)
            && let Some(id) = ["ticks", "encoding"].iter().find(|id| gave(id))
        {
            bail!(
                "{} applies to --mode spiking only (graded mode sends one event per active neuron and sample)",
                flag(id)
            );
        }
        if matches!(a.arith, ArithArg::Float) {
            const FORMATS: [&str; 5] = [
                "weight_bits",
                "weight_frac",
                "rounding",
                "lut_entries",
                "lut_bits",
            ];
            if let Some(id) = FORMATS.iter().find(|id| gave(id)) {
                bail!(
                    "{} sets a fixed-point format, but --arith float runs the f64 twin without quantisation: drop it or use --arith fixed",
                    flag(id)
                );
            }
            if let Some(kv) = a
                .set
                .iter()
                .find(|kv| kv.trim_start().starts_with("formats."))
            {
                bail!(
                    "--set {kv} sets a fixed-point format, but --arith float runs the f64 twin without quantisation: drop it or use --arith fixed"
                );
            }
            if let Some(kv) = a
                .set
                .iter()
                .find(|kv| kv.trim_start().starts_with("balance_table."))
            {
                bail!(
                    "--set {kv} sets the balance table, but --arith float runs the f64 twin, which computes the balance function exactly: drop it or use --arith fixed"
                );
            }
        }
    }
    if a.epochs == 0 {
        const TRAINING: [&str; 5] = ["lr", "batch", "steps", "message_threshold", "rounding"];
        if let Some(id) = TRAINING.iter().find(|id| gave(id)) {
            bail!(
                "{} applies to training, and --epochs 0 only evaluates the net: drop it or train for an epoch or more",
                flag(id)
            );
        }
    }
    if a.reference && matches!(a.rule, RuleArg::Backprop) && gave("steps") {
        bail!(
            "--steps applies to the balance rule's retrograde relaxation; backprop on the reference takes one backward pass: drop it"
        );
    }
    check_split_seed(&a.data, given)
}

/// The options of the subcommand in `m` that were given on the command line (not defaulted;
/// argument groups, which clap's derive names after their struct, are not options).
fn given_options(m: &clap::ArgMatches) -> Vec<String> {
    let Some((_, sm)) = m.subcommand() else {
        return Vec::new();
    };
    sm.ids()
        .map(clap::Id::as_str)
        .filter(|id| {
            !id.starts_with(|c: char| c.is_ascii_uppercase())
                && sm.value_source(id) == Some(clap::parser::ValueSource::CommandLine)
        })
        .map(str::to_string)
        .collect()
}

/// Parse `accord train ARGS` (a checkpoint's configuration): the arguments, the options it
/// gives, and its memory limit.
pub(crate) fn parse_train(args: &[String]) -> Result<(TrainArgs, Vec<String>, Option<u64>)> {
    use clap::FromArgMatches;
    let argv = ["accord".to_string(), "train".to_string()]
        .into_iter()
        .chain(args.iter().cloned());
    let m = command()
        .try_get_matches_from(argv)
        .map_err(|e| anyhow::anyhow!("the saved configuration does not parse: {e}"))?;
    let cli = Cli::from_arg_matches(&m).map_err(|e| anyhow::anyhow!("{e}"))?;
    let Some(Command::Train(t)) = cli.command else {
        bail!("the saved configuration is not a train command");
    };
    let given = given_options(&m);
    Ok((t, given, cli.max_memory))
}

fn run_train(a: &TrainArgs, given: &[String]) -> Result<ExitCode> {
    stop_on_interrupt();
    if let Some(path) = &a.resume {
        let ck = crate::checkpoint::Checkpoint::load(path).context("--resume")?;
        const NOW: [&str; 8] = [
            "resume",
            "save",
            "threads",
            "json",
            "plot",
            "force",
            "epochs",
            "max_memory",
        ];
        if let Some(id) = given.iter().find(|g| !NOW.contains(&g.as_str())) {
            bail!(
                "{}: a resumed run takes its configuration from --resume {} (only --epochs, --save, --threads, --json, --plot, --force and --max-memory may be given)",
                flag(id),
                path.display()
            );
        }
        if ck.status.status == crate::train::Status::Diverged {
            bail!(
                "--resume {}: the saved run {}; start a new run (e.g. with a lower --lr)",
                path.display(),
                ck.status.describe()
            );
        }
        let (mut b, saved_given, saved_memory) = parse_train(&ck.args)?;
        if let Some(m) = saved_memory.filter(|_| !given.iter().any(|g| g == "max_memory")) {
            crate::limits::set_max_memory(m);
        }
        // Saving goes on into the same file unless told otherwise.
        b.save = a.save.clone().or_else(|| a.resume.clone());
        b.json = a.json;
        b.plot.clone_from(&a.plot);
        b.force = a.force;
        b.resume.clone_from(&a.resume);
        if given.iter().any(|g| g == "threads") {
            if b.reference {
                bail!("--threads applies to a chip run; the resumed run is on the f64 reference");
            }
            b.threads = a.threads;
        }
        // More epochs continue the same run: the order and draws of an epoch depend only on
        // the seed and its number. Fewer than it has run cannot undo them.
        let mut saved_given = saved_given;
        if given.iter().any(|g| g == "epochs") {
            let p = &ck.position;
            if (a.epochs as usize) < p.epoch + usize::from(p.sample > 0) {
                bail!(
                    "--epochs {}: the saved run has trained {} epoch(s){}; resume with at least {} epochs",
                    a.epochs,
                    p.epoch,
                    if p.sample > 0 {
                        format!(" and {} samples of the next", p.sample)
                    } else {
                        String::new()
                    },
                    p.epoch + usize::from(p.sample > 0)
                );
            }
            b.epochs = a.epochs;
            saved_given.push("epochs".into());
        }
        let args = config_args(&b, &saved_given);
        return train_pipeline(&b, &saved_given, Some(&ck), None, args);
    }
    let mut b = a.clone();
    let (start, given) = start_net(&mut b, given)?;
    let args = config_args(&b, &given);
    train_pipeline(&b, &given, None, start.as_ref(), args)
}

/// The net a run starts from, if not a fresh one: a saved net (`--load`, with its model's
/// structure, [`load_structure`]) or a NIR model's (`--model`, [`apply_model`]). Sets the
/// run's widths, activation and loss from it (refusing those options when given); returns it
/// with the options to record as given.
pub(crate) fn start_net(
    a: &mut TrainArgs,
    given: &[String],
) -> Result<(Option<crate::rule::LayeredNet>, Vec<String>)> {
    if let Some(path) = a.load.clone() {
        let ck = crate::checkpoint::Checkpoint::load(&path).context("--load")?;
        if let Some(id) = ["hidden", "activation", "loss"]
            .iter()
            .find(|id| given.iter().any(|g| g == *id))
        {
            bail!(
                "--{id}: the network comes from --load {} (its widths, activation and loss)",
                path.display()
            );
        }
        shape_from(a, &ck.net, &format!("--load {}", path.display()))?;
        let given = load_structure(a, &ck, &path, given)?;
        return Ok((Some(ck.net), given));
    }
    let net = apply_model(a, given)?;
    Ok((net, given.to_vec()))
}

/// A net of `sizes` (`what` names where it came from) takes `--data`'s inputs and gives its
/// classes.
pub(crate) fn fits_data(
    sizes: &[usize],
    what: &str,
    data: &str,
    split: &data::Split,
) -> Result<()> {
    let (dim, classes) = (split.train.dim, split.train.n_classes);
    if sizes.first() != Some(&dim) || sizes.last() != Some(&classes) {
        bail!(
            "{what} takes {} inputs and gives {} outputs; --data {data} has {dim} inputs and \
             {classes} classes",
            sizes.first().copied().unwrap_or(0),
            sizes.last().copied().unwrap_or(0),
        );
    }
    Ok(())
}

/// `--split-seed` is refused for mnist, whose train/test split ships with it.
pub(crate) fn check_split_seed(data: &str, given: &[String]) -> Result<()> {
    if data == "mnist" && given.iter().any(|g| g == "split_seed") {
        bail!("--split-seed does not apply to mnist, which ships with its own train/test split");
    }
    Ok(())
}

/// A net saved by a run of `--model FILE.nir` keeps that file's structure when it is loaded:
/// its sparse layers (expanded convolutions, pools), shared kernels and neuron programs are
/// read from the file again (at the saved run's `--dt` and `--placement` unless given here),
/// as `--resume` does, and the saved weights are run on them. Without the file the weights
/// would run as dense layers, every absent synapse stored and counted as a zero weight, so a
/// file that is no longer found is an error. Returns the options to record as given.
fn load_structure(
    b: &mut TrainArgs,
    ck: &crate::checkpoint::Checkpoint,
    path: &std::path::Path,
    given: &[String],
) -> Result<Vec<String>> {
    let mut given = given.to_vec();
    let (saved, saved_given, _) = parse_train(&ck.args)
        .with_context(|| format!("--load {}: the saved run's options", path.display()))?;
    let Some(model) = saved.model else {
        return Ok(given);
    };
    if !model.exists() {
        bail!(
            "--load {}: the net was trained from --model {}, which is not found from here; its \
             structure (sparse layers, shared kernels, neuron programs) comes from that file: \
             run where it is found, or write the net as a NIR graph with `accord export` where \
             it is and use that with --model",
            path.display(),
            model.display()
        );
    }
    b.model = Some(model);
    // The saved run's --dt and --placement, where it gave them and this one does not.
    let take = |id: &str, given: &[String]| {
        saved_given.iter().any(|g| g == id) && !given.iter().any(|g| g == id)
    };
    if take("dt", &given) {
        b.dt = saved.dt;
        given.push("dt".into());
    }
    if take("placement", &given) {
        b.placement = saved.placement;
        given.push("placement".into());
    }
    Ok(given)
}

/// The configuration a checkpoint records: the options that were given, with the network's
/// widths, activation and loss as resolved (from `--load` or `--model` too), paths made
/// absolute, and nothing that only concerns this invocation (outputs, threads, resume).
fn config_args(a: &TrainArgs, given: &[String]) -> Vec<String> {
    fn name<T: ValueEnum>(v: &T) -> String {
        v.to_possible_value()
            .map_or_else(String::new, |p| p.get_name().to_string())
    }
    fn path(p: &str) -> String {
        let q = std::path::Path::new(p);
        if q.exists() {
            std::fs::canonicalize(q).map_or_else(|_| p.to_string(), |c| c.display().to_string())
        } else {
            p.to_string()
        }
    }
    let gave = |id: &str| gave(given, id);
    let mut out: Vec<String> = Vec::new();
    let mut put = |flag: &str, v: String| {
        out.push(format!("--{flag}"));
        out.push(v);
    };
    let widths = a.hidden.iter().map(usize::to_string).collect::<Vec<_>>();
    put("data", path(&a.data));
    put("hidden", widths.join(","));
    put("activation", name(&a.activation));
    put("loss", name(&a.loss));
    put("lr", format!("{:?}", a.lr));
    put("epochs", a.epochs.to_string());
    put("seed", a.seed.to_string());
    put("rule", name(&a.rule));
    if gave("split_seed") {
        put("split-seed", a.split_seed.to_string());
    }
    if gave("batch") {
        put("batch", a.batch.to_string());
    }
    if let Some(k) = a.steps {
        put("steps", k.to_string());
    }
    if gave("chip") {
        put("chip", path(&a.chip));
    }
    if gave("mode") {
        put("mode", name(&a.mode));
    }
    if gave("ticks") {
        put("ticks", a.ticks.to_string());
    }
    if gave("encoding") {
        put("encoding", name(&a.encoding));
    }
    if gave("arith") {
        put("arith", name(&a.arith));
    }
    if gave("message_threshold") {
        put("message-threshold", format!("{:?}", a.message_threshold));
    }
    if let Some(b) = a.weight_bits {
        put("weight-bits", b.to_string());
    }
    if let Some(f) = a.weight_frac {
        put("weight-frac", f.to_string());
    }
    if let Some(r) = &a.rounding {
        put("rounding", name(r));
    }
    if let Some(n) = a.lut_entries {
        put("lut-entries", n.to_string());
    }
    if let Some(b) = a.lut_bits {
        put("lut-bits", b.to_string());
    }
    for kv in &a.set {
        put("set", kv.clone());
    }
    // A NIR model's masks, neuron programs, loops and placement are read from it again when
    // the run is resumed.
    if let Some(m) = &a.model {
        put("model", path(&m.display().to_string()));
        if gave("dt") {
            put("dt", format!("{:?}", a.dt));
        }
        if gave("placement") {
            put("placement", name(&a.placement));
        }
    }
    if gave("max_memory") {
        put("max-memory", crate::limits::max_memory().to_string());
    }
    if a.no_duplicate_inputs {
        out.push("--no-duplicate-inputs".into());
    }
    if a.reference {
        out.push("--reference".into());
    }
    out
}

/// Take the widths, activation and loss of a saved net (`what` names where it came from).
fn shape_from(a: &mut TrainArgs, net: &crate::rule::LayeredNet, what: &str) -> Result<()> {
    let sizes = net.sizes();
    if sizes.len() < 3 {
        bail!("{what}: the net has no hidden layer");
    }
    a.hidden = sizes[1..sizes.len() - 1].to_vec();
    let hidden = net.layers[0].act;
    a.activation = match hidden {
        Activation::Sigmoid => ActArg::Sigmoid,
        Activation::Tanh => ActArg::Tanh,
        Activation::Relu => ActArg::Relu,
        Activation::HardSigmoid => ActArg::HardSigmoid,
        Activation::Identity => ActArg::Identity,
    };
    // Linear outputs go with cross-entropy (an identity-hidden MSE net reads back as CE).
    let out = net.layers[net.layers.len() - 1].act;
    a.loss = if out == Activation::Identity {
        LossArg::Ce
    } else {
        LossArg::Mse
    };
    Ok(())
}

/// Take widths, activation and loss from `--model FILE.nir` (refusing the options it
/// replaces); returns the net to start from.
fn apply_model(a: &mut TrainArgs, given: &[String]) -> Result<Option<crate::rule::LayeredNet>> {
    let Some(path) = a.model.clone() else {
        return Ok(None);
    };
    if let Some(id) = ["hidden", "activation", "loss"]
        .iter()
        .find(|id| given.iter().any(|g| g == *id))
    {
        bail!(
            "--{id}: the network comes from --model {} (its widths and neurons)",
            path.display()
        );
    }
    let chip = if a.reference {
        None
    } else {
        Some(chip_model(a)?.soma)
    };
    let chain = nir::load_model(&path, a.dt, chip)?.chain;
    if a.reference
        && let Some(r) = chain.recurrent.iter().flatten().next()
    {
        bail!(
            "--reference: --model {} has a recurrent projection (node '{}'); the f64 reference \
             runs feed-forward nets only: run it on a chip (spiking mode, --epochs 0)",
            path.display(),
            r.node
        );
    }
    let sizes = chain.net.sizes();
    a.hidden = sizes[1..sizes.len() - 1].to_vec();
    if a.hidden.is_empty() {
        bail!(
            "--model {}: a single synaptic layer has no hidden neurons; accord's layered nets need one",
            path.display()
        );
    }
    a.activation = ActArg::HardSigmoid;
    // A linear read-out: no neuron node after the last layer, or an `LI` node (its steady
    // state is linear).
    let linear_out = chain
        .net
        .layers
        .last()
        .is_some_and(|l| l.act == crate::rule::Activation::Identity);
    a.loss = if linear_out {
        LossArg::Ce
    } else {
        LossArg::Mse
    };
    Ok(Some(chain.net))
}

/// The run's outputs checked before any work: the `--plot` folder (prepared) and the `--save`
/// file (writable, replaced only with `--force` or when it is the run being resumed).
fn check_outputs(a: &TrainArgs) -> Result<Option<out_dir::OutDir>> {
    let plot_dir = match &a.plot {
        Some(dir) => Some(out_dir::OutDir::prepare(dir, a.force, "--plot")?),
        None => {
            if a.force && a.save.is_none() {
                bail!("--force applies to --plot and --save, and neither was given");
            }
            None
        }
    };
    if let Some(path) = &a.save {
        let replaces_resume = a.resume.as_deref() == Some(path.as_path());
        if path.exists() && !a.force && !replaces_resume {
            bail!(
                "--save {}: the file exists; pass --force to replace it, or choose another name",
                path.display()
            );
        }
        crate::output::check_writable(path).map_err(|e| anyhow::anyhow!("--save: {e}"))?;
    }
    Ok(plot_dir)
}

/// `accord train` once the configuration is settled: `resume` continues a checkpoint, `start`
/// replaces the initial weights, `args` is the configuration a checkpoint of this run records.
fn train_pipeline(
    a: &TrainArgs,
    given: &[String],
    resume: Option<&crate::checkpoint::Checkpoint>,
    start: Option<&crate::rule::LayeredNet>,
    args: Vec<String>,
) -> Result<ExitCode> {
    if a.hidden.is_empty() {
        bail!("--hidden needs at least one width");
    }
    check_applies(a, given)?;
    let plot_dir = check_outputs(a)?;
    let split = data::load(&a.data, &data::default_data_dir(), a.split_seed)
        .with_context(|| format!("loading --data {}", a.data))?;
    let sizes = train_config(a).sizes(split.train.dim, split.train.n_classes);
    let widths = a.hidden.iter().map(usize::to_string).collect::<Vec<_>>();
    // The reference is checked here; a chip run is checked by `emulator::place`, with the
    // mapping, below (its error names the options too).
    if a.reference {
        crate::limits::check_field(
            "hidden",
            format!(
                "{} (a {} net, f64 reference)",
                widths.join(","),
                sizes
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join("-")
            ),
            crate::limits::reference_bytes(&sizes),
        )?;
    }
    if let Some(d) = &plot_dir {
        let chip_path = std::path::Path::new(&a.chip);
        let data_path = std::path::Path::new(&a.data);
        let mut inputs: Vec<(&str, &std::path::Path)> =
            vec![("--data", data_path), ("--chip", chip_path)];
        for (opt, p) in [
            ("--model", &a.model),
            ("--load", &a.load),
            ("--resume", &a.resume),
            ("--save", &a.save),
        ] {
            if let Some(p) = p {
                inputs.push((opt, p.as_path()));
            }
        }
        d.keep_inputs(&inputs)?;
    }
    if !a.reference {
        if a.weight_bits.is_some() && a.weight_frac.is_none() && resume.is_none() {
            let (b, mut args) = (choose_weight_split(a, &split, start)?, args);
            if let Some(f) = b.weight_frac {
                args.extend(["--weight-frac".to_string(), f.to_string()]);
            }
            return run_train_chip(&b, &split, plot_dir.as_ref(), (resume, start, args));
        }
        return run_train_chip(a, &split, plot_dir.as_ref(), (resume, start, args));
    }
    let cfg = train_config(a);
    let bar = progress_bar(cfg.epochs, split.train.len());
    let mut tick = ticker(&bar, cfg.epochs, split.train.len(), 256);
    if let Some(d) = &plot_dir {
        d.clear()?;
    }
    let mut save = saver(a, args);
    // A NIR model's sparse layers: the reference trains only their synapses, as a chip does.
    let masks = match &a.model {
        Some(p) => nir::load_model(p, a.dt, None)?.chain.masks,
        None => Vec::new(),
    };
    let hooks = crate::train::TrainHooks {
        progress: Some(&mut tick),
        start,
        resume,
        checkpoint: save.as_mut().map(|f| f as _),
        masks: &masks,
    };
    let (report, _) = crate::train::train_hooked(&cfg, &split, hooks)?;
    bar.finish_and_clear();
    if let Some(dir) = plot_dir {
        let dir = &dir.dir;
        let rows: Vec<(usize, f64, f64)> = report
            .epochs
            .iter()
            .map(|e| (e.epoch, e.train_accuracy, e.test_accuracy))
            .collect();
        let title = format!("{} on the f64 reference ({:?} rule)", a.data, cfg.rule);
        plot_accuracy(dir, &title, &rows)?;
        eprintln!("figures written to {}", dir.display());
    }
    if a.json {
        emit(&format!("{}\n", serde_json::to_string_pretty(&report)?))?;
    } else {
        emit(&report.to_string())?;
    }
    Ok(exit_for(&report.outcome))
}

/// `--weight-bits B` without `--weight-frac`: the integer/fraction split the weights need.
/// Their range comes from the net the run starts from (`--load`, `--model`) or, for a fresh
/// net, from the `f64` reference trained with the same configuration (a calibration pass, the
/// run's own epochs); the integer bits hold its largest weight or bias with a 25 % margin and
/// the rest are fraction. Says which split it chose and why.
fn choose_weight_split(
    a: &TrainArgs,
    split: &data::Split,
    start: Option<&crate::rule::LayeredNet>,
) -> Result<TrainArgs> {
    let Some(bits) = a.weight_bits else {
        return Ok(a.clone());
    };
    let max_abs = |net: &crate::rule::LayeredNet| {
        net.layers
            .iter()
            .flat_map(|l| l.w.iter().chain(&l.b))
            .fold(0.0f64, |m, w| m.max(w.abs()))
    };
    let (largest, source) = match start {
        Some(net) => {
            // A NIR model's recurrent projections are weights of the run too.
            let looped = match &a.model {
                Some(p) if !a.reference => nir::load_model(p, a.dt, Some(chip_model(a)?.soma))?
                    .chain
                    .recurrent
                    .iter()
                    .flatten()
                    .flat_map(|r| r.w.iter())
                    .fold(0.0f64, |m, w| m.max(w.abs())),
                _ => 0.0,
            };
            (
                max_abs(net).max(looped),
                "the network the run starts from".to_string(),
            )
        }
        None => {
            let cfg = train_config(a);
            let (report, net) = crate::train::train(&cfg, split, None);
            if report.outcome.status != crate::train::Status::Completed {
                bail!(
                    "--weight-bits {bits}: the f64 reference run that calibrates the split {}; give --weight-frac, or a configuration that trains",
                    report.outcome.describe()
                );
            }
            (
                max_abs(&net),
                format!(
                    "the f64 reference trained with this configuration ({} epochs, {:.2} % test accuracy)",
                    cfg.epochs,
                    100.0 * report.test_accuracy
                ),
            )
        }
    };
    let signed = chip_model(&TrainArgs {
        weight_bits: None,
        ..a.clone()
    })?
    .formats
    .weight
    .signed;
    if !largest.is_finite() {
        bail!("--weight-bits {bits}: the weights of {source} are not finite; give --weight-frac");
    }
    let int = crate::experiments::formats::integer_bits(largest * 1.25).max(0);
    let frac = bits as i32 - i32::from(signed) - int;
    if frac < 0 {
        bail!(
            "--weight-bits {bits}: the weights reach {largest:.4} ({source}), which needs {int} integer bits{}; give more bits or --weight-frac",
            if signed { " and a sign" } else { "" }
        );
    }
    eprintln!(
        "note: --weight-bits {bits}: {int} integer and {frac} fractional bits (range ±{}, step 2^-{frac}), chosen because the largest weight or bias of {source} is {largest:.4} (held with a 25 % margin); pass --weight-frac to choose yourself",
        crate::output::format_value(2f64.powi(int))
    );
    Ok(TrainArgs {
        weight_frac: Some(frac as u8),
        ..a.clone()
    })
}

/// The checkpoint writer of `--save` (the run's configuration filled in), if asked for.
fn saver(
    a: &TrainArgs,
    args: Vec<String>,
) -> Option<
    impl FnMut(&crate::checkpoint::Checkpoint) -> Result<(), crate::checkpoint::CheckpointError>,
> {
    let path = a.save.clone()?;
    Some(move |c: &crate::checkpoint::Checkpoint| {
        let mut c = c.clone();
        c.args.clone_from(&args);
        c.save(&path)
    })
}

type Start<'a> = (
    Option<&'a crate::checkpoint::Checkpoint>,
    Option<&'a crate::rule::LayeredNet>,
    Vec<String>,
);

fn run_train_chip(
    a: &TrainArgs,
    split: &data::Split,
    plot_dir: Option<&out_dir::OutDir>,
    (resume, start, args): Start<'_>,
) -> Result<ExitCode> {
    let cfg = emu_config(a)?;
    check_duplication(a.no_duplicate_inputs, &cfg.chip, &a.chip)?;
    // A NIR model's sparse layers (expanded convolutions, pooling), neuron programs and
    // recurrent projections: read again here so that a resumed run keeps them too.
    let (masks, somas, recurrent, rec_layers, kernels) = match &a.model {
        Some(p) => {
            let m = nir::load_model(p, a.dt, Some(cfg.chip.soma))?;
            check_placement(a.placement, p, m.chain.masks.iter().any(Option::is_some))?;
            fits_data(
                &m.chain.net.sizes(),
                &format!("--model {}", p.display()),
                &a.data,
                split,
            )?;
            for note in m.programs.iter().flatten().flat_map(|p| &p.notes) {
                eprintln!("note: --model: {note}");
            }
            // The file's weights as the chip stores them (a resumed or loaded run holds its own).
            if resume.is_none() && a.load.is_none() && cfg.arith == emulator::Arith::Fixed {
                nir::report_conversion(p, &m.chain, &cfg.chip.formats.weight, cfg.epochs)?;
            }
            let somas = m
                .programs
                .iter()
                .map(|p| p.as_ref().map(|p| p.soma))
                .collect();
            let (recurrent, rec_layers) = (m.chain.recurrent_weights(), m.chain.recurrent_layers());
            if let Some(r) = m.chain.recurrent.iter().flatten().next() {
                if cfg.epochs > 0 {
                    bail!(
                        "--epochs {}: --model {} has a recurrent projection (node '{}'), and the \
                         balance rule on a chip trains feed-forward projections only; run it \
                         with --epochs 0 (inference)",
                        cfg.epochs,
                        p.display(),
                        r.node
                    );
                }
                if a.save.is_some() {
                    bail!(
                        "--save: --model {} is recurrent (node '{}') and runs inference only; \
                         there is no trained net to save",
                        p.display(),
                        r.node
                    );
                }
                if cfg.mode == emulator::FiringMode::Graded {
                    bail!(
                        "--mode graded: --model {} has a recurrent projection (node '{}'), and a \
                         graded sample fires each layer once; run it with --mode spiking (its \
                         spikes of one tick reach the layer in the next)",
                        p.display(),
                        r.node
                    );
                }
            }
            (m.chain.masks, somas, recurrent, rec_layers, m.chain.kernels)
        }
        None => (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new()),
    };
    let looped = rec_layers.iter().any(|&r| r);
    // The options' own checks first, so that their errors name them.
    let (dim, classes) = (split.train.dim, split.train.n_classes);
    let shared = emulator::shared_kernels(&kernels, &masks, resume.map(|c| &c.net).or(start));
    emulator::place_net(
        &cfg,
        dim,
        classes,
        cfg.epochs > 0,
        &rec_layers,
        &masks,
        &shared,
    )
    .map_err(|e| {
        use crate::error::Setting;
        // A refused setting is shown under its option (`render_error`); a net that does not
        // fit names the options that made it.
        if let (Some(p), Some(l)) = (&a.model, e.limit()) {
            // The estimate is the model's, not --hidden's.
            return anyhow::Error::new(crate::limits::LimitError {
                field: None,
                what: format!(
                    "--model {} (a {:?} net on --chip {})",
                    p.display(),
                    cfg.sizes(dim, classes),
                    a.chip
                ),
                ..l.clone()
            });
        }
        if e.invalid().is_some() || e.limit().is_some() {
            return anyhow::Error::new(e);
        }
        let widths: Vec<String> = a.hidden.iter().map(usize::to_string).collect();
        let net = match &a.model {
            Some(p) if a.placement != PlacementArg::FewestCores => format!(
                "--model {} with --placement {}",
                p.display(),
                crate::mapping::Placement::from(a.placement).name()
            ),
            Some(p) => format!("--model {}", p.display()),
            None => format!("--hidden {}", widths.join(",")),
        };
        anyhow::Error::new(e).context(format!(
            "--data {} ({dim} inputs, {classes} classes) and {net} on --chip {}",
            a.data, a.chip
        ))
    })?;
    if cfg.epochs > 0 && cfg.arith == emulator::Arith::Fixed {
        emulator::lr_raw(&cfg.chip, cfg.lr)?;
    }
    emulator::message_thresholds(&cfg.chip, cfg.message_threshold, cfg.rule)?;
    let bar = progress_bar(cfg.epochs, split.train.len());
    let mut tick = ticker(&bar, cfg.epochs, split.train.len(), 64);
    if let Some(d) = plot_dir {
        d.clear()?;
    }
    let mut save = saver(a, args);
    let hooks = emulator::Hooks {
        progress: Some(&mut tick),
        start,
        resume,
        checkpoint: save.as_mut().map(|f| f as _),
        masks: &masks,
        somas: &somas,
        recurrent: &recurrent,
        kernels: &kernels,
    };
    let report = emulator::run_hooked(&cfg, split, hooks, emulator::DEFAULT_PAR_THRESHOLD)?;
    bar.finish_and_clear();
    if let Some(dir) = plot_dir {
        let dir = &dir.dir;
        let rows: Vec<(usize, f64, f64)> = report
            .epochs
            .iter()
            .map(|e| (e.epoch, e.train_accuracy_online, e.test_accuracy))
            .collect();
        let title = format!("{} on {} ({:?} rule)", a.data, report.chip.name, cfg.rule);
        plot_accuracy(dir, &title, &rows)?;
        let n = report.energy.training.samples.max(1) as f64;
        let bars: Vec<(String, f64)> = report
            .energy
            .training
            .breakdown
            .actions
            .iter()
            .filter(|r| r.pj_total > 0.0)
            .map(|r| (r.action.to_string(), r.pj_total / n))
            .collect();
        let path = dir.join("energy.png");
        crate::plot::bar_chart(
            &path,
            &format!("energy per training sample on {} (pJ)", report.chip.name),
            "pJ per sample",
            &bars,
        )?;
        eprintln!("figures written to {}", dir.display());
    }
    // An inference run of given weights (--load, --model): the same weights in the f64
    // reference beside the chip's accuracy (not for a recurrent model: the reference runs
    // feed-forward nets only).
    let reference = match (cfg.epochs, resume, start) {
        (0, None, Some(net)) if !looped => {
            Some(crate::train::evaluate(net, &split.test, cfg.loss).1)
        }
        _ => None,
    };
    if a.json {
        let mut v = serde_json::to_value(&report)?;
        if let (Some(r), Some(o)) = (reference, v.as_object_mut()) {
            o.insert("reference_test_accuracy".into(), r.into());
        }
        emit(&format!("{}\n", serde_json::to_string_pretty(&v)?))?;
    } else {
        let mut text = report.render();
        if let Some(r) = reference {
            let _ = writeln!(
                text,
                "the same weights in the f64 reference (rate model): test accuracy {:.2}% (on the chip: {:.2}%)",
                100.0 * r,
                100.0 * report.test_accuracy
            );
        }
        emit(&text)?;
    }
    Ok(exit_for(&report.outcome))
}

/// `accuracy.png` in `dir` from `(epoch, train accuracy, test accuracy)` rows.
fn plot_accuracy(dir: &std::path::Path, title: &str, rows: &[(usize, f64, f64)]) -> Result<()> {
    if rows.is_empty() {
        eprintln!("no epoch completed: accuracy.png is not drawn");
        return Ok(());
    }
    let pct = |f: fn(&(usize, f64, f64)) -> f64| -> Vec<(f64, f64)> {
        rows.iter().map(|r| (r.0 as f64, 100.0 * f(r))).collect()
    };
    let series = [
        crate::plot::Series::new("train (online on chips)", pct(|r| r.1)).dashed(),
        crate::plot::Series::new("test", pct(|r| r.2)),
    ];
    crate::plot::line_chart(
        &dir.join("accuracy.png"),
        title,
        "epoch",
        "accuracy (%)",
        &series,
        false,
    )
}

fn run_chip(c: &ChipCommand) -> Result<ExitCode> {
    match c {
        ChipCommand::Check { file } => {
            let chip = crate::chip::open(file).map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut o = String::new();
            let _ = writeln!(
                o,
                "{}: chip '{}' passes the design-rule check ({} cores, {} priced actions, {} unpriced, {} missing, {} emulated)",
                chip.origin,
                chip.name,
                chip.mesh.cores(),
                chip.prices
                    .values()
                    .filter(|p| p.energy_pj.is_some())
                    .count(),
                chip.unpriced().len(),
                chip.missing.len(),
                chip.emulations.len()
            );
            let _ = match chip.require(&chip.required_actions(true)) {
                Ok(()) => writeln!(o, "training: supported"),
                Err(e) => writeln!(o, "training: NOT supported: {e}"),
            };
            emit(&o)?;
        }
        ChipCommand::Show { file, json } => {
            let chip = crate::chip::open(file).map_err(|e| anyhow::anyhow!("{e}"))?;
            if *json {
                emit(&format!("{}\n", serde_json::to_string_pretty(&chip)?))?;
            } else {
                emit(&format!(
                    "{}{}",
                    chip.describe(),
                    calibration_text(file, &chip)
                ))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What the recorded calibration says of each price set of `chip` (opened from `file`).
fn calibration_text(file: &str, chip: &crate::chip::ChipModel) -> String {
    use crate::chip::calibration::{Coverage, coverage};
    let mut o = String::from(
        "calibration against measured silicon (hw_models/calibration/recorded.json, accord calibrate --record):\n",
    );
    for (set, _) in &chip.price_sets {
        let model = crate::chip::open_with(file, &[("price_set".into(), set.clone())]);
        let line = match model.as_ref().map(coverage) {
            Ok(Coverage::Covered { rows }) => rows
                .iter()
                .map(|r| match (&r.energy_figure, r.energy_error) {
                    (Some(fig), Some(e)) => {
                        format!("{} {fig} energy {:+.0} %", r.workload, 100.0 * e)
                    }
                    _ => format!("{} no comparable energy", r.workload),
                })
                .collect::<Vec<_>>()
                .join("; "),
            Ok(Coverage::Other { .. }) => {
                "recorded for the shipped file, not this one: its errors do not apply".into()
            }
            Ok(Coverage::NoWorkload) => "no measured workload runs on this chip".into(),
            Ok(Coverage::Unreadable { reason }) => format!("not read ({reason})"),
            Err(e) => format!("cannot open this set: {e}"),
        };
        let _ = writeln!(o, "  {set}: {line}");
    }
    o
}

fn run_verify(a: &VerifyArgs) -> Result<ExitCode> {
    let report = verify::verify(a.nets as usize, a.seed);
    if a.json {
        emit(&format!("{}\n", serde_json::to_string_pretty(&report)?))?;
    } else {
        emit(&report.to_string())?;
    }
    if !report.pass {
        eprintln!(
            "verify: FAIL: the rule and backprop differ by {:.3e} relative, over the tolerance {:.0e}",
            report.max_rel_dev,
            verify::TOLERANCE
        );
    }
    Ok(if report.pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Invalid;

    #[test]
    fn library_errors_show_their_fields_as_options() {
        // A field named as its option, also inside another error and under a context.
        let e = anyhow::Error::new(crate::experiments::probe::ProbeError::Invalid(
            Invalid::new("layered_lr", " 0 is not allowed (must be in (0, 1e6])"),
        ));
        assert_eq!(
            render_error(&e, PROBE_OPTIONS),
            "--lr 0 is not allowed (must be in (0, 1e6])"
        );
        let e = anyhow::Error::new(crate::emulator::EmuError::Invalid(Invalid::new(
            "message_threshold",
            " 1e-9 is below one LSB",
        )))
        .context("training");
        assert_eq!(
            render_error(&e, &[]),
            "training: --message-threshold 1e-9 is below one LSB"
        );
        // The memory limit under --max-memory, the field's value under its option.
        let limit = crate::limits::LimitError {
            field: Some("n"),
            what: "20000 (an all-to-all net)".into(),
            estimate: 3 << 30,
            limit: 2 << 30,
        };
        let e = anyhow::Error::new(crate::experiments::modularity::ModularityError::Limit(
            limit,
        ));
        let s = render_error(&e, &[]);
        assert!(
            s.starts_with("--n 20000 (an all-to-all net) needs an estimated 3.0 GiB")
                && s.ends_with("(raise it with --max-memory, e.g. --max-memory 3G)"),
            "{s}"
        );
        // A read budget embedded in a file's error names the option after the limit.
        let e = anyhow::anyhow!(
            "x.csv: holds more than 1 B ({})",
            crate::limits::READ_BUDGETS
        );
        assert!(
            render_error(&e, &[]).contains("scale with the memory limit (--max-memory)"),
            "{}",
            render_error(&e, &[])
        );
        // The drivers' errors that name a field inside their message, as before the move.
        let e = anyhow::Error::new(crate::experiments::sweep::SweepError::NoAxis);
        assert_eq!(
            render_error(&e, &[]),
            "a sweep needs at least one axis (--grid KEY=V1,V2 or a [grid] table in --spec)"
        );
        let e = anyhow::Error::new(crate::experiments::calibrate::CalibrateError::Dir {
            dir: "/no".into(),
            error: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
        assert_eq!(
            render_error(&e, &[]),
            format!(
                "reading --dir /no: {}",
                std::io::Error::from(std::io::ErrorKind::NotFound)
            )
        );
        // Anything else as it displays, causes joined as anyhow's `{:#}` joins them.
        let e = anyhow::anyhow!("inner").context("outer");
        assert_eq!(render_error(&e, &[]), format!("{e:#}"));
    }
}
