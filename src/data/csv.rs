//! Generic numeric CSV: feature columns, then an integer class label in the last column.
//!
//! Cells are separated by commas and may be padded with spaces; lines end in `\n` or `\r\n`.
//! There is no quoting. Blank lines are allowed only at the end of the file. The file may be
//! gzip-compressed (detected by the `1f 8b` magic, whatever its name).

use std::path::Path;

use super::{DataError, Dataset, read_bytes};

/// Largest label accepted when [`CsvOptions::n_classes`] is not given (guards against reading a
/// feature column as labels and allocating absurd class counts).
pub const MAX_LABEL: usize = 65_535;

/// How to treat the first line of a CSV file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Header {
    /// Every line is data.
    None,
    /// The first line is a header and is skipped unread.
    Skip,
    /// Skip the first line iff any of its cells is not a number (so iris's
    /// `150,4,setosa,versicolor,virginica` is skipped, while a numeric first row is data).
    #[default]
    Auto,
}

/// Options for [`read_csv`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CsvOptions {
    /// Header handling (default [`Header::Auto`]).
    pub header: Header,
    /// Number of classes; labels must be below it. If `None`, it is the largest label + 1
    /// (labels up to [`MAX_LABEL`]).
    pub n_classes: Option<usize>,
    /// Dataset name; defaults to the file name without `.gz` and `.csv`.
    pub name: Option<String>,
}

/// Shortens a cell for an error message.
fn snippet(cell: &str) -> String {
    const MAX: usize = 40;
    match cell.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &cell[..i]),
        None => cell.to_string(),
    }
}

fn stem(path: &Path) -> String {
    let mut name = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    for ext in [".gz", ".csv"] {
        if let Some(s) = name.strip_suffix(ext) {
            name = s.to_string();
        }
    }
    name
}

/// One cell of a CSV file, for its checks and errors.
struct Cell<'a> {
    path: &'a Path,
    line: usize,
    column: usize,
    text: &'a str,
}

impl Cell<'_> {
    /// Its value: a finite number.
    fn number(&self) -> Result<f64, DataError> {
        let v: f64 = self.text.parse().map_err(|_| DataError::NotANumber {
            path: self.path.to_path_buf(),
            line: self.line,
            column: self.column,
            cell: snippet(self.text),
        })?;
        if !v.is_finite() {
            return Err(DataError::NonFinite {
                path: self.path.to_path_buf(),
                line: self.line,
                column: self.column,
                cell: snippet(self.text),
            });
        }
        Ok(v)
    }

    /// Its value `v` as a label: a non-negative integer below `n_classes` (or the label limit).
    fn label(&self, v: f64, n_classes: Option<usize>) -> Result<usize, DataError> {
        let bad = |reason: String| DataError::BadLabel {
            path: self.path.to_path_buf(),
            line: self.line,
            column: self.column,
            cell: snippet(self.text),
            reason,
        };
        if v < 0.0 {
            return Err(bad("is negative".into()));
        }
        if v.fract() != 0.0 {
            return Err(bad("is not an integer".into()));
        }
        let limit = n_classes.unwrap_or(MAX_LABEL + 1);
        if v >= limit as f64 {
            return Err(match n_classes {
                Some(n_classes) => DataError::LabelOutOfRange {
                    path: self.path.to_path_buf(),
                    line: self.line,
                    column: self.column,
                    label: if v <= usize::MAX as f64 {
                        v as usize
                    } else {
                        usize::MAX
                    },
                    n_classes,
                },
                None => bad(format!(
                    "is too large (limit {MAX_LABEL} when no class count is given)"
                )),
            });
        }
        Ok(v as usize)
    }
}

