//! Reaching other nodes and our own port mapper: lookups of a node's port
//! and the dial that follows (step 1 of a connection's life), redials of a
//! failed dial while commands wait, and re-registration after the port
//! mapper went away. Calls to port mappers are `PortMapperCall`s this loop
//! drives without blocking (portmap_call.rs).

use std::io::{self, Read};
use std::net::SocketAddr;
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Interest, Token};

use crate::config::{DIAL_ATTEMPTS_MAX, DIAL_RETRY_BACKOFF};
use crate::handshake::Role;

use super::portmap_call::{PortMapperCall, Purpose, Stage};
use super::{
    Command, EventLoop, Redial, REGISTER_BACKOFF_MAX, REGISTER_BACKOFF_MIN, REGISTRATION,
    WAITING_COMMANDS_MAX,
};

impl EventLoop {
    /// Queues `command` until `node` is up, dialling it if needed.
    pub(super) fn wait_for(&mut self, node: String, command: Command) {
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
    pub(super) fn resolve(&mut self, node: String) {
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

    pub(super) fn start_lookup(
        &mut self,
        addr: SocketAddr,
        node: String,
        name: String,
    ) -> Result<(), String> {
        let request = erlangen_portmap::wire::Request::Port { name };
        self.start_call(addr, Purpose::Lookup { node }, request)
    }

    /// Opens a non-blocking connection to the port mapper at `addr` for
    /// `request`.
    pub(super) fn start_call(
        &mut self,
        addr: SocketAddr,
        purpose: Purpose,
        request: erlangen_portmap::wire::Request,
    ) -> Result<(), String> {
        let remote = addr != self.shared.port_mapper;
        // To another host's port mapper over TLS if the node runs it; the
        // certificate must name the host in the looked-up node's name.
        let tls = match (&self.shared.tls, &purpose) {
            (Some(tls), Purpose::Lookup { node }) if remote => {
                let host = node.split('/').next().unwrap_or_default();
                Some(tls.dial(host)?)
            }
            _ => None,
        };
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
                // Another host's port mapper serves only a client that
                // proves the cookie; ours serves us as a loopback client.
                prove: remote.then(|| self.shared.cookie.clone()),
                tls,
                stage: Stage::Greeting,
            },
        );
        Ok(())
    }

    /// Drives a call to a port mapper and acts on its answer: a lookup
    /// goes on to connect (`resolved`); a registration is held again, or
    /// retried after a backoff.
    pub(super) fn call_event(&mut self, token: Token) {
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
            (Purpose::Lookup { node }, Ok(Reply::Error { description, .. })) => {
                let description = crate::wire::bounded_text(description, 256);
                let why = format!(
                    "no such node: the port mapper at {} says {description}",
                    call.port_mapper
                );
                self.resolved(node, Err(why));
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
    pub(super) fn retry_registration(&mut self, why: &str) {
        tracing::debug!(why, "erlangen: registration failed; retrying");
        self.register_at = Some(Instant::now() + self.register_backoff);
        self.register_backoff = (self.register_backoff * 2).min(REGISTER_BACKOFF_MAX);
    }

    /// Starts a registration call if one is due (and none runs).
    pub(super) fn register_if_due(&mut self) {
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
    pub(super) fn port_mapper_of(&self, node: &str) -> Result<SocketAddr, String> {
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

    pub(super) fn resolved(&mut self, node: String, result: Result<SocketAddr, String>) {
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

    pub(super) fn check_registration(&mut self) {
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

    /// A dial of `peer` (its lookup, connect or handshake) failed: if
    /// commands still wait for it and attempts are left, dial again after a
    /// backoff (a simultaneous dial that lost the tie-break on the peer's
    /// side ends here too, and the peer's own dial then carries what
    /// waits); else step 6, so nothing waits for a node that will not come.
    pub(super) fn dial_failed(&mut self, peer: &str, why: &str) {
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
    pub(super) fn redial_if_due(&mut self) {
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
}
