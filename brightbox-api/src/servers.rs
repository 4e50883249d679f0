//! Servers, volumes, server types and zones: what creating a server from an image needs.

use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::client::{Call, Client};
use crate::error::{Error, Result};
use crate::id::{ImageId, ServerGroupId, ServerId, ServerTypeId, VolumeId, ZoneId};
use crate::images::{Image, null_as_default};
use crate::wait::{Resource, Verdict, WaitOptions, WaitProgress, poll_until};

/// Maximum length of `user_data` after base64 encoding, in bytes (64 KiB), checked before a server is created.
///
/// NOTE: this is the cap the Brightbox CLI applies to the encoded form; the server-side limit was not checked.
pub const MAX_USER_DATA_ENCODED_LEN: usize = 64 * 1024;

open_string_enum!(
    /// Lifecycle status of a server.
    ServerStatus, Unknown {
        /// Being built.
        Creating => "creating",
        /// Running.
        Active => "active",
        /// Stopped.
        Inactive => "inactive",
        /// Being removed.
        Deleting => "deleting",
        /// Removed.
        Deleted => "deleted",
        /// The build did not succeed.
        Failed => "failed",
        /// Not usable at the moment.
        Unavailable => "unavailable",
    }
);
lossless_from_str!(ServerStatus);

impl ServerStatus {
    /// Returns whether the server can never become active again: `failed`, `deleting` or `deleted`.
    pub fn is_dead(&self) -> bool {
        matches!(self, Self::Failed | Self::Deleting | Self::Deleted)
    }
}

open_string_enum!(
    /// Lifecycle status of a volume.
    VolumeStatus, Unknown {
        /// Being created.
        Creating => "creating",
        /// Attached to a server.
        Attached => "attached",
        /// Not attached to any server.
        Detached => "detached",
        /// Being removed.
        Deleting => "deleting",
        /// Removed.
        Deleted => "deleted",
        /// The creation did not succeed.
        Failed => "failed",
    }
);
lossless_from_str!(VolumeStatus);

impl VolumeStatus {
    /// Returns whether the volume can never become usable: `failed`, `deleting` or `deleted`.
    pub fn is_dead(&self) -> bool {
        matches!(self, Self::Failed | Self::Deleting | Self::Deleted)
    }
}

open_string_enum!(
    /// Availability of a server type.
    ServerTypeStatus, Unknown {
        /// Offered for new servers.
        Available => "available",
        /// Still running on existing servers, not offered for new ones.
        Deprecated => "deprecated",
        /// Offered for testing only.
        Experimental => "experimental",
    }
);
lossless_from_str!(ServerTypeStatus);

/// Short form of a server type, as nested in a server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ServerTypeRef {
    /// Server type id.
    pub id: ServerTypeId,
    /// Handle such as `1gb.ssd`.
    pub handle: Option<String>,
    /// Display name.
    pub name: Option<String>,
}

/// Short form of a zone, as nested in a server or volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ZoneRef {
    /// Zone id.
    pub id: ZoneId,
    /// Handle such as `gb1-a`.
    pub handle: Option<String>,
}

/// Short form of an image, as nested in a server or volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ImageRef {
    /// Image id.
    pub id: ImageId,
    /// Display name.
    pub name: Option<String>,
}

/// Short form of a server, as nested in a volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ServerRef {
    /// Server id.
    pub id: ServerId,
    /// Display name.
    pub name: Option<String>,
}

