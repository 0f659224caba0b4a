//! Every limit and default of a node, with its unit in its name.

use std::time::Duration;

/// Protocol version spoken in the handshake.
///
/// ```
/// assert_eq!(erlangen_net::config::PROTOCOL_VERSION, 1);
/// ```
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest frame body accepted or sent, in bytes. A length prefix above it
/// closes the connection before anything is buffered.
///
/// ```
/// assert!(erlangen_net::frame::parse(&[0, 0, 0x20, 0, 3], erlangen_net::config::FRAME_BODY_BYTES_MAX).is_err());
/// ```
pub const FRAME_BODY_BYTES_MAX: usize = 1 << 20;

/// Largest handshake frame body, in bytes (names and the type list).
///
/// ```
/// assert!(erlangen_net::config::HANDSHAKE_BODY_BYTES_MAX < erlangen_net::config::FRAME_BODY_BYTES_MAX);
/// ```
pub const HANDSHAKE_BODY_BYTES_MAX: usize = 64 * 1024;

/// Bytes of the frame header: a 4-byte little-endian body length and a
/// 1-byte kind.
///
/// ```
/// assert_eq!(erlangen_net::config::FRAME_HEADER_BYTES, erlangen_net::frame::HEADER_BYTES);
/// ```
pub const FRAME_HEADER_BYTES: usize = 5;

/// Deepest nesting of a decoded wire value (exit statuses that carry the
/// statuses of linked agents): deeper frames are refused, so that decoding
/// never recurses without bound (pitfalls.md §2).
///
/// ```
/// assert!(erlangen_net::config::WIRE_DEPTH_MAX >= 1);
/// ```
pub const WIRE_DEPTH_MAX: usize = 32;

/// Random bytes of a handshake challenge.
///
/// ```
/// assert_eq!(erlangen_net::handshake::challenge().unwrap().len(), erlangen_net::config::CHALLENGE_BYTES);
/// ```
pub const CHALLENGE_BYTES: usize = 32;

/// Default time the event loop keeps polling (yielding the core between
/// polls) after it last had work, before it sleeps in `epoll_wait`
/// (`NodeBuilder::poll_spin`). Measured on a 2-vCPU VM (issue 21): a round
/// trip between two nodes 44 µs without it, 18–25 µs with it; 200 µs and
/// more were no better.
///
/// ```
/// assert!(erlangen_net::config::POLL_SPIN_DEFAULT < std::time::Duration::from_millis(1));
/// ```
pub const POLL_SPIN_DEFAULT: Duration = Duration::from_micros(100);

/// Default interval of heartbeats on a quiet connection.
///
/// ```
/// assert!(erlangen_net::config::HEARTBEAT_INTERVAL_DEFAULT < erlangen_net::config::HEARTBEAT_TIMEOUT_DEFAULT);
/// ```
pub const HEARTBEAT_INTERVAL_DEFAULT: Duration = Duration::from_millis(1000);

/// Default silence after which a peer is declared lost.
///
/// ```
/// assert_eq!(erlangen_net::config::HEARTBEAT_TIMEOUT_DEFAULT.as_secs(), 4);
/// ```
pub const HEARTBEAT_TIMEOUT_DEFAULT: Duration = Duration::from_millis(4000);

/// Time a connection may take to connect and finish its handshake.
///
/// ```
/// assert!(erlangen_net::config::HANDSHAKE_TIMEOUT.as_secs() >= 1);
/// ```
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Time an accepted connection has to finish its handshake: a peer that
/// dialled us is connected already, so this is shorter than
/// `HANDSHAKE_TIMEOUT`, and an idle connection holds a handshake slot no
/// longer than this.
///
/// ```
/// use erlangen_net::config::{ACCEPTED_HANDSHAKE_TIMEOUT, HANDSHAKE_TIMEOUT};
/// assert!(ACCEPTED_HANDSHAKE_TIMEOUT < HANDSHAKE_TIMEOUT);
/// ```
pub const ACCEPTED_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);

/// Most connections a node keeps (peers, the node's own dials and
/// accepted connections in handshake).
///
/// ```
/// assert!(erlangen_net::config::CONNECTIONS_MAX >= 2);
/// ```
pub const CONNECTIONS_MAX: usize = 1024;

