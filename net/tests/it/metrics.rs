//! The metrics endpoint (`NodeBuilder::metrics_listen`, the kernel's
//! `--metrics-listen`): scraped as Prometheus would, names checked against
//! its conventions, values against what the test did; bad requests
//! answered with an error and nothing else.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use erlangen_net::Node;
use erlangen_runtime::{ExitReason, Runtime, SpawnOptions};

use crate::support::{name_of, node, port_mapper, types, unique, COOKIE, HANG_GUARD};

/// Sends `request` raw and returns the whole answer.
fn ask(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(HANG_GUARD)).unwrap();
    stream.write_all(request).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

/// `GET /metrics`: the body, parsed into samples (`name{labels}` → value)
/// and families (`name` → type).
fn scrape(addr: SocketAddr) -> (HashMap<String, f64>, HashMap<String, String>) {
    let answer = ask(addr, b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n");
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    let mut samples = HashMap::new();
    let mut families = HashMap::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            families.insert(name.to_owned(), kind.to_owned());
        } else if !line.starts_with('#') && !line.is_empty() {
            let (key, value) = line.rsplit_once(' ').unwrap();
            samples.insert(key.to_owned(), value.parse::<f64>().unwrap());
        }
    }
    (samples, families)
}

#[test]
fn a_scrape_reports_agents_exits_mailboxes_and_peers_by_prometheus_conventions() {
    let mapper = port_mapper();
    let rt = Runtime::builder().workers(2).build().unwrap();
    let watched = Arc::new(
        Node::builder(&unique("metrics"))
            .cookie(COOKIE)
            .port_mapper(mapper.local_addr())
            .types(types())
            .metrics_listen("127.0.0.1:0".parse().unwrap())
            .start(&rt)
            .unwrap(),
    );
    let addr = watched.metrics_addr().expect("an endpoint");
    let (_rt_peer, peer) = node(&mapper, &unique("peer"));
    let node = watched;
    // A hot agent: 100 messages it never takes.
    let hot = rt
        .spawn_with(SpawnOptions::new().mailbox_len(1000), |ctx| {
            ctx.sleep(Duration::from_secs(3600));
        })
        .unwrap();
    for n in 0..100u64 {
        rt.send(&hot, n);
    }
    // Three that return, one killed.
    for _ in 0..3 {
        rt.run(|_ctx| ()).unwrap();
    }
    let victim = rt.spawn(|ctx| {
        ctx.receive();
    });
    rt.kill(&victim, ExitReason::Kill);
    // And a peer.
    let to = name_of(&peer);
    rt.run({
        let node = node.clone();
        move |_ctx| node.try_send_named(&to, "nobody", 1u64).unwrap()
    })
    .unwrap();

    let peer_name = name_of(&peer).to_string();
    let sent_to_peer = format!("erlangen_peer_sent_bytes_total{{peer=\"{peer_name}\"}}");
    let started = Instant::now();
    let (samples, families) = loop {
        let (samples, families) = scrape(addr);
        let killed = samples.get("erlangen_agents_exited_total{class=\"kill\"}");
        let peer_up = samples
            .iter()
            .any(|(k, v)| k.starts_with("erlangen_peer_connected{") && *v == 1.0);
        // The peer is up once its handshake is done; the message sent to it
        // is counted when the loop has written it, which may be a little later.
        let peer_written = samples.get(&sent_to_peer).is_some_and(|bytes| *bytes > 0.0);
        // A probe goes out once per heartbeat interval.
        let round_trip = samples.get(&format!(
            "erlangen_peer_round_trip_seconds{{peer=\"{peer_name}\"}}"
        ));
        if killed == Some(&1.0) && peer_up && peer_written && round_trip.is_some() {
            break (samples, families);
        }
        assert!(started.elapsed() < HANG_GUARD, "{samples:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    // Conventions: every counter ends in _total; every sample belongs to a
    // declared family.
    for (name, kind) in &families {
        assert_eq!(
            kind == "counter",
            name.ends_with("_total"),
            "{name} is a {kind}"
        );
    }
    for key in samples.keys() {
        let name = key.split('{').next().unwrap();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .filter(|base| families.get(*base).is_some_and(|k| k == "histogram"))
            .unwrap_or(name);
        assert!(families.contains_key(family), "{key} has no family");
    }
    assert_eq!(samples["erlangen_workers"], 2.0);
    // The 100 sent to the hot agent from outside, at least.
    assert!(samples["erlangen_messages_sent_total"] >= 100.0);
    assert!(samples["erlangen_agents_exited_total{class=\"returned\"}"] >= 3.0);
    let live = samples["erlangen_agents"];
    assert!(samples["erlangen_agents_spawned_total"] >= live + 4.0);
    // The hot agent is in the 256 bucket and not in the 64 one.
    let bucket =
        |le: &str| samples[&format!("erlangen_agent_mailbox_messages_bucket{{le=\"{le}\"}}")];
    assert_eq!(bucket("256") - bucket("64"), 1.0);
    assert_eq!(bucket("+Inf"), live);
    assert_eq!(samples["erlangen_agent_mailbox_messages_count"], live);
    assert!(samples["erlangen_agent_mailbox_messages_sum"] >= 100.0);
    assert_eq!(
        samples[&format!("erlangen_peer_connected{{peer=\"{peer_name}\"}}")],
        1.0
    );
    let round_trip = samples[&format!("erlangen_peer_round_trip_seconds{{peer=\"{peer_name}\"}}")];
    assert!(
        round_trip > 0.0 && round_trip < HANG_GUARD.as_secs_f64(),
        "{round_trip}"
    );
    let peers = node.peers();
    let stats = peers.iter().find(|p| p.node == peer_name).unwrap();
    assert!(stats.round_trip.is_some());
}

#[test]
fn bad_requests_to_the_metrics_endpoint_get_an_error_and_change_nothing() {
    let mapper = port_mapper();
    let rt = Runtime::builder().workers(1).build().unwrap();
    let node = Node::builder(&unique("metrics-bad"))
        .cookie(COOKIE)
        .port_mapper(mapper.local_addr())
        .metrics_listen("127.0.0.1:0".parse().unwrap())
        .start(&rt)
        .unwrap();
    let addr = node.metrics_addr().unwrap();
    let status = |answer: String| answer.lines().next().unwrap_or_default().to_owned();
    assert_eq!(
        status(ask(addr, b"garbage\r\n\r\n")),
        "HTTP/1.1 400 Bad Request"
    );
    assert_eq!(
        status(ask(addr, &vec![b'A'; 20_000])),
        "HTTP/1.1 400 Bad Request"
    );
    assert_eq!(
        status(ask(addr, b"POST /metrics HTTP/1.1\r\n\r\n")),
        "HTTP/1.1 405 Method Not Allowed"
    );
    assert_eq!(
        status(ask(addr, b"GET /secrets HTTP/1.1\r\n\r\n")),
        "HTTP/1.1 404 Not Found"
    );
    // A client that says nothing and leaves.
    drop(TcpStream::connect(addr).unwrap());
    let (samples, _) = scrape(addr);
    // Nothing was spawned: the one agent is the node's observer.
    assert_eq!(samples["erlangen_agents"], 1.0);
    // Stopping the node ends the endpoint.
    node.stop();
    assert!(
        TcpStream::connect(addr).is_err() || ask(addr, b"GET /metrics HTTP/1.1\r\n\r\n").is_empty()
    );
}

#[test]
fn a_kernel_started_with_metrics_listen_serves_them_where_it_says() {
    use std::io::BufRead;
    let mapper = port_mapper();
    let mut kernel = crate::membership::Kernel::spawn(
        std::process::Command::new(env!("CARGO_BIN_EXE_erlangen-kernel"))
            .args(["--name", &unique("metered"), "--workers", "1"])
            .args(["--port-mapper", &mapper.local_addr().to_string()])
            .args(["--metrics-listen", "127.0.0.1:0"])
            .env("ERLANGEN_COOKIE", std::str::from_utf8(COOKIE).unwrap())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null()),
    );
    let stdout = kernel.stdout();
    let addr: SocketAddr = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| {
            line.strip_prefix("erlangen-kernel: metrics at http://")
                .and_then(|rest| rest.strip_suffix("/metrics"))
                .map(|addr| addr.parse().unwrap())
        })
        .expect("the kernel says where its metrics are");
    let (samples, families) = scrape(addr);
    assert_eq!(families["erlangen_agents_spawned_total"], "counter");
    assert!(samples.contains_key("erlangen_agents"));
}
