//! Supervisors, with cases ported from OTP's `supervisor_SUITE` (each names
//! its source case).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use erlangen_runtime::supervisor::{
    start_supervisor, ChildCounts, ChildInfo, ChildSpec, Restart, Shutdown, ShutdownRequest,
    StartChild, Strategy, SupervisorRequest, SupervisorSpec,
};
use erlangen_runtime::{Ctx, Down, Error, ExitReason, ExitStatus, Pid};

use crate::support::{runtime, HANG_GUARD};

/// What a test child does on each message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    /// Return normally.
    Stop,
    /// Panic.
    Crash,
}

/// A child spec that reports "start:id" when started; its child obeys
/// `Order`s and reports
/// "stop:id" on a `ShutdownRequest` (and returns, unless `ignores`).
fn child(id: &str, events: &Log, restart: Restart, ignores: bool) -> ChildSpec {
    let (id, events) = (id.to_owned(), events.clone());
    ChildSpec::new(&id.clone(), move |ctx: &Ctx| {
        let (id, events) = (id.clone(), events.clone());
        // Started means its start function ran (OTP's start order), which
        // is on the supervisor, in order; the child may run later.
        events.push(format!("start:{id}"));
        let pid = ctx.spawn(move |ctx| loop {
            let message = ctx.receive();
            if message.downcast_ref::<ShutdownRequest>().is_some() {
                events.push(format!("stop:{id}"));
                if ignores {
                    continue;
                }
                return;
            }
            match message.downcast::<Order>() {
                Ok(Order::Stop) => return,
                Ok(Order::Crash) => panic!("{id} crashes on purpose"),
                Err(_) => {}
            }
        });
        Ok(pid)
    })
    .restart(restart)
    .shutdown(Shutdown::Timeout(Duration::from_millis(200)))
}

/// Events the test children report, in order.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<VecDeque<String>>>);

impl Log {
    fn push(&self, event: String) {
        self.0.lock().unwrap().push_back(event);
    }
}

/// The next event, or a panic after the hang guard.
fn next(ctx: &Ctx, events: &Log) -> String {
    let start = std::time::Instant::now();
    loop {
        if let Some(event) = events.0.lock().unwrap().pop_front() {
            return event;
        }
        assert!(start.elapsed() < HANG_GUARD, "an event comes");
        ctx.sleep(Duration::from_millis(1));
    }
}

/// Whether no event comes for a little while (a negative check: it can
/// only pass wrongly, never fail wrongly, on a slow machine).
fn quiet(ctx: &Ctx, events: &Log) -> bool {
    ctx.sleep(Duration::from_millis(100));
    events.0.lock().unwrap().is_empty()
}

fn children(ctx: &Ctx, sup: &Pid) -> Vec<ChildInfo> {
    ctx.call(sup, SupervisorRequest::WhichChildren, HANG_GUARD)
        .unwrap()
        .downcast::<Vec<ChildInfo>>()
        .unwrap()
}

fn pid_of(ctx: &Ctx, sup: &Pid, id: &str) -> Option<Pid> {
    children(ctx, sup)
        .into_iter()
        .find(|c| c.id == id)
        .and_then(|c| c.pid)
}

#[test]
fn a_permanent_child_is_restarted_after_a_normal_and_an_abnormal_exit() {
    // supervisor_SUITE: permanent_normal, permanent_abnormal.
    let events = Log::default();
    let tx = events.clone();
    let rt = runtime(2);
    rt.run(move |ctx| {
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .intensity(10, Duration::from_secs(60))
            .child(child("a", &tx, Restart::Permanent, false));
        let sup = start_supervisor(ctx, spec).unwrap();
        assert_eq!(next(ctx, &events), "start:a");
        for order in [Order::Stop, Order::Crash] {
            let pid = pid_of(ctx, &sup, "a").unwrap();
            ctx.send(&pid, order);
            assert_eq!(next(ctx, &events), "start:a", "restarted after {order:?}");
        }
    })
    .unwrap();
}

