//! Deterministic simulation: every agent of every simulated node runs on
//! the calling thread, the next one to run is drawn from a seed, and time
//! is virtual, so a seed names one run and replays it bit for bit.
//!
//! # What is simulated
//!
//! * **Scheduling.** Each node is a runtime with one worker whose context
//!   the [`Simulation`] keeps (`Builder::build_simulated`); no worker
//!   thread exists. At each step the simulation collects every agent any
//!   node could run now and picks one with its seeded generator (not
//!   FIFO), so two seeds explore two interleavings.
//! * **Time.** `Ctx::sleep`, receive timeouts, `send_after`,
//!   `send_interval`, supervisors' restart windows and [`Ctx::now`] read the
//!   node's virtual clock (`Shared::now`). A resume costs a drawn number
//!   of virtual ns; when nothing can run, the clock jumps to the next
//!   deadline (a timer, or a timed action such as a network delivery), so
//!   an hour of timeouts runs in milliseconds. Each node's clock may run
//!   fast or slow ([`Simulation::set_clock_drift`]).
//! * **Blocking work.** `Ctx::blocking` runs its job inline.
//!
//! Agent code is the same code as on a real runtime: a simulation is a
//! different builder, not a different API (`Ctx` is the same type). A real
//! runtime pays nothing for it: `Shared::simulated` is read where a
//! deadline is computed and where an agent is spawned or exits, never on
//! the send and receive paths (a simulated agent's sends go through the
//! slow path that `Ctx::hints` already selects, where they are recorded).
//!
//! # A step (`Simulation::step`)
//!
//! 1. Run the timed actions that are due (deliveries of a simulated
//!    network, scripted faults), in due-time then set order.
//! 2. On every node that is up, fire the timers due by its clock and move
//!    every agent it could run into the node's ready list.
//! 3. If any agent is ready, draw one uniformly among all nodes' ready
//!    agents, record `Run`, resume it for one slice, record `Receive` with
//!    the messages it took (its mailbox counts them), and advance the
//!    clock by a drawn resume cost.
//! 4. Otherwise jump the clock to the earliest deadline of any node or
//!    action, recording `Advance`; with none, the simulation is quiet.
//!
//! # Replay
//!
//! Everything above draws from one `SimRng` seeded with the seed, and
//! every choice and delivery is recorded as a [`SimEvent`] into an FNV
//! hash ([`Simulation::trace_hash`]), echoed to stderr when tracing is on.
//! Serials are assigned on the one thread in order, so an agent has the
//! same serial in every replay. What a simulation cannot make
//! deterministic: agent code that reads the real clock, spawns threads, or
//! iterates a randomly seeded hash map.

mod clock;
mod events;
mod harness;
mod seed;
mod world;

use std::any::Any;
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

pub use self::events::SimEvent;
pub use self::harness::{check, check_with, CheckReport, Simulated};
pub(crate) use self::world::NodeSim;
pub use self::world::SimHandle;

use self::clock::NodeClock;
use self::world::World;
use crate::config::{SIM_RESUME_COST_NS_MAX, SIM_RESUME_COST_NS_MIN, SIM_STEPS_MAX_DEFAULT};
use crate::context::{agent_body, Ctx};
use crate::error::Error;
use crate::exit::ExitReason;
use crate::handle::RuntimeHandle;
use crate::pid::Pid;
use crate::runtime::{spawn_root, Builder, Runtime};
use crate::scheduler::worker::WorkerContext;
use crate::scheduler::Task;
use crate::spawn::{spawn_agent, SpawnOptions};
use crate::sync::lock;

/// A node of a simulation, by the order it was added (0, 1, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(u32);

impl NodeId {
    /// The node's index.
    pub fn index(self) -> u32 {
        self.0
    }
}

/// A node that is up: its runtime and its one worker.
struct Running {
    worker: WorkerContext,
    runtime: Runtime,
}

/// One simulated node.
struct SimNode {
    name: String,
    sim: Arc<NodeSim>,
    /// `None` while the node is down (crashed).
    up: Option<Running>,
    /// Agents it could run now, collected at step 2.
    ready: Vec<Task>,
    /// How the node's runtime is built (kept for a restart).
    builder: Builder,
}

/// Why a simulation stopped running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stopped {
    /// Nothing can run and no deadline is left.
    Quiet,
    /// The virtual time limit was reached.
    TimeLimit,
    /// One run call made as many resumes as its step limit allows
    /// ([`Simulation::set_step_limit`]): an agent may never stop running.
    StepLimit,
    /// The caller's condition held.
    Condition,
}

