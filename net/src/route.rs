//! `PeerRoute`: the runtime's way to a remote node ([`Remote`]). It never
//! blocks: it encodes a message on the sender's thread (so that a message
//! too large for the wire is refused to its sender), then writes it to the
//! peer's socket itself when the connection's outbox allows (outbox.rs),
//! else queues a command for the node's event loop and wakes it once per
//! burst (node.rs `push`).

use std::sync::atomic::Ordering;
use std::sync::Weak;

use erlangen_runtime::{Error, Message, Pid, Remote, RemotePid, RemoteSignal};

use crate::command::{Command, Target};
use crate::outbox::Direct;
use crate::shared::NodeShared;
use crate::wire::Packet;

/// The route to one remote node, shared by all its pids.
#[derive(Debug)]
pub(crate) struct PeerRoute {
    /// The local node (weakly: a pid may outlive it; sends are then
    /// dropped).
    pub(crate) shared: Weak<NodeShared>,
}

impl Remote for PeerRoute {
    /// Encodes `message` here, on the sender's thread (its size is known
    /// before anything is queued), then writes it or queues it for the
    /// loop.
    fn send(&self, to: &RemotePid, message: Message) -> Result<(), Error> {
        self.send_message(to, None, message, false).map(|_| ())
    }

    fn send_from_worker(&self, to: &RemotePid, message: Message) -> Result<bool, Error> {
        self.send_message(to, None, message, true)
    }

    /// Encodes the reply here, as `send` does; its node files it under
    /// `tag`.
    fn reply(&self, to: &RemotePid, tag: u64, message: Message) -> Result<(), Error> {
        self.send_message(to, Some(tag), message, false).map(|_| ())
    }

    fn reply_from_worker(&self, to: &RemotePid, tag: u64, message: Message) -> Result<bool, Error> {
        self.send_message(to, Some(tag), message, true)
    }

    fn flush(&self) {
        if let Some(shared) = self.shared.upgrade() {
            shared.flush_owed();
        }
    }

    fn signal(&self, from: Option<&Pid>, to: &RemotePid, signal: RemoteSignal) {
        if let Some(shared) = self.shared.upgrade() {
            shared.signal(from, to, signal);
        }
    }

    fn busy(&self, _to: &RemotePid) -> bool {
        self.shared.upgrade().is_some_and(|shared| shared.busy())
    }
}

impl PeerRoute {
    /// Sends `message` to `to` (as the reply to its call `tag`, if any):
    /// written by this thread when outbox.rs step 2 allows (left for the
    /// worker's flush if `defer`, saying so), else queued for the loop.
    fn send_message(
        &self,
        to: &RemotePid,
        tag: Option<u64>,
        message: Message,
        defer: bool,
    ) -> Result<bool, Error> {
        let Some(shared) = self.shared.upgrade() else {
            return Ok(false);
        };
        let message = shared.encode_message(&message)?;
        let to = Target::of(to);
        let packet = match tag {
            Some(tag) => Packet::Reply {
                to: to.serial,
                tag,
                message,
            },
            None => Packet::Message {
                to: to.serial,
                message,
            },
        };
        let Some(outbox) = shared.outboxes.get(&to.node) else {
            shared.push(command_of(to, packet));
            return Ok(false);
        };
        let settled = || shared.unsettled.load(Ordering::Acquire) == 0;
        match outbox.try_write(packet, to.incarnation, defer, settled) {
            Direct::Sent => Ok(false),
            Direct::Deferred => {
                shared.owe(outbox);
                Ok(true)
            }
            Direct::Appended => Ok(true),
            Direct::Failed | Direct::HandOver => {
                shared.push(Command::Flush { node: to.node });
                Ok(false)
            }
            Direct::Refused(packet) => {
                shared.push(command_of(to, packet));
                Ok(false)
            }
        }
    }
}

/// The loop's command for a message or reply packet to `to`.
fn command_of(to: Target, packet: Packet) -> Command {
    match packet {
        Packet::Reply { tag, message, .. } => Command::Reply { to, tag, message },
        Packet::Message { message, .. } => Command::Send { to, message },
        _ => unreachable!("only messages and replies are sent through a route"),
    }
}
