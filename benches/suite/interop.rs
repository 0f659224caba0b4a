//! B8 with an Erlang node: our node and a real `erl` node, each its own OS
//! process over loopback, through the host's epmd (`epmd -daemon`, as
//! Erlang's own B8 does). The Erlang node runs `bench:serve()`
//! (benches/peers/erlang/bench.erl, compiled with `erlc` into
//! `target/peers/erlang` if compare.py has not): a ponger registered as
//! `erlangen_pong` and a counter registered as `erlangen_count`.
//!
//! * `erl_rtt`: round trips from one of our agents to the ponger, a term
//!   `{Pid, N}` each way;
//! * `erl_oneway_1`: 64-byte binaries from one of our agents to the
//!   counter, until it has them all.
//!
//! compare.py sets them beside Erlang's own B8 (erl to erl), so that the
//! table reads ours↔erl against erl↔erl.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use erlangen::net::erlang::{eetf, ErlangOptions, ErlangPids, Term};
use erlangen::net::Node;
use erlangen::portmap::{Daemon, DaemonConfig};
use erlangen::Runtime;

/// The Erlang cookie of the bench nodes (bench.erl's).
const COOKIE: &str = "erlangen_bench";

/// The compiled bench.erl: compare.py's, else compiled here.
fn beam_dir() -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let dir = format!("{root}/target/peers/erlang");
    if !std::path::Path::new(&format!("{dir}/bench.beam")).exists() {
        std::fs::create_dir_all(&dir).expect("target/peers/erlang");
        let status = Command::new("erlc")
            .args([
                "-o",
                &dir,
                &format!("{root}/benches/peers/erlang/bench.erl"),
            ])
            .status()
            .expect("erlc runs (Debian's erlang-base)");
        assert!(status.success(), "bench.erl compiles");
    }
    dir
}

/// A child process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `measure` with our node and the name of a serving Erlang node.
fn with_erl_peer(measure: impl FnOnce(&Runtime, Arc<Node>, String)) {
    let _ = Command::new("epmd").arg("-daemon").status();
    let id = std::process::id();
    let mapper = Daemon::start(DaemonConfig {
        listen: "127.0.0.1:0".parse().expect("an address"),
        ..DaemonConfig::default()
    })
    .expect("a port mapper");
    let rt = Runtime::builder()
        .workers(super::dist::workers())
        .build()
        .expect("runtime");
    let node = Node::builder(&format!("bench-r-{id}"))
        .cookie(b"erlangen bench")
        .port_mapper(mapper.local_addr())
        .erlang(ErlangOptions::new(&format!("bench_r_{id}")).cookie(COOKIE.as_bytes()))
        .start(&rt)
        .expect("our node joins Erlang's distribution");
    let ours = node.erlang_name().expect("joined").to_owned();
    let host = ours.split('@').nth(1).expect("alive@host").to_owned();
    let peer = format!("bench_e_{id}@{host}");
    let _erl = Killed(
        Command::new("erl")
            .args(["-noshell", "-sname", &format!("bench_e_{id}")])
            .args([
                "-setcookie",
                COOKIE,
                "-pa",
                &beam_dir(),
                "-run",
                "bench",
                "serve",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("erl runs (Debian's erlang-base)"),
    );
    measure(&rt, Arc::new(node), peer);
}

/// `{Pid, N}`.
fn request(me: &eetf::Pid, n: u64) -> Term {
    Term::from(eetf::Tuple::from(vec![
        Term::from(me.clone()),
        erlangen::net::erlang::term::from_integer(n as i64),
    ]))
}

/// Asks the ponger by name until it answers (the Erlang node registers
/// with epmd a moment after it starts); its pid.
fn find_ponger(ctx: &mut erlangen::Ctx, node: &Node, peer: &str, me: &eetf::Pid) -> erlangen::Pid {
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the Erlang node did not come up"
        );
        node.erlang_send_named(Some(&ctx.pid()), peer, "erlangen_pong", request(me, 0))
            .expect("a send");
        if let Ok(answer) = ctx.receive_timeout(Duration::from_millis(200)) {
            if let Ok(Term::Tuple(reply)) = answer.downcast::<Term>() {
                if let Some(Term::Pid(pong)) = reply.elements.first() {
                    return node.erlang_pid(pong).expect("an Erlang pid");
                }
            }
        }
    }
}

