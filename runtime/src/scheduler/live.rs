//! `LiveTable`: every agent of the runtime that has not exited.
//!
//! It answers "which agents are alive" (introspection) and lets shutdown
//! reach agents that no queue holds (those waiting in receive), so that their
//! stacks are unwound and freed. Sharded by the worker that spawned the agent
//! (by serial number for agents spawned from outside), so that a worker's
//! spawns and most of its exits touch its own shard's lock and slots and
//! never bounce them between cores; each shard is a slab with a free list,
//! and a cell remembers its index, so insert and remove are O(1).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use crate::agent::AgentCell;
use crate::config::LIVE_SHARDS;
use crate::introspection::ExitClass;
use crate::sync::lock;

/// One shard.
#[derive(Debug, Default)]
struct Shard {
    /// Occupied and free slots.
    slots: Vec<Option<Arc<AgentCell>>>,
    /// Indices of free slots.
    free: Vec<usize>,
    /// Agents inserted so far (metrics; counted under the lock insert
    /// takes anyway).
    inserted: u64,
    /// Agents removed so far, by how they ended (`ExitClass` as index).
    exited: [u64; ExitClass::COUNT],
}

/// The live agents.
#[derive(Debug)]
pub(crate) struct LiveTable {
    /// `LIVE_SHARDS` shards, by serial number.
    shards: Box<[Mutex<Shard>]>,
}

impl LiveTable {
    /// An empty table.
    pub(crate) fn new() -> LiveTable {
        LiveTable {
            shards: (0..LIVE_SHARDS)
                .map(|_| Mutex::new(Shard::default()))
                .collect(),
        }
    }

    fn shard(&self, cell: &AgentCell) -> &Mutex<Shard> {
        let key = match cell.born_on() {
            crate::agent::NO_HOME => cell.serial as usize,
            worker => worker,
        };
        &self.shards[key & (LIVE_SHARDS - 1)]
    }

    /// Adds a new agent.
    pub(crate) fn insert(&self, cell: &Arc<AgentCell>) {
        let mut shard = lock(self.shard(cell));
        let index = match shard.free.pop() {
            Some(index) => {
                shard.slots[index] = Some(cell.clone());
                index
            }
            None => {
                shard.slots.push(Some(cell.clone()));
                shard.slots.len() - 1
            }
        };
        shard.inserted += 1;
        // Relaxed: read back only under the same shard lock.
        cell.live_index.store(index, Ordering::Relaxed);
    }

    /// Removes an agent that exited as `class` says. Returns the table's
    /// reference to it, so the caller can drop it outside the lock.
    pub(crate) fn remove(&self, cell: &AgentCell, class: ExitClass) -> Option<Arc<AgentCell>> {
        let mut shard = lock(self.shard(cell));
        let index = cell.live_index.load(Ordering::Relaxed);
        let slot = shard.slots.get_mut(index)?;
        match slot {
            Some(held) if std::ptr::eq(&**held, cell) => {
                let held = slot.take();
                shard.free.push(index);
                shard.exited[class as usize] += 1;
                held
            }
            _ => None,
        }
    }

    /// Agents inserted so far, and removed so far by how they ended.
    pub(crate) fn counts(&self) -> (u64, [u64; ExitClass::COUNT]) {
        let mut inserted = 0;
        let mut exited = [0; ExitClass::COUNT];
        for shard in self.shards.iter() {
            let shard = lock(shard);
            inserted += shard.inserted;
            for (total, n) in exited.iter_mut().zip(shard.exited) {
                *total += n;
            }
        }
        (inserted, exited)
    }

    /// The live agent with `serial` of runtime `runtime`, if any (scans the
    /// shards: for rare lookups such as a watchdog warning).
    pub(crate) fn find(&self, serial: u64, runtime: u64) -> Option<Arc<AgentCell>> {
        self.shards.iter().find_map(|shard| {
            lock(shard)
                .slots
                .iter()
                .flatten()
                .find(|cell| cell.serial == serial && cell.runtime == runtime)
                .cloned()
        })
    }

    /// Every live agent, in no particular order.
    pub(crate) fn snapshot(&self) -> Vec<Arc<AgentCell>> {
        let mut all = Vec::new();
        for shard in self.shards.iter() {
            all.extend(lock(shard).slots.iter().flatten().cloned());
        }
        all
    }

    /// Visits every live agent in chunks: for each shard, up to `len`
    /// slots at a time are copied into `chunk` under the shard's lock, and
    /// `visit` runs on them after the lock is released
    /// (agent_list.rs step 1). Slots never move (a free list reuses
    /// them), so a walk that resumes at a slot index misses no agent that
    /// stayed alive.
    pub(crate) fn visit_chunks(
        &self,
        len: usize,
        chunk: &mut Vec<Arc<AgentCell>>,
        mut visit: impl FnMut(&mut Vec<Arc<AgentCell>>),
    ) {
        for shard in self.shards.iter() {
            let mut start = 0;
            loop {
                let end = {
                    let shard = lock(shard);
                    let end = (start + len).min(shard.slots.len());
                    if start >= end {
                        break;
                    }
                    chunk.extend(shard.slots[start..end].iter().flatten().cloned());
                    end
                };
                visit(chunk);
                chunk.clear();
                start = end;
            }
        }
    }

    /// The number of live agents.
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| {
                let shard = lock(shard);
                shard.slots.len() - shard.free.len()
            })
            .sum()
    }

    /// Empties the table (shutdown), returning what it held.
    pub(crate) fn drain(&self) -> Vec<Arc<AgentCell>> {
        let mut all = Vec::new();
        for shard in self.shards.iter() {
            let mut shard = lock(shard);
            all.extend(shard.slots.drain(..).flatten());
            shard.free.clear();
        }
        all
    }
}
