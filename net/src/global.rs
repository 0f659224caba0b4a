//! Cluster-wide names (Erlang's `global`): a name registered on one node
//! is found, and sent to, from every node of its cluster. `Global` is what a
//! node knows: the names its own agents hold, and each peer's names as that
//! peer last said. The protocol (event_loop/global_sync.rs):
//!
//! 1. An agent takes a name on its own node ([`crate::Node::register_global`]),
//!    refused if any node this node knows holds it; the node tells every
//!    peer in a `Globals` packet, and all its names to each peer whose
//!    connection comes up.
//! 2. A name goes when its agent exits (within
//!    `config::GROUP_SWEEP_INTERVAL`), when it is released, or when its
//!    node is lost.
//! 3. **Conflicts.** Two nodes that took the same name apart (partitioned,
//!    or in the same instant) find out when one tells the other. Each node
//!    asks its [`ConflictResolver`] (the same function on every node; it
//!    is given the name and both holders, the one on the node whose name
//!    sorts first first) which holder keeps the name, and acts only on
//!    its own holder: if it is not kept, it is killed with the reason
//!    `global name conflict: NAME` and the name is released. The default
//!    keeps the first (Erlang's default kills one of the two too); with
//!    it, every lookup answers the winner even before the loser's node has
//!    acted. A resolver may keep the second, or neither (both die).

use std::collections::HashMap;
use std::sync::Arc;

use erlangen_runtime::Pid;

use crate::id::AgentId;

/// Settles a cluster-wide name that two nodes took apart (module docs,
/// step 3): given the name and the two holders (the one on the node whose
/// name sorts first, then the other), the holder that keeps it, or `None`
/// for neither. Every node of a cluster must be given the same function:
/// each applies it on its own and acts only on its own holder. It runs on
/// the node's event loop: it must not block.
pub type ConflictResolver = Arc<dyn Fn(&str, &AgentId, &AgentId) -> Option<AgentId> + Send + Sync>;

/// A node's [`ConflictResolver`], as its builder and shared state hold it.
#[derive(Clone)]
pub(crate) struct Resolver(pub(crate) ConflictResolver);

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConflictResolver")
    }
}

/// The default [`ConflictResolver`]: the holder on the node whose name
/// sorts first keeps the name.
///
/// ```
/// use erlangen_net::{keep_first, AgentId};
/// let first: AgentId = "localhost/a/1#7".parse().unwrap();
/// let second: AgentId = "localhost/b/1#9".parse().unwrap();
/// assert_eq!(keep_first("leader", &first, &second), Some(first));
/// ```
pub fn keep_first(_name: &str, first: &AgentId, _second: &AgentId) -> Option<AgentId> {
    Some(first.clone())
}

/// A peer's names as it last said.
#[derive(Debug, Default)]
pub(crate) struct PeerNames {
    pub(crate) incarnation: u64,
    pub(crate) names: HashMap<String, u64>,
}

/// What a node knows of cluster-wide names (module docs).
#[derive(Debug, Default)]
pub(crate) struct Global {
    /// Names held by agents of this node.
    pub(crate) local: HashMap<String, Pid>,
    /// Peers' names, by peer.
    pub(crate) remote: HashMap<String, PeerNames>,
    /// When local holders were last checked for exits (step 2).
    pub(crate) swept: Option<std::time::Instant>,
}

impl Global {
    /// The peers that hold `name`, sorted by node name (the first wins,
    /// step 3).
    pub(crate) fn remote_holders(&self, name: &str) -> Vec<(&str, u64, u64)> {
        let mut holders: Vec<(&str, u64, u64)> = self
            .remote
            .iter()
            .filter_map(|(peer, theirs)| {
                theirs
                    .names
                    .get(name)
                    .map(|&serial| (peer.as_str(), theirs.incarnation, serial))
            })
            .collect();
        holders.sort();
        holders
    }

    /// Removes the local holders that are not `alive`; the names they held.
    pub(crate) fn sweep(&mut self, alive: impl Fn(&Pid) -> bool) -> Vec<(String, Pid)> {
        let gone: Vec<(String, Pid)> = self
            .local
            .iter()
            .filter(|(_, pid)| !alive(pid))
            .map(|(name, pid)| (name.clone(), pid.clone()))
            .collect();
        for (name, _) in &gone {
            self.local.remove(name);
        }
        gone
    }
}
