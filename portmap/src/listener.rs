//! `Listener`: a TCP listener for a hostile host — the port mapper's and a
//! node's. It owns the descriptor-limit policy, so that both keep accepting
//! after the process ran out of descriptors.
//!
//! # Protocol
//!
//! 1. [`raise_descriptor_limit`] (at start) lifts the soft `RLIMIT_NOFILE`
//!    to the hard limit; the caller sizes its connection bound from the
//!    result, leaving `DESCRIPTORS_RESERVED` for everything else.
//! 2. [`Listener::bind`] listens with an explicit backlog (bursts of
//!    connects must not drop SYNs at the kernel's default of 128) and opens
//!    one reserve descriptor (`/dev/null`).
//! 3. [`Listener::accept_all`] accepts until the backlog is empty, which
//!    re-arms the edge-triggered readiness. When `accept` fails with
//!    `EMFILE` or `ENFILE`, the reserve is closed, one pending connection is
//!    accepted and handed to `refuse` (which tells it "busy" and drops it),
//!    and the reserve is reopened: the backlog still drains, so nothing waits
//!    for a connection that will not come.
//! 4. If even that fails (no reserve could be had), `accept_all` answers
//!    [`Accepted::Exhausted`] and the caller calls it again after
//!    [`ACCEPT_RETRY`], without waiting for another connection.

use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use mio::net::{TcpListener, TcpStream};

/// Descriptors kept for everything but connections (the poll, the waker,
/// the reserve, log files, lookups).
pub const DESCRIPTORS_RESERVED: u64 = 64;

/// How soon to try accepting again after descriptors ran out.
pub const ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// What `accept_all` ended with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accepted {
    /// The backlog is empty.
    Drained,
    /// Descriptors ran out and no reserve could be had: call again after
    /// [`ACCEPT_RETRY`].
    Exhausted,
}

/// A listening socket and its reserve descriptor.
#[derive(Debug)]
pub struct Listener {
    inner: TcpListener,
    reserve: Option<File>,
}

impl Listener {
    /// Listens on `addr` with room for `backlog` pending connects.
    pub fn bind(addr: SocketAddr, backlog: u32) -> io::Result<Listener> {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )?;
        socket.set_reuse_address(true)?;
        socket.bind(&addr.into())?;
        socket.listen(backlog.min(i32::MAX as u32) as i32)?;
        socket.set_nonblocking(true)?;
        let std_listener: std::net::TcpListener = socket.into();
        Ok(Listener {
            inner: TcpListener::from_std(std_listener),
            reserve: File::open("/dev/null").ok(),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// The socket, to register with a `Poll`.
    pub fn socket(&mut self) -> &mut TcpListener {
        &mut self.inner
    }

    /// Step 3: accepts every pending connection, handing each to `admit`,
    /// or to `refuse` when descriptors ran out. Other errors are reported to
    /// `failed` and end this round.
    pub fn accept_all(
        &mut self,
        admit: &mut dyn FnMut(TcpStream, SocketAddr),
        refuse: &mut dyn FnMut(TcpStream, SocketAddr),
        failed: &mut dyn FnMut(&io::Error),
    ) -> Accepted {
        loop {
            match self.inner.accept() {
                Ok((stream, peer)) => admit(stream, peer),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    return Accepted::Drained
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) if out_of_descriptors(&error) => {
                    // Free the reserve, take one connection to refuse it,
                    // then take the reserve back.
                    if self.reserve.take().is_none() {
                        self.reserve = File::open("/dev/null").ok();
                        return Accepted::Exhausted;
                    }
                    let taken = self.inner.accept();
                    self.reserve = File::open("/dev/null").ok();
                    match taken {
                        Ok((stream, peer)) => refuse(stream, peer),
                        Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                            return Accepted::Drained;
                        }
                        Err(_) => return Accepted::Exhausted,
                    }
                }
                Err(error) => {
                    failed(&error);
                    return Accepted::Drained;
                }
            }
        }
    }
}

fn out_of_descriptors(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EMFILE) | Some(libc::ENFILE)
    )
}

/// Step 1: raises the soft descriptor limit to the hard one; returns the
/// soft limit in force afterwards.
pub fn raise_descriptor_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes only the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 1024;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit reads only the struct we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return raised.rlim_cur;
        }
    }
    limit.rlim_cur
}
