//! The daemon: one mio event loop that owns the listener, every connection,
//! and the name → port table. The only owner of `mio::Poll` in this crate.
//!
//! # A connection's life
//!
//! 1. Accept. Past `connections_max`, the daemon sends ERROR(Busy) if the
//!    socket takes it at once and closes. Otherwise it sends HELLO with a
//!    fresh challenge.
//! 2. Requests, one at a time: a request is read only when the previous
//!    reply has been written out (so a connection buffers at most one
//!    request and one reply). A length prefix above
//!    [`REQUEST_BODY_BYTES_MAX`] closes the connection before any body is
//!    buffered; a body that does not decode gets ERROR(Malformed) and the
//!    connection is closed. Refusals (a taken or invalid name, a missing
//!    proof) get an ERROR and the connection stays open.
//! 3. Timeouts: a started frame must complete, and a first request must
//!    arrive, within `frame_timeout`; a connection without registration may
//!    idle for `idle_timeout`; a reply must drain within `frame_timeout`.
//!    A registered connection may idle for ever: it **is** the registration.
//! 4. Close: on EOF, reset, error, timeout or stop. Its registration, if
//!    any, is released at once. Every close of a bad connection is logged
//!    with its reason.
//!
//! # epmd
//!
//! With `DaemonConfig::epmd`, a second listener answers Erlang nodes as
//! Erlang's epmd does (epmd.rs): `ALIVE2_X_REQ` from loopback registers a
//! name for the life of the connection (answered with a creation number;
//! a taken or invalid name is refused), `PORT_PLEASE2_REQ` and `NAMES_REQ`
//! are answered to anyone who can connect and then closed, as epmd does
//! (its protocol has no authentication: listen on loopback, or on a trusted
//! network). Erlang names live in a table of their own, bounded with ours
//! by `names_max`; `KILL_REQ`, `STOP_REQ` and the dumps are not served.
//!
//! # Access
//!
//! Only peers at 127.0.0.1 or ::1 may register. Lookups and listings from any
//! other address need an AUTH proof first (auth.rs); without a configured
//! secret such peers are refused.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::auth;
use crate::config::{
    DaemonConfig, FRAME_TIMEOUT_MAX, IDLE_TIMEOUT_MAX, NAMES_MAX_LIMIT, NONLOCAL_SHARE_PERCENT,
    PER_ADDRESS_CONNECTIONS_MAX, PROTOCOL_VERSION, REQUEST_BODY_BYTES_MAX, WRITE_BUFFER_KEPT_BYTES,
};
use crate::frame;
use crate::listener::{self, Accepted, Listener};
use crate::log_limit::LogLimit;
use crate::wire::{name_key, validate_name, ErrorCode, Reply, Request};

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const EPMD_LISTENER: Token = Token(2);
/// Tokens of connections start here.
const FIRST_CONNECTION: usize = 3;

/// Counters a running daemon publishes.
#[derive(Debug, Default)]
struct StatsCell {
    names: AtomicUsize,
    connections: AtomicUsize,
}

/// A snapshot of a daemon's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DaemonStats {
    /// Registered names.
    pub names: usize,
    /// Open connections (registrations included).
    pub connections: usize,
}

/// Stops a running daemon from any thread.
#[derive(Clone, Debug)]
pub struct Stopper {
    flag: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl Stopper {
    /// Asks the daemon to stop; it closes every connection and returns.
    pub fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
        if let Err(error) = self.waker.wake() {
            tracing::warn!(%error, "erlangen-port-mapper: cannot wake the event loop");
        }
    }
}

/// One client connection.
#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    /// Loopback peer: may register and look up without proof.
    trusted: bool,
    /// Proved the secret.
    authed: bool,
    challenge: [u8; crate::config::CHALLENGE_BYTES],
    /// Bytes received and not yet handled (at most one frame).
    read: Vec<u8>,
    /// Reply bytes not yet written.
    write: Vec<u8>,
    /// How much of `write` went out.
    written: usize,
    /// The name this connection holds.
    registered: Option<String>,
    /// Close once `write` is out.
    closing: bool,
    /// When the connection was accepted.
    accepted: Instant,
    /// Whether a whole request has arrived yet.
    requested: bool,
    /// When the pending partial frame started.
    frame_started: Option<Instant>,
    /// When the pending reply started.
    write_started: Option<Instant>,
    /// Last time a request was handled.
    last_request: Instant,
    /// An Erlang node on the epmd listener (module docs, "epmd").
    epmd: bool,
    /// The TLS session every byte goes through: a client of another host
    /// when the daemon runs TLS (tls.rs).
    tls: Option<crate::tls::Session>,
}

