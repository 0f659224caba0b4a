//! Introspection over the node protocol: a peer asks a node's observer for
//! its agents, one agent in detail, its registry, peers and totals, and
//! kills an agent; nothing unauthenticated gets through.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use erlangen_net::wire::{self, Packet, WireMessage, KIND_PACKET};
use erlangen_net::{AgentsRequest, Observe, Observed, SortBy, Totals, OBSERVER_NAME};
use erlangen_runtime::{Down, ExitReason, ExitStatus, SpawnOptions};

use crate::support::{name_of, node, port_mapper, unique, HANG_GUARD};

fn sleep_long(ctx: &mut erlangen_runtime::Ctx) {
    ctx.sleep(Duration::from_secs(3600));
}

#[test]
fn a_peer_lists_a_nodes_agents_by_mailbox_sees_the_hot_one_in_detail_and_kills_it() {
    let mapper = port_mapper();
    let (rt_a, node_a) = node(&mapper, &unique("observed"));
    let (rt_b, node_b) = node(&mapper, &unique("observing"));
    let node_b = Arc::new(node_b);
    // On A: a hot agent holding 50 messages, registered, with an agent
    // linked to it and one that monitors it.
    let hot = rt_a
        .spawn_with(SpawnOptions::new().mailbox_len(100), sleep_long)
        .unwrap();
    rt_a.register("hot", &hot).unwrap();
    for n in 0..50u64 {
        rt_a.send(&hot, n);
    }
    let (downs, down) = mpsc::channel();
    let (linked, watcher) = rt_a
        .run({
            let hot = hot.clone();
            move |ctx| {
                let me = ctx.pid();
                let linked = ctx.spawn({
                    let (hot, me) = (hot.clone(), me.clone());
                    move |ctx| {
                        ctx.link(&hot).unwrap();
                        ctx.send(&me, ());
                        ctx.receive();
                    }
                });
                ctx.receive();
                let watcher = ctx.spawn(move |ctx| {
                    ctx.monitor(&hot).unwrap();
                    ctx.send(&me, ());
                    let down = ctx.receive().downcast::<Down>().unwrap();
                    downs.send(down.status).unwrap();
                });
                ctx.receive();
                (linked, watcher)
            }
        })
        .unwrap();
    let a = name_of(&node_a);
    let ask = {
        let node_b = node_b.clone();
        move |request: Observe| {
            let node_b = node_b.clone();
            let a = a.clone();
            rt_b.run(move |ctx| node_b.observe(ctx, &a, request, HANG_GUARD).unwrap())
                .unwrap()
        }
    };

    let Observed::Agents {
        agents, matched, ..
    } = ask(Observe::Agents(AgentsRequest {
        sort: SortBy::Mailbox,
        limit: 3,
        ..AgentsRequest::default()
    }))
    else {
        panic!("not a page of agents");
    };
    assert_eq!(agents.len(), 3);
    assert_eq!(agents[0].serial, hot.serial());
    assert_eq!(
        (agents[0].queued, agents[0].names.clone()),
        (50, vec!["hot".to_owned()])
    );
    assert_eq!(agents[0].state, "waiting");
    assert!(matched >= 4, "{matched}");

    let Observed::Agent(Some(detail)) = ask(Observe::Agent {
        serial: hot.serial(),
    }) else {
        panic!("no detail of the hot agent");
    };
    assert_eq!(detail.row.serial, hot.serial());
    assert!(detail.links.contains(&linked.to_string()), "{detail:?}");
    assert!(
        detail.monitored_by.contains(&watcher.to_string()),
        "{detail:?}"
    );
    assert!(detail.tree.contains(&hot.to_string()), "{}", detail.tree);

    let Observed::Registry { names, total } = ask(Observe::Registry { after: None }) else {
        panic!("not a registry");
    };
    assert!(
        names.contains(&("hot".to_owned(), hot.serial())),
        "{names:?}"
    );
    assert!(names.iter().any(|(name, _)| name == OBSERVER_NAME));
    assert_eq!(total as usize, names.len());

    let Observed::Peers(peers) = ask(Observe::Peers) else {
        panic!("not peers");
    };
    let b = name_of(&node_b).to_string();
    assert!(
        peers.iter().any(|peer| peer.node == b && peer.connected),
        "{peers:?}"
    );

    let Observed::Totals(Totals {
        node,
        agents,
        workers,
        ..
    }) = ask(Observe::Totals)
    else {
        panic!("not totals");
    };
    assert_eq!(node, name_of(&node_a).to_string());
    assert_eq!(workers, 1);
    assert!(agents >= 4);

    assert_eq!(
        ask(Observe::Kill {
            serial: hot.serial()
        }),
        Observed::Killed { found: true }
    );
    let status = down.recv_timeout(HANG_GUARD).expect("the watcher's Down");
    assert!(
        matches!(status, ExitStatus::Exit(ExitReason::Kill)),
        "{status:?}"
    );
    assert_eq!(
        ask(Observe::Agent {
            serial: hot.serial()
        }),
        Observed::Agent(None)
    );
    assert_eq!(
        ask(Observe::Kill {
            serial: hot.serial()
        }),
        Observed::Killed { found: false }
    );
    drop(node_a);
}

