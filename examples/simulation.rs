//! cargo run --release --example simulation
//!
//! Finds a race by seed, then replays it. Two simulated nodes run in one
//! deterministic simulation (every agent on this thread, the next one to
//! run drawn from a seed, virtual time, an in-memory network with drawn
//! delays). The planted bug: a client monitors a server on the other node,
//! sends it a request, does some work, then takes the next message as the
//! answer. The server answers, works a little, and exits. A receive takes
//! exit notifications ahead of messages, so when the server's `Down` has
//! arrived by the time the client looks, the client takes it for the
//! answer. Most interleavings never show it.
//!
//! The search runs seeds until one fails and prints it with the command
//! that replays it; `ERLANGEN_SEED=<seed>` replays that seed with every
//! event (spawn, run, send, network delivery, exit) on stderr, and the
//! replay fails the same way, with the same trace hash, every time.

use std::time::Duration;

use erlangen::net::simulation::{Faults, SimNet};
use erlangen::net::Types;
use erlangen::Pid;

/// The request: where to answer.
#[derive(serde::Serialize, serde::Deserialize, Debug)]
struct Request {
    #[serde(with = "erlangen::net::pid")]
    reply_to: Pid,
}

/// One run of the planted race under `seed`: whether the client got its
/// answer, and the run's trace hash.
fn run(seed: u64, trace: bool) -> (bool, u64) {
    let faults = Faults::default().delay(Duration::from_micros(20), Duration::from_micros(200));
    let mut net = SimNet::with_faults(seed, faults);
    net.sim().set_trace(trace);
    let types = || Types::new().register::<Request>("example/request");
    let a = net.add_node("a", types()).expect("node a");
    let b = net.add_node("b", types()).expect("node b");
    let server = net
        .sim()
        .spawn(b, |ctx| {
            let request = ctx.receive().downcast::<Request>().expect("a request");
            ctx.send(&request.reply_to, 42u64);
            ctx.sleep(Duration::from_micros(400)); // some work, then exit
        })
        .expect("a node that is up");
    let server = net.pid_on(a, &server).expect("both nodes are up");
    let answered = net
        .sim()
        .block_on(a, move |ctx| {
            ctx.monitor(&server).expect("a monitor");
            ctx.send(
                &server,
                Request {
                    reply_to: ctx.pid(),
                },
            );
            ctx.sleep(Duration::from_micros(500)); // some work of its own
                                                   // The bug: the next message is taken for the answer.
            ctx.receive().downcast::<u64>().is_ok()
        })
        .expect("the client returns");
    (answered, net.sim().trace_hash())
}

fn main() {
    if let Some(seed) = std::env::var("ERLANGEN_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        let (answered, hash) = run(seed, true);
        println!(
            "seed {seed}: the client {} (trace hash {hash:016x})",
            if answered {
                "got its answer"
            } else {
                "took the server's Down for its answer"
            }
        );
        return;
    }
    let started = std::time::Instant::now();
    let Some(seed) = (0..100_000u64).find(|&seed| !run(seed, false).0) else {
        println!("no seed in 100,000 lost the race");
        return;
    };
    println!(
        "search: seeds 0..={seed} run in {:.2?}; seed {seed} loses the race",
        started.elapsed()
    );
    let hashes: Vec<u64> = (0..3)
        .map(|_| run(seed, false))
        .map(|(answered, hash)| {
            assert!(!answered, "a replay of seed {seed} fails the same way");
            hash
        })
        .collect();
    assert!(hashes.windows(2).all(|w| w[0] == w[1]));
    println!(
        "replayed 3 times: it fails every time, trace hash {:016x} each time",
        hashes[0]
    );
    println!(
        "see it event by event:\n  ERLANGEN_SEED={seed} cargo run --release --example simulation"
    );
}
