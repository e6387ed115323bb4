//! A trained chain written back into the NIR graph it was read from (ARCHITECTURE.md §13):
//! the file's nodes where a layer is as it was, its weights put back where the node can hold
//! them, one `Affine` where the trained weights no longer follow the file's structure.

use super::{Chain, Discrete, Graph, NirError, Node, Program, Tensor};
use crate::rule::LayeredNet;

/// How [`Chain::export`] wrote one synaptic layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Written {
    /// The file's nodes, unchanged: no trained weight or bias differs from the start by more
    /// than the tolerance (e.g. a run with `--epochs 0`, whose chip only quantised them).
    Unchanged,
    /// The file's `Affine` or `Linear` node with the trained weights and bias (a `Linear`
    /// whose bias became non-zero is written as an `Affine`).
    Updated,
    /// One `Affine` (after a `Flatten` where its input has several dimensions) in place of
    /// structured or composed nodes (a convolution, pooling, `Scale`, several nodes in one
    /// layer) that the trained weights no longer follow: accord trains every synapse of an
    /// expanded convolution on its own, so its copies of a kernel drift apart. `zeros` of its
    /// `cells` are structural zeros that NIR cannot mark: a reader sees a dense layer.
    Dense {
        /// The `Affine` node's name.
        node: String,
        /// Structural zeros (synapses that do not exist).
        zeros: usize,
        /// `out × in`.
        cells: usize,
    },
}

/// A graph written by [`Chain::export`], and per synaptic layer (its synapse nodes' names, as
/// in [`Chain::layers`]) how it was written.
#[derive(Clone, Debug)]
pub struct Exported {
    /// The graph.
    pub graph: Graph,
    /// Per synaptic layer: its name and how it was written.
    pub layers: Vec<(String, Written)>,
}

/// A node that makes a layer structured (its input has a shape the node reads).
fn structured(node: &Node) -> bool {
    matches!(node, Node::Conv2d { .. } | Node::Pool2d { .. })
}

/// A node name not yet in `graph`: `base`, else `base_2`, `base_3`, ….
fn fresh(graph: &Graph, base: &str) -> String {
    if !graph.nodes.contains_key(base) {
        return base.to_string();
    }
    (2..)
        .map(|k| format!("{base}_{k}"))
        .find(|n| !graph.nodes.contains_key(n))
        .unwrap_or_default()
}

impl Chain {
    /// The synapse-like nodes of each synaptic layer, in chain order (a `Flatten` among them
    /// included): the nodes between one layer's neuron node (or the input) and the next.
    fn segments(&self, graph: &Graph) -> Result<Vec<Vec<String>>, NirError> {
        let mut segs: Vec<Vec<String>> = Vec::new();
        let mut cur = Vec::new();
        for n in self.order.iter().skip(1) {
            let neuron = self
                .layers
                .get(segs.len())
                .and_then(|(_, neuron)| neuron.as_ref())
                == Some(n);
            let output = matches!(graph.nodes.get(n), Some(Node::Output { .. }));
            if neuron || (output && !cur.is_empty()) {
                segs.push(std::mem::take(&mut cur));
            } else if !output {
                cur.push(n.clone());
            }
        }
        if segs.len() != self.layers.len() || segs.iter().any(Vec::is_empty) {
            return Err(NirError::Graph(format!(
                "the chain's {} layers do not match its nodes in order ({})",
                self.layers.len(),
                self.order.join(" → ")
            )));
        }
        Ok(segs)
    }

