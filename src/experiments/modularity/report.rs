//! How a modularity sweep reads: the summary `accord modules` prints (`impl Display for
//! Sweep`), a run's progress line (`impl Display for RunResult`) and the sweep's CSV tables
//! (ARCHITECTURE.md §1.4).

use std::fmt::{self, Write as _};

use super::experiment::{Convergence, EiBlocks, Outcome, RunResult, Stat, Sweep};
use super::lens::Tested;
use super::protocol::Stop;
use super::study::{StudyTable, lens_verdicts};
use crate::train::Status;

/// The sweep's summary as `accord modules` prints it: per-rate table, time and convergence,
/// the protocol's own lines, the lenses and the verdict.
impl fmt::Display for Sweep {
    fn fmt(&self, o: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self;
        let r = &s.config.recipe;
        writeln!(
            o,
            "accord modules: {} ({} train / {} test), all-to-all N = {} ({} inputs, {} hidden {}, {} outputs {}, \
         loss {}), init ±{}/√N, tol {:e}, cap {}, {} epochs, seeds {:?}",
            s.config.data,
            s.train_samples,
            s.test_samples,
            r.n,
            s.inputs,
            r.n - s.inputs - s.outputs,
            r.hidden_act,
            s.outputs,
            r.output_act,
            r.loss,
            r.init_scale,
            r.fire_tol,
            r.fire_max_iter,
            s.config.epochs,
            s.config.seeds
        )?;
        writeln!(
            o,
            "mean ± sd over seeds; Q = Newman modularity of Louvain communities on |W|; within = share of |W| \
         inside communities (chance = evenly spread); groups = input/hidden/output"
        )?;
        writeln!(
            o,
            "{:>8}  {:>15}  {:>15}  {:>15}  {:>7}  {:>16}  {:>15}  {:>7}  {:>7}",
            "rate",
            "test acc",
            "Q",
            "within",
            "chance",
            "within − chance",
            "group within",
            "chance",
            "skipped"
        )?;
        for p in &s.per_rate {
            writeln!(
                o,
                "{:>8}  {:>15}  {:>15}  {:>15}  {:>7.3}  {:>16}  {:>15}  {:>7.3}  {:>7}",
                p.rate,
                format!(
                    "{:.1} ± {:.1}%",
                    100.0 * p.accuracy.mean,
                    100.0 * p.accuracy.sd
                ),
                pm(&p.q, 4),
                pm(&p.within, 3),
                p.within_chance.mean,
                pm(&p.within_excess, 3),
                pm(&p.group_within, 3),
                p.group_within_chance.mean,
                p.skipped
            )?;
        }
        run_lines(s, o)?;
        protocol_lines(s, o)?;
        write!(
            o,
            "lenses (each run against {} strength-preserving null matrices; excess = share − its null mean; \
         lowest rate vs highest over seeds):\n{}",
            s.config.nulls,
            StudyTable {
                rows: lens_verdicts(s)
            }
        )?;
        let v = &s.verdict;
        writeln!(
            o,
            "verdict: the paper's trend (low rate → more block-diagonal) {} — {}",
            match v.outcome {
                Outcome::Reproduces => "REPRODUCES",
                Outcome::DoesNotReproduce => "DOES NOT REPRODUCE",
                Outcome::Inconclusive => "is INCONCLUSIVE",
            },
            v.text
        )?;
        Ok(())
    }
}

