//! The scheduler's half of edges across nodes: what a runtime does with a
//! signal from a remote agent, and how a local agent attaches to one. The
//! seam itself (`Remote`, `RemotePid`, `RemoteSignal`) is remote.rs, below
//! the scheduler; its module docs give the protocol as numbered steps.

use crate::pid::Pid;
use crate::remote::{RemotePid, RemoteSignal};
use crate::scheduler::signal::{Attach, Fired};
use crate::scheduler::Shared;
use crate::sync::lock;

impl Shared {
    /// Applies `signal` from the remote agent `from` to the local agent `to`
    /// (module docs, steps 1, 3 and 4).
    pub(crate) fn remote_signal(&self, from: &Pid, to: &Pid, signal: RemoteSignal) {
        let (Some(id), Some(cell)) = (from.as_remote(), to.cell()) else {
            return;
        };
        match signal {
            RemoteSignal::Link | RemoteSignal::Monitor => {
                let dead = {
                    let mut links = lock(&cell.links);
                    if !links.dead {
                        match signal {
                            RemoteSignal::Link => links.add_kill(from),
                            _ => links.add_notify(from),
                        }
                    }
                    links.dead
                };
                if let (true, Some(answer)) = (dead, signal.noproc_answer()) {
                    id.route().signal(Some(to), id, answer);
                }
            }
            RemoteSignal::Unlink => {
                lock(&cell.links).remove(from);
            }
            RemoteSignal::Kill(reason) => self.deliver_exit(to, reason, None),
            RemoteSignal::EdgeExit(reason) => {
                self.fire_local_edge(from, cell, Fired::Exit(reason), None);
            }
            RemoteSignal::Down(status) => {
                self.fire_local_edge(from, cell, Fired::Down(status), None);
            }
            RemoteSignal::Watch { id } => self.remote_watch(from, to, id),
            RemoteSignal::Unwatch { id } => lock(&cell.links).remove_watcher(from, id),
            RemoteSignal::WatchDown { id, status } => {
                self.watch_fired(to, from, id, &status, None);
            }
        }
    }

    /// The local agent `me` attaches to the remote agent `target` (its id
    /// `id`) (module docs, step 1). A dead `me` attaches nothing: it is
    /// exiting anyway.
    pub(crate) fn attach_remote(&self, me: &Pid, target: &Pid, id: &RemotePid, how: Attach) {
        {
            let mut links = lock(&me.local_cell().links);
            if links.dead {
                return;
            }
            links.add_kill(target);
        }
        let signal = match how {
            Attach::Link => RemoteSignal::Link,
            Attach::Monitor => RemoteSignal::Monitor,
        };
        id.route().signal(Some(me), id, signal);
    }
}
