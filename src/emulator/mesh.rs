//! The routed mesh: packets travel dimension-order (X, then Y) routes link by link through
//! store-and-forward routers, cycle by cycle (ARCHITECTURE.md §5).
//!
//! Every router has five output ports — east, west, north, south and local (ejection into its
//! core's input queue) — each a FIFO of the chip's `router.buffer_depth` packets. In one router
//! cycle (the chip's hop latency):
//!
//! 1. every port, routers in grid order and ports in the order E, W, N, S, L, moves up to
//!    `router.link_packets_per_cycle` packets that were already there at the start of the
//!    cycle: over its link into the next router's FIFO for the packet's next direction, or
//!    (local) into the core's input queue;
//! 2. every core injects up to `link_packets_per_cycle` packets of its outbox, in emission
//!    order, into its router.
//!
//! A FIFO accepts a packet only while its length at the start of the cycle plus the packets it
//! accepted this cycle is below its depth (so a depth-1 buffer passes one packet every other
//! cycle, as with credit-based flow control). A packet that finds its FIFO or its core's queue
//! full waits (`overflow = "stall"`: back-pressure; the port is blocked for the cycle) or is
//! discarded and counted against that link or queue (`"drop"`). Dimension-order routes on a
//! mesh cannot deadlock; a core queue that fills under `stall` ends the exchange early with the
//! cores that must drain first ([`Exchange::Blocked`]).
//!
//! Per link the mesh counts packets per timestep (max and mean), stall cycles and drops; a link
//! between two chips of a system is an `interchip_hop`. The exchange consumes plain
//! [`Flit`]s and produces deliveries, so a group of cores could run in another process and swap
//! only the packets that cross its boundary each timestep.

use std::collections::VecDeque;

use crate::chip::{ChipModel, OverflowPolicy};

/// Output ports of a router.
const E: usize = 0;
const W: usize = 1;
const N: usize = 2;
const S: usize = 3;
const L: usize = 4;
const PORTS: usize = 5;
/// Port names, for reports.
pub(super) const PORT_NAMES: [&str; PORTS] = ["east", "west", "north", "south", "local"];

/// A packet on its way, as the routers see it: destination core (engine index; the mesh knows
/// its grid position), whether it is retrograde traffic, and the time its destination's
/// handler will take (for the time a full queue's early drain costs). The payload stays with
/// the engine: routing does not depend on it.
///
/// Eight bytes: a training timestep on small cores carries a packet per (axon, core), half a
/// million on a 10 M-synapse net. The retrograde flag is the destination's top bit (engine
/// cores are fewer than 2³¹: a grid has at most 2²⁰ cores, `chip::MAX_GRID_CORES`, and a core
/// holds a few packed layers); a handler time of 2³² − 1 ps (4.3 ms) or more is
/// kept beside the list, exactly ([`Flit::BIG`], [`Packets`](super::router::Packets)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Flit {
    /// Engine index of the destination core; bit 31: retrograde (credit-phase) traffic.
    dst: u32,
    /// The destination handler's time for this packet, ps ([`Flit::BIG`]: kept aside).
    cost: u32,
}

impl Flit {
    /// The cost of a packet whose handler time is kept beside the list.
    pub(crate) const BIG: u32 = u32::MAX;
    const RETRO: u32 = 1 << 31;

    /// A packet to engine core `dst_core` (below 2³¹) whose handler takes `cost` ps; a cost of
    /// [`Flit::BIG`] or more is stored as `BIG` (the caller keeps it).
    #[inline(always)]
    pub(crate) fn new(dst_core: u32, retro: bool, cost: u64) -> Self {
        debug_assert!(dst_core < Self::RETRO);
        Flit {
            dst: dst_core | if retro { Self::RETRO } else { 0 },
            cost: u32::try_from(cost).unwrap_or(Self::BIG),
        }
    }
    /// Engine index of the destination core.
    #[inline(always)]
    pub(crate) fn dst_core(self) -> u32 {
        self.dst & !Self::RETRO
    }
    /// Retrograde (credit-phase) traffic.
    #[inline(always)]
    pub(crate) fn retro(self) -> bool {
        self.dst & Self::RETRO != 0
    }
    /// The handler time, ps, or [`Flit::BIG`].
    #[inline(always)]
    pub(crate) fn cost(self) -> u32 {
        self.cost
    }
}

// The README's memory figures: a packet is 8 bytes in a router job, routed in place (the
// mesh keeps per source only id ranges); in flight its header takes 12 bytes in a FIFO.
const _: () = assert!(std::mem::size_of::<Flit>() == 8);
const _: () = assert!(std::mem::size_of::<Hdr>() == 12);

/// What a router needs of a packet in flight: its id (for the payload at delivery), its
/// destination's grid column and row, whether it is retrograde traffic, and the links between
/// chips it crossed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Hdr {
    id: u32,
    x: u16,
    y: u16,
    retro: bool,
    xings: u8,
}

/// Entries a FIFO holds inline (deeper or unbounded FIFOs live on the heap).
const INLINE: usize = 4;

/// A FIFO's storage: a ring of [`INLINE`] entries in place, or a heap deque.
#[derive(Clone, Debug)]
enum Ring {
    Inline {
        buf: [Hdr; INLINE],
        head: u8,
        len: u8,
    },
    Heap(VecDeque<Hdr>),
}

impl Ring {
    fn new(depth: usize) -> Self {
        if depth <= INLINE {
            Ring::Inline {
                buf: [Hdr::default(); INLINE],
                head: 0,
                len: 0,
            }
        } else {
            Ring::Heap(VecDeque::new())
        }
    }
    #[inline(always)]
    fn len(&self) -> usize {
        match self {
            Ring::Inline { len, .. } => *len as usize,
            Ring::Heap(q) => q.len(),
        }
    }
    #[inline(always)]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    #[inline(always)]
    fn front(&self) -> Option<&Hdr> {
        match self {
            Ring::Inline { buf, head, len } => (*len > 0).then(|| &buf[*head as usize]),
            Ring::Heap(q) => q.front(),
        }
    }
    /// Push (the caller keeps an inline ring within its depth, at most [`INLINE`]).
    #[inline(always)]
    fn push_back(&mut self, h: Hdr) {
        match self {
            Ring::Inline { buf, head, len } => {
                let i = (*head as usize + *len as usize) % INLINE;
                buf[i] = h;
                *len += 1;
            }
            Ring::Heap(q) => q.push_back(h),
        }
    }
    #[inline(always)]
    fn pop_front(&mut self) {
        match self {
            Ring::Inline { head, len, .. } => {
                if *len > 0 {
                    *head = ((*head as usize + 1) % INLINE) as u8;
                    *len -= 1;
                }
            }
            Ring::Heap(q) => {
                q.pop_front();
            }
        }
    }
    fn clear(&mut self) {
        match self {
            Ring::Inline { head, len, .. } => {
                *head = 0;
                *len = 0;
            }
            Ring::Heap(q) => q.clear(),
        }
    }
}

