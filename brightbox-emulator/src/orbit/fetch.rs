//! The "download" behind `POST /1.0/images` with `http_url`: the emulator checks the
//! URL exactly as a temp-URL GET to its own Orbit, and returns the files to copy.

use std::collections::HashMap;
use std::path::PathBuf;

use super::images_container::{self, IMAGES_CONTAINER};
use super::{check_temp_url, parse_target};
use crate::library::Library;

/// A failed `http_url` download: the HTTP status and reason a real download would get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FetchFailure {
    pub(crate) status: u16,
    pub(crate) reason: String,
}

/// The files whose concatenation is the object an `http_url` names.
#[derive(Debug)]
pub(crate) struct Fetched {
    /// The last part of the object name, a default image name.
    pub(crate) object_name: String,
    /// Files and their lengths, in order; one file for a plain object.
    pub(crate) pieces: Vec<(PathBuf, u64)>,
}

/// Resolves an Orbit URL path and query as an unauthenticated GET: the query must be
/// a valid temp URL for an existing object.
///
/// # Errors
///
/// Returns the failure a real download would see: 401 for a missing, expired or wrong
/// signature, 404 for a missing object, 409 for a manifest with changed segments, and
/// 500 when a stored file cannot be read.
pub(crate) async fn fetch_for_registration(
    library: &Library,
    raw_path: &str,
    query: Option<&str>,
) -> Result<Fetched, FetchFailure> {
    let target = parse_target(raw_path).map_err(|reason| FetchFailure {
        status: 400,
        reason,
    })?;
    let params: HashMap<String, String> = query
        .map(|query| {
            url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    if !params.contains_key("temp_url_sig") && !params.contains_key("temp_url_expires") {
        return Err(FetchFailure {
            status: 401,
            reason: "the URL has no temp_url_sig and temp_url_expires, and Orbit answers 401 to a request without a token".to_owned(),
        });
    }
    check_temp_url(library, "GET", raw_path, &target, &params).map_err(|rejection| {
        FetchFailure {
            status: 401,
            reason: rejection.message(),
        }
    })?;

    // A valid temp URL names an object, so both parts are present.
    let (Some(container), Some(object)) = (target.container, target.object) else {
        return Err(not_found(raw_path));
    };
    let object_name = object.rsplit('/').next().unwrap_or(&object).to_owned();

    if container == IMAGES_CONTAINER {
        let Some(image) = images_container::listed_image(library, &object) else {
            return Err(not_found(raw_path));
        };
        let copy = images_container::compressed(library, &image)
            .await
            .map_err(|error| FetchFailure {
                status: 500,
                reason: format!("compressing image {object} failed: {error}"),
            })?;
        return Ok(Fetched {
            object_name,
            pieces: vec![(copy.path, copy.bytes)],
        });
    }

    let Some(record) = library.orbit.object(&container, &object) else {
        return Err(not_found(raw_path));
    };
    let Some(segments) = record.segments else {
        return Ok(Fetched {
            object_name,
            pieces: vec![(library.orbit.object_path(&container, &object), record.bytes)],
        });
    };
    let mut pieces = Vec::with_capacity(segments.len());
    for segment in segments {
        let current = library.orbit.object(&segment.container, &segment.object);
        if current
            .is_none_or(|current| current.etag != segment.etag || current.bytes != segment.bytes)
        {
            return Err(FetchFailure {
                status: 409,
                reason: format!(
                    "segment /{}/{} was changed or deleted after the manifest was stored",
                    segment.container, segment.object
                ),
            });
        }
        pieces.push((
            library
                .orbit
                .object_path(&segment.container, &segment.object),
            segment.bytes,
        ));
    }
    Ok(Fetched {
        object_name,
        pieces,
    })
}

fn not_found(raw_path: &str) -> FetchFailure {
    FetchFailure {
        status: 404,
        reason: format!("{raw_path} was not found in Orbit"),
    }
}
