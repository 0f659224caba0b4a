//! Two nodes in one process: remote send, pids inside messages, remote
//! spawn, links and monitors across nodes, node loss, the handshake.

use std::sync::Arc;
use std::time::Duration;

use erlangen_net::{NetError, Node};
use erlangen_runtime::{Down, ExitReason, ExitStatus, Pid, SpawnOptions};

use crate::support::{name_of, node, port_mapper, unique, Ping, COOKIE, HANG_GUARD};

/// Starts an echo agent registered as "echo" on `rt`: it answers each
/// `Ping` with `n + 1` and then with the pid it was asked to reply to.
fn echo(rt: &erlangen_runtime::Runtime) {
    let pid = rt.spawn(|ctx| loop {
        let ping = ctx.receive().downcast::<Ping>().unwrap();
        ctx.send(&ping.reply_to, ping.n + 1);
        ctx.send(&ping.reply_to, ping.reply_to.clone());
    });
    rt.register("echo", &pid).unwrap();
}

#[test]
fn a_message_to_a_named_agent_on_another_node_is_answered_through_the_pid_it_carries() {
    let mapper = port_mapper();
    let (rt_a, node_a) = node(&mapper, &unique("a"));
    let (rt_b, node_b) = node(&mapper, &unique("b"));
    echo(&rt_b);
    let b = name_of(&node_b);
    let node_a = Arc::new(node_a);
    let node = node_a.clone();
    let (answer, me_back, me) = rt_a
        .run(move |ctx| {
            node.send_named(
                ctx,
                &b,
                "echo",
                Ping {
                    reply_to: ctx.pid(),
                    n: 41,
                },
            );
            let answer = ctx
                .receive_timeout(HANG_GUARD)
                .unwrap()
                .downcast::<u64>()
                .unwrap();
            let me_back = ctx
                .receive_timeout(HANG_GUARD)
                .unwrap()
                .downcast::<Pid>()
                .unwrap();
            (answer, me_back, ctx.pid())
        })
        .unwrap();
    assert_eq!(answer, 42);
    assert_eq!(
        me_back, me,
        "a pid that comes home resolves to the local agent"
    );
    assert!(!me_back.is_remote());
}

#[test]
fn a_remote_spawn_with_a_monitor_returns_the_value_in_the_down() {
    let mapper = port_mapper();
    let (rt_a, node_a) = node(&mapper, &unique("a"));
    let (_rt_b, node_b) = node(&mapper, &unique("b"));
    let b = name_of(&node_b);
    let node_a = Arc::new(node_a);
    let node = node_a.clone();
    let (child, down) = rt_a
        .run(move |ctx| {
            let child = node
                .spawn(ctx, &b, "double", 21u64, SpawnOptions::new().monitor())
                .unwrap();
            let down = ctx
                .receive_timeout(HANG_GUARD)
                .unwrap()
                .downcast::<Down>()
                .unwrap();
            (child, down)
        })
        .unwrap();
    assert!(child.is_remote());
    assert_eq!(down.pid, child);
    assert_eq!(
        down.status.value().unwrap().downcast_ref::<u64>(),
        Some(&42)
    );
}

#[test]
fn a_remote_spawn_of_an_unknown_function_is_an_error() {
    let mapper = port_mapper();
    let (rt_a, node_a) = node(&mapper, &unique("a"));
    let (_rt_b, node_b) = node(&mapper, &unique("b"));
    let b = name_of(&node_b);
    let node_a = Arc::new(node_a);
    let node = node_a.clone();
    // Erlangen spawned a dead agent here; we refuse (erlangen.md §8.3).
    let refused = rt_a
        .run(move |ctx| {
            let unknown = node.spawn(ctx, &b, "no-such-function", (), SpawnOptions::new());
            let bad_args = node.spawn(
                ctx,
                &b,
                "double",
                "not a number".to_owned(),
                SpawnOptions::new(),
            );
            (
                matches!(unknown, Err(NetError::Spawn(_))),
                matches!(bad_args, Err(NetError::Spawn(_))),
            )
        })
        .unwrap();
    assert_eq!(refused, (true, true));
}

