//! The rule on layered networks: one firing sweep, discrete retrograde credit steps, local
//! plasticity.

use super::activation::{Activation, Balance};
use super::loss::Loss;
use rand::RngExt;
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;

/// One synaptic layer: the weights `w_ij` from every neuron `j` of the layer below to every
/// neuron `i` of this layer, the biases `b_i`, and the activation and balance function of the
/// postsynaptic neurons.
#[derive(Clone, Debug)]
pub struct Layer {
    /// Presynaptic (input) width.
    pub n_in: usize,
    /// Postsynaptic (output) width.
    pub n_out: usize,
    /// Weights, row-major `n_out × n_in`: `w[i * n_in + j] = w_ij`. Row `i` is the synapse
    /// row of neuron `i`; the retrograde pass walks the same rows.
    pub w: Vec<f64>,
    /// Biases `b_i`.
    pub b: Vec<f64>,
    /// Activation `f` of the postsynaptic neurons.
    pub act: Activation,
    /// Balance function `g` of the postsynaptic neurons.
    pub balance: Balance,
}

impl Layer {
    /// Row `i` of the weight matrix (the synapse row of postsynaptic neuron `i`).
    #[inline]
    pub fn row(&self, i: usize) -> &[f64] {
        &self.w[i * self.n_in..(i + 1) * self.n_in]
    }
}

/// A layered network: neuron layers `0..=m` where layer 0 is the clamped input, joined by `m`
/// synaptic layers.
#[derive(Clone, Debug)]
pub struct LayeredNet {
    /// The `m` synaptic layers, bottom to top.
    pub layers: Vec<Layer>,
}

/// Everything a sample leaves in the network: balances, rates, credits and the messages `δ`.
#[derive(Clone, Debug, Default)]
pub struct LayeredState {
    /// Rates per neuron layer, `r[0]` the input (len `m + 1`).
    pub r: Vec<Vec<f64>>,
    /// Balances `u` per synaptic layer (len `m`; `u[l]` belongs to neuron layer `l + 1`).
    pub u: Vec<Vec<f64>>,
    /// Credits per neuron layer (len `m + 1`); `c[m]` is the output clamp.
    pub c: Vec<Vec<f64>>,
    /// Retrograde messages `δ_i = g(u_i) c_i` per synaptic layer (len `m`).
    pub delta: Vec<Vec<f64>>,
}

/// How many retrograde steps the credit phase runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Steps {
    /// Until no credit of a plastic (non-input) neuron changes any more: `m − 1` steps in an
    /// `m`-layer net started from zero. The clamped input layer's credit, which drives no
    /// plasticity, is left untouched.
    UntilSettled,
    /// Exactly `k` synchronous steps (fewer than `m − 1` breaks the equilibrium requirement;
    /// `k = m` also delivers credit to the input layer).
    Exactly(usize),
}

/// What the credit phase did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CreditReport {
    /// Synchronous retrograde steps taken.
    pub steps: usize,
    /// Whether the credits had settled (a further step would change nothing).
    pub settled: bool,
}

impl LayeredNet {
    /// A network with the given neuron-layer sizes (input first), activations per synaptic
    /// layer, weights drawn uniformly from `±sqrt(6 / (n_in + n_out))` (Glorot) with a
    /// portable `Xoshiro256PlusPlus` seeded by `seed`, and zero biases. Value-stable: the same
    /// sizes and seed give the same weights on every platform and release of accord.
    pub fn glorot(sizes: &[usize], acts: &[Activation], seed: u64) -> Self {
        assert!(
            sizes.len() >= 2,
            "a layered net needs at least an input and an output layer"
        );
        assert_eq!(
            acts.len(),
            sizes.len() - 1,
            "one activation per synaptic layer"
        );
        let mut ws: Vec<Vec<f64>> = sizes
            .windows(2)
            .map(|s| Vec::with_capacity(s[0] * s[1]))
            .collect();
        glorot_weights(sizes, seed, |l, _, _, w| ws[l].push(w));
        let layers = sizes
            .windows(2)
            .zip(acts)
            .zip(ws)
            .map(|((s, &act), w)| {
                let (n_in, n_out) = (s[0], s[1]);
                Layer {
                    n_in,
                    n_out,
                    w,
                    b: vec![0.0; n_out],
                    act,
                    balance: Balance::Exact,
                }
            })
            .collect();
        LayeredNet { layers }
    }