/// Server as returned by `GET /1.0/servers/{id}`.
///
/// Decoding ignores fields this crate does not know, and optional fields may be `null` or absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Server {
    /// Server id.
    pub id: ServerId,
    /// Display name.
    pub name: Option<String>,
    /// Lifecycle status.
    pub status: ServerStatus,
    /// Host name, such as `srv-lv426`.
    pub hostname: Option<String>,
    /// Fully qualified domain name.
    pub fqdn: Option<String>,
    /// Image the server was built from.
    pub image: Option<ImageRef>,
    /// Server type.
    pub server_type: Option<ServerTypeRef>,
    /// Zone the server runs in.
    pub zone: Option<ZoneRef>,
    /// Base64-encoded user data, as the API returns it.
    pub user_data: Option<String>,
    /// Whether the server is locked against deletion.
    #[serde(default, deserialize_with = "null_as_default")]
    pub locked: bool,
    /// Whether the disk is encrypted.
    #[serde(default, deserialize_with = "null_as_default")]
    pub disk_encrypted: bool,
    /// Whether the server uses emulated devices instead of virtio.
    #[serde(default, deserialize_with = "null_as_default")]
    pub compatibility_mode: bool,
    /// Cron-style schedule of automatic snapshots.
    pub snapshots_schedule: Option<String>,
    /// How many scheduled snapshots are kept.
    pub snapshots_retention: Option<String>,
    /// Creation time.
    pub created_at: Option<DateTime<Utc>>,
    /// Time the server was last started.
    pub started_at: Option<DateTime<Utc>>,
    /// Deletion time, once deleted.
    pub deleted_at: Option<DateTime<Utc>>,
    /// API URL of the server.
    pub url: Option<String>,
}

/// Volume as returned by `GET /1.0/volumes/{id}`.
///
/// Decoding ignores fields this crate does not know, and optional fields may be `null` or absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Volume {
    /// Volume id.
    pub id: VolumeId,
    /// Display name.
    pub name: Option<String>,
    /// Free-text description.
    pub description: Option<String>,
    /// Lifecycle status.
    pub status: VolumeStatus,
    /// Size in MB.
    pub size: Option<u64>,
    /// Storage type, such as `network` or `local`.
    pub storage_type: Option<String>,
    /// Whether the server boots from this volume.
    #[serde(default, deserialize_with = "null_as_default")]
    pub boot: bool,
    /// Whether the volume is encrypted.
    #[serde(default, deserialize_with = "null_as_default")]
    pub encrypted: bool,
    /// Whether the volume is locked against deletion.
    #[serde(default, deserialize_with = "null_as_default")]
    pub locked: bool,
    /// Image the volume was created from.
    pub image: Option<ImageRef>,
    /// Server the volume is attached to.
    pub server: Option<ServerRef>,
    /// Zone of the volume.
    pub zone: Option<ZoneRef>,
    /// Creation time.
    pub created_at: Option<DateTime<Utc>>,
    /// API URL of the volume.
    pub url: Option<String>,
}

/// Server type (size) as returned by `GET /1.0/server_types/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ServerType {
    /// Server type id.
    pub id: ServerTypeId,
    /// Handle such as `1gb.ssd`.
    pub handle: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// Availability.
    pub status: Option<ServerTypeStatus>,
    /// Number of CPU cores.
    pub cores: Option<u32>,
    /// RAM in MB.
    pub ram: Option<u64>,
    /// Disk size in MB; it must be at least the image's `virtual_size`.
    pub disk_size: Option<u64>,
    /// Storage type, such as `local` or `network`.
    pub storage_type: Option<String>,
    /// API URL of the server type.
    pub url: Option<String>,
}

/// Zone as returned by `GET /1.0/zones/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Zone {
    /// Zone id.
    pub id: ZoneId,
    /// Handle such as `gb1-a`.
    pub handle: Option<String>,
    /// API URL of the zone.
    pub url: Option<String>,
}

/// Volume entry of a [`CreateServer`] request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum VolumeEntry {
    /// Boots from an existing volume, sent as `{"volume": "vol-…"}`.
    Existing {
        /// Volume to boot from.
        volume: VolumeId,
    },
    /// Creates a new network volume of `size` MB, from `image` when given.
    New {
        /// Size in MB.
        size: u64,
        /// Image written to the volume.
        #[serde(skip_serializing_if = "Option::is_none")]
        image: Option<ImageId>,
    },
}

