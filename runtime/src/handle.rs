//! `RuntimeHandle`: what a thread that serves a runtime from outside its
//! workers (the nodes layer's event loop) may do with it.
//!
//! The handle is cheap to clone and holds the runtime's shared state, not
//! the runtime: dropping the `Runtime` still shuts it down, after which the
//! handle's sends are dropped and counted and its spawns are refused.

use std::any::Any;
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use crate::agent::AgentCell;
use crate::context::{agent_body, Ctx};
use crate::error::Error;
use crate::message::Message;
use crate::pid::Pid;
use crate::remote::RemoteSignal;
use crate::scheduler::Shared;
use crate::spawn::{spawn_agent_then, SpawnOptions};

/// A cloneable handle to a [`crate::Runtime`] for threads outside it.
///
/// ```
/// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
/// let handle = rt.handle();
/// let pid = handle
///     .spawn_then(erlangen_runtime::SpawnOptions::new(), None, |_| {}, |ctx| {
///         ctx.receive().downcast::<u8>().unwrap()
///     })
///     .unwrap();
/// assert!(handle.is_local(&pid));
/// handle.send(&pid, erlangen_runtime::Message::new(1u8));
/// ```
#[derive(Clone)]
pub struct RuntimeHandle {
    /// The runtime's shared state.
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for RuntimeHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeHandle")
            .field("runtime", &self.shared.id)
            .finish()
    }
}

impl RuntimeHandle {
    /// Sends `message` to `to` (local or remote). Never blocks.
    pub fn send(&self, to: &Pid, message: Message) {
        self.shared.deliver_message(to, message, None);
    }

    /// Files `message` as the reply to the local agent `to`'s call `tag`
    /// (what a node does with a reply that arrived): refused and counted if
    /// the tag is not open (a late reply).
    pub fn reply(&self, to: &Pid, tag: crate::reply::Tag, message: Message) {
        if to.cell().is_some() {
            self.shared.deliver_reply(to, tag.id(), message, None);
        }
    }

    /// Applies a signal from the remote agent `from` to the local agent
    /// `to` with the local semantics (remote.rs): what a node does with a
    /// link, monitor, unlink, exit or notification that arrived.
    pub fn signal(&self, from: &Pid, to: &Pid, signal: RemoteSignal) {
        self.shared.remote_signal(from, to, signal);
    }

    /// Sends `to` an exit signal (as [`crate::Runtime::kill`]).
    pub fn kill(&self, to: &Pid, reason: crate::ExitReason) {
        self.shared.deliver_exit(to, reason, None);
    }

    /// Records in the local agent `local`'s link set that it is attached
    /// to the remote agent `remote` (the caller's half of a remote spawn
    /// with a link or monitor, installed when the spawn's reply arrives).
    /// Returns `false` if `local` is dead: it then attaches nothing.
    pub fn attach_half(&self, local: &Pid, remote: &Pid) -> bool {
        let Some(cell) = local.cell() else {
            return false;
        };
        let mut links = crate::sync::lock(&cell.links);
        if links.dead {
            return false;
        }
        links.add_kill(remote);
        true
    }

    /// Counters and gauges of the runtime, for metrics
    /// ([`crate::Runtime::metrics`]).
    pub fn metrics(&self) -> crate::RuntimeMetrics {
        crate::introspection::metrics(&self.shared, || {})
    }

    /// One page of the live agents ([`crate::Runtime::agents_page`]).
    pub fn agents_page(&self, query: &crate::AgentQuery) -> crate::AgentPage {
        crate::agent_list::agents_page(&self.shared, query, || {})
    }

    /// The live agent of this runtime with serial number `serial` (what
    /// `<serial>` names, in hexadecimal), if any. Scans the live table: for rare lookups,
    /// such as an operator's request about one agent.
    pub fn find_agent(&self, serial: u64) -> Option<Pid> {
        self.shared
            .live
            .find(serial, self.shared.id)
            .map(Pid::from_cell)
    }

