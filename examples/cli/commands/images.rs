//! The `brightbox images` subcommands.

use std::path::Path;
use std::sync::Arc;

use brightbox_api::url::Url;
use brightbox_api::{
    AccountId, Image, ImageFilter, ImageId, ImageSource, ImageStatus, NamePattern, RegisterImage,
    ServerId, SourceType, VolumeId,
};
use brightbox_examples::{detail_view, image_details, image_table};
use brightbox_ftp::{DownloadOptions, FtpsClient, FtpsConfig, MAX_SEGMENTS, ProgressSink};
use brightbox_library::{
    DownloadImageOptions, IMAGES_DIR, ImageSpec, JobEvent, OrbitTransport, Transport, preflight,
};
use serde::Serialize;

use super::{parse, parse_arch, with_session};
use crate::args::{
    DownloadArgs, GlobalOptions, ImagesCommand, ListArgs, RegisterArgs, Route, UploadArgs,
};
use crate::connect::Session;
use crate::error::CliError;
use crate::output::{print_json, print_text};
use crate::progress;

/// Statuses accepted by `images list --status`.
const STATUSES: [&str; 7] = [
    "creating",
    "available",
    "deprecated",
    "unavailable",
    "deleting",
    "deleted",
    "failed",
];

/// Runs an `images` subcommand.
pub(crate) async fn run(global: &GlobalOptions, command: ImagesCommand) -> Result<(), CliError> {
    match command {
        ImagesCommand::UploadAndRegister(args) => upload_and_register(global, args).await,
        ImagesCommand::Register(args) => register(global, args).await,
        ImagesCommand::List(args) => list(global, args).await,
        ImagesCommand::Show { ids } => show(global, &ids).await,
        ImagesCommand::Download(args) => download(global, args).await,
        ImagesCommand::Destroy { id } => destroy(global, &parse(&id)?).await,
    }
}

async fn upload_and_register(global: &GlobalOptions, args: UploadArgs) -> Result<(), CliError> {
    let arch = parse_arch(&args.arch)?;
    let name = match &args.name {
        Some(name) => name.clone(),
        None => file_name(&args.path),
    };
    let mut spec = ImageSpec::new(name, arch);
    if let Some(description) = &args.description {
        spec = spec.description(description.clone());
    }
    if let Some(remote_name) = &args.remote_name {
        spec = spec.remote_name(remote_name.clone());
    }
    if let Err(error) = std::fs::metadata(&args.path)
        && error.kind() == std::io::ErrorKind::NotFound
    {
        return Err(CliError::MissingFile {
            purpose: "image file",
            path: args.path.clone(),
        });
    }
    // Check the file and the metadata before connecting, so bad input
    // starts nothing and registers nothing.
    let checked = preflight(&args.path, &spec).await?;
    if !global.json {
        eprintln!(
            "{}: {} image, {} bytes, uploading as {}",
            args.path.display(),
            checked.format,
            checked.bytes,
            checked.remote_name
        );
    }

    let image = with_session(global, async |session| {
        let transport = match args.route {
            Route::Ftps => None,
            Route::Orbit => Some(orbit_transport(session, args.orbit_url.as_deref())?),
        };
        let library = session.library(transport, args.route == Route::Ftps)?;
        let bar = progress::bytes_bar(checked.bytes, "uploading", progress::enabled(global.json));
        let on_event = |event: &JobEvent| match event {
            JobEvent::Uploading { bytes_sent, .. } => bar.set_position(*bytes_sent),
            JobEvent::Registering { .. } => bar.set_message("registering"),
            JobEvent::Waiting { status, .. } => bar.set_message(status.to_string()),
            _ => {}
        };
        let result = library
            .upload_and_register_with_events(&args.path, &spec, &on_event)
            .await;
        bar.finish_and_clear();
        Ok(result?)
    })
    .await?;
    print_image(global, &image)
}