    /// Number of synaptic layers `m`.
    pub fn depth(&self) -> usize {
        self.layers.len()
    }

    /// Neuron-layer sizes, input first.
    pub fn sizes(&self) -> Vec<usize> {
        let mut s = vec![self.layers[0].n_in];
        s.extend(self.layers.iter().map(|l| l.n_out));
        s
    }

    /// Number of parameters (weights and biases).
    pub fn n_params(&self) -> usize {
        self.layers.iter().map(|l| l.w.len() + l.b.len()).sum()
    }

    /// A zeroed state shaped for this network.
    pub fn new_state(&self) -> LayeredState {
        let sizes = self.sizes();
        LayeredState {
            r: sizes.iter().map(|&n| vec![0.0; n]).collect(),
            u: sizes[1..].iter().map(|&n| vec![0.0; n]).collect(),
            c: sizes.iter().map(|&n| vec![0.0; n]).collect(),
            delta: sizes[1..].iter().map(|&n| vec![0.0; n]).collect(),
        }
    }

    /// Firing equilibrium: one bottom-up sweep `u = W r + b`, `r = f(u)` with the input clamped
    /// to `x`.
    ///
    /// Event-driven where it pays: when fewer than half of a layer's inputs are active
    /// (non-zero), only the active ones are read (the summation order is then the order of the
    /// active inputs; the choice is a deterministic function of the input).
    pub fn fire(&self, x: &[f64], s: &mut LayeredState) {
        s.r[0].copy_from_slice(x);
        let mut active = Vec::new();
        for (l, layer) in self.layers.iter().enumerate() {
            let (below, above) = s.r.split_at_mut(l + 1);
            let r_in = &below[l];
            let r_out = &mut above[0];
            let u = &mut s.u[l];
            let sparse = active_inputs(r_in, &mut active);
            for i in 0..layer.n_out {
                let row = layer.row(i);
                let ui = if sparse {
                    active.iter().map(|&j| row[j] * r_in[j]).sum::<f64>()
                } else {
                    dot(row, r_in)
                } + layer.b[i];
                u[i] = ui;
                r_out[i] = layer.act.f(ui);
            }
        }
    }

