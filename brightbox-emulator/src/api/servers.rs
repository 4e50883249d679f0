//! The server routes: list, show, create from an image, delete, lock, unlock, and the
//! legacy snapshot action. Also the snapshot step that `POST /1.0/images` shares.

use std::path::Path as FsPath;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::Utc;
use serde_json::{Map, Value};

use super::images::{injected_defect, no_unused_id};
use super::{api_error, conflict, internal_error, parse_object, unprocessable};
use crate::catalog::{self, ServerType, Zone};
use crate::ftp::IMAGES;
use crate::image_format::{inspect_file, qcow2_placeholder};
use crate::library::{Deletion, ImageRecord, Library, ServerRecord, now_rfc3339, time_delta};

/// Maximum length of `user_data` after base64 encoding, in bytes.
// NOTE: the API's own limit is unverified; this is the limit the Brightbox CLI applies.
const MAX_USER_DATA_ENCODED_LEN: usize = 64 * 1024;

/// Handles `GET /1.0/servers`: every server, oldest first, including deleted ones.
pub(super) async fn list(State(library): State<Arc<Library>>) -> Response {
    let now = Instant::now();
    let servers: Vec<Value> = library
        .servers()
        .iter()
        .map(|server| library.server_json(server, now))
        .collect();
    Json(servers).into_response()
}

/// Handles `GET /1.0/servers/{id}`.
pub(super) async fn show(State(library): State<Arc<Library>>, Path(id): Path<String>) -> Response {
    match library.server(&id) {
        Some(server) => Json(library.server_json(&server, Instant::now())).into_response(),
        None => server_not_found(StatusCode::NOT_FOUND, &id),
    }
}

/// The validated body of `POST /1.0/servers`.
struct CreateServer {
    image: ImageRecord,
    name: Option<String>,
    server_type: &'static ServerType,
    zone: &'static Zone,
    user_data: Option<String>,
    compatibility_mode: Option<bool>,
}

/// Handles `POST /1.0/servers`: 202 with the server `creating`; it becomes `active`
/// after the registration delay.
///
/// The server keeps a copy of its image file (a hard link where the file system allows
/// it) as its disk, so that a later snapshot has bytes to copy even if the image is
/// deleted.
pub(super) async fn create(State(library): State<Arc<Library>>, body: Bytes) -> Response {
    let fields = match parse_object(&body) {
        Ok(fields) => fields,
        Err(message) => return api_error(StatusCode::BAD_REQUEST, "bad_request", vec![message]),
    };
    let now = Instant::now();
    let request = match parse_create(&library, &fields, now) {
        Ok(request) => request,
        Err(errors) => {
            tracing::warn!(?errors, "server creation rejected");
            return unprocessable(errors);
        }
    };
    let Some(id) = library.unused_server_id() else {
        return no_unused_id();
    };

    let disk = if request.image.has_file {
        let source = library.storage.join(IMAGES).join(&request.image.id);
        let target = library.disks.join(&id);
        if let Err(error) = link_or_copy(&source, &target).await {
            tracing::error!(server_id = id, image_id = request.image.id, %error, "failed to copy the image file to the server disk");
            return internal_error(format!(
                "failed to copy the file of image {} for server {id}: {error}",
                request.image.id
            ));
        }
        Some(target)
    } else {
        None
    };

    let created_at = Utc::now();
    let ready_at = library.ready_at(now);
    let server = ServerRecord {
        id,
        name: request.name,
        compatibility_mode: request
            .compatibility_mode
            .unwrap_or(request.image.compatibility_mode),
        image: request.image,
        server_type: request.server_type,
        zone: request.zone,
        user_data: request.user_data,
        locked: false,
        created_at,
        started_at: created_at + time_delta(ready_at.saturating_duration_since(now)),
        ready_at,
        deletion: None,
        disk,
        snapshots: Vec::new(),
    };
    tracing::info!(
        server_id = server.id,
        image_id = server.image.id,
        server_type = server.server_type.handle,
        zone = server.zone.handle,
        "server created"
    );
    let body = library.server_json(&server, now);
    library.insert_server(server);
    (StatusCode::ACCEPTED, Json(body)).into_response()
}

