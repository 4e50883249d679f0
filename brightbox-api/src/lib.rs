//! Typed async client for the [Brightbox Cloud](https://www.brightbox.com/) API.
//!
//! This first slice covers what the image library workflows need:
//!
//! - OAuth 2.0 client credentials with a cached access token. The token is renewed shortly before it expires, one
//!   request at a time however many calls race, and renewed once more when the API rejects it with
//!   `invalid_token`.
//! - Accounts: list, get, and the legacy `reset_ftp_password`.
//! - Images: list, get, register (by HTTP URL or legacy FTP file name), and a waiter that polls until the image
//!   is available.
//! - Typed ids ([`ImageId`], [`AccountId`]) and status enums that keep values added by the server later.
//! - One error enum, [`enum@Error`], that keeps the HTTP status, `error_name`, every `errors[]` entry and the
//!   `X-Request-Id` of failed calls, and names the JSON path of decode failures.
//! - Retries of `GET` requests on HTTP 429, 502, 503, 504, connection failures and timeouts, honouring
//!   `Retry-After`. `POST` requests are not retried because a repeat could create a duplicate.
//!
//! # Quick start
//!
//! ```no_run
//! use std::time::Duration;
//! use brightbox_api::{Arch, Client, ImageSource, RegisterImage, WaitOptions};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::builder()
//!     .client_credentials("cli-abc12", std::env::var("BRIGHTBOX_CLIENT_SECRET")?)
//!     .build()?;
//!
//! let source = ImageSource::HttpUrl("https://example.com/images/debian-13.img".parse()?);
//! let request = RegisterImage::new("debian-13", Arch::X86_64, source).username("debian");
//! let image = client.images().register(&request).await?;
//!
//! let options = WaitOptions::default().timeout(Duration::from_secs(600));
//! let image = client.images().wait_until_available(&image.id, &options).await?;
//! println!("{} is {}", image.id, image.status);
//! # Ok(())
//! # }
//! ```
//!
//! # Testing against a local server
//!
//! [`ClientBuilder::base_url`] points the client at any HTTP server, such as a mock server or an emulator. The
//! token endpoint is then `{base}token` and resources are under `{base}1.0/`.
//!
//! # Not covered yet
//!
//! Servers, volumes, Orbit object storage, image update and delete, snapshots, the password grant with refresh
//! tokens, and two-factor codes are not implemented in this version.

#[macro_use]
mod macros;

mod accounts;
mod auth;
mod client;
mod error;
mod id;
mod images;
mod retry;
mod wait;

pub use accounts::{Account, AccountStatus, Accounts, LibraryFtpCredentials};
pub use client::{
    Client, ClientBuilder, DEFAULT_BASE_URL, DEFAULT_POOL_IDLE_TIMEOUT, DEFAULT_TIMEOUT,
};
pub use error::{ApiError, Error, Result};
pub use id::{AccountId, ImageId, ParseIdError};
pub use images::{
    Arch, Image, ImageSource, ImageStatus, Images, ParseArchError, RegisterImage, SourceType,
};
pub use retry::RetryConfig;
pub use wait::WaitOptions;

/// Re-export of the `secrecy` crate, whose [`SecretString`](secrecy::SecretString) type carries secrets in this API.
pub use secrecy;
/// Re-export of the `url` crate, whose [`Url`](url::Url) is used for base URLs and HTTP image sources.
pub use url;
