//! cargo bench --bench suite [-- --quick] [-- CASE…]
//!
//! Our side of the benchmark suite (perf-anchors.md §7): ping-pong, counting,
//! thread ring, skynet, 1 M parked agents, spawn churn, parallel map. Each
//! case runs in a child process of its own, so that peak RSS and the mapping
//! count belong to that case alone, and prints one line per figure:
//!
//! ```text
//! B1 ping-pong 1w rtt_ns=…
//! ```
//!
//! `--quick` runs every case at 1/10 size and checks results only (CI's smoke
//! run). Timings here are for `benches/RESULTS.md`, quoted as ratios against
//! the peers measured in the same run (benches/peers/, the benches issue).

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use erlangen::{Ctx, Gather, Pid, Runtime, SpawnOptions};

#[path = "suite/cluster.rs"]
mod cluster;
#[path = "suite/dist.rs"]
mod dist;
#[path = "suite/interop.rs"]
mod interop;
#[path = "suite/mixed.rs"]
mod mixed;
#[path = "suite/simulation.rs"]
mod simulation;

/// Longest a case may take before it is killed as hung.
const CASE_TIME_MAX: Duration = Duration::from_secs(300);

/// A case runs at 1/divisor of its full size.
type Case = (&'static str, fn(u64));

/// Every case.
const CASES: &[Case] = &[
    ("ping_pong_1w", ping_pong_1w),
    ("ping_pong_2w", ping_pong_2w),
    ("ping_pong_2w_cross", ping_pong_2w_cross),
    ("ping_pong_traced_1w", ping_pong_traced_1w),
    ("counting_1w", counting_1w),
    ("counting_2w", counting_2w),
    ("ring_100", ring_100),
    ("ring_10000", ring_10000),
    ("ring_100_2w", ring_100_2w),
    ("skynet", skynet),
    ("parked", parked),
    ("hibernated", hibernated),
    ("churn_1w", churn_1w),
    ("churn_2w", churn_2w),
    ("chameneos_1w", chameneos_1w),
    ("chameneos_2w", chameneos_2w),
    ("big_1w", big_1w),
    ("big_2w", big_2w),
    ("parallel_map", parallel_map),
    ("call_reply", call_reply),
    ("gen_call", gen_call),
    ("mixed_load", mixed::mixed_load),
    ("dist_rtt", dist::dist_rtt),
    ("dist_rtt_tls", dist::dist_rtt_tls),
    ("dist_call", dist::dist_call),
    ("dist_oneway_1", dist::dist_oneway_1),
    ("dist_oneway_8", dist::dist_oneway_8),
    ("dist_bulk_1m", dist::dist_bulk_1m),
    ("dist_bulk_64m", dist::dist_bulk_64m),
    ("dist_hol", dist::dist_hol),
    ("erl_rtt", interop::erl_rtt),
    ("erl_oneway_1", interop::erl_oneway_1),
    ("cluster_mesh", cluster::cluster_mesh),
    ("cluster_group_send", cluster::cluster_group_send),
    ("sim_3x10k", simulation::sim_3x10k),
];

/// Cases run only as a child of another case.
const HELPERS: &[Case] = &[
    ("dist_node", dist::dist_node),
    ("cluster_node", cluster::cluster_node),
];

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let quick = args.iter().any(|a| a == "--quick");
    let divisor = if quick { 10 } else { 1 };
    let chosen: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with("--"))
        .map(String::as_str)
        .collect();
    if let Ok(case) = std::env::var("ERLANGEN_BENCH_CASE") {
        match CASES.iter().chain(HELPERS).find(|(name, _)| *name == case) {
            Some((_, run)) => run(divisor),
            None => {
                eprintln!("unknown case {case}");
                std::process::exit(2);
            }
        }
        return;
    }
    let exe = std::env::current_exe().expect("own path");
    let mut failed = false;
    for (name, _) in CASES {
        if !chosen.is_empty() && !chosen.contains(name) {
            continue;
        }
        let mut child = Command::new(&exe)
            .args(if quick { vec!["--quick"] } else { vec![] })
            .env("ERLANGEN_BENCH_CASE", name)
            .spawn()
            .expect("run a case");
        // A hang guard, far above any case's time.
        let deadline = Instant::now() + CASE_TIME_MAX;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for a case") {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        match status {
            Some(status) if status.success() => {}
            Some(status) => {
                eprintln!("case {name} failed: {status}");
                failed = true;
            }
            None => {
                eprintln!("case {name} did not finish in {CASE_TIME_MAX:?}: killed");
                failed = true;
            }
        }
    }
    if failed {
        std::process::exit(1);
    }
}

