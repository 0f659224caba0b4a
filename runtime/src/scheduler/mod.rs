//! The scheduler's shared state and `schedule`, the one way to make an agent
//! runnable.
//!
//! # Queues
//!
//! Each worker owns (worker.rs):
//! * a **LIFO slot** for the agent most recently woken by an agent running on
//!   that worker, so a ping-pong pair stays on one core and pays no
//!   cross-core wake;
//! * a private **run queue** of started agents whose home it is;
//! * a crossbeam **stealable deque** of agents that have not started yet.
//!
//! Shared here: every worker's **inbox** (an `Injector` through which other
//! threads wake agents whose home that worker is), every worker's `Stealer`,
//! the global **injector** for agents spawned from outside the runtime, and the
//! idle counts.
//!
//! # Which agents may move between workers
//!
//! A started agent never leaves its home worker unless it was spawned with
//! the `unsafe` migration opt-in. Rust 1.95 can keep a thread-local's address
//! across a coroutine switch (pitfalls.md §3.2), so migrating a started
//! agent could make safe code read another thread's thread-local. Agents
//! that have not started hold only their `Send` closure, so they are the
//! ones stolen, which is also where the load is in spawn-heavy work (a
//! parent spawns children, idle workers take them). A thief waits until a
//! deque has been non-empty for `STEAL_DELAY`, so that an agent that spawns
//! a partner and then blocks keeps the partner on its own worker; a deque of
//! `STEAL_BURST_LEN_MIN` agents or more is a burst and is taken from at once.

pub(crate) mod blocking;
pub(crate) mod containment;
pub(crate) mod directory;
pub(crate) mod idle;
pub(crate) mod live;
pub(crate) mod reclaim;
pub(crate) mod remote_signal;
pub(crate) mod signal;
pub(crate) mod task;
pub(crate) mod watch;
pub(crate) mod watchdog;
pub(crate) mod worker;

pub(crate) use self::task::Task;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam_deque::{Injector, Stealer};

use self::idle::{Idle, Parker};
use self::live::LiveTable;
use self::worker::WorkerContext;
use crate::agent::stack::StackPool;
use crate::agent::AgentCell;
use crate::config::Config;
use crate::registry::Registry;
use crate::sync::lock;
use crate::timer::Timers;

/// What other threads may touch of one worker.
#[derive(Debug)]
pub(crate) struct WorkerShared {
    /// Steals unstarted agents from the worker's deque.
    pub(crate) stealer: Stealer<Task>,
    /// Wakes of agents whose home is this worker, from other threads.
    pub(crate) inbox: Injector<Task>,
    /// The worker's parking spot.
    pub(crate) parker: Parker,
    /// Deadlines armed by agents running on this worker.
    pub(crate) timers: Mutex<Timers>,
    /// Entries in `timers`, written under its lock, read without it so that
    /// a worker with no timers reads neither the clock nor the lock.
    pub(crate) n_timers: std::sync::atomic::AtomicUsize,
    /// When the worker's stealable deque last went from empty to non-empty
    /// (ns since the runtime started); thieves wait `STEAL_DELAY` after it.
    pub(crate) stealable_since_ns: AtomicU64,
    /// Dead agents' cells born here, returned to be freed here.
    pub(crate) returned: reclaim::Returned,
    /// Set if the worker's loop ended on a panic (a broken invariant): its
    /// agents never run again, and shutdown leaks what it cannot unwind.
    pub(crate) died: AtomicBool,
    /// Resumes so far (written by the worker only; read by the watchdog).
    pub(crate) resumes: AtomicU64,
    /// Serial of the agent running now, 0 if none (watchdog.rs).
    pub(crate) running: AtomicU64,
    /// Batches this worker stole from others (written by this worker only;
    /// read by metrics).
    pub(crate) steals: AtomicU64,
    /// Messages sent from this worker, as of its last resume's end (written
    /// by this worker only; read by metrics).
    pub(crate) sent: AtomicU64,
}

