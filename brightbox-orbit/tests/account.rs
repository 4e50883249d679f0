//! Containers, account metadata, temp URL keys, deletes and token handling against wiremock.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use brightbox_orbit::{BoxError, OrbitClient, OrbitError, TokenProvider};
use common::{ACCOUNT_PATH, TOKEN, assert_all_authenticated, client, mount_catch_all};
use secrecy::{ExposeSecret, SecretString};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

#[tokio::test]
async fn ensure_container_creates_missing_container() {
    let server = MockServer::start().await;
    let container_path = format!("{ACCOUNT_PATH}/image-uploads");
    Mock::given(method("HEAD"))
        .and(path(container_path.as_str()))
        .and(header("x-auth-token", TOKEN))
        .respond_with(ResponseTemplate::new(404))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path(container_path.as_str()))
        .and(header("x-auth-token", TOKEN))
        .respond_with(ResponseTemplate::new(201))
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    client(&server)
        .ensure_container("image-uploads")
        .await
        .expect("container created");
    assert_all_authenticated(&server).await;
}

#[tokio::test]
async fn ensure_container_leaves_existing_container() {
    let server = MockServer::start().await;
    let container_path = format!("{ACCOUNT_PATH}/image-uploads");
    Mock::given(method("HEAD"))
        .and(path(container_path.as_str()))
        .and(header("x-auth-token", TOKEN))
        .respond_with(ResponseTemplate::new(204).insert_header("x-container-object-count", "3"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(201))
        .expect(0)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    client(&server)
        .ensure_container("image-uploads")
        .await
        .expect("existing container accepted");
    assert_all_authenticated(&server).await;
}

#[tokio::test]
async fn ensure_container_forbidden_for_storage_client() {
    let server = MockServer::start().await;
    let container_path = format!("{ACCOUNT_PATH}/image-uploads");
    Mock::given(method("HEAD"))
        .and(path(container_path.as_str()))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path(container_path.as_str()))
        .respond_with(ResponseTemplate::new(403).insert_header("x-trans-id", "tx-forbidden-1"))
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let error = client(&server)
        .ensure_container("image-uploads")
        .await
        .expect_err("403 must fail");
    match &error {
        OrbitError::Forbidden {
            target, request_id, ..
        } => {
            assert_eq!(target, "image-uploads");
            assert_eq!(request_id.as_deref(), Some("tx-forbidden-1"));
        }
        other => panic!("expected Forbidden, got {other:?}"),
    }
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn invalid_container_name_rejected_without_request() {
    let server = MockServer::start().await;
    mount_catch_all(&server).await;

    let error = client(&server)
        .ensure_container("a/b")
        .await
        .expect_err("slash in container name");
    assert!(
        matches!(&error, OrbitError::InvalidName { kind: "container", value, .. } if value == "a/b"),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("must not contain '/'"),
        "{error}"
    );
    let requests = server.received_requests().await.expect("recording enabled");
    assert!(requests.is_empty());
}

#[tokio::test]
async fn server_error_keeps_status_body_and_request_id() {
    let server = MockServer::start().await;
    Mock::given(method("HEAD"))
        .and(path(format!("{ACCOUNT_PATH}/c")))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path(format!("{ACCOUNT_PATH}/c")))
        .respond_with(
            ResponseTemplate::new(503)
                .insert_header("x-trans-id", "tx-503")
                .set_body_string("Service Unavailable: proxy overloaded"),
        )
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let error = client(&server)
        .ensure_container("c")
        .await
        .expect_err("503");
    match &error {
        OrbitError::Http {
            status,
            body_excerpt,
            request_id,
            ..
        } => {
            assert_eq!(*status, 503);
            assert_eq!(body_excerpt, "Service Unavailable: proxy overloaded");
            assert_eq!(request_id.as_deref(), Some("tx-503"));
        }
        other => panic!("expected Http, got {other:?}"),
    }
    assert!(error.is_retryable());
}

#[tokio::test]
async fn head_account_reads_metadata() {
    let server = MockServer::start().await;
    Mock::given(method("HEAD"))
        .and(path(format!("{ACCOUNT_PATH}/")))
        .and(header("x-auth-token", TOKEN))
        .respond_with(
            ResponseTemplate::new(204)
                .insert_header("x-account-meta-temp-url-key", "existing-key-123")
                .insert_header("x-account-bytes-used", "4096")
                .insert_header("x-account-container-count", "2")
                .insert_header("x-account-object-count", "7"),
        )
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let info = client(&server).head_account().await.expect("account read");
    let key = info.temp_url_key.as_ref().expect("key present");
    assert_eq!(key.expose_secret(), "existing-key-123");
    assert!(info.temp_url_key_2.is_none());
    assert_eq!(info.bytes_used, Some(4096));
    assert_eq!(info.container_count, Some(2));
    assert_eq!(info.object_count, Some(7));
    assert!(!format!("{info:?}").contains("existing-key-123"));
}

