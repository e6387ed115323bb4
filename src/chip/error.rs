//! Errors of loading, checking and using a chip model.

use std::fmt;

/// What kind of problem a [`ChipError`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChipErrorKind {
    /// The file could not be read.
    Io,
    /// A bare model name matched no shipped model.
    UnknownModel,
    /// The file is not valid TOML.
    Syntax,
    /// A key is missing, unknown, or has the wrong type.
    Schema,
    /// A value breaks a design rule (range, consistency, double counting, emulation).
    DesignRule,
    /// The chip lacks primitives a run needs and declares no emulation for them.
    MissingPrimitives,
}

/// An error naming the chip file, the offending key (dotted path such as
/// `prices.sop.energy_pj`) and what is wrong, with the allowed range where one applies.
///
/// Displays as `hw_models/foo.toml: key 'formats.weight.bits' = 64 is out of range (allowed
/// 1..=40) (line 12)`.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub struct ChipError {
    /// The chip file (or origin string given to [`super::parse`]).
    pub file: String,
    /// Dotted key path, if the error concerns one key.
    pub key: Option<String>,
    /// 1-based line of the key in the file, when known.
    pub line: Option<usize>,
    /// The kind of problem.
    pub kind: ChipErrorKind,
    /// What is wrong, written to follow `key '<key>' ` (or the file name when there is no key).
    pub message: String,
    /// Further violations found by the same design-rule check (each displayed on a line of
    /// its own after this one).
    pub more: Vec<ChipError>,
}

impl ChipError {
    /// An error about `key` (dotted path) in `file`.
    pub fn at(file: &str, key: &str, kind: ChipErrorKind, message: impl Into<String>) -> Self {
        ChipError {
            file: file.to_owned(),
            key: Some(key.to_owned()),
            line: None,
            kind,
            message: message.into(),
            more: Vec::new(),
        }
    }

    /// An error about the whole file.
    pub fn file(file: &str, kind: ChipErrorKind, message: impl Into<String>) -> Self {
        ChipError {
            file: file.to_owned(),
            key: None,
            line: None,
            kind,
            message: message.into(),
            more: Vec::new(),
        }
    }

    /// This violation and the further ones, in the order the check found them.
    pub fn all(&self) -> impl Iterator<Item = &ChipError> {
        std::iter::once(self).chain(&self.more)
    }
}

impl fmt::Display for ChipError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.file)?;
        if let Some(key) = &self.key {
            write!(f, "key '{key}' ")?;
        }
        f.write_str(&self.message)?;
        if let Some(line) = self.line {
            write!(f, " (line {line})")?;
        }
        for e in &self.more {
            write!(f, "\n{e}")?;
        }
        Ok(())
    }
}
