//! The [`Client`] and the request pipeline every resource call goes through.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::Method;
use reqwest::header::{ACCEPT, HeaderMap, WWW_AUTHENTICATE};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use tracing::Instrument;
use url::Url;

use crate::accounts::Accounts;
use crate::auth::{CachedToken, Grant, OAuthErrorBody, OtpCallback};
use crate::builder::ClientBuilder;
use crate::error::{ApiError, Error, Result, is_retryable_status};
use crate::id::AccountId;
use crate::images::Images;
use crate::retry::{RetryConfig, parse_retry_after};
use crate::servers::{ServerTypes, Servers, Volumes, Zones};

/// Response header that carries the server's request id.
const REQUEST_ID_HEADER: &str = "x-request-id";

/// Response header whose value `required` means the token request needs a two-factor code.
pub(crate) const OTP_HEADER: &str = "x-brightbox-otp";

/// Maximum length in bytes of the body excerpt kept in an [`ApiError`].
const BODY_EXCERPT_LEN: usize = 512;

/// Async client of the Brightbox API.
///
/// Cloning is cheap: clones share one connection pool and one cached access token. `Debug` output shows the base
/// URL, the client or application id, the user name and the account id, but never a secret, password or token.
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
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) http: reqwest::Client,
    pub(crate) base_url: Url,
    pub(crate) token_url: Url,
    pub(crate) grant: Grant,
    pub(crate) otp: Option<OtpCallback>,
    pub(crate) account_id: Option<AccountId>,
    pub(crate) retry: RetryConfig,
    /// Cached access token. The lock is held while a new token is requested, so concurrent callers wait for that
    /// one request instead of sending their own.
    pub(crate) token: tokio::sync::Mutex<Option<CachedToken>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let username = match &self.inner.grant {
            Grant::Password { username, .. } => Some(username.as_str()),
            Grant::ClientCredentials { .. } => None,
        };
        f.debug_struct("Client")
            .field("base_url", &self.inner.base_url.as_str())
            .field("grant", &self.inner.grant.kind())
            .field("client_id", &self.inner.grant.basic_user())
            .field("username", &username)
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

    /// Returns a valid OAuth access token from the client's cache,
    /// requesting a new one when none is cached or it is due for renewal.
    ///
    /// Orbit, Brightbox's object store, takes the same token in its
    /// `X-Auth-Token` header, so an Orbit client can share this cache.
    ///
    /// # Errors
    ///
    /// The token errors of any API call: [`Error::Unauthenticated`],
    /// [`Error::TwoFactorRequired`] or a transport error.
    pub async fn access_token(&self) -> Result<SecretString> {
        self.inner.access_token().await
    }

    /// Marks `rejected` as no longer valid, so that the next
    /// [`Client::access_token`] requests a new token. A token that another
    /// task already replaced stays in place.
    pub async fn invalidate_access_token(&self, rejected: &SecretString) {
        self.inner.invalidate_token(rejected).await;
    }

    /// Returns the account endpoints.
    pub fn accounts(&self) -> Accounts<'_> {
        Accounts::new(self)
    }

    /// Returns the image endpoints.
    pub fn images(&self) -> Images<'_> {
        Images::new(self)
    }

    /// Returns the server endpoints.
    pub fn servers(&self) -> Servers<'_> {
        Servers::new(self)
    }

    /// Returns the volume endpoints.
    pub fn volumes(&self) -> Volumes<'_> {
        Volumes::new(self)
    }

    /// Returns the server type endpoints.
    pub fn server_types(&self) -> ServerTypes<'_> {
        ServerTypes::new(self)
    }

    /// Returns the zone endpoints.
    pub fn zones(&self) -> Zones<'_> {
        Zones::new(self)
    }

    /// Returns the base URL, always ending in `/`.
    pub fn base_url(&self) -> &Url {
        &self.inner.base_url
    }

    /// Returns the account id sent as `account_id` on every API call, if one was set.
    pub fn account_id(&self) -> Option<&AccountId> {
        self.inner.account_id.as_ref()
    }

    /// Returns the id sent as the HTTP Basic user name to the token endpoint: the API client id (`cli-…`) or,
    /// for the password grant, the application id (`app-…`).
    pub fn client_id(&self) -> &str {
        self.inner.grant.basic_user()
    }
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

    /// Creates a `POST`. It is resent only when no request reached the server (the connection could not be
    /// opened) or the server returned 429, because a repeat could create a second resource.
    pub(crate) fn post(path: String, resource: String, body: Option<serde_json::Value>) -> Self {
        Self {
            method: Method::POST,
            path,
            resource,
            body,
            idempotent: false,
        }
    }

    /// Creates a `PUT`, which sets a state and may be repeated.
    pub(crate) fn put(path: String, resource: String, body: Option<serde_json::Value>) -> Self {
        Self {
            method: Method::PUT,
            path,
            resource,
            body,
            idempotent: true,
        }
    }

    /// Creates a `DELETE`, which may be repeated.
    pub(crate) fn delete(path: String, resource: String) -> Self {
        Self {
            method: Method::DELETE,
            path,
            resource,
            body: None,
            idempotent: true,
        }
    }
}

