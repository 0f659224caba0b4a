//! Dialling an Erlang node: what our node does when one of its agents
//! sends or signals to a process of an Erlang node it is not connected to.
//!
//! 1. **Lookup.** A non-blocking connection to the epmd of the node's host
//!    (the host part of `alive@host`, on the cluster's epmd port) asks
//!    `PORT_PLEASE2_REQ` for `alive`; epmd answers and closes. A name epmd
//!    does not know fails the dial.
//! 2. **Connect and handshake** as the dialer (erlang/handshake.rs); the
//!    connection is an `ErlConnection` like an accepted one, marked with
//!    the node it dialled.
//! 3. **Up.** What waited for the node goes out in order.
//! 4. **Failure** (lookup, connect, handshake, or longer than
//!    `config::ACCEPTED_HANDSHAKE_TIMEOUT`): what waited is dropped and
//!    counted, and every edge an agent made towards the node fires
//!    `noconnection` (the loop loses it, as a lost connection).
//!
//! The host's name is resolved on the loop's thread (a host in
//! `/etc/hosts` or a numeric address costs nothing; a slow resolver stalls
//! the loop for as long).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use crate::erlang::epmd;
use crate::erlang::handshake::Handshake;
use crate::shared::NodeShared;

use super::erlang::{ErlConnection, ErlangSide};

/// A port lookup at another host's epmd (step 1).
pub(super) struct Lookup {
    /// The node dialled.
    pub(super) peer: String,
    pub(super) stream: TcpStream,
    /// The host's address (the node's port is asked for there).
    host: std::net::IpAddr,
    /// The request, until written.
    request: Vec<u8>,
    /// epmd's answer so far.
    answer: Vec<u8>,
    pub(super) started: Instant,
}

impl ErlangSide {
    /// Starts dialling `peer` (`alive@host`), step 1.
    pub(super) fn dial(
        &mut self,
        peer: &str,
        registry: &Registry,
        shared: &NodeShared,
    ) -> Result<(), String> {
        crate::erlang::handshake::valid_name(peer)?;
        let erlang = shared.erlang.as_ref().ok_or("not an Erlang node")?;
        let (alive, host) = peer.split_once('@').expect("a valid name has @");
        let addr = (host, erlang.epmd_port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .find(SocketAddr::is_ipv4)
            .ok_or_else(|| format!("{host} has no IPv4 address"))?;
        let mut stream = TcpStream::connect(addr).map_err(|e| format!("epmd at {addr}: {e}"))?;
        let token = self.token();
        registry
            .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
            .map_err(|e| e.to_string())?;
        self.lookups.insert(
            token,
            Lookup {
                peer: peer.to_owned(),
                stream,
                host: addr.ip(),
                request: epmd::port_request(alive),
                answer: Vec::new(),
                started: Instant::now(),
            },
        );
        self.dialing.insert(peer.to_owned(), token);
        Ok(())
    }

    /// An event on a lookup's connection: writes the request, reads the
    /// answer, and at its end connects to the node (step 2).
    pub(super) fn lookup_event(&mut self, token: Token, registry: &Registry, shared: &NodeShared) {
        let outcome = match self.lookups.get_mut(&token) {
            Some(lookup) => lookup.advance(),
            None => return,
        };
        let port = match outcome {
            Ok(None) => return,
            Ok(Some(port)) => Ok(port),
            Err(why) => Err(why),
        };
        let mut lookup = self.lookups.remove(&token).expect("present");
        let _ = registry.deregister(&mut lookup.stream);
        let peer = lookup.peer.clone();
        let connected = port.and_then(|port| {
            self.connect_node(&peer, SocketAddr::new(lookup.host, port), registry, shared)
        });
        match connected {
            Ok(connection) => {
                self.dialing.insert(peer, connection);
            }
            Err(why) => {
                // The lookup's token is still the one on record.
                self.dial_failed(&peer, token, &why);
            }
        }
    }

    /// Step 2: a non-blocking connect to the node, with its handshake's
    /// first message queued.
    fn connect_node(
        &mut self,
        peer: &str,
        addr: SocketAddr,
        registry: &Registry,
        shared: &NodeShared,
    ) -> Result<Token, String> {
        let erlang = shared.erlang.as_ref().ok_or("not an Erlang node")?;
        let mut stream = TcpStream::connect(addr).map_err(|e| format!("{addr}: {e}"))?;
        let token = self.token();
        registry
            .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
            .map_err(|e| e.to_string())?;
        let (first, handshake) =
            Handshake::dial(&erlang.name, erlang.creation, &erlang.cookie, peer);
        let mut connection = ErlConnection::new(stream, handshake, Some(peer.to_owned()));
        connection
            .write
            .extend_from_slice(&(first.len() as u16).to_be_bytes());
        connection.write.extend_from_slice(&first);
        connection.writable = true;
        self.connections.insert(token, connection);
        // The lookup's token stays on record until the caller replaces it.
        Ok(token)
    }
}

impl Lookup {
    /// Writes what is left of the request and reads what epmd says; the
    /// port once the answer is whole (`None`: not yet).
    fn advance(&mut self) -> Result<Option<u16>, String> {
        while !self.request.is_empty() {
            match self.stream.write(&self.request) {
                Ok(n) => {
                    self.request.drain(..n);
                }
                Err(error)
                    if error.kind() == io::ErrorKind::WouldBlock
                        || error.kind() == io::ErrorKind::NotConnected =>
                {
                    return Ok(None);
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(format!("epmd: {error}")),
            }
        }
        let mut chunk = [0u8; 512];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    self.answer.extend_from_slice(&chunk[..n]);
                    if self.answer.len() > 1024 {
                        return Err("epmd's answer is too long".into());
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(format!("epmd: {error}")),
            }
        }
        match epmd::port_response(&self.answer) {
            Ok(port) => Ok(Some(port)),
            Err(epmd::EpmdError::Incomplete) => Ok(None),
            Err(epmd::EpmdError::Refused(_)) => Err(format!("epmd does not know {}", self.peer)),
            Err(error) => Err(error.to_string()),
        }
    }
}
