//! Simulated nodes: `SimNet` puts several named nodes into one
//! deterministic [`Simulation`] (erlangen-runtime's, module
//! `erlangen_runtime::simulation`) and connects them through an in-memory
//! network behind the same seam as TCP (network.rs has its protocol).
//!
//! What crosses it is what crosses a real connection between two nodes:
//! messages, call replies, links, monitors, watches and exit signals,
//! encoded and decoded with each node's [`Types`] (pids inside messages
//! too). Node services that run over the real protocol's own packets
//! (remote spawn, name lookups on another node, global names, groups,
//! the observer) are not simulated: agents find each other by pids in
//! messages, or by [`SimNet::pid_on`].
//!
//! ```
//! use erlangen_net::simulation::SimNet;
//! use erlangen_net::Types;
//! use std::time::Duration;
//!
//! let mut net = SimNet::new(7);
//! let a = net.add_node("a", Types::new()).unwrap();
//! let b = net.add_node("b", Types::new()).unwrap();
//! let echo = net.sim().spawn(b, |ctx| {
//!     let n = ctx.receive().downcast::<u64>().unwrap();
//!     n
//! }).unwrap();
//! let echo_from_a = net.pid_on(a, &echo).unwrap();
//! let status = net
//!     .sim()
//!     .block_on(a, move |ctx| {
//!         ctx.monitor(&echo_from_a).unwrap();
//!         ctx.send(&echo_from_a, 41u64);
//!         ctx.receive().downcast::<erlangen_runtime::Down>().unwrap().status
//!     })
//!     .unwrap();
//! assert_eq!(status.value().unwrap().downcast_ref::<u64>(), Some(&41));
//! ```

mod network;
mod node;

use std::sync::Arc;
use std::time::Duration;

use erlangen_runtime::simulation::{check_with, CheckReport, NodeId, Simulated, Simulation};
use erlangen_runtime::{Pid, Runtime};

pub use self::network::Faults;

use self::network::{nanos, Network};
use self::node::SimNode;
use crate::error::NetError;
use crate::id::NodeName;
use crate::types::Types;

/// The host part of every simulated node's name (`sim/<name>`).
pub const SIM_HOST: &str = "sim";

/// Several simulated nodes and the network between them (module docs).
pub struct SimNet {
    /// Declared before `sim`: dropped first, so no route outlives its
    /// network's purpose (the simulation then unwinds its agents).
    network: Arc<Network>,
    sim: Simulation,
    /// Each node's types (kept for a restart).
    types: Vec<Types>,
}

impl std::fmt::Debug for SimNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimNet")
            .field("sim", &self.sim)
            .finish_non_exhaustive()
    }
}

impl SimNet {
    /// A network with the default faults (loopback-like delays, no
    /// resets), every choice drawn from `seed`.
    pub fn new(seed: u64) -> SimNet {
        SimNet::with_faults(seed, Faults::default())
    }

    /// A network injecting `faults`, drawn from `seed`.
    pub fn with_faults(seed: u64, faults: Faults) -> SimNet {
        SimNet::from_simulation(Simulation::new(seed), faults)
    }

    /// Networks the nodes of `sim` added from now on (the harness's
    /// simulation, `erlangen_runtime::simulation::check`).
    pub fn from_simulation(sim: Simulation, faults: Faults) -> SimNet {
        SimNet {
            network: Network::new(sim.handle(), faults),
            sim,
            types: Vec::new(),
        }
    }

    /// The simulation: spawn, run, block on an agent, read the clock and
    /// the trace hash.
    pub fn sim(&mut self) -> &mut Simulation {
        &mut self.sim
    }

    /// Adds node `sim/<name>` whose messages are encoded with `types`.
    pub fn add_node(&mut self, name: &str, types: Types) -> Result<NodeId, NetError> {
        let node_name =
            NodeName::new(SIM_HOST, name).map_err(|e| NetError::InvalidName(e.to_string()))?;
        let id = self
            .sim
            .add_node_with(name, Runtime::builder())
            .map_err(|e| NetError::InvalidName(e.to_string()))?;
        self.types.push(types);
        self.bring_up(id, node_name, 1);
        Ok(id)
    }

    fn bring_up(&mut self, id: NodeId, name: NodeName, incarnation: u64) {
        let runtime = self.sim.runtime(id).expect("a node just built is up");
        let node = SimNode::new(
            id.index(),
            name,
            incarnation,
            runtime,
            self.types[id.index() as usize].clone(),
            self.network.weak(),
        );
        self.network.node_up(Arc::new(node));
    }

    /// `pid` (an agent of any simulated node) as node `seen_from` would
    /// hold it after receiving it in a message: its own agent, or a remote
    /// pid whose sends cross the network. `None` if either node is down or
    /// `pid` is no simulated node's.
    pub fn pid_on(&self, seen_from: NodeId, pid: &Pid) -> Option<Pid> {
        let here = self.network.node(seen_from.index())?;
        (0..self.sim.nodes().len() as u32)
            .filter_map(|index| self.network.node(index))
            .find_map(|owner| here.view(pid, &owner))
    }

