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
//!    the sender has no unsettled command (pushed and not yet made bytes
//!    in a buffer, held, waiting or dropped by the loop: unsettled.rs,
//!    counted per sending agent). Then every message and signal this agent
//!    queued before is already in the buffer or the socket, and per-pair
//!    order holds; otherwise it queues a command, as before.
//!    2b. A sender on a worker that finds the lock held (another worker's
//!    append or write, or the loop's) does not wait and does not go to the
//!    loop: if the same rules hold by what it can read without the lock
//!    (`direct`: open and nothing held, a mirror kept under the lock; the
//!    incarnation and the accepted types, fixed while open; no unsettled
//!    command) and the packet is small, it encodes the packet into the
//!    outbox's **pending lane** (its own short lock) and owes a flush.
//!    Whoever holds the state lock moves the pending lane into the buffer
//!    when it takes the lock and again when it lets go (`OutboxGuard`):
//!    after letting go it looks at the lane and, if it is not empty,
//!    takes the lock again unless someone else holds it, who will look
//!    when it lets go. So a packet never stays in the lane while nobody
//!    holds the lock, and it reaches the buffer before anything its sender
//!    sends later: every later direct send takes the lock first, and a
//!    later command reaches the buffer only through the loop's lock.
//!    (The lock was a point of contention with eight senders on two
//!    workers: a sender that met it held went to the loop, and every send
//!    of the node after it followed while that command was unsettled,
//!    issue 21.)
//!    2c. A worker's sender that finds the buffer past its high-water mark
//!    (the peer reads slower than the node writes; large packets leaving
//!    in fragments are not counted here: they have a mark of their own,
//!    and small messages overtake them) still appends, while the buffer is
//!    less than a frame past the mark, and is told to wait
//!    (`Sent::wait`): suspended, it looks again every `REMOTE_BUSY_POLL`
//!    until the buffer is back under the mark (`Outbox::is_full`). So a
//!    flood waits for the peer instead of spilling into the loop's queue,
//!    where every later send of its sender followed while its command was
//!    unsettled (issue 21). Past the frame of slack, the loop takes the
//!    packet, as in step 2.
//! 3. A sender on a worker leaves the frame in the buffer and marks the
//!    outbox owed a write (`Deferred`); its worker calls the route's flush
//!    when the sending agent's slice ends, which writes every owed outbox
//!    (a burst of sends is one write, a lone send goes out when its sender
//!    waits). A plain thread writes at once. A write goes until the socket
//!    has it all or would block; a remainder stays in the buffer, and the
//!    loop writes it on the socket's next writable edge (the connection is
//!    registered for it).
//!    A worker writes at most `WORKER_WRITE_BYTES_MAX` per flush and hands
//!    the rest to the loop (`Command::Flush`): a large message never holds
//!    it.
//! 4. A write error closes the outbox to direct writes and asks the loop to
//!    flush (`Command::Flush`): the loop meets the error and closes the
//!    connection, firing `noconnection` as on any loss. A message in a
//!    connection that fails is lost, as one the loop wrote would be.
//! 5. The loop opens the outbox once the connection is up and what waited
//!    for it is in its buffer (or held behind it), marks it while commands
//!    are held behind the buffer, and closes it before it drops the
//!    connection.
//!
//! With TLS (portmap's tls.rs), every write, the loop's and the workers',
//! goes through the connection's session (taken after this lock), and what
//! the session holds is written first.
//!
//! The lock is held for encoding into the buffer and for non-blocking
//! writes only: a worker never waits for the network, and waits for the
//! lock at most `config::OUTBOX_LOCK_SPIN` (spinning) before it leaves the
//! packet, or the flush, to the loop.

use std::collections::HashSet;
use std::io::{self, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Instant;

use crate::config::{
    CONNECTION_WRITE_BYTES_HIGH_WATER, FRAGMENT_BYTES, FRAGMENT_REFILL_BYTES, FRAME_BODY_BYTES_MAX,
    OUTBOX_LOCK_SPIN, OUTBOX_PENDING_BYTES_MAX, PACKET_BYTES_MAX, WORKER_WRITE_BYTES_MAX,
};
use crate::fragments::{Held, Key, Outgoing};
use crate::frame;
use crate::hashing::{FastMap, FastSet};
use crate::wire::{self, Packet, KIND_PACKET};
use erlangen_portmap::tls::Session;

/// A connection's write side.
#[derive(Debug)]
pub(crate) struct Outbox {
    state: Mutex<OutboxState>,
    /// Step 2b: packets senders encoded while `state` was held, in send
    /// order, with their keys; and their bytes.
    pending: Mutex<Pending>,
    /// Packets in `pending` (read without its lock).
    pending_len: AtomicUsize,
    /// Step 2b's mirror of `open && !held`, written under `state`'s lock.
    direct: Arc<AtomicBool>,
    /// The peer's incarnation, set by `open`.
    incarnation: AtomicU64,
    /// The type names the peer decodes, set by `open` (step 2b reads them
    /// without the state lock).
    accepted: RwLock<FastSet<String>>,
}

/// Step 2b's lane: encoded packets with their keys, in send order, and
/// their bytes.
#[derive(Debug, Default)]
struct Pending {
    packets: Vec<(Key, Vec<u8>)>,
    bytes: usize,
}

/// The state lock, held: what `Outbox::lock` gives. Moves the pending
/// lane into the buffer when taken and when let go (step 2b).
pub(crate) struct OutboxGuard<'a> {
    outbox: &'a Outbox,
    state: Option<MutexGuard<'a, OutboxState>>,
}

