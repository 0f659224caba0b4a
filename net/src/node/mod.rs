//! `Node`: a runtime made reachable from other nodes, and its builder.
//!
//! # Start
//!
//! 1. Bind the listener on an ephemeral port of the listen address.
//! 2. Register the name with the host's port mapper: a taken name fails the
//!    start with [`NetError::NameTaken`] (Erlangen documented this and never
//!    did it, bug 4).
//! 3. Pick a random incarnation, build the shared state, start the event
//!    loop thread (event_loop/), which from then on owns the listener,
//!    every connection and the registration.
//!
//! # Stop (`stop` or drop)
//!
//! 1. Tell the loop to stop and wake it.
//! 2. The loop closes every connection, firing `noconnection` on every local
//!    link and monitor across it, answers pending remote spawns and name
//!    lookups with an error, and closes the registration (the port mapper forgets the name).
//! 3. Join the loop thread.

mod cluster;
mod erlang;

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use erlangen_runtime::server::{Server, ServerRef};
use erlangen_runtime::{
    Attach, CallError, Ctx, ExitReason, ExitStatus, Message, Pid, Runtime, SpawnOptions,
};
use serde::Serialize;

use crate::command::Command;
use crate::config::{HEARTBEAT_INTERVAL_DEFAULT, HEARTBEAT_TIMEOUT_DEFAULT};
use crate::error::NetError;
use crate::event_loop::EventLoop;
use crate::functions::Functions;
use crate::id::{AgentId, NodeName};
use crate::observation::{Observe, Observed};
use crate::outbox::Outboxes;
use crate::peer_stats::PeerStats;
use crate::route::PeerRoute;
use crate::shared::{Exported, NodeShared, SpawnResult, Whereabouts};
use crate::types::Types;
use crate::wire::{self, WireAttach};

/// Configures a [`Node`].
///
/// ```no_run
/// use erlangen_net::{Functions, Node, Types};
/// let rt = erlangen_runtime::Runtime::new().unwrap();
/// let node = Node::builder("alpha")
///     .cookie(b"secret")
///     .types(Types::new())
///     .functions(Functions::new().register("double", |_ctx, n: u64| n * 2))
///     .start(&rt)
///     .unwrap();
/// println!("{} listens on {}", node.name(), node.local_addr());
/// ```
#[derive(Debug)]
pub struct NodeBuilder {
    name: String,
    host: String,
    cookie: Option<Vec<u8>>,
    port_mapper: SocketAddr,
    listen: IpAddr,
    heartbeat_interval: Duration,
    heartbeat_timeout: Duration,
    spawn_timeout: Duration,
    poll_spin: Duration,
    types: Types,
    functions: Functions,
    erlang: Option<crate::erlang::ErlangOptions>,
    tls: Option<erlangen_portmap::tls::TlsOptions>,
    global_resolver: crate::global::Resolver,
    metrics: Option<SocketAddr>,
}

impl NodeBuilder {
    /// Also joins Erlang's distribution under an Erlang node name
    /// (crate::erlang): registers with the host's epmd and accepts Erlang
    /// nodes on a second listener, on the node's listen address.
    ///
    /// ```
    /// use erlangen_net::erlang::ErlangOptions;
    /// let builder = erlangen_net::Node::builder("alpha").erlang(ErlangOptions::new("rust"));
    /// assert!(format!("{builder:?}").contains("rust"));
    /// ```
    pub fn erlang(mut self, options: crate::erlang::ErlangOptions) -> NodeBuilder {
        self.erlang = Some(options);
        self
    }

    /// Runs every connection to other nodes of ours over TLS (rustls): the
    /// node presents its certificate and accepts only peers whose
    /// certificate the CA issued (mutual TLS); a dialled node's certificate
    /// must also name the host in its node name (`host/node`; a DNS name
    /// or an address). Our handshake still runs inside (the cookie). A
    /// node without TLS cannot talk to one with it, either way round. The
    /// files are read by [`NodeBuilder::start`], which fails with
    /// [`NetError::Tls`] if they do not make a usable configuration.
    ///
    /// ```
    /// use erlangen_net::{NetError, Node, TlsOptions};
    /// let rt = erlangen_runtime::Runtime::new().unwrap();
    /// let refused = Node::builder("alpha")
    ///     .cookie(b"secret")
    ///     .tls(TlsOptions::new("/nonexistent/ca.pem", "node.pem", "node.key"))
    ///     .start(&rt);
    /// assert!(matches!(refused, Err(NetError::Tls(_))));
    /// ```
    pub fn tls(mut self, options: erlangen_portmap::tls::TlsOptions) -> NodeBuilder {
        self.tls = Some(options);
        self
    }

