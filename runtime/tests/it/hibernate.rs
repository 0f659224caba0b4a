//! `Ctx::hibernate`: an agent gives up its stack until a message arrives.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use erlangen_runtime::{Ctx, ExitReason, ExitStatus, SpawnOptions};

use crate::support::{recv_as, recv_down, runtime, DropCounter};

#[test]
fn a_hibernated_agent_runs_its_continuation_when_a_message_arrives() {
    let rt = runtime(2);
    let (value, hibernations) = rt
        .run(|ctx| {
            let me = ctx.pid();
            let sleeper = ctx
                .spawn_with(SpawnOptions::new().monitor(), move |ctx| {
                    let base = 40u64;
                    ctx.send(&me, "hibernating");
                    ctx.hibernate(move |ctx| base + recv_as::<u64>(ctx))
                })
                .unwrap();
            assert_eq!(recv_as::<&str>(ctx), "hibernating");
            ctx.send(&sleeper, 2u64);
            let down = recv_down(ctx);
            let value = *down.status.value().unwrap().downcast_ref::<u64>().unwrap();
            (value, ctx.stats(&sleeper).hibernations)
        })
        .unwrap();
    assert_eq!(value, 42);
    assert_eq!(hibernations, 1);
}

#[test]
fn hibernation_unwinds_the_stack_and_keeps_the_continuations_captures() {
    let rt = runtime(1);
    let drops = Arc::new(AtomicUsize::new(0));
    let (on_stack, captured) = (drops.clone(), drops.clone());
    let seen = rt
        .run(move |ctx| {
            let me = ctx.pid();
            let sleeper = ctx.spawn(move |ctx| {
                let _on_stack = DropCounter(on_stack);
                let kept = DropCounter(captured);
                ctx.hibernate(move |ctx| {
                    let drops = kept.0.load(Ordering::SeqCst);
                    ctx.receive();
                    ctx.send(&me, drops);
                })
            });
            ctx.send(&sleeper, ());
            recv_as::<usize>(ctx)
        })
        .unwrap();
    assert_eq!(
        seen, 1,
        "the stack's value was dropped, the captured one not yet"
    );
    assert_eq!(drops.load(Ordering::SeqCst), 2);
}

#[test]
fn a_hibernating_agent_keeps_its_mailbox_and_the_messages_it_skipped_in_order() {
    let rt = runtime(1);
    let got = rt
        .run(|ctx| {
            let me = ctx.pid();
            let sleeper = ctx.spawn(move |ctx| {
                // Skips 1 and 2 (they go to the saved queue), takes "go".
                ctx.receive_match(|m| m.is::<&str>());
                ctx.send(&me, "skipped");
                ctx.hibernate(move |ctx| {
                    let all: Vec<u32> = (0..4).map(|_| recv_as::<u32>(ctx)).collect();
                    ctx.send(&me, all);
                })
            });
            ctx.send(&sleeper, 1u32);
            ctx.send(&sleeper, 2u32);
            ctx.send(&sleeper, "go");
            assert_eq!(recv_as::<&str>(ctx), "skipped");
            ctx.send(&sleeper, 3u32);
            ctx.send(&sleeper, 4u32);
            recv_as::<Vec<u32>>(ctx)
        })
        .unwrap();
    assert_eq!(got, vec![1, 2, 3, 4]);
}

#[test]
fn hibernate_with_a_message_already_queued_continues_at_once() {
    let rt = runtime(1);
    let got = rt
        .run(|ctx| {
            let me = ctx.pid();
            ctx.spawn(move |ctx| {
                ctx.send(&ctx.pid(), 7u8);
                ctx.hibernate(move |ctx| {
                    let n = recv_as::<u8>(ctx);
                    ctx.send(&me, n);
                })
            });
            recv_as::<u8>(ctx)
        })
        .unwrap();
    assert_eq!(got, 7);
}

