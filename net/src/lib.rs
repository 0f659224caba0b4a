//! # erlangen-net
//!
//! Nodes: a [`erlangen_runtime::Runtime`] made reachable from other
//! processes and hosts over TCP. Agent pids are location-transparent:
//! `ctx.send`, `kill`, `link`, `monitor` and `unlink` take a pid of another
//! node as they take a local one, and a pid inside a message works on the
//! node that receives it.
//!
//! One mio event-loop thread per node owns the listener, every connection
//! and the port-mapper registration (event_loop/). Agents never touch a
//! socket: a send to a remote pid queues a command and wakes the loop once
//! per burst. Messages cross the wire only for types registered on both
//! nodes ([`Types`]); functions can be spawned remotely only if the target
//! node registered them ([`Functions`]): there is no eval.
//!
//! # Semantics across nodes (Erlang's, and Erlangen's where it differs)
//!
//! * Per pair of agents, messages and signals arrive in send order; one TCP
//!   connection per pair of nodes carries both.
//! * Delivery is at most once. When a connection is lost, every link and
//!   monitor across it fires with [`erlangen_runtime::ExitReason::NoConnection`]
//!   (each node fires its own half), so a loss is always reported to whoever
//!   links or monitors.
//! * Ids carry the node's incarnation: a send to an id of a node's earlier
//!   run is dropped and counted ([`Node::dropped`]); a link or monitor to it
//!   gets `noproc`.
//! * A remote spawn attaches its link or monitor before the child runs
//!   (Erlangen bug 5); an unknown function or bad arguments are an error.
//! * A returned value or reason that cannot be encoded becomes the reason
//!   `unencodable value: …` and never breaks the connection (bug 9); one
//!   that does not decode on the receiver becomes `undecodable value: …`.
//! * A message is encoded on the sending agent's thread. One larger than
//!   [`config::MESSAGE_BODY_BYTES_MAX`] (or of a type not registered for
//!   distribution) is refused there: `Ctx::try_send` and
//!   [`Node::try_send_named`] say why, `send` counts it as dropped and logs
//!   it (Erlang has no such limit; ours is 64 MiB, a documented constant).
//!   A message larger than [`config::FRAGMENT_BYTES`] crosses in fragments,
//!   interleaved with other agents' messages, so it does not hold them up
//!   for its whole transfer; order is kept per receiving agent (stricter
//!   than Erlang's per pair: a second sender to an agent that is receiving
//!   a large message waits for it). What a sender may send, the receiver
//!   decodes; a message that still does not decode is dropped and counted,
//!   and the connection stays up.
//! * A sending agent's worker writes to the peer's socket itself (without
//!   blocking) when nothing of its node waits for the event loop, and the
//!   loop polls for 100 µs after activity before it sleeps
//!   ([`NodeBuilder::poll_spin`]); Erlangen's node hands every message to
//!   its event loop.
//! * Calls (`Ctx::call`) and observing monitors (`Ctx::watch`) work across
//!   nodes with their local outcomes, and `noconnection` when the peer's
//!   node is lost; a call's request type is registered with
//!   [`Types::register_call`] (its reply type with [`Types::register`]).
//!   The reply travels as a packet of its own and is filed under the
//!   caller's tag on arrival. A server is called by name on a node with
//!   [`Node::call_named`] (Erlang's `gen_server:call({Name, Node}, …)`):
//!   one lookup ([`Node::whereis`], a round trip) and then the call on the
//!   pid found, so a name that moves between the two is `noproc`, where
//!   Erlang would send to the name's new holder; a caller that calls one
//!   server often keeps the pid ([`Node::server`]).
//! * [`Node::spawn`] waits at most the node's spawn timeout (30 s by
//!   default, [`NodeBuilder::spawn_timeout`]); every failure the node can see
//!   (lookup, connect, a refused handshake — "the cookies differ" —, loss)
//!   answers sooner with its reason. Erlang's `spawn/4` returns at once and
//!   reports a failure as an exit; ours returns the pid or the reason.
//!
//! * A node that connects to one member of a cluster connects to all of
//!   them (a full mesh, as Erlang's; `Peers` packets, net/PROTOCOL.md);
//!   [`Node::nodes`] lists the connected ones, [`Node::monitor_node`] sends
//!   a [`NodeEvent`] when a node comes up or goes down (Erlang's
//!   `nodeup`/`nodedown`), and a kernel joins a cluster with `--join`.
//!   Process groups ([`Node::join_group`], Erlang's `pg`) and cluster-wide
//!   names ([`Node::register_global`], Erlang's `global`) span the mesh;
//!   a name taken twice apart keeps the holder on the node whose name
//!   sorts first (the other is killed with `global name conflict: NAME`),
//!   unless the nodes are given another rule
//!   ([`NodeBuilder::global_conflict_resolver`], Erlang's resolve
//!   function: it may keep the second, or neither). Unlike Erlang's, which
//!   runs on one node, ours runs on both nodes, so it must be the same
//!   function everywhere and may only choose.
//!
//! # Simulated nodes
//!
//! [`simulation::SimNet`] runs several nodes in one deterministic
//! simulation (`erlangen_runtime::simulation`): one thread, virtual time,
//! and an in-memory network with the semantics above (order per pair,
//! `noconnection` on every edge of a lost connection, `noproc` for an old
//! incarnation) and faults drawn from the seed or scripted (delays,
//! resets, partitions, crashes and restarts). Messages cross it encoded
//! with each node's [`Types`], as over TCP. A seed replays a run bit for
//! bit; `SimNet::check` runs a test across many seeds.
//!
//! # Names
//!
//! A node is `host/name`: each part 1 to 255 bytes of UTF-8 without `/`,
//! `#` or control characters, and the name part also a valid port-mapper
//! name (no whitespace, no confusable of a registered name). A peer's
//! `Hello` is held to the same rule.
//!
//! # Security
//!
//! The cookie is the trust boundary: a peer that proves it (mutual
//! HMAC-SHA256 over the handshake's transcript, handshake.rs) may send to
//! any agent whose id it learns and spawn any registered function. A peer
//! without it gets nothing: nothing a connection says before its proof
//! verified changes the node (the acceptor proves last, and the one-connection
//! tie-break waits for the dialer's proof), accepted handshakes have a slot
//! pool of their own with per-address bounds, and every buffer per
//! connection is bounded (`net/PROTOCOL.md` states the bounds). Cookie files
//! are read by one rule everywhere (trailing whitespace trimmed). Traffic
//! after the handshake is not encrypted unless the node runs TLS
//! ([`NodeBuilder::tls`]: rustls, mutual certificates from one CA, our
//! handshake inside; lookups at another host's port mapper go over TLS
//! too, with the cookie's proof inside); without it, listen on loopback (the default) or a
//! trusted network.
//!
//! # Platforms
//!
//! Linux only (built and tested on x86-64; kernel 6.13 or later for the
//! cheapest stack guards, older kernels fall back): it sits on erlangen-
//! runtime, which is Linux-only. On any other target the crate refuses to
//! build with a message that says so.

