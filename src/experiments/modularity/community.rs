//! Community detection on weight matrices: Newman modularity and the Louvain method.
//!
//! The question this module answers: in a trained network with weight matrix `W`, do
//! connections concentrate *within* modules (a block-diagonal `W` once nodes are
//! reordered) or *across* them?
//!
//! # Graph and symmetrisation
//!
//! `W` is row-major `n × n` with `w[i * n + j]` the weight from neuron `j` to neuron `i`.
//! Modularity is defined for undirected graphs with non-negative weights, so
//! [`WeightedGraph::from_abs_weights`] builds the symmetric matrix
//!
//! ```text
//! A_ij = (|w_ij| + |w_ji|) / 2
//! ```
//!
//! Excitatory and inhibitory connections therefore both count as coupling strength.
//!
//! **Self-loops.** The diagonal becomes `A_ii = |w_ii|`, and every sum below runs over the
//! *matrix* `A`, diagonal included: the weighted degree is `k_i = Σ_j A_ij` and
//! `2m = Σ_ij A_ij`. So every directed entry of `W` (diagonal too) adds its magnitude
//! exactly once to `2m`, and `2m = Σ_ij |w_ij|`. This is Newman's convention: there, an
//! undirected self-loop of edge weight `s` is stored as `A_ii = 2s`, so here `|w_ii|` acts as
//! a self-loop of edge weight `|w_ii| / 2`. A self-loop always counts as "inside" its node's
//! community: it raises `Q` for every partition and makes nodes look more self-contained.
//! To ignore autapses, set the diagonal of `W` to zero before building the graph.
//!
//! # Modularity
//!
//! For a partition `c`, Newman's modularity is
//!
//! ```text
//! Q = (1 / 2m) Σ_ij [ A_ij − γ k_i k_j / 2m ] δ(c_i, c_j)
//!   = Σ_c [ Σ_in(c) / 2m − γ (Σ_tot(c) / 2m)² ]
//! ```
//!
//! Here `Σ_in(c) = Σ_{i,j ∈ c} A_ij` (each internal edge counted in both directions, plus
//! the self-loops) and `Σ_tot(c) = Σ_{i ∈ c} k_i`. Standard modularity has resolution
//! `γ = 1` ([`modularity`]); [`modularity_with_resolution`] takes any `γ ≥ 0`. `Q` always
//! lies in `[−1/2, 1]`; putting every node in one community gives `Q = 0` when `γ = 1`. For
//! a graph with no weight (`2m = 0`) `Q` is defined as `0` for every partition.
//!
//! # Louvain method
//!
//! [`louvain`] / [`louvain_with`] maximise `Q` greedily (Blondel et al., 2008):
//!
//! 1. **Local moving.** Start with every node in its own community. Visit the nodes in
//!    order. Take each node `i` out of its community and try every community `C` that has
//!    a neighbour of `i`, plus an empty community. The gain of inserting `i` into `C` is
//!    `k_{i,C} − γ Σ_tot(C) k_i / 2m`, where `ΔQ = gain / m`. Move `i` only if the best gain
//!    beats the gain of going back to its old community by more than `tolerance · m`, i.e.
//!    `Q` rises by more than `tolerance`. Equal gains go to the lowest community id. Repeat
//!    whole sweeps until a sweep moves no node.
//! 2. **Aggregation.** Merge each community into one node. Edge weights between
//!    communities are summed, and a community's internal weight `Σ_in` becomes the new
//!    node's self-loop. This keeps `Q` of every coarser partition unchanged.
//! 3. Repeat 1–2 on the aggregated graph until local moving changes nothing.
//!
//! **Refinement** ([`LouvainOptions::refine`], on by default). Classic Louvain can stop
//! at a partition where moving a single *original* node would still raise `Q`, because the
//! later levels only move whole communities. With refinement, the 1–3 cycle restarts on the
//! original graph, starting from the partition just found, until local moving on the
//! original nodes changes nothing. Every move raises `Q` by more than `tolerance`, so this
//! can only help, and it always terminates. The result is a local optimum for single-node
//! moves (new singleton communities included), up to `tolerance`.
//!
//! **Determinism.** No hashing, threads or global RNG is involved. Node visiting orders
//! are either `0..n` ([`LouvainOptions::shuffle`] `= false`) or a Fisher–Yates shuffle driven
//! by a `SplitMix64` generator seeded from `seed`. `SplitMix64` is portable, so the same seed on
//! any platform gives the same sequence. The same graph, options and seed therefore always
//! give identical labels. Labels are renumbered `0..k` in order of first appearance over
//! nodes `0..n`.
//!
//! **Degenerate graphs.** An empty graph (`n = 0`) gives an empty partition. A graph with
//! no weight at all (`2m = 0`, e.g. an all-zero `W`) gives every node its own community
//! and `Q = 0`. In a graph with some weight, isolated nodes (`k_i = 0`) stay singletons:
//! moving them never changes `Q`.
//!
//! # Block structure
//!
//! [`block_shares`] splits `Σ_{i≠j} |w_ij|` over the directed off-diagonal entries of `W`
//! into a within-community share and an across-community share. It also reports
//! `within_pair_fraction`, the within share that weights spread evenly over all pairs would
//! give, as a chance baseline. [`reorder`] returns a node permutation that groups
//! communities together, for drawing `W` as a block matrix. [`normalized_mutual_information`]
//! compares two partitions (e.g. across learning rates).
//!
//! # Example
//!
//! ```rust
//! use accord::experiments::modularity::community::{
//!     block_shares, louvain, modularity, reorder, CommunityError, WeightedGraph,
//! };
//!
//! // Two triangles {0,1,2} and {3,4,5} joined by the edge 2–3.
//! let n = 6;
//! let mut w = vec![0.0; n * n];
//! for &(i, j) in &[(0, 1), (0, 2), (1, 2), (2, 3), (3, 4), (3, 5), (4, 5)] {
//!     w[i * n + j] = 1.0;
//!     w[j * n + i] = -1.0; // sign is ignored: |w| is used
//! }
//! let graph = WeightedGraph::from_abs_weights(&w, n)?;
//!
//! let q = modularity(&graph, &[0, 0, 0, 1, 1, 1]);
//! assert!((q - 5.0 / 14.0).abs() < 1e-12);
//!
//! let part = louvain(&graph, 7);
//! assert_eq!(part.labels, vec![0, 0, 0, 1, 1, 1]);
//! assert_eq!(part.num_communities, 2);
//! assert!((part.modularity - 5.0 / 14.0).abs() < 1e-12);
//!
//! let shares = block_shares(&w, n, &part.labels)?;
//! assert!((shares.within - 12.0 / 14.0).abs() < 1e-12);
//! assert!((shares.across - 2.0 / 14.0).abs() < 1e-12);
//!
//! let perm = reorder(&part.labels); // draw W'[a][b] = W[perm[a]][perm[b]]
//! assert_eq!(perm, vec![0, 1, 2, 3, 4, 5]);
//! # Ok::<(), CommunityError>(())
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// Errors from building a graph or computing block shares.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum CommunityError {
    /// The weight slice does not have `n * n` entries (or `n * n` overflows `usize`).
    DimensionMismatch {
        /// The node count given.
        n: usize,
        /// The length of the weight slice.
        len: usize,
    },
    /// A weight is NaN or infinite.
    NonFiniteWeight {
        /// Row (target neuron) of the first non-finite entry, in row-major order.
        row: usize,
        /// Column (source neuron) of that entry.
        col: usize,
        /// The offending value.
        value: f64,
    },
    /// The weights are finite but their sums overflow `f64`.
    WeightOverflow,
    /// A partition's length differs from the node count.
    PartitionLength {
        /// The node count.
        expected: usize,
        /// The partition length.
        found: usize,
    },
}