/// Reads a numeric CSV file into an **unscaled** [`Dataset`] (features as written).
///
/// Every data row must have the same number of cells (at least two); all but the last are finite
/// numbers, the last is a non-negative integer label (`3` or `3.0`). Errors name the file and the
/// 1-based line (and column) for: a non-numeric cell, a ragged row, a NaN or infinite cell, a
/// negative, fractional or out-of-range label, a blank line between rows, invalid UTF-8, and an
/// empty file or one without data rows.
pub fn read_csv(path: &Path, opts: &CsvOptions) -> Result<Dataset, DataError> {
    let bytes = read_bytes(path)?;
    let text = std::str::from_utf8(&bytes).map_err(|e| DataError::NotUtf8 {
        path: path.to_path_buf(),
        line: 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count(),
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let no_data = |reason| DataError::NoData {
        path: path.to_path_buf(),
        reason,
    };

    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    // Drop trailing blank lines.
    let used = lines
        .iter()
        .rposition(|l| !l.trim().is_empty())
        .map_or(0, |i| i + 1);
    if used == 0 {
        return Err(no_data("file is empty"));
    }
    let lines = &lines[..used];

    let skip_first = match opts.header {
        Header::None => false,
        Header::Skip => true,
        Header::Auto => lines[0]
            .split(',')
            .any(|c| c.trim().parse::<f64>().is_err()),
    };
    let first = usize::from(skip_first);
    if first >= lines.len() {
        return Err(no_data("no data rows after the header"));
    }

    let mut width = 0;
    let mut features = Vec::new();
    let mut labels = Vec::new();
    for (k, raw) in lines.iter().enumerate().skip(first) {
        let line = k + 1;
        if raw.trim().is_empty() {
            return Err(DataError::BlankLine {
                path: path.to_path_buf(),
                line,
            });
        }
        let found = raw.split(',').count();
        if width == 0 {
            if found < 2 {
                return Err(DataError::TooFewColumns {
                    path: path.to_path_buf(),
                    line,
                    found,
                });
            }
            width = found;
            features.reserve((lines.len() - first) * (width - 1));
        } else if found != width {
            return Err(DataError::Ragged {
                path: path.to_path_buf(),
                line,
                expected: width,
                found,
            });
        }
        for (j, cell) in raw.split(',').enumerate() {
            let at = Cell {
                path,
                line,
                column: j + 1,
                text: cell.trim(),
            };
            let v = at.number()?;
            if at.column < width {
                features.push(v);
            } else {
                labels.push(at.label(v, opts.n_classes)?);
            }
        }
    }
    let n_classes = opts
        .n_classes
        .unwrap_or_else(|| labels.iter().max().map_or(0, |m| m + 1));
    Ok(Dataset {
        name: opts.name.clone().unwrap_or_else(|| stem(path)),
        features,
        labels,
        dim: width - 1,
        n_classes,
    })
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{gz, temp_dir, write};
    use super::*;
    use std::path::PathBuf;

    fn opts(header: Header, n_classes: Option<usize>) -> CsvOptions {
        CsvOptions {
            header,
            n_classes,
            name: None,
        }
    }

    /// Writes `text` to a fresh file called `name` and reads it; returns the path and result.
    fn try_read(name: &str, text: &str, o: &CsvOptions) -> (PathBuf, Result<Dataset, DataError>) {
        let dir = temp_dir("csv");
        let p = write(&dir, name, text.as_bytes());
        let r = read_csv(&p, o);
        (p, r)
    }

    fn err(name: &str, text: &str, o: &CsvOptions) -> String {
        let (p, r) = try_read(name, text, o);
        let e = r.expect_err("should fail").to_string();
        assert!(e.starts_with(&p.display().to_string()), "{e}");
        e
    }

    #[test]
    fn reads_plain_with_crlf_spaces_and_trailing_blank_lines() {
        let (_, r) = try_read(
            "ok.csv",
            "1, 2.5 ,0\r\n-3,1e2,2\r\n\r\n  \n",
            &CsvOptions::default(),
        );
        let ds = r.unwrap();
        assert_eq!((ds.len(), ds.dim, ds.n_classes), (2, 2, 3));
        assert_eq!(ds.features, [1.0, 2.5, -3.0, 100.0]);
        assert_eq!(ds.labels, [0, 2]);
        assert_eq!(ds.name, "ok");
    }

    #[test]
    fn reads_gzip_by_magic() {
        let dir = temp_dir("csv-gz");
        let p = write(&dir, "z.csv.gz", &gz(b"0,1\n2,0\n"));
        let ds = read_csv(&p, &CsvOptions::default()).unwrap();
        assert_eq!(ds.features, [0.0, 2.0]);
        assert_eq!(ds.name, "z");
    }

    #[test]
    fn header_modes() {
        let text = "150,4,setosa,versicolor,virginica\n5.1,3.5,1.4,0.2,0\n4.9,3.0,1.4,0.2,2\n";
        let auto = try_read("h.csv", text, &opts(Header::Auto, Some(3)))
            .1
            .unwrap();
        assert_eq!(auto.len(), 2);
        let skip = try_read("h.csv", text, &opts(Header::Skip, Some(3)))
            .1
            .unwrap();
        assert_eq!(auto, skip);
        let e = err("h.csv", text, &opts(Header::None, None));
        assert!(
            e.contains("line 1, column 3: cell \"setosa\" is not a number"),
            "{e}"
        );
        // numeric first line: Auto keeps it as data
        let num = try_read("n.csv", "1,2,0\n3,4,1\n", &CsvOptions::default())
            .1
            .unwrap();
        assert_eq!(num.len(), 2);
        // Skip drops a numeric first line
        let s = try_read("n.csv", "1,2,0\n3,4,1\n", &opts(Header::Skip, None))
            .1
            .unwrap();
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn non_numeric_cell() {
        let e = err("bad.csv", "1,2,0\n1,abc,1\n", &CsvOptions::default());
        assert!(
            e.contains("bad.csv: line 2, column 2: cell \"abc\" is not a number"),
            "{e}"
        );
        let e = err("empty-cell.csv", "1,2,0\n1,,0\n", &CsvOptions::default());
        assert!(
            e.contains("line 2, column 2: cell \"\" is not a number"),
            "{e}"
        );
    }

    #[test]
    fn ragged_row() {
        let e = err(
            "ragged.csv",
            "a,b,c\n1,2,0\n3,4,1\n5,6\n",
            &CsvOptions::default(),
        );
        assert!(
            e.contains("ragged.csv: line 4: expected 3 columns, found 2"),
            "{e}"
        );
    }

    #[test]
    fn nan_and_infinity() {
        for (cell, col) in [
            ("NaN", 1),
            ("nan", 1),
            ("inf", 2),
            ("-infinity", 2),
            ("1e999", 2),
        ] {
            let text = if col == 1 {
                format!("1,1,0\n{cell},2,1\n")
            } else {
                format!("1,1,0\n1,{cell},1\n")
            };
            let e = err("nonfinite.csv", &text, &CsvOptions::default());
            assert!(
                e.contains(&format!(
                    "nonfinite.csv: line 2, column {col}: cell \"{cell}\" is not finite"
                )),
                "{e}"
            );
        }
        let e = err("nanlabel.csv", "1,NaN\n", &CsvOptions::default());
        assert!(
            e.contains("line 1, column 2") && e.contains("not finite"),
            "{e}"
        );
    }

    #[test]
    fn bad_labels() {
        let e = err("lab.csv", "1,0\n2,-1\n", &CsvOptions::default());
        assert!(
            e.contains("lab.csv: line 2, column 2: label \"-1\" is negative"),
            "{e}"
        );
        let e = err("lab.csv", "1,0\n2,0\n3,1.5\n", &CsvOptions::default());
        assert!(
            e.contains("line 3, column 2: label \"1.5\" is not an integer"),
            "{e}"
        );
        let e = err("lab.csv", "1,0\n2,3\n", &opts(Header::None, Some(3)));
        assert!(
            e.contains("lab.csv: line 2, column 2: label 3 out of range for 3 classes"),
            "{e}"
        );
        let e = err("lab.csv", "1,1e300\n", &opts(Header::None, Some(3)));
        assert!(
            e.contains("line 1, column 2") && e.contains("out of range"),
            "{e}"
        );
        let e = err("lab.csv", "1,70000\n", &CsvOptions::default());
        assert!(
            e.contains("line 1, column 2") && e.contains("too large"),
            "{e}"
        );
        // integral float labels are fine
        let ds = try_read("lab.csv", "1,2.0\n", &CsvOptions::default())
            .1
            .unwrap();
        assert_eq!((ds.labels[0], ds.n_classes), (2, 3));
    }

    #[test]
    fn empty_and_header_only_files() {
        let e = err("empty.csv", "", &CsvOptions::default());
        assert!(e.contains("empty.csv: file is empty"), "{e}");
        let e = err("blank.csv", "\n \r\n\n", &CsvOptions::default());
        assert!(e.contains("blank.csv: file is empty"), "{e}");
        let e = err("hdr.csv", "x,y,label\n\n", &CsvOptions::default());
        assert!(e.contains("hdr.csv: no data rows after the header"), "{e}");
    }

    #[test]
    fn blank_line_inside_and_single_column() {
        let e = err("gap.csv", "1,0\n\n2,1\n", &CsvOptions::default());
        assert!(e.contains("gap.csv: line 2: blank line"), "{e}");
        let e = err("one.csv", "1\n2\n", &CsvOptions::default());
        assert!(e.contains("one.csv: line 1: found 1 column(s)"), "{e}");
    }

    #[test]
    fn invalid_utf8_and_long_cells() {
        let dir = temp_dir("csv-utf8");
        let p = write(&dir, "bin.csv", b"1,0\n2,\xff\n");
        let e = read_csv(&p, &CsvOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("bin.csv: line 2: not valid UTF-8"), "{e}");
        let long = "x".repeat(500);
        let e = err(
            "long.csv",
            &format!("1,0\n{long},1\n"),
            &CsvOptions::default(),
        );
        assert!(e.contains('…') && e.len() < 200, "{e}");
    }

    #[test]
    fn missing_file_names_path() {
        let p = Path::new("/nonexistent/accord/x.csv");
        let e = read_csv(p, &CsvOptions::default()).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/accord/x.csv"), "{e}");
    }

    proptest::proptest! {
        /// Arbitrary bytes never make the reader panic.
        #[test]
        fn arbitrary_input_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let dir = temp_dir("csv-prop");
            let p = write(&dir, "fuzz.csv", &bytes);
            let _ = read_csv(&p, &CsvOptions::default());
        }

        /// Well-formed tables round-trip.
        #[test]
        fn well_formed_round_trips(rows in proptest::collection::vec(
            (proptest::collection::vec(-1e6f64..1e6, 3), 0usize..5), 1..20)) {
            let mut text = String::new();
            for (f, l) in &rows {
                text.push_str(&format!("{},{},{},{}\n", f[0], f[1], f[2], l));
            }
            let dir = temp_dir("csv-prop-ok");
            let p = write(&dir, "ok.csv", text.as_bytes());
            let ds = read_csv(&p, &opts(Header::None, Some(5))).unwrap();
            proptest::prop_assert_eq!(ds.len(), rows.len());
            for (i, (f, l)) in rows.iter().enumerate() {
                proptest::prop_assert_eq!(ds.row(i), &f[..]);
                proptest::prop_assert_eq!(ds.labels[i], *l);
            }
        }
    }
}
