//! NIR, the Neuromorphic Intermediate Representation: graphs read and written as the Python
//! `nir` package (1.0) stores them in HDF5, through a pure-Rust HDF5 implementation
//! (`hdf5-pure`, no system library). ARCHITECTURE.md §13.
//!
//! A NIR file is a root dataset `version` and a group `node` of type `NIRGraph` holding `edges`
//! (an `n × 2` array of node names) and a group `nodes`: one group per node with a `type`
//! string and its parameters as arrays. This module reads every node's type and the
//! parameters of the primitives accord takes — `Input`, `Output`, `Affine`, `Linear`,
//! `Conv1d`, `Conv2d`, `Flatten`, `IF`, `LIF`, `CubaLIF`, `LI` — and keeps any other primitive
//! (`SumPool2d`, `Delay`, …) as [`Node::Other`], so that a report can say which node stops a
//! network from running.
//!
//! [`Graph::to_layered`] turns a feed-forward chain (input, then synaptic and neuron nodes in
//! turn, then output) into the layered network accord's mapper and chips run; anything else is
//! an error naming the node and why. [`Graph::from_layered`] writes a layered net back.
//!
//! ```
//! let g = accord::nir::read(std::path::Path::new(concat!(
//!     env!("CARGO_MANIFEST_DIR"),
//!     "/tests/fixtures/nir/if_mlp.nir"
//! )))?;
//! let chain = g.to_layered()?;
//! assert_eq!(chain.net.sizes(), [4, 5, 3]);
//! # Ok::<(), accord::nir::NirError>(())
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use bitvec::prelude::*;

use crate::graph::Kernel;
use crate::rule::{Activation, Balance, Layer, LayeredNet};

mod export;
mod neuron;

pub use export::{Exported, Written};
pub use neuron::{DEFAULT_DT, Discrete, ParamConversion, Program};

/// The NIR version written into files.
pub const VERSION: &str = "1.0.8";

/// The largest NIR file read: 1 GiB.
pub const MAX_BYTES: u64 = 1 << 30;

/// A parameter array: its shape and its values (row-major, as `f64`).
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub data: Vec<f64>,
}

/// One node of a NIR graph.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// The graph's input, of this shape.
    Input {
        /// Shape.
        shape: Vec<usize>,
    },
    /// The graph's output, of this shape.
    Output {
        /// Shape.
        shape: Vec<usize>,
    },
    /// `y = W x + b`.
    Affine {
        /// `W`, shape `(out, in)`.
        weight: Tensor,
        /// `b`.
        bias: Vec<f64>,
    },
    /// `y = W x`.
    Linear {
        /// `W`, shape `(out, in)`.
        weight: Tensor,
    },
    /// Integrate-and-fire: `dv/dt = r·I`, spike and reset to `v_reset` at `v_threshold`.
    If {
        /// Resistance.
        r: Vec<f64>,
        /// Threshold.
        v_threshold: Vec<f64>,
        /// Reset voltage.
        v_reset: Vec<f64>,
    },
    /// Leaky integrate-and-fire: `τ dv/dt = (v_leak − v) + r·I`.
    Lif {
        /// Membrane time constant.
        tau: Vec<f64>,
        /// Resistance.
        r: Vec<f64>,
        /// Leak voltage.
        v_leak: Vec<f64>,
        /// Threshold.
        v_threshold: Vec<f64>,
        /// Reset voltage.
        v_reset: Vec<f64>,
    },
    /// Current-based LIF: `τ_syn dI/dt = −I + w_in·x`, `τ_mem dv/dt = (v_leak − v) + r·I`.
    CubaLif {
        /// Synaptic time constant.
        tau_syn: Vec<f64>,
        /// Membrane time constant.
        tau_mem: Vec<f64>,
        /// Resistance.
        r: Vec<f64>,
        /// Leak voltage.
        v_leak: Vec<f64>,
        /// Threshold.
        v_threshold: Vec<f64>,
        /// Reset voltage.
        v_reset: Vec<f64>,
        /// Input weight.
        w_in: Vec<f64>,
    },
    /// Leaky integrator (no spikes): `τ dv/dt = (v_leak − v) + r·I`.
    Li {
        /// Time constant.
        tau: Vec<f64>,
        /// Resistance.
        r: Vec<f64>,
        /// Leak voltage.
        v_leak: Vec<f64>,
    },
    /// A 2-D convolution over a `(C, H, W)` input: `weight (O, C/groups, kh, kw)`, `bias (O)`.
    /// A NIR `Conv1d` over a `(C, L)` input is held as one over `(C, 1, L)` (`one_d`: its
    /// kernels `(O, C/groups, 1, k)`, stride, padding and dilation `(1, s)`, `(0, p)`,
    /// `(1, d)`), and written back as a `Conv1d`.
    Conv2d {
        /// Kernels.
        weight: Tensor,
        /// Bias per output channel.
        bias: Vec<f64>,
        /// Stride (y, x).
        stride: [usize; 2],
        /// Zero padding (y, x).
        padding: [usize; 2],
        /// Dilation (y, x).
        dilation: [usize; 2],
        /// Channel groups.
        groups: usize,
        /// Input height and width.
        input_shape: [usize; 2],
        /// Read from a NIR `Conv1d` (height 1).
        one_d: bool,
    },
    /// Sum (`average: false`) or average pooling over `(C, H, W)`: each output is the sum of a
    /// `kernel` window (divided by the window's area for average pooling, zero padding
    /// included in the area).
    Pool2d {
        /// `AvgPool2d` rather than `SumPool2d`.
        average: bool,
        /// Window (y, x).
        kernel: [usize; 2],
        /// Stride (y, x).
        stride: [usize; 2],
        /// Zero padding (y, x).
        padding: [usize; 2],
    },
    /// `y = x ⊙ s`, one factor per element.
    Scale {
        /// The factors.
        scale: Vec<f64>,
    },
    /// Flattens its input (accord's layers are flat already: a pass-through).
    Flatten {
        /// First and last flattened dimension (NIR's `start_dim`, `end_dim`).
        dims: [i64; 2],
    },
    /// A NIR primitive accord does not take yet (its type as written).
    Other {
        /// The NIR type.
        kind: String,
    },
}

impl Node {
    /// The NIR type name.
    pub fn kind(&self) -> &str {
        match self {
            Node::Input { .. } => "Input",
            Node::Output { .. } => "Output",
            Node::Affine { .. } => "Affine",
            Node::Linear { .. } => "Linear",
            Node::If { .. } => "IF",
            Node::Lif { .. } => "LIF",
            Node::CubaLif { .. } => "CubaLIF",
            Node::Li { .. } => "LI",
            Node::Conv2d { one_d: false, .. } => "Conv2d",
            Node::Conv2d { one_d: true, .. } => "Conv1d",
            Node::Pool2d { average: false, .. } => "SumPool2d",
            Node::Pool2d { average: true, .. } => "AvgPool2d",
            Node::Scale { .. } => "Scale",
            Node::Flatten { .. } => "Flatten",
            Node::Other { kind } => kind,
        }
    }

    /// A neuron node's per-neuron parameters, by NIR name (empty for other nodes): one list
    /// for reading checks, writing and tests.
    pub fn params(&self) -> Vec<(&'static str, &[f64])> {
        match self {
            Node::If {
                r,
                v_threshold,
                v_reset,
            } => vec![("r", r), ("v_threshold", v_threshold), ("v_reset", v_reset)],
            Node::Lif {
                tau,
                r,
                v_leak,
                v_threshold,
                v_reset,
            } => vec![
                ("r", r),
                ("tau", tau),
                ("v_leak", v_leak),
                ("v_threshold", v_threshold),
                ("v_reset", v_reset),
            ],
            Node::CubaLif {
                tau_syn,
                tau_mem,
                r,
                v_leak,
                v_threshold,
                v_reset,
                w_in,
            } => vec![
                ("r", r),
                ("tau_syn", tau_syn),
                ("tau_mem", tau_mem),
                ("v_leak", v_leak),
                ("v_threshold", v_threshold),
                ("v_reset", v_reset),
                ("w_in", w_in),
            ],
            Node::Li { tau, r, v_leak } => vec![("r", r), ("tau", tau), ("v_leak", v_leak)],
            _ => Vec::new(),
        }
    }

    /// Neurons of a neuron node (the length of its parameters), if it is one.
    pub fn neurons(&self) -> Option<usize> {
        match self {
            Node::If { r, .. }
            | Node::Lif { r, .. }
            | Node::CubaLif { r, .. }
            | Node::Li { r, .. } => Some(r.len()),
            _ => None,
        }
    }
}

