//! Reading chip files: TOML → raw structs → [`ChipModel`] → design-rule check; model lookup.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use accord_firmware::arith::{Format, Overflow, Rounding};
use serde::Deserialize;

use super::action::Action;
use super::drc;
use super::error::{ChipError, ChipErrorKind};
use super::model::{
    AccumulateSpec, ChipModel, CoreCaps, Emulation, Formats, Grade, Mesh, OverflowPolicy, Price,
    RouterSpec, Scope, SomaSpec, StaticPower, System, TableSpec, Timing,
};

/// Environment variable that overrides [`builtin_dir`].
pub const HW_MODELS_ENV: &str = "ACCORD_HW_MODELS";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChip {
    name: String,
    description: String,
    process: String,
    #[serde(default)]
    missing: Vec<String>,
    mesh: RawMesh,
    core: RawCore,
    formats: RawFormats,
    balance_table: RawTable,
    prices: BTreeMap<String, RawPrice>,
    static_power: Option<RawStatic>,
    /// The per-event prices already hold the chip's static power (an all-in figure: total
    /// measured power over events).
    #[serde(default)]
    static_in_prices: bool,
    /// The price set in force: `base` (the `[prices]` and `[static_power]` above) or the name
    /// of one of `[price_sets]`.
    price_set: Option<String>,
    /// Alternative price sets, each overlaying `[prices]` entry by entry.
    #[serde(default)]
    price_sets: BTreeMap<String, RawPriceSet>,
    #[serde(default)]
    emulations: BTreeMap<String, RawEmulation>,
    activation_table: Option<RawTable>,
    soma: Option<RawSoma>,
    router: Option<RawRouter>,
    timing: Option<RawTiming>,
    system: Option<RawSystem>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum RawSomaModel {
    If,
    Lif,
    CubaLif,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSoma {
    model: RawSomaModel,
    decay: Option<i64>,
    du: Option<i64>,
    dv: Option<i64>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum RawPolicy {
    Stall,
    Drop,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRouter {
    buffer_depth: Option<i64>,
    link_packets_per_cycle: Option<i64>,
    overflow: Option<RawPolicy>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTiming {
    barrier_ns_per_core: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSystem {
    chips_x: i64,
    chips_y: i64,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum RawAccumulate {
    PerAdd,
    Wide,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMesh {
    cols: i64,
    rows: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCore {
    neurons: i64,
    synapses: i64,
    input_axons: i64,
    fanout: i64,
    graded_events: bool,
    input_queue: Option<i64>,
    accumulator: Option<RawAccumulate>,
    axon_types: Option<i64>,
    external_inputs: Option<bool>,
    recurrent: Option<bool>,
    weight_sharing: Option<bool>,
    neuron_fanin: Option<i64>,
    dendrite_compartments: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFormats {
    weight: RawFormat,
    membrane: RawFormat,
    rate: RawFormat,
    credit: RawFormat,
    delta: RawFormat,
    lut: RawFormat,
    accumulator: RawFormat,
    learning_rate: RawFormat,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum RawRounding {
    NearestEven,
    TowardZero,
    Floor,
    Stochastic,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum RawOverflow {
    Saturate,
    Wrap,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFormat {
    bits: i64,
    frac: i64,
    signed: bool,
    rounding: RawRounding,
    overflow: RawOverflow,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    entries: i64,
    input_min: f64,
    input_max: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrice {
    energy_pj: Option<f64>,
    latency_ns: Option<f64>,
    grade: Grade,
    scope: Scope,
    #[serde(default)]
    includes: Vec<String>,
    source: String,
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPriceSet {
    description: String,
    #[serde(default)]
    prices: BTreeMap<String, RawPrice>,
    static_power: Option<RawStatic>,
    #[serde(default)]
    no_static_power: bool,
    /// As the root key, for this set (default: the base set's, unless the set gives its own
    /// static power or drops it).
    static_in_prices: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStatic {
    mw_per_core: f64,
    grade: Grade,
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEmulation {
    via: Vec<String>,
    note: String,
    #[serde(default)]
    mirror: bool,
    #[serde(default)]
    free: bool,
}

/// Read and check the chip file at `path`.
///
/// # Errors
/// The file cannot be read, or [`parse`] fails.
pub fn load(path: &Path) -> Result<ChipModel, ChipError> {
    let origin = path.display().to_string();
    let text = read_text(path, &origin)?;
    parse(&text, &origin)
}

/// A chip file's text, read no further than [`crate::limits::MAX_CHIP_FILE`] bytes; only a
/// regular file is opened (a FIFO or device would block or never end).
fn read_text(path: &Path, origin: &str) -> Result<String, ChipError> {
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => {
            return Err(ChipError::file(
                origin,
                ChipErrorKind::Io,
                "cannot be read: not a regular file (a chip model is a .toml file)",
            ));
        }
        Err(e) => {
            return Err(ChipError::file(
                origin,
                ChipErrorKind::Io,
                format!("cannot be read: {e}"),
            ));
        }
        Ok(_) => {}
    }
    let bytes = crate::limits::read_bounded(path, crate::limits::MAX_CHIP_FILE)
        .map_err(|e| ChipError::file(origin, ChipErrorKind::Io, format!("cannot be read: {e}")))?;
    String::from_utf8(bytes).map_err(|e| {
        ChipError::file(
            origin,
            ChipErrorKind::Syntax,
            format!(
                "is not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

/// Parse and check chip-file `text`; `origin` names it in errors (usually the file path).
///
/// # Errors
/// TOML syntax errors (with toml's line and column), schema errors (missing, unknown or
/// mistyped keys, unknown primitive names) and design-rule violations, each naming the key.
pub fn parse(text: &str, origin: &str) -> Result<ChipModel, ChipError> {
    let attach = |x: &mut ChipError| {
        if x.line.is_none()
            && let Some(key) = &x.key
        {
            x.line = line_of_key(text, key);
        }
    };
    let attach_line = |mut e: ChipError| {
        attach(&mut e);
        for x in &mut e.more {
            attach(x);
        }
        e
    };
    // Syntax first, so that a syntax error is reported as such.
    if let Err(e) = toml::de::DeTable::parse(text) {
        return Err(ChipError::file(
            origin,
            ChipErrorKind::Syntax,
            format!("is not valid TOML: {}", e.to_string().trim_end()),
        ));
    }
    let raw: RawChip = toml::from_str(text).map_err(|e| schema_error(text, origin, &e))?;
    let model = convert(raw, origin).map_err(attach_line)?;
    model.validate().map_err(attach_line)?;
    Ok(model)
}

/// Turn a serde error from toml into a [`ChipError`] naming the dotted key.
fn schema_error(text: &str, origin: &str, e: &toml::de::Error) -> ChipError {
    let msg = e.message();
    let mut key = e.span().and_then(|span| key_at_span(text, span));
    let field = msg
        .split('`')
        .nth(1)
        .filter(|_| msg.starts_with("missing field") || msg.starts_with("unknown field"));
    let what = if msg.starts_with("missing field") {
        if let Some(f) = field {
            key = Some(match key {
                Some(k) => format!("{k}.{f}"),
                None => f.to_owned(),
            });
        }
        "is missing"
    } else if msg.starts_with("unknown field") {
        if let (Some(f), None) = (field, &key) {
            key = Some(f.to_owned());
        }
        "is not a known key"
    } else {
        "has a value of the wrong type or range"
    };
    let detail = e.to_string();
    let message = format!("{what}: {}", detail.trim_end());
    match key {
        Some(k) => ChipError::at(origin, &k, ChipErrorKind::Schema, message),
        None => ChipError::file(origin, ChipErrorKind::Schema, message),
    }
}

type Spanned<T> = toml::Spanned<T>;
type DeTable<'a> = toml::de::DeTable<'a>;
type DeValue<'a> = toml::de::DeValue<'a>;

/// The dotted key whose key or value span holds `span` most tightly.
fn key_at_span(text: &str, span: std::ops::Range<usize>) -> Option<String> {
    let doc = DeTable::parse(text).ok()?;
    let mut best: Option<(usize, usize, String)> = None; // (depth, width, path)
    walk_table(doc.get_ref(), "", 0, &span, &mut best);
    best.map(|(_, _, p)| p)
}

fn contains(outer: &std::ops::Range<usize>, inner: &std::ops::Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end && outer.start < outer.end
}

fn walk_table(
    t: &DeTable<'_>,
    prefix: &str,
    depth: usize,
    span: &std::ops::Range<usize>,
    best: &mut Option<(usize, usize, String)>,
) {
    for (k, v) in t.iter() {
        let path = if prefix.is_empty() {
            k.get_ref().to_string()
        } else {
            format!("{prefix}.{}", k.get_ref())
        };
        for s in [k.span(), v.span()] {
            if contains(&s, span) {
                let width = s.end - s.start;
                let better = match best {
                    None => true,
                    Some((d, w, _)) => depth + 1 > *d || (depth + 1 == *d && width < *w),
                };
                if better {
                    *best = Some((depth + 1, width, path.clone()));
                }
            }
        }
        walk_value(v, &path, depth + 1, span, best);
    }
}

fn walk_value(
    v: &Spanned<DeValue<'_>>,
    path: &str,
    depth: usize,
    span: &std::ops::Range<usize>,
    best: &mut Option<(usize, usize, String)>,
) {
    match v.get_ref() {
        DeValue::Table(t) => walk_table(t, path, depth, span, best),
        DeValue::Array(a) => {
            for item in a.iter() {
                walk_value(item, path, depth, span, best);
            }
        }
        _ => {}
    }
}

/// 1-based line of the deepest existing prefix of dotted `key` in `text`.
fn line_of_key(text: &str, key: &str) -> Option<usize> {
    let doc = DeTable::parse(text).ok()?;
    let mut table: &DeTable<'_> = doc.get_ref();
    let mut found: Option<usize> = None;
    for seg in key.split('.') {
        let Some((k, v)) = table.iter().find(|(k, _)| k.get_ref() == seg) else {
            break;
        };
        found = Some(k.span().start);
        match v.get_ref() {
            DeValue::Table(t) => table = t,
            _ => break,
        }
    }
    found.map(|off| text[..off.min(text.len())].matches('\n').count() + 1)
}

fn schema(origin: &str, key: &str, msg: String) -> ChipError {
    ChipError::at(origin, key, ChipErrorKind::Schema, msg)
}

fn action(origin: &str, key: &str, name: &str) -> Result<Action, ChipError> {
    name.parse::<Action>()
        .map_err(|e| schema(origin, key, format!("names {e}")))
}

/// The range errors of a file's independent values, gathered so that a file reports every
/// out-of-range capacity, format, table and decay at once (as the design-rule check does), not
/// just the first. A value in error is replaced by a stand-in that is never used: [`convert`]
/// returns the errors before building the model.
#[derive(Default)]
struct Found(Vec<ChipError>);

impl Found {
    /// `r`'s value, or `stand_in` with its error (and the errors it carries) kept.
    fn keep<T>(&mut self, r: Result<T, ChipError>, stand_in: T) -> T {
        r.unwrap_or_else(|mut e| {
            let more = std::mem::take(&mut e.more);
            self.0.push(e);
            self.0.extend(more);
            stand_in
        })
    }

    /// The first error with the others in its [`ChipError::more`], if any.
    fn into_result(self) -> Result<(), ChipError> {
        let mut all = self.0.into_iter();
        match all.next() {
            None => Ok(()),
            Some(mut first) => {
                first.more = all.collect();
                Err(first)
            }
        }
    }
}

fn capacity(origin: &str, key: &str, v: i64) -> Result<u32, ChipError> {
    match u32::try_from(v) {
        Ok(x) if x >= 1 => Ok(x),
        _ => Err(ChipError::at(
            origin,
            key,
            ChipErrorKind::DesignRule,
            format!("= {v} is out of range (allowed 1..=4294967295)"),
        )),
    }
}

fn format(origin: &str, name: &str, r: &RawFormat) -> Result<Format, ChipError> {
    let key = format!("formats.{name}");
    drc::check_format_bits(origin, &key, r.bits, r.frac)?;
    Ok(Format {
        // In range 1..=40 and 0..=40 after the check above.
        bits: r.bits as u8,
        frac: r.frac as u8,
        signed: r.signed,
        rounding: match r.rounding {
            RawRounding::NearestEven => Rounding::NearestEven,
            RawRounding::TowardZero => Rounding::TowardZero,
            RawRounding::Floor => Rounding::Floor,
            RawRounding::Stochastic => Rounding::Stochastic,
        },
        overflow: match r.overflow {
            RawOverflow::Saturate => Overflow::Saturate,
            RawOverflow::Wrap => Overflow::Wrap,
        },
    })
}

fn convert(raw: RawChip, origin: &str) -> Result<ChipModel, ChipError> {
    let mut found = Found::default();
    let mut cap = |key: &str, v: i64| found.keep(capacity(origin, key, v), 1);
    let mesh = Mesh {
        cols: cap("mesh.cols", raw.mesh.cols),
        rows: cap("mesh.rows", raw.mesh.rows),
    };
    let system = match &raw.system {
        None => System {
            chips_x: 1,
            chips_y: 1,
        },
        Some(s) => System {
            chips_x: cap("system.chips_x", s.chips_x),
            chips_y: cap("system.chips_y", s.chips_y),
        },
    };
    let core = core_caps(&raw.core, origin, &mut found);
    let soma = soma(raw.soma.as_ref(), origin, &mut found);
    let router = router(raw.router.as_ref(), origin, &mut found);
    let timing = Timing {
        barrier_ns_per_core: raw
            .timing
            .as_ref()
            .and_then(|t| t.barrier_ns_per_core)
            .unwrap_or(0.0),
    };
    let f = &raw.formats;
    // Stand-in for a format in error (never used: see `Found`).
    let bad = Format::new(1, 0, true, Rounding::NearestEven, Overflow::Saturate);
    let mut fmt = |name: &str, r: &RawFormat| found.keep(format(origin, name, r), bad);
    let formats = Formats {
        weight: fmt("weight", &f.weight),
        membrane: fmt("membrane", &f.membrane),
        rate: fmt("rate", &f.rate),
        credit: fmt("credit", &f.credit),
        delta: fmt("delta", &f.delta),
        lut: fmt("lut", &f.lut),
        accumulator: fmt("accumulator", &f.accumulator),
        learning_rate: fmt("learning_rate", &f.learning_rate),
    };
    let stand_in = TableSpec {
        entries: 2,
        input_min: 0.0,
        input_max: 1.0,
    };
    let balance_table = found.keep(table(origin, "balance_table", &raw.balance_table), stand_in);
    let activation_table = raw
        .activation_table
        .as_ref()
        .map(|t| found.keep(table(origin, "activation_table", t), stand_in));
    found.into_result()?;
    let mut missing = BTreeSet::new();
    for name in &raw.missing {
        let a = action(origin, "missing", name)?;
        if !missing.insert(a) {
            return Err(schema(origin, "missing", format!("lists {a} twice")));
        }
    }
    let mut raw = raw;
    let (price_set, price_sets, overlay_keys) = apply_price_set(&mut raw, origin)?;
    let prices = prices(raw.prices, &overlay_keys, origin)?;
    let emulations = emulations(raw.emulations, origin)?;
    Ok(ChipModel {
        name: raw.name,
        description: raw.description,
        process: raw.process,
        mesh,
        core,
        formats,
        balance_table,
        activation_table,
        soma,
        router,
        timing,
        system,
        prices,
        static_power: raw.static_power.map(|s| StaticPower {
            mw_per_core: s.mw_per_core,
            grade: s.grade,
            source: s.source,
        }),
        static_in_prices: raw.static_in_prices,
        price_set,
        price_sets,
        missing,
        emulations,
        origin: origin.to_owned(),
    })
}

/// `[core]`: capacities, queue, accumulator, crossbar axon types, packed-placement flags.
fn core_caps(c: &RawCore, origin: &str, found: &mut Found) -> CoreCaps {
    let mut cap = |key: &str, v: i64| found.keep(capacity(origin, key, v), 1);
    let input_axons = cap("core.input_axons", c.input_axons);
    let neurons = cap("core.neurons", c.neurons);
    let synapses = cap("core.synapses", c.synapses);
    let fanout = cap("core.fanout", c.fanout);
    let input_queue = c.input_queue.map(|q| cap("core.input_queue", q));
    let neuron_fanin = c.neuron_fanin.map(|f| cap("core.neuron_fanin", f));
    CoreCaps {
        neurons,
        synapses,
        input_axons,
        fanout,
        graded_events: c.graded_events,
        input_queue: input_queue.unwrap_or(input_axons.min(drc::MAX_INPUT_QUEUE)),
        accumulator: match c.accumulator {
            Some(RawAccumulate::PerAdd) => AccumulateSpec::PerAdd,
            Some(RawAccumulate::Wide) | None => AccumulateSpec::Wide,
        },
        axon_types: match c.axon_types {
            None => None,
            Some(t) if (1..=16).contains(&t) => Some(t as u32),
            Some(t) => {
                let e = schema(
                    origin,
                    "core.axon_types",
                    format!("is {t}; a crossbar has 1 to 16 axon types"),
                );
                found.keep(Err(e), None)
            }
        },
        external_inputs: c.external_inputs.unwrap_or(false),
        recurrent: c.recurrent.unwrap_or(false),
        weight_sharing: match (c.weight_sharing, c.axon_types) {
            (Some(true), Some(t)) => {
                let e = schema(
                    origin,
                    "core.weight_sharing",
                    format!(
                        "is true on a binary crossbar (core.axon_types = {t}), which stores a \
                         connection per synapse and a weight per neuron and axon type: it has no \
                         kernel to share"
                    ),
                );
                found.keep(Err(e), false)
            }
            (w, _) => w.unwrap_or(false),
        },
        neuron_fanin,
        dendrite_compartments: match c.dendrite_compartments {
            None => 1,
            Some(k) if (1..=i64::from(drc::MAX_COMPARTMENTS)).contains(&k) => k as u32,
            Some(k) => {
                let e = schema(
                    origin,
                    "core.dendrite_compartments",
                    format!(
                        "is {k}; a neuron has 1 to {} compartments",
                        drc::MAX_COMPARTMENTS
                    ),
                );
                found.keep(Err(e), 1)
            }
        },
    }
}

/// A table's geometry, its entry count range-checked.
fn table(origin: &str, key: &str, t: &RawTable) -> Result<TableSpec, ChipError> {
    if !drc::TABLE_ENTRIES_RANGE.contains(&t.entries) {
        return Err(ChipError::at(
            origin,
            &format!("{key}.entries"),
            ChipErrorKind::DesignRule,
            format!("= {} is out of range (allowed 2..=65536)", t.entries),
        ));
    }
    Ok(TableSpec {
        entries: t.entries as u32,
        input_min: t.input_min,
        input_max: t.input_max,
    })
}

/// `[soma]`: the spiking neuron program and its 12-bit decays (default: integrate-and-fire).
fn soma(raw: Option<&RawSoma>, origin: &str, found: &mut Found) -> SomaSpec {
    let mut small = |key: &str, v: Option<i64>, max: i64| {
        let r = match v {
            None => Err(schema(origin, key, "is missing".to_owned())),
            Some(v) if (0..=max).contains(&v) => Ok(v as u16),
            Some(v) => Err(ChipError::at(
                origin,
                key,
                ChipErrorKind::DesignRule,
                format!("= {v} is out of range (allowed 0..={max})"),
            )),
        };
        found.keep(r, 0)
    };
    match raw {
        None => SomaSpec::If,
        Some(r) => match r.model {
            RawSomaModel::If => SomaSpec::If,
            RawSomaModel::Lif => SomaSpec::Lif {
                decay: small("soma.decay", r.decay, 4096),
            },
            RawSomaModel::CubaLif => SomaSpec::CubaLif {
                du: small("soma.du", r.du, 4095),
                dv: small("soma.dv", r.dv, 4095),
            },
        },
    }
}

/// `[router]`: buffer depth, link bandwidth, overflow policy.
fn router(raw: Option<&RawRouter>, origin: &str, found: &mut Found) -> RouterSpec {
    let mut cap = |key: &str, v: i64| found.keep(capacity(origin, key, v), 1);
    match raw {
        None => RouterSpec::default(),
        Some(r) => RouterSpec {
            buffer_depth: r.buffer_depth.map(|d| cap("router.buffer_depth", d)),
            link_packets_per_cycle: match r.link_packets_per_cycle {
                Some(v) => cap("router.link_packets_per_cycle", v),
                None => 1,
            },
            overflow: match r.overflow {
                Some(RawPolicy::Drop) => OverflowPolicy::Drop,
                Some(RawPolicy::Stall) | None => OverflowPolicy::Stall,
            },
        },
    }
}

/// The price set in force laid over `[prices]` and `[static_power]`: its name, every set's
/// name and description, and the keys the overlaid prices came from (for errors).
#[allow(clippy::type_complexity)]
fn apply_price_set(
    raw: &mut RawChip,
    origin: &str,
) -> Result<(String, Vec<(String, String)>, BTreeMap<String, String>), ChipError> {
    if raw.price_sets.contains_key(BASE_PRICE_SET) {
        return Err(schema(
            origin,
            &format!("price_sets.{BASE_PRICE_SET}"),
            format!("'{BASE_PRICE_SET}' names the file's own [prices]; choose another name"),
        ));
    }
    for (set, ps) in &raw.price_sets {
        if ps.no_static_power && ps.static_power.is_some() {
            return Err(schema(
                origin,
                &format!("price_sets.{set}.no_static_power"),
                "is set beside a static_power table of the same set: choose one".to_owned(),
            ));
        }
    }
    let price_sets: Vec<(String, String)> = std::iter::once((
        BASE_PRICE_SET.to_owned(),
        "the [prices] and [static_power] tables of the file".to_owned(),
    ))
    .chain(
        raw.price_sets
            .iter()
            .map(|(k, v)| (k.clone(), v.description.clone())),
    )
    .collect();
    let price_set = raw
        .price_set
        .clone()
        .unwrap_or_else(|| BASE_PRICE_SET.to_owned());
    let mut overlay_keys = BTreeMap::new();
    if price_set != BASE_PRICE_SET {
        let mut chosen = raw.price_sets.remove(&price_set).ok_or_else(|| {
            let names: Vec<&str> = price_sets.iter().map(|(n, _)| n.as_str()).collect();
            schema(
                origin,
                "price_set",
                format!(
                    "names '{price_set}', which is not a price set of this file (one of {})",
                    names.join(", ")
                ),
            )
        })?;
        for (name, p) in std::mem::take(&mut chosen.prices) {
            overlay_keys.insert(
                name.clone(),
                format!("price_sets.{price_set}.prices.{name}"),
            );
            raw.prices.insert(name, p);
        }
        if chosen.no_static_power || chosen.static_power.is_some() {
            raw.static_in_prices = false;
        }
        if let Some(inside) = chosen.static_in_prices {
            raw.static_in_prices = inside;
        }
        if chosen.no_static_power {
            raw.static_power = None;
        }
        if let Some(sp) = chosen.static_power {
            raw.static_power = Some(sp);
        }
    }
    // Every set's names are checked, not only the one in force.
    for (set, ps) in &raw.price_sets {
        for name in ps.prices.keys() {
            action(origin, &format!("price_sets.{set}.prices.{name}"), name)?;
        }
    }
    Ok((price_set, price_sets, overlay_keys))
}

/// `[prices]` by action, each name and `includes` checked; `keys` names where an overlaid
/// price came from.
fn prices(
    raw: BTreeMap<String, RawPrice>,
    keys: &BTreeMap<String, String>,
    origin: &str,
) -> Result<BTreeMap<Action, Price>, ChipError> {
    let mut prices = BTreeMap::new();
    for (name, p) in raw {
        let key = keys
            .get(&name)
            .cloned()
            .unwrap_or_else(|| format!("prices.{name}"));
        let a = action(origin, &key, &name)?;
        let includes = p
            .includes
            .iter()
            .map(|n| action(origin, &format!("{key}.includes"), n))
            .collect::<Result<Vec<_>, _>>()?;
        prices.insert(
            a,
            Price {
                energy_pj: p.energy_pj,
                latency_ns: p.latency_ns,
                grade: p.grade,
                scope: p.scope,
                includes,
                source: p.source,
                note: p.note,
            },
        );
    }
    Ok(prices)
}

/// `[emulations]` by action, each name and `via` checked.
fn emulations(
    raw: BTreeMap<String, RawEmulation>,
    origin: &str,
) -> Result<BTreeMap<Action, Emulation>, ChipError> {
    let mut emulations = BTreeMap::new();
    for (name, e) in raw {
        let key = format!("emulations.{name}");
        let a = action(origin, &key, &name)?;
        let via = e
            .via
            .iter()
            .map(|n| action(origin, &format!("{key}.via"), n))
            .collect::<Result<Vec<_>, _>>()?;
        emulations.insert(
            a,
            Emulation {
                via,
                note: e.note,
                mirror: e.mirror,
                free: e.free,
            },
        );
    }
    Ok(emulations)
}

/// The name of a chip file's own `[prices]` and `[static_power]` as a price set.
pub(super) const BASE_PRICE_SET: &str = "base";

/// The directory of shipped chip models: `$ACCORD_HW_MODELS` if set and non-empty, else the
/// crate's `hw_models/`.
pub fn builtin_dir() -> PathBuf {
    match std::env::var_os(HW_MODELS_ENV) {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/hw_models")),
    }
}

/// Names (file stems) of the `*.toml` models in `dir`, sorted.
pub fn models_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .is_some_and(|x| x.eq_ignore_ascii_case("toml"))
        })
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    names
}

/// Names of the shipped models in [`builtin_dir`].
pub fn shipped_models() -> Vec<String> {
    models_in(&builtin_dir())
}

/// True if `s` is to be read as a path rather than a bare model name.
fn looks_like_path(s: &str) -> bool {
    s.contains('/') || s.contains('\\') || s.ends_with(".toml")
}

/// Resolve a bare model name (`loihi`) to `<dir>/<name>.toml`, or return a path (anything with a
/// path separator or ending in `.toml`) as is. An unknown name is an error listing the models in
/// `dir`.
///
/// # Errors
/// [`ChipErrorKind::UnknownModel`] for a bare name with no `<dir>/<name>.toml`.
pub fn resolve_in(dir: &Path, name_or_path: &str) -> Result<PathBuf, ChipError> {
    if looks_like_path(name_or_path) {
        return Ok(PathBuf::from(name_or_path));
    }
    let p = dir.join(format!("{name_or_path}.toml"));
    if p.is_file() {
        return Ok(p);
    }
    let known = models_in(dir);
    Err(ChipError::file(
        &format!("'{name_or_path}'"),
        ChipErrorKind::UnknownModel,
        format!(
            "is not a shipped chip model (models in {}: {}; or give a path to a .toml file)",
            dir.display(),
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        ),
    ))
}

/// [`resolve_in`] the [`builtin_dir`].
///
/// # Errors
/// As [`resolve_in`].
pub fn resolve(name_or_path: &str) -> Result<PathBuf, ChipError> {
    resolve_in(&builtin_dir(), name_or_path)
}

/// Resolve a name or path and load the model.
///
/// # Errors
/// As [`resolve`] and [`load`].
pub fn open(name_or_path: &str) -> Result<ChipModel, ChipError> {
    load(&resolve(name_or_path)?)
}

/// Resolve and load a model with overrides applied to its TOML before parsing: each
/// `(dotted.key, value)` replaces (or adds) one value, typed as an integer, a float, a boolean
/// or else a string. The result goes through the same schema and design-rule checks as a file,
/// so a bad override is reported like a bad file entry (key, value, allowed range), with
/// `origin` saying it came from overrides.
///
/// ```
/// let chip = accord::chip::open_with(
///     "balance-core",
///     &[("formats.weight.bits".into(), "8".into()), ("formats.weight.frac".into(), "7".into())],
/// )
/// .unwrap();
/// assert_eq!(chip.formats.weight.bits, 8);
/// let err = accord::chip::open_with("balance-core", &[("formats.weight.bits".into(), "64".into())]);
/// assert!(err.unwrap_err().to_string().contains("1..=40"));
/// ```
///
/// # Errors
/// As [`open`]; a key whose parent is not a table; any check the edited model fails.
pub fn open_with(
    name_or_path: &str,
    overrides: &[(String, String)],
) -> Result<ChipModel, ChipError> {
    let path = resolve(name_or_path)?;
    let origin = path.display().to_string();
    let text = read_text(&path, &origin)?;
    if overrides.is_empty() {
        return parse(&text, &origin);
    }
    let mut doc: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        ChipError::file(&origin, ChipErrorKind::Syntax, e.to_string())
    })?;
    for (key, value) in overrides {
        let typed = if let Ok(i) = value.parse::<i64>() {
            toml::Value::Integer(i)
        } else if let Ok(f) = value.parse::<f64>() {
            toml::Value::Float(f)
        } else if let Ok(b) = value.parse::<bool>() {
            toml::Value::Boolean(b)
        } else {
            toml::Value::String(value.clone())
        };
        let parts: Vec<&str> = key.split('.').collect();
        let mut table = &mut doc;
        for part in &parts[..parts.len() - 1] {
            table = table
                .entry(part.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .ok_or_else(|| {
                    ChipError::file(
                        &origin,
                        ChipErrorKind::Schema,
                        format!("override '{key}={value}': '{part}' is not a table"),
                    )
                })?;
        }
        table.insert(parts[parts.len() - 1].to_string(), typed);
    }
    let edited = toml::to_string(&doc)
        .map_err(|e| ChipError::file(&origin, ChipErrorKind::Syntax, e.to_string()))?;
    let names: Vec<String> = overrides.iter().map(|(k, v)| format!("{k}={v}")).collect();
    parse(
        &edited,
        &format!("{origin} with overrides {}", names.join(", ")),
    )
}
