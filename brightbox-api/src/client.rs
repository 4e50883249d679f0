//! The [`Client`], its builder, and the request pipeline every resource call goes through.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::Method;
use reqwest::header::{ACCEPT, HeaderMap, WWW_AUTHENTICATE};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use tracing::Instrument;
use url::Url;

use crate::accounts::Accounts;
use crate::auth::{CachedToken, OAuthErrorBody};
use crate::error::{ApiError, Error, Result, is_retryable_status};
use crate::id::AccountId;
use crate::images::Images;
use crate::retry::{RetryConfig, parse_retry_after};

/// Base URL of the Brightbox API in region `gb1`.
pub const DEFAULT_BASE_URL: &str = "https://api.gb1.brightbox.com/";

/// Per-request timeout used when [`ClientBuilder::timeout`] is not called.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long an unused pooled connection is kept when [`ClientBuilder::pool_idle_timeout`] is not called.
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Response header that carries the server's request id.
const REQUEST_ID_HEADER: &str = "x-request-id";

/// Response header whose value `required` means the token request needs a two-factor code.
pub(crate) const OTP_HEADER: &str = "x-brightbox-otp";

/// Maximum length in bytes of the body excerpt kept in an [`ApiError`].
const BODY_EXCERPT_LEN: usize = 512;

/// Async client of the Brightbox API.
///
/// Cloning is cheap: clones share one connection pool and one cached access token. `Debug` output shows the base
/// URL, client id and account id but never the client secret or the token.
///
/// ```no_run
/// # async fn run() -> brightbox_api::Result<()> {
/// let client = brightbox_api::Client::builder()
///     .client_credentials("cli-abc12", "client-secret")
///     .build()?;
/// for image in client.images().list().await? {
///     println!("{} {}", image.id, image.status);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) http: reqwest::Client,
    pub(crate) base_url: Url,
    pub(crate) client_id: String,
    pub(crate) client_secret: SecretString,
    pub(crate) account_id: Option<AccountId>,
    pub(crate) retry: RetryConfig,
    /// Cached access token. The lock is held while a new token is requested, so concurrent callers wait for that
    /// one request instead of sending their own.
    pub(crate) token: tokio::sync::Mutex<Option<CachedToken>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.base_url.as_str())
            .field("client_id", &self.inner.client_id)
            .field("client_secret", &"[REDACTED]")
            .field("account_id", &self.inner.account_id)
            .field("retry", &self.inner.retry)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Starts building a client; see [`ClientBuilder`].
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// Returns the account endpoints.
    pub fn accounts(&self) -> Accounts<'_> {
        Accounts::new(self)
    }

    /// Returns the image endpoints.
    pub fn images(&self) -> Images<'_> {
        Images::new(self)
    }

    /// Returns the base URL, always ending in `/`.
    pub fn base_url(&self) -> &Url {
        &self.inner.base_url
    }

    /// Returns the account id sent as `account_id` on every API call, if one was set.
    pub fn account_id(&self) -> Option<&AccountId> {
        self.inner.account_id.as_ref()
    }

    /// Returns the API client id used for authentication.
    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }
}

/// Builder of a [`Client`].
///
/// Only [`client_credentials`](Self::client_credentials) is required. Values are checked in
/// [`build`](Self::build).
#[derive(Clone, Debug)]
pub struct ClientBuilder {
    base_url: String,
    client_id: Option<String>,
    client_secret: Option<SecretString>,
    account_id: Option<AccountId>,
    timeout: Option<Duration>,
    pool_idle_timeout: Option<Duration>,
    user_agent: String,
    retry: RetryConfig,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            client_id: None,
            client_secret: None,
            account_id: None,
            timeout: Some(DEFAULT_TIMEOUT),
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

    /// Sets the API client id (`cli-xxxxx`) and secret used for the OAuth 2.0 client credentials grant.
    pub fn client_credentials(
        mut self,
        client_id: impl Into<String>,
        client_secret: impl Into<SecretString>,
    ) -> Self {
        self.client_id = Some(client_id.into());
        self.client_secret = Some(client_secret.into());
        self
    }

