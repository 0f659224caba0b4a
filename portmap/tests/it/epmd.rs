//! The epmd protocol on our port mapper (`DaemonConfig::epmd`): what an
//! Erlang node asks of its epmd, and bad input on that listener.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use erlangen_portmap::epmd::{self, EpmdError};
use erlangen_portmap::{Daemon, DaemonConfig};

fn daemon() -> Daemon {
    Daemon::start(DaemonConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        epmd: Some("127.0.0.1:0".parse().unwrap()),
        ..DaemonConfig::default()
    })
    .expect("a port mapper with epmd")
}

/// Sends `request` on a fresh connection and reads until epmd closes it.
fn ask(daemon: &Daemon, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(daemon.epmd_addr().unwrap()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    answer
}

/// Registers `alive` at `port`: the connection that holds it, and the
/// creation.
fn register(daemon: &Daemon, alive: &str, port: u16) -> (TcpStream, Result<u32, EpmdError>) {
    let mut stream = TcpStream::connect(daemon.epmd_addr().unwrap()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
        .write_all(&epmd::alive2_request(alive, port))
        .unwrap();
    let mut answer = [0u8; 6];
    stream.read_exact(&mut answer).unwrap();
    (stream, epmd::alive2_response(&answer))
}

#[test]
fn an_erlang_name_registers_is_found_listed_and_goes_with_its_connection() {
    let daemon = daemon();
    let (held, creation) = register(&daemon, "e1", 4370);
    assert!(creation.is_ok());
    let (_, taken) = register(&daemon, "e1", 4371);
    assert_eq!(taken, Err(EpmdError::Refused(1)));
    assert_eq!(
        epmd::port_response(&ask(&daemon, &epmd::port_request("e1"))),
        Ok(4370)
    );
    let names = ask(&daemon, &[0, 1, 110]);
    assert!(String::from_utf8_lossy(&names[4..]).contains("name e1 at port 4370"));
    drop(held);
    let mut gone = false;
    for _ in 0..300 {
        if epmd::port_response(&ask(&daemon, &epmd::port_request("e1"))).is_err() {
            gone = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(gone, "the name went with its connection");
}

#[test]
fn bad_input_on_the_epmd_listener_closes_only_that_connection() {
    let daemon = daemon();
    let (_held, creation) = register(&daemon, "keeper", 4000);
    assert!(creation.is_ok());
    for bad in [
        &[0xff, 0xff, 120][..],
        &[0, 0],
        &[0, 3, 120, 1, 2],
        b"GET / HTTP/1.0\r\n\r\n",
    ] {
        let answer = ask(&daemon, bad);
        assert!(answer.len() <= 6, "{bad:?} got {answer:?}");
    }
    // Requests it does not serve (KILL_REQ) are closed without effect.
    assert!(ask(&daemon, &[0, 1, 107]).is_empty());
    assert_eq!(
        epmd::port_response(&ask(&daemon, &epmd::port_request("keeper"))),
        Ok(4000)
    );
}
