//! The challenge-response that lets a non-loopback client look names up
//! without the secret ever crossing the wire.
//!
//! 1. On accept, the daemon sends 32 random bytes (from the OS) in HELLO.
//! 2. The client answers AUTH with `HMAC-SHA256(secret, CONTEXT ‖ challenge)`.
//! 3. The daemon computes the same and compares in constant time
//!    (`Mac::verify_slice`); a mismatch is answered with ERROR and the
//!    connection is closed.
//!
//! A fresh challenge per connection makes a recorded proof useless on any
//! other connection.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::{CHALLENGE_BYTES, PROOF_BYTES};

/// Binds proofs to this protocol, so a proof cannot be reused elsewhere.
const CONTEXT: &[u8] = b"erlangen-portmap-v1 auth";

/// A fresh challenge from the operating system's random source.
pub fn challenge() -> std::io::Result<[u8; CHALLENGE_BYTES]> {
    let mut bytes = [0u8; CHALLENGE_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(bytes)
}

fn mac(secret: &[u8], challenge: &[u8; CHALLENGE_BYTES]) -> Hmac<Sha256> {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(CONTEXT);
    mac.update(challenge);
    mac
}

/// The proof for `challenge` under `secret`.
pub fn prove(secret: &[u8], challenge: &[u8; CHALLENGE_BYTES]) -> [u8; PROOF_BYTES] {
    mac(secret, challenge).finalize().into_bytes().into()
}

/// Whether `proof` is right, compared in constant time.
pub fn verify(secret: &[u8], challenge: &[u8; CHALLENGE_BYTES], proof: &[u8; PROOF_BYTES]) -> bool {
    mac(secret, challenge).verify_slice(proof).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_verifies_only_with_its_secret_and_challenge() {
        let challenge = challenge().unwrap();
        let proof = prove(b"cookie", &challenge);
        assert!(verify(b"cookie", &challenge, &proof));
        assert!(!verify(b"other", &challenge, &proof));
        let mut other = challenge;
        other[0] ^= 1;
        assert!(!verify(b"cookie", &other, &proof));
    }

    #[test]
    fn challenges_do_not_repeat() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            assert!(seen.insert(challenge().unwrap()));
        }
    }
}