/// Body of `POST /1.0/servers`, built with [`CreateServer::new`] and the setters.
///
/// Unset optional fields are left out of the JSON so that the server applies its defaults.
///
/// ```
/// use brightbox_api::{CreateServer, ImageId};
///
/// let image: ImageId = "img-3ikco".parse()?;
/// let request = CreateServer::new(image)
///     .name("web-1")
///     .user_data(b"#cloud-config\n".to_vec());
/// assert_eq!(request.image().as_str(), "img-3ikco");
/// # Ok::<(), brightbox_api::ParseIdError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreateServer {
    image: ImageId,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_type: Option<ServerTypeId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    zone: Option<ZoneId>,
    #[serde(skip)]
    user_data: Option<Vec<u8>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    server_groups: Vec<ServerGroupId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cloud_ip: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    snapshots_schedule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    snapshots_retention: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disk_encrypted: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    volumes: Vec<VolumeEntry>,
}

impl CreateServer {
    /// Creates a request that builds a server from `image`.
    pub fn new(image: ImageId) -> Self {
        Self {
            image,
            name: None,
            server_type: None,
            zone: None,
            user_data: None,
            server_groups: Vec::new(),
            cloud_ip: None,
            snapshots_schedule: None,
            snapshots_retention: None,
            disk_encrypted: None,
            volumes: Vec::new(),
        }
    }

    /// Returns the image the server is built from.
    pub fn image(&self) -> &ImageId {
        &self.image
    }

    /// Sets the display name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the server type; find its id by handle with [`ServerTypes::find_by_handle`].
    pub fn server_type(mut self, id: ServerTypeId) -> Self {
        self.server_type = Some(id);
        self
    }

    /// Sets the zone; find its id by handle with [`Zones::find_by_handle`].
    pub fn zone(mut self, id: ZoneId) -> Self {
        self.zone = Some(id);
        self
    }

    /// Sets the user data (for example a cloud-init document). It is sent base64-encoded, and the encoded form
    /// may be at most [`MAX_USER_DATA_ENCODED_LEN`] bytes.
    pub fn user_data(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.user_data = Some(data.into());
        self
    }

    /// Adds the server to a server group.
    pub fn server_group(mut self, id: ServerGroupId) -> Self {
        self.server_groups.push(id);
        self
    }

    /// Sets whether a new cloud IP is allocated and mapped to the server.
    pub fn cloud_ip(mut self, allocate: bool) -> Self {
        self.cloud_ip = Some(allocate);
        self
    }

    /// Sets the cron-style schedule of automatic snapshots, such as `0 3 * * *`.
    pub fn snapshots_schedule(mut self, schedule: impl Into<String>) -> Self {
        self.snapshots_schedule = Some(schedule.into());
        self
    }

    /// Sets how many scheduled snapshots are kept.
    pub fn snapshots_retention(mut self, retention: impl Into<String>) -> Self {
        self.snapshots_retention = Some(retention.into());
        self
    }

    /// Sets whether the disk is encrypted.
    pub fn disk_encrypted(mut self, encrypted: bool) -> Self {
        self.disk_encrypted = Some(encrypted);
        self
    }

    /// Adds a volume entry: an existing volume to boot from, or a new network volume.
    pub fn volume(mut self, entry: VolumeEntry) -> Self {
        self.volumes.push(entry);
        self
    }

    /// Builds the JSON body, encoding and checking the user data.
    fn to_body(&self) -> Result<serde_json::Value> {
        if let Some(name) = &self.name
            && let Some(control) = name.chars().find(|c| c.is_control())
        {
            return Err(Error::InvalidRequest {
                field: "name",
                value: name.clone(),
                reason: format!(
                    "the server name contains the control character {control:?}; remove it"
                ),
            });
        }
        let mut body = serde_json::to_value(self).map_err(|source| Error::InvalidRequest {
            field: "body",
            value: self.image().to_string(),
            reason: format!("cannot encode the request as JSON: {source}"),
        })?;
        if let Some(data) = &self.user_data {
            let encoded = base64::engine::general_purpose::STANDARD.encode(data);
            if encoded.len() > MAX_USER_DATA_ENCODED_LEN {
                return Err(Error::InvalidRequest {
                    field: "user_data",
                    value: format!(
                        "{} bytes, {} after base64 encoding",
                        data.len(),
                        encoded.len()
                    ),
                    reason: format!(
                        "the encoded user data exceeds the limit of {MAX_USER_DATA_ENCODED_LEN} bytes; compress it (cloud-init accepts gzip) or fetch the rest from a URL"
                    ),
                });
            }
            body["user_data"] = serde_json::Value::String(encoded);
        }
        Ok(body)
    }
}

