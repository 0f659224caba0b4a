//! `Runtime` and its `Builder`: start the workers, run root agents, shut down.
//!
//! # Start
//!
//! 1. Validate the configuration.
//! 2. Read the core ids once, before anything is pinned
//!    (`core_affinity::get_core_ids` reads the *calling thread's* mask,
//!    pitfalls.md §5).
//! 3. Install the stack-overflow handler (once per process).
//! 4. Create every worker's deque, the shared state, then the threads; each
//!    pins itself (or logs once that it could not) and enters its loop.
//!
//! # Shutdown (on `shutdown` or drop)
//!
//! 1. Set `shutdown` and unpark every worker.
//! 2. Each worker finishes the agent it is running, meets the others at a
//!    barrier, unwinds the started agents whose home it is (their destructors
//!    run on that worker), meets them again, returns its stack cache and
//!    exits (worker.rs "Shutdown").
//! 3. Join every thread.
//! 4. Empty the live table, queues, timers and registry here: only unstarted
//!    agents (plain closures) and handles remain, dropped on this thread.
//! 5. The last reference to the shared state goes; the stack pool unmaps its
//!    slabs. No coroutine exists any more, so no stack is in use.

use std::any::Any;
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_deque::Worker;

use crate::agent::overflow;
use crate::agent::stack::StackPoolStats;
use crate::agent::Stage;
use crate::config::{Config, WORKERS_MAX};
use crate::context::{agent_body, root_body, Ctx};
use crate::error::Error;
use crate::exit::{ExitReason, ExitStatus};
use crate::introspection::{live_agents, AgentStats, AgentTree};
use crate::message::Message;
use crate::pid::Pid;
use crate::scheduler::signal::Fired;
use crate::scheduler::worker::WorkerContext;
use crate::scheduler::{directory, Shared};
use crate::spawn::{mailbox_len, spawn_agent, stack_size, SpawnOptions};
use crate::sync::lock;
use crate::timer::TimerAction;

/// Configures and builds a [`Runtime`].
///
/// ```
/// let rt = erlangen_runtime::Runtime::builder()
///     .workers(2)
///     .stack_size(128 * 1024)
///     .mailbox_len(256)
///     .build()
///     .unwrap();
/// assert_eq!(rt.workers(), 2);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Builder {
    /// What to build.
    config: Config,
}

impl Builder {
    /// Number of worker threads (default: one per core; 1 works).
    pub fn workers(mut self, n: usize) -> Builder {
        self.config.workers = n;
        self
    }

