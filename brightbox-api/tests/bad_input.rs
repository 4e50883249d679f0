//! Bad input for every public entry point: ids, URLs, credentials, request bodies, config files, token and API
//! responses, and extreme durations. Each case expects a typed error that names the value and the fix, and no
//! request on a mutating route.

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use brightbox_api::{
    AccountId, Arch, CliConfig, Client, ClientBuilder, CreateServer, Error, ImageId, ImageSource,
    ImageStatus, RegisterImage, ServerId, UpdateImage, WaitOptions, ZoneId,
};
use common::{
    CLIENT_ID, IMAGE_JSON, TOKEN, ZONES_JSON, builder, client, count_requests, error_chain,
    fixture, image_with, mount_catch_all, mount_token, token_response,
};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET_IN_URL: &str = "hunter2-url-password";
const SECRET: &str = "hunter2-client-secret";

/// Returns `prefix` followed by `len` letters `a`.
fn long(prefix: &str, len: usize) -> String {
    format!("{prefix}{}", "a".repeat(len))
}

/// Parses `value` as several id kinds and checks the typed error for each.
#[test]
fn id_parsing_table() {
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "wrong prefix"),
        ("img-".to_owned(), "nothing after the prefix"),
        ("srv-abc12".to_owned(), "wrong prefix"),
        ("IMG-abc12".to_owned(), "wrong prefix"),
        (" img-abc12".to_owned(), "wrong prefix"),
        ("img-ABC12".to_owned(), "a-z or 0-9"),
        ("img-äbc12".to_owned(), "a-z or 0-9"),
        ("img-a/b".to_owned(), "a-z or 0-9"),
        ("img-a\\b".to_owned(), "a-z or 0-9"),
        ("img-..".to_owned(), "a-z or 0-9"),
        ("img-a\0b".to_owned(), "a-z or 0-9"),
        ("img-a\nb".to_owned(), "a-z or 0-9"),
        (long("img-", 300), "too long"),
    ];
    for (value, problem) in &cases {
        let error = value
            .parse::<ImageId>()
            .expect_err(&format!("{value:?} is not an image id"));
        assert_eq!(error.value(), value);
        assert_eq!(error.expected_prefix(), "img");
        let text = error.to_string();
        assert!(text.contains(problem), "{value:?}: {text}");
        assert!(text.contains(&format!("{value:?}")), "value named: {text}");
        assert!(text.contains("e.g. \"img-"), "example named: {text}");
    }

    // The same rules apply to every id kind, each with its own prefix in the message.
    for value in ["", "acc-", "ACC-x", "acc-a b", "acc-\u{1F600}"] {
        let error = value.parse::<AccountId>().expect_err(value);
        assert_eq!(error.expected_prefix(), "acc", "{value:?}");
        assert!(error.to_string().contains("\"acc-\""), "{error}");
    }
    assert_eq!(
        "img-abc12"
            .parse::<ServerId>()
            .expect_err("image id is no server id")
            .expected_prefix(),
        "srv"
    );
    assert_eq!(
        "gb1-a"
            .parse::<ZoneId>()
            .expect_err("a handle is no zone id")
            .expected_prefix(),
        "zon"
    );
}

#[test]
fn arch_parsing_table() {
    for value in ["", "arm64", "X86_64", "x86-64", "x86_64\0", "i686 "] {
        let error = value
            .parse::<Arch>()
            .expect_err(&format!("{value:?} is no arch"));
        assert_eq!(error.value(), value);
        let text = error.to_string();
        assert!(text.contains(&format!("{value:?}")), "{text}");
        assert!(text.contains("x86_64, i686"), "fix named: {text}");
    }
}

