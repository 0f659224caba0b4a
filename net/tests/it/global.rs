//! Cluster-wide names (crate::global): found and sent to from every node,
//! gone with their agent, and a name taken twice apart settled when the
//! two nodes meet.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use erlangen_net::AgentId;
use erlangen_runtime::{Runtime, WatchDown};

use crate::support::{name_of, node, port_mapper, unique, HANG_GUARD};

/// Polls `check` until it holds (a hang guard, not a timing assertion).
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < HANG_GUARD, "never: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An agent that reports each `u64` to `got` and ends on `u64::MAX`.
fn holder(rt: &Runtime, got: mpsc::Sender<u64>) -> erlangen_runtime::Pid {
    rt.spawn(move |ctx| loop {
        match ctx.receive().downcast::<u64>() {
            Ok(u64::MAX) => return,
            Ok(n) => {
                let _ = got.send(n);
            }
            Err(_) => {}
        }
    })
}

#[test]
fn a_cluster_wide_name_is_found_everywhere_and_goes_with_its_agent() {
    let mapper = port_mapper();
    let (rt_a, a) = node(&mapper, &unique("wa"));
    let (rt_b, b) = node(&mapper, &unique("wb"));
    let (_rt_c, c) = node(&mapper, &unique("wc"));
    let (a, b, c) = (Arc::new(a), Arc::new(b), Arc::new(c));
    b.connect(&name_of(&a));
    c.connect(&name_of(&a));
    eventually("a mesh of three", || {
        a.nodes().len() == 2 && c.nodes().len() == 2
    });

    let (got_tx, got) = mpsc::channel();
    let server = holder(&rt_b, got_tx);
    b.register_global(&server, "server").unwrap();
    eventually("A finds it", || a.whereis_global("server").is_some());
    eventually("C finds it", || c.whereis_global("server").is_some());
    assert!(b.register_global(&server, "server").is_err(), "taken");
    let other = rt_a.spawn(|ctx| {
        ctx.receive();
    });
    assert!(
        a.register_global(&other, "server").is_err(),
        "taken on another node"
    );
    let sender = a.clone();
    rt_a.run(move |ctx| sender.send_global(ctx, "server", 7u64).unwrap())
        .unwrap();
    assert_eq!(got.recv_timeout(HANG_GUARD).unwrap(), 7);

    let stop = server.clone();
    rt_b.run(move |ctx| ctx.send(&stop, u64::MAX)).unwrap();
    eventually("the name goes everywhere", || {
        a.whereis_global("server").is_none() && c.whereis_global("server").is_none()
    });
    // Free again: another node may take it.
    a.register_global(&other, "server").unwrap();
    eventually("C finds the new holder", || {
        c.whereis_global("server")
            .is_some_and(|pid| pid.serial() == other.serial())
    });
}

#[test]
fn a_name_taken_twice_apart_keeps_one_holder_when_the_nodes_meet() {
    let mapper = port_mapper();
    let (rt_a, a) = node(&mapper, &unique("pa"));
    let (rt_b, b) = node(&mapper, &unique("pb"));
    let (a, b) = (Arc::new(a), Arc::new(b));
    let (tx, _rx) = mpsc::channel();
    let on_a = holder(&rt_a, tx.clone());
    let on_b = holder(&rt_b, tx);
    a.register_global(&on_a, "leader").unwrap();
    b.register_global(&on_b, "leader").unwrap();
    // The winner is on the node whose name sorts first.
    let (winner, loser, loser_rt) = if name_of(&a).to_string() < name_of(&b).to_string() {
        (on_a.clone(), on_b.clone(), &rt_b)
    } else {
        (on_b.clone(), on_a.clone(), &rt_a)
    };
    let watched = loser.clone();
    let (down_tx, down_rx) = mpsc::channel();
    let (ready_tx, ready) = mpsc::channel();
    loser_rt.spawn(move |ctx| {
        ctx.watch(&watched).unwrap();
        ready_tx.send(()).unwrap();
        let down = ctx.receive().downcast::<WatchDown>().unwrap();
        let _ = down_tx.send(down.status.reason().map(ToString::to_string));
    });
    ready.recv_timeout(HANG_GUARD).unwrap();
    b.connect(&name_of(&a));
    let reason = down_rx.recv_timeout(HANG_GUARD).expect("the loser goes");
    assert_eq!(reason.as_deref(), Some("global name conflict: leader"));
    eventually("both nodes answer the winner", || {
        let (x, y) = (a.whereis_global("leader"), b.whereis_global("leader"));
        x.is_some_and(|p| p.serial() == winner.serial())
            && y.is_some_and(|p| p.serial() == winner.serial())
    });
}