/// A NIR graph.
#[derive(Clone, Debug, PartialEq)]
pub struct Graph {
    /// The NIR version that wrote it.
    pub version: String,
    /// Nodes by name.
    pub nodes: BTreeMap<String, Node>,
    /// Edges `(from, to)` in file order.
    pub edges: Vec<(String, String)>,
    /// Per neuron or `Scale` node whose parameters the file stored with several dimensions
    /// (after a convolution or pool: `(C, H, W)`), that shape. [`write`] stores them so again, so the
    /// Python client's type inference sees the shape it wrote (accord's own nodes hold them
    /// flat).
    pub shapes: BTreeMap<String, Vec<usize>>,
}

/// Errors of reading, writing or converting NIR graphs; each names the file, the node, its
/// type and the parameter where one is at fault.
#[derive(Debug, thiserror::Error)]
pub enum NirError {
    /// The file cannot be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// The cause (part of the message).
        error: std::io::Error,
    },
    /// Not an HDF5 file, or not a NIR graph.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A node's parameter is missing or malformed.
    #[error("{path}: node '{node}' ({kind}): {reason}")]
    Node {
        /// The file.
        path: String,
        /// The node.
        node: String,
        /// Its NIR type.
        kind: String,
        /// What is wrong (naming the parameter).
        reason: String,
    },
    /// The graph is not what the conversion takes.
    #[error("{0}")]
    Graph(String),
}

/// Read a NIR file.
///
/// # Errors
/// [`NirError`] naming the file and, for a node, the node, its type and the parameter.
pub fn read(path: &Path) -> Result<Graph, NirError> {
    let f = Hdf5::open(path)?;
    let version = f.string("version").unwrap_or_else(|_| "unknown".into());
    let kind = f.string("node/type")?;
    if kind != "NIRGraph" {
        return Err(f.format(format!(
            "the root node is a {kind}, not a NIRGraph (accord reads whole graphs)"
        )));
    }
    let edge_ds = f
        .file
        .dataset("node/edges")
        .map_err(|e| f.format(format!("no 'node/edges' ({e})")))?;
    let edge_ds = f.sized(edge_ds, "'node/edges'").map_err(|e| f.format(e))?;
    let flat = edge_ds
        .read_string()
        .map_err(|e| f.format(format!("'node/edges' is not an array of node names ({e})")))?;
    if flat.len() % 2 != 0 {
        return Err(f.format(format!(
            "'node/edges' holds {} names, not pairs",
            flat.len()
        )));
    }
    let edges: Vec<(String, String)> = flat
        .chunks_exact(2)
        .map(|p| (p[0].clone(), p[1].clone()))
        .collect();
    let group = f
        .file
        .group("node/nodes")
        .map_err(|e| f.format(format!("no 'node/nodes' group ({e})")))?;
    let names = group
        .groups()
        .map_err(|e| f.format(format!("'node/nodes' cannot be listed ({e})")))?;
    let mut nodes = BTreeMap::new();
    let mut shapes = BTreeMap::new();
    for n in names {
        let at = format!("node/nodes/{n}");
        let kind = f.string(&format!("{at}/type"))?;
        let r = NodeReader {
            f: &f,
            at,
            node: n.clone(),
            kind,
        };
        let node = r.node()?;
        check_node(&node).map_err(|e| r.err(e))?;
        // A neuron or Scale node's parameter shape, where it has several dimensions.
        let first = match &node {
            Node::Scale { scale } => Some(("scale", scale.as_slice())),
            _ => node.params().first().copied(),
        };
        if let Some((p, v)) = first
            && let Ok(t) = r.tensor(p)
            && t.shape.len() > 1
            && t.shape.iter().product::<usize>() == v.len()
        {
            shapes.insert(n.clone(), t.shape);
        }
        nodes.insert(n, node);
    }
    for (a, b) in &edges {
        for end in [a, b] {
            if !nodes.contains_key(end) {
                return Err(f.format(format!("edge {a} → {b} names no node '{end}'")));
            }
        }
    }
    Ok(Graph {
        version,
        nodes,
        edges,
        shapes,
    })
}

/// An opened NIR file: its HDF5 tree, its name for errors, and the most elements a dataset may
/// claim.
struct Hdf5 {
    file: hdf5_pure::File,
    name: String,
    len: u64,
    most: u64,
}

impl Hdf5 {
    /// Read `path` within the memory budget and open it as HDF5.
    fn open(path: &Path) -> Result<Self, NirError> {
        let name = path.display().to_string();
        let budget = MAX_BYTES.min(crate::limits::max_memory() / 8);
        let bytes = crate::limits::read_bounded(path, budget).map_err(|error| NirError::Io {
            path: name.clone(),
            error,
        })?;
        let format = |reason: String| NirError::Format {
            path: name.clone(),
            reason,
        };
        if !hdf5_pure::is_hdf5_bytes(&bytes) {
            return Err(format("not an HDF5 file (a NIR file is HDF5)".into()));
        }
        // A damaged header can claim a dataset of any size: no dataset may hold more elements
        // than the file could store (generously, for compression) or the memory limit allows.
        let len = bytes.len() as u64;
        let most = (len.saturating_mul(64) + (1 << 20)).min(crate::limits::max_memory() / 8);
        let file = hdf5_pure::File::from_bytes(bytes)
            .map_err(|e| format(format!("not a readable HDF5 file: {e}")))?;
        Ok(Hdf5 {
            file,
            name,
            len,
            most,
        })
    }

    /// The file's format error.
    fn format(&self, reason: String) -> NirError {
        NirError::Format {
            path: self.name.clone(),
            reason,
        }
    }

    /// `d` if its claimed size is one the file could hold.
    fn sized(&self, d: hdf5_pure::Dataset, what: &str) -> Result<hdf5_pure::Dataset, String> {
        let shape = d.shape().map_err(|e| format!("{what}: {e}"))?;
        let n = shape.iter().try_fold(1u64, |a, &x| a.checked_mul(x));
        match n {
            Some(n) if n <= self.most => Ok(d),
            _ => Err(format!(
                "{what} claims shape {shape:?}, more than a {}-byte file can hold",
                self.len
            )),
        }
    }

    /// The string dataset `ds`.
    fn string(&self, ds: &str) -> Result<String, NirError> {
        let d = self
            .file
            .dataset(ds)
            .map_err(|e| self.format(format!("no '{ds}' ({e}): not a NIR graph")))?;
        let d = self
            .sized(d, &format!("'{ds}'"))
            .map_err(|e| self.format(e))?;
        d.read_string()
            .ok()
            .and_then(|v| v.into_iter().next())
            .ok_or_else(|| self.format(format!("'{ds}' is not a string")))
    }
}

/// One node group being read: where it is and its type, for its parameters and errors.
struct NodeReader<'a> {
    f: &'a Hdf5,
    at: String,
    node: String,
    kind: String,
}

