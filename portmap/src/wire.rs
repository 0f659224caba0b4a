//! The messages of the port-mapper protocol and their encodings
//! (PROTOCOL.md is the reference; this module is its code).
//!
//! Fields are little-endian `u32`s, fixed-size byte arrays, and strings
//! (`u32` byte length, then UTF-8). Decoding checks every length against the
//! bytes that remain and against the field's bound, rejects invalid UTF-8 and
//! trailing bytes, and never allocates more than the frame holds.

use std::fmt;

use unicode_security::GeneralSecurityProfile;

use crate::config::{CHALLENGE_BYTES, DESCRIPTION_BYTES_MAX, NAME_BYTES_MAX, PROOF_BYTES};
use crate::frame;

/// Message type codes.
pub mod kind {
    /// Server → client, first frame on every connection.
    pub const HELLO: u32 = 0x00;
    /// A refused request.
    pub const ERROR: u32 = 0x01;
    /// A request done.
    pub const ACK: u32 = 0x02;
    /// Client → server: proof of the shared secret.
    pub const AUTH: u32 = 0x03;
    /// Register a name (loopback only), held while the connection lives.
    pub const REGISTER: u32 = 0x10;
    /// Drop this connection's registration.
    pub const UNREGISTER: u32 = 0x11;
    /// Look up a name's port.
    pub const PORT: u32 = 0x20;
    /// The port of a name.
    pub const PORT_REPLY: u32 = 0x21;
    /// List the registered names.
    pub const NAMES: u32 = 0x22;
    /// The registered names and their ports.
    pub const NAMES_REPLY: u32 = 0x23;
}

/// Why a request was refused, as sent in ERROR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The frame's body does not decode.
    Malformed = 1,
    /// No such message type (or not one a client may send).
    UnknownType = 2,
    /// The name is empty, too long, or holds a forbidden character.
    InvalidName = 3,
    /// The name is registered already.
    NameTaken = 4,
    /// No node has that name.
    NoSuchNode = 5,
    /// Registration is only accepted from loopback.
    NotAllowed = 6,
    /// A non-loopback client must authenticate first.
    AuthRequired = 7,
    /// The proof did not match.
    AuthFailed = 8,
    /// The bound on registered names is reached.
    Full = 9,
    /// This connection holds a registration already.
    AlreadyRegistered = 10,
    /// The bound on connections is reached.
    Busy = 11,
}

impl ErrorCode {
    /// The code of `value`, if known.
    pub fn from_u32(value: u32) -> Option<ErrorCode> {
        use ErrorCode::*;
        [
            Malformed,
            UnknownType,
            InvalidName,
            NameTaken,
            NoSuchNode,
            NotAllowed,
            AuthRequired,
            AuthFailed,
            Full,
            AlreadyRegistered,
            Busy,
        ]
        .into_iter()
        .find(|code| *code as u32 == value)
    }
}

/// What a client sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Proof of the shared secret for this connection's challenge.
    Auth {
        /// HMAC-SHA256(secret, context ‖ challenge).
        proof: [u8; PROOF_BYTES],
    },
    /// Register `name` at `port`.
    Register {
        /// The node name.
        name: String,
        /// Its port.
        port: u16,
    },
    /// Drop this connection's registration.
    Unregister,
    /// Look up `name`.
    Port {
        /// The node name.
        name: String,
    },
    /// List every name.
    Names,
}

/// What the daemon sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// First frame: protocol version and this connection's challenge.
    Hello {
        /// The protocol version.
        version: u32,
        /// Random bytes to authenticate against.
        challenge: [u8; CHALLENGE_BYTES],
    },
    /// A refusal.
    Error {
        /// Why.
        code: u32,
        /// In words.
        description: String,
    },
    /// Done.
    Ack,
    /// A name's port.
    Port {
        /// The port.
        port: u16,
    },
    /// Every registered name with its port, sorted by name.
    Names {
        /// The entries.
        nodes: Vec<(String, u16)>,
    },
}

/// A body that does not decode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}

