//! `ErlangRoute`: the runtime's way to a process of an Erlang node. A
//! message must be an [`eetf::Term`]: it goes to the node's event loop,
//! which encodes it as a `SEND` on that node's connection. Signals (links,
//! monitors, exits) to Erlang processes are not carried yet: they are
//! logged and dropped (module docs of `crate::erlang`). It sits beside
//! `route.rs`, above `shared.rs`; `crate::erlang` below both.

use std::sync::atomic::Ordering;
use std::sync::Weak;

use eetf::Term;
use erlangen_runtime::{Error, Message, Pid, Remote, RemotePid, RemoteSignal};

use crate::command::Command;
use crate::shared::NodeShared;

/// The route of every Erlang pid a node holds.
#[derive(Debug)]
pub(crate) struct ErlangRoute {
    pub(crate) shared: Weak<NodeShared>,
}

impl Remote for ErlangRoute {
    fn send(&self, to: &RemotePid, message: Message) -> Result<(), Error> {
        let Some(shared) = self.shared.upgrade() else {
            return Ok(());
        };
        let term = message.downcast::<Term>().map_err(|message| {
            shared.dropped.fetch_add(1, Ordering::Relaxed);
            Error::NotSent(format!(
                "only an erlang::Term can be sent to an Erlang process, not a {}",
                message.value_type_name()
            ))
        })?;
        let (id, serial) = crate::erlang::fields_of(to.serial());
        shared.push(Command::ErlangSend {
            to: eetf::Pid::new(to.node(), id, serial, to.incarnation() as u32),
            message: Box::new(term),
        });
        Ok(())
    }

    /// A sender to an Erlang process waits (suspended) while the node's
    /// backlog, or what its Erlang connections buffer, is above its
    /// high-water mark.
    fn busy(&self, _to: &RemotePid) -> bool {
        self.shared.upgrade().is_some_and(|shared| {
            let buffered = shared
                .erlang
                .as_ref()
                .map_or(0, |erlang| erlang.buffered.load(Ordering::Relaxed));
            shared.busy() || buffered > crate::config::BACKLOG_BYTES_HIGH_WATER
        })
    }

    fn signal(&self, from: Option<&Pid>, to: &RemotePid, signal: RemoteSignal) {
        if let Some(shared) = self.shared.upgrade() {
            let (id, serial) = crate::erlang::fields_of(to.serial());
            shared.push(Command::ErlangSignal {
                from: from.cloned(),
                to: eetf::Pid::new(to.node(), id, serial, to.incarnation() as u32),
                signal,
            });
        }
    }
}
