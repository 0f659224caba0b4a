//! `Outbox`: a connection's write side — its write buffer, a second handle
//! on its socket and its outbound counters — shared by the node's event
//! loop and the workers of the agents that send to its peer.
//!
//! The loop owns the connection (reads, the handshake, closing) and writes
//! under the outbox's lock. A sending agent's worker may write a message or
//! a reply itself, without a hand-off to the loop (a wake and a thread
//! switch on each side of a hop):
//!
//! 1. The sender encodes the message (route.rs, as before) and finds the
//!    peer's outbox in `Outboxes`: there is one only while the connection
//!    is up.
//! 2. Under the outbox's lock it appends the frame to the buffer only if
//!    the outbox is open, nothing is held behind the buffer (the write
//!    budget), the buffer is under its high-water mark, the packet is for
//!    the peer's current incarnation and of a type the peer decodes, and
//!    the node has no unsettled command (pushed and not yet made bytes in a
//!    buffer, held, waiting or dropped by the loop:
//!    `NodeShared::unsettled`). Then every message and signal this agent
//!    queued before is already in the buffer or the socket, and per-pair
//!    order holds; otherwise it queues a command, as before.
//! 3. A sender on a worker leaves the frame in the buffer and marks the
//!    outbox owed a write (`Deferred`); its worker calls the route's flush
//!    when the sending agent's slice ends, which writes every owed outbox
//!    (a burst of sends is one write, a lone send goes out when its sender
//!    waits). A plain thread writes at once. A write goes until the socket
//!    has it all or would block; a remainder stays in the buffer, and the
//!    loop writes it on the socket's next writable edge (the connection is
//!    registered for it).
//! 4. A write error closes the outbox to direct writes and asks the loop to
//!    flush (`Command::Flush`): the loop meets the error and closes the
//!    connection, firing `noconnection` as on any loss. A message in a
//!    connection that fails is lost, as one the loop wrote would be.
//! 5. The loop opens the outbox once the connection is up and what waited
//!    for it is in its buffer (or held behind it), marks it while commands
//!    are held behind the buffer, and closes it before it drops the
//!    connection.
//!
//! The lock is held for encoding into the buffer and for non-blocking
//! writes only: a worker never waits for the network.

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Instant;

use crate::config::{CONNECTION_WRITE_BYTES_HIGH_WATER, FRAME_BODY_BYTES_MAX};
use crate::frame;
use crate::wire::{self, Packet, KIND_PACKET};

/// A connection's write side.
#[derive(Debug)]
pub(crate) struct Outbox {
    state: Mutex<OutboxState>,
}

/// What the lock guards.
#[derive(Debug)]
pub(crate) struct OutboxState {
    /// Framed bytes not yet written, oldest first.
    pub(crate) write: Vec<u8>,
    /// Direct writes are allowed (step 5).
    open: bool,
    /// Commands are held behind the buffer (step 5; set by the loop).
    pub(crate) held: bool,
    /// A sender left frames for its worker's flush (step 3).
    owed: bool,
    /// A second handle on the connection's socket (non-blocking, as the
    /// loop's), set while the outbox is open.
    stream: Option<TcpStream>,
    /// The peer's incarnation.
    incarnation: u64,
    /// Type names the peer decodes with our fingerprint.
    accepted: HashSet<String>,
    /// Counters, published to the node's stats by the loop.
    pub(crate) packets_out: u64,
    pub(crate) bytes_out: u64,
    /// Of `packets_out`, those appended by senders (step 2).
    pub(crate) direct_out: u64,
    /// When bytes last left the buffer.
    pub(crate) last_write: Instant,
    /// When bytes last left the buffer, or it was last empty.
    pub(crate) last_progress: Instant,
}

/// What a direct write did.
#[derive(Debug)]
pub(crate) enum Direct {
    /// The packet is in the socket, or in the buffer for the loop to finish.
    Sent,
    /// The packet is in the buffer, for the sender's worker's flush; the
    /// outbox was not owed one before (so the caller records it).
    Deferred,
    /// The packet is in the buffer with others owed the same flush.
    Appended,
    /// The packet is in the buffer and the socket failed: the loop must
    /// flush (and will close the connection).
    Failed,
    /// Not written (step 2's rules): the packet goes to the loop.
    Refused(Packet),
}

impl Outbox {
    /// A closed outbox with an empty buffer.
    pub(crate) fn new(now: Instant) -> Outbox {
        Outbox {
            state: Mutex::new(OutboxState {
                write: Vec::new(),
                open: false,
                held: false,
                owed: false,
                stream: None,
                incarnation: 0,
                accepted: HashSet::new(),
                packets_out: 0,
                bytes_out: 0,
                direct_out: 0,
                last_write: now,
                last_progress: now,
            }),
        }
    }