#[test]
fn a_panic_on_the_other_node_reaches_a_local_monitor() {
    let mapper = port_mapper();
    let (rt_a, node_a) = node(&mapper, &unique("a"));
    let (_rt_b, node_b) = node(&mapper, &unique("b"));
    let b = name_of(&node_b);
    let node_a = Arc::new(node_a);
    let node = node_a.clone();
    let status = rt_a
        .run(move |ctx| {
            node.spawn(
                ctx,
                &b,
                "fail",
                "on purpose".to_owned(),
                SpawnOptions::new().monitor(),
            )
            .unwrap();
            ctx.receive_timeout(HANG_GUARD)
                .unwrap()
                .downcast::<Down>()
                .unwrap()
                .status
        })
        .unwrap();
    match status {
        ExitStatus::Exit(ExitReason::Panic(message)) => assert!(message.contains("on purpose")),
        other => panic!("expected a panic, got {other:?}"),
    }
}

#[test]
fn a_link_across_nodes_fires_on_normal_exit_and_unlink_stops_it() {
    let mapper = port_mapper();
    let (rt_a, node_a) = node(&mapper, &unique("a"));
    let (_rt_b, node_b) = node(&mapper, &unique("b"));
    let b = name_of(&node_b);
    let node_a = Arc::new(node_a);
    let node = node_a.clone();
    let status = rt_a
        .run(move |ctx| {
            let node = node.clone();
            let b = b.clone();
            let linked = ctx
                .spawn_with(SpawnOptions::new().monitor(), move |ctx| {
                    let far = node
                        .spawn(ctx, &b, "wait", (), SpawnOptions::new())
                        .unwrap();
                    ctx.link(&far).unwrap();
                    // Its normal exit must kill us (Erlangen's links).
                    ctx.send(&far, ());
                    ctx.receive_timeout(HANG_GUARD).unwrap();
                })
                .unwrap();
            let down = ctx
                .receive_timeout(HANG_GUARD)
                .unwrap()
                .downcast::<Down>()
                .unwrap();
            assert_eq!(down.pid, linked);
            down.status
        })
        .unwrap();
    match status {
        ExitStatus::Exit(ExitReason::Linked(inner)) => assert!(inner.is_ok(), "{inner:?}"),
        other => panic!("expected a linked exit, got {other:?}"),
    }
}

#[test]
fn stopping_a_node_fires_noconnection_on_monitors_across_it() {
    let mapper = port_mapper();
    let (rt_a, node_a) = node(&mapper, &unique("a"));
    let (rt_b, node_b) = node(&mapper, &unique("b"));
    let b = name_of(&node_b);
    let node_a = Arc::new(node_a);
    let node = node_a.clone();
    let (ready_tx, ready) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            rt_a.run(move |ctx| {
                let far = node
                    .spawn(ctx, &b, "wait", (), SpawnOptions::new().monitor())
                    .unwrap();
                ready_tx.send(()).unwrap();
                let down = ctx
                    .receive_timeout(HANG_GUARD)
                    .unwrap()
                    .downcast::<Down>()
                    .unwrap();
                (down.pid == far, down.status)
            })
        });
        ready.recv_timeout(HANG_GUARD).unwrap();
        node_b.stop();
        let (same, status) = watcher.join().unwrap().unwrap();
        assert!(same);
        assert!(
            matches!(status, ExitStatus::Exit(ExitReason::NoConnection)),
            "{status:?}"
        );
    });
    drop(rt_b);
}

