//! Resource limits, checked before work allocates (ARCHITECTURE.md §12).
//!
//! Every size a user can ask for — layer widths, all-to-all `n`, the probes' general net, the
//! bytes of an input file after decompression — is turned into an estimate of the memory it
//! needs and held against one process-wide limit *before* anything is allocated, so a typo
//! such as `--hidden 65536,65536` ends in a message naming the field (the command line shows
//! its option), the estimate and the limit instead of an allocation failure or a machine that
//! swaps.
//!
//! The limit is [`DEFAULT_MAX_MEMORY`] unless raised (or lowered) with [`set_max_memory`]
//! (`accord --max-memory 8G …` on the command line). Input files are read through
//! [`read_bounded`], which stops at a byte budget however large the file (or `/dev/zero`) is.
//!
//! | resource | estimate |
//! |---|---|
//! | `f64` reference, layered | 4 copies of the weights (weights, update, batch sum, transposed oracle) at 8 B, plus 64 B per neuron |
//! | chip, layered | 16 B per synapse (weights, mirror or comparison copies, rows) plus 256 B per neuron |
//! | all-to-all `n` | 5 `n × n` matrices of `f64` (weights, mask, update, relaxation, analysis) |
//! | input file | its bytes after decompression, at most `limit / 16` (features become 8-byte `f64`, beside the bytes read) |

use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// The memory limit when none is set: 2 GiB.
pub const DEFAULT_MAX_MEMORY: u64 = 2 << 30;

/// The largest chip file read: 1 MiB (the shipped ones are a few kB).
pub const MAX_CHIP_FILE: u64 = 1 << 20;

static MAX_MEMORY: AtomicU64 = AtomicU64::new(DEFAULT_MAX_MEMORY);

/// The current memory limit, bytes.
pub fn max_memory() -> u64 {
    MAX_MEMORY.load(Ordering::Relaxed)
}

/// Set the memory limit (bytes) for the rest of the process.
pub fn set_max_memory(bytes: u64) {
    MAX_MEMORY.store(bytes, Ordering::Relaxed);
}

/// A request over the limit.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct LimitError {
    /// The configuration field whose value asked for it (`hidden`, `n`), if one did: the
    /// message then reads `"{field} {what} needs …"`, and a front end may show its own option
    /// for the field instead ([`LimitError::named`]).
    pub field: Option<&'static str>,
    /// What was asked for: the field's value and what it makes, or a file.
    pub what: String,
    /// Estimated bytes (`u64::MAX` when the estimate itself overflows).
    pub estimate: u64,
    /// The limit in force, bytes.
    pub limit: u64,
}

impl LimitError {
    /// The message with the field shown as `field` (a front end's option for it) and the way to
    /// raise the limit as `raise` (given the gibibytes that would do, e.g. `--max-memory 3G`).
    pub fn named(&self, field: &str, raise: &dyn Fn(u64) -> String) -> String {
        let what = match self.field {
            Some(_) => format!("{field} {}", self.what),
            None => self.what.clone(),
        };
        if self.estimate == u64::MAX {
            return format!(
                "{what} needs more memory than 64 bits can count (the size estimate overflows)"
            );
        }
        format!(
            "{what} needs an estimated {} of memory, over the limit of {} ({})",
            human(self.estimate),
            human(self.limit),
            raise(self.estimate.div_ceil(1 << 30))
        )
    }
}

impl std::fmt::Display for LimitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let raise = |g: u64| format!("raise the limit (limits::set_max_memory), e.g. to {g} GiB");
        f.write_str(&self.named(self.field.unwrap_or(""), &raise))
    }
}

/// Check that `estimate` bytes for `what` fit the limit.
///
/// # Errors
/// [`LimitError`] naming `what`, the estimate and the limit.
pub fn check(what: impl Into<String>, estimate: u64) -> Result<(), LimitError> {
    check_inner(None, what.into(), estimate)
}

