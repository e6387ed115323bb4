//! Probe 1, precision mapping: what happens when the balance function `g` is not `f'`.
//!
//! Variants, each applied to every non-input neuron (on the layered net each layer gets the
//! variant of its own `f'`, so the linear output layer, whose `f' = 1`, is unaffected except
//! by a table too coarse to hold 1):
//!
//! * `exact` — `g = f'`;
//! * `lut E×B` — a balance table of `E` entries over `[−R, R]` (nearest entry, the ends
//!   held outside), each entry rounded to `B` unsigned bits of `max f'`; swept over `B` at
//!   the default `E` and over `E` at the default `B`;
//! * `constant` — `g ≡ f'(0)`: the neuron ignores its balance;
//! * `shift s` — `g(u) = f'(u − s)`: the table is centred on the wrong balance.

use super::Result;
use super::{
    Plan, ProbeConfig, a2a_accuracy, a2a_cosine, layered_accuracy, layered_cosine,
    set_layered_balance, train_a2a, train_layered,
};
use crate::data::Split;
use crate::error::Invalid;
use crate::rule::{Activation, Balance};
use serde::Serialize;

/// The variants to run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BalanceConfig {
    /// Output bits swept at [`entries`](Self::entries) entries.
    pub bits: Vec<u32>,
    /// Table sizes swept at [`default_bits`](Self::default_bits) bits.
    pub entry_counts: Vec<usize>,
    /// Entries of the table in the bits sweep.
    pub entries: usize,
    /// Bits of the table in the entries sweep.
    pub default_bits: u32,
    /// Shifts `s` of `g(u) = f'(u − s)`.
    pub shifts: Vec<f64>,
    /// Input range `±R` of the table (default by activation: sigmoid 8, tanh 4, others 2).
    pub range: Option<f64>,
}

impl Default for BalanceConfig {
    fn default() -> Self {
        BalanceConfig {
            bits: vec![1, 2, 3, 4, 6, 8],
            entry_counts: vec![2, 4, 8, 16, 32, 256],
            entries: 64,
            default_bits: 8,
            shifts: vec![0.5, 1.0, 2.0],
            range: None,
        }
    }
}

impl BalanceConfig {
    /// A small set of variants for examples and tests.
    pub fn quick() -> Self {
        BalanceConfig {
            bits: vec![2],
            entry_counts: vec![4],
            entries: 16,
            default_bits: 8,
            shifts: vec![1.0],
            range: None,
        }
    }

    /// Check the values; errors name the field.
    pub fn check(&self) -> Result<()> {
        if let Some(b) = self.bits.iter().find(|b| !(1..=52).contains(*b)) {
            return Err(Invalid::new("bits", format!(": {b} is not allowed (1..=52)")).into());
        }
        if !(1..=52).contains(&self.default_bits) {
            return Err(Invalid::new(
                "default_bits",
                format!(" {} is not allowed (1..=52)", self.default_bits),
            )
            .into());
        }
        if let Some(e) = self
            .entry_counts
            .iter()
            .chain([&self.entries])
            .find(|e| !(2..=1 << 20).contains(*e))
        {
            return Err(Invalid::new(
                "entry_counts",
                format!(": {e} is not allowed (2..=1048576)"),
            )
            .into());
        }
        if let Some(s) = self.shifts.iter().find(|s| !s.is_finite()) {
            return Err(
                Invalid::new("shifts", format!(": {s} is not allowed (must be finite)")).into(),
            );
        }
        if let Some(r) = self.range
            && !(r.is_finite() && r > 0.0 && r <= 1e6)
        {
            return Err(Invalid::new(
                "range",
                format!(" {r} is not allowed (must be in (0, 1e6])"),
            )
            .into());
        }
        Ok(())
    }
}

/// One balance-function variant.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Variant {
    /// `g = f'`.
    Exact,
    /// A quantised table.
    Lut {
        /// Entries.
        entries: usize,
        /// Output bits.
        bits: u32,
    },
    /// `g ≡ f'(0)`.
    Constant,
    /// `g(u) = f'(u − shift)`.
    Shift {
        /// The shift.
        shift: f64,
    },
}

impl Variant {
    /// Short label for tables and figures.
    pub fn label(&self) -> String {
        match self {
            Variant::Exact => "exact".into(),
            Variant::Lut { entries, bits } => format!("lut {entries}×{bits}b"),
            Variant::Constant => "constant f'(0)".into(),
            Variant::Shift { shift } => format!("shift {shift}"),
        }
    }

