//! Uploads a disk image to the Brightbox image library over FTPS, registers
//! it, waits until it is available and prints it as a table row.
//!
//! With `BRIGHTBOX_CLIENT_ID` and `BRIGHTBOX_CLIENT_SECRET` set, it talks to
//! the API at `BRIGHTBOX_API_URL` (default `https://api.gb1.brightbox.com/`).
//! Without them it starts the local emulator in this process, so it runs
//! offline. Without a path it writes a small qcow2 disk image and uploads
//! that.
//!
//! The route is FTPS unless `--route orbit` (or `--orbit`) is given; then it
//! stages the image in Orbit at `--orbit-url` (`BRIGHTBOX_ORBIT_URL`, or the
//! in-process emulator's Orbit) and registers it by temp URL. Setting the
//! Orbit URL alone does not change the route. The route taken is printed on
//! stderr.
//!
//! ```text
//! cargo run --release -p brightbox-examples --example upload_and_register -- [PATH] [--route orbit]
//! ```

use std::error::Error;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use brightbox_api::{AccountId, Arch, Client};
use brightbox_emulator::Emulator;
use brightbox_examples::{error_chain, image_table, write_sample_qcow2};
use brightbox_ftp::FtpError;
use brightbox_library::{ImageSpec, JobEvent, Library, OrbitTransport, TransportError, preflight};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};

/// Command-line options.
#[derive(Debug, Parser)]
#[command(
    about = "Upload a disk image over FTPS (or Orbit with --route orbit) and register it in the Brightbox image library"
)]
struct Options {
    /// Disk image to upload (raw, qcow2 or gzip). Without it a small qcow2 is written and used.
    path: Option<PathBuf>,
    /// Name of the image; defaults to the file name.
    #[arg(long)]
    name: Option<String>,
    /// Architecture: x86_64 or i686.
    #[arg(long, default_value = "x86_64")]
    arch: Arch,
    /// Description of the image.
    #[arg(long)]
    description: Option<String>,
    /// File name to upload and register as; defaults to the local file name.
    /// Letters, digits and -_+.~^ only.
    #[arg(long)]
    remote_name: Option<String>,
    /// API client id (cli-xxxxx). Without it the local emulator is used.
    #[arg(long, env = "BRIGHTBOX_CLIENT_ID")]
    client_id: Option<String>,
    /// API client secret.
    #[arg(long, env = "BRIGHTBOX_CLIENT_SECRET", hide_env_values = true)]
    client_secret: Option<String>,
    /// API base URL.
    #[arg(long, env = "BRIGHTBOX_API_URL", default_value = brightbox_api::DEFAULT_BASE_URL)]
    api_url: String,
    /// Account to upload into (acc-xxxxx); defaults to the client's only account.
    #[arg(long, env = "BRIGHTBOX_ACCOUNT")]
    account_id: Option<AccountId>,
    /// PEM file with an extra CA to trust for the FTPS server; read only on the FTPS route.
    #[arg(long, env = "BRIGHTBOX_FTP_CA_FILE")]
    ftp_ca_file: Option<PathBuf>,
    /// Transfer route: ftps uploads into incoming/; orbit stages the image in
    /// Orbit and registers it by temp URL, the route of today's Brightbox.
    #[arg(long, value_enum, default_value_t = Route::Ftps)]
    route: Route,
    /// Same as --route orbit.
    #[arg(long)]
    orbit: bool,
    /// The account's Orbit storage URL, such as
    /// https://orbit.brightbox.com/v1/acc-xxxxx/, used with --route orbit.
    /// With the in-process emulator its own Orbit is used.
    #[arg(long, env = "BRIGHTBOX_ORBIT_URL")]
    orbit_url: Option<String>,
}

/// Transfer route of the image file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Route {
    /// Explicit FTPS into incoming/.
    Ftps,
    /// Orbit staging and a temp URL.
    Orbit,
}

/// Fix for a CA file that an emulator wrote and removed when it stopped.
const STALE_EMULATOR_FIX: &str = "if an emulator printed this setting, it may have stopped: \
     start it again and export the BRIGHTBOX_* lines it prints, or unset the BRIGHTBOX_* variables";

#[tokio::main]
async fn main() -> ExitCode {
    // suppaftp logs each FTP command, PASS included, at trace level, so its
    // target stays off whatever RUST_LOG sets.
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_owned());
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(format!("{filter},suppaftp=off"))
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,suppaftp=off")),
        )
        .with_writer(std::io::stderr)
        .init();

    match run(Options::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let mut line = error_chain(error.as_ref());
            // The FTPS error's own fix names a library call; the hint below
            // names the option instead.
            if let Some(fix) = untrusted_certificate_fix(error.as_ref()) {
                line = line.replace(&format!(": {fix}"), "");
            }
            eprintln!("error: {line}");
            if untrusted_certificate_fix(error.as_ref()).is_some() {
                eprintln!(
                    "hint: pass the FTPS server's CA certificate with --ftp-ca-file or BRIGHTBOX_FTP_CA_FILE"
                );
            }
            ExitCode::FAILURE
        }
    }
}

