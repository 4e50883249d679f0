//! Object routes: upload with MD5 check, download with `Range`, HEAD, DELETE, and
//! Static Large Object manifests.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use axum::Json;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use futures_util::StreamExt;
use md5::{Digest, Md5};
use serde_json::{Value, json};
use tokio::io::{AsyncWriteExt, BufWriter};

use super::body::{Piece, RangeRequest, parse_range, stream};
use super::images_container::{self, IMAGES_CONTAINER};
use super::listing::container_not_found;
use super::store::{ObjectRecord, Segment, md5_hex};
use super::{http_date, method_not_allowed, read_only_images, set_header, swift_error, timestamp};
use crate::library::Library;
use crate::secret::random_string;

/// Maximum number of segments in a Static Large Object manifest.
const MAX_SEGMENTS: usize = 1000;
/// Maximum size of a manifest request body, in bytes.
const MAX_MANIFEST_LEN: usize = 8 * 1024 * 1024;
const WRITE_BUFFER_LEN: usize = 1024 * 1024;
const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// Handles `PUT`, `GET`, `HEAD` and `DELETE /v1/<account>/<container>/<object>`.
pub(super) async fn handle(
    library: &Library,
    container: &str,
    object: &str,
    params: &HashMap<String, String>,
    request: Request,
) -> Response {
    let method = request.method().clone();
    let manifest_mode = params.get("multipart-manifest").map(String::as_str);
    if container == IMAGES_CONTAINER {
        return match method {
            Method::GET | Method::HEAD => {
                get_image(library, &method, object, request.headers()).await
            }
            _ => read_only_images(&method),
        };
    }
    match method {
        Method::PUT if manifest_mode == Some("put") => {
            put_manifest(library, container, object, request).await
        }
        Method::PUT => put_object(library, container, object, request).await,
        Method::GET | Method::HEAD => {
            get_object(
                library,
                &method,
                container,
                object,
                manifest_mode,
                request.headers(),
            )
            .await
        }
        Method::DELETE if manifest_mode == Some("delete") => {
            delete_manifest(library, container, object)
        }
        Method::DELETE => {
            if library.orbit.delete_object(container, object) {
                tracing::info!(container, object, "Orbit object deleted");
                StatusCode::NO_CONTENT.into_response()
            } else {
                object_not_found(library, container, object)
            }
        }
        _ => method_not_allowed(&method, "PUT, GET, HEAD, DELETE"),
    }
}

/// Streams the request body to a temporary file while hashing it, checks the `ETag`
/// request header, then moves the file into place.
async fn put_object(
    library: &Library,
    container: &str,
    object: &str,
    request: Request,
) -> Response {
    if library.orbit.container(container).is_none() {
        return container_not_found(library, container);
    }
    let headers = request.headers().clone();
    if headers.contains_key("x-object-manifest") {
        return swift_error(
            StatusCode::NOT_IMPLEMENTED,
            "Dynamic Large Objects (X-Object-Manifest) are not emulated: upload the segments and PUT a Static Large Object manifest with ?multipart-manifest=put",
        );
    }

    let temp = temp_path(library);
    let written = write_body(&temp, request.into_body()).await;
    let (bytes, etag) = match written {
        Ok(found) => found,
        Err(response) => {
            remove_temp(&temp).await;
            return response;
        }
    };
    if let Some(expected) = expected_etag(&headers)
        && expected != etag
    {
        remove_temp(&temp).await;
        tracing::warn!(
            container,
            object,
            expected,
            actual = etag,
            "Orbit upload rejected: ETag mismatch"
        );
        return swift_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "the ETag header {expected} does not match the MD5 {etag} of the {bytes} bytes received: the object was not stored; upload it again"
            ),
        );
    }

    let record = ObjectRecord {
        bytes,
        etag: etag.clone(),
        content_type: content_type(&headers),
        last_modified: Utc::now(),
        metadata: object_metadata(&headers),
        segments: None,
    };
    commit(library, container, object, &temp, record, etag).await
}