impl fmt::Display for CommunityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DimensionMismatch { n, len } => {
                write!(f, "weight matrix has {len} entries, expected {n}×{n}")
            }
            Self::NonFiniteWeight { row, col, value } => {
                write!(f, "non-finite weight {value} at row {row}, column {col}")
            }
            Self::WeightOverflow => write!(f, "sum of absolute weights overflows f64"),
            Self::PartitionLength { expected, found } => {
                write!(f, "partition has {found} labels, expected {expected}")
            }
        }
    }
}

impl std::error::Error for CommunityError {}

fn check_matrix(w: &[f64], n: usize) -> Result<(), CommunityError> {
    if n.checked_mul(n) != Some(w.len()) {
        return Err(CommunityError::DimensionMismatch { n, len: w.len() });
    }
    if let Some(idx) = w.iter().position(|x| !x.is_finite()) {
        return Err(CommunityError::NonFiniteWeight {
            row: idx / n,
            col: idx % n,
            value: w[idx],
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Graph
// ---------------------------------------------------------------------------------------

/// An undirected graph with non-negative weights, stored as compressed sparse rows.
///
/// Each row lists the neighbours `j ≠ i` with `A_ij > 0` in ascending order. Self-loops
/// `A_ii` are kept separately. The weighted degrees `k_i = Σ_j A_ij` (self-loop included)
/// and `2m = Σ_i k_i` are precomputed. See the [module docs](self) for the conventions.
/// Memory is `O(n + nnz)`: about 16 bytes per nonzero off-diagonal entry, 64 MB for a
/// fully dense graph with `n = 2000`.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightedGraph {
    n: usize,
    offsets: Vec<usize>,
    targets: Vec<usize>,
    weights: Vec<f64>,
    self_loops: Vec<f64>,
    degrees: Vec<f64>,
    two_m: f64,
}

impl WeightedGraph {
    /// Builds `A_ij = (|w_ij| + |w_ji|) / 2` from a row-major `n × n` matrix `w`, where
    /// `w[i * n + j]` is the weight from `j` to `i`. The diagonal gives the self-loops
    /// `A_ii = |w_ii|`.
    ///
    /// # Errors
    ///
    /// [`CommunityError::DimensionMismatch`] if `w.len() != n * n`.
    /// [`CommunityError::NonFiniteWeight`] for the first NaN or infinite entry (row-major).
    /// [`CommunityError::WeightOverflow`] if the degree sums overflow.
    pub fn from_abs_weights(w: &[f64], n: usize) -> Result<Self, CommunityError> {
        check_matrix(w, n)?;
        let mut offsets = Vec::with_capacity(n + 1);
        offsets.push(0);
        let mut targets = Vec::new();
        let mut weights = Vec::new();
        let mut self_loops = Vec::with_capacity(n);
        for i in 0..n {
            self_loops.push(w[i * n + i].abs());
            for j in 0..n {
                if j == i {
                    continue;
                }
                // 0.5·x + 0.5·y (not (x + y)/2) cannot overflow; it is symmetric in i, j.
                let a = 0.5 * w[i * n + j].abs() + 0.5 * w[j * n + i].abs();
                if a != 0.0 {
                    targets.push(j);
                    weights.push(a);
                }
            }
            offsets.push(targets.len());
        }
        let graph = Self::from_parts(n, offsets, targets, weights, self_loops);
        if !graph.two_m.is_finite() {
            return Err(CommunityError::WeightOverflow);
        }
        Ok(graph)
    }

    /// Computes degrees and `2m` from the CSR rows and self-loops.
    fn from_parts(
        n: usize,
        offsets: Vec<usize>,
        targets: Vec<usize>,
        weights: Vec<f64>,
        self_loops: Vec<f64>,
    ) -> Self {
        let degrees: Vec<f64> = (0..n)
            .map(|i| {
                self_loops[i]
                    + weights[offsets[i]..offsets[i + 1]]
                        .iter()
                        .copied()
                        .sum::<f64>()
            })
            .collect();
        let two_m = degrees.iter().sum();
        Self {
            n,
            offsets,
            targets,
            weights,
            self_loops,
            degrees,
            two_m,
        }
    }

    /// Number of nodes `n`.
    #[must_use]
    pub fn num_nodes(&self) -> usize {
        self.n
    }

    /// Weighted degree `k_i = Σ_j A_ij`, self-loop `A_ii` included.
    ///
    /// # Panics
    ///
    /// If `i >= n`.
    #[must_use]
    pub fn degree(&self, i: usize) -> f64 {
        self.degrees[i]
    }

    /// `2m = Σ_ij A_ij`, which equals `Σ_ij |w_ij|` of the source matrix (up to rounding).
    #[must_use]
    pub fn two_m(&self) -> f64 {
        self.two_m
    }

    /// The symmetric weight `A_ij` (`A_ii` is the self-loop). Zero if there is no edge.
    ///
    /// # Panics
    ///
    /// If `i >= n` or `j >= n`.
    #[must_use]
    pub fn weight(&self, i: usize, j: usize) -> f64 {
        assert!(j < self.n, "node {j} out of range (n = {})", self.n);
        if i == j {
            return self.self_loops[i];
        }
        let row = self.offsets[i]..self.offsets[i + 1];
        match self.targets[row.clone()].binary_search(&j) {
            Ok(pos) => self.weights[row.start + pos],
            Err(_) => 0.0,
        }
    }

    /// The neighbours `j ≠ i` with `A_ij > 0`, as `(j, A_ij)` in ascending `j`. Self-loops
    /// are not included.
    ///
    /// # Panics
    ///
    /// If `i >= n`.
    pub fn neighbors(&self, i: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
        let row = self.offsets[i]..self.offsets[i + 1];
        self.targets[row.clone()]
            .iter()
            .copied()
            .zip(self.weights[row].iter().copied())
    }

    #[inline]
    fn row(&self, i: usize) -> (&[usize], &[f64]) {
        let row = self.offsets[i]..self.offsets[i + 1];
        (&self.targets[row.clone()], &self.weights[row])
    }
}

// ---------------------------------------------------------------------------------------
// Modularity
// ---------------------------------------------------------------------------------------

/// Renumbers arbitrary labels to `0..k` in order of first appearance. Returns `(labels, k)`.
fn compact_labels(partition: &[usize]) -> (Vec<usize>, usize) {
    let n = partition.len();
    let mut out = Vec::with_capacity(n);
    let mut k = 0;
    if partition.iter().all(|&c| c < n) {
        let mut map = vec![usize::MAX; n];
        for &c in partition {
            if map[c] == usize::MAX {
                map[c] = k;
                k += 1;
            }
            out.push(map[c]);
        }
    } else {
        let mut map = HashMap::new();
        for &c in partition {
            let id = *map.entry(c).or_insert_with(|| {
                k += 1;
                k - 1
            });
            out.push(id);
        }
    }
    (out, k)
}

/// Newman's modularity `Q` of `partition` (resolution `γ = 1`).
///
/// `partition[i]` is the community label of node `i`. Labels are arbitrary `usize` values;
/// only equality matters. Returns `0` for a graph with `2m = 0`.
///
/// # Panics
///
/// If `partition.len() != graph.num_nodes()`.
#[must_use]
pub fn modularity(graph: &WeightedGraph, partition: &[usize]) -> f64 {
    modularity_with_resolution(graph, partition, 1.0)
}

/// Generalised modularity `Q_γ = Σ_c [Σ_in(c)/2m − γ (Σ_tot(c)/2m)²]`.
///
/// Same as [`modularity`] when `resolution = 1`. Returns `0` for a graph with `2m = 0`.
///
/// # Panics
///
/// If `partition.len() != graph.num_nodes()`.
#[must_use]
pub fn modularity_with_resolution(
    graph: &WeightedGraph,
    partition: &[usize],
    resolution: f64,
) -> f64 {
    assert_eq!(
        partition.len(),
        graph.n,
        "partition length must equal the number of nodes"
    );
    if graph.two_m <= 0.0 {
        return 0.0;
    }
    let (labels, k) = compact_labels(partition);
    let mut inside = vec![0.0; k];
    let mut total = vec![0.0; k];
    for i in 0..graph.n {
        let c = labels[i];
        total[c] += graph.degrees[i];
        inside[c] += graph.self_loops[i];
        let (t, w) = graph.row(i);
        for (&j, &a) in t.iter().zip(w) {
            if labels[j] == c {
                inside[c] += a;
            }
        }
    }
    let two_m = graph.two_m;
    inside
        .iter()
        .zip(&total)
        .map(|(&inn, &tot)| inn / two_m - resolution * (tot / two_m) * (tot / two_m))
        .sum()
}

// ---------------------------------------------------------------------------------------
// Louvain
// ---------------------------------------------------------------------------------------

/// The project's portable generator ([`crate::data::SplitMix64`]); Louvain draws with
/// multiply-shift (below) rather than the rejection sampling of dataset splits, so its
/// partitions are what they were when it had a copy of its own.
use crate::data::SplitMix64;

/// Uniform-ish integer in `0..bound` (multiply-shift; bias < bound / 2^64).
fn below(rng: &mut SplitMix64, bound: usize) -> usize {
    ((u128::from(rng.next_u64()) * bound as u128) >> 64) as usize
}

/// Fisher–Yates with [`below`].
fn shuffle<T>(rng: &mut SplitMix64, xs: &mut [T]) {
    for i in (1..xs.len()).rev() {
        let j = below(rng, i + 1);
        xs.swap(i, j);
    }
}

/// Options for [`louvain_with`] and [`louvain_best_with`].
#[derive(Debug, Clone, PartialEq)]
pub struct LouvainOptions {
    /// Resolution `γ ≥ 0` (default `1.0`, standard modularity). Larger values give more,
    /// smaller communities. With `γ = 0`, the connected components are merged.
    pub resolution: f64,
    /// Minimum rise in `Q` for a single node move to be accepted (default `1e-12`). Must be
    /// `≥ 0`. It guards against cycling on floating-point noise.
    pub tolerance: f64,
    /// Shuffle the node visiting order with SplitMix64 seeded from `seed` (default `true`).
    /// With `false`, nodes are visited in order `0..n` and the seed is ignored.
    pub shuffle: bool,
    /// Restart on the original graph from the partition found until no single node move
    /// helps (default `true`; see the module docs). With `false`, this is classic
    /// single-pass Louvain.
    pub refine: bool,
    /// Upper bound on local-moving sweeps per level (default `1000`). Each sweep visits
    /// every node once. This is only a safety net: in practice sweeps stop much earlier.
    pub max_sweeps: usize,
    /// Upper bound on aggregation levels per pass (default `64`).
    pub max_levels: usize,
    /// Upper bound on refinement passes (default `32`; ignored unless `refine`).
    pub max_passes: usize,
}

impl Default for LouvainOptions {
    fn default() -> Self {
        Self {
            resolution: 1.0,
            tolerance: 1e-12,
            shuffle: true,
            refine: true,
            max_sweeps: 1000,
            max_levels: 64,
            max_passes: 32,
        }
    }
}

/// A partition of the nodes into communities, as returned by the Louvain functions.
#[derive(Debug, Clone, PartialEq)]
pub struct Partition {
    /// `labels[i]` is the community of node `i`, numbered `0..num_communities` in order of
    /// first appearance (so `labels[0] == 0` when `n > 0`).
    pub labels: Vec<usize>,
    /// Number of communities `k`.
    pub num_communities: usize,
    /// `Q_γ` of `labels` on the input graph at the resolution used. With the default
    /// `γ = 1` this is Newman's modularity.
    pub modularity: f64,
    /// The resolution `γ` used.
    pub resolution: f64,
    /// The seed that produced this partition.
    pub seed: u64,
}

impl Partition {
    /// Community sizes, indexed by label.
    #[must_use]
    pub fn sizes(&self) -> Vec<usize> {
        let mut sizes = vec![0; self.num_communities];
        for &c in &self.labels {
            sizes[c] += 1;
        }
        sizes
    }
}

/// Louvain with default options ([`LouvainOptions::default`]) and the given seed.
///
/// Deterministic: the same graph and seed always give the same partition.
#[must_use]
pub fn louvain(graph: &WeightedGraph, seed: u64) -> Partition {
    louvain_with(graph, &LouvainOptions::default(), seed)
}

/// Louvain with explicit options. See the [module docs](self) for the algorithm.
///
/// # Panics
///
/// If `options.resolution` or `options.tolerance` is negative or not finite.
#[must_use]
pub fn louvain_with(graph: &WeightedGraph, options: &LouvainOptions, seed: u64) -> Partition {
    assert!(
        options.resolution.is_finite() && options.resolution >= 0.0,
        "resolution must be finite and >= 0"
    );
    assert!(
        options.tolerance.is_finite() && options.tolerance >= 0.0,
        "tolerance must be finite and >= 0"
    );
    let n = graph.n;
    let mut labels: Vec<usize> = (0..n).collect();
    if n > 0 && graph.two_m > 0.0 {
        let mut rng = SplitMix64::new(seed);
        let passes = if options.refine {
            options.max_passes.max(1)
        } else {
            1
        };
        for _ in 0..passes {
            let (next, moved_at_base) = louvain_pass(graph, &labels, options, &mut rng);
            labels = next;
            if !moved_at_base {
                break;
            }
        }
    }
    let (labels, k) = compact_labels(&labels);
    let modularity = modularity_with_resolution(graph, &labels, options.resolution);
    Partition {
        labels,
        num_communities: k,
        modularity,
        resolution: options.resolution,
        seed,
    }
}

/// Runs Louvain once per seed (default options) and keeps the highest `Q`. Ties go to the
/// earlier seed. An empty `seeds` slice is treated as `[0]`.
#[must_use]
pub fn louvain_best(graph: &WeightedGraph, seeds: &[u64]) -> Partition {
    louvain_best_with(graph, &LouvainOptions::default(), seeds)
}

/// [`louvain_best`] with explicit options.
///
/// # Panics
///
/// As [`louvain_with`].
#[must_use]
pub fn louvain_best_with(
    graph: &WeightedGraph,
    options: &LouvainOptions,
    seeds: &[u64],
) -> Partition {
    let seeds = if seeds.is_empty() { &[0][..] } else { seeds };
    let mut best = louvain_with(graph, options, seeds[0]);
    for &seed in &seeds[1..] {
        let p = louvain_with(graph, options, seed);
        if p.modularity > best.modularity {
            best = p;
        }
    }
    best
}

/// One multi-level pass. Local moving on `graph` starts from `start` (compact labels); the
/// coarser levels start from singletons. Returns the new labels of the original nodes, and
/// whether any node moved at the base level.
fn louvain_pass(
    graph: &WeightedGraph,
    start: &[usize],
    options: &LouvainOptions,
    rng: &mut SplitMix64,
) -> (Vec<usize>, bool) {
    // membership[i] = node of the current level graph that contains original node i.
    let mut membership: Vec<usize> = (0..graph.n).collect();
    let mut comm: Vec<usize> = start.to_vec();
    let mut owned: Option<WeightedGraph> = None;
    let mut moved_at_base = false;
    for level in 0..options.max_levels.max(1) {
        let g = owned.as_ref().unwrap_or(graph);
        let moved = local_moving(g, &mut comm, options, rng);
        if level == 0 {
            moved_at_base = moved;
        }
        let (compact, k) = compact_labels(&comm);
        for m in &mut membership {
            *m = compact[*m];
        }
        if !moved {
            break;
        }
        let next = aggregate(g, &compact, k);
        owned = Some(next);
        comm = (0..k).collect();
    }
    (membership, moved_at_base)
}

/// Greedy local moving on `g`, starting from `comm` (labels `< g.n`). Returns whether any
/// node moved.
fn local_moving(
    g: &WeightedGraph,
    comm: &mut [usize],
    options: &LouvainOptions,
    rng: &mut SplitMix64,
) -> bool {
    let n = g.n;
    if n == 0 || g.two_m <= 0.0 {
        return false;
    }
    // ΔQ = gain / m, so "ΔQ > tolerance" means "gain difference > tolerance · m".
    let threshold = options.tolerance * g.two_m * 0.5;
    let gamma = options.resolution / g.two_m;

    let mut tot = vec![0.0; n];
    let mut size = vec![0usize; n];
    for i in 0..n {
        tot[comm[i]] += g.degrees[i];
        size[comm[i]] += 1;
    }
    let mut empty: BTreeSet<usize> = (0..n).filter(|&c| size[c] == 0).collect();

    let mut order: Vec<usize> = (0..n).collect();
    if options.shuffle {
        shuffle(rng, &mut order);
    }

    let mut neigh_w = vec![0.0; n];
    let mut marked = vec![false; n];
    let mut touched: Vec<usize> = Vec::new();
    let mut moved_any = false;

    for _ in 0..options.max_sweeps {
        let mut moved = false;
        for &i in &order {
            let ci = comm[i];
            let ki = g.degrees[i];
            let (t, w) = g.row(i);
            for (&j, &a) in t.iter().zip(w) {
                let c = comm[j];
                if !marked[c] {
                    marked[c] = true;
                    touched.push(c);
                }
                neigh_w[c] += a;
            }

            // Take i out of its community.
            tot[ci] -= ki;
            size[ci] -= 1;
            let stay = neigh_w[ci] - gamma * tot[ci] * ki;

            // Best alternative: max gain, ties to the lowest id.
            let mut best: Option<(usize, f64)> = None;
            let mut consider = |c: usize, gain: f64| match best {
                Some((bc, bg)) if gain < bg || (gain == bg && c > bc) => {}
                _ => best = Some((c, gain)),
            };
            for &c in &touched {
                if c != ci {
                    consider(c, neigh_w[c] - gamma * tot[c] * ki);
                }
            }
            // An empty community (gain 0) is a real alternative only if i was not alone.
            if size[ci] > 0
                && let Some(&e) = empty.first()
            {
                consider(e, 0.0);
            }

            let target = match best {
                Some((c, gain)) if gain > stay + threshold => c,
                _ => ci,
            };
            if target != ci {
                comm[i] = target;
                empty.remove(&target);
                moved = true;
            }
            tot[target] += ki;
            size[target] += 1;
            if size[ci] == 0 {
                empty.insert(ci);
            }

            for c in touched.drain(..) {
                neigh_w[c] = 0.0;
                marked[c] = false;
            }
        }
        if !moved {
            break;
        }
        moved_any = true;
    }
    moved_any
}

/// Collapses each community of `comm` (compact labels `0..k`) into one node.
fn aggregate(g: &WeightedGraph, comm: &[usize], k: usize) -> WeightedGraph {
    // Bucket the nodes by community (counting sort, node order kept).
    let mut start = vec![0usize; k + 1];
    for &c in comm {
        start[c + 1] += 1;
    }
    for c in 0..k {
        start[c + 1] += start[c];
    }
    let mut fill = start.clone();
    let mut members = vec![0usize; g.n];
    for (i, &c) in comm.iter().enumerate() {
        members[fill[c]] = i;
        fill[c] += 1;
    }

    let mut offsets = Vec::with_capacity(k + 1);
    offsets.push(0);
    let mut targets = Vec::new();
    let mut weights = Vec::new();
    let mut self_loops = vec![0.0; k];
    let mut scratch = vec![0.0; k];
    let mut marked = vec![false; k];
    let mut touched: Vec<usize> = Vec::new();
    for c in 0..k {
        for &i in &members[start[c]..start[c + 1]] {
            self_loops[c] += g.self_loops[i];
            let (t, w) = g.row(i);
            for (&j, &a) in t.iter().zip(w) {
                let d = comm[j];
                if d == c {
                    // Internal edge; its other direction is added via j, giving Σ_in(c).
                    self_loops[c] += a;
                } else {
                    if !marked[d] {
                        marked[d] = true;
                        touched.push(d);
                    }
                    scratch[d] += a;
                }
            }
        }
        touched.sort_unstable();
        for &d in &touched {
            targets.push(d);
            weights.push(scratch[d]);
            scratch[d] = 0.0;
            marked[d] = false;
        }
        touched.clear();
        offsets.push(targets.len());
    }
    WeightedGraph::from_parts(k, offsets, targets, weights, self_loops)
}

// ---------------------------------------------------------------------------------------
// Block shares, reordering, partition comparison
// ---------------------------------------------------------------------------------------

/// How `Σ_{i≠j} |w_ij|` splits between within- and across-community entries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shares {
    /// Share of the off-diagonal `|w|` mass whose endpoints share a community.
    pub within: f64,
    /// Share whose endpoints are in different communities. `within + across = 1`, except
    /// for an all-zero off-diagonal, where both are `0`.
    pub across: f64,
    /// `Σ_{i≠j} |w_ij|`, the mass being split.
    pub total: f64,
    /// Fraction of ordered pairs `i ≠ j` that lie within a community:
    /// `Σ_c s_c (s_c − 1) / (n (n − 1))`. This is the `within` share that evenly spread
    /// weights would give, so `within` well above it means block-diagonal structure and
    /// well below it means off-diagonal structure. `0` when `n < 2`.
    pub within_pair_fraction: f64,
}

/// Splits the off-diagonal mass `Σ_{i≠j} |w_ij|` of `W` (directed entries, row-major
/// `n × n`, diagonal ignored) into within- and across-community shares of `partition`.
///
/// An all-zero off-diagonal gives `within = across = total = 0`.
///
/// # Errors
///
/// [`CommunityError::DimensionMismatch`] or [`CommunityError::NonFiniteWeight`] for a bad
/// `w`, [`CommunityError::PartitionLength`] if `partition.len() != n`, and
/// [`CommunityError::WeightOverflow`] if the sum overflows.
pub fn block_shares(w: &[f64], n: usize, partition: &[usize]) -> Result<Shares, CommunityError> {
    check_matrix(w, n)?;
    if partition.len() != n {
        return Err(CommunityError::PartitionLength {
            expected: n,
            found: partition.len(),
        });
    }
    let (labels, k) = compact_labels(partition);
    let mut within = 0.0;
    let mut across = 0.0;
    for i in 0..n {
        for j in 0..n {
            if i == j {
                continue;
            }
            let x = w[i * n + j].abs();
            if labels[i] == labels[j] {
                within += x;
            } else {
                across += x;
            }
        }
    }
    let total: f64 = within + across;
    if !total.is_finite() {
        return Err(CommunityError::WeightOverflow);
    }
    let mut sizes = vec![0usize; k];
    for &c in &labels {
        sizes[c] += 1;
    }
    let within_pair_fraction = if n < 2 {
        0.0
    } else {
        let pairs: f64 = sizes.iter().map(|&s| (s * (s - 1)) as f64).sum();
        pairs / (n as f64 * (n - 1) as f64)
    };
    let (within, across) = if total > 0.0 {
        (within / total, across / total)
    } else {
        (0.0, 0.0)
    };
    Ok(Shares {
        within,
        across,
        total,
        within_pair_fraction,
    })
}

/// A node permutation that groups communities together, for drawing `W` as a block matrix.
///
/// Communities are ordered by size (largest first), then by label (smallest first). Nodes
/// are in ascending order within a community. `perm[a]` is the original node at position
/// `a`, so draw `W'[a][b] = W[perm[a]][perm[b]]`. Labels are arbitrary `usize` values.
#[must_use]
pub fn reorder(partition: &[usize]) -> Vec<usize> {
    let mut sizes: HashMap<usize, usize> = HashMap::new();
    for &c in partition {
        *sizes.entry(c).or_insert(0) += 1;
    }
    let mut perm: Vec<usize> = (0..partition.len()).collect();
    perm.sort_unstable_by_key(|&i| {
        let c = partition[i];
        (std::cmp::Reverse(sizes[&c]), c, i)
    });
    perm
}

/// Normalised mutual information `2 I(A;B) / (H(A) + H(B))` between two partitions of the
/// same nodes, in `[0, 1]`. It is `1` exactly when they agree up to relabelling.
///
/// If both partitions are trivial (`H(A) = H(B) = 0`: one community each, or `n = 0`), the
/// result is `1`.
///
/// # Panics
///
/// If `a.len() != b.len()`.
#[must_use]
pub fn normalized_mutual_information(a: &[usize], b: &[usize]) -> f64 {
    assert_eq!(a.len(), b.len(), "partitions must have the same length");
    let n = a.len();
    let (la, ka) = compact_labels(a);
    let (lb, kb) = compact_labels(b);
    let mut ca = vec![0usize; ka];
    let mut cb = vec![0usize; kb];
    // Summed in label order (not a hash map's per-process order): the same bits every run.
    let mut joint: BTreeMap<(usize, usize), usize> = BTreeMap::new();
    for i in 0..n {
        ca[la[i]] += 1;
        cb[lb[i]] += 1;
        *joint.entry((la[i], lb[i])).or_insert(0) += 1;
    }
    let nf = n as f64;
    let entropy = |counts: &[usize]| -> f64 {
        counts
            .iter()
            .map(|&c| {
                let p = c as f64 / nf;
                -p * p.ln()
            })
            .sum()
    };
    let (ha, hb) = (entropy(&ca), entropy(&cb));
    if ha + hb <= 0.0 {
        return 1.0;
    }
    let mut mi = 0.0;
    for (&(x, y), &c) in &joint {
        let pxy = c as f64 / nf;
        mi += pxy * (pxy * nf * nf / (ca[x] as f64 * cb[y] as f64)).ln();
    }
    (2.0 * mi / (ha + hb)).clamp(0.0, 1.0)
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    const EPS: f64 = 1e-12;

    #[test]
    fn nmi_sums_its_terms_in_label_order_so_every_run_gives_the_same_bits() {
        // Many joint cells, so that another summation order moves the last bits.
        let a: Vec<usize> = (0..400).map(|i| (i * 7 + i / 13) % 17).collect();
        let b: Vec<usize> = (0..400).map(|i| (i * 5 + i / 7) % 23).collect();
        let (la, ka) = compact_labels(&a);
        let (lb, kb) = compact_labels(&b);
        let (mut ca, mut cb, mut joint) =
            (vec![0usize; ka], vec![0usize; kb], vec![0usize; ka * kb]);
        for i in 0..a.len() {
            ca[la[i]] += 1;
            cb[lb[i]] += 1;
            joint[la[i] * kb + lb[i]] += 1;
        }
        let nf = a.len() as f64;
        let h = |c: &[usize]| -> f64 {
            c.iter()
                .map(|&c| {
                    let p = c as f64 / nf;
                    -p * p.ln()
                })
                .sum()
        };
        let mut mi = 0.0;
        for x in 0..ka {
            for y in 0..kb {
                let c = joint[x * kb + y];
                if c > 0 {
                    let pxy = c as f64 / nf;
                    mi += pxy * (pxy * nf * nf / (ca[x] as f64 * cb[y] as f64)).ln();
                }
            }
        }
        let want = (2.0 * mi / (h(&ca) + h(&cb))).clamp(0.0, 1.0);
        // Each call would get a freshly keyed hash map: ten calls in a row catch a hash
        // order almost surely.
        for _ in 0..10 {
            assert_eq!(
                normalized_mutual_information(&a, &b).to_bits(),
                want.to_bits()
            );
        }
    }

    /// Symmetric 0/1 matrix from an undirected edge list.
    fn from_edges(n: usize, edges: &[(usize, usize)]) -> Vec<f64> {
        let mut w = vec![0.0; n * n];
        for &(i, j) in edges {
            w[i * n + j] = 1.0;
            w[j * n + i] = 1.0;
        }
        w
    }

    const TWO_TRIANGLES: [(usize, usize); 7] =
        [(0, 1), (0, 2), (1, 2), (2, 3), (3, 4), (3, 5), (4, 5)];

    /// Literal double sum over (i, j), the definition of Q.
    fn brute_q(g: &WeightedGraph, p: &[usize], gamma: f64) -> f64 {
        let n = g.num_nodes();
        let two_m = g.two_m();
        if two_m == 0.0 {
            return 0.0;
        }
        let mut q = 0.0;
        for i in 0..n {
            for j in 0..n {
                if p[i] == p[j] {
                    q += g.weight(i, j) - gamma * g.degree(i) * g.degree(j) / two_m;
                }
            }
        }
        q / two_m
    }

    /// Random matrix: each directed entry is nonzero with probability `density`, with a
    /// random sign and magnitude in (0, 1]; diagonal zero.
    fn random_matrix(n: usize, density: f64, seed: u64) -> Vec<f64> {
        let mut rng = SplitMix64::new(seed);
        let mut w = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                if i != j && unit(&mut rng) < density {
                    let mag = 1.0 - unit(&mut rng);
                    w[i * n + j] = if rng.next_u64() & 1 == 0 { mag } else { -mag };
                }
            }
        }
        w
    }

    fn unit(rng: &mut SplitMix64) -> f64 {
        (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Planted partition: `blocks` blocks of `size` nodes, symmetric unit edges with
    /// probability `p_in` inside blocks and `p_out` across.
    fn planted(blocks: usize, size: usize, p_in: f64, p_out: f64, seed: u64) -> Vec<f64> {
        let n = blocks * size;
        let mut rng = SplitMix64::new(seed);
        let mut w = vec![0.0; n * n];
        for i in 0..n {
            for j in (i + 1)..n {
                let p = if i / size == j / size { p_in } else { p_out };
                if unit(&mut rng) < p {
                    w[i * n + j] = 1.0;
                    w[j * n + i] = 1.0;
                }
            }
        }
        w
    }

    fn same_comembership(a: &[usize], b: &[usize]) -> bool {
        a.len() == b.len()
            && (0..a.len()).all(|i| (0..a.len()).all(|j| (a[i] == a[j]) == (b[i] == b[j])))
    }

    // ---- modularity -------------------------------------------------------------------

    #[test]
    fn q_two_triangles_hand_value() {
        // Edges: 0-1, 0-2, 1-2 | 2-3 | 3-4, 3-5, 4-5  → m = 7, 2m = 14.
        // Degrees: k0 = 2, k1 = 2, k2 = 3 (0, 1, 3), k3 = 3 (2, 4, 5), k4 = 2, k5 = 2;
        // Σk = 14 ✓.
        // Community {0,1,2}: Σ_in = 2·3 = 6 (3 internal edges, both directions),
        //   Σ_tot = 2 + 2 + 3 = 7. Same for {3,4,5}.
        // Q = Σ_c [Σ_in/2m − (Σ_tot/2m)²] = 2·[6/14 − (7/14)²] = 2·[3/7 − 1/4]
        //   = 2·(12 − 7)/28 = 10/28 = 5/14 ≈ 0.357142857.
        let w = from_edges(6, &TWO_TRIANGLES);
        let g = WeightedGraph::from_abs_weights(&w, 6).unwrap();
        assert_eq!(g.two_m(), 14.0);
        assert_eq!(
            (0..6).map(|i| g.degree(i)).collect::<Vec<_>>(),
            vec![2.0, 2.0, 3.0, 3.0, 2.0, 2.0]
        );
        let q = modularity(&g, &[0, 0, 0, 1, 1, 1]);
        assert!((q - 5.0 / 14.0).abs() < EPS, "q = {q}");
        assert!((q - 0.357_142_857).abs() < 1e-9);
        // Arbitrary labels, same partition.
        assert!((modularity(&g, &[9, 9, 9, 1_000_000, 1_000_000, 1_000_000]) - q).abs() < EPS);
    }

    #[test]
    fn q_weighted_asymmetric_hand_value() {
        // Directed W: w_01 = 2, w_10 = 0 → A_01 = 1; w_23 = 3, w_32 = −1 → A_23 = 2;
        // w_12 = −1, w_21 = 0 → A_12 = 0.5. Degrees k = (1, 1.5, 2.5, 2), 2m = 7.
        // {0,1}: Σ_in = 2, Σ_tot = 2.5; {2,3}: Σ_in = 4, Σ_tot = 4.5.
        // Q = (2 + 4)/7 − (2.5² + 4.5²)/49 = 42/49 − 26.5/49 = 15.5/49 = 31/98.
        let n = 4;
        let mut w = vec![0.0; 16];
        w[1] = 2.0; // w_01
        w[2 * n + 3] = 3.0;
        w[3 * n + 2] = -1.0;
        w[n + 2] = -1.0; // w_12
        let g = WeightedGraph::from_abs_weights(&w, n).unwrap();
        assert_eq!(g.weight(0, 1), 1.0);
        assert_eq!(g.weight(1, 0), 1.0);
        assert_eq!(g.weight(2, 3), 2.0);
        assert_eq!(g.weight(1, 2), 0.5);
        assert_eq!(g.weight(0, 3), 0.0);
        assert_eq!(g.two_m(), 7.0);
        let q = modularity(&g, &[0, 0, 1, 1]);
        assert!((q - 31.0 / 98.0).abs() < EPS, "q = {q}");
        assert!((q - brute_q(&g, &[0, 0, 1, 1], 1.0)).abs() < EPS);
    }

    #[test]
    fn q_self_loop_convention() {
        // As above plus w_00 = −1 → A_00 = 1: k0 = 2, 2m = 8 = Σ|w_ij|.
        // {0,1}: Σ_in = 2 + 1 = 3, Σ_tot = 3.5; {2,3}: Σ_in = 4, Σ_tot = 4.5.
        // Q = 7/8 − (3.5² + 4.5²)/64 = 56/64 − 32.5/64 = 23.5/64 = 47/128.
        let n = 4;
        let mut w = vec![0.0; 16];
        w[0] = -1.0;
        w[1] = 2.0;
        w[2 * n + 3] = 3.0;
        w[3 * n + 2] = -1.0;
        w[n + 2] = -1.0;
        let g = WeightedGraph::from_abs_weights(&w, n).unwrap();
        assert_eq!(g.weight(0, 0), 1.0);
        assert_eq!(g.degree(0), 2.0);
        assert_eq!(g.two_m(), 8.0);
        assert_eq!(g.two_m(), w.iter().map(|x| x.abs()).sum::<f64>());
        let q = modularity(&g, &[0, 0, 1, 1]);
        assert!((q - 47.0 / 128.0).abs() < EPS, "q = {q}");
        assert!((q - brute_q(&g, &[0, 0, 1, 1], 1.0)).abs() < EPS);
    }

    #[test]
    fn q_one_community_is_zero_and_singletons_hand_value() {
        let w = from_edges(6, &TWO_TRIANGLES);
        let g = WeightedGraph::from_abs_weights(&w, 6).unwrap();
        assert!(modularity(&g, &[3; 6]).abs() < EPS);
        // Singletons, no self-loops: Q = −Σ k_i² / (2m)² = −(4·4 + 2·9)/196 = −34/196.
        let q = modularity(&g, &[0, 1, 2, 3, 4, 5]);
        assert!((q + 34.0 / 196.0).abs() < EPS, "q = {q}");
    }

    #[test]
    fn q_matches_brute_force_on_random_graphs() {
        let mut rng = SplitMix64::new(99);
        for case in 0..30 {
            let n = 1 + below(&mut rng, 25);
            let mut w = random_matrix(n, 0.3, case);
            if case % 3 == 0 {
                for i in 0..n {
                    w[i * n + i] = unit(&mut rng); // self-loops too
                }
            }
            let g = WeightedGraph::from_abs_weights(&w, n).unwrap();
            let total: f64 = w.iter().map(|x| x.abs()).sum();
            assert!((g.two_m() - total).abs() <= 1e-9 * total.max(1.0));
            for _ in 0..5 {
                let k = 1 + below(&mut rng, n);
                let p: Vec<usize> = (0..n).map(|_| below(&mut rng, k) * 7919).collect();
                for gamma in [0.0, 0.5, 1.0, 2.0] {
                    let q = modularity_with_resolution(&g, &p, gamma);
                    let b = brute_q(&g, &p, gamma);
                    assert!((q - b).abs() < 1e-10, "case {case}: {q} vs {b}");
                }
                let q = modularity(&g, &p);
                assert!((-0.5 - 1e-12..=1.0 + 1e-12).contains(&q));
            }
        }
    }

    // ---- graph construction / errors --------------------------------------------------

    #[test]
    fn rejects_bad_input() {
        let mut w = vec![0.0; 9];
        w[5] = f64::NAN;
        match WeightedGraph::from_abs_weights(&w, 3) {
            Err(CommunityError::NonFiniteWeight { row: 1, col: 2, .. }) => {}
            other => panic!("{other:?}"),
        }
        w[5] = f64::NEG_INFINITY;
        let err = WeightedGraph::from_abs_weights(&w, 3).unwrap_err();
        assert!(err.to_string().contains("row 1, column 2"), "{err}");
        assert_eq!(
            WeightedGraph::from_abs_weights(&[0.0; 8], 3),
            Err(CommunityError::DimensionMismatch { n: 3, len: 8 })
        );
        assert_eq!(
            WeightedGraph::from_abs_weights(&[], usize::MAX),
            Err(CommunityError::DimensionMismatch {
                n: usize::MAX,
                len: 0
            })
        );
        assert_eq!(
            WeightedGraph::from_abs_weights(&[f64::MAX; 4], 2),
            Err(CommunityError::WeightOverflow)
        );
        let e: Box<dyn std::error::Error> = Box::new(CommunityError::PartitionLength {
            expected: 3,
            found: 2,
        });
        assert_eq!(e.to_string(), "partition has 2 labels, expected 3");
        assert!(matches!(
            block_shares(&[0.0; 4], 2, &[0]),
            Err(CommunityError::PartitionLength {
                expected: 2,
                found: 1
            })
        ));
        assert!(matches!(
            block_shares(&[0.0, f64::INFINITY, 0.0, 0.0], 2, &[0, 0]),
            Err(CommunityError::NonFiniteWeight { row: 0, col: 1, .. })
        ));
    }

    #[test]
    fn graph_accessors() {
        let w = from_edges(6, &TWO_TRIANGLES);
        let g = WeightedGraph::from_abs_weights(&w, 6).unwrap();
        assert_eq!(g.num_nodes(), 6);
        assert_eq!(
            g.neighbors(3).collect::<Vec<_>>(),
            vec![(2, 1.0), (4, 1.0), (5, 1.0)]
        );
        let empty = WeightedGraph::from_abs_weights(&[], 0).unwrap();
        assert_eq!(empty.num_nodes(), 0);
        assert_eq!(empty.two_m(), 0.0);
    }

    // ---- Louvain ----------------------------------------------------------------------

    #[test]
    fn louvain_two_triangles() {
        let w = from_edges(6, &TWO_TRIANGLES);
        let g = WeightedGraph::from_abs_weights(&w, 6).unwrap();
        for seed in 0..20 {
            let p = louvain(&g, seed);
            assert_eq!(p.labels, vec![0, 0, 0, 1, 1, 1], "seed {seed}");
            assert_eq!(p.num_communities, 2);
            assert_eq!(p.sizes(), vec![3, 3]);
            assert!((p.modularity - 5.0 / 14.0).abs() < EPS);
            assert_eq!(p.seed, seed);
            assert_eq!(p.resolution, 1.0);
        }
    }

    #[test]
    fn louvain_recovers_planted_partition() {
        let (blocks, size) = (4, 25);
        let n = blocks * size;
        let truth: Vec<usize> = (0..n).map(|i| i / size).collect();
        for graph_seed in [1, 2, 3] {
            let w = planted(blocks, size, 0.5, 0.02, graph_seed);
            let g = WeightedGraph::from_abs_weights(&w, n).unwrap();
            let q_truth = modularity(&g, &truth);
            for seed in [0, 1, 42] {
                let p = louvain(&g, seed);
                assert!(
                    same_comembership(&p.labels, &truth),
                    "graph {graph_seed} seed {seed}: {:?}",
                    p.labels
                );
                assert_eq!(p.labels, truth); // blocks are contiguous: first-appearance order
                assert!((normalized_mutual_information(&p.labels, &truth) - 1.0).abs() < EPS);
                assert!(p.modularity >= q_truth - 1e-9);
                assert!((p.modularity - modularity(&g, &p.labels)).abs() < EPS);
            }
            // Without refinement and without shuffling too.
            for opts in [
                LouvainOptions {
                    refine: false,
                    ..Default::default()
                },
                LouvainOptions {
                    shuffle: false,
                    ..Default::default()
                },
            ] {
                let p = louvain_with(&g, &opts, 5);
                assert!(same_comembership(&p.labels, &truth), "{opts:?}");
            }
        }
    }

    #[test]
    fn louvain_recovers_planted_partition_shuffled_weighted_directed() {
        // Planted blocks with random (signed, asymmetric) weights on the edges and node
        // labels scrambled by a permutation.
        let (blocks, size) = (4, 25);
        let n = blocks * size;
        let base = planted(blocks, size, 0.5, 0.02, 11);
        let mut rng = SplitMix64::new(5);
        let mut perm: Vec<usize> = (0..n).collect();
        shuffle(&mut rng, &mut perm);
        let mut w = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                if base[i * n + j] != 0.0 {
                    let x = 0.5 + unit(&mut rng);
                    w[perm[i] * n + perm[j]] = if unit(&mut rng) < 0.3 { -x } else { x };
                }
            }
        }
        let mut truth = vec![0; n];
        for i in 0..n {
            truth[perm[i]] = i / size;
        }
        let g = WeightedGraph::from_abs_weights(&w, n).unwrap();
        let p = louvain_best(&g, &[0, 1, 2]);
        assert!(same_comembership(&p.labels, &truth));
        assert!(p.modularity >= modularity(&g, &truth) - 1e-9);
    }

    #[test]
    fn louvain_never_worse_than_singletons_and_is_local_optimum() {
        let mut rng = SplitMix64::new(2024);
        for case in 0..40 {
            let n = 1 + below(&mut rng, 30);
            let density = [0.05, 0.2, 0.6][case as usize % 3];
            let w = random_matrix(n, density, 1000 + case);
            let g = WeightedGraph::from_abs_weights(&w, n).unwrap();
            let singletons: Vec<usize> = (0..n).collect();
            let p = louvain(&g, case);
            let q_single = modularity(&g, &singletons);
            assert!(p.modularity >= q_single - 1e-12, "case {case}");
            assert!((p.modularity - brute_q(&g, &p.labels, 1.0)).abs() < 1e-10);
            // Labels are compact, in first-appearance order.
            let (compact, k) = compact_labels(&p.labels);
            assert_eq!(compact, p.labels);
            assert_eq!(k, p.num_communities);
            // No single node move (to any community, or a fresh one) raises Q.
            let mut labels = p.labels.clone();
            for i in 0..n {
                let orig = labels[i];
                for c in 0..=p.num_communities {
                    labels[i] = c;
                    let q = modularity(&g, &labels);
                    assert!(
                        q <= p.modularity + 1e-9,
                        "case {case}: moving {i} to {c} gives {q} > {}",
                        p.modularity
                    );
                }
                labels[i] = orig;
            }
            // Classic single-pass Louvain: also never below singletons. Its pass is the
            // refined run's first pass (same RNG stream), so refinement can only add.
            let classic = LouvainOptions {
                refine: false,
                ..Default::default()
            };
            let pc = louvain_with(&g, &classic, case);
            assert!(pc.modularity >= q_single - 1e-12);
            assert!(p.modularity >= pc.modularity - 1e-12);
        }
    }

    #[test]
    fn louvain_is_deterministic() {
        let n = 60;
        let w = random_matrix(n, 0.15, 77);
        let g = WeightedGraph::from_abs_weights(&w, n).unwrap();
        for seed in [0, 1, u64::MAX] {
            let a = louvain(&g, seed);
            let b = louvain(&g, seed);
            assert_eq!(a, b);
        }
        // Fixed order ignores the seed.
        let fixed = LouvainOptions {
            shuffle: false,
            ..Default::default()
        };
        let a = louvain_with(&g, &fixed, 1);
        let b = louvain_with(&g, &fixed, 2);
        assert_eq!(a.labels, b.labels);
        assert_eq!(a.modularity, b.modularity);
        // SplitMix64 reference values (seed 1234567), pinning portability.
        let mut r = SplitMix64::new(1_234_567);
        assert_eq!(r.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(r.next_u64(), 3_203_168_211_198_807_973);
    }

    #[test]
    fn louvain_best_keeps_highest_q() {
        let n = 80;
        let w = random_matrix(n, 0.1, 3);
        let g = WeightedGraph::from_abs_weights(&w, n).unwrap();
        let seeds = [4, 5, 6, 7, 8];
        let best = louvain_best(&g, &seeds);
        for &s in &seeds {
            assert!(best.modularity >= louvain(&g, s).modularity);
        }
        assert!(seeds.contains(&best.seed));
        assert_eq!(best, louvain(&g, best.seed));
        assert_eq!(louvain_best(&g, &[]), louvain(&g, 0));
    }

    #[test]
    fn louvain_degenerate_graphs_do_not_panic() {
        // All-zero: singletons, Q = 0.
        let g = WeightedGraph::from_abs_weights(&[0.0; 25], 5).unwrap();
        let p = louvain(&g, 1);
        assert_eq!(p.labels, vec![0, 1, 2, 3, 4]);
        assert_eq!(p.num_communities, 5);
        assert_eq!(p.modularity, 0.0);
        assert_eq!(modularity(&g, &[0; 5]), 0.0);
        // One node, with and without a self-loop: Q = 1 − 1 = 0.
        for x in [0.0, -3.0] {
            let g = WeightedGraph::from_abs_weights(&[x], 1).unwrap();
            let p = louvain(&g, 0);
            assert_eq!(p.labels, vec![0]);
            assert!(p.modularity.abs() < EPS);
        }
        // Empty graph.
        let g = WeightedGraph::from_abs_weights(&[], 0).unwrap();
        let p = louvain(&g, 0);
        assert!(p.labels.is_empty());
        assert_eq!(p.num_communities, 0);
        assert_eq!(p.modularity, 0.0);
        // Only self-loops: nothing to merge.
        let mut w = vec![0.0; 9];
        w[0] = 1.0;
        w[8] = 2.0;
        let g = WeightedGraph::from_abs_weights(&w, 3).unwrap();
        let p = louvain(&g, 0);
        assert_eq!(p.labels, vec![0, 1, 2]);
        assert!((p.modularity - brute_q(&g, &p.labels, 1.0)).abs() < EPS);
    }

    #[test]
    fn louvain_isolated_nodes_and_components() {
        // Two disjoint triangles plus an isolated node 6.
        let w = from_edges(7, &[(0, 1), (0, 2), (1, 2), (3, 4), (3, 5), (4, 5)]);
        let g = WeightedGraph::from_abs_weights(&w, 7).unwrap();
        let p = louvain(&g, 9);
        assert_eq!(p.labels, vec![0, 0, 0, 1, 1, 1, 2]);
        assert!((p.modularity - 0.5).abs() < EPS); // 2·(6/12 − (6/12)²)
        // γ = 0 merges connected components (isolated nodes stay alone).
        let zero = LouvainOptions {
            resolution: 0.0,
            ..Default::default()
        };
        let w = from_edges(7, &TWO_TRIANGLES);
        let g = WeightedGraph::from_abs_weights(&w, 7).unwrap();
        let p = louvain_with(&g, &zero, 3);
        assert_eq!(p.labels, vec![0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(p.resolution, 0.0);
        // Very high γ: every node alone.
        let high = LouvainOptions {
            resolution: 100.0,
            ..Default::default()
        };
        let p = louvain_with(&g, &high, 3);
        assert_eq!(p.num_communities, 7);
    }

    #[test]
    #[should_panic(expected = "resolution")]
    fn louvain_rejects_negative_resolution() {
        let g = WeightedGraph::from_abs_weights(&[0.0, 1.0, 1.0, 0.0], 2).unwrap();
        let opts = LouvainOptions {
            resolution: -1.0,
            ..Default::default()
        };
        let _ = louvain_with(&g, &opts, 0);
    }

    #[test]
    fn aggregation_preserves_modularity() {
        let n = 40;
        let w = random_matrix(n, 0.2, 8);
        let g = WeightedGraph::from_abs_weights(&w, n).unwrap();
        let mut rng = SplitMix64::new(8);
        let part: Vec<usize> = (0..n).map(|_| below(&mut rng, 6)).collect();
        let (compact, k) = compact_labels(&part);
        let agg = aggregate(&g, &compact, k);
        assert!((agg.two_m() - g.two_m()).abs() < 1e-9);
        let singletons: Vec<usize> = (0..k).collect();
        assert!((modularity(&agg, &singletons) - modularity(&g, &part)).abs() < 1e-12);
    }

    // ---- block shares, reorder, NMI ---------------------------------------------------

    #[test]
    fn block_shares_hand_matrix() {
        // Partition {0,1}, {2,3}. Diagonal entries (9, −9, …) are ignored.
        #[rustfmt::skip]
        let w = [
             9.0,  1.0, -2.0,  0.0,
             3.0, -9.0,  0.0,  0.5,
             0.0, -1.0,  9.0,  4.0,
             0.5,  0.0,  2.0,  9.0,
        ];
        // Within: |w01| + |w10| + |w23| + |w32| = 1 + 3 + 4 + 2 = 10.
        // Across: |w02| + |w13| + |w21| + |w30| = 2 + 0.5 + 1 + 0.5 = 4. Total 14.
        let s = block_shares(&w, 4, &[0, 0, 1, 1]).unwrap();
        assert!((s.within - 10.0 / 14.0).abs() < EPS);
        assert!((s.across - 4.0 / 14.0).abs() < EPS);
        assert!((s.within + s.across - 1.0).abs() < EPS);
        assert_eq!(s.total, 14.0);
        assert!((s.within_pair_fraction - 4.0 / 12.0).abs() < EPS);
        // Labels arbitrary; one community takes everything.
        let s = block_shares(&w, 4, &[7, 7, 7, 7]).unwrap();
        assert_eq!(
            (s.within, s.across, s.within_pair_fraction),
            (1.0, 0.0, 1.0)
        );
        let s = block_shares(&w, 4, &[0, 1, 2, 3]).unwrap();
        assert_eq!(
            (s.within, s.across, s.within_pair_fraction),
            (0.0, 1.0, 0.0)
        );
    }

    #[test]
    fn block_shares_degenerate() {
        let s = block_shares(&[0.0; 9], 3, &[0, 0, 1]).unwrap();
        assert_eq!((s.within, s.across, s.total), (0.0, 0.0, 0.0));
        // Only a diagonal: still all-zero off-diagonal.
        let s = block_shares(&[5.0], 1, &[0]).unwrap();
        assert_eq!(
            (s.within, s.across, s.within_pair_fraction),
            (0.0, 0.0, 0.0)
        );
        let s = block_shares(&[], 0, &[]).unwrap();
        assert_eq!(s.total, 0.0);
    }

    #[test]
    fn reorder_groups_by_size_then_label() {
        // Sizes: label 5 → 2, label 1 → 3, label 0 → 2, label 9 → 1.
        let p = [5, 1, 0, 1, 5, 9, 1, 0];
        let perm = reorder(&p);
        assert_eq!(perm, vec![1, 3, 6, 2, 7, 0, 4, 5]);
        let mut sorted = perm.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..p.len()).collect::<Vec<_>>());
        assert!(reorder(&[]).is_empty());
    }

    #[test]
    fn nmi_properties() {
        let a = [0, 0, 1, 1, 2, 2];
        assert!((normalized_mutual_information(&a, &[5, 5, 3, 3, 0, 0]) - 1.0).abs() < EPS);
        assert_eq!(normalized_mutual_information(&a, &[0; 6]), 0.0);
        assert_eq!(normalized_mutual_information(&[1; 4], &[2; 4]), 1.0);
        assert_eq!(normalized_mutual_information(&[], &[]), 1.0);
        // Independent 2×2 split: I = 0.
        let nmi = normalized_mutual_information(&[0, 0, 1, 1], &[0, 1, 0, 1]);
        assert!(nmi.abs() < EPS);
        let partial = normalized_mutual_information(&a, &[0, 0, 1, 1, 1, 1]);
        assert!(partial > 0.0 && partial < 1.0);
    }

    /// The module-doc example, run as a unit test (the doctest only builds in the real
    /// crate).
    #[test]
    fn module_doc_example() -> Result<(), CommunityError> {
        let n = 6;
        let mut w = vec![0.0; n * n];
        for &(i, j) in &TWO_TRIANGLES {
            w[i * n + j] = 1.0;
            w[j * n + i] = -1.0;
        }
        let graph = WeightedGraph::from_abs_weights(&w, n)?;
        let q = modularity(&graph, &[0, 0, 0, 1, 1, 1]);
        assert!((q - 5.0 / 14.0).abs() < 1e-12);
        let part = louvain(&graph, 7);
        assert_eq!(part.labels, vec![0, 0, 0, 1, 1, 1]);
        assert_eq!(part.num_communities, 2);
        assert!((part.modularity - 5.0 / 14.0).abs() < 1e-12);
        let shares = block_shares(&w, n, &part.labels)?;
        assert!((shares.within - 12.0 / 14.0).abs() < 1e-12);
        assert!((shares.across - 2.0 / 14.0).abs() < 1e-12);
        assert_eq!(reorder(&part.labels), vec![0, 1, 2, 3, 4, 5]);
        Ok(())
    }
}