/// Reads and checks the fields of `POST /1.0/servers`, collecting one message per problem.
fn parse_create(
    library: &Library,
    fields: &Map<String, Value>,
    now: Instant,
) -> Result<CreateServer, Vec<String>> {
    let mut errors = Vec::new();

    let image = match fields.get("image") {
        None | Some(Value::Null) => {
            errors.push(
                "image is missing: give the id of an available image, such as img-noble".to_owned(),
            );
            None
        }
        Some(Value::String(id)) => match library.image(id) {
            Some(image) if image.is_usable(now) => Some(image),
            Some(image) => {
                errors.push(format!(
                    "image {id} is {}: a server needs an available or deprecated image",
                    image.status(now)
                ));
                None
            }
            None => {
                errors.push(format!(
                    "image {id} was not found: list images with GET /1.0/images"
                ));
                None
            }
        },
        Some(other) => {
            errors.push(format!("image must be an image id string, got {other}"));
            None
        }
    };

    let name = match fields.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) => Some(name.clone()),
        Some(other) => {
            errors.push(format!("name must be a string, got {other}"));
            None
        }
    };

    let server_type = lookup(
        fields.get("server_type"),
        "server_type",
        catalog::DEFAULT_SERVER_TYPE,
        catalog::find_server_type,
        "GET /1.0/server_types",
        &mut errors,
    );
    let zone = lookup(
        fields.get("zone"),
        "zone",
        catalog::DEFAULT_ZONE,
        catalog::find_zone,
        "GET /1.0/zones",
        &mut errors,
    );

    let user_data = match fields.get("user_data") {
        None | Some(Value::Null) => None,
        Some(Value::String(encoded)) => {
            if let Err(message) = check_user_data(encoded) {
                errors.push(message);
            }
            Some(encoded.clone())
        }
        Some(other) => {
            errors.push(format!("user_data must be a base64 string, got {other}"));
            None
        }
    };

    let compatibility_mode = match fields.get("compatibility_mode") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(mode)) => Some(*mode),
        Some(other) => {
            errors.push(format!(
                "compatibility_mode must be true or false, got {other}"
            ));
            None
        }
    };

    for field in ["volumes", "cloud_ip", "server_groups"] {
        if fields.get(field).is_some_and(|value| !value.is_null()) {
            errors.push(format!(
                "{field} is not supported by the emulator: create the server from an image alone"
            ));
        }
    }

    if let (Some(image), Some(server_type)) = (&image, server_type) {
        errors.extend(fit_errors(image, server_type));
    }

    match (image, server_type, zone, errors.is_empty()) {
        (Some(image), Some(server_type), Some(zone), true) => Ok(CreateServer {
            image,
            name,
            server_type,
            zone,
            user_data,
            compatibility_mode,
        }),
        _ => Err(errors),
    }
}

/// Resolves an id or handle field against the catalogue, or the default when it is absent.
fn lookup<T>(
    value: Option<&Value>,
    field: &str,
    default: &str,
    find: fn(&str) -> Option<&'static T>,
    list_route: &str,
    errors: &mut Vec<String>,
) -> Option<&'static T> {
    let key = match value {
        None | Some(Value::Null) => default,
        Some(Value::String(key)) => key.as_str(),
        Some(other) => {
            errors.push(format!(
                "{field} must be an id or handle string, got {other}"
            ));
            return None;
        }
    };
    let found = find(key);
    if found.is_none() {
        errors.push(format!(
            "{field} {key:?} was not found: use an id or handle from {list_route}"
        ));
    }
    found
}

/// Checks that `user_data` is standard base64 within the size limit.
fn check_user_data(encoded: &str) -> Result<(), String> {
    if encoded.len() > MAX_USER_DATA_ENCODED_LEN {
        return Err(format!(
            "user_data is {} bytes after base64 encoding, more than the limit of {MAX_USER_DATA_ENCODED_LEN}",
            encoded.len()
        ));
    }
    BASE64.decode(encoded).map(|_| ()).map_err(|error| {
        format!(
            "user_data is not valid base64 ({error}): encode it with standard base64 and padding"
        )
    })
}

