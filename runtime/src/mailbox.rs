//! `Mailbox`: an agent's two-lane queue (erlangen.md §3.3, design-notes §2).
//!
//! * The **control lane** is unbounded and carries [`Signal`]s: exit signals
//!   and monitor notifications. Receive drains it before the data lane, so a
//!   kill or a `Down` overtakes queued messages (Erlangen).
//! * The **data lane** holds ordinary messages up to the capacity given at
//!   spawn (default 64). A send to a full or closed mailbox drops the message
//!   and counts it (`dropped`); send never blocks.
//!
//! # Fields
//!
//! Both lanes and the `closed` flag live under one spin lock (sync.rs). Any thread may push;
//! only the owning agent (or its worker, after it died) pops. `received` is
//! written only by the owner; `dropped` by any sender; both are read racily by
//! introspection.
//!
//! # Protocol (the wake-up contract)
//!
//! 1. A sender pushes under the lock and releases it.
//! 2. Only then does it call `State::transition_to_scheduled` on the owner
//!    (agent/state.rs), which schedules the owner if it was waiting.
//! 3. The owner checks the lanes after every resume, so a message pushed at
//!    step 1 is either seen before the owner suspends or makes step 2 find it
//!    `RUNNING` and set `NOTIFIED`.

use std::collections::VecDeque;

use crate::exit::{Down, ExitReason};
use crate::message::Message;
use crate::sync::SpinLock;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// A control-lane entry.
#[derive(Debug)]
pub(crate) enum Signal {
    /// Exit with this reason at the next runtime call.
    Exit(ExitReason),
    /// A monitored agent exited.
    Down(Down),
    /// A notification already made a message (an observing monitor's
    /// `WatchDown`, watch.rs).
    Notice(Message),
    /// An operator asked to trace the agent (`RuntimeHandle::trace_next`):
    /// it starts a trace when it takes this (trace.rs).
    TraceNext,
    /// A traced message of the data lane, as `pop` hands it out (never
    /// queued in the control lane): the receive unwraps it (trace.rs).
    Traced(Message),
}

/// Why a mailbox refused a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Its agent is dead or dying (Erlangen's silent send to the dead).
    Closed,
    /// It holds its capacity.
    Full,
}

/// What a receive takes from the mailbox, control lane first.
#[derive(Debug)]
pub(crate) enum Item {
    Signal(Signal),
    Message(Message),
}

/// Both lanes, under the mailbox lock.
#[derive(Debug, Default)]
struct Lanes {
    /// Exit signals and notifications, unbounded.
    control: VecDeque<Signal>,
    /// Ordinary messages, at most `capacity`.
    data: DataLane,
    /// Set at kill or death: every later push is dropped and counted.
    closed: bool,
    /// Traced messages in the data lane (trace.rs): while there are none,
    /// a pop looks at no message.
    traced: usize,
    /// Replies, by their call's tag (reply.rs); they count against the
    /// capacity with the data lane.
    /// Made on the first reply (most agents never get one: an empty
    /// mailbox holds one word for them, and making it costs no hasher).
    replies: Option<Box<Replies>>,
}

/// The data lane: a FIFO whose oldest message sits inline while the lane
/// holds only it, so the common one-message mailbox allocates nothing.
///
/// Invariant: `head` is `Some` only if it is the oldest message (a push goes
/// to `head` only when the whole lane is empty; a pop takes `head` first).
#[derive(Debug, Default)]
pub(crate) struct DataLane {
    head: Option<Message>,
    rest: VecDeque<Message>,
}

impl DataLane {
    fn push_back(&mut self, message: Message) {
        if self.head.is_none() && self.rest.is_empty() {
            self.head = Some(message);
        } else {
            self.rest.push_back(message);
        }
    }

    pub(crate) fn pop_front(&mut self) -> Option<Message> {
        self.head.take().or_else(|| self.rest.pop_front())
    }

    fn len(&self) -> usize {
        usize::from(self.head.is_some()) + self.rest.len()
    }
}

