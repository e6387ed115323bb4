//! Lenses on a trained weight matrix, each with a null model (ARCHITECTURE.md §1.4).
//!
//! A *lens* is a non-negative matrix made from `W` and a way to find modules in it:
//!
//! | lens | matrix `L` | modules |
//! |---|---|---|
//! | `abs-louvain` | `\|W\|` | Louvain on `(L + Lᵀ)/2` |
//! | `pos-louvain` | `max(W, 0)` (excitation) | Louvain |
//! | `neg-louvain` | `max(−W, 0)` (inhibition) | Louvain |
//! | `abs-spectral` | `\|W\|` | Newman's leading-eigenvector bisection on `(L + Lᵀ)/2` |
//! | `abs-truth`, `pos-truth` | `\|W\|`, `max(W, 0)` | the modular task's ground-truth modules |
//!
//! Community detection is undirected, so `|W|` and `(|W| + |W|ᵀ)/2` give the same modules;
//! the shares below are measured on the directed `L`.
//!
//! Per lens and run: `Q` of the modules found, the **within share** (the share of
//! `Σ_{i≠j} L_ij` whose two ends lie in one module) and the **learned across share** (the
//! share of `L(W − W₀)`, the weight learning added, that crosses those modules). For the
//! ground-truth lenses the modules are known for inputs and outputs only, so the shares are
//! of the input→output *pathway* weight `P = L_OH L_HI + L_OI` (two steps through the hidden
//! neurons plus the direct synapses): within = the share of `P` that joins an input and an
//! output of the same sub-task.
//!
//! **Null model** ([`null_matrix`]). Each statistic comes with its value on `K` null
//! matrices: the lens matrix's entries permuted over the existing synapses, then rows and
//! columns rescaled until every neuron's in- and out-strength are the lens matrix's again.
//! That keeps the synapses that exist (every neuron's in- and out-degree), every neuron's
//! weighted in- and out-strength, and the distribution of weights up to that rescaling; it
//! destroys which neurons a weight joins. For `Q` and the within share the modules are found
//! again on every null matrix with the same method, so the chance level includes what the
//! method finds in structureless weights; for the learned across share the modules stay those
//! of the real `W` and only `W − W₀` is replaced. The p-value is
//! `(1 + #{null ≥ observed}) / (1 + K)` (one-sided; `K = 19` gives 0.05 at best).

use super::community::{self, CommunityError, WeightedGraph, normalized_mutual_information};
use crate::data::SplitMix64;
use serde::{Deserialize, Serialize};

/// Which matrix a lens looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Matrix {
    /// `|W|`.
    Abs,
    /// `max(W, 0)`.
    Pos,
    /// `max(−W, 0)`.
    Neg,
}

/// How a lens finds modules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Louvain (best of the configured restarts).
    Louvain,
    /// Newman's leading-eigenvector method with repeated bisection.
    Spectral,
    /// The modular task's ground truth.
    Truth,
}

/// A lens: a matrix and a method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lens {
    /// The matrix.
    pub matrix: Matrix,
    /// The method.
    pub method: Method,
}

impl Lens {
    /// The lenses every run is seen through.
    pub const DETECTED: [Lens; 4] = [
        Lens::new(Matrix::Abs, Method::Louvain),
        Lens::new(Matrix::Pos, Method::Louvain),
        Lens::new(Matrix::Neg, Method::Louvain),
        Lens::new(Matrix::Abs, Method::Spectral),
    ];
    /// The extra lenses of the modular task.
    pub const TRUTH: [Lens; 2] = [
        Lens::new(Matrix::Abs, Method::Truth),
        Lens::new(Matrix::Pos, Method::Truth),
    ];

    const fn new(matrix: Matrix, method: Method) -> Lens {
        Lens { matrix, method }
    }

    /// Its name, e.g. `abs-louvain`.
    pub fn name(&self) -> String {
        let m = match self.matrix {
            Matrix::Abs => "abs",
            Matrix::Pos => "pos",
            Matrix::Neg => "neg",
        };
        let k = match self.method {
            Method::Louvain => "louvain",
            Method::Spectral => "spectral",
            Method::Truth => "truth",
        };
        format!("{m}-{k}")
    }
}

