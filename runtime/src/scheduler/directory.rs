//! `directory`: every runtime of the process, by id, so that a [`Pid`] of
//! one runtime handed to another reaches the agent through its own runtime.
//!
//! A pid may travel anywhere a value can (inside a message, through a
//! channel, a global), so any runtime may be asked to send to, kill, link
//! or monitor an agent of another one. Queueing such an agent on the wrong
//! runtime's workers would resume a started coroutine on a foreign thread
//! and let its runtime free the cell under the other's queues (issue 12).
//! So every cell records the id of the runtime that spawned it, and
//! `Shared::wake` hands a foreign cell to its own runtime, found here, as a
//! wake from outside any worker (as `Runtime::send` from a plain thread).
//! Erlang does the same with a pid of another node: it is delivered by that
//! node; the nodes crate does it over a socket.
//!
//! # Protocol
//!
//! 1. `Builder::build` registers the new runtime's shared state (a `Weak`:
//!    the directory never keeps a runtime alive).
//! 2. A wake of a foreign cell looks its runtime up, upgrades the `Weak`
//!    (failing once the runtime's last handle is gone), and wakes the cell
//!    there with no worker context.
//! 3. `Runtime::drop` removes the entry before it tears the runtime down; a
//!    wake that upgraded just before that queues the agent on a runtime that
//!    no longer runs agents, which only leaves an inert task in a queue that
//!    shutdown empties without dereferencing it (LIVE-QUEUED step 4).
//!
//! [`Pid`]: crate::Pid

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use super::Shared;
use crate::sync::lock;

/// Ids handed out so far; 0 is never an id.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The live runtimes of the process.
static RUNTIMES: Mutex<Vec<(u64, Weak<Shared>)>> = Mutex::new(Vec::new());

/// A fresh runtime id, unique in the process and never reused.
pub(crate) fn next_id() -> u64 {
    // Relaxed: only uniqueness matters.
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// Step 1.
pub(crate) fn insert(shared: &Arc<Shared>) {
    lock(&RUNTIMES).push((shared.id, Arc::downgrade(shared)));
}

/// Step 2: the runtime with `id`, while it is alive.
pub(crate) fn lookup(id: u64) -> Option<Arc<Shared>> {
    let runtimes = lock(&RUNTIMES);
    runtimes
        .iter()
        .find(|(entry, _)| *entry == id)
        .and_then(|(_, shared)| shared.upgrade())
}

/// Step 3.
pub(crate) fn remove(id: u64) {
    lock(&RUNTIMES).retain(|(entry, _)| *entry != id);
}
