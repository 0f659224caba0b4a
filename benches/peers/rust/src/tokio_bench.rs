//! tokio peer: tasks and mpsc channels as mailboxes, written as tokio users
//! write them (benches/peers/README.md): unbounded channels where the case
//! has no bound (our mailboxes drop rather than block a sender), every
//! case driven from a spawned task (on the multi-thread runtime a
//! `block_on` future runs outside the workers, so each message would cross
//! threads), `current_thread` for one worker, `multi_thread` for two.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use common::*;
use tokio::sync::{mpsc, oneshot};

fn rt(workers: usize) -> tokio::runtime::Runtime {
    if workers == 1 {
        tokio::runtime::Builder::new_current_thread().build().unwrap()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(workers).build().unwrap()
    }
}

/// Runs `case` as a task on a runtime of `workers` workers.
fn run_on<F, T>(workers: usize, case: F) -> T
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    rt(workers).block_on(async move { tokio::spawn(case).await.unwrap() })
}

fn ping_pong(w: usize, d: usize, label: &str) {
    let rounds = 1_000_000 / d;
    let elapsed = run_on(w, async move {
        let (ping_tx, mut ping_rx) = mpsc::unbounded_channel::<usize>();
        let (pong_tx, mut pong_rx) = mpsc::unbounded_channel::<usize>();
        tokio::spawn(async move {
            while let Some(v) = ping_rx.recv().await {
                if pong_tx.send(v).is_err() {
                    break;
                }
            }
        });
        let start = Instant::now();
        for i in 0..rounds {
            ping_tx.send(i).unwrap();
            pong_rx.recv().await.unwrap();
        }
        start.elapsed()
    });
    println!("B1 ping-pong {label} rounds={rounds} rtt_ns={}", per(elapsed, rounds));
}

fn counting(w: usize, d: usize, label: &str) {
    let n = 1_000_000 / d;
    let (elapsed, sum) = run_on(w, async move {
        let (tx, mut rx) = mpsc::unbounded_channel::<usize>();
        let counter = tokio::spawn(async move {
            let mut sum = 0;
            while let Some(v) = rx.recv().await {
                sum += v;
            }
            sum
        });
        let start = Instant::now();
        for i in 0..n {
            tx.send(i).unwrap();
        }
        drop(tx);
        let sum = counter.await.unwrap();
        (start.elapsed(), sum)
    });
    assert_eq!(sum, n * (n - 1) / 2);
    println!("B2 counting {label} messages={n} per_msg_ns={}", per(elapsed, n));
}

fn ring(w: usize, size: usize, d: usize, label: &str) {
    let hops = 1_000_000 / d;
    let elapsed = run_on(w, async move {
        let mut senders = Vec::new();
        let mut receivers = Vec::new();
        for _ in 0..size {
            let (tx, rx) = mpsc::unbounded_channel::<usize>();
            senders.push(tx);
            receivers.push(rx);
        }
        let (done_tx, done_rx) = oneshot::channel::<()>();
        let finisher = Arc::new(std::sync::Mutex::new(Some(done_tx)));
        for (i, mut rx) in receivers.into_iter().enumerate() {
            let out = senders[(i + 1) % size].clone();
            let finisher = finisher.clone();
            tokio::spawn(async move {
                while let Some(t) = rx.recv().await {
                    if t == 0 {
                        let f = finisher.lock().unwrap().take();
                        if let Some(f) = f {
                            let _ = f.send(());
                        }
                        let _ = out.send(usize::MAX);
                        return;
                    }
                    if t == usize::MAX {
                        let _ = out.send(usize::MAX);
                        return;
                    }
                    if out.send(t - 1).is_err() {
                        return;
                    }
                }
            });
        }
        let start = Instant::now();
        senders[0].send(hops).unwrap();
        let _ = done_rx.await;
        start.elapsed()
    });
    println!("B3 ring {label} agents={size} hops={hops} per_hop_ns={}", per(elapsed, hops));
}