impl std::ops::Deref for OutboxGuard<'_> {
    type Target = OutboxState;

    fn deref(&self) -> &OutboxState {
        self.state.as_ref().expect("held until dropped")
    }
}

impl std::ops::DerefMut for OutboxGuard<'_> {
    fn deref_mut(&mut self) -> &mut OutboxState {
        self.state.as_mut().expect("held until dropped")
    }
}

impl Drop for OutboxGuard<'_> {
    fn drop(&mut self) {
        if let Some(mut state) = self.state.take() {
            self.outbox.take_pending(&mut state);
            drop(state);
        }
        // Pairs with the fence in `Outbox::try_pending`.
        std::sync::atomic::fence(Ordering::SeqCst);
        // Step 2b: a sender may have used the lane after our last look;
        // if nobody else holds the lock, move it ourselves.
        while self.outbox.pending_len.load(Ordering::SeqCst) > 0 {
            let Some(mut state) = self.outbox.try_lock_raw() else {
                return;
            };
            self.outbox.take_pending(&mut state);
        }
    }
}

/// What the lock guards.
#[derive(Debug)]
pub(crate) struct OutboxState {
    /// Framed bytes not yet written, oldest first.
    pub(crate) write: Vec<u8>,
    /// Large packets leaving in fragments, and what waits behind them
    /// (fragments.rs).
    outgoing: Outgoing,
    /// Direct writes are allowed (step 5).
    open: bool,
    /// Commands are held behind the buffer (step 5; set by the loop
    /// through `set_held`).
    held: bool,
    /// A sender left frames for its worker's flush (step 3).
    owed: bool,
    /// A second handle on the connection's socket (non-blocking, as the
    /// loop's), set while the outbox is open.
    stream: Option<TcpStream>,
    /// The connection's TLS session, if the node runs TLS: every write goes
    /// through it (tls.rs step 4).
    tls: Option<Arc<Session>>,
    /// Step 2b's mirror of `open && !held` (the outbox's `direct`).
    direct: Arc<AtomicBool>,
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
    /// Written up to the worker's budget; the loop must write the rest
    /// (`Command::Flush`).
    HandOver,
    /// Not written (step 2's rules): the packet goes to the loop.
    Refused(Packet),
    /// The packet is in the buffer, which is past
    /// `CONNECTION_WRITE_BYTES_HIGH_WATER` (the peer reads slower than its
    /// senders write): the sender waits until it is back under the mark
    /// (step 2c). `deferred` as for `Deferred`: the caller records the
    /// flush owed.
    Full { deferred: bool },
}

impl Outbox {
    /// A closed outbox with an empty buffer, writing through `tls` if
    /// given.
    pub(crate) fn new(now: Instant, tls: Option<Arc<Session>>) -> Outbox {
        let direct = Arc::new(AtomicBool::new(false));
        Outbox {
            pending: Mutex::new(Pending::default()),
            pending_len: AtomicUsize::new(0),
            direct: direct.clone(),
            incarnation: AtomicU64::new(0),
            accepted: RwLock::new(FastSet::default()),
            state: Mutex::new(OutboxState {
                write: Vec::new(),
                outgoing: Outgoing::default(),
                open: false,
                held: false,
                owed: false,
                stream: None,
                tls,
                direct,
                packets_out: 0,
                bytes_out: 0,
                direct_out: 0,
                last_write: now,
                last_progress: now,
            }),
        }
    }

