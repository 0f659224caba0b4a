//! Send and receive: delivery, order, drops.

use std::time::Duration;

use erlangen_runtime::{ExitReason, SpawnOptions};

use crate::support::{recv_as, runtime};

#[test]
fn root_agent_returns_its_value_to_main() {
    let rt = runtime(1);
    assert_eq!(rt.run(|_| 7 * 6).unwrap(), 42);
}

#[test]
fn agent_sends_to_itself_and_receives() {
    let rt = runtime(1);
    let got = rt.run(|ctx| {
        ctx.send(&ctx.pid(), "hello");
        recv_as::<&str>(ctx)
    });
    assert_eq!(got.unwrap(), "hello");
}

#[test]
fn messages_between_two_agents_keep_their_order_on_one_worker() {
    let rt = runtime(1);
    let got = rt.run(|ctx| {
        let me = ctx.pid();
        let child = ctx.spawn(move |ctx| {
            for i in 0..50u32 {
                ctx.send(&me, i);
            }
        });
        let _ = child;
        (0..50).map(|_| recv_as::<u32>(ctx)).collect::<Vec<_>>()
    });
    assert_eq!(got.unwrap(), (0..50).collect::<Vec<_>>());
}

#[test]
fn full_mailbox_drops_the_message_and_counts_it() {
    let rt = runtime(1);
    let (dropped, received) = rt
        .run(|ctx| {
            let me = ctx.pid();
            let sink = ctx
                .spawn_with(SpawnOptions::new().mailbox_len(2), move |ctx| {
                    // Wait for the go-ahead on our own terms: a selective
                    // receive would not help, the lane is full. Sleep instead.
                    ctx.sleep(Duration::from_millis(50));
                    let mut got = Vec::new();
                    while let Ok(message) = ctx.receive_timeout(Duration::ZERO) {
                        got.push(message.downcast::<u32>().unwrap());
                    }
                    ctx.send(&me, got);
                })
                .unwrap();
            ctx.send(&sink, 1u32);
            ctx.send(&sink, 2u32);
            ctx.send(&sink, 3u32);
            let got = recv_as::<Vec<u32>>(ctx);
            (ctx.stats(&sink).dropped, got)
        })
        .unwrap();
    assert_eq!(dropped, 1);
    assert_eq!(received, vec![1, 2]);
}

#[test]
fn send_to_a_dead_agent_is_dropped_and_counted() {
    let rt = runtime(1);
    let dropped = rt
        .run(|ctx| {
            let child = ctx
                .spawn_with(SpawnOptions::new().monitor(), |_| ())
                .unwrap();
            let _down = crate::support::recv_down(ctx);
            ctx.send(&child, 1u8);
            ctx.stats(&child).dropped
        })
        .unwrap();
    assert_eq!(dropped, 1);
}

#[test]
fn per_pair_order_holds_for_a_million_messages_over_two_workers() {
    const N: u64 = 1_000_000;
    const WINDOW: u64 = 1_000;
    let rt = runtime(2);
    let ok = rt
        .run(|ctx| {
            let me = ctx.pid();
            // The receiver acknowledges every WINDOW messages so that the
            // sender never overflows its bounded mailbox.
            let receiver = ctx
                .spawn_with(
                    SpawnOptions::new().mailbox_len(2 * WINDOW as usize),
                    move |ctx| {
                        let mut expected = 0u64;
                        let mut in_order = true;
                        while expected < N {
                            let n = ctx.receive().downcast::<u64>().unwrap();
                            in_order &= n == expected;
                            expected += 1;
                            if expected.is_multiple_of(WINDOW) {
                                ctx.send(&me, expected);
                            }
                        }
                        ctx.send(&me, in_order);
                    },
                )
                .unwrap();
            for n in 0..N {
                if n > 0 && n % WINDOW == 0 {
                    assert_eq!(recv_as::<u64>(ctx), n);
                }
                ctx.send(&receiver, n);
            }
            assert_eq!(recv_as::<u64>(ctx), N);
            (recv_as::<bool>(ctx), ctx.stats(&receiver).dropped)
        })
        .unwrap();
    assert_eq!(ok, (true, 0));
}

#[test]
fn messages_move_without_copying() {
    let rt = runtime(2);
    let same = rt
        .run(|ctx| {
            let me = ctx.pid();
            let data = vec![1u8; 1 << 20];
            let address = data.as_ptr() as usize;
            let echo = ctx.spawn(move |ctx| {
                let data = ctx.receive().downcast::<Vec<u8>>().unwrap();
                ctx.send(&me, data);
            });
            ctx.send(&echo, data);
            let back = recv_as::<Vec<u8>>(ctx);
            back.as_ptr() as usize == address
        })
        .unwrap();
    assert!(same);
}

