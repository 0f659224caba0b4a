//! Observing monitors (Erlang's `monitor/2`): a watcher is told when the
//! watched agent exits, and nothing else happens to either.
//!
//! Erlangen's monitor ([`crate::Ctx::monitor`]) is a supervision edge: the
//! monitoring agent's exit kills the monitored one. A watch only observes:
//! the watcher's exit (normal, panic or kill) never touches the watched
//! agent. Each watch has its own [`WatchRef`]; watching one agent twice
//! gives two refs and two notifications.
//!
//! # Protocol (the edge protocol of links.rs, without nested locks)
//!
//! 1. `watch`: the watcher records `(id, target)` in its own set
//!    (`watching`), then locks the target's set: a dead target answers a
//!    `WatchDown` with `noproc` at once (the watcher's record removed);
//!    a live one records `(watcher, id)` (`watchers`).
//! 2. The watched agent exits: it takes its `watchers` under its own lock
//!    (links.rs step 2), then, for each, locks the watcher's set and removes
//!    `(id, target)`. Only if that record was still there does it queue the
//!    `WatchDown`, under the watcher's lock: each watch fires at most once.
//! 3. `unwatch`: the watcher removes `(id, target)` from its own set under
//!    its lock. If it was there, step 2 has not fired it and never will; the
//!    target's record is then removed (a lock of its own). If it was not,
//!    the `WatchDown` is already queued, and is removed from the mailbox: no
//!    notification of a watch is received after `unwatch` returned.
//! 4. The watcher exits: it removes its records from each target (so a
//!    long-lived target keeps no record of dead watchers).
//!
//! A watch made by a call (`Ctx::call`) carries the call's tag: its
//! `WatchDown` is filed under the tag, as the reply would be, so the call's
//! wait wakes for either and finds it in O(1).

use crate::exit::ExitStatus;
use crate::pid::Pid;

/// One observing monitor: the watched agent and the watch's id, unique
/// within the watcher.
///
/// ```
/// use erlangen_runtime::*;
/// let rt = Runtime::builder().workers(1).build().unwrap();
/// let same = rt.run(|ctx| {
///     let other = ctx.spawn(|ctx| { ctx.receive(); });
///     let (a, b) = (ctx.watch(&other).unwrap(), ctx.watch(&other).unwrap());
///     ctx.kill(&other, ExitReason::Kill);
///     (a.pid == b.pid, a != b)
/// });
/// assert_eq!(same.unwrap(), (true, true));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WatchRef {
    /// The watched agent.
    pub pid: Pid,
    /// Unique within the watcher.
    pub(crate) id: u64,
}

/// The notification of a watch: the watched agent exited with `status`
/// (`noproc` if it was dead when the watch was made).
///
/// ```
/// use erlangen_runtime::*;
/// let rt = Runtime::builder().workers(1).build().unwrap();
/// let ok = rt.run(|ctx| {
///     let other = ctx.spawn(|_ctx| 7u32);
///     let watch = ctx.watch(&other).unwrap();
///     let down = ctx.receive().downcast::<WatchDown>().unwrap();
///     down.watch == watch
/// });
/// assert!(ok.unwrap());
/// ```
#[derive(Debug)]
pub struct WatchDown {
    /// The watch that fired.
    pub watch: WatchRef,
    /// How the watched agent ended.
    pub status: ExitStatus,
}

/// What a call's watch files under the call's tag when the server ends
/// (private: a server's reply can never be taken for it).
#[derive(Debug)]
pub(crate) struct ServerEnded(pub(crate) ExitStatus);

/// A watcher recorded in the watched agent's set (the call's tag, if any,
/// is kept on the watcher's side).
#[derive(Debug)]
pub(crate) struct Watcher {
    /// The watching agent (local, or of another node).
    pub(crate) pid: Pid,
    /// The watch's id.
    pub(crate) id: u64,
}
