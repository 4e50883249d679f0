//! The state behind the API: credentials, issued tokens, images and servers.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::{Value, json};

use crate::catalog::{self, OFFICIAL_IMAGES, OFFICIAL_OWNER, ServerType, Zone};
use crate::faults::Faults;
use crate::ftp::FtpPassword;
use crate::image_format::{ImageFormat, bytes_to_mb};
use crate::orbit::store::{ORBIT, OrbitStore};
use crate::secret::{random_id, random_string};
use crate::state::{StateDir, StoredCredentials};

const TOKEN_LEN: usize = 40;
/// Tries before giving up on finding an unused id (36^5 ids exist).
const ID_ATTEMPTS: usize = 100;

/// Everything the API handlers share.
pub(crate) struct Library {
    pub(crate) account_id: String,
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    /// The API base URL with a trailing slash, such as `http://127.0.0.1:8080/`.
    pub(crate) api_url: String,
    /// The Orbit account URL with a trailing slash, such as `http://127.0.0.1:8080/v1/acc-emu01/`.
    pub(crate) orbit_url: String,
    pub(crate) ftp_addr: SocketAddr,
    pub(crate) storage: PathBuf,
    /// Orbit containers, objects and temp URL keys.
    pub(crate) orbit: OrbitStore,
    /// The folder that contains each server's disk, named by server id.
    pub(crate) disks: PathBuf,
    pub(crate) token_lifetime: Duration,
    pub(crate) created_at: String,
    pub(crate) ftp_password: Arc<FtpPassword>,
    pub(crate) faults: Faults,
    /// The state folder that records every change, when one is set.
    state: Option<Arc<StateDir>>,
    tokens: Mutex<HashMap<String, Instant>>,
    /// Images in creation order, oldest first, as `GET /1.0/images` lists them.
    images: Mutex<Vec<ImageRecord>>,
    /// Servers in creation order, including deleted ones.
    servers: Mutex<Vec<ServerRecord>>,
}

impl std::fmt::Debug for Library {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Library")
            .field("account_id", &self.account_id)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("api_url", &self.api_url)
            .field("orbit_url", &self.orbit_url)
            .field("ftp_addr", &self.ftp_addr)
            .field("storage", &self.storage)
            .finish_non_exhaustive()
    }
}

/// The settings [`Library::new`] takes.
#[derive(Debug)]
pub(crate) struct LibrarySettings {
    pub(crate) account_id: String,
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    pub(crate) api_url: String,
    pub(crate) ftp_addr: SocketAddr,
    pub(crate) storage: PathBuf,
    pub(crate) disks: PathBuf,
    pub(crate) token_lifetime: Duration,
    pub(crate) ftp_password: Arc<FtpPassword>,
    pub(crate) faults: Faults,
    pub(crate) state: Option<Arc<StateDir>>,
    /// User images reloaded from the state folder, oldest first.
    pub(crate) images: Vec<ImageRecord>,
    /// Servers reloaded from the state folder, oldest first.
    pub(crate) servers: Vec<ServerRecord>,
}

/// An image. Its status is derived from the clock: `creating` until `ready_at`, then
/// `failed` when it has a defect, else `deprecated` or `available`.
#[derive(Debug, Clone)]
pub(crate) struct ImageRecord {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) username: Option<String>,
    pub(crate) arch: String,
    /// The uploaded file name, or the `srv-` id of a snapshot.
    pub(crate) source: String,
    /// `upload` or `snapshot`.
    pub(crate) source_type: &'static str,
    pub(crate) owner: String,
    pub(crate) official: bool,
    pub(crate) public: bool,
    pub(crate) compatibility_mode: bool,
    pub(crate) min_ram: Option<u64>,
    pub(crate) created_at: String,
    pub(crate) format: ImageFormat,
    /// Disk size the image describes, in bytes.
    pub(crate) virtual_size: u64,
    /// Size of the stored file, in bytes.
    pub(crate) stored_size: u64,
    pub(crate) defect: Option<String>,
    /// When registration started; `disk_size` grows from here until `ready_at`.
    pub(crate) registered_at: Instant,
    pub(crate) ready_at: Instant,
    pub(crate) deprecated: bool,
    pub(crate) locked: bool,
    /// False for the official images, which are listed but have no file in `images/`.
    pub(crate) has_file: bool,
    /// The image a snapshot's server was built from.
    pub(crate) ancestor: Option<String>,
}

