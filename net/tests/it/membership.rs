//! Membership (event_loop/membership.rs): kernels joined to one seed form
//! a full mesh; a killed member is reported to node monitors and leaves
//! every list; restarted, it rejoins.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use erlangen_net::{Node, NodeEvent, NodeName};
use erlangen_runtime::{Runtime, SpawnOptions};

use crate::support::{port_mapper, types, unique, COOKIE, HANG_GUARD};

const KERNEL: &str = env!("CARGO_BIN_EXE_erlangen-kernel");

/// Kernels in the cluster (the 16).
const KERNELS: usize = 16;

/// A kernel process, killed when dropped.
pub(crate) struct Kernel(Child);

impl Kernel {
    /// Starts `command` as a kernel process (killed when dropped).
    pub(crate) fn spawn(command: &mut Command) -> Kernel {
        Kernel(command.spawn().expect("the kernel starts"))
    }

    /// Its standard output (piped by the caller).
    pub(crate) fn stdout(&mut self) -> std::process::ChildStdout {
        self.0.stdout.take().expect("a piped stdout")
    }
}

impl Drop for Kernel {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts kernel `name`, joined to `seed` if any; waits until it is
/// registered.
fn kernel(mapper: &erlangen_portmap::Daemon, name: &str, seed: Option<&str>) -> Kernel {
    kernel_with(mapper, name, seed, &[])
}

/// `kernel`, with more arguments.
pub(crate) fn kernel_with(
    mapper: &erlangen_portmap::Daemon,
    name: &str,
    seed: Option<&str>,
    more: &[&str],
) -> Kernel {
    let mut command = Command::new(KERNEL);
    command.args(more);
    command
        .args(["--name", name, "--workers", "1"])
        .args(["--port-mapper", &mapper.local_addr().to_string()])
        .env("ERLANGEN_COOKIE", std::str::from_utf8(COOKIE).unwrap())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(seed) = seed {
        command.args(["--join", &format!("localhost/{seed}")]);
    }
    let child = Kernel(command.spawn().expect("the kernel starts"));
    let started = Instant::now();
    while erlangen_portmap::client::Client::connect(mapper.local_addr())
        .and_then(|mut client| client.lookup(name))
        .is_err()
    {
        assert!(started.elapsed() < HANG_GUARD, "kernel {name} registers");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// Polls `check` until it holds (a hang guard, not a timing assertion).
pub(crate) fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < HANG_GUARD * 4, "never: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The peers `kernel` reports, by the kernel's `nodes` function.
pub(crate) fn peers_of(rt: &Runtime, node: &Arc<Node>, kernel: &NodeName) -> Vec<String> {
    let (node, kernel) = (node.clone(), kernel.clone());
    rt.run(move |ctx| {
        let child = node
            .spawn(ctx, &kernel, "nodes", (), SpawnOptions::new().monitor())
            .ok()?;
        let _ = child;
        let down = ctx
            .receive_timeout(HANG_GUARD)
            .ok()?
            .downcast::<erlangen_runtime::Down>()
            .ok()?;
        down.status
            .value()
            .and_then(|value| value.downcast_ref::<Vec<String>>().cloned())
    })
    .ok()
    .flatten()
    .unwrap_or_default()
}

#[test]
fn sixteen_kernels_joined_to_one_seed_form_a_mesh_that_heals() {
    let mapper = port_mapper();
    let names: Vec<String> = (0..KERNELS).map(|i| unique(&format!("k{i}"))).collect();
    let mut kernels: Vec<Option<Kernel>> = Vec::new();
    kernels.push(Some(kernel(&mapper, &names[0], None)));
    for name in &names[1..] {
        kernels.push(Some(kernel(&mapper, name, Some(&names[0]))));
    }
    let full: Vec<NodeName> = names
        .iter()
        .map(|name| format!("localhost/{name}").parse().unwrap())
        .collect();

    // This process joins through the seed, as a member.
    let rt = Runtime::builder().workers(2).build().unwrap();
    let node = Arc::new(
        Node::builder(&unique("observer"))
            .cookie(COOKIE)
            .port_mapper(mapper.local_addr())
            .types(types())
            .start(&rt)
            .unwrap(),
    );
    node.connect(&full[0]);
    eventually("the observer meets every kernel", || {
        let nodes = node.nodes();
        full.iter().all(|k| nodes.contains(k))
    });
    // Every kernel sees the 15 others.
    for (i, kernel) in full.iter().enumerate() {
        eventually(&format!("kernel {i} sees the 15 others"), || {
            let peers = peers_of(&rt, &node, kernel);
            full.iter()
                .filter(|k| *k != kernel)
                .all(|k| peers.contains(&k.to_string()))
        });
    }

    // Four killed: every monitor hears each loss, and they leave every list.
    let (events_tx, events) = std::sync::mpsc::channel::<NodeEvent>();
    let watched: Vec<NodeName> = full[12..].to_vec();
    let (monitor_node, to_watch) = (node.clone(), watched.clone());
    let (ready_tx, ready) = std::sync::mpsc::channel();
    rt.spawn(move |ctx| {
        for name in &to_watch {
            monitor_node.monitor_node(&ctx.pid(), name);
        }
        ready_tx.send(()).unwrap();
        loop {
            if let Ok(event) = ctx.receive().downcast::<NodeEvent>() {
                let _ = events_tx.send(event);
            }
        }
    });
    ready.recv_timeout(HANG_GUARD).unwrap();
    for slot in &mut kernels[12..] {
        let kernel = slot.take().unwrap();
        // SAFETY: kill(2) on a child process we own.
        let killed = unsafe { libc::kill(kernel.0.id() as i32, libc::SIGKILL) };
        assert_eq!(killed, 0);
        drop(kernel);
    }
    let mut down = std::collections::HashSet::new();
    while down.len() < watched.len() {
        let event = events.recv_timeout(HANG_GUARD * 2).expect("a node event");
        if !event.up {
            assert!(event.reason.is_some());
            down.insert(event.node);
        }
    }
    assert_eq!(down, watched.iter().cloned().collect());
    for (i, kernel) in full[..12].iter().enumerate() {
        eventually(&format!("kernel {i} forgets the dead"), || {
            let peers = peers_of(&rt, &node, kernel);
            !peers.is_empty() && watched.iter().all(|k| !peers.contains(&k.to_string()))
        });
    }

    // Restarted: the mesh re-forms, and the monitors hear them come up.
    for (i, slot) in kernels.iter_mut().enumerate().skip(12) {
        *slot = Some(kernel(&mapper, &names[i], Some(&names[0])));
    }
    let mut up = std::collections::HashSet::new();
    while up.len() < watched.len() {
        let event = events.recv_timeout(HANG_GUARD * 2).expect("a node event");
        if event.up {
            up.insert(event.node);
        }
    }
    for (i, kernel) in full.iter().enumerate() {
        eventually(&format!("kernel {i} sees the 15 others again"), || {
            let peers = peers_of(&rt, &node, kernel);
            full.iter()
                .filter(|k| *k != kernel)
                .all(|k| peers.contains(&k.to_string()))
        });
    }
}

#[test]
fn a_kernel_that_discovers_a_port_mappers_nodes_meets_them_all() {
    let mapper = port_mapper();
    let names: Vec<String> = (0..3).map(|i| unique(&format!("d{i}"))).collect();
    // Two kernels that know nothing of each other, then one that discovers.
    let _first = kernel(&mapper, &names[0], None);
    let _second = kernel(&mapper, &names[1], None);
    let _third = kernel_with(&mapper, &names[2], None, &["--discover", "localhost"]);
    let full: Vec<NodeName> = names
        .iter()
        .map(|name| format!("localhost/{name}").parse().unwrap())
        .collect();
    let rt = Runtime::builder().workers(1).build().unwrap();
    let node = Arc::new(
        Node::builder(&unique("finder"))
            .cookie(COOKIE)
            .port_mapper(mapper.local_addr())
            .types(types())
            .start(&rt)
            .unwrap(),
    );
    node.connect(&full[2]);
    for (i, kernel) in full.iter().enumerate() {
        eventually(&format!("kernel {i} sees the two others"), || {
            let peers = peers_of(&rt, &node, kernel);
            full.iter()
                .filter(|k| *k != kernel)
                .all(|k| peers.contains(&k.to_string()))
        });
    }
}
