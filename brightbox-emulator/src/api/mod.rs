//! The HTTP API subset: `/token` and the `/1.0/` account and image routes.

mod accounts;
mod auth;
mod images;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

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
        .route("/images/{id}", get(images::show).delete(images::destroy))
        .route_layer(middleware::from_fn_with_state(
            library.clone(),
            auth::require_bearer_token,
        ));

    Router::new()
        .route("/token", post(auth::issue_token))
        .route("/token/", post(auth::issue_token))
        .nest("/1.0", v1)
        .fallback(not_found)
        .layer(middleware::from_fn(tag_request))
        .with_state(library)
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
