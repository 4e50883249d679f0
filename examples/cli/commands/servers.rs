//! `brightbox servers create` and `brightbox servers snapshot`.

use brightbox_api::{ImageId, ServerId};
use brightbox_examples::{image_table, server_table};
use brightbox_library::{ServerSpec, SnapshotOptions};

use super::{parse, with_session};
use crate::args::{CreateServerArgs, GlobalOptions, ServersCommand};
use crate::error::CliError;
use crate::output::{print_json, print_text};
use crate::progress;

/// Runs a `servers` subcommand.
pub(crate) async fn run(global: &GlobalOptions, command: ServersCommand) -> Result<(), CliError> {
    match command {
        ServersCommand::Create(args) => create(global, args).await,
        ServersCommand::Snapshot { server, wait } => {
            let server: ServerId = parse(&server)?;
            snapshot(global, &server, wait).await
        }
    }
}

async fn create(global: &GlobalOptions, args: CreateServerArgs) -> Result<(), CliError> {
    let image: ImageId = parse(&args.image)?;
    let mut spec = ServerSpec::new().wait(args.wait);
    if let Some(name) = args.name {
        spec = spec.name(name);
    }
    if let Some(server_type) = args.r#type {
        spec = spec.server_type(server_type);
    }
    if let Some(zone) = args.zone {
        spec = spec.zone(zone);
    }
    if let Some(path) = &args.user_data_file {
        let data = std::fs::read(path).map_err(|source| CliError::ReadFile {
            purpose: "user data file",
            path: path.clone(),
            source,
        })?;
        spec = spec.user_data(data);
    }

    let server = with_session(global, async |session| {
        let library = session.library(None)?;
        let bar = args.wait.then(|| {
            progress::spinner(
                format!("building a server from {image}"),
                progress::enabled(global.json),
            )
        });
        let result = library.create_server(&image, &spec).await;
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        Ok(result?)
    })
    .await?;

    if global.json {
        print_json(&server)
    } else {
        print_text(&server_table(std::slice::from_ref(&server)))
    }
}

async fn snapshot(global: &GlobalOptions, server: &ServerId, wait: bool) -> Result<(), CliError> {
    let image = with_session(global, async |session| {
        let library = session.library(None)?;
        let bar = wait.then(|| {
            progress::spinner(
                format!("snapshotting {server}"),
                progress::enabled(global.json),
            )
        });
        let result = library
            .snapshot_server(server, &SnapshotOptions::new().wait(wait))
            .await;
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        Ok(result?)
    })
    .await?;

    if global.json {
        print_json(&image)
    } else {
        print_text(&image_table(std::slice::from_ref(&image)))
    }
}