pub(crate) fn erl_rtt(divisor: u64) {
    let rounds = 20_000 / divisor;
    with_erl_peer(|rt, node, peer| {
        let (elapsed, mut times) = rt
            .run(move |ctx| {
                let me = node.erlang_term_pid(&ctx.pid()).expect("ours");
                let pong = find_ponger(ctx, &node, &peer, &me);
                let mut times = Vec::with_capacity(rounds as usize);
                let started = Instant::now();
                for n in 1..=rounds {
                    let sent = Instant::now();
                    ctx.send(&pong, request(&me, n));
                    let reply = ctx.receive().downcast::<Term>().expect("a term");
                    times.push(sent.elapsed());
                    let Term::Tuple(reply) = reply else {
                        panic!("not {{Pid, N}}: {reply}")
                    };
                    let got = reply
                        .elements
                        .get(1)
                        .and_then(erlangen::net::erlang::term::integer);
                    assert_eq!(got, Some(n as i64));
                }
                (started.elapsed(), times)
            })
            .expect("the driver runs");
        times.sort();
        let pct = |p: f64| {
            let at = ((p * times.len() as f64).round() as usize).clamp(1, times.len()) - 1;
            times[at].as_secs_f64() * 1e6
        };
        println!(
            "B8 erl rtt rtt_us={:.2} p50_us={:.2} p99_us={:.2} p999_us={:.2}",
            elapsed.as_secs_f64() * 1e6 / rounds as f64,
            pct(0.5),
            pct(0.99),
            pct(0.999),
        );
    });
}

pub(crate) fn erl_oneway_1(divisor: u64) {
    let total = 400_000 / divisor;
    with_erl_peer(|rt, node, peer| {
        let elapsed = rt
            .run(move |ctx| {
                let me = node.erlang_term_pid(&ctx.pid()).expect("ours");
                // The connection is up once the ponger answers.
                find_ponger(ctx, &node, &peer, &me);
                let count = Term::from(eetf::Tuple::from(vec![
                    Term::from(eetf::Atom::from("count")),
                    erlangen::net::erlang::term::from_integer(total as i64),
                    Term::from(me.clone()),
                ]));
                let started = Instant::now();
                node.erlang_send_named(Some(&ctx.pid()), &peer, "erlangen_count", count)
                    .expect("a send");
                // {counting, Counter}: then to its pid, as Erlang's B8 does
                // (and with the node's backpressure).
                let counter = match ctx.receive().downcast::<Term>() {
                    Ok(Term::Tuple(reply)) => match reply.elements.get(1) {
                        Some(Term::Pid(counter)) => {
                            node.erlang_pid(counter).expect("an Erlang pid")
                        }
                        _ => panic!("not {{counting, Pid}}"),
                    },
                    _ => panic!("not {{counting, Pid}}"),
                };
                let payload = Term::from(eetf::Binary::from(vec![7u8; 64]));
                for _ in 0..total {
                    ctx.send(&counter, payload.clone());
                }
                let done = ctx
                    .receive_timeout(Duration::from_secs(120))
                    .expect("the counter answers");
                assert!(done.downcast_ref::<Term>().is_some());
                started.elapsed()
            })
            .expect("the driver runs");
        println!(
            "B8 erl oneway 1 per_msg_ns={:.1} msgs_per_s={:.0}",
            elapsed.as_nanos() as f64 / total as f64,
            total as f64 / elapsed.as_secs_f64()
        );
    });
}