/// The lens matrix of `w`.
pub fn lens_matrix(w: &[f64], m: Matrix) -> Vec<f64> {
    w.iter()
        .map(|&x| match m {
            Matrix::Abs => x.abs(),
            Matrix::Pos => x.max(0.0),
            Matrix::Neg => (-x).max(0.0),
        })
        .collect()
}

/// A value, its null distribution's mean and sd, and the one-sided p-value of
/// "observed ≥ null".
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tested {
    /// Observed.
    pub value: f64,
    /// Mean over the shuffles.
    pub null_mean: f64,
    /// Standard deviation over the shuffles.
    pub null_sd: f64,
    /// `(1 + #{null ≥ value}) / (1 + K)`.
    pub p: f64,
}

impl Tested {
    /// `value` against the `null` values.
    pub fn of(value: f64, null: &[f64]) -> Tested {
        let k = null.len() as f64;
        let mean = if null.is_empty() {
            f64::NAN
        } else {
            null.iter().sum::<f64>() / k
        };
        let sd = if null.len() > 1 {
            (null.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (k - 1.0)).sqrt()
        } else {
            0.0
        };
        let above = null.iter().filter(|&&x| x >= value).count();
        Tested {
            value,
            null_mean: mean,
            null_sd: sd,
            p: (1.0 + above as f64) / (1.0 + k),
        }
    }

    /// `value − null_mean`: how far above chance.
    pub fn excess(&self) -> f64 {
        self.value - self.null_mean
    }
}

/// One run seen through one lens.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LensResult {
    /// The lens.
    pub lens: Lens,
    /// Newman `Q` of the modules on the lens matrix (`NaN` for ground truth, where hidden
    /// neurons have no module).
    pub q: Tested,
    /// Modules found (2 for ground truth).
    pub modules: usize,
    /// Within share of the lens weight.
    pub within: Tested,
    /// Share of the lens weight of `W − W₀` across the modules.
    pub learned_across: Tested,
    /// Ground-truth lenses: NMI between the Louvain communities of the lens matrix,
    /// restricted to the input and output neurons, and the ground truth.
    pub truth_nmi: Option<Tested>,
}

/// What the lens analysis needs besides the matrices.
#[derive(Clone, Debug)]
pub struct LensSetup {
    /// Neurons.
    pub n: usize,
    /// Inputs (the first `n_in` neurons).
    pub n_in: usize,
    /// Outputs (the last `n_out` neurons).
    pub n_out: usize,
    /// Existing synapses, row-major.
    pub mask: Vec<bool>,
    /// Louvain restarts per matrix.
    pub restarts: usize,
    /// Shuffles of the null model.
    pub nulls: usize,
    /// Ground-truth module of every neuron (the modular task), or empty.
    pub truth: Vec<Option<usize>>,
}

/// Modules of the lens matrix `l`: labels and `Q`.
fn detect(
    l: &[f64],
    n: usize,
    method: Method,
    restarts: usize,
    seed: u64,
) -> Result<(Vec<usize>, f64), CommunityError> {
    let g = WeightedGraph::from_abs_weights(l, n)?;
    Ok(match method {
        Method::Spectral => {
            let labels = spectral(&g);
            let q = community::modularity(&g, &labels);
            (labels, q)
        }
        _ => {
            let seeds: Vec<u64> = (0..restarts.max(1) as u64)
                .map(|k| seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(k))
                .collect();
            let p = community::louvain_best(&g, &seeds);
            (p.labels, p.modularity)
        }
    })
}

/// Share of the off-diagonal mass of the non-negative `l` whose ends share a label.
fn within_share(l: &[f64], n: usize, labels: &[usize]) -> f64 {
    let (mut inside, mut all) = (0.0, 0.0);
    for i in 0..n {
        for j in 0..n {
            if i != j {
                let x = l[i * n + j];
                all += x;
                if labels[i] == labels[j] {
                    inside += x;
                }
            }
        }
    }
    if all > 0.0 { inside / all } else { 0.0 }
}

