//! Activation functions `f` and their exact balance functions `g = f'`.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// A neuron's transfer function `r = f(u)` from balance (net input) `u` to firing rate `r`.
///
/// Each activation carries its exact derivative, which is the balance function that makes the
/// rule equal to gradient descent. At the kinks of ReLU and the hard sigmoid the derivative is
/// taken as the right-continuous one-sided value of the linear piece (`f'(0) = 1` for ReLU,
/// `f'(0) = 1`, `f'(1) = 0` for the hard sigmoid), the same convention the backprop oracle uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Activation {
    /// Logistic sigmoid `1 / (1 + e^{-u})`.
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
    /// Rectified linear `max(u, 0)`.
    Relu,
    /// Hard sigmoid / clipped ReLU `clip(u, 0, 1)`: what an integrate-and-fire neuron's rate
    /// approximates.
    HardSigmoid,
    /// Identity `f(u) = u` (linear read-out).
    Identity,
}

impl Activation {
    /// Every activation, in a fixed order.
    pub const ALL: [Activation; 5] = [
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Relu,
        Activation::HardSigmoid,
        Activation::Identity,
    ];

    /// The rate `f(u)`.
    #[inline]
    pub fn f(self, u: f64) -> f64 {
        match self {
            Activation::Sigmoid => 1.0 / (1.0 + (-u).exp()),
            Activation::Tanh => u.tanh(),
            Activation::Relu => u.max(0.0),
            Activation::HardSigmoid => u.clamp(0.0, 1.0),
            Activation::Identity => u,
        }
    }

    /// The exact derivative `f'(u)`.
    #[inline]
    pub fn df(self, u: f64) -> f64 {
        match self {
            Activation::Sigmoid => {
                let s = 1.0 / (1.0 + (-u).exp());
                s * (1.0 - s)
            }
            Activation::Tanh => {
                let t = u.tanh();
                1.0 - t * t
            }
            Activation::Relu => {
                if u >= 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::HardSigmoid => {
                if (0.0..1.0).contains(&u) {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::Identity => 1.0,
        }
    }

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Relu => "relu",
            Activation::HardSigmoid => "hard-sigmoid",
            Activation::Identity => "identity",
        }
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Activation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Activation::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown activation '{s}' (allowed: sigmoid, tanh, relu, hard-sigmoid, identity)"
                )
            })
    }
}

/// The balance function `g(u)` a neuron uses to weight its credit.
///
/// [`Balance::Exact`] is `g = f'`, the case in which the rule is gradient descent. A
/// [`Balance::Custom`] `g` lets experiments break that assumption on purpose (a quantised
/// table, a constant, a shifted derivative, a measured transfer slope).
#[derive(Clone, Default)]
pub enum Balance {
    /// `g = f'` of the layer's activation.
    #[default]
    Exact,
    /// Any function of the neuron's own balance `u`, with a label for reports.
    Custom(Arc<dyn Fn(f64) -> f64 + Send + Sync>, String),
}

impl Balance {
    /// A custom balance function with a label.
    pub fn custom(
        label: impl Into<String>,
        g: impl Fn(f64) -> f64 + Send + Sync + 'static,
    ) -> Self {
        Balance::Custom(Arc::new(g), label.into())
    }

    /// Evaluate `g(u)` for a neuron with activation `act`.
    #[inline]
    pub fn g(&self, act: Activation, u: f64) -> f64 {
        match self {
            Balance::Exact => act.df(u),
            Balance::Custom(g, _) => g(u),
        }
    }

    /// Whether this is the exact `g = f'`.
    pub fn is_exact(&self) -> bool {
        matches!(self, Balance::Exact)
    }
}

impl fmt::Debug for Balance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Balance::Exact => f.write_str("Exact"),
            Balance::Custom(_, label) => write!(f, "Custom({label})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivative_matches_central_difference() {
        let h = 1e-6;
        for act in Activation::ALL {
            for &u in &[-3.1, -0.7, 0.3, 0.55, 2.4] {
                let fd = (act.f(u + h) - act.f(u - h)) / (2.0 * h);
                assert!(
                    (fd - act.df(u)).abs() < 1e-8,
                    "{act} at {u}: {fd} vs {}",
                    act.df(u)
                );
            }
        }
    }

    #[test]
    fn golden_values() {
        assert_eq!(Activation::Sigmoid.f(0.0), 0.5);
        assert_eq!(Activation::Sigmoid.df(0.0), 0.25);
        assert_eq!(Activation::HardSigmoid.f(1.5), 1.0);
        assert_eq!(Activation::HardSigmoid.df(1.0), 0.0);
        assert_eq!(Activation::Relu.df(0.0), 1.0);
        assert_eq!(Activation::Tanh.df(0.0), 1.0);
        assert_eq!(
            "hard-sigmoid".parse::<Activation>(),
            Ok(Activation::HardSigmoid)
        );
        assert!(
            "swish"
                .parse::<Activation>()
                .unwrap_err()
                .contains("allowed")
        );
    }
}