/// Where a FIFO stands in the event-driven schedule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Wait {
    /// Empty, or holding packets that arrived this cycle and scheduled.
    #[default]
    No,
    /// Its head cannot move until the FIFO it waits on (or its core's queue) frees room.
    Blocked,
}

/// A router's output FIFO: the hot part, touched on every move.
#[derive(Clone, Debug)]
struct Fifo {
    q: Ring,
    /// Cycle at which `start_len` was taken.
    stamp: u64,
    start_len: u32,
    accepted: u32,
}

impl Fifo {
    fn new(depth: usize) -> Self {
        Fifo {
            q: Ring::new(depth),
            stamp: 0,
            start_len: 0,
            accepted: 0,
        }
    }

    /// Take the start-of-cycle length the first time the FIFO is seen in `cycle`.
    #[inline(always)]
    fn touch(&mut self, cycle: u64) {
        if self.stamp != cycle {
            self.stamp = cycle;
            self.start_len = self.q.len() as u32;
            self.accepted = 0;
        }
    }
}

/// A FIFO's schedule state (touched when a port blocks or wakes).
#[derive(Clone, Debug, Default)]
struct FifoState {
    /// The cycle this port is scheduled for (0: none).
    sched: u64,
    wait: Wait,
    /// The cycle its head last failed to move.
    blocked_at: u64,
    /// Ports and sources waiting for room here (keys, see [`Mesh::run`]).
    waiters: Vec<u64>,
    /// The cycle of its last pop (room appears the cycle after).
    popped_at: u64,
}

/// Per-link counters over a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct LinkCounters {
    /// Packets over the link this timestep.
    pub now: u64,
    /// Packets over the link in all timesteps.
    pub total: u64,
    /// Most packets in one timestep.
    pub max: u64,
    /// Cycles a packet at the head of this port waited for room.
    pub stall_cycles: u64,
    /// Packets discarded at this port.
    pub drops: u64,
}

#[derive(Clone, Debug)]
struct Router {
    pos: u32,
    /// Grid column and row.
    x: u32,
    y: u32,
    /// The chip holding the router (index in the system).
    chip: u32,
    /// Router slots of the east, west, north and south neighbours (`u32::MAX`: not yet known).
    nb: [u32; 4],
    fifo: [Fifo; PORTS],
    /// Bit `p` set while FIFO `p` holds packets.
    mask: u8,
    /// Member of the active list.
    active: bool,
    /// Carried traffic this timestep.
    touched: bool,
}

/// What an exchange ended with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Exchange {
    /// Every packet was delivered (or dropped).
    Done,
    /// Stalled on full core queues: these cores (engine indices) must drain before the exchange
    /// continues.
    Blocked(Vec<u32>),
}

/// Counts of one exchange.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExchangeCounts {
    /// Router cycles.
    pub cycles: u64,
    /// Links crossed inside a chip.
    pub hops: u64,
    /// Links crossed between chips.
    pub interchip_hops: u64,
    /// Of which retrograde traffic (hops and interchip hops).
    pub retro_hops: u64,
    /// Packets dropped at a full FIFO.
    pub link_drops: u64,
    /// Packets dropped at a full core queue.
    pub queue_drops: u64,
    /// Cycles packets waited at full buffers or queues.
    pub stall_cycles: u64,
    /// The most links between chips a delivered packet crossed.
    pub max_xings: u64,
}

impl ExchangeCounts {
    /// Adds `o`.
    pub fn merge(&mut self, o: &ExchangeCounts) {
        self.cycles += o.cycles;
        self.hops += o.hops;
        self.interchip_hops += o.interchip_hops;
        self.retro_hops += o.retro_hops;
        self.link_drops += o.link_drops;
        self.queue_drops += o.queue_drops;
        self.stall_cycles += o.stall_cycles;
        self.max_xings = self.max_xings.max(o.max_xings);
    }
}

/// One busy link, for reports.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LinkLoad {
    /// Grid column of the router.
    pub x: u32,
    /// Grid row of the router.
    pub y: u32,
    /// Output port (`east`, `west`, `north`, `south`, or `local` for ejection into the core).
    pub port: &'static str,
    /// Whether the link joins two chips.
    pub interchip: bool,
    /// Packets over the run.
    pub packets: u64,
    /// Most packets in one timestep.
    pub max_per_timestep: u64,
    /// Mean packets per timestep (over all timesteps of the run).
    pub mean_per_timestep: f64,
    /// Cycles waited at this port.
    pub stall_cycles: u64,
    /// Packets dropped at this port.
    pub drops: u64,
}

/// The ports (or sources) scheduled for a cycle: a set of keys below a fixed bound, taken out in
/// ascending order — the order of the cycle rules — without a sort. Three levels of bit words
/// (a word of level k + 1 marks the non-empty words of level k), so that inserting costs three
/// bit sets and taking out costs a few operations per key plus one pass over the top level
/// (at most 32 words for a grid of 2²⁰ cores). Each level holds one bit per key below it: a
/// mesh of `n` cores keeps about `n` bytes per set.
#[derive(Clone, Debug, Default)]
struct KeySet {
    l0: Vec<u64>,
    l1: Vec<u64>,
    l2: Vec<u64>,
    len: usize,
}

impl KeySet {
    /// An empty set for keys below `bound`.
    fn new(bound: usize) -> Self {
        let w0 = bound.div_ceil(64).max(1);
        let w1 = w0.div_ceil(64);
        KeySet {
            l0: vec![0; w0],
            l1: vec![0; w1],
            l2: vec![0; w1.div_ceil(64)],
            len: 0,
        }
    }

