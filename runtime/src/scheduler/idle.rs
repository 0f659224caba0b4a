//! Idle workers: who is searching, who is parked, and whom to wake.
//!
//! # The no-lost-wake-up argument
//!
//! A worker parks only after this sequence (worker.rs `park`):
//! 1. it sets its `parked` flag and bumps `n_parked`, then issues a SeqCst
//!    fence;
//! 2. it looks once more at every queue it could take work from (its inbox,
//!    the injector, every other worker's stealable deque) and at shutdown;
//!    if it sees anything it clears the flag and goes back to work;
//! 3. only then does it call `thread::park`.
//!
//! A waker does the mirror image: it pushes the agent onto a queue, issues a
//! SeqCst fence, then reads the flag (or `n_parked`) and calls `unpark` if it
//! is set. The two fences are totally ordered: either the worker's fence comes
//! first, and the waker reads `parked == true` and unparks; or the waker's
//! comes first, and the worker's re-check at step 2 sees the pushed agent.
//! `thread::unpark` before `thread::park` leaves a token that makes the park
//! return at once, so the window between steps 2 and 3 is covered too.
//!
//! # Cost on the busy path
//!
//! A wake of an agent whose home worker is busy is a queue push, a fence and
//! one load of a flag that is `false`: no system call. A wake of a parked
//! thread (2.5–46 µs here) happens only when the worker really sleeps. Work
//! that any worker may take (a new agent) wakes a parked worker only if no
//! worker is searching already (the Go and tokio "searching worker" rule).

use std::sync::OnceLock;
use std::thread::Thread;

use crate::sync::{fence, AtomicBool, AtomicUsize, Ordering};

/// One worker's parking spot.
#[derive(Debug)]
pub(crate) struct Parker {
    /// Set between step 1 and the end of the park.
    parked: AtomicBool,
    /// The worker thread, set when it starts.
    thread: OnceLock<Thread>,
}

impl Parker {
    /// A parker whose thread is not yet known.
    pub(crate) fn new() -> Parker {
        Parker {
            parked: AtomicBool::new(false),
            thread: OnceLock::new(),
        }
    }

    /// Records the calling thread as this parker's owner.
    pub(crate) fn bind_current_thread(&self) {
        let _ = self.thread.set(std::thread::current());
    }

    /// Step 1 (worker side).
    pub(crate) fn announce(&self, idle: &Idle) {
        self.parked.store(true, Ordering::SeqCst);
        idle.n_parked.fetch_add(1, Ordering::SeqCst);
        // Pairs with the waker's fence in `wake_if_parked` / `notify_one`.
        fence(Ordering::SeqCst);
    }

    /// Undoes step 1 after a park (or a re-check that found work).
    pub(crate) fn retract(&self, idle: &Idle) {
        self.parked.store(false, Ordering::Relaxed);
        idle.n_parked.fetch_sub(1, Ordering::SeqCst);
    }

    /// Waker side: call after pushing work only this worker may take.
    pub(crate) fn wake_if_parked(&self) {
        // Pairs with the fence in `announce`.
        fence(Ordering::SeqCst);
        if self.parked.load(Ordering::SeqCst) {
            self.unpark();
        }
    }

    /// Wakes the thread unconditionally (shutdown, earlier timer).
    pub(crate) fn unpark(&self) {
        if let Some(thread) = self.thread.get() {
            thread.unpark();
        }
    }

    /// Whether the worker is parked or about to park.
    pub(crate) fn is_parked(&self) -> bool {
        self.parked.load(Ordering::SeqCst)
    }
}

/// Counts shared by all workers.
#[derive(Debug, Default)]
pub(crate) struct Idle {
    /// Workers spinning in search of work.
    pub(crate) n_searching: AtomicUsize,
    /// Workers parked or about to park.
    pub(crate) n_parked: AtomicUsize,
}

impl Idle {
    /// Waker side for work any worker may take: whether to wake a parked
    /// worker. Call after pushing the work.
    pub(crate) fn should_wake_one(&self) -> bool {
        // Pairs with the fence in `Parker::announce`.
        fence(Ordering::SeqCst);
        self.n_parked.load(Ordering::SeqCst) > 0 && self.n_searching.load(Ordering::SeqCst) == 0
    }
}
