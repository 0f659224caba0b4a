//! Links and monitors (erlangen.md §3.1 link/unlink, §4).

use std::time::Duration;

use erlangen_runtime::{Error, ExitReason, ExitStatus, Pid, SpawnOptions};

use crate::support::{recv_as, recv_down, runtime};

#[test]
fn linked_agent_dies_when_its_peer_panics() {
    let rt = runtime(2);
    let status = rt
        .run(|ctx| {
            let me = ctx.pid();
            let watcher = ctx
                .spawn_with(SpawnOptions::new().monitor(), move |ctx| {
                    let crasher = ctx
                        .spawn_with(SpawnOptions::new().link(), |ctx| {
                            ctx.receive();
                            panic!("boom");
                        })
                        .unwrap();
                    ctx.send(&me, crasher);
                    ctx.receive();
                })
                .unwrap();
            let crasher = recv_as::<Pid>(ctx);
            ctx.send(&crasher, ());
            let down = recv_down(ctx);
            assert_eq!(down.pid, watcher);
            down.status
        })
        .unwrap();
    let ExitStatus::Exit(ExitReason::Linked(inner)) = status else {
        panic!("{status}");
    };
    assert!(matches!(*inner, ExitStatus::Exit(ExitReason::Panic(ref m)) if m.contains("boom")));
}

#[test]
fn death_of_a_monitoring_agent_kills_the_monitored_agent() {
    let rt = runtime(2);
    let status = rt
        .run(|ctx| {
            let me = ctx.pid();
            let supervisor = ctx.spawn(move |ctx| {
                let child = ctx
                    .spawn_with(SpawnOptions::new().monitor(), |ctx| {
                        ctx.receive();
                    })
                    .unwrap();
                ctx.send(&me, child);
                ctx.receive();
                ctx.exit(ExitReason::other("supervisor quits"));
            });
            let child = recv_as::<Pid>(ctx);
            ctx.monitor(&child).unwrap();
            ctx.send(&supervisor, ());
            recv_down(ctx).status
        })
        .unwrap();
    let ExitStatus::Exit(ExitReason::Linked(inner)) = status else {
        panic!("{status}");
    };
    assert!(
        matches!(*inner, ExitStatus::Exit(ExitReason::Other(ref r)) if &**r == "supervisor quits")
    );
}

#[test]
fn monitor_receives_exit_of_panicking_agent() {
    let rt = runtime(1);
    let status = rt
        .run(|ctx| {
            ctx.spawn_with(SpawnOptions::new().monitor(), |_| -> u8 {
                panic!("kaputt")
            })
            .unwrap();
            recv_down(ctx).status
        })
        .unwrap();
    assert!(matches!(status, ExitStatus::Exit(ExitReason::Panic(ref m)) if m.contains("kaputt")));
}

#[test]
fn monitoring_a_dead_agent_delivers_noproc_at_once() {
    let rt = runtime(1);
    let ok = rt
        .run(|ctx| {
            let dead = ctx
                .spawn_with(SpawnOptions::new().monitor(), |_| ())
                .unwrap();
            recv_down(ctx);
            ctx.monitor(&dead).unwrap();
            let down = recv_down(ctx);
            down.pid == dead && matches!(down.status, ExitStatus::Exit(ExitReason::NoProc))
        })
        .unwrap();
    assert!(ok);
}

#[test]
fn linking_a_dead_agent_kills_the_caller_with_noproc() {
    let rt = runtime(1);
    let status = rt
        .run(|ctx| {
            let dead = ctx
                .spawn_with(SpawnOptions::new().monitor(), |_| ())
                .unwrap();
            recv_down(ctx);
            ctx.spawn_with(SpawnOptions::new().monitor(), move |ctx| {
                ctx.link(&dead).unwrap();
                ctx.receive();
            })
            .unwrap();
            recv_down(ctx).status
        })
        .unwrap();
    assert!(
        matches!(status, ExitStatus::Exit(ExitReason::NoProc)),
        "{status}"
    );
}

#[test]
fn linking_to_self_is_an_error() {
    let rt = runtime(1);
    let got = rt.run(|ctx| {
        (
            ctx.link(&ctx.pid()),
            ctx.monitor(&ctx.pid()),
            ctx.unlink(&ctx.pid()),
        )
    });
    assert_eq!(
        got.unwrap(),
        (
            Err(Error::LinkToSelf),
            Err(Error::LinkToSelf),
            Err(Error::LinkToSelf)
        )
    );
}

