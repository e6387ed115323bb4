//! The chip model: mesh, core capacities, number formats, price table, missing primitives.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};

use accord_firmware::arith::{Format, Overflow, Rounding};
use serde::{Deserialize, Serialize};

use super::action::{Action, TRAINING_ACTIONS};
use super::error::{ChipError, ChipErrorKind};

/// A 2-D mesh of cores with dimension-order (X then Y) routing. Core `k` sits at column
/// `k % cols`, row `k / cols`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Mesh {
    /// Cores per row (X extent), ≥ 1.
    pub cols: u32,
    /// Rows of cores (Y extent), ≥ 1.
    pub rows: u32,
}

impl Mesh {
    /// Number of cores, `cols · rows`.
    pub fn cores(&self) -> u64 {
        u64::from(self.cols) * u64::from(self.rows)
    }

    /// `(column, row)` of core `core` (row-major numbering).
    pub fn position(&self, core: u64) -> (u64, u64) {
        let cols = u64::from(self.cols.max(1));
        (core % cols, core / cols)
    }

    /// Router links a packet crosses from core `from` to core `to` under dimension-order
    /// routing: the Manhattan distance. Zero within a core.
    pub fn hops(&self, from: u64, to: u64) -> u64 {
        hops(u64::from(self.cols), from, to)
    }
}

/// Router links from core `from` to core `to` on a mesh `cols` wide (row-major core ids) under
/// dimension-order routing: the Manhattan distance, saturating. Zero within a core.
pub fn hops(cols: u64, from: u64, to: u64) -> u64 {
    let cols = cols.max(1);
    let (ax, ay) = (from % cols, from / cols);
    let (bx, by) = (to % cols, to / cols);
    ax.abs_diff(bx).saturating_add(ay.abs_diff(by))
}

/// Capacities of one core.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct CoreCaps {
    /// Neurons (compartments) per core, ≥ 1.
    pub neurons: u32,
    /// Synapses per core (entries of the synapse memory), ≥ 1.
    pub synapses: u32,
    /// Input axons (fan-in axon lists / synapse rows) per core, ≥ 1.
    pub input_axons: u32,
    /// Fan-out routing entries (source neuron → destination core) per core, ≥ 1.
    pub fanout: u32,
    /// True if an event can carry a graded payload (a rate or a credit); false for binary spikes,
    /// in which case rates and credits must be rate-coded over ticks.
    pub graded_events: bool,
    /// Packets the core's input queue holds (1..=4096; default: the input axons, capped).
    pub input_queue: u32,
    /// How the multiply-accumulate unit applies the accumulator format.
    pub accumulator: AccumulateSpec,
    /// A binary crossbar with this many axon types (`core.axon_types`, TrueNorth: 4): a
    /// synapse is connected or not, each input axon has a type and each neuron one weight per
    /// type, so real weights are fitted to that form when a net is built (the run reports the
    /// fit). `None`: a weight per synapse.
    pub axon_types: Option<u32>,
    /// The network's inputs arrive from off-chip on the cores' input axons
    /// (`core.external_inputs`, ReckOn's AER inputs): the input layer takes no neuron or
    /// routing entry.
    pub external_inputs: bool,
    /// A core's neurons reach the core's own neurons through an internal synapse array
    /// (`core.recurrent`, ReckOn's recurrent weights): such a projection uses no input axon
    /// and no routing entry.
    pub recurrent: bool,
    /// A core stores a convolution's kernel once per output channel it hosts, not once per
    /// synapse (`core.weight_sharing`; Loihi's population axons, as nengo-loihi maps
    /// convolutions): a [shared](crate::mapping#weight-sharing) projection's synapse memory
    /// on a core is its channels × the kernel's weights. Synaptic operations are unchanged.
    pub weight_sharing: bool,
    /// Synapses one neuron (one compartment) takes (`core.neuron_fanin`; `None`: no limit of
    /// its own, only the core's). A fan-in over it is built of compartments or split across
    /// cores ([`crate::mapping#dendritic-accumulation`]).
    pub neuron_fanin: Option<u32>,
    /// Compartments a neuron may be built of on its core, their sums joined in its dendrite
    /// within the timestep (`core.dendrite_compartments`, Loihi's multi-compartment joins;
    /// default 1: none). Each takes a neuron slot and a compartment update per step.
    pub dendrite_compartments: u32,
}

