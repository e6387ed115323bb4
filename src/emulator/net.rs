//! A layered network placed on a chip: synapse rows in the postsynaptic cores, neuron state, and
//! the three phases of a sample (fire, credit, plasticity) as events on cores and the mesh.

use super::datapath::{Datapath, purpose};
use crate::chip::{Action, ChipModel};
use crate::ledger::{Ledger, N_ACTIONS, VarCounters};
use crate::mapping::{Chunk, Mapping};
use crate::rule::{Activation, LayeredNet, Loss};
use accord_firmware::arith::{CounterRng, RandomBits};

/// How neurons fire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "mode")]
pub enum FiringMode {
    /// One event per active neuron carrying its rate as a payload (Loihi 2 graded spikes).
    Graded,
    /// Integrate-and-fire neurons (threshold 1, reset by subtraction) run `ticks` ticks per
    /// sample; the rate is the spike count over `ticks`. The output layer, when linear, is a
    /// non-spiking integrator read out as its mean input.
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
    /// A Bernoulli draw per input per tick from a counter-based generator keyed by (sample,
    /// input, tick).
    Poisson,
}

/// The learning rule run on the chip. The balance rule is the subject; the other two are the
/// comparison rules of DESIGN §2, run on the same chip model so that their costs compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChipRule {
    /// The E-I balance rule: the post core aggregates `m_j = Σ_i w_ij δ_i` over its own synapse
    /// rows and sends one retrograde packet per (axon, core); no second weight copy.
    Balance,
    /// Backprop as a chip would run it without a retrograde primitive: a transposed copy `Wᵀ`
    /// lives in the presynaptic core, `δ_i` travels to every presynaptic core (one packet per
    /// (neuron, pre core)), the pre core sums `Σ_i w_ij δ_i` over its copy, and every weight
    /// update is written to both copies (two `weight_update`s). Numerically the same gradient.
    Backprop,
    /// Feedback alignment: like backprop's traffic, but the pre core holds a fixed random matrix
    /// `B` instead of `Wᵀ` (no second write; different numbers).
    FeedbackAlignment,
}

/// Latency of each action in integer picoseconds (0 where the chip gives none). Integer time
/// keeps sums exact and independent of the order samples are merged in.
pub(crate) type Latencies = [u64; N_ACTIONS];

/// What one sample did.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SampleOutcome {
    /// Loss of the outputs (before any update).
    pub loss: f64,
    /// Whether the predicted class was right.
    pub correct: bool,
    /// Modelled hardware time of the sample, ps.
    pub time_ps: u64,
}

/// NeuroBench workload counts accumulated over samples.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Workload {
    /// Samples.
    pub samples: u64,
    /// Dense synaptic operations (every synapse every step).
    pub dense_synops: u64,
    /// Effective synaptic operations with graded (non-binary) inputs: MACs.
    pub effective_macs: u64,
    /// Effective synaptic operations with binary (spike) inputs: ACs.
    pub effective_acs: u64,
    /// Neuron outputs that were zero (over layers, steps and samples).
    pub zero_activations: u64,
    /// Neuron outputs counted.
    pub activations: u64,
    /// Neuron state updates that changed the membrane.
    pub membrane_updates: u64,
    /// Neuron updates performed (event-driven: active + idle visits).
    pub neuron_ops: u64,
    /// Neuron updates a dense engine would perform (every neuron every step).
    pub neuron_dense_ops: u64,
}

impl Workload {
    /// Add another workload.
    pub fn merge(&mut self, o: &Workload) {
        self.samples += o.samples;
        self.dense_synops += o.dense_synops;
        self.effective_macs += o.effective_macs;
        self.effective_acs += o.effective_acs;
        self.zero_activations += o.zero_activations;
        self.activations += o.activations;
        self.membrane_updates += o.membrane_updates;
        self.neuron_ops += o.neuron_ops;
        self.neuron_dense_ops += o.neuron_dense_ops;
    }
}

/// Counts a sample leaves behind: primitive actions, format events, workload, dropped messages.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tally {
    /// Primitive actions.
    pub ledger: Ledger,
    /// Format events.
    pub vars: VarCounters,
    /// NeuroBench workload.
    pub work: Workload,
    /// Retrograde messages dropped by the message threshold.
    pub dropped_messages: u64,
    /// Modelled hardware time, ps.
    pub time_ps: u64,
    /// Biological time: firing ticks (1 per layer in graded mode).
    pub ticks: u64,
    /// Biological time: retrograde steps.
    pub retro_steps: u64,
    /// Plasticity events (weight-update phases).
    pub plasticity_events: u64,
    /// Router hops taken by retrograde packets (part of the `hop` count).
    pub retro_hops: u64,
}

