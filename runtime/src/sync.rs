//! The one place that chooses between `std` atomics and loom's.
//!
//! The agent state word (agent/state.rs) and the parking flag
//! (scheduler/idle.rs) import their atomics from here. Under `--cfg loom`
//! they are loom's, and the crate's unit tests are the loom models
//! (`RUSTFLAGS="--cfg loom" cargo test --release -p erlangen-runtime --lib`),
//! which explore every interleaving of a waker against a suspending worker.
//! Nothing else in the crate runs under that cfg.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicUsize, Ordering};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicUsize, Ordering};

/// Locks `mutex`, ignoring poisoning: runtime code never panics while holding
/// one of its own locks, and agent code never runs under a runtime lock.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// A test-and-set lock for critical sections of a few dozen instructions
/// (the mailbox's push and pop). Compared with `std::sync::Mutex` it skips
/// the poison bookkeeping and unlocks with a plain store instead of a
/// read-modify-write. A waiter spins briefly, then yields its thread, so a
/// preempted holder costs the waiter a time slice at worst, never a hang.
///
/// # Safety
///
/// Rule SPIN: `value` is accessed only through a `SpinGuard`, and at most one
/// guard exists at a time (the `locked` flag, acquired with Acquire and
/// released with Release, orders the accesses).
pub(crate) struct SpinLock<T> {
    /// Set while a guard exists.
    locked: std::sync::atomic::AtomicBool,
    /// The protected value (rule SPIN).
    value: std::cell::UnsafeCell<T>,
}

// SAFETY: rule SPIN gives exclusive access to `value` to one thread at a
// time, so sharing the lock shares `T` only by moving access: `T: Send`
// suffices, as for `Mutex`.
unsafe impl<T: Send> Sync for SpinLock<T> {}

impl<T: std::fmt::Debug> std::fmt::Debug for SpinLock<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpinLock").finish_non_exhaustive()
    }
}

/// Exclusive access to a `SpinLock`'s value.
///
/// Like `MutexGuard`, it is `!Send` (it must be released by the thread that
/// took the lock, which the spin loop does not need but callers expect) and
/// `Sync` only if `T` is: a shared guard hands out `&T`. Without the marker
/// the auto traits would follow `&SpinLock<T>`, which is `Sync` whenever
/// `T: Send`, so a `&SpinGuard` could carry `&T` of a `!Sync` `T` (a
/// `Cell`) to other threads.
pub(crate) struct SpinGuard<'a, T> {
    /// The lock held.
    lock: &'a SpinLock<T>,
    /// Opts out of the auto traits (see above).
    _not_send_sync: std::marker::PhantomData<*const ()>,
}

// SAFETY: sharing a guard shares only `&T` (Deref), which is sound across
// threads exactly when `T: Sync`.
unsafe impl<T: Sync> Sync for SpinGuard<'_, T> {}

impl<T> SpinLock<T> {
    /// An unlocked lock.
    pub(crate) fn new(value: T) -> SpinLock<T> {
        SpinLock {
            locked: std::sync::atomic::AtomicBool::new(false),
            value: std::cell::UnsafeCell::new(value),
        }
    }

    /// Takes the lock.
    #[inline]
    pub(crate) fn lock(&self) -> SpinGuard<'_, T> {
        // Acquire pairs with the Release in `SpinGuard::drop`.
        if self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended();
        }
        SpinGuard {
            lock: self,
            _not_send_sync: std::marker::PhantomData,
        }
    }

    #[cold]
    fn lock_contended(&self) {
        let mut spins = 0u32;
        loop {
            if !self.locked.load(Ordering::Relaxed)
                && self
                    .locked
                    .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return;
            }
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }
}

impl<T> std::ops::Deref for SpinGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: rule SPIN: this guard is the only access.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> std::ops::DerefMut for SpinGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: rule SPIN: this guard is the only access.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    fn drop(&mut self) {
        // Release publishes the guarded writes to the next holder.
        self.lock.locked.store(false, Ordering::Release);
    }
}
