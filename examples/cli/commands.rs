//! Runs each subcommand: checks its arguments, connects, calls the SDK and
//! prints the result.

mod accounts;
mod images;
mod servers;

use std::str::FromStr;

use brightbox_api::Arch;

use crate::args::{Cli, Command};
use crate::connect::{Session, connect};
use crate::error::CliError;

/// Runs the parsed command line.
///
/// # Errors
///
/// Every failure of the command, as a [`CliError`].
pub(crate) async fn run(cli: Cli) -> Result<(), CliError> {
    let global = &cli.global;
    match cli.command {
        Command::Accounts(command) => accounts::run(global, command).await,
        Command::Images(command) => images::run(global, command).await,
        Command::Servers(command) => servers::run(global, command).await,
    }
}

/// Connects, runs `body` on the session, and stops the in-process emulator
/// whatever the outcome.
async fn with_session<T>(
    global: &crate::args::GlobalOptions,
    body: impl AsyncFnOnce(&Session) -> Result<T, CliError>,
) -> Result<T, CliError> {
    let session = connect(global).await?;
    let result = body(&session).await;
    session.shutdown().await;
    result
}

/// Parses a value with its type's `FromStr`, whose error names the value
/// and the expected form.
fn parse<T>(value: &str) -> Result<T, CliError>
where
    T: FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    value
        .parse()
        .map_err(|error: T::Err| CliError::InvalidValue(Box::new(error)))
}

/// Parses the `--arch` value: `x86_64` or `i686`.
fn parse_arch(value: &str) -> Result<Arch, CliError> {
    value.parse::<Arch>().map_err(|_| CliError::InvalidInput {
        kind: "--arch",
        value: value.to_owned(),
        reason: "expected one of x86_64, i686".to_owned(),
    })
}
