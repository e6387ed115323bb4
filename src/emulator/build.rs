//! From a chip model to the firmware's datapath: formats, tables, learning rate, thresholds,
//! the soma program and the accumulator, checked once before a run.

use super::error::{EmuError, Result};
use crate::error::Invalid;
use accord_firmware::arith::Counters;
use accord_firmware::balance::Table;
use accord_firmware::datapath::{
    AccMode, Fixed, FixedPop, FormatSet, SpikingSoma, TransferKind, Vars, fits_words,
};
use accord_firmware::handlers::Bits;

use super::ChipRule;
use crate::chip::{AccumulateSpec, ChipModel, SomaSpec};
use crate::rule::{Activation, Balance};

/// The integer datapath for chips whose weights fit 16 bits: `i16` synapses, `i64` sums.
pub type FixedNarrow = Fixed<i16, i64, Vec<i64>>;
/// The integer datapath for wider formats: `i64` synapses, `i128` sums.
pub type FixedWide = Fixed<i64, i128, Vec<i64>>;

/// What a datapath needs to know of one population.
#[derive(Clone, Debug)]
pub struct PopSpec {
    /// Activation.
    pub act: Activation,
    /// Balance function.
    pub balance: Balance,
    /// A linear read-out (identity outputs stay in the membrane format).
    pub readout: bool,
    /// The population's own spiking soma (a NIR neuron's converted decays); `None`: the
    /// chip's `[soma]`.
    pub soma: Option<SpikingSoma>,
}

/// The chip's formats as the firmware takes them.
pub(super) fn format_set(chip: &ChipModel) -> FormatSet {
    let f = &chip.formats;
    FormatSet {
        weight: f.weight,
        membrane: f.membrane,
        rate: f.rate,
        credit: f.credit,
        delta: f.delta,
        lut: f.lut,
        accumulator: f.accumulator,
        learning_rate: f.learning_rate,
    }
}

/// Stored widths for memory-bit counts.
pub(super) fn bits(chip: &ChipModel) -> Bits {
    let f = &chip.formats;
    Bits {
        weight: u64::from(f.weight.bits),
        membrane: u64::from(f.membrane.bits),
        rate: u64::from(f.rate.bits),
        credit: u64::from(f.credit.bits),
        delta: u64::from(f.delta.bits),
        lut: u64::from(f.lut.bits),
    }
}

/// The chip's spiking soma program.
pub(super) fn soma(chip: &ChipModel) -> SpikingSoma {
    match chip.soma {
        SomaSpec::If => SpikingSoma::If,
        SomaSpec::Lif { decay } => SpikingSoma::Lif { decay },
        SomaSpec::CubaLif { du, dv } => SpikingSoma::CubaLif { du, dv },
    }
}

/// The chip's accumulator mode.
pub(super) fn acc_mode(chip: &ChipModel) -> AccMode {
    match chip.core.accumulator {
        AccumulateSpec::PerAdd => AccMode::PerAdd,
        AccumulateSpec::Wide => AccMode::Wide,
    }
}

/// Whether the narrow integer datapath holds the chip's formats exactly.
pub(super) fn narrow_fits(chip: &ChipModel) -> bool {
    fits_words::<i16, i64>(&format_set(chip), acc_mode(chip))
}

/// The learning rate, raw in the chip's learning-rate format.
///
/// # Errors
/// If `lr` is zero after quantisation or does not fit the format.
pub fn lr_raw(chip: &ChipModel, lr: f64) -> Result<i64> {
    let f = &chip.formats.learning_rate;
    let mut c = Counters::default();
    let raw = f.from_f64(lr, &mut c);
    if raw == 0 || c.saturations > 0 || c.invalid > 0 {
        return Err(Invalid::new(
            "lr",
            format!(
                " {lr} is not representable on chip '{}' (formats.learning_rate: {} bits, {} fractional, range {}..{}, step {})",
                chip.name,
                f.bits,
                f.frac,
                f.to_f64(f.min_raw()),
                f.to_f64(f.max_raw()),
                f.lsb()
            ),
        )
        .into());
    }
    Ok(raw)
}

/// The message threshold, raw in the credit format (retrograde messages `m_j`) and the delta
/// format (a comparison rule's `δ` packets).
///
/// # Errors
/// A negative or non-finite threshold, or a positive one below one LSB of the format the rule's
/// messages travel in (it would silently become 0).
pub fn thresholds(chip: &ChipModel, threshold: f64, rule: ChipRule) -> Result<(i64, i64)> {
    if !threshold.is_finite() || threshold < 0.0 {
        return Err(Invalid::new(
            "message_threshold",
            format!(" {threshold} is out of range (allowed: finite, >= 0)"),
        )
        .into());
    }
    let f = &chip.formats;
    let mut c = Counters::default();
    let (tc, td) = (
        f.credit.from_f64(threshold, &mut c),
        f.delta.from_f64(threshold, &mut c),
    );
    let (raw, fmt, name) = match rule {
        ChipRule::Balance => (tc, &f.credit, "credit"),
        _ => (td, &f.delta, "delta"),
    };
    if threshold > fmt.to_f64(fmt.max_raw()) {
        return Err(Invalid::new(
            "message_threshold",
            format!(
                " {threshold:e} is above the largest value ({}) of chip '{}' (formats.{name}, in which the messages travel): it would drop every message",
                fmt.to_f64(fmt.max_raw()),
                chip.name
            ),
        )
        .into());
    }
    if threshold > 0.0 && raw == 0 {
        return Err(Invalid::new(
            "message_threshold",
            format!(
                " {threshold:e} is below one LSB ({}) of chip '{}' (formats.{name}, in which the messages travel): it would drop nothing",
                fmt.lsb(),
                chip.name
            ),
        )
        .into());
    }
    Ok((tc, td))
}

