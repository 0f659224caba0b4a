//! The safe API cannot break the runtime's invariants (issue 12): a pid of
//! one runtime handed to another is served by its own runtime, on its own
//! threads; a panicking destructor on a worker is contained; an agent that
//! cannot get a stack exits cleanly when nothing else refers to it.

use std::panic::panic_any;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use erlangen_runtime::{Ctx, Down, Error, ExitReason, ExitStatus, Pid, Runtime, SpawnOptions};

use crate::support::{recv_as, recv_down, runtime, HANG_GUARD};

/// What an agent of runtime A reports after each receive.
#[derive(Debug)]
struct Report {
    /// The thread it ran on when it started.
    started_on: ThreadId,
    /// The thread it runs on after the receive.
    now_on: ThreadId,
}

/// Spawns on `rt` an agent that reports its thread after each of `n`
/// receives on `reports`, and returns its pid.
fn reporting_agent(rt: &Runtime, n: usize, reports: mpsc::Sender<Report>) -> Pid {
    rt.spawn(move |ctx| {
        let started_on = std::thread::current().id();
        for _ in 0..n {
            let _ = ctx.receive();
            let now_on = std::thread::current().id();
            reports.send(Report { started_on, now_on }).unwrap();
        }
    })
}

fn expect_same_thread(reports: &mpsc::Receiver<Report>, n: usize) {
    for _ in 0..n {
        let report = reports.recv_timeout(HANG_GUARD).expect("a report arrives");
        assert_eq!(
            report.started_on, report.now_on,
            "an agent of runtime A resumed on another thread"
        );
    }
}

#[test]
fn sends_from_another_runtime_resume_the_agent_on_its_own_worker() {
    let rt_a = runtime(1);
    let rt_b = runtime(1);
    let (tx, reports) = mpsc::channel();
    let pid_a = reporting_agent(&rt_a, 4, tx);
    // From B's plain-thread API…
    rt_b.send(&pid_a, 1u8);
    expect_same_thread(&reports, 1);
    rt_b.send_after(&pid_a, 2u8, Duration::from_millis(1));
    expect_same_thread(&reports, 1);
    // …and from an agent of B.
    let target = pid_a.clone();
    rt_b.run(move |ctx| {
        ctx.send(&target, 3u8);
        ctx.send_after(&target, 4u8, Duration::from_millis(1));
    })
    .unwrap();
    expect_same_thread(&reports, 2);
}