impl Tally {
    /// Add another tally.
    pub fn merge(&mut self, o: &Tally) {
        self.ledger.merge(&o.ledger);
        self.vars.merge(&o.vars);
        self.work.merge(&o.work);
        self.dropped_messages += o.dropped_messages;
        self.time_ps += o.time_ps;
        self.ticks += o.ticks;
        self.retro_steps += o.retro_steps;
        self.plasticity_events += o.plasticity_events;
        self.retro_hops += o.retro_hops;
    }
}

/// A layered network on a chip.
#[derive(Clone, Debug)]
pub struct ChipNet<D: Datapath + Clone> {
    /// The arithmetic.
    pub dp: D,
    /// Neuron-layer sizes, input first.
    pub sizes: Vec<usize>,
    /// Activation per synaptic layer.
    pub acts: Vec<Activation>,
    /// Weights: per synaptic layer `l`, per chunk (core) of neuron layer `l + 1`, the synapse
    /// rows of that core, axon-major: `w[l][k][j * len + i]` is `w_(start+i),j`.
    pub w: Vec<Vec<Vec<D::V>>>,
    /// Biases per synaptic layer.
    pub b: Vec<Vec<D::V>>,
    chunks: Vec<Vec<Chunk>>,
    n_dest: Vec<u64>,
    fwd_hops: Vec<Vec<u64>>,
    max_fwd_hops: Vec<u32>,
    retro_hops: Vec<Vec<Vec<u32>>>,
    mode: FiringMode,
    loss: Loss,
    lat: Latencies,
    threads: usize,
    /// Minimum synaptic ops in a phase before cores are simulated on several threads.
    pub par_threshold: u64,
    seed: u64,
    rule: ChipRule,
    /// Feedback matrices (feedback alignment only), laid out like `w`.
    fb: Vec<Vec<Vec<D::V>>>,
    /// Per synaptic layer `l`, per core of neuron layer `l + 1`: total hops to every core of
    /// neuron layer `l`, and the longest such route (credit transport of backprop / FA).
    pre_hops: Vec<Vec<(u64, u32)>>,
    r: Vec<Vec<D::V>>,
    u: Vec<Vec<D::V>>,
    c: Vec<Vec<D::V>>,
    delta: Vec<Vec<D::V>>,
}

/// Latencies of every action on `chip` (0 where unknown).
pub(crate) fn latencies(chip: &ChipModel) -> Latencies {
    let mut lat = [0u64; N_ACTIONS];
    for a in Action::ALL {
        lat[a as usize] = (chip.latency_ns(a).unwrap_or(0.0) * 1000.0).round() as u64;
    }
    lat
}

/// Run `f` over `0..n` on up to `threads` scoped threads (contiguous blocks); results in order.
pub(crate) fn map_blocks<T: Send>(
    n: usize,
    threads: usize,
    f: impl Fn(usize) -> T + Sync,
) -> Vec<T> {
    if threads <= 1 || n <= 1 {
        return (0..n).map(f).collect();
    }
    let t = threads.min(n);
    let per = n.div_ceil(t);
    let f = &f;
    let blocks: Vec<Vec<T>> = crossbeam::scope(|s| {
        let handles: Vec<_> = (0..t)
            .map(|b| s.spawn(move |_| (b * per..((b + 1) * per).min(n)).map(f).collect::<Vec<T>>()))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("emulator worker thread panicked"))
            .collect()
    })
    .expect("emulator thread scope");
    blocks.into_iter().flatten().collect()
}

#[inline]
fn key(layer: usize, neuron: usize) -> u64 {
    ((layer as u64) << 40) | neuron as u64
}

#[inline]
fn synapse_key(layer: usize, post: usize, pre: usize) -> u64 {
    ((layer as u64) << 56) ^ ((post as u64) << 28) ^ pre as u64
}

