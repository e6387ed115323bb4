//! The verdict table of the learning-rate → modularity study (ARCHITECTURE.md §1.4): per
//! protocol and lens, does a lower rate give more within-module weight than a higher rate,
//! and does a higher rate put more of what it learns across modules?
//!
//! For every run the lens gives three numbers relative to its null model
//! ([`lens`](super::lens)): the **within excess** (within share minus its null mean), the
//! **Q excess** (Newman's `Q` minus its null mean: unlike the within share it does not grow
//! just because fewer, larger modules were found) and the **learned-across excess** (the
//! across share of `W − W₀` minus its null mean).
//! The seeds at the lowest rate are compared with those at the highest:
//!
//! * the difference of the means, and Cohen's `d` (difference over the pooled sd);
//! * an exact one-sided permutation p-value over every relabelling of the pooled runs into
//!   "low" and "high" (3 seeds against 3: 20 relabellings, so 0.05 at best);
//! * Spearman's rank correlation with the rate over every run of every rate, signed so that
//!   a positive value supports the claim;
//! * how many runs at each end beat their own null at `p ≤ 0.05`.
//!
//! The answer is **yes** when the one-sided permutation p-value in the claimed direction is
//! ≤ 0.05, **opposite** when the other direction's is, and **no difference** otherwise.

use super::experiment::{RunResult, Stat, Sweep, spearman};
use super::lens::Lens;
use super::protocol::Protocol;
use serde::Serialize;
use std::fmt;

/// The answer to one claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Answer {
    /// The claimed direction, at `p ≤ 0.05`.
    Yes,
    /// The opposite direction, at `p ≤ 0.05`.
    Opposite,
    /// Neither.
    NoDifference,
}

impl Answer {
    fn of(p_claimed: f64, p_opposite: f64) -> Answer {
        if p_claimed <= ALPHA {
            Answer::Yes
        } else if p_opposite <= ALPHA {
            Answer::Opposite
        } else {
            Answer::NoDifference
        }
    }

    /// The word in the table.
    pub fn word(self) -> &'static str {
        match self {
            Answer::Yes => "yes",
            Answer::Opposite => "opposite",
            Answer::NoDifference => "no difference",
        }
    }
}

/// The significance level of the table.
pub const ALPHA: f64 = 0.05;

/// One claim tested on one lens: lowest rate against highest.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Claim {
    /// The statistic at the lowest rate (over seeds).
    pub low: Stat,
    /// At the highest rate.
    pub high: Stat,
    /// Claimed-direction difference of the means (low − high for "within", high − low for
    /// "across").
    pub difference: f64,
    /// Cohen's `d` of that difference (pooled sd; infinite when the seeds do not vary).
    pub cohens_d: f64,
    /// Exact one-sided permutation p-value in the claimed direction.
    pub p: f64,
    /// The same in the opposite direction.
    pub p_opposite: f64,
    /// Spearman correlation of the statistic with the rate over all runs.
    pub rank_correlation: Option<f64>,
    /// Runs at the lowest rate whose own null-model p-value is ≤ 0.05, of how many.
    pub low_significant: (usize, usize),
    /// The same at the highest rate.
    pub high_significant: (usize, usize),
    /// The answer.
    pub answer: Answer,
}

/// One row of the verdict table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LensVerdict {
    /// The protocol.
    pub protocol: Protocol,
    /// The lens (its name).
    pub lens: String,
    /// Lowest rate.
    pub low_rate: f64,
    /// Highest rate.
    pub high_rate: f64,
    /// Seeds per rate.
    pub seeds: usize,
    /// "A lower rate gives more within-module weight."
    pub low_more_within: Claim,
    /// "A lower rate gives more modular weights" (`Q` excess; not defined for ground truth).
    pub low_more_modular: Claim,
    /// "A higher rate puts more of its learned weight across modules."
    pub high_more_across: Claim,
}

/// The verdict rows of one protocol's sweep: one per lens the runs were seen through.
pub fn lens_verdicts(sweep: &Sweep) -> Vec<LensVerdict> {
    let cfg = &sweep.config;
    let (lo, hi) = (0, cfg.rates.len().saturating_sub(1));
    let lenses: Vec<Lens> = sweep
        .runs
        .first()
        .map(|r| r.lenses.iter().map(|l| l.lens).collect())
        .unwrap_or_default();
    lenses
        .iter()
        .enumerate()
        .map(|(k, lens)| {
            let within = |r: &RunResult| r.lenses[k].within.excess();
            let within_p = |r: &RunResult| r.lenses[k].within.p;
            let q = |r: &RunResult| r.lenses[k].q.excess();
            let q_p = |r: &RunResult| r.lenses[k].q.p;
            let across = |r: &RunResult| r.lenses[k].learned_across.excess();
            let across_p = |r: &RunResult| r.lenses[k].learned_across.p;
            LensVerdict {
                protocol: cfg.protocol,
                lens: lens.name(),
                low_rate: cfg.rates[lo],
                high_rate: cfg.rates[hi],
                seeds: cfg.seeds.len(),
                low_more_within: claim(&sweep.runs, lo, hi, &within, &within_p),
                low_more_modular: claim(&sweep.runs, lo, hi, &q, &q_p),
                high_more_across: claim(&sweep.runs, hi, lo, &across, &across_p),
            }
        })
        .collect()
}