/// A node like `support::node`'s, settling name conflicts with `resolver`.
fn node_resolving(
    mapper: &erlangen_portmap::Daemon,
    name: &str,
    resolver: fn(&str, &AgentId, &AgentId) -> Option<AgentId>,
) -> (Runtime, Arc<erlangen_net::Node>) {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let node = erlangen_net::Node::builder(name)
        .cookie(crate::support::COOKIE)
        .port_mapper(mapper.local_addr())
        .types(crate::support::types())
        .global_conflict_resolver(resolver)
        .start(&rt)
        .unwrap();
    (rt, Arc::new(node))
}

/// Watches `pid` on `rt`; its end's reason arrives on the receiver.
fn end_of(rt: &Runtime, pid: &erlangen_runtime::Pid) -> mpsc::Receiver<Option<String>> {
    let (tx, rx) = mpsc::channel();
    let (ready_tx, ready) = mpsc::channel();
    let watched = pid.clone();
    rt.spawn(move |ctx| {
        ctx.watch(&watched).unwrap();
        ready_tx.send(()).unwrap();
        let down = ctx.receive().downcast::<WatchDown>().unwrap();
        let _ = tx.send(down.status.reason().map(ToString::to_string));
    });
    ready.recv_timeout(HANG_GUARD).unwrap();
    rx
}

#[test]
fn a_conflict_resolver_given_to_every_node_decides_which_holder_keeps_the_name() {
    let mapper = port_mapper();
    // The holder on the node whose name sorts last keeps the name.
    let keep_second: fn(&str, &AgentId, &AgentId) -> Option<AgentId> =
        |_, _, second| Some(second.clone());
    let (rt_a, a) = node_resolving(&mapper, &unique("ra"), keep_second);
    let (rt_b, b) = node_resolving(&mapper, &unique("rb"), keep_second);
    let (tx, _rx) = mpsc::channel();
    let (on_a, on_b) = (holder(&rt_a, tx.clone()), holder(&rt_b, tx));
    a.register_global(&on_a, "leader").unwrap();
    b.register_global(&on_b, "leader").unwrap();
    let a_first = name_of(&a).to_string() < name_of(&b).to_string();
    let (kept, gone) = if a_first {
        ((&on_b, &rt_b), (&on_a, &rt_a))
    } else {
        ((&on_a, &rt_a), (&on_b, &rt_b))
    };
    let kept_end = end_of(kept.1, kept.0);
    let gone_end = end_of(gone.1, gone.0);
    b.connect(&name_of(&a));
    assert_eq!(
        gone_end.recv_timeout(HANG_GUARD).unwrap().as_deref(),
        Some("global name conflict: leader")
    );
    eventually("both nodes answer the kept holder", || {
        let (x, y) = (a.whereis_global("leader"), b.whereis_global("leader"));
        x.is_some_and(|p| p.serial() == kept.0.serial())
            && y.is_some_and(|p| p.serial() == kept.0.serial())
    });
    assert!(kept_end.try_recv().is_err(), "the kept holder lives");
}

#[test]
fn a_conflict_resolver_that_keeps_neither_ends_both_holders() {
    let mapper = port_mapper();
    let neither: fn(&str, &AgentId, &AgentId) -> Option<AgentId> = |_, _, _| None;
    let (rt_a, a) = node_resolving(&mapper, &unique("na"), neither);
    let (rt_b, b) = node_resolving(&mapper, &unique("nb"), neither);
    let (tx, _rx) = mpsc::channel();
    let (on_a, on_b) = (holder(&rt_a, tx.clone()), holder(&rt_b, tx));
    a.register_global(&on_a, "leader").unwrap();
    b.register_global(&on_b, "leader").unwrap();
    let (end_a, end_b) = (end_of(&rt_a, &on_a), end_of(&rt_b, &on_b));
    b.connect(&name_of(&a));
    for end in [end_a, end_b] {
        assert_eq!(
            end.recv_timeout(HANG_GUARD).unwrap().as_deref(),
            Some("global name conflict: leader")
        );
    }
    eventually("the name is free everywhere", || {
        a.whereis_global("leader").is_none() && b.whereis_global("leader").is_none()
    });
}