impl<D: Datapath + Clone> ChipNet<D> {
    /// Place `net` (its weights quantised by `dp`) according to `mapping`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        dp: D,
        net: &LayeredNet,
        mapping: &Mapping,
        chip: &ChipModel,
        mode: FiringMode,
        loss: Loss,
        threads: usize,
        seed: u64,
        vars: &mut VarCounters,
    ) -> Self {
        let sizes = net.sizes();
        let m = net.depth();
        let chunks: Vec<Vec<Chunk>> = mapping.layers.iter().map(|l| l.chunks.clone()).collect();
        let mut w = Vec::with_capacity(m);
        let mut b = Vec::with_capacity(m);
        for (l, layer) in net.layers.iter().enumerate() {
            let mut per_core = Vec::new();
            for ch in &chunks[l + 1] {
                let mut rows = vec![D::V::default(); layer.n_in * ch.len];
                for j in 0..layer.n_in {
                    for i in 0..ch.len {
                        rows[j * ch.len + i] =
                            dp.weight_in(layer.w[(ch.start + i) * layer.n_in + j], vars);
                    }
                }
                per_core.push(rows);
            }
            w.push(per_core);
            b.push(layer.b.iter().map(|&x| dp.weight_in(x, vars)).collect());
        }
        let n_dest: Vec<u64> = (0..=m)
            .map(|l| if l < m { chunks[l + 1].len() as u64 } else { 0 })
            .collect();
        let mut fwd_hops = Vec::new();
        let mut max_fwd_hops = Vec::new();
        for l in 0..m {
            let dests = &chunks[l + 1];
            let mut per = Vec::with_capacity(sizes[l]);
            let mut mx = 0;
            for j in 0..sizes[l] {
                let src = mapping.core_of(l, j);
                let h: Vec<u32> = dests.iter().map(|d| mapping.hops(src, d.core)).collect();
                mx = mx.max(h.iter().copied().max().unwrap_or(0));
                per.push(h.iter().map(|&x| x as u64).sum());
            }
            fwd_hops.push(per);
            max_fwd_hops.push(mx);
        }
        // retro_hops[l][k][j]: from core k of neuron layer l + 1 back to presynaptic neuron j.
        let retro_hops = (0..m)
            .map(|l| {
                chunks[l + 1]
                    .iter()
                    .map(|ch| {
                        (0..sizes[l])
                            .map(|j| mapping.hops(ch.core, mapping.core_of(l, j)))
                            .collect()
                    })
                    .collect()
            })
            .collect();
        let pre_hops = (0..m)
            .map(|l| {
                chunks[l + 1]
                    .iter()
                    .map(|ch| {
                        let h: Vec<u32> = chunks[l]
                            .iter()
                            .map(|p| mapping.hops(ch.core, p.core))
                            .collect();
                        (
                            h.iter().map(|&x| x as u64).sum(),
                            h.iter().copied().max().unwrap_or(0),
                        )
                    })
                    .collect()
            })
            .collect();
        let zeros = |n: usize| vec![D::V::default(); n];
        ChipNet {
            rule: ChipRule::Balance,
            fb: Vec::new(),
            pre_hops,
            r: sizes.iter().map(|&n| zeros(n)).collect(),
            u: sizes.iter().map(|&n| zeros(n)).collect(),
            c: sizes.iter().map(|&n| zeros(n)).collect(),
            delta: sizes.iter().map(|&n| zeros(n)).collect(),
            acts: net.layers.iter().map(|l| l.act).collect(),
            dp,
            sizes,
            w,
            b,
            chunks,
            n_dest,
            fwd_hops,
            max_fwd_hops,
            retro_hops,
            mode,
            loss,
            lat: latencies(chip),
            threads: threads.max(1),
            par_threshold: 1 << 20,
            seed,
        }
    }

    /// Run `rule` instead of the balance rule. Feedback alignment draws its fixed feedback
    /// matrices from `feedback` (a net of the same shape; its weights become `B`).
    ///
    /// # Panics
    /// If `rule` is feedback alignment and `feedback` is missing or shaped differently.
    pub fn with_rule(
        mut self,
        rule: ChipRule,
        feedback: Option<&LayeredNet>,
        vars: &mut VarCounters,
    ) -> Self {
        self.rule = rule;
        if rule == ChipRule::FeedbackAlignment {
            let fb = feedback.expect("feedback alignment needs feedback weights");
            assert_eq!(
                fb.sizes(),
                self.sizes,
                "feedback net must have the network's shape"
            );
            self.fb = fb
                .layers
                .iter()
                .enumerate()
                .map(|(l, layer)| {
                    self.chunks[l + 1]
                        .iter()
                        .map(|ch| {
                            let mut rows = vec![D::V::default(); layer.n_in * ch.len];
                            for j in 0..layer.n_in {
                                for i in 0..ch.len {
                                    rows[j * ch.len + i] = self
                                        .dp
                                        .weight_in(layer.w[(ch.start + i) * layer.n_in + j], vars);
                                }
                            }
                            rows
                        })
                        .collect()
                })
                .collect();
        }
        self
    }

    /// The rule this network runs.
    pub fn rule(&self) -> ChipRule {
        self.rule
    }

    /// Number of synaptic layers.
    pub fn depth(&self) -> usize {
        self.sizes.len() - 1
    }

    /// The weights as a real-valued layered net of the same shape (for comparisons).
    pub fn export(&self, template: &LayeredNet) -> LayeredNet {
        let mut net = template.clone();
        for (l, layer) in net.layers.iter_mut().enumerate() {
            for (k, ch) in self.chunks[l + 1].iter().enumerate() {
                for j in 0..layer.n_in {
                    for i in 0..ch.len {
                        layer.w[(ch.start + i) * layer.n_in + j] =
                            self.dp.weight_out(self.w[l][k][j * ch.len + i]);
                    }
                }
            }
            for (bi, &v) in layer.b.iter_mut().zip(&self.b[l]) {
                *bi = self.dp.weight_out(v);
            }
        }
        net
    }

    /// Real values of the last sample's credits, messages and output rates (for comparisons).
    pub fn probe(&self) -> (Vec<Vec<f64>>, Vec<Vec<f64>>, Vec<f64>) {
        let c = self
            .c
            .iter()
            .map(|v| v.iter().map(|&x| self.dp.credit_out(x)).collect())
            .collect();
        let d = self
            .delta
            .iter()
            .map(|v| v.iter().map(|&x| self.dp.delta_out(x)).collect())
            .collect();
        (c, d, self.outputs())
    }

    fn outputs(&self) -> Vec<f64> {
        let m = self.depth();
        let identity = self.acts[m - 1] == Activation::Identity;
        self.r[m]
            .iter()
            .map(|&x| {
                if identity {
                    self.dp.u_out(x)
                } else {
                    self.dp.rate_out(x)
                }
            })
            .collect()
    }

    /// Run one sample: fire, and when `train`, credit and plasticity. `step` keys every random
    /// stream of the sample (use distinct values for distinct samples).
    pub fn sample(
        &mut self,
        x: &[f64],
        label: usize,
        train: bool,
        step: u64,
        t: &mut Tally,
    ) -> SampleOutcome {
        let t0 = t.time_ps;
        self.fire(x, step, t);
        let out = self.outputs();
        let loss = self.loss.value(&out, label);
        let correct = crate::rule::argmax(&out) == label;
        t.work.samples += 1;
        if train {
            self.credit_phase(&out, label, step, t);
            self.plasticity(step, t);
        }
        SampleOutcome {
            loss,
            correct,
            time_ps: t.time_ps - t0,
        }
    }

    /// Fire phase only (graded or spiking, per the firing mode).
    pub fn fire(&mut self, x: &[f64], step: u64, t: &mut Tally) {
        match self.mode {
            FiringMode::Graded => self.fire_graded(x, step, t),
            FiringMode::Spiking { ticks, encoding } => {
                self.fire_spiking(x, ticks, encoding, step, t)
            }
        }
    }

    /// Set the credits of neuron layer `k` from real values (for experiments and benchmarks
    /// that inject credit somewhere other than the output clamp).
    pub fn set_credit(&mut self, k: usize, values: &[f64], t: &mut Tally) {
        for (c, &v) in self.c[k].iter_mut().zip(values) {
            *c = self.dp.credit_in(v, &mut t.vars);
        }
    }

    fn phase_time(&self, t: &mut Tally, busy_ps: u64, hops: u32) {
        t.time_ps += busy_ps
            + hops as u64 * self.lat[Action::Hop as usize]
            + self.lat[Action::Barrier as usize];
        t.ledger.add(Action::Barrier, 1);
    }

    /// Count the events of `senders` (active neurons of layer `l`) reaching layer `l + 1`:
    /// one packet and trace update per (sender, destination core), their hops, one SOP per
    /// synapse walked. Returns the SOPs.
    fn count_arrivals(&self, l: usize, senders: &[usize], binary: bool, t: &mut Tally) -> u64 {
        let na = senders.len() as u64;
        let packets = na * self.n_dest[l];
        t.ledger.add(Action::SpikePacket, packets);
        t.ledger.add(Action::TraceUpdate, packets);
        t.ledger.add(
            Action::Hop,
            senders.iter().map(|&j| self.fwd_hops[l][j]).sum(),
        );
        let n_out = self.sizes[l + 1] as u64;
        let sops = na * n_out;
        t.ledger.add(Action::Sop, sops);
        if binary {
            t.work.effective_acs += sops;
        } else {
            t.work.effective_macs += sops;
        }
        t.work.dense_synops += self.sizes[l] as u64 * n_out;
        sops
    }

    /// Busy time of a core of `len` neurons receiving `na` events in one step.
    fn core_busy(&self, na: u64, len: usize) -> u64 {
        let update = if na > 0 {
            Action::NeuronUpdateActive
        } else {
            Action::NeuronUpdateIdle
        };
        na * len as u64 * self.lat[Action::Sop as usize]
            + na * self.lat[Action::TraceUpdate as usize]
            + len as u64 * self.lat[update as usize]
    }

    /// Close one firing step of layer `l + 1`: soma updates (active when any event arrived),
    /// NeuroBench workload, one tick, and the step's modelled time.
    fn end_fire_step(&self, l: usize, na: u64, zeros: u64, busy: u64, t: &mut Tally) {
        let n_out = self.sizes[l + 1] as u64;
        if na > 0 {
            t.ledger.add(Action::NeuronUpdateActive, n_out);
            t.work.membrane_updates += n_out;
        } else {
            t.ledger.add(Action::NeuronUpdateIdle, n_out);
        }
        t.work.neuron_ops += n_out;
        t.work.neuron_dense_ops += n_out;
        t.work.zero_activations += zeros;
        t.work.activations += n_out;
        t.ticks += 1;
        let inject = na * self.n_dest[l] * self.lat[Action::SpikePacket as usize];
        self.phase_time(t, busy + inject, self.max_fwd_hops[l]);
    }

    fn fire_graded(&mut self, x: &[f64], step: u64, t: &mut Tally) {
        for (rj, &xj) in self.r[0].iter_mut().zip(x) {
            *rj = self.dp.rate_in(xj, &mut t.vars);
        }
        for l in 0..self.depth() {
            let active: Vec<usize> = (0..self.sizes[l])
                .filter(|&j| !D::is_zero(self.r[l][j]))
                .collect();
            let na = active.len() as u64;
            let sops = self.count_arrivals(l, &active, false, t);
            let act = self.acts[l];
            let threads = if sops >= self.par_threshold {
                self.threads
            } else {
                1
            };
            let (w, b, r_in, dp) = (&self.w[l], &self.b[l], &self.r[l], &self.dp);
            let chunks = &self.chunks[l + 1];
            let results = map_blocks(chunks.len(), threads, |k| {
                let ch = &chunks[k];
                let rows = &w[k];
                let mut acc = vec![D::Acc::default(); ch.len];
                for &j in &active {
                    let row = &rows[j * ch.len..(j + 1) * ch.len];
                    let rj = r_in[j];
                    for (a, &wij) in acc.iter_mut().zip(row) {
                        D::mac(a, wij, rj);
                    }
                }
                let mut vars = VarCounters::default();
                let mut u = Vec::with_capacity(ch.len);
                let mut r = Vec::with_capacity(ch.len);
                for (i, a) in acc.into_iter().enumerate() {
                    let id = key(l + 1, ch.start + i);
                    let ui = dp.soma_u(a, b[ch.start + i], (id, step), &mut vars);
                    r.push(dp.transfer(ui, l, act, (id, step), &mut vars));
                    u.push(ui);
                }
                (u, r, vars)
            });
            let mut busy: u64 = 0;
            let mut zeros = 0u64;
            for (k, (u, r, vars)) in results.into_iter().enumerate() {
                let ch = &self.chunks[l + 1][k];
                zeros += r.iter().filter(|&&v| D::is_zero(v)).count() as u64;
                self.u[l + 1][ch.start..ch.start + ch.len].copy_from_slice(&u);
                self.r[l + 1][ch.start..ch.start + ch.len].copy_from_slice(&r);
                t.vars.merge(&vars);
                busy = busy.max(self.core_busy(na, ch.len));
            }
            self.end_fire_step(l, na, zeros, busy, t);
        }
    }

    fn fire_spiking(&mut self, x: &[f64], ticks: u32, enc: Encoding, step: u64, t: &mut Tally) {
        let ticks = ticks.max(1);
        let n0 = self.sizes[0];
        // Input spike raster.
        let p: Vec<D::V> = x.iter().map(|&v| self.dp.rate_in(v, &mut t.vars)).collect();
        let mut phase = vec![D::V::default(); n0];
        let mut raster: Vec<Vec<usize>> = Vec::with_capacity(ticks as usize);
        let mut counts = vec![0u32; n0];
        for tick in 0..ticks {
            let mut fired = Vec::new();
            for j in 0..n0 {
                let s = match enc {
                    Encoding::Regular => self.dp.regular_step(&mut phase[j], p[j]),
                    Encoding::Poisson => {
                        if D::is_zero(p[j]) {
                            false
                        } else {
                            t.ledger.add(Action::RngDraw, 1);
                            let draw = CounterRng::new(
                                self.seed,
                                key(0, j),
                                (step << 16) | tick as u64,
                                purpose::POISSON,
                            )
                            .next_u64();
                            self.dp.bernoulli(draw, p[j])
                        }
                    }
                };
                if s {
                    fired.push(j);
                    counts[j] += 1;
                }
            }
            raster.push(fired);
        }
        for (rj, &cj) in self.r[0].iter_mut().zip(&counts) {
            *rj = self.dp.rate_from_count(cj, ticks, &mut t.vars);
        }
        let m = self.depth();
        for l in 0..m {
            let n_out = self.sizes[l + 1];
            let linear_out = l + 1 == m && self.acts[l] == Activation::Identity;
            let mut v = vec![D::V::default(); n_out];
            let mut total = vec![D::Acc::default(); n_out];
            let mut count = vec![0u32; n_out];
            let mut next: Vec<Vec<usize>> = Vec::with_capacity(ticks as usize);
            for (tick, arrivals) in raster.iter().enumerate() {
                let na = arrivals.len() as u64;
                self.count_arrivals(l, arrivals, true, t);
                let mut fired = Vec::new();
                let mut busy: u64 = 0;
                for (k, ch) in self.chunks[l + 1].iter().enumerate() {
                    let rows = &self.w[l][k];
                    let mut acc = vec![D::Acc::default(); ch.len];
                    for &j in arrivals {
                        for (a, &wij) in acc.iter_mut().zip(&rows[j * ch.len..(j + 1) * ch.len]) {
                            D::add_weight(a, wij);
                        }
                    }
                    for (i, a) in acc.into_iter().enumerate() {
                        let g = ch.start + i;
                        let id = key(l + 1, g);
                        let input = self.dp.tick_input(
                            a,
                            self.b[l][g],
                            (id, (step << 16) | tick as u64),
                            &mut t.vars,
                        );
                        D::acc_u(&mut total[g], input, &self.dp);
                        if !linear_out && self.dp.if_step(&mut v[g], input, &mut t.vars) {
                            count[g] += 1;
                            fired.push(g);
                        }
                    }
                    busy = busy.max(self.core_busy(na, ch.len));
                }
                self.end_fire_step(l, na, (n_out - fired.len()) as u64, busy, t);
                next.push(fired);
            }
            for g in 0..n_out {
                let ug = self.dp.mean_u(total[g], ticks, &mut t.vars);
                self.u[l + 1][g] = ug;
                self.r[l + 1][g] = if linear_out {
                    ug
                } else {
                    self.dp.rate_from_count(count[g], ticks, &mut t.vars)
                };
            }
            raster = next;
        }
    }

    fn credit_phase(&mut self, out: &[f64], label: usize, step: u64, t: &mut Tally) {
        let m = self.depth();
        for c in &mut self.c {
            c.fill(D::V::default());
        }
        let mut ext = vec![0.0; out.len()];
        self.loss.output_credit(out, label, &mut ext);
        for (k, &e) in ext.iter().enumerate() {
            self.c[m][k] = self.dp.credit_in(e, &mut t.vars);
        }
        t.ledger.add(Action::CreditAccumulate, ext.len() as u64);
        self.propagate_credit(m, step, t);
    }

    /// Retrograde phase from neuron layer `top` down: balance-table reads and `δ` for each
    /// layer, retrograde aggregation over the same synapse rows, packets and credit
    /// accumulation, one step per layer. Credits below `top` accumulate onto what they hold.
    pub fn propagate_credit(&mut self, top: usize, step: u64, t: &mut Tally) {
        for k in (1..=top).rev() {
            // δ of neuron layer k: one balance-table read per neuron holding credit.
            let mut lut = 0u64;
            for i in 0..self.sizes[k] {
                let ci = self.c[k][i];
                self.delta[k][i] = if D::is_zero(ci) {
                    D::V::default()
                } else {
                    lut += 1;
                    let id = key(k, i);
                    let g = self.dp.g(self.u[k][i], k - 1, &mut t.vars);
                    let d = self.dp.delta(g, ci, (id, step), &mut t.vars);
                    if self.dp.passes(d) {
                        d
                    } else {
                        if !D::is_zero(d) {
                            t.dropped_messages += 1;
                        }
                        D::V::default()
                    }
                };
            }
            t.ledger.add(Action::LutRead, lut);
            let mut busy = lut * self.lat[Action::LutRead as usize];
            if k >= 2 && self.rule != ChipRule::Balance {
                self.transport_credit(k, step, t, busy);
            } else if k >= 2 {
                // Retrograde aggregation over the same synapse rows, one packet per
                // (axon, post core) with a non-zero message.
                let l = k - 1;
                let n_in = self.sizes[l];
                let threads = if (n_in * self.sizes[k]) as u64 >= self.par_threshold {
                    self.threads
                } else {
                    1
                };
                let (w, delta, dp) = (&self.w[l], &self.delta[k], &self.dp);
                let chunks = &self.chunks[k];
                let msgs = map_blocks(chunks.len(), threads, |ck| {
                    let ch = &chunks[ck];
                    let nz: Vec<usize> = (0..ch.len)
                        .filter(|&i| !D::is_zero(delta[ch.start + i]))
                        .collect();
                    let mut vars = VarCounters::default();
                    let mut out = Vec::new();
                    if nz.is_empty() {
                        return (out, vars, 0u64);
                    }
                    let rows = &w[ck];
                    for j in 0..n_in {
                        let row = &rows[j * ch.len..(j + 1) * ch.len];
                        let mut acc = D::Acc::default();
                        for &i in &nz {
                            D::retro_mac(&mut acc, row[i], delta[ch.start + i]);
                        }
                        let mj = dp.retro_finish(
                            acc,
                            (key(l, j) ^ ((ck as u64) << 32), step),
                            &mut vars,
                        );
                        if !D::is_zero(mj) {
                            out.push((j, mj));
                        }
                    }
                    (out, vars, (nz.len() * n_in) as u64)
                });
                let mut max_hops = 0;
                for (ck, (out, vars, rsops)) in msgs.into_iter().enumerate() {
                    t.vars.merge(&vars);
                    t.ledger.add(Action::RetroSop, rsops);
                    t.ledger.add(Action::RetroPacket, out.len() as u64);
                    t.ledger.add(Action::CreditAccumulate, out.len() as u64);
                    let mut hops = 0u64;
                    for &(j, mj) in &out {
                        let h = self.retro_hops[l][ck][j];
                        hops += h as u64;
                        max_hops = max_hops.max(h);
                        self.c[l][j] = self.dp.credit_add(self.c[l][j], mj, &mut t.vars);
                    }
                    t.ledger.add(Action::Hop, hops);
                    t.retro_hops += hops;
                    busy = busy.max(
                        rsops * self.lat[Action::RetroSop as usize]
                            + out.len() as u64
                                * (self.lat[Action::RetroPacket as usize]
                                    + self.lat[Action::CreditAccumulate as usize]),
                    );
                }
                t.retro_steps += 1;
                self.phase_time(t, busy, max_hops);
            } else {
                self.phase_time(t, busy, 0);
            }
        }
    }

    /// Credit transport of the comparison rules (backprop, feedback alignment): every non-zero
    /// `δ_i` of neuron layer `k` travels to every core of layer `k − 1`, which sums
    /// `Σ_i M_ji δ_i` over its own copy (`Wᵀ` or `B`) exactly and rounds once into the credit.
    fn transport_credit(&mut self, k: usize, step: u64, t: &mut Tally, lut_busy: u64) {
        let l = k - 1;
        let n_in = self.sizes[l];
        let mat = if self.rule == ChipRule::FeedbackAlignment {
            &self.fb[l]
        } else {
            &self.w[l]
        };
        let mut acc = vec![D::Acc::default(); n_in];
        let (mut nnz, mut packets, mut hops, mut max_hops, mut send_busy) =
            (0u64, 0u64, 0u64, 0u32, 0u64);
        let pre_cores = self.chunks[l].len() as u64;
        for (ck, ch) in self.chunks[k].iter().enumerate() {
            let nz: Vec<usize> = (0..ch.len)
                .filter(|&i| !D::is_zero(self.delta[k][ch.start + i]))
                .collect();
            if nz.is_empty() {
                continue;
            }
            let rows = &mat[ck];
            for (j, a) in acc.iter_mut().enumerate() {
                let row = &rows[j * ch.len..(j + 1) * ch.len];
                for &i in &nz {
                    D::retro_mac(a, row[i], self.delta[k][ch.start + i]);
                }
            }
            let n = nz.len() as u64;
            nnz += n;
            packets += n * pre_cores;
            let (h, hmax) = self.pre_hops[l][ck];
            hops += n * h;
            max_hops = max_hops.max(hmax);
            send_busy = send_busy.max(n * pre_cores * self.lat[Action::RetroPacket as usize]);
        }
        t.ledger.add(Action::RetroSop, nnz * n_in as u64);
        t.ledger.add(Action::RetroPacket, packets);
        t.ledger.add(Action::Hop, hops);
        t.retro_hops += hops;
        let mut written = 0u64;
        if nnz > 0 {
            for (j, a) in acc.into_iter().enumerate() {
                self.c[l][j] = self.dp.retro_finish(a, (key(l, j), step), &mut t.vars);
                written += 1;
            }
        }
        t.ledger.add(Action::CreditAccumulate, written);
        let pre_busy = self.chunks[l]
            .iter()
            .map(|p| {
                p.len as u64
                    * (nnz * self.lat[Action::RetroSop as usize]
                        + self.lat[Action::CreditAccumulate as usize])
            })
            .max()
            .unwrap_or(0);
        t.retro_steps += 1;
        self.phase_time(t, lut_busy + send_busy + pre_busy, max_hops);
    }

    /// Plasticity phase: `w_ij += η δ_i r_j` where `δ_i ≠ 0` and `r_j ≠ 0`, biases likewise.
    pub fn plasticity(&mut self, step: u64, t: &mut Tally) {
        let mut updates = 0u64;
        let mut mirror_writes = 0u64;
        let mut busy: u64 = 0;
        for l in 0..self.depth() {
            let active: Vec<usize> = (0..self.sizes[l])
                .filter(|&j| !D::is_zero(self.r[l][j]))
                .collect();
            for (k, ch) in self.chunks[l + 1].iter().enumerate() {
                let rows = &mut self.w[l][k];
                let mut core_updates = 0u64;
                for i in 0..ch.len {
                    let g = ch.start + i;
                    let d = self.delta[l + 1][g];
                    if D::is_zero(d) {
                        continue;
                    }
                    for &j in &active {
                        let idx = j * ch.len + i;
                        rows[idx] = self.dp.weight_update(
                            rows[idx],
                            d,
                            self.r[l][j],
                            (synapse_key(l, g, j), step),
                            &mut t.vars,
                        );
                    }
                    self.b[l][g] =
                        self.dp
                            .bias_update(self.b[l][g], d, (key(l + 1, g), step), &mut t.vars);
                    core_updates += active.len() as u64 + 1;
                    mirror_writes += active.len() as u64;
                }
                updates += core_updates;
                busy = busy.max(core_updates * self.lat[Action::WeightUpdate as usize]);
            }
        }
        // Backprop keeps a transposed copy in sync: every weight is written twice (the bias
        // has no copy).
        let mirror = if self.rule == ChipRule::Backprop {
            mirror_writes
        } else {
            0
        };
        t.ledger.add(Action::WeightUpdate, updates + mirror);
        t.plasticity_events += 1;
        self.phase_time(t, busy, 0);
    }
}
