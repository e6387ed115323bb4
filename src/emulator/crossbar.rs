//! A binary crossbar with axon types (TrueNorth): how a core's real weights become what it can
//! hold (ARCHITECTURE.md §8).
//!
//! On such a core a synapse is only connected or not (`c_ij ∈ {0, 1}`), every input axon `j`
//! has one of `T` types `G_j`, and every neuron `i` one signed weight per type `s_i^g`: the
//! effective weight is `c_ij · s_i^{G_j}`. [`fit`] chooses the types, the per-neuron weights and
//! the connections for a core's rows by alternating least squares:
//!
//! 1. types start as quantiles of each axon's mean weight;
//! 2. for each neuron and type, the best single level and its connections: for a level `s > 0`
//!    exactly the weights above `s / 2` connect and `s` is their mean, so the best level is the
//!    mean of the top-`t` positive weights for the `t` that maximises `(Σ top t)² / t` (the
//!    same below zero; the better sign wins);
//! 3. each axon takes the type whose levels fit its weights best;
//!
//! repeating 2–3 until no axon changes type (at most [`ROUNDS`] rounds). Every step lowers the
//! squared error or leaves it, so the fit is never worse than leaving everything unconnected.
//! Ties break by index, so the result is deterministic.
//!
//! Where a core has room for each input twice (`2 × fan-in ≤ axons`), the mapping duplicates
//! the inputs onto a second axon each, as TrueNorth's own mappings do (Esser et al. 2016):
//! [`fit_pair`] then gives input `j` two axons of types `G_j` and `H_j`, so that each neuron
//! may take `0`, `s^G`, `s^H` or `s^G + s^H` from it — four values out of the neuron's same
//! four levels instead of two.

/// Most rounds of the alternation.
pub(crate) const ROUNDS: usize = 16;

/// A core's rows as the crossbar holds them.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Fit {
    /// The effective weights, laid out as the input (`rows[j·n + i]`).
    pub(crate) w: Vec<f64>,
    /// Type of each axon.
    pub(crate) types: Vec<u8>,
    /// Connected synapses.
    pub(crate) connected: u64,
    /// `Σ (w − ŵ)²`.
    pub(crate) err2: f64,
    /// `Σ w²`.
    pub(crate) norm2: f64,
}

/// Per neuron `i` and type `g`, the level `s[i·T + g]` that best fits the neuron's weights on
/// the axons of type `g` (0: none connected).
fn levels(rows: &[f64], axons: usize, n: usize, types: &[u8], t: usize) -> Vec<f64> {
    let mut s = vec![0.0; n * t];
    let mut pos: Vec<f64> = Vec::with_capacity(axons);
    let mut neg: Vec<f64> = Vec::with_capacity(axons);
    for i in 0..n {
        for g in 0..t {
            pos.clear();
            neg.clear();
            for j in 0..axons {
                if types[j] as usize == g {
                    let v = rows[j * n + i];
                    if v > 0.0 {
                        pos.push(v);
                    } else if v < 0.0 {
                        neg.push(-v);
                    }
                }
            }
            let (gain_p, lv_p) = best_prefix(&mut pos);
            let (gain_n, lv_n) = best_prefix(&mut neg);
            s[i * t + g] = if gain_p >= gain_n { lv_p } else { -lv_n };
        }
    }
    s
}

/// For positive values: the `t` maximising `(Σ top t)² / t`, as `(gain, mean of the top t)`.
fn best_prefix(v: &mut [f64]) -> (f64, f64) {
    v.sort_unstable_by(|a, b| b.total_cmp(a));
    let (mut sum, mut best) = (0.0, (0.0, 0.0));
    for (k, &x) in v.iter().enumerate() {
        sum += x;
        let t = (k + 1) as f64;
        let gain = sum * sum / t;
        if gain > best.0 {
            best = (gain, sum / t);
        }
    }
    best
}

/// The squared error of weight `w` under level `s`: connected if that is closer.
#[inline]
fn err(w: f64, s: f64) -> f64 {
    (w - s).powi(2).min(w * w)
}