/// What [`Simulation::block_on`] gives when the agent does not return.
#[derive(Clone, Debug)]
pub enum SimError {
    /// The agent exited without returning.
    Exited(ExitReason),
    /// The simulation stopped first (went quiet: a deadlock, or waiting
    /// for a message that can never come; or reached its time limit).
    Stopped(Stopped),
    /// The node is down (crashed and not restarted).
    NodeDown(NodeId),
    /// No node of this simulation has that id.
    NoSuchNode(NodeId),
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::Exited(reason) => write!(f, "the agent exited: {reason:?}"),
            SimError::Stopped(why) => write!(f, "the simulation stopped first: {why:?}"),
            SimError::NodeDown(node) => write!(f, "simulated node {} is down", node.0),
            SimError::NoSuchNode(node) => write!(f, "no simulated node {}", node.0),
        }
    }
}

impl std::error::Error for SimError {}

/// A deterministic simulation of one or more nodes (module docs).
///
/// ```
/// use erlangen_runtime::simulation::Simulation;
/// use std::time::Duration;
/// let mut sim = Simulation::new(42);
/// let node = sim.add_node("a").unwrap();
/// // An hour of virtual time passes at once: nothing else can run.
/// let slept = sim
///     .block_on(node, |ctx| {
///         let start = ctx.now();
///         ctx.sleep(Duration::from_secs(3600));
///         ctx.now() - start
///     })
///     .unwrap();
/// assert!(slept >= Duration::from_secs(3600));
/// assert!(sim.now() >= Duration::from_secs(3600));
/// ```
pub struct Simulation {
    seed: u64,
    world: Arc<World>,
    nodes: Vec<SimNode>,
    steps: u64,
    /// Stop at this virtual time (ns), if set.
    limit_ns: Option<u64>,
    /// Resumes one run call may make.
    step_limit: Option<u64>,
}

impl fmt::Debug for Simulation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulation")
            .field("seed", &self.seed)
            .field("now", &self.now())
            .field("nodes", &self.nodes.len())
            .field("steps", &self.steps)
            .finish_non_exhaustive()
    }
}