    /// The balance function for a neuron with activation `act`; `range` is the table's `R`.
    pub fn balance(&self, act: Activation, range: Option<f64>) -> Balance {
        match *self {
            Variant::Exact => Balance::Exact,
            Variant::Lut { entries, bits } => {
                let r = range.unwrap_or_else(|| default_range(act));
                let table = lut(act, entries, bits, r);
                let step = 2.0 * r / (entries - 1) as f64;
                Balance::custom(self.label(), move |u| {
                    let k = ((u + r) / step).round();
                    let k = if k.is_nan() {
                        0.0
                    } else {
                        k.clamp(0.0, (entries - 1) as f64)
                    };
                    table[k as usize]
                })
            }
            Variant::Constant => {
                let c = act.df(0.0);
                Balance::custom(self.label(), move |_| c)
            }
            Variant::Shift { shift } => Balance::custom(self.label(), move |u| act.df(u - shift)),
        }
    }
}

/// Default input range `±R` of a balance table for `act`.
pub fn default_range(act: Activation) -> f64 {
    match act {
        Activation::Sigmoid => 8.0,
        Activation::Tanh => 4.0,
        _ => 2.0,
    }
}

/// A balance table: `f'` sampled at `entries` evenly spaced balances over `[−r, r]`, each
/// value rounded to `bits` unsigned bits of the table's maximum.
pub fn lut(act: Activation, entries: usize, bits: u32, r: f64) -> Vec<f64> {
    let step = 2.0 * r / (entries - 1) as f64;
    let raw: Vec<f64> = (0..entries).map(|k| act.df(-r + k as f64 * step)).collect();
    let max = raw.iter().copied().fold(0.0, f64::max);
    if max <= 0.0 {
        return raw;
    }
    let levels = ((1u64 << bits) - 1) as f64;
    raw.iter()
        .map(|v| (v / max * levels).round() / levels * max)
        .collect()
}

/// One row of the balance probe.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BalanceRow {
    /// Label.
    pub variant: String,
    /// The variant.
    pub spec: Variant,
    /// Test accuracy after training with it.
    pub accuracy: f64,
    /// Mean cosine between the rule's update and the true gradient on the initial network.
    pub cos_init: f64,
    /// The same over the synapses onto hidden neurons only.
    pub cos_hidden_init: f64,
    /// The same on the network this variant trained.
    pub cos_final: f64,
    /// Samples whose update was skipped (all-to-all: firing or credit not converged).
    pub skipped: usize,
}

/// The balance probe's result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BalanceReport {
    /// `"balance"`.
    pub probe: String,
    /// Shared configuration.
    pub config: ProbeConfig,
    /// Widths of the layered network, input first.
    pub layered_sizes: Vec<usize>,
    /// The variants.
    pub variants: BalanceConfig,
    /// Layered network, one row per variant.
    pub layered: Vec<BalanceRow>,
    /// All-to-all network, one row per variant.
    pub all_to_all: Vec<BalanceRow>,
}

/// All variants in order: exact, the bits sweep, the entries sweep, constant, shifts.
pub fn variants(b: &BalanceConfig) -> Vec<Variant> {
    let mut v = vec![Variant::Exact];
    v.extend(b.bits.iter().map(|&bits| Variant::Lut {
        entries: b.entries,
        bits,
    }));
    v.extend(b.entry_counts.iter().map(|&entries| Variant::Lut {
        entries,
        bits: b.default_bits,
    }));
    v.push(Variant::Constant);
    v.extend(b.shifts.iter().map(|&shift| Variant::Shift { shift }));
    v
}

