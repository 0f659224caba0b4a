//! The handshake: each side sends a `Hello` (version, name, incarnation, a
//! fresh 32-byte challenge, its message types), then an `Auth` proving the
//! cookie over the whole transcript:
//!
//! `proof = HMAC-SHA256(cookie, LABEL ‖ role ‖ len ‖ hello_dialer ‖ len ‖ hello_acceptor)`
//!
//! where `role` is `dialer` or `acceptor` (whoever proves). Both challenges,
//! both names and both incarnations are inside, so a recorded handshake
//! cannot be replayed (the other side's challenge is new) and a proof
//! cannot be reflected back to its sender (the role differs). Proofs are
//! compared in constant time; the cookie never crosses the wire.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Domain separation for the proofs.
const LABEL: &[u8] = b"erlangen-net handshake v1";

/// Who proves: the role is inside the MAC, so a proof cannot be reflected.
///
/// ```
/// use erlangen_net::handshake::{prove, Role};
/// assert_ne!(prove(b"c", Role::Dialer, b"a", b"b"), prove(b"c", Role::Acceptor, b"a", b"b"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The side that connected.
    Dialer,
    /// The side that accepted.
    Acceptor,
}

impl Role {
    fn tag(self) -> &'static [u8] {
        match self {
            Role::Dialer => b"dialer",
            Role::Acceptor => b"acceptor",
        }
    }
}

fn mac(cookie: &[u8], role: Role, hello_dialer: &[u8], hello_acceptor: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(cookie).expect("HMAC takes any key length");
    mac.update(LABEL);
    mac.update(role.tag());
    mac.update(&(hello_dialer.len() as u64).to_le_bytes());
    mac.update(hello_dialer);
    mac.update(&(hello_acceptor.len() as u64).to_le_bytes());
    mac.update(hello_acceptor);
    mac
}

/// `role`'s proof over the two encoded greetings.
///
/// ```
/// use erlangen_net::handshake::{prove, verify, Role};
/// let proof = prove(b"cookie", Role::Dialer, b"hello-a", b"hello-b");
/// assert!(verify(b"cookie", Role::Dialer, b"hello-a", b"hello-b", &proof));
/// assert!(!verify(b"cookie", Role::Acceptor, b"hello-a", b"hello-b", &proof));
/// assert!(!verify(b"other", Role::Dialer, b"hello-a", b"hello-b", &proof));
/// ```
pub fn prove(cookie: &[u8], role: Role, hello_dialer: &[u8], hello_acceptor: &[u8]) -> [u8; 32] {
    mac(cookie, role, hello_dialer, hello_acceptor)
        .finalize()
        .into_bytes()
        .into()
}

/// Checks `role`'s proof in constant time.
///
/// ```
/// use erlangen_net::handshake::{prove, verify, Role};
/// let proof = prove(b"cookie", Role::Acceptor, b"d", b"a");
/// assert!(verify(b"cookie", Role::Acceptor, b"d", b"a", &proof));
/// assert!(!verify(b"cookie", Role::Acceptor, b"d", b"other", &proof)); // another transcript
/// ```
pub fn verify(
    cookie: &[u8],
    role: Role,
    hello_dialer: &[u8],
    hello_acceptor: &[u8],
    proof: &[u8; 32],
) -> bool {
    mac(cookie, role, hello_dialer, hello_acceptor)
        .verify_slice(proof)
        .is_ok()
}

/// A fresh challenge from the operating system.
///
/// ```
/// let (a, b) = (erlangen_net::handshake::challenge().unwrap(), erlangen_net::handshake::challenge().unwrap());
/// assert_ne!(a, b);
/// ```
pub fn challenge() -> std::io::Result<[u8; 32]> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(bytes)
}
