//! Messages, exit signals, notifications, links and monitors between agents,
//! and what happens when an agent ends (links.rs holds the data and the protocol).
//!
//! Every function here takes at most two link locks at once, and only in
//! `Pid` order (serial number, then address: serials of two runtimes may be
//! equal) (`link`, `unlink`); the exit path takes one at a time.
//! So two agents that monitor each other and die together cannot deadlock
//! (Erlangen bug 10).

use std::sync::Arc;
use std::time::Instant;

use crate::agent::AgentCell;
use crate::config::FULL_MAILBOX_LOG_INTERVAL;
use crate::error::Error;
use crate::exit::{Down, ExitReason, ExitStatus};
use crate::mailbox::Refused;
use crate::message::Message;
use crate::pid::{Pid, PidKind};
use crate::remote::RemoteSignal;
use crate::scheduler::worker::WorkerContext;
use crate::scheduler::{Shared, Task};
use crate::sync::lock;

/// How a caller attaches itself to another agent.
///
/// ```
/// use erlangen_runtime::{Attach, SpawnOptions};
/// let options = SpawnOptions::new().attach(Some(Attach::Monitor));
/// let _ = options;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attach {
    /// Each one's exit kills the other, normal exits included (Erlangen).
    Link,
    /// The caller gets a [`Down`] when the other exits, and the caller's exit
    /// kills the other (Erlangen's monitor, a supervised child).
    Monitor,
}

/// Hands the message in `slot` to the route of a remote `to` (a refused
/// send was counted by the route, which says why). On a worker, the route
/// may buffer it until the worker flushes it (`WorkerContext::owe_flush`).
#[inline(never)]
fn send_remote(
    to: &Pid,
    slot: &mut Option<Message>,
    from: Option<&WorkerContext>,
) -> Result<(), Error> {
    match (to.as_remote(), slot.take(), from) {
        (Some(id), Some(message), Some(worker)) => {
            let sent = id
                .route()
                .send_from_worker(worker.current_serial(), id, message)?;
            if sent.flush {
                worker.owe_flush(id.route());
            }
            worker.set_last_sent(sent);
            Ok(())
        }
        (Some(id), Some(message), None) => id.route().send(id, message),
        _ => Ok(()),
    }
}

impl Shared {
    /// Delivers `message` to `to`'s data lane and wakes it; a full or closed
    /// mailbox drops the message and counts it. A remote `to` gets it
    /// through its route.
    pub(crate) fn deliver_message(&self, to: &Pid, message: Message, from: Option<&WorkerContext>) {
        // From outside an agent's send (a node's loop, a timer, a thread):
        // a traced message, such as one from another node, is counted as
        // one.
        let _ = if message.is_traced() {
            self.deliver_traced_from(to, &mut Some(message), from)
        } else {
            self.deliver_from(to, &mut Some(message), from)
        };
    }

    /// `deliver_message` of the message in `slot`, saying whether it was
    /// delivered (queued in a local mailbox, or taken by a remote route):
    /// the per-message path (`Ctx::send`, `Ctx::try_send`). Nothing reads
    /// the message before the mailbox's lock is taken (`Mailbox::push_from`):
    /// a by-value message is copied on entry, and that wide load of its
    /// sender's fresh stores stalls on store forwarding. The remote route
    /// and the refusal are out of line.
    pub(crate) fn deliver_from(
        &self,
        to: &Pid,
        slot: &mut Option<Message>,
        from: Option<&WorkerContext>,
    ) -> Result<(), Error> {
        self.deliver_with::<false>(to, slot, from)
    }

    /// `deliver_from` of a traced message (trace.rs): its mailbox counts
    /// it, so that the receive looks for it.
    pub(crate) fn deliver_traced_from(
        &self,
        to: &Pid,
        slot: &mut Option<Message>,
        from: Option<&WorkerContext>,
    ) -> Result<(), Error> {
        self.deliver_with::<true>(to, slot, from)
    }

