//! Logging: `tracing` to standard error, at the level `-q`/`-v`/`-vv` or `RUST_LOG` picks.

use tracing_subscriber::EnvFilter;

/// Standard error that drops what it cannot write: a server whose log reader went away (a
/// closed pipe) must keep serving, not die on its next log line.
struct LossyStderr;

impl std::io::Write for LossyStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

/// Installs the subscriber: `default` level, errors only with `quiet`, debug with one
/// `verbose`, trace with two; `RUST_LOG` replaces all of that.
pub(crate) fn init(quiet: bool, verbose: u8, default: &str) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => default,
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    // The platform verifier logs each refused certificate as an error of its own; our one
    // line already says why.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!("{level},hyper=warn,rustls_platform_verifier=off"))
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LossyStderr)
        .init();
}
