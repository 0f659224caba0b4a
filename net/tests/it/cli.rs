//! The binaries as a user runs them: `--help`, bad flags (one clear line,
//! a non-zero exit, never a panic), and the seed's benchmark programs with
//! their defaults, locally and across two nodes.

use std::process::{Command, Output, Stdio};

use crate::support::{node, port_mapper, unique, COOKIE};

fn run(binary: &str, args: &[&str]) -> Output {
    Command::new(binary)
        .args(args)
        .env("ERLANGEN_COOKIE", std::str::from_utf8(COOKIE).unwrap())
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs")
}

const KERNEL: &str = env!("CARGO_BIN_EXE_erlangen-kernel");
const MESSAGES: &str = env!("CARGO_BIN_EXE_erlangen-message-benchmark");
const RING: &str = env!("CARGO_BIN_EXE_erlangen-ring-benchmark");

/// Checks that a refused start said one clear line and exited non-zero.
fn assert_one_clear_line(output: &Output, mentions: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(lines[0].contains(mentions), "{stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"));
}

#[test]
fn every_binary_explains_itself_with_help() {
    for binary in [KERNEL, MESSAGES, RING] {
        let output = run(binary, &["--help"]);
        assert!(output.status.success(), "{binary}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains("Usage"), "{binary}: {stdout}");
    }
}

#[test]
fn the_kernel_refuses_bad_flags_with_one_clear_line() {
    assert_one_clear_line(&run(KERNEL, &["--bogus"]), "--bogus");
    assert_one_clear_line(
        &run(
            KERNEL,
            &["--name", "x", "--cookie-file", "/nonexistent/cookie"],
        ),
        "cookie file",
    );
    // Nothing listens on port 1 of loopback.
    assert_one_clear_line(
        &run(KERNEL, &["--name", "x", "--port-mapper", "127.0.0.1:1"]),
        "port mapper",
    );
    let mapper = port_mapper();
    let name = unique("taken");
    let (_rt, _node) = node(&mapper, &name);
    let addr = mapper.local_addr().to_string();
    assert_one_clear_line(
        &run(KERNEL, &["--name", &name, "--port-mapper", &addr]),
        "taken",
    );
    assert_one_clear_line(&run(RING, &["100", "1"]), "at least 2");
    assert_one_clear_line(&run(MESSAGES, &["lots"]), "lots");
}

#[test]
fn the_benchmark_programs_print_the_seeds_lines_with_their_defaults() {
    let output = run(MESSAGES, &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("Sent 1 million messages in "), "{stdout}");
    assert!(stdout.contains("That’s "), "{stdout}");
    let output = run(RING, &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("1000000 hops around 10 agents"), "{stdout}");
    assert!(stdout.contains("microseconds per hop"), "{stdout}");
}

#[test]
fn the_benchmark_programs_run_across_two_nodes() {
    let mapper = port_mapper();
    let name = unique("bench");
    let (_rt, kernel_node) = {
        let rt = erlangen_runtime::Runtime::builder()
            .workers(1)
            .build()
            .unwrap();
        let (types, functions) = erlangen_net::Kernel::standard().into_parts();
        let node = erlangen_net::Node::builder(&name)
            .cookie(COOKIE)
            .port_mapper(mapper.local_addr())
            .types(types)
            .functions(functions)
            .start(&rt)
            .unwrap();
        (rt, node)
    };
    let remote = kernel_node.name().to_string();
    let addr = mapper.local_addr().to_string();
    let flags = ["--remote", remote.as_str(), "--port-mapper", addr.as_str()];
    let output = run(MESSAGES, &[&["2000", "2"][..], &flags[..]].concat());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("Sent 0.004 million messages in "),
        "{stdout}"
    );
    let output = run(RING, &[&["2000", "4"][..], &flags[..]].concat());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("2000 hops around 4 agents"), "{stdout}");
}

#[test]
fn a_cookie_file_with_a_trailing_newline_holds_the_same_cookie_as_the_environment() {
    let mapper = port_mapper();
    let name = unique("cookie-file");
    let file = std::env::temp_dir().join(format!("{name}.cookie"));
    // What `echo "test cookie" > file` writes.
    std::fs::write(&file, [COOKIE, b"\n"].concat()).unwrap();
    let addr = mapper.local_addr().to_string();
    let mut kernel = Command::new(KERNEL)
        .args(["--name", &name, "--port-mapper", &addr, "--cookie-file"])
        .arg(&file)
        .env_remove("ERLANGEN_COOKIE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the kernel starts");
    let start = std::time::Instant::now();
    while erlangen_portmap::client::Client::connect(mapper.local_addr())
        .and_then(|mut client| client.lookup(&name))
        .is_err()
    {
        assert!(
            start.elapsed() < crate::support::HANG_GUARD,
            "the kernel registers"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // The benchmark's node takes its cookie from ERLANGEN_COOKIE.
    let remote = format!("localhost/{name}");
    let output = run(
        MESSAGES,
        &["1000", "1", "--remote", &remote, "--port-mapper", &addr],
    );
    let _ = kernel.kill();
    let _ = kernel.wait();
    let _ = std::fs::remove_file(&file);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("Sent 0.001 million messages in "),
        "{stdout}"
    );
}

#[test]
fn a_kernel_with_log_format_json_writes_one_json_object_per_line_inside_its_node_span() {
    use std::io::BufRead;
    let mapper = crate::support::port_mapper();
    let name = crate::support::unique("json-log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_erlangen-kernel"))
        .args(["--name", &name, "--workers", "1", "--log-format", "json"])
        .args(["--port-mapper", &mapper.local_addr().to_string()])
        .env(
            "ERLANGEN_COOKIE",
            std::str::from_utf8(crate::support::COOKIE).unwrap(),
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    // A node connects: the kernel's loop logs it.
    let (_rt, node) = crate::support::node(&mapper, &crate::support::unique("visitor"));
    let kernel: erlangen_net::NodeName = format!("localhost/{name}").parse().unwrap();
    let started = std::time::Instant::now();
    let line = loop {
        node.connect(&kernel);
        match lines.recv_timeout(std::time::Duration::from_millis(200)) {
            Ok(line) if line.contains("erlangen: connected") => break line,
            Ok(_) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(error) => panic!("the kernel's log ended: {error}"),
        }
        assert!(
            started.elapsed() < crate::support::HANG_GUARD,
            "no connection logged"
        );
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(line.starts_with('{') && line.ends_with('}'), "{line}");
    assert!(line.contains("\"level\":\"INFO\""), "{line}");
    assert!(
        line.contains("\"name\":\"node\"") && line.contains(&format!("\"localhost/{name}\"")),
        "inside the node's span: {line}"
    );
}
