//! Helpers: a port mapper, runtimes and nodes for tests.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use erlangen_net::{Functions, Node, NodeName, Types};
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
    Types::new().register::<Ping>("test/ping")
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
