//! Integration tests of erlangen-runtime: one binary, one module per behaviour.

mod messaging;
mod receive;
mod support;
