//! A local Brightbox image library for offline examples and end-to-end tests.
//!
//! [`Emulator`] runs two servers on 127.0.0.1 over one storage folder that contains
//! `incoming/`, `images/` and `orbit/`:
//!
//! - an HTTP server with the Brightbox API subset and an Orbit subset:
//!   - `POST /token` (OAuth 2 client credentials, and the password grant for one user
//!     with two-factor authentication: [`USER_NAME`], [`USER_PASSWORD`], [`USER_OTP_CODE`]);
//!   - accounts: `GET /1.0/accounts`, `GET /1.0/accounts/{id}`, `GET /1.0/account` and
//!     `POST /1.0/accounts/{id}/reset_ftp_password`;
//!   - images: `GET /1.0/images` (oldest first), `GET`, `PUT` and `DELETE /1.0/images/{id}`,
//!     `PUT /1.0/images/{id}/lock_resource` and `/unlock_resource`, and `POST /1.0/images`
//!     with `source` (a file name in `incoming/`), `http_url` (an object in the emulator's
//!     own Orbit, usually a temp URL) or `server` (a snapshot);
//!   - servers: `GET` and `POST /1.0/servers`, `GET` and `DELETE /1.0/servers/{id}`,
//!     `PUT /1.0/servers/{id}/lock_resource` and `/unlock_resource`, and the legacy
//!     `POST /1.0/servers/{id}/snapshot`, which names the new image only in a `Link` header;
//!   - `GET /1.0/server_types`, `GET /1.0/zones` and one of each by id or handle;
//!   - Orbit, Brightbox's Swift-compatible object store, under `/v1/` (see [Orbit](#orbit));
//! - a real explicit-FTPS server (libunftp) that requires TLS on the control and data
//!   connections. The user is the account id and the password is the one returned by the
//!   latest `reset_ftp_password` call. `incoming/` is writable and `images/` is read-only.
//!
//! The FTPS certificate is signed by a CA generated at start; clients trust
//! [`Emulator::ca_certificate_pem`].
//!
//! With [`EmulatorConfig::state_dir`] (`--state DIR` on the binary) the emulator keeps
//! its image and server records, the API client secret, the FTP password and the
//! certificates in a folder outside the storage folder, and a later start reloads them.
//!
//! Two official images, `img-noble` ("Ubuntu Noble 24.04 server") and `img-bookw`
//! ("Debian Bookworm 12 server"), owned by `acc-brbox`, are listed from the start. They
//! have no file in `images/`, but servers can be built from them. A snapshot of such a
//! server is a qcow2 header only (512 bytes stating the image's virtual size), which the
//! emulator reads as qcow2 but `qemu-img` rejects.
//!
//! # Quick start
//!
//! ```
//! use std::time::Duration;
//! use brightbox_emulator::{Emulator, EmulatorConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let emulator = Emulator::start_with(
//!     EmulatorConfig::default().registration_delay(Duration::from_millis(100)),
//! )
//! .await?;
//!
//! // Point a Brightbox client at these values.
//! println!("API:     {}", emulator.api_url());
//! println!("client:  {}", emulator.client_id());
//! println!("account: {}", emulator.account_id());
//! println!("FTPS:    {}", emulator.ftp_addr());
//! assert!(emulator.ca_certificate_pem().starts_with("-----BEGIN CERTIFICATE-----"));
//!
//! // Files placed in incoming/ can be registered with POST /1.0/images {"source": name}.
//! std::fs::write(emulator.incoming_dir().join("disk.img"), b"raw disk bytes")?;
//!
//! // Make the next registration create the image but return 502, and the next two
//! // image listings return 503.
//! let faults = emulator.faults();
//! faults.fail_next_register_after_create(502);
//! faults.fail_next_requests("/1.0/images", 503, 2);
//!
//! emulator.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! The crate also builds a binary, `brightbox-emulator`, that prints `KEY=value` lines
//! (`BRIGHTBOX_API_URL`, `BRIGHTBOX_CLIENT_ID`, `BRIGHTBOX_CLIENT_SECRET`,
//! `BRIGHTBOX_ACCOUNT`, `BRIGHTBOX_ORBIT_URL`, `BRIGHTBOX_FTP_ADDR`,
//! `BRIGHTBOX_FTP_CA_FILE` and `BRIGHTBOX_STORAGE`) and runs until Ctrl-C.
//!
//! # Orbit
//!
//! [`Emulator::orbit_url`] is the account storage URL, `{api_url}v1/acc-emu01/`, on the
//! API port. It serves the standard Swift wire format, so any Swift client works:
//!
//! - auth: `X-Auth-Token` with a token from `/token`, or Swift v1 auth at `GET /v1/auth`
//!   with `X-Auth-User: cli-emu01` and `X-Auth-Key: <client secret>`, which returns
//!   `X-Auth-Token` and `X-Storage-Url`. Other requests get 401;
//! - the account: `HEAD`, `GET` (listing, JSON with `?format=json`) and `POST` with
//!   `X-Account-Meta-Temp-Url-Key` (and `-Key-2`) to set the temp URL keys;
//! - containers: `PUT`, `HEAD`, `GET` (with `prefix`, `delimiter`, `marker`, `end_marker`
//!   and `limit`) and `DELETE` (409 while not empty);
//! - objects: `PUT` (the ETag is the MD5; a mismatching `ETag` request header gets 422),
//!   `GET` with single `Range` requests, `HEAD` and `DELETE`;
//! - Static Large Objects: `PUT ?multipart-manifest=put` with `[{path, etag, size_bytes}]`
//!   checked against the stored segments (400 on a mismatch), `GET` streams the
//!   segments in order, and `DELETE ?multipart-manifest=delete` removes them too;
//! - temp URLs: `temp_url_sig` and `temp_url_expires` authorise GET, HEAD and PUT
//!   without a token (see [`temp_url_signature`]);
//! - the read-only `images` container lists every `available` or `deprecated` image of
//!   the account that has a file, and `GET images/<id>` returns it as one LZ4 frame.
//!
//! Object bytes are files in `orbit/<container>/<object>` (names percent-encoded into
//! one file name); uploads stream to a temporary file while hashing. The first request
//! that needs an image from the `images` container compresses it into
//! `orbit/.images-lz4/<id>` and later requests reuse that copy.
//!
//! ```no_run
//! use brightbox_emulator::{Emulator, temp_url_signature};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let emulator = Emulator::start().await?;
//! let expires = 4_102_444_800; // 2100-01-01
//! let path = format!("/v1/{}/uploads/disk.img", emulator.account_id());
//! let signature = temp_url_signature("my-key", "GET", expires, &path);
//! // After POST {orbit_url} with X-Account-Meta-Temp-Url-Key: my-key and a PUT of the
//! // object, this URL downloads it without a token and registers it as an image:
//! let url = format!(
//!     "{}uploads/disk.img?temp_url_sig={signature}&temp_url_expires={expires}",
//!     emulator.orbit_url()
//! );
//! # let _ = url;
//! # Ok(())
//! # }
//! ```
//!
//! # Faults
//!
//! [`Emulator::faults`] returns a [`Faults`] handle for error-path tests. It makes a
//! registration fail before or after creating the image, makes new images end `failed`,
//! and makes the retired FTP endpoints return `410 Gone` as they do today. It also sends
//! error statuses (with `Retry-After`) on chosen paths and changes the registration delay. [`EmulatorConfig::ftp_retired`] and
//! [`EmulatorConfig::registration_outcome_failed`] set the two switches at start.
//!
//! # What this crate does not do
//!
//! - Without [`EmulatorConfig::state_dir`], image and server metadata lives in memory: a
//!   restarted emulator does not know the images already in `images/`. A state folder
//!   keeps no access tokens, Orbit records or fault settings.
//! - Registration only moves the file and reads its header; it does not convert images.
//! - Only one account and one API client exist; `account_id` query parameters are ignored.
//! - Registration by `volume`, volumes, cloud IPs and server actions other than delete
//!   and snapshot are not emulated. `http_url` must name an object in the emulator's own
//!   Orbit: the emulator never contacts other hosts.
//! - Orbit keeps its container and object records in memory, has one account, and has
//!   no container ACLs, Dynamic Large Objects, object copy (`COPY`, `X-Copy-From`),
//!   object `POST`, expiring objects or versioning. The `images` container holds the
//!   stored image file compressed as it is (a qcow2 upload stays qcow2 inside the LZ4
//!   frame), while Brightbox stores raw disks.
//! - Servers run nothing: a server's disk is a copy of its image file (a hard link where
//!   the file system allows it) kept in a temporary folder outside the storage folder.
//!
//! # Feature flags
//!
//! - `fuzzing` (off by default) exposes internal parsers to the fuzz targets in the
//!   repository's `fuzz/` folder. It is unstable, hidden from these docs and outside the
//!   semver promise; do not enable it in applications.

