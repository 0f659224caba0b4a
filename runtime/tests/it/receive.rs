//! Receive: timeouts and selective receive.

use std::time::Duration;

use erlangen_runtime::{ExitReason, SpawnOptions, Timeout};

use crate::support::{recv_as, runtime};

#[test]
fn receive_timeout_returns_timeout_when_no_message_comes() {
    let rt = runtime(1);
    let got = rt.run(|ctx| ctx.receive_timeout(Duration::from_millis(20)).map(|_| ()));
    assert_eq!(got.unwrap(), Err(Timeout));
}

#[test]
fn zero_timeout_receive_does_not_wait_and_returns_a_queued_message() {
    let rt = runtime(1);
    let got = rt.run(|ctx| {
        let empty = ctx.receive_timeout(Duration::ZERO).is_err();
        ctx.send(&ctx.pid(), 5u8);
        let five = ctx
            .receive_timeout(Duration::ZERO)
            .unwrap()
            .downcast::<u8>()
            .unwrap();
        (empty, five)
    });
    assert_eq!(got.unwrap(), (true, 5));
}

#[test]
fn receive_timeout_returns_a_message_that_arrives_in_time() {
    let rt = runtime(2);
    let got = rt.run(|ctx| {
        let me = ctx.pid();
        ctx.spawn(move |ctx| {
            ctx.sleep(Duration::from_millis(10));
            ctx.send(&me, 9u8);
        });
        ctx.receive_timeout(crate::support::HANG_GUARD)
            .unwrap()
            .downcast::<u8>()
            .unwrap()
    });
    assert_eq!(got.unwrap(), 9);
}

#[test]
fn selective_receive_takes_the_match_and_keeps_the_others_in_order() {
    let rt = runtime(1);
    let got = rt.run(|ctx| {
        let me = ctx.pid();
        for i in 0..5u32 {
            ctx.send(&me, i);
        }
        ctx.send(&me, "marker");
        for i in 5..8u32 {
            ctx.send(&me, i);
        }
        let marker = ctx
            .receive_match(|m| m.is::<&str>())
            .downcast::<&str>()
            .unwrap();
        let three = ctx
            .receive_match(|m| m.downcast_ref::<u32>() == Some(&3))
            .downcast::<u32>()
            .unwrap();
        let rest: Vec<u32> = (0..7).map(|_| recv_as::<u32>(ctx)).collect();
        (marker, three, rest)
    });
    assert_eq!(got.unwrap(), ("marker", 3, vec![0, 1, 2, 4, 5, 6, 7]));
}

#[test]
fn selective_receive_waits_for_a_later_matching_message() {
    let rt = runtime(2);
    let got = rt.run(|ctx| {
        let me = ctx.pid();
        ctx.send(&me, 1u32);
        ctx.spawn(move |ctx| {
            ctx.sleep(Duration::from_millis(5));
            ctx.send(&me, 2u32);
            ctx.send(&me, "late");
        });
        let late = ctx
            .receive_match(|m| m.is::<&str>())
            .downcast::<&str>()
            .unwrap();
        (late, recv_as::<u32>(ctx), recv_as::<u32>(ctx))
    });
    assert_eq!(got.unwrap(), ("late", 1, 2));
}

#[test]
fn selective_receive_with_timeout_leaves_the_mailbox_intact() {
    let rt = runtime(1);
    let got = rt.run(|ctx| {
        ctx.send(&ctx.pid(), 1u32);
        let miss = ctx.receive_match_timeout(|m| m.is::<String>(), Duration::from_millis(10));
        (miss.is_err(), recv_as::<u32>(ctx))
    });
    assert_eq!(got.unwrap(), (true, 1));
}

#[test]
fn flush_takes_every_queued_message() {
    let rt = runtime(1);
    let got = rt.run(|ctx| {
        for i in 0..3u8 {
            ctx.send(&ctx.pid(), i);
        }
        ctx.flush().len()
    });
    assert_eq!(got.unwrap(), 3);
}

