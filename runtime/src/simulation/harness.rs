//! `check`: runs a test body across many seeds, stops at the first
//! failure and prints its seed with the command line that replays it.
//!
//! # Protocol
//!
//! 1. With `ERLANGEN_SEED=S` set, run seed `S` only, with every event
//!    echoed to stderr (the replay).
//! 2. Otherwise run seeds `0..N`, `N` from `ERLANGEN_SEEDS` or the
//!    caller's default, each in a fresh [`Simulation`].
//! 3. A body that panics fails its seed: print the seed, how many seeds
//!    passed before it, and `ERLANGEN_SEED=S <this process's command
//!    line>`; then panic with the same message (so a test fails).
//! 4. Return a [`CheckReport`]: seeds run and distinct trace hashes.

use std::collections::HashSet;
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::Simulation;
use crate::config::SIM_SEEDS_DEFAULT;

/// What [`check`] saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckReport {
    /// Seeds run (all passed).
    pub seeds: u64,
    /// Distinct trace hashes among them: how many different runs the seeds
    /// gave.
    pub distinct_traces: usize,
}

/// Runs `body` in a fresh simulation for each seed (module docs); panics
/// at the first seed whose body panics, after printing how to replay it.
/// `seeds` is the count when `ERLANGEN_SEEDS` is not set (`None`: 100).
///
/// ```
/// use erlangen_runtime::simulation::check;
/// let report = check("two_agents_meet", Some(20), |sim| {
///     let node = sim.add_node("a").unwrap();
///     let got = sim
///         .block_on(node, |ctx| {
///             let me = ctx.pid();
///             ctx.spawn(move |ctx| ctx.send(&me, 7u8));
///             ctx.receive().downcast::<u8>().unwrap()
///         })
///         .unwrap();
///     assert_eq!(got, 7);
/// });
/// assert!(report.seeds >= 1);
/// ```
pub fn check(name: &str, seeds: Option<u64>, body: impl Fn(&mut Simulation)) -> CheckReport {
    check_with(name, seeds, |sim| sim, body)
}

/// What [`check_with`] runs a body in: a simulation, or something built
/// around one (the nodes layer's simulated network).
pub trait Simulated {
    /// The simulation inside.
    fn simulation(&mut self) -> &mut Simulation;
}

impl Simulated for Simulation {
    fn simulation(&mut self) -> &mut Simulation {
        self
    }
}

/// [`check`], with each seed's simulation first made into a `W` by `make`
/// (a simulated network around it, say).
pub fn check_with<W: Simulated>(
    name: &str,
    seeds: Option<u64>,
    make: impl Fn(Simulation) -> W,
    body: impl Fn(&mut W),
) -> CheckReport {
    let (range, replay) = match env_u64("ERLANGEN_SEED") {
        Some(seed) => (seed..seed.saturating_add(1), true),
        None => {
            let n = env_u64("ERLANGEN_SEEDS")
                .or(seeds)
                .unwrap_or(SIM_SEEDS_DEFAULT);
            (0..n, false)
        }
    };
    let mut hashes = HashSet::new();
    let mut passed = 0u64;
    for seed in range {
        let mut sim = Simulation::new(seed);
        if replay {
            sim.set_trace(true);
        }
        let mut sim = make(sim);
        let outcome = catch_unwind(AssertUnwindSafe(|| body(&mut sim)));
        let hash = sim.simulation().trace_hash();
        if replay {
            eprintln!("simulation `{name}` seed {seed}: trace hash {hash:016x}");
        }
        drop(sim);
        match outcome {
            Ok(()) => {
                hashes.insert(hash);
                passed += 1;
            }
            Err(payload) => {
                let message = crate::exit::panic_message(&*payload);
                let mut err = std::io::stderr().lock();
                let _ = writeln!(
                    err,
                    "simulation `{name}` failed at seed {seed} ({passed} seeds passed before it; \
                     trace hash {hash:016x}): {message}\n\
                     replay it with its events on stderr:\n  ERLANGEN_SEED={seed} {}",
                    command_line()
                );
                drop(err);
                panic!("simulation `{name}` failed at seed {seed}: {message}");
            }
        }
    }
    if replay {
        eprintln!("simulation `{name}`: the seed passed");
    }
    CheckReport {
        seeds: passed,
        distinct_traces: hashes.len(),
    }
}

/// A number from the environment, if set and valid.
fn env_u64(key: &str) -> Option<u64> {
    std::env::var(key).ok()?.trim().parse().ok()
}

/// This process's command line, quoted where needed.
fn command_line() -> String {
    std::env::args()
        .map(|arg| {
            if arg.is_empty() || arg.contains(|c: char| c.is_whitespace() || c == '\'') {
                format!("'{}'", arg.replace('\'', r"'\''"))
            } else {
                arg
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
