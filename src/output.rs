//! Files a run writes: whole or not at all, into a directory that holds nothing stale
//! (ARCHITECTURE.md §12).
//!
//! * [`write_atomic`] writes to a temporary sibling and renames it into place, so an interrupt
//!   or a full disk leaves the old file or the new one, never half of one; PNG figures go the
//!   same way (the front end's figures are drawn into [`temp_sibling`]).
//! * [`OutDir::prepare`] checks an output directory *before* the work starts: it must be
//!   creatable and writable, and empty unless `force` is given, in which case the files an
//!   earlier run left there (figures, tables, JSON) are removed first. It never removes a
//!   subdirectory or a file of another kind: those make it refuse, naming them.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Extensions of the files accord writes into an output directory (the only ones `--force`
/// removes).
pub const OWN_EXTENSIONS: [&str; 6] = ["png", "csv", "json", "jsonl", "txt", "bin"];

/// Format an axis or colour-bar value compactly.
pub fn format_value(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if !(1e-3..1e5).contains(&a) {
        let s = format!("{v:.1e}");
        s.replace(".0e", "e")
    } else {
        let s = format!("{v:.4}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.to_string()
    }
}

/// Errors of preparing or writing outputs.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The directory is not empty and `--force` was not given.
    #[error(
        "{flag} {}: the directory is not empty ({count} entries, e.g. {example}); pass --force to replace an earlier run's files, or choose a new directory",
        dir.display()
    )]
    NotEmpty {
        /// The flag that named the directory.
        flag: String,
        /// The directory.
        dir: PathBuf,
        /// Entries found.
        count: usize,
        /// One of them.
        example: String,
    },
    /// `--force` was given but the directory holds something accord did not write.
    #[error(
        "{flag} {}: --force removes only accord's own files (.png, .csv, .json, .jsonl, .txt, .bin), but the directory also holds {foreign}; move it away or choose a new directory",
        dir.display()
    )]
    Foreign {
        /// The flag that named the directory.
        flag: String,
        /// The directory.
        dir: PathBuf,
        /// The entry that is not accord's.
        foreign: String,
    },
    /// A file-system operation failed.
    #[error("{what} {}: {error}", path.display())]
    Io {
        /// What was being done (`creating`, `writing`, …), with the flag when there is one.
        what: String,
        /// The path.
        path: PathBuf,
        /// The cause (part of the message).
        error: std::io::Error,
    },
}

fn io(what: impl Into<String>, path: &Path) -> impl FnOnce(std::io::Error) -> OutputError {
    let (what, path) = (what.into(), path.to_path_buf());
    move |error| OutputError::Io { what, path, error }
}

/// A hidden temporary name beside `path` with the same extension (image encoders choose the
/// format by extension): `dir/.name.tmp<pid>.png` for `dir/name.png`.
pub fn temp_sibling(path: &Path) -> PathBuf {
    let stem = path
        .file_stem()
        .map_or_else(|| "out".into(), |s| s.to_string_lossy().into_owned());
    let name = match path.extension() {
        Some(ext) => format!(
            ".{stem}.tmp{}.{}",
            std::process::id(),
            ext.to_string_lossy()
        ),
        None => format!(".{stem}.tmp{}", std::process::id()),
    };
    path.with_file_name(name)
}

