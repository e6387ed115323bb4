//! A layered network on the chip: its cores, its routing tables and the timestep schedule of a
//! sample (ARCHITECTURE.md §6).
//!
//! Every neuron layer sits on its own cores (layer 0 on relay cores that only send). A sample
//! is a pipeline: a packet sent by layer `l` in timestep `t` is handled by layer `l + 1` in
//! timestep `t + 1`.
//!
//! | mode | firing | credit (training) |
//! |---|---|---|
//! | graded | timestep `l` fires layer `l` (`l = 0..=m`): `m + 1` timesteps | the host clamps the outputs; timestep `m + k` runs the credit step of layer `m + 1 − k` and its plasticity (`k = 1..=m`) |
//! | spiking, `T` ticks | layer `l` runs its ticks `0..T` in timesteps `l..l + T`: `T + m` timesteps | as graded, after the last tick |
//!
//! So a graded training sample takes `2m + 1` timesteps, a spiking one `T + 2m`, an inference
//! sample `m + 1` or `T + m`. Plasticity runs in the same timestep as the layer's credit step:
//! its `δ` is final once the layer above has answered, and the layer below still reads the old
//! weights because the messages it needs were computed from them a step earlier.

use accord_firmware::datapath::Datapath;
use accord_firmware::handlers::{CopyLayout, CreditMode, PopKind, PopRange};
use bitvec::prelude::*;

use super::ChipRule;
use super::build;
use super::crossbar;
use super::engine::{Cmd, CoreBox, CoreSpec, Engine, FanGroup, Tally};
use crate::chip::ChipModel;
use crate::ledger::VarCounters;
use crate::mapping::{Mapping, Segment, at, inverse};
use crate::rule::{Activation, LayeredNet, Loss};

/// How neurons fire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "mode")]
pub enum FiringMode {
    /// One event per active neuron carrying its rate as a payload (Loihi 2 graded spikes).
    Graded,
    /// The chip's spiking soma (integrate-and-fire, LIF or Loihi's current-based LIF, per the
    /// chip file) runs `ticks` ticks per sample; the rate is the spike count over `ticks`. The
    /// output layer, when linear, is a non-spiking integrator read out as its mean input.
    Spiking {
        /// Ticks per sample.
        ticks: u32,
        /// Input encoding.
        encoding: Encoding,
    },
}

/// Spike-train encoding of the inputs in spiking mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    /// Deterministic: a phase accumulator per input fires when it passes 1.
    Regular,
    /// A Bernoulli draw per input per tick from a counter-based generator keyed by (input,
    /// sample and tick).
    Poisson,
}

/// What one sample did.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SampleOutcome {
    /// Loss of the outputs (before any update).
    pub loss: f64,
    /// Whether the predicted class was right.
    pub correct: bool,
    /// Modelled hardware time of the sample, ps, as settled when the sample ends (complete with
    /// one thread; with several, the router thread's last timesteps settle later — see
    /// [`ChipNet::finish`]).
    pub time_ps: u64,
    /// Timesteps the sample took.
    pub timesteps: u64,
}

/// The global id of neuron `i` of layer `l` (random-stream entity).
#[inline]
pub(crate) const fn gid(l: usize, i: usize) -> u64 {
    ((l as u64) << 32) | i as u64
}

/// Where one chunk of a layer sits: engine core (of its somas), first neuron, length, and the
/// engine core of its first dendrite segment (segments take the engine cores `seg0..core` when
/// the layer's fan-in is split; `seg0 == core` otherwise).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Placed {
    pub(crate) core: usize,
    pub(crate) start: usize,
    pub(crate) len: usize,
    pub(crate) seg0: usize,
}

/// How one layer's weights fitted a binary crossbar with axon types.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct CrossbarFit {
    /// The neuron layer the weights feed.
    pub layer: usize,
    /// Synapse slots of its cores.
    pub synapses: u64,
    /// Of which connected.
    pub connected: u64,
    /// `Σ (w − ŵ)²` over the layer (real weights, before quantisation).
    pub err2: f64,
    /// `Σ w²`.
    pub norm2: f64,
    /// Axons per input ([duplicated inputs](crate::mapping#duplicated-inputs): 2); `synapses`
    /// counts both copies' slots, `err2` compares each weight with the sum of its two.
    pub copies: usize,
}

/// How `spec`'s real weights fit `chip`'s binary crossbar, per neuron layer, as
/// [`ChipNet::build`] fits them (the same layout, cores and [fit](crate::emulator) —
/// ARCHITECTURE.md §8) but without building the engine: what `accord map` and `accord import`
/// report. Empty on a chip without axon types.
pub fn crossbar_fit(spec: &NetSpec<'_>, chip: &ChipModel) -> Vec<CrossbarFit> {
    let Some(types) = chip.core.axon_types else {
        return Vec::new();
    };
    let lay = Layout::new(spec.mapping, spec.sizes);
    // The fit is of the real weights; the float twin only carries them into the rows.
    let dp = super::float_path(chip, &super::layered_pops(spec.acts, &[]), 0.0, 0.0, 0);
    let mut cores = lay.cores::<super::FloatPath>(spec, chip);
    lay.fit_crossbar(
        &dp,
        spec,
        &mut cores,
        types as usize,
        &mut VarCounters::default(),
    )
}

impl CrossbarFit {
    /// `connected of synapses (share %), relative weight error e`, and the duplication: what a
    /// run's report and `accord map` / `accord import` say of the fit.
    pub fn describe(&self) -> String {
        format!(
            "{} of {} synapses connected ({:.1} %), relative weight error ‖W − Ŵ‖/‖W‖ = {:.3} \
             (before quantisation to the weight format){}",
            self.connected,
            self.synapses,
            100.0 * self.connected as f64 / self.synapses.max(1) as f64,
            self.relative_error(),
            if self.copies > 1 {
                format!(
                    "; its inputs are duplicated, {} axons each, and Ŵ is the sum of the copies",
                    self.copies
                )
            } else {
                String::new()
            }
        )
    }

    /// `‖W − Ŵ‖ / ‖W‖` (0 for an all-zero layer).
    pub fn relative_error(&self) -> f64 {
        if self.norm2 > 0.0 {
            (self.err2 / self.norm2).sqrt()
        } else {
            0.0
        }
    }
}

/// Real values of a chip net's neuron state, per neuron layer (input first).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChipState {
    /// Balances.
    pub u: Vec<Vec<f64>>,
    /// Rates (relays: their input rate).
    pub r: Vec<Vec<f64>>,
    /// Spikes in the last window (spiking mode).
    pub counts: Vec<Vec<u32>>,
}

