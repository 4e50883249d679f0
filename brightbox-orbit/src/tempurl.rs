//! Swift temp URLs: pre-signed links that work without an auth token until they expire.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha1::Sha1;
use url::Url;

use crate::client::OrbitClient;
use crate::error::{OrbitError, Result};

/// HTTP method a temp URL is valid for; Swift signs the method into the URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TempUrlMethod {
    /// Download the object.
    Get,
    /// Upload (create or replace) the object.
    Put,
    /// Read the object's metadata.
    Head,
}

impl TempUrlMethod {
    /// Returns the method name as it appears in the signed string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Put => "PUT",
            Self::Head => "HEAD",
        }
    }
}

/// Returns how long a temp URL must stay valid for a server to fetch `bytes` bytes.
///
/// The result is `bytes / assumed_rate_bytes_per_sec` seconds (rounded up) plus `margin`. When
/// Orbit hands the URL to the image service, the fetch may queue behind other jobs, so the
/// margin should cover that wait as well. A rate of 0 is treated as 1 byte per second
/// rather than dividing by zero, and the sum saturates instead of overflowing.
///
/// ```
/// use std::time::Duration;
/// use brightbox_orbit::temp_url_expiry_for;
///
/// // 10 GiB at an assumed 20 MiB/s is 512 s, plus one hour of margin.
/// let ttl = temp_url_expiry_for(10 << 30, 20 << 20, Duration::from_secs(3600));
/// assert_eq!(ttl, Duration::from_secs(512 + 3600));
/// ```
pub fn temp_url_expiry_for(
    bytes: u64,
    assumed_rate_bytes_per_sec: u64,
    margin: Duration,
) -> Duration {
    let rate = assumed_rate_bytes_per_sec.max(1);
    let transfer = Duration::from_secs(bytes.div_ceil(rate));
    transfer.saturating_add(margin)
}

/// Computes the hex HMAC-SHA1 temp URL signature over `"{method}\n{expires}\n{path}"`.
///
/// `path` is the decoded request path, for example `/v1/acc-12345/images/img-abcde`.
pub(crate) fn signature(
    key: &SecretString,
    method: TempUrlMethod,
    expires: u64,
    path: &str,
) -> String {
    // HMAC hashes keys longer than the block size (RFC 2104), so `new_from_slice` accepts any length.
    let mut mac = match <Hmac<Sha1> as KeyInit>::new_from_slice(key.expose_secret().as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(format!("{}\n{}\n{}", method.as_str(), expires, path).as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

impl OrbitClient {
    /// Builds a temp URL for one object, valid for `method` until `expires_at`.
    ///
    /// The signature is HMAC-SHA1 (hex) with `key` over `METHOD\nexpires\npath`, where `path`
    /// is the storage URL's path plus `container/object`, and `expires` is in Unix seconds. The
    /// URL carries `temp_url_sig` and `temp_url_expires`. It is a bearer credential: log it only
    /// without its query. Get the key from [`ensure_temp_url_key`](Self::ensure_temp_url_key).
    ///
    /// # Errors
    ///
    /// [`OrbitError::InvalidName`] for a bad container or object name, and
    /// [`OrbitError::InvalidConfig`] when `expires_at` is before 1970.
    pub fn temp_url(
        &self,
        method: TempUrlMethod,
        container: &str,
        object: &str,
        key: &SecretString,
        expires_at: SystemTime,
    ) -> Result<Url> {
        let expires = expires_at
            .duration_since(UNIX_EPOCH)
            .map_err(|_| OrbitError::InvalidConfig {
                field: "expires_at",
                reason: "is before the Unix epoch; pass SystemTime::now() + a duration".into(),
            })?
            .as_secs();
        self.temp_url_at_unix(method, container, object, key, expires)
    }

    /// Builds a temp URL like [`temp_url`](Self::temp_url), with the expiry in Unix seconds.
    ///
    /// # Errors
    ///
    /// [`OrbitError::InvalidName`] for a bad container or object name.
    pub fn temp_url_at_unix(
        &self,
        method: TempUrlMethod,
        container: &str,
        object: &str,
        key: &SecretString,
        expires_unix: u64,
    ) -> Result<Url> {
        let mut url = self.object_url(container, Some(object))?;
        // Swift checks the signature against the decoded path of the request.
        let signed_path = format!(
            "{}{}/{}",
            decoded_path(self.storage_url()),
            container,
            object
        );
        let sig = signature(key, method, expires_unix, &signed_path);
        url.query_pairs_mut()
            .append_pair("temp_url_sig", &sig)
            .append_pair("temp_url_expires", &expires_unix.to_string());
        Ok(url)
    }
}

/// Returns the storage URL's path with percent-escapes decoded; it always ends with `/`.
fn decoded_path(url: &Url) -> String {
    let raw = url.path();
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = raw
            .get(i + 1..i + 3)
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        if let (b'%', Some(byte)) = (bytes[i], escaped) {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Returns `url` without its query and fragment, safe to show in logs and errors.
pub fn redact_url(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}
