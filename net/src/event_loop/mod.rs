//! `EventLoop`: the one owner of `mio::Poll` in a node. It owns the
//! listener, every connection, the port-mapper registration and the
//! waker. Agents queue commands for it (`NodeShared::push`), except that a
//! sender's worker may append a message or reply to an up connection's
//! write buffer and write it itself, without blocking (outbox.rs). After
//! activity the loop polls for `poll_spin` before it sleeps, yielding the
//! core between polls (`erlangen_runtime::PoliteSpin`).
//! This file holds the loop itself (its turn, the commands, heartbeats,
//! shutdown); `dial.rs` reaching nodes and the port mapper, `connection.rs`
//! a connection's life, `packets.rs` packets both ways and remote spawns,
//! `edges.rs` links, monitors and watches across nodes and departed peers,
//! `whereis.rs` remote name lookups.
//!
//! # A connection's life
//!
//! 1. **Dial or accept.** A command for a node with no connection queues
//!    in that node's waiting list and starts a lookup of its port (a
//!    `PortMapperCall` this loop drives, portmap_call.rs), then a
//!    non-blocking connect. An accepted socket starts at step 2 at once.
//!    An accepted socket takes a slot of the handshake pool or is closed
//!    (`refusal_for`: the port mapper's rules).
//! 2. **Hello.** Each side sends its `Hello` and checks the peer's
//!    (version, name rule, the dialled name). Nothing else changes: the
//!    peer is not authenticated yet.
//! 3. **Auth.** The dialer proves first (handshake.rs, over the
//!    transcript). The acceptor checks that proof in constant time and only
//!    then, with the dialer authenticated, applies the tie-break
//!    (`settle_pair`): a connection already up with the same incarnation
//!    wins over the new one; a new incarnation replaces the old (whose edges
//!    fire `noconnection`); if both nodes dialled each other, the connection
//!    dialled by the node with the smaller name survives. If the new one
//!    survives, the acceptor proves in turn; the dialer counts a connection
//!    up only on that proof, so a loser never carried a packet. A bad proof
//!    closes the connection with a logged reason; nothing was delivered. A
//!    failed dial is tried again while commands wait (`dial_failed`), up to
//!    `DIAL_ATTEMPTS_MAX` times, then what waits fails with the reason.
//! 4. **Up.** The waiting list is written out, in order, then the
//!    connection's outbox opens to senders' direct writes; from now on every
//!    command for the node goes to this connection's write buffer, so the
//!    messages and signals between two agents keep their order (a direct
//!    write waits until no command is unsettled: outbox.rs step 2). One write
//!    budget covers the buffer: past `CONNECTION_WRITE_BYTES_HIGH_WATER`
//!    commands are held (in order) and nothing more is read from the
//!    connection, until it drains below the low-water mark.
//! 5. **Heartbeats.** A tick goes out after `heartbeat_interval` without a
//!    write; a connection silent for `heartbeat_timeout` is lost, and so is
//!    one whose write buffer made no progress for as long (a peer that does
//!    not read).
//! 6. **Loss** (EOF, error, bad input, silence, stop): every local link and
//!    monitor across it fires `noconnection` (each side fires its own half),
//!    pending remote spawns get an error, waiting messages are dropped and
//!    counted.

mod announce;
mod connection;
mod dial;
mod edges;
mod erlang;
mod erlang_dial;
mod erlang_signals;
mod global_sync;
mod group_sync;
mod large;
mod membership;
mod packets;
mod portmap_call;
mod probe;
mod whereis;

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use erlangen_portmap::listener::Listener;
use erlangen_portmap::log_limit::LogLimit;
use erlangen_runtime::Pid;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::config::{ACCEPTED_HANDSHAKE_TIMEOUT, HANDSHAKE_TIMEOUT};
use crate::frame;
use crate::handshake::Role;
use crate::outbox::Outbox;
use crate::shared::NodeShared;
use crate::wire::{WireAttach, KIND_TICK};

pub(crate) use crate::command::Command;
use portmap_call::{PortMapperCall, Purpose};

/// Stack of the loop's thread: decoding user types recurses on it.
pub(crate) const LOOP_STACK_BYTES: usize = 64 << 20;

