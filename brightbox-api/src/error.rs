//! The crate's error type.

use std::fmt;
use std::time::Duration;

use reqwest::Method;

use crate::id::{AccountId, ParseIdError, ServerId};
use crate::wait::Resource;

/// Shorthand for results whose error is [`enum@Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong when building a [`Client`](crate::Client) or calling the API.
///
/// Variants are grouped by meaning rather than by HTTP status. Every variant built from an error response carries
/// an [`ApiError`] with the status, `error_name`, `errors[]`, the OAuth `error`/`error_description`, the
/// `X-Request-Id`, the attempts made and the time spent. No variant contains a client secret, a password, an
/// access or refresh token, a two-factor code or an FTP password, so errors are safe to log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// [`ClientBuilder::build`](crate::ClientBuilder::build) was called without complete credentials.
    #[error(
        "missing credentials: {missing} is not set; call ClientBuilder::client_credentials(\"cli-xxxxx\", secret) or ClientBuilder::password_credentials(user, password) before build()"
    )]
    MissingCredentials {
        /// Name of the missing or empty value, such as `"client_secret"` or `"password"`.
        missing: &'static str,
    },

    /// A configuration source (environment variables or the Brightbox CLI config file) is incomplete or malformed.
    #[error("invalid configuration in {origin}: {reason}")]
    Config {
        /// Where the value was read: `environment` or the config file path, with the line when known.
        origin: String,
        /// Problem with the value and how to fix it.
        reason: String,
        /// I/O failure when the config file could not be read.
        #[source]
        source: Option<std::io::Error>,
    },

    /// The base URL given to the builder cannot be used.
    #[error("invalid base URL {value:?}: {reason}")]
    InvalidBaseUrl {
        /// URL as given.
        value: String,
        /// Problem with the value and what to use instead.
        reason: String,
        /// Parse failure, when the value is not a URL at all.
        #[source]
        source: Option<url::ParseError>,
    },

    /// The underlying HTTP client could not be created, for example because no TLS roots could be loaded.
    #[error("failed to build the HTTP client")]
    HttpClient {
        /// Failure reported by reqwest.
        #[source]
        source: reqwest::Error,
    },

    /// A request value was rejected before anything was sent.
    #[error("invalid {field} {value:?}: {reason}")]
    InvalidRequest {
        /// Name of the offending field, as in the API.
        field: &'static str,
        /// Rejected value, or a description of it when the value itself is too long to show.
        value: String,
        /// Problem with the value and how to fix it.
        reason: String,
    },

    /// A string could not be parsed as a typed id.
    #[error(transparent)]
    InvalidId(#[from] ParseIdError),

    /// The token endpoint rejected the credentials, or the API rejected a freshly issued token.
    ///
    /// [`ApiError::oauth_error`] contains the OAuth 2.0 `error` code, such as `invalid_client` or `invalid_grant`.
    #[error(
        "authentication failed: {0}; check the client id and secret, or the user name, password and application"
    )]
    Unauthenticated(Box<ApiError>),

    /// The token endpoint requires a two-factor code (HTTP 401 with `X-Brightbox-OTP: required`).
    #[error("{}", two_factor_message(*.code_rejected))]
    TwoFactorRequired {
        /// Whether a code from the callback was sent and rejected, as opposed to no code being available.
        code_rejected: bool,
        /// Value of the `X-Request-Id` response header, if any.
        request_id: Option<String>,
    },

    /// The API refused the operation (HTTP 403): missing permission, a storage-only API client, or an account
    /// limit such as the RAM or cloud IP limit.
    #[error("forbidden: {0}")]
    Forbidden(Box<ApiError>),

    /// The API returned 404 for a resource.
    #[error("{resource} not found: {api}")]
    NotFound {
        /// Resource that was requested, such as `image img-3ikco`.
        resource: String,
        /// Details of the response.
        api: Box<ApiError>,
    },

    /// The resource is in a state that does not allow the operation (HTTP 409), such as deleting a locked image.
    #[error("conflict: {0}")]
    Conflict(Box<ApiError>),

    /// The API rejected the request body (HTTP 400 or 422); [`ApiError::errors`] lists the reasons.
    #[error("validation failed: {0}")]
    Validation(Box<ApiError>),

    /// The library FTP endpoints returned 410 Gone because Brightbox retired the FTP service in 2023.
    #[error(
        "the Brightbox library FTP service was retired in 2023 ({api}{}); register images from an HTTP URL with ImageSource::HttpUrl (`http_url`) instead",
        .account.as_ref().map(|a| format!(", account {a}")).unwrap_or_default()
    )]
    FtpServiceRetired {
        /// Account whose FTP password was requested; `None` for the scoped `/1.0/account` route.
        account: Option<AccountId>,
        /// Details of the 410 response.
        api: Box<ApiError>,
    },

    /// The API returned 410 Gone for something other than the FTP endpoints.
    #[error("gone: {0}")]
    Gone(Box<ApiError>),

    /// The API returned 429 Too Many Requests after all retries; [`ApiError::retry_after`] contains its delay.
    #[error("rate limited: {0}")]
    RateLimited(Box<ApiError>),

    /// The API returned a 5xx status after all retries that apply.
    #[error("server error: {0}")]
    Server(Box<ApiError>),

    /// The API returned an error status that has no variant of its own.
    #[error(transparent)]
    Api(Box<ApiError>),

    /// The request could not be sent or its response could not be read: connection failure, timeout, reset.
    #[error("{method} {path} failed after {attempts} attempt(s) in {elapsed:.1?}: {}", transport_kind(.source))]
    Transport {
        /// HTTP method of the request.
        method: Method,
        /// URL path of the request, without the query.
        path: String,
        /// Number of attempts made, including retries.
        attempts: u32,
        /// Time from the first attempt to the failure.
        elapsed: Duration,
        /// Failure reported by reqwest.
        #[source]
        source: reqwest::Error,
    },

    /// A response body did not have the expected JSON shape.
    #[error("failed to decode the response to {method} {path}: invalid JSON at `{json_path}`")]
    Decode {
        /// HTTP method of the request.
        method: Method,
        /// URL path of the request, without the query.
        path: String,
        /// Path of the offending value inside the JSON document, such as `[2].status` or `id`.
        json_path: String,
        /// Failure reported by serde_json.
        #[source]
        source: serde_json::Error,
    },

    /// `POST /1.0/servers/{id}/snapshot` succeeded but its `Link` header names no image.
    #[error(
        "the snapshot of server {server} was accepted but the response has no `Link: <.../images/img-...>; rel=snapshot` header{}{}; list the images with source {server} to find it, or use Servers::snapshot, which returns the image",
        if .links.is_empty() { String::new() } else { format!(" (Link headers sent: {})", .links.join(", ")) },
        .request_id.as_ref().map(|id| format!(" (request id {id})")).unwrap_or_default()
    )]
    SnapshotLinkMissing {
        /// Server that was snapshotted.
        server: ServerId,
        /// `Link` header values the response did carry, none of which named a
        /// valid image id with `rel=snapshot`.
        links: Vec<String>,
        /// Value of the `X-Request-Id` response header, if any.
        request_id: Option<String>,
    },

    /// A waiter saw a terminal state (such as `failed` or `deleted`) instead of the target state.
    #[error("{} {} ended in status `{}` while waiting for `{target}`", .last.kind(), .last.id(), .last.status())]
    WaitFailed {
        /// Resource as last returned by the API.
        last: Box<Resource>,
        /// Status the waiter expected.
        target: String,
    },

    /// The target state was not reached before the wait deadline.
    #[error(
        "timed out after {elapsed:.1?} and {polls} polls waiting for {} {} to reach `{target}`; last status `{}`",
        .last.kind(), .last.id(), .last.status()
    )]
    WaitTimedOut {
        /// Resource as last returned by the API.
        last: Box<Resource>,
        /// Status the waiter expected.
        target: String,
        /// Time spent waiting.
        elapsed: Duration,
        /// Number of polls made.
        polls: u32,
    },
}