    /// Records the spans of traced messages in `sink` (trace.rs; default:
    /// none — traces pass through this runtime unrecorded).
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use erlangen_runtime::{SpanRecord, SpanSink};
    /// #[derive(Default)]
    /// struct Keep(Mutex<Vec<SpanRecord>>);
    /// impl SpanSink for Keep {
    ///     fn record(&self, span: SpanRecord) { self.0.lock().unwrap().push(span); }
    /// }
    /// let kept = Arc::new(Keep::default());
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).span_sink(kept.clone()).build().unwrap();
    /// rt.run(|ctx| { ctx.start_trace("hello"); }).unwrap();
    /// assert_eq!(kept.0.lock().unwrap()[0].name, "hello");
    /// ```
    pub fn span_sink(mut self, sink: std::sync::Arc<dyn crate::SpanSink>) -> Builder {
        self.config.span_sink = Some(crate::trace::SinkRef(sink));
        self
    }

    /// Whether to pin each worker to a core (default: yes).
    pub fn pin_workers(mut self, pin: bool) -> Builder {
        self.config.pin_workers = pin;
        self
    }

    /// Default usable stack size of agents, in bytes (default 64 KiB).
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.config.stack_size_bytes = bytes;
        self
    }

    /// Default data-lane capacity of agents (default 64).
    pub fn mailbox_len(mut self, len: usize) -> Builder {
        self.config.mailbox_len = len;
        self
    }

    /// How long an idle worker searches for work before parking.
    pub fn spin_before_park(mut self, spin: Duration) -> Builder {
        self.config.spin_before_park = spin;
        self
    }

    /// How long an agent may hold its worker without a runtime call before
    /// the watchdog names it in a warning (default 100 ms; at least 10 ms).
    pub fn watchdog_threshold(mut self, threshold: Duration) -> Builder {
        self.config.watchdog_threshold = threshold;
        self
    }

    /// The configuration, checked.
    fn checked_config(self) -> Result<Config, Error> {
        let mut config = self.config;
        if config.workers == 0 || config.workers > WORKERS_MAX {
            return Err(Error::InvalidConfig(format!(
                "{} workers is outside 1..={WORKERS_MAX}",
                config.workers
            )));
        }
        if config.watchdog_threshold < crate::config::WATCHDOG_TICK {
            return Err(Error::InvalidConfig(format!(
                "a watchdog threshold of {:?} is below its {:?} tick",
                config.watchdog_threshold,
                crate::config::WATCHDOG_TICK
            )));
        }
        config.mailbox_len = mailbox_len(config.mailbox_len)?;
        config.stack_size_bytes = stack_size(config.stack_size_bytes)?;
        Ok(config)
    }

    /// A runtime that is node `sim.index` of a simulation: one worker,
    /// whose context the simulation keeps and runs on its own thread; no
    /// threads, no watchdog (simulation/mod.rs).
    pub(crate) fn build_simulated(
        mut self,
        sim: Arc<crate::simulation::NodeSim>,
    ) -> Result<(Runtime, WorkerContext), Error> {
        self.config.workers = 1;
        self.config.pin_workers = false;
        let config = self.checked_config()?;
        overflow::install();
        overflow::ensure_alt_stack();
        crate::agent::panic_report::install();
        let deque = Worker::new_lifo();
        let mut shared = Shared::new(config, vec![deque.stealer()]);
        shared.simulate(sim);
        let shared = Arc::new(shared);
        directory::insert(&shared);
        let worker = WorkerContext::new(0, shared.clone(), deque);
        let runtime = Runtime {
            shared,
            threads: Vec::new(),
            watchdog: None,
        };
        Ok((runtime, worker))
    }

    /// Starts the runtime.
    pub fn build(self) -> Result<Runtime, Error> {
        let config = self.checked_config()?;
        let cores = if config.pin_workers {
            core_affinity::get_core_ids().unwrap_or_default()
        } else {
            Vec::new()
        };
        overflow::install();
        crate::agent::panic_report::install();
        let deques: Vec<Worker<crate::scheduler::Task>> =
            (0..config.workers).map(|_| Worker::new_lifo()).collect();
        let stealers = deques.iter().map(Worker::stealer).collect();
        let shared = Arc::new(Shared::new(config, stealers));
        let barrier = Arc::new(Barrier::new(shared.workers.len()));
        let mut threads = Vec::with_capacity(deques.len());
        let mut gates = Vec::with_capacity(deques.len());
        for (index, deque) in deques.into_iter().enumerate() {
            let worker_shared = shared.clone();
            let core = (!cores.is_empty()).then(|| cores[index % cores.len()]);
            // Each thread waits at its gate until every worker exists: a
            // failed spawn must not leave the others waiting at a barrier
            // sized for threads that were never born.
            let (gate, gate_rx) = std::sync::mpsc::channel::<Option<Arc<Barrier>>>();
            let thread = std::thread::Builder::new()
                .name(format!("erlangen-worker-{index}"))
                .spawn(move || {
                    let Ok(Some(barrier)) = gate_rx.recv() else {
                        return;
                    };
                    pin(core, index);
                    WorkerContext::new(index, worker_shared, deque).run(&barrier);
                });
            match thread {
                Ok(thread) => {
                    threads.push(thread);
                    gates.push(gate);
                }
                Err(error) => {
                    for gate in gates {
                        let _ = gate.send(None);
                    }
                    for thread in threads {
                        let _ = thread.join();
                    }
                    return Err(Error::System(format!(
                        "cannot start a worker thread: {error}"
                    )));
                }
            }
        }
        for gate in gates {
            let _ = gate.send(Some(barrier.clone()));
        }
        directory::insert(&shared);
        let watched = shared.clone();
        let watchdog = std::thread::Builder::new()
            .name("erlangen-watchdog".to_owned())
            .spawn(move || crate::scheduler::watchdog::run(watched))
            .ok();
        Ok(Runtime {
            shared,
            threads,
            watchdog,
        })
    }
}

/// Where a root agent leaves its result for the thread blocked in `run`.
/// The result, and whether the agent's exit is complete.
type ResultSlot<R> = (Mutex<(Option<Result<R, ExitReason>>, bool)>, Condvar);

