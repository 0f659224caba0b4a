//! cargo run --release --example demo
//!
//! A tour of Erlangen for Rust on this machine, with what each step took:
//!
//! * agents: a supervised crash, a kill, the registry, ping-pong, a
//!   111,111-agent spawn tree;
//! * nodes: the port mapper (the one running on 127.0.0.1:10001, or an
//!   embedded one started here), a kernel launched as a child process, a
//!   remote spawn, the seed's parallel map on the other node, a crash there
//!   reaching a monitor here, a registered name there, and the kernel
//!   killed mid-conversation with every link and monitor to it firing
//!   `noconnection`.
//!
//! It needs nothing else running and leaves no process behind: the child
//! kernel dies with this process (PR_SET_PDEATHSIG), on success, on
//! failure, and on Ctrl-C. `ERLANGEN_PORT_MAPPER` names another port
//! mapper address (port 0: always start an embedded one).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use erlangen::net::kernel::MapRequest;
use erlangen::net::{Functions, Kernel, Node, NodeName, WirePid};
use erlangen::portmap::{self, Client, Daemon, DaemonConfig};
use erlangen::{Ctx, Down, ExitReason, ExitStatus, Pid, Runtime, SpawnOptions};

/// How long the demo waits for anything before it gives up.
const HANG_GUARD: Duration = Duration::from_secs(30);

/// Set in the child process that runs the demo's kernel.
const KERNEL_MODE: &str = "ERLANGEN_DEMO_KERNEL";

fn main() -> ExitCode {
    if std::env::var_os(KERNEL_MODE).is_some() {
        return kernel_main();
    }
    // An agent's panic is reported in one line that names the agent
    // (the runtime's panic hook), so the expected crash below reads as part
    // of the story.
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("demo: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The child: a standard kernel with two demo functions, which dies with
/// its parent.
fn kernel_main() -> ExitCode {
    // SAFETY: prctl(PR_SET_PDEATHSIG) only sets a flag of this process.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
    Kernel::standard()
        .types(demo_types)
        .functions(demo_functions)
        .main()
}

fn demo_types(types: erlangen::net::Types) -> erlangen::net::Types {
    types.register::<(String, WirePid)>("demo/greeting")
}

fn demo_functions(functions: Functions) -> Functions {
    functions
        .register("crash", |_ctx: &mut Ctx, why: String| -> u64 {
            panic!("{why}")
        })
        .register("greeter", |ctx: &mut Ctx, (): ()| {
            ctx.register("greeter").expect("the name is free");
            loop {
                let Ok((name, reply_to)) = ctx.receive().downcast::<(String, WirePid)>() else {
                    return;
                };
                ctx.send(&reply_to.0, format!("hello, {name}, from the other node"));
            }
        })
}

/// Finds the port mapper, or starts an embedded one.
fn port_mapper() -> Result<(SocketAddr, Option<Daemon>), String> {
    let wanted = match std::env::var("ERLANGEN_PORT_MAPPER") {
        Ok(addr) => addr
            .parse()
            .map_err(|e| format!("ERLANGEN_PORT_MAPPER: {e}"))?,
        Err(_) => portmap::LISTEN_DEFAULT,
    };
    if wanted.port() != 0 && Client::connect(wanted).is_ok() {
        return Ok((wanted, None));
    }
    let start = |listen| {
        Daemon::start(DaemonConfig {
            listen,
            ..DaemonConfig::default()
        })
    };
    let daemon = start(wanted)
        .or_else(|_| start("127.0.0.1:0".parse().expect("a valid address")))
        .map_err(|e| format!("cannot start a port mapper: {e}"))?;
    Ok((daemon.local_addr(), Some(daemon)))
}

/// The child kernel; killed and reaped when dropped.
struct ChildKernel {
    child: Child,
    name: NodeName,
}

impl ChildKernel {
    fn start(port_mapper: SocketAddr, cookie: &str) -> Result<ChildKernel, String> {
        let name = format!("demo-kernel-{}", std::process::id());
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut child = Command::new(exe)
            .args(["--name", &name, "--workers", "1"])
            .args(["--port-mapper", &port_mapper.to_string()])
            .env(KERNEL_MODE, "1")
            .env("ERLANGEN_COOKIE", cookie)
            // The demo's crash is expected: no backtrace to symbolize.
            .env("RUST_BACKTRACE", "0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot launch the kernel: {e}"))?;
        let stdout = child.stdout.take().expect("piped");
        let mut kernel = ChildKernel {
            child,
            name: format!("localhost/{name}")
                .parse()
                .map_err(|e| format!("{e}"))?,
        };
        let ready = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|line| line.contains("listening on"));
        if !ready {
            let status = kernel.child.wait().map_err(|e| e.to_string())?;
            return Err(format!("the kernel did not start ({status})"));
        }
        Ok(kernel)
    }
}

