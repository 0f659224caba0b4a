//! `WorkerContext`: one worker thread, its queues, and its loop.
//!
//! # The loop
//!
//! 1. Every [`FAIRNESS_TICKS`] ticks, fire due timers and pull from the inbox
//!    and the injector first, so that neither starves behind local work.
//! 2. Find the next agent: LIFO slot (at most [`LIFO_RUNS_MAX`] times in a
//!    row), run queue, stealable deque, inbox, injector, steal from another
//!    worker's deque, and last the agents that yielded their slice (due
//!    timers are fired before one of those runs again).
//! 3. Run it until it suspends or returns (`run_agent`), then publish its new
//!    state (agent/state.rs step 3) or finish it (signal.rs `finish`).
//! 4. With nothing to run: fire due timers; search for up to
//!    `spin_before_park` (a few rounds spinning, then yielding the core
//!    each round); then park until woken or until the next deadline
//!    (idle.rs explains why no wake-up is lost).
//!
//! # Shutdown
//!
//! 1. The runtime sets `shutdown` and unparks everyone; each worker leaves
//!    the loop after the agent it is running switches out.
//! 2. All workers meet at a barrier: from here on no agent runs.
//! 3. Each worker tears down the started agents whose home it is: it drops
//!    their coroutines on its own thread, which unwinds their stacks (their
//!    destructors run here, with this worker's context still valid) and
//!    returns the stacks to the pool.
//! 4. A second barrier; each worker returns its stack cache to the pool and
//!    exits. The runtime joins the threads and frees the rest (runtime.rs).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::ptr::NonNull;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier};
use std::time::Instant;

use crossbeam_deque::{Steal, Worker};

use super::reclaim::ReturnBatches;
use super::{Shared, Task, WorkerShared, SERIAL_BLOCK_LEN};
use crate::agent::coroutine::{AgentCoroutine, Resumed, Suspend};
use crate::agent::stack::StackCache;
use crate::agent::state::AfterSuspend;
use crate::agent::{overflow, AgentCell, Stage};
use crate::config::{
    FAIRNESS_TICKS, IDLE_SPIN_ROUNDS_BEFORE_YIELD, LIFO_RUNS_MAX, STEAL_BATCH_LEN_MAX,
    STEAL_BURST_LEN_MIN, STEAL_DELAY, YIELD_WAIT_TICKS_MAX,
};
use crate::exit::{ExitReason, ExitStatus};
use crate::sync::lock;

/// One worker thread's private state. Agent code reaches it only through the
/// pointer passed on each resume (never through a thread-local).
#[derive(Debug)]
pub(crate) struct WorkerContext {
    /// This worker's index in `Shared::workers`.
    pub(crate) index: usize,
    /// The runtime's shared state.
    pub(crate) shared: Arc<Shared>,
    /// Unstarted (and migratable) agents; the other end is stealable.
    stealable: Worker<Task>,
    /// Started agents whose home is this worker.
    run_queue: RefCell<VecDeque<Task>>,
    /// Started agents that yielded their slice, with the tick at which they
    /// did: they run after all other local work, or once they have waited
    /// [`YIELD_WAIT_TICKS_MAX`] ticks, so a yield lets others run and a
    /// yielded agent is never starved.
    yielded: RefCell<VecDeque<(u32, Task)>>,
    /// The agent woken last by an agent running here.
    lifo: RefCell<Option<Task>>,
    /// Consecutive runs taken from the LIFO slot.
    lifo_runs: Cell<u32>,
    /// Free stacks of the default size.
    stack_cache: RefCell<StackCache>,
    /// Scheduling ticks, for the fairness check.
    tick: Cell<u32>,
    /// Whether agents run inside an `agent` span for logs (a subscriber
    /// wants target `erlangen::agent` at DEBUG): asked when the worker
    /// starts and again at each fairness tick, so that a resume tests one
    /// flag of its own worker.
    agent_spans: Cell<bool>,
    /// The agent being resumed (read by a new agent's body at its start).
    /// Invariant: non-null only while `run_agent` (or `teardown`) holds a
    /// `Task` for it (the live table keeps the cell alive) or an `Arc`.
    current: Cell<*const AgentCell>,
    /// Messages sent from this worker so far (metrics): counted here, where
    /// no other thread looks, and published after each resume.
    pub(crate) sent: Cell<u64>,
    /// Next serial number of this worker's block, and the block's end.
    serials: Cell<(u64, u64)>,
    /// Scratch list of due timers.
    due: RefCell<Vec<crate::timer::TimerAction>>,
    /// Dead agents' cells on their way home (reclaim.rs).
    returns: ReturnBatches,
    /// Routes that buffered sends of the agent running here, flushed
    /// before this worker runs anything else (`Remote::send_from_worker`).
    owed_flushes: RefCell<Vec<Arc<dyn crate::remote::Remote>>>,
    /// What the route said of the last remote send of the agent running
    /// here (its size to charge, whether to wait); taken by `Ctx` after the
    /// send.
    last_sent: Cell<crate::remote::Sent>,
    /// How this worker spins when idle.
    polite: RefCell<crate::polite_spin::PoliteSpin>,
}

