//! `LinkSet`: one agent's links and monitors, with Erlangen's semantics
//! (erlangen.md §3.1 `link`/`unlink`, §4).
//!
//! For an agent A the set records:
//! * `kill`: agents that get an exit signal carrying A's whole status when A
//!   exits (Erlangen's `links`). `link(C, X)` puts C in X's and X in C's;
//!   `monitor(C, X)` puts X in C's (the monitor's death kills the monitored).
//! * `notify`: agents that get a `Down` notification when A exits
//!   (Erlangen's `monitors`). `monitor(C, X)` puts C in X's.
//! * `dead`: set once, under the lock, when A starts exiting; a link or
//!   monitor made after that gets `noproc` at once.
//!
//! # Protocol (no nested locks at exit; design-notes §3)
//!
//! 1. `link`/`monitor` lock both sets in serial order, check that the target
//!    is alive, insert both edges, unlock.
//! 2. A dying agent locks only its own set, marks it dead, takes both lists
//!    and its registered names out, and unlocks.
//! 3. Then, for each peer, it locks only the peer's set and removes its own
//!    edge there. Only if the edge was still present (not unlinked meanwhile,
//!    the peer not dead) does it deliver the signal: so each link fires at
//!    most once, and never after an unlink.

use crate::pid::Pid;
use crate::watch::Watcher;

/// Called once an agent has exited and its links fired (`Runtime::run`
/// waits on it).
pub(crate) type ExitHook = Box<dyn FnOnce() + Send>;

/// An agent's link and monitor edges.
#[derive(Default)]
pub(crate) struct LinkSet {
    /// Agents to kill with our status when we exit.
    pub(crate) kill: Vec<Pid>,
    /// Agents to notify with `Down` when we exit.
    pub(crate) notify: Vec<Pid>,
    /// Names registered to this agent, released at exit.
    pub(crate) names: Vec<String>,
    /// Set once when the agent starts exiting.
    pub(crate) dead: bool,
    /// Run after the exit is complete.
    pub(crate) on_exit: Option<ExitHook>,
    /// Observing monitors, both ways (watch.rs); made on the first, so
    /// that an agent without any costs one word.
    pub(crate) watches: Option<Box<Watches>>,
}

/// An agent's observing monitors (watch.rs).
#[derive(Debug, Default)]
pub(crate) struct Watches {
    /// Agents that watch us.
    pub(crate) watchers: Vec<Watcher>,
    /// Agents we watch: the watch id, the target and, for a call's watch,
    /// the call's tag (where its notice is filed).
    pub(crate) watching: Vec<(u64, Pid, Option<u64>)>,
}

impl std::fmt::Debug for LinkSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkSet")
            .field("kill", &self.kill)
            .field("notify", &self.notify)
            .field("names", &self.names)
            .field("dead", &self.dead)
            .finish_non_exhaustive()
    }
}

/// The edges a dying agent must fire, taken out of its set at step 2.
#[derive(Default)]
pub(crate) struct Farewell {
    /// Agents to kill with our status.
    pub(crate) kill: Vec<Pid>,
    /// Agents to notify.
    pub(crate) notify: Vec<Pid>,
    /// Names to release.
    pub(crate) names: Vec<String>,
    /// Run last.
    pub(crate) on_exit: Option<ExitHook>,
    /// Watchers to tell (watch.rs step 2) and targets whose records of our
    /// watches go (step 4).
    pub(crate) watches: Option<Box<Watches>>,
}

impl LinkSet {
    /// Adds `pid` to the kill list unless present.
    pub(crate) fn add_kill(&mut self, pid: &Pid) {
        if !self.kill.contains(pid) {
            self.kill.push(pid.clone());
        }
    }

    /// Adds `pid` to the notify list unless present.
    pub(crate) fn add_notify(&mut self, pid: &Pid) {
        if !self.notify.contains(pid) {
            self.notify.push(pid.clone());
        }
    }

    /// Removes every edge to `pid`; returns whether there was one.
    pub(crate) fn remove(&mut self, pid: &Pid) -> bool {
        let before = self.kill.len() + self.notify.len();
        self.kill.retain(|p| p != pid);
        self.notify.retain(|p| p != pid);
        before != self.kill.len() + self.notify.len()
    }

    /// Removes our record of watch `id`; returns whether it was there.
    /// Removes our record of watch `id`; returns it if it was there: `Some`
    /// with the call's tag (or `None` for a plain watch).
    pub(crate) fn stop_watching(&mut self, id: u64) -> Option<Option<u64>> {
        let watching = &mut self.watches.as_mut()?.watching;
        let at = watching.iter().position(|(watch, _, _)| *watch == id)?;
        Some(watching.swap_remove(at).2)
    }

    /// Records that we watch `target` under `id` (for a call: `tag`).
    pub(crate) fn add_watching(&mut self, id: u64, target: &Pid, tag: Option<u64>) {
        let watches = self.watches.get_or_insert_default();
        watches.watching.push((id, target.clone(), tag));
    }

    /// Records that `watcher` watches us.
    pub(crate) fn add_watcher(&mut self, watcher: Watcher) {
        self.watches.get_or_insert_default().watchers.push(watcher);
    }

    /// Removes `watcher`'s record of watch `id` on us.
    pub(crate) fn remove_watcher(&mut self, watcher: &Pid, id: u64) {
        if let Some(watches) = self.watches.as_mut() {
            watches
                .watchers
                .retain(|w| !(w.id == id && w.pid == *watcher));
        }
    }

    /// Whether `pid` is in the notify list (we are monitored by it).
    pub(crate) fn notifies(&self, pid: &Pid) -> bool {
        self.notify.contains(pid)
    }

    /// Step 2: marks the agent dead and takes its edges and names.
    pub(crate) fn take_for_exit(&mut self) -> Farewell {
        debug_assert!(!self.dead, "an agent exits once");
        self.dead = true;
        Farewell {
            kill: std::mem::take(&mut self.kill),
            notify: std::mem::take(&mut self.notify),
            names: std::mem::take(&mut self.names),
            on_exit: self.on_exit.take(),
            watches: self.watches.take(),
        }
    }
}