/// Builds the Orbit transport from `--orbit-url`, or from the in-process
/// emulator's Orbit when there is none.
fn orbit_transport(
    session: &Session,
    orbit_url: Option<&str>,
) -> Result<Arc<dyn Transport>, CliError> {
    let url = match (orbit_url, &session.emulator) {
        (Some(url), _) => url.to_owned(),
        (None, Some(emulator)) => emulator.orbit_url(),
        (None, None) => {
            return Err(CliError::InvalidInput {
                kind: "--route",
                value: "orbit".to_owned(),
                reason:
                    "the Orbit storage URL is missing; pass --orbit-url or set BRIGHTBOX_ORBIT_URL"
                        .to_owned(),
            });
        }
    };
    let url: Url = url.parse().map_err(|error| CliError::InvalidInput {
        kind: "Orbit URL",
        value: url.clone(),
        reason: format!("{error}; pass a URL such as https://orbit.brightbox.com/v1/acc-xxxxx/"),
    })?;
    let transport =
        OrbitTransport::from_api(&session.api, url).map_err(|source| CliError::Transport {
            action: "setting up the Orbit transport".to_owned(),
            source,
        })?;
    Ok(Arc::new(transport))
}

/// Returns the last component of `path`, or `image` when it has none.
fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".to_owned())
}

async fn register(global: &GlobalOptions, args: RegisterArgs) -> Result<(), CliError> {
    let arch = parse_arch(&args.arch)?;
    // clap's argument group makes exactly one source present.
    let (source, default_name) = if let Some(file) = &args.source {
        (ImageSource::FtpUpload(file.clone()), file.clone())
    } else if let Some(url) = &args.http_url {
        let parsed: Url = url.parse().map_err(|error| CliError::InvalidInput {
            kind: "--http-url",
            value: url.clone(),
            reason: format!("{error}; pass an absolute http:// or https:// URL"),
        })?;
        let name = parsed
            .path_segments()
            .and_then(|mut segments| segments.next_back())
            .filter(|segment| !segment.is_empty())
            .unwrap_or("image")
            .to_owned();
        (ImageSource::HttpUrl(parsed), name)
    } else if let Some(server) = &args.server {
        let server: ServerId = parse(server)?;
        let name = format!("Snapshot of {server}");
        (ImageSource::Server(server), name)
    } else if let Some(volume) = &args.volume {
        let volume: VolumeId = parse(volume)?;
        let name = format!("Snapshot of {volume}");
        (ImageSource::Volume(volume), name)
    } else {
        return Err(CliError::InvalidInput {
            kind: "image source",
            value: String::new(),
            reason: "pass one of --source, --http-url, --server or --volume".to_owned(),
        });
    };
    let name = args.name.clone().unwrap_or(default_name);
    let mut request = RegisterImage::new(name.clone(), arch, source);
    if let Some(description) = &args.description {
        request = request.description(description.clone());
    }

    let image = with_session(global, async |session| {
        let images = session.api.images();
        let image = images
            .register(&request)
            .await
            .map_err(CliError::api(format!("registering image {name:?}")))?;
        if !args.wait {
            return Ok(image);
        }
        let bar = progress::spinner(
            format!("waiting for {}", image.id),
            progress::enabled(global.json),
        );
        let result = images
            .wait_until_available_with_progress(&image.id, &session.wait, |poll| {
                bar.set_message(format!("{} is {}", poll.current.id, poll.current.status));
            })
            .await;
        bar.finish_and_clear();
        result.map_err(CliError::api(format!("waiting for image {}", image.id)))
    })
    .await?;
    print_image(global, &image)
}

/// Builds the image filter from the `images list` options.
fn list_filter(args: &ListArgs) -> Result<ImageFilter, CliError> {
    let mut filter = ImageFilter::new().mine_only(args.mine);
    if let Some(owner) = &args.owner {
        filter = filter.owner(parse::<AccountId>(owner)?);
    }
    if let Some(status) = &args.status {
        if !STATUSES.contains(&status.as_str()) {
            return Err(CliError::InvalidInput {
                kind: "--status",
                value: status.clone(),
                reason: format!("expected one of {}", STATUSES.join(", ")),
            });
        }
        filter = filter.status(ImageStatus::from(status.as_str()));
    }
    if let Some(arch) = &args.arch {
        filter = filter.arch(parse_arch(arch)?);
    }
    if let Some(name) = &args.name {
        filter = filter.name(NamePattern::Glob(name.clone()));
    }
    if args.public {
        filter = filter.public(true);
    }
    if args.official {
        filter = filter.official(true);
    }
    if let Some(source_type) = &args.source_type {
        if !matches!(source_type.as_str(), "upload" | "snapshot") {
            return Err(CliError::InvalidInput {
                kind: "--source-type",
                value: source_type.clone(),
                reason: "expected upload or snapshot".to_owned(),
            });
        }
        filter = filter.source_type(SourceType::from(source_type.as_str()));
    }
    if let Some(username) = &args.username {
        filter = filter.username(username.clone());
    }
    Ok(filter)
}

