//! # Erlangen for Rust
//!
//! A distributed, asynchronous message-passing runtime: millions of
//! lightweight agents exchanging messages. This facade crate re-exports the
//! public API of its parts: the single-node runtime ([`erlangen_runtime`],
//! re-exported at the top) and the port mapper ([`portmap`]).
//!
//! ```
//! let rt = erlangen::Runtime::builder().workers(1).build().unwrap();
//! assert_eq!(rt.run(|ctx| ctx.pid().serial() > 0).unwrap(), true);
//! ```
//!
//! # Platforms
//!
//! Linux only (built and tested on x86-64; kernel 6.13 or later for the
//! cheapest stack guards, older kernels fall back): its parts are Linux-
//! only. On any other target the crate refuses to build with a message that
//! says so.

#[cfg(not(target_os = "linux"))]
compile_error!("erlangen runs on Linux only (see the crate docs, \"Platforms\")");

pub use erlangen_runtime::*;

/// The port mapper: daemon, client and protocol ([`erlangen_portmap`]).
pub use erlangen_portmap as portmap;

/// Nodes: agents across processes and hosts ([`erlangen_net`]).
pub use erlangen_net as net;
