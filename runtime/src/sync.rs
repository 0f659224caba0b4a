//! The one place that chooses between `std` atomics and loom's.
//!
//! The agent state word (agent/state.rs) and the parking flag
//! (scheduler/idle.rs) import their atomics from here. Under `--cfg loom` the
//! crate compiles only those protocols and their loom models
//! (`RUSTFLAGS="--cfg loom" cargo test --release -p erlangen-runtime --lib`),
//! which explore every interleaving of a waker against a suspending worker.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicUsize, Ordering};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicUsize, Ordering};

/// Locks `mutex`, ignoring poisoning: runtime code never panics while holding
/// one of its own locks, and agent code never runs under a runtime lock.
#[cfg(not(loom))]
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}