/// Endpoints under `/1.0/servers`, from [`Client::servers`].
#[derive(Debug, Clone, Copy)]
pub struct Servers<'a> {
    client: &'a Client,
}

impl<'a> Servers<'a> {
    pub(crate) fn new(client: &'a Client) -> Self {
        Self { client }
    }

    /// Lists the account's servers.
    ///
    /// # Errors
    ///
    /// Authentication errors ([`Error::Unauthenticated`], [`Error::TwoFactorRequired`]), the status errors
    /// ([`Error::Forbidden`], [`Error::Server`], [`Error::RateLimited`] and others) after retries,
    /// [`Error::Transport`] and [`Error::Decode`].
    #[tracing::instrument(name = "brightbox_api.servers.list", skip_all)]
    pub async fn list(&self) -> Result<Vec<Server>> {
        let call = Call::get("1.0/servers".to_owned(), "server list".to_owned());
        self.client.call_json(&call).await
    }

    /// Fetches one server.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the server does not exist, and the errors of [`Servers::list`].
    #[tracing::instrument(name = "brightbox_api.servers.get", skip_all, fields(server_id = %id))]
    pub async fn get(&self, id: &ServerId) -> Result<Server> {
        let call = Call::get(format!("1.0/servers/{id}"), format!("server {id}"));
        self.client.call_json(&call).await
    }

    /// Creates a server (`POST /1.0/servers`) and returns it, normally in status `creating`.
    ///
    /// The request is resent only when the connection could not be opened or the server returned 429, because a repeat
    /// could create a second server.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidRequest`] before sending when the name contains a control character or the base64-encoded
    /// user data exceeds [`MAX_USER_DATA_ENCODED_LEN`]. [`Error::Validation`] or [`Error::Forbidden`] (for example an account limit)
    /// when the API rejects it, and the errors of [`Servers::list`].
    #[tracing::instrument(name = "brightbox_api.servers.create", skip_all, fields(image_id = %request.image()))]
    pub async fn create(&self, request: &CreateServer) -> Result<Server> {
        let body = request.to_body()?;
        let call = Call::post(
            "1.0/servers".to_owned(),
            "server collection".to_owned(),
            Some(body),
        );
        let server: Server = self.client.call_json(&call).await?;
        tracing::info!(server_id = %server.id, status = %server.status, "created server");
        Ok(server)
    }

    /// Destroys a server (`DELETE /1.0/servers/{id}`); the API returns 202 and removes it in the background.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::Conflict`] or [`Error::Forbidden`] when the server is locked (the API
    /// documents no fixed status for that), and the errors of [`Servers::list`].
    #[tracing::instrument(name = "brightbox_api.servers.destroy", skip_all, fields(server_id = %id))]
    pub async fn destroy(&self, id: &ServerId) -> Result<()> {
        let call = Call::delete(format!("1.0/servers/{id}"), format!("server {id}"));
        self.client.execute(&call).await?;
        Ok(())
    }

    /// Snapshots the server's disk with `POST /1.0/images {"server": id}` and returns the new image (201),
    /// normally in status `creating`.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] or [`Error::Forbidden`] when the API rejects the snapshot, and the errors of
    /// [`Servers::list`].
    #[tracing::instrument(name = "brightbox_api.servers.snapshot", skip_all, fields(server_id = %id))]
    pub async fn snapshot(&self, id: &ServerId) -> Result<Image> {
        let call = Call::post(
            "1.0/images".to_owned(),
            format!("server {id}"),
            Some(serde_json::json!({ "server": id })),
        );
        let image: Image = self.client.call_json(&call).await?;
        tracing::info!(image_id = %image.id, "snapshot started");
        Ok(image)
    }