#[test]
fn a_transient_child_is_restarted_only_after_an_abnormal_exit() {
    // supervisor_SUITE: transient_normal, transient_abnormal.
    let events = Log::default();
    let tx = events.clone();
    let rt = runtime(2);
    rt.run(move |ctx| {
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .intensity(10, Duration::from_secs(60))
            .child(child("t", &tx, Restart::Transient, false));
        let sup = start_supervisor(ctx, spec).unwrap();
        assert_eq!(next(ctx, &events), "start:t");
        ctx.send(&pid_of(ctx, &sup, "t").unwrap(), Order::Crash);
        assert_eq!(next(ctx, &events), "start:t");
        ctx.send(&pid_of(ctx, &sup, "t").unwrap(), Order::Stop);
        assert!(quiet(ctx, &events), "not restarted after a normal exit");
        let counts = ctx
            .call(&sup, SupervisorRequest::CountChildren, HANG_GUARD)
            .unwrap()
            .downcast::<ChildCounts>()
            .unwrap();
        assert_eq!(
            counts,
            ChildCounts {
                specs: 1,
                active: 0
            }
        );
    })
    .unwrap();
}

#[test]
fn a_temporary_child_is_never_restarted_and_is_forgotten() {
    // supervisor_SUITE: temporary_normal, temporary_abnormal.
    let events = Log::default();
    let tx = events.clone();
    let rt = runtime(2);
    rt.run(move |ctx| {
        let spec = SupervisorSpec::new(Strategy::OneForOne).child(child(
            "x",
            &tx,
            Restart::Temporary,
            false,
        ));
        let sup = start_supervisor(ctx, spec).unwrap();
        assert_eq!(next(ctx, &events), "start:x");
        ctx.send(&pid_of(ctx, &sup, "x").unwrap(), Order::Crash);
        assert!(quiet(ctx, &events), "not restarted");
        assert!(children(ctx, &sup).is_empty(), "and forgotten");
    })
    .unwrap();
}

#[test]
fn exceeding_the_restart_intensity_ends_the_supervisor_with_shutdown() {
    // supervisor_SUITE: one_for_one_escalation (intensity 1 in a long
    // period: the second restart is one too many).
    let events = Log::default();
    let tx = events.clone();
    let rt = runtime(2);
    let status = rt
        .run(move |ctx| {
            let spec = SupervisorSpec::new(Strategy::OneForOne)
                .intensity(1, Duration::from_secs(3600))
                .child(child("c", &tx, Restart::Permanent, false));
            let sup = start_supervisor(ctx, spec).unwrap();
            assert_eq!(next(ctx, &events), "start:c");
            ctx.send(&pid_of(ctx, &sup, "c").unwrap(), Order::Crash);
            assert_eq!(next(ctx, &events), "start:c");
            ctx.send(&pid_of(ctx, &sup, "c").unwrap(), Order::Crash);
            let down = ctx
                .receive_match_timeout(|m| m.downcast_ref::<Down>().is_some(), HANG_GUARD)
                .unwrap()
                .downcast::<Down>()
                .unwrap();
            assert_eq!(down.pid, sup);
            down.status
        })
        .unwrap();
    assert!(
        matches!(status, ExitStatus::Exit(ExitReason::Shutdown)),
        "{status:?}"
    );
}

#[test]
fn rest_for_one_restarts_the_later_siblings_in_order() {
    // supervisor_SUITE: rest_for_one.
    let events = Log::default();
    let tx = events.clone();
    let rt = runtime(2);
    rt.run(move |ctx| {
        let spec = SupervisorSpec::new(Strategy::RestForOne)
            .intensity(10, Duration::from_secs(60))
            .child(child("a", &tx, Restart::Permanent, false))
            .child(child("b", &tx, Restart::Permanent, false))
            .child(child("c", &tx, Restart::Permanent, false));
        let sup = start_supervisor(ctx, spec).unwrap();
        let started: Vec<String> = (0..3).map(|_| next(ctx, &events)).collect();
        assert_eq!(started, ["start:a", "start:b", "start:c"]);
        let a = pid_of(ctx, &sup, "a").unwrap();
        ctx.send(&pid_of(ctx, &sup, "b").unwrap(), Order::Crash);
        // c is stopped (after b died), then b and c start again, in order.
        let seen: Vec<String> = (0..3).map(|_| next(ctx, &events)).collect();
        assert_eq!(seen, ["stop:c", "start:b", "start:c"]);
        assert_eq!(
            pid_of(ctx, &sup, "a"),
            Some(a),
            "a earlier sibling is untouched"
        );
    })
    .unwrap();
}

