//! Bad input and slow clients (reliability.md test 9, after epmd_SUITE).

use std::io::Write;
use std::net::TcpStream;

use erlangen_portmap::wire::{kind, Reply, Request};
use erlangen_portmap::{Client, ErrorCode};

use crate::support::{
    closed_by_daemon, daemon, daemon_with, eventually, raw, read_reply, send, FRAME_TIMEOUT,
};

fn error_code(reply: Option<Reply>) -> Option<u32> {
    match reply {
        Some(Reply::Error { code, .. }) => Some(code),
        _ => None,
    }
}

#[test]
fn zero_one_and_two_byte_and_partial_frames_are_closed_after_the_timeout() {
    let daemon = daemon();
    for bytes in [
        &b""[..],
        b"\x20",
        b"\x20\x00",
        b"\x20\x00\x00\x00\x05\x00\x00\x00ab",
    ] {
        let mut stream = raw(daemon.local_addr());
        send(&mut stream, bytes);
        assert!(closed_by_daemon(&mut stream), "{bytes:?} must be closed");
    }
    // The daemon still serves.
    assert!(Client::connect(daemon.local_addr())
        .unwrap()
        .names()
        .unwrap()
        .is_empty());
}

#[test]
fn an_oversized_or_lying_length_closes_at_once() {
    let daemon = daemon();
    for length in [513u32, 1 << 20, u32::MAX] {
        let mut stream = raw(daemon.local_addr());
        let mut frame = kind::PORT.to_le_bytes().to_vec();
        frame.extend_from_slice(&length.to_le_bytes());
        send(&mut stream, &frame);
        assert!(closed_by_daemon(&mut stream), "length {length}");
    }
    // A string that lies about its length inside a well-sized frame: an
    // ERROR reply, then the connection closes.
    let mut stream = raw(daemon.local_addr());
    let mut body = 400u32.to_le_bytes().to_vec();
    body.extend_from_slice(b"short");
    let mut frame = kind::PORT.to_le_bytes().to_vec();
    frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
    frame.extend_from_slice(&body);
    send(&mut stream, &frame);
    assert_eq!(
        error_code(read_reply(&mut stream)),
        Some(ErrorCode::Malformed as u32)
    );
    assert!(closed_by_daemon(&mut stream));
    // An unknown type, too.
    let mut stream = raw(daemon.local_addr());
    send(&mut stream, &[0x99, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(
        error_code(read_reply(&mut stream)),
        Some(ErrorCode::Malformed as u32)
    );
    assert!(closed_by_daemon(&mut stream));
    assert!(eventually(|| daemon.stats().connections == 0));
}

#[test]
fn lying_lengths_ten_thousand_times_are_each_closed_or_refused() {
    let daemon = daemon();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..10_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut stream = TcpStream::connect(daemon.local_addr()).unwrap();
        stream
            .set_read_timeout(Some(crate::support::HANG_GUARD))
            .unwrap();
        let _hello = read_reply(&mut stream);
        // A REGISTER whose name length lies (claims more than the frame).
        let claimed = 16 + (seed % 5000) as u32;
        let mut body = claimed.to_le_bytes().to_vec();
        body.extend_from_slice(b"name");
        body.extend_from_slice(&7u32.to_le_bytes());
        let mut frame = kind::REGISTER.to_le_bytes().to_vec();
        frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
        frame.extend_from_slice(&body);
        send(&mut stream, &frame);
        let reply = read_reply(&mut stream);
        assert!(
            reply.is_none() || error_code(reply.clone()).is_some(),
            "closed or an error, got {reply:?}"
        );
    }
    assert!(eventually(|| daemon.stats().connections == 0));
    assert_eq!(daemon.stats().names, 0);
}

#[test]
fn names_with_nul_or_too_many_bytes_get_an_error_reply() {
    let daemon = daemon();
    for name in [
        "nul\0inside",
        "nul-terminated\0",
        &"x".repeat(300),
        "",
        "a/b",
    ] {
        let mut stream = raw(daemon.local_addr());
        let mut out = Vec::new();
        Request::Register {
            name: name.into(),
            port: 1,
        }
        .encode(&mut out);
        send(&mut stream, &out);
        assert_eq!(
            error_code(read_reply(&mut stream)),
            Some(ErrorCode::InvalidName as u32),
            "{name:?}"
        );
    }
    // Unicode names up to the limit are fine.
    let long = "é".repeat(127);
    let _ok = Client::connect(daemon.local_addr())
        .unwrap()
        .register(&long, 5)
        .unwrap();
    let _uni = Client::connect(daemon.local_addr())
        .unwrap()
        .register("ノード", 6)
        .unwrap();
    assert_eq!(daemon.stats().names, 2);
}

#[test]
fn a_slow_writer_inside_the_timeout_is_served() {
    let daemon = daemon();
    let _node = Client::connect(daemon.local_addr())
        .unwrap()
        .register("slow", 77)
        .unwrap();
    let mut stream = raw(daemon.local_addr());
    let mut out = Vec::new();
    Request::Port {
        name: "slow".into(),
    }
    .encode(&mut out);
    // One byte at a time, the whole frame well inside the frame timeout.
    let pause = FRAME_TIMEOUT / (out.len() as u32 * 8);
    for byte in out {
        stream.write_all(&[byte]).unwrap();
        std::thread::sleep(pause);
    }
    assert_eq!(read_reply(&mut stream), Some(Reply::Port { port: 77 }));
}

#[test]
fn a_writer_slower_than_the_timeout_is_closed() {
    let daemon = daemon();
    let mut stream = raw(daemon.local_addr());
    let mut out = Vec::new();
    Request::Port {
        name: "slow".into(),
    }
    .encode(&mut out);
    send(&mut stream, &out[..3]);
    std::thread::sleep(FRAME_TIMEOUT * 3);
    send(&mut stream, &out[3..]);
    assert!(closed_by_daemon(&mut stream));
}

#[test]
fn a_silent_client_is_dropped() {
    let daemon = daemon();
    let mut stream = raw(daemon.local_addr());
    assert!(closed_by_daemon(&mut stream));
    assert!(eventually(|| daemon.stats().connections == 0));
}

#[test]
fn filling_to_the_bound_and_emptying_ten_times_leaks_nothing() {
    const BOUND: usize = 32;
    let daemon = daemon_with(|c| c.names_max = BOUND);
    for round in 0..10 {
        let mut held = Vec::new();
        for i in 0..BOUND {
            let registration = Client::connect(daemon.local_addr())
                .unwrap()
                .register(&format!("n{round}-{i}"), i as u16)
                .unwrap();
            held.push(registration);
        }
        let refused = Client::connect(daemon.local_addr())
            .unwrap()
            .register("one-too-many", 1);
        assert_eq!(refused.unwrap_err().code(), Some(ErrorCode::Full));
        assert_eq!(daemon.stats().names, BOUND);
        drop(held);
        assert!(eventually(
            || daemon.stats().names == 0 && daemon.stats().connections == 0
        ));
    }
}

#[test]
fn connections_past_the_bound_are_refused_with_a_clear_error() {
    let daemon = daemon_with(|c| c.connections_max = 4);
    let held: Vec<TcpStream> = (0..4).map(|_| raw(daemon.local_addr())).collect();
    let mut extra = TcpStream::connect(daemon.local_addr()).unwrap();
    extra
        .set_read_timeout(Some(crate::support::HANG_GUARD))
        .unwrap();
    assert_eq!(
        error_code(read_reply(&mut extra)),
        Some(ErrorCode::Busy as u32)
    );
    drop(held);
    assert!(eventually(|| daemon.stats().connections == 0));
    assert!(Client::connect(daemon.local_addr()).is_ok());
}