/// The daemon core, to run on the calling thread.
#[derive(Debug)]
pub struct Server {
    poll: Poll,
    listener: Listener,
    /// Set when descriptors ran out: when to try accepting again.
    accept_retry_at: Option<Instant>,
    /// Warnings, at most one per kind per second.
    log: LogLimit,
    /// The connection bound in force: the configured one, or less if the
    /// descriptor limit is lower.
    connections_max: usize,
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    config: DaemonConfig,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    /// Name → (port, token of the registering connection).
    names: HashMap<String, (u16, usize)>,
    /// The confusable skeletons of the registered names (wire.rs
    /// `name_key`): a name that reads like one of them is refused.
    name_keys: std::collections::HashSet<String>,
    stats: Arc<StatsCell>,
    /// The epmd listener, if serving Erlang nodes.
    epmd_listener: Option<Listener>,
    /// Erlang names → (their entry, the registering connection).
    epmd_names: HashMap<String, (crate::epmd::Entry, usize)>,
    /// The creation of the next Erlang registration.
    next_creation: u32,
    /// TLS for clients of other hosts (`DaemonConfig::tls`).
    tls: Option<crate::tls::Tls>,
}

/// Whether `ip` is this host's loopback address.
pub fn is_trusted(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4 == Ipv4Addr::LOCALHOST,
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped() == Some(Ipv4Addr::LOCALHOST),
    }
}