/// Within share of the input→output pathway weight `P = L_OH L_HI + L_OI` under the
/// ground-truth modules.
fn pathway_within(l: &[f64], s: &LensSetup) -> f64 {
    let n = s.n;
    let out0 = n - s.n_out;
    let (mut inside, mut all) = (0.0, 0.0);
    // Through the hidden neurons: t[h] = L_oh, then Σ_h t[h] L_hi.
    let mut via = vec![0.0; s.n_in];
    for o in out0..n {
        via.fill(0.0);
        for h in s.n_in..out0 {
            let a = l[o * n + h];
            if a != 0.0 {
                for (v, &b) in via.iter_mut().zip(&l[h * n..h * n + s.n_in]) {
                    *v += a * b;
                }
            }
        }
        for (i, v) in via.iter().enumerate() {
            let p = v + l[o * n + i];
            all += p;
            if s.truth[o] == s.truth[i] {
                inside += p;
            }
        }
    }
    if all > 0.0 { inside / all } else { 0.0 }
}

/// `1 − pathway_within`, or 0 when there is no pathway weight at all (as the detected lenses'
/// learned across share is 0 without learned weight).
fn pathway_across(l: &[f64], s: &LensSetup) -> f64 {
    let n = s.n;
    let any = (n - s.n_out..n).any(|o| l[o * n..(o + 1) * n].iter().any(|&x| x > 0.0));
    if any { 1.0 - pathway_within(l, s) } else { 0.0 }
}

/// NMI between the Louvain communities of `l` on the labelled neurons and the ground truth.
fn truth_nmi(l: &[f64], s: &LensSetup, seed: u64) -> Result<f64, CommunityError> {
    let (labels, _) = detect(l, s.n, Method::Louvain, s.restarts, seed)?;
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for (i, t) in s.truth.iter().enumerate() {
        if let Some(t) = t {
            a.push(labels[i]);
            b.push(*t);
        }
    }
    Ok(normalized_mutual_information(&a, &b))
}

/// See the trained `w` (with initial `w0`) through every lens, each against `s.nulls`
/// null matrices drawn from `seed` ([`null_matrix`]).
///
/// # Errors
/// A non-finite weight ([`CommunityError`]).
pub fn analyse_lenses(
    w: &[f64],
    w0: &[f64],
    s: &LensSetup,
    seed: u64,
) -> Result<Vec<LensResult>, CommunityError> {
    let dw: Vec<f64> = w.iter().zip(w0).map(|(a, b)| a - b).collect();
    let mut lenses: Vec<Lens> = Lens::DETECTED.to_vec();
    if !s.truth.is_empty() {
        lenses.extend(Lens::TRUTH);
    }
    lenses
        .iter()
        .enumerate()
        .map(|(k, &lens)| analyse_lens(lens, w, &dw, s, seed.wrapping_add(k as u64 * 7919)))
        .collect()
}

/// One lens: the statistics of `w` and `dw = W − W₀`, and of their null matrices.
fn analyse_lens(
    lens: Lens,
    w: &[f64],
    dw: &[f64],
    s: &LensSetup,
    seed: u64,
) -> Result<LensResult, CommunityError> {
    let n = s.n;
    let l = lens_matrix(w, lens.matrix);
    let ld = lens_matrix(dw, lens.matrix);
    let mut rng = SplitMix64::new(seed ^ 0x6e75_6c6c_6d6f_6465);
    let (mut q_null, mut within_null, mut across_null, mut nmi_null) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    if lens.method == Method::Truth {
        let within = pathway_within(&l, s);
        let across = pathway_across(&ld, s);
        let nmi = truth_nmi(&l, s, seed)?;
        for k in 0..s.nulls {
            let ln = null_matrix(&l, &s.mask, n, &mut rng);
            let ldn = null_matrix(&ld, &s.mask, n, &mut rng);
            within_null.push(pathway_within(&ln, s));
            across_null.push(pathway_across(&ldn, s));
            nmi_null.push(truth_nmi(&ln, s, seed.wrapping_add(k as u64 + 1))?);
        }
        return Ok(LensResult {
            lens,
            q: Tested::of(f64::NAN, &[]),
            modules: 2,
            within: Tested::of(within, &within_null),
            learned_across: Tested::of(across, &across_null),
            truth_nmi: Some(Tested::of(nmi, &nmi_null)),
        });
    }
    let (labels, q) = detect(&l, n, lens.method, s.restarts, seed)?;
    let modules = labels.iter().copied().max().map_or(0, |m| m + 1);
    let across = |ld: &[f64]| {
        if ld.iter().any(|&x| x > 0.0) {
            1.0 - within_share(ld, n, &labels)
        } else {
            0.0
        }
    };
    for k in 0..s.nulls {
        let ln = null_matrix(&l, &s.mask, n, &mut rng);
        let (ln_labels, ln_q) = detect(
            &ln,
            n,
            lens.method,
            s.restarts,
            seed.wrapping_add(k as u64 + 1),
        )?;
        q_null.push(ln_q);
        within_null.push(within_share(&ln, n, &ln_labels));
        across_null.push(across(&null_matrix(&ld, &s.mask, n, &mut rng)));
    }
    Ok(LensResult {
        lens,
        q: Tested::of(q, &q_null),
        modules,
        within: Tested::of(within_share(&l, n, &labels), &within_null),
        learned_across: Tested::of(across(&ld), &across_null),
        truth_nmi: None,
    })
}