#[tokio::test]
async fn ensure_temp_url_key_keeps_existing_key() {
    let server = MockServer::start().await;
    Mock::given(method("HEAD"))
        .and(path(format!("{ACCOUNT_PATH}/")))
        .respond_with(
            ResponseTemplate::new(204).insert_header("x-account-meta-temp-url-key", "keep-me"),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .expect(0)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let key = client(&server)
        .ensure_temp_url_key()
        .await
        .expect("existing key returned");
    assert_eq!(key.expose_secret(), "keep-me");
    assert_all_authenticated(&server).await;
}

/// A tiny account store: `POST` saves the temp URL key header and `HEAD` returns it.
#[derive(Clone, Default)]
struct AccountStore {
    key: Arc<Mutex<Option<String>>>,
}

impl Respond for AccountStore {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut key = self.key.lock().expect("lock");
        if request.method.as_str() == "POST" {
            *key = request
                .headers
                .get("x-account-meta-temp-url-key")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            return ResponseTemplate::new(204);
        }
        let mut response = ResponseTemplate::new(204);
        if let Some(key) = key.as_deref() {
            response = response.insert_header("x-account-meta-temp-url-key", key);
        }
        response
    }
}

#[tokio::test]
async fn ensure_temp_url_key_sets_key_when_absent() {
    let server = MockServer::start().await;
    let store = AccountStore::default();
    Mock::given(path(format!("{ACCOUNT_PATH}/")))
        .and(header("x-auth-token", TOKEN))
        .respond_with(store.clone())
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let key = client(&server)
        .ensure_temp_url_key()
        .await
        .expect("key created");
    let stored = store
        .key
        .lock()
        .expect("lock")
        .clone()
        .expect("key was posted");
    assert_eq!(key.expose_secret(), stored);
    assert_eq!(stored.len(), 64, "32 random bytes in hex");
    assert!(stored.chars().all(|c| c.is_ascii_hexdigit()));

    let requests = server.received_requests().await.expect("recording enabled");
    let methods: Vec<&str> = requests.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(methods, ["HEAD", "POST", "HEAD"]);
    assert_all_authenticated(&server).await;
}