/// Run the balance probe.
pub fn run(cfg: &ProbeConfig, b: &BalanceConfig, split: &Split) -> Result<BalanceReport> {
    cfg.check(split)?;
    b.check()?;
    let split = &cfg.limit(split);
    let vs = variants(b);
    let jobs: Vec<(bool, Variant)> = [false, true]
        .into_iter()
        .flat_map(|a2a| vs.iter().map(move |v| (a2a, v.clone())))
        .collect();
    let rows = crate::parallel::over(&jobs, cfg.threads, &|(a2a, v)| {
        if *a2a {
            let mut net = cfg.a2a_net(split);
            net.balance = v.balance(cfg.activation, b.range);
            let cos0 = a2a_cosine(
                &net,
                &split.test,
                cfg.probe_samples,
                &cfg.recipe,
                cfg.a2a_lr,
                Plan::Settled,
            );
            let skipped = train_a2a(
                &mut net,
                &split.train,
                &cfg.recipe,
                cfg.a2a_lr,
                cfg.epochs,
                cfg.seed,
                Plan::Settled,
            );
            BalanceRow {
                variant: v.label(),
                spec: v.clone(),
                accuracy: a2a_accuracy(&net, &split.test, &cfg.recipe),
                cos_init: cos0.all,
                cos_hidden_init: cos0.hidden,
                cos_final: a2a_cosine(
                    &net,
                    &split.test,
                    cfg.probe_samples,
                    &cfg.recipe,
                    cfg.a2a_lr,
                    Plan::Settled,
                )
                .all,
                skipped,
            }
        } else {
            let mut net = cfg.layered_net(split);
            set_layered_balance(&mut net, &|act| v.balance(act, b.range));
            let cos0 = layered_cosine(
                &net,
                &split.test,
                cfg.probe_samples,
                cfg.layered_lr,
                Plan::Settled,
            );
            train_layered(
                &mut net,
                &split.train,
                cfg.layered_lr,
                cfg.epochs,
                cfg.seed,
                Plan::Settled,
            );
            BalanceRow {
                variant: v.label(),
                spec: v.clone(),
                accuracy: layered_accuracy(&net, &split.test),
                cos_init: cos0.all,
                cos_hidden_init: cos0.hidden,
                cos_final: layered_cosine(
                    &net,
                    &split.test,
                    cfg.probe_samples,
                    cfg.layered_lr,
                    Plan::Settled,
                )
                .all,
                skipped: 0,
            }
        }
    });
    let (layered, all_to_all): (Vec<_>, Vec<_>) =
        rows.into_iter().zip(&jobs).partition(|(_, (a2a, _))| !*a2a);
    Ok(BalanceReport {
        probe: "balance".into(),
        config: cfg.clone(),
        layered_sizes: cfg.layered_net(split).sizes(),
        variants: b.clone(),
        layered: layered.into_iter().map(|(r, _)| r).collect(),
        all_to_all: all_to_all.into_iter().map(|(r, _)| r).collect(),
    })
}

impl std::fmt::Display for BalanceReport {
    /// The balance probe's table.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = self;
        writeln!(f, "\nprobe balance — g ≠ f'")?;
        writeln!(f, "{}", super::nets_line(&r.config, &r.layered_sizes))?;
        writeln!(f, "{:<16} | {:>17} | {:>17}", "", "layered", "all-to-all")?;
        writeln!(
            f,
            "{:<16} | {:>7} {:>7} {:>7} {:>7} | {:>7} {:>7} {:>7} {:>7} {:>7}",
            "g", "acc", "cos₀", "cos₀ hid", "cos_T", "acc", "cos₀", "cos₀ hid", "cos_T", "skipped"
        )?;
        for (l, x) in r.layered.iter().zip(&r.all_to_all) {
            writeln!(
                f,
                "{:<16} | {:>6.1}% {:>7.4} {:>8.4} {:>7.4} | {:>6.1}% {:>7.4} {:>8.4} {:>7.4} {:>7}",
                l.variant,
                100.0 * l.accuracy,
                l.cos_init,
                l.cos_hidden_init,
                l.cos_final,
                100.0 * x.accuracy,
                x.cos_init,
                x.cos_hidden_init,
                x.cos_final,
                x.skipped
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lut_quantises_and_holds_the_ends() {
        let t = lut(Activation::Sigmoid, 5, 2, 8.0);
        // Entries at −8, −4, 0, 4, 8; max f' = 0.25 at 0; 2 bits = levels 0, 1/3, 2/3, 1.
        assert_eq!(t.len(), 5);
        assert!((t[2] - 0.25).abs() < 1e-15);
        assert_eq!(t[0], 0.0);
        assert!(
            (t[1] - 0.0).abs() < 1e-15,
            "f'(−4) ≈ 0.018 rounds to 0: {}",
            t[1]
        );
        let g = Variant::Lut {
            entries: 5,
            bits: 2,
        }
        .balance(Activation::Sigmoid, None);
        assert_eq!(g.g(Activation::Sigmoid, 0.3), 0.25);
        assert_eq!(g.g(Activation::Sigmoid, 100.0), t[4]);
        assert_eq!(g.g(Activation::Sigmoid, f64::NAN), t[0]);
        // Identity layers keep g = 1 at any resolution.
        let id = Variant::Lut {
            entries: 2,
            bits: 1,
        }
        .balance(Activation::Identity, None);
        assert_eq!(id.g(Activation::Identity, 0.7), 1.0);
    }

    #[test]
    fn bad_values_are_named() {
        let mut b = BalanceConfig::default();
        b.bits.push(0);
        assert!(b.check().unwrap_err().to_string().contains("bits: 0"));
        let mut b = BalanceConfig::default();
        b.entry_counts.push(1);
        assert!(
            b.check()
                .unwrap_err()
                .to_string()
                .starts_with("entry_counts")
        );
    }
}
