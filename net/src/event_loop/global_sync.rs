//! The loop's part of cluster-wide names (crate::global has the protocol
//! as numbered steps): telling peers of local changes and, when a
//! connection comes up, of every local name (step 1); dropping a lost
//! peer's names and releasing exited holders' (step 2); settling conflicts
//! (step 3).

use erlangen_runtime::ExitReason;
use mio::Token;

use crate::config::{GROUP_ENTRIES_MAX, GROUP_NAME_BYTES_MAX};
use crate::wire::Packet;

use super::announce::{in_packets, sweep_due};
use super::EventLoop;

impl EventLoop {
    /// Step 1: `Command::Globals`, to every peer that is up.
    pub(super) fn broadcast_globals(
        &mut self,
        registered: Vec<(String, u64)>,
        released: Vec<(String, u64)>,
    ) {
        self.announce(in_packets(registered, released, globals_packet));
    }

    /// Step 1: every local name to a peer whose connection came up.
    pub(super) fn send_globals(&mut self, token: Token) {
        let names: Vec<(String, u64)> = crate::sync::lock(&self.shared.global)
            .local
            .iter()
            .map(|(name, pid)| (name.clone(), pid.serial()))
            .collect();
        if names.is_empty() {
            return;
        }
        for chunk in in_packets(names, Vec::new(), globals_packet) {
            if let Err(error) = self.write_packet(token, &chunk) {
                tracing::warn!(%error, "erlangen: cannot tell a peer of our names");
            }
        }
    }

    /// A peer's `Globals` packet, and step 3 for the names it took.
    pub(super) fn on_globals(
        &mut self,
        peer: &str,
        incarnation: u64,
        registered: Vec<(String, u64)>,
        released: Vec<(String, u64)>,
    ) -> Result<(), String> {
        if registered.len() + released.len() > GROUP_ENTRIES_MAX {
            return Err(format!(
                "{peer} sent {} name changes in one packet",
                registered.len() + released.len()
            ));
        }
        if registered
            .iter()
            .chain(&released)
            .any(|(name, _)| name.len() > GROUP_NAME_BYTES_MAX)
        {
            return Err(format!(
                "{peer} sent a name over {GROUP_NAME_BYTES_MAX} bytes"
            ));
        }
        let ours = self.shared.name.to_string();
        let mut contested = Vec::new();
        {
            let mut global = crate::sync::lock(&self.shared.global);
            let theirs = global.remote.entry(peer.to_owned()).or_default();
            if theirs.incarnation != incarnation {
                theirs.incarnation = incarnation;
                theirs.names.clear();
            }
            for (name, serial) in &released {
                if theirs.names.get(name) == Some(serial) {
                    theirs.names.remove(name);
                }
            }
            for (name, serial) in &registered {
                theirs.names.insert(name.clone(), *serial);
            }
            for (name, serial) in &registered {
                if let Some(pid) = global.local.get(name) {
                    contested.push((name.clone(), pid.clone(), *serial));
                }
            }
        }
        // Step 3, outside the lock (the resolver is the user's code).
        let peer_name: crate::id::NodeName = peer
            .parse()
            .map_err(|e| format!("{peer} is not a node name: {e}"))?;
        let mut lost = Vec::new();
        for (name, pid, serial) in contested {
            let mine = crate::id::AgentId {
                node: self.shared.name.clone(),
                incarnation: self.shared.incarnation,
                serial: pid.serial(),
            };
            let other = crate::id::AgentId {
                node: peer_name.clone(),
                incarnation,
                serial,
            };
            let (first, second) = if ours.as_str() < peer {
                (&mine, &other)
            } else {
                (&other, &mine)
            };
            if (self.shared.global_resolver.0)(&name, first, second).as_ref() == Some(&mine) {
                continue;
            }
            let mut global = crate::sync::lock(&self.shared.global);
            if global
                .local
                .get(&name)
                .is_some_and(|held| held.serial() == pid.serial())
            {
                global.local.remove(&name);
                lost.push((name, pid));
            }
        }
        if lost.is_empty() {
            return Ok(());
        }
        for (name, pid) in &lost {
            tracing::info!(name, %peer, "erlangen: a cluster-wide name held twice: ours yields");
            self.shared.runtime.kill(
                pid,
                ExitReason::other(&format!("global name conflict: {name}")),
            );
        }
        let released = lost
            .into_iter()
            .map(|(name, pid)| (name, pid.serial()))
            .collect();
        self.broadcast_globals(Vec::new(), released);
        Ok(())
    }

    /// Step 2: a lost peer's names go.
    pub(super) fn globals_lost(&mut self, peer: &str) {
        crate::sync::lock(&self.shared.global).remote.remove(peer);
    }

    /// Step 2: exited holders' names go (at most every
    /// `config::GROUP_SWEEP_INTERVAL`).
    pub(super) fn sweep_globals(&mut self) {
        let runtime = self.shared.runtime.clone();
        let gone = {
            let mut global = crate::sync::lock(&self.shared.global);
            if !sweep_due(&mut global.swept) {
                return;
            }
            global.sweep(|pid| runtime.is_alive(pid))
        };
        if !gone.is_empty() {
            let released = gone
                .into_iter()
                .map(|(name, pid)| (name, pid.serial()))
                .collect();
            self.broadcast_globals(Vec::new(), released);
        }
    }
}

/// A `Globals` packet.
fn globals_packet(registered: Vec<(String, u64)>, released: Vec<(String, u64)>) -> Packet {
    Packet::Globals {
        registered,
        released,
    }
}
