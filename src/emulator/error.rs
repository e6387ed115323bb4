//! Why a run on a chip cannot start or go on.

use crate::checkpoint::CheckpointError;
use crate::chip::ChipError;
use crate::error::{Invalid, Setting};
use crate::limits::LimitError;
use crate::mapping::MapError;

/// An emulator run refused or stopped: each names the chip, the layer or the file and the
/// numbers. A setting outside what the chip can run is an [`Invalid`] naming its field: of
/// [`super::EmuConfig`] (`mode`, `lr`, `message_threshold`, `rule`, `epochs`, `activation`;
/// `hidden` in a [`LimitError`]), or for an all-to-all net the chip (`chip`) and its
/// [`crate::rule::GeneralNet`]'s output activation (`output_act`).
#[derive(Debug, thiserror::Error)]
pub enum EmuError {
    /// A configuration value this chip cannot run.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The chip lacks a primitive the run needs.
    #[error(transparent)]
    Chip(#[from] ChipError),
    /// The net is larger than the memory limit allows.
    #[error(transparent)]
    Limit(#[from] LimitError),
    /// The net does not fit the chip.
    #[error("mapping {sizes:?} onto chip '{chip}'")]
    Map {
        /// Layer widths, input first (all-to-all: the neuron count).
        sizes: Vec<usize>,
        /// Chip name.
        chip: String,
        /// Why.
        #[source]
        source: MapError,
    },
    /// The chip's datapath cannot be built from its formats and tables.
    #[error("chip '{chip}': {reason}")]
    Datapath {
        /// Chip name.
        chip: String,
        /// What failed (a table that cannot be built, formats wider than the words).
        reason: String,
    },
    /// A start net, checkpoint, mask or neuron program that is not of this run's net.
    #[error("{0}")]
    Shape(String),
    /// Saving a checkpoint failed (the run stops).
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

impl Setting for EmuError {
    fn invalid(&self) -> Option<&Invalid> {
        match self {
            EmuError::Invalid(i) => Some(i),
            _ => None,
        }
    }
    fn limit(&self) -> Option<&LimitError> {
        match self {
            EmuError::Limit(l) => Some(l),
            _ => None,
        }
    }
}

/// `Result` of the emulator.
pub type Result<T, E = EmuError> = std::result::Result<T, E>;
