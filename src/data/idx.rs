//! IDX files (the MNIST format), gzip-compressed or plain.
//!
//! Layout, all integers big-endian `u32`: images `0x00000803, n, rows, cols` followed by
//! `n · rows · cols` pixel bytes; labels `0x00000801, n` followed by `n` label bytes. The reader
//! checks the magic, the dimensions and the exact length (no missing and no trailing bytes).

use std::path::Path;

use super::{DataError, Dataset, read_bytes};

/// Magic number of an IDX file of unsigned-byte 3-D data (images).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned-byte 1-D data (labels).
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// Number of classes in MNIST.
const MNIST_CLASSES: usize = 10;

/// The contents of an IDX image file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxImages {
    /// Number of images.
    pub n: usize,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// `n · rows · cols` grey levels, image after image, each row-major.
    pub pixels: Vec<u8>,
}

pub(super) fn describe_magic(m: u32) -> &'static str {
    match m {
        IMAGES_MAGIC => " (IDX images)",
        LABELS_MAGIC => " (IDX labels)",
        0x1f8b_0000..=0x1f8b_ffff => " (gzip data that would not decompress)",
        _ => "",
    }
}

/// Bounds-checked reader over a decompressed buffer, for precise error offsets.
struct Cursor<'a> {
    path: &'a Path,
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, needed: usize, what: &'static str) -> Result<&'a [u8], DataError> {
        let rest = &self.buf[self.pos..];
        if rest.len() < needed {
            return Err(DataError::Truncated {
                path: self.path.to_path_buf(),
                what,
                offset: self.pos,
                needed,
                end: self.buf.len(),
            });
        }
        let out = &rest[..needed];
        self.pos += needed;
        Ok(out)
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, DataError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn magic(&mut self, expected: u32) -> Result<(), DataError> {
        let found = self.u32("IDX magic number")?;
        if found == expected {
            Ok(())
        } else {
            Err(DataError::BadMagic {
                path: self.path.to_path_buf(),
                expected,
                found,
            })
        }
    }

    /// A dimension field, required to be non-zero when `nonzero`.
    fn dim(&mut self, what: &'static str, nonzero: bool) -> Result<usize, DataError> {
        let offset = self.pos;
        let v = self.u32(what)?;
        if nonzero && v == 0 {
            return Err(DataError::BadHeader {
                path: self.path.to_path_buf(),
                offset,
                reason: format!("{what} is 0"),
            });
        }
        usize::try_from(v).map_err(|_| DataError::BadHeader {
            path: self.path.to_path_buf(),
            offset,
            reason: format!("{what} {v} does not fit in memory"),
        })
    }

    fn finish(&self) -> Result<(), DataError> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(DataError::TrailingBytes {
                path: self.path.to_path_buf(),
                offset: self.pos,
                extra: self.buf.len() - self.pos,
            })
        }
    }
}

fn parse_images(path: &Path, buf: &[u8]) -> Result<IdxImages, DataError> {
    let mut c = Cursor { path, buf, pos: 0 };
    c.magic(IMAGES_MAGIC)?;
    let n = c.dim("image count", false)?;
    let rows = c.dim("row count", true)?;
    let cols = c.dim("column count", true)?;
    let total = n
        .checked_mul(rows)
        .and_then(|v| v.checked_mul(cols))
        .ok_or_else(|| DataError::BadHeader {
            path: path.to_path_buf(),
            offset: 4,
            reason: format!("{n} × {rows} × {cols} pixels overflow"),
        })?;
    let pixels = c.take(total, "pixel data")?.to_vec();
    c.finish()?;
    Ok(IdxImages {
        n,
        rows,
        cols,
        pixels,
    })
}

fn parse_labels(path: &Path, buf: &[u8]) -> Result<Vec<u8>, DataError> {
    let mut c = Cursor { path, buf, pos: 0 };
    c.magic(LABELS_MAGIC)?;
    let n = c.dim("label count", false)?;
    let labels = c.take(n, "label data")?.to_vec();
    c.finish()?;
    Ok(labels)
}

