//! The image routes: list, show, register from an uploaded file or a server, update,
//! lock, unlock and delete.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::http_url;
use super::servers::{SnapshotOptions, snapshot_server};
use super::{Rejection, api_error, conflict, forbidden, parse_object, unprocessable};
use crate::faults::error_name_for;
use crate::ftp::{IMAGES, INCOMING};
use crate::image_format::{ImageFormat, inspect_file};
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

/// The origin of a new image.
enum ImageSource {
    /// A file name in `incoming/`.
    Upload(String),
    /// A `srv-` id to snapshot.
    Server(String),
    /// A URL of an object in the emulator's own Orbit, usually a temp URL.
    HttpUrl(String),
}

/// Handles `GET /1.0/images`: every image, oldest first.
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
///
/// A locked image is kept and the request gets 409; an image of another account gets 403.
pub(super) async fn destroy(
    State(library): State<Arc<Library>>,
    Path(id): Path<String>,
) -> Response {
    let removal = library.remove_image_if(&id, |image| {
        if image.owner != library.account_id {
            return Err(not_owner(image));
        }
        if image.locked {
            tracing::warn!(image_id = image.id, "delete rejected: the image is locked");
            return Err(conflict(format!(
                "image {} is locked: unlock it with PUT /1.0/images/{}/unlock_resource before deleting it",
                image.id, image.id
            )));
        }
        Ok(())
    });
    let image = match removal {
        None => return image_not_found(&id),
        Some(Err(rejection)) => return rejection.into_response(),
        Some(Ok(image)) => image,
    };

    library.orbit.forget_image(&image.id);
    if image.has_file {
        let path = library.storage.join(IMAGES).join(&image.id);
        // A file that is already gone needs no warning, because the record is removed either way.
        if let Err(error) = tokio::fs::remove_file(&path).await
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(image_id = image.id, path = %path.display(), %error, "failed to remove the image file");
        }
    }
    tracing::info!(image_id = image.id, "image deleted");

    let mut body = library.image_json(&image, Instant::now());
    body["status"] = Value::from("deleted");
    (StatusCode::ACCEPTED, Json(body)).into_response()
}

/// Handles `PUT /1.0/images/{id}`: changes the metadata fields and the status between
/// `available` and `deprecated`.
pub(super) async fn update(
    State(library): State<Arc<Library>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let fields = match parse_object(&body) {
        Ok(fields) => fields,
        Err(message) => return api_error(StatusCode::BAD_REQUEST, "bad_request", vec![message]),
    };
    let changes = match ImageChanges::parse(&fields) {
        Ok(changes) => changes,
        Err(errors) => {
            tracing::warn!(image_id = id, ?errors, "image update rejected");
            return unprocessable(errors);
        }
    };

    let now = Instant::now();
    let outcome = library.update_image(&id, |image| {
        if image.owner != library.account_id {
            return Err(not_owner(image));
        }
        if let Some(deprecated) = changes.deprecated {
            let status = image.status(now);
            if !image.is_usable(now) {
                return Err(conflict(format!(
                    "image {} is {status}: only an available or deprecated image can change its status",
                    image.id
                )));
            }
            image.deprecated = deprecated;
        }
        changes.apply(image);
        Ok(image.clone())
    });
    match outcome {
        None => image_not_found(&id),
        Some(Err(rejection)) => rejection.into_response(),
        Some(Ok(image)) => {
            tracing::info!(image_id = image.id, "image updated");
            Json(library.image_json(&image, now)).into_response()
        }
    }
}

/// Handles `PUT /1.0/images/{id}/lock_resource`.
pub(super) async fn lock_resource(
    State(library): State<Arc<Library>>,
    Path(id): Path<String>,
) -> Response {
    set_locked(&library, &id, true)
}

/// Handles `PUT /1.0/images/{id}/unlock_resource`.
pub(super) async fn unlock_resource(
    State(library): State<Arc<Library>>,
    Path(id): Path<String>,
) -> Response {
    set_locked(&library, &id, false)
}

