//! The crate's error type.

use std::path::PathBuf;

/// A boxed error from a caller-supplied component, such as a [`TokenProvider`](crate::TokenProvider).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Result alias used by every fallible call in this crate.
pub type Result<T, E = OrbitError> = std::result::Result<T, E>;

/// Errors returned by [`OrbitClient`](crate::OrbitClient), grouped by meaning.
///
/// No variant carries a token, a temp URL key or a temp URL signature. Use
/// [`OrbitError::is_retryable`] to decide whether repeating the call can help.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OrbitError {
    /// A builder or options value is invalid.
    #[error("invalid Orbit configuration: {field}: {reason}")]
    InvalidConfig {
        /// The builder method or options field.
        field: &'static str,
        /// The problem and its fix.
        reason: String,
    },

    /// A container or object name cannot be used in a Swift path.
    #[error("invalid {kind} name {value:?}: {reason}")]
    InvalidName {
        /// `"container"` or `"object"`.
        kind: &'static str,
        /// The rejected name.
        value: String,
        /// The rule the name breaks.
        reason: &'static str,
    },

    /// The file needs more segments than a Static Large Object manifest may list.
    #[error(
        "uploading {object:?} ({file_size} bytes) in {segment_size}-byte segments needs {segments} segments, \
         more than the maximum of {max}; raise UploadOptions::segment_size to at least {min_segment_size} bytes"
    )]
    TooManySegments {
        /// The object being uploaded.
        object: String,
        /// Size of the local file in bytes.
        file_size: u64,
        /// The configured segment size in bytes.
        segment_size: u64,
        /// Segments the upload would need.
        segments: u64,
        /// Maximum segments per manifest.
        max: u64,
        /// The smallest segment size that fits within `max` segments.
        min_segment_size: u64,
    },

    /// The token provider failed to supply a token.
    #[error("failed to obtain an Orbit auth token")]
    Token {
        /// The provider's error.
        #[source]
        source: BoxError,
    },

    /// Orbit rejected the token (HTTP 401), also after one token refresh.
    #[error(
        "Orbit rejected the auth token during {operation} (HTTP 401); check that the token has the orbit scope and has not expired"
    )]
    Unauthorized {
        /// The operation that failed, for example `"HEAD container"`.
        operation: &'static str,
        /// `X-Trans-Id` or `X-Openstack-Request-Id` of the response, when present.
        request_id: Option<String>,
    },

    /// Orbit refused the request for this token (HTTP 403).
    #[error(
        "Orbit denied {operation} on {target} (HTTP 403); storage-only API clients need a container grant and cannot create containers"
    )]
    Forbidden {
        /// The operation that failed.
        operation: &'static str,
        /// The container or object path the request named.
        target: String,
        /// `X-Trans-Id` of the response, when present.
        request_id: Option<String>,
    },

    /// The container or object does not exist (HTTP 404).
    #[error("{}", not_found_message(.container, .object.as_deref()))]
    NotFound {
        /// The container name.
        container: String,
        /// The object name, or `None` when the container itself is missing.
        object: Option<String>,
    },

    /// The MD5 ETag Orbit reported does not match the bytes that were sent or received.
    #[error("ETag mismatch for {object:?}: expected {expected}, Orbit reported {actual}")]
    EtagMismatch {
        /// The object or segment path.
        object: String,
        /// The MD5 computed locally (hex).
        expected: String,
        /// The ETag in the response.
        actual: String,
    },

    /// Orbit returned an unexpected HTTP status.
    #[error("{operation} failed with HTTP {status}{}: {body_excerpt}", request_id_suffix(.request_id.as_deref()))]
    Http {
        /// The operation that failed.
        operation: &'static str,
        /// The HTTP status code.
        status: u16,
        /// The first 512 bytes of the response body, lossily decoded.
        body_excerpt: String,
        /// `X-Trans-Id` of the response, when present.
        request_id: Option<String>,
    },

    /// The HTTP request failed before a complete response arrived (connect, TLS, timeout, reset).
    #[error("{operation} failed: no complete HTTP response")]
    Transport {
        /// The operation that failed.
        operation: &'static str,
        /// The reqwest error; its URL never contains a temp URL signature because requests
        /// from this crate authenticate with `X-Auth-Token`.
        #[source]
        source: reqwest::Error,
    },

    /// A snapshot download kept failing after the configured number of resume attempts.
    #[error("download of {object:?} stopped at byte {received} after {attempts} attempts")]
    Interrupted {
        /// The object being downloaded.
        object: String,
        /// Compressed bytes received before the last failure.
        received: u64,
        /// Requests made, including the first.
        attempts: u32,
        /// The last failure.
        #[source]
        source: Box<OrbitError>,
    },

    /// An upload request kept failing with retryable errors until its attempts ran out.
    #[error("upload of {object:?} failed after {attempts} attempts")]
    RetriesExhausted {
        /// The object, segment or manifest being written.
        object: String,
        /// Requests made, including the first.
        attempts: u32,
        /// The last failure.
        #[source]
        source: Box<OrbitError>,
    },

    /// A local file operation failed.
    #[error("failed to {operation} {path:?}")]
    Io {
        /// The failed action, for example `"open"` or `"rename"`.
        operation: &'static str,
        /// The local path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The snapshot body is not a valid LZ4 frame.
    #[error(
        "failed to decode the LZ4 frame of {object:?}; the object may be truncated or not LZ4-compressed"
    )]
    Decode {
        /// The object being decoded.
        object: String,
        /// The decoder error.
        #[source]
        source: std::io::Error,
    },

    /// A transferred size differs from the expected size.
    #[error("size mismatch for {what}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// The object or local path checked.
        what: String,
        /// The expected size in bytes.
        expected: u64,
        /// The actual size in bytes.
        actual: u64,
    },

    /// Orbit sent a response this crate cannot interpret.
    #[error("unexpected response to {operation}: {reason}")]
    InvalidResponse {
        /// The operation.
        operation: &'static str,
        /// The problem with the response.
        reason: String,
    },
}

impl OrbitError {
    /// Reports whether repeating the same call can succeed without a change of input.
    ///
    /// Returns true for transport failures, HTTP 408, 429 and 5xx, ETag mismatches (corruption
    /// in transit), and downloads or uploads whose attempts ran out, since a later call
    /// continues from the bytes already stored. Decode errors return false because the
    /// stored object itself may be damaged.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Transport { .. }
            | Self::Interrupted { .. }
            | Self::RetriesExhausted { .. }
            | Self::EtagMismatch { .. } => true,
            Self::Http { status, .. } => *status == 408 || *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

fn not_found_message(container: &str, object: Option<&str>) -> String {
    match object {
        Some(object) => format!("object {object:?} not found in Orbit container {container:?}"),
        None => format!("Orbit container {container:?} not found"),
    }
}

fn request_id_suffix(request_id: Option<&str>) -> String {
    request_id
        .map(|id| format!(" (request id {id})"))
        .unwrap_or_default()
}
