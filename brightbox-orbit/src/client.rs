//! The client, its builder, token handling and the small account and container calls.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{RequestBuilder, Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tracing::{debug, info, instrument};
use url::Url;

use crate::error::{BoxError, OrbitError, Result};

/// Maximum container name length accepted by Swift, in bytes.
const MAX_CONTAINER_NAME: usize = 256;
/// Maximum object name length accepted by Swift, in bytes.
const MAX_OBJECT_NAME: usize = 1024;
/// Bytes of an error response body kept in [`OrbitError::Http`].
const BODY_EXCERPT_LIMIT: usize = 512;

/// Supplies the OAuth access token sent as `X-Auth-Token`.
///
/// Implement this over the API client's token cache so that long transfers pick up
/// refreshed tokens. [`OrbitClient`] calls [`token`](Self::token) before each request and
/// [`refresh`](Self::refresh) once after an HTTP 401, then repeats the request.
#[async_trait::async_trait]
pub trait TokenProvider: Send + Sync {
    /// Returns a currently valid token.
    ///
    /// # Errors
    ///
    /// Returns the provider's own error when no token can be obtained.
    async fn token(&self) -> std::result::Result<SecretString, BoxError>;

    /// Returns a new token after Orbit rejected the last one.
    ///
    /// The default calls [`token`](Self::token) again, which suits providers that track expiry.
    ///
    /// # Errors
    ///
    /// Returns the provider's own error when no token can be obtained.
    async fn refresh(&self) -> std::result::Result<SecretString, BoxError> {
        self.token().await
    }
}

/// A fixed token, used by [`OrbitClientBuilder::token`].
struct StaticToken(SecretString);

#[async_trait::async_trait]
impl TokenProvider for StaticToken {
    async fn token(&self) -> std::result::Result<SecretString, BoxError> {
        Ok(self.0.clone())
    }
}

/// A client for one Orbit account (a Swift storage URL such as
/// `https://orbit.brightbox.com/v1/acc-xxxxx/`).
///
/// Cloning is cheap: clones share the HTTP connection pool and the token provider.
/// `Debug` output shows the storage URL but never the token.
#[derive(Clone)]
pub struct OrbitClient {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) http: reqwest::Client,
    /// Always ends with `/`.
    pub(crate) storage_url: Url,
    tokens: Arc<dyn TokenProvider>,
}

impl fmt::Debug for OrbitClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OrbitClient")
            .field("storage_url", &self.inner.storage_url.as_str())
            .field("token", &"[REDACTED]")
            .finish()
    }
}

/// Builder for [`OrbitClient`]; see [`OrbitClient::builder`].
#[derive(Default)]
pub struct OrbitClientBuilder {
    storage_url: Option<Url>,
    tokens: Option<Arc<dyn TokenProvider>>,
    http: Option<reqwest::Client>,
    connect_timeout: Option<Duration>,
    read_timeout: Option<Duration>,
}

impl fmt::Debug for OrbitClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OrbitClientBuilder")
            .field("storage_url", &self.storage_url.as_ref().map(Url::as_str))
            .field("token", &self.tokens.as_ref().map(|_| "[REDACTED]"))
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .finish_non_exhaustive()
    }
}

impl OrbitClientBuilder {
    /// Sets the account storage URL, for example `https://orbit.brightbox.com/v1/acc-xxxxx/`.
    ///
    /// A missing trailing slash is added. Its path is the one temp URLs are signed over.
    pub fn storage_url(mut self, url: Url) -> Self {
        self.storage_url = Some(url);
        self
    }

    /// Uses a fixed OAuth access token (scope `orbit` or a full token).
    pub fn token(mut self, token: SecretString) -> Self {
        self.tokens = Some(Arc::new(StaticToken(token)));
        self
    }

    /// Uses a provider that can refresh the token; replaces any [`token`](Self::token).
    pub fn token_provider(mut self, provider: Arc<dyn TokenProvider>) -> Self {
        self.tokens = Some(provider);
        self
    }

