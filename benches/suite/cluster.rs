//! B13: what a cluster costs (issue 23), each node its own OS process
//! (this binary again, as `cluster_node`), all on one port mapper:
//!
//! * `cluster_mesh`: 16 nodes, each joined to the first; once every one
//!   sees the 15 others, each node's resident memory and its CPU use while
//!   the mesh idles (heartbeats only) for `IDLE_WINDOW`, read from /proc;
//!   then a 17th node joins through the first, timed from its `connect`
//!   until it sees all 16.
//! * `cluster_group_send`: 1,000 members of one group, 250 on each of 4
//!   nodes; `send_to_group` from the driver's node, `BROADCASTS` times and
//!   then once more with a closing mark, until every member answered that
//!   it got them all.

use std::io::{BufRead, BufReader, Lines};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use erlangen::net::kernel::Increment;
use erlangen::net::{Node, NodeName, WirePid};
use erlangen::portmap::{Daemon, DaemonConfig};
use erlangen::{Ctx, Runtime, SpawnOptions};

use crate::dist::{functions, types, COOKIE, PORT_MAPPER_ENV};

/// Nodes of the measured mesh.
const MESH_NODES: usize = 16;
/// How long the formed mesh idles while its CPU use is read.
const IDLE_WINDOW: Duration = Duration::from_secs(5);
/// Group members per node, and nodes, of `cluster_group_send`.
const MEMBERS_PER_NODE: usize = 250;
const GROUP_NODES: usize = 4;
/// Broadcasts timed (before the closing one).
const BROADCASTS: u64 = 100;
/// The group of `cluster_group_send`.
const GROUP: &str = "bench";
/// The closing mark: a member answers with how many it got before it.
const CLOSING: u64 = u64::MAX;

/// Settings of a `cluster_node`.
const SEED_ENV: &str = "ERLANGEN_BENCH_SEED";
const EXPECT_ENV: &str = "ERLANGEN_BENCH_EXPECT";
const MEMBERS_ENV: &str = "ERLANGEN_BENCH_MEMBERS";

/// A group member: counts broadcasts until the closing mark, then tells
/// its sender how many came before it.
fn member(ctx: &mut Ctx) {
    let mut got = 0u64;
    loop {
        let Ok(message) = ctx.receive().downcast::<Increment>() else {
            continue;
        };
        if message.n == CLOSING {
            ctx.send(&message.reply_to.0, got);
            got = 0;
        } else {
            got += 1;
        }
    }
}

/// Spawns `count` members of `GROUP` on `node`, each with a mailbox that
/// holds every broadcast (the default of 64 would drop a burst, as
/// Erlangen's bounded mailboxes do).
fn spawn_members(rt: &Runtime, node: &Node, count: usize) {
    let mailbox = SpawnOptions::new().mailbox_len(2 * BROADCASTS as usize);
    for _ in 0..count {
        let pid = rt
            .spawn_with(mailbox.clone(), member)
            .expect("a member starts");
        node.join_group(&pid, GROUP).expect("a member joins");
    }
}

/// Waits (polling) until `node` is connected to `count` others; the time
/// it took.
fn wait_for_nodes(node: &Node, count: usize) -> Duration {
    let started = Instant::now();
    while node.nodes().len() < count {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the mesh did not form"
        );
        std::thread::sleep(Duration::from_micros(200));
    }
    started.elapsed()
}

/// A node of a measured cluster: joins `SEED_ENV` if given, spawns
/// `MEMBERS_ENV` group members, says `ready NAME`, and once it sees
/// `EXPECT_ENV` others, `meshed join_us=…` (from its `connect`); then lives
/// until its stdin closes.
pub(crate) fn cluster_node(_divisor: u64) {
    // SAFETY: prctl(PR_SET_PDEATHSIG) only sets a flag of this process.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
    let env = |name: &str| std::env::var(name).ok();
    let mapper = env(PORT_MAPPER_ENV)
        .expect("the driver names the port mapper")
        .parse()
        .expect("an address");
    let rt = Runtime::builder()
        .workers(crate::dist::workers())
        .build()
        .expect("runtime");
    let node = Node::builder(&format!("cluster-{}", std::process::id()))
        .cookie(COOKIE.as_bytes())
        .port_mapper(mapper)
        .types(types())
        .functions(functions())
        .start(&rt)
        .expect("the node starts");
    let members = env(MEMBERS_ENV).map_or(0, |n| n.parse().expect("a count"));
    spawn_members(&rt, &node, members);
    println!("ready {}", node.name());
    if let Some(seed) = env(SEED_ENV) {
        node.connect(&seed.parse().expect("a node name"));
    }
    let expect = env(EXPECT_ENV).map_or(0, |n| n.parse().expect("a count"));
    let took = wait_for_nodes(&node, expect);
    println!("meshed join_us={:.0}", took.as_secs_f64() * 1e6);
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}

/// A `cluster_node` process and its output.
struct ClusterNode {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    name: NodeName,
}

impl ClusterNode {
    fn start(mapper: &Daemon, seed: Option<&NodeName>, expect: usize, members: usize) -> Self {
        let mut command = Command::new(std::env::current_exe().expect("own path"));
        command
            .env("ERLANGEN_BENCH_CASE", "cluster_node")
            .env(PORT_MAPPER_ENV, mapper.local_addr().to_string())
            .env(EXPECT_ENV, expect.to_string())
            .env(MEMBERS_ENV, members.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        if let Some(seed) = seed {
            command.env(SEED_ENV, seed.to_string());
        }
        let mut child = command.spawn().expect("a cluster node starts");
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        let name = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|line| line.strip_prefix("ready ").map(str::to_owned))
            .expect("the node is ready")
            .parse()
            .expect("a node name");
        ClusterNode { child, lines, name }
    }

