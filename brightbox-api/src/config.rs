//! Configuration from environment variables and from the Brightbox CLI's config file (`~/.brightbox/config`).

use std::fmt;
use std::path::{Path, PathBuf};

use secrecy::SecretString;

use crate::builder::{CLI_APP_ID, ClientBuilder};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::id::AccountId;

/// Name of the section that contains CLI-wide settings such as `default_client`.
const CORE_SECTION: &str = "core";
/// Largest config file [`CliConfig::load`] reads; the CLI's files are a few hundred bytes per client.
const MAX_CONFIG_FILE_BYTES: u64 = 1024 * 1024;

/// One client section of the Brightbox CLI config file.
///
/// Sections for API clients have `client_id = cli-…` and `secret`. Sections for user logins have `username` and
/// either `client_id = app-…` with `secret`, or neither, in which case the CLI's public application is used.
/// The file never contains the user's password. `Debug` output does not show the secret.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct CliConfigSection {
    /// Section name, which the CLI uses as the client's alias.
    pub name: String,
    /// Line of the section header, counting from 1.
    pub line: usize,
    /// `alias` key, kept by older CLI versions.
    pub alias: Option<String>,
    /// `api_url` key.
    pub api_url: Option<String>,
    /// `auth_url` key; the CLI uses `api_url` when it is absent.
    pub auth_url: Option<String>,
    /// `client_id` key: `cli-…` for an API client, `app-…` for a user application.
    pub client_id: Option<String>,
    /// `secret` key.
    pub secret: Option<SecretString>,
    /// `username` key: a user's email address or `usr-…` id.
    pub username: Option<String>,
    /// `default_account` key.
    pub default_account: Option<String>,
}

impl fmt::Debug for CliConfigSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CliConfigSection")
            .field("name", &self.name)
            .field("line", &self.line)
            .field("alias", &self.alias)
            .field("api_url", &self.api_url)
            .field("auth_url", &self.auth_url)
            .field("client_id", &self.client_id)
            .field("secret", &self.secret.as_ref().map(|_| "[REDACTED]"))
            .field("username", &self.username)
            .field("default_account", &self.default_account)
            .finish()
    }
}

impl CliConfigSection {
    /// Returns whether the section describes a user login (password grant) rather than an API client.
    pub fn is_user_login(&self) -> bool {
        self.username.is_some()
            || self
                .client_id
                .as_deref()
                .is_some_and(|id| id.starts_with("app-"))
    }
}

/// Parsed Brightbox CLI config file: an INI file with one section per client and a `[core]` section whose
/// `default_client` names the section to use.
///
/// ```
/// use brightbox_api::CliConfig;
///
/// let config = CliConfig::parse(
///     "[core]\ndefault_client = work\n\n[work]\napi_url = https://api.gb1.brightbox.com\nclient_id = cli-abc12\nsecret = s3cret\n",
///     "example",
/// )?;
/// let section = config.section(None)?;
/// assert_eq!(section.client_id.as_deref(), Some("cli-abc12"));
/// # Ok::<(), brightbox_api::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct CliConfig {
    origin: String,
    default_client: Option<String>,
    sections: Vec<CliConfigSection>,
}

impl CliConfig {
    /// Returns `$HOME/.brightbox/config`, the CLI's default location, or `None` when `HOME` is not set.
    pub fn default_path() -> Option<PathBuf> {
        let home = std::env::var_os("HOME").filter(|home| !home.is_empty())?;
        Some(PathBuf::from(home).join(".brightbox").join("config"))
    }