impl ImageRecord {
    pub(crate) fn status(&self, now: Instant) -> &'static str {
        if now < self.ready_at {
            "creating"
        } else if self.defect.is_some() {
            "failed"
        } else if self.deprecated {
            "deprecated"
        } else {
            "available"
        }
    }

    /// Returns the `disk_size` in MB: the stored size once usable, a share of it that grows
    /// with the elapsed part of the registration delay while `creating`, and 0 when `failed`.
    pub(crate) fn disk_size_mb(&self, now: Instant) -> u64 {
        let stored_mb = bytes_to_mb(self.stored_size);
        match self.status(now) {
            "available" | "deprecated" => stored_mb,
            "creating" => {
                let total = self.ready_at.saturating_duration_since(self.registered_at);
                let elapsed = now.saturating_duration_since(self.registered_at);
                // Whole MB only, so the value stays below the final size while creating.
                let share = elapsed.as_secs_f64() / total.as_secs_f64().max(f64::EPSILON);
                ((stored_mb as f64) * share.min(1.0)).floor() as u64
            }
            _ => 0,
        }
    }

    /// Returns true when servers can be built from the image: it is `available` or `deprecated`.
    pub(crate) fn is_usable(&self, now: Instant) -> bool {
        matches!(self.status(now), "available" | "deprecated")
    }

    fn official(image: &catalog::OfficialImage, now: Instant) -> Self {
        ImageRecord {
            id: image.id.to_owned(),
            name: image.name.to_owned(),
            description: Some(image.description.to_owned()),
            username: Some(image.username.to_owned()),
            arch: "x86_64".to_owned(),
            source: format!("{}.img", image.id),
            source_type: "upload",
            owner: OFFICIAL_OWNER.to_owned(),
            official: true,
            public: true,
            compatibility_mode: false,
            min_ram: None,
            created_at: image.created_at.to_owned(),
            format: ImageFormat::Qcow2,
            virtual_size: image.virtual_size,
            stored_size: image.stored_size,
            defect: None,
            registered_at: now,
            ready_at: now,
            deprecated: false,
            locked: false,
            has_file: false,
            ancestor: None,
        }
    }
}

/// A server. Its status is derived from the clock: `creating` until `ready_at`, then
/// `active`; after a delete request `deleting` until the deletion is done, then `deleted`.
#[derive(Debug, Clone)]
pub(crate) struct ServerRecord {
    pub(crate) id: String,
    pub(crate) name: Option<String>,
    /// The image the server was built from, as it was at that time.
    pub(crate) image: ImageRecord,
    pub(crate) server_type: &'static ServerType,
    pub(crate) zone: &'static Zone,
    /// Base64 user data as the request sent it.
    pub(crate) user_data: Option<String>,
    pub(crate) compatibility_mode: bool,
    pub(crate) locked: bool,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) started_at: DateTime<Utc>,
    pub(crate) ready_at: Instant,
    pub(crate) deletion: Option<Deletion>,
    /// A copy of the image file, or `None` when the image had no file (an official image).
    pub(crate) disk: Option<PathBuf>,
    /// Ids of the snapshots taken from the server, oldest first.
    pub(crate) snapshots: Vec<String>,
}

/// When a server deletion was requested and when it completes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deletion {
    pub(crate) done_at: Instant,
    pub(crate) deleted_at: DateTime<Utc>,
}

impl ServerRecord {
    pub(crate) fn status(&self, now: Instant) -> &'static str {
        match self.deletion {
            Some(deletion) if now < deletion.done_at => "deleting",
            Some(_) => "deleted",
            None if now < self.ready_at => "creating",
            None => "active",
        }
    }
}

impl Library {
    pub(crate) fn new(settings: LibrarySettings) -> Self {
        let now = Instant::now();
        let images = OFFICIAL_IMAGES
            .iter()
            .map(|image| ImageRecord::official(image, now))
            .chain(settings.images)
            .collect();
        let orbit_url = format!("{}v1/{}/", settings.api_url, settings.account_id);
        Library {
            account_id: settings.account_id,
            client_id: settings.client_id,
            client_secret: settings.client_secret,
            orbit_url,
            api_url: settings.api_url,
            ftp_addr: settings.ftp_addr,
            orbit: OrbitStore::new(settings.storage.join(ORBIT)),
            storage: settings.storage,
            disks: settings.disks,
            token_lifetime: settings.token_lifetime,
            created_at: now_rfc3339(),
            ftp_password: settings.ftp_password,
            faults: settings.faults,
            state: settings.state,
            tokens: Mutex::new(HashMap::new()),
            images: Mutex::new(images),
            servers: Mutex::new(settings.servers),
        }
    }

