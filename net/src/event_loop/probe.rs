//! Round-trip probes on an up connection: what `PeerStats::round_trip` and
//! the metric `erlangen_peer_round_trip_seconds` report.
//!
//! 1. Once per heartbeat interval, on every up connection, the loop sends a
//!    probe: a tick frame whose body is `0` and a number (a probe doubles
//!    as the keep-alive tick). One is in flight at a time: the next one
//!    replaces it, and an answer to the one replaced is ignored.
//! 2. A peer's loop answers a probe at once with a tick whose body is `1`
//!    and the same number, written behind whatever the connection queues.
//! 3. The answer to the probe in flight sets the round trip; any other
//!    answer is ignored. A tick with an empty body is a keep-alive (what a
//!    peer that does not probe sends); any other body is a protocol error.
//!
//! A peer without probes ignores a probe's body (ticks carry none it
//! reads), so probing needs no new protocol version.

use std::time::{Duration, Instant};

use mio::Token;

use crate::frame;
use crate::wire::KIND_TICK;

use super::EventLoop;

/// A probe's first byte.
const PROBE: u8 = 0;
/// An answer's first byte.
const ANSWER: u8 = 1;
/// A probe's or answer's body: the kind byte and the probe's number.
const PROBE_BODY_BYTES: usize = 1 + 8;

/// One connection's probes.
#[derive(Debug, Default)]
pub(super) struct Probe {
    /// The probe in flight: its number and when it went out.
    in_flight: Option<(u64, Instant)>,
    /// When the last probe went out.
    last_sent: Option<Instant>,
    /// Numbers the probes (never repeats on a connection).
    next: u64,
    /// The last round trip measured.
    round_trip: Option<Duration>,
}

impl Probe {
    /// Step 1: whether a probe is due: an interval has passed since the
    /// last one (whose answer, if it never came, is then given up).
    pub(super) fn due(&self, now: Instant, interval: Duration) -> bool {
        self.last_sent
            .is_none_or(|sent| now.duration_since(sent) >= interval)
    }

    /// Step 1: the next probe's body.
    pub(super) fn send(&mut self, now: Instant) -> [u8; PROBE_BODY_BYTES] {
        self.next += 1;
        self.in_flight = Some((self.next, now));
        self.last_sent = Some(now);
        probe_body(PROBE, self.next)
    }

    /// The last round trip measured.
    pub(super) fn round_trip(&self) -> Option<Duration> {
        self.round_trip
    }

    /// Step 3: an answer numbered `number` came at `now`.
    fn answered(&mut self, number: u64, now: Instant) {
        if let Some((sent_number, sent)) = self.in_flight {
            if sent_number == number {
                self.round_trip = Some(now.duration_since(sent));
                self.in_flight = None;
            }
        }
    }
}

fn probe_body(kind: u8, number: u64) -> [u8; PROBE_BODY_BYTES] {
    let mut body = [0u8; PROBE_BODY_BYTES];
    body[0] = kind;
    body[1..].copy_from_slice(&number.to_le_bytes());
    body
}

impl EventLoop {
    /// Steps 2 and 3: a tick frame from an up connection.
    pub(super) fn on_tick(&mut self, token: Token, body: &[u8]) -> Result<(), String> {
        if body.is_empty() {
            return Ok(());
        }
        let (&kind, number) = body
            .split_first()
            .filter(|_| body.len() == PROBE_BODY_BYTES)
            .ok_or("a tick with a malformed body")?;
        let number = u64::from_le_bytes(number.try_into().expect("eight bytes, checked"));
        match kind {
            PROBE => {
                if let Some(connection) = self.connections.get(&token) {
                    let mut out = connection.outbox.lock();
                    frame::encode(KIND_TICK, &probe_body(ANSWER, number), &mut out.write);
                }
                self.flush(token);
                Ok(())
            }
            ANSWER => {
                if let Some(connection) = self.connections.get_mut(&token) {
                    connection.probe.answered(number, Instant::now());
                }
                Ok(())
            }
            _ => Err("a tick of an unknown kind".to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_answer_to_the_probe_in_flight_sets_the_round_trip() {
        let start = Instant::now();
        let mut probe = Probe::default();
        assert!(probe.due(start, Duration::from_secs(1)));
        let sent = probe.send(start);
        assert_eq!(sent[0], PROBE);
        assert!(!probe.due(start, Duration::from_secs(1)));
        let number = u64::from_le_bytes(sent[1..].try_into().unwrap());
        probe.answered(number + 1, start + Duration::from_millis(1));
        assert_eq!(probe.round_trip(), None);
        probe.answered(number, start + Duration::from_millis(2));
        assert_eq!(probe.round_trip(), Some(Duration::from_millis(2)));
        // A late repeat changes nothing.
        probe.answered(number, start + Duration::from_millis(9));
        assert_eq!(probe.round_trip(), Some(Duration::from_millis(2)));
    }
}
