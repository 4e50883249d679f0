//! Bad input for every workflow: local image files, image and snapshot specs, remote names,
//! download paths, server specs and prune options. Each case expects a typed error that names the
//! value. Against wiremock no request is sent; against the emulator no image or server is
//! created and `incoming/` stays empty.

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use brightbox_api::{Arch, Client, ImageId, MAX_USER_DATA_ENCODED_LEN, ServerId};
use brightbox_library::{
    DownloadImageOptions, ImageSpec, Library, LibraryError, PruneOptions, ServerSpec,
    SnapshotOptions, preflight,
};
use common::{api_client, dir_entries, library, start_emulator, upload_image, write_test_image};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Starts a mock API that fails the test when it receives any request.
async fn silent_api() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .named("no request may be sent")
        .mount(&server)
        .await;
    server
}

fn library_for(server: &MockServer) -> Library {
    let api = Client::builder()
        .base_url(server.uri())
        .client_credentials("cli-tst01", "client secret".to_owned())
        .build()
        .expect("client builds");
    Library::builder(api).build()
}

/// Local paths that are not usable disk images, with the part of the reason each error names.
fn bad_image_files(dir: &Path) -> Vec<(PathBuf, &'static str)> {
    let fifo = dir.join("fifo.img");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(status.success());

    let loop_a = dir.join("loop-a.img");
    std::os::unix::fs::symlink(dir.join("loop-b.img"), &loop_a).expect("symlink a");
    std::os::unix::fs::symlink(&loop_a, dir.join("loop-b.img")).expect("symlink b");

    let folder = dir.join("folder.img");
    std::fs::create_dir(&folder).expect("create folder");

    let empty = dir.join("empty.img");
    std::fs::write(&empty, b"").expect("write empty file");

    let mut qcow2_v3_short = b"QFI\xfb".to_vec();
    qcow2_v3_short.extend_from_slice(&3_u32.to_be_bytes());
    qcow2_v3_short.resize(60, 0);
    let truncated = dir.join("truncated.qcow2");
    std::fs::write(&truncated, &qcow2_v3_short).expect("write truncated qcow2");

    let mut qcow2_v4 = b"QFI\xfb".to_vec();
    qcow2_v4.extend_from_slice(&4_u32.to_be_bytes());
    qcow2_v4.resize(512, 0);
    let version4 = dir.join("version4.qcow2");
    std::fs::write(&version4, &qcow2_v4).expect("write qcow2 v4");

    let non_utf8 = dir.join(OsStr::from_bytes(b"disk-\xff.img"));
    write_test_image(&non_utf8, 4096, 1);

    vec![
        (dir.join("missing.img"), "check the path"),
        (folder, "not a regular file"),
        (PathBuf::from("/dev/zero"), "not a regular file"),
        (fifo, "not a regular file"),
        (loop_a, "check the path"),
        (dir.join("n".repeat(300)), "check the path"),
        (empty, "it is empty"),
        (truncated, "header is truncated"),
        (version4, "qemu-img convert"),
        (non_utf8, "set ImageSpec::remote_name"),
    ]
}

/// Specs that must be rejected for a valid local file, with the expected field and reason part.
fn bad_specs() -> Vec<(ImageSpec, &'static str, &'static str)> {
    let spec = |name: &str| ImageSpec::new(name, Arch::X86_64);
    let long_name = "n".repeat(300);
    vec![
        (spec(""), "name", "blank"),
        (spec(" \t "), "name", "blank"),
        (spec("debian\0"), "name", "control character"),
        (spec("deb\r\nian"), "name", "control character"),
        (spec(&long_name), "name", "longer than 255"),
        (
            ImageSpec::new("debian", Arch::Other("arm64".to_owned())),
            "arch",
            "x86_64 or i686",
        ),
    ]
}

