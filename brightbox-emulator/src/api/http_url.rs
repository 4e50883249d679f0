//! Registration by `http_url`: the URL must name an object in the emulator's own Orbit,
//! which the emulator "downloads" by checking it as a temp-URL GET and copying the files.

use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::image_format::{Inspection, inspect_file};
use crate::library::Library;
use crate::orbit::{FetchFailure, fetch_for_registration};

/// The result of a successful download into `images/<id>`.
#[derive(Debug)]
pub(super) struct Download {
    pub(super) inspection: Inspection,
    pub(super) stored_size: u64,
    /// The last part of the object name, used when the request has no `name`.
    pub(super) object_name: String,
}

/// Parses `http_url` and checks that it points at this emulator's Orbit.
///
/// # Errors
///
/// Returns a 422 message, without the query (which contains the signature), when the
/// value is not a URL, contains a user name or password, uses another scheme, names
/// another host or port, or is not an Orbit object path.
pub(super) fn check_url(library: &Library, raw: &str) -> Result<url::Url, String> {
    let orbit = &library.orbit_url;
    let without_query_text = raw.split('?').next().unwrap_or_default();
    let url = url::Url::parse(raw)
        .map_err(|error| format!("http_url {without_query_text:?} is not a valid URL ({error}): pass an Orbit temp URL such as {orbit}<container>/<object>?temp_url_sig=...&temp_url_expires=..."))?;
    // Checked first so that no later message repeats the password.
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "http_url contains a user name or password: the image service downloads without authentication, so pass an Orbit temp URL such as {orbit}<container>/<object>?temp_url_sig=...&temp_url_expires=..."
        ));
    }
    let own = url::Url::parse(&library.api_url)
        .map_err(|error| format!("the emulator API URL is invalid: {error}"))?;

    if url.scheme() != "http" {
        return Err(format!(
            "http_url {without_query_text:?} uses {}: the emulator's Orbit serves plain http at {orbit}",
            url.scheme()
        ));
    }
    let host = url.host_str().unwrap_or_default();
    let same_host = matches!(host, "127.0.0.1" | "localhost");
    if !same_host || url.port_or_known_default() != own.port_or_known_default() {
        let port = url
            .port_or_known_default()
            .map_or_else(String::new, |port| format!(":{port}"));
        return Err(format!(
            "http_url points at {host}{port}, which is not this emulator: the emulator never contacts other hosts, so upload the image to its Orbit at {orbit} and pass a temp URL"
        ));
    }
    let account_prefix = format!("/v1/{}/", library.account_id);
    if !url.path().starts_with(&account_prefix) {
        return Err(format!(
            "http_url path {} is not an object of the emulator's Orbit account: expected {account_prefix}<container>/<object>",
            url.path()
        ));
    }
    Ok(url)
}

/// Returns the URL without its query and fragment, for the image `source` and logs.
pub(super) fn without_query(url: &url::Url) -> String {
    let mut stripped = url.clone();
    stripped.set_query(None);
    stripped.set_fragment(None);
    stripped.to_string()
}

/// Checks `url` as a temp-URL GET would, copies the object (or the concatenated
/// segments of a Static Large Object) to `image_path`, and inspects the copy.
///
/// # Errors
///
/// Returns the HTTP status and reason a real download would fail with, or 500 when the
/// copy cannot be written.
pub(super) async fn download(
    library: &Library,
    url: &url::Url,
    image_path: &Path,
) -> Result<Download, FetchFailure> {
    let fetched = fetch_for_registration(library, url.path(), url.query()).await?;
    let pieces: Vec<PathBuf> = fetched.pieces.into_iter().map(|(path, _)| path).collect();
    let target = image_path.to_owned();
    let copied = tokio::task::spawn_blocking(move || copy_pieces(&pieces, &target))
        .await
        .map_err(std::io::Error::other)
        .and_then(|result| result);
    if let Err(error) = copied {
        let _ = tokio::fs::remove_file(image_path).await;
        return Err(copy_failure(&error));
    }
    let (inspection, stored_size) = inspect_file(image_path)
        .await
        .map_err(|error| copy_failure(&error))?;
    Ok(Download {
        inspection,
        stored_size,
        object_name: fetched.object_name,
    })
}

/// Hard-links a single file where the file system allows it (objects are replaced by
/// rename, never changed in place, so the link keeps the bytes it had), and copies
/// otherwise. Several files are concatenated.
fn copy_pieces(pieces: &[PathBuf], target: &Path) -> std::io::Result<()> {
    if let [single] = pieces
        && std::fs::hard_link(single, target).is_ok()
    {
        return Ok(());
    }
    let mut output = BufWriter::with_capacity(1024 * 1024, std::fs::File::create(target)?);
    for piece in pieces {
        let mut input = BufReader::with_capacity(1024 * 1024, std::fs::File::open(piece)?);
        std::io::copy(&mut input, &mut output)?;
    }
    output.flush()
}

fn copy_failure(error: &std::io::Error) -> FetchFailure {
    tracing::error!(%error, "failed to copy the Orbit object for registration");
    FetchFailure {
        status: 500,
        reason: format!("copying the object into images/ failed: {error}"),
    }
}