    /// What a listing shows of the local agent `pid` ([`crate::AgentInfo`]),
    /// if it is alive.
    pub fn agent_info(&self, pid: &Pid) -> Option<crate::AgentInfo> {
        crate::agent_list::info_of(pid)
    }

    /// Makes the local agent `pid` start a sampled trace (trace.rs): a
    /// control signal that it takes at its next receive, ahead of its
    /// messages; the root span covers its wait and its work on the message
    /// it takes next. An operator's "trace this agent" (`erlangen-top`'s
    /// `t`). `false` if it is not a live agent of this runtime.
    pub fn trace_next(&self, pid: &Pid) -> bool {
        match pid.cell() {
            Some(cell) if self.shared.owns(pid) && cell.mailbox.push_trace_next() => {
                self.shared.wake(cell, None);
                true
            }
            _ => false,
        }
    }

    /// Whether this runtime records spans (it has a
    /// [`SpanSink`](crate::SpanSink)).
    pub fn records_spans(&self) -> bool {
        self.shared.config.span_sink.is_some()
    }

    /// The agents that monitor the local agent `pid` (they get its
    /// `Down`); empty for a remote pid.
    pub fn monitors_of(&self, pid: &Pid) -> Vec<Pid> {
        pid.cell()
            .map(|cell| crate::sync::lock(&cell.links).notify.clone())
            .unwrap_or_default()
    }

    /// Whether the local agent `pid` is alive (`false` for one that exited,
    /// and for a remote pid).
    pub fn is_alive(&self, pid: &Pid) -> bool {
        pid.cell().is_some_and(|cell| !cell.has_exited())
    }

    /// The agent registered as `name` here.
    pub fn whereis(&self, name: &str) -> Option<Pid> {
        self.shared.registry.lookup(name)
    }

    /// Whether `pid` is an agent of this runtime.
    pub fn is_local(&self, pid: &Pid) -> bool {
        self.shared.owns(pid)
    }

    /// Whether the runtime has shut down.
    pub fn is_shut_down(&self) -> bool {
        self.shared.shutdown.load(Ordering::Acquire)
    }

    /// Spawns `f`, attached as `options` say to `parent` (a local or remote
    /// agent), and calls `before_run` with the new pid after its links are
    /// in place and before it can run.
    pub fn spawn_then<F, R>(
        &self,
        options: SpawnOptions,
        parent: Option<&Pid>,
        mut before_run: impl FnMut(&Pid),
        f: F,
    ) -> Result<Pid, Error>
    where
        F: FnOnce(&mut Ctx) -> R + Send + 'static,
        R: Any + Send + Sync + fmt::Debug,
    {
        if self.is_shut_down() {
            return Err(Error::System("the runtime has shut down".to_owned()));
        }
        spawn_agent_then(
            &self.shared,
            None,
            &options,
            agent_body(f),
            parent,
            Some(&mut before_run),
        )
    }
}

/// A reference to an agent that does not keep its cell alive: what a node
/// keeps for agents whose ids it sent to other nodes, so that ids coming
/// back resolve without a table of every agent.
///
/// ```
/// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
/// let pid = rt.spawn(|ctx| { ctx.receive(); });
/// let weak = pid.downgrade().unwrap();
/// assert_eq!(weak.upgrade(), Some(pid.clone()));
/// ```
#[derive(Clone, Debug)]
pub struct WeakPid {
    /// The cell, weakly.
    cell: Weak<AgentCell>,
}

impl WeakPid {
    /// The pid, if any handle to the agent still exists (a live agent
    /// always has one: its runtime's).
    pub fn upgrade(&self) -> Option<Pid> {
        self.cell.upgrade().map(Pid::from_cell)
    }
}

impl Pid {
    /// A weak reference to a local agent (`None` for a remote one).
    pub fn downgrade(&self) -> Option<WeakPid> {
        self.cell().map(|cell| WeakPid {
            cell: Arc::downgrade(cell),
        })
    }
}
