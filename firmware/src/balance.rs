//! The balance table: a lookup table holding a neuron's balance function `g(u)` (or any `f`)
//! over an input range `[lo, hi)` split into `N` equal bins, `2 ≤ N ≤ 65536`, chosen at run time
//! by the length of the storage.
//!
//! * [`Table::build`] samples `g` at each bin centre `lo + (k + ½)·(hi − lo)/N` (in the input
//!   format's raw units, converted to a real) and quantises it to the output format with
//!   [`Format::from_f64`] (counted). The caller supplies `g` (e.g. `f'`, or a deliberately
//!   mismatched `g`); the crate uses no std math.
//! * [`Table::lookup`] reads entry `⌊(u − lo)·N / (hi − lo)⌋`, computed in integers; an input
//!   below `lo` reads entry 0 and one at or above `hi` reads entry `N − 1`, each counted in
//!   `lut_clamps`.
//!
//! ```
//! use accord_firmware::arith::{Counters, Format, Overflow, Rounding};
//! use accord_firmware::balance::Table;
//!
//! let u_fmt = Format::new(16, 8, true, Rounding::NearestEven, Overflow::Saturate);
//! let g_fmt = Format::new(12, 10, false, Rounding::NearestEven, Overflow::Saturate);
//! let mut c = Counters::default();
//! // g = f' of the hard sigmoid: 1 on [0, 1), 0 elsewhere; 8 bins over [-2, 2).
//! let mut lut = [0i64; 8];
//! let g = |x: f64| if (0.0..1.0).contains(&x) { 1.0 } else { 0.0 };
//! let t = Table::build(&mut lut, -2.0, 2.0, &u_fmt, &g_fmt, g, &mut c)?;
//! assert_eq!(t.lookup(u_fmt.from_f64(0.3, &mut c), &mut c), 1024); // 1.0 in Q2.10
//! assert_eq!(t.lookup(u_fmt.from_f64(-0.3, &mut c), &mut c), 0);
//! assert_eq!(t.lookup(u_fmt.from_f64(5.0, &mut c), &mut c), 0); // clamped to the last bin
//! assert_eq!(c.lut_clamps, 1);
//! # Ok::<(), accord_firmware::balance::TableError>(())
//! ```
//!
//! # Cost
//!
//! | Kernel | LUT reads | adds/subs | multiplies | divides | cmps |
//! |---|---|---|---|---|---|
//! | [`Table::lookup`] | 1 | 1 | 1 | 1 (a shift when `N` and `hi − lo` are powers of two) | 2 |
//! | [`Table::build`] | `N` writes | — | — | — | `N` evaluations of `g` (host-side, f64) |

use core::fmt;

use crate::arith::{Counters, Exact, Format, FormatError, bump};

/// Smallest number of table entries.
pub const MIN_ENTRIES: usize = 2;
/// Largest number of table entries.
pub const MAX_ENTRIES: usize = 65536;

/// Why a table could not be built.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TableError {
    /// The storage length is outside `2..=65536`; holds the length found.
    Entries(usize),
    /// The input range is empty, not finite, or not representable in the input format;
    /// holds `(lo, hi)` as given.
    Range(f64, f64),
    /// The raw input range `lo_raw < hi_raw` inside the input format does not hold;
    /// holds `(lo_raw, hi_raw)`.
    RawRange(i64, i64),
    /// An entry given to [`Table::from_raw_parts`] does not fit the output format;
    /// holds `(index, value)`.
    Entry(usize, i64),
    /// The input format is invalid.
    InFormat(FormatError),
    /// The output format is invalid.
    OutFormat(FormatError),
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Entries(n) => write!(
                f,
                "balance table has {n} entries: allowed {MIN_ENTRIES}..={MAX_ENTRIES}"
            ),
            Self::Range(lo, hi) => write!(
                f,
                "balance table range [{lo}, {hi}) must be finite, non-empty and representable in the input format"
            ),
            Self::RawRange(lo, hi) => write!(
                f,
                "balance table raw range [{lo}, {hi}) must be non-empty and inside the input format"
            ),
            Self::Entry(i, v) => {
                write!(
                    f,
                    "balance table entry {i} = {v} does not fit the output format"
                )
            }
            Self::InFormat(e) => write!(f, "balance table input {e}"),
            Self::OutFormat(e) => write!(f, "balance table output {e}"),
        }
    }
}

