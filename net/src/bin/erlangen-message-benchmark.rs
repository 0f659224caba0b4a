//! `erlangen-message-benchmark [n-messages] [n-pairs] [timeout]`: the
//! seed's message benchmark. Each of `n-pairs` spammers sends `i` to its
//! incrementer, which answers `i + 1`, until `i ≥ n-messages / 2`; then it
//! prints "Sent X million messages in Y seconds." and "That’s Z messages
//! per second.". With `--remote host/node`, every incrementer runs on that
//! node (a kernel), so every message crosses the network.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use erlangen_net::kernel::Increment;
use erlangen_net::{Kernel, Node, NodeName, WirePid};
use erlangen_runtime::{Ctx, Runtime, SpawnOptions};

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "erlangen-message-benchmark",
    about = "Erlangen's ping-pong message benchmark."
)]
struct Args {
    /// Messages per pair (each round trip is two).
    #[arg(default_value_t = 1_000_000)]
    n_messages: u64,
    /// Spammer/incrementer pairs.
    #[arg(default_value_t = 1)]
    n_pairs: u64,
    /// Give up after this many seconds.
    #[arg(default_value_t = 60)]
    timeout: u64,
    /// Put every incrementer on this node (host/node), a kernel.
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
                "erlangen-message-benchmark: {} (see --help)",
                text.lines().next().unwrap_or("bad arguments")
            );
            return ExitCode::from(2);
        }
    };
    erlangen_portmap::logging::init(args.log_format);
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("erlangen-message-benchmark: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let runtime = Runtime::new().map_err(|e| e.to_string())?;
    let node = match &args.remote {
        Some(_) => {
            let (types, functions) = Kernel::standard().into_parts();
            let node = Node::builder(&format!("message-benchmark-{}", std::process::id()))
                .port_mapper(args.port_mapper)
                .types(types)
                .functions(functions)
                .start(&runtime)
                .map_err(|e| e.to_string())?;
            Some(std::sync::Arc::new(node))
        }
        None => None,
    };
    let (n, pairs, remote) = (args.n_messages, args.n_pairs, args.remote.clone());
    let deadline = Duration::from_secs(args.timeout);
    let elapsed = runtime
        .run(move |ctx| -> Result<Duration, String> {
            let me = ctx.pid();
            let mut incrementers = Vec::new();
            for _ in 0..pairs {
                let incrementer = match (&node, &remote) {
                    (Some(node), Some(remote)) => node
                        .spawn(ctx, remote, "incrementer", (), SpawnOptions::new())
                        .map_err(|e| e.to_string())?,
                    _ => ctx.spawn(incrementer),
                };
                incrementers.push(incrementer);
            }
            let started = Instant::now();
            for incrementer in incrementers {
                let me = me.clone();
                ctx.spawn(move |ctx| {
                    let reply_to = WirePid(ctx.pid());
                    let mut i = 0u64;
                    while i < n / 2 {
                        ctx.send(
                            &incrementer,
                            Increment {
                                reply_to: reply_to.clone(),
                                n: i,
                            },
                        );
                        i = ctx.receive().downcast::<u64>().unwrap_or(u64::MAX);
                    }
                    ctx.kill(&incrementer, erlangen_runtime::ExitReason::other("done"));
                    ctx.send(&me, ());
                });
            }
            for _ in 0..pairs {
                ctx.receive_timeout(deadline)
                    .map_err(|_| format!("no result within {} s", deadline.as_secs()))?;
            }
            Ok(started.elapsed())
        })
        .map_err(|reason| reason.to_string())??;
    let messages = (args.n_messages / 2 * 2 * args.n_pairs) as f64;
    println!(
        "Sent {} million messages in {:.3} seconds.",
        messages / 1e6,
        elapsed.as_secs_f64()
    );
    println!(
        "That’s {:.0} messages per second.",
        messages / elapsed.as_secs_f64()
    );
    Ok(())
}

/// A local incrementer: answers `n + 1`.
fn incrementer(ctx: &mut Ctx) {
    while let Ok(request) = ctx.receive().downcast::<Increment>() {
        ctx.send(&request.reply_to.0, request.n + 1);
    }
}
