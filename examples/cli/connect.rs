//! Credentials and connections: flags, environment variables, the Brightbox
//! CLI config file, or an emulator started in this process.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use brightbox_api::secrecy::SecretString;
use brightbox_api::{AccountId, CliConfig, Client, ClientBuilder, WaitOptions};
use brightbox_emulator::Emulator;
use brightbox_library::{Library, Transport};

use crate::args::GlobalOptions;
use crate::error::CliError;

/// Poll interval with the in-process emulator, which finishes images and
/// servers in about half a second.
const EMULATOR_POLL_INTERVAL: Duration = Duration::from_millis(200);

/// An API client, the settings a [`Library`] is built with, and the emulator
/// when one runs in this process.
pub(crate) struct Session {
    /// The API client.
    pub(crate) api: Client,
    /// Account given with `--account` or `BRIGHTBOX_ACCOUNT`.
    pub(crate) account: Option<AccountId>,
    /// CA certificate file given with `--ftp-ca-file` or
    /// `BRIGHTBOX_FTP_CA_FILE`, read only by commands that use FTPS.
    ftp_ca_file: Option<PathBuf>,
    /// PEM text of the in-process emulator's CA certificate.
    emulator_ca: Option<Vec<u8>>,
    /// Poll intervals and timeout of waits.
    pub(crate) wait: WaitOptions,
    /// The in-process emulator, when no credentials were set.
    pub(crate) emulator: Option<Emulator>,
}

impl Session {
    /// Returns the PEM files of extra CA certificates to trust for FTPS,
    /// reading `--ftp-ca-file` now.
    ///
    /// # Errors
    ///
    /// [`CliError::MissingCaFile`] when the file does not exist, and
    /// [`CliError::ReadFile`] when it cannot be read.
    pub(crate) fn ftp_roots(&self) -> Result<Vec<Vec<u8>>, CliError> {
        let mut roots = Vec::new();
        if let Some(path) = &self.ftp_ca_file {
            let pem = std::fs::read(path).map_err(|source| {
                if source.kind() == std::io::ErrorKind::NotFound {
                    CliError::MissingCaFile { path: path.clone() }
                } else {
                    CliError::ReadFile {
                        purpose: "CA certificate file",
                        path: path.clone(),
                        source,
                    }
                }
            })?;
            roots.push(pem);
        }
        roots.extend(self.emulator_ca.iter().cloned());
        Ok(roots)
    }

    /// Builds a [`Library`] on this session, with `transport` in place of
    /// FTPS when given. The CA certificates for FTPS are read only when
    /// `uses_ftps` is true, so a command that never opens an FTPS
    /// connection does not depend on the CA file.
    ///
    /// # Errors
    ///
    /// [`CliError::MissingCaFile`] or [`CliError::ReadFile`] when the CA file
    /// cannot be read, and [`CliError::Library`] when a CA certificate
    /// cannot be used.
    pub(crate) fn library(
        &self,
        transport: Option<Arc<dyn Transport>>,
        uses_ftps: bool,
    ) -> Result<Library, CliError> {
        let mut builder = Library::builder(self.api.clone()).wait_options(self.wait);
        if let Some(account) = &self.account {
            builder = builder.account_id(account.clone());
        }
        if uses_ftps {
            for pem in self.ftp_roots()? {
                builder = builder.add_root_certificate_pem(pem)?;
            }
        }
        if let Some(transport) = transport {
            builder = builder.transport(transport);
        }
        Ok(builder.build())
    }

    /// Stops the in-process emulator, if one runs.
    pub(crate) async fn shutdown(self) {
        if let Some(emulator) = self.emulator {
            emulator.shutdown().await;
        }
    }
}

/// Reads a variable, treating an empty value as unset.
fn env_var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
}

/// Connects with the first credentials found, in the order `--help` lists,
/// or starts the emulator when there are none.
///
/// # Errors
///
/// [`CliError::InvalidInput`] for a bad account id, [`CliError::Credentials`] when the
/// configuration is incomplete, and [`CliError::Emulator`] when the
/// emulator fails to start.
pub(crate) async fn connect(global: &GlobalOptions) -> Result<Session, CliError> {
    let account = match global.account.clone() {
        Some(value) => {
            Some(
                value
                    .parse::<AccountId>()
                    .map_err(|error| CliError::InvalidInput {
                        kind: "account id",
                        value: value.clone(),
                        reason: error.to_string(),
                    })?,
            )
        }
        None => None,
    };
    let ftp_ca_file = global.ftp_ca_file.clone();
    let timeout = Duration::from_secs(global.wait_timeout);

    let Some(builder) = configured_builder(global, account.as_ref())? else {
        return start_emulator(global, account, ftp_ca_file, timeout).await;
    };
    let builder = if builder.uses_password_grant() {
        builder.otp_callback_blocking(read_two_factor_code)
    } else {
        builder
    };
    let api = builder.build().map_err(CliError::Credentials)?;
    let interval = global
        .poll_interval_ms
        .map_or(WaitOptions::default().interval, Duration::from_millis);
    Ok(Session {
        api,
        account,
        ftp_ca_file,
        emulator_ca: None,
        wait: WaitOptions::default().interval(interval).timeout(timeout),
        emulator: None,
    })
}

