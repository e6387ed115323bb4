//! Datasets: loaders, feature scaling and deterministic train/test splits.
//!
//! Every loader returns a [`Dataset`]: a row-major `n × dim` matrix of `f64` features together
//! with one class label per row. Features handed to the learning rules are always in `[0, 1]`:
//!
//! * **MNIST** (IDX files) — grey levels `0..=255` are divided by 255;
//! * **digits** (UCI 8×8) — pixel counts `0..=16` are divided by 16;
//! * **iris** and any **generic CSV** — min–max scaled per feature with [`minmax_scale`]: the
//!   minimum and maximum of each column are computed on the *training* split only and the same
//!   affine map is applied to both splits. Test values outside the training range are clamped to
//!   `[0, 1]`, and a column that is constant on the training split maps to `0` everywhere.
//!
//! Bundled datasets ([`BUNDLED`]) live in a data directory ([`default_data_dir`]). MNIST ships
//! with its own 8 000 / 2 000 split; the others are cut 80 / 20 by [`stratified_split`], which
//! uses a self-contained SplitMix64 generator ([`SplitMix64`]) and Fisher–Yates shuffles, so a
//! given seed produces the same split on every platform and every run.
//!
//! Malformed input never panics: every problem is reported as a [`DataError`] that names the
//! file and the line and column (CSV) or byte offset (IDX) at fault.
//!
//! ```no_run
//! use accord::data::{self, default_data_dir};
//!
//! let split = data::load("digits", &default_data_dir(), 42)?;
//! assert_eq!(split.train.dim, 64);
//! let first = split.train.row(0); // 64 pixels in [0, 1]
//! println!("{} train / {} test, label {}", split.train.len(), split.test.len(), split.train.labels[0]);
//! # let _ = first;
//!
//! // Any numeric CSV (features, then an integer label) works too:
//! let custom = data::load("measurements.csv", &default_data_dir(), 7)?;
//! # let _ = custom;
//! # Ok::<(), data::DataError>(())
//! ```

#![deny(missing_docs)]

pub mod csv;
pub mod idx;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use self::csv::{CsvOptions, Header, read_csv};
pub use self::idx::{IdxImages, read_idx_images, read_idx_labels, read_mnist};

/// Names accepted by [`load_bundled`] (and recognised by [`load`]).
pub const BUNDLED: [&str; 3] = ["mnist", "digits", "iris"];

/// Percentage of each class put in the test split by [`load`] and [`load_bundled`].
pub const TEST_PERCENT: u32 = 20;

/// Environment variable that overrides [`default_data_dir`].
pub const DATA_DIR_ENV: &str = "ACCORD_DATA";

/// A labelled dataset: `len()` rows of `dim` features each, stored row-major.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    /// Human-readable name (bundled name or file stem).
    pub name: String,
    /// Row-major features, `len() * dim` values.
    pub features: Vec<f64>,
    /// One class label per row, each `< n_classes`.
    pub labels: Vec<usize>,
    /// Number of features per row.
    pub dim: usize,
    /// Number of classes (labels are `0..n_classes`).
    pub n_classes: usize,
}

impl Dataset {
    /// Builds a dataset, checking that `features.len() == labels.len() * dim` and that every
    /// label is below `n_classes`.
    pub fn new(
        name: impl Into<String>,
        features: Vec<f64>,
        labels: Vec<usize>,
        dim: usize,
        n_classes: usize,
    ) -> Result<Self, DataError> {
        let name = name.into();
        if labels.len().checked_mul(dim) != Some(features.len()) {
            return Err(DataError::Invalid {
                name,
                reason: format!(
                    "{} features do not make {} rows of {} values",
                    features.len(),
                    labels.len(),
                    dim
                ),
            });
        }
        if let Some((i, &l)) = labels.iter().enumerate().find(|&(_, &l)| l >= n_classes) {
            return Err(DataError::Invalid {
                name,
                reason: format!("row {i} has label {l}, but there are only {n_classes} classes"),
            });
        }
        Ok(Self {
            name,
            features,
            labels,
            dim,
            n_classes,
        })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// `true` if the dataset has no rows.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Features of row `i`.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn row(&self, i: usize) -> &[f64] {
        &self.features[i * self.dim..(i + 1) * self.dim]
    }

