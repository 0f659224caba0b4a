//! The epmd protocol, as bytes (no I/O), both sides: what an Erlang node
//! says to its host's port mapper daemon to register (`ALIVE2_X_REQ`,
//! answered by `ALIVE2_X_RESP` or the older `ALIVE2_RESP`), to find another
//! node's port (`PORT_PLEASE2_REQ`, answered by `PORT2_RESP`) and to list
//! the names (`NAMES_REQ`); and what a daemon answers (server.rs serves it
//! with `--epmd`). Requests carry a 2-byte big-endian length; answers do
//! not.
//!
//! A registration holds its connection: epmd forgets the name when it
//! closes. A lookup's connection is closed by epmd after its answer.

use std::fmt;

/// `ALIVE2_X_REQ`.
const ALIVE2_X_REQ: u8 = 120;
/// `ALIVE2_RESP` (16-bit creation).
const ALIVE2_RESP: u8 = 121;
/// `ALIVE2_X_RESP` (32-bit creation).
const ALIVE2_X_RESP: u8 = 118;
/// `PORT_PLEASE2_REQ`.
const PORT_PLEASE2_REQ: u8 = 122;
/// `PORT2_RESP`.
const PORT2_RESP: u8 = 119;
/// `NAMES_REQ`.
const NAMES_REQ: u8 = 110;
/// A normal (not hidden) node, in `NodeType`.
const NODE_TYPE_NORMAL: u8 = 77;
/// The distribution version this node speaks (OTP 23 and later; OTP 25
/// speaks no other).
pub const DIST_VERSION: u16 = 6;

/// What epmd's answer said, or why it is not one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EpmdError {
    /// More bytes are needed.
    Incomplete,
    /// epmd refused (its result code): the name is taken, or epmd is
    /// not accepting.
    Refused(u8),
    /// Not an answer epmd gives.
    Invalid(String),
}

impl fmt::Display for EpmdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EpmdError::Incomplete => write!(f, "epmd's answer is incomplete"),
            EpmdError::Refused(code) => write!(
                f,
                "epmd refused (result {code}: the name may be registered already)"
            ),
            EpmdError::Invalid(why) => write!(f, "not an answer of epmd: {why}"),
        }
    }
}

impl std::error::Error for EpmdError {}

/// The request that registers `alive` (the part of a node's name before
/// `@`) at `port`.
///
/// ```
/// let request = erlangen_portmap::epmd::alive2_request("rust", 4370);
/// assert_eq!(&request[..3], &[0, 17, 120]);
/// assert_eq!(request.len(), 2 + 17);
/// ```
pub fn alive2_request(alive: &str, port: u16) -> Vec<u8> {
    let mut body = vec![ALIVE2_X_REQ];
    body.extend_from_slice(&port.to_be_bytes());
    body.push(NODE_TYPE_NORMAL);
    body.push(0); // protocol: TCP/IPv4
    body.extend_from_slice(&DIST_VERSION.to_be_bytes()); // highest
    body.extend_from_slice(&DIST_VERSION.to_be_bytes()); // lowest
    body.extend_from_slice(&(alive.len() as u16).to_be_bytes());
    body.extend_from_slice(alive.as_bytes());
    body.extend_from_slice(&0u16.to_be_bytes()); // no extra
    framed(body)
}

/// The creation number in epmd's answer to a registration.
///
/// ```
/// use erlangen_portmap::epmd::{alive2_response, EpmdError};
/// assert_eq!(alive2_response(&[118, 0, 0, 0, 0, 9]), Ok(9));
/// assert_eq!(alive2_response(&[121, 0, 0, 3]), Ok(3));
/// assert_eq!(alive2_response(&[118, 1, 0, 0, 0, 0]), Err(EpmdError::Refused(1)));
/// assert_eq!(alive2_response(&[118, 0, 0]), Err(EpmdError::Incomplete));
/// ```
pub fn alive2_response(bytes: &[u8]) -> Result<u32, EpmdError> {
    let (&kind, rest) = bytes.split_first().ok_or(EpmdError::Incomplete)?;
    let wide = match kind {
        ALIVE2_X_RESP => true,
        ALIVE2_RESP => false,
        other => return Err(EpmdError::Invalid(format!("answer kind {other}"))),
    };
    let (&result, rest) = rest.split_first().ok_or(EpmdError::Incomplete)?;
    if result != 0 {
        return Err(EpmdError::Refused(result));
    }
    if wide {
        let creation: [u8; 4] = rest
            .get(..4)
            .ok_or(EpmdError::Incomplete)?
            .try_into()
            .expect("4 bytes");
        Ok(u32::from_be_bytes(creation))
    } else {
        let creation: [u8; 2] = rest
            .get(..2)
            .ok_or(EpmdError::Incomplete)?
            .try_into()
            .expect("2 bytes");
        Ok(u32::from(u16::from_be_bytes(creation)))
    }
}

