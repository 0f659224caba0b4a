//! How agents end: [`ExitStatus`], [`ExitReason`], the returned [`Value`], the
//! [`Down`] notification a monitor receives, and the [`Timeout`] of a receive.
//!
//! Shapes follow Erlangen (erlangen.md §4): a status is either `Ok(value)`
//! (the agent's function returned) or `Exit(reason)`; an agent killed through
//! a link gets the linked agent's whole status as its reason
//! ([`ExitReason::Linked`]); a monitor receives `Down { pid, status }`.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use crate::message::cast;
use crate::pid::Pid;

/// The value an agent's function returned, shared by everyone who is told of
/// the exit. Read it with [`Value::downcast_ref`].
///
/// ```
/// use erlangen_runtime::Value;
/// let value = Value::new(vec![1, 2, 3]);
/// assert_eq!(value.downcast_ref::<Vec<i32>>(), Some(&vec![1, 2, 3]));
/// assert_eq!(value.take::<Vec<i32>>().unwrap(), vec![1, 2, 3]);
/// let unit = Value::new(());
/// assert_eq!(unit.downcast_ref::<()>(), Some(&()));
/// assert!(unit.clone().take::<u8>().is_err());
/// assert_eq!(unit.take::<()>().unwrap(), ());
/// ```
#[derive(Clone)]
pub struct Value {
    /// `None` is `()`, what most agents return: no allocation for it.
    inner: Option<Arc<dyn ValueObject>>,
}

/// What a returned value must offer: sharing between threads and printing.
trait ValueObject: Any + Send + Sync + fmt::Debug {
    fn as_any(&self) -> &dyn Any;
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

impl<T: Any + Send + Sync + fmt::Debug> ValueObject for T {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

impl Value {
    /// Wraps a returned value.
    pub fn new<T: Any + Send + Sync + fmt::Debug>(value: T) -> Value {
        let value = match cast::<T, ()>(value) {
            Ok(()) => return Value { inner: None },
            Err(value) => value,
        };
        Value {
            inner: Some(Arc::new(value)),
        }
    }

    /// The value as `Any`.
    fn as_any(&self) -> &dyn Any {
        match &self.inner {
            Some(inner) => (**inner).as_any(),
            None => &(),
        }
    }

    /// The type of the value.
    ///
    /// ```
    /// use erlangen_runtime::Value;
    /// assert_eq!(Value::new(2u16).value_type_id(), std::any::TypeId::of::<u16>());
    /// ```
    pub fn value_type_id(&self) -> std::any::TypeId {
        self.as_any().type_id()
    }

    /// The value, if it is a `T`.
    pub fn downcast_ref<T: Any>(&self) -> Option<&T> {
        self.as_any().downcast_ref::<T>()
    }

    /// Moves the value out, if it is a `T` and this is its only holder (an
    /// agent with a single monitor and no links: the usual worker). Else the
    /// value comes back unchanged. Moving avoids copying big results.
    pub fn take<T: Any + Send + Sync>(self) -> Result<T, Value> {
        let Some(inner) = self.inner else {
            // `()` can be had any number of times.
            return cast::<(), T>(()).map_err(|()| self);
        };
        if !(*inner).as_any().is::<T>() || Arc::strong_count(&inner) != 1 {
            return Err(Value { inner: Some(inner) });
        }
        match inner.into_any().downcast::<T>() {
            Ok(arc) => match Arc::try_unwrap(arc) {
                Ok(value) => Ok(value),
                Err(_) => unreachable!("the count was 1 and we hold the only reference"),
            },
            Err(_) => unreachable!("the type was checked above"),
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            Some(inner) => fmt::Debug::fmt(&**inner, f),
            None => fmt::Debug::fmt(&(), f),
        }
    }
}

/// Why an agent exited, when it did not simply return.
///
/// ```
/// use erlangen_runtime::ExitReason;
/// assert_eq!(ExitReason::other("shutdown").to_string(), "shutdown");
/// assert_eq!(ExitReason::Kill.to_string(), "kill");
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ExitReason {
    /// Killed with the default reason (Erlangen's `:kill`).
    Kill,
    /// A reason given by the program (`ctx.exit(ExitReason::other("shutdown"))`).
    Other(Arc<str>),
    /// The agent's function panicked; the panic message.
    Panic(Arc<str>),
    /// An unhandled receive timeout (Erlangen's `timeout` condition).
    Timeout,
    /// A linked agent exited with this status (Erlangen passes the whole
    /// status as the reason, even for a normal return).
    Linked(Box<ExitStatus>),
    /// The agent that was linked or monitored had already exited (Erlang's
    /// `noproc`; Erlangen delivered nothing, bug 7).
    NoProc,
    /// The agent could not get a stack (address space or mapping budget
    /// exhausted; Erlang's `system_limit`).
    SystemLimit,
    /// The runtime shut down while the agent was alive.
    Shutdown,
    /// The linked or monitored agent is out of reach: its runtime shut down
    /// (or, across nodes, the connection to its node was lost). Erlang's
    /// `noconnection`.
    NoConnection,
}

impl ExitReason {
    /// A reason made of a word or sentence, like an Erlang atom.
    pub fn other(reason: &str) -> ExitReason {
        ExitReason::Other(Arc::from(reason))
    }

