//! The optional state folder, which lets a restarted emulator serve the same clients.
//!
//! It contains `catalog.json` (image and server records), `credentials.json` (the API
//! client secret and the FTP password), `tls/` (the CA certificate, the server chain and
//! the server key) and `disks/` (server disks). Folders are `0700` and files `0600` on
//! Unix. Every file is written to a temporary name, flushed to disk and renamed, so a
//! killed emulator leaves either the old or the new version of each file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::EmulatorError;
use crate::catalog::{self, OFFICIAL_IMAGES};
use crate::image_format::ImageFormat;
use crate::library::{Deletion, ImageRecord, ServerRecord, time_delta};

const CATALOG_FILE: &str = "catalog.json";
const CREDENTIALS_FILE: &str = "credentials.json";
const TLS_DIR: &str = "tls";
const DISKS_DIR: &str = "disks";
/// Version of the JSON layout. A file with another version is rejected.
const FORMAT_VERSION: u32 = 1;

/// Mode of the files in the state folder: owner read and write only.
#[cfg(unix)]
const STATE_FILE_MODE: u32 = 0o600;

/// An open state folder.
#[derive(Debug)]
pub(crate) struct StateDir {
    root: PathBuf,
    /// Serialises catalog writes, so the file always ends with the newest snapshot.
    catalog_lock: Mutex<()>,
    /// Serialises credential changes and their writes, for the same reason.
    credentials_lock: Mutex<()>,
}

/// The credentials a restarted emulator keeps.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct StoredCredentials {
    version: u32,
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    pub(crate) ftp_user: String,
    pub(crate) ftp_password: String,
}

impl std::fmt::Debug for StoredCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("ftp_user", &self.ftp_user)
            .field("ftp_password", &"<redacted>")
            .finish()
    }
}

impl StoredCredentials {
    pub(crate) fn new(
        client_id: String,
        client_secret: String,
        ftp_user: String,
        ftp_password: String,
    ) -> Self {
        StoredCredentials {
            version: FORMAT_VERSION,
            client_id,
            client_secret,
            ftp_user,
            ftp_password,
        }
    }
}

/// The records a restarted emulator reloads.
#[derive(Debug, Default)]
pub(crate) struct LoadedCatalog {
    /// User images, oldest first. The official images are not stored.
    pub(crate) images: Vec<ImageRecord>,
    pub(crate) servers: Vec<ServerRecord>,
    /// Images that were `creating` when the state was written and continue from there.
    pub(crate) resumed: usize,
}

impl StateDir {
    /// Creates or opens the state folder `dir`, which must not be inside `storage`
    /// (the FTP root), because FTP clients could then download the credentials.
    pub(crate) fn open(dir: &Path, storage: &Path) -> Result<Self, EmulatorError> {
        if dir.exists() && !dir.is_dir() {
            return Err(EmulatorError::StateNotADirectory {
                path: dir.to_owned(),
            });
        }
        // Check before creating anything, so a rejected path leaves no folder in the FTP root.
        let resolved = resolve(dir)?;
        if resolved.starts_with(storage) {
            return Err(EmulatorError::StateInsideStorage {
                state: resolved,
                storage: storage.to_owned(),
            });
        }
        create_private_dir(dir)?;
        let root = std::fs::canonicalize(dir).map_err(|source| EmulatorError::StateFile {
            path: dir.to_owned(),
            source,
        })?;
        // The folder may predate this run with a wider mode, and it contains secrets.
        restrict_dir(&root)?;
        create_private_dir(&root.join(TLS_DIR))?;
        create_private_dir(&root.join(DISKS_DIR))?;
        Ok(StateDir {
            root,
            catalog_lock: Mutex::new(()),
            credentials_lock: Mutex::new(()),
        })
    }

    /// Returns the folder with the CA certificate, the server chain and the server key.
    pub(crate) fn tls_dir(&self) -> PathBuf {
        self.root.join(TLS_DIR)
    }