/// An agent's mailbox.
#[derive(Debug)]
pub(crate) struct Mailbox {
    /// Both lanes and the closed flag.
    lanes: SpinLock<Lanes>,
    /// Most messages the data lane holds.
    /// (Four bytes: `MAILBOX_LEN_MAX` is 2^30, and every cell is smaller
    /// for it.)
    capacity: u32,
    /// Set when an exit signal is queued; lets every runtime call check for a
    /// pending kill with one relaxed load.
    exit_pending: AtomicBool,
    /// Messages and signals taken by the owner (Erlangen's `messages-received`).
    /// Written only by the owner (load and store, no read-modify-write).
    received: AtomicU64,
    /// Items in both lanes; written under the lock, read without it by the
    /// owner to skip locking an empty mailbox. A push that races with that
    /// read is caught by the state word (protocol step 3).
    queued: AtomicUsize,
    /// Pushes refused because the data lane was full or the mailbox closed.
    dropped: AtomicU64,
}

/// The calls an agent waits for, by tag (reply.rs): a tag is open from
/// `make_tag` until its wait ends; a reply to a tag that is not open (late,
/// or never asked for) is refused and counted as dropped, never kept.
#[derive(Debug, Default)]
struct Replies {
    /// Open tags, and the reply filed under each (at most one).
    by_tag: std::collections::HashMap<u64, Option<Message>>,
    /// Replies filed and not taken (they count against the capacity).
    filled: usize,
}

impl Lanes {
    /// Replies filed and not taken.
    #[inline(always)]
    fn replies_len(&self) -> usize {
        self.replies.as_ref().map_or(0, |replies| replies.filled)
    }
}

