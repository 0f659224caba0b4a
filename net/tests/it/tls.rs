//! TLS between nodes (`NodeBuilder::tls`): certificates made by the test
//! (rcgen) in a directory of its own; nodes on loopback, named
//! `localhost/…`, with certificates that name `localhost`.

use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Duration;

use erlangen_net::{Node, NodeEvent, NodeName, TlsOptions, WirePid};
use erlangen_portmap::Daemon;
use erlangen_runtime::{Runtime, SpawnOptions};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

use crate::support::{functions, name_of, port_mapper, stream_chunk, types, unique};
use crate::support::{COOKIE, HANG_GUARD};

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let dir = std::env::temp_dir().join(unique("erlangen-tls"));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A certificate authority whose certificate is `ca.pem` in `dir`.
pub(crate) struct Authority {
    issuer: CertifiedIssuer<'static, KeyPair>,
    ca_file: PathBuf,
}

impl Authority {
    pub(crate) fn new(dir: &Path, name: &str) -> Authority {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let ca_file = dir.join(format!("{name}.pem"));
        std::fs::write(&ca_file, issuer.pem()).unwrap();
        Authority { issuer, ca_file }
    }

    /// A certificate naming `names` that this authority issued, and its
    /// key: `STEM.pem` and `STEM.key` in `dir`.
    pub(crate) fn issue(&self, dir: &Path, stem: &str, names: &[String]) -> (PathBuf, PathBuf) {
        let params = CertificateParams::new(names.to_vec()).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let (cert_file, key_file) = (
            dir.join(format!("{stem}.pem")),
            dir.join(format!("{stem}.key")),
        );
        std::fs::write(&cert_file, cert.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        (cert_file, key_file)
    }

    /// A certificate for `localhost` and 127.0.0.1 issued by this
    /// authority, and a node that trusts `trusted`'s CA.
    fn node_options(&self, dir: &Path, node: &str, trusted: &Authority) -> TlsOptions {
        let names = ["localhost".to_owned(), "127.0.0.1".to_owned()];
        let (cert_file, key_file) = self.issue(dir, node, &names);
        TlsOptions::new(&trusted.ca_file, cert_file, key_file)
    }
}

/// A node on one worker, with TLS if `tls` is given.
fn node(mapper: &Daemon, name: &str, tls: Option<TlsOptions>) -> (Runtime, Arc<Node>) {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let mut builder = Node::builder(name)
        .cookie(COOKIE)
        .port_mapper(mapper.local_addr())
        .types(types())
        .functions(functions())
        .heartbeat(Duration::from_millis(200), Duration::from_secs(2));
    if let Some(tls) = tls {
        builder = builder.tls(tls);
    }
    let node = builder.start(&rt).expect("the node starts");
    (rt, Arc::new(node))
}

/// An agent registered as `sink` on `rt` that hands every `u64` it gets
/// to the test.
fn sink(rt: &Runtime) -> Receiver<u64> {
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = rt.spawn(move |ctx| loop {
        if let Ok(n) = ctx.receive().downcast::<u64>() {
            let _ = tx.send(n);
        }
    });
    rt.register("sink", &sink).unwrap();
    rx
}

/// From `from`, sends 7 to `to`'s sink and waits for the node monitor's
/// verdict on `to`: whether the connection came up, and why not.
fn send_and_watch(rt: &Runtime, from: &Arc<Node>, to: &NodeName) -> NodeEvent {
    let (from, to) = (from.clone(), to.clone());
    rt.run(move |ctx| {
        from.monitor_node(&ctx.pid(), &to);
        from.try_send_named(&to, "sink", 7u64).unwrap();
        ctx.receive_timeout(HANG_GUARD)
            .unwrap()
            .downcast::<NodeEvent>()
            .unwrap()
    })
    .unwrap()
}

/// A legitimate node sends 8 to `to`'s sink: the first number the sink
/// hands out must be that one (nothing came before it).
fn first_delivered(rt: &Runtime, from: &Arc<Node>, to: &NodeName, sink: &Receiver<u64>) -> u64 {
    let (from, to) = (from.clone(), to.clone());
    rt.run(move |_ctx| from.try_send_named(&to, "sink", 8u64).unwrap())
        .unwrap();
    sink.recv_timeout(HANG_GUARD).unwrap()
}

#[test]
fn nodes_whose_certificates_one_ca_issued_talk_over_tls() {
    let dir = TempDir::new();
    let ca = Authority::new(&dir.0, "ca");
    let mapper = port_mapper();
    let (a, b) = (unique("a"), unique("b"));
    let (rt_a, node_a) = node(&mapper, &a, Some(ca.node_options(&dir.0, &a, &ca)));
    let (_rt_b, node_b) = node(&mapper, &b, Some(ca.node_options(&dir.0, &b, &ca)));
    let b = name_of(&node_b);
    // 4 MiB in 64 KiB messages (writes that meet a full socket and resume
    // inside TLS records), checked in order on the other node.
    const CHUNKS: u64 = 64;
    let node = node_a.clone();
    let answer = rt_a
        .run(move |ctx| {
            let checker = node
                .spawn(
                    ctx,
                    &b,
                    "check_stream",
                    (CHUNKS, WirePid(ctx.pid())),
                    SpawnOptions::new(),
                )
                .unwrap();
            for i in 0..CHUNKS {
                ctx.send(&checker, stream_chunk(i));
            }
            ctx.receive_timeout(HANG_GUARD)
                .unwrap()
                .downcast::<String>()
                .unwrap()
        })
        .unwrap();
    assert_eq!(answer, format!("ok {CHUNKS}"));
    let peer = node_a
        .peers()
        .into_iter()
        .find(|peer| peer.node == name_of(&node_b).to_string())
        .unwrap();
    assert!(peer.connected);
}

#[test]
fn a_node_whose_certificate_another_ca_issued_is_refused_both_ways_and_delivers_nothing() {
    let dir = TempDir::new();
    let (ca, other_ca) = (
        Authority::new(&dir.0, "ca"),
        Authority::new(&dir.0, "other-ca"),
    );
    let mapper = port_mapper();
    let (a, b, c) = (unique("a"), unique("b"), unique("c"));
    let (rt_a, node_a) = node(&mapper, &a, Some(ca.node_options(&dir.0, &a, &ca)));
    let (rt_b, node_b) = node(&mapper, &b, Some(ca.node_options(&dir.0, &b, &ca)));
    // C trusts the cluster's CA but holds a certificate the other one
    // issued: A refuses it when C dials, and C's certificate fails A's
    // check when A dials.
    let (rt_c, node_c) = node(&mapper, &c, Some(other_ca.node_options(&dir.0, &c, &ca)));
    let (sink_a, sink_c) = (sink(&rt_a), sink(&rt_c));

    let event = send_and_watch(&rt_c, &node_c, &name_of(&node_a));
    assert!(!event.up, "{event:?}");
    let event = send_and_watch(&rt_a, &node_a, &name_of(&node_c));
    assert!(!event.up, "{event:?}");

    assert_eq!(
        first_delivered(&rt_b, &node_b, &name_of(&node_a), &sink_a),
        8
    );
    assert!(sink_c.try_recv().is_err(), "nothing reached C");
    assert!(node_a
        .peers()
        .iter()
        .all(|peer| peer.node != name_of(&node_c).to_string() || !peer.connected));
}

#[test]
fn a_plain_tcp_node_cannot_join_a_tls_cluster() {
    let dir = TempDir::new();
    let ca = Authority::new(&dir.0, "ca");
    let mapper = port_mapper();
    let (a, b) = (unique("a"), unique("b"));
    let (rt_a, node_a) = node(&mapper, &a, Some(ca.node_options(&dir.0, &a, &ca)));
    let (rt_b, node_b) = node(&mapper, &b, Some(ca.node_options(&dir.0, &b, &ca)));
    let (rt_plain, plain) = node(&mapper, &unique("plain"), None);
    let (sink_a, sink_plain) = (sink(&rt_a), sink(&rt_plain));

    let event = send_and_watch(&rt_plain, &plain, &name_of(&node_a));
    assert!(!event.up, "{event:?}");
    let event = send_and_watch(&rt_a, &node_a, &name_of(&plain));
    assert!(!event.up, "{event:?}");

    assert_eq!(
        first_delivered(&rt_b, &node_b, &name_of(&node_a), &sink_a),
        8
    );
    assert!(
        sink_plain.try_recv().is_err(),
        "nothing reached the plain node"
    );
}

#[test]
fn kernels_started_with_tls_flags_form_a_mesh_over_tls() {
    use crate::membership::{eventually, kernel_with, peers_of};
    let dir = TempDir::new();
    let ca = Authority::new(&dir.0, "ca");
    let mapper = port_mapper();
    let names: Vec<String> = (0..3).map(|i| unique(&format!("k{i}"))).collect();
    let mut kernels = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let options = ca.node_options(&dir.0, name, &ca);
        let files: Vec<String> = [&options.ca(), &options.cert(), &options.key()]
            .iter()
            .map(|path| path.display().to_string())
            .collect();
        let seed = (i > 0).then(|| names[0].as_str());
        kernels.push(kernel_with(
            &mapper,
            name,
            seed,
            &[
                "--tls-ca",
                &files[0],
                "--tls-cert",
                &files[1],
                "--tls-key",
                &files[2],
            ],
        ));
    }
    let me = unique("asker");
    let (rt, node) = node(&mapper, &me, Some(ca.node_options(&dir.0, &me, &ca)));
    let full: Vec<NodeName> = names
        .iter()
        .map(|name| format!("localhost/{name}").parse().unwrap())
        .collect();
    for kernel in &full {
        eventually(&format!("{kernel} sees the two others"), || {
            let peers = peers_of(&rt, &node, kernel);
            full.iter()
                .filter(|k| *k != kernel)
                .all(|k| peers.contains(&k.to_string()))
        });
    }
}
