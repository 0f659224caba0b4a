//! The cluster's part of [`Node`]'s API: membership (the full mesh, node
//! monitors; event_loop/membership.rs) and process groups
//! (crate::groups).

use std::any::Any;

use erlangen_runtime::{Ctx, Pid};

use crate::command::Command;
use crate::error::NetError;
use crate::id::NodeName;

use super::Node;

impl Node {
    /// The nodes this node is connected to now (Erlang's `nodes()`).
    pub fn nodes(&self) -> Vec<NodeName> {
        let stats = crate::sync::lock(&self.shared.stats);
        let mut nodes: Vec<NodeName> = stats
            .values()
            .filter(|peer| peer.connected)
            .filter_map(|peer| peer.node.parse().ok())
            .collect();
        nodes.sort_by_key(ToString::to_string);
        nodes
    }

    /// Connects to `node` if not connected (`--join` of a kernel): a
    /// cluster's members then connect to this node too
    /// (event_loop/membership.rs). Returns at once; `monitor_node` hears
    /// the outcome.
    pub fn connect(&self, node: &NodeName) {
        self.shared.push(Command::Connect {
            node: node.to_string(),
        });
    }

    /// `pid` (a local agent) hears each time `node` comes up or goes down,
    /// as a [`NodeEvent`](crate::NodeEvent) (Erlang's `monitor_node`, with `nodeup` too);
    /// the node is connected to if it is not. The monitor lasts until
    /// [`Node::demonitor_node`] or the agent's end.
    pub fn monitor_node(&self, pid: &Pid, node: &NodeName) {
        if let Some(weak) = pid.downgrade() {
            crate::sync::lock(&self.shared.node_monitors).push((weak, node.clone()));
            self.connect(node);
        }
    }

    /// Ends `pid`'s monitors of `node`.
    pub fn demonitor_node(&self, pid: &Pid, node: &NodeName) {
        crate::sync::lock(&self.shared.node_monitors)
            .retain(|(weak, watched)| !(watched == node && weak.upgrade().as_ref() == Some(pid)));
    }

    /// The local agent `pid` joins process group `group` (Erlang's
    /// `pg:join`), seen by every node of the cluster (crate::groups). An
    /// agent may be in many groups; it leaves them all when it exits.
    pub fn join_group(&self, pid: &Pid, group: &str) -> Result<(), NetError> {
        let serial = self.local_member(pid, group)?;
        if crate::sync::lock(&self.shared.groups).join(group, pid) {
            self.group_changed(group, pid, true);
            self.shared.push(Command::Groups {
                joined: vec![(group.to_owned(), serial)],
                left: Vec::new(),
            });
        }
        Ok(())
    }

    /// The local agent `pid` leaves `group` (Erlang's `pg:leave`).
    pub fn leave_group(&self, pid: &Pid, group: &str) -> Result<(), NetError> {
        let serial = self.local_member(pid, group)?;
        if crate::sync::lock(&self.shared.groups).leave(group, pid) {
            self.group_changed(group, pid, false);
            self.shared.push(Command::Groups {
                joined: Vec::new(),
                left: vec![(group.to_owned(), serial)],
            });
        }
        Ok(())
    }

    /// The members of `group` on every node this node knows (Erlang's
    /// `pg:get_members`).
    pub fn group_members(&self, group: &str) -> Vec<Pid> {
        let groups = crate::sync::lock(&self.shared.groups);
        let mut members = groups.local_members(group);
        for (peer, theirs) in &groups.remote {
            let Ok(node) = peer.parse::<NodeName>() else {
                continue;
            };
            for &serial in theirs.members.get(group).into_iter().flatten() {
                members.push(self.shared.pid_of(&crate::id::AgentId {
                    node: node.clone(),
                    incarnation: theirs.incarnation,
                    serial,
                }));
            }
        }
        members
    }

    /// The members of `group` on this node (Erlang's
    /// `pg:get_local_members`).
    pub fn local_group_members(&self, group: &str) -> Vec<Pid> {
        crate::sync::lock(&self.shared.groups).local_members(group)
    }

    /// Sends a clone of `message` to every member of `group`, from `ctx`'s
    /// agent; how many it was sent to.
    pub fn send_to_group<M: Any + Send + Clone>(
        &self,
        ctx: &Ctx,
        group: &str,
        message: M,
    ) -> usize {
        let members = self.group_members(group);
        for member in &members {
            ctx.send(member, message.clone());
        }
        members.len()
    }

    /// `pid` (a local agent) hears each change of `group`'s members as a
    /// [`crate::GroupEvent`] (Erlang's `pg:monitor`), until
    /// [`Node::demonitor_group`] or its end.
    pub fn monitor_group(&self, pid: &Pid, group: &str) {
        if let Some(weak) = pid.downgrade() {
            crate::sync::lock(&self.shared.groups).monitor(weak, group);
        }
    }

