//! Panics inside agents, and the build settings that keep them survivable.

use erlangen_runtime::{ExitReason, ExitStatus, SpawnOptions};

use crate::support::{recv_down, runtime};

#[test]
fn panic_becomes_the_exit_reason_and_the_worker_survives() {
    let rt = runtime(1);
    let (status, after) = rt
        .run(|ctx| {
            ctx.spawn_with(SpawnOptions::new().monitor(), |_| -> () {
                panic!("agent {} failed", 7)
            })
            .unwrap();
            let status = recv_down(ctx).status;
            // The one worker still runs agents.
            ctx.spawn_with(SpawnOptions::new().monitor(), |_| 5u8)
                .unwrap();
            (status, recv_down(ctx).status)
        })
        .unwrap();
    assert!(
        matches!(status, ExitStatus::Exit(ExitReason::Panic(ref m)) if &**m == "agent 7 failed")
    );
    assert_eq!(after.value().unwrap().downcast_ref::<u8>(), Some(&5));
}

#[test]
fn panicking_root_agent_returns_the_panic_as_its_reason() {
    let rt = runtime(1);
    let result = rt.run(|_| -> u8 { panic!("root down") });
    assert!(matches!(result, Err(ExitReason::Panic(ref m)) if &**m == "root down"));
    // The runtime still works afterwards.
    assert_eq!(rt.run(|_| 1u8).unwrap(), 1);
}

#[test]
fn a_thousand_panicking_agents_leave_the_runtime_healthy() {
    let rt = runtime(2);
    let n = rt
        .run(|ctx| {
            for i in 0..1000u32 {
                ctx.spawn_with(SpawnOptions::new().monitor(), move |_| -> () {
                    panic!("{i}")
                })
                .unwrap();
            }
            (0..1000).filter(|_| !recv_down(ctx).status.is_ok()).count()
        })
        .unwrap();
    assert_eq!(n, 1000);
    assert_eq!(rt.agent_count(), 0);
}

#[test]
fn every_profile_keeps_panic_unwind() {
    // With panic = "abort", killing a suspended agent (which unwinds its
    // stack) aborts the whole node (pitfalls.md §3.5).
    let manifest = include_str!("../../../Cargo.toml");
    for profile in ["[profile.dev]", "[profile.release]"] {
        let start = manifest
            .find(profile)
            .unwrap_or_else(|| panic!("{profile} is missing"));
        let section = &manifest[start..];
        let end = section[1..].find("\n[").map_or(section.len(), |i| i + 1);
        assert!(
            section[..end].contains("panic = \"unwind\""),
            "{profile} must say panic = \"unwind\""
        );
    }
    assert!(!manifest.contains("panic = \"abort\""));
    const {
        assert!(
            cfg!(panic = "unwind"),
            "this test binary was built with panic = abort"
        )
    };
}

/// Set in the child process whose agent panics on purpose.
const PANIC_CHILD: &str = "ERLANGEN_TEST_PANIC_CHILD";

#[test]
fn a_panic_report_names_the_agent_and_its_registered_name() {
    if std::env::var_os(PANIC_CHILD).is_some() {
        let rt = runtime(1);
        let _ = rt.run(|ctx| {
            ctx.register("doomed").unwrap();
            panic!("on purpose")
        });
        return;
    }
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "panics::a_panic_report_names_the_agent_and_its_registered_name",
            "--nocapture",
        ])
        .env(PANIC_CHILD, "1")
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("erlangen: agent <") && stderr.contains("(doomed) panicked at"),
        "{stderr}"
    );
    assert!(stderr.contains("on purpose"), "{stderr}");
    assert!(!stderr.contains("thread 'erlangen-worker"), "{stderr}");
}
