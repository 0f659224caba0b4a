//! `PortMapperCall`: one request to a port mapper on a non-blocking
//! connection that the event loop drives (portmap/PROTOCOL.md), for
//! lookups of other nodes' ports and re-registration after a port-mapper
//! restart.
//!
//! # Protocol
//!
//! 1. The loop connects (non-blocking) and registers the stream.
//! 2. On each readiness, `advance` reads what arrived; on the port
//!    mapper's HELLO it writes the request once.
//! 3. The first reply after the request (or an error, or the peer closing)
//!    ends the call; the loop then drops the connection.

use std::io::{self, Read, Write};
use std::net::SocketAddr;

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
    pub(super) request: erlangen_portmap::wire::Request,
    /// The port mapper asked.
    pub(super) port_mapper: SocketAddr,
    /// Bytes received and not yet a whole frame.
    pub(super) read: Vec<u8>,
    /// Whether the request went out.
    pub(super) asked: bool,
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
            match reply {
                Ok(Reply::Hello { .. }) if !self.asked => {
                    let mut out = Vec::new();
                    self.request.encode(&mut out);
                    // A request of a few hundred bytes fits the empty send
                    // buffer of a fresh connection.
                    if let Err(error) = self.stream.write_all(&out) {
                        return Some(Err(format!("port mapper: {error}")));
                    }
                    self.asked = true;
                }
                Ok(Reply::Error { description, .. }) => {
                    return Some(Err(format!("port mapper: {description}")))
                }
                Ok(reply) if self.asked => return Some(Ok(reply)),
                Ok(other) => return Some(Err(format!("port mapper: unexpected {other:?}"))),
                Err(error) => return Some(Err(format!("port mapper: {error}"))),
            }
        }
    }
}
