//! A real partition: two network namespaces made by the test (`ip netns`),
//! each with a veth pair to a bridge in a third namespace of its own, so the
//! host's network and firewall are never touched. A node runs in each half
//! (this test binary again, in child mode, under `ip netns exec`), with its
//! port mapper on the port remote lookups use, inside its namespace only.
//! Pulling a veth end down cuts the link; setting it up heals it.
//!
//! Skipped, with the reason printed, where the kernel or the user may not
//! make namespaces (not root, no `ip`, a container without the capability).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::path::{Path, PathBuf};

use erlangen_net::{Node, TlsOptions};
use erlangen_portmap::{Daemon, DaemonConfig};
use erlangen_runtime::{Runtime, WatchDown};

use crate::support::{types, COOKIE, HANG_GUARD};

/// Set in a child: the address of its half (its host and listen address).
const CHILD_ADDRESS: &str = "ERLANGEN_TEST_PARTITION_ADDRESS";
/// Set in a child that runs TLS: the directory of `certificates`.
const CHILD_TLS: &str = "ERLANGEN_TEST_PARTITION_TLS";
/// The cluster-wide name both halves take.
const NAME: &str = "leader";

/// Runs `ip` with `args`; its error output if it fails.
fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Two namespaces on a bridge in a third; removed when dropped.
struct Network {
    halves: [String; 2],
    bridge_ns: String,
    /// The bridge side of each half's veth pair.
    links: [String; 2],
    addresses: [String; 2],
}

