//! The transport under its hot path: senders' direct writes (outbox.rs)
//! keep per-pair order with what goes through the event loop, and a write
//! that stops mid-frame resumes where it stopped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use erlangen_net::{Node, NodeName, WirePid};
use erlangen_runtime::SpawnOptions;

use crate::support::{
    name_of, node, port_mapper, stream_chunk, unique, ChildNode, HANG_GUARD, STREAM_CHUNK_BYTES,
};

/// Polls `node`'s stats of `peer` until its direct writes are published
/// (each turn of the loop publishes them); the count.
fn direct_writes_to(node: &Node, peer: &NodeName) -> u64 {
    let deadline = std::time::Instant::now() + HANG_GUARD;
    loop {
        let direct = node
            .peers()
            .iter()
            .find(|stats| stats.node == peer.to_string())
            .map_or(0, |stats| stats.direct_packets_out);
        if direct > 0 || std::time::Instant::now() > deadline {
            return direct;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Messages `from..EACH` of `sender`, tagged with its number, to `far`
/// (registered as "counter" on `to`): every third by name.
fn stream(
    ctx: &mut erlangen_runtime::Ctx,
    node: &Node,
    to: &NodeName,
    far: &erlangen_runtime::Pid,
    sender: u64,
    from: u64,
) {
    for n in from..EACH {
        let tagged = (sender << 32) | n;
        if n % 3 == 0 {
            node.send_named(ctx, to, "counter", tagged);
        } else {
            ctx.send(far, tagged);
        }
        if n % 1_000 == 0 {
            ctx.yield_now();
        }
    }
}

/// Messages per sender.
const EACH: u64 = 20_000;
/// Messages sender 0 sends by pid before the others start.
const ALONE: u64 = 1_000;

#[test]
fn each_senders_messages_by_pid_and_by_name_arrive_in_order_across_both_paths() {
    let mapper = port_mapper();
    let (rt_a, node_a) = node(&mapper, &unique("a"));
    let (rt_b, node_b) = node(&mapper, &unique("b"));
    const SENDERS: u64 = 8;
    let (tx, rx) = std::sync::mpsc::channel();
    let counter = rt_b
        .spawn_with(SpawnOptions::new().mailbox_len(1 << 20), move |ctx| {
            let mut next = [0u64; SENDERS as usize];
            for _ in 0..SENDERS * EACH {
                let tagged = ctx.receive().downcast::<u64>().unwrap();
                let (sender, n) = ((tagged >> 32) as usize, tagged & 0xffff_ffff);
                if n != next[sender] {
                    let why = format!("sender {sender}: got {n}, expected {}", next[sender]);
                    tx.send(Err(why)).unwrap();
                    return;
                }
                next[sender] += 1;
            }
            tx.send(Ok(next.iter().sum::<u64>())).unwrap();
        })
        .unwrap();
    rt_b.register("counter", &counter).unwrap();
    let b = name_of(&node_b);
    // The counter's pid as node A addresses it.
    let far = node_a.pid_of(&node_b.id_of(&counter).unwrap());
    let node_a = Arc::new(node_a);
    let node = node_a.clone();
    let to = b.clone();
    rt_a.run(move |ctx| {
        // Sender 0 goes first, alone, once the connection is up and the
        // loop has nothing queued (its lookup was answered): its first
        // messages by pid are written by its own worker. Then all go,
        // alternating by name (the loop's path) and by pid (either path).
        let mut others = Vec::new();
        for sender in 1..SENDERS {
            let (node, to, far) = (node.clone(), to.clone(), far.clone());
            others.push(ctx.spawn(move |ctx| {
                ctx.receive(); // go
                stream(ctx, &node, &to, &far, sender, 0);
            }));
        }
        let (node, to, far) = (node.clone(), to.clone(), far.clone());
        ctx.spawn(move |ctx| {
            let found = node.whereis(ctx, &to, "counter", HANG_GUARD).unwrap();
            assert!(found.is_some());
            for n in 0..ALONE {
                ctx.send(&far, n);
            }
            for other in &others {
                ctx.send(other, "go");
            }
            stream(ctx, &node, &to, &far, 0, ALONE);
        });
    })
    .unwrap();
    let result = rx.recv_timeout(HANG_GUARD).expect("the streams complete");
    assert_eq!(result, Ok(SENDERS * EACH));
    assert!(
        direct_writes_to(&node_a, &b) > 0,
        "some messages took the direct path"
    );
}

#[test]
fn a_stream_to_a_peer_that_stops_reading_mid_frame_arrives_whole_once_it_reads() {
    let mapper = port_mapper();
    let (rt, node) = node(&mapper, &unique("writer"));
    let child = ChildNode::start(&mapper, &unique("stopped"));
    let b = child.name.clone();
    let os_pid = child.os_pid();
    // 10 MiB: more than loopback's socket buffers hold, so writes stop
    // mid-frame while the peer is stopped.
    const N: u64 = 160;
    let node = Arc::new(node);
    let queued = Arc::new(AtomicBool::new(false));
    let stuck = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    // SIGCONT once every message is queued: what has not left by then was
    // refused by the socket, somewhere inside a frame.
    let watcher = {
        let (node, queued, stuck) = (node.clone(), queued.clone(), stuck.clone());
        std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + HANG_GUARD;
            while !queued.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            stuck.store(node.backlog().1, Ordering::SeqCst);
            // SAFETY: kill(2) on the child process we started.
            unsafe { libc::kill(os_pid, libc::SIGCONT) };
        })
    };
    let sender = node.clone();
    let queued_now = queued.clone();
    let report = rt
        .run(move |ctx| {
            let checker = sender
                .spawn(
                    ctx,
                    &b,
                    "check_stream",
                    (N, WirePid(ctx.pid())),
                    SpawnOptions::new().mailbox_len(1 << 10),
                )
                .unwrap();
            // SAFETY: kill(2) on the child process we started.
            unsafe { libc::kill(os_pid, libc::SIGSTOP) };
            for i in 0..N {
                ctx.send(&checker, stream_chunk(i));
            }
            queued_now.store(true, Ordering::SeqCst);
            ctx.receive_timeout(HANG_GUARD)
                .expect("the checker reports")
                .downcast::<String>()
                .unwrap()
        })
        .unwrap();
    watcher.join().unwrap();
    assert!(
        stuck.load(Ordering::SeqCst) > 0,
        "the stopped peer's socket refused part of the stream"
    );
    assert_eq!(*report, format!("ok {N}"));
    assert!(N as usize * STREAM_CHUNK_BYTES > 8 << 20);
    assert!(direct_writes_to(&node, &child.name) > 0);
}

/// Bytes of the large message in the fragment tests: many fragments, more
/// than loopback's socket buffers hold.
const LARGE: usize = 32 << 20;

#[test]
fn a_large_message_lets_another_pairs_message_pass_and_arrives_whole_before_its_senders_next() {
    let mapper = port_mapper();
    let (rt, node) = node(&mapper, &unique("sender"));
    let child = ChildNode::start(&mapper, &unique("receiver"));
    let b = child.name.clone();
    let os_pid = child.os_pid();
    let node = Arc::new(node);
    let report = rt
        .run(move |ctx| {
            let collector = node
                .spawn(
                    ctx,
                    &b,
                    "pair_probe",
                    WirePid(ctx.pid()),
                    SpawnOptions::new(),
                )
                .unwrap();
            let receiver = ctx
                .receive_timeout(HANG_GUARD)
                .unwrap()
                .downcast::<erlangen_net::WirePid>()
                .unwrap()
                .0;
            // The receiving node reads nothing until both are queued, so the
            // order on the wire is the writer's alone.
            // SAFETY: kill(2) on the child process we started.
            unsafe { libc::kill(os_pid, libc::SIGSTOP) };
            let me = ctx.pid();
            let large_sender = ctx.spawn(move |ctx| {
                ctx.send(&receiver, vec![7u8; LARGE]);
                ctx.send(&me, "sent");
                ctx.receive(); // go on
                ctx.send(&receiver, 2u64);
            });
            ctx.receive(); // the large one is queued
            ctx.send(&collector, 1u64); // another pair's small message
            ctx.send(&large_sender, "go on");
            // SAFETY: as above.
            unsafe { libc::kill(os_pid, libc::SIGCONT) };
            ctx.receive_timeout(HANG_GUARD)
                .expect("the collector reports")
                .downcast::<String>()
                .unwrap()
        })
        .unwrap();
    // The small message reached its agent before the large one was whole
    // (the collector had it before the receiver could run), and the large
    // sender's next message came after its large one.
    assert_eq!(*report, format!("1; big {LARGE}, 2"));
}

#[test]
fn a_peer_killed_during_a_large_message_fires_noconnection_and_frees_the_message() {
    let mapper = port_mapper();
    let (rt, node) = node(&mapper, &unique("sender"));
    let child = ChildNode::start(&mapper, &unique("doomed"));
    let b = child.name.clone();
    let os_pid = child.os_pid();
    let node = Arc::new(node);
    let sender = node.clone();
    let status = rt
        .run(move |ctx| {
            let sink = sender
                .spawn(ctx, &b, "sink", (), SpawnOptions::new())
                .unwrap();
            let watch = ctx.watch(&sink).unwrap();
            // SAFETY: kill(2) on the child process we started.
            unsafe { libc::kill(os_pid, libc::SIGSTOP) };
            ctx.send(&sink, vec![7u8; LARGE]);
            ctx.sleep(Duration::from_millis(1)); // its worker writes a first part
                                                 // SAFETY: as above.
            unsafe { libc::kill(os_pid, libc::SIGKILL) };
            let down = ctx
                .receive_timeout(HANG_GUARD)
                .expect("the watch fires")
                .downcast::<erlangen_runtime::WatchDown>()
                .unwrap();
            assert_eq!(down.watch, watch);
            down.status
        })
        .unwrap();
    assert_eq!(
        status.reason().map(ToString::to_string).as_deref(),
        Some("noconnection")
    );
    // The rest of the message went with the connection.
    let deadline = std::time::Instant::now() + HANG_GUARD;
    while node.backlog().1 > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(node.backlog(), (0, 0));
}

#[test]
fn a_sender_of_large_messages_waits_and_the_backlog_stays_bounded() {
    use erlangen_net::config::LARGE_BACKLOG_BYTES_HIGH_WATER;
    let mapper = port_mapper();
    let (rt, node) = node(&mapper, &unique("sender"));
    let child = ChildNode::start(&mapper, &unique("stopped"));
    let b = child.name.clone();
    let os_pid = child.os_pid();
    let node = Arc::new(node);
    const MESSAGES: usize = 8;
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let sender = node.clone();
    let counted = sent.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let driver = std::thread::spawn(move || {
        rt.run(move |ctx| {
            let sink = sender
                .spawn(ctx, &b, "sink", (), SpawnOptions::new())
                .unwrap();
            // SAFETY: kill(2) on the child process we started.
            unsafe { libc::kill(os_pid, libc::SIGSTOP) };
            tx.send(()).unwrap();
            for _ in 0..MESSAGES {
                ctx.send(&sink, vec![7u8; LARGE]);
                counted.fetch_add(1, Ordering::SeqCst);
            }
        })
        .unwrap();
    });
    rx.recv_timeout(HANG_GUARD).unwrap();
    // The peer reads nothing: the sender must stop short of all of them,
    // and the backlog with it.
    let mut most = 0;
    let deadline = std::time::Instant::now() + Duration::from_millis(500);
    while std::time::Instant::now() < deadline {
        most = most.max(node.backlog().1);
        std::thread::sleep(Duration::from_millis(5));
    }
    let before_resume = sent.load(Ordering::SeqCst);
    // SAFETY: kill(2) on the child process we started.
    unsafe { libc::kill(os_pid, libc::SIGCONT) };
    driver.join().unwrap();
    assert!(
        before_resume < MESSAGES,
        "the sender waited: {before_resume}"
    );
    // One sender adds at most one message past the mark (and one more
    // while the mark is read).
    assert!(
        most <= LARGE_BACKLOG_BYTES_HIGH_WATER + 2 * (LARGE + 4096),
        "{most}"
    );
    let deadline = std::time::Instant::now() + HANG_GUARD;
    while node.backlog().1 > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(node.backlog(), (0, 0), "everything left once the peer read");
    assert_eq!(node.dropped(), 0);
}

#[test]
fn a_loop_of_large_remote_sends_yields_its_worker_to_other_agents() {
    let mapper = port_mapper();
    let (rt_a, node_a) = node(&mapper, &unique("a"));
    let (rt_b, node_b) = node(&mapper, &unique("b"));
    let sink = rt_b.spawn(|ctx| loop {
        ctx.receive();
    });
    let far = node_a.pid_of(&node_b.id_of(&sink).unwrap());
    // One worker: the sender and the other agent share it.
    let ran = Arc::new(AtomicBool::new(false));
    let seen = rt_a
        .run(move |ctx| {
            let flag = ran.clone();
            let other = ctx.spawn(move |ctx| {
                ctx.receive(); // go
                flag.store(true, Ordering::SeqCst);
            });
            let flag = ran.clone();
            let me = ctx.pid();
            ctx.spawn(move |ctx| {
                // The other agent can run from now on.
                ctx.send(&other, "go");
                // 16 MiB in 1 MiB messages: 16 sends, far fewer steps than
                // a slice, but charged by their size.
                let payload = vec![7u8; 1 << 20];
                let mut seen = false;
                for _ in 0..16 {
                    seen |= flag.load(Ordering::SeqCst);
                    ctx.send(&far, payload.clone());
                }
                ctx.send(&me, seen);
            });
            ctx.receive_timeout(HANG_GUARD)
                .unwrap()
                .downcast::<bool>()
                .unwrap()
        })
        .unwrap();
    assert!(
        seen,
        "the other agent ran while the sender was still sending"
    );
    drop(node_b);
}
