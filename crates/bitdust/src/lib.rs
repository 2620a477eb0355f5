//! The library half of the `bitdust` program: what the CLI and the lab tools (`bitdust-lab`) share: the client
//! of a daemon's local API, the local devnet, the demo, and quiet output on a closed pipe.

pub mod client;
pub mod demo;
pub mod devnet;

/// `println!` for the program's output: when stdout is a pipe that closed (`bitdust ls | head`), the program
/// ends quietly with status 0 instead of panicking; any other write error ends it with status 1.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($arg)*) {
            $crate::stdout_failed(e)
        }
    }};
}

/// The program's main: logs to stderr (`BITDUST_LOG`, else `default_filter`), runs `run`, and on an error prints
/// it (as an [`bitdust_api::ErrorBody`] with `json`) and exits with status 1. Shared by `bitdust` and `bitdust-lab`.
pub fn main_with(default_filter: &str, json: bool, run: impl FnOnce() -> anyhow::Result<()>) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BITDUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    if let Err(e) = run() {
        if json {
            let body = bitdust_api::ErrorBody { error: format!("{e:#}") };
            out!("{}", serde_json::to_string(&body).unwrap_or_default());
        } else {
            eprintln!("error: {e:#}");
        }
        std::process::exit(1);
    }
}

/// Ends the program after a failed write to stdout (see [`out!`]): quietly with status 0 on a closed pipe,
/// with status 1 and a message otherwise.
pub fn stdout_failed(e: std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: writing to stdout: {e}");
    std::process::exit(1);
}
