//! Reclaim: a dead agent's cell goes back to the worker that allocated it,
//! to be freed there.
//!
//! The system allocator (glibc's malloc) frees a block into the arena it
//! came from, under that arena's lock. When agents spawned on one worker die
//! on another (spawn churn with stealing), every free then contends with the
//! spawner's next allocations: spawn churn on two workers ran at twice the
//! cost of one (benches/ANALYSIS.md). Sending the last reference home makes
//! every cell die on the thread that allocated it, the allocator's fast path.
//!
//! Protocol:
//! 1. A worker that finished an agent born on another worker, and holds the
//!    last reference to its cell, appends it to its local batch for that
//!    worker ([`ReturnBatches::give`]).
//! 2. A full batch (`RECLAIM_BATCH_LEN`) moves under the home's lock onto its
//!    [`Returned`] list; if that list already holds `RECLAIM_PENDING_MAX`
//!    cells (its worker is busy in one long agent), the batch is dropped
//!    where it is instead: memory stays bounded.
//! 3. Each worker frees its `Returned` list on its fairness tick and before
//!    it parks ([`ReturnBatches::free_returned`]).
//! 4. A worker about to park first hands over its partial batches (step 2),
//!    so no cell waits for a worker that sleeps.
//!
//! A reference count read at step 1 may be stale (another thread may drop a
//! `Pid` at the same time); the cell is then freed by whoever drops last,
//! wherever that is. Nothing depends on it but speed.

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::Shared;
use crate::agent::AgentCell;
use crate::config::{RECLAIM_BATCH_LEN, RECLAIM_PENDING_MAX};
use crate::sync::lock;

/// Cells returned to one worker, to be freed by it (step 3).
#[derive(Debug, Default)]
pub(crate) struct Returned {
    cells: Mutex<Vec<Arc<AgentCell>>>,
    /// Length of `cells`, written under its lock, read without it.
    len: AtomicUsize,
}

/// One worker's side: a batch per other worker, and a spare list to free
/// returned cells into without giving up either list's capacity.
#[derive(Debug)]
pub(crate) struct ReturnBatches {
    batches: RefCell<Vec<Vec<Arc<AgentCell>>>>,
    spare: RefCell<Vec<Arc<AgentCell>>>,
}

impl ReturnBatches {
    /// Empty batches for a runtime of `workers` workers.
    pub(crate) fn new(workers: usize) -> ReturnBatches {
        ReturnBatches {
            batches: RefCell::new((0..workers).map(|_| Vec::new()).collect()),
            spare: RefCell::new(Vec::new()),
        }
    }

    /// Step 1: `cell` finished on worker `here`; send it home if it was born
    /// elsewhere and this is its last reference, else drop it.
    pub(crate) fn give(&self, shared: &Shared, here: usize, cell: Arc<AgentCell>) {
        let born = cell.born_on();
        if born == here || born >= shared.workers.len() || Arc::strong_count(&cell) != 1 {
            return;
        }
        let full = {
            let mut batches = self.batches.borrow_mut();
            batches[born].push(cell);
            batches[born].len() >= RECLAIM_BATCH_LEN
        };
        if full {
            self.hand_over(shared, born);
        }
    }

    /// Step 2.
    fn hand_over(&self, shared: &Shared, to: usize) {
        let mut batches = self.batches.borrow_mut();
        let batch = &mut batches[to];
        if batch.is_empty() {
            return;
        }
        let home = &shared.workers[to].returned;
        // Relaxed: a bound, not a synchronisation; the list is read under
        // its lock.
        if home.len.load(Ordering::Relaxed) >= RECLAIM_PENDING_MAX {
            batch.clear();
            return;
        }
        let mut cells = lock(&home.cells);
        cells.append(batch);
        home.len.store(cells.len(), Ordering::Relaxed);
    }

    /// Step 4: hands every partial batch over.
    pub(crate) fn hand_over_all(&self, shared: &Shared) {
        let workers = self.batches.borrow().len();
        for to in 0..workers {
            self.hand_over(shared, to);
        }
    }

    /// Step 3: frees the cells returned to worker `here`.
    pub(crate) fn free_returned(&self, shared: &Shared, here: usize) {
        let home = &shared.workers[here].returned;
        if home.len.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut spare = self.spare.borrow_mut();
        {
            let mut cells = lock(&home.cells);
            std::mem::swap(&mut *cells, &mut *spare);
            home.len.store(0, Ordering::Relaxed);
        }
        // Outside the lock: the cells' destructors run here.
        spare.clear();
    }
}