fn skynet_node(num: usize, size: usize) -> std::pin::Pin<Box<dyn std::future::Future<Output = usize> + Send>> {
    Box::pin(async move {
        if size == 1 {
            return num;
        }
        let step = size / 10;
        let mut handles = Vec::with_capacity(10);
        for i in 0..10 {
            handles.push(tokio::spawn(skynet_node(num + i * step, step)));
        }
        let mut sum = 0;
        for h in handles {
            sum += h.await.unwrap();
        }
        sum
    })
}

fn skynet(d: usize) {
    let leaves = 1_000_000 / d;
    let start = Instant::now();
    let sum = run_on(2, skynet_node(0, leaves));
    let elapsed = start.elapsed();
    assert_eq!(sum, leaves * (leaves - 1) / 2);
    println!(
        "B4 skynet 2w agents={} sum={sum} wall_ms={} peak_rss_mib={:.1}",
        leaves + leaves / 9,
        ms(elapsed),
        status_kib("VmHWM:") as f64 / 1024.0
    );
}

fn parked(d: usize) {
    let n = 1_000_000 / d;
    let runtime = rt(2);
    let before = status_kib("VmRSS:");
    for round in 0..2 {
        let driver = runtime.spawn(async move {
            let started = Arc::new(AtomicUsize::new(0));
            let t0 = Instant::now();
            let mut senders = Vec::with_capacity(n);
            let mut handles = Vec::with_capacity(n);
            for _ in 0..n {
                let (tx, rx) = oneshot::channel::<()>();
                let started = started.clone();
                senders.push(tx);
                handles.push(tokio::spawn(async move {
                    started.fetch_add(1, Ordering::Relaxed);
                    let _ = rx.await;
                }));
            }
            while started.load(Ordering::Relaxed) < n {
                tokio::task::yield_now().await;
            }
            let spawn = t0.elapsed();
            let rss = status_kib("VmRSS:");
            let t1 = Instant::now();
            for tx in senders {
                let _ = tx.send(());
            }
            for h in handles {
                h.await.unwrap();
            }
            (spawn, rss, t1.elapsed())
        });
        let (spawn, rss, teardown) = runtime.block_on(driver).unwrap();
        println!(
            "B5 parked {} agents={n} spawn_ns_per_agent={} rss_bytes_per_agent={} teardown_ns_per_agent={}",
            if round == 0 { "2w cold" } else { "2w warm" },
            per(spawn, n),
            rss.saturating_sub(before) * 1024 / n as u64,
            per(teardown, n)
        );
    }
}

fn churn(w: usize, d: usize, label: &str) {
    let n = 1_000_000 / d;
    let elapsed = run_on(w, async move {
        let start = Instant::now();
        let mut handles = Vec::with_capacity(1024);
        for i in 0..n {
            let (tx, rx) = oneshot::channel::<f64>();
            handles.push(tokio::spawn(async move {
                let x = rx.await.unwrap();
                std::hint::black_box((x.sin() * x.cos()).abs());
            }));
            tx.send(i as f64).unwrap();
            if handles.len() == 1024 {
                for h in handles.drain(..) {
                    h.await.unwrap();
                }
            }
        }
        for h in handles {
            h.await.unwrap();
        }
        start.elapsed()
    });
    println!("B6 churn {label} agents={n} per_agent_ns={}", per(elapsed, n));
}

