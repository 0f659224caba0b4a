//! Large packets in fragments: a message of up to
//! `config::MESSAGE_BODY_BYTES_MAX` (64 MiB) crosses a connection as
//! fragments of `config::FRAGMENT_BYTES`, interleaved with the small frames
//! of other agents, so that it never holds them up for its whole transfer
//! (Erlang's `DFLAG_FRAGMENTS`).
//!
//! # Sending (`Outgoing`, inside a connection's outbox)
//!
//! 1. Each packet has a key (`Key::of`): the agent it is for (a message,
//!    reply or signal to a serial), `Barrier` (a message by name, a spawn:
//!    their agent is not known here), or `Free` (the loop's answers, which
//!    nothing orders behind).
//! 2. A packet whose encoding is larger than `FRAGMENT_BYTES` becomes a
//!    stream: its bytes wait here, numbered, and leave as fragments.
//! 3. A packet waits (held in encoded form) while something it must not
//!    overtake is in flight: a packet for agent `k` waits behind the stream
//!    for `k` (in that stream's `after` list); any packet waits behind a
//!    `Barrier` stream or behind packets already waiting at the barrier;
//!    a `Barrier` packet waits behind every stream. So every pair of agents
//!    keeps its order, and only pairs with a large message in flight wait.
//! 4. The writer refills its buffer from the streams whenever the buffer
//!    holds less than `FRAGMENT_REFILL_BYTES`: one fragment of the first
//!    stream, which then goes to the back (round robin). A small frame
//!    appended meanwhile waits behind at most that much.
//! 5. When a stream's last fragment is framed, what waited behind it goes
//!    through step 3 again, in order; when no stream is left, so does what
//!    waited at the barrier.
//!
//! # Receiving (`Incoming`, inside a connection)
//!
//! 1. A fragment frame is `[stream id: u64 LE][last: u8][packet length:
//!    u64 LE][bytes]`. The first fragment of a stream reserves the whole
//!    packet (no copy as it grows); each one's bytes are appended.
//! 2. At most `STREAMS_IN_FLIGHT_MAX` partial packets per connection, each
//!    at most `PACKET_BYTES_MAX`, and `PARTIAL_BYTES_MAX` reserved in all;
//!    a fragment past its packet's length, or a last one short of it: past
//!    these the connection is closed (bad input).
//! 3. The last fragment completes the packet, which is then handled as a
//!    whole one. A connection that closes frees its partial packets.

use std::collections::{HashMap, VecDeque};

use crate::config::{FRAGMENT_BYTES, PACKET_BYTES_MAX, PARTIAL_BYTES_MAX, STREAMS_IN_FLIGHT_MAX};
use crate::frame;

/// A fragment's header: stream id, last flag, packet length.
const FRAGMENT_HEADER_BYTES: usize = 17;
use crate::wire::{Packet, WireMessage, KIND_FRAGMENT};

/// Whether a message is large: its packet leaves in fragments (step 2),
/// and its sender waits on the large messages' mark.
pub(crate) fn is_large(message: &WireMessage) -> bool {
    message.body.len() > FRAGMENT_BYTES
}

/// What a packet must not overtake (step 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Key {
    /// For the agent with this serial on the peer.
    Agent(u64),
    /// For an agent this node cannot name (by registered name), or a
    /// spawn: waits behind everything.
    Barrier,
    /// Ordered behind nothing (the loop's answers to requests).
    Free,
}

impl Key {
    /// The key of `packet`.
    pub(crate) fn of(packet: &Packet) -> Key {
        match packet {
            Packet::Message { to, .. } | Packet::Reply { to, .. } | Packet::Signal { to, .. } => {
                Key::Agent(*to)
            }
            Packet::Named { .. } | Packet::Spawn { .. } => Key::Barrier,
            Packet::SpawnReply { .. }
            | Packet::Whereis { .. }
            | Packet::WhereisReply { .. }
            | Packet::Peers { .. } => Key::Free,
            // After the messages of its members that went before.
            Packet::Groups { .. } | Packet::Globals { .. } => Key::Barrier,
        }
    }
}

/// An encoded packet that waits (step 3), in two parts: `head` goes in
/// front of `bytes` (a large message's packet head, kept apart so that its
/// bytes are not moved to make room: `wire::large_packet_head`), empty for
/// a packet encoded whole.
#[derive(Debug)]
pub(crate) struct Held {
    pub(crate) key: Key,
    pub(crate) head: Vec<u8>,
    pub(crate) bytes: Vec<u8>,
}

impl Held {
    /// A packet encoded whole.
    pub(crate) fn whole(key: Key, bytes: Vec<u8>) -> Held {
        Held {
            key,
            head: Vec::new(),
            bytes,
        }
    }

    /// The packet's length.
    pub(crate) fn len(&self) -> usize {
        self.head.len() + self.bytes.len()
    }

    /// Appends bytes `from..to` of the packet to `out`.
    fn copy_range(&self, from: usize, to: usize, out: &mut Vec<u8>) {
        let split = self.head.len();
        if from < split {
            out.extend_from_slice(&self.head[from..to.min(split)]);
        }
        if to > split {
            out.extend_from_slice(&self.bytes[from.max(split) - split..to - split]);
        }
    }
}

/// A large packet on its way out (step 2).
#[derive(Debug)]
struct Stream {
    id: u64,
    packet: Held,
    /// Bytes already framed.
    sent: usize,
    /// What waits for this stream's end (step 3).
    after: VecDeque<Held>,
}