/// A layered network on a chip.
#[derive(Clone, Debug)]
pub struct ChipNet<D: Datapath> {
    pub(crate) engine: Engine<D>,
    /// Where its chunks, segments and fields sit among the engine cores, and the neuron order.
    pub(crate) lay: Layout,
    /// Per synaptic layer, how its weights fitted the chip's crossbar (empty: no crossbar).
    crossbar: Vec<CrossbarFit>,
    acts: Vec<Activation>,
    mode: FiringMode,
    loss: Loss,
    rule: ChipRule,
}

/// Where a chip net's initial weights come from.
pub trait WeightSource {
    /// Call `f(l, i, j, w_ij)` for every synapse of every synaptic layer.
    fn weights(&self, f: &mut dyn FnMut(usize, usize, usize, f64));
    /// Bias of neuron `i` of synaptic layer `l`.
    fn bias(&self, l: usize, i: usize) -> f64;
}

impl WeightSource for LayeredNet {
    fn weights(&self, f: &mut dyn FnMut(usize, usize, usize, f64)) {
        for (l, layer) in self.layers.iter().enumerate() {
            for i in 0..layer.n_out {
                for j in 0..layer.n_in {
                    f(l, i, j, layer.w[i * layer.n_in + j]);
                }
            }
        }
    }
    fn bias(&self, l: usize, i: usize) -> f64 {
        self.layers[l].b[i]
    }
}

/// Glorot-uniform initial weights streamed from their generator ([`crate::rule::glorot_weights`]),
/// zero biases: the same numbers as [`LayeredNet::glorot`], never held as `f64`.
#[derive(Clone, Debug)]
pub struct Glorot {
    /// Layer widths.
    pub sizes: Vec<usize>,
    /// Seed.
    pub seed: u64,
}

impl WeightSource for Glorot {
    fn weights(&self, f: &mut dyn FnMut(usize, usize, usize, f64)) {
        crate::rule::glorot_weights(&self.sizes, self.seed, f);
    }
    fn bias(&self, _: usize, _: usize) -> f64 {
        0.0
    }
}

/// Everything a layered chip net is built from.
pub struct NetSpec<'a> {
    /// Layer widths, input first.
    pub sizes: &'a [usize],
    /// Activation per synaptic layer.
    pub acts: &'a [Activation],
    /// Initial weights.
    pub weights: &'a dyn WeightSource,
    /// Per synaptic layer, the synapses that exist (row-major `(out, in)`; `None` or a
    /// missing entry: all). Absent synapses are neither walked, counted nor trained.
    pub masks: &'a [Option<BitVec<usize, Lsb0>>],
    /// Per synaptic layer, the real weights of its neurons' projection onto themselves
    /// (`n × n` row-major, `w[i * n + j]` from neuron `j` to `i`; `None` or a missing entry:
    /// none). The mapping must mark the same layers recurrent ([`crate::mapping::map_net`]):
    /// weights for a layer it does not mark are left out, and a layer it marks without weights
    /// gets zero rows. A recurrent layer's spikes of one tick reach it in the next.
    pub recurrent: &'a [Option<Vec<f64>>],
    /// The comparison rule's fixed feedback matrices (feedback alignment), shaped like the net.
    pub feedback: Option<&'a dyn WeightSource>,
    /// Placement.
    pub mapping: &'a Mapping,
    /// Firing mode.
    pub mode: FiringMode,
    /// Loss.
    pub loss: Loss,
    /// Learning rule.
    pub rule: ChipRule,
    /// Threads for a timestep's cores.
    pub threads: usize,
    /// Whether the chip will learn (mirror rows are written only then).
    pub training: bool,
}

impl std::fmt::Debug for NetSpec<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetSpec")
            .field("sizes", &self.sizes)
            .field("acts", &self.acts)
            .field("mode", &self.mode)
            .field("loss", &self.loss)
            .field("rule", &self.rule)
            .field("threads", &self.threads)
            .field("training", &self.training)
            .finish_non_exhaustive()
    }
}

/// Part of a chunk's receptive field: presynaptic neurons `start..start + len` on the core's
/// rows `row..row + len`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Run {
    start: usize,
    len: usize,
    row: usize,
}

/// The row of presynaptic position `j` in a chunk whose receptive field is `runs` (`None`: a
/// dense layer, row `j`); `None` where the chunk does not see `j` (a chunk that sees nothing
/// has no rows).
fn field_row(runs: Option<&[Run]>, j: usize) -> Option<usize> {
    let Some(runs) = runs else {
        return Some(j);
    };
    let r = runs[runs.partition_point(|r| r.start <= j).checked_sub(1)?];
    (j < r.start + r.len).then(|| r.row + (j - r.start))
}

/// Where the chunks and dendrite segments of a layered net sit among the engine cores, and
/// what each core is built with ([`ChipNet::build`]).
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    /// Per neuron layer, its chunks.
    pub(crate) layers: Vec<Vec<Placed>>,
    /// Per neuron layer, its fan-in segments (empty: not split).
    segments: Vec<Vec<Segment>>,
    /// Neuron widths, input first.
    sizes: Vec<usize>,
    /// Per neuron layer, whether it projects onto itself: its cores' rows `sizes[l − 1]..`
    /// are its own neurons, and its neurons also send to its own cores.
    rec: Vec<bool>,
    /// Per neuron layer, per chunk, its receptive field (empty: the whole layer below;
    /// [`crate::mapping#receptive-fields`]).
    fields: Vec<Vec<Vec<Run>>>,
    /// Per neuron layer, its neurons in placement order and each neuron's position (both
    /// empty: natural order, [`crate::mapping::LayerPlacement::order`]). Chunks, rows, axons
    /// and fan-out groups count positions; a core's neuron `k` is the neuron at position
    /// `start + k`, and its random-stream id is that position's.
    order: Vec<Vec<usize>>,
    pos: Vec<Vec<usize>>,
    /// Per neuron layer, axons per presynaptic neuron on its cores: 2 where the mapping
    /// [duplicated its inputs](crate::mapping#duplicated-inputs) (the second copy's rows
    /// follow the first's), else 1.
    copies: Vec<usize>,
    /// Per neuron layer, its populations as `(first neuron, neurons, kind)` ranges: a chain's
    /// layer 0 is relays and its layer `l` population `l − 1`; an all-to-all group
    /// ([`Layout::all_to_all`]) is relays, hidden (population 0) and outputs (population 1).
    pops: Vec<Vec<(usize, usize, PopKind)>>,
    /// Layer 0 is an [all-to-all group](crate::mapping#all-to-all-groups): its loop rows from
    /// neurons (not relays) carry credit back, and its neurons have biases.
    group: bool,
}

