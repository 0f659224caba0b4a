//! `LogLimit`: at most one warning per kind per interval, with a count of
//! those it held back, so that a flood cannot fill the log.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Interval between two warnings of one kind.
pub const LOG_INTERVAL: Duration = Duration::from_secs(1);

/// Per kind: when it was last let through, and how many were held back.
#[derive(Debug, Default)]
pub struct LogLimit {
    kinds: HashMap<&'static str, (Instant, u64)>,
}

impl LogLimit {
    /// Whether a warning of `kind` may be written now; if so, how many of
    /// that kind were held back since the last one.
    ///
    /// ```
    /// let mut log = erlangen_portmap::log_limit::LogLimit::default();
    /// assert_eq!(log.allow("busy"), Some(0));
    /// assert_eq!(log.allow("busy"), None);
    /// assert_eq!(log.allow("other"), Some(0));
    /// ```
    pub fn allow(&mut self, kind: &'static str) -> Option<u64> {
        let now = Instant::now();
        match self.kinds.get_mut(kind) {
            Some((last, held)) if now.duration_since(*last) < LOG_INTERVAL => {
                *held += 1;
                None
            }
            Some((last, held)) => {
                *last = now;
                Some(std::mem::take(held))
            }
            None => {
                self.kinds.insert(kind, (now, 0));
                Some(0)
            }
        }
    }
}
