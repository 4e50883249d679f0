//! The Orbit subset: a Swift-compatible object store under `/v1/` on the API port.
//!
//! Requests authenticate with an OAuth token from `/token` (or a token from Swift v1
//! auth at `GET /v1/auth`) in `X-Auth-Token`, or with a temp URL. Errors are
//! `text/plain` sentences, as Swift sends them.

mod body;
mod fetch;
pub(crate) mod images_container;
mod listing;
mod objects;
pub(crate) mod store;
pub(crate) mod temp_url;

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};

pub(crate) use self::fetch::{FetchFailure, fetch_for_registration};
use self::images_container::IMAGES_CONTAINER;
use self::temp_url::{TempUrlRejection, TempUrlRequest};
use crate::library::Library;

/// Maximum container name length in bytes, as in Swift's default constraints.
const MAX_CONTAINER_NAME: usize = 256;
/// Maximum object name length in bytes, as in Swift's default constraints.
const MAX_OBJECT_NAME: usize = 1024;

/// The account, container and object a request path names, percent-decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) account: String,
    pub(crate) container: Option<String>,
    pub(crate) object: Option<String>,
}

impl Target {
    /// Returns the decoded path that a temp URL signs: `/v1/<account>/<container>/<object>`.
    fn decoded_path(&self) -> String {
        let mut path = format!("/v1/{}", self.account);
        for part in [&self.container, &self.object].into_iter().flatten() {
            path.push('/');
            path.push_str(part);
        }
        path
    }
}

/// Handles every request under `/v1` and `/auth/v1.0`.
pub(crate) async fn handle(State(library): State<Arc<Library>>, request: Request) -> Response {
    let method = request.method().clone();
    let raw_path = request.uri().path().to_owned();
    let params: HashMap<String, String> = request
        .uri()
        .query()
        .map(|query| {
            url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();

    if matches!(
        raw_path.as_str(),
        "/v1" | "/v1/" | "/v1/auth" | "/auth/v1.0"
    ) {
        return swift_auth(&library, &method, request.headers());
    }
    let target = match parse_target(&raw_path) {
        Ok(target) => target,
        Err(message) => return swift_error(StatusCode::BAD_REQUEST, message),
    };
    let asks_for_token =
        request.headers().contains_key("x-auth-user") && auth_token(request.headers()).is_none();
    if target.container.is_none() && method == Method::GET && asks_for_token {
        return swift_auth(&library, &method, request.headers());
    }

    if params.contains_key("temp_url_sig") || params.contains_key("temp_url_expires") {
        if let Err(rejection) =
            check_temp_url(&library, method.as_str(), &raw_path, &target, &params)
        {
            tracing::warn!(%method, path = raw_path, reason = ?rejection_kind(&rejection), "Orbit temp URL rejected");
            return unauthorized(rejection.message());
        }
    } else {
        let token_valid =
            auth_token(request.headers()).is_some_and(|token| library.token_is_valid(token));
        if !token_valid {
            tracing::warn!(%method, path = raw_path, "Orbit request rejected: missing, unknown or expired token");
            return unauthorized(format!(
                "X-Auth-Token is missing, unknown or expired: get a token from POST {}token or GET /v1/auth",
                library.api_url
            ));
        }
        if target.account != library.account_id {
            return swift_error(
                StatusCode::FORBIDDEN,
                format!(
                    "the token does not grant access to account {}: use /v1/{}",
                    target.account, library.account_id
                ),
            );
        }
    }

    match (target.container.clone(), target.object.clone()) {
        (None, _) => listing::account(&library, &method, &params, request.headers()).await,
        (Some(container), None) => {
            if container.len() > MAX_CONTAINER_NAME {
                return swift_error(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "the container name is {} bytes long: the limit is {MAX_CONTAINER_NAME}",
                        container.len()
                    ),
                );
            }
            listing::container(&library, &method, &container, &params, request.headers()).await
        }
        (Some(container), Some(object)) => {
            if object.len() > MAX_OBJECT_NAME {
                return swift_error(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "the object name is {} bytes long: the limit is {MAX_OBJECT_NAME}",
                        object.len()
                    ),
                );
            }
            objects::handle(&library, &container, &object, &params, request).await
        }
    }
}

