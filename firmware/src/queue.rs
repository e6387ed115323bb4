//! Bounded event queues whose overflow is counted, and the events a core exchanges.
//!
//! [`EventQueue`] is a FIFO over [`heapless::Deque`] (inline storage for `N` events, no
//! allocation) that holds at most a run-time `limit ≤ N` of them — a chip's queue depth. A push into a full queue hands the event back as
//! `Err(event)` and counts a drop; nothing panics, nothing is lost silently.
//!
//! ```
//! use accord_firmware::arith::Counters;
//! use accord_firmware::queue::{EventQueue, SpikeEvent};
//!
//! let mut q: EventQueue<SpikeEvent, 2> = EventQueue::new();
//! q.push(SpikeEvent::binary(3)).unwrap();
//! q.push(SpikeEvent::graded(5, 128)).unwrap();
//! let rejected = q.push(SpikeEvent::binary(9)).unwrap_err();
//! assert_eq!(rejected.axon, 9);
//! assert_eq!(q.drops(), 1);
//! assert_eq!(q.pop(), Some(SpikeEvent { axon: 3, payload: 1 }));
//! let mut c = Counters::default();
//! q.move_drops_to(&mut c);
//! assert_eq!((c.queue_drops, q.drops()), (1, 0));
//! ```
//!
//! # Cost
//!
//! | Operation | queue memory reads / writes | cmps |
//! |---|---|---|
//! | [`EventQueue::push`] | 0 / 1 | 1 (full?) |
//! | [`EventQueue::pop`] | 1 / 0 | 1 (empty?) |

use heapless::Deque;
use heapless::deque::DequeInner;
use heapless::vec::{OwnedVecStorage, VecStorage, ViewVecStorage};

use crate::arith::{Counters, bump};

/// A spike arriving at an axon: `payload` is the graded rate (raw, rate format) or 1 for a
/// binary spike.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SpikeEvent {
    /// Destination axon id on the receiving core.
    pub axon: u32,
    /// Graded rate (raw) or 1 for a binary spike.
    pub payload: i64,
}

impl SpikeEvent {
    /// A binary spike (payload 1).
    #[inline]
    pub const fn binary(axon: u32) -> Self {
        Self { axon, payload: 1 }
    }

    /// A graded spike carrying a rate (raw).
    #[inline]
    pub const fn graded(axon: u32, rate_raw: i64) -> Self {
        Self {
            axon,
            payload: rate_raw,
        }
    }
}

/// A retrograde message `m_j = Σ_i w_ij·δ_i` travelling back to the core of axon `j`'s neuron.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RetroPacket {
    /// Axon id whose presynaptic neuron receives the credit.
    pub axon: u32,
    /// Message value (raw, credit format).
    pub value: i64,
}

/// A bounded FIFO that counts rejected pushes: storage for `N` events, of which the first
/// `limit ≤ N` are usable (a chip's queue depth is a run-time figure; the storage is a build
/// constant).
///
/// [`EventQueue<T, N>`] owns its storage; [`EventQueueView<T>`] is the same queue with `N`
/// erased (heapless's `DequeView`), so one type serves queues of several sizes:
/// `Box<EventQueue<T, N>>` coerces to `Box<EventQueueView<T>>`.
///
/// ```
/// use accord_firmware::queue::{EventQueue, EventQueueView};
///
/// let small: Box<EventQueueView<u32>> = Box::new(EventQueue::<u32, 4>::with_limit(2));
/// let mut queues = [small, Box::new(EventQueue::<u32, 64>::new())];
/// assert_eq!(queues[0].push(1), Ok(()));
/// assert_eq!(queues[0].push(2), Ok(()));
/// assert_eq!(queues[0].push(3), Err(3)); // full at its limit of 2
/// assert_eq!((queues[0].capacity(), queues[1].capacity()), (2, 64));
/// ```
pub struct EventQueueInner<T, S: VecStorage<T> + ?Sized> {
    drops: u64,
    limit: usize,
    q: DequeInner<T, S>,
}

/// A queue with its storage for `N` events inline.
pub type EventQueue<T, const N: usize> = EventQueueInner<T, OwnedVecStorage<T, N>>;

/// A queue whose storage size is erased (reached through a reference or a box).
pub type EventQueueView<T> = EventQueueInner<T, ViewVecStorage<T>>;

impl<T, const N: usize> Default for EventQueue<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Clone, const N: usize> Clone for EventQueue<T, N> {
    fn clone(&self) -> Self {
        Self {
            drops: self.drops,
            limit: self.limit,
            q: self.q.clone(),
        }
    }
}

impl<T, S: VecStorage<T> + ?Sized> core::fmt::Debug for EventQueueInner<T, S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EventQueue")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("drops", &self.drops)
            .finish()
    }
}

impl<T, const N: usize> EventQueue<T, N> {
    /// An empty queue using all `N` slots (`N ≥ 1`, checked at compile time).
    #[inline]
    pub const fn new() -> Self {
        Self::with_limit(N)
    }

