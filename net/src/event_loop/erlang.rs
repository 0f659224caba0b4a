//! `ErlangSide`: the Erlang distribution's part of a node's event loop —
//! its listener, the epmd registration it holds, and its connections to
//! Erlang nodes (the protocol cores are in `crate::erlang`). Its tokens are
//! `ERLANG_TOKENS` and above, so the loop tells them from its own.
//!
//! A connection's life:
//!
//! 1. **Accept.** At most `ERLANG_HANDSHAKES_MAX` connections may be in
//!    their handshake at once; more are closed at accept.
//! 2. **Handshake** (erlang/handshake.rs): bodies framed by a 2-byte
//!    length, each at most `config::ERLANG_HANDSHAKE_BYTES_MAX`. Nothing
//!    reaches an agent before the peer's digest checked; a wrong cookie
//!    closes the connection with a logged reason. A handshake that takes
//!    longer than `config::ACCEPTED_HANDSHAKE_TIMEOUT` is closed.
//! 3. **Up.** Packets framed by a 4-byte length (an empty one is a tick),
//!    each at most `config::ERLANG_PACKET_BYTES_MAX`, fragments joined
//!    (erlang/fragments.rs); large packets of ours go as fragments, one
//!    at a time into the write buffer as it runs low; a connection already
//!    up with the same node is replaced (the node restarted). Control
//!    messages are acted on in arrival order (erlang/control.rs); a packet
//!    that does not parse closes the connection. A write buffer over
//!    `ERLANG_WRITE_BYTES_HIGH_WATER` drops further messages (counted).
//! 4. **Ticks.** A tick goes out after `ERLANG_TICK_INTERVAL` without a
//!    write; a connection silent for `ERLANG_TICK_TIMEOUT` is lost
//!    (Erlang's `net_ticktime` of 60 s).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use eetf::Term;
use erlangen_portmap::listener::Listener;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use crate::config::{
    ACCEPTED_HANDSHAKE_TIMEOUT, ERLANG_HANDSHAKE_BYTES_MAX, ERLANG_PACKET_BYTES_MAX,
};
use crate::erlang::control::{self, Control};
use crate::erlang::handshake::{Handshake, Peer, Step};
use crate::shared::NodeShared;

/// The first token of the Erlang side.
pub(super) const ERLANG_TOKENS: usize = 1 << 48;
const LISTENER: Token = Token(ERLANG_TOKENS);
const EPMD: Token = Token(ERLANG_TOKENS + 1);
const FIRST_CONNECTION: usize = ERLANG_TOKENS + 2;

/// Most Erlang connections in their handshake at once.
const ERLANG_HANDSHAKES_MAX: usize = 64;
/// Bytes a connection's write buffer may hold before messages to its node
/// are dropped (and counted).
const ERLANG_WRITE_BYTES_HIGH_WATER: usize = 2 * ERLANG_PACKET_BYTES_MAX;
/// A quiet connection sends a tick after this long (Erlang: a quarter of
/// `net_ticktime`).
const ERLANG_TICK_INTERVAL: Duration = Duration::from_secs(15);
/// A connection silent this long is lost (Erlang's `net_ticktime`).
const ERLANG_TICK_TIMEOUT: Duration = Duration::from_secs(60);
/// Packets that may wait for one Erlang node while it is dialled.
const ERLANG_WAITING_PACKETS_MAX: usize = 65_536;
/// Data bytes per fragment of a large message we send.
const FRAGMENT_BYTES: usize = crate::erlang::fragments::FRAGMENT_BYTES;

