//! Sleep, send-after, and kills of sleeping agents.

use std::time::Duration;

use erlangen_runtime::{ExitReason, ExitStatus, SpawnOptions, WatchDown};

use crate::support::{recv_as, recv_down, runtime};

#[test]
fn sleep_suspends_the_agent_and_lets_others_run_on_its_worker() {
    let rt = runtime(1);
    let order = rt
        .run(|ctx| {
            let me = ctx.pid();
            let me2 = me.clone();
            ctx.spawn(move |ctx| {
                ctx.sleep(Duration::from_millis(30));
                ctx.send(&me, "sleeper woke");
            });
            ctx.spawn(move |ctx| {
                for _ in 0..1000 {
                    ctx.yield_now();
                }
                ctx.send(&me2, "busy one done");
            });
            vec![recv_as::<&str>(ctx), recv_as::<&str>(ctx)]
        })
        .unwrap();
    assert_eq!(order, vec!["busy one done", "sleeper woke"]);
}

#[test]
fn send_after_delivers_the_message_later() {
    let rt = runtime(2);
    let order = rt
        .run(|ctx| {
            let me = ctx.pid();
            ctx.send_after(&me, "later", Duration::from_millis(20));
            ctx.send(&me, "now");
            vec![recv_as::<&str>(ctx), recv_as::<&str>(ctx)]
        })
        .unwrap();
    assert_eq!(order, vec!["now", "later"]);
}

#[test]
fn send_after_from_a_plain_thread_is_delivered() {
    let rt = runtime(2);
    let pid = rt
        .spawn_with(SpawnOptions::new().mailbox_len(4), |ctx| {
            ctx.receive_timeout(crate::support::HANG_GUARD)
                .map(|m| m.downcast::<u8>().unwrap_or(0))
                .unwrap_or(0)
        })
        .unwrap();
    let watcher = rt.run(move |ctx| {
        ctx.monitor(&pid).unwrap();
        pid
    });
    let pid = watcher.unwrap();
    rt.send_after(&pid, 9u8, Duration::from_millis(10));
    let guard = std::time::Instant::now() + crate::support::HANG_GUARD;
    while rt.stats(&pid).died.is_none() && std::time::Instant::now() < guard {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(rt.stats(&pid).received, 1);
}

#[test]
fn kill_of_a_sleeping_agent_takes_effect_at_once() {
    let rt = runtime(1);
    let status = rt
        .run(|ctx| {
            let sleeper = ctx
                .spawn_with(SpawnOptions::new().monitor(), |ctx| {
                    ctx.sleep(Duration::from_secs(3600));
                })
                .unwrap();
            ctx.yield_now();
            ctx.kill(&sleeper, ExitReason::other("wake up"));
            recv_down(ctx).status
        })
        .unwrap();
    assert!(matches!(status, ExitStatus::Exit(ExitReason::Other(ref r)) if &**r == "wake up"));
}

#[test]
fn kill_of_an_agent_waiting_in_receive_runs_its_destructors() {
    struct Flag(std::sync::Arc<std::sync::atomic::AtomicBool>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }
    let dropped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = dropped.clone();
    let rt = runtime(2);
    rt.run(move |ctx| {
        let victim = ctx
            .spawn_with(SpawnOptions::new().monitor(), move |ctx| {
                let _flag = Flag(flag);
                ctx.receive();
            })
            .unwrap();
        ctx.kill(&victim, ExitReason::Kill);
        recv_down(ctx);
    })
    .unwrap();
    assert!(dropped.load(std::sync::atomic::Ordering::SeqCst));
}

#[test]
fn many_timeouts_in_a_row_do_not_pile_up_or_misfire() {
    let rt = runtime(1);
    let (timeouts, got) = rt
        .run(|ctx| {
            let mut timeouts = 0;
            for _ in 0..200 {
                if ctx.receive_timeout(Duration::from_micros(50)).is_err() {
                    timeouts += 1;
                }
            }
            ctx.send(&ctx.pid(), 1u8);
            let got = ctx.receive_timeout(Duration::from_secs(3600)).unwrap();
            (timeouts, got.downcast::<u8>().unwrap())
        })
        .unwrap();
    assert_eq!(timeouts, 200);
    assert_eq!(got, 1);
}

#[test]
fn the_watchdog_names_an_agent_that_holds_its_worker() {
    let rt = erlangen_runtime::Runtime::builder()
        .workers(2)
        .watchdog_threshold(Duration::from_millis(20))
        .build()
        .unwrap();
    let warnings = rt
        .run(|ctx| {
            ctx.spawn_with(SpawnOptions::new().monitor().worker(0), |ctx| {
                ctx.register("spinner").unwrap();
                // No runtime call that yields: spin until the watchdog has
                // named us (reading one's own stats does not yield).
                let deadline = std::time::Instant::now() + crate::support::HANG_GUARD;
                while ctx.stats(&ctx.pid()).watchdog_warnings == 0
                    && std::time::Instant::now() < deadline
                {
                    std::hint::spin_loop();
                }
                ctx.stats(&ctx.pid()).watchdog_warnings
            })
            .unwrap();
            let down = crate::support::recv_down(ctx);
            *down.status.value().unwrap().downcast_ref::<u64>().unwrap()
        })
        .unwrap();
    assert_eq!(warnings, 1, "one warning for one long slice");
}

#[test]
fn a_due_timer_reaches_its_agent_while_the_worker_that_armed_it_is_held() {
    let rt = runtime(2);
    let delivered = rt
        .run(|ctx| {
            let got = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let flag = got.clone();
            let receiver = ctx
                .spawn_with(SpawnOptions::new().worker(1), move |ctx| {
                    ctx.receive();
                    flag.store(true, std::sync::atomic::Ordering::SeqCst);
                })
                .unwrap();
            let seen = got.clone();
            ctx.spawn_with(SpawnOptions::new().monitor().worker(0), move |ctx| {
                // Armed on this worker, which then does not give it up
                // until the message has arrived.
                ctx.send_after(&receiver, (), Duration::from_millis(10));
                let deadline = std::time::Instant::now() + crate::support::HANG_GUARD;
                while !seen.load(std::sync::atomic::Ordering::SeqCst)
                    && std::time::Instant::now() < deadline
                {
                    std::hint::spin_loop();
                }
                seen.load(std::sync::atomic::Ordering::SeqCst)
            })
            .unwrap();
            let down = crate::support::recv_down(ctx);
            *down.status.value().unwrap().downcast_ref::<bool>().unwrap()
        })
        .unwrap();
    assert!(delivered, "the timer fired while its worker was held");
}

#[test]
fn a_due_timer_runs_before_a_busy_agents_next_slice_on_its_worker() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::Instant;

    let rt = runtime(1);
    let slices_after_deadline = rt
        .run(|ctx| {
            // How many slices the busy agent began once the sleeper's timer
            // was surely due; that moment as nanoseconds since `epoch`.
            let epoch = Instant::now();
            let after = Arc::new(AtomicU64::new(0));
            let due_ns = Arc::new(AtomicU64::new(u64::MAX));
            let (count, due) = (after.clone(), due_ns.clone());
            let busy = ctx.spawn(move |ctx| loop {
                ctx.yield_now();
                if epoch.elapsed().as_nanos() as u64 >= due.load(Ordering::SeqCst) {
                    count.fetch_add(1, Ordering::SeqCst);
                }
            });
            let me = ctx.pid();
            let (seen, due) = (after.clone(), due_ns.clone());
            ctx.spawn(move |ctx| {
                let delay = Duration::from_millis(5);
                ctx.send_after(&ctx.pid(), "due", delay);
                // The timer's deadline is at most this (taken after arming).
                due.store(
                    (epoch.elapsed() + delay).as_nanos() as u64,
                    Ordering::SeqCst,
                );
                assert_eq!(recv_as::<&str>(ctx), "due");
                ctx.send(&me, seen.load(Ordering::SeqCst));
            });
            let after = recv_as::<u64>(ctx);
            ctx.kill(&busy, ExitReason::Kill);
            after
        })
        .unwrap();
    // Before, a worker busy with a yielding agent looked at its timers only
    // every 61 slices (this test saw 26).
    assert!(
        slices_after_deadline <= 1,
        "the busy agent began {slices_after_deadline} slices after the timer was due"
    );
}

