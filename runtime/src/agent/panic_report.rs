//! Panic reports that name the agent: a panic inside an agent is printed as
//! `erlangen: agent <id> ("name") panicked at <file:line>: <message>`, not
//! as a panic of the worker thread, which means nothing to the user.
//!
//! [`install`] (once per process, from `Builder::build`) wraps the panic
//! hook that was there. A panic on a thread that is running an agent
//! (overflow.rs keeps that record per worker) gets our line, and a
//! backtrace if `RUST_BACKTRACE` asks for one; any other panic goes to the
//! previous hook unchanged. Exits and kills unwind with `resume_unwind`,
//! which runs no hook: only real panics are reported.

use std::sync::Once;

use super::overflow;
use super::AgentCell;

static INSTALL: Once = Once::new();

/// Installs the hook (idempotent).
pub(crate) fn install() {
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| match overflow::running_agent() {
            Some((serial, cell)) => report(serial, cell, info),
            None => previous(info),
        }));
    });
}

fn report(serial: u64, cell: usize, info: &std::panic::PanicHookInfo<'_>) {
    let message = crate::exit::panic_message(info.payload());
    let location = info
        .location()
        .map(|l| format!(" at {}:{}:{}", l.file(), l.line(), l.column()))
        .unwrap_or_default();
    // SAFETY: the record holds the cell of the agent this thread is running
    // now; the worker's Task for it keeps the cell alive (LIVE-QUEUED).
    let cell = unsafe { &*(cell as *const AgentCell) };
    // try_lock: the panic may come from code that holds this lock (it
    // never does in the runtime, but a report must not deadlock).
    let names = match cell.links.try_lock() {
        Ok(links) if !links.names.is_empty() => format!(" ({})", links.names.join(", ")),
        _ => String::new(),
    };
    let backtrace = std::backtrace::Backtrace::capture();
    let backtrace = match backtrace.status() {
        std::backtrace::BacktraceStatus::Captured => format!("\n{backtrace}"),
        _ => String::new(),
    };
    eprintln!("erlangen: agent <{serial:x}>{names} panicked{location}: {message}{backtrace}");
}
