//! The Erlang distribution handshake, version 6 (OTP 23 and later), as a
//! state machine over message bodies (no I/O; the caller frames each body
//! with a 2-byte big-endian length, as Erlang does during the handshake).
//!
//! The dialer A and the acceptor B:
//!
//! 1. A → B `send_name`: `'N'`, A's flags (8 bytes), creation (4), name.
//! 2. B → A `recv_status`: `'s'` and `ok` (or `nok`, `not_allowed`; or
//!    `alive` when B still holds a connection from an earlier run of A,
//!    which A answers with `true`: the old one goes).
//! 3. B → A `send_challenge`: `'N'`, B's flags, B's challenge (4), B's
//!    creation, B's name.
//! 4. A → B `send_challenge_reply`: `'r'`, A's challenge, and
//!    MD5(cookie ++ decimal(B's challenge)).
//! 5. B checks the digest (in constant time) and only then answers
//!    `send_challenge_ack`: `'a'`, MD5(cookie ++ decimal(A's challenge)),
//!    which A checks. The connection is up on each side when it has
//!    checked the other's digest; nothing before that changes a node.
//!
//! Erlang's challenge is MD5 over a 32-bit challenge: weaker than our own
//! handshake's HMAC-SHA256 over the transcript (`crate::handshake`), and
//! neither encrypts what follows. Run mixed clusters on a trusted network;
//! on a hostile one, TLS distribution is the answer (Erlang's `-proto_dist
//! inet_tls`).

use md5::{Digest, Md5};

/// `DFLAG_PUBLISHED`: the node appears in `nodes()`.
const DFLAG_PUBLISHED: u64 = 0x01;
/// `DFLAG_DIST_MONITOR`: `MONITOR_P` and friends.
const DFLAG_DIST_MONITOR: u64 = 0x08;
/// `DFLAG_DIST_MONITOR_NAME`: monitors of registered names.
const DFLAG_DIST_MONITOR_NAME: u64 = 0x20;
/// `DFLAG_SPAWN`: `SPAWN_REQUEST` and `SPAWN_REPLY` (what `erpc` and
/// `rpc:call` use).
const DFLAG_SPAWN: u64 = 1 << 32;
/// `DFLAG_FRAGMENTS`: large messages in fragments (erlang/fragments.rs).
pub const DFLAG_FRAGMENTS: u64 = 0x0080_0000;
/// `DFLAG_HANDSHAKE_23`: this handshake.
const DFLAG_HANDSHAKE_23: u64 = 0x0100_0000;
/// `DFLAG_UNLINK_ID`: the unlink protocol with acknowledgements.
const DFLAG_UNLINK_ID: u64 = 0x0200_0000;
/// The flags OTP 25 requires of a peer (`MANDATORY_DFLAGS_25` in
/// kernel/include/dist.hrl): extended references, fun tags, extended pids
/// and ports, new fun tags, export pointers, bit binaries, new floats,
/// UTF-8 atoms, maps, big creations and this handshake.
const DFLAGS_MANDATORY_25: u64 = 0x04
    | 0x10
    | 0x100
    | 0x80
    | 0x200
    | 0x400
    | 0x800
    | 0x10000
    | 0x20000
    | 0x40000
    | DFLAG_HANDSHAKE_23;

/// The flags this node offers.
///
/// ```
/// assert_ne!(erlangen_net::erlang::handshake::OUR_FLAGS & 0x0100_0000, 0);
/// ```
pub const OUR_FLAGS: u64 = DFLAGS_MANDATORY_25
    | DFLAG_PUBLISHED
    | DFLAG_DIST_MONITOR
    | DFLAG_DIST_MONITOR_NAME
    | DFLAG_UNLINK_ID
    | DFLAG_SPAWN
    | DFLAG_FRAGMENTS;

/// What the peer said of itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Its full name, `alive@host`.
    pub name: String,
    /// Its distribution flags.
    pub flags: u64,
    /// Its creation (incarnation) number.
    pub creation: u32,
}

/// What to do after a message.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send these bodies (each framed by the caller), then wait for the
    /// next message.
    Send(Vec<Vec<u8>>),
    /// Send these bodies; the connection is up with the peer.
    Up(Vec<Vec<u8>>, Peer),
}