/// Validates a Static Large Object manifest against the stored segments and stores it.
async fn put_manifest(
    library: &Library,
    container: &str,
    object: &str,
    request: Request,
) -> Response {
    if library.orbit.container(container).is_none() {
        return container_not_found(library, container);
    }
    let headers = request.headers().clone();
    let body = match axum::body::to_bytes(request.into_body(), MAX_MANIFEST_LEN).await {
        Ok(body) => body,
        Err(error) => {
            return swift_error(
                StatusCode::BAD_REQUEST,
                format!(
                    "the manifest could not be read (at most {MAX_MANIFEST_LEN} bytes): {error}"
                ),
            );
        }
    };
    let segments = match validate_manifest(library, &body) {
        Ok(segments) => segments,
        Err(errors) => {
            tracing::warn!(container, object, ?errors, "Orbit manifest rejected");
            return swift_error(
                StatusCode::BAD_REQUEST,
                format!("Errors:\n{}", errors.join("\n")),
            );
        }
    };

    let joined_etags: String = segments
        .iter()
        .map(|segment| segment.etag.as_str())
        .collect();
    let etag = md5_hex(joined_etags.as_bytes());
    if let Some(expected) = expected_etag(&headers)
        && expected != etag
    {
        return swift_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "the ETag header {expected} does not match {etag}, the MD5 of the segment ETags joined together: the manifest was not stored"
            ),
        );
    }

    let stored: Vec<Value> = segments
        .iter()
        .map(|segment| {
            json!({
                "name": format!("/{}/{}", segment.container, segment.object),
                "hash": segment.etag,
                "bytes": segment.bytes,
            })
        })
        .collect();
    let temp = temp_path(library);
    let manifest_json = Value::Array(stored).to_string();
    if let Err(error) = tokio::fs::write(&temp, manifest_json.as_bytes()).await {
        return storage_error("write the manifest", &error);
    }
    let record = ObjectRecord {
        bytes: segments.iter().map(|segment| segment.bytes).sum(),
        etag: etag.clone(),
        content_type: content_type(&headers),
        last_modified: Utc::now(),
        metadata: object_metadata(&headers),
        segments: Some(segments),
    };
    // Swift quotes the ETag of a Static Large Object.
    commit(
        library,
        container,
        object,
        &temp,
        record,
        format!("\"{etag}\""),
    )
    .await
}

/// Checks each manifest entry: a `/container/object` path of a stored plain object,
/// and the `etag` and `size_bytes` when given (null skips the check, as in Swift).
fn validate_manifest(library: &Library, body: &[u8]) -> Result<Vec<Segment>, Vec<String>> {
    let entries = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(entries)) => entries,
        Ok(_) => {
            return Err(vec![
                "the manifest must be a JSON array of {path, etag, size_bytes}".to_owned(),
            ]);
        }
        Err(error) => return Err(vec![format!("the manifest is not valid JSON: {error}")]),
    };
    if entries.is_empty() {
        return Err(vec![
            "the manifest has no segments: list at least one".to_owned(),
        ]);
    }
    if entries.len() > MAX_SEGMENTS {
        return Err(vec![format!(
            "the manifest has {} segments: the limit is {MAX_SEGMENTS}",
            entries.len()
        )]);
    }

    let mut segments = Vec::with_capacity(entries.len());
    let mut errors = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let Some(path) = entry.get("path").and_then(Value::as_str) else {
            errors.push(format!(
                "segment {index}: path is missing: give \"/container/object\""
            ));
            continue;
        };
        let Some((container, object)) = path
            .trim_start_matches('/')
            .split_once('/')
            .filter(|(container, object)| !container.is_empty() && !object.is_empty())
        else {
            errors.push(format!(
                "segment {index}: path {path:?} is invalid: expected \"/container/object\""
            ));
            continue;
        };
        let Some(record) = library.orbit.object(container, object) else {
            errors.push(format!(
                "segment {index}: {path} was not found: upload it before the manifest"
            ));
            continue;
        };
        if record.segments.is_some() {
            errors.push(format!("segment {index}: {path} is itself a manifest: the emulator does not nest Static Large Objects"));
            continue;
        }
        match entry.get("etag") {
            None | Some(Value::Null) => {}
            Some(Value::String(etag))
                if etag.trim_matches('"').eq_ignore_ascii_case(&record.etag) => {}
            Some(etag) => errors.push(format!(
                "segment {index}: {path} has ETag {}, not {etag}",
                record.etag
            )),
        }
        match entry.get("size_bytes") {
            None | Some(Value::Null) => {}
            Some(size) if size.as_u64() == Some(record.bytes) => {}
            Some(size) => errors.push(format!(
                "segment {index}: {path} has {} bytes, not {size}",
                record.bytes
            )),
        }
        segments.push(Segment {
            container: container.to_owned(),
            object: object.to_owned(),
            bytes: record.bytes,
            etag: record.etag,
        });
    }
    if errors.is_empty() {
        Ok(segments)
    } else {
        Err(errors)
    }
}