#[test]
fn base_url_table() {
    let cases = [
        ("", "not an absolute URL"),
        ("   ", "not an absolute URL"),
        ("api.gb1.brightbox.com", "not an absolute URL"),
        ("ftp://api.example.com/", "http or https"),
        ("file:///etc/passwd", "http or https"),
        ("http://exa mple.com/", "not an absolute URL"),
        ("http:///", "not an absolute URL"),
        ("https://api.example.com/?account_id=acc-12345", "query"),
        ("https://api.example.com/#top", "query and fragment"),
    ];
    for (value, reason_part) in cases {
        for as_auth_url in [false, true] {
            let base = Client::builder().client_credentials(CLIENT_ID, SECRET);
            let base = if as_auth_url {
                base.base_url("https://api.example.com/").auth_url(value)
            } else {
                base.base_url(value)
            };
            let error = base.build().expect_err(&format!("{value:?} is rejected"));
            let Error::InvalidBaseUrl {
                value: shown,
                reason,
                ..
            } = &error
            else {
                panic!("{value:?}: expected InvalidBaseUrl, got {error:?}");
            };
            assert_eq!(shown, value);
            assert!(reason.contains(reason_part), "{value:?}: {reason}");
            assert!(error.to_string().contains(&format!("{value:?}")), "{error}");
        }
    }
}

#[test]
fn base_url_with_password_is_redacted() {
    for value in [
        format!("https://user:{SECRET_IN_URL}@api.example.com/"),
        format!("https://:{SECRET_IN_URL}@api.example.com/"),
    ] {
        let error = Client::builder()
            .client_credentials(CLIENT_ID, SECRET)
            .base_url(&value)
            .build()
            .expect_err("userinfo is rejected");
        assert!(matches!(error, Error::InvalidBaseUrl { .. }), "{error:?}");
        let text = format!("{} {error:?}", error_chain(&error));
        assert!(!text.contains(SECRET_IN_URL), "{text}");
        assert!(text.contains("***@api.example.com"), "{text}");
        assert!(text.contains("client_credentials()"), "fix named: {text}");
    }
}

#[test]
fn credentials_table() {
    let cases: Vec<(ClientBuilder, &str)> = vec![
        (Client::builder(), "client_id"),
        (
            Client::builder().client_credentials("", SECRET),
            "client_id",
        ),
        (
            Client::builder().client_credentials("   ", SECRET),
            "client_id",
        ),
        (
            Client::builder().client_credentials(CLIENT_ID, ""),
            "client_secret",
        ),
        (
            Client::builder().password_credentials("", SECRET),
            "username",
        ),
        (
            Client::builder().password_credentials("user@example.com", ""),
            "password",
        ),
        (
            Client::builder()
                .password_credentials("user@example.com", SECRET)
                .application("app-abc12", ""),
            "application secret",
        ),
    ];
    for (builder, missing) in cases {
        let error = builder.build().expect_err("incomplete credentials");
        let Error::MissingCredentials { missing: reported } = &error else {
            panic!("{missing}: expected MissingCredentials, got {error:?}");
        };
        assert_eq!(*reported, missing);
        let text = error.to_string();
        assert!(text.contains("client_credentials"), "fix named: {text}");
        assert!(!format!("{text} {error:?}").contains(SECRET), "{text}");
    }

    let bad_ids = [
        "app-abc12".to_owned(),
        "CLI-ABC12".to_owned(),
        "cli-abc12\0".to_owned(),
        "cli-abc/12".to_owned(),
        "cli-ab\\c".to_owned(),
        long("cli-", 300),
    ];
    for id in bad_ids {
        let error = Client::builder()
            .client_credentials(id.clone(), SECRET)
            .build()
            .expect_err("malformed client id");
        let Error::InvalidId(parse) = &error else {
            panic!("{id:?}: expected InvalidId, got {error:?}");
        };
        assert_eq!(parse.value(), id);
        assert_eq!(parse.expected_prefix(), "cli");
        assert!(!format!("{error} {error:?}").contains(SECRET));
    }

    let error = Client::builder()
        .password_credentials("user@example.com", SECRET)
        .application("cli-abc12", SECRET)
        .build()
        .expect_err("application id must be app-");
    assert!(
        matches!(&error, Error::InvalidId(parse) if parse.expected_prefix() == "app"),
        "{error:?}"
    );
}