impl WorkerContext {
    /// The context of worker `index`, owning `stealable`.
    pub(crate) fn new(index: usize, shared: Arc<Shared>, stealable: Worker<Task>) -> WorkerContext {
        let stack_bytes = shared.config.stack_size_bytes;
        let shared_workers = shared.workers.len();
        WorkerContext {
            index,
            shared,
            stealable,
            run_queue: RefCell::new(VecDeque::new()),
            yielded: RefCell::new(VecDeque::new()),
            lifo: RefCell::new(None),
            lifo_runs: Cell::new(0),
            stack_cache: RefCell::new(StackCache::new(stack_bytes)),
            tick: Cell::new(0),
            agent_spans: Cell::new(agent_spans_wanted()),
            current: Cell::new(std::ptr::null()),
            sent: Cell::new(0),
            serials: Cell::new((0, 0)),
            due: RefCell::new(Vec::new()),
            returns: ReturnBatches::new(shared_workers),
            owed_flushes: RefCell::new(Vec::new()),
            last_sent: Cell::new(crate::remote::Sent::default()),
            polite: RefCell::new(crate::polite_spin::PoliteSpin::new()),
        }
    }

    /// `route` buffered a send from this worker: it is flushed before the
    /// worker runs anything else.
    pub(crate) fn owe_flush(&self, route: &Arc<dyn crate::remote::Remote>) {
        let mut owed = self.owed_flushes.borrow_mut();
        if !owed.iter().any(|r| Arc::ptr_eq(r, route)) {
            owed.push(route.clone());
        }
    }

    /// Keeps what a route said of a remote send, for `Ctx` to act on.
    pub(crate) fn set_last_sent(&self, sent: crate::remote::Sent) {
        self.last_sent.set(sent);
    }

    /// What a route said of the last remote send, cleared.
    pub(crate) fn take_last_sent(&self) -> crate::remote::Sent {
        self.last_sent.take()
    }

    /// Flushes the routes owed a flush.
    #[cold]
    #[inline(never)]
    fn flush_routes(&self) {
        let owed = std::mem::take(&mut *self.owed_flushes.borrow_mut());
        for route in &owed {
            route.flush();
        }
        // Keep the allocation for the next slice.
        let mut kept = owed;
        kept.clear();
        *self.owed_flushes.borrow_mut() = kept;
    }

    /// The opaque pointer handed to agents on resume.
    fn as_resume_arg(&self) -> NonNull<()> {
        NonNull::from(self).cast()
    }

    /// The agent being resumed right now.
    pub(crate) fn current_agent(&self) -> Arc<AgentCell> {
        let cell = self.current.get();
        assert!(!cell.is_null(), "called from inside an agent");
        // SAFETY: `current` is non-null only while this worker holds a Task
        // (the live table's `Arc` keeps the cell alive, LIVE-QUEUED) or an
        // `Arc` for the cell (field invariant).
        unsafe { super::task::counted(cell) }
    }

    /// The serial of the agent being resumed, 0 if none is (a timer
    /// fired between agents).
    pub(crate) fn current_serial(&self) -> u64 {
        let cell = self.current.get();
        if cell.is_null() {
            return 0;
        }
        // SAFETY: non-null only while this worker holds a Task or an `Arc`
        // for the cell (field invariant), so it is alive.
        unsafe { (*cell).serial }
    }

