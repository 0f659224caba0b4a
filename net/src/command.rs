//! `Command`: what agents and the node's handle ask of the event loop
//! (queued by `NodeShared::push`, taken by the loop at most
//! `COMMANDS_PER_TURN_MAX` per turn), and `Target`, the remote agent a
//! command is for.

use erlangen_runtime::{Message, Pid, RemotePid, RemoteSignal};

use crate::wire::{self, WireAttach, WireMessage};

/// Encodes a remote spawn's arguments on the loop (where pids encode).
pub(crate) type ArgsEncoder = Box<dyn FnOnce() -> Result<Vec<u8>, wire::DecodeError> + Send>;

/// What agents and the node's handle ask of the loop.
pub(crate) enum Command {
    /// A message for a remote agent, encoded by its sender.
    Send { to: Target, message: WireMessage },
    /// A large message or reply for a remote agent, its packet encoded by
    /// its sender, `head` in front of the message's `bytes` (the loop only
    /// moves them: fragments.rs).
    SendEncoded {
        to: Target,
        type_name: String,
        head: Vec<u8>,
        bytes: Vec<u8>,
    },
    /// A message for a registered name on a node, encoded by its sender.
    SendNamed {
        node: String,
        name: String,
        message: WireMessage,
    },
    /// A reply to a remote agent's call `tag`, encoded by its sender.
    Reply {
        to: Target,
        tag: u64,
        message: WireMessage,
    },
    /// A signal for a remote agent.
    Signal {
        from: Option<Pid>,
        to: Target,
        signal: RemoteSignal,
    },
    /// A remote spawn.
    Spawn {
        node: String,
        request: u64,
        parent: Pid,
        attach: WireAttach,
        function: String,
        args: ArgsEncoder,
        args_type: &'static str,
        mailbox_len: Option<u32>,
    },
    /// A remote spawn's caller stopped waiting: answer it now (with an
    /// error if the spawn is still pending), and kill a child whose
    /// success comes later.
    CancelSpawn { request: u64 },
    /// A lookup of the agent registered as `name` on `node`, answered
    /// under the caller's tag (`Node::whereis`).
    Whereis {
        node: String,
        caller: Pid,
        tag: u64,
        name: String,
    },
    /// A sender's direct write to `node` failed (outbox.rs step 4): flush
    /// its connection, which meets the error and closes it.
    Flush { node: String },
    /// A large packet the node's decoder thread decoded
    /// (event_loop/large.rs).
    Decoded(Box<Decoded>),
    /// A term for a process of an Erlang node (erlang/route.rs).
    ErlangSend {
        to: eetf::Pid,
        message: Box<eetf::Term>,
    },
    /// A term for the process registered as `name` on the Erlang node
    /// `node` (`Node::erlang_send_named`).
    ErlangSendNamed {
        from: Option<Pid>,
        node: String,
        name: String,
        message: Box<eetf::Term>,
    },
    /// A spawn of `module:function(args…)` on an Erlang node
    /// (`Node::erlang_spawn`), answered to `parent` as a `SpawnResult`.
    ErlangSpawn {
        node: String,
        request: u64,
        parent: Pid,
        module: String,
        function: String,
        args: Vec<eetf::Term>,
        link: bool,
    },
    /// A signal from a local agent (or a plain thread) to a process of an
    /// Erlang node (erlang_route.rs).
    ErlangSignal {
        from: Option<Pid>,
        to: eetf::Pid,
        signal: RemoteSignal,
    },
    /// Connect to `node` if not connected (a seed to join, a peer a peer
    /// listed, a node monitored): waits for the connection like a message
    /// and is nothing once it is up.
    Connect { node: String },
    /// Local agents joined or left process groups: tell every peer
    /// (groups.rs).
    Groups {
        joined: Vec<(String, u64)>,
        left: Vec<(String, u64)>,
    },
    /// Local agents took or released cluster-wide names: tell every peer
    /// (global.rs).
    Globals {
        registered: Vec<(String, u64)>,
        released: Vec<(String, u64)>,
    },
    /// Stop the node.
    Stop,
}

impl Command {
    /// Whether the command counts in the node's backlog (backpressure):
    /// messages and signals, until written or dropped.
    pub(crate) fn is_backlog(&self) -> bool {
        matches!(
            self,
            Command::Send { .. }
                | Command::SendEncoded { .. }
                | Command::SendNamed { .. }
                | Command::Signal { .. }
                | Command::Reply { .. }
                | Command::ErlangSend { .. }
                | Command::ErlangSendNamed { .. }
        )
    }

    /// Whether the loop may write bytes to a connection for it, so that a
    /// later direct write of its sender must wait until it is processed
    /// (unsettled.rs). A flush only writes what is in a buffer already; a
    /// decoded large message is delivered here.
    pub(crate) fn puts_bytes_on_a_connection(&self) -> bool {
        !matches!(self, Command::Flush { .. } | Command::Decoded(_))
    }

    /// Whether the command is a message (signals are never dropped for
    /// backpressure: they are bounded by the number of edges).
    pub(crate) fn is_message(&self) -> bool {
        matches!(
            self,
            Command::Send { .. }
                | Command::SendEncoded { .. }
                | Command::SendNamed { .. }
                | Command::Reply { .. }
                | Command::ErlangSend { .. }
                | Command::ErlangSendNamed { .. }
        )
    }

    /// The node the command is for, if it is for one.
    pub(crate) fn node(&self) -> Option<&str> {
        match self {
            Command::Send { to, .. }
            | Command::SendEncoded { to, .. }
            | Command::Signal { to, .. }
            | Command::Reply { to, .. } => Some(&to.node),
            Command::SendNamed { node, .. }
            | Command::Spawn { node, .. }
            | Command::Whereis { node, .. }
            | Command::Connect { node } => Some(node),
            _ => None,
        }
    }
}

/// A remote agent a command is for.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    /// Its node, `host/node`.
    pub(crate) node: String,
    /// That node's incarnation.
    pub(crate) incarnation: u64,
    /// Its serial there.
    pub(crate) serial: u64,
}

impl Target {
    /// The target named by a remote id.
    pub(crate) fn of(id: &RemotePid) -> Target {
        Target {
            node: id.node().to_owned(),
            incarnation: id.incarnation(),
            serial: id.serial(),
        }
    }
}

/// What the decoder made of a large packet (`Command::Decoded`).
pub(crate) struct Decoded {
    pub(crate) token: mio::Token,
    /// The receiving agent's serial.
    pub(crate) to: u64,
    /// The reply's tag, for a reply.
    pub(crate) tag: Option<u64>,
    /// The message, or why not: `Err((close, why))`, `close` if the packet
    /// itself was bad.
    pub(crate) message: Result<Message, (bool, String)>,
}