fn set_locked(library: &Library, id: &str, locked: bool) -> Response {
    let outcome = library.update_image(id, |image| {
        if image.owner != library.account_id {
            return Err(not_owner(image));
        }
        image.locked = locked;
        Ok(image.clone())
    });
    match outcome {
        None => image_not_found(id),
        Some(Err(rejection)) => rejection.into_response(),
        Some(Ok(image)) => {
            tracing::info!(image_id = image.id, locked, "image lock changed");
            Json(library.image_json(&image, Instant::now())).into_response()
        }
    }
}

/// The fields of `PUT /1.0/images/{id}` after validation. `Some(None)` clears a
/// nullable field.
#[derive(Debug, Default)]
struct ImageChanges {
    name: Option<String>,
    description: Option<Option<String>>,
    username: Option<Option<String>>,
    arch: Option<String>,
    deprecated: Option<bool>,
    public: Option<bool>,
    compatibility_mode: Option<bool>,
    min_ram: Option<Option<u64>>,
}

impl ImageChanges {
    /// Reads every known field and collects one message per invalid value.
    fn parse(fields: &Map<String, Value>) -> Result<Self, Vec<String>> {
        let mut changes = ImageChanges::default();
        let mut errors = Vec::new();

        for (key, value) in fields {
            match key.as_str() {
                "name" => match value.as_str() {
                    Some(name) => changes.name = Some(name.to_owned()),
                    None => errors.push(format!("name must be a string, got {value}")),
                },
                "description" => match nullable_string(value) {
                    Some(description) => changes.description = Some(description),
                    None => {
                        errors.push(format!("description must be a string or null, got {value}"))
                    }
                },
                "username" => match nullable_string(value) {
                    Some(username) => changes.username = Some(username),
                    None => errors.push(format!("username must be a string or null, got {value}")),
                },
                "arch" => match value.as_str() {
                    Some(arch) if ARCHITECTURES.contains(&arch) => {
                        changes.arch = Some(arch.to_owned());
                    }
                    _ => errors.push(format!(
                        "arch is not included in the list: {value} is not one of x86_64, i686"
                    )),
                },
                "status" => match value.as_str() {
                    Some("available") => changes.deprecated = Some(false),
                    Some("deprecated") => changes.deprecated = Some(true),
                    _ => errors.push(format!(
                        "status {value} cannot be set: use \"available\" or \"deprecated\""
                    )),
                },
                "public" => match value.as_bool() {
                    Some(public) => changes.public = Some(public),
                    None => errors.push(format!("public must be true or false, got {value}")),
                },
                "compatibility_mode" => match value.as_bool() {
                    Some(mode) => changes.compatibility_mode = Some(mode),
                    None => errors.push(format!(
                        "compatibility_mode must be true or false, got {value}"
                    )),
                },
                "min_ram" => match value {
                    Value::Null => changes.min_ram = Some(None),
                    _ => match value.as_u64() {
                        Some(min_ram) => changes.min_ram = Some(Some(min_ram)),
                        None => errors.push(format!(
                            "min_ram must be a whole number of MB (0 or more) or null, got {value}"
                        )),
                    },
                },
                // Unknown and read-only fields are ignored, as in `POST /1.0/images`.
                _ => {}
            }
        }
        if errors.is_empty() {
            Ok(changes)
        } else {
            Err(errors)
        }
    }

    /// Applies every field except the status, which the caller checks first.
    fn apply(self, image: &mut ImageRecord) {
        if let Some(name) = self.name {
            image.name = name;
        }
        if let Some(description) = self.description {
            image.description = description;
        }
        if let Some(username) = self.username {
            image.username = username;
        }
        if let Some(arch) = self.arch {
            image.arch = arch;
        }
        if let Some(public) = self.public {
            image.public = public;
        }
        if let Some(mode) = self.compatibility_mode {
            image.compatibility_mode = mode;
        }
        if let Some(min_ram) = self.min_ram {
            image.min_ram = min_ram;
        }
    }
}

