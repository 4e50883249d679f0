//! The account routes, including the library FTP password reset.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::api_error;
use crate::library::Library;

/// Handles `GET /1.0/accounts`: the one emulated account, in an array.
pub(super) async fn list(State(library): State<Arc<Library>>) -> Response {
    Json(vec![library.account_json(None)]).into_response()
}

/// Handles `GET /1.0/accounts/{id}`.
pub(super) async fn show(State(library): State<Arc<Library>>, Path(id): Path<String>) -> Response {
    if id != library.account_id {
        return account_not_found(&id);
    }
    Json(library.account_json(None)).into_response()
}

/// Handles `GET /1.0/account`: the account the client belongs to.
pub(super) async fn show_current(State(library): State<Arc<Library>>) -> Response {
    Json(library.account_json(None)).into_response()
}

/// Handles `POST /1.0/accounts/{id}/reset_ftp_password`.
pub(super) async fn reset_ftp_password(
    State(library): State<Arc<Library>>,
    Path(id): Path<String>,
) -> Response {
    if id != library.account_id {
        return account_not_found(&id);
    }
    reset(&library)
}

/// Handles `POST /1.0/account/reset_ftp_password`.
pub(super) async fn reset_current_ftp_password(State(library): State<Arc<Library>>) -> Response {
    reset(&library)
}

/// Makes a new FTP password; the previous one stops working at once. While the FTP
/// service is retired, returns 410 Gone instead.
fn reset(library: &Library) -> Response {
    if library.faults.is_ftp_retired() {
        tracing::warn!(
            account_id = library.account_id,
            "FTP password reset rejected: the FTP service is retired"
        );
        return api_error(
            StatusCode::GONE,
            "gone",
            vec![
                "the library FTP service has been retired: upload images to Orbit and register them with http_url"
                    .to_owned(),
            ],
        );
    }
    let password = library.reset_ftp_password();
    tracing::info!(
        account_id = library.account_id,
        "library FTP password reset"
    );
    Json(library.account_json(Some(&password))).into_response()
}

fn account_not_found(id: &str) -> Response {
    api_error(
        StatusCode::NOT_FOUND,
        "missing_resource",
        vec![format!("account {id} was not found")],
    )
}
