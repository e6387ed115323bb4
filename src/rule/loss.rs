//! Output losses and the external credit they clamp onto output neurons.

use std::fmt;
use std::str::FromStr;

/// The loss on the output rates `r` against a one-hot target `y`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Loss {
    /// `L = ½ Σ_k (r_k − y_k)²`; clamp `c_k = y_k − r_k`.
    Mse,
    /// Softmax cross-entropy on linear outputs, `L = −Σ_k y_k log softmax(r)_k`;
    /// clamp `c_k = y_k − softmax(r)_k`.
    CrossEntropy,
}

impl Loss {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Loss::Mse => "mse",
            Loss::CrossEntropy => "ce",
        }
    }

    /// Loss value of output rates `r` against class `label`.
    pub fn value(self, r: &[f64], label: usize) -> f64 {
        match self {
            Loss::Mse => r
                .iter()
                .enumerate()
                .map(|(k, &rk)| {
                    let d = rk - if k == label { 1.0 } else { 0.0 };
                    0.5 * d * d
                })
                .sum(),
            Loss::CrossEntropy => {
                let m = r.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let lse = m + r.iter().map(|&x| (x - m).exp()).sum::<f64>().ln();
                lse - r[label]
            }
        }
    }

    /// Write the external credit `c_k = −∂L/∂r_k` for class `label` into `out`.
    pub fn output_credit(self, r: &[f64], label: usize, out: &mut [f64]) {
        debug_assert_eq!(r.len(), out.len());
        match self {
            Loss::Mse => {
                for (k, (o, &rk)) in out.iter_mut().zip(r).enumerate() {
                    *o = if k == label { 1.0 } else { 0.0 } - rk;
                }
            }
            Loss::CrossEntropy => {
                let m = r.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let mut z = 0.0;
                for (o, &rk) in out.iter_mut().zip(r) {
                    *o = (rk - m).exp();
                    z += *o;
                }
                for (k, o) in out.iter_mut().enumerate() {
                    *o = if k == label { 1.0 } else { 0.0 } - *o / z;
                }
            }
        }
    }
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Loss {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "mse" => Ok(Loss::Mse),
            "ce" | "cross-entropy" => Ok(Loss::CrossEntropy),
            _ => Err(format!("unknown loss '{s}' (allowed: mse, ce)")),
        }
    }
}

/// Index of the largest value (first on ties): the predicted class.
pub fn argmax(r: &[f64]) -> usize {
    let mut best = 0;
    for (k, &v) in r.iter().enumerate() {
        if v > r[best] {
            best = k;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credit_is_minus_loss_gradient() {
        let r = [0.3, -1.2, 0.8, 2.0];
        let h = 1e-6;
        for loss in [Loss::Mse, Loss::CrossEntropy] {
            let mut c = [0.0; 4];
            loss.output_credit(&r, 2, &mut c);
            for k in 0..4 {
                let mut rp = r;
                let mut rm = r;
                rp[k] += h;
                rm[k] -= h;
                let g = (loss.value(&rp, 2) - loss.value(&rm, 2)) / (2.0 * h);
                assert!((c[k] + g).abs() < 1e-8, "{loss} k={k}");
            }
        }
    }

    #[test]
    fn golden_values() {
        assert_eq!(Loss::Mse.value(&[1.0, 0.5], 0), 0.125);
        let v = Loss::CrossEntropy.value(&[0.0, 0.0], 1);
        assert!((v - std::f64::consts::LN_2).abs() < 1e-15);
        assert_eq!(argmax(&[0.1, 0.9, 0.9]), 1);
    }
}
