//! The node's registration with its host's port mapper: made at start
//! (blocking, so that a taken name fails the start), then held by the event
//! loop, which watches the connection and re-registers after the port
//! mapper restarts (Erlangen's 0.5 Hz loop, here with 50 ms–2 s backoff on
//! a short-lived helper thread, whose result the loop picks up).

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use erlangen_portmap::{Client, ErrorCode};

use crate::node::NetError;

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

/// Re-registers until it works or `stop` says so, backing off from 50 ms
/// to 2 s.
pub(crate) fn register_again(
    port_mapper: SocketAddr,
    name: &str,
    port: u16,
    stop: &dyn Fn() -> bool,
) -> Option<TcpStream> {
    let mut backoff = Duration::from_millis(50);
    while !stop() {
        match register(port_mapper, name, port) {
            Ok(stream) => return Some(stream),
            Err(error) => {
                tracing::debug!(%error, "erlangen: re-registration failed; retrying");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
    None
}

/// Looks up the port of `name` on the port mapper at `port_mapper`.
pub(crate) fn lookup(port_mapper: SocketAddr, name: &str) -> Result<u16, String> {
    let mut client = Client::connect(port_mapper).map_err(|e| e.to_string())?;
    client.lookup(name).map_err(|e| e.to_string())
}
