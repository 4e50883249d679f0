//! `brightbox`: a command-line program for the Brightbox image library,
//! built only on the public crates of this workspace.
//!
//! The subcommands follow the Brightbox CLI (`accounts`, `images`,
//! `servers`), print the same aligned tables, and print one JSON document
//! with `--json`. Without any credentials the program starts the local
//! emulator in this process, so every command runs offline.
//!
//! ```text
//! brightbox images upload-and-register disk.qcow2 --name "Debian 13" --arch x86_64
//! brightbox images list --mine --json
//! brightbox servers create img-xxxxx --name web-1 --wait
//! ```
//!
//! `brightbox --help` lists where credentials come from and the exit codes.

mod args;
mod commands;
mod connect;
mod error;
mod output;
mod progress;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

use crate::args::Cli;
use crate::error::CliError;

#[tokio::main]
async fn main() -> ExitCode {
    init_tracing();

    // clap prints its own message and exits with 2 on a usage error, or
    // with 0 after --help and --version.
    let cli = Cli::parse();
    match commands::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => report(&error),
    }
}

/// Sends logs to stderr at the level `RUST_LOG` sets, by default none: the
/// error line reports failures, so library warnings would repeat it.
///
/// suppaftp logs each FTP command, `PASS` included, at trace level, so its
/// target stays off whatever `RUST_LOG` sets.
fn init_tracing() {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "off".to_owned());
    let filter = tracing_subscriber::EnvFilter::try_new(format!("{filter},suppaftp=off"))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

/// Prints `error` as one line on stderr, with its causes and the fix, and
/// returns its exit code. Errors go to stderr with `--json` too, so stdout
/// contains results only.
fn report(error: &CliError) -> ExitCode {
    let status = error.exit_status();
    let mut line =
        error.rewrite_library_fixes(format!("error: {}", brightbox_examples::error_chain(error)));
    if let Some(fix) = error.fix() {
        line.push_str("; ");
        line.push_str(&fix);
    }
    eprintln!("{line}");
    ExitCode::from(status.code())
}