    /// How this node settles a cluster-wide name that two nodes took apart
    /// (Erlang's `global:register_name/3` resolve function): given the name
    /// and both holders (the one on the node whose name sorts first
    /// first), the holder to keep, or `None` for neither; a holder not
    /// kept is killed with `global name conflict: NAME`. Give every node of
    /// a cluster the same function (each acts only on its own holder). The
    /// default is [`crate::keep_first`].
    ///
    /// ```
    /// use erlangen_net::Node;
    /// // The holder on the node whose name sorts last keeps the name.
    /// let builder = Node::builder("alpha").global_conflict_resolver(|_name, _first, second| {
    ///     Some(second.clone())
    /// });
    /// let _ = builder;
    /// ```
    pub fn global_conflict_resolver(
        mut self,
        resolver: impl Fn(&str, &AgentId, &AgentId) -> Option<AgentId> + Send + Sync + 'static,
    ) -> NodeBuilder {
        self.global_resolver = crate::global::Resolver(Arc::new(resolver));
        self
    }

    /// Serves the node's and its runtime's metrics in Prometheus's text
    /// format at `http://ADDR/metrics` (a port of 0 picks a free one;
    /// [`Node::metrics_addr`] says which). The endpoint only reads, asks
    /// for no cookie and answers one request at a time: bind it where only
    /// the scraper reaches. Each scrape walks the live agents once.
    ///
    /// ```
    /// let builder = erlangen_net::Node::builder("alpha").metrics_listen("127.0.0.1:0".parse().unwrap());
    /// let _ = builder;
    /// ```
    pub fn metrics_listen(mut self, addr: SocketAddr) -> NodeBuilder {
        self.metrics = Some(addr);
        self
    }

    /// The host part of the node's name (default `localhost`): how other
    /// nodes reach this host's port mapper.
    ///
    /// ```
    /// let builder = erlangen_net::Node::builder("alpha").host("example.org");
    /// assert!(format!("{builder:?}").contains("example.org"));
    /// ```
    pub fn host(mut self, host: &str) -> NodeBuilder {
        self.host = host.to_owned();
        self
    }

    /// The shared secret (default: `ERLANGEN_COOKIE`, else
    /// `~/.erlangen-cookie`, made if missing).
    ///
    /// ```
    /// let builder = erlangen_net::Node::builder("alpha").cookie(b"secret");
    /// let _ = builder;
    /// ```
    pub fn cookie(mut self, cookie: &[u8]) -> NodeBuilder {
        self.cookie = Some(cookie.to_vec());
        self
    }

    /// The port mapper of this host (default 127.0.0.1:10001).
    ///
    /// ```
    /// let builder = erlangen_net::Node::builder("alpha").port_mapper("127.0.0.1:4369".parse().unwrap());
    /// assert!(format!("{builder:?}").contains("4369"));
    /// ```
    pub fn port_mapper(mut self, addr: SocketAddr) -> NodeBuilder {
        self.port_mapper = addr;
        self
    }

    /// The address to listen on (default 127.0.0.1; the port is ephemeral).
    ///
    /// ```
    /// let builder = erlangen_net::Node::builder("alpha").listen("127.0.0.1".parse().unwrap());
    /// let _ = builder;
    /// ```
    pub fn listen(mut self, addr: IpAddr) -> NodeBuilder {
        self.listen = addr;
        self
    }

    /// Heartbeat interval and the silence after which a peer is lost.
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = erlangen_net::Node::builder("alpha")
    ///     .heartbeat(Duration::from_millis(200), Duration::from_secs(2));
    /// let _ = builder;
    /// ```
    pub fn heartbeat(mut self, interval: Duration, timeout: Duration) -> NodeBuilder {
        self.heartbeat_interval = interval;
        self.heartbeat_timeout = timeout;
        self
    }

    /// How long [`Node::spawn`] waits for the remote node's answer
    /// (default `config::SPAWN_TIMEOUT_DEFAULT`, 30 s). Every failure the
    /// node can see answers sooner, with its reason.
    ///
    /// ```
    /// let builder = erlangen_net::Node::builder("alpha")
    ///     .spawn_timeout(std::time::Duration::from_secs(5));
    /// assert!(format!("{builder:?}").contains("5s"));
    /// ```
    pub fn spawn_timeout(mut self, timeout: Duration) -> NodeBuilder {
        self.spawn_timeout = timeout;
        self
    }

