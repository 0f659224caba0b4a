//! Every tunable and limit of the runtime, with its unit in its name.
//!
//! The defaults are constants here; a [`Config`] carries the values one runtime
//! was built with. The relations between limits are checked by `const`
//! assertions at the bottom of the file, so an edit that breaks one fails to
//! compile.

use std::time::Duration;

/// Words of an agent's function (its captures) kept inline in its cell;
/// a larger function is boxed (agent/body.rs). Six: a pid (two words,
/// since pids may be remote) and four more, so the usual spawn closure
/// costs no allocation.
pub(crate) const BODY_INLINE_WORDS: usize = 6;

/// Default usable stack size of an agent, in bytes (pitfalls.md §3.4: 64 KiB;
/// only touched pages become resident, so the cost is address space).
pub const STACK_SIZE_BYTES_DEFAULT: usize = 64 * 1024;

/// Smallest stack an agent may ask for. A panic message with a backtrace
/// overflows 16 KiB (pitfalls.md §3.5).
pub const STACK_SIZE_BYTES_MIN: usize = 32 * 1024;

/// Largest stack an agent may ask for.
pub const STACK_SIZE_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Size of one guard page under every stack.
pub(crate) const GUARD_SIZE_BYTES: usize = 4096;

/// Address space reserved for one slab of stack slots. Slots of one size class
/// are carved from slabs of this size (rounded to a whole number of slots).
pub(crate) const SLAB_SIZE_BYTES: usize = 1 << 30;

/// Most free stack slots one worker keeps for itself before handing half of
/// them to the shared free list.
pub(crate) const STACK_CACHE_LEN_MAX: usize = 256;

/// Default capacity of an agent's data lane (Erlangen's `*default-mailbox-size*`).
pub const MAILBOX_LEN_DEFAULT: usize = 64;

/// Largest data-lane capacity an agent may ask for.
pub const MAILBOX_LEN_MAX: usize = 1 << 30;

/// Free stack slots of hibernated agents whose pages a worker hands back to
/// the kernel in one batch (runs of adjacent slots share one `madvise`,
/// whose TLB shoot-down costs about 9 µs on the target machine).
pub(crate) const DISCARD_BATCH_LEN: usize = 64;

/// Runtime calls (send, spawn, …) an agent may make before it yields its worker
/// to the next runnable agent, like BEAM's reductions.
pub(crate) const REDUCTIONS_PER_SLICE: u32 = 2000;

/// Bytes of a remote send charged as one scheduling step (on top of the
/// send's own): a 64 MiB message is 16,384 steps, several slices, so a loop
/// of large sends yields its worker between them.
pub(crate) const SEND_BYTES_PER_REDUCTION: usize = 4096;

/// Consecutive runs from a worker's LIFO slot before the slot's agent goes to
/// the back of the run queue instead (tokio caps its LIFO slot the same way).
pub(crate) const LIFO_RUNS_MAX: u32 = 64;

/// Every this many scheduling ticks a worker looks at its inbox, the global
/// injector and its timers before its local queues, so none starves.
pub(crate) const FAIRNESS_TICKS: u32 = 61;

/// Most scheduling ticks an agent that yielded waits while other local work
/// runs first (about the agents one slice of [`REDUCTIONS_PER_SLICE`] calls
/// can spawn).
pub(crate) const YIELD_WAIT_TICKS_MAX: u32 = 1024;

/// How long an idle worker keeps searching for work before it parks. A wake
/// of a parked thread costs 2.5–46 µs on the target machine, a search loop
/// a few ns per probe (pitfalls.md §6).
pub(crate) const SPIN_BEFORE_PARK: Duration = Duration::from_micros(50);

/// Search rounds an idle worker spins before it yields the core on each
/// further round (`sched_yield`): the spin catches a hand-off from another
/// worker (hundreds of ns); the yields let a thread that shares the core —
/// a node's event loop, another process's worker — run at once, which a
/// pure spin delayed by up to its whole length (issue 21: a round trip
/// between two nodes went from 116 to 44 µs; ping-pong across workers kept
/// its speed).
pub(crate) const IDLE_SPIN_ROUNDS_BEFORE_YIELD: u32 = 32;

