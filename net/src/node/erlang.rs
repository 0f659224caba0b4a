//! The Erlang distribution's part of [`Node`]'s API (crate::erlang): its
//! Erlang name, pids for terms, sends to `{Name, Node}`, spawns on Erlang
//! nodes, and the start of the Erlang side (epmd registration).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;

use std::sync::Arc;

use erlangen_runtime::{Ctx, Pid, Remote};

use crate::command::Command;
use crate::error::NetError;
use crate::shared::SpawnResult;

use super::Node;

impl crate::erlang::ErlangPids for Node {
    fn erlang_pid(&self, pid: &crate::erlang::eetf::Pid) -> Option<Pid> {
        self.shared.pid_of_erlang(pid)
    }

    fn erlang_term_pid(&self, pid: &Pid) -> Option<crate::erlang::eetf::Pid> {
        self.shared.erlang_pid_of(pid)
    }
}

/// What the start of the Erlang side made: the node's Erlang settings (all
/// but the route, which needs the node) and what its loop owns.
pub(super) struct ErlangStart {
    name: String,
    creation: u32,
    cookie: Vec<u8>,
    options: crate::erlang::ErlangOptions,
    /// The Erlang listener.
    pub(super) listener: erlangen_portmap::listener::Listener,
    /// The connection that holds the epmd registration.
    pub(super) registration: std::net::TcpStream,
}

impl ErlangStart {
    /// The settings the node shares, with its `route` for Erlang pids.
    pub(super) fn shared(&self, route: Arc<dyn Remote>) -> crate::erlang::ErlangShared {
        crate::erlang::ErlangShared {
            name: self.name.clone(),
            creation: self.creation,
            cookie: self.cookie.clone(),
            route,
            functions: self.options.functions.clone(),
            epmd_port: self.options.epmd.port(),
            buffered: std::sync::atomic::AtomicUsize::new(0),
        }
    }
}

/// Binds the Erlang listener and registers with epmd
/// ([`NodeBuilder::erlang`]).
pub(super) fn start_erlang(
    options: &crate::erlang::ErlangOptions,
    listen: IpAddr,
) -> Result<ErlangStart, NetError> {
    let name = options.full_name().map_err(NetError::Erlang)?;
    let cookie = options.cookie_or_default().map_err(NetError::Erlang)?;
    let listener = erlangen_portmap::listener::Listener::bind(
        SocketAddr::new(listen, 0),
        crate::config::LISTEN_BACKLOG,
    )?;
    let port = listener.local_addr()?.port();
    let alive = name.split('@').next().unwrap_or(&name);
    let (registration, creation) =
        crate::erlang::register(options.epmd, alive, port).map_err(NetError::Erlang)?;
    tracing::info!(
        name,
        port,
        creation,
        "erlangen: joined Erlang's distribution"
    );
    Ok(ErlangStart {
        name,
        creation,
        cookie,
        options: options.clone(),
        listener,
        registration,
    })
}

impl Node {
    /// This node's Erlang name (`alive@host`), if it joined Erlang's
    /// distribution ([`NodeBuilder::erlang`](crate::NodeBuilder::erlang)).
    pub fn erlang_name(&self) -> Option<&str> {
        self.shared
            .erlang
            .as_ref()
            .map(|erlang| erlang.name.as_str())
    }

    /// Sends `message` to the process registered as `name` on the Erlang
    /// node `node` (`alive@host`), from `from` (Erlang's `{Name, Node} !
    /// Message`); the node is dialled if it is not connected. At most
    /// once, as every send: a node that cannot be reached drops it and
    /// counts it ([`Node::dropped`]).
    pub fn erlang_send_named(
        &self,
        from: Option<&Pid>,
        node: &str,
        name: &str,
        message: crate::erlang::Term,
    ) -> Result<(), NetError> {
        if self.shared.erlang.is_none() {
            return Err(NetError::Erlang(
                "this node did not join Erlang's distribution".into(),
            ));
        }
        crate::erlang::handshake::valid_name(node).map_err(NetError::InvalidName)?;
        self.shared.push(crate::command::Command::ErlangSendNamed {
            from: from.cloned(),
            node: node.to_owned(),
            name: name.to_owned(),
            message: Box::new(message),
        });
        Ok(())
    }

    /// Starts `module:function(args…)` on the Erlang node `node`
    /// (`alive@host`), as Erlang's `spawn/4` (`SPAWN_REQUEST`); linked to
    /// the calling agent if `link` (Erlang's `spawn_link/4`). Blocks the
    /// calling agent (never its worker) until the node answers, at most
    /// the node's spawn timeout: the new process's pid, or Erlang's error
    /// (`notsup`, `badopt`, `noconnection`, …). To watch it, `ctx.watch`
    /// the pid (an exit before that is `noproc`, as in Erlang).
    pub fn erlang_spawn(
        &self,
        ctx: &Ctx,
        node: &str,
        (module, function): (&str, &str),
        args: Vec<crate::erlang::Term>,
        link: bool,
    ) -> Result<Pid, NetError> {
        if self.shared.erlang.is_none() {
            return Err(NetError::Erlang(
                "this node did not join Erlang's distribution".into(),
            ));
        }
        crate::erlang::handshake::valid_name(node).map_err(NetError::InvalidName)?;
        if self.shared.stopped.load(Ordering::Acquire) {
            return Err(NetError::Stopped);
        }
        let request = self.shared.next_request.fetch_add(1, Ordering::Relaxed);
        self.shared.push(Command::ErlangSpawn {
            node: node.to_owned(),
            request,
            parent: ctx.pid(),
            module: module.to_owned(),
            function: function.to_owned(),
            args,
            link,
        });
        let is_reply = |message: &erlangen_runtime::Message| {
            message
                .downcast_ref::<SpawnResult>()
                .is_some_and(|result| result.request == request)
        };
        let reply = ctx
            .receive_match_timeout(is_reply, self.shared.spawn_timeout)
            .map_err(|_| NetError::Spawn(format!("no answer from {node}")))?;
        let result = reply
            .downcast::<SpawnResult>()
            .map_err(|_| NetError::Spawn("unexpected reply".to_owned()))?;
        result.result.map_err(NetError::Spawn)
    }
}