    /// Waits for `meshed`: the µs from its `connect` to a full view.
    fn meshed(&mut self) -> f64 {
        self.lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|line| {
                line.strip_prefix("meshed join_us=")
                    .map(|us| us.parse().expect("a number"))
            })
            .expect("the node reports its mesh")
    }

    /// Resident memory (KiB) and CPU time used so far (clock ticks).
    fn usage(&self) -> (u64, u64) {
        let pid = self.child.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        let rss = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS");
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
        // After the command's closing parenthesis: fields 3 on; utime and
        // stime are fields 14 and 15.
        let fields: Vec<&str> = stat[stat.rfind(')').expect("comm") + 2..]
            .split(' ')
            .collect();
        let ticks =
            fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
        (rss, ticks)
    }
}

impl Drop for ClusterNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn port_mapper() -> Daemon {
    Daemon::start(DaemonConfig {
        listen: "127.0.0.1:0".parse().expect("an address"),
        ..DaemonConfig::default()
    })
    .expect("a port mapper")
}

pub(crate) fn cluster_mesh(_divisor: u64) {
    let mapper = port_mapper();
    let mut nodes = vec![ClusterNode::start(&mapper, None, MESH_NODES - 1, 0)];
    let seed = nodes[0].name.clone();
    for _ in 1..MESH_NODES {
        nodes.push(ClusterNode::start(&mapper, Some(&seed), MESH_NODES - 1, 0));
    }
    let formed: Vec<f64> = nodes.iter_mut().map(ClusterNode::meshed).collect();
    // Let the joins' traffic settle, then read the idle mesh.
    std::thread::sleep(Duration::from_secs(1));
    let before: Vec<(u64, u64)> = nodes.iter().map(ClusterNode::usage).collect();
    std::thread::sleep(IDLE_WINDOW);
    let after: Vec<(u64, u64)> = nodes.iter().map(ClusterNode::usage).collect();
    // SAFETY: sysconf only reads a configuration value.
    let ticks_per_s = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let rss_kib = after.iter().map(|&(rss, _)| rss).sum::<u64>() as f64 / MESH_NODES as f64;
    let cpu_s: f64 = before
        .iter()
        .zip(&after)
        .map(|(b, a)| (a.1 - b.1) as f64 / ticks_per_s)
        .sum();
    // CPU time per second of idling, per node: ms/s (0.1 % of a core is 1).
    let idle_cpu_ms_per_s = cpu_s / IDLE_WINDOW.as_secs_f64() * 1000.0 / MESH_NODES as f64;
    let mut newcomer = ClusterNode::start(&mapper, Some(&seed), MESH_NODES, 0);
    let join_us = newcomer.meshed();
    println!(
        "B13 cluster mesh nodes={MESH_NODES} rss_kib_per_node={rss_kib:.0} idle_cpu_ms_per_s={idle_cpu_ms_per_s:.3} join_ms={:.2} formed_ms_max={:.1}",
        join_us / 1000.0,
        formed.iter().cloned().fold(0.0, f64::max) / 1000.0
    );
}

pub(crate) fn cluster_group_send(divisor: u64) {
    let broadcasts = (BROADCASTS / divisor).max(1);
    let mapper = port_mapper();
    let rt = Runtime::builder()
        .workers(crate::dist::workers())
        .build()
        .expect("runtime");
    let node = Arc::new(
        Node::builder(&format!("cluster-driver-{}", std::process::id()))
            .cookie(COOKIE.as_bytes())
            .port_mapper(mapper.local_addr())
            .types(types())
            .functions(functions())
            .start(&rt)
            .expect("the node starts"),
    );
    spawn_members(&rt, &node, MEMBERS_PER_NODE);
    let mut others: Vec<ClusterNode> = (1..GROUP_NODES)
        .map(|_| {
            ClusterNode::start(
                &mapper,
                Some(node.name()),
                GROUP_NODES - 1,
                MEMBERS_PER_NODE,
            )
        })
        .collect();
    for other in &mut others {
        other.meshed();
    }
    let members = MEMBERS_PER_NODE * GROUP_NODES;
    let started = Instant::now();
    while node.group_members(GROUP).len() < members {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the group did not form"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let driver = node.clone();
    let elapsed = rt
        .run(move |ctx| {
            let root = ctx.pid();
            // The sender takes every member's answer: its mailbox holds them.
            let sender = SpawnOptions::new().mailbox_len(2 * members);
            ctx.spawn_with(sender, move |ctx| {
                let me = WirePid(ctx.pid());
                let started = Instant::now();
                for n in (0..broadcasts).chain([CLOSING]) {
                    let sent = driver.send_to_group(
                        ctx,
                        GROUP,
                        Increment {
                            reply_to: me.clone(),
                            n,
                        },
                    );
                    assert_eq!(sent, members);
                }
                for _ in 0..members {
                    let got = ctx.receive().downcast::<u64>().expect("a count");
                    assert_eq!(got, broadcasts, "every member got every broadcast");
                }
                ctx.send(&root, started.elapsed());
            })
            .expect("the sender starts");
            ctx.receive().downcast::<Duration>().expect("the time")
        })
        .expect("the driver runs");
    let sends = (broadcasts + 1) as f64;
    println!(
        "B13 group send members={members} nodes={GROUP_NODES} per_broadcast_us={:.1} per_delivery_ns={:.0}",
        elapsed.as_secs_f64() * 1e6 / sends,
        elapsed.as_secs_f64() * 1e9 / (sends * members as f64)
    );
    drop(others);
}