/// Checks the temp URL parameters of a request for `target`.
fn check_temp_url(
    library: &Library,
    method: &str,
    raw_path: &str,
    target: &Target,
    params: &HashMap<String, String>,
) -> Result<(), TempUrlRejection> {
    let keys = if target.account == library.account_id {
        library.orbit.temp_url_keys()
    } else {
        Vec::new()
    };
    let decoded = target.decoded_path();
    let request = TempUrlRequest {
        method,
        paths: [raw_path, &decoded],
        signature: params.get("temp_url_sig").map(String::as_str),
        expires: params.get("temp_url_expires").map(String::as_str),
        names_object: target.container.is_some() && target.object.is_some(),
    };
    temp_url::verify(&keys, &request, Utc::now().timestamp())
}

/// Returns the variant name of a rejection for logs, which never show the signature.
fn rejection_kind(rejection: &TempUrlRejection) -> &'static str {
    match rejection {
        TempUrlRejection::NoKey => "no_key",
        TempUrlRejection::MissingParameter(_) => "missing_parameter",
        TempUrlRejection::InvalidExpires(_) => "invalid_expires",
        TempUrlRejection::Expired { .. } => "expired",
        TempUrlRejection::MethodNotAllowed(_) => "method_not_allowed",
        TempUrlRejection::NotAnObject => "not_an_object",
        TempUrlRejection::SignatureMismatch => "signature_mismatch",
    }
}

/// Returns the token from `X-Auth-Token` or `X-Storage-Token`.
fn auth_token(headers: &HeaderMap) -> Option<&str> {
    ["x-auth-token", "x-storage-token"]
        .into_iter()
        .find_map(|name| headers.get(name))
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
}

/// Handles Swift v1 auth: `X-Auth-User` is the API client id (optionally as
/// `<account>:<client>`) and `X-Auth-Key` its secret. The reply carries a token that
/// also works on the API.
fn swift_auth(library: &Library, method: &Method, headers: &HeaderMap) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return method_not_allowed(method, "GET");
    }
    let header = |names: [&str; 2]| {
        names
            .into_iter()
            .find_map(|name| headers.get(name))
            .and_then(|value| value.to_str().ok())
    };
    let (Some(user), Some(key)) = (
        header(["x-auth-user", "x-storage-user"]),
        header(["x-auth-key", "x-storage-pass"]),
    ) else {
        return unauthorized(format!(
            "X-Auth-User and X-Auth-Key are required: send the API client id {} and its secret",
            library.client_id
        ));
    };
    let client = match user.split_once(':') {
        Some((account, client)) if account == library.account_id => client,
        Some(_) => "",
        None => user,
    };
    if client != library.client_id || key != library.client_secret {
        tracing::warn!(user, "Orbit v1 auth rejected: unknown user or wrong key");
        return unauthorized(format!(
            "X-Auth-User {user:?} or its X-Auth-Key is wrong: send the API client id {} and its secret",
            library.client_id
        ));
    }

    let token = library.issue_token();
    tracing::info!(client_id = library.client_id, "Orbit v1 auth token issued");
    let storage_url = library.orbit_url.trim_end_matches('/').to_owned();
    let mut response = StatusCode::OK.into_response();
    let response_headers = response.headers_mut();
    for (name, value) in [
        ("x-auth-token", token.clone()),
        ("x-storage-token", token),
        ("x-storage-url", storage_url),
        (
            "x-auth-token-expires",
            library.token_lifetime.as_secs().to_string(),
        ),
    ] {
        set_header(response_headers, name, &value);
    }
    response
}

