//! What a sweep runs: the options every point shares, the grid's axes, and its points (every
//! one, or a seeded random sample), each turned into the arguments of one `accord train`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::SweepError;
use crate::error::Invalid;

/// A spec file.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct SpecFile {
    #[serde(default)]
    base: Vec<String>,
    #[serde(default)]
    grid: BTreeMap<String, Vec<toml::Value>>,
    random: Option<RandomSpec>,
}

/// A random sample of the grid: `samples` of its points, drawn with `seed`.
#[derive(Deserialize, Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RandomSpec {
    /// Points drawn (at most the grid's).
    pub samples: usize,
    /// Seed of the draw.
    pub seed: u64,
}

/// What a sweep runs: the shared options, the axes (in key order) and the sample.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(try_from = "SpecFields")]
pub struct Spec {
    pub(crate) base: Vec<String>,
    pub(crate) axes: Vec<(String, Vec<String>)>,
    pub(crate) random: Option<RandomSpec>,
    /// The points' value indices, one per axis, in point order.
    pub(crate) points: Vec<Vec<usize>>,
}

/// A [`Spec`] as read (a `spec.json`), before its points are checked against its axes.
#[derive(Deserialize)]
struct SpecFields {
    base: Vec<String>,
    axes: Vec<(String, Vec<String>)>,
    random: Option<RandomSpec>,
    points: Vec<Vec<usize>>,
}

impl TryFrom<SpecFields> for Spec {
    type Error = String;

    /// Every point has one value index per axis, each within its axis (so that
    /// [`Spec::options`] and [`Spec::args`] cannot index out of range), and there are at most
    /// [`MAX_POINTS`].
    fn try_from(f: SpecFields) -> Result<Spec, String> {
        if f.points.len() > MAX_POINTS {
            return Err(format!("{} points (at most {MAX_POINTS})", f.points.len()));
        }
        for (i, p) in f.points.iter().enumerate() {
            if p.len() != f.axes.len() {
                return Err(format!(
                    "point {i} has {} value indices for {} axes",
                    p.len(),
                    f.axes.len()
                ));
            }
            if let Some(((k, v), j)) = f.axes.iter().zip(p).find(|(a, j)| **j >= a.1.len()) {
                return Err(format!(
                    "point {i}: value index {j} of axis '{k}', which has {} values",
                    v.len()
                ));
            }
        }
        Ok(Spec {
            base: f.base,
            axes: f.axes,
            random: f.random,
            points: f.points,
        })
    }
}

/// The most points a sweep takes.
pub(crate) const MAX_POINTS: usize = 1_000_000;

impl Spec {
    /// The spec of `axes` (option → values; `set:KEY` for a chip-file key, `true`/`false` for
    /// a flag) with the `accord train` options `base` every point shares: every point of the
    /// grid, the last axis varying fastest, or the seeded sample `random` of them.
    ///
    /// # Errors
    /// An axis without values, with dashes, or listing a value twice; more than a million
    /// points; a sample larger than the grid or empty.
    pub fn new(
        base: Vec<String>,
        axes: Vec<(String, Vec<String>)>,
        random: Option<RandomSpec>,
    ) -> Result<Spec, SweepError> {
        for (k, v) in &axes {
            let axis = |reason: String| SweepError::Axis {
                axis: k.clone(),
                reason,
            };
            if v.is_empty() {
                return Err(axis(" has no values".into()));
            }
            if k.starts_with('-') {
                return Err(axis(format!(
                    ": give the option without its dashes ('{}')",
                    k.trim_start_matches('-')
                )));
            }
            if let Some(dup) = v.iter().enumerate().find(|(i, x)| v[..*i].contains(x)) {
                return Err(axis(format!(" lists '{}' twice", dup.1)));
            }
        }
        let total = axes
            .iter()
            .try_fold(1usize, |a, (_, v)| a.checked_mul(v.len()))
            .filter(|&n| n <= MAX_POINTS)
            .ok_or(SweepError::TooManyPoints)?;
        // Point k: the last axis varies fastest.
        let point = |mut k: usize| -> Vec<usize> {
            let mut idx = vec![0; axes.len()];
            for (a, (_, v)) in axes.iter().enumerate().rev() {
                idx[a] = k % v.len();
                k /= v.len();
            }
            idx
        };
        let order: Vec<usize> = match random {
            None => (0..total).collect(),
            Some(r) => {
                if r.samples == 0 || r.samples > total {
                    return Err(SweepError::Samples {
                        samples: r.samples,
                        total,
                    });
                }
                use rand::SeedableRng;
                let mut rng = rand::rngs::Xoshiro256PlusPlus::seed_from_u64(r.seed);
                let mut picked = rand::seq::index::sample(&mut rng, total, r.samples).into_vec();
                picked.sort_unstable();
                picked
            }
        };
        Ok(Spec {
            base,
            points: order.into_iter().map(point).collect(),
            axes,
            random,
        })
    }

