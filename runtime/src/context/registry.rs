//! `Ctx`'s registry and introspection: names, agent stats, the agent
//! tree and the list of live agents.

use crate::error::Error;
use crate::introspection::{AgentStats, AgentTree};
use crate::pid::Pid;

use super::Ctx;

impl Ctx {
    /// Registers this agent as `name`; the name is released when it exits.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let found = rt.run(|ctx| {
    ///     ctx.register("logger").unwrap();
    ///     ctx.whereis("logger") == Some(ctx.pid())
    /// });
    /// assert!(found.unwrap());
    /// assert!(rt.whereis("logger").is_none()); // released at exit
    /// ```
    pub fn register(&self, name: &str) -> Result<(), Error> {
        self.shared().registry.register(name, &self.pid)
    }

    /// Registers `pid` as `name`.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let names = rt.run(|ctx| {
    ///     let other = ctx.spawn(|ctx| { ctx.receive(); });
    ///     ctx.register_pid("other", &other).unwrap();
    ///     let names = ctx.registered();
    ///     ctx.kill(&other, ExitReason::Kill);
    ///     names
    /// });
    /// assert_eq!(names.unwrap(), vec!["other".to_string()]);
    /// ```
    pub fn register_pid(&self, name: &str, pid: &Pid) -> Result<(), Error> {
        self.shared().check_local(pid)?;
        self.shared().registry.register(name, pid)
    }

    /// Removes `name` from the registry.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let again = rt.run(|ctx| {
    ///     ctx.register("x").unwrap();
    ///     ctx.unregister("x").unwrap();
    ///     ctx.unregister("x")
    /// });
    /// assert_eq!(again.unwrap(), Err(Error::NotRegistered("x".into())));
    /// ```
    pub fn unregister(&self, name: &str) -> Result<(), Error> {
        self.shared().registry.unregister(name)
    }

    /// The agent registered as `name`.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// assert_eq!(rt.run(|ctx| ctx.whereis("nobody")).unwrap(), None);
    /// ```
    pub fn whereis(&self, name: &str) -> Option<Pid> {
        self.shared().registry.lookup(name)
    }

    /// Every registered name, sorted.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// assert!(rt.run(|ctx| ctx.registered()).unwrap().is_empty());
    /// ```
    pub fn registered(&self) -> Vec<String> {
        self.shared().registry.names()
    }

    /// Counters and times of `pid`.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let received = rt.run(|ctx| {
    ///     ctx.send(&ctx.pid(), ());
    ///     ctx.receive();
    ///     ctx.stats(&ctx.pid()).received
    /// });
    /// assert_eq!(received.unwrap(), 1);
    /// ```
    pub fn stats(&self, pid: &Pid) -> AgentStats {
        AgentStats::of(pid)
    }

    /// The tree of agents `pid` monitors, with its other links.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let children = rt.run(|ctx| {
    ///     let child = ctx.spawn_with(SpawnOptions::new().monitor(), |ctx| { ctx.receive(); }).unwrap();
    ///     let tree = ctx.agent_tree(&ctx.pid());
    ///     ctx.kill(&child, ExitReason::Kill);
    ///     tree.monitored.len()
    /// });
    /// assert_eq!(children.unwrap(), 1);
    /// ```
    pub fn agent_tree(&self, pid: &Pid) -> AgentTree {
        AgentTree::of(pid)
    }

    /// One page of the live agents, sorted and filtered as `query` says
    /// ([`Runtime::agents_page`](crate::Runtime::agents_page)); the calling
    /// agent yields between chunks of the walk, so a page over a million
    /// agents never holds its worker for long.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let found = rt.run(|ctx| {
    ///     ctx.register("me").unwrap();
    ///     ctx.agents_page(&AgentQuery::new().filter("me")).agents[0].names.clone()
    /// });
    /// assert_eq!(found.unwrap(), ["me"]);
    /// ```
    pub fn agents_page(&self, query: &crate::AgentQuery) -> crate::AgentPage {
        // A counted reference: the walk suspends between chunks, and the
        // worker's context must not be held across a suspend.
        let shared = self.worker().shared.clone();
        crate::agent_list::agents_page(&shared, query, || self.yield_now())
    }

    /// The runtime's counters and gauges
    /// ([`Runtime::metrics`](crate::Runtime::metrics)); the calling agent
    /// yields between chunks of the walk over the live agents.
    pub fn metrics(&self) -> crate::RuntimeMetrics {
        let shared = self.worker().shared.clone();
        crate::introspection::metrics(&shared, || self.yield_now())
    }

    /// Every live agent of the runtime.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// assert!(rt.run(|ctx| ctx.agents().contains(&ctx.pid())).unwrap());
    /// ```
    pub fn agents(&self) -> Vec<Pid> {
        crate::introspection::live_agents(self.shared())
    }
}
