//! # Erlangen for Rust
//!
//! A distributed, asynchronous message-passing runtime: millions of
//! lightweight agents exchanging messages. This facade crate re-exports the
//! public API of its parts; today that is the single-node runtime
//! ([`erlangen_runtime`]).
//!
//! ```
//! let rt = erlangen::Runtime::builder().workers(1).build().unwrap();
//! assert_eq!(rt.run(|ctx| ctx.pid().serial() > 0).unwrap(), true);
//! ```

pub use erlangen_runtime::*;