/// Reads fields from a body, checking every length.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn u32(&mut self) -> Result<u32, DecodeError> {
        let bytes = self.bytes(4)?;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn port(&mut self) -> Result<u16, DecodeError> {
        let value = self.u32()?;
        u16::try_from(value).map_err(|_| DecodeError(format!("port {value} is not a TCP port")))
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.rest.len() < n {
            return Err(DecodeError(format!(
                "field of {n} bytes, but only {} remain",
                self.rest.len()
            )));
        }
        let (field, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(field)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    fn string(&mut self, max: usize) -> Result<String, DecodeError> {
        let length = self.u32()? as usize;
        if length > max {
            return Err(DecodeError(format!(
                "string of {length} bytes exceeds {max}"
            )));
        }
        let bytes = self.bytes(length)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError("string is not UTF-8".into()))
    }

    fn end(self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DecodeError(format!("{} trailing bytes", self.rest.len())))
        }
    }
}

fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put_string(out: &mut Vec<u8>, value: &str) {
    put_u32(out, value.len() as u32);
    out.extend_from_slice(value.as_bytes());
}

impl Request {
    /// Decodes a request frame's body.
    pub fn decode(kind: u32, body: &[u8]) -> Result<Request, DecodeError> {
        let mut reader = Reader { rest: body };
        let request = match kind {
            kind::AUTH => Request::Auth {
                proof: reader.array::<PROOF_BYTES>()?,
            },
            kind::REGISTER => Request::Register {
                // Decode up to the frame's size; the name's own rules are
                // checked by `validate_name`, with a clear error reply.
                name: reader.string(body.len())?,
                port: reader.port()?,
            },
            kind::UNREGISTER => Request::Unregister,
            kind::PORT => Request::Port {
                name: reader.string(body.len())?,
            },
            kind::NAMES => Request::Names,
            other => return Err(DecodeError(format!("unknown request type {other:#x}"))),
        };
        reader.end()?;
        Ok(request)
    }

    /// Appends the request as a frame to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut body = Vec::new();
        let kind = match self {
            Request::Auth { proof } => {
                body.extend_from_slice(proof);
                kind::AUTH
            }
            Request::Register { name, port } => {
                put_string(&mut body, name);
                put_u32(&mut body, u32::from(*port));
                kind::REGISTER
            }
            Request::Unregister => kind::UNREGISTER,
            Request::Port { name } => {
                put_string(&mut body, name);
                kind::PORT
            }
            Request::Names => kind::NAMES,
        };
        frame::encode(kind, &body, out);
    }
}

impl Reply {
    /// Decodes a reply frame's body.
    pub fn decode(kind: u32, body: &[u8]) -> Result<Reply, DecodeError> {
        let mut reader = Reader { rest: body };
        let reply = match kind {
            kind::HELLO => Reply::Hello {
                version: reader.u32()?,
                challenge: reader.array::<CHALLENGE_BYTES>()?,
            },
            kind::ERROR => Reply::Error {
                code: reader.u32()?,
                description: reader.string(DESCRIPTION_BYTES_MAX)?,
            },
            kind::ACK => Reply::Ack,
            kind::PORT_REPLY => Reply::Port {
                port: reader.port()?,
            },
            kind::NAMES_REPLY => {
                let count = reader.u32()? as usize;
                // Each entry takes at least 8 bytes: the count cannot claim
                // more entries than the body holds.
                if count > reader.rest.len() / 8 {
                    return Err(DecodeError(format!(
                        "{count} entries cannot fit in {} bytes",
                        reader.rest.len()
                    )));
                }
                let mut nodes = Vec::with_capacity(count);
                for _ in 0..count {
                    let name = reader.string(NAME_BYTES_MAX)?;
                    nodes.push((name, reader.port()?));
                }
                Reply::Names { nodes }
            }
            other => return Err(DecodeError(format!("unknown reply type {other:#x}"))),
        };
        reader.end()?;
        Ok(reply)
    }

    /// Appends the reply as a frame to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut body = Vec::new();
        let kind = match self {
            Reply::Hello { version, challenge } => {
                put_u32(&mut body, *version);
                body.extend_from_slice(challenge);
                kind::HELLO
            }
            Reply::Error { code, description } => {
                put_u32(&mut body, *code);
                let mut cut = description.len().min(DESCRIPTION_BYTES_MAX);
                while !description.is_char_boundary(cut) {
                    cut -= 1;
                }
                put_string(&mut body, &description[..cut]);
                kind::ERROR
            }
            Reply::Ack => kind::ACK,
            Reply::Port { port } => {
                put_u32(&mut body, u32::from(*port));
                kind::PORT_REPLY
            }
            Reply::Names { nodes } => {
                put_u32(&mut body, nodes.len() as u32);
                for (name, port) in nodes {
                    put_string(&mut body, name);
                    put_u32(&mut body, u32::from(*port));
                }
                kind::NAMES_REPLY
            }
        };
        frame::encode(kind, &body, out);
    }
}