/// [`check`] for a request a configuration field's value makes: `what` is that value and what
/// it makes (`"4294967296 (an all-to-all net)"` for field `n`).
pub fn check_field(
    field: &'static str,
    what: impl Into<String>,
    estimate: u64,
) -> Result<(), LimitError> {
    check_inner(Some(field), what.into(), estimate)
}

fn check_inner(field: Option<&'static str>, what: String, estimate: u64) -> Result<(), LimitError> {
    let limit = max_memory();
    if estimate > limit {
        return Err(LimitError {
            field,
            what,
            estimate,
            limit,
        });
    }
    Ok(())
}

/// `a × b × …` in bytes, saturating at `u64::MAX` (an estimate that overflows is over any
/// limit).
pub fn product(factors: &[u64]) -> u64 {
    factors
        .iter()
        .try_fold(1u64, |acc, &f| acc.checked_mul(f))
        .unwrap_or(u64::MAX)
}

/// Estimated bytes of the `f64` reference for a layered net of `sizes`.
pub fn reference_bytes(sizes: &[usize]) -> u64 {
    let (syn, neurons) = shape(sizes);
    product(&[syn, 4, 8]).saturating_add(product(&[neurons, 64]))
}

/// Estimated bytes of a layered net of `sizes` on a chip.
pub fn chip_bytes(sizes: &[usize]) -> u64 {
    let (syn, neurons) = shape(sizes);
    product(&[syn, 16]).saturating_add(product(&[neurons, 256]))
}

/// Estimated bytes of an all-to-all net of `n` neurons.
pub fn all_to_all_bytes(n: usize) -> u64 {
    product(&[n as u64, n as u64, 5, 8])
}

/// Synapses and neurons of a layered net, saturating.
fn shape(sizes: &[usize]) -> (u64, u64) {
    let syn = sizes
        .windows(2)
        .map(|w| product(&[w[0] as u64, w[1] as u64]))
        .fold(0u64, u64::saturating_add);
    let neurons = sizes
        .iter()
        .map(|&s| s as u64)
        .fold(0u64, u64::saturating_add);
    (syn, neurons)
}

/// Read at most `max` bytes from `path` (after `gunzip` when it starts with the gzip magic,
/// the budget applying to the decompressed bytes).
///
/// # Errors
/// The file cannot be opened or read, is corrupt gzip, or holds more than `max` bytes
/// ([`std::io::ErrorKind::FileTooLarge`] with a message giving the budget).
pub fn read_bounded(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let mut raw = Vec::new();
    file.take(max.saturating_add(1)).read_to_end(&mut raw)?;
    if raw.len() as u64 > max {
        // Over the budget before any decompression (a cut-off gzip stream would otherwise
        // read as corrupt).
        return Err(too_large("holds", max));
    }
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .take(max.saturating_add(1))
            .read_to_end(&mut out)?;
        if out.len() as u64 > max {
            return Err(too_large("decompresses to", max));
        }
        return Ok(out);
    }
    Ok(raw)
}

/// How the read budgets scale, as the messages of [`read_bounded`] say it (a front end may
/// name its own option for the memory limit after it).
pub const READ_BUDGETS: &str = "data, checkpoints and NIR files scale with the memory limit";

fn too_large(verb: &str, max: u64) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::FileTooLarge,
        format!(
            "{verb} more than {} (the budget for this kind of input; {READ_BUDGETS}, chip files stop at 1 MiB)",
            human(max)
        ),
    )
}

/// `bytes` for people: `1.5 GiB`, `12.0 MiB`, `512 B`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes == u64::MAX {
        return "more than 16 EiB".into();
    }
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