#[test]
fn kills_from_another_runtime_reach_the_agent() {
    let rt_a = runtime(1);
    let rt_b = runtime(1);
    let (pids, pid_rx) = mpsc::channel();
    std::thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            rt_a.run(move |ctx| {
                let started_on = std::thread::current().id();
                let victim = ctx
                    .spawn_with(SpawnOptions::new().monitor(), |ctx| {
                        ctx.receive();
                    })
                    .unwrap();
                pids.send(victim.clone()).unwrap();
                let down = recv_down(ctx);
                (down, started_on == std::thread::current().id())
            })
        });
        let victim: Pid = pid_rx.recv_timeout(HANG_GUARD).unwrap();
        rt_b.run(move |ctx| ctx.kill(&victim, ExitReason::other("from b")))
            .unwrap();
        let (down, same_thread) = watcher.join().unwrap().unwrap();
        assert!(same_thread, "the watcher stayed on A's worker");
        assert_eq!(down.status.reason().unwrap().to_string(), "from b");
    });
    // Runtime::kill from B, too.
    let (tx, _reports) = mpsc::channel();
    let pid_a = reporting_agent(&rt_a, 1, tx);
    rt_b.kill(&pid_a, ExitReason::Kill);
    let deadline = Instant::now() + HANG_GUARD;
    while rt_a.agents().contains(&pid_a) {
        assert!(Instant::now() < deadline, "the kill reached the agent");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn links_and_monitors_across_runtimes_fire_on_each_agents_own_worker() {
    let rt_a = runtime(1);
    let rt_b = runtime(1);
    let (tx, reports) = mpsc::channel();
    let pid_a = reporting_agent(&rt_a, 1, tx);
    let target = pid_a.clone();
    let (down, same_thread) = rt_b
        .run(move |ctx| {
            let started_on = std::thread::current().id();
            ctx.monitor(&target).unwrap();
            ctx.send(&target, ());
            let down = recv_down(ctx);
            (down, started_on == std::thread::current().id())
        })
        .unwrap();
    expect_same_thread(&reports, 1);
    assert!(same_thread, "B's agent stayed on B's worker");
    assert_eq!(down.pid, pid_a);
    assert!(down.status.is_ok());

    // A link from B to A: A's normal exit kills B's agent.
    let (tx, reports) = mpsc::channel();
    let pid_a = reporting_agent(&rt_a, 1, tx);
    let target = pid_a.clone();
    let status = rt_b
        .run(move |ctx| {
            let linked = ctx
                .spawn_with(SpawnOptions::new().monitor(), move |ctx| {
                    ctx.link(&target).unwrap();
                    ctx.send(&target, ());
                    ctx.receive();
                })
                .unwrap();
            let down = recv_down(ctx);
            assert_eq!(down.pid, linked);
            down.status
        })
        .unwrap();
    expect_same_thread(&reports, 1);
    assert!(
        matches!(status, ExitStatus::Exit(ExitReason::Linked(_))),
        "{status:?}"
    );

    // An unlink across runtimes: no notification afterwards.
    let (tx, _reports) = mpsc::channel();
    let pid_a = reporting_agent(&rt_a, 1, tx);
    let target = pid_a.clone();
    let quiet = rt_b
        .run(move |ctx| {
            ctx.monitor(&target).unwrap();
            ctx.unlink(&target).unwrap();
            ctx.send(&target, ());
            ctx.receive_timeout(Duration::from_millis(50)).is_err()
        })
        .unwrap();
    assert!(quiet, "no Down after unlink");
}

#[test]
fn a_name_cannot_be_registered_to_an_agent_of_another_runtime() {
    let rt_a = runtime(1);
    let rt_b = runtime(1);
    let (tx, _reports) = mpsc::channel();
    let pid_a = reporting_agent(&rt_a, 1, tx);
    assert!(matches!(
        rt_b.register("foreign", &pid_a),
        Err(Error::NotLocal(_))
    ));
    let target = pid_a.clone();
    let refused = rt_b
        .run(move |ctx| ctx.register_pid("foreign", &target))
        .unwrap();
    assert!(matches!(refused, Err(Error::NotLocal(_))));
    assert!(rt_b.whereis("foreign").is_none());
    assert_eq!(rt_a.register("local", &pid_a), Ok(()));
}

#[test]
fn a_send_queued_on_a_busy_runtime_survives_the_targets_runtime_dropping() {
    let rt_a = runtime(1);
    let rt_b = runtime(1);
    let busy = Arc::new(AtomicBool::new(true));
    let spinning = Arc::new(AtomicBool::new(false));
    let (flag, started) = (busy.clone(), spinning.clone());
    // Hold B's only worker without any runtime call.
    rt_b.spawn(move |_| {
        started.store(true, Ordering::SeqCst);
        while flag.load(Ordering::SeqCst) {
            std::hint::spin_loop();
        }
    });
    while !spinning.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    let pid_a = rt_a.spawn(|ctx| {
        ctx.receive();
    });
    rt_b.send(&pid_a, 1u8);
    drop(pid_a);
    drop(rt_a);
    busy.store(false, Ordering::SeqCst);
    // B's worker must not find A's agent in its queues.
    assert_eq!(rt_b.run(|_| 5).unwrap(), 5);
}

#[test]
fn a_runtime_that_shuts_down_tells_monitors_on_other_runtimes_noconnection() {
    let rt_a = runtime(1);
    let rt_b = runtime(1);
    let (tx, _reports) = mpsc::channel();
    let pid_a = reporting_agent(&rt_a, 1, tx);
    let (ready, is_ready) = mpsc::channel();
    let target = pid_a.clone();
    let (monitor_status, link_status) = std::thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            rt_b.run(move |ctx| {
                let me = ctx.pid();
                let linked = ctx
                    .spawn_with(SpawnOptions::new().monitor(), {
                        let target = target.clone();
                        move |ctx| {
                            ctx.link(&target).unwrap();
                            ctx.send(&me, ());
                            ctx.receive();
                        }
                    })
                    .unwrap();
                recv_as::<()>(ctx);
                ctx.monitor(&target).unwrap();
                ready.send(()).unwrap();
                let mut statuses = (None, None);
                for _ in 0..2 {
                    let down: Down = recv_down(ctx);
                    if down.pid == linked {
                        statuses.1 = Some(down.status);
                    } else {
                        statuses.0 = Some(down.status);
                    }
                }
                statuses
            })
        });
        is_ready.recv_timeout(HANG_GUARD).unwrap();
        drop(rt_a);
        watcher.join().unwrap().unwrap()
    });
    assert!(
        matches!(
            monitor_status,
            Some(ExitStatus::Exit(ExitReason::NoConnection))
        ),
        "{monitor_status:?}"
    );
    assert!(
        matches!(
            link_status,
            Some(ExitStatus::Exit(ExitReason::NoConnection))
        ),
        "{link_status:?}"
    );
}

/// A value whose destructor panics.
#[derive(Debug)]
struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("Bomb's destructor panicked");
        }
    }
}

