//! Control messages of the Erlang distribution, as bytes (no I/O).
//!
//! After the handshake each packet (behind a 4-byte length; an empty one is
//! a tick) is `112` ("pass through": no atom cache), a control message (a
//! tuple whose first element is the operation) and, for the sends, the
//! message itself, each a term of their own ([`super::term`]).

use eetf::{Atom, FixInteger, Pid, Term, Tuple};

use super::term;

/// The byte that starts a packet without a distribution header.
const PASS_THROUGH: u8 = 112;
/// The version byte, which starts a packet with a distribution header.
const VERSION: u8 = 131;
/// `DIST_HEADER` (after 131): a packet with a distribution header.
const DIST_HEADER: u8 = 68;
/// `DIST_FRAG_HEADER`: the first fragment of a large packet.
pub(crate) const DIST_FRAG_HEADER: u8 = 69;
/// `DIST_FRAG_CONT`: a further fragment.
pub(crate) const DIST_FRAG_CONT: u8 = 70;

/// `LINK`: `{1, FromPid, ToPid}`.
const LINK: i32 = 1;
/// `SEND`: `{2, Unused, ToPid}`.
const SEND: i32 = 2;
/// `EXIT`: `{3, FromPid, ToPid, Reason}`, along a link.
const EXIT: i32 = 3;
/// `EXIT2`: `{8, FromPid, ToPid, Reason}`, `exit/2`.
const EXIT2: i32 = 8;
/// `REG_SEND`: `{6, FromPid, Unused, ToName}`.
const REG_SEND: i32 = 6;
/// `MONITOR_P`: `{19, FromPid, ToProc, Ref}`.
const MONITOR_P: i32 = 19;
/// `DEMONITOR_P`: `{20, FromPid, ToProc, Ref}`.
const DEMONITOR_P: i32 = 20;
/// `MONITOR_P_EXIT`: `{21, FromProc, ToPid, Ref, Reason}`.
const MONITOR_P_EXIT: i32 = 21;
/// `SEND_SENDER`: `{22, FromPid, ToPid}`.
const SEND_SENDER: i32 = 22;
/// `SPAWN_REQUEST`: `{29, ReqId, From, GroupLeader, {M, F, Arity},
/// OptList}`, the argument list as the message.
const SPAWN_REQUEST: i32 = 29;
/// `SPAWN_REPLY`: `{31, ReqId, To, Flags, Result}`.
const SPAWN_REPLY: i32 = 31;
/// `UNLINK_ID`: `{35, Id, FromPid, ToPid}`.
const UNLINK_ID: i32 = 35;
/// `UNLINK_ID_ACK`: `{36, Id, FromPid, ToPid}`.
const UNLINK_ID_ACK: i32 = 36;

/// A control message this node acts on; the others are [`Control::Other`].
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    /// A message to a pid (`SEND`, `SEND_SENDER`).
    Send {
        /// The receiver.
        to: Pid,
        /// The message.
        message: Term,
    },
    /// A message to a registered name (`REG_SEND`).
    RegSend {
        /// The sender.
        from: Pid,
        /// The name.
        to: String,
        /// The message.
        message: Term,
    },
    /// `MONITOR_P`: `from` monitors `to` (a pid or a name) under
    /// `reference`.
    Monitor {
        /// The watcher.
        from: Pid,
        /// The watched process, as sent (a pid or an atom).
        to: Term,
        /// The monitor's reference.
        reference: Term,
    },
    /// `DEMONITOR_P`.
    Demonitor {
        /// The watcher.
        from: Pid,
        /// The watched process, as sent.
        to: Term,
        /// The reference of the monitor removed.
        reference: Term,
    },
    /// `MONITOR_P_EXIT`: what `to` monitored under `reference` is gone.
    MonitorExit {
        /// The monitored process, as the monitor named it.
        from: Term,
        /// The watcher.
        to: Pid,
        /// The monitor's reference.
        reference: Term,
        /// Why it ended.
        reason: Term,
    },
    /// `LINK`.
    Link {
        /// Who links.
        from: Pid,
        /// To whom.
        to: Pid,
    },
    /// `UNLINK_ID`: `from` removes its link with `to`; acknowledged with
    /// the same id.
    Unlink {
        /// The unlink's id.
        id: Term,
        /// Who unlinks.
        from: Pid,
        /// From whom.
        to: Pid,
    },
    /// `EXIT` (along a link, `link: true`) or `EXIT2` (`exit/2`).
    Exit {
        /// The process that exited or sent the signal.
        from: Pid,
        /// The receiver.
        to: Pid,
        /// The reason.
        reason: Term,
        /// Along a link (else `exit/2`).
        link: bool,
    },
    /// `SPAWN_REQUEST`: `from` asks for `module:function(args…)` to run
    /// here.
    SpawnRequest {
        /// The request's id (a reference; also the monitor's, if asked).
        id: Term,
        /// Who asks.
        from: Pid,
        /// The module.
        module: String,
        /// The function.
        function: String,
        /// The options (`link`, `monitor`, …).
        options: Vec<Term>,
        /// The arguments.
        args: Vec<Term>,
    },
    /// `SPAWN_REPLY`: the answer to our `SPAWN_REQUEST` `id`.
    SpawnReply {
        /// The request's id.
        id: Term,
        /// Who asked.
        to: Pid,
        /// 1: a link was set up; 2: a monitor was.
        flags: i64,
        /// The new pid, or an error atom.
        result: Term,
    },
    /// Any other operation, by its number (links, exits, spawns: not yet
    /// acted on, see the crate docs).
    Other(i32),
}

