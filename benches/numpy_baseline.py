#!/usr/bin/env python3
"""Plain NumPy per-sample SGD baseline for the README's "emulator vs NumPy on the same net".

What it measures: the wall time of a float64 backpropagation MLP trained one sample at a time
(batch size 1) on the bundled MNIST subset (data/mnist10k-*, 8,000 train / 2,000 test):

* mean milliseconds per training sample (forward, backward, update) for 784-128-10 and
  784-1000-1000-10, over a fixed number of samples after a short warm-up;
* seconds per epoch of 784-128-10 over the 8,000 training samples, and its test accuracy after
  5 epochs (expect about 94-95 %), to show that the loop is a correct learner.

The nets: hard-sigmoid hidden units clip(u, 0, 1) (derivative 1 on (0, 1), 0 elsewhere), linear
outputs with softmax cross-entropy, Glorot-uniform weights, zero biases, learning rate 0.02.
Credit at the output is y - softmax(out); a hidden layer's delta is g'(u) * (W^T delta_above);
each layer is updated W += lr * delta r^T, b += lr * delta.

Run from the repository root, pinned to one BLAS thread for a one-thread comparison:

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 python3 benches/numpy_baseline.py [--json]

The thread variables must be set before NumPy starts; the script reports the thread count BLAS
was allowed. Needs only NumPy (threadpoolctl, if installed, is used to report the BLAS library).
This is a reference for the README's timing comparison; the Rust build and tests do not use it.
"""
import argparse
import gzip
import json
import os
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent.parent / "data"
LR = 0.02
SEED = 1


def load_idx(name):
    """Read a gzipped IDX file (big-endian header: magic, dims) into a uint8 array."""
    raw = gzip.open(DATA / name, "rb").read()
    ndim = raw[3]
    dims = np.frombuffer(raw, ">u4", count=ndim, offset=4)
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_mnist(split):
    x = load_idx(f"mnist10k-{split}-images-idx3-ubyte.gz").reshape(-1, 784) / 255.0
    y = load_idx(f"mnist10k-{split}-labels-idx1-ubyte.gz").astype(np.int64)
    return x, y


def init_net(sizes, rng):
    """Glorot-uniform weights (shape out x in), zero biases."""
    net = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        a = np.sqrt(6.0 / (n_in + n_out))
        net.append((rng.uniform(-a, a, (n_out, n_in)), np.zeros(n_out)))
    return net


def forward(net, x):
    """Return each layer's input r and pre-activation u; the last u is the linear output."""
    rs, us = [], []
    r = x
    for i, (w, b) in enumerate(net):
        u = w @ r + b
        rs.append(r)
        us.append(u)
        r = np.clip(u, 0.0, 1.0) if i < len(net) - 1 else u
    return rs, us


def train_sample(net, x, label):
    rs, us = forward(net, x)
    out = us[-1]
    p = np.exp(out - out.max())
    p /= p.sum()
    delta = -p
    delta[label] += 1.0  # y - softmax(out)
    for i in range(len(net) - 1, -1, -1):
        w, b = net[i]
        below = None
        if i > 0:  # delta for the layer below, with the weights before this update
            u = us[i - 1]
            below = ((u > 0.0) & (u < 1.0)) * (w.T @ delta)
        w += LR * np.outer(delta, rs[i])
        b += LR * delta
        delta = below


def accuracy(net, x, y):
    r = x.T
    for i, (w, b) in enumerate(net):
        u = w @ r + b[:, None]
        r = np.clip(u, 0.0, 1.0) if i < len(net) - 1 else u
    return float((r.argmax(axis=0) == y).mean())


def ms_per_sample(sizes, x, y, n, warmup):
    rng = np.random.default_rng(SEED)
    net = init_net(sizes, rng)
    order = rng.permutation(len(x))
    for k in order[:warmup]:
        train_sample(net, x[k], y[k])
    t0 = time.perf_counter()
    for k in order[warmup:warmup + n]:
        train_sample(net, x[k], y[k])
    return (time.perf_counter() - t0) / n * 1e3


def blas_info():
    """BLAS library and its allowed thread count (threadpoolctl if present, else the env)."""
    try:
        from threadpoolctl import threadpool_info
        for p in threadpool_info():
            if p.get("user_api") == "blas":
                return f"{p['internal_api']} {p.get('version') or ''}".strip(), p["num_threads"]
    except ImportError:
        pass
    try:  # NumPy >= 1.26: the BLAS NumPy was built against
        dep = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{dep['name']} {dep.get('version', '')}".strip()
    except Exception:
        blas = "unknown (see numpy.show_config())"
    for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
        if os.environ.get(var, "").isdigit():
            return blas, int(os.environ[var])
    return blas, os.cpu_count()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--epochs", type=int, default=5, help="epochs of 784-128-10 (default 5)")
    args = ap.parse_args()

    xtr, ytr = load_mnist("train")
    xte, yte = load_mnist("test")
    blas, threads = blas_info()

    per_sample = {
        "784-128-10": ms_per_sample([784, 128, 10], xtr, ytr, n=2000, warmup=200),
        "784-1000-1000-10": ms_per_sample([784, 1000, 1000, 10], xtr, ytr, n=200, warmup=20),
    }

    rng = np.random.default_rng(SEED)
    net = init_net([784, 128, 10], rng)
    epoch_s = []
    for _ in range(args.epochs):
        order = rng.permutation(len(xtr))
        t0 = time.perf_counter()
        for k in order:
            train_sample(net, xtr[k], ytr[k])
        epoch_s.append(time.perf_counter() - t0)
    acc = accuracy(net, xte, yte)

    result = {
        "numpy": np.__version__,
        "blas": blas,
        "blas_threads": threads,
        "ms_per_sample": per_sample,
        "mnist_784_128_10": {
            "train_samples": len(xtr),
            "seconds_per_epoch": sum(epoch_s) / len(epoch_s),
            "epochs": args.epochs,
            "test_accuracy": acc,
        },
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"NumPy {np.__version__}, BLAS {blas}, {threads} thread(s); float64, batch 1, lr {LR}")
    print(f"{'net':<20}{'ms / sample':>12}")
    for name, ms in per_sample.items():
        print(f"{name:<20}{ms:>12.3f}")
    print(f"784-128-10: {result['mnist_784_128_10']['seconds_per_epoch']:.2f} s per epoch "
          f"({len(xtr)} samples, mean of {args.epochs}); "
          f"test accuracy after {args.epochs} epochs {100 * acc:.2f} % ({len(xte)} images)")


if __name__ == "__main__":
    main()
