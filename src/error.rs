//! What the library's errors share: a setting it refuses names the configuration **field**, not
//! a command-line option.
//!
//! Every module has its own error type naming what went wrong and where (tetanes' habit:
//! [`crate::chip::ChipError`], [`crate::mapping::MapError`], [`crate::emulator::EmuError`],
//! [`crate::experiments::probe::ProbeError`], …). A value outside what a configuration accepts
//! is an [`Invalid`] inside them: its `field` is the name of the field of the configuration
//! struct (`epochs`, `probe_samples`, `message_threshold`), so the library reads the same to
//! any front end. The `accord` command line maps fields to its own options when it prints an
//! error (`probe_samples` → `--probe-samples`).

use crate::limits::LimitError;

/// A configuration value the library refuses: `"{field} {reason}"`, e.g. `epochs must be at
/// least 1` or `gains: 0 is not allowed (every gain must be finite and > 0)`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}{reason}")]
pub struct Invalid {
    /// The configuration field (`snake_case`, as in the struct).
    pub field: &'static str,
    /// What is wrong with it, starting with the separator that follows the field (`" must be
    /// at least 1"`, `": 0 is not allowed (…)"`).
    pub reason: String,
}

impl Invalid {
    /// `field` refused for `reason` (which starts with its separator: `" must …"`, `": …"`).
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Invalid {
            field,
            reason: reason.into(),
        }
    }

    /// The same message with the field shown as `name` (a front end's option for it).
    pub fn named(&self, name: &str) -> String {
        format!("{name}{}", self.reason)
    }
}

/// Errors that can carry an [`Invalid`] setting or a [`LimitError`], for front ends that name
/// their own options for fields and for the memory limit.
pub trait Setting {
    /// The refused setting, if that is what this error is.
    fn invalid(&self) -> Option<&Invalid>;
    /// The memory limit refused the request, if that is what this error is.
    fn limit(&self) -> Option<&LimitError> {
        None
    }
    /// The whole message with every field it names shown as `option` shows it, for errors that
    /// name a field elsewhere than at their start (`reading dir …`, `… a [grid] table in
    /// spec`); `None`: the message is [`Setting::invalid`]'s, [`Setting::limit`]'s or the
    /// error's own.
    fn named(&self, _option: &dyn Fn(&str) -> String) -> Option<String> {
        None
    }
}

impl Setting for Invalid {
    fn invalid(&self) -> Option<&Invalid> {
        Some(self)
    }
}

impl Setting for LimitError {
    fn invalid(&self) -> Option<&Invalid> {
        None
    }
    fn limit(&self) -> Option<&LimitError> {
        Some(self)
    }
}

/// `Err` naming `field` if a count that must be at least 1 is 0 (`None`: not given, fine).
pub(crate) fn at_least_one(field: &'static str, count: Option<usize>) -> Result<(), Invalid> {
    match count {
        Some(0) => Err(Invalid::new(field, " must be at least 1")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_setting_reads_with_its_field_or_a_front_end_name() {
        let e = Invalid::new("probe_samples", " must be at least 1");
        assert_eq!(e.to_string(), "probe_samples must be at least 1");
        assert_eq!(
            e.named("--probe-samples"),
            "--probe-samples must be at least 1"
        );
        assert_eq!(e.invalid(), Some(&e));
        assert_eq!(
            at_least_one("epochs", Some(0)).unwrap_err().to_string(),
            "epochs must be at least 1"
        );
        assert!(at_least_one("epochs", Some(1)).is_ok() && at_least_one("samples", None).is_ok());
        let e = Invalid::new("gains", ": 0 is not allowed");
        assert_eq!(e.to_string(), "gains: 0 is not allowed");
    }
}
