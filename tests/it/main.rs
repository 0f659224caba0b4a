//! Integration tests of the facade crate: the README's programs run as a
//! user runs them, as real OS processes.

mod demo;
mod support;
mod walkthrough;