#[test]
fn one_for_all_restarts_every_child() {
    // supervisor_SUITE: one_for_all.
    let events = Log::default();
    let tx = events.clone();
    let rt = runtime(2);
    rt.run(move |ctx| {
        let spec = SupervisorSpec::new(Strategy::OneForAll)
            .intensity(10, Duration::from_secs(60))
            .child(child("a", &tx, Restart::Permanent, false))
            .child(child("b", &tx, Restart::Permanent, false));
        let sup = start_supervisor(ctx, spec).unwrap();
        assert_eq!(
            (next(ctx, &events), next(ctx, &events)),
            ("start:a".into(), "start:b".into())
        );
        ctx.send(&pid_of(ctx, &sup, "b").unwrap(), Order::Crash);
        let seen: Vec<String> = (0..3).map(|_| next(ctx, &events)).collect();
        assert_eq!(seen, ["stop:a", "start:a", "start:b"]);
    })
    .unwrap();
}

#[test]
fn a_child_that_ignores_its_shutdown_is_killed_when_the_timeout_passes() {
    // supervisor_SUITE: sup_stop_timeout (a child that traps exits and
    // ignores the shutdown is killed after its shutdown time).
    let events = Log::default();
    let tx = events.clone();
    let rt = runtime(2);
    rt.run(move |ctx| {
        let spec = SupervisorSpec::new(Strategy::OneForOne).child(child(
            "stubborn",
            &tx,
            Restart::Permanent,
            true,
        ));
        let sup = start_supervisor(ctx, spec).unwrap();
        assert_eq!(next(ctx, &events), "start:stubborn");
        let pid = pid_of(ctx, &sup, "stubborn").unwrap();
        let done = ctx
            .call(
                &sup,
                SupervisorRequest::TerminateChild("stubborn".into()),
                HANG_GUARD,
            )
            .unwrap()
            .downcast::<Result<(), Error>>()
            .unwrap();
        assert!(done.is_ok());
        assert_eq!(next(ctx, &events), "stop:stubborn", "it was asked first");
        assert!(!ctx.agents().contains(&pid), "then killed");
        assert_eq!(pid_of(ctx, &sup, "stubborn"), None);
        let restarted = ctx
            .call(
                &sup,
                SupervisorRequest::RestartChild("stubborn".into()),
                HANG_GUARD,
            )
            .unwrap()
            .downcast::<Result<Pid, Error>>()
            .unwrap();
        assert!(restarted.is_ok());
        assert_eq!(next(ctx, &events), "start:stubborn");
    })
    .unwrap();
}

#[test]
fn a_supervisor_stops_its_children_in_reverse_start_order() {
    // supervisor_SUITE: sup_stop_infinity / the stop order of child_specs.
    let events = Log::default();
    let tx = events.clone();
    let rt = runtime(2);
    rt.run(move |ctx| {
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .child(child("a", &tx, Restart::Permanent, false))
            .child(child("b", &tx, Restart::Permanent, false))
            .child(child("c", &tx, Restart::Permanent, false));
        let sup = start_supervisor(ctx, spec).unwrap();
        for _ in 0..3 {
            next(ctx, &events);
        }
        ctx.send(&sup, ShutdownRequest);
        let stopped: Vec<String> = (0..3).map(|_| next(ctx, &events)).collect();
        assert_eq!(stopped, ["stop:c", "stop:b", "stop:a"]);
    })
    .unwrap();
}