    /// The state, for the loop's reads and writes (the pending lane moved
    /// into the buffer first, step 2b).
    pub(crate) fn lock(&self) -> OutboxGuard<'_> {
        self.guard(crate::sync::lock(&self.state))
    }

    /// `state` as a guard, the pending lane moved in.
    fn guard<'a>(&'a self, mut state: MutexGuard<'a, OutboxState>) -> OutboxGuard<'a> {
        self.take_pending(&mut state);
        OutboxGuard {
            outbox: self,
            state: Some(state),
        }
    }

    /// Step 2b: moves the pending lane into the buffer (or drops it, if the
    /// outbox closed: it is lost with the connection, as the buffer is).
    fn take_pending(&self, state: &mut OutboxState) {
        if self.pending_len.load(Ordering::SeqCst) == 0 {
            return;
        }
        let taken = {
            let mut pending = crate::sync::lock(&self.pending);
            self.pending_len.store(0, Ordering::SeqCst);
            pending.bytes = 0;
            std::mem::take(&mut pending.packets)
        };
        if !state.open {
            return;
        }
        if state.queued_bytes() == 0 {
            state.last_progress = Instant::now();
        }
        for (key, bytes) in taken {
            state.direct_out += 1;
            state.append_encoded(Held::whole(key, bytes));
        }
        state.owed = true;
    }

    /// Whether the peer decodes `type_name` (step 2b).
    fn accepts(&self, type_name: &str) -> bool {
        crate::sync::read(&self.accepted).contains(type_name)
    }

    /// Step 2b: `packet` into the pending lane, if the rules hold by what
    /// can be read without the state lock (else `false`: it goes to the
    /// loop).
    fn try_pending(
        &self,
        packet: &Packet,
        incarnation: u64,
        settled: impl FnOnce() -> bool,
    ) -> bool {
        let (Packet::Message { message, .. } | Packet::Reply { message, .. }) = packet else {
            return false;
        };
        if !self.direct.load(Ordering::SeqCst)
            || self.incarnation.load(Ordering::Acquire) != incarnation
            || crate::fragments::is_large(message)
            || !self.accepts(&message.type_name)
            || !settled()
        {
            return false;
        }
        let Ok(bytes) = wire::encode(packet) else {
            return false;
        };
        let mut pending = crate::sync::lock(&self.pending);
        if pending.bytes + bytes.len() > OUTBOX_PENDING_BYTES_MAX {
            return false;
        }
        pending.bytes += bytes.len();
        pending.packets.push((Key::of(packet), bytes));
        self.pending_len.fetch_add(1, Ordering::SeqCst);
        // Pairs with the fence in `OutboxGuard::drop`: either our caller's
        // next `try_lock` finds the lock free, or its holder sees the lane.
        std::sync::atomic::fence(Ordering::SeqCst);
        true
    }

    /// The state if nobody holds it (a sender's worker never waits).
    /// The lock, if it comes free within `spin` (spinning, never
    /// sleeping).
    fn lock_within(&self, spin: std::time::Duration) -> Option<OutboxGuard<'_>> {
        if let Some(state) = self.try_lock() {
            return Some(state);
        }
        let started = Instant::now();
        loop {
            for _ in 0..64 {
                std::hint::spin_loop();
                if let Some(state) = self.try_lock() {
                    return Some(state);
                }
            }
            if started.elapsed() >= spin {
                return None;
            }
        }
    }

    fn try_lock(&self) -> Option<OutboxGuard<'_>> {
        self.try_lock_raw().map(|state| self.guard(state))
    }

    fn try_lock_raw(&self) -> Option<MutexGuard<'_, OutboxState>> {
        match self.state.try_lock() {
            Ok(state) => Some(state),
            Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// Step 5: allows direct writes to a peer of `incarnation` that decodes
    /// `accepted`, through `stream`.
    pub(crate) fn open(&self, stream: TcpStream, incarnation: u64, accepted: HashSet<String>) {
        let mut state = self.lock();
        state.stream = Some(stream);
        *crate::sync::write(&self.accepted) = accepted.into_iter().collect();
        self.incarnation.store(incarnation, Ordering::Release);
        state.open = true;
        state.mirror();
    }

    /// Step 5: no more direct writes; the second handle is dropped.
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        state.open = false;
        state.stream = None;
        state.mirror();
    }

    /// Steps 2 to 4 for `packet` (a message or a reply; anything else is
    /// refused) to the peer's incarnation `incarnation`, written at once
    /// unless `defer`; `settled` says whether the sender has no unsettled
    /// command, read under the lock.
    pub(crate) fn try_write(
        &self,
        packet: Packet,
        incarnation: u64,
        defer: bool,
        settled: impl FnOnce() -> bool,
    ) -> Direct {
        // Held by another (a worker's append or write, or the loop's): a
        // worker's packet takes the pending lane (step 2b); else a sender
        // waits for the lock at most `OUTBOX_LOCK_SPIN`, then the packet
        // goes to the loop.
        let state = match self.try_lock() {
            Some(state) => Some(state),
            None if defer => {
                if !self.try_pending(&packet, incarnation, settled) {
                    return Direct::Refused(packet);
                }
                // Step 2b: make sure a holder moves it in.
                drop(self.try_lock());
                return Direct::Deferred;
            }
            None => self.lock_within(OUTBOX_LOCK_SPIN),
        };
        let Some(mut state) = state else {
            return Direct::Refused(packet);
        };
        let type_name = match &packet {
            Packet::Message { message, .. } | Packet::Reply { message, .. } => {
                Some(message.type_name.as_str())
            }
            _ => None,
        };
        let Some(full) = self.admits(&state, incarnation, type_name, settled) else {
            return Direct::Refused(packet);
        };
        if state.queued_bytes() == 0 {
            // The no-progress clock starts with the first byte buffered.
            state.last_progress = Instant::now();
        }
        if state.append(&packet).is_err() {
            // Too large for a frame: the loop refuses and counts it.
            return Direct::Refused(packet);
        }
        Self::appended(state, full, defer)
    }

    /// `try_write` for a large message or reply its sender encoded
    /// (`wire::large_packet_head` in front of the message's bytes, made
    /// outside the lock), for the agent of `key`: the parts back if they go
    /// to the loop (the pending lane takes no large packet).
    pub(crate) fn try_write_encoded(
        &self,
        key: Key,
        type_name: &str,
        (head, bytes): (Vec<u8>, Vec<u8>),
        incarnation: u64,
        defer: bool,
        settled: impl FnOnce() -> bool,
    ) -> Result<Direct, (Vec<u8>, Vec<u8>)> {
        let state = if defer {
            self.try_lock()
        } else {
            self.lock_within(OUTBOX_LOCK_SPIN)
        };
        let Some(mut state) = state else {
            return Err((head, bytes));
        };
        let Some(full) = self.admits(&state, incarnation, Some(type_name), settled) else {
            return Err((head, bytes));
        };
        if check_size(head.len() + bytes.len()).is_err() {
            return Err((head, bytes));
        }
        if state.queued_bytes() == 0 {
            state.last_progress = Instant::now();
        }
        state.append_encoded(Held { key, head, bytes });
        Ok(Self::appended(state, full, defer))
    }

    /// Steps 2 and 2c's rules, under the lock, for a message or reply of
    /// `type_name` (`None`: another packet, refused): `None` if it goes to
    /// the loop, else whether the buffer is past its mark.
    fn admits(
        &self,
        state: &OutboxState,
        incarnation: u64,
        type_name: Option<&str>,
        settled: impl FnOnce() -> bool,
    ) -> Option<bool> {
        let full = state.write.len() >= CONNECTION_WRITE_BYTES_HIGH_WATER;
        let refused = !state.open
            || state.held
            // Under the mark with large packets counted, the loop decides:
            // it holds what must wait behind them (fragments.rs).
            || (!full && state.queued_bytes() >= CONNECTION_WRITE_BYTES_HIGH_WATER)
            // Past it by a whole frame (senders that have not looked again
            // yet), so does it: the buffer stays within its bound.
            || state.write.len() >= CONNECTION_WRITE_BYTES_HIGH_WATER + FRAME_BODY_BYTES_MAX
            || self.incarnation.load(Ordering::Acquire) != incarnation
            || !type_name.is_some_and(|name| self.accepts(name))
            || !settled();
        (!refused).then_some(full)
    }

    /// Steps 2c and 3 for a packet just appended: left for the worker's
    /// flush if `defer` (the sender told to wait if the buffer is `full`),
    /// else written at once.
    fn appended(mut state: OutboxGuard<'_>, full: bool, defer: bool) -> Direct {
        state.direct_out += 1;
        if defer {
            let deferred = !std::mem::replace(&mut state.owed, true);
            return match (full, deferred) {
                (true, deferred) => Direct::Full { deferred },
                (false, true) => Direct::Deferred,
                (false, false) => Direct::Appended,
            };
        }
        state.write_now()
    }

    /// Step 2c: whether the buffer (not counting large packets) is past its
    /// high-water mark, so that a sender told to wait goes on waiting.
    pub(crate) fn is_full(&self) -> bool {
        self.lock().write.len() >= CONNECTION_WRITE_BYTES_HIGH_WATER
    }

    /// Step 3: writes a buffer owed a flush.
    pub(crate) fn flush_owed(&self) -> Direct {
        // Held past `OUTBOX_LOCK_SPIN` (the loop in a long write): the
        // loop writes it (`HandOver`).
        let Some(mut state) = self.lock_within(OUTBOX_LOCK_SPIN) else {
            return Direct::HandOver;
        };
        if !std::mem::take(&mut state.owed) {
            return Direct::Sent;
        }
        state.write_now()
    }
}