/// A root agent (`Runtime::run`, `Simulation::block_on`): its result, once
/// its exit is complete (links fired, names released), so that what the
/// caller sees next is settled.
pub(crate) struct Root<R> {
    slot: Arc<ResultSlot<R>>,
}

/// Spawns `f` as a root agent of `shared` from outside the runtime.
pub(crate) fn spawn_root<F, R>(shared: &Shared, f: F) -> Result<Root<R>, ExitReason>
where
    F: FnOnce(&mut Ctx) -> R + Send + 'static,
    R: Send + 'static,
{
    let slot: Arc<ResultSlot<R>> = Arc::new((Mutex::new((None, false)), Condvar::new()));
    let report_slot = slot.clone();
    let report = Box::new(move |result: Result<R, ExitReason>| {
        lock(&report_slot.0).0 = Some(result);
    });
    let pid = spawn_agent(
        shared,
        None,
        &SpawnOptions::default(),
        root_body(f, report),
        None,
    )
    .map_err(|error| ExitReason::other(&error.to_string()))?;
    let finished_slot = slot.clone();
    let hook: crate::links::ExitHook = Box::new(move || {
        lock(&finished_slot.0).1 = true;
        finished_slot.1.notify_all();
    });
    {
        let mut links = lock(&pid.local_cell().links);
        if links.dead {
            drop(links);
            hook();
        } else {
            links.on_exit = Some(hook);
        }
    }
    Ok(Root { slot })
}

impl<R> Root<R> {
    /// Whether the root's exit is complete.
    pub(crate) fn finished(&self) -> bool {
        lock(&self.slot.0).1
    }

    /// The result of a finished root (`SystemLimit` if its body never ran:
    /// no stack could be had for it); `None` while it runs.
    pub(crate) fn result(&self) -> Option<Result<R, ExitReason>> {
        let mut guard = lock(&self.slot.0);
        guard
            .1
            .then(|| guard.0.take().unwrap_or(Err(ExitReason::SystemLimit)))
    }

    /// Blocks the calling thread until the root finished; its result.
    fn wait(self) -> Result<R, ExitReason> {
        let mut guard = lock(&self.slot.0);
        while !guard.1 {
            guard = self.slot.1.wait(guard).unwrap_or_else(|e| e.into_inner());
        }
        guard.0.take().unwrap_or(Err(ExitReason::SystemLimit))
    }
}

/// Pins the calling worker to `core`; logs once per process if refused.
fn pin(core: Option<core_affinity::CoreId>, index: usize) {
    static REFUSED: std::sync::Once = std::sync::Once::new();
    if let Some(core) = core {
        if !core_affinity::set_for_current(core) {
            REFUSED.call_once(|| {
                tracing::warn!(
                    worker = index,
                    "erlangen: pinning refused; running unpinned"
                );
            });
        }
    }
}

/// A running node-local runtime: pinned workers running agents.
///
/// Dropping it shuts it down: every agent still alive is unwound, every
/// stack freed, every thread joined.
///
/// ```
/// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
/// let sum = rt.run(|ctx| {
///     let me = ctx.pid();
///     for i in 0..10u64 {
///         let me = me.clone();
///         ctx.spawn(move |ctx| ctx.send(&me, i));
///     }
///     (0..10).map(|_| ctx.receive().downcast::<u64>().unwrap()).sum::<u64>()
/// });
/// assert_eq!(sum.unwrap(), 45);
/// ```
pub struct Runtime {
    /// State shared with the workers.
    shared: Arc<Shared>,
    /// The worker threads.
    threads: Vec<JoinHandle<()>>,
    /// The watchdog thread (scheduler/watchdog.rs), if it could start.
    watchdog: Option<JoinHandle<()>>,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("workers", &self.threads.len())
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// A builder with the defaults.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// assert_eq!(rt.workers(), 1);
    /// ```
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// A runtime with the defaults: one pinned worker per core.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let default = Runtime::new().unwrap();
    /// assert!(default.workers() >= 1);
    /// ```
    pub fn new() -> Result<Runtime, Error> {
        Builder::default().build()
    }

    /// The shared state (the simulation drives a simulated runtime's worker
    /// through it).
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// A cloneable handle for threads that serve this runtime from outside
    /// (the nodes layer).
    ///
    /// # Example
    ///
    /// ```
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// assert!(!rt.handle().is_shut_down());
    /// ```
    pub fn handle(&self) -> crate::handle::RuntimeHandle {
        crate::handle::RuntimeHandle {
            shared: self.shared.clone(),
        }
    }

