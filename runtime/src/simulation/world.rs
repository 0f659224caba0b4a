//! `World`: what every node of one simulation shares (the virtual clock,
//! the seeded generator, the event log, and timed actions such as a
//! network's deliveries), and `SimHandle`, its public face for code that
//! extends a simulation (the nodes layer's simulated network).
//!
//! Everything here is touched by the simulation's one thread only; the
//! locks are there because `Shared` must be `Sync`, and are never
//! contended.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::clock::NodeClock;
use super::events::{EventLog, SimEvent};
use super::seed::SimRng;
use crate::sync::lock;

/// An action due at a virtual time.
struct Timed {
    due_ns: u64,
    /// Order among actions due at the same time: the order they were set.
    seq: u64,
    action: Box<dyn FnOnce() + Send>,
}

impl PartialEq for Timed {
    fn eq(&self, other: &Timed) -> bool {
        (self.due_ns, self.seq) == (other.due_ns, other.seq)
    }
}

impl Eq for Timed {}

impl PartialOrd for Timed {
    fn partial_cmp(&self, other: &Timed) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl Ord for Timed {
    /// Reversed: `BinaryHeap` is a max-heap and the earliest goes first.
    fn cmp(&self, other: &Timed) -> CmpOrdering {
        (other.due_ns, other.seq).cmp(&(self.due_ns, self.seq))
    }
}

/// Timed actions and their sequence counter.
#[derive(Default)]
struct Actions {
    heap: BinaryHeap<Timed>,
    next_seq: u64,
}

/// The state one simulation's nodes share (module docs).
pub(crate) struct World {
    /// The `Instant` of virtual time 0.
    pub(crate) base: Instant,
    /// Virtual ns since the simulation began.
    now_ns: AtomicU64,
    rng: Mutex<SimRng>,
    log: Mutex<EventLog>,
    actions: Mutex<Actions>,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("now_ns", &self.now_ns())
            .finish_non_exhaustive()
    }
}

impl World {
    /// A world at time 0, its generator seeded with `seed`.
    pub(crate) fn new(seed: u64, echo: bool) -> World {
        World {
            base: Instant::now(),
            now_ns: AtomicU64::new(0),
            rng: Mutex::new(SimRng::new(seed)),
            log: Mutex::new(EventLog::new(echo)),
            actions: Mutex::new(Actions::default()),
        }
    }

    /// Virtual ns since the simulation began.
    pub(crate) fn now_ns(&self) -> u64 {
        self.now_ns.load(Ordering::Relaxed)
    }

    /// Moves the clock forward to `ns` (never back).
    pub(crate) fn advance_to(&self, ns: u64) {
        self.now_ns.fetch_max(ns, Ordering::Relaxed);
    }

    /// Runs `f` with the generator.
    pub(crate) fn rng<T>(&self, f: impl FnOnce(&mut SimRng) -> T) -> T {
        f(&mut lock(&self.rng))
    }

    /// Records `event` now.
    pub(crate) fn record(&self, event: &SimEvent) {
        lock(&self.log).record(self.now_ns(), event);
    }

    /// Runs `f` with the log.
    pub(crate) fn log<T>(&self, f: impl FnOnce(&mut EventLog) -> T) -> T {
        f(&mut lock(&self.log))
    }

    /// Sets `action` to run at virtual time `due_ns`.
    pub(crate) fn at(&self, due_ns: u64, action: Box<dyn FnOnce() + Send>) {
        let mut actions = lock(&self.actions);
        let seq = actions.next_seq;
        actions.next_seq += 1;
        actions.heap.push(Timed {
            due_ns,
            seq,
            action,
        });
    }

    /// When the next timed action is due.
    pub(crate) fn next_action_ns(&self) -> Option<u64> {
        lock(&self.actions).heap.peek().map(|t| t.due_ns)
    }

    /// Takes the next action due by now, if any (the caller runs it
    /// without the lock held: it may set others).
    pub(crate) fn take_due_action(&self) -> Option<Box<dyn FnOnce() + Send>> {
        let now = self.now_ns();
        let mut actions = lock(&self.actions);
        match actions.heap.peek() {
            Some(next) if next.due_ns <= now => actions.heap.pop().map(|t| t.action),
            _ => None,
        }
    }

    /// Drops every pending action (the simulation ends).
    pub(crate) fn clear_actions(&self) -> Vec<Box<dyn FnOnce() + Send>> {
        let mut actions = lock(&self.actions);
        std::mem::take(&mut actions.heap)
            .into_iter()
            .map(|t| t.action)
            .collect()
    }
}

/// What a node's runtime holds of its simulation: the world and its own
/// clock (`Shared::simulated`).
#[derive(Debug)]
pub(crate) struct NodeSim {
    pub(crate) world: Arc<World>,
    /// The node's index in the simulation.
    pub(crate) index: u32,
    pub(crate) clock: NodeClock,
}

impl NodeSim {
    /// The node's clock now.
    pub(crate) fn now(&self) -> Instant {
        self.clock.instant(self.world.now_ns())
    }

    /// Records `event`.
    pub(crate) fn record(&self, event: &SimEvent) {
        self.world.record(event);
    }
}

/// A handle on a running simulation, for code that extends it (a
/// simulated network) or reads its clock: the clock, the seeded
/// generator, the event log and timed actions. Cloneable; every use must
/// come from the simulation's thread (an agent of it, or the code driving
/// it), or the run is no longer a function of its seed.
#[derive(Clone, Debug)]
pub struct SimHandle {
    pub(crate) world: Arc<World>,
}

impl SimHandle {
    /// Virtual time since the simulation began.
    pub fn now(&self) -> Duration {
        Duration::from_nanos(self.world.now_ns())
    }

    /// 64 random bits from the simulation's seed.
    pub fn random_u64(&self) -> u64 {
        self.world.rng(|rng| rng.next_u64())
    }

    /// A number in `0..n` from the simulation's seed (`n` > 0).
    pub fn random_below(&self, n: u64) -> u64 {
        self.world.rng(|rng| rng.below(n.max(1)))
    }

    /// `true` with probability `per_million` / 1,000,000.
    pub fn chance(&self, per_million: u32) -> bool {
        self.world.rng(|rng| rng.chance(per_million))
    }

    /// Runs `action` on the simulation's thread once `delay` of virtual
    /// time has passed (actions due at the same time run in the order they
    /// were set). `action` must not run agent code; it may send to agents.
    pub fn after(&self, delay: Duration, action: impl FnOnce() + Send + 'static) {
        let due = self
            .world
            .now_ns()
            .saturating_add(u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX));
        self.world.at(due, Box::new(action));
    }

    /// Adds `event` to the run's trace and hash.
    pub fn record(&self, event: SimEvent) {
        self.world.record(&event);
    }
}
