//! Remote name lookups (`Node::whereis`): the loop's half.
//!
//! 1. An agent queues `Command::Whereis` with a tag it opened; when the
//!    command is written, the loop numbers it and records the caller under
//!    that number in `lookups`.
//! 2. The peer answers `WhereisReply` with the registered agent's serial
//!    (or `None`), looked up when the request is read.
//! 3. The loop files the answer under the caller's tag (a `Whereabouts`),
//!    where the caller's wait finds it in O(1); a caller that stopped
//!    waiting closed its tag, and the runtime drops the answer.
//! 4. Every lookup gets exactly one answer: a lost, stopped or
//!    unreachable node fails those pending for it with the reason.

use erlangen_runtime::{Message, Pid, Tag};
use mio::Token;

use crate::command::Target;
use crate::shared::Whereabouts;
use crate::wire::Packet;

use super::EventLoop;

/// A lookup written to its node and not yet answered.
pub(super) struct Lookup {
    /// The node asked.
    node: String,
    /// Who waits for the answer.
    caller: Pid,
    /// The caller's tag.
    tag: u64,
}

impl EventLoop {
    /// Step 1: the packet for a lookup of `name` on `node`.
    pub(super) fn whereis_packet(
        &mut self,
        node: String,
        caller: Pid,
        tag: u64,
        name: String,
    ) -> Packet {
        let request = self.next_lookup;
        self.next_lookup += 1;
        self.lookups.insert(request, Lookup { node, caller, tag });
        Packet::Whereis { request, name }
    }

    /// Step 2: a peer asks for one of our names.
    pub(super) fn on_whereis(&mut self, token: Token, request: u64, name: &str) {
        let found = self
            .shared
            .runtime
            .whereis(name)
            .and_then(|pid| self.shared.id_of(&pid))
            .map(|id| id.serial);
        if let Err(error) = self.write_packet(token, &Packet::WhereisReply { request, found }) {
            tracing::warn!(%error, "erlangen: cannot write a lookup's answer");
        }
    }

    /// Step 3: a peer's answer. One for a request we did not make of this
    /// peer is ignored.
    pub(super) fn on_whereis_reply(
        &mut self,
        token: Token,
        peer: &str,
        request: u64,
        found: Option<u64>,
    ) {
        if self
            .lookups
            .get(&request)
            .is_none_or(|lookup| lookup.node != peer)
        {
            return;
        }
        let Some(lookup) = self.lookups.remove(&request) else {
            return;
        };
        let incarnation = self
            .connections
            .get(&token)
            .map_or(0, |connection| connection.peer_incarnation);
        let found = found.map(|serial| {
            self.remote_pid(&Target {
                node: lookup.node.clone(),
                incarnation,
                serial,
            })
        });
        self.answer_whereis(&lookup.caller, lookup.tag, Ok(found));
    }

    /// Step 4: fails the lookups pending for `peer` (all of them if
    /// `None`) with `why`.
    pub(super) fn fail_lookups(&mut self, peer: Option<&str>, why: &str) {
        let failed: Vec<u64> = self
            .lookups
            .iter()
            .filter(|(_, lookup)| peer.is_none_or(|peer| lookup.node == peer))
            .map(|(request, _)| *request)
            .collect();
        for request in failed {
            if let Some(lookup) = self.lookups.remove(&request) {
                self.answer_whereis(&lookup.caller, lookup.tag, Err(why.to_owned()));
            }
        }
    }

    /// Files a lookup's answer under its caller's tag.
    pub(super) fn answer_whereis(
        &self,
        caller: &Pid,
        tag: u64,
        answer: Result<Option<Pid>, String>,
    ) {
        self.shared
            .runtime
            .reply(caller, Tag::from_id(tag), Message::new(Whereabouts(answer)));
    }
}
