//! Local disk errors during downloads: a full file system must surface as [`FtpError::Io`]
//! naming the partial file and the operating system's error, for one connection and for
//! segments.
//!
//! The tests mount a 2 MiB tmpfs, which needs root or `sudo` without a password (as
//! scripts/test.sh already needs for apt). So they are ignored by default, and scripts/test.sh
//! runs them with `--include-ignored`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use brightbox_ftp::{DownloadOptions, FtpError, FtpsClient};
use common::{TestServer, random_file};

/// A tmpfs of 2 MiB, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount() -> SmallDisk {
        let dir = tempfile::tempdir().expect("mount point");
        // mode=1777 lets a test that is not root write to the file system that sudo mounted.
        let status = privileged("mount")
            .args(["-t", "tmpfs", "-o", "size=2m,mode=1777", "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a tmpfs failed ({status}); run this test as root or with passwordless sudo"
        );
        SmallDisk { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = privileged("umount").arg(self.dir.path()).status();
    }
}

/// Returns a command that runs `program` as root: directly when this process is root, else through `sudo -n`.
fn privileged(program: &str) -> Command {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.trim_ascii() == b"0");
    if is_root {
        Command::new(program)
    } else {
        let mut command = Command::new("sudo");
        command.args(["-n", program]);
        command
    }
}

/// Starts a server that stores an 8 MiB file of random bytes at `incoming/disk.img`.
async fn server_with_file() -> TestServer {
    let server = TestServer::start().await;
    random_file(&server.path("incoming"), "disk.img", 8 * 1024 * 1024);
    server
}

fn assert_disk_full(error: &FtpError, part: &PathBuf) {
    match error {
        FtpError::Io { path, source } => {
            assert_eq!(path, part);
            assert_eq!(source.kind(), std::io::ErrorKind::StorageFull, "{source:?}");
        }
        other => panic!(
            "expected FtpError::Io for {}, got {other:?}",
            part.display()
        ),
    }
    let message = error.to_string();
    assert!(message.contains(&part.display().to_string()), "{message}");
    assert!(!error.is_retryable(), "{error:?}");
}

#[tokio::test]
#[ignore = "needs root to mount a tmpfs: run scripts/test.sh as root"]
async fn full_disk_single_download_names_file() {
    let server = server_with_file().await;
    let disk = SmallDisk::mount();
    let local = disk.path().join("disk.img");
    let mut client = FtpsClient::connect(&server.config())
        .await
        .expect("connect");

    let error = client
        .download_file("incoming/disk.img", &local, &DownloadOptions::new())
        .await
        .expect_err("8 MiB do not fit in 2 MiB");

    assert_disk_full(&error, &disk.path().join(".disk.img.part"));
    assert!(!local.exists());
}

#[tokio::test]
#[ignore = "needs root to mount a tmpfs: run scripts/test.sh as root"]
async fn full_disk_segmented_download_names_file() {
    let server = server_with_file().await;
    let disk = SmallDisk::mount();
    let local = disk.path().join("disk.img");
    let mut client = FtpsClient::connect(&server.config())
        .await
        .expect("connect");

    let error = client
        .download_file(
            "incoming/disk.img",
            &local,
            &DownloadOptions::new().segments(4),
        )
        .await
        .expect_err("8 MiB do not fit in 2 MiB");

    // A segmented download writes a file with holes under its own name, never under the name
    // that a resumed download continues.
    let part = disk.path().join(".disk.img.part.segments");
    assert_disk_full(&error, &part);
    assert!(!local.exists());
    assert!(!part.exists(), "the partial file with holes was kept");
    assert!(!disk.path().join(".disk.img.part").exists());
}
