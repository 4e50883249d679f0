//! `brightbox servers create` and `brightbox servers snapshot`.

use brightbox_api::{Error as ApiError, ImageId, ServerId};
use brightbox_examples::{image_table, server_table};
use brightbox_library::{LibraryError, ServerSpec, SnapshotOptions};

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
        let data = std::fs::read(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                CliError::MissingFile {
                    purpose: "user data file",
                    path: path.clone(),
                }
            } else {
                CliError::ReadFile {
                    purpose: "user data file",
                    path: path.clone(),
                    source,
                }
            }
        })?;
        spec = spec.user_data(data);
    }

    let server = with_session(global, async |session| {
        let library = session.library(None, false)?;
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
        match result {
            Ok(server) => Ok(server),
            Err(error @ LibraryError::CreateServer { .. }) if rejected(&error) => {
                if missing(session.api.images().get(&image).await) {
                    return Err(CliError::NotFound {
                        resource: format!("image {image}"),
                        hint: "`brightbox images list` shows the image ids",
                    });
                }
                Err(error.into())
            }
            Err(error) => Err(error.into()),
        }
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
        let library = session.library(None, false)?;
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
        match result {
            Ok(image) => Ok(image),
            Err(error @ LibraryError::Snapshot { .. }) if rejected(&error) => {
                if missing(session.api.servers().get(server).await) {
                    return Err(CliError::NotFound {
                        resource: format!("server {server}"),
                        hint: "check the server id (srv-xxxxx) in the output of `brightbox servers create`",
                    });
                }
                Err(error.into())
            }
            Err(error) => Err(error.into()),
        }
    })
    .await?;

    if global.json {
        print_json(&image)
    } else {
        print_text(&image_table(std::slice::from_ref(&image)))
    }
}

/// Returns whether the API rejected the request body (HTTP 400 or 422),
/// which is how it answers a request that names a missing image or server.
fn rejected(error: &LibraryError) -> bool {
    matches!(
        error,
        LibraryError::CreateServer {
            source: ApiError::Validation(_),
            ..
        } | LibraryError::Snapshot {
            source: ApiError::Validation(_),
            ..
        }
    )
}

/// Returns whether a lookup answered 404.
fn missing<T>(lookup: Result<T, ApiError>) -> bool {
    matches!(lookup, Err(ApiError::NotFound { .. }))
}