    /// Number of rows of each class, indexed by label.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.n_classes];
        for &l in &self.labels {
            counts[l] += 1;
        }
        counts
    }

    /// A new dataset made of the given rows, in the given order (same name, `dim`, `n_classes`).
    ///
    /// # Panics
    /// If an index is out of range.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        let mut features = Vec::with_capacity(indices.len() * self.dim);
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            features.extend_from_slice(self.row(i));
            labels.push(self.labels[i]);
        }
        Dataset {
            name: self.name.clone(),
            features,
            labels,
            dim: self.dim,
            n_classes: self.n_classes,
        }
    }
}

/// A train/test pair of datasets with the same `dim` and `n_classes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Split {
    /// Training rows.
    pub train: Dataset,
    /// Held-out test rows.
    pub test: Dataset,
}

impl Split {
    /// The first `k` rows of each half (`None`: all of them).
    pub fn first(&self, k: Option<usize>) -> Split {
        let cut = |d: &Dataset, k: usize| d.subset(&(0..k.min(d.len())).collect::<Vec<_>>());
        match k {
            None => self.clone(),
            Some(k) => Split {
                train: cut(&self.train, k),
                test: cut(&self.test, k),
            },
        }
    }
}

/// Everything that can go wrong while loading a dataset.
///
/// Messages start with the offending file and locate the problem, e.g.
/// `data/foo.csv: line 17, column 3: cell "abc" is not a number`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// The file could not be read (or, for `.gz` input, decompressed).
    #[error("{}: {error}", path.display())]
    Io {
        /// File being read.
        path: PathBuf,
        /// Underlying I/O or gzip error (part of the message, not a separate cause).
        error: std::io::Error,
    },
    /// [`load`] was given something that is neither a bundled name nor an existing file.
    #[error("{spec}: no such file, and not a bundled dataset (bundled: {})", BUNDLED.join(", "))]
    NotFound {
        /// What was asked for.
        spec: String,
    },
    /// [`load_bundled`] was given an unknown name.
    #[error("unknown bundled dataset {name:?} (expected one of: {})", BUNDLED.join(", "))]
    UnknownBundled {
        /// What was asked for.
        name: String,
    },
    /// An IDX file starts with the wrong magic number.
    #[error(
        "{}: byte offset 0: bad IDX magic 0x{found:08x}{}, expected 0x{expected:08x}{}",
        path.display(),
        idx::describe_magic(*found),
        idx::describe_magic(*expected)
    )]
    BadMagic {
        /// File being read.
        path: PathBuf,
        /// Magic number required.
        expected: u32,
        /// Magic number found.
        found: u32,
    },
    /// A file ended before the data its header announces.
    #[error("{}: truncated {what}: needed {needed} bytes from byte offset {offset}, \
             but the data ran out at byte offset {end} ({} bytes short)",
        path.display(), needed.saturating_sub(end.saturating_sub(*offset)))]
    Truncated {
        /// File being read.
        path: PathBuf,
        /// What was being read (e.g. "pixel data").
        what: &'static str,
        /// Byte offset where the section starts.
        offset: usize,
        /// Bytes the section needs.
        needed: usize,
        /// Byte offset where the (decompressed) data ends.
        end: usize,
    },
    /// A file continues after the data its header announces.
    #[error("{}: {extra} unexpected trailing bytes from byte offset {offset} (header announces {offset} bytes in all)",
        path.display())]
    TrailingBytes {
        /// File being read.
        path: PathBuf,
        /// Byte offset where the expected data ends.
        offset: usize,
        /// Number of extra bytes.
        extra: usize,
    },
    /// An IDX header has impossible dimensions.
    #[error("{}: byte offset {offset}: bad IDX header: {reason}", path.display())]
    BadHeader {
        /// File being read.
        path: PathBuf,
        /// Byte offset of the offending field.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
    /// Image and label files hold different numbers of items.
    #[error("{}: {n_images} images, but {}: {n_labels} labels", images.display(), labels.display())]
    CountMismatch {
        /// Image file.
        images: PathBuf,
        /// Label file.
        labels: PathBuf,
        /// Items in the image file.
        n_images: usize,
        /// Items in the label file.
        n_labels: usize,
    },
    /// A label byte in an IDX label file is not a valid class.
    #[error("{}: byte offset {offset} (label #{index}): label {value} out of range for {n_classes} classes",
        path.display())]
    IdxLabelOutOfRange {
        /// Label file.
        path: PathBuf,
        /// 0-based item index.
        index: usize,
        /// Byte offset of the label.
        offset: usize,
        /// Value found.
        value: u8,
        /// Number of classes.
        n_classes: usize,
    },
    /// A file is not valid UTF-8 text.
    #[error("{}: line {line}: not valid UTF-8 text", path.display())]
    NotUtf8 {
        /// File being read.
        path: PathBuf,
        /// 1-based line of the first invalid byte.
        line: usize,
    },
    /// A CSV cell is not a number.
    #[error("{}: line {line}, column {column}: cell {cell:?} is not a number", path.display())]
    NotANumber {
        /// File being read.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The cell text (shortened if very long).
        cell: String,
    },
    /// A CSV cell is NaN or infinite.
    #[error("{}: line {line}, column {column}: cell {cell:?} is not finite (NaN and infinities are not allowed)",
        path.display())]
    NonFinite {
        /// File being read.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The cell text (shortened if very long).
        cell: String,
    },
    /// A CSV row has a different number of cells than the first data row.
    #[error("{}: line {line}: expected {expected} columns, found {found}", path.display())]
    Ragged {
        /// File being read.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// Columns in the first data row.
        expected: usize,
        /// Columns in this row.
        found: usize,
    },
    /// A CSV data row has fewer than two columns (at least one feature and the label).
    #[error("{}: line {line}: found {found} column(s), need at least one feature column and a label column",
        path.display())]
    TooFewColumns {
        /// File being read.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// Columns found.
        found: usize,
    },
    /// A blank line appears between data rows (blank lines are only allowed at the end).
    #[error("{}: line {line}: blank line inside the data (only trailing blank lines are allowed)",
        path.display())]
    BlankLine {
        /// File being read.
        path: PathBuf,
        /// 1-based line.
        line: usize,
    },
    /// A CSV label is negative, fractional or unreasonably large.
    #[error("{}: line {line}, column {column}: label {cell:?} {reason}", path.display())]
    BadLabel {
        /// File being read.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The cell text (shortened if very long).
        cell: String,
        /// What is wrong ("is negative", "is not an integer", ...).
        reason: String,
    },
    /// A CSV label is not below the given class count.
    #[error("{}: line {line}, column {column}: label {label} out of range for {n_classes} classes (expected 0..={})",
        path.display(), n_classes.saturating_sub(1))]
    LabelOutOfRange {
        /// File being read.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// Label found.
        label: usize,
        /// Number of classes.
        n_classes: usize,
    },
    /// The file holds no data rows.
    #[error("{}: {reason}", path.display())]
    NoData {
        /// File being read.
        path: PathBuf,
        /// "file is empty", "no data rows after the header", ...
        reason: &'static str,
    },
    /// A feature value lies outside the range its format promises.
    #[error("{name}: row {row}, feature {feature}: value {value} outside 0..={max}")]
    FeatureOutOfRange {
        /// Dataset name.
        name: String,
        /// 0-based row.
        row: usize,
        /// 0-based feature index.
        feature: usize,
        /// Value found.
        value: f64,
        /// Largest value allowed.
        max: f64,
    },
    /// The dataset is too small to give both a non-empty train and test split.
    #[error("{name}: {n} rows are too few for a {percent}% test split (a split would be empty)")]
    TooFewRows {
        /// Dataset name.
        name: String,
        /// Rows available.
        n: usize,
        /// Requested test percentage.
        percent: u32,
    },
    /// Inconsistent arguments or dataset contents.
    #[error("{name}: {reason}")]
    Invalid {
        /// Dataset name.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

/// Reads a whole file, transparently gunzipping it if it starts with the gzip magic `1f 8b`.
///
/// At most 1/16 of the memory limit ([`crate::limits`]) is read, after decompression (features
/// become 8-byte `f64`): a larger file, or a small `.gz` that expands past it, is an error
/// naming the file, read no further than the budget.
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, DataError> {
    crate::limits::read_bounded(path, crate::limits::max_memory() / 16).map_err(|error| {
        DataError::Io {
            path: path.to_path_buf(),
            error,
        }
    })
}

/// SplitMix64 (Steele, Lea & Flood 2014): a tiny, portable 64-bit generator.
///
/// Used for dataset shuffles so that splits are bit-identical on every platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform integer in `0..bound` (unbiased, by rejection). Returns 0 if `bound == 0`.
    pub fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        let threshold = bound.wrapping_neg() % bound;
        loop {
            let r = self.next_u64();
            if r >= threshold {
                return r % bound;
            }
        }
    }

    /// Fisher–Yates shuffle of `items` in place.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

