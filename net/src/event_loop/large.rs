//! Large packets, received side: decoded off the loop, delivered in order.
//!
//! Decoding a 64 MiB message (two copies of it) takes the loop tens of
//! milliseconds, during which no other packet of any connection would be
//! read or delivered. So:
//!
//! 1. A packet put together from fragments (fragments.rs) that is a message
//!    or a reply goes to the node's decoder thread (started on first use),
//!    and its receiving agent is marked as decoding.
//! 2. A packet for an agent marked decoding waits in that agent's list; a
//!    packet that names no agent (by name, a spawn) waits at the barrier
//!    while any agent is decoding, and once the barrier holds something,
//!    every packet waits behind it. Other packets are handled at once.
//! 3. The decoder hands the result back (`Command::Decoded`); the loop
//!    delivers it, then what waited for that agent, in order, until the list
//!    is empty or another large packet starts decoding; with no agent
//!    decoding, then the barrier's list.
//! 4. A packet that does not decode closes its connection, as on the loop;
//!    a message that does not decode is dropped and counted.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc;
use std::sync::Arc;

use erlangen_runtime::Tag;
use mio::Token;

use crate::command::{Command, Decoded};
use crate::fragments::Key;
use crate::pid;
use crate::shared::NodeShared;
use crate::wire::{self, MessageView, Packet};

use super::EventLoop;

/// A packet that waits (step 2).
pub(super) enum Waiting {
    /// Decoded already.
    Packet(Token, Packet),
    /// Put together from fragments, not decoded yet.
    Large(Token, Vec<u8>),
}

/// A large packet for the decoder.
struct Job {
    token: Token,
    /// The receiving agent's serial (read by `receiver_of`).
    to: u64,
    bytes: Vec<u8>,
}

/// The received side's state (step 2).
#[derive(Default)]
pub(super) struct LargeIn {
    /// Agents whose large packet is being decoded, with what waits for
    /// each.
    decoding: HashMap<u64, VecDeque<Waiting>>,
    /// What waits for every decoding agent.
    barrier: VecDeque<Waiting>,
    /// The decoder thread's queue, once started.
    jobs: Option<mpsc::Sender<Job>>,
}

/// The agent a large packet's bytes are for, if it is a message or a reply
/// (one that does not decode is decoded, and refused, on the loop).
fn receiver_of(bytes: &[u8]) -> Option<u64> {
    Some(MessageView::read_large(bytes)?.ok()?.to)
}

impl EventLoop {
    /// Whether no agent's large packet is decoding and nothing waits (step
    /// 2 has nothing to hold back).
    pub(super) fn large_in_idle(&self) -> bool {
        self.large_in.decoding.is_empty() && self.large_in.barrier.is_empty()
    }

    /// Step 2: whether a packet with `key` must wait; it is then queued.
    pub(super) fn large_must_wait(&mut self, key: Key, waiting: Waiting) -> Option<Waiting> {
        if self.large_in_idle() {
            return Some(waiting);
        }
        let state = &mut self.large_in;
        match key {
            Key::Free => Some(waiting),
            Key::Agent(to) if state.barrier.is_empty() => match state.decoding.get_mut(&to) {
                Some(list) => {
                    list.push_back(waiting);
                    None
                }
                None => Some(waiting),
            },
            _ => {
                state.barrier.push_back(waiting);
                None
            }
        }
    }