impl Network {
    /// A network of its own (names and subnet unique to this call), or
    /// why namespaces cannot be made here: only the first namespace's
    /// refusal counts as that; any later failure is the test's.
    fn make() -> Result<Network, String> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("{}{n}", std::process::id());
        let subnet = (std::process::id() * 4 + n) % 250 + 1;
        let network = Network {
            halves: [format!("erlp-a-{id}"), format!("erlp-b-{id}")],
            bridge_ns: format!("erlp-br-{id}"),
            links: [format!("erlpa{id}"), format!("erlpb{id}")],
            addresses: [format!("10.213.{subnet}.1"), format!("10.213.{subnet}.2")],
        };
        ip(&["netns", "add", &network.bridge_ns])?;
        let br = network.bridge_ns.as_str();
        let made = |args: &[&str]| ip(args).expect("the test's network is made");
        made(&["-n", br, "link", "add", "br0", "type", "bridge"]);
        made(&["-n", br, "link", "set", "br0", "up"]);
        for half in 0..2 {
            let ns = network.halves[half].as_str();
            let outer = network.links[half].as_str();
            made(&["netns", "add", ns]);
            made(&["-n", ns, "link", "set", "lo", "up"]);
            made(&[
                "-n", br, "link", "add", outer, "type", "veth", "peer", "name", "eth0", "netns", ns,
            ]);
            made(&["-n", br, "link", "set", outer, "master", "br0"]);
            made(&["-n", br, "link", "set", outer, "up"]);
            let address = format!("{}/24", network.addresses[half]);
            made(&["-n", ns, "addr", "add", &address, "dev", "eth0"]);
            made(&["-n", ns, "link", "set", "eth0", "up"]);
        }
        Ok(network)
    }

    /// Cuts (`up` false) or heals the link between the halves.
    fn link(&self, up: bool) {
        ip(&[
            "-n",
            &self.bridge_ns,
            "link",
            "set",
            &self.links[1],
            if up { "up" } else { "down" },
        ])
        .unwrap();
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for ns in self.halves.iter().chain([&self.bridge_ns]) {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// A node in one half, driven through its stdin and stdout.
struct Half {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    name: String,
    /// Lines that said the node's holder of the name ended, and why.
    ends: Vec<String>,
}

impl Half {
    /// Runs `test` (this module's test that called it) as the child of
    /// `half`, with TLS from `tls` if given.
    fn start(network: &Network, half: usize, test: &str, tls: Option<&Path>) -> Half {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &network.halves[half]])
            .arg(std::env::current_exe().unwrap())
            .args(["--exact", &format!("partition::{test}"), "--nocapture"])
            .env(CHILD_ADDRESS, &network.addresses[half])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        if let Some(dir) = tls {
            command.env(CHILD_TLS, dir);
        }
        let mut child = command.spawn().expect("the child starts");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut half = Half {
            child,
            stdin,
            lines,
            name: String::new(),
            ends: Vec::new(),
        };
        half.name = half.ask("name", "name ");
        half
    }

    /// Sends `command` and waits for the line that starts with `answer`;
    /// the rest of it.
    fn ask(&mut self, command: &str, answer: &str) -> String {
        writeln!(self.stdin, "{command}").unwrap();
        let deadline = Instant::now() + HANG_GUARD;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no answer to {command}"));
            if let Some(rest) = line.strip_prefix("ended ") {
                self.ends.push(rest.to_owned());
            } else if let Some(rest) = line.strip_prefix(answer) {
                return rest.to_owned();
            }
        }
    }

    /// Asks until the answer to `command` is `wanted`.
    fn until(&mut self, command: &str, answer: &str, wanted: &str) {
        let started = Instant::now();
        loop {
            if self.ask(command, answer) == wanted {
                return;
            }
            assert!(
                started.elapsed() < HANG_GUARD,
                "{command} never gave {wanted}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Half {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The child: a node on its half's address with its own port mapper on
/// the default port (in its namespace), both on TLS if `CHILD_TLS` is set,
/// serving line commands: `name`, `connect NODE`, `nodes`, `register`,
/// `whereis`.
fn child(address: &str) {
    let tls = std::env::var_os(CHILD_TLS).map(|dir| {
        let dir = PathBuf::from(dir);
        TlsOptions::new(
            dir.join("ca.pem"),
            dir.join(format!("{address}.pem")),
            dir.join(format!("{address}.key")),
        )
    });
    let mapper = Daemon::start(DaemonConfig {
        listen: format!("0.0.0.0:{}", erlangen_portmap::PORT_DEFAULT)
            .parse()
            .unwrap(),
        // The other half looks names up here: it proves this cookie.
        cookie: Some(COOKIE.to_vec()),
        tls: tls.clone(),
        ..DaemonConfig::default()
    })
    .expect("a port mapper in the namespace");
    let rt = Runtime::builder().workers(1).build().unwrap();
    let mut node = Node::builder("half");
    if let Some(tls) = tls {
        node = node.tls(tls);
    }
    let node = node
        .host(address)
        .listen(address.parse().unwrap())
        .cookie(COOKIE)
        .port_mapper(
            format!("127.0.0.1:{}", erlangen_portmap::PORT_DEFAULT)
                .parse()
                .unwrap(),
        )
        .types(types())
        .heartbeat(Duration::from_millis(200), Duration::from_secs(1))
        .start(&rt)
        .expect("the node starts");
    let node = Arc::new(node);
    for line in std::io::stdin().lock().lines().map_while(Result::ok) {
        let (command, argument) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        match command {
            "name" => println!("name {}", node.name()),
            "connect" => {
                node.connect(&argument.parse().unwrap());
                println!("connecting");
            }
            "nodes" => println!("nodes {}", node.nodes().len()),
            "register" => {
                let holder = rt.spawn(|ctx| loop {
                    ctx.receive();
                });
                // Says how the holder ended.
                let watched = holder.clone();
                rt.spawn(move |ctx| {
                    ctx.watch(&watched).unwrap();
                    let down = ctx.receive().downcast::<WatchDown>().unwrap();
                    println!("ended {}", down.status);
                });
                let result = node.register_global(&holder, NAME);
                println!("registered {}", result.is_ok());
            }
            "whereis" => {
                let holder = node.whereis_global(NAME);
                let id = holder.and_then(|pid| node.id_of(&pid));
                let host = id.map_or("none".to_owned(), |id| id.node.to_string());
                println!("holder {host}");
            }
            _ => println!("unknown {line}"),
        }
    }
    drop(mapper);
}

#[test]
fn after_a_partition_heals_one_holder_of_a_cluster_name_survives() {
    if let Ok(address) = std::env::var(CHILD_ADDRESS) {
        child(&address);
        return;
    }
    let network = match Network::make() {
        Ok(network) => network,
        Err(why) => {
            println!("skipped: network namespaces are not available here ({why})");
            return;
        }
    };
    let test = "after_a_partition_heals_one_holder_of_a_cluster_name_survives";
    let mut halves = [
        Half::start(&network, 0, test, None),
        Half::start(&network, 1, test, None),
    ];
    let names = [halves[0].name.clone(), halves[1].name.clone()];

    // Met, then cut apart until each has lost the other.
    halves[0].ask(&format!("connect {}", names[1]), "connecting");
    halves[0].until("nodes", "nodes ", "1");
    halves[1].until("nodes", "nodes ", "1");
    network.link(false);
    halves[0].until("nodes", "nodes ", "0");
    halves[1].until("nodes", "nodes ", "0");

    // Each half takes the name.
    for (half, name) in halves.iter_mut().zip(&names) {
        assert_eq!(half.ask("register", "registered "), "true");
        half.until("whereis", "holder ", name);
    }

    // Healed and met again: the holder on the node whose name sorts first
    // keeps the name; the other is killed with the documented reason.
    network.link(true);
    halves[1].ask(&format!("connect {}", names[0]), "connecting");
    let (keeper, loser) = if names[0] < names[1] { (0, 1) } else { (1, 0) };
    let winner = names[keeper].clone();
    for half in halves.iter_mut() {
        half.until("whereis", "holder ", &winner);
    }
    let started = Instant::now();
    while halves[loser].ends.is_empty() {
        assert!(started.elapsed() < HANG_GUARD, "the loser's holder lives");
        halves[loser].ask("nodes", "nodes ");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        halves[loser].ends,
        [format!("exit global name conflict: {NAME}")]
    );
    // No duplicate: both still answer the keeper, and the keeper's holder
    // never ended.
    for half in halves.iter_mut() {
        assert_eq!(half.ask("whereis", "holder "), winner);
        assert_eq!(half.ask("nodes", "nodes "), "1");
    }
    assert!(halves[keeper].ends.is_empty(), "{:?}", halves[keeper].ends);
}

/// A CA (`ca.pem`) and, for each address, a certificate naming it
/// (`ADDRESS.pem`, `ADDRESS.key`), in `dir`.
fn certificates(dir: &Path, addresses: &[String]) {
    std::fs::create_dir_all(dir).unwrap();
    let ca = crate::tls::Authority::new(dir, "ca");
    for address in addresses {
        ca.issue(dir, address, std::slice::from_ref(address));
    }
}

/// Two hosts on TLS: each node looks the other up at the other host's
/// port mapper over TLS (with the cookie's proof inside) and connects to
/// it over TLS; each certificate names its host's address.
#[test]
fn nodes_on_two_hosts_meet_over_tls_through_each_others_port_mappers() {
    if let Ok(address) = std::env::var(CHILD_ADDRESS) {
        child(&address);
        return;
    }
    let network = match Network::make() {
        Ok(network) => network,
        Err(why) => {
            println!("skipped: network namespaces are not available here ({why})");
            return;
        }
    };
    let dir = std::env::temp_dir().join(format!("erlangen-partition-tls-{}", std::process::id()));
    certificates(&dir, &network.addresses);
    let test = "nodes_on_two_hosts_meet_over_tls_through_each_others_port_mappers";
    let mut halves = [
        Half::start(&network, 0, test, Some(&dir)),
        Half::start(&network, 1, test, Some(&dir)),
    ];
    let other = halves[1].name.clone();
    halves[0].ask(&format!("connect {other}"), "connecting");
    halves[0].until("nodes", "nodes ", "1");
    halves[1].until("nodes", "nodes ", "1");
    // A name taken on one host is found from the other, over TLS.
    assert_eq!(halves[1].ask("register", "registered "), "true");
    halves[0].until("whereis", "holder ", &other);
    drop(halves);
    let _ = std::fs::remove_dir_all(&dir);
}