    #[inline(always)]
    fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Add `k` (below the bound; a key already present is kept once).
    #[inline(always)]
    fn insert(&mut self, k: u64) {
        let w = (k >> 6) as usize;
        let bit = 1u64 << (k & 63);
        if self.l0[w] & bit != 0 {
            return;
        }
        self.l0[w] |= bit;
        self.l1[w >> 6] |= 1 << (w & 63);
        self.l2[w >> 12] |= 1 << ((w >> 6) & 63);
        self.len += 1;
    }

    /// Move every key, ascending, to the end of `out`, leaving the set empty.
    fn drain_into(&mut self, out: &mut Vec<u64>) {
        if self.len == 0 {
            return;
        }
        self.len = 0;
        for i2 in 0..self.l2.len() {
            let mut a = std::mem::take(&mut self.l2[i2]);
            while a != 0 {
                let i1 = (i2 << 6) | a.trailing_zeros() as usize;
                a &= a - 1;
                let mut b = std::mem::take(&mut self.l1[i1]);
                while b != 0 {
                    let i0 = (i1 << 6) | b.trailing_zeros() as usize;
                    b &= b - 1;
                    let mut c = std::mem::take(&mut self.l0[i0]);
                    while c != 0 {
                        out.push(((i0 << 6) | c.trailing_zeros() as usize) as u64);
                        c &= c - 1;
                    }
                }
            }
        }
    }

    fn clear(&mut self) {
        for level in [&mut self.l0, &mut self.l1, &mut self.l2] {
            level.fill(0);
        }
        self.len = 0;
    }
}

/// The mesh of a chip (or system) and its routers' state.
#[derive(Clone, Debug)]
pub(crate) struct Mesh {
    cols: u32,
    chip_cols: u32,
    chip_rows: u32,
    depth: usize,
    per_cycle: usize,
    policy: OverflowPolicy,
    /// Grid position → router slot (`u32::MAX`: none yet).
    slot: Vec<u32>,
    routers: Vec<Router>,
    /// Per router slot, its five links' counters.
    links: Vec<[LinkCounters; PORTS]>,
    /// Per router slot, its five FIFOs' schedule state.
    state: Vec<[FifoState; PORTS]>,
    /// Active router slots, sorted by grid position.
    active: Vec<u32>,
    /// Routers activated this cycle, not yet merged into `active`.
    newly: Vec<u32>,
    /// A spare buffer for the source list.
    #[cfg(test)]
    spare: Vec<u32>,
    /// Packets of the exchange, by id (the router job's own list, taken over without a copy).
    flits: Vec<Flit>,
    /// `(id, handler time)` of the packets whose time is [`Flit::BIG`], by id.
    big: Vec<(u32, u64)>,
    /// Per source core: runs of packet ids not yet injected (a core's packets are contiguous
    /// in the list, so this is one or a few ranges, not a queue per packet).
    inject: Vec<VecDeque<(u32, u32)>>,
    inject_from: Vec<u32>,
    sources: Vec<u32>,
    /// Event-driven schedule: port keys (`pos << 3 | port`) to process this cycle and the next,
    /// sources to inject this cycle and the next, per source its scheduled cycle and the cycle
    /// it last failed to inject, and the local ports waiting on full core queues.
    ready: KeySet,
    next: KeySet,
    ready_src: KeySet,
    next_src: KeySet,
    /// The keys of the cycle being processed (a reused buffer).
    list: Vec<u64>,
    src_sched: Vec<u64>,
    src_blocked_at: Vec<u64>,
    core_wait: Vec<u64>,
    /// Whether the current exchange has been scheduled (sources made ready).
    started: bool,
    cycle: u64,
    /// Timesteps with an exchange, for the mean link load.
    pub timesteps: u64,
}

impl Mesh {
    /// A mesh with no cores (a placeholder).
    pub(crate) fn empty() -> Self {
        Mesh {
            cols: 1,
            chip_cols: 1,
            chip_rows: 1,
            depth: usize::MAX,
            per_cycle: 1,
            policy: OverflowPolicy::Stall,
            slot: Vec::new(),
            routers: Vec::new(),
            links: Vec::new(),
            state: Vec::new(),
            active: Vec::new(),
            newly: Vec::new(),
            #[cfg(test)]
            spare: Vec::new(),
            flits: Vec::new(),
            big: Vec::new(),
            inject: Vec::new(),
            inject_from: Vec::new(),
            sources: Vec::new(),
            ready: KeySet::default(),
            next: KeySet::default(),
            ready_src: KeySet::default(),
            next_src: KeySet::default(),
            list: Vec::new(),
            src_sched: Vec::new(),
            src_blocked_at: Vec::new(),
            core_wait: Vec::new(),
            started: false,
            cycle: 1,
            timesteps: 0,
        }
    }

    /// The mesh of `chip` for `cores` engine cores at grid positions `pos`.
    pub(crate) fn new(chip: &ChipModel, pos: &[u32]) -> Self {
        let grid = chip.grid();
        let r = &chip.router;
        let n = grid.cores() as usize;
        Mesh {
            cols: grid.cols,
            chip_cols: chip.mesh.cols,
            chip_rows: chip.mesh.rows,
            depth: r.buffer_depth.map_or(usize::MAX, |d| d as usize),
            per_cycle: r.link_packets_per_cycle.max(1) as usize,
            policy: r.overflow,
            slot: vec![u32::MAX; n],
            routers: Vec::new(),
            links: Vec::new(),
            state: Vec::new(),
            active: Vec::new(),
            newly: Vec::new(),
            #[cfg(test)]
            spare: Vec::new(),
            flits: Vec::new(),
            big: Vec::new(),
            inject: vec![VecDeque::new(); pos.len()],
            inject_from: pos.to_vec(),
            sources: Vec::new(),
            // Port keys are `position << 3 | port`.
            ready: KeySet::new(n << 3),
            next: KeySet::new(n << 3),
            ready_src: KeySet::new(pos.len()),
            next_src: KeySet::new(pos.len()),
            list: Vec::new(),
            src_sched: vec![u64::MAX; pos.len()],
            src_blocked_at: vec![0; pos.len()],
            core_wait: Vec::new(),
            started: false,
            cycle: 1,
            timesteps: 0,
        }
    }

