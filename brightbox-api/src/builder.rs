//! [`ClientBuilder`]: credentials, base URL, account, timeouts and retries.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::auth::{Grant, OtpCallback};
use crate::client::{Client, Inner};
use crate::error::{Error, Result};
use crate::id::{AccountId, AppId, ClientId};
use crate::retry::RetryConfig;

/// Base URL of the Brightbox API in region `gb1`.
pub const DEFAULT_BASE_URL: &str = "https://api.gb1.brightbox.com/";

/// Per-request timeout used when [`ClientBuilder::timeout`] is not called.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Time limit for opening a TCP and TLS connection when [`ClientBuilder::connect_timeout`] is not called.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long an unused pooled connection is kept when [`ClientBuilder::pool_idle_timeout`] is not called.
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// OAuth application id embedded in the Brightbox CLI, used for the password grant when no other application is
/// set. Source: `EMBEDDED_APP_ID` in `lib/brightbox_cli.rb` of brightbox/brightbox-cli.
pub const CLI_APP_ID: &str = "app-12345";

/// Secret of [`CLI_APP_ID`], published in the same CLI source file as `EMBEDDED_APP_SECRET`.
pub(crate) const CLI_APP_SECRET: &str = "mocbuipbiaa6k6c";

/// Credentials as set on the builder, checked in [`ClientBuilder::build`].
#[derive(Clone)]
enum Credentials {
    None,
    Client {
        id: String,
        secret: SecretString,
    },
    User {
        username: String,
        password: SecretString,
    },
}

/// Builder of a [`Client`].
///
/// Credentials are required: either [`client_credentials`](Self::client_credentials) or
/// [`password_credentials`](Self::password_credentials); the later call wins. Values are checked in
/// [`build`](Self::build). `Debug` output never shows a secret or password.
#[derive(Clone)]
pub struct ClientBuilder {
    base_url: String,
    auth_url: Option<String>,
    credentials: Credentials,
    application: Option<(String, SecretString)>,
    otp: Option<OtpCallback>,
    account_id: Option<AccountId>,
    timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    pool_idle_timeout: Option<Duration>,
    user_agent: String,
    retry: RetryConfig,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, identity) = match &self.credentials {
            Credentials::None => ("none", None),
            Credentials::Client { id, .. } => ("client_credentials", Some(id.as_str())),
            Credentials::User { username, .. } => ("password", Some(username.as_str())),
        };
        f.debug_struct("ClientBuilder")
            .field("base_url", &self.base_url)
            .field("auth_url", &self.auth_url)
            .field("grant", &kind)
            .field("identity", &identity)
            .field(
                "application",
                &self.application.as_ref().map(|(id, _)| id.as_str()),
            )
            .field("otp_callback", &self.otp.is_some())
            .field("account_id", &self.account_id)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl Default for ClientBuilder {
    fn default() -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            auth_url: None,
            credentials: Credentials::None,
            application: None,
            otp: None,
            account_id: None,
            timeout: Some(DEFAULT_TIMEOUT),
            connect_timeout: Some(DEFAULT_CONNECT_TIMEOUT),
            pool_idle_timeout: Some(DEFAULT_POOL_IDLE_TIMEOUT),
            user_agent: concat!("brightbox-api-rs/", env!("CARGO_PKG_VERSION")).to_owned(),
            retry: RetryConfig::default(),
        }
    }
}

impl ClientBuilder {
    /// Sets the API base URL, such as `https://api.gb1.brightbox.com/` or a local mock server.
    ///
    /// The URL must use `http` or `https` and must not contain a user name, password, query or fragment. A
    /// missing trailing `/` is added, so `http://127.0.0.1:8080/api` and `http://127.0.0.1:8080/api/` are the same.
    /// The token endpoint is `{base}token` and resources live under `{base}1.0/`.
    pub fn base_url(mut self, url: impl AsRef<str>) -> Self {
        url.as_ref().clone_into(&mut self.base_url);
        self
    }

