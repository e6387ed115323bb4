//! Design-rule check of a chip model: ranges, consistency, double counting, emulations.

use accord_firmware::arith::{Format, Rounding};

use super::action::Action;
use super::error::{ChipError, ChipErrorKind};
use super::model::{ChipModel, Scope, SomaSpec, TableSpec};

/// Allowed total bits of a format.
pub const BITS_RANGE: std::ops::RangeInclusive<i64> = 1..=40;
/// Allowed fractional bits of a format.
pub const FRAC_RANGE: std::ops::RangeInclusive<i64> = 0..=40;
/// Allowed number of balance-table entries.
pub const TABLE_ENTRIES_RANGE: std::ops::RangeInclusive<i64> = 2..=65536;
/// The most compartments `core.dendrite_compartments` may give a neuron (a Loihi core's 1024).
pub(super) const MAX_COMPARTMENTS: u32 = 1024;
/// Deepest input queue a core may declare (the firmware's queue capacity).
pub const MAX_INPUT_QUEUE: u32 = accord_firmware::handlers::QUEUE_CAPACITY as u32;
/// Largest number of cores in a system grid.
pub const MAX_GRID_CORES: u64 = 1 << 20;
/// Largest number of cores along one side of a system grid.
pub(super) const MAX_GRID_SIDE: u64 = 65535;

fn check_table(m: &ChipModel, name: &str, t: &TableSpec) -> Result<(), ChipError> {
    if !TABLE_ENTRIES_RANGE.contains(&i64::from(t.entries)) {
        return Err(rule(
            m,
            &format!("{name}.entries"),
            format!("= {} is out of range (allowed 2..=65536)", t.entries),
        ));
    }
    for (key, v) in [("input_min", t.input_min), ("input_max", t.input_max)] {
        if !v.is_finite() {
            return Err(rule(
                m,
                &format!("{name}.{key}"),
                format!("= {v} is out of range (allowed: finite)"),
            ));
        }
    }
    if t.input_min >= t.input_max {
        return Err(rule(
            m,
            &format!("{name}.input_min"),
            format!(
                "= {} is out of range (allowed: input_min < input_max = {})",
                t.input_min, t.input_max
            ),
        ));
    }
    // The table is indexed by the net input u, held in the membrane format: the range must
    // be inside it and hold at least one of its steps.
    let mf = &m.formats.membrane;
    let mut c = accord_firmware::arith::Counters::default();
    if mf.from_f64(t.input_min, &mut c) >= mf.from_f64(t.input_max, &mut c) {
        return Err(rule(
            m,
            &format!("{name}.input_max"),
            format!(
                "= {} is out of range (allowed: at least one membrane-format step, {}, above \
                 input_min = {})",
                t.input_max,
                mf.lsb(),
                t.input_min
            ),
        ));
    }
    let (lo, hi) = (mf.to_f64(mf.min_raw()), mf.to_f64(mf.max_raw()));
    for (key, v) in [("input_min", t.input_min), ("input_max", t.input_max)] {
        if v < lo || v > hi {
            return Err(rule(
                m,
                &format!("{name}.{key}"),
                format!(
                    "= {v} is out of range (allowed: inside the membrane format, {lo}..={hi}, \
                     which holds the net input the table is indexed by)"
                ),
            ));
        }
    }
    Ok(())
}

/// Formats that must be signed for the rule to work (weights are excitatory or inhibitory,
/// credits and net inputs carry a sign).
const MUST_BE_SIGNED: [&str; 5] = ["weight", "membrane", "credit", "delta", "accumulator"];

fn rule(m: &ChipModel, key: &str, msg: String) -> ChipError {
    ChipError::at(&m.origin, key, ChipErrorKind::DesignRule, msg)
}

/// Check a non-negative finite quantity.
fn non_negative(m: &ChipModel, key: &str, v: f64) -> Result<(), ChipError> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(rule(
            m,
            key,
            format!("= {v} is out of range (allowed: finite, >= 0)"),
        ))
    }
}

/// Largest price per event: 1 mJ (10⁹ pJ), six orders above any measured chip's.
pub(super) const MAX_ENERGY_PJ: f64 = 1e9;
/// Largest latency per event or per core of barrier: 1 s (10⁹ ns); a 1 ms tick fits.
pub(super) const MAX_LATENCY_NS: f64 = 1e9;
/// Largest static power per core: 1 W.
pub(super) const MAX_MW_PER_CORE: f64 = 1e3;

