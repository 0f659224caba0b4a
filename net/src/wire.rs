//! What crosses the wire after the frame header: the handshake's `Hello`
//! and `Auth`, and the `Packet`s of an established connection. serde +
//! bincode 2 (standard configuration, always with a byte limit); exit
//! statuses are flattened so that decoding never recurses (pitfalls.md §2).
//! Pure: the fuzz target's subject with frame.rs.

use serde::{Deserialize, Serialize};

use crate::config::{
    CHALLENGE_BYTES, FRAME_BODY_BYTES_MAX, LARGE_VALUE_DECODE_BYTES_MAX, PACKET_BYTES_MAX,
    VALUE_DECODE_BYTES_MAX, WIRE_DEPTH_MAX,
};
use crate::id::{AgentId, NodeName};

/// Frame kind: the handshake's greeting.
///
/// ```
/// assert_ne!(erlangen_net::wire::KIND_HELLO, erlangen_net::wire::KIND_AUTH);
/// ```
pub const KIND_HELLO: u8 = 1;
/// Frame kind: the handshake's proof.
///
/// ```
/// assert_eq!(erlangen_net::wire::KIND_AUTH, 2);
/// ```
pub const KIND_AUTH: u8 = 2;
/// Frame kind: a packet.
///
/// ```
/// assert_eq!(erlangen_net::wire::KIND_PACKET, 3);
/// ```
pub const KIND_PACKET: u8 = 3;
/// Frame kind: a heartbeat (empty body).
///
/// ```
/// let mut out = Vec::new();
/// erlangen_net::frame::encode(erlangen_net::wire::KIND_TICK, &[], &mut out);
/// assert_eq!(out.len(), 5);
/// ```
pub const KIND_TICK: u8 = 4;

/// Frame kind: a fragment of a large packet (fragments.rs): the stream's
/// number (u64, little-endian), 1 if it is the last fragment else 0, then
/// the bytes.
///
/// ```
/// assert_eq!(erlangen_net::wire::KIND_FRAGMENT, 5);
/// ```
pub const KIND_FRAGMENT: u8 = 5;

/// The first frame each side sends.
///
/// ```
/// use erlangen_net::wire::{decode, encode, Hello};
/// let hello = Hello { version: 1, node: "localhost/a".parse().unwrap(), incarnation: 7,
///     challenge: [0; 32], types: vec![("u64".into(), 1)] };
/// assert_eq!(decode::<Hello>(&encode(&hello).unwrap()).unwrap(), hello);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The protocol version.
    pub version: u32,
    /// Who speaks.
    pub node: NodeName,
    /// Its incarnation.
    pub incarnation: u64,
    /// Fresh random bytes the other side's proof must cover.
    pub challenge: [u8; CHALLENGE_BYTES],
    /// The message types it can send and receive: name and fingerprint.
    pub types: Vec<(String, u64)>,
}

/// The second frame each side sends: HMAC-SHA256 over the transcript.
///
/// ```
/// use erlangen_net::wire::{decode, encode, Auth};
/// let auth = Auth { proof: [1; 32] };
/// assert_eq!(decode::<Auth>(&encode(&auth).unwrap()).unwrap(), auth);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Auth {
    /// The proof (handshake.rs).
    pub proof: [u8; 32],
}

/// A message: its registered type name and its encoded value.
///
/// ```
/// let message = erlangen_net::wire::WireMessage { type_name: "u8".into(), body: vec![7] };
/// assert_eq!(message.body, [7]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireMessage {
    /// The name it was registered under.
    pub type_name: String,
    /// The value, bincode-encoded.
    #[serde(with = "bytes")]
    pub body: Vec<u8>,
}

/// An exit reason, flattened: `links` levels of "a linked agent exited
/// with…" around a leaf.
///
/// ```
/// use erlangen_net::wire::{WireLeaf, WireReason};
/// // "a linked agent exited with: kill"
/// let reason = WireReason { links: 1, leaf: WireLeaf::Kill };
/// assert_eq!(reason.links, 1);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireReason {
    /// How many `Linked` wrappers (at most `WIRE_DEPTH_MAX`).
    pub links: u32,
    /// The innermost reason or value.
    pub leaf: WireLeaf,
}

