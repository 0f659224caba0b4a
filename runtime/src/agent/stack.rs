//! Agent stacks: slots carved from big slabs, a guard page under each, pooled.
//!
//! # Why not one mapping per stack
//!
//! A stack mapped on its own with an `mprotect` guard costs two kernel
//! mappings (VMAs); at the default `vm.max_map_count` of 65,530 a process
//! stops at about 32,750 stacks (pitfalls.md §3.4). So:
//!
//! 1. **Slabs.** Each size class reserves [`SLAB_SIZE_BYTES`] of address space
//!    with one `mmap(MAP_NORESERVE)` and `MADV_NOHUGEPAGE` (a huge page would
//!    make 2 MiB resident where 4 KiB is touched). Untouched pages cost no RAM.
//! 2. **Guards.** A slot is `[guard page][usable stack]`, the stack growing
//!    down towards its guard. The guard is installed when the slot is first
//!    carved, with `madvise(MADV_GUARD_INSTALL)` (Linux ≥ 6.13), which marks
//!    page-table entries and adds no VMA; slots are carved in batches whose
//!    guards go in one `process_madvise` call (a `madvise` per slot cost a
//!    third of a cold spawn, contending with the other workers' page
//!    faults). Where the kernel refuses it, the documented fallback is an
//!    `mprotect(PROT_NONE)` guard (two VMAs per stack) within a budget of a
//!    quarter of `vm.max_map_count`; past that budget new stacks are
//!    refused and the agent exits with `SystemLimit`.
//!    An unguarded stack is never handed out.
//! 3. **Reuse.** A finished agent's slot goes to its worker's cache (no lock),
//!    overflowing in halves to the class's shared free list; allocation takes
//!    from the cache, then the free list in batches, then carves. In steady
//!    state a spawn makes no system call.
//! 4. **Release.** Slots are never unmapped one by one; the whole pool is
//!    unmapped when the runtime is dropped, after every coroutine is gone.
//!
//! # Bounds
//!
//! Address space: one slab per [`SLAB_SIZE_BYTES`] of live stacks. Kernel
//! mappings: one per slab (plus two per stack in the `mprotect` fallback,
//! capped). Worker caches: [`STACK_CACHE_LEN_MAX`] slots each.

use std::sync::Mutex;

use corosensei::stack::{Stack, StackPointer};

use crate::config::{DISCARD_BATCH_LEN, GUARD_SIZE_BYTES, SLAB_SIZE_BYTES, STACK_CACHE_LEN_MAX};
use crate::sync::lock;

/// Linux's `MADV_GUARD_INSTALL` (not yet in the libc crate).
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// Most ranges in one `process_madvise` call (the kernel's `UIO_MAXIOV`).
const GUARD_BATCH_LEN_MAX: usize = 1024;

/// One stack slot: where it starts (its guard page) and how big it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StackSlot {
    /// Lowest address: the guard page.
    bottom: usize,
    /// Guard plus usable bytes.
    slot_bytes: usize,
}

impl StackSlot {
    /// The guard page's address range, for overflow reporting.
    pub(crate) fn guard_range(&self) -> (usize, usize) {
        (self.bottom, self.bottom + GUARD_SIZE_BYTES)
    }

    /// Usable bytes.
    pub(crate) fn usable_bytes(&self) -> usize {
        self.slot_bytes - GUARD_SIZE_BYTES
    }
}

/// A stack lent to one coroutine. Dropping it (when a suspended coroutine is
/// killed) hands the slot back to the pool's free list.
#[derive(Debug)]
pub(crate) struct PooledStack {
    /// The slot.
    slot: StackSlot,
    /// The pool it came from. Invariant: the pool outlives every stack it
    /// lends (the runtime drops every coroutine before it drops the pool).
    pool: *const StackPool,
}

// SAFETY: a PooledStack is an owned range of memory plus a pointer to the
// pool, whose `release` takes a lock; nothing in it is tied to a thread.
unsafe impl Send for PooledStack {}

