//! `EdgeTable`: what a node keeps of the links, monitors and watches its
//! agents have with agents of other nodes — the local halves, by peer —
//! and the `noconnection` signals they become when a peer is lost
//! (remote.rs "Edges across nodes", step 4). Shared by the event loop
//! (event_loop/edges.rs, peers by name) and the simulated network
//! (simulation/network.rs, peers by node index); no I/O.
//!
//! Ordered maps: a simulation replays only if nothing depends on a
//! randomly seeded hash.

use std::borrow::Borrow;
use std::collections::BTreeMap;

use erlangen_runtime::{ExitReason, ExitStatus, Pid, RemoteSignal, RuntimeHandle};

/// One half of a link or monitor across nodes, kept by the node of its
/// local agent.
#[derive(Debug)]
struct Edge {
    local: Pid,
    remote: Pid,
    /// Fired as a `Down` (the local agent monitors the remote one).
    down: bool,
}

/// An observing monitor across nodes, kept by the node of its local agent.
#[derive(Debug)]
struct WatchEdge {
    local: Pid,
    remote: Pid,
    /// The watch's id (the watcher's).
    id: u64,
    /// `local` watches `remote` (else `remote` watches `local`).
    ours: bool,
}

/// The edges and watches of one node, by peer `K`.
#[derive(Debug)]
pub(crate) struct EdgeTable<K: Ord> {
    edges: BTreeMap<K, Vec<Edge>>,
    watches: BTreeMap<K, Vec<WatchEdge>>,
}

impl<K: Ord> Default for EdgeTable<K> {
    fn default() -> EdgeTable<K> {
        EdgeTable {
            edges: BTreeMap::new(),
            watches: BTreeMap::new(),
        }
    }
}

/// What a lost peer leaves: the local halves to fire.
#[derive(Debug, Default)]
pub(crate) struct Lost {
    edges: Vec<Edge>,
    watches: Vec<WatchEdge>,
}

impl<K: Ord + Clone> EdgeTable<K> {
    /// `peer` as a key.
    fn key<Q>(peer: &Q) -> K
    where
        Q: ToOwned<Owned = K> + ?Sized,
    {
        peer.to_owned()
    }

    /// Keeps the edges in step with a signal between `local` and `remote`
    /// (of `peer`), either way: a link or monitor adds the local half
    /// (`down`: fired as a `Down` on loss), an unlink or a fired edge
    /// removes it.
    pub(crate) fn record<Q>(
        &mut self,
        peer: &Q,
        local: &Pid,
        remote: &Pid,
        signal: &RemoteSignal,
        down: bool,
    ) where
        K: Borrow<Q>,
        Q: Ord + ToOwned<Owned = K> + ?Sized,
    {
        match signal {
            RemoteSignal::Link | RemoteSignal::Monitor => self.remember(peer, local, remote, down),
            RemoteSignal::Unlink | RemoteSignal::EdgeExit(_) | RemoteSignal::Down(_) => {
                self.forget(peer, local, remote);
            }
            _ => {}
        }
    }

    /// Keeps the watches in step with a watch signal between `local` and
    /// `remote` (of `peer`): `outbound` when `local` sent it. A watch going
    /// out (ours of theirs) or coming in (theirs of ours) is remembered;
    /// an unwatch or a fired watch forgets it.
    pub(crate) fn record_watch<Q>(
        &mut self,
        peer: &Q,
        local: &Pid,
        remote: &Pid,
        signal: &RemoteSignal,
        outbound: bool,
    ) where
        K: Borrow<Q>,
        Q: Ord + ToOwned<Owned = K> + ?Sized,
    {
        let (id, add, ours) = match signal {
            RemoteSignal::Watch { id } => (*id, true, outbound),
            RemoteSignal::Unwatch { id } => (*id, false, outbound),
            // A WatchDown from the watched side ends the watcher's watch.
            RemoteSignal::WatchDown { id, .. } => (*id, false, !outbound),
            _ => return,
        };
        let watches = self.watches.entry(Self::key(peer)).or_default();
        if add {
            watches.push(WatchEdge {
                local: local.clone(),
                remote: remote.clone(),
                id,
                ours,
            });
        } else {
            watches.retain(|w| {
                !(w.id == id && w.ours == ours && w.local == *local && w.remote == *remote)
            });
        }
    }

    /// Adds the local half of an edge (once).
    pub(crate) fn remember<Q>(&mut self, peer: &Q, local: &Pid, remote: &Pid, down: bool)
    where
        Q: ToOwned<Owned = K> + ?Sized,
    {
        let edges = self.edges.entry(Self::key(peer)).or_default();
        if !edges
            .iter()
            .any(|e| e.local == *local && e.remote == *remote)
        {
            edges.push(Edge {
                local: local.clone(),
                remote: remote.clone(),
                down,
            });
        }
    }

    /// Removes the local half of an edge.
    pub(crate) fn forget<Q>(&mut self, peer: &Q, local: &Pid, remote: &Pid)
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        if let Some(edges) = self.edges.get_mut(peer) {
            edges.retain(|e| !(e.local == *local && e.remote == *remote));
        }
    }

    /// Takes everything kept for `peer` (it is lost).
    pub(crate) fn take<Q>(&mut self, peer: &Q) -> Lost
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        Lost {
            edges: self.edges.remove(peer).unwrap_or_default(),
            watches: self.watches.remove(peer).unwrap_or_default(),
        }
    }

    /// The peers with edges kept.
    pub(crate) fn peers(&self) -> Vec<K> {
        self.edges.keys().cloned().collect()
    }
}

impl Lost {
    /// Fires each local half with `noconnection` through `runtime`, as if
    /// from the remote agent: a `Down` where the local agent monitored, an
    /// exit signal otherwise; our watch of theirs fires, theirs of ours
    /// goes.
    pub(crate) fn fire(self, runtime: &RuntimeHandle) {
        for edge in self.edges {
            let signal = if edge.down {
                RemoteSignal::Down(ExitStatus::Exit(ExitReason::NoConnection))
            } else {
                RemoteSignal::EdgeExit(ExitReason::NoConnection)
            };
            runtime.signal(&edge.remote, &edge.local, signal);
        }
        for watch in self.watches {
            let signal = if watch.ours {
                RemoteSignal::WatchDown {
                    id: watch.id,
                    status: ExitStatus::Exit(ExitReason::NoConnection),
                }
            } else {
                RemoteSignal::Unwatch { id: watch.id }
            };
            runtime.signal(&watch.remote, &watch.local, signal);
        }
    }
}
