//! Chip models: what a modelled neuromorphic chip can do and what each primitive costs.
//!
//! A chip model is a human-editable TOML file in `hw_models/` (see `hw_models/README.md`). It
//! gives the core mesh, per-core capacities, the number format of every state variable, the
//! balance-table geometry and a **price table**: energy (pJ) and latency (ns) per primitive
//! [`Action`], each with an evidence [`Grade`] and a source. Primitives the chip lacks are
//! declared `missing`; a missing primitive may be emulated by a sequence of other actions.
//!
//! Loading runs a design-rule check ([`ChipModel::validate`]): every error names the file, the
//! dotted key (`prices.sop.energy_pj`), the bad value and the allowed range.
//!
//! # Accounting conventions
//!
//! * Energy of a run = Σ count(action) × price. [`ChipModel::charge`] resolves each action:
//!   priced, emulated (charge the `via` actions), included in another action's **all-in** price
//!   (zero *by declaration*), unpriced (listed in the report, never charged zero silently), or
//!   missing.
//! * An all-in price lists in `includes` the actions it already covers; those may not also carry
//!   their own energy price (the design rules reject such double counting).
//! * The memory-bit actions count bits of a core's synapse memory (weights) and neuron memory
//!   (membrane, rate/trace, credit), at stored format widths. A price covers only its own action
//!   unless its `includes` lists memory terms: e.g. `balance-core` prices the weight read as
//!   `synapse_mem_read_bit` beside an arithmetic-only `sop`, so bit-width sweeps move energy.
//!
//! # Example
//!
//! ```no_run
//! use accord::chip::{self, Action, Charge, TRAINING_ACTIONS};
//!
//! let loihi = chip::open("loihi")?; // hw_models/loihi.toml, or $ACCORD_HW_MODELS/loihi.toml
//! loihi.require(TRAINING_ACTIONS)?; // Loihi emulates the retrograde primitives
//! match loihi.charge(Action::RetroSop) {
//!     Charge::Emulated(e) => println!("retro_sop runs as {:?}: {}", e.via, e.note),
//!     other => println!("{other:?}"),
//! }
//! let truenorth = chip::open("truenorth")?;
//! assert!(truenorth.require(TRAINING_ACTIONS).is_err()); // inference only
//! println!("{}", truenorth.describe());
//! # Ok::<(), chip::ChipError>(())
//! ```

mod action;
pub mod calibration;
mod drc;
mod error;
mod load;
mod model;

#[cfg(test)]
mod tests;

pub use action::{Action, INFERENCE_ACTIONS, ParseActionError, TRAINING_ACTIONS};
pub use drc::{BITS_RANGE, FRAC_RANGE, MAX_GRID_CORES, MAX_INPUT_QUEUE, TABLE_ENTRIES_RANGE};
pub use error::{ChipError, ChipErrorKind};
pub use load::{
    HW_MODELS_ENV, builtin_dir, load, models_in, open, open_with, parse, resolve, resolve_in,
    shipped_models,
};
pub use model::{
    AccumulateSpec, Charge, ChipModel, CoreCaps, Emulation, Formats, Grade, Mesh, OverflowPolicy,
    Price, RouterSpec, Scope, SomaSpec, StaticPower, System, TableSpec, Timing, format_range,
    format_summary, hops, overflow_name, rounding_name,
};
