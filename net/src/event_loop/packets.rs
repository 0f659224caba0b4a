//! Packets both ways: commands made packets (messages, replies, signals,
//! spawns) and packets delivered to the runtime, with remote spawns and
//! their replies.

use std::sync::atomic::Ordering;

use erlangen_runtime::{ExitReason, Message, Pid, RemoteSignal, SpawnOptions};
use mio::Token;

use crate::command::Target;
use crate::config::ERROR_TEXT_BYTES_MAX;
use crate::shared::SpawnResult;
use crate::wire::{MessageView, Packet, WireAttach, WireMessage, WireSignal};
use crate::{pid, wire};

use super::{Command, EventLoop, LOGGED_TYPES_MAX};

impl EventLoop {
    /// Appends a command's packet to `token`'s write buffer.
    pub(super) fn send_on(&mut self, token: Token, command: Command) {
        self.settle(&command);
        self.record_outbound_edge(&command);
        let Some(connection) = self.connections.get(&token) else {
            return;
        };
        let incarnation = connection.peer_incarnation;
        if let Command::SendEncoded {
            to,
            type_name,
            head,
            bytes,
        } = command
        {
            self.send_encoded(token, incarnation, &to, &type_name, (head, bytes));
            return;
        }
        let packet = {
            let _context = pid::enter(&*self.shared);
            self.packet_of(command, incarnation, token)
        };
        let Some(packet) = packet else {
            return;
        };
        // Encoded straight into the write buffer (no body allocation per
        // packet).
        if let Err(error) = self.write_packet(token, &packet) {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            if let Some(held) = self.log.allow("unwritable-packet") {
                tracing::warn!(%error, held, "erlangen: cannot write a packet; dropped");
            }
        }
    }