/// The claim "the statistic `f` is larger at rate index `a` than at `b`".
fn claim(
    runs: &[RunResult],
    a: usize,
    b: usize,
    f: &dyn Fn(&RunResult) -> f64,
    own_p: &dyn Fn(&RunResult) -> f64,
) -> Claim {
    let at = |k: usize| -> Vec<&RunResult> { runs.iter().filter(|r| r.rate_index == k).collect() };
    let (ra, rb) = (at(a), at(b));
    let xa: Vec<f64> = ra.iter().map(|r| f(r)).collect();
    let xb: Vec<f64> = rb.iter().map(|r| f(r)).collect();
    let (sa, sb) = (Stat::of(&xa), Stat::of(&xb));
    let difference = sa.mean - sb.mean;
    let (na, nb) = (xa.len() as f64, xb.len() as f64);
    let pooled = if xa.len() + xb.len() > 2 {
        (((na - 1.0) * sa.sd * sa.sd + (nb - 1.0) * sb.sd * sb.sd) / (na + nb - 2.0)).sqrt()
    } else {
        f64::NAN
    };
    let cohens_d = if pooled > 0.0 {
        difference / pooled
    } else if difference == 0.0 {
        0.0
    } else {
        difference.signum() * f64::INFINITY
    };
    let defined = xa.iter().chain(&xb).all(|x| x.is_finite());
    let (p, p_opposite) = if defined {
        permutation_p(&xa, &xb)
    } else {
        (1.0, 1.0)
    };
    let rates: Vec<f64> = runs.iter().map(|r| r.rate).collect();
    let all: Vec<f64> = runs.iter().map(f).collect();
    let mut rank_correlation = if all.iter().all(|x| x.is_finite()) {
        spearman(&rates, &all)
    } else {
        None
    };
    // The claims are stated from the lower rate: "within" decreases, "across" increases.
    if a < b {
        rank_correlation = rank_correlation.map(|r| -r);
    }
    let sig = |rs: &[&RunResult]| (rs.iter().filter(|r| own_p(r) <= ALPHA).count(), rs.len());
    let enough = defined && xa.len() >= 2 && xb.len() >= 2;
    Claim {
        low: if a < b { sa } else { sb },
        high: if a < b { sb } else { sa },
        difference,
        cohens_d,
        p,
        p_opposite,
        rank_correlation,
        low_significant: if a < b { sig(&ra) } else { sig(&rb) },
        high_significant: if a < b { sig(&rb) } else { sig(&ra) },
        answer: if enough {
            Answer::of(p, p_opposite)
        } else {
            Answer::NoDifference
        },
    }
}

/// One-sided permutation p-values of `mean(a) − mean(b)`: the share of the relabellings of
/// `a ∪ b` (same group sizes, the observed one included) whose difference is ≥ the observed
/// one, and ≤ it. Up to 20 values every relabelling is enumerated (exact); beyond, 19,999
/// random relabellings (a fixed seed) and the observed one are used.
pub fn permutation_p(a: &[f64], b: &[f64]) -> (f64, f64) {
    let pooled: Vec<f64> = a.iter().chain(b).copied().collect();
    let (n, k) = (pooled.len(), a.len());
    if k == 0 || k == n {
        return (1.0, 1.0);
    }
    let total: f64 = pooled.iter().sum();
    let diff = |sum_a: f64| sum_a / k as f64 - (total - sum_a) / (n - k) as f64;
    let observed = diff(a.iter().sum());
    let eps = 1e-12 * (1.0 + observed.abs());
    let (mut ge, mut le, mut count) = (0u64, 0u64, 0u64);
    let mut tally = |d: f64| {
        count += 1;
        ge += u64::from(d >= observed - eps);
        le += u64::from(d <= observed + eps);
    };
    if n <= 20 {
        for mask in 0u32..(1 << n) {
            if mask.count_ones() as usize == k {
                tally(diff(
                    (0..n)
                        .filter(|&i| mask >> i & 1 == 1)
                        .map(|i| pooled[i])
                        .sum(),
                ));
            }
        }
    } else {
        tally(observed);
        let mut rng = crate::data::SplitMix64::new(0x7065_726d);
        let mut idx: Vec<usize> = (0..n).collect();
        for _ in 0..19_999 {
            // A partial Fisher–Yates: the first k places are a uniform k-subset.
            for i in 0..k {
                let j = i + rng.below((n - i) as u64) as usize;
                idx.swap(i, j);
            }
            tally(diff(idx[..k].iter().map(|&i| pooled[i]).sum()));
        }
    }
    (ge as f64 / count as f64, le as f64 / count as f64)
}

