//! Where the mesh runs: on the calling thread, or on a router thread of its own that takes one
//! exchange job per timestep over a `crossbeam` channel and answers in order (ARCHITECTURE.md
//! §4). A job holds only what routing needs — each packet's source, destination, kind and
//! handler time — so the engine can deliver the payloads itself and step the next timestep's
//! cores while the routers work out this timestep's cycles, stalls and drops.

use std::collections::VecDeque;

use crossbeam::channel::{Receiver, Sender, unbounded};

use super::mesh::{Exchange, ExchangeCounts, Flit, LinkLoad, Mesh};

/// A timestep's packets in injection order, their sources run-length coded (a core's packets
/// are injected together).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Packets {
    pub(crate) flits: Vec<Flit>,
    /// `(source core, packets)` runs covering `flits`.
    pub(crate) runs: Vec<(u32, u32)>,
    /// `(index in flits, handler time, ps)` of the packets whose time does not fit a flit.
    pub(crate) big: Vec<(u32, u64)>,
}

impl Packets {
    /// Append a packet from core `src` to engine core `dst` whose handler takes `cost` ps.
    #[inline]
    pub(crate) fn push(&mut self, src: u32, dst: u32, retro: bool, cost: u64) {
        match self.runs.last_mut() {
            Some((s, n)) if *s == src => *n += 1,
            _ => self.runs.push((src, 1)),
        }
        let f = Flit::new(dst, retro, cost);
        if f.cost() == Flit::BIG {
            self.big.push((self.flits.len() as u32, cost));
        }
        self.flits.push(f);
    }
}

/// One timestep's exchange.
#[derive(Clone, Debug, Default)]
pub(crate) struct Job {
    /// The packets, in injection order.
    pub(crate) packets: Packets,
    /// Cores of the engine (size of the per-core tables).
    pub(crate) cores: usize,
    /// Packets a core's input queue holds (the chip's `core.input_queue`).
    pub(crate) depth: usize,
    /// Whether to report which packets arrived (the `drop` policy loses some).
    pub(crate) track: bool,
}

/// What the routers made of a job.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct JobResult {
    /// Cycles, hops, stalls, drops.
    pub(crate) counts: ExchangeCounts,
    /// Time the exchange waited for full queues to drain, ps (longest core per blocked round).
    pub(crate) drains_ps: u64,
    /// Per core, the handler time of packets it took early to free its queue, ps: part of the
    /// exchange's time, so not of the core's next step.
    pub(crate) early: Vec<(u32, u64)>,
    /// With `track`: whether each packet arrived.
    pub(crate) delivered: Vec<bool>,
    /// The job's packet buffers, emptied, for the next job.
    pub(crate) spare: Packets,
    /// Packets the job carried.
    pub(crate) sent: usize,
}

/// Run `job` on `mesh`: a full queue takes every packet it holds at once (an early drain,
/// costing those packets' handler time) and the exchange goes on.
pub(crate) fn run_job(mesh: &mut Mesh, job: Job) -> JobResult {
    let Job {
        packets: Packets {
            flits,
            mut runs,
            mut big,
        },
        cores,
        depth,
        track,
    } = job;
    let sent = flits.len();
    mesh.send_all(flits, &runs, &big);
    let mut held = vec![0usize; cores];
    let mut cost = vec![0u64; cores];
    let mut early = vec![0u64; cores];
    let mut delivered = if track { vec![false; sent] } else { Vec::new() };
    let mut result = JobResult::default();
    loop {
        let r = mesh.run(&mut result.counts, |core, id, c| {
            let k = core as usize;
            if held[k] >= depth {
                return false;
            }
            held[k] += 1;
            cost[k] = cost[k].saturating_add(c);
            if let Some(d) = delivered.get_mut(id as usize) {
                *d = true;
            }
            true
        });
        match r {
            Exchange::Done => break,
            Exchange::Blocked(list) => {
                let mut longest = 0u64;
                for k in list {
                    let k = k as usize;
                    longest = longest.max(cost[k]);
                    early[k] = early[k].saturating_add(cost[k]);
                    held[k] = 0;
                    cost[k] = 0;
                }
                result.drains_ps = result.drains_ps.saturating_add(longest);
            }
        }
    }
    mesh.end_timestep();
    result.early = early
        .into_iter()
        .enumerate()
        .filter(|&(_, ps)| ps > 0)
        .map(|(k, ps)| (k as u32, ps))
        .collect();
    result.delivered = delivered;
    result.sent = sent;
    runs.clear();
    big.clear();
    result.spare = Packets {
        flits: mesh.take_spare(),
        runs,
        big,
    };
    result
}

enum Msg {
    Job(Job),
    Links,
    Snapshot,
}

enum Reply {
    Done(JobResult),
    Links(Vec<LinkLoad>),
    Mesh(Box<Mesh>),
}

/// A router thread: owns the mesh, runs jobs in the order they come.
#[derive(Debug)]
pub(crate) struct Remote {
    tx: Option<Sender<Msg>>,
    rx: Receiver<Reply>,
    handle: Option<std::thread::JoinHandle<Mesh>>,
    /// Jobs sent and not yet answered.
    outstanding: usize,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Msg")
    }
}