    /// The spec a sweep is given: the spec file `spec` (TOML: `base`, `[grid]`, `[random]`),
    /// the axes `grid` (`KEY=V1,V2,…`) added to its `[grid]`, and the `accord train` options
    /// `base` after its `base`.
    ///
    /// # Errors
    /// An unreadable or malformed spec file, a `[grid]` value that is not a string, number or
    /// boolean, a `grid` entry without `=` or repeating an axis, no axis at all, base options
    /// that the sweep sets itself (`--json`, `--save`, `--resume`, `--plot`), and those of
    /// [`Spec::new`].
    pub fn from_sources(
        spec: Option<&Path>,
        grid: &[String],
        base: &[String],
    ) -> Result<Spec, SweepError> {
        let file: SpecFile = match spec {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|error| SweepError::SpecRead {
                    path: p.to_path_buf(),
                    error,
                })?;
                toml::from_str(&text).map_err(|error| SweepError::SpecParse {
                    path: p.to_path_buf(),
                    error,
                })?
            }
            None => SpecFile::default(),
        };
        let mut axes: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, vs) in file.grid {
            let vals = vs
                .into_iter()
                .map(|v| match v {
                    toml::Value::String(s) => Ok(s),
                    toml::Value::Integer(i) => Ok(i.to_string()),
                    toml::Value::Float(f) => Ok(f.to_string()),
                    toml::Value::Boolean(b) => Ok(b.to_string()),
                    other => Err(SweepError::GridValue {
                        axis: k.clone(),
                        value: other.to_string(),
                    }),
                })
                .collect::<Result<Vec<_>, _>>()?;
            axes.insert(k, vals);
        }
        for g in grid {
            let (k, v) = g.split_once('=').ok_or_else(|| {
                Invalid::new(
                    "grid",
                    format!(" {g}: expected KEY=V1,V2,… (e.g. weight-bits=6,8)"),
                )
            })?;
            // A `set:` axis's values may themselves hold '=': only the first one splits.
            if axes.contains_key(k) {
                return Err(
                    Invalid::new("grid", format!(" {g}: axis '{k}' is given twice")).into(),
                );
            }
            axes.insert(k.to_string(), v.split(',').map(str::to_string).collect());
        }
        if axes.is_empty() {
            return Err(SweepError::NoAxis);
        }
        let mut all = file.base;
        all.extend(base.iter().cloned());
        if all
            .iter()
            .any(|b| b == "--json" || b == "--save" || b == "--resume" || b == "--plot")
        {
            return Err(SweepError::ReservedOption);
        }
        Spec::new(all, axes.into_iter().collect(), file.random)
    }

    /// The `accord train` options every point shares.
    pub fn base(&self) -> &[String] {
        &self.base
    }

    /// The axes, in key order: option and values.
    pub fn axes(&self) -> &[(String, Vec<String>)] {
        &self.axes
    }

    /// The random sample, if the sweep runs one.
    pub fn random(&self) -> Option<RandomSpec> {
        self.random
    }

    /// Points of the sweep.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether the sweep has no point (never, for a spec that [`Spec::new`] made).
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Point `i`'s options, by axis.
    ///
    /// # Panics
    /// `i` is not a point of the sweep.
    pub fn options(&self, i: usize) -> BTreeMap<String, String> {
        self.axes
            .iter()
            .zip(&self.points[i])
            .map(|((k, v), &j)| (k.clone(), v[j].clone()))
            .collect()
    }

    /// Point `i`'s `accord train` arguments: the base options, then the point's; a later
    /// option replaces an earlier one of the same name (of the same key, for `--set`); last
    /// `--json`.
    ///
    /// # Panics
    /// `i` is not a point of the sweep.
    pub fn args(&self, i: usize) -> Vec<String> {
        let mut a = self.base.clone();
        for ((k, v), &j) in self.axes.iter().zip(&self.points[i]) {
            let value = &v[j];
            if let Some(key) = k.strip_prefix("set:") {
                a.push("--set".into());
                a.push(format!("{key}={value}"));
            } else if value == "true" {
                a.push(format!("--{k}"));
            } else if value == "false" {
                // A flag set false: off, whether the base options gave it or not. (Not a
                // `--no-FLAG` token: train has real flags named `no-…`, such as
                // `--no-duplicate-inputs`.)
                let flag = format!("--{k}");
                a.retain(|t| *t != flag);
            } else {
                a.push(format!("--{k}"));
                a.push(value.clone());
            }
        }
        let mut out = last_wins(&a);
        out.push("--json".into());
        out
    }
}

