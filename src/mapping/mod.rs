//! Mapping: placing a network onto a chip's cores and routing its packets on the mesh.
//!
//! [`map_graph`] places a network [graph](crate::graph) — a chain of groups (a layered net) or
//! one [all-to-all group](self#all-to-all-groups) — with the policy below; [`map_net_opts`] and
//! its shorter forms take a chain by its widths, and [`map_layered`] a densely connected one
//! (every neuron of layer `l` projects to every neuron of layer `l + 1`). Each returns a
//! [`Mapping`] on a [`ChipModel`]: which core hosts which neurons, how full each core is, and how
//! far packets travel.
//! The emulator reads the placement through [`Mapping::core_of`], [`Mapping::dest_cores`] and
//! [`Mapping::hops`]; `accord map` prints [`Mapping::describe`] or the JSON form.
//!
//! # Placement policy
//!
//! * **Every layer is placed**, layer 0 too: input neurons are relay neurons that only send.
//!   They use neuron slots and routing entries, but hold no synapses and need no input axons.
//! * **Synapses live with the postsynaptic neuron** (Loihi style). A core hosting `k` neurons of
//!   layer `l + 1` stores `k × size(l)` synapses and needs `size(l)` input axons, one per
//!   presynaptic neuron (its synapse row).
//! * **A fan-in that does not fit is split.** When the width of layer `l − 1` exceeds a core's
//!   input axons or synapses (or a neuron's compartments, [below](self#dendritic-accumulation)),
//!   layer `l`'s fan-in is cut into the fewest even segments that fit
//!   ([`LayerPlacement::segments`]). Each chunk then takes one core per segment — *dendrite
//!   segments* holding that part of every chunk neuron's rows — and one core for the somas
//!   (ARCHITECTURE.md §5). A segment sends each neuron's partial sum to the soma core once per
//!   firing step, so a split layer adds one timestep of latency, one routing entry per segment
//!   neuron, and one partial-sum packet per segment and neuron with a non-zero sum. Partial sums
//!   arrive at the soma core addressed to the neuron, not on input axons, so the soma core
//!   uses none (a chip that must receive them on axons would need `segments × chunk` more).
//!   A split layer's chunk size is also bounded by its largest segment (`k × axons ≤
//!   synapses`) and by the segments' fan-out (`k ≤ fanout`).
//! * **Routing entries live with the presynaptic neuron.** Each neuron of layer `l` needs one
//!   entry per core of layer `l + 1` (one packet per destination core, fanned out to the rows
//!   there). A core's entries are the sum over its neurons. The output layer has no fan-out.
//! * **Each layer starts on a fresh core**; cores are not shared between layers (unless the
//!   placement is [packed](self#packed-placement)).
//! * **Chunk size.** Layer `l` is cut into chunks of at most `k_l` neurons, the largest `k` with
//!   `k ≤ neurons`, `k × size(l − 1) ≤ synapses` (for `l ≥ 1`) and `k × cores(l + 1) ≤ fanout`
//!   (for `l` below the output). Because of the last term the layers are sized from the output
//!   backwards. The layer uses the minimum number of cores, `ceil(size / k_l)`, and is split
//!   evenly: chunk sizes differ by at most one, larger chunks first.
//! * **Cores in snake order.** Chunks take cores along a boustrophedon walk of the mesh (row 0
//!   left to right, row 1 right to left, …), layer after layer, so consecutive layers sit next
//!   to each other. [`Mapping::cores`] is nevertheless listed in core-id order (row-major, as in
//!   [`crate::chip::Mesh`]). The mesh walked is the system's grid ([`ChipModel::grid`]): a
//!   `[system]` of several chips side by side offers all their cores, and a route that leaves
//!   a chip crosses an interchip link.
//! * **Routes.** A route is a (presynaptic neuron, destination core) pair; under dimension-order
//!   (X then Y) routing its length is the Manhattan distance between the two cores.
//!   [`Mapping::hop_histogram`] counts forward routes by length. The retrograde messages of the
//!   rule travel the same (axon, post core) pairs backwards, so they have the same histogram.
//!
//! # Receptive fields
//!
//! A sparse projection — an expanded convolution or pooling from NIR, given to [`map_net`] as a
//! mask of the synapses that exist — is placed by receptive field, as real mappers place
//! convolutions: a chunk's core holds rows only for the presynaptic neurons its neurons see
//! ([`LayerPlacement::receptive`], runs of positions of the layer below), and a presynaptic
//! neuron sends only to the cores whose field holds it (one routing entry each). A sparse
//! hidden layer's neurons are first put in receptive-field order ([`LayerPlacement::order`]):
//! by the first position of the layer below they see, then the last, then their index — so a
//! convolution's channels of one position sit side by side and a chunk sees one band of its
//! input (the read-out keeps its order). Chunks are cut greedily in that order: a neuron joins the current chunk while the chunk stays within a core's
//! neurons, the union of the fields within its input axons, that union times the chunk
//! within its synapses, and the chunk's routing entries within its fan-out, and then evened
//! out (the smallest chunk cap that keeps that many chunks), so chunks may differ in size. A
//! dense layer feeding a sparse one is cut the same way by its neurons' routing entries (each
//! reaches only the cores that see it). On the chip a reordered core's neuron `k` is the
//! neuron at position `start + k`, and its random streams are keyed by that position. A layer
//! in which one neuron's field exceeds a core's axons or synapses is split as a dense one (with
//! its zeros stored), and a recurrent layer keeps dense rows; [packed
//! placement](self#packed-placement) ignores masks.
//!
//! # Dendritic accumulation
//!
//! A chip may limit one neuron's synapses (`core.neuron_fanin`, [`CoreCapacity::neuron_fanin`];
//! default: no limit of its own) and let a neuron be built of up to
//! `core.dendrite_compartments` compartments on its core, their sums joined in its dendrite
//! within the timestep. A layer whose per-core row (its fan-in, its widest receptive field, or
//! its widest segment) exceeds `neuron_fanin` builds each neuron of `⌈row / neuron_fanin⌉`
//! compartments ([`LayerPlacement::compartments`]), each taking a neuron slot, so the chunk
//! size divides by it. The fan-in a core gives one neuron is the fewest of its input axons, its
//! synapses and `neuron_fanin × compartments` ([`CoreCapacity::per_core_fanin`]); beyond that
//! the fan-in is split across cores as above, and the partial sums travel as packets.
//!
//! # Weight sharing
//!
//! A convolution arrives expanded, a synapse per (output neuron, input in its window), each
//! carrying its tap in the channel's kernel ([`crate::graph::Kernel`]). A chip that declares
//! `core.weight_sharing` (Loihi's population axons) stores a kernel once per channel on each
//! core hosting neurons of that channel: a chunk's synapse memory is its distinct channels ×
//! the kernel's weights, not its neurons × its receptive field, and the greedy cut sizes chunks
//! by that ([`LayerPlacement::shared`]). Input axons and routing entries are counted as for
//! the expanded layer (one axon per presynaptic neuron: accord does not model population
//! axons). Only a layer placed by receptive field shares, and only while its weights hold one
//! value per channel and tap — the caller checks that ([`crate::graph::Kernel::shared_by`]):
//! per-neuron factors folded into the rows, or training synapse by synapse, break it, and a
//! training run places every convolution expanded. Synaptic operations are unchanged.
//!
//! # Duplicated inputs
//!
//! On a binary crossbar with axon types (TrueNorth's), a neuron's weight from an input is one of
//! its few per-type levels, or nothing. Where a layer's cores have room for each input twice —
//! `2 × fan-in` input axons and synapse rows, and routing entries at the senders for a second
//! packet per (neuron, core) — its inputs are **duplicated**, as TrueNorth's own mappings do
//! (Esser et al. 2016): every presynaptic neuron sends one packet to each of its two axons,
//! which may have different types, so a neuron can take the sum of two of its levels
//! ([`LayerPlacement::copies`] = 2; the weights are fitted to that form when the net is built).
//! Split, sparse and recurrent layers, packed placement and chips with a weight per synapse
//! keep one axon per input. A TrueNorth neuron reaches one axon, so the sender's second packet
//! stands for a copy of the neuron; it is charged as a routing entry and a packet, as a neuron
//! that reaches several cores is, and the copy's own integration is not counted.
//!
//! # All-to-all groups
//!
//! An all-to-all net is one group — input relays, hidden and output neurons — projecting onto
//! itself. It is placed as a recurrent layer 0 that holds its relays: its fan-in is its own `N`
//! neurons (so `N` must be within a core's input axons and synapses, the smaller of the two;
//! a fan-in over that is refused, as for any recurrent layer), its chunk size is the largest `k`
//! with `k ≤ neurons`, `k × N ≤ synapses` and `k × ⌈N/k⌉ ≤ fanout` (every neuron reaches every
//! core of the group), the chunks are even
//! and take cores along the snake, and every neuron's route to every core joins the hop
//! histogram. An all-to-all group is never packed.
//!
//! # Packed placement
//!
//! When each layer on fresh cores needs more cores than the chip has — or the chip's inputs
//! come from off-chip (`core.external_inputs`) or its cores connect their own neurons
//! internally (`core.recurrent`), as ReckOn's single core does — layers are **packed**: in
//! order, each layer fills the current core as far as its neurons, synapses and input axons
//! allow, then the next core along the snake. With `core.external_inputs` the input layer
//! takes no neuron and no routing entry (the host addresses the input axons); with
//! `core.recurrent` a projection whose presynaptic layer sits wholly on the same core uses no
//! input axon and no routing entry. Fan-in splitting does not combine with packing.
//!
//! Infeasible networks are reported as a [`MapError`] naming the chip, the layer, the constraint,
//! the numbers and by how much they are exceeded; nothing panics on bad widths or capacities.
//!
//! # Example
//!
//! ```
//! use accord::chip;
//! use accord::mapping::map_layered;
//!
//! let chip = chip::open("balance-core")?;
//! let m = map_layered(&[784, 128, 10], &chip)?;
//! // 4 cores of 196 input relays, 2 cores of 64 hidden neurons (83 × 784 synapses fit a
//! // core), 1 core for the 10 outputs.
//! assert_eq!(m.cores_used(), 7);
//! assert_eq!(m.layers[1].chunks.len(), 2);
//! assert_eq!(m.core_of(1, 100), m.layers[1].chunks[1].core);
//! assert_eq!(m.dest_cores(2).len(), 1);
//! // Every input relay sends one packet to each of the two hidden cores.
//! assert_eq!(m.total_routes, 784 * 2 + 128);
//! println!("{}", m.describe());
//!
//! // TrueNorth cores have 256 input axons: the hidden layer's 784-wide fan-in is split into
//! // four segments of 196 axons on four cores, beside one core for the 128 somas.
//! let m = map_layered(&[784, 128, 10], &chip::open("truenorth")?)?;
//! assert_eq!(m.layers[1].segments.len(), 4);
//! assert_eq!(m.cores_used(), 4 + (4 + 1) + 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod report;
pub use report::SplitCost;

