//! `Ctx`: what agent code calls — send, receive, spawn, link, monitor, exit,
//! sleep, the registry and introspection.
//!
//! A `Ctx` lives on its agent's own stack and is `!Send`: it cannot leave the
//! agent. It holds no per-worker pointer derived from a thread-local: the
//! worker that resumes the agent passes its context as the resume value, and
//! `Ctx` stores the latest one (pitfalls.md §3.2).
//!
//! # Receive
//!
//! The agent keeps two private queues of messages it has taken from its
//! mailbox but skipped in a selective receive: notifications and ordinary
//! messages. A receive looks, in order, at skipped notifications, the control
//! lane, skipped messages, then the data lane; the first match is returned,
//! the rest stay queued in arrival order. An exit signal found on the way
//! ends the agent at once (stack unwound, destructors run).
//!
//! ```compile_fail
//! fn assert_send<T: Send>() {}
//! assert_send::<erlangen_runtime::Ctx>();
//! ```

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::agent::body::{Body, Ending};
use crate::agent::coroutine::{ResumeArg, Suspend, Suspender};
use crate::config::{REDUCTIONS_PER_SLICE, REMOTE_BUSY_POLL, TIMER_HORIZON};
use crate::error::Error;
use crate::exit::{ExitReason, ExitStatus, Timeout, Value};
use crate::introspection::{AgentStats, AgentTree};
use crate::mailbox::{Item, Signal};
use crate::message::Message;
use crate::pid::Pid;
use crate::scheduler::signal::Attach;
use crate::scheduler::worker::WorkerContext;
use crate::scheduler::Shared;
use crate::spawn::{spawn_agent, SpawnOptions};
use crate::timer::TimerAction;

/// The panic payload that carries an exit through the agent's stack.
struct ExitUnwind;

/// The panic payload that carries a hibernation through the agent's stack.
struct HibernateUnwind;

/// Why an agent's stack is unwinding on purpose.
enum Leaving {
    /// It exits with this reason.
    Exit(ExitReason),
    /// It hibernates: the body it runs next, and whether a message is
    /// already there.
    Hibernate { then: Body, at_once: bool },
}

/// What a hibernating agent keeps of its `Ctx` for the body it runs next.
struct Carry {
    saved_control: VecDeque<Message>,
    saved_data: VecDeque<Message>,
    next_tag: u64,
}

/// The handle an agent's function receives. Every runtime call goes through it.
///
/// ```
/// use erlangen_runtime::Runtime;
/// let rt = Runtime::builder().workers(2).build().unwrap();
/// let answer = rt.run(|ctx| {
///     let me = ctx.pid();
///     let echo = ctx.spawn(move |ctx| {
///         let n = ctx.receive().downcast::<u64>().unwrap();
///         ctx.send(&me, n * 2);
///     });
///     ctx.send(&echo, 21u64);
///     ctx.receive().downcast::<u64>().unwrap()
/// });
/// assert_eq!(answer.unwrap(), 42);
/// ```
pub struct Ctx {
    /// This agent.
    pid: Pid,
    /// Switches out; lives at the root of this agent's stack.
    suspender: NonNull<Suspender>,
    /// The worker that resumed the agent last.
    worker: Cell<NonNull<WorkerContext>>,
    /// Notifications taken but skipped by a selective receive.
    saved_control: RefCell<VecDeque<Message>>,
    /// Messages taken but skipped by a selective receive.
    saved_data: RefCell<VecDeque<Message>>,
    /// Set when the agent has begun to exit or to hibernate.
    leaving: RefCell<Option<Leaving>>,
    /// Whether this is `Runtime::run`'s root agent (it cannot hibernate).
    root: Cell<bool>,
    /// Runtime calls left before the agent yields its worker.
    reductions: Cell<u32>,
    /// The next call tag this agent makes (reply.rs).
    next_tag: Cell<u64>,
    /// `Ctx` must stay on its agent's stack.
    _not_send: PhantomData<*mut ()>,
}

impl fmt::Debug for Ctx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx")
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

/// Builds the body of an agent running `f`.
pub(crate) fn agent_body<F, R>(f: F) -> Body
where
    F: FnOnce(&mut Ctx) -> R + Send + 'static,
    R: Any + Send + Sync + fmt::Debug,
{
    Body::new(move |suspender: &Suspender, arg| {
        let mut ctx = Ctx::new(suspender, arg);
        ctx.run_to_ending(f)
    })
}