impl PooledStack {
    /// The slot, without returning it to the pool.
    pub(crate) fn into_slot(self) -> StackSlot {
        let slot = self.slot;
        std::mem::forget(self);
        slot
    }

    /// The slot this stack occupies.
    pub(crate) fn slot(&self) -> StackSlot {
        self.slot
    }
}

impl Drop for PooledStack {
    fn drop(&mut self) {
        // SAFETY: the pool outlives every stack it lends (field invariant).
        let pool = unsafe { &*self.pool };
        pool.release(self.slot);
    }
}

// SAFETY: `base` is the top of the slot and `limit` its bottom, both
// page-aligned (so aligned to STACK_ALIGNMENT); the slot's lowest page is a
// guard page installed at carve time, and the usable part is at least
// STACK_SIZE_BYTES_MIN (32 KiB) > MIN_STACK_SIZE. The memory stays mapped
// while the PooledStack lives (the pool outlives it).
unsafe impl Stack for PooledStack {
    fn base(&self) -> StackPointer {
        StackPointer::new(self.slot.bottom + self.slot.slot_bytes).expect("slot is mapped")
    }

    fn limit(&self) -> StackPointer {
        StackPointer::new(self.slot.bottom).expect("slot is mapped")
    }
}

/// How guards are installed on this kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GuardMode {
    /// Not yet known: try `MADV_GUARD_INSTALL` first.
    Unknown,
    /// `MADV_GUARD_INSTALL` works.
    Advise,
    /// Fallback: `mprotect` guards, counted against the budget.
    Protect,
}

/// One reserved range of address space.
#[derive(Debug)]
struct Slab {
    /// Start address.
    base: usize,
    /// Length in bytes.
    len: usize,
}

/// Slots of one size.
#[derive(Debug)]
struct SizeClass {
    /// Guard plus usable bytes per slot.
    slot_bytes: usize,
    /// Slots returned and not yet reused.
    free: Vec<StackSlot>,
    /// Every slab of this class; the last is being carved.
    slabs: Vec<Slab>,
    /// Slots carved from the last slab.
    carved: usize,
    /// Slots the last slab holds.
    slab_slots: usize,
}

/// The mutable part of the pool.
#[derive(Debug)]
struct PoolState {
    /// One entry per stack size in use.
    classes: Vec<SizeClass>,
    /// How guards are installed.
    guard_mode: GuardMode,
    /// `mprotect` guards installed (fallback mode only).
    protect_guards: usize,
    /// Most `mprotect` guards allowed.
    protect_budget: usize,
}

/// Counters for introspection and tests.
///
/// ```
/// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
/// rt.run(|_| ()).unwrap();
/// let stats = rt.stack_pool_stats();
/// assert_eq!(stats.slabs, 1);
/// assert!(stats.slots_carved >= 1);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StackPoolStats {
    /// Slabs mapped.
    pub slabs: usize,
    /// Slots ever carved.
    pub slots_carved: usize,
    /// Slots on the shared free lists.
    pub slots_free: usize,
    /// Whether guards use `MADV_GUARD_INSTALL` (else the `mprotect` fallback).
    pub guard_install: bool,
}

/// The runtime's stack allocator.
#[derive(Debug)]
pub(crate) struct StackPool {
    /// Size classes, free lists and slabs.
    state: Mutex<PoolState>,
}

// SAFETY: the raw addresses inside are plain numbers describing mappings the
// pool owns; all access goes through the mutex.
unsafe impl Send for StackPool {}
// SAFETY: as above.
unsafe impl Sync for StackPool {}

impl StackPool {
    /// An empty pool.
    pub(crate) fn new() -> StackPool {
        StackPool {
            state: Mutex::new(PoolState {
                classes: Vec::new(),
                guard_mode: GuardMode::Unknown,
                protect_guards: 0,
                protect_budget: max_map_count() / 4,
            }),
        }
    }