mod api;
mod catalog;
mod error;
mod faults;
mod ftp;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod image_format;
mod library;
mod orbit;
mod secret;
mod state;
mod tls;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use crate::api::auth::{CLI_APP_ID, USER_NAME, USER_OTP_CODE, USER_PASSWORD};
pub use crate::error::EmulatorError;
pub use crate::faults::Faults;
use crate::ftp::{FtpPassword, FtpServer, IMAGES, INCOMING, LibraryAuthenticator, TlsFiles};
use crate::library::{Library, LibrarySettings};
use crate::state::{StateDir, StoredCredentials};
use crate::tls::TlsMaterial;

/// Returns the `temp_url_sig` of a Swift temp URL: the lowercase hex HMAC-SHA1 of
/// `"{method}\n{expires}\n{path}"` keyed with the account's temp URL key, where `path`
/// is `/v1/<account>/<container>/<object>` and `expires` is in seconds since the Unix epoch.
///
/// The emulator's Orbit accepts a URL with `?temp_url_sig=<this>&temp_url_expires=<expires>`
/// for GET, HEAD and PUT until `expires`.
pub fn temp_url_signature(key: &str, method: &str, expires: i64, path: &str) -> String {
    orbit::temp_url::sign(key, method, expires, path)
}

/// The id of the emulated account, which is also the FTP user name.
pub const ACCOUNT_ID: &str = "acc-emu01";
/// The id of the emulated API client.
pub const CLIENT_ID: &str = "cli-emu01";

