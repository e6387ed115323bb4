//! Pricing a ledger on a chip model: `E = Σ count × price`, per primitive, with emulations
//! resolved, all-in inclusions declared and unpriced actions listed.
//!
//! ```
//! use accord::chip;
//! use accord::chip::Action;
//! use accord::ledger::{Ledger, energy::price};
//!
//! let chip = chip::open("balance-core").unwrap();
//! let mut l = Ledger::default();
//! l.add(Action::Sop, 1000);
//! let e = price(&l, &chip);
//! let sop = chip.energy_pj(Action::Sop).unwrap();
//! assert_eq!(e.dynamic_pj, 1000.0 * sop);
//! ```

use super::Ledger;
use crate::chip::{Action, Charge, ChipModel};
use serde::Serialize;

/// How one action was charged.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChargeKind {
    /// Priced directly.
    Priced,
    /// Missing on the chip, emulated by the listed actions (each charged once per occurrence).
    Emulated {
        /// The actions the emulation is made of.
        via: Vec<&'static str>,
    },
    /// Covered by the all-in price of another action: zero by declaration.
    Included {
        /// The covering action.
        by: &'static str,
    },
    /// No price known: excluded from the total and listed.
    Unpriced,
    /// Missing and not emulated (should not occur in a run the chip accepted).
    Missing,
}

/// One row of the energy table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ActionEnergy {
    /// The action.
    pub action: &'static str,
    /// Its count.
    pub count: u64,
    /// How it was charged.
    pub charge: ChargeKind,
    /// Energy per occurrence, pJ (`None` if unpriced).
    pub pj_each: Option<f64>,
    /// `count × pj_each`, pJ (0 if unpriced).
    pub pj_total: f64,
    /// Evidence grade of the price (for emulations, of the first priced `via` action).
    pub grade: Option<&'static str>,
}

/// A ledger priced on a chip.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EnergyBreakdown {
    /// Per action, in ledger order (actions with zero count included).
    pub actions: Vec<ActionEnergy>,
    /// Σ of priced rows, pJ.
    pub dynamic_pj: f64,
    /// Actions that occurred (count > 0) but have no price: the total leaves them out.
    pub unpriced: Vec<&'static str>,
}

/// Price `ledger` on `chip`.
pub fn price(ledger: &Ledger, chip: &ChipModel) -> EnergyBreakdown {
    let mut actions = Vec::with_capacity(Action::ALL.len());
    let mut dynamic = 0.0;
    let mut unpriced = Vec::new();
    for (a, count) in ledger.iter() {
        let (charge, grade) = match chip.charge(a) {
            Charge::Priced(p) => (ChargeKind::Priced, Some(p.grade.name())),
            Charge::Emulated(e) => {
                let grade = e
                    .via
                    .iter()
                    .find_map(|v| chip.prices.get(v).map(|p| p.grade.name()));
                (
                    ChargeKind::Emulated {
                        via: e.via.iter().map(|v| v.name()).collect(),
                    },
                    grade,
                )
            }
            Charge::Included { by } => (ChargeKind::Included { by: by.name() }, None),
            Charge::Unpriced => (ChargeKind::Unpriced, None),
            Charge::Missing => (ChargeKind::Missing, None),
        };
        let pj_each = chip.energy_pj(a);
        let pj_total = match pj_each {
            Some(e) => count as f64 * e,
            None => {
                if count > 0 {
                    unpriced.push(a.name());
                }
                0.0
            }
        };
        dynamic += pj_total;
        actions.push(ActionEnergy {
            action: a.name(),
            count,
            charge,
            pj_each,
            pj_total,
            grade,
        });
    }
    EnergyBreakdown {
        actions,
        dynamic_pj: dynamic,
        unpriced,
    }
}

impl EnergyBreakdown {
    /// Energy of the listed actions, pJ.
    pub fn of(&self, names: &[Action]) -> f64 {
        self.actions
            .iter()
            .filter(|r| names.iter().any(|a| a.name() == r.action))
            .map(|r| r.pj_total)
            .sum()
    }
}
