//! Workflows of the Brightbox Cloud image library, built on
//! [`brightbox_api`] and [`brightbox_ftp`].
//!
//! A [`Library`] wraps an API client and offers one call per workflow:
//!
//! - [`Library::upload_and_register`] takes a local disk image and returns a
//!   registered, `available` [`brightbox_api::Image`]. It gets the account's
//!   library FTP credentials from the API, uploads the file over explicit
//!   FTPS into `incoming/`, checks the remote size, registers the file by
//!   name and polls the image until it is available.
//! - [`Library::snapshot_server`] snapshots a server into a new image, on
//!   the modern route or, where the API lacks it, the legacy one.
//! - [`Library::download_image`] downloads an image's file from `images/`
//!   with resume, a size check and SHA-256.
//! - [`Library::create_server`] builds a server from an image and waits
//!   until it is active.
//! - [`Library::latest_image`], [`Library::publish`] and [`Library::prune`]
//!   find the newest image of a name, publish a new version (deprecating
//!   older ones and locking the new one) and delete old unlocked images.
//! - [`Library::clean_incoming`] deletes the temporary files that
//!   interrupted uploads leave in `incoming/`.
//!
//! Each failure is a [`LibraryError`] variant that names the step and the
//! image or server involved, with the API or FTP error as its source.
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
//! Image files move through the [`Transport`] trait. The default is
//! [`FtpsTransport`], created from the credentials that
//! `POST /1.0/accounts/{id}/reset_ftp_password` returns. Uploads, downloads
//! and `clean_incoming` share it. When the FTP server rejects the password
//! because another client reset it, the library resets it once more and
//! tries again, once. A caller can supply another transport with
//! [`LibraryBuilder::transport`]; only [`Transport::upload`] is required.
//!
//! # Cancellation
//!
//! Every workflow stops where it is when its future is dropped, for example
//! by `tokio::time::timeout` or `JoinHandle::abort`. Files are written under
//! a temporary name (`.<name>.part`) and renamed only after the size check,
//! so a dropped upload never leaves a file under its final name in
//! `incoming/`, and a dropped download never leaves one at the destination.
//! The temporary files may remain: [`Library::clean_incoming`] removes those
//! of uploads, and the next download to the same path resumes its own. A
//! dropped workflow may also leave an image or server that the API already
//! created; list them to find it.
//!
//! # What this crate does not do yet
//!
//! It does not register images from an HTTP URL or upload to Orbit, the
//! object store today's Brightbox uses instead of the retired FTP service.

mod cleanup;
mod download;
mod error;
mod events;
mod library;
mod lifecycle;
mod orbit;
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
pub use orbit::{DEFAULT_STAGING_CONTAINER, OrbitTransport};
pub use preflight::{Preflight, preflight};
pub use server::ServerSpec;
pub use snapshot::SnapshotOptions;
pub use spec::ImageSpec;
pub use transport::{
    DownloadedFile, FtpsTransport, INCOMING_DIR, ProgressFn, Transport, TransportError,
    UploadedFile,
};
