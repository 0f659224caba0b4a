//! The agent's state word: one atomic that settles who may resume an agent.
//!
//! # Protocol
//!
//! 1. A sender (or timer, or killer) first makes its effect visible (message
//!    enqueued under the mailbox lock), then calls [`State::transition_to_scheduled`].
//!    `WAITING → SCHEDULED` obliges the caller to put the agent on exactly one
//!    run queue; `RUNNING → RUNNING|NOTIFIED` means the worker running it will
//!    see the flag; any other state needs nothing.
//! 2. A worker that pops the agent calls [`State::transition_to_running`]
//!    (`SCHEDULED → RUNNING`) and only then touches the agent's coroutine.
//! 3. When the coroutine suspends, the **worker** (never the agent itself,
//!    which is still switching out) calls [`State::transition_to_waiting`]:
//!    `RUNNING → WAITING`, or, if `NOTIFIED` is set, `→ SCHEDULED` and the
//!    worker re-queues it. Sender and worker meet on this one word, so no
//!    wake-up is lost; and because `WAITING` is published only after `resume`
//!    returned, no other worker can resume a stack that is still in use.
//! 4. A finished agent is `DONE` for ever; every transition out of it fails.
//!
//! Timers and messages race for step 1 on the same word: exactly one of them
//! moves `WAITING → SCHEDULED`, the other finds `SCHEDULED` and does nothing.

use crate::sync::{AtomicU32, Ordering};

/// A worker is inside `resume()` for this agent. May carry `NOTIFIED`.
pub(crate) const RUNNING: u32 = 2;
/// Suspended in receive or sleep, in no run queue.
pub(crate) const WAITING: u32 = 3;
/// Finished (or torn down at shutdown); never runs again. May carry
/// `NOTIFIED` (a waker's flag, meaningless here).
pub(crate) const DONE: u32 = 4;
/// Flag: something arrived. Beside `RUNNING`, the worker running the agent
/// will see it when the agent suspends; beside `WAITING`, it makes
/// `SCHEDULED`. Set by a waker, cleared by `transition_to_running` and
/// `transition_to_waiting`.
pub(crate) const NOTIFIED: u32 = 8;
/// In exactly one run queue (or LIFO slot, or about to be pushed to one):
/// a waiting agent that was notified. With this encoding a wake-up is one
/// `fetch_or(NOTIFIED)` whatever the state, and the waker that turned
/// `WAITING` into `SCHEDULED` is the one that saw `WAITING` before it.
pub(crate) const SCHEDULED: u32 = WAITING | NOTIFIED;

/// The agent's lifecycle word.
#[derive(Debug)]
pub(crate) struct State {
    word: AtomicU32,
}

/// What a worker must do after [`State::transition_to_waiting`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AfterSuspend {
    /// The agent is waiting; someone else will schedule it.
    Parked,
    /// A wake-up came while it ran: the caller **must** re-queue it.
    Requeue,
}

impl State {
    /// A new agent, about to be pushed on a run queue by its spawner.
    pub(crate) fn new_scheduled() -> State {
        State {
            word: AtomicU32::new(SCHEDULED),
        }
    }

    /// Step 1: make the agent runnable after its mailbox or timer changed.
    /// Returns `true` when the caller **must** push it on a run queue.
    pub(crate) fn transition_to_scheduled(&self) -> bool {
        // One read-modify-write, even when it changes nothing (SCHEDULED,
        // NOTIFIED already set, DONE): as a release in the word's
        // modification order it orders our enqueue before every later
        // transition (steps 2 and 3 acquire), so the agent's next look at its
        // mailbox sees the message. A plain load here let the agent miss a
        // message and park with it (loom_models.rs finds that interleaving;
        // on x86 it is a store-to-load reordering). `WAITING → SCHEDULED`
        // and `RUNNING → RUNNING|NOTIFIED` are both "set NOTIFIED".
        self.word.fetch_or(NOTIFIED, Ordering::AcqRel) == WAITING
    }

    /// Step 2: a worker popped the agent. Returns `false` if the agent is
    /// `DONE` (torn down at shutdown while queued) and must be skipped.
    pub(crate) fn transition_to_running(&self) -> bool {
        // Acquire pairs with the Release of the waker's transition.
        match self
            .word
            .compare_exchange(SCHEDULED, RUNNING, Ordering::Acquire, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(actual) => {
                debug_assert_eq!(
                    actual & !NOTIFIED,
                    DONE,
                    "popped an agent that was not scheduled"
                );
                false
            }
        }
    }

    /// Step 3: the coroutine suspended waiting for a message or a timer.
    pub(crate) fn transition_to_waiting(&self) -> AfterSuspend {
        // Release publishes everything the agent did before suspending to the
        // waker that will schedule it next; on failure we read NOTIFIED.
        // Every step is a read-modify-write, so that a waker's release
        // (even one that changed nothing) is acquired here.
        let mut current = RUNNING;
        loop {
            let (next, after) = if current == RUNNING {
                (WAITING, AfterSuspend::Parked)
            } else if current == RUNNING | NOTIFIED {
                (SCHEDULED, AfterSuspend::Requeue)
            } else {
                // Only the worker that holds the agent RUNNING suspends it;
                // any other word (DONE above all) means an invariant broke
                // elsewhere, and reviving the agent would resume a freed or
                // finished coroutine.
                invariant_broken("an agent that was not running suspended");
            };
            match self
                .word
                .compare_exchange(current, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return after,
                Err(actual) => current = actual,
            }
        }
    }

    /// The running agent yielded its slice: straight back to `SCHEDULED`.
    /// The caller **must** re-queue it.
    pub(crate) fn transition_to_yielded(&self) {
        let previous = self.word.swap(SCHEDULED, Ordering::AcqRel);
        debug_assert!(previous & RUNNING != 0);
    }

    /// The agent finished (or is torn down by its worker at shutdown).
    pub(crate) fn transition_to_done(&self) {
        self.word.store(DONE, Ordering::Release);
    }

    /// The raw word, for diagnostics.
    pub(crate) fn debug_word(&self) -> u32 {
        self.word.load(Ordering::SeqCst)
    }
}

/// Ends the process on a broken runtime invariant: continuing could resume a
/// coroutine twice or use a freed cell (house style: a broken runtime
/// invariant aborts).
#[cold]
#[inline(never)]
pub(crate) fn invariant_broken(what: &str) -> ! {
    eprintln!("erlangen: runtime invariant broken: {what}; aborting");
    std::process::abort()
}
