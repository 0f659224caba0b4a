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

impl PortMapperCall {
    /// Reads what arrived and answers the greeting; the reply, an error,
    /// or `None` while it goes on.
    pub(super) fn advance(&mut self) -> Option<Result<erlangen_portmap::wire::Reply, String>> {
        use erlangen_portmap::config::REPLY_BODY_BYTES_MAX;
        use erlangen_portmap::wire::Reply;
        let mut chunk = [0u8; 4096];
        loop {
            match self.stream.read(&mut chunk) {
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
        self.stream
            .write_all(&out)
            .map_err(|error| format!("port mapper: {error}"))
    }
}
