//! `Error`: what a runtime call refuses, and why.

use std::fmt;

/// A refused runtime call. Every variant says what was wrong with the input.
///
/// ```
/// use erlangen_runtime::Error;
/// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
/// let err = rt.unregister("nobody").unwrap_err();
/// assert_eq!(err, Error::NotRegistered("nobody".into()));
/// assert_eq!(err.to_string(), "not registered: \"nobody\"");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// `register`: the name already belongs to a live agent.
    NameTaken(String),
    /// `unregister`: the name is not registered.
    NotRegistered(String),
    /// A send or lookup by name found no agent under that name.
    NoSuchName(String),
    /// A name is empty, too long, or holds `/` or a control character.
    InvalidName(String),
    /// An agent tried to link to, monitor or unlink itself.
    LinkToSelf,
    /// A builder or spawn option is out of range.
    InvalidConfig(String),
    /// The operating system refused a thread or a memory mapping.
    System(String),
    /// The pid belongs to another runtime (or node), where only an agent of
    /// this one will do (registering a name).
    NotLocal(String),
    /// `try_send`: the message was not delivered, and says why (a full or
    /// closed mailbox; for a remote pid, a type not registered for
    /// distribution or a message larger than the wire allows).
    NotSent(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NameTaken(name) => write!(f, "{name:?} is already registered"),
            Error::NotRegistered(name) => write!(f, "not registered: {name:?}"),
            Error::NoSuchName(name) => write!(f, "no such agent: {name:?}"),
            Error::InvalidName(why) => write!(f, "invalid name: {why}"),
            Error::LinkToSelf => f.write_str("an agent cannot link to or monitor itself"),
            Error::InvalidConfig(why) => write!(f, "invalid configuration: {why}"),
            Error::System(why) => write!(f, "system error: {why}"),
            Error::NotLocal(pid) => write!(f, "{pid} is not an agent of this runtime"),
            Error::NotSent(why) => write!(f, "message not sent: {why}"),
        }
    }
}

impl std::error::Error for Error {}
