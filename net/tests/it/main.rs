//! Integration tests of erlangen-net: one binary, one module per behaviour.
//! Nodes talk over loopback through an embedded port mapper on port 0.

mod calls;
mod cli;
mod erlang;
mod erlangen_node_suite;
mod failure;
mod global;
mod groups;
mod hostile;
mod hostile_host;
mod membership;
mod metrics;
mod nodes;
mod observe;
mod partition;
mod raw;
mod simulation;
mod structure;
mod support;
mod tls;
mod top;
mod traces;
mod transport;