/// Remote names that must be rejected, with the expected reason part.
fn bad_remote_names() -> Vec<(String, &'static str)> {
    vec![
        (String::new(), "empty"),
        ("incoming/disk.img".to_owned(), "letters, digits"),
        ("..\\disk.img".to_owned(), "dot"),
        ("disk\\img".to_owned(), "letters, digits"),
        ("..".to_owned(), "dot"),
        (".disk.img.part".to_owned(), "dot"),
        ("disk\0.img".to_owned(), "letters, digits"),
        ("disk\n.img".to_owned(), "letters, digits"),
        ("диск.img".to_owned(), "letters, digits"),
        ("d".repeat(300), "255 bytes"),
    ]
}

/// Runs every bad upload through `library` and checks each typed error.
async fn reject_bad_uploads(library: &Library, scratch: &Path) {
    for (path, reason_part) in bad_image_files(scratch) {
        let spec = ImageSpec::new("debian", Arch::X86_64);
        let upload = library.upload_and_register(&path, &spec);
        let error = tokio::time::timeout(Duration::from_secs(10), upload)
            .await
            .unwrap_or_else(|_| panic!("{}: upload hangs", path.display()))
            .expect_err("not a usable image file");
        let LibraryError::InvalidImageFile {
            path: reported,
            reason,
        } = &error
        else {
            panic!(
                "{}: expected InvalidImageFile, got {error:?}",
                path.display()
            );
        };
        assert_eq!(reported, &path);
        assert!(reason.contains(reason_part), "{}: {reason}", path.display());
        assert!(
            error.to_string().contains(&path.display().to_string()),
            "{error}"
        );
    }

    let good = scratch.join("good.img");
    write_test_image(&good, 8192, 7);
    for (spec, field, reason_part) in bad_specs() {
        let error = library
            .upload_and_register(&good, &spec)
            .await
            .expect_err("bad spec");
        let LibraryError::InvalidSpec {
            field: reported,
            reason,
            ..
        } = &error
        else {
            panic!("{spec:?}: expected InvalidSpec, got {error:?}");
        };
        assert_eq!(*reported, field);
        assert!(reason.contains(reason_part), "{field}: {reason}");
    }

    for (name, reason_part) in bad_remote_names() {
        let spec = ImageSpec::new("debian", Arch::X86_64).remote_name(name.clone());
        let error = library
            .upload_and_register(&good, &spec)
            .await
            .expect_err("bad remote name");
        let LibraryError::InvalidRemoteName {
            name: reported,
            reason,
        } = &error
        else {
            panic!("{name:?}: expected InvalidRemoteName, got {error:?}");
        };
        assert_eq!(reported, &name);
        assert!(reason.contains(reason_part), "{name:?}: {reason}");
        assert!(
            error.to_string().contains("set ImageSpec::remote_name"),
            "fix named: {error}"
        );
    }
}

#[tokio::test]
async fn bad_uploads_send_nothing() {
    let server = silent_api().await;
    let scratch = tempfile::tempdir().expect("scratch folder");

    reject_bad_uploads(&library_for(&server), scratch.path()).await;

    server.verify().await;
}

#[tokio::test]
async fn bad_uploads_register_nothing() {
    let emulator = start_emulator().await;
    let before = api_client(&emulator)
        .images()
        .list()
        .await
        .expect("list images");
    let scratch = tempfile::tempdir().expect("scratch folder");

    reject_bad_uploads(&library(&emulator), scratch.path()).await;

    let after = api_client(&emulator)
        .images()
        .list()
        .await
        .expect("list images");
    assert_eq!(after.len(), before.len(), "no image was registered");
    assert_eq!(dir_entries(&emulator.incoming_dir()), Vec::<String>::new());
    emulator.shutdown().await;
}

