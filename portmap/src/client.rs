//! The client: look names up, list them, and register a node for as long as
//! a connection lives, re-registering after the daemon restarts.
//!
//! Blocking, with timeouts on every step. The net crate's event loop will
//! drive the same frames (frame.rs, wire.rs) over a non-blocking socket; this
//! client serves tools, tests and the embedded demo.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::auth;
use crate::config::{CHALLENGE_BYTES, HEADER_BYTES, PROTOCOL_VERSION, REPLY_BODY_BYTES_MAX};
use crate::frame;
use crate::tls::{Blocking, Session, Tls};
use crate::wire::{validate_name, ErrorCode, Reply, Request};

/// Time to connect, and for each reply.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// First and longest wait between re-registration attempts.
pub const BACKOFF_MIN: Duration = Duration::from_millis(50);
/// Longest wait between re-registration attempts.
pub const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// What went wrong talking to the daemon.
#[derive(Debug)]
pub enum Error {
    /// The connection failed or timed out.
    Io(io::Error),
    /// The daemon refused the request.
    Refused {
        /// The reason, if the code is known.
        code: Option<ErrorCode>,
        /// The daemon's words.
        description: String,
    },
    /// The daemon speaks another protocol version.
    VersionMismatch(u32),
    /// The daemon sent something that is not the protocol.
    Protocol(String),
    /// The name is not valid (checked before sending).
    InvalidName(String),
}

impl Error {
    /// The refusal code, if the daemon refused.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Refused { code, .. } => *code,
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(error) => write!(f, "port mapper unreachable: {error}"),
            Error::Refused { description, .. } => write!(f, "port mapper refused: {description}"),
            Error::VersionMismatch(version) => write!(
                f,
                "port mapper speaks protocol version {version}, we speak {PROTOCOL_VERSION}"
            ),
            Error::Protocol(why) => write!(f, "port mapper protocol error: {why}"),
            Error::InvalidName(why) => write!(f, "invalid node name: {why}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(error: io::Error) -> Error {
        Error::Io(error)
    }
}

/// A connection to a port mapper.
#[derive(Debug)]
pub struct Client {
    stream: TcpStream,
    /// The TLS session of a client of another host's TLS port mapper.
    tls: Option<Session>,
    challenge: [u8; CHALLENGE_BYTES],
}

impl Client {
    /// Connects and reads the greeting.
    pub fn connect(addr: SocketAddr) -> Result<Client, Error> {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
        Client::from_stream(stream)
    }

    /// Uses a connected stream (for example one bound to a chosen source
    /// address) and reads the greeting.
    pub fn from_stream(stream: TcpStream) -> Result<Client, Error> {
        Client::greeted(stream, None)
    }

    /// Connects to the TLS port mapper of `host` at `addr` (a port mapper
    /// of another host with `DaemonConfig::tls`), completes TLS's
    /// handshake (its certificate must name `host`) and reads the greeting.
    pub fn connect_tls(addr: SocketAddr, tls: &Tls, host: &str) -> Result<Client, Error> {
        Client::from_stream_tls(TcpStream::connect_timeout(&addr, IO_TIMEOUT)?, tls, host)
    }

    /// [`Client::connect_tls`] over a connected stream.
    pub fn from_stream_tls(mut stream: TcpStream, tls: &Tls, host: &str) -> Result<Client, Error> {
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        let session = tls
            .dial(host)
            .map_err(|why| Error::Io(io::Error::new(io::ErrorKind::InvalidInput, why)))?;
        session.handshake(&mut stream)?;
        Client::greeted(stream, Some(session))
    }

    fn greeted(stream: TcpStream, tls: Option<Session>) -> Result<Client, Error> {
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        stream.set_nodelay(true)?;
        let mut client = Client {
            stream,
            tls,
            challenge: [0; CHALLENGE_BYTES],
        };
        match client.read_reply()? {
            Reply::Hello { version, challenge } if version == PROTOCOL_VERSION => {
                client.challenge = challenge;
                Ok(client)
            }
            Reply::Hello { version, .. } => Err(Error::VersionMismatch(version)),
            Reply::Error { code, description } => Err(Error::Refused {
                code: ErrorCode::from_u32(code),
                description,
            }),
            other => Err(Error::Protocol(format!(
                "expected a greeting, got {other:?}"
            ))),
        }
    }