/// The innermost part of an exit reason.
///
/// ```
/// let leaf = erlangen_net::wire::WireLeaf::Other("shutdown".into());
/// assert!(matches!(leaf, erlangen_net::wire::WireLeaf::Other(_)));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireLeaf {
    /// `kill`.
    Kill,
    /// A program's reason.
    Other(String),
    /// A panic message.
    Panic(String),
    /// `timeout`.
    Timeout,
    /// `noproc`.
    NoProc,
    /// `system_limit`.
    SystemLimit,
    /// `shutdown`.
    Shutdown,
    /// `noconnection`.
    NoConnection,
    /// The innermost linked agent returned this value.
    Returned(WireValue),
}

/// A returned value.
///
/// ```
/// assert_eq!(erlangen_net::wire::WireValue::Unit, erlangen_net::wire::WireValue::Unit);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireValue {
    /// `()`.
    Unit,
    /// A value of a registered type.
    Typed(WireMessage),
}

/// An exit status.
///
/// ```
/// use erlangen_net::wire::{WireStatus, WireValue};
/// assert!(matches!(WireStatus::Ok(WireValue::Unit), WireStatus::Ok(_)));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireStatus {
    /// The agent returned.
    Ok(WireValue),
    /// The agent exited.
    Exit(WireReason),
}

/// A signal between agents (erlangen_runtime::RemoteSignal on the wire).
///
/// ```
/// use erlangen_net::wire::{decode, encode, Packet, WireSignal};
/// let packet = Packet::Signal { from: None, to: 3, signal: WireSignal::Link };
/// assert_eq!(decode::<Packet>(&encode(&packet).unwrap()).unwrap(), packet);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireSignal {
    /// Link.
    Link,
    /// Monitor.
    Monitor,
    /// Unlink.
    Unlink,
    /// Kill with a reason.
    Kill(WireReason),
    /// Edge-checked exit.
    EdgeExit(WireReason),
    /// Edge-checked notification.
    Down(WireStatus),
    /// The sender watches the receiver (an observing monitor) under `id`.
    Watch(u64),
    /// The sender no longer watches the receiver under `id`.
    Unwatch(u64),
    /// The sender, watched by the receiver under `id`, ended.
    WatchDown(u64, WireStatus),
}

/// How a remote spawn attaches its caller.
///
/// ```
/// assert_ne!(erlangen_net::wire::WireAttach::Link, erlangen_net::wire::WireAttach::Monitor);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireAttach {
    /// Not at all.
    None,
    /// Link.
    Link,
    /// Monitor.
    Monitor,
}

/// What an established connection carries.
///
/// ```
/// use erlangen_net::wire::{decode, encode, Packet};
/// let reply = Packet::SpawnReply { request: 1, parent: 2, result: Err("no such function".into()) };
/// assert_eq!(decode::<Packet>(&encode(&reply).unwrap()).unwrap(), reply);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Packet {
    /// A message to the agent with serial `to` on the receiving node.
    Message {
        /// The receiver's serial.
        to: u64,
        /// The message.
        message: WireMessage,
    },
    /// A message to the agent registered as `name` on the receiving node.
    Named {
        /// The registered name.
        name: String,
        /// The message.
        message: WireMessage,
    },
    /// A signal from `from` (an agent of the sending node, if any) to the
    /// agent with serial `to` on the receiving node.
    Signal {
        /// The sender.
        from: Option<AgentId>,
        /// The receiver's serial.
        to: u64,
        /// The signal.
        signal: WireSignal,
    },
    /// Spawn the registered `function` with `args`, attached to `parent`.
    Spawn {
        /// Matches the reply.
        request: u64,
        /// The caller, an agent of the sending node.
        parent: AgentId,
        /// How the caller attaches.
        attach: WireAttach,
        /// The function's registered name.
        function: String,
        /// Its arguments, bincode-encoded.
        #[serde(with = "bytes")]
        args: Vec<u8>,
        /// The child's mailbox capacity, if not the default.
        mailbox_len: Option<u32>,
        /// The arguments' type on the caller's side (`type_name`, shown cut to
        /// `config::TYPE_NAME_SHOWN_BYTES_MAX`), named in a refusal.
        args_type: String,
    },
    /// The answer to `Spawn`: the child's id, or why there is none.
    SpawnReply {
        /// The request answered.
        request: u64,
        /// The caller's serial.
        parent: u64,
        /// The child's serial, or the refusal.
        result: Result<u64, String>,
    },
    /// The reply to the call `tag` of the agent with serial `to`: filed
    /// under the tag, as a local reply is.
    Reply {
        /// The caller's serial.
        to: u64,
        /// The call's tag.
        tag: u64,
        /// The reply.
        message: WireMessage,
    },
    /// Which agent is registered as `name` on the receiving node?
    Whereis {
        /// Matches the reply.
        request: u64,
        /// The registered name.
        name: String,
    },
    /// The answer to `Whereis`: the agent's serial, or `None`.
    WhereisReply {
        /// The request answered.
        request: u64,
        /// The registered agent's serial, if the name is registered.
        found: Option<u64>,
    },
    /// Process groups: agents of the sender that joined and left groups
    /// (all its members once a connection is up, then each change), as
    /// `(group, serial)` pairs; at most `config::GROUP_ENTRIES_MAX`.
    Groups {
        /// Joined since the last `Groups`.
        joined: Vec<(String, u64)>,
        /// Left since the last `Groups`.
        left: Vec<(String, u64)>,
    },
    /// Cluster-wide names: names the sender's agents registered and
    /// released (all of them once a connection is up, then each change),
    /// as `(name, serial)` pairs; at most `config::GROUP_ENTRIES_MAX`.
    Globals {
        /// Registered since the last `Globals`.
        registered: Vec<(String, u64)>,
        /// Released since the last `Globals`.
        released: Vec<(String, u64)>,
    },
    /// The nodes the sender is connected to, sent once a connection is up:
    /// the receiver connects to those it is not connected to (a full mesh,
    /// as Erlang's `net_kernel`). At most `config::PEERS_LISTED_MAX`.
    Peers {
        /// Their names, `host/node`.
        nodes: Vec<String>,
    },
}