impl NodeReader<'_> {
    /// The node's error.
    fn err(&self, reason: String) -> NirError {
        NirError::Node {
            path: self.f.name.clone(),
            node: self.node.clone(),
            kind: self.kind.clone(),
            reason,
        }
    }

    /// Parameter `p` as finite numbers with their shape.
    fn tensor(&self, p: &str) -> Result<Tensor, NirError> {
        let d = self
            .f
            .file
            .dataset(&format!("{}/{p}", self.at))
            .map_err(|_| self.err(format!("parameter '{p}' is missing")))?;
        let d = self
            .f
            .sized(d, &format!("parameter '{p}'"))
            .map_err(|e| self.err(e))?;
        let shape: Vec<usize> = d
            .shape()
            .map_err(|e| self.err(format!("parameter '{p}': {e}")))?
            .into_iter()
            .map(|s| s as usize)
            .collect();
        let data: Vec<f64> = match d.read_f64() {
            Ok(v) => v,
            Err(_) => d
                .read_f32()
                .map(|v| v.into_iter().map(f64::from).collect())
                .or_else(|_| {
                    d.read_i64()
                        .map(|v| v.into_iter().map(|x| x as f64).collect())
                })
                .map_err(|_| self.err(format!("parameter '{p}' is not a numeric array")))?,
        };
        if data.is_empty() && shape.iter().product::<usize>() > 0 {
            return Err(self.err(format!(
                "parameter '{p}' holds no value accord can read for shape {shape:?}: its element type is not float64, float32 or int64 (float16, say); store it as float32"
            )));
        }
        if data.len() != shape.iter().product::<usize>() {
            return Err(self.err(format!(
                "parameter '{p}' holds {} values for shape {shape:?}",
                data.len()
            )));
        }
        if let Some(x) = data.iter().find(|x| !x.is_finite()) {
            return Err(self.err(format!("parameter '{p}' holds {x}")));
        }
        Ok(Tensor { shape, data })
    }

    /// Parameter `p`'s numbers.
    fn vec(&self, p: &str) -> Result<Vec<f64>, NirError> {
        self.tensor(p).map(|t| t.data)
    }

    /// An optional parameter: its NIR default (as many as `like` has) only when absent;
    /// present, it is checked.
    fn opt(&self, p: &str, default: f64, like: &str) -> Result<Vec<f64>, NirError> {
        if self.f.file.dataset(&format!("{}/{p}", self.at)).is_ok() {
            self.vec(p)
        } else {
            self.vec(like).map(|v| vec![default; v.len()])
        }
    }

    /// Parameter `p` as a shape: sizes from 1 to 10⁹.
    fn shape(&self, p: &str) -> Result<Vec<usize>, NirError> {
        let t = self.tensor(p)?;
        t.data
            .iter()
            .map(|&x| {
                if x >= 1.0 && x.fract() == 0.0 && x <= 1e9 {
                    Ok(x as usize)
                } else {
                    Err(self.err(format!("shape entry {x} is not a size")))
                }
            })
            .collect()
    }

    /// Parameter `p` as one or two whole numbers (one is used for both).
    /// One whole number (a `Conv1d`'s stride, padding, dilation or length).
    fn one(&self, p: &str) -> Result<usize, NirError> {
        match self.pair(p)? {
            [a, b] if a == b => Ok(a),
            v => Err(self.err(format!("parameter '{p}' = {v:?} is not one whole number"))),
        }
    }

    /// A convolution's channel groups: a whole number ≥ 1.
    fn groups(&self) -> Result<usize, NirError> {
        self.tensor("groups")
            .ok()
            .and_then(|t| t.data.first().copied())
            .filter(|g| *g >= 1.0 && g.fract() == 0.0 && *g <= 1e6)
            .map(|g| g as usize)
            .ok_or_else(|| {
                self.err("parameter 'groups' is missing or not a whole number ≥ 1".into())
            })
    }

    fn pair(&self, p: &str) -> Result<[usize; 2], NirError> {
        let v = self.tensor(p).map_err(|_| {
            self.err(format!(
                "parameter '{p}' is missing or not numeric (string padding such as 'same' is not taken)"
            ))
        })?;
        let whole = |x: f64| (x >= 0.0 && x.fract() == 0.0 && x <= 1e6).then_some(x as usize);
        match v.data.as_slice() {
            [a] => whole(*a).map(|a| [a, a]),
            [a, b] => whole(*a).zip(whole(*b)).map(|(a, b)| [a, b]),
            _ => None,
        }
        .ok_or_else(|| {
            self.err(format!(
                "parameter '{p}' = {:?} is not one or two whole numbers",
                v.data
            ))
        })
    }

    /// The node with its parameters, by its type (a type accord does not take is
    /// [`Node::Other`]).
    fn node(&self) -> Result<Node, NirError> {
        Ok(match self.kind.as_str() {
            "Input" => Node::Input {
                shape: self.shape("shape")?,
            },
            "Output" => Node::Output {
                shape: self.shape("shape")?,
            },
            "Affine" => Node::Affine {
                weight: self.tensor("weight")?,
                bias: self.vec("bias")?,
            },
            "Linear" => Node::Linear {
                weight: self.tensor("weight")?,
            },
            "IF" => Node::If {
                r: self.vec("r")?,
                v_threshold: self.vec("v_threshold")?,
                v_reset: self.opt("v_reset", 0.0, "r")?,
            },
            "LIF" => Node::Lif {
                tau: self.vec("tau")?,
                r: self.vec("r")?,
                v_leak: self.vec("v_leak")?,
                v_threshold: self.vec("v_threshold")?,
                v_reset: self.opt("v_reset", 0.0, "r")?,
            },
            "CubaLIF" => Node::CubaLif {
                tau_syn: self.vec("tau_syn")?,
                tau_mem: self.vec("tau_mem")?,
                r: self.vec("r")?,
                v_leak: self.vec("v_leak")?,
                v_threshold: self.vec("v_threshold")?,
                v_reset: self.opt("v_reset", 0.0, "r")?,
                w_in: self.opt("w_in", 1.0, "r")?,
            },
            "LI" => Node::Li {
                tau: self.vec("tau")?,
                r: self.vec("r")?,
                v_leak: self.vec("v_leak")?,
            },
            "Conv2d" => {
                let groups = self.groups()?;
                Node::Conv2d {
                    weight: self.tensor("weight")?,
                    bias: self.vec("bias")?,
                    stride: self.pair("stride")?,
                    padding: self.pair("padding")?,
                    dilation: self.pair("dilation")?,
                    groups,
                    input_shape: self.pair("input_shape")?,
                    one_d: false,
                }
            }
            "Conv1d" => {
                let groups = self.groups()?;
                let w = self.tensor("weight")?;
                let [o, ci, k] = w.shape[..] else {
                    return Err(self.err(format!(
                        "parameter 'weight' has shape {:?}; a Conv1d's is (out, in/groups, k)",
                        w.shape
                    )));
                };
                Node::Conv2d {
                    weight: Tensor {
                        shape: vec![o, ci, 1, k],
                        data: w.data,
                    },
                    bias: self.vec("bias")?,
                    stride: [1, self.one("stride")?],
                    padding: [0, self.one("padding")?],
                    dilation: [1, self.one("dilation")?],
                    groups,
                    input_shape: [1, self.one("input_shape")?],
                    one_d: true,
                }
            }
            "SumPool2d" | "AvgPool2d" => Node::Pool2d {
                average: self.kind == "AvgPool2d",
                kernel: self.pair("kernel_size")?,
                stride: self.pair("stride")?,
                padding: self.pair("padding")?,
            },
            "Scale" => Node::Scale {
                scale: self.vec("scale")?,
            },
            "Flatten" => {
                let dim = |p: &str| -> Result<i64, NirError> {
                    self.tensor(p)
                        .ok()
                        .and_then(|t| t.data.first().copied())
                        .filter(|x| x.fract() == 0.0 && x.abs() <= 64.0)
                        .map(|x| x as i64)
                        .ok_or_else(|| {
                            self.err(format!("parameter '{p}' is missing or not a dimension"))
                        })
                };
                Node::Flatten {
                    dims: [dim("start_dim")?, dim("end_dim")?],
                }
            }
            other => Node::Other { kind: other.into() },
        })
    }
}