    /// Sets the account every API call acts on, sent as the `account_id` query parameter.
    ///
    /// API clients belong to one account, so this is only needed for credentials that reach several accounts.
    pub fn account_id(mut self, id: AccountId) -> Self {
        self.account_id = Some(id);
        self
    }

    /// Sets the time limit of each HTTP request, from sending to the end of the response body. Default 30 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Removes the per-request time limit.
    ///
    /// Tests that pause tokio's clock need this, together with `pool_idle_timeout(None)`: with a paused clock the
    /// runtime jumps to the next pending timer whenever it waits for I/O, so any timer would fire early.
    pub fn no_timeout(mut self) -> Self {
        self.timeout = None;
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

    /// Sets how idempotent requests are retried; see [`RetryConfig`].
    pub fn retry(mut self, retry: RetryConfig) -> Self {
        self.retry = retry;
        self
    }

    /// Checks the settings and creates the client. Sends no request: the first token is fetched on the first call.
    ///
    /// # Errors
    ///
    /// - [`Error::MissingCredentials`] when the client id or secret was not set or is empty.
    /// - [`Error::InvalidBaseUrl`] when the base URL does not parse, is not `http`/`https`, or has a user name,
    ///   password, query or fragment.
    /// - [`Error::HttpClient`] when reqwest cannot create its client.
    pub fn build(self) -> Result<Client> {
        let base_url = normalise_base_url(&self.base_url)?;

        let client_id =
            self.client_id
                .filter(|id| !id.trim().is_empty())
                .ok_or(Error::MissingCredentials {
                    missing: "client_id",
                })?;
        let client_secret = self
            .client_secret
            .filter(|secret| !secret.expose_secret().is_empty())
            .ok_or(Error::MissingCredentials {
                missing: "client_secret",
            })?;

        let mut http = reqwest::Client::builder()
            .user_agent(self.user_agent)
            .pool_idle_timeout(self.pool_idle_timeout);
        if let Some(timeout) = self.timeout {
            http = http.timeout(timeout);
        }
        let http = http
            .build()
            .map_err(|source| Error::HttpClient { source })?;

        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base_url,
                client_id,
                client_secret,
                account_id: self.account_id,
                retry: self.retry,
                token: tokio::sync::Mutex::new(None),
            }),
        })
    }
}

