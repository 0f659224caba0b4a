//! cargo run --release --example demo
//!
//! A tour of the runtime on this machine: a supervised crash, a kill, the
//! registry, ping-pong, and a 111,111-agent spawn tree, with what each took.
//! (Nodes and the port mapper join this demo when the `net` crate lands.)

use std::time::{Duration, Instant};

use erlangen::{Ctx, Down, ExitReason, Pid, Runtime, SpawnOptions};

fn main() {
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