/// Everything the workers and the runtime handle share.
#[derive(Debug)]
pub(crate) struct Shared {
    /// This runtime's id, unique in the process (directory.rs); every cell
    /// it spawns carries it.
    pub(crate) id: u64,
    /// Panics of user code on a worker outside any agent (a destructor of a
    /// returned value, a leftover message, a panic payload) that were
    /// caught and logged (containment.rs).
    pub(crate) contained_panics: AtomicU64,
    /// Messages sent from threads that are not workers (metrics).
    pub(crate) sent_outside: AtomicU64,
    /// When a full mailbox was last reported, and how many reports were
    /// held back since (signal.rs `report_full`).
    pub(crate) full_log: Mutex<(Option<std::time::Instant>, u64)>,
    /// The configuration the runtime was built with.
    pub(crate) config: Config,
    /// Agents spawned from outside the runtime.
    pub(crate) injector: Injector<Task>,
    /// Per-worker shared parts, by worker index.
    pub(crate) workers: Box<[WorkerShared]>,
    /// Searching and parked counts.
    pub(crate) idle: Idle,
    /// Set once, when the runtime shuts down.
    pub(crate) shutdown: AtomicBool,
    /// Registered names.
    pub(crate) registry: Registry,
    /// Agents that have not exited.
    pub(crate) live: LiveTable,
    /// Stacks.
    pub(crate) stacks: StackPool,
    /// Threads for blocking work (`Ctx::blocking`).
    pub(crate) blocking: Arc<blocking::BlockingPool>,
    /// Next serial number handed to a spawn outside a worker, or a block of
    /// serials handed to a worker.
    next_serial: AtomicU64,
    /// The runtime's clock: real, or a simulation's (simulation/mod.rs:
    /// then its one worker runs on the simulation's thread). In the place
    /// and size of the real clock's epoch alone (`Instant` has a niche),
    /// so that a real runtime's layout is what it was before simulation.
    clock: Clock,
}

/// Where a runtime's time comes from.
#[derive(Debug)]
pub(crate) enum Clock {
    /// The OS's monotonic clock; the instant the runtime started (the
    /// origin of `clock_ns`).
    Real(std::time::Instant),
    /// The virtual clock of a simulated node.
    Simulated(Arc<crate::simulation::NodeSim>),
}

/// Serial numbers a worker reserves at a time.
pub(crate) const SERIAL_BLOCK_LEN: u64 = 1024;

impl Shared {
    /// Shared state for `stealers.len()` workers.
    pub(crate) fn new(config: Config, stealers: Vec<Stealer<Task>>) -> Shared {
        let workers = stealers
            .into_iter()
            .map(|stealer| WorkerShared {
                stealer,
                inbox: Injector::new(),
                parker: Parker::new(),
                timers: Mutex::new(Timers::default()),
                n_timers: std::sync::atomic::AtomicUsize::new(0),
                stealable_since_ns: AtomicU64::new(0),
                returned: reclaim::Returned::default(),
                died: AtomicBool::new(false),
                resumes: AtomicU64::new(0),
                running: AtomicU64::new(0),
                steals: AtomicU64::new(0),
                sent: AtomicU64::new(0),
            })
            .collect();
        Shared {
            id: directory::next_id(),
            contained_panics: AtomicU64::new(0),
            sent_outside: AtomicU64::new(0),
            full_log: Mutex::new((None, 0)),
            config,
            injector: Injector::new(),
            workers,
            idle: Idle::default(),
            shutdown: AtomicBool::new(false),
            registry: Registry::default(),
            live: LiveTable::new(),
            stacks: StackPool::new(),
            blocking: Arc::new(blocking::BlockingPool::default()),
            next_serial: AtomicU64::new(1),
            clock: Clock::Real(std::time::Instant::now()),
        }
    }