#[test]
fn a_node_with_the_wrong_cookie_delivers_nothing() {
    let mapper = port_mapper();
    let (rt_b, node_b) = node(&mapper, &unique("b"));
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = rt_b.spawn(move |ctx| {
        if let Ok(message) = ctx.receive_timeout(Duration::from_millis(1500)) {
            tx.send(format!("{message:?}")).unwrap();
        }
    });
    rt_b.register("sink", &sink).unwrap();
    let rt_c = erlangen_runtime::Runtime::builder()
        .workers(1)
        .build()
        .unwrap();
    let node_c = Node::builder(&unique("c"))
        .cookie(b"not the cookie")
        .port_mapper(mapper.local_addr())
        .start(&rt_c)
        .unwrap();
    node_c
        .try_send_named(&name_of(&node_b), "sink", 7u64)
        .unwrap();
    assert!(
        rx.recv_timeout(Duration::from_secs(3)).is_err(),
        "nothing reaches an agent without the cookie"
    );
    assert!(node_b.peers().iter().all(|peer| !peer.connected));
    assert_eq!(COOKIE, b"test cookie");
}

#[test]
fn a_taken_node_name_fails_the_start() {
    let mapper = port_mapper();
    let name = unique("taken");
    let (_rt_a, _node_a) = node(&mapper, &name);
    let rt = erlangen_runtime::Runtime::builder()
        .workers(1)
        .build()
        .unwrap();
    let second = Node::builder(&name)
        .cookie(COOKIE)
        .port_mapper(mapper.local_addr())
        .start(&rt);
    assert!(matches!(second, Err(NetError::NameTaken(_))), "{second:?}");
}

#[test]
fn a_million_messages_from_one_agent_arrive_complete_and_in_order() {
    let mapper = port_mapper();
    let (rt_a, node_a) = node(&mapper, &unique("a"));
    let (rt_b, node_b) = node(&mapper, &unique("b"));
    const N: u64 = 1_000_000;
    let (tx, rx) = std::sync::mpsc::channel();
    let counter = rt_b
        .spawn_with(SpawnOptions::new().mailbox_len(1 << 20), move |ctx| {
            let mut expected = 0u64;
            while expected < N {
                let n = ctx.receive().downcast::<u64>().unwrap();
                if n != expected {
                    tx.send(Err(format!("got {n}, expected {expected}")))
                        .unwrap();
                    return;
                }
                expected += 1;
            }
            tx.send(Ok(expected)).unwrap();
        })
        .unwrap();
    rt_b.register("counter", &counter).unwrap();
    let b = name_of(&node_b);
    let node_a = Arc::new(node_a);
    let node = node_a.clone();
    rt_a.run(move |ctx| {
        for n in 0..N {
            node.send_named(ctx, &b, "counter", n);
        }
    })
    .unwrap();
    let result = rx
        .recv_timeout(Duration::from_secs(120))
        .unwrap_or_else(|_| {
            panic!(
                "the stream did not complete: a {:?} dropped {}; b {:?} dropped {}; counter {:?}",
                node_a.peers(),
                node_a.dropped(),
                node_b.peers(),
                node_b.dropped(),
                rt_b.stats(&counter)
            )
        });
    assert_eq!(result, Ok(N));
}

