//! The protocols of the learning-rate → modularity study (ARCHITECTURE.md §1.4): under which
//! training regime the rates are compared.
//!
//! | protocol | what changes against `equal-epochs` | parameter (default) |
//! |---|---|---|
//! | `equal-epochs` | nothing: every rate trains the same number of epochs | `epochs` (20) |
//! | `equal-progress` | every rate trains until the mean training loss of a quarter epoch's samples reaches a target | target loss (0.2), epoch cap (40) |
//! | `convergence` | every rate trains until its training loss plateaus | < 1 % better over 3 epochs, epoch cap (40) |
//! | `dale` | neurons are excitatory or inhibitory (every 5th is inhibitory: 80/20), weights keep their presynaptic sign | inhibitory share (0.2) |
//! | `modular-task` | two independent sub-tasks share the network (below), so "within modules" has a ground truth | — |
//! | `weight-decay` | an L2 penalty `λ/2 Σ w²`: after each update `w ← (1 − ηλ) w` | `λ` (1e-4) |
//!
//! **Dale's law.** Neuron `j` is inhibitory when `j mod 5 = 4` (with the default share 0.2;
//! in general when `⌊(j + 1)·s⌋ > ⌊j·s⌋` for share `s`), inputs included. Initial weights
//! are `|u|·a` for an excitatory and `−|u|·a·(1 − s)/s` for an inhibitory presynaptic neuron
//! (`u` the recipe's uniform draw, `a = init_scale/√N`), so that excitation and inhibition
//! balance in expectation at the start. After every update each weight is projected back onto
//! its sign (`max(w, 0)` from an excitatory, `min(w, 0)` from an inhibitory neuron): the
//! balance of a neuron is then literally excitation minus inhibition.
//!
//! **The modular task.** From a dataset of `d` features and `C` classes it builds one of
//! `2d` features and `2C` classes. Row `k` of each half (train, test) becomes a sample of
//! sub-task A when `k` is even — its features in inputs `0..d`, zeros in `d..2d`, its label
//! `y` — and of sub-task B when `k` is odd: zeros in `0..d`, its features permuted by a fixed
//! permutation `π` in `d..2d`, its label `C + σ(y)` for a fixed class permutation `σ`. The
//! two sub-tasks share no input or output neuron, and the pixel permutation means a hidden
//! feature of one half is no feature of the other. The ground-truth modules are
//! `{inputs 0..d, outputs 0..C}` and `{inputs d..2d, outputs C..2C}`.

use crate::data::{Dataset, SplitMix64};
use serde::{Deserialize, Serialize};

/// A training protocol of the study.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// The same number of epochs at every rate.
    EqualEpochs,
    /// Every rate trained to the same training loss (with an epoch cap).
    EqualProgress,
    /// Every rate trained until its training loss plateaus (with an epoch cap).
    Convergence,
    /// Excitatory and inhibitory populations with sign-constrained weights.
    Dale,
    /// Two independent sub-tasks sharing the network.
    ModularTask,
    /// An L2 weight penalty.
    WeightDecay,
}

impl Protocol {
    /// Every protocol, in the order of the verdict table.
    pub const ALL: [Protocol; 6] = [
        Protocol::EqualEpochs,
        Protocol::EqualProgress,
        Protocol::Convergence,
        Protocol::Dale,
        Protocol::ModularTask,
        Protocol::WeightDecay,
    ];

