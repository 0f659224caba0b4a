//! # erlangen-runtime
//!
//! The single-node core of Erlangen for Rust: millions of lightweight
//! **agents**, each a stackful coroutine with a bounded mailbox, scheduled
//! M:N over pinned worker threads with work stealing. A blocking `receive`
//! suspends the agent and gives its worker to the next agent; it never blocks
//! the OS thread.
//!
//! ```
//! use erlangen_runtime::{Runtime, SpawnOptions, Down};
//!
//! let rt = Runtime::builder().workers(2).build().unwrap();
//! let result = rt.run(|ctx| {
//!     // A supervised child: we get a Down when it ends.
//!     let child = ctx
//!         .spawn_with(SpawnOptions::new().monitor(), |ctx| {
//!             let n = ctx.receive().downcast::<u32>().unwrap();
//!             n + 1
//!         })
//!         .unwrap();
//!     ctx.send(&child, 41u32);
//!     let down = ctx.receive().downcast::<Down>().unwrap();
//!     *down.status.value().unwrap().downcast_ref::<u32>().unwrap()
//! });
//! assert_eq!(result.unwrap(), 42);
//! ```
//!
//! # Semantics (Erlangen's, with its bugs fixed)
//!
//! * **Send** never blocks. A full mailbox (default capacity 64) or a dead
//!   agent drops the message and counts it ([`AgentStats::dropped`]).
//! * **Forwarding**: sending a received [`Message`] sends it on as it came,
//!   not wrapped in another message (as in Erlangen, where a message is just
//!   a value).
//! * **Receive** takes exit notifications ([`Down`]) ahead of ordinary
//!   messages; [`Ctx::receive_timeout`] returns [`Timeout`];
//!   [`Ctx::receive_match`] is Erlang's selective receive (Erlangen had none).
//!   For the call/reply shape, [`Ctx::make_tag`], [`Ctx::reply`] and
//!   [`Ctx::receive_reply`] find a reply by its tag without scanning the
//!   mailbox (replies are filed by tag and only `receive_reply` takes them;
//!   they count against the capacity).
//! * **Exit**: an agent's status is `Ok(value)` (its function returned) or
//!   `Exit(reason)`. A panic becomes `ExitReason::Panic` with the message; the
//!   worker survives. [`Ctx::kill`] takes effect at once on a suspended agent,
//!   else at its next runtime call.
//! * **Links** fire on every exit, normal ones included, and kill the peer
//!   with the whole status as reason ([`ExitReason::Linked`]). A **monitor**
//!   gets `Down { pid, status }`; the death of the monitoring agent kills the
//!   monitored one (Erlangen's supervised child). At most one notification
//!   per link; none after `unlink`.
//!
//! * **Pids across runtimes.** A [`Pid`] belongs to the runtime that spawned
//!   it, and any runtime of the process accepts it: a send, kill, link,
//!   monitor, unlink or `send_after` to an agent of another runtime is
//!   delivered by that agent's own runtime, on its own workers (as Erlang
//!   delivers to a pid of another node). When a runtime shuts down, agents
//!   of other runtimes linked to or monitoring its agents get
//!   [`ExitReason::NoConnection`]; sends to its agents are dropped and
//!   counted. Registering a name for a foreign pid is refused
//!   ([`Error::NotLocal`]), as Erlang's `register/2` refuses a remote pid.
//! * **Counting.** [`AgentStats::dropped`] counts every refused message and
//!   signal, a kill of a dead or already dying agent included (Erlangen's
//!   `messages-dropped`).
//! * **Unlink** takes back a `Down` from that agent still queued: none is
//!   received after `unlink` returns (Erlang's `demonitor(Ref, [flush])`).
//! * **Panic reports** name the agent and its registered names, not the
//!   worker thread.
//! * **Destructors on workers.** A panic in the destructor of a value the
//!   runtime drops outside any agent (a returned value nobody takes, a
//!   leftover or refused message, a panic payload) is caught, logged and
//!   counted ([`Runtime::contained_panics`]); it never ends a worker.
//!
//! # Deliberate differences from Erlangen
//!
//! * Linking or monitoring a dead agent answers at once with
//!   [`ExitReason::NoProc`] (Erlangen delivered nothing: bug 7).
//! * A registered name is released when its agent exits (bug 12).
//! * Every [`Runtime::run`] gets its own root agent; plain threads never
//!   share one pseudo-agent (bug 11).
//! * A kill of a suspended agent (in receive or sleep) takes effect at once,
//!   and a running agent's at its next runtime call, not only at `receive`.
//! * Exits deliver their signals without holding two locks, so agents that
//!   monitor each other and die together cannot deadlock (bug 10).
//! * Selective receive exists; `select`'s polling loop does not (bugs 1, 2).
//! * The agent tree is safe on cycles and its accessors work (bug 3).
//! * An exit reason is an [`ExitReason`], not an arbitrary object; a
//!   program's own reasons are [`ExitReason::Other`] strings, like atoms.
//! * **Hibernation** (from Erlang, Erlangen has none): [`Ctx::hibernate`]
//!   gives up the agent's stack until a message arrives and then runs a
//!   continuation on a fresh one, as `erlang:hibernate/3` does. An agent
//!   parked in a plain `receive` keeps its stack's touched page (about
//!   4.6 KiB per agent with its cell); a hibernated one about 0.6 KiB.
//!   Pages of a suspended stack are never handed back behind the agent's
//!   back: another thread may hold a reference into it (a scoped thread
//!   started before the receive), so only the agent can say it is done
//!   with its stack.
//! * **Observing monitors** (from Erlang; Erlangen's monitor is kept as it
//!   is): [`Ctx::watch`] is Erlang's `monitor/2` — a [`WatchDown`] when the
//!   watched agent ends, and the watcher's own end never touches it —
//!   removable with its queued notice flushed ([`Ctx::unwatch`], Erlang's
//!   `demonitor(Ref, [flush])`). Erlangen's [`Ctx::monitor`] still kills
//!   the monitored agent when the monitoring one exits: the supervision
//!   edge.
//! * **Calls, servers and supervisors** (from OTP; Erlangen leaves them to
//!   the user): [`Ctx::call`] watches its server for the duration of the
//!   call, so the server's end fails it at once ([`CallError`]), and a late
//!   reply is refused, never kept; [`server`] is `gen_server` with typed
//!   requests; [`supervisor`] is OTP's supervisor (restart types,
//!   strategies, intensity, ordered start and reverse stop). Calls and
//!   watches work the same across nodes.
//! * A reply to a call tag that is not open (its wait ended) is refused and
//!   counted as dropped.
//! * **Causal tracing** (neither Erlangen nor Erlang's `seq_trace` exports
//!   one): [`Ctx::start_trace`] puts an agent in a trace; what it sends
//!   carries a [`TraceContext`], and each agent that takes such a message
//!   continues the trace until its next receive. Spans (a root, each send,
//!   each agent's work on a traced message) go to the runtime's
//!   [`SpanSink`] ([`Builder::span_sink`]); a runtime without one records
//!   nothing and passes the context on unchanged. Off, it costs a flag
//!   test per send and per receive and carries nothing (the crate's
//!   trace.rs has the protocol).
//! * **Listing agents** ([`Runtime::agents_page`]): a paged, sorted,
//!   filtered view of the live agents (state, worker, mailbox, slices,
//!   drops, hibernation), built in chunks that never stall a worker; what
//!   `erlangen-top` shows.
//! * **Deterministic simulation** (no actor runtime has one; FoundationDB's
//!   and TigerBeetle's way, madsim/turmoil's for tokio): [`simulation`]
//!   runs the agents of one or more simulated nodes on the calling
//!   thread, draws the next agent to run from a seed, and runs every
//!   deadline on a virtual clock that jumps when nothing can run; a seed
//!   names a run, its trace hash proves a replay identical, and
//!   [`simulation::check`] runs a test body across many seeds and prints
//!   the first failing one with the command that replays it. The same
//!   agent code runs under both runtimes (read time with [`Ctx::now`]).
//!   `erlangen_net::simulation` adds the network between simulated nodes.
//!   A real runtime pays nothing for it: simulation is a different
//!   builder.
//!
//! # Agent rules
//!
//! Agent code runs on a coroutine stack (64 KiB by default) and must follow
//! these rules (ARCHITECTURE.md "Agent rules" gives the reasons):
//! 1. Do not use `thread_local!` data, directly or through a crate
//!    (`rand::thread_rng`, a `tracing` span guard, …) across a blocking call.
//! 2. Do not hold a `std::sync::Mutex` guard (or any OS-blocking lock) across
//!    a blocking call: it can deadlock the node.
//! 3. Do not block the OS thread (blocking I/O, `std::thread::sleep`, long
//!    computations without runtime calls): run blocking work with
//!    [`Ctx::blocking`], use [`Ctx::sleep`], and call [`Ctx::yield_now`] in
//!    long loops. Started agents never leave their worker, so an agent that
//!    holds it delays the agents placed there (not other workers, new
//!    agents, timers or the network); the watchdog names it
//!    ([`Builder::watchdog_threshold`], [`AgentStats::watchdog_warnings`]).
//!    Every runtime call counts against the agent's slice, each receive
//!    attempt and each message a selective receive skips included.
//! 4. Destructors should not block.
//! 5. An agent that waits long can hibernate ([`Ctx::hibernate`]): it gives
//!    its stack back and runs a continuation on a fresh one when a message
//!    comes.
//! 6. Code meant to run under [`simulation`] too reads time with
//!    [`Ctx::now`] and randomness from [`Ctx::simulation`], and starts no
//!    threads of its own.
//!
//! # Platforms
//!
//! Linux only (built and tested on x86-64; kernel 6.13 or later for the
//! cheapest stack guards, older kernels fall back): its stacks are slabs
//! guarded with `MADV_GUARD_INSTALL` (`process_madvise` where the kernel
//! has it), its workers pinned with `sched_setaffinity`, and its overflow
//! handler reads Linux signal frames. On any other target the crate refuses
//! to build with a message that says so.