    /// How long the node's event loop keeps polling its sockets, yielding
    /// the core between polls, after it last had something to do, before it
    /// sleeps in the kernel (default `config::POLL_SPIN_DEFAULT`, 100 µs;
    /// zero: sleep at once). A message that arrives meanwhile is read
    /// without a thread wake (5–20 µs each on a small VM); the price is CPU
    /// time that only a thread wanting the core would otherwise use.
    ///
    /// ```
    /// let builder = erlangen_net::Node::builder("alpha")
    ///     .poll_spin(std::time::Duration::ZERO);
    /// assert!(format!("{builder:?}").contains("poll_spin: 0ns"));
    /// ```
    pub fn poll_spin(mut self, spin: Duration) -> NodeBuilder {
        self.poll_spin = spin;
        self
    }

    /// The message types this node sends and receives.
    ///
    /// ```
    /// #[derive(serde::Serialize, serde::Deserialize, Debug)]
    /// struct Hello(String);
    /// let builder = erlangen_net::Node::builder("alpha")
    ///     .types(erlangen_net::Types::new().register::<Hello>("example/hello"));
    /// let _ = builder;
    /// ```
    pub fn types(mut self, types: Types) -> NodeBuilder {
        self.types = types;
        self
    }

    /// The functions other nodes may spawn here.
    ///
    /// ```
    /// let builder = erlangen_net::Node::builder("alpha")
    ///     .functions(erlangen_net::Functions::new().register("inc", |_ctx, n: i64| n + 1));
    /// let _ = builder;
    /// ```
    pub fn functions(mut self, functions: Functions) -> NodeBuilder {
        self.functions = functions;
        self
    }

    /// Starts the node on `runtime` (module docs, "Start").
    ///
    /// ```
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// // Nothing listens on port 1: the start fails with a clear error.
    /// let refused = erlangen_net::Node::builder("alpha")
    ///     .cookie(b"secret")
    ///     .port_mapper("127.0.0.1:1".parse().unwrap())
    ///     .start(&rt);
    /// assert!(matches!(refused, Err(erlangen_net::NetError::PortMapper(_))));
    /// ```
    pub fn start(self, runtime: &Runtime) -> Result<Node, NetError> {
        let name = NodeName::new(&self.host, &self.name)
            .map_err(|e| NetError::InvalidName(e.to_string()))?;
        let cookie = match self.cookie {
            Some(cookie) => cookie,
            None => crate::cookie::default_cookie().map_err(|_| NetError::NoCookie)?,
        };
        if self.heartbeat_interval.is_zero() || self.heartbeat_timeout <= self.heartbeat_interval {
            return Err(NetError::InvalidName(
                "the heartbeat timeout must exceed a non-zero interval".to_owned(),
            ));
        }
        let tls = match &self.tls {
            None => None,
            Some(options) => {
                Some(erlangen_portmap::tls::Tls::load(options).map_err(NetError::Tls)?)
            }
        };
        let descriptors = erlangen_portmap::listener::raise_descriptor_limit();
        tracing::debug!(descriptors, "erlangen: descriptor limit");
        let listener = erlangen_portmap::listener::Listener::bind(
            SocketAddr::new(self.listen, 0),
            crate::config::LISTEN_BACKLOG,
        )?;
        let local_addr = listener.local_addr()?;
        let registration =
            crate::registration::register(self.port_mapper, &self.name, local_addr.port())?;
        let erlang = match &self.erlang {
            None => None,
            Some(options) => Some(erlang::start_erlang(options, self.listen)?),
        };
        let mut incarnation = [0u8; 8];
        getrandom::fill(&mut incarnation).map_err(|e| std::io::Error::other(e.to_string()))?;
        let shared = Arc::new_cyclic(|me| NodeShared {
            name,
            incarnation: u64::from_le_bytes(incarnation),
            cookie,
            port_mapper: self.port_mapper,
            heartbeat_interval: self.heartbeat_interval,
            heartbeat_timeout: self.heartbeat_timeout,
            spawn_timeout: self.spawn_timeout,
            poll_spin: self.poll_spin,
            tls,
            global_resolver: self.global_resolver,
            runtime: runtime.handle(),
            types: self.types,
            functions: self.functions,
            exported: Mutex::new(Exported::default()),
            route: Arc::new(PeerRoute { shared: me.clone() }),
            commands: Mutex::new(VecDeque::new()),
            waker: Mutex::new(None),
            wake_pending: AtomicBool::new(false),
            stats: Mutex::new(HashMap::new()),
            dropped: AtomicU64::new(0),
            log: Mutex::new(Default::default()),
            backlog_commands: std::sync::atomic::AtomicUsize::new(0),
            unsettled: crate::unsettled::Unsettled::default(),
            outboxes: Outboxes::default(),
            owed: Mutex::new(Vec::new()),
            backlog_bytes: std::sync::atomic::AtomicUsize::new(0),
            busy_waits: AtomicU64::new(0),
            next_request: AtomicU64::new(1),
            local_addr,
            stopped: AtomicBool::new(false),
            node_monitors: Mutex::new(Vec::new()),
            groups: Mutex::new(Default::default()),
            global: Mutex::new(Default::default()),
            erlang: erlang.as_ref().map(|start| {
                start.shared(Arc::new(crate::erlang_route::ErlangRoute {
                    shared: me.clone(),
                }))
            }),
        });
        let event_loop = EventLoop::new(
            shared.clone(),
            listener,
            registration,
            erlang.map(|start| (start.listener, start.registration)),
        )?;
        let thread = std::thread::Builder::new()
            .name(format!("erlangen-node-{}", shared.name.name()))
            .stack_size(crate::event_loop::LOOP_STACK_BYTES)
            .spawn(move || event_loop.run())?;
        tracing::info!(node = %shared.name, addr = %local_addr, "erlangen: node listening");
        let observer = crate::observer::start(runtime, Arc::downgrade(&shared));
        let mut node = Node {
            shared,
            thread: Some(thread),
            metrics: None,
            observer,
        };
        if let Some(addr) = self.metrics {
            // On failure the node is dropped, and so stopped.
            let endpoint =
                crate::metrics_http::Endpoint::start(addr, Arc::downgrade(&node.shared))?;
            tracing::info!(addr = %endpoint.addr(), "erlangen: metrics served");
            node.metrics = Some(endpoint);
        }
        Ok(node)
    }
}

