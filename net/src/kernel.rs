//! Kernels: a node as a program of its own, hosting functions that other
//! nodes spawn (Erlangen's `erlangen-kernel`, which evaluated Lisp; ours
//! hosts registered functions). `erlangen-kernel` is [`Kernel::standard`]
//! run as a binary; your own kernel is a few lines:
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     erlangen_net::Kernel::standard()
//!         .functions(|functions| functions.register("triple", |_ctx, n: u64| n * 3))
//!         .main()
//! }
//! ```
//!
//! # A kernel's life
//!
//! 1. Parse the command line (`--help` lists it); a bad flag is one line
//!    on stderr and exit status 2.
//! 2. Read the cookie (`--cookie-file`, else `ERLANGEN_COOKIE`, else
//!    `~/.erlangen-cookie`, made with random bytes if missing).
//! 3. Start an embedded port mapper if asked (`--start-port-mapper`).
//! 4. Start a runtime and a node; log where it listens; connect to each
//!    `--join` seed and to every node registered with the port mapper of
//!    each `--discover` host (the node then meets every member of their
//!    clusters). With
//!    `--erlang-name`, the node also joins Erlang's distribution
//!    (crate::erlang): it registers with the host's epmd (`--epmd`) and
//!    Erlang nodes with the Erlang cookie (`--erlang-cookie-file`, else
//!    `~/.erlang.cookie`) may call its [`standard_erlang_functions`]:
//!    `rpc:call('map@host', erlangen, parallel_map, [inc, [2, 4, 6]])`.
//! 5. Wait for SIGINT or SIGTERM, then stop the node (its peers see
//!    `noconnection`, the port mapper forgets its name) and exit 0.

use std::fmt::Debug;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::Arc;

use erlangen_runtime::{Ctx, Down, ExitReason, Pid, Runtime, SpawnOptions};
use serde::{Deserialize, Serialize};

use crate::functions::Functions;
use crate::node::Node;
use crate::pid::WirePid;
use crate::types::Types;

/// A request for a parallel map: the registered name of an element
/// function and the values.
///
/// ```
/// let request = erlangen_net::kernel::MapRequest { function: "inc".into(), values: vec![1i64, 2], level: 2 };
/// assert_eq!(request.values.len(), 2);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MapRequest<T> {
    /// `inc`, `dec`, `double`, `square` or `negate` (and `sqrt` for `f64`).
    pub function: String,
    /// The values to map.
    pub values: Vec<T>,
    /// How many workers (the seed's `level`, default 2).
    pub level: usize,
}

/// A request to the `incrementer`: answer `n + 1` to `reply_to` (the seed's
/// message benchmark). Its `reply_to` is a [`WirePid`]: it crosses the wire.
///
/// ```
/// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
/// let request = rt.run(|ctx| erlangen_net::kernel::Increment { reply_to: erlangen_net::WirePid(ctx.pid()), n: 1 }).unwrap();
/// assert_eq!(request.n, 1);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Increment {
    /// Where the answer goes.
    pub reply_to: WirePid,
    /// The number.
    pub n: u64,
}

/// A kernel: the types and functions it hosts.
///
/// ```
/// let kernel = erlangen_net::Kernel::standard();
/// assert!(kernel.function_names().contains(&"parallel-map/f64".to_owned()));
/// ```
#[derive(Clone, Default)]
pub struct Kernel {
    types: Types,
    functions: Functions,
    boot: Option<BootFn>,
}

/// What a kernel runs at boot ([`Kernel::on_boot`]).
pub type BootFn = Arc<dyn Fn(&mut Ctx, &Arc<Node>) + Send + Sync>;

impl std::fmt::Debug for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kernel")
            .field("types", &self.types)
            .field("functions", &self.functions)
            .field("boot", &self.boot.is_some())
            .finish()
    }
}