#[tokio::test]
async fn unreadable_image_file() {
    use std::os::unix::fs::PermissionsExt;

    let scratch = tempfile::tempdir().expect("scratch folder");
    let path = scratch.path().join("locked.img");
    write_test_image(&path, 4096, 3);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).expect("chmod 000");
    let spec = ImageSpec::new("debian", Arch::X86_64);

    // Root reads files whatever their mode, so the expectation depends on who runs the test.
    let readable = std::fs::read(&path).is_ok();
    let result = preflight(&path, &spec).await;

    if readable {
        let checked = result.expect("root reads a mode-000 file");
        assert_eq!(checked.bytes, 4096);
        assert_eq!(checked.remote_name, "locked.img");
    } else {
        let error = result.expect_err("mode 000 blocks reading");
        assert!(
            matches!(&error, LibraryError::InvalidImageFile { reason, .. } if reason.contains("cannot open it")),
            "{error:?}"
        );
    }
}

#[tokio::test]
async fn bad_download_paths_send_nothing() {
    let server = silent_api().await;
    let library = library_for(&server);
    let scratch = tempfile::tempdir().expect("scratch folder");
    let folder = scratch.path().join("folder");
    std::fs::create_dir(&folder).expect("create folder");
    let existing = scratch.path().join("existing.img");
    std::fs::write(&existing, b"keep me").expect("write file");
    let image: ImageId = "img-abc12".parse().expect("valid id");

    let cases = [
        (PathBuf::from("/"), "no file name"),
        (scratch.path().join(".."), "no file name"),
        (
            scratch.path().join("missing").join("copy.img"),
            "create it first",
        ),
        (existing.join("copy.img"), "is not a folder"),
        (folder.clone(), "the path is a folder"),
        (existing.clone(), "DownloadImageOptions::overwrite(true)"),
    ];
    for (path, reason_part) in cases {
        let error = library
            .download_image(&image, &path, &DownloadImageOptions::new())
            .await
            .expect_err("unusable download path");
        let LibraryError::InvalidDownloadPath {
            path: reported,
            reason,
        } = &error
        else {
            panic!(
                "{}: expected InvalidDownloadPath, got {error:?}",
                path.display()
            );
        };
        assert_eq!(reported, &path);
        assert!(reason.contains(reason_part), "{}: {reason}", path.display());
    }

    assert_eq!(std::fs::read(&existing).expect("read"), b"keep me");
    assert!(
        std::fs::read_dir(&folder)
            .expect("read folder")
            .next()
            .is_none()
    );
    server.verify().await;
}

#[tokio::test]
async fn bad_snapshot_names_send_nothing() {
    let server = silent_api().await;
    let library = library_for(&server);
    let server_id: ServerId = "srv-abc12".parse().expect("valid id");

    for name in ["", "   ", "web\0snap", "web\nsnap"] {
        let error = library
            .snapshot_server(&server_id, &SnapshotOptions::new().name(name))
            .await
            .expect_err("bad snapshot name");
        let LibraryError::InvalidSpec {
            field: "name",
            value,
            reason,
        } = &error
        else {
            panic!("{name:?}: expected InvalidSpec, got {error:?}");
        };
        assert_eq!(value, name);
        assert!(
            reason.contains("remove it") || reason.contains("leave it unset"),
            "{reason}"
        );
    }
    server.verify().await;
}

