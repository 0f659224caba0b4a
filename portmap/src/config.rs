//! Every limit of the port mapper, with its unit in its name, and the
//! daemon's configuration.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

/// The documented default port (Erlangen's registry port).
pub const PORT_DEFAULT: u16 = 10001;

/// The default listen address: loopback only.
pub const LISTEN_DEFAULT: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, PORT_DEFAULT));

/// Protocol version sent in HELLO.
pub const PROTOCOL_VERSION: u32 = 1;

/// Frame header: type (u32 LE) and body length (u32 LE).
pub const HEADER_BYTES: usize = 8;

/// Largest request body the daemon accepts. A longer length prefix closes
/// the connection before anything is buffered.
pub const REQUEST_BODY_BYTES_MAX: usize = 512;

/// Longest node name, in bytes of UTF-8.
pub const NAME_BYTES_MAX: usize = 255;

/// Longest error description sent in an ERROR reply, in bytes.
pub const DESCRIPTION_BYTES_MAX: usize = 256;

/// Bytes of the HELLO challenge.
pub const CHALLENGE_BYTES: usize = 32;

/// Bytes of the AUTH proof (HMAC-SHA256).
pub const PROOF_BYTES: usize = 32;

/// Default bound on registered names.
pub const NAMES_MAX_DEFAULT: usize = 1024;

/// Default bound on open connections (registrations included).
pub const CONNECTIONS_MAX_DEFAULT: usize = 1100;

/// Default time a client has to complete a frame it started, and to send its
/// first request after HELLO.
pub const FRAME_TIMEOUT_DEFAULT: Duration = Duration::from_secs(5);

/// Default time a connection that holds no registration may stay idle.
pub const IDLE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);

/// Largest reply body a client accepts: a NAMES reply with the most names
/// the daemon can hold at the longest name length, with headroom.
pub const REPLY_BODY_BYTES_MAX: usize = 4 + 64 * 1024 * (4 + NAME_BYTES_MAX + 4);

/// Most bytes queued for writing on one connection: one NAMES reply.
pub const WRITE_BUFFER_BYTES_MAX: usize = HEADER_BYTES + REPLY_BODY_BYTES_MAX;

/// Longest frame timeout that may be configured.
pub const FRAME_TIMEOUT_MAX: Duration = Duration::from_secs(3600);

/// Longest idle timeout that may be configured.
pub const IDLE_TIMEOUT_MAX: Duration = Duration::from_secs(7 * 24 * 3600);

/// Default listen backlog.
pub const BACKLOG_DEFAULT: u32 = 1024;

/// Share of the connection bound, in percent, that connections from
/// addresses other than 127.0.0.1 and ::1 may hold: the rest stays free for
/// local registrations and lookups, whatever other hosts (or other loopback
/// addresses) do.
pub const NONLOCAL_SHARE_PERCENT: usize = 50;

/// Most connections one address other than 127.0.0.1 and ::1 may hold.
pub const PER_ADDRESS_CONNECTIONS_MAX: usize = 64;

/// Bytes a connection's reply buffer keeps after a reply went out; a
/// larger one (a long NAMES listing) is shrunk back to this.
pub const WRITE_BUFFER_KEPT_BYTES: usize = 4096;

/// Longest a daemon's `names_max` may be configured.
pub const NAMES_MAX_LIMIT: usize = 64 * 1024;

/// The daemon's settings.
#[derive(Clone, Debug)]
pub struct DaemonConfig {
    /// Where to listen (default `127.0.0.1:10001`).
    pub listen: SocketAddr,
    /// The shared secret remote clients must prove (never sent). Without
    /// one, only loopback clients are served.
    pub cookie: Option<Vec<u8>>,
    /// Bound on registered names.
    pub names_max: usize,
    /// Bound on open connections.
    pub connections_max: usize,
    /// Time to complete a started frame, or to send a first request.
    pub frame_timeout: Duration,
    /// Time an unregistered connection may stay idle.
    pub idle_timeout: Duration,
    /// Pending connects the listening socket holds (default 1,024).
    pub backlog: u32,
    /// Also serve Erlang's epmd protocol here (server.rs, "epmd"): for
    /// hosts that run Erlang nodes without Erlang's own epmd. Usually
    /// `127.0.0.1:4369`; `None` (the default) serves only our protocol.
    pub epmd: Option<SocketAddr>,
    /// Serve clients of other hosts over TLS only (tls.rs: mutual
    /// certificates from the cluster's CA), with the cookie's proof still
    /// asked inside; loopback clients (this host's nodes) stay plain.
    /// `None` (the default): plain TCP for everyone.
    pub tls: Option<crate::tls::TlsOptions>,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            listen: LISTEN_DEFAULT,
            cookie: None,
            names_max: NAMES_MAX_DEFAULT,
            connections_max: CONNECTIONS_MAX_DEFAULT,
            frame_timeout: FRAME_TIMEOUT_DEFAULT,
            idle_timeout: IDLE_TIMEOUT_DEFAULT,
            backlog: BACKLOG_DEFAULT,
            epmd: None,
            tls: None,
        }
    }
}

const _: () = assert!(NAME_BYTES_MAX + 8 <= REQUEST_BODY_BYTES_MAX);
const _: () = assert!(PROOF_BYTES <= REQUEST_BODY_BYTES_MAX);
const _: () = assert!(NAMES_MAX_DEFAULT <= NAMES_MAX_LIMIT);
const _: () = assert!(CONNECTIONS_MAX_DEFAULT > NAMES_MAX_DEFAULT);

/// Plaintext bytes moved into a TLS session at a time (tls.rs step 4): one
/// record's worth (TLS's maximum record is 16 KiB), so at most a record of
/// ciphertext waits inside the session and the rest stays in the outbox's
/// buffer, where backpressure counts it.
///
/// ```
/// assert_eq!(erlangen_portmap::config::TLS_RECORD_PLAINTEXT_BYTES, 16 * 1024);
/// ```
pub const TLS_RECORD_PLAINTEXT_BYTES: usize = 16 * 1024;
