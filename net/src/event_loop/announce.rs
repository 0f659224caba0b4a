//! What a node tells every peer of its own agents (process groups,
//! cluster-wide names): changes go to every connection that is up, in
//! packets of at most `config::GROUP_ENTRIES_MAX` pairs, flushed with the
//! loop's batch; and the check of exited holders runs at most every
//! `config::GROUP_SWEEP_INTERVAL`.

use std::time::Instant;

use mio::Token;

use crate::config::{GROUP_ENTRIES_MAX, GROUP_SWEEP_INTERVAL};
use crate::wire::Packet;

use super::EventLoop;

impl EventLoop {
    /// Writes `packets` to every peer that is up.
    pub(super) fn announce(&mut self, packets: Vec<Packet>) {
        let tokens: Vec<Token> = self.up.values().copied().collect();
        for packet in &packets {
            for &token in &tokens {
                if let Err(error) = self.write_packet(token, packet) {
                    tracing::warn!(%error, "erlangen: cannot tell a peer of a change");
                }
                if !self.dirty.contains(&token) {
                    self.dirty.push(token);
                }
            }
        }
    }
}

/// `(name, serial)` pairs of agents of this node.
pub(super) type Pairs = Vec<(String, u64)>;

/// `(added, removed)` pairs in packets of at most `GROUP_ENTRIES_MAX`
/// pairs each, made by `packet`.
pub(super) fn in_packets(
    added: Pairs,
    removed: Pairs,
    packet: fn(Pairs, Pairs) -> Packet,
) -> Vec<Packet> {
    let mut packets = Vec::new();
    let mut added = added.into_iter().peekable();
    let mut removed = removed.into_iter().peekable();
    while added.peek().is_some() || removed.peek().is_some() {
        let a: Vec<_> = added.by_ref().take(GROUP_ENTRIES_MAX).collect();
        let r: Vec<_> = removed.by_ref().take(GROUP_ENTRIES_MAX - a.len()).collect();
        packets.push(packet(a, r));
    }
    packets
}

/// Whether a check of exited holders is due (it was last done at `last`);
/// records now as the last one if so.
pub(super) fn sweep_due(last: &mut Option<Instant>) -> bool {
    let now = Instant::now();
    if last.is_some_and(|at| now.duration_since(at) < GROUP_SWEEP_INTERVAL) {
        return false;
    }
    *last = Some(now);
    true
}
