//! The image routes: list, show, register from an uploaded file, and delete.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use super::api_error;
use crate::ftp::{IMAGES, INCOMING};
use crate::image_format::inspect_file;
use crate::library::{ImageRecord, Library, now_rfc3339};

const ARCHITECTURES: [&str; 2] = ["x86_64", "i686"];
const SOURCE_FIELDS: [&str; 4] = ["source", "http_url", "server", "volume"];

/// The body of `POST /1.0/images`. Unknown fields are ignored, as the API adds fields over time.
#[derive(Debug, Deserialize)]
struct CreateImage {
    name: Option<String>,
    description: Option<String>,
    username: Option<String>,
    arch: Option<String>,
    source: Option<String>,
    http_url: Option<String>,
    server: Option<String>,
    volume: Option<String>,
    public: Option<bool>,
    compatibility_mode: Option<bool>,
    min_ram: Option<u64>,
}

/// Handles `GET /1.0/images`.
pub(super) async fn list(State(library): State<Arc<Library>>) -> Response {
    let now = Instant::now();
    let images: Vec<Value> = library
        .images()
        .iter()
        .map(|image| library.image_json(image, now))
        .collect();
    Json(images).into_response()
}

/// Handles `GET /1.0/images/{id}`.
pub(super) async fn show(State(library): State<Arc<Library>>, Path(id): Path<String>) -> Response {
    match library.image(&id) {
        Some(image) => Json(library.image_json(&image, Instant::now())).into_response(),
        None => image_not_found(&id),
    }
}

/// Handles `DELETE /1.0/images/{id}`: removes the image record and its file in `images/`.
pub(super) async fn destroy(
    State(library): State<Arc<Library>>,
    Path(id): Path<String>,
) -> Response {
    let Some(image) = library.remove_image(&id) else {
        return image_not_found(&id);
    };
    let path = library.storage.join(IMAGES).join(&image.id);
    // A file that is already gone needs no warning, because the record is removed either way.
    if let Err(error) = tokio::fs::remove_file(&path).await
        && error.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(image_id = image.id, path = %path.display(), %error, "failed to remove the image file");
    }
    tracing::info!(image_id = image.id, "image deleted");

    let mut body = library.image_json(&image, Instant::now());
    body["status"] = Value::from("deleted");
    (StatusCode::ACCEPTED, Json(body)).into_response()
}

/// Handles `POST /1.0/images`: registers a file uploaded to `incoming/` by its name.
///
/// The file moves to `images/<id>` at once. The image stays `creating` for the
/// registration delay, then becomes `available`, or `failed` when the file is corrupt.
pub(super) async fn create(State(library): State<Arc<Library>>, body: Bytes) -> Response {
    let request = match parse_body(&body) {
        Ok(request) => request,
        Err(message) => return api_error(StatusCode::BAD_REQUEST, "bad_request", vec![message]),
    };

    let mut errors = validate_arch(request.arch.as_deref());
    let source = match validate_source(&request) {
        Ok(source) => Some(source),
        Err(message) => {
            errors.push(message);
            None
        }
    };
    let incoming_path = match &source {
        Some(source) => match regular_file_in_incoming(&library, source).await {
            Ok(path) => Some(path),
            Err(message) => {
                errors.push(message);
                None
            }
        },
        None => None,
    };
    let (Some(source), Some(incoming_path), true) = (source, incoming_path, errors.is_empty())
    else {
        tracing::warn!(?errors, "image registration rejected");
        return unprocessable(errors);
    };

    let (inspection, stored_size) = match inspect_file(&incoming_path).await {
        Ok(found) => found,
        Err(error) => return file_error(&source, &error),
    };
    let Some(id) = library.unused_image_id() else {
        return api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            vec!["no unused image id was found: delete some images and try again".to_owned()],
        );
    };
    let image_path = library.storage.join(IMAGES).join(&id);
    if let Err(error) = tokio::fs::rename(&incoming_path, &image_path).await {
        return file_error(&source, &error);
    }

    let image = ImageRecord {
        id,
        name: request.name.unwrap_or_else(|| source.clone()),
        description: request.description,
        username: request.username,
        arch: request.arch.unwrap_or_default(),
        source,
        public: request.public.unwrap_or(false),
        compatibility_mode: request.compatibility_mode.unwrap_or(false),
        min_ram: request.min_ram,
        created_at: now_rfc3339(),
        format: inspection.format,
        virtual_size: inspection.virtual_size,
        stored_size,
        defect: inspection.defect,
        ready_at: Instant::now() + library.registration_delay,
    };
    tracing::info!(
        image_id = image.id,
        source = image.source,
        format = image.format.as_str(),
        virtual_size = image.virtual_size,
        defect = image.defect.as_deref(),
        "image registered"
    );
    let body = library.image_json(&image, Instant::now());
    library.insert_image(image);
    (StatusCode::CREATED, Json(body)).into_response()
}