    /// The state, for the loop's reads and writes.
    pub(crate) fn lock(&self) -> MutexGuard<'_, OutboxState> {
        crate::sync::lock(&self.state)
    }

    /// Step 5: allows direct writes to a peer of `incarnation` that decodes
    /// `accepted`, through `stream`.
    pub(crate) fn open(&self, stream: TcpStream, incarnation: u64, accepted: HashSet<String>) {
        let mut state = self.lock();
        state.stream = Some(stream);
        state.incarnation = incarnation;
        state.accepted = accepted;
        state.open = true;
    }

    /// Step 5: no more direct writes; the second handle is dropped.
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        state.open = false;
        state.stream = None;
    }

    /// Steps 2 to 4 for `packet` (a message or a reply; anything else is
    /// refused) to the peer's incarnation `incarnation`, written at once
    /// unless `defer`; `settled` says whether the node has no unsettled
    /// command, read under the lock.
    pub(crate) fn try_write(
        &self,
        packet: Packet,
        incarnation: u64,
        defer: bool,
        settled: impl FnOnce() -> bool,
    ) -> Direct {
        let mut state = self.lock();
        let decoded = match &packet {
            Packet::Message { message, .. } | Packet::Reply { message, .. } => {
                state.accepted.contains(&message.type_name)
            }
            _ => false,
        };
        if !state.open
            || state.held
            || state.write.len() >= CONNECTION_WRITE_BYTES_HIGH_WATER
            || state.incarnation != incarnation
            || !decoded
            || !settled()
        {
            return Direct::Refused(packet);
        }
        if state.write.is_empty() {
            // The no-progress clock starts with the first byte buffered.
            state.last_progress = Instant::now();
        }
        if state.append(&packet).is_err() {
            // Too large for a frame: the loop refuses and counts it.
            return Direct::Refused(packet);
        }
        state.direct_out += 1;
        if defer {
            return if std::mem::replace(&mut state.owed, true) {
                Direct::Appended
            } else {
                Direct::Deferred
            };
        }
        state.write_now()
    }

    /// Step 3: writes a buffer owed a flush.
    pub(crate) fn flush_owed(&self) -> Direct {
        let mut state = self.lock();
        if !std::mem::take(&mut state.owed) {
            return Direct::Sent;
        }
        state.write_now()
    }
}

impl OutboxState {
    /// Steps 3 and 4: writes what the buffer holds, if the outbox is open.
    fn write_now(&mut self) -> Direct {
        if !self.open {
            // The loop took over: it writes the buffer.
            return Direct::Sent;
        }
        if self.write_out().is_err() {
            self.open = false;
            self.stream = None;
            return Direct::Failed;
        }
        Direct::Sent
    }

    /// Appends `packet` framed, if its body is within the frame limit the
    /// peer enforces on reads; else nothing is appended, and the error
    /// says why.
    pub(crate) fn append(&mut self, packet: &Packet) -> Result<(), String> {
        let at = frame::begin(KIND_PACKET, &mut self.write);
        let encoded = wire::encode_into(packet, &mut self.write);
        let length = self.write.len() - at - frame::HEADER_BYTES;
        match encoded {
            Ok(()) if length <= FRAME_BODY_BYTES_MAX => {
                frame::finish(at, &mut self.write);
                self.packets_out += 1;
                self.bytes_out += length as u64;
                Ok(())
            }
            Ok(()) => {
                self.write.truncate(at);
                Err(format!(
                    "{length} bytes exceed the frame limit of {FRAME_BODY_BYTES_MAX}"
                ))
            }
            Err(error) => {
                self.write.truncate(at);
                Err(error.to_string())
            }
        }
    }

    /// Writes the buffer through the second handle until it is empty or
    /// the socket would block (step 3).
    fn write_out(&mut self) -> io::Result<()> {
        let Some(stream) = self.stream.as_mut() else {
            return Ok(());
        };
        let mut written = 0;
        let result = loop {
            if written == self.write.len() {
                break Ok(());
            }
            match stream.write(&self.write[written..]) {
                Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => written += n,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break Ok(()),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => break Err(error),
            }
        };
        self.write.drain(..written);
        if written > 0 {
            self.last_write = Instant::now();
            self.last_progress = self.last_write;
        }
        result
    }
}

/// The outboxes of up connections, by peer node name (step 1).
#[derive(Debug, Default)]
pub(crate) struct Outboxes {
    by_node: RwLock<HashMap<String, Arc<Outbox>>>,
}

impl Outboxes {
    /// The outbox of `node`'s connection, if it is up.
    pub(crate) fn get(&self, node: &str) -> Option<Arc<Outbox>> {
        crate::sync::read(&self.by_node).get(node).cloned()
    }

    /// `outbox` serves `node` from now on.
    pub(crate) fn insert(&self, node: &str, outbox: Arc<Outbox>) {
        crate::sync::write(&self.by_node).insert(node.to_owned(), outbox);
    }

    /// The node `outbox` serves, if it serves one.
    pub(crate) fn node_of(&self, outbox: &Arc<Outbox>) -> Option<String> {
        crate::sync::read(&self.by_node)
            .iter()
            .find(|(_, o)| Arc::ptr_eq(o, outbox))
            .map(|(node, _)| node.clone())
    }

    /// `outbox` no longer serves `node` (another may already).
    pub(crate) fn remove(&self, node: &str, outbox: &Arc<Outbox>) {
        let mut by_node = crate::sync::write(&self.by_node);
        if by_node.get(node).is_some_and(|o| Arc::ptr_eq(o, outbox)) {
            by_node.remove(node);
        }
    }
}