/// A runtime made reachable by other nodes.
///
/// Pids of its agents work on every node it talks to: `ctx.send`, `kill`,
/// `link`, `monitor` and `unlink` take remote pids as they take local ones.
///
/// ```
/// use erlangen_net::{Functions, Node};
/// use erlangen_portmap::{Daemon, DaemonConfig};
/// use erlangen_runtime::{Down, Runtime, SpawnOptions};
///
/// // A port mapper on an ephemeral port, and two nodes that use it.
/// let mapper = Daemon::start(DaemonConfig {
///     listen: "127.0.0.1:0".parse().unwrap(),
///     ..DaemonConfig::default()
/// })
/// .unwrap();
/// let (rt_a, rt_b) = (Runtime::new().unwrap(), Runtime::new().unwrap());
/// let alpha = Node::builder(&format!("alpha-{}", std::process::id()))
///     .cookie(b"secret")
///     .port_mapper(mapper.local_addr())
///     .start(&rt_a)
///     .unwrap();
/// let beta = Node::builder(&format!("beta-{}", std::process::id()))
///     .cookie(b"secret")
///     .port_mapper(mapper.local_addr())
///     .functions(Functions::new().register("double", |_ctx, n: u64| n * 2))
///     .start(&rt_b)
///     .unwrap();
/// let beta_name = beta.name().clone();
/// let alpha = std::sync::Arc::new(alpha);
/// let node = alpha.clone();
/// let doubled = rt_a
///     .run(move |ctx| {
///         // Spawned over there, monitored from here: the value comes back
///         // in the Down.
///         let child = node
///             .spawn(ctx, &beta_name, "double", 21u64, SpawnOptions::new().monitor())
///             .unwrap();
///         assert!(child.is_remote());
///         let down = ctx.receive().downcast::<Down>().unwrap();
///         *down.status.value().unwrap().downcast_ref::<u64>().unwrap()
///     })
///     .unwrap();
/// assert_eq!(doubled, 42);
/// assert!(alpha.peers().iter().any(|peer| peer.connected));
/// assert_eq!(alpha.dropped(), 0);
/// assert_eq!(alpha.backlog().0, 0);
/// beta.stop();
/// ```
#[derive(Debug)]
pub struct Node {
    shared: Arc<NodeShared>,
    thread: Option<JoinHandle<()>>,
    /// The metrics endpoint, if asked for.
    metrics: Option<crate::metrics_http::Endpoint>,
    /// The node's observer (observer.rs), unless another node of the
    /// runtime runs one.
    observer: Option<Pid>,
}