fn normalise_base_url(value: &str) -> Result<Url> {
    let invalid = |reason: &str, source: Option<url::ParseError>| Error::InvalidBaseUrl {
        value: value.to_owned(),
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

/// One API call as the resource modules describe it.
#[derive(Debug)]
pub(crate) struct Call {
    pub(crate) method: Method,
    /// Path relative to the base URL, such as `1.0/images/img-3ikco`.
    pub(crate) path: String,
    /// Resource named by a 404 error, such as `image img-3ikco`.
    pub(crate) resource: String,
    pub(crate) body: Option<serde_json::Value>,
    /// Whether the call may be repeated after a retryable failure.
    pub(crate) idempotent: bool,
}

impl Call {
    pub(crate) fn get(path: String, resource: String) -> Self {
        Self {
            method: Method::GET,
            path,
            resource,
            body: None,
            idempotent: true,
        }
    }

    pub(crate) fn post(path: String, resource: String, body: Option<serde_json::Value>) -> Self {
        Self {
            method: Method::POST,
            path,
            resource,
            body,
            idempotent: false,
        }
    }
}

/// Successful response of an API call.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) path: String,
    pub(crate) body: Vec<u8>,
}

impl Client {
    /// Sends `call` and decodes a successful JSON body as `T`.
    pub(crate) async fn call_json<T: DeserializeOwned>(&self, call: &Call) -> Result<T> {
        let reply = self.execute(call).await?;
        decode(&call.method, &reply.path, &reply.body)
    }

    /// Sends `call` with a bearer token, retrying and re-authenticating as described in [`RetryConfig`] and
    /// returning the body of a 2xx response.
    pub(crate) async fn execute(&self, call: &Call) -> Result<Reply> {
        let url = self.api_url(&call.path)?;
        let path = url.path().to_owned();
        let span =
            tracing::debug_span!("brightbox_api.request", method = %call.method, path = %path);
        self.execute_inner(call, url, path).instrument(span).await
    }

    async fn execute_inner(&self, call: &Call, url: Url, path: String) -> Result<Reply> {
        let inner = &self.inner;
        let max_attempts = inner.retry.max_attempts.max(1);
        let mut attempt = 0u32;
        let mut token_replayed = false;

        loop {
            attempt += 1;
            let token = inner.access_token().await?;

            let mut request = inner
                .http
                .request(call.method.clone(), url.clone())
                .bearer_auth(token.expose_secret())
                .header(ACCEPT, "application/json");
            if let Some(body) = &call.body {
                request = request.json(body);
            }

            let outcome = match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let headers = response.headers().clone();
                    response.bytes().await.map(|body| (status, headers, body))
                }
                Err(error) => Err(error),
            };
            let (status, headers, body) = match outcome {
                Ok(parts) => parts,
                Err(source) => {
                    let error = Error::Transport {
                        method: call.method.clone(),
                        path: path.clone(),
                        attempts: attempt,
                        source,
                    };
                    if call.idempotent && error.is_retryable() && attempt < max_attempts {
                        let delay = inner.retry.backoff(attempt);
                        tracing::info!(attempt, delay_ms = delay.as_millis() as u64, error = %error, "retrying after a transport failure");
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    return Err(error);
                }
            };
            let request_id = header_string(&headers, REQUEST_ID_HEADER);

            if (200..300).contains(&status) {
                tracing::debug!(
                    status,
                    request_id = request_id.as_deref(),
                    "request succeeded"
                );
                return Ok(Reply {
                    path,
                    body: body.to_vec(),
                });
            }

            if status == 401 {
                if otp_required(&headers) {
                    return Err(Error::OtpRequired { request_id });
                }
                let oauth = OAuthErrorBody::parse(&body);
                if !token_replayed && token_rejected(&headers, &oauth) {
                    token_replayed = true;
                    tracing::info!(
                        request_id = request_id.as_deref(),
                        "the API rejected the access token; requesting a new one and replaying the request once"
                    );
                    inner.invalidate_token(&token).await;
                    continue;
                }
                return Err(Error::Auth {
                    status,
                    error: oauth.error.unwrap_or_else(|| "unauthorized".to_owned()),
                    description: oauth.error_description,
                    request_id,
                });
            }

            if status == 404 {
                return Err(Error::NotFound {
                    resource: call.resource.clone(),
                    method: call.method.clone(),
                    path,
                    request_id,
                });
            }

            let retry_after = parse_retry_after(&headers, SystemTime::now());
            let error = api_error(
                &call.method,
                &path,
                status,
                request_id,
                &body,
                attempt,
                retry_after,
            );
            let retry_allowed = call.idempotent
                && is_retryable_status(status)
                && attempt < max_attempts
                && retry_after.is_none_or(|delay| delay <= inner.retry.max_retry_after);
            if !retry_allowed {
                return Err(Error::Api(Box::new(error)));
            }

            let delay = retry_after.unwrap_or_else(|| inner.retry.backoff(attempt));
            tracing::info!(
                attempt,
                status,
                delay_ms = delay.as_millis() as u64,
                request_id = error.request_id.as_deref(),
                "retrying after a retryable HTTP status"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// Builds the absolute URL of an API path and adds `account_id` when set.
    fn api_url(&self, path: &str) -> Result<Url> {
        let mut url = self
            .inner
            .base_url
            .join(path)
            .map_err(|source| Error::InvalidBaseUrl {
                value: self.inner.base_url.to_string(),
                reason: format!("cannot append the API path {path:?}"),
                source: Some(source),
            })?;
        if let Some(account) = &self.inner.account_id {
            url.query_pairs_mut()
                .append_pair("account_id", account.as_str());
        }
        Ok(url)
    }
}

/// Decodes a JSON body, naming the JSON path of the first mismatch in the error.
pub(crate) fn decode<T: DeserializeOwned>(method: &Method, path: &str, body: &[u8]) -> Result<T> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let json_path = describe_json_path(&error);
        Error::Decode {
            method: method.clone(),
            path: path.to_owned(),
            json_path,
            source: error.into_inner(),
        }
    })
}

