//! `PeerRoute`: the runtime's way to a remote node ([`Remote`]). It never
//! blocks: it encodes a message on the sender's thread (so that a message
//! too large for the wire is refused to its sender), then writes it to the
//! peer's socket itself when the connection's outbox allows (outbox.rs),
//! else queues a command for the node's event loop and wakes it once per
//! burst (node/mod.rs `push`).

use std::sync::atomic::Ordering;
use std::sync::Weak;

use erlangen_runtime::{Error, Message, Pid, Remote, RemotePid, RemoteSignal, Sent};

use crate::command::{Command, Target};
use crate::config::LARGE_BACKLOG_BYTES_HIGH_WATER;
use crate::fragments;
use crate::outbox::Direct;
use crate::shared::NodeShared;
use crate::wire::{self, Packet, WireMessage};

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
        self.send_message(0, to, None, message, false).map(|_| ())
    }

    fn send_from_worker(
        &self,
        sender: u64,
        to: &RemotePid,
        message: Message,
    ) -> Result<Sent, Error> {
        self.send_message(sender, to, None, message, true)
    }

    /// Encodes the reply here, as `send` does; its node files it under
    /// `tag`.
    fn reply(&self, to: &RemotePid, tag: u64, message: Message) -> Result<(), Error> {
        self.send_message(0, to, Some(tag), message, false)
            .map(|_| ())
    }

    fn reply_from_worker(
        &self,
        sender: u64,
        to: &RemotePid,
        tag: u64,
        message: Message,
    ) -> Result<Sent, Error> {
        self.send_message(sender, to, Some(tag), message, true)
    }

    /// A sender told to wait goes on waiting while the node holds more
    /// than `config::LARGE_BACKLOG_BYTES_HIGH_WATER` of large messages, or
    /// while the buffer of `to`'s connection is past its high-water mark
    /// (outbox.rs step 2c).
    fn holds_sender(&self, to: &RemotePid) -> bool {
        self.shared.upgrade().is_some_and(|shared| {
            shared.outboxes.large_bytes() > LARGE_BACKLOG_BYTES_HIGH_WATER
                || shared
                    .outboxes
                    .get(to.node())
                    .is_some_and(|outbox| outbox.is_full())
        })
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
    /// worker's flush if `defer`, saying so), else queued for the loop. A
    /// large message's sender is told to wait while the node holds too
    /// many bytes of large messages.
    fn send_message(
        &self,
        sender: u64,
        to: &RemotePid,
        tag: Option<u64>,
        message: Message,
        defer: bool,
    ) -> Result<Sent, Error> {
        let Some(shared) = self.shared.upgrade() else {
            return Ok(Sent::default());
        };
        let message = shared.encode_message(&message)?;
        let bytes = message.body.len();
        let large = fragments::is_large(&message);
        let (flush, full) = if large {
            Self::write_or_queue_large(&shared, sender, to, tag, message, defer)
        } else {
            Self::write_or_queue(&shared, sender, to, tag, message, defer)
        };
        let wait =
            full || (large && shared.outboxes.large_bytes() > LARGE_BACKLOG_BYTES_HIGH_WATER);
        Ok(Sent::new(flush, wait, bytes))
    }

    /// `send_message`'s packet (a small one), written or queued: whether
    /// a flush is owed, and whether the connection's buffer is full (its
    /// sender waits, outbox.rs step 2c).
    fn write_or_queue(
        shared: &NodeShared,
        sender: u64,
        to: &RemotePid,
        tag: Option<u64>,
        message: WireMessage,
        defer: bool,
    ) -> (bool, bool) {
        // The target is built (its node's name copied) only for the loop.
        let packet = match tag {
            Some(tag) => Packet::Reply {
                to: to.serial(),
                tag,
                message,
            },
            None => Packet::Message {
                to: to.serial(),
                message,
            },
        };
        let Some(outbox) = shared.outboxes.get(to.node()) else {
            shared.push_from(sender, command_of(Target::of(to), packet));
            return (false, false);
        };
        let settled = || shared.settled_for(sender);
        let direct = outbox.try_write(packet, to.incarnation(), defer, settled);
        Self::written(shared, sender, to, outbox, direct)
    }

    /// `write_or_queue` for a large message: its packet's head is encoded
    /// here, on the sender's thread, with no lock held
    /// (`wire::large_packet_head`), and travels beside the message's own
    /// bytes (neither copied nor moved), appended or handed to the loop, so
    /// that the loop only moves them.
    fn write_or_queue_large(
        shared: &NodeShared,
        sender: u64,
        to: &RemotePid,
        tag: Option<u64>,
        message: WireMessage,
        defer: bool,
    ) -> (bool, bool) {
        let Ok(head) = wire::large_packet_head(to.serial(), tag, &message) else {
            // Encoding a head into a `Vec` does not fail; counted if it did.
            shared.dropped.fetch_add(1, Ordering::Relaxed);
            return (false, false);
        };
        let WireMessage {
            type_name,
            body: bytes,
        } = message;
        let queue = |(head, bytes)| Command::SendEncoded {
            to: Target::of(to),
            type_name: type_name.clone(),
            head,
            bytes,
        };
        let Some(outbox) = shared.outboxes.get(to.node()) else {
            shared.push_from(sender, queue((head, bytes)));
            return (false, false);
        };
        let key = fragments::Key::Agent(to.serial());
        let settled = || shared.settled_for(sender);
        let parts = (head, bytes);
        match outbox.try_write_encoded(key, &type_name, parts, to.incarnation(), defer, settled) {
            Ok(direct) => Self::written(shared, sender, to, outbox, direct),
            Err(parts) => {
                shared.push_from(sender, queue(parts));
                (false, false)
            }
        }
    }

    /// What a direct write's outcome asks of the sender (step 3's flush
    /// owed, step 2c's wait) and of the loop.
    fn written(
        shared: &NodeShared,
        sender: u64,
        to: &RemotePid,
        outbox: std::sync::Arc<crate::outbox::Outbox>,
        direct: Direct,
    ) -> (bool, bool) {
        match direct {
            Direct::Sent => (false, false),
            Direct::Deferred => {
                shared.owe(to.node(), outbox);
                (true, false)
            }
            Direct::Appended => (true, false),
            Direct::Failed | Direct::HandOver => {
                shared.push(Command::Flush {
                    node: to.node().to_owned(),
                });
                (false, false)
            }
            Direct::Full { deferred } => {
                if deferred {
                    shared.owe(to.node(), outbox);
                }
                (true, true)
            }
            Direct::Refused(packet) => {
                shared.push_from(sender, command_of(Target::of(to), packet));
                (false, false)
            }
        }
    }
}

/// The loop's command for a message or reply packet to `to` (a large one
/// was encoded by `write_or_queue_large`).
fn command_of(to: Target, packet: Packet) -> Command {
    match packet {
        Packet::Reply { tag, message, .. } => Command::Reply { to, tag, message },
        Packet::Message { message, .. } => Command::Send { to, message },
        _ => unreachable!("only messages and replies are sent through a route"),
    }
}
