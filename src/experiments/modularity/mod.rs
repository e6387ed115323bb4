//! The learning-rate → modularity experiment: does the rule wire an all-to-all network into
//! modules (block-diagonal) or across them (off-diagonal)? Community detection and block
//! statistics live in [`community`], the training regimes compared in [`protocol`], the
//! lenses and their null model in [`lens`], the verdict table over protocols in [`study`]; a
//! [`experiment::Sweep`] renders its summary by `Display` and its tables as CSV.

pub mod community;
pub mod experiment;
pub mod lens;
pub mod protocol;
mod report;
pub mod study;

use crate::emulator::EmuError;
use crate::error::{Invalid, Setting};
use crate::limits::LimitError;
use community::CommunityError;

/// Why a modularity run, sweep or study cannot run or go on.
#[derive(Debug, thiserror::Error)]
pub enum ModularityError {
    /// A recipe or sweep setting out of range (names its field).
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// A net larger than the memory limit allows.
    #[error(transparent)]
    Limit(#[from] LimitError),
    /// Community detection refused a weight matrix (a non-finite weight).
    #[error(transparent)]
    Community(#[from] CommunityError),
    /// Training on a chip failed.
    #[error(transparent)]
    Chip(#[from] EmuError),
    /// A saved run that does not belong to this sweep or network.
    #[error("{0}")]
    SavedRun(String),
}

impl Setting for ModularityError {
    fn invalid(&self) -> Option<&Invalid> {
        match self {
            ModularityError::Invalid(i) => Some(i),
            ModularityError::Chip(e) => e.invalid(),
            _ => None,
        }
    }
    fn limit(&self) -> Option<&LimitError> {
        match self {
            ModularityError::Limit(l) => Some(l),
            ModularityError::Chip(e) => e.limit(),
            _ => None,
        }
    }
}

/// `Result` of the modularity experiment.
pub type Result<T, E = ModularityError> = std::result::Result<T, E>;
