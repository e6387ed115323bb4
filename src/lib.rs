//! # accord
//!
//! A neuromorphic hardware emulator and event-driven backend for one learning rule: the E-I
//! balance rule of Fan & Mysore ("Contribute to balance, wire in accordance: Emergence of
//! backpropagation from a simple, bio-plausible neuroplasticity rule", arXiv:2405.14139).
//!
//! accord is for hardware architects and computational neuroscientists who want to know what
//! the rule costs on a brain-like chip and whether it still learns in fixed point. This crate
//! is organised so that each room is found by name:
//!
//! | module | what lives there |
//! |---|---|
//! | [`rule`] | the rule itself in `f64`: layered and recurrent networks, balance functions, credit, plasticity |
//! | [`chip`] | chip models (`hw_models/*.toml`): mesh, capacities, number formats, price table, design-rule check |
//! | [`nir`] | NIR graphs (the Neuromorphic Intermediate Representation) read and written in HDF5, chains as layered nets |
//! | [`graph`] | a network's structure — populations, groups, projections — as the mapping places it |
//! | [`mapping`] | placement of a network graph on a chip's cores, mesh routes, hop histogram |
//! | [`emulator`] | the chip: cores running the firmware (`accord-firmware`) in fixed point or as the `f64` twin, graded or spiking, fire → credit → plasticity |
//! | [`ledger`] | exact per-primitive counts, format events, and their price on a chip model |
//! | [`backprop`] | an independent textbook backpropagation oracle the rule is checked against |
//! | [`data`] | bundled datasets (MNIST 8k/2k, UCI digits, iris) and CSV/IDX loaders |
//! | [`error`] | what the modules' typed errors share: a refused setting names its configuration field, never a command-line option |
//! | [`parallel`] | the one worker pool of the experiments: jobs over threads, results in job order |
//! | [`limits`] | the memory limit every size is checked against before allocation, bounded file reads |
//! | [`train`] | training loops and per-epoch accuracy |
//! | [`checkpoint`] | a run saved between samples: resume bit for bit, or reload its net |
//! | [`experiments`] | the experiments: [`experiments::verify`] (the rule ≡ backprop check), [`experiments::modularity`] (community detection and the learning-rate → modularity experiment), [`experiments::probe`] (the paper's three assumptions: balance function, equilibrium, clamp), [`experiments::all_to_all`] (the recipe's net on a chip beside `f64`), [`experiments::formats`] (number formats from a calibration run), the drivers [`experiments::sweep`] (grids over `accord train`'s options, the accuracy–energy front) and [`experiments::calibrate`] (measured silicon beside the chip models) |
//! | `plot` | PNG figures: line charts, heatmaps with colour bars, bar charts (feature `cli`) |
//! | [`output`] | files written whole (temporary name, then rename); compact number printing |
//! | `cli` | the `accord` command line (feature `cli`, on by default: the library alone is `default-features = false`) |
//!
//! ## The rule in one screen
//!
//! Each neuron `i` has a balance `u_i = Σ_j w_ij r_j + b_i` (excitation minus inhibition) and
//! fires at `r_i = f(u_i)`. Output neurons are handed a credit `c_k = −∂L/∂r_k`; every other
//! neuron collects retrograde messages from the neurons it projects to, through the same
//! synapses: `c_j = Σ_i w_ij δ_i` with `δ_i = g(u_i) c_i`. Each synapse then changes by
//! presynaptic rate times postsynaptic message, `Δw_ij = η δ_i r_j`. With `g = f'` this is
//! exactly gradient descent:
//!
//! ```
//! use accord::backprop::Mlp;
//! use accord::rule::{Activation, LayeredNet, Loss, Steps};
//!
//! // A 5-8-3 network: sigmoid hidden layer, linear outputs for cross-entropy.
//! let net = LayeredNet::glorot(&[5, 8, 3], &[Activation::Sigmoid, Activation::Identity], 42);
//! let x = [0.2, 0.0, 0.7, 1.0, 0.1];
//!
//! // The rule: fire, let credit settle, read the update it asks for.
//! let mut s = net.new_state();
//! net.fire(&x, &mut s);
//! net.credit(&mut s, 1, Loss::CrossEntropy, Steps::UntilSettled, true);
//! let update = net.updates(&s, 0.5);
//!
//! // Backpropagation, computed independently with transposed weights.
//! let grad = Mlp::from_layered(&net).gradients(&x, 1, Loss::CrossEntropy);
//! for l in 0..2 {
//!     for (dw, g) in update.w[l].iter().zip(&grad.dw[l].data) {
//!         assert!((dw + 0.5 * g).abs() <= 1e-12 * (1.0 + g.abs()));
//!     }
//! }
//! ```
//!
//! ## The rule on a chip
//!
//! The same network, placed on a modelled chip and run event by event in the chip's number
//! formats, with every primitive counted and priced:
//!
//! ```
//! use accord::chip::{self, Action};
//! use accord::emulator::{self, Arith, EmuConfig, FiringMode};
//! use accord::rule::{Activation, Loss};
//!
//! let split = accord::data::load("iris", &accord::data::default_data_dir(), 0).unwrap();
//! let cfg = EmuConfig {
//!     chip: chip::open("balance-core").unwrap(),
//!     hidden: vec![8],
//!     activation: Activation::HardSigmoid,
//!     loss: Loss::CrossEntropy,
//!     lr: 0.05,
//!     epochs: 3,
//!     seed: 1,
//!     mode: FiringMode::Graded,
//!     arith: Arith::Fixed,
//!     threads: 1,
//!     message_threshold: 0.0,
//!     rule: emulator::ChipRule::Balance,
//!     placement: accord::mapping::Placement::FewestCores,
//!     duplicate_inputs: true,
//! };
//! let report = emulator::run(&cfg, &split, None).unwrap();
//! // The retrograde pass walked the same synapse rows as the forward pass…
//! assert!(report.ledger.training.get(Action::RetroSop) > 0);
//! // …and every count has its price on the chip model, with evidence grades.
//! assert!(report.energy.training.dynamic_pj_per_sample > 0.0);
//! ```
//!
//! ## Reproducibility contract
//!
//! The same configuration and seed give bit-identical weights, counts and reports on every run
//! and at any thread count: initial weights and sample orders come from seeded portable
//! generators (pinned by value-stability tests), every random draw on a chip from a
//! counter-based stream keyed by entity, sample and purpose (never by thread or core), and all
//! tallies are integers merged in a fixed order. A run saved between samples and resumed
//! (`checkpoint`) ends with the same bits. A change that moves any figure for a given seed is
//! listed under "Reproducibility-breaking changes" in `CHANGELOG.md` (ARCHITECTURE.md §11).
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

pub mod backprop;
pub mod checkpoint;
pub mod chip;
#[cfg(feature = "cli")]
pub mod cli;
pub mod data;
pub mod emulator;
pub mod error;
pub mod experiments;
pub mod graph;
pub mod ledger;
pub mod limits;
pub mod mapping;
pub mod nir;
pub mod output;
pub mod parallel;
#[cfg(feature = "cli")]
pub mod plot;
pub mod rule;
pub mod train;