/// Returns the JSON path of a decode error, naming the field itself when a field is missing.
///
/// serde reports a missing field at the enclosing object, so `{"name": "x"}` without `id` has the path `.`.
/// This function appends the field name taken from serde's `missing field` message.
fn describe_json_path(error: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let path = error.path().to_string();
    let message = error.inner().to_string();
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    match missing {
        Some(field) if path == "." => field.to_owned(),
        Some(field) => format!("{path}.{field}"),
        None => path,
    }
}

pub(crate) fn header_string(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

pub(crate) fn otp_required(headers: &HeaderMap) -> bool {
    headers
        .get(OTP_HEADER)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim().eq_ignore_ascii_case("required"))
}

/// Returns whether a 401 reports an invalid or expired access token, which a new token can fix.
fn token_rejected(headers: &HeaderMap, body: &OAuthErrorBody) -> bool {
    if body.error.as_deref() == Some("invalid_token") {
        return true;
    }
    headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.contains("invalid_token"))
}

/// Builds an [`ApiError`] from an error response, accepting both the API and the OAuth error body shapes.
pub(crate) fn api_error(
    method: &Method,
    path: &str,
    status: u16,
    request_id: Option<String>,
    body: &[u8],
    attempts: u32,
    retry_after: Option<Duration>,
) -> ApiError {
    #[derive(serde::Deserialize)]
    struct Body {
        error_name: Option<String>,
        errors: Option<serde_json::Value>,
        error: Option<String>,
        error_description: Option<String>,
    }

    let parsed = serde_json::from_slice::<Body>(body).ok();
    let (error_name, errors) = match parsed {
        Some(parsed) => {
            let mut errors = match parsed.errors {
                Some(serde_json::Value::Array(items)) => {
                    items.into_iter().map(json_to_text).collect()
                }
                Some(serde_json::Value::Null) | None => Vec::new(),
                Some(other) => vec![json_to_text(other)],
            };
            errors.extend(parsed.error_description);
            (parsed.error_name.or(parsed.error), errors)
        }
        None => (None, Vec::new()),
    };
    let body_excerpt =
        (error_name.is_none() && errors.is_empty() && !body.is_empty()).then(|| excerpt(body));

    ApiError {
        status,
        method: method.clone(),
        path: path.to_owned(),
        error_name,
        errors,
        request_id,
        retry_after,
        attempts,
        body_excerpt,
    }
}

fn json_to_text(value: serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text,
        other => other.to_string(),
    }
}

fn excerpt(body: &[u8]) -> String {
    let cut = &body[..body.len().min(BODY_EXCERPT_LEN)];
    String::from_utf8_lossy(cut).trim().to_owned()
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
                matches!(&error, Some(Error::InvalidBaseUrl { value: v, .. }) if v == value),
                "{value}: {error:?}"
            );
        }
    }

    #[test]
    fn api_error_reads_both_body_shapes() {
        let api = api_error(
            &Method::POST,
            "/1.0/images",
            422,
            None,
            br#"{"error_name":"unprocessable_entity","errors":["Arch is invalid",{"field":"name"}]}"#,
            1,
            None,
        );
        assert_eq!(api.error_name.as_deref(), Some("unprocessable_entity"));
        assert_eq!(api.errors, vec!["Arch is invalid", r#"{"field":"name"}"#]);

        let oauth = api_error(
            &Method::GET,
            "/1.0/images",
            403,
            None,
            br#"{"error":"insufficient_scope","error_description":"Scope orbit only"}"#,
            1,
            None,
        );
        assert_eq!(oauth.error_name.as_deref(), Some("insufficient_scope"));
        assert_eq!(oauth.errors, vec!["Scope orbit only"]);

        let html = api_error(
            &Method::GET,
            "/1.0/images",
            502,
            None,
            b"<html>Bad Gateway</html>",
            3,
            None,
        );
        assert_eq!(
            html.body_excerpt.as_deref(),
            Some("<html>Bad Gateway</html>")
        );
        assert!(html.to_string().contains("after 3 attempts"), "{html}");
    }
}