/// The request for the port of node `alive` on epmd's host.
///
/// ```
/// assert_eq!(erlangen_portmap::epmd::port_request("e1"), [0, 3, 122, b'e', b'1']);
/// ```
pub fn port_request(alive: &str) -> Vec<u8> {
    let mut body = vec![PORT_PLEASE2_REQ];
    body.extend_from_slice(alive.as_bytes());
    framed(body)
}

/// The port in epmd's answer to a lookup (`Refused` when epmd does not
/// know the name), once the answer is complete.
///
/// ```
/// use erlangen_portmap::epmd::{port_response, EpmdError};
/// let answer = [119, 0, 0x11, 0x12, 77, 0, 0, 6, 0, 6, 0, 2, b'e', b'1', 0, 0];
/// assert_eq!(port_response(&answer), Ok(0x1112));
/// assert_eq!(port_response(&[119, 1]), Err(EpmdError::Refused(1)));
/// assert_eq!(port_response(&answer[..5]), Err(EpmdError::Incomplete));
/// ```
pub fn port_response(bytes: &[u8]) -> Result<u16, EpmdError> {
    let (&kind, rest) = bytes.split_first().ok_or(EpmdError::Incomplete)?;
    if kind != PORT2_RESP {
        return Err(EpmdError::Invalid(format!("answer kind {kind}")));
    }
    let (&result, rest) = rest.split_first().ok_or(EpmdError::Incomplete)?;
    if result != 0 {
        return Err(EpmdError::Refused(result));
    }
    // Port, type, protocol, highest and lowest version, name, extra.
    let fixed = rest.get(..10).ok_or(EpmdError::Incomplete)?;
    let port = u16::from_be_bytes([fixed[0], fixed[1]]);
    let highest = u16::from_be_bytes([fixed[4], fixed[5]]);
    let lowest = u16::from_be_bytes([fixed[6], fixed[7]]);
    if !(lowest..=highest).contains(&DIST_VERSION) {
        return Err(EpmdError::Invalid(format!(
            "the node speaks versions {lowest} to {highest}, not {DIST_VERSION}"
        )));
    }
    Ok(port)
}

/// `body` behind its 2-byte length.
fn framed(body: Vec<u8>) -> Vec<u8> {
    let mut out = (body.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

/// Largest epmd request body accepted, in bytes (a name of at most 255
/// characters, fixed fields and a short `extra`).
pub const REQUEST_BODY_BYTES_MAX: usize = 1024;

/// What a node registered: its port and the fields `PORT2_RESP` repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The node's distribution port.
    pub port: u16,
    /// 77 for a normal node, 72 for a hidden one.
    pub node_type: u8,
    /// 0: TCP/IPv4.
    pub protocol: u8,
    /// The highest distribution version it speaks.
    pub highest: u16,
    /// The lowest.
    pub lowest: u16,
    /// Opaque bytes it asked epmd to keep.
    pub extra: Vec<u8>,
}

/// A request to epmd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `ALIVE2_X_REQ`: register `name` with `entry`.
    Alive2 {
        /// The node's name before `@`.
        name: String,
        /// What it registers.
        entry: Entry,
    },
    /// `PORT_PLEASE2_REQ`: the entry of `name`.
    PortPlease2 {
        /// The name looked up.
        name: String,
    },
    /// `NAMES_REQ`: every registered name and port.
    Names,
    /// Any other request, by its code (`KILL_REQ`, `STOP_REQ`, dumps: not
    /// served).
    Other(u8),
}