impl Kernel {
    /// The standard kernel: the seed's parallel map over `i64` and `f64`
    /// vectors (`parallel-map/i64`, `parallel-map/f64`), an `echo` agent
    /// (sends every `String` it receives back to the pid it was given), the
    /// seed's benchmark agents (`incrementer`, `ring-hop`), and their types.
    ///
    /// ```
    /// let kernel = erlangen_net::Kernel::standard();
    /// assert!(kernel.function_names().contains(&"parallel-map/i64".to_owned()));
    /// ```
    pub fn standard() -> Kernel {
        Kernel {
            types: standard_types(),
            functions: standard_functions(),
            boot: None,
        }
    }

    /// Runs `boot` at start, in an agent of its own, once the node is up:
    /// what the kernel hosts from the start (a supervisor tree, a
    /// registered server). The agent then stays until the kernel stops, so
    /// what it started under Erlangen's monitor (`start_supervisor`) lives
    /// as long as the kernel.
    ///
    /// ```
    /// let kernel = erlangen_net::Kernel::standard().on_boot(|ctx, _node| {
    ///     let server = ctx.spawn(|ctx| loop { ctx.receive(); });
    ///     ctx.register_pid("booted", &server).unwrap();
    /// });
    /// assert!(format!("{kernel:?}").contains("boot: true"));
    /// ```
    pub fn on_boot(
        mut self,
        boot: impl Fn(&mut Ctx, &Arc<Node>) + Send + Sync + 'static,
    ) -> Kernel {
        self.boot = Some(Arc::new(boot));
        self
    }

    /// Starts the boot agent ([`Kernel::on_boot`]) for `node` on `runtime`,
    /// as `main` does once the node is up; for a kernel embedded in a
    /// program of one's own. `None` if there is no boot function.
    pub fn boot(&self, runtime: &Runtime, node: &Arc<Node>) -> Option<Pid> {
        let boot = self.boot.clone()?;
        let node = node.clone();
        Some(runtime.spawn(move |ctx| {
            boot(ctx, &node);
            // Stay: what the boot function started under this agent's
            // monitors lives as long as the kernel.
            loop {
                ctx.receive();
            }
        }))
    }

    /// Adds types: `kernel.types(|t| t.register::<MyMessage>("my/message"))`.
    ///
    /// ```
    /// #[derive(serde::Serialize, serde::Deserialize, Debug)]
    /// struct Ping;
    /// let (types, _) = erlangen_net::Kernel::standard().types(|t| t.register::<Ping>("my/ping")).into_parts();
    /// assert!(types.names().contains(&"my/ping".to_owned()));
    /// ```
    pub fn types(mut self, add: impl FnOnce(Types) -> Types) -> Kernel {
        self.types = add(self.types);
        self
    }

    /// Adds functions: `kernel.functions(|f| f.register("name", body))`.
    ///
    /// ```
    /// let kernel = erlangen_net::Kernel::standard().functions(|f| f.register("triple", |_ctx, n: u64| n * 3));
    /// assert!(kernel.function_names().contains(&"triple".to_owned()));
    /// ```
    pub fn functions(mut self, add: impl FnOnce(Functions) -> Functions) -> Kernel {
        self.functions = add(self.functions);
        self
    }

    /// The registered function names.
    ///
    /// ```
    /// assert!(erlangen_net::Kernel::default().function_names().is_empty());
    /// ```
    pub fn function_names(&self) -> Vec<String> {
        self.functions.names()
    }

    /// The types and functions, for a node of one's own.
    ///
    /// ```
    /// let (types, functions) = erlangen_net::Kernel::standard().into_parts();
    /// assert!(types.names().contains(&"kernel/increment".to_owned()));
    /// assert!(functions.names().contains(&"incrementer".to_owned()));
    /// ```
    pub fn into_parts(self) -> (Types, Functions) {
        (self.types, self.functions)
    }