/// Splits `ds` into train and test sets, stratified by class, deterministically from `seed`.
///
/// Each class's rows are shuffled and `round(count · test_percent / 100)` of them (halves round
/// up) go to the test set; both sets are then shuffled. Errors if `test_percent` is not in
/// `1..=99` or if either side would be empty.
pub fn stratified_split(ds: &Dataset, test_percent: u32, seed: u64) -> Result<Split, DataError> {
    if !(1..=99).contains(&test_percent) {
        return Err(DataError::Invalid {
            name: ds.name.clone(),
            reason: format!("test percentage must be in 1..=99, got {test_percent}"),
        });
    }
    let mut by_class = vec![Vec::new(); ds.n_classes];
    for (i, &l) in ds.labels.iter().enumerate() {
        match by_class.get_mut(l) {
            Some(v) => v.push(i),
            None => {
                return Err(DataError::Invalid {
                    name: ds.name.clone(),
                    reason: format!("row {i} has label {l} >= n_classes {}", ds.n_classes),
                });
            }
        }
    }
    let mut rng = SplitMix64::new(seed);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for mut idx in by_class {
        rng.shuffle(&mut idx);
        let k = ((idx.len() as u64 * u64::from(test_percent) + 50) / 100) as usize;
        test.extend_from_slice(&idx[..k]);
        train.extend_from_slice(&idx[k..]);
    }
    if train.is_empty() || test.is_empty() {
        return Err(DataError::TooFewRows {
            name: ds.name.clone(),
            n: ds.len(),
            percent: test_percent,
        });
    }
    rng.shuffle(&mut train);
    rng.shuffle(&mut test);
    Ok(Split {
        train: ds.subset(&train),
        test: ds.subset(&test),
    })
}

