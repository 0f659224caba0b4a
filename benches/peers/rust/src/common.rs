//! What every peer binary shares: the case's size, output helpers.
#![allow(dead_code)]

use std::time::Duration;

/// 10 with `--quick`, else 1.
pub fn divisor() -> usize {
    if std::env::args().any(|a| a == "--quick") {
        10
    } else {
        1
    }
}

/// The case to run.
pub fn case() -> String {
    std::env::var("ERLANGEN_BENCH_CASE").unwrap_or_default()
}

pub fn per(d: Duration, n: usize) -> String {
    format!("{:.1}", d.as_nanos() as f64 / n as f64)
}

pub fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

pub fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

pub fn dnf(why: &str) -> ! {
    eprintln!("DNF: {why}");
    std::process::exit(3)
}
