//! The HTTP API subset: `/token` and the `/1.0/` account, image, server, server type
//! and zone routes, plus the request faults that tests switch on.

mod accounts;
pub(crate) mod auth;
mod catalog;
mod http_url;
mod images;
mod servers;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, put};
use serde_json::{Map, Value, json};

use crate::faults::error_name_for;

use crate::library::Library;
use crate::secret::random_request_id;

/// The response header that carries the id of each request.
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Builds the router for the whole API.
pub(crate) fn router(library: Arc<Library>) -> Router {
    let v1 = Router::new()
        .route("/accounts", get(accounts::list))
        .route("/accounts/{id}", get(accounts::show))
        .route(
            "/accounts/{id}/reset_ftp_password",
            post(accounts::reset_ftp_password),
        )
        .route("/account", get(accounts::show_current))
        .route(
            "/account/reset_ftp_password",
            post(accounts::reset_current_ftp_password),
        )
        .route("/images", get(images::list).post(images::create))
        .route(
            "/images/{id}",
            get(images::show)
                .put(images::update)
                .delete(images::destroy),
        )
        .route("/images/{id}/lock_resource", put(images::lock_resource))
        .route("/images/{id}/unlock_resource", put(images::unlock_resource))
        .route("/servers", get(servers::list).post(servers::create))
        .route("/servers/{id}", get(servers::show).delete(servers::destroy))
        .route("/servers/{id}/snapshot", post(servers::snapshot))
        .route("/servers/{id}/lock_resource", put(servers::lock_resource))
        .route(
            "/servers/{id}/unlock_resource",
            put(servers::unlock_resource),
        )
        .route("/server_types", get(catalog::list_server_types))
        .route("/server_types/{id}", get(catalog::show_server_type))
        .route("/zones", get(catalog::list_zones))
        .route("/zones/{id}", get(catalog::show_zone))
        .route_layer(middleware::from_fn_with_state(
            library.clone(),
            auth::require_bearer_token,
        ));

    Router::new()
        .route("/token", post(auth::issue_token))
        .route("/token/", post(auth::issue_token))
        .nest("/1.0", v1)
        .route("/v1", any(crate::orbit::handle))
        .route("/v1/", any(crate::orbit::handle))
        .route("/v1/{*path}", any(crate::orbit::handle))
        .route("/auth/v1.0", any(crate::orbit::handle))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            library.clone(),
            inject_request_faults,
        ))
        .layer(middleware::from_fn(tag_request))
        .with_state(library)
}

/// Returns the error that [`Faults::fail_next_requests`](crate::Faults::fail_next_requests)
/// requested, before authentication and routing, or passes the request on.
async fn inject_request_faults(
    State(library): State<Arc<Library>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let Some(failure) = library.faults.take_request_failure(path) else {
        return next.run(request).await;
    };
    tracing::warn!(
        path,
        status = failure.status.as_u16(),
        retry_after = ?failure.retry_after,
        "returning the error status of a request fault"
    );
    let mut response = api_error(
        failure.status,
        &error_name_for(failure.status),
        vec![format!(
            "the emulator returns {} for requests under {} because Faults::fail_next_requests was set",
            failure.status.as_u16(),
            failure.path_prefix
        )],
    );
    if let Some(retry_after) = failure.retry_after
        && let Ok(value) = HeaderValue::from_str(&retry_after.header_value())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// Gives every response an `X-Request-Id` header and logs the request without its
/// headers or body, which carry credentials.
async fn tag_request(request: Request, next: Next) -> Response {
    let request_id = random_request_id();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let started = Instant::now();

    let mut response = next.run(request).await;

    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    let status = response.status().as_u16();
    let elapsed_ms = started.elapsed().as_millis();
    if response.status().is_server_error() {
        tracing::error!(%method, path, status, request_id, elapsed_ms, "API request failed");
    } else {
        tracing::info!(%method, path, status, request_id, elapsed_ms, "API request");
    }
    response
}

async fn method_not_allowed(request: Request) -> Response {
    api_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        vec![format!(
            "{} is not allowed on {}",
            request.method(),
            request.uri().path()
        )],
    )
}

async fn not_found(request: Request) -> Response {
    api_error(
        StatusCode::NOT_FOUND,
        "missing_resource",
        vec![format!(
            "{} {} is not a route of the emulator",
            request.method(),
            request.uri().path()
        )],
    )
}

/// Builds an API error in the `{"error_name", "errors"}` shape.
pub(crate) fn api_error(status: StatusCode, error_name: &str, errors: Vec<String>) -> Response {
    (
        status,
        axum::Json(json!({ "error_name": error_name, "errors": errors })),
    )
        .into_response()
}

/// Builds an OAuth error in the `{"error", "error_description"}` shape.
pub(crate) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

/// An API error in the `{"error_name", "errors"}` shape, small enough to return from
/// the closures that run under the library locks.
#[derive(Debug)]
pub(crate) struct Rejection {
    status: StatusCode,
    error_name: &'static str,
    message: String,
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        api_error(self.status, self.error_name, vec![self.message])
    }
}

/// Builds a 409 `resource_conflict` error, which the API returns when the resource's
/// state does not allow the request.
pub(crate) fn conflict(message: String) -> Rejection {
    Rejection {
        status: StatusCode::CONFLICT,
        error_name: "resource_conflict",
        message,
    }
}

/// Builds a 403 `forbidden` error.
pub(crate) fn forbidden(message: String) -> Rejection {
    Rejection {
        status: StatusCode::FORBIDDEN,
        error_name: "forbidden",
        message,
    }
}

/// Builds a 422 `unprocessable_entity` error with one message per invalid field.
pub(crate) fn unprocessable(errors: Vec<String>) -> Response {
    api_error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable_entity",
        errors,
    )
}

/// Builds a 500 `internal_error` error.
pub(crate) fn internal_error(message: String) -> Response {
    api_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        vec![message],
    )
}

/// Parses a request body that must be a JSON object.
pub(crate) fn parse_object(body: &[u8]) -> Result<Map<String, Value>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err("the request body is empty: send a JSON object".to_owned());
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|error| format!("the request body is not valid JSON: {error}"))?;
    match value {
        Value::Object(object) => Ok(object),
        _ => Err("the request body must be a JSON object".to_owned()),
    }
}
