//! Command-line syntax: the global options and every subcommand.
//!
//! The doc comments here are also clap's help text, which prints URLs as written.
#![allow(rustdoc::bare_urls)]

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

/// Text printed after `--help`: where credentials come from and the exit codes.
const AFTER_HELP: &str = "\
Credentials, first match wins:
  1. --client-id and --client-secret, or BRIGHTBOX_CLIENT_ID and BRIGHTBOX_CLIENT_SECRET;
  2. BRIGHTBOX_USERNAME and BRIGHTBOX_PASSWORD (user login; BRIGHTBOX_OTP or a prompt gives the two-factor code);
  3. the Brightbox CLI config file (--config, default ~/.brightbox/config), section --client;
  4. none: a local emulator starts in this process and its state ends with the command.
     For a persistent one, run `cargo run -p brightbox-emulator` and export the BRIGHTBOX_* lines it prints.

Exit codes:
  0  success
  1  failure: an API, network, FTPS or file system operation failed
  2  usage: unknown subcommand or option, missing argument, conflicting options
  3  authentication or permission: credentials missing, rejected or misconfigured,
     or the API refused the operation to these credentials (HTTP 403)
  4  not found: the account, image, server or local file (image, user data, CA certificate)
     does not exist
  5  invalid input: a bad id, architecture, file content or value

Logs go to stderr at the level RUST_LOG sets, such as RUST_LOG=info (default: none).";

/// Manage the Brightbox image library: upload and register images, list, download
/// and destroy them, build servers and snapshot them.
#[derive(Debug, Parser)]
#[command(name = "brightbox", version, after_help = AFTER_HELP)]
pub(crate) struct Cli {
    /// Options accepted before or after the subcommand.
    #[command(flatten)]
    pub(crate) global: GlobalOptions,
    /// The subcommand to run.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options shared by every subcommand. `Debug` output hides the client secret.
#[derive(Clone, Args)]
#[command(next_help_heading = "Global options")]
pub(crate) struct GlobalOptions {
    /// Print one JSON document on stdout instead of tables and messages.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// API base URL [default: https://api.gb1.brightbox.com/].
    #[arg(long, env = "BRIGHTBOX_API_URL", global = true, value_name = "URL")]
    pub(crate) api_url: Option<String>,
    /// API client id (cli-xxxxx).
    #[arg(long, env = "BRIGHTBOX_CLIENT_ID", global = true, value_name = "ID")]
    pub(crate) client_id: Option<String>,
    /// API client secret, used with --client-id. Prefer the variable: other local users can
    /// read a command line.
    #[arg(
        long,
        env = "BRIGHTBOX_CLIENT_SECRET",
        hide_env_values = true,
        global = true,
        value_name = "SECRET"
    )]
    pub(crate) client_secret: Option<String>,
    /// Account to act on (acc-xxxxx). Default: the credentials' only account.
    #[arg(long, env = "BRIGHTBOX_ACCOUNT", global = true, value_name = "ACCOUNT")]
    pub(crate) account: Option<String>,
    /// Brightbox CLI config file [default: ~/.brightbox/config].
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Section of the config file to use. Default: its default_client.
    #[arg(long, global = true, value_name = "NAME")]
    pub(crate) client: Option<String>,
    /// PEM file with an extra CA certificate to trust for the library FTPS server.
    #[arg(
        long,
        env = "BRIGHTBOX_FTP_CA_FILE",
        global = true,
        value_name = "FILE"
    )]
    pub(crate) ftp_ca_file: Option<PathBuf>,
    /// Pause between the first two status polls while waiting, in milliseconds. Later pauses
    /// double up to 10 s [default: 2000, or 200 with the in-process emulator].
    #[arg(
        long,
        env = "BRIGHTBOX_POLL_INTERVAL_MS",
        global = true,
        value_name = "MS"
    )]
    pub(crate) poll_interval_ms: Option<u64>,
    /// Maximum time to wait for an image or server, in seconds.
    #[arg(long, global = true, default_value_t = 1800, value_name = "SECONDS")]
    pub(crate) wait_timeout: u64,
}

