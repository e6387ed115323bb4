//! The terminal form of a [`Mapping`]: layers, cores, pressure, hop histogram.

use std::fmt::{self, Write as _};

use super::{Chunk, Mapping};

/// Per-core rows printed in full up to this many cores; beyond, the head and tail.
const CORE_ROWS_FULL: usize = 48;
const CORE_ROWS_HEAD: usize = 24;
const CORE_ROWS_TAIL: usize = 8;
/// Hop histograms up to this many rows are printed per hop; longer ones in buckets.
const HIST_ROWS_FULL: usize = 32;
/// Number of buckets of a long hop histogram (about).
const HIST_BUCKETS: usize = 20;
impl super::SharedWeights {
    /// One line: the kernel, and the weights its cores store against the expanded rows.
    pub fn describe(&self) -> String {
        format!(
            "{} channels of a {}-weight kernel, stored once per channel on each core that hosts \
             it: {} weights over the layer's cores instead of one per synapse, {} ({:.1}x fewer; \
             {} row slots placed as rows)",
            self.channels,
            self.taps,
            self.stored,
            self.synapses,
            self.synapses as f64 / self.stored.max(1) as f64,
            self.rows
        )
    }
}

/// Width of the longest histogram bar.
const BAR: usize = 40;

impl Mapping {
    /// A readable multi-line report: per layer (size, cores, chunk sizes), per core (position,
    /// layer, neurons / synapses / input axons / fan-out used against capacity, with %), the
    /// pressure summary (highest use of each resource and where) and the hop histogram with
    /// mean and maximum route length. Long core tables show their head and tail.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        let _ = self.write_report(&mut s);
        s
    }

    fn write_report(&self, s: &mut String) -> fmt::Result {
        let sizes: Vec<String> = self.layers.iter().map(|l| l.size.to_string()).collect();
        let c = &self.capacity;
        writeln!(
            s,
            "mapping of {} onto chip '{}': {} x {} mesh, {} cores of {} neurons, {} synapses, {} input axons, {} fan-out entries",
            sizes.join("-"),
            self.chip,
            self.mesh_cols,
            self.mesh_rows,
            self.cores_available,
            c.neurons,
            c.synapses,
            c.input_axons,
            c.fanout
        )?;
        writeln!(
            s,
            "cores used: {} of {} ({}); synapses with the postsynaptic neuron, {}, cores in snake order",
            self.cores_used(),
            self.cores_available,
            pct(self.cores_used() as f64 / self.cores_available.max(1) as f64),
            if self.packed {
                "layers packed onto shared cores"
            } else {
                "one layer per core group"
            }
        )?;

        self.write_layers(s)?;
        self.write_cores(s)?;
        self.write_pressure(s)?;
        self.write_hops(s)
    }

    /// Per layer: size, cores, chunk sizes; the crossbar and every split.
    fn write_layers(&self, s: &mut String) -> fmt::Result {
        let c = &self.capacity;
        writeln!(s)?;
        writeln!(
            s,
            "{:>5}  {:>8}  {:>5}  {:<20}  {:<20}  cores",
            "layer", "size", "cores", "chunk sizes", "max chunk (set by)"
        )?;
        for l in &self.layers {
            let mut all: Vec<usize> = l.cores.clone();
            all.extend(l.segment_cores.iter().flatten());
            all.sort_unstable();
            writeln!(
                s,
                "{:>5}  {:>8}  {:>5}  {:<20}  {:<20}  {}",
                l.layer,
                l.size,
                all.len(),
                chunk_sizes(&l.chunks),
                format!("{} ({})", l.max_chunk, resource_name(l.limited_by)),
                core_runs(&all, 48)
            )?;
        }
        if let Some(t) = c.axon_types {
            writeln!(
                s,
                "crossbar: each core holds binary connections, {t} axon types and one weight per \
                 neuron and type; a net's weights are fitted to that when it is built (accord \
                 map and import report each layer's fit below, a run its own)"
            )?;
        }
        for l in self.layers.iter().filter(|l| l.copies > 1) {
            let below = self.layers[l.layer - 1].size;
            writeln!(
                s,
                "duplicated inputs: layer {}'s cores take each of its {below} inputs on {} axons \
                 ({} of {} input axons), each with a type (the two may share one), so a neuron may \
                 take the sum of two of its levels; every presynaptic neuron sends a packet to each axon",
                l.layer,
                l.copies,
                l.copies * below,
                c.input_axons,
            )?;
        }
        for l in &self.layers {
            if let Some(w) = &l.shared {
                writeln!(s, "weight sharing: layer {}: {}", l.layer, w.describe())?;
            }
        }
        for l in self.layers.iter().filter(|l| !l.segments.is_empty()) {
            let fan_in: usize = l.segments.iter().map(|g| g.axons).sum();
            let largest = l.segments.iter().map(|g| g.axons).max().unwrap_or(0);
            writeln!(
                s,
                "split: layer {}'s fan-in of {fan_in} exceeds a core ({} input axons, {} synapses{}): \
                 {} dendrite segments of at most {largest} axons per chunk, each sending one \
                 partial sum per neuron per firing step to the chunk's soma core ({} partial-sum \
                 routes; +1 timestep of latency)",
                l.layer,
                c.input_axons,
                c.synapses,
                if let Some(f) = c
                    .neuron_fanin
                    .filter(|_| c.per_core_fanin() < c.input_axons.min(c.synapses))
                {
                    format!(
                        ", {} synapses per neuron in {} compartment(s) of {f}",
                        c.per_core_fanin(),
                        c.compartments,
                    )
                } else {
                    String::new()
                },
                l.segments.len(),
                l.segments.len() * l.size,
            )?;
        }
        for l in self.layers.iter().filter(|l| l.compartments > 1) {
            writeln!(
                s,
                "dendritic accumulation: layer {}'s neurons take more than {} synapses (core.neuron_fanin): \
                 each is built of {} compartments on {}, their sums joined in the dendrite within \
                 the timestep ({} neuron slots per neuron{})",
                l.layer,
                c.neuron_fanin.unwrap_or(0),
                l.compartments,
                if l.segments.is_empty() {
                    "its core"
                } else {
                    "each of its dendrite segments' cores"
                },
                l.compartments,
                if l.segments.is_empty() {
                    "; a compartment update each per step; no partial-sum packets, no extra \
                     timestep"
                } else {
                    "; a compartment update per join, before the segment sends its partial sum"
                }
            )?;
        }
        if let Some(sc) = self.sparse {
            let by_field = sc.receptive_field_cores.map_or(
                "not possible (it does not fit, a neuron's field is wider than a core, the \
                 layer is recurrent, or the layers share cores)"
                    .to_string(),
                |c| format!("{c} cores"),
            );
            let dense = sc
                .dense_cores
                .map_or("do not fit".to_string(), |c| format!("{c} cores"));
            writeln!(
                s,
                "sparse layers: placed {} (by receptive field: {by_field}; dense rows, zeros \
                 stored: {dense}; {})",
                if sc.chosen == "dense" {
                    "with dense rows"
                } else {
                    "by receptive field"
                },
                match sc.asked {
                    super::Placement::FewestCores => {
                        "the fewer cores win, a tie goes to receptive fields"
                    }
                    super::Placement::Dense => "dense rows, as asked",
                    super::Placement::ReceptiveField => "by receptive field, as asked",
                },
            )?;
        }
        for l in self.layers.iter().filter(|l| !l.receptive.is_empty()) {
            let below = self.layers[l.layer - 1].size;
            let rows: usize = l.receptive.iter().flatten().map(|g| g.axons).sum();
            let widest = l
                .receptive
                .iter()
                .map(|f| f.iter().map(|g| g.axons).sum::<usize>())
                .max()
                .unwrap_or(0);
            writeln!(
                s,
                "receptive fields: layer {} is sparse; each core holds rows only for the neurons \
                 of layer {} its chunk sees: {:.0} of {below} on average, at most {widest} \
                 ({:.1} % of a dense layer's rows){}",
                l.layer,
                l.layer - 1,
                rows as f64 / l.receptive.len().max(1) as f64,
                100.0 * rows as f64 / (below * l.chunks.len()).max(1) as f64,
                if l.order.is_empty() {
                    ""
                } else {
                    "; its neurons are placed in receptive-field order (by the first input they \
                     see), so its neuron ranges above count positions in that order"
                }
            )?;
        }
        for l in self.layers.iter().filter(|l| l.recurrent) {
            if l.layer == 0 {
                writeln!(
                    s,
                    "all-to-all: layer 0 is one group holding the input relays and every neuron, \
                     projecting onto itself: its cores hold a row for each of its {} neurons \
                     (the missing synapses masked) and each neuron reaches all {} core(s) ({} \
                     routes)",
                    l.size,
                    l.chunks.len(),
                    l.size * l.chunks.len(),
                )?;
                continue;
            }
            let below = self.layers[l.layer - 1].size;
            writeln!(
                s,
                "recurrent: layer {} projects onto itself: its cores hold {below} + {} rows per \
                 neuron (the layer below, then its own neurons) and each of its neurons also \
                 reaches the layer's own {} core(s) ({} recurrent routes){}",
                l.layer,
                l.size,
                l.chunks.len(),
                l.size * l.chunks.len(),
                if self.packed && l.chunks.len() == 1 {
                    "; wholly on one core of a chip with an internal array (core.recurrent), \
                     the loop takes no input axon or routing entry (see the core table)"
                } else {
                    ""
                }
            )?;
        }

        Ok(())
    }

    /// Per core: position, layer, use against capacity (head and tail of long tables).
    fn write_cores(&self, s: &mut String) -> fmt::Result {
        let c = &self.capacity;
        writeln!(s)?;
        writeln!(
            s,
            "{:>5}  {:>9}  {:>5}  {:<15}  {:>16}  {:>20}  {:>16}  {:>16}",
            "core",
            "(x,y)",
            "layer",
            "neuron range",
            format!("neurons of {}", c.neurons),
            format!("synapses of {}", c.synapses),
            format!("axons of {}", c.input_axons),
            format!("fan-out of {}", c.fanout)
        )?;
        let n = self.cores.len();
        for (i, u) in self.cores.iter().enumerate() {
            if n > CORE_ROWS_FULL && i == CORE_ROWS_HEAD {
                writeln!(
                    s,
                    "  ... {} more cores (the JSON form lists every core)",
                    n - CORE_ROWS_HEAD - CORE_ROWS_TAIL
                )?;
            }
            if n > CORE_ROWS_FULL && (CORE_ROWS_HEAD..n - CORE_ROWS_TAIL).contains(&i) {
                continue;
            }
            writeln!(
                s,
                "{:>5}  {:>9}  {:>5}  {:<15}  {:>16}  {:>20}  {:>16}  {:>16}",
                u.core,
                format!("({},{})", u.x, u.y),
                match u.segment {
                    Some(g) => format!("{}/s{g}", u.layer),
                    None => u.layer.to_string(),
                },
                if self.packed && u.layer == 0 && u.neurons == 0 {
                    "off-chip inputs".to_string()
                } else {
                    format!("{}..{}", u.start, u.start + u.neurons)
                },
                used(u.neurons, u.neurons_util),
                used(u.synapses, u.synapses_util),
                used(u.input_axons, u.input_axons_util),
                used(u.fanout, u.fanout_util)
            )?;
        }

        Ok(())
    }

    /// The highest use of each resource and where.
    fn write_pressure(&self, s: &mut String) -> fmt::Result {
        writeln!(s)?;
        writeln!(s, "pressure (most loaded core per resource):")?;
        for p in &self.pressure {
            writeln!(
                s,
                "  {:<12} {:>10} of {:<10} {:>7}  core {} (layer {})",
                resource_name(p.resource),
                p.used,
                p.capacity,
                pct(p.utilisation),
                p.core,
                p.layer
            )?;
        }

        Ok(())
    }

    /// The hop histogram (in buckets when long), mean and maximum route length.
    fn write_hops(&self, s: &mut String) -> fmt::Result {
        writeln!(s)?;
        writeln!(
            s,
            "forward routes (presynaptic neuron -> destination core): {}, mean {:.3} hops, max {} (retrograde messages use the same pairs in reverse)",
            self.total_routes, self.mean_hops, self.max_hops
        )?;
        // Long histograms (big meshes) are shown in buckets of equal width.
        let hist = &self.hop_histogram;
        let width = if hist.len() > HIST_ROWS_FULL {
            hist.len().div_ceil(HIST_BUCKETS)
        } else {
            1
        };
        let rows: Vec<(usize, usize, u64)> = hist
            .chunks(width)
            .enumerate()
            .map(|(i, b)| (i * width, i * width + b.len() - 1, b.iter().sum()))
            .collect();
        let top = rows.iter().map(|r| r.2).max().unwrap_or(0);
        if top > 0 {
            writeln!(s, "{:>7}  {:>12}  {:>7}", "hops", "routes", "share")?;
            for &(lo, hi, count) in &rows {
                let label = if lo == hi {
                    lo.to_string()
                } else {
                    format!("{lo}-{hi}")
                };
                let bar = ((count as f64 / top as f64) * BAR as f64).round() as usize;
                let line = format!(
                    "{label:>7}  {count:>12}  {:>7}  {}",
                    pct(count as f64 / self.total_routes as f64),
                    "#".repeat(if count > 0 { bar.max(1) } else { 0 })
                );
                writeln!(s, "{}", line.trim_end())?;
            }
        }
        Ok(())
    }
}