    /// Lends a stack with `usable_bytes` (a multiple of the page size),
    /// taking from `cache` first when it holds slots of that size.
    pub(crate) fn take(&self, usable_bytes: usize, cache: &mut StackCache) -> Option<PooledStack> {
        let slot_bytes = usable_bytes + GUARD_SIZE_BYTES;
        let slot = if cache.slot_bytes == slot_bytes {
            match cache.slots.pop() {
                Some(slot) => slot,
                None => {
                    self.refill(slot_bytes, &mut cache.slots);
                    cache.slots.pop()?
                }
            }
        } else {
            let mut one = Vec::with_capacity(1);
            self.take_batch(slot_bytes, 1, &mut one);
            one.pop()?
        };
        Some(PooledStack {
            slot,
            pool: self as *const StackPool,
        })
    }

    /// Hands a finished coroutine's slot to `cache`, spilling half of the
    /// cache to the shared free list when it is full.
    pub(crate) fn give(&self, slot: StackSlot, cache: &mut StackCache) {
        if slot.slot_bytes != cache.slot_bytes {
            self.release(slot);
            return;
        }
        if cache.slots.len() >= STACK_CACHE_LEN_MAX {
            let spill = cache.slots.split_off(STACK_CACHE_LEN_MAX / 2);
            let mut state = lock(&self.state);
            let class = class_mut(&mut state.classes, slot.slot_bytes);
            class.free.extend(spill);
        }
        cache.slots.push(slot);
    }

    /// Hands a hibernated agent's slot back. It goes to `cache` as is while
    /// the cache has room (the next spawn or wake-up takes it with its pages
    /// still resident); past that, it waits in the cache's discard batch,
    /// whose pages go back to the kernel [`DISCARD_BATCH_LEN`] slots at a
    /// time (`flush_discards`), so that agents which hibernate in numbers
    /// leave no more than a cache's worth of resident stacks.
    pub(crate) fn give_hibernated(&self, slot: StackSlot, cache: &mut StackCache) {
        if slot.slot_bytes != cache.slot_bytes {
            self.discard_run(slot.bottom, slot.slot_bytes);
            self.release(slot);
            return;
        }
        if cache.slots.len() < STACK_CACHE_LEN_MAX {
            cache.slots.push(slot);
            return;
        }
        cache.discard.push(slot);
        if cache.discard.len() >= DISCARD_BATCH_LEN {
            self.flush_discards(cache);
        }
    }

    /// Hands the pages of the cache's discard batch back to the kernel and
    /// the slots to the shared free list. One `madvise` per run of adjacent
    /// slots (each costs a TLB shoot-down on every core the process runs
    /// on): a run's guard pages are inside the range, and `MADV_DONTNEED`
    /// leaves `MADV_GUARD_INSTALL` guards in place (a test below checks
    /// it); with `mprotect` guards each slot goes on its own.
    pub(crate) fn flush_discards(&self, cache: &mut StackCache) {
        if cache.discard.is_empty() {
            return;
        }
        let mode = lock(&self.state).guard_mode;
        cache.discard.sort_unstable_by_key(|slot| slot.bottom);
        let slot_bytes = cache.slot_bytes;
        let mut run_start = cache.discard[0].bottom;
        let mut run_end = run_start + slot_bytes;
        for slot in &cache.discard[1..] {
            if slot.bottom == run_end && mode == GuardMode::Advise {
                run_end += slot_bytes;
            } else {
                self.discard_run(run_start, run_end - run_start);
                run_start = slot.bottom;
                run_end = run_start + slot_bytes;
            }
        }
        self.discard_run(run_start, run_end - run_start);
        let mut state = lock(&self.state);
        class_mut(&mut state.classes, slot_bytes)
            .free
            .append(&mut cache.discard);
    }