/// Parse a byte size: a whole number with an optional `K`, `M`, `G` or `T` suffix (powers of
/// 1024, `B`/`iB` accepted after it), e.g. `8G`, `512MiB`, `1048576`.
///
/// # Errors
/// Not a size, zero, or more than 2⁶⁴ − 1 bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a size (e.g. 4G, 512M, 1048576)"))?;
    let unit = unit.trim().to_ascii_uppercase();
    let shift = match unit.trim_end_matches("IB").trim_end_matches('B') {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(format!("'{s}': unknown unit '{unit}' (use K, M, G or T)")),
    };
    let bytes = n
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("'{s}' is more than 2^64 − 1 bytes"))?;
    if bytes == 0 {
        return Err("a memory limit must be more than 0 bytes".into());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("8G"), Ok(8 << 30));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("3k"), Ok(3 << 10));
        assert!(parse_size("0").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("4X").unwrap_err().contains("unknown unit"));
        assert!(parse_size("99999999999T").unwrap_err().contains("2^64"));
    }

    #[test]
    fn estimates_saturate_instead_of_wrapping() {
        assert_eq!(all_to_all_bytes(1 << 32), u64::MAX);
        let e = check_field("n", "4294967296", u64::MAX).unwrap_err();
        assert!(e.to_string().starts_with("n 4294967296 needs"), "{e}");
        assert!(e.to_string().contains("overflows"), "{e}");
        let flagged = e.named("--n", &|g| format!("--max-memory {g}G"));
        assert!(flagged.starts_with("--n 4294967296 needs"), "{flagged}");
        assert_eq!(all_to_all_bytes(300), 300 * 300 * 40);
        assert_eq!(reference_bytes(&[4, 3]), 12 * 32 + 7 * 64);
        assert_eq!(chip_bytes(&[usize::MAX, usize::MAX]), u64::MAX);
    }

    #[test]
    fn check_names_what_estimate_and_limit() {
        let e = check_field(
            "hidden",
            "65536,65536",
            reference_bytes(&[4, 65536, 65536, 3]),
        )
        .unwrap_err();
        let s = e.to_string();
        assert!(s.contains("hidden 65536,65536"), "{s}");
        assert!(s.contains("128.0 GiB"), "{s}");
        assert!(s.contains("2.0 GiB"), "{s}");
        assert!(s.contains("e.g. to 129 GiB"), "{s}");
        let s = e.named("--hidden", &|g| {
            format!("raise it with --max-memory, e.g. --max-memory {g}G")
        });
        assert!(
            s.contains("--hidden 65536,65536") && s.contains("--max-memory 129G"),
            "{s}"
        );
        assert!(check("small", 1 << 20).is_ok());
    }

    #[test]
    fn bounded_reads_stop_at_the_budget() {
        use std::io::Write;
        let dir = std::env::temp_dir().join(format!("accord-limits-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let plain = dir.join("plain");
        std::fs::write(&plain, vec![7u8; 100]).unwrap();
        assert_eq!(read_bounded(&plain, 100).unwrap().len(), 100);
        let e = read_bounded(&plain, 99).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::FileTooLarge);
        // A small gzip that expands past the budget is stopped while decompressing.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![0u8; 1 << 20]).unwrap();
        let bomb = dir.join("bomb.gz");
        std::fs::write(&bomb, gz.finish().unwrap()).unwrap();
        assert!(std::fs::metadata(&bomb).unwrap().len() < 4096);
        let e = read_bounded(&bomb, 1 << 16).unwrap_err();
        assert!(
            e.to_string().contains("decompresses to more than 64.0 KiB"),
            "{e}"
        );
        assert_eq!(read_bounded(&bomb, 1 << 20).unwrap().len(), 1 << 20);
        // A gzip file larger than the budget is refused for its size, not as a cut-off stream.
        let e = read_bounded(&bomb, 100).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::FileTooLarge);
        assert!(e.to_string().contains("holds more than 100 B"), "{e}");
        #[cfg(unix)]
        {
            let e = read_bounded(Path::new("/dev/zero"), 1 << 10).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::FileTooLarge);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