fn runtime(workers: usize) -> Runtime {
    Runtime::builder()
        .workers(workers)
        .build()
        .expect("runtime starts")
}

/// A runtime whose agents (the root included) take up to `mailbox_len`
/// messages: for cases where many agents report to one.
fn runtime_with_mailbox(workers: usize, mailbox_len: usize) -> Runtime {
    Runtime::builder()
        .workers(workers)
        .mailbox_len(mailbox_len)
        .build()
        .expect("runtime starts")
}

/// Prints one figure line.
fn figure(case: &str, params: &str, metrics: &[(&str, String)]) {
    let metrics: Vec<String> = metrics.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("{case} {params} {}", metrics.join(" "));
}

fn per(elapsed: Duration, n: u64) -> String {
    format!("{:.1}", elapsed.as_nanos() as f64 / n as f64)
}

/// A field of /proc/self/status, in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn maps_count() -> usize {
    std::fs::read_to_string("/proc/self/maps").map_or(0, |m| m.lines().count())
}

// ---- B1 ping-pong -------------------------------------------------------

fn ping_pong(workers: usize, cross: bool, divisor: u64, label: &str) {
    ping_pong_on(runtime(workers), cross, false, divisor, label);
}

/// B1 on `rt`; with `traced`, the pinger starts a trace first, so every
/// ping and pong carries it (every message sampled).
fn ping_pong_on(rt: Runtime, cross: bool, traced: bool, divisor: u64, label: &str) {
    let rounds = 1_000_000 / divisor;
    let elapsed = rt
        .run(move |ctx| {
            let me = ctx.pid();
            let options = |w: usize| {
                if cross {
                    SpawnOptions::new().worker(w)
                } else {
                    SpawnOptions::new()
                }
            };
            let ponger = ctx
                .spawn_with(options(1), move |ctx| {
                    let pinger = ctx.receive().downcast::<Pid>().unwrap();
                    for _ in 0..rounds {
                        ctx.receive();
                        ctx.send(&pinger, ());
                    }
                })
                .unwrap();
            let pinger = ctx
                .spawn_with(options(0), move |ctx| {
                    ctx.send(&ponger, ctx.pid());
                    if traced {
                        ctx.start_trace("B1");
                    }
                    let started = Instant::now();
                    for _ in 0..rounds {
                        ctx.send(&ponger, ());
                        ctx.receive();
                    }
                    let elapsed = started.elapsed();
                    ctx.send(&me, elapsed);
                })
                .unwrap();
            let _ = pinger;
            ctx.receive().downcast::<Duration>().unwrap()
        })
        .unwrap();
    figure(
        "B1 ping-pong",
        label,
        &[
            ("rounds", rounds.to_string()),
            ("rtt_ns", per(elapsed, rounds)),
        ],
    );
}

fn ping_pong_1w(d: u64) {
    ping_pong(1, false, d, "1w");
}
fn ping_pong_2w(d: u64) {
    ping_pong(2, false, d, "2w");
}
fn ping_pong_2w_cross(d: u64) {
    ping_pong(2, true, d, "2w-cross");
}

/// Counts finished spans, as cheaply as a sink can: what tracing costs the
/// runtime itself, without an exporter's.
struct CountSpans(std::sync::atomic::AtomicU64);