    /// Returns the instant at which something created now stops being `creating`.
    pub(crate) fn ready_at(&self, now: Instant) -> Instant {
        now + self.faults.current_registration_delay()
    }

    /// Issues a new access token and returns it.
    pub(crate) fn issue_token(&self) -> String {
        let token = random_string(TOKEN_LEN);
        let now = Instant::now();
        let mut tokens = lock(&self.tokens);
        tokens.retain(|_, expires_at| *expires_at > now);
        tokens.insert(token.clone(), now + self.token_lifetime);
        token
    }

    /// Returns true when `token` was issued and has not expired.
    pub(crate) fn token_is_valid(&self, token: &str) -> bool {
        lock(&self.tokens)
            .get(token)
            .is_some_and(|expires_at| *expires_at > Instant::now())
    }

    pub(crate) fn url_of(&self, collection: &str, id: &str) -> String {
        format!("{}1.0/{collection}/{id}", self.api_url)
    }

    /// Returns the account JSON. `ftp_password` is only set in the reset response, and
    /// the `library_ftp_*` fields are absent while the FTP service is retired.
    pub(crate) fn account_json(&self, ftp_password: Option<&str>) -> Value {
        let now = Instant::now();
        let image_refs: Vec<Value> = lock(&self.images)
            .iter()
            .filter(|image| image.owner == self.account_id)
            .map(|image| {
                json!({
                    "id": image.id,
                    "resource_type": "image",
                    "url": self.url_of("images", &image.id),
                    "name": image.name,
                    "status": image.status(now),
                })
            })
            .collect();
        let live_servers: Vec<ServerRecord> = lock(&self.servers)
            .iter()
            .filter(|server| server.deletion.is_none())
            .cloned()
            .collect();
        let ram_used: u64 = live_servers
            .iter()
            .map(|server| server.server_type.ram)
            .sum();
        let server_refs: Vec<Value> = live_servers
            .iter()
            .map(|server| {
                json!({
                    "id": server.id,
                    "resource_type": "server",
                    "url": self.url_of("servers", &server.id),
                    "name": server.name,
                    "status": server.status(now),
                })
            })
            .collect();

        let mut account = json!({
            "id": self.account_id,
            "resource_type": "account",
            "url": self.url_of("accounts", &self.account_id),
            "name": "Brightbox emulator account",
            "status": "active",
            "address_1": null,
            "address_2": null,
            "city": null,
            "county": null,
            "postcode": null,
            "country_code": "GB",
            "country_name": "United Kingdom",
            "vat_registration_number": null,
            "telephone_number": null,
            "telephone_verified": false,
            "verified_telephone": null,
            "verified_at": null,
            "verified_ip": null,
            "valid_credit_card": true,
            "created_at": self.created_at,
            "ram_limit": 204_800,
            "ram_used": ram_used,
            "dbs_ram_limit": 204_800,
            "dbs_ram_used": 0,
            "dbs_instances_used": 0,
            "servers_used": live_servers.len(),
            "block_storage_limit": 2_048_000,
            "block_storage_used": 0,
            "cloud_ips_limit": 5,
            "cloud_ips_used": 0,
            "load_balancers_limit": 5,
            "load_balancers_used": 0,
            "images": image_refs,
            "servers": server_refs,
        });
        if !self.faults.is_ftp_retired() {
            account["library_ftp_host"] = Value::from(self.ftp_addr.to_string());
            account["library_ftp_user"] = Value::from(self.account_id.clone());
            account["library_ftp_password"] = ftp_password.map_or(Value::Null, Value::from);
        }
        account
    }

    /// Returns the image JSON as `GET /1.0/images/{id}` sends it.
    pub(crate) fn image_json(&self, image: &ImageRecord, now: Instant) -> Value {
        let status = image.status(now);
        let disk_size = image.disk_size_mb(now);
        let ancestor = image
            .ancestor
            .as_deref()
            .map_or(Value::Null, |id| self.image_ref_by_id(id, now));
        json!({
            "id": image.id,
            "resource_type": "image",
            "url": self.url_of("images", &image.id),
            "name": image.name,
            "description": image.description,
            "username": image.username,
            "status": status,
            "locked": image.locked,
            "arch": image.arch,
            "source": image.source,
            "source_type": image.source_type,
            "source_trigger": "manual",
            "official": image.official,
            "public": image.public,
            "compatibility_mode": image.compatibility_mode,
            "owner": image.owner,
            "virtual_size": bytes_to_mb(image.virtual_size),
            "disk_size": disk_size,
            "min_ram": image.min_ram,
            "licence_name": null,
            "created_at": image.created_at,
            "ancestor": ancestor,
            "format": image.format.as_str(),
        })
    }