impl Server {
    /// Binds the listener.
    pub fn bind(config: DaemonConfig) -> io::Result<Server> {
        if config.names_max == 0 || config.names_max > NAMES_MAX_LIMIT {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "names_max {} is outside 1..={NAMES_MAX_LIMIT}",
                    config.names_max
                ),
            ));
        }
        check_duration("frame timeout", config.frame_timeout, FRAME_TIMEOUT_MAX)?;
        check_duration("idle timeout", config.idle_timeout, IDLE_TIMEOUT_MAX)?;
        if config.connections_max == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "connections_max must be at least 1",
            ));
        }
        let descriptors = listener::raise_descriptor_limit();
        let room = descriptors
            .saturating_sub(listener::DESCRIPTORS_RESERVED)
            .max(1);
        let connections_max = config.connections_max.min(room as usize);
        if connections_max < config.connections_max {
            tracing::warn!(
                descriptors,
                connections_max,
                "erlangen-port-mapper: the descriptor limit lowers the connection bound"
            );
        }
        let poll = Poll::new()?;
        let mut listener = Listener::bind(config.listen, config.backlog)?;
        poll.registry()
            .register(listener.socket(), LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let epmd_listener = match config.epmd {
            Some(addr) => {
                let mut epmd = Listener::bind(addr, config.backlog)?;
                poll.registry()
                    .register(epmd.socket(), EPMD_LISTENER, Interest::READABLE)?;
                Some(epmd)
            }
            None => None,
        };
        let mut creation = [0u8; 4];
        getrandom::fill(&mut creation).map_err(|e| io::Error::other(e.to_string()))?;
        let tls = match &config.tls {
            None => None,
            Some(options) => Some(
                crate::tls::Tls::load(options)
                    .map_err(|why| io::Error::new(io::ErrorKind::InvalidInput, why))?,
            ),
        };
        Ok(Server {
            poll,
            listener,
            accept_retry_at: None,
            log: LogLimit::default(),
            connections_max,
            stop: Arc::new(AtomicBool::new(false)),
            waker,
            config,
            conns: Vec::new(),
            free: Vec::new(),
            names: HashMap::new(),
            name_keys: std::collections::HashSet::new(),
            stats: Arc::new(StatsCell::default()),
            epmd_listener,
            epmd_names: HashMap::new(),
            next_creation: u32::from_ne_bytes(creation).max(1),
            tls,
        })
    }

    /// The address it answers Erlang nodes on, if it does.
    pub fn epmd_addr(&self) -> Option<SocketAddr> {
        self.epmd_listener
            .as_ref()
            .and_then(|listener| listener.local_addr().ok())
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// A handle that stops `run`.
    pub fn stopper(&self) -> Stopper {
        Stopper {
            flag: self.stop.clone(),
            waker: self.waker.clone(),
        }
    }

    /// Serves until stopped.
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(256);
        tracing::info!(listen = %self.listener.local_addr()?, "erlangen-port-mapper: serving");
        while !self.stop.load(Ordering::SeqCst) {
            let timeout = self
                .next_deadline()
                .into_iter()
                .chain(self.accept_retry_at)
                .min()
                .map(|d| d.saturating_duration_since(Instant::now()));
            if let Err(error) = self.poll.poll(&mut events, timeout) {
                if error.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(error);
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_all(),
                    EPMD_LISTENER => self.accept_epmd(),
                    WAKER => {}
                    Token(t) => self.service(t - FIRST_CONNECTION),
                }
            }
            let now = Instant::now();
            if self.accept_retry_at.is_some_and(|at| at <= now) {
                self.accept_all();
            }
            self.expire(now);
        }
        for index in 0..self.conns.len() {
            if self.conns[index].is_some() {
                self.close(index, None);
            }
        }
        tracing::info!("erlangen-port-mapper: stopped");
        Ok(())
    }

    /// Open connections: occupied slots.
    fn open(&self) -> usize {
        self.conns.len() - self.free.len()
    }

    /// Why a new connection from `peer` gets no slot, if it gets none
    /// (PROTOCOL.md "Slots"): the table is full; or `peer` is not local and
    /// non-local peers hold their share of the table, or `peer` holds as
    /// many as one address may.
    fn refusal_for(&self, peer: SocketAddr) -> Option<&'static str> {
        if self.open() >= self.connections_max {
            return Some("too many connections");
        }
        if is_trusted(peer.ip()) {
            return None;
        }
        let mut nonlocal = 0;
        let mut same_address = 0;
        for conn in self.conns.iter().flatten() {
            if !conn.trusted {
                nonlocal += 1;
                if conn.peer.ip() == peer.ip() {
                    same_address += 1;
                }
            }
        }
        if nonlocal >= self.connections_max * NONLOCAL_SHARE_PERCENT / 100 {
            return Some("non-local peers hold their share of the connections");
        }
        if same_address >= PER_ADDRESS_CONNECTIONS_MAX {
            return Some("this address holds as many connections as one may");
        }
        None
    }

    fn publish_stats(&self) {
        self.stats.names.store(self.names.len(), Ordering::Relaxed);
        self.stats.connections.store(self.open(), Ordering::Relaxed);
    }

    /// Accepts every pending connection (listener.rs step 3); after
    /// descriptors ran out for good, tries again on a timer.
    fn accept_all(&mut self) {
        let mut admitted = Vec::new();
        let mut refused = 0u64;
        let mut failure = None;
        let outcome = self.listener.accept_all(
            &mut |stream, peer| admitted.push((stream, peer)),
            &mut |mut stream, _peer| {
                refused += 1;
                let _ = stream.write(&busy_reply());
            },
            &mut |error| failure = Some(error.to_string()),
        );
        for (stream, peer) in admitted {
            self.admit(stream, peer);
        }
        if refused > 0 {
            if let Some(held) = self.log.allow("out-of-descriptors") {
                tracing::warn!(
                    refused,
                    held,
                    "erlangen-port-mapper: out of descriptors; refusing connections"
                );
            }
        }
        if let Some(error) = failure {
            if let Some(held) = self.log.allow("accept-failed") {
                tracing::warn!(%error, held, "erlangen-port-mapper: accept failed");
            }
        }
        self.accept_retry_at = match outcome {
            Accepted::Drained => None,
            Accepted::Exhausted => Some(Instant::now() + listener::ACCEPT_RETRY),
        };
    }

    /// Accepts every pending Erlang node on the epmd listener.
    fn accept_epmd(&mut self) {
        let mut admitted = Vec::new();
        if let Some(listener) = self.epmd_listener.as_mut() {
            listener.accept_all(
                &mut |stream, peer| admitted.push((stream, peer)),
                &mut |stream, _peer| drop(stream),
                &mut |error| tracing::warn!(%error, "erlangen-port-mapper: epmd accept failed"),
            );
        }
        for (stream, peer) in admitted {
            self.admit_as(stream, peer, true);
        }
    }

    fn admit(&mut self, stream: TcpStream, peer: SocketAddr) {
        self.admit_as(stream, peer, false);
    }

    /// Admits a connection of our protocol, or of epmd's (`epmd`: no
    /// greeting, epmd's requests).
    fn admit_as(&mut self, mut stream: TcpStream, peer: SocketAddr, epmd: bool) {
        if let Some(why) = self.refusal_for(peer) {
            if let Some(held) = self.log.allow("connection-refused") {
                tracing::warn!(%peer, why, held, "erlangen-port-mapper: connection refused");
            }
            let _ = stream.write(&busy_reply());
            return;
        }
        let challenge = match auth::challenge() {
            Ok(challenge) => challenge,
            Err(error) => {
                tracing::warn!(%error, "erlangen-port-mapper: no randomness; connection refused");
                return;
            }
        };
        // A client of another host speaks TLS when the daemon runs it.
        let tls = match &self.tls {
            Some(tls) if !epmd && !is_trusted(peer.ip()) => match tls.accept() {
                Ok(session) => Some(session),
                Err(why) => {
                    tracing::warn!(why, "erlangen-port-mapper: connection refused");
                    return;
                }
            },
            _ => None,
        };
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.conns.push(None);
                self.conns.len() - 1
            }
        };
        let token = Token(index + FIRST_CONNECTION);
        if let Err(error) = self.poll.registry().register(
            &mut stream,
            token,
            Interest::READABLE | Interest::WRITABLE,
        ) {
            tracing::warn!(%error, "erlangen-port-mapper: cannot register a connection");
            self.free.push(index);
            return;
        }
        let now = Instant::now();
        let mut conn = Conn {
            stream,
            peer,
            trusted: is_trusted(peer.ip()),
            authed: false,
            challenge,
            read: Vec::new(),
            write: Vec::new(),
            written: 0,
            registered: None,
            closing: false,
            accepted: now,
            requested: false,
            frame_started: None,
            write_started: None,
            last_request: now,
            epmd,
            tls,
        };
        if !epmd {
            Reply::Hello {
                version: PROTOCOL_VERSION,
                challenge,
            }
            .encode(&mut conn.write);
            conn.write_started = Some(now);
        }
        self.conns[index] = Some(conn);
        self.publish_stats();
        self.service(index);
    }

    /// Writes what is pending, then reads and handles requests while no reply
    /// is pending.
    fn service(&mut self, index: usize) {
        loop {
            let Some(conn) = self.conns.get_mut(index).and_then(Option::as_mut) else {
                return;
            };
            match flush(conn) {
                Ok(true) => {}
                Ok(false) => return,
                Err(error) => {
                    let reason = format!("write failed: {error}");
                    self.close(index, Some(reason));
                    return;
                }
            }
            if conn.closing {
                self.close(index, None);
                return;
            }
            if conn.epmd {
                match crate::epmd::parse_request(&conn.read) {
                    Err(error) => {
                        self.close(index, Some(format!("epmd: {error}")));
                        return;
                    }
                    Ok(Some((request, used))) => {
                        conn.read.drain(..used);
                        conn.frame_started = (!conn.read.is_empty()).then(Instant::now);
                        conn.requested = true;
                        conn.last_request = Instant::now();
                        self.answer_epmd(index, request);
                        continue;
                    }
                    Ok(None) => {}
                }
            } else {
                // A whole request already buffered?
                match frame::parse(&conn.read, REQUEST_BODY_BYTES_MAX) {
                    Err(error) => {
                        let reason = error.to_string();
                        self.close(index, Some(reason));
                        return;
                    }
                    Ok(Some((frame, used))) => {
                        let decoded = Request::decode(frame.kind, frame.body);
                        conn.read.drain(..used);
                        conn.frame_started = (!conn.read.is_empty()).then(Instant::now);
                        // A request that needs no proof does not keep an
                        // unproven non-local connection alive.
                        if conn.trusted || conn.authed || !conn.requested {
                            conn.last_request = Instant::now();
                        }
                        conn.requested = true;
                        match decoded {
                            Ok(request) => self.handle(index, request),
                            Err(error) => self.refuse_and_close(
                                index,
                                ErrorCode::Malformed,
                                error.to_string(),
                            ),
                        }
                        continue;
                    }
                    Ok(None) => {}
                }
            }
            // Read more, never past one frame's worth.
            let frame_max = if conn.epmd {
                2 + crate::epmd::REQUEST_BODY_BYTES_MAX
            } else {
                crate::config::HEADER_BYTES + REQUEST_BODY_BYTES_MAX
            };
            let room = frame_max.saturating_sub(conn.read.len());
            let mut chunk = [0u8; 1024];
            let want = room.min(chunk.len()).max(1);
            let read = match &conn.tls {
                None => conn.stream.read(&mut chunk[..want]),
                Some(tls) => tls.read(&mut conn.stream, &mut chunk[..want]),
            };
            match read {
                Ok(0) => {
                    let reason = (!conn.read.is_empty())
                        .then(|| "peer closed in the middle of a frame".to_string());
                    self.close(index, reason);
                    return;
                }
                Ok(n) => {
                    if conn.read.is_empty() {
                        conn.frame_started = Some(Instant::now());
                    }
                    conn.read.extend_from_slice(&chunk[..n]);
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    // What TLS made of the read (its handshake's answers)
                    // goes out now: no request will flush it.
                    if conn.tls.is_some() {
                        if let Err(error) = flush(conn) {
                            self.close(index, Some(format!("write failed: {error}")));
                        }
                    }
                    return;
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    let reason = format!("read failed: {error}");
                    self.close(index, Some(reason));
                    return;
                }
            }
        }
    }

    fn handle(&mut self, index: usize, request: Request) {
        let reply = self.answer(index, request);
        if let (Reply::Error { code, description }, Some(conn)) =
            (&reply, self.conns[index].as_ref())
        {
            tracing::debug!(peer = %conn.peer, code, %description, "erlangen-port-mapper: refused a request");
        }
        if let Some(conn) = self.conns[index].as_mut() {
            reply.encode(&mut conn.write);
            conn.write_started = Some(Instant::now());
        }
        self.publish_stats();
    }

    fn answer(&mut self, index: usize, request: Request) -> Reply {
        let Some(conn) = self.conns[index].as_mut() else {
            return Reply::Ack;
        };
        match request {
            Request::Auth { proof } => match &self.config.cookie {
                Some(secret) if auth::verify(secret, &conn.challenge, &proof) => {
                    conn.authed = true;
                    Reply::Ack
                }
                _ => {
                    tracing::warn!(peer = %conn.peer, "erlangen-port-mapper: closing: wrong proof");
                    conn.closing = true;
                    refusal(ErrorCode::AuthFailed, "authentication failed")
                }
            },
            Request::Register { name, port } => {
                if !conn.trusted {
                    tracing::warn!(peer = %conn.peer, "erlangen-port-mapper: refused a registration from a non-loopback peer");
                    return refusal(
                        ErrorCode::NotAllowed,
                        "registration is only accepted from loopback",
                    );
                }
                if conn.registered.is_some() {
                    return refusal(
                        ErrorCode::AlreadyRegistered,
                        "this connection holds a registration already",
                    );
                }
                if let Err(why) = validate_name(&name) {
                    return refusal(ErrorCode::InvalidName, &why);
                }
                if self.names.contains_key(&name) {
                    return refusal(ErrorCode::NameTaken, "node name already in use");
                }
                let key = name_key(&name);
                if self.name_keys.contains(&key) {
                    return refusal(
                        ErrorCode::NameTaken,
                        "a registered name reads the same (confusable)",
                    );
                }
                if self.names.len() >= self.config.names_max {
                    return refusal(ErrorCode::Full, "the daemon holds as many names as it may");
                }
                self.names.insert(name.clone(), (port, index));
                self.name_keys.insert(key);
                conn.registered = Some(name);
                Reply::Ack
            }
            Request::Unregister => {
                if let Some(name) = conn.registered.take() {
                    self.names.remove(&name);
                    self.name_keys.remove(&name_key(&name));
                }
                Reply::Ack
            }
            Request::Port { name } => {
                if !(conn.trusted || conn.authed) {
                    return refusal(ErrorCode::AuthRequired, "authenticate first");
                }
                if let Err(why) = validate_name(&name) {
                    return refusal(ErrorCode::InvalidName, &why);
                }
                match self.names.get(&name) {
                    Some((port, _)) => Reply::Port { port: *port },
                    None => refusal(ErrorCode::NoSuchNode, "no such node"),
                }
            }
            Request::Names => {
                if !(conn.trusted || conn.authed) {
                    return refusal(ErrorCode::AuthRequired, "authenticate first");
                }
                let mut nodes: Vec<(String, u16)> = self
                    .names
                    .iter()
                    .map(|(name, (port, _))| (name.clone(), *port))
                    .collect();
                nodes.sort();
                Reply::Names { nodes }
            }
        }
    }

    fn refuse_and_close(&mut self, index: usize, code: ErrorCode, reason: String) {
        if let Some(conn) = self.conns[index].as_mut() {
            if let Some(held) = self.log.allow("closing") {
                tracing::warn!(peer = %conn.peer, %reason, held, "erlangen-port-mapper: closing a connection");
            }
            refusal(code, &reason).encode(&mut conn.write);
            conn.write_started = Some(Instant::now());
            conn.closing = true;
        }
    }

    /// An epmd request from an Erlang node (module docs, "epmd").
    fn answer_epmd(&mut self, index: usize, request: crate::epmd::Request) {
        use crate::epmd::{self, Request};
        let epmd_port = self.epmd_addr().map_or(0, |addr| addr.port());
        let Some(conn) = self.conns[index].as_ref() else {
            return;
        };
        let (trusted, registered) = (conn.trusted, conn.registered.is_some());
        let (reply, close) = match request {
            Request::Alive2 { name, entry } => {
                let valid = crate::wire::validate_name(&name).is_ok();
                let taken = self.epmd_names.contains_key(&name);
                let full = self.epmd_names.len() + self.names.len() >= self.config.names_max;
                if !trusted || registered || !valid || taken || full {
                    let why = if !trusted {
                        "registration from another host"
                    } else if taken {
                        "the name is taken"
                    } else {
                        "an invalid name or no room"
                    };
                    tracing::warn!(name, why, "erlangen-port-mapper: epmd registration refused");
                    (epmd::alive2_x_response(None), true)
                } else {
                    let creation = self.next_creation;
                    self.next_creation = self.next_creation.wrapping_add(1).max(1);
                    self.epmd_names.insert(name.clone(), (entry, index));
                    if let Some(conn) = self.conns[index].as_mut() {
                        conn.registered = Some(name);
                    }
                    (epmd::alive2_x_response(Some(creation)), false)
                }
            }
            Request::PortPlease2 { name } => {
                let entry = self.epmd_names.get(&name).map(|(entry, _)| entry);
                (epmd::port2_response(&name, entry), true)
            }
            Request::Names => {
                let mut names: Vec<(&str, u16)> = self
                    .epmd_names
                    .iter()
                    .map(|(name, (entry, _))| (name.as_str(), entry.port))
                    .collect();
                names.sort();
                (epmd::names_response(epmd_port, names), true)
            }
            Request::Other(code) => {
                tracing::debug!(code, "erlangen-port-mapper: an epmd request not served");
                (Vec::new(), true)
            }
        };
        if let Some(conn) = self.conns[index].as_mut() {
            conn.write.extend_from_slice(&reply);
            conn.write_started = Some(Instant::now());
            conn.closing = close;
        }
        self.publish_stats();
    }

    /// Closes connection `index`, releasing its registration; logs `reason`.
    fn close(&mut self, index: usize, reason: Option<String>) {
        let Some(mut conn) = self.conns[index].take() else {
            return;
        };
        if let Some(reason) = reason {
            if let Some(held) = self.log.allow("closing") {
                tracing::warn!(peer = %conn.peer, %reason, held, "erlangen-port-mapper: closing a connection");
            }
        }
        let registered = conn.registered.take();
        if let Some(name) = registered.as_ref().filter(|_| conn.epmd) {
            if self.epmd_names.get(name).map(|(_, owner)| *owner) == Some(index) {
                self.epmd_names.remove(name);
            }
        } else if let Some(name) = registered {
            if self.names.get(&name).map(|(_, owner)| *owner) == Some(index) {
                self.names.remove(&name);
                self.name_keys.remove(&name_key(&name));
            }
        }
        let _ = self.poll.registry().deregister(&mut conn.stream);
        drop(conn);
        self.free.push(index);
        self.publish_stats();
    }

    /// When the next connection times out.
    fn next_deadline(&self) -> Option<Instant> {
        self.conns
            .iter()
            .flatten()
            .filter_map(|conn| deadline(conn, &self.config))
            .min()
    }

    /// Closes every connection whose deadline passed.
    fn expire(&mut self, now: Instant) {
        for index in 0..self.conns.len() {
            let Some(conn) = self.conns[index].as_ref() else {
                continue;
            };
            if let Some(deadline) = deadline(conn, &self.config) {
                if deadline <= now {
                    let reason = if conn.frame_started.is_some() {
                        "a frame was not completed in time"
                    } else if conn.write_started.is_some() {
                        "the peer does not read its replies"
                    } else if !conn.requested {
                        "no request after the greeting"
                    } else {
                        "idle"
                    };
                    self.close(index, Some(reason.to_string()));
                }
            }
        }
    }
}

