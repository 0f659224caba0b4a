//! `PoliteSpin`: waiting for work without sleeping, and without keeping the
//! core from a thread that needs it.
//!
//! An idle worker, or a node's event loop after activity, polls for a
//! while before it sleeps in the kernel: work that comes meanwhile is taken
//! without a thread wake (5–20 µs each on a small VM). Between polls it
//! yields the core (`sched_yield`), so that a thread that shares the core
//! runs at once. On a machine with more runnable threads than cores, a
//! yield hands the core to another thread for a whole time slice
//! (milliseconds), which is worse than sleeping (a woken sleeper preempts):
//!
//! 1. Each yield is timed. One that took longer than
//!    `config::YIELD_CONTENDED` means the core is contended.
//! 2. Then the spin ends at once, and for `config::CONTENDED_BACKOFF` every
//!    spin of this `PoliteSpin` ends before it begins: its thread does what
//!    it did without it (an idle worker spins without yielding, then
//!    parks; a node's event loop sleeps in `epoll_wait` at once).
//! 3. After the backoff it tries again (a machine's load changes).

use std::time::{Duration, Instant};

use crate::config::{CONTENDED_BACKOFF, YIELD_CONTENDED};

/// One thread's polite spin (module docs).
///
/// ```
/// use std::time::Duration;
/// let mut spin = erlangen_runtime::PoliteSpin::new();
/// let started = std::time::Instant::now();
/// let mut rounds = 0;
/// while spin.keep_going(started, Duration::from_micros(50)) {
///     rounds += 1;
/// }
/// assert!(rounds > 0 || spin.is_contended());
/// ```
#[derive(Debug, Default)]
pub struct PoliteSpin {
    /// Until when spins end before they begin (step 2).
    contended_until: Option<Instant>,
}

impl PoliteSpin {
    /// A spin that has seen no contention yet.
    pub fn new() -> PoliteSpin {
        PoliteSpin::default()
    }

    /// Whether the core was found contended within the backoff.
    pub fn is_contended(&self) -> bool {
        self.contended_until
            .is_some_and(|until| Instant::now() < until)
    }

    /// Yields the core once, unless the spin that began at `started` has
    /// lasted `limit` or the core is contended (steps 1 and 2); says
    /// whether to poll again.
    pub fn keep_going(&mut self, started: Instant, limit: Duration) -> bool {
        let before = Instant::now();
        if before.duration_since(started) >= limit {
            return false;
        }
        if let Some(until) = self.contended_until {
            if before < until {
                return false;
            }
            self.contended_until = None;
        }
        std::thread::yield_now();
        let after = Instant::now();
        if after.duration_since(before) > YIELD_CONTENDED {
            self.contended_until = Some(after + CONTENDED_BACKOFF);
            return false;
        }
        true
    }
}
