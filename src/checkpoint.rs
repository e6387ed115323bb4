//! Checkpoints: a training run saved between two samples, to resume bit for bit or to reload
//! its network for evaluation (ARCHITECTURE.md §12).
//!
//! A run can stop and continue anywhere between samples because nothing else carries over:
//! the sample order of an epoch is a function of `(seed, epoch)` and every random draw of the
//! chips is keyed by `(entity, epoch, sample)`, never by a generator's position. So a
//! checkpoint holds only
//!
//! * the **weights and biases** (every `f64` stored as its bits: a fixed-point weight is an
//!   exact `f64`, and the chip rebuilt from it holds the same words);
//! * the **position**: epoch, samples of it done, the epoch's loss and accuracy sums so far, and
//!   the divergence watch;
//! * the **finished epochs' rows** and, for a chip, its **engine state** (counts, link counters,
//!   early handler time: [`crate::emulator::EngineState`]);
//! * the **configuration** that made it (its resolved `train` options), so a resumed run is the
//!   same run.
//!
//! The file is one header line of JSON (`format`, `version`, the CRC-32 and length of the
//! payload) and the payload as JSON. A file of another format or version, a wrong checksum or
//! a truncated payload is refused with a message naming the file.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::emulator::EngineState;
use crate::rule::{Activation, Balance, Layer, LayeredNet};
use crate::train::{RunStatus, Status, Watch};

/// The format tag of the header.
pub const FORMAT: &str = "accord-checkpoint";
/// The payload version this build reads and writes (3: the engine's counts gained the
/// plasticity phase's ledger and the credit steps' time, for the energy by phase).
pub const VERSION: u32 = 3;
/// The largest checkpoint read: 1 GiB (a 10 M-synapse net is about 200 MB).
pub const MAX_BYTES: u64 = 1 << 30;

/// Errors of reading or writing a checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Reading or writing failed.
    #[error("checkpoint {path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// The cause (part of the message).
        error: std::io::Error,
    },
    /// Not a checkpoint of this version, or damaged.
    #[error("checkpoint {path}: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
    crc32: u32,
    bytes: u64,
}

/// A checkpoint callback: called with the run's state at the end of every epoch and when
/// training stops early; its error ends the run.
pub type Hook<'a> = &'a mut dyn FnMut(&Checkpoint) -> Result<(), CheckpointError>;

/// Where a run stands between two samples.
#[derive(Clone, Debug, PartialEq)]
pub struct Position {
    /// 0-based epoch in progress (equal to the epoch count when training is over).
    pub epoch: usize,
    /// Samples of that epoch done.
    pub sample: usize,
    /// The epoch's summed loss so far.
    pub loss_sum: f64,
    /// The epoch's right answers so far (or, on the reference, summed retrograde steps).
    pub count: usize,
    /// The divergence watch.
    pub watch: Watch,
}

/// One finished epoch: its number and six figures (train loss, train accuracy, test loss, test
/// accuracy, seconds, and on the reference the mean retrograde steps), as the report rows hold
/// them.
pub type Row = (usize, [f64; 6]);

/// A saved run.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    /// The command-line arguments of the run (after `accord train`).
    pub args: Vec<String>,
    /// The network's weights and biases.
    pub net: LayeredNet,
    /// Where the run stands.
    pub position: Position,
    /// Finished epochs.
    pub rows: Vec<Row>,
    /// The engine's state (chip runs).
    pub engine: Option<EngineState>,
    /// How the run stood when saved.
    pub status: RunStatus,
}

#[derive(Serialize, Deserialize)]
struct LayerWords {
    n_in: usize,
    n_out: usize,
    act: Activation,
    w: Vec<u64>,
    b: Vec<u64>,
}

