//! Calls and observing monitors across nodes: the same outcomes as on one
//! node (runtime/tests/it/calls.rs), plus `noconnection` when the server's
//! node is lost. Each runs against a peer node in another process.

use std::time::Duration;

use erlangen_runtime::{CallError, ExitReason, ExitStatus, SpawnOptions, WatchDown};

use crate::support::{node, port_mapper, unique, ChildNode, HANG_GUARD};

#[test]
fn a_call_to_a_server_on_another_node_has_the_local_outcomes() {
    let mapper = port_mapper();
    let (rt, node) = node(&mapper, &unique("caller"));
    let child = ChildNode::start(&mapper, &unique("server"));
    let b = child.name.clone();
    let outcomes = rt
        .run(move |ctx| {
            let server = node
                .spawn(ctx, &b, "call_server", (), SpawnOptions::new())
                .unwrap();
            // A reply, filed under the call's tag behind unrelated messages.
            for n in 0..50u32 {
                ctx.send(&ctx.pid(), n);
            }
            let answered = ctx
                .call(&server, 41u64, HANG_GUARD)
                .unwrap()
                .downcast::<u64>()
                .unwrap();
            // A timeout, and its late reply discarded (a second call proves
            // the server answered it).
            let timeout = ctx.call(&server, 1_000u64, Duration::from_millis(1));
            let again = ctx.call(&server, 7u64, HANG_GUARD).unwrap();
            assert_eq!(again.downcast::<u64>().unwrap(), 8);
            let leftovers = ctx.flush();
            let late_kept = leftovers.iter().any(|m| m.downcast_ref::<u64>().is_some());
            // The server's end, at once.
            let ended = ctx.call(&server, 0u64, Duration::from_secs(3600));
            // A dead server: noproc at once.
            let dead = ctx.call(&server, 5u64, Duration::from_secs(3600));
            (answered, timeout, late_kept, leftovers.len(), ended, dead)
        })
        .unwrap();
    let (answered, timeout, late_kept, leftovers, ended, dead) = outcomes;
    assert_eq!(answered, 42);
    assert!(matches!(timeout, Err(CallError::Timeout)), "{timeout:?}");
    assert!(!late_kept, "the late reply was discarded");
    assert_eq!(leftovers, 50, "the unrelated messages stayed, untouched");
    match ended {
        Err(CallError::Exit(ExitStatus::Exit(reason))) => {
            assert_eq!(reason.to_string(), "asked to")
        }
        other => panic!("expected the server's exit, got {other:?}"),
    }
    assert!(matches!(dead, Err(CallError::NoProc)), "{dead:?}");
}

#[test]
fn a_call_whose_servers_node_is_killed_fails_with_noconnection_at_once() {
    let mapper = port_mapper();
    let (rt, node) = node(&mapper, &unique("caller"));
    let child = ChildNode::start(&mapper, &unique("doomed"));
    let b = child.name.clone();
    let os_pid = child.os_pid();
    let error = rt
        .run(move |ctx| {
            let server = node
                .spawn(ctx, &b, "call_server", (), SpawnOptions::new())
                .unwrap();
            ctx.call(&server, 1u64, HANG_GUARD).unwrap();
            // The server takes 200 ms over this one; its node dies first.
            let killer = ctx.spawn(move |ctx| {
                ctx.sleep(Duration::from_millis(50));
                // SAFETY: kill(2) on the child process we started.
                unsafe { libc::kill(os_pid, libc::SIGKILL) };
            });
            let _ = killer;
            ctx.call(&server, 1_000u64, Duration::from_secs(3600))
        })
        .unwrap();
    assert!(matches!(error, Err(CallError::NoConnection)), "{error:?}");
}

#[test]
fn a_call_by_name_on_another_node_finds_the_server_or_says_noproc_or_noconnection() {
    let mapper = port_mapper();
    let (rt, node) = node(&mapper, &unique("caller"));
    let child = ChildNode::start(&mapper, &unique("named"));
    let b = child.name.clone();
    let os_pid = child.os_pid();
    let (before, answered, lookup_lost, ended, after, lost) = rt
        .run(move |ctx| {
            // A node nobody registered: the error says so.
            let ghost: erlangen_net::NodeName =
                format!("localhost/{}", unique("ghost")).parse().unwrap();
            let why = node.whereis(ctx, &ghost, "kv", HANG_GUARD).unwrap_err();
            assert!(why.to_string().contains("no such node"), "{why}");
            // Nothing under the name yet: `whereis` says so, a call is noproc.
            let nobody = node.whereis(ctx, &b, "kv", HANG_GUARD).unwrap();
            assert!(nobody.is_none());
            let before = node.call_named(ctx, &b, "kv", 1u64, HANG_GUARD);
            let server = node
                .spawn(
                    ctx,
                    &b,
                    "named_call_server",
                    "kv".to_owned(),
                    SpawnOptions::new(),
                )
                .unwrap();
            ctx.call(&server, 1u64, HANG_GUARD).unwrap(); // registered by now
            assert_eq!(
                node.whereis(ctx, &b, "kv", HANG_GUARD).unwrap(),
                Some(server)
            );
            let answered = node
                .call_named(ctx, &b, "kv", 41u64, HANG_GUARD)
                .unwrap()
                .downcast::<u64>()
                .unwrap();
            // The server's end by name: its exit reason, then noproc.
            let ended = node.call_named(ctx, &b, "kv", 0u64, Duration::from_secs(3600));
            let after = node.call_named(ctx, &b, "kv", 5u64, Duration::from_secs(3600));
            // A node killed: noconnection, not a timeout.
            // SAFETY: kill(2) on the child process we started.
            unsafe { libc::kill(os_pid, libc::SIGKILL) };
            let lost = node.call_named(ctx, &b, "kv", 5u64, Duration::from_secs(3600));
            let lookup_lost = node.whereis(ctx, &b, "kv", Duration::from_secs(3600));
            (before, answered, lookup_lost, ended, after, lost)
        })
        .unwrap();
    assert!(matches!(before, Err(CallError::NoProc)), "{before:?}");
    assert_eq!(answered, 42);
    match ended {
        Err(CallError::Exit(ExitStatus::Exit(reason))) => {
            assert_eq!(reason.to_string(), "asked to")
        }
        other => panic!("expected the server's exit, got {other:?}"),
    }
    assert!(matches!(after, Err(CallError::NoProc)), "{after:?}");
    assert!(matches!(lost, Err(CallError::NoConnection)), "{lost:?}");
    let why = lookup_lost.unwrap_err().to_string();
    assert!(
        why.contains("noconnection") || why.contains("port mapper"),
        "{why}"
    );
}