/// Divides every feature by `max`, after checking that all values lie in `0..=max`.
///
/// Used for formats with a known range: MNIST (`max = 255`) and digits (`max = 16`).
pub fn scale_fixed(ds: &mut Dataset, max: f64) -> Result<(), DataError> {
    if ds.dim > 0
        && let Some(pos) = ds.features.iter().position(|v| !(0.0..=max).contains(v))
    {
        return Err(DataError::FeatureOutOfRange {
            name: ds.name.clone(),
            row: pos / ds.dim,
            feature: pos % ds.dim,
            value: ds.features[pos],
            max,
        });
    }
    let inv = 1.0 / max;
    ds.features.iter_mut().for_each(|v| *v *= inv);
    Ok(())
}

/// Per-feature min–max scaling parameters, fitted on a training set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MinMax {
    /// Per-feature minimum on the fitting set.
    pub min: Vec<f64>,
    /// Per-feature maximum on the fitting set.
    pub max: Vec<f64>,
}

impl MinMax {
    /// Computes per-feature minima and maxima of `ds` (all zero if `ds` is empty).
    pub fn fit(ds: &Dataset) -> Self {
        if ds.is_empty() {
            return Self {
                min: vec![0.0; ds.dim],
                max: vec![0.0; ds.dim],
            };
        }
        let mut min = vec![f64::INFINITY; ds.dim];
        let mut max = vec![f64::NEG_INFINITY; ds.dim];
        for row in ds.features.chunks_exact(ds.dim.max(1)) {
            for (j, &v) in row.iter().enumerate() {
                min[j] = min[j].min(v);
                max[j] = max[j].max(v);
            }
        }
        Self { min, max }
    }

    /// Maps value `x` of feature `j` to `[0, 1]`: `(x − min) / (max − min)`, clamped; a constant
    /// feature (`max == min`) maps to 0.
    ///
    /// # Panics
    /// If `j` is not a fitted feature index.
    pub fn transform(&self, j: usize, x: f64) -> f64 {
        let range = self.max[j] - self.min[j];
        if range > 0.0 && range.is_finite() {
            ((x - self.min[j]) / range).clamp(0.0, 1.0)
        } else {
            0.0
        }
    }