/// How a core's multiply-accumulate unit applies the accumulator format (`core.accumulator`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AccumulateSpec {
    /// Every product rounded to the accumulator's fractional bits, every add fitted to its range
    /// (saturation or wrap counted per add): a fixed-width MAC.
    PerAdd,
    /// A declared wide accumulator: products summed exactly, the accumulator format applied once
    /// when a sum is read out.
    Wide,
}

/// The spiking soma program of the chip's cores (`[soma]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "model", rename_all = "kebab-case")]
pub enum SomaSpec {
    /// Integrate-and-fire, threshold 1, reset by subtraction.
    If,
    /// Leaky integrate-and-fire with a 12-bit voltage decay (0..=4096), reset by subtraction.
    Lif {
        /// Voltage decay per tick, in 1/4096.
        decay: u16,
    },
    /// Loihi's current-based LIF, bit-identical to Lava 0.10's `PyLifModelBitAcc`: 24-bit
    /// current and voltage, 12-bit decays (0..=4095), `v > threshold`, reset to zero.
    CubaLif {
        /// Current decay (Lava `du`).
        du: u16,
        /// Voltage decay (Lava `dv`).
        dv: u16,
    },
}

impl SomaSpec {
    /// The name as written in chip files.
    pub const fn name(self) -> &'static str {
        match self {
            SomaSpec::If => "if",
            SomaSpec::Lif { .. } => "lif",
            SomaSpec::CubaLif { .. } => "cuba-lif",
        }
    }
}

/// What a router does with a packet that finds its next buffer full (`router.overflow`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OverflowPolicy {
    /// The packet waits (back-pressure); the timestep takes longer.
    Stall,
    /// The packet is discarded and counted against the link or queue it could not enter.
    Drop,
}

/// The routers of the mesh (`[router]`): store-and-forward, dimension-order routes, one FIFO per
/// output port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct RouterSpec {
    /// Packets each output-port FIFO holds (`None`: unbounded).
    pub buffer_depth: Option<u32>,
    /// Packets a link (and a core's injection and ejection port) moves per router cycle.
    pub link_packets_per_cycle: u32,
    /// Full-buffer policy.
    pub overflow: OverflowPolicy,
}

impl Default for RouterSpec {
    fn default() -> Self {
        RouterSpec {
            buffer_depth: None,
            link_packets_per_cycle: 1,
            overflow: OverflowPolicy::Stall,
        }
    }
}

/// Timing terms beyond the per-action latencies (`[timing]`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Timing {
    /// Extra barrier latency per core taking part beyond the first, ns (a barrier that grows
    /// with the number of cores).
    pub barrier_ns_per_core: f64,
}

/// Several chips joined into one system (`[system]`): a grid of `chips_x × chips_y` chips, each
/// the `[mesh]`; a link between two chips is an `interchip_hop`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct System {
    /// Chips along X.
    pub chips_x: u32,
    /// Chips along Y.
    pub chips_y: u32,
}

/// The number format of every state variable of the rule (ARCHITECTURE.md §3).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Formats {
    /// Synaptic weight `w_ij`.
    #[serde(serialize_with = "ser_format")]
    pub weight: Format,
    /// Membrane potential / net input `u_i`.
    #[serde(serialize_with = "ser_format")]
    pub membrane: Format,
    /// Rate or presynaptic trace `r_j`.
    #[serde(serialize_with = "ser_format")]
    pub rate: Format,
    /// Credit `c_i`.
    #[serde(serialize_with = "ser_format")]
    pub credit: Format,
    /// Retrograde factor `δ_i = g(u_i)·c_i`.
    #[serde(serialize_with = "ser_format")]
    pub delta: Format,
    /// Balance-table entry `g(u)`.
    #[serde(serialize_with = "ser_format")]
    pub lut: Format,
    /// Synaptic accumulator (Σ w·r, Σ w·δ).
    #[serde(serialize_with = "ser_format")]
    pub accumulator: Format,
    /// Learning rate `η`.
    #[serde(serialize_with = "ser_format")]
    pub learning_rate: Format,
}

