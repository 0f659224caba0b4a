//! # erlangen-portmap
//!
//! The port mapper lets nodes on one host find each other's ports by name
//! (Erlangen's `erlangen-port-mapper`, Erlang's epmd), with Erlangen's simple
//! model (a registration lives as long as its TCP connection) and epmd's
//! security hole closed:
//!
//! * it listens on loopback by default (`127.0.0.1:10001`);
//! * only loopback peers (127.0.0.1, ::1) may register;
//! * other peers may look names up or list them only after proving a shared
//!   secret (HMAC-SHA256 over a fresh per-connection challenge); the secret
//!   never crosses the wire;
//! * names are validated, registrations and connections are bounded, silent
//!   or slow clients are dropped after a timeout, and bad input closes that
//!   connection with a logged reason, never the daemon.
//!
//! The wire protocol is documented in `portmap/PROTOCOL.md`.
//!
//! ```
//! use erlangen_portmap::{Client, Daemon, DaemonConfig};
//!
//! let config = DaemonConfig { listen: "127.0.0.1:0".parse().unwrap(), ..DaemonConfig::default() };
//! let daemon = Daemon::start(config).unwrap();
//! let registration = Client::connect(daemon.local_addr()).unwrap().register("alpha", 4000).unwrap();
//! let mut client = Client::connect(daemon.local_addr()).unwrap();
//! assert_eq!(client.lookup("alpha").unwrap(), 4000);
//! assert_eq!(client.names().unwrap(), vec![("alpha".to_string(), 4000)]);
//! drop(registration); // the name is released with its connection
//! ```
//!
//! # Platforms
//!
//! Linux only (built and tested on x86-64; kernel 6.13 or later for the
//! cheapest stack guards, older kernels fall back): its listener's
//! descriptor handling (the reserve descriptor that keeps accepting after
//! `EMFILE`, the raised limit) is written and tested against Linux only,
//! and the nodes built on it are Linux-only. On any other target the crate
//! refuses to build with a message that says so.

#[cfg(not(target_os = "linux"))]
compile_error!("erlangen-portmap runs on Linux only (see the crate docs, \"Platforms\")");

pub mod auth;
pub mod client;
pub mod config;
pub mod cookie_file;
pub mod epmd;
pub mod frame;
pub mod listener;
pub mod log_limit;
pub mod logging;
pub mod server;
pub mod tls;
pub mod wire;

pub use crate::client::{Client, Error, KeepRegistered, Registration};
pub use crate::config::{DaemonConfig, LISTEN_DEFAULT, PORT_DEFAULT};
pub use crate::server::{Daemon, DaemonStats, Server, Stopper};
pub use crate::wire::ErrorCode;
