//! The cookie: the shared secret every node of a cluster (and a port
//! mapper that serves remote lookups) knows. Like Erlang's
//! `~/.erlang.cookie`: `ERLANGEN_COOKIE` if set, else the file
//! `~/.erlangen-cookie`, made with 32 random bytes (hex, mode 0600) the
//! first time a node needs it. Files are read by one rule
//! (`erlangen_portmap::cookie_file`: trailing whitespace trimmed).

use std::io::{self, Write};
use std::path::PathBuf;

/// The cookie file in the home directory.
///
/// ```
/// if let Some(path) = erlangen_net::cookie_path() {
///     assert!(path.ends_with(".erlangen-cookie"));
/// }
/// ```
pub fn cookie_path() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".erlangen-cookie"))
}

/// `ERLANGEN_COOKIE`, else the cookie file (made if missing).
///
/// ```
/// std::env::set_var("ERLANGEN_COOKIE", "from the environment");
/// assert_eq!(erlangen_net::default_cookie().unwrap(), b"from the environment");
/// ```
pub fn default_cookie() -> io::Result<Vec<u8>> {
    if let Ok(cookie) = std::env::var("ERLANGEN_COOKIE") {
        return Ok(cookie.into_bytes());
    }
    let path = cookie_path().ok_or_else(|| {
        io::Error::other("no cookie: set ERLANGEN_COOKIE or HOME (for ~/.erlangen-cookie)")
    })?;
    match erlangen_portmap::cookie_file::read(&path) {
        Ok(cookie) => Ok(cookie),
        Err(error) if error.kind() == io::ErrorKind::NotFound => make(&path),
        Err(error) => Err(error),
    }
}

fn make(path: &std::path::Path) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| io::Error::other(e.to_string()))?;
    let text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut file) => {
            file.write_all(text.as_bytes())?;
            Ok(text.into_bytes())
        }
        // Another process made it first: use theirs.
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
            erlangen_portmap::cookie_file::read(path)
        }
        Err(error) => Err(io::Error::other(format!(
            "cannot make {}: {error}",
            path.display()
        ))),
    }
}