impl Drop for ChildKernel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run() -> Result<(), String> {
    let runtime = Runtime::new().map_err(|e| e.to_string())?;
    println!("runtime: {} pinned workers", runtime.workers());
    runtime
        .run(agents_tour)
        .map_err(|reason| format!("the agents tour exited: {reason}"))?;

    // Nodes. 6. The port mapper: nodes find each other's ports through it.
    let (mapper, embedded) = port_mapper()?;
    println!(
        "6. port mapper at {mapper} ({})",
        if embedded.is_some() {
            "embedded: none was running"
        } else {
            "already running"
        }
    );
    let mut cookie_bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut cookie_bytes))
        .map_err(|e| format!("no randomness for the cookie: {e}"))?;
    let cookie: String = cookie_bytes.iter().map(|b| format!("{b:02x}")).collect();
    let started = Instant::now();
    let kernel = ChildKernel::start(mapper, &cookie)?;
    let kernel_pid = kernel.child.id();
    let (types, functions) = Kernel::standard()
        .types(demo_types)
        .functions(demo_functions)
        .into_parts();
    let node = Node::builder(&format!("demo-{}", std::process::id()))
        .cookie(cookie.as_bytes())
        .port_mapper(mapper)
        .types(types)
        .functions(functions)
        .heartbeat(Duration::from_millis(250), Duration::from_secs(2))
        .start(&runtime)
        .map_err(|e| e.to_string())?;
    println!(
        "7. node {} and a kernel {} (OS process {kernel_pid}) up in {:.1} ms",
        node.name(),
        kernel.name,
        ms(started)
    );
    let node = Arc::new(node);
    let (tour_node, kernel_name) = (node.clone(), kernel.name.clone());
    let kernel = std::sync::Mutex::new(Some(kernel));
    let kill_kernel = Arc::new(move || {
        if let Some(kernel) = kernel.lock().map(|mut k| k.take()).unwrap_or(None) {
            drop(kernel);
        }
    });
    let killer = kill_kernel.clone();
    runtime
        .run(move |ctx| nodes_tour(ctx, &tour_node, &kernel_name, &*killer))
        .map_err(|reason| format!("the nodes tour exited: {reason}"))??;
    kill_kernel();
    // SAFETY: kill(pid, 0) only checks that the process exists.
    let gone = unsafe { libc::kill(kernel_pid as i32, 0) } != 0;
    println!("13. the kernel process {kernel_pid} is gone: {gone}");
    drop(node);
    drop(embedded);
    Ok(())
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