    /// `trained` (a net of this chain's shape, e.g. trained from it) written into `graph`,
    /// the NIR graph this chain was read from, where `self` is the chain as the run started
    /// (its neurons' factors folded in by [`Chain::apply`] with `discrete` and `programs`).
    ///
    /// Per layer: where no weight or bias of `trained` differs from `self` by more than
    /// `tol`, the file's nodes are kept as they are ([`Written::Unchanged`]); else a single
    /// `Affine` or `Linear` node takes the trained values with the neurons' factors taken
    /// out again (dividing by what [`Chain::apply`] multiplied, and by an `LI` read-out's
    /// `r`) ([`Written::Updated`]); else the layer's nodes become one `Affine`
    /// ([`Written::Dense`]). A layer after a [`Written::Dense`] one whose nodes read a shape
    /// (a convolution or pooling) is written dense too, since its input is then flat. Neuron
    /// nodes are always the file's (their kind and parameters: an `LIF` stays an `LIF`).
    ///
    /// # Errors
    /// A recurrent chain (not trained on a chip, so not exported), a net of another shape, a
    /// neuron factor of 0 (the weights cannot be taken back out).
    pub fn export(
        &self,
        graph: &Graph,
        discrete: &[Option<Discrete>],
        programs: &[Option<Program>],
        trained: &LayeredNet,
        tol: f64,
    ) -> Result<Exported, NirError> {
        if let Some(r) = self.recurrent.iter().flatten().next() {
            return Err(NirError::Graph(format!(
                "the chain has a recurrent projection (node '{}'); accord does not train or export recurrent nets",
                r.node
            )));
        }
        if trained.sizes() != self.net.sizes() {
            let s = |v: Vec<usize>| v.iter().map(usize::to_string).collect::<Vec<_>>().join("-");
            return Err(NirError::Graph(format!(
                "the trained net is {} but the file's chain is {}",
                s(trained.sizes()),
                s(self.net.sizes())
            )));
        }
        let segs = self.segments(graph)?;
        let mut out = graph.clone();
        let mut written = Vec::with_capacity(segs.len());
        let mut flat_before = false;
        for (l, seg) in segs.iter().enumerate() {
            let (start, now) = (&self.net.layers[l], &trained.layers[l]);
            let (name, neuron) = &self.layers[l];
            let changed = start
                .w
                .iter()
                .zip(&now.w)
                .chain(start.b.iter().zip(&now.b))
                .any(|(a, b)| (a - b).abs() > tol || !b.is_finite());
            let syn: Vec<&String> = seg
                .iter()
                .filter(|n| !matches!(graph.nodes[*n], Node::Flatten { .. }))
                .collect();
            let forced = flat_before && seg.iter().any(|n| structured(&graph.nodes[n]));
            if !changed && !forced {
                written.push((name.clone(), Written::Unchanged));
                flat_before = false;
                continue;
            }
            let (w, b) = unfold(graph, l, neuron.as_deref(), now, discrete, programs)?;
            let n_out = now.n_out;
            let weight = Tensor {
                shape: vec![n_out, now.n_in],
                data: w,
            };
            let single = match syn.as_slice() {
                [n] if seg.len() == 1 => Some((*n).clone()),
                _ => None,
            };
            match single.as_ref().map(|n| &graph.nodes[n]) {
                Some(Node::Linear { .. }) if !forced && b.iter().all(|&x| x == 0.0) => {
                    out.nodes.insert(syn[0].clone(), Node::Linear { weight });
                    written.push((name.clone(), Written::Updated));
                    flat_before = false;
                }
                Some(Node::Affine { .. } | Node::Linear { .. }) if !forced => {
                    out.nodes
                        .insert(syn[0].clone(), Node::Affine { weight, bias: b });
                    written.push((name.clone(), Written::Updated));
                    flat_before = false;
                }
                _ => {
                    // The layer's input has several dimensions: the input node's, or a
                    // neuron node's that kept its shape.
                    let shaped = if l == 0 {
                        matches!(graph.nodes.get(&self.order[0]), Some(Node::Input { shape }) if shape.len() > 1)
                    } else {
                        self.layers[l - 1]
                            .1
                            .as_ref()
                            .and_then(|n| out.shapes.get(n))
                            .is_some_and(|s| s.len() > 1)
                    };
                    for n in seg {
                        out.nodes.remove(n);
                    }
                    let base = syn.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("_");
                    let affine = fresh(&out, &base);
                    let mut first = affine.clone();
                    if shaped {
                        first = fresh(&out, &format!("{affine}_flat"));
                        out.nodes
                            .insert(first.clone(), Node::Flatten { dims: [0, -1] });
                    }
                    out.nodes
                        .insert(affine.clone(), Node::Affine { weight, bias: b });
                    let (head, tail) = (&seg[0], &seg[seg.len() - 1]);
                    let mut edges = Vec::with_capacity(out.edges.len());
                    for (a, z) in out.edges.drain(..) {
                        match (seg.contains(&a), seg.contains(&z)) {
                            (true, true) => {}
                            (false, true) if &z == head => edges.push((a, first.clone())),
                            (true, false) if &a == tail => edges.push((affine.clone(), z)),
                            _ => edges.push((a, z)),
                        }
                    }
                    if shaped {
                        edges.push((first, affine.clone()));
                    }
                    out.edges = edges;
                    // Its neurons receive a flat input now.
                    if let Some(n) = neuron {
                        out.shapes.remove(n);
                    }
                    let cells = n_out * now.n_in;
                    let zeros = self.masks[l]
                        .as_ref()
                        .map_or(0, |m| m.len() - m.count_ones());
                    written.push((
                        name.clone(),
                        Written::Dense {
                            node: affine,
                            zeros,
                            cells,
                        },
                    ));
                    flat_before = true;
                }
            }
        }
        Ok(Exported {
            graph: out,
            layers: written,
        })
    }
}

/// Layer `l`'s trained weights and bias with the neurons' factors taken out: what
/// [`Chain::apply`] multiplied in (under `programs[l]`), then an `LI` read-out's `r` and
/// `v_leak` (folded in when the chain was built).
fn unfold(
    graph: &Graph,
    l: usize,
    neuron: Option<&str>,
    layer: &crate::rule::Layer,
    discrete: &[Option<Discrete>],
    programs: &[Option<Program>],
) -> Result<(Vec<f64>, Vec<f64>), NirError> {
    let n_in = layer.n_in.max(1);
    let (mut w, mut b) = (layer.w.clone(), layer.b.clone());
    let zero = |what: &str| {
        NirError::Graph(format!(
            "node '{}' folds a factor of 0 into {what}: the weights cannot be written back",
            neuron.unwrap_or("?")
        ))
    };
    if let Some(d) = discrete.get(l).and_then(Option::as_ref) {
        let program = programs.get(l).and_then(Option::as_ref);
        for (i, (row, bi)) in w.chunks_mut(n_in).zip(&mut b).enumerate() {
            let k = program.map_or(d.scale[i], |p| d.weight_scale(i, p));
            if k == 0.0 || d.scale[i] == 0.0 {
                return Err(zero("its weights"));
            }
            row.iter_mut().for_each(|x| *x /= k);
            *bi = (*bi - d.leak[i]) / d.scale[i];
        }
    }
    if let Some(Node::Li { r, v_leak, .. }) = neuron.and_then(|n| graph.nodes.get(n)) {
        for (i, (row, bi)) in w.chunks_mut(n_in).zip(&mut b).enumerate() {
            if r[i] == 0.0 {
                return Err(zero("its read-out"));
            }
            row.iter_mut().for_each(|x| *x /= r[i]);
            *bi = (*bi - v_leak[i]) / r[i];
        }
    }
    Ok((w, b))
}
