//! The crate's error type.

use std::fmt;
use std::time::Duration;

use reqwest::Method;

use crate::id::{AccountId, ImageId, ParseIdError};
use crate::images::{Image, ImageStatus};

/// Shorthand for results whose error is [`enum@Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong when building a [`Client`](crate::Client) or calling the API.
///
/// Variants are grouped by meaning rather than by HTTP status. No variant contains a client secret, an access token
/// or an FTP password, so errors are safe to log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// [`ClientBuilder::build`](crate::ClientBuilder::build) was called without a client id or client secret.
    #[error(
        "missing API client credentials: {missing} is not set; call ClientBuilder::client_credentials(\"cli-xxxxx\", secret) before build()"
    )]
    MissingCredentials {
        /// Name of the missing or empty value: `"client_id"` or `"client_secret"`.
        missing: &'static str,
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
        /// Rejected value.
        value: String,
        /// Problem with the value and how to fix it.
        reason: String,
    },

    /// A string could not be parsed as a typed id.
    #[error(transparent)]
    InvalidId(#[from] ParseIdError),

    /// The token endpoint rejected the credentials, or the API rejected a freshly issued token.
    ///
    /// `error` and `description` are the OAuth 2.0 `error` and `error_description` fields, such as
    /// `invalid_client` or `invalid_grant`.
    #[error("authentication failed with HTTP {status} `{error}`{}: check the API client id and secret",
        .description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Auth {
        /// HTTP status of the rejection.
        status: u16,
        /// OAuth 2.0 error code.
        error: String,
        /// Human-readable explanation sent by the server, if any.
        description: Option<String>,
        /// Value of the `X-Request-Id` response header, if any.
        request_id: Option<String>,
    },

    /// The token endpoint requires a two-factor code (HTTP 401 with `X-Brightbox-OTP: required`).
    #[error(
        "authentication requires a two-factor (OTP) code: the token endpoint returned HTTP 401 with X-Brightbox-OTP: required; use API client credentials, which do not use two-factor authentication"
    )]
    OtpRequired {
        /// Value of the `X-Request-Id` response header, if any.
        request_id: Option<String>,
    },

    /// The API returned 404 for a resource.
    #[error("{resource} not found: {method} {path} returned HTTP 404")]
    NotFound {
        /// Resource that was requested, such as `image img-3ikco`.
        resource: String,
        /// HTTP method of the request.
        method: Method,
        /// URL path of the request, without the query.
        path: String,
        /// Value of the `X-Request-Id` response header, if any.
        request_id: Option<String>,
    },

    /// `reset_ftp_password` returned 410 Gone because the library FTP service no longer exists.
    #[error(
        "the Brightbox library FTP service was retired in 2023 (POST {path} returned HTTP 410 Gone for account {account}); register images from an HTTP URL with ImageSource::HttpUrl instead"
    )]
    FtpServiceRetired {
        /// Account whose FTP password was requested.
        account: AccountId,
        /// URL path of the request, without the query.
        path: String,
        /// Value of the `X-Request-Id` response header, if any.
        request_id: Option<String>,
    },

    /// The API returned an error status other than those with their own variant.
    #[error(transparent)]
    Api(Box<ApiError>),

    /// The request could not be sent or its response could not be read: connection failure, timeout, reset.
    #[error("{method} {path} failed after {attempts} attempt(s): {}", transport_kind(.source))]
    Transport {
        /// HTTP method of the request.
        method: Method,
        /// URL path of the request, without the query.
        path: String,
        /// Number of attempts made, including retries.
        attempts: u32,
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

    /// An image reached `failed`, `deleting` or `deleted` while a waiter expected it to become available.
    #[error("image {} ended in status `{}` while waiting for it to become available", .image.id, .image.status)]
    ImageFailed {
        /// Image as last returned by the API.
        image: Box<Image>,
    },

    /// An image did not become available before the wait deadline.
    #[error(
        "timed out after {elapsed:?} waiting for image {id} to become available; last status `{last_status}`"
    )]
    WaitTimedOut {
        /// Image that was polled.
        id: ImageId,
        /// Status seen at the last poll.
        last_status: ImageStatus,
        /// Time spent waiting.
        elapsed: Duration,
    },
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
    /// True for HTTP 429, 502, 503 and 504, and for connection failures and timeouts. Idempotent requests are
    /// already retried by the client (see [`RetryConfig`](crate::RetryConfig)) before such an error is returned.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Api(api) => is_retryable_status(api.status),
            Error::Transport { source, .. } => source.is_connect() || source.is_timeout(),
            _ => false,
        }
    }

    /// Returns the HTTP status of the response behind this error, if there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api(api) => Some(api.status),
            Error::Auth { status, .. } => Some(*status),
            Error::OtpRequired { .. } => Some(401),
            Error::NotFound { .. } => Some(404),
            Error::FtpServiceRetired { .. } => Some(410),
            _ => None,
        }
    }

    /// Returns the `X-Request-Id` of the response behind this error, if the server sent one.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Error::Api(api) => api.request_id.as_deref(),
            Error::Auth { request_id, .. }
            | Error::OtpRequired { request_id }
            | Error::NotFound { request_id, .. }
            | Error::FtpServiceRetired { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }
}

/// Returns whether an HTTP status is worth retrying: 429, 502, 503 or 504.
pub(crate) fn is_retryable_status(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

/// Details of an error response from the API.
///
/// The API sends `{"error_name": "...", "errors": ["...", ...]}`; the OAuth layer sends
/// `{"error": "...", "error_description": "..."}`, which lands in `error_name` and `errors` too.
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
    /// Value of the `X-Request-Id` response header, if any.
    pub request_id: Option<String>,
    /// Delay requested by a `Retry-After` header, if any.
    pub retry_after: Option<Duration>,
    /// Number of attempts made, including retries.
    pub attempts: u32,
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
            write!(f, " after {} attempts", self.attempts)?;
        }
        if let Some(delay) = self.retry_after {
            write!(f, "; the server asked to retry after {} s", delay.as_secs())?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}
