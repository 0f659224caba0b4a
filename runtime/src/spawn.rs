//! `SpawnOptions` and the one spawn path shared by agents and the runtime.

use std::sync::Arc;

use crate::agent::body::Body;
use crate::agent::AgentCell;
use crate::config::{
    GUARD_SIZE_BYTES, MAILBOX_LEN_MAX, STACK_SIZE_BYTES_MAX, STACK_SIZE_BYTES_MIN,
};
use crate::error::Error;
use crate::pid::Pid;
use crate::scheduler::signal::Attach;
use crate::scheduler::worker::WorkerContext;
use crate::scheduler::Shared;

/// How to spawn an agent. The defaults: not attached, the runtime's mailbox
/// capacity (64 unless configured) and stack size (64 KiB unless configured).
///
/// ```
/// use erlangen_runtime::{Runtime, SpawnOptions};
/// let rt = Runtime::builder().workers(1).build().unwrap();
/// let down = rt.run(|ctx| {
///     let child = ctx
///         .spawn_with(SpawnOptions::new().monitor().mailbox_len(8), |_| 7u8)
///         .unwrap();
///     let down = ctx.receive().downcast::<erlangen_runtime::Down>().unwrap();
///     assert_eq!(down.pid, child);
///     *down.status.value().unwrap().downcast_ref::<u8>().unwrap()
/// });
/// assert_eq!(down.unwrap(), 7);
/// ```
#[derive(Clone, Debug, Default)]
pub struct SpawnOptions {
    /// Attach the caller to the new agent before it runs.
    pub(crate) attach: Option<Attach>,
    /// Data-lane capacity.
    pub(crate) mailbox_len: Option<usize>,
    /// Usable stack bytes.
    pub(crate) stack_size_bytes: Option<usize>,
    /// Whether the started agent may move between workers.
    pub(crate) migratable: bool,
    /// Run the agent on this worker only.
    pub(crate) worker: Option<usize>,
}

impl SpawnOptions {
    /// The defaults.
    pub fn new() -> SpawnOptions {
        SpawnOptions::default()
    }

    /// Link the caller and the new agent before it runs.
    pub fn link(mut self) -> SpawnOptions {
        self.attach = Some(Attach::Link);
        self
    }

    /// Monitor the new agent from the caller before it runs.
    pub fn monitor(mut self) -> SpawnOptions {
        self.attach = Some(Attach::Monitor);
        self
    }

    /// Attach as given (or not at all).
    pub fn attach(mut self, attach: Option<Attach>) -> SpawnOptions {
        self.attach = attach;
        self
    }

    /// Capacity of the data lane (1 to 2^30): sends beyond it are dropped
    /// and counted.
    pub fn mailbox_len(mut self, len: usize) -> SpawnOptions {
        self.mailbox_len = Some(len);
        self
    }

    /// Usable stack size in bytes (32 KiB to 64 MiB, rounded up to 4 KiB).
    pub fn stack_size(mut self, bytes: usize) -> SpawnOptions {
        self.stack_size_bytes = Some(bytes);
        self
    }

    /// Runs the agent on worker `index` only (it is never stolen), for
    /// benchmarks that place agents on purpose and for affinity. An index
    /// past the last worker is refused by the spawn.
    pub fn worker(mut self, index: usize) -> SpawnOptions {
        self.worker = Some(index);
        self
    }

    /// How the caller attaches, as set.
    ///
    /// ```
    /// use erlangen_runtime::{Attach, SpawnOptions};
    /// assert_eq!(SpawnOptions::new().link().attach_mode(), Some(Attach::Link));
    /// ```
    pub fn attach_mode(&self) -> Option<Attach> {
        self.attach
    }

    /// The data-lane capacity, as set.
    ///
    /// ```
    /// use erlangen_runtime::SpawnOptions;
    /// assert_eq!(SpawnOptions::new().mailbox_len(8).mailbox_capacity(), Some(8));
    /// ```
    pub fn mailbox_capacity(&self) -> Option<usize> {
        self.mailbox_len
    }

    /// Lets the started agent be stolen by other workers, for load balance.
    ///
    /// # Safety
    ///
    /// The agent's code may then resume on another OS thread after any
    /// blocking call (receive, sleep, yield) or any runtime call that may
    /// yield (send, spawn). The caller promises that no `!Send` value
    /// (`Rc`, a `MutexGuard`, a `RefCell` borrow of thread-local data) and no
    /// reference to thread-local data is live across those calls, and that
    /// no code the agent runs caches a thread-local's address across them.
    /// Rust 1.95 release builds do cache it (pitfalls.md §3.2), which makes
    /// `thread_local!` with lazy initialisation unsound to use in such agents.
    pub unsafe fn migratable(mut self) -> SpawnOptions {
        self.migratable = true;
        self
    }
}