    fn router(&mut self, pos: u32) -> usize {
        let s = self.slot[pos as usize];
        if s != u32::MAX {
            return s as usize;
        }
        let k = self.routers.len();
        let (x, y) = (pos % self.cols, pos / self.cols);
        let chip = (y / self.chip_rows) * (self.cols / self.chip_cols).max(1) + x / self.chip_cols;
        self.routers.push(Router {
            pos,
            x,
            y,
            chip,
            nb: [u32::MAX; 4],
            fifo: std::array::from_fn(|_| Fifo::new(self.depth)),
            mask: 0,
            active: false,
            touched: false,
        });
        self.links.push(Default::default());
        self.state.push(Default::default());
        self.slot[pos as usize] = k as u32;
        k
    }

    /// The slot of the neighbour of router `slot` through `port` (cached).
    #[inline(always)]
    fn next_slot(&mut self, slot: usize, port: usize) -> usize {
        let n = self.routers[slot].nb[port];
        if n != u32::MAX {
            return n as usize;
        }
        let next = self.neighbour(self.routers[slot].pos, port);
        let k = self.router(next);
        self.routers[slot].nb[port] = k as u32;
        k
    }

    /// Queue a packet from engine core `src` (injected in call order).
    #[cfg(test)]
    pub(crate) fn send(&mut self, src: u32, flit: Flit) {
        let id = self.flits.len() as u32;
        self.flits.push(flit);
        self.queue_run(src, id, id + 1);
    }

    /// Queue a timestep's packets: `flits` in injection order, `runs` the `(source core,
    /// packets)` runs covering them. The list is taken over, not copied (get it back, emptied,
    /// from [`Mesh::take_spare`] once the exchange is done).
    /// `big` lists the `(index in flits, handler time)` of packets whose time is [`Flit::BIG`].
    pub(crate) fn send_all(&mut self, flits: Vec<Flit>, runs: &[(u32, u32)], big: &[(u32, u64)]) {
        let mut at = self.flits.len() as u32;
        self.big.extend(big.iter().map(|&(id, c)| (at + id, c)));
        if self.flits.is_empty() {
            self.flits = flits;
        } else {
            self.flits.extend_from_slice(&flits);
        }
        for &(src, n) in runs {
            self.queue_run(src, at, at + n);
            at += n;
        }
    }

    /// The packet list of the last exchange, emptied, for the next timestep to fill.
    pub(crate) fn take_spare(&mut self) -> Vec<Flit> {
        let mut v = std::mem::take(&mut self.flits);
        v.clear();
        self.big.clear();
        v
    }

    /// Packet `id`'s destination and handler time, ps.
    #[inline(always)]
    fn dst_cost(&self, id: usize) -> (u32, u64) {
        let f = self.flits[id];
        let cost = match f.cost() {
            Flit::BIG => self
                .big
                .binary_search_by_key(&(id as u32), |&(i, _)| i)
                .map_or_else(
                    |_| {
                        debug_assert!(false, "packet {id}: its handler time was not kept");
                        u64::from(Flit::BIG)
                    },
                    |k| self.big[k].1,
                ),
            c => u64::from(c),
        };
        (f.dst_core(), cost)
    }

    /// Queue packets `from..to` (ids) for injection by `src`, after its earlier ones.
    #[inline]
    fn queue_run(&mut self, src: u32, from: u32, to: u32) {
        if from == to {
            return;
        }
        let q = &mut self.inject[src as usize];
        match q.back_mut() {
            Some(r) if r.1 == from => r.1 = to,
            Some(_) => q.push_back((from, to)),
            None => {
                self.sources.push(src);
                q.push_back((from, to));
            }
        }
    }

    /// The header of the next packet source `src` injects.
    #[inline(always)]
    fn inject_front(&self, src: u32) -> Option<Hdr> {
        let &(id, _) = self.inject[src as usize].front()?;
        let f = &self.flits[id as usize];
        let dst = self.inject_from[f.dst_core() as usize];
        Some(Hdr {
            id,
            // Grid sides are at most 65535 (design rule).
            x: (dst % self.cols) as u16,
            y: (dst / self.cols) as u16,
            retro: f.retro(),
            xings: 0,
        })
    }

    /// Remove the packet source `src` would inject next.
    #[inline(always)]
    fn inject_pop(&mut self, src: u32) {
        let q = &mut self.inject[src as usize];
        if let Some(r) = q.front_mut() {
            r.0 += 1;
            if r.0 == r.1 {
                q.pop_front();
            }
        }
    }

    /// Packets waiting to be injected.
    fn waiting(&self) -> usize {
        self.inject
            .iter()
            .flatten()
            .map(|&(a, b)| (b - a) as usize)
            .sum()
    }

    /// Whether any packet waits to be injected or is in flight (the plain cycle loop's test).
    #[cfg(test)]
    fn busy(&self) -> bool {
        !self.sources.is_empty() || !self.active.is_empty()
    }

    /// The output port at router `slot` toward a packet's destination (X first, then Y).
    #[inline(always)]
    fn port_to(&self, slot: usize, h: &Hdr) -> usize {
        let r = &self.routers[slot];
        let (x, y) = (u32::from(h.x), u32::from(h.y));
        if x > r.x {
            E
        } else if x < r.x {
            W
        } else if y > r.y {
            N
        } else if y < r.y {
            S
        } else {
            L
        }
    }

    #[inline]
    fn neighbour(&self, at: u32, port: usize) -> u32 {
        match port {
            E => at + 1,
            W => at - 1,
            N => at + self.cols,
            _ => at - self.cols,
        }
    }

    #[cfg(test)]
    /// `kept` (sorted by position) merged with the routers activated since, as the new sorted
    /// active list.
    fn merge_new(&mut self, kept: Vec<u32>) {
        if self.newly.is_empty() {
            self.active = kept;
            return;
        }
        let routers = &self.routers;
        self.newly
            .sort_unstable_by_key(|&s| routers[s as usize].pos);
        let mut out = Vec::with_capacity(kept.len() + self.newly.len());
        let (mut a, mut b) = (0, 0);
        while a < kept.len() || b < self.newly.len() {
            let take_a = b >= self.newly.len()
                || (a < kept.len()
                    && routers[kept[a] as usize].pos < routers[self.newly[b] as usize].pos);
            if take_a {
                out.push(kept[a]);
                a += 1;
            } else {
                out.push(self.newly[b]);
                b += 1;
            }
        }
        self.newly.clear();
        self.active = out;
    }