/// Builds the body a hibernating agent runs when it wakes: `f`, on a fresh
/// stack, with what its `Ctx` kept.
fn hibernated_body<F, R>(carry: Carry, f: F) -> Body
where
    F: FnOnce(&mut Ctx) -> R + Send + 'static,
    R: Any + Send + Sync + fmt::Debug,
{
    Body::new(move |suspender: &Suspender, arg| {
        let mut ctx = Ctx::new(suspender, arg);
        *ctx.saved_control.borrow_mut() = carry.saved_control;
        *ctx.saved_data.borrow_mut() = carry.saved_data;
        ctx.next_tag.set(carry.next_tag);
        // A kill that came while it hibernated ends it before `f` runs.
        ctx.run_to_ending(move |ctx| {
            ctx.check_exit();
            f(ctx)
        })
    })
}

/// Builds the body of a root agent whose result (or exit reason) goes to
/// `report` instead of into its status.
pub(crate) fn root_body<F, R>(f: F, report: Box<dyn FnOnce(Result<R, ExitReason>) + Send>) -> Body
where
    F: FnOnce(&mut Ctx) -> R + Send + 'static,
    R: Send + 'static,
{
    Body::new(move |suspender: &Suspender, arg| {
        let mut ctx = Ctx::new(suspender, arg);
        ctx.root.set(true);
        let result = catch_unwind(AssertUnwindSafe(|| f(&mut ctx)));
        let status = match result {
            Ok(value) => {
                report(Ok(value));
                ExitStatus::Ok(Value::new(()))
            }
            Err(payload) => {
                let reason = ctx.reason_of(payload);
                report(Err(reason.clone()));
                ExitStatus::Exit(reason)
            }
        };
        ctx.drop_saved();
        Ending::Exit(status)
    })
}

/// The text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

impl Ctx {
    /// The context of the agent that `arg`'s worker is resuming.
    fn new(suspender: &Suspender, arg: ResumeArg) -> Ctx {
        let worker: NonNull<WorkerContext> = arg.cast();
        // SAFETY: `arg` is the resuming worker's context (worker.rs
        // `as_resume_arg`), alive while it is inside `resume`.
        let pid = Pid::from_cell(unsafe { worker.as_ref() }.current_agent());
        Ctx {
            pid,
            suspender: NonNull::from(suspender),
            worker: Cell::new(worker),
            saved_control: RefCell::new(VecDeque::new()),
            saved_data: RefCell::new(VecDeque::new()),
            leaving: RefCell::new(None),
            root: Cell::new(false),
            reductions: Cell::new(REDUCTIONS_PER_SLICE),
            next_tag: Cell::new(1),
            _not_send: PhantomData,
        }
    }

    /// The worker running this agent now. Never hold the reference across a
    /// suspend.
    fn worker(&self) -> &WorkerContext {
        // SAFETY: the pointer was passed by the worker that resumed us last
        // (`new` or `suspend`); that worker stays inside `resume` while agent
        // code runs, and its context lives as long as its thread.
        unsafe { self.worker.get().as_ref() }
    }

    fn shared(&self) -> &Shared {
        &self.worker().shared
    }

    /// Switches out, then picks up the context of the worker resuming us.
    fn suspend(&self, why: Suspend) {
        // SAFETY: the suspender lives at the root of this agent's stack,
        // below every frame that can hold this Ctx.
        let arg = unsafe { self.suspender.as_ref() }.suspend(why);
        self.worker.set(arg.cast());
        self.reductions.set(REDUCTIONS_PER_SLICE);
    }

    /// Drops the messages a selective receive skipped and the agent never
    /// took, one by one and contained (scheduler/containment.rs): the agent
    /// has ended, so a panicking destructor among them is not its exit.
    fn drop_saved(&self) {
        let serial = self.pid.local_cell().serial;
        let saved_control = std::mem::take(&mut *self.saved_control.borrow_mut());
        let saved_data = std::mem::take(&mut *self.saved_data.borrow_mut());
        let shared = self.shared();
        shared.drop_each(saved_control, serial);
        shared.drop_each(saved_data, serial);
    }

    /// The exit reason for a caught panic payload.
    fn reason_of(&self, payload: Box<dyn Any + Send>) -> ExitReason {
        let leaving = self.leaving.borrow_mut().take();
        match leaving {
            Some(Leaving::Exit(reason)) if payload.is::<ExitUnwind>() => reason,
            leaving => {
                if let Some(Leaving::Hibernate { then, .. }) = leaving {
                    // It hibernated, caught the unwind, then panicked.
                    self.shared()
                        .drop_contained(then, self.pid.local_cell().serial);
                }
                if payload.is::<ExitUnwind>() {
                    ExitReason::Kill
                } else {
                    ExitReason::Panic(panic_message(&*payload).into())
                }
            }
        }
    }

