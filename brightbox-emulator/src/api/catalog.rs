//! The catalogue routes: server types and zones.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::api_error;
use crate::catalog::{SERVER_TYPES, ZONES, find_server_type, find_zone};
use crate::library::Library;

/// Handles `GET /1.0/server_types`.
pub(super) async fn list_server_types(State(library): State<Arc<Library>>) -> Response {
    let types: Vec<Value> = SERVER_TYPES
        .iter()
        .map(|server_type| library.server_type_json(server_type))
        .collect();
    Json(types).into_response()
}

/// Handles `GET /1.0/server_types/{id}`, which also accepts a handle such as `1gb.ssd`.
pub(super) async fn show_server_type(
    State(library): State<Arc<Library>>,
    Path(id): Path<String>,
) -> Response {
    match find_server_type(&id) {
        Some(server_type) => Json(library.server_type_json(server_type)).into_response(),
        None => not_found("server type", &id, "GET /1.0/server_types"),
    }
}

/// Handles `GET /1.0/zones`.
pub(super) async fn list_zones(State(library): State<Arc<Library>>) -> Response {
    let zones: Vec<Value> = ZONES.iter().map(|zone| library.zone_json(zone)).collect();
    Json(zones).into_response()
}

/// Handles `GET /1.0/zones/{id}`, which also accepts a handle such as `gb1-a`.
pub(super) async fn show_zone(
    State(library): State<Arc<Library>>,
    Path(id): Path<String>,
) -> Response {
    match find_zone(&id) {
        Some(zone) => Json(library.zone_json(zone)).into_response(),
        None => not_found("zone", &id, "GET /1.0/zones"),
    }
}

fn not_found(kind: &str, id: &str, list_route: &str) -> Response {
    api_error(
        StatusCode::NOT_FOUND,
        "missing_resource",
        vec![format!(
            "{kind} {id} was not found: list them with {list_route}"
        )],
    )
}