/// Write `bytes` to `path` through a temporary sibling and a rename.
///
/// # Errors
/// [`OutputError::Io`] naming the file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    let tmp = temp_sibling(path);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(io("writing", path))?;
        f.write_all(bytes).map_err(io("writing", path))?;
        f.sync_all().map_err(io("writing", path))?;
        std::fs::rename(&tmp, path).map_err(io("writing", path))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Check, before the work, that a file can be written at `path` (its folder exists and takes
/// a new file); nothing is left behind and an existing file is not touched.
///
/// # Errors
/// [`OutputError::Io`] naming the path.
pub fn check_writable(path: &Path) -> Result<(), OutputError> {
    let probe = temp_sibling(path);
    std::fs::write(&probe, b"").map_err(io("writing", path))?;
    std::fs::remove_file(&probe).map_err(io("writing", path))
}

/// An output directory checked before the work starts.
#[derive(Debug, Clone)]
pub struct OutDir {
    /// The directory.
    pub dir: PathBuf,
    /// An earlier run's files that [`OutDir::clear`] removes (`--force`).
    stale: Vec<PathBuf>,
    flag: String,
}

impl OutDir {
    /// Create `dir` if needed, check it is writable, and make sure no earlier run's files will
    /// stay beside the new ones: an existing non-empty directory is refused unless `force`, in
    /// which case accord's own files there are listed for [`OutDir::clear`] (nothing is
    /// removed yet, so a run refused later leaves them). `flag` names the option in errors.
    ///
    /// # Errors
    /// [`OutputError`] naming the flag and the directory.
    pub fn prepare(dir: &Path, force: bool, flag: &str) -> Result<OutDir, OutputError> {
        let what = |verb: &str| format!("{verb} {flag}");
        std::fs::create_dir_all(dir).map_err(io(what("creating"), dir))?;
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io(what("reading"), dir))?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(io(what("reading"), dir))?;
        entries.sort();
        if let Some(first) = entries.first() {
            if !force {
                return Err(OutputError::NotEmpty {
                    flag: flag.into(),
                    dir: dir.to_path_buf(),
                    count: entries.len(),
                    example: file_name(first),
                });
            }
            let own = |p: &Path| {
                p.is_file()
                    && p.extension()
                        .is_some_and(|e| OWN_EXTENSIONS.iter().any(|o| e == *o))
            };
            if let Some(foreign) = entries.iter().find(|p| !own(p)) {
                return Err(OutputError::Foreign {
                    flag: flag.into(),
                    dir: dir.to_path_buf(),
                    foreign: file_name(foreign),
                });
            }
        }
        // Writable now, not after an hour of work.
        let probe = dir.join(".accord-write-check");
        write_atomic(&probe, b"")?;
        std::fs::remove_file(&probe).map_err(io(what("writing into"), dir))?;
        Ok(OutDir {
            dir: dir.to_path_buf(),
            stale: entries,
            flag: flag.into(),
        })
    }

    /// Refuse to clear a folder that holds one of the run's own inputs (`(option, path)`):
    /// `--force` must never delete the data, model or checkpoint the run reads or writes.
    ///
    /// # Errors
    /// [`OutputError::Foreign`] naming the option and the file.
    pub fn keep_inputs(&self, inputs: &[(&str, &Path)]) -> Result<(), OutputError> {
        let canon = |p: &Path| std::fs::canonicalize(p).ok();
        for (opt, p) in inputs {
            let Some(c) = canon(p) else { continue };
            if self.stale.iter().any(|s| canon(s).as_ref() == Some(&c)) {
                return Err(OutputError::Foreign {
                    flag: self.flag.clone(),
                    dir: self.dir.clone(),
                    foreign: format!(
                        "{} (the run's {opt}), which --force would delete",
                        p.display()
                    ),
                });
            }
        }
        Ok(())
    }

    /// Remove the earlier run's files listed by [`OutDir::prepare`] (call it when the work is
    /// about to start).
    ///
    /// # Errors
    /// [`OutputError::Io`] naming the file.
    pub fn clear(&self) -> Result<(), OutputError> {
        for p in &self.stale {
            std::fs::remove_file(p).map_err(io(format!("clearing {}", self.flag), p))?;
        }
        Ok(())
    }

    /// `name` inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

fn file_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_values_compactly() {
        assert_eq!(format_value(0.0), "0");
        assert_eq!(format_value(0.25), "0.25");
        assert_eq!(format_value(1e-4), "1e-4");
        assert_eq!(format_value(3.0), "3");
        assert_eq!(format_value(123456.0), "1.2e5");
    }

    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("accord-out-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn atomic_write_replaces_whole_and_leaves_no_temp() {
        let d = scratch("atomic");
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("a.csv");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two,three").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two,three");
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1);
        assert_eq!(
            temp_sibling(&p).extension().unwrap(),
            "csv",
            "encoders pick the format by extension"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn non_empty_directory_is_refused_unless_forced_and_forced_clears_only_own_files() {
        let d = scratch("prepare");
        OutDir::prepare(&d, false, "--out").unwrap();
        std::fs::write(d.join("old.png"), b"x").unwrap();
        let e = OutDir::prepare(&d, false, "--out").unwrap_err().to_string();
        assert!(
            e.contains("--out") && e.contains("not empty") && e.contains("old.png"),
            "{e}"
        );
        let o = OutDir::prepare(&d, true, "--out").unwrap();
        assert_eq!(
            std::fs::read_dir(&d).unwrap().count(),
            1,
            "nothing removed before clear"
        );
        let e = o
            .keep_inputs(&[("--data", &d.join("old.png"))])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--data") && e.contains("would delete"), "{e}");
        o.clear().unwrap();
        assert_eq!(
            std::fs::read_dir(&d).unwrap().count(),
            0,
            "stale files cleared"
        );
        std::fs::write(d.join("notes.md"), b"mine").unwrap();
        let e = OutDir::prepare(&d, true, "--out").unwrap_err().to_string();
        assert!(e.contains("notes.md"), "{e}");
        assert!(
            d.join("notes.md").exists(),
            "never removes what accord did not write"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn unwritable_place_is_reported_before_work() {
        let d = scratch("file");
        std::fs::create_dir_all(&d).unwrap();
        let f = d.join("plain");
        std::fs::write(&f, b"").unwrap();
        let e = OutDir::prepare(&f.join("sub"), false, "--plot")
            .unwrap_err()
            .to_string();
        assert!(e.contains("--plot"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