    /// Runs an agent's function and says how it ended: its value, its exit
    /// reason, or the body it hibernated into.
    fn run_to_ending<F, R>(&mut self, f: F) -> Ending
    where
        F: FnOnce(&mut Ctx) -> R,
        R: Any + Send + Sync + fmt::Debug,
    {
        let result = catch_unwind(AssertUnwindSafe(|| f(self)));
        let ending = match result {
            Ok(value) => Ending::Exit(ExitStatus::Ok(Value::new(value))),
            Err(payload) if payload.is::<HibernateUnwind>() => {
                let leaving = self.leaving.borrow_mut().take();
                match leaving {
                    Some(Leaving::Hibernate { then, at_once }) => {
                        Ending::Hibernate { then, at_once }
                    }
                    leaving => {
                        *self.leaving.borrow_mut() = leaving;
                        Ending::Exit(ExitStatus::Exit(self.reason_of(payload)))
                    }
                }
            }
            Err(payload) => Ending::Exit(ExitStatus::Exit(self.reason_of(payload))),
        };
        self.drop_saved();
        ending
    }

    /// Unwinds the agent's stack and ends it with `reason`.
    fn die(&self, reason: ExitReason) -> ! {
        let before = self.leaving.replace(Some(Leaving::Exit(reason)));
        if let Some(Leaving::Hibernate { then, .. }) = before {
            // It hibernated, caught the unwind, then was told to exit.
            self.shared()
                .drop_contained(then, self.pid.local_cell().serial);
        }
        resume_unwind(Box::new(ExitUnwind))
    }

    /// Ends the agent if an exit signal is pending (or it already began to
    /// exit and caught the unwind). Never while the stack is unwinding: a
    /// destructor's runtime call must not start a second unwind.
    #[inline]
    fn check_exit(&self) {
        if self.pid.local_cell().mailbox.exit_pending() || self.leaving.borrow().is_some() {
            self.take_exit();
        }
    }

    /// The slow path of `check_exit`.
    #[cold]
    fn take_exit(&self) {
        if std::thread::panicking() {
            return;
        }
        // It began to leave and caught the unwind: carry on.
        let exiting = match &*self.leaving.borrow() {
            Some(Leaving::Exit(reason)) => Some(reason.clone()),
            Some(Leaving::Hibernate { .. }) => resume_unwind(Box::new(HibernateUnwind)),
            None => None,
        };
        if let Some(reason) = exiting {
            self.die(reason);
        }
        {
            while let Some(signal) = self.pid.local_cell().mailbox.pop_signal() {
                match signal {
                    Signal::Exit(reason) => self.die(reason),
                    Signal::Down(down) => self
                        .saved_control
                        .borrow_mut()
                        .push_back(Message::new(down)),
                }
            }
        }
    }

    /// Takes the first message of `queue` (a saved queue: only this agent
    /// touches it) that `matches`. Every message looked at counts against
    /// the slice, and a spent slice yields in the middle of the scan: a
    /// long mailbox cannot hold the worker. The scan resumes where it
    /// stopped (nothing else changes a saved queue meanwhile).
    fn take_first(
        &self,
        queue: &RefCell<VecDeque<Message>>,
        matches: &mut dyn FnMut(&Message) -> bool,
    ) -> Option<Message> {
        let mut index = 0;
        loop {
            let (found, end) = {
                let queue = queue.borrow();
                let end = (index + REDUCTIONS_PER_SLICE as usize).min(queue.len());
                ((index..end).find(|&i| matches(&queue[i])), end)
            };
            if let Some(found) = found {
                self.charge_skipped(found - index);
                return queue.borrow_mut().remove(found);
            }
            self.charge_skipped(end - index);
            if end >= queue.borrow().len() {
                return None;
            }
            index = end;
        }
    }

    /// Counts `n` messages looked at and skipped against the slice; yields
    /// when it is used up.
    fn charge_skipped(&self, n: usize) {
        let left = self.reductions.get();
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        if n >= left {
            self.yield_now();
        } else {
            self.reductions.set(left - n);
        }
    }

    /// Counts one runtime call against the slice; yields when it is used up.
    fn charge(&self) {
        self.check_exit();
        let left = self.reductions.get();
        if left == 0 {
            self.yield_now();
        } else {
            self.reductions.set(left - 1);
        }
    }

    /// This agent's handle.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// assert!(rt.run(|ctx| ctx.pid() == ctx.pid()).unwrap());
    /// ```
    pub fn pid(&self) -> Pid {
        self.pid.clone()
    }

    /// Spawns an agent running `f` with default options. Its return value
    /// becomes its exit status, `ExitStatus::Ok(value)`.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let n = rt.run(|ctx| {
    ///     let me = ctx.pid();
    ///     ctx.spawn(move |ctx| ctx.send(&me, 5u8));
    ///     ctx.receive().downcast::<u8>().unwrap()
    /// });
    /// assert_eq!(n.unwrap(), 5);
    /// ```
    pub fn spawn<F, R>(&self, f: F) -> Pid
    where
        F: FnOnce(&mut Ctx) -> R + Send + 'static,
        R: Any + Send + Sync + fmt::Debug,
    {
        self.charge();
        let worker = self.worker();
        spawn_agent(
            &worker.shared,
            Some(worker),
            &SpawnOptions::default(),
            agent_body(f),
            None,
        )
        .expect("default spawn options are valid")
    }