/// Most accepted connections still in their handshake. The rest of
/// `CONNECTIONS_MAX` stays free for established peers and the node's own
/// dials, whatever unauthenticated clients do (PROTOCOL.md "Slots").
///
/// ```
/// use erlangen_net::config::{CONNECTIONS_MAX, HANDSHAKES_MAX};
/// assert!(HANDSHAKES_MAX <= CONNECTIONS_MAX / 2);
/// ```
pub const HANDSHAKES_MAX: usize = 256;

/// Share of `HANDSHAKES_MAX`, in percent, that connections from addresses
/// other than 127.0.0.1 and ::1 may hold; the rest stays free for
/// loopback peers (the port mapper's rule).
///
/// ```
/// assert_eq!(erlangen_net::config::HANDSHAKES_NONLOCAL_SHARE_PERCENT, 50);
/// ```
pub const HANDSHAKES_NONLOCAL_SHARE_PERCENT: usize = 50;

/// Most handshakes one address other than 127.0.0.1 and ::1 may hold.
///
/// ```
/// use erlangen_net::config::*;
/// assert!(HANDSHAKES_PER_ADDRESS_MAX < HANDSHAKES_MAX * HANDSHAKES_NONLOCAL_SHARE_PERCENT / 100);
/// ```
pub const HANDSHAKES_PER_ADDRESS_MAX: usize = 16;

/// Dials of a node tried in a row while commands wait for it (the first
/// included); after the last fails, what waits fails with `noconnection`.
///
/// ```
/// assert!(erlangen_net::config::DIAL_ATTEMPTS_MAX >= 2);
/// ```
pub const DIAL_ATTEMPTS_MAX: u32 = 3;

/// Base of the wait before dialling a node again, doubled per attempt.
///
/// ```
/// assert!(erlangen_net::config::DIAL_RETRY_BACKOFF.as_millis() >= 10);
/// ```
pub const DIAL_RETRY_BACKOFF: Duration = Duration::from_millis(50);

/// Default time `Node::spawn` waits for the remote node's answer. Every
/// failure the node can see (lookup, connect, handshake, loss) answers
/// sooner with its reason; this bounds the rest (a peer that never
/// answers).
///
/// ```
/// assert_eq!(erlangen_net::config::SPAWN_TIMEOUT_DEFAULT.as_secs(), 30);
/// ```
pub const SPAWN_TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);

/// Bytes a node's loop asks the kernel for per read call, into a scratch
/// buffer of this size it keeps (not zeroed again for each read).
///
/// ```
/// use erlangen_net::config::*;
/// assert!(READ_CHUNK_BYTES <= READ_BYTES_PER_TURN_MAX);
/// ```
pub const READ_CHUNK_BYTES: usize = 64 * 1024;

/// Most bytes read from one connection per readiness event before others
/// get a turn.
///
/// ```
/// assert!(erlangen_net::config::READ_BYTES_PER_TURN_MAX >= 64 * 1024);
/// ```
pub const READ_BYTES_PER_TURN_MAX: usize = 256 * 1024;

/// Longest node name part (the `node` of `host/node`), in bytes.
///
/// ```
/// assert!("localhost/alpha".parse::<erlangen_net::NodeName>().is_ok());
/// let long = format!("localhost/{}", "a".repeat(erlangen_net::config::NODE_NAME_BYTES_MAX + 1));
/// assert!(long.parse::<erlangen_net::NodeName>().is_err());
/// ```
pub const NODE_NAME_BYTES_MAX: usize = 255;

/// Commands (messages and signals) queued in the node and not yet written,
/// above which agents sending to remote pids wait (backpressure).
///
/// ```
/// assert!(erlangen_net::config::BACKLOG_COMMANDS_HIGH_WATER < erlangen_net::config::BACKLOG_COMMANDS_MAX);
/// ```
pub const BACKLOG_COMMANDS_HIGH_WATER: usize = 8192;

/// Bytes in the node's write buffers above which agents sending to remote
/// pids wait (backpressure). With the command bound, a node holds at most
/// about this much plus `BACKLOG_COMMANDS_HIGH_WATER` messages for the
/// network.
///
/// ```
/// assert_eq!(erlangen_net::config::BACKLOG_BYTES_HIGH_WATER, 4 << 20);
/// ```
pub const BACKLOG_BYTES_HIGH_WATER: usize = 4 << 20;

/// Pending connects the node's listening socket holds.
///
/// ```
/// assert!(erlangen_net::config::LISTEN_BACKLOG >= 128);
/// ```
pub const LISTEN_BACKLOG: u32 = 1024;