    /// Returns the folder with the server disks.
    pub(crate) fn disks_dir(&self) -> PathBuf {
        self.root.join(DISKS_DIR)
    }

    /// Reads the stored credentials, or returns `None` when none were stored yet.
    pub(crate) fn load_credentials(&self) -> Result<Option<StoredCredentials>, EmulatorError> {
        let path = self.root.join(CREDENTIALS_FILE);
        let Some(credentials) = read_json::<StoredCredentials>(&path)? else {
            return Ok(None);
        };
        check_version(&path, credentials.version)?;
        Ok(Some(credentials))
    }

    /// Runs `change` and writes the credentials it returns, under one lock so that
    /// concurrent changes are written in the order they happened.
    pub(crate) fn update_credentials<R>(
        &self,
        change: impl FnOnce() -> (StoredCredentials, R),
    ) -> Result<R, EmulatorError> {
        let _guard = lock(&self.credentials_lock);
        let (credentials, result) = change();
        write_json(&self.root.join(CREDENTIALS_FILE), &credentials)?;
        Ok(result)
    }

    /// Reads the stored catalog, or an empty one when none was stored yet.
    ///
    /// An image that was `creating` when the state was written keeps its wall-clock
    /// end: it becomes `available` (or `failed`) at the time it would have without
    /// the restart, or at once when that time has passed.
    pub(crate) fn load_catalog(&self) -> Result<LoadedCatalog, EmulatorError> {
        let path = self.root.join(CATALOG_FILE);
        let Some(stored) = read_json::<StoredCatalog>(&path)? else {
            return Ok(LoadedCatalog::default());
        };
        check_version(&path, stored.version)?;

        let clock = Clock::now();
        let resumed = stored
            .images
            .iter()
            .filter(|image| image.ready_at > clock.wall)
            .count();
        let images = stored
            .images
            .into_iter()
            .map(|image| image.into_record(&clock, &path))
            .collect::<Result<Vec<_>, _>>()?;
        let servers = stored
            .servers
            .into_iter()
            .map(|server| server.into_record(&clock, &path))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(LoadedCatalog {
            images,
            servers,
            resumed,
        })
    }

    /// Takes a snapshot of the catalog with `snapshot` and writes it, under one lock so
    /// that the file always ends with the newest snapshot. The official images are left
    /// out because every start lists them anyway.
    pub(crate) fn save_catalog(
        &self,
        snapshot: impl FnOnce() -> (Vec<ImageRecord>, Vec<ServerRecord>),
    ) -> Result<(), EmulatorError> {
        let _guard = lock(&self.catalog_lock);
        let (images, servers) = snapshot();
        let clock = Clock::now();
        let stored = StoredCatalog {
            version: FORMAT_VERSION,
            images: images
                .iter()
                .filter(|image| !is_official(image))
                .map(|image| StoredImage::from_record(image, &clock))
                .collect(),
            servers: servers
                .iter()
                .map(|server| StoredServer::from_record(server, &clock))
                .collect(),
        };
        write_json(&self.root.join(CATALOG_FILE), &stored)
    }
}

/// Returns `path` made absolute with symbolic links resolved, for a path that may not
/// exist yet: its deepest existing ancestor is resolved and the rest appended.
fn resolve(path: &Path) -> Result<PathBuf, EmulatorError> {
    let to_error = |source| EmulatorError::StateFile {
        path: path.to_owned(),
        source,
    };
    let absolute = std::path::absolute(path).map_err(to_error)?;
    let mut missing = Vec::new();
    let mut existing = absolute.as_path();
    while !existing.exists() {
        let (Some(parent), Some(name)) = (existing.parent(), existing.file_name()) else {
            break;
        };
        missing.push(name.to_owned());
        existing = parent;
    }
    let mut resolved = std::fs::canonicalize(existing).map_err(to_error)?;
    for name in missing.iter().rev() {
        resolved.push(name);
    }
    Ok(resolved)
}

