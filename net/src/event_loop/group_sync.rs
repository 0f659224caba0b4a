//! The loop's part of process groups (crate::groups has the protocol as
//! numbered steps): telling peers of local changes (step 1), sending all
//! local members when a connection comes up (step 2), taking a peer's
//! `Groups` packets, dropping a lost peer's members and sweeping exited
//! local ones (step 3), and telling monitors (step 4).

use erlangen_runtime::{Message, Pid};
use mio::Token;

use crate::config::{GROUP_ENTRIES_MAX, GROUP_NAME_BYTES_MAX};
use crate::groups::GroupEvent;
use crate::id::AgentId;
use crate::wire::Packet;

use super::announce::{in_packets, sweep_due};
use super::EventLoop;

impl EventLoop {
    /// Step 1: `Command::Groups`, to every peer that is up.
    pub(super) fn broadcast_groups(
        &mut self,
        joined: Vec<(String, u64)>,
        left: Vec<(String, u64)>,
    ) {
        self.announce(in_packets(joined, left, groups_packet));
    }

    /// Step 2: all local members to a peer whose connection came up.
    pub(super) fn send_groups(&mut self, token: Token) {
        let entries: Vec<(String, u64)> = crate::sync::lock(&self.shared.groups)
            .local_entries()
            .into_iter()
            .filter_map(|(group, pid)| self.shared.id_of(&pid).map(|id| (group, id.serial)))
            .collect();
        if entries.is_empty() {
            return;
        }
        for chunk in in_packets(entries, Vec::new(), groups_packet) {
            if let Err(error) = self.write_packet(token, &chunk) {
                tracing::warn!(%error, "erlangen: cannot tell a peer of our groups");
            }
        }
    }

    /// Step 3: a peer's `Groups` packet.
    pub(super) fn on_groups(
        &mut self,
        peer: &str,
        incarnation: u64,
        joined: Vec<(String, u64)>,
        left: Vec<(String, u64)>,
    ) -> Result<(), String> {
        if joined.len() + left.len() > GROUP_ENTRIES_MAX {
            return Err(format!(
                "{peer} sent {} group changes in one packet",
                joined.len() + left.len()
            ));
        }
        if joined
            .iter()
            .chain(&left)
            .any(|(group, _)| group.len() > GROUP_NAME_BYTES_MAX)
        {
            return Err(format!(
                "{peer} sent a group name over {GROUP_NAME_BYTES_MAX} bytes"
            ));
        }
        let node = peer.parse().map_err(|e| format!("{peer}: {e}"))?;
        let pid_of = |serial: u64| {
            self.shared.pid_of(&AgentId {
                node: Clone::clone(&node),
                incarnation,
                serial,
            })
        };
        let mut events: Vec<(String, Pid, bool)> = Vec::new();
        {
            let mut groups = crate::sync::lock(&self.shared.groups);
            let theirs = groups.remote.entry(peer.to_owned()).or_default();
            if theirs.incarnation != incarnation {
                theirs.incarnation = incarnation;
                theirs.members.clear();
            }
            for (group, serial) in joined {
                let members = theirs.members.entry(group.clone()).or_default();
                if !members.contains(&serial) {
                    members.push(serial);
                    events.push((group, pid_of(serial), true));
                }
            }
            for (group, serial) in left {
                if let Some(members) = theirs.members.get_mut(&group) {
                    let before = members.len();
                    members.retain(|&s| s != serial);
                    if members.len() != before {
                        events.push((group.clone(), pid_of(serial), false));
                    }
                    if members.is_empty() {
                        theirs.members.remove(&group);
                    }
                }
            }
        }
        self.notify_groups(events);
        Ok(())
    }

    /// Step 3: a lost peer's members leave at once.
    pub(super) fn groups_lost(&mut self, peer: &str) {
        let Some(theirs) = crate::sync::lock(&self.shared.groups).remote.remove(peer) else {
            return;
        };
        let Ok(node) = peer.parse::<crate::id::NodeName>() else {
            return;
        };
        let mut events = Vec::new();
        for (group, serials) in theirs.members {
            for serial in serials {
                let pid = self.shared.pid_of(&AgentId {
                    node: node.clone(),
                    incarnation: theirs.incarnation,
                    serial,
                });
                events.push((group.clone(), pid, false));
            }
        }
        self.notify_groups(events);
    }

    /// Step 3: local members that exited leave (at most every
    /// `config::GROUP_SWEEP_INTERVAL`).
    pub(super) fn sweep_groups(&mut self) {
        let runtime = self.shared.runtime.clone();
        let gone = {
            let mut groups = crate::sync::lock(&self.shared.groups);
            if !sweep_due(&mut groups.swept) {
                return;
            }
            groups.sweep(|pid| runtime.is_alive(pid))
        };
        if gone.is_empty() {
            return;
        }
        let left: Vec<(String, u64)> = gone
            .iter()
            .map(|(group, pid)| (group.clone(), pid.serial()))
            .collect();
        self.notify_groups(
            gone.into_iter()
                .map(|(group, pid)| (group, pid, false))
                .collect(),
        );
        self.broadcast_groups(Vec::new(), left);
    }

    /// Step 4: one `GroupEvent` per group and monitor.
    pub(super) fn notify_groups(&mut self, events: Vec<(String, Pid, bool)>) {
        let mut by_group: std::collections::HashMap<String, GroupEvent> = Default::default();
        for (group, pid, joined) in events {
            let event = by_group.entry(group.clone()).or_insert_with(|| GroupEvent {
                group,
                joined: Vec::new(),
                left: Vec::new(),
            });
            if joined {
                event.joined.push(pid);
            } else {
                event.left.push(pid);
            }
        }
        for (group, event) in by_group {
            let monitors = crate::sync::lock(&self.shared.groups).monitors_of(&group);
            for monitor in monitors {
                self.shared
                    .runtime
                    .send(&monitor, Message::new(event.clone()));
            }
        }
    }
}

/// A `Groups` packet.
fn groups_packet(joined: Vec<(String, u64)>, left: Vec<(String, u64)>) -> Packet {
    Packet::Groups { joined, left }
}
