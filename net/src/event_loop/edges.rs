//! What a node keeps of each peer beyond its connection: the local halves
//! of links, monitors and watches across nodes, fired with `noconnection`
//! when the peer is lost (step 6), and the bounded record of departed
//! peers.

use std::sync::atomic::Ordering;

use erlangen_runtime::{ExitReason, ExitStatus, Pid, RemotePid, RemoteSignal};

use crate::command::Target;
use crate::config::DEPARTED_PEERS_KEPT;

use super::{Command, Edge, EventLoop, WatchEdge};

impl EventLoop {
    /// Remembers the local half of a link or monitor going out, and forgets
    /// an edge that fires or is unlinked.
    pub(super) fn record_outbound_edge(&mut self, command: &Command) {
        let Command::Signal {
            from: Some(local),
            to,
            signal,
        } = command
        else {
            return;
        };
        let remote = self.remote_pid(to);
        // A local agent that monitors a remote one gets a `Down` on loss.
        let local_monitors = matches!(signal, RemoteSignal::Monitor);
        self.record_edge(&to.node, local, &remote, signal, local_monitors);
        self.record_watch(&to.node, local, &remote, signal, true);
    }

    pub(super) fn remote_pid(&self, target: &Target) -> Pid {
        Pid::remote(RemotePid::new(
            target.node.as_str(),
            target.incarnation,
            target.serial,
            self.shared.route(&target.node),
        ))
    }

    /// A signal to an id of an incarnation that is gone: a link or monitor
    /// gets `noproc`, anything else is dropped.
    pub(super) fn answer_stale(&mut self, from: Option<&Pid>, to: &Target, signal: &RemoteSignal) {
        let Some(local) = from else {
            return;
        };
        let remote = self.remote_pid(to);
        self.forget_edge(&to.node, local, &remote);
        match signal.noproc_answer() {
            Some(answer) => self.shared.runtime.signal(&remote, local, answer),
            None => {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Keeps the edge table in step with a signal between `local` and
    /// `remote` (of node `peer`), either way: a link or monitor adds the
    /// local half (`down`: fired as a `Down` on loss), an unlink or a fired
    /// edge removes it.
    pub(super) fn record_edge(
        &mut self,
        peer: &str,
        local: &Pid,
        remote: &Pid,
        signal: &RemoteSignal,
        down: bool,
    ) {
        match signal {
            RemoteSignal::Link | RemoteSignal::Monitor => {
                self.remember_edge(peer, local, remote, down)
            }
            RemoteSignal::Unlink | RemoteSignal::EdgeExit(_) | RemoteSignal::Down(_) => {
                self.forget_edge(peer, local, remote);
            }
            _ => {}
        }
    }

    /// Keeps the watch table in step with a watch signal between `local`
    /// and `remote` (of node `peer`): `outbound` when `local` sent it. A
    /// watch going out (ours of theirs) or coming in (theirs of ours) is
    /// remembered; an unwatch or a fired watch forgets it.
    pub(super) fn record_watch(
        &mut self,
        peer: &str,
        local: &Pid,
        remote: &Pid,
        signal: &RemoteSignal,
        outbound: bool,
    ) {
        let (id, add, ours) = match signal {
            RemoteSignal::Watch { id } => (*id, true, outbound),
            RemoteSignal::Unwatch { id } => (*id, false, outbound),
            // A WatchDown from the watched side ends the watcher's watch.
            RemoteSignal::WatchDown { id, .. } => (*id, false, !outbound),
            _ => return,
        };
        let watches = self.watches.entry(peer.to_owned()).or_default();
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
    pub(super) fn remember_edge(&mut self, peer: &str, local: &Pid, remote: &Pid, down: bool) {
        let edges = self.edges.entry(peer.to_owned()).or_default();
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
    pub(super) fn forget_edge(&mut self, peer: &str, local: &Pid, remote: &Pid) {
        if let Some(edges) = self.edges.get_mut(peer) {
            edges.retain(|e| !(e.local == *local && e.remote == *remote));
        }
    }

    /// Remembers that `peer` left; past `DEPARTED_PEERS_KEPT`, the stats
    /// of the longest gone are forgotten (one that came back stays), so a
    /// node serving short-lived peers keeps a bounded record of them.
    pub(super) fn depart(&mut self, peer: String) {
        self.departed.push_back(peer);
        while self.departed.len() > DEPARTED_PEERS_KEPT {
            let Some(oldest) = self.departed.pop_front() else {
                break;
            };
            if self.up.contains_key(&oldest) {
                continue;
            }
            let mut stats = crate::sync::lock(&self.shared.stats);
            if stats.get(&oldest).is_some_and(|entry| !entry.connected) {
                stats.remove(&oldest);
            }
        }
    }

    /// Step 6 for `peer`.
    pub(super) fn lose(&mut self, peer: &str, why: &str) {
        if self.up.contains_key(peer) {
            return;
        }
        self.went_down(peer, why);
        self.redials.remove(peer);
        for edge in self.edges.remove(peer).unwrap_or_default() {
            let signal = if edge.down {
                RemoteSignal::Down(ExitStatus::Exit(ExitReason::NoConnection))
            } else {
                RemoteSignal::EdgeExit(ExitReason::NoConnection)
            };
            self.shared
                .runtime
                .signal(&edge.remote, &edge.local, signal);
        }
        for watch in self.watches.remove(peer).unwrap_or_default() {
            // Our watch of theirs fires `noconnection`; theirs of ours goes.
            let signal = if watch.ours {
                RemoteSignal::WatchDown {
                    id: watch.id,
                    status: ExitStatus::Exit(ExitReason::NoConnection),
                }
            } else {
                RemoteSignal::Unwatch { id: watch.id }
            };
            self.shared
                .runtime
                .signal(&watch.remote, &watch.local, signal);
        }
        let failed: Vec<u64> = self
            .spawns
            .iter()
            .filter(|(_, (node, _, _))| node == peer)
            .map(|(request, _)| *request)
            .collect();
        for request in failed {
            if let Some((_, parent, _)) = self.spawns.remove(&request) {
                self.spawn_failed(&parent, request, format!("noconnection: {why}"));
            }
        }
        self.fail_lookups(Some(peer), &format!("noconnection: {why}"));
        for command in self.waiting.remove(peer).unwrap_or_default() {
            self.drop_command(command, &format!("noconnection: {why}"));
        }
    }
}
