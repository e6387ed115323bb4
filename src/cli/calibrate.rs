//! `accord calibrate`: published measurements on silicon beside what accord's chip models
//! predict for the same workload (ARCHITECTURE.md §9); the workloads, the runs and the table
//! are [`crate::experiments::calibrate`]'s. Each run is a child `accord train --json` of this
//! binary.

use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

use super::{ChildTrain, emit};
use crate::experiments::calibrate;

/// `accord calibrate` options.
#[derive(Args, Debug, Clone)]
pub struct CalibrateArgs {
    /// Folder of workload files (*.toml).
    #[arg(long, default_value_os_t = calibrate::default_dir())]
    pub dir: PathBuf,
    /// Run only these workloads (names, comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Folder for calibration.{txt,csv,json}, the synthetic data and pretrained networks.
    #[arg(long, default_value = "out/calibrate")]
    pub out: PathBuf,
    /// Let --out replace an earlier run's files.
    #[arg(long)]
    pub force: bool,
    /// Seeds per workload and price set (1..=N): the mean is compared with the measurement,
    /// the spread is the system-track block's.
    #[arg(long, default_value_t = 5)]
    pub seeds: u64,
    /// Write the errors, with the fingerprints of the chip models and workload files they hold
    /// for, to `recorded.json` in --dir (read by every `accord train` report on those chips).
    #[arg(long)]
    pub record: bool,
    /// Print the result as one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// Run `accord calibrate`: exit status 1 if a run failed.
///
/// # Errors
/// A bad workload folder or file, an `--out` that holds other results, a chip model that
/// cannot be opened, files that cannot be written.
pub fn run(a: &CalibrateArgs, max_memory: Option<u64>) -> Result<ExitCode> {
    if a.record && !a.only.is_empty() {
        anyhow::bail!("--record records the whole suite: drop --only");
    }
    let list = calibrate::workloads(&a.dir, &a.only)?;
    let out = super::out_dir::OutDir::prepare(&a.out, a.force, "--out")?;
    out.clear()?;
    // The memory limit reaches every workload's run, as it does a sweep's points.
    let extra = max_memory.map_or_else(Vec::new, |m| vec!["--max-memory".into(), m.to_string()]);
    let runner = ChildTrain::new(extra)?;
    let cal = calibrate::run(list, &a.out, &runner, a.seeds, |p| {
        eprintln!("accord calibrate: {p}");
    })?;
    for (name, text) in [
        ("calibration.txt", cal.to_string()),
        ("calibration.csv", cal.csv()?),
        ("calibration.json", serde_json::to_string_pretty(&cal)?),
    ] {
        crate::output::write_atomic(&a.out.join(name), text.as_bytes())?;
    }
    if a.json {
        emit(&format!("{}\n", serde_json::to_string_pretty(&cal)?))?;
    } else {
        emit(&format!(
            "{cal}\nfiles: {}/calibration.{{txt,csv,json}}\n",
            a.out.display()
        ))?;
    }
    if a.record {
        if cal.rows.iter().any(|r| r.chip_fingerprint.is_none()) {
            anyhow::bail!("--record: a chip model could not be fingerprinted; nothing recorded");
        }
        if cal.failures() > 0 {
            anyhow::bail!(
                "--record: {} run(s) failed; nothing recorded (see the table above)",
                cal.failures()
            );
        }
        let path = a.dir.join(crate::chip::calibration::RECORDED_FILE);
        let text = format!("{}\n", serde_json::to_string_pretty(&cal.recorded())?);
        crate::output::write_atomic(&path, text.as_bytes())?;
        eprintln!("accord calibrate: recorded {}", path.display());
    }
    Ok(if cal.failures() > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
