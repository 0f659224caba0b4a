//! The simulation case (issue 26): how fast a deterministic simulation
//! runs a 3-node, 10,000-agent workload, in simulated seconds per wall
//! second.

use std::time::{Duration, Instant};

use erlangen::net::simulation::SimNet;
use erlangen::net::Types;
use erlangen::{Message, Pid};

/// Peers each agent sends to.
const PEERS_PER_AGENT: usize = 8;

/// B15: 10,000 agents on 3 simulated nodes; each waits a drawn 10–100 ms
/// for a message and, when none comes, sends one to a drawn peer (two in
/// three on another node), for 10 simulated seconds (1 s with --quick).
pub(crate) fn sim_3x10k(d: u64) {
    let agents = 10_000usize;
    let simulated = Duration::from_secs(10 / d.max(1)).max(Duration::from_secs(1));
    let mut net = SimNet::new(1);
    let nodes: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|name| net.add_node(name, Types::new()).expect("a node"))
        .collect();
    let pids: Vec<(usize, Pid)> = (0..agents)
        .map(|i| {
            let node = i % nodes.len();
            let pid = net
                .sim()
                .spawn(nodes[node], move |ctx| {
                    let peers = ctx.receive().downcast::<Vec<Pid>>().expect("peers");
                    let sim = ctx.simulation().expect("a simulated agent");
                    let (mut received, mut sent) = (0u64, 0u64);
                    loop {
                        let wait = Duration::from_millis(10 + sim.random_below(91));
                        match ctx.receive_timeout(wait) {
                            Ok(message) => {
                                if message.downcast_ref::<&str>().is_some() {
                                    return (received, sent);
                                }
                                received += 1;
                            }
                            Err(_) => {
                                let to = &peers[sim.random_below(peers.len() as u64) as usize];
                                ctx.send(to, sent);
                                sent += 1;
                            }
                        }
                    }
                })
                .expect("a node that is up");
            (node, pid)
        })
        .collect();
    // Each agent's peers, as its node holds them.
    let handle = net.sim().handle();
    for (i, (node, pid)) in pids.iter().enumerate() {
        let peers: Vec<Pid> = (0..PEERS_PER_AGENT)
            .map(|k| {
                let j = (i + 1 + k * 1237 + handle.random_below(agents as u64) as usize) % agents;
                net.pid_on(nodes[*node], &pids[j].1).expect("nodes are up")
            })
            .collect();
        net.sim()
            .runtime(nodes[*node])
            .expect("up")
            .send(pid, Message::new(peers));
    }
    let started = Instant::now();
    net.sim().run_for(simulated);
    let wall = started.elapsed();
    let steps = net.sim().steps();
    let events = net.sim().events();
    println!(
        "B15 simulation 3 nodes x 10000 agents sim_s={:.1} wall_s={:.3} sim_per_wall={:.2} resumes={steps} events={events} resumes_per_s={:.0}",
        simulated.as_secs_f64(),
        wall.as_secs_f64(),
        simulated.as_secs_f64() / wall.as_secs_f64(),
        steps as f64 / wall.as_secs_f64()
    );
}
