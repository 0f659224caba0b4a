//! A peer node in another OS process that dies, stops, or restarts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use erlangen_net::AgentId;
use erlangen_runtime::{Down, ExitReason, ExitStatus, SpawnOptions};

use crate::support::{node, port_mapper, unique, ChildNode, Ping, HANG_GUARD};

fn signal(child: &ChildNode, signal: i32) {
    // SAFETY: kill(2) on a child process we started and have not reaped.
    assert_eq!(unsafe { libc::kill(child.os_pid(), signal) }, 0);
}

#[test]
fn a_peer_killed_mid_stream_fires_noconnection_on_every_link_and_monitor() {
    let mapper = port_mapper();
    let (rt_a, node_a) = node(&mapper, &unique("a"));
    let child = ChildNode::start(&mapper, &unique("child"));
    let b = child.name.clone();
    let node_a = Arc::new(node_a);
    let (ready_tx, ready) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        let node = node_a.clone();
        let watcher = scope.spawn(move || {
            rt_a.run(move |ctx| {
                let watched = node
                    .spawn(ctx, &b, "wait", (), SpawnOptions::new().monitor())
                    .unwrap();
                let me = ctx.pid();
                let (node2, b2) = (node.clone(), b.clone());
                let linked = ctx
                    .spawn_with(SpawnOptions::new().monitor(), move |ctx| {
                        let far = node2
                            .spawn(ctx, &b2, "sink", (), SpawnOptions::new().link())
                            .unwrap();
                        ctx.send(&me, ());
                        // Keep a stream going until the peer dies.
                        loop {
                            ctx.send(&far, String::from("tick"));
                            ctx.sleep(Duration::from_millis(1));
                        }
                    })
                    .unwrap();
                ctx.receive_match(|m| m.is::<()>());
                ready_tx.send(()).unwrap();
                let mut statuses = Vec::new();
                for _ in 0..2 {
                    let down = ctx
                        .receive_timeout(HANG_GUARD)
                        .unwrap()
                        .downcast::<Down>()
                        .unwrap();
                    statuses.push((down.pid == watched, down.pid == linked, down.status));
                }
                statuses
            })
        });
        ready.recv_timeout(HANG_GUARD).unwrap();
        let killed_at = Instant::now();
        signal(&child, libc::SIGKILL);
        let statuses = watcher.join().unwrap().unwrap();
        let took = killed_at.elapsed();
        let monitor = statuses.iter().find(|s| s.0).expect("the monitor fired");
        assert!(
            matches!(monitor.2, ExitStatus::Exit(ExitReason::NoConnection)),
            "{:?}",
            monitor.2
        );
        let link = statuses.iter().find(|s| s.1).expect("the link fired");
        assert!(
            matches!(link.2, ExitStatus::Exit(ExitReason::NoConnection)),
            "{:?}",
            link.2
        );
        // A closed socket is noticed at once, not after the heartbeat timeout
        // (2 s here): a hang guard, generous for a loaded machine.
        assert!(took < HANG_GUARD, "{took:?}");
    });
}