/// First wait before registering again after the port mapper went away.
const REGISTER_BACKOFF_MIN: Duration = Duration::from_millis(50);

/// Longest wait between registration attempts.
const REGISTER_BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Most commands taken from the queue per turn of the loop.
const COMMANDS_PER_TURN_MAX: usize = 4096;

/// Most message types whose drops are logged once each (beyond it, drops
/// are only counted): the set is bounded whatever peers announce.
const LOGGED_TYPES_MAX: usize = 1024;

/// Most commands waiting for one node's connection.
const WAITING_COMMANDS_MAX: usize = 65_536;

/// Why a connection closed when the peer closed it.
const CLOSED_BY_PEER: &str = "closed by the peer";

/// Why the heartbeat tick closes a connection.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Loss {
    /// Bytes wait to be written and the peer has read none of them for a
    /// heartbeat timeout.
    Unread,
    /// Nothing came from the peer for a heartbeat timeout.
    Silent,
    /// The handshake did not finish in time.
    Handshake,
}

impl Loss {
    fn reason(self) -> &'static str {
        match self {
            Loss::Unread => "the peer does not read what it is sent",
            Loss::Silent => "the peer fell silent",
            Loss::Handshake => "the handshake timed out",
        }
    }
}

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const REGISTRATION: Token = Token(2);
const FIRST_CONNECTION: usize = 3;

/// Where a connection is in its life (module docs).
#[derive(Debug, PartialEq, Eq)]
enum Phase {
    /// Step 1: the non-blocking connect has not finished.
    Connecting,
    /// Steps 2 and 3.
    Handshake,
    /// Step 4.
    Up,
}

/// One TCP connection to a peer node.
struct Connection {
    stream: TcpStream,
    /// The TLS session every byte goes through, if the node runs TLS
    /// (tls.rs; the outbox holds it too, for writes).
    tls: Option<Arc<erlangen_portmap::tls::Session>>,
    role: Role,
    phase: Phase,
    /// The node we dialled, or the node that said hello.
    peer: Option<String>,
    /// The address an accepted connection came from (`None` for dials).
    from: Option<std::net::IpAddr>,
    peer_incarnation: u64,
    /// Our `Hello`'s body and theirs (the transcript).
    hello_mine: Vec<u8>,
    hello_theirs: Option<Vec<u8>>,
    /// Our proof went out (a dialer whose connection then closes was
    /// refused after it proved: different cookies, or the pair settled on
    /// the peer's own dial).
    proved: bool,
    /// The peer's message types and fingerprints.
    peer_types: HashMap<String, u64>,
    read: Vec<u8>,
    /// Large packets arriving in fragments (fragments.rs).
    incoming: crate::fragments::Incoming,
    /// The write side: buffer, counters, and direct writes of senders
    /// once up (outbox.rs).
    outbox: Arc<Outbox>,
    /// Commands for an up connection whose write buffer is over
    /// `CONNECTION_WRITE_BYTES_HIGH_WATER`, in order; they move into it as
    /// it drains (and count in the node's backlog until then, so that
    /// senders wait).
    held: VecDeque<Command>,
    /// The write buffer is over its high-water mark: nothing more is read
    /// from this connection (its requests would add replies) until it
    /// drains below the low-water mark.
    paused: bool,
    /// Counters, published to the node's stats on each tick (the
    /// outbound ones are the outbox's).
    packets_in: u64,
    bytes_in: u64,
    started: Instant,
    last_read: Instant,
    /// Round-trip probes (probe.rs): the one in flight, when the last went
    /// out, and the last round trip measured.
    probe: probe::Probe,
}

/// A node to dial again (`EventLoop::dial_failed`).
struct Redial {
    /// Dials tried so far.
    attempts: u32,
    /// When to try again; `None` while that dial is under way.
    at: Option<Instant>,
}

