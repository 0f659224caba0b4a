//! `NodeClock`: one simulated node's view of the virtual clock.
//!
//! The simulation keeps one virtual time (ns since it began, `World`). A
//! node's monotonic clock runs from it at the node's own rate (clock skew:
//! `drift_ppm` parts per million fast or slow), continuous across a change
//! of rate. Its `Instant`s are `base` plus the node's time, so every
//! `Instant` the runtime computes (a receive's deadline, a timer, a
//! supervisor's restart window) is virtual under simulation, and the same
//! code that compares them works unchanged.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::sync::lock;

/// Parts per million: the unit of a node's clock rate.
const PPM: i128 = 1_000_000;

/// Where a node's rate last changed.
#[derive(Clone, Copy, Debug)]
struct Rate {
    /// Virtual time of the change.
    anchor_world_ns: u64,
    /// The node's time then.
    anchor_node_ns: u64,
    /// How much faster (positive) or slower the node's clock runs.
    drift_ppm: i64,
}

/// A node's clock (module docs).
#[derive(Debug)]
pub(crate) struct NodeClock {
    /// The `Instant` of virtual time 0.
    base: Instant,
    rate: Mutex<Rate>,
}

impl NodeClock {
    /// A clock that starts with the world's and runs at its rate.
    pub(crate) fn new(base: Instant, world_ns: u64) -> NodeClock {
        NodeClock {
            base,
            rate: Mutex::new(Rate {
                anchor_world_ns: world_ns,
                anchor_node_ns: world_ns,
                drift_ppm: 0,
            }),
        }
    }

    /// The node's time at world time `world_ns`.
    pub(crate) fn node_ns(&self, world_ns: u64) -> u64 {
        let rate = *lock(&self.rate);
        let elapsed = i128::from(world_ns.saturating_sub(rate.anchor_world_ns));
        let scaled = elapsed * (PPM + i128::from(rate.drift_ppm)) / PPM;
        rate.anchor_node_ns
            .saturating_add(u64::try_from(scaled.max(0)).unwrap_or(u64::MAX))
    }

    /// The node's `Instant` at world time `world_ns`.
    pub(crate) fn instant(&self, world_ns: u64) -> Instant {
        self.base + Duration::from_nanos(self.node_ns(world_ns))
    }

    /// The first world time at which the node's clock reads `at` or later
    /// (`None` if its clock has stopped).
    pub(crate) fn world_ns_of(&self, at: Instant) -> Option<u64> {
        let node_ns =
            u64::try_from(at.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX);
        let rate = *lock(&self.rate);
        let ahead = i128::from(node_ns.saturating_sub(rate.anchor_node_ns));
        let speed = PPM + i128::from(rate.drift_ppm);
        if speed <= 0 {
            return None;
        }
        // Rounded up, so that the node's clock has reached `at` then.
        let world = (ahead * PPM + speed - 1) / speed;
        Some(
            rate.anchor_world_ns
                .saturating_add(u64::try_from(world).unwrap_or(u64::MAX)),
        )
    }

    /// From world time `world_ns` on, the node's clock runs `drift_ppm`
    /// parts per million fast (or slow, if negative; at least -999,999).
    pub(crate) fn set_drift(&self, world_ns: u64, drift_ppm: i64) {
        let node_ns = self.node_ns(world_ns);
        *lock(&self.rate) = Rate {
            anchor_world_ns: world_ns,
            anchor_node_ns: node_ns,
            drift_ppm: drift_ppm.max(-(PPM as i64) + 1),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::NodeClock;
    use std::time::{Duration, Instant};

    #[test]
    fn a_fast_clock_reads_ahead_and_maps_back_to_the_first_world_time() {
        let base = Instant::now();
        let clock = NodeClock::new(base, 0);
        assert_eq!(clock.node_ns(1_000), 1_000);
        clock.set_drift(1_000, 100_000); // 10 % fast from t = 1 µs
        assert_eq!(clock.node_ns(1_000), 1_000);
        assert_eq!(clock.node_ns(11_000), 12_000);
        let at = base + Duration::from_nanos(12_000);
        let world = clock.world_ns_of(at).unwrap();
        assert_eq!(world, 11_000);
        assert!(clock.instant(world) >= at);
        assert!(clock.instant(world - 1) < at);
    }
}
