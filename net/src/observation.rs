//! What one node may ask another's observer (observer.rs) and what it gets
//! back: the introspection requests of `erlangen-top` and
//! [`Node::observe`](crate::Node::observe), as values that cross the wire.
//!
//! Every reply is bounded: at most `config::OBSERVE_PAGE_LEN_MAX` agents or
//! `config::OBSERVE_NAMES_MAX` names, names and texts cut to
//! `config::OBSERVE_TEXT_BYTES_MAX`; longer listings are paged by cursor.

use serde::{Deserialize, Serialize};

/// A request to a node's observer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Observe {
    /// One page of its agents.
    Agents(AgentsRequest),
    /// One agent in detail: its row, tree, links and monitors.
    Agent {
        /// The agent's serial number (its pid prints it in hexadecimal: `<1f>`).
        serial: u64,
    },
    /// Its registered names, sorted, after `after`.
    Registry {
        /// The page starts after this name.
        after: Option<String>,
    },
    /// Its connections to other nodes.
    Peers,
    /// Runtime and node totals.
    Totals,
    /// Kill one of its agents (reason `kill`), as `exit(Pid, kill)` would.
    Kill {
        /// The agent's serial number.
        serial: u64,
    },
    /// Trace one of its agents: its work on the next message it takes
    /// starts a sampled trace, recorded where the node records spans.
    Trace {
        /// The agent's serial number.
        serial: u64,
    },
}

/// Which agents a page lists.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentsRequest {
    /// The sort.
    pub sort: SortBy,
    /// Only agents whose registered name or pid text contains this.
    pub filter: Option<String>,
    /// The page after this `(figure, serial)` cursor (`Observed::Agents`'s
    /// `next`).
    pub after: Option<(u64, u64)>,
    /// Most agents (at most `config::OBSERVE_PAGE_LEN_MAX`; 0 means that).
    pub limit: u32,
}

/// How a page of agents is sorted: by a figure, largest first, or oldest
/// first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SortBy {
    /// Oldest first.
    #[default]
    Serial,
    /// Longest mailbox first.
    Mailbox,
    /// Most run slices first.
    Slices,
    /// Most dropped messages first.
    Dropped,
    /// Most received messages first.
    Received,
}

impl SortBy {
    /// Every sort, in the order `erlangen-top` cycles through them.
    pub const ALL: [SortBy; 5] = [
        SortBy::Mailbox,
        SortBy::Slices,
        SortBy::Dropped,
        SortBy::Received,
        SortBy::Serial,
    ];

    /// Its lower-case name (`"mailbox"`).
    pub fn name(self) -> &'static str {
        match self {
            SortBy::Serial => "serial",
            SortBy::Mailbox => "mailbox",
            SortBy::Slices => "slices",
            SortBy::Dropped => "dropped",
            SortBy::Received => "received",
        }
    }

    /// The runtime's order for it.
    pub(crate) fn order(self) -> erlangen_runtime::AgentOrder {
        use erlangen_runtime::AgentOrder;
        match self {
            SortBy::Serial => AgentOrder::Serial,
            SortBy::Mailbox => AgentOrder::Mailbox,
            SortBy::Slices => AgentOrder::Slices,
            SortBy::Dropped => AgentOrder::Dropped,
            SortBy::Received => AgentOrder::Received,
        }
    }
}

/// A node observer's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Observed {
    /// A page of agents.
    Agents {
        /// The agents, in the request's order.
        agents: Vec<AgentRow>,
        /// How many agents matched the filter while the page was built.
        matched: u64,
        /// The cursor of the next page, if there is one.
        next: Option<(u64, u64)>,
    },
    /// One agent, or `None` if it is not alive.
    Agent(Option<AgentDetail>),
    /// Registered names with their agents' serial numbers, sorted.
    Registry {
        /// The names of this page.
        names: Vec<(String, u64)>,
        /// How many names are registered in all.
        total: u64,
    },
    /// Connections to other nodes, sorted by name.
    Peers(Vec<PeerRow>),
    /// Runtime and node totals.
    Totals(Totals),
    /// Whether the agent to kill was alive.
    Killed {
        /// It was, and is now killed.
        found: bool,
    },
    /// Whether the agent to trace was alive, and whether the node records
    /// spans (a kernel started with `--trace-spans`).
    Tracing {
        /// It was, and its next message starts a trace.
        found: bool,
        /// The node records spans.
        recording: bool,
    },
}

/// One agent as a listing shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRow {
    /// Its serial number (its pid prints it in hexadecimal: `<1f>`).
    pub serial: u64,
    /// Names registered to it (each cut to `config::OBSERVE_TEXT_BYTES_MAX`).
    pub names: Vec<String>,
    /// `unstarted`, `runnable`, `running`, `waiting` or `exiting`.
    pub state: String,
    /// The worker that runs it, once it started.
    pub worker: Option<u32>,
    /// Messages waiting in its mailbox.
    pub queued: u64,
    /// Messages and notifications it has taken.
    pub received: u64,
    /// Messages refused because its mailbox was full.
    pub dropped: u64,
    /// Times a worker resumed it (sampled: the runtime's `AgentInfo`).
    pub slices: u64,
    /// Times the watchdog named it for holding its worker.
    pub watchdog_warnings: u64,
    /// Usable stack bytes it was given.
    pub stack_bytes: u64,
    /// Whether it is hibernated (holding no stack).
    pub hibernated: bool,
}

/// One agent in detail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentDetail {
    /// Its row.
    pub row: AgentRow,
    /// Its agent tree, printed (Erlangen's `agent-tree`; cut).
    pub tree: String,
    /// Agents linked to it (ids as text).
    pub links: Vec<String>,
    /// Agents it monitors.
    pub monitoring: Vec<String>,
    /// Agents that monitor it.
    pub monitored_by: Vec<String>,
}

/// One connection to another node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerRow {
    /// The peer's name.
    pub node: String,
    /// Whether the connection is up.
    pub connected: bool,
    /// Messages and signals sent to it.
    pub packets_out: u64,
    /// Messages and signals received from it.
    pub packets_in: u64,
    /// Bytes written to it.
    pub bytes_out: u64,
    /// Bytes read from it.
    pub bytes_in: u64,
    /// Bytes waiting to be written.
    pub buffered_bytes: u64,
    /// Milliseconds since it was last heard from, if ever.
    pub last_heard_ms: Option<u64>,
    /// Connections to it that ended in an error.
    pub errors: u64,
    /// The last round trip measured on the connection, in µs.
    pub round_trip_us: Option<u64>,
}

/// Runtime and node totals.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// The node's name.
    pub node: String,
    /// Worker threads.
    pub workers: u64,
    /// Of them, parked (idle) now.
    pub parked_workers: u64,
    /// Run queue length of each worker.
    pub run_queue_lengths: Vec<u64>,
    /// Live agents.
    pub agents: u64,
    /// Agents spawned so far.
    pub spawned: u64,
    /// Agents exited so far, by reason class (`returned`, `kill`, …).
    pub exited: Vec<(String, u64)>,
    /// Agents workers stole from each other so far.
    pub steals: u64,
    /// Messages sent so far.
    pub messages_sent: u64,
    /// Messages waiting in all mailboxes.
    pub mailbox_messages: u64,
    /// Panics contained outside agents so far.
    pub contained_panics: u64,
    /// Messages this node dropped (stale ids, unregistered types, lost
    /// nodes).
    pub node_dropped: u64,
}