impl erlangen::SpanSink for CountSpans {
    fn record(&self, _span: erlangen::SpanRecord) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// B1 with every message traced and sampled (issue 24: the cost of
/// tracing on), spans counted by a sink.
fn ping_pong_traced_1w(d: u64) {
    let rt = Runtime::builder()
        .workers(1)
        .span_sink(std::sync::Arc::new(CountSpans(Default::default())))
        .build()
        .expect("runtime starts");
    ping_pong_on(rt, false, true, d, "1w traced");
}

// ---- B2 counting --------------------------------------------------------

fn counting(workers: usize, divisor: u64, label: &str) {
    let n = 1_000_000 / divisor;
    let rt = runtime(workers);
    let (elapsed, total) = rt
        .run(move |ctx| {
            let me = ctx.pid();
            let counter = ctx
                .spawn_with(
                    SpawnOptions::new().mailbox_len(n as usize + 1),
                    move |ctx| {
                        let mut total = 0u64;
                        loop {
                            let m = ctx.receive();
                            match m.downcast::<u64>() {
                                Ok(v) => total += v,
                                Err(_) => break,
                            }
                        }
                        ctx.send(&me, total);
                    },
                )
                .unwrap();
            let started = Instant::now();
            for i in 0..n {
                ctx.send(&counter, i);
            }
            ctx.send(&counter, "total?");
            let total = ctx.receive().downcast::<u64>().unwrap();
            (started.elapsed(), total)
        })
        .unwrap();
    assert_eq!(total, n * (n - 1) / 2, "counting lost messages");
    figure(
        "B2 counting",
        label,
        &[("messages", n.to_string()), ("per_msg_ns", per(elapsed, n))],
    );
}

fn counting_1w(d: u64) {
    counting(1, d, "1w");
}
fn counting_2w(d: u64) {
    counting(2, d, "2w");
}

// ---- B3 thread ring -----------------------------------------------------

fn ring(workers: usize, size: usize, divisor: u64, label: &str) {
    let hops = 1_000_000 / divisor;
    let rt = runtime(workers);
    let elapsed = rt
        .run(move |ctx| {
            let me = ctx.pid();
            // Agent i forwards to agent i+1; the last forwards to the first.
            let first = ctx.spawn(move |ctx| ring_member(ctx, me.clone(), None));
            let mut next = first.clone();
            for _ in 1..size {
                let me = ctx.pid();
                let to = next.clone();
                next = ctx.spawn(move |ctx| ring_member(ctx, me, Some(to)));
            }
            ctx.send(&first, next.clone());
            let started = Instant::now();
            ctx.send(&next, hops);
            ctx.receive().downcast::<&str>().unwrap();
            // The stop token then travels the ring once and ends every member.
            started.elapsed()
        })
        .unwrap();
    figure(
        "B3 ring",
        label,
        &[
            ("agents", size.to_string()),
            ("hops", hops.to_string()),
            ("per_hop_ns", per(elapsed, hops)),
        ],
    );
}

fn ring_member(ctx: &mut Ctx, root: Pid, next: Option<Pid>) {
    let next = match next {
        Some(next) => next,
        None => ctx.receive().downcast::<Pid>().unwrap(),
    };
    loop {
        let token = ctx.receive().downcast::<u64>().unwrap();
        if token == 0 {
            ctx.send(&root, "done");
            ctx.send(&next, u64::MAX);
            return;
        }
        if token == u64::MAX {
            ctx.send(&next, u64::MAX);
            return;
        }
        ctx.send(&next, token - 1);
    }
}

fn ring_100(d: u64) {
    ring(1, 100, d, "100 1w");
}
fn ring_10000(d: u64) {
    ring(1, 10_000, d, "10000 1w");
}
fn ring_100_2w(d: u64) {
    ring(2, 100, d, "100 2w");
}

// ---- B4 skynet ----------------------------------------------------------

fn skynet_agent(ctx: &mut Ctx, parent: Pid, number: u64, size: u64) {
    if size == 1 {
        ctx.send(&parent, number);
        return;
    }
    let me = ctx.pid();
    let step = size / 10;
    for i in 0..10 {
        let me = me.clone();
        ctx.spawn(move |ctx| skynet_agent(ctx, me, number + i * step, step));
    }
    let sum: u64 = (0..10)
        .map(|_| ctx.receive().downcast::<u64>().unwrap())
        .sum();
    ctx.send(&parent, sum);
}

fn skynet(divisor: u64) {
    let leaves = 1_000_000 / divisor;
    let rt = runtime(2);
    let started = Instant::now();
    let sum = rt
        .run(move |ctx| {
            let me = ctx.pid();
            ctx.spawn(move |ctx| skynet_agent(ctx, me, 0, leaves));
            ctx.receive().downcast::<u64>().unwrap()
        })
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(sum, leaves * (leaves - 1) / 2, "skynet sum");
    let agents = leaves + leaves / 9;
    figure(
        "B4 skynet",
        "2w",
        &[
            ("agents", agents.to_string()),
            ("sum", sum.to_string()),
            ("wall_ms", format!("{:.1}", elapsed.as_secs_f64() * 1e3)),
            (
                "peak_rss_mib",
                format!("{:.1}", status_kib("VmHWM:") as f64 / 1024.0),
            ),
        ],
    );
}

// ---- B5 1 M parked agents -----------------------------------------------

fn parked(divisor: u64) {
    let n = 1_000_000 / divisor as usize;
    let rt = runtime(2);
    let rss_before = status_kib("VmRSS:");
    let maps_before = maps_count();
    // Round 0 runs on cold memory (every stack page faulted in for the first
    // time); round 1 reuses the pooled stacks (warm).
    for round in 0..2 {
        let (spawn_time, rss, maps, teardown) = parked_round(&rt, n);
        let rss_per_agent = (rss.saturating_sub(rss_before)) as f64 * 1024.0 / n as f64;
        figure(
            "B5 parked",
            if round == 0 { "2w cold" } else { "2w warm" },
            &[
                ("agents", n.to_string()),
                ("spawn_ns_per_agent", per(spawn_time, n as u64)),
                ("rss_bytes_per_agent", format!("{rss_per_agent:.0}")),
                ("maps", maps.to_string()),
                ("maps_added", (maps as i64 - maps_before as i64).to_string()),
                ("teardown_ns_per_agent", per(teardown, n as u64)),
            ],
        );
        assert!(maps < 1000, "mapping count {maps}");
    }
}

/// B5 with hibernation, in a process of its own (so that no other round's
/// stacks stay resident): `n` agents park in receive, as in `parked`; then
/// each is told to hibernate (`Ctx::hibernate`: its stack goes back to the
/// pool and its pages to the kernel); then each is woken by a message and
/// runs its continuation to the end. Figures per agent: the RSS once all
/// hibernate, the time to hibernate them all, and the time to wake them
/// all (comparable to `parked`'s `teardown_ns_per_agent`).
fn hibernated(divisor: u64) {
    /// The word that makes a parked agent hibernate.
    struct Hibernate;
    let n = 1_000_000 / divisor as usize;
    let rt = runtime(2);
    let rss_before = status_kib("VmRSS:");
    let parked = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let (rss_parked, rss, maps, hibernate, wake) = rt
        .run(move |ctx| {
            let mut agents = Vec::with_capacity(n);
            for _ in 0..n {
                let (parked, done) = (parked.clone(), done.clone());
                agents.push(ctx.spawn(move |ctx| {
                    parked.fetch_add(1, Ordering::Relaxed);
                    ctx.receive_match(|m| m.is::<Hibernate>());
                    ctx.hibernate(move |ctx| {
                        ctx.receive();
                        done.fetch_add(1, Ordering::Relaxed);
                    })
                }));
            }
            let wait_for = |counter: &AtomicUsize| {
                while counter.load(Ordering::Relaxed) < n {
                    ctx.sleep(Duration::from_micros(200));
                }
            };
            wait_for(&parked);
            let rss_parked = status_kib("VmRSS:");
            let t0 = Instant::now();
            for agent in &agents {
                ctx.send(agent, Hibernate);
            }
            // Each agent is looked at until it has hibernated, in order.
            for agent in &agents {
                while ctx.stats(agent).hibernations == 0 {
                    ctx.sleep(Duration::from_micros(200));
                }
            }
            let hibernate = t0.elapsed();
            let rss = status_kib("VmRSS:");
            let maps = maps_count();
            let t1 = Instant::now();
            for agent in &agents {
                ctx.send(agent, ());
            }
            wait_for(&done);
            (rss_parked, rss, maps, hibernate, t1.elapsed())
        })
        .unwrap();
    let per_agent = |kib: u64| {
        format!(
            "{:.0}",
            kib.saturating_sub(rss_before) as f64 * 1024.0 / n as f64
        )
    };
    figure(
        "B5 hibernated",
        "2w",
        &[
            ("agents", n.to_string()),
            ("rss_bytes_per_agent_parked", per_agent(rss_parked)),
            ("rss_bytes_per_agent", per_agent(rss)),
            ("maps", maps.to_string()),
            ("hibernate_ns_per_agent", per(hibernate, n as u64)),
            ("wake_ns_per_agent", per(wake, n as u64)),
        ],
    );
    assert!(maps < 1000, "mapping count {maps}");
}

/// Spawns `n` agents that park in receive, then ends them; returns the
/// spawn time, RSS and mapping count at the plateau, and the teardown time.
fn parked_round(rt: &Runtime, n: usize) -> (Duration, u64, usize, Duration) {
    let started = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    rt.run(move |ctx| {
        let t0 = Instant::now();
        let mut agents = Vec::with_capacity(n);
        for _ in 0..n {
            let started = started.clone();
            let done = done.clone();
            agents.push(ctx.spawn(move |ctx| {
                started.fetch_add(1, Ordering::Relaxed);
                ctx.receive();
                done.fetch_add(1, Ordering::Relaxed);
            }));
        }
        while started.load(Ordering::Relaxed) < n {
            ctx.sleep(Duration::from_micros(200));
        }
        let spawn_time = t0.elapsed();
        let rss = status_kib("VmRSS:");
        let maps = maps_count();
        let t1 = Instant::now();
        for agent in &agents {
            ctx.send(agent, ());
        }
        while done.load(Ordering::Relaxed) < n {
            ctx.sleep(Duration::from_micros(200));
        }
        (spawn_time, rss, maps, t1.elapsed())
    })
    .unwrap()
}

// ---- B6 spawn churn -----------------------------------------------------

fn churn(workers: usize, divisor: u64, label: &str) {
    let n = 1_000_000 / divisor as usize;
    let rt = runtime(workers);
    let finished = Arc::new(AtomicUsize::new(0));
    let counter = finished.clone();
    let elapsed = rt
        .run(move |ctx| {
            let started = Instant::now();
            for i in 0..n {
                let counter = counter.clone();
                let agent = ctx.spawn(move |ctx| {
                    let x = ctx.receive().downcast::<f64>().unwrap();
                    let y = (x.sin() * x.cos()).abs();
                    counter.fetch_add(1, Ordering::Relaxed);
                    std::hint::black_box(y);
                });
                ctx.send(&agent, i as f64);
            }
            while counter.load(Ordering::Relaxed) < n {
                ctx.yield_now();
            }
            started.elapsed()
        })
        .unwrap();
    assert_eq!(finished.load(Ordering::Relaxed), n);
    figure(
        "B6 churn",
        label,
        &[
            ("agents", n.to_string()),
            ("per_agent_ns", per(elapsed, n as u64)),
        ],
    );
}

fn churn_1w(d: u64) {
    churn(1, d, "1w");
}
fn churn_2w(d: u64) {
    churn(2, d, "2w");
}

// ---- B7 chameneos and big ---------------------------------------------

/// A creature asks the broker for a partner: (who, colour).
struct Meet(Pid, u8);

fn chameneos(workers: usize, divisor: u64, label: &str) {
    const CREATURES: usize = 100;
    let meetings = 200_000 / divisor;
    let rt = runtime_with_mailbox(workers, 4 * CREATURES);
    let (elapsed, total) = rt
        .run(move |ctx| {
            let me = ctx.pid();
            let started = Instant::now();
            let broker = ctx
                .spawn_with(SpawnOptions::new().mailbox_len(2 * CREATURES), move |ctx| {
                    let mut waiting: Option<Meet> = None;
                    for _ in 0..meetings {
                        loop {
                            let meet = ctx.receive().downcast::<Meet>().unwrap();
                            match waiting.take() {
                                None => waiting = Some(meet),
                                Some(first) => {
                                    ctx.send(&first.0, Some(meet.1));
                                    ctx.send(&meet.0, Some(first.1));
                                    break;
                                }
                            }
                        }
                    }
                    // Tell everyone to stop: the one waiting now, then each
                    // of the others as its next request comes in.
                    let mut left = CREATURES;
                    if let Some(first) = waiting.take() {
                        ctx.send(&first.0, None::<u8>);
                        left -= 1;
                    }
                    for _ in 0..left {
                        let meet = ctx.receive().downcast::<Meet>().unwrap();
                        ctx.send(&meet.0, None::<u8>);
                    }
                })
                .unwrap();
            for i in 0..CREATURES {
                let broker = broker.clone();
                let me = me.clone();
                ctx.spawn(move |ctx| {
                    let mut colour = (i % 3) as u8;
                    let mut met = 0u64;
                    loop {
                        ctx.send(&broker, Meet(ctx.pid(), colour));
                        match ctx.receive().downcast::<Option<u8>>().unwrap() {
                            Some(other) => {
                                colour = if colour == other {
                                    colour
                                } else {
                                    3 - colour - other
                                };
                                met += 1;
                            }
                            None => break,
                        }
                    }
                    ctx.send(&me, met);
                });
            }
            let total: u64 = (0..CREATURES)
                .map(|_| ctx.receive().downcast::<u64>().unwrap())
                .sum();
            (started.elapsed(), total)
        })
        .unwrap();
    assert_eq!(total, 2 * meetings, "every meeting counts twice");
    figure(
        "B7 chameneos",
        label,
        &[
            ("meetings", meetings.to_string()),
            ("total_ms", format!("{:.1}", elapsed.as_secs_f64() * 1e3)),
        ],
    );
}

fn chameneos_1w(d: u64) {
    chameneos(1, d, "1w");
}
fn chameneos_2w(d: u64) {
    chameneos(2, d, "2w");
}

/// Savina's big: messages between many agents.
enum Big {
    /// Everyone's pids.
    Peers(Arc<Vec<Pid>>),
    /// A ping from this agent.
    Ping(usize),
    /// The answer.
    Pong,
    /// The run is over.
    Stop,
}

fn big(workers: usize, divisor: u64, label: &str) {
    const AGENTS: usize = 120;
    let pings = 20_000 / divisor;
    let rt = runtime_with_mailbox(workers, 4 * AGENTS);
    let (elapsed, done) = rt
        .run(move |ctx| {
            let me = ctx.pid();
            let mut pids = Vec::with_capacity(AGENTS);
            for index in 0..AGENTS {
                let me = me.clone();
                pids.push(
                    ctx.spawn_with(SpawnOptions::new().mailbox_len(4 * AGENTS), move |ctx| {
                        big_agent(ctx, index, pings, me)
                    })
                    .unwrap(),
                );
            }
            let peers = Arc::new(pids.clone());
            let started = Instant::now();
            for pid in &pids {
                ctx.send(pid, Big::Peers(peers.clone()));
            }
            let done = (0..AGENTS)
                .map(|_| ctx.receive().downcast::<u64>().unwrap())
                .sum::<u64>();
            let elapsed = started.elapsed();
            for pid in &pids {
                ctx.send(pid, Big::Stop);
            }
            (elapsed, done)
        })
        .unwrap();
    assert_eq!(done, AGENTS as u64 * pings);
    figure(
        "B7 big",
        label,
        &[
            ("messages", (2 * AGENTS as u64 * pings).to_string()),
            ("total_ms", format!("{:.1}", elapsed.as_secs_f64() * 1e3)),
        ],
    );
}

fn big_agent(ctx: &mut Ctx, index: usize, pings: u64, root: Pid) {
    // Pings from faster agents may arrive before our peer list: wait for
    // the list selectively, leaving them queued.
    let peers = ctx.receive_match(|m| matches!(m.downcast_ref::<Big>(), Some(Big::Peers(_))));
    let Ok(Big::Peers(peers)) = peers.downcast::<Big>() else {
        return;
    };
    let mut seed = index as u64 * 0x9e37_79b9_7f4a_7c15 + 1;
    let mut sent = 0;
    let ping_next = |seed: &mut u64| {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        let mut target = (*seed % peers.len() as u64) as usize;
        if target == index {
            target = (target + 1) % peers.len();
        }
        target
    };
    ctx.send(&peers[ping_next(&mut seed)], Big::Ping(index));
    loop {
        match ctx.receive().downcast::<Big>() {
            Ok(Big::Ping(from)) => ctx.send(&peers[from], Big::Pong),
            Ok(Big::Pong) => {
                sent += 1;
                if sent == pings {
                    ctx.send(&root, pings);
                } else {
                    ctx.send(&peers[ping_next(&mut seed)], Big::Ping(index));
                }
            }
            Ok(Big::Stop) | Err(_) => return,
            Ok(Big::Peers(_)) => {}
        }
    }
}

fn big_1w(d: u64) {
    big(1, d, "1w");
}
fn big_2w(d: u64) {
    big(2, d, "2w");
}

// ---- B9 parallel map ----------------------------------------------------

fn heavy(x: f64) -> f64 {
    (x.sin() * x.cos()).abs().sqrt() + 1.0
}

fn parallel_map(divisor: u64) {
    let n = 10_000_000 / divisor as usize;
    let rt = runtime(2);
    let input: Arc<Vec<f64>> = Arc::new((0..n).map(|i| i as f64 * 0.001).collect());
    let t = Instant::now();
    let sequential: Vec<f64> = input.iter().copied().map(heavy).collect();
    let sequential_time = t.elapsed();
    let shared = input.clone();
    let t = Instant::now();
    let parallel = rt
        .run(move |ctx| {
            // Eight parts, each written in place by its own agent (no
            // per-part vectors to join); four per worker, so a worker that
            // falls behind leaves unstarted parts to the other.
            let out = Gather::<f64>::new(n, 8);
            for part in 0..out.parts() {
                let input = shared.clone();
                let mut part = out.part(part).unwrap();
                ctx.spawn_with(SpawnOptions::new().monitor(), move |_| {
                    let range = part.range();
                    part.extend(input[range].iter().copied().map(heavy));
                })
                .unwrap();
            }
            for _ in 0..out.parts() {
                let down = ctx.receive().downcast::<erlangen::Down>().unwrap();
                assert!(down.status.is_ok(), "a part failed: {}", down.status);
            }
            out.into_vec().unwrap()
        })
        .unwrap();
    let parallel_time = t.elapsed();
    assert_eq!(parallel, sequential);
    figure(
        "B9 parallel-map",
        "2w",
        &[
            ("elements", n.to_string()),
            (
                "sequential_ms",
                format!("{:.1}", sequential_time.as_secs_f64() * 1e3),
            ),
            (
                "parallel_ms",
                format!("{:.1}", parallel_time.as_secs_f64() * 1e3),
            ),
            (
                "speedup",
                format!(
                    "{:.2}",
                    sequential_time.as_secs_f64() / parallel_time.as_secs_f64()
                ),
            ),
        ],
    );
}

// ---- B12 a call to a server (gen_server:call) ----------------------------

/// The server of B12: answers n with n + 1 (`erlangen::server`, as the
/// Erlang side is a `gen_server`).
struct Incr;

impl erlangen::server::Server for Incr {
    type Request = u64;
    type Reply = u64;
    type Cast = ();
    fn handle_call(
        &mut self,
        _ctx: &Ctx,
        n: u64,
        _from: &erlangen::ReplyTo,
    ) -> erlangen::server::Reply<u64> {
        erlangen::server::Reply::Reply(n + 1)
    }
}

fn gen_call(divisor: u64) {
    const CALLS: u64 = 100;
    let noise = 500_000 / divisor;
    let rt = runtime_with_mailbox(1, 1 << 20);
    rt.run(move |ctx| {
        let server = erlangen::server::start_server(
            ctx,
            Incr,
            erlangen::server::ServerOptions::new().link(),
        )
        .expect("the server starts");
        let calls = |ctx: &mut Ctx| {
            let started = Instant::now();
            for n in 0..CALLS {
                let answer = server
                    .call(ctx, n, Duration::from_secs(60))
                    .expect("a reply");
                assert_eq!(answer, n + 1);
            }
            started.elapsed()
        };
        let empty = calls(ctx);
        let me = ctx.pid();
        for n in 0..noise {
            ctx.send(&me, n as u32);
        }
        let loaded = calls(ctx);
        assert_eq!(ctx.flush().len() as u64, noise, "the noise is untouched");
        figure("B12 call", "empty", &[("per_call_ns", per(empty, CALLS))]);
        figure(
            "B12 call",
            &format!("loaded noise={noise}"),
            &[("per_call_ns", per(loaded, CALLS))],
        );
    })
    .unwrap();
}

/// B10: 100 call/replies (`make_tag`, `reply`, `receive_reply`) on an empty
/// mailbox, then behind 500,000 unrelated messages; and the same calls
/// with `receive_match` behind them, for contrast.
fn call_reply(divisor: u64) {
    const CALLS: u64 = 100;
    let noise = 500_000 / divisor;
    let rt = runtime_with_mailbox(1, 1 << 20);
    rt.run(move |ctx| {
        let server = ctx.spawn(|ctx| loop {
            let message = ctx.receive();
            match message.downcast::<(erlangen::ReplyTo, u64)>() {
                Ok((reply_to, n)) => ctx.reply(&reply_to, n + 1),
                Err(message) => {
                    if let Ok((from, n)) = message.downcast::<(Pid, u64)>() {
                        ctx.send(&from, (n, n + 1));
                    }
                }
            }
        });
        let calls = |ctx: &mut Ctx| {
            let started = Instant::now();
            for n in 0..CALLS {
                let tag = ctx.make_tag();
                ctx.send(&server, (ctx.reply_to(tag), n));
                let answer = ctx
                    .receive_reply(tag, Duration::from_secs(60))
                    .expect("a reply")
                    .downcast::<u64>()
                    .expect("a number");
                assert_eq!(answer, n + 1);
            }
            started.elapsed()
        };
        let empty = calls(ctx);
        let me = ctx.pid();
        for n in 0..noise {
            ctx.send(&me, n as u32);
        }
        let loaded = calls(ctx);
        let started = Instant::now();
        for n in 0..CALLS {
            ctx.send(&server, (ctx.pid(), n));
            let answer = ctx
                .receive_match(|m| m.downcast_ref::<(u64, u64)>().is_some_and(|(k, _)| *k == n))
                .downcast::<(u64, u64)>()
                .expect("an answer");
            assert_eq!(answer.1, n + 1);
        }
        let scanned = started.elapsed();
        assert_eq!(ctx.flush().len() as u64, noise, "the noise is untouched");
        figure(
            "B10 call-reply",
            "empty",
            &[("per_call_ns", per(empty, CALLS))],
        );
        figure(
            "B10 call-reply",
            &format!("loaded noise={noise}"),
            &[("per_call_ns", per(loaded, CALLS))],
        );
        figure(
            "B10 call-reply",
            &format!("receive_match noise={noise}"),
            &[("per_call_ns", per(scanned, CALLS))],
        );
    })
    .expect("the case runs");
}