impl Node {
    /// A builder for a node named `name` on this host.
    ///
    /// ```
    /// let builder = erlangen_net::Node::builder("alpha");
    /// assert!(format!("{builder:?}").contains("alpha"));
    /// ```
    pub fn builder(name: &str) -> NodeBuilder {
        NodeBuilder {
            name: name.to_owned(),
            host: "localhost".to_owned(),
            cookie: None,
            port_mapper: erlangen_portmap::LISTEN_DEFAULT,
            listen: IpAddr::V4(Ipv4Addr::LOCALHOST),
            heartbeat_interval: HEARTBEAT_INTERVAL_DEFAULT,
            heartbeat_timeout: HEARTBEAT_TIMEOUT_DEFAULT,
            spawn_timeout: crate::config::SPAWN_TIMEOUT_DEFAULT,
            poll_spin: crate::config::POLL_SPIN_DEFAULT,
            types: Types::new(),
            functions: Functions::new(),
            erlang: None,
            tls: None,
            global_resolver: crate::global::Resolver(Arc::new(crate::global::keep_first)),
            metrics: None,
        }
    }

    /// The node's name.
    ///
    /// ```
    /// # let mapper = erlangen_portmap::Daemon::start(erlangen_portmap::DaemonConfig {
    /// #     listen: "127.0.0.1:0".parse().unwrap(),
    /// #     ..Default::default()
    /// # })
    /// # .unwrap();
    /// # let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// # let node = erlangen_net::Node::builder("doc")
    /// #     .cookie(b"c")
    /// #     .port_mapper(mapper.local_addr())
    /// #     .start(&rt)
    /// #     .unwrap();
    /// assert_eq!(node.name().to_string(), "localhost/doc");
    /// ```
    pub fn name(&self) -> &NodeName {
        &self.shared.name
    }

    /// The node's incarnation: new at every start.
    ///
    /// ```
    /// # let mapper = erlangen_portmap::Daemon::start(erlangen_portmap::DaemonConfig {
    /// #     listen: "127.0.0.1:0".parse().unwrap(),
    /// #     ..Default::default()
    /// # })
    /// # .unwrap();
    /// # let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// # let node = erlangen_net::Node::builder("doc")
    /// #     .cookie(b"c")
    /// #     .port_mapper(mapper.local_addr())
    /// #     .start(&rt)
    /// #     .unwrap();
    /// let first = node.incarnation();
    /// node.stop();
    /// let again = erlangen_net::Node::builder("doc-again")
    ///     .cookie(b"c")
    ///     .port_mapper(mapper.local_addr())
    ///     .start(&rt)
    ///     .unwrap();
    /// assert_ne!(again.incarnation(), first);
    /// ```
    pub fn incarnation(&self) -> u64 {
        self.shared.incarnation
    }

    /// Where it listens.
    ///
    /// ```
    /// # let mapper = erlangen_portmap::Daemon::start(erlangen_portmap::DaemonConfig {
    /// #     listen: "127.0.0.1:0".parse().unwrap(),
    /// #     ..Default::default()
    /// # })
    /// # .unwrap();
    /// # let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// # let node = erlangen_net::Node::builder("doc")
    /// #     .cookie(b"c")
    /// #     .port_mapper(mapper.local_addr())
    /// #     .start(&rt)
    /// #     .unwrap();
    /// assert!(node.local_addr().ip().is_loopback());
    /// assert_ne!(node.local_addr().port(), 0);
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// The node-qualified id of `pid`: `None` for an agent of another
    /// runtime of this process (only this node's runtime's agents and
    /// remote agents have ids here).
    pub fn id_of(&self, pid: &Pid) -> Option<AgentId> {
        self.shared.id_of(pid)
    }

    /// The pid of the agent `id` (a local agent if it is one of ours).
    ///
    /// ```
    /// # let mapper = erlangen_portmap::Daemon::start(erlangen_portmap::DaemonConfig {
    /// #     listen: "127.0.0.1:0".parse().unwrap(),
    /// #     ..Default::default()
    /// # })
    /// # .unwrap();
    /// # let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// # let node = erlangen_net::Node::builder("doc")
    /// #     .cookie(b"c")
    /// #     .port_mapper(mapper.local_addr())
    /// #     .start(&rt)
    /// #     .unwrap();
    /// let pid = rt.spawn(|ctx| { ctx.receive(); });
    /// let id = node.id_of(&pid).unwrap();
    /// assert_eq!(id.node, *node.name());
    /// assert_eq!(node.pid_of(&id), pid); // ours comes back local
    /// ```
    pub fn pid_of(&self, id: &AgentId) -> Pid {
        self.shared.pid_of(id)
    }

