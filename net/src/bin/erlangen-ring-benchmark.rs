//! `erlangen-ring-benchmark [n-hops] [n-agents] [timeout]`: the seed's ring
//! benchmark. `n-agents` agents in a ring pass a token `n-hops` times, then
//! it prints the hops per second and the microseconds per hop. With
//! `--remote host/node`, every other ring member runs on that node (a
//! kernel), so every hop crosses the network.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use erlangen_net::{Kernel, Node, NodeName, WirePid};
use erlangen_runtime::{Ctx, Pid, Runtime, SpawnOptions};

/// The command line.
#[derive(Debug, Parser)]
#[command(name = "erlangen-ring-benchmark", about = "Erlangen's ring benchmark.")]
struct Args {
    /// Hops of the token.
    #[arg(default_value_t = 1_000_000)]
    n_hops: u64,
    /// Ring members (at least 2).
    #[arg(default_value_t = 10)]
    n_agents: u64,
    /// Give up after this many seconds.
    #[arg(default_value_t = 60)]
    timeout: u64,
    /// Put every other ring member on this node (host/node), a kernel.
    #[arg(long)]
    remote: Option<NodeName>,
    /// The port mapper (with --remote).
    #[arg(long, default_value = "127.0.0.1:10001")]
    port_mapper: std::net::SocketAddr,
    /// How logs are written to stderr: text, or one JSON object per line.
    #[arg(long, value_enum, default_value_t = erlangen_portmap::logging::LogFormat::Text)]
    log_format: erlangen_portmap::logging::LogFormat,
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(error) if !error.use_stderr() => {
            let _ = error.print();
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            let text = error.to_string();
            eprintln!(
                "erlangen-ring-benchmark: {} (see --help)",
                text.lines().next().unwrap_or("bad arguments")
            );
            return ExitCode::from(2);
        }
    };
    if args.n_agents < 2 {
        eprintln!("erlangen-ring-benchmark: n-agents must be at least 2");
        return ExitCode::from(2);
    }
    erlangen_portmap::logging::init(args.log_format);
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("erlangen-ring-benchmark: {error}");
            ExitCode::FAILURE
        }
    }
}

/// A local ring member: passes the token on, one hop less.
fn hop(ctx: &mut Ctx, next: Pid) {
    while let Ok(hops) = ctx.receive().downcast::<u64>() {
        ctx.send(&next, hops.saturating_sub(1));
        if hops == 0 {
            return;
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let runtime = Runtime::new().map_err(|e| e.to_string())?;
    let node = match &args.remote {
        Some(_) => {
            let (types, functions) = Kernel::standard().into_parts();
            let node = Node::builder(&format!("ring-benchmark-{}", std::process::id()))
                .port_mapper(args.port_mapper)
                .types(types)
                .functions(functions)
                .start(&runtime)
                .map_err(|e| e.to_string())?;
            Some(std::sync::Arc::new(node))
        }
        None => None,
    };
    let (hops, members, remote) = (args.n_hops, args.n_agents, args.remote.clone());
    let deadline = Duration::from_secs(args.timeout);
    let elapsed = runtime
        .run(move |ctx| -> Result<Duration, String> {
            // The driver is member 0; build the others from the last back.
            let mut next = ctx.pid();
            for i in (1..members).rev() {
                let after = next.clone();
                next = match (&node, &remote, i % 2) {
                    (Some(node), Some(remote), 1) => node
                        .spawn(ctx, remote, "ring-hop", WirePid(after), SpawnOptions::new())
                        .map_err(|e| e.to_string())?,
                    _ => ctx.spawn(move |ctx| hop(ctx, after)),
                };
            }
            let started = Instant::now();
            ctx.send(&next, hops);
            loop {
                let token = ctx
                    .receive_timeout(deadline)
                    .map_err(|_| format!("the ring stalled ({} s)", deadline.as_secs()))?
                    .downcast::<u64>()
                    .map_err(|_| "the ring passed something else".to_owned())?;
                if token == 0 {
                    return Ok(started.elapsed());
                }
                ctx.send(&next, token - 1);
            }
        })
        .map_err(|reason| reason.to_string())??;
    let per_second = args.n_hops as f64 / elapsed.as_secs_f64();
    println!(
        "{} hops around {} agents in {:.3} seconds.",
        args.n_hops,
        args.n_agents,
        elapsed.as_secs_f64()
    );
    println!(
        "That’s {per_second:.0} hops per second, {:.3} microseconds per hop.",
        1e6 / per_second
    );
    Ok(())
}