    /// Scales every row of `ds` in place. Errors if `ds.dim` differs from the fitted width.
    pub fn apply(&self, ds: &mut Dataset) -> Result<(), DataError> {
        if ds.dim != self.min.len() {
            return Err(DataError::Invalid {
                name: ds.name.clone(),
                reason: format!(
                    "min-max scaler fitted on {} features, dataset has {}",
                    self.min.len(),
                    ds.dim
                ),
            });
        }
        for row in ds.features.chunks_exact_mut(ds.dim.max(1)) {
            for (j, v) in row.iter_mut().enumerate() {
                *v = self.transform(j, *v);
            }
        }
        Ok(())
    }
}

/// Min–max scales both halves of `split` to `[0, 1]` using statistics of `split.train` only.
///
/// Test values outside the training range are clamped; a feature constant on the training set
/// becomes 0 in both halves. Returns the fitted scaler (e.g. to scale later inputs alike).
pub fn minmax_scale(split: &mut Split) -> Result<MinMax, DataError> {
    let mm = MinMax::fit(&split.train);
    mm.apply(&mut split.train)?;
    mm.apply(&mut split.test)?;
    Ok(mm)
}

/// The data directory: `$ACCORD_DATA` if set and non-empty, else the crate's `data/` folder.
pub fn default_data_dir() -> PathBuf {
    match std::env::var_os(DATA_DIR_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/data")),
    }
}

/// Loads a bundled dataset from `data_dir`, split into train and test, features in `[0, 1]`.
///
/// * `mnist` — `mnist10k-{train,test}-*` IDX files, the shipped 8 000 / 2 000 split, `/255`;
/// * `digits` — `digits.csv.gz`, 1 797 × 64, `/16`, stratified 80/20 split from `seed`;
/// * `iris` — `iris.csv`, 150 × 4, stratified 80/20 split from `seed`, then [`minmax_scale`].
///
/// `seed` is ignored for `mnist`.
pub fn load_bundled(name: &str, data_dir: &Path, seed: u64) -> Result<Split, DataError> {
    match name {
        "mnist" => {
            let f = |part: &str| data_dir.join(format!("mnist10k-{part}-ubyte.gz"));
            let train = read_mnist(&f("train-images-idx3"), &f("train-labels-idx1"), "mnist")?;
            let test = read_mnist(&f("test-images-idx3"), &f("test-labels-idx1"), "mnist")?;
            let mut split = Split { train, test };
            check_split(&mut split, &f("{train,test}-*-idx[13]"))?;
            Ok(split)
        }
        "digits" => {
            let opts = CsvOptions {
                header: Header::None,
                n_classes: Some(10),
                name: Some("digits".into()),
            };
            let mut ds = read_csv(&data_dir.join("digits.csv.gz"), &opts)?;
            expect_dim(&ds, 64)?;
            scale_fixed(&mut ds, 16.0)?;
            let mut split = stratified_split(&ds, TEST_PERCENT, seed)?;
            check_split(&mut split, &data_dir.join("digits.csv.gz"))?;
            Ok(split)
        }
        "iris" => {
            let opts = CsvOptions {
                header: Header::Skip,
                n_classes: Some(3),
                name: Some("iris".into()),
            };
            let ds = read_csv(&data_dir.join("iris.csv"), &opts)?;
            expect_dim(&ds, 4)?;
            let mut split = stratified_split(&ds, TEST_PERCENT, seed)?;
            check_split(&mut split, &data_dir.join("iris.csv"))?;
            minmax_scale(&mut split)?;
            Ok(split)
        }
        _ => Err(DataError::UnknownBundled {
            name: name.to_string(),
        }),
    }
}

fn expect_dim(ds: &Dataset, dim: usize) -> Result<(), DataError> {
    if ds.dim == dim {
        Ok(())
    } else {
        Err(DataError::Invalid {
            name: ds.name.clone(),
            reason: format!("expected {dim} features per row, found {}", ds.dim),
        })
    }
}