    /// Run the exchange until every queued packet is delivered or dropped, or until full core
    /// queues block it. `deliver(core, id, cost)` offers packet `id` (the order of [`send_all`]
    /// calls) to its core's input queue and says whether the queue took it.
    ///
    /// [`send_all`]: Mesh::send_all
    ///
    /// Event-driven but cycle-exact: a cycle processes only the ports that can act — those
    /// holding packets that were there at the start of the cycle and not waiting for room —
    /// in the order of the cycle rules (ports by grid position and direction, then injections by
    /// core). A port whose next FIFO is full waits on that FIFO and is woken for the cycle after
    /// it pops; the cycles it would have failed in are counted as stall cycles, so the counts,
    /// the cycles and the delivery order equal the plain cycle loop's (checked against
    /// `run_simple` in the tests).
    pub(crate) fn run(
        &mut self,
        counts: &mut ExchangeCounts,
        mut deliver: impl FnMut(u32, u32, u64) -> bool,
    ) -> Exchange {
        if !self.started {
            self.started = true;
            let c = self.cycle;
            let mut srcs = std::mem::take(&mut self.sources);
            for &src in &srcs {
                self.src_sched[src as usize] = c;
                self.ready_src.insert(u64::from(src));
            }
            srcs.clear();
            self.sources = srcs;
        }
        // Ports that waited on core queues (drained since) act again this cycle.
        for key in std::mem::take(&mut self.core_wait) {
            let (slot, port) = self.key_slot(key);
            let st = &mut self.state[slot][port];
            st.wait = Wait::No;
            st.sched = self.cycle;
            self.ready.insert(key);
        }
        loop {
            let c = self.cycle;
            if self.ready.is_empty() && self.ready_src.is_empty() {
                if !self.core_wait.is_empty() {
                    // The cycle loop would now visit the waiting local ports, fail again and
                    // see that nothing moved: count that cycle and hand back to the engine.
                    let mut cores = Vec::new();
                    for &key in &self.core_wait {
                        let (slot, port) = self.key_slot(key);
                        let st = &mut self.state[slot][port];
                        let skipped = c - st.blocked_at;
                        st.blocked_at = c;
                        self.links[slot][port].stall_cycles += skipped;
                        counts.stall_cycles += skipped;
                        if let Some(h) = self.routers[slot].fifo[port].q.front() {
                            cores.push(self.flits[h.id as usize].dst_core());
                        }
                    }
                    counts.cycles += 1;
                    self.cycle += 1;
                    cores.sort_unstable();
                    cores.dedup();
                    return Exchange::Blocked(cores);
                }
                if self.in_flight() {
                    // Cannot happen with dimension-order routes (no cyclic waits); should it,
                    // the traffic still held is counted as dropped rather than looping.
                    let held: usize = self
                        .routers
                        .iter()
                        .map(|r| r.fifo.iter().map(|f| f.q.len()).sum::<usize>())
                        .sum::<usize>()
                        + self.waiting();
                    counts.link_drops += held as u64;
                    self.clear();
                }
                self.clear_packets();
                self.started = false;
                return Exchange::Done;
            }
            let mut moved = false;
            let mut list = std::mem::take(&mut self.list);
            self.ready.drain_into(&mut list);
            for &key in &list {
                let (slot, port) = self.key_slot(key);
                moved |= self.act(slot, port, key, c, counts, &mut deliver);
            }
            list.clear();
            self.ready_src.drain_into(&mut list);
            for &src in &list {
                moved |= self.inject_one(src as u32, c, counts);
            }
            list.clear();
            self.list = list;
            counts.cycles += 1;
            self.cycle += 1;
            std::mem::swap(&mut self.ready, &mut self.next);
            std::mem::swap(&mut self.ready_src, &mut self.next_src);
            if !moved && !self.core_wait.is_empty() {
                // Nothing moved this cycle: the cycle loop would have tried every waiting local
                // port in it (and in the cycles since each last tried) and failed.
                let mut cores: Vec<u32> = Vec::new();
                for &key in &self.core_wait {
                    let (slot, port) = self.key_slot(key);
                    let st = &mut self.state[slot][port];
                    let skipped = c - st.blocked_at;
                    st.blocked_at = c;
                    self.links[slot][port].stall_cycles += skipped;
                    counts.stall_cycles += skipped;
                    if let Some(h) = self.routers[slot].fifo[port].q.front() {
                        cores.push(self.flits[h.id as usize].dst_core());
                    }
                }
                cores.sort_unstable();
                cores.dedup();
                return Exchange::Blocked(cores);
            }
        }
    }

    /// Router slot and port of a port key.
    #[inline(always)]
    fn key_slot(&self, key: u64) -> (usize, usize) {
        let pos = (key >> 3) as usize;
        (self.slot[pos] as usize, (key & 7) as usize)
    }

    #[inline(always)]
    fn port_key(&self, slot: usize, port: usize) -> u64 {
        (u64::from(self.routers[slot].pos) << 3) | port as u64
    }

    /// Schedule port (`slot`, `port`) for cycle `at` (once).
    #[inline(always)]
    fn schedule(&mut self, slot: usize, port: usize, at: u64) {
        let key = self.port_key(slot, port);
        let st = &mut self.state[slot][port];
        if st.sched != at {
            st.sched = at;
            self.next.insert(key);
        }
    }

    /// Put `h` into FIFO (`slot`, `port`) during cycle `c`; an idle FIFO is scheduled for the
    /// next cycle.
    #[inline(always)]
    fn enqueue(&mut self, slot: usize, port: usize, h: Hdr, c: u64) {
        let r = &mut self.routers[slot];
        r.touched = true;
        let f = &mut r.fifo[port];
        let was_empty = f.q.is_empty();
        f.q.push_back(h);
        if was_empty {
            self.schedule(slot, port, c + 1);
        }
    }

    /// Remove the head of FIFO (`slot`, `port`) during cycle `c`, waking whatever waited for
    /// room there for the next cycle (their skipped cycles counted as stalls).
    #[inline(always)]
    fn dequeue(&mut self, slot: usize, port: usize, c: u64, counts: &mut ExchangeCounts) {
        const SRC: u64 = 1 << 63;
        self.routers[slot].fifo[port].q.pop_front();
        let st = &mut self.state[slot][port];
        st.popped_at = c;
        if st.waiters.is_empty() {
            return;
        }
        let mut waiters = std::mem::take(&mut st.waiters);
        for &w in &waiters {
            if w & SRC != 0 {
                let src = (w & !SRC) as usize;
                let skipped = c - self.src_blocked_at[src];
                counts.stall_cycles += skipped;
                if self.src_sched[src] != c + 1 {
                    self.src_sched[src] = c + 1;
                    self.next_src.insert(src as u64);
                }
            } else {
                let (ws, wp) = self.key_slot(w);
                let wst = &mut self.state[ws][wp];
                let skipped = c - wst.blocked_at;
                wst.wait = Wait::No;
                self.links[ws][wp].stall_cycles += skipped;
                counts.stall_cycles += skipped;
                self.schedule(ws, wp, c + 1);
            }
        }
        waiters.clear();
        let st = &mut self.state[slot][port];
        if st.waiters.is_empty() {
            st.waiters = waiters;
        }
    }