#[test]
fn a_kill_ends_a_hibernated_agent_without_running_its_continuation() {
    let rt = runtime(2);
    let ran = Arc::new(AtomicBool::new(false));
    let drops = Arc::new(AtomicUsize::new(0));
    let (flag, counter) = (ran.clone(), drops.clone());
    let down = rt
        .run(move |ctx| {
            let me = ctx.pid();
            let sleeper = ctx
                .spawn_with(SpawnOptions::new().monitor(), move |ctx| {
                    let kept = DropCounter(counter);
                    ctx.send(&me, "hibernating");
                    ctx.hibernate(move |_ctx| {
                        let _kept = kept;
                        flag.store(true, Ordering::SeqCst);
                    })
                })
                .unwrap();
            assert_eq!(recv_as::<&str>(ctx), "hibernating");
            ctx.kill(&sleeper, ExitReason::other("stop"));
            recv_down(ctx)
        })
        .unwrap();
    assert!(
        matches!(down.status, ExitStatus::Exit(ExitReason::Other(ref why)) if &**why == "stop")
    );
    assert!(!ran.load(Ordering::SeqCst), "the continuation did not run");
    assert_eq!(drops.load(Ordering::SeqCst), 1, "its captures were dropped");
}

#[test]
fn a_hibernated_agent_keeps_its_registered_name_and_its_links() {
    let rt = runtime(2);
    let down = rt
        .run(|ctx| {
            let me = ctx.pid();
            let partner = ctx.spawn(|ctx| {
                ctx.receive();
            });
            let sleeper = ctx
                .spawn_with(SpawnOptions::new().monitor(), move |ctx| {
                    ctx.register("sleeper").unwrap();
                    ctx.link(&partner).unwrap();
                    ctx.send(&me, partner.clone());
                    ctx.hibernate(move |ctx| {
                        let word = recv_as::<&str>(ctx);
                        ctx.send(&me, word);
                        ctx.receive();
                    })
                })
                .unwrap();
            let partner = recv_as::<erlangen_runtime::Pid>(ctx);
            ctx.send_named("sleeper", "by name").unwrap();
            assert_eq!(recv_as::<&str>(ctx), "by name");
            // The link still fires: the partner's exit kills the sleeper,
            // which now waits in a plain receive after waking.
            ctx.kill(&partner, ExitReason::Kill);
            let down = recv_down(ctx);
            assert_eq!(down.pid, sleeper);
            down
        })
        .unwrap();
    assert!(matches!(
        down.status,
        ExitStatus::Exit(ExitReason::Linked(_))
    ));
}

#[test]
fn an_agent_that_hibernates_again_and_again_serves_every_message() {
    fn serve(ctx: &Ctx, left: u32, total: u64) -> ! {
        ctx.hibernate(move |ctx| {
            let n = recv_as::<u64>(ctx);
            if left == 1 {
                return total + n;
            }
            serve(ctx, left - 1, total + n)
        })
    }
    const ROUNDS: u32 = 1_000;
    let rt = runtime(2);
    let (sum, hibernations) = rt
        .run(|ctx| {
            let server = ctx
                .spawn_with(SpawnOptions::new().monitor(), |ctx| -> u64 {
                    serve(ctx, ROUNDS, 0)
                })
                .unwrap();
            for n in 1..=u64::from(ROUNDS) {
                ctx.send(&server, n);
                ctx.yield_now();
            }
            let down = recv_down(ctx);
            let sum = *down.status.value().unwrap().downcast_ref::<u64>().unwrap();
            (sum, ctx.stats(&server).hibernations)
        })
        .unwrap();
    assert_eq!(sum, u64::from(ROUNDS) * (u64::from(ROUNDS) + 1) / 2);
    assert_eq!(hibernations, u64::from(ROUNDS));
}

#[test]
fn the_root_agent_cannot_hibernate() {
    let rt = runtime(1);
    let result = rt.run(|ctx| ctx.hibernate(|_| ()));
    match result {
        Err(ExitReason::Panic(message)) => assert!(message.contains("cannot hibernate")),
        other => panic!("expected a panic exit, got {other:?}"),
    }
}

#[test]
fn shutdown_drops_a_hibernated_agents_continuation() {
    let drops = Arc::new(AtomicUsize::new(0));
    {
        let rt = runtime(2);
        let counter = drops.clone();
        rt.run(move |ctx| {
            let me = ctx.pid();
            ctx.spawn(move |ctx| {
                let kept = DropCounter(counter);
                ctx.send(&me, ());
                ctx.hibernate(move |ctx| {
                    let _kept = kept;
                    ctx.receive();
                })
            });
            ctx.receive();
        })
        .unwrap();
        assert_eq!(drops.load(Ordering::SeqCst), 0, "still hibernating");
    }
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}
