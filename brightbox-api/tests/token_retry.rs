//! Token requests whose connection drops before the reply: they are repeated, because asking for a token again
//! creates nothing twice, unless the request carried a two-factor code.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use brightbox_api::{Client, Error, RetryConfig};
use common::*;
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Starts a TCP front on 127.0.0.1 that reads the first `drops` connections' requests and closes them without a
/// reply, then forwards every later connection to `backend`. Returns the front's URL and its connection counter.
async fn dropping_front(backend: &MockServer, drops: usize) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the front");
    let address = listener.local_addr().expect("front address");
    let backend_address = *backend.address();
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&connections);
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let number = counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                if number < drops {
                    let mut buffer = [0u8; 4096];
                    let _ = inbound.read(&mut buffer).await;
                    drop(inbound);
                    return;
                }
                if let Ok(mut outbound) = TcpStream::connect(backend_address).await {
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