impl OutboxState {
    /// Keeps step 2b's mirror of `open && !held`.
    pub(crate) fn mirror(&self) {
        self.direct.store(self.open && !self.held, Ordering::SeqCst);
    }

    /// Whether commands are held behind the buffer.
    pub(crate) fn held(&self) -> bool {
        self.held
    }

    /// Whether commands are held behind the buffer (set by the loop;
    /// step 5), mirrored for step 2b.
    pub(crate) fn set_held(&mut self, held: bool) {
        self.held = held;
        self.mirror();
    }

    /// Bytes waiting to leave: the buffer, and the large packets and what
    /// waits behind them (fragments.rs), for the write budget.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.write.len() + self.outgoing.bytes()
    }

    /// Bytes of large packets and of what waits behind them.
    pub(crate) fn large_bytes(&self) -> usize {
        self.outgoing.bytes()
    }

    /// Steps 3 and 4: writes what waits, if the outbox is open, at most
    /// `config::WORKER_WRITE_BYTES_MAX`; `HandOver` if more is left that
    /// the loop must write.
    fn write_now(&mut self) -> Direct {
        if !self.open {
            // The loop took over: it writes the buffer.
            return Direct::Sent;
        }
        let Some(mut stream) = self.stream.take() else {
            return Direct::Sent;
        };
        let result = self.write_to(&mut stream, WORKER_WRITE_BYTES_MAX);
        self.stream = Some(stream);
        match result {
            Ok(false) => Direct::Sent,
            Ok(true) => Direct::HandOver,
            Err(_) => {
                self.open = false;
                self.stream = None;
                Direct::Failed
            }
        }
    }

    /// Appends `packet` (fragments.rs steps 1 to 3): framed into the
    /// buffer, or held behind what it must not overtake, or made a stream
    /// of fragments if it is larger than `FRAGMENT_BYTES`. A packet larger
    /// than `PACKET_BYTES_MAX` is refused, and the error says why.
    pub(crate) fn append(&mut self, packet: &Packet) -> Result<(), String> {
        let key = Key::of(packet);
        let large = match packet {
            Packet::Message { message, .. } | Packet::Reply { message, .. } => {
                crate::fragments::is_large(message)
            }
            _ => false,
        };
        if large || self.outgoing.must_wait(key) {
            // Encoded apart: it waits, or leaves in fragments (one copy).
            let bytes = wire::encode(packet).map_err(|e| e.to_string())?;
            check_size(bytes.len())?;
            self.count(bytes.len());
            self.release(Held::whole(key, bytes));
            return Ok(());
        }
        let at = frame::begin(KIND_PACKET, &mut self.write);
        let encoded = wire::encode_into(packet, &mut self.write);
        let length = self.write.len() - at - frame::HEADER_BYTES;
        if let Err(error) = encoded {
            self.write.truncate(at);
            return Err(error.to_string());
        }
        if let Err(error) = check_size(length) {
            self.write.truncate(at);
            return Err(error);
        }
        self.count(length);
        if length > FRAGMENT_BYTES {
            let bytes = self.write.split_off(at + frame::HEADER_BYTES);
            self.write.truncate(at);
            self.outgoing.start(Held::whole(key, bytes));
        } else {
            frame::finish(at, &mut self.write);
        }
        Ok(())
    }

    /// Appends a packet its sender encoded (from the pending lane, or a
    /// large message or reply in two parts), as `append` would.
    pub(crate) fn append_encoded(&mut self, held: Held) {
        self.count(held.len());
        self.release(held);
    }

    /// A packet counted out.
    fn count(&mut self, length: usize) {
        self.packets_out += 1;
        self.bytes_out += length as u64;
    }

    /// An encoded packet that waited goes through the rules again
    /// (fragments.rs step 5).
    fn release(&mut self, held: Held) {
        if self.outgoing.must_wait(held.key) {
            self.outgoing.hold(held);
        } else if held.len() > FRAGMENT_BYTES {
            self.outgoing.start(held);
        } else {
            let at = frame::begin(KIND_PACKET, &mut self.write);
            self.write.extend_from_slice(&held.head);
            self.write.extend_from_slice(&held.bytes);
            frame::finish(at, &mut self.write);
        }
    }

    /// Fragments.rs step 4: tops the buffer up from the streams.
    fn refill(&mut self) {
        while self.write.len() < FRAGMENT_REFILL_BYTES {
            let Some(released) = self.outgoing.next_fragment(&mut self.write) else {
                return;
            };
            for held in released {
                self.release(held);
            }
        }
    }

    /// Writes what waits to `socket` until all is written, the socket
    /// would block, or `budget` bytes went out; `Ok(true)` if it stopped
    /// for the budget with more to write.
    pub(crate) fn write_to(&mut self, socket: &mut impl Write, budget: usize) -> io::Result<bool> {
        // Whoever writes takes what senders left for their workers' flush
        // (a remainder is the loop's, on the next writable edge), so the
        // next sender's frame is owed a flush again.
        self.owed = false;
        let mut written = 0;
        if let Some(tls) = &self.tls {
            // What the session holds goes first (tls.rs step 4), even when
            // the buffer is empty.
            match tls.write_held(socket) {
                Ok((_, n)) => written += n,
                Err(error) => return Err(error),
            }
        }
        let result = loop {
            self.refill();
            if self.write.is_empty() {
                break Ok(false);
            }
            if written >= budget {
                break Ok(true);
            }
            let wrote = match &self.tls {
                None => socket.write(&self.write),
                Some(tls) => tls.write(socket, &self.write),
            };
            match wrote {
                Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    written += n;
                    self.write.drain(..n);
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break Ok(false),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => break Err(error),
            }
        };
        let now = Instant::now();
        if written > 0 {
            self.last_write = now;
        }
        if written > 0 || self.queued_bytes() == 0 {
            self.last_progress = now;
        }
        result
    }
}

