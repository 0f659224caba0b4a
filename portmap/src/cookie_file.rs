//! Reading a cookie from a file: the one rule every binary and library of
//! the project follows (the port mapper's and the kernel's `--cookie-file`,
//! and `~/.erlangen-cookie`). Trailing whitespace is trimmed, so that a
//! file written by `echo secret > f` holds the same cookie as
//! `ERLANGEN_COOKIE=secret`; a value from the environment is taken as it is.

use std::io;
use std::path::Path;

/// The cookie in `path`, without its trailing whitespace; an error names the
/// file, and an empty cookie is an error.
///
/// ```
/// let path = std::env::temp_dir().join(format!("cookie-doc-{}", std::process::id()));
/// std::fs::write(&path, "secret\n").unwrap();
/// assert_eq!(erlangen_portmap::cookie_file::read(&path).unwrap(), b"secret");
/// std::fs::write(&path, " \n").unwrap();
/// assert!(erlangen_portmap::cookie_file::read(&path).is_err());
/// std::fs::remove_file(&path).unwrap();
/// ```
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|error| {
        io::Error::new(
            error.kind(),
            format!("cannot read the cookie file {}: {error}", path.display()),
        )
    })?;
    let cookie = trim(bytes);
    if cookie.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the cookie file {} is empty", path.display()),
        ));
    }
    Ok(cookie)
}

/// `cookie` without its trailing ASCII whitespace.
///
/// ```
/// assert_eq!(erlangen_portmap::cookie_file::trim(b"a b \r\n".to_vec()), b"a b");
/// ```
pub fn trim(mut cookie: Vec<u8>) -> Vec<u8> {
    while cookie.last().is_some_and(u8::is_ascii_whitespace) {
        cookie.pop();
    }
    cookie
}
