//! Typed async client for the [Brightbox Cloud](https://www.brightbox.com/) API.
//!
//! - **Authentication.** OAuth 2.0 client credentials (`cli-…` and secret) or the password grant (user name or
//!   `usr-…`, password, and an application, by default the Brightbox CLI's public `app-12345`). The access token
//!   is cached, renewed shortly before it expires, and requested once however many calls race. The password
//!   grant's refresh token is used before the password is sent again. Two-factor codes come from a callback
//!   ([`ClientBuilder::otp_callback`]) and go out in `X-Brightbox-OTP`. When the API rejects a token with
//!   `invalid_token`, the client gets a new one and replays the request once.
//! - **Configuration.** [`ClientBuilder`], [`Client::from_env`] (`BRIGHTBOX_CLIENT_ID`, `BRIGHTBOX_USERNAME` and
//!   others) and [`Client::from_cli_config`], which reads the Brightbox CLI's `~/.brightbox/config`.
//! - **Resources.** Accounts, including `GET /1.0/account` and the retired FTP password reset. Images: list,
//!   get, register (from an HTTP URL, server, volume or legacy FTP upload), update, deprecate, delete, lock.
//!   Servers: create from an image, delete, both snapshot routes. Volumes, server types and zones.
//! - **Image queries.** [`ImageFilter`] filters the image list client side; [`Images::most_recent`] picks by
//!   `created_at`, never by name.
//! - **Waiters.** Poll an image, server or volume until it reaches a status, with a deadline, doubling interval
//!   and jitter. Terminal states end the wait early, and errors carry the last poll.
//! - **Types.** Validated ids per prefix ([`ImageId`], [`ServerId`], [`VolumeId`], [`ServerTypeId`],
//!   [`ZoneId`], [`AccountId`], [`UserId`], [`ClientId`], [`AppId`] and more). Status enums keep values added by
//!   the server later, and models accept `null`, absent and extra fields.
//! - **Errors.** One `#[non_exhaustive]` [`enum@Error`] by meaning (unauthenticated, two-factor required,
//!   forbidden, not found, conflict, validation, gone, rate limited, server, transport, decode). Each variant
//!   built from a response carries an [`ApiError`] with the status, `error_name`, `errors[]`, the OAuth
//!   `error`/`error_description`, `X-Request-Id`, attempts and elapsed time. [`Error::is_retryable`] tells
//!   whether a repeat can help. No error, `Debug` output or log line contains a secret, password, token or
//!   two-factor code.
//! - **Retries and timeouts.** See [`RetryConfig`]: `GET`, `PUT` and `DELETE` are retried on 429, 502, 503, 504,
//!   connection failures and timeouts, honouring `Retry-After`. A `POST` is resent only when it cannot have
//!   reached the server. Connect and request timeouts are set on the builder.
//! - **Tracing.** Each request runs in a `brightbox_api.request` span with the method, path, status and
//!   `X-Request-Id`; public operations have their own spans with the resource ids.
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
//! let image = client
//!     .images()
//!     .wait_until_available_with_progress(&image.id, &options, |progress| {
//!         println!("{} MB stored", progress.current.disk_size.unwrap_or(0));
//!     })
//!     .await?;
//! println!("{} is {}", image.id, image.status);
//! # Ok(())
//! # }
//! ```
//!
//! # Creating a server from the newest matching image
//!
//! ```no_run
//! use brightbox_api::{Arch, Client, CreateServer, ImageFilter, NamePattern, ServerStatus, WaitOptions};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::from_env()?;
//! let filter = ImageFilter::new()
//!     .official(true)
//!     .arch(Arch::X86_64)
//!     .name(NamePattern::Glob("ubuntu-noble-*".to_owned()));
//! let Some(image) = client.images().most_recent(&filter).await? else {
//!     return Err("no matching image".into());
//! };
//! let server_type = client.server_types().find_by_handle("1gb.ssd").await?;
//! let zone = client.zones().find_by_handle("gb1-a").await?;
//!
//! let request = CreateServer::new(image.id)
//!     .name("web-1")
//!     .server_type(server_type.id)
//!     .zone(zone.id)
//!     .user_data(b"#cloud-config\npackages: [nginx]\n".to_vec());
//! let server = client.servers().create(&request).await?;
//! let server = client
//!     .servers()
//!     .wait_for_status(&server.id, ServerStatus::Active, &WaitOptions::default())
//!     .await?;
//! println!("{} is {}", server.id, server.status);
//! # Ok(())
//! # }
//! ```
//!
//! # Testing against a local server
//!
//! [`ClientBuilder::base_url`] points the client at any HTTP server, such as a mock server or an emulator. The
//! token endpoint is then `{base}token` (or `{auth_url}token`) and resources are under `{base}1.0/`.
//!
//! # What this crate does not do
//!
//! - Orbit object storage and its temp URLs: the `brightbox-orbit` crate covers them, and
//!   [`Client::access_token`] supplies the OAuth token it sends.
//! - Cloud IPs, server groups, firewall policies, load balancers, database servers, users, API clients and
//!   collaborations, and account updates.
//! - Server actions (start, stop, reboot, reset, resize, console), server updates, and volume create, attach,
//!   detach and resize.
//! - Token caching across processes: the Brightbox CLI keeps tokens on disk, while each [`Client`] starts with an
//!   empty in-memory cache.
//! - Scopes: tokens are requested without a `scope`, which the API treats as all scopes.
//! - A total deadline per call across retries. Each request has its own timeout, and retries are bounded by
//!   [`RetryConfig::max_attempts`].
//! - Server-side filtering or paging of lists: [`ImageFilter`] filters the full list on the client, as the
//!   Brightbox CLI does.
//!
//! # Feature flags
//!
//! - `fuzzing` (off by default) exposes internal parsers to the fuzz targets in the
//!   repository's `fuzz/` folder. It is unstable, hidden from these docs and outside the
//!   semver promise; do not enable it in applications.

#[macro_use]
mod macros;

mod accounts;
mod auth;
mod builder;
mod client;
mod config;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod id;
mod images;
mod retry;
mod servers;
mod wait;

pub use accounts::{Account, AccountStatus, Accounts, LibraryFtpCredentials};
pub use builder::{
    CLI_APP_ID, ClientBuilder, DEFAULT_BASE_URL, DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_POOL_IDLE_TIMEOUT, DEFAULT_TIMEOUT,
};
pub use client::Client;
pub use config::{CliConfig, CliConfigSection};
pub use error::{ApiError, Error, Result};
pub use id::{
    AccountId, AppId, ClientId, CloudIpId, ImageId, ParseIdError, ServerGroupId, ServerId,
    ServerTypeId, UserId, VolumeId, ZoneId,
};
pub use images::{
    Arch, Image, ImageFilter, ImageSource, ImageStatus, Images, NamePattern, ParseArchError,
    RegisterImage, SourceType, UpdateImage,
};
pub use retry::RetryConfig;
pub use servers::{
    CreateServer, ImageRef, MAX_USER_DATA_ENCODED_LEN, Server, ServerRef, ServerStatus, ServerType,
    ServerTypeRef, ServerTypeStatus, ServerTypes, Servers, Volume, VolumeEntry, VolumeStatus,
    Volumes, Zone, ZoneRef, Zones,
};
pub use wait::{Resource, WaitOptions, WaitProgress};

/// Re-export of the `secrecy` crate, whose [`SecretString`](secrecy::SecretString) type carries secrets in this API.
pub use secrecy;
/// Re-export of the `url` crate, whose [`Url`](url::Url) is used for base URLs and HTTP image sources.
pub use url;
