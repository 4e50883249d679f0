//! The slow tier: a sparse image larger than 4 GiB through the real vsftpd started by
//! scripts/vsftpd.sh. Run it in release mode, as scripts/test.sh does:
//! `cargo test --release -p brightbox-ftp --test slow -- --include-ignored`.
//!
//! The file is larger than `u32::MAX` bytes, so sizes, offsets and segment ranges above 4 GiB
//! are exercised. vsftpd stores the upload as a regular file, so the server's disk needs about
//! 4.1 GiB free while the test runs. The local files stay sparse.

use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Duration;

use brightbox_ftp::{DownloadOptions, FtpsClient, FtpsConfig, ImageFormat, UploadOptions};
use sha2::{Digest, Sha256};

/// 4 GiB plus 3 MiB plus 5 bytes, so the length fits no 32-bit integer and no 1 MiB boundary.
const LENGTH: u64 = (4 << 30) + (3 << 20) + 5;

fn required(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run scripts/vsftpd.sh and source its env file")
    })
}

fn vsftpd_config() -> FtpsConfig {
    let ca_path = required("BRIGHTBOX_TEST_VSFTPD_CA");
    let ca_pem = std::fs::read(&ca_path).unwrap_or_else(|error| panic!("read {ca_path}: {error}"));
    FtpsConfig::from_host_port(
        &required("BRIGHTBOX_TEST_VSFTPD_ADDR"),
        required("BRIGHTBOX_TEST_VSFTPD_USER"),
        required("BRIGHTBOX_TEST_VSFTPD_PASSWORD"),
    )
    .expect("BRIGHTBOX_TEST_VSFTPD_ADDR is host:port")
    .add_root_certificate_pem(&ca_pem)
    .expect("CA PEM is valid")
    .io_timeout(Duration::from_secs(60))
}

/// Creates a sparse file of [`LENGTH`] bytes with a qcow2 magic at the start and marked
/// 64 KiB blocks just below 4 GiB, across the 4 GiB boundary and at the end.
fn sparse_image(path: &Path) {
    let file = std::fs::File::create(path).expect("create sparse image");
    file.set_len(LENGTH).expect("size sparse image");
    let marks: [(u64, u8); 4] = [
        (0, 0x51),
        ((4 << 30) - 40_000, 0xa5),
        ((4 << 30) + (1 << 20), 0x3c),
        (LENGTH - 70_000, 0x7e),
    ];
    for (offset, byte) in marks {
        let block: Vec<u8> = (0..65_536_u32)
            .map(|index| byte ^ (index % 251) as u8)
            .collect();
        file.write_all_at(&block, offset).expect("write mark");
    }
    file.write_all_at(b"QFI\xfb\x00\x00\x00\x03", 0)
        .expect("write qcow2 magic");
}

/// Returns the length and SHA-256 of a file, read in 4 MiB blocks.
fn hash_file(path: &Path) -> (u64, String) {
    let mut file = std::fs::File::open(path).expect("open file for hashing");
    let mut hasher = Sha256::new();
    let mut buffer = vec![0_u8; 4 << 20];
    let mut length = 0_u64;
    loop {
        let read = file.read(&mut buffer).expect("read file for hashing");
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        length += read as u64;
    }
    (length, hex::encode(hasher.finalize()))
}

#[tokio::test]
#[ignore = "slow tier: run scripts/test.sh"]
async fn sparse_image_over_4_gib_round_trip() {
    let local_dir = tempfile::tempdir().expect("local dir");
    let source = local_dir.path().join("source.img");
    sparse_image(&source);
    let (source_length, source_sha) = hash_file(&source);
    assert_eq!(source_length, LENGTH);

    let name = format!("slow-{}.img", std::process::id());
    let mut client = FtpsClient::connect(&vsftpd_config())
        .await
        .expect("connect to vsftpd");
    let upload = client
        .upload_file_with(&source, "incoming", &name, &UploadOptions::default())
        .await
        .expect("upload the sparse image");
    assert_eq!(upload.bytes, LENGTH, "bytes uploaded");
    assert_eq!(
        upload.sha256, source_sha,
        "SHA-256 computed during the upload"
    );
    assert_eq!(
        client.size(&upload.remote_path).await.expect("SIZE"),
        LENGTH,
        "size stored by vsftpd"
    );

    for segments in [1, 4] {
        let local = local_dir.path().join(format!("back-{segments}.img"));
        let download = client
            .download_file(
                &upload.remote_path,
                &local,
                &DownloadOptions::default().segments(segments),
            )
            .await
            .unwrap_or_else(|error| panic!("download with {segments} segments: {error}"));
        assert_eq!(download.bytes, LENGTH, "{segments} segments: bytes");
        assert_eq!(download.sha256, source_sha, "{segments} segments: SHA-256");
        assert_eq!(download.format, ImageFormat::Qcow2, "{segments} segments");
        let (length, sha) = hash_file(&local);
        assert_eq!(length, LENGTH, "{segments} segments: local length");
        assert_eq!(sha, source_sha, "{segments} segments: local SHA-256");
        std::fs::remove_file(&local).expect("remove download");
    }

    client
        .delete(&upload.remote_path)
        .await
        .expect("DELE the uploaded image");
    client.quit().await.expect("quit");
}
