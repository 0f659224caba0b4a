//! B8: distribution over loopback, each node its own OS process. The case
//! starts an embedded port mapper and a peer node (this binary again, as
//! `dist_node`), then measures from a node of its own:
//!
//! * `dist_rtt`: round trips to an incrementer on the peer;
//! * `dist_rtt_tls`: the same with both nodes on TLS (certificates made by
//!   the case, one CA);
//! * `dist_oneway_1`, `dist_oneway_8`: 64-byte messages from 1 or 8 senders
//!   to a counter on the peer, until it has them all;
//! * `dist_call` (B12 across nodes): `Ctx::call` to a server on the peer,
//!   on an empty mailbox and behind 500,000 unrelated messages.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use erlangen::net::kernel::Increment;
use erlangen::net::{Functions, Kernel, Node, NodeName, Types, WirePid};
use erlangen::portmap::{Daemon, DaemonConfig};
use erlangen::{Ctx, Runtime, SpawnOptions};

pub(crate) const COOKIE: &str = "erlangen bench";
pub(crate) const PORT_MAPPER_ENV: &str = "ERLANGEN_BENCH_PORT_MAPPER";
/// Set for a peer that runs TLS: the directory of `make_certificates`.
const TLS_DIR_ENV: &str = "ERLANGEN_BENCH_TLS_DIR";

/// A CA (`ca.pem`) and a certificate and key for `localhost` for each of
/// the nodes `a` and `b`, in `dir`.
fn make_certificates(dir: &std::path::Path) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    std::fs::create_dir_all(dir).expect("a directory for certificates");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca =
        CertifiedIssuer::self_signed(params, KeyPair::generate().expect("a key")).expect("a CA");
    std::fs::write(dir.join("ca.pem"), ca.pem()).expect("write ca.pem");
    for node in ["a", "b"] {
        let key = KeyPair::generate().expect("a key");
        let cert = CertificateParams::new(vec!["localhost".to_owned()])
            .expect("parameters")
            .signed_by(&key, &ca)
            .expect("a certificate");
        std::fs::write(dir.join(format!("{node}.pem")), cert.pem()).expect("write");
        std::fs::write(dir.join(format!("{node}.key")), key.serialize_pem()).expect("write");
    }
}

/// TLS for node `node` (`a` or `b`) from the certificates in `dir`.
fn tls_options(dir: &std::path::Path, node: &str) -> erlangen::net::TlsOptions {
    erlangen::net::TlsOptions::new(
        dir.join("ca.pem"),
        dir.join(format!("{node}.pem")),
        dir.join(format!("{node}.key")),
    )
}

/// The count request: receive `n` messages, then tell `reply_to` how many.
type Count = (u64, WirePid);

pub(crate) fn types() -> Types {
    Kernel::standard()
        .into_parts()
        .0
        .register::<Count>("bench/count")
        .register_call::<u64>("bench/call")
}

pub(crate) fn functions() -> Functions {
    Kernel::standard()
        .into_parts()
        .1
        // Answers every `Call<u64>` n with n + 1.
        .register("call_server", |ctx: &mut Ctx, (): ()| loop {
            let call = ctx
                .receive()
                .downcast::<erlangen::Call<u64>>()
                .expect("a call");
            ctx.reply(&call.from, call.request + 1);
        })
        .register("count", |ctx: &mut Ctx, (n, reply_to): Count| {
            for _ in 0..n {
                ctx.receive();
            }
            ctx.send(&reply_to.0, n);
        })
}

