//! Output folders of the command line (`--out`, `--plot`), checked *before* the work starts
//! (ARCHITECTURE.md §12): a folder must be creatable and writable, and empty unless `--force`
//! is given, in which case the files an earlier run left there (figures, tables, JSON) are
//! removed when the work is about to start. It never removes a subdirectory or a file of
//! another kind, nor one of the run's own inputs: those make it refuse, naming them.

use std::path::{Path, PathBuf};

use crate::output::{OutputError, io, write_atomic};

/// Extensions of the files accord writes into an output directory (the only ones `--force`
/// removes).
pub const OWN_EXTENSIONS: [&str; 6] = ["png", "csv", "json", "jsonl", "txt", "bin"];

/// Why an output folder cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum OutDirError {
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
    /// Creating, reading or writing into it failed.
    #[error(transparent)]
    Io(#[from] OutputError),
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
    /// [`OutDirError`] naming the flag and the directory.
    pub fn prepare(dir: &Path, force: bool, flag: &str) -> Result<OutDir, OutDirError> {
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
                return Err(OutDirError::NotEmpty {
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
                return Err(OutDirError::Foreign {
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
    /// [`OutDirError::Foreign`] naming the option and the file.
    pub fn keep_inputs(&self, inputs: &[(&str, &Path)]) -> Result<(), OutDirError> {
        let canon = |p: &Path| std::fs::canonicalize(p).ok();
        for (opt, p) in inputs {
            let Some(c) = canon(p) else { continue };
            if self.stale.iter().any(|s| canon(s).as_ref() == Some(&c)) {
                return Err(OutDirError::Foreign {
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
    /// [`OutDirError::Io`] naming the file.
    pub fn clear(&self) -> Result<(), OutDirError> {
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

    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("accord-outdir-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
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
