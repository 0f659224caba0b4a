//! The scheduler's side of observing monitors: making, firing and removing
//! watches (the protocol is watch.rs's, as numbered steps).

use std::sync::Arc;

use crate::agent::AgentCell;
use crate::error::Error;
use crate::exit::{ExitReason, ExitStatus};
use crate::links::Watches;
use crate::message::Message;
use crate::pid::Pid;
use crate::scheduler::worker::WorkerContext;
use crate::scheduler::Shared;
use crate::sync::lock;
use crate::watch::{ServerEnded, WatchDown, WatchRef, Watcher};

impl Shared {
    /// Step 1: the local agent `me` watches `target` under `id` (and, for a
    /// call, its `tag`). Only agents of this process may be watched for now.
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
        let Some(target_cell) = target.cell() else {
            return Err(Error::NotLocal(format!(
                "{target}: watching an agent of another node is not supported yet"
            )));
        };
        let me_cell = me.local_cell();
        lock(&me_cell.links).add_watching(id, target);
        let dead = {
            let mut theirs = lock(&target_cell.links);
            if !theirs.dead {
                theirs.add_watcher(Watcher {
                    pid: me.clone(),
                    id,
                    tag,
                });
            }
            theirs.dead
        };
        let watch = WatchRef {
            pid: target.clone(),
            id,
        };
        if dead {
            let watcher = Watcher {
                pid: me.clone(),
                id,
                tag,
            };
            let status = ExitStatus::Exit(ExitReason::NoProc);
            self.fire_watch(target, me_cell, watcher, &status, from);
        }
        Ok(watch)
    }

    /// Step 3: `me` removes `watch`. Returns whether it was still armed
    /// (false: its `WatchDown` is queued, and the caller flushes it).
    pub(crate) fn unwatch(&self, me: &Pid, watch: &WatchRef) -> bool {
        let armed = lock(&me.local_cell().links).stop_watching(watch.id);
        if armed {
            if let Some(cell) = watch.pid.cell() {
                lock(&cell.links).remove_watcher(me, watch.id);
            }
        }
        armed
    }

    /// Step 2 for one watcher of `target`, which ended with `status`.
    pub(crate) fn fire_watch(
        &self,
        target: &Pid,
        watcher_cell: &Arc<AgentCell>,
        watcher: Watcher,
        status: &ExitStatus,
        from: Option<&WorkerContext>,
    ) {
        let pushed = {
            let mut links = lock(&watcher_cell.links);
            if !links.stop_watching(watcher.id) {
                return;
            }
            match watcher.tag {
                Some(tag) => {
                    let ended = Message::new(ServerEnded(status.clone()));
                    watcher_cell.mailbox.push_reply_notice(tag, ended)
                }
                None => {
                    let down = WatchDown {
                        watch: WatchRef {
                            pid: target.clone(),
                            id: watcher.id,
                        },
                        status: status.clone(),
                    };
                    watcher_cell.mailbox.push_notice(Message::new(down))
                }
            }
        };
        match pushed {
            Ok(()) => self.wake(watcher_cell, from),
            Err(refused) => self.drop_contained(refused, watcher_cell.serial),
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
            if let Some(cell) = watcher.pid.cell().cloned() {
                self.fire_watch(me, &cell, watcher, status, from);
            }
        }
        for (id, target) in watching {
            if let Some(cell) = target.cell() {
                lock(&cell.links).remove_watcher(me, id);
            }
        }
    }
}