/// How soon the node tries accepting again after descriptors ran out.
///
/// ```
/// assert!(erlangen_net::config::ACCEPT_RETRY.as_millis() > 0);
/// ```
pub const ACCEPT_RETRY: Duration = erlangen_portmap::listener::ACCEPT_RETRY;

/// Commands queued above which a send from outside any agent (which cannot
/// be made to wait) is dropped and counted ([`crate::Node::dropped`]):
/// agents wait at `BACKLOG_COMMANDS_HIGH_WATER`, so only plain threads
/// reach this, and the node's memory stays bounded whoever sends.
///
/// ```
/// assert_eq!(erlangen_net::config::BACKLOG_COMMANDS_MAX, 4 * erlangen_net::config::BACKLOG_COMMANDS_HIGH_WATER);
/// ```
pub const BACKLOG_COMMANDS_MAX: usize = 4 * BACKLOG_COMMANDS_HIGH_WATER;

/// Bytes a connection's write buffer may hold before the node stops
/// reading from that connection and holds further commands for it: every
/// frame read may add a reply (spawn replies, `noproc` answers), so a peer
/// that sends and never reads stops being read. Agents that send past it
/// are made to wait (outbox.rs step 2c), appending while the buffer is
/// less than a frame past it. With one frame of either kind on top, and
/// the pending lane moved in, a connection's write buffer never exceeds
/// `CONNECTION_WRITE_BYTES_HIGH_WATER + 2 * (FRAME_BODY_BYTES_MAX + 5) +
/// OUTBOX_PENDING_BYTES_MAX`.
///
/// ```
/// use erlangen_net::config::*;
/// assert!(CONNECTION_WRITE_BYTES_HIGH_WATER > FRAME_BODY_BYTES_MAX);
/// ```
pub const CONNECTION_WRITE_BYTES_HIGH_WATER: usize = 2 << 20;

/// Bytes under which a paused connection's write buffer must drain before
/// the node reads from it again.
///
/// ```
/// use erlangen_net::config::*;
/// assert!(CONNECTION_WRITE_BYTES_LOW_WATER < CONNECTION_WRITE_BYTES_HIGH_WATER);
/// ```
pub const CONNECTION_WRITE_BYTES_LOW_WATER: usize = CONNECTION_WRITE_BYTES_HIGH_WATER / 2;

/// Longest error text a node writes on the wire (a remote spawn's
/// refusal), in bytes: what it echoes of a request is cut to fit.
///
/// ```
/// assert!(erlangen_net::config::ERROR_TEXT_BYTES_MAX >= 128);
/// ```
pub const ERROR_TEXT_BYTES_MAX: usize = 512;

/// Most of a peer-given type name a node echoes in an error (a remote
/// spawn's argument type), in bytes.
///
/// ```
/// assert!(erlangen_net::config::TYPE_NAME_SHOWN_BYTES_MAX < erlangen_net::config::ERROR_TEXT_BYTES_MAX);
/// ```
pub const TYPE_NAME_SHOWN_BYTES_MAX: usize = 128;

/// Longest text of an exit reason (`Other`, `Panic`) a node writes on the
/// wire, in bytes; a longer one is cut to fit (with a marker).
///
/// ```
/// use erlangen_net::config::*;
/// assert!(REASON_TEXT_BYTES_MAX < FRAME_BODY_BYTES_MAX / 2);
/// ```
pub const REASON_TEXT_BYTES_MAX: usize = 64 * 1024;

/// Largest encoded message body a node sends, in bytes: the frame limit
/// less room for the packet around it (target, type name, registered
/// name). A larger message is refused at the sender
/// ([`erlangen_runtime::Ctx::try_send`] says so; `send` counts and logs
/// it), so every message a node sends is one its peer accepts. A message
/// larger than [`FRAGMENT_BYTES`] crosses the connection in fragments,
/// interleaved with other agents' messages (fragments.rs).
///
/// ```
/// use erlangen_net::config::*;
/// // A 64 MiB byte string, with the length in front of it.
/// assert_eq!(MESSAGE_BODY_BYTES_MAX, (64 << 20) + 4096);
/// ```
pub const MESSAGE_BODY_BYTES_MAX: usize = (64 << 20) + 4096;

/// Most bytes of one packet: the largest message with its type name and
/// addressing. A larger packet, or a fragmented one that grows past it, is
/// bad input.
///
/// ```
/// use erlangen_net::config::*;
/// assert_eq!(PACKET_BYTES_MAX, MESSAGE_BODY_BYTES_MAX + 16 * 1024);
/// ```
pub const PACKET_BYTES_MAX: usize = MESSAGE_BODY_BYTES_MAX + 16 * 1024;

