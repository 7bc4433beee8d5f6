//! Logging set up in one place: JSON lines for machines, readable lines in a terminal.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `level` is a `tracing` filter such as `info` or
/// `expensewise=debug,sqlx=warn`.
pub fn init(level: &str) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(level)
        .map_err(|e| anyhow::anyhow!("LOG_LEVEL: '{level}' is not a valid filter: {e}"))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = if std::io::stdout().is_terminal() {
        builder.try_init()
    } else {
        builder.json().flatten_event(true).try_init()
    };
    result.map_err(|e| anyhow::anyhow!("cannot install the log subscriber: {e}"))
}