    /// The output rates after [`fire`](Self::fire).
    pub fn output<'a>(&self, s: &'a LayeredState) -> &'a [f64] {
        &s.r[self.depth()]
    }

    /// Credit phase. Clamps the output credit to `c = −∂L/∂r` for class `label`, then runs
    /// synchronous retrograde steps `c_j ← Σ_i w_ij g(u_i) c_i` (every non-output layer updated
    /// from the previous step's credits of the layer above). With `reset`, credits start from
    /// zero; otherwise they start from whatever the state holds (stale credits of an earlier
    /// sample). Event-driven: a layer whose upper neighbour did not change is not recomputed,
    /// so a settled run from zero costs one top-down sweep.
    ///
    /// After `k` steps from zero, the credits of neuron layers `m − k ..= m` are exact and the
    /// rest still zero: the first synaptic layer's update is exact from `k = m − 1` on.
    pub fn credit(
        &self,
        s: &mut LayeredState,
        label: usize,
        loss: Loss,
        steps: Steps,
        reset: bool,
    ) -> CreditReport {
        let m = self.depth();
        if reset {
            for c in &mut s.c[..m] {
                c.fill(0.0);
            }
        }
        loss.output_credit(&s.r[m], label, &mut s.c[m]);
        // dirty[l]: the credit of neuron layer l changed in the previous step. A change of the
        // input layer's credit (l = 0) triggers nothing further.
        let mut dirty = vec![!reset; m + 1];
        dirty[m] = true;
        let cap = match steps {
            Steps::UntilSettled => usize::MAX,
            Steps::Exactly(k) => k,
        };
        // δ of the top layer is needed by plasticity whatever the number of steps.
        self.refresh_delta(s, m - 1);
        // Lowest neuron layer whose change still triggers work.
        let first = if steps == Steps::UntilSettled { 2 } else { 1 };
        let mut taken = 0;
        while taken < cap && dirty[first..].iter().any(|&d| d) {
            let mut next = vec![false; m + 1];
            // Synchronous: compute every layer from the previous step's credits. Going bottom-up
            // reads c[l + 1] before it is overwritten in this step.
            for l in 0..m {
                // The input layer is clamped to the data: its credit drives no plasticity, so
                // it is computed only when an exact step count asks for it.
                if !dirty[l + 1] || (l == 0 && steps == Steps::UntilSettled) {
                    continue;
                }
                // δ of neuron layer l + 1 from its credit as of the previous step.
                self.refresh_delta(s, l);
                let layer = &self.layers[l];
                let mut new_c = vec![0.0; layer.n_in];
                for (i, &d) in s.delta[l].iter().enumerate() {
                    if d != 0.0 {
                        axpy(d, layer.row(i), &mut new_c);
                    }
                }
                if new_c != s.c[l] {
                    s.c[l] = new_c;
                    next[l] = true;
                }
            }
            dirty = next;
            taken += 1;
        }
        for l in 0..m {
            self.refresh_delta(s, l);
        }
        CreditReport {
            steps: taken,
            settled: !dirty[first..].iter().any(|&d| d),
        }
    }

    /// Recompute `δ = g(u) ⊙ c` of neuron layer `l + 1` (synaptic layer `l`).
    fn refresh_delta(&self, s: &mut LayeredState, l: usize) {
        let layer = &self.layers[l];
        for ((d, &u), &c) in s.delta[l].iter_mut().zip(&s.u[l]).zip(&s.c[l + 1]) {
            *d = if c == 0.0 {
                0.0
            } else {
                layer.balance.g(layer.act, u) * c
            };
        }
    }

    /// Plasticity for one sample: `Δw_ij = η δ_i r_j`, `Δb_i = η δ_i`, applied at once.
    /// Event-driven like [`fire`](Self::fire): a silent presynaptic neuron's synapses are not
    /// touched (their update is zero).
    pub fn apply_plasticity(&mut self, s: &LayeredState, lr: f64) {
        let mut active = Vec::new();
        for (l, layer) in self.layers.iter_mut().enumerate() {
            let r_in = &s.r[l];
            let n_in = layer.n_in;
            let sparse = active_inputs(r_in, &mut active);
            for (i, &d) in s.delta[l].iter().enumerate() {
                if d == 0.0 {
                    continue;
                }
                let k = lr * d;
                let row = &mut layer.w[i * n_in..(i + 1) * n_in];
                if sparse {
                    for &j in &active {
                        row[j] += k * r_in[j];
                    }
                } else {
                    axpy(k, r_in, row);
                }
                layer.b[i] += k;
            }
        }
    }

    /// Add this sample's `δ_i r_j` and `δ_i` to a batch accumulator.
    pub fn accumulate(&self, s: &LayeredState, acc: &mut Updates) {
        for (l, layer) in self.layers.iter().enumerate() {
            let r_in = &s.r[l];
            let n_in = layer.n_in;
            for (i, &d) in s.delta[l].iter().enumerate() {
                if d == 0.0 {
                    continue;
                }
                axpy(d, r_in, &mut acc.w[l][i * n_in..(i + 1) * n_in]);
                acc.b[l][i] += d;
            }
        }
        acc.samples += 1;
    }

    /// Apply an accumulated batch: `Δw = η · mean_batch(δ r)`, then clear the accumulator.
    pub fn apply_updates(&mut self, acc: &mut Updates, lr: f64) {
        if acc.samples == 0 {
            return;
        }
        let k = lr / acc.samples as f64;
        for (l, layer) in self.layers.iter_mut().enumerate() {
            axpy(k, &acc.w[l], &mut layer.w);
            axpy(k, &acc.b[l], &mut layer.b);
        }
        acc.clear();
    }

    /// The update this sample's state asks for, `η δ_i r_j` and `η δ_i`, without applying it.
    pub fn updates(&self, s: &LayeredState, lr: f64) -> Updates {
        let mut acc = Updates::zeros(self);
        self.accumulate(s, &mut acc);
        for v in acc.w.iter_mut().chain(acc.b.iter_mut()) {
            v.iter_mut().for_each(|x| *x *= lr);
        }
        acc
    }
}

