//! accord-firmware: what runs on one core's programmable unit.
//!
//! accord emulates neuromorphic cores running the E-I balance rule of Fan & Mysore
//! ("Contribute to balance, wire in accordance: Emergence of backpropagation from a simple,
//! bio-plausible neuroplasticity rule", arXiv:2405.14139). Each neuron `i` has a net input
//! (balance) `u_i = Σ_j w_ij r_j + b_i`, a rate `r_i = f(u_i)`, a balance function `g(u_i)` (exactly
//! `f'`, read from a table on chip) and a credit `c_i`. It sends `δ_i = g(u_i)·c_i` back through
//! the same synapses, so that `c_j ← Σ_i w_ij δ_i`, and learns `Δw_ij = η·δ_i·r_j`,
//! `Δb_i = η·δ_i`.
//!
//! This crate is the bit-exact integer datapath of those steps: `no_std`, no allocation, no
//! floating point on the hot path, and no panics on data. Every saturation, wrap, invalid input,
//! table clamp, random draw and dropped event is added to a [`Counters`](arith::Counters) value
//! that the caller owns and reports.
//!
//! | Module | Step | Kernels |
//! |---|---|---|
//! | [`arith`] | formats and rounding | [`Format`](arith::Format), [`requantize`](arith::requantize), [`fit`](arith::fit), [`CounterRng`](arith::CounterRng) |
//! | [`soma`] | fire | [`if_step`](soma::if_step), [`lif_step`](soma::lif_step), [`graded_rate`](soma::graded_rate) |
//! | [`balance`] | `g(u)` | [`Table`](balance::Table) build and lookup |
//! | [`credit`] | retrograde | [`delta`](credit::delta), [`RetroAccumulator`](credit::RetroAccumulator) |
//! | [`plasticity`] | learn | [`weight_update`](plasticity::weight_update), [`UpdateAccumulator`](plasticity::UpdateAccumulator) |
//! | [`queue`] | events | [`EventQueue`](queue::EventQueue), [`SpikeEvent`](queue::SpikeEvent), [`RetroPacket`](queue::RetroPacket) |
//! | [`typed`] | compile-time formats | [`FixedWord`](typed::FixedWord), [`format_of`](typed::format_of), [`TypedFormat`](typed::TypedFormat), [`balance_core`](typed::balance_core) |
//!
//! Each module's documentation ends with a cost table: the primitive actions (reads, adds,
//! multiplies, RNG draws) of each kernel, which the host emulator's ledger counts.
//!
//! # Tutorial: one neuron, one synapse, one update
//!
//! ```
//! use accord_firmware::arith::{CounterRng, Counters, Format, Overflow, Rounding};
//! use accord_firmware::balance::Table;
//! use accord_firmware::credit::delta;
//! use accord_firmware::plasticity::weight_update;
//! use accord_firmware::soma::if_step;
//!
//! // 1. Formats: Q7.8 for membrane, weights, rates and credits; Q1.10 unsigned for g.
//! let q = Format::new(16, 8, true, Rounding::NearestEven, Overflow::Saturate);
//! let g_fmt = Format::new(11, 10, false, Rounding::NearestEven, Overflow::Saturate);
//! let w_fmt = Format { rounding: Rounding::Stochastic, ..q };
//! let mut c = Counters::default();
//!
//! // Quantise reals (host side): 0.3 -> 76.8 -> 77.
//! let w = q.from_f64(0.3, &mut c);
//! assert_eq!(w, 77);
//!
//! // 2. Fire: an integrate-and-fire soma driven by w·r_in with r_in = 1 (a binary spike)
//! //    for 10 ticks, threshold 1.0.
//! let (mut v, mut spikes) = (0i64, 0i64);
//! for _ in 0..10 {
//!     spikes += if_step(&mut v, w, 256, &q, &mut c) as i64;
//! }
//! assert_eq!((spikes, v), (3, 10 * 77 - 3 * 256));
//!
//! // 3. Balance table: g = f' of the hard sigmoid clip(u, 0, 1), 16 bins over [-2, 2).
//! let mut lut = [0i64; 16];
//! let g = |x: f64| if (0.0..1.0).contains(&x) { 1.0 } else { 0.0 };
//! let table = Table::build(&mut lut, -2.0, 2.0, &q, &g_fmt, g, &mut c).unwrap();
//! let g_u = table.lookup(w, &mut c); // u = 0.3 -> g = 1.0
//! assert_eq!(g_u, 1024);
//!
//! // 4. Credit and plasticity: c = 0.5 (an output clamp y − r), δ = g·c = 0.5,
//! //    Δw = η·δ·r with η = 1/16, r = 0.3: 0.009375 = 2.4 LSB, rounded stochastically
//! //    to 2 or 3 LSB with one draw from a keyed, reproducible stream.
//! let mut rng = CounterRng::new(/* seed */ 1, /* synapse */ 0, /* step */ 0, /* purpose */ 3);
//! let d = delta(g_u, &g_fmt, 128, &q, &q, &mut rng, &mut c);
//! assert_eq!(d, 128);
//! let w_new = weight_update(w, &w_fmt, d, &q, w, &q, 16, &q, &mut rng, &mut c);
//! assert!(w_new == w + 2 || w_new == w + 3);
//! assert_eq!(c.rng_draws, 1);
//! assert_eq!((c.saturations, c.wraps, c.lut_clamps), (0, 0, 0));
//! ```
//!
//! # Reproducibility
//!
//! All arithmetic is integer and specified bit for bit; the only randomness is stochastic
//! rounding, drawn from [`CounterRng`](arith::CounterRng) streams keyed by
//! `(seed, entity, step, purpose)`, so results do not depend on thread count or scheduling.
//! Golden-value tests pin the outputs of every kernel.
#![cfg_attr(not(test), no_std)]
#![deny(missing_docs)]
#![warn(missing_debug_implementations)]
#![doc(test(attr(deny(warnings))))]

pub mod arith;
pub mod balance;
pub mod credit;
pub mod datapath;
pub mod handlers;
pub mod plasticity;
pub mod queue;
pub mod soma;
pub mod typed;