/// Time, convergence over all runs, and the runs that diverged.
fn run_lines(s: &Sweep, o: &mut fmt::Formatter<'_>) -> fmt::Result {
    let r = &s.config.recipe;
    let conv = s.runs.iter().fold(Convergence::default(), |mut a, r| {
        a.add(&r.convergence);
        a
    });
    let max_radius = s
        .runs
        .iter()
        .filter_map(|r| r.max_radius)
        .fold(f64::NEG_INFINITY, f64::max);
    let epoch_secs: Vec<f64> = s
        .runs
        .iter()
        .flat_map(|r| r.epochs.iter().map(|e| e.seconds))
        .collect();
    writeln!(
        o,
        "time: {:.2} s per training epoch on average ({} samples, N = {}, one thread per run); {:.1} s per run",
        Stat::of(&epoch_secs).mean,
        s.train_samples,
        r.n,
        Stat::of(&s.runs.iter().map(|r| r.seconds).collect::<Vec<_>>()).mean
    )?;
    writeln!(
        o,
        "convergence over all runs: {} samples, firing {:.1} iterations on average (max {}), {} failed; \
         credit {:.1} steps (max {}), {} failed; {} updates skipped; largest credit spectral radius {:.3}",
        conv.samples,
        conv.mean_fire_iterations(),
        conv.fire_iterations_max,
        conv.fire_failures(),
        conv.mean_credit_steps(),
        conv.credit_steps_max,
        conv.credit_failures(),
        conv.updates_skipped,
        max_radius
    )?;
    let diverged: Vec<&RunResult> = s
        .runs
        .iter()
        .filter(|r| r.outcome.status == Status::Diverged)
        .collect();
    if !diverged.is_empty() {
        writeln!(
            o,
            "DIVERGED: {} of {} runs (their structure describes blown-up weights, not learning):",
            diverged.len(),
            s.runs.len()
        )?;
        for r in diverged {
            writeln!(
                o,
                "  η = {} seed {}: {}",
                r.rate,
                r.seed,
                r.outcome.describe()
            )?;
        }
    }
    Ok(())
}

/// What the protocol adds to the summary: epochs trained and the stop rule per rate, and
/// under Dale's law the excitatory/inhibitory blocks.
fn protocol_lines(s: &Sweep, o: &mut fmt::Formatter<'_>) -> fmt::Result {
    let by_rate = |k: usize| s.runs.iter().filter(move |r| r.rate_index == k);
    writeln!(o, "protocol {}:", s.config.protocol)?;
    if s.config.recipe.stop != Stop::Epochs {
        for (k, rate) in s.config.rates.iter().enumerate() {
            let epochs: Vec<f64> = by_rate(k)
                .map(|r| r.convergence.samples as f64 / s.train_samples.max(1) as f64)
                .collect();
            let loss: Vec<f64> = by_rate(k).map(|r| r.final_train_loss).collect();
            let stopped = by_rate(k).filter(|r| r.stop_reached).count();
            writeln!(
                o,
                "  η = {rate:<7} epochs trained {} (cap {}), stop rule reached in {stopped}/{} runs, last training loss {}",
                pm(&Stat::of(&epochs), 2),
                s.config.epochs,
                epochs.len(),
                pm(&Stat::of(&loss), 4)
            )?;
        }
    }
    if s.runs.iter().any(|r| r.ei_blocks.is_some()) {
        writeln!(
            o,
            "  share of |W| in the E/I blocks (pre→post), mean over seeds, [before training], (share of synapses):"
        )?;
        for (k, rate) in s.config.rates.iter().enumerate() {
            let blocks: Vec<&EiBlocks> = by_rate(k).filter_map(|r| r.ei_blocks.as_ref()).collect();
            if blocks.is_empty() {
                continue;
            }
            let mean = |f: &dyn Fn(&EiBlocks) -> f64| {
                blocks.iter().map(|b| f(b)).sum::<f64>() / blocks.len() as f64
            };
            let mut line = format!("  η = {rate:<7}");
            for (name, post, pre) in [("E→E", 0, 0), ("E→I", 1, 0), ("I→E", 0, 1), ("I→I", 1, 1)]
            {
                write!(
                    line,
                    "  {name} {:.3} [{:.3}] ({:.3})",
                    mean(&|b| b.shares[post][pre]),
                    mean(&|b| b.initial[post][pre]),
                    mean(&|b| b.synapses[post][pre])
                )?;
            }
            let clipped: usize = by_rate(k).map(|r| r.convergence.sign_clipped).sum();
            writeln!(o, "{line}  clipped {clipped}")?;
        }
    }
    Ok(())
}

/// One run in a line: rate, seed, accuracy, structure, convergence, time and how it ended.
impl fmt::Display for RunResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self;
        let c = &r.convergence;
        write!(
            f,
            "η = {:<7} seed {:<3} test acc {:5.1}%  Q {:.3}  within {:.3} (chance {:.3})  \
         radius ≤ {:.2}  skipped {} (firing {}, credit {})  {:.1} s",
            r.rate,
            r.seed,
            100.0 * r.test_accuracy,
            r.structure.q,
            r.structure.within,
            r.structure.within_chance,
            r.max_radius.unwrap_or(f64::NAN),
            c.updates_skipped,
            c.fire_failures(),
            c.credit_failures(),
            r.seconds
        )?;
        match r.outcome.status {
            Status::Completed => Ok(()),
            _ => write!(f, "  {}", r.outcome.describe()),
        }
    }
}

