//! Finding the workspace's binaries and running them as child processes.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A hang guard, never a performance threshold.
pub(crate) const HANG_GUARD: Duration = Duration::from_secs(60);

/// The directory of this build's binaries (`target/<profile>`).
fn build_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("tests live in target/<profile>/deps")
        .to_path_buf()
}

/// A binary of the workspace (built by `cargo test --workspace`).
pub(crate) fn binary(name: &str) -> PathBuf {
    let path = build_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: run the README's test command (cargo test --workspace --release)",
        path.display()
    );
    path
}

/// An example of the facade crate (cargo test builds them).
pub(crate) fn example(name: &str) -> PathBuf {
    binary(&format!("examples/{name}"))
}

/// A child process whose stdout lines arrive on a channel.
pub(crate) struct Running {
    pub(crate) child: Child,
    pub(crate) lines: mpsc::Receiver<String>,
}

impl Running {
    /// Starts `command` with piped stdout.
    pub(crate) fn start(mut command: Command) -> Running {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the program starts");
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Running { child, lines }
    }

    /// The first line that contains `needle`.
    pub(crate) fn wait_for(&self, needle: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(HANG_GUARD)
                .unwrap_or_else(|_| panic!("no line with {needle:?} before the hang guard"));
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// Sends SIGTERM and waits: true if it exited with status 0.
    pub(crate) fn terminate(mut self) -> bool {
        // SAFETY: kill(2) on our own child, not yet reaped.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let status = self.child.wait().expect("the child is reaped");
        status.success()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
