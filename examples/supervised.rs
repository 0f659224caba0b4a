//! cargo run --release --example supervised
//!
//! A key-value server under a supervisor, called as a new user would:
//! a crash and its restart under the same name, then a worker on another
//! node whose node is lost. Everything runs in this process (an embedded
//! port mapper on an ephemeral port, two nodes); nothing is left behind.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use erlangen::net::{Functions, Node, Types};
use erlangen::portmap::{Daemon, DaemonConfig};
use erlangen::server::{start_server, Reply, Server, ServerOptions, ServerRef};
use erlangen::supervisor::{
    start_supervisor, ChildInfo, ChildSpec, Restart, Strategy, SupervisorRequest, SupervisorSpec,
};
use erlangen::{CallError, Ctx, Down, ReplyTo, Runtime, SpawnOptions};

/// The store: `Get("boom")` crashes it.
#[derive(Default)]
struct Kv(HashMap<String, String>);

#[derive(Debug)]
enum Request {
    Put(String, String),
    Get(String),
}

impl Server for Kv {
    type Request = Request;
    type Reply = Option<String>;
    type Cast = ();

    fn handle_call(
        &mut self,
        _ctx: &Ctx,
        request: Request,
        _from: &ReplyTo,
    ) -> Reply<Option<String>> {
        match request {
            Request::Put(key, value) => Reply::Reply(self.0.insert(key, value)),
            Request::Get(key) if key == "boom" => panic!("the store crashed on {key:?}"),
            Request::Get(key) => Reply::Reply(self.0.get(&key).cloned()),
        }
    }
}

const CALL_TIMEOUT: Duration = Duration::from_secs(5);

fn kv(ctx: &Ctx) -> ServerRef<Kv> {
    loop {
        if let Some(pid) = ctx.whereis("kv") {
            return ServerRef::from_pid(pid);
        }
        ctx.sleep(Duration::from_millis(1));
    }
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Failure> {
    let mapper = Daemon::start(DaemonConfig {
        listen: "127.0.0.1:0".parse()?,
        ..DaemonConfig::default()
    })?;
    let (here, there) = (Runtime::new()?, Runtime::new()?);
    let id = std::process::id();
    let home = Node::builder(&format!("supervised-home-{id}"))
        .cookie(b"supervised example")
        .port_mapper(mapper.local_addr())
        .types(Types::new())
        .start(&here)?;
    let away = Node::builder(&format!("supervised-away-{id}"))
        .cookie(b"supervised example")
        .port_mapper(mapper.local_addr())
        .functions(
            Functions::new().register("worker", |ctx: &mut Ctx, (): ()| {
                ctx.receive();
            }),
        )
        .start(&there)?;
    let away_name = away.name().clone();
    let home = Arc::new(home);
    let mut away = Some(away);
    let node = home.clone();

    here.run(move |ctx| -> Result<(), Failure> {
        // 1. A supervised server, a crash, a restart.
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .intensity(5, Duration::from_secs(10))
            .child(ChildSpec::new("kv", |ctx: &Ctx| {
                start_server(ctx, Kv::default(), ServerOptions::new().name("kv")).map(|s| s.pid)
            }))
            .child(
                ChildSpec::new("remote-worker", move |ctx: &Ctx| {
                    node.spawn(ctx, &away_name, "worker", (), SpawnOptions::new())
                        .map_err(|e| erlangen::Error::System(e.to_string()))
                })
                .restart(Restart::Transient),
            );
        let sup = start_supervisor(ctx, spec)?;
        let store = kv(ctx);
        store.call(
            ctx,
            Request::Put("greeting".into(), "hello".into()),
            CALL_TIMEOUT,
        )?;
        println!(
            "stored:   greeting = {:?}",
            store.call(ctx, Request::Get("greeting".into()), CALL_TIMEOUT)?
        );
        match store.call(ctx, Request::Get("boom".into()), CALL_TIMEOUT) {
            Err(CallError::Exit(status)) => println!("crashed:  the call failed at once: {status}"),
            other => println!("unexpected: {other:?}"),
        }
        let restarted = kv(ctx);
        println!(
            "restart:  kv is back as {} (was {}), empty again: {:?}",
            restarted.pid,
            store.pid,
            restarted.call(ctx, Request::Get("greeting".into()), CALL_TIMEOUT)?
        );

        // 2. A worker on another node, and that node lost.
        let children = ctx
            .call(&sup, SupervisorRequest::WhichChildren, CALL_TIMEOUT)?
            .downcast::<Vec<ChildInfo>>()
            .map_err(|_| "a supervisor answers WhichChildren with Vec<ChildInfo>")?;
        for child in &children {
            println!(
                "child:    {:14} {}",
                child.id,
                child.pid.as_ref().map_or("-".to_owned(), |p| p.to_string())
            );
        }
        let watch = ctx.watch(&sup)?;
        if let Some(away) = away.take() {
            away.stop();
        }
        println!("lost:     the other node stopped; its worker's supervisor hears noconnection");
        // The restart on a lost node fails each time: past its intensity
        // the supervisor ends with `shutdown`, as OTP's does.
        let down = ctx
            .receive_match(|m| m.downcast_ref::<erlangen::WatchDown>().is_some())
            .downcast::<erlangen::WatchDown>()
            .map_err(|_| "matched above")?;
        assert_eq!(down.watch, watch);
        println!("gave up:  the supervisor ended: {}", down.status);
        // Its monitor of us (start_supervisor) fired too.
        let _ = ctx.receive_match(|m| m.downcast_ref::<Down>().is_some());
        Ok(())
    })??;
    drop(home);
    Ok(())
}
