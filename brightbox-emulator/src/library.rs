//! The state behind the API: credentials, issued tokens and registered images.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::ftp::FtpPassword;
use crate::image_format::{ImageFormat, bytes_to_mb};
use crate::secret::{random_id, random_string};

const TOKEN_LEN: usize = 40;
/// Tries before giving up on finding an unused image id (36^5 ids exist).
const ID_ATTEMPTS: usize = 100;

/// Everything the API handlers share.
pub(crate) struct Library {
    pub(crate) account_id: String,
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    /// The API base URL with a trailing slash, such as `http://127.0.0.1:8080/`.
    pub(crate) api_url: String,
    pub(crate) ftp_addr: SocketAddr,
    pub(crate) storage: PathBuf,
    pub(crate) registration_delay: Duration,
    pub(crate) token_lifetime: Duration,
    pub(crate) created_at: String,
    pub(crate) ftp_password: Arc<FtpPassword>,
    tokens: Mutex<HashMap<String, Instant>>,
    images: Mutex<BTreeMap<String, ImageRecord>>,
}

impl std::fmt::Debug for Library {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Library")
            .field("account_id", &self.account_id)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("api_url", &self.api_url)
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
    pub(crate) registration_delay: Duration,
    pub(crate) token_lifetime: Duration,
    pub(crate) ftp_password: Arc<FtpPassword>,
}

/// A registered image. Its status is derived from the clock: `creating` until
/// `ready_at`, then `available`, or `failed` when the file had a defect.
#[derive(Debug, Clone)]
pub(crate) struct ImageRecord {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) username: Option<String>,
    pub(crate) arch: String,
    pub(crate) source: String,
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
    pub(crate) ready_at: Instant,
}

impl ImageRecord {
    pub(crate) fn status(&self, now: Instant) -> &'static str {
        if now < self.ready_at {
            "creating"
        } else if self.defect.is_some() {
            "failed"
        } else {
            "available"
        }
    }
}

impl Library {
    pub(crate) fn new(settings: LibrarySettings) -> Self {
        Library {
            account_id: settings.account_id,
            client_id: settings.client_id,
            client_secret: settings.client_secret,
            api_url: settings.api_url,
            ftp_addr: settings.ftp_addr,
            storage: settings.storage,
            registration_delay: settings.registration_delay,
            token_lifetime: settings.token_lifetime,
            created_at: now_rfc3339(),
            ftp_password: settings.ftp_password,
            tokens: Mutex::new(HashMap::new()),
            images: Mutex::new(BTreeMap::new()),
        }
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

    /// Returns the account JSON. `ftp_password` is only set in the reset response.
    pub(crate) fn account_json(&self, ftp_password: Option<&str>) -> Value {
        let images = lock(&self.images);
        let now = Instant::now();
        let image_refs: Vec<Value> = images
            .values()
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
        json!({
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
            "ram_used": 0,
            "dbs_ram_limit": 204_800,
            "dbs_ram_used": 0,
            "dbs_instances_used": 0,
            "servers_used": 0,
            "block_storage_limit": 2_048_000,
            "block_storage_used": 0,
            "cloud_ips_limit": 5,
            "cloud_ips_used": 0,
            "load_balancers_limit": 5,
            "load_balancers_used": 0,
            "library_ftp_host": self.ftp_addr.to_string(),
            "library_ftp_user": self.account_id,
            "library_ftp_password": ftp_password,
            "images": image_refs,
        })
    }

    /// Returns the image JSON as `GET /1.0/images/{id}` sends it.
    pub(crate) fn image_json(&self, image: &ImageRecord, now: Instant) -> Value {
        let status = image.status(now);
        let disk_size = if status == "available" {
            bytes_to_mb(image.stored_size)
        } else {
            0
        };
        json!({
            "id": image.id,
            "resource_type": "image",
            "url": self.url_of("images", &image.id),
            "name": image.name,
            "description": image.description,
            "username": image.username,
            "status": status,
            "locked": false,
            "arch": image.arch,
            "source": image.source,
            "source_type": "upload",
            "source_trigger": "manual",
            "official": false,
            "public": image.public,
            "compatibility_mode": image.compatibility_mode,
            "owner": self.account_id,
            "virtual_size": bytes_to_mb(image.virtual_size),
            "disk_size": disk_size,
            "min_ram": image.min_ram,
            "licence_name": null,
            "created_at": image.created_at,
            "ancestor": null,
            "format": image.format.as_str(),
        })
    }

    /// Returns an image id that no registered image uses.
    pub(crate) fn unused_image_id(&self) -> Option<String> {
        let images = lock(&self.images);
        (0..ID_ATTEMPTS)
            .map(|_| random_id("img"))
            .find(|id| !images.contains_key(id))
    }

    pub(crate) fn insert_image(&self, image: ImageRecord) {
        lock(&self.images).insert(image.id.clone(), image);
    }

    pub(crate) fn image(&self, id: &str) -> Option<ImageRecord> {
        lock(&self.images).get(id).cloned()
    }

    pub(crate) fn images(&self) -> Vec<ImageRecord> {
        lock(&self.images).values().cloned().collect()
    }

    pub(crate) fn remove_image(&self, id: &str) -> Option<ImageRecord> {
        lock(&self.images).remove(id)
    }
}

/// Locks a mutex, recovering the data if a thread panicked while holding it, because
/// every update here leaves the maps consistent.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