    /// Spawns an agent with `options` (attach, mailbox capacity, stack size).
    /// Attaching happens before the agent runs, so no exit can be missed.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let status = rt.run(|ctx| {
    ///     ctx.spawn_with(SpawnOptions::new().monitor(), |_| 1 + 1).unwrap();
    ///     ctx.receive().downcast::<Down>().unwrap().status
    /// });
    /// assert_eq!(status.unwrap().value().unwrap().downcast_ref::<i32>(), Some(&2));
    /// ```
    pub fn spawn_with<F, R>(&self, options: SpawnOptions, f: F) -> Result<Pid, Error>
    where
        F: FnOnce(&mut Ctx) -> R + Send + 'static,
        R: Any + Send + Sync + fmt::Debug,
    {
        self.charge();
        let worker = self.worker();
        spawn_agent(
            &worker.shared,
            Some(worker),
            &options,
            agent_body(f),
            Some(&self.pid),
        )
    }

    /// Sends `message` to `to`. Never blocks; a full mailbox or a dead agent
    /// drops the message and counts it in the receiver's `dropped`.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let got = rt.run(|ctx| {
    ///     ctx.send(&ctx.pid(), String::from("hi"));
    ///     ctx.receive().downcast::<String>().unwrap()
    /// });
    /// assert_eq!(got.unwrap(), "hi");
    /// ```
    pub fn send<M: Any + Send>(&self, to: &Pid, message: M) {
        self.charge();
        if let Some(id) = to.as_remote() {
            // Backpressure: wait, suspended, while the route is busy.
            while id.route().busy(id) {
                self.sleep(REMOTE_BUSY_POLL);
            }
        }
        let worker = self.worker();
        worker
            .shared
            .deliver_message(to, Message::new(message), Some(worker));
    }

    /// `send`, saying whether the message was delivered: `Err` (with
    /// [`Error::NotSent`]) when a local mailbox is full or its agent has
    /// exited, or when a remote pid's node refuses it at the sender (its
    /// type is not registered for distribution, or it encodes larger than
    /// the wire allows). `Ok` means queued here or handed to the node, not
    /// received: a message to a remote pid can still be lost with its
    /// connection. Either way a refused message is counted as dropped, as
    /// `send` counts it.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let got = rt.run(|ctx| {
    ///     let small = ctx.spawn_with(SpawnOptions::new().mailbox_len(1), |ctx| {
    ///         ctx.receive_match(|m| m.downcast_ref::<&str>() == Some(&"go"));
    ///     }).unwrap();
    ///     (ctx.try_send(&small, 1u8).is_ok(), ctx.try_send(&small, 2u8).is_err())
    /// });
    /// assert_eq!(got.unwrap(), (true, true));
    /// ```
    pub fn try_send<M: Any + Send>(&self, to: &Pid, message: M) -> Result<(), Error> {
        self.charge();
        if let Some(id) = to.as_remote() {
            while id.route().busy(id) {
                self.sleep(REMOTE_BUSY_POLL);
            }
        }
        let worker = self.worker();
        worker
            .shared
            .try_deliver_message(to, Message::new(message), Some(worker))
    }

    /// Sends to the agent registered as `name`.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let got = rt.run(|ctx| {
    ///     ctx.register("me").unwrap();
    ///     ctx.send_named("me", 1u8).unwrap();
    ///     (ctx.receive().downcast::<u8>().unwrap(), ctx.send_named("nobody", 1u8).is_err())
    /// });
    /// assert_eq!(got.unwrap(), (1, true));
    /// ```
    pub fn send_named<M: Any + Send>(&self, name: &str, message: M) -> Result<(), Error> {
        let to = self
            .shared()
            .registry
            .lookup(name)
            .ok_or_else(|| Error::NoSuchName(name.to_owned()))?;
        self.send(&to, message);
        Ok(())
    }

    /// Sends `message` to `to` after `delay`.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let got = rt.run(|ctx| {
    ///     ctx.send_after(&ctx.pid(), "later", Duration::from_millis(5));
    ///     ctx.send(&ctx.pid(), "now");
    ///     [ctx.receive().downcast::<&str>().unwrap(), ctx.receive().downcast::<&str>().unwrap()]
    /// });
    /// assert_eq!(got.unwrap(), ["now", "later"]);
    /// ```
    pub fn send_after<M: Any + Send>(&self, to: &Pid, message: M, delay: Duration) {
        self.charge();
        let worker = self.worker();
        let deadline = deadline_after(delay);
        let action = TimerAction::Send {
            to: to.clone(),
            message: Message::new(message),
        };
        worker
            .shared
            .arm_timer(worker.index, deadline, action, Some(worker));
    }