/// Where a handshake stands.
#[derive(Debug)]
enum State {
    /// Acceptor, step 1.
    AwaitName,
    /// Acceptor, step 4.
    AwaitReply { ours: u32, peer: Peer },
    /// Dialer, step 2.
    AwaitStatus,
    /// Dialer, step 3.
    AwaitChallenge,
    /// Dialer, step 5.
    AwaitAck { ours: u32, peer: Peer },
    /// Up or failed: nothing more is accepted.
    Done,
}

/// One connection's handshake (module docs).
#[derive(Debug)]
pub struct Handshake {
    state: State,
    /// Our full name.
    name: String,
    creation: u32,
    cookie: Vec<u8>,
    /// The peer a dialer expects (its name).
    expected: Option<String>,
}

impl Handshake {
    /// The acceptor's side: it waits for `send_name`.
    pub fn accept(name: &str, creation: u32, cookie: &[u8]) -> Handshake {
        Handshake {
            state: State::AwaitName,
            name: name.to_owned(),
            creation,
            cookie: cookie.to_vec(),
            expected: None,
        }
    }

    /// The dialer's side, towards `peer`: the first body to send, and the
    /// handshake that waits for the answer.
    pub fn dial(name: &str, creation: u32, cookie: &[u8], peer: &str) -> (Vec<u8>, Handshake) {
        let mut body = vec![b'N'];
        body.extend_from_slice(&OUR_FLAGS.to_be_bytes());
        body.extend_from_slice(&creation.to_be_bytes());
        body.extend_from_slice(&(name.len() as u16).to_be_bytes());
        body.extend_from_slice(name.as_bytes());
        let handshake = Handshake {
            state: State::AwaitStatus,
            name: name.to_owned(),
            creation,
            cookie: cookie.to_vec(),
            expected: Some(peer.to_owned()),
        };
        (body, handshake)
    }

    /// Takes the peer's next message body; `challenge` is a fresh random
    /// number (used by the step that sends one). An error ends the
    /// handshake: close the connection.
    pub fn on_message(&mut self, body: &[u8], challenge: u32) -> Result<Step, String> {
        let state = std::mem::replace(&mut self.state, State::Done);
        match state {
            State::AwaitName => {
                let peer = parse_name(body)?;
                let mut status = b"s".to_vec();
                status.extend_from_slice(b"ok");
                let mut offer = vec![b'N'];
                offer.extend_from_slice(&OUR_FLAGS.to_be_bytes());
                offer.extend_from_slice(&challenge.to_be_bytes());
                offer.extend_from_slice(&self.creation.to_be_bytes());
                offer.extend_from_slice(&(self.name.len() as u16).to_be_bytes());
                offer.extend_from_slice(self.name.as_bytes());
                self.state = State::AwaitReply {
                    ours: challenge,
                    peer,
                };
                Ok(Step::Send(vec![status, offer]))
            }
            State::AwaitReply { ours, peer } => {
                let (&kind, rest) = body.split_first().ok_or("an empty message")?;
                if kind != b'r' || rest.len() != 20 {
                    return Err(format!("expected a challenge reply, got kind {kind}"));
                }
                let theirs = u32::from_be_bytes(rest[..4].try_into().expect("4 bytes"));
                if !same(&rest[4..], &digest(&self.cookie, ours)) {
                    return Err("the cookies differ (the challenge reply does not match)".into());
                }
                let mut ack = vec![b'a'];
                ack.extend_from_slice(&digest(&self.cookie, theirs));
                Ok(Step::Up(vec![ack], peer))
            }
            State::AwaitStatus => {
                let (&kind, status) = body.split_first().ok_or("an empty message")?;
                match (kind, status) {
                    (b's', b"ok" | b"ok_simultaneous") => {
                        self.state = State::AwaitChallenge;
                        Ok(Step::Send(Vec::new()))
                    }
                    // The peer still holds a connection from an earlier run
                    // of ours: we are the new one, so it is to go (`true`).
                    (b's', b"alive") => {
                        self.state = State::AwaitChallenge;
                        Ok(Step::Send(vec![b"strue".to_vec()]))
                    }
                    (b's', status) => Err(format!(
                        "the peer refused the connection: {}",
                        String::from_utf8_lossy(status)
                    )),
                    _ => Err(format!("expected a status, got kind {kind}")),
                }
            }
            State::AwaitChallenge => {
                let (peer, theirs) = parse_challenge(body)?;
                if self.expected.as_deref() != Some(peer.name.as_str()) {
                    return Err(format!(
                        "dialled {}, reached {}",
                        self.expected.as_deref().unwrap_or("?"),
                        peer.name
                    ));
                }
                let mut reply = vec![b'r'];
                reply.extend_from_slice(&challenge.to_be_bytes());
                reply.extend_from_slice(&digest(&self.cookie, theirs));
                self.state = State::AwaitAck {
                    ours: challenge,
                    peer,
                };
                Ok(Step::Send(vec![reply]))
            }
            State::AwaitAck { ours, peer } => {
                let (&kind, rest) = body.split_first().ok_or("an empty message")?;
                if kind != b'a' || rest.len() != 16 {
                    return Err(format!("expected a challenge ack, got kind {kind}"));
                }
                if !same(rest, &digest(&self.cookie, ours)) {
                    return Err("the cookies differ (the challenge ack does not match)".into());
                }
                Ok(Step::Up(Vec::new(), peer))
            }
            State::Done => Err("the handshake is over".into()),
        }
    }
}

