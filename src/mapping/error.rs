//! Why a network cannot be mapped onto a chip.

/// A network that does not fit a chip, or is not a network. Each message names the chip, the
/// layer, the constraint, the numbers and by how much they miss.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    /// Fewer than two layers were given.
    #[error(
        "a layered network needs at least two layers (input and output), got {layers} layer width{}",
        if *.layers == 1 { "" } else { "s" }
    )]
    TooFewLayers {
        /// Number of widths given.
        layers: usize,
    },
    /// Several violations, each independent of the others (found before anything is placed:
    /// widths, a recurrent layer's fan-in, a neuron's compartments), every one named.
    #[error("{} violations: {}", .0.len(), list(.0))]
    Several(Vec<MapError>),
    /// A layer of width zero.
    #[error("layer {layer} has width 0; every layer needs at least one neuron")]
    ZeroWidth {
        /// The empty layer.
        layer: usize,
    },
    /// The chip model declares a zero capacity (only possible for a model edited in memory;
    /// chip files are checked on load).
    #[error("chip '{chip}' declares core.{resource} = 0; nothing can be placed on its cores")]
    ZeroCapacity {
        /// Chip name.
        chip: String,
        /// The capacity that is zero.
        resource: &'static str,
    },
    /// One neuron needs more routing entries than a core has.
    #[error(
        "layer {layer} needs {needed} fan-out routing entries for a single neuron (one per core \
         of {dests}); a {chip} core has {capacity} (over by {over}), even with one neuron per \
         core",
        dests = .reach.describe(*.layer),
        over = .needed - .capacity
    )]
    Fanout {
        /// The presynaptic layer.
        layer: usize,
        /// Where its neurons send.
        reach: Reach,
        /// Chip name.
        chip: String,
        /// Routing entries of one neuron: the core count of the next layer.
        needed: usize,
        /// Routing entries per core.
        capacity: usize,
    },
    /// A recurrent layer whose fan-in (its input layer and itself) does not fit one core.
    #[error(
        "layer {layer} projects onto itself and its fan-in of {fan_in} ({size} of them its own \
         neurons) exceeds a {chip} core's {capacity} input axons and synapse rows (over by \
         {over}); accord splits only feed-forward fan-ins",
        over = .fan_in - .capacity
    )]
    RecurrentSplit {
        /// Chip name.
        chip: String,
        /// The recurrent neuron layer.
        layer: usize,
        /// Its width.
        size: usize,
        /// Its fan-in: the width below plus its own.
        fan_in: usize,
        /// Axons (and synapse rows) a core can give one neuron.
        capacity: usize,
    },
    /// A sparse projection's mask is not shaped like its layer.
    #[error(
        "the mask of layer {layer}'s projection has {len} entries; a {size} × {below} \
         projection needs {expected}",
        expected = .size * .below
    )]
    MaskShape {
        /// The neuron layer the projection feeds.
        layer: usize,
        /// Entries in the mask.
        len: usize,
        /// The layer's width.
        size: usize,
        /// The width below.
        below: usize,
    },
    /// Placement by receptive field was asked, and no sparse layer can be placed that way.
    #[error("no sparse layer can be placed by receptive field: {why}")]
    NoReceptiveField {
        /// Why.
        why: String,
    },
    /// The input layer was declared recurrent.
    #[error("layer 0 holds the inputs (relays) and cannot be recurrent")]
    RecurrentInput,
    /// The placement needs more cores than the mesh has.
    #[error(
        "the network needs {needed} cores (per layer {per}; each layer starts on a fresh core), \
         the {chip} chip has {available} (short by {short})",
        per = per_layer_text(.per_layer),
        short = .needed - .available
    )]
    TooManyCores {
        /// Chip name.
        chip: String,
        /// Cores needed.
        needed: u64,
        /// Cores on the mesh.
        available: u64,
        /// Cores needed per layer, input first.
        per_layer: Vec<usize>,
    },
    /// A neuron needs more compartments than a core has neuron slots.
    #[error(
        "a neuron of layer {layer} is built of {compartments} compartments (its fan-in over \
         core.neuron_fanin), but a {chip} core has {neurons} neuron slots"
    )]
    Compartments {
        /// Chip name.
        chip: String,
        /// The layer.
        layer: usize,
        /// Compartments one neuron needs.
        compartments: usize,
        /// Neuron slots per core.
        neurons: usize,
    },
    /// Packed placement: a fan-in a core cannot hold whole.
    #[error(
        "layer {layer}'s fan-in of {fan_in} does not fit a {chip} core whole ({capacity} \
         {}), and layers packed onto shared cores are not split",
        if *.compartments { "synapses in a neuron's compartments" } else { "input axons or synapses" }
    )]
    PackedFanIn {
        /// Chip name.
        chip: String,
        /// The layer.
        layer: usize,
        /// Its fan-in.
        fan_in: usize,
        /// The limit: the smaller of a core's input axons and synapses, or the synapses of a
        /// neuron's compartments.
        capacity: usize,
        /// The limit is a neuron's compartments' synapses (not the core's axons or synapses).
        compartments: bool,
    },
    /// Packed placement: a shared core needs more routing entries than it has.
    #[error(
        "with its layers packed, core {core} needs {needed} fan-out routing entries; a {chip} \
         core has {capacity} (over by {over})",
        over = .needed - .capacity
    )]
    PackedFanout {
        /// Chip name.
        chip: String,
        /// The core.
        core: usize,
        /// Entries it needs.
        needed: usize,
        /// Entries per core.
        capacity: usize,
    },
    /// A graph that is not a network, or of a shape the mapping does not place.
    #[error(transparent)]
    Graph(#[from] crate::graph::GraphError),
    /// Packed placement: still more cores than the mesh has.
    #[error(
        "the network needs {needed} cores even with its layers packed onto shared cores, the \
         {chip} chip has {available} (short by {short})",
        short = .needed - .available
    )]
    PackedCores {
        /// Chip name.
        chip: String,
        /// Cores needed.
        needed: u64,
        /// Cores on the mesh.
        available: u64,
    },
}

fn per_layer_text(v: &[usize]) -> String {
    let parts: Vec<String> = v.iter().map(usize::to_string).collect();
    parts.join(" + ")
}

/// Where a layer's neurons send, as [`MapError::Fanout`] names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// The next layer's cores.
    Next,
    /// The next layer's cores and the layer's own (a recurrent layer).
    NextAndOwn,
    /// The layer's own cores (an all-to-all group, or a recurrent output layer).
    Own,
}

impl Reach {
    /// "layer 2", "layer 2 and of layer 1 itself", "layer 0 itself" for layer `layer`.
    pub fn describe(self, layer: usize) -> String {
        match self {
            Reach::Next => format!("layer {}", layer + 1),
            Reach::NextAndOwn => format!("layer {} and of layer {layer} itself", layer + 1),
            Reach::Own => format!("layer {layer} itself"),
        }
    }
}

/// `(1) …; (2) …`.
fn list(errors: &[MapError]) -> String {
    errors
        .iter()
        .enumerate()
        .map(|(i, e)| format!("({}) {e}", i + 1))
        .collect::<Vec<_>>()
        .join("; ")
}

impl MapError {
    /// One error for `errors`: none, the one, or [`MapError::Several`].
    pub(crate) fn all(mut errors: Vec<MapError>) -> Option<MapError> {
        match errors.len() {
            0 => None,
            1 => errors.pop(),
            _ => Some(MapError::Several(errors)),
        }
    }
}
