//! The daemon binary.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use erlangen_portmap::Client;

const BIN: &str = env!("CARGO_BIN_EXE_erlangen-port-mapper");

#[test]
fn help_describes_the_daemon_and_its_loopback_default() {
    let output = Command::new(BIN).arg("--help").output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("--listen"), "{text}");
    assert!(text.contains("127.0.0.1:10001"), "{text}");
    assert!(text.contains("--cookie-file"), "{text}");
}

#[test]
fn sigterm_stops_the_daemon_cleanly() {
    // Find a free port, then give it to the daemon.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new(BIN)
        .args(["--listen", &addr])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + crate::support::HANG_GUARD;
    let mut up = false;
    while Instant::now() < deadline {
        if let Ok(mut client) = Client::connect(addr.parse().unwrap()) {
            up = client.names().is_ok();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(up, "the daemon answers");
    // SAFETY: kill(2) on our own child's pid.
    let rc = unsafe { libc_kill(child.id() as i32, 15) };
    assert_eq!(rc, 0);
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status}");
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, signal: i32) -> i32;
}

#[test]
fn a_bad_flag_is_one_clear_line_and_a_non_zero_exit() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_erlangen-port-mapper"))
        .arg("--bogus")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("--bogus"), "{stderr}");
}
