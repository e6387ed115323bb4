//! The network graph: one description of a network's structure, independent of any chip
//! (ARCHITECTURE.md §5, "One graph").
//!
//! A [`Graph`] is **populations** of neurons joined by **projections**. Populations are
//! gathered in **groups**: a group is what the mapping places as one range of neurons, cut into
//! chunks, one chunk per core ([`crate::mapping::map_graph`]). A projection joins two groups
//! (or a group to itself) and carries every synapse between them: dense, or masked where only
//! some synapses exist (an expanded convolution or pooling, an all-to-all net's mask).
//!
//! Both kinds of network accord runs are graphs:
//!
//! * a **layered** net ([`Graph::layered`]: `--hidden`, NIR chains) is a chain of groups of
//!   one population each — the inputs first — with a projection from each group to the next
//!   and, where a layer loops onto itself, from the group to itself;
//! * an **all-to-all** net ([`Graph::all_to_all`]: the `modules` recipe, `accord all-to-all`)
//!   is one group of inputs, hidden and output neurons with one projection onto itself: the
//!   inputs are relays inside the group's chunks.
//!
//! The mapping places both with one policy; a graph of another shape (a projection that skips
//! a group or runs backwards, two all-to-all groups) is reported by [`Graph::shape`] naming the
//! projection. A population names its neurons' model ([`PopKind`]: graded rate neurons and
//! their activation, NIR's `IF`, `LIF`, `CubaLIF`, `LI`); their parameters and the weights
//! stay with the net the graph describes ([`crate::rule::LayeredNet`],
//! [`crate::rule::GeneralNet`], a NIR file's nodes). Convolutions and pools arrive expanded,
//! as masks; a convolution's also carries its [`Kernel`] (which kernel weight each synapse is),
//! for chips that share weights.
//!
//! ```
//! use accord::graph::{Graph, Shape};
//!
//! // 784-128-10, the hidden layer looping onto itself.
//! let g = Graph::layered(&[784, 128, 10], &[false, true], Vec::new())?;
//! assert_eq!(g.groups.len(), 3);
//! assert_eq!(g.projections.len(), 3);
//! assert!(matches!(g.shape()?, Shape::Chain { .. }));
//!
//! // 300 neurons, 64 of them input relays and 10 outputs, every synapse present.
//! let g = Graph::all_to_all(300, 64, 10, None)?;
//! assert_eq!(g.shape()?, Shape::AllToAll { n: 300 });
//! # Ok::<(), accord::graph::GraphError>(())
//! ```

use bitvec::prelude::*;
use serde::Serialize;

/// What a population's neurons do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "model", content = "activation")]
pub enum PopKind {
    /// Input relays: the host writes their rates or spikes; they only send.
    Input,
    /// Neurons whose model the graph does not name (a placement needs only their number).
    Neuron,
    /// Rate neurons with this activation: the rule's own neurons (graded mode runs them as
    /// such; spiking mode approximates the rate with the chip's soma).
    Graded(crate::rule::Activation),
    /// NIR's integrate-and-fire neurons (`IF`), run by the chip's soma program.
    If,
    /// NIR's leaky integrate-and-fire neurons (`LIF`).
    Lif,
    /// NIR's current-based LIF neurons (`CubaLIF`).
    CubaLif,
    /// NIR's leaky integrators (`LI`, no spikes: a read-out).
    Li,
}

impl PopKind {
    /// Input relays (not neurons that integrate).
    pub fn is_input(self) -> bool {
        self == PopKind::Input
    }

    /// A short name: `input`, `neuron`, the activation's (`graded hard-sigmoid`) or NIR's
    /// node type (`IF`, `LIF`, `CubaLIF`, `LI`).
    pub fn name(self) -> String {
        match self {
            PopKind::Input => "input".into(),
            PopKind::Neuron => "neuron".into(),
            PopKind::Graded(a) => format!("graded {}", a.name()),
            PopKind::If => "IF".into(),
            PopKind::Lif => "LIF".into(),
            PopKind::CubaLif => "CubaLIF".into(),
            PopKind::Li => "LI".into(),
        }
    }
}