/// Packets whose encoding is larger than this travel in fragments of this
/// many bytes (fragments.rs), so that a small message of another pair of
/// agents waits behind at most about two of them.
///
/// ```
/// use erlangen_net::config::*;
/// assert!(FRAGMENT_BYTES + 64 <= FRAME_BODY_BYTES_MAX);
/// ```
pub const FRAGMENT_BYTES: usize = 64 * 1024;

/// A connection's writer takes the next fragment when its buffer holds
/// less than this many bytes (fragments.rs step 4).
///
/// ```
/// assert_eq!(erlangen_net::config::FRAGMENT_REFILL_BYTES, 64 * 1024);
/// ```
pub const FRAGMENT_REFILL_BYTES: usize = 64 * 1024;

/// A connection's socket takes more bytes from its writer only while it
/// holds fewer than this many not yet sent (`TCP_NOTSENT_LOWAT`): what the
/// writer cannot hand over waits in its outbox, where a small frame of
/// another pair of agents goes ahead of the next fragment (fragments.rs
/// step 4), instead of in the kernel behind megabytes of them.
///
/// ```
/// use erlangen_net::config::*;
/// assert!((SOCKET_UNSENT_BYTES_MAX as usize) < FRAGMENT_BYTES);
/// ```
pub const SOCKET_UNSENT_BYTES_MAX: u32 = 32 * 1024;

/// Receive buffer of a connection to a peer on the same host (loopback),
/// in bytes (`SO_RCVBUF`; the kernel doubles it for its bookkeeping). Two
/// nodes on one host share its cores: while the receiving node's loop
/// waits for a core, the sender fills whatever window it is offered, and a
/// small frame written next waits behind all of it (megabytes with the
/// kernel's autotuning: tens of milliseconds). A loopback round trip is
/// microseconds, so this window still carries gigabytes per second.
/// Connections to other hosts keep the kernel's autotuning, which sizes
/// the window to the path's bandwidth and delay.
///
/// ```
/// use erlangen_net::config::*;
/// assert_eq!(LOOPBACK_RECEIVE_BUFFER_BYTES, FRAGMENT_BYTES);
/// ```
pub const LOOPBACK_RECEIVE_BUFFER_BYTES: usize = 64 * 1024;

/// Most fragmented packets in flight on one connection, received side.
///
/// ```
/// assert_eq!(erlangen_net::config::STREAMS_IN_FLIGHT_MAX, 64);
/// ```
pub const STREAMS_IN_FLIGHT_MAX: usize = 64;

/// Most bytes of partial packets one connection holds while their
/// fragments arrive: a peer past it is closed.
///
/// ```
/// use erlangen_net::config::*;
/// assert_eq!(PARTIAL_BYTES_MAX, 2 * PACKET_BYTES_MAX);
/// ```
pub const PARTIAL_BYTES_MAX: usize = 2 * PACKET_BYTES_MAX;

/// Bytes of large messages (waiting to leave in fragments, on all
/// connections) past which the sender of another large message waits,
/// suspended, after sending it; senders of small messages do not wait for
/// them (they pass the large ones, fragments.rs). So each sender adds at
/// most one large message beyond this mark.
///
/// ```
/// use erlangen_net::config::*;
/// assert_eq!(LARGE_BACKLOG_BYTES_HIGH_WATER, 2 * MESSAGE_BODY_BYTES_MAX);
/// ```
pub const LARGE_BACKLOG_BYTES_HIGH_WATER: usize = 2 * MESSAGE_BODY_BYTES_MAX;

/// Most bytes the event loop writes to one connection per turn before it
/// reads and serves the others (the rest next turn).
///
/// ```
/// assert_eq!(erlangen_net::config::LOOP_WRITE_BYTES_PER_TURN_MAX, 256 * 1024);
/// ```
pub const LOOP_WRITE_BYTES_PER_TURN_MAX: usize = 256 * 1024;

/// Most bytes a sender's worker writes to a socket in one flush; the rest
/// is the event loop's (outbox.rs step 3), so that a large message never
/// holds a worker.
///
/// ```
/// assert_eq!(erlangen_net::config::WORKER_WRITE_BYTES_MAX, 256 * 1024);
/// ```
pub const WORKER_WRITE_BYTES_MAX: usize = 256 * 1024;