/// Shape agreement inside one node.
fn check_node(node: &Node) -> Result<(), String> {
    let params = node.params();
    if let Some((first, v0)) = params.first() {
        if let Some((p, v)) = params.iter().find(|(_, v)| v.len() != v0.len()) {
            return Err(format!(
                "parameter '{p}' has {} values, '{first}' has {}",
                v.len(),
                v0.len()
            ));
        }
        return Ok(());
    }
    match node {
        Node::Affine { weight, bias } => weight_and_bias(weight, "(out, in)", Some(bias)),
        Node::Conv2d {
            weight,
            bias,
            stride,
            dilation,
            groups,
            input_shape,
            ..
        } => {
            weight_and_bias(weight, "(out, in/groups, kh, kw)", Some(bias))?;
            if stride.contains(&0) || dilation.contains(&0) || input_shape.contains(&0) {
                return Err("stride, dilation and input_shape must be at least 1".into());
            }
            if !weight.shape[0].is_multiple_of(*groups) {
                return Err(format!(
                    "{} output channels do not split into {groups} groups",
                    weight.shape[0]
                ));
            }
            Ok(())
        }
        Node::Linear { weight } => weight_and_bias(weight, "(out, in)", None),
        Node::Pool2d { kernel, stride, .. } => {
            if kernel.contains(&0) || stride.contains(&0) {
                return Err("kernel_size and stride must be at least 1".into());
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// A weight of the named layout (its rank is the layout's) and, if given, one bias per output.
fn weight_and_bias(weight: &Tensor, layout: &str, bias: Option<&[f64]>) -> Result<(), String> {
    let rank = layout.split(',').count();
    if weight.shape.len() != rank {
        return Err(format!("weight has shape {:?}, not {layout}", weight.shape));
    }
    match bias {
        Some(b) if b.len() != weight.shape[0] => Err(format!(
            "bias has {} values for {} outputs",
            b.len(),
            weight.shape[0]
        )),
        _ => Ok(()),
    }
}

/// Write `graph` as a NIR file (whole or not at all).
///
/// # Errors
/// [`NirError`] naming the file.
pub fn write(path: &Path, graph: &Graph) -> Result<(), NirError> {
    let name = path.display().to_string();
    let mut fb = hdf5_pure::FileBuilder::new();
    fb.create_dataset("version")
        .with_vlen_strings(&[graph.version.as_str()])
        .with_shape(&[]);
    let mut root = fb.create_group("node");
    root.create_dataset("type")
        .with_vlen_strings(&["NIRGraph"])
        .with_shape(&[]);
    let flat: Vec<&str> = graph
        .edges
        .iter()
        .flat_map(|(a, b)| [a.as_str(), b.as_str()])
        .collect();
    root.create_dataset("edges")
        .with_vlen_strings(&flat)
        .with_shape(&[graph.edges.len() as u64, 2]);
    let mut nodes = root.create_group("nodes");
    for (n, node) in &graph.nodes {
        let mut g = nodes.create_group(n);
        g.create_dataset("type")
            .with_vlen_strings(&[node.kind()])
            .with_shape(&[]);
        node_params(&mut g, n, node, graph.shapes.get(n))?;
        nodes.add_group(g.finish());
    }
    root.add_group(nodes.finish());
    fb.add_group(root.finish());
    let bytes = fb.finish().map_err(|e| NirError::Format {
        path: name.clone(),
        reason: format!("cannot be encoded: {e}"),
    })?;
    crate::output::write_atomic(path, &bytes).map_err(|e| NirError::Io {
        path: name,
        error: std::io::Error::other(e.to_string()),
    })
}

/// A node's parameters into its group `g` (`n` names it in errors).
fn node_params(
    g: &mut hdf5_pure::GroupBuilder,
    n: &str,
    node: &Node,
    shape: Option<&Vec<usize>>,
) -> Result<(), NirError> {
    let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    let mut put = |p: &str, v: &[f64], shape: Option<&[usize]>| {
        let d = g.create_dataset(p);
        d.with_f32_data(&f32s(v));
        if let Some(s) = shape {
            d.with_shape(&s.iter().map(|&x| x as u64).collect::<Vec<_>>());
        }
    };
    match node {
        Node::Input { shape } | Node::Output { shape } => {
            let s: Vec<i64> = shape.iter().map(|&x| x as i64).collect();
            g.create_dataset("shape").with_i64_data(&s);
        }
        Node::Affine { weight, bias } => {
            put("weight", &weight.data, Some(&weight.shape));
            put("bias", bias, None);
        }
        Node::Linear { weight } => put("weight", &weight.data, Some(&weight.shape)),
        Node::If { .. } | Node::Lif { .. } | Node::CubaLif { .. } | Node::Li { .. } => {
            for (p, v) in node.params() {
                // The stored shape, where it holds these values (else flat).
                let s = shape.filter(|s| s.iter().product::<usize>() == v.len());
                put(p, v, s.map(Vec::as_slice));
            }
        }
        Node::Conv2d {
            weight,
            bias,
            stride,
            padding,
            dilation,
            groups,
            input_shape,
            one_d: true,
        } => {
            // NIR's Conv1d: kernels (O, C/groups, k), scalar stride, padding, dilation, length.
            let k = [weight.shape[0], weight.shape[1], weight.shape[3]];
            put("weight", &weight.data, Some(&k));
            put("bias", bias, None);
            for (p, v) in [
                ("stride", stride[1]),
                ("padding", padding[1]),
                ("dilation", dilation[1]),
                ("input_shape", input_shape[1]),
                ("groups", *groups),
            ] {
                g.create_dataset(p)
                    .with_i64_data(&[v as i64])
                    .with_shape(&[]);
            }
        }
        Node::Conv2d {
            weight,
            bias,
            stride,
            padding,
            dilation,
            groups,
            input_shape,
            one_d: false,
        } => {
            put("weight", &weight.data, Some(&weight.shape));
            put("bias", bias, None);
            for (p, v) in [
                ("stride", stride),
                ("padding", padding),
                ("dilation", dilation),
                ("input_shape", input_shape),
            ] {
                g.create_dataset(p)
                    .with_i64_data(&[v[0] as i64, v[1] as i64]);
            }
            g.create_dataset("groups")
                .with_i64_data(&[*groups as i64])
                .with_shape(&[]);
        }
        Node::Pool2d {
            kernel,
            stride,
            padding,
            ..
        } => {
            for (p, v) in [
                ("kernel_size", kernel),
                ("stride", stride),
                ("padding", padding),
            ] {
                g.create_dataset(p)
                    .with_i64_data(&[v[0] as i64, v[1] as i64]);
            }
        }
        Node::Scale { scale } => put(
            "scale",
            scale,
            shape
                .filter(|s| s.iter().product::<usize>() == scale.len())
                .map(Vec::as_slice),
        ),
        Node::Flatten { dims } => {
            g.create_dataset("start_dim")
                .with_i64_data(&[dims[0]])
                .with_shape(&[]);
            g.create_dataset("end_dim")
                .with_i64_data(&[dims[1]])
                .with_shape(&[]);
        }
        Node::Other { kind } => {
            return Err(NirError::Graph(format!(
                "node '{n}' ({kind}): accord does not write this primitive"
            )));
        }
    }
    Ok(())
}

/// A NIR chain as a layered network: its weights, and per synaptic layer the neuron node it
/// feeds (`None`: straight into the output, a linear read-out).
#[derive(Clone, Debug)]
pub struct Chain {
    /// The network (activations: hard sigmoid for spiking neurons — the rate an
    /// integrate-and-fire neuron approximates — identity for a linear read-out).
    pub net: LayeredNet,
    /// Node names in order, input first.
    pub order: Vec<String>,
    /// Per synaptic layer, its synapse nodes (joined by `+` where several linear nodes
    /// compose into one layer) and the neuron node after it (if any).
    pub layers: Vec<(String, Option<String>)>,
    /// Layers made from structured or several nodes (a convolution, pooling, `Scale`, or a
    /// composition) and stored dense: layer name, structural zeros, synapses.
    pub expanded: Vec<(String, usize, usize)>,
    /// Per synaptic layer, the synapses that exist (row-major `(out, in)` like the weights)
    /// where structural zeros were expanded; `None` for a dense layer. A chip walks, counts
    /// and trains only these ([`crate::emulator::Hooks::masks`]).
    pub masks: Vec<Option<BitVec<usize, Lsb0>>>,
    /// Per synaptic layer made of one convolution or pooling node, its kernel: which weight of
    /// the kernel each of the mask's synapses is. A chip that declares `core.weight_sharing`
    /// stores it once per channel while the weights stay shared
    /// ([`crate::mapping#weight-sharing`]).
    pub kernels: Vec<Option<Kernel>>,
    /// Per synaptic layer, the projection of its neurons onto themselves, if the graph has
    /// one (a loop `neuron → Affine/Linear → neuron`): it carries the spikes of one step into
    /// the next ([`crate::emulator::Hooks::recurrent`]). Its bias is folded into the layer's.
    pub recurrent: Vec<Option<Recurrent>>,
}

/// A recurrent projection of a chain layer onto itself.
#[derive(Clone, Debug, PartialEq)]
pub struct Recurrent {
    /// The loop's synapse node.
    pub node: String,
    /// `(n, n)` row-major: `w[i * n + j]` from neuron `j` to neuron `i` of the layer.
    pub w: Vec<f64>,
}

impl Chain {
    /// The chain as a network [graph](crate::graph): a group per neuron layer, with its
    /// sparse layers' masks and its loops (what [`crate::mapping::map_graph`] places).
    ///
    /// # Errors
    /// A mask whose shape does not match its layer (not produced by [`Graph::to_layered`]).
    /// Its populations take the nodes' names and types from `graph` (the NIR graph the chain
    /// was made from): the input node's, then each layer's neuron node (`IF`, `LIF`,
    /// `CubaLIF`, `LI`; a read-out without one: its synapse nodes, a linear rate read-out).
    pub fn graph(&self, graph: &Graph) -> Result<crate::graph::Graph, crate::graph::GraphError> {
        use crate::graph::PopKind;
        let kinds: Vec<PopKind> = self
            .layers
            .iter()
            .map(
                |(_, neuron)| match neuron.as_ref().and_then(|n| graph.nodes.get(n)) {
                    None => PopKind::Graded(crate::rule::Activation::Identity),
                    Some(Node::If { .. }) => PopKind::If,
                    Some(Node::Lif { .. }) => PopKind::Lif,
                    Some(Node::CubaLif { .. }) => PopKind::CubaLif,
                    Some(Node::Li { .. }) => PopKind::Li,
                    Some(_) => PopKind::Neuron,
                },
            )
            .collect();
        let mut g = crate::graph::Graph::layered(
            &self.net.sizes(),
            &self.recurrent_layers(),
            self.masks.clone(),
        )?
        .with_models(&kinds);
        let names = self.order.first().cloned().into_iter().chain(
            self.layers
                .iter()
                .map(|(syn, neuron)| neuron.clone().unwrap_or(syn.clone())),
        );
        for (group, name) in g.groups.iter_mut().zip(names) {
            if let Some(p) = group.populations.first_mut() {
                p.name = name;
            }
        }
        // Projections by their synapse nodes: layer l's into group l + 1, its loop's onto it.
        for p in &mut g.projections {
            p.name = if p.from == p.to {
                p.to.checked_sub(1)
                    .and_then(|l| self.recurrent.get(l)?.as_ref())
                    .map_or_else(String::new, |r| r.node.clone())
            } else {
                self.layers
                    .get(p.from)
                    .map_or_else(String::new, |(syn, _)| syn.clone())
            };
        }
        g.with_kernels(&self.shared_kernels(&self.net))
    }

    /// Per synaptic layer with a [`Kernel`], whether the weights of `net` (this chain's net,
    /// or one trained from it) still hold one kernel per channel: `Err` names where its copies
    /// differ — trained synapse by synapse, or scaled per neuron (a NIR neuron's per-neuron
    /// `r` or time constants folded into its row).
    pub fn kernel_checks(
        &self,
        net: &LayeredNet,
    ) -> Vec<Option<Result<(), crate::graph::Unshared>>> {
        self.kernels
            .iter()
            .zip(&self.masks)
            .zip(&net.layers)
            .map(|((k, m), layer)| {
                let (k, m) = (k.as_ref()?, m.as_ref()?);
                Some(k.shared_by(&layer.w, layer.n_in, m))
            })
            .collect()
    }

    /// The kernels that `net`'s weights hold ([`Chain::kernel_checks`]); the others `None`.
    pub fn shared_kernels(&self, net: &LayeredNet) -> Vec<Option<Kernel>> {
        self.kernel_checks(net)
            .into_iter()
            .zip(&self.kernels)
            .map(|(ok, k)| match ok {
                Some(Ok(())) => k.clone(),
                _ => None,
            })
            .collect()
    }

    /// Per neuron layer, input first, whether it projects onto itself (what
    /// [`crate::mapping::map_net`] takes).
    pub fn recurrent_layers(&self) -> Vec<bool> {
        std::iter::once(false)
            .chain(self.recurrent.iter().map(Option::is_some))
            .collect()
    }

    /// Per synaptic layer, the weights of its loop (what [`crate::emulator::Hooks::recurrent`]
    /// takes).
    pub fn recurrent_weights(&self) -> Vec<Option<Vec<f64>>> {
        self.recurrent
            .iter()
            .map(|r| r.as_ref().map(|r| r.w.clone()))
            .collect()
    }

    /// Each layer's neuron node in discrete time at step `dt` (`None` for a read-out), from
    /// the graph the chain was made from.
    ///
    /// # Errors
    /// A node whose parameters have no discrete form at `dt` ([`Discrete::new`]).
    pub fn discrete(&self, graph: &Graph, dt: f64) -> Result<Vec<Option<Discrete>>, NirError> {
        if !(dt > 0.0 && dt.is_finite()) {
            return Err(NirError::Graph(format!(
                "the time step {dt:e} s is not a positive number"
            )));
        }
        self.layers
            .iter()
            .zip(&self.net.layers)
            .map(|((_, neuron), layer)| {
                let Some(n) = neuron else { return Ok(None) };
                let mut d = Discrete::new(n, &graph.nodes[n], dt)?;
                if let Some(d) = &mut d {
                    d.bias_into_voltage =
                        d.alpha_syn.is_some() && layer.b.iter().any(|&b| b != 0.0);
                }
                Ok(d)
            })
            .collect()
    }

    /// Fold the neurons' input factors and leaks into the weights and biases (threshold 1,
    /// reset 0: what accord's neurons take), under each layer's chip program (`None`: a run
    /// without a chip, the steady-state factors).
    pub fn apply(&mut self, discrete: &[Option<Discrete>], programs: &[Option<Program>]) {
        for (l, (layer, d)) in self.net.layers.iter_mut().zip(discrete).enumerate() {
            let Some(d) = d else { continue };
            let program = programs.get(l).and_then(Option::as_ref);
            let n_in = layer.n_in;
            let mut rec = self.recurrent.get_mut(l).and_then(Option::as_mut);
            for (i, (row, b)) in layer
                .w
                .chunks_mut(n_in.max(1))
                .zip(&mut layer.b)
                .enumerate()
            {
                let k = program.map_or(d.scale[i], |p| d.weight_scale(i, p));
                row.iter_mut().for_each(|w| *w *= k);
                // The loop's synapses feed the same neuron: the same factor.
                if let Some(r) = rec.as_mut() {
                    let n = layer.n_out;
                    r.w[i * n..(i + 1) * n].iter_mut().for_each(|w| *w *= k);
                }
                *b = d.scale[i] * *b + d.leak[i];
            }
        }
    }
}

/// A linear map `y = A x + b` with sparse rows: the form every synapse-like node takes, so
/// that the nodes between two neuron populations compose into one layer (ARCHITECTURE.md §13).
struct Lin {
    n_in: usize,
    /// Per output, `(input, weight)` of its structural non-zeros.
    rows: Vec<Vec<(u32, f64)>>,
    bias: Vec<f64>,
}

impl Lin {
    /// A dense `(out, in)` matrix.
    fn dense(weight: &Tensor, bias: Option<&[f64]>) -> Lin {
        let (out, n_in) = (weight.shape[0], weight.shape[1]);
        Lin {
            n_in,
            rows: weight
                .data
                .chunks_exact(n_in.max(1))
                .take(out)
                .map(|r| r.iter().enumerate().map(|(i, &w)| (i as u32, w)).collect())
                .collect(),
            bias: bias.map_or_else(|| vec![0.0; out], <[f64]>::to_vec),
        }
    }

    /// `next ∘ self`: `A₂(A₁x + b₁) + b₂`.
    fn then(self, next: Lin) -> Lin {
        let mut acc = vec![0.0; self.n_in];
        let mut touched = vec![false; self.n_in];
        let mut rows = Vec::with_capacity(next.rows.len());
        let mut bias = Vec::with_capacity(next.rows.len());
        for (row, b2) in next.rows.iter().zip(&next.bias) {
            let mut b = *b2;
            let mut idx: Vec<u32> = Vec::new();
            for &(k, a) in row {
                b += a * self.bias[k as usize];
                for &(i, w) in &self.rows[k as usize] {
                    if !touched[i as usize] {
                        touched[i as usize] = true;
                        idx.push(i);
                    }
                    acc[i as usize] += a * w;
                }
            }
            idx.sort_unstable();
            rows.push(
                idx.iter()
                    .map(|&i| {
                        touched[i as usize] = false;
                        (i, std::mem::take(&mut acc[i as usize]))
                    })
                    .collect(),
            );
            bias.push(b);
        }
        Lin {
            n_in: self.n_in,
            rows,
            bias,
        }
    }

    /// Structural non-zeros.
    fn nnz(&self) -> usize {
        self.rows.iter().map(Vec::len).sum()
    }

    /// The dense `(out, in)` weights, the bias and the structural non-zeros.
    fn into_dense(self) -> (Vec<f64>, Vec<f64>, BitVec<usize, Lsb0>) {
        let cells = self.rows.len() * self.n_in;
        let mut w = vec![0.0; cells];
        let mut mask = bitvec![usize, Lsb0; 0; cells];
        for (o, row) in self.rows.iter().enumerate() {
            for &(i, v) in row {
                w[o * self.n_in + i as usize] = v;
                mask.set(o * self.n_in + i as usize, true);
            }
        }
        (w, self.bias, mask)
    }
}

/// Output size of a sliding window along one axis (`None`: the window does not fit).
fn slide(n: usize, k: usize, stride: usize, pad: usize, dilation: usize) -> Option<usize> {
    let span = dilation.checked_mul(k.checked_sub(1)?)?.checked_add(1)?;
    let padded = n.checked_add(pad.checked_mul(2)?)?;
    (padded >= span && stride > 0).then(|| (padded - span) / stride + 1)
}

/// A convolution (`Conv2d`) or pooling (`Pool2d`) node over a `(C, H, W)` input as the sparse
/// map that computes it, and its output shape. Inputs and outputs are in `(C, H, W)` order, as
/// NIR flattens.
///
/// # Errors
/// The window does not fit the input, or the map would hold more than `limit` synapses.
fn windowed(
    node: &Node,
    c: usize,
    h: usize,
    w: usize,
    limit: usize,
) -> Result<(Lin, [usize; 3], Kernel), String> {
    // Per output channel: the kernel's input channels and their weights (ci, ky, kx).
    let (o, kernel, stride, padding, dilation, per_group, cg) = match node {
        Node::Conv2d {
            weight,
            stride,
            padding,
            dilation,
            groups,
            ..
        } => (
            weight.shape[0],
            [weight.shape[2], weight.shape[3]],
            *stride,
            *padding,
            *dilation,
            weight.shape[0] / groups,
            weight.shape[1],
        ),
        Node::Pool2d {
            kernel,
            stride,
            padding,
            ..
        } => (c, *kernel, *stride, *padding, [1, 1], 1, 1),
        _ => return Err("is not a windowed node".into()),
    };
    let (ho, wo) = slide(h, kernel[0], stride[0], padding[0], dilation[0])
        .zip(slide(w, kernel[1], stride[1], padding[1], dilation[1]))
        .ok_or_else(|| format!("has a window that does not fit its {h}×{w} input"))?;
    // Bound the synapses before building anything (a damaged file can claim any window).
    if elements(&[o, ho, wo, cg, kernel[0], kernel[1]]).is_none_or(|n| n > limit) {
        return Err("is over the memory limit".into());
    }
    let weight = |oc: usize, ci: usize, ky: usize, kx: usize| match node {
        Node::Conv2d { weight, .. } => {
            weight.data[((oc * cg + ci) * kernel[0] + ky) * kernel[1] + kx]
        }
        Node::Pool2d { average: true, .. } => 1.0 / (kernel[0] * kernel[1]) as f64,
        _ => 1.0,
    };
    let bias = match node {
        Node::Conv2d { bias, .. } => bias.clone(),
        _ => vec![0.0; o],
    };
    let mut rows = Vec::with_capacity(o * ho * wo);
    let mut b = Vec::with_capacity(rows.capacity());
    // Each synapse's tap in its channel's kernel: (ci, ky, kx) row-major.
    let mut taps: Vec<u32> = Vec::new();
    let mut row3: Vec<(u32, f64, u32)> = Vec::new();
    for (oc, &bo) in bias.iter().enumerate() {
        // A pooled channel reads its own channel; a convolution its group's channels.
        let first = if matches!(node, Node::Pool2d { .. }) {
            oc
        } else {
            oc / per_group * cg
        };
        for y in 0..ho {
            for x in 0..wo {
                row3.clear();
                for ci in 0..cg {
                    for ky in 0..kernel[0] {
                        let iy = (y * stride[0] + ky * dilation[0]).checked_sub(padding[0]);
                        for kx in 0..kernel[1] {
                            let ix = (x * stride[1] + kx * dilation[1]).checked_sub(padding[1]);
                            if let (Some(iy), Some(ix)) = (iy, ix)
                                && iy < h
                                && ix < w
                            {
                                let col = ((first + ci) * h + iy) * w + ix;
                                let tap = (ci * kernel[0] + ky) * kernel[1] + kx;
                                row3.push((col as u32, weight(oc, ci, ky, kx), tap as u32));
                            }
                        }
                    }
                }
                row3.sort_unstable_by_key(|e| e.0);
                rows.push(row3.iter().map(|&(c, v, _)| (c, v)).collect::<Vec<_>>());
                taps.extend(row3.iter().map(|e| e.2));
                b.push(bo);
            }
        }
    }
    Ok((
        Lin {
            n_in: c * h * w,
            rows,
            bias: b,
        },
        [o, ho, wo],
        Kernel {
            positions: ho * wo,
            taps: cg * kernel[0] * kernel[1],
            tap: taps,
        },
    ))
}

/// Elements of a shape (`None` on overflow).
fn elements(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |a, &x| a.checked_mul(x))
}

/// A chain's layers as they are read ([`Graph::to_layered`]): widths, names (synapse nodes and
/// neuron node), weights, activations, expanded layers, masks, and the synapse-like nodes
/// since the last neuron node, composed.
#[derive(Default)]
struct ChainBuilder {
    sizes: Vec<usize>,
    layers: Vec<(String, Option<String>)>,
    weights: Vec<(Vec<f64>, Vec<f64>)>,
    acts: Vec<Activation>,
    expanded: Vec<(String, usize, usize)>,
    masks: Vec<Option<BitVec<usize, Lsb0>>>,
    kernels: Vec<Option<Kernel>>,
    /// The layer being composed: its map, node names, whether structured, and the kernel of
    /// its one windowed node (none once composed with another node).
    pending: Option<(Lin, Vec<String>, bool, Option<Kernel>)>,
    /// Most cells a dense layer may take (the memory limit).
    cells_limit: usize,
}

impl ChainBuilder {
    /// End the pending layer at `neuron` (`None`: the output). Whether there was one.
    fn close(&mut self, neuron: Option<String>) -> bool {
        let Some((lin, names, structured, kernel)) = self.pending.take() else {
            return false;
        };
        let name = names.join("+");
        let cells = lin.rows.len() * lin.n_in;
        let zeros = cells - lin.nnz();
        self.sizes.push(lin.rows.len());
        let (w, b, mask) = lin.into_dense();
        self.weights.push((w, b));
        if structured || names.len() > 1 {
            self.expanded.push((name.clone(), zeros, cells));
        }
        self.kernels
            .push(kernel.filter(|_| zeros > 0 && names.len() == 1));
        self.masks.push((zeros > 0).then_some(mask));
        self.layers.push((name, neuron));
        true
    }

    /// Neuron node `n` receiving `width` values: it ends the pending layer.
    fn neuron(&mut self, graph: &Graph, n: &String, width: usize) -> Result<(), NirError> {
        let err = |n: &String, why: String| graph.node_err(n, why);
        if self.pending.is_none() {
            return Err(err(
                n,
                "does not follow a synapse node (Affine, Linear, Conv1d, Conv2d, pooling or Scale)"
                    .into(),
            ));
        }
        let k = graph.nodes[n].neurons().unwrap_or(0);
        if k != width {
            return Err(err(
                n,
                format!("has {k} neurons but receives {width} inputs"),
            ));
        }
        self.close(Some(n.clone()));
        if let Node::Li { r, v_leak, .. } = &graph.nodes[n] {
            // A leaky integrator settles at v_leak + r·I: a linear read-out.
            if let Some((w, b)) = self.weights.last_mut() {
                let n_in = w.len() / r.len().max(1);
                for (i, (row, bi)) in w.chunks_mut(n_in.max(1)).zip(b).enumerate() {
                    row.iter_mut().for_each(|x| *x *= r[i]);
                    *bi = r[i] * *bi + v_leak[i];
                }
            }
            self.acts.push(Activation::Identity);
        } else {
            self.acts.push(Activation::HardSigmoid);
        }
        Ok(())
    }

    /// Synapse-like node `n`'s map composed onto the pending layer, checked against the
    /// memory limit.
    fn synapse(
        &mut self,
        graph: &Graph,
        n: &String,
        lin: Lin,
        structured: bool,
        kernel: Option<Kernel>,
    ) -> Result<(), NirError> {
        let err = |n: &String, why: String| graph.node_err(n, why);
        // The layer is stored dense: `out × in` cells must fit the memory limit.
        if lin
            .rows
            .len()
            .checked_mul(lin.n_in)
            .is_none_or(|c| c > self.cells_limit)
        {
            return Err(err(
                n,
                format!(
                    "makes a {}×{} layer, over the memory limit",
                    lin.rows.len(),
                    lin.n_in
                ),
            ));
        }
        self.pending = Some(match self.pending.take() {
            None => (lin, vec![n.clone()], structured, kernel),
            Some((prev, mut names, s, _)) => {
                if prev
                    .n_in
                    .checked_mul(lin.rows.len())
                    .is_none_or(|c| c > self.cells_limit)
                {
                    return Err(err(
                        n,
                        format!(
                            "composed with {} makes a {}×{} layer, over the memory limit",
                            names.join("+"),
                            lin.rows.len(),
                            prev.n_in
                        ),
                    ));
                }
                names.push(n.clone());
                (prev.then(lin), names, s || structured, None)
            }
        });
        Ok(())
    }

    /// The chain: its layered net, checked against the output node.
    fn finish(mut self, graph: &Graph, order: Vec<String>) -> Result<Chain, NirError> {
        if self.close(None) {
            self.acts.push(Activation::Identity);
        }
        let ChainBuilder {
            sizes,
            layers,
            weights,
            acts,
            expanded,
            masks,
            kernels,
            ..
        } = self;
        let node = |n: &String| &graph.nodes[n];
        if layers.is_empty() {
            return Err(NirError::Graph("the chain has no synapse node".into()));
        }
        if let Some((_, Some(li))) = layers[..layers.len() - 1]
            .iter()
            .find(|(_, n)| n.as_ref().is_some_and(|n| node(n).kind() == "LI"))
        {
            return Err(NirError::Graph(format!(
                "node '{li}' (LI) is a hidden layer: a leaky integrator does not spike, so accord takes it only as the read-out"
            )));
        }
        let out = *sizes.last().unwrap_or(&0);
        if let Node::Output { shape } = node(&order[order.len() - 1])
            && elements(shape) != Some(out)
        {
            return Err(NirError::Graph(format!(
                "the output '{}' has shape {shape:?} but receives {out} values",
                order[order.len() - 1]
            )));
        }
        let net = LayeredNet {
            layers: weights
                .into_iter()
                .zip(sizes.windows(2))
                .zip(&acts)
                .map(|(((w, b), s), &act)| Layer {
                    n_in: s[0],
                    n_out: s[1],
                    w,
                    b,
                    act,
                    balance: Balance::Exact,
                })
                .collect(),
        };
        Ok(Chain {
            recurrent: vec![None; layers.len()],
            net,
            order,
            layers,
            expanded,
            masks,
            kernels,
        })
    }
}

impl Graph {
    /// Nodes in chain order from the input to the output.
    ///
    /// # Errors
    /// No single input or output, a node with more than one successor or predecessor (a
    /// branch or a recurrent loop), or nodes off the chain — each named.
    pub fn chain_order(&self) -> Result<Vec<String>, NirError> {
        let mut seen_edges = std::collections::BTreeSet::new();
        if let Some((a, b)) = self.edges.iter().find(|e| !seen_edges.insert(*e)) {
            return Err(NirError::Graph(format!(
                "the edge {a} → {b} is listed twice"
            )));
        }
        // A layer's loop onto itself is not on the chain: walk the other edges.
        let loops: std::collections::BTreeSet<String> = self.loops().into_values().collect();
        let edges: Vec<&(String, String)> = self
            .edges
            .iter()
            .filter(|(a, b)| !loops.contains(a) && !loops.contains(b))
            .collect();
        let of = |k: &str| -> Vec<&String> {
            self.nodes
                .iter()
                .filter(|(_, n)| n.kind() == k)
                .map(|(name, _)| name)
                .collect()
        };
        let (inputs, outputs) = (of("Input"), of("Output"));
        if inputs.len() != 1 || outputs.len() != 1 {
            return Err(NirError::Graph(format!(
                "accord takes graphs with one Input and one Output node; this one has {} and {}",
                inputs.len(),
                outputs.len()
            )));
        }
        // A node as errors name it: `'name' (Type)`.
        let named = |n: &str| {
            format!(
                "'{n}' ({})",
                self.nodes.get(n).map_or("not a node", Node::kind)
            )
        };
        let mut order = vec![inputs[0].clone()];
        let mut seen = std::collections::BTreeSet::from([inputs[0].clone()]);
        loop {
            let at = order.last().cloned().unwrap_or_default();
            let next: Vec<&String> = edges
                .iter()
                .filter(|(a, _)| *a == at)
                .map(|(_, b)| b)
                .collect();
            match next.as_slice() {
                [] => break,
                [b] => {
                    if !seen.insert((*b).clone()) {
                        return Err(NirError::Graph(format!(
                            "the edge {} → {} closes a cycle: accord takes a loop only as one Affine or Linear node from a neuron node back onto it",
                            named(&at),
                            named(b)
                        )));
                    }
                    let from: Vec<String> = edges
                        .iter()
                        .filter(|(_, t)| t == *b)
                        .map(|(a, _)| named(a))
                        .collect();
                    if from.len() > 1 {
                        return Err(NirError::Graph(format!(
                            "node {} has {} incoming edges (from {}): merging graphs (or more than one loop onto a node) are not taken yet (only chains, with one Affine or Linear loop per neuron node)",
                            named(b),
                            from.len(),
                            from.join(", ")
                        )));
                    }
                    order.push((*b).clone());
                }
                many => {
                    return Err(NirError::Graph(format!(
                        "node {} branches to {}: only feed-forward chains are taken yet",
                        named(&at),
                        many.iter().map(|s| named(s)).collect::<Vec<_>>().join(", ")
                    )));
                }
            }
        }
        if order.last() != Some(outputs[0]) {
            return Err(NirError::Graph(format!(
                "the chain from {} ends at {}, not at the output {}",
                named(inputs[0]),
                named(order.last().map_or("", String::as_str)),
                named(outputs[0])
            )));
        }
        if let Some(off) = self
            .nodes
            .keys()
            .find(|k| !seen.contains(*k) && !loops.contains(*k))
        {
            return Err(NirError::Graph(format!(
                "node {} is not on the chain from the input to the output (an orphan, or on a branch)",
                named(off)
            )));
        }
        Ok(order)
    }

    /// The recurrent loops of the graph: neuron node → the node that takes only its output
    /// and feeds only back into it (`lif → w_rec → lif`, as snnTorch's `RLeaky` exports).
    pub fn loops(&self) -> BTreeMap<String, String> {
        // Per node, its predecessors and successors, in one pass over the edges.
        let mut ends: BTreeMap<&str, (Vec<&str>, Vec<&str>)> = BTreeMap::new();
        for (a, b) in &self.edges {
            ends.entry(a).or_default().1.push(b);
            ends.entry(b).or_default().0.push(a);
        }
        let mut out = BTreeMap::new();
        for (r, (ins, outs)) in &ends {
            if let ([a], [b]) = (ins.as_slice(), outs.as_slice())
                && a == b
                && a != r
                && self.nodes.contains_key(*r)
                && self.nodes.get(*a).is_some_and(|n| n.neurons().is_some())
            {
                out.entry((*a).to_string()).or_insert_with(|| r.to_string());
            }
        }
        out
    }

    /// The chain as a layered network. Between two neuron nodes (or the input and the first,
    /// or the last and the output) every synapse-like node — `Affine`, `Linear`, `Conv2d`,
    /// `SumPool2d`, `AvgPool2d`, `Scale`, `Flatten` — composes into one layer: a pooling
    /// after a spiking layer folds into the weights of the projection that follows it, exactly
    /// (a sum of spikes times a weight is the weight times the sum).
    ///
    /// # Errors
    /// Not a chain ([`Graph::chain_order`]), a node accord does not take (named with its type),
    /// two neuron nodes in a row, widths or shapes that do not meet, or a layer over the
    /// memory limit.
    pub fn to_layered(&self) -> Result<Chain, NirError> {
        let order = self.chain_order()?;
        let mut shape = match &self.nodes[&order[0]] {
            Node::Input { shape } => shape.clone(),
            _ => Vec::new(),
        };
        let width0 = elements(&shape)
            .ok_or_else(|| NirError::Graph(format!("the input shape {shape:?} overflows")))?;
        let mut chain = ChainBuilder {
            sizes: vec![width0],
            cells_limit: crate::limits::max_memory() as usize / 16,
            ..ChainBuilder::default()
        };
        for n in &order[1..order.len() - 1] {
            let node = &self.nodes[n];
            if node.neurons().is_some() {
                chain.neuron(self, n, elements(&shape).unwrap_or(0))?;
            } else if let Some((lin, structured, kernel)) = self.synapse(n, &mut shape)? {
                chain.synapse(self, n, lin, structured, kernel)?;
            }
        }
        let mut chain = chain.finish(self, order)?;
        self.add_loops(&mut chain)?;
        Ok(chain)
    }

    /// Attach each neuron node's loop ([`Graph::loops`]) to its layer of `chain`: its weights
    /// as the layer's [`Recurrent`] projection, its bias added to the layer's.
    ///
    /// # Errors
    /// A loop through a node other than `Affine` or `Linear`, or of the wrong shape.
    fn add_loops(&self, chain: &mut Chain) -> Result<(), NirError> {
        for (neuron, r) in self.loops() {
            let Some(l) = chain
                .layers
                .iter()
                .position(|(_, n)| n.as_deref() == Some(neuron.as_str()))
            else {
                return Err(self.node_err(
                    &r,
                    format!("closes a loop on '{neuron}', which is not on the chain from the input to the output"),
                ));
            };
            let layer = &mut chain.net.layers[l];
            let n = layer.n_out;
            if layer.act == Activation::Identity {
                return Err(self.node_err(
                    &r,
                    format!(
                        "closes a loop on '{neuron}', a linear read-out that does not spike: accord takes loops on spiking neurons"
                    ),
                ));
            }
            let (weight, bias) = match &self.nodes[&r] {
                Node::Affine { weight, bias } => (weight, Some(bias)),
                Node::Linear { weight } => (weight, None),
                _ => {
                    return Err(self.node_err(
                        &r,
                        format!(
                            "closes a loop on '{neuron}': accord takes recurrent Affine and Linear nodes"
                        ),
                    ));
                }
            };
            if weight.shape != [n, n] || bias.is_some_and(|b| b.len() != n) {
                return Err(self.node_err(
                    &r,
                    format!(
                        "closes a loop on '{neuron}' ({n} neurons) but has weight shape {:?}{}",
                        weight.shape,
                        bias.map_or(String::new(), |b| format!(" and {} biases", b.len()))
                    ),
                ));
            }
            if let Some(b) = bias {
                layer.b.iter_mut().zip(b).for_each(|(x, y)| *x += y);
            }
            chain.recurrent[l] = Some(Recurrent {
                node: r,
                w: weight.data.clone(),
            });
        }
        Ok(())
    }

    /// A node's error: `node 'n' (Type) why`.
    fn node_err(&self, n: &str, why: String) -> NirError {
        NirError::Graph(format!("node '{n}' ({}) {why}", self.nodes[n].kind()))
    }

    /// Synapse-like node `n` receiving `shape` as the sparse map it computes (and whether it
    /// is structured: expanded from a window or a scale), `shape` moved on to its output;
    /// `None` for a `Flatten`.
    ///
    /// # Errors
    /// Widths or shapes that do not meet, a node accord does not take.
    #[allow(clippy::type_complexity)]
    fn synapse(
        &self,
        n: &String,
        shape: &mut Vec<usize>,
    ) -> Result<Option<(Lin, bool, Option<Kernel>)>, NirError> {
        let node = |n: &String| &self.nodes[n];
        let err = |n: &String, why: String| self.node_err(n, why);
        let width = elements(shape).unwrap_or(0);
        let cells_limit = crate::limits::max_memory() as usize / 16;
        let shape_now = shape.clone();
        Ok(match node(n) {
            Node::Affine { weight, .. } | Node::Linear { weight } => {
                let (out, inp) = (weight.shape[0], weight.shape[1]);
                if out == 0 {
                    return Err(err(n, "has no outputs".into()));
                }
                if inp != width {
                    return Err(err(n, format!("takes {inp} inputs but receives {width}")));
                }
                *shape = vec![out];
                let bias = match node(n) {
                    Node::Affine { bias, .. } => Some(bias.as_slice()),
                    _ => None,
                };
                Some((Lin::dense(weight, bias), false, None))
            }
            windowed_node @ (Node::Conv2d { .. } | Node::Pool2d { .. }) => {
                let (c, h, w) = match (windowed_node, shape_now.as_slice()) {
                    (
                        Node::Conv2d {
                            weight,
                            groups,
                            input_shape,
                            ..
                        },
                        _,
                    ) => (
                        weight.shape[1].saturating_mul(*groups),
                        input_shape[0],
                        input_shape[1],
                    ),
                    (_, [c, h, w]) => (*c, *h, *w),
                    (_, [h, w]) => (1, *h, *w),
                    _ => {
                        return Err(err(
                            n,
                            format!(
                                "needs a (C, H, W) input but receives shape {shape_now:?} (pool before a Flatten)"
                            ),
                        ));
                    }
                };
                if let [a, b, d] = shape_now.as_slice()
                    && [*a, *b, *d] != [c, h, w]
                {
                    return Err(err(
                        n,
                        format!("takes a {c}×{h}×{w} input but receives shape {shape_now:?}"),
                    ));
                }
                if elements(&[c, h, w]) != Some(width) {
                    return Err(err(
                        n,
                        format!("takes {c}×{h}×{w} inputs but receives {width}"),
                    ));
                }
                let (lin, out, kernel) =
                    windowed(windowed_node, c, h, w, cells_limit).map_err(|why| err(n, why))?;
                *shape = match windowed_node {
                    // A Conv1d's output is (O, L_out), as NIR shapes it.
                    Node::Conv2d { one_d: true, .. } => vec![out[0], out[2]],
                    _ => out.to_vec(),
                };
                Some((lin, true, Some(kernel)))
            }
            Node::Scale { scale } => {
                if scale.len() != width {
                    return Err(err(
                        n,
                        format!("has {} factors but receives {width} values", scale.len()),
                    ));
                }
                let rows = scale.iter().enumerate().map(|(i, &s)| vec![(i as u32, s)]);
                Some((
                    Lin {
                        n_in: width,
                        rows: rows.collect(),
                        bias: vec![0.0; width],
                    },
                    true,
                    None,
                ))
            }
            Node::Flatten { .. } => {
                *shape = vec![width];
                None
            }
            _ => {
                return Err(err(
                        n,
                        "is a primitive accord does not take yet (it takes Affine, Linear, Conv1d, Conv2d, SumPool2d, AvgPool2d, Scale, Flatten, IF, LIF, CubaLIF and LI in a chain)".into(),
                    ));
            }
        })
    }

    /// A layered net as a NIR chain: `Affine` per synaptic layer, an integrate-and-fire node
    /// (`r = 1/dt`, threshold 1, reset 0: stepped at `dt`, one step adds the layer's input to
    /// the voltage — the neuron whose rate approximates the hard sigmoid) after every hidden
    /// layer, and a linear read-out into the output.
    ///
    /// # Errors
    /// An activation without an integrate-and-fire counterpart (only the hard sigmoid, which
    /// accord's spiking mode runs as IF neurons, is written; a read-out may be linear).
    pub fn from_layered(net: &LayeredNet, dt: f64) -> Result<Graph, NirError> {
        let mut nodes = BTreeMap::new();
        let mut edges = Vec::new();
        let sizes = net.sizes();
        nodes.insert(
            "input".to_string(),
            Node::Input {
                shape: vec![sizes[0]],
            },
        );
        let mut prev = "input".to_string();
        let m = net.layers.len();
        for (l, layer) in net.layers.iter().enumerate() {
            let fc = format!("fc{}", l + 1);
            nodes.insert(
                fc.clone(),
                Node::Affine {
                    weight: Tensor {
                        shape: vec![layer.n_out, layer.n_in],
                        data: layer.w.clone(),
                    },
                    bias: layer.b.clone(),
                },
            );
            edges.push((prev, fc.clone()));
            prev = fc;
            let last = l + 1 == m;
            match layer.act {
                Activation::Identity if last => {}
                Activation::HardSigmoid => {
                    let name = format!("if{}", l + 1);
                    let n = layer.n_out;
                    nodes.insert(
                        name.clone(),
                        Node::If {
                            r: vec![1.0 / dt; n],
                            v_threshold: vec![1.0; n],
                            v_reset: vec![0.0; n],
                        },
                    );
                    edges.push((prev, name.clone()));
                    prev = name;
                }
                other => {
                    return Err(NirError::Graph(format!(
                        "layer {} has {other:?} neurons, which NIR has no primitive for (train with the hard-sigmoid activation to export)",
                        l + 1
                    )));
                }
            }
        }
        nodes.insert(
            "output".to_string(),
            Node::Output {
                shape: vec![sizes[m]],
            },
        );
        edges.push((prev, "output".to_string()));
        Ok(Graph {
            version: VERSION.into(),
            nodes,
            edges,
            shapes: BTreeMap::new(),
        })
    }
}