/// bincode's configuration for the protocol's own values: standard
/// (varint, little-endian) with twice the frame limit as the allocation
/// budget. bincode counts a decoded container's memory, not its bytes on
/// the wire, and a frame of exactly the limit must decode.
fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<PROTOCOL_DECODE_BYTES_MAX>()
}

/// The allocation budget of one protocol value (`config`).
const PROTOCOL_DECODE_BYTES_MAX: usize = 2 * FRAME_BODY_BYTES_MAX;

/// The allocation budget of a packet put together from fragments.
const LARGE_PACKET_DECODE_BYTES_MAX: usize = 2 * PACKET_BYTES_MAX;

/// Decodes a packet put together from fragments (at most
/// `config::PACKET_BYTES_MAX`): as [`decode`], with a budget to match.
pub(crate) fn decode_large_packet(body: &[u8]) -> Result<Packet, DecodeError> {
    decode_whole(
        body,
        bincode::config::standard().with_limit::<LARGE_PACKET_DECODE_BYTES_MAX>(),
    )
}

/// A message or a reply packet read in place: its type name and the
/// message's bytes borrow from the frame, so the receiving loop decodes the
/// value from the frame itself, with no copy of the packet and no
/// allocation for it. It accepts exactly what [`decode`] accepts as a
/// `Packet::Message` or `Packet::Reply`.
///
/// ```
/// use erlangen_net::wire::{encode, MessageView, Packet, WireMessage};
/// let message = WireMessage { type_name: "u8".into(), body: vec![7] };
/// let bytes = encode(&Packet::Reply { to: 3, tag: 9, message }).unwrap();
/// let view = MessageView::read(&bytes).unwrap().unwrap();
/// assert_eq!((view.to, view.tag, view.type_name, view.body), (3, Some(9), "u8", &[7u8][..]));
/// let named = encode(&Packet::Whereis { request: 1, name: "echo".into() }).unwrap();
/// assert!(MessageView::read(&named).is_none());
/// assert!(MessageView::read(&bytes[..bytes.len() - 1]).unwrap().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageView<'a> {
    /// The receiver's serial.
    pub to: u64,
    /// The call it answers, for a reply.
    pub tag: Option<u64>,
    /// The name the message's type was registered under.
    pub type_name: &'a str,
    /// The value, bincode-encoded.
    pub body: &'a [u8],
}

impl<'a> MessageView<'a> {
    /// `Packet::Message`'s and `Packet::Reply`'s variant numbers.
    const MESSAGE: u32 = 0;
    const REPLY: u32 = 5;