impl Remote {
    fn spawn(mut mesh: Mesh) -> Self {
        let (tx, jobs) = unbounded::<Msg>();
        let (replies, rx) = unbounded::<Reply>();
        let handle = std::thread::Builder::new()
            .name("accord-router".into())
            .spawn(move || {
                for msg in jobs {
                    let reply = match msg {
                        Msg::Job(job) => Reply::Done(run_job(&mut mesh, job)),
                        Msg::Links => Reply::Links(mesh.link_loads()),
                        Msg::Snapshot => Reply::Mesh(Box::new(mesh.clone())),
                    };
                    if replies.send(reply).is_err() {
                        break;
                    }
                }
                mesh
            })
            .ok();
        Remote {
            tx: Some(tx),
            rx,
            handle,
            outstanding: 0,
        }
    }

    fn send(&self, m: Msg) {
        if let Some(tx) = &self.tx {
            // The thread lives as long as the sender; a send fails only if it panicked, and the
            // next receive reports that.
            let _ = tx.send(m);
        }
    }

    fn recv(&mut self) -> Reply {
        match self.rx.recv() {
            Ok(r) => r,
            Err(_) => {
                // The router thread is gone: it can only have panicked. Re-raise it here.
                let h = self.handle.take();
                match h.map(std::thread::JoinHandle::join) {
                    Some(Err(e)) => std::panic::resume_unwind(e),
                    _ => panic!("the router thread stopped"),
                }
            }
        }
    }

    /// Stop the thread and take the mesh back.
    fn into_mesh(mut self) -> Option<Mesh> {
        self.tx = None;
        self.handle.take().and_then(|h| h.join().ok())
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The mesh, run here or on its router thread.
#[derive(Debug)]
pub(crate) enum RouterHost {
    /// On the calling thread: a job's result is ready when it is submitted.
    Local(Box<Mesh>, VecDeque<JobResult>),
    /// On a router thread.
    Remote(Box<Remote>),
}

impl RouterHost {
    /// A host on this thread.
    pub(crate) fn local(mesh: Mesh) -> Self {
        RouterHost::Local(Box::new(mesh), VecDeque::new())
    }

    /// Move the mesh to a router thread (`true`) or back here (`false`). Results not yet
    /// collected are kept; a local host must have none when it moves out.
    pub(crate) fn set_remote(&mut self, remote: bool) {
        if remote == matches!(self, RouterHost::Remote(..)) {
            return;
        }
        let old = std::mem::replace(self, RouterHost::local(Mesh::empty()));
        *self = match old {
            RouterHost::Local(mesh, results) => {
                debug_assert!(results.is_empty(), "collect local results before moving");
                RouterHost::Remote(Box::new(Remote::spawn(*mesh)))
            }
            RouterHost::Remote(mut r) => {
                let mut results = VecDeque::new();
                while r.outstanding > 0 {
                    if let Reply::Done(res) = r.recv() {
                        results.push_back(res);
                        r.outstanding -= 1;
                    }
                }
                let mesh = r.into_mesh().unwrap_or_else(Mesh::empty);
                RouterHost::Local(Box::new(mesh), results)
            }
        };
    }

    /// Submit a job.
    pub(crate) fn submit(&mut self, job: Job) {
        match self {
            RouterHost::Local(mesh, results) => results.push_back(run_job(mesh, job)),
            RouterHost::Remote(r) => {
                r.send(Msg::Job(job));
                r.outstanding += 1;
            }
        }
    }

    /// Jobs submitted and not yet collected.
    pub(crate) fn pending(&self) -> usize {
        match self {
            RouterHost::Local(_, results) => results.len(),
            RouterHost::Remote(r) => r.outstanding,
        }
    }

    /// The result of the oldest uncollected job (waits for it).
    pub(crate) fn next(&mut self) -> Option<JobResult> {
        match self {
            RouterHost::Local(_, results) => results.pop_front(),
            RouterHost::Remote(r) => {
                if r.outstanding == 0 {
                    return None;
                }
                loop {
                    if let Reply::Done(res) = r.recv() {
                        r.outstanding -= 1;
                        return Some(res);
                    }
                }
            }
        }
    }

    /// The links that carried traffic (after every submitted job).
    pub(crate) fn link_loads(&mut self) -> Vec<LinkLoad> {
        match self {
            RouterHost::Local(m, _) => m.link_loads(),
            RouterHost::Remote(r) => {
                assert_eq!(r.outstanding, 0, "collect jobs before reading links");
                r.send(Msg::Links);
                loop {
                    if let Reply::Links(l) = r.recv() {
                        return l;
                    }
                }
            }
        }
    }

    /// Set the link counters of a checkpoint ([`Mesh::restore_link_words`]).
    pub(crate) fn restore_links(&mut self, w: &[u64]) -> Result<(), String> {
        let remote = matches!(self, RouterHost::Remote(..));
        self.set_remote(false);
        let r = match self {
            RouterHost::Local(m, _) => m.restore_link_words(w),
            RouterHost::Remote(_) => Err("the mesh did not come back from its thread".into()),
        };
        self.set_remote(remote);
        r
    }

    /// A copy of the mesh (its routers and link counters).
    pub(crate) fn snapshot(&mut self) -> Mesh {
        match self {
            RouterHost::Local(m, _) => (**m).clone(),
            RouterHost::Remote(r) => {
                assert_eq!(r.outstanding, 0, "collect jobs before copying the mesh");
                r.send(Msg::Snapshot);
                loop {
                    if let Reply::Mesh(m) = r.recv() {
                        return *m;
                    }
                }
            }
        }
    }
}