    /// Runs the kernel as a program (module docs, "A kernel's life").
    ///
    /// ```
    /// // In a binary: `fn main() -> std::process::ExitCode { erlangen_net::Kernel::standard().main() }`
    /// let kernel = erlangen_net::Kernel::standard();
    /// let _ = kernel; // `main` parses the command line and runs until SIGINT or SIGTERM
    /// ```
    pub fn main(self) -> ExitCode {
        use clap::Parser;
        let args = match KernelArgs::try_parse() {
            Ok(args) => args,
            Err(error) if !error.use_stderr() => {
                let _ = error.print();
                return ExitCode::SUCCESS;
            }
            Err(error) => {
                // One line, not clap's usage block: what precedes it
                // (a list of missing arguments included).
                let text = error.to_string();
                let what: Vec<&str> = text
                    .lines()
                    .map(str::trim)
                    .take_while(|line| !line.is_empty() && !line.starts_with("Usage:"))
                    .collect();
                eprintln!("erlangen-kernel: {} (see --help)", what.join(" "));
                return ExitCode::from(2);
            }
        };
        erlangen_portmap::logging::init_at(args.log_format, args.log_level);
        match self.run(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("erlangen-kernel: {error}");
                ExitCode::from(1)
            }
        }
    }

    fn run(self, args: KernelArgs) -> Result<(), String> {
        let cookie = match &args.cookie_file {
            Some(path) => erlangen_portmap::cookie_file::read(path).map_err(|e| e.to_string())?,
            None => crate::cookie::default_cookie().map_err(|e| e.to_string())?,
        };
        let tls = match (&args.tls_ca, &args.tls_cert, &args.tls_key) {
            (Some(ca), Some(cert), Some(key)) => {
                Some(erlangen_portmap::tls::TlsOptions::new(ca, cert, key))
            }
            _ => None,
        };
        let embedded = if args.start_port_mapper {
            // Other hosts' nodes may look names up here if they prove the
            // cookie (over TLS when the cluster runs it).
            let config = erlangen_portmap::DaemonConfig {
                listen: args.port_mapper,
                cookie: Some(cookie.clone()),
                tls: tls.clone(),
                ..erlangen_portmap::DaemonConfig::default()
            };
            let daemon = erlangen_portmap::Daemon::start(config)
                .map_err(|e| format!("cannot start a port mapper on {}: {e}", args.port_mapper))?;
            tracing::info!(addr = %daemon.local_addr(), "started an embedded port mapper");
            Some(daemon)
        } else {
            None
        };
        let port_mapper = embedded
            .as_ref()
            .map_or(args.port_mapper, |d| d.local_addr());
        // A port mapper on every address is this host's on loopback, where
        // registration is allowed.
        let port_mapper = if port_mapper.ip().is_unspecified() {
            SocketAddr::from(([127, 0, 0, 1], port_mapper.port()))
        } else {
            port_mapper
        };
        let mut runtime = Runtime::builder();
        if let Some(workers) = args.workers {
            runtime = runtime.workers(workers);
        }
        // Spans carry the node's name as their service.
        let service = crate::id::NodeName::new(&args.host, &args.name)
            .map_or_else(|_| args.name.clone(), |name| name.to_string());
        if let Some(path) = &args.trace_spans {
            let spans = crate::span_export::JsonLinesSpans::create(path, &service)
                .map_err(|e| format!("cannot write spans to {}: {e}", path.display()))?;
            runtime = runtime.span_sink(Arc::new(spans));
        }
        #[cfg(feature = "otlp")]
        if let Some(endpoint) = &args.otlp_endpoint {
            if args.trace_spans.is_some() {
                return Err("give --trace-spans or --otlp-endpoint, not both".to_owned());
            }
            let spans = crate::otel::OtelSpans::otlp_http(endpoint, &service)
                .map_err(|e| format!("cannot export spans to {endpoint}: {e}"))?;
            runtime = runtime.span_sink(Arc::new(spans));
        }
        let runtime = runtime.build().map_err(|e| e.to_string())?;
        let signals = signal_hook::iterator::Signals::new([
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
        ])
        .map_err(|e| format!("cannot handle signals: {e}"))?;
        let boot = self.boot.clone();
        // `nodes`: the kernel's peers, as `host/node` names (the node is
        // known once it has started).
        let this_node: Arc<std::sync::OnceLock<std::sync::Weak<Node>>> = Arc::default();
        let peers_of = this_node.clone();
        let functions =
            self.functions
                .register("nodes", move |_ctx: &mut Ctx, (): ()| -> Vec<String> {
                    peers_of
                        .get()
                        .and_then(std::sync::Weak::upgrade)
                        .map(|node| node.nodes().iter().map(ToString::to_string).collect())
                        .unwrap_or_default()
                });
        let mut builder = Node::builder(&args.name)
            .host(&args.host)
            .listen(args.listen)
            .cookie(&cookie)
            .port_mapper(port_mapper)
            .types(self.types)
            .functions(functions);
        if let Some(name) = &args.erlang_name {
            let mut options =
                standard_erlang_functions(crate::erlang::ErlangOptions::new(name)).epmd(args.epmd);
            if let Some(path) = &args.erlang_cookie_file {
                let cookie =
                    erlangen_portmap::cookie_file::read(path).map_err(|e| e.to_string())?;
                options = options.cookie(&cookie);
            }
            builder = builder.erlang(options);
        }
        if let Some(tls) = &tls {
            builder = builder.tls(tls.clone());
        }
        if let Some(addr) = args.metrics_listen {
            builder = builder.metrics_listen(addr);
        }
        let node = builder.start(&runtime).map_err(|e| e.to_string())?;
        let node = Arc::new(node);
        let _ = this_node.set(Arc::downgrade(&node));
        for seed in &args.join {
            let seed: crate::id::NodeName =
                seed.parse().map_err(|e| format!("--join {seed}: {e}"))?;
            node.connect(&seed);
        }
        let discover_tls = match (&tls, args.discover.is_empty()) {
            (Some(tls), false) => Some(erlangen_portmap::tls::Tls::load(tls)?),
            _ => None,
        };
        for host in &args.discover {
            for seed in discover(host, port_mapper, &cookie, discover_tls.as_ref())? {
                if seed != *node.name() {
                    node.connect(&seed);
                }
            }
        }
        let booted = Kernel {
            boot,
            ..Kernel::default()
        }
        .boot(&runtime, &node);
        if booted.is_some() {
            tracing::info!(node = %node.name(), "erlangen-kernel: boot agent started");
        }
        println!(
            "erlangen-kernel: node {} listening on {} (port mapper {port_mapper}); \
             SIGINT or SIGTERM stops it",
            node.name(),
            node.local_addr()
        );
        if let Some(addr) = node.metrics_addr() {
            println!("erlangen-kernel: metrics at http://{addr}/metrics");
        }
        if let Some(name) = node.erlang_name() {
            println!("erlangen-kernel: Erlang nodes reach it as '{name}'");
        }
        let mut signals = signals;
        let _ = signals.forever().next();
        tracing::info!(node = %node.name(), "stopping");
        // The node stops when its last handle goes: ours here, the boot
        // agent's when the runtime unwinds it.
        drop(node);
        drop(runtime);
        if let Some(daemon) = embedded {
            let _ = daemon.stop();
        }
        Ok(())
    }
}