/// A yield of the core that took longer than this means a thread that does
/// not block soon ran meanwhile (a time slice is milliseconds): the core is
/// contended, and a polite spin stops (polite_spin.rs). An uncontended
/// `sched_yield` takes about 1 µs; one that lets a node's event loop or
/// another process's worker do its work, tens of µs (20 µs here counted
/// those as contention and undid the spin's gain).
pub(crate) const YIELD_CONTENDED: Duration = Duration::from_micros(500);

/// How long a polite spin that found its core contended sleeps at once when
/// idle, before it spins again (polite_spin.rs). A burst of an agent's own
/// work on the other core (a caller filling its mailbox with 500,000
/// messages) is found as contention too; at 100 ms the 2,000 remote calls
/// after it ran with slow wakes all along (2× the empty call), at 10 ms
/// they run as fast as before it (issue 20). A machine that stays
/// oversubscribed pays one slow yield per 10 ms.
pub(crate) const CONTENDED_BACKOFF: Duration = Duration::from_millis(10);

/// How long an agent must have waited in a worker's stealable deque before
/// another worker may steal it (Go delays stealing `runnext` the same way).
/// An agent that spawns a partner and then blocks runs it on its own worker
/// within microseconds, so the pair stays together; work that really waits
/// (a spawner that keeps computing) is taken after this delay.
pub(crate) const STEAL_DELAY: Duration = Duration::from_micros(200);

/// A stealable deque holding at least this many agents is a burst of spawns
/// (a supervisor starting its workers): other workers may take half of it
/// at once, however young, so the burst spreads over the cores instead of
/// starting on its spawner's worker while the delay runs.
pub(crate) const STEAL_BURST_LEN_MIN: usize = 8;

/// Dead agents' cells a worker collects for another before handing them
/// over to be freed there (scheduler/reclaim.rs).
pub(crate) const RECLAIM_BATCH_LEN: usize = 64;

/// Most cells waiting for their worker to free them; past it a batch is
/// freed where it is (scheduler/reclaim.rs step 2).
pub(crate) const RECLAIM_PENDING_MAX: usize = 4096;

/// Most agents moved in one batch from a shared queue to a worker.
pub(crate) const STEAL_BATCH_LEN_MAX: usize = 32;

/// Longest name accepted by the registry, in bytes.
pub(crate) const NAME_LEN_MAX_BYTES: usize = 255;

// ---- supervisors (supervisor.rs) and servers (server.rs) ----

/// OTP's default shutdown timeout for a worker child.
pub const SHUTDOWN_TIMEOUT_DEFAULT: Duration = Duration::from_secs(5);

/// OTP's default restart intensity: at most this many restarts…
pub const INTENSITY_DEFAULT: u32 = 1;

/// …within this period.
pub const PERIOD_DEFAULT: Duration = Duration::from_secs(5);

/// How long `supervisor::start_supervisor` waits for the children's start functions.
pub const SUPERVISOR_START_TIMEOUT: Duration = Duration::from_secs(60);

/// A server's default mailbox capacity, in messages (an agent's default is
/// 64: a server is called by many).
pub const SERVER_MAILBOX_LEN_DEFAULT: usize = 65_536;

/// How long `server::start_server` waits for `init`.
pub const SERVER_INIT_TIMEOUT: Duration = Duration::from_secs(60);

/// Least time between two warnings about full mailboxes, per runtime (the
/// ones in between are counted and reported with the next).
pub(crate) const FULL_MAILBOX_LOG_INTERVAL: Duration = Duration::from_secs(1);

/// Shards of the live-agent table (a power of two).
pub(crate) const LIVE_SHARDS: usize = 64;

/// Most agents on one page of a listing (`AgentQuery::limit`).
pub const AGENT_PAGE_LEN_MAX: usize = 1000;

/// Live-table slots a listing copies under one shard lock
/// (agent_list.rs step 1), and agents it reads between two yields.
pub(crate) const AGENT_LIST_CHUNK_LEN: usize = 256;

/// Most worker threads one runtime may have.
pub(crate) const WORKERS_MAX: usize = 256;

/// How often an agent that waits for a busy remote route looks again.
pub(crate) const REMOTE_BUSY_POLL: Duration = Duration::from_micros(200);

/// Most threads of a runtime's blocking pool (scheduler/blocking.rs); more
/// jobs wait in its queue.
pub(crate) const BLOCKING_THREADS_MAX: usize = 64;

/// How often the watchdog samples the workers (scheduler/watchdog.rs).
pub(crate) const WATCHDOG_TICK: Duration = Duration::from_millis(10);

