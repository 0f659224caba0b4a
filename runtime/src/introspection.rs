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

/// How an agent ended, as metrics count it: the class of its
/// [`ExitStatus`](crate::ExitStatus).
///
/// ```
/// use erlangen_runtime::{ExitClass, ExitReason, ExitStatus};
/// assert_eq!(ExitClass::of(&ExitStatus::Exit(ExitReason::Kill)).name(), "kill");
/// assert_eq!(ExitClass::ALL.len(), ExitClass::COUNT);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExitClass {
    /// Its function returned.
    Returned,
    /// Killed (`ExitReason::Kill`).
    Kill,
    /// It panicked.
    Panic,
    /// A linked agent's end took it.
    Linked,
    /// Its node or runtime was lost.
    NoConnection,
    /// Asked to stop (`ExitReason::Shutdown`).
    Shutdown,
    /// Any other reason (its own, a timeout, `noproc`, a system limit).
    Other,
}

impl ExitClass {
    /// How many classes there are.
    pub const COUNT: usize = 7;
    /// Every class, in a fixed order.
    pub const ALL: [ExitClass; ExitClass::COUNT] = [
        ExitClass::Returned,
        ExitClass::Kill,
        ExitClass::Panic,
        ExitClass::Linked,
        ExitClass::NoConnection,
        ExitClass::Shutdown,
        ExitClass::Other,
    ];

    /// The class of `status`.
    pub fn of(status: &crate::ExitStatus) -> ExitClass {
        use crate::{ExitReason, ExitStatus};
        match status {
            ExitStatus::Ok(_) => ExitClass::Returned,
            ExitStatus::Exit(ExitReason::Kill) => ExitClass::Kill,
            ExitStatus::Exit(ExitReason::Panic(_)) => ExitClass::Panic,
            ExitStatus::Exit(ExitReason::Linked(_)) => ExitClass::Linked,
            ExitStatus::Exit(ExitReason::NoConnection) => ExitClass::NoConnection,
            ExitStatus::Exit(ExitReason::Shutdown) => ExitClass::Shutdown,
            ExitStatus::Exit(_) => ExitClass::Other,
        }
    }

    /// Its name in metrics (a label value).
    pub fn name(self) -> &'static str {
        match self {
            ExitClass::Returned => "returned",
            ExitClass::Kill => "kill",
            ExitClass::Panic => "panic",
            ExitClass::Linked => "linked",
            ExitClass::NoConnection => "noconnection",
            ExitClass::Shutdown => "shutdown",
            ExitClass::Other => "other",
        }
    }
}

/// A snapshot of a runtime's counters and gauges, for metrics
/// ([`Runtime::metrics`](crate::Runtime::metrics)). Counters count from the
/// runtime's start. Taking one walks the live agents once (for the mailbox
/// histogram and the per-agent sums): about as costly as
/// [`Runtime::agents`](crate::Runtime::agents), and it never stops a worker.
///
/// ```
/// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
/// rt.run(|_ctx| ()).unwrap();
/// let metrics = rt.metrics();
/// assert_eq!((metrics.workers, metrics.spawned_total), (1, 1));
/// assert_eq!(metrics.exited_total[0], (erlangen_runtime::ExitClass::Returned, 1));
/// ```
#[derive(Clone, Debug)]
pub struct RuntimeMetrics {
    /// Worker threads.
    pub workers: usize,
    /// Of them, parked now.
    pub parked_workers: usize,
    /// Agents alive now.
    pub agents: usize,
    /// Agents spawned so far.
    pub spawned_total: u64,
    /// Agents ended so far, by class.
    pub exited_total: Vec<(ExitClass, u64)>,
    /// Agents waiting to run, per worker (its stealable deque and its
    /// inbox; the agents it holds privately are not counted).
    pub run_queue_lengths: Vec<usize>,
    /// Batches of agents workers took from one another.
    pub steals_total: u64,
    /// Messages sent (to local and remote agents, delivered or refused);
    /// a worker's count is published after each resume, so an agent that
    /// is running now has its sends counted when it yields.
    pub messages_sent_total: u64,
    /// Panics outside agents caught on workers.
    pub contained_panics_total: u64,
    /// Live agents by mailbox length: for each bound (0, 1, 4, 16, 64, 256,
    /// 1,024, 4,096 and 65,536 messages), the agents whose mailbox holds at
    /// most that many (cumulative, as Prometheus histograms are).
    pub mailbox_buckets: Vec<(usize, u64)>,
    /// Messages waiting in live agents' mailboxes, in all.
    pub mailbox_messages: u64,
    /// Messages live agents' mailboxes refused (full or closed).
    pub dropped_by_live_agents: u64,
    /// Watchdog warnings of live agents.
    pub watchdog_warnings_of_live_agents: u64,
}

/// The runtime's counters and gauges ([`RuntimeMetrics`]). The per-agent
/// figures come from a walk of the live table in chunks
/// (agent_list.rs step 1); `between_chunks` runs after each.
pub(crate) fn metrics(shared: &Shared, mut between_chunks: impl FnMut()) -> RuntimeMetrics {
    use crate::config::{AGENT_LIST_CHUNK_LEN, METRICS_MAILBOX_BUCKETS};
    let (spawned_total, exited) = shared.live.counts();
    let mut buckets = vec![0u64; METRICS_MAILBOX_BUCKETS.len()];
    let (mut agents, mut messages, mut dropped, mut warnings) = (0usize, 0u64, 0u64, 0u64);
    let mut chunk = Vec::with_capacity(AGENT_LIST_CHUNK_LEN);
    shared
        .live
        .visit_chunks(AGENT_LIST_CHUNK_LEN, &mut chunk, |chunk| {
            for cell in chunk.iter() {
                let queued = cell.mailbox.len();
                agents += 1;
                messages += queued as u64;
                dropped += cell.mailbox.dropped();
                warnings += u64::from(cell.watchdog_warnings.load(Ordering::Relaxed));
                for (bucket, &bound) in buckets.iter_mut().zip(METRICS_MAILBOX_BUCKETS.iter()) {
                    if queued <= bound {
                        *bucket += 1;
                    }
                }
            }
            between_chunks();
        });
    RuntimeMetrics {
        workers: shared.workers.len(),
        parked_workers: shared.parked_workers(),
        agents,
        spawned_total,
        exited_total: ExitClass::ALL.iter().copied().zip(exited).collect(),
        run_queue_lengths: shared
            .workers
            .iter()
            .map(|w| w.stealer.len() + w.inbox.len())
            .collect(),
        steals_total: shared
            .workers
            .iter()
            .map(|w| w.steals.load(Ordering::Relaxed))
            .sum(),
        messages_sent_total: shared
            .workers
            .iter()
            .map(|w| w.sent.load(Ordering::Relaxed))
            .sum::<u64>()
            + shared.sent_outside.load(Ordering::Relaxed),
        contained_panics_total: shared.contained_panics.load(Ordering::Relaxed),
        mailbox_buckets: METRICS_MAILBOX_BUCKETS
            .iter()
            .copied()
            .zip(buckets)
            .collect(),
        mailbox_messages: messages,
        dropped_by_live_agents: dropped,
        watchdog_warnings_of_live_agents: warnings,
    }
}
