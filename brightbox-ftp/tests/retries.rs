//! Upload and download retries: the control connection is cut while data flows, and the client
//! reconnects and resumes, or confirms a complete upload by its size.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use brightbox_ftp::{DownloadOptions, FtpsClient, ProgressSink, UploadOptions};
use common::{TestServer, local_names, random_file, sha256_file};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// Forwards TCP connections to `upstream`. The first connection is closed when `cut` is
/// notified; later ones pass untouched.
async fn start_cutting_proxy(
    upstream: SocketAddr,
    cut: Arc<Notify>,
) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let address = listener.local_addr().expect("proxy address");
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let number = counter.fetch_add(1, Ordering::SeqCst);
            let cut = Arc::clone(&cut);
            tokio::spawn(async move {
                let Ok(mut server) = TcpStream::connect(upstream).await else {
                    return;
                };
                if number == 0 {
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        () = cut.notified() => {}
                    }
                } else {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    (address, accepted)
}

#[tokio::test]
async fn upload_retries_after_control_loss() {
    let server = TestServer::start().await;
    let cut = Arc::new(Notify::new());
    let (proxy, accepted) = start_cutting_proxy(server.address, Arc::clone(&cut)).await;
    let config = server.config().port(proxy.port());
    let local_dir = tempfile::tempdir().expect("local dir");
    let (local, local_sha) = random_file(local_dir.path(), "disk.img", 4 * 1024 * 1024);

    // The first report comes when the data connection is open: cut the control connection
    // then, so the first attempt cannot read its final reply.
    let trigger = Arc::clone(&cut);
    let sink = ProgressSink::callback(move |_| trigger.notify_one());
    let mut client = FtpsClient::connect(&config).await.expect("connect");
    let upload = client
        .upload_file_with(
            &local,
            "incoming",
            "disk.img",
            &UploadOptions::default().retries(3).progress(sink),
        )
        .await
        .expect("upload succeeds after a retry");

    assert!(
        accepted.load(Ordering::SeqCst) >= 2,
        "the client reconnected"
    );
    assert_eq!(upload.sha256, local_sha);
    assert_eq!(upload.bytes, 4 * 1024 * 1024);
    assert_eq!(sha256_file(&server.path("incoming/disk.img")), local_sha);
    assert_eq!(local_names(&server.path("incoming")), vec!["disk.img"]);
}

#[tokio::test]
async fn upload_without_retries_confirmed_by_size() {
    let server = TestServer::start().await;
    let cut = Arc::new(Notify::new());
    let (proxy, accepted) = start_cutting_proxy(server.address, Arc::clone(&cut)).await;
    let config = server.config().port(proxy.port());
    let local_dir = tempfile::tempdir().expect("local dir");
    let (local, local_sha) = random_file(local_dir.path(), "disk.img", 4 * 1024 * 1024);

    let trigger = Arc::clone(&cut);
    let sink = ProgressSink::callback(move |_| trigger.notify_one());
    let mut client = FtpsClient::connect(&config).await.expect("connect");
    // libunftp keeps receiving the data connection after the control connection is cut, so
    // without any retry the client confirms the upload by the size on a new session.
    let upload = client
        .upload_file_with(
            &local,
            "incoming",
            "disk.img",
            &UploadOptions::default().progress(sink),
        )
        .await
        .expect("the stored size confirms the upload");

    assert_eq!(
        accepted.load(Ordering::SeqCst),
        2,
        "one reconnect for the size check"
    );
    assert_eq!(upload.sha256, local_sha);
    assert_eq!(upload.resumed_from, 0);
    assert_eq!(sha256_file(&server.path("incoming/disk.img")), local_sha);
    assert_eq!(local_names(&server.path("incoming")), vec!["disk.img"]);
}

#[tokio::test]
async fn download_retries_after_control_loss() {
    let server = TestServer::start().await;
    let cut = Arc::new(Notify::new());
    let (proxy, accepted) = start_cutting_proxy(server.address, Arc::clone(&cut)).await;
    let config = server.config().port(proxy.port());
    let remote_dir = tempfile::tempdir().expect("seed dir");
    let (seed, seed_sha) = random_file(remote_dir.path(), "disk.img", 4 * 1024 * 1024);
    std::fs::copy(&seed, server.path("incoming/disk.img")).expect("seed remote file");
    let local_dir = tempfile::tempdir().expect("local dir");
    let local = local_dir.path().join("disk.img");

    // The first report comes after the first 1 MiB arrived: cut the control connection then.
    let trigger = Arc::clone(&cut);
    let sink = ProgressSink::callback(move |_| trigger.notify_one());
    let mut client = FtpsClient::connect(&config).await.expect("connect");
    let download = client
        .download_file(
            "incoming/disk.img",
            &local,
            &DownloadOptions::default().retries(3).progress(sink),
        )
        .await
        .expect("download succeeds after a retry");

    assert!(
        accepted.load(Ordering::SeqCst) >= 2,
        "the client reconnected"
    );
    assert_eq!(download.sha256, seed_sha);
    assert_eq!(download.bytes, 4 * 1024 * 1024);
    assert_eq!(sha256_file(&local), seed_sha);
    assert_eq!(local_names(local_dir.path()), vec!["disk.img"]);
}