    /// `a` and `b` can no longer reach each other. Packets between them
    /// wait; after the heartbeat timeout their connection is lost
    /// (`noconnection` on every edge between them), unless healed first.
    pub fn partition(&mut self, a: NodeId, b: NodeId) {
        self.network.partition(a.index(), b.index());
    }

    /// Ends a partition between `a` and `b`.
    pub fn heal(&mut self, a: NodeId, b: NodeId) {
        self.network.heal(a.index(), b.index());
    }

    /// Draws partitions from the seed: from now until `until` (virtual
    /// time from the start), about every `every` a drawn pair of nodes is
    /// partitioned for a drawn time within `lasting`, then healed. Short
    /// ones only delay packets; ones past the heartbeat timeout lose the
    /// connection. Returns how many were scheduled.
    pub fn draw_partitions(
        &mut self,
        every: Duration,
        lasting: (Duration, Duration),
        until: Duration,
    ) -> usize {
        let n = self.sim.nodes().len() as u64;
        if n < 2 || every.is_zero() {
            return 0;
        }
        let handle = self.sim.handle();
        let (every, until) = (nanos(every), nanos(until));
        let (shortest, longest) = (nanos(lasting.0), nanos(lasting.1).max(nanos(lasting.0)));
        let mut at = nanos(self.sim.now());
        let mut scheduled = 0;
        loop {
            at = at.saturating_add(1 + handle.random_below(2 * every));
            if at >= until {
                return scheduled;
            }
            let a = handle.random_below(n) as u32;
            let b = ((u64::from(a) + 1 + handle.random_below(n - 1)) % n) as u32;
            let lasts = shortest + handle.random_below(longest - shortest + 1);
            let start = Duration::from_nanos(at - nanos(self.sim.now()));
            let network = self.network.weak();
            handle.after(start, move || {
                if let Some(network) = network.upgrade() {
                    network.partition(a, b);
                }
            });
            let network = self.network.weak();
            handle.after(start + Duration::from_nanos(lasts), move || {
                if let Some(network) = network.upgrade() {
                    network.heal(a, b);
                }
            });
            scheduled += 1;
        }
    }

    /// Resets the connection between `a` and `b` now (what is in flight is
    /// lost; every edge between them fires `noconnection`).
    pub fn reset(&mut self, a: NodeId, b: NodeId) {
        let key = (a.index().min(b.index()), a.index().max(b.index()));
        self.network.lose(key, "reset (scripted)");
    }

    /// Crashes `node`: its agents die at once, its connections reset
    /// (its peers' edges to it fire `noconnection`).
    pub fn crash(&mut self, node: NodeId) {
        self.network.node_down(node.index());
        self.sim.crash(node);
    }

    /// Restarts a crashed `node` as a new incarnation: ids of the old one
    /// never resolve again (a link or monitor to one is answered
    /// `noproc`).
    pub fn restart(&mut self, node: NodeId) -> Result<(), NetError> {
        let old = self.network.node(node.index());
        if old.is_some() {
            return Ok(());
        }
        self.sim
            .restart(node)
            .map_err(|e| NetError::InvalidName(e.to_string()))?;
        let name = self
            .sim
            .name(node)
            .ok_or_else(|| NetError::InvalidName(format!("no simulated node {}", node.index())))?;
        let name =
            NodeName::new(SIM_HOST, name).map_err(|e| NetError::InvalidName(e.to_string()))?;
        let incarnation = self.incarnations_of(node) + 1;
        self.bring_up(node, name, incarnation);
        Ok(())
    }

    /// How many times `node` has been brought up.
    fn incarnations_of(&self, node: NodeId) -> u64 {
        self.network.last_incarnation(node.index())
    }

    /// Whether `a` and `b` have a connection now.
    pub fn connected(&self, a: NodeId, b: NodeId) -> bool {
        self.network.connected(a.index(), b.index())
    }

    /// Messages and signals the network lost or refused so far.
    pub fn dropped(&self) -> u64 {
        self.network.dropped()
    }

    /// Runs `body` on a fresh network with `faults` for each seed
    /// (`erlangen_runtime::simulation::check`: `ERLANGEN_SEEDS`,
    /// `ERLANGEN_SEED` to replay one with its events on stderr); panics at
    /// the first failing seed after printing how to replay it.
    pub fn check(
        name: &str,
        seeds: Option<u64>,
        faults: &Faults,
        body: impl Fn(&mut SimNet),
    ) -> CheckReport {
        check_with(
            name,
            seeds,
            |sim| SimNet::from_simulation(sim, faults.clone()),
            body,
        )
    }
}

impl Simulated for SimNet {
    fn simulation(&mut self) -> &mut Simulation {
        &mut self.sim
    }
}