impl Formats {
    /// The names of the formats as written in chip files, in the order of [`Formats::entries`].
    pub const NAMES: [&'static str; 8] = [
        "weight",
        "membrane",
        "rate",
        "credit",
        "delta",
        "lut",
        "accumulator",
        "learning_rate",
    ];

    /// `(name, format)` pairs in file order.
    pub fn entries(&self) -> [(&'static str, &Format); 8] {
        [
            ("weight", &self.weight),
            ("membrane", &self.membrane),
            ("rate", &self.rate),
            ("credit", &self.credit),
            ("delta", &self.delta),
            ("lut", &self.lut),
            ("accumulator", &self.accumulator),
            ("learning_rate", &self.learning_rate),
        ]
    }
}

/// The balance table `g(u)`: `entries` values on a uniform grid over `[input_min, input_max]`
/// of the net input `u`; inputs outside the range use the end entries.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct TableSpec {
    /// Number of entries, 2..=65536.
    pub entries: u32,
    /// Lowest net input covered (finite, < `input_max`).
    pub input_min: f64,
    /// Highest net input covered (finite, > `input_min`).
    pub input_max: f64,
}

/// Evidence grade of a price (hardware-anchors.md, "How to read this file").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Grade {
    /// Simulation before silicon (e.g. Loihi's Table 2).
    PreSilicon,
    /// One operation measured on its own on silicon.
    MeasuredPerTerm,
    /// Total measured chip energy divided by events at one operating point.
    MeasuredAllIn,
    /// Our own model from generic figures (e.g. Horowitz 45 nm), derivation in the file.
    DerivedModel,
    /// Per-event costs fitted by others to measured whole-chip energy (e.g. SANA-FE's Loihi
    /// costs): not measured one by one, but held against silicon.
    FittedToSilicon,
}

impl Grade {
    /// The grade as written in chip files.
    pub const fn name(self) -> &'static str {
        match self {
            Grade::PreSilicon => "pre-silicon",
            Grade::MeasuredPerTerm => "measured-per-term",
            Grade::MeasuredAllIn => "measured-all-in",
            Grade::DerivedModel => "derived-model",
            Grade::FittedToSilicon => "fitted-to-silicon",
        }
    }
}

impl fmt::Display for Grade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a price covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// The action alone; other actions are charged separately.
    PerTerm,
    /// The action plus the actions listed in `includes`, which are then charged zero by
    /// declaration (and must not carry their own energy price).
    AllIn,
}

impl Scope {
    /// The scope as written in chip files.
    pub const fn name(self) -> &'static str {
        match self {
            Scope::PerTerm => "per-term",
            Scope::AllIn => "all-in",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The price of one action. Energy and latency are each optional (a source may give only one),
/// but at least one is present; an absent energy makes the action *unpriced* in the energy report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Price {
    /// Energy per action in picojoules (finite, ≥ 0), if known.
    pub energy_pj: Option<f64>,
    /// Latency per action in nanoseconds (finite, ≥ 0), if known.
    pub latency_ns: Option<f64>,
    /// Evidence grade.
    pub grade: Grade,
    /// Per-term or all-in.
    pub scope: Scope,
    /// For an all-in price: the actions whose energy it already covers.
    pub includes: Vec<Action>,
    /// Where the number comes from (citation), never empty.
    pub source: String,
    /// Derivation or caveat.
    pub note: Option<String>,
}

/// Static (leakage) power.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StaticPower {
    /// Milliwatts per core (finite, ≥ 0).
    pub mw_per_core: f64,
    /// Evidence grade.
    pub grade: Grade,
    /// Citation and derivation.
    pub source: String,
}