fn parse_body(body: &[u8]) -> Result<CreateImage, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err("the request body is empty: send a JSON object".to_owned());
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|error| format!("the request body is not valid JSON: {error}"))?;
    if !value.is_object() {
        return Err("the request body must be a JSON object".to_owned());
    }
    serde_path_to_error::deserialize(value)
        .map_err(|error| format!("the request body has an invalid field {error}"))
}

fn validate_arch(arch: Option<&str>) -> Vec<String> {
    match arch {
        Some(arch) if ARCHITECTURES.contains(&arch) => Vec::new(),
        Some(arch) => vec![format!(
            "arch is not included in the list: {arch:?} is not one of x86_64, i686"
        )],
        None => vec!["arch is missing: use x86_64 or i686".to_owned()],
    }
}

/// Checks that exactly one source field is given, that it is `source`, and that the
/// file name uses only the characters the library accepted.
fn validate_source(request: &CreateImage) -> Result<String, String> {
    let present_fields: Vec<&str> = SOURCE_FIELDS
        .into_iter()
        .zip([
            &request.source,
            &request.http_url,
            &request.server,
            &request.volume,
        ])
        .filter(|(_, value)| value.is_some())
        .map(|(field, _)| field)
        .collect();

    match (present_fields.as_slice(), &request.source) {
        ([], _) => Err("one of source, http_url, server or volume is required".to_owned()),
        ([_], Some(source)) => {
            if is_valid_source_name(source) {
                Ok(source.clone())
            } else {
                Err(format!(
                    "source {source:?} is invalid: a file name in incoming/ uses only letters, digits and -_+.~^"
                ))
            }
        }
        ([field], None) => Err(format!(
            "{field} is not supported by the emulator: upload the file to incoming/ over FTPS and register it with source"
        )),
        (fields, _) => Err(format!(
            "only one of source, http_url, server or volume may be given, got {}",
            fields.join(", ")
        )),
    }
}

fn is_valid_source_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_+.~^".contains(&b))
}

/// Returns the path of `incoming/<source>` when it is a regular file (not a folder or symlink).
async fn regular_file_in_incoming(library: &Library, source: &str) -> Result<PathBuf, String> {
    let path = library.storage.join(INCOMING).join(source);
    match tokio::fs::symlink_metadata(&path).await {
        Ok(metadata) if metadata.is_file() => Ok(path),
        _ => Err(source_not_found_message(source)),
    }
}

fn source_not_found_message(source: &str) -> String {
    format!("source {source:?} was not found as a regular file in incoming/: upload it first")
}

fn file_error(source: &str, error: &std::io::Error) -> Response {
    if error.kind() == std::io::ErrorKind::NotFound {
        return unprocessable(vec![source_not_found_message(source)]);
    }
    tracing::error!(source, %error, "failed to read or move the uploaded file");
    api_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        vec![format!("failed to read or move incoming/{source}: {error}")],
    )
}

fn unprocessable(errors: Vec<String>) -> Response {
    api_error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable_entity",
        errors,
    )
}

fn image_not_found(id: &str) -> Response {
    api_error(
        StatusCode::NOT_FOUND,
        "missing_resource",
        vec![format!("image {id} was not found")],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_names_follow_library_rules() {
        for valid in ["disk.img", "a-b_c+d.e~f^g", "UPPER123", "..", "."] {
            assert!(is_valid_source_name(valid), "{valid}");
        }
        for invalid in ["", "a b", "dir/file", "ünïcode", "semi;colon", "../x"] {
            assert!(!is_valid_source_name(invalid), "{invalid}");
        }
    }
}