fn two_factor_message(code_rejected: bool) -> &'static str {
    if code_rejected {
        "the two-factor (OTP) code was rejected: the token endpoint still returned HTTP 401 with X-Brightbox-OTP: required; supply a current code"
    } else {
        "authentication requires a two-factor (OTP) code: the token endpoint returned HTTP 401 with X-Brightbox-OTP: required; set ClientBuilder::otp_callback, or use API client credentials, which do not use two-factor authentication"
    }
}

fn transport_kind(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "request timed out"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_body() || error.is_decode() {
        "failed to read the response body"
    } else {
        "request failed"
    }
}

impl Error {
    /// Returns whether repeating the same request later can succeed.
    ///
    /// True for HTTP 429, 502, 503 and 504, and for transport failures: a connection that failed, timed out or
    /// closed before the whole reply arrived. Idempotent requests are already retried by the client (see
    /// [`RetryConfig`](crate::RetryConfig)) before such an error is returned.
    ///
    /// For a `POST`, only a 429 and a connection that never opened count: after a timeout or a 5xx the server
    /// may have created the image or server, so list the resources before sending the request again.
    pub fn is_retryable(&self) -> bool {
        match self {
            // A POST that may have reached the server can have created the
            // resource, so only a connection that never opened is safe.
            Error::Transport { method, source, .. } if *method == Method::POST => {
                source.is_connect()
            }
            // GET, PUT and DELETE can be sent again safely, including after a reply that was cut off on a
            // reused connection, as when a server restarts between two calls.
            Error::Transport { source, .. } => !source.is_builder() && !source.is_redirect(),
            other => other.api_error().is_some_and(|api| {
                if api.method == Method::POST {
                    // 429 rejects the request before any work; a 5xx may come
                    // after the resource was created.
                    api.status == 429
                } else {
                    is_retryable_status(api.status)
                }
            }),
        }
    }