/// Returns the fix text of an untrusted FTPS server certificate error in
/// the chain, if there is one.
fn untrusted_certificate_fix<'a>(error: &'a (dyn Error + 'static)) -> Option<&'a str> {
    let mut current = Some(error);
    while let Some(cause) = current {
        if let Some(FtpError::UntrustedCertificate { fix, .. }) = cause.downcast_ref::<FtpError>() {
            return Some(fix);
        }
        if let Some(TransportError::Ftp(inner)) = cause.downcast_ref::<TransportError>()
            && let FtpError::UntrustedCertificate { fix, .. } = inner.as_ref()
        {
            return Some(fix);
        }
        current = cause.source();
    }
    None
}

/// Reads the CA file, naming the likely cause when it does not exist.
fn read_ca_file(path: &std::path::Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|error| {
        if error.kind() == std::io::ErrorKind::NotFound {
            format!(
                "CA file {} (--ftp-ca-file or BRIGHTBOX_FTP_CA_FILE) does not exist; {STALE_EMULATOR_FIX}",
                path.display()
            )
        } else {
            format!("cannot read CA file {}: {error}", path.display())
        }
    })
}

async fn run(options: Options) -> Result<(), Box<dyn Error>> {
    let scratch = tempfile::tempdir()?;
    let path = match &options.path {
        Some(path) => path.clone(),
        None => {
            let path = scratch.path().join("sample-disk.qcow2");
            let bytes = write_sample_qcow2(&path)?;
            eprintln!(
                "wrote a {bytes}-byte qcow2 disk image to {}",
                path.display()
            );
            path
        }
    };
    let name = match &options.name {
        Some(name) => name.clone(),
        None => path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| "image".to_owned()),
    };
    let mut spec = ImageSpec::new(name, options.arch.clone());
    if let Some(description) = &options.description {
        spec = spec.description(description.clone());
    }
    if let Some(remote_name) = &options.remote_name {
        spec = spec.remote_name(remote_name.clone());
    }
    // Check the file and the metadata before starting anything.
    let checked = preflight(&path, &spec).await?;
    eprintln!(
        "{}: {} image, {} bytes, uploading as {}",
        path.display(),
        checked.format,
        checked.bytes,
        checked.remote_name
    );

    let route = if options.orbit {
        Route::Orbit
    } else {
        options.route
    };
    let (library, emulator) = match &options.client_id {
        Some(client_id) => {
            let secret = options
                .client_secret
                .clone()
                .ok_or("BRIGHTBOX_CLIENT_SECRET is not set; set it with BRIGHTBOX_CLIENT_ID")?;
            let api = Client::builder()
                .base_url(&options.api_url)
                .client_credentials(client_id.clone(), secret)
                .build()?;
            let mut builder = Library::builder(api.clone());
            if route == Route::Orbit {
                let orbit_url = options.orbit_url.as_deref().ok_or(
                    "--route orbit needs the account's Orbit storage URL; pass --orbit-url or set BRIGHTBOX_ORBIT_URL",
                )?;
                let transport = OrbitTransport::from_api(&api, orbit_url.parse()?)?;
                builder = builder.transport(Arc::new(transport));
                eprintln!("route: Orbit at {orbit_url}");
            } else {
                eprintln!("route: FTPS");
            }
            if let Some(account) = &options.account_id {
                builder = builder.account_id(account.clone());
            }
            if let Some(ca) = options
                .ftp_ca_file
                .as_ref()
                .filter(|_| route == Route::Ftps)
            {
                let pem = read_ca_file(ca)?;
                builder = builder.add_root_certificate_pem(pem).map_err(|error| {
                    format!("invalid CA file {}: {}", ca.display(), error_chain(&error))
                })?;
            }
            (builder.build(), None)
        }
        None => {
            let ignored = [
                (
                    "--api-url",
                    options.api_url != brightbox_api::DEFAULT_BASE_URL,
                ),
                ("--account-id", options.account_id.is_some()),
                ("--ftp-ca-file", options.ftp_ca_file.is_some()),
            ];
            for (option, given) in ignored {
                if given {
                    eprintln!("warning: {option} is ignored without BRIGHTBOX_CLIENT_ID");
                }
            }
            let emulator = Emulator::start().await?;
            eprintln!(
                "no BRIGHTBOX_CLIENT_ID set: using the local emulator at {}",
                emulator.api_url()
            );
            let api = Client::builder()
                .base_url(emulator.api_url())
                .client_credentials(emulator.client_id(), emulator.client_secret().to_owned())
                .build()?;
            let mut builder = Library::builder(api.clone())
                .add_root_certificate_pem(emulator.ca_certificate_pem())?;
            if route == Route::Orbit {
                let orbit_url = emulator.orbit_url();
                let transport = OrbitTransport::from_api(&api, orbit_url.parse()?)?;
                builder = builder.transport(Arc::new(transport));
                eprintln!("route: Orbit at {orbit_url}");
            } else {
                eprintln!("route: FTPS");
            }
            (builder.build(), Some(emulator))
        }
    };

    let bar = ProgressBar::new(checked.bytes).with_style(
        ProgressStyle::with_template(
            "{msg:>12} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
        )?
        .progress_chars("=> "),
    );
    bar.set_message("uploading");
    let on_event = |event: &JobEvent| match event {
        JobEvent::Uploading { bytes_sent, .. } => bar.set_position(*bytes_sent),
        JobEvent::Registering { .. } => bar.set_message("registering"),
        JobEvent::Waiting { status, .. } => bar.set_message(status.to_string()),
        _ => {}
    };
    let result = library
        .upload_and_register_with_events(&path, &spec, &on_event)
        .await;
    bar.finish_and_clear();
    let image = result?;
    print!("{}", image_table(std::slice::from_ref(&image)));

    if let Some(emulator) = emulator {
        emulator.shutdown().await;
    }
    Ok(())
}