/// MD5(cookie ++ decimal(challenge)), Erlang's digest.
///
pub fn digest(cookie: &[u8], challenge: u32) -> [u8; 16] {
    let mut hasher = Md5::new();
    hasher.update(cookie);
    hasher.update(challenge.to_string().as_bytes());
    hasher.finalize().into()
}

/// Compares two digests in constant time.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The name in a `send_name` body, if it is one: the acceptor looks at it
/// before it answers, to settle a simultaneous connect (both nodes dialled
/// each other: the dial of the node with the greater name survives, as in
/// Erlang's `dist_util`).
pub fn name_in(body: &[u8]) -> Option<String> {
    parse_name(body).ok().map(|peer| peer.name)
}

/// The body of `recv_status` that refuses a connection (`nok`: our own
/// dial of that node wins).
pub fn refusal() -> Vec<u8> {
    b"snok".to_vec()
}

/// A `send_name` body (step 1).
fn parse_name(body: &[u8]) -> Result<Peer, String> {
    let (&kind, rest) = body.split_first().ok_or("an empty message")?;
    if kind != b'N' {
        return Err(format!(
            "expected send_name of version 6 ('N'), got kind {kind} (OTP 22 and older are not spoken)"
        ));
    }
    if rest.len() < 14 {
        return Err("a short send_name".into());
    }
    let flags = u64::from_be_bytes(rest[..8].try_into().expect("8 bytes"));
    let creation = u32::from_be_bytes(rest[8..12].try_into().expect("4 bytes"));
    let name = name_at(&rest[12..])?;
    check_flags(flags)?;
    Ok(Peer {
        name,
        flags,
        creation,
    })
}

/// A `send_challenge` body (step 3): the peer and its challenge.
fn parse_challenge(body: &[u8]) -> Result<(Peer, u32), String> {
    let (&kind, rest) = body.split_first().ok_or("an empty message")?;
    if kind != b'N' || rest.len() < 18 {
        return Err(format!("expected a challenge, got kind {kind}"));
    }
    let flags = u64::from_be_bytes(rest[..8].try_into().expect("8 bytes"));
    let challenge = u32::from_be_bytes(rest[8..12].try_into().expect("4 bytes"));
    let creation = u32::from_be_bytes(rest[12..16].try_into().expect("4 bytes"));
    let name = name_at(&rest[16..])?;
    check_flags(flags)?;
    Ok((
        Peer {
            name,
            flags,
            creation,
        },
        challenge,
    ))
}