/// The kernel's command line.
#[derive(Debug, clap::Parser)]
#[command(
    name = "erlangen-kernel",
    about = "An Erlangen node that hosts functions other nodes spawn.",
    after_help = "The cookie comes from --cookie-file, else ERLANGEN_COOKIE, else \
                  ~/.erlangen-cookie (made if missing). Every node that talks to \
                  this one needs the same cookie."
)]
struct KernelArgs {
    /// The node's name, registered with the port mapper.
    #[arg(long)]
    name: String,
    /// The host part of the node's name: how other nodes reach this host.
    #[arg(long, default_value = "localhost")]
    host: String,
    /// A file that holds the cookie.
    #[arg(long)]
    cookie_file: Option<PathBuf>,
    /// The port mapper to register with (with --start-port-mapper, where
    /// it listens: 0.0.0.0:10001 lets other hosts look names up here).
    #[arg(long, default_value = "127.0.0.1:10001")]
    port_mapper: SocketAddr,
    /// The address the node listens on (its port is ephemeral): loopback by
    /// default; the address other hosts reach it at, for a cluster across
    /// hosts.
    #[arg(long, default_value = "127.0.0.1")]
    listen: std::net::IpAddr,
    /// Start a port mapper in this process at --port-mapper.
    #[arg(long)]
    start_port_mapper: bool,
    /// Worker threads (default: one per core).
    #[arg(long)]
    workers: Option<usize>,
    /// A node of a cluster to join (`host/node`, repeatable): this kernel
    /// connects to it and, through it, to every member.
    #[arg(long, value_name = "HOST/NODE")]
    join: Vec<String>,
    /// A host whose port mapper lists nodes to join (repeatable): this
    /// kernel connects to every node registered there (the port mapper's
    /// port is --port-mapper's; a remote one asks for the cookie's proof).
    #[arg(long, value_name = "HOST")]
    discover: Vec<String>,
    /// Also join Erlang's distribution under this name (`alive`, or
    /// `alive@host`).
    #[arg(long)]
    erlang_name: Option<String>,
    /// A file that holds the Erlang cookie (default: ~/.erlang.cookie).
    #[arg(long)]
    erlang_cookie_file: Option<PathBuf>,
    /// The host's epmd, to register the Erlang name with.
    #[arg(long, default_value = "127.0.0.1:4369")]
    epmd: SocketAddr,
    /// Run every connection to other nodes over TLS: the cluster's CA
    /// (PEM); needs --tls-cert and --tls-key.
    #[arg(long, requires_all = ["tls_cert", "tls_key"])]
    tls_ca: Option<PathBuf>,
    /// This node's certificate chain (PEM), issued by the CA of --tls-ca,
    /// naming --host.
    #[arg(long, requires = "tls_ca")]
    tls_cert: Option<PathBuf>,
    /// This node's private key (PEM).
    #[arg(long, requires = "tls_ca")]
    tls_key: Option<PathBuf>,
    /// Serve metrics in Prometheus's text format at http://ADDR/metrics
    /// (port 0: a free one, printed at start). Read-only and without the
    /// cookie: bind it where only the scraper reaches.
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,
    /// Record the spans of traced messages (Ctx::start_trace) to this
    /// file, one JSON object per line; without it, traces pass through
    /// the kernel unrecorded.
    #[arg(long, value_name = "FILE")]
    trace_spans: Option<PathBuf>,
    /// Export the spans of traced messages to an OpenTelemetry collector
    /// over OTLP/HTTP (its traces URL: http://HOST:4318/v1/traces).
    #[cfg(feature = "otlp")]
    #[arg(long, value_name = "URL")]
    otlp_endpoint: Option<String>,
    /// How logs are written to stderr: text, or one JSON object per line
    /// (with the node's span).
    #[arg(long, value_enum, default_value_t = erlangen_portmap::logging::LogFormat::Text)]
    log_format: erlangen_portmap::logging::LogFormat,
    /// The least level logged: error, warn, info or debug (debug also puts
    /// what agents log inside an `agent` span naming the agent).
    #[arg(long, default_value = "info")]
    log_level: tracing::Level,
}

