//! Account and container routes: usage headers, listings, the temp URL keys, and
//! container creation and deletion.

use std::collections::HashMap;

use axum::Json;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::images_container::{self, IMAGES_CONTAINER};
use super::store::ContainerDeleteError;
use super::{http_date, method_not_allowed, read_only_images, set_header, swift_error, timestamp};
use crate::library::Library;

/// Maximum entries in one listing, and the default when the request sets no `limit`, as in Swift.
const DEFAULT_LISTING_LIMIT: usize = 10_000;
const TEMP_URL_KEY_HEADERS: [&str; 2] = [
    "x-account-meta-temp-url-key",
    "x-account-meta-temp-url-key-2",
];

/// One object in a container listing.
#[derive(Debug, Clone)]
struct ObjectEntry {
    name: String,
    bytes: u64,
    hash: String,
    last_modified: DateTime<Utc>,
    content_type: String,
}

/// One container in an account listing.
#[derive(Debug, Clone)]
struct ContainerEntry {
    name: String,
    count: u64,
    bytes: u64,
    last_modified: DateTime<Utc>,
}

/// Handles `HEAD`, `GET` and `POST /v1/<account>`.
pub(super) async fn account(
    library: &Library,
    method: &Method,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Response {
    if *method == Method::POST {
        return set_account_metadata(library, headers);
    }
    if *method != Method::GET && *method != Method::HEAD {
        return method_not_allowed(method, "HEAD, GET, POST");
    }

    let mut entries: Vec<ContainerEntry> = library
        .orbit
        .containers()
        .into_iter()
        .map(|(name, container)| {
            let (count, bytes) = container.usage();
            let last_modified = container
                .objects
                .values()
                .map(|object| object.last_modified)
                .max()
                .unwrap_or(container.created);
            ContainerEntry {
                name,
                count,
                bytes,
                last_modified,
            }
        })
        .collect();
    let images = match image_entries(library).await {
        Ok(images) => images,
        Err(response) => return response,
    };
    entries.push(ContainerEntry {
        name: IMAGES_CONTAINER.to_owned(),
        count: images.len() as u64,
        bytes: images.iter().map(|entry| entry.bytes).sum(),
        last_modified: images
            .iter()
            .map(|entry| entry.last_modified)
            .max()
            .unwrap_or_else(Utc::now),
    });
    entries.sort_by(|a, b| a.name.cmp(&b.name));

    let mut response_headers = HeaderMap::new();
    set_header(
        &mut response_headers,
        "x-account-container-count",
        &entries.len().to_string(),
    );
    let object_count: u64 = entries.iter().map(|entry| entry.count).sum();
    set_header(
        &mut response_headers,
        "x-account-object-count",
        &object_count.to_string(),
    );
    let bytes_used: u64 = entries.iter().map(|entry| entry.bytes).sum();
    set_header(
        &mut response_headers,
        "x-account-bytes-used",
        &bytes_used.to_string(),
    );
    set_header(&mut response_headers, "x-timestamp", &timestamp(Utc::now()));
    for (slot, name) in TEMP_URL_KEY_HEADERS.into_iter().enumerate() {
        if let Some(key) = library.orbit.temp_url_key(slot) {
            set_header(&mut response_headers, name, &key);
        }
    }

    if *method == Method::HEAD {
        return (StatusCode::NO_CONTENT, response_headers).into_response();
    }
    let names: Vec<String> = entries.iter().map(|entry| entry.name.clone()).collect();
    let selected = select(&names, params, |_| None);
    let wants_json = wants_json(params, headers);
    let chosen: Vec<&ContainerEntry> = selected
        .iter()
        .filter_map(|item| match item {
            Selected::Name(name) => entries.iter().find(|entry| &entry.name == name),
            Selected::Subdir(_) => None,
        })
        .collect();
    if wants_json {
        let body: Vec<Value> = chosen
            .iter()
            .map(|entry| {
                json!({
                    "name": entry.name,
                    "count": entry.count,
                    "bytes": entry.bytes,
                    "last_modified": listing_time(entry.last_modified),
                })
            })
            .collect();
        return (response_headers, Json(body)).into_response();
    }
    plain_listing(
        response_headers,
        chosen.iter().map(|entry| entry.name.as_str()),
    )
}

/// Handles `POST /v1/<account>`: sets or removes the temp URL keys. Other metadata is
/// accepted and ignored.
fn set_account_metadata(library: &Library, headers: &HeaderMap) -> Response {
    for (slot, name) in TEMP_URL_KEY_HEADERS.into_iter().enumerate() {
        let remove_name = name.replacen("x-account-meta-", "x-remove-account-meta-", 1);
        if headers.contains_key(remove_name.as_str()) {
            library.orbit.set_temp_url_key(slot, None);
            tracing::info!(header = name, "Orbit temp URL key removed");
        }
        let Some(value) = headers.get(name) else {
            continue;
        };
        let Ok(value) = value.to_str() else {
            return swift_error(
                StatusCode::BAD_REQUEST,
                format!("{name} is not valid text: use printable ASCII for the key"),
            );
        };
        let key = (!value.is_empty()).then(|| value.to_owned());
        let removed = key.is_none();
        library.orbit.set_temp_url_key(slot, key);
        // The key signs temp URLs, so the log names only the header.
        tracing::info!(header = name, removed, "Orbit temp URL key changed");
    }
    StatusCode::NO_CONTENT.into_response()
}

/// Handles `PUT`, `HEAD`, `GET` and `DELETE /v1/<account>/<container>`.
pub(super) async fn container(
    library: &Library,
    method: &Method,
    name: &str,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Response {
    if name == IMAGES_CONTAINER {
        return match *method {
            Method::GET | Method::HEAD => match image_entries(library).await {
                Ok(entries) => container_response(method, entries, Utc::now(), params, headers),
                Err(response) => response,
            },
            _ => read_only_images(method),
        };
    }
    match *method {
        Method::PUT => match library.orbit.create_container(name) {
            Ok(true) => {
                tracing::info!(container = name, "Orbit container created");
                StatusCode::CREATED.into_response()
            }
            Ok(false) => StatusCode::ACCEPTED.into_response(),
            Err(error) => {
                tracing::error!(container = name, %error, "failed to create the container folder");
                swift_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("failed to create the folder of container {name}: {error}"),
                )
            }
        },
        Method::DELETE => match library.orbit.delete_container(name) {
            Ok(()) => {
                tracing::info!(container = name, "Orbit container deleted");
                StatusCode::NO_CONTENT.into_response()
            }
            Err(ContainerDeleteError::NotFound) => container_not_found(library, name),
            Err(ContainerDeleteError::NotEmpty(count)) => swift_error(
                StatusCode::CONFLICT,
                format!("container {name} is not empty: it has {count} objects; delete them first"),
            ),
        },
        Method::GET | Method::HEAD => {
            let Some(record) = library.orbit.container(name) else {
                return container_not_found(library, name);
            };
            let entries = record
                .objects
                .iter()
                .map(|(object, record)| ObjectEntry {
                    name: object.clone(),
                    bytes: record.bytes,
                    hash: record.etag.clone(),
                    last_modified: record.last_modified,
                    content_type: record.content_type.clone(),
                })
                .collect();
            container_response(method, entries, record.created, params, headers)
        }
        _ => method_not_allowed(method, "PUT, HEAD, GET, DELETE"),
    }
}

pub(super) fn container_not_found(library: &Library, name: &str) -> Response {
    swift_error(
        StatusCode::NOT_FOUND,
        format!(
            "container {name} was not found: create it with PUT /v1/{}/{name}",
            library.account_id
        ),
    )
}

/// Lists the `images` container, compressing images that have no compressed copy yet.
async fn image_entries(library: &Library) -> Result<Vec<ObjectEntry>, Response> {
    let mut entries = Vec::new();
    for image in images_container::listed_images(library) {
        match images_container::compressed(library, &image).await {
            Ok(copy) => entries.push(ObjectEntry {
                name: image.id.clone(),
                bytes: copy.bytes,
                hash: copy.etag,
                last_modified: copy.last_modified,
                content_type: "application/octet-stream".to_owned(),
            }),
            // An image deleted while the listing runs has no file any more; skip it.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                tracing::error!(image_id = image.id, %error, "failed to compress the image for the images container");
                return Err(swift_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!(
                        "failed to compress image {} for the images container: {error}",
                        image.id
                    ),
                ));
            }
        }
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

fn container_response(
    method: &Method,
    entries: Vec<ObjectEntry>,
    created: DateTime<Utc>,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Response {
    let mut response_headers = HeaderMap::new();
    set_header(
        &mut response_headers,
        "x-container-object-count",
        &entries.len().to_string(),
    );
    let bytes: u64 = entries.iter().map(|entry| entry.bytes).sum();
    set_header(
        &mut response_headers,
        "x-container-bytes-used",
        &bytes.to_string(),
    );
    set_header(&mut response_headers, "x-timestamp", &timestamp(created));
    set_header(&mut response_headers, "last-modified", &http_date(created));
    if *method == Method::HEAD {
        return (StatusCode::NO_CONTENT, response_headers).into_response();
    }

    let names: Vec<String> = entries.iter().map(|entry| entry.name.clone()).collect();
    let delimiter = params.get("delimiter").and_then(|d| d.chars().next());
    let selected = select(&names, params, |name| {
        let prefix = params.get("prefix").map_or("", String::as_str);
        let rest = name.get(prefix.len()..)?;
        let cut = rest.find(delimiter?)?;
        Some(format!("{prefix}{}", &rest[..=cut]))
    });

    if wants_json(params, headers) {
        let body: Vec<Value> = selected
            .iter()
            .filter_map(|item| match item {
                Selected::Subdir(subdir) => Some(json!({ "subdir": subdir })),
                Selected::Name(name) => {
                    entries
                        .iter()
                        .find(|entry| &entry.name == name)
                        .map(|entry| {
                            json!({
                                "name": entry.name,
                                "bytes": entry.bytes,
                                "hash": entry.hash,
                                "last_modified": listing_time(entry.last_modified),
                                "content_type": entry.content_type,
                            })
                        })
                }
            })
            .collect();
        return (response_headers, Json(body)).into_response();
    }
    plain_listing(
        response_headers,
        selected.iter().map(|item| match item {
            Selected::Name(name) | Selected::Subdir(name) => name.as_str(),
        }),
    )
}

/// A listing entry after `prefix`, `delimiter`, `marker`, `end_marker` and `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Selected {
    Name(String),
    Subdir(String),
}

/// Applies the listing parameters to sorted `names`. `subdir_of` returns the
/// `<prefix><part><delimiter>` entry that stands for a name when a delimiter is set.
fn select(
    names: &[String],
    params: &HashMap<String, String>,
    subdir_of: impl Fn(&str) -> Option<String>,
) -> Vec<Selected> {
    let prefix = params.get("prefix").map_or("", String::as_str);
    let marker = params.get("marker");
    let end_marker = params.get("end_marker");
    let limit = params
        .get("limit")
        .and_then(|limit| limit.parse::<usize>().ok())
        .unwrap_or(DEFAULT_LISTING_LIMIT)
        .min(DEFAULT_LISTING_LIMIT);

    let mut selected: Vec<Selected> = Vec::new();
    for name in names {
        if !name.starts_with(prefix)
            || marker.is_some_and(|marker| name <= marker)
            || end_marker.is_some_and(|end| name >= end)
        {
            continue;
        }
        let item = match subdir_of(name) {
            Some(subdir) => Selected::Subdir(subdir),
            None => Selected::Name(name.clone()),
        };
        if selected.last() != Some(&item) {
            selected.push(item);
        }
        if selected.len() >= limit {
            break;
        }
    }
    selected
}

fn wants_json(params: &HashMap<String, String>, headers: &HeaderMap) -> bool {
    match params.get("format").map(String::as_str) {
        Some(format) => format == "json",
        None => headers
            .get(header::ACCEPT)
            .and_then(|accept| accept.to_str().ok())
            .is_some_and(|accept| accept.contains("application/json")),
    }
}

/// Sends one name per line, or 204 when there is none, as Swift does.
fn plain_listing<'a>(headers: HeaderMap, names: impl Iterator<Item = &'a str>) -> Response {
    let mut body = String::new();
    for name in names {
        body.push_str(name);
        body.push('\n');
    }
    if body.is_empty() {
        return (StatusCode::NO_CONTENT, headers).into_response();
    }
    let mut response = (headers, body).into_response();
    set_header(
        response.headers_mut(),
        "content-type",
        "text/plain; charset=utf-8",
    );
    response
}

/// Formats `last_modified` in listings: UTC with microseconds and no zone, as Swift does.
fn listing_time(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|name| (*name).to_owned()).collect()
    }

    #[test]
    fn select_applies_prefix_marker_and_limit() {
        let all = names(&["a1", "a2", "a3", "b1"]);
        let chosen = select(
            &all,
            &params(&[("prefix", "a"), ("marker", "a1"), ("limit", "1")]),
            |_| None,
        );
        assert_eq!(chosen, vec![Selected::Name("a2".to_owned())]);
    }

    #[test]
    fn select_groups_subdirs() {
        let all = names(&["disk/1", "disk/2", "other"]);
        let chosen = select(&all, &params(&[]), |name| {
            name.find('/').map(|cut| name[..=cut].to_owned())
        });
        assert_eq!(
            chosen,
            vec![
                Selected::Subdir("disk/".to_owned()),
                Selected::Name("other".to_owned())
            ]
        );
    }
}
