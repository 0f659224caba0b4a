//! Frames: a 4-byte little-endian body length, a 1-byte kind, the body.
//! Pure functions; the length is checked against the limit before any body
//! is buffered, so a lying prefix costs nothing (the fuzz target's subject).

use std::fmt;

use crate::config::FRAME_HEADER_BYTES;

/// Bytes of a frame's header.
///
/// ```
/// let mut out = Vec::new();
/// erlangen_net::frame::encode(1, b"abc", &mut out);
/// assert_eq!(out.len(), erlangen_net::frame::HEADER_BYTES + 3);
/// ```
pub const HEADER_BYTES: usize = FRAME_HEADER_BYTES;

/// A complete frame inside a buffer.
///
/// ```
/// let bytes = [2, 0, 0, 0, 9, b'h', b'i'];
/// let (frame, used) = erlangen_net::frame::parse(&bytes, 16).unwrap().unwrap();
/// assert_eq!((frame.kind, frame.body, used), (9, &b"hi"[..], 7));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// What the body is.
    pub kind: u8,
    /// The body.
    pub body: &'a [u8],
}

/// A frame that cannot be accepted.
///
/// ```
/// let error = erlangen_net::frame::parse(&[0xff, 0xff, 0xff, 0xff, 1], 16).unwrap_err();
/// assert!(error.to_string().contains("exceeds"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The length prefix exceeds the limit.
    TooLong {
        /// What the prefix said.
        length: u64,
        /// The limit.
        max: usize,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLong { length, max } => {
                write!(f, "frame of {length} bytes exceeds the {max}-byte limit")
            }
        }
    }
}

/// The first complete frame in `buffer` and the bytes it spans, `None` if
/// more bytes are needed, or an error if the prefix exceeds `body_max`.
///
/// ```
/// use erlangen_net::frame::{encode, parse, Frame};
/// let mut out = Vec::new();
/// encode(7, b"hi", &mut out);
/// assert_eq!(parse(&out, 16).unwrap(), Some((Frame { kind: 7, body: b"hi" }, 7)));
/// assert_eq!(parse(&out[..3], 16).unwrap(), None);
/// assert!(parse(&[255, 255, 255, 255, 0], 16).is_err());
/// ```
pub fn parse(buffer: &[u8], body_max: usize) -> Result<Option<(Frame<'_>, usize)>, FrameError> {
    if buffer.len() < 4 {
        return Ok(None);
    }
    let length = u32::from_le_bytes([buffer[0], buffer[1], buffer[2], buffer[3]]) as usize;
    if length > body_max {
        return Err(FrameError::TooLong {
            length: length as u64,
            max: body_max,
        });
    }
    let total = FRAME_HEADER_BYTES + length;
    if buffer.len() < total {
        return Ok(None);
    }
    let frame = Frame {
        kind: buffer[4],
        body: &buffer[FRAME_HEADER_BYTES..total],
    };
    Ok(Some((frame, total)))
}

/// Appends a frame to `out`. The caller keeps `body` within the limit.
///
/// ```
/// let mut out = Vec::new();
/// erlangen_net::frame::encode(4, &[], &mut out);
/// assert_eq!(out, [0, 0, 0, 0, 4]);
/// ```
pub fn encode(kind: u8, body: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.push(kind);
    out.extend_from_slice(body);
}

/// Starts a frame whose body the caller appends next; returns where its
/// length goes, for [`finish`].
///
/// ```
/// use erlangen_net::frame::{begin, finish, parse};
/// let mut out = Vec::new();
/// let at = begin(3, &mut out);
/// out.extend_from_slice(b"body");
/// finish(at, &mut out);
/// assert_eq!(parse(&out, 16).unwrap().unwrap().0.body, b"body");
/// ```
pub fn begin(kind: u8, out: &mut Vec<u8>) -> usize {
    let at = out.len();
    out.extend_from_slice(&[0, 0, 0, 0, kind]);
    at
}

/// Writes the length of the frame begun at `at` (see [`begin`]).
pub fn finish(at: usize, out: &mut [u8]) {
    let length = (out.len() - at - FRAME_HEADER_BYTES) as u32;
    out[at..at + 4].copy_from_slice(&length.to_le_bytes());
}
