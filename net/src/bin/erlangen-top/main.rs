//! `erlangen-top`: a live view of a running node — its agents sorted by
//! mailbox length, run slices or drops, one agent's tree, links and
//! mailbox over time, its connections, and a kill action — like Erlang's
//! `etop`/`observer` or `tokio-console`.
//!
//! It starts a node of its own (named `top-<process id>`, with the cookie
//! and port mapper options of `erlangen-kernel`) and asks the observed
//! node's observer (`erlangen_net::Observe`) once per interval. On a node
//! with a million agents one page costs the observed node one walk of its
//! live agents in chunks, with a yield of the observer's worker after each
//! (`Node::observe`). `--once --json` prints one snapshot for scripts.
//!
//! `app.rs` is the state and the keys, `view.rs` draws it; this file holds
//! the command line, the node and the terminal loop.

mod app;
mod view;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use erlangen_net::{Node, NodeName, Observe, Observed, SortBy};
use erlangen_runtime::Runtime;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};

use crate::app::{Action, App, Key, Screen};

/// Attach to a running Erlangen node and watch its agents.
#[derive(Debug, Parser)]
#[command(name = "erlangen-top", version)]
struct Args {
    /// The node to observe, as `host/node`.
    node: String,
    /// The cookie file (default: `$ERLANGEN_COOKIE` or `~/.erlangen.cookie`).
    #[arg(long)]
    cookie_file: Option<PathBuf>,
    /// This host's port mapper (erlangen-top's own node registers there).
    #[arg(long, default_value = "127.0.0.1:10001")]
    port_mapper: SocketAddr,
    /// The host name of erlangen-top's own node.
    #[arg(long, default_value = "localhost")]
    host: String,
    /// Milliseconds between two refreshes.
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// The first sort of the agent table.
    #[arg(long, value_enum, default_value_t = Sort::Mailbox)]
    sort: Sort,
    /// Only agents whose name or pid contains this.
    #[arg(long)]
    filter: Option<String>,
    /// Agents on a page (at most 500).
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// Print one snapshot and leave, instead of the live view.
    #[arg(long)]
    once: bool,
    /// With `--once`: print the snapshot as JSON (an object with an
    /// `agents` array).
    #[arg(long, requires = "once")]
    json: bool,
    /// The CA certificate of a cluster that runs over TLS.
    #[arg(long, requires_all = ["tls_cert", "tls_key"])]
    tls_ca: Option<PathBuf>,
    /// This node's certificate chain (PEM), with `--tls-ca`.
    #[arg(long, requires = "tls_ca")]
    tls_cert: Option<PathBuf>,
    /// This node's private key (PEM), with `--tls-ca`.
    #[arg(long, requires = "tls_ca")]
    tls_key: Option<PathBuf>,
    /// How `--once` logs its warnings to stderr (the live view does not
    /// log).
    #[arg(long, value_enum, default_value_t = erlangen_portmap::logging::LogFormat::Text)]
    log_format: erlangen_portmap::logging::LogFormat,
}

/// `--sort`'s values.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum Sort {
    Mailbox,
    Slices,
    Dropped,
    Received,
    Serial,
}

impl From<Sort> for SortBy {
    fn from(sort: Sort) -> SortBy {
        match sort {
            Sort::Mailbox => SortBy::Mailbox,
            Sort::Slices => SortBy::Slices,
            Sort::Dropped => SortBy::Dropped,
            Sort::Received => SortBy::Received,
            Sort::Serial => SortBy::Serial,
        }
    }
}

/// How long one request may take before it is an error on the status line.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(error) if !error.use_stderr() => {
            let _ = error.print();
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(2);
        }
    };
    if args.once {
        erlangen_portmap::logging::init_at(args.log_format, tracing::Level::WARN);
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("erlangen-top: {error}");
            ExitCode::from(1)
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let target: NodeName = args
        .node
        .parse()
        .map_err(|e| format!("{}: not a node name ({e}); give host/node", args.node))?;
    let source = Source::start(args, target)?;
    let mut app = App::new(
        source.target.to_string(),
        args.sort.into(),
        args.limit
            .clamp(1, erlangen_net::config::OBSERVE_PAGE_LEN_MAX as u32),
    );
    app.filter = args.filter.clone();
    if args.once {
        return once(&source, &app, args.json);
    }
    let mut terminal = ratatui::try_init().map_err(|e| format!("no terminal: {e}"))?;
    let result = live(
        &mut terminal,
        &mut app,
        &source,
        Duration::from_millis(args.interval_ms),
    );
    ratatui::restore();
    result
}

/// erlangen-top's own node, and the node it observes.
struct Source {
    runtime: Runtime,
    node: Arc<Node>,
    target: NodeName,
}

impl Source {
    fn start(args: &Args, target: NodeName) -> Result<Source, String> {
        let cookie = match &args.cookie_file {
            Some(path) => erlangen_portmap::cookie_file::read(path).map_err(|e| e.to_string())?,
            None => erlangen_net::default_cookie().map_err(|e| e.to_string())?,
        };
        let runtime = Runtime::builder()
            .workers(1)
            .build()
            .map_err(|e| e.to_string())?;
        let mut builder = Node::builder(&format!("top-{}", std::process::id()))
            .host(&args.host)
            .cookie(&cookie)
            .port_mapper(args.port_mapper);
        if let (Some(ca), Some(cert), Some(key)) = (&args.tls_ca, &args.tls_cert, &args.tls_key) {
            builder = builder.tls(erlangen_portmap::tls::TlsOptions::new(ca, cert, key));
        }
        let node = builder.start(&runtime).map_err(|e| e.to_string())?;
        Ok(Source {
            runtime,
            node: Arc::new(node),
            target,
        })
    }

