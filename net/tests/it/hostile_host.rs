//! A node on a hostile host: what an outsider on the same host (no cookie,
//! only the node's port) or a peer that misbehaves after its handshake can
//! and cannot do. Each test keeps a legitimate peer served throughout.

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use erlangen_net::wire::{Packet, WireAttach};
use erlangen_net::{NetError, Node, NodeName};
use erlangen_runtime::{Down, Runtime, SpawnOptions};

use crate::raw::{RawPeer, POLL};
use crate::support::{node, port_mapper, unique, Ping, COOKIE, HANG_GUARD};

/// Node `a` keeps pinging node `b`'s echo, and monitors an agent there,
/// until told to stop; returns (round trips, `Down`s seen before the stop).
fn ping_until(
    rt: &Runtime,
    node: Arc<Node>,
    b: NodeName,
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
) -> (u64, usize) {
    rt.run(move |ctx| {
        let watched = node
            .spawn(ctx, &b, "wait", (), SpawnOptions::new().monitor())
            .expect("a spawn on the peer");
        let mut downs = 0;
        let mut n = 0;
        while !stop.load(Ordering::SeqCst) {
            node.send_named(
                ctx,
                &b,
                "echo",
                Ping {
                    reply_to: ctx.pid(),
                    n,
                },
            );
            let answer = ctx.receive_timeout(HANG_GUARD).expect("the echo answers");
            match answer.downcast::<u64>() {
                Ok(answer) => {
                    assert_eq!(answer, n + 1);
                    n += 1;
                    answered.store(n, Ordering::SeqCst);
                }
                Err(other) => {
                    assert!(other.downcast_ref::<Down>().is_some(), "{other:?}");
                    downs += 1;
                }
            }
        }
        // The monitor still holds: a kill now reaches it as a `Down`
        // with the kill's reason, not `noconnection`.
        ctx.kill(&watched, erlangen_runtime::ExitReason::Kill);
        let down = ctx
            .receive_match_timeout(|m| m.downcast_ref::<Down>().is_some(), HANG_GUARD)
            .expect("the monitor fires")
            .downcast::<Down>()
            .unwrap();
        assert!(
            matches!(
                down.status,
                erlangen_runtime::ExitStatus::Exit(erlangen_runtime::ExitReason::Kill)
            ),
            "{down:?}"
        );
        (n, downs)
    })
    .unwrap()
}

fn echo_on(rt: &Runtime) {
    let echo = rt.spawn(|ctx| loop {
        let ping = ctx.receive().downcast::<Ping>().unwrap();
        ctx.send(&ping.reply_to, ping.n + 1);
    });
    rt.register("echo", &echo).unwrap();
}

/// Waits until `answered` moves past `past`.
fn wait_past(answered: &AtomicU64, past: u64) {
    let start = Instant::now();
    while answered.load(Ordering::SeqCst) <= past {
        assert!(
            start.elapsed() < HANG_GUARD,
            "the legitimate peer is served"
        );
        std::thread::sleep(POLL);
    }
}

#[test]
fn a_forged_hello_claiming_an_up_peers_name_changes_nothing_for_that_peer() {
    let mapper = port_mapper();
    let (rt_a, node_a) = node(&mapper, &unique("a"));
    let (rt_b, node_b) = node(&mapper, &unique("b"));
    echo_on(&rt_b);
    let a_name = node_a.name().to_string();
    let a_incarnation = node_a.incarnation();
    let (b_name, b_addr) = (node_b.name().clone(), node_b.local_addr());
    let node_a = Arc::new(node_a);
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let (pings, downs) = std::thread::scope(|scope| {
        let (node, stop2, answered2) = (node_a.clone(), stop.clone(), answered.clone());
        let rt_a = &rt_a;
        let pinger = scope.spawn(move || ping_until(rt_a, node, b_name, stop2, answered2));
        wait_past(&answered, 10);
        // Same incarnation, then a new one (a "restart"), then one with a
        // proof: none verifies, so none may touch the real connection.
        for incarnation in [a_incarnation, a_incarnation.wrapping_add(1)] {
            let mut forged = RawPeer::dial(b_addr, &a_name, incarnation);
            forged.read_hello();
            forged.prove_garbage();
            assert!(forged.closed_by_node(), "the forged connection is closed");
            let mut silent = RawPeer::dial(b_addr, &a_name, incarnation);
            silent.read_hello();
            // No proof at all: the node waits for it (and must not act on
            // the greeting meanwhile); the real peer is served all along.
            let seen = answered.load(Ordering::SeqCst);
            wait_past(&answered, seen + 10);
            drop(silent);
        }
        let seen = answered.load(Ordering::SeqCst);
        wait_past(&answered, seen + 10);
        stop.store(true, Ordering::SeqCst);
        pinger.join().unwrap()
    });
    assert!(pings > 30);
    assert_eq!(downs, 0, "the monitor across the connection never fired");
    let b_stats = node_b.peers();
    let entry = b_stats.iter().find(|p| p.node == a_name).unwrap();
    assert!(entry.connected, "{entry:?}");
    assert_eq!(
        entry.errors, 0,
        "the real connection never dropped: {entry:?}"
    );
    let a_stats = node_a.peers();
    assert!(
        a_stats.iter().all(|p| p.connected && p.errors == 0),
        "{a_stats:?}"
    );
}