/// A packet of `length` bytes may travel, or the error says why.
fn check_size(length: usize) -> Result<(), String> {
    if length > PACKET_BYTES_MAX {
        return Err(format!(
            "{length} bytes exceed the packet limit of {PACKET_BYTES_MAX}"
        ));
    }
    Ok(())
}

/// The outboxes of up connections, by peer node name (step 1).
#[derive(Debug, Default)]
pub(crate) struct Outboxes {
    by_node: RwLock<FastMap<String, Arc<Outbox>>>,
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

    /// Bytes of large packets waiting to leave in fragments, on every
    /// connection (`PeerRoute::holds_sender`).
    pub(crate) fn large_bytes(&self) -> usize {
        crate::sync::read(&self.by_node)
            .values()
            .map(|outbox| outbox.lock().large_bytes())
            .sum()
    }

    /// `outbox` no longer serves `node` (another may already).
    pub(crate) fn remove(&self, node: &str, outbox: &Arc<Outbox>) {
        let mut by_node = crate::sync::write(&self.by_node);
        if by_node.get(node).is_some_and(|o| Arc::ptr_eq(o, outbox)) {
            by_node.remove(node);
        }
    }
}

#[cfg(test)]
mod tests {
    //! The interleaving rules of fragments.rs, on a buffer and a sink.