impl Layout {
    /// Engine core indices layer by layer: each chunk's segments, then its soma core.
    fn new(mapping: &Mapping, sizes: &[usize]) -> Self {
        let mut layers: Vec<Vec<Placed>> = Vec::with_capacity(mapping.layers.len());
        let mut k = 0usize;
        for lp in &mapping.layers {
            let mut v = Vec::with_capacity(lp.chunks.len());
            for ch in &lp.chunks {
                let seg0 = k;
                k += lp.segments.len();
                v.push(Placed {
                    core: k,
                    start: ch.start,
                    len: ch.len,
                    seg0,
                });
                k += 1;
            }
            layers.push(v);
        }
        Layout {
            layers,
            segments: mapping
                .layers
                .iter()
                .map(|lp| lp.segments.clone())
                .collect(),
            sizes: sizes.to_vec(),
            rec: mapping.layers.iter().map(|lp| lp.recurrent).collect(),
            fields: mapping
                .layers
                .iter()
                .map(|lp| {
                    lp.receptive
                        .iter()
                        .map(|runs| {
                            let mut row = 0;
                            runs.iter()
                                .map(|g| {
                                    let r = Run {
                                        start: g.start,
                                        len: g.axons,
                                        row,
                                    };
                                    row += g.axons;
                                    r
                                })
                                .collect()
                        })
                        .collect()
                })
                .collect(),
            order: mapping.layers.iter().map(|lp| lp.order.clone()).collect(),
            pos: mapping.layers.iter().map(|lp| inverse(&lp.order)).collect(),
            copies: mapping.layers.iter().map(|lp| lp.copies.max(1)).collect(),
            pops: sizes
                .iter()
                .enumerate()
                .map(|(l, &n)| {
                    let kind = match l {
                        0 => PopKind::Relay,
                        _ => PopKind::Neuron { pop: (l - 1) as u8 },
                    };
                    vec![(0, n, kind)]
                })
                .collect(),
            group: false,
        }
    }

    /// The layout of an all-to-all group of `n` neurons placed by `mapping` (one recurrent
    /// layer holding its relays, [`crate::mapping::map_graph`]): `n_in` input relays, hidden
    /// neurons (population 0), `n_out` outputs (population 1).
    pub(crate) fn all_to_all(mapping: &Mapping, n: usize, n_in: usize, n_out: usize) -> Self {
        let mut lay = Layout::new(mapping, &[n]);
        let hidden = n.saturating_sub(n_in + n_out);
        lay.pops = vec![
            [
                (0, n_in, PopKind::Relay),
                (n_in, hidden, PopKind::Neuron { pop: 0 }),
                (n_in + hidden, n_out, PopKind::Neuron { pop: 1 }),
            ]
            .into_iter()
            .filter(|p| p.1 > 0)
            .collect(),
        ];
        lay.group = true;
        lay
    }

    /// An all-to-all group's chunks, `(start, len)` per engine core.
    pub(crate) fn group_chunks(&self) -> Vec<(usize, usize)> {
        self.layers[0].iter().map(|p| (p.start, p.len)).collect()
    }

    /// An all-to-all group's rows from `net`: `w_ij` at row `j`, column `i − start` of the
    /// core of `i` (only the synapses that exist, the others masked), and every neuron's bias
    /// (what [`Layout::cores`] left empty).
    pub(crate) fn fill_group<D: Datapath>(
        &self,
        dp: &D,
        net: &crate::rule::GeneralNet,
        cores: &mut [CoreBox<D>],
        vars: &mut VarCounters,
    ) {
        let n = net.n;
        for p in &self.layers[0] {
            let (s, len) = (p.start, p.len);
            let c = &mut cores[p.core];
            let mut mask = bitvec![usize, Lsb0; 0; n * len];
            let rows = c.rows_mut();
            for j in 0..n {
                for i in 0..len {
                    if net.mask[(s + i) * n + j] {
                        rows[j * len + i] = dp.weight_in(net.w[(s + i) * n + j], vars);
                        mask.set(j * len + i, true);
                    }
                }
            }
            c.set_mask(mask);
            for i in 0..len {
                c.neurons[i].b = dp.bias_in(net.b[s + i], vars);
            }
            c.refresh_row_max();
        }
    }

    /// The receptive field of chunk `c` of layer `l` (`None`: a dense layer, the whole layer
    /// below).
    fn field(&self, l: usize, c: usize) -> Option<&[Run]> {
        if self.fields[l].is_empty() {
            return None;
        }
        Some(self.fields[l].get(c).map_or(&[], Vec::as_slice))
    }

    /// The neuron of layer `l` at placement position `p`.
    fn neuron(&self, l: usize, p: usize) -> usize {
        at(&self.order[l], p)
    }

    /// The placement position of neuron `i` of layer `l`.
    fn position(&self, l: usize, i: usize) -> usize {
        at(&self.pos[l], i)
    }

    /// The presynaptic neurons of chunk `c` of neuron layer `l` whose rows its core holds, as
    /// `(start, len)` runs in row order: none for the input layer and split layers (their
    /// segments hold them), the receptive field of a sparse layer, else the whole layer below.
    /// A recurrent layer's own neurons come after these.
    fn below_runs(&self, l: usize, c: usize) -> Vec<(usize, usize)> {
        if l == 0 || !self.segments[l].is_empty() {
            return Vec::new();
        }
        match self.field(l, c) {
            None => vec![(0, self.sizes[l - 1])],
            Some(runs) => runs.iter().map(|r| (r.start, r.len)).collect(),
        }
    }

    /// Every synapse of the net with its place: `f(engine core, row-major slot, w)`, the
    /// feed-forward layers' ([`Layout::slot`]; a masked-out one left out) and then the
    /// recurrent ones' (row `sizes[l − 1] + j` of the core of post neuron `i`).
    fn each_synapse(&self, spec: &NetSpec<'_>, f: &mut dyn FnMut(usize, usize, f64)) {
        spec.weights.weights(&mut |l, i, j, w| {
            // A masked-out synapse does not exist (its row slot stays 0, so a forward walk adds
            // nothing for it), nor does one outside a chunk's receptive field.
            if let Some(Some(m)) = spec.masks.get(l)
                && !m.get(i * self.sizes[l] + j).is_some_and(|b| *b)
            {
                return;
            }
            if let Some((c, k)) = self.slot(l, i, j) {
                f(c, k, w);
            }
        });
        // (A recurrent layer keeps its natural order: positions are neurons.)
        for (l, rec) in spec.recurrent.iter().enumerate() {
            let Some(rec) = rec else { continue };
            let (below, n) = (self.sizes[l], self.sizes[l + 1]);
            // Rows exist only where the mapping placed the loop (run_hooked checks that the two
            // agree; a caller's mismatch leaves the loop out rather than writing elsewhere).
            if !self.rec[l + 1] || rec.len() != n * n {
                continue;
            }
            for i in 0..n {
                let p = self.chunk_of(l + 1, i);
                for j in 0..n {
                    f(p.core, (below + j) * p.len + (i - p.start), rec[i * n + j]);
                }
            }
        }
    }