/// Checks that the image fits the server type's disk and memory.
fn fit_errors(image: &ImageRecord, server_type: &ServerType) -> Vec<String> {
    let mut errors = Vec::new();
    let virtual_mb = crate::image_format::bytes_to_mb(image.virtual_size);
    if virtual_mb > server_type.disk_size {
        errors.push(format!(
            "image {} needs a {virtual_mb} MB disk, but server type {} has {} MB: choose a larger type",
            image.id, server_type.handle, server_type.disk_size
        ));
    }
    if let Some(min_ram) = image.min_ram
        && min_ram > server_type.ram
    {
        errors.push(format!(
            "image {} needs at least {min_ram} MB of RAM, but server type {} has {} MB: choose a larger type",
            image.id, server_type.handle, server_type.ram
        ));
    }
    errors
}

/// Handles `DELETE /1.0/servers/{id}`: 202 with the server `deleting`; it becomes
/// `deleted` after the registration delay and stays listed.
pub(super) async fn destroy(
    State(library): State<Arc<Library>>,
    Path(id): Path<String>,
) -> Response {
    let now = Instant::now();
    let done_at = library.ready_at(now);
    let deleted_at = Utc::now() + time_delta(done_at.saturating_duration_since(now));
    let outcome = library.update_server(&id, |server| {
        if server.locked {
            return Err(conflict(format!(
                "server {id} is locked: unlock it with PUT /1.0/servers/{id}/unlock_resource before deleting it"
            )));
        }
        if server.deletion.is_some() {
            return Err(conflict(format!(
                "server {id} is {}: it cannot be deleted again",
                server.status(now)
            )));
        }
        server.deletion = Some(Deletion {
            done_at,
            deleted_at,
        });
        Ok((server.clone(), server.disk.take()))
    });
    let (server, disk) = match outcome {
        None => return server_not_found(StatusCode::NOT_FOUND, &id),
        Some(Err(rejection)) => {
            tracing::warn!(server_id = id, "server delete rejected");
            return rejection.into_response();
        }
        Some(Ok(found)) => found,
    };
    if let Some(disk) = disk
        && let Err(error) = tokio::fs::remove_file(&disk).await
    {
        tracing::warn!(server_id = id, path = %disk.display(), %error, "failed to remove the server disk");
    }
    tracing::info!(server_id = id, "server deleted");
    (
        StatusCode::ACCEPTED,
        Json(library.server_json(&server, now)),
    )
        .into_response()
}

/// Handles `PUT /1.0/servers/{id}/lock_resource`.
pub(super) async fn lock_resource(
    State(library): State<Arc<Library>>,
    Path(id): Path<String>,
) -> Response {
    set_locked(&library, &id, true)
}

/// Handles `PUT /1.0/servers/{id}/unlock_resource`.
pub(super) async fn unlock_resource(
    State(library): State<Arc<Library>>,
    Path(id): Path<String>,
) -> Response {
    set_locked(&library, &id, false)
}

fn set_locked(library: &Library, id: &str, locked: bool) -> Response {
    let Some(server) = library.update_server(id, |server| {
        server.locked = locked;
        server.clone()
    }) else {
        return server_not_found(StatusCode::NOT_FOUND, id);
    };
    tracing::info!(server_id = id, locked, "server lock changed");
    Json(library.server_json(&server, Instant::now())).into_response()
}

/// Handles the legacy `POST /1.0/servers/{id}/snapshot`: 202 with the server JSON, and
/// the new image only in `Link: <{api_url}1.0/images/img-…>; rel=snapshot`.
pub(super) async fn snapshot(
    State(library): State<Arc<Library>>,
    Path(id): Path<String>,
) -> Response {
    let image = match snapshot_server(
        &library,
        &id,
        SnapshotOptions::default(),
        StatusCode::NOT_FOUND,
    )
    .await
    {
        Ok(image) => image,
        Err(response) => return response,
    };
    let Some(server) = library.server(&id) else {
        return server_not_found(StatusCode::NOT_FOUND, &id);
    };
    let link = format!("<{}>; rel=snapshot", library.url_of("images", &image.id));
    let mut response = (
        StatusCode::ACCEPTED,
        Json(library.server_json(&server, Instant::now())),
    )
        .into_response();
    match HeaderValue::from_str(&link) {
        Ok(value) => {
            response.headers_mut().insert(header::LINK, value);
        }
        Err(error) => {
            tracing::error!(image_id = image.id, %error, "failed to build the Link header");
        }
    }
    response
}