/// Fit `rows` (`axons × n`, `rows[j·n + i]` = weight from axon `j` to neuron `i`) to a crossbar
/// with `t` axon types.
pub(crate) fn fit(rows: &[f64], axons: usize, n: usize, t: usize) -> Fit {
    let t = t.max(1);
    // 1. Types by quantiles of the axon's mean weight.
    let mean: Vec<f64> = (0..axons)
        .map(|j| rows[j * n..(j + 1) * n].iter().sum::<f64>() / n.max(1) as f64)
        .collect();
    let mut order: Vec<usize> = (0..axons).collect();
    order.sort_by(|&a, &b| mean[a].total_cmp(&mean[b]).then(a.cmp(&b)));
    let mut types = vec![0u8; axons];
    for (rank, &j) in order.iter().enumerate() {
        types[j] = (rank * t / axons.max(1)) as u8;
    }
    let mut s = levels(rows, axons, n, &types, t);
    for _ in 0..ROUNDS {
        // 3. Each axon to its best type (the current one on a tie).
        let mut moved = false;
        for j in 0..axons {
            let row = &rows[j * n..(j + 1) * n];
            let cost = |g: usize| -> f64 {
                row.iter()
                    .enumerate()
                    .map(|(i, &w)| err(w, s[i * t + g]))
                    .sum()
            };
            let cur = types[j] as usize;
            let mut best = (cost(cur), cur);
            for g in 0..t {
                let c = cost(g);
                if c < best.0 {
                    best = (c, g);
                }
            }
            if best.1 != cur {
                types[j] = best.1 as u8;
                moved = true;
            }
        }
        if !moved {
            break;
        }
        // 2. Levels for the new types.
        s = levels(rows, axons, n, &types, t);
    }
    let mut w = vec![0.0; rows.len()];
    let (mut connected, mut err2, mut norm2) = (0u64, 0.0, 0.0);
    for j in 0..axons {
        let g = types[j] as usize;
        for i in 0..n {
            let (x, lv) = (rows[j * n + i], s[i * t + g]);
            norm2 += x * x;
            if lv != 0.0 && (x - lv).powi(2) < x * x {
                w[j * n + i] = lv;
                connected += 1;
                err2 += (x - lv).powi(2);
            } else {
                err2 += x * x;
            }
        }
    }
    Fit {
        w,
        types,
        connected,
        err2,
        norm2,
    }
}

/// The four values input `j` can give neuron `i` through axons of types `g` and `h`:
/// unconnected, the first, the second, both.
#[inline]
fn options(s: &[f64], i: usize, t: usize, g: usize, h: usize) -> [f64; 4] {
    let (a, b) = (s[i * t + g], s[i * t + h]);
    [0.0, a, b, a + b]
}

/// The option of `options` closest to `w` (the first on a tie: fewer connections).
#[inline]
fn closest(w: f64, o: &[f64; 4]) -> (usize, f64) {
    let mut best = (0, w * w);
    for (k, &v) in o.iter().enumerate().skip(1) {
        let e = (w - v).powi(2);
        if e < best.1 {
            best = (k, e);
        }
    }
    best
}

/// Fit `rows` (`axons × n`, as [`fit`]) to a crossbar with `t` axon types in which every input
/// has two axons: the result's rows are `2 × axons` (`w[j·n + i]` on input `j`'s first axon,
/// `w[(axons + j)·n + i]` on its second) and its `types` `2 × axons` long; `err2` compares
/// `rows` with the sum of the two.
///
/// Alternating minimisation from [`fit`]'s types and levels: (1) each input takes the pair of
/// types and, per neuron, the connections that fit its weights best under the current levels;
/// (2) each neuron's levels move to the least-squares values for those connections (one
/// coordinate at a time, each the exact minimum along it); until no input changes its pair (at
/// most [`ROUNDS`] rounds after the first). Both steps lower the squared error or leave it. It
/// runs from two starts — [`fit`]'s levels (its answer, second axons unconnected, is among the
/// first choices) and half of them (a level reached as the sum of two) — and keeps the closer,
/// or [`fit`]'s answer itself where neither is closer: never worse than one axon per input.
/// The levels are real; the weight format quantises them afterwards, as [`fit`]'s.
pub(crate) fn fit_pair(rows: &[f64], axons: usize, n: usize, t: usize) -> Fit {
    let t = t.max(1);
    let single = fit(rows, axons, n, t);
    let s = levels(rows, axons, n, &single.types, t);
    let half: Vec<f64> = s.iter().map(|v| v / 2.0).collect();
    let a = pair_from(rows, axons, n, t, s, &single.types);
    let b = pair_from(rows, axons, n, t, half, &single.types);
    // The single fit itself, second axons unconnected, keeps "never worse" exact in floating
    // point (a start that improves nothing may land a rounding step above it).
    let mut w = single.w;
    w.resize(2 * rows.len(), 0.0);
    let mut types = single.types.clone();
    types.extend_from_slice(&single.types);
    let base = Fit { w, types, ..single };
    [a, b]
        .into_iter()
        .fold(base, |best, f| if f.err2 < best.err2 { f } else { best })
}

