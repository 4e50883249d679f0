//! Runs the Brightbox image library emulator until Ctrl-C.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use brightbox_emulator::{Emulator, EmulatorConfig, USER_NAME, USER_OTP_CODE, USER_PASSWORD};
use clap::Parser;

/// A local Brightbox image library: an API subset and an explicit-FTPS server on 127.0.0.1.
#[derive(Debug, Parser)]
#[command(name = "brightbox-emulator", version)]
struct Args {
    /// Storage folder holding incoming/ and images/ (created if missing). Default: a
    /// temporary folder removed at exit.
    #[arg(long, value_name = "DIR")]
    storage: Option<PathBuf>,

    /// State folder that keeps image and server records, credentials and the TLS
    /// certificates across restarts (created if missing, mode 0700). Must be outside the
    /// storage folder and needs --storage. Default: nothing is kept.
    #[arg(long, value_name = "DIR", requires = "storage")]
    state: Option<PathBuf>,

    /// API port on 127.0.0.1; 0 picks a free port.
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    api_port: u16,

    /// FTPS control port on 127.0.0.1; 0 picks a free port.
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    ftp_port: u16,

    /// Make the FTP password reset routes return 410 Gone, as Brightbox does since it
    /// retired the library FTP service in 2023. The FTPS server still runs.
    #[arg(long)]
    ftp_retired: bool,

    /// Time a new image or server stays `creating` (and a deleted server stays
    /// `deleting`), in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 500)]
    registration_delay_ms: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour codes help a terminal but garble redirected logs.
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    let args = Args::parse();
    let mut config = EmulatorConfig::default()
        .api_port(args.api_port)
        .ftp_port(args.ftp_port)
        .registration_delay(Duration::from_millis(args.registration_delay_ms))
        .ftp_retired(args.ftp_retired);
    if let Some(storage) = args.storage {
        config = config.storage_dir(storage);
    }
    if let Some(state) = args.state {
        config = config.state_dir(state);
    }

    let emulator = match Emulator::start_with(config).await {
        Ok(emulator) => emulator,
        Err(error) => {
            eprintln!("error: {}", error_chain(&error));
            return ExitCode::FAILURE;
        }
    };

    println!("BRIGHTBOX_API_URL={}", emulator.api_url());
    println!("BRIGHTBOX_CLIENT_ID={}", emulator.client_id());
    println!("BRIGHTBOX_CLIENT_SECRET={}", emulator.client_secret());
    println!("BRIGHTBOX_ACCOUNT={}", emulator.account_id());
    println!("BRIGHTBOX_ORBIT_URL={}", emulator.orbit_url());
    println!("BRIGHTBOX_FTP_ADDR={}", emulator.ftp_addr());
    println!(
        "BRIGHTBOX_FTP_CA_FILE={}",
        emulator.ca_certificate_path().display()
    );
    println!("BRIGHTBOX_STORAGE={}", emulator.storage_dir().display());
    // Stderr, so that exporting stdout keeps one credential pair: the API client.
    eprintln!(
        "User login with two-factor authentication: BRIGHTBOX_USERNAME={USER_NAME} \
         BRIGHTBOX_PASSWORD={USER_PASSWORD} BRIGHTBOX_OTP={USER_OTP_CODE} (unset BRIGHTBOX_CLIENT_ID to use it)"
    );
    eprintln!("Press Ctrl-C to stop.");

    let status = match tokio::signal::ctrl_c().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: failed to wait for Ctrl-C: {error}");
            ExitCode::FAILURE
        }
    };
    emulator.shutdown().await;
    status
}

/// Formats an error with its sources, outermost first.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