#[test]
fn unlink_removes_both_directions() {
    let rt = runtime(2);
    let (quiet, peer_alive) = rt
        .run(|ctx| {
            let peer = ctx
                .spawn_with(SpawnOptions::new().link(), |ctx| {
                    let _ = ctx.receive();
                    "peer ends normally"
                })
                .unwrap();
            ctx.unlink(&peer).unwrap();
            let observer = ctx.spawn_with(SpawnOptions::new().monitor(), |ctx| {
                ctx.receive();
            });
            let _ = observer;
            ctx.send(&peer, ());
            // Had the link survived, the peer's exit would kill us here.
            ctx.sleep(Duration::from_millis(20));
            let quiet = ctx.receive_timeout(Duration::ZERO).is_err();
            (quiet, ctx.agents().contains(&peer))
        })
        .unwrap();
    assert!(quiet);
    assert!(!peer_alive);
}

#[test]
fn agents_that_monitor_each_other_and_die_together_do_not_deadlock() {
    let rt = runtime(2);
    let n = rt
        .run(|ctx| {
            let me = ctx.pid();
            let mut pairs = 0;
            for _ in 0..200 {
                let a = ctx
                    .spawn_with(SpawnOptions::new().monitor(), |ctx| {
                        let b = ctx.receive().downcast::<Pid>().unwrap();
                        ctx.monitor(&b).unwrap();
                        ctx.receive();
                    })
                    .unwrap();
                let a2 = a.clone();
                let me2 = me.clone();
                let b = ctx
                    .spawn_with(SpawnOptions::new().monitor(), move |ctx| {
                        ctx.monitor(&a2).unwrap();
                        ctx.send(&me2, ());
                        ctx.receive();
                    })
                    .unwrap();
                ctx.send(&a, b.clone());
                recv_as::<()>(ctx);
                ctx.kill(&a, ExitReason::Kill);
                ctx.kill(&b, ExitReason::Kill);
                recv_down(ctx);
                recv_down(ctx);
                pairs += 1;
            }
            pairs
        })
        .unwrap();
    assert_eq!(n, 200);
}

#[test]
fn agent_tree_shows_monitored_children_and_links_and_survives_cycles() {
    let rt = runtime(1);
    let (text, child_ok, linked_ok, cycle_ok) = rt
        .run(|ctx| {
            let me = ctx.pid();
            let root = me.clone();
            // a: monitored by us, monitors a grandchild, and monitors us back
            // (a cycle).
            let a = ctx
                .spawn_with(SpawnOptions::new().monitor(), move |ctx| {
                    ctx.spawn_with(SpawnOptions::new().monitor(), |ctx| {
                        ctx.receive();
                    })
                    .unwrap();
                    ctx.monitor(&root).unwrap();
                    ctx.send(&root, ());
                    ctx.receive();
                })
                .unwrap();
            let b = ctx
                .spawn_with(SpawnOptions::new().link(), |ctx| {
                    ctx.receive();
                })
                .unwrap();
            recv_as::<()>(ctx);
            let tree = ctx.agent_tree(&me);
            let child_ok = tree.monitored.len() == 1
                && tree.monitored[0].root == a
                && tree.monitored[0].monitored.len() == 1;
            let linked_ok = tree.linked == vec![b];
            let cycle_ok = tree.monitored[0].linked.contains(&me);
            (tree.to_string(), child_ok, linked_ok, cycle_ok)
        })
        .unwrap();
    assert!(child_ok, "{text}");
    assert!(linked_ok, "{text}");
    assert!(cycle_ok, "{text}");
    assert!(text.contains("    ↳ "), "{text}");
    assert!(text.contains("        ↳ "), "{text}");
}

#[test]
fn no_notification_arrives_after_unlink_even_when_the_peer_exits_meanwhile() {
    let rt = runtime(2);
    let late = rt
        .run(|ctx| {
            let mut late = 0u32;
            for _ in 0..20_000 {
                let child = ctx
                    .spawn_with(SpawnOptions::new().monitor().worker(1), |ctx| {
                        ctx.receive();
                    })
                    .unwrap();
                ctx.send(&child, ());
                ctx.unlink(&child).unwrap();
                let is_down_from_child =
                    |m: &erlangen_runtime::Message| m.as_down().is_some_and(|d| d.pid == child);
                if ctx
                    .receive_match_timeout(is_down_from_child, Duration::ZERO)
                    .is_ok()
                {
                    late += 1;
                }
            }
            // Anything that could still come has come by now.
            ctx.sleep(Duration::from_millis(50));
            late + ctx.flush().iter().filter(|m| m.as_down().is_some()).count() as u32
        })
        .unwrap();
    assert_eq!(late, 0, "Downs received after unlink returned");
}