fn chameneos(w: usize, d: usize, label: &str) {
    const CREATURES: usize = 100;
    let meetings = 200_000 / d;
    let (elapsed, total) = run_on(w, async move {
        let (broker_tx, mut broker_rx) = mpsc::unbounded_channel::<(mpsc::UnboundedSender<Option<u8>>, u8)>();
        let (result_tx, mut result_rx) = mpsc::unbounded_channel::<usize>();
        let start = Instant::now();
        for i in 0..CREATURES {
            let broker = broker_tx.clone();
            let results = result_tx.clone();
            tokio::spawn(async move {
                let (tx, mut rx) = mpsc::unbounded_channel::<Option<u8>>();
                let mut colour = (i % 3) as u8;
                let mut met = 0;
                loop {
                    broker.send((tx.clone(), colour)).unwrap();
                    match rx.recv().await.unwrap() {
                        Some(other) => {
                            if other != colour {
                                colour = 3 - colour - other;
                            }
                            met += 1;
                        }
                        None => break,
                    }
                }
                results.send(met).unwrap();
            });
        }
        let mut waiting: Option<(mpsc::UnboundedSender<Option<u8>>, u8)> = None;
        let mut m = 0;
        while m < meetings {
            let meet = broker_rx.recv().await.unwrap();
            match waiting.take() {
                None => waiting = Some(meet),
                Some(first) => {
                    first.0.send(Some(meet.1)).unwrap();
                    meet.0.send(Some(first.1)).unwrap();
                    m += 1;
                }
            }
        }
        let mut left = CREATURES;
        if let Some(first) = waiting.take() {
            first.0.send(None).unwrap();
            left -= 1;
        }
        for _ in 0..left {
            let meet = broker_rx.recv().await.unwrap();
            meet.0.send(None).unwrap();
        }
        let mut total = 0;
        for _ in 0..CREATURES {
            total += result_rx.recv().await.unwrap();
        }
        (start.elapsed(), total)
    });
    assert_eq!(total, 2 * meetings);
    println!("B7 chameneos {label} meetings={meetings} total_ms={}", ms(elapsed));
}

fn big(w: usize, d: usize, label: &str) {
    const AGENTS: usize = 120;
    let pings = 20_000 / d;
    let (elapsed, total) = run_on(w, async move {
        let mut txs = Vec::new();
        let mut rxs = Vec::new();
        for _ in 0..AGENTS {
            let (tx, rx) = mpsc::unbounded_channel::<(u8, usize)>();
            txs.push(tx);
            rxs.push(rx);
        }
        let txs = Arc::new(txs);
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<usize>();
        let start = Instant::now();
        for (index, mut rx) in rxs.into_iter().enumerate() {
            let txs = txs.clone();
            let done = done_tx.clone();
            tokio::spawn(async move {
                let mut seed = index as u64 * 0x9e37_79b9_7f4a_7c15 + 1;
                let mut next = move || {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let mut t = (seed % AGENTS as u64) as usize;
                    if t == index {
                        t = (t + 1) % AGENTS;
                    }
                    t
                };
                let mut sent = 0;
                let _ = txs[next()].send((0, index));
                while let Some((kind, from)) = rx.recv().await {
                    match kind {
                        0 => {
                            let _ = txs[from].send((1, index));
                        }
                        1 => {
                            sent += 1;
                            if sent == pings {
                                let _ = done.send(pings);
                            } else {
                                let _ = txs[next()].send((0, index));
                            }
                        }
                        _ => return,
                    }
                }
            });
        }
        let mut total = 0;
        for _ in 0..AGENTS {
            total += done_rx.recv().await.unwrap();
        }
        let elapsed = start.elapsed();
        for tx in txs.iter() {
            let _ = tx.send((2, 0));
        }
        (elapsed, total)
    });
    assert_eq!(total, AGENTS * pings);
    println!("B7 big {label} messages={} total_ms={}", 2 * AGENTS * pings, ms(elapsed));
}

fn main() {
    let d = divisor();
    match case().as_str() {
        "ping_pong_1w" => ping_pong(1, d, "1w"),
        "ping_pong_2w" => ping_pong(2, d, "2w"),
        "counting_1w" => counting(1, d, "1w"),
        "counting_2w" => counting(2, d, "2w"),
        "ring_100" => ring(1, 100, d, "100 1w"),
        "ring_10000" => ring(1, 10_000, d, "10000 1w"),
        "ring_100_2w" => ring(2, 100, d, "100 2w"),
        "skynet" => skynet(d),
        "parked" => parked(d),
        "churn_1w" => churn(1, d, "1w"),
        "churn_2w" => churn(2, d, "2w"),
        "chameneos_1w" => chameneos(1, d, "1w"),
        "chameneos_2w" => chameneos(2, d, "2w"),
        "big_1w" => big(1, d, "1w"),
        "big_2w" => big(2, d, "2w"),
        other => dnf(&format!("tokio has no version of case {other:?} (tasks cannot be placed on workers)")),
    }
}
