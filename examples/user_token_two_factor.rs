//! Logs in as a user with the OAuth 2 password grant and returns the
//! two-factor code that the API requests from a callback.
//!
//! With `BRIGHTBOX_USERNAME` and `BRIGHTBOX_PASSWORD` set, it logs in to the
//! API at `BRIGHTBOX_API_URL` as that user, through the Brightbox CLI's
//! public application. The code comes from `BRIGHTBOX_OTP`, or is read from
//! the terminal. Without them it starts the local emulator, whose user
//! always needs the fixed code [`USER_OTP_CODE`]. It then lists the
//! accounts the user can reach.
//!
//! ```text
//! cargo run -p brightbox-examples --example user_token_two_factor
//! ```

use std::error::Error;
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use brightbox_api::secrecy::SecretString;
use brightbox_api::{Client, ClientBuilder};
use brightbox_emulator::{Emulator, USER_NAME, USER_OTP_CODE, USER_PASSWORD};
use brightbox_examples::{account_table, error_chain, init_tracing};

#[tokio::main]
async fn main() -> ExitCode {
    init_tracing();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", error_chain(error.as_ref()));
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn Error>> {
    let user_set = std::env::var("BRIGHTBOX_USERNAME").is_ok_and(|name| !name.is_empty());
    let (builder, emulator) = if user_set {
        // Reads BRIGHTBOX_USERNAME, BRIGHTBOX_PASSWORD and BRIGHTBOX_API_URL.
        (ClientBuilder::from_env()?, None)
    } else {
        let emulator = Emulator::start().await?;
        eprintln!(
            "no BRIGHTBOX_USERNAME set: logging in as {USER_NAME} on the local emulator at {}",
            emulator.api_url()
        );
        let builder = Client::builder()
            .base_url(emulator.api_url())
            .password_credentials(USER_NAME, SecretString::from(USER_PASSWORD));
        (builder, Some(emulator))
    };

    // The client calls this only when the token endpoint returns HTTP 401
    // with `X-Brightbox-OTP: required`, then sends the code once in that
    // header. Returning None ends the login with Error::TwoFactorRequired.
    let emulator_code = emulator.as_ref().map(|_| USER_OTP_CODE);
    let client = builder
        .otp_callback_blocking(move || {
            eprintln!("the API requests a two-factor code");
            match emulator_code {
                Some(code) => Some(SecretString::from(code)),
                None => read_code(),
            }
        })
        .build()?;

    // The first call obtains the token; later calls reuse it until it expires.
    let accounts = client.accounts().list().await?;
    print!("{}", account_table(&accounts));

    if let Some(emulator) = emulator {
        emulator.shutdown().await;
    }
    Ok(())
}

/// Returns the code from `BRIGHTBOX_OTP`, or reads it from the terminal.
fn read_code() -> Option<SecretString> {
    if let Ok(code) = std::env::var("BRIGHTBOX_OTP") {
        return Some(SecretString::from(code));
    }
    if !std::io::stdin().is_terminal() {
        return None;
    }
    eprint!("two-factor code: ");
    std::io::stderr().flush().ok()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).ok()?;
    Some(SecretString::from(line.trim().to_owned()))
}
