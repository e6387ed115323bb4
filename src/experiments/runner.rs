//! How the drivers ([`sweep`](super::sweep), [`calibrate`](super::calibrate)) run one
//! `accord train … --json`: through a [`Runner`] their caller gives them.
//!
//! The command line's runner starts a child process of its own binary, so that a run that
//! fails — a format that does not fit, a chip that cannot train, even a crash — is recorded
//! with its error and the driver goes on. A runner may be any function of the arguments:
//!
//! ```
//! use accord::experiments::runner::{Runner, TrainRun};
//!
//! use std::ffi::OsString;
//!
//! let refuse = |args: &[OsString]| -> Result<TrainRun, String> {
//!     let args: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
//!     Ok(TrainRun::failed(format!("not run: {}", args.join(" ")), "exit status: 2"))
//! };
//! let run = refuse.train(&["--data".into(), "iris".into()]).unwrap();
//! assert!(run.report.is_none() && !run.success);
//! assert_eq!(run.error, "not run: --data iris");
//! ```

use std::ffi::OsString;

use serde_json::Value;

/// How one run of `accord train … --json` ended.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainRun {
    /// The JSON report it printed, if it printed one (a run that diverged prints one too).
    pub report: Option<Value>,
    /// Whether it ended successfully (it completed: exit status 0).
    pub success: bool,
    /// What it said went wrong: its first `error:` line without the prefix, else its last
    /// non-empty line of standard error (what the drivers record when it printed no report
    /// or failed).
    pub error: String,
    /// How it ended, as [`std::process::ExitStatus`] shows it (`exit status: 2`).
    pub status: String,
}

impl TrainRun {
    /// A run that completed and printed `report`.
    pub fn completed(report: Value) -> TrainRun {
        TrainRun {
            report: Some(report),
            success: true,
            error: String::new(),
            status: "exit status: 0".into(),
        }
    }

    /// A run that printed no report: it said `error` and ended with `status`.
    pub fn failed(error: impl Into<String>, status: impl Into<String>) -> TrainRun {
        TrainRun {
            report: None,
            success: false,
            error: error.into(),
            status: status.into(),
        }
    }
}

/// Runs `accord train` with the arguments given (the options after `train`, ending in
/// `--json`; paths among them as the operating system spells them, not necessarily UTF-8).
pub trait Runner {
    /// Run `accord train args…`.
    ///
    /// # Errors
    /// The run could not be started at all (`cannot start …`): the message is recorded as the
    /// run's error.
    fn train(&self, args: &[OsString]) -> Result<TrainRun, String>;
}

impl<F> Runner for F
where
    F: Fn(&[OsString]) -> Result<TrainRun, String>,
{
    fn train(&self, args: &[OsString]) -> Result<TrainRun, String> {
        self(args)
    }
}
