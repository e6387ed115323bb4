//! Recurrent (all-to-all) networks: with the output clamp the settled credits are the gradient
//! at the settled firing state (Almeida–Pineda); without it the credit vanishes or diverges,
//! reported as a value, never as NaN.

use accord::rule::{
    Activation, Balance, CreditOptions, GeneralNet, Loss, RelaxOptions, Settle, spectral_radius,
};

fn tight() -> RelaxOptions {
    RelaxOptions {
        tol: 1e-15,
        max_iter: 10_000,
        damping: 1.0,
    }
}

fn loss_at(net: &GeneralNet, x: &[f64], label: usize, loss: Loss) -> f64 {
    let mut s = net.new_state();
    let r = net.fire(x, &mut s, &tight());
    assert_eq!(r.settle, Settle::Converged);
    loss.value(net.output(&s), label)
}

/// Settled credits give `−∂L/∂w` at the settled state: checked by finite differences through
/// the whole relaxation, on several random nets with credit spectral radius < 1.
#[test]
fn clamped_credit_is_the_recurrent_gradient() {
    let mut checked = 0;
    for (seed, hidden, out, loss) in [
        (1u64, Activation::Tanh, Activation::Tanh, Loss::Mse),
        (
            2,
            Activation::Sigmoid,
            Activation::Identity,
            Loss::CrossEntropy,
        ),
        (3, Activation::Tanh, Activation::Sigmoid, Loss::Mse),
        (
            4,
            Activation::Tanh,
            Activation::Identity,
            Loss::CrossEntropy,
        ),
    ] {
        let mut net = GeneralNet::all_to_all(7, 2, 2, hidden, out, 1.2, seed);
        for (i, b) in net.b.iter_mut().enumerate() {
            *b = 0.05 * i as f64 - 0.1;
        }
        let x = [0.7, -0.4];
        let label = 1;
        let mut s = net.new_state();
        assert_eq!(net.fire(&x, &mut s, &tight()).settle, Settle::Converged);
        let rho = net.credit_spectral_radius(&s);
        assert!(
            rho < 1.0,
            "seed {seed}: spectral radius {rho} should be < 1 for this test"
        );
        let opt = CreditOptions {
            tol: 1e-15,
            max_steps: 10_000,
            ..CreditOptions::default()
        };
        let out_c = net.credit(&mut s, label, loss, &opt);
        assert_eq!(out_c.settle, Settle::Converged);
        let (dw, db) = net.updates(&s, 1.0);
        let h = 1e-6;
        for i in 0..net.n {
            for j in 0..net.n {
                if !net.mask[i * net.n + j] {
                    assert_eq!(dw[i * net.n + j], 0.0);
                    continue;
                }
                let mut p = net.clone();
                p.w[i * net.n + j] += h;
                let mut m = net.clone();
                m.w[i * net.n + j] -= h;
                let fd = (loss_at(&p, &x, label, loss) - loss_at(&m, &x, label, loss)) / (2.0 * h);
                assert!(
                    (dw[i * net.n + j] + fd).abs() < 1e-6 * (1.0 + fd.abs()),
                    "seed {seed} w[{i}][{j}]: rule {} vs -fd {}",
                    dw[i * net.n + j],
                    -fd
                );
                checked += 1;
            }
            if i >= net.n_in {
                let mut p = net.clone();
                p.b[i] += h;
                let mut m = net.clone();
                m.b[i] -= h;
                let fd = (loss_at(&p, &x, label, loss) - loss_at(&m, &x, label, loss)) / (2.0 * h);
                assert!(
                    (db[i] + fd).abs() < 1e-6 * (1.0 + fd.abs()),
                    "seed {seed} b[{i}]"
                );
            }
        }
    }
    assert!(checked > 100);
}

/// A tanh net whose balance function is the constant 1, with W rescaled so that the credit
/// iteration has spectral radius exactly `rho`.
fn net_with_radius(rho: f64, seed: u64) -> (GeneralNet, accord::rule::GeneralState) {
    let mut net = GeneralNet::all_to_all(12, 3, 3, Activation::Tanh, Activation::Tanh, 1.0, seed);
    net.balance = Balance::custom("constant 1", |_| 1.0);
    let mut s = net.new_state();
    net.fire(&[0.5, -0.5, 0.25], &mut s, &RelaxOptions::default());
    let r0 = net.credit_spectral_radius(&s);
    net.w.iter_mut().for_each(|w| *w *= rho / r0);
    let mut s = net.new_state();
    net.fire(&[0.5, -0.5, 0.25], &mut s, &RelaxOptions::default());
    (net, s)
}

/// Without the clamp: radius < 1 → the credit vanishes; radius > 1 → it diverges. Both are
/// reported with the step and a growth rate close to the radius; no NaN is passed on.
#[test]
fn unclamped_credit_vanishes_or_diverges() {
    for (rho, want) in [(0.6, Settle::Vanished), (1.5, Settle::Diverged)] {
        let (net, mut s) = net_with_radius(rho, 21);
        let measured = net.credit_spectral_radius(&s);
        assert!((measured - rho).abs() < 1e-6, "{measured} vs {rho}");
        let opt = CreditOptions {
            clamp: false,
            max_steps: 100_000,
            ..CreditOptions::default()
        };
        let out = net.credit(&mut s, 0, Loss::Mse, &opt);
        assert_eq!(out.settle, want, "rho {rho}");
        assert!(out.left_range_at.is_some());
        let g = out.growth_rate.expect("growth rate");
        assert!((g - rho).abs() < 0.05 * rho, "growth {g} vs radius {rho}");
        assert!(s.c.iter().all(|c| c.is_finite()));
        assert!(s.delta.iter().all(|d| d.is_finite()));
        assert!(out.norms.iter().all(|n| n.is_finite()));
    }
}

/// A relaxation that cannot settle reports it (cap or divergence) instead of looping or
/// returning NaN.
#[test]
fn relaxation_reports_non_convergence() {
    // Identity neurons with radius 2: the rates blow up until they are no longer finite.
    let mut net =
        GeneralNet::all_to_all(10, 2, 2, Activation::Identity, Activation::Identity, 1.0, 5);
    let m: Vec<f64> = net.w.clone();
    let rho = spectral_radius(&m, net.n);
    net.w.iter_mut().for_each(|w| *w *= 2.0 / rho);
    let mut s = net.new_state();
    let r = net.fire(
        &[1.0, 1.0],
        &mut s,
        &RelaxOptions {
            tol: 1e-12,
            max_iter: 100_000,
            damping: 1.0,
        },
    );
    assert_eq!(r.settle, Settle::Diverged);
    assert!(s.r.iter().all(|v| v.is_finite()));
    // The same net with a small cap: iteration cap, finite residual.
    let mut s = net.new_state();
    let r = net.fire(
        &[1.0, 1.0],
        &mut s,
        &RelaxOptions {
            tol: 1e-12,
            max_iter: 20,
            damping: 1.0,
        },
    );
    assert_eq!(r.settle, Settle::IterationCap);
    assert_eq!(r.iterations, 20);
    assert!(r.residual.is_finite() && r.residual > 0.0);
}
