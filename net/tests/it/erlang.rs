//! Our node among real Erlang nodes (Debian's `erl` and `epmd`; `.ci/run`
//! installs them where missing): an epmd of its own on a free port
//! (`ERL_EPMD_PORT`), our node registered with it under an Erlang name,
//! and an `erl -sname` node that runs a script against ours and halts with
//! 0 only if every step held.

use std::io::Read;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use erlangen_net::erlang::eetf::{Atom, FixInteger, Tuple};
use erlangen_net::erlang::{ErlangOptions, ErlangPids, Term};
use erlangen_net::Node;
use erlangen_runtime::{ExitReason, Runtime, WatchDown};

use erlangen_portmap::Daemon;

use crate::support::{port_mapper, unique, COOKIE, HANG_GUARD};

/// The Erlang cookie of these tests.
const ERLANG_COOKIE: &str = "erlangen_interop_test";

/// A child process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An epmd of its own on a port that was free a moment ago; waits until it
/// answers.
fn epmd() -> (Killed, u16) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("epmd")
        .args(["-port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("epmd runs (Debian's erlang-base; .ci/run installs it)");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < HANG_GUARD, "epmd did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (Killed(child), port)
}

/// Runs `script` on a fresh `erl -sname` node with `cookie`; its exit code
/// and output.
fn erl(epmd_port: u16, cookie: &str, rust_node: &str, script: &str) -> (i32, String) {
    let name = unique("e").replace('-', "_");
    let wrapped = format!(
        "try\n{script}\ncatch XClass:XReason:XStack ->\n    io:format(\"failed: ~p ~p ~p~n\", [XClass, XReason, XStack]), halt(1)\nend."
    );
    let mut child = Command::new("erl")
        .args([
            "-sname",
            &name,
            "-setcookie",
            cookie,
            "-noshell",
            "-eval",
            &wrapped,
        ])
        .env("ERL_EPMD_PORT", epmd_port.to_string())
        .env("ERL_CRASH_DUMP_SECONDS", "0")
        .env("RUST_NODE", rust_node)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("erl runs");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > HANG_GUARD * 2 {
            let _ = child.kill();
            panic!("erl did not halt");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut output = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut output)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut output)
        .unwrap();
    (status.code().unwrap_or(-1), output)
}

/// Our node and its agents (`rust_node`).
type RustNode = (
    Runtime,
    Daemon,
    Arc<Node>,
    String,
    Arc<std::sync::atomic::AtomicUsize>,
    std::sync::mpsc::Receiver<String>,
);

/// Our node, joined to the Erlang cluster of `epmd_port`, with an agent
/// registered as `echo` that answers `{From, ping}` with `{pong, Self}` and
/// counts what it got, and one registered as `watcher` that serves
/// `{Target, What, From}` (see its body) and reports the watches that fire
/// to the test.
fn rust_node(epmd_port: u16) -> RustNode {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let mapper = port_mapper();
    let alive = unique("rust").replace('-', "_");
    let node = Node::builder(&alive)
        .cookie(COOKIE)
        .port_mapper(mapper.local_addr())
        .erlang(
            erlangen_net::kernel::standard_erlang_functions(ErlangOptions::new(&alive))
                .cookie(ERLANG_COOKIE.as_bytes())
                .function("math", "double", |_ctx, _pids, args| {
                    match args.as_slice() {
                        [Term::FixInteger(n)] => Term::from(FixInteger::from(n.value * 2)),
                        _ => panic!("double takes one integer"),
                    }
                })
                .epmd(([127, 0, 0, 1], epmd_port).into()),
        )
        .start(&rt)
        .expect("the node starts and registers with epmd");
    let node = Arc::new(node);
    let name = node.erlang_name().unwrap().to_owned();
    let received = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (echo_node, count) = (node.clone(), received.clone());
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    rt.spawn(move |ctx| {
        ctx.register("echo").unwrap();
        ready_tx.send(()).unwrap();
        loop {
            let Ok(term) = ctx.receive().downcast::<Term>() else {
                continue;
            };
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let Term::Tuple(Tuple { elements }) = term else {
                continue;
            };
            let [Term::Pid(from), Term::Atom(Atom { name })] = elements.as_slice() else {
                continue;
            };
            let to = echo_node.erlang_pid(from).unwrap();
            let me = echo_node.erlang_term_pid(&ctx.pid()).unwrap();
            let pong = match name.as_str() {
                "ping" => vec![Term::from(Atom::from("pong")), Term::from(me)],
                // The asker's pid back, after a trip through our `Pid`.
                "ping_back" => vec![
                    Term::from(Atom::from("pong_back")),
                    Term::from(me),
                    Term::from(echo_node.erlang_term_pid(&to).unwrap()),
                ],
                _ => continue,
            };
            ctx.send(&to, Term::from(Tuple::from(pong)));
        }
    });
    ready_rx.recv_timeout(HANG_GUARD).unwrap();
    let (reports_tx, reports) = std::sync::mpsc::channel();
    let watcher_node = node.clone();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    rt.spawn(move |ctx| {
        ctx.register("watcher").unwrap();
        ready_tx.send(()).unwrap();
        loop {
            let Ok(Term::Tuple(Tuple { elements })) = ctx.receive().downcast::<Term>() else {
                continue;
            };
            let [Term::Pid(target), Term::Atom(Atom { name: what }), Term::Pid(from)] =
                elements.as_slice()
            else {
                continue;
            };
            let node = watcher_node.clone();
            let target = node.erlang_pid(target).unwrap();
            let from = node.erlang_pid(from).unwrap();
            let (what, reports) = (what.clone(), reports_tx.clone());
            // A helper per request: the registered agent outlives them.
            ctx.spawn(move |ctx| match what.as_str() {
                // Watches `target`, says `watching`, then reports how it
                // ended, to the asker and to the test.
                "watch" => {
                    ctx.watch(&target).unwrap();
                    ctx.send(&from, Term::from(Atom::from("watching")));
                    let down = ctx.receive().downcast::<WatchDown>().unwrap();
                    let reason = erlangen_net::erlang::reason::to_term(&down.status);
                    let text = match &reason {
                        Term::Atom(Atom { name }) => name.clone(),
                        other => other.to_string(),
                    };
                    let _ = reports.send(format!("down {text}"));
                    ctx.send(
                        &from,
                        Term::from(Tuple::from(vec![Term::from(Atom::from("down")), reason])),
                    );
                }
                // Erlangen's monitor: ending kills what it monitors.
                "monitor_then_exit" => {
                    ctx.monitor(&target).unwrap();
                    ctx.exit(ExitReason::other("monitor_gone"));
                }
                "link_then_exit" => {
                    ctx.link(&target).unwrap();
                    ctx.exit(ExitReason::other("linkgone"));
                }
                // Erlang's exit/2 from our side.
                "kill" => ctx.kill(&target, ExitReason::other("killed_by_rust")),
                // Exits with the reason it is sent, `{die, Reason}`.
                "make" => {
                    let me = node.erlang_term_pid(&ctx.pid()).unwrap();
                    ctx.send(
                        &from,
                        Term::from(Tuple::from(vec![
                            Term::from(Atom::from("made")),
                            Term::from(me),
                        ])),
                    );
                    let Ok(Term::Tuple(Tuple { elements })) = ctx.receive().downcast::<Term>()
                    else {
                        return;
                    };
                    if let [_, Term::Atom(Atom { name })] = elements.as_slice() {
                        ctx.exit(ExitReason::other(name));
                    }
                }
                _ => {}
            });
        }
    });
    ready_rx.recv_timeout(HANG_GUARD).unwrap();
    (rt, mapper, node, name, received, reports)
}

#[test]
fn an_erlang_node_pings_ours_and_our_registered_agent_answers_it() {
    let (_epmd, port) = epmd();
    let (_rt, _mapper, _node, name, received, _reports) = rust_node(port);
    let (code, output) = erl(
        port,
        ERLANG_COOKIE,
        &name,
        r#"
        Rust = list_to_atom(os:getenv("RUST_NODE")),
        pong = net_adm:ping(Rust),
        true = lists:member(Rust, nodes()),
        {echo, Rust} ! {self(), ping},
        Echo = receive {pong, P} when is_pid(P), node(P) =:= Rust -> P
               after 10000 -> exit(no_pong_by_name) end,
        % The pid we got back works: a send to it reaches the same agent.
        Echo ! {self(), ping},
        receive {pong, Echo} -> ok after 10000 -> exit(no_pong_by_pid) end,
        % Our pid went to Erlang and back; ours comes back equal to itself.
        Self = self(),
        Echo ! {Self, ping_back},
        receive {pong_back, Echo, Self} -> ok after 10000 -> exit(no_pid_round_trip) end,
        % A monitor of a name nobody holds is DOWN with noproc at once.
        Ref = monitor(process, {nobody, Rust}),
        receive {'DOWN', Ref, process, _, noproc} -> ok
        after 10000 -> exit(no_noproc) end,
        io:format("all held~n"),
        halt(0)"#,
    );
    assert_eq!(code, 0, "erl said: {output}");
    assert!(output.contains("all held"), "{output}");
    assert_eq!(received.load(std::sync::atomic::Ordering::SeqCst), 3);
}

#[test]
fn an_erlang_node_with_another_cookie_is_refused_and_delivers_nothing() {
    let (_epmd, port) = epmd();
    let (_rt, _mapper, _node, name, received, _reports) = rust_node(port);
    let (code, output) = erl(
        port,
        "not_the_cookie",
        &name,
        r#"
        Rust = list_to_atom(os:getenv("RUST_NODE")),
        pang = net_adm:ping(Rust),
        {echo, Rust} ! {self(), ping},
        receive Any -> exit({unexpected, Any}) after 500 -> ok end,
        [] = nodes(),
        halt(0)"#,
    );
    assert_eq!(code, 0, "erl said: {output}");
    assert_eq!(received.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[test]
fn links_and_monitors_cross_between_erlang_processes_and_our_agents() {
    let (_epmd, port) = epmd();
    let (_rt, _mapper, _node, name, _received, _reports) = rust_node(port);
    let (code, output) = erl(
        port,
        ERLANG_COOKIE,
        &name,
        r#"
        Rust = list_to_atom(os:getenv("RUST_NODE")),
        Self = self(),
        process_flag(trap_exit, true),
        Make = fun() ->
            {watcher, Rust} ! {Self, make, Self},
            receive {made, P} -> P after 10000 -> exit(no_worker) end
        end,
        % Erlang links to and monitors our agent; its exit reason arrives.
        W = Make(),
        link(W),
        M = monitor(process, W),
        W ! {die, oops},
        receive {'EXIT', W, oops} -> ok after 10000 -> exit(no_exit_from_link) end,
        receive {'DOWN', M, process, W, oops} -> ok after 10000 -> exit(no_down) end,
        % A dead agent: monitor says noproc, link says noproc.
        M2 = monitor(process, W),
        receive {'DOWN', M2, process, W, noproc} -> ok after 10000 -> exit(no_noproc) end,
        link(W),
        receive {'EXIT', W, noproc} -> ok after 10000 -> exit(no_link_noproc) end,
        % Our agent watches an Erlang process and sees its reason.
        E = spawn(fun() -> receive {die, R} -> exit(R) end end),
        {watcher, Rust} ! {E, watch, Self},
        receive watching -> ok after 10000 -> exit(not_watching) end,
        E ! {die, boom},
        receive {down, boom} -> ok after 10000 -> exit(no_down_of_erlang_process) end,
        % Erlangen's monitor kills what it monitors when its agent ends.
        E2 = spawn(fun() -> receive never -> ok end end),
        M3 = monitor(process, E2),
        {watcher, Rust} ! {E2, monitor_then_exit, Self},
        receive {'DOWN', M3, process, E2, monitor_gone} -> ok
        after 10000 -> exit(not_killed_by_the_monitor) end,
        % Our agent kills an Erlang process (exit/2) with a reason.
        E3 = spawn(fun() -> receive never -> ok end end),
        M4 = monitor(process, E3),
        {watcher, Rust} ! {E3, kill, Self},
        receive {'DOWN', M4, process, E3, killed_by_rust} -> ok
        after 10000 -> exit(not_killed_by_us) end,
        % Our agent links to this trapping process, then exits.
        {watcher, Rust} ! {Self, link_then_exit, Self},
        receive {'EXIT', L, linkgone} when node(L) =:= Rust -> ok
        after 10000 -> exit(no_exit_from_our_link) end,
        io:format("all held~n"),
        halt(0)"#,
    );
    assert_eq!(code, 0, "erl said: {output}");
    assert!(output.contains("all held"), "{output}");
}

#[test]
fn killing_the_erlang_node_fires_noconnection_on_our_side() {
    let (_epmd, port) = epmd();
    let (_rt, _mapper, _node, name, _received, reports) = rust_node(port);
    let node_name = unique("e").replace('-', "_");
    let script = r#"
        Rust = list_to_atom(os:getenv("RUST_NODE")),
        E = spawn(fun() -> receive never -> ok end end),
        {watcher, Rust} ! {E, watch, self()},
        receive watching -> ok after 10000 -> halt(2) end,
        io:format("watched~n"),
        receive never -> ok end"#;
    let mut child = Command::new("erl")
        .args([
            "-sname",
            &node_name,
            "-setcookie",
            ERLANG_COOKIE,
            "-noshell",
            "-eval",
            script,
        ])
        .env("ERL_EPMD_PORT", port.to_string())
        .env("ERL_CRASH_DUMP_SECONDS", "0")
        .env("RUST_NODE", &name)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("erl runs");
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert_eq!(line.trim(), "watched");
    let _guard = Killed(child);
    // SIGKILL: the node cannot say goodbye.
    let pid = _guard.0.id() as i32;
    // SAFETY: kill(2) on a child process we own.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let report = reports
        .recv_timeout(HANG_GUARD * 2)
        .expect("the watch fires");
    assert_eq!(report, "down noconnection");
}

/// Our node's Erlang port, from epmd.
fn erlang_port(epmd_port: u16, name: &str) -> u16 {
    use erlangen_net::erlang::epmd;
    use std::io::Write;
    let alive = name.split('@').next().unwrap();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", epmd_port)).unwrap();
    stream.write_all(&epmd::port_request(alive)).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    epmd::port_response(&answer).unwrap()
}

/// Whether our node closed `stream` (a read sees the end or a reset).
fn closed(stream: &mut std::net::TcpStream) -> bool {
    stream.set_read_timeout(Some(HANG_GUARD)).unwrap();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return true,
            Ok(_) => {}
        }
    }
}

#[test]
fn bad_input_on_the_erlang_port_closes_only_that_connection() {
    use erlangen_net::erlang::handshake::{Handshake, Step};
    use std::io::Write;
    let (_epmd, port) = epmd();
    let (_rt, _mapper, _node, name, received, _reports) = rust_node(port);
    let erlang_port = erlang_port(port, &name);
    let connect = || std::net::TcpStream::connect(("127.0.0.1", erlang_port)).unwrap();

    // A handshake frame longer than the limit, and plain garbage.
    let mut oversized = connect();
    oversized.write_all(&[0xff, 0xff, b'N']).unwrap();
    assert!(closed(&mut oversized));
    let mut garbage = connect();
    garbage.write_all(b"\x00\x05hello").unwrap();
    assert!(closed(&mut garbage));

    // A peer with the cookie that then lies: a packet length of 1 GiB, a
    // term nested 100,000 deep, a control message that is not a tuple.
    let hostile_packets: [Vec<u8>; 3] = [
        (1u32 << 30).to_be_bytes().to_vec(),
        {
            let mut body = vec![112, 131];
            for _ in 0..100_000 {
                body.extend_from_slice(&[104, 1]);
            }
            body.push(106);
            let mut packet = (body.len() as u32).to_be_bytes().to_vec();
            packet.extend_from_slice(&body);
            packet
        },
        vec![0, 0, 0, 3, 112, 131, 106],
    ];
    for packet in hostile_packets {
        let mut stream = connect();
        let (first, mut dialer) = Handshake::dial("liar@host", 1, ERLANG_COOKIE.as_bytes(), &name);
        let frame = |body: &[u8]| {
            let mut framed = (body.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(body);
            framed
        };
        stream.write_all(&frame(&first)).unwrap();
        let read_frame = |stream: &mut std::net::TcpStream| {
            let mut len = [0u8; 2];
            stream.read_exact(&mut len).unwrap();
            let mut body = vec![0u8; u16::from_be_bytes(len) as usize];
            stream.read_exact(&mut body).unwrap();
            body
        };
        let mut up = false;
        while !up {
            let body = read_frame(&mut stream);
            match dialer.on_message(&body, 7).unwrap() {
                Step::Send(bodies) => {
                    for body in bodies {
                        stream.write_all(&frame(&body)).unwrap();
                    }
                }
                Step::Up(..) => up = true,
            }
        }
        stream.write_all(&packet).unwrap();
        assert!(closed(&mut stream), "{:?}", &packet[..8.min(packet.len())]);
    }

    // The node is unharmed: a real Erlang node still gets its pong.
    let (code, output) = erl(
        port,
        ERLANG_COOKIE,
        &name,
        r#"
        Rust = list_to_atom(os:getenv("RUST_NODE")),
        pong = net_adm:ping(Rust),
        {echo, Rust} ! {self(), ping},
        receive {pong, _} -> ok after 10000 -> exit(no_pong) end,
        halt(0)"#,
    );
    assert_eq!(code, 0, "erl said: {output}");
    assert_eq!(received.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[test]
fn an_erlang_node_runs_our_registered_functions_by_spawn_and_rpc() {
    let (_epmd, port) = epmd();
    let (_rt, _mapper, _node, name, _received, _reports) = rust_node(port);
    let (code, output) = erl(
        port,
        ERLANG_COOKIE,
        &name,
        r#"
        Rust = list_to_atom(os:getenv("RUST_NODE")),
        42 = rpc:call(Rust, math, double, [21]),
        84 = erpc:call(Rust, math, double, [42]),
        {badrpc, {'EXIT', {undef, _}}} = rpc:call(Rust, nosuch, fn, []),
        {'EXIT', {{exception, {panic, _}, _}, _}} = (catch erpc:call(Rust, math, double, [x])),
        % spawn/4 with a monitor: the process runs and ends normally.
        {P, M} = spawn_monitor(Rust, math, double, [1]),
        Rust = node(P),
        receive {'DOWN', M, process, P, normal} -> ok after 10000 -> exit(no_down) end,
        io:format("all held~n"),
        halt(0)"#,
    );
    assert_eq!(code, 0, "erl said: {output}");
    assert!(output.contains("all held"), "{output}");
}

#[test]
fn our_node_dials_an_erlang_node_to_send_to_a_registered_process() {
    let (_epmd, port) = epmd();
    let (rt, _mapper, node, name, received, _reports) = rust_node(port);
    let erl_name = unique("e").replace('-', "_");
    let script = r#"
        Rust = list_to_atom(os:getenv("RUST_NODE")),
        register(collector, self()),
        io:format("ready~n"),
        Echo = receive {hello_from_rust, P} when node(P) =:= Rust -> P
               after 20000 -> halt(2) end,
        true = lists:member(Rust, nodes()),
        Echo ! {self(), ping},
        receive {pong, Echo} -> ok after 10000 -> halt(3) end,
        io:format("all held~n"),
        halt(0)"#;
    let mut child = Command::new("erl")
        .args([
            "-sname",
            &erl_name,
            "-setcookie",
            ERLANG_COOKIE,
            "-noshell",
            "-eval",
            script,
        ])
        .env("ERL_EPMD_PORT", port.to_string())
        .env("ERL_CRASH_DUMP_SECONDS", "0")
        .env("RUST_NODE", &name)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("erl runs");
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    let mut child = Killed(child);
    // Our node has never heard of the Erlang node: it looks it up at epmd
    // and dials it.
    let host = name.split('@').nth(1).unwrap();
    let echo = rt.whereis("echo").unwrap();
    let hello = Term::from(Tuple::from(vec![
        Term::from(Atom::from("hello_from_rust")),
        Term::from(node.erlang_term_pid(&echo).unwrap()),
    ]));
    node.erlang_send_named(
        Some(&echo),
        &format!("{erl_name}@{host}"),
        "collector",
        hello,
    )
    .unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let status = child.0.wait().unwrap();
    assert_eq!(status.code(), Some(0), "erl said: {rest}");
    assert!(rest.contains("all held"), "{rest}");
    assert_eq!(received.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[test]
fn a_send_to_an_erlang_node_that_is_not_there_is_dropped_and_counted() {
    let (_epmd, port) = epmd();
    let (rt, _mapper, node, name, _received, _reports) = rust_node(port);
    let host = name.split('@').nth(1).unwrap();
    let before = node.dropped();
    node.erlang_send_named(
        None,
        &format!("nobody@{host}"),
        "x",
        Term::from(Atom::from("hi")),
    )
    .unwrap();
    let started = Instant::now();
    while node.dropped() == before {
        assert!(started.elapsed() < HANG_GUARD, "the send was never dropped");
        std::thread::sleep(Duration::from_millis(10));
    }
    // A watch of a process on that node says `noconnection`.
    let ghost = erlangen_net::erlang::eetf::Pid::new(format!("nobody@{host}"), 1, 0, 1);
    let ghost = node.erlang_pid(&ghost).unwrap();
    let status = rt
        .run(move |ctx| {
            ctx.watch(&ghost).unwrap();
            let down = ctx.receive().downcast::<WatchDown>().unwrap();
            down.status.reason().map(ToString::to_string)
        })
        .unwrap();
    assert_eq!(status.as_deref(), Some("noconnection"));
}

#[test]
fn a_ten_mib_binary_crosses_both_ways_intact_with_small_messages_between() {
    let (_epmd, port) = epmd();
    let (_rt, _mapper, _node, name, _received, _reports) = rust_node(port);
    // Our `erlangen:echo()` (the kernel's) answers each `{From, Message}`
    // with `Message`, in order.
    let (code, output) = erl(
        port,
        ERLANG_COOKIE,
        &name,
        r#"
        Rust = list_to_atom(os:getenv("RUST_NODE")),
        Echo = spawn(Rust, erlangen, echo, []),
        Big = crypto:strong_rand_bytes(10 * 1024 * 1024),
        [Echo ! {self(), M} || M <- [first, Big, second, Big, third]],
        [receive M -> ok after 20000 -> exit({missing, M}) end
         || M <- [first, Big, second, Big, third]],
        Echo ! stop,
        io:format("all held~n"),
        halt(0)"#,
    );
    assert_eq!(code, 0, "erl said: {output}");
    assert!(output.contains("all held"), "{output}");
}

#[test]
fn our_dial_with_the_wrong_cookie_delivers_nothing_and_fires_noconnection() {
    let (_epmd, port) = epmd();
    let (rt, _mapper, node, name, _received, _reports) = rust_node(port);
    let erl_name = unique("e").replace('-', "_");
    let script = r#"
        register(collector, self()),
        io:format("ready~n"),
        receive Any -> io:format("got ~p~n", [Any]), halt(1)
        after 3000 -> io:format("nothing~n"), halt(0) end"#;
    let mut child = Command::new("erl")
        .args([
            "-sname",
            &erl_name,
            "-setcookie",
            "another_cookie",
            "-noshell",
            "-eval",
            script,
        ])
        .env("ERL_EPMD_PORT", port.to_string())
        .env("ERL_CRASH_DUMP_SECONDS", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("erl runs");
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    let mut child = Killed(child);
    let host = name.split('@').nth(1).unwrap();
    let target = format!("{erl_name}@{host}");
    node.erlang_send_named(None, &target, "collector", Term::from(Atom::from("secret")))
        .unwrap();
    // A watch of a process there: the refused handshake is `noconnection`.
    let ghost = erlangen_net::erlang::eetf::Pid::new(target.as_str(), 1, 0, 1);
    let ghost = node.erlang_pid(&ghost).unwrap();
    let status = rt
        .run(move |ctx| {
            ctx.watch(&ghost).unwrap();
            let down = ctx.receive().downcast::<WatchDown>().unwrap();
            down.status.reason().map(ToString::to_string)
        })
        .unwrap();
    assert_eq!(status.as_deref(), Some("noconnection"));
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert_eq!(child.0.wait().unwrap().code(), Some(0), "erl said: {rest}");
    // (Erlang logs the rejected attempt, then its script says what it got.)
    assert!(rest.trim().ends_with("nothing"), "{rest}");
}

#[test]
fn killing_our_node_gives_erlang_monitors_noconnection_and_monitor_node_nodedown() {
    let (_epmd, port) = epmd();
    let dir = std::env::temp_dir().join(unique("erlang-cookie"));
    std::fs::create_dir_all(&dir).unwrap();
    let cookie_file = dir.join("cookie");
    std::fs::write(&cookie_file, ERLANG_COOKIE).unwrap();
    let alive = unique("kernel").replace('-', "_");
    let mut kernel = Killed(
        Command::new(env!("CARGO_BIN_EXE_erlangen-kernel"))
            .args([
                "--name",
                &alive,
                "--start-port-mapper",
                "--port-mapper",
                "127.0.0.1:0",
            ])
            .args([
                "--erlang-name",
                &alive,
                "--epmd",
                &format!("127.0.0.1:{port}"),
            ])
            .arg("--erlang-cookie-file")
            .arg(&cookie_file)
            .env("ERLANGEN_COOKIE", "test cookie")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the kernel runs"),
    );
    let mut kernel_out = std::io::BufReader::new(kernel.0.stdout.take().unwrap());
    let mut line = String::new();
    let name = loop {
        line.clear();
        assert!(std::io::BufRead::read_line(&mut kernel_out, &mut line).unwrap() > 0);
        if let Some(rest) = line
            .trim()
            .strip_prefix("erlangen-kernel: Erlang nodes reach it as '")
        {
            break rest.trim_end_matches('\'').to_owned();
        }
    };
    let erl_name = unique("e").replace('-', "_");
    let script = r#"
        Rust = list_to_atom(os:getenv("RUST_NODE")),
        {P, M} = spawn_monitor(Rust, erlangen, echo, []),
        true = erlang:monitor_node(Rust, true),
        io:format("monitoring~n"),
        receive {'DOWN', M, process, P, noconnection} -> ok
        after 20000 -> halt(2) end,
        receive {nodedown, Rust} -> io:format("noconnection~n"), halt(0)
        after 20000 -> halt(3) end"#;
    let mut child = Command::new("erl")
        .args([
            "-sname",
            &erl_name,
            "-setcookie",
            ERLANG_COOKIE,
            "-noshell",
            "-eval",
            script,
        ])
        .env("ERL_EPMD_PORT", port.to_string())
        .env("ERL_CRASH_DUMP_SECONDS", "0")
        .env("RUST_NODE", &name)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("erl runs");
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert_eq!(line.trim(), "monitoring");
    let mut child = Killed(child);
    let kernel_pid = kernel.0.id() as i32;
    // SAFETY: kill(2) on a child process we own.
    let killed = unsafe { libc::kill(kernel_pid, libc::SIGKILL) };
    assert_eq!(killed, 0);
    let _ = kernel.0.wait();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert_eq!(child.0.wait().unwrap().code(), Some(0), "erl said: {rest}");
    assert_eq!(rest.trim(), "noconnection");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn our_port_mapper_serves_erlang_nodes_as_their_epmd() {
    // No Erlang epmd: our port mapper answers the Erlang node and ours.
    let mapper = Daemon::start(erlangen_portmap::DaemonConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        epmd: Some("127.0.0.1:0".parse().unwrap()),
        ..erlangen_portmap::DaemonConfig::default()
    })
    .expect("a port mapper with epmd");
    let port = mapper.epmd_addr().expect("epmd served").port();
    let rt = Runtime::builder().workers(1).build().unwrap();
    let alive = unique("rust").replace('-', "_");
    let node = Node::builder(&alive)
        .cookie(COOKIE)
        .port_mapper(mapper.local_addr())
        .erlang(
            erlangen_net::kernel::standard_erlang_functions(ErlangOptions::new(&alive))
                .cookie(ERLANG_COOKIE.as_bytes())
                .epmd(([127, 0, 0, 1], port).into()),
        )
        .start(&rt)
        .expect("the node registers with our port mapper's epmd");
    let name = node.erlang_name().unwrap().to_owned();
    let (code, output) = erl(
        port,
        ERLANG_COOKIE,
        &name,
        r#"
        Rust = list_to_atom(os:getenv("RUST_NODE")),
        [RustAlive, _] = string:split(atom_to_list(Rust), "@"),
        [MyAlive, _] = string:split(atom_to_list(node()), "@"),
        {ok, Names} = net_adm:names(),
        true = lists:keymember(RustAlive, 1, Names),
        true = lists:keymember(MyAlive, 1, Names),
        pong = net_adm:ping(Rust),
        [3, 5] = rpc:call(Rust, erlangen, parallel_map, [inc, [2, 4]]),
        io:format("all held~n"),
        halt(0)"#,
    );
    assert_eq!(code, 0, "erl said: {output}");
    assert!(output.contains("all held"), "{output}");
}

/// A request an Erlang process writes as `{add, self(), A, B}`.
#[derive(serde::Serialize, serde::Deserialize, Debug)]
struct Add {
    from: erlangen_net::erlang::ErlangPid,
    a: i64,
    b: i64,
}

/// The answer, `{sum, Total, Shape}`.
#[derive(serde::Serialize, serde::Deserialize, Debug)]
struct Sum {
    total: i64,
    shape: Shape,
}

/// `{circle, R}` or `empty`.
#[derive(serde::Serialize, serde::Deserialize, Debug)]
enum Shape {
    Circle(f64),
    Empty,
}

#[test]
fn an_agent_speaks_its_own_serde_types_with_an_erlang_process() {
    let (_epmd, port) = epmd();
    let (rt, _mapper, node, name, _received, _reports) = rust_node(port);
    let adder_node = node.clone();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    rt.spawn(move |ctx| {
        ctx.register("adder").unwrap();
        ready_tx.send(()).unwrap();
        loop {
            let Ok(term) = ctx.receive().downcast::<Term>() else {
                continue;
            };
            let add: Add = erlangen_net::erlang::serde_term::from_term(&term).unwrap();
            let sum = Sum {
                total: add.a + add.b,
                shape: if add.a > 0 {
                    Shape::Circle(0.5)
                } else {
                    Shape::Empty
                },
            };
            let to = adder_node.erlang_pid(&add.from.0).unwrap();
            ctx.send(
                &to,
                erlangen_net::erlang::serde_term::to_term(&sum).unwrap(),
            );
        }
    });
    ready_rx.recv_timeout(HANG_GUARD).unwrap();
    let (code, output) = erl(
        port,
        ERLANG_COOKIE,
        &name,
        r#"
        Rust = list_to_atom(os:getenv("RUST_NODE")),
        {adder, Rust} ! {add, self(), 2, 3},
        receive {sum, 5, {circle, 0.5}} -> ok after 10000 -> exit(no_sum) end,
        {adder, Rust} ! {add, self(), -2, 3},
        receive {sum, 1, empty} -> ok after 10000 -> exit(no_second_sum) end,
        io:format("all held~n"),
        halt(0)"#,
    );
    assert_eq!(code, 0, "erl said: {output}");
    assert!(output.contains("all held"), "{output}");
}

#[test]
fn our_agent_spawns_on_an_erlang_node_with_and_without_a_link() {
    let (_epmd, port) = epmd();
    let (rt, _mapper, node, name, _received, _reports) = rust_node(port);
    let erl_name = unique("e").replace('-', "_");
    let script = r#"
        register(collector, self()),
        io:format("~w~n", [self()]),
        receive spawned_hello -> io:format("got it~n")
        after 20000 -> halt(2) end,
        receive after 60000 -> halt(0) end"#;
    let mut child = Command::new("erl")
        .args([
            "-sname",
            &erl_name,
            "-setcookie",
            ERLANG_COOKIE,
            "-noshell",
            "-eval",
            script,
        ])
        .env("ERL_EPMD_PORT", port.to_string())
        .env("ERL_CRASH_DUMP_SECONDS", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("erl runs");
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    let child = Killed(child);
    let host = name.split('@').nth(1).unwrap();
    let target = format!("{erl_name}@{host}");
    let (spawner_node, spawn_target) = (node.clone(), target.clone());
    let outcome = rt
        .run(move |ctx| {
            let node = spawner_node;
            // erlang:send(collector, spawned_hello), run over there.
            let args = vec![
                Term::from(Atom::from("collector")),
                Term::from(Atom::from("spawned_hello")),
            ];
            let sender = node
                .erlang_spawn(ctx, &spawn_target, ("erlang", "send"), args, false)
                .expect("the spawn succeeds");
            assert!(sender.is_remote());
            // erlang:exit(boom) with a link: our linked agent goes too.
            let (linked_node, linked_target) = (node.clone(), spawn_target.clone());
            let linked = ctx.spawn(move |ctx| {
                linked_node
                    .erlang_spawn(
                        ctx,
                        &linked_target,
                        ("erlang", "exit"),
                        vec![Term::from(Atom::from("boom"))],
                        true,
                    )
                    .expect("the linked spawn succeeds");
                ctx.receive();
            });
            ctx.watch(&linked).unwrap();
            let down = ctx.receive().downcast::<WatchDown>().unwrap();
            let nobody = format!("nobody@{}", spawn_target.split('@').nth(1).unwrap());
            let missing = node.erlang_spawn(ctx, &nobody, ("m", "f"), vec![], false);
            (format!("{:?}", down.status), missing.is_err())
        })
        .unwrap();
    assert!(outcome.0.contains("boom"), "{}", outcome.0);
    assert!(outcome.1, "a spawn on a node that is not there fails");
    let mut got = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut got).unwrap();
    assert_eq!(got.trim(), "got it");
    drop(child);
}

/// A 2-byte length and `body`: a handshake frame.
fn handshake_frame(body: &[u8]) -> Vec<u8> {
    let mut framed = (body.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(body);
    framed
}

/// Reads one handshake frame's body.
fn read_handshake_frame(stream: &mut std::net::TcpStream) -> Vec<u8> {
    stream.set_read_timeout(Some(HANG_GUARD)).unwrap();
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; u16::from_be_bytes(len) as usize];
    stream.read_exact(&mut body).unwrap();
    body
}

/// Drives `handshake` on `stream` until it is up, starting from `first`
/// (a body already read) when given.
fn finish_handshake(
    stream: &mut std::net::TcpStream,
    handshake: &mut erlangen_net::erlang::handshake::Handshake,
    mut first: Option<Vec<u8>>,
) {
    use erlangen_net::erlang::handshake::Step;
    use std::io::Write;
    loop {
        let body = first.take().unwrap_or_else(|| read_handshake_frame(stream));
        match handshake.on_message(&body, 11).unwrap() {
            Step::Send(bodies) => {
                for body in bodies {
                    stream.write_all(&handshake_frame(&body)).unwrap();
                }
            }
            Step::Up(bodies, _) => {
                for body in bodies {
                    stream.write_all(&handshake_frame(&body)).unwrap();
                }
                return;
            }
        }
    }
}

/// Reads distribution packets until one holds `needle` (ticks and other
/// packets are skipped).
fn wait_for_packet_with(stream: &mut std::net::TcpStream, needle: &[u8]) {
    stream.set_read_timeout(Some(HANG_GUARD)).unwrap();
    loop {
        let mut len = [0u8; 4];
        stream.read_exact(&mut len).unwrap();
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        stream.read_exact(&mut body).unwrap();
        if body.windows(needle.len()).any(|window| window == needle) {
            return;
        }
    }
}

/// Both nodes dial each other at once. The test plays the other node with
/// our own handshake core: it registers a name with epmd, makes our node
/// dial it (a send to a process there), holds that dial unanswered and
/// dials our node itself. Erlang's rule (`net_kernel`'s `accept_pending`)
/// decides: the node whose name sorts greater keeps its own dial and
/// refuses the other with `nok`; the smaller gives its dial up and accepts.
/// Either way one connection carries what our node sent.
#[test]
fn a_simultaneous_connect_keeps_the_dial_of_the_node_whose_name_sorts_greater() {
    use erlangen_net::erlang::epmd;
    use erlangen_net::erlang::handshake::Handshake;
    use std::io::Write;
    let (_epmd, port) = epmd();
    let (_rt, _mapper, node, name, _received, _reports) = rust_node(port);
    let (ours, host) = name.split_once('@').unwrap();
    let our_port = erlang_port(port, &name);
    let cookie = ERLANG_COOKIE.as_bytes();
    // "aaa…" sorts below our "rust…" and "zzz…" above it.
    for (prefix, ours_wins) in [("aaa", true), ("zzz", false)] {
        let alive = unique(prefix).replace('-', "_");
        let theirs = format!("{alive}@{host}");
        assert_eq!(ours_wins, ours > alive.as_str());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut registration = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        registration
            .write_all(&epmd::alive2_request(
                &alive,
                listener.local_addr().unwrap().port(),
            ))
            .unwrap();
        registration.set_read_timeout(Some(HANG_GUARD)).unwrap();
        let mut answer = Vec::new();
        loop {
            let mut buffer = [0u8; 16];
            let n = registration.read(&mut buffer).unwrap();
            assert!(n > 0, "epmd closed the registration");
            answer.extend_from_slice(&buffer[..n]);
            match epmd::alive2_response(&answer) {
                Err(epmd::EpmdError::Incomplete) => continue,
                result => {
                    result.unwrap();
                    break;
                }
            };
        }

        // Our node dials; its send_name is read and left unanswered.
        let needle = format!("hello_{prefix}");
        node.erlang_send_named(
            None,
            &theirs,
            "anyone",
            Term::from(Atom::from(needle.as_str())),
        )
        .unwrap();
        let (mut held, _) = listener.accept().unwrap();
        let their_send_name = read_handshake_frame(&mut held);

        // The other node dials ours meanwhile.
        let mut dial = std::net::TcpStream::connect(("127.0.0.1", our_port)).unwrap();
        let (first, mut dialer) = Handshake::dial(&theirs, 1, cookie, &name);
        dial.write_all(&handshake_frame(&first)).unwrap();
        if ours_wins {
            assert_eq!(read_handshake_frame(&mut dial), b"snok");
            assert!(closed(&mut dial));
            let mut acceptor = Handshake::accept(&theirs, 1, cookie);
            finish_handshake(&mut held, &mut acceptor, Some(their_send_name));
            wait_for_packet_with(&mut held, needle.as_bytes());
        } else {
            finish_handshake(&mut dial, &mut dialer, None);
            assert!(closed(&mut held));
            wait_for_packet_with(&mut dial, needle.as_bytes());
        }
    }
}