    /// The view of a packet's bytes if they are a message or a reply, an
    /// error if such a packet does not decode; `None` for any other packet.
    pub fn read(packet: &'a [u8]) -> Option<Result<MessageView<'a>, DecodeError>> {
        Self::read_with(packet, config())
    }

    /// `read` for a packet put together from fragments (at most
    /// `config::PACKET_BYTES_MAX`), under [`decode_large_packet`]'s budget.
    pub(crate) fn read_large(packet: &'a [u8]) -> Option<Result<MessageView<'a>, DecodeError>> {
        Self::read_with(
            packet,
            bincode::config::standard().with_limit::<LARGE_PACKET_DECODE_BYTES_MAX>(),
        )
    }

    fn read_with(
        packet: &'a [u8],
        config: impl bincode::config::Config,
    ) -> Option<Result<MessageView<'a>, DecodeError>> {
        let small = bincode::config::standard().with_limit::<16>();
        let (variant, _): (u32, usize) = bincode::decode_from_slice(packet, small).ok()?;
        let view = match variant {
            Self::MESSAGE => borrow_whole::<(u32, u64, &str, &[u8])>(packet, config).map(
                |(_, to, type_name, body)| MessageView {
                    to,
                    tag: None,
                    type_name,
                    body,
                },
            ),
            Self::REPLY => borrow_whole::<(u32, u64, u64, &str, &[u8])>(packet, config).map(
                |(_, to, tag, type_name, body)| MessageView {
                    to,
                    tag: Some(tag),
                    type_name,
                    body,
                },
            ),
            _ => return None,
        };
        Some(view)
    }

    /// The owned packet, for one that must wait (its agent's large message
    /// is still decoding).
    pub fn to_packet(&self) -> Packet {
        let message = WireMessage {
            type_name: self.type_name.to_owned(),
            body: self.body.to_vec(),
        };
        match self.tag {
            None => Packet::Message {
                to: self.to,
                message,
            },
            Some(tag) => Packet::Reply {
                to: self.to,
                tag,
                message,
            },
        }
    }
}

/// The head of a large message's or reply's packet (`Packet::Message`
/// without `tag`, `Packet::Reply` with it): with the message's own bytes
/// after it, the bytes `encode` gives for the packet. Kept apart, the
/// message's bytes are neither copied nor moved to make room for it.
pub(crate) fn large_packet_head(
    to: u64,
    tag: Option<u64>,
    message: &WireMessage,
) -> Result<Vec<u8>, DecodeError> {
    let mut head = Vec::with_capacity(48 + message.type_name.len());
    // The message's bytes go as serde bytes: their length, then them.
    let len = message.body.len() as u64;
    let name = message.type_name.as_str();
    match tag {
        None => encode_into(&(MessageView::MESSAGE, to, name, len), &mut head)?,
        Some(tag) => encode_into(&(MessageView::REPLY, to, tag, name, len), &mut head)?,
    }
    Ok(head)
}

/// Decodes all of `body` as a value that borrows from it, under `config`'s
/// budget.
fn borrow_whole<'a, T: serde::Deserialize<'a>>(
    body: &'a [u8],
    config: impl bincode::config::Config,
) -> Result<T, DecodeError> {
    let (value, read): (T, usize) = bincode::serde::borrow_decode_from_slice(body, config)
        .map_err(|e| DecodeError(e.to_string()))?;
    if read != body.len() {
        return Err(DecodeError(format!(
            "{} trailing bytes after the value",
            body.len() - read
        )));
    }
    Ok(value)
}

/// bincode's configuration for user values inside a packet (messages,
/// arguments, returned values): the same wire form, with room for their
/// in-memory expansion (`config::DECODE_EXPANSION_MAX`).
fn value_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<VALUE_DECODE_BYTES_MAX>()
}

