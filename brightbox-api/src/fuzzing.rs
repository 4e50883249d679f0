//! Entry points for the fuzz targets in the workspace's `fuzz` folder.
//!
//! Compiled only with the `fuzzing` feature. This module is not part of the stable API: it
//! exposes the internal decoders of API responses so that fuzz targets can call them directly,
//! and it changes whenever those decoders change.

use std::time::{Duration, SystemTime};

use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use serde::de::DeserializeOwned;

use crate::{ApiError, ImageId, Result};

/// Decodes a JSON response body into `T` the way every endpoint does, with the JSON path of the
/// first mismatch in the error.
///
/// # Errors
///
/// [`crate::Error::Decode`] when the body is not valid JSON for `T`.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    crate::client::decode(&Method::GET, "/1.0/fuzz", body)
}

/// Decodes an OAuth 2.0 token response.
///
/// # Errors
///
/// [`crate::Error::Decode`] when the body is not a token response.
pub fn decode_token_response(body: &[u8]) -> Result<()> {
    let _response: crate::auth::TokenResponse =
        crate::client::decode(&Method::POST, "/token", body)?;
    Ok(())
}

/// Decodes the reply of `POST /1.0/accounts/{id}/reset_ftp_password`.
///
/// # Errors
///
/// [`crate::Error::Decode`] when the body lacks the host, the user or the password.
pub fn decode_ftp_password_reset(body: &[u8]) -> Result<()> {
    let _reply: crate::accounts::ResetFtpPasswordReply = crate::client::decode(
        &Method::POST,
        "/1.0/accounts/acc-fuzz0/reset_ftp_password",
        body,
    )?;
    Ok(())
}

/// Builds the [`ApiError`] for an error response with this status and body, accepting both the
/// API and the OAuth error shapes.
pub fn api_error(status: u16, body: &[u8]) -> ApiError {
    crate::client::api_error(&Method::GET, "/1.0/fuzz", status, None, body, 1, None)
}

/// Returns the `error` field of an OAuth 2.0 error body, or `None` for any other body.
pub fn oauth_error(body: &[u8]) -> Option<String> {
    crate::auth::OAuthErrorBody::parse(body).error
}

/// Returns the image id of the `rel=snapshot` entry of a `Link` header value.
pub fn snapshot_image_from_link(value: &str) -> Option<ImageId> {
    crate::servers::snapshot_image_from_link(value)
}

/// Parses a `Retry-After` header value relative to `now`, or returns `None` when the bytes are
/// not a valid header value or not a delay.
pub fn parse_retry_after(value: &[u8], now: SystemTime) -> Option<Duration> {
    let value = HeaderValue::from_bytes(value).ok()?;
    let mut headers = HeaderMap::new();
    headers.insert(RETRY_AFTER, value);
    crate::retry::parse_retry_after(&headers, now)
}