#[derive(Serialize, Deserialize)]
struct Payload {
    args: Vec<String>,
    layers: Vec<LayerWords>,
    epoch: usize,
    sample: usize,
    loss_sum: u64,
    count: usize,
    watch: [u64; 4],
    rows: Vec<(usize, [u64; 6])>,
    engine: Option<EngineState>,
    status: Status,
    stopped_at_epoch: Option<usize>,
    stopped_at_sample: Option<usize>,
    reason: Option<String>,
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn floats(v: &[u64]) -> Vec<f64> {
    v.iter().map(|&x| f64::from_bits(x)).collect()
}

impl Checkpoint {
    /// Write to `path`, whole or not at all.
    ///
    /// # Errors
    /// [`CheckpointError::Io`] naming the file.
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        let p = &self.position;
        let payload = Payload {
            args: self.args.clone(),
            layers: self
                .net
                .layers
                .iter()
                .map(|l| LayerWords {
                    n_in: l.n_in,
                    n_out: l.n_out,
                    act: l.act,
                    w: bits(&l.w),
                    b: bits(&l.b),
                })
                .collect(),
            epoch: p.epoch,
            sample: p.sample,
            loss_sum: p.loss_sum.to_bits(),
            count: p.count,
            watch: p.watch.to_words(),
            rows: self
                .rows
                .iter()
                .map(|(e, v)| (*e, v.map(f64::to_bits)))
                .collect(),
            engine: self.engine.clone(),
            status: self.status.status,
            stopped_at_epoch: self.status.stopped_at_epoch,
            stopped_at_sample: self.status.stopped_at_sample,
            reason: self.status.reason.clone(),
        };
        let body = serde_json::to_vec(&payload).map_err(|e| CheckpointError::Invalid {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let header = Header {
            format: FORMAT.into(),
            version: VERSION,
            crc32: crc32fast::hash(&body),
            bytes: body.len() as u64,
        };
        let mut out = serde_json::to_vec(&header).unwrap_or_default();
        out.push(b'\n');
        out.extend(body);
        crate::output::write_atomic(path, &out).map_err(|e| CheckpointError::Io {
            path: path.display().to_string(),
            error: std::io::Error::other(e.to_string()),
        })
    }

    /// Read a checkpoint from `path`.
    ///
    /// # Errors
    /// The file cannot be read, is not a checkpoint of this version, or fails its checksum or
    /// its shape checks.
    pub fn load(path: &Path) -> Result<Checkpoint, CheckpointError> {
        let name = path.display().to_string();
        let invalid = |reason: String| CheckpointError::Invalid {
            path: name.clone(),
            reason,
        };
        let bytes =
            // JSON numbers widen about 4× into words: a quarter of the memory budget at most.
            crate::limits::read_bounded(path, MAX_BYTES.min(crate::limits::max_memory() / 4))
                .map_err(|error| CheckpointError::Io {
                path: name.clone(),
                error,
            })?;
        let split = bytes
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| invalid("no header line (not an accord checkpoint)".into()))?;
        let header: Header = serde_json::from_slice(&bytes[..split])
            .map_err(|e| invalid(format!("header: {e} (not an accord checkpoint)")))?;
        if header.format != FORMAT {
            return Err(invalid(format!(
                "format '{}' is not {FORMAT}",
                header.format
            )));
        }
        if header.version != VERSION {
            return Err(invalid(format!(
                "version {} (this accord reads version {VERSION})",
                header.version
            )));
        }
        let body = &bytes[split + 1..];
        if body.len() as u64 != header.bytes {
            return Err(invalid(format!(
                "payload is {} bytes, the header says {} (truncated?)",
                body.len(),
                header.bytes
            )));
        }
        let crc = crc32fast::hash(body);
        if crc != header.crc32 {
            return Err(invalid(format!(
                "checksum {crc:08x} does not match the header's {:08x} (damaged)",
                header.crc32
            )));
        }
        let p: Payload =
            serde_json::from_slice(body).map_err(|e| invalid(format!("payload: {e}")))?;
        let layers = net_layers(p.layers).map_err(invalid)?;
        Ok(Checkpoint {
            args: p.args,
            net: LayeredNet { layers },
            position: Position {
                epoch: p.epoch,
                sample: p.sample,
                loss_sum: f64::from_bits(p.loss_sum),
                count: p.count,
                watch: Watch::from_words(p.watch),
            },
            rows: p
                .rows
                .into_iter()
                .map(|(e, v)| (e, v.map(f64::from_bits)))
                .collect(),
            engine: p.engine,
            status: RunStatus {
                status: p.status,
                stopped_at_epoch: p.stopped_at_epoch,
                stopped_at_sample: p.stopped_at_sample,
                reason: p.reason,
            },
        })
    }
}

/// The saved layers as a net's, each shape checked against its data and the layer before.
fn net_layers(saved: Vec<LayerWords>) -> Result<Vec<Layer>, String> {
    let mut layers = Vec::with_capacity(saved.len());
    for (l, lw) in saved.into_iter().enumerate() {
        if lw.w.len() != lw.n_in.saturating_mul(lw.n_out) || lw.b.len() != lw.n_out {
            return Err(format!(
                "layer {} holds {} weights and {} biases for {} × {}",
                l + 1,
                lw.w.len(),
                lw.b.len(),
                lw.n_out,
                lw.n_in
            ));
        }
        if let Some(prev) = layers.last().map(|x: &Layer| x.n_out)
            && prev != lw.n_in
        {
            return Err(format!(
                "layer {} takes {} inputs, layer {} gives {prev}",
                l + 1,
                lw.n_in,
                l
            ));
        }
        layers.push(Layer {
            n_in: lw.n_in,
            n_out: lw.n_out,
            w: floats(&lw.w),
            b: floats(&lw.b),
            act: lw.act,
            // Runs from the command line train with g = f'.
            balance: Balance::Exact,
        });
    }
    if layers.is_empty() {
        return Err("holds no layers".into());
    }
    Ok(layers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::Loss;

    fn sample() -> Checkpoint {
        let mut net =
            LayeredNet::glorot(&[3, 4, 2], &[Activation::Sigmoid, Activation::Identity], 5);
        net.layers[0].w[1] = f64::NAN;
        net.layers[1].b[0] = 1.0 / 3.0;
        let mut watch = Watch::new(Loss::CrossEntropy, 2);
        watch.sample(0.7, 0, 0);
        Checkpoint {
            args: vec!["--data".into(), "iris".into()],
            net,
            position: Position {
                epoch: 2,
                sample: 17,
                loss_sum: 0.1 + 0.2,
                count: 9,
                watch,
            },
            rows: vec![(1, [0.5, 0.25, f64::INFINITY, 0.1, 3.0, 2.0])],
            engine: Some(EngineState {
                tally: vec![1, 2, 3],
                links: vec![4],
                early: vec![0, 5],
            }),
            status: RunStatus::interrupted(2, 16),
        }
    }

    fn dir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("accord-ckpt-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn round_trip_keeps_every_bit() {
        let d = dir("rt");
        let f = d.join("run.ckpt");
        let c = sample();
        c.save(&f).unwrap();
        let r = Checkpoint::load(&f).unwrap();
        for (a, b) in c.net.layers.iter().zip(&r.net.layers) {
            assert_eq!(bits(&a.w), bits(&b.w));
            assert_eq!(bits(&a.b), bits(&b.b));
            assert_eq!(a.act, b.act);
        }
        assert_eq!(r.position.loss_sum.to_bits(), (0.1f64 + 0.2).to_bits());
        assert_eq!(r.position.watch.to_words(), c.position.watch.to_words());
        assert_eq!(r.rows[0].1[2], f64::INFINITY);
        assert_eq!((r.args, r.engine, r.status), (c.args, c.engine, c.status));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn damaged_truncated_or_foreign_files_are_refused_by_name() {
        let d = dir("bad");
        let f = d.join("run.ckpt");
        sample().save(&f).unwrap();
        let good = std::fs::read(&f).unwrap();
        let mut flipped = good.clone();
        let last = flipped.len() - 3;
        flipped[last] ^= 0x01;
        let cases: [(&[u8], &str); 5] = [
            (&good[..good.len() - 10], "truncated"),
            (&flipped, "damaged"),
            (b"hello\nworld", "not an accord checkpoint"),
            (b"", "no header line"),
            (
                b"{\"format\":\"accord-checkpoint\",\"version\":99,\"crc32\":0,\"bytes\":0}\n",
                "version 99",
            ),
        ];
        for (bytes, needle) in cases {
            std::fs::write(&f, bytes).unwrap();
            let e = Checkpoint::load(&f).unwrap_err().to_string();
            assert!(e.contains("run.ckpt") && e.contains(needle), "{e}");
        }
        std::fs::remove_dir_all(&d).unwrap();
    }
}
