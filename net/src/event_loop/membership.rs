//! Membership: a node that connects to a member of a cluster connects to
//! all of them (a full mesh, as Erlang's `net_kernel`), and agents that
//! monitor a node hear when it comes up and goes down.
//!
//! 1. **Peers.** Once a connection is up, each side sends the other a
//!    `Peers` packet with the other nodes it is connected to (at most
//!    `config::PEERS_LISTED_MAX`; none if there are none). Only a peer that
//!    passed the handshake can send one.
//! 2. **Connect.** For each listed node it is not connected to nor dialling,
//!    the receiver queues `Command::Connect`, which dials it like a message
//!    would and is nothing once the connection is up. A new node joining a
//!    seed hears of every member from the seed; each member hears of the
//!    new node when it connects. The mesh is meant for tens of nodes.
//! 3. **Node monitors** (`Node::monitor_node`): each connection that comes
//!    up sends `NodeEvent { up: true }` to the agents that monitor its node;
//!    each loss (step 6 of a connection's life, a failed dial included)
//!    sends `NodeEvent { up: false, reason }`. A monitor lasts until
//!    `Node::demonitor_node` or its agent's end.

use erlangen_runtime::Message;
use mio::Token;

use crate::config::PEERS_LISTED_MAX;
use crate::id::NodeName;
use crate::shared::NodeEvent;
use crate::wire::Packet;

use super::{Command, EventLoop};

impl EventLoop {
    /// Step 2: connect to `node` unless it is us, up, or being dialled.
    pub(super) fn connect(&mut self, node: String) {
        if node == self.shared.name.to_string()
            || self.up.contains_key(&node)
            || self.dialing.contains_key(&node)
            || self.resolving.contains_key(&node)
        {
            return;
        }
        self.wait_for(node.clone(), Command::Connect { node });
    }

    /// A connection to `peer` came up: step 1, and step 3's `up`.
    pub(super) fn came_up(&mut self, token: Token, peer: &str) {
        let nodes: Vec<String> = self
            .up
            .keys()
            .filter(|node| node.as_str() != peer)
            .take(PEERS_LISTED_MAX)
            .cloned()
            .collect();
        // (Nothing to tell: nothing sent.)
        if !nodes.is_empty() {
            if let Err(error) = self.write_packet(token, &Packet::Peers { nodes }) {
                tracing::warn!(%error, "erlangen: cannot tell a peer of our peers");
            }
        }
        self.send_groups(token);
        self.send_globals(token);
        self.notify_node_monitors(peer, true, None);
    }

    /// Step 2: what a peer listed.
    pub(super) fn on_peers(&mut self, peer: &str, nodes: Vec<String>) -> Result<(), String> {
        if nodes.len() > PEERS_LISTED_MAX {
            return Err(format!("{peer} listed {} peers", nodes.len()));
        }
        for node in nodes {
            match node.parse::<NodeName>() {
                Ok(name) => self.connect(name.to_string()),
                Err(error) => {
                    tracing::warn!(%peer, %error, "erlangen: a peer listed a bad node name")
                }
            }
        }
        Ok(())
    }

    /// Step 3's `down`: `peer` is lost.
    pub(super) fn went_down(&mut self, peer: &str, why: &str) {
        self.groups_lost(peer);
        self.globals_lost(peer);
        self.notify_node_monitors(peer, false, Some(why.to_owned()));
    }

    /// Sends a `NodeEvent` to every agent that monitors `peer`; forgets
    /// the monitors of agents that are gone.
    fn notify_node_monitors(&mut self, peer: &str, up: bool, reason: Option<String>) {
        let Ok(node) = peer.parse::<NodeName>() else {
            return;
        };
        let mut monitors = crate::sync::lock(&self.shared.node_monitors);
        monitors.retain(|(weak, _)| weak.upgrade().is_some());
        for (weak, watched) in monitors.iter() {
            if *watched != node {
                continue;
            }
            if let Some(pid) = weak.upgrade() {
                let event = NodeEvent {
                    node: node.clone(),
                    up,
                    reason: reason.clone(),
                };
                self.shared.runtime.send(&pid, Message::new(event));
            }
        }
    }
}