fn is_official(image: &ImageRecord) -> bool {
    image.official
        && OFFICIAL_IMAGES
            .iter()
            .any(|official| official.id == image.id)
}

fn check_version(path: &Path, version: u32) -> Result<(), EmulatorError> {
    if version == FORMAT_VERSION {
        return Ok(());
    }
    Err(EmulatorError::StateInvalid {
        path: path.to_owned(),
        reason: format!("layout version {version} is not supported (expected {FORMAT_VERSION})"),
    })
}

/// One reading of the monotonic and the wall clock, to convert between them.
struct Clock {
    now: Instant,
    wall: DateTime<Utc>,
}

impl Clock {
    fn now() -> Self {
        Clock {
            now: Instant::now(),
            wall: Utc::now(),
        }
    }

    fn to_wall(&self, instant: Instant) -> DateTime<Utc> {
        if instant >= self.now {
            self.wall + time_delta(instant - self.now)
        } else {
            self.wall - time_delta(self.now - instant)
        }
    }

    /// Converts a wall-clock time to an instant. A time before the earliest instant
    /// the platform can represent becomes the current instant, which only matters for
    /// times in the past, where every status is already final.
    fn to_instant(&self, wall: DateTime<Utc>) -> Instant {
        let offset = wall - self.wall;
        match offset.to_std() {
            Ok(ahead) => self.now + ahead,
            Err(_) => (-offset)
                .to_std()
                .ok()
                .and_then(|behind| self.now.checked_sub(behind))
                .unwrap_or(self.now),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct StoredCatalog {
    version: u32,
    images: Vec<StoredImage>,
    servers: Vec<StoredServer>,
}

#[derive(Serialize, Deserialize)]
struct StoredImage {
    id: String,
    name: String,
    description: Option<String>,
    username: Option<String>,
    arch: String,
    source: String,
    source_type: String,
    owner: String,
    official: bool,
    public: bool,
    compatibility_mode: bool,
    min_ram: Option<u64>,
    created_at: String,
    format: String,
    virtual_size: u64,
    stored_size: u64,
    defect: Option<String>,
    registered_at: DateTime<Utc>,
    ready_at: DateTime<Utc>,
    deprecated: bool,
    locked: bool,
    has_file: bool,
    ancestor: Option<String>,
}

impl StoredImage {
    fn from_record(image: &ImageRecord, clock: &Clock) -> Self {
        StoredImage {
            id: image.id.clone(),
            name: image.name.clone(),
            description: image.description.clone(),
            username: image.username.clone(),
            arch: image.arch.clone(),
            source: image.source.clone(),
            source_type: image.source_type.to_owned(),
            owner: image.owner.clone(),
            official: image.official,
            public: image.public,
            compatibility_mode: image.compatibility_mode,
            min_ram: image.min_ram,
            created_at: image.created_at.clone(),
            format: image.format.as_str().to_owned(),
            virtual_size: image.virtual_size,
            stored_size: image.stored_size,
            defect: image.defect.clone(),
            registered_at: clock.to_wall(image.registered_at),
            ready_at: clock.to_wall(image.ready_at),
            deprecated: image.deprecated,
            locked: image.locked,
            has_file: image.has_file,
            ancestor: image.ancestor.clone(),
        }
    }

    fn into_record(self, clock: &Clock, path: &Path) -> Result<ImageRecord, EmulatorError> {
        let invalid = |reason: String| EmulatorError::StateInvalid {
            path: path.to_owned(),
            reason,
        };
        let source_type = match self.source_type.as_str() {
            "upload" => "upload",
            "snapshot" => "snapshot",
            other => {
                return Err(invalid(format!(
                    "image {} has the unknown source_type {other:?}",
                    self.id
                )));
            }
        };
        let format = match self.format.as_str() {
            "qcow2" => ImageFormat::Qcow2,
            "gzip" => ImageFormat::Gzip,
            "raw" => ImageFormat::Raw,
            other => {
                return Err(invalid(format!(
                    "image {} has the unknown format {other:?}",
                    self.id
                )));
            }
        };
        Ok(ImageRecord {
            id: self.id,
            name: self.name,
            description: self.description,
            username: self.username,
            arch: self.arch,
            source: self.source,
            source_type,
            owner: self.owner,
            official: self.official,
            public: self.public,
            compatibility_mode: self.compatibility_mode,
            min_ram: self.min_ram,
            created_at: self.created_at,
            format,
            virtual_size: self.virtual_size,
            stored_size: self.stored_size,
            defect: self.defect,
            registered_at: clock.to_instant(self.registered_at),
            ready_at: clock.to_instant(self.ready_at),
            deprecated: self.deprecated,
            locked: self.locked,
            has_file: self.has_file,
            ancestor: self.ancestor,
        })
    }
}

#[derive(Serialize, Deserialize)]
struct StoredServer {
    id: String,
    name: Option<String>,
    image: StoredImage,
    server_type: String,
    zone: String,
    user_data: Option<String>,
    compatibility_mode: bool,
    locked: bool,
    created_at: DateTime<Utc>,
    started_at: DateTime<Utc>,
    ready_at: DateTime<Utc>,
    deletion: Option<StoredDeletion>,
    disk: Option<PathBuf>,
    snapshots: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct StoredDeletion {
    done_at: DateTime<Utc>,
    deleted_at: DateTime<Utc>,
}

impl StoredServer {
    fn from_record(server: &ServerRecord, clock: &Clock) -> Self {
        StoredServer {
            id: server.id.clone(),
            name: server.name.clone(),
            image: StoredImage::from_record(&server.image, clock),
            server_type: server.server_type.id.to_owned(),
            zone: server.zone.id.to_owned(),
            user_data: server.user_data.clone(),
            compatibility_mode: server.compatibility_mode,
            locked: server.locked,
            created_at: server.created_at,
            started_at: server.started_at,
            ready_at: clock.to_wall(server.ready_at),
            deletion: server.deletion.map(|deletion| StoredDeletion {
                done_at: clock.to_wall(deletion.done_at),
                deleted_at: deletion.deleted_at,
            }),
            disk: server.disk.clone(),
            snapshots: server.snapshots.clone(),
        }
    }

    fn into_record(self, clock: &Clock, path: &Path) -> Result<ServerRecord, EmulatorError> {
        let invalid = |reason: String| EmulatorError::StateInvalid {
            path: path.to_owned(),
            reason,
        };
        let Some(server_type) = catalog::find_server_type(&self.server_type) else {
            return Err(invalid(format!(
                "server {} has the unknown server type {:?}",
                self.id, self.server_type
            )));
        };
        let Some(zone) = catalog::find_zone(&self.zone) else {
            return Err(invalid(format!(
                "server {} has the unknown zone {:?}",
                self.id, self.zone
            )));
        };
        Ok(ServerRecord {
            image: self.image.into_record(clock, path)?,
            id: self.id,
            name: self.name,
            server_type,
            zone,
            user_data: self.user_data,
            compatibility_mode: self.compatibility_mode,
            locked: self.locked,
            created_at: self.created_at,
            started_at: self.started_at,
            ready_at: clock.to_instant(self.ready_at),
            deletion: self.deletion.map(|deletion| Deletion {
                done_at: clock.to_instant(deletion.done_at),
                deleted_at: deletion.deleted_at,
            }),
            disk: self.disk,
            snapshots: self.snapshots,
        })
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, EmulatorError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(EmulatorError::StateFile {
                path: path.to_owned(),
                source,
            });
        }
    };
    let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
    serde_path_to_error::deserialize(&mut deserializer)
        .map(Some)
        .map_err(|error| EmulatorError::StateInvalid {
            path: path.to_owned(),
            reason: format!("at {}: {}", error.path(), error.inner()),
        })
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), EmulatorError> {
    let to_error = |source| EmulatorError::StateFile {
        path: path.to_owned(),
        source,
    };
    let bytes =
        serde_json::to_vec_pretty(value).map_err(|error| to_error(std::io::Error::other(error)))?;
    write_atomically(path, &bytes).map_err(to_error)
}

/// Writes `contents` to `path` through a temporary file in the same folder: the file is
/// created `0600` on Unix, flushed to disk, renamed over `path`, and the folder is
/// flushed so that the rename survives a crash.
pub(crate) fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let folder = path
        .parent()
        .ok_or_else(|| std::io::Error::other("the path has no parent folder"))?;
    let file_name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("the path has no file name"))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(file_name);
    temp_name.push(".tmp");
    let temp_path = folder.join(temp_name);

    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(STATE_FILE_MODE);
    }
    let mut file = options.open(&temp_path)?;
    // A temporary file left by an earlier run keeps its mode, so set it again.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(STATE_FILE_MODE))?;
    }
    file.write_all(contents)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temp_path, path)?;
    #[cfg(unix)]
    std::fs::File::open(folder)?.sync_all()?;
    Ok(())
}