/// Mounts the token endpoint and a `POST /1.0/images` that must never be called, then the catch-all.
async fn mount_register_guard(server: &MockServer) {
    mount_token(server).await;
    Mock::given(method("POST"))
        .and(path("/1.0/images"))
        .respond_with(ResponseTemplate::new(201).set_body_json(image_with("img-3ikco", "creating")))
        .expect(0)
        .named("register must not be sent")
        .mount(server)
        .await;
    mount_catch_all(server).await;
}

#[tokio::test]
async fn register_rejects_before_sending() {
    let server = MockServer::start().await;
    mount_register_guard(&server).await;
    let client = client(&server);
    let ftp = |name: &str| ImageSource::FtpUpload(name.to_owned());
    let http = |url: &str| ImageSource::HttpUrl(url.parse().expect("test URL parses"));
    let long_name = "a".repeat(300);

    let cases: Vec<(RegisterImage, &str, &str, &str)> = vec![
        // (request, field, value shown, part of the reason)
        (
            RegisterImage::new("", Arch::X86_64, ftp("disk.img")),
            "name",
            "\"\"",
            "give a display name",
        ),
        (
            RegisterImage::new("  \t ", Arch::X86_64, ftp("disk.img")),
            "name",
            "\"  \\t \"",
            "give a display name",
        ),
        (
            RegisterImage::new("deb\0ian", Arch::X86_64, ftp("disk.img")),
            "name",
            "\"deb\\0ian\"",
            "control character",
        ),
        (
            RegisterImage::new("deb\r\nian", Arch::X86_64, ftp("disk.img")),
            "name",
            "\"deb\\r\\nian\"",
            "control character",
        ),
        (
            RegisterImage::new("debian", Arch::Other("arm64".to_owned()), ftp("disk.img")),
            "arch",
            "\"arm64\"",
            "x86_64 or i686",
        ),
        (
            RegisterImage::new("debian", Arch::X86_64, ftp("")),
            "source",
            "\"\"",
            "incoming/",
        ),
        (
            RegisterImage::new("debian", Arch::X86_64, ftp("incoming/disk.img")),
            "source",
            "\"incoming/disk.img\"",
            "no folder",
        ),
        (
            RegisterImage::new("debian", Arch::X86_64, ftp("..\\disk.img")),
            "source",
            "\"..\\\\disk.img\"",
            "no folder",
        ),
        (
            RegisterImage::new("debian", Arch::X86_64, ftp("..")),
            "source",
            "\"..\"",
            "folder reference",
        ),
        (
            RegisterImage::new("debian", Arch::X86_64, ftp(".")),
            "source",
            "\".\"",
            "folder reference",
        ),
        (
            RegisterImage::new("debian", Arch::X86_64, ftp("disk\0.img")),
            "source",
            "\"disk\\0.img\"",
            "letters, digits",
        ),
        (
            RegisterImage::new("debian", Arch::X86_64, ftp("disk\n.img")),
            "source",
            "\"disk\\n.img\"",
            "letters, digits",
        ),
        (
            RegisterImage::new("debian", Arch::X86_64, ftp("dïsk.img")),
            "source",
            "\"dïsk.img\"",
            "letters, digits",
        ),
        (
            RegisterImage::new("debian", Arch::X86_64, ftp(&long_name)),
            "source",
            "300 bytes",
            "longer than 255 bytes",
        ),
        (
            RegisterImage::new(
                "debian",
                Arch::X86_64,
                http("ftp://files.example.com/disk.img"),
            ),
            "http_url",
            "ftp://files.example.com/disk.img",
            "http or https",
        ),
        (
            RegisterImage::new("debian", Arch::X86_64, http("file:///etc/passwd")),
            "http_url",
            "file:///etc/passwd",
            "http or https",
        ),
        (
            RegisterImage::new(
                "debian",
                Arch::X86_64,
                http(&format!(
                    "https://user:{SECRET_IN_URL}@files.example.com/disk.img"
                )),
            ),
            "http_url",
            "https://***@files.example.com/disk.img",
            "remove the user name and password",
        ),
        (
            RegisterImage::new(
                "debian",
                Arch::X86_64,
                http(&format!(
                    "ftp://user:{SECRET_IN_URL}@files.example.com/disk.img"
                )),
            ),
            "http_url",
            "ftp://***@files.example.com/disk.img",
            "http or https",
        ),
    ];

    for (request, field, shown, reason_part) in cases {
        let error = client
            .images()
            .register(&request)
            .await
            .expect_err(&format!("{request:?} is rejected"));
        let Error::InvalidRequest {
            field: reported,
            reason,
            ..
        } = &error
        else {
            panic!("{request:?}: expected InvalidRequest, got {error:?}");
        };
        assert_eq!(*reported, field, "{error}");
        assert!(reason.contains(reason_part), "{field}: {reason}");
        let text = error.to_string();
        assert!(text.contains(shown), "value {shown} named: {text}");
        assert!(
            !format!("{text} {error:?}").contains(SECRET_IN_URL),
            "{text}"
        );
        assert!(!error.is_retryable());
    }
    assert_eq!(count_requests(&server, "POST", "/token").await, 0);
}

