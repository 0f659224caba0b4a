//! Shutdown: every agent unwound, every stack returned, every thread joined.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::support::{runtime, DropCounter as Guard};

#[test]
fn dropping_the_runtime_unwinds_every_waiting_agent() {
    const N: usize = 1_000;
    let drops = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let rt = runtime(2);
    let counter = drops.clone();
    let running = started.clone();
    rt.run(move |ctx| {
        for _ in 0..N {
            let guard = Guard(counter.clone());
            let running = running.clone();
            ctx.spawn(move |ctx| {
                let _guard = guard;
                running.fetch_add(1, Ordering::SeqCst);
                ctx.receive();
            });
        }
        // Make sure they all started and wait (hang guard: the test's own).
        while running.load(Ordering::SeqCst) < N {
            ctx.sleep(Duration::from_millis(1));
        }
    })
    .unwrap();
    let carved = rt.stack_pool_stats().slots_carved;
    assert!(carved >= N, "{carved} stacks carved");
    drop(rt);
    assert_eq!(drops.load(Ordering::SeqCst), N);
}

#[test]
fn dropping_the_runtime_drops_agents_that_never_started() {
    let drops = Arc::new(AtomicUsize::new(0));
    let rt = runtime(1);
    let counter = drops.clone();
    rt.run(move |ctx| {
        for _ in 0..100 {
            let guard = Guard(counter.clone());
            ctx.spawn(move |_| drop(guard));
        }
        // Exit before the worker runs any of them.
    })
    .unwrap();
    drop(rt);
    assert_eq!(drops.load(Ordering::SeqCst), 100);
}

#[test]
fn agents_spawned_while_unwinding_at_shutdown_are_dropped_too() {
    struct SpawnOnDrop(Arc<AtomicUsize>);
    impl Drop for SpawnOnDrop {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let rt = runtime(2);
    let counter = drops.clone();
    rt.run(move |ctx| {
        ctx.spawn(move |ctx| {
            let _guard = SpawnOnDrop(counter);
            ctx.receive();
        });
    })
    .unwrap();
    std::thread::sleep(Duration::from_millis(10));
    drop(rt);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn runtimes_can_be_built_and_dropped_many_times() {
    for _ in 0..50 {
        let rt = runtime(2);
        assert!(rt.run(|ctx| ctx.pid().serial() >= 1).unwrap());
    }
}

#[test]
fn an_idle_runtime_parks_every_worker() {
    let rt = runtime(2);
    rt.run(|ctx| {
        let me = ctx.pid();
        ctx.spawn(move |ctx| ctx.send(&me, ()));
        ctx.receive();
    })
    .unwrap();
    // Parked workers sleep in the kernel until woken: no CPU. Wait for both
    // (hang guard only).
    let guard = std::time::Instant::now() + crate::support::HANG_GUARD;
    while rt.parked_workers() < 2 && std::time::Instant::now() < guard {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(rt.parked_workers(), 2);
    // And they wake for new work.
    assert_eq!(rt.run(|_| 7).unwrap(), 7);
}

#[test]
fn dropping_the_runtime_while_agents_sit_in_every_queue_frees_them_all() {
    // Agents that message each other across two workers and yield, so
    // that at the drop some are in LIFO slots, run queues, inboxes, the
    // yielded queue and the injector (the queues hold uncounted tasks that
    // the live table keeps alive until the very end of shutdown).
    const RING: usize = 64;
    for round in 0..20 {
        let drops = Arc::new(AtomicUsize::new(0));
        let rt = runtime(2);
        let counter = drops.clone();
        let first = rt
            .run(move |ctx| {
                let spawn_member = |next: Option<erlangen_runtime::Pid>| {
                    let guard = Guard(counter.clone());
                    ctx.spawn(move |ctx| {
                        let _guard = guard;
                        let next = match next {
                            Some(next) => next,
                            None => ctx.receive().downcast::<erlangen_runtime::Pid>().unwrap(),
                        };
                        loop {
                            let token = ctx.receive();
                            ctx.yield_now();
                            ctx.send(&next, token);
                        }
                    })
                };
                let first = spawn_member(None);
                let mut next = first.clone();
                for _ in 1..RING {
                    next = spawn_member(Some(next));
                }
                ctx.send(&first, next);
                for token in 0..8u32 {
                    ctx.send(&first, token);
                }
                first
            })
            .unwrap();
        // Messages from outside go through the injector and inboxes.
        for token in 0..100u32 {
            rt.send(&first, token);
        }
        std::thread::sleep(Duration::from_micros(200 * (round % 5)));
        drop(rt);
        assert_eq!(drops.load(Ordering::SeqCst), RING, "round {round}");
    }
}
