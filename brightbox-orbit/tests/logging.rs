//! Log output at TRACE level never contains the token or the temp URL key.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::{ACCOUNT_PATH, TOKEN, client, mount_catch_all};
use secrecy::ExposeSecret;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A `MakeWriter` that appends every log line to a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn trace_logs_exclude_secrets() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = MockServer::start().await;
    Mock::given(method("HEAD"))
        .and(path(format!("{ACCOUNT_PATH}/")))
        .respond_with(ResponseTemplate::new(204))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{ACCOUNT_PATH}/")))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    Mock::given(method("HEAD"))
        .and(path(format!("{ACCOUNT_PATH}/")))
        .respond_with(
            ResponseTemplate::new(204)
                .insert_header("x-account-meta-temp-url-key", "stored-temp-url-key-9d1e"),
        )
        .mount(&server)
        .await;
    Mock::given(method("HEAD"))
        .and(path(format!("{ACCOUNT_PATH}/private")))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let client = client(&server);
    let key = client.ensure_temp_url_key().await.expect("key");
    assert_eq!(key.expose_secret(), "stored-temp-url-key-9d1e");
    let error = client
        .ensure_container("private")
        .await
        .expect_err("401 twice");
    tracing::error!(error = ?error, "logged by the caller");

    let requests = server.received_requests().await.expect("recording enabled");
    let posted_key = requests
        .iter()
        .find(|r| r.method.as_str() == "POST")
        .and_then(|r| r.headers.get("x-account-meta-temp-url-key"))
        .and_then(|v| v.to_str().ok())
        .expect("POST carried a key")
        .to_owned();

    let logs = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("UTF-8 logs");
    assert!(
        logs.contains("set a new account temp URL key"),
        "events were captured"
    );
    assert!(!logs.contains(TOKEN), "token in logs");
    assert!(!logs.contains(&posted_key), "new temp URL key in logs");
    assert!(
        !logs.contains("stored-temp-url-key-9d1e"),
        "stored temp URL key in logs"
    );
}