    /// Process port (`slot`, `port`) in cycle `c`. Returns whether anything moved.
    fn act(
        &mut self,
        slot: usize,
        port: usize,
        key: u64,
        c: u64,
        counts: &mut ExchangeCounts,
        deliver: &mut impl FnMut(u32, u32, u64) -> bool,
    ) -> bool {
        let mut moved = false;
        let mut sent = 0;
        loop {
            if sent >= self.per_cycle {
                break;
            }
            let fifo = &mut self.routers[slot].fifo[port];
            fifo.touch(c);
            if sent >= fifo.start_len as usize {
                break;
            }
            let Some(&h) = fifo.q.front() else {
                break;
            };
            let id = h.id as usize;
            if port == L {
                let (dst, cost) = self.dst_cost(id);
                match deliver(dst, id as u32, cost) {
                    true => {
                        counts.max_xings = counts.max_xings.max(u64::from(h.xings));
                        self.dequeue(slot, L, c, counts);
                        self.links[slot][L].now += 1;
                        moved = true;
                        sent += 1;
                    }
                    false => match self.policy {
                        OverflowPolicy::Stall => {
                            self.links[slot][L].stall_cycles += 1;
                            counts.stall_cycles += 1;
                            let st = &mut self.state[slot][L];
                            st.wait = Wait::Blocked;
                            st.blocked_at = c;
                            if !self.core_wait.contains(&key) {
                                self.core_wait.push(key);
                            }
                            return moved;
                        }
                        OverflowPolicy::Drop => {
                            self.dequeue(slot, L, c, counts);
                            self.links[slot][L].drops += 1;
                            counts.queue_drops += 1;
                            moved = true;
                            sent += 1;
                        }
                    },
                }
                continue;
            }
            let nslot = self.next_slot(slot, port);
            let q = self.port_to(nslot, &h);
            let depth = self.depth;
            let nf = &mut self.routers[nslot].fifo[q];
            nf.touch(c);
            if (nf.start_len + nf.accepted) as usize >= depth {
                match self.policy {
                    OverflowPolicy::Stall => {
                        self.links[slot][port].stall_cycles += 1;
                        counts.stall_cycles += 1;
                        // Room appears the cycle after a pop: if the FIFO already popped this
                        // cycle, try again next cycle; otherwise wait for its next pop.
                        if self.state[nslot][q].popped_at == c {
                            self.schedule(slot, port, c + 1);
                        } else {
                            self.state[nslot][q].waiters.push(key);
                            let st = &mut self.state[slot][port];
                            st.wait = Wait::Blocked;
                            st.blocked_at = c;
                        }
                        return moved;
                    }
                    OverflowPolicy::Drop => {
                        // The link carried it; the next FIFO had no room.
                        self.dequeue(slot, port, c, counts);
                        self.links[slot][port].drops += 1;
                        counts.link_drops += 1;
                        moved = true;
                        sent += 1;
                        continue;
                    }
                }
            }
            nf.accepted += 1;
            let mut h = h;
            if self.routers[slot].chip != self.routers[nslot].chip {
                counts.interchip_hops += 1;
                h.xings = h.xings.saturating_add(1);
            } else {
                counts.hops += 1;
            }
            if h.retro {
                counts.retro_hops += 1;
            }
            self.enqueue(nslot, q, h, c);
            self.dequeue(slot, port, c, counts);
            self.links[slot][port].now += 1;
            moved = true;
            sent += 1;
        }
        // Packets left (more than a cycle's worth, or arrived this cycle) act next cycle.
        if !self.routers[slot].fifo[port].q.is_empty() {
            self.schedule(slot, port, c + 1);
        }
        moved
    }

    /// Inject the next packets of source core `src` in cycle `c`. Returns whether anything
    /// moved.
    fn inject_one(&mut self, src: u32, c: u64, counts: &mut ExchangeCounts) -> bool {
        const SRC: u64 = 1 << 63;
        let pos = self.inject_from[src as usize];
        let slot = self.router(pos);
        let mut moved = false;
        let mut sent = 0;
        while sent < self.per_cycle {
            let Some(h) = self.inject_front(src) else {
                break;
            };
            let q = self.port_to(slot, &h);
            let depth = self.depth;
            let nf = &mut self.routers[slot].fifo[q];
            nf.touch(c);
            if ((nf.start_len + nf.accepted) as usize) < depth {
                nf.accepted += 1;
                self.enqueue(slot, q, h, c);
                self.inject_pop(src);
                moved = true;
                sent += 1;
            } else {
                match self.policy {
                    OverflowPolicy::Stall => {
                        counts.stall_cycles += 1;
                        if self.state[slot][q].popped_at == c {
                            if self.src_sched[src as usize] != c + 1 {
                                self.src_sched[src as usize] = c + 1;
                                self.next_src.insert(u64::from(src));
                            }
                        } else {
                            self.state[slot][q].waiters.push(SRC | u64::from(src));
                            self.src_blocked_at[src as usize] = c;
                        }
                        return moved;
                    }
                    OverflowPolicy::Drop => {
                        // The injection port used its slot; the FIFO had no room.
                        self.inject_pop(src);
                        self.links[slot][q].drops += 1;
                        counts.link_drops += 1;
                        moved = true;
                        sent += 1;
                    }
                }
            }
        }
        if !self.inject[src as usize].is_empty() && self.src_sched[src as usize] != c + 1 {
            self.src_sched[src as usize] = c + 1;
            self.next_src.insert(u64::from(src));
        }
        moved
    }

    /// Whether any packet waits to be injected or sits in a router.
    fn in_flight(&self) -> bool {
        self.inject.iter().any(|q| !q.is_empty())
            || self
                .routers
                .iter()
                .any(|r| r.fifo.iter().any(|f| !f.q.is_empty()))
    }