async fn list(global: &GlobalOptions, args: ListArgs) -> Result<(), CliError> {
    let filter = list_filter(&args)?;
    let images = with_session(global, async |session| {
        let images = session.api.images();
        if args.latest {
            let latest = images
                .most_recent(&filter)
                .await
                .map_err(CliError::api("finding the latest image"))?;
            Ok(latest.into_iter().collect())
        } else {
            images
                .list_filtered(&filter)
                .await
                .map_err(CliError::api("listing the images"))
        }
    })
    .await?;
    print_images(global, &images)
}

async fn show(global: &GlobalOptions, ids: &[String]) -> Result<(), CliError> {
    let ids = ids
        .iter()
        .map(|id| parse::<ImageId>(id))
        .collect::<Result<Vec<_>, _>>()?;
    let images = with_session(global, async |session| {
        let mut images = Vec::with_capacity(ids.len());
        for id in &ids {
            let image = session
                .api
                .images()
                .get(id)
                .await
                .map_err(CliError::api(format!("getting image {id}")))?;
            images.push(image);
        }
        Ok(images)
    })
    .await?;

    if global.json {
        return print_json(&images);
    }
    let text: Vec<String> = images.iter().map(image_details).collect();
    print_text(&text.join("\n"))
}

/// JSON output of `images download`.
#[derive(Debug, Serialize)]
struct DownloadReport {
    image_id: ImageId,
    path: String,
    bytes: u64,
    format: String,
    sha256: String,
    resumed_from: u64,
}

async fn download(global: &GlobalOptions, args: DownloadArgs) -> Result<(), CliError> {
    let id: ImageId = parse(&args.id)?;
    if args.segments == 0 || args.segments > MAX_SEGMENTS {
        return Err(CliError::InvalidInput {
            kind: "--segments",
            value: args.segments.to_string(),
            reason: format!("use a number of connections from 1 to {MAX_SEGMENTS}"),
        });
    }
    if args.path.is_file() && !args.overwrite {
        return Err(CliError::InvalidInput {
            kind: "download path",
            value: args.path.display().to_string(),
            reason: "the file exists; remove it, choose another path or pass --overwrite"
                .to_owned(),
        });
    }
    let report = with_session(global, async |session| {
        if args.segments == 1 {
            download_one_connection(session, global.json, &id, &args.path, args.overwrite).await
        } else {
            download_segmented(
                session,
                global.json,
                &id,
                &args.path,
                args.segments,
                args.overwrite,
            )
            .await
        }
    })
    .await?;

    if global.json {
        print_json(&report)
    } else {
        print_text(&detail_view(&[
            ("id", report.image_id.to_string()),
            ("path", report.path.clone()),
            ("bytes", report.bytes.to_string()),
            ("format", report.format.clone()),
            ("sha256", report.sha256.clone()),
        ]))
    }
}

/// Downloads through the library workflow, which resumes a partial file.
async fn download_one_connection(
    session: &Session,
    json: bool,
    id: &ImageId,
    path: &Path,
    overwrite: bool,
) -> Result<DownloadReport, CliError> {
    let library = session.library(None, true)?;
    // The size is unknown until the transfer starts, so the bar grows its
    // length with the byte count.
    let bar = progress::bytes_bar(0, "downloading", progress::enabled(json));
    let on_bytes = |bytes: u64| {
        if bytes > bar.length().unwrap_or(0) {
            bar.set_length(bytes);
        }
        bar.set_position(bytes);
    };
    let result = library
        .download_image_with_progress(
            id,
            path,
            &DownloadImageOptions::new().overwrite(overwrite),
            Some(&on_bytes),
        )
        .await;
    bar.finish_and_clear();
    let downloaded = result?;
    Ok(DownloadReport {
        image_id: downloaded.image_id,
        path: downloaded.path.display().to_string(),
        bytes: downloaded.bytes,
        format: downloaded.format.to_string(),
        sha256: downloaded.sha256,
        resumed_from: downloaded.resumed_from,
    })
}