    /// Hands the pages of `len` bytes of adjacent slots starting at `bottom`
    /// (a guard page) back to the kernel, guards excepted.
    fn discard_run(&self, bottom: usize, len: usize) {
        // The first guard page is skipped; inner ones (Advise mode only) are
        // left in place by MADV_DONTNEED.
        let from = bottom + GUARD_SIZE_BYTES;
        let len = len - GUARD_SIZE_BYTES;
        // SAFETY: the range lies in slots of a slab the pool keeps mapped,
        // none of which a coroutine runs on (they are free); MADV_DONTNEED
        // on private anonymous memory only makes the next touch read zeros.
        let rc = unsafe { libc::madvise(from as *mut libc::c_void, len, libc::MADV_DONTNEED) };
        debug_assert_eq!(rc, 0, "madvise(MADV_DONTNEED) on free stack slots");
    }

    /// Returns a slot to the shared free list.
    pub(crate) fn release(&self, slot: StackSlot) {
        let mut state = lock(&self.state);
        class_mut(&mut state.classes, slot.slot_bytes)
            .free
            .push(slot);
    }

    /// Moves a worker cache back to the shared free lists (worker exit).
    pub(crate) fn drain_cache(&self, cache: &mut StackCache) {
        self.flush_discards(cache);
        let mut state = lock(&self.state);
        let slot_bytes = cache.slot_bytes;
        class_mut(&mut state.classes, slot_bytes)
            .free
            .append(&mut cache.slots);
    }

    /// Counters.
    pub(crate) fn stats(&self) -> StackPoolStats {
        let state = lock(&self.state);
        let mut stats = StackPoolStats {
            guard_install: state.guard_mode != GuardMode::Protect,
            ..StackPoolStats::default()
        };
        for class in &state.classes {
            stats.slabs += class.slabs.len();
            stats.slots_free += class.free.len();
            stats.slots_carved +=
                class.carved + class.slabs.len().saturating_sub(1) * class.slab_slots;
        }
        stats
    }

    /// Fills `out` with up to half a cache of slots.
    fn refill(&self, slot_bytes: usize, out: &mut Vec<StackSlot>) {
        self.take_batch(slot_bytes, crate::config::STEAL_BATCH_LEN_MAX, out);
    }

    /// Takes up to `n` slots: free ones first, then freshly carved ones.
    fn take_batch(&self, slot_bytes: usize, n: usize, out: &mut Vec<StackSlot>) {
        let mut state = lock(&self.state);
        let state = &mut *state;
        let class = class_mut(&mut state.classes, slot_bytes);
        while out.len() < n {
            match class.free.pop() {
                Some(slot) => out.push(slot),
                None => break,
            }
        }
        while out.len() < n {
            if class.carved == class.slab_slots && !class.map_slab() {
                return;
            }
            let slab = class.slabs.last().expect("a slab was just mapped");
            // Carve what is still wanted from this slab; with
            // MADV_GUARD_INSTALL known to work, all of its guards go in one
            // `process_madvise` (about 40 % cheaper per guard than a
            // `madvise` each on the target machine).
            let count = (n - out.len()).min(class.slab_slots - class.carved);
            let first = slab.base + class.carved * class.slot_bytes;
            if state.guard_mode == GuardMode::Advise
                && install_guards(first, class.slot_bytes, count)
            {
                for i in 0..count {
                    out.push(StackSlot {
                        bottom: first + i * class.slot_bytes,
                        slot_bytes,
                    });
                }
                class.carved += count;
                continue;
            }
            if !install_guard(
                first,
                &mut state.guard_mode,
                &mut state.protect_guards,
                state.protect_budget,
            ) {
                return;
            }
            class.carved += 1;
            out.push(StackSlot {
                bottom: first,
                slot_bytes,
            });
        }
    }
}

