//! `erlangen-kernel`: an Erlangen node that hosts the standard kernel's
//! functions (parallel map, echo, the benchmark agents). `--help` lists the
//! flags; SIGINT or SIGTERM stops it cleanly.

fn main() -> std::process::ExitCode {
    erlangen_net::Kernel::standard().main()
}