/// The nodes registered with the port mapper of `host` (`--discover`): at
/// `port_mapper` for `localhost`, else at `host` on `port_mapper`'s port,
/// proving `cookie` (a remote port mapper lists names only to a peer that
/// proves it).
fn discover(
    host: &str,
    port_mapper: SocketAddr,
    cookie: &[u8],
    tls: Option<&erlangen_portmap::tls::Tls>,
) -> Result<Vec<crate::id::NodeName>, String> {
    use std::net::ToSocketAddrs;
    let addr = if host == "localhost" {
        port_mapper
    } else {
        (host, port_mapper.port())
            .to_socket_addrs()
            .map_err(|e| format!("--discover {host}: {e}"))?
            .next()
            .ok_or_else(|| format!("--discover {host}: no address"))?
    };
    let remote = !erlangen_portmap::server::is_trusted(addr.ip());
    let client = match tls {
        // Another host's port mapper, with the cluster on TLS.
        Some(tls) if remote => erlangen_portmap::Client::connect_tls(addr, tls, host),
        _ => erlangen_portmap::Client::connect(addr),
    };
    let mut client =
        client.map_err(|e| format!("--discover {host}: the port mapper at {addr}: {e}"))?;
    if remote {
        client
            .authenticate(cookie)
            .map_err(|e| format!("--discover {host}: {e}"))?;
    }
    let names = client
        .names()
        .map_err(|e| format!("--discover {host}: {e}"))?;
    Ok(names
        .into_iter()
        .filter_map(|(name, _)| format!("{host}/{name}").parse().ok())
        .collect())
}

