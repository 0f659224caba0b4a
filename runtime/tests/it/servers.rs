//! Servers (OTP's `gen_server`) and the program a new user writes first: a
//! key-value server under a supervisor, called by many clients.

use std::collections::HashMap;
use std::time::Duration;

use erlangen_runtime::server::{start_server, Reply, Server, ServerOptions, ServerRef};
use erlangen_runtime::supervisor::{start_supervisor, ChildSpec, Strategy, SupervisorSpec};
use erlangen_runtime::{CallError, Ctx, ExitReason, ExitStatus, ReplyTo};

use crate::support::{runtime, HANG_GUARD};

/// A key-value store; reading the key "crash" crashes it.
#[derive(Default)]
struct Kv(HashMap<String, u64>);

#[derive(Debug)]
enum KvRequest {
    Put(String, u64),
    Get(String),
}

impl Server for Kv {
    type Request = KvRequest;
    type Reply = Option<u64>;
    type Cast = ();

    fn handle_call(
        &mut self,
        _ctx: &Ctx,
        request: KvRequest,
        _from: &ReplyTo,
    ) -> Reply<Option<u64>> {
        match request {
            KvRequest::Put(key, value) => Reply::Reply(self.0.insert(key, value)),
            KvRequest::Get(key) if key == "crash" => panic!("crash on purpose"),
            KvRequest::Get(key) => Reply::Reply(self.0.get(&key).copied()),
        }
    }
}

#[test]
fn a_server_answers_typed_calls_and_defers_a_reply() {
    // gen_server_SUITE: call_remote1's local shape, and its deferred
    // replies (a handler that keeps `From` and answers later).
    struct Deferring(Option<ReplyTo>);
    impl Server for Deferring {
        type Request = u32;
        type Reply = u32;
        type Cast = u32;
        fn handle_call(&mut self, _ctx: &Ctx, request: u32, from: &ReplyTo) -> Reply<u32> {
            if request == 0 {
                self.0 = Some(from.clone());
                return Reply::NoReply;
            }
            Reply::Reply(request * 2)
        }
        fn handle_cast(&mut self, ctx: &Ctx, request: u32) -> erlangen_runtime::server::Flow {
            if let Some(from) = self.0.take() {
                ctx.reply(&from, request);
            }
            erlangen_runtime::server::Flow::Continue
        }
    }
    let rt = runtime(2);
    let (doubled, deferred) = rt
        .run(|ctx| {
            let server = start_server(ctx, Deferring(None), ServerOptions::new()).unwrap();
            let doubled = server.call(ctx, 21, HANG_GUARD).unwrap();
            let s = server.clone();
            ctx.spawn(move |ctx| {
                ctx.sleep(Duration::from_millis(10));
                s.cast(ctx, 99);
            });
            (doubled, server.call(ctx, 0, HANG_GUARD).unwrap())
        })
        .unwrap();
    assert_eq!((doubled, deferred), (42, 99));
}

#[test]
fn a_started_server_is_registered_and_a_failed_init_fails_the_start() {
    // gen_server_SUITE: start (start_link returns after init, name
    // registered; an init that fails is the start's error).
    struct Failing;
    impl Server for Failing {
        type Request = ();
        type Reply = ();
        type Cast = ();
        fn init(&mut self, _ctx: &Ctx) -> Result<(), ExitReason> {
            Err(ExitReason::other("no database"))
        }
        fn handle_call(&mut self, _ctx: &Ctx, _request: (), _from: &ReplyTo) -> Reply<()> {
            Reply::Reply(())
        }
    }
    let rt = runtime(1);
    let (registered, failed) = rt
        .run(|ctx| {
            let kv = start_server(ctx, Kv::default(), ServerOptions::new().name("kv")).unwrap();
            let registered = ctx.whereis("kv") == Some(kv.pid.clone());
            let failed = start_server(ctx, Failing, ServerOptions::new()).unwrap_err();
            (registered, failed.to_string())
        })
        .unwrap();
    assert!(registered, "registered before start_server returned");
    assert!(failed.contains("no database"), "{failed}");
}

#[test]
fn ten_thousand_clients_of_a_supervised_key_value_server_get_a_reply_or_the_crash() {
    const CLIENTS: u64 = 10_000;
    const CRASH_EVERY: u64 = 1_000;
    let rt = runtime(2);
    let (replies, crashes, timeouts, back) = rt
        .run(|ctx| {
            let spec = SupervisorSpec::new(Strategy::OneForOne)
                .intensity(1_000, Duration::from_secs(1))
                .child(ChildSpec::new("kv", |ctx: &Ctx| {
                    start_server(ctx, Kv::default(), ServerOptions::new().name("kv"))
                        .map(|server| server.pid)
                }));
            let _sup = start_supervisor(ctx, spec).unwrap();
            // Reports go to a collector whose mailbox holds them all.
            let root = ctx.pid();
            let me = ctx
                .spawn_with(
                    erlangen_runtime::SpawnOptions::new().mailbox_len(CLIENTS as usize + 1),
                    move |ctx| {
                        let (mut replies, mut crashes, mut timeouts) = (0u64, 0u64, 0u64);
                        for _ in 0..CLIENTS {
                            let (_, outcome) = ctx
                                .receive_timeout(HANG_GUARD * 2)
                                .expect("every client reports")
                                .downcast::<(u64, Result<(), CallError>)>()
                                .unwrap();
                            match outcome {
                                Ok(()) => replies += 1,
                                Err(CallError::Exit(ExitStatus::Exit(ExitReason::Panic(text))))
                                    if text.contains("crash on purpose") =>
                                {
                                    crashes += 1
                                }
                                Err(CallError::Timeout) => timeouts += 1,
                                Err(other) => panic!("a call ended with {other:?}"),
                            }
                        }
                        ctx.send(&root, (replies, crashes, timeouts));
                    },
                )
                .unwrap();
            for i in 0..CLIENTS {
                let me = me.clone();
                ctx.spawn(move |ctx| {
                    let request = || {
                        if i % CRASH_EVERY == 0 {
                            KvRequest::Get("crash".into())
                        } else {
                            KvRequest::Put(format!("key-{i}"), i)
                        }
                    };
                    let outcome = loop {
                        let Some(pid) = ctx.whereis("kv") else {
                            ctx.sleep(Duration::from_micros(100));
                            continue;
                        };
                        let kv: ServerRef<Kv> = ServerRef::from_pid(pid);
                        match kv.call(ctx, request(), HANG_GUARD) {
                            // The name still named the crashed server: a user
                            // calls the new one.
                            Err(CallError::NoProc) => continue,
                            outcome => break outcome,
                        }
                    };
                    ctx.send(&me, (i, outcome.map(|_| ())));
                });
            }
            let (replies, crashes, timeouts) = ctx
                .receive_timeout(HANG_GUARD * 4)
                .expect("the collector reports")
                .downcast::<(u64, u64, u64)>()
                .unwrap();
            (replies, crashes, timeouts, ctx.whereis("kv").is_some())
        })
        .unwrap();
    assert_eq!(timeouts, 0, "no call waited out its timeout");
    assert_eq!(
        replies + crashes,
        CLIENTS,
        "every request was answered or failed"
    );
    assert!(
        crashes >= CLIENTS / CRASH_EVERY,
        "every crashing call saw its crash ({crashes})"
    );
    assert!(back, "the server is back under its name");
}
