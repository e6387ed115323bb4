//! NIR neuron nodes in discrete time, and onto a chip's soma programs (ARCHITECTURE.md §13).
//!
//! NIR's neurons are continuous-time. accord steps them by forward Euler at a time step `dt`
//! (`--dt`, default 10⁻⁴ s: the step snnTorch's NIR export assumes, where `r = τ/dt` makes one
//! unit of input one unit of voltage per step) and normalises the voltage so that the threshold
//! is 1 and the reset 0, `v' = (v − v_reset)/(v_threshold − v_reset)`. With `α = dt/τ` and
//! `Δ = v_threshold − v_reset`:
//!
//! | NIR node | per step, normalised |
//! |---|---|
//! | `IF` | `v' ← v' + (dt·r/Δ)·I` |
//! | `LIF` | `v' ← (1 − α)·v' + α(v_leak − v_reset)/Δ + (α·r/Δ)·I` |
//! | `CubaLIF` | `c ← (1 − α_s)·c + (α_s·w_in·α_m·r/Δ)·x`, then `v' ← (1 − α_m)·v' + α_m(v_leak − v_reset)/Δ + c` |
//!
//! and a spike when `v' > 1`, after which `v' ← 0` (NIR: `v > v_threshold`, reset to
//! `v_reset`). The input `I` (for `CubaLIF` the synaptic input `x`) is the layer's `W·s + b`, so
//! each neuron's factor scales its row of weights ([`Discrete::scale`]) and the leak adds a
//! constant to its bias ([`Discrete::leak`]).
//!
//! On a chip with Loihi's current-based program (`[soma] model = "cuba-lif"`) this is exactly
//! that program with per-population decays `du = 4096·α_s − 1` (4095 for `IF`/`LIF`: the
//! current follows the input) and `dv = 4096·α_m`, quantised to 1/4096 with the error reported
//! — except that a `CubaLIF`'s bias enters the voltage, not the current (its steady state).
//! Chips with the `if` or `lif` program reset by subtraction, fire at `v' ≥ 1` and (for `if`)
//! have no leak; a current-based node there drives the voltage with its steady-state current.
//! [`Discrete::program`] says what each chip makes of a node.

use accord_firmware::datapath::SpikingSoma;
use serde::Serialize;

use super::{NirError, Node};
use crate::chip::SomaSpec;

/// The default time step, seconds (snnTorch's NIR export).
pub const DEFAULT_DT: f64 = 1e-4;

/// A NIR neuron node in discrete time, normalised to threshold 1 and reset 0.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Discrete {
    /// The node.
    pub node: String,
    /// Its NIR type.
    pub kind: String,
    /// Voltage decay per step `dt/τ_mem` (0 for `IF`), the mean over the node's neurons.
    pub alpha_mem: f64,
    /// Current decay per step `dt/τ_syn` (`CubaLIF` only), the mean over the node's neurons.
    pub alpha_syn: Option<f64>,
    /// Largest relative deviation of a neuron's decay from the mean (a core holds one decay
    /// per population).
    pub spread: f64,
    /// Per neuron, the factor of its input into the voltage: `dt·r/Δ` (`IF`), `α·r/Δ` (`LIF`),
    /// and for `CubaLIF` the steady-state `w_in·α_m·r/Δ`.
    pub scale: Vec<f64>,
    /// Per neuron, the constant the leak adds to the voltage each step: `α(v_leak − v_reset)/Δ`.
    pub leak: Vec<f64>,
    /// Whether some neuron's reset is not 0 (the chip starts every neuron at its reset, NIR at 0).
    pub reset_offset: bool,
    /// Whether a `CubaLIF` node has a non-zero bias feeding it (it enters the voltage on a
    /// chip, not the current: equal once the current has settled).
    pub bias_into_voltage: bool,
}

/// One parameter of a node as a chip stores it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ParamConversion {
    /// The node.
    pub node: String,
    /// What is stored (`dv`, `du`, `decay`).
    pub parameter: String,
    /// The exact value, in 1/4096 per step.
    pub exact: f64,
    /// The value stored.
    pub stored: u16,
    /// `|stored − exact| / 4096`: the decay error per step.
    pub error: f64,
    /// Whether `exact` was outside the stored range (clamped).
    pub saturated: bool,
}