/// A balance table over storage `S` (`[i64; N]`, `&mut [i64]`, `&[i64]`, `heapless::Vec`, …).
///
/// Entries are raw values of the output format; the range `[lo, hi)` is in raw units of the
/// input format. [`Table::view`] borrows it as a `Table<&[i64]>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Table<S> {
    entries: S,
    lo: i64,
    span: u64,
    n: u64,
    in_fmt: Format,
    out_fmt: Format,
}

impl<S: AsRef<[i64]>> Table<S> {
    /// Builds a table in `storage` (its length is `N`) over the real range `[lo, hi)`, sampling
    /// `g` at each bin centre and quantising to `out_fmt` (saturations, wraps and NaNs counted
    /// in `c`). `lo` and `hi` are quantised to `in_fmt` and must be exactly representable
    /// there (no saturation) with `lo_raw < hi_raw`.
    pub fn build(
        mut storage: S,
        lo: f64,
        hi: f64,
        in_fmt: &Format,
        out_fmt: &Format,
        g: impl Fn(f64) -> f64,
        c: &mut Counters,
    ) -> Result<Self, TableError>
    where
        S: AsMut<[i64]>,
    {
        in_fmt.validate().map_err(TableError::InFormat)?;
        out_fmt.validate().map_err(TableError::OutFormat)?;
        let n = storage.as_ref().len();
        if !(MIN_ENTRIES..=MAX_ENTRIES).contains(&n) {
            return Err(TableError::Entries(n));
        }
        let mut local = Counters::default();
        let lo_raw = in_fmt.from_f64(lo, &mut local);
        let hi_raw = in_fmt.from_f64(hi, &mut local);
        if local != Counters::default() || lo_raw >= hi_raw {
            return Err(TableError::Range(lo, hi));
        }
        let span = (hi_raw - lo_raw) as f64;
        let step = span / (2 * n) as f64;
        for (k, e) in storage.as_mut().iter_mut().enumerate() {
            let centre = lo_raw as f64 + (2 * k + 1) as f64 * step;
            *e = out_fmt.from_f64(g(centre * in_fmt.lsb()), c);
        }
        Self::from_raw_parts(storage, lo_raw, hi_raw, in_fmt, out_fmt)
    }

    /// A table from precomputed entries (raw in `out_fmt`) over the raw input range
    /// `[lo_raw, hi_raw)` of `in_fmt`. Checks the formats, the length, the range and that every
    /// entry fits `out_fmt`.
    pub fn from_raw_parts(
        entries: S,
        lo_raw: i64,
        hi_raw: i64,
        in_fmt: &Format,
        out_fmt: &Format,
    ) -> Result<Self, TableError> {
        in_fmt.validate().map_err(TableError::InFormat)?;
        out_fmt.validate().map_err(TableError::OutFormat)?;
        let e = entries.as_ref();
        if !(MIN_ENTRIES..=MAX_ENTRIES).contains(&e.len()) {
            return Err(TableError::Entries(e.len()));
        }
        let inside = |x: i64| x >= in_fmt.min_raw() && x <= in_fmt.max_raw();
        if lo_raw >= hi_raw || !inside(lo_raw) || !inside(hi_raw) {
            return Err(TableError::RawRange(lo_raw, hi_raw));
        }
        if let Some((i, &v)) = e
            .iter()
            .enumerate()
            .find(|&(_, &v)| v < out_fmt.min_raw() || v > out_fmt.max_raw())
        {
            return Err(TableError::Entry(i, v));
        }
        // Both ends lie in a <= 40-bit format: span < 2^41, span · N < 2^57 fits u64.
        Ok(Self {
            lo: lo_raw,
            span: (hi_raw - lo_raw) as u64,
            n: e.len() as u64,
            entries,
            in_fmt: *in_fmt,
            out_fmt: *out_fmt,
        })
    }

    /// Borrows the table as a `Table<&[i64]>` (e.g. for [`Transfer::Table`]).
    ///
    /// [`Transfer::Table`]: crate::soma::Transfer::Table
    #[inline]
    pub fn view(&self) -> Table<&[i64]> {
        Table {
            entries: self.entries.as_ref(),
            lo: self.lo,
            span: self.span,
            n: self.n,
            in_fmt: self.in_fmt,
            out_fmt: self.out_fmt,
        }
    }

    /// Index of the bin holding `u_raw`: `⌊(u − lo)·N / (hi − lo)⌋`, clamped to `[0, N − 1]`
    /// (out-of-range inputs counted in `lut_clamps`).
    #[inline]
    pub fn index(&self, u_raw: i64, c: &mut Counters) -> usize {
        self.index_wide(u_raw as i128, c)
    }

