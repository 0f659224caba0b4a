//! `AgentCell`: everything the runtime keeps about one agent.
//!
//! # Fields
//!
//! | field | written by | read by |
//! | --- | --- | --- |
//! | `serial`, `runtime`, `born_ns`, `born_on`, `stack_bytes`, `migratable` | spawner, before the cell is shared | anyone |
//! | `state` | wakers and the running worker, by the state-word protocol (state.rs) | anyone |
//! | `mailbox` | any sender (push); the agent itself (pop) | introspection |
//! | `links` | under its mutex: linkers, the registry, the dying agent | introspection |
//! | `home` | the worker that first runs the agent (once, for unmigratable agents) | wakers |
//! | `body` | **only** the worker that holds the agent `RUNNING` (or, at shutdown, its home worker after all workers stopped running agents) | the same |
//! | `timer_seq` | the agent itself when it arms a timer | timers |
//! | `died_ns` | the dying agent's worker, once | introspection |
//! | `watchdog_warnings` | the watchdog | introspection |
//!
//! # Safety
//!
//! `body` is an `UnsafeCell`. Rule **BODY-OWNER**: only the thread that moved
//! the state word to `RUNNING` (agent/state.rs step 2) may touch it, until it
//! moves the word out of `RUNNING`; at shutdown, the agent's home worker, once
//! no worker runs agents any more (runtime.rs, shutdown step 3).

pub(crate) mod body;
pub(crate) mod coroutine;
pub(crate) mod overflow;
pub(crate) mod panic_report;
pub(crate) mod stack;
pub(crate) mod state;

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use self::body::Body;
use self::coroutine::AgentCoroutine;
use self::state::State;
use crate::links::LinkSet;
use crate::mailbox::Mailbox;

/// `home` of an agent that has not run yet.
pub(crate) const NO_HOME: usize = usize::MAX;

/// What the agent runs, by stage.
pub(crate) enum Stage {
    /// Spawned, not yet run: just the body (stealable by any worker).
    Unstarted(Body),
    /// Running or suspended on its stack.
    Started(AgentCoroutine),
    /// Finished or torn down.
    Finished,
}

impl std::fmt::Debug for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stage::Unstarted(_) => f.write_str("Unstarted"),
            Stage::Started(coroutine) => coroutine.fmt(f),
            Stage::Finished => f.write_str("Finished"),
        }
    }
}

/// One agent.
#[derive(Debug)]
pub(crate) struct AgentCell {
    /// Unique within the runtime, never reused.
    pub(crate) serial: u64,
    /// The id of the runtime that spawned the agent: only its workers run it
    /// (scheduler/directory.rs).
    pub(crate) runtime: u64,
    /// The lifecycle word.
    pub(crate) state: State,
    /// The two-lane mailbox.
    pub(crate) mailbox: Mailbox,
    /// Links, monitors, registered names, and the dead flag.
    pub(crate) links: Mutex<LinkSet>,
    /// The worker that runs the agent once it started (`NO_HOME` before).
    pub(crate) home: AtomicUsize,
    /// The worker whose thread allocated the cell (`NO_HOME` if none): the
    /// cell is freed there (scheduler/reclaim.rs).
    born_on: u32,
    /// Whether a started agent may move between workers (unsafe opt-in).
    pub(crate) migratable: bool,
    /// Usable stack bytes to give it (at most `STACK_SIZE_BYTES_MAX`,
    /// 64 MiB: four bytes are enough, and every cell is smaller for it).
    stack_bytes: u32,
    /// Birth time, ns since the Unix epoch.
    pub(crate) born_ns: u64,
    /// Death time, ns since the Unix epoch (0 while alive).
    pub(crate) died_ns: AtomicU64,
    /// Sequence number of the agent's current timer (see timer.rs).
    pub(crate) timer_seq: AtomicU64,
    /// Index in the live-agent table.
    pub(crate) live_index: AtomicUsize,
    /// Times the watchdog named this agent for holding its worker.
    pub(crate) watchdog_warnings: AtomicU32,
    /// Times the agent hibernated (`Ctx::hibernate`).
    pub(crate) hibernations: AtomicU32,
    /// Whether it is hibernated now: set when it hibernates, cleared when
    /// it starts again.
    pub(crate) hibernated: AtomicBool,
    /// Resumes so far, sampled (worker.rs: every `FAIRNESS_TICKS`-th resume
    /// of a worker adds `FAIRNESS_TICKS` to the agent it resumes; wrapping),
    /// read by listings (agent_list.rs).
    pub(crate) slices: AtomicU32,
    /// The body or coroutine (rule BODY-OWNER).
    body: UnsafeCell<Stage>,
}

