//! Lists images with client-side filters and picks the newest match.
//!
//! [`ImageFilter`] keeps the images that match every condition set on it;
//! [`Images::most_recent`](brightbox_api::Images::most_recent) returns the
//! usable match with the latest `created_at`, never the last name in sort
//! order. With the local emulator (no `BRIGHTBOX_CLIENT_ID`) it first uploads
//! two versions of a sample image, `app-base-1` and `app-base-2`, so the
//! filters have something of the caller's own to find.
//!
//! ```text
//! cargo run -p brightbox-examples --example list_and_filter -- [--name 'app-base-*']
//! ```

use std::error::Error;
use std::process::ExitCode;

use brightbox_api::{Arch, ImageFilter, NamePattern};
use brightbox_examples::{
    ConnectOptions, connect, error_chain, image_table, init_tracing, write_sample_qcow2,
};
use brightbox_library::ImageSpec;
use clap::Parser;

/// Command-line options.
#[derive(Debug, Parser)]
#[command(about = "List Brightbox images through filters and pick the newest match")]
struct Options {
    /// Glob (* and ?) that image names must match.
    #[arg(long, default_value = "app-base-*")]
    name: String,
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
    let images = library.api().images();

    // The emulator starts with official images only; add two of our own.
    if connection.emulator.is_some() {
        let scratch = tempfile::tempdir()?;
        let path = scratch.path().join("app-base.qcow2");
        write_sample_qcow2(&path)?;
        for name in ["app-base-1", "app-base-2"] {
            let spec = ImageSpec::new(name, Arch::X86_64).remote_name(format!("{name}.qcow2"));
            library.upload_and_register(&path, &spec).await?;
            // The emulator stamps created_at in whole seconds; without the
            // pause both images could have the same time.
            tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        }
    }

    // Official x86_64 images: the base images Brightbox provides.
    let official = ImageFilter::new().official(true).arch(Arch::X86_64);
    println!("official x86_64 images:");
    print!("{}", image_table(&images.list_filtered(&official).await?));

    // The caller's own images whose names match the glob.
    let mine = ImageFilter::new()
        .mine_only(true)
        .name(NamePattern::Glob(options.name.clone()));
    println!("my images named {}:", options.name);
    print!("{}", image_table(&images.list_filtered(&mine).await?));

    // The newest usable one of them, by creation time.
    match images.most_recent(&mine).await? {
        Some(image) => println!(
            "most recent: {} ({})",
            image.id,
            image.name.unwrap_or_default()
        ),
        None => println!("most recent: no image matches"),
    }

    connection.shutdown().await;
    Ok(())
}