/// The node's event loop (module docs).
pub(crate) struct EventLoop {
    poll: Poll,
    shared: Arc<NodeShared>,
    listener: Listener,
    /// Set when descriptors ran out: when to try accepting again.
    accept_retry_at: Option<Instant>,
    registration: Option<TcpStream>,
    connections: crate::hashing::FastMap<Token, Connection>,
    next_token: usize,
    /// The connection that is up, by node.
    up: HashMap<String, Token>,
    /// Connections dialled and not yet up, by node.
    dialing: HashMap<String, Token>,
    /// Nodes whose port is being looked up.
    resolving: HashMap<String, Instant>,
    /// Calls to port mappers in flight (lookups, re-registration), by token.
    calls: HashMap<Token, PortMapperCall>,
    /// When to register again with our port mapper, after it went away.
    register_at: Option<Instant>,
    /// The wait before the next registration attempt.
    register_backoff: Duration,
    /// Nodes whose dial failed while commands wait for them: tried again
    /// after a backoff, `DIAL_ATTEMPTS_MAX` times in all.
    redials: HashMap<String, Redial>,
    /// Warnings a flood could repeat, let through once a second.
    log: LogLimit,
    /// Peers that disconnected, oldest first (`depart`).
    departed: VecDeque<String>,
    /// Commands waiting for a node's connection.
    waiting: HashMap<String, VecDeque<Command>>,
    /// Edges and watches across nodes, by remote node.
    edges: crate::edge_table::EdgeTable<String>,
    /// Remote spawns in flight: request → (node, caller, attach).
    spawns: HashMap<u64, (String, Pid, WireAttach)>,
    /// Large packets received: decoding off the loop, and what waits for
    /// them (large.rs).
    large_in: large::LargeIn,
    /// Remote name lookups in flight, by request (whereis.rs).
    lookups: HashMap<u64, whereis::Lookup>,
    /// The next lookup's request number.
    next_lookup: u64,
    /// Types whose messages were dropped, logged once each.
    logged_types: std::collections::HashSet<String>,
    /// Connections written to in this batch, flushed at its end.
    dirty: Vec<Token>,
    /// Connections that had more to read when their turn ended.
    unread: Vec<Token>,
    /// What each read call reads into (`config::READ_CHUNK_BYTES`),
    /// allocated and zeroed once.
    read_scratch: Box<[u8]>,
    /// Commands were left in the queue when the turn ended.
    more_commands: bool,
    stopping: bool,
    /// When the loop last had an event (the poll spin runs from there).
    last_activity: Instant,
    /// How the loop spins (erlangen_runtime::PoliteSpin).
    polite: erlangen_runtime::PoliteSpin,
    /// The Erlang distribution's listener and connections, if the node
    /// joined one (erlang.rs).
    erlang: Option<erlang::ErlangSide>,
}