/// Metadata a snapshot request may set; unset fields come from the server's image.
#[derive(Debug, Default)]
pub(super) struct SnapshotOptions {
    pub(super) name: Option<String>,
    pub(super) description: Option<String>,
    pub(super) username: Option<String>,
    pub(super) arch: Option<String>,
    pub(super) public: Option<bool>,
    pub(super) compatibility_mode: Option<bool>,
    pub(super) min_ram: Option<u64>,
}

/// Snapshots server `server_id` into a new image whose file is `images/<new id>`.
///
/// The file is a copy of the server's disk. A server built from an official image has no
/// disk file, so its snapshot file is a qcow2 header that states the image's virtual size
/// and contains no data. An unknown server gets `missing_status` (404 on the server route,
/// 422 on `POST /1.0/images`), and a server that is not `active` gets 409.
pub(super) async fn snapshot_server(
    library: &Library,
    server_id: &str,
    options: SnapshotOptions,
    missing_status: StatusCode,
) -> Result<ImageRecord, Response> {
    let now = Instant::now();
    let Some(server) = library.server(server_id) else {
        return Err(server_not_found(missing_status, server_id));
    };
    let status = server.status(now);
    if status != "active" {
        tracing::warn!(
            server_id,
            status,
            "snapshot rejected: the server is not active"
        );
        return Err(conflict(format!(
            "server {server_id} is {status}: only an active server can be snapshotted"
        ))
        .into_response());
    }
    let Some(id) = library.unused_image_id() else {
        return Err(no_unused_id());
    };

    let target = library.storage.join(IMAGES).join(&id);
    let written = match &server.disk {
        Some(disk) => link_or_copy(disk, &target).await,
        None => tokio::fs::write(&target, qcow2_placeholder(server.image.virtual_size)).await,
    };
    if let Err(error) = written {
        tracing::error!(server_id, image_id = id, %error, "failed to write the snapshot file");
        return Err(internal_error(format!(
            "failed to write the snapshot file of server {server_id}: {error}"
        )));
    }
    let (inspection, stored_size) = match inspect_file(&target).await {
        Ok(found) => found,
        Err(error) => {
            tracing::error!(server_id, image_id = id, %error, "failed to read the snapshot file");
            return Err(internal_error(format!(
                "failed to read the snapshot file of server {server_id}: {error}"
            )));
        }
    };

    let source_image = &server.image;
    let image = ImageRecord {
        id,
        name: options
            .name
            .unwrap_or_else(|| format!("Snapshot of {server_id}")),
        description: options.description,
        username: options.username.or_else(|| source_image.username.clone()),
        arch: options.arch.unwrap_or_else(|| source_image.arch.clone()),
        source: server_id.to_owned(),
        source_type: "snapshot",
        owner: library.account_id.clone(),
        official: false,
        public: options.public.unwrap_or(false),
        compatibility_mode: options
            .compatibility_mode
            .unwrap_or(server.compatibility_mode),
        min_ram: options.min_ram.or(source_image.min_ram),
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
        ancestor: Some(source_image.id.clone()),
    };
    library.insert_image(image.clone());
    library.update_server(server_id, |server| server.snapshots.push(image.id.clone()));
    tracing::info!(
        server_id,
        image_id = image.id,
        format = image.format.as_str(),
        "snapshot taken"
    );
    Ok(image)
}

/// Hard-links `source` to `target`, or copies it where a link is not possible (such as
/// across file systems). The emulator never writes to an image file after creating it, and
/// FTP clients cannot write in `images/`, so a link is as good as a copy.
async fn link_or_copy(source: &FsPath, target: &FsPath) -> std::io::Result<()> {
    match tokio::fs::hard_link(source, target).await {
        Ok(()) => Ok(()),
        Err(link_error) => {
            tracing::debug!(%link_error, "hard link failed; copying the file");
            tokio::fs::copy(source, target).await.map(|_| ())
        }
    }
}

fn server_not_found(status: StatusCode, id: &str) -> Response {
    let error_name = if status == StatusCode::NOT_FOUND {
        "missing_resource"
    } else {
        "unprocessable_entity"
    };
    api_error(
        status,
        error_name,
        vec![format!(
            "server {id} was not found: list servers with GET /1.0/servers"
        )],
    )
}
