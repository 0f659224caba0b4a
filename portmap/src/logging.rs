//! How the workspace's programs write their logs (`tracing` events and
//! spans, to stderr): `--log-format text` (the default, for people) or
//! `--log-format json` (one JSON object per line, for log pipelines: the
//! time, the level, the message and fields, and the spans it happened in,
//! such as the node's). The port mapper and every binary of the net crate
//! call [`init`] with their flag.

/// The `--log-format` of a program.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the program's log writer (to stderr, INFO and above); a
/// second call changes nothing.
///
/// ```
/// erlangen_portmap::logging::init(erlangen_portmap::logging::LogFormat::Json);
/// tracing::info!(answer = 42, "logged as JSON");
/// ```
pub fn init(format: LogFormat) {
    init_at(format, tracing::Level::INFO);
}

/// Installs the program's log writer at `level` and above (a tool whose
/// output is for scripts logs only warnings: `erlangen-top --once`).
///
/// ```
/// use erlangen_portmap::logging::{init_at, LogFormat};
/// init_at(LogFormat::Text, tracing::Level::WARN);
/// ```
pub fn init_at(format: LogFormat, level: tracing::Level) {
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
    };
}
