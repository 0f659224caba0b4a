//! Stack-overflow reporting: name the agent, then abort.
//!
//! Overflowing a coroutine's guard page raises SIGSEGV at an address std's
//! own handler does not know, which ends the process with a bare segfault
//! (pitfalls.md §3.6). Recovery is not possible in general (the agent may be
//! inside `malloc` or hold a lock), so an overflow stays fatal but is named.
//!
//! # Protocol
//!
//! 1. [`install`] (once per process) puts our handler on SIGSEGV and SIGBUS
//!    with `SA_ONSTACK | SA_SIGINFO`, keeping the previous handlers.
//! 2. [`ensure_alt_stack`] (once per worker thread) makes sure the thread has
//!    an alternate signal stack; std gives one to its threads when its own
//!    handler is installed, and we add one otherwise.
//! 3. Before each resume the worker calls [`enter`] with the agent's guard
//!    range; after it, [`leave`]. These write one `const`-initialised
//!    thread-local: no lazy initialisation, so reading it in the handler is
//!    async-signal-safe, and they are written by the worker loop, never by
//!    agent code (the thread-local rule of ARCHITECTURE.md).
//! 4. The handler compares `si_addr` with the range. Inside: it writes
//!    `agent <id> overflowed its <N> KiB stack` with `write(2)` and aborts.
//!    Outside: it hands the signal to the previous handler (std's, which
//!    reports thread-stack overflows), or restores the default action so the
//!    fault repeats and kills the process as usual.

use std::cell::Cell;
use std::sync::{Once, OnceLock};

/// What the handler needs to know about the agent running on this thread.
#[derive(Clone, Copy)]
struct Running {
    /// Lowest address of its guard page (0: no agent running).
    guard_low: usize,
    /// One past the highest address of that guard page.
    guard_high: usize,
    /// Its serial number.
    serial: u64,
    /// Its usable stack size, in KiB.
    stack_kib: usize,
    /// Its cell's address (for panic reports, panic_report.rs).
    cell: usize,
}

const NOBODY: Running = Running {
    guard_low: 0,
    guard_high: 0,
    serial: 0,
    stack_kib: 0,
    cell: 0,
};

thread_local! {
    /// The agent this worker thread is running, if any.
    static RUNNING: Cell<Running> = const { Cell::new(NOBODY) };
}

/// The handlers that were installed before ours.
struct Previous {
    segv: libc::sigaction,
    bus: libc::sigaction,
}

/// Set once inside `INSTALL`, before our handler is installed, and read
/// only by the handler: the `OnceLock`'s release store and acquire load give
/// the handler a happens-before edge to the write (a plain `static mut`
/// gave none in Rust's memory model). Reading it is one atomic load, which
/// is async-signal-safe.
static PREVIOUS: OnceLock<Previous> = OnceLock::new();
static INSTALL: Once = Once::new();

/// Step 1: installs the handler for the whole process (idempotent).
pub(crate) fn install() {
    INSTALL.call_once(|| {
        // SAFETY: `sigaction` with a zeroed struct, our handler and an empty
        // mask is the documented way to install a handler; querying the old
        // ones writes only the structs we pass.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handler as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            let mut segv: libc::sigaction = std::mem::zeroed();
            let mut bus: libc::sigaction = std::mem::zeroed();
            libc::sigaction(libc::SIGSEGV, std::ptr::null(), &mut segv);
            libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut bus);
            let _ = PREVIOUS.set(Previous { segv, bus });
            libc::sigaction(libc::SIGSEGV, &action, std::ptr::null_mut());
            libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut());
        }
    });
}

/// Size of the alternate signal stack we add when a thread has none.
const ALT_STACK_SIZE_BYTES: usize = 64 * 1024;

/// Step 2: gives the calling thread an alternate signal stack if it has none.
/// The stack is leaked on purpose: it must outlive every signal the thread
/// can take, and there is one per worker thread.
pub(crate) fn ensure_alt_stack() {
    // SAFETY: querying the current alternate stack writes only `current`.
    let mut current: libc::stack_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let rc = unsafe { libc::sigaltstack(std::ptr::null(), &mut current) };
    if rc != 0 || current.ss_flags & libc::SS_DISABLE == 0 {
        return;
    }
    let memory = vec![0u8; ALT_STACK_SIZE_BYTES].leak();
    let stack = libc::stack_t {
        ss_sp: memory.as_mut_ptr().cast(),
        ss_flags: 0,
        ss_size: memory.len(),
    };
    // SAFETY: `memory` is leaked, so it stays valid for the thread's life.
    unsafe {
        libc::sigaltstack(&stack, std::ptr::null_mut());
    }
}