#[test]
fn a_stopped_peer_is_lost_after_the_heartbeat_timeout_and_a_fresh_connection_works_after() {
    let mapper = port_mapper();
    let (rt_a, node_a) = node(&mapper, &unique("a"));
    let child = ChildNode::start(&mapper, &unique("child"));
    let b = child.name.clone();
    let node_a = Arc::new(node_a);
    let node = node_a.clone();
    let (ready_tx, ready) = std::sync::mpsc::channel();
    let (stopped_tx, stopped_rx) = std::sync::mpsc::channel::<Instant>();
    let rt_a = &rt_a;
    let (elapsed, status) = std::thread::scope(|scope| {
        let watcher = scope.spawn(move || {
            rt_a.run(move |ctx| {
                node.spawn(ctx, &b, "wait", (), SpawnOptions::new().monitor())
                    .unwrap();
                ready_tx.send(()).unwrap();
                let down = ctx
                    .receive_timeout(HANG_GUARD)
                    .unwrap()
                    .downcast::<Down>()
                    .unwrap();
                let stopped_at = stopped_rx.recv().unwrap();
                (stopped_at.elapsed(), down.status)
            })
        });
        ready.recv_timeout(HANG_GUARD).unwrap();
        let at = Instant::now();
        signal(&child, libc::SIGSTOP);
        stopped_tx.send(at).unwrap();
        watcher.join().unwrap().unwrap()
    });
    assert!(
        matches!(status, ExitStatus::Exit(ExitReason::NoConnection)),
        "{status:?}"
    );
    // Not before the silence timeout (2 s in these tests) counted from the
    // peer's last sign of life, which is at most one heartbeat interval
    // (200 ms) before the stop: a stopped peer is only silent, not gone.
    assert!(elapsed >= Duration::from_millis(1800), "{elapsed:?}");
    signal(&child, libc::SIGCONT);
    // After SIGCONT the stale connection is closed and a fresh one works.
    let node = node_a.clone();
    let b = child.name.clone();
    let answer = rt_a
        .run(move |ctx| {
            node.send_named(
                ctx,
                &b,
                "echo",
                Ping {
                    reply_to: ctx.pid(),
                    n: 1,
                },
            );
            ctx.receive_timeout(HANG_GUARD)
                .ok()
                .and_then(|m| m.downcast::<u64>().ok())
        })
        .unwrap();
    assert_eq!(answer, Some(2), "a fresh connection answers");
}

#[test]
fn ids_of_a_restarted_peer_are_stale_and_new_ids_work() {
    let mapper = port_mapper();
    let (rt_a, node_a) = node(&mapper, &unique("a"));
    let name = unique("child");
    let first = ChildNode::start(&mapper, &name);
    let b = first.name.clone();
    let node_a = Arc::new(node_a);
    let node = node_a.clone();
    let old: AgentId = {
        let b = b.clone();
        let node = node.clone();
        let pid = rt_a
            .run(move |ctx| {
                node.spawn(ctx, &b, "wait", (), SpawnOptions::new())
                    .unwrap()
            })
            .unwrap();
        node_a.id_of(&pid).unwrap()
    };
    drop(first);
    let second = ChildNode::start(&mapper, &name);
    assert_eq!(second.name, b);
    let node = node_a.clone();
    let dropped_before = node_a.dropped();
    let old_pid = node_a.pid_of(&old);
    let (link_status, monitor_status, fresh) = rt_a
        .run(move |ctx| {
            // A new id first, so that the connection to the new run is up.
            let fresh = node.spawn(ctx, &b, "double", 4u64, SpawnOptions::new().monitor());
            let fresh_value = ctx
                .receive_timeout(HANG_GUARD)
                .unwrap()
                .downcast::<Down>()
                .unwrap();
            let _ = fresh;
            ctx.send(&old_pid, String::from("to the old run"));
            ctx.monitor(&old_pid).unwrap();
            let monitor = ctx
                .receive_timeout(HANG_GUARD)
                .unwrap()
                .downcast::<Down>()
                .unwrap()
                .status;
            let target = old_pid.clone();
            let linked = ctx
                .spawn_with(SpawnOptions::new().monitor(), move |ctx| {
                    ctx.link(&target).unwrap();
                    ctx.receive();
                })
                .unwrap();
            let down = ctx
                .receive_timeout(HANG_GUARD)
                .unwrap()
                .downcast::<Down>()
                .unwrap();
            assert_eq!(down.pid, linked);
            (down.status, monitor, fresh_value.status)
        })
        .unwrap();
    assert_eq!(fresh.value().unwrap().downcast_ref::<u64>(), Some(&8));
    assert!(
        matches!(monitor_status, ExitStatus::Exit(ExitReason::NoProc)),
        "{monitor_status:?}"
    );
    assert!(
        matches!(link_status, ExitStatus::Exit(ExitReason::NoProc)),
        "{link_status:?}"
    );
    assert!(
        node_a.dropped() > dropped_before,
        "the stale send is counted"
    );
}