const CLIENT_SECRET_LEN: usize = 32;
const DEFAULT_REGISTRATION_DELAY: Duration = Duration::from_millis(500);
/// Access tokens last two hours on the real API.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(7200);
const API_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(2);

/// Settings for [`Emulator::start_with`].
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    storage_dir: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    registration_delay: Duration,
    token_lifetime: Duration,
    api_port: u16,
    ftp_port: u16,
    ftp_retired: bool,
    registration_outcome_failed: bool,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            storage_dir: None,
            state_dir: None,
            registration_delay: DEFAULT_REGISTRATION_DELAY,
            token_lifetime: DEFAULT_TOKEN_LIFETIME,
            api_port: 0,
            ftp_port: 0,
            ftp_retired: false,
            registration_outcome_failed: false,
        }
    }
}

impl EmulatorConfig {
    /// Sets the storage folder that contains `incoming/`, `images/` and `orbit/`, creating them if missing.
    ///
    /// By default the emulator uses a fresh temporary folder that it removes on drop.
    /// A folder set here is kept.
    #[must_use]
    pub fn storage_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.storage_dir = Some(dir.into());
        self
    }

    /// Sets the state folder, which keeps the image and server records, the API client
    /// secret, the FTP password and the TLS certificates across restarts. The default is
    /// none: each start generates new ones and lists only the official images.
    ///
    /// The folder is created if missing and set to mode `0700`, and its files are `0600`
    /// (on Unix). It must lie outside the storage folder, which FTP clients can read, and
    /// needs [`EmulatorConfig::storage_dir`], which keeps the image files. A start with a
    /// state folder from an earlier run reloads it: images that were `creating` become
    /// `available` (or `failed`) at the time they would have without the restart, or at
    /// once when that time has passed. Pass the same ports too
    /// ([`EmulatorConfig::api_port`], [`EmulatorConfig::ftp_port`]), so that clients
    /// reconnect to the same addresses. Two emulators must not share a state folder.
    #[must_use]
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// Sets how long a registered image or a snapshot stays `creating` before it becomes
    /// `available` (or `failed`), how long a new server stays `creating` before it becomes
    /// `active`, and how long a deleted server stays `deleting`. The default is 500 ms.
    /// [`Faults::registration_delay`] changes it while the emulator runs.
    #[must_use]
    pub fn registration_delay(mut self, delay: Duration) -> Self {
        self.registration_delay = delay;
        self
    }

    /// Sets how long an access token is accepted. `expires_in` reports it in whole seconds.
    /// The default is two hours, as on the real API.
    #[must_use]
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.token_lifetime = lifetime;
        self
    }

    /// Sets the API port on 127.0.0.1. The default, 0, picks a free port.
    #[must_use]
    pub fn api_port(mut self, port: u16) -> Self {
        self.api_port = port;
        self
    }

    /// Sets the FTPS control port on 127.0.0.1. The default, 0, picks a free port.
    #[must_use]
    pub fn ftp_port(mut self, port: u16) -> Self {
        self.ftp_port = port;
        self
    }

    /// Starts with the FTP service retired, as on today's Brightbox: see
    /// [`Faults::ftp_retired`]. The default is false.
    #[must_use]
    pub fn ftp_retired(mut self, retired: bool) -> Self {
        self.ftp_retired = retired;
        self
    }

    /// Starts with every new image ending `failed`: see
    /// [`Faults::registration_outcome_failed`]. The default is false.
    #[must_use]
    pub fn registration_outcome_failed(mut self, failed: bool) -> Self {
        self.registration_outcome_failed = failed;
        self
    }
}

