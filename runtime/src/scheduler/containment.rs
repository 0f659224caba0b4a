//! Containment: user code that runs on a worker outside any agent must not
//! end the worker.
//!
//! An agent's own code runs under the `catch_unwind` of its body, so its
//! panics become exit reasons. But a worker also drops user values outside
//! any agent: the value an agent returned (when its last holder is the
//! exit path), messages left in a dead agent's mailbox, a message refused
//! by a full or closed mailbox, a `Down` or exit reason carrying a returned
//! value, an unstarted agent's closure that never runs, and a panic payload.
//! A destructor that panics there used to unwind the worker thread itself,
//! leaving its agents unrunnable and its shutdown unable to finish.
//!
//! [`Shared::drop_contained`] drops such a value under `catch_unwind`; a
//! panic is logged with the agent the value belonged to and counted
//! ([`crate::Runtime::contained_panics`]). A panic payload whose own drop
//! panics is dropped the same way, a bounded number of times, then leaked.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;

use super::Shared;
use crate::config::PAYLOAD_DROP_TRIES_MAX;
use crate::exit::panic_message;
use crate::mailbox::{DataLane, Signal};

/// What a closed mailbox held: its control lane and its data lane.
pub(crate) type Leftovers = (std::collections::VecDeque<Signal>, DataLane);

impl Shared {
    /// Drops `value`, which belonged to agent `serial` (0: to none in
    /// particular), containing a panic of its destructor.
    pub(crate) fn drop_contained<T>(&self, value: T, serial: u64) {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(value))) {
            self.contained(payload, serial, "a destructor");
        }
    }

    /// Drops a dead agent's leftover messages and signals one by one, each
    /// contained: dropping the lanes whole would run the second panicking
    /// destructor while the first one unwinds, which aborts the process.
    #[cold]
    pub(crate) fn drop_leftovers(&self, leftovers: Option<Leftovers>, serial: u64) {
        let Some((mut control, mut data)) = leftovers else {
            return;
        };
        while let Some(signal) = control.pop_front() {
            self.drop_contained(signal, serial);
        }
        while let Some(message) = data.pop_front() {
            self.drop_contained(message, serial);
        }
    }

    /// Drops each of `values` on its own, contained (see `drop_leftovers`).
    pub(crate) fn drop_each<T>(&self, values: impl IntoIterator<Item = T>, serial: u64) {
        for value in values {
            self.drop_contained(value, serial);
        }
    }

    /// Records a panic of user code that ran on a worker outside an agent
    /// (`what` says which code), then drops its payload, contained too.
    pub(crate) fn contained(&self, payload: Box<dyn Any + Send>, serial: u64, what: &str) {
        self.contained_panics.fetch_add(1, Ordering::Relaxed);
        tracing::error!(
            agent = format_args!("<{serial:x}>"),
            "erlangen: {what} panicked outside its agent ({}); the panic was contained",
            panic_message(&*payload)
        );
        drop_payload(payload);
    }
}

/// Drops a panic payload whose destructor may itself panic: each new
/// payload is dropped in turn, at most `PAYLOAD_DROP_TRIES_MAX` times, and
/// the last one is leaked.
pub(crate) fn drop_payload(payload: Box<dyn Any + Send>) {
    let mut payload = payload;
    for _ in 0..PAYLOAD_DROP_TRIES_MAX {
        match catch_unwind(AssertUnwindSafe(move || drop(payload))) {
            Ok(()) => return,
            Err(next) => payload = next,
        }
    }
    std::mem::forget(payload);
}