#[cfg(not(target_os = "linux"))]
compile_error!("erlangen-net runs on Linux only (see the crate docs, \"Platforms\")");

pub mod config;
pub mod erlang;
pub mod frame;
pub mod handshake;
pub mod kernel;
pub mod pid;
pub mod simulation;
pub mod wire;

mod command;
mod cookie;
mod edge_table;
mod erlang_route;
mod error;
mod event_loop;
mod fragments;
mod functions;
mod global;
mod groups;
mod hashing;
mod id;
mod metrics;
mod metrics_http;
mod node;
mod observation;
mod observer;
#[cfg(feature = "otel")]
mod otel;
mod outbox;
mod peer_stats;
mod registration;
mod route;
mod shared;
mod socket_options;
mod span_export;
mod sync;
mod types;
mod unsettled;

pub use crate::cookie::{cookie_path, default_cookie};
pub use crate::error::NetError;
pub use crate::functions::Functions;
pub use crate::global::{keep_first, ConflictResolver};
pub use crate::groups::GroupEvent;
pub use crate::id::{AgentId, IdError, NodeName};
pub use crate::kernel::Kernel;
pub use crate::node::{Node, NodeBuilder};
pub use crate::observation::{
    AgentDetail, AgentRow, AgentsRequest, Observe, Observed, PeerRow, SortBy, Totals,
};
pub use crate::observer::OBSERVER_NAME;
#[cfg(feature = "otel")]
pub use crate::otel::OtelSpans;
pub use crate::peer_stats::PeerStats;
pub use crate::pid::WirePid;
pub use crate::shared::NodeEvent;
pub use crate::span_export::JsonLinesSpans;
pub use crate::types::Types;
pub use erlangen_portmap::tls::TlsOptions;