/// The types of the standard kernel (on top of the built-ins).
///
/// ```
/// assert!(erlangen_net::kernel::standard_types().names().contains(&"kernel/increment".to_owned()));
/// ```
pub fn standard_types() -> Types {
    Types::new()
        .register::<MapRequest<i64>>("kernel/map-request/i64")
        .register::<MapRequest<f64>>("kernel/map-request/f64")
        .register::<Increment>("kernel/increment")
}

/// The functions of the standard kernel.
///
/// ```
/// let names = erlangen_net::kernel::standard_functions().names();
/// assert!(names.contains(&"ring-hop".to_owned()) && names.contains(&"echo".to_owned()));
/// ```
pub fn standard_functions() -> Functions {
    Functions::new()
        .register(
            "parallel-map/i64",
            |ctx: &mut Ctx, request: MapRequest<i64>| {
                let f = i64_function(&request.function)
                    .unwrap_or_else(|| ctx.exit(ExitReason::other("unknown element function")));
                parallel_map(ctx, f, request.values, request.level)
            },
        )
        .register(
            "parallel-map/f64",
            |ctx: &mut Ctx, request: MapRequest<f64>| {
                let f = f64_function(&request.function)
                    .unwrap_or_else(|| ctx.exit(ExitReason::other("unknown element function")));
                parallel_map(ctx, f, request.values, request.level)
            },
        )
        .register("echo", |ctx: &mut Ctx, to: WirePid| loop {
            match ctx.receive().downcast::<String>() {
                Ok(text) if text == "stop" => return,
                Ok(text) => ctx.send(&to.0, text),
                Err(_) => {}
            }
        })
        .register("incrementer", |ctx: &mut Ctx, (): ()| loop {
            match ctx.receive().downcast::<Increment>() {
                Ok(request) => ctx.send(&request.reply_to.0, request.n + 1),
                Err(_) => return,
            }
        })
        .register("ring-hop", |ctx: &mut Ctx, next: WirePid| loop {
            match ctx.receive().downcast::<u64>() {
                Ok(0) => {
                    ctx.send(&next.0, 0u64);
                    return;
                }
                Ok(hops) => ctx.send(&next.0, hops - 1),
                Err(_) => return,
            }
        })
}

/// What Erlang nodes may call on a kernel that joined Erlang's
/// distribution: `erlangen:parallel_map(Function, List)` and
/// `erlangen:parallel_map(Function, List, Level)`, the seed's parallel map
/// of an element function by name (`inc`, `dec`, `double`, `square`,
/// `negate`) over a list of integers (`badarg` for anything else); and
/// `erlangen:echo()`, an agent that answers `{From, Message}` with
/// `Message` until it gets `stop` (spawn it: `spawn(Node, erlangen, echo,
/// [])`).
///
/// ```
/// let options = erlangen_net::kernel::standard_erlang_functions(
///     erlangen_net::erlang::ErlangOptions::new("map"),
/// );
/// assert!(format!("{options:?}").contains("parallel_map"));
/// ```
pub fn standard_erlang_functions(
    options: crate::erlang::ErlangOptions,
) -> crate::erlang::ErlangOptions {
    use crate::erlang::{eetf, term, Term};
    let badarg = || Term::from(eetf::Atom::from("badarg"));
    options
        .function("erlangen", "echo", |ctx, pids, _args| loop {
            let Ok(message) = ctx.receive().downcast::<Term>() else {
                continue;
            };
            if matches!(&message, Term::Atom(stop) if stop.name == "stop") {
                return Term::from(eetf::Atom::from("ok"));
            }
            let Term::Tuple(request) = message else {
                continue;
            };
            if let [Term::Pid(from), answer] = request.elements.as_slice() {
                if let Some(from) = pids.erlang_pid(from) {
                    ctx.send(&from, answer.clone());
                }
            }
        })
        .function("erlangen", "parallel_map", move |ctx, _pids, args| {
            let (function, list, level) = match args.as_slice() {
                [Term::Atom(f), list] => (f, list, 2),
                [Term::Atom(f), list, level] => match term::integer(level) {
                    Some(level @ 1..=1024) => (f, list, level as usize),
                    _ => return badarg(),
                },
                _ => return badarg(),
            };
            let (Some(f), Some(elements)) = (i64_function(&function.name), term::elements(list))
            else {
                return badarg();
            };
            let Some(values) = elements
                .iter()
                .map(term::integer)
                .collect::<Option<Vec<i64>>>()
            else {
                return badarg();
            };
            let mapped = parallel_map(ctx, f, values, level);
            Term::from(eetf::List::from(
                mapped
                    .into_iter()
                    .map(term::from_integer)
                    .collect::<Vec<_>>(),
            ))
        })
}

