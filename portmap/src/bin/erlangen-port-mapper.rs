//! erlangen-port-mapper: the port-mapper daemon.
//!
//! Listens on 127.0.0.1:10001 by default. Nodes on this host register their
//! name and port; registrations last as long as their connection. SIGINT or
//! SIGTERM stop it cleanly.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use erlangen_portmap::logging::LogFormat;
use erlangen_portmap::{DaemonConfig, Server, LISTEN_DEFAULT};

/// The Erlangen port mapper: maps node names to ports on this host.
///
/// Registration is accepted from loopback only. Lookups and listings from
/// other hosts need the shared secret (a cookie file or ERLANGEN_COOKIE);
/// without one, only loopback clients are served.
#[derive(Debug, Parser)]
#[command(name = "erlangen-port-mapper", version)]
struct Args {
    /// Address and port to listen on. The default is loopback only.
    #[arg(long, default_value_t = LISTEN_DEFAULT)]
    listen: SocketAddr,
    /// File holding the shared secret that remote clients must prove.
    #[arg(long, value_name = "PATH")]
    cookie_file: Option<PathBuf>,
    /// Most names registered at once.
    #[arg(long, default_value_t = erlangen_portmap::config::NAMES_MAX_DEFAULT)]
    max_names: usize,
    /// Most connections open at once.
    #[arg(long, default_value_t = erlangen_portmap::config::CONNECTIONS_MAX_DEFAULT)]
    max_connections: usize,
    /// Milliseconds a client has to complete a request it started.
    #[arg(long, default_value_t = 5000)]
    frame_timeout_ms: u64,
    /// Seconds an unregistered connection may idle.
    #[arg(long, default_value_t = 30)]
    idle_timeout_s: u64,
    /// Also answer Erlang nodes as their epmd would, on this address
    /// (usually 127.0.0.1:4369; Erlang's own epmd must not run there):
    /// registration from loopback, lookups and `net_adm:names()` from
    /// anyone who can connect (epmd's protocol has no authentication).
    #[arg(long, value_name = "ADDR")]
    epmd: Option<SocketAddr>,
    /// Pending connects the listening socket holds.
    #[arg(long, default_value_t = erlangen_portmap::config::BACKLOG_DEFAULT)]
    backlog: u32,
    /// Serve clients of other hosts over TLS only: the cluster's CA (PEM);
    /// needs --tls-cert and --tls-key. Loopback clients stay plain.
    #[arg(long, requires_all = ["tls_cert", "tls_key"])]
    tls_ca: Option<PathBuf>,
    /// This host's certificate chain (PEM), issued by the CA of --tls-ca.
    #[arg(long, requires = "tls_ca")]
    tls_cert: Option<PathBuf>,
    /// This host's private key (PEM).
    #[arg(long, requires = "tls_ca")]
    tls_key: Option<PathBuf>,
    /// How logs are written to stderr: text, or one JSON object per line.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(error) if !error.use_stderr() => {
            let _ = error.print();
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            // One line, not clap's usage block: what precedes it (a list
            // of missing arguments included).
            let text = error.to_string();
            let what: Vec<&str> = text
                .lines()
                .map(str::trim)
                .take_while(|line| !line.is_empty() && !line.starts_with("Usage:"))
                .collect();
            eprintln!("erlangen-port-mapper: {} (see --help)", what.join(" "));
            return ExitCode::from(2);
        }
    };
    erlangen_portmap::logging::init(args.log_format);
    let cookie = match read_cookie(&args) {
        Ok(cookie) => cookie,
        Err(error) => {
            eprintln!("erlangen-port-mapper: {error}");
            return ExitCode::from(2);
        }
    };
    let config = DaemonConfig {
        listen: args.listen,
        cookie,
        names_max: args.max_names,
        connections_max: args.max_connections,
        frame_timeout: Duration::from_millis(args.frame_timeout_ms),
        idle_timeout: Duration::from_secs(args.idle_timeout_s),
        backlog: args.backlog,
        epmd: args.epmd,
        tls: match (&args.tls_ca, &args.tls_cert, &args.tls_key) {
            (Some(ca), Some(cert), Some(key)) => {
                Some(erlangen_portmap::tls::TlsOptions::new(ca, cert, key))
            }
            _ => None,
        },
    };
    let server = match Server::bind(config) {
        Ok(server) => server,
        Err(error) => {
            eprintln!(
                "erlangen-port-mapper: cannot serve on {}: {error}",
                args.listen
            );
            return ExitCode::from(1);
        }
    };
    match server.local_addr() {
        Ok(addr) => println!("erlangen-port-mapper: listening on {addr}"),
        Err(error) => {
            eprintln!("erlangen-port-mapper: {error}");
            return ExitCode::from(1);
        }
    }
    let stopper = server.stopper();
    let signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ]);
    let mut signals = match signals {
        Ok(signals) => signals,
        Err(error) => {
            eprintln!("erlangen-port-mapper: cannot handle signals: {error}");
            return ExitCode::from(1);
        }
    };
    let handle = signals.handle();
    let watcher = std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            tracing::info!(signal, "erlangen-port-mapper: signal received, stopping");
            stopper.stop();
        }
    });
    let result = server.run();
    handle.close();
    let _ = watcher.join();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("erlangen-port-mapper: {error}");
            ExitCode::from(1)
        }
    }
}

/// The secret from `--cookie-file`, or from `ERLANGEN_COOKIE`.
fn read_cookie(args: &Args) -> Result<Option<Vec<u8>>, String> {
    let cookie = match &args.cookie_file {
        Some(path) => {
            Some(erlangen_portmap::cookie_file::read(path).map_err(|error| error.to_string())?)
        }
        // As every node takes it: the environment's value as it is.
        None => std::env::var("ERLANGEN_COOKIE")
            .ok()
            .map(String::into_bytes),
    };
    match cookie {
        Some(bytes) if bytes.is_empty() => Err("the cookie is empty".into()),
        cookie => Ok(cookie),
    }
}
