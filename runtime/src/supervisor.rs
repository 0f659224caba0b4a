//! Supervisors (Erlang/OTP's `supervisor`), built on the public
//! primitives: a supervisor is an agent that holds Erlangen's monitor on
//! each child (so the child's end is a `Down` to it, and its own end kills
//! its children, as a supervisor's should) and answers requests by
//! [`Ctx::call`].
//!
//! # Protocol
//!
//! 1. [`start_supervisor`] spawns the supervisor, which starts the children
//!    of its spec in order, each by its start function (which spawns the
//!    child and returns its pid; the supervisor then monitors it), and
//!    answers the caller once all have started: `start_supervisor` returns
//!    after every child's start function has run (OTP's `start_link`). A
//!    child that fails to start stops the others, in reverse order, and the
//!    start fails.
//! 2. A child's `Down`: a permanent child is restarted always, a transient
//!    one only after an abnormal exit (anything but a normal return or
//!    `shutdown`), a temporary one never (it is forgotten). Restarting
//!    follows the strategy: one-for-one restarts the child alone;
//!    one-for-all stops the other children (in reverse order) and starts
//!    all again (in order); rest-for-one does that for the children started
//!    after it.
//! 3. Restart intensity: more than `intensity` restarts within `period`
//!    end the supervisor with `shutdown` (its children stopped first, in
//!    reverse order); its own supervisor then decides.
//! 4. Stopping a child: `Shutdown::BrutalKill` kills it at once;
//!    `Shutdown::Timeout(t)` sends it a [`ShutdownRequest`] (a child that
//!    cares cleans up and returns) and kills it if it has not ended after
//!    `t`. Either way the supervisor waits for its `Down`.
//!    A supervisor sent a `ShutdownRequest` (by its own supervisor) stops
//!    its children that way, last started first, and returns.
//! 5. Requests ([`SupervisorRequest`] by `Ctx::call`): which children,
//!    their counts, terminate, restart, delete, and start a new child (the
//!    dynamic, simple-one-for-one use: a spec with no children and
//!    children added by `StartChild`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::context::Ctx;
use crate::error::Error;
use crate::exit::{Down, ExitReason, ExitStatus};
use crate::message::Message;
use crate::pid::Pid;
use crate::reply::Call;
use crate::spawn::SpawnOptions;

/// Starts a child: spawns it and returns its pid. Runs on the supervisor.
pub type StartFn = Arc<dyn Fn(&Ctx) -> Result<Pid, Error> + Send + Sync>;

/// When a child that ended is started again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restart {
    /// Always.
    Permanent,
    /// Only after an abnormal exit (not a normal return, not `shutdown`).
    Transient,
    /// Never: a temporary child that ends is forgotten.
    Temporary,
}

/// How a child is stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    /// Killed at once.
    BrutalKill,
    /// Sent a [`ShutdownRequest`], and killed if it has not ended after
    /// this long.
    Timeout(Duration),
}

/// Which children a child's restart takes with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// The child alone.
    OneForOne,
    /// Every child.
    OneForAll,
    /// The child and those started after it.
    RestForOne,
}

/// How to start, restart and stop one child.
#[derive(Clone)]
pub struct ChildSpec {
    /// The child's name among its siblings.
    pub id: String,
    /// Spawns the child.
    pub start: StartFn,
    /// When it is started again.
    pub restart: Restart,
    /// How it is stopped.
    pub shutdown: Shutdown,
}

impl std::fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildSpec")
            .field("id", &self.id)
            .field("restart", &self.restart)
            .field("shutdown", &self.shutdown)
            .finish_non_exhaustive()
    }
}

impl ChildSpec {
    /// A permanent child named `id` started by `start`, stopped with a
    /// 5-second shutdown timeout (OTP's defaults for a worker).
    ///
    /// ```
    /// use erlangen_runtime::supervisor::{ChildSpec, Restart};
    /// let spec = ChildSpec::new("worker", |ctx| Ok(ctx.spawn(|ctx| { ctx.receive(); })))
    ///     .restart(Restart::Transient);
    /// assert_eq!(spec.restart, Restart::Transient);
    /// ```
    pub fn new(
        id: &str,
        start: impl Fn(&Ctx) -> Result<Pid, Error> + Send + Sync + 'static,
    ) -> ChildSpec {
        ChildSpec {
            id: id.to_owned(),
            start: Arc::new(start),
            restart: Restart::Permanent,
            shutdown: Shutdown::Timeout(SHUTDOWN_TIMEOUT_DEFAULT),
        }
    }