impl EventLoop {
    /// A loop over `listener` holding `registration`, and over the Erlang
    /// side's listener and epmd registration if given.
    pub(crate) fn new(
        shared: Arc<NodeShared>,
        mut listener: Listener,
        registration: std::net::TcpStream,
        erlang: Option<(Listener, std::net::TcpStream)>,
    ) -> io::Result<EventLoop> {
        let poll = Poll::new()?;
        let erlang = match erlang {
            Some((listener, registration)) => Some(erlang::ErlangSide::new(
                poll.registry(),
                shared.clone(),
                listener,
                registration,
            )?),
            None => None,
        };
        poll.registry()
            .register(listener.socket(), LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        *crate::sync::lock(&shared.waker) = Some(waker);
        let mut event_loop = EventLoop {
            poll,
            shared,
            listener,
            accept_retry_at: None,
            registration: None,
            connections: crate::hashing::FastMap::default(),
            next_token: FIRST_CONNECTION,
            up: HashMap::new(),
            dialing: HashMap::new(),
            resolving: HashMap::new(),
            calls: HashMap::new(),
            register_at: None,
            register_backoff: REGISTER_BACKOFF_MIN,
            redials: HashMap::new(),
            log: LogLimit::default(),
            departed: VecDeque::new(),
            waiting: HashMap::new(),
            edges: Default::default(),
            spawns: HashMap::new(),
            lookups: HashMap::new(),
            large_in: large::LargeIn::default(),
            next_lookup: 0,
            logged_types: Default::default(),
            dirty: Vec::new(),
            unread: Vec::new(),
            read_scratch: vec![0; crate::config::READ_CHUNK_BYTES].into_boxed_slice(),
            more_commands: false,
            stopping: false,
            last_activity: Instant::now(),
            polite: erlangen_runtime::PoliteSpin::new(),
            erlang,
        };
        event_loop.hold_registration(registration)?;
        Ok(event_loop)
    }

    fn hold_registration(&mut self, stream: std::net::TcpStream) -> io::Result<()> {
        stream.set_nonblocking(true)?;
        let mut stream = TcpStream::from_std(stream);
        self.poll
            .registry()
            .register(&mut stream, REGISTRATION, Interest::READABLE)?;
        self.registration = Some(stream);
        Ok(())
    }

    /// The thread's body.
    pub(crate) fn run(mut self) {
        // Every event of the loop is logged inside the node's span.
        let span = tracing::info_span!("node", node = %self.shared.name);
        let _entered = span.enter();
        let mut events = Events::with_capacity(256);
        while !self.stopping {
            if self.accept_retry_at.is_some_and(|at| at <= Instant::now()) {
                self.accept_all();
            }
            self.register_if_due();
            self.redial_if_due();
            let busy = !self.unread.is_empty() || std::mem::take(&mut self.more_commands);
            // Poll without sleeping for a while after activity (config.rs
            // `POLL_SPIN_DEFAULT`): the next packet is read without a wake.
            let spinning =
                !self.polite.is_contended() && self.last_activity.elapsed() < self.shared.poll_spin;
            let timeout = if busy || spinning {
                Duration::ZERO
            } else {
                self.shared
                    .heartbeat_interval
                    .min(Duration::from_millis(100))
            };
            if let Err(error) = self.poll.poll(&mut events, Some(timeout)) {
                if error.kind() != io::ErrorKind::Interrupted {
                    tracing::error!(%error, "erlangen: node event loop cannot poll");
                    break;
                }
            }
            if !events.is_empty() {
                self.last_activity = Instant::now();
            } else if spinning {
                // Let a thread that wants the core have it (and stop
                // spinning for a while if one did).
                self.polite
                    .keep_going(self.last_activity, self.shared.poll_spin);
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_all(),
                    WAKER => {}
                    REGISTRATION => self.check_registration(),
                    token if erlang::ErlangSide::owns(token) => {
                        if let Some(side) = self.erlang.as_mut() {
                            side.on_event(token, self.poll.registry(), &self.shared);
                        }
                        self.erlang_effects();
                    }
                    token if self.calls.contains_key(&token) => self.call_event(token),
                    token => self.on_connection_event(token),
                }
            }
            for token in std::mem::take(&mut self.unread) {
                self.on_connection_event(token);
            }
            self.drain_commands();
            self.tick();
        }
        self.shut_down();
    }