    /// Ends `pid`'s monitors of `group`.
    pub fn demonitor_group(&self, pid: &Pid, group: &str) {
        crate::sync::lock(&self.shared.groups).demonitor(pid, group);
    }

    /// Checks a group or cluster-wide name and a local agent; the agent's
    /// serial (its id is exported, so that peers' sends to it resolve).
    fn local_member(&self, pid: &Pid, group: &str) -> Result<u64, NetError> {
        if group.is_empty() || group.len() > crate::config::GROUP_NAME_BYTES_MAX {
            return Err(NetError::InvalidName(format!(
                "a name of {} bytes (1 to {})",
                group.len(),
                crate::config::GROUP_NAME_BYTES_MAX
            )));
        }
        if pid.is_remote() {
            return Err(NetError::InvalidName(format!(
                "{pid} is not an agent of this node: it joins groups on its own node"
            )));
        }
        self.shared
            .id_of(pid)
            .map(|id| id.serial)
            .ok_or_else(|| NetError::InvalidName(format!("{pid} cannot be named")))
    }

    /// Tells `group`'s local monitors of a local change.
    fn group_changed(&self, group: &str, pid: &Pid, joined: bool) {
        let monitors = crate::sync::lock(&self.shared.groups).monitors_of(group);
        let event = crate::groups::GroupEvent {
            group: group.to_owned(),
            joined: if joined {
                vec![pid.clone()]
            } else {
                Vec::new()
            },
            left: if joined {
                Vec::new()
            } else {
                vec![pid.clone()]
            },
        };
        for monitor in monitors {
            self.shared
                .runtime
                .send(&monitor, erlangen_runtime::Message::new(event.clone()));
        }
    }

    /// The local agent `pid` takes `name` across the cluster (Erlang's
    /// `global:register_name`): every node finds it with
    /// [`Node::whereis_global`] until the agent exits, releases it, or its
    /// node is lost. Refused if a node this node knows holds the name; two
    /// nodes that took it apart settle it when they meet (crate::global,
    /// step 3).
    pub fn register_global(&self, pid: &Pid, name: &str) -> Result<(), NetError> {
        let serial = self.local_member(pid, name)?;
        {
            let mut global = crate::sync::lock(&self.shared.global);
            let held_here = global
                .local
                .get(name)
                .is_some_and(|holder| self.shared.runtime.is_alive(holder));
            if held_here || !global.remote_holders(name).is_empty() {
                return Err(NetError::NameTaken(name.to_owned()));
            }
            global.local.insert(name.to_owned(), pid.clone());
        }
        self.shared.push(Command::Globals {
            registered: vec![(name.to_owned(), serial)],
            released: Vec::new(),
        });
        Ok(())
    }

    /// Releases `name` if an agent of this node holds it.
    pub fn unregister_global(&self, name: &str) {
        let released = crate::sync::lock(&self.shared.global).local.remove(name);
        if let Some(pid) = released {
            self.shared.push(Command::Globals {
                registered: Vec::new(),
                released: vec![(name.to_owned(), pid.serial())],
            });
        }
    }

    /// The agent that holds `name` across the cluster, if any (Erlang's
    /// `global:whereis_name`). While two holders are being settled, every
    /// node answers the one that keeps it.
    pub fn whereis_global(&self, name: &str) -> Option<Pid> {
        let global = crate::sync::lock(&self.shared.global);
        let ours = self.shared.name.to_string();
        let local = global
            .local
            .get(name)
            .filter(|holder| self.shared.runtime.is_alive(holder))
            .cloned();
        let remote = global.remote_holders(name).first().copied();
        match (local, remote) {
            (Some(local), Some((peer, _, _))) if ours.as_str() < peer => Some(local),
            (Some(local), None) => Some(local),
            (_, Some((peer, incarnation, serial))) => {
                let node = peer.parse().ok()?;
                Some(self.shared.pid_of(&crate::id::AgentId {
                    node,
                    incarnation,
                    serial,
                }))
            }
            (None, None) => None,
        }
    }

    /// Sends `message` to the agent that holds `name` across the cluster
    /// (Erlang's `global:send`); an error if nobody does.
    pub fn send_global<M: Any + Send>(
        &self,
        ctx: &Ctx,
        name: &str,
        message: M,
    ) -> Result<(), NetError> {
        let to = self
            .whereis_global(name)
            .ok_or_else(|| NetError::NotSent(format!("no agent holds the name {name:?}")))?;
        ctx.send(&to, message);
        Ok(())
    }
}
