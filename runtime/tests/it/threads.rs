//! OS threads: agents stay on their worker, plain threads get their own root
//! agents, and a stack overflow names the agent.

use std::cell::RefCell;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use erlangen_runtime::{Pid, SpawnOptions};

use crate::support::{recv_as, recv_down, runtime};

thread_local! {
    /// A lazily initialised thread-local, the shape that Rust 1.95 release
    /// builds read through a stale address after a migration (pitfalls.md
    /// §3.2): it records the id of the thread that owns it.
    static OWNER: RefCell<Vec<std::thread::ThreadId>> = RefCell::new(vec![std::thread::current().id()]);
}

/// The release-mode migration probe (pitfalls.md §3.2), kept as a regression
/// test: 32 pairs of started agents ping-pong 2,000 times each on 2 workers
/// (pairs are spawned unstarted, so the workers steal them and some pairs
/// span both workers). After every receive each agent checks that it is still
/// on the thread it started on, and that the thread-local it reads is that
/// thread's own.
#[test]
fn started_agents_never_change_thread_and_read_their_own_thread_locals() {
    const PAIRS: usize = 32;
    const ROUNDS: u32 = 2_000;
    fn check(mismatches: &AtomicUsize, started_on: std::thread::ThreadId) {
        let now_on = std::thread::current().id();
        let tls_owner = OWNER.with(|owner| owner.borrow()[0]);
        if now_on != started_on || tls_owner != now_on {
            mismatches.fetch_add(1, Ordering::Relaxed);
        }
    }
    let mismatches = Arc::new(AtomicUsize::new(0));
    let rt = runtime(2);
    let seen = mismatches.clone();
    rt.run(move |ctx| {
        for _ in 0..PAIRS {
            let (seen_a, seen_b) = (seen.clone(), seen.clone());
            let a = ctx
                .spawn_with(SpawnOptions::new().monitor(), move |ctx| {
                    let started_on = std::thread::current().id();
                    for _ in 0..ROUNDS {
                        let (peer, n) = ctx.receive().downcast::<(Pid, u32)>().unwrap();
                        check(&seen_a, started_on);
                        ctx.send(&peer, n);
                    }
                })
                .unwrap();
            ctx.spawn_with(SpawnOptions::new().monitor(), move |ctx| {
                let started_on = std::thread::current().id();
                for n in 0..ROUNDS {
                    ctx.send(&a, (ctx.pid(), n));
                    assert_eq!(ctx.receive().downcast::<u32>().unwrap(), n);
                    check(&seen_b, started_on);
                }
            })
            .unwrap();
        }
        for _ in 0..2 * PAIRS {
            let status = recv_down(ctx).status;
            assert!(status.is_ok(), "{status}");
        }
    })
    .unwrap();
    assert_eq!(mismatches.load(Ordering::Relaxed), 0);
}

#[test]
fn plain_threads_each_get_their_own_root_agent() {
    let rt = Arc::new(runtime(2));
    let threads: Vec<_> = (0..4u32)
        .map(|i| {
            let rt = rt.clone();
            std::thread::spawn(move || {
                rt.run(move |ctx| {
                    let me = ctx.pid();
                    let echo = ctx.spawn(move |ctx| {
                        let n = ctx.receive().downcast::<u32>().unwrap();
                        ctx.send(&me, n);
                    });
                    ctx.send(&echo, i);
                    (ctx.pid(), recv_as::<u32>(ctx))
                })
                .unwrap()
            })
        })
        .collect();
    let results: Vec<(Pid, u32)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    for (i, (_, n)) in results.iter().enumerate() {
        assert_eq!(*n, i as u32, "each thread got its own answer");
    }
    let mut pids: Vec<Pid> = results.into_iter().map(|(pid, _)| pid).collect();
    pids.sort();
    pids.dedup();
    assert_eq!(pids.len(), 4, "each thread had its own root agent");
}

#[test]
fn one_worker_runtime_runs_agents() {
    let rt = runtime(1);
    assert_eq!(rt.workers(), 1);
    let n = rt
        .run(|ctx| {
            let me = ctx.pid();
            for i in 0..100u32 {
                let me = me.clone();
                ctx.spawn(move |ctx| ctx.send(&me, i));
            }
            (0..100).map(|_| recv_as::<u32>(ctx)).sum::<u32>()
        })
        .unwrap();
    assert_eq!(n, 4950);
}

/// Set in the child process that overflows on purpose.
const OVERFLOW_CHILD: &str = "ERLANGEN_TEST_OVERFLOW_CHILD";

