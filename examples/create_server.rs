//! Builds a server from an image and waits until it is active.
//!
//! With `--image` it uses that image. Without it, it uploads a small qcow2
//! disk image and builds the server from that. It prints the server's id,
//! status, type and zone.
//!
//! With `BRIGHTBOX_CLIENT_ID` and `BRIGHTBOX_CLIENT_SECRET` set, it talks to
//! the API at `BRIGHTBOX_API_URL`; without them it starts the local
//! emulator in this process.
//!
//! ```text
//! cargo run -p brightbox-examples --example create_server -- [--image img-xxxxx] [--type 1gb.ssd] [--zone gb1-a]
//! ```

use std::error::Error;
use std::path::PathBuf;
use std::process::ExitCode;

use brightbox_api::{Arch, ImageId};
use brightbox_examples::{ConnectOptions, connect, error_chain, init_tracing, write_sample_qcow2};
use brightbox_library::{ImageSpec, ServerSpec};
use clap::Parser;

/// Command-line options.
#[derive(Debug, Parser)]
#[command(about = "Build a Brightbox server from an image and wait until it is active")]
struct Options {
    /// Image to build from. Without it a sample image is uploaded first.
    #[arg(long)]
    image: Option<ImageId>,
    /// Name of the server.
    #[arg(long)]
    name: Option<String>,
    /// Server type: a handle such as 1gb.ssd or an id such as typ-xxxxx.
    #[arg(long = "type")]
    server_type: Option<String>,
    /// Zone: a handle such as gb1-a or an id such as zon-xxxxx.
    #[arg(long)]
    zone: Option<String>,
    /// File whose contents are passed to the server as user data (at most 48 KiB).
    #[arg(long)]
    user_data_file: Option<PathBuf>,
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
    let mut spec = ServerSpec::new();
    if let Some(name) = &options.name {
        spec = spec.name(name.clone());
    }
    if let Some(server_type) = &options.server_type {
        spec = spec.server_type(server_type.clone());
    }
    if let Some(zone) = &options.zone {
        spec = spec.zone(zone.clone());
    }
    if let Some(file) = &options.user_data_file {
        let data = std::fs::read(file)
            .map_err(|error| format!("cannot read user data file {}: {error}", file.display()))?;
        spec = spec.user_data(data);
    }

    let connection = connect(&options.connect).await?;
    let library = &connection.library;
    let image_id = match &options.image {
        Some(id) => id.clone(),
        None => {
            let scratch = tempfile::tempdir()?;
            let path = scratch.path().join("server-base.qcow2");
            write_sample_qcow2(&path)?;
            eprintln!("uploading a sample disk image");
            library
                .upload_and_register(&path, &ImageSpec::new("server-base", Arch::X86_64))
                .await?
                .id
        }
    };

    eprintln!("building a server from {image_id}");
    let server = library.create_server(&image_id, &spec).await?;
    let handle = |value: Option<&String>| value.cloned().unwrap_or_default();
    println!(
        "{}  {}  {}  type {}  zone {}",
        server.id,
        server.status,
        server.name.unwrap_or_default(),
        handle(server.server_type.as_ref().and_then(|t| t.handle.as_ref())),
        handle(server.zone.as_ref().and_then(|z| z.handle.as_ref())),
    );

    connection.shutdown().await;
    Ok(())
}
