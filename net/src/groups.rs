//! Process groups (Erlang's `pg`): named groups of agents that span the
//! nodes of a cluster. `Groups` is what a node knows: its own members, each
//! peer's members as that peer last said, and the agents that monitor a
//! group. The protocol (event_loop/group_sync.rs):
//!
//! 1. An agent joins or leaves a group on its own node
//!    ([`crate::Node::join_group`]); the node tells every peer in a
//!    `Groups` packet (ordered after the agent's earlier messages).
//! 2. When a connection comes up, each side sends the other all its
//!    members.
//! 3. A peer's members are dropped at once when the peer is lost; a local
//!    member that exits leaves within `config::GROUP_SWEEP_INTERVAL` (the
//!    loop checks its members that often).
//! 4. Each change is sent to the group's monitors as a [`GroupEvent`].

use std::collections::HashMap;

use erlangen_runtime::{Pid, WeakPid};

/// What an agent that monitors a group receives when members join or
/// leave it ([`crate::Node::monitor_group`]).
#[derive(Debug, Clone)]
pub struct GroupEvent {
    /// The group.
    pub group: String,
    /// Agents that joined.
    pub joined: Vec<Pid>,
    /// Agents that left (or whose node was lost).
    pub left: Vec<Pid>,
}

/// A peer's members as it last said: its incarnation and, by group, the
/// serials of its members there.
#[derive(Debug, Default)]
pub(crate) struct PeerGroups {
    pub(crate) incarnation: u64,
    pub(crate) members: HashMap<String, Vec<u64>>,
}

/// What a node knows of process groups (module docs).
#[derive(Debug, Default)]
pub(crate) struct Groups {
    /// Local members by group.
    local: HashMap<String, Vec<Pid>>,
    /// Peers' members, by peer.
    pub(crate) remote: HashMap<String, PeerGroups>,
    /// Agents that monitor a group.
    monitors: Vec<(WeakPid, String)>,
    /// When local members were last checked for exits (step 3).
    pub(crate) swept: Option<std::time::Instant>,
}

impl Groups {
    /// `pid` joins `group`; whether it was not a member.
    pub(crate) fn join(&mut self, group: &str, pid: &Pid) -> bool {
        let members = self.local.entry(group.to_owned()).or_default();
        if members.contains(pid) {
            return false;
        }
        members.push(pid.clone());
        true
    }

    /// `pid` leaves `group`; whether it was a member.
    pub(crate) fn leave(&mut self, group: &str, pid: &Pid) -> bool {
        let Some(members) = self.local.get_mut(group) else {
            return false;
        };
        let before = members.len();
        members.retain(|member| member != pid);
        let left = members.len() != before;
        if members.is_empty() {
            self.local.remove(group);
        }
        left
    }

    /// Removes the local members that are not `alive` (step 3); what left.
    pub(crate) fn sweep(&mut self, alive: impl Fn(&Pid) -> bool) -> Vec<(String, Pid)> {
        let mut gone = Vec::new();
        for (group, members) in &mut self.local {
            members.retain(|member| {
                let keep = alive(member);
                if !keep {
                    gone.push((group.clone(), member.clone()));
                }
                keep
            });
        }
        self.local.retain(|_, members| !members.is_empty());
        gone
    }

    /// Local members of `group`.
    pub(crate) fn local_members(&self, group: &str) -> Vec<Pid> {
        self.local.get(group).cloned().unwrap_or_default()
    }

    /// Every local `(group, member)`.
    pub(crate) fn local_entries(&self) -> Vec<(String, Pid)> {
        self.local
            .iter()
            .flat_map(|(group, members)| members.iter().map(move |m| (group.clone(), m.clone())))
            .collect()
    }

    /// Adds an agent that monitors `group`.
    pub(crate) fn monitor(&mut self, pid: WeakPid, group: &str) {
        self.monitors.push((pid, group.to_owned()));
    }

    /// Removes `pid`'s monitors of `group`.
    pub(crate) fn demonitor(&mut self, pid: &Pid, group: &str) {
        self.monitors
            .retain(|(weak, watched)| !(watched == group && weak.upgrade().as_ref() == Some(pid)));
    }

    /// The agents that monitor `group` (forgetting those that are gone).
    pub(crate) fn monitors_of(&mut self, group: &str) -> Vec<Pid> {
        self.monitors.retain(|(weak, _)| weak.upgrade().is_some());
        self.monitors
            .iter()
            .filter(|(_, watched)| watched == group)
            .filter_map(|(weak, _)| weak.upgrade())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_joins_once_leaves_and_the_dead_are_swept() {
        let rt = erlangen_runtime::Runtime::builder()
            .workers(1)
            .build()
            .unwrap();
        let (a, b) = (
            rt.spawn(|ctx| {
                ctx.receive();
            }),
            rt.spawn(|ctx| {
                ctx.receive();
            }),
        );
        let mut groups = Groups::default();
        assert!(groups.join("g", &a));
        assert!(!groups.join("g", &a));
        assert!(groups.join("g", &b));
        assert_eq!(groups.local_members("g").len(), 2);
        assert!(groups.leave("g", &a));
        assert!(!groups.leave("g", &a));
        let gone = groups.sweep(|pid| pid != &b);
        assert_eq!(gone, vec![("g".to_owned(), b.clone())]);
        assert!(groups.local_members("g").is_empty());
    }
}
