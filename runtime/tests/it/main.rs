//! Integration tests of erlangen-runtime: one binary, one module per behaviour.

mod calls;
mod erlangen_suite;
mod gather;
mod hibernate;
mod links_monitors;
mod listing;
mod logs;
mod messaging;
mod panics;
mod receive;
mod registry;
mod remote;
mod scale;
mod servers;
mod shutdown;
mod simulation;
mod soundness;
mod supervisors;
mod support;
mod threads;
mod timers;
mod traces;
