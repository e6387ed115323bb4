//! An independent backpropagation oracle, written the textbook way: a forward pass that keeps
//! pre-activations, output error `∂L/∂a`, then layer deltas `δ_l = (W_{l+1}ᵀ δ_{l+1}) ⊙ f'(z_l)`
//! through explicitly transposed weight matrices.
//!
//! It shares nothing with [`rule`](crate::rule) beyond the activation functions: its own matrix
//! type, its own loss gradients, its own update. Tests use it to show that the balance rule *is*
//! gradient descent; `accord train --rule backprop` uses it as the comparison rule.
//!
//! ```
//! use accord::backprop::Mlp;
//! use accord::rule::{Activation, LayeredNet, Loss};
//!
//! let net = LayeredNet::glorot(&[3, 5, 2], &[Activation::Tanh, Activation::Identity], 1);
//! let mlp = Mlp::from_layered(&net);
//! let g = mlp.gradients(&[0.2, -0.4, 0.9], 1, Loss::CrossEntropy);
//! assert_eq!(g.dw[0].rows, 5);
//! ```

use crate::rule::{Activation, LayeredNet, Loss};

/// A dense row-major matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Entries, row-major.
    pub data: Vec<f64>,
}

impl Matrix {
    /// A zero matrix.
    pub fn zeros(rows: usize, cols: usize) -> Self {
        Matrix {
            rows,
            cols,
            data: vec![0.0; rows * cols],
        }
    }

    /// Entry `(i, j)`.
    pub fn at(&self, i: usize, j: usize) -> f64 {
        self.data[i * self.cols + j]
    }

    /// The transpose, materialised.
    pub fn transpose(&self) -> Matrix {
        let mut t = Matrix::zeros(self.cols, self.rows);
        for i in 0..self.rows {
            for j in 0..self.cols {
                t.data[j * self.rows + i] = self.data[i * self.cols + j];
            }
        }
        t
    }

    /// `self · v`.
    pub fn matvec(&self, v: &[f64]) -> Vec<f64> {
        assert_eq!(v.len(), self.cols);
        (0..self.rows)
            .map(|i| {
                self.data[i * self.cols..(i + 1) * self.cols]
                    .iter()
                    .zip(v)
                    .map(|(a, b)| a * b)
                    .sum()
            })
            .collect()
    }

    /// The outer product `a bᵀ`.
    pub fn outer(a: &[f64], b: &[f64]) -> Matrix {
        let mut m = Matrix::zeros(a.len(), b.len());
        for (i, &ai) in a.iter().enumerate() {
            for (j, &bj) in b.iter().enumerate() {
                m.data[i * b.len() + j] = ai * bj;
            }
        }
        m
    }
}

/// A multilayer perceptron: weight matrices `W_l` (`n_out × n_in`), biases and activations.
#[derive(Clone, Debug)]
pub struct Mlp {
    /// Weights per layer.
    pub w: Vec<Matrix>,
    /// Biases per layer.
    pub b: Vec<Vec<f64>>,
    /// Activation per layer.
    pub act: Vec<Activation>,
}

/// Gradients of the loss for one sample.
#[derive(Clone, Debug)]
pub struct Gradients {
    /// `∂L/∂W_l`.
    pub dw: Vec<Matrix>,
    /// `∂L/∂b_l`.
    pub db: Vec<Vec<f64>>,
    /// `∂L/∂a_l` for every neuron layer, input (`l = 0`) included.
    pub da: Vec<Vec<f64>>,
    /// Activations of the forward pass, input included.
    pub a: Vec<Vec<f64>>,
}

impl Mlp {
    /// Copy weights, biases and activations out of a layered net.
    pub fn from_layered(net: &LayeredNet) -> Self {
        Mlp {
            w: net
                .layers
                .iter()
                .map(|l| Matrix {
                    rows: l.n_out,
                    cols: l.n_in,
                    data: l.w.clone(),
                })
                .collect(),
            b: net.layers.iter().map(|l| l.b.clone()).collect(),
            act: net.layers.iter().map(|l| l.act).collect(),
        }
    }

    /// Forward pass: pre-activations `z_l` and activations `a_l` (input first).
    pub fn forward(&self, x: &[f64]) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
        let mut a = vec![x.to_vec()];
        let mut z = Vec::new();
        for l in 0..self.w.len() {
            let zl: Vec<f64> = self.w[l]
                .matvec(&a[l])
                .iter()
                .zip(&self.b[l])
                .map(|(p, q)| p + q)
                .collect();
            a.push(zl.iter().map(|&v| self.act[l].f(v)).collect());
            z.push(zl);
        }
        (z, a)
    }

    /// Output of the forward pass.
    pub fn predict(&self, x: &[f64]) -> Vec<f64> {
        self.forward(x).1.pop().unwrap_or_default()
    }

    /// Backpropagation for one sample of class `label`.
    pub fn gradients(&self, x: &[f64], label: usize, loss: Loss) -> Gradients {
        let (z, a) = self.forward(x);
        let m = self.w.len();
        let out = &a[m];
        // ∂L/∂a at the output, computed here independently of rule::Loss.
        let dl_da: Vec<f64> = match loss {
            Loss::Mse => out
                .iter()
                .enumerate()
                .map(|(k, &o)| o - if k == label { 1.0 } else { 0.0 })
                .collect(),
            Loss::CrossEntropy => {
                let mx = out.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let ex: Vec<f64> = out.iter().map(|&o| (o - mx).exp()).collect();
                let s: f64 = ex.iter().sum();
                ex.iter()
                    .enumerate()
                    .map(|(k, &e)| e / s - if k == label { 1.0 } else { 0.0 })
                    .collect()
            }
        };
        let mut da = vec![Vec::new(); m + 1];
        let mut dw = vec![Matrix::zeros(0, 0); m];
        let mut db = vec![Vec::new(); m];
        da[m] = dl_da;
        for l in (0..m).rev() {
            // δ_l = ∂L/∂z_l = ∂L/∂a_{l+1} ⊙ f'(z_l)
            let delta: Vec<f64> = da[l + 1]
                .iter()
                .zip(&z[l])
                .map(|(&g, &zz)| g * self.act[l].df(zz))
                .collect();
            dw[l] = Matrix::outer(&delta, &a[l]);
            da[l] = self.w[l].transpose().matvec(&delta);
            db[l] = delta;
        }
        Gradients { dw, db, da, a }
    }

    /// Plain SGD step `W ← W − η ∂L/∂W`, `b ← b − η ∂L/∂b`.
    pub fn sgd_step(&mut self, g: &Gradients, lr: f64) {
        for l in 0..self.w.len() {
            for (w, d) in self.w[l].data.iter_mut().zip(&g.dw[l].data) {
                *w -= lr * d;
            }
            for (b, d) in self.b[l].iter_mut().zip(&g.db[l]) {
                *b -= lr * d;
            }
        }
    }

    /// Write the weights back into a layered net of the same shape.
    pub fn write_into(&self, net: &mut LayeredNet) {
        for (l, layer) in net.layers.iter_mut().enumerate() {
            layer.w.copy_from_slice(&self.w[l].data);
            layer.b.copy_from_slice(&self.b[l]);
        }
    }
}