    /// A large packet its sender encoded: moved into the connection's
    /// outbox (no copy on the loop), if it is for the peer's incarnation and
    /// of a type the peer decodes; else dropped and counted.
    fn send_encoded(
        &mut self,
        token: Token,
        incarnation: u64,
        to: &Target,
        type_name: &str,
        (head, bytes): (Vec<u8>, Vec<u8>),
    ) {
        if to.incarnation != incarnation {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if !self.peer_decodes(type_name, token) {
            return;
        }
        if let Some(connection) = self.connections.get(&token) {
            connection
                .outbox
                .lock()
                .append_encoded(crate::fragments::Held {
                    key: crate::fragments::Key::Agent(to.serial),
                    head,
                    bytes,
                });
        }
    }

    /// The packet for a command (on the loop, in the codec's context), or
    /// `None` if it is dropped (stale incarnation, unregistered type).
    pub(super) fn packet_of(
        &mut self,
        command: Command,
        incarnation: u64,
        token: Token,
    ) -> Option<Packet> {
        match command {
            Command::Send { to, message } => {
                if to.incarnation != incarnation {
                    self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
                let message = self.wire_message(message, token)?;
                Some(Packet::Message {
                    to: to.serial,
                    message,
                })
            }
            Command::SendNamed { name, message, .. } => {
                let message = self.wire_message(message, token)?;
                Some(Packet::Named { name, message })
            }
            Command::Signal { from, to, signal } => {
                if to.incarnation != incarnation {
                    self.answer_stale(from.as_ref(), &to, &signal);
                    return None;
                }
                let from_id = from.as_ref().and_then(|pid| self.shared.id_of(pid));
                Some(Packet::Signal {
                    from: from_id,
                    to: to.serial,
                    signal: self.wire_signal(&signal)?,
                })
            }
            Command::Reply { to, tag, message } => {
                if to.incarnation != incarnation {
                    self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
                let message = self.wire_message(message, token)?;
                Some(Packet::Reply {
                    to: to.serial,
                    tag,
                    message,
                })
            }
            Command::Spawn {
                node,
                request,
                parent,
                attach,
                function,
                args,
                args_type,
                mailbox_len,
            } => {
                let args = match args() {
                    Ok(args) => args,
                    Err(error) => {
                        self.spawn_failed(
                            &parent,
                            request,
                            format!("cannot encode the arguments: {error}"),
                        );
                        return None;
                    }
                };
                let Some(parent_id) = self.shared.id_of(&parent) else {
                    self.spawn_failed(
                        &parent,
                        request,
                        "the caller is not an agent of this node's runtime".to_owned(),
                    );
                    return None;
                };
                self.spawns.insert(request, (node, parent, attach));
                Some(Packet::Spawn {
                    request,
                    parent: parent_id,
                    attach,
                    function,
                    args,
                    mailbox_len,
                    args_type: args_type.to_owned(),
                })
            }
            Command::Whereis {
                node,
                caller,
                tag,
                name,
            } => Some(self.whereis_packet(node, caller, tag, name)),
            _ => None,
        }
    }

    /// A message's wire form, if the peer announced its type with the
    /// same fingerprint.
    pub(super) fn wire_message(
        &mut self,
        message: WireMessage,
        token: Token,
    ) -> Option<WireMessage> {
        self.peer_decodes(&message.type_name, token)
            .then_some(message)
    }

    /// Whether the peer of `token` announced `type_name` with our
    /// fingerprint; if not, the message is counted as dropped (and its type
    /// logged once).
    fn peer_decodes(&mut self, type_name: &str, token: Token) -> bool {
        let theirs = self
            .connections
            .get(&token)
            .and_then(|c| c.peer_types.get(type_name));
        if theirs.is_some() && theirs.copied() == self.shared.types.fingerprint(type_name) {
            return true;
        }
        self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        if self.logged_types.len() < LOGGED_TYPES_MAX
            && self.logged_types.insert(type_name.to_owned())
        {
            tracing::warn!(%type_name, "erlangen: a message type not registered for distribution on both nodes was dropped (logged once per type)");
        }
        false
    }

    /// A signal's wire form (`None` for a kind this protocol does not
    /// carry: dropped, never sent as something else).
    pub(super) fn wire_signal(&self, signal: &RemoteSignal) -> Option<WireSignal> {
        self.shared.types.encode_signal(signal)
    }

    /// A command for our own node: only ids of ours that did not resolve
    /// to a live agent when they came back (stale ones) get here.
    pub(super) fn deliver_here(&mut self, command: Command) {
        self.settle(&command);
        match command {
            // Stale ids of ours (a live one resolves before it is sent), or
            // names here (`Node::send_named` delivers those itself): count.
            Command::Send { .. }
            | Command::SendEncoded { .. }
            | Command::SendNamed { .. }
            | Command::Reply { .. }
            | Command::ErlangSend { .. } => {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Command::Signal { from, to, signal } => match (self.own(&to), signal) {
                (Some(target), RemoteSignal::Kill(reason)) => {
                    self.shared.runtime.kill(&target, reason);
                }
                // A link, monitor or edge signal by an id of ours that did
                // not resolve to a live agent: `noproc` for a link or monitor.
                (_, signal) => self.answer_stale(from.as_ref(), &to, &signal),
            },
            Command::Spawn {
                parent, request, ..
            } => {
                self.spawn_failed(
                    &parent,
                    request,
                    "spawn on the own node: use ctx.spawn".to_owned(),
                );
            }
            Command::Whereis {
                caller, tag, name, ..
            } => {
                let found = self.shared.runtime.whereis(&name);
                self.answer_whereis(&caller, tag, Ok(found));
            }
            _ => {}
        }
    }

    pub(super) fn own(&self, to: &Target) -> Option<Pid> {
        (to.incarnation == self.shared.incarnation)
            .then(|| self.shared.local(to.serial))
            .flatten()
    }

    /// A message or reply read in place (wire.rs `MessageView`): delivered
    /// at once unless its agent's large message is still decoding, in
    /// which case it waits, owned (large.rs step 2).
    pub(super) fn on_message_view(
        &mut self,
        token: Token,
        view: MessageView<'_>,
    ) -> Result<(), String> {
        if !self.large_in_idle() {
            let key = crate::fragments::Key::Agent(view.to);
            let waiting = super::large::Waiting::Packet(token, view.to_packet());
            return match self.large_must_wait(key, waiting) {
                Some(super::large::Waiting::Packet(token, packet)) => self.on_packet(token, packet),
                _ => Ok(()),
            };
        }
        self.deliver_message(view.to, view.tag, view.type_name, view.body);
        Ok(())
    }

    /// Decodes a message (or the reply to call `tag`) for the local agent
    /// `to` and delivers it; one for an agent that is gone is dropped and
    /// counted.
    fn deliver_message(&mut self, to: u64, tag: Option<u64>, type_name: &str, body: &[u8]) {
        let Some(message) = self.decode_message(type_name, body) else {
            return;
        };
        match (self.shared.local(to), tag) {
            (Some(pid), None) => self.shared.runtime.send(&pid, message),
            (Some(pid), Some(tag)) => {
                let tag = erlangen_runtime::Tag::from_id(tag);
                self.shared.runtime.reply(&pid, tag, message);
            }
            (None, _) => {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The peer's name on connection `token`.
    fn peer_of(&self, token: Token) -> Result<String, String> {
        Ok(self
            .connections
            .get(&token)
            .and_then(|c| c.peer.clone())
            .ok_or("gone")?)
    }

    /// A packet from an established connection.
    pub(super) fn on_packet(&mut self, token: Token, packet: Packet) -> Result<(), String> {
        match packet {
            Packet::Message { to, message } => {
                self.deliver_message(to, None, &message.type_name, &message.body);
            }
            Packet::Reply { to, tag, message } => {
                self.deliver_message(to, Some(tag), &message.type_name, &message.body);
            }
            Packet::Named { name, message } => {
                if let Some(message) = self.decode_message(&message.type_name, &message.body) {
                    match self.shared.runtime.whereis(&name) {
                        Some(pid) => self.shared.runtime.send(&pid, message),
                        None => {
                            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            Packet::Signal { from, to, signal } => {
                let peer = self.peer_of(token)?;
                self.on_signal(&peer, from, to, signal)?;
            }
            Packet::Spawn {
                request,
                parent,
                attach,
                function,
                args,
                mailbox_len,
                args_type,
            } => {
                let peer = self.peer_of(token)?;
                self.on_spawn(
                    token,
                    &peer,
                    request,
                    parent,
                    attach,
                    &function,
                    (&args, &args_type),
                    mailbox_len,
                );
            }
            Packet::SpawnReply {
                request,
                parent: _,
                result,
            } => self.on_spawn_reply(token, request, result),
            Packet::Whereis { request, name } => self.on_whereis(token, request, &name),
            Packet::WhereisReply { request, found } => {
                let peer = self.peer_of(token)?;
                self.on_whereis_reply(token, &peer, request, found);
            }
            Packet::Peers { nodes } => {
                let peer = self.peer_of(token)?;
                self.on_peers(&peer, nodes)?;
            }
            Packet::Groups { joined, left } => {
                let peer = self.peer_of(token)?;
                let incarnation = self
                    .connections
                    .get(&token)
                    .map_or(0, |c| c.peer_incarnation);
                self.on_groups(&peer, incarnation, joined, left)?;
            }
            Packet::Globals {
                registered,
                released,
            } => {
                let peer = self.peer_of(token)?;
                let incarnation = self
                    .connections
                    .get(&token)
                    .map_or(0, |c| c.peer_incarnation);
                self.on_globals(&peer, incarnation, registered, released)?;
            }
        }
        Ok(())
    }

    /// A message from its wire form; one that does not decode here (an
    /// unknown type, or a value past `VALUE_DECODE_BYTES_MAX`) is dropped
    /// and counted, and its connection stays up: the frame around it was
    /// sound.
    pub(super) fn decode_message(&mut self, type_name: &str, body: &[u8]) -> Option<Message> {
        let decoded = {
            let _context = pid::enter(&*self.shared);
            self.shared.types.decode_message(type_name, body)
        };
        match decoded {
            Ok(message) => Some(message),
            Err(error) => {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                if let Some(held) = self.log.allow("undecodable-message") {
                    let type_name = wire::bounded_text(type_name.to_owned(), 256);
                    tracing::warn!(%type_name, %error, held, "erlangen: a message that does not decode was dropped");
                }
                None
            }
        }
    }

    pub(super) fn on_signal(
        &mut self,
        peer: &str,
        from: Option<crate::id::AgentId>,
        to: u64,
        signal: WireSignal,
    ) -> Result<(), String> {
        let signal = self
            .shared
            .types
            .decode_signal(signal)
            .map_err(|e| e.to_string())?;
        let from = match from {
            Some(id) if id.node.to_string() == peer => Some(self.shared.pid_of(&id)),
            Some(_) => return Err("a signal from an agent of another node".to_owned()),
            None => None,
        };
        let target = self.shared.local(to);
        match (target, from) {
            (Some(target), Some(from)) => {
                self.record_edge(peer, &target, &from, &signal, false);
                self.record_watch(peer, &target, &from, &signal, false);
                self.shared.runtime.signal(&from, &target, signal);
            }
            (Some(target), None) => {
                if let RemoteSignal::Kill(reason) = signal {
                    self.shared.runtime.kill(&target, reason);
                }
            }
            (None, Some(from)) => {
                // The target is gone: a link or monitor gets noproc.
                if let (Some(answer), Some(remote)) = (signal.noproc_answer(), from.as_remote()) {
                    self.reply_from_serial(peer, to, Target::of(remote), &answer);
                }
            }
            (None, None) => {}
        }
        Ok(())
    }

    /// Sends `signal` to `to` as from our (missing) agent `serial`.
    pub(super) fn reply_from_serial(
        &mut self,
        peer: &str,
        serial: u64,
        to: Target,
        signal: &RemoteSignal,
    ) {
        let Some(&token) = self.up.get(peer) else {
            return;
        };
        let Some(signal) = self.wire_signal(signal) else {
            return;
        };
        let packet = Packet::Signal {
            from: Some(crate::id::AgentId {
                node: self.shared.name.clone(),
                incarnation: self.shared.incarnation,
                serial,
            }),
            to: to.serial,
            signal,
        };
        let _ = self.write_packet(token, &packet);
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_spawn(
        &mut self,
        token: Token,
        peer: &str,
        request: u64,
        parent: crate::id::AgentId,
        attach: WireAttach,
        function: &str,
        (args, args_type): (&[u8], &str),
        mailbox_len: Option<u32>,
    ) {
        let parent_pid = self.shared.pid_of(&parent);
        let mut options = SpawnOptions::new().attach(match attach {
            WireAttach::None => None,
            WireAttach::Link => Some(erlangen_runtime::Attach::Link),
            WireAttach::Monitor => Some(erlangen_runtime::Attach::Monitor),
        });
        if let Some(len) = mailbox_len {
            options = options.mailbox_len(len as usize);
        }
        let started = {
            let _context = pid::enter(&*self.shared);
            self.shared.functions.start(
                function,
                &self.shared.runtime,
                args,
                args_type,
                options,
                (attach != WireAttach::None).then_some(&parent_pid),
                &mut |_| {},
            )
        };
        let result = match started {
            Ok(child) => {
                let id = self
                    .shared
                    .id_of(&child)
                    .expect("spawned on this node's runtime");
                if attach != WireAttach::None {
                    self.remember_edge(peer, &child, &parent_pid, false);
                }
                Ok(id.serial)
            }
            Err(why) => Err(why),
        };
        let packet = Packet::SpawnReply {
            request,
            parent: parent.serial,
            result: result.map_err(|why| wire::bounded_text(why, ERROR_TEXT_BYTES_MAX)),
        };
        if let Err(error) = self.write_packet(token, &packet) {
            tracing::warn!(%error, "erlangen: cannot write a spawn reply");
        }
    }

    /// A spawn's caller gave up waiting (`Command::CancelSpawn`): fail the
    /// request if it is still pending here, whether written or waiting for
    /// its node. Its caller then finds exactly one answer.
    pub(super) fn cancel_spawn(&mut self, request: u64) {
        const WHY: &str = "timed out waiting for the node's answer";
        if let Some((_, parent, _)) = self.spawns.remove(&request) {
            self.spawn_failed(&parent, request, WHY.to_owned());
            return;
        }
        for waiting in self.waiting.values_mut() {
            let at = waiting.iter().position(
                |command| matches!(command, Command::Spawn { request: r, .. } if *r == request),
            );
            if let Some(Command::Spawn { parent, .. }) = at.and_then(|at| waiting.remove(at)) {
                self.spawn_failed(&parent, request, WHY.to_owned());
                return;
            }
        }
    }

    pub(super) fn on_spawn_reply(
        &mut self,
        token: Token,
        request: u64,
        result: Result<u64, String>,
    ) {
        let Some((node, parent, attach)) = self.spawns.remove(&request) else {
            // Its caller gave up: a child started after all must not live
            // on unseen.
            if let (Ok(serial), Some(connection)) = (result, self.connections.get(&token)) {
                let target = Target {
                    node: connection.peer.clone().unwrap_or_default(),
                    incarnation: connection.peer_incarnation,
                    serial,
                };
                let command = Command::Signal {
                    from: None,
                    to: target,
                    signal: RemoteSignal::Kill(ExitReason::other(
                        "its remote spawn was cancelled by the caller",
                    )),
                };
                self.send_on(token, command);
            }
            return;
        };
        let incarnation = self
            .connections
            .get(&token)
            .map_or(0, |c| c.peer_incarnation);
        let result = result.map(|serial| {
            let target = Target {
                node: node.clone(),
                incarnation,
                serial,
            };
            let child = self.remote_pid(&target);
            if attach != WireAttach::None {
                if self.shared.runtime.attach_half(&parent, &child) {
                    let down = attach == WireAttach::Monitor;
                    self.remember_edge(&node, &parent, &child, down);
                } else {
                    // The caller died meanwhile: its death kills the child.
                    let command = Command::Signal {
                        from: Some(parent.clone()),
                        to: target,
                        signal: RemoteSignal::EdgeExit(ExitReason::NoProc),
                    };
                    self.send_on(token, command);
                }
            }
            child
        });
        self.shared
            .runtime
            .send(&parent, Message::new(SpawnResult { request, result }));
    }

    pub(super) fn spawn_failed(&self, parent: &Pid, request: u64, why: String) {
        self.shared.runtime.send(
            parent,
            Message::new(SpawnResult {
                request,
                result: Err(why),
            }),
        );
    }

    /// A command leaves the backlog (written, delivered here, or dropped).
    pub(super) fn settle(&self, command: &Command) {
        if command.is_backlog() {
            self.shared.backlog_commands.fetch_sub(1, Ordering::Relaxed);
        }
    }

    pub(super) fn drop_command(&mut self, command: Command, why: &str) {
        self.settle(&command);
        match command {
            Command::Spawn {
                parent, request, ..
            } => self.spawn_failed(&parent, request, why.to_owned()),
            Command::Whereis { caller, tag, .. } => {
                self.answer_whereis(&caller, tag, Err(why.to_owned()));
            }
            Command::Send { .. }
            | Command::SendEncoded { .. }
            | Command::SendNamed { .. }
            | Command::Reply { .. }
            | Command::ErlangSend { .. } => {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }
}