/// How a missing primitive is emulated: each action in `via` is performed (and charged) once per
/// emulated action.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Emulation {
    /// The actions performed instead, with repetition; empty only when `free` declares the
    /// action costless on this chip (and the note says why).
    pub via: Vec<Action>,
    /// Declared free (`free = true` with `via = []`): an empty `via` is never taken as free
    /// by omission.
    pub free: bool,
    /// The emulation keeps a mirror copy of every learnable synapse (e.g. a retrograde walk run
    /// as forward synapses at the presynaptic core): every synapse update is also written to the
    /// mirror, and the mirror doubles the learnable synapses' memory.
    pub mirror: bool,
    /// How the emulation works and what it costs or misses.
    pub note: String,
}

/// What an action costs on a chip, as resolved by [`ChipModel::charge`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Charge<'a> {
    /// The action has its own energy price.
    Priced(&'a Price),
    /// The action is missing and emulated: charge each `via` action instead (resolve each with
    /// [`ChipModel::charge`]).
    Emulated(&'a Emulation),
    /// Zero by declaration: the all-in price of `by` already covers it.
    Included {
        /// The action whose all-in price covers this one.
        by: Action,
    },
    /// Supported, but no energy is known: list it in the report, never price it at zero.
    Unpriced,
    /// Missing and not emulated: the chip cannot perform it.
    Missing,
}

/// A chip model loaded from `hw_models/<name>.toml` and checked by the design rules.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChipModel {
    /// Short name, e.g. `loihi`.
    pub name: String,
    /// One-paragraph description.
    pub description: String,
    /// Process node and operating point the prices hold at.
    pub process: String,
    /// The core mesh.
    pub mesh: Mesh,
    /// Per-core capacities.
    pub core: CoreCaps,
    /// Number formats.
    pub formats: Formats,
    /// The balance table.
    pub balance_table: TableSpec,
    /// The activation table for smooth graded activations (sigmoid, tanh), entries in the rate
    /// format; `None`: the chip has none, and only piecewise-linear activations run graded.
    pub activation_table: Option<TableSpec>,
    /// The spiking soma program.
    pub soma: SomaSpec,
    /// The routers.
    pub router: RouterSpec,
    /// Timing terms.
    pub timing: Timing,
    /// Chips joined into a system.
    pub system: System,
    /// Price table.
    pub prices: BTreeMap<Action, Price>,
    /// Static power, if modelled.
    pub static_power: Option<StaticPower>,
    /// The per-event prices already hold the static power (all-in figures measured as total
    /// chip power over events): the priced energy is then a total, and no dynamic part can be
    /// told apart (`static_in_prices = true`).
    pub static_in_prices: bool,
    /// The price set in force ([`prices`](Self::prices) and
    /// [`static_power`](Self::static_power) are that set's): `base`, or one of the file's
    /// `[price_sets]`, chosen by its `price_set` key (`--set price_set=NAME`).
    pub price_set: String,
    /// Every price set the file offers: name and description (`base` first).
    pub price_sets: Vec<(String, String)>,
    /// Primitives the chip lacks.
    pub missing: BTreeSet<Action>,
    /// Emulations of missing primitives.
    pub emulations: BTreeMap<Action, Emulation>,
    /// The file the model was loaded from (or the origin given to [`super::parse`]).
    pub origin: String,
}

impl ChipModel {
    /// The whole system's core grid: `[mesh]` times `[system]` (one chip: the mesh itself).
    /// Core `k` of the grid sits at column `k % cols`, row `k / cols`.
    pub fn grid(&self) -> Mesh {
        Mesh {
            cols: self.mesh.cols.saturating_mul(self.system.chips_x),
            rows: self.mesh.rows.saturating_mul(self.system.chips_y),
        }
    }

    /// The chip (index in the system, row-major) holding grid column `x`, row `y`.
    pub fn chip_of(&self, x: u64, y: u64) -> u64 {
        let cx = x / u64::from(self.mesh.cols.max(1));
        let cy = y / u64::from(self.mesh.rows.max(1));
        cy * u64::from(self.system.chips_x) + cx
    }

    /// Whether the retrograde walk is emulated with mirror rows (every synapse update written
    /// twice).
    pub fn mirror_rows(&self) -> bool {
        self.is_emulated(Action::RetroSop)
            && self
                .emulations
                .get(&Action::RetroSop)
                .is_some_and(|e| e.mirror)
    }