/// A null matrix of the non-negative lens matrix `l`: its entries permuted at random over the
/// synapses that can carry lens weight (existing, off the diagonal, from a neuron with some
/// outgoing to one with some incoming lens weight: under Dale's law an inhibitory neuron has
/// no excitatory weight to give), then rows and columns rescaled in turn (Sinkhorn balancing)
/// until every neuron's in-strength and out-strength are `l`'s again (to 1e-9 relative, at
/// most 200 rounds). Which neurons a weight joins is destroyed; the strengths are kept and the
/// distribution of weights up to the rescaling.
pub fn null_matrix(l: &[f64], mask: &[bool], n: usize, rng: &mut SplitMix64) -> Vec<f64> {
    let row_target: Vec<f64> = (0..n)
        .map(|i| (0..n).filter(|&j| j != i).map(|j| l[i * n + j]).sum())
        .collect();
    let col_target: Vec<f64> = (0..n)
        .map(|j| (0..n).filter(|&i| i != j).map(|i| l[i * n + j]).sum())
        .collect();
    let slots: Vec<usize> = (0..n * n)
        .filter(|&k| {
            let (i, j) = (k / n, k % n);
            i != j && mask[k] && row_target[i] > 0.0 && col_target[j] > 0.0
        })
        .collect();
    let mut values: Vec<f64> = slots.iter().map(|&k| l[k]).collect();
    for a in (1..values.len()).rev() {
        let b = rng.below(a as u64 + 1) as usize;
        values.swap(a, b);
    }
    let mut out = vec![0.0; n * n];
    for (&k, &v) in slots.iter().zip(&values) {
        out[k] = v;
    }
    for _ in 0..200 {
        for i in 0..n {
            let row = &mut out[i * n..(i + 1) * n];
            let sum: f64 = row.iter().sum();
            let f = if sum > 0.0 { row_target[i] / sum } else { 0.0 };
            row.iter_mut().for_each(|x| *x *= f);
        }
        let mut worst = 0.0f64;
        let mut col = vec![0.0; n];
        for i in 0..n {
            for (c, x) in col.iter_mut().zip(&out[i * n..(i + 1) * n]) {
                *c += x;
            }
        }
        for j in 0..n {
            if col[j] == 0.0 {
                continue;
            }
            let f = col_target[j] / col[j];
            worst = worst.max((f - 1.0).abs());
            for i in 0..n {
                out[i * n + j] *= f;
            }
        }
        if worst < 1e-9 {
            break;
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Newman's leading-eigenvector method
// ---------------------------------------------------------------------------------------

/// Newman (2006, PNAS 103:8577) spectral modularity maximisation: split every module in two
/// by the signs of the leading eigenvector of its generalised modularity matrix
/// `B⁽ᵍ⁾_ij = A_ij − k_i k_j / 2m − δ_ij Σ_{l∈g} (A_il − k_i k_l / 2m)`, as long as the
/// split raises `Q`. The eigenvector comes from power iteration on `B⁽ᵍ⁾ + cI` (`c` the
/// largest absolute row sum, so the shifted matrix is positive semi-definite) from a fixed
/// start vector: deterministic, no random numbers. No Kernighan–Lin refinement.
pub fn spectral(g: &WeightedGraph) -> Vec<usize> {
    let n = g.num_nodes();
    let two_m = g.two_m();
    let mut labels = vec![0usize; n];
    if n < 2 || two_m <= 0.0 {
        return labels;
    }
    let mut dense = vec![0.0; n * n];
    for i in 0..n {
        for (j, a) in g.neighbors(i) {
            dense[i * n + j] = a;
        }
    }
    let k: Vec<f64> = (0..n).map(|i| g.degree(i)).collect();
    let mut next_label = 1;
    let mut queue = vec![(0..n).collect::<Vec<usize>>()];
    while let Some(group) = queue.pop() {
        let Some((a, b)) = bisect(&dense, &k, two_m, n, &group) else {
            continue;
        };
        for &i in &b {
            labels[i] = next_label;
        }
        next_label += 1;
        queue.push(a);
        queue.push(b);
    }
    labels
}

/// Split `group` in two if that raises `Q` (returns the two halves).
fn bisect(
    a: &[f64],
    k: &[f64],
    two_m: f64,
    n: usize,
    group: &[usize],
) -> Option<(Vec<usize>, Vec<usize>)> {
    let m = group.len();
    if m < 2 {
        return None;
    }
    // B⁽ᵍ⁾ restricted to the group, dense (m × m).
    let mut b = vec![0.0; m * m];
    for (x, &i) in group.iter().enumerate() {
        let mut row_sum = 0.0;
        for (y, &j) in group.iter().enumerate() {
            let v = a[i * n + j] - k[i] * k[j] / two_m;
            b[x * m + y] = v;
            row_sum += v;
        }
        b[x * m + x] -= row_sum;
    }
    let c = (0..m)
        .map(|x| b[x * m..(x + 1) * m].iter().map(|v| v.abs()).sum::<f64>())
        .fold(0.0, f64::max);
    // Fixed start: positive entries in [0.5, 1.5) that vary with position, so that the start
    // is not the all-ones vector (which lies in B⁽ᵍ⁾'s null space).
    let mut v: Vec<f64> = (0..m)
        .map(|x| 1.0 + ((x * 7919) % 101) as f64 / 101.0 - 0.5)
        .collect();
    let mut nv = vec![0.0; m];
    for _ in 0..2000 {
        for x in 0..m {
            nv[x] = c * v[x]
                + b[x * m..(x + 1) * m]
                    .iter()
                    .zip(&v)
                    .map(|(p, q)| p * q)
                    .sum::<f64>();
        }
        let norm = nv.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm == 0.0 {
            return None;
        }
        let mut delta = 0.0f64;
        for x in 0..m {
            let y = nv[x] / norm;
            delta = delta.max((y - v[x]).abs());
            v[x] = y;
        }
        if delta < 1e-10 {
            break;
        }
    }
    let s: Vec<f64> = v
        .iter()
        .map(|&x| if x >= 0.0 { 1.0 } else { -1.0 })
        .collect();
    // ΔQ = sᵀ B⁽ᵍ⁾ s / (4m) = sᵀ B⁽ᵍ⁾ s / (2 · 2m).
    let mut gain = 0.0;
    for x in 0..m {
        gain += s[x]
            * b[x * m..(x + 1) * m]
                .iter()
                .zip(&s)
                .map(|(p, q)| p * q)
                .sum::<f64>();
    }
    if gain / (2.0 * two_m) <= 1e-10 {
        return None;
    }
    let (mut left, mut right) = (Vec::new(), Vec::new());
    for (x, &i) in group.iter().enumerate() {
        if s[x] > 0.0 {
            left.push(i);
        } else {
            right.push(i);
        }
    }
    if left.is_empty() || right.is_empty() {
        return None;
    }
    Some((left, right))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three planted blocks of 6, strong inside, weak across.
    fn planted(n: usize, block: usize) -> Vec<f64> {
        let mut w = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                if i != j {
                    let x = 0.01 + ((i * 31 + j * 17) % 7) as f64 * 0.001;
                    w[i * n + j] = if i / block == j / block { 1.0 + x } else { x };
                }
            }
        }
        w
    }

    #[test]
    fn spectral_finds_planted_blocks() {
        let n = 18;
        let w = planted(n, 6);
        let g = WeightedGraph::from_abs_weights(&w, n).unwrap();
        let labels = spectral(&g);
        let truth: Vec<usize> = (0..n).map(|i| i / 6).collect();
        assert!(
            (normalized_mutual_information(&labels, &truth) - 1.0).abs() < 1e-12,
            "{labels:?}"
        );
        // Nothing to split: one module.
        let flat: Vec<f64> = (0..n * n)
            .map(|k| if k / n == k % n { 0.0 } else { 1.0 })
            .collect();
        let g = WeightedGraph::from_abs_weights(&flat, n).unwrap();
        assert!(spectral(&g).iter().all(|&l| l == 0));
    }

    #[test]
    fn null_keeps_strengths_and_mask() {
        let n = 7;
        let mask: Vec<bool> = (0..n * n).map(|k| k / n != k % n && k / n >= 2).collect();
        let w: Vec<f64> = (0..n * n)
            .map(|k| if mask[k] { 1.0 + k as f64 } else { 0.0 })
            .collect();
        let s = null_matrix(&w, &mask, n, &mut SplitMix64::new(3));
        assert_ne!(s, w);
        for i in 0..n {
            let row = |m: &[f64]| m[i * n..(i + 1) * n].iter().sum::<f64>();
            let col = |m: &[f64]| (0..n).map(|r| m[r * n + i]).sum::<f64>();
            assert!(
                (row(&s) - row(&w)).abs() < 1e-6 * row(&w).max(1.0),
                "in-strength of {i}"
            );
            assert!(
                (col(&s) - col(&w)).abs() < 1e-6 * col(&w).max(1.0),
                "out-strength of {i}"
            );
            for j in 0..n {
                if !mask[i * n + j] {
                    assert_eq!(s[i * n + j], 0.0, "no weight moves onto a missing synapse");
                }
            }
        }
    }

    #[test]
    fn planted_blocks_beat_the_null() {
        let n = 18;
        let w = planted(n, 6);
        let w0 = vec![0.0; n * n];
        let mask: Vec<bool> = (0..n * n).map(|k| k / n != k % n).collect();
        let setup = LensSetup {
            n,
            n_in: 0,
            n_out: 0,
            mask,
            restarts: 1,
            nulls: 19,
            truth: vec![],
        };
        let r = analyse_lenses(&w, &w0, &setup, 5).unwrap();
        assert_eq!(r.len(), 4);
        let abs = &r[0];
        assert_eq!(abs.lens.name(), "abs-louvain");
        assert_eq!(abs.modules, 3);
        assert!(abs.within.value > 0.95 && abs.within.p <= 0.05, "{abs:?}");
        assert!(abs.q.value > abs.q.null_mean && abs.q.p <= 0.05);
        // All weights positive: the inhibitory lens sees nothing.
        assert_eq!(r[2].within.value, 0.0);
        assert_eq!(r[3].lens.name(), "abs-spectral");
        assert!(r[3].within.p <= 0.05);
        // Learning put all of W there, so W − W₀ = W: little crosses the modules.
        assert!(abs.learned_across.value < 0.05);
        assert!(abs.learned_across.p > 0.5, "{:?}", abs.learned_across);
    }

    #[test]
    fn ground_truth_pathways() {
        // 2 inputs, 2 hidden, 2 outputs; module 0 = {in 0, out 4}, module 1 = {in 1, out 5}.
        let n = 6;
        let mut w = vec![0.0; n * n];
        w[2 * n] = 1.0; // in 0 → h 2
        w[3 * n + 1] = 1.0; // in 1 → h 3
        w[4 * n + 2] = 1.0; // h 2 → out 4
        w[5 * n + 3] = 1.0; // h 3 → out 5
        let s = LensSetup {
            n,
            n_in: 2,
            n_out: 2,
            mask: (0..n * n).map(|k| k / n != k % n && k / n >= 2).collect(),
            restarts: 1,
            nulls: 0,
            truth: super::super::protocol::truth_modules(n, 2, 2),
        };
        assert_eq!(pathway_within(&w, &s), 1.0);
        w[5 * n + 2] = 1.0; // h 2 → out 5 as well: half of in 0's pathways cross.
        assert!((pathway_within(&w, &s) - 2.0 / 3.0).abs() < 1e-12);
        let t = Tested::of(0.5, &[0.1, 0.6, 0.2, 0.3]);
        assert_eq!(t.p, 2.0 / 5.0);
        assert!((t.null_mean - 0.3).abs() < 1e-12);
    }
}