/// Reads a string or null; returns `None` for any other JSON type.
fn nullable_string(value: &Value) -> Option<Option<String>> {
    match value {
        Value::Null => Some(None),
        Value::String(text) => Some(Some(text.clone())),
        _ => None,
    }
}

/// Handles `POST /1.0/images`: registers a file uploaded to `incoming/` by its name, or
/// snapshots a server.
///
/// An upload moves to `images/<id>` at once; a snapshot copies the server's disk there.
/// The image stays `creating` for the registration delay, then becomes `available`, or
/// `failed` when the file is corrupt or [`Faults::registration_outcome_failed`](crate::Faults::registration_outcome_failed)
/// is on.
pub(super) async fn create(State(library): State<Arc<Library>>, body: Bytes) -> Response {
    let request = match parse_body(&body) {
        Ok(request) => request,
        Err(message) => return api_error(StatusCode::BAD_REQUEST, "bad_request", vec![message]),
    };

    if let Some(status) = library.faults.take_register_failure() {
        tracing::warn!(%status, "returning the error status of a registration fault; no image was created");
        return injected_register_error(status, false);
    }

    let created = match validate_source(&request) {
        Ok(ImageSource::Server(server_id)) => create_snapshot(&library, request, server_id).await,
        Ok(ImageSource::Upload(source)) => create_upload(&library, request, source).await,
        Ok(ImageSource::HttpUrl(url)) => create_from_url(&library, request, url).await,
        Err(message) => {
            let mut errors = validate_arch(request.arch.as_deref());
            errors.push(message);
            tracing::warn!(?errors, "image registration rejected");
            Err(unprocessable(errors))
        }
    };
    let image = match created {
        Ok(image) => image,
        Err(response) => return response,
    };

    if let Some(status) = library.faults.take_register_failure_after_create() {
        tracing::warn!(image_id = image.id, %status, "image created; returning the error status of a registration fault");
        return injected_register_error(status, true);
    }
    // The response shows the image as it was created: `creating` with `disk_size` 0,
    // unless the registration delay is zero.
    let body = library.image_json(&image, image.registered_at);
    (StatusCode::CREATED, Json(body)).into_response()
}

fn injected_register_error(status: StatusCode, created: bool) -> Response {
    let message = if created {
        "the image was created, but the emulator returns this error because Faults::fail_next_register_after_create was set"
    } else {
        "no image was created: the emulator returns this error because Faults::fail_next_register was set"
    };
    api_error(status, &error_name_for(status), vec![message.to_owned()])
}