    /// When it is started again.
    pub fn restart(mut self, restart: Restart) -> ChildSpec {
        self.restart = restart;
        self
    }

    /// How it is stopped.
    pub fn shutdown(mut self, shutdown: Shutdown) -> ChildSpec {
        self.shutdown = shutdown;
        self
    }
}

pub use crate::config::{
    INTENSITY_DEFAULT, PERIOD_DEFAULT, SHUTDOWN_TIMEOUT_DEFAULT, SUPERVISOR_START_TIMEOUT,
};

/// A supervisor's children and policy.
#[derive(Clone, Debug)]
pub struct SupervisorSpec {
    /// Which children a restart takes with it.
    pub strategy: Strategy,
    /// At most this many restarts…
    pub intensity: u32,
    /// …within this period, or the supervisor ends with `shutdown`.
    pub period: Duration,
    /// The children, started in this order and stopped in reverse.
    pub children: Vec<ChildSpec>,
}

impl SupervisorSpec {
    /// A spec with `strategy`, OTP's default intensity (1 restart in 5 s)
    /// and no children yet.
    ///
    /// ```
    /// use erlangen_runtime::supervisor::{SupervisorSpec, Strategy};
    /// let spec = SupervisorSpec::new(Strategy::OneForOne).intensity(3, std::time::Duration::from_secs(1));
    /// assert_eq!(spec.intensity, 3);
    /// ```
    pub fn new(strategy: Strategy) -> SupervisorSpec {
        SupervisorSpec {
            strategy,
            intensity: INTENSITY_DEFAULT,
            period: PERIOD_DEFAULT,
            children: Vec::new(),
        }
    }

    /// The restart intensity.
    pub fn intensity(mut self, restarts: u32, period: Duration) -> SupervisorSpec {
        self.intensity = restarts;
        self.period = period;
        self
    }

    /// Adds a child (started after those added before).
    pub fn child(mut self, child: ChildSpec) -> SupervisorSpec {
        self.children.push(child);
        self
    }
}

/// Sent to a child stopped with `Shutdown::Timeout`: end now (it is killed
/// when the timeout passes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShutdownRequest;

/// What a supervisor answers, by [`Ctx::call`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum SupervisorRequest {
    /// Answered with `Vec<ChildInfo>`, in start order.
    WhichChildren,
    /// Answered with [`ChildCounts`].
    CountChildren,
    /// Stops the child `id` (it stays in the spec): `Result<(), Error>`.
    TerminateChild(String),
    /// Starts the stopped child `id` again: `Result<Pid, Error>`.
    RestartChild(String),
    /// Removes the stopped child `id` from the spec: `Result<(), Error>`.
    DeleteChild(String),
}

/// Starts a new child (`Ctx::call` with this; answered with
/// `Result<Pid, Error>`): a supervisor whose children are added at run time
/// is OTP's dynamic (simple-one-for-one) supervisor.
#[derive(Debug)]
pub struct StartChild(pub ChildSpec);

/// One child as `WhichChildren` reports it.
#[derive(Clone, Debug)]
pub struct ChildInfo {
    /// Its id.
    pub id: String,
    /// Its pid, if it runs.
    pub pid: Option<Pid>,
    /// Its restart type.
    pub restart: Restart,
}

/// What `CountChildren` reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChildCounts {
    /// Children in the spec.
    pub specs: usize,
    /// Children running.
    pub active: usize,
}

/// Starts a supervisor for `spec`, monitored by the calling agent
/// (Erlangen's monitor: the caller's end stops the supervisor and its
/// children; the supervisor's end is a `Down` to the caller). Returns once
/// every child has started, or the first failure.
///
/// ```
/// use erlangen_runtime::*;
/// use erlangen_runtime::supervisor::*;
/// use std::time::Duration;
/// let rt = Runtime::builder().workers(1).build().unwrap();
/// let restarted = rt.run(|ctx| {
///     let spec = SupervisorSpec::new(Strategy::OneForOne).child(ChildSpec::new("echo", |ctx| {
///         let pid = ctx.spawn(|ctx| { ctx.receive(); panic!("crash"); });
///         ctx.register_pid("echo", &pid)?;
///         Ok(pid)
///     }));
///     let sup = start_supervisor(ctx, spec).unwrap();
///     let first = ctx.whereis("echo").unwrap();
///     ctx.send(&first, ());
///     loop {
///         match ctx.whereis("echo") {
///             Some(now) if now != first => break true,
///             _ => ctx.sleep(Duration::from_millis(1)),
///         }
///     }
/// });
/// assert!(restarted.unwrap());
/// ```
pub fn start_supervisor(ctx: &Ctx, spec: SupervisorSpec) -> Result<Pid, Error> {
    let options = SpawnOptions::new().monitor();
    let started = ctx.spawn_and_await::<Result<(), Error>, _>(
        options,
        SUPERVISOR_START_TIMEOUT,
        move |ctx, starter| {
            let mut supervisor = Supervisor::new(spec);
            let started: Result<(), Error> = supervisor.start_all(ctx);
            let ok = started.is_ok();
            ctx.reply(&starter, started);
            if ok {
                supervisor.serve(ctx);
            }
        },
    );
    let (sup, started) = started.map_err(|e| e.into_error("supervisor"))?;
    started.map(|()| sup)
}

