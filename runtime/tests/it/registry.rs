//! The name registry (erlangen.md §3.1 register/unregister/registered).

use std::time::Duration;

use erlangen_runtime::{Error, SpawnOptions};

use crate::support::{recv_as, recv_down, runtime};

#[test]
fn registered_name_is_released_when_its_agent_exits() {
    let rt = runtime(1);
    let (while_alive, after) = rt
        .run(|ctx| {
            let me = ctx.pid();
            let agent = ctx
                .spawn_with(SpawnOptions::new().monitor(), move |ctx| {
                    ctx.register("keeper").unwrap();
                    ctx.send(&me, ());
                    ctx.receive();
                })
                .unwrap();
            recv_as::<()>(ctx);
            let while_alive = ctx.whereis("keeper") == Some(agent.clone());
            ctx.send(&agent, ());
            recv_down(ctx);
            (while_alive, ctx.whereis("keeper"))
        })
        .unwrap();
    assert!(while_alive);
    assert_eq!(after, None);
    assert!(rt.registered().is_empty());
}

#[test]
fn send_by_name_reaches_the_agent_and_unknown_names_are_errors() {
    let rt = runtime(1);
    let (got, unknown) = rt
        .run(|ctx| {
            ctx.register("me").unwrap();
            ctx.send_named("me", 3u8).unwrap();
            (recv_as::<u8>(ctx), ctx.send_named("nobody", 1u8))
        })
        .unwrap();
    assert_eq!(got, 3);
    assert_eq!(unknown, Err(Error::NoSuchName("nobody".into())));
}

#[test]
fn registered_lists_names_and_unregister_removes_them() {
    let rt = runtime(1);
    let (listed, after, again) = rt
        .run(|ctx| {
            let other = ctx.spawn(|ctx| {
                ctx.receive_timeout(Duration::from_secs(60)).ok();
            });
            ctx.register("b").unwrap();
            ctx.register_pid("a", &other).unwrap();
            let listed = ctx.registered();
            ctx.unregister("a").unwrap();
            let after = ctx.registered();
            ctx.kill(&other, erlangen_runtime::ExitReason::Kill);
            (listed, after, ctx.unregister("a"))
        })
        .unwrap();
    assert_eq!(listed, vec!["a".to_owned(), "b".to_owned()]);
    assert_eq!(after, vec!["b".to_owned()]);
    assert_eq!(again, Err(Error::NotRegistered("a".into())));
}

#[test]
fn invalid_names_are_refused_with_a_reason() {
    let rt = runtime(1);
    let results = rt
        .run(|ctx| {
            let long = "x".repeat(256);
            vec![
                ctx.register(""),
                ctx.register("host/node"),
                ctx.register("nul\0"),
                ctx.register(&long),
            ]
        })
        .unwrap();
    for result in results {
        assert!(matches!(result, Err(Error::InvalidName(_))), "{result:?}");
    }
}

#[test]
fn runtime_registry_calls_work_from_a_plain_thread() {
    let rt = runtime(1);
    let pid = rt.spawn(|ctx| ctx.receive().downcast::<u32>().unwrap());
    rt.register("worker", &pid).unwrap();
    assert_eq!(
        rt.register("worker", &pid),
        Err(Error::NameTaken("worker".into()))
    );
    assert_eq!(rt.whereis("worker"), Some(pid.clone()));
    rt.send_named("worker", 1u32).unwrap();
    let guard = std::time::Instant::now() + crate::support::HANG_GUARD;
    while rt.whereis("worker").is_some() && std::time::Instant::now() < guard {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(
        rt.unregister("worker"),
        Err(Error::NotRegistered("worker".into()))
    );
}
