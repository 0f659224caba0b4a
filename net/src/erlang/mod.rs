//! The Erlang distribution beside our own protocol: a node started with
//! [`crate::NodeBuilder::erlang`] also registers with the host's epmd
//! under an Erlang node name (`alive@host`) and accepts connections from
//! Erlang nodes on a second listener, driven by the same event loop
//! (event_loop/erlang.rs); no second loop and no async runtime.
//!
//! What it shares with our protocol: the loop, the local agents and their
//! registered names, the exported-pid table (an Erlang pid of one of our
//! agents resolves through it). What it does not: the wire (Erlang's
//! framing, handshake and term format), the cookie (Erlang's, read as `erl`
//! reads it), the listener and the port mapper (epmd).
//!
//! The protocol cores have no I/O, each in its own file: [`epmd`] (register
//! and look up), [`handshake`] (version 6, MD5 challenge), [`term`] (the
//! external term format, with our limits around `eetf`) and [`control`]
//! (the control messages).
//!
//! # What works across the boundary (this version)
//!
//! * `net_adm:ping('rust@host')` answers `pong`; our node appears in the
//!   Erlang node's `nodes()`.
//! * `{Name, 'rust@host'} ! Term` delivers `Term` (an [`eetf::Term`]) to the
//!   agent registered as `Name`; `Pid ! Term` to one of our agents whose pid
//!   it holds. A name or pid that is not there drops the message, as Erlang
//!   does.
//! * Our agents answer with `ctx.send(&pid, term)`, where `pid` is
//!   [`ErlangPids::erlang_pid`] (on [`crate::Node`], or the one an [`ErlangFunction`] gets) of an Erlang pid received in a term; only
//!   [`eetf::Term`] values can be sent to an Erlang process
//!   ([`ErlangPids::erlang_term_pid`] puts one of our pids into a term, and
//!   it comes back as the same agent).
//! * Links, monitors and exits both ways, with the reasons mapped
//!   ([`reason`]): an Erlang `monitor/2` of our agent observes only (as in
//!   Erlang) and gets `'DOWN'` with its reason, or `noproc` at once; an
//!   Erlang `link/1` and our agent's exit give a trapping process `{'EXIT',
//!   Pid, Reason}`; our agent's `watch` and `link` of an Erlang process see
//!   its reason; Erlangen's monitor of an Erlang process kills it (with
//!   `exit/2` and our agent's reason) when our agent ends first, as it
//!   would locally. The loss of an Erlang node fires `noconnection` on every
//!   edge across it (event_loop/erlang_signals.rs).
//!
//! * Erlang nodes run functions registered with [`ErlangOptions::function`]:
//!   `spawn/4`, `rpc:call/4`, `erpc:call/4` (`SPAWN_REQUEST`).
//!
//! * Our node dials an Erlang node it is not connected to when one of its
//!   agents sends or signals there (epmd lookup, handshake as the dialer;
//!   simultaneous connects settled as Erlang does), and
//!   [`crate::Node::erlang_send_named`] sends to `{Name, Node}`.
//!
//! * An agent sends and receives its own serde types as terms
//!   ([`serde_term`]: records as tagged tuples, enums as atoms or tagged
//!   tuples, `Vec<u8>` as binaries, [`ErlangPid`] as pids).
//! * Our port mapper can be the host's epmd (`--epmd`, portmap/PROTOCOL.md).
//!
//! * Our agents start `{M, F, A}` on an Erlang node
//!   ([`crate::Node::erlang_spawn`], linked if asked).
//!
//! * Large messages travel in fragments both ways (`DFLAG_FRAGMENTS`,
//!   [`fragments`]), interleaved with small ones; a message is at most
//!   `config::ERLANG_PACKET_BYTES_MAX` (Erlang has no such limit).

pub mod control;
pub mod fragments;
pub mod handshake;
pub mod reason;
pub mod serde_term;
pub mod term;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub use eetf;
pub use eetf::Term;
/// The epmd protocol (it lives with our port mapper, which can serve it).
pub use erlangen_portmap::epmd;
pub use serde_term::ErlangPid;

/// A function Erlang nodes may run here (`spawn/4`, `rpc:call/4`,
/// `erpc:call/4`): it takes the node's pid conversions and the call's
/// arguments, and returns its result.
pub type ErlangFunction =
    Arc<dyn Fn(&mut erlangen_runtime::Ctx, &dyn ErlangPids, Vec<Term>) -> Term + Send + Sync>;