/// `0 <= v <= max`: prices beyond any chip's make sums overflow rather than inform.
fn in_range(m: &ChipModel, key: &str, v: f64, max: f64, unit: &str) -> Result<(), ChipError> {
    non_negative(m, key, v)?;
    if v > max {
        return Err(rule(
            m,
            key,
            format!("= {v} is out of range (allowed: 0..={max:e} {unit})"),
        ));
    }
    Ok(())
}

/// Range check of a format's bit counts, shared with the loader (which sees raw integers).
pub(super) fn check_format_bits(
    origin: &str,
    key: &str,
    bits: i64,
    frac: i64,
) -> Result<(), ChipError> {
    if !BITS_RANGE.contains(&bits) {
        return Err(ChipError::at(
            origin,
            &format!("{key}.bits"),
            ChipErrorKind::DesignRule,
            format!("= {bits} is out of range (allowed 1..=40)"),
        ));
    }
    if !FRAC_RANGE.contains(&frac) {
        return Err(ChipError::at(
            origin,
            &format!("{key}.frac"),
            ChipErrorKind::DesignRule,
            format!("= {frac} is out of range (allowed 0..=40)"),
        ));
    }
    Ok(())
}

fn check_format(m: &ChipModel, name: &str, f: &Format) -> Result<(), ChipError> {
    let key = format!("formats.{name}");
    check_format_bits(&m.origin, &key, i64::from(f.bits), i64::from(f.frac))?;
    if MUST_BE_SIGNED.contains(&name) && !f.signed {
        return Err(rule(
            m,
            &format!("{key}.signed"),
            format!("= false is not allowed (allowed: true; the {name} carries a sign)"),
        ));
    }
    if f.rounding == Rounding::Stochastic && !m.supports(Action::RngDraw) {
        return Err(rule(
            m,
            &format!("{key}.rounding"),
            "= \"stochastic\" needs rng_draw, which this chip declares missing without emulation \
             (allowed: \"nearest-even\", \"toward-zero\", \"floor\")"
                .to_owned(),
        ));
    }
    Ok(())
}

/// Run every design rule on `m`. Every violation is reported: the first is the error, the rest
/// are in its [`ChipError::more`] (a table is checked only once the formats are sound).
pub(super) fn check(m: &ChipModel) -> Result<(), ChipError> {
    let mut found = Vec::new();
    check_capacities(m, &mut found);
    check_formats(m, &mut found);
    check_cuba_lif(m, &mut found);
    found.extend(
        in_range(
            m,
            "timing.barrier_ns_per_core",
            m.timing.barrier_ns_per_core,
            MAX_LATENCY_NS,
            "ns",
        )
        .err(),
    );
    check_grid(m, &mut found);
    for (a, e) in &m.emulations {
        if e.mirror && *a != Action::RetroSop {
            found.push(rule(
                m,
                &format!("emulations.{a}.mirror"),
                "= true is only meaningful for retro_sop (allowed: false here)".to_owned(),
            ));
        }
    }
    check_prices(m, &mut found);
    check_missing(m, &mut found);
    if m.static_in_prices && m.static_power.is_some() {
        found.push(rule(
            m,
            "static_in_prices",
            "is true beside a static_power table: the static power would be charged twice"
                .to_owned(),
        ));
    }
    if let Some(sp) = &m.static_power {
        found.extend(
            in_range(
                m,
                "static_power.mw_per_core",
                sp.mw_per_core,
                MAX_MW_PER_CORE,
                "mW",
            )
            .err(),
        );
        if sp.source.trim().is_empty() {
            found.push(rule(
                m,
                "static_power.source",
                "is empty (allowed: a citation)".to_owned(),
            ));
        }
    }
    let mut all = found.into_iter();
    match all.next() {
        None => Ok(()),
        Some(mut first) => {
            first.more = all.collect();
            Err(first)
        }
    }
}

