//! `NodeShared`: everything a node's handle (node/mod.rs), its routes
//! (route.rs) and its event loop (event_loop/) share — the command queue
//! and its waker, exported ids, per-peer stats, backlog counters, the
//! outboxes — and the answers the loop files for waiting agents. The
//! public API (node/mod.rs) sits above this module, and the loop and the routes
//! beside it: nothing here imports them.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use erlangen_runtime::{Message, Pid, Remote, RemotePid, RemoteSignal, RuntimeHandle, WeakPid};

use crate::command::{Command, Target};
use crate::config::{BACKLOG_BYTES_HIGH_WATER, BACKLOG_COMMANDS_HIGH_WATER};
use crate::functions::Functions;
use crate::id::{AgentId, NodeName};
use crate::outbox::{Direct, Outbox, Outboxes};
use crate::peer_stats::PeerStats;
use crate::types::Types;

/// A remote lookup's answer, filed under the caller's tag (internal): the
/// agent or `None`, or why the node was not asked.
#[derive(Debug)]
pub(crate) struct Whereabouts(pub(crate) Result<Option<Pid>, String>);

/// What a remote spawn's caller receives (internal).
#[derive(Debug)]
pub(crate) struct SpawnResult {
    /// The request answered.
    pub(crate) request: u64,
    /// The child, or why there is none.
    pub(crate) result: Result<Pid, String>,
}

/// What an agent that monitors a node receives when the node comes up or
/// goes down ([`crate::Node::monitor_node`]; Erlang's `nodeup` and
/// `nodedown`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEvent {
    /// The node.
    pub node: NodeName,
    /// Up (connected) or down (lost, or not reachable).
    pub up: bool,
    /// Why it went down.
    pub reason: Option<String>,
}

/// Local agents whose ids went out on the wire, by serial, weakly: ids
/// coming back resolve through here (no table of every agent is needed).
#[derive(Default)]
pub(crate) struct Exported {
    pub(crate) by_serial: crate::hashing::FastMap<u64, WeakPid>,
    /// Size after the last sweep of dead entries.
    pub(crate) swept_len: usize,
}

/// Everything the node's handle, its routes and its event loop share.
pub(crate) struct NodeShared {
    pub(crate) name: NodeName,
    pub(crate) incarnation: u64,
    pub(crate) cookie: Vec<u8>,
    pub(crate) port_mapper: SocketAddr,
    pub(crate) heartbeat_interval: Duration,
    pub(crate) heartbeat_timeout: Duration,
    pub(crate) spawn_timeout: Duration,
    /// How long the loop polls without sleeping after activity.
    pub(crate) poll_spin: Duration,
    /// Settles cluster-wide names taken twice (global.rs step 3).
    pub(crate) global_resolver: crate::global::Resolver,
    /// TLS for connections to our nodes (tls.rs), if the node runs it.
    pub(crate) tls: Option<erlangen_portmap::tls::Tls>,
    pub(crate) runtime: RuntimeHandle,
    pub(crate) types: Types,
    pub(crate) functions: Functions,
    pub(crate) exported: Mutex<Exported>,
    /// The route every remote pid of this node holds (it holds this state
    /// weakly: a pid may outlive a stopped node).
    pub(crate) route: Arc<dyn Remote>,
    /// Commands for the event loop (agents and the handle push, the loop
    /// drains).
    pub(crate) commands: Mutex<VecDeque<(crate::unsettled::Bucket, Command)>>,
    /// Wakes the loop; set once the loop's `Poll` exists.
    pub(crate) waker: Mutex<Option<Arc<mio::Waker>>>,
    /// Set by a pusher that woke the loop, cleared by the loop before it
    /// drains (pitfalls.md §4: one `wake` per burst).
    pub(crate) wake_pending: AtomicBool,
    pub(crate) stats: Mutex<HashMap<String, PeerStats>>,
    pub(crate) dropped: AtomicU64,
    /// Warnings senders may repeat, let through once a second.
    pub(crate) log: Mutex<erlangen_portmap::log_limit::LogLimit>,
    /// Messages and signals queued and not yet written (backpressure).
    pub(crate) backlog_commands: std::sync::atomic::AtomicUsize,
    /// Commands pushed and not yet processed by the loop (made bytes in a
    /// buffer, held, waiting or dropped): a direct write waits for zero
    /// (outbox.rs step 2).
    pub(crate) unsettled: crate::unsettled::Unsettled,
    /// The write sides of up connections, by peer (outbox.rs).
    pub(crate) outboxes: Outboxes,
    /// Outboxes owed a write by a worker's flush (outbox.rs step 3).
    pub(crate) owed: Mutex<Vec<(String, Arc<Outbox>)>>,
    /// Bytes in the write buffers (backpressure).
    pub(crate) backlog_bytes: std::sync::atomic::AtomicUsize,
    /// Times a sender found the node busy.
    pub(crate) busy_waits: AtomicU64,
    pub(crate) next_request: AtomicU64,
    pub(crate) local_addr: SocketAddr,
    pub(crate) stopped: AtomicBool,
    /// Cluster-wide names (global.rs).
    pub(crate) global: Mutex<crate::global::Global>,
    /// Process groups (groups.rs).
    pub(crate) groups: Mutex<crate::groups::Groups>,
    /// Agents that monitor nodes, and the node each monitors
    /// (event_loop/membership.rs).
    pub(crate) node_monitors: Mutex<Vec<(WeakPid, NodeName)>>,
    /// The Erlang distribution's settings, if the node joined one
    /// (crate::erlang).
    pub(crate) erlang: Option<crate::erlang::ErlangShared>,
}

