//! may peer: stackful coroutines with may's mpsc channels. may's `go!` is
//! unsafe (its coroutines may migrate between threads); these bodies hold no
//! thread-local state across blocking calls.

mod common;

use std::time::Instant;

use common::*;
use may::sync::mpsc;

fn setup(workers: usize) {
    may::config().set_workers(workers).set_stack_size(0x4000);
}

fn ping_pong(w: usize, d: usize, label: &str) {
    setup(w);
    let rounds = 1_000_000 / d;
    let (ping_tx, ping_rx) = mpsc::channel::<usize>();
    let (pong_tx, pong_rx) = mpsc::channel::<usize>();
    // SAFETY: the coroutine keeps no thread-local state across a receive.
    let ponger = unsafe {
        may::coroutine::spawn(move || {
            for _ in 0..rounds {
                let v = ping_rx.recv().unwrap();
                pong_tx.send(v).unwrap();
            }
        })
    };
    // SAFETY: as above.
    let pinger = unsafe {
        may::coroutine::spawn(move || {
            let start = Instant::now();
            for i in 0..rounds {
                ping_tx.send(i).unwrap();
                pong_rx.recv().unwrap();
            }
            start.elapsed()
        })
    };
    let elapsed = pinger.join().unwrap();
    ponger.join().unwrap();
    println!("B1 ping-pong {label} rounds={rounds} rtt_ns={}", per(elapsed, rounds));
}

fn counting(w: usize, d: usize, label: &str) {
    setup(w);
    let n = 1_000_000 / d;
    let (tx, rx) = mpsc::channel::<usize>();
    // SAFETY: as above.
    let counter = unsafe {
        may::coroutine::spawn(move || {
            let mut sum = 0;
            while let Ok(v) = rx.recv() {
                sum += v;
            }
            sum
        })
    };
    let start = Instant::now();
    for i in 0..n {
        tx.send(i).unwrap();
    }
    drop(tx);
    let sum = counter.join().unwrap();
    let elapsed = start.elapsed();
    assert_eq!(sum, n * (n - 1) / 2);
    println!("B2 counting {label} messages={n} per_msg_ns={}", per(elapsed, n));
}

fn ring(w: usize, size: usize, d: usize, label: &str) {
    setup(w);
    let hops = 1_000_000 / d;
    let mut senders = Vec::new();
    let mut receivers = Vec::new();
    for _ in 0..size {
        let (tx, rx) = mpsc::channel::<usize>();
        senders.push(tx);
        receivers.push(rx);
    }
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let mut handles = Vec::new();
    for (i, rx) in receivers.into_iter().enumerate() {
        let out = senders[(i + 1) % size].clone();
        let done = done_tx.clone();
        // SAFETY: as above.
        handles.push(unsafe {
            may::coroutine::spawn(move || {
                while let Ok(t) = rx.recv() {
                    if t == 0 {
                        let _ = done.send(());
                        let _ = out.send(usize::MAX);
                        return;
                    }
                    if t == usize::MAX {
                        let _ = out.send(usize::MAX);
                        return;
                    }
                    let _ = out.send(t - 1);
                }
            })
        });
    }
    let start = Instant::now();
    senders[0].send(hops).unwrap();
    done_rx.recv().unwrap();
    let elapsed = start.elapsed();
    println!("B3 ring {label} agents={size} hops={hops} per_hop_ns={}", per(elapsed, hops));
    std::process::exit(0);
}

fn skynet_node(tx: mpsc::Sender<usize>, num: usize, size: usize) {
    if size == 1 {
        let _ = tx.send(num);
        return;
    }
    let (rtx, rrx) = mpsc::channel();
    let step = size / 10;
    for i in 0..10 {
        let rtx = rtx.clone();
        // SAFETY: as above.
        unsafe {
            may::coroutine::spawn(move || skynet_node(rtx, num + i * step, step));
        }
    }
    let sum: usize = (0..10).map(|_| rrx.recv().unwrap()).sum();
    let _ = tx.send(sum);
}

fn skynet(d: usize) {
    setup(2);
    let leaves = 1_000_000 / d;
    let start = Instant::now();
    let (tx, rx) = mpsc::channel();
    // SAFETY: as above.
    unsafe {
        may::coroutine::spawn(move || skynet_node(tx, 0, leaves));
    }
    let sum = rx.recv().unwrap();
    let elapsed = start.elapsed();
    assert_eq!(sum, leaves * (leaves - 1) / 2);
    println!(
        "B4 skynet 2w agents={} sum={sum} wall_ms={} peak_rss_mib={:.1}",
        leaves + leaves / 9,
        ms(elapsed),
        status_kib("VmHWM:") as f64 / 1024.0
    );
    std::process::exit(0);
}

fn churn(w: usize, d: usize, label: &str) {
    setup(w);
    let n = 1_000_000 / d;
    let start = Instant::now();
    let mut handles = Vec::with_capacity(1024);
    for i in 0..n {
        let (tx, rx) = mpsc::channel::<f64>();
        // SAFETY: as above.
        handles.push(unsafe {
            may::coroutine::spawn(move || {
                let x = rx.recv().unwrap();
                std::hint::black_box((x.sin() * x.cos()).abs());
            })
        });
        tx.send(i as f64).unwrap();
        if handles.len() == 1024 {
            for h in handles.drain(..) {
                h.join().unwrap();
            }
        }
    }
    for h in handles {
        h.join().unwrap();
    }
    println!("B6 churn {label} agents={n} per_agent_ns={}", per(start.elapsed(), n));
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
        "churn_1w" => churn(1, d, "1w"),
        "churn_2w" => churn(2, d, "2w"),
        other => dnf(&format!("may has no version of case {other:?}")),
    }
}