/// A node name is 1 to 255 bytes of UTF-8 without control characters
/// (NUL included), whitespace or `/`.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the name is empty".into());
    }
    if name.len() > NAME_BYTES_MAX {
        return Err(format!(
            "the name has {} bytes, at most {NAME_BYTES_MAX}",
            name.len()
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| c.is_control() || c.is_whitespace() || *c == '/')
    {
        return Err(format!("the name holds a forbidden character {bad:?}"));
    }
    // Beyond ASCII, only characters that Unicode recommends in identifiers
    // (UTS #39 Identifier_Status=Allowed): no zero-width or direction
    // controls, no compatibility forms such as fullwidth letters.
    if let Some(bad) = name
        .chars()
        .find(|c| !c.is_ascii() && !c.identifier_allowed())
    {
        return Err(format!(
            "the name holds {bad:?} (U+{:04X}), which is not allowed in identifiers",
            bad as u32
        ));
    }
    Ok(())
}

/// The key under which a name is unique: its confusable skeleton (UTS #39:
/// decomposed, with look-alike characters mapped to one prototype). Two
/// names that read alike ("café" composed and decomposed, "alpha" and one
/// spelled with a Cyrillic "а") have the same key, so the second is
/// refused as taken.
///
/// ```
/// use erlangen_portmap::wire::name_key;
/// assert_eq!(name_key("caf\u{e9}"), name_key("cafe\u{301}"));
/// assert_eq!(name_key("alpha"), name_key("\u{430}lpha"));
/// assert_ne!(name_key("alpha"), name_key("beta"));
/// ```
pub fn name_key(name: &str) -> String {
    unicode_security::skeleton(name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_round_trips() {
        let requests = [
            Request::Auth {
                proof: [7; PROOF_BYTES],
            },
            Request::Register {
                name: "nœud".into(),
                port: 4000,
            },
            Request::Unregister,
            Request::Port { name: "a".into() },
            Request::Names,
        ];
        for request in requests {
            let mut out = Vec::new();
            request.encode(&mut out);
            let (frame, used) = frame::parse(&out, 1024).unwrap().unwrap();
            assert_eq!(used, out.len());
            assert_eq!(Request::decode(frame.kind, frame.body).unwrap(), request);
        }
        let replies = [
            Reply::Hello {
                version: 1,
                challenge: [3; CHALLENGE_BYTES],
            },
            Reply::Error {
                code: 4,
                description: "taken".into(),
            },
            Reply::Ack,
            Reply::Port { port: 9 },
            Reply::Names {
                nodes: vec![("a".into(), 1), ("b".into(), 2)],
            },
        ];
        for reply in replies {
            let mut out = Vec::new();
            reply.encode(&mut out);
            let (frame, _) = frame::parse(&out, 1 << 20).unwrap().unwrap();
            assert_eq!(Reply::decode(frame.kind, frame.body).unwrap(), reply);
        }
    }

    #[test]
    fn lying_lengths_and_trailing_bytes_are_errors() {
        // A string that claims more bytes than the body holds.
        let mut body = Vec::new();
        put_u32(&mut body, 1000);
        body.extend_from_slice(b"short");
        assert!(Request::decode(kind::PORT, &body).is_err());
        // A names reply that claims four billion entries.
        assert!(Reply::decode(kind::NAMES_REPLY, &u32::MAX.to_le_bytes()).is_err());
        // Trailing bytes.
        assert!(Request::decode(kind::NAMES, b"x").is_err());
        // A port past u16.
        let mut body = Vec::new();
        put_string(&mut body, "a");
        put_u32(&mut body, 70_000);
        assert!(Request::decode(kind::REGISTER, &body).is_err());
    }

    #[test]
    fn names_with_nul_or_slash_or_too_many_bytes_are_invalid() {
        assert!(validate_name("node-1").is_ok());
        assert!(validate_name("ノード").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("a\0b").is_err());
        assert!(validate_name("a/b").is_err());
        assert!(validate_name("a b").is_err());
        assert!(validate_name(&"x".repeat(256)).is_err());
    }
}
