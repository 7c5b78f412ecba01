//! Logging: JSON (Flux's default) or console lines, at `--log-level`; `RUST_LOG` overrides.

use tracing_subscriber::{EnvFilter, fmt};

use crate::flags::{LogArgs, LogEncoding, LogLevel};

/// Installs the global subscriber; a second call is a no-op.
pub fn init(args: &LogArgs) {
    let level = match args.log_level {
        LogLevel::Error => "error",
        LogLevel::Info => "info",
        LogLevel::Debug => "debug",
        LogLevel::Trace => "trace",
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{level},kube=warn,hyper=warn")));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match args.log_encoding {
        LogEncoding::Json => builder.json().flatten_event(true).try_init(),
        LogEncoding::Console => builder.try_init(),
    };
}