    /// Sends `message` from the calling agent to the agent registered as
    /// `name` on `node`. While the node's outbound backlog is above its
    /// high-water mark the agent waits, suspended (backpressure). (See the
    /// example on [`Node`] for a whole session.)
    pub fn send_named<M: Any + Send>(&self, ctx: &Ctx, node: &NodeName, name: &str, message: M) {
        while self.shared.busy() {
            ctx.sleep(BUSY_POLL);
        }
        // A refused message was counted and logged (`try_send_named` says
        // why).
        let _ = self.push_named(node, name, Message::new(message));
    }

    /// Sends `message` to the agent registered as `name` on `node` from a
    /// thread outside the runtime: refused with [`NetError::Busy`] while the
    /// node's outbound backlog is above its high-water mark.
    ///
    /// ```
    /// # let mapper = erlangen_portmap::Daemon::start(erlangen_portmap::DaemonConfig {
    /// #     listen: "127.0.0.1:0".parse().unwrap(),
    /// #     ..Default::default()
    /// # })
    /// # .unwrap();
    /// # let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// # let node = erlangen_net::Node::builder("doc")
    /// #     .cookie(b"c")
    /// #     .port_mapper(mapper.local_addr())
    /// #     .start(&rt)
    /// #     .unwrap();
    /// let to: erlangen_net::NodeName = "localhost/nobody".parse().unwrap();
    /// // Queued at once; with no such node it is dropped and counted later.
    /// node.try_send_named(&to, "echo", 1u64).unwrap();
    /// ```
    pub fn try_send_named<M: Any + Send>(
        &self,
        node: &NodeName,
        name: &str,
        message: M,
    ) -> Result<(), NetError> {
        if self.shared.stopped.load(Ordering::Acquire) {
            return Err(NetError::Stopped);
        }
        if self.shared.busy() {
            return Err(NetError::Busy);
        }
        self.push_named(node, name, Message::new(message))
    }

    /// The agent registered as `name` on `node` (Erlang's
    /// `rpc:call(Node, erlang, whereis, [Name])`), or `None`: one round
    /// trip, answered under a tag of the calling agent (O(1) behind a full
    /// mailbox). Blocks the calling agent, never its worker, at most
    /// `timeout`; a node that cannot be reached or is lost meanwhile is
    /// [`NetError::NoConnection`] at once, with the cause.
    ///
    /// The answer is where the name was when the node read the request: a
    /// name can move after that, which [`Ctx::call`] on the pid then tells
    /// (`noproc`).
    pub fn whereis(
        &self,
        ctx: &Ctx,
        node: &NodeName,
        name: &str,
        timeout: Duration,
    ) -> Result<Option<Pid>, NetError> {
        if *node == self.shared.name {
            return Ok(self.shared.runtime.whereis(name));
        }
        if self.shared.stopped.load(Ordering::Acquire) {
            return Err(NetError::Stopped);
        }
        let tag = ctx.make_tag();
        self.shared.push(Command::Whereis {
            node: node.to_string(),
            caller: ctx.pid(),
            tag: tag.id(),
            name: name.to_owned(),
        });
        let answer = ctx
            .receive_reply(tag, timeout)
            .map_err(|_| NetError::Timeout)?;
        let Ok(Whereabouts(answer)) = answer.downcast::<Whereabouts>() else {
            return Err(NetError::NoConnection("an unexpected answer".to_owned()));
        };
        answer.map_err(NetError::NoConnection)
    }

    /// Calls the server registered as `name` on `node` (Erlang's
    /// `gen_server:call({Name, Node}, Request, Timeout)`): [`Node::whereis`]
    /// then [`Ctx::call`], both within `timeout`, with the call's outcomes:
    /// [`CallError::NoProc`] if nothing is registered under the name,
    /// [`CallError::NoConnection`] if the node cannot be reached or is lost.
    /// `node` may be this node. Each call looks the name up again (a
    /// restarted server is found under its name); a caller that calls one
    /// server often keeps its pid (or a [`ServerRef`] from
    /// [`Node::server`]) and saves the lookup's round trip.
    pub fn call_named<M: Any + Send>(
        &self,
        ctx: &Ctx,
        node: &NodeName,
        name: &str,
        request: M,
        timeout: Duration,
    ) -> Result<Message, CallError> {
        let started = Instant::now();
        let server = self.server_pid(ctx, node, name, timeout)?;
        let left = timeout.saturating_sub(started.elapsed());
        ctx.call(&server, request, left)
    }