    /// Steps 1 and 2 for a packet put together from fragments.
    pub(super) fn on_large_packet(&mut self, token: Token, bytes: Vec<u8>) -> Result<(), String> {
        let Some(to) = receiver_of(&bytes) else {
            // Not a message or reply (a large spawn, a message by name):
            // decoded here, after what it must not overtake.
            let key = Key::Barrier;
            return match self.large_must_wait(key, Waiting::Large(token, bytes)) {
                Some(Waiting::Large(token, bytes)) => self.decode_here(token, &bytes),
                _ => Ok(()),
            };
        };
        match self.large_must_wait(Key::Agent(to), Waiting::Large(token, bytes)) {
            Some(Waiting::Large(token, bytes)) => {
                self.start_decoding(token, to, bytes);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// A large packet decoded on the loop (one that names no agent).
    fn decode_here(&mut self, token: Token, bytes: &[u8]) -> Result<(), String> {
        let packet = {
            let _context = pid::enter(&*self.shared);
            wire::decode_large_packet(bytes).map_err(|e| format!("bad fragmented packet: {e}"))?
        };
        self.on_packet(token, packet)
    }

    /// Step 1: the decoder takes it; `to` waits for it.
    fn start_decoding(&mut self, token: Token, to: u64, bytes: Vec<u8>) {
        self.large_in.decoding.entry(to).or_default();
        let jobs = self
            .large_in
            .jobs
            .get_or_insert_with(|| start_decoder(self.shared.clone()));
        if jobs.send(Job { token, to, bytes }).is_err() {
            tracing::error!("erlangen: the node's decoder thread is gone");
        }
    }

    /// Step 3: a decoded large packet, then what waited for its agent.
    pub(super) fn on_decoded(&mut self, decoded: Decoded) {
        let Decoded {
            token,
            to,
            tag,
            message,
        } = decoded;
        match message {
            Ok(message) => match (self.shared.local(to), tag) {
                (Some(pid), None) => self.shared.runtime.send(&pid, message),
                (Some(pid), Some(tag)) => {
                    self.shared.runtime.reply(&pid, Tag::from_id(tag), message)
                }
                (None, _) => {
                    self.shared
                        .dropped
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            },
            Err((close, why)) => {
                self.shared
                    .dropped
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if close {
                    self.close(token, &why);
                } else if let Some(held) = self.log.allow("undecodable-message") {
                    tracing::warn!(%why, held, "erlangen: a message that does not decode was dropped");
                }
            }
        }
        let mut list = self.large_in.decoding.remove(&to).unwrap_or_default();
        while let Some(waiting) = list.pop_front() {
            match waiting {
                Waiting::Packet(token, packet) => {
                    if let Err(why) = self.on_packet(token, packet) {
                        self.close(token, &why);
                    }
                }
                Waiting::Large(token, bytes) => {
                    // It decodes in turn; the rest waits for it.
                    self.start_decoding(token, to, bytes);
                    if let Some(rest) = self.large_in.decoding.get_mut(&to) {
                        rest.extend(list);
                    }
                    return;
                }
            }
        }
        while self.large_in.decoding.is_empty() {
            let Some(waiting) = self.large_in.barrier.pop_front() else {
                return;
            };
            let result = match waiting {
                Waiting::Packet(token, packet) => {
                    self.on_packet(token, packet).map_err(|e| (token, e))
                }
                Waiting::Large(token, bytes) => {
                    self.on_large_packet(token, bytes).map_err(|e| (token, e))
                }
            };
            if let Err((token, why)) = result {
                self.close(token, &why);
            }
        }
    }
}

/// Starts the decoder thread: it decodes each job's packet and message in
/// the node's pid context and hands the result to the loop.
fn start_decoder(shared: Arc<NodeShared>) -> mpsc::Sender<Job> {
    let (jobs, queue) = mpsc::channel::<Job>();
    let spawned = std::thread::Builder::new()
        .name(format!("erlangen-decode-{}", shared.name))
        .stack_size(super::LOOP_STACK_BYTES)
        .spawn(move || {
            while let Ok(Job { token, to, bytes }) = queue.recv() {
                let decoded = decode(&shared, token, to, &bytes);
                drop(bytes);
                shared.push(Command::Decoded(Box::new(decoded)));
            }
        });
    if let Err(error) = spawned {
        tracing::error!(%error, "erlangen: cannot start the node's decoder thread");
    }
    jobs
}

/// One job's work (step 1).
fn decode(shared: &NodeShared, token: Token, to: u64, bytes: &[u8]) -> Decoded {
    let _context = pid::enter(shared);
    let view = match MessageView::read_large(bytes) {
        Some(Ok(view)) => view,
        Some(Err(error)) => {
            return Decoded {
                token,
                to,
                tag: None,
                message: Err((true, format!("bad fragmented packet: {error}"))),
            }
        }
        None => {
            return Decoded {
                token,
                to,
                tag: None,
                message: Err((true, "a large packet changed kind".to_owned())),
            }
        }
    };
    // Decoded from the packet's own bytes: the message's are not copied
    // first.
    let tag = view.tag;
    let message = shared
        .types
        .decode_message(view.type_name, view.body)
        .map_err(|error| (false, format!("{}: {error}", view.type_name)));
    Decoded {
        token,
        to,
        tag,
        message,
    }
}
