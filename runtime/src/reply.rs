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
//! Semantics: a reply counts against the mailbox's capacity and is dropped
//! and counted like any message when it is full or closed; only
//! `receive_reply` with its tag takes it (plain and selective receives do
//! not see replies); a reply that comes after its caller gave up stays
//! until the agent exits, bounded by the capacity. Replies are local: a
//! `ReplyTo` of another node is answered with an ordinary message.
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
//! [`Ctx::receive_reply`]: crate::Ctx::receive_reply

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
