//! `PeerRoute`: the runtime's way to a remote node ([`Remote`]). It never
//! blocks and never touches a socket: it encodes a message on the sender's
//! thread (so that a message too large for the wire is refused to its
//! sender), queues a command for the node's event loop and wakes it once
//! per burst (node.rs `push`).

use std::sync::Weak;

use erlangen_runtime::{Error, Message, Pid, Remote, RemotePid, RemoteSignal};

use crate::event_loop::Command;
use crate::node::{NodeShared, Target};

/// The route to one remote node, shared by all its pids.
#[derive(Debug)]
pub(crate) struct PeerRoute {
    /// The local node (weakly: a pid may outlive it; sends are then
    /// dropped).
    pub(crate) shared: Weak<NodeShared>,
}

impl Remote for PeerRoute {
    /// Encodes `message` here, on the sender's thread (its size is known
    /// before anything is queued), then queues it for the loop.
    fn send(&self, to: &RemotePid, message: Message) -> Result<(), Error> {
        let Some(shared) = self.shared.upgrade() else {
            return Ok(());
        };
        let message = shared.encode_message(&message)?;
        shared.push(Command::Send {
            to: Target::of(to),
            message,
        });
        Ok(())
    }

    /// Encodes the reply here, as `send` does; its node files it under
    /// `tag`.
    fn reply(&self, to: &RemotePid, tag: u64, message: Message) -> Result<(), Error> {
        let Some(shared) = self.shared.upgrade() else {
            return Ok(());
        };
        let message = shared.encode_message(&message)?;
        shared.push(Command::Reply {
            to: Target::of(to),
            tag,
            message,
        });
        Ok(())
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
