//! The watchdog: one thread per runtime that watches its workers from
//! outside.
//!
//! Started agents never leave their worker, so an agent that holds its
//! worker (a computation without runtime calls, a blocking call made the
//! wrong way) holds every agent placed there. The watchdog cannot preempt
//! it, but it makes it visible and keeps timers on time.
//!
//! # Protocol
//!
//! 1. Each worker, around every resume, bumps its `resumes` count and
//!    stores the running agent's serial in `running` (0 once it switched
//!    out): two plain stores, no clock read on the worker.
//! 2. Every `WATCHDOG_TICK` the watchdog samples both. A worker whose count
//!    has not moved while an agent runs has been held by that agent since
//!    the sample where the count last moved.
//! 3. Held longer than the configured threshold: one `tracing` warning per
//!    slice, naming the agent (serial and registered names), the worker,
//!    how long, and how many agents wait in the worker's shared queues; the
//!    agent's `AgentStats::watchdog_warnings` counts it.
//! 4. A held worker cannot fire its own timers: the watchdog fires its due
//!    ones (`Shared::fire_due_timers` from outside), so a deadline reaches
//!    its agent's queue on time.
//! 5. At shutdown the thread sees the flag and exits; the runtime joins it.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Shared;
use crate::config::WATCHDOG_TICK;

/// What the watchdog remembers of one worker.
#[derive(Clone, Copy)]
struct Sample {
    resumes: u64,
    since: Instant,
    warned: bool,
}

/// The thread's body (steps 2 to 5).
pub(crate) fn run(shared: Arc<Shared>) {
    let threshold = shared.config.watchdog_threshold;
    let now = Instant::now();
    let mut samples: Vec<Sample> = shared
        .workers
        .iter()
        .map(|_| Sample {
            resumes: u64::MAX,
            since: now,
            warned: false,
        })
        .collect();
    let mut due = Vec::new();
    while !shared.shutdown.load(Ordering::Acquire) {
        std::thread::park_timeout(WATCHDOG_TICK);
        let now = Instant::now();
        for (index, worker) in shared.workers.iter().enumerate() {
            let resumes = worker.resumes.load(Ordering::Relaxed);
            let running = worker.running.load(Ordering::Relaxed);
            let sample = &mut samples[index];
            if resumes != sample.resumes || running == 0 {
                *sample = Sample {
                    resumes,
                    since: now,
                    warned: false,
                };
                continue;
            }
            // Step 4: the worker is held; fire its due timers for it.
            shared.fire_due_timers(index, None, &mut due);
            let held = now.duration_since(sample.since);
            if held >= threshold && !sample.warned {
                sample.warned = true;
                warn(&shared, index, running, held);
            }
        }
    }
}

/// Step 3.
fn warn(shared: &Shared, worker: usize, serial: u64, held: Duration) {
    let cell = shared.live.find(serial, shared.id);
    let names = cell
        .as_ref()
        .and_then(|cell| {
            cell.links
                .try_lock()
                .ok()
                .map(|links| links.names.join(", "))
        })
        .unwrap_or_default();
    if let Some(cell) = &cell {
        cell.watchdog_warnings.fetch_add(1, Ordering::Relaxed);
    }
    let shared_worker = &shared.workers[worker];
    let waiting = shared_worker.inbox.len() + shared_worker.stealer.len();
    tracing::warn!(
        agent = format_args!("<{serial:x}>"),
        names = %names,
        worker,
        held_ms = held.as_millis() as u64,
        waiting,
        "erlangen: an agent has held its worker without a runtime call; agents placed there wait \
         (use Ctx::blocking for blocking work, Ctx::yield_now in long computations)"
    );
}
