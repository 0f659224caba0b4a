//! Every limit and default of a node, with its unit in its name.

use std::time::Duration;

/// Protocol version spoken in the handshake.
///
/// ```
/// assert_eq!(erlangen_net::config::PROTOCOL_VERSION, 1);
/// ```
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest frame body accepted or sent, in bytes. A length prefix above it
/// closes the connection before anything is buffered.
///
/// ```
/// assert!(erlangen_net::frame::parse(&[0, 0, 0x20, 0, 3], erlangen_net::config::FRAME_BODY_BYTES_MAX).is_err());
/// ```
pub const FRAME_BODY_BYTES_MAX: usize = 1 << 20;

/// Largest handshake frame body, in bytes (names and the type list).
///
/// ```
/// assert!(erlangen_net::config::HANDSHAKE_BODY_BYTES_MAX < erlangen_net::config::FRAME_BODY_BYTES_MAX);
/// ```
pub const HANDSHAKE_BODY_BYTES_MAX: usize = 64 * 1024;

/// Bytes of the frame header: a 4-byte little-endian body length and a
/// 1-byte kind.
///
/// ```
/// assert_eq!(erlangen_net::config::FRAME_HEADER_BYTES, erlangen_net::frame::HEADER_BYTES);
/// ```
pub const FRAME_HEADER_BYTES: usize = 5;

/// Deepest nesting of a decoded wire value (exit statuses that carry the
/// statuses of linked agents): deeper frames are refused, so that decoding
/// never recurses without bound (pitfalls.md §2).
///
/// ```
/// assert!(erlangen_net::config::WIRE_DEPTH_MAX >= 1);
/// ```
pub const WIRE_DEPTH_MAX: usize = 32;

/// Random bytes of a handshake challenge.
///
/// ```
/// assert_eq!(erlangen_net::handshake::challenge().unwrap().len(), erlangen_net::config::CHALLENGE_BYTES);
/// ```
pub const CHALLENGE_BYTES: usize = 32;

/// Default interval of heartbeats on a quiet connection.
///
/// ```
/// assert!(erlangen_net::config::HEARTBEAT_INTERVAL_DEFAULT < erlangen_net::config::HEARTBEAT_TIMEOUT_DEFAULT);
/// ```
pub const HEARTBEAT_INTERVAL_DEFAULT: Duration = Duration::from_millis(1000);

/// Default silence after which a peer is declared lost.
///
/// ```
/// assert_eq!(erlangen_net::config::HEARTBEAT_TIMEOUT_DEFAULT.as_secs(), 4);
/// ```
pub const HEARTBEAT_TIMEOUT_DEFAULT: Duration = Duration::from_millis(4000);

/// Time a connection may take to connect and finish its handshake.
///
/// ```
/// assert!(erlangen_net::config::HANDSHAKE_TIMEOUT.as_secs() >= 1);
/// ```
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Most connections a node keeps (peers plus connections in handshake).
///
/// ```
/// assert!(erlangen_net::config::CONNECTIONS_MAX >= 2);
/// ```
pub const CONNECTIONS_MAX: usize = 1024;

/// Most bytes read from one connection per readiness event before others
/// get a turn.
///
/// ```
/// assert!(erlangen_net::config::READ_BYTES_PER_TURN_MAX >= 64 * 1024);
/// ```
pub const READ_BYTES_PER_TURN_MAX: usize = 256 * 1024;

/// Longest node name part (the `node` of `host/node`), in bytes.
///
/// ```
/// assert!("localhost/alpha".parse::<erlangen_net::NodeName>().is_ok());
/// let long = format!("localhost/{}", "a".repeat(erlangen_net::config::NODE_NAME_BYTES_MAX + 1));
/// assert!(long.parse::<erlangen_net::NodeName>().is_err());
/// ```
pub const NODE_NAME_BYTES_MAX: usize = 255;

/// Commands (messages and signals) queued in the node and not yet written,
/// above which agents sending to remote pids wait (backpressure).
///
/// ```
/// assert!(erlangen_net::config::BACKLOG_COMMANDS_HIGH_WATER < erlangen_net::config::BACKLOG_COMMANDS_MAX);
/// ```
pub const BACKLOG_COMMANDS_HIGH_WATER: usize = 8192;

/// Bytes in the node's write buffers above which agents sending to remote
/// pids wait (backpressure). With the command bound, a node holds at most
/// about this much plus `BACKLOG_COMMANDS_HIGH_WATER` messages for the
/// network.
///
/// ```
/// assert_eq!(erlangen_net::config::BACKLOG_BYTES_HIGH_WATER, 4 << 20);
/// ```
pub const BACKLOG_BYTES_HIGH_WATER: usize = 4 << 20;

/// Pending connects the node's listening socket holds.
///
/// ```
/// assert!(erlangen_net::config::LISTEN_BACKLOG >= 128);
/// ```
pub const LISTEN_BACKLOG: u32 = 1024;

/// How soon the node tries accepting again after descriptors ran out.
///
/// ```
/// assert!(erlangen_net::config::ACCEPT_RETRY.as_millis() > 0);
/// ```
pub const ACCEPT_RETRY: Duration = erlangen_portmap::listener::ACCEPT_RETRY;

/// Commands queued above which a send from outside any agent (which cannot
/// be made to wait) is dropped and counted ([`crate::Node::dropped`]):
/// agents wait at `BACKLOG_COMMANDS_HIGH_WATER`, so only plain threads
/// reach this, and the node's memory stays bounded whoever sends.
///
/// ```
/// assert_eq!(erlangen_net::config::BACKLOG_COMMANDS_MAX, 4 * erlangen_net::config::BACKLOG_COMMANDS_HIGH_WATER);
/// ```
pub const BACKLOG_COMMANDS_MAX: usize = 4 * BACKLOG_COMMANDS_HIGH_WATER;