/// Moves a finished temporary file into place and returns 201 with `etag_header`.
async fn commit(
    library: &Library,
    container: &str,
    object: &str,
    temp: &Path,
    record: ObjectRecord,
    etag_header: String,
) -> Response {
    let last_modified = record.last_modified;
    let bytes = record.bytes;
    match library.orbit.commit_object(container, object, temp, record) {
        Ok(true) => {
            tracing::info!(container, object, bytes, "Orbit object stored");
            let mut response = StatusCode::CREATED.into_response();
            set_header(response.headers_mut(), "etag", &etag_header);
            set_header(
                response.headers_mut(),
                "last-modified",
                &http_date(last_modified),
            );
            response
        }
        Ok(false) => {
            remove_temp(temp).await;
            container_not_found(library, container)
        }
        Err(error) => {
            remove_temp(temp).await;
            storage_error("store the object", &error)
        }
    }
}

/// Writes `body` to `path` and returns its size and MD5 hex.
async fn write_body(path: &Path, body: Body) -> Result<(u64, String), Response> {
    let file = tokio::fs::File::create(path)
        .await
        .map_err(|error| storage_error("create a temporary file", &error))?;
    let mut writer = BufWriter::with_capacity(WRITE_BUFFER_LEN, file);
    let mut md5 = Md5::new();
    let mut bytes = 0_u64;
    let mut chunks = body.into_data_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|error| {
            tracing::warn!(%error, received = bytes, "Orbit upload body ended early");
            swift_error(
                StatusCode::BAD_REQUEST,
                format!("the request body failed after {bytes} bytes: {error}; the object was not stored"),
            )
        })?;
        md5.update(&chunk);
        bytes += chunk.len() as u64;
        writer
            .write_all(&chunk)
            .await
            .map_err(|error| storage_error("write the upload", &error))?;
    }
    writer
        .flush()
        .await
        .map_err(|error| storage_error("write the upload", &error))?;
    Ok((bytes, hex::encode(md5.finalize())))
}

