//! Errors of the command-line program and their exit codes.

use std::error::Error as StdError;
use std::path::PathBuf;

use brightbox_api::Error as ApiError;
use brightbox_ftp::FtpError;
use brightbox_library::{LibraryError, TransportError};

/// Exit codes, as listed in `--help`. Code 2 comes from clap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExitStatus {
    /// An API, network, FTPS or file system operation failed.
    Failure = 1,
    /// Credentials are missing, rejected or misconfigured, or the API
    /// refused the operation to these credentials (HTTP 403).
    Authentication = 3,
    /// The account, image, server or a local file named on the command line
    /// does not exist.
    NotFound = 4,
    /// A bad id, architecture, file or other value.
    InvalidInput = 5,
}

impl ExitStatus {
    /// Returns the process exit code.
    pub(crate) fn code(self) -> u8 {
        self as u8
    }
}

/// Failure of one command.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum CliError {
    /// A command-line value, such as an image id or an architecture, is
    /// rejected by the parser of its type. The message names the value and
    /// the expected form.
    #[error("{0}")]
    InvalidValue(#[source] Box<dyn StdError + Send + Sync>),
    /// A command-line value is invalid, and `reason` states what is expected.
    #[error("invalid {kind} {value:?}: {reason}")]
    InvalidInput {
        /// Kind of value, such as `image id`.
        kind: &'static str,
        /// The rejected value.
        value: String,
        /// Reason it is invalid, and the value to pass instead.
        reason: String,
    },
    /// A local file named on the command line cannot be read.
    #[error("cannot read {purpose} {}", path.display())]
    ReadFile {
        /// Purpose of the file, such as `user data file`.
        purpose: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A local file named on the command line does not exist.
    #[error("{purpose} {} does not exist", path.display())]
    MissingFile {
        /// Purpose of the file, such as `image file`.
        purpose: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// The FTPS CA certificate file named by `--ftp-ca-file` or
    /// `BRIGHTBOX_FTP_CA_FILE` does not exist.
    #[error(
        "CA certificate file {} (--ftp-ca-file or BRIGHTBOX_FTP_CA_FILE) does not exist",
        path.display()
    )]
    MissingCaFile {
        /// The file.
        path: PathBuf,
    },
    /// An image or server named on the command line does not exist; a
    /// lookup after the API rejected the request showed it.
    #[error("{resource} does not exist")]
    NotFound {
        /// The resource, such as `image img-zzzzz`.
        resource: String,
        /// How to find a valid id.
        hint: &'static str,
    },
    /// The credentials reach several accounts and none was chosen.
    #[error(
        "the API credentials give access to several accounts ({}); choose one with --account or BRIGHTBOX_ACCOUNT",
        accounts.join(", ")
    )]
    AmbiguousAccount {
        /// Ids of the accounts the credentials reach.
        accounts: Vec<String>,
    },
    /// The API client cannot be configured from flags, environment or config file.
    #[error("loading the API credentials failed")]
    Credentials(#[source] ApiError),
    /// The in-process emulator did not start.
    #[error("starting the local emulator failed")]
    Emulator(#[source] brightbox_emulator::EmulatorError),
    /// An API call failed.
    #[error("{action} failed")]
    Api {
        /// The operation, such as `destroying image img-3ikco`.
        action: String,
        /// The API error.
        #[source]
        source: ApiError,
    },
    /// A library workflow failed.
    #[error("{0}")]
    Library(#[source] LibraryError),
    /// An FTPS operation of a segmented download failed.
    #[error("{action} failed")]
    Ftp {
        /// The operation, such as `downloading images/img-3ikco`.
        action: String,
        /// The FTPS error.
        #[source]
        source: Box<FtpError>,
    },
    /// An image cannot be downloaded in its current status.
    #[error(
        "image {image_id} is {status}, so it cannot be downloaded yet; wait until it is available"
    )]
    ImageNotReady {
        /// The image.
        image_id: brightbox_api::ImageId,
        /// Its status.
        status: brightbox_api::ImageStatus,
    },
    /// A transport for image files cannot be set up.
    #[error("{action} failed")]
    Transport {
        /// The operation, such as `connecting to Orbit`.
        action: String,
        /// The transport error.
        #[source]
        source: brightbox_library::TransportError,
    },
    /// Writing to stdout failed, for example because the pipe closed.
    #[error("writing the output failed")]
    Output(#[source] std::io::Error),
}

/// Rewrites library errors whose fix names a library call into errors whose
/// fix names the command-line option.
impl From<LibraryError> for CliError {
    fn from(error: LibraryError) -> CliError {
        match error {
            LibraryError::InvalidRemoteName { name, reason } => CliError::InvalidInput {
                kind: "remote file name",
                value: name,
                reason: format!(
                    "{reason}; pass --remote-name with a name of letters, digits and -_+.~^"
                ),
            },
            LibraryError::InvalidDownloadPath { path, .. } if path.is_file() => {
                CliError::InvalidInput {
                    kind: "download path",
                    value: path.display().to_string(),
                    reason: "the file exists; remove it or pass --overwrite".to_owned(),
                }
            }
            LibraryError::InvalidServerSpec {
                field,
                value,
                source,
            } if matches!(*source, ApiError::InvalidRequest { .. }) => {
                let reason = match *source {
                    ApiError::InvalidRequest { reason, .. } => reason,
                    other => other.to_string(),
                };
                CliError::InvalidInput {
                    kind: if field == "zone" { "--zone" } else { "--type" },
                    value,
                    reason,
                }
            }
            LibraryError::AmbiguousAccount { accounts } => CliError::AmbiguousAccount { accounts },
            other => CliError::Library(other),
        }
    }
}

impl CliError {
    /// Wraps an API error with the operation that failed.
    pub(crate) fn api(action: impl Into<String>) -> impl FnOnce(ApiError) -> CliError {
        let action = action.into();
        move |source| CliError::Api { action, source }
    }

    /// Returns the exit code of the first error in the chain that has a
    /// specific one, or [`ExitStatus::Failure`].
    pub(crate) fn exit_status(&self) -> ExitStatus {
        chain(self)
            .find_map(classify)
            .unwrap_or(ExitStatus::Failure)
    }

    /// Returns what to do next, for errors whose message does not say it.
    pub(crate) fn fix(&self) -> Option<String> {
        chain(self).find_map(fix_for)
    }

    /// Rewrites the parts of `line`, the rendered error chain, that name a
    /// Rust library call as a fix, so that each fix names an option or
    /// command of this program.
    pub(crate) fn rewrite_library_fixes(&self, mut line: String) -> String {
        for error in chain(self) {
            if let Some(FtpError::UntrustedCertificate { fix, .. }) = as_ftp_error(error) {
                // `fix_for` adds the --ftp-ca-file fix in its place.
                line = line.replace(&format!(": {fix}"), "");
            }
            if let Some(ApiError::FtpServiceRetired { .. }) = error.downcast_ref::<ApiError>() {
                line = line.replace(
                    RETIRED_FTP_LIBRARY_FIX,
                    "upload with --route orbit, or register the image from an HTTP URL \
                     with `brightbox images register --http-url URL`",
                );
            }
        }
        line
    }
}

/// Fix that the API crate's retired-FTP error names, in library terms.
const RETIRED_FTP_LIBRARY_FIX: &str =
    "register images from an HTTP URL with ImageSource::HttpUrl (`http_url`) instead";

/// Iterates over `error` and its sources, outermost first.
fn chain<'a>(
    error: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(error), |current: &&'a (dyn StdError + 'static)| {
        (*current).source()
    })
}

