//! Loom models of the two wake-up protocols (compiled only under
//! `--cfg loom`; run with
//! `RUSTFLAGS="--cfg loom" cargo test --release -p erlangen-runtime --lib`).
//!
//! 1. A sender racing a receiver that is deciding to suspend, on the real
//!    state word (agent/state.rs): the message is never lost and the agent
//!    is never queued twice.
//! 2. A waker racing a worker that is deciding to park, with the fence
//!    protocol of scheduler/idle.rs: the worker never sleeps with work
//!    visible to it.

#![cfg(test)]

use crate::sync::{fence, AtomicBool, AtomicUsize, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;

use crate::agent::state::{AfterSuspend, State};

/// Protocol 1, for one message arriving while the agent runs and decides
/// to wait.
#[test]
fn message_racing_a_suspend_is_never_lost_nor_scheduled_twice() {
    loom::model(|| {
        let state = Arc::new(State::new_scheduled());
        let mailbox = Arc::new(Mutex::new(Vec::<u32>::new()));
        // The worker pops the agent.
        assert!(state.transition_to_running());

        let sender = {
            let state = state.clone();
            let mailbox = mailbox.clone();
            thread::spawn(move || {
                mailbox.lock().unwrap().push(7);
                // Returns whether the sender must queue the agent.
                state.transition_to_scheduled()
            })
        };

        // The agent looks at its mailbox, then suspends; the worker then
        // publishes WAITING unless notified.
        let seen_before_suspend = mailbox.lock().unwrap().pop();
        let requeued = match seen_before_suspend {
            Some(_) => false,
            None => state.transition_to_waiting() == AfterSuspend::Requeue,
        };
        let scheduled_by_sender = sender.join().unwrap();

        if seen_before_suspend.is_none() {
            // The message is still queued: exactly one side must have made
            // the agent runnable again.
            assert_eq!(mailbox.lock().unwrap().len(), 1);
            assert!(requeued ^ scheduled_by_sender, "lost or doubled wake-up");
            // And whoever queued it can run it.
            assert!(state.transition_to_running());
        } else {
            // The agent took the message while running; the sender at most
            // flagged it (no second queue entry while it still runs).
            assert!(!scheduled_by_sender);
        }
    });
}

/// Protocol 2: announce, fence, re-check, park (worker) against push,
/// fence, read the flag, unpark (waker).
#[test]
fn waker_racing_a_parking_worker_never_leaves_it_asleep_with_work() {
    loom::model(|| {
        let parked = Arc::new(AtomicBool::new(false));
        let queue = Arc::new(AtomicUsize::new(0));

        let worker = {
            let parked = parked.clone();
            let queue = queue.clone();
            thread::spawn(move || {
                parked.store(true, Ordering::SeqCst);
                fence(Ordering::SeqCst);
                if queue.load(Ordering::SeqCst) == 0 {
                    // Park until unparked (a token left by an early unpark
                    // makes this return at once).
                    thread::park();
                }
                parked.store(false, Ordering::Relaxed);
                assert_eq!(queue.load(Ordering::SeqCst), 1, "woke without the work");
            })
        };

        queue.store(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if parked.load(Ordering::SeqCst) {
            worker.thread().unpark();
        } else {
            // The worker's re-check will see the work; but it may still be
            // about to park if we read `false` before its store: then its
            // fence comes after ours and its re-check sees the queue.
        }
        worker.join().unwrap();
    });
}

/// Protocol 1 with the mailbox's lock-free emptiness check (mailbox.rs
/// `queued`): a message pushed while the agent is already notified (or
/// scheduled) must still be seen. The sender then finds nothing to change in
/// the state word, so only its read-modify-write on the word orders its push
/// before the agent's next look.
#[test]
fn message_pushed_while_already_notified_is_seen_by_the_next_run() {
    loom::model(|| {
        let state = Arc::new(State::new_scheduled());
        let queued = Arc::new(AtomicUsize::new(0));
        assert!(state.transition_to_running());
        // An earlier sender already notified the running agent.
        assert!(!state.transition_to_scheduled());

        let sender = {
            let state = state.clone();
            let queued = queued.clone();
            thread::spawn(move || {
                queued.store(1, Ordering::Release);
                state.transition_to_scheduled()
            })
        };

        // The agent runs until it sees the message or parks for good.
        let mut seen = false;
        let mut parked = false;
        for _ in 0..3 {
            if queued.load(Ordering::Acquire) == 1 {
                seen = true;
                break;
            }
            match state.transition_to_waiting() {
                AfterSuspend::Requeue => assert!(state.transition_to_running()),
                AfterSuspend::Parked => {
                    parked = true;
                    break;
                }
            }
        }
        let scheduled_by_sender = sender.join().unwrap();
        if parked && !seen {
            assert!(
                scheduled_by_sender,
                "the message was pushed, nobody will run the agent"
            );
        }
    });
}