    /// Takes every queued command (pitfalls.md §4: clear the flag first).
    ///
    /// At most `COMMANDS_PER_TURN_MAX` per turn: a fast sender must not keep
    /// the loop from reading its sockets (a peer's heartbeats unread look
    /// like silence). What is left is taken on the next turn, which then
    /// does not wait in `poll`.
    fn drain_commands(&mut self) {
        self.shared.wake_pending.store(false, Ordering::Release);
        let mut taken = 0;
        loop {
            let batch: Vec<(crate::unsettled::Bucket, Command)> = {
                let mut commands = crate::sync::lock(&self.shared.commands);
                let n = commands.len().min(COMMANDS_PER_TURN_MAX - taken);
                commands.drain(..n).collect()
            };
            if batch.is_empty() {
                return;
            }
            taken += batch.len();
            for (bucket, command) in batch {
                self.command(command);
                // What it wrote to a buffer is seen by a direct writer
                // that reads zero (unsettled.rs step 2).
                self.shared.unsettled.settle(bucket);
            }
            // One write per connection per batch (design-notes §8.6).
            for token in std::mem::take(&mut self.dirty) {
                self.flush(token);
            }
            self.erlang_effects();
            if taken >= COMMANDS_PER_TURN_MAX {
                self.more_commands = true;
                return;
            }
        }
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Stop => self.stopping = true,
            Command::CancelSpawn { request } => self.cancel_spawn(request),
            Command::Decoded(decoded) => self.on_decoded(*decoded),
            Command::ErlangSend { to, message } => {
                self.shared.backlog_commands.fetch_sub(1, Ordering::Relaxed);
                match self.erlang.as_mut() {
                    Some(side) => side.send_term(&to, &message, self.poll.registry(), &self.shared),
                    None => {
                        self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Command::ErlangSendNamed {
                from,
                node,
                name,
                message,
            } => {
                self.shared.backlog_commands.fetch_sub(1, Ordering::Relaxed);
                self.erlang_send_named(from.as_ref(), &node, &name, &message);
            }
            Command::ErlangSpawn {
                node,
                request,
                parent,
                module,
                function,
                args,
                link,
            } => {
                self.erlang_spawn_out(&node, request, parent, (&module, &function), &args, link);
            }
            Command::ErlangSignal { from, to, signal } => {
                self.erlang_signal(from, to, signal);
            }
            Command::Connect { node } => self.connect(node),
            Command::Groups { joined, left } => self.broadcast_groups(joined, left),
            Command::Globals {
                registered,
                released,
            } => self.broadcast_globals(registered, released),
            Command::Flush { node } => {
                if let Some(&token) = self.up.get(&node) {
                    self.flush(token);
                }
            }
            command => {
                let node = command
                    .node()
                    .expect("a routed command names its node")
                    .to_owned();
                if node == self.shared.name.to_string() {
                    self.deliver_here(command);
                } else if let Some(&token) = self.up.get(&node) {
                    self.send_or_hold(token, command);
                    if !self.dirty.contains(&token) {
                        self.dirty.push(token);
                    }
                } else {
                    self.wait_for(node, command);
                }
            }
        }
    }

    /// Step 5, and handshake deadlines.
    fn tick(&mut self) {
        if let Some(side) = self.erlang.as_mut() {
            side.tick(self.poll.registry());
        }
        self.erlang_effects();
        self.sweep_groups();
        self.sweep_globals();
        let now = Instant::now();
        let interval = self.shared.heartbeat_interval;
        let timeout = self.shared.heartbeat_timeout;
        let mut lost = Vec::new();
        let mut ticks = Vec::new();
        let mut probes = Vec::new();
        for (&token, connection) in &self.connections {
            let (unwritten, last_progress, last_write) = {
                let out = connection.outbox.lock();
                (out.queued_bytes() > 0, out.last_progress, out.last_write)
            };
            match connection.phase {
                // A buffer that makes no progress for the heartbeat timeout
                // means a peer that does not read: the connection closes.
                Phase::Up if unwritten && now.duration_since(last_progress) >= timeout => {
                    lost.push((token, Loss::Unread));
                }
                // A paused connection is not read from: its silence is
                // ours (the rule above covers it).
                Phase::Up if connection.paused => {}
                Phase::Up => {
                    if now.duration_since(connection.last_read) >= timeout {
                        lost.push((token, Loss::Silent));
                    } else if connection.probe.due(now, interval) {
                        // A probe is a tick too.
                        probes.push(token);
                    } else if now.duration_since(last_write) >= interval {
                        ticks.push(token);
                    }
                }
                _ => {
                    let deadline = match connection.role {
                        Role::Dialer => HANDSHAKE_TIMEOUT,
                        Role::Acceptor => ACCEPTED_HANDSHAKE_TIMEOUT,
                    };
                    if now.duration_since(connection.started) >= deadline {
                        lost.push((token, Loss::Handshake));
                    }
                }
            }
        }
        for token in ticks {
            if let Some(connection) = self.connections.get(&token) {
                let mut out = connection.outbox.lock();
                frame::encode(KIND_TICK, &[], &mut out.write);
                out.last_write = now;
            }
            self.flush(token);
        }
        for token in probes {
            if let Some(connection) = self.connections.get_mut(&token) {
                let body = connection.probe.send(now);
                let mut out = connection.outbox.lock();
                frame::encode(KIND_TICK, &body, &mut out.write);
                out.last_write = now;
            }
            self.flush(token);
        }
        for (token, why) in lost {
            if why == Loss::Unread {
                let peer = self.connections.get(&token).and_then(|c| c.peer.clone());
                let buffered = self
                    .connections
                    .get(&token)
                    .map_or(0, |c| c.outbox.lock().write.len());
                tracing::warn!(
                    peer = peer.as_deref().unwrap_or("?"),
                    buffered,
                    "erlangen: closing a connection whose peer does not read what it is sent"
                );
            }
            // Data may wait in the socket unread: that is no silence.
            if why == Loss::Silent {
                if let Err(read_error) = self.read_from(token) {
                    self.close(token, &read_error);
                    continue;
                }
                let heard = self.connections.get(&token).map(|c| c.last_read);
                if heard.is_some_and(|at| now.duration_since(at) < timeout) {
                    continue;
                }
            }
            self.close(token, why.reason());
        }
        let stale: Vec<String> = self
            .resolving
            .iter()
            .filter(|(_, since)| now.duration_since(**since) >= HANDSHAKE_TIMEOUT * 2)
            .map(|(node, _)| node.clone())
            .collect();
        for node in stale {
            self.resolving.remove(&node);
            let tokens: Vec<Token> = self
                .calls
                .iter()
                .filter(
                    |(_, call)| matches!(&call.purpose, Purpose::Lookup { node: n } if *n == node),
                )
                .map(|(token, _)| *token)
                .collect();
            for token in tokens {
                if let Some(mut call) = self.calls.remove(&token) {
                    let _ = self.poll.registry().deregister(&mut call.stream);
                }
            }
            self.dial_failed(&node, "the port-mapper lookup timed out");
        }
        self.publish_stats();
    }

    /// Copies each connection's counters to the node's per-peer stats.
    fn publish_stats(&self) {
        let mut stats = crate::sync::lock(&self.shared.stats);
        for connection in self.connections.values() {
            if let (Phase::Up, Some(peer)) = (&connection.phase, &connection.peer) {
                if let Some(entry) = stats.get_mut(peer) {
                    let out = connection.outbox.lock();
                    entry.buffered_bytes = out.write.len();
                    entry.last_heard = Some(connection.last_read);
                    entry.packets_in = connection.packets_in;
                    entry.packets_out = out.packets_out;
                    entry.direct_packets_out = out.direct_out;
                    entry.bytes_in = connection.bytes_in;
                    entry.bytes_out = out.bytes_out;
                    entry.round_trip = connection.probe.round_trip();
                }
            }
        }
    }

    /// Stop, step 2.
    fn shut_down(&mut self) {
        if let Some(side) = self.erlang.as_mut() {
            side.shut_down(self.poll.registry());
        }
        self.erlang_effects();
        let tokens: Vec<Token> = self.connections.keys().copied().collect();
        for token in tokens {
            self.flush(token);
            self.close(token, "the node stopped");
        }
        let peers: Vec<String> = self.edges.peers();
        for peer in peers {
            self.lose(&peer, "the node stopped");
        }
        let waiting: Vec<String> = self.waiting.keys().cloned().collect();
        for peer in waiting {
            self.lose(&peer, "the node stopped");
        }
        self.fail_lookups(None, "the node stopped");
        // Commands that arrived after the stop: answer spawns, drop the rest.
        let late: Vec<(crate::unsettled::Bucket, Command)> =
            crate::sync::lock(&self.shared.commands).drain(..).collect();
        for (bucket, command) in late {
            self.drop_command(command, "the node stopped");
            self.shared.unsettled.settle(bucket);
        }
        self.registration = None;
        *crate::sync::lock(&self.shared.waker) = None;
        tracing::info!(node = %self.shared.name, "erlangen: node stopped");
    }
}

/// The two greetings in transcript order.
fn transcript(connection: &Connection) -> (&[u8], &[u8]) {
    let theirs = connection.hello_theirs.as_deref().unwrap_or_default();
    match connection.role {
        Role::Dialer => (&connection.hello_mine, theirs),
        Role::Acceptor => (theirs, &connection.hello_mine),
    }
}
