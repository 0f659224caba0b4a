//! The seam between the runtime and the nodes layer: how a runtime reaches
//! an agent of another node, and how the nodes layer hands it what arrives.
//!
//! The runtime has no sockets, no serde and no bincode. A [`Pid`] of another
//! node is a [`RemotePid`]: the node's name, its incarnation, the agent's
//! serial there, and a [`Remote`] route that the nodes layer implements.
//! Every runtime call that takes a `Pid` (send, kill, link, monitor, unlink,
//! `send_after`, spawning with a link or monitor) hands a remote one to its
//! route; an agent that exits fires its remote links and monitors through
//! it. The other way, the nodes layer decodes what arrives on its own thread
//! and calls [`RuntimeHandle`]: `send` for a message, `signal` for a link,
//! monitor, unlink, exit or notification, which the runtime applies with
//! exactly the local semantics.
//!
//! # Edges across nodes (design-notes §8.3)
//!
//! A link or monitor between a local agent L and a remote agent R is kept
//! in halves: L's link set records R, and R's node records L. So:
//! 1. `link`/`monitor` from L records R in L's kill list, then sends
//!    `Link`/`Monitor`; R's node records L (or answers `noproc`).
//! 2. When L exits, each remote peer gets an edge-checked `EdgeExit` (links,
//!    and the monitored side of a monitor) or `Down` (monitors of L).
//! 3. An edge-checked signal from R to L is applied only if L's link set
//!    still holds R, which it removes: so at most one notification per
//!    edge, and none after `unlink`.
//! 4. When the connection to R's node is lost, the nodes layer sends L,
//!    for each edge it recorded, an edge-checked `EdgeExit(NoConnection)`
//!    or `Down(Exit(NoConnection))` as if from R: nothing has to cross a
//!    dead connection.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::error::Error;
use crate::exit::{ExitReason, ExitStatus};
use crate::message::Message;
use crate::pid::Pid;

/// What the nodes layer offers the runtime: delivery to agents of other
/// nodes. Implementations never block and never run agent code; they
/// queue what they are given for their own thread.
pub trait Remote: Send + Sync + fmt::Debug + 'static {
    /// Sends `message` to `to`. A message that can never be sent (a type
    /// not registered for distribution, an encoding larger than the wire
    /// allows) is refused here with [`Error::NotSent`], after the route
    /// counted it as dropped; one lost later (a lost connection) is dropped
    /// and counted by the route.
    fn send(&self, to: &RemotePid, message: Message) -> Result<(), Error>;

    /// Sends `signal` from `from` (a local agent, or `None` for a plain
    /// thread) to `to`, in order with the messages `from` sent to `to`.
    fn signal(&self, from: Option<&Pid>, to: &RemotePid, signal: RemoteSignal);

    /// Sends `message` as the reply to `to`'s call `tag` (reply.rs): the
    /// receiving node files it under the tag, as a local reply is. The
    /// default sends it as an ordinary message, for routes that cannot.
    fn reply(&self, to: &RemotePid, tag: u64, message: Message) -> Result<(), Error> {
        let _ = tag;
        self.send(to, message)
    }

    /// Sends `message` as [`Remote::send`] does, from a worker that calls
    /// [`Remote::flush`] on this route before it runs anything else (when
    /// the sending agent's slice ends): the route may keep it buffered until
    /// then, so that a burst of sends is one write. Says whether a flush is
    /// owed, and whether the sender must wait (`Sent::wait`). `sender` is
    /// the serial of the sending agent (0 when none sends: a timer firing
    /// on a worker): order need only hold per sender, so a route may let
    /// one sender's message pass another's queued one. The default sends
    /// at once.
    fn send_from_worker(
        &self,
        sender: u64,
        to: &RemotePid,
        message: Message,
    ) -> Result<Sent, Error> {
        let _ = sender;
        self.send(to, message).map(|()| Sent::default())
    }

    /// [`Remote::reply`] from a worker, as [`Remote::send_from_worker`].
    fn reply_from_worker(
        &self,
        sender: u64,
        to: &RemotePid,
        tag: u64,
        message: Message,
    ) -> Result<Sent, Error> {
        let _ = sender;
        self.reply(to, tag, message).map(|()| Sent::default())
    }

    /// Whether a sender told to wait (`Sent::wait`) must go on waiting: it
    /// waits, suspended, until this is false.
    fn holds_sender(&self, to: &RemotePid) -> bool {
        let _ = to;
        false
    }

    /// Writes what `send_from_worker` and `reply_from_worker` left
    /// buffered.
    fn flush(&self) {}

    /// Whether the route's outbound buffer is above its high-water mark: an
    /// agent sending to `to` then waits, suspended (its worker runs other
    /// agents), until it is not (Erlang's busy distribution port).
    fn busy(&self, to: &RemotePid) -> bool {
        let _ = to;
        false
    }
}

/// What a route did with a message sent from a worker
/// ([`Remote::send_from_worker`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Sent {
    /// The route buffered it: the worker calls [`Remote::flush`] before it
    /// runs anything else.
    pub flush: bool,
    /// The route holds too many bytes for `to` (of large messages, or a
    /// connection's buffer past its mark): the sender waits, suspended,
    /// while [`Remote::holds_sender`] says so (backpressure on the senders
    /// told so only, so that others to the same node go on).
    pub wait: bool,
    /// Bytes the message took on the wire: the sender is charged for them
    /// (one scheduling step per `config::SEND_BYTES_PER_REDUCTION`), so that
    /// a loop of large sends yields its worker as a loop of small ones does.
    pub bytes: usize,
}

