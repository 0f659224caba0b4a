//! `Network`: the simulated transport between simulated nodes, behind the
//! same seam as TCP (the runtime's `Remote`), with the node protocol's
//! semantics: per-pair order, connections made on first use, loss found
//! by heartbeat timeout, `noconnection` on every edge across a lost
//! connection, `noproc` for ids of a node's earlier incarnation.
//!
//! # Protocol
//!
//! 1. **Send** (`Network::send`, on the sender's thread: an agent of the
//!    simulation). A signal's local half is recorded in the sending node's
//!    edge table; the message or signal is encoded with the sending node's
//!    types in its pid context. An unconnected pair connects (a new
//!    epoch) unless it is partitioned or its other node is down: then the
//!    packet is lost and the sender's edges to that node fire
//!    `noconnection` after `CONNECT_FAIL_DELAY`.
//! 2. **In flight.** Each direction of a pair is a FIFO queue: a packet is
//!    due at `max(now + drawn delay, the previous packet's due time)`, so
//!    order per pair holds whatever the delays. A timed action pumps the
//!    queue when the packet is due.
//! 3. **Pump.** While the pair is partitioned, nothing is delivered (the
//!    packets wait, as TCP retransmits). Otherwise every due packet of the
//!    current epoch is delivered in order; one of an earlier epoch was
//!    lost with its connection.
//! 4. **Deliver** at the receiving node: decoded in its pid context with
//!    its types; a message or reply goes to the local agent; a signal's
//!    half is recorded in the receiver's edge table and applied by its
//!    runtime. An id of another incarnation, or of an agent gone: the
//!    message is dropped and counted; a link or monitor is answered
//!    `noproc`.
//! 5. **Loss.** A partition that outlasts the heartbeat timeout (drawn
//!    between it and one interval more), a reset (drawn per packet from
//!    `Faults::reset_per_million`, or scripted), or a crash of either
//!    node ends the connection: both queues are dropped (counted) and on
//!    each side that is up, every recorded edge to the other node fires
//!    `noconnection` (a `Down` for a monitor held here, an exit signal
//!    otherwise), every watch likewise. The next send connects anew.
//!
//! Every table is ordered (`BTreeMap`, `Vec`): nothing here may depend on
//! a randomly seeded hash.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use erlangen_runtime::simulation::{SimEvent, SimHandle};
use erlangen_runtime::{Error, Message, Pid, RemotePid, RemoteSignal, Tag};

use super::node::SimNode;
use crate::config::{HEARTBEAT_INTERVAL_DEFAULT, HEARTBEAT_TIMEOUT_DEFAULT};
use crate::edge_table::{EdgeTable, Lost};
use crate::id::AgentId;
use crate::pid::Resolve;
use crate::sync::lock;
use crate::wire::{WireMessage, WireSignal};

/// How long a connection attempt to an unreachable node takes to fail
/// (virtual time).
const CONNECT_FAIL_DELAY: Duration = Duration::from_millis(1);

/// Faults a simulated network injects, drawn from the simulation's seed.
/// Partitions, resets and crashes can also be scripted
/// (`SimNet::partition` and the rest).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Faults {
    /// The least one-way delay of a packet.
    pub delay_min: Duration,
    /// The most one-way delay of a packet (order per pair is kept
    /// whatever the delays).
    pub delay_max: Duration,
    /// Chance, in parts per million, that a connection is reset right
    /// after it carries a packet.
    pub reset_per_million: u32,
    /// A partitioned connection is declared lost between this and one
    /// `heartbeat_interval` more.
    pub heartbeat_timeout: Duration,
    /// See `heartbeat_timeout`.
    pub heartbeat_interval: Duration,
}

impl Default for Faults {
    /// Loopback-like delays (20–200 µs), no resets, the node's default
    /// heartbeats.
    fn default() -> Faults {
        Faults {
            delay_min: Duration::from_micros(20),
            delay_max: Duration::from_micros(200),
            reset_per_million: 0,
            heartbeat_timeout: HEARTBEAT_TIMEOUT_DEFAULT,
            heartbeat_interval: HEARTBEAT_INTERVAL_DEFAULT,
        }
    }
}

impl Faults {
    /// Packets take between `min` and `max` one way.
    pub fn delay(mut self, min: Duration, max: Duration) -> Faults {
        self.delay_min = min;
        self.delay_max = max.max(min);
        self
    }

    /// A connection resets after a packet with this chance (per million).
    pub fn resets(mut self, per_million: u32) -> Faults {
        self.reset_per_million = per_million;
        self
    }
}