    /// Number of worker threads.
    pub fn workers(&self) -> usize {
        self.shared.workers.len()
    }

    /// Runs `f` as a new root agent and blocks the calling thread until it
    /// ends: its return value, or the reason it exited. Each call gets an
    /// agent of its own, so plain threads never share a mailbox (Erlangen
    /// bug 11). Must not be called from inside an agent (it would block a
    /// worker); use `spawn_with` and a monitor there.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// assert_eq!(rt.run(|_| "hello").unwrap(), "hello");
    /// assert!(matches!(rt.run(|_| -> u8 { panic!("oops") }), Err(ExitReason::Panic(_))));
    /// ```
    pub fn run<F, R>(&self, f: F) -> Result<R, ExitReason>
    where
        F: FnOnce(&mut Ctx) -> R + Send + 'static,
        R: Send + 'static,
    {
        spawn_root(&self.shared, f)?.wait()
    }

    /// Spawns an agent from outside the runtime.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let pid = rt.spawn(|ctx| ctx.receive().downcast::<u8>().unwrap());
    /// rt.send(&pid, 1u8);
    /// ```
    pub fn spawn<F, R>(&self, f: F) -> Pid
    where
        F: FnOnce(&mut Ctx) -> R + Send + 'static,
        R: Any + Send + Sync + fmt::Debug,
    {
        spawn_agent(
            &self.shared,
            None,
            &SpawnOptions::default(),
            agent_body(f),
            None,
        )
        .expect("default spawn options are valid")
    }

    /// Spawns an agent with options from outside the runtime (attaching needs
    /// a calling agent and is refused here).
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// assert!(rt.spawn_with(SpawnOptions::new().mailbox_len(0), |_| ()).is_err());
    /// assert!(rt.spawn_with(SpawnOptions::new().monitor(), |_| ()).is_err()); // no caller to attach
    /// assert!(rt.spawn_with(SpawnOptions::new().mailbox_len(8), |_| ()).is_ok());
    /// ```
    pub fn spawn_with<F, R>(&self, options: SpawnOptions, f: F) -> Result<Pid, Error>
    where
        F: FnOnce(&mut Ctx) -> R + Send + 'static,
        R: Any + Send + Sync + fmt::Debug,
    {
        spawn_agent(&self.shared, None, &options, agent_body(f), None)
    }

    /// Sends from outside the runtime. Never blocks; a full mailbox or dead
    /// agent drops and counts the message.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let pid = rt.spawn(|ctx| { ctx.receive(); });
    /// rt.send(&pid, "from main");
    /// ```
    pub fn send<M: Any + Send>(&self, to: &Pid, message: M) {
        self.shared.deliver_message(to, Message::new(message), None);
    }