/// One child, as the supervisor keeps it.
struct Child {
    spec: ChildSpec,
    pid: Option<Pid>,
}

/// The supervisor agent's state.
struct Supervisor {
    strategy: Strategy,
    intensity: u32,
    period: Duration,
    children: Vec<Child>,
    restarts: Vec<Instant>,
}

impl Supervisor {
    fn new(spec: SupervisorSpec) -> Supervisor {
        Supervisor {
            strategy: spec.strategy,
            intensity: spec.intensity,
            period: spec.period,
            children: spec
                .children
                .into_iter()
                .map(|spec| Child { spec, pid: None })
                .collect(),
            restarts: Vec::new(),
        }
    }

    /// Step 1.
    fn start_all(&mut self, ctx: &Ctx) -> Result<(), Error> {
        for index in 0..self.children.len() {
            if let Err(error) = self.start_child(ctx, index) {
                self.stop_from(ctx, 0);
                return Err(error);
            }
        }
        Ok(())
    }

    fn start_child(&mut self, ctx: &Ctx, index: usize) -> Result<Pid, Error> {
        let pid = (self.children[index].spec.start)(ctx)?;
        ctx.monitor(&pid)?;
        self.children[index].pid = Some(pid.clone());
        Ok(pid)
    }

    /// Steps 2 to 5, until the supervisor ends.
    fn serve(&mut self, ctx: &Ctx) {
        loop {
            let message = ctx.receive();
            let message = match message.downcast::<Down>() {
                Ok(down) => {
                    if !self.child_ended(ctx, &down) {
                        return;
                    }
                    continue;
                }
                Err(message) => message,
            };
            let message = match message.downcast::<Call<SupervisorRequest>>() {
                Ok(call) => {
                    self.answer(ctx, call);
                    continue;
                }
                Err(message) => message,
            };
            if message.downcast_ref::<ShutdownRequest>().is_some() {
                // Its own supervisor stops it: children last-started first.
                self.stop_from(ctx, 0);
                return;
            }
            if let Ok(call) = message.downcast::<Call<StartChild>>() {
                let Call { from, request } = call;
                let result = if self.children.iter().any(|c| c.spec.id == request.0.id) {
                    Err(Error::NameTaken(request.0.id.clone()))
                } else {
                    self.children.push(Child {
                        spec: request.0,
                        pid: None,
                    });
                    let index = self.children.len() - 1;
                    let started = self.start_child(ctx, index);
                    if started.is_err() {
                        self.children.pop();
                    }
                    started
                };
                ctx.reply(&from, result);
            }
            // Anything else is not for a supervisor: dropped, as OTP logs
            // and drops unexpected messages.
        }
    }

    /// Step 2: a monitored child ended. Returns false when the supervisor
    /// must end (step 3).
    fn child_ended(&mut self, ctx: &Ctx, down: &Down) -> bool {
        let Some(index) = self
            .children
            .iter()
            .position(|c| c.pid.as_ref() == Some(&down.pid))
        else {
            return true;
        };
        self.children[index].pid = None;
        let restart = match self.children[index].spec.restart {
            Restart::Permanent => true,
            Restart::Transient => abnormal(&down.status),
            Restart::Temporary => {
                self.children.remove(index);
                return true;
            }
        };
        if !restart {
            return true;
        }
        self.count_restart(ctx, index);
        let (first, last) = match self.strategy {
            Strategy::OneForOne => (index, index + 1),
            Strategy::OneForAll => (0, self.children.len()),
            Strategy::RestForOne => (index, self.children.len()),
        };
        self.stop_range(ctx, first, last);
        for i in first..last {
            // A child that cannot start is tried again, each attempt
            // counted as a restart (OTP's rule): past the intensity the
            // supervisor ends.
            while self.start_child(ctx, i).is_err() {
                self.count_restart(ctx, i);
            }
        }
        true
    }

