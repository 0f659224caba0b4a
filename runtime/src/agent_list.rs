//! A paged, sorted, filtered listing of the live agents ([`AgentQuery`] →
//! [`AgentPage`] of [`AgentInfo`]): what `erlangen-top` shows, built so that
//! a runtime with a million agents can answer it without stalling anyone.
//!
//! # Protocol
//!
//! 1. The walk visits the live table shard by shard, at most
//!    `AGENT_LIST_CHUNK_LEN` slots at a time: under the shard's lock it only
//!    clones the cells' counted references, so a spawn or exit on that
//!    shard waits for at most one chunk's copies.
//! 2. Outside every lock, each cell of the chunk is read (atomics, its
//!    mailbox length, and its names only when the filter needs them) and
//!    offered to a bounded heap of the best `limit` agents after the cursor.
//! 3. Between chunks the walker may run a callback: an agent passes
//!    `Ctx::yield_now`, so a page of a million agents never holds a worker
//!    for more than one chunk ([`crate::Ctx::agents_page`]).
//! 4. The page is sorted and its agents' names read.
//!
//! Consistency is that of Erlang's `ets:next` on a changing table: each
//! agent's figures are read once, at some moment of the walk; an agent that
//! is spawned or exits during it may or may not be listed, and pages built
//! one after another by a cursor may miss or repeat an agent whose sort key
//! changed between them. Nothing is ever listed that was not alive during
//! the walk.

use std::collections::BinaryHeap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::agent::state::{NOTIFIED, RUNNING, SCHEDULED, WAITING};
use crate::agent::AgentCell;
use crate::agent::NO_HOME;
use crate::config::{AGENT_LIST_CHUNK_LEN, AGENT_PAGE_LEN_MAX};
use crate::pid::Pid;
use crate::scheduler::Shared;
use crate::sync::lock;

/// Where an agent is in its life, as a listing shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AgentState {
    /// Spawned, not yet run.
    Unstarted,
    /// In a run queue: it has something to do.
    Runnable,
    /// A worker is running it now.
    Running,
    /// Suspended in a receive or sleep.
    Waiting,
    /// It has finished and is leaving.
    Exiting,
}

impl AgentState {
    /// Its lower-case name (`"waiting"`).
    pub fn name(self) -> &'static str {
        match self {
            AgentState::Unstarted => "unstarted",
            AgentState::Runnable => "runnable",
            AgentState::Running => "running",
            AgentState::Waiting => "waiting",
            AgentState::Exiting => "exiting",
        }
    }
}

/// One live agent as a listing shows it.
#[derive(Clone, Debug)]
pub struct AgentInfo {
    /// The agent.
    pub pid: Pid,
    /// Names registered to it, sorted.
    pub names: Vec<String>,
    /// Where it is in its life.
    pub state: AgentState,
    /// The worker that runs it, once it started.
    pub worker: Option<usize>,
    /// Messages waiting in its data lane.
    pub queued: usize,
    /// Messages and notifications it has taken.
    pub received: u64,
    /// Messages refused because its mailbox was full or closed.
    pub dropped: u64,
    /// Times a worker resumed it (its slices of run time), sampled: every
    /// 61st resume of a worker counts 61 for the agent it resumes, so the
    /// figure is an estimate, good for agents that run often.
    pub slices: u64,
    /// Times the watchdog named it for holding its worker.
    pub watchdog_warnings: u64,
    /// Usable stack bytes it was given (it holds none while hibernated).
    pub stack_bytes: usize,
    /// Whether it is hibernated now (holding no stack).
    pub hibernated: bool,
}

/// How a listing is sorted: by a figure, largest first, ties by serial
/// number; or by serial number alone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AgentOrder {
    /// Oldest first.
    #[default]
    Serial,
    /// Longest mailbox first.
    Mailbox,
    /// Most slices first.
    Slices,
    /// Most drops first.
    Dropped,
    /// Most messages taken first.
    Received,
}

impl AgentOrder {
    /// The figure an agent is sorted by (0 for [`AgentOrder::Serial`]).
    fn key(self, info: &Figures) -> u64 {
        match self {
            AgentOrder::Serial => 0,
            AgentOrder::Mailbox => info.queued as u64,
            AgentOrder::Slices => info.slices,
            AgentOrder::Dropped => info.dropped,
            AgentOrder::Received => info.received,
        }
    }
}

/// Which agents to list.
///
/// ```
/// use erlangen_runtime::{AgentOrder, AgentQuery};
/// let query = AgentQuery::new().order(AgentOrder::Mailbox).limit(10);
/// assert_eq!(query.limit, 10);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentQuery {
    /// The sort.
    pub order: AgentOrder,
    /// Only agents with a registered name, or a pid text (`<1f>`), that
    /// contains this.
    pub filter: Option<String>,
    /// The page starts after this agent of the sort (`AgentPage::next`).
    pub after: Option<AgentCursor>,
    /// Most agents on the page (at most `AGENT_PAGE_LEN_MAX`; 0 means that).
    pub limit: usize,
}

impl AgentQuery {
    /// The first page, by serial number, of at most `AGENT_PAGE_LEN_MAX`.
    pub fn new() -> AgentQuery {
        AgentQuery::default()
    }

    /// Sorted by `order`.
    pub fn order(mut self, order: AgentOrder) -> AgentQuery {
        self.order = order;
        self
    }

    /// Only agents whose name or pid text contains `filter`.
    pub fn filter(mut self, filter: impl Into<String>) -> AgentQuery {
        self.filter = Some(filter.into());
        self
    }

    /// The page after `cursor`.
    pub fn after(mut self, cursor: AgentCursor) -> AgentQuery {
        self.after = Some(cursor);
        self
    }