impl std::fmt::Debug for GlobalOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlobalOptions")
            .field("json", &self.json)
            .field("api_url", &self.api_url)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[REDACTED]"),
            )
            .field("account", &self.account)
            .field("config", &self.config)
            .field("client", &self.client)
            .field("ftp_ca_file", &self.ftp_ca_file)
            .field("poll_interval_ms", &self.poll_interval_ms)
            .field("wait_timeout", &self.wait_timeout)
            .finish()
    }
}

/// The resource groups.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Accounts and their library FTP password.
    #[command(subcommand)]
    Accounts(AccountsCommand),
    /// Images in the library.
    #[command(subcommand)]
    Images(ImagesCommand),
    /// Servers built from images.
    #[command(subcommand)]
    Servers(ServersCommand),
}

/// `brightbox accounts ...`
#[derive(Debug, Subcommand)]
pub(crate) enum AccountsCommand {
    /// List the accounts the credentials reach.
    List,
    /// Set a new library FTP password and print it once. The previous password stops working.
    ResetFtpPassword {
        /// Account id (acc-xxxxx).
        account: String,
    },
}

/// Transfer route of an image file into the library.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Route {
    /// Upload over explicit FTPS into incoming/ and register the file name.
    Ftps,
    /// Stage the file in Orbit and register it by temp URL.
    Orbit,
}

/// `brightbox images ...`
#[derive(Debug, Subcommand)]
pub(crate) enum ImagesCommand {
    /// Upload a disk image (raw, qcow2, gzip), register it and wait until it is available.
    UploadAndRegister(UploadArgs),
    /// Register an image from a file already in incoming/, an HTTP URL, a server or a volume.
    Register(RegisterArgs),
    /// List images, optionally filtered.
    List(ListArgs),
    /// Show every field of one or more images.
    Show {
        /// Image ids (img-xxxxx).
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Download an image's file from the library over FTPS.
    Download(DownloadArgs),
    /// Delete an image.
    Destroy {
        /// Image id (img-xxxxx).
        id: String,
    },
}

/// Options of `images upload-and-register`.
#[derive(Debug, Args)]
pub(crate) struct UploadArgs {
    /// Local disk image file.
    pub(crate) path: PathBuf,
    /// Architecture: x86_64 or i686.
    #[arg(long, short = 'a', default_value = "x86_64")]
    pub(crate) arch: String,
    /// Image name [default: the file name].
    #[arg(long, short = 'n')]
    pub(crate) name: Option<String>,
    /// Free-text description.
    #[arg(long, short = 'd')]
    pub(crate) description: Option<String>,
    /// File name in the library [default: the local file name]. Letters, digits and -_+.~^ only.
    #[arg(long)]
    pub(crate) remote_name: Option<String>,
    /// Transfer route. Only --route orbit uses Orbit; --orbit-url alone does not select it.
    #[arg(long, value_enum, default_value_t = Route::Ftps)]
    pub(crate) route: Route,
    /// Orbit storage URL of the account, such as https://orbit.brightbox.com/v1/acc-xxxxx/,
    /// used with --route orbit. The emulator's is used when it runs in this process.
    #[arg(long, env = "BRIGHTBOX_ORBIT_URL", value_name = "URL")]
    pub(crate) orbit_url: Option<String>,
}

/// Options of `images register`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("image_source").required(true).args(["source", "http_url", "server", "volume"])))]
pub(crate) struct RegisterArgs {
    /// File name already uploaded to incoming/.
    #[arg(long, short = 's', value_name = "FILE")]
    pub(crate) source: Option<String>,
    /// HTTP or HTTPS URL the API fetches the image from.
    #[arg(long, value_name = "URL")]
    pub(crate) http_url: Option<String>,
    /// Server to snapshot (srv-xxxxx).
    #[arg(long, value_name = "ID")]
    pub(crate) server: Option<String>,
    /// Volume to snapshot (vol-xxxxx).
    #[arg(long, value_name = "ID")]
    pub(crate) volume: Option<String>,
    /// Architecture: x86_64 or i686.
    #[arg(long, short = 'a', default_value = "x86_64")]
    pub(crate) arch: String,
    /// Image name [default: the source].
    #[arg(long, short = 'n')]
    pub(crate) name: Option<String>,
    /// Free-text description.
    #[arg(long, short = 'd')]
    pub(crate) description: Option<String>,
    /// Wait until the image is available.
    #[arg(long)]
    pub(crate) wait: bool,
}

/// Options of `images list`; every filter given must match.
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Only images of the account in use.
    #[arg(long)]
    pub(crate) mine: bool,
    /// Only images owned by this account (acc-xxxxx).
    #[arg(long, value_name = "ACCOUNT")]
    pub(crate) owner: Option<String>,
    /// Only images in this status: creating, available, deprecated, unavailable, deleting,
    /// deleted or failed.
    #[arg(long)]
    pub(crate) status: Option<String>,
    /// Only images of this architecture: x86_64 or i686.
    #[arg(long)]
    pub(crate) arch: Option<String>,
    /// Only images whose name matches this glob (* and ?), such as "ubuntu-*".
    #[arg(long, value_name = "GLOB")]
    pub(crate) name: Option<String>,
    /// Only public images.
    #[arg(long)]
    pub(crate) public: bool,
    /// Only official Brightbox images.
    #[arg(long)]
    pub(crate) official: bool,
    /// Only images of this origin: upload or snapshot.
    #[arg(long, value_name = "TYPE")]
    pub(crate) source_type: Option<String>,
    /// Only images with this default login user.
    #[arg(long)]
    pub(crate) username: Option<String>,
    /// Only the most recently created usable match (by created_at, never by name).
    #[arg(long)]
    pub(crate) latest: bool,
}

