//! The README's main job: the demo runs with nothing else running, shows
//! agents and nodes at work, and leaves no process behind.

use std::process::Command;

use crate::support::example;

#[test]
fn the_demo_shows_agents_and_nodes_and_leaves_no_process_behind() {
    let output = Command::new(example("demo"))
        // Port 0: its own embedded port mapper on an ephemeral port.
        .env("ERLANGEN_PORT_MAPPER", "127.0.0.1:0")
        .output()
        .expect("the demo runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        "1. monitored",
        "crashed: exit panic: the answer is not 41",
        "5. 111,111 agents summed their leaves to 4999950000",
        "6. port mapper at 127.0.0.1:",
        "9. parallel map of inc on",
        "ok [3, 5, 7, 9, 11, 13, 15]",
        "exit panic: a crash on the other node",
        "said \"hello, demo, from the other node\"",
        "6 of 6 links and monitors fired noconnection",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    let kernel_pid: i32 = stdout
        .lines()
        .find_map(|line| line.strip_prefix("13. the kernel process "))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|pid| pid.parse().ok())
        .expect("the demo names its kernel's process");
    // SAFETY: kill(pid, 0) sends nothing; it only checks existence.
    let exists = unsafe { libc::kill(kernel_pid, 0) } == 0;
    assert!(!exists, "the kernel process {kernel_pid} is gone");
}
