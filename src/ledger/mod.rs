//! The ledger: exact integer counts of every primitive action a run performs (DESIGN §2), the
//! saturation and rounding events of every number format (DESIGN §3), and their price.
//!
//! Counting is separate from pricing. The emulator only counts; [`energy`] turns counts into
//! joules through a chip model's price table, resolving emulated primitives into the actions
//! they are built from, all-in prices into "included", and listing whatever has no price
//! instead of pricing it at zero.
//!
//! ```
//! use accord::chip::Action;
//! use accord::ledger::Ledger;
//!
//! let mut a = Ledger::default();
//! a.add(Action::Sop, 784);
//! let mut b = Ledger::default();
//! b.add(Action::Sop, 16);
//! b.add(Action::Hop, 3);
//! a.merge(&b);
//! assert_eq!(a.get(Action::Sop), 800);
//! assert_eq!(a.get(Action::Hop), 3);
//! ```

pub mod energy;

use crate::chip::Action;
use accord_firmware::arith::Counters;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

/// Number of primitive actions.
pub const N_ACTIONS: usize = Action::ALL.len();

/// Exact counts per primitive action.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ledger {
    counts: [u64; N_ACTIONS],
}

impl Ledger {
    /// Add `n` occurrences of `a`.
    #[inline]
    pub fn add(&mut self, a: Action, n: u64) {
        self.counts[a as usize] += n;
    }

    /// Count of `a`.
    #[inline]
    pub fn get(&self, a: Action) -> u64 {
        self.counts[a as usize]
    }

    /// Add another ledger's counts.
    pub fn merge(&mut self, other: &Ledger) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }

    /// `(action, count)` in ledger order.
    pub fn iter(&self) -> impl Iterator<Item = (Action, u64)> + '_ {
        Action::ALL.iter().map(|&a| (a, self.get(a)))
    }

    /// Total count of all actions (a checksum more than a measure).
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

impl Serialize for Ledger {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(N_ACTIONS))?;
        for (a, n) in self.iter() {
            m.serialize_entry(a.name(), &n)?;
        }
        m.end()
    }
}

/// Rounding and overflow events per state variable (each a firmware [`Counters`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VarCounters {
    /// Weights and biases (plasticity).
    pub weight: Counters,
    /// Membrane / balance `u`.
    pub membrane: Counters,
    /// Rates and traces.
    pub rate: Counters,
    /// Credits.
    pub credit: Counters,
    /// Messages `δ`.
    pub delta: Counters,
    /// Balance-table entries and lookups (lookups outside the table's range are `lut_clamps`).
    pub lut: Counters,
    /// Row-sum accumulators.
    pub accumulator: Counters,
}

impl VarCounters {
    /// Names and counters in a fixed order.
    pub fn entries(&self) -> [(&'static str, &Counters); 7] {
        [
            ("weight", &self.weight),
            ("membrane", &self.membrane),
            ("rate", &self.rate),
            ("credit", &self.credit),
            ("delta", &self.delta),
            ("lut", &self.lut),
            ("accumulator", &self.accumulator),
        ]
    }

    /// Add another set.
    pub fn merge(&mut self, o: &VarCounters) {
        self.weight.merge(&o.weight);
        self.membrane.merge(&o.membrane);
        self.rate.merge(&o.rate);
        self.credit.merge(&o.credit);
        self.delta.merge(&o.delta);
        self.lut.merge(&o.lut);
        self.accumulator.merge(&o.accumulator);
    }

    /// Total saturations + wraps + invalid inputs over all variables.
    pub fn overflow_events(&self) -> u64 {
        self.entries()
            .iter()
            .map(|(_, c)| c.saturations + c.wraps + c.invalid)
            .sum()
    }
}

impl Serialize for VarCounters {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(7))?;
        for (name, c) in self.entries() {
            m.serialize_entry(
                name,
                &serde_json::json!({
                    "saturations": c.saturations,
                    "wraps": c.wraps,
                    "invalid": c.invalid,
                    "rng_draws": c.rng_draws,
                    "lut_clamps": c.lut_clamps,
                    "queue_drops": c.queue_drops,
                }),
            )?;
        }
        m.end()
    }
}