#[cfg(test)]
mod tests;

pub use error::{MapError, Reach};

use bitvec::prelude::*;
use serde::Serialize;

use crate::chip::ChipModel;
use crate::graph::{Graph, Kernel, Shape};

/// Per synaptic layer, the synapses that exist (`None`: dense), as the placement reads them.
type MaskRefs<'a> = [Option<&'a BitSlice<usize, Lsb0>>];

/// Neurons `start..start + len` of one neuron layer, hosted on `core` (positions in the
/// layer's [`order`](LayerPlacement::order) where it has one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Chunk {
    /// Core id (row-major: `x = core % mesh_cols`, `y = core / mesh_cols`).
    pub core: usize,
    /// First neuron (position) of the layer on this core.
    pub start: usize,
    /// Number of consecutive neurons on this core (≥ 1).
    pub len: usize,
}

/// Part of a split fan-in: input axons (presynaptic neurons) `start..start + axons`; or a run
/// of a [receptive field](self#receptive-fields) (positions of the layer below).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Segment {
    /// First presynaptic neuron.
    pub start: usize,
    /// Presynaptic neurons (input axons of the segment's core).
    pub axons: usize,
}

/// Where one neuron layer lives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LayerPlacement {
    /// Layer index; 0 is the input layer (of a chain), or the whole [all-to-all
    /// group](self#all-to-all-groups).
    pub layer: usize,
    /// Number of neurons in the layer.
    pub size: usize,
    /// The chunks, in neuron order: they tile `0..size` without gaps or overlap.
    pub chunks: Vec<Chunk>,
    /// The cores of the chunks, in chunk order (what [`Mapping::dest_cores`] returns).
    pub cores: Vec<usize>,
    /// The most neurons of this layer a core may take under the capacities.
    pub max_chunk: usize,
    /// The capacity that sets `max_chunk`: `"neurons"`, `"synapses"` or `"fanout"` (the first
    /// of these on a tie); for a layer cut greedily, also `"input_axons"`: the capacity that
    /// closed the most chunks of the first cut, before they were evened out.
    pub limited_by: &'static str,
    /// A split fan-in: the presynaptic ranges each chunk's dendrite segments hold (empty when
    /// every neuron's fan-in fits one core).
    pub segments: Vec<Segment>,
    /// Per chunk, the cores of its segments (in `segments` order; empty when not split). The
    /// chunk's own core (`chunks[i].core`) then holds only the somas.
    pub segment_cores: Vec<Vec<usize>>,
    /// The layer projects onto itself ([`map_net`]): every core of the layer holds rows for
    /// the layer below (if any) and then for the layer's own neurons, and each of its neurons
    /// sends to every core of the layer as well as of the next (if any).
    pub recurrent: bool,
    /// Per chunk, the presynaptic neurons its core holds rows for, as runs of positions of the
    /// layer below (its `order`), in order (empty: every chunk holds the whole layer below, or
    /// its split in `segments`; an empty run list: the chunk sees nothing). A sparse
    /// projection is placed [by receptive field](self#receptive-fields).
    pub receptive: Vec<Vec<Segment>>,
    /// The layer's neurons in placement order (empty: natural order): chunks hold positions
    /// `start..start + len`, that is neurons `order[start..start + len]`. A sparse hidden layer
    /// is placed [in receptive-field order](self#receptive-fields).
    pub order: Vec<usize>,
    /// Axons per presynaptic neuron on the layer's cores: 2 where a crossbar chip's cores
    /// take each input twice ([duplicated inputs](self#duplicated-inputs)), else 1.
    pub copies: usize,
    /// Compartments each neuron is built of on its core (on a split layer: on its segments'
    /// cores), joined in its dendrite within the timestep ([dendritic
    /// accumulation](self#dendritic-accumulation)); 1: one (then left out of the JSON form).
    #[serde(skip_serializing_if = "is_one")]
    pub compartments: usize,
    /// A convolution whose kernel its cores store once per channel
    /// ([weight sharing](self#weight-sharing)); `None`: a weight per synapse (then left out
    /// of the JSON form).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared: Option<SharedWeights>,
}

fn is_one(x: &usize) -> bool {
    *x == 1
}

/// How a [shared](self#weight-sharing) convolution's weights are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SharedWeights {
    /// Weights in one channel's kernel.
    pub taps: usize,
    /// Channels of the layer.
    pub channels: usize,
    /// Weights stored over the layer's cores: Σ per core of its channels × `taps`.
    pub stored: usize,
    /// The layer's synapses: the weights stored without sharing, one per synapse.
    pub synapses: usize,
    /// Synapse slots the same cores would hold as rows (Σ per core of neurons × receptive
    /// field): what the footprint counts for the layer when it does not share.
    pub rows: usize,
}

/// Per-core capacities as the mapping counts them (from [`crate::chip::CoreCaps`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct CoreCapacity {
    /// Neurons per core.
    pub neurons: usize,
    /// Synapses per core.
    pub synapses: usize,
    /// Input axons (synapse rows) per core.
    pub input_axons: usize,
    /// Fan-out routing entries per core.
    pub fanout: usize,
    /// A binary crossbar with this many axon types (`None`: a weight per synapse).
    pub axon_types: Option<u32>,
    /// Synapses one compartment takes ([dendritic accumulation](self#dendritic-accumulation));
    /// `None`: no limit of its own (then left out of the JSON form).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub neuron_fanin: Option<usize>,
    /// Compartments a neuron may be built of on its core (1: no dendritic accumulation, then
    /// left out of the JSON form).
    #[serde(skip_serializing_if = "is_one")]
    pub compartments: usize,
}

impl CoreCapacity {
    /// The largest fan-in one neuron takes on one core: a core's input axons and synapses,
    /// and its compartments' synapses together.
    pub fn per_core_fanin(&self) -> usize {
        self.input_axons.min(self.synapses).min(self.neuron_limit())
    }

    /// The most synapses one neuron takes in its compartments (`usize::MAX`: no limit).
    pub fn neuron_limit(&self) -> usize {
        self.neuron_fanin
            .map_or(usize::MAX, |f| f.saturating_mul(self.compartments))
    }

    /// Compartments a neuron with `row` synapses on one core is built of (≥ 1).
    pub fn compartments_for(&self, row: usize) -> usize {
        self.neuron_fanin
            .map_or(1, |f| row.div_ceil(f.max(1)))
            .max(1)
    }
}

