//! `Timers`: one worker's deadlines, for receive-with-timeout, sleep and
//! send-after.
//!
//! Send-interval entries re-arm themselves when they fire, until
//! cancelled or their agent ends.
//!
//! A min-heap of entries under a mutex (the owning worker takes it on every
//! tick that has a due deadline; other threads take it only for `send_after`
//! from outside the runtime). A wake entry carries the agent's timer sequence
//! number at the time it was armed: if the agent has armed a newer timer (or
//! none) since, the entry is stale and firing it does nothing. A wake that
//! does fire goes through the agent's state word, so a timer that races a
//! message schedules the agent at most once (agent/state.rs step 4).

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Instant;

use crate::agent::AgentCell;
use crate::message::Message;

/// What a due timer does.
#[derive(Debug)]
pub(crate) enum TimerAction {
    /// Wake the agent if its timer sequence still equals `seq`.
    Wake { cell: Arc<AgentCell>, seq: u64 },
    /// Deliver a message (send-after).
    Send {
        to: crate::pid::Pid,
        message: Message,
    },
    /// Deliver a message made by `interval`, then arm again (send-interval).
    Interval(Box<Interval>),
}

/// A periodic message ([`crate::Ctx::send_interval`]); dropping it does
/// not end the interval, [`IntervalRef::cancel`] does (and so does its
/// agent's end).
#[derive(Debug, Clone)]
pub struct IntervalRef {
    pub(crate) cancelled: Arc<std::sync::atomic::AtomicBool>,
}

impl IntervalRef {
    /// Ends the interval: no message is armed after this returns (one
    /// being delivered at this moment may still arrive).
    pub fn cancel(&self) {
        self.cancelled
            .store(true, std::sync::atomic::Ordering::Release);
    }
}

/// A periodic message (`Ctx::send_interval`).
pub(crate) struct Interval {
    /// Who receives it.
    pub(crate) to: crate::pid::Pid,
    /// Makes each message.
    pub(crate) make: Box<dyn Fn() -> Message + Send>,
    /// The period.
    pub(crate) every: std::time::Duration,
    /// The agent that set it up: the interval ends with it.
    pub(crate) owner: std::sync::Weak<AgentCell>,
    /// Set by `IntervalRef::cancel`.
    pub(crate) cancelled: Arc<std::sync::atomic::AtomicBool>,
    /// The deadline it was armed for (the next one is a period later, so
    /// that the messages do not drift).
    pub(crate) due: Instant,
}

impl std::fmt::Debug for Interval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interval")
            .field("to", &self.to)
            .field("every", &self.every)
            .finish_non_exhaustive()
    }
}

impl Interval {
    /// Whether it still runs: not cancelled, its owner alive.
    pub(crate) fn live(&self) -> bool {
        if self.cancelled.load(std::sync::atomic::Ordering::Acquire) {
            return false;
        }
        self.owner.upgrade().is_some_and(|cell| !cell.has_exited())
    }

    /// The next deadline: a period after the last, or a period from `now`
    /// if it fell more than a period behind (no burst of late messages).
    pub(crate) fn next_due(&self, now: Instant) -> Instant {
        let next = self.due + self.every;
        if next + self.every < now {
            now + self.every
        } else {
            next
        }
    }
}

/// One deadline.
#[derive(Debug)]
struct Entry {
    /// When it is due.
    deadline: Instant,
    /// Insertion order, to keep equal deadlines FIFO.
    order: u64,
    /// What to do.
    action: TimerAction,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Entry) -> bool {
        self.deadline == other.deadline && self.order == other.order
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Entry) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Entry) -> Ordering {
        // Reversed: BinaryHeap is a max-heap and we want the earliest first.
        other
            .deadline
            .cmp(&self.deadline)
            .then_with(|| other.order.cmp(&self.order))
    }
}

/// A worker's timer heap.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    /// Pending entries, earliest on top.
    heap: BinaryHeap<Entry>,
    /// Next insertion number.
    next_order: u64,
}

impl Timers {
    /// Arms a timer.
    pub(crate) fn insert(&mut self, deadline: Instant, action: TimerAction) {
        let order = self.next_order;
        self.next_order += 1;
        self.heap.push(Entry {
            deadline,
            order,
            action,
        });
    }

    /// The earliest deadline, if any.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|entry| entry.deadline)
    }

    /// Moves every entry due at `now` into `due`.
    pub(crate) fn take_due(&mut self, now: Instant, due: &mut Vec<TimerAction>) {
        while let Some(entry) = self.heap.peek() {
            if entry.deadline > now {
                break;
            }
            if let Some(entry) = self.heap.pop() {
                due.push(entry.action);
            }
        }
    }

    /// Pending entries.
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Removes every entry (shutdown).
    pub(crate) fn clear(&mut self) -> Vec<TimerAction> {
        self.heap.drain().map(|entry| entry.action).collect()
    }
}
