//! `BlockingPool`: threads for work that would block a worker (blocking
//! I/O, `std::thread::sleep`, long computations), so that the agent that
//! asked for it waits suspended on its own worker while other agents run.
//!
//! # Protocol ([`crate::Ctx::blocking`])
//!
//! 1. The agent puts a job on the pool's queue; a thread takes it (a new
//!    thread is started if none is idle and fewer than
//!    `BLOCKING_THREADS_MAX` exist).
//! 2. The agent suspends (`Wait`) until the job's slot holds a result,
//!    looking again after each resume; a kill wakes it and takes effect at
//!    once (the job runs to its end; its result is dropped).
//! 3. The thread runs the job under `catch_unwind`, stores the result, and
//!    wakes the agent through its state word, as a message would
//!    (`Shared::wake` from outside any worker): the agent never changes
//!    thread.
//! 4. At shutdown the pool's threads finish their job and exit; the runtime
//!    does not wait for a job that never ends (its threads are detached).

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};

use crate::config::BLOCKING_THREADS_MAX;
use crate::sync::lock;

/// A job: runs on a pool thread.
pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// The queue and its threads.
#[derive(Default)]
pub(crate) struct BlockingPool {
    state: Mutex<PoolState>,
    available: Condvar,
}

impl std::fmt::Debug for BlockingPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingPool").finish_non_exhaustive()
    }
}

/// Guarded by the pool's lock.
#[derive(Default)]
struct PoolState {
    jobs: VecDeque<Job>,
    threads: usize,
    idle: usize,
    shutdown: bool,
}

impl BlockingPool {
    /// Step 1. `pool` is this pool, shared with the threads it starts.
    pub(crate) fn submit(pool: &std::sync::Arc<BlockingPool>, job: Job) -> Result<(), Job> {
        let mut state = lock(&pool.state);
        if state.shutdown {
            return Err(job);
        }
        state.jobs.push_back(job);
        if state.idle > 0 {
            pool.available.notify_one();
            return Ok(());
        }
        if state.threads < BLOCKING_THREADS_MAX {
            let worker_pool = pool.clone();
            let started = std::thread::Builder::new()
                .name("erlangen-blocking".to_owned())
                .spawn(move || worker_pool.serve());
            if started.is_ok() {
                state.threads += 1;
            }
        }
        // Otherwise the job waits for a busy thread to finish.
        Ok(())
    }

    /// A pool thread: takes jobs until shutdown (step 3).
    fn serve(&self) {
        loop {
            let job = {
                let mut state = lock(&self.state);
                loop {
                    if let Some(job) = state.jobs.pop_front() {
                        break job;
                    }
                    if state.shutdown {
                        state.threads -= 1;
                        return;
                    }
                    state.idle += 1;
                    state = self
                        .available
                        .wait(state)
                        .unwrap_or_else(|e| e.into_inner());
                    state.idle -= 1;
                }
            };
            job();
        }
    }

    /// Step 4.
    pub(crate) fn shut_down(&self) {
        lock(&self.state).shutdown = true;
        self.available.notify_all();
    }
}
