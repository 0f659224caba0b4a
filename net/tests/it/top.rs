//! `erlangen-top` as a person uses it: driven in tmux (send-keys,
//! capture-pane) against a node running a load with a known hot agent.
//! The captured panes of each view are written to
//! `$CARGO_TARGET_TMPDIR/erlangen-top/` (the README shows them).

use std::process::Command;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use erlangen_net::Node;
use erlangen_runtime::{
    Down, ExitReason, ExitStatus, Runtime, SpanKind, SpanRecord, SpanSink, SpawnOptions,
};

use crate::support::{name_of, port_mapper, types, unique, COOKIE, HANG_GUARD};

/// One tmux server of its own (`-L`), with one session running a command.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(command: &str) -> Tmux {
        let socket = unique("erlangen-top-test");
        let status = Command::new("tmux")
            .args(["-L", &socket, "new-session", "-d", "-s", "top"])
            .args(["-x", "110", "-y", "34", command])
            .status()
            .expect("tmux runs (.ci/run installs it)");
        assert!(status.success());
        Tmux { socket }
    }

    fn tmux(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .unwrap()
    }

    /// Types `key` (a tmux key name: `Enter`, `Escape`, `x`).
    fn key(&self, key: &str) {
        assert!(self.tmux(&["send-keys", "-t", "top", key]).status.success());
    }

    fn capture(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", "top"]).stdout)
            .into_owned()
    }

    /// The pane, once `ready` holds for it.
    fn wait_for(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            let pane = self.capture();
            if ready(&pane) {
                return pane;
            }
            assert!(
                started.elapsed() < HANG_GUARD,
                "waiting for {what}:\n{pane}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn has_session(&self) -> bool {
        self.tmux(&["has-session", "-t", "top"]).status.success()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

/// Keeps the captured pane of one view for the README.
fn keep(view: &str, pane: &str) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("erlangen-top");
    std::fs::create_dir_all(&dir).unwrap();
    let text: Vec<&str> = pane.lines().map(str::trim_end).collect();
    std::fs::write(dir.join(format!("{view}.txt")), text.join("\n").trim_end()).unwrap();
}

/// Spans the observed node records.
#[derive(Default)]
struct KeptSpans(Mutex<Vec<SpanRecord>>);

impl SpanSink for KeptSpans {
    fn record(&self, span: SpanRecord) {
        self.0.lock().unwrap().push(span);
    }
}

/// The first row of the agent table (the line after its header).
fn first_row(pane: &str) -> &str {
    let mut lines = pane.lines().skip_while(|line| !line.starts_with("PID"));
    lines.next();
    lines.next().unwrap_or_default()
}

#[test]
fn erlangen_top_shows_the_hot_agent_first_with_its_links_kills_it_and_traces_another_when_confirmed(
) {
    let mapper = port_mapper();
    let spans = Arc::new(KeptSpans::default());
    let rt = Runtime::builder()
        .workers(2)
        .span_sink(spans.clone())
        .build()
        .unwrap();
    let node = Node::builder(&unique("top-target"))
        .cookie(COOKIE)
        .port_mapper(mapper.local_addr())
        .types(types())
        .start(&rt)
        .unwrap();
    // The load: twenty agents with a few messages each, and one that ticks.
    let sleep = |ctx: &mut erlangen_runtime::Ctx| ctx.sleep(Duration::from_secs(3600));
    let quiet: Vec<_> = (0..20u64)
        .map(|i| {
            let pid = rt.spawn(sleep);
            for n in 0..i % 7 {
                rt.send(&pid, n);
            }
            pid
        })
        .collect();
    let sink = rt.spawn(|ctx| loop {
        ctx.receive();
    });
    // An agent to trace: it answers what it takes to `echo-reply`.
    let echo = rt.spawn(|ctx| loop {
        let n = ctx.receive().downcast::<u64>().unwrap();
        if let Some(to) = ctx.whereis("echo-reply") {
            ctx.send(&to, n);
        }
    });
    rt.register("echo", &echo).unwrap();
    rt.spawn(move |ctx| loop {
        ctx.send(&sink, 1u64);
        ctx.sleep(Duration::from_millis(5));
    });
    // The hot agent: 300 messages it never takes, a linked partner, and a
    // watcher that reports its Down.
    let hot = rt
        .spawn_with(SpawnOptions::new().mailbox_len(1000), sleep)
        .unwrap();
    rt.register("hot-agent", &hot).unwrap();
    for n in 0..300u64 {
        rt.send(&hot, n);
    }
    let (downs, down) = mpsc::channel();
    let (partner, watcher) = rt
        .run({
            let hot = hot.clone();
            move |ctx| {
                let me = ctx.pid();
                let partner = ctx.spawn({
                    let (hot, me) = (hot.clone(), me.clone());
                    move |ctx| {
                        ctx.link(&hot).unwrap();
                        ctx.send(&me, ());
                        ctx.receive();
                    }
                });
                ctx.receive();
                let watcher = ctx.spawn(move |ctx| {
                    ctx.monitor(&hot).unwrap();
                    ctx.send(&me, ());
                    let down = ctx.receive().downcast::<Down>().unwrap();
                    downs.send(down.status).unwrap();
                });
                ctx.receive();
                (partner, watcher)
            }
        })
        .unwrap();
    let cookie = std::env::temp_dir().join(unique("top-cookie"));
    std::fs::write(&cookie, COOKIE).unwrap();
    let command = format!(
        "{} --cookie-file {} --port-mapper {} --interval-ms 200 {}",
        env!("CARGO_BIN_EXE_erlangen-top"),
        cookie.display(),
        mapper.local_addr(),
        name_of(&node)
    );
    let tmux = Tmux::start(&command);

    // The table, by mailbox length: the hot agent leads.
    let pane = tmux.wait_for("the hot agent on top", |pane| {
        first_row(pane).contains("hot-agent")
    });
    let row = first_row(&pane);
    assert!(row.starts_with(&hot.to_string()), "{row}");
    assert!(row.split_whitespace().any(|cell| cell == "300"), "{row}");
    assert!(pane.contains("agents by mailbox"), "{pane}");
    keep("agents", &pane);

    // Help lists every key.
    tmux.key("?");
    let pane = tmux.wait_for("the help", |pane| pane.contains(" keys "));
    for key in [
        "q, Ctrl-C",
        "this help",
        "Up, Down, k, j",
        "PgDn, PgUp",
        "sort by the next figure",
        "filter by name or pid",
        "Enter",
        "detail of the selected agent",
        "nodes: the observed node's connections",
        "kill the selected agent",
        "confirm or cancel a kill or a trace",
        "trace the selected agent's next message",
        "refresh now",
        "Esc",
    ] {
        assert!(pane.contains(key), "{key} missing from the help:\n{pane}");
    }
    keep("help", &pane);
    tmux.key("r");
    tmux.wait_for("the table again", |pane| pane.contains("agents by mailbox"));

    // The detail pane of the selected (hot) agent: links and monitors.
    tmux.key("Enter");
    let pane = tmux.wait_for("the detail", |pane| {
        pane.contains("links:") && pane.contains(&partner.to_string())
    });
    let line = |start: &str| {
        pane.lines()
            .find(|line| line.starts_with(start))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(line("links:").contains(&partner.to_string()), "{pane}");
    assert!(
        line("monitored by:").contains(&watcher.to_string()),
        "{pane}"
    );
    assert!(pane.contains("mailbox length over time (now 300"), "{pane}");
    keep("detail", &pane);

    // The nodes pane: erlangen-top's own node is connected.
    tmux.key("Escape");
    tmux.wait_for("the table again", |pane| pane.contains("agents by mailbox"));
    tmux.key("n");
    let pane = tmux.wait_for("the nodes", |pane| {
        pane.lines()
            .any(|line| line.contains("/top-") && line.contains(" up "))
    });
    keep("nodes", &pane);
    tmux.key("Escape");
    tmux.wait_for("the table again", |pane| {
        first_row(pane).contains("hot-agent")
    });

    // Kill, confirmed: the watcher's monitor fires with `kill`.
    tmux.key("x");
    let pane = tmux.wait_for("the confirmation", |pane| {
        pane.contains(&format!("kill {hot}? y to confirm"))
    });
    keep("kill", &pane);
    assert!(down.try_recv().is_err(), "killed before the confirmation");
    tmux.key("y");
    let status = down.recv_timeout(HANG_GUARD).expect("the watcher's Down");
    assert!(
        matches!(status, ExitStatus::Exit(ExitReason::Kill)),
        "{status:?}"
    );
    tmux.wait_for("the status line", |pane| {
        pane.contains(&format!("killed {hot}"))
    });

    // Trace, confirmed: found by a filter, the echo agent's next message
    // starts a trace that the node records.
    tmux.key("/");
    for c in ["e", "c", "h", "o"] {
        tmux.key(c);
    }
    tmux.key("Enter");
    tmux.wait_for("the filtered table", |pane| {
        pane.contains("filter \"echo\"") && first_row(pane).contains("echo")
    });
    tmux.key("t");
    let pane = tmux.wait_for("the trace confirmation", |pane| {
        pane.contains(&format!("trace {echo}'s next message? y to confirm"))
    });
    keep("trace", &pane);
    tmux.key("y");
    tmux.wait_for("the trace's status", |pane| {
        pane.contains(&format!("tracing {echo}'s next message"))
    });
    assert!(spans.0.lock().unwrap().is_empty());
    let (answers, answer) = mpsc::channel();
    let replier = rt.spawn(move |ctx| {
        let n = ctx.receive().downcast::<u64>().unwrap();
        answers.send((n, ctx.trace())).unwrap();
    });
    rt.register("echo-reply", &replier).unwrap();
    rt.send(&echo, 7u64);
    let (n, context) = answer.recv_timeout(HANG_GUARD).expect("the echo's answer");
    assert_eq!(n, 7);
    let root = spans
        .0
        .lock()
        .unwrap()
        .iter()
        .find(|span| span.agent == echo.serial() && span.kind == SpanKind::Send)
        .cloned()
        .expect("the echo's traced send");
    // The answer came in the trace the operator started.
    assert_eq!(context.map(|c| c.trace_id), Some(root.trace_id));

    tmux.key("q");
    let started = Instant::now();
    while tmux.has_session() {
        assert!(started.elapsed() < HANG_GUARD, "erlangen-top did not quit");
        std::thread::sleep(Duration::from_millis(50));
    }
    for pid in &quiet {
        rt.kill(pid, ExitReason::Kill);
    }
    let _ = std::fs::remove_file(cookie);
}

#[test]
fn erlangen_top_once_json_prints_a_snapshot_with_an_agents_array() {
    let mapper = port_mapper();
    let rt = Runtime::builder().workers(1).build().unwrap();
    let node = Node::builder(&unique("top-once"))
        .cookie(COOKIE)
        .port_mapper(mapper.local_addr())
        .start(&rt)
        .unwrap();
    let busy = rt
        .spawn_with(SpawnOptions::new().mailbox_len(100), |ctx| {
            ctx.sleep(Duration::from_secs(3600))
        })
        .unwrap();
    rt.register("busy", &busy).unwrap();
    for n in 0..42u64 {
        rt.send(&busy, n);
    }
    let cookie = std::env::temp_dir().join(unique("top-cookie"));
    std::fs::write(&cookie, COOKIE).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_erlangen-top"))
        .args(["--once", "--json", "--limit", "5"])
        .arg("--cookie-file")
        .arg(&cookie)
        .args(["--port-mapper", &mapper.local_addr().to_string()])
        .arg(name_of(&node).to_string())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let snapshot: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let agents = snapshot["agents"].as_array().expect("an agents array");
    assert!(agents.len() <= 5);
    assert_eq!(agents[0]["names"][0], "busy");
    assert_eq!(agents[0]["queued"], 42);
    assert_eq!(agents[0]["serial"], busy.serial());
    assert_eq!(snapshot["node"], name_of(&node).to_string());
    assert!(snapshot["totals"]["agents"].as_u64().unwrap() >= 2);
    rt.kill(&busy, ExitReason::Kill);
    let _ = std::fs::remove_file(cookie);
}
