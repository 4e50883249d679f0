//! Snapshots a server and downloads the snapshot's file over FTPS.
//!
//! With `--server` it snapshots that server. Without it, it uploads a small
//! qcow2 disk image, builds a server from it and snapshots that server.
//! Then it downloads `images/<snapshot id>` to `--output`, or without it to
//! `snapshot.img` in a new temporary folder that it keeps, and prints the
//! path, size, format and SHA-256. Each run without `--output` writes to a
//! folder of its own, so the program can run again at once.
//!
//! With `BRIGHTBOX_CLIENT_ID` and `BRIGHTBOX_CLIENT_SECRET` set, it talks to
//! the API at `BRIGHTBOX_API_URL`; without them it starts the local
//! emulator in this process.
//!
//! ```text
//! cargo run -p brightbox-examples --example snapshot_and_download -- [--server srv-xxxxx] [--output PATH]
//! ```

use std::error::Error;
use std::path::PathBuf;
use std::process::ExitCode;

use brightbox_api::{Arch, ServerId};
use brightbox_examples::{
    ConnectOptions, connect, error_chain, image_table, init_tracing, write_sample_qcow2,
};
use brightbox_library::{DownloadImageOptions, ImageSpec, ServerSpec, SnapshotOptions};
use clap::Parser;

/// Command-line options.
#[derive(Debug, Parser)]
#[command(about = "Snapshot a Brightbox server and download the snapshot over FTPS")]
struct Options {
    /// Server to snapshot. Without it a sample image is uploaded and a server built from it.
    #[arg(long)]
    server: Option<ServerId>,
    /// Name of the snapshot image.
    #[arg(long)]
    name: Option<String>,
    /// Local file to download the snapshot to [default: snapshot.img in a new temporary folder].
    #[arg(long)]
    output: Option<PathBuf>,
    /// Replace the output file if it exists.
    #[arg(long)]
    overwrite: bool,
    #[command(flatten)]
    connect: ConnectOptions,
}

#[tokio::main]
async fn main() -> ExitCode {
    init_tracing();
    match run(Options::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", error_chain(error.as_ref()));
            ExitCode::FAILURE
        }
    }
}

async fn run(options: Options) -> Result<(), Box<dyn Error>> {
    let output = match &options.output {
        Some(path) => {
            if path.exists() && !options.overwrite {
                return Err(format!(
                    "output file {} exists; remove it, pass another --output or pass --overwrite",
                    path.display()
                )
                .into());
            }
            path.clone()
        }
        // The folder is kept because it contains the result.
        None => tempfile::Builder::new()
            .prefix("brightbox-snapshot-")
            .tempdir()?
            .keep()
            .join("snapshot.img"),
    };
    let connection = connect(&options.connect).await?;
    let library = &connection.library;

    let server_id = match &options.server {
        Some(id) => id.clone(),
        None => {
            let scratch = tempfile::tempdir()?;
            let path = scratch.path().join("snapshot-base.qcow2");
            write_sample_qcow2(&path)?;
            eprintln!("uploading a sample disk image");
            let image = library
                .upload_and_register(&path, &ImageSpec::new("snapshot-base", Arch::X86_64))
                .await?;
            eprintln!("building a server from {}", image.id);
            let server = library
                .create_server(&image.id, &ServerSpec::new().name("snapshot-source"))
                .await?;
            server.id
        }
    };

    eprintln!("snapshotting {server_id}");
    let mut snapshot_options = SnapshotOptions::new();
    if let Some(name) = &options.name {
        snapshot_options = snapshot_options.name(name.clone());
    }
    let snapshot = library
        .snapshot_server(&server_id, &snapshot_options)
        .await?;
    print!("{}", image_table(std::slice::from_ref(&snapshot)));

    eprintln!("downloading {} to {}", snapshot.id, output.display());
    let download_options = DownloadImageOptions::new().overwrite(options.overwrite);
    let downloaded = library
        .download_image(&snapshot.id, &output, &download_options)
        .await?;
    println!(
        "{}: {} bytes, {} format, sha256 {}",
        downloaded.path.display(),
        downloaded.bytes,
        downloaded.format,
        downloaded.sha256
    );

    connection.shutdown().await;
    Ok(())
}
