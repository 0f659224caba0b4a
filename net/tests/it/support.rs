//! Helpers: a port mapper, runtimes and nodes for tests.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use erlangen_net::{Functions, Node, NodeName, Types, WirePid};
use erlangen_portmap::{Daemon, DaemonConfig};
use erlangen_runtime::{Ctx, Pid, Runtime};

/// A hang guard: generous, never a performance threshold.
pub(crate) const HANG_GUARD: Duration = Duration::from_secs(30);

/// The cookie the tests' nodes share.
pub(crate) const COOKIE: &[u8] = b"test cookie";

/// A message that carries a pid to answer.
#[derive(serde::Serialize, serde::Deserialize, Debug)]
pub(crate) struct Ping {
    #[serde(with = "erlangen_net::pid")]
    pub(crate) reply_to: Pid,
    pub(crate) n: u64,
}

/// The types every test node registers.
pub(crate) fn types() -> Types {
    Types::new()
        .register::<Ping>("test/ping")
        .register_call::<u64>("test/call")
}

/// The functions every test node offers.
pub(crate) fn functions() -> Functions {
    Functions::new()
        .register("double", |_ctx: &mut Ctx, n: u64| n * 2)
        .register("wait", |ctx: &mut Ctx, (): ()| {
            ctx.receive();
        })
        .register("fail", |_ctx: &mut Ctx, why: String| -> u64 {
            panic!("{why}")
        })
        // Forwards every String it receives to `to`; returns on "stop".
        .register("collect", |ctx: &mut Ctx, to: WirePid| loop {
            let text = ctx.receive().downcast::<String>().unwrap_or_default();
            if text == "stop" {
                return;
            }
            ctx.send(&to.0, text);
        })
        .register("call_server", |ctx: &mut Ctx, (): ()| serve_calls(ctx))
        // `call_server` registered under the name it is given (first, so a
        // call answered proves the name is registered).
        .register("named_call_server", |ctx: &mut Ctx, name: String| {
            ctx.register(&name).unwrap();
            serve_calls(ctx)
        })
        // Receives `n` messages of `STREAM_CHUNK_BYTES` (transport.rs's
        // stream) and tells `reply_to` "ok n", or the first that is wrong.
        .register(
            "check_stream",
            |ctx: &mut Ctx, (n, reply_to): (u64, WirePid)| {
                for i in 0..n {
                    let chunk = ctx.receive().downcast::<Vec<u8>>().unwrap();
                    if chunk != stream_chunk(i) {
                        ctx.send(&reply_to.0, format!("message {i} is wrong"));
                        return;
                    }
                }
                ctx.send(&reply_to.0, format!("ok {n}"));
            },
        )
        // A collector and a receiver of a large message (transport.rs):
        // sends the receiver's pid to `reply_to`; the receiver tells the
        // collector "big N, n" once it has a Vec<u8> of 7s and then a u64;
        // the collector tells `reply_to` the two things it got, in order.
        .register("pair_probe", |ctx: &mut Ctx, reply_to: WirePid| {
            let collector = ctx.pid();
            let receiver = ctx.spawn(move |ctx| {
                let big = match ctx.receive().downcast::<Vec<u8>>() {
                    Ok(big) if big.iter().all(|&b| b == 7) => format!("big {}", big.len()),
                    other => format!("not the large message: {other:?}"),
                };
                let next = ctx.receive().downcast::<u64>().unwrap();
                ctx.send(&collector, format!("{big}, {next}"));
            });
            ctx.send(&reply_to.0, WirePid(receiver));
            let mut seen = Vec::new();
            for _ in 0..2 {
                let message = ctx.receive();
                seen.push(match message.downcast::<u64>() {
                    Ok(n) => n.to_string(),
                    Err(message) => message.downcast::<String>().unwrap().to_string(),
                });
            }
            ctx.send(&reply_to.0, seen.join("; "));
        })
        // Takes every message, forever.
        .register("sink", |ctx: &mut Ctx, (): ()| loop {
            ctx.receive();
        })
        // Sleeps, then returns how many messages its mailbox kept.
        .register("sleep_then_count", |ctx: &mut Ctx, ms: u64| {
            ctx.sleep(Duration::from_millis(ms));
            ctx.flush().len() as u64
        })
}

/// Bytes of each message of a checked stream.
pub(crate) const STREAM_CHUNK_BYTES: usize = 64 * 1024;

/// Message `i` of a checked stream: its number, then its low byte repeated.
pub(crate) fn stream_chunk(i: u64) -> Vec<u8> {
    let mut chunk = vec![i as u8; STREAM_CHUNK_BYTES];
    chunk[..8].copy_from_slice(&i.to_le_bytes());
    chunk
}

