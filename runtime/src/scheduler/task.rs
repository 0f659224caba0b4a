//! `Task`: what the run queues hold, a handle to a scheduled agent that
//! does not count as a reference.
//!
//! A message wakes an agent by queueing it; counting that as a reference
//! (an `Arc` clone on every wake and a drop after every run) cost two atomic
//! read-modify-writes per message, about a tenth of a same-worker round
//! trip. The queues need no count: the live table (live.rs) owns every
//! agent from its spawn until `finish`, and an agent is queued only between
//! those two points.
//!
//! # Invariant LIVE-QUEUED
//!
//! 1. A `Task` is made only for an agent in the live table that is not
//!    finishing: at spawn, after `LiveTable::insert`, or by the waker whose
//!    `transition_to_scheduled` moved the agent out of `WAITING` (a
//!    finishing agent is `RUNNING` or `DONE`, and that transition schedules
//!    neither). A worker re-queues the task it holds (a yield, or a wake
//!    during the run); it never makes a second one.
//! 2. A scheduled agent has exactly one `Task` in one queue (the state word
//!    lets one waker schedule it), which the worker that runs it consumes.
//! 3. `finish` runs only on the worker that holds that `Task`, after it
//!    took the agent out of every queue; it removes the agent from the live
//!    table last, and the `Task` is not used after `finish`.
//! 4. At shutdown, queues are emptied without dereferencing their tasks:
//!    they only hold a pointer.
//!
//! So while a `Task` exists, the live table's `Arc` keeps its cell alive.

use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::Arc;

use crate::agent::AgentCell;

/// A queued agent (invariant LIVE-QUEUED).
#[derive(Debug)]
pub(crate) struct Task {
    cell: NonNull<AgentCell>,
}

// SAFETY: a `Task` is a shared reference to an `AgentCell` (which is Sync)
// kept alive by the live table (LIVE-QUEUED); it may be used from any thread.
unsafe impl Send for Task {}
// SAFETY: as above.
unsafe impl Sync for Task {}

impl Task {
    /// A task for `cell`.
    ///
    /// # Safety
    ///
    /// LIVE-QUEUED step 1: `cell` is in the live table and not finishing,
    /// and the caller queues this task as the agent's only one (step 2).
    pub(crate) unsafe fn new(cell: &Arc<AgentCell>) -> Task {
        Task {
            cell: NonNull::from(&**cell),
        }
    }

    /// A counted reference to the cell.
    pub(crate) fn to_arc(&self) -> Arc<AgentCell> {
        // SAFETY: LIVE-QUEUED: the live table holds an `Arc` to this cell.
        unsafe { counted(self.as_ptr()) }
    }

    /// The cell's address.
    pub(crate) fn as_ptr(&self) -> *const AgentCell {
        self.cell.as_ptr()
    }
}

impl Deref for Task {
    type Target = AgentCell;

    fn deref(&self) -> &AgentCell {
        // SAFETY: LIVE-QUEUED: the live table owns the cell for as long as
        // this task exists, and only shared references are made.
        unsafe { self.cell.as_ref() }
    }
}

/// A new counted reference to a live agent's cell.
///
/// # Safety
///
/// `cell` points at a cell that an `Arc` keeps alive for the whole call
/// (the live table's, or the caller's own).
pub(crate) unsafe fn counted(cell: *const AgentCell) -> Arc<AgentCell> {
    // SAFETY: the caller's obligation: the pointer is an `Arc`'s and its
    // count is at least one; we add the reference that `from_raw` takes over.
    unsafe {
        Arc::increment_strong_count(cell);
        Arc::from_raw(cell)
    }
}
