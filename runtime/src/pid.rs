//! `Pid`: the handle of an agent, here or on another node.
//!
//! A local `Pid` is a counted reference to the agent's cell, so sending needs
//! no table lookup and a handle to a dead agent stays valid (sends to it are
//! dropped and counted, as in Erlangen). Its identity is the agent's serial
//! number, unique within one runtime and never reused. A remote `Pid` names
//! an agent of another node ([`RemotePid`]: node, incarnation, serial) and
//! carries the route the nodes layer gave it; every runtime call that takes
//! a `Pid` takes either kind (remote.rs).

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::agent::AgentCell;
use crate::remote::RemotePid;

/// The handle of an agent. Cheap to clone; compares by identity.
///
/// ```
/// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
/// let (a, b) = rt.run(|ctx| (ctx.pid(), ctx.pid())).unwrap();
/// assert_eq!(a, b);
/// assert!(!a.is_remote());
/// ```
#[derive(Clone)]
pub struct Pid {
    /// Where the agent lives.
    pub(crate) kind: PidKind,
}

/// Where an agent lives.
#[derive(Clone)]
pub(crate) enum PidKind {
    /// In this process: its cell.
    Local(Arc<AgentCell>),
    /// On another node.
    Remote(Arc<RemotePid>),
}

impl Pid {
    pub(crate) fn from_cell(cell: Arc<AgentCell>) -> Pid {
        Pid {
            kind: PidKind::Local(cell),
        }
    }

    /// The handle of an agent of another node (made by the nodes layer).
    ///
    /// ```
    /// use erlangen_runtime::{Pid, RemotePid};
    /// # use erlangen_runtime::{Remote, RemoteSignal, Message};
    /// # #[derive(Debug)] struct Nowhere;
    /// # impl Remote for Nowhere {
    /// #     fn send(&self, _: &RemotePid, _: Message) -> Result<(), erlangen_runtime::Error> { Ok(()) }
    /// #     fn signal(&self, _: Option<&Pid>, _: &RemotePid, _: RemoteSignal) {}
    /// # }
    /// let route = std::sync::Arc::new(Nowhere);
    /// let pid = Pid::remote(RemotePid::new("host/alpha", 1, 7, route));
    /// assert!(pid.is_remote());
    /// assert_eq!(pid.serial(), 7);
    /// ```
    pub fn remote(id: RemotePid) -> Pid {
        Pid {
            kind: PidKind::Remote(Arc::new(id)),
        }
    }

    /// The agent's cell, if it lives in this process.
    pub(crate) fn cell(&self) -> Option<&Arc<AgentCell>> {
        match &self.kind {
            PidKind::Local(cell) => Some(cell),
            PidKind::Remote(_) => None,
        }
    }

    /// The cell of a pid that is local by construction (the calling agent,
    /// a spawned child, a registry entry).
    #[inline(always)]
    pub(crate) fn local_cell(&self) -> &Arc<AgentCell> {
        match &self.kind {
            PidKind::Local(cell) => cell,
            PidKind::Remote(_) => unreachable!("a pid made here is local"),
        }
    }

    /// The agent's serial number: unique within its runtime (or node
    /// incarnation), never reused, assigned in spawn order starting at 1.
    pub fn serial(&self) -> u64 {
        match &self.kind {
            PidKind::Local(cell) => cell.serial,
            PidKind::Remote(id) => id.serial(),
        }
    }

    /// Whether the agent lives on another node.
    #[inline]
    pub fn is_remote(&self) -> bool {
        matches!(self.kind, PidKind::Remote(_))
    }

    /// The node-qualified id, if the agent lives on another node.
    pub fn as_remote(&self) -> Option<&RemotePid> {
        match &self.kind {
            PidKind::Local(_) => None,
            PidKind::Remote(id) => Some(id),
        }
    }

    /// The id of the runtime that spawned a local agent.
    pub(crate) fn runtime_id(&self) -> Option<u64> {
        self.cell().map(|cell| cell.runtime)
    }
}

impl PartialEq for Pid {
    fn eq(&self, other: &Pid) -> bool {
        match (&self.kind, &other.kind) {
            (PidKind::Local(a), PidKind::Local(b)) => Arc::ptr_eq(a, b),
            (PidKind::Remote(a), PidKind::Remote(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Pid {}

impl Hash for Pid {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match &self.kind {
            PidKind::Local(cell) => {
                cell.serial.hash(state);
                (Arc::as_ptr(cell) as usize).hash(state);
            }
            PidKind::Remote(id) => id.hash(state),
        }
    }
}

impl PartialOrd for Pid {
    fn partial_cmp(&self, other: &Pid) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Local agents first, by serial number then address (serials of two
/// runtimes may be equal); then remote ones, by node, incarnation, serial.
impl Ord for Pid {
    fn cmp(&self, other: &Pid) -> Ordering {
        match (&self.kind, &other.kind) {
            (PidKind::Local(a), PidKind::Local(b)) => a
                .serial
                .cmp(&b.serial)
                .then_with(|| (Arc::as_ptr(a) as usize).cmp(&(Arc::as_ptr(b) as usize))),
            (PidKind::Local(_), PidKind::Remote(_)) => Ordering::Less,
            (PidKind::Remote(_), PidKind::Local(_)) => Ordering::Greater,
            (PidKind::Remote(a), PidKind::Remote(b)) => a.cmp(b),
        }
    }
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            PidKind::Local(cell) => write!(f, "<{:x}>", cell.serial),
            PidKind::Remote(id) => write!(f, "<{id}>"),
        }
    }
}

impl fmt::Debug for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
