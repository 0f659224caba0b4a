//! What a node keeps of each peer beyond its connection: the local halves
//! of links, monitors and watches across nodes, fired with `noconnection`
//! when the peer is lost (step 6), and the bounded record of departed
//! peers.

use std::sync::atomic::Ordering;

use erlangen_runtime::{Pid, RemotePid, RemoteSignal};

use crate::command::Target;
use crate::config::DEPARTED_PEERS_KEPT;

use super::{Command, EventLoop};

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
    /// `remote` (of node `peer`), either way (edge_table.rs `record`).
    pub(super) fn record_edge(
        &mut self,
        peer: &str,
        local: &Pid,
        remote: &Pid,
        signal: &RemoteSignal,
        down: bool,
    ) {
        self.edges.record(peer, local, remote, signal, down);
    }

    /// Keeps the watches in step with a watch signal (edge_table.rs
    /// `record_watch`).
    pub(super) fn record_watch(
        &mut self,
        peer: &str,
        local: &Pid,
        remote: &Pid,
        signal: &RemoteSignal,
        outbound: bool,
    ) {
        self.edges
            .record_watch(peer, local, remote, signal, outbound);
    }

    /// Adds the local half of an edge (once).
    pub(super) fn remember_edge(&mut self, peer: &str, local: &Pid, remote: &Pid, down: bool) {
        self.edges.remember(peer, local, remote, down);
    }

    /// Removes the local half of an edge.
    pub(super) fn forget_edge(&mut self, peer: &str, local: &Pid, remote: &Pid) {
        self.edges.forget(peer, local, remote);
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
        self.edges.take(peer).fire(&self.shared.runtime);
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