#[test]
fn a_forged_hello_during_a_dial_fails_nothing_and_the_dial_completes() {
    let mapper = port_mapper();
    // The dialled node is a raw peer whose name sorts first, so that the
    // old tie-break (decided at the greeting) would have dropped the dial.
    let slow_name = unique("aaa-slow");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let registration = erlangen_portmap::client::Client::connect(mapper.local_addr())
        .unwrap()
        .register(&slow_name, listener.local_addr().unwrap().port())
        .unwrap();
    let rt_b = Runtime::builder().workers(1).build().unwrap();
    let node_b = Node::builder(&unique("zzz-b"))
        .cookie(COOKIE)
        .port_mapper(mapper.local_addr())
        .start(&rt_b)
        .unwrap();
    let slow: NodeName = format!("localhost/{slow_name}").parse().unwrap();
    let b_addr: SocketAddr = node_b.local_addr();
    let node_b = Arc::new(node_b);
    let (node, to) = (node_b.clone(), slow.clone());
    let (tx, rx) = std::sync::mpsc::channel();
    let caller = rt_b.spawn(move |ctx| {
        let result = node.spawn(ctx, &to, "double", 21u64, SpawnOptions::new());
        tx.send(result.map(|pid| pid.to_string())).unwrap();
    });
    // B dials: take its connection and greet it, but hold the proof back.
    let (stream, _) = listener.accept().unwrap();
    let mut real = RawPeer::accepted(stream, &slow.to_string(), 5);
    real.read_hello();
    // Meanwhile an outsider claims the dialled name on B's own port.
    let mut forged = RawPeer::dial(b_addr, &slow.to_string(), 6);
    forged.read_hello();
    forged.prove_garbage();
    assert!(forged.closed_by_node());
    // The real peer goes on: B's proof, then ours, then B's spawn request.
    real.expect_proof(COOKIE);
    real.prove(COOKIE);
    let request = match real.read_packet().expect("B sends its spawn") {
        Packet::Spawn {
            request,
            parent,
            attach,
            function,
            ..
        } => {
            assert_eq!(function, "double");
            assert_eq!(attach, WireAttach::None);
            assert_eq!(parent.node, *node_b.name());
            (request, parent)
        }
        other => panic!("unexpected {other:?}"),
    };
    real.write_packet(&Packet::SpawnReply {
        request: request.0,
        parent: request.1.serial,
        result: Ok(77),
    });
    let child = rx
        .recv_timeout(HANG_GUARD)
        .unwrap()
        .expect("the dial completed");
    assert!(child.contains(&slow.to_string()), "{child}");
    assert!(child.contains("/77#5"), "{child}");
    drop((caller, registration));
}

