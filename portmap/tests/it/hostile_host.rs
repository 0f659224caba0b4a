//! A hostile host (the port-mapper issue): descriptor exhaustion, huge
//! durations, slot floods from other addresses, log floods.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use erlangen_portmap::wire::{Reply, Request};
use erlangen_portmap::{Client, ErrorCode};
use socket2::{Domain, Socket, Type};

use crate::support::{daemon_with, read_reply, HANG_GUARD};

const BINARY: &str = env!("CARGO_BIN_EXE_erlangen-port-mapper");

/// A connection to `server` from `source` (a loopback-range address).
fn from(source: &str, server: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.bind(&format!("{source}:0").parse::<SocketAddr>().unwrap().into())?;
    socket.connect(&server.into())?;
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(HANG_GUARD))?;
    Ok(stream)
}

/// The daemon binary with a descriptor limit of `limit`, on an ephemeral
/// port; returns it and its address.
fn daemon_process(limit: u64, extra: &[&str]) -> (std::process::Child, SocketAddr) {
    let mut command = Command::new(BINARY);
    command
        .args(["--listen", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe; nothing else runs in the
    // child between fork and exec.
    unsafe {
        command.pre_exec(move || {
            let rl = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &rl) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().expect("the daemon starts");
    let stdout = child.stdout.take().unwrap();
    let line = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find(|line| line.contains("listening on"))
        .expect("the daemon says where it listens");
    let addr = line.rsplit(' ').next().unwrap().parse().unwrap();
    (child, addr)
}

fn stop(mut child: std::process::Child) -> String {
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let _ = child.wait();
    stderr
}

#[test]
fn after_a_flood_past_the_descriptor_limit_a_new_client_is_served_with_no_other_connection() {
    let (child, addr) = daemon_process(200, &["--max-connections", "1000"]);
    // Hold many more connections than the daemon has descriptors.
    let flood: Vec<TcpStream> = (0..400)
        .filter_map(|_| TcpStream::connect(addr).ok())
        .collect();
    assert!(flood.len() > 200, "the kernel accepted the connects");
    drop(flood);
    // A single new client, nothing after it: it is answered.
    let mut client = TcpStream::connect(addr).unwrap();
    client.set_read_timeout(Some(HANG_GUARD)).unwrap();
    let reply = read_reply(&mut client).expect("an answer");
    assert!(
        matches!(reply, Reply::Hello { .. } | Reply::Error { .. }),
        "{reply:?}"
    );
    // And once the flood's slots are free, a greeting.
    let mut served = false;
    for _ in 0..100 {
        let mut client = TcpStream::connect(addr).unwrap();
        client.set_read_timeout(Some(HANG_GUARD)).unwrap();
        if matches!(read_reply(&mut client), Some(Reply::Hello { .. })) {
            served = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(served, "a new client gets a greeting");
    stop(child);
}

#[test]
fn a_huge_duration_is_refused_at_start_with_a_clear_error() {
    let output = Command::new(BINARY)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--idle-timeout-s",
            "18446744073709551615",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("erlangen-port-mapper:"))
        .collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("idle timeout"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_flood_from_another_address_leaves_room_for_local_registration_and_authenticated_lookups() {
    let daemon = daemon_with(|c| {
        c.listen = "0.0.0.0:0".parse().unwrap();
        c.cookie = Some(b"sesame".to_vec());
    });
    let server: SocketAddr = format!("127.0.0.1:{}", daemon.local_addr().port())
        .parse()
        .unwrap();
    // 1,100 unauthenticated connections from 127.0.0.2, held open, each
    // refreshing itself with a request that needs no proof.
    let mut flood: Vec<TcpStream> = (0..1100)
        .filter_map(|_| from("127.0.0.2", server).ok())
        .collect();
    let mut unregister = Vec::new();
    Request::Unregister.encode(&mut unregister);
    for round in 0..5 {
        for stream in flood.iter_mut() {
            let _ = stream.write_all(&unregister);
        }
        let name = format!("local-{round}");
        let registration = Client::connect(server)
            .expect("a local client gets a slot")
            .register(&name, 4000 + round)
            .expect("a local registration succeeds");
        let mut friend = Client::from_stream(from("127.0.0.3", server).unwrap())
            .expect("an authenticated client gets a slot");
        friend.authenticate(b"sesame").unwrap();
        assert_eq!(friend.lookup(&name).unwrap(), 4000 + round);
        drop(registration);
    }
    // Most of the flood was refused a slot at once.
    let refused = flood
        .iter_mut()
        .filter_map(read_reply)
        .filter(
            |reply| matches!(reply, Reply::Error { code, .. } if *code == ErrorCode::Busy as u32),
        )
        .count();
    assert!(refused >= 1100 - 64, "{refused} refused");
}

#[test]
fn a_flood_of_refused_connections_writes_a_bounded_log() {
    let (child, addr) = daemon_process(4096, &["--max-connections", "16"]);
    let held: Vec<TcpStream> = (0..16)
        .filter_map(|_| TcpStream::connect(addr).ok())
        .collect();
    for _ in 0..10_000 {
        if let Ok(mut stream) = TcpStream::connect(addr) {
            stream.set_read_timeout(Some(HANG_GUARD)).unwrap();
            let _ = read_reply(&mut stream);
        }
    }
    drop(held);
    let stderr = stop(child);
    let lines = stderr.lines().count();
    // One line per kind per second, plus start and stop: far below one
    // line per refused connection.
    assert!(
        lines < 200,
        "{lines} log lines for 10,000 refusals:\n{stderr}"
    );
}

#[test]
fn names_that_read_alike_cannot_register_side_by_side() {
    let daemon = daemon_with(|_| {});
    let register = |name: &str| {
        Client::connect(daemon.local_addr())
            .unwrap()
            .register(name, 7)
    };
    let _alpha = register("alpha").unwrap();
    let _cafe = register("caf\u{e9}").unwrap();
    for (look_alike, why) in [
        ("cafe\u{301}", "café decomposed"),
        ("\u{430}lpha", "a Cyrillic а"),
        ("alp\u{200b}ha", "a zero-width space"),
        ("\u{ff41}lpha", "a fullwidth a"),
        ("\u{202e}ahpla", "a right-to-left override"),
    ] {
        // Straight to the daemon (the client checks names too).
        let mut stream = crate::support::raw(daemon.local_addr());
        let mut out = Vec::new();
        Request::Register {
            name: look_alike.to_owned(),
            port: 8,
        }
        .encode(&mut out);
        stream.write_all(&out).unwrap();
        let reply = read_reply(&mut stream);
        assert!(
            matches!(
                reply,
                Some(Reply::Error { code, .. })
                    if code == ErrorCode::NameTaken as u32 || code == ErrorCode::InvalidName as u32
            ),
            "{why}: {reply:?}"
        );
    }
    assert_eq!(daemon.stats().names, 2);
}