/// Downloads over `segments` FTPS connections, each fetching one byte range.
/// The library workflow uses one connection, so this path logs in with
/// brightbox-ftp directly, after a password reset of its own.
async fn download_segmented(
    session: &Session,
    json: bool,
    id: &ImageId,
    path: &Path,
    segments: usize,
    overwrite: bool,
) -> Result<DownloadReport, CliError> {
    if path.exists() && !(overwrite && path.is_file()) {
        return Err(CliError::InvalidInput {
            kind: "download path",
            value: path.display().to_string(),
            reason: "it exists and is not a file to replace; choose another path".to_owned(),
        });
    }
    let image: Image = session
        .api
        .images()
        .get(id)
        .await
        .map_err(CliError::api(format!("getting image {id}")))?;
    if !image.status.is_usable() {
        return Err(CliError::ImageNotReady {
            image_id: image.id,
            status: image.status,
        });
    }

    let accounts = session.api.accounts();
    let credentials = match &session.account {
        Some(account) => accounts.reset_ftp_password(account).await,
        None => accounts.reset_ftp_password_current().await,
    }
    .map_err(CliError::api("getting the library FTP credentials"))?;
    let ftp_error = |action: String| {
        move |source| CliError::Ftp {
            action,
            source: Box::new(source),
        }
    };
    let mut config =
        FtpsConfig::from_host_port(&credentials.host, credentials.user, credentials.password)
            .map_err(ftp_error("reading the library FTP host".to_owned()))?;
    for pem in &session.ftp_roots()? {
        config = config
            .add_root_certificate_pem(pem)
            .map_err(ftp_error("reading the FTPS CA certificate".to_owned()))?;
    }

    let bar = progress::bytes_bar(0, "downloading", progress::enabled(json));
    let sink_bar = bar.clone();
    let sink = ProgressSink::callback(move |report| {
        if let Some(total) = report.total {
            sink_bar.set_length(total);
        }
        sink_bar.set_position(report.bytes_done);
    });
    let remote = format!("{IMAGES_DIR}/{id}");
    if overwrite && path.is_file() {
        std::fs::remove_file(path).map_err(|error| CliError::InvalidInput {
            kind: "download path",
            value: path.display().to_string(),
            reason: format!("the existing file cannot be replaced ({error}); choose another path"),
        })?;
    }
    let result: Result<_, CliError> = async {
        let mut client = FtpsClient::connect(&config)
            .await
            .map_err(ftp_error(format!("connecting to {}", credentials.host)))?;
        let options = DownloadOptions::new().segments(segments).progress(sink);
        let download = client
            .download_file(&remote, path, &options)
            .await
            .map_err(ftp_error(format!(
                "downloading {remote} to {}",
                path.display()
            )))?;
        if let Err(error) = client.quit().await {
            tracing::debug!(%error, "FTPS QUIT failed after the download");
        }
        Ok(download)
    }
    .await;
    bar.finish_and_clear();
    let download = result?;
    Ok(DownloadReport {
        image_id: id.clone(),
        path: path.display().to_string(),
        bytes: download.bytes,
        format: download.format.to_string(),
        sha256: download.sha256,
        resumed_from: download.resumed_from,
    })
}

async fn destroy(global: &GlobalOptions, id: &ImageId) -> Result<(), CliError> {
    with_session(global, async |session| {
        session
            .api
            .images()
            .destroy(id)
            .await
            .map_err(CliError::api(format!("destroying image {id}")))
    })
    .await?;
    if global.json {
        print_json(&serde_json::json!({ "destroyed": id }))
    } else {
        print_text(&format!("Destroyed image {id}\n"))
    }
}

/// Prints one image as a one-row table, or as a JSON object with `--json`.
fn print_image(global: &GlobalOptions, image: &Image) -> Result<(), CliError> {
    if global.json {
        print_json(image)
    } else {
        print_text(&image_table(std::slice::from_ref(image)))
    }
}

/// Prints images as a table, or as a JSON array with `--json`. An empty
/// table is replaced by a line on stderr.
fn print_images(global: &GlobalOptions, images: &[Image]) -> Result<(), CliError> {
    if global.json {
        print_json(images)
    } else if images.is_empty() {
        eprintln!("No images match.");
        Ok(())
    } else {
        print_text(&image_table(images))
    }
}