/// The request at the front of `bytes` and the bytes it took, `None` if
/// incomplete; an error for a request that is too long or malformed.
///
/// ```
/// use erlangen_portmap::epmd::{parse_request, port_request, Request};
/// let (request, used) = parse_request(&port_request("e1")).unwrap().unwrap();
/// assert_eq!(request, Request::PortPlease2 { name: "e1".into() });
/// assert_eq!(used, 5);
/// assert_eq!(parse_request(&[0, 3, 122]), Ok(None));
/// assert!(parse_request(&[0xff, 0xff]).is_err());
/// ```
pub fn parse_request(bytes: &[u8]) -> Result<Option<(Request, usize)>, String> {
    let Some(len) = bytes.get(..2) else {
        return Ok(None);
    };
    let len = u16::from_be_bytes([len[0], len[1]]) as usize;
    if len == 0 || len > REQUEST_BODY_BYTES_MAX {
        return Err(format!("an epmd request of {len} bytes"));
    }
    let Some(body) = bytes.get(2..2 + len) else {
        return Ok(None);
    };
    let request = match body[0] {
        ALIVE2_X_REQ => {
            let fixed = body.get(1..11).ok_or("a short ALIVE2_X_REQ")?;
            let name_len = u16::from_be_bytes([fixed[8], fixed[9]]) as usize;
            let name = body.get(11..11 + name_len).ok_or("a short name")?;
            let rest = &body[11 + name_len..];
            let extra_len = rest.get(..2).ok_or("no extra length")?;
            let extra_len = u16::from_be_bytes([extra_len[0], extra_len[1]]) as usize;
            let extra = rest.get(2..2 + extra_len).ok_or("a short extra")?;
            Request::Alive2 {
                name: String::from_utf8(name.to_vec()).map_err(|_| "a name that is not UTF-8")?,
                entry: Entry {
                    port: u16::from_be_bytes([fixed[0], fixed[1]]),
                    node_type: fixed[2],
                    protocol: fixed[3],
                    highest: u16::from_be_bytes([fixed[4], fixed[5]]),
                    lowest: u16::from_be_bytes([fixed[6], fixed[7]]),
                    extra: extra.to_vec(),
                },
            }
        }
        PORT_PLEASE2_REQ => Request::PortPlease2 {
            name: String::from_utf8(body[1..].to_vec()).map_err(|_| "a name that is not UTF-8")?,
        },
        NAMES_REQ => Request::Names,
        other => Request::Other(other),
    };
    Ok(Some((request, 2 + len)))
}

/// `ALIVE2_X_RESP`: result 0 and `creation`, or a refusal (result 1).
///
/// ```
/// use erlangen_portmap::epmd::{alive2_response, alive2_x_response, EpmdError};
/// assert_eq!(alive2_response(&alive2_x_response(Some(7))), Ok(7));
/// assert_eq!(alive2_response(&alive2_x_response(None)), Err(EpmdError::Refused(1)));
/// ```
pub fn alive2_x_response(creation: Option<u32>) -> Vec<u8> {
    let mut out = vec![ALIVE2_X_RESP, u8::from(creation.is_none())];
    out.extend_from_slice(&creation.unwrap_or(0).to_be_bytes());
    out
}

/// `PORT2_RESP` for `name`'s entry, or result 1 if there is none.
///
/// ```
/// use erlangen_portmap::epmd::{port2_response, port_response, Entry};
/// let entry = Entry { port: 4370, node_type: 77, protocol: 0, highest: 6, lowest: 6, extra: vec![] };
/// assert_eq!(port_response(&port2_response("e1", Some(&entry))), Ok(4370));
/// assert!(port_response(&port2_response("e1", None)).is_err());
/// ```
pub fn port2_response(name: &str, entry: Option<&Entry>) -> Vec<u8> {
    let Some(entry) = entry else {
        return vec![PORT2_RESP, 1];
    };
    let mut out = vec![PORT2_RESP, 0];
    out.extend_from_slice(&entry.port.to_be_bytes());
    out.push(entry.node_type);
    out.push(entry.protocol);
    out.extend_from_slice(&entry.highest.to_be_bytes());
    out.extend_from_slice(&entry.lowest.to_be_bytes());
    out.extend_from_slice(&(name.len() as u16).to_be_bytes());
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&(entry.extra.len() as u16).to_be_bytes());
    out.extend_from_slice(&entry.extra);
    out
}

/// The answer to `NAMES_REQ`: epmd's port, then a line per name, as
/// `net_adm:names()` reads it.
///
/// ```
/// let answer = erlangen_portmap::epmd::names_response(4369, [("e1", 4370)]);
/// assert_eq!(&answer[4..], b"name e1 at port 4370\n");
/// ```
pub fn names_response<'a>(
    epmd_port: u16,
    names: impl IntoIterator<Item = (&'a str, u16)>,
) -> Vec<u8> {
    let mut out = u32::from(epmd_port).to_be_bytes().to_vec();
    for (name, port) in names {
        out.extend_from_slice(format!("name {name} at port {port}\n").as_bytes());
    }
    out
}
