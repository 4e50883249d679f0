//! Writing results to stdout: tables and messages, or one JSON document.

use std::io::Write;

use serde::Serialize;

use crate::error::CliError;

/// Writes `value` as pretty-printed JSON and a newline.
///
/// # Errors
///
/// [`CliError::Output`] when stdout cannot be written.
pub(crate) fn print_json<T: Serialize + ?Sized>(value: &T) -> Result<(), CliError> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|error| CliError::Output(std::io::Error::other(error)))?;
    text.push('\n');
    print_text(&text)
}

/// Writes `text` unchanged.
///
/// # Errors
///
/// [`CliError::Output`] when stdout cannot be written.
pub(crate) fn print_text(text: &str) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(CliError::Output)
}
