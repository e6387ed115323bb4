//! The E-I balance rule in `f64`: the reference every other part of accord is measured against.
//!
//! Fan & Mysore, "Contribute to balance, wire in accordance: Emergence of backpropagation from a
//! simple, bio-plausible neuroplasticity rule", arXiv:2405.14139. As accord defines it:
//!
//! * **balance** (net input) `u_i = Σ_j w_ij r_j + b_i`, **firing** `r_i = f(u_i)` at
//!   equilibrium (one sweep in a layered net, a relaxation in a recurrent one);
//! * **credit**: output neurons receive `c_k = −∂L/∂r_k`; every other neuron receives
//!   retrograde messages through the same synapses, `c_j ← Σ_i w_ij g(u_i) c_i`, where
//!   `g` is the neuron's **balance function** (`g = f'` exactly);
//! * **plasticity**: `Δw_ij = η δ_i r_j`, `Δb_i = η δ_i`, with `δ_i = g(u_i) c_i`.
//!
//! With `g = f'` and `m − 1` retrograde steps in an `m`-layer net, the credits are `−∂L/∂r`
//! and the update is plain gradient descent: the test suite checks this against the
//! independent [`backprop`](crate::backprop) oracle to 1e-12 on every run.
//!
//! ```
//! use accord::rule::{Activation, LayeredNet, Loss, Steps};
//!
//! let mut net = LayeredNet::glorot(&[4, 8, 3], &[Activation::Sigmoid, Activation::Identity], 7);
//! let mut s = net.new_state();
//! net.fire(&[0.1, 0.9, 0.0, 0.5], &mut s);
//! let report = net.credit(&mut s, 2, Loss::CrossEntropy, Steps::UntilSettled, true);
//! assert!(report.settled);
//! net.apply_plasticity(&s, 0.1);
//! ```

mod activation;
mod general;
mod layered;
mod loss;

pub use activation::{Activation, Balance};
pub use general::{
    CreditOptions, CreditOutcome, GeneralNet, GeneralState, RelaxOptions, Relaxation, Settle,
    norm2, spectral_radius,
};
pub use layered::{CreditReport, Layer, LayeredNet, LayeredState, Steps, Updates, glorot_weights};
pub use loss::{Loss, argmax};
