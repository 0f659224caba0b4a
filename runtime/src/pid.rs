//! `Pid`: the handle of an agent.
//!
//! A `Pid` is a counted reference to the agent's cell, so sending needs no
//! table lookup and a handle to a dead agent stays valid (sends to it are
//! dropped and counted, as in Erlangen). Its identity is the agent's serial
//! number, unique within one runtime and never reused; with the node's name
//! and incarnation it forms the node-qualified id that crosses the wire
//! ([`Pid::serial`]).

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::agent::AgentCell;

/// The handle of an agent. Cheap to clone; compares by identity.
///
/// ```
/// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
/// let (a, b) = rt.run(|ctx| (ctx.pid(), ctx.pid())).unwrap();
/// assert_eq!(a, b);
/// ```
#[derive(Clone)]
pub struct Pid {
    pub(crate) cell: Arc<AgentCell>,
}

impl Pid {
    pub(crate) fn from_cell(cell: Arc<AgentCell>) -> Pid {
        Pid { cell }
    }

    /// The agent's serial number: unique within its runtime, never reused,
    /// assigned in spawn order starting at 1. Node-qualified ids are built
    /// from it.
    pub fn serial(&self) -> u64 {
        self.cell.serial
    }
}

impl PartialEq for Pid {
    fn eq(&self, other: &Pid) -> bool {
        Arc::ptr_eq(&self.cell, &other.cell)
    }
}

impl Eq for Pid {}

impl Hash for Pid {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.cell.serial.hash(state);
        (Arc::as_ptr(&self.cell) as usize).hash(state);
    }
}

impl PartialOrd for Pid {
    fn partial_cmp(&self, other: &Pid) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pid {
    fn cmp(&self, other: &Pid) -> Ordering {
        self.cell.serial.cmp(&other.cell.serial).then_with(|| {
            (Arc::as_ptr(&self.cell) as usize).cmp(&(Arc::as_ptr(&other.cell) as usize))
        })
    }
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{:x}>", self.cell.serial)
    }
}

impl fmt::Debug for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
