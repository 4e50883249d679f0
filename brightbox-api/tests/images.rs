//! Image endpoints: registration, update, deletion, locking, decoding of image JSON, and API error details.

mod common;

use brightbox_api::{
    Arch, Error, ImageId, ImageSource, ImageStatus, RegisterImage, SourceType, UpdateImage,
};
use common::*;
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn image_id(value: &str) -> ImageId {
    value.parse().expect("valid id")
}

async fn mount_get_image(server: &MockServer, id: &str, body: serde_json::Value) {
    Mock::given(method("GET"))
        .and(path(format!("/1.0/images/{id}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .mount(server)
        .await;
}

#[tokio::test]
async fn register_sends_exact_body_and_decodes_201() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    let mut created = image_with("img-n3w01", "creating");
    created["disk_size"] = json!(0);
    created["source"] = json!("debian-13.img");
    Mock::given(method("POST"))
        .and(path("/1.0/images"))
        .and(header("content-type", "application/json"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(body_json(json!({
            "arch": "x86_64",
            "name": "debian-13",
            "description": "Debian 13 base image",
            "source": "debian-13.img"
        })))
        .respond_with(ResponseTemplate::new(201).set_body_json(created))
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let request = RegisterImage::new(
        "debian-13",
        Arch::X86_64,
        ImageSource::FtpUpload("debian-13.img".to_owned()),
    )
    .description("Debian 13 base image");
    let image = client(&server)
        .images()
        .register(&request)
        .await
        .expect("register succeeds");

    assert_eq!(image.id, "img-n3w01");
    assert_eq!(image.status, ImageStatus::Creating);
    assert_eq!(image.disk_size, Some(0));
    assert_eq!(image.source.as_deref(), Some("debian-13.img"));
}

#[tokio::test]
async fn register_by_http_url_sends_optional_fields() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("POST"))
        .and(path("/1.0/images"))
        .and(body_json(json!({
            "arch": "i686",
            "name": "legacy-32",
            "http_url": "https://orbit.brightbox.com/v1/acc-43ks4/uploads/legacy.img?temp_url_sig=abc&temp_url_expires=1893456000",
            "username": "root",
            "min_ram": 1024,
            "public": false,
            "compatibility_mode": true
        })))
        .respond_with(ResponseTemplate::new(201).set_body_json(image_with("img-n3w02", "creating")))
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let url = "https://orbit.brightbox.com/v1/acc-43ks4/uploads/legacy.img?temp_url_sig=abc&temp_url_expires=1893456000"
        .parse()
        .expect("valid URL");
    let request = RegisterImage::new("legacy-32", Arch::I686, ImageSource::HttpUrl(url))
        .username("root")
        .min_ram(1024)
        .public(false)
        .compatibility_mode(true);
    let image = client(&server)
        .images()
        .register(&request)
        .await
        .expect("register succeeds");

    assert_eq!(image.id, "img-n3w02");
}

#[tokio::test]
async fn register_rejects_bad_input_before_sending() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    mount_catch_all(&server).await;
    let client = client(&server);
    let ftp = |name: &str| ImageSource::FtpUpload(name.to_owned());

    let cases = [
        (
            RegisterImage::new("", Arch::X86_64, ftp("disk.img")),
            "name",
        ),
        (
            RegisterImage::new("disk", Arch::Other("arm64".to_owned()), ftp("disk.img")),
            "arch",
        ),
        (
            RegisterImage::new("disk", Arch::X86_64, ftp("incoming/disk.img")),
            "source",
        ),
        (
            RegisterImage::new("disk", Arch::X86_64, ftp("disk image.img")),
            "source",
        ),
        (RegisterImage::new("disk", Arch::X86_64, ftp("")), "source"),
        (
            RegisterImage::new(
                "disk",
                Arch::X86_64,
                ImageSource::HttpUrl("ftp://example.com/disk.img".parse().expect("valid URL")),
            ),
            "http_url",
        ),
    ];
    for (request, expected_field) in cases {
        let error = client
            .images()
            .register(&request)
            .await
            .expect_err("request is invalid");
        assert!(
            matches!(&error, Error::InvalidRequest { field, .. } if *field == expected_field),
            "{expected_field}: {error:?}"
        );
    }
    assert_eq!(count_requests(&server, "POST", "/1.0/images").await, 0);
}

#[tokio::test]
async fn register_422_keeps_error_details() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("POST"))
        .and(path("/1.0/images"))
        .respond_with(
            ResponseTemplate::new(422)
                .insert_header("x-request-id", "req-7f3a9c")
                .set_body_json(json!({
                    "error_name": "unprocessable_entity",
                    "errors": ["Source file not found in incoming", "Arch is not included in the list"]
                })),
        )
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let request = RegisterImage::new(
        "disk",
        Arch::X86_64,
        ImageSource::FtpUpload("missing.img".to_owned()),
    );
    let error = client(&server)
        .images()
        .register(&request)
        .await
        .expect_err("server rejects");

    let Error::Validation(api) = &error else {
        panic!("expected Error::Validation, got {error:?}");
    };
    assert_eq!(api.status, 422);
    assert_eq!(api.method, "POST");
    assert_eq!(api.path, "/1.0/images");
    assert_eq!(api.error_name.as_deref(), Some("unprocessable_entity"));
    assert_eq!(
        api.errors,
        vec![
            "Source file not found in incoming",
            "Arch is not included in the list"
        ]
    );
    assert_eq!(api.request_id.as_deref(), Some("req-7f3a9c"));
    assert_eq!(error.request_id(), Some("req-7f3a9c"));
    let message = error.to_string();
    assert!(
        message.contains("Source file not found in incoming"),
        "{message}"
    );
    assert!(message.contains("req-7f3a9c"), "{message}");
}