/// `args` with each option given once, its last value kept (`--set` once per key).
fn last_wins(args: &[String]) -> Vec<String> {
    // (name, tokens) in order of last occurrence.
    let mut opts: Vec<(String, Vec<String>)> = Vec::new();
    let mut k = 0;
    while k < args.len() {
        let t = &args[k];
        let takes_value = k + 1 < args.len() && !args[k + 1].starts_with("--");
        let (name, tokens) =
            if let Some((flag, rest)) = t.split_once('=').filter(|_| t.starts_with("--")) {
                // `--set=KEY=VALUE` is one setting per key, like `--set KEY=VALUE`.
                let name = if flag == "--set" {
                    format!("--set {}", rest.split('=').next().unwrap_or_default())
                } else {
                    flag.to_string()
                };
                (name, vec![t.clone()])
            } else if t == "--set" && takes_value {
                let key = args[k + 1].split('=').next().unwrap_or_default();
                (format!("--set {key}"), vec![t.clone(), args[k + 1].clone()])
            } else if takes_value {
                (t.clone(), vec![t.clone(), args[k + 1].clone()])
            } else {
                (t.clone(), vec![t.clone()])
            };
        k += tokens.len();
        opts.retain(|(n, _)| *n != name);
        opts.push((name, tokens));
    }
    opts.into_iter().flat_map(|(_, t)| t).collect()
}

/// Which share of a sweep's points a run holds: those whose index is `index − 1` modulo
/// `count` (`1/1`: all), one shard per task of a batch job array. Parsed from `I/N`; always
/// `1 <= index <= count` (a `spec.json` holding another pair is refused when read).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(try_from = "(usize, usize)", into = "(usize, usize)")]
pub struct Shard {
    index: usize,
    count: usize,
}

impl Shard {
    /// Every point.
    pub const ALL: Shard = Shard { index: 1, count: 1 };

    /// Share `index` of `count`.
    ///
    /// # Errors
    /// [`Invalid`] naming `shard` unless `1 <= index <= count`.
    pub fn new(index: usize, count: usize) -> Result<Shard, Invalid> {
        if index == 0 || index > count {
            return Err(Invalid::new(
                "shard",
                format!(" {index}/{count}: expected I/N with 1 <= I <= N (e.g. 1/4)"),
            ));
        }
        Ok(Shard { index, count })
    }

    /// Which share, from 1.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Shares.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Whether point `i` is in this share.
    pub fn holds(&self, i: usize) -> bool {
        i % self.count == self.index - 1
    }
}

impl TryFrom<(usize, usize)> for Shard {
    type Error = Invalid;
    fn try_from((index, count): (usize, usize)) -> Result<Shard, Invalid> {
        Shard::new(index, count)
    }
}