    /// Whether `pid` is an agent of this runtime (directory.rs).
    pub(crate) fn owns(&self, pid: &crate::pid::Pid) -> bool {
        pid.runtime_id() == Some(self.id)
    }

    /// Refuses a pid of another runtime (or node) where only a local agent
    /// makes sense (registering a name).
    pub(crate) fn check_local(&self, pid: &crate::pid::Pid) -> Result<(), crate::error::Error> {
        if self.owns(pid) {
            Ok(())
        } else {
            Err(crate::error::Error::NotLocal(pid.to_string()))
        }
    }

    /// Workers parked now.
    pub(crate) fn parked_workers(&self) -> usize {
        self.workers.iter().filter(|w| w.parker.is_parked()).count()
    }

    /// Nanoseconds since the runtime started (monotonic).
    pub(crate) fn clock_ns(&self) -> u64 {
        match &self.clock {
            Clock::Real(epoch) => epoch.elapsed().as_nanos() as u64,
            Clock::Simulated(sim) => sim.world.now_ns(),
        }
    }

    /// The simulation this runtime is a node of, if it is simulated.
    #[inline]
    pub(crate) fn simulated(&self) -> Option<&Arc<crate::simulation::NodeSim>> {
        match &self.clock {
            Clock::Real(_) => None,
            Clock::Simulated(sim) => Some(sim),
        }
    }

    /// Makes this (not yet shared) runtime a node of a simulation.
    pub(crate) fn simulate(&mut self, sim: Arc<crate::simulation::NodeSim>) {
        self.clock = Clock::Simulated(sim);
    }

    /// The runtime's clock: `Instant::now()`, or the node's virtual clock
    /// under simulation. Every deadline is computed from it.
    #[inline]
    pub(crate) fn now(&self) -> std::time::Instant {
        match &self.clock {
            Clock::Real(_) => std::time::Instant::now(),
            Clock::Simulated(sim) => sim.now(),
        }
    }

    /// `now + delay`, clamped to the timer horizon.
    pub(crate) fn deadline_after(&self, delay: std::time::Duration) -> std::time::Instant {
        let now = self.now();
        let horizon = crate::config::TIMER_HORIZON;
        now.checked_add(delay.min(horizon)).unwrap_or(now + horizon)
    }

    /// Takes `n` fresh serial numbers; returns the first.
    pub(crate) fn reserve_serials(&self, n: u64) -> u64 {
        self.next_serial.fetch_add(n, Ordering::Relaxed)
    }

    /// Makes `cell` runnable after its mailbox or timer changed; `from` is
    /// the worker the caller runs on, if any.
    ///
    /// A cell of another runtime is handed to that runtime (directory.rs):
    /// only its own workers may run it.
    #[inline]
    pub(crate) fn wake(&self, cell: &Arc<AgentCell>, from: Option<&WorkerContext>) {
        if cell.runtime != self.id {
            wake_foreign(cell);
            return;
        }
        if cell.state.transition_to_scheduled() {
            // SAFETY: LIVE-QUEUED step 1: our transition moved the agent out
            // of WAITING, so it is live and not finishing, and this is its
            // one task.
            self.schedule(unsafe { Task::new(cell) }, from);
        }
    }

    /// Puts a `SCHEDULED` agent on the right queue: the caller's LIFO slot
    /// if the agent lives on the caller's worker, its home's inbox if it
    /// lives elsewhere, a stealable deque (or the injector) if it has not
    /// started or may migrate.
    pub(crate) fn schedule(&self, cell: Task, from: Option<&WorkerContext>) {
        // Invariant (a pid's runtime, ARCHITECTURE.md): both callers pass
        // an agent of this runtime — `wake` hands a foreign cell to its own
        // runtime before it gets here, and `spawn_agent` queues the cell it
        // just made here. Checked in debug builds; release builds keep the
        // one compare in `wake`, off this per-wake path.
        debug_assert_eq!(
            cell.runtime, self.id,
            "an agent is queued on its own runtime"
        );
        match (cell.home(), from) {
            (Some(home), Some(worker)) if !cell.migratable && home == worker.index => {
                worker.push_lifo(cell);
            }
            (Some(home), _) if !cell.migratable => {
                let target = &self.workers[home];
                target.inbox.push(cell);
                target.parker.wake_if_parked();
            }
            (_, Some(worker)) => {
                worker.push_stealable(cell);
                self.notify_one(Some(worker.index));
            }
            (_, None) => {
                self.injector.push(cell);
                self.notify_one(None);
            }
        }
    }

