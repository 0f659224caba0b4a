//! Introspection: per-agent counters ([`AgentStats`]), the agent tree
//! ([`AgentTree`], Erlangen's `agent-tree`), and the list of live agents.

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::pid::Pid;
use crate::scheduler::Shared;
use crate::sync::lock;

/// Counters and times of one agent (Erlangen's `agent-stats`).
///
/// ```
/// use erlangen_runtime::SpawnOptions;
/// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
/// let stats = rt.run(|ctx| {
///     let sink = ctx.spawn_with(SpawnOptions::new().mailbox_len(1), |ctx| {
///         ctx.sleep(std::time::Duration::from_secs(60));
///     }).unwrap();
///     ctx.send(&sink, 1u8);
///     ctx.send(&sink, 2u8); // dropped: the mailbox holds one
///     let stats = ctx.stats(&sink);
///     ctx.kill(&sink, erlangen_runtime::ExitReason::Kill);
///     stats
/// }).unwrap();
/// assert_eq!((stats.queued, stats.dropped, stats.died), (1, 1, None));
/// ```
#[derive(Clone, Debug)]
pub struct AgentStats {
    /// Messages and notifications the agent has taken from its mailbox.
    pub received: u64,
    /// Messages refused because its mailbox was full or closed.
    pub dropped: u64,
    /// Messages waiting in its data lane now.
    pub queued: usize,
    /// When it was spawned.
    pub born: SystemTime,
    /// When it exited, if it has.
    pub died: Option<SystemTime>,
    /// Times the watchdog named it for holding its worker without a runtime
    /// call longer than the runtime's threshold.
    pub watchdog_warnings: u64,
    /// Times it hibernated (`Ctx::hibernate`).
    pub hibernations: u64,
}

impl AgentStats {
    pub(crate) fn of(pid: &Pid) -> AgentStats {
        let Some(cell) = pid.cell() else {
            // An agent of another node: nothing is known here.
            return AgentStats {
                received: 0,
                dropped: 0,
                queued: 0,
                born: UNIX_EPOCH,
                died: None,
                watchdog_warnings: 0,
                hibernations: 0,
            };
        };
        let died_ns = cell.died_ns.load(Ordering::Acquire);
        AgentStats {
            received: cell.mailbox.received(),
            dropped: cell.mailbox.dropped(),
            queued: cell.mailbox.len(),
            born: UNIX_EPOCH + Duration::from_nanos(cell.born_ns),
            died: (died_ns != 0).then(|| UNIX_EPOCH + Duration::from_nanos(died_ns)),
            watchdog_warnings: u64::from(cell.watchdog_warnings.load(Ordering::Relaxed)),
            hibernations: u64::from(cell.hibernations.load(Ordering::Relaxed)),
        }
    }
}

/// An agent with the agents it monitors, recursively, and its other links.
/// Safe on cycles: an agent appears once; a repeat shows up under `linked`.
///
/// Printed, it reads like Erlangen's:
///
/// ```text
/// <1> (linked: <5>)
///     ↳ <2>
///         ↳ <4>
///     ↳ <3>
/// ```
#[derive(Clone, Debug)]
pub struct AgentTree {
    /// The agent at this node of the tree.
    pub root: Pid,
    /// Agents it is linked to (or that monitor it), not monitored by it.
    pub linked: Vec<Pid>,
    /// Subtrees of the agents it monitors.
    pub monitored: Vec<AgentTree>,
}

impl AgentTree {
    pub(crate) fn of(pid: &Pid) -> AgentTree {
        let mut seen = HashSet::new();
        build(pid, &mut seen)
    }

    fn write(&self, f: &mut fmt::Formatter<'_>, depth: usize) -> fmt::Result {
        if depth > 0 {
            write!(f, "{:width$}↳ ", "", width = depth * 4)?;
        }
        write!(f, "{}", self.root)?;
        if !self.linked.is_empty() {
            let linked: Vec<String> = self.linked.iter().map(ToString::to_string).collect();
            write!(f, " (linked: {})", linked.join(" "))?;
        }
        writeln!(f)?;
        for child in &self.monitored {
            child.write(f, depth + 1)?;
        }
        Ok(())
    }
}

impl fmt::Display for AgentTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, 0)
    }
}

fn build(pid: &Pid, seen: &mut HashSet<u64>) -> AgentTree {
    seen.insert(pid.serial());
    let peers: Vec<Pid> = match pid.cell() {
        Some(cell) => lock(&cell.links).kill.clone(),
        None => Vec::new(),
    };
    let mut tree = AgentTree {
        root: pid.clone(),
        linked: Vec::new(),
        monitored: Vec::new(),
    };
    for peer in peers {
        let monitored_by_root = peer
            .cell()
            .is_some_and(|cell| lock(&cell.links).notifies(pid));
        if monitored_by_root && !seen.contains(&peer.serial()) {
            tree.monitored.push(build(&peer, seen));
        } else {
            tree.linked.push(peer);
        }
    }
    tree
}

/// Every live agent of a runtime, by serial number.
pub(crate) fn live_agents(shared: &Shared) -> Vec<Pid> {
    let mut all: Vec<Pid> = shared
        .live
        .snapshot()
        .into_iter()
        .map(Pid::from_cell)
        .collect();
    all.sort();
    all
}