#[tokio::test]
async fn oversized_user_data_is_not_sent() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("POST"))
        .and(path("/1.0/servers"))
        .respond_with(ResponseTemplate::new(202).set_body_json(fixture(common::SERVER_JSON)))
        .expect(0)
        .named("create must not be sent")
        .mount(&server)
        .await;
    mount_catch_all(&server).await;
    let client = client(&server);
    let image: ImageId = "img-3ikco".parse().expect("valid id");

    // 49 153 raw bytes encode to 65 540 base64 bytes, four over the limit.
    let cap = brightbox_api::MAX_USER_DATA_ENCODED_LEN;
    for raw_len in [cap / 4 * 3 + 1, cap, 10 * cap] {
        let request = CreateServer::new(image.clone()).user_data(vec![b'#'; raw_len]);
        let error = client
            .servers()
            .create(&request)
            .await
            .expect_err("user data over the limit");
        let Error::InvalidRequest { field, value, .. } = &error else {
            panic!("{raw_len}: expected InvalidRequest, got {error:?}");
        };
        assert_eq!(*field, "user_data");
        assert!(value.contains(&format!("{raw_len} bytes")), "{value}");
        let text = error.to_string();
        assert!(text.contains("compress it"), "fix named: {text}");
        assert!(text.contains(&cap.to_string()), "limit named: {text}");
    }
}

#[tokio::test]
async fn empty_update_is_not_sent() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("PUT"))
        .and(path("/1.0/images/img-3ikco"))
        .respond_with(ResponseTemplate::new(200).set_body_string(IMAGE_JSON))
        .expect(0)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;
    let id: ImageId = "img-3ikco".parse().expect("valid id");

    let error = client(&server)
        .images()
        .update(&id, &UpdateImage::new())
        .await
        .expect_err("an update that sets nothing");

    assert!(
        matches!(&error, Error::InvalidRequest { field: "body", value, .. } if value == "img-3ikco"),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("call at least one UpdateImage setter")
    );
}

#[tokio::test]
async fn repeated_invalid_token_replays_once() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(token_response(TOKEN, 7200))
        // Two clients below, each with its first token and one renewal after the rejection.
        .expect(4)
        .mount(&server)
        .await;
    let rejected = ResponseTemplate::new(401)
        .insert_header("WWW-Authenticate", "Bearer error=\"invalid_token\"")
        .set_body_json(
            json!({"error": "invalid_token", "error_description": "The access token expired"}),
        );
    Mock::given(method("GET"))
        .and(path("/1.0/images"))
        .respond_with(rejected.clone())
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/1.0/images"))
        .respond_with(rejected)
        .expect(2)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let error = client(&server)
        .images()
        .list()
        .await
        .expect_err("the API keeps rejecting the token");
    let Error::Unauthenticated(api) = &error else {
        panic!("expected Unauthenticated, got {error:?}");
    };
    assert_eq!(api.status, 401);
    let text = error.to_string();
    assert!(text.contains("invalid_token"), "{text}");
    assert!(
        text.contains("check the client id and secret"),
        "fix named: {text}"
    );
    assert!(!format!("{text} {error:?}").contains(TOKEN), "{text}");

    // A rejected POST is replayed once too, and then stops: no loop of registrations.
    let client = client(&server);
    let request = RegisterImage::new(
        "debian",
        Arch::X86_64,
        ImageSource::FtpUpload("disk.img".to_owned()),
    );
    let error = client
        .images()
        .register(&request)
        .await
        .expect_err("rejected");
    assert!(matches!(error, Error::Unauthenticated(_)), "{error:?}");
    assert_eq!(count_requests(&server, "POST", "/1.0/images").await, 2);
}