    /// The chunk of layer `l` holding neuron `j`, and its index.
    fn chunk_at(&self, l: usize, j: usize) -> (usize, Placed) {
        let v = &self.layers[l];
        let c = v.partition_point(|p| p.start <= j) - 1;
        (c, v[c])
    }

    /// The chunk of layer `l` holding neuron `j`.
    fn chunk_of(&self, l: usize, j: usize) -> Placed {
        self.chunk_at(l, j).1
    }

    /// The segment of layer `l` holding presynaptic neuron `j`.
    fn segment_of(&self, l: usize, j: usize) -> usize {
        self.segments[l].partition_point(|g| g.start <= j) - 1
    }

    /// Engine core and row-major slot of `w_ij` of synaptic layer `l`: in the core of post
    /// neuron `i` (layer `l + 1`), the row of `j`'s position (in a sparse layer, its row in the
    /// chunk's receptive field; `None` outside it); in a split layer, row `j − start` of the
    /// segment holding `j` (positions throughout).
    fn slot(&self, l: usize, i: usize, j: usize) -> Option<(usize, usize)> {
        let (i, j) = (self.position(l + 1, i), self.position(l, j));
        let (c, p) = self.chunk_at(l + 1, i);
        let (core, row) = if self.segments[l + 1].is_empty() {
            (p.core, field_row(self.field(l + 1, c), j)?)
        } else {
            let g = self.segment_of(l + 1, j);
            (p.seg0 + g, j - self.segments[l + 1][g].start)
        };
        Some((core, row * p.len + (i - p.start)))
    }

    /// Where presynaptic neurons `range` of layer `l` send their credit: (engine core, neuron).
    fn retro_to(&self, l: usize, range: std::ops::Range<usize>) -> Vec<(u32, u32)> {
        range
            .map(|j| {
                let p = self.chunk_of(l, j);
                (p.core as u32, (j - p.start) as u32)
            })
            .collect()
    }

    /// Every engine core, rows empty: each chunk's dendrite segments, then its soma core.
    pub(crate) fn cores<D: Datapath>(
        &self,
        spec: &NetSpec<'_>,
        chip: &ChipModel,
    ) -> Vec<CoreBox<D>> {
        let mut cores = Vec::new();
        for (l, lp) in spec.mapping.layers.iter().enumerate() {
            for (c, ch) in lp.chunks.iter().enumerate() {
                let home = self.layers[l][c].core;
                // Dendrite segments of a split fan-in: rows of their presynaptic range, no soma.
                for (g, sg) in lp.segments.iter().enumerate() {
                    cores.push(CoreBox::new(CoreSpec {
                        grid: lp.segment_cores[c][g] as u32,
                        n: ch.len,
                        axons: sg.axons,
                        gid_base: gid(l, ch.start),
                        axon_gid: (0..sg.axons).map(|j| gid(l - 1, sg.start + j)).collect(),
                        pops: vec![PopRange {
                            start: 0,
                            len: ch.len as u32,
                            kind: PopKind::Dendrite,
                        }],
                        credit_axons: (l >= 2 && spec.rule == ChipRule::Balance)
                            .then(|| bitvec![usize, Lsb0; 1; sg.axons]),
                        mask: None,
                        bits: build::bits(chip),
                        mirror: spec.training && chip.mirror_rows(),
                        copy: None,
                        fanout: Vec::new(),
                        retro_to: self.retro_to(l - 1, sg.start..sg.start + sg.axons),
                        delta_to: None,
                        home: Some(home as u32),
                        segments: Vec::new(),
                        compartments: lp.compartments as u32,
                        spike_counts: matches!(spec.mode, FiringMode::Spiking { .. }),
                    }));
                }
                cores.push(CoreBox::new(self.soma_core(spec, chip, l, c)));
            }
        }
        cores
    }

    /// The soma core of chunk `c` of layer `l`: its neurons, and the rows of their whole
    /// fan-in (a sparse layer: of the chunk's receptive field) unless the layer is split.
    fn soma_core(&self, spec: &NetSpec<'_>, chip: &ChipModel, l: usize, c: usize) -> CoreSpec {
        let m = self.sizes.len() - 1;
        let comparison = spec.rule != ChipRule::Balance;
        let lp = &spec.mapping.layers[l];
        let ch = &lp.chunks[c];
        let runs = self.below_runs(l, c);
        let below: usize = runs.iter().map(|r| r.1).sum();
        let own = if self.rec[l] { self.sizes[l] } else { 0 };
        // Duplicated inputs: a second copy of the rows below (never beside own rows).
        let copies = self.copies[l];
        let axons = below * copies + own;
        let mut fanout = if l >= m {
            Vec::new()
        } else {
            self.fanout(l, ch.start, ch.len)
        };
        if own > 0 {
            fanout.push(FanGroup {
                start: 0,
                len: ch.len as u32,
                dests: self.layers[l]
                    .iter()
                    .map(|p| (p.core as u32, (below + ch.start) as u32))
                    .collect(),
            });
        }
        CoreSpec {
            grid: ch.core as u32,
            n: ch.len,
            axons,
            gid_base: gid(l, ch.start),
            axon_gid: (0..copies)
                .flat_map(|_| runs.iter())
                .flat_map(|&(s, n)| (s..s + n).map(|j| gid(l - 1, j)))
                .chain((0..own).map(|j| gid(l, j)))
                .collect(),
            // The layer's populations, clipped to the chunk.
            pops: self.pops[l]
                .iter()
                .filter_map(|&(s, n, kind)| {
                    let (a, b) = (s.max(ch.start), (s + n).min(ch.start + ch.len));
                    (a < b).then(|| PopRange {
                        start: (a - ch.start) as u32,
                        len: (b - a) as u32,
                        kind,
                    })
                })
                .collect(),
            // Credit goes down the feed-forward axons from neurons (a chain's loop does not
            // train), and along an all-to-all group's loop rows from its neurons.
            credit_axons: (spec.rule == ChipRule::Balance && (l >= 2 || self.group)).then(|| {
                let mut b = bitvec![usize, Lsb0; 0; axons];
                if l >= 2 {
                    b[..below].fill(true);
                }
                if self.group {
                    let relays: usize = self.pops[l]
                        .iter()
                        .filter(|p| matches!(p.2, PopKind::Relay))
                        .map(|p| p.1)
                        .sum();
                    b[below + relays..].fill(true);
                }
                b
            }),
            mask: None,
            bits: build::bits(chip),
            mirror: spec.training && chip.mirror_rows() && (l >= 1 || self.group),
            copy: (comparison && l >= 1 && l < m).then(|| {
                (
                    CopyLayout {
                        post_gid_base: gid(l + 1, 0),
                        learns: spec.rule == ChipRule::Backprop,
                    },
                    self.sizes[l + 1],
                )
            }),
            fanout,
            retro_to: {
                let mut r = Vec::with_capacity(axons);
                for _ in 0..copies {
                    for &(s, n) in &runs {
                        r.extend(self.retro_to(l - 1, s..s + n));
                    }
                }
                r.extend(self.retro_to(l, 0..own));
                r
            },
            delta_to: (comparison && l >= 2).then(|| {
                (
                    self.layers[l - 1].iter().map(|p| p.core as u32).collect(),
                    ch.start as u32,
                )
            }),
            home: None,
            segments: (self.layers[l][c].seg0..self.layers[l][c].core)
                .map(|k| k as u32)
                .collect(),
            // A split layer's compartments are its segments'; its somas take one each.
            compartments: if lp.segments.is_empty() {
                lp.compartments as u32
            } else {
                1
            },
            spike_counts: matches!(spec.mode, FiringMode::Spiking { .. }),
        }
    }