/// What decoding a user value (a message, spawn arguments, a returned
/// value) may allocate, as a multiple of its encoded size limit. bincode's
/// smallest encodings expand in memory: a one-byte varint to an 8-byte
/// `i64` or a 16-byte `u128`, a one-byte empty `Vec` or `String` to its
/// 24-byte header. 32 covers these, so any message of the common types
/// that a sender may send decodes on its receiver.
///
/// ```
/// assert_eq!(erlangen_net::config::DECODE_EXPANSION_MAX, 32);
/// ```
pub const DECODE_EXPANSION_MAX: usize = 32;

/// Most bytes decoding one user value of at most [`FRAME_BODY_BYTES_MAX`]
/// encoded bytes may allocate: a value that needs more (a type whose
/// in-memory form dwarfs its encoding, such as a large enum with small
/// variants) is dropped and counted, and the connection stays up.
///
/// ```
/// use erlangen_net::config::*;
/// assert_eq!(VALUE_DECODE_BYTES_MAX, 32 << 20);
/// ```
pub const VALUE_DECODE_BYTES_MAX: usize = FRAME_BODY_BYTES_MAX * DECODE_EXPANSION_MAX;

/// The same for a larger value (up to [`MESSAGE_BODY_BYTES_MAX`]): room
/// for 4 times the largest message, not 32 (a 64 MiB message of one-byte
/// integers decoded as `Vec<u64>` is refused, and counted).
///
/// ```
/// use erlangen_net::config::*;
/// assert_eq!(LARGE_VALUE_DECODE_BYTES_MAX, 4 * MESSAGE_BODY_BYTES_MAX);
/// ```
pub const LARGE_VALUE_DECODE_BYTES_MAX: usize = 4 * MESSAGE_BODY_BYTES_MAX;

/// Disconnected peers whose stats ([`crate::Node::peers`]) a node keeps;
/// beyond it the longest gone are forgotten. With the incarnation, routes
/// and edges (kept only while a peer is up or awaited), this is all a node
/// remembers of departed peers: a million short-lived clients cost no more
/// than this many records.
///
/// ```
/// assert_eq!(erlangen_net::config::DEPARTED_PEERS_KEPT, 1024);
/// ```
pub const DEPARTED_PEERS_KEPT: usize = 1024;

/// Deepest nesting of an Erlang term accepted from an Erlang node (tuples,
/// lists and maps inside each other): deeper terms are refused before
/// anything is built, so that decoding never recurses without bound.
///
/// ```
/// assert_eq!(erlangen_net::config::ERLANG_TERM_DEPTH_MAX, 1000);
/// ```
pub const ERLANG_TERM_DEPTH_MAX: usize = 1000;

/// Largest packet accepted from or sent to an Erlang node after the
/// handshake, in bytes: the largest message of our own protocol and room
/// for its control message. A length prefix above it closes that
/// connection before anything is buffered.
///
/// ```
/// use erlangen_net::config::*;
/// assert!(ERLANG_PACKET_BYTES_MAX > MESSAGE_BODY_BYTES_MAX);
/// ```
pub const ERLANG_PACKET_BYTES_MAX: usize = MESSAGE_BODY_BYTES_MAX + 64 * 1024;

/// Largest handshake message of the Erlang distribution, in bytes (a name
/// of at most 255 characters and a few fixed fields; Erlang frames them
/// with a 2-byte length).
///
/// ```
/// assert!(erlangen_net::config::ERLANG_HANDSHAKE_BYTES_MAX >= 1024);
/// ```
pub const ERLANG_HANDSHAKE_BYTES_MAX: usize = 2048;

/// How long a sender's worker tries for an outbox's lock before it hands
/// its packet to the event loop (outbox.rs step 2). The lock is held for
/// an append or a non-blocking write of at most `WORKER_WRITE_BYTES_MAX`;
/// giving up at once sent a fifth of the sends of 8 senders on 2 workers to
/// the loop, and each one held every later sender of the node behind it
/// (`unsettled`), so that 85 % went through the loop (issue 21).
///
/// ```
/// assert!(erlangen_net::config::OUTBOX_LOCK_SPIN < std::time::Duration::from_micros(100));
/// ```
pub const OUTBOX_LOCK_SPIN: Duration = Duration::from_micros(20);