impl Mailbox {
    /// An open, empty mailbox whose data lane holds `capacity` messages.
    pub(crate) fn new(capacity: usize) -> Mailbox {
        debug_assert!(capacity >= 1);
        Mailbox {
            lanes: SpinLock::new(Lanes::default()),
            capacity: u32::try_from(capacity).expect("checked against MAILBOX_LEN_MAX"),
            exit_pending: AtomicBool::new(false),
            received: AtomicU64::new(0),
            queued: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    /// Appends the message in `slot` to the data lane: the per-message
    /// path, one lock, no look at the message (replies take `push_reply`).
    /// The message is read only after the lock is taken: its sender has
    /// just written it, and a wide load of fresh stores stalls on store
    /// forwarding, where after the lock's barrier it comes from the cache.
    /// A full or closed mailbox leaves it in `slot` (the caller drops it
    /// outside the lock), counts it as dropped and says which it was.
    #[inline(always)]
    pub(crate) fn push_from(&self, slot: &mut Option<Message>) -> Result<(), Refused> {
        self.push_with::<false>(slot)
    }

    /// `push_from` of a traced message (trace.rs): counted, so that pops
    /// look for it.
    pub(crate) fn push_traced_from(&self, slot: &mut Option<Message>) -> Result<(), Refused> {
        self.push_with::<true>(slot)
    }

    #[inline(always)]
    fn push_with<const TRACED: bool>(&self, slot: &mut Option<Message>) -> Result<(), Refused> {
        let mut lanes = self.lanes.lock();
        let refused = if lanes.closed {
            Refused::Closed
        } else if lanes.data.len() + lanes.replies_len() >= self.capacity as usize {
            Refused::Full
        } else {
            if let Some(message) = slot.take() {
                lanes.data.push_back(message);
                if TRACED {
                    lanes.traced += 1;
                }
            }
            self.publish_len(&lanes);
            return Ok(());
        };
        drop(lanes);
        self.dropped.fetch_add(1, Ordering::Relaxed);
        Err(refused)
    }

    /// Opens `tag` for a reply (reply.rs). Owner only.
    pub(crate) fn open_tag(&self, tag: u64) {
        let mut lanes = self.lanes.lock();
        lanes
            .replies
            .get_or_insert_default()
            .by_tag
            .insert(tag, None);
    }

    /// Closes `tag`: a reply filed under it is dropped with it (outside the
    /// lock, by the caller), a later one refused. Owner only.
    pub(crate) fn close_tag(&self, tag: u64) -> Option<Message> {
        let mut lanes = self.lanes.lock();
        let replies = lanes.replies.as_mut()?;
        let filed = replies.by_tag.remove(&tag)??;
        replies.filled -= 1;
        Some(filed)
    }

    /// Files a reply under its call's open `tag`, counted against the
    /// capacity with the data lane. A full or closed mailbox, a tag that is
    /// not open (a late reply) or a second reply hands it back and counts it
    /// as dropped.
    pub(crate) fn push_reply(&self, tag: u64, message: Message) -> Result<(), Message> {
        self.file_reply(tag, message, true)
    }

    /// `push_reply` for a notification that ends a call (its server's
    /// exit): not refused for a full mailbox (bounded by the open calls, as
    /// `Down`s are by the edges).
    pub(crate) fn push_reply_notice(&self, tag: u64, message: Message) -> Result<(), Message> {
        self.file_reply(tag, message, false)
    }

    fn file_reply(&self, tag: u64, message: Message, bounded: bool) -> Result<(), Message> {
        let mut lanes = self.lanes.lock();
        let full = bounded && lanes.data.len() + lanes.replies_len() >= self.capacity as usize;
        let closed = lanes.closed;
        let slot = lanes
            .replies
            .as_mut()
            .and_then(|replies| replies.by_tag.get_mut(&tag))
            .filter(|slot| slot.is_none());
        match slot {
            Some(slot) if !closed && !full => {
                *slot = Some(message);
                if let Some(replies) = lanes.replies.as_mut() {
                    replies.filled += 1;
                }
                Ok(())
            }
            _ => {
                drop(lanes);
                self.dropped.fetch_add(1, Ordering::Relaxed);
                Err(message)
            }
        }
    }

    /// Takes the reply filed under `tag`, closing the tag (reply.rs). Owner
    /// only.
    pub(crate) fn take_reply(&self, tag: u64) -> Option<Message> {
        let mut lanes = self.lanes.lock();
        let replies = lanes.replies.as_mut()?;
        if !matches!(replies.by_tag.get(&tag), Some(Some(_))) {
            return None;
        }
        let reply = replies.by_tag.remove(&tag)??;
        replies.filled -= 1;
        drop(lanes);
        self.count_received();
        Some(reply)
    }

    /// Appends a notification made a message (watch.rs) to the control
    /// lane; refused (and counted) only when the mailbox is closed.
    pub(crate) fn push_notice(&self, notice: Message) -> Result<(), Message> {
        let mut lanes = self.lanes.lock();
        if lanes.closed {
            drop(lanes);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return Err(notice);
        }
        lanes.control.push_back(Signal::Notice(notice));
        self.publish_len(&lanes);
        Ok(())
    }

    /// Appends an operator's request to trace the agent to the control
    /// lane; `false` if the mailbox is closed.
    pub(crate) fn push_trace_next(&self) -> bool {
        let mut lanes = self.lanes.lock();
        if lanes.closed {
            return false;
        }
        lanes.control.push_back(Signal::TraceNext);
        self.publish_len(&lanes);
        true
    }

    /// Takes the queued control signals for which `matches` holds out of
    /// the lane and returns them, for the caller to drop outside the lock
    /// (an `unlink` or `unwatch` that raced with the exit it was about).
    /// Owner only.
    pub(crate) fn remove_control(&self, matches: &dyn Fn(&Signal) -> bool) -> Vec<Signal> {
        if self.queued.load(Ordering::Acquire) == 0 {
            return Vec::new();
        }
        let mut lanes = self.lanes.lock();
        let mut removed = Vec::new();
        let mut kept = VecDeque::with_capacity(lanes.control.len());
        for signal in std::mem::take(&mut lanes.control) {
            if matches(&signal) {
                removed.push(signal);
            } else {
                kept.push_back(signal);
            }
        }
        lanes.control = kept;
        self.publish_len(&lanes);
        removed
    }

    /// Appends a notification to the control lane; refused (and counted) only
    /// when the mailbox is closed.
    pub(crate) fn push_down(&self, down: Down) -> Result<(), Down> {
        let mut lanes = self.lanes.lock();
        if lanes.closed {
            drop(lanes);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return Err(down);
        }
        lanes.control.push_back(Signal::Down(down));
        self.publish_len(&lanes);
        Ok(())
    }

    /// Queues an exit signal and closes the mailbox, as Erlangen's `exit` on
    /// another agent does. A closed mailbox (the agent is dead or already
    /// dying) refuses it: the reason comes back for the caller to drop
    /// outside the lock, and it counts as dropped, as Erlangen's
    /// `messages-dropped` counts every refused message and signal.
    pub(crate) fn push_exit(&self, reason: ExitReason) -> Result<(), ExitReason> {
        let mut lanes = self.lanes.lock();
        if lanes.closed {
            drop(lanes);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return Err(reason);
        }
        lanes.control.push_back(Signal::Exit(reason));
        lanes.closed = true;
        self.publish_len(&lanes);
        // Relaxed: the flag is only a hint; the signal itself is read under
        // the lock.
        self.exit_pending.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Whether an exit signal may be waiting in the control lane.
    #[inline(always)]
    pub(crate) fn exit_pending(&self) -> bool {
        self.exit_pending.load(Ordering::Relaxed)
    }

    /// Takes the next item: a control signal if any, else a message.
    ///
    /// Inlined into the receive: returned from a call, the item was written
    /// to the caller's stack field by field and read back at once as one
    /// wide copy, which store forwarding cannot serve (a stall of a dozen
    /// cycles per message); inlined, the message goes from the lane to its
    /// destination directly.
    #[inline(always)]
    pub(crate) fn pop(&self) -> Option<Item> {
        // Acquire pairs with the Release in `publish_len`: seeing a count
        // means the pushed item is visible once we take the lock.
        if self.queued.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut lanes = self.lanes.lock();
        let item = if let Some(signal) = lanes.control.pop_front() {
            Item::Signal(signal)
        } else {
            let message = lanes.data.pop_front()?;
            if lanes.traced != 0 && message.is_traced() {
                lanes.traced -= 1;
                Item::Signal(Signal::Traced(message))
            } else {
                Item::Message(message)
            }
        };
        self.publish_len(&lanes);
        drop(lanes);
        self.count_received();
        Some(item)
    }

    /// Takes the next control signal only.
    pub(crate) fn pop_signal(&self) -> Option<Signal> {
        if self.queued.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut lanes = self.lanes.lock();
        let signal = lanes.control.pop_front()?;
        self.publish_len(&lanes);
        drop(lanes);
        self.count_received();
        Some(signal)
    }

    /// Records the lanes' length for lock-free emptiness checks. Called
    /// with the lock held, after every change.
    #[inline(always)]
    fn publish_len(&self, lanes: &Lanes) {
        self.queued
            .store(lanes.control.len() + lanes.data.len(), Ordering::Release);
    }

    /// Counts one item taken (owner only, so no read-modify-write).
    fn count_received(&self) {
        let received = self.received.load(Ordering::Relaxed);
        self.received.store(received + 1, Ordering::Relaxed);
    }

    /// Closes the mailbox for good and returns what was queued, if anything,
    /// so the caller can drop it outside the lock. Called once, at the
    /// owner's death.
    pub(crate) fn close(&self) -> Option<(VecDeque<Signal>, DataLane)> {
        let mut lanes = self.lanes.lock();
        lanes.closed = true;
        // Replies nobody took leave with the other leftovers.
        if let Some(replies) = lanes.replies.take() {
            for reply in replies.by_tag.into_values().flatten() {
                lanes.data.push_back(reply);
            }
        }
        if lanes.control.is_empty() && lanes.data.len() == 0 {
            return None;
        }
        self.queued.store(0, Ordering::Release);
        Some((
            std::mem::take(&mut lanes.control),
            std::mem::take(&mut lanes.data),
        ))
    }

    /// Messages and signals taken so far.
    pub(crate) fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Pushes refused so far.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Whether anything waits in either lane or among the replies.
    pub(crate) fn holds_anything(&self) -> bool {
        let lanes = self.lanes.lock();
        !lanes.control.is_empty() || lanes.data.len() > 0 || lanes.replies_len() > 0
    }

    /// Queued data messages, for introspection.
    pub(crate) fn len(&self) -> usize {
        self.lanes.lock().data.len()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn the_data_lane_stays_first_in_first_out_across_its_inline_head() {
        let mut lane = DataLane::default();
        let mut next = 0u32;
        let mut expected = 0u32;
        // Interleave pushes and pops so the head empties and refills while
        // the rest still holds older messages.
        for round in 0..50u32 {
            for _ in 0..(round % 4) {
                lane.push_back(Message::new(next));
                next += 1;
            }
            for _ in 0..(round % 3) {
                if let Some(message) = lane.pop_front() {
                    assert_eq!(message.downcast::<u32>().unwrap(), expected);
                    expected += 1;
                }
            }
            assert_eq!(lane.len() as u32, next - expected);
        }
        while let Some(message) = lane.pop_front() {
            assert_eq!(message.downcast::<u32>().unwrap(), expected);
            expected += 1;
        }
        assert_eq!(expected, next);
    }
}