/// What a chip's soma program makes of a node: the program, how its decays are stored, and
/// every way it departs from the NIR node.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Program {
    /// The program, with the node's own decays.
    #[serde(skip)]
    pub soma: SpikingSoma,
    /// The decays in the chip's 12-bit fields.
    pub params: Vec<ParamConversion>,
    /// Departures from NIR's semantics.
    pub notes: Vec<String>,
    /// Whether the weights drive a current (`true`: scale by `α_s` too, [`Discrete::weight_scale`]).
    pub current: bool,
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn spread(v: &[f64]) -> f64 {
    let m = mean(v);
    v.iter()
        .map(|x| {
            if m == 0.0 {
                x.abs()
            } else {
                (x / m - 1.0).abs()
            }
        })
        .fold(0.0, f64::max)
}

/// `4096·x` into a 12-bit field `lo..=hi`.
fn field(node: &str, parameter: &str, x: f64, lo: i64, hi: i64) -> ParamConversion {
    let exact = 4096.0 * x;
    let r = exact.round() as i64;
    let stored = r.clamp(lo, hi);
    ParamConversion {
        node: node.into(),
        parameter: parameter.into(),
        exact,
        stored: stored as u16,
        error: (stored as f64 - exact).abs() / 4096.0,
        saturated: r != stored,
    }
}

impl Discrete {
    /// A neuron node `name` at time step `dt` (`None` for nodes that are not spiking neurons).
    ///
    /// # Errors
    /// A threshold not above the reset, a non-positive time constant, or a decay per step above
    /// 1 (`dt > τ`: forward Euler overshoots) — naming the node and the neuron.
    pub fn new(name: &str, node: &Node, dt: f64) -> Result<Option<Discrete>, NirError> {
        let err = |reason: String| {
            NirError::Graph(format!(
                "node '{name}' ({}) at dt = {dt:e} s: {reason}",
                node.kind()
            ))
        };
        let (r, v_th, v_reset, v_leak, tau_mem, tau_syn, w_in) = match node {
            Node::If {
                r,
                v_threshold,
                v_reset,
            } => (r, v_threshold, v_reset, None, None, None, None),
            Node::Lif {
                tau,
                r,
                v_leak,
                v_threshold,
                v_reset,
            } => (r, v_threshold, v_reset, Some(v_leak), Some(tau), None, None),
            Node::CubaLif {
                tau_syn,
                tau_mem,
                r,
                v_leak,
                v_threshold,
                v_reset,
                w_in,
            } => (
                r,
                v_threshold,
                v_reset,
                Some(v_leak),
                Some(tau_mem),
                Some(tau_syn),
                Some(w_in),
            ),
            _ => return Ok(None),
        };
        let alphas = |tau: &[f64], what: &str| -> Result<Vec<f64>, NirError> {
            tau.iter()
                .enumerate()
                .map(|(i, &t)| {
                    if t <= 0.0 {
                        return Err(err(format!("{what} of neuron {i} is {t}, not positive")));
                    }
                    let a = dt / t;
                    if a > 1.0 {
                        return Err(err(format!(
                            "{what} of neuron {i} is {t} s, shorter than the step (use a smaller time step dt)"
                        )));
                    }
                    Ok(a)
                })
                .collect()
        };
        let a_mem = match tau_mem {
            Some(t) => alphas(t, "tau_mem")?,
            None => vec![0.0; r.len()],
        };
        let a_syn = tau_syn.map(|t| alphas(t, "tau_syn")).transpose()?;
        let mut scale = Vec::with_capacity(r.len());
        let mut leak = Vec::with_capacity(r.len());
        for i in 0..r.len() {
            let delta = v_th[i] - v_reset[i];
            if delta <= 0.0 || !delta.is_finite() {
                return Err(err(format!(
                    "neuron {i}'s threshold {} is not above its reset {}",
                    v_th[i], v_reset[i]
                )));
            }
            // IF: dv/dt = r·I, so one step adds dt·r·I; LIF/CubaLIF: α·r·I.
            let k = match (tau_mem, w_in) {
                (None, _) => dt * r[i] / delta,
                (Some(_), None) => a_mem[i] * r[i] / delta,
                (Some(_), Some(w)) => w[i] * a_mem[i] * r[i] / delta,
            };
            if k == 0.0 || !k.is_finite() {
                return Err(err(format!(
                    "neuron {i}'s input reaches its voltage with factor {k:e} (r = {}{}): its input would {}",
                    r[i],
                    w_in.map_or(String::new(), |w| format!(", w_in = {}", w[i])),
                    if k == 0.0 {
                        "never reach it"
                    } else {
                        "not be a number"
                    }
                )));
            }
            scale.push(k);
            leak.push(v_leak.map_or(0.0, |l| a_mem[i] * (l[i] - v_reset[i]) / delta));
        }
        let alpha_syn = a_syn.as_ref().map(|a| mean(a));
        Ok(Some(Discrete {
            node: name.into(),
            kind: node.kind().into(),
            alpha_mem: mean(&a_mem),
            alpha_syn,
            spread: spread(&a_mem).max(a_syn.as_deref().map_or(0.0, spread)),
            scale,
            leak,
            reset_offset: v_reset.iter().any(|&x| x != 0.0),
            bias_into_voltage: false,
        }))
    }