/// A population: `size` neurons of one kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Population {
    /// Its name (`input`, `layer 1`, `hidden`, a NIR node's name, …).
    pub name: String,
    /// Neurons.
    pub size: usize,
    /// What they do.
    pub kind: PopKind,
}

/// Populations placed together: one range of neurons, the populations' in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Group {
    /// Its populations, in neuron order.
    pub populations: Vec<Population>,
}

impl Group {
    /// Neurons in the group.
    pub fn size(&self) -> usize {
        self.populations.iter().map(|p| p.size).sum()
    }

    /// The group's leading input relays (its input populations come first).
    pub fn inputs(&self) -> usize {
        self.populations
            .iter()
            .take_while(|p| p.kind.is_input())
            .map(|p| p.size)
            .sum()
    }
}

/// Every synapse from group `from` to group `to` (the same group: a loop).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Projection {
    /// What it came from (a NIR chain's synapse nodes, e.g. `conv` or `pool+fc`; empty:
    /// unnamed).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Presynaptic group.
    pub from: usize,
    /// Postsynaptic group.
    pub to: usize,
    /// The synapses that exist, row-major `(size(to), size(from))` (`None`: all of them).
    /// Serialised as `existing`, their count (`null`: all).
    #[serde(rename = "existing", serialize_with = "count_ones")]
    pub mask: Option<BitVec<usize, Lsb0>>,
    /// A convolution's (or pooling's) kernel: which weight of it each existing synapse is
    /// (`None`: every synapse its own weight). Only masked projections have one. A chip that
    /// declares `core.weight_sharing` stores it once per channel on a core
    /// ([`crate::mapping#weight-sharing`]). Serialised as `kernel`, its weights per channel (left out when `None`).
    #[serde(
        serialize_with = "kernel_size",
        skip_serializing_if = "Option::is_none"
    )]
    pub kernel: Option<Kernel>,
}

/// A convolution's weight sharing, as the synapses of its expansion carry it: postsynaptic
/// neuron `i` is in channel `i / positions` (NIR's `(C, H, W)` order) and each existing
/// synapse is tap `tap[k]` (`k`: its rank among the mask's ones, row-major) of its channel's
/// kernel of `taps` weights (`C_in / groups × kh × kw`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kernel {
    /// Postsynaptic neurons per channel (`H_out × W_out`), ≥ 1.
    pub positions: usize,
    /// Weights in one channel's kernel.
    pub taps: usize,
    /// Per existing synapse, its tap (`< taps`).
    pub tap: Vec<u32>,
}

/// Where a kernel's copies hold different weights ([`Kernel::shared_by`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Unshared {
    /// The channel.
    pub channel: usize,
    /// The tap.
    pub tap: u32,
    /// Two postsynaptic neurons whose synapse at that tap differ, and their weights.
    pub neurons: (usize, usize),
    /// Their weights.
    pub weights: (f64, f64),
}

impl Kernel {
    /// The channel of postsynaptic neuron `i`.
    pub fn channel(&self, i: usize) -> usize {
        i / self.positions.max(1)
    }

    /// Channels of `size` postsynaptic neurons.
    pub fn channels(&self, size: usize) -> usize {
        size.div_ceil(self.positions.max(1))
    }