#[test]
fn stack_overflow_names_the_overflowing_agent() {
    if std::env::var_os(OVERFLOW_CHILD).is_some() {
        overflow_in_an_agent();
    }
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "threads::stack_overflow_names_the_overflowing_agent",
            "--nocapture",
        ])
        .env(OVERFLOW_CHILD, "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "the child must die: {stderr}");
    assert!(
        stderr.contains("> overflowed its 32 KiB stack"),
        "stderr names the agent: {stderr}"
    );
}

fn overflow_in_an_agent() -> ! {
    #[inline(never)]
    fn recurse(depth: u64, ballast: &mut [u8; 512]) -> u64 {
        ballast[0] = depth as u8;
        if depth == u64::MAX {
            return 0;
        }
        let mut next = [0u8; 512];
        std::hint::black_box(&mut next);
        recurse(depth + 1, &mut next) + u64::from(ballast[depth as usize % 512])
    }
    let rt = runtime(1);
    let _ = rt.run(|ctx| {
        ctx.spawn_with(SpawnOptions::new().stack_size(32 * 1024).monitor(), |_| {
            recurse(0, &mut [0u8; 512])
        })
        .unwrap();
        ctx.receive();
    });
    unreachable!("the overflow aborts the process");
}

#[test]
fn stack_size_is_configurable_per_runtime_and_per_spawn() {
    #[inline(never)]
    fn deep(depth: u32) -> u64 {
        let mut frame = [0u8; 1024];
        std::hint::black_box(&mut frame);
        if depth == 0 {
            return u64::from(frame[0]);
        }
        deep(depth - 1) + u64::from(frame[depth as usize % 1024])
    }
    // About 600 KiB of frames: far past the 64 KiB default.
    let rt = runtime(1);
    let per_spawn = rt
        .run(|ctx| {
            ctx.spawn_with(SpawnOptions::new().stack_size(2 << 20).monitor(), |_| {
                deep(600)
            })
            .unwrap();
            recv_down(ctx).status.is_ok()
        })
        .unwrap();
    assert!(per_spawn);
    let big = erlangen_runtime::Runtime::builder()
        .workers(1)
        .stack_size(2 << 20)
        .build()
        .unwrap();
    assert_eq!(big.run(|_| deep(600)).unwrap(), 0);
    let refused = rt.spawn_with(SpawnOptions::new().stack_size(1024), |_| ());
    assert!(matches!(
        refused,
        Err(erlangen_runtime::Error::InvalidConfig(_))
    ));
}

#[test]
fn during_a_blocking_call_other_agents_of_the_worker_answer() {
    let rt = runtime(1);
    let order = rt
        .run(|ctx| {
            let me = ctx.pid();
            let sleeper = ctx.spawn(move |ctx| {
                ctx.receive(); // go
                let slept = ctx.blocking(|| {
                    std::thread::sleep(std::time::Duration::from_secs(2));
                    "slept"
                });
                ctx.send(&me, slept);
            });
            let echo = ctx.spawn(|ctx| loop {
                let (from, text) = ctx
                    .receive()
                    .downcast::<(erlangen_runtime::Pid, &'static str)>()
                    .unwrap();
                ctx.send(&from, text);
            });
            ctx.send(&sleeper, ());
            // One worker: if the sleep held it, the echo could not answer
            // before the sleeper is done.
            ctx.send(&echo, (ctx.pid(), "echo"));
            let first = ctx.receive().downcast::<&str>().unwrap();
            let second = ctx.receive().downcast::<&str>().unwrap();
            (first, second)
        })
        .unwrap();
    assert_eq!(order, ("echo", "slept"));
}

#[test]
fn a_panic_in_a_blocking_call_is_the_agents_panic_and_a_kill_is_at_once() {
    let rt = runtime(1);
    let (panicked, killed) = rt
        .run(|ctx| {
            let panics = ctx
                .spawn_with(SpawnOptions::new().monitor(), |ctx| {
                    ctx.blocking(|| -> u8 { panic!("inside the pool") })
                })
                .unwrap();
            let down = ctx.receive().downcast::<erlangen_runtime::Down>().unwrap();
            assert_eq!(down.pid, panics);
            let waits = ctx
                .spawn_with(SpawnOptions::new().monitor(), |ctx| {
                    ctx.blocking(|| std::thread::sleep(std::time::Duration::from_secs(3600)))
                })
                .unwrap();
            ctx.sleep(std::time::Duration::from_millis(20));
            ctx.kill(
                &waits,
                erlangen_runtime::ExitReason::other("no more waiting"),
            );
            let killed = ctx.receive().downcast::<erlangen_runtime::Down>().unwrap();
            (down.status, killed.status)
        })
        .unwrap();
    assert!(panicked
        .reason()
        .unwrap()
        .to_string()
        .contains("inside the pool"));
    assert_eq!(killed.reason().unwrap().to_string(), "no more waiting");
}
