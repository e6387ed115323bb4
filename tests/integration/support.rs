//! What the integration tests share: running the `accord` binary, reading its errors, scratch
//! folders.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Run the `accord` binary with `args` to completion.
pub fn accord(args: &[&str]) -> Output {
    accord_in(&[], args)
}

/// [`accord`] with extra environment variables.
pub fn accord_in(env: &[(&str, &Path)], args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_accord"));
    for (k, v) in env {
        c.env(k, v);
    }
    c.args(args).output().expect("run accord")
}

/// A NIR fixture written by the Python `nir` package (`tests/fixtures/nir/`).
pub fn nir_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/nir")
        .join(name)
}

/// A CSV dataset of 60 rows for `conv.nir` in `dir`: 36 features (a 6×6 image), 3 classes.
pub fn image_csv(dir: &Path) -> PathBuf {
    let data = dir.join("img.csv");
    let mut text = String::new();
    for r in 0..60 {
        let row: Vec<String> = (0..36)
            .map(|j| format!("{}", (r * 7 + j * 3) % 11))
            .collect();
        text.push_str(&format!("{},{}\n", row.join(","), r % 3));
    }
    std::fs::write(&data, text).unwrap();
    data
}

/// The run's standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh, empty folder for one test: `tag` names it, the process id and a count of the calls
/// make it unique, so that tests running at the same time never share one (two tests once
/// both took `scratch("sweep")` and one deleted the other's files mid-run).
pub fn scratch(tag: &str) -> PathBuf {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let k = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("accord-test-{tag}-{}-{k}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
