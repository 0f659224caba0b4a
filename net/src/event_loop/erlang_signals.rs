//! What Erlang nodes' control messages do to our agents, and what our
//! agents' signals to Erlang processes become on the wire: the semantics at
//! the boundary (the transport is erlang.rs, the bytes crate::erlang).
//!
//! * An Erlang `monitor/2` of one of our agents observes only, as in
//!   Erlang: it is a watch (`RemoteSignal::Watch`), answered by
//!   `MONITOR_P_EXIT` with the agent's reason when it exits, or `noproc` at
//!   once for a pid or name that is not there.
//! * An Erlang `link/1` links as ours do (recorded in the agent's link set);
//!   when the agent exits, the Erlang process gets `EXIT` with the reason
//!   (erlang/reason.rs), which a trapping process sees as `{'EXIT', Pid,
//!   Reason}`. An `EXIT` from Erlang along a link, and `exit/2`, reach our
//!   agent with the runtime's local semantics.
//! * Our agent's observing monitor of an Erlang process is `MONITOR_P`;
//!   Erlangen's monitor is `MONITOR_P` too, and when our agent ends first
//!   the Erlang process gets `exit/2` with our agent's reason (as a local
//!   monitored agent would be killed), then `DEMONITOR_P`.
//! * Every edge across a connection is recorded in the loop's edge and
//!   watch tables (edges.rs), so the loss of an Erlang node fires
//!   `noconnection` exactly as the loss of one of ours.

use std::sync::atomic::Ordering;

use eetf::{Atom, FixInteger, Reference, Term, Tuple};
use erlangen_runtime::{ExitReason, ExitStatus, Message, Pid, RemoteSignal};

use crate::erlang::control::{self, Control};
use crate::erlang::{reason, ErlangExit};

use super::erlang::{MonitorIn, MonitorOut, OutKind};
use super::EventLoop;

impl EventLoop {
    /// Writes what the Erlang side buffered and acts on what it read and
    /// lost, until nothing is left (acting may write, and a write may close
    /// a connection, which loses it).
    pub(super) fn erlang_effects(&mut self) {
        loop {
            let Some(side) = self.erlang.as_mut() else {
                return;
            };
            side.flush_dirty(self.poll.registry());
            let inbox = std::mem::take(&mut side.inbox);
            let lost = std::mem::take(&mut side.lost);
            let dropped = std::mem::take(&mut side.dropped);
            self.shared.dropped.fetch_add(dropped, Ordering::Relaxed);
            if inbox.is_empty() && lost.is_empty() {
                return;
            }
            for (peer, control) in inbox {
                self.erlang_control(&peer, control);
            }
            for (peer, why) in lost {
                let spawns = self
                    .erlang
                    .as_mut()
                    .map(|side| side.forget_peer(&peer))
                    .unwrap_or_default();
                for spawn in spawns {
                    self.spawn_failed(&spawn.parent, spawn.request, format!("noconnection: {why}"));
                }
                self.lose(&peer, &why);
            }
        }
    }

    /// Sends `body` to the Erlang node `peer`; `false` if not connected.
    fn erlang_send(
        &mut self,
        peer: &str,
        body: Result<Vec<u8>, crate::erlang::term::TermError>,
    ) -> bool {
        let Some(side) = self.erlang.as_mut() else {
            return false;
        };
        match body {
            Ok(body) => side.send_to(peer, &body, self.poll.registry(), &self.shared),
            Err(error) => {
                tracing::warn!(%error, "erlangen: a control message Erlang would refuse was not sent");
                false
            }
        }
    }

