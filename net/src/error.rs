//! `NetError`: why a node could not start or a node call failed.

use std::fmt;

/// Why a node could not start or a node call failed.
///
/// ```
/// let error = erlangen_net::NetError::NameTaken("map-node".into());
/// assert_eq!(error.to_string(), "the node name \"map-node\" is taken on this host");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum NetError {
    /// Another node holds the name on this host.
    NameTaken(String),
    /// The port mapper could not be reached or refused.
    PortMapper(String),
    /// No cookie was given and `ERLANGEN_COOKIE` is not set.
    NoCookie,
    /// A name or id is malformed.
    InvalidName(String),
    /// The operating system refused a socket or a thread.
    Io(std::io::Error),
    /// A remote spawn was refused (unknown function, bad arguments) or its
    /// node was lost.
    Spawn(String),
    /// The node has stopped.
    Stopped,
    /// The node's outbound backlog is above its high-water mark.
    Busy,
    /// A message can never be sent: its type is not registered for
    /// distribution, or it encodes larger than
    /// `config::MESSAGE_BODY_BYTES_MAX`.
    NotSent(String),
    /// A node could not be reached, or was lost while a request waited.
    NoConnection(String),
    /// A node did not answer in time.
    Timeout,
    /// The Erlang distribution could not start (epmd, the Erlang cookie,
    /// the Erlang node name).
    Erlang(String),
    /// The TLS material could not be loaded (a file missing or unreadable,
    /// no certificate, a key that does not fit).
    Tls(String),
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetError::NameTaken(name) => write!(f, "the node name {name:?} is taken on this host"),
            NetError::PortMapper(why) => write!(f, "port mapper: {why}"),
            NetError::NoCookie => f.write_str(
                "no cookie: pass one to the builder, set ERLANGEN_COOKIE, or make ~/.erlangen-cookie readable",
            ),
            NetError::InvalidName(why) => write!(f, "invalid name: {why}"),
            NetError::Io(error) => write!(f, "{error}"),
            NetError::Spawn(why) => write!(f, "remote spawn failed: {why}"),
            NetError::Stopped => f.write_str("the node has stopped"),
            NetError::Busy => f.write_str("the node's outbound buffers are full; try again"),
            NetError::NotSent(why) => write!(f, "message not sent: {why}"),
            NetError::NoConnection(why) => write!(f, "{why}"),
            NetError::Timeout => f.write_str("the node did not answer in time"),
            NetError::Erlang(why) => write!(f, "Erlang distribution: {why}"),
            NetError::Tls(why) => write!(f, "TLS: {why}"),
        }
    }
}

impl std::error::Error for NetError {}

impl From<std::io::Error> for NetError {
    fn from(error: std::io::Error) -> NetError {
        NetError::Io(error)
    }
}