#[tokio::test]
async fn ensure_temp_url_key_uses_second_key() {
    let server = MockServer::start().await;
    Mock::given(method("HEAD"))
        .and(path(format!("{ACCOUNT_PATH}/")))
        .respond_with(
            ResponseTemplate::new(204).insert_header("x-account-meta-temp-url-key-2", "second"),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .expect(0)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let key = client(&server).ensure_temp_url_key().await.expect("key");
    assert_eq!(key.expose_secret(), "second");
}

#[tokio::test]
async fn delete_object_plain_and_manifest() {
    let server = MockServer::start().await;
    let plain = format!("{ACCOUNT_PATH}/c/plain.img");
    let slo = format!("{ACCOUNT_PATH}/c/large.img");
    Mock::given(method("HEAD"))
        .and(path(plain.as_str()))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(plain.as_str()))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("HEAD"))
        .and(path(slo.as_str()))
        .respond_with(ResponseTemplate::new(200).insert_header("x-static-large-object", "True"))
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(slo.as_str()))
        .and(query_param("multipart-manifest", "delete"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let client = client(&server);
    client
        .delete_object("c", "plain.img")
        .await
        .expect("plain delete");
    client
        .delete_object("c", "large.img")
        .await
        .expect("manifest delete");

    let requests = server.received_requests().await.expect("recording enabled");
    let plain_delete = requests
        .iter()
        .find(|r| r.method.as_str() == "DELETE" && r.url.path() == plain)
        .expect("plain DELETE sent");
    assert_eq!(plain_delete.url.query(), None);
    assert_all_authenticated(&server).await;
}

#[tokio::test]
async fn delete_missing_object_is_not_found() {
    let server = MockServer::start().await;
    Mock::given(method("HEAD"))
        .and(path(format!("{ACCOUNT_PATH}/c/gone")))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let error = client(&server)
        .delete_object("c", "gone")
        .await
        .expect_err("missing object");
    match error {
        OrbitError::NotFound { container, object } => {
            assert_eq!(container, "c");
            assert_eq!(object.as_deref(), Some("gone"));
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
}

/// Returns `stale` first and `fresh` after a refresh, counting refreshes.
struct RotatingTokens {
    refreshed: AtomicUsize,
}

#[async_trait::async_trait]
impl TokenProvider for RotatingTokens {
    async fn token(&self) -> Result<SecretString, BoxError> {
        let name = if self.refreshed.load(Ordering::SeqCst) == 0 {
            "stale"
        } else {
            "fresh"
        };
        Ok(SecretString::from(name))
    }

    async fn refresh(&self) -> Result<SecretString, BoxError> {
        self.refreshed.fetch_add(1, Ordering::SeqCst);
        self.token().await
    }
}

#[tokio::test]
async fn token_refreshed_once_after_401() {
    let server = MockServer::start().await;
    Mock::given(method("HEAD"))
        .and(header("x-auth-token", "stale"))
        .respond_with(ResponseTemplate::new(401))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("HEAD"))
        .and(path(format!("{ACCOUNT_PATH}/")))
        .and(header("x-auth-token", "fresh"))
        .respond_with(ResponseTemplate::new(204).insert_header("x-account-object-count", "1"))
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let provider = Arc::new(RotatingTokens {
        refreshed: AtomicUsize::new(0),
    });
    let client = OrbitClient::builder()
        .storage_url(
            format!("{}{ACCOUNT_PATH}", server.uri())
                .parse()
                .expect("url"),
        )
        .token_provider(provider.clone())
        .build()
        .expect("client");
    let info = client.head_account().await.expect("succeeds after refresh");
    assert_eq!(info.object_count, Some(1));
    assert_eq!(provider.refreshed.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn repeated_401_is_unauthorized() {
    let server = MockServer::start().await;
    Mock::given(method("HEAD"))
        .respond_with(ResponseTemplate::new(401).insert_header("x-trans-id", "tx-401"))
        .expect(2)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let error = client(&server).head_account().await.expect_err("401");
    match &error {
        OrbitError::Unauthorized { request_id, .. } => {
            assert_eq!(request_id.as_deref(), Some("tx-401"));
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    assert!(!error.to_string().contains(TOKEN));
}

#[test]
fn builder_requires_url_and_token() {
    let missing_url = OrbitClient::builder()
        .token(SecretString::from("t"))
        .build()
        .expect_err("no URL");
    assert!(matches!(
        missing_url,
        OrbitError::InvalidConfig {
            field: "storage_url",
            ..
        }
    ));

    let missing_token = OrbitClient::builder()
        .storage_url("https://orbit.example.test/v1/acc-1/".parse().expect("url"))
        .build()
        .expect_err("no token");
    assert!(matches!(
        missing_token,
        OrbitError::InvalidConfig { field: "token", .. }
    ));

    let ftp = OrbitClient::builder()
        .storage_url("ftp://orbit.example.test/v1/acc-1/".parse().expect("url"))
        .token(SecretString::from("t"))
        .build()
        .expect_err("ftp scheme");
    assert!(ftp.to_string().contains("\"ftp\""), "{ftp}");
}

#[test]
fn debug_output_hides_token() {
    let client = OrbitClient::builder()
        .storage_url("https://orbit.example.test/v1/acc-1".parse().expect("url"))
        .token(SecretString::from("super-secret-token-value"))
        .build()
        .expect("client");
    let shown = format!("{client:?}");
    assert!(!shown.contains("super-secret-token-value"), "{shown}");
    assert!(
        shown.contains("https://orbit.example.test/v1/acc-1/"),
        "{shown}"
    );

    let builder = OrbitClient::builder().token(SecretString::from("super-secret-token-value"));
    assert!(!format!("{builder:?}").contains("super-secret-token-value"));
}

#[tokio::test]
async fn head_object_reads_metadata() {
    let server = MockServer::start().await;
    Mock::given(method("HEAD"))
        .and(path(format!("{ACCOUNT_PATH}/image-uploads/disk.img")))
        .and(header("x-auth-token", TOKEN))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-length", "314572800")
                .insert_header("etag", "\"0A1B2C3D4E5F60718293A4B5C6D7E8F9\"")
                .insert_header("content-type", "application/octet-stream")
                .insert_header("x-static-large-object", "True"),
        )
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let info = client(&server)
        .head_object("image-uploads", "disk.img")
        .await
        .expect("metadata");
    assert_eq!(info.size, Some(314_572_800));
    assert_eq!(
        info.etag.as_deref(),
        Some("0a1b2c3d4e5f60718293a4b5c6d7e8f9")
    );
    assert!(info.is_static_large_object);
    assert_eq!(
        info.content_type.as_deref(),
        Some("application/octet-stream")
    );
}