    /// True if the chip can perform `action`: natively (priced or not) or by a declared emulation.
    pub fn supports(&self, action: Action) -> bool {
        !self.missing.contains(&action) || self.emulations.contains_key(&action)
    }

    /// True if `action` is missing on this chip and performed by an emulation.
    pub fn is_emulated(&self, action: Action) -> bool {
        self.missing.contains(&action) && self.emulations.contains_key(&action)
    }

    /// The actions a run needs: [`TRAINING_ACTIONS`] or [`super::INFERENCE_ACTIONS`], plus
    /// `rng_draw` when training with a stochastically rounding format.
    pub fn required_actions(&self, training: bool) -> Vec<Action> {
        let mut need: Vec<Action> = if training {
            TRAINING_ACTIONS.to_vec()
        } else {
            super::INFERENCE_ACTIONS.to_vec()
        };
        let stochastic = self
            .formats
            .entries()
            .iter()
            .any(|(_, f)| f.rounding == Rounding::Stochastic);
        if training && stochastic {
            need.push(Action::RngDraw);
        }
        need
    }

    /// Ok if every action in `actions` is supported; otherwise an error naming every missing,
    /// non-emulated primitive, e.g. `truenorth.toml: chip 'truenorth' lacks the primitives
    /// lut_read, retro_sop, … needed for training; inference still runs`.
    ///
    /// # Errors
    /// [`ChipErrorKind::MissingPrimitives`] if any action is missing without emulation.
    pub fn require(&self, actions: &[Action]) -> Result<(), ChipError> {
        let mut lacking: Vec<Action> = actions
            .iter()
            .copied()
            .filter(|a| !self.supports(*a))
            .collect();
        lacking.sort();
        lacking.dedup();
        if lacking.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = lacking.iter().map(|a| a.name()).collect();
        let inference_ok = super::INFERENCE_ACTIONS.iter().all(|a| self.supports(*a));
        let tail = if inference_ok {
            "needed for training; inference still runs"
        } else {
            "needed to run"
        };
        Err(ChipError::file(
            &self.origin,
            ChipErrorKind::MissingPrimitives,
            format!(
                "chip '{}' lacks the primitive{} {} {tail} (declared in `missing`, no emulation)",
                self.name,
                if names.len() == 1 { "" } else { "s" },
                names.join(", "),
            ),
        ))
    }

    /// The all-in price that covers `action`, if any (the first in ledger order).
    pub fn included_by(&self, action: Action) -> Option<Action> {
        self.prices
            .iter()
            .find(|(_, p)| p.scope == Scope::AllIn && p.includes.contains(&action))
            .map(|(a, _)| *a)
    }