/// Checks what every learner needs of a split: train and test rows of the same width, labels
/// `0..K` for one `K` with every class present in training, and at least two classes.
///
/// # Errors
/// [`DataError::Invalid`] naming `origin` (the file or files the split came from) and what
/// disagrees (the widths, the missing classes as ranges, or the single class).
pub fn check_split(split: &mut Split, origin: &Path) -> Result<(), DataError> {
    let name = origin.display().to_string();
    let invalid = |reason: String| DataError::Invalid {
        name: name.clone(),
        reason,
    };
    if split.train.dim != split.test.dim {
        return Err(invalid(format!(
            "training rows have {} features but test rows have {}: both must have the same width",
            split.train.dim, split.test.dim
        )));
    }
    let seen = |ds: &Dataset| ds.labels.iter().map(|&l| l + 1).max().unwrap_or(0);
    let k = seen(&split.train).max(seen(&split.test));
    let mut present = vec![false; k];
    for &l in &split.train.labels {
        present[l] = true;
    }
    let missing: Vec<usize> = (0..k).filter(|&c| !present[c]).collect();
    if !missing.is_empty() {
        return Err(invalid(format!(
            "labels must be 0..{} with every class in the training rows; class(es) {} have none ({} of {k} classes missing{})",
            k.saturating_sub(1),
            ranges(&missing),
            missing.len(),
            if k > 1000 {
                "; a stray large label makes a huge output layer"
            } else {
                ""
            }
        )));
    }
    if k < 2 {
        return Err(invalid(format!(
            "only one class ({}) in the data: a classifier needs at least two",
            k.saturating_sub(1)
        )));
    }
    split.train.n_classes = k;
    split.test.n_classes = k;
    Ok(())
}

/// `0-3, 7, 9-12` for sorted `v`, at most 8 runs then `…`.
fn ranges(v: &[usize]) -> String {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for &x in v {
        match runs.last_mut() {
            Some(r) if r.1 + 1 == x => r.1 = x,
            _ => runs.push((x, x)),
        }
    }
    let mut parts: Vec<String> = runs
        .iter()
        .take(8)
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect();
    if runs.len() > 8 {
        parts.push("…".into());
    }
    parts.join(", ")
}

/// Loads a dataset by name or path, split into train and test, features in `[0, 1]`.
///
/// A [`BUNDLED`] name goes to [`load_bundled`]. Anything else is a CSV file path (tried as given,
/// then relative to `data_dir`), read with [`Header::Auto`], split 80/20 with
/// [`stratified_split`] from `seed`, and scaled with [`minmax_scale`].
pub fn load(spec: &str, data_dir: &Path, seed: u64) -> Result<Split, DataError> {
    if BUNDLED.contains(&spec) {
        return load_bundled(spec, data_dir, seed);
    }
    let given = PathBuf::from(spec);
    let path = if given.is_file() {
        given
    } else if given.is_relative() && data_dir.join(&given).is_file() {
        data_dir.join(&given)
    } else {
        return Err(DataError::NotFound {
            spec: spec.to_string(),
        });
    };
    let ds = read_csv(&path, &CsvOptions::default())?;
    let mut split = stratified_split(&ds, TEST_PERCENT, seed)?;
    check_split(&mut split, &path)?;
    minmax_scale(&mut split)?;
    Ok(split)
}

#[cfg(test)]
pub(crate) mod testutil {
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A unique temporary directory, removed (with its contents) when dropped.
    pub(crate) struct TempDir(PathBuf);

    impl std::ops::Deref for TempDir {
        type Target = std::path::Path;
        fn deref(&self) -> &std::path::Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A fresh, unique, empty directory under the system temp dir.
    pub(crate) fn temp_dir(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("accord-data-{}-{}-{}", std::process::id(), n, tag));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    /// Writes `bytes` to `dir/name` and returns the path.
    pub(crate) fn write(dir: &std::path::Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).expect("write temp file");
        p
    }

    /// Gzip-compresses `bytes`.
    pub(crate) fn gz(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).expect("gzip");
        e.finish().expect("gzip")
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::{temp_dir, write};
    use super::*;

    fn data_dir() -> PathBuf {
        default_data_dir()
    }

