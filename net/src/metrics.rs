//! What a node exports as metrics, in Prometheus's text format (version
//! 0.0.4): the runtime's counters and gauges ([`RuntimeMetrics`]) and the
//! node's own (per-peer traffic, drops, backlog). Names follow Prometheus's
//! conventions: an `erlangen_` prefix, base units in the name (`_bytes`,
//! `_messages`), `_total` on counters; label values escaped.
//!
//! Built on each scrape from a snapshot (one walk of the live agents): no
//! worker stops for it. The endpoint that serves it is metrics_http.rs.

use std::fmt::Write;

use erlangen_runtime::RuntimeMetrics;

use crate::peer_stats::PeerStats;

/// The text of `node` and its runtime now.
pub(crate) fn text(node: &crate::shared::NodeShared) -> String {
    let figures = NodeFigures {
        peers: node.peer_stats(),
        dropped: node.dropped.load(std::sync::atomic::Ordering::Relaxed),
        backlog_bytes: node
            .backlog_bytes
            .load(std::sync::atomic::Ordering::Relaxed),
    };
    render(&node.runtime.metrics(), &figures)
}

/// The node's own figures beside the runtime's.
pub(crate) struct NodeFigures {
    pub(crate) peers: Vec<PeerStats>,
    pub(crate) dropped: u64,
    pub(crate) backlog_bytes: usize,
}

/// The text format of `runtime` and `node`.
pub(crate) fn render(runtime: &RuntimeMetrics, node: &NodeFigures) -> String {
    let mut out = Metrics(String::with_capacity(4096));
    out.family("erlangen_workers", "gauge", "Worker threads.");
    out.sample("erlangen_workers", &[], runtime.workers as f64);
    out.family("erlangen_workers_parked", "gauge", "Workers parked now.");
    out.sample(
        "erlangen_workers_parked",
        &[],
        runtime.parked_workers as f64,
    );
    out.family("erlangen_agents", "gauge", "Agents alive now.");
    out.sample("erlangen_agents", &[], runtime.agents as f64);
    out.family(
        "erlangen_agents_spawned_total",
        "counter",
        "Agents spawned since the runtime started.",
    );
    out.sample(
        "erlangen_agents_spawned_total",
        &[],
        runtime.spawned_total as f64,
    );
    out.family(
        "erlangen_agents_exited_total",
        "counter",
        "Agents ended since the runtime started, by how they ended.",
    );
    for (class, n) in &runtime.exited_total {
        out.sample(
            "erlangen_agents_exited_total",
            &[("class", class.name())],
            *n as f64,
        );
    }
    out.family(
        "erlangen_run_queue_agents",
        "gauge",
        "Agents waiting to run, per worker (its stealable deque and inbox).",
    );
    for (worker, n) in runtime.run_queue_lengths.iter().enumerate() {
        out.sample(
            "erlangen_run_queue_agents",
            &[("worker", &worker.to_string())],
            *n as f64,
        );
    }
    out.family(
        "erlangen_steals_total",
        "counter",
        "Batches of agents workers took from one another.",
    );
    out.sample("erlangen_steals_total", &[], runtime.steals_total as f64);
    out.family(
        "erlangen_messages_sent_total",
        "counter",
        "Messages sent by agents and from outside the runtime.",
    );
    out.sample(
        "erlangen_messages_sent_total",
        &[],
        runtime.messages_sent_total as f64,
    );
    out.family(
        "erlangen_contained_panics_total",
        "counter",
        "Panics outside agents caught on workers.",
    );
    out.sample(
        "erlangen_contained_panics_total",
        &[],
        runtime.contained_panics_total as f64,
    );
    out.family(
        "erlangen_agent_mailbox_messages",
        "histogram",
        "Live agents by the messages waiting in their mailbox.",
    );
    for (bound, n) in &runtime.mailbox_buckets {
        out.sample(
            "erlangen_agent_mailbox_messages_bucket",
            &[("le", &bound.to_string())],
            *n as f64,
        );
    }
    out.sample(
        "erlangen_agent_mailbox_messages_bucket",
        &[("le", "+Inf")],
        runtime.agents as f64,
    );
    out.sample(
        "erlangen_agent_mailbox_messages_sum",
        &[],
        runtime.mailbox_messages as f64,
    );
    out.sample(
        "erlangen_agent_mailbox_messages_count",
        &[],
        runtime.agents as f64,
    );
    out.family(
        "erlangen_live_agents_dropped_messages",
        "gauge",
        "Messages the mailboxes of live agents refused (full or closed).",
    );
    out.sample(
        "erlangen_live_agents_dropped_messages",
        &[],
        runtime.dropped_by_live_agents as f64,
    );
    out.family(
        "erlangen_live_agents_watchdog_warnings",
        "gauge",
        "Watchdog warnings of live agents (held their worker too long).",
    );
    out.sample(
        "erlangen_live_agents_watchdog_warnings",
        &[],
        runtime.watchdog_warnings_of_live_agents as f64,
    );
    out.family(
        "erlangen_node_dropped_messages_total",
        "counter",
        "Messages the node dropped (stale ids, unregistered types, lost nodes).",
    );
    out.sample(
        "erlangen_node_dropped_messages_total",
        &[],
        node.dropped as f64,
    );
    out.family(
        "erlangen_node_backlog_bytes",
        "gauge",
        "Bytes waiting in the node's write buffers.",
    );
    out.sample(
        "erlangen_node_backlog_bytes",
        &[],
        node.backlog_bytes as f64,
    );
    let peer_families: [PeerFamily; 6] = [
        (
            "erlangen_peer_connected",
            "gauge",
            "1 while the connection to the peer is up.",
            |p| f64::from(u8::from(p.connected)),
        ),
        (
            "erlangen_peer_sent_bytes_total",
            "counter",
            "Bytes sent to the peer.",
            |p| p.bytes_out as f64,
        ),
        (
            "erlangen_peer_received_bytes_total",
            "counter",
            "Bytes received from the peer.",
            |p| p.bytes_in as f64,
        ),
        (
            "erlangen_peer_sent_packets_total",
            "counter",
            "Packets sent to the peer.",
            |p| p.packets_out as f64,
        ),
        (
            "erlangen_peer_received_packets_total",
            "counter",
            "Packets received from the peer.",
            |p| p.packets_in as f64,
        ),
        (
            "erlangen_peer_buffered_bytes",
            "gauge",
            "Bytes waiting to be written to the peer.",
            |p| p.buffered_bytes as f64,
        ),
    ];
    for (name, kind, help, value) in peer_families {
        out.family(name, kind, help);
        for peer in &node.peers {
            out.sample(name, &[("peer", &peer.node)], value(peer));
        }
    }
    let name = "erlangen_peer_round_trip_seconds";
    out.family(
        name,
        "gauge",
        "The last round trip of a probe to the peer (once per heartbeat interval, behind what the connection queues).",
    );
    for peer in &node.peers {
        if let Some(round_trip) = peer.round_trip {
            out.sample(name, &[("peer", &peer.node)], round_trip.as_secs_f64());
        }
    }
    out.0
}

/// A per-peer family: name, type, help, and its value for a peer.
type PeerFamily = (
    &'static str,
    &'static str,
    &'static str,
    fn(&PeerStats) -> f64,
);

/// A text being written.
struct Metrics(String);

impl Metrics {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (label, text)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{label}=\"{}\"", escape(text));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }
}

/// A label value as the text format wants it: backslash, double quote and
/// line feed escaped.
fn escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