/// Handles `GET` and `HEAD` of a stored object or manifest.
async fn get_object(
    library: &Library,
    method: &Method,
    container: &str,
    object: &str,
    manifest_mode: Option<&str>,
    headers: &HeaderMap,
) -> Response {
    if library.orbit.container(container).is_none() {
        return container_not_found(library, container);
    }
    let (record, file) = match library.orbit.open_object(container, object) {
        None => return object_not_found(library, container, object),
        Some(Err(error)) => return storage_error("open the object", &error),
        Some(Ok(found)) => found,
    };

    let mut response_headers = object_headers(&record);
    let Some(segments) = record.segments.as_ref() else {
        let pieces = vec![Piece::Open {
            file,
            len: record.bytes,
        }];
        return respond(method, pieces, record.bytes, response_headers, headers);
    };

    set_header(&mut response_headers, "x-static-large-object", "True");
    set_header(
        &mut response_headers,
        "etag",
        &format!("\"{}\"", record.etag),
    );
    if manifest_mode == Some("get") {
        let len = match file.metadata() {
            Ok(metadata) => metadata.len(),
            Err(error) => return storage_error("read the manifest", &error),
        };
        set_header(
            &mut response_headers,
            "content-type",
            "application/json; charset=utf-8",
        );
        return respond(
            method,
            vec![Piece::Open { file, len }],
            len,
            response_headers,
            headers,
        );
    }

    let mut pieces = Vec::with_capacity(segments.len());
    for segment in segments {
        let current = library.orbit.object(&segment.container, &segment.object);
        let unchanged = current
            .as_ref()
            .is_some_and(|current| current.etag == segment.etag && current.bytes == segment.bytes);
        if !unchanged {
            tracing::warn!(
                container,
                object,
                segment = segment.object,
                "Orbit manifest segment changed or deleted"
            );
            return swift_error(
                StatusCode::CONFLICT,
                format!(
                    "segment /{}/{} of {container}/{object} was changed or deleted after the manifest was stored: upload it again and PUT the manifest again",
                    segment.container, segment.object
                ),
            );
        }
        pieces.push(Piece::Path {
            path: library
                .orbit
                .object_path(&segment.container, &segment.object),
            len: segment.bytes,
        });
    }
    respond(method, pieces, record.bytes, response_headers, headers)
}

/// Handles `GET` and `HEAD /v1/<account>/images/<image id>`: the LZ4 frame of the image.
async fn get_image(
    library: &Library,
    method: &Method,
    image_id: &str,
    headers: &HeaderMap,
) -> Response {
    let image_not_found = || {
        swift_error(
            StatusCode::NOT_FOUND,
            format!(
                "object {IMAGES_CONTAINER}/{image_id} was not found: the {IMAGES_CONTAINER} container lists the account's available and deprecated images by id"
            ),
        )
    };
    let Some(image) = images_container::listed_image(library, image_id) else {
        return image_not_found();
    };
    // A NotFound error means the image was deleted while this request ran.
    let copy = match images_container::compressed(library, &image).await {
        Ok(copy) => copy,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return image_not_found(),
        Err(error) => return storage_error("compress the image", &error),
    };
    let file = match std::fs::File::open(&copy.path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return image_not_found(),
        Err(error) => return storage_error("open the compressed image", &error),
    };

    let mut response_headers = HeaderMap::new();
    set_header(&mut response_headers, "content-type", DEFAULT_CONTENT_TYPE);
    set_header(&mut response_headers, "etag", &copy.etag);
    set_header(
        &mut response_headers,
        "last-modified",
        &http_date(copy.last_modified),
    );
    set_header(
        &mut response_headers,
        "x-timestamp",
        &timestamp(copy.last_modified),
    );
    set_header(&mut response_headers, "accept-ranges", "bytes");
    let pieces = vec![Piece::Open {
        file,
        len: copy.bytes,
    }];
    respond(method, pieces, copy.bytes, response_headers, headers)
}