    /// Asks the observer of `node` (observer.rs) what `request` asks: a
    /// page of its agents, one agent in detail, its registry, its peers,
    /// its totals, or to kill one of its agents. What `erlangen-top` uses.
    /// Errors as [`Node::call_named`]. `node` may be this node.
    pub fn observe(
        &self,
        ctx: &Ctx,
        node: &NodeName,
        request: Observe,
        timeout: Duration,
    ) -> Result<Observed, CallError> {
        let answer =
            self.call_named(ctx, node, crate::observer::OBSERVER_NAME, request, timeout)?;
        answer.downcast::<Observed>().map_err(|_| {
            CallError::Exit(ExitStatus::Exit(ExitReason::Other(
                "not an observer's answer".into(),
            )))
        })
    }

    /// A typed handle on the server `S` registered as `name` on `node`
    /// (looked up once, [`Node::whereis`]; errors as [`Node::call_named`]).
    pub fn server<S: Server>(
        &self,
        ctx: &Ctx,
        node: &NodeName,
        name: &str,
        timeout: Duration,
    ) -> Result<ServerRef<S>, CallError> {
        self.server_pid(ctx, node, name, timeout)
            .map(ServerRef::from_pid)
    }

    /// The pid registered as `name` on `node`, as a call's error if none.
    fn server_pid(
        &self,
        ctx: &Ctx,
        node: &NodeName,
        name: &str,
        timeout: Duration,
    ) -> Result<Pid, CallError> {
        match self.whereis(ctx, node, name, timeout) {
            Ok(Some(pid)) => Ok(pid),
            Ok(None) => Err(CallError::NoProc),
            Err(NetError::Timeout) => Err(CallError::Timeout),
            Err(_) => Err(CallError::NoConnection),
        }
    }

