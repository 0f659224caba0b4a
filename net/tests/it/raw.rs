//! `RawPeer`: a node written against the wire modules alone, for tests
//! that must say what a real node never would (forged greetings, requests
//! it never reads the answers to, frames at the limit).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use erlangen_net::frame;
use erlangen_net::handshake::{self, Role};
use erlangen_net::wire::{self, Auth, Hello, Packet, KIND_AUTH, KIND_HELLO, KIND_PACKET};

use crate::support::HANG_GUARD;

/// One raw connection to or from a node.
pub(crate) struct RawPeer {
    pub(crate) stream: TcpStream,
    read: Vec<u8>,
    role: Role,
    hello_mine: Vec<u8>,
    hello_theirs: Vec<u8>,
}

/// The types the test nodes announce (test/ping and the built-ins), with
/// fingerprints of 0: a raw peer never sends user messages by type.
fn hello(me: &str, incarnation: u64) -> Hello {
    Hello {
        version: 1,
        node: me.parse().unwrap(),
        incarnation,
        challenge: handshake::challenge().unwrap(),
        types: Vec::new(),
    }
}

impl RawPeer {
    /// Connects to `addr` and greets it as `me`.
    pub(crate) fn dial(addr: SocketAddr, me: &str, incarnation: u64) -> RawPeer {
        let stream = TcpStream::connect(addr).unwrap();
        RawPeer::greet(stream, Role::Dialer, me, incarnation)
    }

    /// Greets a node over an accepted `stream` as `me`.
    pub(crate) fn accepted(stream: TcpStream, me: &str, incarnation: u64) -> RawPeer {
        RawPeer::greet(stream, Role::Acceptor, me, incarnation)
    }

    fn greet(stream: TcpStream, role: Role, me: &str, incarnation: u64) -> RawPeer {
        stream.set_read_timeout(Some(HANG_GUARD)).unwrap();
        let mine = wire::encode(&hello(me, incarnation)).unwrap();
        let mut peer = RawPeer {
            stream,
            read: Vec::new(),
            role,
            hello_mine: mine.clone(),
            hello_theirs: Vec::new(),
        };
        peer.write_frame(KIND_HELLO, &mine);
        peer
    }

    /// Reads the node's greeting.
    pub(crate) fn read_hello(&mut self) {
        let (kind, body) = self.read_frame().expect("the node greets");
        assert_eq!(kind, KIND_HELLO);
        self.hello_theirs = body;
    }

    fn transcript(&self) -> (&[u8], &[u8]) {
        match self.role {
            Role::Dialer => (&self.hello_mine, &self.hello_theirs),
            Role::Acceptor => (&self.hello_theirs, &self.hello_mine),
        }
    }

    /// Sends our proof made with `cookie`.
    pub(crate) fn prove(&mut self, cookie: &[u8]) {
        let (dialer, acceptor) = self.transcript();
        let proof = handshake::prove(cookie, self.role, dialer, acceptor);
        self.write_frame(KIND_AUTH, &wire::encode(&Auth { proof }).unwrap());
    }

    /// Sends a proof that is not one.
    pub(crate) fn prove_garbage(&mut self) {
        self.write_frame(KIND_AUTH, &wire::encode(&Auth { proof: [7; 32] }).unwrap());
    }

    /// Reads the node's proof and checks it against `cookie`.
    pub(crate) fn expect_proof(&mut self, cookie: &[u8]) {
        let (kind, body) = self.read_frame().expect("the node proves");
        assert_eq!(kind, KIND_AUTH);
        let auth: Auth = wire::decode(&body).unwrap();
        let their_role = match self.role {
            Role::Dialer => Role::Acceptor,
            Role::Acceptor => Role::Dialer,
        };
        let (dialer, acceptor) = self.transcript();
        assert!(handshake::verify(
            cookie,
            their_role,
            dialer,
            acceptor,
            &auth.proof
        ));
    }

    /// A whole handshake as the dialer with `cookie`.
    pub(crate) fn handshake(addr: SocketAddr, me: &str, cookie: &[u8]) -> RawPeer {
        let mut peer = RawPeer::dial(addr, me, 1);
        peer.read_hello();
        peer.prove(cookie);
        peer.expect_proof(cookie);
        peer
    }

    pub(crate) fn write_frame(&mut self, kind: u8, body: &[u8]) {
        let mut out = Vec::new();
        frame::encode(kind, body, &mut out);
        self.stream.write_all(&out).unwrap();
    }

    pub(crate) fn write_packet(&mut self, packet: &Packet) {
        self.write_frame(KIND_PACKET, &wire::encode(packet).unwrap());
    }

    /// The next frame, skipping heartbeats; `None` when the node closed
    /// the connection.
    pub(crate) fn read_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            if let Some((frame, used)) = frame::parse(&self.read, 1 << 21).unwrap() {
                let out = (frame.kind, frame.body.to_vec());
                self.read.drain(..used);
                if out.0 == wire::KIND_TICK {
                    continue;
                }
                return Some(out);
            }
            let mut chunk = [0u8; 64 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.read.extend_from_slice(&chunk[..n]),
                Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Err(error) => panic!("no frame within the hang guard: {error}"),
            }
        }
    }

    /// The next packet; `None` when the node closed the connection.
    /// The next packet, past the node's `Peers` announcements (a raw peer
    /// is not a member of its cluster).
    pub(crate) fn read_packet(&mut self) -> Option<Packet> {
        loop {
            let (kind, body) = self.read_frame()?;
            assert_eq!(kind, KIND_PACKET);
            match wire::decode(&body).unwrap() {
                Packet::Peers { .. } => continue,
                packet => return Some(packet),
            }
        }
    }

    /// Reads until the node closes the connection (true), skipping what it
    /// sends; false if it is still open after the hang guard.
    pub(crate) fn closed_by_node(&mut self) -> bool {
        let mut sink = [0u8; 64 * 1024];
        loop {
            match self.stream.read(&mut sink) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(error) => {
                    return matches!(
                        error.kind(),
                        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                    )
                }
            }
        }
    }
}

/// The resident set of process `pid` now, in KiB.
pub(crate) fn rss_kib(pid: i32) -> u64 {
    status_kib(pid, "VmRSS:")
}

/// The largest resident set process `pid` has had, in KiB.
pub(crate) fn peak_rss_kib(pid: i32) -> u64 {
    status_kib(pid, "VmHWM:")
}

fn status_kib(pid: i32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("the field in /proc/PID/status")
}

/// A short pause between polls of something that changes by itself (a
/// hang guard bounds every such loop).
pub(crate) const POLL: Duration = Duration::from_millis(10);