#[tokio::test]
async fn malformed_token_responses() {
    const LEAKED: &str = "tok-must-not-leak-77";
    let cases: Vec<(ResponseTemplate, &str)> = vec![
        (
            ResponseTemplate::new(200)
                .set_body_json(json!({"token_type": "Bearer", "expires_in": 3600})),
            "access_token",
        ),
        (
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": LEAKED, "expires_in": -5})),
            "expires_in",
        ),
        (
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": LEAKED, "expires_in": "3600"})),
            "expires_in",
        ),
        (
            ResponseTemplate::new(200).set_body_json(json!({"access_token": 12345})),
            "access_token",
        ),
        (
            ResponseTemplate::new(200).set_body_string("<html>maintenance</html>"),
            ".",
        ),
        (ResponseTemplate::new(200), "."),
        (
            ResponseTemplate::new(200)
                .set_body_string(format!("{{\"access_token\": \"{LEAKED}\", \"expires_in\"")),
            "",
        ),
    ];
    for (response, json_path) in cases {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/token"))
            .respond_with(response)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/1.0/images"))
            .respond_with(ResponseTemplate::new(201))
            .expect(0)
            .mount(&server)
            .await;
        mount_catch_all(&server).await;
        let request = RegisterImage::new(
            "debian",
            Arch::X86_64,
            ImageSource::FtpUpload("disk.img".to_owned()),
        );

        let error = client(&server)
            .images()
            .register(&request)
            .await
            .expect_err("the token response is malformed");

        let Error::Decode {
            path: request_path,
            json_path: reported,
            ..
        } = &error
        else {
            panic!("{json_path}: expected Decode, got {error:?}");
        };
        assert_eq!(request_path, "/token");
        if !json_path.is_empty() {
            assert_eq!(reported, json_path);
        }
        let text = error_chain(&error);
        assert!(text.contains("POST /token"), "{text}");
        assert!(!format!("{text} {error:?}").contains(LEAKED), "{text}");
        server.verify().await;
    }
}

#[tokio::test]
async fn token_endpoint_negative_replies() {
    // 401 invalid_client: one token request, a typed error with the OAuth fields, and no API call.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            json!({"error": "invalid_client", "error_description": "Client authentication failed"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let error = client(&server)
        .servers()
        .snapshot(&"srv-abc12".parse().expect("valid id"))
        .await
        .expect_err("credentials rejected");

    let Error::Unauthenticated(api) = &error else {
        panic!("expected Unauthenticated, got {error:?}");
    };
    assert_eq!(api.oauth_error.as_deref(), Some("invalid_client"));
    let text = format!("{error} {error:?}");
    assert!(text.contains("Client authentication failed"), "{text}");
    assert!(!text.contains(common::CLIENT_SECRET), "{text}");
    assert_eq!(count_requests(&server, "POST", "/1.0/images").await, 0);
}