    /// Returns the short image JSON that other resources embed.
    pub(crate) fn image_ref_json(&self, image: &ImageRecord, now: Instant) -> Value {
        json!({
            "id": image.id,
            "resource_type": "image",
            "url": self.url_of("images", &image.id),
            "name": image.name,
            "description": image.description,
            "username": image.username,
            "status": image.status(now),
            "arch": image.arch,
            "source": image.source,
            "source_type": image.source_type,
            "official": image.official,
            "public": image.public,
            "owner": image.owner,
            "created_at": image.created_at,
        })
    }

    /// Returns the embedded JSON of image `id`, or only its id and URL once it is deleted.
    fn image_ref_by_id(&self, id: &str, now: Instant) -> Value {
        match self.image(id) {
            Some(image) => self.image_ref_json(&image, now),
            None => json!({
                "id": id,
                "resource_type": "image",
                "url": self.url_of("images", id),
            }),
        }
    }

    /// Returns the server JSON as `GET /1.0/servers/{id}` sends it.
    pub(crate) fn server_json(&self, server: &ServerRecord, now: Instant) -> Value {
        let status = server.status(now);
        let started_at = (status != "creating").then(|| rfc3339(server.started_at));
        let deleted_at = server
            .deletion
            .filter(|_| status == "deleted")
            .map(|deletion| rfc3339(deletion.deleted_at));
        let image = match self.image(&server.image.id) {
            Some(current) => self.image_ref_json(&current, now),
            None => {
                let mut deleted = self.image_ref_json(&server.image, now);
                deleted["status"] = Value::from("deleted");
                deleted
            }
        };
        let snapshots: Vec<Value> = server
            .snapshots
            .iter()
            .filter_map(|id| self.image(id))
            .map(|snapshot| self.image_ref_json(&snapshot, now))
            .collect();
        json!({
            "id": server.id,
            "resource_type": "server",
            "url": self.url_of("servers", &server.id),
            "name": server.name,
            "status": status,
            "hostname": server.id,
            "fqdn": format!("{}.gb1.brightbox.com", server.id),
            "created_at": rfc3339(server.created_at),
            "started_at": started_at,
            "deleted_at": deleted_at,
            "user_data": server.user_data,
            "locked": server.locked,
            "compatibility_mode": server.compatibility_mode,
            "disk_encrypted": false,
            "console_url": null,
            "console_token": null,
            "console_token_expires": null,
            "snapshots_schedule": null,
            "snapshots_schedule_next_at": null,
            "snapshots_retention": null,
            "account": {
                "id": self.account_id,
                "resource_type": "account",
                "url": self.url_of("accounts", &self.account_id),
                "name": "Brightbox emulator account",
                "status": "active",
            },
            "image": image,
            "server_type": self.server_type_json(server.server_type),
            "zone": self.zone_json(server.zone),
            "snapshots": snapshots,
            "cloud_ips": [],
            "interfaces": [],
            "volumes": [],
            "server_groups": [],
        })
    }

    /// Returns the server type JSON as `GET /1.0/server_types/{id}` sends it.
    pub(crate) fn server_type_json(&self, server_type: &ServerType) -> Value {
        json!({
            "id": server_type.id,
            "resource_type": "server_type",
            "url": self.url_of("server_types", server_type.id),
            "name": server_type.name,
            "status": "available",
            "handle": server_type.handle,
            "cores": server_type.cores,
            "ram": server_type.ram,
            "disk_size": server_type.disk_size,
            "storage_type": "local",
        })
    }

    /// Returns the zone JSON as `GET /1.0/zones/{id}` sends it.
    pub(crate) fn zone_json(&self, zone: &Zone) -> Value {
        json!({
            "id": zone.id,
            "resource_type": "zone",
            "url": self.url_of("zones", zone.id),
            "handle": zone.handle,
        })
    }

    /// Returns an image id that no image uses.
    pub(crate) fn unused_image_id(&self) -> Option<String> {
        let images = lock(&self.images);
        (0..ID_ATTEMPTS)
            .map(|_| random_id("img"))
            .find(|id| !images.iter().any(|image| &image.id == id))
    }