    /// Uses a preconfigured reqwest client (proxies, root certificates, timeouts).
    ///
    /// The builder's own timeouts are then ignored.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Sets the TCP and TLS connect timeout (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Sets the maximum wait for each read from a response (default 60 s).
    ///
    /// This is a stall detector, not a limit on a whole transfer.
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = Some(timeout);
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    ///
    /// Returns [`OrbitError::InvalidConfig`] when the storage URL or the token is missing, the
    /// URL is not `http`/`https`, has a user name, password or query, or the HTTP client cannot be created.
    pub fn build(self) -> Result<OrbitClient> {
        let mut storage_url = self.storage_url.ok_or(OrbitError::InvalidConfig {
            field: "storage_url",
            reason: "missing; pass the account URL, e.g. https://orbit.brightbox.com/v1/acc-xxxxx/"
                .into(),
        })?;
        if !matches!(storage_url.scheme(), "http" | "https") {
            return Err(OrbitError::InvalidConfig {
                field: "storage_url",
                reason: format!("scheme {:?} is not http or https", storage_url.scheme()),
            });
        }
        if !storage_url.username().is_empty() || storage_url.password().is_some() {
            return Err(OrbitError::InvalidConfig {
                field: "storage_url",
                reason: "must not contain a user name or password; pass the access token with token() or token_provider()".into(),
            });
        }
        if storage_url.query().is_some() || storage_url.fragment().is_some() {
            return Err(OrbitError::InvalidConfig {
                field: "storage_url",
                reason: "must not have a query or fragment; pass only the account URL".into(),
            });
        }
        if !storage_url.path().ends_with('/') {
            let path = format!("{}/", storage_url.path());
            storage_url.set_path(&path);
        }
        let tokens = self.tokens.ok_or(OrbitError::InvalidConfig {
            field: "token",
            reason: "missing; call token() or token_provider()".into(),
        })?;
        let http = match self.http {
            Some(http) => http,
            None => reqwest::Client::builder()
                .connect_timeout(self.connect_timeout.unwrap_or(Duration::from_secs(10)))
                .read_timeout(self.read_timeout.unwrap_or(Duration::from_secs(60)))
                .user_agent(concat!("brightbox-orbit/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| OrbitError::InvalidConfig {
                    field: "http_client",
                    reason: format!("failed to build the HTTP client: {e}"),
                })?,
        };
        Ok(OrbitClient {
            inner: Arc::new(Inner {
                http,
                storage_url,
                tokens,
            }),
        })
    }
}

/// Account metadata returned by [`OrbitClient::head_account`].
///
/// `Debug` redacts both keys.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct AccountInfo {
    /// `X-Account-Meta-Temp-Url-Key`, the key temp URLs are signed with.
    pub temp_url_key: Option<SecretString>,
    /// `X-Account-Meta-Temp-Url-Key-2`, the second key Swift accepts during key rotation.
    pub temp_url_key_2: Option<SecretString>,
    /// `X-Account-Bytes-Used`.
    pub bytes_used: Option<u64>,
    /// `X-Account-Container-Count`.
    pub container_count: Option<u64>,
    /// `X-Account-Object-Count`.
    pub object_count: Option<u64>,
}

/// One entry of a container listing (`GET container?format=json`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct ObjectEntry {
    /// Object name.
    pub name: String,
    /// Size in bytes.
    pub bytes: u64,
    /// MD5 of the object (hex), as Swift stores it.
    pub hash: String,
}

/// Object metadata returned by [`OrbitClient::head_object`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ObjectInfo {
    /// `Content-Length`: the object size in bytes (for a manifest, the total of its segments).
    pub size: Option<u64>,
    /// `ETag` without quotes: the MD5 of the bytes, or for a Static Large Object the MD5 of
    /// the concatenated segment MD5s.
    pub etag: Option<String>,
    /// Whether `X-Static-Large-Object: True` was present.
    pub is_static_large_object: bool,
    /// `Content-Type`.
    pub content_type: Option<String>,
}

/// The container and object a request names, used to build [`OrbitError::NotFound`] and [`OrbitError::Forbidden`].
pub(crate) struct Target<'a> {
    pub(crate) container: &'a str,
    pub(crate) object: Option<&'a str>,
}

impl Target<'_> {
    fn describe(&self) -> String {
        if self.container.is_empty() {
            return "the account".to_owned();
        }
        match self.object {
            Some(object) => format!("{}/{}", self.container, object),
            None => self.container.to_owned(),
        }
    }
}

impl OrbitClient {
    /// Starts a builder; [`storage_url`](OrbitClientBuilder::storage_url) and a token are required.
    pub fn builder() -> OrbitClientBuilder {
        OrbitClientBuilder::default()
    }

    /// Returns the account storage URL, always ending with `/`.
    pub fn storage_url(&self) -> &Url {
        &self.inner.storage_url
    }

