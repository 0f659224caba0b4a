//! cargo run --release --example demo
//!
//! A tour of the runtime on this machine: the port mapper (the one running
//! on 127.0.0.1:10001, or an embedded one started here if none runs), a
//! supervised crash, a kill, the registry, ping-pong, and a 111,111-agent
//! spawn tree, with what each took. (Nodes talking over TCP join this demo
//! when the `net` crate lands.)

use std::time::{Duration, Instant};

use erlangen::portmap::{self, Client, Daemon, DaemonConfig, KeepRegistered};
use erlangen::{Ctx, Down, ExitReason, Pid, Runtime, SpawnOptions};

/// Finds the host's port mapper, or starts an embedded one.
fn port_mapper() -> Result<(std::net::SocketAddr, Option<Daemon>), String> {
    let default = portmap::LISTEN_DEFAULT;
    if Client::connect(default).is_ok() {
        return Ok((default, None));
    }
    let daemon = Daemon::start(DaemonConfig::default())
        .or_else(|_| {
            // The default port is taken by something else: any free one.
            Daemon::start(DaemonConfig {
                listen: "127.0.0.1:0".parse().expect("a valid address"),
                ..DaemonConfig::default()
            })
        })
        .map_err(|e| format!("cannot start a port mapper: {e}"))?;
    Ok((daemon.local_addr(), Some(daemon)))
}

fn main() {
    // 0. The port mapper: nodes find each other's ports through it.
    let (mapper, embedded) = match port_mapper() {
        Ok(found) => found,
        Err(error) => {
            eprintln!("{error}");
            std::process::exit(1);
        }
    };
    let name = format!("demo-{}", std::process::id());
    let keeper = match KeepRegistered::start(mapper, &name, 4370) {
        Ok(keeper) => keeper,
        Err(error) => {
            eprintln!("cannot register with the port mapper: {error}");
            std::process::exit(1);
        }
    };
    keeper.wait_registrations(1, Duration::from_secs(10));
    let listed = Client::connect(mapper).and_then(|mut c| c.names());
    println!(
        "0. port mapper at {mapper} ({}); registered {name:?}; it lists {:?}",
        if embedded.is_some() {
            "embedded, none was running"
        } else {
            "already running"
        },
        listed.unwrap_or_default()
    );

    let rt = match Runtime::new() {
        Ok(rt) => rt,
        Err(error) => {
            eprintln!("cannot start the runtime: {error}");
            std::process::exit(1);
        }
    };
    println!("runtime: {} pinned workers", rt.workers());
    let outcome = rt.run(tour);
    if let Err(reason) = outcome {
        eprintln!("the demo's root agent exited: {reason}");
        std::process::exit(1);
    }
    keeper.stop();
    drop(embedded);
    let pool = rt.stack_pool_stats();
    println!(
        "stack pool: {} slab(s), {} slots carved, guard pages by {}",
        pool.slabs,
        pool.slots_carved,
        if pool.guard_install {
            "MADV_GUARD_INSTALL"
        } else {
            "mprotect"
        }
    );
}

fn tour(ctx: &mut Ctx) {
    // 1. A monitored child panics: the panic becomes its exit reason.
    let child = ctx
        .spawn_with(SpawnOptions::new().monitor(), |_: &mut Ctx| -> u32 {
            panic!("the answer is not 41")
        })
        .expect("valid options");
    let down = ctx.receive().downcast::<Down>().expect("a notification");
    println!("1. monitored {} crashed: {}", child, down.status);

    // 2. A suspended agent is killed at once.
    let sleeper = ctx
        .spawn_with(SpawnOptions::new().monitor(), |ctx: &mut Ctx| {
            ctx.sleep(Duration::from_secs(3600));
        })
        .expect("valid options");
    ctx.kill(&sleeper, ExitReason::other("enough"));
    let down = ctx.receive().downcast::<Down>().expect("a notification");
    println!("2. killed sleeping {}: {}", sleeper, down.status);

    // 3. The registry: a name is released when its agent exits.
    let me = ctx.pid();
    let named = ctx.spawn(move |ctx: &mut Ctx| {
        ctx.register("greeter").expect("name is free");
        ctx.send(&me, ());
        let who = ctx.receive().downcast::<Pid>().expect("a pid");
        ctx.send(&who, "hello from greeter");
    });
    ctx.receive();
    ctx.send_named("greeter", ctx.pid())
        .expect("greeter is registered");
    let greeting = ctx.receive().downcast::<&str>().expect("a greeting");
    while ctx.whereis("greeter").is_some() {
        ctx.sleep(Duration::from_millis(1));
    }
    println!(
        "3. {named} said {greeting:?}; its name is released: {:?}",
        ctx.registered()
    );

    // 4. Ping-pong on one worker.
    const ROUNDS: u32 = 1_000_000;
    let me = ctx.pid();
    let ponger = ctx.spawn(move |ctx: &mut Ctx| {
        for _ in 0..ROUNDS {
            let n = ctx.receive().downcast::<u32>().unwrap_or(0);
            ctx.send(&me, n);
        }
    });
    let started = Instant::now();
    for n in 0..ROUNDS {
        ctx.send(&ponger, n);
        ctx.receive();
    }
    let elapsed = started.elapsed();
    println!(
        "4. {ROUNDS} ping-pong round trips: {:.0} ns each",
        elapsed.as_nanos() as f64 / f64::from(ROUNDS)
    );

    // 5. A spawn tree of 111,111 agents summing their leaves (skynet, 1/10).
    let started = Instant::now();
    let me = ctx.pid();
    ctx.spawn(move |ctx: &mut Ctx| skynet(ctx, me, 0, 100_000));
    let sum = ctx.receive().downcast::<u64>().expect("a sum");
    println!(
        "5. 111,111 agents summed their leaves to {sum} in {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
}

fn skynet(ctx: &mut Ctx, parent: Pid, number: u64, size: u64) {
    if size == 1 {
        ctx.send(&parent, number);
        return;
    }
    let me = ctx.pid();
    let step = size / 10;
    for i in 0..10 {
        let me = me.clone();
        ctx.spawn(move |ctx: &mut Ctx| skynet(ctx, me, number + i * step, step));
    }
    let sum: u64 = (0..10)
        .map(|_| ctx.receive().downcast::<u64>().unwrap_or(0))
        .sum();
    ctx.send(&parent, sum);
}