    /// Returns the details of the error response behind this error, if there was one.
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            Error::Unauthenticated(api)
            | Error::Forbidden(api)
            | Error::NotFound { api, .. }
            | Error::Conflict(api)
            | Error::Validation(api)
            | Error::FtpServiceRetired { api, .. }
            | Error::Gone(api)
            | Error::RateLimited(api)
            | Error::Server(api)
            | Error::Api(api) => Some(api),
            _ => None,
        }
    }

    /// Returns the HTTP status of the response behind this error, if there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::TwoFactorRequired { .. } => Some(401),
            other => other.api_error().map(|api| api.status),
        }
    }

    /// Returns the `X-Request-Id` of the response behind this error, if the server sent one.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Error::TwoFactorRequired { request_id, .. }
            | Error::SnapshotLinkMissing { request_id, .. } => request_id.as_deref(),
            other => other.api_error().and_then(|api| api.request_id.as_deref()),
        }
    }

    /// Returns the last resource a waiter saw, for [`Error::WaitFailed`] and [`Error::WaitTimedOut`].
    pub fn last_poll(&self) -> Option<&Resource> {
        match self {
            Error::WaitFailed { last, .. } | Error::WaitTimedOut { last, .. } => Some(last),
            _ => None,
        }
    }

    /// Maps an error response to the variant for its meaning.
    pub(crate) fn from_response(resource: &str, api: ApiError) -> Self {
        let api = Box::new(api);
        match api.status {
            401 => Error::Unauthenticated(api),
            403 => Error::Forbidden(api),
            404 => Error::NotFound {
                resource: resource.to_owned(),
                api,
            },
            409 => Error::Conflict(api),
            400 | 422 => Error::Validation(api),
            410 => Error::Gone(api),
            429 => Error::RateLimited(api),
            500..=599 => Error::Server(api),
            _ => Error::Api(api),
        }
    }
}

/// Returns whether an HTTP status is worth retrying: 429, 502, 503 or 504.
pub(crate) fn is_retryable_status(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

/// Details of an error response from the API or the token endpoint.
///
/// The API sends `{"error_name": "...", "errors": ["...", ...]}`. The OAuth layer sends
/// `{"error": "...", "error_description": "..."}`, which is kept in `oauth_error` and `oauth_error_description`
/// and also copied into `error_name` and `errors` so that one field covers both shapes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApiError {
    /// HTTP status code.
    pub status: u16,
    /// HTTP method of the request.
    pub method: Method,
    /// URL path of the request, without the query.
    pub path: String,
    /// Machine-readable error name, such as `unprocessable_entity`.
    pub error_name: Option<String>,
    /// Every entry of the `errors` array, in order. Entries that are not strings are kept as JSON text.
    pub errors: Vec<String>,
    /// OAuth 2.0 `error` code, such as `invalid_client` or `invalid_token`.
    pub oauth_error: Option<String>,
    /// OAuth 2.0 `error_description`.
    pub oauth_error_description: Option<String>,
    /// Value of the `X-Request-Id` response header, if any.
    pub request_id: Option<String>,
    /// Delay requested by a `Retry-After` header, if any.
    pub retry_after: Option<Duration>,
    /// Number of attempts made, including retries.
    pub attempts: u32,
    /// Time from the first attempt to this response.
    pub elapsed: Duration,
    /// Start of the body when it was not a JSON error document, cut to 512 bytes.
    pub body_excerpt: Option<String>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} returned HTTP {}",
            self.method, self.path, self.status
        )?;
        if let Some(name) = &self.error_name {
            write!(f, " {name}")?;
        }
        if !self.errors.is_empty() {
            write!(f, ": {}", self.errors.join("; "))?;
        } else if let Some(body) = &self.body_excerpt {
            write!(f, ": {body}")?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " (request id {id})")?;
        }
        if self.attempts > 1 {
            write!(
                f,
                " after {} attempts in {:.1?}",
                self.attempts, self.elapsed
            )?;
        }
        if let Some(delay) = self.retry_after {
            write!(f, "; the server asked to retry after {} s", delay.as_secs())?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}