/// When `conn` must be closed, if it makes no progress.
/// (Arithmetic that would pass the end of `Instant` means "no deadline":
/// durations are bounded at start, so this is a belt to those braces.)
fn deadline(conn: &Conn, config: &DaemonConfig) -> Option<Instant> {
    let frame = conn
        .frame_started
        .and_then(|started| started.checked_add(config.frame_timeout));
    let write = conn
        .write_started
        .and_then(|started| started.checked_add(config.frame_timeout));
    let idle = match (&conn.registered, conn.requested) {
        (Some(_), _) => None,
        (None, true) => conn.last_request.checked_add(config.idle_timeout),
        (None, false) => conn.accepted.checked_add(config.frame_timeout),
    };
    [frame, write, idle].into_iter().flatten().min()
}

/// Refuses a configured duration of zero or past `max`.
fn check_duration(
    what: &str,
    value: std::time::Duration,
    max: std::time::Duration,
) -> io::Result<()> {
    if value.is_zero() || value > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("the {what} of {value:?} is outside 1 ms..={max:?}"),
        ));
    }
    Ok(())
}

/// The ERROR Busy frame sent to a connection that gets no slot.
fn busy_reply() -> Vec<u8> {
    let mut out = Vec::new();
    Reply::Error {
        code: ErrorCode::Busy as u32,
        description: "too many connections".into(),
    }
    .encode(&mut out);
    out
}

