//! Register, look up, list; duplicates; release with the connection.

use std::io::Write;
use std::net::TcpStream;

use erlangen_portmap::{Client, ErrorCode};

use crate::support::{daemon, eventually};

#[test]
fn register_then_look_up_and_list() {
    let daemon = daemon();
    let _alpha = Client::connect(daemon.local_addr())
        .unwrap()
        .register("alpha", 4001)
        .unwrap();
    let _beta = Client::connect(daemon.local_addr())
        .unwrap()
        .register("beta", 4002)
        .unwrap();
    let mut client = Client::connect(daemon.local_addr()).unwrap();
    assert_eq!(client.lookup("alpha").unwrap(), 4001);
    assert_eq!(client.lookup("beta").unwrap(), 4002);
    assert_eq!(
        client.names().unwrap(),
        vec![("alpha".to_string(), 4001), ("beta".to_string(), 4002)]
    );
}

#[test]
fn a_duplicate_name_is_refused() {
    let daemon = daemon();
    let _first = Client::connect(daemon.local_addr())
        .unwrap()
        .register("node1", 12345)
        .unwrap();
    let second = Client::connect(daemon.local_addr())
        .unwrap()
        .register("node1", 12345);
    assert_eq!(second.unwrap_err().code(), Some(ErrorCode::NameTaken));
}

#[test]
fn an_unknown_name_is_a_clear_error() {
    let daemon = daemon();
    let error = Client::connect(daemon.local_addr())
        .unwrap()
        .lookup("ghost")
        .unwrap_err();
    assert_eq!(error.code(), Some(ErrorCode::NoSuchNode));
    assert!(error.to_string().contains("no such node"), "{error}");
}

#[test]
fn a_registration_is_released_when_its_connection_closes() {
    let daemon = daemon();
    let registration = Client::connect(daemon.local_addr())
        .unwrap()
        .register("node1", 12345)
        .unwrap();
    let mut client = Client::connect(daemon.local_addr()).unwrap();
    assert_eq!(client.lookup("node1").unwrap(), 12345);
    registration.release();
    assert!(eventually(|| client.lookup("node1").is_err()));
    assert!(client.names().unwrap().is_empty());
    // And the name can be taken again.
    let _again = Client::connect(daemon.local_addr())
        .unwrap()
        .register("node1", 1)
        .unwrap();
}

#[test]
fn a_registration_is_released_after_an_abrupt_reset() {
    let daemon = daemon();
    let mut stream = TcpStream::connect(daemon.local_addr()).unwrap();
    let mut out = Vec::new();
    erlangen_portmap::wire::Request::Register {
        name: "rst".into(),
        port: 7,
    }
    .encode(&mut out);
    stream.write_all(&out).unwrap();
    let mut client = Client::connect(daemon.local_addr()).unwrap();
    assert!(eventually(|| client.lookup("rst").is_ok()));
    // SO_LINGER 0: close sends a TCP RST instead of a FIN.
    socket2::SockRef::from(&stream)
        .set_linger(Some(std::time::Duration::ZERO))
        .unwrap();
    drop(stream);
    assert!(eventually(|| client.lookup("rst").is_err()));
    assert!(eventually(|| daemon.stats().names == 0));
}

#[test]
fn unregister_releases_the_name_on_a_live_connection() {
    use erlangen_portmap::wire::{Reply, Request};
    let daemon = daemon();
    let mut stream = crate::support::raw(daemon.local_addr());
    let mut out = Vec::new();
    Request::Register {
        name: "u".into(),
        port: 9,
    }
    .encode(&mut out);
    Request::Unregister.encode(&mut out);
    stream.write_all(&out).unwrap();
    assert_eq!(crate::support::read_reply(&mut stream), Some(Reply::Ack));
    assert_eq!(crate::support::read_reply(&mut stream), Some(Reply::Ack));
    assert_eq!(daemon.stats().names, 0);
}