    /// Returns a server id that no server uses.
    pub(crate) fn unused_server_id(&self) -> Option<String> {
        let servers = lock(&self.servers);
        (0..ID_ATTEMPTS)
            .map(|_| random_id("srv"))
            .find(|id| !servers.iter().any(|server| &server.id == id))
    }

    pub(crate) fn insert_image(&self, image: ImageRecord) {
        lock(&self.images).push(image);
        self.save_catalog();
    }

    pub(crate) fn image(&self, id: &str) -> Option<ImageRecord> {
        lock(&self.images)
            .iter()
            .find(|image| image.id == id)
            .cloned()
    }

    /// Returns every image, oldest first.
    pub(crate) fn images(&self) -> Vec<ImageRecord> {
        lock(&self.images).clone()
    }

    /// Applies `change` to image `id` under the lock and returns its result, or `None`
    /// when there is no such image.
    pub(crate) fn update_image<R>(
        &self,
        id: &str,
        change: impl FnOnce(&mut ImageRecord) -> R,
    ) -> Option<R> {
        let result = lock(&self.images)
            .iter_mut()
            .find(|image| image.id == id)
            .map(change);
        if result.is_some() {
            self.save_catalog();
        }
        result
    }

    /// Removes image `id` when `allow` accepts it, under one lock so that a concurrent
    /// lock request cannot slip in between the check and the removal.
    pub(crate) fn remove_image_if<E>(
        &self,
        id: &str,
        allow: impl FnOnce(&ImageRecord) -> Result<(), E>,
    ) -> Option<Result<ImageRecord, E>> {
        let mut images = lock(&self.images);
        let index = images.iter().position(|image| image.id == id)?;
        let outcome = allow(&images[index]).map(|()| images.remove(index));
        drop(images);
        if outcome.is_ok() {
            self.save_catalog();
        }
        Some(outcome)
    }

    pub(crate) fn insert_server(&self, server: ServerRecord) {
        lock(&self.servers).push(server);
        self.save_catalog();
    }

    pub(crate) fn server(&self, id: &str) -> Option<ServerRecord> {
        lock(&self.servers)
            .iter()
            .find(|server| server.id == id)
            .cloned()
    }

    /// Returns every server, oldest first, including deleted ones.
    pub(crate) fn servers(&self) -> Vec<ServerRecord> {
        lock(&self.servers).clone()
    }

    /// Applies `change` to server `id` under the lock and returns its result, or `None`
    /// when there is no such server.
    pub(crate) fn update_server<R>(
        &self,
        id: &str,
        change: impl FnOnce(&mut ServerRecord) -> R,
    ) -> Option<R> {
        let result = lock(&self.servers)
            .iter_mut()
            .find(|server| server.id == id)
            .map(change);
        if result.is_some() {
            self.save_catalog();
        }
        result
    }

    /// Replaces the library FTP password with a new random one, records it in the state
    /// folder when one is set, and returns it.
    pub(crate) fn reset_ftp_password(&self) -> String {
        let Some(state) = &self.state else {
            return self.ftp_password.reset();
        };
        let saved = state.update_credentials(|| {
            let password = self.ftp_password.reset();
            let credentials = StoredCredentials::new(
                self.client_id.clone(),
                self.client_secret.clone(),
                self.account_id.clone(),
                password.clone(),
            );
            (credentials, password)
        });
        match saved {
            Ok(password) => password,
            Err(error) => {
                // The new password works until the emulator stops, and only a restart loses it.
                tracing::error!(error = %error_chain(&error), "failed to record the new FTP password in the state folder");
                self.ftp_password.current()
            }
        }
    }

    /// Writes the image and server records to the state folder when one is set. A failed
    /// write is logged: the API keeps serving from memory, and only a restart loses the change.
    fn save_catalog(&self) {
        let Some(state) = &self.state else {
            return;
        };
        let saved = state.save_catalog(|| (self.images(), self.servers()));
        if let Err(error) = saved {
            tracing::error!(error = %error_chain(&error), "failed to record the catalog in the state folder");
        }
    }
}

/// Formats an error with its sources, outermost first.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Locks a mutex, recovering the data if a thread panicked while holding it, because
/// every update here leaves the lists consistent.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn now_rfc3339() -> String {
    rfc3339(Utc::now())
}

pub(crate) fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Converts a delay to a chrono duration, saturating at the largest one.
pub(crate) fn time_delta(delay: Duration) -> TimeDelta {
    TimeDelta::from_std(delay).unwrap_or(TimeDelta::MAX)
}