#[test]
fn a_remote_watchers_exit_leaves_the_watched_agent_alive_and_a_watch_sees_its_end() {
    let mapper = port_mapper();
    let (rt, node) = node(&mapper, &unique("watcher"));
    let child = ChildNode::start(&mapper, &unique("watched"));
    let b = child.name.clone();
    let (answer, status) = rt
        .run(move |ctx| {
            let server = node
                .spawn(ctx, &b, "call_server", (), SpawnOptions::new())
                .unwrap();
            // Watchers that end normally, by panic and by kill.
            for how in 0..3 {
                let target = server.clone();
                let watcher = ctx.spawn(move |ctx| {
                    ctx.watch(&target).unwrap();
                    match how {
                        0 => {}
                        1 => panic!("the watcher panics"),
                        _ => {
                            ctx.receive();
                        }
                    }
                });
                let w = ctx.watch(&watcher).unwrap();
                if how == 2 {
                    ctx.kill(&watcher, ExitReason::Kill);
                }
                let down = ctx.receive_timeout(HANG_GUARD).unwrap();
                assert_eq!(down.downcast::<WatchDown>().unwrap().watch, w);
            }
            let answer = ctx
                .call(&server, 9u64, HANG_GUARD)
                .unwrap()
                .downcast::<u64>()
                .unwrap();
            let watch = ctx.watch(&server).unwrap();
            let _ = ctx.call(&server, 0u64, HANG_GUARD);
            let down = ctx
                .receive_match_timeout(|m| m.downcast_ref::<WatchDown>().is_some(), HANG_GUARD)
                .unwrap()
                .downcast::<WatchDown>()
                .unwrap();
            assert_eq!(down.watch, watch);
            (answer, down.status)
        })
        .unwrap();
    assert_eq!(answer, 10, "the watched server lived through its watchers");
    assert_eq!(
        status.reason().map(ToString::to_string).as_deref(),
        Some("asked to")
    );
}

#[test]
fn a_supervised_child_on_a_lost_node_exits_with_noconnection_and_is_restarted_elsewhere() {
    use erlangen_runtime::supervisor::{
        start_supervisor, ChildInfo, ChildSpec, Restart, Strategy, SupervisorRequest,
        SupervisorSpec,
    };
    use erlangen_runtime::Ctx;
    let mapper = port_mapper();
    let (rt, node) = node(&mapper, &unique("supervisor"));
    let child = ChildNode::start(&mapper, &unique("host"));
    let b = child.name.clone();
    let os_pid = child.os_pid();
    let node = std::sync::Arc::new(node);
    let (first, second, local_after) = rt
        .run(move |ctx| {
            // The child runs on the other node while it is reachable, and
            // here once it is not (a start function may choose).
            let spec = SupervisorSpec::new(Strategy::OneForOne)
                .intensity(5, Duration::from_secs(60))
                .child(
                    ChildSpec::new("worker", move |ctx: &Ctx| {
                        match node.spawn(ctx, &b, "wait", (), SpawnOptions::new()) {
                            Ok(pid) => Ok(pid),
                            Err(_) => Ok(ctx.spawn(|ctx| {
                                ctx.receive();
                            })),
                        }
                    })
                    .restart(Restart::Transient),
                );
            let sup = start_supervisor(ctx, spec).unwrap();
            let worker = |ctx: &Ctx| {
                ctx.call(&sup, SupervisorRequest::WhichChildren, HANG_GUARD)
                    .unwrap()
                    .downcast::<Vec<ChildInfo>>()
                    .unwrap()
                    .remove(0)
                    .pid
            };
            let first = worker(ctx).expect("running");
            let watch = ctx.watch(&first).unwrap();
            // SAFETY: kill(2) on the child process we started.
            unsafe { libc::kill(os_pid, libc::SIGKILL) };
            let down = ctx
                .receive_match_timeout(|m| m.downcast_ref::<WatchDown>().is_some(), HANG_GUARD)
                .unwrap()
                .downcast::<WatchDown>()
                .unwrap();
            assert_eq!(down.watch, watch);
            assert!(
                matches!(down.status, ExitStatus::Exit(ExitReason::NoConnection)),
                "{:?}",
                down.status
            );
            // noconnection is an abnormal exit: the transient child is
            // restarted, here this time.
            let start = std::time::Instant::now();
            let second = loop {
                match worker(ctx) {
                    Some(pid) if pid != first => break pid,
                    _ => {
                        assert!(start.elapsed() < HANG_GUARD, "the child is restarted");
                        ctx.sleep(Duration::from_millis(5));
                    }
                }
            };
            (first.is_remote(), second.clone(), !second.is_remote())
        })
        .unwrap();
    assert!(first, "the child ran on the other node");
    assert!(
        local_after,
        "and was restarted here after the loss: {second}"
    );
}