    /// Where neurons `start..start + len` of layer `l` send: every chunk of layer `l + 1`, or
    /// (a sparse layer above) each chunk whose receptive field holds them, one group per run
    /// they fall in, chunks in order; or (a split layer above) one group per segment their
    /// neurons fall in.
    fn fanout(&self, l: usize, start: usize, len: usize) -> Vec<FanGroup> {
        let end = start + len;
        if !self.fields[l + 1].is_empty() {
            let mut groups = Vec::new();
            for (c, p) in self.layers[l + 1].iter().enumerate() {
                for r in self.field(l + 1, c).unwrap_or_default() {
                    let (lo, hi) = (start.max(r.start), end.min(r.start + r.len));
                    if hi > lo {
                        groups.push(FanGroup {
                            start: (lo - start) as u32,
                            len: (hi - lo) as u32,
                            dests: vec![(p.core as u32, (r.row + lo - r.start) as u32)],
                        });
                    }
                }
            }
            return groups;
        }
        if self.segments[l + 1].is_empty() {
            // Duplicated inputs: a packet to each axon of the neuron, its second copy's row
            // after the whole layer's first.
            let copies = self.copies[l + 1];
            return vec![FanGroup {
                start: 0,
                len: len as u32,
                dests: self.layers[l + 1]
                    .iter()
                    .flat_map(|p| {
                        (0..copies)
                            .map(move |k| (p.core as u32, (k * self.sizes[l] + start) as u32))
                    })
                    .collect(),
            }];
        }
        self.segments[l + 1]
            .iter()
            .enumerate()
            .filter_map(|(g, sg)| {
                let (lo, hi) = (start.max(sg.start), end.min(sg.start + sg.axons));
                (hi > lo).then(|| FanGroup {
                    start: (lo - start) as u32,
                    len: (hi - lo) as u32,
                    dests: self.layers[l + 1]
                        .iter()
                        .map(|p| ((p.seg0 + g) as u32, (lo - sg.start) as u32))
                        .collect(),
                })
            })
            .collect()
    }

    /// Rows from `spec.weights` through the weight format; a sparse layer's cores keep only
    /// their existing synapses.
    fn fill_rows<D: Datapath>(
        &self,
        dp: &D,
        spec: &NetSpec<'_>,
        cores: &mut [CoreBox<D>],
        vars: &mut VarCounters,
    ) {
        self.each_synapse(spec, &mut |c, k, w| {
            cores[c].rows_mut()[k] = dp.weight_in(w, vars);
        });
        for (l, mask) in spec.masks.iter().enumerate() {
            let Some(mask) = mask else { continue };
            let (n_in, n_out) = (self.sizes[l], self.sizes[l + 1]);
            let mut local: Vec<Option<BitVec<usize, Lsb0>>> = vec![None; cores.len()];
            for i in 0..n_out {
                for j in mask[i * n_in..(i + 1) * n_in].iter_ones() {
                    let Some((c, k)) = self.slot(l, i, j) else {
                        continue;
                    };
                    let (a, n) = (cores[c].axons, cores[c].n);
                    local[c]
                        .get_or_insert_with(|| bitvec![usize, Lsb0; 0; a * n])
                        .set(k, true);
                }
            }
            for p in &self.layers[l + 1] {
                for c in p.seg0..=p.core {
                    let (a, n) = (cores[c].axons, cores[c].n);
                    let mut m = local[c]
                        .take()
                        .unwrap_or_else(|| bitvec![usize, Lsb0; 0; a * n]);
                    // A recurrent layer's own rows are dense.
                    if self.rec[l + 1] {
                        m[self.sizes[l] * n..].fill(true);
                    }
                    cores[c].set_mask(m);
                }
            }
        }
    }

    /// A binary crossbar: each core's rows fitted to `types` axon types and per-neuron levels
    /// first (ARCHITECTURE.md §8), then quantised; only connected synapses take events.
    fn fit_crossbar<D: Datapath>(
        &self,
        dp: &D,
        spec: &NetSpec<'_>,
        cores: &mut [CoreBox<D>],
        types: usize,
        vars: &mut VarCounters,
    ) -> Vec<CrossbarFit> {
        let mut real: Vec<Vec<f64>> = cores.iter().map(|c| vec![0.0; c.axons * c.n]).collect();
        self.each_synapse(spec, &mut |c, k, w| real[c][k] = w);
        let mut fits = Vec::new();
        for (l, lay) in self.layers.iter().enumerate().skip(1) {
            let mut sum = CrossbarFit {
                layer: l,
                copies: self.copies[l],
                ..CrossbarFit::default()
            };
            for p in lay {
                for k in p.seg0..=p.core {
                    let c = &mut cores[k];
                    if real[k].is_empty() {
                        continue;
                    }
                    let f = if self.copies[l] > 1 {
                        // The rows of the first copy; the fit fills both.
                        let below = c.axons / self.copies[l];
                        crossbar::fit_pair(&real[k][..below * c.n], below, c.n, types)
                    } else {
                        crossbar::fit(&real[k], c.axons, c.n, types)
                    };
                    for (dst, &w) in c.rows_mut().iter_mut().zip(&f.w) {
                        *dst = dp.weight_in(w, vars);
                    }
                    c.set_mask(f.w.iter().map(|&w| w != 0.0).collect());
                    if self.copies[l] > 1 {
                        // NeuroBench's dense count is the model's: a (pre, post) pair once,
                        // connected on either of its axons.
                        let half = f.w.len() / 2;
                        c.syn_total = (0..half)
                            .filter(|&k| f.w[k] != 0.0 || f.w[half + k] != 0.0)
                            .count() as u64;
                    }
                    sum.synapses += real[k].len() as u64;
                    sum.connected += f.connected;
                    sum.err2 += f.err2;
                    sum.norm2 += f.norm2;
                }
            }
            fits.push(sum);
        }
        fits
    }

