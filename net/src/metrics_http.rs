//! The metrics endpoint: a listener on its own thread that answers
//! `GET /metrics` with metrics.rs's text (`NodeBuilder::metrics_listen`,
//! the kernel's `--metrics-listen`).
//!
//! 1. One connection at a time: the request is read with a deadline
//!    (`METRICS_REQUEST_TIMEOUT`) and at most `METRICS_REQUEST_BYTES_MAX`
//!    bytes, up to the end of its head.
//! 2. `GET /metrics` is answered 200 with the text; another path 404,
//!    another method 405, anything that is not an HTTP request head
//!    within the bounds 400. Then the connection closes (HTTP/1.0-style),
//!    so a scraper never holds the endpoint (what it still sends is read
//!    and dropped first, at most `METRICS_DRAIN_BYTES_MAX`, so that the
//!    close does not reset the answer away).
//! 3. Bad input costs one bounded read and an error answer; it never
//!    reaches the node. Nothing here changes the node: the endpoint only
//!    reads, which is why it asks for no cookie; bind it to an address only
//!    the scraper reaches.
//! 4. The node's stop ends the thread: it sets the flag and connects once
//!    to wake the accept.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;

use crate::config::{METRICS_DRAIN_BYTES_MAX, METRICS_REQUEST_BYTES_MAX, METRICS_REQUEST_TIMEOUT};
use crate::shared::NodeShared;

/// A running endpoint.
#[derive(Debug)]
pub(crate) struct Endpoint {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Endpoint {
    /// Binds `addr` and serves `node` until stopped.
    pub(crate) fn start(addr: SocketAddr, node: Weak<NodeShared>) -> std::io::Result<Endpoint> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("erlangen-metrics".to_owned())
            .spawn(move || {
                for stream in listener.incoming() {
                    if stopping.load(Ordering::Acquire) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    let Some(node) = node.upgrade() else { return };
                    serve(stream, &node);
                }
            })?;
        Ok(Endpoint {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// Where it listens.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Step 4.
    pub(crate) fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = TcpStream::connect_timeout(&self.addr, METRICS_REQUEST_TIMEOUT);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Steps 1 and 2 for one connection.
fn serve(mut stream: TcpStream, node: &NodeShared) {
    let _ = stream.set_read_timeout(Some(METRICS_REQUEST_TIMEOUT));
    let _ = stream.set_write_timeout(Some(METRICS_REQUEST_TIMEOUT));
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    let complete = loop {
        if head.windows(4).any(|w| w == b"\r\n\r\n") {
            break true;
        }
        if head.len() >= METRICS_REQUEST_BYTES_MAX {
            break false;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break false,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
    };
    let request_line = std::str::from_utf8(&head)
        .ok()
        .filter(|_| complete)
        .and_then(|text| text.lines().next())
        .map(|line| line.split(' ').collect::<Vec<_>>());
    let (status, body) = match request_line.as_deref() {
        Some([method, path, version]) if version.starts_with("HTTP/1.") => match (*method, *path) {
            ("GET", "/metrics") => ("200 OK", crate::metrics::text(node)),
            ("GET", _) => ("404 Not Found", "not found: try /metrics\n".to_owned()),
            _ => ("405 Method Not Allowed", "only GET\n".to_owned()),
        },
        _ => ("400 Bad Request", "not an HTTP request\n".to_owned()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes());
    // Close gracefully: what the client still sends (a request longer than
    // the bound) is read and dropped, up to a bound and the deadline, so
    // that the close is no reset that could destroy the answer on its way.
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut drained = 0;
    while drained < METRICS_DRAIN_BYTES_MAX {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}