/// What one used core holds, and how full it is.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CoreUse {
    /// Core id.
    pub core: usize,
    /// Mesh column.
    pub x: usize,
    /// Mesh row.
    pub y: usize,
    /// The neuron layer hosted.
    pub layer: usize,
    /// Which dendrite segment of a split layer this core holds (`None`: the somas, or an
    /// unsplit chunk).
    pub segment: Option<usize>,
    /// First neuron of the layer hosted here.
    pub start: usize,
    /// Neurons hosted.
    pub neurons: usize,
    /// Synapses stored: neurons × fan-in, or × the chunk's receptive field (0 for a chain's
    /// input layer).
    pub synapses: usize,
    /// Input axons used: the fan-in, one per presynaptic neuron (two where the inputs are
    /// [duplicated](self#duplicated-inputs)), or the chunk's receptive field (0 for a chain's
    /// input layer).
    pub input_axons: usize,
    /// Routing entries: Σ over its neurons of distinct destination cores, twice for a core
    /// whose inputs are [duplicated](self#duplicated-inputs) (0 for a chain's output layer).
    pub fanout: usize,
    /// Neuron slots used where its neurons are built of several compartments
    /// ([dendritic accumulation](self#dendritic-accumulation)): neurons × compartments
    /// (`None`: one slot per neuron, then left out of the JSON form).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slots: Option<usize>,
    /// Slots used (`slots`, or `neurons`) / `capacity.neurons`.
    pub neurons_util: f64,
    /// `synapses / capacity.synapses`.
    pub synapses_util: f64,
    /// `input_axons / capacity.input_axons`.
    pub input_axons_util: f64,
    /// `fanout / capacity.fanout`.
    pub fanout_util: f64,
}

impl CoreUse {
    /// Its neurons built of `compartments` each, of `capacity` slots.
    fn set_slots(&mut self, compartments: usize, capacity: usize) {
        if compartments > 1 {
            let slots = self.neurons * compartments;
            self.slots = Some(slots);
            self.neurons_util = frac(slots, capacity);
        }
    }
}

/// The most loaded core for one resource.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Pressure {
    /// `"neurons"`, `"synapses"`, `"input_axons"` or `"fanout"`.
    pub resource: &'static str,
    /// The core with the highest use (lowest id on ties).
    pub core: usize,
    /// Its layer.
    pub layer: usize,
    /// Amount used there.
    pub used: usize,
    /// Capacity per core.
    pub capacity: usize,
    /// `used / capacity`.
    pub utilisation: f64,
}

/// A network placed on a chip (or a system of chips). Build one with [`map_graph`] or [`map_net_opts`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Mapping {
    /// Chip name.
    pub chip: String,
    /// Columns of the system grid: the chip's mesh, times `system.chips_x` chips side by side.
    pub mesh_cols: usize,
    /// Rows of the system grid: the chip's mesh, times `system.chips_y`.
    pub mesh_rows: usize,
    /// Cores in the system, `mesh_cols × mesh_rows`.
    pub cores_available: u64,
    /// Per-core capacities.
    pub capacity: CoreCapacity,
    /// One per neuron layer; layer 0 holds the input (relay) neurons.
    pub layers: Vec<LayerPlacement>,
    /// One per used core, in core-id order.
    pub cores: Vec<CoreUse>,
    /// Highest use of each resource (neurons, synapses, input axons, fan-out) and where.
    pub pressure: Vec<Pressure>,
    /// `hop_histogram[h]` = number of forward routes (presynaptic neuron, destination core)
    /// with `h` hops, the partial-sum routes of split layers (segment core, neuron) included.
    /// Empty if there are no routes.
    pub hop_histogram: Vec<u64>,
    /// Forward routes: Σ over non-output layers of size × chunks of the next layer, plus
    /// segments × size of every split layer, plus size × chunks of every recurrent layer.
    pub total_routes: u64,
    /// Longest route in hops (0 if none).
    pub max_hops: u32,
    /// Mean route length in hops (0 if no routes).
    pub mean_hops: f64,
    /// Layers share cores ([packed placement](self#packed-placement)): [`Mapping::cores`]
    /// then lists one row per (core, layer).
    pub packed: bool,
    /// With sparse layers: how they were placed, and what the other way would need.
    pub sparse: Option<SparseChoice>,
}

/// How to place a net's sparse layers ([`map_net_with`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Placement {
    /// [By receptive field](self#receptive-fields) or with dense rows, whichever needs fewer
    /// cores (on a tie, by receptive field: fewer rows and packets).
    #[default]
    FewestCores,
    /// Dense rows, the zeros stored and masked (on a chip that fits each core's rows to a
    /// crossbar, such as TrueNorth's, a core then fits fewer neurons' rows: a closer fit).
    Dense,
    /// By receptive field (an error where no sparse layer can be).
    ReceptiveField,
}

impl Placement {
    /// The name (`fewest-cores`, `dense`, `receptive-field`).
    pub fn name(self) -> &'static str {
        match self {
            Placement::FewestCores => "fewest-cores",
            Placement::Dense => "dense",
            Placement::ReceptiveField => "receptive-field",
        }
    }
}

impl std::str::FromStr for Placement {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [
            Placement::FewestCores,
            Placement::Dense,
            Placement::ReceptiveField,
        ]
        .into_iter()
        .find(|p| p.name() == s)
        .ok_or_else(|| format!("'{s}' is not a placement (fewest-cores, dense or receptive-field)"))
    }
}

/// How a net with sparse layers was placed: [by receptive field](self#receptive-fields) or
/// with dense rows (its zeros stored and masked), as asked ([`Placement`]; by default whichever
/// needs fewer cores, a tie going to receptive fields: fewer rows and packets). A
/// [packed](self#packed-placement) placement takes dense rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SparseChoice {
    /// The placement taken: `"receptive-field"` or `"dense"`.
    pub chosen: &'static str,
    /// The placement asked for.
    pub asked: Placement,
    /// Cores placing by receptive field needs (`None`: it does not fit).
    pub receptive_field_cores: Option<usize>,
    /// Cores dense rows need (`None`: they do not fit).
    pub dense_cores: Option<usize>,
}

impl Mapping {
    /// The core hosting neuron `neuron` of layer `layer` (its position in the layer's
    /// [`order`](LayerPlacement::order), then a binary search over the chunks).
    ///
    /// # Panics
    /// If `layer` or `neuron` is out of range, like slice indexing.
    pub fn core_of(&self, layer: usize, neuron: usize) -> usize {
        let lp = &self.layers[layer];
        assert!(
            neuron < lp.size,
            "neuron {neuron} is out of range for layer {layer} of size {}",
            lp.size
        );
        let p = lp.order.iter().position(|&i| i == neuron).unwrap_or(neuron);
        let i = lp.chunks.partition_point(|c| c.start <= p);
        lp.chunks[i - 1].core
    }

    /// The cores hosting neuron layer `layer`, in chunk order: where a packet from a neuron of
    /// layer `layer − 1` must go, unless the layer's fan-in is split (then to the chunk's
    /// segment holding that neuron's axon, [`LayerPlacement::segment_cores`]).
    ///
    /// # Panics
    /// If `layer` is out of range.
    pub fn dest_cores(&self, layer: usize) -> &[usize] {
        &self.layers[layer].cores
    }

    /// Route length from core `from` to core `to` under dimension-order (XY) routing: the
    /// Manhattan distance on the mesh. Zero within a core.
    pub fn hops(&self, from: usize, to: usize) -> u32 {
        let d = crate::chip::hops(self.mesh_cols as u64, from as u64, to as u64);
        u32::try_from(d).unwrap_or(u32::MAX)
    }

    /// Number of cores used.
    pub fn cores_used(&self) -> usize {
        let mut ids: Vec<usize> = self.cores.iter().map(|c| c.core).collect();
        ids.dedup();
        ids.len()
    }

    /// The layer widths, input first.
    pub fn sizes(&self) -> Vec<usize> {
        self.layers.iter().map(|l| l.size).collect()
    }
}

/// Core id of position `i` of the boustrophedon walk over a mesh `cols` wide.
fn snake_core(i: u64, cols: u64) -> u64 {
    let y = i / cols;
    let along = i % cols;
    let x = if y.is_multiple_of(2) {
        along
    } else {
        cols - 1 - along
    };
    y * cols + x
}