#[test]
fn an_agent_looping_on_a_zero_timeout_receive_is_killed_by_an_agent_on_its_worker() {
    let rt = runtime(2);
    let status = rt
        .run(|ctx| {
            let looper = ctx
                .spawn_with(SpawnOptions::new().monitor().worker(0), |ctx| loop {
                    let _ = ctx.receive_timeout(Duration::ZERO);
                })
                .unwrap();
            // Same worker: it runs only if the looper gives the worker up.
            let target = looper.clone();
            ctx.spawn_with(SpawnOptions::new().worker(0), move |ctx| {
                ctx.kill(&target, ExitReason::other("stop spinning"));
            })
            .unwrap();
            let down = ctx
                .receive_timeout(crate::support::HANG_GUARD)
                .expect("the looper was killed")
                .downcast::<erlangen_runtime::Down>()
                .unwrap();
            assert_eq!(down.pid, looper);
            down.status
        })
        .unwrap();
    assert_eq!(status.reason().unwrap().to_string(), "stop spinning");
}

#[test]
fn a_long_selective_scan_lets_other_agents_of_its_worker_run() {
    let rt = runtime(2);
    let answered = rt
        .run(|ctx| {
            let me = ctx.pid();
            let scanner = ctx
                .spawn_with(
                    SpawnOptions::new().worker(0).mailbox_len(1 << 20),
                    move |ctx| {
                        // Wait for the word to go (selectively: if this worker
                        // also runs the root, the numbers are still coming).
                        ctx.receive_match(|m| m.is::<()>());
                        // Scan 200,000 messages, 20 times, for one that is not there.
                        for _ in 0..20 {
                            let _ = ctx.receive_match_timeout(|m| m.is::<String>(), Duration::ZERO);
                        }
                        ctx.send(&me, "scanned");
                    },
                )
                .unwrap();
            for n in 0..200_000u32 {
                ctx.send(&scanner, n);
            }
            let echo = ctx
                .spawn_with(SpawnOptions::new().worker(0), |ctx| {
                    let (from, n) = ctx
                        .receive()
                        .downcast::<(erlangen_runtime::Pid, u32)>()
                        .unwrap();
                    ctx.send(&from, n + 1);
                })
                .unwrap();
            ctx.send(&scanner, ());
            ctx.send(&echo, (ctx.pid(), 41u32));
            // The echo, on the scanner's worker, answers before the scans end.
            ctx.receive_match(|m| m.is::<u32>() || m.is::<&str>())
                .downcast::<u32>()
                .is_ok()
        })
        .unwrap();
    assert!(
        answered,
        "the echo answered while the scanner was still scanning"
    );
}

#[test]
fn a_reply_behind_half_a_million_unrelated_messages_is_taken_by_its_tag() {
    // Room for the noise (a reply counts against the capacity like any
    // message).
    let rt = erlangen_runtime::Runtime::builder()
        .workers(2)
        .mailbox_len(1 << 20)
        .build()
        .unwrap();
    let (answers, left) = rt
        .run(|ctx| {
            let me = ctx.pid();
            let server = ctx.spawn(|ctx| loop {
                let (reply_to, n) = ctx
                    .receive()
                    .downcast::<(erlangen_runtime::ReplyTo, u64)>()
                    .unwrap();
                ctx.reply(&reply_to, n + 1);
            });
            // Fill our own mailbox with messages nobody will take.
            let noise = ctx.spawn(move |ctx| {
                for n in 0..500_000u32 {
                    ctx.send(&me, n);
                }
            });
            let _ = noise;
            let mut answers = Vec::new();
            for n in 0..100u64 {
                let tag = ctx.make_tag();
                ctx.send(&server, (ctx.reply_to(tag), n));
                let reply = ctx
                    .receive_reply(tag, crate::support::HANG_GUARD)
                    .expect("the reply arrives");
                answers.push(reply.downcast::<u64>().unwrap());
            }
            // Plain receives still see the noise first, in order.
            let first = ctx.receive_timeout(crate::support::HANG_GUARD).unwrap();
            (answers, first.downcast::<u32>().unwrap())
        })
        .unwrap();
    assert_eq!(answers, (1..=100).collect::<Vec<u64>>());
    assert_eq!(left, 0, "the unrelated messages are untouched, in order");
}

#[test]
fn a_reply_that_never_comes_times_out_and_a_late_one_is_not_a_plain_message() {
    let rt = runtime(1);
    let (timed_out, plain) = rt
        .run(|ctx| {
            let tag = ctx.make_tag();
            let timed_out = ctx.receive_reply(tag, Duration::from_millis(5)).is_err();
            ctx.reply(&ctx.reply_to(tag), "late");
            let plain = ctx.receive_timeout(Duration::from_millis(5)).is_err();
            (timed_out, plain)
        })
        .unwrap();
    assert!(timed_out);
    assert!(plain, "a reply is taken only by receive_reply");
}