impl fmt::Debug for NodeShared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeShared")
            .field("name", &self.name)
            .field("incarnation", &self.incarnation)
            .finish_non_exhaustive()
    }
}

impl NodeShared {
    /// Every peer's connection stats, by node name (`Node::peers`, the
    /// metrics).
    pub(crate) fn peer_stats(&self) -> Vec<crate::peer_stats::PeerStats> {
        let stats = crate::sync::lock(&self.stats);
        let mut all: Vec<_> = stats.values().cloned().collect();
        all.sort_by(|a, b| a.node.cmp(&b.node));
        all
    }

    /// Queues a command of no known sender for the loop (it holds every
    /// direct write back until the loop has it, unsettled.rs).
    pub(crate) fn push(&self, command: Command) {
        self.push_from(0, command);
    }

    /// Whether the agent with serial `sender` (0: none) may write directly
    /// (unsettled.rs step 3).
    pub(crate) fn settled_for(&self, sender: u64) -> bool {
        self.unsettled.settled_for(sender)
    }

    /// Queues a command of the agent with serial `sender` (0: none) for
    /// the loop and wakes it if it may be asleep.
    pub(crate) fn push_from(&self, sender: u64, command: Command) {
        if command.is_backlog() {
            let queued = self.backlog_commands.fetch_add(1, Ordering::Relaxed);
            if queued >= crate::config::BACKLOG_COMMANDS_MAX && command.is_message() {
                // A plain thread outpacing the network (agents wait long
                // before this): dropped and counted, never buffered without
                // bound.
                self.backlog_commands.fetch_sub(1, Ordering::Relaxed);
                self.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        // Counted before it is visible to the loop, which counts it out
        // after processing it.
        let bucket = if command.puts_bytes_on_a_connection() {
            crate::unsettled::Unsettled::bucket(sender)
        } else {
            crate::unsettled::Bucket::Uncounted
        };
        self.unsettled.add(bucket);
        crate::sync::lock(&self.commands).push_back((bucket, command));
        // AcqRel: pairs with the loop's swap(false) before it drains, so
        // either the loop sees our command or we see the flag cleared.
        if !self.wake_pending.swap(true, Ordering::AcqRel) {
            if let Some(waker) = crate::sync::lock(&self.waker).as_ref() {
                let _ = waker.wake();
            }
        }
    }

    /// `message`'s wire form, encoded on the calling thread in this node's
    /// pid context; a message that can never be sent is counted as dropped,
    /// logged (at most once a second, with the count held back) and
    /// refused.
    pub(crate) fn encode_message(
        &self,
        message: &Message,
    ) -> Result<crate::wire::WireMessage, erlangen_runtime::Error> {
        let encoded = {
            let _context = crate::pid::enter(self);
            self.types.encode_message(message)
        };
        encoded.map_err(|why| {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            let held = crate::sync::lock(&self.log).allow("unsendable-message");
            if let Some(held) = held {
                tracing::warn!(
                    node = %self.name,
                    type_name = message.value_type_name(),
                    %why,
                    held,
                    "erlangen: a message for another node was refused at its sender"
                );
            }
            erlangen_runtime::Error::NotSent(why.to_string())
        })
    }

    /// Whether senders should wait (backpressure, config.rs); counts the
    /// times it said so.
    pub(crate) fn busy(&self) -> bool {
        let busy = self.backlog_commands.load(Ordering::Relaxed) > BACKLOG_COMMANDS_HIGH_WATER
            || self.backlog_bytes.load(Ordering::Relaxed) > BACKLOG_BYTES_HIGH_WATER;
        if busy {
            self.busy_waits.fetch_add(1, Ordering::Relaxed);
        }
        busy
    }

    /// The id of `pid`; a local agent's id is remembered so that it
    /// resolves when it comes back. `None` for an agent of another runtime
    /// of this process that is not this node's: it has no id here.
    pub(crate) fn id_of(&self, pid: &Pid) -> Option<AgentId> {
        if !pid.is_remote() && !self.runtime.is_local(pid) {
            return None;
        }
        Some(match pid.as_remote() {
            Some(remote) => AgentId {
                node: remote.node().parse().unwrap_or_else(|_| self.name.clone()),
                incarnation: remote.incarnation(),
                serial: remote.serial(),
            },
            None => {
                if let Some(weak) = pid.downgrade() {
                    let mut exported = crate::sync::lock(&self.exported);
                    exported.by_serial.entry(pid.serial()).or_insert(weak);
                    if exported.by_serial.len() > 2 * exported.swept_len.max(1024) {
                        exported
                            .by_serial
                            .retain(|_, weak| weak.upgrade().is_some());
                        exported.swept_len = exported.by_serial.len();
                    }
                }
                AgentId {
                    node: self.name.clone(),
                    incarnation: self.incarnation,
                    serial: pid.serial(),
                }
            }
        })
    }

    /// The pid of `id`: ours if it names one of our agents, else a remote
    /// pid routed to its node (our own node for a stale id of ours, whose
    /// sends are then dropped and counted, and links answered `noproc`).
    pub(crate) fn pid_of(&self, id: &AgentId) -> Pid {
        if id.node == self.name && id.incarnation == self.incarnation {
            if let Some(pid) = self.local(id.serial) {
                return pid;
            }
        }
        let node = id.node.to_string();
        Pid::remote(RemotePid::new(
            node.as_str(),
            id.incarnation,
            id.serial,
            self.route(&node),
        ))
    }

    /// Our live (or still referenced) agent with `serial`, if its id went
    /// out.
    pub(crate) fn local(&self, serial: u64) -> Option<Pid> {
        crate::sync::lock(&self.exported)
            .by_serial
            .get(&serial)
            .and_then(WeakPid::upgrade)
    }

    /// The pid an Erlang pid stands for: one of our agents if it names one
    /// that went out, else a pid routed to its Erlang node. `None` if the
    /// node did not join Erlang's distribution.
    pub(crate) fn pid_of_erlang(&self, pid: &eetf::Pid) -> Option<Pid> {
        let erlang = self.erlang.as_ref()?;
        let serial = crate::erlang::serial_of(pid);
        if pid.node.name == erlang.name && pid.creation == erlang.creation {
            if let Some(local) = self.local(serial) {
                return Some(local);
            }
        }
        Some(Pid::remote(RemotePid::new(
            pid.node.name.as_str(),
            u64::from(pid.creation),
            serial,
            erlang.route.clone(),
        )))
    }

    /// `pid` as an Erlang pid (one of ours is exported, so that it
    /// resolves when it comes back). `None` if the node did not join
    /// Erlang's distribution, or `pid` is of a node of our own protocol.
    pub(crate) fn erlang_pid_of(&self, pid: &Pid) -> Option<eetf::Pid> {
        let erlang = self.erlang.as_ref()?;
        if let Some(remote) = pid.as_remote() {
            if !remote.node().contains('@') {
                return None;
            }
            let (id, serial) = crate::erlang::fields_of(remote.serial());
            return Some(eetf::Pid::new(
                remote.node(),
                id,
                serial,
                remote.incarnation() as u32,
            ));
        }
        self.id_of(pid)?;
        let (id, serial) = crate::erlang::fields_of(pid.serial());
        Some(eetf::Pid::new(
            erlang.name.as_str(),
            id,
            serial,
            erlang.creation,
        ))
    }

    /// The route to `node`: one for all nodes (the pid names its node),
    /// so that nothing is kept per node a pid ever named.
    pub(crate) fn route(&self, _node: &str) -> Arc<dyn Remote> {
        self.route.clone()
    }

    /// `outbox` is owed a write by a worker's flush (outbox.rs step 3).
    pub(crate) fn owe(&self, node: &str, outbox: Arc<Outbox>) {
        crate::sync::lock(&self.owed).push((node.to_owned(), outbox));
    }

    /// Writes every outbox owed a write (outbox.rs step 3); one that fails
    /// is left to the loop, which closes its connection (step 4).
    pub(crate) fn flush_owed(&self) {
        let owed = std::mem::take(&mut *crate::sync::lock(&self.owed));
        for (node, outbox) in owed {
            if let Direct::Failed | Direct::HandOver = outbox.flush_owed() {
                self.push(Command::Flush { node });
            }
        }
    }

    /// Signals to a remote pid from a local one (route.rs).
    pub(crate) fn signal(&self, from: Option<&Pid>, to: &RemotePid, signal: RemoteSignal) {
        let sender = from.filter(|pid| !pid.is_remote()).map_or(0, Pid::serial);
        self.push_from(
            sender,
            Command::Signal {
                from: from.cloned(),
                to: Target::of(to),
                signal,
            },
        );
    }
}

/// A node's pid conversions for Erlang terms, held weakly (what an agent
/// running an `ErlangFunction` gets: it does not keep the node alive).
pub(crate) struct WeakErlangPids(pub(crate) std::sync::Weak<NodeShared>);

impl crate::erlang::ErlangPids for WeakErlangPids {
    fn erlang_pid(&self, pid: &eetf::Pid) -> Option<Pid> {
        self.0.upgrade()?.pid_of_erlang(pid)
    }

    fn erlang_term_pid(&self, pid: &Pid) -> Option<eetf::Pid> {
        self.0.upgrade()?.erlang_pid_of(pid)
    }
}

impl crate::pid::Resolve for NodeShared {
    fn id_of(&self, pid: &Pid) -> Option<AgentId> {
        NodeShared::id_of(self, pid)
    }

    fn pid_of(&self, id: &AgentId) -> Pid {
        NodeShared::pid_of(self, id)
    }
}