/// What a route hands the network (unencoded).
pub(crate) enum Payload {
    Message(Message),
    Reply(u64, Message),
    Signal(RemoteSignal),
}

/// A payload's wire form.
enum Wire {
    Message(WireMessage),
    Reply(u64, WireMessage),
    Signal(WireSignal),
}

impl Wire {
    /// What the trace says of it.
    fn describe(&self) -> String {
        match self {
            Wire::Message(m) => format!("message {}", m.type_name),
            Wire::Reply(_, m) => format!("reply {}", m.type_name),
            Wire::Signal(s) => format!("signal {}", signal_name(s)),
        }
    }
}

fn signal_name(signal: &WireSignal) -> &'static str {
    match signal {
        WireSignal::Link => "link",
        WireSignal::Monitor => "monitor",
        WireSignal::Unlink => "unlink",
        WireSignal::Kill(_) => "kill",
        WireSignal::EdgeExit(_) => "exit",
        WireSignal::Down(_) => "down",
        WireSignal::Watch(_) => "watch",
        WireSignal::Unwatch(_) => "unwatch",
        WireSignal::WatchDown(..) => "watch-down",
    }
}

/// A packet in flight.
struct InFlight {
    due_ns: u64,
    /// The connection it was sent on.
    epoch: u64,
    from: Option<AgentId>,
    to_serial: u64,
    to_incarnation: u64,
    wire: Wire,
}

/// One direction of a pair.
#[derive(Default)]
struct Direction {
    queue: VecDeque<InFlight>,
    last_due_ns: u64,
}

/// The connection between two nodes (`lo` < `hi`); `dirs[0]` is lo → hi.
#[derive(Default)]
struct Pair {
    connected: bool,
    /// Partitioned: nothing crosses, no connection can be made.
    cut: bool,
    /// Counts connections made.
    epoch: u64,
    dirs: [Direction; 2],
}

/// Guarded by the network's lock.
struct NetState {
    /// Each node's current incarnation, `None` while it is down.
    nodes: Vec<Option<Arc<SimNode>>>,
    /// Node names (`sim/<name>`), by index.
    names: Vec<String>,
    /// Each node's latest incarnation (kept while it is down).
    incarnations: Vec<u64>,
    pairs: BTreeMap<(u32, u32), Pair>,
    /// Each node's edges and watches, by peer node.
    edges: BTreeMap<u32, EdgeTable<u32>>,
    faults: Faults,
    dropped: u64,
}

/// The simulated network (module docs).
pub(crate) struct Network {
    sim: SimHandle,
    me: Weak<Network>,
    state: Mutex<NetState>,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network").finish_non_exhaustive()
    }
}

/// The pair key and direction of `from` → `to`.
fn pair_of(from: u32, to: u32) -> ((u32, u32), usize) {
    if from < to {
        ((from, to), 0)
    } else {
        ((to, from), 1)
    }
}