    /// Whether the weights `w` (row-major `(size, n_in)`, as the mask) are one kernel per
    /// channel: every synapse at the same tap of the same channel holds the same value
    /// (bit for bit). A net trained synapse by synapse, or scaled per neuron, is not.
    ///
    /// # Errors
    /// The first tap of a channel whose copies differ.
    pub fn shared_by(
        &self,
        w: &[f64],
        n_in: usize,
        mask: &BitSlice<usize, Lsb0>,
    ) -> Result<(), Unshared> {
        let mut seen: Vec<Option<(usize, f64)>> = Vec::new();
        let mut chan = usize::MAX;
        for (k, cell) in mask.iter_ones().enumerate() {
            let i = cell / n_in.max(1);
            let c = self.channel(i);
            if c != chan {
                chan = c;
                seen.clear();
                seen.resize(self.taps, None);
            }
            let (Some(&t), Some(&v)) = (self.tap.get(k), w.get(cell)) else {
                break;
            };
            match seen.get_mut(t as usize) {
                Some(slot @ None) => *slot = Some((i, v)),
                Some(Some((first, u))) if u.to_bits() != v.to_bits() => {
                    return Err(Unshared {
                        channel: c,
                        tap: t,
                        neurons: (*first, i),
                        weights: (*u, v),
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }
}

fn kernel_size<S: serde::Serializer>(k: &Option<Kernel>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_some(&k.as_ref().map(|k| k.taps))
}

fn count_ones<S: serde::Serializer>(
    mask: &Option<BitVec<usize, Lsb0>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_some(&mask.as_ref().map(|m| m.count_ones()))
}

/// A network's structure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Graph {
    /// Groups, the input group first.
    pub groups: Vec<Group>,
    /// Projections between groups.
    pub projections: Vec<Projection>,
}

/// How the mapping reads a graph ([`Graph::shape`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shape<'a> {
    /// A chain: groups `0..n` of one population each, group 0 the inputs; a projection from
    /// each group to the next; `recurrent[l]`: group `l` also projects onto itself; `masks[l]`:
    /// the synapses from group `l` to `l + 1` that exist (`None`: dense).
    Chain {
        /// Group widths, input first.
        sizes: Vec<usize>,
        /// Per group, whether it loops onto itself.
        recurrent: Vec<bool>,
        /// Per forward projection, its mask.
        masks: Vec<Option<&'a BitSlice<usize, Lsb0>>>,
        /// Per forward projection, its kernel (a convolution's weight sharing).
        kernels: Vec<Option<&'a Kernel>>,
    },
    /// One group of `n` neurons, input relays first, projecting onto itself.
    AllToAll {
        /// Neurons of the group.
        n: usize,
    },
}

/// A graph that is not a network, or that the mapping cannot place.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// No groups.
    #[error("the graph has no groups: a network needs at least its inputs")]
    Empty,
    /// A group without neurons.
    #[error("group {group} has no neurons (a population of width 0, or none)")]
    EmptyGroup {
        /// The group.
        group: usize,
    },
    /// A projection names a group that does not exist.
    #[error("projection {index} joins group {from} to group {to}; the graph has {groups} groups")]
    NoSuchGroup {
        /// The projection.
        index: usize,
        /// Its presynaptic group.
        from: usize,
        /// Its postsynaptic group.
        to: usize,
        /// Groups in the graph.
        groups: usize,
    },
    /// A mask of the wrong length.
    #[error(
        "projection {index} (group {from} → group {to}) has a mask of {len} entries; it needs \
         {rows} × {cols} = {want}",
        want = .rows * .cols
    )]
    MaskShape {
        /// The projection.
        index: usize,
        /// Its presynaptic group.
        from: usize,
        /// Its postsynaptic group.
        to: usize,
        /// Mask entries given.
        len: usize,
        /// Postsynaptic neurons.
        rows: usize,
        /// Presynaptic neurons.
        cols: usize,
    },
    /// Two projections between the same groups.
    #[error("projections {first} and {second} both join group {from} to group {to}")]
    Duplicate {
        /// The earlier projection.
        first: usize,
        /// The later one.
        second: usize,
        /// Their presynaptic group.
        from: usize,
        /// Their postsynaptic group.
        to: usize,
    },
    /// A structure the mapping does not place.
    #[error("{0}")]
    Unplaceable(String),
}

