//! cargo run --release --example erlang_interop
//!
//! The seed's "Getting distributed" walkthrough with a real Erlang node in
//! place of one of ours. This program starts an epmd of its own (on a free
//! port, so a system epmd is left alone), makes itself a node that joins
//! Erlang's distribution as `interop@<host>` with the kernel's Erlang
//! functions, registers an agent `greeter`, and then runs an `erl -sname`
//! node that:
//!
//! 1. pings ours (`net_adm:ping`: `pong`),
//! 2. runs the parallel map of `inc` over `[2, 4, 6, 8, 10, 12, 14]` on our
//!    node with `rpc:call` and prints `[3,5,7,9,11,13,15]`,
//! 3. sends `{self(), <<"Erlang">>}` to `{greeter, Node}` and prints the
//!    greeting our agent answers.
//!
//! It needs `erl` and `epmd` (Debian: `apt-get install erlang-base`).

use std::io::Read;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use erlangen::net::erlang::{eetf, ErlangOptions, ErlangPids, Term};
use erlangen::net::{kernel, Node};
use erlangen::portmap::{Daemon, DaemonConfig};
use erlangen::Runtime;

/// The Erlang cookie both sides use.
const COOKIE: &str = "erlangen-interop-example";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("erlang_interop: {error}");
            ExitCode::FAILURE
        }
    }
}

/// A child process killed when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run() -> Result<(), String> {
    let epmd_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let _epmd = Child(
        Command::new("epmd")
            .args(["-port", &epmd_port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                format!("cannot run epmd ({e}); install Erlang: apt-get install erlang-base")
            })?,
    );
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", epmd_port)).is_err() {
        if started.elapsed() > Duration::from_secs(10) {
            return Err("epmd did not start".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }

    // Our node: a port mapper of its own for our protocol, and Erlang's
    // distribution with the kernel's Erlang functions.
    let mapper = Daemon::start(DaemonConfig {
        listen: "127.0.0.1:0".parse().expect("an address"),
        ..DaemonConfig::default()
    })
    .map_err(|e| e.to_string())?;
    let runtime = Runtime::new().map_err(|e| e.to_string())?;
    let options = kernel::standard_erlang_functions(ErlangOptions::new("interop"))
        .cookie(COOKIE.as_bytes())
        .epmd(([127, 0, 0, 1], epmd_port).into());
    let node = Node::builder(&format!("interop-{}", std::process::id()))
        .cookie(b"erlangen-interop-example")
        .port_mapper(mapper.local_addr())
        .erlang(options)
        .start(&runtime)
        .map_err(|e| e.to_string())?;
    let node = Arc::new(node);
    let name = node.erlang_name().expect("joined").to_owned();
    println!("ours:   node {name} is up (epmd on port {epmd_port})");

    // `greeter` answers `{From, Name}` with `{greeting, <<"Hello, Name, from Rust">>}`.
    let greeter_node = node.clone();
    runtime.spawn(move |ctx| {
        ctx.register("greeter").expect("the name is free");
        loop {
            let Ok(Term::Tuple(request)) = ctx.receive().downcast::<Term>() else {
                continue;
            };
            let [Term::Pid(from), Term::Binary(who)] = request.elements.as_slice() else {
                continue;
            };
            let Some(from) = greeter_node.erlang_pid(from) else {
                continue;
            };
            let text = format!("Hello, {}, from Rust", String::from_utf8_lossy(&who.bytes));
            println!("ours:   greeter answers {text:?}");
            ctx.send(
                &from,
                Term::from(eetf::Tuple::from(vec![
                    Term::from(eetf::Atom::from("greeting")),
                    Term::from(eetf::Binary::from(text.into_bytes())),
                ])),
            );
        }
    });

    let script = r#"
        Rust = list_to_atom(os:getenv("RUST_NODE")),
        io:format("erl:    net_adm:ping -> ~p~n", [net_adm:ping(Rust)]),
        io:format("erl:    rpc:call(~p, erlangen, parallel_map, [inc, [2,4,6,8,10,12,14]]) -> ~w~n",
                  [Rust, rpc:call(Rust, erlangen, parallel_map, [inc, [2,4,6,8,10,12,14]])]),
        {greeter, Rust} ! {self(), <<"Erlang">>},
        receive {greeting, Text} -> io:format("erl:    got ~s~n", [Text])
        after 10000 -> io:format("erl:    no greeting~n"), halt(1) end,
        io:format("erl:    nodes() -> ~p~n", [nodes()]),
        halt(0)"#;
    let mut erl = Child(
        Command::new("erl")
            .args(["-sname", &format!("shell{}", std::process::id())])
            .args(["-setcookie", COOKIE, "-noshell", "-eval", script])
            .env("ERL_EPMD_PORT", epmd_port.to_string())
            .env("ERL_CRASH_DUMP_SECONDS", "0")
            .env("RUST_NODE", &name)
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| {
                format!("cannot run erl ({e}); install Erlang: apt-get install erlang-base")
            })?,
    );
    let mut output = String::new();
    erl.0
        .stdout
        .take()
        .expect("piped")
        .read_to_string(&mut output)
        .map_err(|e| e.to_string())?;
    print!("{output}");
    let status = erl.0.wait().map_err(|e| e.to_string())?;
    if !status.success() || !output.contains("[3,5,7,9,11,13,15]") {
        return Err(format!(
            "the Erlang node did not finish its walkthrough ({status})"
        ));
    }
    Ok(())
}
