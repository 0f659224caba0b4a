//! `PeerRoute`: the runtime's way to a remote node ([`Remote`]). It never
//! blocks and never touches a socket: it queues a command for the node's
//! event loop and wakes it once per burst (node.rs `push`).

use std::sync::Weak;

use erlangen_runtime::{Message, Pid, Remote, RemotePid, RemoteSignal};

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
    fn send(&self, to: &RemotePid, message: Message) {
        if let Some(shared) = self.shared.upgrade() {
            shared.push(Command::Send {
                to: Target::of(to),
                message,
            });
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
