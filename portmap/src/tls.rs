//! TLS for connections between our nodes and for lookups at another host's
//! port mapper (rustls, with its default provider, aws-lc-rs): the only
//! module of the workspace that imports rustls (the net crate uses it from
//! here).
//!
//! 1. A node or port mapper given [`TlsOptions`] loads its CA, its
//!    certificate chain and its key once ([`Tls::load`]): a client
//!    configuration that presents the certificate and checks the peer's
//!    against the CA and the host dialled, and a server configuration that
//!    requires a client certificate issued by the CA (mutual TLS).
//! 2. Each connection gets a [`Session`] when it is taken in: a dial a
//!    client session, an accepted socket a server session. Nothing is read
//!    from or written to that socket except through it.
//! 3. The loop reads: `Session::read` takes ciphertext from the socket,
//!    checks it and hands out plaintext, like a socket's read (0 at the
//!    end, `WouldBlock` when nothing more is there). A record that fails
//!    (a certificate the CA did not sign, a name that does not match,
//!    plaintext where TLS is expected) is an error, and the loop closes
//!    the connection as it closes any that misbehaves.
//! 4. Whoever writes (a node's loop, or a sender's worker under the
//!    outbox's lock; the port mapper's loop) calls [`Session::write`] like a
//!    socket's write: it first writes the ciphertext the session holds, and
//!    only when that is all out takes at most one record of plaintext in.
//!    So at most a record waits inside the session; the rest stays in the
//!    writer's buffer, where backpressure counts it. A writer whose buffer
//!    is empty still calls [`Session::write_held`] on a writable edge.
//! 5. The protocols run inside unchanged (the nodes' hello and HMAC
//!    proofs, the port mapper's AUTH): the certificates prove the hosts,
//!    the cookie proves the cluster. The Erlang distribution and the epmd
//!    listener are not covered (Erlang's own `inet_tls` is a different
//!    protocol).
//!
//! Lock order in a node: the outbox's lock, then the session's. The loop's
//! read takes only the session's.

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

/// Where a node's TLS material is: PEM files of the cluster's CA, of the
/// node's certificate chain (its own first) and of its private key.
///
/// ```
/// let options = erlangen_portmap::tls::TlsOptions::new("ca.pem", "node.pem", "node.key");
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

    /// The CA file.
    pub fn ca(&self) -> &Path {
        &self.ca
    }

    /// The certificate chain's file.
    pub fn cert(&self) -> &Path {
        &self.cert
    }

    /// The key's file.
    pub fn key(&self) -> &Path {
        &self.key
    }
}

/// Step 1: the two configurations of a node or a port mapper.
#[derive(Debug)]
pub struct Tls {
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
}

impl Tls {
    /// Step 1: reads the files and builds both configurations; the error
    /// names the file and what is wrong with it.
    ///
    /// ```
    /// use erlangen_portmap::tls::{Tls, TlsOptions};
    /// let missing = Tls::load(&TlsOptions::new("/nonexistent/ca.pem", "n.pem", "n.key"));
    /// assert!(missing.unwrap_err().contains("/nonexistent/ca.pem"));
    /// ```
    pub fn load(options: &TlsOptions) -> Result<Tls, String> {
        let fail = |what: &str, path: &Path, error: &dyn std::fmt::Display| {
            format!("{what} {}: {error}", path.display())
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
            .map_err(|e| format!("the client verifier: {e}"))?;
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(DEFAULT_VERSIONS)
            .map_err(|e| e.to_string())?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(|e| fail("the key file", &options.key, &e))?;
        let client = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(DEFAULT_VERSIONS)
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|e| fail("the key file", &options.key, &e))?;
        Ok(Tls {
            client: Arc::new(client),
            server: Arc::new(server),
        })
    }

    /// Step 2: a dial of `host` (a DNS name or an address, as in a node's
    /// name), which its certificate must name.
    pub fn dial(&self, host: &str) -> Result<Session, String> {
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| format!("TLS: the host {host:?} cannot be checked: {e}"))?;
        let session =
            ClientConnection::new(self.client.clone(), name).map_err(|e| format!("TLS: {e}"))?;
        Ok(Session(Mutex::new(session.into())))
    }

    /// Step 2: an accepted connection.
    pub fn accept(&self) -> Result<Session, String> {
        let session =
            ServerConnection::new(self.server.clone()).map_err(|e| format!("TLS: {e}"))?;
        Ok(Session(Mutex::new(session.into())))
    }
}

/// One connection's TLS state, shared by its reader and whoever writes
/// (steps 3 and 4).
#[derive(Debug)]
pub struct Session(Mutex<Connection>);

impl Session {
    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Step 3: plaintext into `buffer`, like a socket's read.
    pub fn read<S: Read + Write>(&self, socket: &mut S, buffer: &mut [u8]) -> io::Result<usize> {
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

    /// Step 4: writes the ciphertext the session holds: whether all of it
    /// is out (else the socket would block), and the bytes written.
    pub fn write_held(&self, socket: &mut impl Write) -> io::Result<(bool, usize)> {
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

    /// Step 4, like a socket's write: the plaintext bytes taken from
    /// `plaintext` (at most a record's), once what the session held is out
    /// (`WouldBlock` if it is not, or if the handshake holds all it will
    /// take already).
    pub fn write(&self, socket: &mut impl Write, plaintext: &[u8]) -> io::Result<usize> {
        if !self.write_held(socket)?.0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let take = plaintext.len().min(TLS_RECORD_PLAINTEXT_BYTES);
        let taken = self.lock().writer().write(&plaintext[..take])?;
        if taken == 0 && take > 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        // Out as far as the socket takes it; a remainder waits in the
        // session for the next write or writable edge.
        self.write_held(socket)?;
        Ok(taken)
    }

    /// Completes the handshake on a blocking `socket` (a blocking client;
    /// the event loops let it run with their reads and writes).
    pub fn handshake<S: Read + Write>(&self, socket: &mut S) -> io::Result<()> {
        let mut session = self.lock();
        while session.is_handshaking() {
            session
                .complete_io(socket)
                .map_err(|error| io::Error::new(error.kind(), format!("TLS handshake: {error}")))?;
        }
        Ok(())
    }
}

/// A session over a blocking socket, as one stream (the blocking port
/// mapper client).
#[derive(Debug)]
pub struct Blocking<'a, S> {
    /// The session.
    pub session: &'a Session,
    /// The socket under it.
    pub socket: &'a mut S,
}

impl<S: Read + Write> Read for Blocking<'_, S> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        self.session.read(self.socket, buffer)
    }
}

impl<S: Read + Write> Write for Blocking<'_, S> {
    fn write(&mut self, plaintext: &[u8]) -> io::Result<usize> {
        self.session.write(self.socket, plaintext)
    }

    fn flush(&mut self) -> io::Result<()> {
        // A blocking socket "would block" only when its write timeout ran
        // out.
        if !self.session.write_held(self.socket)?.0 {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.socket.flush()
    }
}