/// Serves `Call<u64>`: n is answered n + 1; 0 ends the server with "asked
/// to"; 1,000 is answered after 200 ms.
fn serve_calls(ctx: &mut Ctx) {
    loop {
        let call = ctx
            .receive()
            .downcast::<erlangen_runtime::Call<u64>>()
            .unwrap();
        match call.request {
            0 => ctx.exit(erlangen_runtime::ExitReason::other("asked to")),
            1_000 => {
                ctx.sleep(Duration::from_millis(200));
                ctx.reply(&call.from, 1_001u64);
            }
            n => ctx.reply(&call.from, n + 1),
        }
    }
}

/// Set in a child process that runs a test node.
pub(crate) const CHILD_NODE: &str = "ERLANGEN_TEST_CHILD_NODE";
/// The port mapper the child registers with.
pub(crate) const CHILD_PORT_MAPPER: &str = "ERLANGEN_TEST_CHILD_PORT_MAPPER";

/// A node in a child process (this test binary run in child mode).
pub(crate) struct ChildNode {
    pub(crate) child: std::process::Child,
    pub(crate) name: NodeName,
}

impl ChildNode {
    /// Starts a child node named `name` and waits until it is ready.
    pub(crate) fn start(mapper: &Daemon, name: &str) -> ChildNode {
        use std::io::BufRead;
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "support::a_child_node_process_answers_its_echo",
                "--nocapture",
            ])
            .env(CHILD_NODE, name)
            .env(CHILD_PORT_MAPPER, mapper.local_addr().to_string())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("the child starts");
        let stdout = child.stdout.take().unwrap();
        let mut lines = std::io::BufReader::new(stdout).lines();
        let ready = lines.find_map(|line| {
            let line = line.ok()?;
            line.strip_prefix("child-node-ready ").map(str::to_owned)
        });
        let name: NodeName = ready.expect("the child reports ready").parse().unwrap();
        // Keep draining its output so that it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        ChildNode { child, name }
    }

    /// The child's process id, for signals.
    pub(crate) fn os_pid(&self) -> i32 {
        self.child.id() as i32
    }
}

impl Drop for ChildNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// In the parent: a child node process answers a ping to its echo agent.
/// In a child (started by `ChildNode::start`): the child's body, a node
/// that lives until its stdin closes.
#[test]
fn a_child_node_process_answers_its_echo() {
    let Some(name) = std::env::var_os(CHILD_NODE) else {
        let mapper = port_mapper();
        let (rt, node) = node(&mapper, &unique("parent"));
        let child = ChildNode::start(&mapper, &unique("child"));
        let to = child.name.clone();
        let answer = rt
            .run(move |ctx| {
                node.send_named(
                    ctx,
                    &to,
                    "echo",
                    Ping {
                        reply_to: ctx.pid(),
                        n: 6,
                    },
                );
                ctx.receive_timeout(HANG_GUARD)
                    .expect("the child answers")
                    .downcast::<u64>()
                    .unwrap()
            })
            .unwrap();
        assert_eq!(answer, 7);
        return;
    };
    let mapper: std::net::SocketAddr = std::env::var(CHILD_PORT_MAPPER).unwrap().parse().unwrap();
    let rt = Runtime::builder().workers(1).build().unwrap();
    let node = Node::builder(name.to_str().unwrap())
        .cookie(COOKIE)
        .port_mapper(mapper)
        .types(types())
        .functions(functions())
        .heartbeat(Duration::from_millis(200), Duration::from_secs(2))
        .start(&rt)
        .expect("the child node starts");
    let echo = rt.spawn(|ctx| loop {
        let ping = ctx.receive().downcast::<Ping>().unwrap();
        ctx.send(&ping.reply_to, ping.n + 1);
    });
    rt.register("echo", &echo).unwrap();
    println!("child-node-ready {}", node.name());
    let mut sink = String::new();
    let _ = std::io::stdin().read_line(&mut sink);
    node.stop();
}

/// An embedded port mapper on an ephemeral loopback port.
pub(crate) fn port_mapper() -> Daemon {
    Daemon::start(DaemonConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..DaemonConfig::default()
    })
    .expect("a port mapper starts")
}

/// A unique node name for this test process.
pub(crate) fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A runtime and a node on it, registered with `mapper`.
pub(crate) fn node(mapper: &Daemon, name: &str) -> (Runtime, Node) {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let node = Node::builder(name)
        .cookie(COOKIE)
        .port_mapper(mapper.local_addr())
        .types(types())
        .functions(functions())
        .heartbeat(Duration::from_millis(200), Duration::from_secs(2))
        .start(&rt)
        .expect("the node starts");
    (rt, node)
}

/// The name of `node` as other nodes address it.
pub(crate) fn name_of(node: &Node) -> NodeName {
    node.name().clone()
}