/// Returns a client builder from flags and the environment, or from the CLI
/// config file, or `None` when neither contains credentials.
fn configured_builder(
    global: &GlobalOptions,
    account: Option<&AccountId>,
) -> Result<Option<ClientBuilder>, CliError> {
    // clap has already merged each flag with its variable, so the flags win here.
    if global.client_id.is_some() || env_var("BRIGHTBOX_USERNAME").is_some() {
        let lookup = |name: &str| match name {
            "BRIGHTBOX_CLIENT_ID" => global.client_id.clone(),
            "BRIGHTBOX_CLIENT_SECRET" => global.client_secret.clone(),
            "BRIGHTBOX_API_URL" => global.api_url.clone(),
            "BRIGHTBOX_ACCOUNT" => account.map(ToString::to_string),
            other => std::env::var(other).ok(),
        };
        let builder = ClientBuilder::from_env_with(lookup).map_err(CliError::Credentials)?;
        return Ok(Some(builder));
    }

    let path = match &global.config {
        Some(path) => Some(path.clone()),
        None => CliConfig::default_path().filter(|path| path.is_file()),
    };
    let Some(path) = path else {
        if let Some(section) = &global.client {
            return Err(CliError::InvalidInput {
                kind: "--client section",
                value: section.clone(),
                reason: "there is no ~/.brightbox/config; pass the file with --config".to_owned(),
            });
        }
        return Ok(None);
    };
    let mut builder = ClientBuilder::from_cli_config(Some(&path), global.client.as_deref())
        .map_err(CliError::Credentials)?;
    if builder.uses_password_grant()
        && let Some(password) = env_var("BRIGHTBOX_PASSWORD")
    {
        builder = builder.password(SecretString::from(password));
    }
    if let Some(url) = &global.api_url {
        builder = builder.base_url(url);
    }
    if let Some(account) = account {
        builder = builder.account_id(account.clone());
    }
    Ok(Some(builder))
}

/// Returns the two-factor code from `BRIGHTBOX_OTP`, or reads it from the
/// terminal. Without either it returns `None`, which ends the login with a
/// "two-factor code required" error.
fn read_two_factor_code() -> Option<SecretString> {
    if let Some(code) = env_var("BRIGHTBOX_OTP") {
        return Some(SecretString::from(code));
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return None;
    }
    eprint!("two-factor code: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    stdin.lock().read_line(&mut line).ok()?;
    let code = line.trim();
    (!code.is_empty()).then(|| SecretString::from(code.to_owned()))
}

async fn start_emulator(
    global: &GlobalOptions,
    account: Option<AccountId>,
    ftp_ca_file: Option<PathBuf>,
    timeout: Duration,
) -> Result<Session, CliError> {
    if global.api_url.is_some() {
        eprintln!("warning: --api-url (BRIGHTBOX_API_URL) is ignored without credentials");
    }
    if let Some(account) = &account {
        eprintln!("warning: --account {account} is ignored without credentials");
    }
    let emulator = Emulator::start().await.map_err(CliError::Emulator)?;
    eprintln!(
        "note: no credentials set, so this command uses a local emulator whose state ends with it; \
         for a persistent one, run `cargo run -p brightbox-emulator` and export the BRIGHTBOX_* lines it prints"
    );
    let api = Client::builder()
        .base_url(emulator.api_url())
        .client_credentials(emulator.client_id(), emulator.client_secret().to_owned())
        .build()
        .map_err(CliError::Credentials)?;
    let interval = global
        .poll_interval_ms
        .map_or(EMULATOR_POLL_INTERVAL, Duration::from_millis);
    let wait = WaitOptions::default()
        .interval(interval)
        .max_interval(Duration::from_secs(1))
        .timeout(timeout);
    Ok(Session {
        api,
        account: None,
        ftp_ca_file,
        emulator_ca: Some(emulator.ca_certificate_pem().as_bytes().to_vec()),
        wait,
        emulator: Some(emulator),
    })
}