/// Reads a packet body (after its length); `Ok(None)` for a tick.
///
/// ```
/// use erlangen_net::erlang::control::{self, Control};
/// assert_eq!(control::parse(&[]), Ok(None));
/// assert!(control::parse(&[112, 131, 104, 0]).is_err());
/// ```
pub fn parse(body: &[u8]) -> Result<Option<Control>, String> {
    let Some((&first, rest)) = body.split_first() else {
        return Ok(None);
    };
    // Terms behind a distribution header come without their version byte.
    let (rest, bare) = match (first, rest.first()) {
        (PASS_THROUGH, _) => (rest, false),
        (VERSION, Some(&DIST_HEADER)) => match rest.get(1) {
            Some(0) => (&rest[2..], true),
            Some(_) => return Err("atom cache references were not negotiated".into()),
            None => return Err("a short distribution header".into()),
        },
        _ => {
            return Err(format!(
                "a packet that starts with {first}, neither 112 nor 131 68"
            ))
        }
    };
    let decode = |bytes: &[u8]| {
        if bare {
            term::decode_bare(bytes)
        } else {
            term::decode(bytes)
        }
    };
    let (control, used) = decode(rest).map_err(|e| format!("control message: {e}"))?;
    let rest = &rest[used..];
    let message = |rest: &[u8]| -> Result<Term, String> {
        let (message, used) = decode(rest).map_err(|e| format!("message: {e}"))?;
        if used != rest.len() {
            return Err("bytes after the message".into());
        }
        Ok(message)
    };
    let Term::Tuple(Tuple { elements }) = control else {
        return Err("a control message that is not a tuple".into());
    };
    let op = match elements.first() {
        Some(Term::FixInteger(FixInteger { value })) => *value,
        _ => return Err("a control message without an operation".into()),
    };
    let pid_at = |i: usize| match elements.get(i) {
        Some(Term::Pid(pid)) => Ok(pid.clone()),
        _ => Err(format!("operation {op}: element {i} is not a pid")),
    };
    let control = match (op, elements.len()) {
        (SEND, 3) | (SEND_SENDER, 3) => Control::Send {
            to: pid_at(2)?,
            message: message(rest)?,
        },
        (REG_SEND, 4) => Control::RegSend {
            from: pid_at(1)?,
            to: match &elements[3] {
                Term::Atom(Atom { name }) => name.clone(),
                _ => return Err("REG_SEND to something that is not a name".into()),
            },
            message: message(rest)?,
        },
        (MONITOR_P, 4) => Control::Monitor {
            from: pid_at(1)?,
            to: elements[2].clone(),
            reference: elements[3].clone(),
        },
        (DEMONITOR_P, 4) => Control::Demonitor {
            from: pid_at(1)?,
            to: elements[2].clone(),
            reference: elements[3].clone(),
        },
        (MONITOR_P_EXIT, 5) => Control::MonitorExit {
            from: elements[1].clone(),
            to: pid_at(2)?,
            reference: elements[3].clone(),
            reason: elements[4].clone(),
        },
        (LINK, 3) => Control::Link {
            from: pid_at(1)?,
            to: pid_at(2)?,
        },
        (UNLINK_ID, 4) => Control::Unlink {
            id: elements[1].clone(),
            from: pid_at(2)?,
            to: pid_at(3)?,
        },
        (EXIT | EXIT2, 4) => Control::Exit {
            from: pid_at(1)?,
            to: pid_at(2)?,
            reason: elements[3].clone(),
            link: op == EXIT,
        },
        (SPAWN_REQUEST, 6) => {
            let Term::Tuple(Tuple { elements: mfa }) = &elements[4] else {
                return Err("SPAWN_REQUEST without {M, F, A}".into());
            };
            let (module, function) = match mfa.as_slice() {
                [Term::Atom(m), Term::Atom(f), Term::FixInteger(_)] => {
                    (m.name.clone(), f.name.clone())
                }
                _ => return Err("SPAWN_REQUEST with a bad {M, F, A}".into()),
            };
            Control::SpawnRequest {
                id: elements[1].clone(),
                from: pid_at(2)?,
                module,
                function,
                options: term::elements(&elements[5])
                    .ok_or("SPAWN_REQUEST options are not a list")?,
                args: term::elements(&message(rest)?)
                    .ok_or("SPAWN_REQUEST arguments are not a list")?,
            }
        }
        (SPAWN_REPLY, 5) => Control::SpawnReply {
            id: elements[1].clone(),
            to: pid_at(2)?,
            flags: term::integer(&elements[3]).ok_or("SPAWN_REPLY flags are not an integer")?,
            result: elements[4].clone(),
        },
        (
            SEND | SEND_SENDER | REG_SEND | MONITOR_P | DEMONITOR_P | MONITOR_P_EXIT | LINK
            | UNLINK_ID | EXIT | EXIT2 | SPAWN_REQUEST | SPAWN_REPLY,
            n,
        ) => {
            return Err(format!("operation {op} with {n} elements"));
        }
        (op, _) => Control::Other(op),
    };
    Ok(Some(control))
}