/// Installs `count` guard pages, `stride` bytes apart from `first`, with
/// one `process_madvise(MADV_GUARD_INSTALL)` on this process (Linux ≥ 6.13).
/// Returns `false` if the kernel refused any of it: the caller installs them
/// one by one instead (installing a guard twice is harmless).
fn install_guards(first: usize, stride: usize, count: usize) -> bool {
    static PIDFD: std::sync::OnceLock<libc::c_int> = std::sync::OnceLock::new();
    /// Cleared at the first refusal (an older kernel): then never tried again.
    static BATCHES_WORK: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);
    if !BATCHES_WORK.load(std::sync::atomic::Ordering::Relaxed) {
        return false;
    }
    // SAFETY: pidfd_open on our own pid has no precondition; the descriptor
    // is kept for the life of the process (one per process).
    let pidfd = *PIDFD.get_or_init(|| unsafe {
        libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) as libc::c_int
    });
    if pidfd < 0 {
        BATCHES_WORK.store(false, std::sync::atomic::Ordering::Relaxed);
        return false;
    }
    let ranges: Vec<libc::iovec> = (0..count)
        .map(|i| libc::iovec {
            iov_base: (first + i * stride) as *mut libc::c_void,
            iov_len: GUARD_SIZE_BYTES,
        })
        .collect();
    for chunk in ranges.chunks(GUARD_BATCH_LEN_MAX) {
        // SAFETY: every range is a page inside a slab we own that no stack
        // uses yet; the iovec array outlives the call.
        let advised = unsafe {
            libc::syscall(
                libc::SYS_process_madvise,
                pidfd,
                chunk.as_ptr(),
                chunk.len(),
                MADV_GUARD_INSTALL,
                0,
            )
        };
        if advised != (chunk.len() * GUARD_SIZE_BYTES) as libc::c_long {
            BATCHES_WORK.store(false, std::sync::atomic::Ordering::Relaxed);
            return false;
        }
    }
    true
}

impl Drop for StackPool {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        for class in &state.classes {
            for slab in &class.slabs {
                // SAFETY: the slab was mapped by `map_slab` with this address
                // and length, and no stack in it is in use: the runtime drops
                // every coroutine before the pool (PooledStack invariant).
                unsafe {
                    libc::munmap(slab.base as *mut libc::c_void, slab.len);
                }
            }
        }
    }
}

impl SizeClass {
    /// Reserves one more slab. Returns `false` if the kernel refused.
    fn map_slab(&mut self) -> bool {
        let slab_slots = (SLAB_SIZE_BYTES / self.slot_bytes).max(1);
        let len = slab_slots * self.slot_bytes;
        // SAFETY: an anonymous private mapping at an address of the kernel's
        // choosing touches no existing memory.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            tracing::warn!(
                len,
                error = %std::io::Error::last_os_error(),
                "erlangen: cannot reserve a stack slab"
            );
            return false;
        }
        // SAFETY: advice on a mapping we own; failure only loses the advice.
        unsafe {
            libc::madvise(base, len, libc::MADV_NOHUGEPAGE);
        }
        self.slabs.push(Slab {
            base: base as usize,
            len,
        });
        self.slab_slots = slab_slots;
        self.carved = 0;
        true
    }
}

/// Finds (or creates) the class of `slot_bytes`.
fn class_mut(classes: &mut Vec<SizeClass>, slot_bytes: usize) -> &mut SizeClass {
    let index = match classes.iter().position(|c| c.slot_bytes == slot_bytes) {
        Some(index) => index,
        None => {
            classes.push(SizeClass {
                slot_bytes,
                free: Vec::new(),
                slabs: Vec::new(),
                carved: 0,
                slab_slots: 0,
            });
            classes.len() - 1
        }
    };
    &mut classes[index]
}

