//! `AgentCoroutine`: the only user of corosensei.
//!
//! Provides: a coroutine on a [`PooledStack`] that is resumed with an opaque
//! [`ResumeArg`] (the worker's context, passed fresh on every resume so that
//! agent code never derives per-worker pointers from a thread-local,
//! pitfalls.md §3.2), suspends with a [`Suspend`] and returns an
//! [`Ending`] (an exit status, or the body to run after hibernating); and
//! [`Suspender`], the agent-side handle to suspend.
//!
//! # `Send`
//!
//! corosensei's `Coroutine` is `!Send` because it cannot know what lies on
//! the stack at a suspend point. Our one `unsafe impl Send` below rests on
//! two facts:
//! 1. The body given to [`AgentCoroutine::new`] is `Send`, and so is every
//!    value the runtime itself keeps on the stack across a suspend.
//! 2. Safe code never moves a **started** coroutine to another thread: the
//!    scheduler steals only agents that have not started (scheduler/mod.rs),
//!    and the opt-in to migration is an `unsafe fn` whose caller promises
//!    the agent rules (no `!Send` value and no thread-local borrow live
//!    across a blocking call). Until then the coroutine moves between
//!    threads only as an unstarted body, which is `Send`.

use std::ptr::NonNull;

use corosensei::{Coroutine, CoroutineResult, Yielder};

use super::body::{Body, Ending};
use super::stack::{PooledStack, StackSlot};
use crate::exit::ExitStatus;

/// What the worker passes on every resume: its context, type-erased here so
/// that this module does not depend on the scheduler.
pub(crate) type ResumeArg = NonNull<()>;

/// Why an agent switched out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Suspend {
    /// Blocked in receive or sleep: park it unless notified.
    Wait,
    /// Used up its slice: put it at the back of the run queue.
    Yield,
}

/// What a resume ended with.
#[derive(Debug)]
pub(crate) enum Resumed {
    /// The agent switched out.
    Suspended(Suspend),
    /// The agent's function finished.
    Returned(ExitStatus),
    /// The agent hibernated: the coroutine is done, and `then` is what the
    /// agent runs next, on a fresh stack (`at_once`: a message is there).
    Hibernated { then: Box<Body>, at_once: bool },
    /// A panic escaped the body (its own `catch_unwind` catches the agent's
    /// panics, so this is a panic while it built its exit status): the
    /// payload, for the worker to report and drop, contained.
    Panicked(Box<dyn std::any::Any + Send>),
}

/// The agent-side handle for switching out.
#[derive(Debug)]
pub(crate) struct Suspender {
    /// The corosensei yielder on the coroutine's own stack.
    yielder: NonNull<Yielder<ResumeArg, Suspend>>,
}

impl Suspender {
    /// A suspender for code that never suspends (unit tests of bodies).
    #[cfg(test)]
    pub(crate) fn detached() -> Suspender {
        Suspender {
            yielder: NonNull::dangling(),
        }
    }

    /// Switches back to the worker; returns the context of whichever worker
    /// resumes the agent next.
    pub(crate) fn suspend(&self, why: Suspend) -> ResumeArg {
        // SAFETY: the yielder lives at the root of this coroutine's stack for
        // as long as the coroutine runs, and a Suspender is only created
        // there and never leaves that stack (Ctx is !Send).
        let yielder = unsafe { self.yielder.as_ref() };
        yielder.suspend(why)
    }
}

/// A started agent.
pub(crate) struct AgentCoroutine {
    /// The corosensei coroutine.
    coroutine: Coroutine<ResumeArg, Suspend, Ending, PooledStack>,
    /// The stack's slot, for overflow reporting.
    slot: StackSlot,
}

// SAFETY: see the module's "Send" section: the body is Send, and safe code
// moves a started coroutine between threads only through the unsafe
// migration opt-in, whose caller upholds the agent rules.
unsafe impl Send for AgentCoroutine {}

impl std::fmt::Debug for AgentCoroutine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentCoroutine")
            .field("started", &self.coroutine.started())
            .field("done", &self.coroutine.done())
            .finish()
    }
}

impl AgentCoroutine {
    /// Places `body` on `stack`; nothing runs until the first resume.
    pub(crate) fn new(stack: PooledStack, body: Body) -> AgentCoroutine {
        let slot = stack.slot();
        let coroutine =
            Coroutine::with_stack(stack, move |yielder: &Yielder<ResumeArg, Suspend>, arg| {
                let suspender = Suspender {
                    yielder: NonNull::from(yielder),
                };
                body.run(&suspender, arg)
            });
        AgentCoroutine { coroutine, slot }
    }

    /// Runs the agent until it suspends or returns. A panic that escapes the
    /// body (the body catches the agent's own panics) comes back as
    /// [`Resumed::Panicked`]; the coroutine is then done.
    #[inline(always)]
    pub(crate) fn resume(&mut self, arg: ResumeArg) -> Resumed {
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.coroutine.resume(arg)));
        match result {
            Ok(CoroutineResult::Yield(why)) => Resumed::Suspended(why),
            Ok(CoroutineResult::Return(Ending::Exit(status))) => Resumed::Returned(status),
            Ok(CoroutineResult::Return(Ending::Hibernate { then, at_once })) => {
                Resumed::Hibernated { then, at_once }
            }
            Err(payload) => Resumed::Panicked(payload),
        }
    }

    /// Unwinds a suspended agent's stack on the calling thread (its
    /// destructors run here). A panic that escapes the unwind comes back as
    /// its payload instead of ending the caller; the coroutine is then done.
    pub(crate) fn unwind(&mut self) -> Result<(), Box<dyn std::any::Any + Send>> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.coroutine.force_unwind();
        }))
    }

    /// The stack of a finished coroutine, for reuse.
    pub(crate) fn into_stack(self) -> PooledStack {
        self.coroutine.into_stack()
    }

    /// The stack's slot.
    pub(crate) fn slot(&self) -> StackSlot {
        self.slot
    }

    /// Whether the coroutine finished.
    pub(crate) fn done(&self) -> bool {
        self.coroutine.done()
    }
}