/// Sends `pieces` whole (200), one range (206) or 416, with `Content-Length`.
/// `HEAD` gets the headers of the whole object and no body.
fn respond(
    method: &Method,
    pieces: Vec<Piece>,
    len: u64,
    mut response_headers: HeaderMap,
    request_headers: &HeaderMap,
) -> Response {
    if *method == Method::HEAD {
        set_header(&mut response_headers, "content-length", &len.to_string());
        return (StatusCode::OK, response_headers).into_response();
    }
    let range = request_headers
        .get(header::RANGE)
        .and_then(|value| value.to_str().ok());
    match parse_range(range, len) {
        RangeRequest::Whole => {
            set_header(&mut response_headers, "content-length", &len.to_string());
            (StatusCode::OK, response_headers, stream(pieces, 0, len)).into_response()
        }
        RangeRequest::Part { start, end } => {
            let part_len = end - start + 1;
            set_header(
                &mut response_headers,
                "content-length",
                &part_len.to_string(),
            );
            set_header(
                &mut response_headers,
                "content-range",
                &format!("bytes {start}-{end}/{len}"),
            );
            (
                StatusCode::PARTIAL_CONTENT,
                response_headers,
                stream(pieces, start, part_len),
            )
                .into_response()
        }
        RangeRequest::Unsatisfiable => {
            let mut response = swift_error(
                StatusCode::RANGE_NOT_SATISFIABLE,
                format!("the requested range starts at or after the end of the {len}-byte object"),
            );
            set_header(
                response.headers_mut(),
                "content-range",
                &format!("bytes */{len}"),
            );
            response
        }
    }
}

/// Handles `DELETE ?multipart-manifest=delete`: removes the segments of a manifest and
/// then the manifest, or a plain object alone, and reports counts as Swift's bulk
/// delete does.
fn delete_manifest(library: &Library, container: &str, object: &str) -> Response {
    let Some(record) = library.orbit.object(container, object) else {
        return object_not_found(library, container, object);
    };
    let mut deleted = 0_u64;
    let mut not_found = 0_u64;
    for segment in record.segments.iter().flatten() {
        if library
            .orbit
            .delete_object(&segment.container, &segment.object)
        {
            deleted += 1;
        } else {
            not_found += 1;
        }
    }
    if library.orbit.delete_object(container, object) {
        deleted += 1;
    } else {
        not_found += 1;
    }
    tracing::info!(
        container,
        object,
        deleted,
        not_found,
        "Orbit manifest and segments deleted"
    );
    Json(json!({
        "Number Deleted": deleted,
        "Number Not Found": not_found,
        "Response Status": "200 OK",
        "Response Body": "",
        "Errors": [],
    }))
    .into_response()
}

fn object_headers(record: &ObjectRecord) -> HeaderMap {
    let mut headers = HeaderMap::new();
    set_header(&mut headers, "content-type", &record.content_type);
    set_header(&mut headers, "etag", &record.etag);
    set_header(
        &mut headers,
        "last-modified",
        &http_date(record.last_modified),
    );
    set_header(
        &mut headers,
        "x-timestamp",
        &timestamp(record.last_modified),
    );
    set_header(&mut headers, "accept-ranges", "bytes");
    for (name, value) in &record.metadata {
        set_header(&mut headers, name, value);
    }
    headers
}

fn object_not_found(library: &Library, container: &str, object: &str) -> Response {
    swift_error(
        StatusCode::NOT_FOUND,
        format!(
            "object {container}/{object} was not found in account {}",
            library.account_id
        ),
    )
}

/// Returns the `ETag` request header without quotes, in lowercase.
fn expected_etag(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::ETAG)
        .and_then(|value| value.to_str().ok())
        .map(|value| value.trim().trim_matches('"').to_ascii_lowercase())
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .filter(|value| !value.is_empty())
        .unwrap_or(DEFAULT_CONTENT_TYPE)
        .to_owned()
}

fn object_metadata(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("x-object-meta-"))
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect()
}

fn temp_path(library: &Library) -> PathBuf {
    library
        .orbit
        .temp_dir()
        .join(format!("upload-{}", random_string(16)))
}

async fn remove_temp(path: &Path) {
    if let Err(error) = tokio::fs::remove_file(path).await
        && error.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), %error, "failed to remove a temporary upload file");
    }
}

fn storage_error(action: &str, error: &std::io::Error) -> Response {
    tracing::error!(action, %error, "Orbit storage error");
    swift_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("failed to {action} in the storage folder: {error}"),
    )
}