#[tokio::test]
async fn register_not_retried_on_503() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("POST"))
        .and(path("/1.0/images"))
        .respond_with(ResponseTemplate::new(503).set_body_string("Api currently unavailable"))
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let request = RegisterImage::new(
        "disk",
        Arch::X86_64,
        ImageSource::FtpUpload("disk.img".to_owned()),
    );
    let error = client(&server)
        .images()
        .register(&request)
        .await
        .expect_err("server unavailable");

    assert_eq!(error.status(), Some(503));
    // The image may exist after a 503 to a POST, so a blind retry is not safe.
    assert!(!error.is_retryable());
    assert_eq!(count_requests(&server, "POST", "/1.0/images").await, 1);
}

#[tokio::test]
async fn get_image_decodes_full_fixture() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    mount_get_image(&server, "img-3ikco", fixture(IMAGE_JSON)).await;
    mount_catch_all(&server).await;

    let image = client(&server)
        .images()
        .get(&image_id("img-3ikco"))
        .await
        .expect("get succeeds");

    assert_eq!(image.name.as_deref(), Some("debian-13-amd64"));
    assert_eq!(image.status, ImageStatus::Available);
    assert_eq!(image.arch, Arch::X86_64);
    assert_eq!(image.owner.as_deref(), Some("acc-43ks4"));
    assert_eq!(image.source_type, Some(SourceType::Upload));
    assert_eq!(image.virtual_size, Some(10240));
    assert_eq!(image.disk_size, Some(2048));
    assert_eq!(image.min_ram, Some(512));
    assert_eq!(image.username.as_deref(), Some("debian"));
    assert_eq!(
        image.created_at.map(|t| t.to_rfc3339()),
        Some("2025-06-01T12:00:00+00:00".to_owned())
    );
    assert!(!image.official);
    assert!(!image.public);
}

#[tokio::test]
async fn get_image_keeps_unknown_status() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    let mut body = image_with("img-3ikco", "pondering");
    body["arch"] = json!("riscv64");
    body["source_type"] = json!("import");
    mount_get_image(&server, "img-3ikco", body).await;
    mount_catch_all(&server).await;

    let image = client(&server)
        .images()
        .get(&image_id("img-3ikco"))
        .await
        .expect("get succeeds");

    assert_eq!(image.status, ImageStatus::Unknown("pondering".to_owned()));
    assert_eq!(image.status.to_string(), "pondering");
    assert_eq!(image.arch, Arch::Other("riscv64".to_owned()));
    assert_eq!(
        image.source_type,
        Some(SourceType::Unknown("import".to_owned()))
    );
}

