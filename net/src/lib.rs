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
//!   `unencodable value: …` and never breaks the connection (bug 9).
//!
//! # Security
//!
//! The cookie is the trust boundary: a peer that proves it (mutual
//! HMAC-SHA256 over the handshake's transcript, handshake.rs) may send to
//! any agent whose id it learns and spawn any registered function. A peer
//! without it gets nothing. Traffic after the handshake is not encrypted;
//! listen on loopback (the default) or a trusted network.

pub mod config;
pub mod frame;
pub mod handshake;
pub mod kernel;
pub mod pid;
pub mod wire;

mod cookie;
mod event_loop;
mod functions;
mod id;
mod node;
mod registration;
mod route;
mod types;

pub use crate::cookie::{cookie_path, default_cookie};
pub use crate::functions::Functions;
pub use crate::id::{AgentId, IdError, NodeName};
pub use crate::kernel::Kernel;
pub use crate::node::{NetError, Node, NodeBuilder, PeerStats};
pub use crate::pid::WirePid;
pub use crate::types::Types;

/// Locks a mutex, ignoring poisoning (no code panics while holding one).
pub(crate) fn sync_lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}