    /// Takes the next message, suspending until one comes. Notifications
    /// ([`crate::Down`]) come ahead of ordinary messages.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let got = rt.run(|ctx| {
    ///     let me = ctx.pid();
    ///     ctx.spawn(move |ctx| ctx.send(&me, 3u64));
    ///     ctx.receive().downcast::<u64>().unwrap()
    /// });
    /// assert_eq!(got.unwrap(), 3);
    /// ```
    pub fn receive(&self) -> Message {
        self.charge();
        if self.saved_control.borrow().is_empty() && self.saved_data.borrow().is_empty() {
            // Fast path: nothing was skipped by an earlier selective receive,
            // so the mailbox's own order is the answer.
            loop {
                match self.pid.local_cell().mailbox.pop() {
                    Some(Item::Message(message)) => return message,
                    Some(Item::Signal(Signal::Down(down))) => return Message::new(down),
                    Some(Item::Signal(Signal::Exit(reason))) => self.die(reason),
                    None => {
                        self.suspend(Suspend::Wait);
                        self.check_exit();
                    }
                }
            }
        }
        match self.receive_until(&mut |_| true, None) {
            Ok(message) => message,
            Err(Timeout) => unreachable!("a receive without deadline cannot time out"),
        }
    }

    /// Like [`Ctx::receive`], but gives up after `timeout` (zero: do not
    /// wait at all).
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let got = rt.run(|ctx| ctx.receive_timeout(Duration::from_millis(1)).is_err());
    /// assert!(got.unwrap());
    /// ```
    pub fn receive_timeout(&self, timeout: Duration) -> Result<Message, Timeout> {
        self.receive_until(&mut |_| true, Some(deadline_after(timeout)))
    }

