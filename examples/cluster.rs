//! cargo run --release --example cluster
//!
//! A cluster of three nodes in one process (each its own runtime and
//! port; kernels do the same with `--join`, README "Clusters"): `beta` and
//! `gamma` join `alpha` and meet each other through it; an agent takes the
//! cluster-wide name `leader`; one agent per node joins the group
//! `workers`; the leader broadcasts to the group and every member answers
//! it; then `gamma` stops, and the leader's node monitor hears it go.

use std::sync::Arc;
use std::time::{Duration, Instant};

use erlangen::net::{Node, NodeEvent};
use erlangen::portmap::{Daemon, DaemonConfig};
use erlangen::Runtime;

fn main() {
    let mapper = Daemon::start(DaemonConfig {
        listen: "127.0.0.1:0".parse().expect("an address"),
        ..DaemonConfig::default()
    })
    .expect("a port mapper");
    let start = |name: &str| {
        let rt = Runtime::builder().workers(1).build().expect("a runtime");
        let node = Node::builder(&format!("{name}-{}", std::process::id()))
            .cookie(b"cluster example")
            .port_mapper(mapper.local_addr())
            .start(&rt)
            .expect("a node");
        (rt, Arc::new(node))
    };
    let (rt_alpha, alpha) = start("alpha");
    let (rt_beta, beta) = start("beta");
    let (rt_gamma, gamma) = start("gamma");
    // `--join alpha`, twice.
    beta.connect(alpha.name());
    gamma.connect(alpha.name());
    wait("the mesh", || {
        [&alpha, &beta, &gamma].iter().all(|n| n.nodes().len() == 2)
    });
    println!("mesh:     {} sees {:?}", beta.name(), names(&beta));

    // One worker per node in the group `workers`: each answers a broadcast
    // with its node's name.
    for (rt, node) in [(&rt_alpha, &alpha), (&rt_beta, &beta), (&rt_gamma, &gamma)] {
        let me = node.name().to_string();
        let worker = rt.spawn(move |ctx| loop {
            if let Ok(reply_to) = ctx.receive().downcast::<erlangen::Pid>() {
                ctx.send(&reply_to, me.clone());
            }
        });
        node.join_group(&worker, "workers").expect("a group name");
    }
    wait("the group", || alpha.group_members("workers").len() == 3);

    // The leader: a cluster-wide name on beta; it watches gamma and
    // broadcasts to the workers.
    let (leader_node, gamma_name) = (beta.clone(), gamma.name().clone());
    let (done_tx, done) = std::sync::mpsc::channel();
    let leader = rt_beta.spawn(move |ctx| {
        leader_node.monitor_node(&ctx.pid(), &gamma_name);
        let sent = leader_node.send_to_group(ctx, "workers", ctx.pid());
        let mut answers: Vec<String> = (0..sent)
            .filter_map(|_| ctx.receive_timeout(Duration::from_secs(10)).ok())
            .filter_map(|m| m.downcast::<String>().ok())
            .collect();
        answers.sort();
        println!("group:    {sent} workers answered the leader: {answers:?}");
        let _ = done_tx.send(());
        loop {
            if let Ok(event) = ctx.receive().downcast::<NodeEvent>() {
                if !event.up {
                    println!(
                        "monitor:  {} went down: {}",
                        event.node,
                        event.reason.unwrap_or_default()
                    );
                    let _ = done_tx.send(());
                    return;
                }
            }
        }
    });
    beta.register_global(&leader, "leader")
        .expect("the name is free");
    wait("the name", || alpha.whereis_global("leader").is_some());
    println!(
        "name:     {} finds `leader` at {}",
        alpha.name(),
        alpha.whereis_global("leader").expect("found")
    );
    done.recv_timeout(Duration::from_secs(30))
        .expect("the broadcast");
    drop(rt_gamma);
    Arc::try_unwrap(gamma).expect("one handle").stop();
    done.recv_timeout(Duration::from_secs(30))
        .expect("the node event");
    drop((rt_alpha, rt_beta));
}

fn names(node: &Node) -> Vec<String> {
    node.nodes().iter().map(ToString::to_string).collect()
}

fn wait(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{what} did not form"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