#[tokio::test]
async fn malformed_api_json() {
    let mut missing_id = fixture(IMAGE_JSON);
    missing_id.as_object_mut().expect("object").remove("id");
    let mut bad_id = fixture(IMAGE_JSON);
    bad_id["id"] = json!("IMG-BAD");
    let mut numeric_status = fixture(IMAGE_JSON);
    numeric_status["status"] = json!(42);
    let mut bad_date = fixture(IMAGE_JSON);
    bad_date["created_at"] = json!("yesterday");

    let cases: Vec<(&str, ResponseTemplate, &str)> = vec![
        (
            "/1.0/images/img-3ikco",
            ResponseTemplate::new(200).set_body_json(&missing_id),
            "id",
        ),
        (
            "/1.0/images/img-3ikco",
            ResponseTemplate::new(200).set_body_json(&bad_id),
            "id",
        ),
        (
            "/1.0/images/img-3ikco",
            ResponseTemplate::new(200).set_body_json(&numeric_status),
            "status",
        ),
        (
            "/1.0/images/img-3ikco",
            ResponseTemplate::new(200).set_body_json(&bad_date),
            "created_at",
        ),
        (
            "/1.0/images/img-3ikco",
            ResponseTemplate::new(200).set_body_string("{\"id\": \"img-3ikco\""),
            "",
        ),
        ("/1.0/images/img-3ikco", ResponseTemplate::new(200), "."),
        (
            "/1.0/images/img-3ikco",
            ResponseTemplate::new(200).set_body_json(json!(null)),
            ".",
        ),
        (
            "/1.0/images/img-3ikco",
            ResponseTemplate::new(200).set_body_string("<html>502 Bad Gateway</html>"),
            ".",
        ),
        (
            "/1.0/images",
            ResponseTemplate::new(200).set_body_json(json!([fixture(IMAGE_JSON), missing_id])),
            "[1].id",
        ),
        (
            "/1.0/images",
            ResponseTemplate::new(200).set_body_json(fixture(IMAGE_JSON)),
            ".",
        ),
    ];
    for (url_path, response, json_path) in cases {
        let server = MockServer::start().await;
        mount_token(&server).await;
        Mock::given(method("GET"))
            .and(path(url_path))
            .respond_with(response)
            .mount(&server)
            .await;
        mount_catch_all(&server).await;
        let client = client(&server);
        let id: ImageId = "img-3ikco".parse().expect("valid id");

        let error = if url_path == "/1.0/images" {
            client.images().list().await.map(|_| ())
        } else {
            client.images().get(&id).await.map(|_| ())
        }
        .expect_err("malformed JSON");

        let Error::Decode {
            json_path: reported,
            path: request_path,
            ..
        } = &error
        else {
            panic!("{url_path} {json_path}: expected Decode, got {error:?}");
        };
        assert_eq!(request_path, url_path);
        if !json_path.is_empty() {
            assert_eq!(reported, json_path, "{}", error_chain(&error));
        }
        assert!(
            error.to_string().contains(&format!("GET {url_path}")),
            "{error}"
        );
        assert!(!error.is_retryable());
    }
}

/// Loads `path` on a blocking thread with a deadline, so that a read that blocks fails the test instead of hanging it.
async fn load_with_deadline(path: PathBuf) -> Result<CliConfig, Error> {
    let task = tokio::task::spawn_blocking(move || CliConfig::load(&path));
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("CliConfig::load returns within 10 s")
        .expect("CliConfig::load does not panic")
}

fn expect_config_error(result: Result<CliConfig, Error>, path: &Path, reason_part: &str) {
    let error = result.expect_err(&format!("{} is not a config file", path.display()));
    let Error::Config { origin, reason, .. } = &error else {
        panic!("{}: expected Config, got {error:?}", path.display());
    };
    assert_eq!(origin, &path.display().to_string());
    assert!(reason.contains(reason_part), "{}: {reason}", path.display());
    assert!(
        error.to_string().contains(&path.display().to_string()),
        "{error}"
    );
}

