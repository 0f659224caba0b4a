//! Bad input from the network: random and malformed frames, lying length
//! prefixes, a replayed handshake. Each is refused by closing only its own
//! connection; the node goes on serving its peers.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use erlangen_net::frame;
use erlangen_net::handshake::{self, Role};
use erlangen_net::wire::{
    self, Auth, Hello, MessageView, Packet, WireMessage, KIND_AUTH, KIND_HELLO, KIND_PACKET,
};
use erlangen_net::NodeName;

use crate::support::{node, port_mapper, unique, Ping, COOKIE, HANG_GUARD};

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// Valid encodings to mutate.
fn seeds() -> Vec<Vec<u8>> {
    let hello = Hello {
        version: 1,
        node: "localhost/seed".parse().unwrap(),
        incarnation: 7,
        challenge: [3; 32],
        types: vec![("u64".into(), 1), ("String".into(), 2)],
    };
    let packet = Packet::Named {
        name: "echo".into(),
        message: WireMessage {
            type_name: "u64".into(),
            body: vec![42],
        },
    };
    let message = WireMessage {
        type_name: "String".into(),
        body: wire::encode(&"hello".to_owned()).unwrap(),
    };
    vec![
        wire::encode(&hello).unwrap(),
        wire::encode(&Auth { proof: [9; 32] }).unwrap(),
        wire::encode(&packet).unwrap(),
        wire::encode(&Packet::Message {
            to: 300,
            message: message.clone(),
        })
        .unwrap(),
        wire::encode(&Packet::Reply {
            to: 7,
            tag: 1 << 40,
            message,
        })
        .unwrap(),
    ]
}

/// `rounds` inputs: every other one random bytes, the rest a seed with one
/// bit flipped, cut short, or with bytes added.
fn inputs(rounds: u32) -> impl Iterator<Item = Vec<u8>> {
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let seeds = seeds();
    (0..rounds).map(move |round| {
        if round % 2 == 0 {
            let len = (rng.next() % 96) as usize;
            rng.bytes(len)
        } else {
            let mut input = seeds[(round as usize / 2) % seeds.len()].clone();
            match rng.next() % 3 {
                0 => {
                    let at = (rng.next() as usize) % input.len();
                    input[at] ^= 1 << (rng.next() % 8);
                }
                1 => input.truncate((rng.next() as usize) % input.len()),
                _ => {
                    let extra = 1 + (rng.next() % 8) as usize;
                    input.extend(rng.bytes(extra));
                }
            }
            input
        }
    })
}

#[test]
fn a_million_random_and_mutated_inputs_through_the_decoders_never_panic() {
    for input in inputs(1_000_000) {
        let _ = frame::parse(&input, 1 << 20);
        let _ = wire::decode::<Packet>(&input);
        let _ = wire::decode::<Hello>(&input);
        let _ = wire::decode::<Auth>(&input);
    }
    // A lying 4 GiB prefix is refused before anything is buffered.
    let lying = [0xff, 0xff, 0xff, 0xff, KIND_PACKET];
    assert!(frame::parse(&lying, 1 << 20).is_err());
}

#[test]
fn a_message_read_in_place_is_exactly_what_the_whole_decode_accepts() {
    let (mut messages, mut refused) = (0, 0);
    for input in inputs(400_000).chain(seeds()) {
        let whole = wire::decode::<Packet>(&input);
        match (MessageView::read(&input), whole) {
            (Some(Ok(view)), Ok(packet)) => {
                assert_eq!(view.to_packet(), packet, "{input:?}");
                messages += 1;
            }
            (Some(Ok(view)), Err(error)) => panic!("{view:?} read, but: {error} ({input:?})"),
            (Some(Err(_)), Ok(packet)) => panic!("{packet:?} refused in place ({input:?})"),
            (Some(Err(_)), Err(_)) => refused += 1,
            (None, Ok(Packet::Message { .. } | Packet::Reply { .. })) => {
                panic!("a message not read in place ({input:?})")
            }
            (None, _) => {}
        }
    }
    // Both kinds were seen, so the comparison above was exercised.
    assert!(messages > 1_000, "{messages}");
    assert!(refused > 1_000, "{refused}");
}

/// Sends `bytes` on a fresh connection to `addr` and reads until the node
/// closes it (or the hang guard passes).
fn send_and_wait_for_close(addr: std::net::SocketAddr, bytes: &[u8], then_close: bool) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return false;
    };
    stream.set_read_timeout(Some(HANG_GUARD)).unwrap();
    let _ = stream.write_all(bytes);
    if then_close {
        let _ = stream.shutdown(std::net::Shutdown::Write);
    }
    let mut sink = [0u8; 4096];
    loop {
        match stream.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(error) => {
                return matches!(
                    error.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                )
            }
        }
    }
}

