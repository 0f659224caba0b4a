//! Fragments of large packets (`DFLAG_FRAGMENTS`), as bytes (no I/O).
//!
//! A packet too large to hold up the others on its connection goes as
//! fragments, each a packet of its own, interleaved with other packets:
//!
//! 1. The first is `131, 69` (`DIST_FRAG_HEADER`), a sequence id (8 bytes,
//!    one per message in flight), a fragment id (8 bytes: how many
//!    fragments are left, this one included), the number of atom cache
//!    references (0: none are negotiated), and the first bytes of the
//!    control message and message (terms without their version byte, as
//!    behind a `DIST_HEADER`).
//! 2. The others are `131, 70` (`DIST_FRAG_CONT`), the sequence id, the
//!    fragment id (counting down to 1) and the next bytes.
//! 3. The receiver joins the bytes of a sequence in order; at fragment 1
//!    the packet is whole, and reads as one with a distribution header.
//!
//! Bounds: at most `SEQUENCES_MAX` sequences in flight per connection and
//! `config::ERLANG_PACKET_BYTES_MAX` bytes per message; a fragment out of
//! order, of an unknown sequence, or past a bound is an error (the
//! connection closes).

use std::collections::HashMap;

use crate::config::ERLANG_PACKET_BYTES_MAX;

use super::control::{DIST_FRAG_CONT, DIST_FRAG_HEADER};

/// The version byte that starts a fragment.
const VERSION: u8 = 131;
/// Bytes of a fragment's header before its data: 131, the kind, the
/// sequence id and the fragment id (a first fragment adds one byte).
const HEADER_BYTES: usize = 2 + 8 + 8;
/// Sequences one connection may have in flight.
pub const SEQUENCES_MAX: usize = 256;
/// Data bytes per fragment we send.
pub const FRAGMENT_BYTES: usize = 64 * 1024;

/// Large messages arriving on one connection (step 3).
#[derive(Debug, Default)]
pub struct Reassembly {
    sequences: HashMap<u64, Partial>,
}

/// One message's bytes so far.
#[derive(Debug)]
struct Partial {
    /// The fragment id expected next.
    next: u64,
    /// A body as a packet with a distribution header would have it.
    body: Vec<u8>,
}

impl Reassembly {
    /// Takes a packet body: a whole packet to parse (the body itself if it
    /// is not a fragment), `None` while a message waits for fragments.
    ///
    /// ```
    /// use erlangen_net::erlang::fragments::{split, Reassembly};
    /// let packet = [131, 68, 0, 104, 0]; // {} behind a distribution header
    /// let mut reassembly = Reassembly::default();
    /// let mut whole = None;
    /// for fragment in split(7, &packet[3..], 1) {
    ///     whole = reassembly.take(fragment).unwrap();
    /// }
    /// assert_eq!(whole.as_deref(), Some(&packet[..]));
    /// ```
    pub fn take(&mut self, body: Vec<u8>) -> Result<Option<Vec<u8>>, String> {
        let kind = match body.as_slice() {
            [VERSION, kind, ..] if *kind == DIST_FRAG_HEADER || *kind == DIST_FRAG_CONT => *kind,
            _ => return Ok(Some(body)),
        };
        let header = body
            .get(2..HEADER_BYTES)
            .ok_or("a fragment shorter than its header")?;
        let sequence = u64::from_be_bytes(header[..8].try_into().expect("8 bytes"));
        let id = u64::from_be_bytes(header[8..].try_into().expect("8 bytes"));
        if id == 0 {
            return Err("a fragment numbered 0".into());
        }
        let data = if kind == DIST_FRAG_HEADER {
            match body.get(HEADER_BYTES) {
                Some(0) => &body[HEADER_BYTES + 1..],
                Some(_) => return Err("atom cache references were not negotiated".into()),
                None => return Err("a first fragment without its atom cache count".into()),
            }
        } else {
            &body[HEADER_BYTES..]
        };
        let mut partial = if kind == DIST_FRAG_HEADER {
            if self.sequences.contains_key(&sequence) {
                return Err(format!("sequence {sequence} started twice"));
            }
            if self.sequences.len() >= SEQUENCES_MAX {
                return Err(format!(
                    "more than {SEQUENCES_MAX} fragmented messages at once"
                ));
            }
            Partial {
                next: id,
                body: vec![VERSION, 68, 0],
            }
        } else {
            self.sequences
                .remove(&sequence)
                .ok_or_else(|| format!("a fragment of unknown sequence {sequence}"))?
        };
        if id != partial.next {
            return Err(format!(
                "fragment {id} of sequence {sequence} where {} was due",
                partial.next
            ));
        }
        if partial.body.len() + data.len() > ERLANG_PACKET_BYTES_MAX {
            return Err(format!(
                "a fragmented message over {ERLANG_PACKET_BYTES_MAX} bytes"
            ));
        }
        partial.body.extend_from_slice(data);
        if id == 1 {
            return Ok(Some(partial.body));
        }
        partial.next = id - 1;
        self.sequences.insert(sequence, partial);
        Ok(None)
    }
}

/// Splits `data` (a control message and message without version bytes)
/// into fragment packets of sequence `sequence`, `fragment_bytes` of data
/// each (steps 1 and 2).
pub fn split(sequence: u64, data: &[u8], fragment_bytes: usize) -> Vec<Vec<u8>> {
    let chunks: Vec<&[u8]> = data.chunks(fragment_bytes.max(1)).collect();
    let count = chunks.len() as u64;
    chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let first = i == 0;
            let mut packet = Vec::with_capacity(HEADER_BYTES + 1 + chunk.len());
            packet.push(VERSION);
            packet.push(if first {
                DIST_FRAG_HEADER
            } else {
                DIST_FRAG_CONT
            });
            packet.extend_from_slice(&sequence.to_be_bytes());
            packet.extend_from_slice(&(count - i as u64).to_be_bytes());
            if first {
                packet.push(0);
            }
            packet.extend_from_slice(chunk);
            packet
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_of_two_messages_interleaved_come_out_whole() {
        let a: Vec<u8> = (0..200u8).collect();
        let b: Vec<u8> = (0..100u8).rev().collect();
        let (fa, fb) = (split(1, &a, 30), split(2, &b, 30));
        let mut reassembly = Reassembly::default();
        let mut whole = Vec::new();
        let mut ia = fa.into_iter();
        let mut ib = fb.into_iter();
        loop {
            let (x, y) = (ia.next(), ib.next());
            if x.is_none() && y.is_none() {
                break;
            }
            for fragment in x.into_iter().chain(y) {
                if let Some(body) = reassembly.take(fragment).unwrap() {
                    whole.push(body[3..].to_vec());
                }
            }
        }
        assert_eq!(whole, vec![b, a]);
    }

    #[test]
    fn fragments_out_of_order_or_of_no_sequence_are_errors() {
        let fragments = split(9, &[1; 100], 10);
        let mut reassembly = Reassembly::default();
        assert!(reassembly.take(fragments[1].clone()).is_err());
        let mut reassembly = Reassembly::default();
        reassembly.take(fragments[0].clone()).unwrap();
        assert!(reassembly.take(fragments[2].clone()).is_err());
        assert!(Reassembly::default().take(vec![131, 69, 0]).is_err());
    }
}