fn to_usize(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

fn frac(used: usize, cap: usize) -> f64 {
    if cap == 0 {
        0.0
    } else {
        used as f64 / cap as f64
    }
}

/// Place a densely connected layered network with widths `sizes` (input first) on `chip`,
/// following the policy in the [module docs](self).
///
/// # Errors
/// Fewer than two layers, a zero width, a zero capacity in the chip model, a neuron needing
/// more routing entries than a core has, or more cores than the mesh has (a fan-in above a
/// core's input axons or synapses is split, not an error). See [`MapError`].
pub fn map_layered(sizes: &[usize], chip: &ChipModel) -> Result<Mapping, MapError> {
    map_net(sizes, &[], &[], chip)
}

/// [`map_layered`] for a net whose neuron layers may also project onto themselves:
/// `recurrent[l]` marks layer `l` (a missing entry: not recurrent). A recurrent layer's fan-in
/// is the layer below and its own width, its rows are held in that order, and its neurons send
/// to the layer's own cores as well as the next layer's (ARCHITECTURE.md §5). A recurrent
/// fan-in is not split.
///
/// `masks[l]` (a missing entry or `None`: dense) marks the synapses of synaptic layer `l` that
/// exist, row-major `(sizes[l + 1], sizes[l])`: the net is then placed [by receptive
/// field](self#receptive-fields) or with dense rows, whichever needs fewer cores
/// ([`Mapping::sparse`] says which and what the other needs).
///
/// # Errors
/// As [`map_layered`]; the input layer marked recurrent; a recurrent fan-in over a core's
/// axons or synapse rows ([`MapError::RecurrentSplit`]); a mask of the wrong length
/// ([`MapError::MaskShape`]).
pub fn map_net(
    sizes: &[usize],
    recurrent: &[bool],
    masks: &[Option<BitVec<usize, Lsb0>>],
    chip: &ChipModel,
) -> Result<Mapping, MapError> {
    map_net_with(sizes, recurrent, masks, chip, Placement::FewestCores)
}

/// [`map_net`] with the sparse layers placed as `placement` asks (without masks it changes
/// nothing).
///
/// # Errors
/// As [`map_net`]; with [`Placement::Dense`], the dense placement's error; with
/// [`Placement::ReceptiveField`], [`MapError::NoReceptiveField`] where no sparse layer can be
/// placed by receptive field.
pub fn map_net_with(
    sizes: &[usize],
    recurrent: &[bool],
    masks: &[Option<BitVec<usize, Lsb0>>],
    chip: &ChipModel,
    placement: Placement,
) -> Result<Mapping, MapError> {
    map_net_opts(sizes, recurrent, masks, chip, placement, true)
}

/// [`map_net_with`], and with `duplicate_inputs` false no layer's inputs are
/// [duplicated](self#duplicated-inputs) (one axon per input, as on a chip with a weight per
/// synapse).
///
/// # Errors
/// As [`map_net_with`].
pub fn map_net_opts(
    sizes: &[usize],
    recurrent: &[bool],
    masks: &[Option<BitVec<usize, Lsb0>>],
    chip: &ChipModel,
    placement: Placement,
    duplicate_inputs: bool,
) -> Result<Mapping, MapError> {
    let masks: Vec<Option<&BitSlice<usize, Lsb0>>> = masks.iter().map(|m| m.as_deref()).collect();
    chain(
        sizes,
        recurrent,
        &masks,
        &[],
        chip,
        placement,
        duplicate_inputs,
    )
}

/// How [`map_graph`] places a graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapOptions {
    /// How sparse layers are placed.
    pub placement: Placement,
    /// Whether a crossbar chip's cores may take each input twice
    /// ([duplicated inputs](self#duplicated-inputs)).
    pub duplicate_inputs: bool,
}

impl Default for MapOptions {
    fn default() -> Self {
        MapOptions {
            placement: Placement::FewestCores,
            duplicate_inputs: true,
        }
    }
}

/// Place a network [`Graph`] on `chip`: a chain of groups as the [module docs](self) describe
/// for layered nets ([`map_net_opts`] is the same for a chain given by its widths), and one
/// [all-to-all group](self#all-to-all-groups) as a single recurrent layer holding its input
/// relays.
///
/// # Errors
/// A graph [`Graph::shape`] rejects ([`MapError::Graph`]), and every error of [`map_net_opts`].
pub fn map_graph(graph: &Graph, chip: &ChipModel, opts: MapOptions) -> Result<Mapping, MapError> {
    match graph.shape()? {
        Shape::Chain {
            sizes,
            recurrent,
            masks,
            kernels,
        } => chain(
            &sizes,
            &recurrent,
            &masks,
            &kernels,
            chip,
            opts.placement,
            opts.duplicate_inputs,
        ),
        Shape::AllToAll { n } => place(&[n], &[true], &[], &[], chip, false, true),
    }
}

/// [`map_net_opts`] over borrowed masks.
fn chain(
    sizes: &[usize],
    recurrent: &[bool],
    masks: &MaskRefs<'_>,
    kernels: &[Option<&Kernel>],
    chip: &ChipModel,
    placement: Placement,
    duplicate_inputs: bool,
) -> Result<Mapping, MapError> {
    for (l, m) in masks.iter().enumerate() {
        if let Some(m) = m
            && l + 1 < sizes.len()
            && m.len() != sizes[l + 1].saturating_mul(sizes[l])
        {
            return Err(MapError::MaskShape {
                layer: l + 1,
                len: m.len(),
                size: sizes[l + 1],
                below: sizes[l],
            });
        }
    }
    if masks.iter().all(Option::is_none) {
        return place(sizes, recurrent, masks, &[], chip, duplicate_inputs, false);
    }
    let by_field = place(
        sizes,
        recurrent,
        masks,
        kernels,
        chip,
        duplicate_inputs,
        false,
    );
    // Packed placement ignores masks, and a masked layer whose fields do not fit a core (or
    // that is recurrent) takes dense rows: such a result is not by receptive field.
    let fields = by_field
        .as_ref()
        .ok()
        .filter(|m| m.layers.iter().any(|lp| !lp.receptive.is_empty()));
    let dense = place(sizes, recurrent, &[], &[], chip, duplicate_inputs, false);
    let (m, chosen) = match (placement, fields, &dense) {
        (Placement::Dense, _, _) => (dense.clone(), "dense"),
        (Placement::ReceptiveField, Some(a), _) => (Ok(a.clone()), "receptive-field"),
        (Placement::ReceptiveField, None, _) => {
            return Err(match &by_field {
                Err(e) => MapError::NoReceptiveField {
                    why: format!("placed that way the net does not fit: {e}"),
                },
                Ok(m) if m.packed => MapError::NoReceptiveField {
                    why: "the layers share cores (packed placement), which holds dense rows".into(),
                },
                Ok(_) => MapError::NoReceptiveField {
                    why: "each sparse layer is recurrent or has a neuron whose field is wider \
                          than a core's input axons or synapse rows"
                        .into(),
                },
            });
        }
        (Placement::FewestCores, Some(a), Ok(b)) if b.cores_used() < a.cores_used() => {
            (dense.clone(), "dense")
        }
        (Placement::FewestCores, Some(a), _) => (Ok(a.clone()), "receptive-field"),
        (Placement::FewestCores, None, Ok(_)) => (dense.clone(), "dense"),
        (Placement::FewestCores, None, Err(_)) => (by_field.clone(), "dense"),
    };
    let c = SparseChoice {
        chosen,
        asked: placement,
        receptive_field_cores: fields.map(Mapping::cores_used),
        dense_cores: dense.as_ref().ok().map(Mapping::cores_used),
    };
    m.map(|mut m| {
        m.sparse = Some(c);
        m
    })
}