/// The packet body (without its length) that sends `message` to `to`.
pub fn send(to: &Pid, message: &Term) -> Result<Vec<u8>, term::TermError> {
    let control = Term::from(Tuple::from(vec![
        Term::from(FixInteger::from(SEND)),
        Term::from(Atom::from("")),
        Term::from(to.clone()),
    ]));
    packet(&control, Some(message))
}

/// `SPAWN_REQUEST` `id` from `from` for `module:function(args…)` with
/// `options` (atoms such as `link`).
pub fn spawn_request(
    id: &Term,
    from: &Pid,
    (module, function): (&str, &str),
    args: &[Term],
    options: &[&str],
) -> Result<Vec<u8>, term::TermError> {
    let mfa = Term::from(Tuple::from(vec![
        Term::from(Atom::from(module)),
        Term::from(Atom::from(function)),
        Term::from(FixInteger::from(args.len() as i32)),
    ]));
    let options = options
        .iter()
        .map(|option| Term::from(Atom::from(*option)))
        .collect::<Vec<_>>();
    let control = Term::from(Tuple::from(vec![
        Term::from(FixInteger::from(SPAWN_REQUEST)),
        id.clone(),
        Term::from(from.clone()),
        Term::from(from.clone()),
        mfa,
        Term::from(eetf::List::from(options)),
    ]));
    packet(&control, Some(&Term::from(eetf::List::from(args.to_vec()))))
}

/// `SPAWN_REPLY` to `to` for request `id`: `flags` 1 if a link was set
/// up, 2 if a monitor was; `result` the new pid or an error atom.
pub fn spawn_reply(
    id: &Term,
    to: &Pid,
    flags: i32,
    result: &Term,
) -> Result<Vec<u8>, term::TermError> {
    signal(
        SPAWN_REPLY,
        vec![
            id.clone(),
            Term::from(to.clone()),
            Term::from(FixInteger::from(flags)),
            result.clone(),
        ],
    )
}

/// The body of a control message without a message: `{op, elements…}`.
fn signal(op: i32, elements: Vec<Term>) -> Result<Vec<u8>, term::TermError> {
    let mut all = vec![Term::from(FixInteger::from(op))];
    all.extend(elements);
    packet(&Term::from(Tuple::from(all)), None)
}

/// `LINK` from `from` to `to`.
pub fn link(from: &Pid, to: &Pid) -> Result<Vec<u8>, term::TermError> {
    signal(LINK, vec![Term::from(from.clone()), Term::from(to.clone())])
}