fn i64_function(name: &str) -> Option<fn(i64) -> i64> {
    Some(match name {
        "inc" => |x| x.wrapping_add(1),
        "dec" => |x| x.wrapping_sub(1),
        "double" => |x| x.wrapping_mul(2),
        "square" => |x| x.wrapping_mul(x),
        "negate" => |x| x.wrapping_neg(),
        _ => return None,
    })
}

fn f64_function(name: &str) -> Option<fn(f64) -> f64> {
    Some(match name {
        "inc" => |x| x + 1.0,
        "dec" => |x| x - 1.0,
        "double" => |x| x * 2.0,
        "square" => |x| x * x,
        "negate" => |x| -x,
        "sqrt" => f64::sqrt,
        _ => return None,
    })
}

/// The seed's parallel map (`example/parallel-map.lisp`): `level` workers
/// attached as monitors, one chunk each (the last takes the remainder),
/// results collected from their exit notifications; a failed worker's
/// reason ends the caller.
///
/// ```
/// let rt = erlangen_runtime::Runtime::builder().workers(2).build().unwrap();
/// let out = rt.run(|ctx| erlangen_net::kernel::parallel_map(ctx, |x: i64| x + 1, vec![2, 4, 6], 2));
/// assert_eq!(out.unwrap(), vec![3, 5, 7]);
/// ```
pub fn parallel_map<T>(ctx: &mut Ctx, f: fn(T) -> T, values: Vec<T>, level: usize) -> Vec<T>
where
    T: Copy + Send + Sync + Debug + 'static,
{
    let n = level.clamp(1, values.len().max(1));
    let chunk = values.len() / n;
    let mut workers = Vec::with_capacity(n);
    for i in 0..n {
        let start = i * chunk;
        let end = if i + 1 == n {
            values.len()
        } else {
            start + chunk
        };
        let part: Vec<T> = values[start..end].to_vec();
        let spawned = ctx.spawn_with(SpawnOptions::new().monitor(), move |_ctx| {
            (start, part.into_iter().map(f).collect::<Vec<T>>())
        });
        match spawned {
            Ok(pid) => workers.push(pid),
            Err(error) => ctx.exit(ExitReason::other(&error.to_string())),
        }
    }
    let mut parts: Vec<(usize, Vec<T>)> = Vec::with_capacity(n);
    for _ in 0..n {
        let down = ctx
            .receive_match(|m| m.is::<Down>())
            .downcast::<Down>()
            .expect("matched a Down");
        match down.status.into_value() {
            Some(value) => match value.take::<(usize, Vec<T>)>() {
                Ok(part) => parts.push(part),
                Err(_) => ctx.exit(ExitReason::other("a worker returned something else")),
            },
            None => ctx.exit(ExitReason::other("a parallel-map worker failed")),
        }
    }
    parts.sort_by_key(|(start, _)| *start);
    parts.into_iter().flat_map(|(_, part)| part).collect()
}