    #[inline(always)]
    fn deliver_with<const TRACED: bool>(
        &self,
        to: &Pid,
        slot: &mut Option<Message>,
        from: Option<&WorkerContext>,
    ) -> Result<(), Error> {
        match from {
            Some(worker) => worker.sent.set(worker.sent.get() + 1),
            None => {
                self.sent_outside
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let PidKind::Local(cell) = &to.kind else {
            return send_remote(to, slot, from);
        };
        let pushed = if TRACED {
            cell.mailbox.push_traced_from(slot)
        } else {
            cell.mailbox.push_from(slot)
        };
        match pushed {
            Ok(()) => {
                self.wake(cell, from);
                Ok(())
            }
            Err(why) => self.refuse(cell, slot, why),
        }
    }

    /// Drops a message a mailbox refused (contained; counted there) and
    /// says why. A full mailbox is never silent: at most one warning a
    /// second per runtime names the agent, with its count of refusals and
    /// how many warnings were held back. (A dead agent's refusals are
    /// Erlangen's silent send to a dead process.)
    #[cold]
    #[inline(never)]
    fn refuse(
        &self,
        cell: &AgentCell,
        slot: &mut Option<Message>,
        why: Refused,
    ) -> Result<(), Error> {
        if let Some(refused) = slot.take() {
            self.drop_contained(refused, cell.serial);
        }
        match why {
            Refused::Closed => Err(Error::NotSent("its agent has exited".to_owned())),
            Refused::Full => {
                self.report_full(cell);
                Err(Error::NotSent("the mailbox is full".to_owned()))
            }
        }
    }

    /// The rate-limited warning of `refuse`.
    fn report_full(&self, cell: &AgentCell) {
        let now = Instant::now();
        let held = {
            let mut log = lock(&self.full_log);
            match log.0 {
                Some(last) if now.duration_since(last) < FULL_MAILBOX_LOG_INTERVAL => {
                    log.1 += 1;
                    return;
                }
                _ => {
                    log.0 = Some(now);
                    std::mem::take(&mut log.1)
                }
            }
        };
        tracing::warn!(
            agent = format_args!("<{:x}>", cell.serial),
            dropped = cell.mailbox.dropped(),
            held,
            "erlangen: a full mailbox refused a message (Ctx::try_send reports it to the sender)"
        );
    }

    /// Files a reply to a local caller's call `tag` and wakes it (reply.rs);
    /// a refused one is dropped and counted.
    pub(crate) fn deliver_reply(
        &self,
        to: &Pid,
        tag: u64,
        message: Message,
        from: Option<&WorkerContext>,
    ) {
        let cell = to.local_cell();
        match cell.mailbox.push_reply(tag, message) {
            Ok(()) => self.wake(cell, from),
            Err(refused) => self.drop_contained(refused, cell.serial),
        }
    }

    /// Sends an exit signal: queued ahead of messages, closes the mailbox,
    /// and takes effect at the target's next runtime call (at once if it is
    /// suspended). An agent that is dead or already dying refuses it (and
    /// counts it as dropped). `sender` is the killing agent, if any, which
    /// a remote target's route needs for ordering.
    pub(crate) fn deliver_exit_from(
        &self,
        sender: Option<&Pid>,
        target: &Pid,
        reason: ExitReason,
        from: Option<&WorkerContext>,
    ) {
        let cell = match &target.kind {
            PidKind::Local(cell) => cell,
            PidKind::Remote(id) => {
                return id.route().signal(sender, id, RemoteSignal::Kill(reason));
            }
        };
        match cell.mailbox.push_exit(reason) {
            Ok(()) => self.wake(cell, from),
            Err(refused) => self.drop_contained(refused, cell.serial),
        }
    }

    /// `deliver_exit_from` with no sending agent.
    pub(crate) fn deliver_exit(
        &self,
        target: &Pid,
        reason: ExitReason,
        from: Option<&WorkerContext>,
    ) {
        self.deliver_exit_from(None, target, reason, from);
    }

    /// Queues a `Down` notification on a local target's control lane.
    pub(crate) fn deliver_down(&self, target: &Pid, down: Down, from: Option<&WorkerContext>) {
        let cell = target.local_cell();
        match cell.mailbox.push_down(down) {
            Ok(()) => self.wake(cell, from),
            Err(refused) => self.drop_contained(refused, cell.serial),
        }
    }

    /// `me` links to (or monitors) `target`. A dead target answers at once
    /// with `noproc`: an exit signal for a link, a `Down` for a monitor.
    pub(crate) fn attach(
        &self,
        me: &Pid,
        target: &Pid,
        how: Attach,
        from: Option<&WorkerContext>,
    ) -> Result<(), Error> {
        if me == target {
            return Err(Error::LinkToSelf);
        }
        if let Some(id) = target.as_remote() {
            self.attach_remote(me, target, id, how);
            return Ok(());
        }
        let target_dead = {
            let (first, second) = if me <= target {
                (me, target)
            } else {
                (target, me)
            };
            let mut first_links = lock(&first.local_cell().links);
            let mut second_links = lock(&second.local_cell().links);
            let (mine, theirs) = if std::ptr::eq(first, me) {
                (&mut *first_links, &mut *second_links)
            } else {
                (&mut *second_links, &mut *first_links)
            };
            if theirs.dead {
                true
            } else {
                match how {
                    Attach::Link => theirs.add_kill(me),
                    Attach::Monitor => theirs.add_notify(me),
                }
                mine.add_kill(target);
                false
            }
        };
        if target_dead {
            match how {
                Attach::Link => self.deliver_exit(me, ExitReason::NoProc, from),
                Attach::Monitor => {
                    let down = Down {
                        pid: target.clone(),
                        status: ExitStatus::Exit(ExitReason::NoProc),
                    };
                    self.deliver_down(me, down, from);
                }
            }
        }
        Ok(())
    }

    /// Removes every link and monitor between `me` and `target`, both ways.
    pub(crate) fn detach(&self, me: &Pid, target: &Pid) -> Result<(), Error> {
        if me == target {
            return Err(Error::LinkToSelf);
        }
        if let Some(id) = target.as_remote() {
            lock(&me.local_cell().links).remove(target);
            id.route().signal(Some(me), id, RemoteSignal::Unlink);
            return Ok(());
        }
        let (first, second) = if me <= target {
            (me, target)
        } else {
            (target, me)
        };
        let mut first_links = lock(&first.local_cell().links);
        let mut second_links = lock(&second.local_cell().links);
        first_links.remove(second);
        second_links.remove(first);
        Ok(())
    }

    /// The agent `cell` ended with `status`: close its mailbox, release its
    /// names, record the status, and fire its links and monitors (links.rs
    /// steps 2 and 3). Runs on the worker that ran the agent last, which
    /// must not use `cell` afterwards (LIVE-QUEUED step 3). Returns the live
    /// table's reference to the cell.
    pub(crate) fn finish(
        &self,
        cell: &Task,
        status: ExitStatus,
        from: Option<&WorkerContext>,
    ) -> Option<Arc<AgentCell>> {
        if let Some(sim) = self.simulated() {
            sim.record(&crate::simulation::SimEvent::Exit {
                node: sim.index,
                agent: cell.serial,
                how: format!("{:?}", crate::introspection::ExitClass::of(&status)),
            });
        }
        let me = Pid::from_cell(cell.to_arc());
        let leftovers = cell.mailbox.close();
        let farewell = lock(&cell.links).take_for_exit();
        for name in &farewell.names {
            self.registry.release(name, &me);
        }
        cell.set_died();
        cell.state.transition_to_done();
        let held = self
            .live
            .remove(cell, crate::introspection::ExitClass::of(&status));
        for peer in &farewell.kill {
            let reason = ExitReason::Linked(Box::new(status.clone()));
            self.fire_edge(&me, peer, Fired::Exit(reason), from);
        }
        for peer in &farewell.notify {
            self.fire_edge(&me, peer, Fired::Down(status.clone()), from);
        }
        if let Some(watches) = farewell.watches {
            self.finish_watches(&me, *watches, &status, from);
        }
        let serial = cell.serial;
        if leftovers.is_some() {
            self.drop_leftovers(leftovers, serial);
        }
        self.drop_contained(status, serial);
        if let Some(hook) = farewell.on_exit {
            hook();
        }
        held
    }
}

/// What an exiting agent's edge delivers to its peer.
pub(crate) enum Fired {
    /// An exit signal (a link, or the monitored side of a monitor).
    Exit(ExitReason),
    /// A notification to a monitor.
    Down(ExitStatus),
}

impl Shared {
    /// Fires the edge from the exiting agent `me` to `peer` (links.rs step
    /// 3): a local peer gets it only if it still holds the edge, which is
    /// removed; a remote peer's node makes the same check (remote.rs).
    pub(crate) fn fire_edge(
        &self,
        me: &Pid,
        peer: &Pid,
        fired: Fired,
        from: Option<&WorkerContext>,
    ) {
        match &peer.kind {
            PidKind::Remote(id) => {
                let signal = match fired {
                    Fired::Exit(reason) => RemoteSignal::EdgeExit(reason),
                    Fired::Down(status) => RemoteSignal::Down(status),
                };
                id.route().signal(Some(me), id, signal);
            }
            PidKind::Local(cell) => self.fire_local_edge(me, cell, fired, from),
        }
    }

    /// `fire_edge` to a local peer. The edge is checked and the signal
    /// queued under the peer's link lock, so an `unlink` by the peer comes
    /// wholly before (no signal) or wholly after (the signal is queued, and
    /// the unlink removes a queued `Down`): never a notification after
    /// `unlink` returned.
    pub(crate) fn fire_local_edge(
        &self,
        me: &Pid,
        cell: &Arc<AgentCell>,
        fired: Fired,
        from: Option<&WorkerContext>,
    ) {
        let pushed = {
            let mut links = lock(&cell.links);
            if !links.remove(me) {
                return;
            }
            match fired {
                Fired::Exit(reason) => cell.mailbox.push_exit(reason).map_err(Fired::Exit),
                Fired::Down(status) => {
                    let down = Down {
                        pid: me.clone(),
                        status,
                    };
                    cell.mailbox
                        .push_down(down)
                        .map_err(|down| Fired::Down(down.status))
                }
            }
        };
        match pushed {
            Ok(()) => self.wake(cell, from),
            Err(refused) => self.drop_contained(refused, cell.serial),
        }
    }
}
