//! The observer: the agent on every node that answers introspection
//! requests ([`Observe`]) from other nodes — `erlangen-top` and
//! [`Node::observe`](crate::Node::observe).
//!
//! # Protocol
//!
//! 1. `Node::start` spawns it and registers it as [`OBSERVER_NAME`];
//!    stopping the node kills it.
//! 2. A peer calls it as any server (`Node::observe`: a lookup of the name,
//!    then `Ctx::call`). Only a peer that passed the handshake can: until
//!    then a connection carries handshake frames alone, and anything else
//!    closes it (connection.rs). So nothing unauthenticated reads a node's
//!    agents or kills one.
//! 3. It answers one request at a time, in its own mailbox's order (bounded:
//!    `config::OBSERVER_MAILBOX_LEN`; a full one drops, and the caller's
//!    call times out). A listing walks the live agents in chunks and yields
//!    between them (the runtime's agent_list.rs), so a page over a million
//!    agents never holds a worker for more than one chunk.
//! 4. Every reply is bounded (observation.rs).

use std::sync::Weak;
use std::time::Instant;

use erlangen_runtime::{AgentInfo, AgentQuery, Call, Ctx, ExitReason, Pid, Runtime, SpawnOptions};

use crate::config::{
    OBSERVER_MAILBOX_LEN, OBSERVE_NAMES_MAX, OBSERVE_NAMES_PER_AGENT_MAX, OBSERVE_PAGE_LEN_MAX,
    OBSERVE_TEXT_BYTES_MAX, OBSERVE_TREE_BYTES_MAX,
};
use crate::observation::{
    AgentDetail, AgentRow, AgentsRequest, Observe, Observed, PeerRow, Totals,
};
use crate::shared::NodeShared;
use crate::wire::bounded_text;

/// The name the observer is registered under on every node.
pub const OBSERVER_NAME: &str = "erlangen.observer";

/// Step 1: spawns the observer of the node `node` on `runtime` and
/// registers it. `None` (logged) if the name is taken, as when a second
/// node starts on the same runtime: that node is not observable.
pub(crate) fn start(runtime: &Runtime, node: Weak<NodeShared>) -> Option<Pid> {
    let options = SpawnOptions::new().mailbox_len(OBSERVER_MAILBOX_LEN);
    let pid = runtime
        .spawn_with(options, move |ctx| serve(ctx, &node))
        .ok()?;
    if let Err(error) = runtime.register(OBSERVER_NAME, &pid) {
        tracing::warn!(%error, "erlangen: this node has no observer (one runs for another node of the runtime)");
        runtime.kill(&pid, ExitReason::Kill);
        return None;
    }
    Some(pid)
}

/// Steps 3 and 4: answers requests until the node is gone.
fn serve(ctx: &Ctx, node: &Weak<NodeShared>) {
    loop {
        let message = ctx.receive();
        let Ok(call) = message.downcast::<Call<Observe>>() else {
            continue;
        };
        let Some(node) = node.upgrade() else {
            return;
        };
        let answer = answer(ctx, &node, call.request);
        drop(node);
        ctx.reply(&call.from, answer);
    }
}

fn answer(ctx: &Ctx, node: &NodeShared, request: Observe) -> Observed {
    match request {
        Observe::Agents(request) => agents(ctx, &request),
        Observe::Agent { serial } => Observed::Agent(
            node.runtime
                .find_agent(serial)
                .and_then(|pid| detail(ctx, node, &pid)),
        ),
        Observe::Registry { after } => registry(ctx, after),
        Observe::Peers => Observed::Peers(peers(node)),
        Observe::Totals => Observed::Totals(totals(ctx, node)),
        Observe::Kill { serial } => {
            let target = node.runtime.find_agent(serial);
            if let Some(pid) = &target {
                tracing::info!(agent = %pid, "erlangen: killed at an observer's request");
                ctx.kill(pid, ExitReason::Kill);
            }
            Observed::Killed {
                found: target.is_some(),
            }
        }
        Observe::Trace { serial } => {
            let found = node
                .runtime
                .find_agent(serial)
                .is_some_and(|pid| node.runtime.trace_next(&pid));
            Observed::Tracing {
                found,
                recording: node.runtime.records_spans(),
            }
        }
    }
}