#[test]
fn a_request_to_the_observer_before_the_handshake_closes_the_connection_and_reaches_nothing() {
    let mapper = port_mapper();
    let (rt, observed) = node(&mapper, &unique("guarded"));
    let victim = rt.spawn(sleep_long);
    let observer = rt.whereis(OBSERVER_NAME).expect("an observer");
    // A packet asking the observer to kill the victim, as a peer would send
    // it after the handshake, sent without one.
    let packet = Packet::Named {
        name: OBSERVER_NAME.to_owned(),
        message: WireMessage {
            type_name: "erlangen/observe".to_owned(),
            body: wire::encode(&(
                0u64,
                1u64,
                Observe::Kill {
                    serial: victim.serial(),
                },
            ))
            .unwrap(),
        },
    };
    let mut frame = Vec::new();
    erlangen_net::frame::encode(KIND_PACKET, &wire::encode(&packet).unwrap(), &mut frame);
    let mut stream = std::net::TcpStream::connect(observed.local_addr()).unwrap();
    stream.set_read_timeout(Some(HANG_GUARD)).unwrap();
    std::io::Write::write_all(&mut stream, &frame).unwrap();
    // The node's hello, then the close.
    let mut read = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match std::io::Read::read(&mut stream, &mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => read.extend_from_slice(&chunk[..n]),
        }
    }
    let (hello, used) = erlangen_net::frame::parse(&read, 1 << 16).unwrap().unwrap();
    assert_eq!(hello.kind, wire::KIND_HELLO);
    assert_eq!(used, read.len(), "nothing after the node's hello");
    assert_eq!(rt.stats(&observer).received, 0);
    assert!(rt.handle().is_alive(&victim));
    rt.kill(&victim, ExitReason::Kill);
}

#[test]
fn a_listing_of_a_million_agents_is_paged_while_the_node_keeps_passing_messages() {
    const AGENTS: usize = 1_000_000;
    let mapper = port_mapper();
    // One worker on the observed node: messages between its agents move
    // during the walk only if the observer yields that worker.
    let (rt_a, node_a) = node(&mapper, &unique("crowded"));
    let (rt_b, node_b) = node(&mapper, &unique("looking"));
    // A million agents that hibernate until a message comes.
    rt_a.run(|ctx| {
        for _ in 0..AGENTS {
            ctx.spawn(|ctx| {
                ctx.hibernate(|ctx| {
                    ctx.receive();
                })
            });
        }
    })
    .unwrap();
    // A ping-pong pair that counts its round trips until told to stop.
    let trips = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let pong = rt_a.spawn(|ctx| loop {
        let ping = ctx.receive().downcast::<erlangen_runtime::Pid>().unwrap();
        ctx.send(&ping, ());
    });
    let ping = rt_a.spawn({
        let (trips, stop, pong) = (trips.clone(), stop.clone(), pong.clone());
        move |ctx| {
            while !stop.load(Ordering::Relaxed) {
                ctx.send(&pong, ctx.pid());
                ctx.receive();
                trips.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let a = name_of(&node_a);
    let before = trips.load(Ordering::Relaxed);
    let page = rt_b
        .run(move |ctx| {
            node_b.observe(
                ctx,
                &a,
                Observe::Agents(AgentsRequest {
                    sort: SortBy::Received,
                    ..AgentsRequest::default()
                }),
                Duration::from_secs(300),
            )
        })
        .unwrap()
        .unwrap();
    let during = trips.load(Ordering::Relaxed) - before;
    stop.store(true, Ordering::Relaxed);
    let Observed::Agents {
        agents,
        matched,
        next,
    } = page
    else {
        panic!("not a page");
    };
    assert_eq!(agents.len(), erlangen_net::config::OBSERVE_PAGE_LEN_MAX);
    assert!(matched as usize >= AGENTS, "{matched}");
    assert!(next.is_some());
    // The pair with the most messages taken leads the page.
    assert!([ping.serial(), pong.serial()].contains(&agents[0].serial));
    // The walk makes about 4,000 chunks, and the observer yields the one
    // worker after each: the pair passed messages all along.
    assert!(during >= 1000, "{during} round trips during the walk");
    drop(node_a);
}