    /// At most `limit` agents (clamped to `AGENT_PAGE_LEN_MAX`).
    pub fn limit(mut self, limit: usize) -> AgentQuery {
        self.limit = limit;
        self
    }

    fn page_len(&self) -> usize {
        match self.limit {
            0 => AGENT_PAGE_LEN_MAX,
            limit => limit.min(AGENT_PAGE_LEN_MAX),
        }
    }
}

/// A place in a sorted listing: the sort figure and serial number of the
/// last agent of a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AgentCursor {
    /// The figure the listing is sorted by.
    pub key: u64,
    /// The serial number.
    pub serial: u64,
}

/// One page of a listing.
#[derive(Clone, Debug)]
pub struct AgentPage {
    /// The agents, in the query's order.
    pub agents: Vec<AgentInfo>,
    /// How many live agents matched the filter during the walk.
    pub matched: usize,
    /// The cursor of the next page, if the listing goes on.
    pub next: Option<AgentCursor>,
}

/// What the walk reads of each cell before it knows whether the agent makes
/// the page.
struct Figures {
    queued: usize,
    received: u64,
    dropped: u64,
    slices: u64,
}

/// A candidate in the bounded heap: its rank in the sort and its cell. The
/// heap's greatest is the worst ranked, which a better one replaces.
struct Candidate {
    /// Ordered as the page is: a larger `key` first, then a smaller serial.
    rank: (std::cmp::Reverse<u64>, u64),
    cell: Arc<AgentCell>,
    figures: Figures,
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.rank == other.rank
    }
}

impl Eq for Candidate {}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.rank.cmp(&other.rank)
    }
}

/// Steps 1–4: the page `query` asks for; `between_chunks` runs after each
/// chunk of the walk.
pub(crate) fn agents_page(
    shared: &Shared,
    query: &AgentQuery,
    mut between_chunks: impl FnMut(),
) -> AgentPage {
    let len = query.page_len();
    let after = query
        .after
        .map(|cursor| (std::cmp::Reverse(cursor.key), cursor.serial));
    let mut heap: BinaryHeap<Candidate> = BinaryHeap::with_capacity(len + 1);
    let mut matched = 0;
    let pid_filter = query.filter.as_deref().filter(|filter| {
        filter
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b'<' || b == b'>')
    });
    let mut chunk = Vec::with_capacity(AGENT_LIST_CHUNK_LEN);
    shared
        .live
        .visit_chunks(AGENT_LIST_CHUNK_LEN, &mut chunk, |chunk| {
            for cell in chunk.drain(..) {
                let unmatched = query
                    .filter
                    .as_deref()
                    .is_some_and(|filter| !matches_filter(&cell, filter, pid_filter.is_some()));
                if unmatched {
                    continue;
                }
                matched += 1;
                let figures = figures(&cell);
                let rank = (std::cmp::Reverse(query.order.key(&figures)), cell.serial);
                if after.is_some_and(|after| rank <= after) {
                    continue;
                }
                if heap.len() == len && heap.peek().is_some_and(|worst| worst.rank <= rank) {
                    continue;
                }
                heap.push(Candidate {
                    rank,
                    cell,
                    figures,
                });
                if heap.len() > len {
                    heap.pop();
                }
            }
            between_chunks();
        });
    let candidates = heap.into_sorted_vec();
    let next = (candidates.len() == len)
        .then(|| candidates.last())
        .flatten()
        .map(|last| AgentCursor {
            key: last.rank.0 .0,
            serial: last.rank.1,
        });
    let agents = candidates.into_iter().map(info).collect();
    AgentPage {
        agents,
        matched,
        next,
    }
}

/// Whether a name of the agent, or its pid text, contains `filter` (the
/// pid text is only made when `filter` could be part of one).
fn matches_filter(cell: &AgentCell, filter: &str, pid_like: bool) -> bool {
    (pid_like && format!("<{:x}>", cell.serial).contains(filter))
        || lock(&cell.links)
            .names
            .iter()
            .any(|name| name.contains(filter))
}

/// What a listing shows of the local agent `pid`, if it is alive.
pub(crate) fn info_of(pid: &Pid) -> Option<AgentInfo> {
    let cell = pid.cell()?.clone();
    if cell.has_exited() {
        return None;
    }
    let figures = figures(&cell);
    Some(info(Candidate {
        rank: (std::cmp::Reverse(0), cell.serial),
        cell,
        figures,
    }))
}

fn figures(cell: &AgentCell) -> Figures {
    Figures {
        queued: cell.mailbox.len(),
        received: cell.mailbox.received(),
        dropped: cell.mailbox.dropped(),
        slices: u64::from(cell.slices.load(Ordering::Relaxed)),
    }
}

/// Step 4: what the page shows of a candidate.
fn info(candidate: Candidate) -> AgentInfo {
    let Candidate { cell, figures, .. } = candidate;
    let mut names = lock(&cell.links).names.clone();
    names.sort();
    let home = cell.home.load(Ordering::Acquire);
    let word = cell.state.debug_word();
    let state = match word & !NOTIFIED {
        RUNNING => AgentState::Running,
        WAITING if word == SCHEDULED && home == NO_HOME => AgentState::Unstarted,
        WAITING if word == SCHEDULED => AgentState::Runnable,
        WAITING => AgentState::Waiting,
        _ => AgentState::Exiting,
    };
    AgentInfo {
        names,
        state,
        worker: (home != NO_HOME).then_some(home),
        queued: figures.queued,
        received: figures.received,
        dropped: figures.dropped,
        slices: figures.slices,
        watchdog_warnings: u64::from(cell.watchdog_warnings.load(Ordering::Relaxed)),
        stack_bytes: cell.stack_bytes(),
        hibernated: cell.hibernated.load(Ordering::Relaxed),
        pid: Pid::from_cell(cell),
    }
}