/// Weight and bias updates shaped like a network, used for batches and comparisons.
#[derive(Clone, Debug, PartialEq)]
pub struct Updates {
    /// Per synaptic layer, row-major like [`Layer::w`].
    pub w: Vec<Vec<f64>>,
    /// Per synaptic layer.
    pub b: Vec<Vec<f64>>,
    /// Samples accumulated.
    pub samples: usize,
}

impl Updates {
    /// Zeros shaped like `net`.
    pub fn zeros(net: &LayeredNet) -> Self {
        Updates {
            w: net.layers.iter().map(|l| vec![0.0; l.w.len()]).collect(),
            b: net.layers.iter().map(|l| vec![0.0; l.b.len()]).collect(),
            samples: 0,
        }
    }

    /// Reset to zero.
    pub fn clear(&mut self) {
        for v in self.w.iter_mut().chain(self.b.iter_mut()) {
            v.fill(0.0);
        }
        self.samples = 0;
    }
}

/// Collect the indices of non-zero entries of `r` into `active`; true when they are fewer
/// than half (the sparse path is worth taking).
fn active_inputs(r: &[f64], active: &mut Vec<usize>) -> bool {
    active.clear();
    active.extend(
        r.iter()
            .enumerate()
            .filter(|(_, v)| **v != 0.0)
            .map(|(j, _)| j),
    );
    2 * active.len() < r.len()
}

/// Dot product, written so that the compiler vectorises it (four independent partial sums).
#[inline]
pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0.0f64; 4];
    let chunks = a.len() / 4;
    for k in 0..chunks {
        for t in 0..4 {
            acc[t] += a[4 * k + t] * b[4 * k + t];
        }
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for k in 4 * chunks..a.len() {
        s += a[k] * b[k];
    }
    s
}

/// `y += a x`.
#[inline]
pub(crate) fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
    debug_assert_eq!(x.len(), y.len());
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

/// The initial weights of [`LayeredNet::glorot`] without holding them: `f(l, i, j, w_ij)` for
/// every synaptic layer `l`, postsynaptic neuron `i` and presynaptic neuron `j`, in the order
/// the generator draws them (layer by layer, row `i` by row). Each weight is uniform in
/// `±√(6 / (n_in + n_out))` from the portable `Xoshiro256PlusPlus` seeded with `seed`; the
/// emulator fills a chip's synapse rows from this stream without an `f64` copy of the net.
pub fn glorot_weights(sizes: &[usize], seed: u64, mut f: impl FnMut(usize, usize, usize, f64)) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    for (l, s) in sizes.windows(2).enumerate() {
        let (n_in, n_out) = (s[0], s[1]);
        let a = (6.0 / (n_in + n_out) as f64).sqrt();
        for i in 0..n_out {
            for j in 0..n_in {
                f(l, i, j, a * (2.0 * rng.random::<f64>() - 1.0));
            }
        }
    }
}