    /// Sends to the agent registered as `name`.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// assert_eq!(rt.send_named("nobody", 1u8), Err(Error::NoSuchName("nobody".into())));
    /// ```
    pub fn send_named<M: Any + Send>(&self, name: &str, message: M) -> Result<(), Error> {
        let to = self
            .shared
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
    /// let pid = rt.spawn(|ctx| { ctx.receive(); });
    /// rt.send_after(&pid, (), Duration::from_millis(1));
    /// ```
    pub fn send_after<M: Any + Send>(&self, to: &Pid, message: M, delay: Duration) {
        let action = TimerAction::Send {
            to: to.clone(),
            message: Message::new(message),
        };
        self.shared
            .arm_timer(0, self.shared.deadline_after(delay), action, None);
    }

    /// Sends `to` an exit signal (see [`Ctx::kill`]).
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let pid = rt.spawn(|ctx| { ctx.receive(); });
    /// rt.kill(&pid, ExitReason::Kill);
    /// ```
    pub fn kill(&self, to: &Pid, reason: ExitReason) {
        self.shared.deliver_exit(to, reason, None);
    }

    /// Registers `pid` as `name`.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let pid = rt.spawn(|ctx| { ctx.receive(); });
    /// rt.register("worker", &pid).unwrap();
    /// assert_eq!(rt.register("worker", &pid), Err(Error::NameTaken("worker".into())));
    /// rt.kill(&pid, ExitReason::Kill);
    /// ```
    pub fn register(&self, name: &str, pid: &Pid) -> Result<(), Error> {
        self.shared.check_local(pid)?;
        self.shared.registry.register(name, pid)
    }

    /// Removes `name`.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// assert!(rt.unregister("absent").is_err());
    /// ```
    pub fn unregister(&self, name: &str) -> Result<(), Error> {
        self.shared.registry.unregister(name)
    }

    /// The agent registered as `name`.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// assert_eq!(rt.whereis("absent"), None);
    /// ```
    pub fn whereis(&self, name: &str) -> Option<Pid> {
        self.shared.registry.lookup(name)
    }

    /// Every registered name, sorted.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// assert!(rt.registered().is_empty());
    /// ```
    pub fn registered(&self) -> Vec<String> {
        self.shared.registry.names()
    }

    /// Counters and times of `pid`.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let pid = rt.spawn(|_| ());
    /// assert_eq!(rt.stats(&pid).dropped, 0);
    /// ```
    pub fn stats(&self, pid: &Pid) -> AgentStats {
        AgentStats::of(pid)
    }

    /// The agent tree rooted at `pid`.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let pid = rt.spawn(|ctx| { ctx.receive(); });
    /// assert!(rt.agent_tree(&pid).monitored.is_empty());
    /// rt.kill(&pid, ExitReason::Kill);
    /// ```
    pub fn agent_tree(&self, pid: &Pid) -> AgentTree {
        AgentTree::of(pid)
    }

    /// Every live agent.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let pid = rt.spawn(|ctx| { ctx.receive(); });
    /// assert!(rt.agents().contains(&pid));
    /// rt.kill(&pid, ExitReason::Kill);
    /// ```
    pub fn agents(&self) -> Vec<Pid> {
        live_agents(&self.shared)
    }

    /// One page of the live agents, sorted and filtered as `query` says
    /// (agent_list.rs; what `erlangen-top` lists). The walk takes each
    /// live-table shard's lock for one chunk of slots at a time; from an
    /// agent, [`Ctx::agents_page`](crate::Ctx::agents_page) also yields
    /// between chunks.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let busy = rt.spawn(|ctx| ctx.sleep(std::time::Duration::from_secs(60)));
    /// rt.send(&busy, 1u8);
    /// let page = rt.agents_page(&AgentQuery::new().order(AgentOrder::Mailbox).limit(1));
    /// assert_eq!((page.agents[0].pid.clone(), page.agents[0].queued), (busy.clone(), 1));
    /// rt.kill(&busy, ExitReason::Kill);
    /// ```
    pub fn agents_page(&self, query: &crate::AgentQuery) -> crate::AgentPage {
        crate::agent_list::agents_page(&self.shared, query, || {})
    }

    /// Number of live agents.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// assert_eq!(rt.agent_count(), 0);
    /// ```
    pub fn agent_count(&self) -> usize {
        self.shared.live.len()
    }

    /// How many panics of user code running on a worker outside any agent
    /// were caught and logged: a destructor of a value an agent returned, of
    /// a message left in a dead agent's mailbox or refused by a full one, of
    /// a panic payload. Such a panic never ends a worker.
    ///
    /// # Example
    ///
    /// ```
    /// #[derive(Debug)]
    /// struct Bomb;
    /// impl Drop for Bomb {
    ///     fn drop(&mut self) {
    ///         panic!("boom");
    ///     }
    /// }
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// rt.spawn(|_| Bomb); // nobody takes the value: the worker drops it
    /// while rt.contained_panics() == 0 {
    ///     std::thread::yield_now();
    /// }
    /// assert_eq!(rt.run(|_| 7).unwrap(), 7); // the worker lives on
    /// ```
    pub fn contained_panics(&self) -> u64 {
        self.shared.contained_panics.load(Ordering::Relaxed)
    }

    /// Counters of the stack pool.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// rt.run(|_| ()).unwrap();
    /// assert!(rt.stack_pool_stats().slots_carved >= 1);
    /// ```
    pub fn stack_pool_stats(&self) -> StackPoolStats {
        self.shared.stacks.stats()
    }

    /// How many workers are parked (asleep, using no CPU) right now. An idle
    /// runtime parks every worker after a short search.
    ///
    /// # Example
    ///
    /// ```
    /// let rt = erlangen_runtime::Runtime::builder().workers(2).build().unwrap();
    /// assert!(rt.parked_workers() <= 2);
    /// ```
    pub fn parked_workers(&self) -> usize {
        self.shared.parked_workers()
    }

    /// Counters and gauges of this runtime, for metrics ([`RuntimeMetrics`](crate::RuntimeMetrics)).
    pub fn metrics(&self) -> crate::RuntimeMetrics {
        crate::introspection::metrics(&self.shared, || {})
    }

    /// A snapshot of scheduler state, for diagnosing a hang.
    #[doc(hidden)]
    pub fn debug_state(&self) -> String {
        let mut out = String::new();
        for (i, w) in self.shared.workers.iter().enumerate() {
            out += &format!(
                "worker {i}: parked={} inbox_empty={} stealer_empty={}\n",
                w.parker.is_parked(),
                w.inbox.is_empty(),
                w.stealer.is_empty()
            );
        }
        out += &format!(
            "idle: searching={} parked={}\n",
            self.shared.idle.n_searching.load(Ordering::SeqCst),
            self.shared.idle.n_parked.load(Ordering::SeqCst)
        );
        for cell in self.shared.live.snapshot() {
            out += &format!(
                "agent {:x}: state={} home={:?} queued={} received={} dropped={}\n",
                cell.serial,
                cell.state.debug_word(),
                cell.home(),
                cell.mailbox.len(),
                cell.mailbox.received(),
                cell.mailbox.dropped()
            );
        }
        out
    }

    /// Shuts down (see the module docs); the same as dropping it.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let pid = rt.spawn(|ctx| { ctx.receive(); });
    /// rt.shutdown(); // the waiting agent is unwound, its stack freed
    /// let _ = pid;
    /// ```
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        directory::remove(self.shared.id);
        self.shared.blocking.shut_down();
        self.shared.shutdown.store(true, Ordering::SeqCst);
        self.shared.unpark_all();
        let mut worker_panicked = false;
        for thread in self.threads.drain(..) {
            worker_panicked |= thread.join().is_err();
        }
        if let Some(watchdog) = self.watchdog.take() {
            watchdog.thread().unpark();
            let _ = watchdog.join();
        }
        if worker_panicked {
            tracing::error!("erlangen: a worker thread ended on a panic; its agents are leaked");
        }
        for cell in self.shared.live.drain() {
            self.bury(&cell);
        }
        while !self.shared.injector.is_empty() {
            let _ = self.shared.injector.steal();
        }
        for worker in self.shared.workers.iter() {
            while !worker.inbox.is_empty() {
                let _ = worker.inbox.steal();
            }
            let timers = lock(&worker.timers).clear();
            self.shared.drop_each(timers, 0);
        }
        self.shared.registry.clear();
    }
}