/// The integer populations: transfer, activation table, balance table.
///
/// # Errors
/// A smooth activation (sigmoid, tanh) on a chip without an activation table, or a table that
/// cannot be built from the chip's geometry and formats.
pub(super) fn fixed_pops(
    chip: &ChipModel,
    pops: &[PopSpec],
    vars: &mut Vars,
) -> Result<Vec<FixedPop<Vec<i64>>>> {
    let f = &chip.formats;
    let spec = &chip.balance_table;
    let mut out = Vec::with_capacity(pops.len());
    for (k, p) in pops.iter().enumerate() {
        let (act, bal) = (p.act, &p.balance);
        let g = Table::build(
            vec![0i64; spec.entries as usize],
            spec.input_min,
            spec.input_max,
            &f.membrane,
            &f.lut,
            |u| bal.g(act, u),
            &mut vars.lut,
        )
        .map_err(|e| EmuError::Datapath {
            chip: chip.name.clone(),
            reason: format!("balance table of population {}: {e}", k + 1),
        })?;
        let transfer = if p.readout {
            TransferKind::Readout
        } else {
            match act {
                Activation::Relu => TransferKind::Relu,
                Activation::HardSigmoid => TransferKind::HardSigmoid,
                Activation::Identity => TransferKind::Identity,
                Activation::Sigmoid | Activation::Tanh => TransferKind::Table,
            }
        };
        // Without the chip's activation table a tabulated activation has no graded rate (a
        // spiking soma does not read it); graded runs are refused by `check_activation_table`.
        let ft = match (transfer, &chip.activation_table) {
            (TransferKind::Table, Some(t)) => Some(
                Table::build(
                    vec![0i64; t.entries as usize],
                    t.input_min,
                    t.input_max,
                    &f.membrane,
                    &f.rate,
                    |u| act.f(u),
                    &mut vars.rate,
                )
                .map_err(|e| EmuError::Datapath {
                    chip: chip.name.clone(),
                    reason: format!("activation table of population {}: {e}", k + 1),
                })?,
            ),
            _ => None,
        };
        out.push(FixedPop {
            transfer,
            f: ft,
            g,
            soma: p.soma,
        });
    }
    Ok(out)
}

/// Refuse graded firing of a tabulated activation (sigmoid, tanh) on a chip that declares no
/// `[activation_table]`.
///
/// # Errors
/// Naming the activation, the chip and its file.
pub(super) fn check_activation_table(chip: &ChipModel, pops: &[PopSpec]) -> Result<()> {
    if chip.activation_table.is_some() {
        return Ok(());
    }
    if let Some(p) = pops
        .iter()
        .find(|p| !p.readout && matches!(p.act, Activation::Sigmoid | Activation::Tanh))
    {
        return Err(Invalid::new(
            "activation",
            format!(
                " '{}' needs an activation table for graded firing, and chip '{}' declares \
                 none (no [activation_table] in {}); use a piecewise-linear activation \
                 (hard-sigmoid, relu, identity), spiking mode, or a chip with one",
                p.act, chip.name, chip.origin
            ),
        )
        .into());
    }
    Ok(())
}

/// The chip's integer datapath for `pops` with synapse word `W` and accumulator `A`
/// ([`FixedNarrow`](super::FixedNarrow) for weights up to 16 bits,
/// [`FixedWide`](super::FixedWide) otherwise); public as `emulator::fixed_path`.
///
/// # Errors
/// A learning rate or threshold its format cannot hold, a table
/// that cannot be built, formats wider than the words.
#[allow(clippy::too_many_arguments)]
pub fn fixed<W, A>(
    chip: &ChipModel,
    pops: &[PopSpec],
    lr: f64,
    threshold: f64,
    rule: ChipRule,
    seed: u64,
    vars: &mut Vars,
) -> Result<Fixed<W, A, Vec<i64>>>
where
    W: accord_firmware::datapath::Word,
    A: accord_firmware::datapath::AccWord,
{
    let lr = lr_raw(chip, lr)?;
    let thr = thresholds(chip, threshold, rule)?;
    let pops = fixed_pops(chip, pops, vars)?;
    Fixed::new(
        format_set(chip),
        seed,
        lr,
        thr,
        acc_mode(chip),
        soma(chip),
        pops,
    )
    .map_err(|e| EmuError::Datapath {
        chip: chip.name.clone(),
        reason: e.to_string(),
    })
}