    /// A fresh serial number from this worker's block.
    pub(crate) fn next_serial(&self) -> u64 {
        let (next, end) = self.serials.get();
        if next < end {
            self.serials.set((next + 1, end));
            return next;
        }
        let start = self.shared.reserve_serials(SERIAL_BLOCK_LEN);
        self.serials.set((start + 1, start + SERIAL_BLOCK_LEN));
        start
    }

    /// Puts an agent woken by an agent running here into the LIFO slot; the
    /// previous occupant goes to the back of the run queue.
    #[inline]
    pub(crate) fn push_lifo(&self, task: Task) {
        if let Some(previous) = self.lifo.borrow_mut().replace(task) {
            self.run_queue.borrow_mut().push_back(previous);
        }
    }

    /// Puts an unstarted or migratable agent where other workers can steal it
    /// (after `STEAL_DELAY`, or at once from a burst).
    pub(crate) fn push_stealable(&self, task: Task) {
        if self.stealable.is_empty() {
            // Relaxed: a stale value only moves the steal delay's start.
            self.shared.workers[self.index]
                .stealable_since_ns
                .store(self.shared.clock_ns(), Ordering::Relaxed);
        }
        self.stealable.push(task);
    }

    /// The worker thread's body: the loop, then shutdown. A panic that
    /// escapes the loop is a broken runtime invariant (user code runs only
    /// inside agents or under containment.rs): it is logged, the worker
    /// stops running agents, and it still takes part in shutdown, so that
    /// the other workers' barriers are met and nothing hangs.
    pub(crate) fn run(&self, barrier: &Barrier) {
        self.shared.workers[self.index].parker.bind_current_thread();
        overflow::ensure_alt_stack();
        let looped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.run_loop()));
        if let Err(payload) = looped {
            tracing::error!(
                worker = self.index,
                "erlangen: worker {} stopped on a panic ({}): a runtime invariant was broken",
                self.index,
                crate::exit::panic_message(&*payload)
            );
            super::containment::drop_payload(payload);
            self.shared.workers[self.index]
                .died
                .store(true, Ordering::Release);
            while !self.shared.shutdown.load(Ordering::Acquire) {
                std::thread::park();
            }
        }
        self.teardown(barrier);
    }

    /// Steps 1 to 4, until shutdown.
    fn run_loop(&self) {
        // This worker's shared entry, looked up once (not per resume).
        let own = &self.shared.workers[self.index];
        while !self.shared.shutdown.load(Ordering::Acquire) {
            if !self.owed_flushes.borrow().is_empty() {
                self.flush_routes();
            }
            let tick = self.tick.get().wrapping_add(1);
            self.tick.set(tick);
            // Every FAIRNESS_TICKS-th resume is sampled: the agent it runs
            // is counted FAIRNESS_TICKS slices (agent_list.rs), an estimate
            // that costs the other resumes nothing.
            let sampled = tick.is_multiple_of(FAIRNESS_TICKS);
            let fair = if sampled {
                self.agent_spans.set(agent_spans_wanted());
                self.fire_timers();
                self.returns.free_returned(&self.shared, self.index);
                self.overdue_yielded(tick).or_else(|| self.next_shared())
            } else {
                None
            };
            let next = fair
                .or_else(|| self.next_local())
                .or_else(|| self.next_shared())
                .or_else(|| self.next_yielded());
            match next {
                Some(task) => {
                    if sampled {
                        task.slices.fetch_add(FAIRNESS_TICKS, Ordering::Relaxed);
                    }
                    self.run_agent(task, own);
                }
                None => self.idle(),
            }
        }
    }

    /// Step 2, local part.
    #[inline(always)]
    fn next_local(&self) -> Option<Task> {
        let lifo = self.lifo.borrow_mut().take();
        if let Some(task) = lifo {
            if self.lifo_runs.get() < LIFO_RUNS_MAX {
                self.lifo_runs.set(self.lifo_runs.get() + 1);
                return Some(task);
            }
            self.run_queue.borrow_mut().push_back(task);
        }
        self.lifo_runs.set(0);
        let queued = self.run_queue.borrow_mut().pop_front();
        queued.or_else(|| self.stealable.pop())
    }

    /// Step 2, last: the oldest agent that yielded its slice. It has just
    /// used a whole slice and is about to take another, so due timers go
    /// first: an agent whose timeout is due runs before it (a worker busy
    /// with one hard-working agent would otherwise look at its timers only
    /// every [`FAIRNESS_TICKS`] slices of it).
    fn next_yielded(&self) -> Option<Task> {
        if self.yielded.borrow().is_empty() {
            return None;
        }
        if self.fire_timers() {
            if let Some(task) = self.next_local() {
                return Some(task);
            }
        }
        self.yielded.borrow_mut().pop_front().map(|(_, task)| task)
    }

    /// The oldest yielded agent, if it has waited too long.
    fn overdue_yielded(&self, tick: u32) -> Option<Task> {
        let mut yielded = self.yielded.borrow_mut();
        match yielded.front() {
            Some((since, _)) if tick.wrapping_sub(*since) > YIELD_WAIT_TICKS_MAX => {
                yielded.pop_front().map(|(_, task)| task)
            }
            _ => None,
        }
    }

    /// Step 2, shared part: inbox, injector, other workers' deques.
    fn next_shared(&self) -> Option<Task> {
        let own = &self.shared.workers[self.index];
        if let Some(task) = self.drain_inbox(own) {
            return Some(task);
        }
        if let Some(task) = retry(|| self.shared.injector.steal_batch_and_pop(&self.stealable)) {
            return Some(task);
        }
        let n = self.shared.workers.len();
        for offset in 1..n {
            let victim = &self.shared.workers[(self.index + offset) % n];
            if victim.stealer.is_empty() {
                continue;
            }
            // Leave young work to its owner for STEAL_DELAY, unless it is a
            // burst (config.rs).
            let since = victim.stealable_since_ns.load(Ordering::Relaxed);
            let delay = STEAL_DELAY.as_nanos() as u64;
            if self.shared.clock_ns().saturating_sub(since) < delay
                && victim.stealer.len() < STEAL_BURST_LEN_MIN
            {
                continue;
            }
            if let Some(task) = retry(|| victim.stealer.steal_batch_and_pop(&self.stealable)) {
                // A plain store: this worker is the only writer.
                let steals = &self.shared.workers[self.index].steals;
                steals.store(steals.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
                return Some(task);
            }
        }
        None
    }

    /// Moves up to a batch of woken agents from the inbox to the run queue,
    /// returning the first.
    fn drain_inbox(&self, own: &WorkerShared) -> Option<Task> {
        let first = retry(|| own.inbox.steal())?;
        let mut run_queue = self.run_queue.borrow_mut();
        for _ in 1..STEAL_BATCH_LEN_MAX {
            match retry(|| own.inbox.steal()) {
                Some(task) => run_queue.push_back(task),
                None => break,
            }
        }
        Some(first)
    }

    /// Step 3. `activity` is this worker's entry in `shared.workers`.
    #[inline(always)]
    fn run_agent(&self, task: Task, activity: &WorkerShared) {
        if !task.state.transition_to_running() {
            return;
        }
        // SAFETY: BODY-OWNER: we moved the state word to RUNNING above; the
        // reference ends with this statement.
        let unstarted = matches!(unsafe { task.stage() }, Stage::Unstarted(_));
        if unstarted && !self.start(&task) {
            return;
        }
        // SAFETY: BODY-OWNER: we moved the state word to RUNNING above, and
        // we drop `stage` before moving it out of RUNNING below (`finish`
        // comes after its last use).
        let stage = unsafe { task.stage() };
        let Stage::Started(coroutine) = stage else {
            unreachable!("a scheduled agent is unstarted or started");
        };
        if task.migratable {
            task.home.store(self.index, Ordering::Release);
        }
        let slot = coroutine.slot();
        let (guard_low, guard_high) = slot.guard_range();
        overflow::enter(
            guard_low,
            guard_high,
            task.serial,
            slot.usable_bytes(),
            task.as_ptr() as usize,
        );
        self.current.set(task.as_ptr());
        // What the watchdog reads (watchdog.rs): plain stores, this worker
        // is the only writer.
        let resumes = activity.resumes.load(Ordering::Relaxed);
        activity.resumes.store(resumes + 1, Ordering::Relaxed);
        activity.running.store(task.serial, Ordering::Relaxed);
        let resumed = if self.agent_spans.get() {
            self.resume_in_span(task.serial, coroutine)
        } else {
            coroutine.resume(self.as_resume_arg())
        };
        activity.running.store(0, Ordering::Relaxed);
        activity.sent.store(self.sent.get(), Ordering::Relaxed);
        self.current.set(std::ptr::null());
        overflow::leave();
        let status = match resumed {
            Resumed::Suspended(Suspend::Wait) => {
                if task.state.transition_to_waiting() == AfterSuspend::Requeue {
                    self.requeue(task);
                }
                return;
            }
            Resumed::Suspended(Suspend::Yield) => {
                task.state.transition_to_yielded();
                if task.migratable {
                    self.requeue(task);
                } else {
                    self.yielded.borrow_mut().push_back((self.tick.get(), task));
                }
                return;
            }
            Resumed::Hibernated { then, at_once } => {
                self.hibernate(&task, stage, *then);
                if at_once {
                    task.state.transition_to_yielded();
                    self.requeue(task);
                } else if task.state.transition_to_waiting() == AfterSuspend::Requeue {
                    self.requeue(task);
                }
                return;
            }
            Resumed::Returned(status) => status,
            Resumed::Panicked(payload) => {
                let reason = ExitReason::Panic(crate::exit::panic_message(&*payload).into());
                self.shared.contained(payload, task.serial, "an exit path");
                ExitStatus::Exit(reason)
            }
        };
        if let Stage::Started(coroutine) = std::mem::replace(stage, Stage::Finished) {
            debug_assert!(coroutine.done());
            let slot = coroutine.into_stack().into_slot();
            self.shared
                .stacks
                .give(slot, &mut self.stack_cache.borrow_mut());
        }
        if let Some(cell) = self.shared.finish(&task, status, Some(self)) {
            self.returns.give(&self.shared, self.index, cell);
        }
    }

    /// Resumes an agent inside an `agent` span naming it, so that what its
    /// code logs says which agent it was (the span is entered on this
    /// thread for the slice only, never across a suspend).
    #[cold]
    #[inline(never)]
    fn resume_in_span(&self, serial: u64, coroutine: &mut AgentCoroutine) -> Resumed {
        let span = tracing::debug_span!(
            target: "erlangen::agent",
            "agent",
            agent = %format_args!("<{serial:x}>")
        );
        let _entered = span.enter();
        coroutine.resume(self.as_resume_arg())
    }

    /// An agent hibernated (`Ctx::hibernate`): its finished coroutine's stack
    /// goes back to the pool (stack.rs `give_hibernated`: its pages go back
    /// to the kernel unless the worker's cache takes it), and
    /// the agent becomes unstarted again with `then` as its body. The caller
    /// holds it RUNNING and then parks or re-queues it.
    fn hibernate(&self, task: &Task, stage: &mut Stage, then: crate::agent::body::Body) {
        if let Stage::Started(coroutine) = std::mem::replace(stage, Stage::Unstarted(then)) {
            debug_assert!(coroutine.done());
            let slot = coroutine.into_stack().into_slot();
            self.shared
                .stacks
                .give_hibernated(slot, &mut self.stack_cache.borrow_mut());
        }
        task.hibernations.fetch_add(1, Ordering::Relaxed);
        task.hibernated.store(true, Ordering::Relaxed);
    }

    /// Gives an agent that has not started its stack and coroutine, and a
    /// home; does nothing to a started one. Returns `false` if no stack
    /// could be had: the agent has then exited.
    ///
    /// The caller holds the agent RUNNING. No reference into the cell is
    /// alive when `finish` runs, since `finish` may hand back the cell's
    /// last reference (the spawner dropped its `Pid` and nothing watches
    /// the agent), and dropping it frees the cell.
    fn start(&self, task: &Task) -> bool {
        let body = {
            // SAFETY: BODY-OWNER: the caller holds the agent RUNNING; the
            // reference ends with this block.
            let stage = unsafe { task.stage() };
            if !matches!(stage, Stage::Unstarted(_)) {
                return true;
            }
            let Stage::Unstarted(body) = std::mem::replace(stage, Stage::Finished) else {
                unreachable!("checked above");
            };
            body
        };
        let stack = self
            .shared
            .stacks
            .take(task.stack_bytes(), &mut self.stack_cache.borrow_mut());
        let Some(stack) = stack else {
            self.shared.drop_contained(body, task.serial);
            let status = ExitStatus::Exit(ExitReason::SystemLimit);
            let held = self.shared.finish(task, status, Some(self));
            drop(held);
            return false;
        };
        // SAFETY: BODY-OWNER, as above; the reference ends with this statement.
        *unsafe { task.stage() } = Stage::Started(AgentCoroutine::new(stack, body));
        task.home.store(self.index, Ordering::Release);
        task.hibernated.store(false, Ordering::Relaxed);
        true
    }

    /// Puts an agent that is `SCHEDULED` again at the back of the queues.
    fn requeue(&self, task: Task) {
        if task.migratable {
            task.home.store(self.index, Ordering::Release);
            self.stealable.push(task);
        } else {
            self.run_queue.borrow_mut().push_back(task);
        }
    }

    /// Fires every timer that is due. Returns whether any fired.
    fn fire_timers(&self) -> bool {
        self.shared
            .fire_due_timers(self.index, Some(self), &mut self.due.borrow_mut())
    }

    /// Step 4.
    fn idle(&self) {
        if self.fire_timers() {
            return;
        }
        let idle = &self.shared.idle;
        idle.n_searching.fetch_add(1, Ordering::SeqCst);
        let started = Instant::now();
        let mut round = 0u32;
        let mut contended = self.polite.borrow().is_contended();
        loop {
            if let Some(task) = self.next_shared() {
                idle.n_searching.fetch_sub(1, Ordering::SeqCst);
                self.run_agent(task, &self.shared.workers[self.index]);
                return;
            }
            round = round.wrapping_add(1);
            // Time and timers cost a clock read and a lock: look every 32
            // rounds only (a round is a few hundred ns).
            if round.is_multiple_of(32) {
                let now = Instant::now();
                if self.shared.shutdown.load(Ordering::Acquire) || self.fire_timers() {
                    idle.n_searching.fetch_sub(1, Ordering::SeqCst);
                    return;
                }
                if now.duration_since(started) >= self.shared.config.spin_before_park {
                    break;
                }
            }
            // A short pure spin catches a hand-off from another worker
            // (hundreds of ns); past it, each round yields the core
            // (polite_spin.rs), so that a thread of this process (a node's
            // event loop) or of another one that shares it runs at once (a
            // spin that kept the core made a round trip across nodes 2 to 30
            // times slower). On a contended core a yield gives a whole time
            // slice away: there the worker spins without yielding, as it
            // did before (measured: parking at once instead was 25 times
            // slower for ping-pong across workers).
            if round < IDLE_SPIN_ROUNDS_BEFORE_YIELD || contended {
                std::hint::spin_loop();
            } else if !self
                .polite
                .borrow_mut()
                .keep_going(started, self.shared.config.spin_before_park)
            {
                contended = self.polite.borrow().is_contended();
                if !contended {
                    break;
                }
            }
        }
        idle.n_searching.fetch_sub(1, Ordering::SeqCst);
        self.shared
            .stacks
            .flush_discards(&mut self.stack_cache.borrow_mut());
        self.returns.hand_over_all(&self.shared);
        self.returns.free_returned(&self.shared, self.index);
        self.park();
    }

    /// Parks until woken or until the next deadline (idle.rs protocol).
    fn park(&self) {
        let own = &self.shared.workers[self.index];
        own.parker.announce(&self.shared.idle);
        if !self.work_visible() {
            let deadline = lock(&own.timers).next_deadline();
            match deadline {
                Some(deadline) => {
                    let now = Instant::now();
                    if deadline > now {
                        std::thread::park_timeout(deadline - now);
                    }
                }
                None => std::thread::park(),
            }
        }
        own.parker.retract(&self.shared.idle);
    }

    /// Step 2 of the park protocol: anything this worker could take now?
    fn work_visible(&self) -> bool {
        let shared = &self.shared;
        shared.shutdown.load(Ordering::SeqCst)
            || !shared.workers[self.index].inbox.is_empty()
            || !shared.injector.is_empty()
            || !self.stealable.is_empty()
            || !self.run_queue.borrow().is_empty()
            || !self.yielded.borrow().is_empty()
            || self.lifo.borrow().is_some()
            || shared
                .workers
                .iter()
                .enumerate()
                .any(|(i, w)| i != self.index && !w.stealer.is_empty())
    }

    /// Shutdown steps 2 to 4.
    fn teardown(&self, barrier: &Barrier) {
        barrier.wait();
        for task in self.shared.live.snapshot() {
            if task.home() != Some(self.index) {
                continue;
            }
            // SAFETY: BODY-OWNER, shutdown clause: no worker runs agents any
            // more (barrier above) and this is the agent's home worker; the
            // reference is dropped at the end of this iteration.
            let stage = unsafe { task.stage() };
            match std::mem::replace(stage, Stage::Finished) {
                Stage::Finished => {}
                Stage::Unstarted(body) => {
                    // Hibernated (or pinned here and never run): no stack
                    // to unwind; its body and what it captured go now.
                    task.state.transition_to_done();
                    task.set_died();
                    self.shared.drop_contained(body, task.serial);
                }
                Stage::Started(mut coroutine) => {
                    task.state.transition_to_done();
                    task.set_died();
                    self.current.set(Arc::as_ptr(&task));
                    if let Err(payload) = coroutine.unwind() {
                        self.shared
                            .contained(payload, task.serial, "an agent's unwinding");
                    }
                    self.current.set(std::ptr::null());
                    drop(coroutine);
                }
            }
        }
        barrier.wait();
        self.shared
            .stacks
            .drain_cache(&mut self.stack_cache.borrow_mut());
        self.lifo.borrow_mut().take();
        self.run_queue.borrow_mut().clear();
        self.yielded.borrow_mut().clear();
        while self.stealable.pop().is_some() {}
    }

    /// Simulation (simulation/mod.rs): moves every agent this worker could
    /// run now into `ready`, in a fixed order (the simulation, not the
    /// queues, picks which runs next).
    pub(crate) fn sim_collect(&self, ready: &mut Vec<Task>) {
        let own = &self.shared.workers[self.index];
        ready.extend(self.lifo.borrow_mut().take());
        ready.extend(self.run_queue.borrow_mut().drain(..));
        ready.extend(self.yielded.borrow_mut().drain(..).map(|(_, task)| task));
        while let Some(task) = self.stealable.pop() {
            ready.push(task);
        }
        while let Some(task) = retry(|| own.inbox.steal()) {
            ready.push(task);
        }
        while let Some(task) = retry(|| self.shared.injector.steal()) {
            ready.push(task);
        }
    }

    /// Simulation: runs `task` for one slice (steps 3 and the flushes
    /// before the next), as the loop would.
    pub(crate) fn sim_run(&self, task: Task) {
        let tick = self.tick.get().wrapping_add(1);
        self.tick.set(tick);
        if tick.is_multiple_of(FAIRNESS_TICKS) {
            task.slices.fetch_add(FAIRNESS_TICKS, Ordering::Relaxed);
            self.returns.free_returned(&self.shared, self.index);
        }
        self.run_agent_outlined(task);
        if !self.owed_flushes.borrow().is_empty() {
            self.flush_routes();
        }
    }

    /// `run_agent` out of line, for the simulation: the worker loop keeps
    /// the one inlined copy (a second inlined copy changed how the loop
    /// itself was compiled, and cost B3 3 %).
    #[inline(never)]
    fn run_agent_outlined(&self, task: Task) {
        self.run_agent(task, &self.shared.workers[self.index]);
    }

    /// Simulation: fires this worker's due timers (by the node's virtual
    /// clock). Returns whether any fired.
    pub(crate) fn sim_fire_timers(&self) -> bool {
        self.fire_timers()
    }

    /// Simulation: ends this worker (shutdown steps 2 to 4 on the
    /// simulation's thread, the only worker there is).
    pub(crate) fn sim_teardown(&self) {
        self.returns.hand_over_all(&self.shared);
        self.returns.free_returned(&self.shared, self.index);
        self.teardown(&Barrier::new(1));
    }
}

/// Runs a steal until it gives a definite answer.
fn retry<T>(mut steal: impl FnMut() -> Steal<T>) -> Option<T> {
    loop {
        match steal() {
            Steal::Success(task) => return Some(task),
            Steal::Empty => return None,
            Steal::Retry => std::hint::spin_loop(),
        }
    }
}

/// Whether a log subscriber wants agents' spans (target `erlangen::agent`,
/// level DEBUG).
fn agent_spans_wanted() -> bool {
    tracing::enabled!(target: "erlangen::agent", tracing::Level::DEBUG)
}