#[test]
fn ten_thousand_bad_connections_are_each_closed_while_a_legitimate_peer_is_served() {
    let mapper = port_mapper();
    let (rt_a, node_a) = node(&mapper, &unique("a"));
    let (rt_b, node_b) = node(&mapper, &unique("b"));
    let echo = rt_b.spawn(|ctx| loop {
        let ping = ctx.receive().downcast::<Ping>().unwrap();
        ctx.send(&ping.reply_to, ping.n + 1);
    });
    rt_b.register("echo", &echo).unwrap();
    let addr = node_b.local_addr();
    let b: NodeName = node_b.name().clone();
    let node_a = Arc::new(node_a);
    let done = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    std::thread::scope(|scope| {
        // The legitimate peer: ping-pong all along.
        let (node, done2, answered2) = (node_a.clone(), done.clone(), answered.clone());
        let rt_a = &rt_a;
        scope.spawn(move || {
            rt_a.run(move |ctx| {
                let mut n = 0;
                while !done2.load(Ordering::SeqCst) {
                    node.send_named(
                        ctx,
                        &b,
                        "echo",
                        Ping {
                            reply_to: ctx.pid(),
                            n,
                        },
                    );
                    let answer = ctx
                        .receive_timeout(HANG_GUARD)
                        .unwrap()
                        .downcast::<u64>()
                        .unwrap();
                    assert_eq!(answer, n + 1);
                    n += 1;
                    answered2.store(n, Ordering::SeqCst);
                }
            })
            .unwrap();
        });
        let mut closed = 0usize;
        let mut rng = Rng(0xbad_c0ffee);
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let mut rng = Rng(rng.next() ^ t);
                scope.spawn(move || {
                    let mut closed = 0usize;
                    for i in 0..2_500u32 {
                        let (bytes, then_close) = match i % 5 {
                            // Random garbage.
                            0 => {
                                let len = 1 + (rng.next() % 64) as usize;
                                (rng.bytes(len), true)
                            }
                            // An oversized prefix (4 GiB).
                            1 => (vec![0xff, 0xff, 0xff, 0xff, KIND_HELLO], false),
                            // A lying length: claims 1,000 bytes, sends 10.
                            2 => {
                                let mut out = Vec::new();
                                out.extend_from_slice(&1000u32.to_le_bytes());
                                out.push(KIND_HELLO);
                                out.extend(rng.bytes(10));
                                (out, true)
                            }
                            // A truncated frame.
                            3 => (vec![7, 0], true),
                            // A packet before any handshake.
                            _ => {
                                let mut out = Vec::new();
                                frame::encode(KIND_PACKET, &[1, 2, 3], &mut out);
                                (out, false)
                            }
                        };
                        if send_and_wait_for_close(addr, &bytes, then_close) {
                            closed += 1;
                        }
                    }
                    closed
                })
            })
            .collect();
        for thread in threads {
            closed += thread.join().unwrap();
        }
        let served_during = answered.load(Ordering::SeqCst);
        done.store(true, Ordering::SeqCst);
        assert_eq!(closed, 10_000, "every bad connection was closed");
        assert!(
            served_during > 0,
            "the legitimate peer was served throughout"
        );
    });
    assert!(node_b.peers().iter().any(|peer| peer.connected));
}

/// A dialer written against the wire modules: returns every byte it sent.
fn raw_dial(addr: std::net::SocketAddr, me: &str, cookie: &[u8], then: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(HANG_GUARD)).unwrap();
    let hello = Hello {
        version: 1,
        node: me.parse().unwrap(),
        incarnation: 1,
        challenge: handshake::challenge().unwrap(),
        types: erlangen_net::Types::new()
            .register::<Ping>("test/ping")
            .names()
            .into_iter()
            .map(|name| (name, 0))
            .collect(),
    };
    let mine = wire::encode(&hello).unwrap();
    let mut sent = Vec::new();
    frame::encode(KIND_HELLO, &mine, &mut sent);
    stream.write_all(&sent).unwrap();
    // Read the node's hello (and skip past it).
    let mut buffer = Vec::new();
    let theirs = loop {
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "the node answers with its hello");
        buffer.extend_from_slice(&chunk[..n]);
        if let Some((frame, _)) = frame::parse(&buffer, 1 << 16).unwrap() {
            break frame.body.to_vec();
        }
    };
    let proof = handshake::prove(cookie, Role::Dialer, &mine, &theirs);
    let mut rest = Vec::new();
    frame::encode(
        KIND_AUTH,
        &wire::encode(&Auth { proof }).unwrap(),
        &mut rest,
    );
    rest.extend_from_slice(then);
    stream.write_all(&rest).unwrap();
    sent.extend(rest);
    std::thread::sleep(Duration::from_millis(200));
    sent
}

#[test]
fn a_replayed_recording_of_a_good_handshake_is_refused() {
    let mapper = port_mapper();
    let (rt_b, node_b) = node(&mapper, &unique("b"));
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = rt_b.spawn(move |ctx| loop {
        let text = ctx.receive().downcast::<String>().unwrap();
        tx.send(text).unwrap();
    });
    rt_b.register("sink", &sink).unwrap();
    let message = |text: &str| {
        let packet = Packet::Named {
            name: "sink".into(),
            message: WireMessage {
                type_name: "String".into(),
                body: wire::encode(&text.to_owned()).unwrap(),
            },
        };
        let mut out = Vec::new();
        frame::encode(KIND_PACKET, &wire::encode(&packet).unwrap(), &mut out);
        out
    };
    let addr = node_b.local_addr();
    // A good handshake with the cookie delivers (the raw dialer is right)…
    let recording = raw_dial(addr, "localhost/recorder", COOKIE, &message("first"));
    assert_eq!(rx.recv_timeout(HANG_GUARD).unwrap(), "first");
    // …its recording, replayed on a new connection, is refused: the node's
    // new challenge is not in it.
    assert!(send_and_wait_for_close(addr, &recording, false));
    // A wrong cookie is refused as well.
    let _ = raw_dial(addr, "localhost/intruder", b"guess", &message("intruder"));
    assert!(
        rx.recv_timeout(Duration::from_millis(500)).is_err(),
        "nothing was delivered after the first"
    );
}