    /// Sets a separate base URL for the token endpoint (`{auth_url}token`); by default it is the API base URL.
    ///
    /// The Brightbox CLI config file calls this `auth_url`. The same rules as for
    /// [`base_url`](Self::base_url) apply.
    pub fn auth_url(mut self, url: impl AsRef<str>) -> Self {
        self.auth_url = Some(url.as_ref().to_owned());
        self
    }

    /// Sets the API client id (`cli-xxxxx`) and secret used for the OAuth 2.0 client credentials grant.
    pub fn client_credentials(
        mut self,
        client_id: impl Into<String>,
        client_secret: impl Into<SecretString>,
    ) -> Self {
        self.credentials = Credentials::Client {
            id: client_id.into(),
            secret: client_secret.into(),
        };
        self
    }

    /// Sets a user's login (email address or `usr-xxxxx`) and password for the OAuth 2.0 password grant.
    ///
    /// The grant is sent with the OAuth application set by [`application`](Self::application), or with the
    /// Brightbox CLI's public application [`CLI_APP_ID`] when none is set. The token endpoint also returns a
    /// refresh token, which the client uses before it sends the password again.
    pub fn password_credentials(
        mut self,
        username: impl Into<String>,
        password: impl Into<SecretString>,
    ) -> Self {
        self.credentials = Credentials::User {
            username: username.into(),
            password: password.into(),
        };
        self
    }

    /// Sets the password for the password grant, keeping the user name set before, for example by
    /// [`from_cli_config`](Self::from_cli_config). Without a user name, [`build`](Self::build) fails with
    /// [`Error::MissingCredentials`].
    pub fn password(mut self, password: impl Into<SecretString>) -> Self {
        let username = match self.credentials {
            Credentials::User { username, .. } => username,
            Credentials::None | Credentials::Client { .. } => String::new(),
        };
        self.credentials = Credentials::User {
            username,
            password: password.into(),
        };
        self
    }

    /// Sets the OAuth application (`app-xxxxx` and its secret) used with
    /// [`password_credentials`](Self::password_credentials).
    pub fn application(
        mut self,
        app_id: impl Into<String>,
        secret: impl Into<SecretString>,
    ) -> Self {
        self.application = Some((app_id.into(), secret.into()));
        self
    }

    /// Sets an async callback that returns a two-factor code when the token endpoint requires one.
    ///
    /// The callback runs only after the token endpoint returns HTTP 401 with `X-Brightbox-OTP: required`. The code
    /// is then sent once in the `X-Brightbox-OTP` header; returning `None` ends authentication with
    /// [`Error::TwoFactorRequired`]. Concurrent calls share one token request, so the callback runs once for them.
    ///
    /// ```no_run
    /// # async fn run() -> brightbox_api::Result<()> {
    /// use brightbox_api::secrecy::SecretString;
    ///
    /// let client = brightbox_api::Client::builder()
    ///     .password_credentials("alex@example.com", "password")
    ///     .otp_callback(|| async { Some(SecretString::from("123456")) })
    ///     .build()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn otp_callback<F, Fut>(mut self, callback: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Option<SecretString>> + Send + 'static,
    {
        self.otp = Some(OtpCallback::new(Arc::new(move || Box::pin(callback()))));
        self
    }

    /// Sets a blocking callback that returns a two-factor code; see [`otp_callback`](Self::otp_callback).
    ///
    /// The callback runs on a blocking thread through [`tokio::task::spawn_blocking`], so it may read a terminal.
    pub fn otp_callback_blocking<F>(self, callback: F) -> Self
    where
        F: Fn() -> Option<SecretString> + Send + Sync + 'static,
    {
        let callback = Arc::new(callback);
        self.otp_callback(move || {
            let callback = Arc::clone(&callback);
            async move {
                tokio::task::spawn_blocking(move || callback())
                    .await
                    .ok()
                    .flatten()
            }
        })
    }

