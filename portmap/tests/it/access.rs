//! Who may do what: loopback by default, a secret for everyone else.

use std::net::{SocketAddr, TcpStream};

use erlangen_portmap::{Client, DaemonConfig, ErrorCode, LISTEN_DEFAULT, PORT_DEFAULT};
use socket2::{Domain, Socket, Type};

use crate::support::daemon_with;

/// A connection to `server` from the loopback-range address 127.0.0.2, which
/// the daemon does not trust (only 127.0.0.1 and ::1 are "this host").
fn from_second_address(server: SocketAddr) -> TcpStream {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket
        .bind(&"127.0.0.2:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    socket.connect(&server.into()).unwrap();
    socket.into()
}

#[test]
fn the_default_listen_address_is_loopback() {
    assert!(LISTEN_DEFAULT.ip().is_loopback());
    assert_eq!(LISTEN_DEFAULT.port(), PORT_DEFAULT);
    assert_eq!(DaemonConfig::default().listen, LISTEN_DEFAULT);
}

#[test]
fn a_lookup_from_another_address_without_the_secret_is_refused() {
    let daemon = daemon_with(|c| {
        c.listen = "0.0.0.0:0".parse().unwrap();
        c.cookie = Some(b"sesame".to_vec());
    });
    let port = daemon.local_addr().port();
    let server: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let _node = Client::connect(server)
        .unwrap()
        .register("hidden", 9)
        .unwrap();

    let mut stranger = Client::from_stream(from_second_address(server)).unwrap();
    assert_eq!(
        stranger.lookup("hidden").unwrap_err().code(),
        Some(ErrorCode::AuthRequired)
    );
    assert_eq!(
        stranger.names().unwrap_err().code(),
        Some(ErrorCode::AuthRequired)
    );

    let mut wrong = Client::from_stream(from_second_address(server)).unwrap();
    assert_eq!(
        wrong.authenticate(b"guess").unwrap_err().code(),
        Some(ErrorCode::AuthFailed)
    );

    let mut friend = Client::from_stream(from_second_address(server)).unwrap();
    friend.authenticate(b"sesame").unwrap();
    assert_eq!(friend.lookup("hidden").unwrap(), 9);
    assert_eq!(friend.names().unwrap(), vec![("hidden".to_string(), 9)]);
}

#[test]
fn registration_from_another_address_is_refused_even_with_the_secret() {
    let daemon = daemon_with(|c| {
        c.listen = "0.0.0.0:0".parse().unwrap();
        c.cookie = Some(b"sesame".to_vec());
    });
    let server: SocketAddr = format!("127.0.0.1:{}", daemon.local_addr().port())
        .parse()
        .unwrap();
    let mut client = Client::from_stream(from_second_address(server)).unwrap();
    client.authenticate(b"sesame").unwrap();
    let refused = client.register("intruder", 1).unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::NotAllowed));
    assert_eq!(daemon.stats().names, 0);
}

#[test]
fn without_a_secret_other_addresses_get_nothing() {
    let daemon = daemon_with(|c| c.listen = "0.0.0.0:0".parse().unwrap());
    let server: SocketAddr = format!("127.0.0.1:{}", daemon.local_addr().port())
        .parse()
        .unwrap();
    let mut client = Client::from_stream(from_second_address(server)).unwrap();
    assert_eq!(
        client.names().unwrap_err().code(),
        Some(ErrorCode::AuthRequired)
    );
    let mut client = Client::from_stream(from_second_address(server)).unwrap();
    assert_eq!(
        client.authenticate(b"anything").unwrap_err().code(),
        Some(ErrorCode::AuthFailed)
    );
}