/// Names, mesh sides and core capacities: nothing empty or zero.
fn check_capacities(m: &ChipModel, found: &mut Vec<ChipError>) {
    for (key, v) in [
        ("name", &m.name),
        ("description", &m.description),
        ("process", &m.process),
    ] {
        if v.trim().is_empty() {
            found.push(rule(
                m,
                key,
                "is empty (allowed: any non-empty text)".to_owned(),
            ));
        }
    }
    for (key, v) in [("mesh.cols", m.mesh.cols), ("mesh.rows", m.mesh.rows)] {
        if v == 0 {
            found.push(rule(
                m,
                key,
                "= 0 is out of range (allowed 1..=4294967295)".to_owned(),
            ));
        }
    }
    let c = &m.core;
    for (key, v) in [
        ("core.neurons", c.neurons),
        ("core.synapses", c.synapses),
        ("core.input_axons", c.input_axons),
        ("core.fanout", c.fanout),
    ] {
        if v == 0 {
            found.push(rule(
                m,
                key,
                "= 0 is out of range (allowed 1..=4294967295)".to_owned(),
            ));
        }
    }
}

/// Every number format; the tables (read in the membrane format) once the formats are sound; the input queue.
fn check_formats(m: &ChipModel, found: &mut Vec<ChipError>) {
    let mut formats_ok = true;
    for (name, f) in m.formats.entries() {
        if let Err(e) = check_format(m, name, f) {
            formats_ok = false;
            found.push(e);
        }
    }
    // The tables are read in the membrane format: checked once the formats are sound.
    if formats_ok {
        found.extend(check_table(m, "balance_table", &m.balance_table).err());
        if let Some(t) = &m.activation_table {
            found.extend(check_table(m, "activation_table", t).err());
        }
    }
    if m.core.input_queue == 0 || m.core.input_queue > MAX_INPUT_QUEUE {
        found.push(rule(
            m,
            "core.input_queue",
            format!(
                "= {} is out of range (allowed 1..={MAX_INPUT_QUEUE})",
                m.core.input_queue
            ),
        ));
    }
}

/// Loihi's current-based soma: 24-bit u and v, input shifted by 6.
fn check_cuba_lif(m: &ChipModel, found: &mut Vec<ChipError>) {
    if let SomaSpec::CubaLif { .. } = m.soma {
        // Lava's compartment holds 24-bit u and v and shifts the synaptic input by 6.
        let (mb, mf, wf) = (
            m.formats.membrane.bits,
            m.formats.membrane.frac,
            m.formats.weight.frac,
        );
        if mb != 24 {
            found.push(rule(
                m,
                "formats.membrane.bits",
                format!(
                    "= {mb} does not fit soma.model = \"cuba-lif\" (allowed: 24, Loihi's \
                     current and voltage width)"
                ),
            ));
        }
        if u32::from(mf) != u32::from(wf) + 6 {
            found.push(rule(
                m,
                "formats.membrane.frac",
                format!(
                    "= {mf} does not fit soma.model = \"cuba-lif\" (allowed: formats.weight.frac \
                     + 6 = {}, Loihi's input shift)",
                    u32::from(wf) + 6
                ),
            ));
        }
    }
}

/// The system's grid: sides and core count within the bounds.
fn check_grid(m: &ChipModel, found: &mut Vec<ChipError>) {
    let grid = u64::from(m.mesh.cols)
        .saturating_mul(u64::from(m.system.chips_x))
        .saturating_mul(u64::from(m.mesh.rows))
        .saturating_mul(u64::from(m.system.chips_y));
    let (gx, gy) = (
        u64::from(m.mesh.cols) * u64::from(m.system.chips_x),
        u64::from(m.mesh.rows) * u64::from(m.system.chips_y),
    );
    if gx > MAX_GRID_SIDE || gy > MAX_GRID_SIDE {
        found.push(rule(
            m,
            "system",
            format!(
                "makes a grid of {gx} x {gy} cores (allowed: at most {MAX_GRID_SIDE} cores along \
                 each side)"
            ),
        ));
    }
    if grid > MAX_GRID_CORES {
        found.push(rule(
            m,
            "system",
            format!(
                "makes a grid of {grid} cores (allowed: at most {MAX_GRID_CORES} cores in the \
                 whole system)"
            ),
        ));
    }
}