    /// Queues a message for `name` on `node` (delivered here at once if
    /// `node` is this node); `Err` if it can never be sent.
    fn push_named(&self, node: &NodeName, name: &str, message: Message) -> Result<(), NetError> {
        if *node == self.shared.name {
            if let Some(pid) = self.shared.runtime.whereis(name) {
                self.shared.runtime.send(&pid, message);
            } else {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
            return Ok(());
        }
        let message = self
            .shared
            .encode_message(&message)
            .map_err(|error| NetError::NotSent(error.to_string()))?;
        self.shared.push(Command::SendNamed {
            node: node.to_string(),
            name: name.to_owned(),
            message,
        });
        Ok(())
    }

    /// Spawns the function registered as `function` on `node` with `args`,
    /// attached to the calling agent as `options` say (link or monitor)
    /// before the child runs (Erlangen bug 5), with the options' mailbox
    /// capacity (their stack size and worker are the remote node's
    /// choice). Blocks the calling agent (never its worker) until the node
    /// answers. An unknown function or undecodable arguments are an error,
    /// as is a lost connection. (The example on [`Node`] spawns remotely.)
    pub fn spawn<A>(
        &self,
        ctx: &Ctx,
        node: &NodeName,
        function: &str,
        args: A,
        options: SpawnOptions,
    ) -> Result<Pid, NetError>
    where
        A: Serialize + Send + 'static,
    {
        let attach = options.attach_mode();
        let mailbox_len = options
            .mailbox_capacity()
            .map(|len| u32::try_from(len).unwrap_or(u32::MAX));
        if self.shared.stopped.load(Ordering::Acquire) {
            return Err(NetError::Stopped);
        }
        let request = self.shared.next_request.fetch_add(1, Ordering::Relaxed);
        let attach = match attach {
            None => WireAttach::None,
            Some(Attach::Link) => WireAttach::Link,
            Some(Attach::Monitor) => WireAttach::Monitor,
        };
        self.shared.push(Command::Spawn {
            node: node.to_string(),
            request,
            parent: ctx.pid(),
            attach,
            function: function.to_owned(),
            args: Box::new(move || wire::encode(&args)),
            args_type: std::any::type_name::<A>(),
            mailbox_len,
        });
        let is_reply = |message: &erlangen_runtime::Message| {
            message
                .downcast_ref::<SpawnResult>()
                .is_some_and(|result| result.request == request)
        };
        let reply = match ctx.receive_match_timeout(is_reply, self.shared.spawn_timeout) {
            Ok(reply) => reply,
            Err(_) => {
                // Ask the loop to settle the request: it answers at once,
                // with the child if it started meanwhile, else an error.
                self.shared.push(Command::CancelSpawn { request });
                ctx.receive_match_timeout(is_reply, SPAWN_CANCEL_WAIT)
                    .map_err(|_| NetError::Spawn(format!("no answer from {node}")))?
            }
        };
        let result = reply
            .downcast::<SpawnResult>()
            .map_err(|_| NetError::Spawn("unexpected reply".to_owned()))?;
        result.result.map_err(NetError::Spawn)
    }

    /// Per-peer statistics, by node name.
    ///
    /// ```
    /// # let mapper = erlangen_portmap::Daemon::start(erlangen_portmap::DaemonConfig {
    /// #     listen: "127.0.0.1:0".parse().unwrap(),
    /// #     ..Default::default()
    /// # })
    /// # .unwrap();
    /// # let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// # let node = erlangen_net::Node::builder("doc")
    /// #     .cookie(b"c")
    /// #     .port_mapper(mapper.local_addr())
    /// #     .start(&rt)
    /// #     .unwrap();
    /// assert!(node.peers().is_empty()); // no peer yet
    /// ```
    pub fn peers(&self) -> Vec<PeerStats> {
        self.shared.peer_stats()
    }

    /// Messages dropped by this node: to stale or unknown ids, of types not
    /// registered for distribution, or queued for a node that was lost.
    ///
    /// ```
    /// # let mapper = erlangen_portmap::Daemon::start(erlangen_portmap::DaemonConfig {
    /// #     listen: "127.0.0.1:0".parse().unwrap(),
    /// #     ..Default::default()
    /// # })
    /// # .unwrap();
    /// # let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// # let node = erlangen_net::Node::builder("doc")
    /// #     .cookie(b"c")
    /// #     .port_mapper(mapper.local_addr())
    /// #     .start(&rt)
    /// #     .unwrap();
    /// assert_eq!(node.dropped(), 0);
    /// ```
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// The outbound backlog now: messages and signals queued and not yet
    /// written, and bytes waiting to be written (in the write buffers, and
    /// large messages waiting to leave in fragments). Senders wait while
    /// the first or the buffers' bytes are above their high-water marks
    /// (`config::BACKLOG_*_HIGH_WATER`), and senders of large messages
    /// while those are above theirs (`LARGE_BACKLOG_BYTES_HIGH_WATER`), so
    /// nothing grows without bound.
    pub fn backlog(&self) -> (usize, usize) {
        (
            self.shared.backlog_commands.load(Ordering::Relaxed),
            self.shared.backlog_bytes.load(Ordering::Relaxed) + self.shared.outboxes.large_bytes(),
        )
    }

    /// How many times a sender found the backlog above its high-water mark
    /// and waited.
    ///
    /// ```
    /// # let mapper = erlangen_portmap::Daemon::start(erlangen_portmap::DaemonConfig {
    /// #     listen: "127.0.0.1:0".parse().unwrap(),
    /// #     ..Default::default()
    /// # })
    /// # .unwrap();
    /// # let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// # let node = erlangen_net::Node::builder("doc")
    /// #     .cookie(b"c")
    /// #     .port_mapper(mapper.local_addr())
    /// #     .start(&rt)
    /// #     .unwrap();
    /// assert_eq!(node.busy_waits(), 0);
    /// assert_eq!(node.backlog(), (0, 0));
    /// ```
    pub fn busy_waits(&self) -> u64 {
        self.shared.busy_waits.load(Ordering::Relaxed)
    }

    /// Stops the node (module docs, "Stop").
    ///
    /// ```
    /// # let mapper = erlangen_portmap::Daemon::start(erlangen_portmap::DaemonConfig {
    /// #     listen: "127.0.0.1:0".parse().unwrap(),
    /// #     ..Default::default()
    /// # })
    /// # .unwrap();
    /// # let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// # let node = erlangen_net::Node::builder("doc")
    /// #     .cookie(b"c")
    /// #     .port_mapper(mapper.local_addr())
    /// #     .start(&rt)
    /// #     .unwrap();
    /// node.stop(); // its peers see noconnection; the name is free again
    /// ```
    pub fn stop(mut self) {
        self.stop_now();
    }

    /// Where the metrics endpoint listens, if the node serves one
    /// ([`NodeBuilder::metrics_listen`]).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics
            .as_ref()
            .map(crate::metrics_http::Endpoint::addr)
    }

    fn stop_now(&mut self) {
        if let Some(mut metrics) = self.metrics.take() {
            metrics.stop();
        }
        if let Some(observer) = self.observer.take() {
            self.shared.runtime.kill(&observer, ExitReason::Kill);
        }
        self.shared.stopped.store(true, Ordering::Release);
        self.shared.push(Command::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// How long a spawn's caller that gave up waits for the loop to settle its
/// request (a hang guard: the loop answers at once unless it stopped).
const SPAWN_CANCEL_WAIT: Duration = Duration::from_secs(5);

/// How often an agent waiting for a busy node looks again.
const BUSY_POLL: Duration = Duration::from_micros(200);