/// Pids between a node and the terms of Erlang nodes: what an agent needs
/// to answer an Erlang process. [`crate::Node`] implements it, and an
/// [`ErlangFunction`] is handed one.
pub trait ErlangPids {
    /// The pid an Erlang pid received in a term stands for: one of our
    /// agents if it names one, else a pid routed to its Erlang node, to
    /// which `ctx.send` sends [`Term`]s. `None` if the node did not join
    /// Erlang's distribution (or has stopped).
    fn erlang_pid(&self, pid: &eetf::Pid) -> Option<erlangen_runtime::Pid>;

    /// `pid` as an Erlang pid, to put in a term (an Erlang process can send
    /// to it, link and monitor it). `None` if the node did not join
    /// Erlang's distribution, or `pid` is of a node of our own protocol.
    fn erlang_term_pid(&self, pid: &erlangen_runtime::Pid) -> Option<eetf::Pid>;
}

/// What an agent returns to exit with an Erlang reason term: Erlang
/// processes linked to or monitoring it see `term` as its reason (any other
/// returned value is `normal`).
///
/// ```
/// use erlangen_net::erlang::{eetf, reason, ErlangExit, Term};
/// use erlangen_runtime::{ExitStatus, Value};
/// let why = Term::from(eetf::Atom::from("done"));
/// let status = ExitStatus::Ok(Value::new(ErlangExit(why.clone())));
/// assert_eq!(reason::to_term(&status), why);
/// ```
#[derive(Debug, Clone)]
pub struct ErlangExit(pub Term);

/// How a node joins an Erlang cluster ([`crate::NodeBuilder::erlang`]).
///
/// ```
/// let options = erlangen_net::erlang::ErlangOptions::new("rust").cookie(b"secret");
/// assert!(options.full_name().unwrap().starts_with("rust@"));
/// ```
#[derive(Clone)]
pub struct ErlangOptions {
    pub(crate) name: String,
    pub(crate) cookie: Option<Vec<u8>>,
    pub(crate) epmd: SocketAddr,
    pub(crate) functions: HashMap<(String, String), ErlangFunction>,
}

impl std::fmt::Debug for ErlangOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ErlangOptions")
            .field("name", &self.name)
            .field("epmd", &self.epmd)
            .field("functions", &self.functions.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl ErlangOptions {
    /// The node's Erlang name: `alive@host`, or `alive` alone for a short
    /// name on this host (its host name up to the first dot, as
    /// `erl -sname` does).
    pub fn new(name: &str) -> ErlangOptions {
        ErlangOptions {
            name: name.to_owned(),
            cookie: None,
            epmd: SocketAddr::from(([127, 0, 0, 1], 4369)),
            functions: HashMap::new(),
        }
    }

    /// Lets Erlang nodes run `f` as `module:function/N` here, each call in
    /// an agent of its own: `spawn('rust@host', module, function, Args)`,
    /// `rpc:call('rust@host', module, function, Args)` and `erpc:call`.
    /// A call of a function not registered fails as in Erlang (`undef`).
    ///
    /// ```
    /// use erlangen_net::erlang::{eetf, ErlangOptions, Term};
    /// let options = ErlangOptions::new("rust").function("math", "double", |_ctx, _pids, args| {
    ///     match args.as_slice() {
    ///         [Term::FixInteger(n)] => Term::from(eetf::FixInteger::from(n.value * 2)),
    ///         _ => Term::from(eetf::Atom::from("badarg")),
    ///     }
    /// });
    /// assert!(format!("{options:?}").contains("double"));
    /// ```
    pub fn function(
        mut self,
        module: &str,
        function: &str,
        f: impl Fn(&mut erlangen_runtime::Ctx, &dyn ErlangPids, Vec<Term>) -> Term
            + Send
            + Sync
            + 'static,
    ) -> ErlangOptions {
        self.functions
            .insert((module.to_owned(), function.to_owned()), Arc::new(f));
        self
    }

    /// The Erlang cookie (default: `~/.erlang.cookie`, as `erl` reads it).
    pub fn cookie(mut self, cookie: &[u8]) -> ErlangOptions {
        self.cookie = Some(cookie.to_vec());
        self
    }

    /// The epmd to register with (default 127.0.0.1:4369).
    pub fn epmd(mut self, epmd: SocketAddr) -> ErlangOptions {
        self.epmd = epmd;
        self
    }

    /// The full name, `alive@host`.
    pub fn full_name(&self) -> Result<String, String> {
        let name = if self.name.contains('@') {
            self.name.clone()
        } else {
            format!("{}@{}", self.name, short_host_name()?)
        };
        handshake::valid_name(&name)?;
        Ok(name)
    }

    /// The cookie given, or the one `erl` would use.
    pub(crate) fn cookie_or_default(&self) -> Result<Vec<u8>, String> {
        match &self.cookie {
            Some(cookie) => Ok(cookie.clone()),
            None => {
                let path = erlang_cookie_path().ok_or("no home directory for ~/.erlang.cookie")?;
                let bytes = erlangen_portmap::cookie_file::read(&path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                Ok(bytes)
            }
        }
    }
}

/// `~/.erlang.cookie`.
fn erlang_cookie_path() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".erlang.cookie"))
}

