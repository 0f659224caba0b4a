//! `Ctx`: what agent code calls — send, receive, spawn, link, monitor, exit,
//! sleep, the registry and introspection. This module holds the agent's
//! core (its body, slices, exits by unwinding), spawn, send, blocking,
//! hibernation and yield; `receive.rs` the receive side and replies,
//! `links.rs` exits, links and monitors, `registry.rs` names and
//! introspection.
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
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::agent::body::{Body, Ending};
use crate::agent::coroutine::{ResumeArg, Suspend, Suspender};
use crate::agent::AgentCell;
use crate::config::{REDUCTIONS_PER_SLICE, REMOTE_BUSY_POLL};
use crate::error::Error;
use crate::exit::{panic_message, ExitReason, ExitStatus, Value};
use crate::mailbox::Signal;
use crate::message::Message;
use crate::pid::Pid;
use crate::scheduler::worker::WorkerContext;
use crate::scheduler::Shared;
use crate::spawn::{spawn_agent, SpawnOptions};
use crate::timer::TimerAction;

mod call;
mod links;
mod receive;
mod registry;
mod trace;

/// The panic payload that carries an exit through the agent's stack.
struct ExitUnwind;

/// `Ctx::hints`: the agent began to exit or to hibernate.
const HINT_LEAVING: u8 = 1;
/// `Ctx::hints`: the agent is in a trace (trace.rs).
const HINT_TRACING: u8 = 2;
/// `Ctx::hints`: the agent runs in a simulation (simulation/mod.rs), which
/// records each send: set for the agent's life, so its calls take their
/// slow paths, and a real runtime's agents pay nothing for it.
const HINT_SIMULATED: u8 = 4;

/// The panic payload that carries a hibernation through the agent's stack.
struct HibernateUnwind;