impl Graph {
    /// A layered net: widths `sizes` (input first), `recurrent[l]` marking the layers that
    /// loop onto themselves (missing entries: no), `masks[l]` the synapses from layer `l` to
    /// `l + 1` that exist (missing or `None`: dense).
    ///
    /// # Errors
    /// A width of 0, or a mask of the wrong length, as [`Graph::check`] reports them.
    pub fn layered(
        sizes: &[usize],
        recurrent: &[bool],
        mut masks: Vec<Option<BitVec<usize, Lsb0>>>,
    ) -> Result<Graph, GraphError> {
        let groups = sizes
            .iter()
            .enumerate()
            .map(|(l, &size)| Group {
                populations: vec![Population {
                    name: if l == 0 {
                        "input".into()
                    } else {
                        format!("layer {l}")
                    },
                    size,
                    kind: if l == 0 {
                        PopKind::Input
                    } else {
                        PopKind::Neuron
                    },
                }],
            })
            .collect();
        masks.resize(sizes.len().saturating_sub(1), None);
        let mut projections = Vec::new();
        for (l, mask) in masks.into_iter().enumerate() {
            projections.push(Projection {
                name: String::new(),
                from: l,
                to: l + 1,
                mask,
                kernel: None,
            });
            if recurrent.get(l + 1).copied().unwrap_or(false) {
                projections.push(Projection {
                    name: String::new(),
                    from: l + 1,
                    to: l + 1,
                    mask: None,
                    kernel: None,
                });
            }
        }
        if recurrent.first().copied().unwrap_or(false) {
            projections.insert(
                0,
                Projection {
                    name: String::new(),
                    from: 0,
                    to: 0,
                    mask: None,
                    kernel: None,
                },
            );
        }
        let g = Graph {
            groups,
            projections,
        };
        g.check()?;
        Ok(g)
    }

    /// An all-to-all net of `n` neurons: `n_in` input relays, then hidden neurons, then
    /// `n_out` outputs, in one group projecting onto itself; `mask` (row-major `n × n`, from
    /// `j` to `i` at `i * n + j`) marks the synapses that exist (`None`: all).
    ///
    /// # Errors
    /// `n = 0`, `n_in + n_out > n`, or a mask of the wrong length.
    pub fn all_to_all(
        n: usize,
        n_in: usize,
        n_out: usize,
        mask: Option<BitVec<usize, Lsb0>>,
    ) -> Result<Graph, GraphError> {
        if n_in.saturating_add(n_out) > n {
            return Err(GraphError::Unplaceable(format!(
                "an all-to-all net of {n} neurons cannot hold {n_in} inputs and {n_out} outputs"
            )));
        }
        let pops = [
            ("input", n_in, PopKind::Input),
            ("hidden", n - n_in - n_out, PopKind::Neuron),
            ("output", n_out, PopKind::Neuron),
        ];
        // (`of_general` names the models.)
        let g = Graph {
            groups: vec![Group {
                populations: pops
                    .into_iter()
                    .filter(|p| p.1 > 0)
                    .map(|(name, size, kind)| Population {
                        name: name.into(),
                        size,
                        kind,
                    })
                    .collect(),
            }],
            projections: vec![Projection {
                name: String::new(),
                from: 0,
                to: 0,
                mask,
                kernel: None,
            }],
        };
        g.check()?;
        Ok(g)
    }

    /// The synapses of the all-to-all recipe net ([`GeneralNet::all_to_all`](crate::rule::GeneralNet::all_to_all)):
    /// every neuron from every other, the `n_in` input relays receiving none; row-major
    /// `n × n` as [`Graph::all_to_all`] takes it. `n²` bits: for a net the caller has already
    /// checked fits a chip.
    pub fn all_to_all_recipe_mask(n: usize, n_in: usize) -> BitVec<usize, Lsb0> {
        let mut m = BitVec::repeat(false, n * n);
        for i in n_in.min(n)..n {
            m[i * n..(i + 1) * n].fill(true);
            m.set(i * n + i, false);
        }
        m
    }