fn nodes_tour(
    ctx: &mut Ctx,
    node: &Node,
    kernel: &NodeName,
    kill_kernel: &dyn Fn(),
) -> Result<(), String> {
    let error = |e: erlangen::net::NetError| e.to_string();
    let next_down = |ctx: &Ctx| -> Result<Down, String> {
        ctx.receive_match_timeout(|m| m.is::<Down>(), HANG_GUARD)
            .map_err(|_| "no notification within 30 s".to_owned())?
            .downcast::<Down>()
            .map_err(|_| "expected a Down".to_owned())
    };

    // 8. A remote spawn, and a round trip to the new agent.
    let started = Instant::now();
    let echo = node
        .spawn(ctx, kernel, "echo", WirePid(ctx.pid()), SpawnOptions::new())
        .map_err(error)?;
    let spawned = ms(started);
    let started = Instant::now();
    ctx.send(&echo, String::from("ping"));
    let pong = ctx
        .receive_timeout(Duration::from_secs(10))
        .map_err(|_| "no echo".to_owned())?;
    println!(
        "8. spawned {echo} on {kernel} in {spawned:.2} ms; it echoed {:?} in {:.2} ms",
        pong.downcast_ref::<String>(),
        ms(started)
    );

    // 9. The seed's parallel map, on the other node.
    let started = Instant::now();
    let request = MapRequest {
        function: "inc".to_owned(),
        values: vec![2i64, 4, 6, 8, 10, 12, 14],
        level: 2,
    };
    node.spawn(
        ctx,
        kernel,
        "parallel-map/i64",
        request,
        SpawnOptions::new().monitor(),
    )
    .map_err(error)?;
    let down = next_down(ctx)?;
    println!(
        "9. parallel map of inc on {kernel}: {} ({:.2} ms)",
        down.status,
        ms(started)
    );

    // 10. A crash over there reaches a monitor here.
    let started = Instant::now();
    let crasher = node
        .spawn(
            ctx,
            kernel,
            "crash",
            String::from("a crash on the other node"),
            SpawnOptions::new().monitor(),
        )
        .map_err(error)?;
    let down = next_down(ctx)?;
    println!(
        "10. monitored {crasher} there: {} ({:.2} ms)",
        down.status,
        ms(started)
    );

    // 11. A registered name on the other node.
    let started = Instant::now();
    let greeter = node
        .spawn(ctx, kernel, "greeter", (), SpawnOptions::new())
        .map_err(error)?;
    // A first word by pid: once it answers, it has registered its name
    // (the spawn's reply may arrive before the agent ran).
    ctx.send(&greeter, (String::from("first"), WirePid(ctx.pid())));
    ctx.receive_match_timeout(|m| m.is::<String>(), HANG_GUARD)
        .map_err(|_| "the greeter did not answer".to_owned())?;
    node.send_named(
        ctx,
        kernel,
        "greeter",
        (String::from("demo"), WirePid(ctx.pid())),
    );
    let greeting = ctx
        .receive_match_timeout(|m| m.is::<String>(), HANG_GUARD)
        .map_err(|_| "the greeter did not answer by name".to_owned())?
        .downcast::<String>()
        .unwrap_or_default();
    println!(
        "11. {kernel}'s \"greeter\" said {greeting:?} ({:.2} ms)",
        ms(started)
    );

    // 12. The kernel killed mid-conversation: every link and monitor to
    //     it fires noconnection.
    let me = ctx.pid();
    let mut watchers = Vec::new();
    for i in 0..3 {
        let far = node
            .spawn(
                ctx,
                kernel,
                "echo",
                WirePid(me.clone()),
                SpawnOptions::new(),
            )
            .map_err(error)?;
        ctx.monitor(&far).map_err(|e| e.to_string())?;
        let linked = ctx
            .spawn_with(SpawnOptions::new().monitor(), move |ctx| {
                ctx.link(&far).expect("link");
                loop {
                    ctx.send(&far, format!("talk {i}"));
                    ctx.sleep(Duration::from_millis(5));
                }
            })
            .map_err(|e| e.to_string())?;
        watchers.push(linked);
    }
    ctx.sleep(Duration::from_millis(50));
    let started = Instant::now();
    kill_kernel();
    let mut noconnection = 0;
    for _ in 0..6 {
        let down = next_down(ctx)?;
        let reason = down.status.reason().cloned();
        let fired = match reason {
            Some(ExitReason::NoConnection) => true,
            Some(ExitReason::Linked(status)) => {
                matches!(*status, ExitStatus::Exit(ExitReason::NoConnection))
            }
            _ => false,
        };
        noconnection += usize::from(fired);
    }
    println!(
        "12. killed the kernel mid-conversation: {noconnection} of 6 links and monitors fired noconnection in {:.1} ms",
        ms(started)
    );
    let _ = ctx.flush();
    if noconnection != 6 {
        return Err(format!("only {noconnection} of 6 fired noconnection"));
    }
    Ok(())
}

fn agents_tour(ctx: &mut Ctx) {
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