/// The verdict table of a whole study, rendered as Markdown by `Display`.
#[derive(Clone, Debug, Serialize)]
pub struct StudyTable {
    /// Every row, by protocol then lens.
    pub rows: Vec<LensVerdict>,
}

impl fmt::Display for StudyTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "| protocol | lens | lower rate → more within (excess low / high, d, p, ρ) | sig. runs low / high | lower rate → higher Q (excess low / high, d, p, ρ) | higher rate → more learned across (excess low / high, d, p, ρ) | sig. runs low / high |"
        )?;
        writeln!(f, "|---|---|---|---|---|---|---|")?;
        for r in &self.rows {
            let c = |c: &Claim| {
                if !c.low.mean.is_finite() {
                    return "—".to_string();
                }
                format!(
                    "**{}** ({:+.3} ± {:.3} / {:+.3} ± {:.3}, d {}, p {:.2}, ρ {})",
                    c.answer.word(),
                    c.low.mean,
                    c.low.sd,
                    c.high.mean,
                    c.high.sd,
                    fmt_d(c.cohens_d),
                    c.p,
                    c.rank_correlation
                        .map_or_else(|| "—".to_string(), |r| format!("{r:+.2}"))
                )
            };
            let s = |c: &Claim| {
                format!(
                    "{}/{} / {}/{}",
                    c.low_significant.0,
                    c.low_significant.1,
                    c.high_significant.0,
                    c.high_significant.1
                )
            };
            writeln!(
                f,
                "| {} | {} | {} | {} | {} | {} | {} |",
                r.protocol,
                r.lens,
                c(&r.low_more_within),
                s(&r.low_more_within),
                c(&r.low_more_modular),
                c(&r.high_more_across),
                s(&r.high_more_across)
            )?;
        }
        Ok(())
    }
}

fn fmt_d(d: f64) -> String {
    if d.is_infinite() {
        if d > 0.0 { "+∞" } else { "−∞" }.to_string()
    } else {
        format!("{d:+.1}")
    }
}

impl StudyTable {
    /// The rows as CSV.
    pub fn csv(&self) -> String {
        let mut o = String::from(
            "protocol,lens,low_rate,high_rate,seeds,within_answer,within_excess_low,within_excess_low_sd,\
             within_excess_high,within_excess_high_sd,within_d,within_p,within_p_opposite,within_rho,\
             within_sig_low,within_sig_high,q_answer,q_excess_low,q_excess_low_sd,q_excess_high,\
             q_excess_high_sd,q_d,q_p,q_p_opposite,q_rho,q_sig_low,q_sig_high,across_answer,across_excess_low,across_excess_low_sd,\
             across_excess_high,across_excess_high_sd,across_d,across_p,across_p_opposite,across_rho,\
             across_sig_low,across_sig_high\n",
        );
        for r in &self.rows {
            let c = |c: &Claim| {
                format!(
                    "{},{},{},{},{},{},{},{},{},{},{}",
                    c.answer.word(),
                    c.low.mean,
                    c.low.sd,
                    c.high.mean,
                    c.high.sd,
                    c.cohens_d,
                    c.p,
                    c.p_opposite,
                    c.rank_correlation.map_or(String::new(), |x| x.to_string()),
                    c.low_significant.0,
                    c.high_significant.0
                )
            };
            o.push_str(&format!(
                "{},{},{},{},{},{},{},{}\n",
                r.protocol,
                r.lens,
                r.low_rate,
                r.high_rate,
                r.seeds,
                c(&r.low_more_within),
                c(&r.low_more_modular),
                c(&r.high_more_across)
            ));
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_permutation_p() {
        // Complete separation, 3 against 3: 1 of the 20 relabellings is as extreme.
        let (p, q) = permutation_p(&[3.0, 4.0, 5.0], &[0.0, 1.0, 2.0]);
        assert!((p - 0.05).abs() < 1e-12, "{p}");
        assert!((q - 1.0).abs() < 1e-12);
        let (p, q) = permutation_p(&[0.0, 1.0, 2.0], &[3.0, 4.0, 5.0]);
        assert_eq!((p, q), (1.0, 0.05));
        // No difference at all: every relabelling ties.
        assert_eq!(permutation_p(&[1.0, 1.0], &[1.0, 1.0]), (1.0, 1.0));
        assert_eq!(permutation_p(&[], &[1.0]), (1.0, 1.0));
    }

    #[test]
    fn answers() {
        assert_eq!(Answer::of(0.05, 1.0), Answer::Yes);
        assert_eq!(Answer::of(0.9, 0.05), Answer::Opposite);
        assert_eq!(Answer::of(0.3, 0.7), Answer::NoDifference);
    }
}