/// A 2-byte length and a node name `alive@host` that fills the rest.
fn name_at(bytes: &[u8]) -> Result<String, String> {
    let len: [u8; 2] = bytes
        .get(..2)
        .ok_or("a name without its length")?
        .try_into()
        .expect("2 bytes");
    let len = u16::from_be_bytes(len) as usize;
    let name = bytes
        .get(2..)
        .filter(|name| name.len() == len)
        .ok_or("a name whose length does not match")?;
    let name = std::str::from_utf8(name).map_err(|_| "a name that is not UTF-8")?;
    valid_name(name)?;
    Ok(name.to_owned())
}

/// Erlang's rule for a node name: `alive@host`, both parts non-empty, at
/// most 255 characters in all.
///
/// ```
/// use erlangen_net::erlang::handshake::valid_name;
/// assert!(valid_name("e1@host").is_ok());
/// assert!(valid_name("e1").is_err());
/// assert!(valid_name("@host").is_err());
/// ```
pub fn valid_name(name: &str) -> Result<(), String> {
    let Some((alive, host)) = name.split_once('@') else {
        return Err(format!("{name:?} is not a node name (alive@host)"));
    };
    if alive.is_empty() || host.is_empty() || name.chars().count() > 255 || host.contains('@') {
        return Err(format!("{name:?} is not a node name (alive@host)"));
    }
    if name.chars().any(char::is_control) {
        return Err(format!("{name:?} holds control characters"));
    }
    Ok(())
}

/// The peer offers what OTP 25 requires.
fn check_flags(flags: u64) -> Result<(), String> {
    let missing = DFLAGS_MANDATORY_25 & !flags;
    if missing != 0 {
        return Err(format!(
            "the peer lacks mandatory distribution flags {missing:#x}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(cookie_a: &[u8], cookie_b: &[u8]) -> (Result<Peer, String>, Result<Peer, String>) {
        let (first, mut dialer) = Handshake::dial("a@h", 1, cookie_a, "b@h");
        let mut acceptor = Handshake::accept("b@h", 2, cookie_b);
        let Step::Send(answers) = acceptor.on_message(&first, 77).unwrap() else {
            panic!("the acceptor answers")
        };
        assert_eq!(
            dialer.on_message(&answers[0], 0).unwrap(),
            Step::Send(Vec::new())
        );
        let Step::Send(reply) = dialer.on_message(&answers[1], 99).unwrap() else {
            panic!("the dialer replies")
        };
        match acceptor.on_message(&reply[0], 0) {
            Ok(Step::Up(ack, peer)) => {
                let dialer_side = match dialer.on_message(&ack[0], 0) {
                    Ok(Step::Up(_, peer)) => Ok(peer),
                    Ok(step) => panic!("{step:?}"),
                    Err(error) => Err(error),
                };
                (dialer_side, Ok(peer))
            }
            Ok(step) => panic!("{step:?}"),
            Err(error) => (Err("never acked".into()), Err(error)),
        }
    }

    #[test]
    fn both_sides_come_up_with_the_same_cookie() {
        let (a, b) = run(b"secret", b"secret");
        assert_eq!(a.unwrap().name, "b@h");
        let b = b.unwrap();
        assert_eq!((b.name.as_str(), b.creation), ("a@h", 1));
    }

    #[test]
    fn different_cookies_stop_the_acceptor_before_it_answers() {
        let (a, b) = run(b"secret", b"other");
        assert!(b.unwrap_err().contains("cookies differ"));
        assert!(a.is_err());
    }

    #[test]
    fn garbage_ends_the_handshake_without_a_panic() {
        for body in [&[][..], b"N", &[b'N', 0, 0], &[b'n', 0, 5, 0, 0, 0, 0]] {
            assert!(Handshake::accept("b@h", 2, b"c")
                .on_message(body, 1)
                .is_err());
        }
        let mut no_flags = vec![b'N'];
        no_flags.extend_from_slice(&[0; 12]);
        no_flags.extend_from_slice(&3u16.to_be_bytes());
        no_flags.extend_from_slice(b"a@h");
        let error = Handshake::accept("b@h", 2, b"c")
            .on_message(&no_flags, 1)
            .unwrap_err();
        assert!(error.contains("mandatory"), "{error}");
    }
}