async fn create_snapshot(
    library: &Library,
    request: CreateImage,
    server_id: String,
) -> Result<ImageRecord, Response> {
    if let Some(arch) = request.arch.as_deref() {
        let errors = validate_arch(Some(arch));
        if !errors.is_empty() {
            return Err(unprocessable(errors));
        }
    }
    let options = SnapshotOptions {
        name: request.name,
        description: request.description,
        username: request.username,
        arch: request.arch,
        public: request.public,
        compatibility_mode: request.compatibility_mode,
        min_ram: request.min_ram,
    };
    snapshot_server(
        library,
        &server_id,
        options,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

async fn create_upload(
    library: &Library,
    request: CreateImage,
    source: String,
) -> Result<ImageRecord, Response> {
    let mut errors = validate_arch(request.arch.as_deref());
    let incoming_path = match regular_file_in_incoming(library, &source).await {
        Ok(path) => Some(path),
        Err(message) => {
            errors.push(message);
            None
        }
    };
    let (Some(incoming_path), true) = (incoming_path, errors.is_empty()) else {
        tracing::warn!(?errors, "image registration rejected");
        return Err(unprocessable(errors));
    };

    let (inspection, stored_size) = match inspect_file(&incoming_path).await {
        Ok(found) => found,
        Err(error) => return Err(file_error(&source, &error)),
    };
    let Some(id) = library.unused_image_id() else {
        return Err(no_unused_id());
    };
    let image_path = library.storage.join(IMAGES).join(&id);
    // NOTE: with a state folder, a kill between this rename and the catalog write in
    // `insert_image` leaves `images/<id>` without a record after a restart.
    if let Err(error) = tokio::fs::rename(&incoming_path, &image_path).await {
        return Err(file_error(&source, &error));
    }

    let now = Instant::now();
    let image = ImageRecord {
        id,
        name: request.name.unwrap_or_else(|| source.clone()),
        description: request.description,
        username: request.username,
        arch: request.arch.unwrap_or_default(),
        source,
        source_type: "upload",
        owner: library.account_id.clone(),
        official: false,
        public: request.public.unwrap_or(false),
        compatibility_mode: request.compatibility_mode.unwrap_or(false),
        min_ram: request.min_ram,
        created_at: now_rfc3339(),
        format: inspection.format,
        virtual_size: inspection.virtual_size,
        stored_size,
        defect: inspection.defect.or_else(|| injected_defect(library)),
        registered_at: now,
        ready_at: library.ready_at(now),
        deprecated: false,
        locked: false,
        has_file: true,
        ancestor: None,
    };
    tracing::info!(
        image_id = image.id,
        source = image.source,
        format = image.format.as_str(),
        virtual_size = image.virtual_size,
        defect = image.defect.as_deref(),
        "image registered"
    );
    library.insert_image(image.clone());
    Ok(image)
}

/// Registers the Orbit object an `http_url` names, as the real service downloads it.
///
/// The URL must point at this emulator's Orbit (422 otherwise). When the URL would not
/// download (a missing, expired or wrong temp URL signature, or a missing object), the
/// image is still created and ends `failed` after the registration delay.
async fn create_from_url(
    library: &Library,
    request: CreateImage,
    raw_url: String,
) -> Result<ImageRecord, Response> {
    let mut errors = validate_arch(request.arch.as_deref());
    let url = match http_url::check_url(library, &raw_url) {
        Ok(url) => Some(url),
        Err(message) => {
            errors.push(message);
            None
        }
    };
    let (Some(url), true) = (url, errors.is_empty()) else {
        tracing::warn!(?errors, "image registration rejected");
        return Err(unprocessable(errors));
    };
    let Some(id) = library.unused_image_id() else {
        return Err(no_unused_id());
    };
    let source = http_url::without_query(&url);
    let image_path = library.storage.join(IMAGES).join(&id);

    let download = http_url::download(library, &url, &image_path).await;
    let (format, virtual_size, stored_size, defect, has_file, default_name) = match download {
        Ok(found) => (
            found.inspection.format,
            found.inspection.virtual_size,
            found.stored_size,
            found.inspection.defect,
            true,
            found.object_name,
        ),
        Err(failure) => {
            tracing::warn!(
                image_id = id,
                source,
                status = failure.status,
                reason = failure.reason,
                "http_url download failed; the image will end failed"
            );
            let name = url
                .path_segments()
                .and_then(|mut segments| segments.next_back())
                .unwrap_or_default()
                .to_owned();
            let defect = format!(
                "downloading http_url failed with HTTP {}: {}",
                failure.status, failure.reason
            );
            (ImageFormat::Raw, 0, 0, Some(defect), false, name)
        }
    };

    let now = Instant::now();
    let image = ImageRecord {
        id,
        name: request.name.unwrap_or(default_name),
        description: request.description,
        username: request.username,
        arch: request.arch.unwrap_or_default(),
        source,
        source_type: "upload",
        owner: library.account_id.clone(),
        official: false,
        public: request.public.unwrap_or(false),
        compatibility_mode: request.compatibility_mode.unwrap_or(false),
        min_ram: request.min_ram,
        created_at: now_rfc3339(),
        format,
        virtual_size,
        stored_size,
        defect: defect.or_else(|| injected_defect(library)),
        registered_at: now,
        ready_at: library.ready_at(now),
        deprecated: false,
        locked: false,
        has_file,
        ancestor: None,
    };
    tracing::info!(
        image_id = image.id,
        source = image.source,
        format = image.format.as_str(),
        virtual_size = image.virtual_size,
        defect = image.defect.as_deref(),
        "image registered from http_url"
    );
    library.insert_image(image.clone());
    Ok(image)
}

/// Returns the defect that makes a new image end `failed` while that fault is on.
pub(super) fn injected_defect(library: &Library) -> Option<String> {
    library
        .faults
        .is_registration_outcome_failed()
        .then(|| "Faults::registration_outcome_failed is on".to_owned())
}

pub(super) fn no_unused_id() -> Response {
    api_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        vec!["no unused id was found: delete some images or servers and try again".to_owned()],
    )
}

fn parse_body(body: &[u8]) -> Result<CreateImage, String> {
    let object = parse_object(body)?;
    serde_path_to_error::deserialize(Value::Object(object))
        .map_err(|error| format!("the request body has an invalid field {error}"))
}

pub(super) fn validate_arch(arch: Option<&str>) -> Vec<String> {
    match arch {
        Some(arch) if ARCHITECTURES.contains(&arch) => Vec::new(),
        Some(arch) => vec![format!(
            "arch is not included in the list: {arch:?} is not one of x86_64, i686"
        )],
        None => vec!["arch is missing: use x86_64 or i686".to_owned()],
    }
}

/// Checks that exactly one source field is given, that it is `source` or `server`, and
/// that a file name uses only the characters the library accepted.
fn validate_source(request: &CreateImage) -> Result<ImageSource, String> {
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

    match (present_fields.as_slice(), &request.source, &request.server) {
        ([], _, _) => Err("one of source, http_url, server or volume is required".to_owned()),
        ([_], Some(source), _) => {
            if is_valid_source_name(source) {
                Ok(ImageSource::Upload(source.clone()))
            } else {
                Err(format!(
                    "source {source:?} is invalid: a file name in incoming/ uses only letters, digits and -_+.~^"
                ))
            }
        }
        ([_], None, Some(server)) => Ok(ImageSource::Server(server.clone())),
        (["http_url"], None, None) => Ok(ImageSource::HttpUrl(
            request.http_url.clone().unwrap_or_default(),
        )),
        ([field], None, None) => Err(format!(
            "{field} is not supported by the emulator: register an Orbit object with http_url, a file in incoming/ with source, or snapshot a server with server"
        )),
        (fields, _, _) => Err(format!(
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

fn not_owner(image: &ImageRecord) -> Rejection {
    tracing::warn!(
        image_id = image.id,
        owner = image.owner,
        "change rejected: the image belongs to another account"
    );
    forbidden(format!(
        "image {} belongs to account {}: only its owner can change or delete it",
        image.id, image.owner
    ))
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

    #[test]
    fn image_changes_collect_every_error() {
        let fields = serde_json::json!({
            "name": 5,
            "arch": "arm64",
            "status": "creating",
            "public": "yes",
            "min_ram": -1,
            "unknown": true,
        });
        let Value::Object(fields) = fields else {
            panic!("the literal is an object");
        };
        let errors = ImageChanges::parse(&fields).expect_err("every field is invalid");
        assert_eq!(errors.len(), 5, "{errors:?}");
    }

    #[test]
    fn image_changes_accept_nulls() {
        let fields =
            serde_json::json!({"description": null, "min_ram": null, "status": "deprecated"});
        let Value::Object(fields) = fields else {
            panic!("the literal is an object");
        };
        let changes = ImageChanges::parse(&fields).expect("fields are valid");
        assert_eq!(changes.description, Some(None));
        assert_eq!(changes.min_ram, Some(None));
        assert_eq!(changes.deprecated, Some(true));
    }
}