/// Splits `/v1/<account>[/<container>[/<object>]]` and percent-decodes each part.
/// An empty container or object (a trailing slash) counts as absent.
pub(crate) fn parse_target(raw_path: &str) -> Result<Target, String> {
    let Some(rest) = raw_path.strip_prefix("/v1/") else {
        return Err(format!(
            "{raw_path} is not an Orbit path: expected /v1/<account>/<container>/<object>"
        ));
    };
    let (account, rest) = rest.split_once('/').unwrap_or((rest, ""));
    let (container, object) = rest.split_once('/').unwrap_or((rest, ""));
    let decode = |part: &str, what: &str| -> Result<Option<String>, String> {
        if part.is_empty() {
            return Ok(None);
        }
        percent_decode(part)
            .map(Some)
            .ok_or_else(|| format!("the {what} in {raw_path} is not valid percent-encoded UTF-8"))
    };
    let account = decode(account, "account")?.unwrap_or_default();
    let container = decode(container, "container name")?;
    let object = match container {
        Some(_) => decode(object, "object name")?,
        None => None,
    };
    Ok(Target {
        account,
        container,
        object,
    })
}

/// Decodes `%XX` escapes; returns `None` for a broken escape or invalid UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex_digits = text.get(index + 1..index + 3)?;
            decoded.push(u8::from_str_radix(hex_digits, 16).ok()?);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

/// Builds a Swift error: the status and a `text/plain` sentence.
pub(crate) fn swift_error(status: StatusCode, message: impl Into<String>) -> Response {
    let mut body = message.into();
    body.push('\n');
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

fn unauthorized(message: String) -> Response {
    let mut response = swift_error(StatusCode::UNAUTHORIZED, message);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Swift realm=\"orbit\""),
    );
    response
}

fn method_not_allowed(method: &Method, allowed: &'static str) -> Response {
    let mut response = swift_error(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed here: use {allowed}"),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allowed));
    response
}

fn read_only_images(method: &Method) -> Response {
    swift_error(
        StatusCode::FORBIDDEN,
        format!(
            "{method} is not allowed in the {IMAGES_CONTAINER} container: it is read-only, and its objects go away when the image is deleted with DELETE /1.0/images/<id>"
        ),
    )
}

/// Inserts a header when `value` is a valid header value; skips it otherwise.
fn set_header(headers: &mut HeaderMap, name: &str, value: &str) {
    if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::from_str(value)) {
        headers.insert(name, value);
    }
}

/// Formats an HTTP-date (IMF-fixdate), as `Last-Modified` uses.
fn http_date(time: DateTime<Utc>) -> String {
    time.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// Formats `X-Timestamp`: seconds since the Unix epoch with five decimals.
fn timestamp(time: DateTime<Utc>) -> String {
    format!(
        "{}.{:05}",
        time.timestamp(),
        time.timestamp_subsec_micros() / 10
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        let object = parse_target("/v1/acc-emu01/uploads/disk%20one/part%2F2")
            .expect("an object path parses");
        assert_eq!(object.account, "acc-emu01");
        assert_eq!(object.container.as_deref(), Some("uploads"));
        assert_eq!(object.object.as_deref(), Some("disk one/part/2"));

        let container = parse_target("/v1/acc-emu01/uploads/").expect("a container path parses");
        assert_eq!(container.container.as_deref(), Some("uploads"));
        assert_eq!(container.object, None);

        let account = parse_target("/v1/acc-emu01").expect("an account path parses");
        assert_eq!(account.container, None);
    }

    #[test]
    fn broken_escapes_are_rejected() {
        assert!(parse_target("/v1/acc-emu01/c/%zz").is_err());
        assert!(parse_target("/v1/acc-emu01/c/%ff").is_err());
        assert!(parse_target("/v1/acc-emu01/c/%4").is_err());
    }

    #[test]
    fn decoded_path_joins_parts() {
        let target = Target {
            account: "acc-12345".to_owned(),
            container: Some("images".to_owned()),
            object: Some("img-abcde".to_owned()),
        };
        assert_eq!(target.decoded_path(), "/v1/acc-12345/images/img-abcde");
    }
}