#[tokio::test]
async fn cli_config_bad_paths() {
    let scratch = tempfile::tempdir().expect("temporary folder");
    let dir = scratch.path();

    let missing = dir.join("missing");
    expect_config_error(
        load_with_deadline(missing.clone()).await,
        &missing,
        "check the path",
    );

    expect_config_error(
        load_with_deadline(dir.to_path_buf()).await,
        dir,
        "not a regular file",
    );

    let zero = PathBuf::from("/dev/zero");
    expect_config_error(
        load_with_deadline(zero.clone()).await,
        &zero,
        "not a regular file",
    );

    let fifo = dir.join("fifo");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(status.success(), "mkfifo {}", fifo.display());
    expect_config_error(
        load_with_deadline(fifo.clone()).await,
        &fifo,
        "not a regular file",
    );

    let loop_a = dir.join("loop-a");
    let loop_b = dir.join("loop-b");
    std::os::unix::fs::symlink(&loop_b, &loop_a).expect("symlink a");
    std::os::unix::fs::symlink(&loop_a, &loop_b).expect("symlink b");
    expect_config_error(
        load_with_deadline(loop_a.clone()).await,
        &loop_a,
        "check the path",
    );

    let long_name = dir.join("c".repeat(300));
    expect_config_error(
        load_with_deadline(long_name.clone()).await,
        &long_name,
        "check the path",
    );

    let non_utf8_name = dir.join(OsStr::from_bytes(b"config-\xff\xfe"));
    expect_config_error(
        load_with_deadline(non_utf8_name.clone()).await,
        &non_utf8_name,
        "check the path",
    );

    let non_utf8_text = dir.join("latin1");
    std::fs::write(&non_utf8_text, b"[cli-abc12]\nalias = caf\xe9\n").expect("write");
    let error = load_with_deadline(non_utf8_text.clone())
        .await
        .expect_err("not UTF-8");
    assert!(
        matches!(&error, Error::Config { source: Some(io), .. } if io.kind() == std::io::ErrorKind::InvalidData),
        "{error:?}"
    );

    let huge = dir.join("huge");
    let file = std::fs::File::create(&huge).expect("create");
    file.set_len(8 << 20).expect("sparse 8 MiB file");
    expect_config_error(
        load_with_deadline(huge.clone()).await,
        &huge,
        "at most 1048576 bytes",
    );
}

#[tokio::test]
async fn cli_config_unreadable_file() {
    use std::os::unix::fs::PermissionsExt;

    let scratch = tempfile::tempdir().expect("temporary folder");
    let config = scratch.path().join("config");
    std::fs::write(
        &config,
        "[cli-abc12]\napi_url = https://api.gb1.brightbox.com\nclient_id = cli-abc12\nsecret = s3cr3t\n",
    )
    .expect("write config");
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o000)).expect("chmod 000");

    // Root reads files whatever their mode, so the expectation depends on who runs the test.
    let readable = std::fs::read(&config).is_ok();
    let result = load_with_deadline(config.clone()).await;
    if readable {
        let loaded = result.expect("root reads a mode-000 file");
        assert_eq!(loaded.sections().len(), 1);
    } else {
        let error = result.expect_err("mode 000 blocks reading");
        assert!(
            matches!(&error, Error::Config { source: Some(io), .. } if io.kind() == std::io::ErrorKind::PermissionDenied),
            "{error:?}"
        );
        assert!(!format!("{error} {error:?}").contains("s3cr3t"));
    }
}

#[tokio::test]
async fn cli_config_malformed_lines() {
    let cases = [
        ("[cli-abc12\nclient_id = cli-abc12\n", "line 1", "[name]"),
        ("[]\n", "line 1", "[name]"),
        (
            "[cli-abc12]\nclient_id cli-abc12\n",
            "line 2",
            "key = value",
        ),
        (
            "[cli-abc12]\nsecret\0 = x\0y\nnot a pair\n",
            "line 3",
            "key = value",
        ),
    ];
    for (text, line, fix) in cases {
        let error = CliConfig::parse(text, "test config").expect_err("malformed");
        let Error::Config { origin, reason, .. } = &error else {
            panic!("{text:?}: expected Config, got {error:?}");
        };
        assert_eq!(origin, &format!("test config, {line}"));
        assert!(reason.contains(fix), "{text:?}: {reason}");
        assert!(!format!("{error} {error:?}").contains("x\0y"));
    }
}