#[test]
fn eight_senders_streams_arrive_complete_and_each_in_order() {
    let mapper = port_mapper();
    let (rt_a, node_a) = node(&mapper, &unique("a"));
    let (rt_b, node_b) = node(&mapper, &unique("b"));
    const SENDERS: u64 = 8;
    const EACH: u64 = 50_000;
    let (tx, rx) = std::sync::mpsc::channel();
    let counter = rt_b
        .spawn_with(SpawnOptions::new().mailbox_len(1 << 20), move |ctx| {
            let mut next = [0u64; SENDERS as usize];
            for _ in 0..SENDERS * EACH {
                let tagged = ctx.receive().downcast::<u64>().unwrap();
                let (sender, n) = ((tagged >> 32) as usize, tagged & 0xffff_ffff);
                if n != next[sender] {
                    tx.send(Err(format!(
                        "sender {sender}: got {n}, expected {}",
                        next[sender]
                    )))
                    .unwrap();
                    return;
                }
                next[sender] += 1;
            }
            tx.send(Ok(next.iter().sum::<u64>())).unwrap();
        })
        .unwrap();
    rt_b.register("counter", &counter).unwrap();
    let b = name_of(&node_b);
    let node_a = Arc::new(node_a);
    let node = node_a.clone();
    rt_a.run(move |ctx| {
        for sender in 0..SENDERS {
            let (node, b) = (node.clone(), b.clone());
            ctx.spawn(move |ctx| {
                for n in 0..EACH {
                    node.send_named(ctx, &b, "counter", (sender << 32) | n);
                }
            });
        }
    })
    .unwrap();
    let result = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("the streams complete");
    assert_eq!(result, Ok(SENDERS * EACH));
}

#[test]
fn a_sender_faster_than_the_network_waits_and_loses_nothing() {
    let mapper = port_mapper();
    let (rt_a, node_a) = node(&mapper, &unique("a"));
    let (rt_b, node_b) = node(&mapper, &unique("b"));
    const N: u64 = 400_000;
    let (tx, rx) = std::sync::mpsc::channel();
    let receiver = rt_b
        .spawn_with(SpawnOptions::new().mailbox_len(1 << 20), move |ctx| {
            for expected in 0..N {
                let n = ctx.receive().downcast::<u64>().unwrap();
                if n != expected {
                    tx.send(Err(n)).unwrap();
                    return;
                }
            }
            tx.send(Ok(N)).unwrap();
        })
        .unwrap();
    rt_b.register("receiver", &receiver).unwrap();
    let b = name_of(&node_b);
    let node_a = Arc::new(node_a);
    let node = node_a.clone();
    let watching = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let (node2, watching2) = (node_a.clone(), watching.clone());
    let watcher = std::thread::spawn(move || {
        let mut max = (0, 0);
        while watching2.load(std::sync::atomic::Ordering::SeqCst) {
            let (commands, bytes) = node2.backlog();
            max = (max.0.max(commands), max.1.max(bytes));
            std::thread::yield_now();
        }
        max
    });
    rt_a.run(move |ctx| {
        for n in 0..N {
            node.send_named(ctx, &b, "receiver", n);
        }
    })
    .unwrap();
    let result = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("everything arrives");
    watching.store(false, std::sync::atomic::Ordering::SeqCst);
    let (max_commands, max_bytes) = watcher.join().unwrap();
    assert_eq!(result, Ok(N), "nothing lost, in order");
    // The backlog stays near its bounds (each waiting sender may add one).
    assert!(
        max_commands <= erlangen_net::config::BACKLOG_COMMANDS_HIGH_WATER + 16,
        "{max_commands}"
    );
    assert!(
        max_bytes
            <= erlangen_net::config::BACKLOG_BYTES_HIGH_WATER
                + erlangen_net::config::FRAME_BODY_BYTES_MAX,
        "{max_bytes}"
    );
    assert!(node_a.busy_waits() > 0, "the sender was made to wait");
}

#[test]
fn a_node_registers_again_after_its_port_mapper_restarts_and_unregisters_when_stopped() {
    use erlangen_portmap::{Client, Daemon, DaemonConfig, ErrorCode};
    let mapper = port_mapper();
    let addr = mapper.local_addr();
    let name = unique("phoenix");
    let (_rt, node) = node(&mapper, &name);
    let port = node.local_addr().port();
    assert_eq!(Client::connect(addr).unwrap().lookup(&name).unwrap(), port);
    mapper.stop().unwrap();
    // A new port mapper on the same address: the node comes back to it.
    let restarted = Daemon::start(DaemonConfig {
        listen: addr,
        ..DaemonConfig::default()
    })
    .expect("the port is free again");
    let deadline = std::time::Instant::now() + HANG_GUARD;
    let found = loop {
        match Client::connect(addr).and_then(|mut c| c.lookup(&name)) {
            Ok(found) => break found,
            Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(error) => panic!("the node did not register again: {error}"),
        }
    };
    assert_eq!(found, port);
    node.stop();
    // The registration's connection closed with the node: the name goes
    // (the daemon notices the close on its own loop).
    let deadline = std::time::Instant::now() + HANG_GUARD;
    loop {
        let lookup = Client::connect(addr).unwrap().lookup(&name);
        match lookup {
            Err(error) if error.code() == Some(ErrorCode::NoSuchNode) => break,
            _ if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5))
            }
            other => panic!("the name outlived its node: {other:?}"),
        }
    }
    drop(restarted);
}