    /// `Node::erlang_send_named`: a term for `{name, node}`, from `from`
    /// (the node's pid 0 for a plain thread).
    pub(super) fn erlang_send_named(
        &mut self,
        from: Option<&Pid>,
        node: &str,
        name: &str,
        message: &Term,
    ) {
        let from_e = self.erlang_from(from);
        let body = control::reg_send(&from_e, name, message);
        if !self.erlang_send(node, body) {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `from` as an Erlang pid; a plain thread's signals and messages come
    /// from the node's pid 0.
    fn erlang_from(&self, from: Option<&Pid>) -> eetf::Pid {
        let erlang = self.shared.erlang.as_ref().expect("an Erlang side");
        from.and_then(|from| self.shared.erlang_pid_of(from))
            .unwrap_or_else(|| eetf::Pid::new(erlang.name.as_str(), 0, 0, erlang.creation))
    }

    /// Our live agent an Erlang pid or name stands for.
    fn erlang_local(&self, to: &Term) -> Option<Pid> {
        match to {
            Term::Atom(Atom { name }) => self.shared.runtime.whereis(name),
            Term::Pid(pid) => self
                .shared
                .pid_of_erlang(pid)
                .filter(|pid| !pid.is_remote()),
            _ => None,
        }
    }

    /// One control message from the Erlang node `peer` (module docs).
    fn erlang_control(&mut self, peer: &str, control: Control) {
        match control {
            Control::Send { to, message } => {
                self.erlang_deliver(self.erlang_local(&Term::from(to)), message);
            }
            Control::RegSend { from, to, message } => {
                if to == "net_kernel" {
                    self.net_kernel(peer, &from, &message);
                } else {
                    let to = self.shared.runtime.whereis(&to);
                    self.erlang_deliver(to, message);
                }
            }
            Control::Monitor {
                from,
                to,
                reference,
            } => {
                let watcher = self.shared.pid_of_erlang(&from);
                let local = self.erlang_local(&to);
                let is_kernel = matches!(&to, Term::Atom(Atom { name }) if name == "net_kernel");
                match (watcher, local) {
                    (Some(watcher), Some(local)) => {
                        let side = self.erlang.as_mut().expect("an Erlang side");
                        let id = side.next_id();
                        side.monitors_in.insert(
                            id,
                            MonitorIn {
                                peer: peer.to_owned(),
                                watcher: from,
                                what: to,
                                reference,
                            },
                        );
                        let watch = RemoteSignal::Watch { id };
                        self.record_watch(peer, &local, &watcher, &watch, false);
                        self.shared.runtime.signal(&watcher, &local, watch);
                    }
                    // Our net_kernel lives as long as the node.
                    _ if is_kernel => {}
                    _ => {
                        let noproc = Term::from(Atom::from("noproc"));
                        let body = control::monitor_exit(&to, &from, &reference, &noproc);
                        self.erlang_send(peer, body);
                    }
                }
            }
            Control::Demonitor {
                from,
                to,
                reference,
            } => {
                let side = self.erlang.as_mut().expect("an Erlang side");
                let id = side
                    .monitors_in
                    .iter()
                    .find(|(_, m)| m.peer == peer && m.reference == reference)
                    .map(|(&id, _)| id);
                let Some(id) = id else { return };
                side.monitors_in.remove(&id);
                if let (Some(watcher), Some(local)) =
                    (self.shared.pid_of_erlang(&from), self.erlang_local(&to))
                {
                    let unwatch = RemoteSignal::Unwatch { id };
                    self.record_watch(peer, &local, &watcher, &unwatch, false);
                    self.shared.runtime.signal(&watcher, &local, unwatch);
                }
            }
            Control::MonitorExit {
                reference, reason, ..
            } => {
                let side = self.erlang.as_mut().expect("an Erlang side");
                let Some(monitor) = side.monitors_out.remove(&reference) else {
                    return;
                };
                let status = reason::from_term(&reason);
                let signal = match monitor.kind {
                    OutKind::Watch(id) => RemoteSignal::WatchDown { id, status },
                    OutKind::Killing => RemoteSignal::Down(status),
                };
                self.record_edge(peer, &monitor.local, &monitor.remote, &signal, true);
                self.record_watch(peer, &monitor.local, &monitor.remote, &signal, false);
                self.shared
                    .runtime
                    .signal(&monitor.remote, &monitor.local, signal);
            }
            Control::Link { from, to } => {
                let (Some(remote), local) = (
                    self.shared.pid_of_erlang(&from),
                    self.erlang_local(&Term::from(to.clone())),
                ) else {
                    return;
                };
                match local {
                    Some(local) => {
                        self.record_edge(peer, &local, &remote, &RemoteSignal::Link, false);
                        self.shared
                            .runtime
                            .signal(&remote, &local, RemoteSignal::Link);
                    }
                    None => {
                        let noproc = Term::from(Atom::from("noproc"));
                        let body = control::exit(&to, &from, &noproc, true);
                        self.erlang_send(peer, body);
                    }
                }
            }
            Control::Unlink { id, from, to } => {
                if let (Some(remote), Some(local)) = (
                    self.shared.pid_of_erlang(&from),
                    self.erlang_local(&Term::from(to.clone())),
                ) {
                    self.record_edge(peer, &local, &remote, &RemoteSignal::Unlink, false);
                    self.shared
                        .runtime
                        .signal(&remote, &local, RemoteSignal::Unlink);
                }
                let body = control::unlink(&id, &to, &from, true);
                self.erlang_send(peer, body);
            }
            Control::Exit {
                from,
                to,
                reason: why,
                link,
            } => {
                let (Some(remote), Some(local)) = (
                    self.shared.pid_of_erlang(&from),
                    self.erlang_local(&Term::from(to)),
                ) else {
                    return;
                };
                let why = reason::reason_from_term(&why);
                let signal = if link {
                    RemoteSignal::EdgeExit(why)
                } else {
                    RemoteSignal::Kill(why)
                };
                self.record_edge(peer, &local, &remote, &signal, false);
                self.shared.runtime.signal(&remote, &local, signal);
            }
            Control::SpawnRequest {
                id,
                from,
                module,
                function,
                options,
                args,
            } => self.erlang_spawn(peer, id, from, (module, function, args), &options),
            Control::SpawnReply {
                id, flags, result, ..
            } => {
                let side = self.erlang.as_mut().expect("an Erlang side");
                let Some(spawn) = side.spawns_out.remove(&id) else {
                    return;
                };
                let outcome = match &result {
                    Term::Pid(pid) => match self.shared.pid_of_erlang(pid) {
                        Some(child) => {
                            if flags & 1 != 0 {
                                self.record_edge(
                                    peer,
                                    &spawn.parent,
                                    &child,
                                    &RemoteSignal::Link,
                                    false,
                                );
                                self.shared.runtime.attach_half(&spawn.parent, &child);
                            }
                            Ok(child)
                        }
                        None => Err("not an Erlang node".to_owned()),
                    },
                    Term::Atom(Atom { name }) => Err(name.clone()),
                    other => Err(other.to_string()),
                };
                self.shared.runtime.send(
                    &spawn.parent,
                    Message::new(crate::shared::SpawnResult {
                        request: spawn.request,
                        result: outcome,
                    }),
                );
            }
            Control::Other(op) => {
                tracing::debug!(op, peer, "erlangen: an Erlang control message not acted on");
            }
        }
    }

    /// `SPAWN_REQUEST`: runs a function registered with
    /// `ErlangOptions::function` in an agent of its own, linked to or
    /// watched by the asker as its options say, and answers `SPAWN_REPLY`
    /// first. `erpc:call` (and `rpc:call`, which uses it) asks for
    /// `erpc:execute_call(Ref, M, F, Args)`: the agent then runs `M:F` and
    /// exits with erpc's `{Ref, return, Result}` (or `{Ref, error, Reason,
    /// Stack}`), which the asker's monitor carries back. A function that is
    /// not registered fails with `undef`, as in Erlang.
    fn erlang_spawn(
        &mut self,
        peer: &str,
        id: Term,
        from: eetf::Pid,
        (module, function, args): (String, String, Vec<Term>),
        options: &[Term],
    ) {
        let Some(parent) = self.shared.pid_of_erlang(&from) else {
            return;
        };
        let has = |wanted: &str| {
            options
                .iter()
                .any(|option| matches!(option, Term::Atom(Atom { name }) if name == wanted))
        };
        let (link, monitor) = (has("link"), has("monitor"));
        let (erpc, module, function, args) =
            match (module.as_str(), function.as_str(), args.as_slice()) {
                ("erpc", "execute_call", [reference, Term::Atom(m), Term::Atom(f), a]) => (
                    Some(reference.clone()),
                    m.name.clone(),
                    f.name.clone(),
                    crate::erlang::term::elements(a).unwrap_or_default(),
                ),
                _ => (None, module, function, args),
            };
        let found = self.shared.erlang.as_ref().and_then(|erlang| {
            erlang
                .functions
                .get(&(module.clone(), function.clone()))
                .cloned()
        });
        // Erlang's `undef` and its stack, `[{M, F, Args, []}]`.
        let stack = Term::from(eetf::List::from(vec![Term::from(Tuple::from(vec![
            Term::from(Atom::from(module.as_str())),
            Term::from(Atom::from(function.as_str())),
            Term::from(eetf::List::from(args.clone())),
            Term::from(eetf::List::nil()),
        ]))]));
        let pids = crate::shared::WeakErlangPids(std::sync::Arc::downgrade(&self.shared));
        let body = move |ctx: &mut erlangen_runtime::Ctx| -> ErlangExit {
            let undef = Term::from(Atom::from("undef"));
            let Some(f) = found else {
                return ErlangExit(match erpc {
                    Some(reference) => erpc_error(reference, undef, stack),
                    None => Term::from(Tuple::from(vec![undef, stack])),
                });
            };
            match erpc {
                None => {
                    f(ctx, &pids, args);
                    ErlangExit(Term::from(Atom::from("normal")))
                }
                Some(reference) => {
                    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        f(ctx, &pids, args)
                    }));
                    ErlangExit(match outcome {
                        Ok(result) => Term::from(Tuple::from(vec![
                            reference,
                            Term::from(Atom::from("return")),
                            result,
                        ])),
                        Err(panic) => {
                            let text = panic
                                .downcast_ref::<&str>()
                                .map(|s| s.to_string())
                                .or_else(|| panic.downcast_ref::<String>().cloned())
                                .unwrap_or_else(|| "panic".to_owned());
                            let why =
                                reason::reason_to_term(&ExitReason::Panic(text.into()), false);
                            erpc_error(reference, why, Term::from(eetf::List::nil()))
                        }
                    })
                }
            }
        };
        let watch_id = self.erlang.as_mut().expect("an Erlang side").next_id();
        let runtime = self.shared.runtime.clone();
        let before_run = |child: &Pid| {
            if link {
                runtime.signal(&parent, child, RemoteSignal::Link);
            }
            if monitor {
                runtime.signal(&parent, child, RemoteSignal::Watch { id: watch_id });
            }
        };
        let spawned = self.shared.runtime.spawn_then(
            erlangen_runtime::SpawnOptions::new(),
            None,
            before_run,
            body,
        );
        let child = match spawned {
            Ok(child) => child,
            Err(error) => {
                tracing::warn!(%error, "erlangen: an Erlang spawn request failed");
                let refused = Term::from(Atom::from("system_limit"));
                self.erlang_send(peer, control::spawn_reply(&id, &from, 0, &refused));
                return;
            }
        };
        let Some(child_e) = self.shared.erlang_pid_of(&child) else {
            return;
        };
        if link {
            self.record_edge(peer, &child, &parent, &RemoteSignal::Link, false);
        }
        if monitor {
            let watch = RemoteSignal::Watch { id: watch_id };
            self.record_watch(peer, &child, &parent, &watch, false);
            self.erlang
                .as_mut()
                .expect("an Erlang side")
                .monitors_in
                .insert(
                    watch_id,
                    MonitorIn {
                        peer: peer.to_owned(),
                        watcher: from.clone(),
                        what: Term::from(child_e.clone()),
                        reference: id.clone(),
                    },
                );
        }
        let flags = i32::from(link) | (i32::from(monitor) << 1);
        self.erlang_send(
            peer,
            control::spawn_reply(&id, &from, flags, &Term::from(child_e)),
        );
    }

    /// `Node::erlang_spawn`: `SPAWN_REQUEST` to `node`; the reply comes
    /// as `Control::SpawnReply`, or a lost connection fails it.
    pub(super) fn erlang_spawn_out(
        &mut self,
        node: &str,
        request: u64,
        parent: Pid,
        (module, function): (&str, &str),
        args: &[Term],
        link: bool,
    ) {
        let Some(parent_e) = self.shared.erlang_pid_of(&parent) else {
            self.spawn_failed(&parent, request, "not an Erlang node".into());
            return;
        };
        let reference = self.erlang_reference(request);
        let options: &[&str] = if link { &["link"] } else { &[] };
        let body = control::spawn_request(&reference, &parent_e, (module, function), args, options);
        self.erlang
            .as_mut()
            .expect("an Erlang side")
            .spawns_out
            .insert(
                reference.clone(),
                super::erlang::SpawnOut {
                    peer: node.to_owned(),
                    request,
                    parent: parent.clone(),
                },
            );
        if !self.erlang_send(node, body) {
            if let Some(side) = self.erlang.as_mut() {
                side.spawns_out.remove(&reference);
            }
            self.spawn_failed(&parent, request, format!("cannot reach {node}"));
        }
    }

    /// A reference of our node for number `id` (monitors and spawns).
    fn erlang_reference(&self, id: u64) -> Term {
        let erlang = self.shared.erlang.as_ref().expect("an Erlang side");
        Term::from(Reference {
            node: Atom::from(erlang.name.as_str()),
            id: vec![id as u32, (id >> 32) as u32, 0],
            creation: erlang.creation,
        })
    }

    /// Delivers a term to our agent, or counts it dropped.
    fn erlang_deliver(&self, to: Option<Pid>, message: Term) {
        match to {
            Some(pid) => self.shared.runtime.send(&pid, Message::new(message)),
            None => {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// `net_kernel`'s part we play: `is_auth` (what `net_adm:ping` calls)
    /// answers `yes`; the rest is ignored.
    fn net_kernel(&mut self, peer: &str, from: &eetf::Pid, message: &Term) {
        // {'$gen_call', {From, Tag}, {is_auth, Node}}
        let Term::Tuple(Tuple { elements }) = message else {
            return;
        };
        let [Term::Atom(label), Term::Tuple(Tuple { elements: caller }), Term::Tuple(Tuple { elements: request })] =
            elements.as_slice()
        else {
            return;
        };
        let is_auth =
            matches!(request.first(), Some(Term::Atom(Atom { name })) if name == "is_auth");
        if label.name != "$gen_call" || !is_auth || caller.len() != 2 {
            return;
        }
        let to = match &caller[0] {
            Term::Pid(pid) => pid.clone(),
            _ => from.clone(),
        };
        let reply = Term::from(Tuple::from(vec![
            caller[1].clone(),
            Term::from(Atom::from("yes")),
        ]));
        self.erlang_send(peer, control::send(&to, &reply));
    }

    /// A signal from our agent `from` to the Erlang process `to` (module
    /// docs); one for a node that is not connected answers `noconnection`
    /// at once.
    pub(super) fn erlang_signal(
        &mut self,
        from: Option<Pid>,
        to_e: eetf::Pid,
        signal: RemoteSignal,
    ) {
        let Some(to) = self.shared.pid_of_erlang(&to_e) else {
            return;
        };
        let from_e = self.erlang_from(from.as_ref());
        let peer = to_e.node.name.clone();
        let sent = match &signal {
            RemoteSignal::Link => self.erlang_send(&peer, control::link(&from_e, &to_e)),
            RemoteSignal::Unlink => {
                let id = self.erlang.as_mut().expect("an Erlang side").next_id();
                let id = Term::from(FixInteger::from((id % (1 << 27)) as i32));
                self.erlang_send(&peer, control::unlink(&id, &from_e, &to_e, false))
            }
            RemoteSignal::Monitor | RemoteSignal::Watch { .. } => {
                let Some(local) = from.clone() else { return };
                let kind = match signal {
                    RemoteSignal::Watch { id } => OutKind::Watch(id),
                    _ => OutKind::Killing,
                };
                let id = self.erlang.as_mut().expect("an Erlang side").next_id();
                let reference = self.erlang_reference(id);
                let side = self.erlang.as_mut().expect("an Erlang side");
                side.monitors_out.insert(
                    reference.clone(),
                    MonitorOut {
                        peer: peer.clone(),
                        local,
                        remote: to.clone(),
                        kind,
                    },
                );
                self.erlang_send(&peer, control::monitor(&from_e, &to_e, &reference, false))
            }
            RemoteSignal::Unwatch { id } => {
                let found = self.take_monitor_out(from.as_ref(), &to, OutKind::Watch(*id));
                match found {
                    Some(reference) => {
                        self.erlang_send(&peer, control::monitor(&from_e, &to_e, &reference, true))
                    }
                    None => true,
                }
            }
            RemoteSignal::EdgeExit(why) => {
                // Erlangen's monitor of `to` ends with its watcher: `to` is
                // killed as a local monitored agent would be.
                match self.take_monitor_out(from.as_ref(), &to, OutKind::Killing) {
                    Some(reference) => {
                        let why = reason::reason_to_term(why, true);
                        self.erlang_send(&peer, control::exit(&from_e, &to_e, &why, false));
                        self.erlang_send(&peer, control::monitor(&from_e, &to_e, &reference, true))
                    }
                    None => {
                        let why = reason::reason_to_term(why, false);
                        self.erlang_send(&peer, control::exit(&from_e, &to_e, &why, true))
                    }
                }
            }
            RemoteSignal::Kill(why) => {
                let why = reason::reason_to_term(why, true);
                self.erlang_send(&peer, control::exit(&from_e, &to_e, &why, false))
            }
            RemoteSignal::WatchDown { id, status } => {
                let side = self.erlang.as_mut().expect("an Erlang side");
                match side.monitors_in.remove(id) {
                    Some(monitor) => {
                        let why = reason::to_term(status);
                        let body = control::monitor_exit(
                            &monitor.what,
                            &monitor.watcher,
                            &monitor.reference,
                            &why,
                        );
                        self.erlang_send(&monitor.peer, body)
                    }
                    None => true,
                }
            }
            // Erlang monitors of ours are watches: no `Down` goes out.
            _ => true,
        };
        if let Some(local) = &from {
            let down = matches!(signal, RemoteSignal::Monitor);
            self.record_edge(&peer, local, &to, &signal, down);
            self.record_watch(&peer, local, &to, &signal, true);
            if !sent {
                // Not connected: a link or monitor gets `noconnection` now.
                let answer = match &signal {
                    RemoteSignal::Link => Some(RemoteSignal::EdgeExit(ExitReason::NoConnection)),
                    RemoteSignal::Monitor => Some(RemoteSignal::Down(ExitStatus::Exit(
                        ExitReason::NoConnection,
                    ))),
                    RemoteSignal::Watch { id } => Some(RemoteSignal::WatchDown {
                        id: *id,
                        status: ExitStatus::Exit(ExitReason::NoConnection),
                    }),
                    _ => None,
                };
                if let Some(answer) = answer {
                    self.record_edge(&peer, local, &to, &answer, down);
                    self.record_watch(&peer, local, &to, &answer, false);
                    if let Some(side) = self.erlang.as_mut() {
                        side.monitors_out
                            .retain(|_, m| !(m.local == *local && m.remote == to));
                    }
                    self.shared.runtime.signal(&to, local, answer);
                }
            }
        }
    }

    /// Removes our monitor of `to` by `from` of `kind`; its reference.
    fn take_monitor_out(&mut self, from: Option<&Pid>, to: &Pid, kind: OutKind) -> Option<Term> {
        let from = from?;
        let side = self.erlang.as_mut()?;
        let reference = side
            .monitors_out
            .iter()
            .find(|(_, m)| m.local == *from && m.remote == *to && m.kind == kind)
            .map(|(reference, _)| reference.clone())?;
        side.monitors_out.remove(&reference);
        Some(reference)
    }
}

/// erpc's exit reason for a call that failed: `{Ref, error, Reason,
/// Stack}`.
fn erpc_error(reference: Term, why: Term, stack: Term) -> Term {
    Term::from(Tuple::from(vec![
        reference,
        Term::from(Atom::from("error")),
        why,
        stack,
    ]))
}