/// Why an agent's stack is unwinding on purpose.
enum Leaving {
    /// It exits with this reason.
    Exit(ExitReason),
    /// It hibernates: the body it runs next, and whether a message is
    /// already there.
    Hibernate { then: Box<Body>, at_once: bool },
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
    /// Flags that send a runtime call off its fast path, in one byte so
    /// that the per-call check reads one: `HINT_LEAVING` (`leaving.is_some()`,
    /// kept beside it by `set_leaving`) and `HINT_TRACING` (the agent is in
    /// a trace: trace.rs).
    hints: Cell<u8>,
    /// Whether this is `Runtime::run`'s root agent (it cannot hibernate).
    root: Cell<bool>,
    /// Runtime calls left before the agent yields its worker.
    reductions: Cell<u32>,
    /// The next call tag this agent makes (reply.rs).
    next_tag: Cell<u64>,
    /// Its current span, if it is in a trace (trace.rs).
    trace: trace::TraceState,
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
        ctx.end_span();
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

impl Ctx {
    /// The context of the agent that `arg`'s worker is resuming.
    fn new(suspender: &Suspender, arg: ResumeArg) -> Ctx {
        let worker: NonNull<WorkerContext> = arg.cast();
        // SAFETY: `arg` is the resuming worker's context (worker.rs
        // `as_resume_arg`), alive while it is inside `resume`.
        let cell = unsafe { worker.as_ref() }.current_agent();
        Ctx {
            pid: Pid::from_cell(cell),
            suspender: NonNull::from(suspender),
            worker: Cell::new(worker),
            saved_control: RefCell::new(VecDeque::new()),
            saved_data: RefCell::new(VecDeque::new()),
            leaving: RefCell::new(None),
            hints: Cell::new(
                // SAFETY: as above: the resuming worker's context.
                if unsafe { worker.as_ref() }.shared.simulated().is_some() {
                    HINT_SIMULATED
                } else {
                    0
                },
            ),
            root: Cell::new(false),
            reductions: Cell::new(REDUCTIONS_PER_SLICE),
            next_tag: Cell::new(1),
            trace: trace::TraceState::default(),
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

    /// This agent's cell (its own pid is local: one predictable branch,
    /// where a second counted reference would cost two atomic operations
    /// per agent).
    #[inline(always)]
    fn cell(&self) -> &Arc<AgentCell> {
        self.pid.local_cell()
    }

    /// Replaces `leaving` (and its flag); returns the old value.
    fn set_leaving(&self, leaving: Option<Leaving>) -> Option<Leaving> {
        self.set_hint(HINT_LEAVING, leaving.is_some());
        self.leaving.replace(leaving)
    }

    /// Sets or clears one of `hints`' flags.
    fn set_hint(&self, hint: u8, on: bool) {
        let hints = self.hints.get();
        self.hints
            .set(if on { hints | hint } else { hints & !hint });
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
        if self.saved_control.borrow().is_empty() && self.saved_data.borrow().is_empty() {
            return;
        }
        let serial = self.cell().serial;
        let saved_control = std::mem::take(&mut *self.saved_control.borrow_mut());
        let saved_data = std::mem::take(&mut *self.saved_data.borrow_mut());
        let shared = self.shared();
        shared.drop_each(saved_control, serial);
        shared.drop_each(saved_data, serial);
    }

    /// The exit reason for a caught panic payload.
    fn reason_of(&self, payload: Box<dyn Any + Send>) -> ExitReason {
        let leaving = self.set_leaving(None);
        match leaving {
            Some(Leaving::Exit(reason)) if payload.is::<ExitUnwind>() => reason,
            leaving => {
                if let Some(Leaving::Hibernate { then, .. }) = leaving {
                    // It hibernated, caught the unwind, then panicked.
                    self.shared().drop_contained(then, self.cell().serial);
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
        self.end_span();
        let ending = match result {
            Ok(value) => Ending::Exit(ExitStatus::Ok(Value::new(value))),
            Err(payload) if payload.is::<HibernateUnwind>() => {
                let leaving = self.set_leaving(None);
                match leaving {
                    Some(Leaving::Hibernate { then, at_once }) => {
                        Ending::Hibernate { then, at_once }
                    }
                    leaving => {
                        self.set_leaving(leaving);
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
        let before = self.set_leaving(Some(Leaving::Exit(reason)));
        if let Some(Leaving::Hibernate { then, .. }) = before {
            // It hibernated, caught the unwind, then was told to exit.
            self.shared().drop_contained(then, self.cell().serial);
        }
        resume_unwind(Box::new(ExitUnwind))
    }

    /// Ends the agent if an exit signal is pending (or it already began to
    /// exit and caught the unwind). Never while the stack is unwinding: a
    /// destructor's runtime call must not start a second unwind.
    #[inline(always)]
    fn check_exit(&self) {
        if self.exit_hint() {
            self.take_exit();
        }
    }

    /// Whether an exit signal may be pending or the agent began to leave.
    #[inline(always)]
    fn exit_hint(&self) -> bool {
        self.cell().mailbox.exit_pending() || self.hints.get() & HINT_LEAVING != 0
    }

    /// Whether a runtime call must leave its fast path: an exit may be
    /// pending, the agent began to leave, or it is in a trace. Two plain
    /// loads, so that it costs nothing measurable per call.
    #[inline(always)]
    fn call_hint(&self) -> bool {
        self.cell().mailbox.exit_pending() || self.hints.get() != 0
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
            while let Some(signal) = self.cell().mailbox.pop_signal() {
                match signal {
                    Signal::Exit(reason) => self.die(reason),
                    Signal::Down(down) => self
                        .saved_control
                        .borrow_mut()
                        .push_back(Message::new(down)),
                    Signal::Notice(notice) => self.saved_control.borrow_mut().push_back(notice),
                    Signal::TraceNext => self.start_requested_trace(),
                    Signal::Traced(_) => unreachable!("pop_signal takes the control lane only"),
                }
            }
        }
    }

    /// Counts one runtime call against the slice; yields when it is used up.
    #[inline(always)]
    fn charge(&self) {
        if !self.charge_fast() {
            self.charge_slow();
        }
    }

    /// `charge`'s fast path: `false` (and nothing charged) when the slice
    /// is spent or `call_hint` holds, and the caller must take its slow
    /// path, which calls `charge_slow`.
    #[inline(always)]
    fn charge_fast(&self) -> bool {
        let left = self.reductions.get();
        if left != 0 && !self.call_hint() {
            self.reductions.set(left - 1);
            true
        } else {
            false
        }
    }

    /// `charge` when the slice is spent or an exit may be pending: kept out
    /// of line, so that the per-message path stays a few instructions.
    #[cold]
    #[inline(never)]
    fn charge_slow(&self) {
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
    #[inline]
    pub fn send<M: Any + Send>(&self, to: &Pid, message: M) {
        // A refused message was counted (`try_send` says why).
        let _ = self.try_send(to, message);
    }

    /// Backpressure: waits, suspended, while the route to a remote `to`
    /// is busy.
    #[cold]
    #[inline(never)]
    fn wait_for_route(&self, to: &Pid) {
        if let Some(id) = to.as_remote() {
            while id.route().busy(id) {
                self.sleep(REMOTE_BUSY_POLL);
            }
        }
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
    #[inline]
    pub fn try_send<M: Any + Send>(&self, to: &Pid, message: M) -> Result<(), Error> {
        // The charge and the remote check are inlined into the caller; the
        // push and the wake are one out-of-line call (`deliver_from`), which
        // takes the message where the caller built it. A remote pid costs
        // one predictable branch, its backpressure wait is out of line; so
        // does an agent in a trace (its message is wrapped, trace.rs).
        if to.is_remote() {
            return self.try_send_remote(to, message);
        }
        if !self.charge_fast() {
            return self.try_send_slow(to, Message::new(message));
        }
        let worker = self.worker();
        worker
            .shared
            .deliver_from(to, &mut Some(Message::new(message)), Some(worker))
    }

    /// `try_send` to a local `to` off the fast path: the slice is spent, an
    /// exit may be pending, or the agent is in a trace.
    #[inline(never)]
    fn try_send_slow(&self, to: &Pid, message: Message) -> Result<(), Error> {
        self.charge_slow();
        let message = self.outgoing(message);
        let worker = self.worker();
        if let Some(sim) = worker.shared.simulated() {
            sim.record(&crate::simulation::SimEvent::Send {
                node: sim.index,
                from: self.pid.serial(),
                to: to.serial(),
            });
        }
        if message.is_traced() {
            return worker
                .shared
                .deliver_traced_from(to, &mut Some(message), Some(worker));
        }
        worker
            .shared
            .deliver_from(to, &mut Some(message), Some(worker))
    }

    /// `try_send` to a remote `to`: waits while its route is busy, sends,
    /// and if the route asks (`Sent::wait`: a large message past its mark),
    /// waits while it holds senders (`Remote::holds_sender`), so a sender of
    /// large messages adds at most one beyond the mark.
    #[inline(never)]
    fn try_send_remote<M: Any + Send>(&self, to: &Pid, message: M) -> Result<(), Error> {
        self.charge();
        self.wait_for_route(to);
        let message = self.outgoing(Message::new(message));
        let worker = self.worker();
        let sent = worker
            .shared
            .deliver_from(to, &mut Some(message), Some(worker));
        self.after_remote_send(to, worker.take_last_sent());
        sent
    }

    /// What a route's answer to a remote send asks of its sender: a charge
    /// by its size, and a wait if it is a large message past the mark.
    pub(crate) fn after_remote_send(&self, to: &Pid, sent: crate::remote::Sent) {
        self.charge_bytes(sent.bytes);
        if sent.wait {
            self.wait_for_large(to);
        }
    }

    /// Charges `bytes` sent to a remote route: one step per
    /// `SEND_BYTES_PER_REDUCTION`, so that a loop of large sends yields its
    /// worker (Erlang charges a send by its size too).
    fn charge_bytes(&self, bytes: usize) {
        let steps =
            u32::try_from(bytes / crate::config::SEND_BYTES_PER_REDUCTION).unwrap_or(u32::MAX);
        if steps > 0 {
            self.reductions
                .set(self.reductions.get().saturating_sub(steps));
        }
    }

    /// Backpressure on the sender of a large message: waits, suspended,
    /// while the route to a remote `to` holds too many bytes of them
    /// (`Remote::holds_sender`).
    #[cold]
    #[inline(never)]
    fn wait_for_large(&self, to: &Pid) {
        if let Some(id) = to.as_remote() {
            while id.route().holds_sender(id) {
                self.sleep(REMOTE_BUSY_POLL);
            }
        }
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
        let deadline = self.shared().deadline_after(delay);
        let action = TimerAction::Send {
            to: to.clone(),
            message: Message::new(message),
        };
        worker
            .shared
            .arm_timer(worker.index, deadline, action, Some(worker));
    }

    /// Sends a clone of `message` to `to` every `every`, until the returned
    /// [`crate::IntervalRef`] is cancelled or this agent ends (Erlang's
    /// `timer:send_interval/3`). The period does not drift; an interval
    /// more than a period late skips ahead rather than sending a burst.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = Runtime::builder().workers(1).build().unwrap();
    /// let ticks = rt.run(|ctx| {
    ///     let interval = ctx.send_interval(&ctx.pid(), "tick", Duration::from_millis(2));
    ///     let ticks = [ctx.receive(), ctx.receive(), ctx.receive()];
    ///     interval.cancel();
    ///     ticks.iter().filter(|m| m.downcast_ref::<&str>() == Some(&"tick")).count()
    /// });
    /// assert_eq!(ticks.unwrap(), 3);
    /// ```
    pub fn send_interval<M: Any + Send + Clone>(
        &self,
        to: &Pid,
        message: M,
        every: Duration,
    ) -> crate::timer::IntervalRef {
        self.charge();
        let worker = self.worker();
        let every = every.max(crate::config::INTERVAL_MIN);
        let due = self.shared().deadline_after(every);
        let cancelled = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let interval = crate::timer::Interval {
            to: to.clone(),
            make: Box::new(move || Message::new(message.clone())),
            every,
            owner: Arc::downgrade(self.cell()),
            cancelled: cancelled.clone(),
            due,
        };
        worker.shared.arm_timer(
            worker.index,
            due,
            TimerAction::Interval(Box::new(interval)),
            Some(worker),
        );
        crate::timer::IntervalRef { cancelled }
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
        if self.shared().simulated().is_some() {
            // A simulation has one thread: the job runs here, in order.
            return f();
        }
        let slot: std::sync::Arc<Slot<R>> = std::sync::Arc::new(std::sync::Mutex::new(None));
        let shared = self.worker().shared.clone();
        let cell = self.cell().clone();
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
            || self.cell().mailbox.holds_anything();
        self.set_leaving(Some(Leaving::Hibernate {
            then: Box::new(hibernated_body(carry, then)),
            at_once,
        }));
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

    /// The runtime's monotonic clock: `Instant::now()`, or the node's
    /// virtual clock in a simulation. Agent code that measures time with
    /// it runs unchanged under both.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let waited = rt.run(|ctx| {
    ///     let start = ctx.now();
    ///     ctx.sleep(Duration::from_millis(2));
    ///     ctx.now() - start
    /// });
    /// assert!(waited.unwrap() >= Duration::from_millis(2));
    /// ```
    pub fn now(&self) -> Instant {
        self.shared().now()
    }

    /// The simulation this agent runs in, if it is simulated: its seeded
    /// generator and clock (`SimHandle`). `None` on a real runtime.
    pub fn simulation(&self) -> Option<crate::simulation::SimHandle> {
        self.shared()
            .simulated()
            .map(|sim| crate::simulation::SimHandle {
                world: sim.world.clone(),
            })
    }
}