fn agents(ctx: &Ctx, request: &AgentsRequest) -> Observed {
    let limit = match request.limit as usize {
        0 => OBSERVE_PAGE_LEN_MAX,
        limit => limit.min(OBSERVE_PAGE_LEN_MAX),
    };
    let mut query = AgentQuery::new().order(request.sort.order()).limit(limit);
    if let Some(filter) = &request.filter {
        query = query.filter(bounded_text(filter.clone(), OBSERVE_TEXT_BYTES_MAX));
    }
    if let Some((key, serial)) = request.after {
        query = query.after(erlangen_runtime::AgentCursor { key, serial });
    }
    let page = ctx.agents_page(&query);
    Observed::Agents {
        agents: page.agents.iter().map(row).collect(),
        matched: page.matched as u64,
        next: page.next.map(|cursor| (cursor.key, cursor.serial)),
    }
}

fn row(info: &AgentInfo) -> AgentRow {
    AgentRow {
        serial: info.pid.serial(),
        names: info
            .names
            .iter()
            .take(OBSERVE_NAMES_PER_AGENT_MAX)
            .map(|name| bounded_text(name.clone(), OBSERVE_TEXT_BYTES_MAX))
            .collect(),
        state: info.state.name().to_owned(),
        worker: info.worker.and_then(|w| u32::try_from(w).ok()),
        queued: info.queued as u64,
        received: info.received,
        dropped: info.dropped,
        slices: info.slices,
        watchdog_warnings: info.watchdog_warnings,
        stack_bytes: info.stack_bytes as u64,
        hibernated: info.hibernated,
    }
}

fn detail(ctx: &Ctx, node: &NodeShared, pid: &Pid) -> Option<AgentDetail> {
    let info = node.runtime.agent_info(pid)?;
    let tree = ctx.agent_tree(pid);
    let text = |pid: &Pid| match node.id_of(pid) {
        Some(id) if pid.is_remote() => id.to_string(),
        _ => pid.to_string(),
    };
    let listed = |pids: &[Pid]| -> Vec<String> {
        pids.iter().take(OBSERVE_PAGE_LEN_MAX).map(text).collect()
    };
    let monitoring: Vec<Pid> = tree.monitored.iter().map(|t| t.root.clone()).collect();
    Some(AgentDetail {
        row: row(&info),
        tree: bounded_text(tree.to_string(), OBSERVE_TREE_BYTES_MAX),
        links: listed(&tree.linked),
        monitoring: listed(&monitoring),
        monitored_by: listed(&node.runtime.monitors_of(pid)),
    })
}

fn registry(ctx: &Ctx, after: Option<String>) -> Observed {
    let names = ctx.registered();
    let total = names.len() as u64;
    let names = names
        .into_iter()
        .filter(|name| after.as_ref().is_none_or(|after| name > after))
        .take(OBSERVE_NAMES_MAX)
        .filter_map(|name| {
            let serial = ctx.whereis(&name)?.serial();
            Some((bounded_text(name, OBSERVE_TEXT_BYTES_MAX), serial))
        })
        .collect();
    Observed::Registry { names, total }
}

fn peers(node: &NodeShared) -> Vec<PeerRow> {
    let now = Instant::now();
    node.peer_stats()
        .into_iter()
        .take(OBSERVE_PAGE_LEN_MAX)
        .map(|peer| PeerRow {
            node: peer.node,
            connected: peer.connected,
            packets_out: peer.packets_out,
            packets_in: peer.packets_in,
            bytes_out: peer.bytes_out,
            bytes_in: peer.bytes_in,
            buffered_bytes: peer.buffered_bytes as u64,
            last_heard_ms: peer
                .last_heard
                .map(|at| now.saturating_duration_since(at).as_millis() as u64),
            errors: peer.errors,
            round_trip_us: peer
                .round_trip
                .map(|rtt| u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX)),
        })
        .collect()
}

fn totals(ctx: &Ctx, node: &NodeShared) -> Totals {
    let metrics = ctx.metrics();
    Totals {
        node: node.name.to_string(),
        workers: metrics.workers as u64,
        parked_workers: metrics.parked_workers as u64,
        run_queue_lengths: metrics
            .run_queue_lengths
            .iter()
            .map(|&n| n as u64)
            .collect(),
        agents: metrics.agents as u64,
        spawned: metrics.spawned_total,
        exited: metrics
            .exited_total
            .iter()
            .map(|(class, n)| (class.name().to_owned(), *n))
            .collect(),
        steals: metrics.steals_total,
        messages_sent: metrics.messages_sent_total,
        mailbox_messages: metrics.mailbox_messages,
        contained_panics: metrics.contained_panics_total,
        node_dropped: node.dropped.load(std::sync::atomic::Ordering::Relaxed),
    }
}