    /// One request to the observed node's observer.
    fn ask(&self, request: Observe) -> Result<Observed, String> {
        let node = self.node.clone();
        let target = self.target.clone();
        self.runtime
            .run(move |ctx| node.observe(ctx, &target, request, REQUEST_TIMEOUT))
            .map_err(|status| format!("the request's agent ended: {status:?}"))?
            .map_err(|error| format!("{}: {error:?}", self.target))
    }
}

/// `--once`: totals and one page, as text or JSON.
fn once(source: &Source, app: &App, json: bool) -> Result<(), String> {
    let Observed::Totals(totals) = source.ask(Observe::Totals)? else {
        return Err("the node answered something else than totals".to_owned());
    };
    let Observed::Agents {
        agents,
        matched,
        next,
    } = source.ask(Observe::Agents(app.agents_request()))?
    else {
        return Err("the node answered something else than agents".to_owned());
    };
    if json {
        let snapshot = serde_json::json!({
            "node": source.target.to_string(),
            "sort": app.sort.name(),
            "totals": totals,
            "matched": matched,
            "next": next,
            "agents": agents,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&snapshot).map_err(|e| e.to_string())?
        );
    } else {
        println!(
            "{}: {} agents, {} matched, by {}",
            totals.node,
            totals.agents,
            matched,
            app.sort.name()
        );
        for agent in agents {
            println!(
                "<{:x}> {} {} mailbox {} received {} dropped {} slices {}",
                agent.serial,
                agent.names.join(","),
                agent.state,
                agent.queued,
                agent.received,
                agent.dropped,
                agent.slices
            );
        }
    }
    Ok(())
}

/// The live view: draw, wait for a key or the next refresh, repeat.
fn live(
    terminal: &mut ratatui::DefaultTerminal,
    app: &mut App,
    source: &Source,
    interval: Duration,
) -> Result<(), String> {
    refresh(app, source);
    let mut refreshed = Instant::now();
    loop {
        terminal
            .draw(|frame| view::draw(frame, app))
            .map_err(|e| e.to_string())?;
        let wait = interval.saturating_sub(refreshed.elapsed());
        if !event::poll(wait).map_err(|e| e.to_string())? {
            refresh(app, source);
            refreshed = Instant::now();
            continue;
        }
        let Event::Key(key) = event::read().map_err(|e| e.to_string())? else {
            continue;
        };
        if key.kind != KeyEventKind::Press {
            continue;
        }
        let Some(key) = map_key(key.code, key.modifiers) else {
            continue;
        };
        match app.on_key(key) {
            Action::None => {}
            Action::Refresh => {
                refresh(app, source);
                refreshed = Instant::now();
            }
            Action::Kill(serial) => {
                app.status = match source.ask(Observe::Kill { serial }) {
                    Ok(Observed::Killed { found: true }) => format!("killed <{serial:x}>"),
                    Ok(_) => format!("<{serial:x}> was not alive"),
                    Err(error) => error,
                };
                refresh(app, source);
                refreshed = Instant::now();
            }
            Action::Trace(serial) => {
                app.status = match source.ask(Observe::Trace { serial }) {
                    Ok(Observed::Tracing {
                        found: true,
                        recording: true,
                    }) => format!("tracing <{serial:x}>'s next message: spans go where the node records them"),
                    Ok(Observed::Tracing {
                        found: true,
                        recording: false,
                    }) => format!("tracing <{serial:x}>'s next message, but the node records no spans (start it with --trace-spans)"),
                    Ok(_) => format!("<{serial:x}> is not alive"),
                    Err(error) => error,
                };
            }
            Action::Quit => return Ok(()),
        }
    }
}

fn map_key(code: KeyCode, modifiers: KeyModifiers) -> Option<Key> {
    Some(match code {
        KeyCode::Char('c') if modifiers.contains(KeyModifiers::CONTROL) => Key::CtrlC,
        KeyCode::Char(c) => Key::Char(c),
        KeyCode::Enter => Key::Enter,
        KeyCode::Esc => Key::Esc,
        KeyCode::Up => Key::Up,
        KeyCode::Down => Key::Down,
        KeyCode::PageUp => Key::PageUp,
        KeyCode::PageDown => Key::PageDown,
        KeyCode::Backspace => Key::Backspace,
        _ => return None,
    })
}

/// Asks the node for what the screen shows; an error goes to the status
/// line and the last answers stay.
fn refresh(app: &mut App, source: &Source) {
    match source.ask(Observe::Totals) {
        Ok(Observed::Totals(totals)) => app.totals = Some(totals),
        Ok(_) => {}
        Err(error) => {
            app.status = error;
            return;
        }
    }
    let answer = match app.screen {
        Screen::Nodes => source.ask(Observe::Peers),
        Screen::Detail => match app.following {
            Some(serial) => source.ask(Observe::Agent { serial }),
            None => return,
        },
        _ => source.ask(Observe::Agents(app.agents_request())),
    };
    match answer {
        Ok(Observed::Agents {
            agents,
            matched,
            next,
        }) => app.set_agents(agents, matched, next),
        Ok(Observed::Agent(detail)) => app.set_detail(detail),
        Ok(Observed::Peers(peers)) => app.peers = peers,
        Ok(_) => {}
        Err(error) => app.status = error,
    }
}
