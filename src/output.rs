//! Files a run writes: whole or not at all (ARCHITECTURE.md §12); and numbers printed
//! compactly ([`format_value`]) in reports and figures.
//!
//! * [`write_atomic`] writes to a temporary sibling and renames it into place, so an interrupt
//!   or a full disk leaves the old file or the new one, never half of one; PNG figures go the
//!   same way (the front end's figures are drawn into [`temp_sibling`]).
//! * [`check_writable`] checks before the work that a file can be written where it is to go.
//!
//! The front end's output folders (checked before the work, cleared only of accord's own files)
//! are the command line's (`cli::out_dir`).

use std::io::Write;
use std::path::{Path, PathBuf};

/// A value printed compactly (`0.25`, `3`, `1e-4`, `1.2e5`): format ranges in reports, axis
/// and colour-bar labels in figures.
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

pub(crate) fn io(
    what: impl Into<String>,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> OutputError {
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
}
