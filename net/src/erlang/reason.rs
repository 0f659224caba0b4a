//! Exit reasons both ways between our [`ExitStatus`] and Erlang's reason
//! terms.
//!
//! | ours | Erlang |
//! | --- | --- |
//! | a returned value (`ExitStatus::Ok`) | `normal` |
//! | a returned [`super::ErlangExit`]`(term)` | `term` |
//! | `Kill` | `killed` as a reason, `kill` as an `exit/2` signal |
//! | `Other(text)` | the atom `text` (up to 255 characters), else `{erlangen, <<text>>}` |
//! | `Panic(text)` | `{panic, <<text>>}` |
//! | `Timeout`, `NoProc`, `NoConnection`, `SystemLimit` | `timeout`, `noproc`, `noconnection`, `system_limit` |
//! | `Shutdown` (our runtime stopped) | `shutdown` |
//! | `Linked(status)` | the reason of `status` (Erlang passes a linked process's reason on) |
//!
//! The other way, `normal` is a returned value (an [`eetf::Term`], the atom
//! `normal`), `kill` and `killed` are `Kill`, the atoms above map back, any
//! other atom is `Other(name)`, and any other term is `Other` of its Erlang
//! text.

use eetf::{Atom, Binary, Term, Tuple};
use erlangen_runtime::{ExitReason, ExitStatus, Value};

/// The Erlang reason for `status`.
///
/// ```
/// use erlangen_net::erlang::reason;
/// use erlangen_runtime::{ExitReason, ExitStatus};
/// let term = reason::to_term(&ExitStatus::Exit(ExitReason::other("shutdown")));
/// let shutdown = erlangen_net::erlang::eetf::Atom::from("shutdown");
/// assert_eq!(term, erlangen_net::erlang::Term::from(shutdown));
/// ```
pub fn to_term(status: &ExitStatus) -> Term {
    match status {
        ExitStatus::Ok(value) => match value.downcast_ref::<super::ErlangExit>() {
            Some(super::ErlangExit(reason)) => reason.clone(),
            None => atom("normal"),
        },
        ExitStatus::Exit(reason) => reason_to_term(reason, false),
    }
}

/// The Erlang reason for `reason`; `signal`: as an `exit/2` signal (where
/// our `Kill` is Erlang's untrappable `kill`).
pub fn reason_to_term(reason: &ExitReason, signal: bool) -> Term {
    match reason {
        ExitReason::Kill if signal => atom("kill"),
        ExitReason::Kill => atom("killed"),
        ExitReason::Other(text) if text.chars().count() <= 255 => atom(text),
        ExitReason::Other(text) => tagged("erlangen", text),
        ExitReason::Panic(text) => tagged("panic", text),
        ExitReason::Timeout => atom("timeout"),
        ExitReason::NoProc => atom("noproc"),
        ExitReason::NoConnection => atom("noconnection"),
        ExitReason::SystemLimit => atom("system_limit"),
        ExitReason::Shutdown => atom("shutdown"),
        ExitReason::Linked(status) => to_term(status),
        _ => atom("unknown"),
    }
}

/// Our status for an Erlang reason.
///
/// ```
/// use erlangen_net::erlang::{reason, Term};
/// use erlangen_runtime::{ExitReason, ExitStatus};
/// let killed = reason::from_term(&Term::from(erlangen_net::erlang::eetf::Atom::from("killed")));
/// assert!(matches!(killed, ExitStatus::Exit(ExitReason::Kill)));
/// ```
pub fn from_term(term: &Term) -> ExitStatus {
    match term {
        Term::Atom(Atom { name }) if name == "normal" => ExitStatus::Ok(Value::new(term.clone())),
        _ => ExitStatus::Exit(reason_from_term(term)),
    }
}

/// Our reason for an Erlang reason (`normal` is `Linked(Ok(normal))`: a
/// linked process that returned, as Erlangen's links report it).
pub fn reason_from_term(term: &Term) -> ExitReason {
    let Term::Atom(Atom { name }) = term else {
        return ExitReason::other(&term.to_string());
    };
    match name.as_str() {
        "normal" => ExitReason::Linked(Box::new(ExitStatus::Ok(Value::new(term.clone())))),
        "kill" | "killed" => ExitReason::Kill,
        "timeout" => ExitReason::Timeout,
        "noproc" => ExitReason::NoProc,
        "noconnection" => ExitReason::NoConnection,
        "system_limit" => ExitReason::SystemLimit,
        other => ExitReason::other(other),
    }
}

fn atom(name: &str) -> Term {
    Term::from(Atom::from(name))
}

fn tagged(tag: &str, text: &str) -> Term {
    Term::from(Tuple::from(vec![
        atom(tag),
        Term::from(Binary::from(text.as_bytes().to_vec())),
    ]))
}