    /// The factor of neuron `i`'s weights under `program`: [`scale`](Self::scale), times
    /// `α_s` where the weights drive a current that the program integrates.
    pub fn weight_scale(&self, i: usize, program: &Program) -> f64 {
        match (program.current, self.alpha_syn) {
            (true, Some(a)) => self.scale[i] * a,
            _ => self.scale[i],
        }
    }

    /// Loihi's current-based program with this node's decays: `du` from the synaptic time
    /// constant (4095: the current follows the input), `dv` from the membrane's.
    fn cuba_lif(
        &self,
        params: &mut Vec<ParamConversion>,
        notes: &mut Vec<String>,
    ) -> (SpikingSoma, bool) {
        let name = &self.node;
        let dv = field(name, "dv", self.alpha_mem, 0, 4095);
        let du = match self.alpha_syn {
            // Lava decays u by (du + 1)/4096.
            Some(a) => {
                let mut f = field(name, "du", a, 1, 4096);
                f.stored -= 1;
                f.exact -= 1.0;
                f
            }
            None => ParamConversion {
                node: name.clone(),
                parameter: "du".into(),
                exact: 4095.0,
                stored: 4095,
                error: 0.0,
                saturated: false,
            },
        };
        let soma = SpikingSoma::CubaLif {
            du: du.stored,
            dv: dv.stored,
        };
        if self.alpha_syn.is_none() {
            params.push(dv);
            notes.push(format!(
                "{name}: du = 4095 (the current follows the input each step)"
            ));
        } else {
            params.push(du);
            params.push(dv);
            if self.bias_into_voltage {
                notes.push(format!(
                    "{name}: its bias enters the voltage, not the current (equal once the current settles)"
                ));
            }
        }
        (soma, self.alpha_syn.is_some())
    }

    /// What a chip whose `[soma]` is `chip` runs for this node.
    pub fn program(&self, chip: SomaSpec) -> Program {
        let name = &self.node;
        let mut notes = Vec::new();
        let mut params = Vec::new();
        let kind = self.kind.as_str();
        if self.spread > 1e-9 {
            notes.push(format!(
                "{name}: its neurons' time constants differ by up to {:.1} %; a core holds one decay per population, the mean",
                100.0 * self.spread
            ));
        }
        if self.reset_offset {
            notes.push(format!(
                "{name}: neurons start at their reset voltage (NIR starts them at 0)"
            ));
        }
        let (soma, current) = match chip {
            SomaSpec::CubaLif { .. } => self.cuba_lif(&mut params, &mut notes),
            SomaSpec::Lif { .. } => {
                let d = field(name, "decay", self.alpha_mem, 0, 4096);
                let soma = SpikingSoma::Lif { decay: d.stored };
                params.push(d);
                notes.push(format!(
                    "{name}: the chip's lif program resets by subtracting the threshold and fires at v ≥ threshold (NIR: reset to v_reset, v > threshold)"
                ));
                if self.alpha_syn.is_some() {
                    notes.push(format!(
                        "{name}: no synaptic current on this chip: the input drives the voltage with its steady-state current"
                    ));
                }
                (soma, false)
            }
            SomaSpec::If => {
                notes.push(format!(
                    "{name}: the chip's if program resets by subtracting the threshold and fires at v ≥ threshold (NIR: reset to v_reset, v > threshold)"
                ));
                if self.alpha_mem > 0.0 {
                    notes.push(format!(
                        "{name}: no leak on this chip ({kind}'s voltage decays by {:.4} per step in NIR)",
                        self.alpha_mem
                    ));
                }
                if self.alpha_syn.is_some() {
                    notes.push(format!(
                        "{name}: no synaptic current on this chip: the input drives the voltage with its steady-state current"
                    ));
                }
                (SpikingSoma::If, false)
            }
        };
        for p in &params {
            if p.saturated {
                notes.push(format!(
                    "{name}: {} = {:.1}/4096 does not fit 12 bits; stored {}",
                    p.parameter, p.exact, p.stored
                ));
            }
        }
        Program {
            soma,
            params,
            notes,
            current,
        }
    }
}