#[tokio::test]
async fn get_image_tolerates_null_missing_and_extra_fields() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    mount_get_image(&server, "img-9xq2m", fixture(IMAGE_SPARSE_JSON)).await;
    mount_catch_all(&server).await;

    let image = client(&server)
        .images()
        .get(&image_id("img-9xq2m"))
        .await
        .expect("get succeeds");

    assert_eq!(image.name, None);
    assert_eq!(image.min_ram, None);
    assert_eq!(image.created_at, None);
    assert_eq!(image.virtual_size, None);
    assert_eq!(image.source_type, None);
    assert!(!image.official, "null official decodes as false");
    assert!(image.public);
    assert_eq!(image.arch, Arch::I686);
    assert_eq!(image.disk_size, Some(0));
}

#[tokio::test]
async fn get_image_without_id_names_field() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    let mut body = fixture(IMAGE_JSON);
    body.as_object_mut()
        .expect("fixture is an object")
        .remove("id");
    mount_get_image(&server, "img-3ikco", body).await;
    mount_catch_all(&server).await;

    let error = client(&server)
        .images()
        .get(&image_id("img-3ikco"))
        .await
        .expect_err("id is missing");

    match &error {
        Error::Decode {
            json_path, path, ..
        } => {
            assert_eq!(json_path, "id");
            assert_eq!(path, "/1.0/images/img-3ikco");
        }
        other => panic!("expected Error::Decode, got {other:?}"),
    }
    let text = error_chain(&error);
    assert!(text.contains("`id`"), "{text}");
}

#[tokio::test]
async fn list_with_bad_entry_names_index_and_field() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    let mut bad = image_with("img-b4d00", "available");
    bad["disk_size"] = json!("large");
    Mock::given(method("GET"))
        .and(path("/1.0/images"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([fixture(IMAGE_JSON), bad])))
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let error = client(&server)
        .images()
        .list()
        .await
        .expect_err("second entry is invalid");

    assert!(
        matches!(&error, Error::Decode { json_path, .. } if json_path == "[1].disk_size"),
        "{error:?}"
    );
}

#[tokio::test]
async fn list_with_invalid_id_is_decode_error() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("GET"))
        .and(path("/1.0/images"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!([image_with("srv-abcde", "available")])),
        )
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let error = client(&server)
        .images()
        .list()
        .await
        .expect_err("id has the wrong prefix");

    assert!(
        matches!(&error, Error::Decode { json_path, .. } if json_path == "[0].id"),
        "{error:?}"
    );
    let text = error_chain(&error);
    assert!(text.contains("srv-abcde"), "{text}");
}

#[tokio::test]
async fn get_missing_image_is_not_found() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("GET"))
        .and(path("/1.0/images/img-g0n3x"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "error_name": "missing_resource",
            "errors": ["Resource not found"]
        })))
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let error = client(&server)
        .images()
        .get(&image_id("img-g0n3x"))
        .await
        .expect_err("image is missing");

    assert!(
        matches!(&error, Error::NotFound { resource, .. } if resource == "image img-g0n3x"),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("image img-g0n3x not found"),
        "{error}"
    );
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn image_serialises_back_to_api_names() {
    let image: brightbox_api::Image =
        serde_json::from_value(fixture(IMAGE_JSON)).expect("fixture decodes");
    let value = serde_json::to_value(&image).expect("image encodes");

    assert_eq!(value["id"], "img-3ikco");
    assert_eq!(value["status"], "available");
    assert_eq!(value["arch"], "x86_64");
    assert_eq!(value["source_type"], "upload");
    let again: brightbox_api::Image = serde_json::from_value(value).expect("round trip decodes");
    assert_eq!(again, image);
}