impl Simulation {
    /// An empty simulation drawing every choice from `seed`. Its events
    /// are echoed to stderr if `ERLANGEN_SIM_TRACE` is set (to anything
    /// but `0`).
    pub fn new(seed: u64) -> Simulation {
        let echo = std::env::var_os("ERLANGEN_SIM_TRACE").is_some_and(|v| v != "0");
        Simulation {
            seed,
            world: Arc::new(World::new(seed, echo)),
            nodes: Vec::new(),
            steps: 0,
            limit_ns: None,
            step_limit: Some(SIM_STEPS_MAX_DEFAULT),
        }
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Echoes every event to stderr from now on (or stops).
    pub fn set_trace(&mut self, on: bool) {
        self.world.log(|log| log.set_echo(on));
    }

    /// A handle on the simulation's clock, generator, log and timed
    /// actions (for a simulated network).
    pub fn handle(&self) -> SimHandle {
        SimHandle {
            world: self.world.clone(),
        }
    }

    /// Adds a node with the default runtime configuration.
    pub fn add_node(&mut self, name: &str) -> Result<NodeId, Error> {
        self.add_node_with(name, Runtime::builder())
    }

    /// Adds a node whose runtime is configured by `builder` (mailbox
    /// length, stack size; it always has one worker, driven by the
    /// simulation).
    pub fn add_node_with(&mut self, name: &str, builder: Builder) -> Result<NodeId, Error> {
        let index = u32::try_from(self.nodes.len())
            .map_err(|_| Error::InvalidConfig("too many simulated nodes".to_owned()))?;
        let sim = Arc::new(NodeSim {
            world: self.world.clone(),
            index,
            clock: NodeClock::new(self.world.base, self.world.now_ns()),
        });
        let (runtime, worker) = builder.clone().build_simulated(sim.clone())?;
        self.nodes.push(SimNode {
            name: name.to_owned(),
            sim,
            up: Some(Running { worker, runtime }),
            ready: Vec::new(),
            builder,
        });
        Ok(NodeId(index))
    }

    /// A node's name (`None` for a node of another simulation).
    pub fn name(&self, node: NodeId) -> Option<&str> {
        self.node(node).map(|n| n.name.as_str())
    }

    /// The nodes, in the order they were added.
    pub fn nodes(&self) -> Vec<NodeId> {
        (0..self.nodes.len() as u32).map(NodeId).collect()
    }

    fn node(&self, node: NodeId) -> Option<&SimNode> {
        self.nodes.get(node.0 as usize)
    }

    /// The node's runtime, if it is up.
    fn running(&self, node: NodeId) -> Option<&Running> {
        self.node(node)?.up.as_ref()
    }

    /// The node's runtime, or why there is none.
    fn up(&self, node: NodeId) -> Result<&Running, SimError> {
        match self.node(node) {
            None => Err(SimError::NoSuchNode(node)),
            Some(slot) => slot.up.as_ref().ok_or(SimError::NodeDown(node)),
        }
    }

    /// A handle on the node's runtime (send, kill, whereis, metrics),
    /// `None` while it is down.
    pub fn runtime(&self, node: NodeId) -> Option<RuntimeHandle> {
        self.running(node).map(|r| r.runtime.handle())
    }

    /// Whether the node is up.
    pub fn is_up(&self, node: NodeId) -> bool {
        self.running(node).is_some()
    }

    /// Spawns an agent running `f` on `node` (it runs when the simulation
    /// runs); an error if the node is down or of another simulation.
    pub fn spawn<F, R>(&mut self, node: NodeId, f: F) -> Result<Pid, SimError>
    where
        F: FnOnce(&mut Ctx) -> R + Send + 'static,
        R: Any + Send + Sync + fmt::Debug,
    {
        let running = self.up(node)?;
        Ok(spawn_agent(
            running.runtime.shared(),
            None,
            &SpawnOptions::default(),
            agent_body(f),
            None,
        )
        .expect("default spawn options are valid"))
    }

    /// Spawns an agent running `f` on `node` and runs the simulation until
    /// it has exited (its links fired): its return value, or why there is
    /// none (an error also if the node is down or of another simulation).
    pub fn block_on<F, R>(&mut self, node: NodeId, f: F) -> Result<R, SimError>
    where
        F: FnOnce(&mut Ctx) -> R + Send + 'static,
        R: Send + 'static,
    {
        let root = spawn_root(self.up(node)?.runtime.shared(), f).map_err(SimError::Exited)?;
        let stopped = self.run_until(|_| root.finished());
        match root.result() {
            Some(result) => result.map_err(SimError::Exited),
            None => Err(SimError::Stopped(stopped)),
        }
    }

    /// Virtual time since the simulation began.
    pub fn now(&self) -> Duration {
        Duration::from_nanos(self.world.now_ns())
    }

    /// Resumes so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The hash of every event so far: equal for two runs of the same
    /// seed and configuration.
    pub fn trace_hash(&self) -> u64 {
        self.world.log(|log| log.hash())
    }

    /// Events recorded so far.
    pub fn events(&self) -> u64 {
        self.world.log(|log| log.events())
    }

    /// Stops every run call at virtual time `limit` from the start (it
    /// returns `Stopped::TimeLimit`); `None` lifts the limit.
    pub fn set_time_limit(&mut self, limit: Option<Duration>) {
        self.limit_ns = limit.map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Stops each run call after `limit` resumes (`Stopped::StepLimit`);
    /// `None` lifts the limit. The default (100 million, minutes of wall
    /// time) guards against an agent that never stops running.
    pub fn set_step_limit(&mut self, limit: Option<u64>) {
        self.step_limit = limit;
    }

    /// From now on, `node`'s clock runs `drift_ppm` parts per million fast
    /// (slow if negative): its timers fire early or late against the
    /// others'.
    pub fn set_clock_drift(&mut self, node: NodeId, drift_ppm: i64) -> Result<(), SimError> {
        let sim = self
            .node(node)
            .ok_or(SimError::NoSuchNode(node))?
            .sim
            .clone();
        sim.clock.set_drift(self.world.now_ns(), drift_ppm);
        self.world.record(&SimEvent::Fault {
            what: format!("clock drift n{} {drift_ppm} ppm", node.0),
        });
        Ok(())
    }

    /// Runs until nothing can run and no deadline is left (or the time
    /// limit).
    pub fn run(&mut self) -> Stopped {
        self.run_until(|_| false)
    }

    /// Runs for `duration` of virtual time (or until quiet).
    pub fn run_for(&mut self, duration: Duration) -> Stopped {
        let end = self
            .world
            .now_ns()
            .saturating_add(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX));
        let limit = self.limit_ns;
        self.limit_ns = Some(limit.map_or(end, |l| l.min(end)));
        let stopped = self.run_until(|_| false);
        self.limit_ns = limit;
        stopped
    }

    /// Runs until `done` holds (checked before each step), the simulation
    /// is quiet, or the time limit.
    pub fn run_until(&mut self, mut done: impl FnMut(&Simulation) -> bool) -> Stopped {
        let last_step = self
            .step_limit
            .map_or(u64::MAX, |limit| self.steps.saturating_add(limit));
        loop {
            if done(self) {
                return Stopped::Condition;
            }
            if self.steps >= last_step {
                return Stopped::StepLimit;
            }
            if let Some(stopped) = self.step() {
                return stopped;
            }
        }
    }

    /// One step (module docs); `Some` when the simulation cannot go on.
    fn step(&mut self) -> Option<Stopped> {
        if self
            .limit_ns
            .is_some_and(|limit| self.world.now_ns() >= limit)
        {
            return Some(Stopped::TimeLimit);
        }
        // Step 1.
        while let Some(action) = self.world.take_due_action() {
            action();
        }
        // Step 2.
        let mut total = 0usize;
        for node in &mut self.nodes {
            if let Some(running) = &node.up {
                running.worker.sim_fire_timers();
                running.worker.sim_collect(&mut node.ready);
            }
            total += node.ready.len();
        }
        // Step 3.
        if total > 0 {
            let mut pick = self.world.rng(|rng| rng.below(total as u64)) as usize;
            let (index, node) = self
                .nodes
                .iter_mut()
                .enumerate()
                .find(|(_, node)| {
                    if pick < node.ready.len() {
                        true
                    } else {
                        pick -= node.ready.len();
                        false
                    }
                })
                .expect("the draw is below the total");
            let task = node.ready.swap_remove(pick);
            let (serial, cell) = (task.serial, task.to_arc());
            self.world.record(&SimEvent::Run {
                node: index as u32,
                agent: serial,
            });
            let running = node.up.as_ref().expect("a node with ready agents is up");
            let received = cell.mailbox.received();
            running.worker.sim_run(task);
            let taken = cell.mailbox.received() - received;
            if taken > 0 {
                self.world.record(&SimEvent::Receive {
                    node: index as u32,
                    agent: serial,
                    messages: taken,
                });
            }
            self.steps += 1;
            let cost = self
                .world
                .rng(|rng| rng.between(SIM_RESUME_COST_NS_MIN, SIM_RESUME_COST_NS_MAX));
            self.world.advance_to(self.world.now_ns() + cost);
            return None;
        }
        // Step 4.
        let mut next = self.world.next_action_ns();
        for node in &self.nodes {
            let Some(running) = &node.up else { continue };
            let deadline = lock(&running.runtime.shared().workers[0].timers).next_deadline();
            if let Some(at) = deadline.and_then(|d| node.sim.clock.world_ns_of(d)) {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        let Some(next) = next else {
            return Some(Stopped::Quiet);
        };
        let next = next.max(self.world.now_ns());
        if let Some(limit) = self.limit_ns {
            if next > limit {
                self.world.advance_to(limit);
                return Some(Stopped::TimeLimit);
            }
        }
        if next > self.world.now_ns() {
            self.world.record(&SimEvent::Advance { to_ns: next });
            self.world.advance_to(next);
        }
        None
    }

    /// Crashes `node`: every agent of it is unwound at once, as if its
    /// process died; pids of it stay dead (a restart is a new incarnation,
    /// [`Simulation::restart`]). Agents of other nodes linked to it get
    /// `noconnection` (the runtime's own rule for agents of a runtime that
    /// is gone).
    pub fn crash(&mut self, node: NodeId) {
        let Some(slot) = self.nodes.get_mut(node.0 as usize) else {
            return;
        };
        slot.ready.clear();
        if let Some(running) = slot.up.take() {
            self.world.record(&SimEvent::Fault {
                what: format!("crash n{}", node.0),
            });
            shut_down(running);
        }
    }

    /// Brings a crashed `node` back as a new runtime (a new incarnation:
    /// its old agents stay dead; it starts with none).
    pub fn restart(&mut self, node: NodeId) -> Result<(), Error> {
        let Some(slot) = self.nodes.get_mut(node.0 as usize) else {
            return Err(Error::InvalidConfig(format!(
                "no simulated node {}",
                node.0
            )));
        };
        if slot.up.is_some() {
            return Ok(());
        }
        let (runtime, worker) = slot.builder.clone().build_simulated(slot.sim.clone())?;
        slot.up = Some(Running { worker, runtime });
        self.world.record(&SimEvent::Fault {
            what: format!("restart n{}", node.0),
        });
        Ok(())
    }
}

/// Ends a node: its worker unwinds every agent on this thread, then its
/// runtime is dropped (runtime.rs `Drop`: nothing left to join).
fn shut_down(running: Running) {
    let Running { worker, runtime } = running;
    runtime.shared().shutdown.store(true, Ordering::SeqCst);
    worker.sim_teardown();
    drop(worker);
    drop(runtime);
}

impl Drop for Simulation {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.ready.clear();
        }
        for node in &mut self.nodes {
            if let Some(running) = node.up.take() {
                shut_down(running);
            }
        }
        drop(self.world.clear_actions());
    }
}
