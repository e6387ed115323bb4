//! The ledger: exact integer counts of every primitive action a run performs (ARCHITECTURE.md §2), the
//! saturation and rounding events of every number format (ARCHITECTURE.md §3), and their price.
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

/// Rounding and overflow events per state variable: the firmware's
/// [`Vars`](accord_firmware::datapath::Vars), one [`Counters`] per format.
pub type VarCounters = accord_firmware::datapath::Vars;

/// Serialise [`VarCounters`] as `{variable: {saturations, wraps, invalid, rng_draws,
/// lut_clamps, queue_drops}}` (use with `#[serde(serialize_with = "ser_vars")]`).
pub fn ser_vars<S: Serializer>(v: &VarCounters, s: S) -> Result<S::Ok, S::Error> {
    let mut m = s.serialize_map(Some(7))?;
    for (name, c) in v.entries() {
        m.serialize_entry(name, &CountersOut(c))?;
    }
    m.end()
}

struct CountersOut<'a>(&'a Counters);

impl Serialize for CountersOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.0;
        let mut m = s.serialize_map(Some(6))?;
        m.serialize_entry("saturations", &c.saturations)?;
        m.serialize_entry("wraps", &c.wraps)?;
        m.serialize_entry("invalid", &c.invalid)?;
        m.serialize_entry("rng_draws", &c.rng_draws)?;
        m.serialize_entry("lut_clamps", &c.lut_clamps)?;
        m.serialize_entry("queue_drops", &c.queue_drops)?;
        m.end()
    }
}
