//! The epmd protocol, as bytes (no I/O): what a node says to the host's
//! Erlang port mapper daemon to register (`ALIVE2_X_REQ`, answered by
//! `ALIVE2_X_RESP` or the older `ALIVE2_RESP`) and to find another node's
//! port (`PORT_PLEASE2_REQ`, answered by `PORT2_RESP`). Requests carry a
//! 2-byte big-endian length; answers do not.
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
/// A normal (not hidden) node, in `NodeType`.
const NODE_TYPE_NORMAL: u8 = 77;
/// The distribution version this node speaks (OTP 23 and later; OTP 25
/// speaks no other).
pub(crate) const DIST_VERSION: u16 = 6;

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
/// let request = erlangen_net::erlang::epmd::alive2_request("rust", 4370);
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
/// use erlangen_net::erlang::epmd::{alive2_response, EpmdError};
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
/// assert_eq!(erlangen_net::erlang::epmd::port_request("e1"), [0, 3, 122, b'e', b'1']);
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
/// use erlangen_net::erlang::epmd::{port_response, EpmdError};
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