fn classify(error: &(dyn StdError + 'static)) -> Option<ExitStatus> {
    if let Some(error) = error.downcast_ref::<CliError>() {
        return match error {
            CliError::AmbiguousAccount { .. } => Some(ExitStatus::Authentication),
            CliError::MissingFile { .. }
            | CliError::MissingCaFile { .. }
            | CliError::NotFound { .. } => Some(ExitStatus::NotFound),
            CliError::ReadFile { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                Some(ExitStatus::NotFound)
            }
            CliError::InvalidValue(_)
            | CliError::InvalidInput { .. }
            | CliError::ReadFile { .. } => Some(ExitStatus::InvalidInput),
            _ => None,
        };
    }
    if let Some(error) = error.downcast_ref::<LibraryError>() {
        return match error {
            LibraryError::InvalidImageFile { .. }
            | LibraryError::InvalidRemoteName { .. }
            | LibraryError::InvalidSpec { .. }
            | LibraryError::InvalidRootCertificate(_)
            | LibraryError::InvalidDownloadPath { .. }
            | LibraryError::InvalidServerSpec { .. } => Some(ExitStatus::InvalidInput),
            LibraryError::NoAccount | LibraryError::AmbiguousAccount { .. } => {
                Some(ExitStatus::Authentication)
            }
            _ => None,
        };
    }
    if let Some(error) = error.downcast_ref::<ApiError>() {
        return match error {
            ApiError::MissingCredentials { .. }
            | ApiError::Config { .. }
            | ApiError::Unauthenticated(_)
            | ApiError::TwoFactorRequired { .. }
            | ApiError::Forbidden(_) => Some(ExitStatus::Authentication),
            ApiError::NotFound { .. } => Some(ExitStatus::NotFound),
            ApiError::Validation(_)
            | ApiError::InvalidId(_)
            | ApiError::InvalidRequest { .. }
            | ApiError::InvalidBaseUrl { .. } => Some(ExitStatus::InvalidInput),
            _ => None,
        };
    }
    if let Some(error) = as_ftp_error(error) {
        return match error {
            FtpError::LoginRejected { .. } => Some(ExitStatus::Authentication),
            FtpError::NotFound { .. } => Some(ExitStatus::NotFound),
            FtpError::InvalidOption { .. }
            | FtpError::InvalidHost { .. }
            | FtpError::InvalidCertificatePem { .. } => Some(ExitStatus::InvalidInput),
            _ => None,
        };
    }
    None
}

/// Returns the FTP error that `error` is, boxes or that a transport error wraps.
/// `TransportError::Ftp` displays its FTP error transparently, so the FTP
/// error itself does not appear among the sources.
fn as_ftp_error<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a FtpError> {
    if let Some(TransportError::Ftp(inner)) = error.downcast_ref::<TransportError>() {
        return Some(inner);
    }
    // A boxed FTP error is a source of its own type.
    if let Some(inner) = error.downcast_ref::<Box<FtpError>>() {
        return Some(inner);
    }
    error.downcast_ref::<FtpError>()
}

/// Fix for a stale emulator environment: the variables outlive the emulator
/// that printed them.
const STALE_EMULATOR_FIX: &str = "if an emulator printed these settings, it may have stopped: \
     start it again with `cargo run -p brightbox-emulator` and export the BRIGHTBOX_* lines it prints, \
     or unset the BRIGHTBOX_* variables to use a local emulator in this process";

fn fix_for(error: &(dyn StdError + 'static)) -> Option<String> {
    match error.downcast_ref::<CliError>() {
        Some(CliError::ReadFile { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            return Some("check the path".to_owned());
        }
        Some(CliError::ReadFile { .. }) => {
            return Some("check the path and the file's permissions".to_owned());
        }
        Some(CliError::MissingFile { .. }) => return Some("check the path".to_owned()),
        Some(CliError::MissingCaFile { .. }) => return Some(STALE_EMULATOR_FIX.to_owned()),
        Some(CliError::NotFound { hint, .. }) => return Some((*hint).to_owned()),
        _ => {}
    }
    if let Some(ApiError::Transport { source, .. }) = error.downcast_ref::<ApiError>()
        && source.is_connect()
    {
        return Some(format!(
            "check --api-url (BRIGHTBOX_API_URL); {STALE_EMULATOR_FIX}"
        ));
    }
    if let Some(ApiError::NotFound { resource, .. }) = error.downcast_ref::<ApiError>() {
        let listing = if resource.starts_with("image") {
            "`brightbox images list` shows the image ids"
        } else if resource.starts_with("account") {
            "`brightbox accounts list` shows the account ids"
        } else {
            "check the id"
        };
        return Some(listing.to_owned());
    }
    if let Some(ApiError::TwoFactorRequired { .. }) = error.downcast_ref::<ApiError>() {
        return Some(
            "set BRIGHTBOX_OTP to the current code, or run in a terminal to be asked for it"
                .to_owned(),
        );
    }
    if let Some(FtpError::UntrustedCertificate { .. }) = as_ftp_error(error) {
        return Some(
            "pass the FTPS server's CA certificate with --ftp-ca-file or BRIGHTBOX_FTP_CA_FILE"
                .to_owned(),
        );
    }
    None
}