    /// Snapshots the server's disk with the older `POST /1.0/servers/{id}/snapshot` (202), returning the image id
    /// from the `Link: <…/images/img-…>; rel=snapshot` header.
    ///
    /// # Errors
    ///
    /// [`Error::SnapshotLinkMissing`] when the 2xx response has no such header, and the errors of
    /// [`Servers::snapshot`].
    #[tracing::instrument(name = "brightbox_api.servers.snapshot_legacy", skip_all, fields(server_id = %id))]
    pub async fn snapshot_legacy(&self, id: &ServerId) -> Result<ImageId> {
        let call = Call::post(
            format!("1.0/servers/{id}/snapshot"),
            format!("server {id}"),
            None,
        );
        let reply = self.client.execute(&call).await?;
        let links = reply
            .headers
            .get_all(reqwest::header::LINK)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect::<Vec<_>>();
        let image = links
            .iter()
            .find_map(|value| snapshot_image_from_link(value))
            .ok_or_else(|| Error::SnapshotLinkMissing {
                server: id.clone(),
                links: links.iter().map(|value| (*value).to_owned()).collect(),
                request_id: reply.request_id.clone(),
            })?;
        tracing::info!(image_id = %image, status = reply.status, "snapshot started");
        Ok(image)
    }

    /// Polls a server until its status is `target`; see [`WaitOptions`] for the schedule.
    ///
    /// `failed`, `deleting` and `deleted` end the wait unless they are the target; while waiting for `deleted`,
    /// `deleting` keeps the wait going. Other statuses keep it going too; unknown ones are logged with
    /// `tracing::warn!`.
    ///
    /// # Errors
    ///
    /// [`Error::WaitFailed`] on a terminal status, [`Error::WaitTimedOut`] at the deadline (both carry the last
    /// poll), and any error of [`Servers::get`].
    #[tracing::instrument(name = "brightbox_api.servers.wait_for_status", skip_all, fields(server_id = %id, target = %target))]
    pub async fn wait_for_status(
        &self,
        id: &ServerId,
        target: ServerStatus,
        options: &WaitOptions,
    ) -> Result<Server> {
        let classify = |server: &Server| {
            if server.status == target {
                Verdict::Done
            } else if target == ServerStatus::Deleted && server.status == ServerStatus::Deleting {
                Verdict::Transient
            } else if server.status.is_dead() {
                Verdict::Terminal
            } else if matches!(server.status, ServerStatus::Unknown(_)) {
                Verdict::Unknown
            } else {
                Verdict::Transient
            }
        };
        poll_until(
            options,
            target.as_str(),
            || self.get(id),
            classify,
            Resource::Server,
            |progress: &WaitProgress<'_, Server>| {
                tracing::debug!(poll = progress.poll, status = %progress.current.status, "polled server");
            },
        )
        .await
    }
}

/// Returns the image id of the `rel=snapshot` entry of a `Link` header value.
pub(crate) fn snapshot_image_from_link(value: &str) -> Option<ImageId> {
    value.split(',').find_map(|entry| {
        let mut parts = entry.split(';');
        let target = parts.next()?.trim();
        let target = target.strip_prefix('<')?.strip_suffix('>')?;
        let is_snapshot = parts.any(|param| {
            let Some((key, value)) = param.split_once('=') else {
                return false;
            };
            key.trim().eq_ignore_ascii_case("rel")
                && value
                    .trim()
                    .trim_matches('"')
                    .split_whitespace()
                    .any(|rel| rel == "snapshot")
        });
        if !is_snapshot {
            return None;
        }
        let last = target.trim_end_matches('/').rsplit('/').next()?;
        last.parse().ok()
    })
}

/// Endpoints under `/1.0/volumes`, from [`Client::volumes`].
#[derive(Debug, Clone, Copy)]
pub struct Volumes<'a> {
    client: &'a Client,
}

impl<'a> Volumes<'a> {
    pub(crate) fn new(client: &'a Client) -> Self {
        Self { client }
    }

