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