    use super::*;
    use crate::fragments::Incoming;
    use crate::wire::{Packet, WireMessage, KIND_FRAGMENT};

    fn message(to: u64, n: u8, len: usize) -> Packet {
        Packet::Message {
            to,
            message: WireMessage {
                type_name: "Vec<u8>".into(),
                body: vec![n; len],
            },
        }
    }

    fn named(n: u8) -> Packet {
        Packet::Named {
            name: "x".into(),
            message: WireMessage {
                type_name: "u8".into(),
                body: vec![n],
            },
        }
    }

    /// Writes everything and reads it back as the peer would: the packets
    /// in arrival order, as (target, first body byte, body length).
    fn transfer(state: &mut OutboxState) -> Vec<(String, u8, usize)> {
        let mut sink = Vec::new();
        assert!(!state.write_to(&mut sink, usize::MAX).unwrap());
        let mut incoming = Incoming::default();
        let mut arrived = Vec::new();
        let mut at = 0;
        while let Some((frame, used)) = frame::parse(&sink[at..], 1 << 21).unwrap() {
            at += used;
            let whole = if frame.kind == KIND_FRAGMENT {
                incoming.on_fragment(frame.body).unwrap()
            } else {
                Some(frame.body.to_vec())
            };
            if let Some(bytes) = whole {
                match wire::decode_large_packet(&bytes).unwrap() {
                    Packet::Message { to, message } => {
                        arrived.push((to.to_string(), message.body[0], message.body.len()))
                    }
                    Packet::Named { name, message } => {
                        arrived.push((name, message.body[0], message.body.len()))
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        assert_eq!(at, sink.len(), "whole frames only");
        arrived
    }

    /// A large packet appended as a head and its message's bytes (as a
    /// sender encodes one, `wire::large_packet_head`) arrives as the same
    /// packet, its fragments cut across the two parts.
    #[test]
    fn a_large_packet_in_two_parts_arrives_whole() {
        let outbox = Outbox::new(Instant::now(), None);
        let mut state = outbox.lock();
        for len in [FRAGMENT_BYTES + 1, 3 * FRAGMENT_BYTES - 2] {
            let Packet::Message { to, message } = message(1, 7, len) else {
                unreachable!()
            };
            let head = wire::large_packet_head(to, None, &message).unwrap();
            state.append_encoded(Held {
                key: Key::Agent(to),
                head,
                bytes: message.body,
            });
        }
        state.append(&message(1, 8, 10)).unwrap();
        assert_eq!(
            transfer(&mut state),
            [
                ("1".to_owned(), 7, FRAGMENT_BYTES + 1),
                ("1".to_owned(), 7, 3 * FRAGMENT_BYTES - 2),
                ("1".to_owned(), 8, 10)
            ]
        );
    }

    #[test]
    fn a_large_message_interleaves_with_other_agents_and_keeps_its_own_pairs_order() {
        let outbox = Outbox::new(Instant::now(), None);
        let mut state = outbox.lock();
        let big = 5 * FRAGMENT_BYTES + 123;
        state.append(&message(1, 1, big)).unwrap();
        state.append(&message(1, 2, 10)).unwrap(); // behind the large one
        state.append(&message(2, 3, 10)).unwrap(); // another agent: not
        state.append(&message(2, 4, big)).unwrap(); // a second stream
        state.append(&message(2, 5, 10)).unwrap(); // behind that one
        state.append(&named(6)).unwrap(); // a barrier: behind every stream
        state.append(&message(3, 7, 10)).unwrap(); // behind the barrier
        assert!(state.queued_bytes() > 2 * big);
        let arrived = transfer(&mut state);
        let order: Vec<u8> = arrived.iter().map(|a| a.1).collect();
        // Agent 2's small message overtook agent 1's large one.
        assert_eq!(order[0], 3, "{order:?}");
        let at = |n: u8| order.iter().position(|&m| m == n).unwrap();
        assert!(
            at(1) < at(2) && at(4) < at(5),
            "pairs keep order: {order:?}"
        );
        assert!(at(1) < at(6) && at(4) < at(6) && at(6) < at(7), "{order:?}");
        assert_eq!(arrived[at(1)].2, big);
        assert_eq!(arrived[at(4)].2, big);
        assert_eq!(arrived.len(), 7);
        assert_eq!(state.queued_bytes(), 0);
    }

    #[test]
    fn a_small_message_waits_behind_at_most_two_fragments_of_a_large_one() {
        let outbox = Outbox::new(Instant::now(), None);
        let mut state = outbox.lock();
        state.append(&message(1, 1, 40 * FRAGMENT_BYTES)).unwrap();
        // The writer has framed some of it when the small one comes.
        state.refill();
        state.append(&message(2, 2, 10)).unwrap();
        let ahead = state.write.len();
        assert!(ahead <= 2 * (FRAGMENT_BYTES + 64) + 64, "{ahead}");
        let arrived = transfer(&mut state);
        assert_eq!(arrived[0].1, 2);
    }

    /// A worker that finds the lock held leaves its packets in the pending
    /// lane; the holder moves them into the buffer when it lets go, ahead
    /// of what the same sender sends next.
    #[test]
    fn packets_left_in_the_pending_lane_reach_the_buffer_in_order_when_the_holder_lets_go() {
        let outbox = Outbox::new(Instant::now(), None);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let accepted: HashSet<String> = ["Vec<u8>".to_owned()].into_iter().collect();
        outbox.open(stream, 7, accepted);
        let holder = outbox.lock();
        for n in 1..=2 {
            let result = outbox.try_write(message(1, n, 10), 7, true, || true);
            assert!(matches!(result, Direct::Deferred), "{result:?}");
        }
        // Not for a packet of another incarnation, an unknown type, a
        // large one, or with a command unsettled: those go to the loop.
        assert!(matches!(
            outbox.try_write(message(1, 9, 10), 8, true, || true),
            Direct::Refused(_)
        ));
        assert!(matches!(
            outbox.try_write(message(1, 9, 10), 7, true, || false),
            Direct::Refused(_)
        ));
        assert!(matches!(
            outbox.try_write(named(9), 7, true, || true),
            Direct::Refused(_)
        ));
        assert_eq!(outbox.pending_len.load(Ordering::SeqCst), 2);
        assert_eq!(holder.queued_bytes(), 0);
        drop(holder);
        assert_eq!(outbox.pending_len.load(Ordering::SeqCst), 0);
        let mut state = outbox.lock();
        state.append(&message(1, 3, 10)).unwrap();
        let order: Vec<u8> = transfer(&mut state).iter().map(|a| a.1).collect();
        assert_eq!(order, vec![1, 2, 3]);
    }

    /// Step 2c: past the buffer's mark a sender appends and is told to
    /// wait until it drains; a frame past it, the loop takes its packets;
    /// a large packet leaving in fragments does not make small senders
    /// wait.
    #[test]
    fn a_sender_that_finds_the_buffer_full_waits_until_it_drains_but_not_behind_a_large_packet() {
        let outbox = Outbox::new(Instant::now(), None);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let accepted: HashSet<String> = ["Vec<u8>".to_owned()].into_iter().collect();
        outbox.open(stream, 7, accepted);
        // One large packet in fragments: small ones are not held for it.
        outbox
            .lock()
            .append(&message(2, 0, 2 * CONNECTION_WRITE_BYTES_HIGH_WATER))
            .unwrap();
        assert!(!outbox.is_full());
        let refused = outbox.try_write(message(1, 0, 10), 7, true, || true);
        assert!(matches!(refused, Direct::Refused(_)), "{refused:?}");
        // The large packet gone, small packets, deferred (left in the
        // buffer), past the mark.
        outbox.lock().outgoing = Outgoing::default();
        let mut appended = 0;
        loop {
            match outbox.try_write(message(1, 1, FRAGMENT_BYTES / 2), 7, true, || true) {
                Direct::Deferred | Direct::Appended => appended += 1,
                Direct::Full { deferred: false } => break,
                other => panic!("{other:?} after {appended}"),
            }
        }
        assert!(appended * FRAGMENT_BYTES / 2 >= CONNECTION_WRITE_BYTES_HIGH_WATER);
        assert!(outbox.is_full());
        // Senders that have not waited yet append up to a frame past the
        // mark; then the loop takes their packets.
        let mut past = 0;
        let refused = loop {
            match outbox.try_write(message(1, 1, FRAGMENT_BYTES / 2), 7, true, || true) {
                Direct::Full { .. } => past += 1,
                other => break other,
            }
        };
        assert!(matches!(refused, Direct::Refused(_)), "{refused:?}");
        let len = outbox.lock().write.len();
        assert!(
            len >= CONNECTION_WRITE_BYTES_HIGH_WATER + FRAME_BODY_BYTES_MAX,
            "{len} after {past}"
        );
        assert!(len < CONNECTION_WRITE_BYTES_HIGH_WATER + 2 * FRAME_BODY_BYTES_MAX);
        // Written out (as the loop would): the sender goes on.
        outbox.lock().write.clear();
        assert!(!outbox.is_full());
        let sent = outbox.try_write(message(1, 2, 10), 7, true, || true);
        assert!(
            matches!(sent, Direct::Deferred | Direct::Appended),
            "{sent:?}"
        );
    }

    /// While commands are held behind the buffer, nothing takes the lane.
    #[test]
    fn the_pending_lane_is_closed_while_commands_are_held() {
        let outbox = Outbox::new(Instant::now(), None);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let accepted: HashSet<String> = ["Vec<u8>".to_owned()].into_iter().collect();
        outbox.open(stream, 7, accepted);
        let mut holder = outbox.lock();
        holder.set_held(true);
        assert!(matches!(
            outbox.try_write(message(1, 1, 10), 7, true, || true),
            Direct::Refused(_)
        ));
        holder.set_held(false);
        assert!(matches!(
            outbox.try_write(message(1, 1, 10), 7, true, || true),
            Direct::Deferred
        ));
    }

    #[test]
    fn a_packet_over_the_limit_is_refused_and_leaves_nothing_behind() {
        let outbox = Outbox::new(Instant::now(), None);
        let mut state = outbox.lock();
        let error = state
            .append(&message(1, 1, PACKET_BYTES_MAX + 1))
            .unwrap_err();
        assert!(error.contains("packet limit"), "{error}");
        assert_eq!(state.queued_bytes(), 0);
    }

    #[test]
    fn fragments_past_the_receivers_limits_are_refused() {
        let mut incoming = Incoming::default();
        assert!(incoming.on_fragment(&[1, 2]).is_err());
        let mut bad_flag = 0u64.to_le_bytes().to_vec();
        bad_flag.push(7);
        assert!(incoming.on_fragment(&bad_flag).is_err());
        let fragment = |id: u64, last: u8, total: u64, bytes: &[u8]| {
            let mut body = id.to_le_bytes().to_vec();
            body.push(last);
            body.extend_from_slice(&total.to_le_bytes());
            body.extend_from_slice(bytes);
            body
        };
        // Longer than the packet limit, or past its own length.
        assert!(incoming
            .on_fragment(&fragment(1, 0, PACKET_BYTES_MAX as u64 + 1, &[9]))
            .is_err());
        let mut cut = Incoming::default();
        assert_eq!(cut.on_fragment(&fragment(1, 0, 2, &[9])), Ok(None));
        assert!(cut.on_fragment(&fragment(1, 0, 2, &[9, 9])).is_err());
        let mut short = Incoming::default();
        assert!(short.on_fragment(&fragment(1, 1, 2, &[9])).is_err());
        // Too many at once.
        for id in 0..crate::config::STREAMS_IN_FLIGHT_MAX as u64 {
            assert_eq!(incoming.on_fragment(&fragment(id, 0, 2, &[9])), Ok(None));
        }
        assert!(incoming
            .on_fragment(&fragment(u64::MAX, 0, 2, &[9]))
            .is_err());
        // A whole one.
        let mut whole = Incoming::default();
        assert_eq!(whole.on_fragment(&fragment(3, 0, 2, &[1])), Ok(None));
        assert_eq!(
            whole.on_fragment(&fragment(3, 1, 2, &[2])),
            Ok(Some(vec![1, 2]))
        );
    }
}