/// Workers per node: `ERLANGEN_BENCH_NODE_WORKERS` (the peer inherits
/// it), else 2 (one per core of the 2-core machines the suite is made for).
pub(crate) fn workers() -> usize {
    std::env::var("ERLANGEN_BENCH_NODE_WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(2)
}

/// The peer: a node that hosts the standard kernel and `count`.
pub(crate) fn dist_node(_divisor: u64) {
    // SAFETY: prctl(PR_SET_PDEATHSIG) only sets a flag of this process.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
    let mapper = std::env::var(PORT_MAPPER_ENV)
        .expect("the driver names the port mapper")
        .parse()
        .expect("an address");
    let rt = Runtime::builder()
        .workers(workers())
        .build()
        .expect("runtime");
    let mut builder = Node::builder(&format!("bench-b-{}", std::process::id()))
        .cookie(COOKIE.as_bytes())
        .port_mapper(mapper)
        .types(types())
        .functions(functions());
    if let Some(dir) = std::env::var_os(TLS_DIR_ENV) {
        builder = builder.tls(tls_options(std::path::Path::new(&dir), "b"));
    }
    let node = builder.start(&rt).expect("the peer node starts");
    println!("ready {}", node.name());
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}

/// Runs `measure` on a node of its own, with a peer node in a child process.
fn with_peer(measure: impl FnOnce(&Runtime, Arc<Node>, NodeName)) {
    with_peer_over(None, measure);
}

/// `with_peer`, both nodes on TLS with the certificates in `tls` if given.
fn with_peer_over(
    tls: Option<&std::path::Path>,
    measure: impl FnOnce(&Runtime, Arc<Node>, NodeName),
) {
    let mapper = Daemon::start(DaemonConfig {
        listen: "127.0.0.1:0".parse().expect("an address"),
        ..DaemonConfig::default()
    })
    .expect("a port mapper");
    let mut command = Command::new(std::env::current_exe().expect("own path"));
    command
        .env("ERLANGEN_BENCH_CASE", "dist_node")
        .env(PORT_MAPPER_ENV, mapper.local_addr().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    if let Some(dir) = tls {
        command.env(TLS_DIR_ENV, dir);
    }
    let mut child: Child = command.spawn().expect("the peer starts");
    let stdout = child.stdout.take().expect("piped");
    let peer: NodeName = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| line.strip_prefix("ready ").map(str::to_owned))
        .expect("the peer is ready")
        .parse()
        .expect("a node name");
    let rt = Runtime::builder()
        .workers(workers())
        .build()
        .expect("runtime");
    let mut builder = Node::builder(&format!("bench-a-{}", std::process::id()))
        .cookie(COOKIE.as_bytes())
        .port_mapper(mapper.local_addr())
        .types(types())
        .functions(functions());
    if let Some(dir) = tls {
        builder = builder.tls(tls_options(dir, "a"));
    }
    let node = builder.start(&rt).expect("the node starts");
    measure(&rt, Arc::new(node), peer);
    let _ = child.kill();
    let _ = child.wait();
}

pub(crate) fn dist_call(divisor: u64) {
    let calls = 2_000 / divisor;
    let noise = 500_000 / divisor;
    with_peer(|rt, node, peer| {
        let (empty, loaded) = rt
            .run(move |ctx| {
                let server = node
                    .spawn(ctx, &peer, "call_server", (), SpawnOptions::new())
                    .expect("remote spawn");
                let me = ctx.pid();
                // The caller holds the noise: its mailbox is made for it.
                let caller = SpawnOptions::new().mailbox_len(1 << 20);
                ctx.spawn_with(caller, move |ctx| {
                    let timed = |ctx: &mut Ctx| {
                        ctx.call(&server, 0u64, Duration::from_secs(60))
                            .expect("a warm-up reply");
                        let started = Instant::now();
                        for n in 0..calls {
                            let answer = ctx
                                .call(&server, n, Duration::from_secs(60))
                                .expect("a reply")
                                .downcast::<u64>()
                                .expect("a number");
                            assert_eq!(answer, n + 1);
                        }
                        started.elapsed()
                    };
                    let empty = timed(ctx);
                    let own = ctx.pid();
                    for n in 0..noise {
                        ctx.send(&own, n as u32);
                    }
                    let loaded = timed(ctx);
                    assert_eq!(ctx.flush().len() as u64, noise, "the noise is untouched");
                    ctx.send(&me, (empty, loaded));
                })
                .expect("the caller starts");
                ctx.receive_timeout(Duration::from_secs(300))
                    .expect("the caller reports")
                    .downcast::<(Duration, Duration)>()
                    .expect("two durations")
            })
            .expect("the driver runs");
        let per = |d: Duration| d.as_secs_f64() * 1e9 / calls as f64;
        println!("B12 call remote empty per_call_ns={:.1}", per(empty));
        println!(
            "B12 call remote loaded noise={noise} per_call_ns={:.1}",
            per(loaded)
        );
    });
}

/// Round trips to an incrementer on `peer`: the total time and each trip's.
fn round_trips(
    rt: &Runtime,
    node: Arc<Node>,
    peer: NodeName,
    rounds: u64,
) -> (Duration, Vec<Duration>) {
    rt.run(move |ctx| {
        let far = node
            .spawn(ctx, &peer, "incrementer", (), SpawnOptions::new())
            .expect("remote spawn");
        let me = WirePid(ctx.pid());
        // Warm the connection up.
        ctx.send(
            &far,
            Increment {
                reply_to: me.clone(),
                n: 0,
            },
        );
        ctx.receive();
        let mut times = Vec::with_capacity(rounds as usize);
        let started = Instant::now();
        for n in 0..rounds {
            let sent = Instant::now();
            ctx.send(
                &far,
                Increment {
                    reply_to: me.clone(),
                    n,
                },
            );
            let answer = ctx.receive().downcast::<u64>().expect("a number");
            times.push(sent.elapsed());
            assert_eq!(answer, n + 1);
        }
        (started.elapsed(), times)
    })
    .expect("the driver runs")
}

/// The `p` quantile of sorted `times`, in µs.
fn quantile_us(times: &[Duration], p: f64) -> f64 {
    let at = ((p * times.len() as f64).round() as usize).clamp(1, times.len()) - 1;
    times[at].as_secs_f64() * 1e6
}

pub(crate) fn dist_rtt(divisor: u64) {
    let rounds = 20_000 / divisor;
    with_peer(|rt, node, peer| {
        let (elapsed, mut times) = round_trips(rt, node, peer, rounds);
        times.sort();
        let raw_blocking = raw_tcp_rtt(rounds, false);
        let raw_busy = raw_tcp_rtt(rounds, true);
        println!(
            "B8 dist rtt rtt_us={:.2} p50_us={:.2} p99_us={:.2} p999_us={:.2} raw_blocking_rtt_us={:.2} raw_busy_rtt_us={:.2}",
            elapsed.as_secs_f64() * 1e6 / rounds as f64,
            quantile_us(&times, 0.5),
            quantile_us(&times, 0.99),
            quantile_us(&times, 0.999),
            raw_blocking,
            raw_busy
        );
    });
}

pub(crate) fn dist_rtt_tls(divisor: u64) {
    let rounds = 20_000 / divisor;
    let dir = std::env::temp_dir().join(format!("erlangen-bench-tls-{}", std::process::id()));
    make_certificates(&dir);
    with_peer_over(Some(&dir), |rt, node, peer| {
        let (elapsed, mut times) = round_trips(rt, node, peer, rounds);
        times.sort();
        println!(
            "B8 dist rtt tls rtt_us={:.2} p50_us={:.2} p99_us={:.2}",
            elapsed.as_secs_f64() * 1e6 / rounds as f64,
            quantile_us(&times, 0.5),
            quantile_us(&times, 0.99),
        );
    });
    let _ = std::fs::remove_dir_all(&dir);
}

fn dist_oneway(divisor: u64, senders: u64) {
    let total = 400_000 / divisor / senders * senders;
    with_peer(|rt, node, peer| {
        let elapsed = rt
            .run(move |ctx| {
                let counter = node
                    .spawn(
                        ctx,
                        &peer,
                        "count",
                        (total, WirePid(ctx.pid())),
                        SpawnOptions::new().mailbox_len(1 << 20),
                    )
                    .expect("remote spawn");
                let started = Instant::now();
                for _ in 0..senders {
                    let counter = counter.clone();
                    ctx.spawn(move |ctx| {
                        let payload = vec![7u8; 64];
                        for _ in 0..total / senders {
                            ctx.send(&counter, payload.clone());
                        }
                    });
                }
                let got = ctx
                    .receive_timeout(Duration::from_secs(120))
                    .expect("the counter answers")
                    .downcast::<u64>()
                    .expect("a count");
                assert_eq!(got, total);
                started.elapsed()
            })
            .expect("the driver runs");
        println!(
            "B8 dist oneway {senders} per_msg_ns={:.1} msgs_per_s={:.0}",
            elapsed.as_nanos() as f64 / total as f64,
            total as f64 / elapsed.as_secs_f64()
        );
    });
}

pub(crate) fn dist_oneway_1(divisor: u64) {
    dist_oneway(divisor, 1);
}

pub(crate) fn dist_oneway_8(divisor: u64) {
    dist_oneway(divisor, 8);
}

/// Bytes `node` has written to its peers.
fn bytes_out(node: &Node) -> u64 {
    node.peers().iter().map(|peer| peer.bytes_out).sum()
}

/// Bulk: `count` messages of `size` bytes to a counter on the peer, then
/// the same bytes over a raw loopback TCP connection in this process (the
/// floor), both as MB/s.
fn dist_bulk(divisor: u64, size: usize, count: u64, label: &str) {
    let count = (count / divisor).max(2);
    with_peer(|rt, node, peer| {
        let elapsed = rt
            .run(move |ctx| {
                let counter = node
                    .spawn(
                        ctx,
                        &peer,
                        "count",
                        (count, WirePid(ctx.pid())),
                        SpawnOptions::new().mailbox_len(1 << 12),
                    )
                    .expect("remote spawn");
                let payload = vec![7u8; size];
                let started = Instant::now();
                for _ in 0..count {
                    ctx.send(&counter, payload.clone());
                }
                let got = ctx
                    .receive_timeout(Duration::from_secs(240))
                    .expect("the counter answers")
                    .downcast::<u64>()
                    .expect("a count");
                assert_eq!(got, count);
                started.elapsed()
            })
            .expect("the driver runs");
        let bytes = size as f64 * count as f64;
        let raw = raw_tcp_copy(size, count);
        println!(
            "B8 dist bulk {label} messages={count} mb_s={:.1} raw_tcp_mb_s={:.1}",
            bytes / elapsed.as_secs_f64() / 1e6,
            bytes / raw.as_secs_f64() / 1e6
        );
    });
}

/// The floor of a round trip over loopback TCP: 8-byte pings between two
/// threads of this process, `rounds` of them, in µs per round trip; with
/// `busy`, both sides poll their sockets without sleeping (the floor for a
/// reader that is awake), else they block in `read` (a reader's wake on
/// each hop).
fn raw_tcp_rtt(rounds: u64, busy: bool) -> f64 {
    use std::io::{ErrorKind, Read, Write};
    fn read_exact(stream: &mut std::net::TcpStream, buffer: &mut [u8]) {
        let mut got = 0;
        while got < buffer.len() {
            match stream.read(&mut buffer[got..]) {
                Ok(0) => panic!("the peer closed"),
                Ok(n) => got += n,
                Err(error) if error.kind() == ErrorKind::WouldBlock => std::hint::spin_loop(),
                Err(error) => panic!("a read failed: {error}"),
            }
        }
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a listener");
    let addr = listener.local_addr().expect("an address");
    let echo = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("a connection");
        stream.set_nodelay(true).expect("nodelay");
        stream.set_nonblocking(busy).expect("the mode");
        let mut buffer = [0u8; 8];
        for _ in 0..rounds {
            read_exact(&mut stream, &mut buffer);
            stream.write_all(&buffer).expect("a write");
        }
    });
    let mut stream = std::net::TcpStream::connect(addr).expect("a connection");
    stream.set_nodelay(true).expect("nodelay");
    stream.set_nonblocking(busy).expect("the mode");
    let mut buffer = [0u8; 8];
    let started = Instant::now();
    for n in 0..rounds {
        stream.write_all(&n.to_le_bytes()).expect("a write");
        read_exact(&mut stream, &mut buffer);
    }
    let elapsed = started.elapsed();
    echo.join().expect("the echo");
    elapsed.as_secs_f64() * 1e6 / rounds as f64
}