    /// An empty queue that holds at most `limit` events (clamped to `1..=N`).
    #[inline]
    pub const fn with_limit(limit: usize) -> Self {
        let limit = if limit == 0 {
            1
        } else if limit > N {
            N
        } else {
            limit
        };
        Self {
            drops: 0,
            limit,
            q: Deque::new(),
        }
    }
}

impl<T, S: VecStorage<T> + ?Sized> EventQueueInner<T, S> {
    /// Appends `item`; if the queue is full, returns it as `Err(item)` and counts a drop.
    #[inline]
    pub fn push(&mut self, item: T) -> Result<(), T> {
        if self.is_full() {
            bump(&mut self.drops);
            return Err(item);
        }
        self.q
            .push_back(item)
            .inspect_err(|_| bump(&mut self.drops))
    }

    /// Removes the oldest event.
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        self.q.pop_front()
    }

    /// The oldest event, without removing it.
    #[inline]
    pub fn front(&self) -> Option<&T> {
        self.q.front()
    }

    /// Number of queued events.
    #[inline]
    pub fn len(&self) -> usize {
        self.q.storage_len()
    }

    /// True if no event is queued.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.q.is_empty()
    }

    /// True if the next push would be rejected.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.len() >= self.limit
    }

    /// Events the queue holds at most.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.limit
    }

    /// Events rejected since creation or the last [`move_drops_to`](Self::move_drops_to).
    #[inline]
    pub fn drops(&self) -> u64 {
        self.drops
    }

    /// Adds the drop count into `c.queue_drops` and resets it.
    #[inline]
    pub fn move_drops_to(&mut self, c: &mut Counters) {
        c.queue_drops = c.queue_drops.saturating_add(self.drops);
        self.drops = 0;
    }

    /// Queued events, oldest first.
    #[inline]
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.q.iter()
    }

    /// Removes every queued event (the drop count is kept).
    #[inline]
    pub fn clear(&mut self) {
        self.q.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_returns_item_and_counts() {
        let mut q: EventQueue<RetroPacket, 3> = EventQueue::new();
        assert_eq!(q.capacity(), 3);
        for a in 0..3 {
            assert_eq!(
                q.push(RetroPacket {
                    axon: a,
                    value: -(a as i64)
                }),
                Ok(())
            );
        }
        assert!(q.is_full());
        let p = RetroPacket { axon: 7, value: 42 };
        assert_eq!(q.push(p), Err(p));
        assert_eq!(q.push(p), Err(p));
        assert_eq!((q.len(), q.drops()), (3, 2));
        // FIFO order, then room again.
        assert_eq!(q.pop().map(|p| p.axon), Some(0));
        assert_eq!(q.push(p), Ok(()));
        let axons: Vec<u32> = q.iter().map(|p| p.axon).collect();
        assert_eq!(axons, [1, 2, 7]);
        assert_eq!(q.front(), Some(&RetroPacket { axon: 1, value: -1 }));
        let mut c = Counters {
            queue_drops: 5,
            ..Counters::default()
        };
        q.move_drops_to(&mut c);
        assert_eq!((c.queue_drops, q.drops()), (7, 0));
        q.clear();
        assert!(q.is_empty());
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn limit_below_storage_and_views() {
        let mut q: EventQueue<u32, 8> = EventQueue::with_limit(3);
        for a in 0..3 {
            assert_eq!(q.push(a), Ok(()));
        }
        assert!(q.is_full());
        assert_eq!(q.push(9), Err(9));
        assert_eq!((q.len(), q.capacity(), q.drops()), (3, 3, 1));
        assert_eq!(q.pop(), Some(0));
        assert_eq!(q.push(9), Ok(()));
        // Limits are clamped to the storage, and at least one.
        assert_eq!(EventQueue::<u32, 8>::with_limit(100).capacity(), 8);
        assert_eq!(EventQueue::<u32, 8>::with_limit(0).capacity(), 1);
        // The same queue through its view, and a clone keeps contents, limit and drops.
        let c = q.clone();
        let v: &mut EventQueueView<u32> = &mut q;
        assert_eq!(v.push(10), Err(10));
        assert_eq!(v.iter().copied().collect::<std::vec::Vec<_>>(), [1, 2, 9]);
        assert_eq!((c.len(), c.capacity(), c.drops()), (3, 3, 1));
    }

    #[test]
    fn spike_constructors() {
        assert_eq!(
            SpikeEvent::binary(4),
            SpikeEvent {
                axon: 4,
                payload: 1
            }
        );
        assert_eq!(
            SpikeEvent::graded(4, -9),
            SpikeEvent {
                axon: 4,
                payload: -9
            }
        );
        let q: EventQueue<SpikeEvent, 1> = EventQueue::default();
        assert_eq!(q.len(), 0);
    }
}