/// Decodes a whole user value (a message, arguments, a returned value):
/// as [`decode`], with `config::VALUE_DECODE_BYTES_MAX` as the allocation
/// budget.
///
/// ```
/// // 140,000 small i64s: 140 KB on the wire, 1.1 MB decoded.
/// let values: Vec<i64> = (0..140_000).map(|i| i % 100).collect();
/// let bytes = erlangen_net::wire::encode(&values).unwrap();
/// assert!(bytes.len() < 200_000);
/// #[derive(serde::Deserialize)]
/// struct Values(Vec<i64>);
/// impl erlangen_net::wire::Bounded for Values {}
/// assert_eq!(erlangen_net::wire::decode_value::<Values>(&bytes).unwrap().0, values);
/// ```
pub fn decode_value<T: serde::de::DeserializeOwned + Bounded>(
    body: &[u8],
) -> Result<T, DecodeError> {
    if body.len() > FRAME_BODY_BYTES_MAX {
        // A large message (it came in fragments): a budget of its own.
        return decode_whole(
            body,
            bincode::config::standard().with_limit::<LARGE_VALUE_DECODE_BYTES_MAX>(),
        );
    }
    decode_whole(body, value_config())
}

/// A body that does not decode.
///
/// ```
/// let error = erlangen_net::wire::decode::<erlangen_net::wire::Auth>(&[1, 2, 3]).unwrap_err();
/// assert!(!error.to_string().is_empty());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}

/// `text` cut to at most `max` bytes (at a character boundary), with a
/// marker saying how long it was: what a node echoes on the wire is
/// bounded.
///
/// ```
/// let cut = erlangen_net::wire::bounded_text("x".repeat(100_000), 64);
/// assert!(cut.len() <= 64 && cut.ends_with("(100000 bytes)"));
/// assert_eq!(erlangen_net::wire::bounded_text("short".into(), 64), "short");
/// ```
pub fn bounded_text(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let marker = format!("… ({} bytes)", text.len());
    let mut end = max.saturating_sub(marker.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = text;
    out.truncate(end);
    out.push_str(&marker);
    out
}

/// Encodes `value` (bounded by the frame limit).
///
/// ```
/// let bytes = erlangen_net::wire::encode(&7u64).unwrap();
/// assert_eq!(bytes, [7]);
/// ```
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, DecodeError> {
    encode_with_capacity(value, ENCODE_START_BYTES)
}

/// Room a value's encoding starts with: a small message or packet fits, so
/// it is not grown byte string by byte string (five reallocations for a
/// 64-byte message starting from nothing).
const ENCODE_START_BYTES: usize = 128;

/// `encode` into a buffer that starts with room for `capacity` bytes (the
/// size, when it is known beforehand).
pub(crate) fn encode_with_capacity<T: Serialize>(
    value: &T,
    capacity: usize,
) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::with_capacity(capacity);
    encode_into(value, &mut out)?;
    Ok(out)
}

/// Appends the encoding of `value` to `out` (bounded by the frame limit).
///
/// ```
/// let mut out = vec![0xff];
/// erlangen_net::wire::encode_into(&7u64, &mut out).unwrap();
/// assert_eq!(out, [0xff, 7]);
/// ```
pub fn encode_into<T: Serialize>(value: &T, out: &mut Vec<u8>) -> Result<(), DecodeError> {
    bincode::serde::encode_into_std_write(value, out, config())
        .map(|_| ())
        .map_err(|e| DecodeError(e.to_string()))
}

/// Decodes a whole body into a `T`: trailing bytes are an error, and so is
/// an exit reason nested deeper than `WIRE_DEPTH_MAX`.
///
/// ```
/// use erlangen_net::wire::{decode, encode, Packet, WireMessage};
/// let packet = Packet::Named { name: "echo".into(), message: WireMessage {
///     type_name: "u8".into(), body: vec![7] } };
/// let bytes = encode(&packet).unwrap();
/// assert_eq!(decode::<Packet>(&bytes).unwrap(), packet);
/// assert!(decode::<Packet>(&bytes[..3]).is_err());
/// ```
pub fn decode<T: serde::de::DeserializeOwned + Bounded>(body: &[u8]) -> Result<T, DecodeError> {
    decode_whole(body, config())
}

/// Decodes all of `body` under `config`, then checks the value's limits.
fn decode_whole<T: serde::de::DeserializeOwned + Bounded>(
    body: &[u8],
    config: impl bincode::config::Config,
) -> Result<T, DecodeError> {
    let value: T = borrow_whole(body, config)?;
    value.check()?;
    Ok(value)
}