#[tokio::test(start_paused = true)]
async fn wait_options_at_extremes() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("GET"))
        .and(path("/1.0/images/img-3ikco"))
        .respond_with(ResponseTemplate::new(200).set_body_json(image_with("img-3ikco", "creating")))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/1.0/images/img-3ikco"))
        .respond_with(ResponseTemplate::new(200).set_body_json(image_with("img-3ikco", "failed")))
        .mount(&server)
        .await;
    mount_catch_all(&server).await;
    let client = client(&server);
    let id: ImageId = "img-3ikco".parse().expect("valid id");

    // No deadline fits in an Instant, and the pause is as long as a Duration can be.
    let endless = WaitOptions {
        interval: Duration::MAX,
        max_interval: Duration::MAX,
        timeout: Duration::MAX,
    };
    let error = client
        .images()
        .wait_until_available(&id, &endless)
        .await
        .expect_err("the image fails on the second poll");
    assert!(
        matches!(&error, Error::WaitFailed { last, .. } if last.status() == ImageStatus::Failed.as_str()),
        "{error:?}"
    );

    // A zero timeout polls once and reports the last status.
    let zero = WaitOptions {
        interval: Duration::ZERO,
        max_interval: Duration::ZERO,
        timeout: Duration::ZERO,
    };
    Mock::given(method("GET"))
        .and(path("/1.0/images/img-00001"))
        .respond_with(ResponseTemplate::new(200).set_body_json(image_with("img-00001", "creating")))
        .expect(1)
        .mount(&server)
        .await;
    let error = client
        .images()
        .wait_until_available(&"img-00001".parse().expect("valid id"), &zero)
        .await
        .expect_err("no time to wait");
    let Error::WaitTimedOut { polls, .. } = &error else {
        panic!("expected WaitTimedOut, got {error:?}");
    };
    assert_eq!(*polls, 1);
    assert!(
        error.to_string().contains("last status `creating`"),
        "{error}"
    );
}

#[tokio::test]
async fn huge_timeouts_build_and_work() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("GET"))
        .and(path("/1.0/images"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([fixture(IMAGE_JSON)])))
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let client = builder(&server)
        .timeout(Duration::MAX)
        .connect_timeout(Duration::MAX)
        .pool_idle_timeout(Some(Duration::MAX))
        .build()
        .expect("extreme timeouts are accepted");

    let images = client.images().list().await.expect("list works");
    assert_eq!(images.len(), 1);
}

#[tokio::test]
async fn huge_retry_after_is_not_waited() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("GET"))
        .and(path("/1.0/images"))
        .respond_with(
            ResponseTemplate::new(429).insert_header("Retry-After", u64::MAX.to_string().as_str()),
        )
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let started = std::time::Instant::now();
    let error = client(&server)
        .images()
        .list()
        .await
        .expect_err("rate limited");

    assert!(started.elapsed() < Duration::from_secs(5));
    let Error::RateLimited(api) = &error else {
        panic!("expected RateLimited, got {error:?}");
    };
    assert_eq!(api.retry_after, Some(Duration::from_secs(u64::MAX)));
    assert!(error.to_string().contains("retry after"), "{error}");
}

#[tokio::test]
async fn unknown_handles_list_known_ones() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("GET"))
        .and(path("/1.0/zones"))
        .respond_with(ResponseTemplate::new(200).set_body_string(ZONES_JSON))
        .mount(&server)
        .await;
    mount_catch_all(&server).await;
    let client = client(&server);

    for handle in ["", "GB1-A", "gb1-a\0", "gb1/a", "zon-abc12"] {
        let error = client
            .zones()
            .find_by_handle(handle)
            .await
            .expect_err("no such handle");
        let Error::InvalidRequest {
            field: "zone",
            value,
            reason,
        } = &error
        else {
            panic!("{handle:?}: expected InvalidRequest, got {error:?}");
        };
        assert_eq!(value, handle);
        assert!(reason.contains("known handles: gb1-a"), "{reason}");
    }
}