    /// Resolve the energy charge of one `action`: its own energy price; the emulation to charge
    /// instead; zero by declaration because an all-in price covers it; unpriced; or missing.
    pub fn charge(&self, action: Action) -> Charge<'_> {
        if self.missing.contains(&action) {
            return match self.emulations.get(&action) {
                Some(e) => Charge::Emulated(e),
                None => Charge::Missing,
            };
        }
        if let Some(p) = self.prices.get(&action)
            && p.energy_pj.is_some()
        {
            return Charge::Priced(p);
        }
        match self.included_by(action) {
            Some(by) => Charge::Included { by },
            None => Charge::Unpriced,
        }
    }

    /// Energy of one `action` in pJ when it resolves to known prices: its own price, zero when
    /// included in an all-in price, or the sum over an emulation's `via` actions. `None` if the
    /// action or any action it resolves to is unpriced or missing.
    pub fn energy_pj(&self, action: Action) -> Option<f64> {
        match self.charge(action) {
            Charge::Priced(p) => p.energy_pj,
            Charge::Included { .. } => Some(0.0),
            Charge::Emulated(e) => e.via.iter().map(|a| self.direct_energy(*a)).sum(),
            Charge::Unpriced | Charge::Missing => None,
        }
    }

    fn direct_energy(&self, action: Action) -> Option<f64> {
        match self.charge(action) {
            Charge::Priced(p) => p.energy_pj,
            Charge::Included { .. } => Some(0.0),
            _ => None,
        }
    }

    /// Latency of one `action` in ns: its own price's latency, or the sum over an emulation's
    /// `via` actions. `None` if unknown.
    pub fn latency_ns(&self, action: Action) -> Option<f64> {
        if let Some(e) = self.emulations.get(&action)
            && self.missing.contains(&action)
        {
            return e
                .via
                .iter()
                .map(|a| self.prices.get(a).and_then(|p| p.latency_ns))
                .sum();
        }
        self.prices.get(&action).and_then(|p| p.latency_ns)
    }

    /// Supported actions with no energy price and not covered by an all-in price, in ledger
    /// order: the list a report prints as "unpriced".
    pub fn unpriced(&self) -> Vec<Action> {
        let single = self.system.chips_x * self.system.chips_y == 1;
        Action::ALL
            .into_iter()
            // A single chip has no links between chips: interchip_hop never occurs.
            .filter(|a| !(single && *a == Action::InterchipHop))
            .filter(|a| matches!(self.charge(*a), Charge::Unpriced))
            .collect()
    }

    /// Check the design rules on this (possibly edited) model. [`super::parse`] runs this on
    /// every file; call it again after changing a model in memory.
    ///
    /// # Errors
    /// Every violated rule (the first, then [`ChipError::more`]), each naming the dotted key,
    /// the value and the allowed range.
    pub fn validate(&self) -> Result<(), ChipError> {
        super::drc::check(self)
    }

    /// A readable multi-line summary for `accord chip show`: mesh, capacities, formats, the price
    /// table with grades and sources, inclusions, missing primitives, emulations, unpriced actions.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        let _ = self.write_description(&mut s);
        s
    }

    fn write_description(&self, s: &mut String) -> fmt::Result {
        self.describe_hardware(s)?;
        self.describe_formats(s)?;
        self.describe_prices(s)?;
        self.describe_gaps(s)
    }

    /// Mesh, core capacities and soma, router, system, barrier.
    fn describe_hardware(&self, s: &mut String) -> fmt::Result {
        writeln!(s, "chip '{}' ({})", self.name, self.origin)?;
        writeln!(s, "  {}", self.description.trim())?;
        writeln!(s, "process: {}", self.process)?;
        writeln!(
            s,
            "mesh: {} x {} = {} cores (2-D mesh, dimension-order routing)",
            self.mesh.cols,
            self.mesh.rows,
            self.mesh.cores()
        )?;
        let c = &self.core;
        writeln!(
            s,
            "core: {} neurons, {} synapses, {} input axons, fan-out {}, {} events{}",
            c.neurons,
            c.synapses,
            c.input_axons,
            c.fanout,
            if c.graded_events { "graded" } else { "binary" },
            match c.axon_types {
                Some(t) => format!(", binary crossbar with {t} axon types"),
                None => String::new(),
            }
        )?;
        if let Some(f) = c.neuron_fanin {
            writeln!(
                s,
                "      a neuron (compartment) takes {f} synapses{}",
                if c.dendrite_compartments > 1 {
                    format!(
                        "; up to {} compartments joined in its dendrite",
                        c.dendrite_compartments
                    )
                } else {
                    String::new()
                }
            )?;
        }
        if c.weight_sharing {
            writeln!(
                s,
                "      weight sharing: a convolution's kernel stored once per channel on a core"
            )?;
        }
        if c.external_inputs || c.recurrent {
            writeln!(
                s,
                "      {}{}",
                if c.external_inputs {
                    "inputs from off-chip on the input axons; "
                } else {
                    ""
                },
                if c.recurrent {
                    "an internal synapse array among a core's own neurons"
                } else {
                    ""
                }
            )?;
        }
        writeln!(
            s,
            "      input queue {} packets, {} accumulator, spiking soma {}",
            c.input_queue,
            match c.accumulator {
                AccumulateSpec::PerAdd => "per-add",
                AccumulateSpec::Wide => "wide",
            },
            match self.soma {
                SomaSpec::If => "if (reset by subtraction)".to_owned(),
                SomaSpec::Lif { decay } => format!("lif (decay {decay}/4096)"),
                SomaSpec::CubaLif { du, dv } => {
                    format!("cuba-lif (Lava PyLifModelBitAcc; du {du}, dv {dv})")
                }
            }
        )?;
        let r = &self.router;
        writeln!(
            s,
            "router: {} packet(s) per link per cycle, output FIFOs of {}, on overflow {}",
            r.link_packets_per_cycle,
            r.buffer_depth
                .map_or("unbounded depth".to_owned(), |d| format!("{d} packets")),
            match r.overflow {
                OverflowPolicy::Stall => "stall",
                OverflowPolicy::Drop => "drop",
            }
        )?;
        if self.system.chips_x * self.system.chips_y > 1 {
            writeln!(
                s,
                "system: {} x {} chips ({} x {} cores); links between chips are interchip_hop",
                self.system.chips_x,
                self.system.chips_y,
                self.grid().cols,
                self.grid().rows
            )?;
        }
        if self.timing.barrier_ns_per_core > 0.0 {
            writeln!(
                s,
                "barrier: + {} ns per core beyond the first",
                self.timing.barrier_ns_per_core
            )?;
        }
        Ok(())
    }

    /// Number formats and tables.
    fn describe_formats(&self, s: &mut String) -> fmt::Result {
        writeln!(s, "formats:")?;
        for (name, f) in self.formats.entries() {
            writeln!(s, "  {name:<14} {}", format_summary(f))?;
        }
        let t = &self.balance_table;
        writeln!(
            s,
            "balance table: {} entries over u in [{}, {}] (step {})",
            t.entries,
            t.input_min,
            t.input_max,
            (t.input_max - t.input_min) / f64::from(t.entries)
        )?;
        match &self.activation_table {
            Some(t) => writeln!(
                s,
                "activation table: {} entries over u in [{}, {}] (rate format)",
                t.entries, t.input_min, t.input_max
            )?,
            None => writeln!(
                s,
                "activation table: none (graded sigmoid/tanh cannot run; piecewise-linear can)"
            )?,
        }
        Ok(())
    }

    /// The price table with grades and sources, inclusions, static power, price sets.
    fn describe_prices(&self, s: &mut String) -> fmt::Result {
        writeln!(s, "prices:")?;
        writeln!(
            s,
            "  {:<22} {:>10} {:>11}  {:<18} {:<8}",
            "action", "energy pJ", "latency ns", "grade", "scope"
        )?;
        for (a, p) in &self.prices {
            let e = p.energy_pj.map_or("-".to_owned(), |v| format!("{v}"));
            let l = p.latency_ns.map_or("-".to_owned(), |v| format!("{v}"));
            writeln!(
                s,
                "  {:<22} {e:>10} {l:>11}  {:<18} {:<8}",
                a.name(),
                p.grade.name(),
                p.scope.name()
            )?;
            if !p.includes.is_empty() {
                let inc: Vec<&str> = p.includes.iter().map(|a| a.name()).collect();
                writeln!(s, "      includes: {}", inc.join(", "))?;
            }
            writeln!(s, "      source: {}", p.source)?;
            if let Some(n) = &p.note {
                writeln!(s, "      note: {}", one_line(n))?;
            }
        }
        let included: Vec<String> = Action::ALL
            .into_iter()
            .filter_map(|a| match self.charge(a) {
                Charge::Included { by } => Some(format!("{a} (in {by})")),
                _ => None,
            })
            .collect();
        if !included.is_empty() {
            writeln!(s, "zero by declaration: {}", included.join(", "))?;
        }
        match &self.static_power {
            Some(sp) => writeln!(
                s,
                "static power: {} mW per core ({} mW for the mesh), {}; source: {}",
                sp.mw_per_core,
                sp.mw_per_core * self.mesh.cores() as f64,
                sp.grade,
                sp.source
            )?,
            None if self.static_in_prices => writeln!(
                s,
                "static power: inside the all-in prices (priced energy is total energy)"
            )?,
            None => writeln!(s, "static power: not modelled")?,
        }
        if self.price_sets.len() > 1 {
            writeln!(s, "price sets (chosen by the root key price_set):")?;
            for (name, what) in &self.price_sets {
                let mark = if *name == self.price_set {
                    " [in force]"
                } else {
                    ""
                };
                writeln!(s, "  {name}{mark}: {what}")?;
            }
        }
        Ok(())
    }

    /// Missing primitives, their emulations, unpriced actions.
    fn describe_gaps(&self, s: &mut String) -> fmt::Result {
        if self.missing.is_empty() {
            writeln!(s, "missing: none")?;
        } else {
            let m: Vec<&str> = self.missing.iter().map(|a| a.name()).collect();
            writeln!(s, "missing: {}", m.join(", "))?;
        }
        for (a, e) in &self.emulations {
            let via: Vec<&str> = e.via.iter().map(|a| a.name()).collect();
            let via = if via.is_empty() {
                "nothing (declared free)".to_owned()
            } else {
                via.join(" + ")
            };
            writeln!(
                s,
                "  {a} emulated via {via}{}",
                if e.mirror {
                    " (mirror rows: every synapse update written twice)"
                } else {
                    ""
                }
            )?;
            writeln!(s, "      {}", one_line(&e.note))?;
        }
        let unpriced: Vec<&str> = self.unpriced().iter().map(|a| a.name()).collect();
        if unpriced.is_empty() {
            writeln!(s, "unpriced energy: none")?;
        } else {
            writeln!(
                s,
                "unpriced energy (listed in reports, never charged zero): {}",
                unpriced.join(", ")
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for ChipModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The rounding mode as written in chip files (`"nearest-even"`, `"toward-zero"`, `"floor"`,
/// `"stochastic"`).
pub fn rounding_name(r: Rounding) -> &'static str {
    match r {
        Rounding::NearestEven => "nearest-even",
        Rounding::TowardZero => "toward-zero",
        Rounding::Floor => "floor",
        Rounding::Stochastic => "stochastic",
    }
}

/// The overflow mode as written in chip files (`"saturate"`, `"wrap"`).
pub fn overflow_name(o: Overflow) -> &'static str {
    match o {
        Overflow::Saturate => "saturate",
        Overflow::Wrap => "wrap",
    }
}

/// `(min, max, step)` of the real values a format represents.
pub fn format_range(f: &Format) -> (f64, f64, f64) {
    let step = (-f64::from(f.frac)).exp2();
    let bits = i32::from(f.bits);
    let (lo, hi) = if f.signed {
        (
            -(f64::from(bits - 1).exp2()),
            f64::from(bits - 1).exp2() - 1.0,
        )
    } else {
        (0.0, f64::from(bits).exp2() - 1.0)
    };
    (lo * step, hi * step, step)
}

/// A one-line summary of a format, e.g. `s16.12   [-8, 7.999756] step 2^-12  nearest-even,
/// saturate` (`s`/`u` for signed/unsigned, then total and fractional bits).
pub fn format_summary(f: &Format) -> String {
    let (lo, hi, _) = format_range(f);
    let q = format!("{}{}.{}", if f.signed { 's' } else { 'u' }, f.bits, f.frac);
    // Enough decimals to tell neighbouring values apart: frac * log10(2), plus one.
    let decimals = ((f64::from(f.frac) * std::f64::consts::LOG10_2).ceil() as usize + 1).min(13);
    let range = format!(
        "[{}, {}]",
        trim_float(lo, decimals),
        trim_float(hi, decimals)
    );
    format!(
        "{q:<8} {range:<26} step 2^-{:<3} {}, {}",
        f.frac,
        rounding_name(f.rounding),
        overflow_name(f.overflow)
    )
}

fn trim_float(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

#[derive(Serialize)]
struct FormatOut {
    bits: u8,
    frac: u8,
    signed: bool,
    rounding: &'static str,
    overflow: &'static str,
}

fn ser_format<S: serde::Serializer>(f: &Format, s: S) -> Result<S::Ok, S::Error> {
    FormatOut {
        bits: f.bits,
        frac: f.frac,
        signed: f.signed,
        rounding: rounding_name(f.rounding),
        overflow: overflow_name(f.overflow),
    }
    .serialize(s)
}
