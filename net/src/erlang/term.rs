//! Erlang terms on the wire: the external term format (`131`, then a
//! tagged term), decoded and encoded with the `eetf` crate behind a check
//! of our own.
//!
//! `eetf` trusts its input: it allocates what a length field says before it
//! reads the bytes, recurses once per level of nesting and panics on a few
//! tags (atom cache references, distribution headers). Every term from a
//! peer therefore passes [`check`] first, which walks it without recursion
//! and without allocating per term:
//!
//! 1. Every length and count is held against the bytes that are left (each
//!    term takes at least one byte), so what `eetf` then allocates is
//!    bounded by the packet's size.
//! 2. Nesting deeper than `config::ERLANG_TERM_DEPTH_MAX` is refused.
//! 3. Tags that a distribution channel without atom caches never carries
//!    (`ATOM_CACHE_REF`, `DIST_HEADER`, `COMPRESSED`, `LOCAL_EXT`) and
//!    unknown tags are refused, as are atoms longer than Erlang's 255
//!    characters and bit binaries whose bit count is out of range.
//!
//! Atoms decode to strings owned by their term: nothing is interned, so a
//! peer that sends a million distinct atoms costs what their terms cost,
//! and that memory goes with the terms (Erlang's atom table keeps them for
//! ever). Encoding checks its own output the same way, so a term that
//! Erlang would refuse (an atom of 300 characters, a byte list longer than
//! `STRING_EXT` holds) is an error here, not a broken connection there.

use std::fmt;

use eetf::Term;

use crate::config::ERLANG_TERM_DEPTH_MAX;

/// The version byte that starts every term.
const VERSION: u8 = 131;

/// Why a term was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TermError {
    /// The bytes end inside the term.
    Truncated,
    /// The term nests deeper than `config::ERLANG_TERM_DEPTH_MAX`.
    TooDeep,
    /// The first byte is not the format's version (131).
    Version(u8),
    /// A tag this node does not accept, and why.
    Tag(u8, &'static str),
    /// Something else is wrong with it.
    Invalid(String),
}

impl fmt::Display for TermError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TermError::Truncated => write!(f, "the term is truncated"),
            TermError::TooDeep => write!(
                f,
                "the term nests deeper than {ERLANG_TERM_DEPTH_MAX} levels"
            ),
            TermError::Version(byte) => {
                write!(f, "the term starts with {byte}, not the version byte 131")
            }
            TermError::Tag(tag, why) => write!(f, "tag {tag}: {why}"),
            TermError::Invalid(why) => write!(f, "{why}"),
        }
    }
}

impl std::error::Error for TermError {}

/// Decodes the term at the front of `bytes` (version byte included) after
/// [`check`]ing it; says how many bytes it took.
///
/// ```
/// use erlangen_net::erlang::{term, Term};
/// let bytes = [131, 104, 2, 119, 2, b'o', b'k', 97, 7];
/// let (decoded, used) = term::decode(&bytes).unwrap();
/// assert_eq!(used, bytes.len());
/// let expected = Term::from(erlangen_net::erlang::eetf::Tuple::from(vec![
///     Term::from(erlangen_net::erlang::eetf::Atom::from("ok")),
///     Term::from(erlangen_net::erlang::eetf::FixInteger::from(7)),
/// ]));
/// assert_eq!(decoded, expected);
/// assert!(term::decode(&bytes[..5]).is_err());
/// ```
pub fn decode(bytes: &[u8]) -> Result<(Term, usize), TermError> {
    let used = check(bytes)?;
    let term =
        Term::decode(&bytes[..used]).map_err(|error| TermError::Invalid(error.to_string()))?;
    Ok((term, used))
}

/// [`decode`] for a term without its version byte (what follows a
/// distribution header).
///
/// ```
/// use erlangen_net::erlang::term;
/// let (decoded, used) = term::decode_bare(&[97, 7, 106]).unwrap();
/// assert_eq!((term::integer(&decoded), used), (Some(7), 2));
/// ```
pub fn decode_bare(bytes: &[u8]) -> Result<(Term, usize), TermError> {
    let used = walk(bytes, false)?;
    let term = Term::decode(std::io::Read::chain(&[VERSION][..], &bytes[..used]))
        .map_err(|error| TermError::Invalid(error.to_string()))?;
    Ok((term, used))
}

