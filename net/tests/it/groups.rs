//! Process groups across nodes (crate::groups): members on three nodes,
//! a send to all, a member's exit, and a lost node's members leaving.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use erlangen_net::{GroupEvent, Node};
use erlangen_runtime::Runtime;

use crate::support::{name_of, node, port_mapper, unique, HANG_GUARD};

/// Polls `check` until it holds (a hang guard, not a timing assertion).
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < HANG_GUARD, "never: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An agent on `rt` that joins `group` on `node` and reports each `u64` it
/// gets, with its name, to `got`.
fn member(
    rt: &Runtime,
    node: &Arc<Node>,
    group: &str,
    name: &'static str,
    got: &mpsc::Sender<(&'static str, u64)>,
) -> erlangen_runtime::Pid {
    let got = got.clone();
    let pid = rt.spawn(move |ctx| loop {
        if let Ok(n) = ctx.receive().downcast::<u64>() {
            if n == u64::MAX {
                return;
            }
            let _ = got.send((name, n));
        }
    });
    node.join_group(&pid, group).unwrap();
    pid
}

#[test]
fn a_group_spans_nodes_takes_a_broadcast_and_loses_the_members_of_a_lost_node() {
    let mapper = port_mapper();
    let (rt_a, a) = node(&mapper, &unique("ga"));
    let (rt_b, b) = node(&mapper, &unique("gb"));
    let (rt_c, c) = node(&mapper, &unique("gc"));
    let (a, b, c) = (Arc::new(a), Arc::new(b), Arc::new(c));
    b.connect(&name_of(&a));
    c.connect(&name_of(&a));
    eventually("a mesh of three", || {
        a.nodes().len() == 2 && b.nodes().len() == 2 && c.nodes().len() == 2
    });

    // A monitor of the group on A.
    let (events_tx, events) = mpsc::channel::<GroupEvent>();
    let watcher = rt_a.spawn(move |ctx| loop {
        if let Ok(event) = ctx.receive().downcast::<GroupEvent>() {
            let _ = events_tx.send(event);
        }
    });
    a.monitor_group(&watcher, "workers");

    let (got_tx, got) = mpsc::channel();
    let _a1 = member(&rt_a, &a, "workers", "a1", &got_tx);
    let b1 = member(&rt_b, &b, "workers", "b1", &got_tx);
    let _b2 = member(&rt_b, &b, "workers", "b2", &got_tx);
    let _c1 = member(&rt_c, &c, "workers", "c1", &got_tx);
    assert!(
        b.join_group(&b1, "").is_err(),
        "an empty group name is refused"
    );
    eventually("A sees four members", || {
        a.group_members("workers").len() == 4
    });
    eventually("C sees four members", || {
        c.group_members("workers").len() == 4
    });
    assert_eq!(a.local_group_members("workers").len(), 1);

    // A broadcast from A reaches all four.
    let group_node = a.clone();
    let sent = rt_a
        .run(move |ctx| group_node.send_to_group(ctx, "workers", 7u64))
        .unwrap();
    assert_eq!(sent, 4);
    let mut reached: Vec<&str> = (0..4)
        .map(|_| got.recv_timeout(HANG_GUARD).unwrap().0)
        .collect();
    reached.sort();
    assert_eq!(reached, ["a1", "b1", "b2", "c1"]);

    // b1 exits: it leaves everywhere.
    let exit_b1 = b1.clone();
    rt_b.run(move |ctx| ctx.send(&exit_b1, u64::MAX)).unwrap();
    eventually("b1 left", || a.group_members("workers").len() == 3);

    // C is lost: its member leaves at once, and the monitor hears of it.
    let c1_pid = c
        .group_members("workers")
        .into_iter()
        .find(|pid| !pid.is_remote())
        .unwrap();
    Arc::try_unwrap(c).expect("one handle").stop();
    drop(rt_c);
    eventually("c1 left with its node", || {
        a.group_members("workers").len() == 2
    });
    let mut left_seen = false;
    while let Ok(event) = events.recv_timeout(HANG_GUARD) {
        if event
            .left
            .iter()
            .any(|pid| pid.serial() == c1_pid.serial() && pid.is_remote())
        {
            left_seen = true;
            break;
        }
    }
    assert!(left_seen, "the monitor heard c1 leave");
    drop(rt_b);
}