fn resource_name(r: &str) -> &str {
    match r {
        "input_axons" => "input axons",
        "fanout" => "fan-out",
        r => r,
    }
}

fn pct(f: f64) -> String {
    format!("{:.1}%", 100.0 * f)
}

fn used(v: usize, f: f64) -> String {
    format!("{v} {:>6}", pct(f))
}

/// Chunk sizes as runs: `4 x 196`, or `2 x 43, 1 x 42`.
pub(super) fn chunk_sizes(chunks: &[Chunk]) -> String {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for c in chunks {
        match runs.last_mut() {
            Some((n, len)) if *len == c.len => *n += 1,
            _ => runs.push((1, c.len)),
        }
    }
    let parts: Vec<String> = runs
        .iter()
        .map(|&(n, len)| {
            if n == 1 {
                len.to_string()
            } else {
                format!("{n} x {len}")
            }
        })
        .collect();
    parts.join(", ")
}

/// Core ids as runs of consecutive ids (`0-3, 7-4`), cut to about `max_chars`.
pub(super) fn core_runs(cores: &[usize], max_chars: usize) -> String {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for &c in cores {
        match runs.last_mut() {
            // A single id extends either way; a run keeps its direction.
            Some((a, b))
                if (*a == *b && c.abs_diff(*b) == 1)
                    || (*b > *a && c == *b + 1)
                    || (*b < *a && c + 1 == *b) =>
            {
                *b = c;
            }
            _ => runs.push((c, c)),
        }
    }
    let mut out = String::new();
    for (i, &(a, b)) in runs.iter().enumerate() {
        let part = if a == b {
            a.to_string()
        } else {
            format!("{a}-{b}")
        };
        if !out.is_empty() && out.len() + part.len() + 2 > max_chars {
            let _ = write!(out, ", ... ({} more)", runs.len() - i);
            break;
        }
        if !out.is_empty() {
            out.push_str(", ");
        }
        out.push_str(&part);
    }
    out
}

