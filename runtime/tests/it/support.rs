//! Helpers shared by the integration tests.

use std::time::Duration;

use erlangen_runtime::{Ctx, Down, Message, Runtime};

/// A hang guard: generous, never a performance threshold.
pub(crate) const HANG_GUARD: Duration = Duration::from_secs(30);

/// A runtime with `workers` workers.
pub(crate) fn runtime(workers: usize) -> Runtime {
    Runtime::builder()
        .workers(workers)
        .build()
        .expect("runtime starts")
}

/// Receives the next message, failing the test after the hang guard.
pub(crate) fn recv(ctx: &Ctx) -> Message {
    ctx.receive_timeout(HANG_GUARD)
        .expect("a message arrives before the hang guard")
}

/// Receives the next message as a `T`.
pub(crate) fn recv_as<T: 'static>(ctx: &Ctx) -> T {
    match recv(ctx).downcast::<T>() {
        Ok(value) => value,
        Err(message) => panic!("expected a {}, got {message:?}", std::any::type_name::<T>()),
    }
}

/// Receives the next `Down` notification, skipping nothing.
pub(crate) fn recv_down(ctx: &Ctx) -> Down {
    recv_as::<Down>(ctx)
}

/// Counts its drops into the shared counter: to check that values are
/// dropped, and dropped once.
#[derive(Debug)]
pub(crate) struct DropCounter(pub(crate) std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}