#[tokio::test]
async fn bad_server_specs_create_nothing() {
    let emulator = start_emulator().await;
    let library = library(&emulator);
    let image: ImageId = "img-noble".parse().expect("valid id");

    for (spec, field, value) in [
        (
            ServerSpec::new().server_type("no-such-type"),
            "server_type",
            "no-such-type",
        ),
        (
            ServerSpec::new().server_type("1gb.ssd\0"),
            "server_type",
            "1gb.ssd\0",
        ),
        (ServerSpec::new().server_type(""), "server_type", ""),
        (ServerSpec::new().zone("gb1-z"), "zone", "gb1-z"),
        (ServerSpec::new().zone("GB1-A"), "zone", "GB1-A"),
    ] {
        let error = library
            .create_server(&image, &spec.wait(false))
            .await
            .expect_err("unknown handle");
        let LibraryError::InvalidServerSpec {
            field: reported,
            value: shown,
            source,
        } = &error
        else {
            panic!("{value:?}: expected InvalidServerSpec, got {error:?}");
        };
        assert_eq!(*reported, field);
        assert_eq!(shown, value);
        assert!(source.to_string().contains("known handles"), "{source}");
    }

    let over_cap = vec![b'#'; MAX_USER_DATA_ENCODED_LEN];
    for spec in [
        ServerSpec::new().user_data(over_cap),
        ServerSpec::new().name("web\0server"),
    ] {
        let error = library
            .create_server(&image, &spec.wait(false))
            .await
            .expect_err("rejected before sending");
        let LibraryError::CreateServer { source, .. } = &error else {
            panic!("expected CreateServer, got {error:?}");
        };
        assert!(
            matches!(source, brightbox_api::Error::InvalidRequest { .. }),
            "{source:?}"
        );
        assert_eq!(error.created_server(), None);
    }

    let servers = api_client(&emulator)
        .servers()
        .list()
        .await
        .expect("list servers");
    assert!(servers.is_empty(), "{servers:?}");
    emulator.shutdown().await;
}

#[tokio::test]
async fn missing_image_downloads_nothing() {
    let emulator = start_emulator().await;
    let library = library(&emulator);
    let scratch = tempfile::tempdir().expect("scratch folder");
    let path = scratch.path().join("copy.img");

    let error = library
        .download_image(
            &"img-nope1".parse().expect("valid id"),
            &path,
            &DownloadImageOptions::new(),
        )
        .await
        .expect_err("no such image");

    let LibraryError::ImageLookup { image_id, source } = &error else {
        panic!("expected ImageLookup, got {error:?}");
    };
    assert_eq!(image_id.as_str(), "img-nope1");
    assert!(
        matches!(source, brightbox_api::Error::NotFound { .. }),
        "{source:?}"
    );
    assert!(error.to_string().contains("img-nope1"), "{error}");
    assert_eq!(dir_entries(scratch.path()), Vec::<String>::new());
    emulator.shutdown().await;
}

#[tokio::test]
async fn prune_with_extreme_options_removes_nothing() {
    let emulator = start_emulator().await;
    let library = library(&emulator);
    let scratch = tempfile::tempdir().expect("scratch folder");
    let first = upload_image(&library, scratch.path(), "nightly-1", 4096).await;
    let second = upload_image(&library, scratch.path(), "nightly-2", 4096).await;

    // An age past the calendar's range makes no image old enough.
    let report = library
        .prune(&PruneOptions::new(0, Duration::MAX))
        .await
        .expect("prune runs");
    assert!(report.removed.is_empty(), "{:?}", report.removed);
    assert_eq!(report.kept.len(), 2);

    // Keeping usize::MAX images keeps every image.
    let report = library
        .prune(&PruneOptions::new(usize::MAX, Duration::ZERO))
        .await
        .expect("prune runs");
    assert!(report.removed.is_empty(), "{:?}", report.removed);

    for image in [first, second] {
        let still = common::get_image(&emulator, &image.id).await;
        assert!(still.status.is_usable(), "{} is {}", still.id, still.status);
    }
    emulator.shutdown().await;
}

#[test]
fn bad_root_certificate() {
    for pem in [
        &b""[..],
        b"garbage",
        b"-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n",
    ] {
        let api = Client::builder()
            .base_url("http://127.0.0.1:9/")
            .client_credentials("cli-tst01", "client secret".to_owned())
            .build()
            .expect("client builds");
        let error = Library::builder(api)
            .add_root_certificate_pem(pem)
            .expect_err("no usable certificate");
        assert!(
            matches!(error, LibraryError::InvalidRootCertificate(_)),
            "{error:?}"
        );
        assert!(std::error::Error::source(&error).is_some());
    }
}
