//! Input checks: host strings, remote names and time limits.

mod common;

use std::time::{Duration, Instant};

use brightbox_ftp::{FtpError, FtpsClient, FtpsConfig, validate_remote_name};
use common::{TestServer, local_names};

#[test]
fn host_port_parsing_table() {
    let accepted = [
        (
            "ftp.library.gb1.brightbox.com",
            "ftp.library.gb1.brightbox.com",
            21,
        ),
        ("name", "name", 21),
        ("name:2121", "name", 2121),
        ("127.0.0.1", "127.0.0.1", 21),
        ("127.0.0.1:2121", "127.0.0.1", 2121),
        ("[::1]:2121", "::1", 2121),
        ("[::1]", "::1", 21),
        ("::1", "::1", 21),
        ("2001:db8::7", "2001:db8::7", 21),
        ("  example.com:990  ", "example.com", 990),
        ("example.com.", "example.com.", 21),
        ("under_score.example:65535", "under_score.example", 65535),
    ];
    for (input, host, port) in accepted {
        let config = FtpsConfig::from_host_port(input, "u", "p")
            .unwrap_or_else(|error| panic!("{input:?} must parse: {error}"));
        assert_eq!(config.host(), host, "host of {input:?}");
        assert_eq!(config.port_number(), port, "port of {input:?}");
    }

    let rejected = [
        ("", "empty"),
        ("   ", "empty"),
        (":2121", "empty"),
        ("name:", "port"),
        ("name:0", "port"),
        ("name:65536", "port"),
        ("name:ftp", "port"),
        ("[::1", "closing"),
        ("[::1]x", "after"),
        ("[nothost]:21", "IPv6"),
        ("::1:2121:x", "brackets"),
        ("ftp://example.com", "scheme"),
        ("exa mple.com", "' '"),
        ("a..b", "empty label"),
    ];
    for (input, fragment) in rejected {
        let error = FtpsConfig::from_host_port(input, "u", "p")
            .expect_err(&format!("{input:?} must be rejected"));
        let FtpError::InvalidHost { value, reason } = &error else {
            panic!("{input:?}: expected InvalidHost, got {error:?}");
        };
        assert_eq!(value, input);
        assert!(
            reason.contains(fragment),
            "{input:?}: reason {reason:?} lacks {fragment:?}"
        );
        assert!(error.to_string().contains(&format!("{input:?}")), "{error}");
    }
}

#[test]
fn new_strips_ipv6_brackets() {
    let config = FtpsConfig::new("[::1]", "u", "p").port(2121);

    assert_eq!(config.host(), "::1");
    assert_eq!(config.port_number(), 2121);
}

#[test]
fn remote_name_table() {
    let accepted = [
        "disk.img",
        "debian-12-amd64.img",
        "a_b+c~d^e.raw",
        "IMG.QCOW2",
        ".hidden",
    ];
    for name in accepted {
        assert!(
            validate_remote_name(name).is_ok(),
            "{name:?} must be accepted"
        );
    }

    let rejected = [
        ("", "empty"),
        ("incoming/disk.img", "`/`"),
        ("..", "`..`"),
        ("a..b", "`..`"),
        (".", "`.`"),
        ("disk\r\nDELE x", "control character"),
        ("disk\0.img", "control character"),
        ("disk image.img", "' '"),
        ("disk*.img", "'*'"),
        ("dïsk.img", "'ï'"),
    ];
    for (name, fragment) in rejected {
        let error = validate_remote_name(name).expect_err(&format!("{name:?} must be rejected"));
        let FtpError::InvalidRemoteName {
            name: reported,
            reason,
        } = &error
        else {
            panic!("{name:?}: expected InvalidRemoteName, got {error:?}");
        };
        assert_eq!(reported, name);
        assert!(reason.contains(fragment), "{name:?}: {reason}");
        assert!(
            reason.contains("-_+.~^"),
            "{name:?}: the fix is named: {reason}"
        );
    }
}

#[tokio::test]
async fn bad_names_fail_before_io() {
    let server = TestServer::start().await;
    let mut client = FtpsClient::connect(&server.config())
        .await
        .expect("connect");
    // The local file does not exist: an Io error would show the name was checked too late.
    let missing = std::path::Path::new("/nonexistent/disk.img");

    for name in ["", "../escape.img", "sub/dir.img", "line\nbreak"] {
        let error = client
            .upload_file(missing, "incoming", name, None)
            .await
            .expect_err("invalid name");
        assert!(
            matches!(error, FtpError::InvalidRemoteName { .. }),
            "{name:?}: {error:?}"
        );
        assert!(!error.is_retryable());
    }
    let error = client
        .upload_file(missing, "incoming\r\nDELE x", "ok.img", None)
        .await
        .expect_err("invalid directory");
    assert!(
        matches!(error, FtpError::InvalidRemotePath { .. }),
        "{error:?}"
    );

    assert!(local_names(&server.path("incoming")).is_empty());
    assert!(
        client
            .list_names("incoming")
            .await
            .expect("list")
            .is_empty()
    );
}

#[tokio::test]
async fn refused_port_is_connect_error() {
    // Bind and drop a listener so the port is very likely closed.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let config = FtpsConfig::new("127.0.0.1", "u", "p").port(port);

    let error = FtpsClient::connect(&config)
        .await
        .expect_err("nothing listens");

    match &error {
        FtpError::Connect { host, port: p, .. } => {
            assert_eq!(host, "127.0.0.1");
            assert_eq!(*p, port);
        }
        other => panic!("expected Connect, got {other:?}"),
    }
    assert!(error.is_retryable());
    assert!(
        error.to_string().contains(&format!("127.0.0.1:{port}")),
        "{error}"
    );
}

#[tokio::test]
async fn silent_server_times_out() {
    // A TCP server that accepts but never sends the FTP greeting.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let config = FtpsConfig::new("127.0.0.1", "u", "p")
        .port(port)
        .io_timeout(Duration::from_millis(300));

    let started = Instant::now();
    let error = FtpsClient::connect(&config).await.expect_err("no greeting");
    let elapsed = started.elapsed();
    holder.abort();

    match &error {
        FtpError::Timeout { what, after } => {
            assert!(what.contains("greeting"), "{what}");
            assert_eq!(*after, Duration::from_millis(300));
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert!(error.is_retryable());
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
}
