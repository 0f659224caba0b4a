//! `PortMapperCall`: one request to a port mapper on a non-blocking
//! connection that the event loop drives (portmap/PROTOCOL.md), for
//! lookups of other nodes' ports and re-registration after a port-mapper
//! restart.
//!
//! # Protocol
//!
//! 1. The loop connects (non-blocking) and registers the stream.
//! 2. On each readiness, `advance` reads what arrived. On the port
//!    mapper's HELLO it writes the request once — or, to a port mapper of
//!    another host (which serves only clients that prove the cookie), first
//!    AUTH with the proof over HELLO's challenge, and the request once that
//!    is acknowledged.
//! 3. The first reply after the request (or an error, or the peer closing)
//!    ends the call; the loop then drops the connection.
//!
//! To another host's port mapper, a node that runs TLS speaks TLS
//! (portmap's tls.rs; that port mapper asks it of every client not on its
//! own host): every byte of steps 2 and 3 goes through the session, whose
//! own records go out on each readiness.

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use erlangen_portmap::wire::Request;
use mio::net::TcpStream;

/// What a call to a port mapper is for.
pub(super) enum Purpose {
    /// Find the port of a node (`host/node`).
    Lookup { node: String },
    /// Register this node again after the port mapper restarted.
    Register,
}

/// One request to a port mapper on a non-blocking connection this loop
/// drives (portmap/PROTOCOL.md: read HELLO, send the request, read the
/// reply).
pub(super) struct PortMapperCall {
    pub(super) stream: TcpStream,
    pub(super) purpose: Purpose,
    /// The request to send after HELLO.
    pub(super) request: Request,
    /// The port mapper asked.
    pub(super) port_mapper: SocketAddr,
    /// Bytes received and not yet a whole frame.
    pub(super) read: Vec<u8>,
    /// The cookie to prove before asking (a port mapper of another host).
    pub(super) prove: Option<Vec<u8>>,
    /// TLS to another host's port mapper, if the node runs it.
    pub(super) tls: Option<erlangen_portmap::tls::Session>,
    /// How far the call is.
    pub(super) stage: Stage,
}

/// Step 2's stages.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Stage {
    /// Waiting for HELLO.
    Greeting,
    /// AUTH went out; waiting for its acknowledgement.
    Proving,
    /// The request went out; waiting for its reply.
    Asked,
}

/// How a call ended (its reply, or why not), or `None` while it goes on.
pub(super) type Outcome = Option<Result<erlangen_portmap::wire::Reply, String>>;

impl PortMapperCall {
    /// Reads what arrived and answers the greeting; the reply, an error,
    /// or `None` while it goes on.
    pub(super) fn advance(&mut self) -> Outcome {
        use erlangen_portmap::config::REPLY_BODY_BYTES_MAX;
        use erlangen_portmap::wire::Reply;
        if let Err(error) = self.write_held() {
            return error;
        }
        let mut chunk = [0u8; 4096];
        loop {
            let read = match &self.tls {
                None => self.stream.read(&mut chunk),
                Some(tls) => tls.read(&mut self.stream, &mut chunk),
            };
            match read {
                Ok(0) => return Some(Err("the port mapper closed the connection".to_owned())),
                Ok(n) => self.read.extend_from_slice(&chunk[..n]),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) if error.kind() == io::ErrorKind::NotConnected => return None,
                Err(error) => return Some(Err(format!("port mapper: {error}"))),
            }
            if self.read.len() > REPLY_BODY_BYTES_MAX {
                return Some(Err("the port mapper sent too much".to_owned()));
            }
        }
        // What TLS made of the reads (its handshake's answers).
        if let Err(error) = self.write_held() {
            return error;
        }
        loop {
            let (reply, used) =
                match erlangen_portmap::frame::parse(&self.read, REPLY_BODY_BYTES_MAX) {
                    Ok(Some((frame, used))) => (Reply::decode(frame.kind, frame.body), used),
                    Ok(None) => return None,
                    Err(error) => return Some(Err(format!("port mapper: {error}"))),
                };
            self.read.drain(..used);
            match (self.stage, reply) {
                (Stage::Greeting, Ok(Reply::Hello { challenge, .. })) => {
                    let first = match &self.prove {
                        Some(cookie) => {
                            self.stage = Stage::Proving;
                            Request::Auth {
                                proof: erlangen_portmap::auth::prove(cookie, &challenge),
                            }
                        }
                        None => {
                            self.stage = Stage::Asked;
                            self.request.clone()
                        }
                    };
                    if let Err(error) = self.write(&first) {
                        return Some(Err(error));
                    }
                }
                (Stage::Proving, Ok(Reply::Ack)) => {
                    self.stage = Stage::Asked;
                    let request = self.request.clone();
                    if let Err(error) = self.write(&request) {
                        return Some(Err(error));
                    }
                }
                (_, Ok(Reply::Error { description, .. })) => {
                    return Some(Err(format!("port mapper: {description}")))
                }
                (Stage::Asked, Ok(reply)) => return Some(Ok(reply)),
                (_, Ok(other)) => return Some(Err(format!("port mapper: unexpected {other:?}"))),
                (_, Err(error)) => return Some(Err(format!("port mapper: {error}"))),
            }
        }
    }

    /// Writes one request; a request of a few hundred bytes fits the empty
    /// send buffer of a fresh connection.
    fn write(&mut self, request: &Request) -> Result<(), String> {
        let mut out = Vec::new();
        request.encode(&mut out);
        let written = match &self.tls {
            None => self.stream.write_all(&out),
            Some(tls) => {
                let mut rest = out.as_slice();
                loop {
                    match tls.write(&mut self.stream, rest) {
                        Ok(n) if n == rest.len() => break Ok(()),
                        Ok(n) => rest = &rest[n..],
                        Err(error) => break Err(error),
                    }
                }
            }
        };
        written.map_err(|error| format!("port mapper: {error}"))
    }

    /// Writes the records the TLS session holds, if any; an error ends the
    /// call (`Err(Some(…))`), a socket still connecting waits (`Err(None)`).
    fn write_held(&mut self) -> Result<(), Outcome> {
        let Some(tls) = &self.tls else {
            return Ok(());
        };
        match tls.write_held(&mut self.stream) {
            Ok(_) => Ok(()),
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::NotConnected | io::ErrorKind::WouldBlock
                ) =>
            {
                Err(None)
            }
            Err(error) => Err(Some(Err(format!("port mapper: {error}")))),
        }
    }
}
