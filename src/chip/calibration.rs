//! What measured silicon says of a chip model's prices (ARCHITECTURE.md §9): the errors
//! `accord calibrate --record` wrote to `hw_models/calibration/recorded.json`, found again for
//! a chip model by its [fingerprint](ChipModel::fingerprint).
//!
//! A recorded row holds the fingerprint of the chip model it ran on (the shipped file under
//! one price set) and of the workload file. A report asks [`coverage`] for its model: the rows
//! whose fingerprint is the model's, so an edited chip file, a `--set` that changes the model
//! or a custom file is never shown another model's errors.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

use super::ChipModel;

/// The recorded calibration's file name, in the workload folder.
pub const RECORDED_FILE: &str = "recorded.json";

/// One recorded comparison: a workload run on a chip model under one price set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordedRow {
    /// The workload's name.
    pub workload: String,
    /// The chip model's name.
    pub chip: String,
    /// The price set in force.
    pub price_set: String,
    /// [`ChipModel::fingerprint`] of the model the workload ran on (the shipped file under
    /// `price_set`, before the workload's own `--set` arguments).
    pub chip_fingerprint: u32,
    /// CRC-32 of the workload file's bytes.
    pub workload_fingerprint: u32,
    /// Which measured energy the error compares: `dynamic` or `total`; `None`: the workload
    /// measures no energy per inference.
    pub energy_figure: Option<String>,
    /// Energy per inference, (emulated − measured) / measured, emulated as the mean over the
    /// seeds.
    pub energy_error: Option<f64>,
    /// Time per inference, the same way.
    pub latency_error: Option<f64>,
    /// Inferences per second, the same way.
    pub throughput_error: Option<f64>,
    /// Seeds the emulated figures are the mean of.
    pub seeds: u64,
}

/// Per chip, the price set whose energy errors are smallest (mean of |error| over the
/// workloads that measure energy).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BestSet {
    /// The chip model's name.
    pub chip: String,
    /// The price set.
    pub price_set: String,
    /// Its mean |energy error|.
    pub mean_abs_energy_error: f64,
    /// Workloads the mean is over.
    pub workloads: usize,
}

/// The whole recorded file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recorded {
    /// The accord version that recorded it.
    pub accord_version: String,
    /// Seeds per workload and price set.
    pub seeds: u64,
    /// One row per workload and price set.
    pub rows: Vec<RecordedRow>,
    /// Per chip, the price set that predicts measured energy best.
    pub best: Vec<BestSet>,
    /// Chips with several price sets that no workload compares on equal terms: the
    /// calibration does not choose their default.
    #[serde(default)]
    pub undecided: Vec<String>,
}

/// The shipped recorded calibration: `hw_models/calibration/recorded.json`.
pub fn recorded_path() -> PathBuf {
    super::builtin_dir().join("calibration").join(RECORDED_FILE)
}

/// Read a recorded calibration.
///
/// # Errors
/// An unreadable file, or one that is not a recorded calibration (the message says which).
pub fn load_recorded(path: &Path) -> Result<Recorded, String> {
    let text = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// What the recorded calibration says of one chip model.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Coverage {
    /// Recorded rows for exactly this model (its fingerprint).
    Covered {
        /// The rows.
        rows: Vec<RecordedRow>,
    },
    /// Workloads measure a chip of this name, but none ran on this model as configured (an
    /// edited file, a `--set` that changes it, a custom file of the same name).
    Other {
        /// The price sets the chip's rows were recorded under.
        recorded_sets: Vec<String>,
    },
    /// No recorded workload measures a chip of this name.
    NoWorkload,
    /// The recorded file cannot be read.
    Unreadable {
        /// Why.
        reason: String,
    },
}

/// What `recorded` says of `model`.
pub fn coverage_in(recorded: &Recorded, model: &ChipModel) -> Coverage {
    let of_chip: Vec<&RecordedRow> = recorded
        .rows
        .iter()
        .filter(|r| r.chip == model.name)
        .collect();
    if of_chip.is_empty() {
        return Coverage::NoWorkload;
    }
    let print = model.fingerprint();
    let rows: Vec<RecordedRow> = of_chip
        .iter()
        .filter(|r| Some(r.chip_fingerprint) == print)
        .map(|r| (*r).clone())
        .collect();
    if rows.is_empty() {
        let mut recorded_sets: Vec<String> = of_chip.iter().map(|r| r.price_set.clone()).collect();
        recorded_sets.sort();
        recorded_sets.dedup();
        Coverage::Other { recorded_sets }
    } else {
        Coverage::Covered { rows }
    }
}

/// What the shipped recorded calibration ([`recorded_path`]) says of `model`.
pub fn coverage(model: &ChipModel) -> Coverage {
    match load_recorded(&recorded_path()) {
        Ok(r) => coverage_in(&r, model),
        Err(reason) => Coverage::Unreadable { reason },
    }
}

impl ChipModel {
    /// CRC-32 of the model as it prices and runs: every field but the file it came from (its
    /// serialised form). Two models with one fingerprint give the same figures.
    pub fn fingerprint(&self) -> Option<u32> {
        let mut m = self.clone();
        m.origin.clear();
        serde_json::to_vec(&m).ok().map(|b| crc32fast::hash(&b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(name: &str, set: &str) -> ChipModel {
        super::super::open_with(name, &[("price_set".into(), set.into())]).unwrap()
    }

    fn recorded_for(model: &ChipModel) -> Recorded {
        Recorded {
            accord_version: "t".into(),
            seeds: 1,
            rows: vec![RecordedRow {
                workload: "w".into(),
                chip: model.name.clone(),
                price_set: model.price_set.clone(),
                chip_fingerprint: model.fingerprint().unwrap(),
                workload_fingerprint: 1,
                energy_figure: Some("dynamic".into()),
                energy_error: Some(0.19),
                latency_error: None,
                throughput_error: None,
                seeds: 1,
            }],
            best: vec![],
            undecided: vec![],
        }
    }

    #[test]
    fn the_fingerprint_is_the_model_not_its_file_name() {
        let a = super::super::open("loihi").unwrap();
        let text = std::fs::read_to_string(&a.origin).unwrap();
        let elsewhere = super::super::parse(&text, "/some/other/place.toml").unwrap();
        assert_eq!(a.fingerprint(), elsewhere.fingerprint());
        assert_eq!(a.fingerprint(), set("loihi", "base").fingerprint());
        assert_ne!(a.fingerprint(), set("loihi", "sana-fe").fingerprint());
        let dv = super::super::open_with("loihi", &[("soma.dv".into(), "205".into())]).unwrap();
        assert_ne!(a.fingerprint(), dv.fingerprint());
    }

    #[test]
    fn coverage_is_for_the_model_as_configured() {
        let base = set("loihi", "base");
        let rec = recorded_for(&base);
        match coverage_in(&rec, &base) {
            Coverage::Covered { rows } => assert_eq!(rows[0].energy_error, Some(0.19)),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            coverage_in(&rec, &set("loihi", "sana-fe")),
            Coverage::Other {
                recorded_sets: vec!["base".into()]
            }
        );
        let bc = super::super::open("balance-core").unwrap();
        assert_eq!(coverage_in(&rec, &bc), Coverage::NoWorkload);
        let missing = load_recorded(Path::new("/no/such/recorded.json")).unwrap_err();
        assert!(missing.contains("/no/such/recorded.json"), "{missing}");
    }
}