/// [`map_net`] with the given masks taken as they are. With `relays_inside`, layer 0 is an
/// [all-to-all group](self#all-to-all-groups): its input relays and neurons in one range,
/// projecting onto itself (`recurrent[0]`), the only layer.
fn place(
    sizes: &[usize],
    recurrent: &[bool],
    masks: &MaskRefs<'_>,
    kernels: &[Option<&Kernel>],
    chip: &ChipModel,
    duplicate: bool,
    relays_inside: bool,
) -> Result<Mapping, MapError> {
    let name = chip.name.clone();
    let rec = |l: usize| recurrent.get(l).copied().unwrap_or(false);
    if rec(0) && !relays_inside {
        return Err(MapError::RecurrentInput);
    }
    // A layer's fan-in: the layer below, and its own neurons where it loops.
    let fan_in =
        |l: usize| l.checked_sub(1).map_or(0, |b| sizes[b]) + if rec(l) { sizes[l] } else { 0 };
    if sizes.len() < 2 && !relays_inside {
        return Err(MapError::TooFewLayers {
            layers: sizes.len(),
        });
    }
    let zero: Vec<MapError> = (0..sizes.len())
        .filter(|&l| sizes[l] == 0)
        .map(|layer| MapError::ZeroWidth { layer })
        .collect();
    if let Some(e) = MapError::all(zero) {
        return Err(e);
    }
    let c = &chip.core;
    let cap = CoreCapacity {
        neurons: c.neurons as usize,
        synapses: c.synapses as usize,
        input_axons: c.input_axons as usize,
        fanout: c.fanout as usize,
        axon_types: c.axon_types,
        neuron_fanin: c.neuron_fanin.map(|f| f as usize),
        compartments: c.dendrite_compartments as usize,
    };
    for (resource, v) in [
        ("neurons", cap.neurons),
        ("synapses", cap.synapses),
        ("input_axons", cap.input_axons),
        ("fanout", cap.fanout),
    ] {
        if v == 0 {
            return Err(MapError::ZeroCapacity {
                chip: name,
                resource,
            });
        }
    }
    // Core ids are positions on the system grid (one chip's mesh unless `[system]` joins
    // several), as the engine's routers read them.
    let grid = chip.grid();
    let cols = u64::from(grid.cols);
    let rows = u64::from(grid.rows);
    let available = cols * rows;
    // An all-to-all group is cut into chunks on cores of its own: it is not packed.
    if (c.external_inputs || c.recurrent) && !relays_inside {
        return map_packed(sizes, recurrent, chip, cap);
    }

    // Fan-in limits, in layer order (they do not depend on the placement).
    // A fan-in larger than a core's input axons, synapses or compartments' synapses is split
    // into segments; a sparse one whose every neuron's receptive field fits a core is placed
    // by receptive field.
    let per_segment = cap.per_core_fanin();
    let sparse: Vec<Option<&BitSlice<usize, Lsb0>>> = (0..sizes.len())
        .map(|l| {
            let m = (*masks.get(l.checked_sub(1)?)?)?;
            let below = sizes[l - 1];
            let fits =
                (0..sizes[l]).all(|i| m[i * below..(i + 1) * below].count_ones() <= per_segment);
            (!rec(l) && fits).then_some(m)
        })
        .collect();
    // A convolution placed by receptive field on a chip that shares weights: its cores store
    // the kernel once per channel they host.
    let shared: Vec<Option<&Kernel>> = (0..sizes.len())
        .map(|l| {
            let k = (*kernels.get(l.checked_sub(1)?)?)?;
            // (A channel's kernel must fit a core's synapses.)
            (c.weight_sharing && sparse[l].is_some() && k.taps <= cap.synapses).then_some(k)
        })
        .collect();
    // Violations that do not depend on the placement: every one is reported.
    let mut violations = Vec::new();
    let mut segments: Vec<Vec<Segment>> = Vec::with_capacity(sizes.len());
    for (l, &size) in sizes.iter().enumerate() {
        let fan_in = if sparse[l].is_some() { 0 } else { fan_in(l) };
        if rec(l) && fan_in > per_segment {
            violations.push(MapError::RecurrentSplit {
                chip: name.clone(),
                layer: l,
                size,
                fan_in,
                capacity: per_segment,
            });
            segments.push(Vec::new());
            continue;
        }
        segments.push(if fan_in <= per_segment {
            Vec::new()
        } else {
            let parts = fan_in.div_ceil(per_segment);
            let (base, extra) = (fan_in / parts, fan_in % parts);
            let mut start = 0;
            (0..parts)
                .map(|i| {
                    let axons = base + usize::from(i < extra);
                    let sg = Segment { start, axons };
                    start += axons;
                    sg
                })
                .collect()
        });
    }

    // Compartments per neuron of each layer: its largest row on one core (its whole fan-in,
    // its largest receptive field, or its largest segment) over a compartment's synapses.
    let comps: Vec<usize> = (0..sizes.len())
        .map(|l| {
            let row = if let Some(m) = sparse[l] {
                let below = sizes[l - 1];
                (0..sizes[l])
                    .map(|i| m[i * below..(i + 1) * below].count_ones())
                    .max()
                    .unwrap_or(0)
            } else {
                segments[l]
                    .iter()
                    .map(|g| g.axons)
                    .max()
                    .unwrap_or(fan_in(l))
            };
            if l == 0 && !relays_inside {
                1
            } else {
                cap.compartments_for(row)
            }
        })
        .collect();
    // (A recurrent layer refused above is not refused twice.)
    for l in
        (0..sizes.len()).filter(|&l| comps[l] > cap.neurons && !(rec(l) && fan_in(l) > per_segment))
    {
        violations.push(MapError::Compartments {
            chip: name.clone(),
            layer: l,
            compartments: comps[l],
            neurons: cap.neurons,
        });
    }
    if let Some(e) = MapError::all(violations) {
        return Err(e);
    }

    let n = sizes.len();
    // A sparse hidden layer's neurons in receptive-field order: by the first position of the
    // layer below they see, then the last, then their index (a convolution's channels of one
    // position side by side). Positions of the other layers are their neurons.
    let mut order: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut pos: Vec<Vec<usize>> = vec![Vec::new(); n];
    for l in 1..n.saturating_sub(1) {
        if let Some(m) = sparse[l] {
            order[l] = field_order(m, sizes[l - 1], sizes[l], &pos[l - 1]);
            pos[l] = inverse(&order[l]);
        }
    }
    let mut limit = vec![(0usize, ""); n];
    let mut count = vec![0usize; n];
    let mut fields: Vec<Vec<Field>> = vec![Vec::new(); n];
    // Per neuron of layer l, the cores of layer l + 1 it sends to.
    let mut dests: Vec<Vec<usize>> = vec![Vec::new(); n];
    for l in (0..n).rev() {
        if l + 1 < n {
            dests[l] = if sparse[l + 1].is_none() {
                vec![count[l + 1]; sizes[l]]
            } else {
                let mut d = vec![0usize; sizes[l]];
                for f in &fields[l + 1] {
                    for r in &f.runs {
                        d[r.start..r.start + r.axons]
                            .iter_mut()
                            .for_each(|x| *x += 1);
                    }
                }
                d
            };
        }
        // A sparse layer, and a dense one feeding a sparse one (its neurons' destinations
        // differ), are cut greedily.
        let feeds_sparse = l + 1 < n && sparse[l + 1].is_some();
        if sparse[l].is_some() || (feeds_sparse && segments[l].is_empty() && !rec(l)) {
            let d = &dests[l];
            let (below, fan_in) = (if l == 0 { 0 } else { sizes[l - 1] }, fan_in(l));
            let cut = |neurons: usize| {
                let cap = CoreCapacity { neurons, ..cap };
                let layer = Layer {
                    mask: sparse[l],
                    kernel: shared[l],
                    below,
                    size: sizes[l],
                    fan_in,
                    order: &order[l],
                    pos_below: l.checked_sub(1).map_or(&[][..], |b| &pos[b]),
                };
                greedy_chunks(&layer, &cap, |p| d.get(p).copied().unwrap_or(0))
            };
            let (mut f, by) = cut(cap.neurons / comps[l]).map_err(|needed| MapError::Fanout {
                chip: name.clone(),
                layer: l,
                reach: Reach::Next,
                needed,
                capacity: cap.fanout,
            })?;
            // Even the chunks out: the fewest neurons a chunk may take that still gives as few
            // chunks (fewer neurons per chunk never takes fewer chunks, so bisect).
            let fewest = f.len();
            let (mut lo, mut hi) = (
                sizes[l].div_ceil(fewest),
                f.iter().map(|f| f.len).max().unwrap_or(1),
            );
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                match cut(mid) {
                    Ok((g, _)) if g.len() <= fewest => (hi, f) = (mid, g),
                    _ => lo = mid + 1,
                }
            }
            limit[l] = (f.iter().map(|f| f.len).max().unwrap_or(0), by);
            count[l] = f.len();
            fields[l] = f;
            continue;
        }
        let mut k = (cap.neurons / comps[l], "neurons");
        // Synapses of one neuron on one core: its whole fan-in, or its largest segment.
        let row = segments[l]
            .iter()
            .map(|g| g.axons)
            .max()
            .unwrap_or(fan_in(l));
        if row > 0 && cap.synapses / row < k.0 {
            k = (cap.synapses / row, "synapses");
        }
        // A segment sends one partial sum per neuron: a routing entry each.
        if !segments[l].is_empty() && cap.fanout < k.0 {
            k = (cap.fanout, "fanout");
        }
        let next = dests[l].iter().copied().max().unwrap_or(0);
        // A recurrent layer's neurons also send to each of its own cores: the fewer neurons
        // per core, the more cores, so shrink the chunk until both fit.
        loop {
            let dest = next + if rec(l) { sizes[l].div_ceil(k.0) } else { 0 };
            if dest == 0 || cap.fanout / dest >= k.0 {
                break;
            }
            if cap.fanout / dest == 0 {
                return Err(MapError::Fanout {
                    chip: name,
                    layer: l,
                    reach: match (rec(l), l + 1 < n) {
                        (true, true) => Reach::NextAndOwn,
                        (true, false) => Reach::Own,
                        (false, _) => Reach::Next,
                    },
                    needed: dest,
                    capacity: cap.fanout,
                });
            }
            k = (cap.fanout / dest, "fanout");
        }
        limit[l] = k;
        count[l] = sizes[l].div_ceil(k.0);
    }
    // Cores per layer: a chunk's core, plus its segments' cores when split.
    let layer_cores: Vec<usize> = (0..n)
        .map(|l| count[l].saturating_mul(1 + segments[l].len()))
        .collect();
    let needed = layer_cores
        .iter()
        .fold(0u64, |acc, &c| acc.saturating_add(c as u64));
    if needed > available {
        // Layers sharing cores may still fit (without split fan-ins).
        if segments.iter().all(Vec::is_empty)
            && !relays_inside
            && let Ok(m) = map_packed(sizes, recurrent, chip, cap)
        {
            return Ok(m);
        }
        return Err(MapError::TooManyCores {
            chip: name,
            needed,
            available,
            per_layer: layer_cores,
        });
    }

    // Even split, cores along the snake.
    let mut layers = Vec::with_capacity(n);
    let mut cores = Vec::with_capacity(to_usize(needed));
    let mut walk = 0u64;
    for l in 0..n {
        let (size, parts) = (sizes[l], count[l]);
        let (base, extra) = (size / parts, size % parts);
        let mut chunks = Vec::with_capacity(parts);
        let mut segment_cores = Vec::new();
        let own = if rec(l) { parts } else { 0 };
        let mut start = 0;
        for i in 0..parts {
            let len = fields[l]
                .get(i)
                .map_or(base + usize::from(i < extra), |f| f.len);
            let fanout = dests[l]
                .get(start..start + len)
                .map_or(0, |d| d.iter().sum::<usize>())
                + len * own;
            let mut segs = Vec::with_capacity(segments[l].len());
            for (g, sg) in segments[l].iter().enumerate() {
                let core = to_usize(snake_core(walk, cols));
                walk += 1;
                segs.push(core);
                // A segment sends one partial sum per neuron, to the chunk's core.
                let mut cu = core_use(core, cols, &cap, l, start, len, sg.axons, len, Some(g));
                cu.set_slots(comps[l], cap.neurons);
                cores.push(cu);
            }
            let core = to_usize(snake_core(walk, cols));
            walk += 1;
            chunks.push(Chunk { core, start, len });
            let fan_in = match fields[l].get(i) {
                Some(f) => f.axons,
                None if segments[l].is_empty() => fan_in(l),
                None => 0,
            };
            let mut cu = core_use(core, cols, &cap, l, start, len, fan_in, fanout, None);
            if segments[l].is_empty() {
                // Each neuron takes a slot per compartment.
                cu.set_slots(comps[l], cap.neurons);
            }
            if let (Some(k), Some(f)) = (shared[l], fields[l].get(i)) {
                // One kernel per channel hosted, not a row per neuron.
                cu.synapses = f.channels * k.taps;
                cu.synapses_util = frac(cu.synapses, cap.synapses);
            }
            cores.push(cu);
            if !segs.is_empty() {
                segment_cores.push(segs);
            }
            start += len;
        }
        let core_ids = chunks.iter().map(|c| c.core).collect();
        layers.push(LayerPlacement {
            layer: l,
            size,
            chunks,
            cores: core_ids,
            max_chunk: limit[l].0,
            limited_by: limit[l].1,
            segments: segments[l].clone(),
            segment_cores,
            recurrent: rec(l),
            receptive: match sparse[l] {
                Some(_) => fields[l].iter().map(|f| f.runs.clone()).collect(),
                None => Vec::new(),
            },
            order: order[l].clone(),
            copies: 1,
            compartments: comps[l],
            shared: shared[l].map(|k| SharedWeights {
                taps: k.taps,
                channels: k.channels(size),
                stored: fields[l].iter().map(|f| f.channels * k.taps).sum(),
                synapses: sparse[l].map_or(0, BitSlice::count_ones),
                rows: fields[l].iter().map(|f| f.len * f.axons).sum(),
            }),
        });
    }
    cores.sort_by_key(|c| c.core);
    if duplicate && cap.axon_types.is_some() {
        duplicate_inputs(&mut layers, &mut cores, &cap);
    }

    Ok(finish(chip, cap, layers, cores, false))
}

