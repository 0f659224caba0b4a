//! One connection's life (the parent module's steps 1 to 4 and 6): slots
//! for accepted sockets, reading and framing, the handshake (hello, the
//! dialer's proof, the tie-break, the acceptor's proof), the write budget
//! (held commands, paused reads) and closing.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use erlangen_portmap::listener::Accepted;
use mio::net::TcpStream;
use mio::{Interest, Token};

use crate::config::{
    CHALLENGE_BYTES, CONNECTIONS_MAX, CONNECTION_WRITE_BYTES_HIGH_WATER,
    CONNECTION_WRITE_BYTES_LOW_WATER, FRAME_BODY_BYTES_MAX, HANDSHAKES_MAX,
    HANDSHAKES_NONLOCAL_SHARE_PERCENT, HANDSHAKES_PER_ADDRESS_MAX, HANDSHAKE_BODY_BYTES_MAX,
    LOOP_WRITE_BYTES_PER_TURN_MAX, PROTOCOL_VERSION, READ_BYTES_PER_TURN_MAX,
};
use crate::fragments::Incoming;
use crate::handshake::Role;
use crate::id::NodeName;
use crate::outbox::Outbox;
use crate::wire::{
    Auth, Hello, Packet, KIND_AUTH, KIND_FRAGMENT, KIND_HELLO, KIND_PACKET, KIND_TICK,
};
use crate::{frame, handshake, pid, wire};

use super::{transcript, Command, Connection, EventLoop, Phase, CLOSED_BY_PEER};

