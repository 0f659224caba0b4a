//! The scheduler's side of observing monitors: making, firing and removing
//! watches, with the watcher or the watched agent on this node or another
//! (the protocol is watch.rs's, as numbered steps; a remote half travels
//! as `RemoteSignal::Watch`, `Unwatch` and `WatchDown`).

use crate::error::Error;
use crate::exit::{ExitReason, ExitStatus};
use crate::links::Watches;
use crate::message::Message;
use crate::pid::Pid;
use crate::remote::RemoteSignal;
use crate::scheduler::worker::WorkerContext;
use crate::scheduler::Shared;
use crate::sync::lock;
use crate::watch::{ServerEnded, WatchDown, WatchRef, Watcher};

impl Shared {
    /// Step 1: the local agent `me` watches `target` under `id` (for a
    /// call: with its `tag`).
    pub(crate) fn watch(
        &self,
        me: &Pid,
        target: &Pid,
        id: u64,
        tag: Option<u64>,
        from: Option<&WorkerContext>,
    ) -> Result<WatchRef, Error> {
        if me == target {
            return Err(Error::LinkToSelf);
        }
        lock(&me.local_cell().links).add_watching(id, target, tag);
        let watch = WatchRef {
            pid: target.clone(),
            id,
        };
        if let Some(remote) = target.as_remote() {
            // Its node records us and answers `WatchDown` (noproc if it is
            // gone); a lost node fires it here with `noconnection`.
            remote
                .route()
                .signal(Some(me), remote, RemoteSignal::Watch { id });
            return Ok(watch);
        }
        let target_cell = target.local_cell();
        let dead = {
            let mut theirs = lock(&target_cell.links);
            if !theirs.dead {
                theirs.add_watcher(Watcher {
                    pid: me.clone(),
                    id,
                });
            }
            theirs.dead
        };
        if dead {
            let status = ExitStatus::Exit(ExitReason::NoProc);
            self.watch_fired(me, target, id, &status, from);
        }
        Ok(watch)
    }

    /// Step 3: `me` removes `watch`. Returns whether it was still armed
    /// (false: its notice is queued, and the caller flushes it).
    pub(crate) fn unwatch(&self, me: &Pid, watch: &WatchRef) -> bool {
        let armed = lock(&me.local_cell().links)
            .stop_watching(watch.id)
            .is_some();
        if armed {
            match watch.pid.as_remote() {
                Some(remote) => {
                    remote
                        .route()
                        .signal(Some(me), remote, RemoteSignal::Unwatch { id: watch.id })
                }
                None => lock(&watch.pid.local_cell().links).remove_watcher(me, watch.id),
            }
        }
        armed
    }

    /// Step 2 on the watcher's side: the agent `target` that the local
    /// `watcher` watches under `id` ended with `status`. Queued under the
    /// watcher's lock, only if the watch is still armed.
    pub(crate) fn watch_fired(
        &self,
        watcher: &Pid,
        target: &Pid,
        id: u64,
        status: &ExitStatus,
        from: Option<&WorkerContext>,
    ) {
        let Some(cell) = watcher.cell() else {
            return;
        };
        let pushed = {
            let mut links = lock(&cell.links);
            let Some(tag) = links.stop_watching(id) else {
                return;
            };
            match tag {
                Some(tag) => {
                    let ended = Message::new(ServerEnded(status.clone()));
                    cell.mailbox.push_reply_notice(tag, ended)
                }
                None => {
                    let down = WatchDown {
                        watch: WatchRef {
                            pid: target.clone(),
                            id,
                        },
                        status: status.clone(),
                    };
                    cell.mailbox.push_notice(Message::new(down))
                }
            }
        };
        match pushed {
            Ok(()) => self.wake(cell, from),
            Err(refused) => self.drop_contained(refused, cell.serial),
        }
    }

    /// A remote agent `watcher` watches the local `target` under `id`
    /// (step 1 on the watched node): recorded, or answered `noproc` if
    /// `target` is gone.
    pub(crate) fn remote_watch(&self, watcher: &Pid, target: &Pid, id: u64) {
        let Some(remote) = watcher.as_remote() else {
            return;
        };
        let dead = match target.cell() {
            Some(cell) => {
                let mut links = lock(&cell.links);
                if !links.dead {
                    links.add_watcher(Watcher {
                        pid: watcher.clone(),
                        id,
                    });
                }
                links.dead
            }
            None => true,
        };
        if dead {
            let status = ExitStatus::Exit(ExitReason::NoProc);
            remote
                .route()
                .signal(Some(target), remote, RemoteSignal::WatchDown { id, status });
        }
    }

    /// At `me`'s exit: tell its watchers (step 2) and drop its records on
    /// the agents it watched (step 4).
    pub(crate) fn finish_watches(
        &self,
        me: &Pid,
        watches: Watches,
        status: &ExitStatus,
        from: Option<&WorkerContext>,
    ) {
        let Watches { watchers, watching } = watches;
        for watcher in watchers {
            match watcher.pid.as_remote() {
                Some(remote) => remote.route().signal(
                    Some(me),
                    remote,
                    RemoteSignal::WatchDown {
                        id: watcher.id,
                        status: status.clone(),
                    },
                ),
                None => self.watch_fired(&watcher.pid, me, watcher.id, status, from),
            }
        }
        for (id, target, _) in watching {
            match target.as_remote() {
                Some(remote) => {
                    remote
                        .route()
                        .signal(Some(me), remote, RemoteSignal::Unwatch { id });
                }
                None => lock(&target.local_cell().links).remove_watcher(me, id),
            }
        }
    }
}