    /// Comparison rules: the copy at the presynaptic core, `M[p][j]` for post `p` of layer
    /// `l + 2` (feedback alignment's fixed matrices, or the weights themselves).
    fn fill_copies<D: Datapath>(
        &self,
        dp: &D,
        spec: &NetSpec<'_>,
        cores: &mut [CoreBox<D>],
        vars: &mut VarCounters,
    ) {
        let src: &dyn WeightSource = match (spec.rule, spec.feedback) {
            (ChipRule::FeedbackAlignment, Some(fb)) => fb,
            _ => spec.weights,
        };
        src.weights(&mut |l, i, j, w| {
            // Synaptic layer l joins neuron layers l and l + 1; its copy sits in the cores of
            // layer l (presynaptic), which exist with copy rows for 1 ≤ l < m.
            if l == 0 {
                return;
            }
            // (Comparison rules refuse sparse layers, so no layer here is reordered.)
            let p = self.chunk_of(l, j);
            let q = dp.weight_in(w, vars);
            cores[p.core].copy_rows_mut()[i * p.len + (j - p.start)] = q;
        });
    }
}

impl<D: Datapath> ChipNet<D> {
    /// Place a layered net on `chip`: one core per mapping chunk (and per dendrite segment of a
    /// split fan-in), rows filled from `spec.weights` through the datapath's weight format
    /// (quantisation counted in `vars`; on a crossbar chip fitted to the crossbar first).
    ///
    /// [`crate::emulator::place`] refuses what this does not model, and callers that build
    /// directly should too: training on a crossbar chip (plasticity would move connected
    /// synapses off their axon type's level) and the comparison rules on split or sparse
    /// layers (their transposed copies follow neither the segments nor a receptive-field
    /// order). A mapping made with masks ([`crate::mapping::map_net`]) needs the same masks in
    /// `spec` ([`ChipNet::from_net`] passes none, so give it a mapping made without).
    pub fn build(dp: D, spec: &NetSpec<'_>, chip: &ChipModel, vars: &mut VarCounters) -> Self {
        let lay = Layout::new(spec.mapping, spec.sizes);
        debug_assert!(
            spec.rule == ChipRule::Balance || lay.order.iter().all(Vec::is_empty),
            "the comparison rules' copies assume natural order"
        );
        let mut cores = lay.cores(spec, chip);
        let crossbar = match chip.core.axon_types {
            None => {
                lay.fill_rows(&dp, spec, &mut cores, vars);
                Vec::new()
            }
            Some(types) => lay.fit_crossbar(&dp, spec, &mut cores, types as usize, vars),
        };
        if spec.rule != ChipRule::Balance {
            lay.fill_copies(&dp, spec, &mut cores, vars);
        }
        for (l, chunks) in lay.layers.iter().enumerate().skip(1) {
            for p in chunks {
                let c = &mut cores[p.core];
                for i in 0..p.len {
                    let neuron = lay.neuron(l, p.start + i);
                    c.neurons[i].b = dp.bias_in(spec.weights.bias(l - 1, neuron), vars);
                }
            }
        }
        for c in &mut cores {
            c.refresh_row_max();
        }
        let engine = Engine::new(dp, cores, chip, spec.threads);
        ChipNet {
            engine,
            lay,
            crossbar,
            acts: spec.acts.to_vec(),
            mode: spec.mode,
            loss: spec.loss,
            rule: spec.rule,
        }
    }

    /// Place an `f64` net on `chip` (its weights quantised by `dp`): a convenience over
    /// [`ChipNet::build`] for tests, benchmarks and experiments (dense layers: a mapping made
    /// without masks). `feedback` holds feedback
    /// alignment's fixed matrices.
    #[allow(clippy::too_many_arguments)]
    pub fn from_net(
        dp: D,
        net: &LayeredNet,
        mapping: &Mapping,
        chip: &ChipModel,
        mode: FiringMode,
        loss: Loss,
        rule: ChipRule,
        feedback: Option<&LayeredNet>,
        vars: &mut VarCounters,
    ) -> Self {
        let sizes = net.sizes();
        let acts: Vec<Activation> = net.layers.iter().map(|l| l.act).collect();
        let spec = NetSpec {
            sizes: &sizes,
            acts: &acts,
            weights: net,
            masks: &[],
            recurrent: &[],
            feedback: feedback.map(|f| f as &dyn WeightSource),
            mapping,
            mode,
            loss,
            rule,
            threads: 1,
            training: true,
        };
        Self::build(dp, &spec, chip, vars)
    }

    /// A copy that only evaluates: the same chip and synapse memory, no presynaptic traces
    /// (nothing to learn from); it fires and counts exactly as a clone.
    pub(crate) fn inference_copy(&self) -> Self {
        ChipNet {
            engine: self.engine.inference_copy(),
            lay: self.lay.clone(),
            crossbar: self.crossbar.clone(),
            acts: self.acts.clone(),
            mode: self.mode,
            loss: self.loss,
            rule: self.rule,
        }
    }

    /// The rule this network runs.
    pub fn rule(&self) -> ChipRule {
        self.rule
    }

    /// Number of synaptic layers.
    pub fn depth(&self) -> usize {
        self.lay.sizes.len() - 1
    }

    /// Layer widths.
    pub fn sizes(&self) -> &[usize] {
        &self.lay.sizes
    }

    /// Threads for a timestep's cores, and the work a step needs before it uses them.
    pub fn set_threads(&mut self, threads: usize, par_threshold: u64) {
        self.engine.set_threads(threads);
        self.engine.par_threshold = par_threshold;
    }

    /// Settle every exchange still with the router thread into `t` (the time and router counts
    /// of the last timesteps, when the mesh runs on its own thread), between samples, and drop
    /// the buffers the next sample refills (the network idles while it is evaluated).
    pub fn finish(&mut self, t: &mut Tally) {
        self.engine.finish();
        t.merge(&self.engine.take_tally());
        self.engine.release_buffers();
    }