    /// Lists the account's volumes.
    ///
    /// # Errors
    ///
    /// The errors of [`Servers::list`].
    #[tracing::instrument(name = "brightbox_api.volumes.list", skip_all)]
    pub async fn list(&self) -> Result<Vec<Volume>> {
        let call = Call::get("1.0/volumes".to_owned(), "volume list".to_owned());
        self.client.call_json(&call).await
    }

    /// Fetches one volume.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the volume does not exist, and the errors of [`Servers::list`].
    #[tracing::instrument(name = "brightbox_api.volumes.get", skip_all, fields(volume_id = %id))]
    pub async fn get(&self, id: &VolumeId) -> Result<Volume> {
        let call = Call::get(format!("1.0/volumes/{id}"), format!("volume {id}"));
        self.client.call_json(&call).await
    }

    /// Polls a volume until its status is `target`; see [`Servers::wait_for_status`] for the rules.
    ///
    /// # Errors
    ///
    /// [`Error::WaitFailed`], [`Error::WaitTimedOut`] and any error of [`Volumes::get`].
    #[tracing::instrument(name = "brightbox_api.volumes.wait_for_status", skip_all, fields(volume_id = %id, target = %target))]
    pub async fn wait_for_status(
        &self,
        id: &VolumeId,
        target: VolumeStatus,
        options: &WaitOptions,
    ) -> Result<Volume> {
        let classify = |volume: &Volume| {
            if volume.status == target {
                Verdict::Done
            } else if target == VolumeStatus::Deleted && volume.status == VolumeStatus::Deleting {
                Verdict::Transient
            } else if volume.status.is_dead() {
                Verdict::Terminal
            } else if matches!(volume.status, VolumeStatus::Unknown(_)) {
                Verdict::Unknown
            } else {
                Verdict::Transient
            }
        };
        poll_until(
            options,
            target.as_str(),
            || self.get(id),
            classify,
            Resource::Volume,
            |progress: &WaitProgress<'_, Volume>| {
                tracing::debug!(poll = progress.poll, status = %progress.current.status, "polled volume");
            },
        )
        .await
    }
}

/// Endpoints under `/1.0/server_types`, from [`Client::server_types`].
#[derive(Debug, Clone, Copy)]
pub struct ServerTypes<'a> {
    client: &'a Client,
}

impl<'a> ServerTypes<'a> {
    pub(crate) fn new(client: &'a Client) -> Self {
        Self { client }
    }

    /// Lists the server types.
    ///
    /// # Errors
    ///
    /// The errors of [`Servers::list`].
    #[tracing::instrument(name = "brightbox_api.server_types.list", skip_all)]
    pub async fn list(&self) -> Result<Vec<ServerType>> {
        let call = Call::get("1.0/server_types".to_owned(), "server type list".to_owned());
        self.client.call_json(&call).await
    }

    /// Fetches one server type.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the id is unknown, and the errors of [`Servers::list`].
    #[tracing::instrument(name = "brightbox_api.server_types.get", skip_all, fields(server_type_id = %id))]
    pub async fn get(&self, id: &ServerTypeId) -> Result<ServerType> {
        let call = Call::get(
            format!("1.0/server_types/{id}"),
            format!("server type {id}"),
        );
        self.client.call_json(&call).await
    }

    /// Finds the server type with this handle, such as `1gb.ssd`, in the list.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidRequest`] naming the known handles when none matches, and the errors of
    /// [`ServerTypes::list`].
    pub async fn find_by_handle(&self, handle: &str) -> Result<ServerType> {
        let types = self.list().await?;
        let known: Vec<String> = types.iter().filter_map(|t| t.handle.clone()).collect();
        types
            .into_iter()
            .find(|t| t.handle.as_deref() == Some(handle))
            .ok_or_else(|| Error::InvalidRequest {
                field: "server_type",
                value: handle.to_owned(),
                reason: format!(
                    "no server type has this handle; known handles: {}",
                    known.join(", ")
                ),
            })
    }
}

/// Endpoints under `/1.0/zones`, from [`Client::zones`].
#[derive(Debug, Clone, Copy)]
pub struct Zones<'a> {
    client: &'a Client,
}

impl<'a> Zones<'a> {
    pub(crate) fn new(client: &'a Client) -> Self {
        Self { client }
    }