    /// Takes the first message for which `matches` is true, leaving the
    /// others queued in their order (Erlang's selective receive).
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let got = rt.run(|ctx| {
    ///     ctx.send(&ctx.pid(), 1u8);
    ///     ctx.send(&ctx.pid(), "wanted");
    ///     let wanted = ctx.receive_match(|m| m.is::<&str>()).downcast::<&str>().unwrap();
    ///     (wanted, ctx.receive().downcast::<u8>().unwrap())
    /// });
    /// assert_eq!(got.unwrap(), ("wanted", 1));
    /// ```
    pub fn receive_match(&self, mut matches: impl FnMut(&Message) -> bool) -> Message {
        match self.receive_until(&mut matches, None) {
            Ok(message) => message,
            Err(Timeout) => unreachable!("a receive without deadline cannot time out"),
        }
    }

    /// Selective receive with a timeout.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let got = rt.run(|ctx| {
    ///     ctx.send(&ctx.pid(), 1u8);
    ///     ctx.receive_match_timeout(|m| m.is::<String>(), Duration::from_millis(1)).is_err()
    /// });
    /// assert!(got.unwrap());
    /// ```
    pub fn receive_match_timeout(
        &self,
        mut matches: impl FnMut(&Message) -> bool,
        timeout: Duration,
    ) -> Result<Message, Timeout> {
        self.receive_until(&mut matches, Some(deadline_after(timeout)))
    }

    /// The receive loop shared by every variant.
    fn receive_until(
        &self,
        matches: &mut dyn FnMut(&Message) -> bool,
        deadline: Option<Instant>,
    ) -> Result<Message, Timeout> {
        self.charge();
        let mut armed = false;
        let mut look_at_saved = true;
        let result = loop {
            if let Some(message) = self.take_match(matches, look_at_saved) {
                break Ok(message);
            }
            look_at_saved = false;
            if let Some(deadline) = deadline {
                if Instant::now() >= deadline {
                    break Err(Timeout);
                }
                if !armed {
                    self.arm_wake(deadline);
                    armed = true;
                }
            }
            self.suspend(Suspend::Wait);
            self.check_exit();
        };
        if armed {
            self.disarm_wake();
        }
        result
    }

    /// One pass over the saved queues and the mailbox.
    fn take_match(
        &self,
        matches: &mut dyn FnMut(&Message) -> bool,
        look_at_saved: bool,
    ) -> Option<Message> {
        if look_at_saved {
            if let Some(message) = self.take_first(&self.saved_control, matches) {
                return Some(message);
            }
            if !self.saved_data.borrow().is_empty() {
                while let Some(signal) = self.pid.local_cell().mailbox.pop_signal() {
                    if let Some(message) = self.consider_signal(signal, matches) {
                        return Some(message);
                    }
                }
                if let Some(message) = self.take_first(&self.saved_data, matches) {
                    return Some(message);
                }
            }
        }
        while let Some(item) = self.pid.local_cell().mailbox.pop() {
            match item {
                Item::Signal(signal) => {
                    if let Some(message) = self.consider_signal(signal, matches) {
                        return Some(message);
                    }
                }
                Item::Message(message) => {
                    if matches(&message) {
                        return Some(message);
                    }
                    self.saved_data.borrow_mut().push_back(message);
                    // Each skipped message counts against the slice.
                    self.charge_skipped(1);
                }
            }
        }
        None
    }

    /// An exit signal ends the agent; a notification is offered to `matches`
    /// and saved if it does not match.
    fn consider_signal(
        &self,
        signal: Signal,
        matches: &mut dyn FnMut(&Message) -> bool,
    ) -> Option<Message> {
        match signal {
            Signal::Exit(reason) => self.die(reason),
            Signal::Down(down) => {
                let message = Message::new(down);
                if matches(&message) {
                    return Some(message);
                }
                self.saved_control.borrow_mut().push_back(message);
                None
            }
        }
    }

    /// Arms a timer that wakes this agent at `deadline`.
    fn arm_wake(&self, deadline: Instant) {
        let cell = self.pid.local_cell();
        let seq = cell.timer_seq.fetch_add(1, Ordering::AcqRel) + 1;
        let worker = self.worker();
        let action = TimerAction::Wake {
            cell: cell.clone(),
            seq,
        };
        worker
            .shared
            .arm_timer(worker.index, deadline, action, Some(worker));
    }

    /// Makes any armed timer stale.
    fn disarm_wake(&self) {
        self.pid
            .local_cell()
            .timer_seq
            .fetch_add(1, Ordering::AcqRel);
    }

    /// Suspends the agent for `duration`. A kill ends it at once.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// rt.run(|ctx| ctx.sleep(Duration::from_millis(1))).unwrap();
    /// ```
    pub fn sleep(&self, duration: Duration) {
        self.check_exit();
        let deadline = deadline_after(duration);
        self.arm_wake(deadline);
        while Instant::now() < deadline {
            self.suspend(Suspend::Wait);
            self.check_exit();
        }
        self.disarm_wake();
    }

    /// A new tag for a call: send [`Ctx::reply_to`] with the request, then
    /// wait with [`Ctx::receive_reply`] (see `reply` in the crate docs).
    ///
    /// # Example
    ///
    /// ```
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// assert!(rt.run(|ctx| ctx.make_tag() != ctx.make_tag()).unwrap());
    /// ```
    pub fn make_tag(&self) -> crate::reply::Tag {
        let tag = self.next_tag.get();
        self.next_tag.set(tag + 1);
        crate::reply::Tag(tag)
    }

    /// Where a reply to this agent's call `tag` goes.
    ///
    /// # Example
    ///
    /// ```
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// assert!(rt.run(|ctx| ctx.reply_to(ctx.make_tag()).pid == ctx.pid()).unwrap());
    /// ```
    pub fn reply_to(&self, tag: crate::reply::Tag) -> crate::reply::ReplyTo {
        crate::reply::ReplyTo {
            pid: self.pid.clone(),
            tag,
        }
    }

    /// Answers a call: `message` goes to `to.pid`, filed under its tag, for
    /// its [`Ctx::receive_reply`] (a remote caller gets it as an ordinary
    /// message).
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let got = rt.run(|ctx| {
    ///     let tag = ctx.make_tag();
    ///     ctx.reply(&ctx.reply_to(tag), "to myself");
    ///     ctx.receive_reply(tag, Duration::from_secs(1)).unwrap().downcast::<&str>().unwrap()
    /// });
    /// assert_eq!(got.unwrap(), "to myself");
    /// ```
    pub fn reply<M: Any + Send>(&self, to: &crate::reply::ReplyTo, message: M) {
        if to.pid.is_remote() {
            self.send(&to.pid, message);
            return;
        }
        let tagged = crate::reply::Tagged {
            tag: to.tag.0,
            message: Message::new(message),
        };
        self.send(&to.pid, tagged);
    }

    /// Waits for the reply to this agent's call `tag`, taking it without
    /// looking at any other message (O(1), whatever the mailbox holds), or
    /// gives up after `timeout`. Exit signals still end the agent while it
    /// waits; notifications and messages stay queued.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let timed_out = rt.run(|ctx| ctx.receive_reply(ctx.make_tag(), Duration::from_millis(1)).is_err());
    /// assert!(timed_out.unwrap());
    /// ```
    pub fn receive_reply(
        &self,
        tag: crate::reply::Tag,
        timeout: Duration,
    ) -> Result<Message, Timeout> {
        self.charge();
        let deadline = deadline_after(timeout);
        let mailbox = &self.pid.local_cell().mailbox;
        let mut armed = false;
        let result = loop {
            if let Some(reply) = mailbox.take_reply(tag.0) {
                let tagged = reply
                    .downcast::<crate::reply::Tagged>()
                    .expect("the reply lane holds tagged messages");
                break Ok(tagged.message);
            }
            if Instant::now() >= deadline {
                break Err(Timeout);
            }
            if !armed {
                self.arm_wake(deadline);
                armed = true;
            }
            self.suspend(Suspend::Wait);
            self.check_exit();
        };
        if armed {
            self.disarm_wake();
        }
        result
    }

    /// Runs `f` on the runtime's pool of blocking threads while this agent
    /// waits, suspended on its own worker (it never changes thread), and
    /// returns what `f` returned. Other agents of the worker run meanwhile.
    /// Use it for blocking I/O, `std::thread::sleep` and long computations.
    /// A panic in `f` becomes this agent's panic. A kill of the waiting
    /// agent takes effect at once; `f` still runs to its end on its thread,
    /// and its result is dropped there.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let n = rt.run(|ctx| {
    ///     ctx.blocking(|| {
    ///         std::thread::sleep(Duration::from_millis(10)); // would hold the worker
    ///         42
    ///     })
    /// });
    /// assert_eq!(n.unwrap(), 42);
    /// ```
    pub fn blocking<F, R>(&self, f: F) -> R
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        type Slot<R> = std::sync::Mutex<Option<std::thread::Result<R>>>;
        self.charge();
        let slot: std::sync::Arc<Slot<R>> = std::sync::Arc::new(std::sync::Mutex::new(None));
        let shared = self.worker().shared.clone();
        let cell = self.pid.local_cell().clone();
        let filled = slot.clone();
        let job: crate::scheduler::blocking::Job = Box::new(move || {
            let result = catch_unwind(AssertUnwindSafe(f));
            *crate::sync::lock(&filled) = Some(result);
            shared.wake(&cell, None);
        });
        if let Err(job) =
            crate::scheduler::blocking::BlockingPool::submit(&self.shared().blocking, job)
        {
            // Shutting down: run it here rather than lose it.
            job();
        }
        loop {
            if let Some(result) = crate::sync::lock(&slot).take() {
                match result {
                    Ok(value) => return value,
                    Err(payload) => resume_unwind(payload),
                }
            }
            self.suspend(Suspend::Wait);
            self.check_exit();
        }
    }

    /// Gives up this agent's stack until a message arrives, as Erlang's
    /// `erlang:hibernate/3` does: the stack unwinds (its destructors run)
    /// and goes back to the pool with its memory returned to the kernel;
    /// the agent keeps its pid, links, monitors, registered name, mailbox
    /// and the messages a selective receive skipped. When a message (or an
    /// exit signal) arrives, `then` runs on a fresh stack, and what it
    /// returns is the agent's exit value. With a message already there,
    /// `then` runs at once. A hibernated agent costs its cell and `then`'s
    /// captures, not a stack page: use it for agents that wait long (the
    /// per-agent memory figures are in `benches/RESULTS.md`).
    ///
    /// The root agent of [`crate::Runtime::run`] cannot hibernate (its
    /// result goes back to the caller): there this call panics.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let answer = rt.run(|ctx| {
    ///     let sleeper = ctx
    ///         .spawn_with(SpawnOptions::new().monitor(), |ctx| {
    ///             let count = 41u32;
    ///             ctx.hibernate(move |ctx| count + ctx.receive().downcast::<u32>().unwrap())
    ///         })
    ///         .unwrap();
    ///     ctx.send(&sleeper, 1u32);
    ///     let down = ctx.receive().downcast::<Down>().unwrap();
    ///     *down.status.value().unwrap().downcast_ref::<u32>().unwrap()
    /// });
    /// assert_eq!(answer.unwrap(), 42);
    /// ```
    pub fn hibernate<F, R>(&self, then: F) -> !
    where
        F: FnOnce(&mut Ctx) -> R + Send + 'static,
        R: Any + Send + Sync + fmt::Debug,
    {
        self.check_exit();
        assert!(
            !self.root.get(),
            "the root agent of Runtime::run cannot hibernate: spawn an agent that does"
        );
        let carry = Carry {
            saved_control: std::mem::take(&mut *self.saved_control.borrow_mut()),
            saved_data: std::mem::take(&mut *self.saved_data.borrow_mut()),
            next_tag: self.next_tag.get(),
        };
        let at_once = !carry.saved_control.is_empty()
            || !carry.saved_data.is_empty()
            || self.pid.local_cell().mailbox.holds_anything();
        *self.leaving.borrow_mut() = Some(Leaving::Hibernate {
            then: hibernated_body(carry, then),
            at_once,
        });
        resume_unwind(Box::new(HibernateUnwind))
    }

    /// Lets the other runnable agents of this worker run first.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// rt.run(|ctx| ctx.yield_now()).unwrap();
    /// ```
    pub fn yield_now(&self) {
        self.suspend(Suspend::Yield);
        self.check_exit();
    }

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
        self.pid.local_cell().mailbox.remove_downs_from(to);
        self.saved_control
            .borrow_mut()
            .retain(|message| message.as_down().is_none_or(|down| down.pid != *to));
        Ok(())
    }

    /// Registers this agent as `name`; the name is released when it exits.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let found = rt.run(|ctx| {
    ///     ctx.register("logger").unwrap();
    ///     ctx.whereis("logger") == Some(ctx.pid())
    /// });
    /// assert!(found.unwrap());
    /// assert!(rt.whereis("logger").is_none()); // released at exit
    /// ```
    pub fn register(&self, name: &str) -> Result<(), Error> {
        self.shared().registry.register(name, &self.pid)
    }

    /// Registers `pid` as `name`.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let names = rt.run(|ctx| {
    ///     let other = ctx.spawn(|ctx| { ctx.receive(); });
    ///     ctx.register_pid("other", &other).unwrap();
    ///     let names = ctx.registered();
    ///     ctx.kill(&other, ExitReason::Kill);
    ///     names
    /// });
    /// assert_eq!(names.unwrap(), vec!["other".to_string()]);
    /// ```
    pub fn register_pid(&self, name: &str, pid: &Pid) -> Result<(), Error> {
        self.shared().check_local(pid)?;
        self.shared().registry.register(name, pid)
    }

    /// Removes `name` from the registry.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let again = rt.run(|ctx| {
    ///     ctx.register("x").unwrap();
    ///     ctx.unregister("x").unwrap();
    ///     ctx.unregister("x")
    /// });
    /// assert_eq!(again.unwrap(), Err(Error::NotRegistered("x".into())));
    /// ```
    pub fn unregister(&self, name: &str) -> Result<(), Error> {
        self.shared().registry.unregister(name)
    }

    /// The agent registered as `name`.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// assert_eq!(rt.run(|ctx| ctx.whereis("nobody")).unwrap(), None);
    /// ```
    pub fn whereis(&self, name: &str) -> Option<Pid> {
        self.shared().registry.lookup(name)
    }

    /// Every registered name, sorted.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// assert!(rt.run(|ctx| ctx.registered()).unwrap().is_empty());
    /// ```
    pub fn registered(&self) -> Vec<String> {
        self.shared().registry.names()
    }

    /// Counters and times of `pid`.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let received = rt.run(|ctx| {
    ///     ctx.send(&ctx.pid(), ());
    ///     ctx.receive();
    ///     ctx.stats(&ctx.pid()).received
    /// });
    /// assert_eq!(received.unwrap(), 1);
    /// ```
    pub fn stats(&self, pid: &Pid) -> AgentStats {
        AgentStats::of(pid)
    }

    /// The tree of agents `pid` monitors, with its other links.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let children = rt.run(|ctx| {
    ///     let child = ctx.spawn_with(SpawnOptions::new().monitor(), |ctx| { ctx.receive(); }).unwrap();
    ///     let tree = ctx.agent_tree(&ctx.pid());
    ///     ctx.kill(&child, ExitReason::Kill);
    ///     tree.monitored.len()
    /// });
    /// assert_eq!(children.unwrap(), 1);
    /// ```
    pub fn agent_tree(&self, pid: &Pid) -> AgentTree {
        AgentTree::of(pid)
    }

    /// Every live agent of the runtime.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// assert!(rt.run(|ctx| ctx.agents().contains(&ctx.pid())).unwrap());
    /// ```
    pub fn agents(&self) -> Vec<Pid> {
        crate::introspection::live_agents(self.shared())
    }

    /// Takes every message now queued without waiting (Erlangen's
    /// `flush-messages`).
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let n = rt.run(|ctx| {
    ///     ctx.send(&ctx.pid(), 1u8);
    ///     ctx.send(&ctx.pid(), 2u8);
    ///     ctx.flush().len()
    /// });
    /// assert_eq!(n.unwrap(), 2);
    /// ```
    pub fn flush(&self) -> Vec<Message> {
        let mut all = Vec::new();
        while let Ok(message) = self.receive_timeout(Duration::ZERO) {
            all.push(message);
        }
        all
    }
}

/// `now + delay`, clamped to the timer horizon.
pub(crate) fn deadline_after(delay: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(delay.min(TIMER_HORIZON))
        .unwrap_or(now + TIMER_HORIZON)
}