    #[inline]
    fn index_wide(&self, u: i128, c: &mut Counters) -> usize {
        let d = u - self.lo as i128;
        if d < 0 {
            bump(&mut c.lut_clamps);
            0
        } else if d >= self.span as i128 {
            bump(&mut c.lut_clamps);
            (self.n - 1) as usize
        } else {
            ((d as u64 * self.n) / self.span) as usize
        }
    }

    /// `g(u)`: the entry of the bin holding `u_raw` (raw in the input format), raw in the
    /// output format. One table read.
    #[inline]
    pub fn lookup(&self, u_raw: i64, c: &mut Counters) -> i64 {
        let i = self.index(u_raw, c);
        self.entries.as_ref().get(i).copied().unwrap_or(0)
    }

    /// Lookup of an exactly rescaled input (values beyond `i128` clamp by sign).
    #[inline]
    pub(crate) fn lookup_exact(&self, u: Exact, c: &mut Counters) -> i64 {
        let i = match u {
            Exact::Fits(v) => self.index_wide(v, c),
            Exact::Over { neg, .. } => self.index_wide(if neg { i128::MIN } else { i128::MAX }, c),
        };
        self.entries.as_ref().get(i).copied().unwrap_or(0)
    }

    /// The entries, raw in the output format.
    #[inline]
    pub fn entries(&self) -> &[i64] {
        self.entries.as_ref()
    }

    /// Number of entries `N`.
    #[inline]
    pub fn len(&self) -> usize {
        self.n as usize
    }

    /// Always false: a table has at least two entries.
    #[inline]
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Start of the input range, raw in the input format (inclusive).
    #[inline]
    pub fn lo_raw(&self) -> i64 {
        self.lo
    }

    /// End of the input range, raw in the input format (exclusive).
    #[inline]
    pub fn hi_raw(&self) -> i64 {
        self.lo + self.span as i64
    }

    /// The input format.
    #[inline]
    pub fn in_fmt(&self) -> &Format {
        &self.in_fmt
    }

    /// The output (entry) format.
    #[inline]
    pub fn out_fmt(&self) -> &Format {
        &self.out_fmt
    }

