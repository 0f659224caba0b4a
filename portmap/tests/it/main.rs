//! Integration tests of erlangen-portmap: one binary, one module per behaviour.

mod access;
mod cli;
mod epmd;
mod hardening;
mod hostile_host;
mod parser_fuzz;
mod register_lookup;
mod restart;
mod support;
mod tls;
