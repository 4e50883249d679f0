//! The `create_server` workflow: build a server from an image and wait until it runs.

use std::time::Duration;

use brightbox_api::{CreateServer, ImageId, Server, ServerStatus, ServerTypeId, ZoneId};
use tracing::Instrument;

use crate::error::LibraryError;
use crate::library::Library;

/// The server to build with [`Library::create_server`].
///
/// Fields left unset take the API's defaults; the API picks the server type
/// and zone when none is given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerSpec {
    /// Display name of the server.
    pub name: Option<String>,
    /// Server type as a handle, such as `1gb.ssd`, or an id, such as `typ-zx45f`.
    pub server_type: Option<String>,
    /// Zone as a handle, such as `gb1-a`, or an id, such as `zon-328y7`.
    pub zone: Option<String>,
    /// User data passed to the server, such as a cloud-init document. It is
    /// sent base64-encoded, and the encoded form may be at most
    /// [`MAX_USER_DATA_ENCODED_LEN`](brightbox_api::MAX_USER_DATA_ENCODED_LEN) bytes.
    pub user_data: Option<Vec<u8>>,
    /// Whether the workflow returns the server as created instead of waiting
    /// until it is `active`.
    pub no_wait: bool,
    /// Maximum time to wait for the server, replacing the timeout of the
    /// library's [`WaitOptions`](brightbox_api::WaitOptions).
    pub wait_timeout: Option<Duration>,
}

impl ServerSpec {
    /// Creates a spec with the API's defaults for every field.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the display name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the server type by handle (`1gb.ssd`) or id (`typ-zx45f`).
    pub fn server_type(mut self, handle_or_id: impl Into<String>) -> Self {
        self.server_type = Some(handle_or_id.into());
        self
    }

    /// Sets the zone by handle (`gb1-a`) or id (`zon-328y7`).
    pub fn zone(mut self, handle_or_id: impl Into<String>) -> Self {
        self.zone = Some(handle_or_id.into());
        self
    }

    /// Sets the user data.
    pub fn user_data(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.user_data = Some(data.into());
        self
    }

    /// Sets whether the workflow waits until the server is active (default `true`).
    pub fn wait(mut self, wait: bool) -> Self {
        self.no_wait = !wait;
        self
    }

    /// Sets the maximum time to wait for the server to become active.
    pub fn wait_timeout(mut self, timeout: Duration) -> Self {
        self.wait_timeout = Some(timeout);
        self
    }
}

impl Library {
    /// Builds a server from image `image_id` and waits until it is `active`.
    ///
    /// A server type or zone given as a handle is looked up in
    /// `GET /1.0/server_types` or `GET /1.0/zones` first. A value that
    /// parses as an id (`typ-…`, `zon-…`) is sent as it is. Then the
    /// workflow sends `POST /1.0/servers` and polls the server.
    ///
    /// # Errors
    ///
    /// - [`LibraryError::InvalidServerSpec`] when a handle is unknown; the
    ///   source lists the known handles.
    /// - [`LibraryError::CreateServer`] when the API rejects the server, for
    ///   example an image larger than the type's disk, user data over the
    ///   limit, or an account limit; no server was created.
    /// - [`LibraryError::ServerWait`] when the server does not become active;
    ///   [`LibraryError::created_server`] returns its id.
    pub async fn create_server(
        &self,
        image_id: &ImageId,
        spec: &ServerSpec,
    ) -> Result<Server, LibraryError> {
        let span = tracing::info_span!("create_server", %image_id);
        self.run_create_server(image_id, spec)
            .instrument(span)
            .await
    }

    async fn run_create_server(
        &self,
        image_id: &ImageId,
        spec: &ServerSpec,
    ) -> Result<Server, LibraryError> {
        let mut request = CreateServer::new(image_id.clone());
        if let Some(name) = &spec.name {
            request = request.name(name.clone());
        }
        if let Some(server_type) = &spec.server_type {
            request = request.server_type(self.server_type_id(server_type).await?);
        }
        if let Some(zone) = &spec.zone {
            request = request.zone(self.zone_id(zone).await?);
        }
        if let Some(user_data) = &spec.user_data {
            request = request.user_data(user_data.clone());
        }

        let server = self
            .api()
            .servers()
            .create(&request)
            .await
            .map_err(|source| LibraryError::CreateServer {
                image_id: image_id.clone(),
                source,
            })?;
        tracing::info!(server_id = %server.id, "server created");
        if spec.no_wait {
            return Ok(server);
        }

        let wait = self.wait_options(spec.wait_timeout);
        let server = self
            .api()
            .servers()
            .wait_for_status(&server.id, ServerStatus::Active, &wait)
            .await
            .map_err(|source| LibraryError::ServerWait {
                server_id: server.id.clone(),
                image_id: image_id.clone(),
                source: Box::new(source),
            })?;
        tracing::info!(server_id = %server.id, "server active");
        Ok(server)
    }

    async fn server_type_id(&self, value: &str) -> Result<ServerTypeId, LibraryError> {
        if let Ok(id) = value.parse::<ServerTypeId>() {
            return Ok(id);
        }
        self.api()
            .server_types()
            .find_by_handle(value)
            .await
            .map(|server_type| server_type.id)
            .map_err(|source| LibraryError::InvalidServerSpec {
                field: "server_type",
                value: value.to_owned(),
                source: Box::new(source),
            })
    }

    async fn zone_id(&self, value: &str) -> Result<ZoneId, LibraryError> {
        if let Ok(id) = value.parse::<ZoneId>() {
            return Ok(id);
        }
        self.api()
            .zones()
            .find_by_handle(value)
            .await
            .map(|zone| zone.id)
            .map_err(|source| LibraryError::InvalidServerSpec {
                field: "zone",
                value: value.to_owned(),
                source: Box::new(source),
            })
    }
}