/// [`fit_pair`] from levels `s` and single types `types`.
fn pair_from(rows: &[f64], axons: usize, n: usize, t: usize, mut s: Vec<f64>, types: &[u8]) -> Fit {
    let mut pair: Vec<(u8, u8)> = types.iter().map(|&g| (g, g)).collect();
    // (g, h) with g ≤ h: the two axons are interchangeable.
    let pairs: Vec<(usize, usize)> = (0..t).flat_map(|g| (g..t).map(move |h| (g, h))).collect();
    let pair_cost = |s: &[f64], j: usize, (g, h): (usize, usize)| -> f64 {
        (0..n)
            .map(|i| closest(rows[j * n + i], &options(s, i, t, g, h)).1)
            .sum()
    };
    for round in 0..=ROUNDS {
        // 1. Each input to its best pair (its current one on a tie).
        let mut moved = false;
        for (j, pj) in pair.iter_mut().enumerate() {
            let cur = (pj.0 as usize, pj.1 as usize);
            let mut best = (pair_cost(&s, j, cur), cur);
            for &p in &pairs {
                let c = pair_cost(&s, j, p);
                if c < best.0 {
                    best = (c, p);
                }
            }
            if best.1 != cur {
                *pj = (best.1.0 as u8, best.1.1 as u8);
                moved = true;
            }
        }
        if round > 0 && !moved {
            break;
        }
        // 2. Levels: per neuron, coordinate descent on the least-squares problem
        // `Σ_j (w_ij − Σ_g c_ijg s_ig)²`, `c_ijg` the connections chosen under the old levels.
        for i in 0..n {
            let choice: Vec<usize> = (0..axons)
                .map(|j| {
                    let (g, h) = (pair[j].0 as usize, pair[j].1 as usize);
                    closest(rows[j * n + i], &options(&s, i, t, g, h)).0
                })
                .collect();
            for _ in 0..4 {
                for g in 0..t {
                    let (mut num, mut den) = (0.0, 0.0);
                    for j in 0..axons {
                        let (a, b) = (pair[j].0 as usize, pair[j].1 as usize);
                        let k = choice[j];
                        // How many of the input's connected axons have type g.
                        let c = f64::from(
                            u8::from(k & 1 == 1 && a == g) + u8::from(k & 2 == 2 && b == g),
                        );
                        if c == 0.0 {
                            continue;
                        }
                        let other = if k & 1 == 1 && a != g {
                            s[i * t + a]
                        } else {
                            0.0
                        } + if k & 2 == 2 && b != g {
                            s[i * t + b]
                        } else {
                            0.0
                        };
                        num += c * (rows[j * n + i] - other);
                        den += c * c;
                    }
                    if den > 0.0 {
                        s[i * t + g] = num / den;
                    }
                }
            }
        }
    }
    let mut w = vec![0.0; 2 * rows.len()];
    let mut types = Vec::with_capacity(2 * axons);
    types.extend(pair.iter().map(|p| p.0));
    types.extend(pair.iter().map(|p| p.1));
    let (mut connected, mut err2, mut norm2) = (0u64, 0.0, 0.0);
    for j in 0..axons {
        let (g, h) = (pair[j].0 as usize, pair[j].1 as usize);
        for i in 0..n {
            let x = rows[j * n + i];
            let o = options(&s, i, t, g, h);
            let (k, e) = closest(x, &o);
            norm2 += x * x;
            err2 += e;
            if k & 1 == 1 {
                w[j * n + i] = o[1];
                connected += 1;
            }
            if k & 2 == 2 {
                w[(axons + j) * n + i] = o[2];
                connected += 1;
            }
        }
    }
    Fit {
        w,
        types,
        connected,
        err2,
        norm2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A matrix that already is a crossbar with `t` types comes back exactly.
    #[test]
    fn a_crossbar_matrix_is_reproduced() {
        let (axons, n, t) = (12, 5, 4);
        let types: Vec<usize> = (0..axons).map(|j| (j * 7) % t).collect();
        let lv =
            |i: usize, g: usize| (i as f64 + 1.0) * if g.is_multiple_of(2) { 0.5 } else { -0.25 };
        let mut rows = vec![0.0; axons * n];
        for j in 0..axons {
            for i in 0..n {
                if (i + j) % 3 != 0 {
                    rows[j * n + i] = lv(i, types[j]);
                }
            }
        }
        let f = fit(&rows, axons, n, t);
        assert!(f.err2 < 1e-24, "{}", f.err2);
        assert_eq!(f.w, rows);
    }

    /// One neuron, one axon type, weights 0, 1 and 2: one axon per input holds one level and
    /// cannot give both 1 and 2; two axons of the same type give 0, s and 2s, exactly.
    #[test]
    fn two_axons_per_input_give_a_level_twice() {
        let rows = [1.0, 2.0, 0.0, 2.0, 1.0];
        let single = fit(&rows, 5, 1, 1);
        assert!(single.err2 > 0.5, "{}", single.err2);
        let f = fit_pair(&rows, 5, 1, 1);
        assert!(f.err2 < 1e-24, "{}", f.err2);
        // Inputs of weight 2 connect both axons, of weight 1 one, of weight 0 none.
        assert_eq!(f.connected, [2, 1, 0, 2, 1].iter().sum::<u64>());
        let sum: Vec<f64> = (0..5).map(|j| f.w[j] + f.w[5 + j]).collect();
        assert_eq!(sum, rows);
    }

    /// `len` weights in [−1, 1] from an xorshift stream.
    fn random_rows(seed: u64, len: usize) -> Vec<f64> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % 2001) as f64 / 1000.0 - 1.0
            })
            .collect()
    }

    /// Whether `f` is a crossbar over its axons: per neuron and axon type, every connected
    /// synapse holds the same level.
    fn is_crossbar(f: &Fit, n: usize, t: usize) -> bool {
        (0..n).all(|i| {
            (0..t).all(|g| {
                let mut levels = f
                    .types
                    .iter()
                    .enumerate()
                    .filter(|&(_, &ty)| ty as usize == g)
                    .map(|(j, _)| f.w[j * n + i])
                    .filter(|&v| v != 0.0);
                let first = levels.next();
                levels.all(|v| Some(v) == first)
            })
        })
    }

    proptest! {
        /// A pair fit is a crossbar over its `2 × axons` axons (per neuron and type one level),
        /// its two axons per input add up to its effective weights, and it is never worse than
        /// the single fit it starts from.
        #[test]
        fn pair_fits_are_crossbars_and_never_worse_than_single_fits(
            axons in 1usize..30,
            n in 1usize..10,
            t in 1usize..5,
            seed in any::<u64>(),
        ) {
            let rows = random_rows(seed, axons * n);
            let single = fit(&rows, axons, n, t);
            let f = fit_pair(&rows, axons, n, t);
            prop_assert_eq!(f.w.len(), 2 * rows.len());
            prop_assert_eq!(f.types.len(), 2 * axons);
            prop_assert!(f.err2 <= single.err2 + 1e-9, "{} > {}", f.err2, single.err2);
            prop_assert!(f.types.iter().all(|&g| (g as usize) < t));
            prop_assert!(is_crossbar(&f, n, t));
            let connected = f.w.iter().filter(|&&v| v != 0.0).count() as u64;
            prop_assert_eq!(connected, f.connected);
            let err2: f64 = (0..axons * n)
                .map(|k| (rows[k] - f.w[k] - f.w[axons * n + k]).powi(2))
                .sum();
            prop_assert!((err2 - f.err2).abs() <= 1e-9);
        }


        /// Every fit is a crossbar (per neuron and axon type one level; a synapse is that level
        /// or 0) and is never worse than leaving everything unconnected.
        #[test]
        fn fits_are_crossbars_and_never_worse_than_nothing(
            axons in 1usize..40,
            n in 1usize..12,
            t in 1usize..5,
            seed in any::<u64>(),
        ) {
            let rows = random_rows(seed, axons * n);
            let f = fit(&rows, axons, n, t);
            prop_assert!(f.err2 <= f.norm2 + 1e-12);
            prop_assert!(f.types.iter().all(|&g| (g as usize) < t));
            prop_assert!(is_crossbar(&f, n, t));
            let connected = f.w.iter().filter(|&&v| v != 0.0).count() as u64;
            prop_assert_eq!(connected, f.connected);
            let err2: f64 = rows.iter().zip(&f.w).map(|(a, b)| (a - b).powi(2)).sum();
            prop_assert!((err2 - f.err2).abs() <= 1e-9);
        }
    }
}
