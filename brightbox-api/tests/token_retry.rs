//! Requests whose connection drops before the reply. Token requests are repeated, because asking for a token again
//! creates nothing twice, unless the request carried a two-factor code. GET requests are repeated too.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use brightbox_api::{Client, Error, RetryConfig};
use common::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Starts a TCP front on 127.0.0.1 that closes the first `drops` connections without a reply, then forwards every
/// later connection to `backend`. Returns the front's URL and its connection counter.
async fn dropping_front(backend: &MockServer, drops: usize) -> (String, Arc<AtomicUsize>) {
    dropping_front_for(backend, drops, b"").await
}

/// Like [`dropping_front`], but only connections whose first bytes start with `prefix` count towards `drops` and
/// are closed. The front reads each connection's first bytes and passes them on when it forwards.
async fn dropping_front_for(
    backend: &MockServer,
    drops: usize,
    prefix: &'static [u8],
) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the front");
    let address = listener.local_addr().expect("front address");
    let backend_address = *backend.address();
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&connections);
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 65536];
                let Ok(read) = inbound.read(&mut buffer).await else {
                    return;
                };
                let first = &buffer[..read];
                if first.starts_with(prefix) && counter.fetch_add(1, Ordering::SeqCst) < drops {
                    return;
                }
                if let Ok(mut outbound) = TcpStream::connect(backend_address).await {
                    if outbound.write_all(first).await.is_err() {
                        return;
                    }
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    (format!("http://{address}/"), connections)
}

fn front_client(base_url: &str) -> Client {
    Client::builder()
        .base_url(base_url)
        .client_credentials(CLIENT_ID, CLIENT_SECRET)
        .pool_idle_timeout(None)
        .retry(
            RetryConfig::default()
                .initial_backoff(Duration::from_millis(10))
                .max_backoff(Duration::from_millis(50)),
        )
        .build()
        .expect("test client builds")
}

#[tokio::test]
async fn token_request_retried_after_dropped_connection() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("GET"))
        .and(path("/1.0/images"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([fixture(IMAGE_JSON)])))
        .mount(&server)
        .await;
    mount_catch_all(&server).await;
    let (base_url, connections) = dropping_front(&server, 1).await;

    let images = front_client(&base_url).images().list().await;

    let images = images.expect("the token request is repeated and the listing succeeds");
    assert_eq!(images.len(), 1);
    assert_eq!(count_requests(&server, "POST", "/token").await, 1);
    assert!(connections.load(Ordering::SeqCst) >= 2);
}

#[tokio::test]
async fn token_request_gives_up_after_attempts() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    mount_catch_all(&server).await;
    let (base_url, _) = dropping_front(&server, usize::MAX).await;

    let error = front_client(&base_url)
        .images()
        .list()
        .await
        .expect_err("every connection drops");

    let Error::Transport { attempts, .. } = &error else {
        panic!("expected a transport error, got {error:?}");
    };
    assert_eq!(*attempts, RetryConfig::default().max_attempts);
    assert_eq!(count_requests(&server, "POST", "/token").await, 0);
}

#[tokio::test]
async fn get_retried_after_dropped_connection() {
    let server = MockServer::start().await;
    // The token reply closes its connection, so the GET opens a new one that the front can drop.
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(token_response(TOKEN, 7200).insert_header("connection", "close"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/1.0/images"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([fixture(IMAGE_JSON)])))
        .mount(&server)
        .await;
    mount_catch_all(&server).await;
    let (base_url, dropped) = dropping_front_for(&server, 2, b"GET ").await;

    let images = front_client(&base_url).images().list().await;

    let images = images.expect("the GET is repeated and the listing succeeds");
    assert_eq!(images.len(), 1);
    assert_eq!(count_requests(&server, "GET", "/1.0/images").await, 1);
    assert!(dropped.load(Ordering::SeqCst) >= 3);
}