    /// Counts a restart of child `index`; past the intensity within the
    /// period the supervisor stops every child and ends (step 3).
    fn count_restart(&mut self, ctx: &Ctx, index: usize) {
        let now = ctx.now();
        self.restarts
            .retain(|at| now.duration_since(*at) < self.period);
        self.restarts.push(now);
        if self.restarts.len() > self.intensity as usize {
            tracing::error!(
                supervisor = %ctx.pid(),
                child = %self.children[index].spec.id,
                restarts = self.restarts.len(),
                "erlangen: a supervisor's restart intensity was exceeded; it shuts down"
            );
            self.stop_from(ctx, 0);
            ctx.exit(ExitReason::Shutdown);
        }
    }

    /// Stops the children from `first` on, in reverse order.
    fn stop_from(&mut self, ctx: &Ctx, first: usize) {
        let last = self.children.len();
        self.stop_range(ctx, first, last);
    }

    /// Stops the running children in `first..last`, last first (step 4).
    fn stop_range(&mut self, ctx: &Ctx, first: usize, last: usize) {
        for index in (first..last).rev() {
            if let Some(pid) = self.children[index].pid.take() {
                stop_child(ctx, &pid, self.children[index].spec.shutdown);
            }
        }
    }

    /// Step 5.
    fn answer(&mut self, ctx: &Ctx, call: Call<SupervisorRequest>) {
        let Call { from, request } = call;
        let position = |children: &[Child], id: &str| children.iter().position(|c| c.spec.id == id);
        match request {
            SupervisorRequest::WhichChildren => {
                let infos: Vec<ChildInfo> = self
                    .children
                    .iter()
                    .map(|c| ChildInfo {
                        id: c.spec.id.clone(),
                        pid: c.pid.clone(),
                        restart: c.spec.restart,
                    })
                    .collect();
                ctx.reply(&from, infos);
            }
            SupervisorRequest::CountChildren => {
                let counts = ChildCounts {
                    specs: self.children.len(),
                    active: self.children.iter().filter(|c| c.pid.is_some()).count(),
                };
                ctx.reply(&from, counts);
            }
            SupervisorRequest::TerminateChild(id) => {
                let result = match position(&self.children, &id) {
                    Some(index) => {
                        self.stop_range(ctx, index, index + 1);
                        Ok(())
                    }
                    None => Err(Error::NotRegistered(id)),
                };
                ctx.reply(&from, result);
            }
            SupervisorRequest::RestartChild(id) => {
                let result = match position(&self.children, &id) {
                    Some(index) if self.children[index].pid.is_none() => {
                        self.start_child(ctx, index)
                    }
                    Some(_) => Err(Error::InvalidConfig(format!("child {id:?} is running"))),
                    None => Err(Error::NotRegistered(id)),
                };
                ctx.reply(&from, result);
            }
            SupervisorRequest::DeleteChild(id) => {
                let result = match position(&self.children, &id) {
                    Some(index) if self.children[index].pid.is_none() => {
                        self.children.remove(index);
                        Ok(())
                    }
                    Some(_) => Err(Error::InvalidConfig(format!("child {id:?} is running"))),
                    None => Err(Error::NotRegistered(id)),
                };
                ctx.reply(&from, result);
            }
        }
    }
}

/// Whether an exit status calls for a transient child's restart.
fn abnormal(status: &ExitStatus) -> bool {
    !matches!(
        status,
        ExitStatus::Ok(_) | ExitStatus::Exit(ExitReason::Shutdown)
    )
}

/// Step 4 for one child: stops it and waits for its `Down` (the
/// supervisor's monitor of it), taking that `Down` out of the mailbox.
fn stop_child(ctx: &Ctx, pid: &Pid, shutdown: Shutdown) {
    let is_its_down = |m: &Message| m.downcast_ref::<Down>().is_some_and(|d| d.pid == *pid);
    match shutdown {
        Shutdown::BrutalKill => ctx.kill(pid, ExitReason::Kill),
        Shutdown::Timeout(timeout) => {
            ctx.send(pid, ShutdownRequest);
            if ctx.receive_match_timeout(is_its_down, timeout).is_ok() {
                return;
            }
            ctx.kill(pid, ExitReason::Kill);
        }
    }
    // Its Down comes: a kill takes effect at the child's next runtime call
    // (at once if it waits); a child that makes none holds its worker,
    // which the watchdog reports.
    let _ = ctx.receive_match(is_its_down);
}