/// Writes pending bytes. `Ok(true)`: all out; `Ok(false)`: the socket is
/// full, wait for writable.
fn flush(conn: &mut Conn) -> io::Result<bool> {
    while conn.written < conn.write.len() {
        let pending = &conn.write[conn.written..];
        let wrote = match &conn.tls {
            None => conn.stream.write(pending),
            Some(tls) => tls.write(&mut conn.stream, pending),
        };
        match wrote {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "socket closed")),
            Ok(n) => conn.written += n,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    // TLS's own records (the handshake's, or a reply's tail) go out too.
    if let Some(tls) = &conn.tls {
        if !tls.write_held(&mut conn.stream)?.0 {
            return Ok(false);
        }
    }
    conn.write.clear();
    if conn.write.capacity() > WRITE_BUFFER_KEPT_BYTES {
        conn.write.shrink_to(WRITE_BUFFER_KEPT_BYTES);
    }
    conn.written = 0;
    conn.write_started = None;
    Ok(true)
}

fn refusal(code: ErrorCode, description: &str) -> Reply {
    Reply::Error {
        code: code as u32,
        description: description.to_owned(),
    }
}

/// A daemon running on a thread of its own: the embedded mode, for demos
/// and tests. Dropping it stops it.
#[derive(Debug)]
pub struct Daemon {
    addr: SocketAddr,
    /// Where it answers Erlang nodes, if it does.
    epmd: Option<SocketAddr>,
    stopper: Stopper,
    stats: Arc<StatsCell>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Daemon {
    /// Binds and starts serving on a new thread.
    pub fn start(config: DaemonConfig) -> io::Result<Daemon> {
        let server = Server::bind(config)?;
        let addr = server.local_addr()?;
        let epmd = server.epmd_addr();
        let stopper = server.stopper();
        let stats = server.stats.clone();
        let thread = std::thread::Builder::new()
            .name("erlangen-port-mapper".into())
            .spawn(move || server.run())?;
        Ok(Daemon {
            addr,
            epmd,
            stopper,
            stats,
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address it answers Erlang nodes on (`DaemonConfig::epmd`).
    pub fn epmd_addr(&self) -> Option<SocketAddr> {
        self.epmd
    }

    /// Current counters.
    pub fn stats(&self) -> DaemonStats {
        DaemonStats {
            names: self.stats.names.load(Ordering::Relaxed),
            connections: self.stats.connections.load(Ordering::Relaxed),
        }
    }

    /// Stops it and waits for its thread.
    pub fn stop(mut self) -> io::Result<()> {
        self.shut()
    }

    fn shut(&mut self) -> io::Result<()> {
        self.stopper.stop();
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the daemon thread panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.shut();
    }
}