    /// Sets the account every API call acts on, sent as the `account_id` query parameter.
    ///
    /// API clients belong to one account, so this is only needed for credentials that reach several accounts,
    /// such as a user who collaborates on other accounts.
    pub fn account_id(mut self, id: AccountId) -> Self {
        self.account_id = Some(id);
        self
    }

    /// Sets the time limit of each HTTP request, from sending to the end of the response body. Default 30 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the time limit for opening a connection, TLS handshake included. Default 10 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Removes the per-request and connect time limits.
    ///
    /// Tests that pause tokio's clock need this, together with `pool_idle_timeout(None)`: with a paused clock the
    /// runtime jumps to the next pending timer whenever it waits for I/O, so any timer would fire early.
    pub fn no_timeout(mut self) -> Self {
        self.timeout = None;
        self.connect_timeout = None;
        self
    }

    /// Sets how long an unused pooled connection is kept open; `None` keeps it until the server closes it.
    /// Default 90 s.
    ///
    /// The idle check runs on a tokio timer, so tests with a paused clock set `None`; see
    /// [`no_timeout`](Self::no_timeout).
    pub fn pool_idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.pool_idle_timeout = timeout;
        self
    }

    /// Sets the `User-Agent` header. Default `brightbox-api-rs/<version>`.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Sets how requests are retried; see [`RetryConfig`].
    pub fn retry(mut self, retry: RetryConfig) -> Self {
        self.retry = retry;
        self
    }

    /// Returns whether credentials for the password grant are set.
    pub fn uses_password_grant(&self) -> bool {
        matches!(self.credentials, Credentials::User { .. })
    }

    /// Checks the settings and creates the client. Sends no request: the first token is fetched on the first call.
    ///
    /// # Errors
    ///
    /// - [`Error::MissingCredentials`] when no credentials were set, or the id, secret, user name or password is
    ///   empty.
    /// - [`Error::InvalidId`] when the API client id is not `cli-…` or the application id is not `app-…`.
    /// - [`Error::InvalidBaseUrl`] when the base URL does not parse, is not `http`/`https`, or has a user name,
    ///   password, query or fragment.
    /// - [`Error::HttpClient`] when reqwest cannot create its client.
    pub fn build(self) -> Result<Client> {
        let base_url = normalise_base_url(&self.base_url)?;
        let auth_base = match &self.auth_url {
            Some(url) => normalise_base_url(url)?,
            None => base_url.clone(),
        };
        let token_url = auth_base
            .join("token")
            .map_err(|source| Error::InvalidBaseUrl {
                value: auth_base.to_string(),
                reason: "cannot append the token path".to_owned(),
                source: Some(source),
            })?;
        let grant = match self.credentials {
            Credentials::None => {
                return Err(Error::MissingCredentials {
                    missing: "client_id",
                });
            }
            Credentials::Client { id, secret } => {
                if id.trim().is_empty() {
                    return Err(Error::MissingCredentials {
                        missing: "client_id",
                    });
                }
                if secret.expose_secret().is_empty() {
                    return Err(Error::MissingCredentials {
                        missing: "client_secret",
                    });
                }
                let client_id: ClientId = id.parse()?;
                Grant::ClientCredentials { client_id, secret }
            }
            Credentials::User { username, password } => {
                if username.trim().is_empty() {
                    return Err(Error::MissingCredentials {
                        missing: "username",
                    });
                }
                if password.expose_secret().is_empty() {
                    return Err(Error::MissingCredentials {
                        missing: "password",
                    });
                }
                let (app_id, app_secret) = self.application.unwrap_or_else(|| {
                    (
                        CLI_APP_ID.to_owned(),
                        SecretString::from(CLI_APP_SECRET.to_owned()),
                    )
                });
                if app_secret.expose_secret().is_empty() {
                    return Err(Error::MissingCredentials {
                        missing: "application secret",
                    });
                }
                let app_id: AppId = app_id.parse()?;
                Grant::Password {
                    username,
                    password,
                    app_id,
                    app_secret,
                }
            }
        };

        let mut http = reqwest::Client::builder()
            .user_agent(self.user_agent)
            .pool_idle_timeout(self.pool_idle_timeout);
        if let Some(timeout) = self.timeout {
            http = http.timeout(timeout);
        }
        if let Some(timeout) = self.connect_timeout {
            http = http.connect_timeout(timeout);
        }
        let http = http
            .build()
            .map_err(|source| Error::HttpClient { source })?;

        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base_url,
                token_url,
                grant,
                otp: self.otp,
                account_id: self.account_id,
                retry: self.retry,
                token: tokio::sync::Mutex::new(None),
            }),
        })
    }
}