#[test]
fn a_kernels_boot_function_starts_a_server_that_lives_with_the_kernel() {
    use erlangen_runtime::server::{start_server, Reply, Server, ServerOptions, ServerRef};
    use erlangen_runtime::{Ctx, ReplyTo};
    struct Incr;
    impl Server for Incr {
        type Request = u64;
        type Reply = u64;
        type Cast = ();
        fn handle_call(&mut self, _ctx: &Ctx, n: u64, _from: &ReplyTo) -> Reply<u64> {
            Reply::Reply(n + 1)
        }
    }
    let mapper = port_mapper();
    let kernel = erlangen_net::Kernel::standard().on_boot(|ctx, _node| {
        start_server(ctx, Incr, ServerOptions::new().name("booted")).expect("it starts");
    });
    let rt = erlangen_runtime::Runtime::builder()
        .workers(1)
        .build()
        .unwrap();
    let (types, functions) = kernel.clone().into_parts();
    let kernel_node = std::sync::Arc::new(
        Node::builder(&unique("kernel"))
            .cookie(COOKIE)
            .port_mapper(mapper.local_addr())
            .types(types)
            .functions(functions)
            .start(&rt)
            .unwrap(),
    );
    let boot = kernel.boot(&rt, &kernel_node).expect("a boot agent");
    let answer = rt
        .run(move |ctx| {
            let start = std::time::Instant::now();
            let pid = loop {
                if let Some(pid) = ctx.whereis("booted") {
                    break pid;
                }
                assert!(start.elapsed() < HANG_GUARD, "the boot function ran");
                ctx.sleep(Duration::from_millis(1));
            };
            // The boot agent stays, so the server it started stays.
            assert!(ctx.agents().contains(&boot));
            ServerRef::<Incr>::from_pid(pid)
                .call(ctx, 41, HANG_GUARD)
                .unwrap()
        })
        .unwrap();
    assert_eq!(answer, 42);
}

#[test]
fn a_pid_and_a_wire_pid_each_arrive_as_what_was_sent() {
    let mapper = port_mapper();
    let (rt_a, a) = node(&mapper, &unique("pid-a"));
    let (rt_b, b) = node(&mapper, &unique("pid-b"));
    let (seen_tx, seen) = std::sync::mpsc::channel();
    let receiver = rt_b.spawn(move |ctx| {
        for _ in 0..2 {
            let message = ctx.receive();
            let _ = seen_tx.send((
                message.is::<erlangen_runtime::Pid>(),
                message.is::<erlangen_net::WirePid>(),
            ));
        }
    });
    let id = b.id_of(&receiver).unwrap();
    let to = a.pid_of(&id);
    rt_a.run(move |ctx| {
        ctx.send(&to, erlangen_net::WirePid(ctx.pid()));
        ctx.send(&to, ctx.pid());
    })
    .unwrap();
    assert_eq!(
        seen.recv_timeout(HANG_GUARD).unwrap(),
        (false, true),
        "a WirePid"
    );
    assert_eq!(
        seen.recv_timeout(HANG_GUARD).unwrap(),
        (true, false),
        "a Pid"
    );
}