/// This host's name up to its first dot.
fn short_host_name() -> Result<String, String> {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is valid for writes of its length, and
    // gethostname writes at most that many bytes.
    let status = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if status != 0 {
        return Err("gethostname failed".into());
    }
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    let host = std::str::from_utf8(&buffer[..end]).map_err(|_| "the host name is not UTF-8")?;
    Ok(host.split('.').next().unwrap_or(host).to_owned())
}

/// What the node's handle and routes know of its Erlang side.
pub(crate) struct ErlangShared {
    /// `alive@host`.
    pub(crate) name: String,
    /// The creation epmd gave this run.
    pub(crate) creation: u32,
    pub(crate) cookie: Vec<u8>,
    /// The route of every Erlang pid.
    pub(crate) route: Arc<dyn erlangen_runtime::Remote>,
    /// What Erlang nodes may run here.
    pub(crate) functions: HashMap<(String, String), ErlangFunction>,
    /// The port of every host's epmd in the cluster (ours: Erlang's
    /// `ERL_EPMD_PORT` is one for all nodes).
    pub(crate) epmd_port: u16,
    /// Bytes in the Erlang connections' write buffers and waiting for
    /// dials (backpressure: senders to Erlang processes wait above
    /// `config::BACKLOG_BYTES_HIGH_WATER`).
    pub(crate) buffered: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for ErlangShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ErlangShared")
            .field("name", &self.name)
            .field("creation", &self.creation)
            .finish_non_exhaustive()
    }
}

/// The 64-bit serial of an Erlang pid `(id, serial)` (ours use all 64
/// bits: Erlang accepts both 32-bit fields whole in `NEW_PID_EXT`).
pub(crate) fn serial_of(pid: &eetf::Pid) -> u64 {
    (u64::from(pid.serial) << 32) | u64::from(pid.id)
}

/// The `(id, serial)` fields of an Erlang pid for our `serial`.
pub(crate) fn fields_of(serial: u64) -> (u32, u32) {
    (serial as u32, (serial >> 32) as u32)
}

/// Registers `alive` at `port` with the epmd at `epmd` (blocking, at the
/// node's start, so that a taken name fails the start); returns the
/// connection that holds the registration and the creation epmd gave.
pub(crate) fn register(
    epmd: SocketAddr,
    alive: &str,
    port: u16,
) -> Result<(std::net::TcpStream, u32), String> {
    use std::io::{Read, Write};
    let timeout = crate::config::HANDSHAKE_TIMEOUT;
    let mut stream = std::net::TcpStream::connect_timeout(&epmd, timeout)
        .map_err(|e| format!("epmd at {epmd}: {e} (is epmd running? `epmd -daemon` starts it)"))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.write_all(&self::epmd::alive2_request(alive, port)))
        .map_err(|e| format!("epmd at {epmd}: {e}"))?;
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match self::epmd::alive2_response(&answer) {
            Ok(creation) => {
                stream
                    .set_read_timeout(None)
                    .map_err(|e| format!("epmd at {epmd}: {e}"))?;
                return Ok((stream, creation));
            }
            Err(self::epmd::EpmdError::Incomplete) => {}
            Err(error) => return Err(format!("epmd at {epmd} refused {alive:?}: {error}")),
        }
        match stream.read(&mut byte) {
            Ok(0) => {
                return Err(format!(
                    "epmd at {epmd} closed the registration of {alive:?}"
                ))
            }
            Ok(_) => answer.push(byte[0]),
            Err(e) => return Err(format!("epmd at {epmd}: {e}")),
        }
    }
}
