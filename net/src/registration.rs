//! The node's registration with its host's port mapper: made at start
//! (blocking, so that a taken name fails the start), then held by the event
//! loop, which watches the connection and re-registers after the port
//! mapper restarts (Erlangen's 0.5 Hz loop, here with 50 ms–2 s backoff),
//! on a non-blocking connection it drives itself, as it does lookups of
//! other nodes' ports (event_loop/portmap_call.rs).

use std::net::{SocketAddr, TcpStream};

use erlangen_portmap::{Client, ErrorCode};

use crate::error::NetError;

/// Registers `name` at `port`; returns the connection that holds it.
pub(crate) fn register(
    port_mapper: SocketAddr,
    name: &str,
    port: u16,
) -> Result<TcpStream, NetError> {
    let client = Client::connect(port_mapper)
        .map_err(|e| NetError::PortMapper(format!("{port_mapper}: {e}")))?;
    match client.register(name, port) {
        Ok(registration) => Ok(registration.into_stream()),
        Err(error) if error.code() == Some(ErrorCode::NameTaken) => {
            Err(NetError::NameTaken(name.to_owned()))
        }
        Err(error) => Err(NetError::PortMapper(error.to_string())),
    }
}
