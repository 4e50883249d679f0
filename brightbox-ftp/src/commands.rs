//! Directory listings and file management: `MLSD`/`LIST`, `MDTM`, `DELE`, `RNFR`/`RNTO`, `MKD`.

use chrono::{DateTime, Utc};
use suppaftp::Status;
use tracing::{Instrument, debug, info_span};

use crate::client::{FtpsClient, reply_parts};
use crate::error::{Channel, FtpError};
use crate::listing::{RemoteEntry, decode_lines, parse_list, parse_mlsd, parse_timeval};
use crate::names::validate_remote_dir;

impl FtpsClient {
    /// Lists `remote_dir` with names, kinds, sizes and modification times.
    ///
    /// The client uses `MLSD` when the server's `FEAT` lists it, and `LIST` otherwise. `LIST`
    /// lines are parsed in the Unix (`ls -l`) and MS-DOS forms. Lines in neither form are
    /// skipped with a warning, and names that are not valid UTF-8 are decoded lossily with a
    /// warning. The `.` and `..` entries are left
    /// out. An empty `remote_dir` lists the session's current directory.
    ///
    /// # Errors
    ///
    /// - [`FtpError::InvalidRemotePath`] when the path contains a control character.
    /// - [`FtpError::NotFound`] when the server replies `550` because the directory is missing.
    /// - [`FtpError::ServerReply`], [`FtpError::Network`], [`FtpError::TlsHandshake`],
    ///   [`FtpError::TlsSessionReuseRequired`] or [`FtpError::Timeout`] when a command or a
    ///   connection fails or stalls.
    pub async fn list(&mut self, remote_dir: &str) -> Result<Vec<RemoteEntry>, FtpError> {
        validate_remote_dir(remote_dir)?;
        // RFC 3659 servers announce MLST in FEAT; MLSD comes with it.
        let use_mlsd = self.features.has("MLSD") || self.features.has("MLST");
        let verb = if use_mlsd { "MLSD" } else { "LIST" };
        let line = if remote_dir.is_empty() {
            verb.to_owned()
        } else {
            format!("{verb} {remote_dir}")
        };
        let span = info_span!("ftps_list", host = %self.context.host, remote_dir, verb);
        let bytes = self.read_listing(line).instrument(span).await?;
        let lines = decode_lines(&bytes);
        let entries = if use_mlsd {
            parse_mlsd(&lines)
        } else {
            parse_list(&lines, Utc::now())
        };
        debug!(
            count = entries.len(),
            lines = lines.len(),
            remote_dir,
            "listed directory"
        );
        Ok(entries)
    }

    /// Returns the modification time of `remote_path` in UTC (`MDTM`).
    ///
    /// # Errors
    ///
    /// - [`FtpError::InvalidRemotePath`] when the path contains a control character.
    /// - [`FtpError::NotFound`] when the server replies `550`.
    /// - [`FtpError::Protocol`] when the reply contains no `YYYYMMDDHHMMSS` time.
    /// - [`FtpError::ServerReply`], [`FtpError::Network`] or [`FtpError::Timeout`] when the
    ///   command fails or stalls.
    pub async fn modified(&mut self, remote_path: &str) -> Result<DateTime<Utc>, FtpError> {
        validate_remote_dir(remote_path)?;
        let command = format!("MDTM {remote_path}");
        let context = &self.context;
        let ftp = &mut self.ftp;
        let response = context
            .bounded(&command, async {
                ftp.custom_command(&command, &[Status::File])
                    .await
                    .map_err(|error| context.map_error(error, Channel::Control, &command))
            })
            .await?;
        let (_, text) = reply_parts(&response);
        parse_timeval(text.trim()).ok_or_else(|| FtpError::Protocol {
            host: context.host.clone(),
            operation: command,
            message: format!("expected a time as YYYYMMDDHHMMSS, got {text:?}"),
        })
    }

    /// Deletes the remote file `remote_path` (`DELE`).
    ///
    /// # Errors
    ///
    /// - [`FtpError::InvalidRemotePath`] when the path contains a control character.
    /// - [`FtpError::NotFound`] or [`FtpError::PermissionDenied`] when the server replies `550`.
    /// - [`FtpError::ServerReply`], [`FtpError::Network`] or [`FtpError::Timeout`] when the
    ///   command fails or stalls.
    pub async fn delete(&mut self, remote_path: &str) -> Result<(), FtpError> {
        validate_remote_dir(remote_path)?;
        let command = format!("DELE {remote_path}");
        let context = &self.context;
        let ftp = &mut self.ftp;
        context
            .bounded(&command, async {
                ftp.rm(remote_path)
                    .await
                    .map_err(|error| context.map_error(error, Channel::Control, &command))
            })
            .await
    }

    /// Renames `from` to `to` (`RNFR` and `RNTO`). Most servers replace an existing `to`.
    ///
    /// # Errors
    ///
    /// - [`FtpError::InvalidRemotePath`] when a path contains a control character.
    /// - [`FtpError::NotFound`] when `from` does not exist, and [`FtpError::PermissionDenied`]
    ///   when the server does not allow the change.
    /// - [`FtpError::ServerReply`], [`FtpError::Network`] or [`FtpError::Timeout`] when a
    ///   command fails or stalls.
    pub async fn rename(&mut self, from: &str, to: &str) -> Result<(), FtpError> {
        validate_remote_dir(from)?;
        validate_remote_dir(to)?;
        let command = format!("RNFR {from} / RNTO {to}");
        let context = &self.context;
        let ftp = &mut self.ftp;
        context
            .bounded(&command, async {
                ftp.rename(from, to)
                    .await
                    .map_err(|error| context.map_error(error, Channel::Control, &command))
            })
            .await
    }

    /// Creates the remote directory `remote_dir` (`MKD`). Parent directories must exist.
    ///
    /// # Errors
    ///
    /// - [`FtpError::InvalidRemotePath`] when the path is empty or contains a control character.
    /// - [`FtpError::PermissionDenied`] when the server replies `550` or `553`, which also
    ///   covers a directory that already exists.
    /// - [`FtpError::ServerReply`], [`FtpError::Network`] or [`FtpError::Timeout`] when the
    ///   command fails or stalls.
    pub async fn mkdir(&mut self, remote_dir: &str) -> Result<(), FtpError> {
        validate_remote_dir(remote_dir)?;
        if remote_dir.trim().is_empty() {
            return Err(FtpError::InvalidRemotePath {
                path: remote_dir.to_owned(),
                reason: "the directory name is empty; pass the path to create".to_owned(),
            });
        }
        let command = format!("MKD {remote_dir}");
        let context = &self.context;
        let ftp = &mut self.ftp;
        context
            .bounded(&command, async {
                ftp.mkdir(remote_dir)
                    .await
                    .map_err(|error| context.map_error(error, Channel::Control, &command))
            })
            .await
    }
}