    /// The graph of an all-to-all net as the rule holds it (its mask included).
    ///
    /// # Errors
    /// As [`Graph::all_to_all`].
    pub fn of_general(net: &crate::rule::GeneralNet) -> Result<Graph, GraphError> {
        let mask: BitVec<usize, Lsb0> = net.mask.iter().copied().collect();
        let mut g = Graph::all_to_all(net.n, net.n_in, net.n_out, Some(mask))?;
        for p in &mut g.groups[0].populations {
            p.kind = match p.name.as_str() {
                "hidden" => PopKind::Graded(net.hidden_act),
                "output" => PopKind::Graded(net.output_act),
                _ => p.kind,
            };
        }
        Ok(g)
    }

    /// The same graph with the neuron populations of a chain given models: `kinds[l]` for the
    /// population of group `l + 1` (missing entries: unchanged).
    pub fn with_models(mut self, kinds: &[PopKind]) -> Graph {
        for (g, &k) in self.groups.iter_mut().skip(1).zip(kinds) {
            for p in &mut g.populations {
                p.kind = k;
            }
        }
        self
    }

    /// The same chain with kernels on its forward projections: `kernels[l]` for the
    /// projection from group `l` to `l + 1` (missing entries: none).
    ///
    /// # Errors
    /// A kernel on a dense projection, or whose taps do not match its mask's synapses.
    pub fn with_kernels(mut self, kernels: &[Option<Kernel>]) -> Result<Graph, GraphError> {
        for (l, k) in kernels.iter().enumerate() {
            let Some(k) = k else { continue };
            let Some(index) = self
                .projections
                .iter()
                .position(|p| (p.from, p.to) == (l, l + 1))
            else {
                continue;
            };
            let p = &mut self.projections[index];
            let ones = p.mask.as_ref().map(|m| m.count_ones());
            if ones != Some(k.tap.len())
                || k.positions == 0
                || k.tap.iter().any(|&t| t as usize >= k.taps)
            {
                return Err(GraphError::Unplaceable(format!(
                    "projection {index} (group {l} → group {}) has a kernel of {} taps over {} \
                     synapses, but {}",
                    l + 1,
                    k.taps,
                    k.tap.len(),
                    match ones {
                        None => "it is dense (a kernel needs a mask)".to_string(),
                        Some(n) => format!("its mask has {n} synapses (or a tap is out of range)"),
                    }
                )));
            }
            p.kernel = Some(k.clone());
        }
        Ok(self)
    }

    /// Widths of the groups, input group first.
    pub fn sizes(&self) -> Vec<usize> {
        self.groups.iter().map(Group::size).collect()
    }

    /// Synapses: every projection's existing ones.
    pub fn synapses(&self) -> u64 {
        self.projections
            .iter()
            .map(|p| self.existing(p))
            .fold(0, u64::saturating_add)
    }

    /// The synapses of projection `p` that exist.
    fn existing(&self, p: &Projection) -> u64 {
        match &p.mask {
            Some(m) => m.count_ones() as u64,
            None => self.slots(p),
        }
    }

    /// Every (post, pre) pair of projection `p`.
    fn slots(&self, p: &Projection) -> u64 {
        // (A hand-built graph may name a group that does not exist: 0, as `check` reports.)
        let size = |g: usize| self.groups.get(g).map_or(0, Group::size) as u64;
        size(p.to).saturating_mul(size(p.from))
    }

    /// One line: the groups (populations: name, width, model where named) and the projections
    /// (dense, or how many of their pairs exist), e.g. `groups 0 'input' 4 | 1 'lif1' 6 LIF;
    /// projections 0 → 1 dense (24 synapses)`.
    pub fn describe(&self) -> String {
        let groups: Vec<String> = self
            .groups
            .iter()
            .enumerate()
            .map(|(g, grp)| {
                let pops: Vec<String> = grp
                    .populations
                    .iter()
                    .map(|p| match p.kind {
                        PopKind::Input | PopKind::Neuron => format!("'{}' {}", p.name, p.size),
                        k => format!("'{}' {} {}", p.name, p.size, k.name()),
                    })
                    .collect();
                format!("{g} {}", pops.join(" + "))
            })
            .collect();
        let projs: Vec<String> = self
            .projections
            .iter()
            .map(|p| {
                let how = match &p.mask {
                    None => format!("dense ({} synapses)", self.slots(p)),
                    Some(_) => format!(
                        "masked ({} of {} synapses)",
                        self.existing(p),
                        self.slots(p)
                    ),
                };
                match p.name.as_str() {
                    "" => format!("{} → {} {how}", p.from, p.to),
                    name => format!("{} → {} '{name}' {how}", p.from, p.to),
                }
            })
            .collect();
        format!(
            "groups {}; projections {}",
            groups.join(" | "),
            projs.join(", ")
        )
    }