    /// The name on the command line and in output folders.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::EqualEpochs => "equal-epochs",
            Protocol::EqualProgress => "equal-progress",
            Protocol::Convergence => "convergence",
            Protocol::Dale => "dale",
            Protocol::ModularTask => "modular-task",
            Protocol::WeightDecay => "weight-decay",
        }
    }

    /// The protocol called `name`.
    pub fn parse(name: &str) -> Option<Protocol> {
        Protocol::ALL.into_iter().find(|p| p.name() == name)
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// When a run stops training.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "rule")]
pub enum Stop {
    /// After the configured number of epochs.
    Epochs,
    /// As soon as the mean training loss of a quarter epoch's samples is at or below `loss`
    /// (or at the epoch cap).
    TargetLoss {
        /// The target.
        loss: f64,
    },
    /// As soon as the training loss improved by less than `relative` (a share of the earlier
    /// loss) over the last `patience` epochs (or at the epoch cap).
    Plateau {
        /// Smallest relative improvement that counts as progress.
        relative: f64,
        /// Epochs over which the improvement is measured.
        patience: usize,
    },
}

impl Stop {
    /// Whether training stops after the epochs whose mean training losses are `losses`.
    pub fn reached(&self, losses: &[f64]) -> bool {
        let Some(&last) = losses.last() else {
            return false;
        };
        match *self {
            Stop::Epochs => false,
            Stop::TargetLoss { loss } => last <= loss,
            Stop::Plateau { relative, patience } => {
                losses.len() > patience && {
                    let before = losses[losses.len() - 1 - patience];
                    before - last < relative * before
                }
            }
        }
    }
}

/// Which neurons are inhibitory under Dale's law with inhibitory share `share`: neuron `j`
/// when `⌊(j + 1)·s⌋ > ⌊j·s⌋` (every 5th, `j mod 5 = 4`, for `s = 0.2`). Empty when
/// `share` is 0 (no Dale's law).
pub fn inhibitory(n: usize, share: f64) -> Vec<bool> {
    if share <= 0.0 {
        return Vec::new();
    }
    (0..n)
        .map(|j| ((j + 1) as f64 * share).floor() > (j as f64 * share).floor())
        .collect()
}

/// Impose Dale's law on a fresh all-to-all `w` (row-major, `w[i * n + j]` from `j` to `i`):
/// weights from an excitatory neuron become `|w|`, from an inhibitory one
/// `−|w|·(1 − s)/s`, so that excitation and inhibition balance in expectation.
pub fn dale_init(w: &mut [f64], n: usize, inhibitory: &[bool], share: f64) {
    let gain = (1.0 - share) / share;
    for row in w.chunks_mut(n) {
        for (x, &inh) in row.iter_mut().zip(inhibitory) {
            *x = if inh { -x.abs() * gain } else { x.abs() };
        }
    }
}

/// Project `w` back onto Dale's signs: `max(w, 0)` from excitatory, `min(w, 0)` from
/// inhibitory neurons. Returns how many weights were clipped.
pub fn dale_project(w: &mut [f64], n: usize, inhibitory: &[bool]) -> usize {
    let mut clipped = 0;
    for row in w.chunks_mut(n) {
        for (x, &inh) in row.iter_mut().zip(inhibitory) {
            if (inh && *x > 0.0) || (!inh && *x < 0.0) {
                *x = 0.0;
                clipped += 1;
            }
        }
    }
    clipped
}

/// The seed of the modular task's fixed permutations (pixels and classes). Fixed, so that
/// every seed and rate sees the same task.
const MODULAR_SEED: u64 = 0x6d6f_6475_6c61_7221;

/// The modular task built from `ds` (see the [module docs](self)).
pub fn modular_task(ds: &Dataset) -> Dataset {
    let (d, c) = (ds.dim, ds.n_classes);
    let mut rng = SplitMix64::new(MODULAR_SEED);
    let mut pixels: Vec<usize> = (0..d).collect();
    let mut classes: Vec<usize> = (0..c).collect();
    for v in [&mut pixels, &mut classes] {
        for i in (1..v.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }
    let mut features = Vec::with_capacity(ds.len() * 2 * d);
    let mut labels = Vec::with_capacity(ds.len());
    for k in 0..ds.len() {
        let row = ds.row(k);
        if k % 2 == 0 {
            features.extend_from_slice(row);
            features.extend(std::iter::repeat_n(0.0, d));
            labels.push(ds.labels[k]);
        } else {
            features.extend(std::iter::repeat_n(0.0, d));
            features.extend(pixels.iter().map(|&p| row[p]));
            labels.push(c + classes[ds.labels[k]]);
        }
    }
    Dataset {
        name: format!("{} (modular task)", ds.name),
        features,
        labels,
        dim: 2 * d,
        n_classes: 2 * c,
    }
}

/// Ground-truth module (0 or 1) of every input and output neuron of the modular task on an
/// `n`-neuron net with `n_in` inputs and `n_out` outputs; `None` for hidden neurons.
pub fn truth_modules(n: usize, n_in: usize, n_out: usize) -> Vec<Option<usize>> {
    (0..n)
        .map(|i| {
            if i < n_in {
                Some(usize::from(i >= n_in / 2))
            } else if i >= n - n_out {
                Some(usize::from(i - (n - n_out) >= n_out / 2))
            } else {
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in Protocol::ALL {
            assert_eq!(Protocol::parse(p.name()), Some(p));
        }
        assert_eq!(Protocol::parse("dales"), None);
    }

    #[test]
    fn stop_rules() {
        assert!(!Stop::Epochs.reached(&[0.0]));
        let t = Stop::TargetLoss { loss: 0.1 };
        assert!(!t.reached(&[]));
        assert!(!t.reached(&[0.5, 0.11]));
        assert!(t.reached(&[0.5, 0.1]));
        let p = Stop::Plateau {
            relative: 0.01,
            patience: 2,
        };
        assert!(!p.reached(&[1.0, 0.999]), "too few epochs to judge");
        assert!(!p.reached(&[1.0, 0.9, 0.8]), "20 % better over 2 epochs");
        assert!(p.reached(&[1.0, 0.9, 0.995, 0.895]), "0.9 → 0.895 is < 1 %");
    }

    #[test]
    fn dale_signs() {
        let inh = inhibitory(10, 0.2);
        let which: Vec<usize> = (0..10).filter(|&j| inh[j]).collect();
        assert_eq!(which, vec![4, 9]);
        assert!(inhibitory(10, 0.0).is_empty());
        let n = 10;
        let mut w: Vec<f64> = (0..n * n).map(|k| (k as f64 * 0.37).sin()).collect();
        dale_init(&mut w, n, &inh, 0.2);
        for i in 0..n {
            for j in 0..n {
                let x = w[i * n + j];
                assert!(if inh[j] { x <= 0.0 } else { x >= 0.0 });
            }
        }
        // An update that crosses zero is clipped back to it.
        w[3] = -0.5;
        w[n + 4] = 0.25;
        assert_eq!(dale_project(&mut w, n, &inh), 2);
        assert_eq!((w[3], w[n + 4]), (0.0, 0.0));
        assert_eq!(dale_project(&mut w, n, &inh), 0);
    }

    #[test]
    fn modular_task_halves() {
        let f: Vec<f64> = (0..12).map(|k| k as f64).collect();
        let ds = Dataset::new("t", f, vec![0, 1, 2, 0], 3, 3).unwrap();
        let m = modular_task(&ds);
        assert_eq!((m.dim, m.n_classes, m.len()), (6, 6, 4));
        // Even rows: sub-task A, unchanged in the first half.
        assert_eq!(m.row(0), &[0.0, 1.0, 2.0, 0.0, 0.0, 0.0]);
        assert_eq!(m.labels[0], 0);
        assert_eq!(m.labels[2], 2);
        // Odd rows: sub-task B, a permutation of the row in the second half, a class ≥ C.
        let b = m.row(1);
        assert_eq!(&b[..3], &[0.0; 3]);
        let mut second = b[3..].to_vec();
        second.sort_by(f64::total_cmp);
        assert_eq!(second, vec![3.0, 4.0, 5.0]);
        assert!(m.labels[1] >= 3 && m.labels[3] >= 3);
        // The same class maps to the same B class.
        let again = modular_task(&ds);
        assert_eq!(again.features, m.features);
        let t = truth_modules(10, 4, 2);
        assert_eq!(
            t,
            vec![
                Some(0),
                Some(0),
                Some(1),
                Some(1),
                None,
                None,
                None,
                None,
                Some(0),
                Some(1)
            ]
        );
    }
}
