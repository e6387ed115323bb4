//! The paper's central claim: with `g = f'` the balance rule is backpropagation. Checked against
//! the independent oracle, by finite differences, and through the equilibrium requirement.

use accord::backprop::Mlp;
use accord::rule::{Activation, LayeredNet, Loss, Steps};
use proptest::prelude::*;

/// ‖a − b‖ / ‖b‖ (0 when both vanish), computed here independently of `accord::experiments::verify`.
fn rel(a: &[f64], b: &[f64]) -> f64 {
    let d: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        .sqrt();
    let s: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    let s = if s > 0.0 {
        s
    } else {
        a.iter().map(|x| x * x).sum::<f64>().sqrt()
    };
    if d == 0.0 { 0.0 } else { d / s }
}

fn act_strategy() -> impl Strategy<Value = Activation> {
    prop::sample::select(Activation::ALL.to_vec())
}

fn case_strategy()
-> impl Strategy<Value = (Vec<usize>, Vec<Activation>, u64, Vec<f64>, usize, Loss)> {
    (2usize..=6)
        .prop_flat_map(|depth| {
            (
                prop::collection::vec(1usize..=64, depth + 1),
                prop::collection::vec(act_strategy(), depth),
                any::<u64>(),
                prop::collection::vec(-1.0f64..1.0, 64),
                any::<prop::sample::Index>(),
                prop::bool::ANY,
            )
        })
        .prop_map(|(sizes, acts, seed, xs, idx, mse)| {
            let x = xs[..sizes[0]].to_vec();
            let label = idx.index(*sizes.last().unwrap());
            let loss = if mse { Loss::Mse } else { Loss::CrossEntropy };
            (sizes, acts, seed, x, label, loss)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Credits equal −∂L/∂r and updates equal −η ∂L/∂W, −η ∂L/∂b to 1e-12 relative, on
    /// random nets of depth 2–6 and widths 1–64, every activation, both losses (a credit's
    /// deviation relative to the magnitude of the terms it sums, where cancellation makes the
    /// sum itself small).
    #[test]
    fn rule_equals_backprop((sizes, acts, seed, x, label, loss) in case_strategy()) {
        let mut net = LayeredNet::glorot(&sizes, &acts, seed);
        // Non-zero biases so that ReLU/hard-sigmoid kinks are not all hit at u = 0.
        for (l, layer) in net.layers.iter_mut().enumerate() {
            for (i, b) in layer.b.iter_mut().enumerate() {
                *b = 0.1 * (((seed as usize).wrapping_add(7 * l + 3 * i) % 11) as f64 - 5.0);
            }
        }
        let lr = 0.37;
        let mut s = net.new_state();
        net.fire(&x, &mut s);
        let rep = net.credit(&mut s, label, loss, Steps::UntilSettled, true);
        prop_assert!(rep.settled);
        // m − 1 steps, fewer when a layer's messages are all zero (dead ReLUs send nothing).
        prop_assert!(rep.steps < net.depth());
        let up = net.updates(&s, lr);
        // One more step delivers credit to the clamped input layer too.
        let mut s_in = s.clone();
        net.credit(&mut s_in, label, loss, Steps::Exactly(net.depth()), true);
        prop_assert_eq!(&s_in.c[1..], &s.c[1..]);
        s.c[0] = s_in.c[0].clone();
        let g = Mlp::from_layered(&net).gradients(&x, label, loss);
        // Floating point bounds a credit's error by the magnitude of what it sums, not by the
        // (possibly cancelled) sum: the same recursion in absolute values,
        // a_m = |c_m|, a_l = |W_l|ᵀ (|g(u_l)| ⊙ a_(l+1)).
        let m = net.depth();
        let mut scale = vec![vec![]; m + 1];
        scale[m] = s.c[m].iter().map(|v| v.abs()).collect::<Vec<f64>>();
        for l in (0..m).rev() {
            let layer = &net.layers[l];
            scale[l] = (0..layer.n_in)
                .map(|j| {
                    (0..layer.n_out)
                        .map(|i| {
                            let gi = layer.balance.g(layer.act, s.u[l][i]).abs();
                            layer.w[i * layer.n_in + j].abs() * gi * scale[l + 1][i]
                        })
                        .sum()
                })
                .collect();
        }
        let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
        for (l, sc) in scale.iter().enumerate() {
            let neg: Vec<f64> = g.da[l].iter().map(|v| -v).collect();
            let diff: Vec<f64> = s.c[l].iter().zip(&neg).map(|(a, b)| a - b).collect();
            let d = if norm(&diff) == 0.0 {
                0.0
            } else {
                norm(&diff) / norm(&neg).max(norm(sc))
            };
            prop_assert!(d <= 1e-12, "credit layer {} rel dev {}", l, d);
        }
        // An update is η δ_i r_j: its error scale is η |g| a_(l+1) times |r_j|.
        let scaled = |got: &[f64], want: &[f64], sc: &[f64]| {
            let diff: Vec<f64> = got.iter().zip(want).map(|(a, b)| a - b).collect();
            if norm(&diff) == 0.0 {
                0.0
            } else {
                norm(&diff) / norm(want).max(norm(sc))
            }
        };
        for l in 0..m {
            let layer = &net.layers[l];
            let dscale: Vec<f64> = (0..layer.n_out)
                .map(|i| lr * layer.balance.g(layer.act, s.u[l][i]).abs() * scale[l + 1][i])
                .collect();
            let mut wscale = Vec::with_capacity(layer.n_out * layer.n_in);
            for &d in &dscale {
                wscale.extend(s.r[l].iter().map(|r| r.abs() * d));
            }
            let dw: Vec<f64> = g.dw[l].data.iter().map(|v| -lr * v).collect();
            let db: Vec<f64> = g.db[l].iter().map(|v| -lr * v).collect();
            let (ew, eb) = (scaled(&up.w[l], &dw, &wscale), scaled(&up.b[l], &db, &dscale));
            prop_assert!(ew <= 1e-12, "weights layer {} rel dev {}", l, ew);
            prop_assert!(eb <= 1e-12, "biases layer {} rel dev {}", l, eb);
        }
    }
}

/// Finite differences of the loss itself agree with the rule's update `−Δw/η`.
#[test]
fn finite_difference_gradient_check() {
    for (acts, loss) in [
        (
            vec![Activation::Sigmoid, Activation::Tanh, Activation::Identity],
            Loss::CrossEntropy,
        ),
        (
            vec![Activation::Tanh, Activation::Sigmoid, Activation::Sigmoid],
            Loss::Mse,
        ),
    ] {
        let net = LayeredNet::glorot(&[4, 5, 3, 3], &acts, 11);
        let x = [0.3, -0.8, 0.5, 0.05];
        let label = 2;
        let lr = 1.0;
        let mut s = net.new_state();
        net.fire(&x, &mut s);
        net.credit(&mut s, label, loss, Steps::UntilSettled, true);
        let up = net.updates(&s, lr);
        let loss_of = |n: &LayeredNet| {
            let mut t = n.new_state();
            n.fire(&x, &mut t);
            loss.value(n.output(&t), label)
        };
        let h = 1e-6;
        for l in 0..net.depth() {
            for k in 0..net.layers[l].w.len() {
                let mut p = net.clone();
                p.layers[l].w[k] += h;
                let mut m = net.clone();
                m.layers[l].w[k] -= h;
                let fd = (loss_of(&p) - loss_of(&m)) / (2.0 * h);
                assert!(
                    (up.w[l][k] + lr * fd).abs() < 1e-7,
                    "layer {l} weight {k}: rule {} vs fd {}",
                    up.w[l][k],
                    -fd
                );
            }
        }
    }
}

/// With `m` synaptic layers, the first layer's update is exact after `m − 1` retrograde steps
/// and differs (is wrong) after `m − 2`: the equilibrium requirement.
#[test]
fn equilibrium_requirement() {
    for m in 2..=5 {
        let sizes: Vec<usize> = (0..=m).map(|k| 3 + k).collect();
        let mut acts = vec![Activation::Tanh; m - 1];
        acts.push(Activation::Identity);
        let net = LayeredNet::glorot(&sizes, &acts, 5 + m as u64);
        let x: Vec<f64> = (0..sizes[0]).map(|k| 0.2 * k as f64 - 0.3).collect();
        let g = Mlp::from_layered(&net).gradients(&x, 1, Loss::CrossEntropy);
        let truth: Vec<f64> = g.dw[0].data.iter().map(|v| -v).collect();
        let first_layer = |k: usize| {
            let mut s = net.new_state();
            net.fire(&x, &mut s);
            let rep = net.credit(&mut s, 1, Loss::CrossEntropy, Steps::Exactly(k), true);
            assert_eq!(rep.steps, k);
            net.updates(&s, 1.0).w[0].clone()
        };
        let exact = first_layer(m - 1);
        assert!(rel(&exact, &truth) <= 1e-12, "m = {m}: m-1 steps not exact");
        let early = first_layer(m - 2);
        assert!(
            rel(&early, &truth) > 0.5,
            "m = {m}: m-2 steps should be wrong"
        );
        // From zero credits, one step short leaves the first layer's credit at zero.
        assert!(early.iter().all(|&v| v == 0.0));
    }
}

/// Stale credits (no reset between samples) are overwritten once the credit settles.
#[test]
fn stale_credits_settle_to_the_same_answer() {
    let net = LayeredNet::glorot(
        &[3, 4, 4, 2],
        &[Activation::Sigmoid, Activation::Relu, Activation::Identity],
        3,
    );
    let mut s = net.new_state();
    net.fire(&[1.0, 0.0, 0.5], &mut s);
    net.credit(&mut s, 0, Loss::CrossEntropy, Steps::UntilSettled, true);
    net.fire(&[0.1, 0.9, 0.2], &mut s);
    let stale = net.credit(&mut s, 1, Loss::CrossEntropy, Steps::UntilSettled, false);
    assert!(stale.settled);
    let mut fresh = net.new_state();
    net.fire(&[0.1, 0.9, 0.2], &mut fresh);
    net.credit(&mut fresh, 1, Loss::CrossEntropy, Steps::UntilSettled, true);
    assert_eq!(s.c, fresh.c);
    assert_eq!(s.delta, fresh.delta);
}

/// `accord verify`'s own check passes on a fixed seed.
#[test]
fn verify_command_check_passes() {
    let r = accord::experiments::verify::verify(100, 9);
    assert!(r.pass, "max rel dev {}", r.max_rel_dev);
    assert!(r.per_depth.iter().all(|&(_, n, _)| n == 20));
}