    /// That every group has neurons, every projection joins groups that exist (at most one
    /// per pair of groups) and every mask has the projection's shape.
    ///
    /// # Errors
    /// The first fault found, naming the group or projection.
    pub fn check(&self) -> Result<(), GraphError> {
        if self.groups.is_empty() {
            return Err(GraphError::Empty);
        }
        if let Some(group) = self.groups.iter().position(|g| g.size() == 0) {
            return Err(GraphError::EmptyGroup { group });
        }
        let groups = self.groups.len();
        for (index, p) in self.projections.iter().enumerate() {
            let (from, to) = (p.from, p.to);
            if from >= groups || to >= groups {
                return Err(GraphError::NoSuchGroup {
                    index,
                    from,
                    to,
                    groups,
                });
            }
            if let Some(m) = &p.mask {
                let (rows, cols) = (self.groups[to].size(), self.groups[from].size());
                if m.len() != rows.saturating_mul(cols) {
                    return Err(GraphError::MaskShape {
                        index,
                        from,
                        to,
                        len: m.len(),
                        rows,
                        cols,
                    });
                }
            }
            if let Some(first) = self.projections[..index]
                .iter()
                .position(|q| (q.from, q.to) == (from, to))
            {
                return Err(GraphError::Duplicate {
                    first,
                    second: index,
                    from,
                    to,
                });
            }
        }
        Ok(())
    }