/// `UNLINK_ID` from `from` to `to` (`ack`: `UNLINK_ID_ACK`, the answer to
/// one).
pub fn unlink(id: &Term, from: &Pid, to: &Pid, ack: bool) -> Result<Vec<u8>, term::TermError> {
    let op = if ack { UNLINK_ID_ACK } else { UNLINK_ID };
    signal(
        op,
        vec![id.clone(), Term::from(from.clone()), Term::from(to.clone())],
    )
}

/// `EXIT` (along a link) or `EXIT2` (`exit/2`) from `from` to `to`.
pub fn exit(from: &Pid, to: &Pid, reason: &Term, link: bool) -> Result<Vec<u8>, term::TermError> {
    let op = if link { EXIT } else { EXIT2 };
    signal(
        op,
        vec![
            Term::from(from.clone()),
            Term::from(to.clone()),
            reason.clone(),
        ],
    )
}

/// `MONITOR_P` (or `DEMONITOR_P` when `off`) from `from` of `to` under
/// `reference`.
pub fn monitor(
    from: &Pid,
    to: &Pid,
    reference: &Term,
    off: bool,
) -> Result<Vec<u8>, term::TermError> {
    let op = if off { DEMONITOR_P } else { MONITOR_P };
    signal(
        op,
        vec![
            Term::from(from.clone()),
            Term::from(to.clone()),
            reference.clone(),
        ],
    )
}

/// The packet body that sends `message` to the process registered as
/// `name`, from `from`.
pub fn reg_send(from: &Pid, name: &str, message: &Term) -> Result<Vec<u8>, term::TermError> {
    let control = Term::from(Tuple::from(vec![
        Term::from(FixInteger::from(REG_SEND)),
        Term::from(from.clone()),
        Term::from(Atom::from("")),
        Term::from(Atom::from(name)),
    ]));
    packet(&control, Some(message))
}

/// The packet body that tells `to` that what it monitored under
/// `reference` (`what`, as it named it) is gone with `reason`.
pub fn monitor_exit(
    what: &Term,
    to: &Pid,
    reference: &Term,
    reason: &Term,
) -> Result<Vec<u8>, term::TermError> {
    let control = Term::from(Tuple::from(vec![
        Term::from(FixInteger::from(MONITOR_P_EXIT)),
        what.clone(),
        Term::from(to.clone()),
        reference.clone(),
        reason.clone(),
    ]));
    packet(&control, None)
}

/// A packet body of ours (`112` and versioned terms) as what follows a
/// distribution header (terms without their version bytes): the data
/// that fragments carry.
pub(crate) fn bare(body: &[u8]) -> Option<Vec<u8>> {
    let terms = body.strip_prefix(&[PASS_THROUGH])?;
    let first = term::check(terms).ok()?;
    let mut out = Vec::with_capacity(terms.len());
    out.extend_from_slice(&terms[1..first]);
    if let Some(message) = terms.get(first..).filter(|rest| !rest.is_empty()) {
        out.extend_from_slice(message.strip_prefix(&[VERSION])?);
    }
    Some(out)
}

/// `112`, the control message and the message.
fn packet(control: &Term, message: Option<&Term>) -> Result<Vec<u8>, term::TermError> {
    let mut out = vec![PASS_THROUGH];
    term::encode(control, &mut out)?;
    if let Some(message) = message {
        term::encode(message, &mut out)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_send_reads_back_as_what_was_sent() {
        let to = Pid::new("e@h", 1, 2, 3);
        let message = Term::from(Atom::from("hello"));
        let body = send(&to, &message).unwrap();
        assert_eq!(parse(&body), Ok(Some(Control::Send { to, message })));
    }

    #[test]
    fn a_packet_cut_anywhere_is_an_error_not_a_panic() {
        let body = send(&Pid::new("e@h", 1, 2, 3), &Term::from(Atom::from("hello"))).unwrap();
        for end in 1..body.len() {
            assert!(parse(&body[..end]).is_err(), "cut at {end}");
        }
    }

    #[test]
    fn a_million_mutated_packets_never_panic() {
        let body = send(
            &Pid::new("e@h", 1, 2, 3),
            &Term::from(Tuple::from(vec![
                Term::from(Pid::new("e@h", 4, 5, 6)),
                Term::from(Atom::from("ping")),
            ])),
        )
        .unwrap();
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut parsed = 0;
        for _ in 0..1_000_000 {
            let mut bytes = body.clone();
            for _ in 0..1 + next() % 3 {
                let at = (next() as usize) % bytes.len();
                bytes[at] = next() as u8;
            }
            if parse(&bytes).is_ok() {
                parsed += 1;
            }
        }
        assert!(parsed > 0);
    }
}