/// [Packed placement](self#packed-placement): layers in order fill the current core, then the
/// next along the snake.
///
/// # Errors
/// A fan-in a core cannot hold whole (packing does not split), a core's routing entries over
/// capacity, or more cores than the mesh has.
fn map_packed(
    sizes: &[usize],
    rec_layers: &[bool],
    chip: &ChipModel,
    cap: CoreCapacity,
) -> Result<Mapping, MapError> {
    let name = chip.name.clone();
    let rec = |l: usize| rec_layers.get(l).copied().unwrap_or(false);
    // A recurrent layer's own neurons take input axons like any presynaptic layer, unless the
    // chip connects a core's neurons internally and the whole layer sits on one core.
    let own = |l: usize| if rec(l) { sizes[l] } else { 0 };
    let (external, recurrent) = (chip.core.external_inputs, chip.core.recurrent);
    let grid = chip.grid();
    let cols = u64::from(grid.cols);
    let available = cols * u64::from(grid.rows);
    let n = sizes.len();
    let mut placed: Vec<Vec<Piece>> = vec![Vec::new(); n];
    let mut walk = 0u64;
    let (mut n_left, mut s_left, mut a_left) = (cap.neurons, cap.synapses, cap.input_axons);
    // Compartments per neuron: its fan-in over a compartment's synapses.
    let comps = |l: usize| {
        if l == 0 {
            1
        } else {
            cap.compartments_for(sizes[l - 1] + own(l))
        }
    };
    for l in 0..n {
        let fan_in = if l > 0 { sizes[l - 1] + own(l) } else { 0 };
        // (Axons are checked below: a layer reached through the internal array uses none.)
        if fan_in > cap.neuron_limit() {
            return Err(MapError::PackedFanIn {
                chip: name,
                layer: l,
                fan_in,
                capacity: cap.neuron_limit(),
                compartments: true,
            });
        }
        if comps(l) > cap.neurons {
            return Err(MapError::Compartments {
                chip: name,
                layer: l,
                compartments: comps(l),
                neurons: cap.neurons,
            });
        }
        let k = comps(l);

        if l == 0 && external {
            // Relays stand for the off-chip inputs: no capacity, at the first core.
            placed[0].push(Piece {
                walk,
                start: 0,
                len: sizes[0],
                axons: 0,
                local: false,
                own_local: false,
            });
            continue;
        }
        // The layer below wholly on core `w` of a `recurrent` chip: reached without axons.
        let below_local = |w: u64, placed: &[Vec<Piece>]| {
            recurrent && l > 0 && !(l == 1 && external) && placed[l - 1].iter().all(|p| p.walk == w)
        };
        if recurrent && rec(l) {
            // The whole layer on one core, its own connections internal: on this core if it
            // fits, else on a fresh one.
            let below = |w| {
                if below_local(w, &placed) {
                    0
                } else {
                    sizes[l - 1]
                }
            };
            let fits = |(nl, sl, al): (usize, usize, usize), w: u64| {
                sizes[l] * k <= nl && sizes[l].saturating_mul(fan_in) <= sl && below(w) <= al
            };
            let here = fits((n_left, s_left, a_left), walk);
            let fresh = (cap.neurons, cap.synapses, cap.input_axons);
            if here || fits(fresh, walk + 1) {
                if !here {
                    walk += 1;
                    (n_left, s_left, a_left) = fresh;
                }
                let axons = below(walk);
                placed[l].push(Piece {
                    walk,
                    start: 0,
                    len: sizes[l],
                    axons,
                    local: axons == 0,
                    own_local: true,
                });
                n_left -= sizes[l] * k;
                s_left -= sizes[l] * fan_in;
                a_left -= axons;
                continue;
            }
        }
        let mut start = 0;
        while start < sizes[l] {
            let local = below_local(walk, &placed);
            let axons = if local { own(l) } else { fan_in };
            let fit = if axons > a_left {
                0
            } else {
                (n_left / k).min(s_left.checked_div(fan_in).unwrap_or(usize::MAX))
            };
            if fit == 0 {
                if (n_left, s_left, a_left) == (cap.neurons, cap.synapses, cap.input_axons) {
                    // Not even an empty core holds one neuron of this layer.
                    return Err(MapError::PackedFanIn {
                        chip: name,
                        layer: l,
                        fan_in,
                        capacity: cap.input_axons.min(cap.synapses),
                        compartments: false,
                    });
                }
                walk += 1;
                (n_left, s_left, a_left) = (cap.neurons, cap.synapses, cap.input_axons);
                continue;
            }
            let len = fit.min(sizes[l] - start);
            placed[l].push(Piece {
                walk,
                start,
                len,
                axons,
                local,
                own_local: false,
            });
            n_left -= len * k;
            s_left -= len * fan_in;
            a_left -= axons;
            start += len;
        }
    }
    let needed = walk + 1;
    if needed > available {
        return Err(MapError::PackedCores {
            chip: name,
            needed,
            available,
        });
    }
    let core_of = |w: u64| to_usize(snake_core(w, cols));
    let mut layers = Vec::with_capacity(n);
    let mut cores = Vec::new();
    let mut fanout_per_core: Vec<(usize, usize)> = Vec::new();
    for l in 0..n {
        let relays = l == 0 && external;
        let mut chunks = Vec::new();
        for &Piece {
            walk: w,
            start,
            len,
            axons,
            own_local,
            ..
        } in &placed[l]
        {
            let core = core_of(w);
            // One routing entry per neuron and distinct destination core (none for off-chip
            // inputs). A destination chunk this core reaches through the recurrent array (the
            // next layer's, or the layer's own) needs none.
            let mut dest: Vec<u64> = placed.get(l + 1).map_or(Vec::new(), |p| {
                p.iter()
                    .filter(|c| !(c.local && c.walk == w))
                    .map(|c| c.walk)
                    .collect()
            });
            if rec(l) && !own_local {
                dest.extend(placed[l].iter().map(|c| c.walk));
                dest.sort_unstable();
            }
            dest.dedup();
            let fanout = if relays { 0 } else { len * dest.len() };
            fanout_per_core.push((core, fanout));
            let mut u = core_use(
                core,
                cols,
                &cap,
                l,
                start,
                len,
                if l == 0 { 0 } else { sizes[l - 1] + own(l) },
                fanout,
                None,
            );
            u.input_axons = axons;
            u.input_axons_util = frac(axons, cap.input_axons);
            if relays {
                u.neurons = 0;
                u.neurons_util = 0.0;
            } else {
                u.set_slots(comps(l), cap.neurons);
            }
            cores.push(u);
            chunks.push(Chunk { core, start, len });
        }
        let max_chunk = chunks.iter().map(|c| c.len).max().unwrap_or(0);
        layers.push(LayerPlacement {
            layer: l,
            size: sizes[l],
            cores: chunks.iter().map(|c| c.core).collect(),
            chunks,
            max_chunk,
            limited_by: if relays { "off-chip" } else { "packed" },
            segments: Vec::new(),
            segment_cores: Vec::new(),
            recurrent: rec(l),
            receptive: Vec::new(),
            order: Vec::new(),
            copies: 1,
            compartments: comps(l),
            shared: None,
        });
    }
    for (core, _) in &fanout_per_core {
        let used: usize = fanout_per_core
            .iter()
            .filter(|(c, _)| c == core)
            .map(|(_, f)| f)
            .sum();
        if used > cap.fanout {
            return Err(MapError::PackedFanout {
                chip: name,
                core: *core,
                needed: used,
                capacity: cap.fanout,
            });
        }
    }
    cores.sort_by_key(|c| (c.core, c.layer));
    Ok(finish(chip, cap, layers, cores, true))
}