/// One connection with an Erlang node.
pub(super) struct ErlConnection {
    pub(super) stream: TcpStream,
    /// A dial whose connect has not finished.
    pub(super) connecting: bool,
    /// The node we dialled (`None` for an accepted connection).
    pub(super) dialled: Option<String>,
    /// Set while in the handshake (step 2).
    pub(super) handshake: Option<Handshake>,
    /// Set once up (step 3).
    pub(super) peer: Option<Peer>,
    pub(super) read: Vec<u8>,
    pub(super) write: Vec<u8>,
    /// Large messages arriving in fragments.
    reassembly: crate::erlang::fragments::Reassembly,
    /// Fragments of large messages waiting to go, framed, in order: one
    /// moves into `write` whenever it runs low, so that small packets go
    /// out between them.
    fragments: std::collections::VecDeque<Vec<u8>>,
    /// Bytes in `fragments`.
    fragment_bytes: usize,
    /// The sequence id of our next fragmented message.
    next_sequence: u64,
    /// Registered for writable events (the buffer did not drain).
    pub(super) writable: bool,
    pub(super) started: Instant,
    pub(super) last_read: Instant,
    pub(super) last_write: Instant,
}

impl ErlConnection {
    /// A connection at the start of its handshake.
    pub(super) fn new(
        stream: TcpStream,
        handshake: Handshake,
        dialled: Option<String>,
    ) -> ErlConnection {
        let now = Instant::now();
        ErlConnection {
            stream,
            connecting: dialled.is_some(),
            dialled,
            handshake: Some(handshake),
            peer: None,
            read: Vec::new(),
            write: Vec::new(),
            reassembly: Default::default(),
            fragments: Default::default(),
            fragment_bytes: 0,
            next_sequence: 1,
            writable: false,
            started: now,
            last_read: now,
            last_write: now,
        }
    }
}

/// An Erlang process's monitor of one of our agents (an observing
/// monitor, as in Erlang: a watch).
pub(super) struct MonitorIn {
    /// The watcher's node.
    pub(super) peer: String,
    /// The watcher.
    pub(super) watcher: eetf::Pid,
    /// How the watcher named the watched (a pid or a name): `MONITOR_P_EXIT`
    /// names it so.
    pub(super) what: Term,
    pub(super) reference: Term,
}

/// What one of our agents' monitors of an Erlang process is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum OutKind {
    /// Erlangen's monitor (kills the watched when the watcher ends).
    Killing,
    /// An observing monitor with this id.
    Watch(u64),
}

/// One of our agents' monitors of an Erlang process.
pub(super) struct MonitorOut {
    pub(super) peer: String,
    pub(super) local: erlangen_runtime::Pid,
    pub(super) remote: erlangen_runtime::Pid,
    pub(super) kind: OutKind,
}

/// One of our spawns on an Erlang node (`Node::erlang_spawn`).
pub(super) struct SpawnOut {
    pub(super) peer: String,
    /// The request the caller waits for.
    pub(super) request: u64,
    pub(super) parent: erlangen_runtime::Pid,
}

/// The Erlang side of a node's loop (module docs).
pub(crate) struct ErlangSide {
    /// Control messages read and not yet acted on, oldest first, with
    /// their node (the loop acts on them: erlang_signals.rs).
    pub(super) inbox: Vec<(String, Control)>,
    /// Nodes whose connection closed, and why (the loop fires their
    /// edges).
    pub(super) lost: Vec<(String, String)>,
    /// Packets dropped since the loop last counted them (a failed dial's
    /// waiting list).
    pub(super) dropped: u64,
    /// Erlang monitors of our agents, by the watch id we gave them.
    pub(super) monitors_in: HashMap<u64, MonitorIn>,
    /// Our monitors and watches of Erlang processes, by reference.
    pub(super) monitors_out: HashMap<Term, MonitorOut>,
    /// Our spawns on Erlang nodes waiting for `SPAWN_REPLY`, by reference.
    pub(super) spawns_out: HashMap<Term, SpawnOut>,
    /// The next watch id or reference number.
    next_id: u64,
    listener: Listener,
    /// The connection that holds our epmd registration.
    epmd: TcpStream,
    pub(super) connections: HashMap<Token, ErlConnection>,
    /// The connection that is up, by node name.
    pub(super) up: HashMap<String, Token>,
    /// Nodes being dialled: the token of their epmd lookup or connection
    /// (erlang_dial.rs).
    pub(super) dialing: HashMap<String, Token>,
    /// Port lookups at other hosts' epmd, by token (erlang_dial.rs).
    pub(super) lookups: HashMap<Token, super::erlang_dial::Lookup>,
    /// Packets for nodes being dialled, in order; at most
    /// `ERLANG_WAITING_PACKETS_MAX` per node.
    pub(super) waiting: HashMap<String, Vec<Vec<u8>>>,
    next_token: usize,
    /// The node (for its backpressure counter, `ErlangShared::buffered`).
    shared: std::sync::Arc<NodeShared>,
    /// Connections written to since the last `flush_dirty` (one write per
    /// connection per batch of commands).
    dirty: Vec<Token>,
    /// What each read call reads into (`config::READ_CHUNK_BYTES`),
    /// allocated and zeroed once.
    read_scratch: Box<[u8]>,
}