/// A running emulator: the API and FTPS servers and their storage folder.
///
/// Dropping it signals both servers to stop and removes a temporary storage folder.
/// [`Emulator::shutdown`] also waits for the servers to stop.
pub struct Emulator {
    library: Arc<Library>,
    api: ApiServer,
    ftp: Option<FtpServer>,
    tls: TlsMaterial,
    // Declared last so the folders outlive the servers that use them.
    _disks: Option<TempDir>,
    _temp_storage: Option<TempDir>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("api_url", &self.library.api_url)
            .field("orbit_url", &self.library.orbit_url)
            .field("ftp_addr", &self.library.ftp_addr)
            .field("account_id", &self.library.account_id)
            .field("client_id", &self.library.client_id)
            .field("client_secret", &"<redacted>")
            .field("storage_dir", &self.library.storage)
            .finish_non_exhaustive()
    }
}

impl Emulator {
    /// Starts an emulator with the default [`EmulatorConfig`].
    ///
    /// Must be called inside a Tokio runtime.
    ///
    /// # Errors
    ///
    /// See [`Emulator::start_with`].
    pub async fn start() -> Result<Emulator, EmulatorError> {
        Self::start_with(EmulatorConfig::default()).await
    }

    /// Starts an emulator: prepares the storage folder, generates the certificates, starts
    /// the FTPS server and waits until it accepts connections, then starts the API server.
    ///
    /// Must be called inside a Tokio runtime.
    ///
    /// # Errors
    ///
    /// - [`EmulatorError::StorageDir`], [`EmulatorError::StorageNotADirectory`] or
    ///   [`EmulatorError::TempDir`] when the storage folder or the temporary folder for
    ///   server disks cannot be prepared;
    /// - [`EmulatorError::StateWithoutStorage`], [`EmulatorError::StateInsideStorage`],
    ///   [`EmulatorError::StateNotADirectory`], [`EmulatorError::StateFile`] or
    ///   [`EmulatorError::StateInvalid`] when a state folder is set and cannot be used or
    ///   loaded;
    /// - [`EmulatorError::Certificate`] or [`EmulatorError::TlsFile`] when the TLS
    ///   material cannot be generated or written;
    /// - [`EmulatorError::Bind`] when a port is taken;
    /// - [`EmulatorError::FtpServer`] or [`EmulatorError::FtpNotReady`] when the FTPS
    ///   server does not start.
    #[tracing::instrument(name = "emulator_start", skip_all)]
    pub async fn start_with(config: EmulatorConfig) -> Result<Emulator, EmulatorError> {
        let (storage, temp_storage) = prepare_storage(config.storage_dir.as_deref())?;
        let state = match (&config.state_dir, &config.storage_dir) {
            (Some(state), Some(_)) => Some(Arc::new(StateDir::open(state, &storage)?)),
            (Some(state), None) => {
                return Err(EmulatorError::StateWithoutStorage {
                    state: state.clone(),
                });
            }
            (None, _) => None,
        };
        let tls = match &state {
            Some(state) => tls::load_or_generate(&state.tls_dir())?,
            None => tls::generate()?,
        };
        let credentials = load_or_create_credentials(state.as_deref())?;

        let ftp_password = Arc::new(FtpPassword::with_password(credentials.ftp_password));
        let authenticator = Arc::new(LibraryAuthenticator {
            account_id: ACCOUNT_ID.to_owned(),
            password: ftp_password.clone(),
        });
        let tls_files = TlsFiles {
            chain: tls.chain_path.clone(),
            key: tls.key_path.clone(),
        };
        let ftp = FtpServer::start(&storage, &tls_files, config.ftp_port, authenticator).await?;

        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, config.api_port))
            .await
            .map_err(|source| EmulatorError::Bind {
                service: "API",
                port: config.api_port,
                source,
            })?;
        let api_addr = listener
            .local_addr()
            .map_err(|source| EmulatorError::Bind {
                service: "API",
                port: config.api_port,
                source,
            })?;

        // Server disks live in the state folder when there is one, so that servers keep
        // their disks across restarts.
        let (disks, temp_disks) = match &state {
            Some(state) => (state.disks_dir(), None),
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("brightbox-emulator-disks-")
                    .tempdir()
                    .map_err(|source| EmulatorError::TempDir { source })?;
                restrict_to_owner(temp.path())?;
                (temp.path().to_owned(), Some(temp))
            }
        };
        let catalog = match &state {
            Some(state) => state.load_catalog()?,
            None => state::LoadedCatalog::default(),
        };
        for image in catalog.images.iter().filter(|image| image.has_file) {
            let path = storage.join(IMAGES).join(&image.id);
            if !path.is_file() {
                tracing::warn!(image_id = image.id, path = %path.display(), "the state lists an image whose file is missing; servers and downloads of it will fail");
            }
        }
        if state.is_some() {
            tracing::info!(
                images = catalog.images.len(),
                servers = catalog.servers.len(),
                resumed = catalog.resumed,
                "state loaded"
            );
        }
        let faults = Faults::new(
            config.registration_delay,
            config.ftp_retired,
            config.registration_outcome_failed,
        );

        let library = Arc::new(Library::new(LibrarySettings {
            account_id: ACCOUNT_ID.to_owned(),
            client_id: credentials.client_id,
            client_secret: credentials.client_secret,
            api_url: format!("http://{api_addr}/"),
            ftp_addr: ftp.addr,
            storage,
            disks,
            token_lifetime: config.token_lifetime,
            ftp_password,
            faults,
            state,
            images: catalog.images,
            servers: catalog.servers,
        }));
        let api = ApiServer::spawn(listener, api::router(library.clone()));

        tracing::info!(
            api_url = library.api_url,
            ftp_addr = %library.ftp_addr,
            storage = %library.storage.display(),
            account_id = library.account_id,
            client_id = library.client_id,
            "emulator started"
        );
        Ok(Emulator {
            library,
            api,
            ftp: Some(ftp),
            tls,
            _disks: temp_disks,
            _temp_storage: temp_storage,
        })
    }

    /// Returns the API base URL with a trailing slash, such as `http://127.0.0.1:PORT/`.
    ///
    /// The token endpoint is `{api_url}token` and the API lives under `{api_url}1.0/`.
    pub fn api_url(&self) -> &str {
        &self.library.api_url
    }

    /// Returns the API client id, [`CLIENT_ID`].
    pub fn client_id(&self) -> &str {
        &self.library.client_id
    }

    /// Returns the API client secret: random for each start, or the one stored in the
    /// state folder when [`EmulatorConfig::state_dir`] is set.
    pub fn client_secret(&self) -> &str {
        &self.library.client_secret
    }

    /// Returns the account id, [`ACCOUNT_ID`].
    pub fn account_id(&self) -> &str {
        &self.library.account_id
    }

    /// Returns the Orbit (Swift) account URL with a trailing slash, such as
    /// `http://127.0.0.1:PORT/v1/acc-emu01/`. Orbit shares the API port.
    pub fn orbit_url(&self) -> String {
        self.library.orbit_url.clone()
    }

    /// Returns the folder under the storage folder that contains the Orbit containers,
    /// one subfolder per container with one file per object.
    pub fn orbit_dir(&self) -> PathBuf {
        self.library.storage.join(orbit::store::ORBIT)
    }

    /// Returns the FTP user name, which is the account id.
    pub fn ftp_user(&self) -> &str {
        &self.library.account_id
    }

    /// Replaces the library FTP password with a new random one and returns it, as
    /// `POST /1.0/accounts/{id}/reset_ftp_password` does. The previous password stops
    /// working at once.
    pub fn reset_ftp_password(&self) -> String {
        self.library.reset_ftp_password()
    }

    /// Returns a handle that switches faults on and off while the emulator runs, such as
    /// failed registrations, the retired FTP service or 503 responses on chosen paths.
    ///
    /// Clones of the handle share state with the emulator, and the handle stays usable
    /// (with no effect) after the emulator stops.
    pub fn faults(&self) -> Faults {
        self.library.faults.clone()
    }

    /// Returns the PEM of the CA that signed the FTPS server certificate.
    pub fn ca_certificate_pem(&self) -> &str {
        &self.tls.ca_pem
    }

    /// Returns the path of a PEM file with the CA certificate, for tools such as
    /// `curl --cacert`. The file is removed when the emulator is dropped, unless it is
    /// in the state folder.
    pub fn ca_certificate_path(&self) -> &Path {
        &self.tls.ca_path
    }

    /// Returns the FTPS control address, `127.0.0.1:PORT`.
    pub fn ftp_addr(&self) -> SocketAddr {
        self.library.ftp_addr
    }

    /// Returns the storage folder that contains `incoming/`, `images/` and `orbit/`.
    pub fn storage_dir(&self) -> &Path {
        &self.library.storage
    }

    /// Returns the `incoming/` folder, where uploads land.
    pub fn incoming_dir(&self) -> PathBuf {
        self.library.storage.join(INCOMING)
    }

    /// Returns the `images/` folder, where registered images are stored as `images/<id>`.
    pub fn images_dir(&self) -> PathBuf {
        self.library.storage.join(IMAGES)
    }

    /// Stops both servers and waits for them, then removes a temporary storage folder.
    pub async fn shutdown(mut self) {
        if let Some(ftp) = self.ftp.take() {
            ftp.stop().await;
        }
        self.api.stop().await;
        tracing::info!(api_url = self.library.api_url, "emulator stopped");
    }
}

