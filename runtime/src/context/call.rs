//! `Ctx`'s observing monitors and calls: `watch`, `unwatch`, `call`, `cast`
//! (the protocol is watch.rs's; replies by tag are reply.rs's).

use std::any::Any;
use std::time::Duration;

use crate::error::Error;
use crate::mailbox::Signal;
use crate::message::Message;
use crate::pid::Pid;
use crate::reply::{Call, CallError, Cast, ReplyTo, Tag};
use crate::spawn::SpawnOptions;
use crate::watch::{ServerEnded, WatchDown, WatchRef};

use super::Ctx;

/// Why `Ctx::spawn_and_await` has no answer.
#[derive(Debug)]
pub(crate) enum StartError {
    /// The spawn was refused.
    Spawn(Error),
    /// The agent ended first, or took longer than the timeout.
    NoAnswer(CallError),
}

impl StartError {
    /// The error a start function returns, naming what it started.
    pub(crate) fn into_error(self, what: &str) -> Error {
        match self {
            StartError::Spawn(error) => error,
            StartError::NoAnswer(CallError::Timeout) => {
                Error::InvalidConfig(format!("the {what} did not say it started in time"))
            }
            StartError::NoAnswer(error) => {
                Error::InvalidConfig(format!("the {what} ended while it started: {error}"))
            }
        }
    }
}

impl Ctx {
    /// Watches `pid` (Erlang's `monitor/2`): when it exits, this agent gets
    /// a [`WatchDown`] with the returned ref and its exit status (`noproc`
    /// at once if it is already dead). Unlike [`Ctx::monitor`] (Erlangen's
    /// supervision edge), this agent's own exit never touches `pid`. An
    /// agent of another node is watched the same way; losing its node is a
    /// `WatchDown` with `noconnection`.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// let rt = Runtime::builder().workers(1).build().unwrap();
    /// let status = rt.run(|ctx| {
    ///     let worker = ctx.spawn(|ctx| { ctx.receive(); });
    ///     let watch = ctx.watch(&worker).unwrap();
    ///     ctx.kill(&worker, ExitReason::other("done"));
    ///     let down = ctx.receive().downcast::<WatchDown>().unwrap();
    ///     assert_eq!(down.watch, watch);
    ///     down.status.reason().map(ToString::to_string)
    /// });
    /// assert_eq!(status.unwrap().as_deref(), Some("done"));
    /// ```
    pub fn watch(&self, pid: &Pid) -> Result<WatchRef, Error> {
        self.charge();
        self.arm_watch(pid, None)
    }

    /// Arms a watch of `pid`: its end comes as a [`WatchDown`], or is filed
    /// under the call tag `tag` when there is one.
    fn arm_watch(&self, pid: &Pid, tag: Option<Tag>) -> Result<WatchRef, Error> {
        let id = self.next_id();
        let worker = self.worker();
        worker
            .shared
            .watch(&self.pid, pid, id, tag.map(|tag| tag.id()), Some(worker))
    }

    /// Removes `watch` (Erlang's `demonitor(Ref, [flush])`): after it
    /// returns, no [`WatchDown`] of it is received, even one already queued.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = Runtime::builder().workers(1).build().unwrap();
    /// let quiet = rt.run(|ctx| {
    ///     let worker = ctx.spawn(|_ctx| ());
    ///     let watch = ctx.watch(&worker).unwrap();
    ///     ctx.sleep(Duration::from_millis(10)); // it has exited: its WatchDown waits
    ///     ctx.unwatch(&watch);
    ///     ctx.receive_timeout(Duration::from_millis(10)).is_err()
    /// });
    /// assert!(quiet.unwrap());
    /// ```
    pub fn unwatch(&self, watch: &WatchRef) {
        self.charge();
        if self.shared().unwatch(&self.pid, watch) {
            return;
        }
        // It fired: its notice is queued, or was set aside by a selective
        // receive.
        let fired = |message: &Message| {
            message
                .downcast_ref::<WatchDown>()
                .is_some_and(|down| down.watch == *watch)
        };
        self.take_back(
            &|signal| matches!(signal, Signal::Notice(notice) if fired(notice)),
            &fired,
        );
    }