/// Appends `term`'s encoding (version byte included) to `out`; a term that
/// an Erlang node would refuse is an error and leaves `out` as it was.
///
/// ```
/// use erlangen_net::erlang::{term, Term};
/// let mut out = Vec::new();
/// term::encode(&Term::from(erlangen_net::erlang::eetf::Atom::from("pong")), &mut out).unwrap();
/// assert_eq!(out, [131, 119, 4, b'p', b'o', b'n', b'g']);
/// let long = Term::from(erlangen_net::erlang::eetf::Atom::from("x".repeat(256)));
/// assert!(term::encode(&long, &mut out).is_err());
/// assert_eq!(out.len(), 7);
/// ```
pub fn encode(term: &Term, out: &mut Vec<u8>) -> Result<(), TermError> {
    let start = out.len();
    let result = term
        .encode(&mut *out)
        .map_err(|error| TermError::Invalid(error.to_string()))
        .and_then(|()| match check(&out[start..]) {
            Ok(used) if used == out.len() - start => Ok(()),
            Ok(_) => Err(TermError::Invalid(
                "the term does not encode to one term (a byte list longer than 65,535?)".into(),
            )),
            Err(error) => Err(error),
        });
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// The elements of a proper list: `[]` is empty, and a string (Erlang
/// sends a list of small integers as one) is its bytes as integers.
///
/// ```
/// use erlangen_net::erlang::{term, Term};
/// let (list, _) = term::decode(&[131, 107, 0, 2, 2, 4]).unwrap(); // [2, 4]
/// let numbers: Vec<i64> = term::elements(&list).unwrap().iter().filter_map(term::integer).collect();
/// assert_eq!(numbers, [2, 4]);
/// ```
pub fn elements(term: &Term) -> Option<Vec<Term>> {
    match term {
        Term::List(list) => Some(list.elements.clone()),
        Term::ByteList(bytes) => Some(
            bytes
                .bytes
                .iter()
                .map(|&b| Term::from(eetf::FixInteger::from(i32::from(b))))
                .collect(),
        ),
        _ => None,
    }
}

/// An integer term's value, if it fits an `i64`.
pub fn integer(term: &Term) -> Option<i64> {
    match term {
        Term::FixInteger(n) => Some(i64::from(n.value)),
        Term::BigInteger(n) => i64::try_from(&n.value).ok(),
        _ => None,
    }
}

/// The term for `n` (a small integer where it fits, else a big one).
///
/// ```
/// use erlangen_net::erlang::term;
/// assert_eq!(term::integer(&term::from_integer(1 << 40)), Some(1 << 40));
/// ```
pub fn from_integer(n: i64) -> Term {
    match i32::try_from(n) {
        Ok(small) => Term::from(eetf::FixInteger::from(small)),
        Err(_) => Term::from(eetf::BigInteger::from(n)),
    }
}

/// Walks the term at the front of `bytes` (version byte included) without
/// building it (module docs); says how many bytes it takes.
///
/// ```
/// use erlangen_net::erlang::term;
/// // A list that claims 4 billion elements in 6 bytes.
/// assert!(term::check(&[131, 108, 255, 255, 255, 255]).is_err());
/// assert_eq!(term::check(&[131, 106, 0]), Ok(2));
/// ```
pub fn check(bytes: &[u8]) -> Result<usize, TermError> {
    walk(bytes, true)
}

/// [`check`], of a term with its version byte (`versioned`) or without.
fn walk(bytes: &[u8], versioned: bool) -> Result<usize, TermError> {
    let mut cursor = Cursor { bytes, at: 0 };
    if versioned {
        let version = cursor.u8()?;
        if version != VERSION {
            return Err(TermError::Version(version));
        }
    }
    // Terms still to read at each level of nesting, innermost last.
    let mut pending: Vec<u64> = vec![1];
    while let Some(left) = pending.last_mut() {
        if *left == 0 {
            pending.pop();
            continue;
        }
        *left -= 1;
        let tag = cursor.u8()?;
        let children = cursor.term_body(tag)?;
        if children > 0 {
            if children > cursor.left() as u64 {
                return Err(TermError::Truncated);
            }
            if pending.len() >= ERLANG_TERM_DEPTH_MAX {
                return Err(TermError::TooDeep);
            }
            pending.push(children);
        }
    }
    Ok(cursor.at)
}

/// A read position in a term's bytes.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn left(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn skip(&mut self, n: u64) -> Result<(), TermError> {
        if n > self.left() as u64 {
            return Err(TermError::Truncated);
        }
        self.at += n as usize;
        Ok(())
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], TermError> {
        let bytes = self
            .bytes
            .get(self.at..self.at + N)
            .ok_or(TermError::Truncated)?;
        self.at += N;
        Ok(bytes.try_into().expect("N bytes"))
    }

    fn u8(&mut self) -> Result<u8, TermError> {
        Ok(self.take::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u64, TermError> {
        Ok(u64::from(u16::from_be_bytes(self.take()?)))
    }

    fn u32(&mut self) -> Result<u64, TermError> {
        Ok(u64::from(u32::from_be_bytes(self.take()?)))
    }

    /// An atom's body after its tag; `utf8` atoms may take up to four
    /// bytes a character.
    fn atom_body(&mut self, len: u64, utf8: bool) -> Result<(), TermError> {
        let start = self.at;
        self.skip(len)?;
        let name = &self.bytes[start..self.at];
        let chars = if utf8 {
            std::str::from_utf8(name)
                .map_err(|_| TermError::Invalid("an atom is not UTF-8".into()))?
                .chars()
                .count()
        } else {
            name.len()
        };
        if chars > 255 {
            return Err(TermError::Invalid(format!(
                "an atom of {chars} characters (Erlang's limit is 255)"
            )));
        }
        Ok(())
    }

    /// An atom, tag included (the node of a pid, port or reference).
    fn atom(&mut self) -> Result<(), TermError> {
        match self.u8()? {
            100 | 118 => {
                let len = self.u16()?;
                self.atom_body(len, true)
            }
            115 | 119 => {
                let len = u64::from(self.u8()?);
                self.atom_body(len, true)
            }
            tag => Err(TermError::Tag(tag, "expected an atom")),
        }
    }

    /// Reads the body of a term with `tag` up to its sub-terms; says how
    /// many sub-terms follow.
    fn term_body(&mut self, tag: u8) -> Result<u64, TermError> {
        match tag {
            // SMALL_INTEGER_EXT, INTEGER_EXT, NEW_FLOAT_EXT, FLOAT_EXT
            97 => self.skip(1).map(|()| 0),
            98 => self.skip(4).map(|()| 0),
            70 => self.skip(8).map(|()| 0),
            99 => self.skip(31).map(|()| 0),
            // ATOM_EXT (Latin-1: at most 255 bytes), ATOM_UTF8_EXT,
            // SMALL_ATOM_EXT, SMALL_ATOM_UTF8_EXT
            100 => {
                let len = self.u16()?;
                self.atom_body(len, false).map(|()| 0)
            }
            118 => {
                let len = self.u16()?;
                self.atom_body(len, true).map(|()| 0)
            }
            115 => {
                let len = u64::from(self.u8()?);
                self.atom_body(len, false).map(|()| 0)
            }
            119 => {
                let len = u64::from(self.u8()?);
                self.atom_body(len, true).map(|()| 0)
            }
            // NIL_EXT, STRING_EXT, LIST_EXT (elements and a tail)
            106 => Ok(0),
            107 => {
                let len = self.u16()?;
                self.skip(len).map(|()| 0)
            }
            108 => Ok(self.u32()? + 1),
            // SMALL_TUPLE_EXT, LARGE_TUPLE_EXT, MAP_EXT (keys and values)
            104 => Ok(u64::from(self.u8()?)),
            105 => self.u32(),
            116 => Ok(self.u32()? * 2),
            // BINARY_EXT, BIT_BINARY_EXT
            109 => {
                let len = self.u32()?;
                self.skip(len).map(|()| 0)
            }
            77 => {
                let len = self.u32()?;
                let bits = self.u8()?;
                let valid = if len == 0 {
                    bits == 0
                } else {
                    (1..=8).contains(&bits)
                };
                if !valid {
                    return Err(TermError::Invalid(format!(
                        "a bit binary of {len} bytes with {bits} bits in its last byte"
                    )));
                }
                self.skip(len).map(|()| 0)
            }
            // SMALL_BIG_EXT, LARGE_BIG_EXT: a sign byte and the digits
            110 => {
                let len = u64::from(self.u8()?);
                self.skip(1 + len).map(|()| 0)
            }
            111 => {
                let len = self.u32()?;
                self.skip(1 + len).map(|()| 0)
            }
            // PID_EXT, NEW_PID_EXT: a node atom, id, serial, creation
            103 => self.atom().and_then(|()| self.skip(9)).map(|()| 0),
            88 => self.atom().and_then(|()| self.skip(12)).map(|()| 0),
            // PORT_EXT, NEW_PORT_EXT, V4_PORT_EXT
            102 => self.atom().and_then(|()| self.skip(5)).map(|()| 0),
            89 => self.atom().and_then(|()| self.skip(8)).map(|()| 0),
            120 => self.atom().and_then(|()| self.skip(12)).map(|()| 0),
            // REFERENCE_EXT, NEW_REFERENCE_EXT, NEWER_REFERENCE_EXT
            101 => self.atom().and_then(|()| self.skip(5)).map(|()| 0),
            114 | 90 => {
                let words = self.u16()?;
                if words > 5 {
                    return Err(TermError::Invalid(format!(
                        "a reference of {words} words (Erlang's limit is 5)"
                    )));
                }
                self.atom()?;
                self.skip(if tag == 114 { 1 } else { 4 })?;
                self.skip(words * 4).map(|()| 0)
            }
            // EXPORT_EXT: module, function, arity
            113 => Ok(3),
            // NEW_FUN_EXT: size, arity, uniq, index, free count; then
            // module, old index, old uniq, pid and the free variables
            112 => {
                self.skip(4 + 1 + 16 + 4)?;
                Ok(4 + self.u32()?)
            }
            // FUN_EXT: free count; pid, module, index, uniq, free variables
            117 => Ok(4 + self.u32()?),
            82 => Err(TermError::Tag(
                tag,
                "atom cache references are not negotiated",
            )),
            68 => Err(TermError::Tag(
                tag,
                "distribution headers are not negotiated",
            )),
            80 => Err(TermError::Tag(tag, "compressed terms are not accepted")),
            121 => Err(TermError::Tag(tag, "local terms are not accepted")),
            _ => Err(TermError::Tag(tag, "not a tag of the external term format")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(term: &Term) -> Term {
        let mut out = Vec::new();
        encode(term, &mut out).expect("encodes");
        let (back, used) = decode(&out).expect("decodes");
        assert_eq!(used, out.len());
        back
    }

    #[test]
    fn common_terms_survive_a_round_trip() {
        let term = Term::from(eetf::Tuple::from(vec![
            Term::from(eetf::Atom::from("ok")),
            Term::from(eetf::FixInteger::from(-5)),
            Term::from(eetf::BigInteger::from(u64::MAX)),
            Term::from(eetf::Float::try_from(1.5).unwrap()),
            Term::from(eetf::Binary::from(vec![1, 2, 3])),
            Term::from(eetf::List::from(vec![Term::from(eetf::Atom::from("a"))])),
            Term::from(eetf::Pid::new("e@host", 84, 0, 7)),
            Term::from(eetf::Reference::from(("e@host", vec![1, 2, 3]))),
        ]));
        assert_eq!(roundtrip(&term), term);
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_refused() {
        let mut bytes = vec![131];
        for _ in 0..ERLANG_TERM_DEPTH_MAX + 1 {
            bytes.extend_from_slice(&[104, 1]);
        }
        bytes.push(106);
        assert_eq!(check(&bytes), Err(TermError::TooDeep));
        let mut ok = vec![131];
        for _ in 0..ERLANG_TERM_DEPTH_MAX - 1 {
            ok.extend_from_slice(&[104, 1]);
        }
        ok.push(106);
        assert_eq!(decode(&ok).map(|(_, used)| used), Ok(ok.len()));
    }

    #[test]
    fn lying_lengths_are_refused_before_anything_is_allocated() {
        for bytes in [
            &[131, 109, 255, 255, 255, 255, 0][..],
            &[131, 105, 255, 255, 255, 255, 106][..],
            &[131, 116, 127, 255, 255, 255][..],
            &[131, 111, 255, 255, 255, 255, 0][..],
            &[131, 117, 255, 255, 255, 255][..],
        ] {
            assert_eq!(check(bytes), Err(TermError::Truncated), "{bytes:?}");
        }
    }

    #[test]
    fn tags_that_would_make_eetf_panic_are_refused() {
        assert!(matches!(check(&[131, 82, 0]), Err(TermError::Tag(82, _))));
        assert!(matches!(check(&[131, 68, 0]), Err(TermError::Tag(68, _))));
        // A bit binary with no bits in its last byte.
        assert!(check(&[131, 77, 0, 0, 0, 1, 0, 255]).is_err());
    }

    #[test]
    fn a_million_random_and_mutated_inputs_never_panic() {
        // xorshift: deterministic, no dependency.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut seed = Vec::new();
        encode(
            &Term::from(eetf::Tuple::from(vec![
                Term::from(eetf::Atom::from("reg_send")),
                Term::from(eetf::Pid::new("e@host", 84, 0, 7)),
                Term::from(eetf::Map::from([(
                    Term::from(eetf::Binary::from(vec![9; 20])),
                    Term::from(eetf::List::from(vec![Term::from(eetf::FixInteger::from(
                        300,
                    ))])),
                )])),
                Term::from(eetf::BigInteger::from(-(1i64 << 62))),
            ])),
            &mut seed,
        )
        .unwrap();
        let mut decoded = 0;
        for round in 0..1_000_000u32 {
            let input: Vec<u8> = if round % 2 == 0 {
                let mut bytes = seed.clone();
                for _ in 0..1 + next() % 4 {
                    let at = (next() as usize) % bytes.len();
                    bytes[at] = next() as u8;
                }
                bytes.truncate(1 + (next() as usize) % bytes.len());
                bytes
            } else {
                let len = (next() % 48) as usize;
                let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                if let Some(first) = bytes.first_mut() {
                    *first = VERSION;
                }
                bytes
            };
            if decode(&input).is_ok() {
                decoded += 1;
            }
        }
        assert!(decoded > 0, "some mutated inputs are still terms");
    }
}
