//! OAuth 2 token endpoint and bearer token check.
//!
//! `POST /token` accepts two grants:
//!
//! - `client_credentials`, authenticated as the emulator's API client;
//! - `password` for one emulated user ([`USER_NAME`], [`USER_PASSWORD`]) with two-factor
//!   authentication on, authenticated as the Brightbox CLI's public application
//!   ([`CLI_APP_ID`]) or as the API client. Without a code in `X-Brightbox-OTP`, or with
//!   a code other than [`USER_OTP_CODE`], it returns 401 with `X-Brightbox-OTP: required`,
//!   as the Brightbox API does. No refresh token is issued, so a client sends the password
//!   (and a code) again when its token expires.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

use super::oauth_error;
use crate::library::Library;

/// User name (email address) of the emulated user login, for the OAuth 2 password grant.
pub const USER_NAME: &str = "user@example.com";

/// Password of the emulated user login. It is fixed so that examples can log in
/// without reading it from the emulator; the emulator listens on 127.0.0.1 only.
pub const USER_PASSWORD: &str = "emulator-user-password";

/// Two-factor code the emulated user login requires in `X-Brightbox-OTP`. Unlike a
/// real TOTP code it never changes.
pub const USER_OTP_CODE: &str = "123456";

/// Id of the Brightbox CLI's public OAuth application, which user logins authenticate as.
pub const CLI_APP_ID: &str = "app-12345";

/// Secret of [`CLI_APP_ID`]: the value `brightbox-api` sends for the Brightbox CLI's public
/// application.
const CLI_APP_SECRET: &str = "mocbuipbiaa6k6c";

/// Request header that carries a two-factor code, and response header that requests one.
const OTP_HEADER: &str = "x-brightbox-otp";

/// Client credentials taken from the `Authorization: Basic` header or the body.
struct ClientCredentials {
    id: String,
    secret: String,
}

/// Handles `POST /token`: the client credentials grant, with a form or JSON body.
pub(super) async fn issue_token(
    State(library): State<Arc<Library>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields = match parse_fields(&headers, &body) {
        Ok(fields) => fields,
        Err(description) => {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &description);
        }
    };

    let credentials = match basic_credentials(&headers) {
        Some(Ok(credentials)) => Some(credentials),
        Some(Err(description)) => {
            return invalid_client(&description);
        }
        None => match (fields.get("client_id"), fields.get("client_secret")) {
            (Some(id), Some(secret)) => Some(ClientCredentials {
                id: id.clone(),
                secret: secret.clone(),
            }),
            _ => None,
        },
    };
    let Some(credentials) = credentials else {
        return invalid_client(
            "client authentication is missing: send the client id and secret with HTTP Basic authentication, or as client_id and client_secret in the body",
        );
    };
    let grant_type = fields.get("grant_type").map(String::as_str);
    let is_api_client =
        credentials.id == library.client_id && credentials.secret == library.client_secret;
    let is_cli_app = credentials.id == CLI_APP_ID && credentials.secret == CLI_APP_SECRET;
    // The CLI's application may only log users in; it has no account of its own.
    if !(is_api_client || (is_cli_app && grant_type == Some("password"))) {
        tracing::warn!(
            client_id = credentials.id,
            "token request rejected: unknown client or wrong secret"
        );
        return invalid_client("client authentication failed: unknown client id or wrong secret");
    }

    match grant_type {
        Some("client_credentials") => {}
        Some("password") => {
            if let Some(response) = user_login_rejection(&headers, &fields) {
                return response;
            }
        }
        Some(other) => {
            tracing::warn!(
                grant_type = other,
                "token request rejected: unsupported grant type"
            );
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!(
                    "grant_type {other:?} is not supported: the emulator issues tokens for client_credentials and password only"
                ),
            );
        }
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is missing: send grant_type=client_credentials or grant_type=password",
            );
        }
    }

    let token = library.issue_token();
    tracing::info!(
        client_id = credentials.id,
        grant_type,
        "access token issued"
    );
    (
        [
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (header::PRAGMA, HeaderValue::from_static("no-cache")),
        ],
        Json(json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": library.token_lifetime.as_secs(),
        })),
    )
        .into_response()
}

/// Checks the user name, password and two-factor code of a password grant and
/// returns the error response when one is wrong or missing. Log lines name the
/// user but never the password or the code.
fn user_login_rejection(headers: &HeaderMap, fields: &HashMap<String, String>) -> Option<Response> {
    let (Some(username), Some(password)) = (fields.get("username"), fields.get("password")) else {
        return Some(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "username and password are required with grant_type=password",
        ));
    };
    if username != USER_NAME || password != USER_PASSWORD {
        tracing::warn!(
            username,
            "token request rejected: unknown user or wrong password"
        );
        return Some(oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_grant",
            "the user name or password is wrong",
        ));
    }
    let code = headers
        .get(OTP_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::trim);
    if code == Some(USER_OTP_CODE) {
        return None;
    }
    let description = if code.is_some() {
        tracing::warn!(username, "token request rejected: wrong two-factor code");
        "the two-factor code is wrong; send the current code in X-Brightbox-OTP"
    } else {
        tracing::info!(username, "token request needs a two-factor code");
        "two-factor authentication is required; send the code in X-Brightbox-OTP"
    };
    let mut response = oauth_error(StatusCode::UNAUTHORIZED, "invalid_grant", description);
    response
        .headers_mut()
        .insert(OTP_HEADER, HeaderValue::from_static("required"));
    Some(response)
}

fn invalid_client(description: &str) -> Response {
    let mut response = oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", description);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"Brightbox API\""),
    );
    response
}

/// Reads the body fields as JSON when the content type is JSON, else as a form.
fn parse_fields(headers: &HeaderMap, body: &[u8]) -> Result<HashMap<String, String>, String> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.to_ascii_lowercase().contains("json"));

    if !is_json {
        return Ok(url::form_urlencoded::parse(body).into_owned().collect());
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(HashMap::new());
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|error| format!("the request body is not valid JSON: {error}"))?;
    let Value::Object(object) = value else {
        return Err("the request body must be a JSON object".to_owned());
    };
    Ok(object
        .into_iter()
        .filter_map(|(key, value)| match value {
            Value::String(text) => Some((key, text)),
            _ => None,
        })
        .collect())
}

/// Returns the client credentials from an `Authorization: Basic` header, if there is one.
fn basic_credentials(headers: &HeaderMap) -> Option<Result<ClientCredentials, String>> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let malformed = || {
        "the Basic authorization header is malformed: expected base64 of client_id:client_secret"
            .to_owned()
    };
    let decoded = match BASE64.decode(encoded.trim()) {
        Ok(decoded) => decoded,
        Err(_) => return Some(Err(malformed())),
    };
    let Ok(text) = String::from_utf8(decoded) else {
        return Some(Err(malformed()));
    };
    let Some((id, secret)) = text.split_once(':') else {
        return Some(Err(malformed()));
    };
    Some(Ok(ClientCredentials {
        id: id.to_owned(),
        secret: secret.to_owned(),
    }))
}

/// Rejects requests without a valid `Authorization: Bearer` token, as the API does.
pub(super) async fn require_bearer_token(
    State(library): State<Arc<Library>>,
    request: Request,
    next: Next,
) -> Response {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());

    match token {
        Some(token) if library.token_is_valid(token) => next.run(request).await,
        _ => {
            // The request log line names the full path; nested routes see only the suffix.
            tracing::warn!("API request rejected: missing, unknown or expired token");
            let mut response = oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "The OAuth token can not be found",
            );
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("OAuth error=\"invalid_token\""),
            );
            response
        }
    }
}