/// Step 3: the worker is about to resume the agent `serial`, whose guard
/// page spans `low..high` and whose stack has `stack_bytes` usable bytes.
pub(crate) fn enter(low: usize, high: usize, serial: u64, stack_bytes: usize, cell: usize) {
    let running = Running {
        guard_low: low,
        guard_high: high,
        serial,
        stack_kib: stack_bytes / 1024,
        cell,
    };
    RUNNING.with(|c| c.set(running));
}

/// The serial number and cell address of the agent this thread is
/// running, if any (read by the panic hook, panic_report.rs, on the same
/// thread: the record is written only by this worker's loop).
#[inline(never)]
pub(crate) fn running_agent() -> Option<(u64, usize)> {
    let running = RUNNING.with(Cell::get);
    (running.guard_low != 0).then_some((running.serial, running.cell))
}

/// Step 3: the agent switched out.
pub(crate) fn leave() {
    RUNNING.with(|c| c.set(NOBODY));
}

/// Step 4.
extern "C" fn handler(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let address = unsafe { (*info).si_addr() } as usize;
    let running = RUNNING.with(Cell::get);
    if running.guard_low != 0 && (running.guard_low..running.guard_high).contains(&address) {
        let mut line = LineBuffer::default();
        line.push(b"erlangen: agent <");
        line.push_hex(running.serial);
        line.push(b"> overflowed its ");
        line.push_decimal(running.stack_kib as u64);
        line.push(b" KiB stack; aborting\n");
        // SAFETY: write(2) and abort(3) are async-signal-safe.
        unsafe {
            libc::write(2, line.bytes.as_ptr().cast(), line.len);
            libc::abort();
        }
    }
    let Some(previous) = PREVIOUS.get() else {
        return;
    };
    let old = if signal == libc::SIGBUS {
        &previous.bus
    } else {
        &previous.segv
    };
    chain(signal, info, context, old);
}

/// Hands the signal to the handler that was there before ours, as the
/// kernel would have run it: with its `sa_mask` (and the signal itself,
/// unless `SA_NODEFER`) blocked during the call, and reset to the default
/// action first if it asked for `SA_RESETHAND`.
fn chain(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
    old: &libc::sigaction,
) {
    let handler = old.sa_sigaction;
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        // SAFETY: restoring the default action makes the faulting instruction
        // fault again on return and end the process the usual way.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
        return;
    }
    let mut mask = old.sa_mask;
    // SAFETY: sigaddset, pthread_sigmask and sigaction are async-signal-safe
    // and write only the sets and structs we pass.
    let saved = unsafe {
        if old.sa_flags & libc::SA_NODEFER == 0 {
            libc::sigaddset(&mut mask, signal);
        }
        let mut saved: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, &mask, &mut saved);
        if old.sa_flags & libc::SA_RESETHAND != 0 {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
        saved
    };
    if old.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: a handler installed with SA_SIGINFO has this signature.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(handler) };
        f(signal, info, context);
    } else {
        // SAFETY: a handler installed without SA_SIGINFO has this signature.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(handler) };
        f(signal);
    }
    // SAFETY: restores the mask saved above (async-signal-safe).
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, &saved, std::ptr::null_mut());
    }
}

/// A fixed buffer for formatting without allocating (signal context).
struct LineBuffer {
    bytes: [u8; 160],
    len: usize,
}

impl Default for LineBuffer {
    fn default() -> LineBuffer {
        LineBuffer {
            bytes: [0; 160],
            len: 0,
        }
    }
}

impl LineBuffer {
    fn push(&mut self, text: &[u8]) {
        for &byte in text {
            if self.len < self.bytes.len() {
                self.bytes[self.len] = byte;
                self.len += 1;
            }
        }
    }

    fn push_hex(&mut self, value: u64) {
        self.push_radix(value, 16);
    }

    fn push_decimal(&mut self, value: u64) {
        self.push_radix(value, 10);
    }

    fn push_radix(&mut self, mut value: u64, radix: u64) {
        let mut digits = [0u8; 20];
        let mut n = 0;
        loop {
            digits[n] = b"0123456789abcdef"[(value % radix) as usize];
            n += 1;
            value /= radix;
            if value == 0 {
                break;
            }
        }
        digits[..n].reverse();
        self.push(&digits[..n]);
    }
}