/// What one split layer's partial sums cost per firing step at most (ARCHITECTURE.md §8):
/// every dendrite segment sends one partial sum per neuron of its chunk whose sum is not 0
/// to the chunk's soma core (all of them: the figures here),
/// and in a training step the soma core sends each segment the neurons' `δ` back over the
/// same routes. Counts are the engine's: a partial sum is a forward packet, its links hops,
/// and its add at the soma core one synaptic op (not one of the network's); a `δ` back is a
/// retrograde packet, its links hops, and one neuron-memory write of the `δ` format.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SplitCost {
    /// The neuron layer whose fan-in is split.
    pub layer: usize,
    /// Dendrite segments per chunk.
    pub segments: usize,
    /// Partial-sum packets per firing step (segments × the layer's neurons); as many `δ`
    /// packets back per training step.
    pub packets: u64,
    /// Links those packets cross per firing step (Σ over routes of their hops).
    pub hops: u64,
    /// Of those links, the ones between two chips of a system.
    pub interchip_hops: u64,
    /// Energy of a firing step's partial sums, pJ (`None`: an action involved is unpriced).
    pub forward_pj: Option<f64>,
    /// Energy of a training step's `δ`s back to the segments, pJ.
    pub backward_pj: Option<f64>,
    /// Timesteps the split adds to a sample's latency (the segments sum one timestep before
    /// the somas).
    pub extra_timesteps: usize,
}