    /// Reads and parses a config file.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the file cannot be read, is not a regular file (a folder, FIFO or device) or is larger
    /// than 1 MiB, or a line is malformed; the error names the path and line.
    pub fn load(path: &Path) -> Result<Self> {
        // Checked before opening, because opening a FIFO blocks and reading a device such as /dev/zero never ends.
        let metadata = std::fs::metadata(path).map_err(|source| Error::Config {
            origin: path.display().to_string(),
            reason: "cannot read the Brightbox CLI config file; check the path or create it with `brightbox config client_add`".to_owned(),
            source: Some(source),
        })?;
        if !metadata.is_file() || metadata.len() > MAX_CONFIG_FILE_BYTES {
            return Err(Error::Config {
                origin: path.display().to_string(),
                reason: format!(
                    "not a regular file of at most {MAX_CONFIG_FILE_BYTES} bytes; give the path of the Brightbox CLI config file, usually ~/.brightbox/config"
                ),
                source: None,
            });
        }
        let text = std::fs::read_to_string(path).map_err(|source| Error::Config {
            origin: path.display().to_string(),
            reason: "cannot read the Brightbox CLI config file; check the path or create it with `brightbox config client_add`".to_owned(),
            source: Some(source),
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses config text; `origin` names it in errors, such as the file path.
    ///
    /// Blank lines and lines starting with `#` or `;` are skipped. Values may be wrapped in double quotes. Keys
    /// before the first section header are ignored, and a repeated key keeps its last value.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the line when a line is neither a `[section]` header nor `key = value`.
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        let mut config = CliConfig {
            origin: origin.to_owned(),
            ..Self::default()
        };
        // Index into `sections` of the current client section; `None` before the first header and in `[core]`.
        let mut current: Option<usize> = None;
        let mut in_core = false;

        for (index, raw) in text.lines().enumerate() {
            let number = index + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(rest) = line.strip_prefix('[') {
                let name = rest
                    .strip_suffix(']')
                    .map(str::trim)
                    .filter(|name| !name.is_empty())
                    .ok_or_else(|| Error::Config {
                        origin: format!("{origin}, line {number}"),
                        reason: format!("malformed section header {line:?}; write it as [name]"),
                        source: None,
                    })?;
                in_core = name == CORE_SECTION;
                current = if in_core {
                    None
                } else if let Some(existing) = config.sections.iter().position(|s| s.name == name) {
                    Some(existing)
                } else {
                    config.sections.push(CliConfigSection {
                        name: name.to_owned(),
                        line: number,
                        ..CliConfigSection::default()
                    });
                    Some(config.sections.len() - 1)
                };
                continue;
            }

            let (key, value) = line.split_once('=').ok_or_else(|| Error::Config {
                origin: format!("{origin}, line {number}"),
                reason: "expected `key = value` or a [section] header".to_owned(),
                source: None,
            })?;
            let key = key.trim();
            let value = unquote(value.trim());
            let value = (!value.is_empty()).then(|| value.to_owned());

            if in_core {
                if key == "default_client" {
                    config.default_client = value;
                }
                continue;
            }
            let Some(section) = current.and_then(|i| config.sections.get_mut(i)) else {
                continue;
            };
            match key {
                "alias" => section.alias = value,
                "api_url" => section.api_url = value,
                "auth_url" => section.auth_url = value,
                "client_id" => section.client_id = value,
                "secret" => section.secret = value.map(SecretString::from),
                "username" => section.username = value,
                "default_account" => section.default_account = value,
                _ => {}
            }
        }
        Ok(config)
    }

    /// Returns the `default_client` of the `[core]` section.
    pub fn default_client(&self) -> Option<&str> {
        self.default_client.as_deref()
    }

    /// Returns the client sections in file order.
    pub fn sections(&self) -> &[CliConfigSection] {
        &self.sections
    }

    /// Selects a client section: the one named `name` (section name or `alias`), else `default_client`, else
    /// the only section.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when no section has that name, when the file has no client section, or when it has
    /// several and none is named or set as default. The message lists the section names.
    pub fn section(&self, name: Option<&str>) -> Result<&CliConfigSection> {
        let names = || {
            self.sections
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let wanted = name.or(self.default_client.as_deref());
        if let Some(wanted) = wanted {
            return self
                .sections
                .iter()
                .find(|s| s.name == wanted || s.alias.as_deref() == Some(wanted))
                .ok_or_else(|| Error::Config {
                    origin: self.origin.clone(),
                    reason: format!("no client section named {wanted:?}; sections: {}", names()),
                    source: None,
                });
        }
        match self.sections.as_slice() {
            [only] => Ok(only),
            [] => Err(Error::Config {
                origin: self.origin.clone(),
                reason:
                    "the file has no client section; add one with `brightbox config client_add`"
                        .to_owned(),
                source: None,
            }),
            _ => Err(Error::Config {
                origin: self.origin.clone(),
                reason: format!(
                    "several client sections ({}) and no default_client in [core]; name the section to use",
                    names()
                ),
                source: None,
            }),
        }
    }

    /// Creates a builder from a section; see [`ClientBuilder::from_cli_config`].
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when an API client section lacks `client_id` or `secret`, when a user section names an
    /// application other than the CLI's without a `secret`, or when `default_account` is not an account id.
    pub fn builder_for(&self, section: &CliConfigSection) -> Result<ClientBuilder> {
        let origin = format!(
            "{}, section [{}] (line {})",
            self.origin, section.name, section.line
        );
        let config_error = |reason: String| Error::Config {
            origin: origin.clone(),
            reason,
            source: None,
        };

        let mut builder = ClientBuilder::default();
        if let Some(url) = &section.api_url {
            builder = builder.base_url(url);
        }
        if let Some(url) = section
            .auth_url
            .as_ref()
            .filter(|url| Some(*url) != section.api_url.as_ref())
        {
            builder = builder.auth_url(url);
        }

        if section.is_user_login() {
            let username = section.username.clone().ok_or_else(|| {
                config_error(
                    "the section names an application (app-…) but has no `username`".to_owned(),
                )
            })?;
            builder = builder.password_credentials(username, SecretString::from(String::new()));
            match (&section.client_id, &section.secret) {
                (Some(app_id), Some(secret)) => {
                    builder = builder.application(app_id.clone(), secret.clone());
                }
                (Some(app_id), None) if app_id != CLI_APP_ID => {
                    return Err(config_error(format!(
                        "application {app_id} has no `secret`; add it, or remove client_id to use the CLI's application {CLI_APP_ID}"
                    )));
                }
                _ => {}
            }
        } else {
            let client_id = section.client_id.clone().ok_or_else(|| {
                config_error("missing `client_id`; set it to the API client id (cli-…)".to_owned())
            })?;
            let secret = section.secret.clone().ok_or_else(|| {
                config_error(format!("missing `secret` for API client {client_id}"))
            })?;
            builder = builder.client_credentials(client_id, secret);
        }

        if let Some(account) = &section.default_account {
            let account: AccountId = account.parse().map_err(|error| {
                config_error(format!("`default_account` is not an account id: {error}"))
            })?;
            builder = builder.account_id(account);
        }
        Ok(builder)
    }
}

/// Strips one pair of surrounding double quotes.
fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or(value)
}

/// Environment variables read by [`ClientBuilder::from_env`].
pub(crate) mod vars {
    pub(crate) const API_URL: &str = "BRIGHTBOX_API_URL";
    pub(crate) const CLIENT_ID: &str = "BRIGHTBOX_CLIENT_ID";
    pub(crate) const CLIENT_SECRET: &str = "BRIGHTBOX_CLIENT_SECRET";
    pub(crate) const ACCOUNT: &str = "BRIGHTBOX_ACCOUNT";
    pub(crate) const USERNAME: &str = "BRIGHTBOX_USERNAME";
    pub(crate) const PASSWORD: &str = "BRIGHTBOX_PASSWORD";
    pub(crate) const APP_ID: &str = "BRIGHTBOX_APP_ID";
    pub(crate) const APP_SECRET: &str = "BRIGHTBOX_APP_SECRET";
}

impl ClientBuilder {
    /// Creates a builder from the process environment; see [`from_env_with`](Self::from_env_with).
    ///
    /// # Errors
    ///
    /// The errors of [`from_env_with`](Self::from_env_with).
    pub fn from_env() -> Result<Self> {
        Self::from_env_with(|name| std::env::var(name).ok())
    }

    /// Creates a builder from variables returned by `lookup`, which makes the rules testable without changing the
    /// process environment. Empty values count as unset.
    ///
    /// - `BRIGHTBOX_API_URL`: base URL (default [`DEFAULT_BASE_URL`](crate::DEFAULT_BASE_URL)).
    /// - `BRIGHTBOX_CLIENT_ID` and `BRIGHTBOX_CLIENT_SECRET`: API client credentials, or
    /// - `BRIGHTBOX_USERNAME` and `BRIGHTBOX_PASSWORD`: a user login, sent with `BRIGHTBOX_APP_ID` and
    ///   `BRIGHTBOX_APP_SECRET`, which default to the Brightbox CLI's public application [`CLI_APP_ID`].
    /// - `BRIGHTBOX_ACCOUNT`: account id sent with every API call.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the variable when neither credential pair is set, when both are, when half of a
    /// pair is missing, or when `BRIGHTBOX_ACCOUNT` is not an account id.
    pub fn from_env_with(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let env_error = |reason: String| Error::Config {
            origin: "environment".to_owned(),
            reason,
            source: None,
        };

        let mut builder = ClientBuilder::default();
        if let Some(url) = get(vars::API_URL) {
            builder = builder.base_url(url);
        }

        let client_id = get(vars::CLIENT_ID);
        let username = get(vars::USERNAME);
        builder = match (client_id, username) {
            (Some(_), Some(_)) => {
                return Err(env_error(format!(
                    "both {} and {} are set; unset one to choose between API client and user credentials",
                    vars::CLIENT_ID,
                    vars::USERNAME
                )));
            }
            (Some(client_id), None) => {
                let secret = get(vars::CLIENT_SECRET).ok_or_else(|| {
                    env_error(format!(
                        "{} is set but {} is not",
                        vars::CLIENT_ID,
                        vars::CLIENT_SECRET
                    ))
                })?;
                builder.client_credentials(client_id, SecretString::from(secret))
            }
            (None, Some(username)) => {
                let password = get(vars::PASSWORD).ok_or_else(|| {
                    env_error(format!(
                        "{} is set but {} is not",
                        vars::USERNAME,
                        vars::PASSWORD
                    ))
                })?;
                let mut builder =
                    builder.password_credentials(username, SecretString::from(password));
                match (get(vars::APP_ID), get(vars::APP_SECRET)) {
                    (Some(app_id), Some(secret)) => {
                        builder = builder.application(app_id, SecretString::from(secret));
                    }
                    (Some(app_id), None) if app_id != CLI_APP_ID => {
                        return Err(env_error(format!(
                            "{} is set to {app_id} but {} is not set",
                            vars::APP_ID,
                            vars::APP_SECRET
                        )));
                    }
                    (None, Some(_)) => {
                        return Err(env_error(format!(
                            "{} is set but {} is not",
                            vars::APP_SECRET,
                            vars::APP_ID
                        )));
                    }
                    _ => {}
                }
                builder
            }
            (None, None) => {
                return Err(env_error(format!(
                    "no credentials: set {} and {}, or {} and {}",
                    vars::CLIENT_ID,
                    vars::CLIENT_SECRET,
                    vars::USERNAME,
                    vars::PASSWORD
                )));
            }
        };

        if let Some(account) = get(vars::ACCOUNT) {
            let account: AccountId = account.parse().map_err(|error| {
                env_error(format!("{} is not an account id: {error}", vars::ACCOUNT))
            })?;
            builder = builder.account_id(account);
        }
        Ok(builder)
    }

    /// Creates a builder from a section of the Brightbox CLI config file.
    ///
    /// `path` defaults to [`CliConfig::default_path`]; `section` defaults to `default_client` of `[core]`, or the
    /// only section. For a user section the file contains no password: set it with [`password`](Self::password)
    /// before [`build`](Self::build).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when `HOME` is unset and no path is given, and the errors of [`CliConfig::load`],
    /// [`CliConfig::section`] and [`CliConfig::builder_for`].
    pub fn from_cli_config(path: Option<&Path>, section: Option<&str>) -> Result<Self> {
        let path = match path {
            Some(path) => path.to_owned(),
            None => CliConfig::default_path().ok_or_else(|| Error::Config {
                origin: "environment".to_owned(),
                reason:
                    "HOME is not set, so ~/.brightbox/config cannot be found; pass the config path"
                        .to_owned(),
                source: None,
            })?,
        };
        let config = CliConfig::load(&path)?;
        let chosen = config.section(section)?;
        config.builder_for(chosen)
    }
}

impl Client {
    /// Creates a client from the process environment; see [`ClientBuilder::from_env_with`] for the variables.
    ///
    /// # Errors
    ///
    /// The errors of [`ClientBuilder::from_env_with`] and [`ClientBuilder::build`].
    pub fn from_env() -> Result<Self> {
        ClientBuilder::from_env()?.build()
    }

    /// Creates a client from the Brightbox CLI config file; see [`ClientBuilder::from_cli_config`].
    ///
    /// For a user section the password comes from `BRIGHTBOX_PASSWORD`.
    ///
    /// # Errors
    ///
    /// The errors of [`ClientBuilder::from_cli_config`] and [`ClientBuilder::build`], which returns
    /// [`Error::MissingCredentials`] for a user section when `BRIGHTBOX_PASSWORD` is not set.
    pub fn from_cli_config(path: Option<&Path>, section: Option<&str>) -> Result<Self> {
        let mut builder = ClientBuilder::from_cli_config(path, section)?;
        if builder.uses_password_grant()
            && let Ok(password) = std::env::var(vars::PASSWORD)
        {
            builder = builder.password(SecretString::from(password));
        }
        builder.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unquote_strips_one_pair() {
        assert_eq!(unquote("\"abc\""), "abc");
        assert_eq!(unquote("abc"), "abc");
        assert_eq!(unquote("\""), "\"");
    }
}