/// `count` writes of `size` bytes from one thread to another over
/// loopback TCP, read in 256 KiB reads: the time until all arrived.
fn raw_tcp_copy(size: usize, count: u64) -> Duration {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a listener");
    let addr = listener.local_addr().expect("an address");
    let total = size as u64 * count;
    let reader = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("a connection");
        let mut buffer = vec![0u8; 256 * 1024];
        let mut got = 0u64;
        while got < total {
            let n = stream.read(&mut buffer).expect("a read");
            assert!(n > 0, "the writer closed early");
            got += n as u64;
        }
    });
    let mut stream = std::net::TcpStream::connect(addr).expect("a connection");
    stream.set_nodelay(true).expect("nodelay");
    let payload = vec![7u8; size];
    let started = Instant::now();
    for _ in 0..count {
        stream.write_all(&payload).expect("a write");
    }
    reader.join().expect("the reader");
    started.elapsed()
}

pub(crate) fn dist_bulk_1m(divisor: u64) {
    dist_bulk(divisor, 1 << 20, 256, "1MiB");
}

pub(crate) fn dist_bulk_64m(divisor: u64) {
    dist_bulk(divisor, 64 << 20, 8, "64MiB");
}

/// Head-of-line: round trips of a small ping, first on an idle connection,
/// then while another pair of agents on the same two nodes streams 64 MiB
/// messages; the percentiles of both (each phase at most 500 round trips
/// or 3 s).
pub(crate) fn dist_hol(divisor: u64) {
    let rounds = 500 / divisor;
    with_peer(|rt, node, peer| {
        let (idle, busy, streamed) = rt
            .run(move |ctx| {
                let far = node
                    .spawn(ctx, &peer, "incrementer", (), SpawnOptions::new())
                    .expect("remote spawn");
                let sink = node
                    .spawn(
                        ctx,
                        &peer,
                        "count",
                        (u64::MAX, WirePid(ctx.pid())),
                        SpawnOptions::new().mailbox_len(4),
                    )
                    .expect("remote spawn");
                // The pinger runs on worker 0 and the streamer on the last
                // worker: the streamer copies and encodes 64 MiB per message,
                // which the scheduler charges as one step (an Erlang process
                // is charged by the size it sends), so on a shared worker the
                // pinger would wait for it, which is not what this measures.
                let root = ctx.pid();
                let streaming = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
                let go_on = streaming.clone();
                let streamer_node = node.clone();
                let pinger = SpawnOptions::new().worker(0);
                ctx.spawn_with(pinger, move |ctx| {
                    let me = WirePid(ctx.pid());
                    // At most `rounds` round trips, for at most 3 s (behind a
                    // stream, one can take tens of milliseconds).
                    let ping = |ctx: &mut Ctx| {
                        let mut times = Vec::with_capacity(rounds as usize);
                        let started = Instant::now();
                        for n in 0..rounds {
                            if started.elapsed() > Duration::from_secs(3) {
                                break;
                            }
                            let sent = Instant::now();
                            ctx.send(
                                &far,
                                Increment {
                                    reply_to: me.clone(),
                                    n,
                                },
                            );
                            let answer = ctx.receive().downcast::<u64>().expect("a number");
                            times.push(sent.elapsed());
                            assert_eq!(answer, n + 1);
                        }
                        times
                    };
                    let idle = ping(ctx);
                    let apart = SpawnOptions::new().worker(workers() - 1);
                    ctx.spawn_with(apart, move |ctx| {
                        let payload = vec![7u8; 64 << 20];
                        while go_on.load(std::sync::atomic::Ordering::Relaxed) {
                            ctx.send(&sink, payload.clone());
                            ctx.yield_now();
                        }
                    })
                    .expect("the streamer starts");
                    ctx.sleep(Duration::from_millis(100)); // the stream is under way
                    let before = bytes_out(&streamer_node);
                    let started = Instant::now();
                    let busy = ping(ctx);
                    let streamed = (bytes_out(&streamer_node) - before) as f64
                        / started.elapsed().as_secs_f64();
                    streaming.store(false, std::sync::atomic::Ordering::Relaxed);
                    ctx.send(&root, (idle, busy, streamed));
                })
                .expect("the pinger starts");
                ctx.receive_timeout(Duration::from_secs(120))
                    .expect("the pinger reports")
                    .downcast::<(Vec<Duration>, Vec<Duration>, f64)>()
                    .expect("its figures")
            })
            .expect("the driver runs");
        let pct = |times: &[Duration], p: f64| {
            let mut sorted = times.to_vec();
            sorted.sort();
            let at = ((p * sorted.len() as f64).round() as usize).clamp(1, sorted.len()) - 1;
            sorted[at].as_secs_f64() * 1e6
        };
        println!(
            "B8 dist hol idle_p50_us={:.1} idle_p99_us={:.1} busy_p50_us={:.1} busy_p99_us={:.1} p99_ratio={:.2} streamed_mb_s={:.0}",
            pct(&idle, 0.5),
            pct(&idle, 0.99),
            pct(&busy, 0.5),
            pct(&busy, 0.99),
            pct(&busy, 0.99) / pct(&idle, 0.99),
            streamed / 1e6
        );
    });
}
