//! Frames: `type: u32 LE`, `body length: u32 LE`, body. Pure functions over
//! bytes; no sockets.
//!
//! [`parse`] looks at the front of a receive buffer and says whether a
//! whole frame is there, whether more bytes are needed, or whether the input
//! is bad. It checks the length prefix against the caller's bound **before**
//! any body is buffered, so a lying length costs nothing.

use std::fmt;

use crate::config::HEADER_BYTES;

/// A whole frame, borrowed from the buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The message type.
    pub kind: u32,
    /// The body.
    pub body: &'a [u8],
}

/// Why bytes are not a frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The length prefix exceeds the bound.
    TooLong {
        /// The claimed body length.
        claimed: u64,
        /// The bound.
        max: usize,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLong { claimed, max } => {
                write!(
                    f,
                    "frame body of {claimed} bytes exceeds the limit of {max}"
                )
            }
        }
    }
}

impl std::error::Error for FrameError {}

/// Looks for one frame at the start of `buffer`: `Ok(Some((frame, used)))`
/// when complete, `Ok(None)` when more bytes are needed, an error when the
/// length prefix exceeds `body_max`.
pub fn parse(buffer: &[u8], body_max: usize) -> Result<Option<(Frame<'_>, usize)>, FrameError> {
    if buffer.len() < HEADER_BYTES {
        return Ok(None);
    }
    let kind = u32::from_le_bytes([buffer[0], buffer[1], buffer[2], buffer[3]]);
    let length = u32::from_le_bytes([buffer[4], buffer[5], buffer[6], buffer[7]]) as usize;
    if length > body_max {
        return Err(FrameError::TooLong {
            claimed: length as u64,
            max: body_max,
        });
    }
    let total = HEADER_BYTES + length;
    if buffer.len() < total {
        return Ok(None);
    }
    Ok(Some((
        Frame {
            kind,
            body: &buffer[HEADER_BYTES..total],
        },
        total,
    )))
}

/// Appends a frame of `kind` with `body` to `out`.
pub fn encode(kind: u32, body: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_round_trips_and_partial_input_asks_for_more() {
        let mut out = Vec::new();
        encode(7, b"abc", &mut out);
        assert_eq!(parse(&out, 16).unwrap().unwrap().0.body, b"abc");
        for cut in 0..out.len() {
            assert_eq!(parse(&out[..cut], 16).unwrap(), None);
        }
        assert!(parse(&out, 2).is_err());
    }
}
