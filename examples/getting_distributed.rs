//! cargo run --release --example getting_distributed
//!
//! The seed README's "Getting Distributed" walkthrough. With a port mapper
//! and a kernel named `map-node` running on this host:
//!
//! ```sh
//! cargo run --release -p erlangen-portmap --bin erlangen-port-mapper &
//! cargo run --release -p erlangen-net --bin erlangen-kernel -- --name map-node &
//! cargo run --release --example getting_distributed
//! ```
//!
//! it makes this program a node, spawns the parallel map of `inc` over
//! `[2, 4, 6, 8, 10, 12, 14]` on `map-node` with a monitor, and prints the
//! result from the `Down` notification: `[3, 5, 7, 9, 11, 13, 15]`.
//! `ERLANGEN_PORT_MAPPER` names another port mapper than 127.0.0.1:10001.
//! The cookie is `ERLANGEN_COOKIE` or `~/.erlangen-cookie`, as for the
//! kernel.

use std::process::ExitCode;
use std::time::Duration;

use erlangen::net::kernel::MapRequest;
use erlangen::net::{Kernel, Node, NodeName};
use erlangen::{Down, Runtime, SpawnOptions};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("getting_distributed: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let port_mapper = match std::env::var("ERLANGEN_PORT_MAPPER") {
        Ok(addr) => addr
            .parse()
            .map_err(|e| format!("ERLANGEN_PORT_MAPPER: {e}"))?,
        Err(_) => erlangen::portmap::LISTEN_DEFAULT,
    };
    let runtime = Runtime::new().map_err(|e| e.to_string())?;
    // (spawn '(node :host "localhost"))
    let (types, functions) = Kernel::standard().into_parts();
    let node = Node::builder(&format!("getting-distributed-{}", std::process::id()))
        .port_mapper(port_mapper)
        .types(types)
        .functions(functions)
        .start(&runtime)
        .map_err(|e| e.to_string())?;
    let map_node: NodeName = "localhost/map-node".parse().map_err(|e| format!("{e}"))?;
    // (spawn '(erlangen.examples:parallel-map 1+ #(2 4 6 8 10 12 14))
    //        :attach :monitor :node "map-node")
    // (receive)
    let down = runtime
        .run(move |ctx| {
            let request = MapRequest {
                function: "inc".to_owned(),
                values: vec![2i64, 4, 6, 8, 10, 12, 14],
                level: 2,
            };
            node.spawn(
                ctx,
                &map_node,
                "parallel-map/i64",
                request,
                SpawnOptions::new().monitor(),
            )
            .map_err(|e| e.to_string())?;
            let message = ctx
                .receive_timeout(Duration::from_secs(30))
                .map_err(|_| "no answer from map-node within 30 s".to_owned())?;
            message
                .downcast::<Down>()
                .map_err(|other| format!("expected a Down, got {other:?}"))
        })
        .map_err(|reason| reason.to_string())??;
    println!("{} {}", down.pid, down.status);
    let values = down
        .status
        .value()
        .and_then(|value| value.downcast_ref::<Vec<i64>>().cloned())
        .ok_or_else(|| format!("map-node's agent exited: {}", down.status))?;
    println!("{values:?}");
    Ok(())
}