impl EventLoop {
    /// Takes `stream` into the connection table, or says why not: the
    /// table is full, or (for an accepted connection from `from`) the
    /// handshake pool's rules refuse it (`refusal_for`).
    pub(super) fn add_connection(
        &mut self,
        mut stream: TcpStream,
        role: Role,
        peer: Option<String>,
        from: Option<SocketAddr>,
    ) -> Result<Token, &'static str> {
        if self.connections.len() >= CONNECTIONS_MAX {
            return Err("the connection limit is reached");
        }
        if let Some(why) = from.and_then(|from| self.refusal_for(from.ip())) {
            return Err(why);
        }
        let tls = match &self.shared.tls {
            None => None,
            Some(tls) => Some(Arc::new(
                match role {
                    Role::Dialer => {
                        let peer = peer.as_deref().unwrap_or_default();
                        let host = peer.parse::<NodeName>().map(|name| name.host().to_owned());
                        tls.dial(&host.unwrap_or_default())
                    }
                    Role::Acceptor => tls.accept(),
                }
                .map_err(|why| {
                    tracing::warn!(why, "erlangen: no TLS session");
                    "no TLS session"
                })?,
            )),
        };
        let token = Token(self.next_token);
        self.next_token += 1;
        if self
            .poll
            .registry()
            .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
            .is_err()
        {
            return Err("cannot register the connection");
        }
        let now = Instant::now();
        let mut connection = Connection {
            stream,
            tls: tls.clone(),
            role,
            phase: if role == Role::Dialer {
                Phase::Connecting
            } else {
                Phase::Handshake
            },
            peer,
            from: from.map(|from| from.ip()),
            peer_incarnation: 0,
            hello_mine: Vec::new(),
            hello_theirs: None,
            proved: false,
            peer_types: HashMap::new(),
            read: Vec::new(),
            incoming: Incoming::default(),
            outbox: Arc::new(Outbox::new(now, tls)),
            held: VecDeque::new(),
            paused: false,
            packets_in: 0,
            bytes_in: 0,
            started: now,
            last_read: now,
            probe: super::probe::Probe::default(),
        };
        if role == Role::Acceptor {
            self.send_hello(&mut connection);
        }
        self.connections.insert(token, connection);
        Ok(token)
    }

    /// Why an accepted connection from `ip` gets no slot, if it gets none
    /// (PROTOCOL.md "Slots"): accepted connections still in their
    /// handshake hold at most `HANDSHAKES_MAX` slots, those from addresses
    /// other than 127.0.0.1 and ::1 at most their share of those, and one
    /// such address at most `HANDSHAKES_PER_ADDRESS_MAX`. Established
    /// peers and the node's own dials are never displaced.
    pub(super) fn refusal_for(&self, ip: std::net::IpAddr) -> Option<&'static str> {
        let trusted = erlangen_portmap::server::is_trusted(ip);
        let mut handshakes = 0;
        let mut nonlocal = 0;
        let mut same_address = 0;
        for connection in self.connections.values() {
            let Some(from) = connection.from else {
                continue;
            };
            if connection.phase == Phase::Up {
                continue;
            }
            handshakes += 1;
            if !erlangen_portmap::server::is_trusted(from) {
                nonlocal += 1;
                if from == ip {
                    same_address += 1;
                }
            }
        }
        if handshakes >= HANDSHAKES_MAX {
            return Some("too many handshakes");
        }
        if trusted {
            return None;
        }
        if nonlocal >= HANDSHAKES_MAX * HANDSHAKES_NONLOCAL_SHARE_PERCENT / 100 {
            return Some("non-loopback addresses hold their share of the handshakes");
        }
        if same_address >= HANDSHAKES_PER_ADDRESS_MAX {
            return Some("this address holds as many handshakes as one may");
        }
        None
    }

    pub(super) fn send_hello(&self, connection: &mut Connection) {
        let challenge = handshake::challenge().unwrap_or([0; CHALLENGE_BYTES]);
        let hello = Hello {
            version: PROTOCOL_VERSION,
            node: self.shared.name.clone(),
            incarnation: self.shared.incarnation,
            challenge,
            types: self.shared.types.announce(),
        };
        let body = wire::encode(&hello).expect("a hello encodes");
        frame::encode(KIND_HELLO, &body, &mut connection.outbox.lock().write);
        connection.hello_mine = body;
    }

    /// Accepts every pending connection (the port mapper's listener.rs:
    /// it keeps accepting after descriptors ran out, and says when to try
    /// again if it cannot).
    pub(super) fn accept_all(&mut self) {
        let mut accepted = Vec::new();
        let mut refused = 0u64;
        let outcome = self.listener.accept_all(
            &mut |stream, peer| accepted.push((stream, peer)),
            &mut |stream, _peer| {
                refused += 1;
                drop(stream);
            },
            &mut |error| tracing::warn!(%error, "erlangen: accept failed"),
        );
        if refused > 0 {
            if let Some(held) = self.log.allow("out-of-descriptors") {
                tracing::warn!(
                    refused,
                    held,
                    "erlangen: out of descriptors; refused connections"
                );
            }
        }
        for (stream, peer) in accepted {
            crate::socket_options::tune(&stream, peer);
            match self.add_connection(stream, Role::Acceptor, None, Some(peer)) {
                Ok(token) => self.flush(token),
                Err(why) => {
                    if let Some(held) = self.log.allow("connection-refused") {
                        tracing::warn!(%peer, why, held, "erlangen: refused a connection");
                    }
                }
            }
        }
        self.accept_retry_at = match outcome {
            Accepted::Drained => None,
            Accepted::Exhausted => Some(Instant::now() + crate::config::ACCEPT_RETRY),
        };
    }

    pub(super) fn on_connection_event(&mut self, token: Token) {
        let Some(connection) = self.connections.get_mut(&token) else {
            return;
        };
        if connection.phase == Phase::Connecting {
            match connection.stream.peer_addr() {
                Ok(peer) => {
                    crate::socket_options::tune(&connection.stream, peer);
                    connection.phase = Phase::Handshake;
                    let mut connection = self.connections.remove(&token).expect("present");
                    self.send_hello(&mut connection);
                    self.connections.insert(token, connection);
                }
                Err(error) if error.kind() == io::ErrorKind::NotConnected => {
                    if let Ok(Some(error)) | Err(error) = connection.stream.take_error() {
                        self.close(token, &format!("connect failed: {error}"));
                    }
                    return;
                }
                Err(error) => {
                    self.close(token, &format!("connect failed: {error}"));
                    return;
                }
            }
        }
        if let Err(why) = self.read_from(token) {
            self.close(token, &why);
            return;
        }
        self.flush(token);
    }

    /// Reads what is there (up to a turn's worth) and handles every
    /// complete frame.
    pub(super) fn read_from(&mut self, token: Token) -> Result<(), String> {
        let mut total = 0usize;
        loop {
            let chunk = &mut self.read_scratch;
            let connection = self.connections.get_mut(&token).ok_or("gone")?;
            if connection.paused {
                // The write budget is spent: leave the rest in the socket
                // (flush resumes reading once the buffer drains).
                return Ok(());
            }
            let read = match &connection.tls {
                None => connection.stream.read(chunk),
                Some(tls) => tls.read(&mut connection.stream, chunk),
            };
            match read {
                Ok(0) => {
                    self.handle_frames(token)?;
                    return Err(CLOSED_BY_PEER.to_owned());
                }
                Ok(n) => {
                    connection.read.extend_from_slice(&chunk[..n]);
                    connection.last_read = Instant::now();
                    total += n;
                    connection.bytes_in += n as u64;
                    if total >= READ_BYTES_PER_TURN_MAX {
                        // Give other connections, commands and heartbeats
                        // a turn; readiness is edge-triggered, so come back
                        // without waiting for another event.
                        if !self.unread.contains(&token) {
                            self.unread.push(token);
                        }
                        return self.handle_frames(token);
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    return self.handle_frames(token);
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) if error.kind() == io::ErrorKind::ConnectionReset => {
                    return Err(CLOSED_BY_PEER.to_owned());
                }
                Err(error) => return Err(format!("read failed: {error}")),
            }
        }
    }

    /// Handles every complete frame in the read buffer, then drops them
    /// from it at once (one move of the partial tail, not one per frame).
    pub(super) fn handle_frames(&mut self, token: Token) -> Result<(), String> {
        let mut buffer = match self.connections.get_mut(&token) {
            Some(connection) => std::mem::take(&mut connection.read),
            None => return Err("gone".to_owned()),
        };
        let mut offset = 0;
        let result = loop {
            let Some(connection) = self.connections.get_mut(&token) else {
                break Err("gone".to_owned());
            };
            if connection.outbox.lock().write.len() >= CONNECTION_WRITE_BYTES_HIGH_WATER {
                // Every frame may add a reply: stop here until the peer
                // reads what it was sent (the rest stays buffered).
                connection.paused = true;
                break Ok(());
            }
            let max = if connection.phase == Phase::Up {
                FRAME_BODY_BYTES_MAX
            } else {
                HANDSHAKE_BODY_BYTES_MAX
            };
            let (kind, range) = match frame::parse(&buffer[offset..], max) {
                Ok(Some((frame, used))) => {
                    let start = offset + used - frame.body.len();
                    (frame.kind, start..offset + used)
                }
                Ok(None) => break Ok(()),
                Err(error) => break Err(error.to_string()),
            };
            offset = range.end;
            if let Err(why) = self.handle_frame(token, kind, &buffer[range]) {
                break Err(why);
            }
        };
        buffer.drain(..offset);
        if let Some(connection) = self.connections.get_mut(&token) {
            buffer.extend_from_slice(&connection.read);
            connection.read = buffer;
        }
        result
    }

    pub(super) fn handle_frame(
        &mut self,
        token: Token,
        kind: u8,
        body: &[u8],
    ) -> Result<(), String> {
        let phase_up = self
            .connections
            .get(&token)
            .is_some_and(|c| c.phase == Phase::Up);
        match (kind, phase_up) {
            (KIND_HELLO, false) => self.on_hello(token, body),
            (KIND_AUTH, false) => self.on_auth(token, body),
            (KIND_TICK, true) => self.on_tick(token, body),
            (KIND_PACKET, true) => {
                if let Some(connection) = self.connections.get_mut(&token) {
                    connection.packets_in += 1;
                }
                // The common case, read in place.
                if let Some(view) = wire::MessageView::read(body) {
                    let view = view.map_err(|e| format!("bad packet: {e}"))?;
                    return self.on_message_view(token, view);
                }
                let packet: Packet = {
                    let _context = pid::enter(&*self.shared);
                    wire::decode(body).map_err(|e| format!("bad packet: {e}"))?
                };
                // Behind a large packet of its agent still decoding, it
                // waits (large.rs).
                let key = crate::fragments::Key::of(&packet);
                match self.large_must_wait(key, super::large::Waiting::Packet(token, packet)) {
                    Some(super::large::Waiting::Packet(token, packet)) => {
                        self.on_packet(token, packet)
                    }
                    _ => Ok(()),
                }
            }
            (KIND_FRAGMENT, true) => {
                let whole = match self.connections.get_mut(&token) {
                    Some(connection) => connection.incoming.on_fragment(body)?,
                    None => return Ok(()),
                };
                let Some(whole) = whole else {
                    return Ok(());
                };
                if let Some(connection) = self.connections.get_mut(&token) {
                    connection.packets_in += 1;
                }
                self.on_large_packet(token, whole)
            }
            (kind, _) => Err(format!("unexpected frame kind {kind}")),
        }
    }

    /// Step 2: the peer's `Hello`. Nothing here changes the node's state
    /// beyond this connection: the peer is not authenticated yet.
    pub(super) fn on_hello(&mut self, token: Token, body: &[u8]) -> Result<(), String> {
        let hello: Hello = wire::decode(body).map_err(|e| format!("bad hello: {e}"))?;
        if hello.version != PROTOCOL_VERSION {
            return Err(format!(
                "protocol version {} (we speak {PROTOCOL_VERSION})",
                hello.version
            ));
        }
        NodeName::new(hello.node.host(), hello.node.name())
            .map_err(|e| format!("bad node name in hello: {e}"))?;
        let peer = hello.node.to_string();
        let connection = self.connections.get_mut(&token).ok_or("gone")?;
        if connection.hello_theirs.is_some() {
            return Err("a second hello".to_owned());
        }
        if peer == self.shared.name.to_string() {
            return Err("a node cannot connect to itself".to_owned());
        }
        match (&connection.peer, connection.role) {
            (Some(dialled), Role::Dialer) if *dialled != peer => {
                return Err(format!("dialled {dialled} but {peer} answered"));
            }
            _ => {}
        }
        connection.peer = Some(peer);
        connection.peer_incarnation = hello.incarnation;
        connection.peer_types = hello.types.into_iter().collect();
        connection.hello_theirs = Some(body.to_vec());
        // The dialer proves first; the acceptor proves only once the
        // dialer's proof verified and the pair is settled (`on_auth`).
        if connection.role == Role::Dialer {
            self.send_auth(token);
        }
        Ok(())
    }

    /// Appends our proof over the transcript to `token`'s write buffer.
    pub(super) fn send_auth(&mut self, token: Token) {
        let Some(connection) = self.connections.get_mut(&token) else {
            return;
        };
        let (dialer, acceptor) = transcript(connection);
        let proof = handshake::prove(&self.shared.cookie, connection.role, dialer, acceptor);
        let auth = wire::encode(&Auth { proof }).expect("an auth encodes");
        frame::encode(KIND_AUTH, &auth, &mut connection.outbox.lock().write);
        connection.proved = true;
    }

    /// Step 3's tie-break, on the acceptor, once the dialer proved the
    /// cookie: one connection per pair of nodes (module docs). `Err` closes
    /// the new connection; its peer redials if it still needs us.
    pub(super) fn settle_pair(&mut self, peer: &str, incarnation: u64) -> Result<(), String> {
        if let Some(&old) = self.up.get(peer) {
            let old_incarnation = self.connections.get(&old).map_or(0, |c| c.peer_incarnation);
            // The peer may have closed the old one while we could not see
            // it yet (we were stopped): look before refusing.
            if let Err(why) = self.read_from(old) {
                self.close(old, &why);
            } else if old_incarnation == incarnation {
                return Err(format!("{peer} is already connected"));
            }
        }
        if let Some(&old) = self.up.get(peer) {
            self.close(old, "the peer restarted (new incarnation)");
        }
        if let Some(&dialled) = self.dialing.get(peer) {
            if self.shared.name.to_string().as_str() < peer {
                return Err(format!("{peer} and we dialled each other; ours wins"));
            }
            // Theirs wins: drop ours, which carried nothing yet (the peer
            // proves on a connection it accepted only after this point).
            // What waits for the peer goes out on the new connection.
            self.dialing.remove(peer);
            if let Some(mut connection) = self.connections.remove(&dialled) {
                let _ = self.poll.registry().deregister(&mut connection.stream);
            }
        }
        Ok(())
    }

    /// Step 3: the peer's proof. Only from here on may the connection
    /// change anything beyond itself.
    pub(super) fn on_auth(&mut self, token: Token, body: &[u8]) -> Result<(), String> {
        let auth: Auth = wire::decode(body).map_err(|e| format!("bad auth: {e}"))?;
        let connection = self.connections.get_mut(&token).ok_or("gone")?;
        if connection.hello_theirs.is_none() {
            return Err("auth before hello".to_owned());
        }
        let their_role = match connection.role {
            Role::Dialer => Role::Acceptor,
            Role::Acceptor => Role::Dialer,
        };
        let (dialer, acceptor) = transcript(connection);
        if !handshake::verify(
            &self.shared.cookie,
            their_role,
            dialer,
            acceptor,
            &auth.proof,
        ) {
            let peer = connection.peer.clone().unwrap_or_default();
            if let Some(held) = self.log.allow("bad-proof") {
                tracing::warn!(%peer, held, "erlangen: refused a handshake: wrong cookie or replayed proof");
            }
            return Err(
                "handshake refused: the peer's proof is wrong (different cookies?)".to_owned(),
            );
        }
        let role = connection.role;
        let incarnation = connection.peer_incarnation;
        let peer = connection.peer.clone().expect("named at hello");
        if role == Role::Acceptor {
            self.settle_pair(&peer, incarnation)?;
            self.send_auth(token);
        }
        let connection = self.connections.get_mut(&token).ok_or("gone")?;
        connection.phase = Phase::Up;
        if let Some(&old) = self.up.get(&peer) {
            if old != token {
                self.close(old, "replaced by a newer connection");
            }
        }
        self.dialing.remove(&peer);
        self.redials.remove(&peer);
        self.up.insert(peer.clone(), token);
        {
            let mut stats = crate::sync::lock(&self.shared.stats);
            let entry = stats.entry(peer.clone()).or_default();
            entry.node = peer.clone();
            entry.connected = true;
        }
        tracing::info!(node = %self.shared.name, %peer, "erlangen: connected");
        // Step 4: what waited goes out in order, as the write budget
        // allows.
        if let Some(waiting) = self.waiting.remove(&peer) {
            if let Some(connection) = self.connections.get_mut(&token) {
                connection.held.extend(waiting);
            }
            self.release_held(token);
        }
        self.open_outbox(token, &peer);
        self.came_up(token, &peer);
        Ok(())
    }

    /// Lets senders write to `peer` directly (outbox.rs step 5), once what
    /// waited for it is in the buffer or held behind it; without a second
    /// handle on the socket, everything goes through the loop.
    fn open_outbox(&mut self, token: Token, peer: &str) {
        let Some(connection) = self.connections.get(&token) else {
            return;
        };
        let stream = {
            use std::os::fd::{AsFd, FromRawFd, IntoRawFd};
            match connection.stream.as_fd().try_clone_to_owned() {
                // SAFETY: the descriptor was just duplicated from a
                // connected TCP socket and is owned by nobody else.
                Ok(fd) => unsafe { std::net::TcpStream::from_raw_fd(fd.into_raw_fd()) },
                Err(error) => {
                    tracing::debug!(%error, "erlangen: no direct writes to a peer (dup failed)");
                    return;
                }
            }
        };
        let types = &self.shared.types;
        let accepted = connection
            .peer_types
            .iter()
            .filter(|(name, print)| types.fingerprint(name) == Some(**print))
            .map(|(name, _)| name.clone())
            .collect();
        connection
            .outbox
            .open(stream, connection.peer_incarnation, accepted);
        self.shared.outboxes.insert(peer, connection.outbox.clone());
    }

    /// Appends a command's packet to `token`'s write buffer, or holds it
    /// behind the ones already held while the buffer is over its
    /// high-water mark.
    pub(super) fn send_or_hold(&mut self, token: Token, command: Command) {
        let Some(connection) = self.connections.get_mut(&token) else {
            return;
        };
        let mut out = connection.outbox.lock();
        if !connection.held.is_empty() || out.write.len() >= CONNECTION_WRITE_BYTES_HIGH_WATER {
            // Senders' direct writes wait behind it (outbox.rs step 5).
            out.set_held(true);
            drop(out);
            connection.held.push_back(command);
        } else {
            drop(out);
            self.send_on(token, command);
        }
    }

    /// Moves held commands into the write buffer while it is under its
    /// high-water mark.
    pub(super) fn release_held(&mut self, token: Token) {
        loop {
            let Some(connection) = self.connections.get_mut(&token) else {
                return;
            };
            {
                let mut out = connection.outbox.lock();
                out.set_held(!connection.held.is_empty());
                if out.held() && out.write.len() >= CONNECTION_WRITE_BYTES_HIGH_WATER {
                    return;
                }
            }
            let Some(command) = connection.held.pop_front() else {
                return;
            };
            self.send_on(token, command);
        }
    }

    /// Appends `packet` to `token`'s write buffer behind its header,
    /// encoded in place, if its body is within the frame limit the peer
    /// enforces on reads; else nothing is appended, and the error says why.
    pub(super) fn write_packet(&mut self, token: Token, packet: &Packet) -> Result<(), String> {
        let Some(connection) = self.connections.get_mut(&token) else {
            return Err("the connection is gone".to_owned());
        };
        let _context = pid::enter(&*self.shared);
        connection.outbox.lock().append(packet)
    }

    /// Writes what the buffer holds until the socket would block.
    pub(super) fn flush(&mut self, token: Token) {
        let Some(connection) = self.connections.get_mut(&token) else {
            return;
        };
        if connection.phase == Phase::Connecting {
            return;
        }
        let (result, left) = {
            let mut out = connection.outbox.lock();
            let result = out
                .write_to(&mut connection.stream, LOOP_WRITE_BYTES_PER_TURN_MAX)
                .map_err(|error| format!("write failed: {error}"));
            if out.write.capacity() > 64 * 1024 && out.write.len() < 16 * 1024 {
                out.write.shrink_to(16 * 1024);
            }
            (result, out.write.len())
        };
        if result == Ok(true) && !self.unread.contains(&token) {
            // Stopped for the turn's budget: the rest next turn, after the
            // other connections had theirs.
            self.unread.push(token);
        }
        if let Err(why) = result {
            self.close(token, &why);
        } else if left < CONNECTION_WRITE_BYTES_LOW_WATER {
            self.release_held(token);
            if let Some(connection) = self.connections.get_mut(&token) {
                let left = connection.outbox.lock().write.len();
                if connection.paused && left < CONNECTION_WRITE_BYTES_LOW_WATER {
                    // Read again (readiness is edge-triggered: what waits
                    // in the socket raises no new event).
                    connection.paused = false;
                    if !self.unread.contains(&token) {
                        self.unread.push(token);
                    }
                }
                if left > 0 && !self.dirty.contains(&token) {
                    self.dirty.push(token);
                }
            }
        }
        self.count_backlog_bytes();
    }

    /// Publishes the bytes waiting in every connection's buffer
    /// (backpressure on every sender; large messages waiting in fragments
    /// hold only their senders, `PeerRoute::holds_sender`).
    fn count_backlog_bytes(&self) {
        let buffered = self
            .connections
            .values()
            .map(|c| c.outbox.lock().write.len())
            .sum();
        self.shared.backlog_bytes.store(buffered, Ordering::Relaxed);
    }

    /// Closes a connection; if it was up, step 6; if it was our dial,
    /// `dial_failed`. An accepted connection that never proved itself
    /// changes nothing else.
    pub(super) fn close(&mut self, token: Token, why: &str) {
        self.publish_stats();
        let Some(mut connection) = self.connections.remove(&token) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut connection.stream);
        connection.outbox.close();
        if let Some(peer) = &connection.peer {
            self.shared.outboxes.remove(peer, &connection.outbox);
        }
        // What it held is gone with it (a large message's fragments
        // included): senders waiting on the backlog go on.
        self.count_backlog_bytes();
        let Some(peer) = connection.peer else {
            tracing::debug!(why, "erlangen: closed an unnamed connection");
            return;
        };
        let was_up = self.up.get(&peer) == Some(&token);
        let was_dialing = self.dialing.get(&peer) == Some(&token);
        if was_up {
            self.up.remove(&peer);
            tracing::info!(node = %self.shared.name, %peer, why, "erlangen: disconnected");
            let mut stats = crate::sync::lock(&self.shared.stats);
            if let Some(entry) = stats.get_mut(&peer) {
                entry.connected = false;
                entry.errors += 1;
            }
            drop(stats);
            self.depart(peer.clone());
            self.lose(&peer, why);
        } else if was_dialing {
            self.dialing.remove(&peer);
            let why = if connection.proved && why == CLOSED_BY_PEER {
                "the peer closed the handshake after our proof: \
                 the cookies differ, or it kept another connection"
            } else {
                why
            };
            tracing::warn!(%peer, why, "erlangen: a dial failed");
            self.dial_failed(&peer, why);
        } else if let Some(held) = self.log.allow("handshake-closed") {
            tracing::debug!(%peer, why, held, "erlangen: an accepted connection closed before it was up");
        }
    }
}