/// Waits until `rt` has contained `n` panics, then checks that it still
/// runs agents on every worker and shuts down cleanly.
fn expect_contained_and_healthy(rt: Runtime, n: u64) {
    let deadline = Instant::now() + HANG_GUARD;
    while rt.contained_panics() < n {
        assert!(
            Instant::now() < deadline,
            "{} of {n} panics contained",
            rt.contained_panics()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let workers = rt.workers();
    let total = rt
        .run(move |ctx| {
            let me = ctx.pid();
            for worker in 0..workers {
                let me = me.clone();
                ctx.spawn_with(SpawnOptions::new().worker(worker), move |ctx| {
                    ctx.send(&me, 1u32)
                })
                .unwrap();
            }
            (0..workers).map(|_| recv_as::<u32>(ctx)).sum::<u32>()
        })
        .unwrap();
    assert_eq!(total as usize, workers, "every worker still runs agents");
    drop(rt);
}

#[test]
fn a_returned_value_whose_destructor_panics_does_not_end_a_worker() {
    for workers in [1, 2] {
        let rt = runtime(workers);
        // The reproduction: an agent waits holding a value whose
        // destructor sends; another returns a Bomb; then the runtime drops.
        struct SendsOnDrop<'a>(&'a Ctx, Pid);
        impl Drop for SendsOnDrop<'_> {
            fn drop(&mut self) {
                self.0.send(&self.1, ());
            }
        }
        let sink = rt.spawn(|ctx| loop {
            ctx.receive();
        });
        rt.spawn(move |ctx| {
            let _guard = SendsOnDrop(ctx, sink.clone());
            ctx.receive();
        });
        rt.spawn(|_| Bomb);
        expect_contained_and_healthy(rt, 1);
    }
}

#[test]
fn leftover_messages_whose_destructors_panic_do_not_end_a_worker() {
    for workers in [1, 2] {
        let rt = runtime(workers);
        let pid = rt.spawn(|ctx| ctx.sleep(Duration::from_millis(20)));
        rt.send(&pid, Bomb);
        rt.send(&pid, Bomb);
        expect_contained_and_healthy(rt, 2);
    }
}

#[test]
fn a_refused_timer_message_whose_destructor_panics_does_not_end_a_worker() {
    for workers in [1, 2] {
        let rt = runtime(workers);
        let dead = rt.spawn(|_| ());
        let deadline = Instant::now() + HANG_GUARD;
        while rt.agents().contains(&dead) {
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(1));
        }
        rt.send_after(&dead, Bomb, Duration::from_millis(1));
        expect_contained_and_healthy(rt, 1);
    }
}

#[test]
fn a_panic_payload_whose_destructor_panics_does_not_end_a_worker() {
    for workers in [1, 2] {
        let rt = runtime(workers);
        let reason = rt
            .run(|ctx| {
                ctx.spawn_with(SpawnOptions::new().monitor(), |_| -> () { panic_any(Bomb) })
                    .unwrap();
                recv_down(ctx).status
            })
            .unwrap();
        assert!(
            matches!(reason, ExitStatus::Exit(ExitReason::Panic(_))),
            "{reason:?}"
        );
        expect_contained_and_healthy(rt, 1);
    }
}

#[test]
fn an_exit_reason_carrying_a_panicking_value_does_not_end_a_worker() {
    for workers in [1, 2] {
        let rt = runtime(workers);
        rt.spawn(|ctx| {
            let bomb = ctx.spawn(|ctx| {
                ctx.receive();
                Bomb
            });
            ctx.link(&bomb).unwrap();
            ctx.send(&bomb, ());
            ctx.receive();
        });
        expect_contained_and_healthy(rt, 1);
    }
}

/// Set in the child process that runs out of stack address space.
const NO_STACKS_CHILD: &str = "ERLANGEN_TEST_NO_STACKS_CHILD";

#[test]
fn an_agent_that_gets_no_stack_exits_with_system_limit_when_nothing_else_holds_it() {
    if std::env::var_os(NO_STACKS_CHILD).is_some() {
        run_out_of_stacks();
        return;
    }
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "soundness::an_agent_that_gets_no_stack_exits_with_system_limit_when_nothing_else_holds_it",
            "--nocapture",
        ])
        .env(NO_STACKS_CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("no-stacks: ok"), "{stdout}\n{stderr}");
}

/// In the child: the root agent caps the address space, then spawns agents
/// whose stack size class needs a new 1 GiB slab, which the kernel refuses.
fn run_out_of_stacks() {
    let rt = runtime(1);
    let (monitored, unheld) = rt
        .run(|ctx| {
            let vm_kib: u64 = std::fs::read_to_string("/proc/self/status")
                .unwrap()
                .lines()
                .find_map(|line| line.strip_prefix("VmSize:"))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
                .expect("VmSize");
            let cap = (vm_kib + 256 * 1024) * 1024;
            let limit = libc::rlimit {
                rlim_cur: cap,
                rlim_max: libc::RLIM_INFINITY,
            };
            // SAFETY: setrlimit reads the struct we pass.
            assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) }, 0);
            let big = SpawnOptions::new().stack_size(32 * 1024 * 1024);
            // No reference but the runtime's own: the spawner drops the pid.
            for _ in 0..10 {
                drop(ctx.spawn_with(big.clone(), |_| ()).unwrap());
            }
            ctx.spawn_with(big.clone().monitor(), |_| ()).unwrap();
            let monitored = recv_down(ctx).status;
            let deadline = Instant::now() + HANG_GUARD;
            while ctx.agents().len() > 1 && Instant::now() < deadline {
                ctx.sleep(Duration::from_millis(1));
            }
            (monitored, ctx.agents().len())
        })
        .unwrap();
    assert!(
        matches!(monitored, ExitStatus::Exit(ExitReason::SystemLimit)),
        "{monitored:?}"
    );
    assert_eq!(unheld, 1, "only the root is alive");
    println!("no-stacks: ok");
}
