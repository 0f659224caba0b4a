//! `SimEvent` and `EventLog`: what a simulation records of a run, folded
//! into one hash (the run's fingerprint: two runs with the same hash made
//! the same scheduling decisions and deliveries in the same order at the
//! same virtual times), and echoed to stderr when a replay asks for it.
//!
//! The hash is FNV-1a over a fixed byte encoding of each event, not
//! `std`'s `DefaultHasher` (whose output may change between toolchains):
//! a hash printed by one build is compared with the same build's replay,
//! but it should not change for no reason either.

use std::fmt;
use std::io::Write;

/// One thing that happened in a simulation. Agents are named by their
/// node's index and their serial number there (serials are assigned in
/// order on the one thread, so they are the same in every replay).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SimEvent {
    /// An agent was spawned.
    Spawn {
        /// Its node.
        node: u32,
        /// Its serial.
        agent: u64,
    },
    /// The scheduler chose an agent to run (one resume).
    Run {
        /// Its node.
        node: u32,
        /// Its serial.
        agent: u64,
    },
    /// An agent sent a message to a local agent.
    Send {
        /// The sender's node.
        node: u32,
        /// The sender's serial.
        from: u64,
        /// The receiver's serial (0 if it is not an agent of this node).
        to: u64,
    },
    /// An agent took messages from its mailbox during a resume.
    Receive {
        /// Its node.
        node: u32,
        /// Its serial.
        agent: u64,
        /// How many it took.
        messages: u64,
    },
    /// An agent exited.
    Exit {
        /// Its node.
        node: u32,
        /// Its serial.
        agent: u64,
        /// How it ended, as printed.
        how: String,
    },
    /// The virtual clock jumped to the next deadline (nothing could run).
    Advance {
        /// The new virtual time, ns since the simulation began.
        to_ns: u64,
    },
    /// Something crossed (or failed to cross) the simulated network.
    Network {
        /// The sending node.
        from: u32,
        /// The receiving node.
        to: u32,
        /// What it was, as printed.
        what: String,
    },
    /// A fault was injected (drawn from the seed or scripted).
    Fault {
        /// Which, as printed.
        what: String,
    },
}

impl SimEvent {
    /// Feeds the event's bytes to `hash`.
    fn hash_into(&self, hash: &mut Fnv) {
        match self {
            SimEvent::Spawn { node, agent } => {
                hash.byte(1);
                hash.u64(u64::from(*node));
                hash.u64(*agent);
            }
            SimEvent::Run { node, agent } => {
                hash.byte(2);
                hash.u64(u64::from(*node));
                hash.u64(*agent);
            }
            SimEvent::Send { node, from, to } => {
                hash.byte(3);
                hash.u64(u64::from(*node));
                hash.u64(*from);
                hash.u64(*to);
            }
            SimEvent::Receive {
                node,
                agent,
                messages,
            } => {
                hash.byte(8);
                hash.u64(u64::from(*node));
                hash.u64(*agent);
                hash.u64(*messages);
            }
            SimEvent::Exit { node, agent, how } => {
                hash.byte(4);
                hash.u64(u64::from(*node));
                hash.u64(*agent);
                hash.bytes(how.as_bytes());
            }
            SimEvent::Advance { to_ns } => {
                hash.byte(5);
                hash.u64(*to_ns);
            }
            SimEvent::Network { from, to, what } => {
                hash.byte(6);
                hash.u64(u64::from(*from));
                hash.u64(u64::from(*to));
                hash.bytes(what.as_bytes());
            }
            SimEvent::Fault { what } => {
                hash.byte(7);
                hash.bytes(what.as_bytes());
            }
        }
    }
}

impl fmt::Display for SimEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimEvent::Spawn { node, agent } => write!(f, "spawn   n{node} <{agent:x}>"),
            SimEvent::Run { node, agent } => write!(f, "run     n{node} <{agent:x}>"),
            SimEvent::Send { node, from, to } => {
                write!(f, "send    n{node} <{from:x}> -> <{to:x}>")
            }
            SimEvent::Receive {
                node,
                agent,
                messages,
            } => write!(f, "receive n{node} <{agent:x}> took {messages}"),
            SimEvent::Exit { node, agent, how } => write!(f, "exit    n{node} <{agent:x}> {how}"),
            SimEvent::Advance { to_ns } => write!(f, "advance to {to_ns} ns"),
            SimEvent::Network { from, to, what } => write!(f, "net     n{from} -> n{to} {what}"),
            SimEvent::Fault { what } => write!(f, "fault   {what}"),
        }
    }
}

/// FNV-1a, 64 bits.
#[derive(Clone, Copy, Debug)]
struct Fnv(u64);

impl Fnv {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;

    fn byte(&mut self, b: u8) {
        self.0 = (self.0 ^ u64::from(b)).wrapping_mul(Fnv::PRIME);
    }

    fn u64(&mut self, x: u64) {
        for b in x.to_le_bytes() {
            self.byte(b);
        }
    }

    fn bytes(&mut self, bytes: &[u8]) {
        self.u64(bytes.len() as u64);
        for &b in bytes {
            self.byte(b);
        }
    }
}

/// The running record of a simulation: a hash and a count of events, the
/// events themselves echoed to stderr while `echo` is on.
#[derive(Debug)]
pub(crate) struct EventLog {
    hash: Fnv,
    events: u64,
    echo: bool,
}

impl EventLog {
    /// An empty log; `echo` prints each event to stderr.
    pub(crate) fn new(echo: bool) -> EventLog {
        EventLog {
            hash: Fnv(Fnv::OFFSET),
            events: 0,
            echo,
        }
    }

    /// Records `event` at virtual time `now_ns`.
    pub(crate) fn record(&mut self, now_ns: u64, event: &SimEvent) {
        self.events += 1;
        event.hash_into(&mut self.hash);
        if self.echo {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(
                err,
                "[sim {:>10}.{:06} ms] {event}",
                now_ns / 1_000_000,
                now_ns % 1_000_000
            );
        }
    }

    /// The hash of every event so far.
    pub(crate) fn hash(&self) -> u64 {
        self.hash.0
    }

    /// Events so far.
    pub(crate) fn events(&self) -> u64 {
        self.events
    }

    /// Turns the echo to stderr on or off.
    pub(crate) fn set_echo(&mut self, echo: bool) {
        self.echo = echo;
    }
}

#[cfg(test)]
mod tests {
    use super::{EventLog, SimEvent};

    #[test]
    fn the_same_events_hash_alike_and_an_order_change_shows() {
        let a = SimEvent::Run { node: 0, agent: 1 };
        let b = SimEvent::Run { node: 0, agent: 2 };
        let mut one = EventLog::new(false);
        let mut two = EventLog::new(false);
        let mut three = EventLog::new(false);
        for (log, events) in [
            (&mut one, [&a, &b]),
            (&mut two, [&a, &b]),
            (&mut three, [&b, &a]),
        ] {
            for event in events {
                log.record(0, event);
            }
        }
        assert_eq!(one.hash(), two.hash());
        assert_ne!(one.hash(), three.hash());
        assert_eq!(one.events(), 2);
    }
}