/// Options of `images download`.
#[derive(Debug, Args)]
pub(crate) struct DownloadArgs {
    /// Image id (img-xxxxx).
    pub(crate) id: String,
    /// Local file to write; it must not exist yet unless --overwrite is given.
    pub(crate) path: PathBuf,
    /// Replace the local file if it exists.
    #[arg(long)]
    pub(crate) overwrite: bool,
    /// Number of FTPS connections, each fetching one byte range (1 to 16).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub(crate) segments: usize,
}

/// `brightbox servers ...`
#[derive(Debug, Subcommand)]
pub(crate) enum ServersCommand {
    /// Build a server from an image.
    Create(CreateServerArgs),
    /// Snapshot a server's disk into a new image and print the image.
    Snapshot {
        /// Server id (srv-xxxxx).
        server: String,
        /// Wait until the snapshot image is available.
        #[arg(long)]
        wait: bool,
    },
}

/// Options of `servers create`.
#[derive(Debug, Args)]
pub(crate) struct CreateServerArgs {
    /// Image id (img-xxxxx).
    pub(crate) image: String,
    /// Server type handle or id, such as 1gb.ssd or typ-xxxxx [default: the API's].
    #[arg(long, short = 't', value_name = "TYPE")]
    pub(crate) r#type: Option<String>,
    /// Zone handle or id, such as gb1-a or zon-xxxxx [default: the API's].
    #[arg(long, short = 'z')]
    pub(crate) zone: Option<String>,
    /// Server name.
    #[arg(long, short = 'n')]
    pub(crate) name: Option<String>,
    /// File whose contents are passed to the server as user data, such as a cloud-init
    /// document (at most 64 KiB once base64-encoded).
    #[arg(long, value_name = "FILE")]
    pub(crate) user_data_file: Option<PathBuf>,
    /// Wait until the server is active.
    #[arg(long)]
    pub(crate) wait: bool,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Cli;

    #[test]
    fn debug_output_hides_client_secret() {
        let cli = Cli::try_parse_from([
            "brightbox",
            "--client-id",
            "cli-abcde",
            "--client-secret",
            "very-secret-value",
            "accounts",
            "list",
        ])
        .expect("valid command line");
        let debug = format!("{cli:?}");
        assert!(debug.contains("cli-abcde"), "{debug}");
        assert!(debug.contains("[REDACTED]"), "{debug}");
        assert!(!debug.contains("very-secret-value"), "{debug}");
    }

    #[test]
    fn command_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
