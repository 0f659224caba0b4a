//! `PeerStats`: the counters of one peer connection, as `Node::peers`
//! reports them (the loop publishes them on each turn).

use std::time::Instant;

/// Counters of one peer connection ([`crate::Node::peers`]).
///
/// ```
/// let fresh = erlangen_net::PeerStats::default();
/// assert!(!fresh.connected && fresh.packets_out == 0);
/// ```
#[derive(Clone, Debug, Default)]
pub struct PeerStats {
    /// The peer's name.
    pub node: String,
    /// Whether the connection is up.
    pub connected: bool,
    /// Messages and signals sent.
    pub packets_out: u64,
    /// Of `packets_out`, the messages and replies their senders' threads
    /// wrote without a hand-off to the node's event loop.
    pub direct_packets_out: u64,
    /// Messages and signals received.
    pub packets_in: u64,
    /// Bytes written.
    pub bytes_out: u64,
    /// Bytes read.
    pub bytes_in: u64,
    /// Bytes waiting to be written now.
    pub buffered_bytes: usize,
    /// When the last byte arrived, if any did.
    pub last_heard: Option<Instant>,
    /// Connections to it that ended in an error.
    pub errors: u64,
    /// The last round trip measured on the connection (a probe the loop
    /// sends once per heartbeat interval, answered by the peer's loop;
    /// behind whatever the connection queues, so it shows queueing too).
    pub round_trip: Option<std::time::Duration>,
}