#[test]
fn send_interval_repeats_until_cancelled_and_ends_with_its_agent() {
    let rt = runtime(2);
    let quiet = rt
        .run(|ctx| {
            let me = ctx.pid();
            // Cancelled by its handle.
            let interval = ctx.send_interval(&me, 1u8, Duration::from_millis(1));
            for _ in 0..5 {
                assert_eq!(ctx.receive().downcast::<u8>().unwrap(), 1);
            }
            interval.cancel();
            // Those on their way, then nothing (a live 1 ms interval never
            // leaves 20 ms of quiet, so the drain would run out).
            for _ in 0..1000 {
                if ctx.receive_timeout(Duration::from_millis(20)).is_err() {
                    break;
                }
            }
            let cancelled_quiet = ctx.receive_timeout(Duration::from_millis(50)).is_err();
            // Ended with the agent that set it up.
            let owner = ctx.spawn(move |ctx| {
                let _ = ctx.send_interval(&me, 2u8, Duration::from_millis(1));
                ctx.receive();
            });
            for _ in 0..5 {
                assert_eq!(ctx.receive().downcast::<u8>().unwrap(), 2);
            }
            let watch = ctx.watch(&owner).unwrap();
            ctx.kill(&owner, ExitReason::Kill);
            let down = ctx
                .receive_match(|m| {
                    m.downcast_ref::<WatchDown>()
                        .is_some_and(|d| d.watch == watch)
                })
                .downcast::<WatchDown>()
                .unwrap();
            drop(down);
            // Those sent before the kill, then nothing.
            for _ in 0..1000 {
                if ctx.receive_timeout(Duration::from_millis(20)).is_err() {
                    break;
                }
            }
            let ended_quiet = ctx.receive_timeout(Duration::from_millis(50)).is_err();
            (cancelled_quiet, ended_quiet)
        })
        .unwrap();
    assert_eq!(quiet, (true, true));
}