/// Returns `value` with any user name and password in the URL replaced by
/// `***`, so that an error can show the URL without its credentials.
fn redact_userinfo(value: &str) -> String {
    let Some(scheme_end) = value.find("://") else {
        return value.to_owned();
    };
    let authority_start = scheme_end + 3;
    let authority_end = value[authority_start..]
        .find(['/', '?', '#'])
        .map_or(value.len(), |end| authority_start + end);
    match value[authority_start..authority_end].rfind('@') {
        Some(at) => format!(
            "{}***{}",
            &value[..authority_start],
            &value[authority_start + at..]
        ),
        None => value.to_owned(),
    }
}

pub(crate) fn normalise_base_url(value: &str) -> Result<Url> {
    let invalid = |reason: &str, source: Option<url::ParseError>| Error::InvalidBaseUrl {
        value: redact_userinfo(value),
        reason: reason.to_owned(),
        source,
    };

    let mut url = Url::parse(value).map_err(|e| {
        invalid(
            "not an absolute URL; use a form like https://api.gb1.brightbox.com/",
            Some(e),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(
            "the scheme must be http or https, as in https://api.gb1.brightbox.com/",
            None,
        ));
    }
    if url.cannot_be_a_base() || url.host().is_none() {
        return Err(invalid(
            "the URL has no host; use a form like https://api.gb1.brightbox.com/",
            None,
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "remove the user name and password from the URL; pass credentials with client_credentials()",
            None,
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(
            "remove the query and fragment; use account_id() to select an account",
            None,
        ));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_gets_trailing_slash() {
        let url = normalise_base_url("http://127.0.0.1:8080/api").expect("valid URL");
        assert_eq!(url.as_str(), "http://127.0.0.1:8080/api/");
        let url = normalise_base_url("http://127.0.0.1:8080").expect("valid URL");
        assert_eq!(url.as_str(), "http://127.0.0.1:8080/");
    }

    #[test]
    fn base_url_rejects_bad_forms() {
        for value in [
            "ftp://api.gb1.brightbox.com/",
            "api.gb1.brightbox.com",
            "https://user:pw@api.gb1.brightbox.com/",
            "https://api.gb1.brightbox.com/?account_id=acc-12345",
            "mailto:someone@example.com",
        ] {
            let error = normalise_base_url(value).err();
            assert!(
                matches!(&error, Some(Error::InvalidBaseUrl { value: v, .. }) if *v == redact_userinfo(value)),
                "{value}: {error:?}"
            );
        }
    }

    #[test]
    fn base_url_error_hides_userinfo() {
        let error = normalise_base_url("http://user:SECRET@127.0.0.1/").expect_err("userinfo");
        let text = format!("{error} {error:?}");
        assert!(!text.contains("SECRET"), "{text}");
        assert!(text.contains("http://***@127.0.0.1/"), "{text}");
        assert_eq!(
            redact_userinfo("https://api.example/1.0/?a=b@c"),
            "https://api.example/1.0/?a=b@c"
        );
        assert_eq!(redact_userinfo("not a url"), "not a url");
    }
}