/// Values whose decoded form must be checked beyond what serde checks.
///
/// ```
/// use erlangen_net::wire::{decode, encode, Packet, WireLeaf, WireReason, WireSignal};
/// // An exit reason nested deeper than the limit is refused.
/// let deep = WireReason { links: 10_000, leaf: WireLeaf::Kill };
/// let packet = Packet::Signal { from: None, to: 1, signal: WireSignal::Kill(deep) };
/// assert!(decode::<Packet>(&encode(&packet).unwrap()).is_err());
/// ```
pub trait Bounded {
    /// Refuses a value past a limit.
    fn check(&self) -> Result<(), DecodeError> {
        Ok(())
    }
}

impl Bounded for Hello {}
impl Bounded for Auth {}

impl Bounded for WireReason {
    fn check(&self) -> Result<(), DecodeError> {
        if self.links as usize > WIRE_DEPTH_MAX {
            return Err(DecodeError(format!(
                "exit reason nested {} deep, more than {WIRE_DEPTH_MAX}",
                self.links
            )));
        }
        Ok(())
    }
}

impl Bounded for WireStatus {
    fn check(&self) -> Result<(), DecodeError> {
        match self {
            WireStatus::Exit(reason) => reason.check(),
            WireStatus::Ok(_) => Ok(()),
        }
    }
}

impl Bounded for Packet {
    fn check(&self) -> Result<(), DecodeError> {
        match self {
            Packet::Signal { signal, .. } => match signal {
                WireSignal::Kill(reason) | WireSignal::EdgeExit(reason) => reason.check(),
                WireSignal::Down(status) | WireSignal::WatchDown(_, status) => status.check(),
                _ => Ok(()),
            },
            _ => Ok(()),
        }
    }
}

/// Byte strings as serde bytes: on bincode's wire the same as a sequence of
/// `u8` (a length, then the bytes), but encoded and decoded in one copy
/// rather than byte by byte.
///
/// ```
/// #[derive(serde::Serialize)]
/// struct Body(#[serde(with = "erlangen_net::wire::bytes")] Vec<u8>);
/// // The same wire form as a `Vec<u8>`: a length, then the bytes.
/// assert_eq!(erlangen_net::wire::encode(&Body(vec![1, 2])).unwrap(), erlangen_net::wire::encode(&vec![1u8, 2]).unwrap());
/// ```
pub mod bytes {
    use serde::de::{SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};

    /// Serializes `bytes` as serde bytes.
    ///
    /// ```
    /// #[derive(serde::Serialize)]
    /// struct B(#[serde(with = "erlangen_net::wire::bytes")] Vec<u8>);
    /// assert_eq!(erlangen_net::wire::encode(&B(vec![9])).unwrap(), [1, 9]);
    /// ```
    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(bytes)
    }

    /// Deserializes serde bytes (or a sequence of `u8`). Asked for as
    /// borrowed bytes: bincode then copies them once out of the slice,
    /// where asked for an owned buffer it would zero one first.
    ///
    /// ```
    /// #[derive(serde::Deserialize, Debug, PartialEq)]
    /// struct B(#[serde(with = "erlangen_net::wire::bytes")] Vec<u8>);
    /// impl erlangen_net::wire::Bounded for B {}
    /// assert_eq!(erlangen_net::wire::decode::<B>(&[1, 9]).unwrap(), B(vec![9]));
    /// ```
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        deserializer.deserialize_bytes(BytesVisitor)
    }

    struct BytesVisitor;

    impl<'de> Visitor<'de> for BytesVisitor {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("bytes")
        }

        fn visit_bytes<E>(self, bytes: &[u8]) -> Result<Vec<u8>, E> {
            Ok(bytes.to_vec())
        }

        fn visit_byte_buf<E>(self, bytes: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(bytes)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
            while let Some(byte) = seq.next_element()? {
                out.push(byte);
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_packets_head_and_its_messages_bytes_are_the_packet_encoded_whole() {
        for tag in [None, Some(1 << 40)] {
            for len in [0, 1, 250, 70_000] {
                let message = WireMessage {
                    type_name: "Vec<u8>".into(),
                    body: encode(&vec![9u8; len]).unwrap(),
                };
                let packet = match tag {
                    None => Packet::Message {
                        to: 300,
                        message: message.clone(),
                    },
                    Some(tag) => Packet::Reply {
                        to: 300,
                        tag,
                        message: message.clone(),
                    },
                };
                let whole = encode(&packet).unwrap();
                let mut parts = large_packet_head(300, tag, &message).unwrap();
                parts.extend_from_slice(&message.body);
                assert_eq!(parts, whole);
            }
        }
    }
}