    /// Wakes one parked worker other than `except`, if work anyone may take
    /// appeared and no worker is searching.
    pub(crate) fn notify_one(&self, except: Option<usize>) {
        if !self.idle.should_wake_one() {
            return;
        }
        for (index, worker) in self.workers.iter().enumerate() {
            if Some(index) != except && worker.parker.is_parked() {
                worker.parker.unpark();
                return;
            }
        }
    }

    /// Arms a timer on worker `index` and makes sure it sees the deadline.
    pub(crate) fn arm_timer(
        &self,
        index: usize,
        deadline: std::time::Instant,
        action: crate::timer::TimerAction,
        from: Option<&WorkerContext>,
    ) {
        let worker = &self.workers[index];
        let mut timers = lock(&worker.timers);
        timers.insert(deadline, action);
        worker.n_timers.store(timers.len(), Ordering::Release);
        drop(timers);
        if from.map(|w| w.index) != Some(index) {
            self.workers[index].parker.unpark();
        }
    }

    /// Fires the timers of worker `index` that are due, from `from` (its
    /// own worker) or from the watchdog when that worker is busy: a
    /// deadline reaches its agent's queue without waiting for the busy
    /// agent's slice. `due` is scratch space. Returns whether any fired.
    pub(crate) fn fire_due_timers(
        &self,
        index: usize,
        from: Option<&WorkerContext>,
        due: &mut Vec<crate::timer::TimerAction>,
    ) -> bool {
        let worker = &self.workers[index];
        // Acquire pairs with the Release in `arm_timer`.
        if worker.n_timers.load(Ordering::Acquire) == 0 {
            return false;
        }
        let now = self.now();
        {
            let mut timers = lock(&worker.timers);
            match timers.next_deadline() {
                Some(deadline) if deadline <= now => timers.take_due(now, due),
                _ => return false,
            }
            worker.n_timers.store(timers.len(), Ordering::Release);
        }
        let fired = !due.is_empty();
        for action in due.drain(..) {
            match action {
                crate::timer::TimerAction::Wake { cell, seq } => {
                    if cell.timer_seq.load(Ordering::Acquire) == seq {
                        self.wake(&cell, from);
                    }
                }
                crate::timer::TimerAction::Send { to, message } => {
                    self.deliver_message(&to, message, from);
                }
                crate::timer::TimerAction::Interval(mut interval) => {
                    if !interval.live() {
                        continue;
                    }
                    self.deliver_message(&interval.to, (interval.make)(), from);
                    let due = interval.next_due(now);
                    interval.due = due;
                    let mut timers = lock(&worker.timers);
                    timers.insert(due, crate::timer::TimerAction::Interval(interval));
                    worker.n_timers.store(timers.len(), Ordering::Release);
                }
            }
        }
        fired
    }

    /// Wakes every worker (shutdown).
    pub(crate) fn unpark_all(&self) {
        for worker in self.workers.iter() {
            worker.parker.unpark();
        }
    }
}

/// Wakes an agent of another runtime through that runtime, from outside its
/// workers (directory.rs step 2). If that runtime is gone, there is nothing
/// to wake: its shutdown closed every mailbox.
#[cold]
fn wake_foreign(cell: &Arc<AgentCell>) {
    if let Some(owner) = directory::lookup(cell.runtime) {
        owner.wake(cell, None);
    }
}
