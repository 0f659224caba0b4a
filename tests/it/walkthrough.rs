//! The seed's "Getting Distributed" walkthrough, literally: a port mapper
//! and a kernel named `map-node` as real processes, then the example.

use std::process::Command;

use crate::support::{binary, example, Running};

#[test]
fn the_getting_distributed_walkthrough_prints_the_mapped_vector_and_stops_cleanly() {
    let cookie = "walkthrough test cookie";
    let mut mapper = Command::new(binary("erlangen-port-mapper"));
    mapper.args(["--listen", "127.0.0.1:0"]);
    let mapper = Running::start(mapper);
    let line = mapper.wait_for("listening on ");
    let addr = line.rsplit(' ').next().unwrap().to_owned();

    let mut kernel = Command::new(binary("erlangen-kernel"));
    kernel
        .args([
            "--name",
            "map-node",
            "--port-mapper",
            &addr,
            "--workers",
            "2",
        ])
        .env("ERLANGEN_COOKIE", cookie);
    let kernel = Running::start(kernel);
    kernel.wait_for("listening on ");

    let output = Command::new(example("getting_distributed"))
        .env("ERLANGEN_PORT_MAPPER", &addr)
        .env("ERLANGEN_COOKIE", cookie)
        .output()
        .expect("the example runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout
            .lines()
            .any(|line| line == "[3, 5, 7, 9, 11, 13, 15]"),
        "{stdout}"
    );

    assert!(kernel.terminate(), "the kernel exits 0 on SIGTERM");
    assert!(mapper.terminate(), "the port mapper exits 0 on SIGTERM");
}
