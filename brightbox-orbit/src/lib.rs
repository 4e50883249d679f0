//! Client for Brightbox Orbit, the Swift-compatible object store, as used for disk images.
//!
//! Brightbox retired its library FTP service in 2023. Since then an image is uploaded to Orbit
//! and registered through the Brightbox API with `http_url` set to a temp URL of the object.
//! Snapshots are read from the account's read-only `images` container, where each object is
//! named by image id and contains one LZ4 frame over the raw disk. This crate is the Orbit transport for those
//! steps. It takes the OAuth access token from the caller and sends it as `X-Auth-Token`; it
//! does not call the Brightbox API itself.
//!
//! # Quick start
//!
//! ```no_run
//! use std::path::Path;
//! use std::time::{Duration, SystemTime};
//!
//! use brightbox_orbit::{
//!     DownloadOptions, OrbitClient, TempUrlMethod, UploadOptions, temp_url_expiry_for,
//! };
//! use secrecy::SecretString;
//!
//! # async fn run() -> Result<(), brightbox_orbit::OrbitError> {
//! let orbit = OrbitClient::builder()
//!     .storage_url("https://orbit.brightbox.com/v1/acc-xxxxx/".parse().expect("valid URL"))
//!     .token(SecretString::from("access token from the Brightbox API"))
//!     .build()?;
//!
//! // Stage an image: large files become a Static Large Object, resumable by segment.
//! orbit.ensure_container("image-uploads").await?;
//! let uploaded = orbit
//!     .upload_file("image-uploads", "ubuntu.raw", Path::new("ubuntu.raw"), &UploadOptions::default())
//!     .await?;
//!
//! // A temp URL the image service can fetch without a token; pass it as `http_url`.
//! let key = orbit.ensure_temp_url_key().await?;
//! let ttl = temp_url_expiry_for(uploaded.size, 20 << 20, Duration::from_secs(3600));
//! let http_url = orbit.temp_url(
//!     TempUrlMethod::Get,
//!     "image-uploads",
//!     "ubuntu.raw",
//!     &key,
//!     SystemTime::now() + ttl,
//! )?;
//! # let _ = http_url;
//!
//! // Fetch a snapshot as a sparse raw disk.
//! let options = DownloadOptions::default().expected_size(20 << 30);
//! orbit
//!     .download_snapshot("img-3anq3", Path::new("snapshot.raw"), &options)
//!     .await?;
//! # Ok(())
//! # }
//! ```
//!
//! # What the client does
//!
//! - [`OrbitClient::upload_file`] streams the file with constant memory, checks each MD5 ETag,
//!   and splits files over [`UploadOptions::segment_size`] (default 1 GiB) into a Static Large
//!   Object whose stored segments are reused by the next attempt.
//! - [`OrbitClient::ensure_temp_url_key`] sets the account temp URL key only when none exists,
//!   because changing it invalidates every outstanding temp URL.
//! - [`OrbitClient::download_snapshot`] decodes the LZ4 frame while it downloads, writes a
//!   sparse file under a `.part` name and renames it when complete. A broken response
//!   continues with `Range`.
//! - After an HTTP 401 the [`TokenProvider`] is asked for a new token once and the request is
//!   repeated.
//!
//! Tokens, temp URL keys and signatures never appear in `Debug` output, errors or logs; use
//! [`redact_url`] before logging a temp URL yourself.
//!
//! # What this crate does not do
//!
//! - Retry every call. Inside one call, upload `PUT`s are retried on retryable errors
//!   ([`UploadOptions::max_attempts`]), downloads continue with `Range`
//!   ([`DownloadOptions::max_attempts`]), and an HTTP 401 triggers one token refresh. The
//!   container, account and delete calls are not retried; check [`OrbitError::is_retryable`].
//!   Calling `upload_file` again resumes a segmented upload.
//! - Upload segments in parallel: they go one at a time.
//! - Resume a decoded download across calls, because the LZ4 decoder state is not saved. A
//!   compressed download ([`DownloadOptions::keep_compressed`]) continues from its `.part`
//!   file.
//! - Swift v1 authentication (`X-Auth-User`/`X-Auth-Key`) and Dynamic Large Objects: pass an
//!   OAuth token, and large files become Static Large Objects.
//! - Call the Brightbox API: registering the staged object by `http_url` is the caller's step,
//!   or `brightbox-library`'s.
//! - Enforce Swift's 1 MiB minimum segment size, so that tests stay small. Orbit's own maximum
//!   object size is unverified; stock Swift's is 5 GiB, and the default segment size is 1 GiB.
//!
//! # Feature flags
//!
//! - `fuzzing` (off by default) exposes internal parsers to the fuzz targets in the
//!   repository's `fuzz/` folder. It is unstable, hidden from these docs and outside the
//!   semver promise; do not enable it in applications.

mod client;
mod download;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod tempurl;
mod upload;

pub use client::{
    AccountInfo, ObjectEntry, ObjectInfo, OrbitClient, OrbitClientBuilder, TokenProvider,
};
pub use download::{DownloadOptions, DownloadedSnapshot, IMAGES_CONTAINER};
pub use error::{BoxError, OrbitError, Result};
pub use tempurl::{TempUrlMethod, redact_url, temp_url_expiry_for};
pub use upload::{
    DEFAULT_SEGMENT_SIZE, MAX_SEGMENT_SIZE, MAX_SEGMENTS, ProgressCallback, TransferProgress,
    UploadOptions, UploadedObject,
};