    /// The status carried by a [`ExitReason::Linked`] reason.
    pub fn linked_status(&self) -> Option<&ExitStatus> {
        match self {
            ExitReason::Linked(status) => Some(status),
            _ => None,
        }
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Kill => f.write_str("kill"),
            ExitReason::Other(reason) => f.write_str(reason),
            ExitReason::Panic(message) => write!(f, "panic: {message}"),
            ExitReason::Timeout => f.write_str("timeout"),
            ExitReason::Linked(status) => write!(f, "linked agent exited: {status}"),
            ExitReason::NoProc => f.write_str("noproc"),
            ExitReason::SystemLimit => f.write_str("system_limit"),
            ExitReason::Shutdown => f.write_str("shutdown"),
            ExitReason::NoConnection => f.write_str("noconnection"),
        }
    }
}

impl std::error::Error for ExitReason {}

impl From<Timeout> for ExitReason {
    fn from(_: Timeout) -> ExitReason {
        ExitReason::Timeout
    }
}

/// How an agent ended.
///
/// ```
/// use erlangen_runtime::{ExitReason, ExitStatus, Value};
/// let ok = ExitStatus::Ok(Value::new(6u32));
/// assert!(ok.is_ok());
/// assert_eq!(ok.to_string(), "ok 6");
/// let killed = ExitStatus::Exit(ExitReason::Kill);
/// assert!(matches!(killed.reason(), Some(ExitReason::Kill)));
/// ```
#[derive(Clone, Debug)]
pub enum ExitStatus {
    /// Its function returned this value (Erlangen's `(:ok . values)`).
    Ok(Value),
    /// It exited with this reason (Erlangen's `(:exit . reason)`).
    Exit(ExitReason),
}

impl ExitStatus {
    /// The returned value, moved out, if the agent returned.
    pub fn into_value(self) -> Option<Value> {
        match self {
            ExitStatus::Ok(value) => Some(value),
            ExitStatus::Exit(_) => None,
        }
    }

    /// The returned value, if the agent returned.
    pub fn value(&self) -> Option<&Value> {
        match self {
            ExitStatus::Ok(value) => Some(value),
            ExitStatus::Exit(_) => None,
        }
    }

    /// The exit reason, if the agent did not return.
    pub fn reason(&self) -> Option<&ExitReason> {
        match self {
            ExitStatus::Ok(_) => None,
            ExitStatus::Exit(reason) => Some(reason),
        }
    }

    /// Whether the agent returned normally.
    pub fn is_ok(&self) -> bool {
        matches!(self, ExitStatus::Ok(_))
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Ok(value) => write!(f, "ok {value:?}"),
            ExitStatus::Exit(reason) => write!(f, "exit {reason}"),
        }
    }
}

/// The notification a monitoring agent receives when the agent it monitors
/// exits: who, and how. It arrives ahead of ordinary messages.
///
/// ```
/// use erlangen_runtime::{Down, SpawnOptions};
/// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
/// let ok = rt.run(|ctx| {
///     let child = ctx.spawn_with(SpawnOptions::new().monitor(), |_| ()).unwrap();
///     let down = ctx.receive().downcast::<Down>().unwrap();
///     down.pid == child && down.status.is_ok()
/// });
/// assert!(ok.unwrap());
/// ```
#[derive(Clone, Debug)]
pub struct Down {
    /// The agent that exited.
    pub pid: Pid,
    /// How it exited.
    pub status: ExitStatus,
}

/// A receive with a timeout found no message in time.
///
/// ```
/// use erlangen_runtime::{ExitReason, Timeout};
/// assert!(matches!(ExitReason::from(Timeout), ExitReason::Timeout));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeout;

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("receive timed out")
    }
}

impl std::error::Error for Timeout {}

/// The text of a panic payload (what `ExitReason::Panic` carries).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