/// Spawns an agent running `body`. `parent` is the calling agent, needed
/// when `options` attach.
pub(crate) fn spawn_agent(
    shared: &Shared,
    from: Option<&WorkerContext>,
    options: &SpawnOptions,
    body: Body,
    parent: Option<&Pid>,
) -> Result<Pid, Error> {
    spawn_agent_then(shared, from, options, body, parent, None)
}

/// `spawn_agent`, calling `before_run` with the new agent's pid after its
/// links are in place and before it can run (the nodes layer sends the
/// spawn's reply there, so that the reply precedes every signal of the
/// child on the connection).
pub(crate) fn spawn_agent_then(
    shared: &Shared,
    from: Option<&WorkerContext>,
    options: &SpawnOptions,
    body: Body,
    parent: Option<&Pid>,
    before_run: Option<&mut dyn FnMut(&Pid)>,
) -> Result<Pid, Error> {
    let mailbox_len = mailbox_len(options.mailbox_len.unwrap_or(shared.config.mailbox_len))?;
    let stack_bytes = stack_size(
        options
            .stack_size_bytes
            .unwrap_or(shared.config.stack_size_bytes),
    )?;
    if options.attach.is_some() && parent.is_none() {
        return Err(Error::InvalidConfig(
            "attaching needs a calling agent; spawn from inside an agent".to_owned(),
        ));
    }
    if let Some(index) = options.worker {
        if index >= shared.workers.len() || options.migratable {
            return Err(Error::InvalidConfig(format!(
                "worker {index} does not exist (there are {}), or the agent is migratable",
                shared.workers.len()
            )));
        }
    }
    let serial = match from {
        Some(worker) => worker.next_serial(),
        None => shared.reserve_serials(1),
    };
    let cell = Arc::new(AgentCell::new(
        shared.id,
        serial,
        body,
        mailbox_len,
        stack_bytes,
        options.migratable,
        from.map_or(crate::agent::NO_HOME, |worker| worker.index),
    ));
    if let Some(index) = options.worker {
        cell.home.store(index, std::sync::atomic::Ordering::Release);
    }
    let pid = Pid::from_cell(cell.clone());
    if let (Some(how), Some(parent)) = (options.attach, parent) {
        if parent.is_remote() {
            // The parent's node installed its half before asking
            // (remote.rs, Erlangen bug 5); this is ours.
            let mut links = crate::sync::lock(&cell.links);
            match how {
                Attach::Link => links.add_kill(parent),
                Attach::Monitor => links.add_notify(parent),
            }
        } else {
            shared.attach(parent, &pid, how, from)?;
        }
    }
    if let Some(before_run) = before_run {
        before_run(&pid);
    }
    shared.live.insert(&cell);
    if let Some(sim) = shared.simulated() {
        sim.record(&crate::simulation::SimEvent::Spawn {
            node: sim.index,
            agent: serial,
        });
    }
    // SAFETY: LIVE-QUEUED step 1: just inserted in the live table, never run.
    shared.schedule(unsafe { crate::scheduler::Task::new(&cell) }, from);
    Ok(pid)
}

/// Checks a mailbox capacity.
pub(crate) fn mailbox_len(len: usize) -> Result<usize, Error> {
    if len == 0 || len > MAILBOX_LEN_MAX {
        return Err(Error::InvalidConfig(format!(
            "mailbox length {len} is outside 1..={MAILBOX_LEN_MAX}"
        )));
    }
    Ok(len)
}

/// Checks a stack size and rounds it up to whole pages.
pub(crate) fn stack_size(bytes: usize) -> Result<usize, Error> {
    if !(STACK_SIZE_BYTES_MIN..=STACK_SIZE_BYTES_MAX).contains(&bytes) {
        return Err(Error::InvalidConfig(format!(
            "stack size {bytes} bytes is outside {STACK_SIZE_BYTES_MIN}..={STACK_SIZE_BYTES_MAX}"
        )));
    }
    Ok(bytes.div_ceil(GUARD_SIZE_BYTES) * GUARD_SIZE_BYTES)
}