fn create_private_dir(path: &Path) -> Result<(), EmulatorError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, crate::STORAGE_DIR_MODE);
    builder
        .create(path)
        .map_err(|source| EmulatorError::StateFile {
            path: path.to_owned(),
            source,
        })
}

fn restrict_dir(path: &Path) -> Result<(), EmulatorError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            path,
            std::fs::Permissions::from_mode(crate::STORAGE_DIR_MODE),
        )
        .map_err(|source| EmulatorError::StateFile {
            path: path.to_owned(),
            source,
        })?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Locks a mutex that guards no data, so a panic while holding it leaves nothing broken.
fn lock(mutex: &Mutex<()>) -> MutexGuard<'_, ()> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn clock_round_trip_keeps_offsets() {
        let clock = Clock::now();
        for offset in [
            Duration::ZERO,
            Duration::from_millis(1500),
            Duration::from_secs(3600),
        ] {
            let ahead = clock.now + offset;
            let back = clock.to_instant(clock.to_wall(ahead));
            let error = back.max(ahead) - back.min(ahead);
            assert!(
                error < Duration::from_millis(2),
                "{offset:?} came back {error:?} off"
            );
        }
    }

    #[test]
    fn past_wall_time_before_boot_becomes_now() {
        let clock = Clock::now();
        let long_ago = clock.wall - chrono::TimeDelta::days(365 * 100);
        let instant = clock.to_instant(long_ago);
        assert!(instant <= clock.now);
    }

    #[test]
    fn write_atomically_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().expect("folder is created");
        let path = dir.path().join("file.json");
        write_atomically(&path, b"first").expect("first write");
        write_atomically(&path, b"second").expect("second write");
        assert_eq!(std::fs::read(&path).expect("file is readable"), b"second");
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("folder is readable")
            .map(|entry| {
                entry
                    .expect("entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(names, ["file.json"]);
    }

    #[cfg(unix)]
    #[test]
    fn write_atomically_narrows_an_old_temp_file() {
        use std::os::unix::fs::PermissionsExt;

        let dir = tempfile::tempdir().expect("folder is created");
        let temp = dir.path().join(".file.json.tmp");
        std::fs::write(&temp, b"left by a killed run").expect("temp file is written");
        std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o644))
            .expect("mode is set");
        let path = dir.path().join("file.json");
        write_atomically(&path, b"new").expect("write");
        let mode = std::fs::metadata(&path)
            .expect("file exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn credentials_debug_redacts_secrets() {
        let credentials = StoredCredentials::new(
            "cli-emu01".to_owned(),
            "client-secret-value".to_owned(),
            "acc-emu01".to_owned(),
            "ftp-password-value".to_owned(),
        );
        let debug = format!("{credentials:?}");
        assert!(!debug.contains("client-secret-value"), "{debug}");
        assert!(!debug.contains("ftp-password-value"), "{debug}");
        assert!(debug.contains("cli-emu01"), "{debug}");
    }
}
