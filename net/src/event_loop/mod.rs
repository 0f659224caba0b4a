//! `EventLoop`: the one owner of `mio::Poll` in a node. It owns the
//! listener, every connection, the port-mapper registration and the
//! waker; agents never touch a socket, they queue commands (route.rs).
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
//! 4. **Up.** The waiting list is written out, in order; from now on every
//!    command for the node goes to this connection's write buffer, so the
//!    messages and signals between two agents keep their order. One write
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

mod command;
mod portmap_call;

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use erlangen_portmap::listener::{Accepted, Listener};
use erlangen_portmap::log_limit::LogLimit;
use erlangen_runtime::{
    ExitReason, ExitStatus, Message, Pid, RemotePid, RemoteSignal, SpawnOptions,
};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::config::{
    ACCEPTED_HANDSHAKE_TIMEOUT, CHALLENGE_BYTES, CONNECTIONS_MAX,
    CONNECTION_WRITE_BYTES_HIGH_WATER, CONNECTION_WRITE_BYTES_LOW_WATER, DEPARTED_PEERS_KEPT,
    DIAL_ATTEMPTS_MAX, DIAL_RETRY_BACKOFF, ERROR_TEXT_BYTES_MAX, FRAME_BODY_BYTES_MAX,
    HANDSHAKES_MAX, HANDSHAKES_NONLOCAL_SHARE_PERCENT, HANDSHAKES_PER_ADDRESS_MAX,
    HANDSHAKE_BODY_BYTES_MAX, HANDSHAKE_TIMEOUT, PROTOCOL_VERSION, READ_BYTES_PER_TURN_MAX,
};
use crate::frame;
use crate::handshake::{self, Role};
use crate::id::NodeName;
use crate::node::{NodeShared, SpawnResult, Target};
use crate::pid;
use crate::wire::{
    self, Auth, Hello, Packet, WireAttach, WireMessage, WireSignal, KIND_AUTH, KIND_HELLO,
    KIND_PACKET, KIND_TICK,
};

pub(crate) use command::Command;
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
    write: Vec<u8>,
    /// Commands for an up connection whose write buffer is over
    /// `CONNECTION_WRITE_BYTES_HIGH_WATER`, in order; they move into it as
    /// it drains (and count in the node's backlog until then, so that
    /// senders wait).
    held: VecDeque<Command>,
    /// The write buffer is over its high-water mark: nothing more is read
    /// from this connection (its requests would add replies) until it
    /// drains below the low-water mark.
    paused: bool,
    /// When bytes last left the write buffer, or it was last empty: a
    /// buffer that makes no progress for the heartbeat timeout means a peer
    /// that does not read, and the connection is closed.
    last_progress: Instant,
    /// Counters, published to the node's stats on each tick.
    packets_in: u64,
    packets_out: u64,
    bytes_in: u64,
    bytes_out: u64,
    started: Instant,
    last_read: Instant,
    last_write: Instant,
}

/// A node to dial again (`EventLoop::dial_failed`).
struct Redial {
    /// Dials tried so far.
    attempts: u32,
    /// When to try again; `None` while that dial is under way.
    at: Option<Instant>,
}

/// An observing monitor across nodes, kept by the node of its local agent.
struct WatchEdge {
    local: Pid,
    remote: Pid,
    /// The watch's id (the watcher's).
    id: u64,
    /// `local` watches `remote` (else `remote` watches `local`).
    ours: bool,
}

/// One half of a link or monitor across nodes, kept by the node of its
/// local agent (remote.rs "Edges across nodes").
struct Edge {
    local: Pid,
    remote: Pid,
    /// Fired as a `Down` (the local agent monitors the remote one).
    down: bool,
}

/// The node's event loop (module docs).
pub(crate) struct EventLoop {
    poll: Poll,
    shared: Arc<NodeShared>,
    listener: Listener,
    /// Set when descriptors ran out: when to try accepting again.
    accept_retry_at: Option<Instant>,
    registration: Option<TcpStream>,
    connections: HashMap<Token, Connection>,
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
    /// Edges across nodes, by remote node.
    edges: HashMap<String, Vec<Edge>>,
    /// Observing monitors across nodes, by remote node.
    watches: HashMap<String, Vec<WatchEdge>>,
    /// Remote spawns in flight: request → (node, caller, attach).
    spawns: HashMap<u64, (String, Pid, WireAttach)>,
    /// Types whose messages were dropped, logged once each.
    logged_types: std::collections::HashSet<String>,
    /// Connections written to in this batch, flushed at its end.
    dirty: Vec<Token>,
    /// Connections that had more to read when their turn ended.
    unread: Vec<Token>,
    /// Commands were left in the queue when the turn ended.
    more_commands: bool,
    stopping: bool,
}