    /// Builds the URL of a container, or of an object when `object` is given.
    ///
    /// Object names keep their `/` separators; every other reserved character is percent-encoded.
    pub(crate) fn object_url(&self, container: &str, object: Option<&str>) -> Result<Url> {
        validate_container(container)?;
        if let Some(object) = object {
            validate_object(object)?;
        }
        let mut url = self.inner.storage_url.clone();
        {
            let mut segments = url
                .path_segments_mut()
                .map_err(|()| OrbitError::InvalidConfig {
                    field: "storage_url",
                    reason: "cannot be a base URL".into(),
                })?;
            segments.pop_if_empty().push(container);
            if let Some(object) = object {
                segments.extend(object.split('/'));
            }
        }
        Ok(url)
    }

    /// Sends a request built by `build`, adding `X-Auth-Token`.
    ///
    /// After a 401 the token is refreshed once and `build` runs again, so `build` must be able
    /// to recreate its body. Statuses other than 401 are returned to the caller unchanged.
    pub(crate) async fn send<F>(&self, operation: &'static str, build: F) -> Result<Response>
    where
        F: Fn(&reqwest::Client) -> RequestBuilder,
    {
        let mut token = self
            .inner
            .tokens
            .token()
            .await
            .map_err(|source| OrbitError::Token { source })?;
        for attempt in 0..2 {
            let mut value =
                HeaderValue::from_str(token.expose_secret()).map_err(|_| OrbitError::Token {
                    source: "the token contains characters that are not allowed in an HTTP header"
                        .into(),
                })?;
            value.set_sensitive(true);
            let request = build(&self.inner.http).header("X-Auth-Token", value);
            let response = request
                .send()
                .await
                .map_err(|source| OrbitError::Transport { operation, source })?;
            if response.status() != StatusCode::UNAUTHORIZED {
                return Ok(response);
            }
            if attempt == 0 {
                info!(
                    operation,
                    "Orbit answered 401; refreshing the token and retrying once"
                );
                token = self
                    .inner
                    .tokens
                    .refresh()
                    .await
                    .map_err(|source| OrbitError::Token { source })?;
            } else {
                return Err(OrbitError::Unauthorized {
                    operation,
                    request_id: request_id(response.headers()),
                });
            }
        }
        // The loop above returns on its second pass.
        Err(OrbitError::InvalidResponse {
            operation,
            reason: "request loop ended without a response".into(),
        })
    }

    /// Creates `container` unless it already exists.
    ///
    /// Sends `HEAD` first and `PUT` only after a 404, so an existing container's metadata and
    /// ACLs are left alone.
    ///
    /// # Errors
    ///
    /// [`OrbitError::InvalidName`] for a bad name, [`OrbitError::Forbidden`] when the token may
    /// not create containers, and the usual HTTP and transport errors.
    #[instrument(skip(self), err)]
    pub async fn ensure_container(&self, container: &str) -> Result<()> {
        let url = self.object_url(container, None)?;
        let target = Target {
            container,
            object: None,
        };
        let head = self
            .send("HEAD container", |http| http.head(url.clone()))
            .await?;
        match head.status() {
            status if status.is_success() => {
                debug!("container exists");
                return Ok(());
            }
            StatusCode::NOT_FOUND => {}
            _ => return Err(error_from_response("HEAD container", &target, head).await),
        }
        let put = self
            .send("PUT container", |http| {
                http.put(url.clone())
                    .header(reqwest::header::CONTENT_LENGTH, 0)
            })
            .await?;
        if put.status().is_success() {
            info!("created container");
            Ok(())
        } else {
            Err(error_from_response("PUT container", &target, put).await)
        }
    }

    /// Reads the account metadata, including the temp URL keys.
    ///
    /// # Errors
    ///
    /// HTTP and transport errors; [`OrbitError::Unauthorized`] for a rejected token.
    #[instrument(skip(self), err)]
    pub async fn head_account(&self) -> Result<AccountInfo> {
        let url = self.inner.storage_url.clone();
        let response = self
            .send("HEAD account", |http| http.head(url.clone()))
            .await?;
        if !response.status().is_success() {
            let target = Target {
                container: "",
                object: None,
            };
            return Err(error_from_response("HEAD account", &target, response).await);
        }
        let headers = response.headers();
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let number = |name: &str| text(name).and_then(|v| v.trim().parse::<u64>().ok());
        Ok(AccountInfo {
            temp_url_key: text("x-account-meta-temp-url-key")
                .filter(|k| !k.is_empty())
                .map(SecretString::from),
            temp_url_key_2: text("x-account-meta-temp-url-key-2")
                .filter(|k| !k.is_empty())
                .map(SecretString::from),
            bytes_used: number("x-account-bytes-used"),
            container_count: number("x-account-container-count"),
            object_count: number("x-account-object-count"),
        })
    }

    /// Returns the account's temp URL key, creating a random one only when none is set.
    ///
    /// An existing `Temp-Url-Key` (or, when that is absent, `Temp-Url-Key-2`) is returned
    /// unchanged, because changing a key invalidates every temp URL signed with it. A new key
    /// is 32 random bytes in hex, set with `POST` on the account and read back, so that
    /// when two clients race, both return the key Orbit stored.
    ///
    /// # Errors
    ///
    /// HTTP and transport errors; [`OrbitError::InvalidResponse`] when the key is still absent
    /// after setting it.
    #[instrument(skip(self), err)]
    pub async fn ensure_temp_url_key(&self) -> Result<SecretString> {
        let account = self.head_account().await?;
        if let Some(key) = account.temp_url_key.or(account.temp_url_key_2) {
            debug!("temp URL key already set");
            return Ok(key);
        }

        let key = SecretString::from(hex::encode(rand::random::<[u8; 32]>()));
        // Hex digits are always a valid header value.
        let mut key_header = HeaderValue::from_str(key.expose_secret()).map_err(|e| {
            OrbitError::InvalidResponse {
                operation: "POST account",
                reason: format!("generated key is not a header value: {e}"),
            }
        })?;
        key_header.set_sensitive(true);

        let url = self.inner.storage_url.clone();
        let response = self
            .send("POST account", |http| {
                http.post(url.clone())
                    .header("X-Account-Meta-Temp-Url-Key", key_header.clone())
                    .header(reqwest::header::CONTENT_LENGTH, 0)
            })
            .await?;
        if !response.status().is_success() {
            let target = Target {
                container: "",
                object: None,
            };
            return Err(error_from_response("POST account", &target, response).await);
        }
        info!("set a new account temp URL key");

        // Reading the key back returns the stored one when another client set a key at the same time.
        let stored = self.head_account().await?;
        stored.temp_url_key.ok_or(OrbitError::InvalidResponse {
            operation: "HEAD account",
            reason: "X-Account-Meta-Temp-Url-Key is still absent after setting it".into(),
        })
    }

    /// Reads an object's metadata with `HEAD`.
    ///
    /// # Errors
    ///
    /// [`OrbitError::NotFound`] when the object does not exist, plus HTTP and transport errors.
    #[instrument(skip(self), err)]
    pub async fn head_object(&self, container: &str, object: &str) -> Result<ObjectInfo> {
        let url = self.object_url(container, Some(object))?;
        let response = self
            .send("HEAD object", |http| http.head(url.clone()))
            .await?;
        if !response.status().is_success() {
            let target = Target {
                container,
                object: Some(object),
            };
            return Err(error_from_response("HEAD object", &target, response).await);
        }

        let headers = response.headers();
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        Ok(ObjectInfo {
            size: text("content-length").and_then(|v| v.trim().parse().ok()),
            etag: text("etag").map(|v| v.trim().trim_matches('"').to_ascii_lowercase()),
            is_static_large_object: text("x-static-large-object")
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
            content_type: text("content-type").map(str::to_owned),
        })
    }

    /// Deletes an object; for a Static Large Object, deletes its segments as well.
    ///
    /// Sends `HEAD` first to learn whether the object is a manifest (`X-Static-Large-Object`),
    /// then `DELETE`, with `?multipart-manifest=delete` for a manifest.
    ///
    /// # Errors
    ///
    /// [`OrbitError::NotFound`] when the object does not exist, plus HTTP and transport errors.
    #[instrument(skip(self), err)]
    pub async fn delete_object(&self, container: &str, object: &str) -> Result<()> {
        let info = self.head_object(container, object).await?;
        let is_manifest = info.is_static_large_object;

        let mut url = self.object_url(container, Some(object))?;
        if is_manifest {
            url.query_pairs_mut()
                .append_pair("multipart-manifest", "delete");
        }
        let response = self
            .send("DELETE object", |http| http.delete(url.clone()))
            .await?;
        if response.status().is_success() {
            info!(is_manifest, "deleted object");
            Ok(())
        } else {
            let target = Target {
                container,
                object: Some(object),
            };
            Err(error_from_response("DELETE object", &target, response).await)
        }
    }

    /// Lists objects in `container` whose names start with `prefix`, following Swift's
    /// 10,000-entry pages with `marker`.
    ///
    /// # Errors
    ///
    /// [`OrbitError::NotFound`] when the container does not exist,
    /// [`OrbitError::InvalidResponse`] for a listing that is not JSON, plus HTTP and transport errors.
    #[instrument(skip(self), err)]
    pub async fn list_objects(&self, container: &str, prefix: &str) -> Result<Vec<ObjectEntry>> {
        let base = self.object_url(container, None)?;
        let target = Target {
            container,
            object: None,
        };
        let mut entries: Vec<ObjectEntry> = Vec::new();
        loop {
            let mut url = base.clone();
            {
                let mut query = url.query_pairs_mut();
                query.append_pair("format", "json");
                query.append_pair("prefix", prefix);
                if let Some(last) = entries.last() {
                    query.append_pair("marker", &last.name);
                }
            }
            let response = self
                .send("GET container listing", |http| http.get(url.clone()))
                .await?;
            if !response.status().is_success() {
                return Err(error_from_response("GET container listing", &target, response).await);
            }
            let body = response
                .bytes()
                .await
                .map_err(|source| OrbitError::Transport {
                    operation: "GET container listing",
                    source,
                })?;
            let page: Vec<ObjectEntry> =
                serde_json::from_slice(&body).map_err(|e| OrbitError::InvalidResponse {
                    operation: "GET container listing",
                    reason: format!("listing is not the expected JSON array: {e}"),
                })?;
            // Names come sorted after the marker; a page that does not advance would repeat forever.
            if let (Some(marker), Some(first)) = (entries.last(), page.first())
                && first.name <= marker.name
            {
                return Err(OrbitError::InvalidResponse {
                    operation: "GET container listing",
                    reason: format!(
                        "the page after marker {:?} starts with {:?}, which does not sort after it; the server ignored the marker",
                        marker.name, first.name
                    ),
                });
            }
            let page_len = page.len();
            entries.extend(page);
            // Swift returns at most 10,000 names per page by default, so a shorter page is the last.
            // NOTE: a server configured with a lower listing limit would end this loop early.
            if page_len < 10_000 {
                return Ok(entries);
            }
        }
    }
}

/// Converts a non-success response into the error that matches its status.
pub(crate) async fn error_from_response(
    operation: &'static str,
    target: &Target<'_>,
    response: Response,
) -> OrbitError {
    let status = response.status();
    let request_id = request_id(response.headers());
    match status {
        StatusCode::UNAUTHORIZED => OrbitError::Unauthorized {
            operation,
            request_id,
        },
        StatusCode::FORBIDDEN => OrbitError::Forbidden {
            operation,
            target: target.describe(),
            request_id,
        },
        StatusCode::NOT_FOUND => OrbitError::NotFound {
            container: target.container.to_owned(),
            object: target.object.map(str::to_owned),
        },
        _ => {
            let body = response.bytes().await.unwrap_or_default();
            let cut = body.len().min(BODY_EXCERPT_LIMIT);
            OrbitError::Http {
                operation,
                status: status.as_u16(),
                body_excerpt: String::from_utf8_lossy(&body[..cut]).trim().to_owned(),
                request_id,
            }
        }
    }
}

pub(crate) fn request_id(headers: &HeaderMap) -> Option<String> {
    ["x-trans-id", "x-openstack-request-id"]
        .iter()
        .find_map(|name| headers.get(*name))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

pub(crate) fn validate_container(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        Some("must not be empty")
    } else if name.len() > MAX_CONTAINER_NAME {
        Some("is longer than 256 bytes")
    } else if name.contains('/') {
        Some("must not contain '/'")
    } else if name == "." || name == ".." {
        Some("must not be '.' or '..'")
    } else if name.chars().any(char::is_control) {
        Some("must not contain control characters such as NUL or line breaks")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(OrbitError::InvalidName {
            kind: "container",
            value: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

pub(crate) fn validate_object(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        Some("must not be empty")
    } else if name.len() > MAX_OBJECT_NAME {
        Some("is longer than 1024 bytes")
    } else if name.starts_with('/') {
        Some("must not start with '/'")
    } else if name.split('/').any(|part| part == "." || part == "..") {
        Some("must not contain '.' or '..' path segments, which URL normalisation would remove")
    } else if name.chars().any(char::is_control) {
        Some("must not contain control characters such as NUL or line breaks")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(OrbitError::InvalidName {
            kind: "object",
            value: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}