/// A regression test for a lost wake-up (found under `perf record` on
/// cross-worker ping-pong): a message pushed while its receiver was already
/// notified could be missed, leaving the receiver waiting with the message
/// queued. The agents are placed on different workers on purpose.
#[test]
fn cross_worker_ping_pong_loses_no_wake_up() {
    const ROUNDS: u32 = 200_000;
    let rt = runtime(2);
    for _ in 0..3 {
        let ok = rt
            .run(|ctx| {
                let me = ctx.pid();
                let ponger = ctx
                    .spawn_with(SpawnOptions::new().worker(1), |ctx| {
                        let pinger = recv_as::<erlangen_runtime::Pid>(ctx);
                        for n in 0..ROUNDS {
                            assert_eq!(recv_as::<u32>(ctx), n);
                            ctx.send(&pinger, n);
                        }
                    })
                    .unwrap();
                ctx.spawn_with(SpawnOptions::new().worker(0), move |ctx| {
                    ctx.send(&ponger, ctx.pid());
                    for n in 0..ROUNDS {
                        ctx.send(&ponger, n);
                        assert_eq!(recv_as::<u32>(ctx), n);
                    }
                    ctx.send(&me, true);
                })
                .unwrap();
                recv_as::<bool>(ctx)
            })
            .unwrap();
        assert!(ok);
    }
}

#[test]
fn spawning_on_a_worker_that_does_not_exist_is_an_error() {
    let rt = runtime(2);
    let result = rt.spawn_with(SpawnOptions::new().worker(2), |_| ());
    assert!(matches!(
        result,
        Err(erlangen_runtime::Error::InvalidConfig(_))
    ));
}

#[test]
fn forwarding_a_received_message_delivers_the_original_value() {
    // A relay sends on what it received: the message must arrive as the
    // original value, not wrapped once per hop (which also made dropping a
    // long-forwarded message recurse once per hop).
    let rt = runtime(2);
    let got = rt
        .run(|ctx| {
            let me = ctx.pid();
            let relay = ctx.spawn(move |ctx| {
                for _ in 0..10_000 {
                    let message = ctx.receive();
                    ctx.send(&me, message);
                }
            });
            let mut value = 0u64;
            for _ in 0..10_000 {
                ctx.send(&relay, value);
                value = recv_as::<u64>(ctx) + 1;
            }
            value
        })
        .unwrap();
    assert_eq!(got, 10_000);
}

#[test]
fn a_second_kill_of_a_dying_agent_counts_as_dropped() {
    let rt = runtime(1);
    let dropped = rt
        .run(|ctx| {
            let victim = ctx
                .spawn_with(SpawnOptions::new().monitor(), |ctx| {
                    ctx.receive();
                })
                .unwrap();
            // Both kills land before the victim runs again: the first
            // closes its mailbox, the second is refused.
            ctx.kill(&victim, ExitReason::Kill);
            ctx.kill(&victim, ExitReason::other("again"));
            let down = crate::support::recv_down(ctx);
            assert!(matches!(down.status.reason(), Some(ExitReason::Kill)));
            ctx.stats(&victim).dropped
        })
        .unwrap();
    assert_eq!(dropped, 1);
}

#[test]
fn a_busy_pair_does_not_starve_an_agent_woken_from_another_worker() {
    let rt = runtime(2);
    let (answered_first, pair_rounds_left) = rt
        .run(|ctx| {
            let me = ctx.pid();
            let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            // A pair ping-ponging on worker 0 (each wakes the other through
            // the LIFO slot) until told to stop.
            let stop = done.clone();
            let ponger = ctx
                .spawn_with(SpawnOptions::new().worker(0), |ctx| loop {
                    let (from, n) = ctx
                        .receive()
                        .downcast::<(erlangen_runtime::Pid, u64)>()
                        .unwrap();
                    ctx.send(&from, n);
                })
                .unwrap();
            let pinger_me = me.clone();
            ctx.spawn_with(SpawnOptions::new().worker(0), move |ctx| {
                let mut rounds = 0u64;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) && rounds < 50_000_000 {
                    ctx.send(&ponger, (ctx.pid(), rounds));
                    ctx.receive();
                    rounds += 1;
                }
                ctx.send(&pinger_me, ("pair", 50_000_000 - rounds));
            })
            .unwrap();
            // An agent on worker 0, woken by a message from this worker.
            let echo = ctx
                .spawn_with(SpawnOptions::new().worker(0), |ctx| {
                    let (from, text) = ctx
                        .receive()
                        .downcast::<(erlangen_runtime::Pid, &str)>()
                        .unwrap();
                    ctx.send(&from, (text, 0u64));
                })
                .unwrap();
            ctx.sleep(std::time::Duration::from_millis(20));
            ctx.send(&echo, (me, "echo"));
            let (first, _) = ctx.receive().downcast::<(&str, u64)>().unwrap();
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            let (_, left) = ctx
                .receive_match(|m| {
                    m.downcast_ref::<(&str, u64)>()
                        .is_some_and(|(w, _)| *w == "pair")
                })
                .downcast::<(&str, u64)>()
                .unwrap();
            (first, left)
        })
        .unwrap();
    assert_eq!(
        answered_first, "echo",
        "the echo got its turn while the pair ran"
    );
    assert!(
        pair_rounds_left > 0,
        "the pair was still running when the echo answered"
    );
}

#[test]
fn metrics_count_every_message_sent_from_agents_and_from_outside() {
    let rt = erlangen_runtime::Runtime::builder()
        .workers(2)
        .build()
        .unwrap();
    let before = rt.metrics().messages_sent_total;
    let sink = rt.spawn(|ctx| loop {
        ctx.receive();
    });
    for n in 0..10u64 {
        rt.send(&sink, n);
    }
    let to = sink.clone();
    rt.run(move |ctx| {
        for n in 0..25u64 {
            ctx.send(&to, n);
        }
    })
    .unwrap();
    // The root agent's worker published its count when the agent ended.
    assert_eq!(rt.metrics().messages_sent_total - before, 35);
}