#[test]
fn a_spawn_on_a_node_that_never_answers_fails_after_the_spawn_timeout() {
    let mapper = port_mapper();
    let silent_name = unique("silent");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let _registration = erlangen_portmap::client::Client::connect(mapper.local_addr())
        .unwrap()
        .register(&silent_name, listener.local_addr().unwrap().port())
        .unwrap();
    let rt = Runtime::builder().workers(1).build().unwrap();
    let node = Node::builder(&unique("caller"))
        .cookie(COOKIE)
        .port_mapper(mapper.local_addr())
        .spawn_timeout(std::time::Duration::from_millis(300))
        .start(&rt)
        .unwrap();
    let to: NodeName = format!("localhost/{silent_name}").parse().unwrap();
    let node = Arc::new(node);
    let (tx, rx) = std::sync::mpsc::channel();
    let (node2, to2) = (node.clone(), to.clone());
    rt.spawn(move |ctx| {
        let result = node2.spawn(ctx, &to2, "double", 1u64, SpawnOptions::new());
        tx.send(result).unwrap();
    });
    // The peer completes the handshake, reads the request, never answers.
    let (stream, _) = listener.accept().unwrap();
    let mut peer = RawPeer::accepted(stream, &to.to_string(), 9);
    peer.read_hello();
    peer.expect_proof(COOKIE);
    peer.prove(COOKIE);
    let request = match peer.read_packet().unwrap() {
        Packet::Spawn {
            request, parent, ..
        } => (request, parent),
        other => panic!("unexpected {other:?}"),
    };
    let result = rx.recv_timeout(HANG_GUARD).expect("the spawn returns");
    match result {
        Err(NetError::Spawn(why)) => assert!(why.contains("timed out"), "{why}"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    // A late success is killed, not left running unseen.
    peer.write_packet(&Packet::SpawnReply {
        request: request.0,
        parent: request.1.serial,
        result: Ok(31),
    });
    match peer.read_packet().expect("the node kills the late child") {
        Packet::Signal { to, signal, .. } => {
            assert_eq!(to, 31);
            assert!(matches!(signal, erlangen_net::wire::WireSignal::Kill(_)));
        }
        other => panic!("unexpected {other:?}"),
    }
}

/// The port of a node registered with `mapper` as `name`.
fn port_of(mapper: &erlangen_portmap::Daemon, name: &NodeName) -> SocketAddr {
    let port = erlangen_portmap::client::Client::connect(mapper.local_addr())
        .unwrap()
        .lookup(name.name())
        .unwrap();
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A spawn request of `function` (no such function on the test nodes
/// unless it is one of theirs) from agent 1 of `me`.
fn spawn_request(me: &str, request: u64, function: &str) -> Packet {
    Packet::Spawn {
        request,
        parent: erlangen_net::AgentId {
            node: me.parse().unwrap(),
            incarnation: 1,
            serial: 1,
        },
        attach: WireAttach::None,
        function: function.to_owned(),
        args: erlangen_net::wire::encode(&21u64).unwrap(),
        mailbox_len: None,
    }
}

#[test]
fn a_peer_that_sends_and_never_reads_is_paused_with_bounded_memory_then_closed() {
    use std::io::Write;
    let mapper = port_mapper();
    let child = crate::support::ChildNode::start(&mapper, &unique("reader"));
    let addr = port_of(&mapper, &child.name);
    let me = format!("localhost/{}", unique("flooder"));
    let mut peer = RawPeer::handshake(addr, &me, COOKIE);
    let before_kib = crate::raw::rss_kib(child.os_pid());
    // Requests that each earn a reply, packed 64 KiB at a time; the node
    // must stop reading (so our writes block) long before its memory grows.
    let mut batch = Vec::new();
    let mut request = 0;
    while batch.len() < 64 * 1024 {
        request += 1;
        let body = erlangen_net::wire::encode(&spawn_request(&me, request, "nope")).unwrap();
        erlangen_net::frame::encode(erlangen_net::wire::KIND_PACKET, &body, &mut batch);
    }
    peer.stream
        .set_write_timeout(Some(std::time::Duration::from_millis(500)))
        .unwrap();
    let is_reset = |error: &std::io::Error| {
        matches!(
            error.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
        )
    };
    let mut written = 0usize;
    let stopped = loop {
        match peer.stream.write(&batch) {
            Ok(n) => written += n,
            Err(error) => break error,
        }
        assert!(written < 4 << 30, "the node never stopped reading");
    };
    // Our writes block once the node stops reading; if that took longer
    // than its stall timeout, the node has closed the connection already.
    let mut closed = is_reset(&stopped);
    assert!(
        closed
            || matches!(
                stopped.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        "{stopped}"
    );
    let start = Instant::now();
    while !closed {
        assert!(
            start.elapsed() < HANG_GUARD,
            "the node closed the connection"
        );
        std::thread::sleep(POLL * 10);
        // The node closes a connection whose peer reads nothing for the
        // heartbeat timeout: a write then meets the reset.
        closed = peer.stream.write(&batch[..64]).is_err_and(|e| is_reset(&e));
    }
    // PROTOCOL.md: a connection's buffers hold at most 2 MiB of writes plus
    // two frames, and a turn's reads plus one frame.
    let grown_kib = crate::raw::peak_rss_kib(child.os_pid()).saturating_sub(before_kib);
    println!("sent {written} bytes; the node's peak RSS grew {grown_kib} KiB");
    assert!(
        grown_kib < 64 * 1024,
        "the node grew {grown_kib} KiB at its peak while {written} bytes were sent"
    );
    // And it serves a well-behaved peer as before.
    let mut polite = RawPeer::handshake(addr, &format!("localhost/{}", unique("polite")), COOKIE);
    polite.write_packet(&spawn_request(&me, 1, "double"));
    match polite.read_packet().unwrap() {
        Packet::SpawnReply { result, .. } => assert!(result.is_ok(), "{result:?}"),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_spawn_with_a_huge_function_name_gets_a_bounded_error() {
    let mapper = port_mapper();
    let (rt_a, node_a) = node(&mapper, &unique("a"));
    let (_rt_b, node_b) = node(&mapper, &unique("b"));
    let me = format!("localhost/{}", unique("raw"));
    let mut peer = RawPeer::handshake(node_b.local_addr(), &me, COOKIE);
    for length in [100_000, 300_000] {
        peer.write_packet(&spawn_request(&me, 5, &"x".repeat(length)));
        let (_, body) = peer.read_frame().unwrap();
        assert!(body.len() <= 1024, "a {}-byte reply", body.len());
        match erlangen_net::wire::decode::<Packet>(&body).unwrap() {
            Packet::SpawnReply {
                result: Err(why), ..
            } => assert!(why.contains("no function"), "{why}"),
            other => panic!("unexpected {other:?}"),
        }
    }
    // Through the API too: a clear, bounded error.
    let b = node_b.name().clone();
    let why = rt_a
        .run(move |ctx| {
            node_a
                .spawn(ctx, &b, &"y".repeat(100_000), 1u64, SpawnOptions::new())
                .unwrap_err()
                .to_string()
        })
        .unwrap();
    assert!(why.len() < 1024 && why.contains("no function"), "{why}");
}