impl Sweep {
    /// `sweep.csv`: one row per run.
    pub fn runs_csv(&self) -> String {
        let s = self;
        let mut o = String::from(
            "rate,seed,test_accuracy,final_train_loss,q,communities,within,within_chance,within_excess,\
         group_within,group_within_chance,learned_q,learned_within,learned_within_chance,initial_q,\
         initial_radius,max_radius,samples,fire_failures,credit_failures,updates_skipped,\
         test_fire_failures,mean_fire_iterations,mean_credit_steps,seconds,status\n",
        );
        let opt = |x: Option<f64>| x.map_or(String::new(), |v| format!("{v}"));
        for r in &s.runs {
            let st = &r.structure;
            let c = &r.convergence;
            let _ = writeln!(
                o,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{:.2},{}",
                r.rate,
                r.seed,
                r.test_accuracy,
                r.final_train_loss,
                st.q,
                st.communities,
                st.within,
                st.within_chance,
                st.within_excess(),
                st.group_within,
                st.group_within_chance,
                r.learned.q,
                r.learned.within,
                r.learned.within_chance,
                r.initial_q,
                opt(r.initial_radius),
                opt(r.max_radius),
                c.samples,
                c.fire_failures(),
                c.credit_failures(),
                c.updates_skipped,
                r.test_fire_failures,
                c.mean_fire_iterations(),
                c.mean_credit_steps(),
                r.seconds,
                status_word(r)
            );
        }
        o
    }

    /// `lenses.csv`: one row per run and lens: every statistic with its null mean, sd and p-value.
    pub fn lenses_csv(&self) -> String {
        let s = self;
        let mut o = String::from(
            "rate,seed,lens,modules,q,q_null,q_null_sd,q_p,within,within_null,within_null_sd,within_p,\
         learned_across,learned_across_null,learned_across_null_sd,learned_across_p,truth_nmi,truth_nmi_null,truth_nmi_p\n",
        );
        for r in &s.runs {
            for l in &r.lenses {
                let t = |t: &Tested| format!("{},{},{},{}", t.value, t.null_mean, t.null_sd, t.p);
                let nmi = l.truth_nmi.map_or(",,".to_string(), |t| {
                    format!("{},{},{}", t.value, t.null_mean, t.p)
                });
                let _ = writeln!(
                    o,
                    "{},{},{},{},{},{},{},{}",
                    r.rate,
                    r.seed,
                    l.lens.name(),
                    l.modules,
                    t(&l.q),
                    t(&l.within),
                    t(&l.learned_across),
                    nmi
                );
            }
        }
        o
    }

    /// `per_rate.csv`: one row per learning rate, over seeds.
    pub fn per_rate_csv(&self) -> String {
        let s = self;
        let mut o = String::from(
            "rate,runs,accuracy_mean,accuracy_sd,q_mean,q_sd,q_min,q_max,within_mean,within_sd,\
         within_chance_mean,within_excess_mean,within_excess_sd,group_within_mean,group_within_sd,\
         group_within_chance,learned_q_mean,learned_q_sd,skipped,fire_failures,credit_failures\n",
        );
        for p in &s.per_rate {
            let _ = writeln!(
                o,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                p.rate,
                p.runs,
                p.accuracy.mean,
                p.accuracy.sd,
                p.q.mean,
                p.q.sd,
                p.q.min,
                p.q.max,
                p.within.mean,
                p.within.sd,
                p.within_chance.mean,
                p.within_excess.mean,
                p.within_excess.sd,
                p.group_within.mean,
                p.group_within.sd,
                p.group_within_chance.mean,
                p.learned_q.mean,
                p.learned_q.sd,
                p.skipped,
                p.fire_failures,
                p.credit_failures
            );
        }
        o
    }
}

/// `completed` or `diverged` (for the CSV).
fn status_word(r: &RunResult) -> &'static str {
    match r.outcome.status {
        Status::Completed => "completed",
        Status::Diverged => "diverged",
        Status::Interrupted => "interrupted",
    }
}

fn pm(s: &Stat, digits: usize) -> String {
    format!("{:.d$} ± {:.d$}", s.mean, s.sd, d = digits)
}