impl ErlangSide {
    /// The Erlang side over `listener`, holding the epmd `registration`.
    pub(crate) fn new(
        registry: &Registry,
        shared: std::sync::Arc<NodeShared>,
        mut listener: Listener,
        registration: std::net::TcpStream,
    ) -> io::Result<ErlangSide> {
        registry.register(listener.socket(), LISTENER, Interest::READABLE)?;
        registration.set_nonblocking(true)?;
        let mut epmd = TcpStream::from_std(registration);
        registry.register(&mut epmd, EPMD, Interest::READABLE)?;
        Ok(ErlangSide {
            inbox: Vec::new(),
            lost: Vec::new(),
            dropped: 0,
            monitors_in: HashMap::new(),
            monitors_out: HashMap::new(),
            spawns_out: HashMap::new(),
            next_id: 1,
            listener,
            epmd,
            connections: HashMap::new(),
            up: HashMap::new(),
            dialing: HashMap::new(),
            lookups: HashMap::new(),
            waiting: HashMap::new(),
            next_token: FIRST_CONNECTION,
            shared,
            dirty: Vec::new(),
            read_scratch: vec![0; crate::config::READ_CHUNK_BYTES].into_boxed_slice(),
        })
    }

    /// A fresh token of the side's.
    pub(super) fn token(&mut self) -> Token {
        let token = Token(self.next_token);
        self.next_token += 1;
        token
    }

    /// Whether `token` is the Erlang side's.
    pub(super) fn owns(token: Token) -> bool {
        token.0 >= ERLANG_TOKENS
    }

    /// An event on one of the side's tokens.
    pub(super) fn on_event(&mut self, token: Token, registry: &Registry, shared: &NodeShared) {
        match token {
            LISTENER => self.accept_all(registry, shared),
            EPMD => {
                let mut byte = [0u8; 64];
                // epmd says nothing after its answer: a read of 0 is its
                // close, and then the name is gone.
                if let Ok(0) = self.epmd.read(&mut byte) {
                    tracing::error!(
                        "erlangen: epmd closed our registration; Erlang nodes cannot look this node up"
                    );
                    let _ = registry.deregister(&mut self.epmd);
                }
            }
            token if self.lookups.contains_key(&token) => {
                self.lookup_event(token, registry, shared);
            }
            token => {
                if let Err(why) = self.connect_finished(token) {
                    self.close(token, registry, &why);
                    return;
                }
                if let Err(why) = self.read_from(token, registry, shared) {
                    self.close(token, registry, &why);
                    return;
                }
                self.flush(token, registry);
            }
        }
    }

    /// Step 1.
    fn accept_all(&mut self, registry: &Registry, shared: &NodeShared) {
        let erlang = shared
            .erlang
            .as_ref()
            .expect("an Erlang side has its settings");
        let mut accepted = Vec::new();
        self.listener.accept_all(
            &mut |stream, peer| accepted.push((stream, peer)),
            &mut |stream, _peer| drop(stream),
            &mut |error| tracing::warn!(%error, "erlangen: accepting an Erlang node failed"),
        );
        for (stream, peer) in accepted {
            let in_handshake = self
                .connections
                .values()
                .filter(|connection| connection.handshake.is_some())
                .count();
            if in_handshake >= ERLANG_HANDSHAKES_MAX {
                tracing::warn!(%peer, "erlangen: too many Erlang handshakes at once; closed");
                continue;
            }
            let mut stream = stream;
            crate::socket_options::tune(&stream, peer);
            let token = self.token();
            if let Err(error) = registry.register(&mut stream, token, Interest::READABLE) {
                tracing::warn!(%error, "erlangen: cannot watch an Erlang connection");
                continue;
            }
            let handshake = Handshake::accept(&erlang.name, erlang.creation, &erlang.cookie);
            self.connections
                .insert(token, ErlConnection::new(stream, handshake, None));
        }
    }

