//! TLS for connections between our nodes (rustls, with its default
//! provider, aws-lc-rs): the only module that imports rustls.
//!
//! 1. A node built with [`TlsOptions`] loads its CA, its certificate chain
//!    and its key once (`Tls::load`): a client configuration that presents
//!    the node's certificate and checks the peer's against the CA and the
//!    host in the peer's node name, and a server configuration that
//!    requires a client certificate issued by the CA (mutual TLS).
//! 2. Each connection of our protocol gets a `Session` when the loop takes
//!    it in: a dial a client session, an accepted socket a server session.
//!    Nothing is read from or written to that socket except through it.
//! 3. The loop reads: `Session::read` takes ciphertext from the socket,
//!    checks it and hands out plaintext, like a socket's read (0 at the
//!    end, `WouldBlock` when nothing more is there). A record that fails
//!    (a certificate the CA did not sign, a name that does not match,
//!    plaintext where TLS is expected) is an error, and the loop closes
//!    the connection as it closes any that misbehaves.
//! 4. Whoever writes (the loop, or a sender's worker under the outbox's
//!    lock; outbox.rs) first writes the ciphertext the session holds, and
//!    only when that is all out moves at most one record of plaintext in
//!    (`Session::encrypt`). So at most a record waits inside the session;
//!    the rest stays in the outbox's buffer, where backpressure counts it.
//! 5. Our own handshake (hello, HMAC proofs over the transcript) runs
//!    inside, unchanged: the certificates prove the hosts, the cookie
//!    proves the cluster. The Erlang distribution is not covered (Erlang's
//!    own `inet_tls` is a different protocol); nor is the port mapper.
//!
//! Lock order: the outbox's lock, then the session's. The loop's read takes
//! only the session's.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls::crypto::aws_lc_rs::default_provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ClientConnection, Connection, RootCertStore, ServerConfig};
use rustls::{ServerConnection, DEFAULT_VERSIONS};

use crate::config::TLS_RECORD_PLAINTEXT_BYTES;
use crate::error::NetError;

/// Where a node's TLS material is: PEM files of the cluster's CA, of the
/// node's certificate chain (its own first) and of its private key.
///
/// ```
/// let options = erlangen_net::TlsOptions::new("ca.pem", "node.pem", "node.key");
/// assert!(format!("{options:?}").contains("node.key"));
/// ```
#[derive(Clone, Debug)]
pub struct TlsOptions {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl TlsOptions {
    /// The CA file, the certificate chain and the key, all PEM.
    pub fn new(ca: impl AsRef<Path>, cert: impl AsRef<Path>, key: impl AsRef<Path>) -> TlsOptions {
        TlsOptions {
            ca: ca.as_ref().to_owned(),
            cert: cert.as_ref().to_owned(),
            key: key.as_ref().to_owned(),
        }
    }
}

/// Step 1: a node's two configurations.
#[derive(Debug)]
pub(crate) struct Tls {
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
}

impl Tls {
    /// Step 1: reads the files and builds both configurations.
    pub(crate) fn load(options: &TlsOptions) -> Result<Tls, NetError> {
        let fail = |what: &str, path: &Path, error: &dyn std::fmt::Display| {
            NetError::Tls(format!("{what} {}: {error}", path.display()))
        };
        let mut roots = RootCertStore::empty();
        let cas = CertificateDer::pem_file_iter(&options.ca)
            .map_err(|e| fail("the CA file", &options.ca, &e))?;
        for ca in cas {
            let ca = ca.map_err(|e| fail("the CA file", &options.ca, &e))?;
            roots
                .add(ca)
                .map_err(|e| fail("the CA file", &options.ca, &e))?;
        }
        if roots.is_empty() {
            return Err(fail("the CA file", &options.ca, &"no certificate in it"));
        }
        let chain = CertificateDer::pem_file_iter(&options.cert)
            .map_err(|e| fail("the certificate file", &options.cert, &e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| fail("the certificate file", &options.cert, &e))?;
        if chain.is_empty() {
            return Err(fail(
                "the certificate file",
                &options.cert,
                &"no certificate in it",
            ));
        }
        let key = PrivateKeyDer::from_pem_file(&options.key)
            .map_err(|e| fail("the key file", &options.key, &e))?;
        let roots = Arc::new(roots);
        let provider = Arc::new(default_provider());
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| NetError::Tls(format!("the client verifier: {e}")))?;
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(DEFAULT_VERSIONS)
            .map_err(|e| NetError::Tls(e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(|e| fail("the key file", &options.key, &e))?;
        let client = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(DEFAULT_VERSIONS)
            .map_err(|e| NetError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|e| fail("the key file", &options.key, &e))?;
        Ok(Tls {
            client: Arc::new(client),
            server: Arc::new(server),
        })
    }

    /// Step 2: a dial of a node on `host` (a DNS name or an address, as
    /// in the node's name), which its certificate must name.
    pub(crate) fn dial(&self, host: &str) -> Result<Session, String> {
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| format!("TLS: the host {host:?} cannot be checked: {e}"))?;
        let session =
            ClientConnection::new(self.client.clone(), name).map_err(|e| format!("TLS: {e}"))?;
        Ok(Session(Mutex::new(session.into())))
    }

    /// Step 2: an accepted connection.
    pub(crate) fn accept(&self) -> Result<Session, String> {
        let session =
            ServerConnection::new(self.server.clone()).map_err(|e| format!("TLS: {e}"))?;
        Ok(Session(Mutex::new(session.into())))
    }
}

/// One connection's TLS state, shared by the loop (reads) and whoever
/// writes (steps 3 and 4).
#[derive(Debug)]
pub(crate) struct Session(Mutex<Connection>);

impl Session {
    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Step 3: plaintext into `buffer`, like a socket's read.
    pub(crate) fn read<S: Read + Write>(
        &self,
        socket: &mut S,
        buffer: &mut [u8],
    ) -> io::Result<usize> {
        let mut session = self.lock();
        loop {
            match session.reader().read(buffer) {
                Ok(n) => return Ok(n),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                // The socket ended without TLS's closing alert.
                Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(error) => return Err(error),
            }
            if session.read_tls(socket)? == 0 {
                return Ok(0);
            }
            if let Err(error) = session.process_new_packets() {
                // Tell the peer why (an alert) before the loop closes.
                let _ = session.write_tls(socket);
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("TLS: {error}"),
                ));
            }
        }
    }

    /// Step 4: writes the ciphertext the session holds; `true` once all of
    /// it is out, `false` if the socket would block first.
    pub(crate) fn write_held(&self, socket: &mut impl Write) -> io::Result<(bool, usize)> {
        let mut session = self.lock();
        let mut written = 0;
        while session.wants_write() {
            match session.write_tls(socket) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => written += n,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    return Ok((false, written))
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        Ok((true, written))
    }

    /// Step 4: moves at most one record of `plaintext` in; how much it
    /// took (0 while the handshake holds its limit's worth already).
    pub(crate) fn encrypt(&self, plaintext: &[u8]) -> io::Result<usize> {
        let take = plaintext.len().min(TLS_RECORD_PLAINTEXT_BYTES);
        self.lock().writer().write(&plaintext[..take])
    }
}
