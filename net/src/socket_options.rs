//! The options every connection's socket gets, ours and Erlang's: no
//! Nagle delay, a short unsent queue, and on loopback a small receive
//! window, so that a small frame never waits in the kernel behind
//! megabytes of another pair's large message (config.rs says why each).
//! The only module of `net` that uses `socket2`.

use std::net::SocketAddr;

use mio::net::TcpStream;
use socket2::SockRef;

use crate::config::{LOOPBACK_RECEIVE_BUFFER_BYTES, SOCKET_UNSENT_BYTES_MAX};

/// Sets the options on a connected stream to `peer`. Each is a hint: a
/// socket that refuses one works as before, so failures are ignored.
pub(crate) fn tune(stream: &TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let socket = SockRef::from(stream);
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let _ = socket.set_tcp_notsent_lowat(SOCKET_UNSENT_BYTES_MAX);
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = SOCKET_UNSENT_BYTES_MAX;
    if peer.ip().is_loopback() {
        let _ = socket.set_recv_buffer_size(LOOPBACK_RECEIVE_BUFFER_BYTES);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn a_loopback_connection_keeps_a_short_unsent_queue_and_a_small_receive_window() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let address = listener.local_addr().expect("its address");
        let mut stream =
            TcpStream::from_std(std::net::TcpStream::connect(address).expect("connects"));
        tune(&stream, address);
        assert!(stream.nodelay().expect("readable"));
        #[cfg(any(target_os = "linux", target_os = "android"))]
        assert_eq!(
            SockRef::from(&stream)
                .tcp_notsent_lowat()
                .expect("readable"),
            SOCKET_UNSENT_BYTES_MAX
        );
        // 16 MiB through it: the kernel's autotuning would grow the
        // receive buffer on the way; ours stays (Linux reports twice what
        // was asked, for its bookkeeping).
        let (mut peer, _) = listener.accept().expect("accepted");
        const BYTES: usize = 16 << 20;
        let writer = std::thread::spawn(move || {
            let chunk = vec![1u8; 64 * 1024];
            for _ in 0..BYTES / chunk.len() {
                peer.write_all(&chunk).expect("written");
            }
        });
        let mut buffer = vec![0u8; 64 * 1024];
        let mut read = 0;
        while read < BYTES {
            match stream.read(&mut buffer) {
                Ok(0) => panic!("closed after {read} bytes"),
                Ok(n) => read += n,
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::yield_now()
                }
                Err(error) => panic!("{error}"),
            }
        }
        writer.join().expect("the writer");
        let size = SockRef::from(&stream).recv_buffer_size().expect("readable");
        assert!(size <= 2 * LOOPBACK_RECEIVE_BUFFER_BYTES, "{size}");
    }
}