    /// How the mapping reads the graph: a chain of groups, or one all-to-all group.
    ///
    /// # Errors
    /// A fault [`Graph::check`] finds, or a structure the mapping does not place, naming the
    /// group or projection and why.
    pub fn shape(&self) -> Result<Shape<'_>, GraphError> {
        self.check()?;
        let first = &self.groups[0];
        let inputs_first = |g: usize| {
            let pops = &self.groups[g].populations;
            let k = pops.iter().take_while(|p| p.kind.is_input()).count();
            pops[k..].iter().all(|p| !p.kind.is_input())
        };
        if let Some(g) = (0..self.groups.len()).find(|&g| !inputs_first(g)) {
            return Err(GraphError::Unplaceable(format!(
                "group {g} has an input population after a neuron population: a group's input \
                 relays come first"
            )));
        }
        if first.inputs() < first.size() {
            // Neurons beside the inputs: an all-to-all group, alone, onto itself.
            if self.groups.len() > 1 {
                return Err(GraphError::Unplaceable(format!(
                    "group 0 holds neurons beside its inputs (an all-to-all group) and the graph \
                     has {} more groups: the mapping places an all-to-all group alone",
                    self.groups.len() - 1
                )));
            }
            return match self.projections.as_slice() {
                [p] if (p.from, p.to) == (0, 0) => Ok(Shape::AllToAll { n: first.size() }),
                _ => Err(GraphError::Unplaceable(format!(
                    "group 0 holds neurons beside its inputs, so it needs exactly one projection, \
                     onto itself; the graph has {}",
                    self.projections.len()
                ))),
            };
        }
        let n = self.groups.len();
        if let Some(g) = (1..n).find(|&g| self.groups[g].inputs() > 0) {
            return Err(GraphError::Unplaceable(format!(
                "group {g} holds input relays: only group 0 takes inputs"
            )));
        }
        if let Some(g) = (1..n).find(|&g| self.groups[g].populations.len() > 1) {
            return Err(GraphError::Unplaceable(format!(
                "group {g} of a chain has {} populations: a chain's groups are one population each",
                self.groups[g].populations.len()
            )));
        }
        let mut recurrent = vec![false; n];
        let mut masks: Vec<Option<Option<&BitSlice<usize, Lsb0>>>> = vec![None; n - 1];
        let mut kernels: Vec<Option<&Kernel>> = vec![None; n - 1];
        for (index, p) in self.projections.iter().enumerate() {
            match (p.from, p.to) {
                (0, 0) => {
                    return Err(GraphError::Unplaceable(format!(
                        "projection {index} loops group 0 onto itself, and group 0 holds only \
                         inputs, which do not integrate"
                    )));
                }
                (a, b) if a == b => recurrent[a] = true,
                (a, b) if b == a + 1 => {
                    masks[a] = Some(p.mask.as_deref());
                    kernels[a] = p.kernel.as_ref();
                }
                (a, b) => {
                    return Err(GraphError::Unplaceable(format!(
                        "projection {index} joins group {a} to group {b}: the mapping places a \
                         chain (each group to the next, and loops) or one all-to-all group, not \
                         projections that skip groups or run backwards"
                    )));
                }
            }
        }
        if let Some(l) = masks.iter().position(Option::is_none) {
            return Err(GraphError::Unplaceable(format!(
                "no projection joins group {l} to group {}: a chain projects each group to the \
                 next",
                l + 1
            )));
        }
        Ok(Shape::Chain {
            sizes: self.sizes(),
            recurrent,
            masks: masks.into_iter().map(Option::flatten).collect(),
            kernels,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layered_net_is_a_chain_with_its_loops_and_masks() {
        let mut mask = bitvec![usize, Lsb0; 1; 6 * 4];
        mask.set(3, false);
        let g = Graph::layered(&[4, 6, 3], &[false, true], vec![Some(mask.clone())]).unwrap();
        assert_eq!(g.sizes(), [4, 6, 3]);
        assert_eq!(g.synapses(), 23 + 36 + 18);
        assert_eq!(
            g.describe(),
            "groups 0 'input' 4 | 1 'layer 1' 6 | 2 'layer 2' 3; projections 0 → 1 masked (23 of \
             24 synapses), 1 → 1 dense (36 synapses), 1 → 2 dense (18 synapses)"
        );
        let g = g.with_models(&[
            PopKind::Lif,
            PopKind::Graded(crate::rule::Activation::Identity),
        ]);
        assert!(g.describe().starts_with(
            "groups 0 'input' 4 | 1 'layer 1' 6 LIF | 2 'layer 2' 3 graded identity;"
        ));
        let Shape::Chain {
            sizes,
            recurrent,
            masks,
            ..
        } = g.shape().unwrap()
        else {
            panic!("a chain")
        };
        assert_eq!(sizes, [4, 6, 3]);
        assert_eq!(recurrent, [false, true, false]);
        assert_eq!(masks, [Some(mask.as_bitslice()), None]);
    }

    #[test]
    fn a_kernel_goes_on_a_masked_projection_with_a_tap_per_synapse() {
        let mut mask = bitvec![usize, Lsb0; 0; 6 * 4];
        for i in 0..6 {
            mask.set(i * 4 + i % 4, true);
        }
        let g = Graph::layered(&[4, 6, 3], &[], vec![Some(mask.clone())]).unwrap();
        let k = Kernel {
            positions: 3,
            taps: 1,
            tap: vec![0; 6],
        };
        let shared = g.clone().with_kernels(&[Some(k.clone())]).unwrap();
        assert_eq!(shared.projections[0].kernel.as_ref(), Some(&k));
        assert_eq!(k.channels(6), 2);
        // Too few taps for the mask; a kernel on the dense read-out.
        let short = Kernel {
            tap: vec![0; 5],
            ..k.clone()
        };
        let e = g
            .clone()
            .with_kernels(&[Some(short)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("its mask has 6 synapses"), "{e}");
        let e = g.with_kernels(&[None, Some(k)]).unwrap_err().to_string();
        assert!(e.contains("it is dense"), "{e}");
    }

    #[test]
    fn an_all_to_all_net_is_one_group_with_its_relays_first() {
        let g = Graph::all_to_all(20, 4, 3, None).unwrap();
        assert_eq!(g.groups[0].inputs(), 4);
        assert_eq!(g.sizes(), [20]);
        assert_eq!(
            g.describe(),
            "groups 0 'input' 4 + 'hidden' 13 + 'output' 3; projections 0 → 0 dense (400 synapses)"
        );
        assert_eq!(g.synapses(), 400);
        // The recipe's synapses: the rule's own mask, 16 × 19 of them.
        let recipe = Graph::all_to_all_recipe_mask(20, 4);
        let net = crate::rule::GeneralNet::all_to_all(
            20,
            4,
            3,
            crate::rule::Activation::Sigmoid,
            crate::rule::Activation::Sigmoid,
            1.0,
            0,
        );
        assert!(recipe.iter().by_vals().eq(net.mask.iter().copied()));
        let g = Graph::all_to_all(20, 4, 3, Some(recipe)).unwrap();
        assert_eq!(g.synapses(), 16 * 19);
        assert!(g.describe().ends_with("0 → 0 masked (304 of 400 synapses)"));
        assert_eq!(g.shape().unwrap(), Shape::AllToAll { n: 20 });
        let net = crate::rule::GeneralNet::all_to_all(
            12,
            3,
            2,
            crate::rule::Activation::Sigmoid,
            crate::rule::Activation::Sigmoid,
            1.0,
            1,
        );
        let g = Graph::of_general(&net).unwrap();
        let kinds: Vec<PopKind> = g.groups[0].populations.iter().map(|p| p.kind).collect();
        let sig = PopKind::Graded(crate::rule::Activation::Sigmoid);
        assert_eq!(kinds, [PopKind::Input, sig, sig]);
        assert_eq!(g.synapses(), net.mask.iter().filter(|&&m| m).count() as u64);
    }

    #[test]
    fn faults_name_the_group_or_projection() {
        assert_eq!(
            Graph::layered(&[4, 0, 3], &[], Vec::new()),
            Err(GraphError::EmptyGroup { group: 1 })
        );
        let e = Graph::layered(
            &[4, 6, 3],
            &[],
            vec![None, Some(bitvec![usize, Lsb0; 1; 5])],
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "projection 1 (group 1 → group 2) has a mask of 5 entries; it needs 3 × 6 = 18"
        );
        assert!(Graph::all_to_all(5, 4, 3, None).is_err());
        let mut g = Graph::layered(&[4, 6, 3], &[], Vec::new()).unwrap();
        g.projections.push(Projection {
            name: String::new(),
            from: 0,
            to: 2,
            mask: None,
            kernel: None,
        });
        let e = g.shape().unwrap_err().to_string();
        assert!(e.contains("projection 2 joins group 0 to group 2"), "{e}");
        g.projections[2] = Projection {
            name: String::new(),
            from: 0,
            to: 1,
            mask: None,
            kernel: None,
        };
        assert_eq!(
            g.shape().unwrap_err(),
            GraphError::Duplicate {
                first: 0,
                second: 2,
                from: 0,
                to: 1
            }
        );
        g.projections[2] = Projection {
            name: String::new(),
            from: 0,
            to: 7,
            mask: None,
            kernel: None,
        };
        assert!(matches!(
            g.shape(),
            Err(GraphError::NoSuchGroup { index: 2, .. })
        ));
        g.projections.truncate(1);
        let e = g.shape().unwrap_err().to_string();
        assert!(e.contains("no projection joins group 1 to group 2"), "{e}");
        let mut a = Graph::all_to_all(20, 4, 3, None).unwrap();
        a.groups.push(a.groups[0].clone());
        assert!(a.shape().unwrap_err().to_string().contains("alone"));
        let e = Graph::layered(&[4, 6], &[true], Vec::new())
            .unwrap()
            .shape()
            .unwrap_err();
        assert!(e.to_string().contains("only inputs"), "{e}");
    }
}
