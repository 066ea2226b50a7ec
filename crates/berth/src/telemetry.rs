//! Logging setup: `tracing` to standard error, filtered by the `log` setting
//! (`RUST_LOG` syntax). Secrets never reach a log line: nothing here formats
//! request headers or bodies. Every field and message is written with its control
//! characters and bidirectional controls escaped (`\n`, `\u{202e}`), so a value a client
//! chose (a user name, a path) can neither start a line of its own nor disguise one.

use tracing_subscriber::field::MakeExt as _;

pub fn init(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let fields = tracing_subscriber::fmt::format::debug_fn(|w, field, value| {
        let text = format!("{value:?}");
        let text = crate::text::escape(&text);
        if field.name() == "message" { w.write_str(&text) } else { write!(w, "{}={text}", field.name()) }
    })
    .delimited(" ");
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .fmt_fields(fields)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
