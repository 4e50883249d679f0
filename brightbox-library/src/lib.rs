//! Workflows of the Brightbox Cloud image library, built on
//! [`brightbox_api`], [`brightbox_ftp`] and [`brightbox_orbit`].
//!
//! A [`Library`] wraps an API client and offers one call per workflow:
//!
//! - [`Library::upload_and_register`] takes a local disk image and returns a
//!   registered, `available` [`brightbox_api::Image`]. It checks the file
//!   ([`preflight`]), hands it to the [`Transport`], registers what the
//!   transport stored and polls the image until it is available.
//! - [`Library::snapshot_server`] snapshots a server into a new image, on
//!   the modern route or, where the API lacks it, the legacy one.
//! - [`Library::download_image`] downloads an image's file through the
//!   transport, checks its size and computes its SHA-256.
//! - [`Library::create_server`] builds a server from an image and waits
//!   until it is active.
//! - [`Library::latest_image`], [`Library::publish`] and [`Library::prune`]
//!   find the newest image of a name, publish a new version (deprecating
//!   older ones and locking the new one) and delete old unlocked images.
//! - [`Library::clean_incoming`] deletes the temporary files that
//!   interrupted FTPS uploads leave in `incoming/`.
//!
//! Each failure is a [`LibraryError`] variant that names the step and the
//! image or server involved, with the API or transport error as its source.
//!
//! # Quick start
//!
//! ```no_run
//! use brightbox_api::{Arch, Client};
//! use brightbox_library::{DownloadImageOptions, ImageSpec, Library, ServerSpec, SnapshotOptions};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let api = Client::builder()
//!     .client_credentials("cli-xxxxx", "client secret".to_owned())
//!     .build()?;
//! let library = Library::builder(api).build();
//! let spec = ImageSpec::new("Debian 13", Arch::X86_64).description("Fresh install");
//! let image = library.upload_and_register("debian-13.qcow2", &spec).await?;
//! println!("{} is {}", image.id, image.status);
//!
//! let server = library
//!     .create_server(&image.id, &ServerSpec::new().name("web-1").server_type("1gb.ssd"))
//!     .await?;
//! let snapshot = library.snapshot_server(&server.id, &SnapshotOptions::new()).await?;
//! let copy = library
//!     .download_image(&snapshot.id, "web-1.img", &DownloadImageOptions::new())
//!     .await?;
//! println!("{} bytes, {} format, sha256 {}", copy.bytes, copy.format, copy.sha256);
//! # Ok(())
//! # }
//! ```
//!
//! # Transports
//!
//! Image files move through the [`Transport`] trait. Two implementations
//! ship with the crate:
//!
//! - [`FtpsTransport`], the default, uploads into the library FTP server's
//!   `incoming/` with the credentials that
//!   `POST /1.0/accounts/{id}/reset_ftp_password` returns, and the image is
//!   registered by file name (`source`). Uploads, downloads from `images/`
//!   and `clean_incoming` share it. When the FTP server rejects the password
//!   because another client reset it, the library resets it once more and
//!   tries again, once. Brightbox retired this FTP service in 2023, so
//!   against today's Brightbox the password reset fails with
//!   [`brightbox_api::Error::FtpServiceRetired`]; the `brightbox-emulator`
//!   crate still serves it locally.
//! - [`OrbitTransport`] stages the file in an Orbit container (by default
//!   [`DEFAULT_STAGING_CONTAINER`]) and returns a temp URL, and the image is
//!   registered by `http_url`. It downloads snapshots from the account's
//!   `images` container, decoding Orbit's LZ4 form into a sparse raw file.
//!   This is the route of today's Brightbox.
//!
//! ```no_run
//! use std::sync::Arc;
//! use brightbox_api::{Arch, Client};
//! use brightbox_library::{ImageSpec, Library, OrbitTransport};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let api = Client::from_env()?;
//! let orbit = OrbitTransport::from_api(&api, "https://orbit.brightbox.com/v1/acc-xxxxx/".parse()?)?
//!     .remove_after_registration(true);
//! let library = Library::builder(api).transport(Arc::new(orbit)).build();
//! let image = library
//!     .upload_and_register("debian-13.qcow2", &ImageSpec::new("Debian 13", Arch::X86_64))
//!     .await?;
//! println!("{} is {}", image.id, image.status);
//! # Ok(())
//! # }
//! ```
//!
//! A caller can supply another transport with [`LibraryBuilder::transport`];
//! only [`Transport::upload`] is required.
//!
//! # Cancellation
//!
//! Every workflow stops where it is when its future is dropped, for example
//! by `tokio::time::timeout` or `JoinHandle::abort`. FTPS uploads write to
//! `.<name>.<fingerprint>.part` and downloads to `.<name>.part`, and each
//! file is renamed only after the size check. So a dropped upload never
//! leaves a file under its final name in `incoming/`, and a dropped download
//! never leaves one at the destination. The
//! temporary files remain on purpose: the next FTPS upload of the same
//! unchanged file resumes its own, and so does the next download to the same
//! path. [`Library::clean_incoming`] removes those of FTPS uploads.
//! A dropped workflow may also leave an image or server that the API already
//! created; list them to find it.
//!
//! # What this crate does not do
//!
//! - It does not register images from a volume or from an HTTP URL that the
//!   caller already has; use [`brightbox_api::Images::register`] with
//!   [`brightbox_api::ImageSource`] for those.
//! - [`Library::prune`] keeps the newest `keep_latest` images of all matching
//!   names together, not per name.
//! - Downloads use one connection: `brightbox-ftp` can fetch segments in
//!   parallel, but the [`Transport`] trait does not expose it.
//! - An Orbit download does not resume across calls, because the LZ4 decoder
//!   state is not saved; [`OrbitTransport`] downloads only from the `images`
//!   container.
//! - [`Library::clean_incoming`] needs a transport that lists and deletes,
//!   such as [`FtpsTransport`]. With [`OrbitTransport`] it fails with
//!   [`TransportError::Unsupported`], and staged objects stay in the Orbit
//!   container unless [`OrbitTransport::remove_after_registration`] is set.
//! - Nothing in this crate has run against the live Brightbox API or Orbit.
//!   The wire formats follow public clients and documentation, and the tests
//!   run against `brightbox-emulator` and wiremock.

mod cleanup;
mod download;
mod error;
mod events;
mod library;
mod lifecycle;
mod orbit;
mod partial_upload;
mod preflight;
mod server;
mod snapshot;
mod spec;
mod transport;

pub use download::{DownloadImageOptions, DownloadedImage, IMAGES_DIR};
pub use error::LibraryError;
pub use events::{EventFn, JobEvent};
pub use library::{Library, LibraryBuilder};
pub use lifecycle::{KeepReason, KeptImage, PruneOptions, PruneReport, PublishOptions, Published};
pub use orbit::{
    DEFAULT_STAGING_CONTAINER, OrbitTransport, TEMP_URL_MARGIN, TEMP_URL_MAX_LIFETIME,
    TEMP_URL_MIN_FETCH_RATE, temp_url_lifetime,
};
pub use partial_upload::upload_temporary_name;
pub use preflight::{Preflight, preflight};
pub use server::ServerSpec;
pub use snapshot::SnapshotOptions;
pub use spec::ImageSpec;
pub use transport::{
    DownloadedFile, FtpsTransport, INCOMING_DIR, ProgressFn, Transport, TransportError,
    UploadedFile,
};