impl Mapping {
    /// Per split layer, what its partial sums cost per firing step on `chip` (the chip it was
    /// mapped onto): [`SplitCost`]. Empty when no fan-in is split.
    pub fn split_costs(&self, chip: &crate::chip::ChipModel) -> Vec<SplitCost> {
        use crate::chip::Action;
        let cols = self.mesh_cols.max(1) as u64;
        let (chip_cols, chip_rows) = (
            u64::from(chip.mesh.cols.max(1)),
            u64::from(chip.mesh.rows.max(1)),
        );
        let crossings = |a: usize, b: usize| {
            let (a, b) = (a as u64, b as u64);
            let (ax, ay, bx, by) = (a % cols, a / cols, b % cols, b / cols);
            (ax / chip_cols).abs_diff(bx / chip_cols) + (ay / chip_rows).abs_diff(by / chip_rows)
        };
        let e = |a: Action| chip.energy_pj(a);
        let delta_bits = f64::from(chip.formats.delta.bits);
        self.layers
            .iter()
            .filter(|l| !l.segments.is_empty())
            .map(|l| {
                let (mut packets, mut hops, mut xings) = (0u64, 0u64, 0u64);
                for (chunk, segs) in l.chunks.iter().zip(&l.segment_cores) {
                    let n = chunk.len as u64;
                    for &s in segs {
                        packets += n;
                        hops += n * u64::from(self.hops(s, chunk.core));
                        xings += n * crossings(s, chunk.core);
                    }
                }
                let (p, h, x) = (packets as f64, hops as f64, xings as f64);
                let links = || -> Option<f64> {
                    Some(
                        h * e(Action::Hop)?
                            + if xings > 0 {
                                x * e(Action::InterchipHop)?
                            } else {
                                0.0
                            },
                    )
                };
                let forward_pj =
                    (|| Some(p * (e(Action::SpikePacket)? + e(Action::Sop)?) + links()?))();
                let backward_pj = (|| {
                    Some(
                        p * (e(Action::RetroPacket)? + delta_bits * e(Action::NeuronMemWriteBit)?)
                            + links()?,
                    )
                })();
                SplitCost {
                    layer: l.layer,
                    segments: l.segments.len(),
                    packets,
                    hops,
                    interchip_hops: xings,
                    forward_pj,
                    backward_pj,
                    extra_timesteps: 1,
                }
            })
            .collect()
    }
}