impl Runtime {
    /// Shutdown step 4 for one agent that was alive: frees what it holds on
    /// this thread and tells its peers on other runtimes that it is gone.
    fn bury(&self, cell: &Arc<crate::agent::AgentCell>) {
        // SAFETY: BODY-OWNER, shutdown clause: every worker has exited,
        // so no thread runs or touches agents; we are the only one.
        let stage = unsafe { cell.stage() };
        match std::mem::replace(stage, Stage::Finished) {
            // Its home worker died before it could unwind it. Unwinding it
            // here would run its frames on a thread they never ran on, with
            // a `Ctx` that points at the dead worker: leak it instead (its
            // stack goes with the slabs, its destructors never run).
            Stage::Started(coroutine) => std::mem::forget(coroutine),
            unstarted_or_finished => self
                .shared
                .drop_contained(unstarted_or_finished, cell.serial),
        }
        cell.state.transition_to_done();
        // Queued messages and link lists may hold handles that form cycles;
        // drop them so every cell is freed.
        self.shared
            .drop_leftovers(cell.mailbox.close(), cell.serial);
        let farewell = {
            let mut links = lock(&cell.links);
            if links.dead {
                return;
            }
            links.take_for_exit()
        };
        let me = Pid::from_cell(cell.clone());
        let gone = ExitReason::NoConnection;
        for peer in farewell.kill.iter().filter(|peer| !self.shared.owns(peer)) {
            let fired = Fired::Exit(gone.clone());
            self.shared.fire_edge(&me, peer, fired, None);
        }
        for peer in farewell
            .notify
            .iter()
            .filter(|peer| !self.shared.owns(peer))
        {
            let fired = Fired::Down(ExitStatus::Exit(gone.clone()));
            self.shared.fire_edge(&me, peer, fired, None);
        }
        if let Some(hook) = farewell.on_exit {
            hook();
        }
    }
}
