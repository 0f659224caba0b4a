//! `Ctx`'s links, monitors and exits: `exit`, `kill`, `link`, `monitor`
//! and `unlink` (the edge protocol is scheduler/signal.rs's).

use crate::error::Error;
use crate::exit::ExitReason;
use crate::mailbox::Signal;
use crate::pid::Pid;
use crate::scheduler::signal::Attach;

use super::Ctx;

impl Ctx {
    /// Ends this agent with `reason`: its stack unwinds (destructors run),
    /// and its links and monitors are told.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let result = rt.run(|ctx| -> u8 { ctx.exit(ExitReason::other("done early")) });
    /// assert!(matches!(result, Err(ExitReason::Other(r)) if &*r == "done early"));
    /// ```
    pub fn exit(&self, reason: ExitReason) -> ! {
        self.die(reason)
    }

    /// Sends `to` an exit signal with `reason` (Erlangen's `exit reason
    /// agent`). It takes effect at once if `to` is suspended, else at its
    /// next runtime call; later messages to it are dropped. Killing a dead
    /// agent does nothing; killing yourself is [`Ctx::exit`].
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let status = rt.run(|ctx| {
    ///     let child = ctx.spawn_with(SpawnOptions::new().monitor(), |ctx| { ctx.receive(); }).unwrap();
    ///     ctx.kill(&child, ExitReason::Kill);
    ///     ctx.receive().downcast::<Down>().unwrap().status
    /// });
    /// assert!(matches!(status.unwrap(), ExitStatus::Exit(ExitReason::Kill)));
    /// ```
    pub fn kill(&self, to: &Pid, reason: ExitReason) {
        if *to == self.pid {
            self.exit(reason);
        }
        self.charge();
        let worker = self.worker();
        worker
            .shared
            .deliver_exit_from(Some(&self.pid), to, reason, Some(worker));
    }

    /// Links this agent and `to`: when either exits, normally or not, the
    /// other is killed with the whole exit status as its reason
    /// ([`ExitReason::Linked`]). Linking a dead agent kills this one with
    /// `noproc`.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let reason = rt.run(|ctx| {
    ///     let watcher = ctx.spawn_with(SpawnOptions::new().monitor(), |ctx| {
    ///         let peer = ctx.spawn(|_| "peer done");
    ///         ctx.link(&peer).unwrap();
    ///         ctx.receive();
    ///     }).unwrap();
    ///     let down = ctx.receive().downcast::<Down>().unwrap();
    ///     (down.pid == watcher, down.status.reason().cloned())
    /// });
    /// let (is_watcher, reason) = reason.unwrap();
    /// assert!(is_watcher);
    /// // The peer's normal return killed the linked watcher (it may also have
    /// // been dead before the link: noproc).
    /// assert!(matches!(reason, Some(ExitReason::Linked(_)) | Some(ExitReason::NoProc)));
    /// ```
    pub fn link(&self, to: &Pid) -> Result<(), Error> {
        self.charge();
        let worker = self.worker();
        worker
            .shared
            .attach(&self.pid, to, Attach::Link, Some(worker))
    }

    /// Monitors `to`: when it exits this agent receives a [`crate::Down`]
    /// (at once, with `noproc`, if it is already dead); when this agent exits,
    /// `to` is killed (Erlangen's monitor).
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let ok = rt.run(|ctx| {
    ///     let child = ctx.spawn(|ctx| { ctx.receive(); });
    ///     ctx.monitor(&child).unwrap();
    ///     ctx.send(&child, ());
    ///     ctx.receive().downcast::<Down>().unwrap().pid == child
    /// });
    /// assert!(ok.unwrap());
    /// ```
    pub fn monitor(&self, to: &Pid) -> Result<(), Error> {
        self.charge();
        let worker = self.worker();
        worker
            .shared
            .attach(&self.pid, to, Attach::Monitor, Some(worker))
    }

    /// Removes every link and monitor between this agent and `to`, in both
    /// directions. No notification for them arrives afterwards.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let quiet = rt.run(|ctx| {
    ///     let child = ctx.spawn_with(SpawnOptions::new().monitor(), |ctx| { ctx.receive(); }).unwrap();
    ///     ctx.unlink(&child).unwrap();
    ///     ctx.send(&child, ());
    ///     ctx.receive_timeout(Duration::from_millis(20)).is_err()
    /// });
    /// assert!(quiet.unwrap());
    /// ```
    pub fn unlink(&self, to: &Pid) -> Result<(), Error> {
        self.charge();
        self.shared().detach(&self.pid, to)?;
        // A notification queued before the edge went (its exit raced with
        // this unlink) is taken back: none is received afterwards.
        self.take_back(
            &|signal| matches!(signal, Signal::Down(down) if down.pid == *to),
            &|message| message.as_down().is_some_and(|down| down.pid == *to),
        );
        Ok(())
    }
}
