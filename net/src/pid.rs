//! Pids inside messages: `#[serde(with = "erlangen_net::pid")]` on a `Pid`
//! field (or [`WirePid`] as the field's type) makes it cross the wire as an
//! [`AgentId`] and come back as a working `Pid` on the receiving node; a pid
//! that comes back to its own node resolves to the local agent.
//!
//! Encoding and decoding happen only on a node's event-loop thread, which
//! sets the node as the codec's context for the duration (a thread-local of
//! that thread, never touched by agent code). Outside it, a `Pid` does not
//! serialize: serde reports an error.
//!
//! ```
//! use erlangen_runtime::Pid;
//! #[derive(serde::Serialize, serde::Deserialize, Debug)]
//! struct Request {
//!     #[serde(with = "erlangen_net::pid")]
//!     reply_to: Pid,
//!     n: u64,
//! }
//! ```

use std::cell::Cell;

use erlangen_runtime::Pid;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::id::AgentId;

/// What the codec needs of a node: pids to ids and back (shared.rs
/// implements it for `NodeShared`).
pub(crate) trait Resolve {
    /// The id `pid` travels as, if it can travel.
    fn id_of(&self, pid: &Pid) -> Option<AgentId>;
    /// The pid an id that arrived stands for.
    fn pid_of(&self, id: &AgentId) -> Pid;
}

/// A node as the codec's context.
type Context = *const (dyn Resolve + 'static);

thread_local! {
    /// The node whose event loop is encoding or decoding, if any.
    static CONTEXT: Cell<Option<Context>> = const { Cell::new(None) };
}

/// Makes `node` the codec's context until the guard drops.
pub(crate) fn enter(node: &(dyn Resolve + 'static)) -> ContextGuard {
    let previous = CONTEXT.with(|c| c.replace(Some(node as Context)));
    ContextGuard { previous }
}

/// Restores the previous context.
pub(crate) struct ContextGuard {
    previous: Option<Context>,
}

impl Drop for ContextGuard {
    fn drop(&mut self) {
        CONTEXT.with(|c| c.set(self.previous));
    }
}

fn with_node<R>(f: impl FnOnce(&dyn Resolve) -> R) -> Option<R> {
    let node = CONTEXT.with(Cell::get)?;
    // SAFETY: the pointer was set by `enter` from a live reference whose
    // guard is still alive on this thread (the guard restores it on drop,
    // and the event loop holds the node for as long as it runs).
    Some(f(unsafe { &*node }))
}

/// Serializes a `Pid` as its node-qualified id.
///
/// ```
/// #[derive(serde::Serialize)]
/// struct Note {
///     #[serde(with = "erlangen_net::pid")]
///     from: erlangen_runtime::Pid,
/// }
/// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
/// let note = rt.run(|ctx| Note { from: ctx.pid() }).unwrap();
/// // Only a node's event loop encodes pids (it knows their node).
/// assert!(erlangen_net::wire::encode(&note).is_err());
/// ```
pub fn serialize<S: Serializer>(pid: &Pid, serializer: S) -> Result<S::Ok, S::Error> {
    match with_node(|node| node.id_of(pid)) {
        Some(Some(id)) => id.serialize(serializer),
        Some(None) => Err(serde::ser::Error::custom(
            "a Pid of a runtime that is not the node's has no node id",
        )),
        None => Err(serde::ser::Error::custom(
            "a Pid is encoded only by a node's event loop",
        )),
    }
}

/// Deserializes a `Pid` from its node-qualified id.
///
/// ```
/// #[derive(serde::Deserialize)]
/// struct Note {
///     #[serde(with = "erlangen_net::pid")]
///     from: erlangen_runtime::Pid,
/// }
/// impl erlangen_net::wire::Bounded for Note {}
/// // Outside a node's event loop there is no node to resolve the id against.
/// let id = erlangen_net::wire::encode(&"localhost/a/1#1".parse::<erlangen_net::AgentId>().unwrap()).unwrap();
/// assert!(erlangen_net::wire::decode::<Note>(&id).is_err());
/// ```
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Pid, D::Error> {
    let id = AgentId::deserialize(deserializer)?;
    with_node(|node| node.pid_of(&id))
        .ok_or_else(|| serde::de::Error::custom("a Pid is decoded only by a node's event loop"))
}

/// A `Pid` that serializes (through the node's event loop): the field type
/// to use where `#[serde(with = "erlangen_net::pid")]` cannot go (a tuple,
/// a function argument).
///
/// ```
/// let rt = erlangen_runtime::Runtime::new().unwrap();
/// let me = rt.run(|ctx| erlangen_net::WirePid(ctx.pid())).unwrap();
/// // Outside a node's event loop, a pid does not serialize:
/// assert!(erlangen_net::wire::encode(&me).is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WirePid(pub Pid);

impl Serialize for WirePid {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize(&self.0, serializer)
    }
}

impl<'de> Deserialize<'de> for WirePid {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<WirePid, D::Error> {
        deserialize(deserializer).map(WirePid)
    }
}

impl crate::wire::Bounded for WirePid {}