impl Sent {
    /// What a route says.
    pub fn new(flush: bool, wait: bool, bytes: usize) -> Sent {
        Sent { flush, wait, bytes }
    }
}

/// A signal between agents of two nodes.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum RemoteSignal {
    /// The sender links to the receiver.
    Link,
    /// The sender monitors the receiver.
    Monitor,
    /// The sender removes every link and monitor with the receiver.
    Unlink,
    /// An exit signal (`kill`), applied whatever the edges.
    Kill(ExitReason),
    /// An exit signal along a link (or to an agent whose monitor died),
    /// applied only if the receiver still holds the edge.
    EdgeExit(ExitReason),
    /// The sender, monitored by the receiver, exited with this status;
    /// applied only if the receiver still holds the edge.
    Down(ExitStatus),
    /// The sender watches the receiver under `id` (an observing monitor,
    /// watch.rs): the receiver's node answers `WatchDown` when it exits.
    Watch {
        /// The watch's id, unique within the sender.
        id: u64,
    },
    /// The sender no longer watches the receiver under `id`.
    Unwatch {
        /// The watch's id.
        id: u64,
    },
    /// The sender, watched by the receiver under `id`, exited with this
    /// status; applied only if the watch is still armed.
    WatchDown {
        /// The watch's id.
        id: u64,
        /// How the sender ended.
        status: ExitStatus,
    },
}

impl RemoteSignal {
    /// What the target of a `Link` or `Monitor` answers when it does not
    /// exist: `noproc` as an exit along the link, or as a `Down` to the
    /// monitor. `None` for any other signal (nothing to answer).
    ///
    /// ```
    /// use erlangen_runtime::{ExitReason, RemoteSignal};
    /// let answer = RemoteSignal::Link.noproc_answer().unwrap();
    /// assert!(matches!(answer, RemoteSignal::EdgeExit(ExitReason::NoProc)));
    /// assert!(RemoteSignal::Unlink.noproc_answer().is_none());
    /// ```
    pub fn noproc_answer(&self) -> Option<RemoteSignal> {
        match self {
            RemoteSignal::Link => Some(RemoteSignal::EdgeExit(ExitReason::NoProc)),
            RemoteSignal::Monitor => Some(RemoteSignal::Down(ExitStatus::Exit(ExitReason::NoProc))),
            RemoteSignal::Watch { id } => Some(RemoteSignal::WatchDown {
                id: *id,
                status: ExitStatus::Exit(ExitReason::NoProc),
            }),
            _ => None,
        }
    }
}

/// The id of an agent on another node, and the route that reaches it.
///
/// Ids compare by node, incarnation and serial; the route does not count.
///
/// ```
/// use erlangen_runtime::{Message, Pid, Remote, RemotePid, RemoteSignal};
/// #[derive(Debug)]
/// struct Nowhere;
/// impl Remote for Nowhere {
///     fn send(&self, _: &RemotePid, _: Message) -> Result<(), erlangen_runtime::Error> { Ok(()) }
///     fn signal(&self, _: Option<&Pid>, _: &RemotePid, _: RemoteSignal) {}
/// }
/// let id = RemotePid::new("host/alpha", 3, 42, std::sync::Arc::new(Nowhere));
/// assert_eq!((id.node(), id.incarnation(), id.serial()), ("host/alpha", 3, 42));
/// assert_eq!(id.to_string(), "host/alpha/42#3");
/// ```
pub struct RemotePid {
    /// `host/node`.
    node: Arc<str>,
    /// The node's incarnation (creation number).
    incarnation: u64,
    /// The agent's serial number on that node.
    serial: u64,
    /// The route that reaches the node.
    route: Arc<dyn Remote>,
}

impl RemotePid {
    /// The agent `serial` of incarnation `incarnation` of node `node`
    /// (`host/node`), reached through `route`.
    pub fn new(
        node: impl Into<Arc<str>>,
        incarnation: u64,
        serial: u64,
        route: Arc<dyn Remote>,
    ) -> RemotePid {
        RemotePid {
            node: node.into(),
            incarnation,
            serial,
            route,
        }
    }

    /// The node, as `host/node`.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The node's incarnation.
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// The agent's serial number on its node.
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// The route that reaches the node.
    pub fn route(&self) -> &Arc<dyn Remote> {
        &self.route
    }
}

impl PartialEq for RemotePid {
    fn eq(&self, other: &RemotePid) -> bool {
        self.serial == other.serial
            && self.incarnation == other.incarnation
            && self.node == other.node
    }
}

impl Eq for RemotePid {}

impl Hash for RemotePid {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.node.hash(state);
        self.incarnation.hash(state);
        self.serial.hash(state);
    }
}

impl PartialOrd for RemotePid {
    fn partial_cmp(&self, other: &RemotePid) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for RemotePid {
    fn cmp(&self, other: &RemotePid) -> Ordering {
        (&self.node, self.incarnation, self.serial).cmp(&(
            &other.node,
            other.incarnation,
            other.serial,
        ))
    }
}

impl fmt::Display for RemotePid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}#{}", self.node, self.serial, self.incarnation)
    }
}

impl fmt::Debug for RemotePid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