    /// The straightforward cycle loop (every active router's every non-empty port, every
    /// cycle): the specification [`Mesh::run`] is checked against.
    #[cfg(test)]
    pub(crate) fn run_simple(
        &mut self,
        counts: &mut ExchangeCounts,
        mut deliver: impl FnMut(u32, u32, u64) -> bool,
    ) -> Exchange {
        let mut blocked: Vec<u32> = Vec::new();
        self.sources.sort_unstable();
        while self.busy() {
            let cycle = self.cycle;
            self.cycle += 1;
            let mut moved = false;
            blocked.clear();
            // 1. Ports, routers in grid order (the active list is kept sorted by position).
            let active = std::mem::take(&mut self.active);
            for &slot in &active {
                let slot = slot as usize;
                let mut ports = self.routers[slot].mask;
                while ports != 0 {
                    let port = ports.trailing_zeros() as usize;
                    ports &= ports - 1;
                    let mut sent = 0;
                    while sent < self.per_cycle {
                        let r = &mut self.routers[slot];
                        let fifo = &mut r.fifo[port];
                        fifo.touch(cycle);
                        // Only packets that were in the FIFO at the start of the cycle move.
                        if sent >= fifo.start_len as usize {
                            break;
                        }
                        let Some(&h) = fifo.q.front() else {
                            break;
                        };
                        let id = h.id as usize;
                        if port == L {
                            let (dst, cost) = self.dst_cost(id);
                            match deliver(dst, id as u32, cost) {
                                true => {
                                    counts.max_xings = counts.max_xings.max(u64::from(h.xings));
                                    self.pop(slot, L);
                                    self.links[slot][L].now += 1;
                                    moved = true;
                                    sent += 1;
                                }
                                false => match self.policy {
                                    OverflowPolicy::Stall => {
                                        self.links[slot][L].stall_cycles += 1;
                                        counts.stall_cycles += 1;
                                        let core = self.flits[id].dst_core();
                                        if !blocked.contains(&core) {
                                            blocked.push(core);
                                        }
                                        break;
                                    }
                                    OverflowPolicy::Drop => {
                                        self.pop(slot, L);
                                        self.links[slot][L].drops += 1;
                                        counts.queue_drops += 1;
                                        moved = true;
                                        sent += 1;
                                    }
                                },
                            }
                            continue;
                        }
                        let nslot = self.next_slot(slot, port);
                        let q = self.port_to(nslot, &h);
                        let depth = self.depth;
                        let nf = &mut self.routers[nslot].fifo[q];
                        nf.touch(cycle);
                        if (nf.start_len + nf.accepted) as usize >= depth {
                            match self.policy {
                                OverflowPolicy::Stall => {
                                    self.links[slot][port].stall_cycles += 1;
                                    counts.stall_cycles += 1;
                                    break;
                                }
                                OverflowPolicy::Drop => {
                                    // The link carried it; the next FIFO had no room.
                                    self.pop(slot, port);
                                    self.links[slot][port].drops += 1;
                                    counts.link_drops += 1;
                                    moved = true;
                                    sent += 1;
                                    continue;
                                }
                            }
                        }
                        nf.accepted += 1;
                        let mut h = h;
                        if self.routers[slot].chip != self.routers[nslot].chip {
                            counts.interchip_hops += 1;
                            h.xings = h.xings.saturating_add(1);
                        } else {
                            counts.hops += 1;
                        }
                        if h.retro {
                            counts.retro_hops += 1;
                        }
                        self.push(nslot, q, h);
                        self.pop(slot, port);
                        self.links[slot][port].now += 1;
                        moved = true;
                        sent += 1;
                    }
                }
            }
            // Keep routers that still hold packets; merge in the newly activated ones.
            let mut kept = active;
            kept.retain(|&slot| {
                let r = &mut self.routers[slot as usize];
                r.active = r.mask != 0;
                r.active
            });
            self.merge_new(kept);
            // 2. Injection, sources in engine-core order (sorted when the exchange began).
            let sources = std::mem::take(&mut self.sources);
            let mut still = std::mem::take(&mut self.spare);
            still.clear();
            for &src in &sources {
                let pos = self.inject_from[src as usize];
                let slot = self.router(pos);
                let mut sent = 0;
                while sent < self.per_cycle {
                    let Some(h) = self.inject_front(src) else {
                        break;
                    };
                    let q = self.port_to(slot, &h);
                    let depth = self.depth;
                    let nf = &mut self.routers[slot].fifo[q];
                    nf.touch(cycle);
                    if ((nf.start_len + nf.accepted) as usize) < depth {
                        nf.accepted += 1;
                        self.push(slot, q, h);
                        self.inject_pop(src);
                        moved = true;
                        sent += 1;
                    } else {
                        match self.policy {
                            OverflowPolicy::Stall => {
                                counts.stall_cycles += 1;
                                break;
                            }
                            OverflowPolicy::Drop => {
                                // The injection port used its slot; the FIFO had no room.
                                self.inject_pop(src);
                                self.links[slot][q].drops += 1;
                                counts.link_drops += 1;
                                moved = true;
                                sent += 1;
                            }
                        }
                    }
                }
                if !self.inject[src as usize].is_empty() {
                    still.push(src);
                }
            }
            self.sources = still;
            self.spare = sources;
            let kept = std::mem::take(&mut self.active);
            self.merge_new(kept);
            counts.cycles += 1;
            if !moved && !blocked.is_empty() {
                // Only full core queues hold the traffic up: let those cores drain.
                blocked.sort_unstable();
                return Exchange::Blocked(blocked);
            }
            if !moved && blocked.is_empty() && self.busy() {
                // Cannot happen with dimension-order routes (no cyclic waits); should it, the
                // traffic still held is counted as dropped rather than looping.
                let held: usize = self
                    .routers
                    .iter()
                    .map(|r| r.fifo.iter().map(|f| f.q.len()).sum::<usize>())
                    .sum::<usize>()
                    + self.waiting();
                counts.link_drops += held as u64;
                self.clear();
                break;
            }
        }
        self.clear_packets();
        Exchange::Done
    }

    fn clear_packets(&mut self) {
        self.flits.clear();
        self.big.clear();
    }

    #[cfg(test)]
    /// Push packet `id` into FIFO `port` of router `slot` (activating the router).
    #[inline(always)]
    fn push(&mut self, slot: usize, port: usize, h: Hdr) {
        let r = &mut self.routers[slot];
        r.fifo[port].q.push_back(h);
        r.mask |= 1 << port;
        r.touched = true;
        if !r.active {
            r.active = true;
            self.newly.push(slot as u32);
        }
    }