/// A chunk of packed placement: its core along the walk, its neurons, the input axons it uses,
/// and whether the layer below (`local`) and its own layer (`own_local`, a recurrent layer
/// wholly on this core) reach it through the chip's recurrent array.
#[derive(Clone, Copy, Debug)]
struct Piece {
    walk: u64,
    start: usize,
    len: usize,
    axons: usize,
    local: bool,
    own_local: bool,
}

/// One chunk of a layer cut greedily: its neurons, and (placed by receptive field) the
/// presynaptic neurons they see as runs, and how many input axons the chunk uses.
#[derive(Clone, Debug)]
struct Field {
    len: usize,
    runs: Vec<Segment>,
    axons: usize,
    /// Channels among its neurons (a shared kernel's; 0 without one).
    channels: usize,
}

/// A layer as [`greedy_chunks`] cuts it: its mask (`(size, below)` row-major, `None`: dense
/// rows of `fan_in` each), its neurons in placement order (empty: natural) and the placement
/// positions of the layer below (empty: natural).
struct Layer<'a> {
    mask: Option<&'a BitSlice<usize, Lsb0>>,
    /// A kernel its cores store once per channel ([weight sharing](self#weight-sharing)).
    kernel: Option<&'a Kernel>,
    below: usize,
    size: usize,
    fan_in: usize,
    order: &'a [usize],
    pos_below: &'a [usize],
}

/// Neurons of a `(size, below)` mask sorted by the first position (`pos_below`, empty:
/// natural) of the layer below they see, then the last, then index (a neuron that sees none
/// last).
fn field_order(
    mask: &BitSlice<usize, Lsb0>,
    below: usize,
    size: usize,
    pos_below: &[usize],
) -> Vec<usize> {
    let key = |i: usize| {
        let row = &mask[i * below..(i + 1) * below];
        let (mut lo, mut hi) = (usize::MAX, usize::MAX);
        for j in row.iter_ones() {
            let p = at(pos_below, j);
            lo = lo.min(p);
            hi = if hi == usize::MAX { p } else { hi.max(p) };
        }
        (lo, hi, i)
    };
    let mut keys: Vec<(usize, usize, usize)> = (0..size).map(key).collect();
    keys.sort_unstable();
    keys.into_iter().map(|k| k.2).collect()
}

/// `v[k]`, or `k` where `v` is empty: a neuron's position, or a position's neuron, in a layer
/// that may keep its natural order ([`LayerPlacement::order`]).
#[inline]
pub(crate) fn at(v: &[usize], k: usize) -> usize {
    v.get(k).copied().unwrap_or(k)
}

/// The inverse of a permutation (empty for empty).
pub(crate) fn inverse(order: &[usize]) -> Vec<usize> {
    let mut pos = vec![0; order.len()];
    for (p, &i) in order.iter().enumerate() {
        pos[i] = p;
    }
    pos
}

/// Chunks of a layer cut greedily in placement order: a neuron joins the current chunk while
/// the chunk stays within a core's neurons, its input axons within the core's axons, axons
/// times neurons within its synapses, and their routing entries (`dests(position)` each)
/// within its fan-out. With a mask the layer is placed [by receptive
/// field](self#receptive-fields): a chunk's axons are the union of its neurons' fields (runs of
/// positions of the layer below); without, every neuron takes the `fan_in` rows of the whole
/// layer below. Returns the chunks and the capacity that closed the most of them
/// (`"neurons"` when none was closed), or the routing entries of a neuron that needs more than
/// a core has.
fn greedy_chunks(
    layer: &Layer<'_>,
    cap: &CoreCapacity,
    dests: impl Fn(usize) -> usize,
) -> Result<(Vec<Field>, &'static str), usize> {
    let Layer {
        mask,
        kernel,
        below,
        size,
        fan_in,
        order,
        pos_below,
    } = *layer;
    let mut out = Vec::new();
    let mut closed = [0usize; 4];
    const WHY: [&str; 4] = ["neurons", "input_axons", "synapses", "fanout"];
    let mut seen = bitvec![usize, Lsb0; 0; if mask.is_some() { below } else { 0 }];
    let mut chans = bitvec![usize, Lsb0; 0; kernel.map_or(0, |k| k.channels(size))];
    let mut i = 0;
    while i < size {
        let start = i;
        let (mut axons, mut fan, mut channels) = (0usize, 0usize, 0usize);
        seen.fill(false);
        chans.fill(false);
        while i < size {
            let neuron = at(order, i);
            // Stored weights: a kernel per channel hosted, or a row per neuron.
            let (ch, stored) = match kernel {
                Some(k) => {
                    let c = k.channel(neuron);
                    let ch = channels + usize::from(!chans[c]);
                    (ch, ch.saturating_mul(k.taps))
                }
                None => (0, 0),
            };
            let row = mask.map(|m| &m[neuron * below..(neuron + 1) * below]);
            let fresh = match row {
                Some(row) => row.iter_ones().filter(|&j| !seen[at(pos_below, j)]).count(),
                None => fan_in - axons,
            };
            let (k, a, f) = (i - start + 1, axons + fresh, fan + dests(i));
            let why = if k > cap.neurons {
                Some(0)
            } else if a > cap.input_axons {
                Some(1)
            } else if (if kernel.is_some() {
                stored
            } else {
                a.saturating_mul(k)
            }) > cap.synapses
            {
                Some(2)
            } else if f > cap.fanout {
                Some(3)
            } else {
                None
            };
            if let Some(w) = why {
                if k == 1 {
                    // A single neuron's field fits (checked by the caller): its entries do not.
                    return Err(dests(i));
                }
                closed[w] += 1;
                break;
            }
            for j in row.into_iter().flat_map(BitSlice::iter_ones) {
                seen.set(at(pos_below, j), true);
            }
            if let Some(k) = kernel {
                chans.set(k.channel(neuron), true);
            }
            (axons, fan, channels) = (a, f, ch);
            i += 1;
        }
        let mut runs: Vec<Segment> = Vec::new();
        for j in seen.iter_ones() {
            match runs.last_mut() {
                Some(r) if r.start + r.axons == j => r.axons += 1,
                _ => runs.push(Segment { start: j, axons: 1 }),
            }
        }
        out.push(Field {
            len: i - start,
            runs,
            axons,
            channels,
        });
    }
    let most = (0..4).rev().max_by_key(|&w| closed[w]).unwrap_or(0);
    Ok((
        out,
        if closed[most] == 0 {
            "neurons"
        } else {
            WHY[most]
        },
    ))
}