#[test]
fn dynamic_children_are_started_listed_terminated_and_deleted() {
    // supervisor_SUITE: simple_one_for_one (children added at run time).
    let events = Log::default();
    let tx = events.clone();
    let rt = runtime(2);
    rt.run(move |ctx| {
        let sup = start_supervisor(ctx, SupervisorSpec::new(Strategy::OneForOne)).unwrap();
        for i in 0..5 {
            let spec = child(&format!("d{i}"), &tx, Restart::Temporary, false);
            let pid = ctx
                .call(&sup, StartChild(spec), HANG_GUARD)
                .unwrap()
                .downcast::<Result<Pid, Error>>()
                .unwrap();
            assert!(pid.is_ok());
            assert_eq!(next(ctx, &events), format!("start:d{i}"));
        }
        let twice = ctx
            .call(
                &sup,
                StartChild(child("d0", &tx, Restart::Temporary, false)),
                HANG_GUARD,
            )
            .unwrap()
            .downcast::<Result<Pid, Error>>()
            .unwrap();
        assert!(matches!(twice, Err(Error::NameTaken(_))), "ids are unique");
        assert_eq!(children(ctx, &sup).len(), 5);
        ctx.call(
            &sup,
            SupervisorRequest::TerminateChild("d3".into()),
            HANG_GUARD,
        )
        .unwrap();
        assert_eq!(next(ctx, &events), "stop:d3");
        let deleted = ctx
            .call(
                &sup,
                SupervisorRequest::DeleteChild("d3".into()),
                HANG_GUARD,
            )
            .unwrap()
            .downcast::<Result<(), Error>>()
            .unwrap();
        assert!(deleted.is_ok());
        let ids: Vec<String> = children(ctx, &sup).into_iter().map(|c| c.id).collect();
        assert_eq!(ids, ["d0", "d1", "d2", "d4"]);
    })
    .unwrap();
}

#[test]
fn a_three_level_tree_survives_a_thousand_random_crashes() {
    // supervisor_SUITE: the spirit of its stress cases: every crash is
    // followed by a restart under the same name, and nothing is orphaned.
    const LEAVES: usize = 4;
    let rt = runtime(2);
    let (alive, agents) = rt
        .run(|ctx| {
            let names: Arc<Vec<String>> = Arc::new(
                (0..2)
                    .flat_map(|m| (0..LEAVES).map(move |l| format!("leaf-{m}-{l}")))
                    .collect(),
            );
            let middle = |m: usize| {
                ChildSpec::new(&format!("mid-{m}"), move |ctx: &Ctx| {
                    let mut spec = SupervisorSpec::new(Strategy::OneForOne)
                        .intensity(1_000_000, Duration::from_secs(1));
                    for l in 0..LEAVES {
                        let name = format!("leaf-{m}-{l}");
                        spec = spec.child(ChildSpec::new(&name.clone(), move |ctx: &Ctx| {
                            let pid = ctx.spawn(|ctx| loop {
                                if ctx.receive().downcast_ref::<Order>().is_some() {
                                    // An abnormal exit (a panic would print
                                    // a thousand reports).
                                    ctx.exit(ExitReason::other("a random crash"));
                                }
                            });
                            ctx.register_pid(&name, &pid)?;
                            Ok(pid)
                        }));
                    }
                    start_supervisor(ctx, spec)
                })
            };
            let top = SupervisorSpec::new(Strategy::OneForOne)
                .intensity(1_000_000, Duration::from_secs(1))
                .child(middle(0))
                .child(middle(1));
            let _top = start_supervisor(ctx, top).unwrap();
            let mut seed = 0x1234_5678_9abc_def0u64;
            for _ in 0..1_000 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let name = &names[(seed as usize) % names.len()];
                let start = std::time::Instant::now();
                let victim = loop {
                    if let Some(pid) = ctx.whereis(name) {
                        break pid;
                    }
                    assert!(start.elapsed() < HANG_GUARD, "{name} comes back");
                    ctx.sleep(Duration::from_micros(200));
                };
                ctx.send(&victim, Order::Crash);
                // Back under its name, as a new agent.
                let start = std::time::Instant::now();
                while ctx.whereis(name).is_none_or(|now| now == victim) {
                    assert!(start.elapsed() < HANG_GUARD, "{name} is restarted");
                    ctx.sleep(Duration::from_micros(200));
                }
            }
            let alive = names.iter().filter(|n| ctx.whereis(n).is_some()).count();
            // Root + top + 2 middles + 8 leaves: no orphan, no duplicate.
            (alive, ctx.agents().len())
        })
        .unwrap();
    assert_eq!(alive, 2 * LEAVES, "every name is registered once");
    assert_eq!(agents, 1 + 1 + 2 + 2 * LEAVES, "no orphaned agent");
}