// SAFETY: every field but `body` is Sync by itself; `body` is touched only by
// the thread that holds the agent RUNNING (rule BODY-OWNER), which the state
// word makes exclusive, and its contents are Send (Body is Send;
// AgentCoroutine is Send, see coroutine.rs).
unsafe impl Sync for AgentCell {}

impl AgentCell {
    /// Whether the agent has exited (its link set is closed).
    pub(crate) fn has_exited(&self) -> bool {
        crate::sync::lock(&self.links).dead
    }

    /// The worker whose thread allocated the cell, or `usize::MAX`
    /// (`NO_HOME`) if none. Four bytes in the cell: worker indexes are
    /// small.
    #[inline]
    pub(crate) fn born_on(&self) -> usize {
        match self.born_on {
            u32::MAX => NO_HOME,
            index => index as usize,
        }
    }

    /// Usable stack bytes to give the agent.
    #[inline]
    pub(crate) fn stack_bytes(&self) -> usize {
        self.stack_bytes as usize
    }

    /// A new, scheduled, unstarted agent.
    pub(crate) fn new(
        runtime: u64,
        serial: u64,
        body: Body,
        mailbox_len: usize,
        stack_bytes: usize,
        migratable: bool,
        born_on: usize,
    ) -> AgentCell {
        AgentCell {
            runtime,
            serial,
            state: State::new_scheduled(),
            mailbox: Mailbox::new(mailbox_len),
            links: Mutex::new(LinkSet::default()),
            home: AtomicUsize::new(NO_HOME),
            born_on: u32::try_from(born_on).unwrap_or(u32::MAX),
            migratable,
            stack_bytes: u32::try_from(stack_bytes).expect("checked by stack_size"),
            born_ns: now_ns(),
            died_ns: AtomicU64::new(0),
            timer_seq: AtomicU64::new(0),
            live_index: AtomicUsize::new(usize::MAX),
            watchdog_warnings: AtomicU32::new(0),
            hibernations: AtomicU32::new(0),
            hibernated: AtomicBool::new(false),
            slices: AtomicU32::new(0),
            body: UnsafeCell::new(Stage::Unstarted(body)),
        }
    }

    /// The agent's stage.
    ///
    /// # Safety
    ///
    /// The caller holds the agent `RUNNING` (rule BODY-OWNER), or is its home
    /// worker at shutdown after every worker stopped running agents; and
    /// drops the reference before giving that up.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn stage(&self) -> &mut Stage {
        // SAFETY: exclusive access is the caller's obligation (above).
        unsafe { &mut *self.body.get() }
    }

    /// The home worker, if the agent has started.
    pub(crate) fn home(&self) -> Option<usize> {
        match self.home.load(Ordering::Acquire) {
            NO_HOME => None,
            home => Some(home),
        }
    }

    /// Records when the agent ended (once). The status itself goes to its
    /// links and monitors only, so that a returned value is not kept alive
    /// (and can be moved out by a single monitor: `Value::take`).
    pub(crate) fn set_died(&self) {
        self.died_ns.store(now_ns(), Ordering::Release);
    }
}

/// Nanoseconds since the Unix epoch, from the coarse real-time clock (a few
/// ms of resolution, a fraction of the cost of the precise one: birth and
/// death times are informational, Erlangen kept them to the second).
pub(crate) fn now_ns() -> u64 {
    let mut time = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes only the timespec we pass.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut time) };
    if rc != 0 {
        return SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
    }
    (time.tv_sec as u64) * 1_000_000_000 + time.tv_nsec as u64
}