    /// The datapath.
    pub fn datapath(&self) -> &D {
        &self.engine.dp
    }

    /// Timesteps of one sample: `(firing, total when training)`.
    pub fn timesteps(&self) -> (u64, u64) {
        let m = self.depth() as u64;
        let last = self.stages()[self.depth()] as u64;
        let fire = match self.mode {
            FiringMode::Graded => last + 1,
            FiringMode::Spiking { ticks, .. } => u64::from(ticks.max(1)) + last,
        };
        // A split layer's credit step takes two timesteps (somas, then segments).
        let split = self.lay.segments[1..]
            .iter()
            .filter(|g| !g.is_empty())
            .count() as u64;
        (fire, fire + m + split)
    }

    /// How each synaptic layer's weights fitted the chip's crossbar (empty without one).
    pub fn crossbar(&self) -> &[CrossbarFit] {
        &self.crossbar
    }

    /// The firing timestep of each neuron layer's somas (its first tick when spiking): one
    /// timestep after the layer below, and one more where the layer's fan-in is split (its
    /// segments sum in the timestep before and their partial sums arrive with it).
    fn stages(&self) -> Vec<usize> {
        let mut st = Vec::with_capacity(self.lay.sizes.len());
        for l in 0..self.lay.sizes.len() {
            st.push(if l == 0 {
                0
            } else {
                st[l - 1] + 1 + usize::from(!self.lay.segments[l].is_empty())
            });
        }
        st
    }

    /// The weights as a real-valued layered net of the same shape (for comparisons).
    pub fn export(&self) -> LayeredNet {
        let dp = &*self.engine.dp;
        let mut net = LayeredNet::glorot(&self.lay.sizes, &self.acts, 0);
        for (l, layer) in net.layers.iter_mut().enumerate() {
            for (k, p) in self.lay.layers[l + 1].iter().enumerate() {
                let c = &self.engine.cores[p.core];
                let segs = &self.lay.segments[l + 1];
                let field = self.lay.field(l + 1, k);
                let post = |i: usize| self.lay.neuron(l + 1, p.start + i);
                for j in 0..layer.n_in {
                    let pj = self.lay.position(l, j);
                    let (rows, row) = if segs.is_empty() {
                        // Outside a sparse chunk's field: no synapse, weight 0.
                        let Some(row) = field_row(field, pj) else {
                            for i in 0..p.len {
                                layer.w[post(i) * layer.n_in + j] = 0.0;
                            }
                            continue;
                        };
                        (c.rows(), row)
                    } else {
                        let g = segs.partition_point(|s| s.start <= pj) - 1;
                        (self.engine.cores[p.seg0 + g].rows(), pj - segs[g].start)
                    };
                    // Duplicated inputs: the weight is the sum of the copies' (the second
                    // copy's rows follow the whole layer's first).
                    let copies = self.lay.copies[l + 1];
                    for i in 0..p.len {
                        let mut w = dp.weight_out(rows[row * p.len + i]);
                        for k in 1..copies {
                            w += dp.weight_out(rows[(k * layer.n_in + row) * p.len + i]);
                        }
                        layer.w[post(i) * layer.n_in + j] = w;
                    }
                }
                for i in 0..p.len {
                    layer.b[post(i)] = dp.bias_out(c.neurons[i].b);
                }
            }
        }
        net
    }

    /// The model's weights (synapses) held, and how many are zero: a
    /// [duplicated](crate::mapping#duplicated-inputs) input's two slots are one weight, zero
    /// when both are.
    pub fn weight_stats(&self) -> (u64, u64) {
        let mut copies = vec![1usize; self.engine.cores.len()];
        for (l, lay) in self.lay.layers.iter().enumerate() {
            for p in lay {
                copies[p.core] = self.lay.copies[l];
            }
        }
        let mut zeros = 0u64;
        let mut total = 0u64;
        // Every core's rows (relays and the somas of split layers hold none).
        for (c, &m) in self.engine.cores.iter().zip(&copies) {
            let rows = c.rows();
            let pairs = rows.len() / m;
            total += pairs as u64;
            zeros += (0..pairs)
                .filter(|&k| (0..m).all(|h| rows[h * pairs + k] == D::W::default()))
                .count() as u64;
        }
        (total, zeros)
    }

    /// Synapse slots the chip stores: every core's rows (a duplicated input's two slots are
    /// two).
    pub fn weight_slots(&self) -> u64 {
        self.engine
            .cores
            .iter()
            .map(|c| c.rows().len() as u64)
            .sum()
    }

    /// Synapse slots of neuron layer `l`'s cores (its segments' and somas'; 0 for the input
    /// layer or one out of range).
    pub(crate) fn layer_weight_slots(&self, l: usize) -> u64 {
        self.lay.layers.get(l).map_or(0, |chunks| {
            chunks
                .iter()
                .flat_map(|p| p.seg0..=p.core)
                .map(|k| self.engine.cores[k].rows().len() as u64)
                .sum()
        })
    }

    /// The largest weight magnitude on the chip (`NaN` if one is not finite), for the
    /// divergence watch.
    pub fn max_abs_weight(&self) -> f64 {
        let dp = &*self.engine.dp;
        let mut m = 0.0f64;
        for c in &self.engine.cores {
            for &w in c.rows() {
                let v = dp.weight_out(w);
                if !v.is_finite() {
                    return f64::NAN;
                }
                m = m.max(v.abs());
            }
        }
        m
    }

    /// Real values of the last sample's credits, messages `δ` and outputs (per neuron layer).
    pub fn probe(&self) -> (Vec<Vec<f64>>, Vec<Vec<f64>>, Vec<f64>) {
        let dp = &*self.engine.dp;
        let mut c = Vec::new();
        let mut d = Vec::new();
        for (l, lay) in self.lay.layers.iter().enumerate() {
            let mut cl = vec![0.0; self.lay.sizes[l]];
            let mut dl = vec![0.0; self.lay.sizes[l]];
            for p in lay {
                let core = &self.engine.cores[p.core];
                for i in 0..p.len {
                    let k = self.lay.neuron(l, p.start + i);
                    cl[k] = dp.credit_out(core.neurons[i].c);
                    dl[k] = dp.delta_out(core.delta[i]);
                }
            }
            c.push(cl);
            d.push(dl);
        }
        (c, d, self.outputs())
    }