/// Successful response of an API call.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) path: String,
    pub(crate) headers: HeaderMap,
    pub(crate) request_id: Option<String>,
    pub(crate) body: Vec<u8>,
}

impl Client {
    /// Sends `call` and decodes a successful JSON body as `T`.
    pub(crate) async fn call_json<T: DeserializeOwned>(&self, call: &Call) -> Result<T> {
        let reply = self.execute(call).await?;
        decode(&call.method, &reply.path, &reply.body)
    }

    /// Sends `call` with a bearer token, retrying and re-authenticating as described in [`RetryConfig`] and
    /// returning a 2xx response.
    pub(crate) async fn execute(&self, call: &Call) -> Result<Reply> {
        let url = self.api_url(&call.path)?;
        let path = url.path().to_owned();
        let span = tracing::debug_span!(
            "brightbox_api.request",
            method = %call.method,
            path = %path,
            request_id = tracing::field::Empty,
            status = tracing::field::Empty,
        );
        self.execute_inner(call, url, path).instrument(span).await
    }

    async fn execute_inner(&self, call: &Call, url: Url, path: String) -> Result<Reply> {
        let inner = &self.inner;
        let max_attempts = inner.retry.max_attempts.max(1);
        let started = Instant::now();
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
                    // A failure while opening the connection (TCP, TLS) means no request reached the server, so even a POST is
                    // safe to resend.
                    let resend_safe = call.idempotent || source.is_connect();
                    let error = Error::Transport {
                        method: call.method.clone(),
                        path: path.clone(),
                        attempts: attempt,
                        elapsed: started.elapsed(),
                        source,
                    };
                    if resend_safe && error.is_retryable() && attempt < max_attempts {
                        let delay = inner.retry.backoff(attempt);
                        tracing::info!(attempt, delay_ms = delay.as_millis() as u64, error = %error, "retrying after a transport failure");
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    tracing::debug!(error = %error, "request failed");
                    return Err(error);
                }
            };
            let request_id = header_string(&headers, REQUEST_ID_HEADER);
            let span = tracing::Span::current();
            span.record("status", status);
            if let Some(id) = &request_id {
                span.record("request_id", id.as_str());
            }

            if (200..300).contains(&status) {
                tracing::debug!(status, attempt, "request succeeded");
                return Ok(Reply {
                    status,
                    path,
                    headers,
                    request_id,
                    body: body.to_vec(),
                });
            }

            if status == 401 {
                if otp_required(&headers) {
                    return Err(Error::TwoFactorRequired {
                        code_rejected: false,
                        request_id,
                    });
                }
                let oauth = OAuthErrorBody::parse(&body);
                if !token_replayed && token_rejected(&headers, &oauth) {
                    token_replayed = true;
                    tracing::info!(
                        "the API rejected the access token; requesting a new one and replaying the request once"
                    );
                    inner.invalidate_token(&token).await;
                    continue;
                }
            }

            let retry_after = parse_retry_after(&headers, SystemTime::now());
            let mut error = api_error(
                &call.method,
                &path,
                status,
                request_id,
                &body,
                attempt,
                retry_after,
            );
            error.elapsed = started.elapsed();
            // A 429 means the server did not process the request, so a POST may be resent after it.
            let resend_safe = call.idempotent || status == 429;
            let retry_allowed = resend_safe
                && is_retryable_status(status)
                && attempt < max_attempts
                && retry_after.is_none_or(|delay| delay <= inner.retry.max_retry_after);
            if !retry_allowed {
                let error = Error::from_response(&call.resource, error);
                tracing::debug!(error = %error, "request failed");
                return Err(error);
            }

            let delay = inner.retry.delay_before_retry(attempt, retry_after);
            tracing::info!(
                attempt,
                status,
                delay_ms = delay.as_millis() as u64,
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
    let mut oauth_error = None;
    let mut oauth_error_description = None;
    let (error_name, errors) = match parsed {
        Some(parsed) => {
            oauth_error.clone_from(&parsed.error);
            oauth_error_description.clone_from(&parsed.error_description);
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
        oauth_error,
        oauth_error_description,
        request_id,
        retry_after,
        attempts,
        elapsed: Duration::ZERO,
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
