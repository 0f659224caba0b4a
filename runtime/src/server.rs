//! Servers (Erlang/OTP's `gen_server`): an agent that answers typed calls
//! and casts, on [`Ctx::call`] and [`Ctx::cast`].
//!
//! A [`Server`] names its request, reply and cast types, so a client that
//! sends the wrong type does not compile: it calls through a
//! [`ServerRef<S>`], whose `call` takes `S::Request` and returns
//! `S::Reply`.
//!
//! # Protocol
//!
//! 1. [`start_server`] spawns the agent (linked or monitored to the caller
//!    as the options say), which runs `init` and registers the name if one
//!    is given, then answers the starter: `start_server` returns only after
//!    both, so a restarted server is never missing from its name beyond the
//!    restart itself (OTP's `start_link`). A failed `init` or a taken name
//!    fails the start with the reason.
//! 2. Then it takes messages in order: a `Call<S::Request>` goes to
//!    `handle_call`, whose [`Reply`] answers at once, later (`NoReply`: keep
//!    the `ReplyTo`, answer with `Ctx::reply`), or stops the server; a
//!    `Cast<S::Cast>` goes to `handle_cast`; anything else to `handle_info`.
//! 3. A stop (from a handler, or a `ShutdownRequest` from its supervisor)
//!    runs `terminate` and ends the agent with the reason; a kill ends it at
//!    once (Erlangen's exits are not trapped, so `terminate` does not run).
//!
//! A server's mailbox holds `SERVER_MAILBOX_LEN_DEFAULT` messages unless
//! the options say otherwise (an agent's default is 64): many clients may
//! call at once, and a request that finds the mailbox full is refused and
//! counted, and its caller times out — size it for the clients you expect.

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use crate::context::Ctx;
use crate::error::Error;
use crate::exit::ExitReason;
use crate::message::Message;
use crate::pid::Pid;
use crate::reply::{Call, CallError, Cast, ReplyTo};
use crate::spawn::SpawnOptions;
use crate::supervisor::ShutdownRequest;

pub use crate::config::{SERVER_INIT_TIMEOUT, SERVER_MAILBOX_LEN_DEFAULT};

/// What `handle_call` does with a call.
#[derive(Debug)]
pub enum Reply<R> {
    /// Answer now.
    Reply(R),
    /// Answer later with `Ctx::reply` to the call's `ReplyTo` (kept by the
    /// handler).
    NoReply,
    /// Answer (if given), then stop with the reason.
    Stop(ExitReason, Option<R>),
}

/// What `handle_cast` and `handle_info` do next.
#[derive(Debug)]
pub enum Flow {
    /// Take the next message.
    Continue,
    /// Stop with the reason.
    Stop(ExitReason),
}

/// A server's behaviour. Only `handle_call` is required.
pub trait Server: Send + 'static {
    /// What clients call with.
    type Request: Any + Send;
    /// What calls are answered with.
    type Reply: Any + Send;
    /// What clients cast (use `()` if none).
    type Cast: Any + Send;

    /// Runs before the server takes any message; an error fails the start.
    fn init(&mut self, ctx: &Ctx) -> Result<(), ExitReason> {
        let _ = ctx;
        Ok(())
    }

    /// Answers a call (`from` can be kept to answer later).
    fn handle_call(
        &mut self,
        ctx: &Ctx,
        request: Self::Request,
        from: &ReplyTo,
    ) -> Reply<Self::Reply>;

    /// Handles a cast.
    fn handle_cast(&mut self, ctx: &Ctx, request: Self::Cast) -> Flow {
        let _ = (ctx, request);
        Flow::Continue
    }

    /// Handles any other message (a `Down`, a `WatchDown`, a timer's).
    fn handle_info(&mut self, ctx: &Ctx, message: Message) -> Flow {
        let _ = (ctx, message);
        Flow::Continue
    }

    /// Runs when the server stops (not when it is killed).
    fn terminate(&mut self, ctx: &Ctx, reason: &ExitReason) {
        let _ = (ctx, reason);
    }
}

/// A typed handle on a running server.
pub struct ServerRef<S> {
    /// The server's agent.
    pub pid: Pid,
    _server: PhantomData<fn() -> S>,
}

impl<S> Clone for ServerRef<S> {
    fn clone(&self) -> Self {
        ServerRef {
            pid: self.pid.clone(),
            _server: PhantomData,
        }
    }
}

impl<S> fmt::Debug for ServerRef<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ServerRef").field(&self.pid).finish()
    }
}

impl<S: Server> ServerRef<S> {
    /// A typed handle on `pid`, which the caller knows runs an `S` (a pid
    /// looked up by name, say).
    pub fn from_pid(pid: Pid) -> ServerRef<S> {
        ServerRef {
            pid,
            _server: PhantomData,
        }
    }