    #[test]
    fn splitmix64_reference_values() {
        // Reference outputs of SplitMix64 seeded with 0 (Vigna's splitmix64.c).
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(r.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(r.next_u64(), 0x06c4_5d18_8009_454f);
    }

    #[test]
    fn shuffle_is_a_pinned_permutation() {
        let mut v: Vec<usize> = (0..10).collect();
        SplitMix64::new(42).shuffle(&mut v);
        let mut sorted = v.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..10).collect::<Vec<_>>());
        let mut w: Vec<usize> = (0..10).collect();
        SplitMix64::new(42).shuffle(&mut w);
        assert_eq!(v, w);
        assert_eq!(v, PINNED_SHUFFLE_42);
    }

    const PINNED_SHUFFLE_42: [usize; 10] = [0, 9, 5, 8, 6, 4, 7, 2, 1, 3];

    #[test]
    fn below_stays_in_range() {
        let mut r = SplitMix64::new(7);
        for bound in 1..200u64 {
            assert!(r.below(bound) < bound);
        }
        assert_eq!(r.below(0), 0);
    }

    #[test]
    fn mnist_loads_with_shipped_split() {
        let s = load_bundled("mnist", &data_dir(), 0).unwrap();
        assert_eq!((s.train.len(), s.test.len()), (8000, 2000));
        assert_eq!((s.train.dim, s.test.dim), (784, 784));
        assert_eq!((s.train.n_classes, s.test.n_classes), (10, 10));
        assert_eq!(s.train.features.len(), 8000 * 784);
        assert_eq!(s.train.labels[0], 9);
        assert_eq!(s.test.labels[0], 1);
        assert!(s.train.class_counts().iter().all(|&c| c > 600));
        for ds in [&s.train, &s.test] {
            assert!(ds.features.iter().all(|v| (0.0..=1.0).contains(v)));
            assert!(ds.features.contains(&1.0));
        }
    }

    #[test]
    fn digits_loads_and_splits_stratified() {
        let s = load_bundled("digits", &data_dir(), 1).unwrap();
        assert_eq!(s.train.len() + s.test.len(), 1797);
        assert_eq!((s.train.len(), s.test.len()), (1438, 359));
        assert_eq!((s.train.dim, s.train.n_classes), (64, 10));
        let all: Vec<usize> = s
            .train
            .class_counts()
            .iter()
            .zip(s.test.class_counts())
            .map(|(a, b)| a + b)
            .collect();
        assert_eq!(all, [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]);
        for ds in [&s.train, &s.test] {
            assert!(ds.features.iter().all(|v| (0.0..=1.0).contains(v)));
            assert!(ds.features.contains(&1.0));
        }
    }

    #[test]
    fn iris_loads_and_minmax_scales_on_train() {
        let s = load_bundled("iris", &data_dir(), 3).unwrap();
        assert_eq!((s.train.len(), s.test.len()), (120, 30));
        assert_eq!((s.train.dim, s.train.n_classes), (4, 3));
        assert_eq!(s.test.class_counts(), [10, 10, 10]);
        for j in 0..4 {
            let col = (0..s.train.len()).map(|i| s.train.row(i)[j]);
            let (lo, hi) = col.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
            assert_eq!((lo, hi), (0.0, 1.0), "train feature {j}");
        }
        assert!(s.test.features.iter().all(|v| (0.0..=1.0).contains(v)));
    }

    #[test]
    fn split_is_deterministic_and_seed_dependent() {
        for name in ["digits", "iris"] {
            let a = load(name, &data_dir(), 5).unwrap();
            let b = load(name, &data_dir(), 5).unwrap();
            let c = load(name, &data_dir(), 6).unwrap();
            assert_eq!(a, b, "{name}");
            assert_ne!(a.train.labels, c.train.labels, "{name}");
            assert_ne!(a.test.features, c.test.features, "{name}");
        }
        let iris = load("iris", &data_dir(), 0).unwrap();
        assert_eq!(iris.test.labels[..10], PINNED_IRIS_TEST_LABELS_SEED0);
    }

    /// Guards the split algorithm against accidental changes (it must be portable and stable).
    const PINNED_IRIS_TEST_LABELS_SEED0: [usize; 10] = [1, 2, 1, 1, 1, 1, 2, 0, 0, 2];

    #[test]
    fn split_covers_every_row_once() {
        let labels: Vec<usize> = (0..103).map(|i| i % 4).collect();
        let features: Vec<f64> = (0..103).map(|i| i as f64).collect();
        let ds = Dataset::new("t", features, labels, 1, 4).unwrap();
        let s = stratified_split(&ds, 20, 9).unwrap();
        let mut seen: Vec<f64> = s
            .train
            .features
            .iter()
            .chain(&s.test.features)
            .copied()
            .collect();
        seen.sort_by(f64::total_cmp);
        assert_eq!(seen, ds.features);
        // class sizes 26, 26, 26, 25 -> test 5, 5, 5, 5
        assert_eq!(s.test.class_counts(), [5, 5, 5, 5]);
        // labels still match their rows
        for part in [&s.train, &s.test] {
            for i in 0..part.len() {
                assert_eq!(part.row(i)[0] as usize % 4, part.labels[i]);
            }
        }
    }

    #[test]
    fn split_of_tiny_dataset_errors() {
        let ds = Dataset::new("tiny", vec![0.0, 1.0], vec![0, 1], 1, 2).unwrap();
        let e = stratified_split(&ds, 20, 0).unwrap_err();
        assert!(matches!(e, DataError::TooFewRows { n: 2, .. }), "{e}");
        assert!(stratified_split(&ds, 0, 0).is_err());
        assert!(stratified_split(&ds, 100, 0).is_err());
    }

    #[test]
    fn minmax_uses_train_stats_and_handles_constant_columns() {
        let train = Dataset::new("t", vec![0.0, 5.0, 10.0, 5.0], vec![0, 1], 2, 2).unwrap();
        let test = Dataset::new("t", vec![5.0, 7.0, 20.0, 5.0], vec![0, 1], 2, 2).unwrap();
        let mut s = Split { train, test };
        let mm = minmax_scale(&mut s).unwrap();
        assert_eq!(mm.min, [0.0, 5.0]);
        assert_eq!(mm.max, [10.0, 5.0]);
        assert_eq!(s.train.features, [0.0, 0.0, 1.0, 0.0]);
        assert_eq!(s.test.features, [0.5, 0.0, 1.0, 0.0]);
    }

    #[test]
    fn scale_fixed_rejects_out_of_range() {
        let mut ds = Dataset::new("d", vec![0.0, 16.0, 17.0, 1.0], vec![0, 0], 2, 1).unwrap();
        let e = scale_fixed(&mut ds, 16.0).unwrap_err().to_string();
        assert!(e.contains("row 1, feature 0"), "{e}");
    }

    #[test]
    fn dataset_new_checks_shape_and_labels() {
        assert!(Dataset::new("x", vec![0.0; 5], vec![0, 0], 2, 1).is_err());
        assert!(Dataset::new("x", vec![0.0; 4], vec![0, 2], 2, 2).is_err());
        let d = Dataset::new("x", vec![1.0, 2.0, 3.0, 4.0], vec![0, 1], 2, 2).unwrap();
        assert_eq!(d.row(1), [3.0, 4.0]);
        assert_eq!(d.len(), 2);
        assert!(!d.is_empty());
    }

    #[test]
    fn unknown_bundled_name_lists_choices() {
        let e = load_bundled("cifar", &data_dir(), 0)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("cifar") && e.contains("mnist, digits, iris"),
            "{e}"
        );
    }

    #[test]
    fn load_missing_path_names_it_and_bundled() {
        let e = load("no/such/file.csv", &data_dir(), 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no/such/file.csv"), "{e}");
        assert!(e.contains("mnist, digits, iris"), "{e}");
    }

    #[test]
    fn load_generic_csv_path() {
        let dir = temp_dir("generic");
        let mut text = String::from("a,b,label\n");
        for i in 0..50 {
            text.push_str(&format!("{},{},{}\n", i, 100 - i, i % 2));
        }
        let p = write(&dir, "pts.csv", text.as_bytes());
        let s = load(p.to_str().unwrap(), &data_dir(), 1).unwrap();
        assert_eq!((s.train.len(), s.test.len()), (40, 10));
        assert_eq!(
            (s.train.dim, s.train.n_classes, s.train.name.as_str()),
            (2, 2, "pts")
        );
        assert!(
            s.train
                .features
                .iter()
                .chain(&s.test.features)
                .all(|v| (0.0..=1.0).contains(v))
        );
        // relative to data_dir
        let s2 = load("pts.csv", &dir, 1).unwrap();
        assert_eq!(s, s2);
    }
}