/// Default time an agent may hold its worker before the watchdog names it.
pub(crate) const WATCHDOG_THRESHOLD_DEFAULT: Duration = Duration::from_millis(100);

/// How many times a panic payload whose destructor panics is replaced by
/// the next payload before the last one is leaked (scheduler/containment.rs).
pub(crate) const PAYLOAD_DROP_TRIES_MAX: u32 = 8;

/// Longest delay accepted by `sleep`, `receive_timeout` and `send_after`
/// (longer delays are clamped to it).
pub(crate) const TIMER_HORIZON: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// The values one runtime was built with.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    /// Number of worker threads.
    pub(crate) workers: usize,
    /// Pin each worker to one core.
    pub(crate) pin_workers: bool,
    /// Default usable stack size of an agent, in bytes.
    pub(crate) stack_size_bytes: usize,
    /// Default data-lane capacity of an agent.
    pub(crate) mailbox_len: usize,
    /// How long an idle worker searches before parking.
    pub(crate) spin_before_park: Duration,
    /// How long an agent may hold its worker before the watchdog names it.
    pub(crate) watchdog_threshold: Duration,
    /// Where finished spans go (trace.rs), if anywhere.
    pub(crate) span_sink: Option<crate::trace::SinkRef>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            pin_workers: true,
            stack_size_bytes: STACK_SIZE_BYTES_DEFAULT,
            mailbox_len: MAILBOX_LEN_DEFAULT,
            spin_before_park: SPIN_BEFORE_PARK,
            watchdog_threshold: WATCHDOG_THRESHOLD_DEFAULT,
            span_sink: None,
        }
    }
}

const _: () = assert!(STACK_SIZE_BYTES_MIN <= STACK_SIZE_BYTES_DEFAULT);
const _: () = assert!(STACK_SIZE_BYTES_DEFAULT <= STACK_SIZE_BYTES_MAX);
const _: () = assert!(STACK_SIZE_BYTES_MIN.is_multiple_of(GUARD_SIZE_BYTES));
const _: () = assert!(SLAB_SIZE_BYTES >= STACK_SIZE_BYTES_MAX + GUARD_SIZE_BYTES);
const _: () = assert!(LIVE_SHARDS.is_power_of_two());
const _: () = assert!(STEAL_BATCH_LEN_MAX <= STACK_CACHE_LEN_MAX);
const _: () = assert!(MAILBOX_LEN_DEFAULT <= MAILBOX_LEN_MAX);
const _: () = assert!(MAILBOX_LEN_MAX <= u32::MAX as usize);
const _: () = assert!(STACK_SIZE_BYTES_MAX <= u32::MAX as usize);

/// The shortest period of `Ctx::send_interval` (a shorter one is raised to
/// it): a periodic message more often than this is a busy loop.
pub(crate) const INTERVAL_MIN: Duration = Duration::from_millis(1);

/// The bounds of the mailbox-length histogram of
/// [`RuntimeMetrics`](crate::RuntimeMetrics), in messages (Prometheus's
/// `le`; `+Inf` is the number of agents), rising.
pub(crate) const METRICS_MAILBOX_BUCKETS: [usize; 9] = [0, 1, 4, 16, 64, 256, 1024, 4096, 65_536];

const _: () = {
    let mut i = 1;
    while i < METRICS_MAILBOX_BUCKETS.len() {
        assert!(METRICS_MAILBOX_BUCKETS[i - 1] < METRICS_MAILBOX_BUCKETS[i]);
        i += 1;
    }
};

/// Simulation: the least virtual time one resume of an agent costs, in ns
/// (simulation/mod.rs step 3). A drawn cost, so that seeds also differ in
/// when timers fire against messages.
pub(crate) const SIM_RESUME_COST_NS_MIN: u64 = 200;

/// Simulation: the most virtual time one resume costs, in ns.
pub(crate) const SIM_RESUME_COST_NS_MAX: u64 = 5_000;

/// Simulation: resumes one run call of a simulation makes at most before
/// it stops with `Stopped::StepLimit` (a hang guard against an agent that
/// never stops running; about three minutes at the measured speed;
/// `Simulation::set_step_limit` changes it).
pub(crate) const SIM_STEPS_MAX_DEFAULT: u64 = 100_000_000;

/// Simulation harness: seeds run when `ERLANGEN_SEEDS` is not set and the
/// caller gives no count (simulation/harness.rs).
pub(crate) const SIM_SEEDS_DEFAULT: u64 = 100;