/// Buckets of the per-sender count of queued commands (unsettled.rs):
/// agents whose serials fall in one bucket wait for each other's queued
/// commands before they write directly.
///
/// ```
/// assert_eq!(erlangen_net::config::UNSETTLED_BUCKETS, 64);
/// ```
pub const UNSETTLED_BUCKETS: usize = 64;

/// Most bytes of packets a connection's pending lane holds (outbox.rs
/// step 2b): senders that find its lock held leave packets there; past
/// this, they go to the loop as before. Sized for a lock holder that loses
/// its core for a scheduler's time slice (4 ms) while a sender floods the
/// connection (about 2 million 80-byte packets a second): 64 KiB filled in
/// a third of a millisecond, and every send after it went to the loop.
///
/// ```
/// assert_eq!(erlangen_net::config::OUTBOX_PENDING_BYTES_MAX, 1024 * 1024);
/// ```
pub const OUTBOX_PENDING_BYTES_MAX: usize = 1024 * 1024;

/// Most node names one `Peers` packet may list (net/PROTOCOL.md,
/// "Membership"): a mesh is meant for tens of nodes, as Erlang's full mesh
/// is; a longer list closes the connection.
///
/// ```
/// assert_eq!(erlangen_net::config::PEERS_LISTED_MAX, 1024);
/// ```
pub const PEERS_LISTED_MAX: usize = 1024;

/// Most `(group, member)` entries one `Groups` packet may carry, and most
/// bytes of a group's name (net/PROTOCOL.md, "Process groups"); past them
/// the connection closes (a node sends its members in packets of at most
/// this many).
///
/// ```
/// assert_eq!(erlangen_net::config::GROUP_ENTRIES_MAX, 65_536);
/// assert_eq!(erlangen_net::config::GROUP_NAME_BYTES_MAX, 255);
/// ```
pub const GROUP_ENTRIES_MAX: usize = 65_536;

/// Most bytes of a process group's name.
pub const GROUP_NAME_BYTES_MAX: usize = 255;

/// How often a node's loop checks its process-group members for exits
/// (groups.rs step 3): a member that exits leaves its groups within this.
///
/// ```
/// assert_eq!(erlangen_net::config::GROUP_SWEEP_INTERVAL.as_millis(), 100);
/// ```
pub const GROUP_SWEEP_INTERVAL: Duration = Duration::from_millis(100);

/// The largest request head the metrics endpoint reads, in bytes
/// (metrics_http.rs step 1); a longer one is answered 400.
///
/// ```
/// assert_eq!(erlangen_net::config::METRICS_REQUEST_BYTES_MAX, 8 * 1024);
/// ```
pub const METRICS_REQUEST_BYTES_MAX: usize = 8 * 1024;

/// How long the metrics endpoint waits for a request head, and for its
/// answer to be taken (metrics_http.rs step 1).
///
/// ```
/// assert_eq!(erlangen_net::config::METRICS_REQUEST_TIMEOUT.as_secs(), 2);
/// ```
pub const METRICS_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// What the metrics endpoint reads and drops of a request after answering,
/// at most, in bytes (metrics_http.rs step 2).
///
/// ```
/// assert!(erlangen_net::config::METRICS_DRAIN_BYTES_MAX >= erlangen_net::config::METRICS_REQUEST_BYTES_MAX);
/// ```
pub const METRICS_DRAIN_BYTES_MAX: usize = 64 * 1024;

/// Capacity of a node's observer's mailbox (observer.rs): requests past it
/// are dropped and their calls time out.
pub const OBSERVER_MAILBOX_LEN: usize = 64;

/// Most agents (or peers, or ids in a detail's lists) in one observer
/// reply; longer listings are paged.
///
/// ```
/// assert!(erlangen_net::config::OBSERVE_PAGE_LEN_MAX <= erlangen_runtime::AGENT_PAGE_LEN_MAX);
/// ```
pub const OBSERVE_PAGE_LEN_MAX: usize = 500;

/// Most registered names in one observer reply.
pub const OBSERVE_NAMES_MAX: usize = 1000;

/// Most names of one agent in an observer's row.
pub const OBSERVE_NAMES_PER_AGENT_MAX: usize = 8;

/// Longest name or filter an observer echoes, in bytes (longer ones are
/// cut, with a marker).
pub const OBSERVE_TEXT_BYTES_MAX: usize = 128;

/// Longest printed agent tree in an observer's reply, in bytes.
pub const OBSERVE_TREE_BYTES_MAX: usize = 16 * 1024;