    /// Lists the zones.
    ///
    /// # Errors
    ///
    /// The errors of [`Servers::list`].
    #[tracing::instrument(name = "brightbox_api.zones.list", skip_all)]
    pub async fn list(&self) -> Result<Vec<Zone>> {
        let call = Call::get("1.0/zones".to_owned(), "zone list".to_owned());
        self.client.call_json(&call).await
    }

    /// Fetches one zone.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the id is unknown, and the errors of [`Servers::list`].
    #[tracing::instrument(name = "brightbox_api.zones.get", skip_all, fields(zone_id = %id))]
    pub async fn get(&self, id: &ZoneId) -> Result<Zone> {
        let call = Call::get(format!("1.0/zones/{id}"), format!("zone {id}"));
        self.client.call_json(&call).await
    }

    /// Finds the zone with this handle, such as `gb1-a`, in the list.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidRequest`] naming the known handles when none matches, and the errors of [`Zones::list`].
    pub async fn find_by_handle(&self, handle: &str) -> Result<Zone> {
        let zones = self.list().await?;
        let known: Vec<String> = zones.iter().filter_map(|z| z.handle.clone()).collect();
        zones
            .into_iter()
            .find(|z| z.handle.as_deref() == Some(handle))
            .ok_or_else(|| Error::InvalidRequest {
                field: "zone",
                value: handle.to_owned(),
                reason: format!(
                    "no zone has this handle; known handles: {}",
                    known.join(", ")
                ),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_header_gives_snapshot_image() {
        let value = "<https://api.gb1.brightbox.com/1.0/images/img-abc12>; rel=snapshot";
        assert_eq!(
            snapshot_image_from_link(value).map(String::from).as_deref(),
            Some("img-abc12")
        );
        let value = "<https://x/1.0/servers/srv-aaaaa>; rel=self, <https://x/1.0/images/img-zz9zz>; rel=\"snapshot\"";
        assert_eq!(
            snapshot_image_from_link(value).map(String::from).as_deref(),
            Some("img-zz9zz")
        );
    }

    #[test]
    fn link_header_without_snapshot_is_none() {
        for value in [
            "<https://x/1.0/images/img-abc12>; rel=self",
            "https://x/1.0/images/img-abc12; rel=snapshot",
            "<https://x/1.0/images/not-an-id>; rel=snapshot",
            "",
        ] {
            assert_eq!(snapshot_image_from_link(value), None, "{value}");
        }
    }

    #[test]
    fn volume_entries_serialise_by_kind() {
        let image: ImageId = "img-3ikco".parse().expect("valid id");
        let volume: VolumeId = "vol-po5we".parse().expect("valid id");
        let body = CreateServer::new(image.clone())
            .volume(VolumeEntry::Existing { volume })
            .volume(VolumeEntry::New {
                size: 20480,
                image: None,
            })
            .to_body()
            .expect("body encodes");
        assert_eq!(
            body["volumes"],
            serde_json::json!([{"volume": "vol-po5we"}, {"size": 20480}])
        );
        assert!(body.get("user_data").is_none());
        assert!(body.get("server_groups").is_none());
    }

    #[test]
    fn user_data_is_base64_and_capped() {
        let image: ImageId = "img-3ikco".parse().expect("valid id");
        let body = CreateServer::new(image.clone())
            .user_data(b"hello".to_vec())
            .to_body()
            .expect("small user data encodes");
        assert_eq!(body["user_data"], "aGVsbG8=");

        // 49 152 raw bytes encode to exactly 65 536 base64 bytes; one more raw byte goes over the limit.
        let at_limit = vec![0u8; 49_152];
        assert!(
            CreateServer::new(image.clone())
                .user_data(at_limit)
                .to_body()
                .is_ok()
        );
        let over = vec![0u8; 49_153];
        let error = CreateServer::new(image)
            .user_data(over)
            .to_body()
            .expect_err("over the limit");
        assert!(
            matches!(
                &error,
                Error::InvalidRequest {
                    field: "user_data",
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(error.to_string().contains("65540"), "{error}");
    }
}
