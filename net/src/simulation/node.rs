//! `SimNode`: one simulated node as the network and the codec see it (its
//! name, incarnation, runtime and types; the ids of its agents that went
//! out), and `SimRoute`, the [`Remote`] its remote pids hold.
//!
//! A simulated node plays the part `NodeShared` and `PeerRoute` play for a
//! real one: messages and signals are encoded with the node's `Types` in
//! its pid context on the sender's side, and decoded on the receiver's,
//! exactly as over TCP, so a type that is not registered, a pid field
//! without `erlangen_net::pid`, or a message above the wire's limit fails
//! in a simulation as it would between real nodes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};

use erlangen_runtime::{
    Error, Message, Pid, Remote, RemotePid, RemoteSignal, RuntimeHandle, WeakPid,
};

use super::network::{Network, Payload};
use crate::id::{AgentId, NodeName};
use crate::pid::Resolve;
use crate::sync::lock;
use crate::types::Types;

/// One incarnation of a simulated node.
pub(crate) struct SimNode {
    /// Its index in the simulation.
    pub(crate) index: u32,
    /// `sim/<name>`.
    pub(crate) name: NodeName,
    /// Counts its restarts: ids of an earlier run never resolve.
    pub(crate) incarnation: u64,
    pub(crate) runtime: RuntimeHandle,
    pub(crate) types: Types,
    /// Its agents whose ids went out, by serial (ordered: nothing about
    /// a simulation may depend on a randomly seeded map).
    exported: Mutex<BTreeMap<u64, WeakPid>>,
    /// The route to each other node, by name.
    routes: Mutex<BTreeMap<String, Arc<dyn Remote>>>,
    network: Weak<Network>,
}

impl std::fmt::Debug for SimNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimNode")
            .field("name", &self.name)
            .field("incarnation", &self.incarnation)
            .finish_non_exhaustive()
    }
}

impl SimNode {
    /// Incarnation `incarnation` of node `index`.
    pub(crate) fn new(
        index: u32,
        name: NodeName,
        incarnation: u64,
        runtime: RuntimeHandle,
        types: Types,
        network: Weak<Network>,
    ) -> SimNode {
        SimNode {
            index,
            name,
            incarnation,
            runtime,
            types,
            exported: Mutex::new(BTreeMap::new()),
            routes: Mutex::new(BTreeMap::new()),
            network,
        }
    }

    /// The route from this node to `node`.
    pub(crate) fn route(&self, node: &str) -> Arc<dyn Remote> {
        lock(&self.routes)
            .entry(node.to_owned())
            .or_insert_with(|| {
                Arc::new(SimRoute {
                    network: self.network.clone(),
                    from: self.index,
                })
            })
            .clone()
    }

    /// Our live agent `serial`, if its id went out.
    pub(crate) fn local(&self, serial: u64) -> Option<Pid> {
        lock(&self.exported).get(&serial).and_then(WeakPid::upgrade)
    }

    /// `pid` as this node sees it: itself if it is ours, else a remote pid
    /// routed from here (`None` for an agent of no simulated node).
    pub(crate) fn view(&self, pid: &Pid, owner: &SimNode) -> Option<Pid> {
        let id = owner.id_of(pid)?;
        Some(self.pid_of(&id))
    }
}

impl Resolve for SimNode {
    fn id_of(&self, pid: &Pid) -> Option<AgentId> {
        if let Some(remote) = pid.as_remote() {
            return Some(AgentId {
                node: remote.node().parse().ok()?,
                incarnation: remote.incarnation(),
                serial: remote.serial(),
            });
        }
        if !self.runtime.is_local(pid) {
            return None;
        }
        if let Some(weak) = pid.downgrade() {
            lock(&self.exported).entry(pid.serial()).or_insert(weak);
        }
        Some(AgentId {
            node: self.name.clone(),
            incarnation: self.incarnation,
            serial: pid.serial(),
        })
    }

    fn pid_of(&self, id: &AgentId) -> Pid {
        if id.node == self.name && id.incarnation == self.incarnation {
            if let Some(pid) = self.local(id.serial) {
                return pid;
            }
        }
        let node = id.node.to_string();
        Pid::remote(RemotePid::new(
            node.as_str(),
            id.incarnation,
            id.serial,
            self.route(&node),
        ))
    }
}

/// The route from one simulated node to the others: hands what agents
/// send to the simulated network (network.rs), which encodes it on the
/// sender's side.
#[derive(Debug)]
pub(crate) struct SimRoute {
    network: Weak<Network>,
    /// The node whose agents send through it.
    from: u32,
}

impl Remote for SimRoute {
    fn send(&self, to: &RemotePid, message: Message) -> Result<(), Error> {
        match self.network.upgrade() {
            Some(network) => network.send(self.from, None, to, Payload::Message(message)),
            None => Ok(()),
        }
    }

    fn reply(&self, to: &RemotePid, tag: u64, message: Message) -> Result<(), Error> {
        match self.network.upgrade() {
            Some(network) => network.send(self.from, None, to, Payload::Reply(tag, message)),
            None => Ok(()),
        }
    }

    fn signal(&self, from: Option<&Pid>, to: &RemotePid, signal: RemoteSignal) {
        if let Some(network) = self.network.upgrade() {
            // A signal that cannot be sent is counted as dropped there.
            let _ = network.send(self.from, from, to, Payload::Signal(signal));
        }
    }
}