/// [Duplicated inputs](self#duplicated-inputs): on a crossbar chip, each layer whose every core
/// has room for its inputs twice — axons, synapses, and the senders' routing entries for the
/// second packet — takes them twice (`copies = 2`). Split, sparse and recurrent layers keep one
/// axon per input.
fn duplicate_inputs(layers: &mut [LayerPlacement], cores: &mut [CoreUse], cap: &CoreCapacity) {
    for lp in layers.iter_mut().skip(1) {
        let l = lp.layer;
        if !lp.segments.is_empty() || !lp.receptive.is_empty() || lp.recurrent {
            continue;
        }
        let chunks = lp.chunks.len();
        let somas = |c: &CoreUse, layer: usize| c.layer == layer && c.segment.is_none();
        let room = cores
            .iter()
            .filter(|c| somas(c, l))
            .all(|c| 2 * c.input_axons <= cap.input_axons && 2 * c.synapses <= cap.synapses)
            && cores
                .iter()
                .filter(|c| somas(c, l - 1))
                .all(|c| c.fanout + c.neurons * chunks <= cap.fanout);
        if !room {
            continue;
        }
        for c in cores.iter_mut() {
            if somas(c, l) {
                c.input_axons *= 2;
                c.synapses *= 2;
                c.input_axons_util = frac(c.input_axons, cap.input_axons);
                c.synapses_util = frac(c.synapses, cap.synapses);
            } else if somas(c, l - 1) {
                c.fanout += c.neurons * chunks;
                c.fanout_util = frac(c.fanout, cap.fanout);
            }
        }
        lp.copies = 2;
    }
}

/// The mapping of `layers` on `cores` of `chip`, with its pressure and routes.
fn finish(
    chip: &ChipModel,
    cap: CoreCapacity,
    layers: Vec<LayerPlacement>,
    cores: Vec<CoreUse>,
    packed: bool,
) -> Mapping {
    let mut m = Mapping {
        chip: chip.name.clone(),
        mesh_cols: to_usize(chip.grid().cols.into()),
        mesh_rows: to_usize(chip.grid().rows.into()),
        cores_available: chip.grid().cores(),
        capacity: cap,
        layers,
        cores,
        pressure: Vec::new(),
        hop_histogram: Vec::new(),
        total_routes: 0,
        max_hops: 0,
        mean_hops: 0.0,
        packed,
        sparse: None,
    };
    m.pressure = pressure(&m);
    route(&mut m);
    m
}

/// What core `core` holds: `len` neurons (or dendrite segments) of layer `l` from `start`,
/// with `fan_in` input axons each and `fanout` routing entries in all.
#[allow(clippy::too_many_arguments)]
fn core_use(
    core: usize,
    cols: u64,
    cap: &CoreCapacity,
    l: usize,
    start: usize,
    len: usize,
    fan_in: usize,
    fanout: usize,
    segment: Option<usize>,
) -> CoreUse {
    let synapses = len * fan_in;
    CoreUse {
        core,
        x: core % to_usize(cols),
        y: core / to_usize(cols),
        layer: l,
        segment,
        start,
        neurons: len,
        slots: None,
        synapses,
        input_axons: fan_in,
        fanout,
        neurons_util: frac(len, cap.neurons),
        synapses_util: frac(synapses, cap.synapses),
        input_axons_util: frac(fan_in, cap.input_axons),
        fanout_util: frac(fanout, cap.fanout),
    }
}

/// Fill the hop histogram and route statistics of `m` from its placement: a route is a
/// (presynaptic neuron, destination core) pair — only to the cores whose receptive field holds
/// it where the next layer is sparse, to the segment holding its axon where the next layer is
/// split, and to its own layer's cores where the layer is recurrent — and, in
/// split layers, each segment's partial sums to its chunk's core.
fn route(m: &mut Mapping) {
    let mut hist: Vec<u64> = Vec::new();
    let mut add = |h: u32, k: u64| {
        let h = h as usize;
        if hist.len() <= h {
            hist.resize(h + 1, 0);
        }
        hist[h] += k;
    };
    for l in 0..m.layers.len() {
        let lp = &m.layers[l];
        for (c, segs) in lp.segment_cores.iter().enumerate() {
            for &sc in segs {
                add(m.hops(sc, lp.chunks[c].core), lp.chunks[c].len as u64);
            }
        }
        if lp.recurrent {
            for src in &lp.chunks {
                for dst in &lp.chunks {
                    add(m.hops(src.core, dst.core), src.len as u64);
                }
            }
        }
        let Some(next) = m.layers.get(l + 1) else {
            continue;
        };
        for src in &lp.chunks {
            for (c, dst) in next.chunks.iter().enumerate() {
                if let Some(runs) = next.receptive.get(c) {
                    // The source neurons in the chunk's receptive field.
                    let seen: usize = runs
                        .iter()
                        .map(|r| {
                            let lo = src.start.max(r.start);
                            (src.start + src.len)
                                .min(r.start + r.axons)
                                .saturating_sub(lo)
                        })
                        .sum();
                    if seen > 0 {
                        add(m.hops(src.core, dst.core), seen as u64);
                    }
                    continue;
                }
                if next.segments.is_empty() {
                    // A duplicated input is a packet to each of its axons.
                    add(m.hops(src.core, dst.core), (src.len * next.copies) as u64);
                    continue;
                }
                for (g, sg) in next.segments.iter().enumerate() {
                    let lo = src.start.max(sg.start);
                    let hi = (src.start + src.len).min(sg.start + sg.axons);
                    if hi > lo {
                        add(m.hops(src.core, next.segment_cores[c][g]), (hi - lo) as u64);
                    }
                }
            }
        }
    }
    let total: u64 = hist.iter().sum();
    let weighted: u128 = hist
        .iter()
        .enumerate()
        .map(|(h, &c)| h as u128 * u128::from(c))
        .sum();
    m.total_routes = total;
    m.max_hops = hist.iter().rposition(|&c| c > 0).unwrap_or(0) as u32;
    m.mean_hops = if total == 0 {
        0.0
    } else {
        weighted as f64 / total as f64
    };
    m.hop_histogram = hist;
}

/// The most loaded core per resource (lowest core id on ties; a packed core's rows summed).
fn pressure(m: &Mapping) -> Vec<Pressure> {
    type Get = fn(&CoreUse) -> usize;
    let resources: [(&'static str, Get, usize); 4] = [
        (
            "neurons",
            |c| c.slots.unwrap_or(c.neurons),
            m.capacity.neurons,
        ),
        ("synapses", |c| c.synapses, m.capacity.synapses),
        ("input_axons", |c| c.input_axons, m.capacity.input_axons),
        ("fanout", |c| c.fanout, m.capacity.fanout),
    ];
    resources
        .iter()
        .filter_map(|&(resource, get, capacity)| {
            // Per core: its rows' sum, and the layer that uses the most of it.
            let mut per_core: Vec<(usize, usize, usize, usize)> = Vec::new();
            for c in &m.cores {
                match per_core.last_mut() {
                    Some(last) if last.0 == c.core => {
                        last.2 += get(c);
                        if get(c) > last.3 {
                            (last.1, last.3) = (c.layer, get(c));
                        }
                    }
                    _ => per_core.push((c.core, c.layer, get(c), get(c))),
                }
            }
            let best = per_core
                .iter()
                .copied()
                .reduce(|a, b| if b.2 > a.2 { b } else { a })?;
            Some(Pressure {
                resource,
                core: best.0,
                layer: best.1,
                used: best.2,
                capacity,
                utilisation: frac(best.2, capacity),
            })
        })
        .collect()
}