/// The sending half (module docs, "Sending").
#[derive(Debug, Default)]
pub(crate) struct Outgoing {
    streams: VecDeque<Stream>,
    barrier: VecDeque<Held>,
    next_id: u64,
    /// Bytes of every stream not yet framed and of every held packet.
    bytes: usize,
}

impl Outgoing {
    /// Bytes waiting here (for the write budget).
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Step 3: whether a packet with `key` must wait now.
    pub(crate) fn must_wait(&self, key: Key) -> bool {
        match key {
            Key::Free => false,
            _ if !self.barrier.is_empty() => true,
            _ if self.streams.iter().any(|s| s.packet.key == Key::Barrier) => true,
            Key::Barrier => !self.streams.is_empty(),
            Key::Agent(_) => self.streams.iter().any(|s| s.packet.key == key),
        }
    }

    /// Step 3: holds `packet` where it waits (`must_wait` said it must).
    pub(crate) fn hold(&mut self, packet: Held) {
        self.bytes += packet.len();
        let behind_barrier = !self.barrier.is_empty()
            || packet.key == Key::Barrier
            || self.streams.iter().any(|s| s.packet.key == Key::Barrier);
        if !behind_barrier {
            if let Some(stream) = self.streams.iter_mut().find(|s| s.packet.key == packet.key) {
                stream.after.push_back(packet);
                return;
            }
        }
        self.barrier.push_back(packet);
    }

    /// Step 2: `packet` leaves as fragments.
    pub(crate) fn start(&mut self, packet: Held) {
        self.bytes += packet.len();
        let id = self.next_id;
        self.next_id += 1;
        self.streams.push_back(Stream {
            id,
            packet,
            sent: 0,
            after: VecDeque::new(),
        });
    }

    /// Step 4: frames the next fragment into `out`; with the last one of a
    /// stream, returns what waited for it (step 5), and when no stream is
    /// left, what waited at the barrier. `None` when nothing is left to
    /// frame.
    pub(crate) fn next_fragment(&mut self, out: &mut Vec<u8>) -> Option<VecDeque<Held>> {
        let Some(mut stream) = self.streams.pop_front() else {
            if self.barrier.is_empty() {
                return None;
            }
            let released = std::mem::take(&mut self.barrier);
            self.bytes -= released.iter().map(Held::len).sum::<usize>();
            return Some(released);
        };
        let len = stream.packet.len();
        let end = (stream.sent + FRAGMENT_BYTES).min(len);
        let last = end == len;
        let at = frame::begin(KIND_FRAGMENT, out);
        out.extend_from_slice(&stream.id.to_le_bytes());
        out.push(u8::from(last));
        out.extend_from_slice(&(len as u64).to_le_bytes());
        stream.packet.copy_range(stream.sent, end, out);
        frame::finish(at, out);
        self.bytes -= end - stream.sent;
        stream.sent = end;
        if !last {
            self.streams.push_back(stream);
            return Some(VecDeque::new());
        }
        let released = stream.after;
        self.bytes -= released.iter().map(Held::len).sum::<usize>();
        Some(released)
    }
}

/// The receiving half (module docs, "Receiving").
#[derive(Debug, Default)]
pub(crate) struct Incoming {
    partial: HashMap<u64, Vec<u8>>,
    bytes: usize,
}

impl Incoming {
    /// Steps 1 to 3 for one fragment frame's body: the completed packet's
    /// bytes, if this was its last fragment, or why the connection must
    /// close.
    pub(crate) fn on_fragment(&mut self, body: &[u8]) -> Result<Option<Vec<u8>>, String> {
        if body.len() < FRAGMENT_HEADER_BYTES {
            return Err("a fragment without its header".to_owned());
        }
        let id = u64::from_le_bytes(body[..8].try_into().expect("8 bytes"));
        let last = match body[8] {
            0 => false,
            1 => true,
            other => return Err(format!("a fragment with flags {other}")),
        };
        let total = u64::from_le_bytes(body[9..17].try_into().expect("8 bytes"));
        let total = usize::try_from(total).unwrap_or(usize::MAX);
        let chunk = &body[FRAGMENT_HEADER_BYTES..];
        if !self.partial.contains_key(&id) {
            if self.partial.len() >= STREAMS_IN_FLIGHT_MAX {
                return Err(format!(
                    "more than {STREAMS_IN_FLIGHT_MAX} fragmented packets in flight"
                ));
            }
            if total > PACKET_BYTES_MAX || self.bytes + total > PARTIAL_BYTES_MAX {
                return Err(format!(
                    "a fragmented packet over the limit ({PACKET_BYTES_MAX} bytes each, \
                     {PARTIAL_BYTES_MAX} in flight)"
                ));
            }
            self.bytes += total;
            self.partial.insert(id, Vec::with_capacity(total));
        }
        let partial = self.partial.get_mut(&id).expect("inserted above");
        if partial.capacity() != total || partial.len() + chunk.len() > total {
            return Err("a fragment past its packet's length".to_owned());
        }
        partial.extend_from_slice(chunk);
        if !last {
            return Ok(None);
        }
        let whole = self.partial.remove(&id).unwrap_or_default();
        self.bytes -= total;
        if whole.len() != total {
            return Err("a fragmented packet cut short".to_owned());
        }
        Ok(Some(whole))
    }
}
