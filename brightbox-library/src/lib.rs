//! Workflows of the Brightbox Cloud image library, built on
//! [`brightbox_api`] and [`brightbox_ftp`].
//!
//! The main call is [`Library::upload_and_register`]: it takes a local disk
//! image and returns a registered, `available` [`brightbox_api::Image`]. On the
//! way it gets the account's library FTP credentials from the API, uploads
//! the file over explicit FTPS into `incoming/`, checks the remote size,
//! registers the file by name and polls the image until it is available.
//!
//! # Quick start
//!
//! ```no_run
//! use brightbox_api::{Arch, Client};
//! use brightbox_library::{ImageSpec, Library};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let api = Client::builder()
//!     .client_credentials("cli-xxxxx", "client secret".to_owned())
//!     .build()?;
//! let library = Library::builder(api).build();
//! let spec = ImageSpec::new("Debian 13", Arch::X86_64).description("Fresh install");
//! let image = library.upload_and_register("debian-13.qcow2", &spec).await?;
//! println!("{} is {}", image.id, image.status);
//! # Ok(())
//! # }
//! ```
//!
//! # Transports
//!
//! Uploads go through the [`Transport`] trait. The default is
//! [`FtpsTransport`], created from the credentials that
//! `POST /1.0/accounts/{id}/reset_ftp_password` returns. A caller can supply
//! another transport with [`LibraryBuilder::transport`].
//!
//! # What this crate does not do yet
//!
//! It does not resume interrupted uploads, retry failed ones, download
//! snapshots, or register images from an HTTP URL.

mod error;
mod events;
mod library;
mod preflight;
mod spec;
mod transport;

pub use error::LibraryError;
pub use events::{EventFn, JobEvent};
pub use library::{Library, LibraryBuilder};
pub use preflight::{Preflight, preflight};
pub use spec::ImageSpec;
pub use transport::{
    FtpsTransport, INCOMING_DIR, ProgressFn, Transport, TransportError, UploadedFile,
};