/// Reads an IDX image file (magic `0x00000803`), gzip or plain (detected by the `1f 8b` magic).
///
/// Errors on a wrong magic, zero rows/columns, a file shorter than its header announces (naming
/// the byte offset where the data ran out and how many bytes were needed) or trailing bytes.
pub fn read_idx_images(path: impl AsRef<Path>) -> Result<IdxImages, DataError> {
    let path = path.as_ref();
    parse_images(path, &read_bytes(path)?)
}

/// Reads an IDX label file (magic `0x00000801`), gzip or plain; one byte per item.
///
/// Same checks as [`read_idx_images`].
pub fn read_idx_labels(path: impl AsRef<Path>) -> Result<Vec<u8>, DataError> {
    let path = path.as_ref();
    parse_labels(path, &read_bytes(path)?)
}

/// Reads an MNIST image/label file pair into a [`Dataset`] with 10 classes and features
/// `pixel / 255` in `[0, 1]` (`dim = rows · cols`).
///
/// Errors if the files hold different numbers of items, a label is 10 or more, or there are no
/// images, besides the checks of [`read_idx_images`] and [`read_idx_labels`].
pub fn read_mnist(images: &Path, labels: &Path, name: &str) -> Result<Dataset, DataError> {
    let img = read_idx_images(images)?;
    let lab = read_idx_labels(labels)?;
    if img.n != lab.len() {
        return Err(DataError::CountMismatch {
            images: images.to_path_buf(),
            labels: labels.to_path_buf(),
            n_images: img.n,
            n_labels: lab.len(),
        });
    }
    if img.n == 0 {
        return Err(DataError::NoData {
            path: images.to_path_buf(),
            reason: "the IDX file holds no images",
        });
    }
    if let Some((index, &value)) = lab
        .iter()
        .enumerate()
        .find(|&(_, &l)| usize::from(l) >= MNIST_CLASSES)
    {
        return Err(DataError::IdxLabelOutOfRange {
            path: labels.to_path_buf(),
            index,
            offset: 8 + index,
            value,
            n_classes: MNIST_CLASSES,
        });
    }
    let features = img.pixels.iter().map(|&p| f64::from(p) / 255.0).collect();
    Ok(Dataset {
        name: name.to_string(),
        features,
        labels: lab.into_iter().map(usize::from).collect(),
        dim: img.rows * img.cols,
        n_classes: MNIST_CLASSES,
    })
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{gz, temp_dir, write};
    use super::*;

    fn images_bytes(n: u32, rows: u32, cols: u32, fill: u8) -> Vec<u8> {
        let mut v = Vec::new();
        for x in [IMAGES_MAGIC, n, rows, cols] {
            v.extend_from_slice(&x.to_be_bytes());
        }
        v.resize(16 + (n * rows * cols) as usize, fill);
        v
    }

    fn labels_bytes(labels: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&LABELS_MAGIC.to_be_bytes());
        v.extend_from_slice(&(labels.len() as u32).to_be_bytes());
        v.extend_from_slice(labels);
        v
    }

    #[test]
    fn reads_plain_and_gzip_alike() {
        let dir = temp_dir("idx-ok");
        let img = images_bytes(3, 2, 2, 255);
        let a = write(&dir, "img.idx", &img);
        let b = write(&dir, "img.idx.gz", &gz(&img));
        let la = write(&dir, "lab.idx", &labels_bytes(&[0, 9, 4]));
        let ia = read_idx_images(&a).unwrap();
        assert_eq!((ia.n, ia.rows, ia.cols, ia.pixels.len()), (3, 2, 2, 12));
        assert_eq!(ia, read_idx_images(&b).unwrap());
        let ds = read_mnist(&a, &la, "tiny").unwrap();
        assert_eq!((ds.len(), ds.dim, ds.n_classes), (3, 4, 10));
        assert_eq!(ds.labels, [0, 9, 4]);
        assert!(ds.features.iter().all(|&v| v == 1.0));
    }

    #[test]
    fn wrong_magic_is_reported() {
        let dir = temp_dir("idx-magic");
        let p = write(&dir, "labels-as-images.idx", &labels_bytes(&[1, 2]));
        let e = read_idx_images(&p).unwrap_err().to_string();
        assert!(e.contains("labels-as-images.idx"), "{e}");
        assert!(e.contains("byte offset 0"), "{e}");
        assert!(e.contains("0x00000801") && e.contains("0x00000803"), "{e}");
        let p = write(&dir, "img-as-labels.idx.gz", &gz(&images_bytes(1, 1, 1, 0)));
        let e = read_idx_labels(&p).unwrap_err().to_string();
        assert!(
            e.contains("img-as-labels.idx.gz") && e.contains("bad IDX magic"),
            "{e}"
        );
    }

    #[test]
    fn truncated_images_name_offset_and_need() {
        let dir = temp_dir("idx-trunc");
        let mut img = images_bytes(2, 28, 28, 7);
        img.truncate(16 + 784 + 100);
        let p = write(&dir, "short-images.gz", &gz(&img));
        let err = read_idx_images(&p).unwrap_err();
        let e = err.to_string();
        assert!(e.contains("short-images.gz"), "{e}");
        assert!(e.contains("needed 1568 bytes from byte offset 16"), "{e}");
        assert!(e.contains("ran out at byte offset 900"), "{e}");
        assert!(e.contains("684 bytes short"), "{e}");
        // truncated inside the header
        let p = write(&dir, "short-header", &img[..10]);
        let e = read_idx_images(&p).unwrap_err().to_string();
        assert!(
            e.contains("short-header") && e.contains("byte offset 8"),
            "{e}"
        );
        // empty file
        let p = write(&dir, "empty.idx", b"");
        let e = read_idx_labels(&p).unwrap_err().to_string();
        assert!(
            e.contains("empty.idx") && e.contains("byte offset 0"),
            "{e}"
        );
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let dir = temp_dir("idx-trail");
        let mut lab = labels_bytes(&[1, 2, 3]);
        lab.extend_from_slice(&[0, 0]);
        let p = write(&dir, "long-labels.idx", &lab);
        let e = read_idx_labels(&p).unwrap_err().to_string();
        assert!(e.contains("long-labels.idx"), "{e}");
        assert!(
            e.contains("2 unexpected trailing bytes from byte offset 11"),
            "{e}"
        );
        let mut img = images_bytes(1, 2, 2, 0);
        img.push(1);
        let p = write(&dir, "long-images.idx.gz", &gz(&img));
        let e = read_idx_images(&p).unwrap_err().to_string();
        assert!(
            e.contains("long-images.idx.gz") && e.contains("byte offset 20"),
            "{e}"
        );
    }

    #[test]
    fn count_mismatch_names_both_files() {
        let dir = temp_dir("idx-count");
        let i = write(&dir, "imgs.idx", &images_bytes(3, 2, 2, 0));
        let l = write(&dir, "labs.idx", &labels_bytes(&[1, 2]));
        let e = read_mnist(&i, &l, "x").unwrap_err().to_string();
        assert!(e.contains("imgs.idx: 3 images"), "{e}");
        assert!(e.contains("labs.idx: 2 labels"), "{e}");
    }

    #[test]
    fn bad_label_and_zero_dims() {
        let dir = temp_dir("idx-misc");
        let i = write(&dir, "imgs.idx", &images_bytes(2, 1, 1, 0));
        let l = write(&dir, "labs.idx", &labels_bytes(&[3, 12]));
        let e = read_mnist(&i, &l, "x").unwrap_err().to_string();
        assert!(
            e.contains("labs.idx: byte offset 9") && e.contains("label 12"),
            "{e}"
        );
        let z = write(&dir, "zero.idx", &images_bytes(0, 0, 5, 0));
        let e = read_idx_images(&z).unwrap_err().to_string();
        assert!(
            e.contains("zero.idx: byte offset 8") && e.contains("row count is 0"),
            "{e}"
        );
    }

    #[test]
    fn corrupt_gzip_is_an_error_not_a_panic() {
        let dir = temp_dir("idx-gz");
        let mut g = gz(&images_bytes(4, 3, 3, 9));
        let len = g.len();
        g.truncate(len - 12);
        let p = write(&dir, "cut.gz", &g);
        let e = read_idx_images(&p).unwrap_err().to_string();
        assert!(e.contains("cut.gz"), "{e}");
    }

    #[test]
    fn missing_file_names_path() {
        let e = read_idx_labels("/nonexistent/accord/labels.idx")
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/accord/labels.idx"), "{e}");
    }
}