    /// Calls `server` (Erlang's `gen_server:call`): sends it a
    /// [`Call`] with `request` and waits at most `timeout` for the reply,
    /// which it takes by its tag in O(1) whatever else the mailbox holds.
    /// The server is watched for the duration of the call, so its end is
    /// an error at once ([`CallError::NoProc`] if it was dead before,
    /// [`CallError::Exit`] with its status if it died during the call), and
    /// this agent's end never harms it. A reply after the timeout is
    /// discarded. A server on another node is called the same way, with the
    /// same outcomes, and [`CallError::NoConnection`] when its node is lost
    /// (the request and reply types must be registered for distribution
    /// there: `erlangen_net::Types::register_call`).
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = Runtime::builder().workers(1).build().unwrap();
    /// let error = rt.run(|ctx| {
    ///     let server = ctx.spawn(|ctx| {
    ///         let _call = ctx.receive().downcast::<Call<&str>>().unwrap();
    ///         panic!("the server crashed");
    ///     });
    ///     ctx.call(&server, "hello", Duration::from_secs(60)).unwrap_err()
    /// });
    /// assert!(matches!(error.unwrap(), CallError::Exit(_)));
    /// ```
    pub fn call<M: Any + Send>(
        &self,
        server: &Pid,
        request: M,
        timeout: Duration,
    ) -> Result<Message, CallError> {
        if *server == self.pid {
            return Err(CallError::CallingSelf);
        }
        let tag = self.make_tag();
        // Watched before the request leaves: an end it causes is its
        // reason, never `noproc` (across nodes both travel in order).
        let watch = self.watch_for(server, tag);
        self.send(
            server,
            Call {
                from: self.reply_to(tag),
                request,
            },
        );
        self.await_reply(tag, watch, timeout)
    }

    /// Watches `server` for the call `tag`: its end is filed under the tag
    /// (`noproc` if it has ended already), where the reply would be.
    /// (The one refusal, watching oneself, is ruled out by the callers.)
    fn watch_for(&self, server: &Pid, tag: Tag) -> Option<WatchRef> {
        self.arm_watch(server, Some(tag)).ok()
    }

    /// Waits at most `timeout` for the answer filed under `tag` — the reply,
    /// or the watched server's end; a reply that came first wins over the
    /// end that followed it (the tag takes one answer) — and removes the
    /// watch.
    fn await_reply(
        &self,
        tag: Tag,
        watch: Option<WatchRef>,
        timeout: Duration,
    ) -> Result<Message, CallError> {
        let result = self.receive_reply(tag, timeout);
        if let Some(watch) = &watch {
            // Unarmed already if it fired: its notice went under the tag,
            // taken above or dropped with the closed tag.
            self.shared().unwatch(&self.pid, watch);
        }
        match result {
            Ok(reply) => match reply.downcast::<ServerEnded>() {
                Ok(ended) => Err(CallError::of_exit(ended.0)),
                Err(reply) => Ok(reply),
            },
            Err(_) => Err(CallError::Timeout),
        }
    }

    /// Spawns `body` with `options`, hands it where to answer, and waits at
    /// most `timeout` for its first answer, a `T` (or its end): how
    /// `start_server` and `start_supervisor` return only once the agent
    /// they started says it is ready.
    pub(crate) fn spawn_and_await<T, F>(
        &self,
        options: SpawnOptions,
        timeout: Duration,
        body: F,
    ) -> Result<(Pid, T), StartError>
    where
        T: Any + Send,
        F: FnOnce(&mut Ctx, ReplyTo) + Send + 'static,
    {
        let tag = self.make_tag();
        let from = self.reply_to(tag);
        let pid = self
            .spawn_with(options, move |ctx| body(ctx, from))
            .map_err(StartError::Spawn)?;
        let watch = self.watch_for(&pid, tag);
        let answer = self
            .await_reply(tag, watch, timeout)
            .map_err(StartError::NoAnswer)?;
        let answer = answer.downcast::<T>().map_err(|other| {
            StartError::NoAnswer(CallError::Exit(crate::exit::ExitStatus::Exit(
                crate::exit::ExitReason::other(&format!("answered with {other:?}")),
            )))
        })?;
        Ok((pid, answer))
    }

    /// Sends `server` a [`Cast`] with `request` (Erlang's
    /// `gen_server:cast`): nobody waits for an answer.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// let rt = Runtime::builder().workers(1).build().unwrap();
    /// let got = rt.run(|ctx| {
    ///     let me = ctx.pid();
    ///     let server = ctx.spawn(move |ctx| {
    ///         let cast = ctx.receive().downcast::<Cast<u8>>().unwrap();
    ///         ctx.send(&me, cast.request);
    ///     });
    ///     ctx.cast(&server, 5u8);
    ///     ctx.receive().downcast::<u8>().unwrap()
    /// });
    /// assert_eq!(got.unwrap(), 5);
    /// ```
    pub fn cast<M: Any + Send>(&self, server: &Pid, request: M) {
        self.send(server, Cast { request });
    }
}
