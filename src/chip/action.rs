//! The primitive actions the ledger counts and a price table prices.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One primitive action of a neuromorphic core or its router (ARCHITECTURE.md §2).
///
/// The ledger counts actions; a chip model prices them. Names are the `snake_case` spellings used
/// in chip files (`[prices.sop]`, `missing = ["retro_sop"]`) and in reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Inject one forward spike packet into the router (injection and delivery at the target core).
    SpikePacket,
    /// One packet crossing one router link, forward or retrograde.
    Hop,
    /// Forward synaptic operation: read `w_ij`, accumulate into neuron `i`'s input.
    Sop,
    /// Soma update of a neuron that received input (integrate, threshold, reset, or graded rate).
    NeuronUpdateActive,
    /// Soma update of a neuron that received no input (leak only, or visited by a clocked core).
    NeuronUpdateIdle,
    /// Presynaptic trace update (`r_j`, spike count or graded rate) per arrival at an axon.
    TraceUpdate,
    /// Balance-table lookup `g(u_i)` (and forming `δ_i = g(u_i)·c_i`).
    LutRead,
    /// Retrograde multiply-accumulate `w_ij·δ_i` over one synapse of a row.
    RetroSop,
    /// Inject one retrograde packet `m_j` into the router.
    RetroPacket,
    /// Credit accumulate `c_j += m_j` at the presynaptic core, per retrograde packet.
    CreditAccumulate,
    /// Read-modify-write of one synapse, `w_ij += η·δ_i·r_j`, multiply included.
    WeightUpdate,
    /// One random draw (stochastic rounding, Poisson encoding).
    RngDraw,
    /// Mesh-wide synchronisation between phases or ticks.
    Barrier,
    /// One bit read from a core's synapse memory.
    SynapseMemReadBit,
    /// One bit written to a core's synapse memory.
    SynapseMemWriteBit,
    /// One bit read from a core's neuron memory (membrane, rate/trace, credit state).
    NeuronMemReadBit,
    /// One bit written to a core's neuron memory.
    NeuronMemWriteBit,
    /// One read of a neuron's activation table `f(u)` (graded sigmoid, tanh).
    ActivationRead,
    /// One packet crossing one link between two chips of a system.
    InterchipHop,
}

impl Action {
    /// Every action, in ledger order.
    pub const ALL: [Action; 19] = [
        Action::SpikePacket,
        Action::Hop,
        Action::Sop,
        Action::NeuronUpdateActive,
        Action::NeuronUpdateIdle,
        Action::TraceUpdate,
        Action::LutRead,
        Action::RetroSop,
        Action::RetroPacket,
        Action::CreditAccumulate,
        Action::WeightUpdate,
        Action::RngDraw,
        Action::Barrier,
        Action::SynapseMemReadBit,
        Action::SynapseMemWriteBit,
        Action::NeuronMemReadBit,
        Action::NeuronMemWriteBit,
        Action::ActivationRead,
        Action::InterchipHop,
    ];

    /// The action's name as written in chip files and reports, e.g. `"retro_sop"`.
    pub const fn name(self) -> &'static str {
        match self {
            Action::SpikePacket => "spike_packet",
            Action::Hop => "hop",
            Action::Sop => "sop",
            Action::NeuronUpdateActive => "neuron_update_active",
            Action::NeuronUpdateIdle => "neuron_update_idle",
            Action::TraceUpdate => "trace_update",
            Action::LutRead => "lut_read",
            Action::RetroSop => "retro_sop",
            Action::RetroPacket => "retro_packet",
            Action::CreditAccumulate => "credit_accumulate",
            Action::WeightUpdate => "weight_update",
            Action::RngDraw => "rng_draw",
            Action::Barrier => "barrier",
            Action::SynapseMemReadBit => "synapse_mem_read_bit",
            Action::SynapseMemWriteBit => "synapse_mem_write_bit",
            Action::NeuronMemReadBit => "neuron_mem_read_bit",
            Action::NeuronMemWriteBit => "neuron_mem_write_bit",
            Action::ActivationRead => "activation_read",
            Action::InterchipHop => "interchip_hop",
        }
    }

    /// A one-line description in the field's words, for tables and `accord chip show`.
    pub const fn summary(self) -> &'static str {
        match self {
            Action::SpikePacket => "forward spike packet injected into the router",
            Action::Hop => "one packet over one router link (forward or retrograde)",
            Action::Sop => "forward synaptic op: read w_ij, accumulate",
            Action::NeuronUpdateActive => "soma update of a neuron with input",
            Action::NeuronUpdateIdle => "soma update of a neuron without input",
            Action::TraceUpdate => "presynaptic trace update per arrival",
            Action::LutRead => "balance-table lookup g(u_i)",
            Action::RetroSop => "retrograde multiply-accumulate w_ij * delta_i",
            Action::RetroPacket => "retrograde packet injected into the router",
            Action::CreditAccumulate => "credit accumulate c_j += m_j at the pre core",
            Action::WeightUpdate => "synapse read-modify-write with multiply",
            Action::RngDraw => "one random draw",
            Action::Barrier => "mesh-wide barrier between phases",
            Action::SynapseMemReadBit => "synapse-memory bit read",
            Action::SynapseMemWriteBit => "synapse-memory bit written",
            Action::NeuronMemReadBit => "neuron-memory bit read",
            Action::NeuronMemWriteBit => "neuron-memory bit written",
            Action::ActivationRead => "activation-table read f(u_i)",
            Action::InterchipHop => "one packet over one link between chips",
        }
    }

    /// True for the four memory-bit accounting terms. Every chip reads and writes memory, so these
    /// can be priced, included in an all-in price, or left unpriced, but never declared missing.
    pub const fn is_memory_term(self) -> bool {
        matches!(
            self,
            Action::SynapseMemReadBit
                | Action::SynapseMemWriteBit
                | Action::NeuronMemReadBit
                | Action::NeuronMemWriteBit
        )
    }

    /// All names joined by `", "`, for error messages.
    pub fn allowed_names() -> String {
        Action::ALL.map(Action::name).join(", ")
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error of parsing an unknown primitive name; its message lists the allowed names.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown primitive '{name}' (allowed: {allowed})", allowed = Action::allowed_names())]
pub struct ParseActionError {
    /// The name that was not recognised.
    pub name: String,
}

impl FromStr for Action {
    type Err = ParseActionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Action::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| ParseActionError { name: s.to_owned() })
    }
}

/// Primitives a chip must support (priced, unpriced or emulated) to run inference: the forward
/// phase of §2. Memory-bit terms are counted but never required.
pub const INFERENCE_ACTIONS: &[Action] = &[
    Action::SpikePacket,
    Action::Hop,
    Action::Sop,
    Action::NeuronUpdateActive,
    Action::NeuronUpdateIdle,
    Action::Barrier,
];

/// Primitives a chip must support to train with the balance rule: inference plus the credit and
/// plasticity phases. `rng_draw` is added by [`super::ChipModel::required_actions`] only when a
/// format rounds stochastically.
pub const TRAINING_ACTIONS: &[Action] = &[
    Action::SpikePacket,
    Action::Hop,
    Action::Sop,
    Action::NeuronUpdateActive,
    Action::NeuronUpdateIdle,
    Action::Barrier,
    Action::TraceUpdate,
    Action::LutRead,
    Action::RetroSop,
    Action::RetroPacket,
    Action::CreditAccumulate,
    Action::WeightUpdate,
];