    /// Real values of every neuron's state after the last sample, per neuron layer: balance
    /// `u`, rate `r` (membrane value for a linear read-out), spike count of the last window.
    pub fn state(&self) -> ChipState {
        let dp = &*self.engine.dp;
        let mut st = ChipState::default();
        for (l, lay) in self.lay.layers.iter().enumerate() {
            let n = self.lay.sizes[l];
            let (mut u, mut r, mut k) = (vec![0.0; n], vec![0.0; n], vec![0u32; n]);
            for p in lay {
                let core = &self.engine.cores[p.core];
                for i in 0..p.len {
                    let nr = &core.neurons[i];
                    let q = self.lay.neuron(l, p.start + i);
                    u[q] = dp.u_out(nr.u);
                    r[q] = if l == 0 {
                        dp.rate_out(nr.r)
                    } else {
                        dp.out_value(nr.r, l - 1)
                    };
                    k[q] = nr.count;
                }
            }
            st.u.push(u);
            st.r.push(r);
            st.counts.push(k);
        }
        st
    }

    /// The output layer's values (rates, or membrane values of a linear read-out).
    pub fn outputs(&self) -> Vec<f64> {
        let m = self.depth();
        let dp = &*self.engine.dp;
        let mut out = vec![0.0; self.lay.sizes[m]];
        for p in &self.lay.layers[m] {
            let core = &self.engine.cores[p.core];
            for i in 0..p.len {
                out[self.lay.neuron(m, p.start + i)] = dp.out_value(core.neurons[i].r, m - 1);
            }
        }
        out
    }

    fn layer_cmds(&self, l: usize, cmd: Cmd, cmds: &mut Vec<(u32, Cmd)>) {
        for p in &self.lay.layers[l] {
            cmds.push((p.core as u32, cmd));
        }
    }

    /// Fire phase: write the inputs into the relays and run the firing timesteps.
    pub fn fire(&mut self, x: &[f64], step: u64, t: &mut Tally) {
        self.engine.reset_sample();
        {
            let dp = std::sync::Arc::clone(&self.engine.dp);
            for p in self.lay.layers[0].clone() {
                let core = &mut self.engine.cores[p.core];
                for i in 0..p.len {
                    let k = self.lay.neuron(0, p.start + i);
                    let r = dp.rate_in(x.get(k).copied().unwrap_or(0.0), &mut core.vars);
                    core.set_rate(i, r);
                }
            }
        }
        let m = self.depth();
        let stages = self.stages();
        let mut cmds = Vec::new();
        // Somas of layer l act at stages[l]; the dendrite segments of a split layer one
        // timestep earlier.
        let (ticks, poisson) = match self.mode {
            FiringMode::Graded => (1, false),
            FiringMode::Spiking { ticks, encoding } => {
                (ticks.max(1), encoding == Encoding::Poisson)
            }
        };
        for ts in 0..ticks as usize + stages[m] {
            cmds.clear();
            for (l, &stage) in stages.iter().enumerate() {
                let cmd = |at: usize| -> Option<Cmd> {
                    (ts >= at && ts < at + ticks as usize).then(|| match self.mode {
                        FiringMode::Graded => Cmd::Graded,
                        FiringMode::Spiking { .. } => Cmd::Tick {
                            tick: (ts - at) as u32,
                            ticks,
                            poisson,
                        },
                    })
                };
                if let Some(c) = cmd(stage) {
                    self.layer_cmds(l, c, &mut cmds);
                }
                if !self.lay.segments[l].is_empty()
                    && let Some(c) = cmd(stage - 1)
                {
                    for p in &self.lay.layers[l] {
                        cmds.extend((p.seg0..p.core).map(|k| (k as u32, c)));
                    }
                }
            }
            cmds.sort_unstable_by_key(|c| c.0);
            self.engine.timestep(&cmds, step, false);
        }
        t.merge(&self.engine.take_tally());
    }

    /// Set the credits arriving at neuron layer `k` from real values (the host's clamp; for
    /// experiments and benchmarks that inject credit elsewhere than the outputs).
    pub fn set_credit(&mut self, k: usize, values: &[f64]) {
        let dp = std::sync::Arc::clone(&self.engine.dp);
        for p in self.lay.layers[k].clone() {
            let core = &mut self.engine.cores[p.core];
            for i in 0..p.len {
                let c = dp.credit_in(
                    values
                        .get(self.lay.neuron(k, p.start + i))
                        .copied()
                        .unwrap_or(0.0),
                    &mut core.vars,
                );
                if !D::is_zero(c) {
                    core.clamp(i, c);
                }
            }
        }
    }

    /// Retrograde phase from neuron layer `top` down to layer 1: one credit step per layer
    /// (with plasticity when `learn`).
    pub fn propagate_credit(&mut self, top: usize, step: u64, learn: bool, t: &mut Tally) {
        let mode = if self.rule == ChipRule::Balance {
            CreditMode::Retrograde
        } else {
            CreditMode::Transport
        };
        let mut cmds = Vec::new();
        for k in (1..=top).rev() {
            cmds.clear();
            let cmd = Cmd::Credit {
                mode,
                finish_copy: mode == CreditMode::Transport && k < top,
                plasticity: learn,
            };
            self.layer_cmds(k, cmd, &mut cmds);
            self.engine.timestep(&cmds, step, learn);
            if !self.lay.segments[k].is_empty() {
                // The segments walk their rows with the δ the somas just sent, and learn.
                cmds.clear();
                for p in &self.lay.layers[k] {
                    cmds.extend((p.seg0..p.core).map(|c| (c as u32, cmd)));
                }
                self.engine.timestep(&cmds, step, learn);
            }
        }
        if learn {
            self.engine.tally.plasticity_events += 1;
        }
        t.merge(&self.engine.take_tally());
    }

    /// Run one sample: fire, and when `train`, clamp the outputs, send credit back and learn.
    /// `step` keys every random stream of the sample (distinct per sample).
    pub fn sample(
        &mut self,
        x: &[f64],
        label: usize,
        train: bool,
        step: u64,
        t: &mut Tally,
    ) -> SampleOutcome {
        let (t0, s0) = (t.time_ps, t.timesteps);
        self.fire(x, step, t);
        let out = self.outputs();
        let loss = self.loss.value(&out, label);
        let correct = crate::rule::argmax(&out) == label;
        t.work.samples += 1;
        if train {
            let mut ext = vec![0.0; out.len()];
            self.loss.output_credit(&out, label, &mut ext);
            let m = self.depth();
            self.set_credit(m, &ext);
            self.propagate_credit(m, step, true, t);
        }
        SampleOutcome {
            loss,
            correct,
            time_ps: t.time_ps - t0,
            timesteps: t.timesteps - s0,
        }
    }
}