/// Installs the guard page at `bottom`. Returns `false` if no guard can be
/// had (fallback budget spent): the slot must then not be used.
fn install_guard(
    bottom: usize,
    mode: &mut GuardMode,
    protect_guards: &mut usize,
    protect_budget: usize,
) -> bool {
    if *mode != GuardMode::Protect {
        // SAFETY: the page lies inside a slab we own and no stack uses it yet.
        let rc = unsafe {
            libc::madvise(
                bottom as *mut libc::c_void,
                GUARD_SIZE_BYTES,
                MADV_GUARD_INSTALL,
            )
        };
        if rc == 0 {
            *mode = GuardMode::Advise;
            return true;
        }
        if *mode == GuardMode::Advise {
            return false;
        }
        tracing::warn!(
            "erlangen: MADV_GUARD_INSTALL unavailable ({}); falling back to mprotect guards, at most {protect_budget} stacks",
            std::io::Error::last_os_error()
        );
        *mode = GuardMode::Protect;
    }
    if *protect_guards >= protect_budget {
        return false;
    }
    // SAFETY: as above.
    let rc = unsafe {
        libc::mprotect(
            bottom as *mut libc::c_void,
            GUARD_SIZE_BYTES,
            libc::PROT_NONE,
        )
    };
    if rc != 0 {
        return false;
    }
    *protect_guards += 1;
    true
}

/// `vm.max_map_count`, or Linux's default when it cannot be read.
fn max_map_count() -> usize {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(65_530)
}

/// A worker's private stack cache, for the runtime's default stack size.
#[derive(Debug)]
pub(crate) struct StackCache {
    /// Guard plus usable bytes of the cached slots.
    slot_bytes: usize,
    /// Free slots.
    slots: Vec<StackSlot>,
    /// Free slots of hibernated agents whose pages wait to go back to the
    /// kernel (at most `DISCARD_BATCH_LEN`).
    discard: Vec<StackSlot>,
}

impl StackCache {
    /// An empty cache for stacks of `usable_bytes`.
    pub(crate) fn new(usable_bytes: usize) -> StackCache {
        StackCache {
            slot_bytes: usable_bytes + GUARD_SIZE_BYTES,
            slots: Vec::new(),
            discard: Vec::new(),
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// Whether this process can read the byte at `address` (a guard page
    /// cannot be read, even by the kernel on our behalf).
    fn readable(address: usize) -> bool {
        let mut byte = 0u8;
        let local = libc::iovec {
            iov_base: (&mut byte as *mut u8).cast(),
            iov_len: 1,
        };
        let remote = libc::iovec {
            iov_base: address as *mut libc::c_void,
            iov_len: 1,
        };
        // SAFETY: reading one byte of our own address space into `byte`;
        // the kernel reports an unreadable address as an error.
        let n = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
        n == 1
    }

    #[test]
    fn discarding_a_run_of_slots_zeroes_their_pages_and_keeps_every_guard() {
        const USABLE: usize = 32 * 1024;
        let pool = StackPool::new();
        let mut cache = StackCache::new(USABLE);
        let stacks: Vec<PooledStack> = (0..4)
            .map(|_| pool.take(USABLE, &mut cache).expect("a stack"))
            .collect();
        if !pool.stats().guard_install {
            return; // mprotect guards: each slot is discarded on its own
        }
        let slots: Vec<StackSlot> = stacks.into_iter().map(PooledStack::into_slot).collect();
        for slot in &slots {
            let top = slot.bottom + slot.slot_bytes - 1;
            // SAFETY: the slot's usable part is mapped read-write and no
            // coroutine uses it.
            unsafe { (top as *mut u8).write(7) };
            assert!(!readable(slot.bottom), "a guard before the discard");
        }
        cache.discard.extend(slots.iter().copied());
        pool.flush_discards(&mut cache);
        assert!(cache.discard.is_empty());
        for slot in &slots {
            let top = slot.bottom + slot.slot_bytes - 1;
            // SAFETY: as above.
            let byte = unsafe { (top as *const u8).read() };
            assert_eq!(byte, 0, "pages were handed back");
            assert!(!readable(slot.bottom), "the guard survived the discard");
            assert!(readable(slot.bottom + GUARD_SIZE_BYTES));
        }
        assert_eq!(pool.stats().slots_free, slots.len());
    }
}