fn check_prices(m: &ChipModel, found: &mut Vec<ChipError>) {
    for (a, p) in &m.prices {
        let key = format!("prices.{a}");
        if let Some(e) = p.energy_pj {
            found.extend(in_range(m, &format!("{key}.energy_pj"), e, MAX_ENERGY_PJ, "pJ").err());
        }
        if let Some(l) = p.latency_ns {
            found.extend(in_range(m, &format!("{key}.latency_ns"), l, MAX_LATENCY_NS, "ns").err());
        }
        if p.energy_pj.is_none() && p.latency_ns.is_none() {
            found.push(rule(
                m,
                &key,
                "has neither energy_pj nor latency_ns (allowed: at least one; leave an unknown \
                 action out of [prices] to list it as unpriced)"
                    .to_owned(),
            ));
        }
        if p.source.trim().is_empty() {
            found.push(rule(
                m,
                &format!("{key}.source"),
                "is empty (allowed: a citation)".to_owned(),
            ));
        }
        if m.missing.contains(a) {
            found.push(rule(
                m,
                &key,
                format!(
                    "prices {a}, which `missing` declares absent (allowed: price it or declare it \
                     missing, not both)"
                ),
            ));
        }
        let inc_key = format!("{key}.includes");
        if p.scope == Scope::PerTerm && !p.includes.is_empty() {
            found.push(rule(
                m,
                &inc_key,
                "is set on a per-term price (allowed: includes only with scope = \"all-in\")"
                    .to_owned(),
            ));
        }
        for (i, inc) in p.includes.iter().enumerate() {
            if inc == a {
                found.push(rule(
                    m,
                    &inc_key,
                    format!("lists {a} itself (allowed: other actions)"),
                ));
            }
            if p.includes[..i].contains(inc) {
                found.push(rule(m, &inc_key, format!("lists {inc} twice")));
            }
            if m.missing.contains(inc) {
                found.push(rule(
                    m,
                    &inc_key,
                    format!(
                        "lists {inc}, which `missing` declares absent (allowed: actions the chip \
                         performs)"
                    ),
                ));
            }
            if let Some(other) = m.prices.get(inc)
                && other.energy_pj.is_some()
            {
                found.push(rule(
                    m,
                    &inc_key,
                    format!(
                        "lists {inc}, which also has its own energy price prices.{inc}.energy_pj: \
                         double counting (allowed: drop {inc} from includes, or drop its \
                         energy_pj)"
                    ),
                ));
            }
        }
    }
}

fn check_missing(m: &ChipModel, found: &mut Vec<ChipError>) {
    for a in &m.missing {
        if a.is_memory_term() {
            found.push(rule(
                m,
                "missing",
                format!(
                    "lists {a}, a memory accounting term every chip performs (allowed: any \
                     primitive except synapse_mem_read_bit, synapse_mem_write_bit, \
                     neuron_mem_read_bit, neuron_mem_write_bit; leave it unpriced instead)"
                ),
            ));
        }
    }
    for (a, e) in &m.emulations {
        let key = format!("emulations.{a}");
        if !m.missing.contains(a) {
            found.push(rule(
                m,
                &key,
                format!(
                    "emulates {a}, which is not declared missing (allowed: only actions listed \
                     in `missing`)"
                ),
            ));
        }
        if e.note.trim().is_empty() {
            found.push(rule(
                m,
                &format!("{key}.note"),
                "is empty (allowed: how the emulation works and what it costs)".to_owned(),
            ));
        }
        if e.via.is_empty() && !e.free {
            found.push(rule(
                m,
                &format!("{key}.via"),
                "= [] would make the action free by omission (allowed: the native actions it is \
                 charged as, or `free = true` with a note saying why it costs nothing)"
                    .to_owned(),
            ));
        }
        if e.free && !e.via.is_empty() {
            found.push(rule(
                m,
                &format!("{key}.free"),
                "= true contradicts a non-empty via (allowed: free = true with via = [])"
                    .to_owned(),
            ));
        }
        for v in &e.via {
            if v == a {
                found.push(rule(
                    m,
                    &format!("{key}.via"),
                    format!("uses {a} itself (allowed: actions the chip performs natively)"),
                ));
            }
            if m.missing.contains(v) {
                found.push(rule(
                    m,
                    &format!("{key}.via"),
                    format!(
                        "uses {v}, which is missing on this chip (allowed: actions the chip \
                         performs natively)"
                    ),
                ));
            }
        }
    }
}