    #[cfg(test)]
    /// Pop the head of FIFO `port` of router `slot`.
    #[inline(always)]
    fn pop(&mut self, slot: usize, port: usize) {
        let r = &mut self.routers[slot];
        r.fifo[port].q.pop_front();
        if r.fifo[port].q.is_empty() {
            r.mask &= !(1 << port);
        }
    }

    /// Close a timestep: per-link loads of the timestep go into the run's totals and maxima.
    pub(crate) fn end_timestep(&mut self) {
        self.timesteps += 1;
        for (r, links) in self.routers.iter_mut().zip(&mut self.links) {
            if !r.touched {
                continue;
            }
            r.touched = false;
            for l in links.iter_mut() {
                l.total += l.now;
                l.max = l.max.max(l.now);
                l.now = 0;
            }
        }
    }

    /// Drop every packet still queued or in flight (between phases that discard stale traffic).
    pub(crate) fn clear(&mut self) {
        for r in &mut self.routers {
            for f in &mut r.fifo {
                f.q.clear();
            }
            r.mask = 0;
            r.active = false;
        }
        for st in self.state.iter_mut().flatten() {
            st.waiters.clear();
            st.wait = Wait::No;
            st.sched = 0;
        }
        self.ready.clear();
        self.next.clear();
        self.ready_src.clear();
        self.next_src.clear();
        self.core_wait.clear();
        self.src_sched.fill(0);
        self.started = false;
        self.active.clear();
        self.newly.clear();
        for q in &mut self.inject {
            q.clear();
        }
        self.sources.clear();
        self.clear_packets();
    }

    /// Every link that carried traffic, busiest first (by total packets, then position).
    pub(crate) fn link_loads(&self) -> Vec<LinkLoad> {
        let steps = self.timesteps.max(1) as f64;
        let mut out = Vec::new();
        for (r, links) in self.routers.iter().zip(&self.links) {
            for (p, l) in links.iter().enumerate() {
                if l.total == 0 && l.drops == 0 && l.stall_cycles == 0 {
                    continue;
                }
                let interchip = p != L && {
                    let next = self.neighbour(r.pos, p);
                    let s = self.slot[next as usize];
                    s != u32::MAX && self.routers[s as usize].chip != r.chip
                };
                out.push(LinkLoad {
                    x: r.pos % self.cols,
                    y: r.pos / self.cols,
                    port: PORT_NAMES[p],
                    interchip,
                    packets: l.total,
                    max_per_timestep: l.max,
                    mean_per_timestep: l.total as f64 / steps,
                    stall_cycles: l.stall_cycles,
                    drops: l.drops,
                });
            }
        }
        out.sort_by(|a, b| {
            b.packets
                .cmp(&a.packets)
                .then(a.y.cmp(&b.y))
                .then(a.x.cmp(&b.x))
                .then(a.port.cmp(b.port))
        });
        out
    }

    /// The link counters as words: the timesteps, then `pos, port, total, max, stall cycles,
    /// drops` per link that carried traffic (for checkpoints).
    pub(crate) fn link_words(&self) -> Vec<u64> {
        let mut w = vec![self.timesteps];
        for (r, links) in self.routers.iter().zip(&self.links) {
            for (p, l) in links.iter().enumerate() {
                if l.total == 0 && l.drops == 0 && l.stall_cycles == 0 {
                    continue;
                }
                w.extend([
                    u64::from(r.pos),
                    p as u64,
                    l.total,
                    l.max,
                    l.stall_cycles,
                    l.drops,
                ]);
            }
        }
        w
    }

    /// Set the link counters [`Mesh::link_words`] wrote (onto a mesh without traffic yet).
    ///
    /// # Errors
    /// Words of the wrong shape, or a position or port outside this mesh.
    pub(crate) fn restore_link_words(&mut self, w: &[u64]) -> Result<(), String> {
        let Some((&steps, rest)) = w.split_first() else {
            return Err("no link words".into());
        };
        if !rest.len().is_multiple_of(6) {
            return Err(format!("{} link words are not whole links", rest.len()));
        }
        for l in rest.chunks_exact(6) {
            let (pos, port) = (l[0], l[1]);
            if pos >= self.slot.len() as u64 || port >= PORTS as u64 {
                return Err(format!(
                    "link at position {pos}, port {port} is not on this mesh"
                ));
            }
            let slot = self.router(pos as u32);
            let c = &mut self.links[slot][port as usize];
            c.total = l[2];
            c.max = l[3];
            c.stall_cycles = l[4];
            c.drops = l[5];
        }
        self.timesteps = steps;
        Ok(())
    }

    /// Merge another mesh's link counters (same chip and placement), e.g. from a parallel
    /// evaluation block.
    pub(crate) fn merge_links(&mut self, o: &Mesh) {
        for (r, links) in o.routers.iter().zip(&o.links) {
            let slot = self.router(r.pos);
            for (a, b) in self.links[slot].iter_mut().zip(links) {
                a.total += b.total;
                a.max = a.max.max(b.max);
                a.stall_cycles += b.stall_cycles;
                a.drops += b.drops;
            }
        }
        self.timesteps += o.timesteps;
    }
}

#[cfg(test)]
mod tests {
    use super::KeySet;
    use proptest::prelude::*;

    proptest! {
        /// The schedule's set gives back each inserted key once, ascending, and is empty after:
        /// over the whole key range of a 2²⁰-core grid, across all three levels.
        #[test]
        fn key_set_drains_each_key_once_in_order(
            keys in prop::collection::vec(0u64..(1 << 23), 0..300),
            again in prop::collection::vec(0u64..(1 << 23), 0..50),
        ) {
            let mut set = KeySet::new(1 << 23);
            for round in [&keys, &again] {
                for &k in round.iter() {
                    set.insert(k);
                }
                let mut want = round.clone();
                want.sort_unstable();
                want.dedup();
                let mut got = vec![7];
                set.drain_into(&mut got);
                prop_assert_eq!(got[0], 7);
                prop_assert_eq!(&got[1..], &want[..]);
                prop_assert!(set.is_empty());
                prop_assert!(set.l0.iter().chain(&set.l1).chain(&set.l2).all(|&w| w == 0));
            }
        }
    }
}