    /// Gives back the storage.
    #[inline]
    pub fn into_storage(self) -> S {
        self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arith::{Overflow, Rounding};

    const IN: Format = Format::new(16, 4, true, Rounding::NearestEven, Overflow::Saturate);
    const OUT: Format = Format::new(8, 6, true, Rounding::NearestEven, Overflow::Saturate);

    /// Golden: 5 bins over [-1, 1.5) (raw -16..24, span 40, 8 raw units per bin).
    #[test]
    fn golden_build_and_lookup() {
        let mut c = Counters::default();
        let mut buf = [0i64; 5];
        // Centres (raw): -16 + 4, + 12, + 20, + 28, + 36 = -12, -4, 4, 12, 20
        // -> reals -0.75, -0.25, 0.25, 0.75, 1.25. g(x) = x·x - 0.5:
        // 0.0625, -0.4375, -0.4375, 0.0625, 1.0625 -> ·64 = 4, -28, -28, 4, 68 (all exact, and
        // inside the 8-bit signed range -128..=127).
        let t = Table::build(&mut buf, -1.0, 1.5, &IN, &OUT, |x| x * x - 0.5, &mut c).unwrap();
        assert_eq!(t.entries(), &[4, -28, -28, 4, 68]);
        assert_eq!((t.lo_raw(), t.hi_raw(), t.len()), (-16, 24, 5));
        assert_eq!(c, Counters::default());
        // Indices: u = -16 -> 0; -9 -> 7·5/40 = 0; -8 -> 1; 0 -> 16·5/40 = 2; 23 -> 39·5/40 = 4.
        let idx = [-16i64, -9, -8, 0, 23].map(|u| t.index(u, &mut c));
        assert_eq!(idx, [0, 0, 1, 2, 4]);
        assert_eq!(t.lookup(0, &mut c), -28);
        assert_eq!(c.lut_clamps, 0);
        // Clamps: -17 -> bin 0 (4); 24 (= hi, exclusive) -> bin 4 (68); i64 extremes too.
        assert_eq!(t.lookup(-17, &mut c), 4);
        assert_eq!(t.lookup(24, &mut c), 68);
        assert_eq!(t.lookup(i64::MIN, &mut c), 4);
        assert_eq!(t.lookup(i64::MAX, &mut c), 68);
        assert_eq!(c.lut_clamps, 4);
    }

    /// Golden: bins that do not divide the range. 3 bins over raw [0, 8): bin edges at 8/3 and
    /// 16/3, so u = 0..8 falls in bins ⌊3u/8⌋ = 0, 0, 0, 1, 1, 1, 2, 2.
    #[test]
    fn golden_uneven_bins() {
        let mut c = Counters::default();
        let t = Table::from_raw_parts([10i64, 20, 30], 0, 8, &IN, &OUT).unwrap();
        let idx: Vec<usize> = (0..8).map(|u| t.index(u, &mut c)).collect();
        assert_eq!(idx, [0, 0, 0, 1, 1, 1, 2, 2]);
        assert_eq!(t.lookup(5, &mut c), 20);
        assert_eq!(t.lookup(6, &mut c), 30);
        assert_eq!(c.lut_clamps, 0);
    }

    /// Quantisation of table entries is counted (saturation and NaN).
    #[test]
    fn build_counts_quantisation() {
        let mut c = Counters::default();
        let mut buf = [0i64; 4];
        // Over [0, 4): centres 0.5, 1.5, 2.5, 3.5. g = 1/(x - 1.5): -1 -> -64; 1/0 = +inf
        // saturates to 127 (counted); 1 -> 64; 0.5 -> 32.
        let g = |x: f64| 1.0 / (x - 1.5);
        let t = Table::build(&mut buf, 0.0, 4.0, &IN, &OUT, g, &mut c).unwrap();
        assert_eq!(t.entries(), &[-64, 127, 64, 32]);
        assert_eq!(c.saturations, 1);
        let t = Table::build(&mut buf, 0.0, 4.0, &IN, &OUT, |_| f64::NAN, &mut c).unwrap();
        assert_eq!(t.entries(), &[0, 0, 0, 0]);
        assert_eq!(c.invalid, 4);
    }

    #[test]
    fn build_errors() {
        let mut c = Counters::default();
        let g = |x: f64| x;
        let mut one = [0i64; 1];
        assert_eq!(
            Table::build(&mut one, 0.0, 1.0, &IN, &OUT, g, &mut c),
            Err(TableError::Entries(1))
        );
        let mut buf = [0i64; 4];
        assert_eq!(
            Table::build(&mut buf, 1.0, 1.0, &IN, &OUT, g, &mut c),
            Err(TableError::Range(1.0, 1.0))
        );
        assert!(matches!(
            Table::build(&mut buf, f64::NAN, 1.0, &IN, &OUT, g, &mut c),
            Err(TableError::Range(..))
        ));
        assert!(matches!(
            Table::build(&mut buf, 0.0, f64::INFINITY, &IN, &OUT, g, &mut c),
            Err(TableError::Range(..))
        ));
        // 1e6 does not fit 16 bits with frac 4 (max 2047.9375).
        assert!(matches!(
            Table::build(&mut buf, 0.0, 1e6, &IN, &OUT, g, &mut c),
            Err(TableError::Range(..))
        ));
        let bad = Format { bits: 0, ..IN };
        assert_eq!(
            Table::build(&mut buf, 0.0, 1.0, &bad, &OUT, g, &mut c),
            Err(TableError::InFormat(FormatError::Bits(0)))
        );
        assert_eq!(
            Table::from_raw_parts([0i64, 200], 0, 8, &IN, &OUT),
            Err(TableError::Entry(1, 200))
        );
        assert_eq!(
            Table::from_raw_parts([0i64, 1], 8, 8, &IN, &OUT),
            Err(TableError::RawRange(8, 8))
        );
        assert_eq!(c, Counters::default());
        let e = TableError::Entries(70000);
        assert_eq!(
            format!("{e}"),
            "balance table has 70000 entries: allowed 2..=65536"
        );
    }

    /// The largest table over the widest range: index arithmetic stays in range.
    #[test]
    fn widest_table_indexes() {
        let wide = Format::new(40, 0, true, Rounding::Floor, Overflow::Saturate);
        let lo = wide.min_raw();
        let hi = wide.max_raw();
        let entries = vec![0i64; MAX_ENTRIES];
        let t = Table::from_raw_parts(&entries[..], lo, hi, &wide, &OUT).unwrap();
        let mut c = Counters::default();
        assert_eq!(t.index(lo, &mut c), 0);
        assert_eq!(t.index(hi - 1, &mut c), MAX_ENTRIES - 1);
        // 2^39 · 2^16 / (2^40 - 1) = 32768.00000003 -> 32768.
        assert_eq!(t.index(0, &mut c), MAX_ENTRIES / 2);
        assert_eq!(c.lut_clamps, 0);
    }
}