#![warn(missing_docs)]

#[cfg(not(target_os = "linux"))]
compile_error!("erlangen-runtime runs on Linux only (see the crate docs, \"Platforms\")");

// The loom models (sync.rs says how to run them).
#[cfg(loom)]
mod loom_models;

mod agent;
mod agent_list;
mod config;
mod context;
mod error;
mod exit;
mod gather;
mod handle;
mod introspection;
mod links;
mod mailbox;
mod message;
mod pid;
mod polite_spin;
mod registry;
mod remote;
mod reply;
mod runtime;
mod scheduler;
pub mod server;
pub mod simulation;
mod spawn;
pub mod supervisor;
mod sync;
mod timer;
mod trace;
mod watch;

pub use crate::agent::stack::StackPoolStats;
pub use crate::agent_list::{
    AgentCursor, AgentInfo, AgentOrder, AgentPage, AgentQuery, AgentState,
};
pub use crate::config::{
    AGENT_PAGE_LEN_MAX, MAILBOX_LEN_DEFAULT, MAILBOX_LEN_MAX, STACK_SIZE_BYTES_DEFAULT,
    STACK_SIZE_BYTES_MAX, STACK_SIZE_BYTES_MIN,
};
pub use crate::context::Ctx;
pub use crate::error::Error;
pub use crate::exit::{Down, ExitReason, ExitStatus, Timeout, Value};
pub use crate::gather::{Gather, GatherError, PartWriter};
pub use crate::handle::{RuntimeHandle, WeakPid};
pub use crate::introspection::{AgentStats, AgentTree, ExitClass, RuntimeMetrics};
pub use crate::message::Message;
pub use crate::pid::Pid;
pub use crate::polite_spin::PoliteSpin;
pub use crate::remote::{Remote, RemotePid, RemoteSignal, Sent};
pub use crate::reply::{Call, CallError, Cast, ReplyTo, Tag};
pub use crate::runtime::{Builder, Runtime};
pub use crate::scheduler::signal::Attach;
pub use crate::spawn::SpawnOptions;
pub use crate::timer::IntervalRef;
pub use crate::trace::{SpanKind, SpanRecord, SpanSink, TraceContext, Traced};
pub use crate::watch::{WatchDown, WatchRef};

/// Types that must be `Send` and `Sync` for the runtime to be usable from
/// any thread; a compile error here is a design error.
#[allow(dead_code)]
fn _assert_send_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Runtime>();
    send_sync::<Pid>();
    send_sync::<ExitStatus>();
    send_sync::<Down>();
    fn send<T: Send>() {}
    send::<Message>();
}
