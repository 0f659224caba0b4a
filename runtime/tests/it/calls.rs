//! Observing monitors (`watch`, Erlang's `monitor/2`) and calls (`call`,
//! Erlang's `gen_server:call`). Cases ported from OTP's `gen_server_SUITE`
//! name their source case.

use std::time::Duration;

use erlangen_runtime::{Call, CallError, Ctx, ExitReason, ExitStatus, Pid, WatchDown};

use crate::support::{runtime, HANG_GUARD};

/// An agent that answers every `Call<u64>` with the request plus one, and
/// exits on a request of 0 (without answering).
fn echo_server(ctx: &mut Ctx) {
    loop {
        let call = ctx.receive().downcast::<Call<u64>>().unwrap();
        if call.request == 0 {
            return;
        }
        ctx.reply(&call.from, call.request + 1);
    }
}

/// Waits until `pid` is no longer among the runtime's agents.
fn wait_until_gone(ctx: &Ctx, pid: &Pid) {
    let start = std::time::Instant::now();
    while ctx.agents().contains(pid) {
        assert!(start.elapsed() < HANG_GUARD, "{pid} exits");
        ctx.sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_watchers_normal_exit_panic_and_kill_leave_the_watched_agent_alive() {
    let rt = runtime(2);
    let alive = rt
        .run(|ctx| {
            let watched = ctx.spawn(|ctx| loop {
                let asker = ctx.receive().downcast::<Pid>().unwrap();
                ctx.send(&asker, "alive");
            });
            for how in 0..3 {
                let target = watched.clone();
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
                if how == 2 {
                    ctx.sleep(Duration::from_millis(5));
                    ctx.kill(&watcher, ExitReason::Kill);
                }
                wait_until_gone(ctx, &watcher);
            }
            ctx.send(&watched, ctx.pid());
            ctx.receive_timeout(HANG_GUARD)
                .ok()
                .and_then(|m| m.downcast::<&str>().ok())
        })
        .unwrap();
    assert_eq!(alive, Some("alive"));
}

#[test]
fn erlangens_monitor_still_kills_the_monitored_agent_when_the_monitor_exits() {
    let rt = runtime(1);
    let killed = rt
        .run(|ctx| {
            let target = ctx.spawn(|ctx| {
                ctx.receive();
            });
            let watch = ctx.watch(&target).unwrap();
            let t = target.clone();
            let monitor = ctx.spawn(move |ctx| {
                ctx.monitor(&t).unwrap();
            });
            let down = ctx.receive().downcast::<WatchDown>().unwrap();
            wait_until_gone(ctx, &monitor);
            down.watch == watch && down.status.reason().is_some()
        })
        .unwrap();
    assert!(
        killed,
        "the monitor's exit killed its target, and the watch saw it"
    );
}

#[test]
fn a_watch_of_a_dead_agent_says_noproc_at_once() {
    let rt = runtime(1);
    let status = rt
        .run(|ctx| {
            let gone = ctx.spawn(|_ctx| ());
            wait_until_gone(ctx, &gone);
            ctx.watch(&gone).unwrap();
            ctx.receive_timeout(HANG_GUARD)
                .unwrap()
                .downcast::<WatchDown>()
                .unwrap()
                .status
        })
        .unwrap();
    assert!(matches!(status, ExitStatus::Exit(ExitReason::NoProc)));
}

#[test]
fn an_unwatch_racing_the_exit_it_watched_leaves_no_notification_behind() {
    let rt = runtime(2);
    let stray = rt
        .run(|ctx| {
            for round in 0..1_000u32 {
                let short = ctx.spawn(move |ctx| {
                    if round % 2 == 0 {
                        ctx.yield_now();
                    }
                });
                let watch = ctx.watch(&short).unwrap();
                if round % 3 == 0 {
                    ctx.yield_now();
                }
                ctx.unwatch(&watch);
            }
            // Anything left would be a WatchDown of an unwatched watch.
            ctx.sleep(Duration::from_millis(20));
            ctx.flush()
                .iter()
                .filter(|m| m.downcast_ref::<WatchDown>().is_some())
                .count()
        })
        .unwrap();
    assert_eq!(stray, 0);
}

#[test]
fn a_call_is_answered_and_leaves_no_watch_behind() {
    // gen_server_SUITE: call_remote1's local shape (a plain call).
    let rt = runtime(2);
    let (answers, left) = rt
        .run(|ctx| {
            let server = ctx.spawn(echo_server);
            let answers: Vec<u64> = (1..=100u64)
                .map(|n| {
                    ctx.call(&server, n, HANG_GUARD)
                        .unwrap()
                        .downcast::<u64>()
                        .unwrap()
                })
                .collect();
            // Stopping the server must not reach us: the calls' watches are
            // gone.
            let _ = ctx.call(&server, 0u64, Duration::from_millis(50));
            wait_until_gone(ctx, &server);
            (
                answers,
                ctx.receive_timeout(Duration::from_millis(20)).is_err(),
            )
        })
        .unwrap();
    assert_eq!(answers, (2..=101).collect::<Vec<u64>>());
    assert!(left, "nothing was left in the caller's mailbox");
}

#[test]
fn a_call_to_a_dead_server_fails_with_noproc_at_once() {
    // gen_server_SUITE: call_dead (a call to a dead server exits noproc).
    let rt = runtime(1);
    let error = rt
        .run(|ctx| {
            let server = ctx.spawn(|_ctx| ());
            wait_until_gone(ctx, &server);
            ctx.call(&server, 1u64, Duration::from_secs(3600))
                .unwrap_err()
        })
        .unwrap();
    assert!(matches!(error, CallError::NoProc), "{error:?}");
}

#[test]
fn a_server_that_dies_mid_call_fails_the_call_at_once_with_its_reason() {
    // gen_server_SUITE: call_remote_n3's local shape (the server goes away
    // during the call).
    let rt = runtime(2);
    let error = rt
        .run(|ctx| {
            let server = ctx.spawn(|ctx| {
                let _call = ctx.receive().downcast::<Call<u64>>().unwrap();
                ctx.exit(ExitReason::other("crashed on purpose"));
            });
            ctx.call(&server, 1u64, Duration::from_secs(3600))
                .unwrap_err()
        })
        .unwrap();
    match error {
        CallError::Exit(status) => assert_eq!(
            status.reason().map(ToString::to_string).as_deref(),
            Some("crashed on purpose")
        ),
        other => panic!("expected the server's exit, got {other:?}"),
    }
}

#[test]
fn a_call_times_out_and_its_late_reply_is_discarded() {
    // gen_server_SUITE: call_timeout (and OTP's rule that a late reply never
    // lands in the caller's mailbox).
    let rt = runtime(2);
    let (error, late_seen, dropped) = rt
        .run(|ctx| {
            let server = ctx.spawn(|ctx| loop {
                let call = ctx.receive().downcast::<Call<u64>>().unwrap();
                ctx.sleep(Duration::from_millis(50));
                ctx.reply(&call.from, call.request);
            });
            let error = ctx
                .call(&server, 1u64, Duration::from_millis(1))
                .unwrap_err();
            // The server answers after 50 ms; a second call proves it has.
            let second = ctx.call(&server, 2u64, HANG_GUARD).unwrap();
            assert_eq!(second.downcast::<u64>().unwrap(), 2);
            let late_seen = ctx.receive_timeout(Duration::from_millis(20)).is_ok();
            (error, late_seen, ctx.stats(&ctx.pid()).dropped)
        })
        .unwrap();
    assert!(matches!(error, CallError::Timeout), "{error:?}");
    assert!(!late_seen, "the late reply is not in the mailbox");
    assert_eq!(dropped, 1, "it was refused and counted");
}

#[test]
fn a_caller_that_dies_mid_call_never_harms_the_server() {
    let rt = runtime(2);
    let answer = rt
        .run(|ctx| {
            let server = ctx.spawn(|ctx| loop {
                let call = ctx.receive().downcast::<Call<u64>>().unwrap();
                ctx.sleep(Duration::from_millis(20));
                ctx.reply(&call.from, call.request * 10);
            });
            let s = server.clone();
            let caller = ctx.spawn(move |ctx| {
                let _ = ctx.call(&s, 1u64, HANG_GUARD);
            });
            ctx.sleep(Duration::from_millis(5));
            ctx.kill(&caller, ExitReason::Kill);
            wait_until_gone(ctx, &caller);
            ctx.call(&server, 7u64, HANG_GUARD)
                .unwrap()
                .downcast::<u64>()
                .unwrap()
        })
        .unwrap();
    assert_eq!(answer, 70);
}

#[test]
fn a_call_behind_a_full_mailbox_still_learns_of_its_servers_death() {
    let rt = runtime(2);
    let error = rt
        .run(|ctx| {
            let me = ctx.pid();
            // Fill our mailbox (64 by default) with messages nobody takes.
            let noise = ctx.spawn(move |ctx| {
                for n in 0..1_000u32 {
                    ctx.send(&me, n);
                }
            });
            wait_until_gone(ctx, &noise);
            let server = ctx.spawn(|ctx| {
                let _call = ctx.receive().downcast::<Call<u64>>().unwrap();
                panic!("down");
            });
            ctx.call(&server, 1u64, Duration::from_secs(3600))
                .unwrap_err()
        })
        .unwrap();
    assert!(matches!(error, CallError::Exit(_)), "{error:?}");
}
