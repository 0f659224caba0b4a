//! Call and reply: a tagged reply that its caller finds without scanning
//! its mailbox (the indexed selective receive).
//!
//! Erlang's call shape is "make a reference, send it with the request,
//! selectively receive the reply that carries it"; BEAM skips the messages
//! that were queued before the reference was made, but a mailbox that
//! fills up while waiting is scanned again on every call. Here the reply
//! goes to its own place: [`Ctx::reply`] delivers the message under the
//! caller's [`Tag`] (`Mailbox::push_reply`, not the data lane), and
//! [`Ctx::receive_reply`] takes the one with its tag in O(1), whatever else
//! the mailbox holds.
//!
//! Semantics: a tag is open from `make_tag` until `receive_reply` for it
//! returns. A reply counts against the mailbox's capacity and is dropped
//! and counted like any message when it is full or closed; only
//! `receive_reply` with its tag takes it (plain and selective receives do
//! not see replies); a reply to a tag that is not open (one that comes
//! after its caller gave up, or a second one) is refused and counted as
//! dropped, never kept. Replies are local: a `ReplyTo` of another node is
//! answered with an ordinary message.
//!
//! [`Ctx::call`] is Erlang's `gen_server:call` on top: a tag, a [`Call`]
//! to the server, and an observing monitor of the server for the
//! duration of the call (watch.rs), whose notice is filed under the same
//! tag, so the wait ends at once with the reply or with the server's end
//! ([`CallError`]).
//!
//! ```
//! use std::time::Duration;
//! use erlangen_runtime::{ReplyTo, Runtime};
//! let rt = Runtime::builder().workers(1).build().unwrap();
//! let answer = rt.run(|ctx| {
//!     let server = ctx.spawn(|ctx| {
//!         let (reply_to, n) = ctx.receive().downcast::<(ReplyTo, u64)>().unwrap();
//!         ctx.reply(&reply_to, n * 2);
//!     });
//!     let tag = ctx.make_tag();
//!     ctx.send(&server, (ctx.reply_to(tag), 21u64));
//!     ctx.receive_reply(tag, Duration::from_secs(5)).unwrap().downcast::<u64>().unwrap()
//! });
//! assert_eq!(answer.unwrap(), 42);
//! ```
//!
//! [`Ctx::reply`]: crate::Ctx::reply
//! [`Ctx::call`]: crate::Ctx::call
//! [`Ctx::receive_reply`]: crate::Ctx::receive_reply

use crate::exit::{ExitReason, ExitStatus};
use crate::pid::Pid;

/// A call's tag: unique among the tags its agent made.
///
/// ```
/// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
/// let (a, b) = rt.run(|ctx| (ctx.make_tag(), ctx.make_tag())).unwrap();
/// assert_ne!(a, b);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tag(pub(crate) u64);

impl Tag {
    /// The tag's number (what the nodes layer puts on the wire).
    ///
    /// ```
    /// use erlangen_runtime::Tag;
    /// assert_eq!(Tag::from_id(7).id(), 7);
    /// ```
    pub fn id(&self) -> u64 {
        self.0
    }

    /// The tag numbered `id` (what the nodes layer takes off the wire; a
    /// reply under a tag its agent did not open is refused).
    pub fn from_id(id: u64) -> Tag {
        Tag(id)
    }
}

/// Where a reply goes: the caller and its call's tag.
///
/// ```
/// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
/// let same = rt.run(|ctx| { let tag = ctx.make_tag(); ctx.reply_to(tag).pid == ctx.pid() }).unwrap();
/// assert!(same);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReplyTo {
    /// The caller.
    pub pid: Pid,
    /// Its call's tag.
    pub tag: Tag,
}

/// A request as a server receives it from [`Ctx::call`]: answer it with
/// [`Ctx::reply`] to `from` (now, or later: `from` can be kept).
///
/// ```
/// use erlangen_runtime::*;
/// use std::time::Duration;
/// let rt = Runtime::builder().workers(1).build().unwrap();
/// let answer = rt.run(|ctx| {
///     let server = ctx.spawn(|ctx| loop {
///         let call = ctx.receive().downcast::<Call<u64>>().unwrap();
///         ctx.reply(&call.from, call.request * 2);
///     });
///     ctx.call(&server, 21u64, Duration::from_secs(5)).unwrap().downcast::<u64>().unwrap()
/// });
/// assert_eq!(answer.unwrap(), 42);
/// ```
///
/// [`Ctx::call`]: crate::Ctx::call
/// [`Ctx::reply`]: crate::Ctx::reply
#[derive(Debug)]
pub struct Call<M> {
    /// Where the reply goes.
    pub from: ReplyTo,
    /// The request.
    pub request: M,
}

/// A request sent by [`Ctx::cast`]: nobody waits for an answer.
///
/// [`Ctx::cast`]: crate::Ctx::cast
#[derive(Debug)]
pub struct Cast<M> {
    /// The request.
    pub request: M,
}

/// Why a [`Ctx::call`] has no reply. Every outcome but `Timeout` is known
/// as soon as it happens: the call watches its server for its duration.
///
/// ```
/// use erlangen_runtime::*;
/// use std::time::Duration;
/// let rt = Runtime::builder().workers(1).build().unwrap();
/// let error = rt.run(|ctx| {
///     let dead = ctx.spawn(|_ctx| ());
///     ctx.sleep(Duration::from_millis(10));
///     ctx.call(&dead, 1u8, Duration::from_secs(60)).unwrap_err()
/// });
/// assert!(matches!(error.unwrap(), CallError::NoProc));
/// ```
///
/// [`Ctx::call`]: crate::Ctx::call
#[derive(Debug)]
#[non_exhaustive]
pub enum CallError {
    /// No reply within the timeout (the server is alive, or its node was
    /// not heard from).
    Timeout,
    /// The server did not exist when the call was made.
    NoProc,
    /// The server ended during the call, with this status.
    Exit(ExitStatus),
    /// The connection to the server's node was lost.
    NoConnection,
    /// An agent called itself (it would wait for its own reply).
    CallingSelf,
}

impl CallError {
    /// The error a server's end makes of a call in flight.
    pub(crate) fn of_exit(status: ExitStatus) -> CallError {
        match status {
            ExitStatus::Exit(ExitReason::NoProc) => CallError::NoProc,
            ExitStatus::Exit(ExitReason::NoConnection) => CallError::NoConnection,
            status => CallError::Exit(status),
        }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Timeout => f.write_str("the call timed out"),
            CallError::NoProc => f.write_str("no such server (noproc)"),
            CallError::Exit(status) => write!(f, "the server exited during the call: {status}"),
            CallError::NoConnection => f.write_str("the server's node was lost (noconnection)"),
            CallError::CallingSelf => f.write_str("an agent cannot call itself"),
        }
    }
}

impl std::error::Error for CallError {}