    /// Reads what the socket has and acts on every whole frame.
    fn read_from(
        &mut self,
        token: Token,
        registry: &Registry,
        shared: &NodeShared,
    ) -> Result<(), String> {
        loop {
            let chunk = &mut self.read_scratch;
            let Some(connection) = self.connections.get_mut(&token) else {
                return Ok(());
            };
            match connection.stream.read(chunk) {
                Ok(0) => return Err("closed by the Erlang node".into()),
                Ok(n) => {
                    connection.read.extend_from_slice(&chunk[..n]);
                    connection.last_read = Instant::now();
                    self.frames(token, registry, shared)?;
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(format!("read failed: {error}")),
            }
        }
    }

    /// Takes every whole frame out of the read buffer (steps 2 and 3).
    fn frames(
        &mut self,
        token: Token,
        registry: &Registry,
        shared: &NodeShared,
    ) -> Result<(), String> {
        loop {
            let connection = self.connections.get_mut(&token).expect("present");
            let up = connection.peer.is_some();
            let (header, limit) = if up {
                (4, ERLANG_PACKET_BYTES_MAX)
            } else {
                (2, ERLANG_HANDSHAKE_BYTES_MAX)
            };
            if connection.read.len() < header {
                return Ok(());
            }
            let len = if up {
                u32::from_be_bytes(connection.read[..4].try_into().expect("4 bytes")) as usize
            } else {
                u16::from_be_bytes(connection.read[..2].try_into().expect("2 bytes")) as usize
            };
            if len > limit {
                return Err(format!("a frame of {len} bytes (the limit is {limit})"));
            }
            if connection.read.len() < header + len {
                return Ok(());
            }
            let body: Vec<u8> = connection.read[header..header + len].to_vec();
            connection.read.drain(..header + len);
            if up {
                let Some(body) = connection.reassembly.take(body)? else {
                    continue;
                };
                if let Some(control) = control::parse(&body)? {
                    let peer = connection.peer.as_ref().expect("up").name.clone();
                    self.inbox.push((peer, control));
                }
                continue;
            }
            // Both nodes dialled each other: the dial of the node with the
            // greater name survives (Erlang's rule).
            if connection.dialled.is_none() && connection.peer.is_none() {
                if let Some(name) = crate::erlang::handshake::name_in(&body) {
                    if let Some(&ours) = self.dialing.get(&name) {
                        let our_name = &shared.erlang.as_ref().expect("settings").name;
                        if our_name.as_str() > name.as_str() {
                            let mut refusal = Vec::new();
                            push_handshake(&mut refusal, &crate::erlang::handshake::refusal());
                            let connection = self.connections.get_mut(&token).expect("present");
                            let _ = connection.stream.write(&refusal);
                            return Err(format!("{name} and we dialled each other; ours wins"));
                        }
                        self.abandon_dial(ours, registry);
                    }
                }
            }
            let connection = self.connections.get_mut(&token).expect("present");
            let handshake = connection
                .handshake
                .as_mut()
                .ok_or("neither in the handshake nor up")?;
            let mut challenge = [0u8; 4];
            getrandom::fill(&mut challenge).map_err(|e| e.to_string())?;
            match handshake.on_message(&body, u32::from_ne_bytes(challenge))? {
                Step::Send(bodies) => {
                    for body in bodies {
                        push_handshake(&mut connection.write, &body);
                    }
                }
                Step::Up(bodies, peer) => {
                    for body in bodies {
                        push_handshake(&mut connection.write, &body);
                    }
                    connection.handshake = None;
                    let name = peer.name.clone();
                    tracing::info!(peer = %name, "erlangen: an Erlang node connected");
                    connection.peer = Some(peer);
                    // A node that connects again restarted: what was
                    // across the old connection is lost (its edges fire).
                    if let Some(&old) = self.up.get(&name) {
                        self.close(old, registry, "the Erlang node connected again");
                    }
                    if self.dialing.get(&name) == Some(&token) {
                        self.dialing.remove(&name);
                    }
                    for body in self.waiting.remove(&name).unwrap_or_default() {
                        self.send_packet(token, &body);
                    }
                    self.up.insert(name, token);
                }
            }
        }
    }

    /// A term for an Erlang process (`Command::ErlangSend`).
    pub(super) fn send_term(
        &mut self,
        to: &eetf::Pid,
        message: &Term,
        registry: &Registry,
        shared: &NodeShared,
    ) {
        match control::send(to, message) {
            Ok(body) => {
                if !self.send_to(&to.node.name, &body, registry, shared) {
                    shared.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(error) => {
                shared.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%error, "erlangen: a term Erlang would refuse was not sent");
            }
        }
    }

    /// A fresh number for a watch id or a reference.
    pub(super) fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Sends a packet to `peer` and writes it out; one for a node that is
    /// not connected waits while it is dialled (erlang_dial.rs). `false`
    /// if it cannot be sent: the dial cannot start, or too many packets
    /// wait for it.
    pub(super) fn send_to(
        &mut self,
        peer: &str,
        body: &[u8],
        registry: &Registry,
        shared: &NodeShared,
    ) -> bool {
        if let Some(&token) = self.up.get(peer) {
            self.send_packet(token, body);
            if !self.dirty.contains(&token) {
                self.dirty.push(token);
            }
            return true;
        }
        if !self.dialing.contains_key(peer) {
            if let Err(why) = self.dial(peer, registry, shared) {
                tracing::warn!(peer, why, "erlangen: cannot dial an Erlang node");
                return false;
            }
        }
        let waiting = self.waiting.entry(peer.to_owned()).or_default();
        if waiting.len() >= ERLANG_WAITING_PACKETS_MAX {
            return false;
        }
        waiting.push(body.to_vec());
        self.publish_buffered();
        true
    }

    /// Forgets what was kept for `peer`'s monitors (its connection is
    /// gone; the loop fires the edges); the spawns that waited for it.
    pub(super) fn forget_peer(&mut self, peer: &str) -> Vec<SpawnOut> {
        self.monitors_in.retain(|_, monitor| monitor.peer != peer);
        self.monitors_out.retain(|_, monitor| monitor.peer != peer);
        let lost: Vec<Term> = self
            .spawns_out
            .iter()
            .filter(|(_, spawn)| spawn.peer == peer)
            .map(|(reference, _)| reference.clone())
            .collect();
        lost.iter()
            .filter_map(|reference| self.spawns_out.remove(reference))
            .collect()
    }

    /// Writes every connection written to since the last call.
    pub(super) fn flush_dirty(&mut self, registry: &Registry) {
        for token in std::mem::take(&mut self.dirty) {
            self.flush(token, registry);
        }
    }

    /// Publishes what the side buffers (`ErlangShared::buffered`): senders
    /// to Erlang processes wait above the node's high-water mark.
    fn publish_buffered(&self) {
        let Some(erlang) = self.shared.erlang.as_ref() else {
            return;
        };
        let writing: usize = self
            .connections
            .values()
            .map(|c| c.write.len() + c.fragment_bytes)
            .sum();
        let waiting: usize = self.waiting.values().flatten().map(Vec::len).sum();
        erlang.buffered.store(writing + waiting, Ordering::Relaxed);
    }

    /// Appends a packet to an up connection's write buffer (flushed by the
    /// caller's turn), or drops it over the high-water mark (step 3).
    fn send_packet(&mut self, token: Token, body: &[u8]) {
        let Some(connection) = self.connections.get_mut(&token) else {
            return;
        };
        let queued = connection.write.len() + connection.fragment_bytes;
        if queued + body.len() > ERLANG_WRITE_BYTES_HIGH_WATER {
            tracing::warn!("erlangen: an Erlang node does not read; a message was dropped");
            return;
        }
        let fragmented = connection
            .peer
            .as_ref()
            .is_some_and(|peer| peer.flags & crate::erlang::handshake::DFLAG_FRAGMENTS != 0);
        // A node that takes fragments takes only packets with a
        // distribution header (an OTP node closes the connection on `112`).
        let data = fragmented.then(|| control::bare(body)).flatten();
        let Some(data) = data else {
            connection
                .write
                .extend_from_slice(&(body.len() as u32).to_be_bytes());
            connection.write.extend_from_slice(body);
            return;
        };
        if data.len() > FRAGMENT_BYTES {
            let sequence = connection.next_sequence;
            connection.next_sequence += 1;
            for fragment in crate::erlang::fragments::split(sequence, &data, FRAGMENT_BYTES) {
                let mut framed = (fragment.len() as u32).to_be_bytes().to_vec();
                framed.extend_from_slice(&fragment);
                connection.fragment_bytes += framed.len();
                connection.fragments.push_back(framed);
            }
            return;
        }
        connection
            .write
            .extend_from_slice(&(data.len() as u32 + 3).to_be_bytes());
        connection.write.extend_from_slice(&[131, 68, 0]);
        connection.write.extend_from_slice(&data);
    }

    /// Writes what the buffer holds, without blocking; watches for
    /// writability while something is left.
    pub(super) fn flush(&mut self, token: Token, registry: &Registry) {
        let Some(connection) = self.connections.get_mut(&token) else {
            return;
        };
        if connection.connecting {
            // Written once the connect finishes (a writable event).
            return;
        }
        let mut written = 0;
        let result = loop {
            // A fragment joins the buffer whenever it runs low: small
            // packets queued meanwhile go out between fragments.
            if connection.write.len() - written < FRAGMENT_BYTES {
                if let Some(fragment) = connection.fragments.pop_front() {
                    connection.fragment_bytes -= fragment.len();
                    connection.write.extend_from_slice(&fragment);
                }
            }
            if written == connection.write.len() {
                break Ok(());
            }
            match connection.stream.write(&connection.write[written..]) {
                Ok(0) => break Err("the Erlang node's socket takes nothing".to_owned()),
                Ok(n) => written += n,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break Ok(()),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => break Err(format!("write failed: {error}")),
            }
        };
        if written > 0 {
            connection.write.drain(..written);
            connection.last_write = Instant::now();
        }
        if let Err(why) = result {
            self.close(token, registry, &why);
            return;
        }
        let want = !connection.write.is_empty() || !connection.fragments.is_empty();
        if want != connection.writable {
            let interest = if want {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            let _ = registry.reregister(&mut connection.stream, token, interest);
            connection.writable = want;
        }
        self.publish_buffered();
    }

    /// Closes a connection with a logged reason.
    fn close(&mut self, token: Token, registry: &Registry, why: &str) {
        let Some(mut connection) = self.connections.remove(&token) else {
            return;
        };
        self.publish_buffered();
        let _ = registry.deregister(&mut connection.stream);
        match &connection.peer {
            Some(peer) => {
                if self.up.get(&peer.name) == Some(&token) {
                    self.up.remove(&peer.name);
                    self.lost.push((peer.name.clone(), why.to_owned()));
                }
                tracing::info!(peer = %peer.name, why, "erlangen: an Erlang node disconnected");
            }
            None => {
                tracing::warn!(why, "erlangen: an Erlang handshake failed");
                if let Some(peer) = &connection.dialled {
                    self.dial_failed(peer, token, why);
                }
            }
        }
    }

    /// Closes our dial `token` without a trace: the peer's own dial of us
    /// survives, and what waits goes out on it.
    pub(super) fn abandon_dial(&mut self, token: Token, registry: &Registry) {
        if let Some(mut lookup) = self.lookups.remove(&token) {
            let _ = registry.deregister(&mut lookup.stream);
            self.dialing.remove(&lookup.peer);
        }
        if let Some(mut connection) = self.connections.remove(&token) {
            let _ = registry.deregister(&mut connection.stream);
            if let Some(peer) = &connection.dialled {
                self.dialing.remove(peer);
            }
        }
    }

    /// A dial of `peer` (its lookup or connection `token`) failed: what
    /// waits for it is dropped and its edges fire (the loop loses it).
    pub(super) fn dial_failed(&mut self, peer: &str, token: Token, why: &str) {
        if self.dialing.get(peer) != Some(&token) {
            return;
        }
        self.dialing.remove(peer);
        let dropped = self.waiting.remove(peer).map_or(0, |waiting| waiting.len());
        self.dropped += dropped as u64;
        self.publish_buffered();
        tracing::warn!(
            peer,
            why,
            dropped,
            "erlangen: could not reach an Erlang node"
        );
        self.lost
            .push((peer.to_owned(), format!("cannot reach it: {why}")));
    }

    /// Step 4, and handshake deadlines.
    pub(super) fn tick(&mut self, registry: &Registry) {
        let now = Instant::now();
        let mut lost = Vec::new();
        let mut quiet = Vec::new();
        for (&token, connection) in &self.connections {
            if connection.peer.is_none() {
                if now.duration_since(connection.started) >= ACCEPTED_HANDSHAKE_TIMEOUT {
                    lost.push((token, "the handshake timed out"));
                }
            } else if now.duration_since(connection.last_read) >= ERLANG_TICK_TIMEOUT {
                lost.push((token, "the Erlang node fell silent"));
            } else if now.duration_since(connection.last_write) >= ERLANG_TICK_INTERVAL {
                quiet.push(token);
            }
        }
        for (&token, lookup) in &self.lookups {
            if now.duration_since(lookup.started) >= ACCEPTED_HANDSHAKE_TIMEOUT {
                lost.push((token, "epmd did not answer in time"));
            }
        }
        for (token, why) in lost {
            if let Some(mut lookup) = self.lookups.remove(&token) {
                let _ = registry.deregister(&mut lookup.stream);
                self.dial_failed(&lookup.peer.clone(), token, why);
                continue;
            }
            self.close(token, registry, why);
        }
        for token in quiet {
            if let Some(connection) = self.connections.get_mut(&token) {
                connection.write.extend_from_slice(&[0, 0, 0, 0]);
            }
            self.flush(token, registry);
        }
    }

    /// Whether a dialled connection's connect finished (an error if it
    /// failed); it then writes its `send_name`.
    fn connect_finished(&mut self, token: Token) -> Result<(), String> {
        let Some(connection) = self.connections.get_mut(&token) else {
            return Ok(());
        };
        if !connection.connecting {
            return Ok(());
        }
        match connection.stream.peer_addr() {
            Ok(peer) => {
                connection.connecting = false;
                crate::socket_options::tune(&connection.stream, peer);
                Ok(())
            }
            Err(error) if error.kind() == io::ErrorKind::NotConnected => {
                match connection.stream.take_error() {
                    Ok(Some(error)) | Err(error) => Err(format!("connect failed: {error}")),
                    Ok(None) => Ok(()),
                }
            }
            Err(error) => Err(format!("connect failed: {error}")),
        }
    }

    /// Closes every connection (the node stops).
    pub(super) fn shut_down(&mut self, registry: &Registry) {
        let tokens: Vec<Token> = self.connections.keys().copied().collect();
        for token in tokens {
            self.close(token, registry, "the node stopped");
        }
        let _ = registry.deregister(&mut self.epmd);
    }
}

/// A handshake body behind its 2-byte length.
fn push_handshake(write: &mut Vec<u8>, body: &[u8]) {
    write.extend_from_slice(&(body.len() as u16).to_be_bytes());
    write.extend_from_slice(body);
}

impl std::fmt::Debug for ErlangSide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ErlangSide")
            .field("connections", &self.connections.len())
            .field("up", &self.up.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}
