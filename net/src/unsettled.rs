//! `Unsettled`: the commands agents pushed for the event loop and the loop
//! has not yet processed (made bytes in a buffer, held, waiting or
//! dropped), counted per sender.
//!
//! A sender may write to a connection's buffer itself (outbox.rs step 2)
//! only while none of *its own* commands is unsettled: then everything it
//! queued before is in a buffer or a socket already, and its messages
//! keep their order. Counting per sender (in `UNSETTLED_BUCKETS` buckets by
//! the agent's serial; two agents that share a bucket wait for each
//! other, which is safe) lets one agent's queued command leave every
//! other agent's sends direct; one count for the whole node sent every
//! send of the node to the loop as long as any command of any agent was
//! queued, which under eight senders on two workers kept most sends
//! there (issue 21). A command whose sender is unknown (a node call, a
//! plain thread) counts for everyone; one that puts no bytes on a
//! connection (a flush of a buffer, a decoded large message) counts for
//! no one: a worker's flush handed to the loop held every sender of the
//! node back until the loop took it, and a single sender flooding a
//! connection then stayed on the loop's path for the rest of its burst.
//!
//! # Protocol
//!
//! 1. `NodeShared::push_from` adds to the sender's count *before* the
//!    command is visible to the loop.
//! 2. The loop processes the command, then `settle`s its count (Release:
//!    what it wrote to a buffer is seen by a sender that then reads zero
//!    and takes the outbox's lock).
//! 3. A sender writes directly only if `settled_for(itself)`.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::config::UNSETTLED_BUCKETS;

/// Which count a command is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Bucket {
    /// In none: a command that puts no bytes on a connection (a flush of
    /// bytes already in a buffer, a large message decoded here), so no
    /// later write has to follow it.
    Uncounted,
    /// A command of no known sender: it holds every direct write back.
    Unknown,
    /// A command of the agent whose serial is this, modulo
    /// `UNSETTLED_BUCKETS`.
    Sender(usize),
}

/// The counts (module docs).
#[derive(Debug)]
pub(crate) struct Unsettled {
    /// Commands of no known sender: they hold every direct write back.
    unknown: AtomicUsize,
    /// Commands of agents, by `serial % UNSETTLED_BUCKETS`.
    by_sender: [AtomicUsize; UNSETTLED_BUCKETS],
}

impl Default for Unsettled {
    fn default() -> Unsettled {
        Unsettled {
            unknown: AtomicUsize::new(0),
            by_sender: std::array::from_fn(|_| AtomicUsize::new(0)),
        }
    }
}

impl Unsettled {
    /// The bucket of the agent with serial `sender` (0: none).
    pub(crate) fn bucket(sender: u64) -> Bucket {
        match sender {
            0 => Bucket::Unknown,
            serial => Bucket::Sender((serial % UNSETTLED_BUCKETS as u64) as usize),
        }
    }

    fn count(&self, bucket: Bucket) -> Option<&AtomicUsize> {
        match bucket {
            Bucket::Uncounted => None,
            Bucket::Unknown => Some(&self.unknown),
            Bucket::Sender(index) => Some(&self.by_sender[index]),
        }
    }

    /// Step 1.
    pub(crate) fn add(&self, bucket: Bucket) {
        if let Some(count) = self.count(bucket) {
            count.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Step 2.
    pub(crate) fn settle(&self, bucket: Bucket) {
        if let Some(count) = self.count(bucket) {
            count.fetch_sub(1, Ordering::Release);
        }
    }

    /// Step 3: whether no command that a send of `sender` must follow is
    /// unsettled (for no known sender: none at all).
    pub(crate) fn settled_for(&self, sender: u64) -> bool {
        if self.unknown.load(Ordering::Acquire) != 0 {
            return false;
        }
        match Unsettled::bucket(sender) {
            Bucket::Sender(index) => self.by_sender[index].load(Ordering::Acquire) == 0,
            Bucket::Unknown | Bucket::Uncounted => self
                .by_sender
                .iter()
                .all(|count| count.load(Ordering::Acquire) == 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Bucket, Unsettled};

    #[test]
    fn one_senders_queued_command_holds_back_only_that_sender_and_the_unknown() {
        let unsettled = Unsettled::default();
        assert!(unsettled.settled_for(5) && unsettled.settled_for(0));
        let bucket = Unsettled::bucket(5);
        unsettled.add(bucket);
        assert!(!unsettled.settled_for(5));
        assert!(unsettled.settled_for(6));
        assert!(!unsettled.settled_for(0), "no known sender waits for all");
        unsettled.settle(bucket);
        unsettled.add(Bucket::Unknown);
        assert!(
            !unsettled.settled_for(6),
            "an unknown sender's command holds all"
        );
        unsettled.settle(Bucket::Unknown);
        assert!(unsettled.settled_for(6));
        unsettled.add(Bucket::Uncounted);
        assert!(unsettled.settled_for(6) && unsettled.settled_for(0));
        unsettled.settle(Bucket::Uncounted);
        assert!(unsettled.settled_for(6) && unsettled.settled_for(0));
    }
}
