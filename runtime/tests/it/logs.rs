//! What the runtime logs, and the `agent` span that agent code logs in.
//!
//! Log events come from worker threads, so the subscriber is process-wide:
//! one for this binary (`log_buffer`), which every test that reads logs
//! shares (other tests' lines land in it too).

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use erlangen_runtime::SpawnOptions;

/// The process's log lines, as the shared subscriber writes them.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs (once) a subscriber that writes INFO and above, and the
/// `erlangen::agent` spans at DEBUG, to a buffer; returns the buffer.
fn log_buffer() -> &'static Buffer {
    static BUFFER: OnceLock<Buffer> = OnceLock::new();
    BUFFER.get_or_init(|| {
        use tracing_subscriber::filter::Targets;
        use tracing_subscriber::layer::SubscriberExt;
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .finish()
            .with(
                Targets::new()
                    .with_default(tracing::Level::INFO)
                    .with_target("erlangen::agent", tracing::Level::DEBUG),
            );
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        buffer
    })
}

fn log_text() -> String {
    String::from_utf8(log_buffer().0.lock().unwrap().clone()).unwrap()
}

#[test]
fn what_agent_code_logs_is_inside_an_agent_span_naming_the_agent() {
    log_buffer();
    let rt = crate::support::runtime(1);
    let serial = rt
        .run(|ctx| {
            let child = ctx
                .spawn_with(SpawnOptions::new().monitor(), |ctx| {
                    tracing::info!(answer = 42, "logged by an agent");
                    ctx.pid().serial()
                })
                .unwrap();
            ctx.receive();
            child.serial()
        })
        .unwrap();
    let log = log_text();
    let line = log
        .lines()
        .find(|line| line.contains("logged by an agent"))
        .unwrap_or_else(|| panic!("no line: {log}"));
    assert!(
        line.contains(&format!("agent{{agent=<{serial:x}>}}")),
        "{line}"
    );
}

#[test]
fn a_full_mailbox_is_reported_in_a_rate_limited_warning_that_names_the_agent() {
    log_buffer();
    let rt = crate::support::runtime(1);
    let (serial, refused) = rt
        .run(|ctx| {
            let full = ctx
                .spawn_with(
                    erlangen_runtime::SpawnOptions::new().mailbox_len(1),
                    |ctx| {
                        ctx.receive_match(|m| m.downcast_ref::<&str>() == Some(&"never"));
                    },
                )
                .unwrap();
            let refused = (0..1_000u32)
                .filter(|n| ctx.try_send(&full, *n).is_err())
                .count();
            (full.serial(), refused)
        })
        .unwrap();
    assert_eq!(refused, 999);
    let log = log_text();
    let ours: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("full mailbox") && l.contains(&format!("<{serial:x}>")))
        .collect();
    assert!(!ours.is_empty(), "the agent was named: {log}");
    assert!(
        ours.len() < 10,
        "and the warnings were rate-limited: {}",
        ours.len()
    );
}
