//! Publishes a disk image as the newest of its family, then prunes old
//! images and removes leftover temporary uploads.
//!
//! `publish` uploads and registers the image, deprecates the older
//! available images of the same name and locks the new one. `prune` then
//! deletes the account's own images of that name beyond the newest
//! `--keep`, once they are older than `--older-than-days`; locked images
//! are never deleted. Without a path it publishes a small qcow2 image
//! twice, so that there is something to deprecate and prune.
//!
//! With `BRIGHTBOX_CLIENT_ID` and `BRIGHTBOX_CLIENT_SECRET` set, it talks to
//! the API at `BRIGHTBOX_API_URL`; without them it starts the local
//! emulator in this process.
//!
//! ```text
//! cargo run -p brightbox-examples --example image_lifecycle -- [PATH] [--name NAME] [--keep 2] [--dry-run]
//! ```

use std::error::Error;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use brightbox_api::{Arch, NamePattern};
use brightbox_examples::{
    ConnectOptions, connect, error_chain, image_table, init_tracing, write_sample_qcow2,
};
use brightbox_library::{ImageSpec, PruneOptions, PublishOptions};
use clap::Parser;

/// Command-line options.
#[derive(Debug, Parser)]
#[command(about = "Publish a disk image, deprecate older ones and prune old images")]
struct Options {
    /// Disk image to publish. Without it a sample qcow2 is published twice.
    path: Option<PathBuf>,
    /// Image name, shared by every version of the image.
    #[arg(long, default_value = "lifecycle-demo")]
    name: String,
    /// Number of the newest images of this name that prune always keeps.
    #[arg(long, default_value_t = 1)]
    keep: usize,
    /// Minimum age in days of an image that prune deletes.
    #[arg(long, default_value_t = 0)]
    older_than_days: u64,
    /// Do not lock the published image. Prune never deletes locked images.
    #[arg(long)]
    no_lock: bool,
    /// Report what prune would delete without deleting anything.
    #[arg(long)]
    dry_run: bool,
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
    let connection = connect(&options.connect).await?;
    let library = &connection.library;
    let scratch = tempfile::tempdir()?;
    let paths = match &options.path {
        Some(path) => vec![path.clone()],
        None => {
            let mut paths = Vec::new();
            for version in 1..=2 {
                let path = scratch
                    .path()
                    .join(format!("{}-{version}.qcow2", options.name));
                write_sample_qcow2(&path)?;
                paths.push(path);
            }
            paths
        }
    };

    let spec = ImageSpec::new(options.name.clone(), Arch::X86_64);
    let publish_options = PublishOptions::new().lock(!options.no_lock);
    for (index, path) in paths.iter().enumerate() {
        if index > 0 {
            // created_at has whole seconds; keep versions apart so the order is clear.
            tokio::time::sleep(Duration::from_millis(1100)).await;
        }
        let published = library.publish(path, &spec, &publish_options).await?;
        let deprecated: Vec<String> = published
            .deprecated
            .iter()
            .map(ToString::to_string)
            .collect();
        eprintln!(
            "published {} (locked: {}); deprecated: {}",
            published.image.id,
            published.locked,
            if deprecated.is_empty() {
                "none".to_owned()
            } else {
                deprecated.join(", ")
            }
        );
    }

    let family = NamePattern::Glob(options.name.clone());
    if let Some(latest) = library.latest_image(&family).await? {
        println!("latest {}:", options.name);
        print!("{}", image_table(std::slice::from_ref(&latest)));
    }

    let older_than = Duration::from_secs(options.older_than_days * 24 * 60 * 60);
    let prune = PruneOptions::new(options.keep, older_than)
        .name(family)
        .dry_run(options.dry_run);
    let report = library.prune(&prune).await?;
    let verb = if options.dry_run {
        "would remove"
    } else {
        "removed"
    };
    for image in &report.removed {
        println!("{verb} {}", image.id);
    }
    for kept in &report.kept {
        println!("kept {} ({:?})", kept.image.id, kept.reason);
    }

    let cleaned = library.clean_incoming().await?;
    if !cleaned.is_empty() {
        println!("removed temporary uploads: {}", cleaned.join(", "));
    }

    connection.shutdown().await;
    Ok(())
}
