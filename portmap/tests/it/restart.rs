//! A node keeps its name registered across daemon restarts.

use std::net::SocketAddr;

use erlangen_portmap::{Client, KeepRegistered};

use crate::support::{daemon_with, eventually, HANG_GUARD};

#[test]
fn after_a_daemon_restart_the_client_registers_again() {
    let first = daemon_with(|_| {});
    let addr: SocketAddr = first.local_addr();
    let keeper = KeepRegistered::start(addr, "phoenix", 4242).unwrap();
    assert!(keeper.wait_registrations(1, HANG_GUARD));
    assert_eq!(
        Client::connect(addr).unwrap().lookup("phoenix").unwrap(),
        4242
    );

    first.stop().unwrap();
    assert!(eventually(|| !keeper.is_registered()));

    // A new daemon on the same port.
    let second = daemon_with(|c| c.listen = addr);
    assert!(
        keeper.wait_registrations(2, HANG_GUARD),
        "{:?}",
        keeper.last_error()
    );
    assert_eq!(
        Client::connect(addr).unwrap().lookup("phoenix").unwrap(),
        4242
    );

    keeper.stop();
    assert!(eventually(|| second.stats().names == 0));
}
