//! `Registry`: the runtime's name → agent table (erlangen.md §3.1 `register`).
//!
//! Register fails if the name is taken, unregister if it is absent (Erlangen).
//! Unlike Erlangen (bug 12), a name is released when its agent exits: the
//! dying agent's link set lists its names, and the exit path calls
//! [`Registry::release`] for each. The agent's own list and this table are
//! updated under the agent's link lock and then this lock, never the other
//! way round.

use std::collections::HashMap;
use std::sync::RwLock;

use crate::config::NAME_LEN_MAX_BYTES;
use crate::error::Error;
use crate::pid::Pid;

/// Name → agent.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    /// The table; read on every send by name, written rarely.
    names: RwLock<HashMap<String, Pid>>,
}

impl Registry {
    /// Binds `name` to `pid`, unless the name is taken or `pid` is dead.
    pub(crate) fn register(&self, name: &str, pid: &Pid) -> Result<(), Error> {
        validate_name(name)?;
        // Lock order: the agent's link set first, then the table.
        let mut links = crate::sync::lock(&pid.local_cell().links);
        if links.dead {
            return Err(Error::NoSuchName(name.to_owned()));
        }
        let mut names = self.names.write().unwrap_or_else(|e| e.into_inner());
        if names.contains_key(name) {
            return Err(Error::NameTaken(name.to_owned()));
        }
        names.insert(name.to_owned(), pid.clone());
        links.names.push(name.to_owned());
        Ok(())
    }

    /// Removes `name`.
    pub(crate) fn unregister(&self, name: &str) -> Result<(), Error> {
        let pid = self
            .lookup(name)
            .ok_or_else(|| Error::NotRegistered(name.to_owned()))?;
        let mut links = crate::sync::lock(&pid.local_cell().links);
        let mut names = self.names.write().unwrap_or_else(|e| e.into_inner());
        match names.get(name) {
            Some(current) if *current == pid => {
                names.remove(name);
                links.names.retain(|n| n != name);
                Ok(())
            }
            _ => Err(Error::NotRegistered(name.to_owned())),
        }
    }

    /// Drops `name` if it still points at `pid` (called at `pid`'s exit).
    pub(crate) fn release(&self, name: &str, pid: &Pid) {
        let mut names = self.names.write().unwrap_or_else(|e| e.into_inner());
        if names.get(name) == Some(pid) {
            names.remove(name);
        }
    }

    /// The agent registered under `name`.
    pub(crate) fn lookup(&self, name: &str) -> Option<Pid> {
        self.names
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// Every registered name, sorted.
    pub(crate) fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .names
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    }

    /// Empties the table (runtime shutdown).
    pub(crate) fn clear(&self) {
        self.names
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

/// A name is 1 to 255 bytes, without `/` (the id separator) or control characters.
pub(crate) fn validate_name(name: &str) -> Result<(), Error> {
    if name.is_empty() {
        return Err(Error::InvalidName("empty".to_owned()));
    }
    if name.len() > NAME_LEN_MAX_BYTES {
        return Err(Error::InvalidName(format!(
            "{} bytes, at most {NAME_LEN_MAX_BYTES}",
            name.len()
        )));
    }
    if name.chars().any(|c| c == '/' || c.is_control()) {
        return Err(Error::InvalidName(format!(
            "{name:?} holds '/' or a control character"
        )));
    }
    Ok(())
}
