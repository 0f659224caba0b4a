//! Helpers shared by the port-mapper tests.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use erlangen_portmap::wire::Reply;
use erlangen_portmap::{Daemon, DaemonConfig};

/// Hang guard for waits; never a performance threshold.
pub(crate) const HANG_GUARD: Duration = Duration::from_secs(30);

/// The frame timeout the tests configure (short, so slow-writer tests are quick).
pub(crate) const FRAME_TIMEOUT: Duration = Duration::from_millis(1000);

/// A daemon on an ephemeral loopback port with test timeouts.
pub(crate) fn daemon() -> Daemon {
    daemon_with(|_| {})
}

/// A daemon with a tweaked configuration.
pub(crate) fn daemon_with(tweak: impl FnOnce(&mut DaemonConfig)) -> Daemon {
    let mut config = DaemonConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        frame_timeout: FRAME_TIMEOUT,
        idle_timeout: Duration::from_secs(5),
        ..DaemonConfig::default()
    };
    tweak(&mut config);
    Daemon::start(config).expect("the daemon starts")
}

/// Waits until `condition` holds (hang guard only).
pub(crate) fn eventually(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + HANG_GUARD;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    condition()
}

/// A raw connection that has read the greeting.
pub(crate) fn raw(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(HANG_GUARD)).unwrap();
    let reply = read_reply(&mut stream).expect("a greeting");
    assert!(matches!(reply, Reply::Hello { .. }), "{reply:?}");
    stream
}

/// Reads one reply frame; `None` if the daemon closed the connection.
pub(crate) fn read_reply(stream: &mut TcpStream) -> Option<Reply> {
    let mut header = [0u8; 8];
    stream.read_exact(&mut header).ok()?;
    let kind = u32::from_le_bytes(header[..4].try_into().unwrap());
    let length = u32::from_le_bytes(header[4..].try_into().unwrap()) as usize;
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).ok()?;
    Some(Reply::decode(kind, &body).expect("the daemon sends valid replies"))
}

/// Whether the daemon closed `stream` (reads until EOF or reset).
pub(crate) fn closed_by_daemon(stream: &mut TcpStream) -> bool {
    let mut sink = [0u8; 256];
    loop {
        match stream.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

/// Writes bytes, ignoring a reset (the daemon may close first).
pub(crate) fn send(stream: &mut TcpStream, bytes: &[u8]) {
    let _ = stream.write_all(bytes);
}