impl From<Shard> for (usize, usize) {
    fn from(s: Shard) -> (usize, usize) {
        (s.index, s.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = Invalid;

    /// `I/N` with `1 <= I <= N`.
    fn from_str(s: &str) -> Result<Shard, Invalid> {
        let bad = || {
            Invalid::new(
                "shard",
                format!(" {s}: expected I/N with 1 <= I <= N (e.g. 1/4)"),
            )
        };
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (i, n): (usize, usize) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        Shard::new(i, n).map_err(|_| bad())
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_string()).collect()
    }

    #[test]
    fn a_later_option_replaces_an_earlier_one() {
        assert_eq!(
            last_wins(&s(&[
                "--epochs",
                "0",
                "--set",
                "a.b=1",
                "--reference",
                "--epochs",
                "1",
                "--set=a.b=2",
                "--no-duplicate-inputs",
            ])),
            s(&[
                "--reference",
                "--epochs",
                "1",
                "--set=a.b=2",
                "--no-duplicate-inputs"
            ])
        );
    }

    /// A flag axis sets the flag or takes it off (also when the base options gave it), and a
    /// flag named `no-…` is a flag like any other (it was once read as a negation and lost).
    #[test]
    fn flag_axes_set_and_clear_flags_named_no_too() {
        let axes = vec![
            ("no-duplicate-inputs".to_string(), s(&["true", "false"])),
            ("reference".to_string(), s(&["false"])),
        ];
        let spec = Spec::new(s(&["--data", "iris", "--reference"]), axes, None).unwrap();
        assert_eq!(
            spec.args(0),
            s(&["--data", "iris", "--no-duplicate-inputs", "--json"])
        );
        assert_eq!(spec.args(1), s(&["--data", "iris", "--json"]));
        let spec = Spec::new(
            s(&["--no-duplicate-inputs", "--epochs", "0"]),
            vec![("epochs".to_string(), s(&["1"]))],
            None,
        )
        .unwrap();
        assert_eq!(
            spec.args(0),
            s(&["--no-duplicate-inputs", "--epochs", "1", "--json"])
        );
    }

    #[test]
    fn points_run_in_order_and_samples_are_seeded() {
        let axes = vec![
            ("a".to_string(), s(&["1", "2"])),
            ("b".to_string(), s(&["x", "y", "z"])),
        ];
        let spec = Spec::new(s(&["--data", "iris"]), axes.clone(), None).unwrap();
        assert_eq!(spec.len(), 6);
        assert_eq!(spec.options(1)["b"], "y");
        assert_eq!(
            spec.args(4),
            s(&["--data", "iris", "--a", "2", "--b", "y", "--json"])
        );
        let r = Some(RandomSpec {
            samples: 3,
            seed: 7,
        });
        let one = Spec::new(vec![], axes.clone(), r).unwrap();
        assert_eq!(one.len(), 3);
        assert_eq!(one, Spec::new(vec![], axes, r).unwrap());
        let e = Spec::new(vec![], vec![("-a".into(), s(&["1"]))], None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "grid axis '-a': give the option without its dashes ('a')"
        );
    }

    #[test]
    fn shards_parse_as_i_of_n() {
        assert_eq!(
            "2/3".parse::<Shard>().unwrap(),
            Shard { index: 2, count: 3 }
        );
        assert!(Shard { index: 2, count: 3 }.holds(4));
        let e = "0/2".parse::<Shard>().unwrap_err();
        assert_eq!(e.field, "shard");
        assert_eq!(
            e.to_string(),
            "shard 0/2: expected I/N with 1 <= I <= N (e.g. 1/4)"
        );
        assert_eq!(serde_json::to_string(&Shard::ALL).unwrap(), "[1,1]");
        // A spec.json whose points do not fit its axes is refused when read.
        let spec = Spec::new(
            vec![],
            vec![("seed".into(), vec!["1".into(), "2".into()])],
            None,
        )
        .unwrap();
        let mut v = serde_json::to_value(&spec).unwrap();
        assert_eq!(serde_json::from_value::<Spec>(v.clone()).unwrap(), spec);
        v["points"][1][0] = 2.into();
        let e = serde_json::from_value::<Spec>(v.clone())
            .unwrap_err()
            .to_string();
        assert!(e.contains("value index 2 of axis 'seed'"), "{e}");
        v["points"][1] = serde_json::json!([]);
        assert!(serde_json::from_value::<Spec>(v).is_err());
        // A spec.json with an impossible share is refused, not divided by zero later.
        assert!(serde_json::from_str::<Shard>("[0,2]").is_err());
        assert!(serde_json::from_str::<Shard>("[1,0]").is_err());
        assert_eq!(
            serde_json::from_str::<Shard>("[2,3]").unwrap(),
            Shard::new(2, 3).unwrap()
        );
    }
}