    /// Proves the shared secret (needed for lookups from other hosts).
    pub fn authenticate(&mut self, secret: &[u8]) -> Result<(), Error> {
        let proof = auth::prove(secret, &self.challenge);
        match self.request(&Request::Auth { proof })? {
            Reply::Ack => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// The port registered under `name`.
    pub fn lookup(&mut self, name: &str) -> Result<u16, Error> {
        validate_name(name).map_err(Error::InvalidName)?;
        match self.request(&Request::Port {
            name: name.to_owned(),
        })? {
            Reply::Port { port } => Ok(port),
            other => Err(unexpected(other)),
        }
    }

    /// Every registered name with its port, sorted by name.
    pub fn names(&mut self) -> Result<Vec<(String, u16)>, Error> {
        match self.request(&Request::Names)? {
            Reply::Names { nodes } => Ok(nodes),
            other => Err(unexpected(other)),
        }
    }

    /// Registers `name` at `port`; the registration lives as long as the
    /// returned value (and its connection).
    pub fn register(mut self, name: &str, port: u16) -> Result<Registration, Error> {
        validate_name(name).map_err(Error::InvalidName)?;
        if self.tls.is_some() {
            // A port mapper takes registrations from its own host only,
            // which never speaks TLS to it.
            return Err(Error::Protocol(
                "registration goes to this host's port mapper, not over TLS".to_owned(),
            ));
        }
        match self.request(&Request::Register {
            name: name.to_owned(),
            port,
        })? {
            Reply::Ack => {
                // The registration idles until closed: no read timeout.
                self.stream.set_read_timeout(None)?;
                Ok(Registration {
                    stream: self.stream,
                    name: name.to_owned(),
                })
            }
            other => Err(unexpected(other)),
        }
    }

    fn request(&mut self, request: &Request) -> Result<Reply, Error> {
        let mut out = Vec::new();
        request.encode(&mut out);
        match &self.tls {
            None => self.stream.write_all(&out)?,
            Some(session) => {
                let mut stream = Blocking {
                    session,
                    socket: &mut self.stream,
                };
                stream.write_all(&out)?;
                stream.flush()?;
            }
        }
        self.read_reply()
    }

    /// Fills `buffer` from the socket, through TLS if the client runs it.
    fn read_exact(&mut self, buffer: &mut [u8]) -> io::Result<()> {
        match &self.tls {
            None => self.stream.read_exact(buffer),
            Some(session) => Blocking {
                session,
                socket: &mut self.stream,
            }
            .read_exact(buffer),
        }
    }

    fn read_reply(&mut self) -> Result<Reply, Error> {
        let mut header = [0u8; HEADER_BYTES];
        self.read_exact(&mut header)?;
        let length = match frame::parse(&header, REPLY_BODY_BYTES_MAX) {
            Ok(_) => u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize,
            Err(error) => return Err(Error::Protocol(error.to_string())),
        };
        let kind = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let mut body = vec![0u8; length];
        self.read_exact(&mut body)?;
        let reply = Reply::decode(kind, &body).map_err(|e| Error::Protocol(e.to_string()))?;
        if let Reply::Error { code, description } = reply {
            return Err(Error::Refused {
                code: ErrorCode::from_u32(code),
                description,
            });
        }
        Ok(reply)
    }
}

fn unexpected(reply: Reply) -> Error {
    Error::Protocol(format!("unexpected reply {reply:?}"))
}

/// A held registration. Dropping it (or its connection closing) releases
/// the name.
#[derive(Debug)]
pub struct Registration {
    stream: TcpStream,
    name: String,
}

impl Registration {
    /// The registered name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Blocks until the daemon closes the connection (it stopped or
    /// restarted), or until `release` is called from another thread on a
    /// clone of this connection.
    pub fn wait_closed(&mut self) {
        let mut byte = [0u8; 1];
        loop {
            match self.stream.read(&mut byte) {
                Ok(0) => return,
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    /// Releases the name now.
    pub fn release(self) {
        drop(self);
    }

    /// The connection that holds the registration, for a caller that
    /// watches it itself (a node's event loop): the name is released when
    /// it closes.
    pub fn into_stream(self) -> TcpStream {
        self.stream
    }

    fn closer(&self) -> io::Result<TcpStream> {
        self.stream.try_clone()
    }
}

/// The shared state of a [`KeepRegistered`].
#[derive(Debug, Default)]
struct KeepState {
    stop: bool,
    registered: bool,
    registrations: u64,
    last_error: Option<String>,
    closer: Option<TcpStream>,
}

/// Keeps a name registered: registers, waits for the connection to close,
/// and registers again with exponential backoff (50 ms to 2 s) until
/// stopped. This is what a node runs, so that a restarted daemon learns its
/// name again.
#[derive(Debug)]
pub struct KeepRegistered {
    state: Arc<(Mutex<KeepState>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

fn lock(state: &Mutex<KeepState>) -> std::sync::MutexGuard<'_, KeepState> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl KeepRegistered {
    /// Starts keeping `name` registered at `port` with the daemon at `addr`.
    pub fn start(addr: SocketAddr, name: &str, port: u16) -> Result<KeepRegistered, Error> {
        validate_name(name).map_err(Error::InvalidName)?;
        let state = Arc::new((Mutex::new(KeepState::default()), Condvar::new()));
        let shared = state.clone();
        let name = name.to_owned();
        let thread = std::thread::Builder::new()
            .name("erlangen-portmap-keeper".into())
            .spawn(move || keep(addr, &name, port, &shared))?;
        Ok(KeepRegistered {
            state,
            thread: Some(thread),
        })
    }

    /// Whether the name is registered right now.
    pub fn is_registered(&self) -> bool {
        lock(&self.state.0).registered
    }

    /// How many times the name was registered (1 + re-registrations).
    pub fn registrations(&self) -> u64 {
        lock(&self.state.0).registrations
    }

    /// The last failure, if any.
    pub fn last_error(&self) -> Option<String> {
        lock(&self.state.0).last_error.clone()
    }

    /// Waits until at least `count` registrations happened, or `timeout`.
    pub fn wait_registrations(&self, count: u64, timeout: Duration) -> bool {
        let (state, changed) = &*self.state;
        let guard = lock(state);
        let (guard, _) = changed
            .wait_timeout_while(guard, timeout, |s| {
                !(s.registrations >= count && s.registered)
            })
            .unwrap_or_else(|e| e.into_inner());
        guard.registrations >= count && guard.registered
    }

    /// Stops and releases the name.
    pub fn stop(mut self) {
        self.shut();
    }

    fn shut(&mut self) {
        {
            let mut state = lock(&self.state.0);
            state.stop = true;
            if let Some(closer) = state.closer.take() {
                let _ = closer.shutdown(Shutdown::Both);
            }
        }
        self.state.1.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for KeepRegistered {
    fn drop(&mut self) {
        self.shut();
    }
}

fn keep(addr: SocketAddr, name: &str, port: u16, shared: &(Mutex<KeepState>, Condvar)) {
    let (state, changed) = shared;
    let mut backoff = BACKOFF_MIN;
    loop {
        if lock(state).stop {
            return;
        }
        match Client::connect(addr).and_then(|client| client.register(name, port)) {
            Ok(mut registration) => {
                {
                    let mut s = lock(state);
                    if s.stop {
                        return;
                    }
                    s.registered = true;
                    s.registrations += 1;
                    s.closer = registration.closer().ok();
                }
                changed.notify_all();
                backoff = BACKOFF_MIN;
                registration.wait_closed();
                let mut s = lock(state);
                s.registered = false;
                s.closer = None;
                tracing::info!(
                    name,
                    "erlangen-portmap: registration lost; registering again"
                );
            }
            Err(error) => {
                lock(state).last_error = Some(error.to_string());
            }
        }
        let guard = lock(state);
        let (guard, _) = changed
            .wait_timeout_while(guard, backoff, |s| !s.stop)
            .unwrap_or_else(|e| e.into_inner());
        if guard.stop {
            return;
        }
        drop(guard);
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}