    /// Calls the server ([`Ctx::call`], typed).
    pub fn call(
        &self,
        ctx: &Ctx,
        request: S::Request,
        timeout: Duration,
    ) -> Result<S::Reply, CallError> {
        let reply = ctx.call(&self.pid, request, timeout)?;
        reply.downcast::<S::Reply>().map_err(|_| {
            CallError::Exit(crate::exit::ExitStatus::Exit(ExitReason::other(
                "the server answered with another type",
            )))
        })
    }

    /// Casts to the server ([`Ctx::cast`], typed).
    pub fn cast(&self, ctx: &Ctx, request: S::Cast) {
        ctx.cast(&self.pid, request);
    }
}

/// How to start a server.
#[derive(Clone, Debug, Default)]
pub struct ServerOptions {
    /// Registers the server under this name before `start_server` returns.
    pub name: Option<String>,
    /// Attach to the caller: `spawn` options' link or monitor.
    pub spawn: SpawnOptions,
    /// The mailbox capacity (default `SERVER_MAILBOX_LEN_DEFAULT`).
    pub mailbox_len: Option<usize>,
}

impl ServerOptions {
    /// No name, not attached, the default server mailbox.
    pub fn new() -> ServerOptions {
        ServerOptions::default()
    }

    /// Registers the server as `name`.
    pub fn name(mut self, name: &str) -> ServerOptions {
        self.name = Some(name.to_owned());
        self
    }

    /// Links the server to the caller.
    pub fn link(mut self) -> ServerOptions {
        self.spawn = self.spawn.link();
        self
    }

    /// Monitors the server from the caller (Erlangen's monitor: a
    /// supervisor's edge to its child).
    pub fn monitor(mut self) -> ServerOptions {
        self.spawn = self.spawn.monitor();
        self
    }
}

/// Starts `server` (protocol step 1) and returns its typed handle once
/// `init` has run and its name (if any) is registered.
///
/// ```
/// use erlangen_runtime::server::*;
/// use erlangen_runtime::*;
/// use std::time::Duration;
/// struct Counter(u64);
/// impl Server for Counter {
///     type Request = u64;
///     type Reply = u64;
///     type Cast = ();
///     fn handle_call(&mut self, _ctx: &Ctx, add: u64, _from: &ReplyTo) -> Reply<u64> {
///         self.0 += add;
///         Reply::Reply(self.0)
///     }
/// }
/// let rt = Runtime::builder().workers(1).build().unwrap();
/// let total = rt.run(|ctx| {
///     let counter = start_server(ctx, Counter(0), ServerOptions::new().name("counter")).unwrap();
///     counter.call(ctx, 2, Duration::from_secs(5)).unwrap();
///     counter.call(ctx, 3, Duration::from_secs(5)).unwrap()
/// });
/// assert_eq!(total.unwrap(), 5);
/// ```
pub fn start_server<S: Server>(
    ctx: &Ctx,
    server: S,
    options: ServerOptions,
) -> Result<ServerRef<S>, Error> {
    let name = options.name.clone();
    let spawn = options
        .spawn
        .mailbox_len(options.mailbox_len.unwrap_or(SERVER_MAILBOX_LEN_DEFAULT));
    let started = ctx.spawn_and_await::<Result<(), Error>, _>(
        spawn,
        SERVER_INIT_TIMEOUT,
        move |ctx, starter| {
            let mut server = server;
            let started = match server.init(ctx) {
                Err(reason) => Err(Error::InvalidConfig(format!("init failed: {reason}"))),
                Ok(()) => match &name {
                    Some(name) => ctx.register(name),
                    None => Ok(()),
                },
            };
            let ok = started.is_ok();
            ctx.reply(&starter, started);
            if ok {
                serve(ctx, &mut server);
            }
        },
    );
    let (pid, started) = started.map_err(|e| e.into_error("server"))?;
    started.map(|()| ServerRef::from_pid(pid))
}

/// Protocol steps 2 and 3.
fn serve<S: Server>(ctx: &Ctx, server: &mut S) {
    let reason = loop {
        let message = ctx.receive();
        let message = match message.downcast::<Call<S::Request>>() {
            Ok(call) => {
                let Call { from, request } = call;
                match server.handle_call(ctx, request, &from) {
                    Reply::Reply(reply) => ctx.reply(&from, reply),
                    Reply::NoReply => {}
                    Reply::Stop(reason, reply) => {
                        if let Some(reply) = reply {
                            ctx.reply(&from, reply);
                        }
                        break reason;
                    }
                }
                continue;
            }
            Err(message) => message,
        };
        let message = match message.downcast::<Cast<S::Cast>>() {
            Ok(cast) => {
                if let Flow::Stop(reason) = server.handle_cast(ctx, cast.request) {
                    break reason;
                }
                continue;
            }
            Err(message) => message,
        };
        if message.downcast_ref::<ShutdownRequest>().is_some() {
            break ExitReason::Shutdown;
        }
        if let Flow::Stop(reason) = server.handle_info(ctx, message) {
            break reason;
        }
    };
    server.terminate(ctx, &reason);
    ctx.exit(reason);
}