impl EventLoop {
    /// A loop over `listener` holding `registration`.
    pub(crate) fn new(
        shared: Arc<NodeShared>,
        mut listener: Listener,
        registration: std::net::TcpStream,
    ) -> io::Result<EventLoop> {
        let poll = Poll::new()?;
        poll.registry()
            .register(listener.socket(), LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        *crate::sync_lock(&shared.waker) = Some(waker);
        let mut event_loop = EventLoop {
            poll,
            shared,
            listener,
            accept_retry_at: None,
            registration: None,
            connections: HashMap::new(),
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
            edges: HashMap::new(),
            watches: HashMap::new(),
            spawns: HashMap::new(),
            logged_types: Default::default(),
            dirty: Vec::new(),
            unread: Vec::new(),
            more_commands: false,
            stopping: false,
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
        let mut events = Events::with_capacity(256);
        while !self.stopping {
            if self.accept_retry_at.is_some_and(|at| at <= Instant::now()) {
                self.accept_all();
            }
            self.register_if_due();
            self.redial_if_due();
            let busy = !self.unread.is_empty() || std::mem::take(&mut self.more_commands);
            let timeout = if busy {
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
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_all(),
                    WAKER => {}
                    REGISTRATION => self.check_registration(),
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
            let batch: Vec<Command> = {
                let mut commands = crate::sync_lock(&self.shared.commands);
                let n = commands.len().min(COMMANDS_PER_TURN_MAX - taken);
                commands.drain(..n).collect()
            };
            if batch.is_empty() {
                return;
            }
            taken += batch.len();
            for command in batch {
                self.command(command);
            }
            // One write per connection per batch (design-notes §8.6).
            for token in std::mem::take(&mut self.dirty) {
                self.flush(token);
            }
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

    /// Queues `command` until `node` is up, dialling it if needed.
    fn wait_for(&mut self, node: String, command: Command) {
        self.record_outbound_edge(&command);
        let waiting = self.waiting.entry(node.clone()).or_default();
        if waiting.len() >= WAITING_COMMANDS_MAX {
            self.drop_command(command, "too many commands wait for the node");
            return;
        }
        waiting.push_back(command);
        let redial_pending = self.redials.get(&node).is_some_and(|r| r.at.is_some());
        if !self.dialing.contains_key(&node)
            && !self.resolving.contains_key(&node)
            && !redial_pending
        {
            self.resolve(node);
        }
    }

    /// Step 1: asks the port mapper of `node`'s host for its port, on a
    /// non-blocking connection this loop drives (portmap/PROTOCOL.md: read
    /// HELLO, send PORT, read the reply); `lookup_event` finishes it.
    fn resolve(&mut self, node: String) {
        self.resolving.insert(node.clone(), Instant::now());
        let started = match (self.port_mapper_of(&node), node.split_once('/')) {
            (Ok(addr), Some((_, name))) => self.start_lookup(addr, node.clone(), name.to_owned()),
            (Err(error), _) => Err(error),
            (_, None) => Err(format!("{node:?} is not host/node")),
        };
        if let Err(error) = started {
            self.resolved(node, Err(error));
        }
    }

    fn start_lookup(&mut self, addr: SocketAddr, node: String, name: String) -> Result<(), String> {
        let request = erlangen_portmap::wire::Request::Port { name };
        self.start_call(addr, Purpose::Lookup { node }, request)
    }

    /// Opens a non-blocking connection to the port mapper at `addr` for
    /// `request`.
    fn start_call(
        &mut self,
        addr: SocketAddr,
        purpose: Purpose,
        request: erlangen_portmap::wire::Request,
    ) -> Result<(), String> {
        let mut stream =
            TcpStream::connect(addr).map_err(|e| format!("port mapper {addr}: {e}"))?;
        let token = Token(self.next_token);
        self.next_token += 1;
        self.poll
            .registry()
            .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
            .map_err(|e| e.to_string())?;
        self.calls.insert(
            token,
            PortMapperCall {
                stream,
                purpose,
                request,
                port_mapper: addr,
                read: Vec::new(),
                asked: false,
            },
        );
        Ok(())
    }

    /// Drives a call to a port mapper and acts on its answer: a lookup
    /// goes on to connect (`resolved`); a registration is held again, or
    /// retried after a backoff.
    fn call_event(&mut self, token: Token) {
        let outcome = match self.calls.get_mut(&token) {
            Some(call) => call.advance(),
            None => return,
        };
        let Some(result) = outcome else {
            return;
        };
        let Some(mut call) = self.calls.remove(&token) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut call.stream);
        use erlangen_portmap::wire::Reply;
        match (call.purpose, result) {
            (Purpose::Lookup { node }, Ok(Reply::Port { port })) => {
                let addr = SocketAddr::new(call.port_mapper.ip(), port);
                self.resolved(node, Ok(addr));
            }
            (Purpose::Lookup { node }, Ok(other)) => {
                self.resolved(node, Err(format!("port mapper: unexpected {other:?}")));
            }
            (Purpose::Lookup { node }, Err(error)) => self.resolved(node, Err(error)),
            (Purpose::Register, Ok(Reply::Ack)) => {
                let mut stream = call.stream;
                match self
                    .poll
                    .registry()
                    .register(&mut stream, REGISTRATION, Interest::READABLE)
                {
                    Ok(()) => {
                        tracing::info!(node = %self.shared.name, "erlangen: registered again with the port mapper");
                        self.registration = Some(stream);
                        self.register_backoff = REGISTER_BACKOFF_MIN;
                    }
                    Err(error) => self.retry_registration(&error.to_string()),
                }
            }
            (Purpose::Register, Ok(other)) => {
                self.retry_registration(&format!("unexpected {other:?}"));
            }
            (Purpose::Register, Err(error)) => self.retry_registration(&error),
        }
    }

    /// Registers again after `register_backoff` (doubling, up to 2 s).
    fn retry_registration(&mut self, why: &str) {
        tracing::debug!(why, "erlangen: registration failed; retrying");
        self.register_at = Some(Instant::now() + self.register_backoff);
        self.register_backoff = (self.register_backoff * 2).min(REGISTER_BACKOFF_MAX);
    }

    /// Starts a registration call if one is due (and none runs).
    fn register_if_due(&mut self) {
        if self.stopping || self.register_at.is_none_or(|at| at > Instant::now()) {
            return;
        }
        self.register_at = None;
        let request = erlangen_portmap::wire::Request::Register {
            name: self.shared.name.name().to_owned(),
            port: self.shared.local_addr.port(),
        };
        if let Err(error) = self.start_call(self.shared.port_mapper, Purpose::Register, request) {
            self.retry_registration(&error);
        }
    }

    /// The port mapper of `node`'s host: ours for our own host name or a
    /// loopback name, else the host's default port.
    fn port_mapper_of(&self, node: &str) -> Result<SocketAddr, String> {
        let host = node.split('/').next().unwrap_or_default();
        if host == self.shared.name.host() || host == "localhost" || host == "127.0.0.1" {
            return Ok(self.shared.port_mapper);
        }
        use std::net::ToSocketAddrs;
        (host, erlangen_portmap::PORT_DEFAULT)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .next()
            .ok_or_else(|| format!("{host} has no address"))
    }

    fn resolved(&mut self, node: String, result: Result<SocketAddr, String>) {
        self.resolving.remove(&node);
        if self.up.contains_key(&node) || self.dialing.contains_key(&node) {
            return;
        }
        let addr = match result {
            Ok(addr) => addr,
            Err(error) => {
                self.dial_failed(&node, &format!("lookup failed: {error}"));
                return;
            }
        };
        match TcpStream::connect(addr) {
            Ok(stream) => {
                match self.add_connection(stream, Role::Dialer, Some(node.clone()), None) {
                    Ok(token) => {
                        self.dialing.insert(node, token);
                    }
                    Err(why) => self.dial_failed(&node, why),
                }
            }
            Err(error) => self.dial_failed(&node, &format!("connect failed: {error}")),
        }
    }

    /// Takes `stream` into the connection table, or says why not: the
    /// table is full, or (for an accepted connection from `from`) the
    /// handshake pool's rules refuse it (`refusal_for`).
    fn add_connection(
        &mut self,
        mut stream: TcpStream,
        role: Role,
        peer: Option<String>,
        from: Option<SocketAddr>,
    ) -> Result<Token, &'static str> {
        if self.connections.len() >= CONNECTIONS_MAX {
            return Err("the connection limit is reached");
        }
        if let Some(why) = from.and_then(|from| self.refusal_for(from.ip())) {
            return Err(why);
        }
        let token = Token(self.next_token);
        self.next_token += 1;
        if self
            .poll
            .registry()
            .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
            .is_err()
        {
            return Err("cannot register the connection");
        }
        let now = Instant::now();
        let mut connection = Connection {
            stream,
            role,
            phase: if role == Role::Dialer {
                Phase::Connecting
            } else {
                Phase::Handshake
            },
            peer,
            from: from.map(|from| from.ip()),
            peer_incarnation: 0,
            hello_mine: Vec::new(),
            hello_theirs: None,
            proved: false,
            peer_types: HashMap::new(),
            read: Vec::new(),
            write: Vec::new(),
            held: VecDeque::new(),
            paused: false,
            last_progress: now,
            packets_in: 0,
            packets_out: 0,
            bytes_in: 0,
            bytes_out: 0,
            started: now,
            last_read: now,
            last_write: now,
        };
        if role == Role::Acceptor {
            self.send_hello(&mut connection);
        }
        self.connections.insert(token, connection);
        Ok(token)
    }

    /// Why an accepted connection from `ip` gets no slot, if it gets none
    /// (PROTOCOL.md "Slots"): accepted connections still in their
    /// handshake hold at most `HANDSHAKES_MAX` slots, those from addresses
    /// other than 127.0.0.1 and ::1 at most their share of those, and one
    /// such address at most `HANDSHAKES_PER_ADDRESS_MAX`. Established
    /// peers and the node's own dials are never displaced.
    fn refusal_for(&self, ip: std::net::IpAddr) -> Option<&'static str> {
        let trusted = erlangen_portmap::server::is_trusted(ip);
        let mut handshakes = 0;
        let mut nonlocal = 0;
        let mut same_address = 0;
        for connection in self.connections.values() {
            let Some(from) = connection.from else {
                continue;
            };
            if connection.phase == Phase::Up {
                continue;
            }
            handshakes += 1;
            if !erlangen_portmap::server::is_trusted(from) {
                nonlocal += 1;
                if from == ip {
                    same_address += 1;
                }
            }
        }
        if handshakes >= HANDSHAKES_MAX {
            return Some("too many handshakes");
        }
        if trusted {
            return None;
        }
        if nonlocal >= HANDSHAKES_MAX * HANDSHAKES_NONLOCAL_SHARE_PERCENT / 100 {
            return Some("non-loopback addresses hold their share of the handshakes");
        }
        if same_address >= HANDSHAKES_PER_ADDRESS_MAX {
            return Some("this address holds as many handshakes as one may");
        }
        None
    }

    fn send_hello(&self, connection: &mut Connection) {
        let challenge = handshake::challenge().unwrap_or([0; CHALLENGE_BYTES]);
        let hello = Hello {
            version: PROTOCOL_VERSION,
            node: self.shared.name.clone(),
            incarnation: self.shared.incarnation,
            challenge,
            types: self.shared.types.announce(),
        };
        let body = wire::encode(&hello).expect("a hello encodes");
        frame::encode(KIND_HELLO, &body, &mut connection.write);
        connection.hello_mine = body;
    }

    /// Accepts every pending connection (the port mapper's listener.rs:
    /// it keeps accepting after descriptors ran out, and says when to try
    /// again if it cannot).
    fn accept_all(&mut self) {
        let mut accepted = Vec::new();
        let mut refused = 0u64;
        let outcome = self.listener.accept_all(
            &mut |stream, peer| accepted.push((stream, peer)),
            &mut |stream, _peer| {
                refused += 1;
                drop(stream);
            },
            &mut |error| tracing::warn!(%error, "erlangen: accept failed"),
        );
        if refused > 0 {
            if let Some(held) = self.log.allow("out-of-descriptors") {
                tracing::warn!(
                    refused,
                    held,
                    "erlangen: out of descriptors; refused connections"
                );
            }
        }
        for (stream, peer) in accepted {
            let _ = stream.set_nodelay(true);
            match self.add_connection(stream, Role::Acceptor, None, Some(peer)) {
                Ok(token) => self.flush(token),
                Err(why) => {
                    if let Some(held) = self.log.allow("connection-refused") {
                        tracing::warn!(%peer, why, held, "erlangen: refused a connection");
                    }
                }
            }
        }
        self.accept_retry_at = match outcome {
            Accepted::Drained => None,
            Accepted::Exhausted => Some(Instant::now() + crate::config::ACCEPT_RETRY),
        };
    }

    fn check_registration(&mut self) {
        let Some(stream) = self.registration.as_mut() else {
            return;
        };
        let mut byte = [0u8; 64];
        let closed = loop {
            match stream.read(&mut byte) {
                Ok(0) => break true,
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break false,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break true,
            }
        };
        if !closed {
            return;
        }
        if let Some(mut stream) = self.registration.take() {
            let _ = self.poll.registry().deregister(&mut stream);
        }
        tracing::warn!("erlangen: the port mapper went away; registering again");
        self.register_at = Some(Instant::now());
    }

    fn on_connection_event(&mut self, token: Token) {
        let Some(connection) = self.connections.get_mut(&token) else {
            return;
        };
        if connection.phase == Phase::Connecting {
            match connection.stream.peer_addr() {
                Ok(_) => {
                    let _ = connection.stream.set_nodelay(true);
                    connection.phase = Phase::Handshake;
                    let mut connection = self.connections.remove(&token).expect("present");
                    self.send_hello(&mut connection);
                    self.connections.insert(token, connection);
                }
                Err(error) if error.kind() == io::ErrorKind::NotConnected => {
                    if let Ok(Some(error)) | Err(error) = connection.stream.take_error() {
                        self.close(token, &format!("connect failed: {error}"));
                    }
                    return;
                }
                Err(error) => {
                    self.close(token, &format!("connect failed: {error}"));
                    return;
                }
            }
        }
        if let Err(why) = self.read_from(token) {
            self.close(token, &why);
            return;
        }
        self.flush(token);
    }

    /// Reads what is there (up to a turn's worth) and handles every
    /// complete frame.
    fn read_from(&mut self, token: Token) -> Result<(), String> {
        let mut chunk = [0u8; 16 * 1024];
        let mut total = 0usize;
        loop {
            let connection = self.connections.get_mut(&token).ok_or("gone")?;
            if connection.paused {
                // The write budget is spent: leave the rest in the socket
                // (flush resumes reading once the buffer drains).
                return Ok(());
            }
            match connection.stream.read(&mut chunk) {
                Ok(0) => {
                    self.handle_frames(token)?;
                    return Err(CLOSED_BY_PEER.to_owned());
                }
                Ok(n) => {
                    connection.read.extend_from_slice(&chunk[..n]);
                    connection.last_read = Instant::now();
                    total += n;
                    connection.bytes_in += n as u64;
                    if total >= READ_BYTES_PER_TURN_MAX {
                        // Give other connections, commands and heartbeats
                        // a turn; readiness is edge-triggered, so come back
                        // without waiting for another event.
                        if !self.unread.contains(&token) {
                            self.unread.push(token);
                        }
                        return self.handle_frames(token);
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    return self.handle_frames(token);
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) if error.kind() == io::ErrorKind::ConnectionReset => {
                    return Err(CLOSED_BY_PEER.to_owned());
                }
                Err(error) => return Err(format!("read failed: {error}")),
            }
        }
    }

    /// Handles every complete frame in the read buffer, then drops them
    /// from it at once (one move of the partial tail, not one per frame).
    fn handle_frames(&mut self, token: Token) -> Result<(), String> {
        let mut buffer = match self.connections.get_mut(&token) {
            Some(connection) => std::mem::take(&mut connection.read),
            None => return Err("gone".to_owned()),
        };
        let mut offset = 0;
        let result = loop {
            let Some(connection) = self.connections.get_mut(&token) else {
                break Err("gone".to_owned());
            };
            if connection.write.len() >= CONNECTION_WRITE_BYTES_HIGH_WATER {
                // Every frame may add a reply: stop here until the peer
                // reads what it was sent (the rest stays buffered).
                connection.paused = true;
                break Ok(());
            }
            let max = if connection.phase == Phase::Up {
                FRAME_BODY_BYTES_MAX
            } else {
                HANDSHAKE_BODY_BYTES_MAX
            };
            let (kind, range) = match frame::parse(&buffer[offset..], max) {
                Ok(Some((frame, used))) => {
                    let start = offset + used - frame.body.len();
                    (frame.kind, start..offset + used)
                }
                Ok(None) => break Ok(()),
                Err(error) => break Err(error.to_string()),
            };
            offset = range.end;
            if let Err(why) = self.handle_frame(token, kind, &buffer[range]) {
                break Err(why);
            }
        };
        buffer.drain(..offset);
        if let Some(connection) = self.connections.get_mut(&token) {
            buffer.extend_from_slice(&connection.read);
            connection.read = buffer;
        }
        result
    }

    fn handle_frame(&mut self, token: Token, kind: u8, body: &[u8]) -> Result<(), String> {
        let phase_up = self
            .connections
            .get(&token)
            .is_some_and(|c| c.phase == Phase::Up);
        match (kind, phase_up) {
            (KIND_HELLO, false) => self.on_hello(token, body),
            (KIND_AUTH, false) => self.on_auth(token, body),
            (KIND_TICK, true) => Ok(()),
            (KIND_PACKET, true) => {
                if let Some(connection) = self.connections.get_mut(&token) {
                    connection.packets_in += 1;
                }
                let packet: Packet = {
                    let _context = pid::enter(&self.shared);
                    wire::decode(body).map_err(|e| format!("bad packet: {e}"))?
                };
                self.on_packet(token, packet)
            }
            (kind, _) => Err(format!("unexpected frame kind {kind}")),
        }
    }

    /// Step 2: the peer's `Hello`. Nothing here changes the node's state
    /// beyond this connection: the peer is not authenticated yet.
    fn on_hello(&mut self, token: Token, body: &[u8]) -> Result<(), String> {
        let hello: Hello = wire::decode(body).map_err(|e| format!("bad hello: {e}"))?;
        if hello.version != PROTOCOL_VERSION {
            return Err(format!(
                "protocol version {} (we speak {PROTOCOL_VERSION})",
                hello.version
            ));
        }
        NodeName::new(hello.node.host(), hello.node.name())
            .map_err(|e| format!("bad node name in hello: {e}"))?;
        let peer = hello.node.to_string();
        let connection = self.connections.get_mut(&token).ok_or("gone")?;
        if connection.hello_theirs.is_some() {
            return Err("a second hello".to_owned());
        }
        if peer == self.shared.name.to_string() {
            return Err("a node cannot connect to itself".to_owned());
        }
        match (&connection.peer, connection.role) {
            (Some(dialled), Role::Dialer) if *dialled != peer => {
                return Err(format!("dialled {dialled} but {peer} answered"));
            }
            _ => {}
        }
        connection.peer = Some(peer);
        connection.peer_incarnation = hello.incarnation;
        connection.peer_types = hello.types.into_iter().collect();
        connection.hello_theirs = Some(body.to_vec());
        // The dialer proves first; the acceptor proves only once the
        // dialer's proof verified and the pair is settled (`on_auth`).
        if connection.role == Role::Dialer {
            self.send_auth(token);
        }
        Ok(())
    }

    /// Appends our proof over the transcript to `token`'s write buffer.
    fn send_auth(&mut self, token: Token) {
        let Some(connection) = self.connections.get_mut(&token) else {
            return;
        };
        let (dialer, acceptor) = transcript(connection);
        let proof = handshake::prove(&self.shared.cookie, connection.role, dialer, acceptor);
        let auth = wire::encode(&Auth { proof }).expect("an auth encodes");
        frame::encode(KIND_AUTH, &auth, &mut connection.write);
        connection.proved = true;
    }

    /// Step 3's tie-break, on the acceptor, once the dialer proved the
    /// cookie: one connection per pair of nodes (module docs). `Err` closes
    /// the new connection; its peer redials if it still needs us.
    fn settle_pair(&mut self, peer: &str, incarnation: u64) -> Result<(), String> {
        if let Some(&old) = self.up.get(peer) {
            let old_incarnation = self.connections.get(&old).map_or(0, |c| c.peer_incarnation);
            // The peer may have closed the old one while we could not see
            // it yet (we were stopped): look before refusing.
            if let Err(why) = self.read_from(old) {
                self.close(old, &why);
            } else if old_incarnation == incarnation {
                return Err(format!("{peer} is already connected"));
            }
        }
        if let Some(&old) = self.up.get(peer) {
            self.close(old, "the peer restarted (new incarnation)");
        }
        if let Some(&dialled) = self.dialing.get(peer) {
            if self.shared.name.to_string().as_str() < peer {
                return Err(format!("{peer} and we dialled each other; ours wins"));
            }
            // Theirs wins: drop ours, which carried nothing yet (the peer
            // proves on a connection it accepted only after this point).
            // What waits for the peer goes out on the new connection.
            self.dialing.remove(peer);
            if let Some(mut connection) = self.connections.remove(&dialled) {
                let _ = self.poll.registry().deregister(&mut connection.stream);
            }
        }
        Ok(())
    }

    /// Step 3: the peer's proof. Only from here on may the connection
    /// change anything beyond itself.
    fn on_auth(&mut self, token: Token, body: &[u8]) -> Result<(), String> {
        let auth: Auth = wire::decode(body).map_err(|e| format!("bad auth: {e}"))?;
        let connection = self.connections.get_mut(&token).ok_or("gone")?;
        if connection.hello_theirs.is_none() {
            return Err("auth before hello".to_owned());
        }
        let their_role = match connection.role {
            Role::Dialer => Role::Acceptor,
            Role::Acceptor => Role::Dialer,
        };
        let (dialer, acceptor) = transcript(connection);
        if !handshake::verify(
            &self.shared.cookie,
            their_role,
            dialer,
            acceptor,
            &auth.proof,
        ) {
            let peer = connection.peer.clone().unwrap_or_default();
            if let Some(held) = self.log.allow("bad-proof") {
                tracing::warn!(%peer, held, "erlangen: refused a handshake: wrong cookie or replayed proof");
            }
            return Err(
                "handshake refused: the peer's proof is wrong (different cookies?)".to_owned(),
            );
        }
        let role = connection.role;
        let incarnation = connection.peer_incarnation;
        let peer = connection.peer.clone().expect("named at hello");
        if role == Role::Acceptor {
            self.settle_pair(&peer, incarnation)?;
            self.send_auth(token);
        }
        let connection = self.connections.get_mut(&token).ok_or("gone")?;
        connection.phase = Phase::Up;
        if let Some(&old) = self.up.get(&peer) {
            if old != token {
                self.close(old, "replaced by a newer connection");
            }
        }
        self.dialing.remove(&peer);
        self.redials.remove(&peer);
        self.up.insert(peer.clone(), token);
        {
            let mut stats = crate::sync_lock(&self.shared.stats);
            let entry = stats.entry(peer.clone()).or_default();
            entry.node = peer.clone();
            entry.connected = true;
        }
        tracing::info!(node = %self.shared.name, %peer, "erlangen: connected");
        // Step 4: what waited goes out in order, as the write budget
        // allows.
        if let Some(waiting) = self.waiting.remove(&peer) {
            if let Some(connection) = self.connections.get_mut(&token) {
                connection.held.extend(waiting);
            }
            self.release_held(token);
        }
        Ok(())
    }

    /// Appends a command's packet to `token`'s write buffer, or holds it
    /// behind the ones already held while the buffer is over its
    /// high-water mark.
    fn send_or_hold(&mut self, token: Token, command: Command) {
        let Some(connection) = self.connections.get_mut(&token) else {
            return;
        };
        if !connection.held.is_empty()
            || connection.write.len() >= CONNECTION_WRITE_BYTES_HIGH_WATER
        {
            connection.held.push_back(command);
        } else {
            self.send_on(token, command);
        }
    }

    /// Moves held commands into the write buffer while it is under its
    /// high-water mark.
    fn release_held(&mut self, token: Token) {
        loop {
            let Some(connection) = self.connections.get_mut(&token) else {
                return;
            };
            if connection.write.len() >= CONNECTION_WRITE_BYTES_HIGH_WATER {
                return;
            }
            let Some(command) = connection.held.pop_front() else {
                return;
            };
            self.send_on(token, command);
        }
    }

    /// Appends `packet` to `token`'s write buffer behind its header,
    /// encoded in place, if its body is within the frame limit the peer
    /// enforces on reads; else nothing is appended, and the error says why.
    fn write_packet(&mut self, token: Token, packet: &Packet) -> Result<(), String> {
        let Some(connection) = self.connections.get_mut(&token) else {
            return Err("the connection is gone".to_owned());
        };
        let at = frame::begin(KIND_PACKET, &mut connection.write);
        let encoded = {
            let _context = pid::enter(&self.shared);
            wire::encode_into(packet, &mut connection.write)
        };
        let length = connection.write.len() - at - frame::HEADER_BYTES;
        match encoded {
            Ok(()) if length <= FRAME_BODY_BYTES_MAX => {
                frame::finish(at, &mut connection.write);
                connection.packets_out += 1;
                connection.bytes_out += length as u64;
                Ok(())
            }
            Ok(()) => {
                connection.write.truncate(at);
                Err(format!(
                    "{length} bytes exceed the frame limit of {FRAME_BODY_BYTES_MAX}"
                ))
            }
            Err(error) => {
                connection.write.truncate(at);
                Err(error.to_string())
            }
        }
    }

    /// Appends a command's packet to `token`'s write buffer.
    fn send_on(&mut self, token: Token, command: Command) {
        self.settle(&command);
        self.record_outbound_edge(&command);
        let Some(connection) = self.connections.get(&token) else {
            return;
        };
        let incarnation = connection.peer_incarnation;
        let packet = {
            let _context = pid::enter(&self.shared);
            self.packet_of(command, incarnation, token)
        };
        let Some(packet) = packet else {
            return;
        };
        // Encoded straight into the write buffer (no body allocation per
        // packet).
        if let Err(error) = self.write_packet(token, &packet) {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            if let Some(held) = self.log.allow("unwritable-packet") {
                tracing::warn!(%error, held, "erlangen: cannot write a packet; dropped");
            }
        }
    }

    /// The packet for a command (on the loop, in the codec's context), or
    /// `None` if it is dropped (stale incarnation, unregistered type).
    fn packet_of(&mut self, command: Command, incarnation: u64, token: Token) -> Option<Packet> {
        match command {
            Command::Send { to, message } => {
                if to.incarnation != incarnation {
                    self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
                let message = self.wire_message(message, token)?;
                Some(Packet::Message {
                    to: to.serial,
                    message,
                })
            }
            Command::SendNamed { name, message, .. } => {
                let message = self.wire_message(message, token)?;
                Some(Packet::Named { name, message })
            }
            Command::Signal { from, to, signal } => {
                if to.incarnation != incarnation {
                    self.answer_stale(from.as_ref(), &to, &signal);
                    return None;
                }
                let from_id = from.as_ref().and_then(|pid| self.shared.id_of(pid));
                Some(Packet::Signal {
                    from: from_id,
                    to: to.serial,
                    signal: self.wire_signal(&signal)?,
                })
            }
            Command::Reply { to, tag, message } => {
                if to.incarnation != incarnation {
                    self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
                let message = self.wire_message(message, token)?;
                Some(Packet::Reply {
                    to: to.serial,
                    tag,
                    message,
                })
            }
            Command::Spawn {
                node,
                request,
                parent,
                attach,
                function,
                args,
                mailbox_len,
            } => {
                let args = match args() {
                    Ok(args) => args,
                    Err(error) => {
                        self.spawn_failed(
                            &parent,
                            request,
                            format!("cannot encode the arguments: {error}"),
                        );
                        return None;
                    }
                };
                let Some(parent_id) = self.shared.id_of(&parent) else {
                    self.spawn_failed(
                        &parent,
                        request,
                        "the caller is not an agent of this node's runtime".to_owned(),
                    );
                    return None;
                };
                self.spawns.insert(request, (node, parent, attach));
                Some(Packet::Spawn {
                    request,
                    parent: parent_id,
                    attach,
                    function,
                    args,
                    mailbox_len,
                })
            }
            _ => None,
        }
    }

    /// A message's wire form, if the peer announced its type with the
    /// same fingerprint.
    fn wire_message(&mut self, message: WireMessage, token: Token) -> Option<WireMessage> {
        let name = &message.type_name;
        let theirs = self
            .connections
            .get(&token)
            .and_then(|c| c.peer_types.get(name));
        if theirs.is_some() && theirs.copied() == self.shared.types.fingerprint(name) {
            return Some(message);
        }
        self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        if self.logged_types.len() < LOGGED_TYPES_MAX && self.logged_types.insert(name.clone()) {
            tracing::warn!(type_name = %name, "erlangen: a message type not registered for distribution on both nodes was dropped (logged once per type)");
        }
        None
    }

    /// A signal's wire form (`None` for a kind this protocol does not
    /// carry: dropped, never sent as something else).
    fn wire_signal(&self, signal: &RemoteSignal) -> Option<WireSignal> {
        let types = &self.shared.types;
        Some(match signal {
            RemoteSignal::Link => WireSignal::Link,
            RemoteSignal::Monitor => WireSignal::Monitor,
            RemoteSignal::Unlink => WireSignal::Unlink,
            RemoteSignal::Kill(reason) => WireSignal::Kill(types.encode_reason(reason)),
            RemoteSignal::EdgeExit(reason) => WireSignal::EdgeExit(types.encode_reason(reason)),
            RemoteSignal::Down(status) => WireSignal::Down(types.encode_status(status)),
            RemoteSignal::Watch { id } => WireSignal::Watch(*id),
            RemoteSignal::Unwatch { id } => WireSignal::Unwatch(*id),
            RemoteSignal::WatchDown { id, status } => {
                WireSignal::WatchDown(*id, types.encode_status(status))
            }
            _ => return None,
        })
    }

    /// Remembers the local half of a link or monitor going out, and forgets
    /// an edge that fires or is unlinked.
    fn record_outbound_edge(&mut self, command: &Command) {
        let Command::Signal {
            from: Some(local),
            to,
            signal,
        } = command
        else {
            return;
        };
        let remote = self.remote_pid(to);
        // A local agent that monitors a remote one gets a `Down` on loss.
        let local_monitors = matches!(signal, RemoteSignal::Monitor);
        self.record_edge(&to.node, local, &remote, signal, local_monitors);
        self.record_watch(&to.node, local, &remote, signal, true);
    }

    fn remote_pid(&self, target: &Target) -> Pid {
        Pid::remote(RemotePid::new(
            target.node.as_str(),
            target.incarnation,
            target.serial,
            self.shared.route(&target.node),
        ))
    }

    /// A signal to an id of an incarnation that is gone: a link or monitor
    /// gets `noproc`, anything else is dropped.
    fn answer_stale(&mut self, from: Option<&Pid>, to: &Target, signal: &RemoteSignal) {
        let Some(local) = from else {
            return;
        };
        let remote = self.remote_pid(to);
        self.forget_edge(&to.node, local, &remote);
        match signal.noproc_answer() {
            Some(answer) => self.shared.runtime.signal(&remote, local, answer),
            None => {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// A command for our own node: only ids of ours that did not resolve
    /// to a live agent when they came back (stale ones) get here.
    fn deliver_here(&mut self, command: Command) {
        self.settle(&command);
        match command {
            // Stale ids of ours (a live one resolves before it is sent), or
            // names here (`Node::send_named` delivers those itself): count.
            Command::Send { .. } | Command::SendNamed { .. } => {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Command::Signal { from, to, signal } => match (self.own(&to), signal) {
                (Some(target), RemoteSignal::Kill(reason)) => {
                    self.shared.runtime.kill(&target, reason);
                }
                // A link, monitor or edge signal by an id of ours that did
                // not resolve to a live agent: `noproc` for a link or monitor.
                (_, signal) => self.answer_stale(from.as_ref(), &to, &signal),
            },
            Command::Spawn {
                parent, request, ..
            } => {
                self.spawn_failed(
                    &parent,
                    request,
                    "spawn on the own node: use ctx.spawn".to_owned(),
                );
            }
            _ => {}
        }
    }

    fn own(&self, to: &Target) -> Option<Pid> {
        (to.incarnation == self.shared.incarnation)
            .then(|| self.shared.local(to.serial))
            .flatten()
    }

    /// A packet from an established connection.
    fn on_packet(&mut self, token: Token, packet: Packet) -> Result<(), String> {
        let peer = self
            .connections
            .get(&token)
            .and_then(|c| c.peer.clone())
            .ok_or("gone")?;
        match packet {
            Packet::Message { to, message } => {
                if let Some(message) = self.decode_message(&message) {
                    match self.shared.local(to) {
                        Some(pid) => self.shared.runtime.send(&pid, message),
                        None => {
                            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            Packet::Named { name, message } => {
                if let Some(message) = self.decode_message(&message) {
                    match self.shared.runtime.whereis(&name) {
                        Some(pid) => self.shared.runtime.send(&pid, message),
                        None => {
                            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            Packet::Signal { from, to, signal } => self.on_signal(&peer, from, to, signal)?,
            Packet::Spawn {
                request,
                parent,
                attach,
                function,
                args,
                mailbox_len,
            } => {
                self.on_spawn(
                    token,
                    &peer,
                    request,
                    parent,
                    attach,
                    &function,
                    &args,
                    mailbox_len,
                );
            }
            Packet::SpawnReply {
                request,
                parent: _,
                result,
            } => self.on_spawn_reply(token, request, result),
            Packet::Reply { to, tag, message } => {
                if let Some(message) = self.decode_message(&message) {
                    match self.shared.local(to) {
                        Some(pid) => {
                            let tag = erlangen_runtime::Tag::from_id(tag);
                            self.shared.runtime.reply(&pid, tag, message);
                        }
                        None => {
                            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// A message from its wire form; one that does not decode here (an
    /// unknown type, or a value past `VALUE_DECODE_BYTES_MAX`) is dropped
    /// and counted, and its connection stays up: the frame around it was
    /// sound.
    fn decode_message(&mut self, wire: &WireMessage) -> Option<Message> {
        let decoded = {
            let _context = pid::enter(&self.shared);
            self.shared.types.decode_message(wire)
        };
        match decoded {
            Ok(message) => Some(message),
            Err(error) => {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                if let Some(held) = self.log.allow("undecodable-message") {
                    let type_name = wire::bounded_text(wire.type_name.clone(), 256);
                    tracing::warn!(%type_name, %error, held, "erlangen: a message that does not decode was dropped");
                }
                None
            }
        }
    }

    fn on_signal(
        &mut self,
        peer: &str,
        from: Option<crate::id::AgentId>,
        to: u64,
        signal: WireSignal,
    ) -> Result<(), String> {
        let types = &self.shared.types;
        let signal = match signal {
            WireSignal::Link => RemoteSignal::Link,
            WireSignal::Monitor => RemoteSignal::Monitor,
            WireSignal::Unlink => RemoteSignal::Unlink,
            WireSignal::Kill(reason) => {
                RemoteSignal::Kill(types.decode_reason(&reason).map_err(|e| e.to_string())?)
            }
            WireSignal::EdgeExit(reason) => {
                RemoteSignal::EdgeExit(types.decode_reason(&reason).map_err(|e| e.to_string())?)
            }
            WireSignal::Down(status) => {
                RemoteSignal::Down(types.decode_status(&status).map_err(|e| e.to_string())?)
            }
            WireSignal::Watch(id) => RemoteSignal::Watch { id },
            WireSignal::Unwatch(id) => RemoteSignal::Unwatch { id },
            WireSignal::WatchDown(id, status) => RemoteSignal::WatchDown {
                id,
                status: types.decode_status(&status).map_err(|e| e.to_string())?,
            },
        };
        let from = match from {
            Some(id) if id.node.to_string() == peer => Some(self.shared.pid_of(&id)),
            Some(_) => return Err("a signal from an agent of another node".to_owned()),
            None => None,
        };
        let target = self.shared.local(to);
        match (target, from) {
            (Some(target), Some(from)) => {
                self.record_edge(peer, &target, &from, &signal, false);
                self.record_watch(peer, &target, &from, &signal, false);
                self.shared.runtime.signal(&from, &target, signal);
            }
            (Some(target), None) => {
                if let RemoteSignal::Kill(reason) = signal {
                    self.shared.runtime.kill(&target, reason);
                }
            }
            (None, Some(from)) => {
                // The target is gone: a link or monitor gets noproc.
                if let (Some(answer), Some(remote)) = (signal.noproc_answer(), from.as_remote()) {
                    self.reply_from_serial(peer, to, Target::of(remote), &answer);
                }
            }
            (None, None) => {}
        }
        Ok(())
    }

    /// Sends `signal` to `to` as from our (missing) agent `serial`.
    fn reply_from_serial(&mut self, peer: &str, serial: u64, to: Target, signal: &RemoteSignal) {
        let Some(&token) = self.up.get(peer) else {
            return;
        };
        let Some(signal) = self.wire_signal(signal) else {
            return;
        };
        let packet = Packet::Signal {
            from: Some(crate::id::AgentId {
                node: self.shared.name.clone(),
                incarnation: self.shared.incarnation,
                serial,
            }),
            to: to.serial,
            signal,
        };
        let _ = self.write_packet(token, &packet);
    }

    /// Keeps the edge table in step with a signal between `local` and
    /// `remote` (of node `peer`), either way: a link or monitor adds the
    /// local half (`down`: fired as a `Down` on loss), an unlink or a fired
    /// edge removes it.
    fn record_edge(
        &mut self,
        peer: &str,
        local: &Pid,
        remote: &Pid,
        signal: &RemoteSignal,
        down: bool,
    ) {
        match signal {
            RemoteSignal::Link | RemoteSignal::Monitor => {
                self.remember_edge(peer, local, remote, down)
            }
            RemoteSignal::Unlink | RemoteSignal::EdgeExit(_) | RemoteSignal::Down(_) => {
                self.forget_edge(peer, local, remote);
            }
            _ => {}
        }
    }

    /// Keeps the watch table in step with a watch signal between `local`
    /// and `remote` (of node `peer`): `outbound` when `local` sent it. A
    /// watch going out (ours of theirs) or coming in (theirs of ours) is
    /// remembered; an unwatch or a fired watch forgets it.
    fn record_watch(
        &mut self,
        peer: &str,
        local: &Pid,
        remote: &Pid,
        signal: &RemoteSignal,
        outbound: bool,
    ) {
        let (id, add, ours) = match signal {
            RemoteSignal::Watch { id } => (*id, true, outbound),
            RemoteSignal::Unwatch { id } => (*id, false, outbound),
            // A WatchDown from the watched side ends the watcher's watch.
            RemoteSignal::WatchDown { id, .. } => (*id, false, !outbound),
            _ => return,
        };
        let watches = self.watches.entry(peer.to_owned()).or_default();
        if add {
            watches.push(WatchEdge {
                local: local.clone(),
                remote: remote.clone(),
                id,
                ours,
            });
        } else {
            watches.retain(|w| {
                !(w.id == id && w.ours == ours && w.local == *local && w.remote == *remote)
            });
        }
    }

    /// Adds the local half of an edge (once).
    fn remember_edge(&mut self, peer: &str, local: &Pid, remote: &Pid, down: bool) {
        let edges = self.edges.entry(peer.to_owned()).or_default();
        if !edges
            .iter()
            .any(|e| e.local == *local && e.remote == *remote)
        {
            edges.push(Edge {
                local: local.clone(),
                remote: remote.clone(),
                down,
            });
        }
    }

    /// Removes the local half of an edge.
    fn forget_edge(&mut self, peer: &str, local: &Pid, remote: &Pid) {
        if let Some(edges) = self.edges.get_mut(peer) {
            edges.retain(|e| !(e.local == *local && e.remote == *remote));
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_spawn(
        &mut self,
        token: Token,
        peer: &str,
        request: u64,
        parent: crate::id::AgentId,
        attach: WireAttach,
        function: &str,
        args: &[u8],
        mailbox_len: Option<u32>,
    ) {
        let parent_pid = self.shared.pid_of(&parent);
        let mut options = SpawnOptions::new().attach(match attach {
            WireAttach::None => None,
            WireAttach::Link => Some(erlangen_runtime::Attach::Link),
            WireAttach::Monitor => Some(erlangen_runtime::Attach::Monitor),
        });
        if let Some(len) = mailbox_len {
            options = options.mailbox_len(len as usize);
        }
        let started = {
            let _context = pid::enter(&self.shared);
            self.shared.functions.start(
                function,
                &self.shared.runtime,
                args,
                options,
                (attach != WireAttach::None).then_some(&parent_pid),
                &mut |_| {},
            )
        };
        let result = match started {
            Ok(child) => {
                let id = self
                    .shared
                    .id_of(&child)
                    .expect("spawned on this node's runtime");
                if attach != WireAttach::None {
                    self.remember_edge(peer, &child, &parent_pid, false);
                }
                Ok(id.serial)
            }
            Err(why) => Err(why),
        };
        let packet = Packet::SpawnReply {
            request,
            parent: parent.serial,
            result: result.map_err(|why| wire::bounded_text(why, ERROR_TEXT_BYTES_MAX)),
        };
        if let Err(error) = self.write_packet(token, &packet) {
            tracing::warn!(%error, "erlangen: cannot write a spawn reply");
        }
    }

    /// A spawn's caller gave up waiting (`Command::CancelSpawn`): fail the
    /// request if it is still pending here, whether written or waiting for
    /// its node. Its caller then finds exactly one answer.
    fn cancel_spawn(&mut self, request: u64) {
        const WHY: &str = "timed out waiting for the node's answer";
        if let Some((_, parent, _)) = self.spawns.remove(&request) {
            self.spawn_failed(&parent, request, WHY.to_owned());
            return;
        }
        for waiting in self.waiting.values_mut() {
            let at = waiting.iter().position(
                |command| matches!(command, Command::Spawn { request: r, .. } if *r == request),
            );
            if let Some(Command::Spawn { parent, .. }) = at.and_then(|at| waiting.remove(at)) {
                self.spawn_failed(&parent, request, WHY.to_owned());
                return;
            }
        }
    }

    fn on_spawn_reply(&mut self, token: Token, request: u64, result: Result<u64, String>) {
        let Some((node, parent, attach)) = self.spawns.remove(&request) else {
            // Its caller gave up: a child started after all must not live
            // on unseen.
            if let (Ok(serial), Some(connection)) = (result, self.connections.get(&token)) {
                let target = Target {
                    node: connection.peer.clone().unwrap_or_default(),
                    incarnation: connection.peer_incarnation,
                    serial,
                };
                let command = Command::Signal {
                    from: None,
                    to: target,
                    signal: RemoteSignal::Kill(ExitReason::other(
                        "its remote spawn was cancelled by the caller",
                    )),
                };
                self.send_on(token, command);
            }
            return;
        };
        let incarnation = self
            .connections
            .get(&token)
            .map_or(0, |c| c.peer_incarnation);
        let result = result.map(|serial| {
            let target = Target {
                node: node.clone(),
                incarnation,
                serial,
            };
            let child = self.remote_pid(&target);
            if attach != WireAttach::None {
                if self.shared.runtime.attach_half(&parent, &child) {
                    let down = attach == WireAttach::Monitor;
                    self.remember_edge(&node, &parent, &child, down);
                } else {
                    // The caller died meanwhile: its death kills the child.
                    let command = Command::Signal {
                        from: Some(parent.clone()),
                        to: target,
                        signal: RemoteSignal::EdgeExit(ExitReason::NoProc),
                    };
                    self.send_on(token, command);
                }
            }
            child
        });
        self.shared
            .runtime
            .send(&parent, Message::new(SpawnResult { request, result }));
    }

    fn spawn_failed(&self, parent: &Pid, request: u64, why: String) {
        self.shared.runtime.send(
            parent,
            Message::new(SpawnResult {
                request,
                result: Err(why),
            }),
        );
    }

    /// A command leaves the backlog (written, delivered here, or dropped).
    fn settle(&self, command: &Command) {
        if command.is_backlog() {
            self.shared.backlog_commands.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn drop_command(&mut self, command: Command, why: &str) {
        self.settle(&command);
        match command {
            Command::Spawn {
                parent, request, ..
            } => self.spawn_failed(&parent, request, why.to_owned()),
            Command::Send { .. } | Command::SendNamed { .. } => {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    /// Writes what the buffer holds until the socket would block.
    fn flush(&mut self, token: Token) {
        let Some(connection) = self.connections.get_mut(&token) else {
            return;
        };
        if connection.phase == Phase::Connecting {
            return;
        }
        let mut written = 0;
        let result = loop {
            if written == connection.write.len() {
                break Ok(());
            }
            match connection.stream.write(&connection.write[written..]) {
                Ok(0) => break Err("write returned 0".to_owned()),
                Ok(n) => written += n,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break Ok(()),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => break Err(format!("write failed: {error}")),
            }
        };
        connection.write.drain(..written);
        if written > 0 {
            connection.last_write = Instant::now();
        }
        if written > 0 || connection.write.is_empty() {
            connection.last_progress = Instant::now();
        }
        if connection.write.capacity() > 64 * 1024 && connection.write.len() < 16 * 1024 {
            connection.write.shrink_to(16 * 1024);
        }
        let drained = connection.write.len() < CONNECTION_WRITE_BYTES_LOW_WATER;
        if let Err(why) = result {
            self.close(token, &why);
        } else if drained {
            self.release_held(token);
            if let Some(connection) = self.connections.get_mut(&token) {
                if connection.paused && connection.write.len() < CONNECTION_WRITE_BYTES_LOW_WATER {
                    // Read again (readiness is edge-triggered: what waits
                    // in the socket raises no new event).
                    connection.paused = false;
                    if !self.unread.contains(&token) {
                        self.unread.push(token);
                    }
                }
                if !connection.write.is_empty() && !self.dirty.contains(&token) {
                    self.dirty.push(token);
                }
            }
        }
        let buffered = self.connections.values().map(|c| c.write.len()).sum();
        self.shared.backlog_bytes.store(buffered, Ordering::Relaxed);
    }

    /// Step 5, and handshake deadlines.
    fn tick(&mut self) {
        let now = Instant::now();
        let interval = self.shared.heartbeat_interval;
        let timeout = self.shared.heartbeat_timeout;
        let mut lost = Vec::new();
        let mut ticks = Vec::new();
        for (&token, connection) in &self.connections {
            match connection.phase {
                Phase::Up
                    if !connection.write.is_empty()
                        && now.duration_since(connection.last_progress) >= timeout =>
                {
                    lost.push((token, "the peer does not read what it is sent"));
                }
                // A paused connection is not read from: its silence is
                // ours (the rule above covers it).
                Phase::Up if connection.paused => {}
                Phase::Up => {
                    if now.duration_since(connection.last_read) >= timeout {
                        lost.push((token, "the peer fell silent"));
                    } else if now.duration_since(connection.last_write) >= interval {
                        ticks.push(token);
                    }
                }
                _ => {
                    let deadline = match connection.role {
                        Role::Dialer => HANDSHAKE_TIMEOUT,
                        Role::Acceptor => ACCEPTED_HANDSHAKE_TIMEOUT,
                    };
                    if now.duration_since(connection.started) >= deadline {
                        lost.push((token, "the handshake timed out"));
                    }
                }
            }
        }
        for token in ticks {
            if let Some(connection) = self.connections.get_mut(&token) {
                frame::encode(KIND_TICK, &[], &mut connection.write);
                connection.last_write = now;
            }
            self.flush(token);
        }
        for (token, why) in lost {
            if why == "the peer does not read what it is sent" {
                let peer = self.connections.get(&token).and_then(|c| c.peer.clone());
                let buffered = self.connections.get(&token).map_or(0, |c| c.write.len());
                tracing::warn!(
                    peer = peer.as_deref().unwrap_or("?"),
                    buffered,
                    "erlangen: closing a connection whose peer does not read what it is sent"
                );
            }
            // Data may wait in the socket unread: that is no silence.
            if why == "the peer fell silent" {
                if let Err(read_error) = self.read_from(token) {
                    self.close(token, &read_error);
                    continue;
                }
                let heard = self.connections.get(&token).map(|c| c.last_read);
                if heard.is_some_and(|at| now.duration_since(at) < timeout) {
                    continue;
                }
            }
            self.close(token, why);
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
        let mut stats = crate::sync_lock(&self.shared.stats);
        for connection in self.connections.values() {
            if let (Phase::Up, Some(peer)) = (&connection.phase, &connection.peer) {
                if let Some(entry) = stats.get_mut(peer) {
                    entry.buffered_bytes = connection.write.len();
                    entry.last_heard = Some(connection.last_read);
                    entry.packets_in = connection.packets_in;
                    entry.packets_out = connection.packets_out;
                    entry.bytes_in = connection.bytes_in;
                    entry.bytes_out = connection.bytes_out;
                }
            }
        }
    }

    /// Closes a connection; if it was up, step 6; if it was our dial,
    /// `dial_failed`. An accepted connection that never proved itself
    /// changes nothing else.
    fn close(&mut self, token: Token, why: &str) {
        self.publish_stats();
        let Some(mut connection) = self.connections.remove(&token) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut connection.stream);
        let Some(peer) = connection.peer else {
            tracing::debug!(why, "erlangen: closed an unnamed connection");
            return;
        };
        let was_up = self.up.get(&peer) == Some(&token);
        let was_dialing = self.dialing.get(&peer) == Some(&token);
        if was_up {
            self.up.remove(&peer);
            tracing::info!(node = %self.shared.name, %peer, why, "erlangen: disconnected");
            let mut stats = crate::sync_lock(&self.shared.stats);
            if let Some(entry) = stats.get_mut(&peer) {
                entry.connected = false;
                entry.errors += 1;
            }
            drop(stats);
            self.depart(peer.clone());
            self.lose(&peer, why);
        } else if was_dialing {
            self.dialing.remove(&peer);
            let why = if connection.proved && why == CLOSED_BY_PEER {
                "the peer closed the handshake after our proof: \
                 the cookies differ, or it kept another connection"
            } else {
                why
            };
            tracing::warn!(%peer, why, "erlangen: a dial failed");
            self.dial_failed(&peer, why);
        } else if let Some(held) = self.log.allow("handshake-closed") {
            tracing::debug!(%peer, why, held, "erlangen: an accepted connection closed before it was up");
        }
    }

    /// A dial of `peer` (its lookup, connect or handshake) failed: if
    /// commands still wait for it and attempts are left, dial again after a
    /// backoff (a simultaneous dial that lost the tie-break on the peer's
    /// side ends here too, and the peer's own dial then carries what
    /// waits); else step 6, so nothing waits for a node that will not come.
    fn dial_failed(&mut self, peer: &str, why: &str) {
        if self.up.contains_key(peer)
            || self.dialing.contains_key(peer)
            || self.resolving.contains_key(peer)
        {
            return;
        }
        let attempts = self.redials.get(peer).map_or(1, |r| r.attempts);
        let waits = self.waiting.get(peer).is_some_and(|w| !w.is_empty());
        if waits && attempts < DIAL_ATTEMPTS_MAX {
            let backoff = DIAL_RETRY_BACKOFF * (1 << attempts.min(8));
            self.redials.insert(
                peer.to_owned(),
                Redial {
                    attempts: attempts + 1,
                    at: Some(Instant::now() + backoff),
                },
            );
            return;
        }
        self.lose(peer, why);
    }

    /// Starts the dials whose backoff is over.
    fn redial_if_due(&mut self) {
        if self.redials.is_empty() {
            return;
        }
        let now = Instant::now();
        let due: Vec<String> = self
            .redials
            .iter()
            .filter(|(_, r)| r.at.is_some_and(|at| at <= now))
            .map(|(node, _)| node.clone())
            .collect();
        for node in due {
            let waits = self.waiting.get(&node).is_some_and(|w| !w.is_empty());
            if self.up.contains_key(&node) || !waits {
                self.redials.remove(&node);
                continue;
            }
            if let Some(redial) = self.redials.get_mut(&node) {
                redial.at = None;
            }
            if !self.dialing.contains_key(&node) && !self.resolving.contains_key(&node) {
                self.resolve(node);
            }
        }
    }

    /// Remembers that `peer` left; past `DEPARTED_PEERS_KEPT`, the stats
    /// of the longest gone are forgotten (one that came back stays), so a
    /// node serving short-lived peers keeps a bounded record of them.
    fn depart(&mut self, peer: String) {
        self.departed.push_back(peer);
        while self.departed.len() > DEPARTED_PEERS_KEPT {
            let Some(oldest) = self.departed.pop_front() else {
                break;
            };
            if self.up.contains_key(&oldest) {
                continue;
            }
            let mut stats = crate::sync_lock(&self.shared.stats);
            if stats.get(&oldest).is_some_and(|entry| !entry.connected) {
                stats.remove(&oldest);
            }
        }
    }

    /// Step 6 for `peer`.
    fn lose(&mut self, peer: &str, why: &str) {
        if self.up.contains_key(peer) {
            return;
        }
        self.redials.remove(peer);
        for edge in self.edges.remove(peer).unwrap_or_default() {
            let signal = if edge.down {
                RemoteSignal::Down(ExitStatus::Exit(ExitReason::NoConnection))
            } else {
                RemoteSignal::EdgeExit(ExitReason::NoConnection)
            };
            self.shared
                .runtime
                .signal(&edge.remote, &edge.local, signal);
        }
        for watch in self.watches.remove(peer).unwrap_or_default() {
            // Our watch of theirs fires `noconnection`; theirs of ours goes.
            let signal = if watch.ours {
                RemoteSignal::WatchDown {
                    id: watch.id,
                    status: ExitStatus::Exit(ExitReason::NoConnection),
                }
            } else {
                RemoteSignal::Unwatch { id: watch.id }
            };
            self.shared
                .runtime
                .signal(&watch.remote, &watch.local, signal);
        }
        let failed: Vec<u64> = self
            .spawns
            .iter()
            .filter(|(_, (node, _, _))| node == peer)
            .map(|(request, _)| *request)
            .collect();
        for request in failed {
            if let Some((_, parent, _)) = self.spawns.remove(&request) {
                self.spawn_failed(&parent, request, format!("noconnection: {why}"));
            }
        }
        for command in self.waiting.remove(peer).unwrap_or_default() {
            self.drop_command(command, &format!("noconnection: {why}"));
        }
    }

    /// Stop, step 2.
    fn shut_down(&mut self) {
        let tokens: Vec<Token> = self.connections.keys().copied().collect();
        for token in tokens {
            self.flush(token);
            self.close(token, "the node stopped");
        }
        let peers: Vec<String> = self.edges.keys().cloned().collect();
        for peer in peers {
            self.lose(&peer, "the node stopped");
        }
        let waiting: Vec<String> = self.waiting.keys().cloned().collect();
        for peer in waiting {
            self.lose(&peer, "the node stopped");
        }
        // Commands that arrived after the stop: answer spawns, drop the rest.
        let late: Vec<Command> = crate::sync_lock(&self.shared.commands).drain(..).collect();
        for command in late {
            self.drop_command(command, "the node stopped");
        }
        self.registration = None;
        *crate::sync_lock(&self.shared.waker) = None;
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