/// Returns the credentials stored in the state folder, or new random ones, which are
/// stored there at once when a state folder is set.
fn load_or_create_credentials(
    state: Option<&StateDir>,
) -> Result<StoredCredentials, EmulatorError> {
    if let Some(stored) = state.map(StateDir::load_credentials).transpose()?.flatten() {
        return Ok(stored);
    }
    let fresh = StoredCredentials::new(
        CLIENT_ID.to_owned(),
        secret::random_string(CLIENT_SECRET_LEN),
        ACCOUNT_ID.to_owned(),
        ftp::new_password(),
    );
    match state {
        Some(state) => state.update_credentials(|| (fresh.clone(), fresh)),
        None => Ok(fresh),
    }
}

/// Sets the mode of a temporary folder the emulator created to owner only. `tempfile`
/// creates folders with the default mode minus the umask, usually `0755`.
pub(crate) fn restrict_to_owner(path: &Path) -> Result<(), EmulatorError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(STORAGE_DIR_MODE))
            .map_err(|source| EmulatorError::TempDir { source })?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Mode of the storage folders the emulator creates: owner only.
#[cfg(unix)]
const STORAGE_DIR_MODE: u32 = 0o700;

/// Creates or checks the storage folder and its `incoming/`, `images/` and `orbit/` subfolders.
fn prepare_storage(dir: Option<&Path>) -> Result<(PathBuf, Option<TempDir>), EmulatorError> {
    let (root, temp) = match dir {
        Some(dir) => (dir.to_owned(), None),
        None => {
            let temp = tempfile::Builder::new()
                .prefix("brightbox-emulator-")
                .tempdir()
                .map_err(|source| EmulatorError::TempDir { source })?;
            restrict_to_owner(temp.path())?;
            (temp.path().to_owned(), Some(temp))
        }
    };

    if root.exists() && !root.is_dir() {
        return Err(EmulatorError::StorageNotADirectory { path: root });
    }
    let orbit = Path::new(orbit::store::ORBIT);
    let folders = [
        PathBuf::from(INCOMING),
        PathBuf::from(IMAGES),
        orbit.join(orbit::store::TEMP),
        orbit.join(orbit::store::LZ4_CACHE),
    ];
    // Folders the emulator creates hold user images, so only the owner may open them.
    // Folders that already exist keep their mode.
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, STORAGE_DIR_MODE);
    for sub in folders {
        let path = root.join(sub);
        builder
            .create(&path)
            .map_err(|source| EmulatorError::StorageDir {
                path: path.clone(),
                source,
            })?;
    }
    // libunftp and the API join client paths onto this root, so make it absolute.
    let root = std::fs::canonicalize(&root).map_err(|source| EmulatorError::StorageDir {
        path: root.clone(),
        source,
    })?;
    Ok((root, temp))
}

/// The axum server task and its shutdown signal.
#[derive(Debug)]
struct ApiServer {
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl ApiServer {
    fn spawn(listener: tokio::net::TcpListener, router: axum::Router) -> Self {
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    // A dropped sender also means shut down.
                    let _ = shutdown_rx.await;
                })
                .await
        });
        ApiServer {
            shutdown: Some(shutdown_tx),
            task: Some(task),
        }
    }

    fn signal_stop(&mut self) {
        if let Some(sender) = self.shutdown.take() {
            let _ = sender.send(());
        }
    }

    async fn stop(&mut self) {
        self.signal_stop();
        let Some(mut task) = self.task.take() else {
            return;
        };
        match tokio::time::timeout(API_SHUTDOWN_TIMEOUT, &mut task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => tracing::warn!(%error, "API server stopped with an error"),
            Ok(Err(error)) => tracing::warn!(%error, "API server task failed"),
            Err(_) => {
                tracing::warn!("API server did not stop in time; aborting it");
                task.abort();
            }
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.signal_stop();
    }
}