#[tokio::test]
async fn register_from_server_and_volume() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    for (source, key, value) in [
        (
            ImageSource::Server("srv-lv426".parse().expect("valid id")),
            "server",
            "srv-lv426",
        ),
        (
            ImageSource::Volume("vol-po5we".parse().expect("valid id")),
            "volume",
            "vol-po5we",
        ),
    ] {
        let mut body = json!({"name": "snap", "arch": "x86_64"});
        body[key] = json!(value);
        let mut created = image_with("img-snap1", "creating");
        created["source"] = json!(value);
        created["source_type"] = json!("snapshot");
        Mock::given(method("POST"))
            .and(path("/1.0/images"))
            .and(body_json(&body))
            .respond_with(ResponseTemplate::new(201).set_body_json(created))
            .expect(1)
            .mount(&server)
            .await;

        let request = RegisterImage::new("snap", Arch::X86_64, source);
        let image = client(&server)
            .images()
            .register(&request)
            .await
            .expect("register succeeds");
        assert_eq!(image.source_type, Some(SourceType::Snapshot));
        assert_eq!(image.source.as_deref(), Some(value));
    }
    mount_catch_all(&server).await;
}

#[tokio::test]
async fn update_sends_only_set_fields() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    let mut updated = image_with("img-3ikco", "deprecated");
    updated["public"] = json!(true);
    Mock::given(method("PUT"))
        .and(path("/1.0/images/img-3ikco"))
        .and(body_json(
            json!({"name": "debian-13-old", "status": "deprecated", "public": true}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(updated))
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let update = UpdateImage::new()
        .name("debian-13-old")
        .deprecated(true)
        .public(true);
    let image = client(&server)
        .images()
        .update(&image_id("img-3ikco"), &update)
        .await
        .expect("update succeeds");

    assert_eq!(image.status, ImageStatus::Deprecated);
    assert!(image.public);
}

#[tokio::test]
async fn update_without_fields_is_rejected() {
    let server = MockServer::start().await;
    mount_catch_all(&server).await;

    let error = client(&server)
        .images()
        .update(&image_id("img-3ikco"), &UpdateImage::new())
        .await
        .expect_err("nothing to update");

    assert!(
        matches!(&error, Error::InvalidRequest { field: "body", .. }),
        "{error:?}"
    );
    assert_eq!(
        server.received_requests().await.unwrap_or_default().len(),
        0
    );
}

#[tokio::test]
async fn update_retried_after_503() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("PUT"))
        .and(path("/1.0/images/img-3ikco"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/1.0/images/img-3ikco"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(image_with("img-3ikco", "available")),
        )
        .with_priority(2)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let image = client(&server)
        .images()
        .update(
            &image_id("img-3ikco"),
            &UpdateImage::new().deprecated(false),
        )
        .await
        .expect("second attempt succeeds");

    assert_eq!(image.status, ImageStatus::Available);
    assert_eq!(
        count_requests(&server, "PUT", "/1.0/images/img-3ikco").await,
        2
    );
}

#[tokio::test]
async fn destroy_accepts_202() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("DELETE"))
        .and(path("/1.0/images/img-3ikco"))
        .respond_with(ResponseTemplate::new(202).set_body_json(image_with("img-3ikco", "deleting")))
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    client(&server)
        .images()
        .destroy(&image_id("img-3ikco"))
        .await
        .expect("destroy succeeds");
}

#[tokio::test]
async fn destroy_locked_image_keeps_reason() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    Mock::given(method("DELETE"))
        .and(path("/1.0/images/img-3ikco"))
        .respond_with(ResponseTemplate::new(409).set_body_json(json!({
            "error_name": "resource_locked",
            "errors": ["Image is locked and cannot be deleted"]
        })))
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let error = client(&server)
        .images()
        .destroy(&image_id("img-3ikco"))
        .await
        .expect_err("image is locked");

    let Error::Conflict(api) = &error else {
        panic!("expected Error::Conflict, got {error:?}");
    };
    assert_eq!(api.error_name.as_deref(), Some("resource_locked"));
    assert_eq!(api.errors, vec!["Image is locked and cannot be deleted"]);
}

#[tokio::test]
async fn lock_and_unlock_use_put() {
    let server = MockServer::start().await;
    mount_token(&server).await;
    for action in ["lock_resource", "unlock_resource"] {
        Mock::given(method("PUT"))
            .and(path(format!("/1.0/images/img-3ikco/{action}")))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(image_with("img-3ikco", "available")),
            )
            .expect(1)
            .mount(&server)
            .await;
    }
    mount_catch_all(&server).await;

    let client = client(&server);
    let id = image_id("img-3ikco");
    client.images().lock(&id).await.expect("lock succeeds");
    client.images().unlock(&id).await.expect("unlock succeeds");
}