/// `d` in ns, saturating.
pub(super) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Network {
    /// An empty network of `sim`.
    pub(crate) fn new(sim: SimHandle, faults: Faults) -> Arc<Network> {
        Arc::new_cyclic(|me| Network {
            sim,
            me: me.clone(),
            state: Mutex::new(NetState {
                nodes: Vec::new(),
                names: Vec::new(),
                incarnations: Vec::new(),
                pairs: BTreeMap::new(),
                edges: BTreeMap::new(),
                faults,
                dropped: 0,
            }),
        })
    }

    /// A weak handle for the routes and the timed actions.
    pub(crate) fn weak(&self) -> Weak<Network> {
        self.me.clone()
    }

    /// Adds (or brings back) node `index` as `node`.
    pub(crate) fn node_up(&self, node: Arc<SimNode>) {
        let mut state = lock(&self.state);
        let index = node.index as usize;
        if state.nodes.len() <= index {
            state.nodes.resize(index + 1, None);
            state.names.resize(index + 1, String::new());
            state.incarnations.resize(index + 1, 0);
        }
        state.names[index] = node.name.to_string();
        state.incarnations[index] = node.incarnation;
        state.nodes[index] = Some(node);
    }

    /// Node `index`'s current incarnation, if it is up.
    pub(crate) fn node(&self, index: u32) -> Option<Arc<SimNode>> {
        lock(&self.state)
            .nodes
            .get(index as usize)
            .cloned()
            .flatten()
    }

    /// Node `index`'s latest incarnation (0 if it never was up).
    pub(crate) fn last_incarnation(&self, index: u32) -> u64 {
        lock(&self.state)
            .incarnations
            .get(index as usize)
            .copied()
            .unwrap_or(0)
    }

    /// Messages and signals lost or refused so far.
    pub(crate) fn dropped(&self) -> u64 {
        lock(&self.state).dropped
    }

    /// Whether `a` and `b` have a connection now.
    pub(crate) fn connected(&self, a: u32, b: u32) -> bool {
        let (key, _) = pair_of(a, b);
        lock(&self.state)
            .pairs
            .get(&key)
            .is_some_and(|pair| pair.connected)
    }

    fn record(&self, from: u32, to: u32, what: String) {
        self.sim.record(SimEvent::Network { from, to, what });
    }

    /// Step 1: `payload` from node `from` (from agent `from_pid`, for a
    /// signal) to `to`.
    pub(crate) fn send(
        &self,
        from: u32,
        from_pid: Option<&Pid>,
        to: &RemotePid,
        payload: Payload,
    ) -> Result<(), Error> {
        let (node, target) = {
            let state = lock(&self.state);
            let node = state.nodes.get(from as usize).cloned().flatten();
            let target = state.names.iter().position(|n| n == to.node());
            (node, target.map(|t| t as u32))
        };
        let Some(node) = node else {
            return Ok(());
        };
        if let (Payload::Signal(signal), Some(local), Some(target)) = (&payload, from_pid, target) {
            let remote = Pid::remote(RemotePid::new(
                to.node(),
                to.incarnation(),
                to.serial(),
                to.route().clone(),
            ));
            self.record_edge(from, target, local, &remote, signal, true);
        }
        let encoded = {
            let _context = crate::pid::enter(&*node);
            match payload {
                Payload::Message(message) => node
                    .types
                    .encode_message(&message)
                    .map(Wire::Message)
                    .map_err(|why| why.to_string()),
                Payload::Reply(tag, message) => node
                    .types
                    .encode_message(&message)
                    .map(|wire| Wire::Reply(tag, wire))
                    .map_err(|why| why.to_string()),
                Payload::Signal(signal) => node
                    .types
                    .encode_signal(&signal)
                    .map(Wire::Signal)
                    .ok_or_else(|| "a signal this protocol does not carry".to_owned()),
            }
        };
        let wire = match encoded {
            Ok(wire) => wire,
            Err(why) => {
                lock(&self.state).dropped += 1;
                return Err(Error::NotSent(why));
            }
        };
        let from_id = from_pid.and_then(|pid| node.id_of(pid));
        let Some(target) = target else {
            lock(&self.state).dropped += 1;
            return Ok(());
        };
        self.transmit(
            from,
            target,
            InFlight {
                due_ns: 0,
                epoch: 0,
                from: from_id,
                to_serial: to.serial(),
                to_incarnation: to.incarnation(),
                wire,
            },
        );
        Ok(())
    }

    /// Steps 1 (the connection) and 2.
    fn transmit(&self, from: u32, to: u32, mut packet: InFlight) {
        let (key, dir) = pair_of(from, to);
        let now = nanos(self.sim.now());
        let what = packet.wire.describe();
        let mut state = lock(&self.state);
        let target_up = state.nodes.get(to as usize).is_some_and(Option::is_some);
        let faults = state.faults.clone();
        let pair = state.pairs.entry(key).or_default();
        let mut connected_now = false;
        if !pair.connected {
            if pair.cut || !target_up {
                state.dropped += 1;
                drop(state);
                self.record(from, to, format!("unreachable, lost {what}"));
                let network = self.weak();
                self.sim.after(CONNECT_FAIL_DELAY, move || {
                    if let Some(network) = network.upgrade() {
                        network.connect_failed(from, to);
                    }
                });
                return;
            }
            pair.connected = true;
            pair.epoch += 1;
            connected_now = true;
        }
        let delay = self
            .sim
            .random_below(nanos(faults.delay_max) - nanos(faults.delay_min) + 1)
            + nanos(faults.delay_min);
        let direction = &mut pair.dirs[dir];
        let due = (now + delay).max(direction.last_due_ns);
        direction.last_due_ns = due;
        packet.due_ns = due;
        packet.epoch = pair.epoch;
        direction.queue.push_back(packet);
        drop(state);
        if connected_now {
            self.record(from, to, "connect".to_owned());
        }
        self.record(from, to, format!("send {what}"));
        let network = self.weak();
        self.sim.after(Duration::from_nanos(due - now), move || {
            if let Some(network) = network.upgrade() {
                network.pump(key, dir);
            }
        });
        if faults.reset_per_million > 0 && self.sim.chance(faults.reset_per_million) {
            let network = self.weak();
            self.sim
                .after(Duration::from_nanos(due - now + 1), move || {
                    if let Some(network) = network.upgrade() {
                        network.lose(key, "reset (drawn)");
                    }
                });
        }
    }

    /// Step 3 for one direction of `key`.
    fn pump(&self, key: (u32, u32), dir: usize) {
        let now = nanos(self.sim.now());
        let due: Vec<InFlight> = {
            let mut state = lock(&self.state);
            let Some(pair) = state.pairs.get_mut(&key) else {
                return;
            };
            if pair.cut {
                return;
            }
            let epoch = pair.epoch;
            let queue = &mut pair.dirs[dir].queue;
            let mut due = Vec::new();
            let mut lost = 0;
            while queue.front().is_some_and(|p| p.due_ns <= now) {
                let packet = queue.pop_front().expect("a front packet");
                if packet.epoch == epoch {
                    due.push(packet);
                } else {
                    lost += 1;
                }
            }
            state.dropped += lost;
            due
        };
        let (from, to) = if dir == 0 { key } else { (key.1, key.0) };
        for packet in due {
            self.deliver(from, to, packet);
        }
    }

    /// Step 4: `packet` from node `from` arrives at node `to`.
    fn deliver(&self, from: u32, to: u32, packet: InFlight) {
        let Some(node) = self.node(to) else {
            lock(&self.state).dropped += 1;
            return;
        };
        self.record(from, to, format!("deliver {}", packet.wire.describe()));
        let target = if packet.to_incarnation == node.incarnation {
            node.local(packet.to_serial)
        } else {
            None
        };
        let _context = crate::pid::enter(&*node);
        match packet.wire {
            Wire::Message(wire) | Wire::Reply(_, wire) if target.is_none() => {
                let _ = wire;
                lock(&self.state).dropped += 1;
            }
            Wire::Message(wire) => match node.types.decode_message(&wire.type_name, &wire.body) {
                Ok(message) => node
                    .runtime
                    .send(target.as_ref().expect("checked"), message),
                Err(_) => lock(&self.state).dropped += 1,
            },
            Wire::Reply(tag, wire) => {
                match node.types.decode_message(&wire.type_name, &wire.body) {
                    Ok(message) => {
                        let target = target.as_ref().expect("checked");
                        node.runtime.reply(target, Tag::from_id(tag), message);
                    }
                    Err(_) => lock(&self.state).dropped += 1,
                }
            }
            Wire::Signal(wire) => {
                let Ok(signal) = node.types.decode_signal(wire) else {
                    lock(&self.state).dropped += 1;
                    return;
                };
                let sender = packet.from.as_ref().map(|id| node.pid_of(id));
                match (target, sender) {
                    (Some(target), Some(sender)) => {
                        self.record_edge(to, from, &target, &sender, &signal, false);
                        node.runtime.signal(&sender, &target, signal);
                    }
                    (Some(target), None) => {
                        if let RemoteSignal::Kill(reason) = signal {
                            node.runtime.kill(&target, reason);
                        }
                    }
                    (None, Some(_)) => {
                        // The target is gone: a link or monitor gets noproc.
                        if let (Some(answer), Some(sender_id)) =
                            (signal.noproc_answer(), packet.from)
                        {
                            let Some(wire) = node.types.encode_signal(&answer) else {
                                return;
                            };
                            self.transmit(
                                to,
                                from,
                                InFlight {
                                    due_ns: 0,
                                    epoch: 0,
                                    from: Some(AgentId {
                                        node: node.name.clone(),
                                        incarnation: packet.to_incarnation,
                                        serial: packet.to_serial,
                                    }),
                                    to_serial: sender_id.serial,
                                    to_incarnation: sender_id.incarnation,
                                    wire: Wire::Signal(wire),
                                },
                            );
                        }
                    }
                    (None, None) => {}
                }
            }
        }
    }

    /// Keeps node `here`'s edge and watch tables in step with `signal`
    /// between its agent `local` and `remote` (of node `peer`);
    /// `outbound` when `local` sent it.
    fn record_edge(
        &self,
        here: u32,
        peer: u32,
        local: &Pid,
        remote: &Pid,
        signal: &RemoteSignal,
        outbound: bool,
    ) {
        let mut state = lock(&self.state);
        let table = state.edges.entry(here).or_default();
        let down = outbound && matches!(signal, RemoteSignal::Monitor);
        table.record(&peer, local, remote, signal, down);
        table.record_watch(&peer, local, remote, signal, outbound);
    }

    /// Step 5 for the pair `key`: the connection is lost.
    pub(crate) fn lose(&self, key: (u32, u32), why: &str) {
        let sides = {
            let mut state = lock(&self.state);
            let Some(pair) = state.pairs.get_mut(&key) else {
                return;
            };
            if !pair.connected {
                return;
            }
            pair.connected = false;
            pair.epoch += 1;
            let lost: usize = pair.dirs.iter().map(|d| d.queue.len()).sum();
            for direction in &mut pair.dirs {
                direction.queue.clear();
            }
            state.dropped += lost as u64;
            [(key.0, key.1), (key.1, key.0)]
                .map(|(here, peer)| self.take_side(&mut state, here, peer))
        };
        self.record(key.0, key.1, format!("connection lost: {why}"));
        for side in sides {
            fire(side);
        }
    }

    /// A connection attempt from `from` to `to` failed: `from`'s edges to
    /// `to` fire (step 1).
    fn connect_failed(&self, from: u32, to: u32) {
        let (key, _) = pair_of(from, to);
        let side = {
            let mut state = lock(&self.state);
            if state.pairs.get(&key).is_some_and(|pair| pair.connected) {
                return;
            }
            self.take_side(&mut state, from, to)
        };
        fire(side);
    }

    /// Takes node `here`'s edges and watches to `peer`, with the node (if
    /// it is up) that fires them.
    fn take_side(&self, state: &mut NetState, here: u32, peer: u32) -> Side {
        Side {
            node: state.nodes.get(here as usize).cloned().flatten(),
            lost: state
                .edges
                .get_mut(&here)
                .map(|table| table.take(&peer))
                .unwrap_or_default(),
        }
    }

    /// `a` and `b` can no longer reach each other; a connection between
    /// them is lost after the heartbeat timeout unless healed first.
    pub(crate) fn partition(&self, a: u32, b: u32) {
        let (key, _) = pair_of(a, b);
        let (connected, epoch, faults) = {
            let mut state = lock(&self.state);
            let faults = state.faults.clone();
            let pair = state.pairs.entry(key).or_default();
            pair.cut = true;
            (pair.connected, pair.epoch, faults)
        };
        self.sim.record(SimEvent::Fault {
            what: format!("partition n{a} n{b}"),
        });
        if connected {
            let timeout = nanos(faults.heartbeat_timeout);
            let detect = timeout + self.sim.random_below(nanos(faults.heartbeat_interval) + 1);
            let network = self.weak();
            self.sim.after(Duration::from_nanos(detect), move || {
                let Some(network) = network.upgrade() else {
                    return;
                };
                let still = lock(&network.state)
                    .pairs
                    .get(&key)
                    .is_some_and(|pair| pair.cut && pair.epoch == epoch);
                if still {
                    network.lose(key, "heartbeat timeout");
                }
            });
        }
    }

    /// Ends a partition: what waited is delivered.
    pub(crate) fn heal(&self, a: u32, b: u32) {
        let (key, _) = pair_of(a, b);
        lock(&self.state).pairs.entry(key).or_default().cut = false;
        self.sim.record(SimEvent::Fault {
            what: format!("heal n{a} n{b}"),
        });
        for dir in 0..2 {
            let network = self.weak();
            self.sim.after(Duration::ZERO, move || {
                if let Some(network) = network.upgrade() {
                    network.pump(key, dir);
                }
            });
        }
    }

    /// Node `index` is down: every connection of it is lost (its peers'
    /// edges fire at once, as a reset does), and its own tables go.
    pub(crate) fn node_down(&self, index: u32) {
        let keys: Vec<(u32, u32)> = {
            let mut state = lock(&self.state);
            if let Some(slot) = state.nodes.get_mut(index as usize) {
                *slot = None;
            }
            state
                .pairs
                .keys()
                .filter(|(a, b)| *a == index || *b == index)
                .copied()
                .collect()
        };
        for key in keys {
            self.lose(key, "node down");
        }
        lock(&self.state).edges.remove(&index);
    }
}

/// One side's edges and watches to fire on a loss.
struct Side {
    node: Option<Arc<SimNode>>,
    lost: Lost,
}

/// Fires `side`'s edges and watches with `noconnection` (step 5), if its
/// node is up.
fn fire(side: Side) {
    if let Some(node) = side.node {
        side.lost.fire(&node.runtime);
    }
}
