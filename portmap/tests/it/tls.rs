//! A port mapper with TLS (`DaemonConfig::tls`): clients of other hosts
//! (here: connections from 127.0.0.2, which the daemon does not count as
//! its own host) look names up over TLS with a certificate from the
//! cluster's CA and the cookie's proof; plain ones and strangers' are
//! refused; this host's own clients stay plain.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};

use erlangen_portmap::tls::{Tls, TlsOptions};
use erlangen_portmap::{Client, ErrorCode};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use socket2::{Domain, Socket, Type};

use crate::support::daemon_with;

/// A directory of certificates, removed when dropped.
struct Certificates(PathBuf);

impl Drop for Certificates {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A CA (`NAME.pem`) and, for each of `holders`, a certificate for
/// `localhost` and 127.0.0.1 it issued (`HOLDER.pem`, `HOLDER.key`).
fn authority(dir: &Path, name: &str, holders: &[&str]) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    std::fs::write(dir.join(format!("{name}.pem")), ca.pem()).unwrap();
    for holder in holders {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        std::fs::write(dir.join(format!("{holder}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{holder}.key")), key.serialize_pem()).unwrap();
    }
}

fn options(dir: &Path, ca: &str, holder: &str) -> TlsOptions {
    TlsOptions::new(
        dir.join(format!("{ca}.pem")),
        dir.join(format!("{holder}.pem")),
        dir.join(format!("{holder}.key")),
    )
}

/// A connection to `server` from 127.0.0.2: another host, to the daemon.
fn from_another_host(server: SocketAddr) -> TcpStream {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket
        .bind(&"127.0.0.2:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    socket.connect(&server.into()).unwrap();
    socket.into()
}

#[test]
fn another_hosts_lookups_go_over_tls_with_a_certificate_from_the_ca() {
    let dir = std::env::temp_dir().join(format!("erlangen-portmap-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _certificates = Certificates(dir.clone());
    authority(&dir, "ca", &["daemon", "client"]);
    authority(&dir, "other-ca", &["stranger"]);
    let daemon = daemon_with(|c| {
        c.listen = "0.0.0.0:0".parse().unwrap();
        c.cookie = Some(b"sesame".to_vec());
        c.tls = Some(options(&dir, "ca", "daemon"));
    });
    let server: SocketAddr = format!("127.0.0.1:{}", daemon.local_addr().port())
        .parse()
        .unwrap();
    // This host's node registers in plain TCP, as ever.
    let _node = Client::connect(server)
        .unwrap()
        .register("hidden", 9)
        .unwrap();

    let tls = Tls::load(&options(&dir, "ca", "client")).unwrap();
    let mut friend = Client::from_stream_tls(from_another_host(server), &tls, "localhost").unwrap();
    assert_eq!(
        friend.lookup("hidden").unwrap_err().code(),
        Some(ErrorCode::AuthRequired),
        "TLS does not replace the cookie"
    );
    friend.authenticate(b"sesame").unwrap();
    assert_eq!(friend.lookup("hidden").unwrap(), 9);
    assert_eq!(friend.names().unwrap(), vec![("hidden".to_string(), 9)]);

    // Plain TCP from another host: the daemon's TLS refuses the greeting's
    // place, and nothing is answered.
    assert!(Client::from_stream(from_another_host(server)).is_err());
    // A certificate another CA issued is refused in TLS's handshake; so is
    // a daemon whose certificate does not name the host asked for.
    let stranger = Tls::load(&options(&dir, "ca", "stranger")).unwrap();
    assert!(Client::from_stream_tls(from_another_host(server), &stranger, "localhost").is_err());
    assert!(Client::from_stream_tls(from_another_host(server), &tls, "example.org").is_err());
    // And the daemon still serves its friend after all that.
    let mut again = Client::from_stream_tls(from_another_host(server), &tls, "localhost").unwrap();
    again.authenticate(b"sesame").unwrap();
    assert_eq!(again.lookup("hidden").unwrap(), 9);
}

#[test]
fn a_port_mapper_with_unreadable_tls_files_does_not_start() {
    let started = erlangen_portmap::Daemon::start(erlangen_portmap::DaemonConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: Some(TlsOptions::new("/nonexistent/ca.pem", "a.pem", "a.key")),
        ..erlangen_portmap::DaemonConfig::default()
    });
    let error = started.unwrap_err();
    assert!(error.to_string().contains("/nonexistent/ca.pem"), "{error}");
}
