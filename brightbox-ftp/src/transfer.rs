//! Opening data connections, with the `EPSV` to `PASV` fallback, and small transfer helpers.

use std::hash::BuildHasher;
use std::time::Duration;

use suppaftp::tokio::AsyncDataStream;
use suppaftp::{Mode, Status};
use tokio::io::AsyncReadExt;
use tracing::{debug, warn};

use crate::client::{CLEANUP_TIMEOUT, FtpsClient, Transfer};
use crate::error::{Channel, FtpError};

/// Largest listing the client reads, so that a broken server cannot exhaust memory.
const MAX_LISTING_BYTES: usize = 64 * 1024 * 1024;

/// A command that opens a data connection.
#[derive(Debug, Clone)]
pub(crate) enum DataCommand {
    /// `RETR path`.
    Retr(String),
    /// `STOR path`.
    Stor(String),
    /// `APPE path`.
    Appe(String),
    /// A listing command line such as `MLSD incoming`.
    Listing(String),
}

impl DataCommand {
    /// Returns the command line as sent, without `REST`.
    pub(crate) fn line(&self) -> String {
        match self {
            DataCommand::Retr(path) => format!("RETR {path}"),
            DataCommand::Stor(path) => format!("STOR {path}"),
            DataCommand::Appe(path) => format!("APPE {path}"),
            DataCommand::Listing(line) => line.clone(),
        }
    }
}

impl FtpsClient {
    /// Opens the data connection for `command`, sending `REST offset` first when `offset` is
    /// not 0.
    ///
    /// When the session uses `EPSV` on IPv4 and the server replies `500` or `502`, the session
    /// switches to `PASV` and tries once more.
    pub(crate) async fn open_data(
        &mut self,
        command: &DataCommand,
        offset: u64,
    ) -> Result<Transfer, FtpError> {
        match self.open_data_once(command, offset).await {
            Err(error)
                if matches!(error.reply_code(), Some(500 | 502))
                    && self.epsv_fallback_allowed() =>
            {
                warn!(
                    %error,
                    "the server rejected EPSV or the command after it; retrying with PASV"
                );
                self.ftp.set_mode(Mode::Passive);
                self.extended_passive = false;
                self.ftp
                    .set_passive_nat_workaround(!self.config.use_passive_address);
                let retried = self.open_data_once(command, offset).await;
                if let Err(again) = &retried
                    && matches!(again.reply_code(), Some(500 | 502))
                {
                    // PASV did not help, so the command itself (or its REST) was rejected and
                    // EPSV works. Keep using EPSV.
                    debug!(%again, "the same rejection with PASV; keeping EPSV");
                    self.ftp.set_mode(Mode::ExtendedPassive);
                    self.extended_passive = true;
                }
                retried
            }
            other => other,
        }
    }

    fn epsv_fallback_allowed(&self) -> bool {
        // On IPv6, PASV cannot carry the address, so there is nothing to fall back to.
        !self.peer_ipv6 && self.extended_passive
    }

    async fn open_data_once(
        &mut self,
        command: &DataCommand,
        offset: u64,
    ) -> Result<Transfer, FtpError> {
        let line = command.line();
        let what = if offset > 0 {
            format!("opening the data connection for REST {offset} + {line}")
        } else {
            format!("opening the data connection for {line}")
        };
        let offset_usize = usize::try_from(offset).map_err(|_| FtpError::InvalidOption {
            name: "resume offset".to_owned(),
            value: offset.to_string(),
            reason: "the offset does not fit in this platform's usize".to_owned(),
        })?;
        let context = &self.context;
        let ftp = &mut self.ftp;
        let opened = context
            .bounded(&what, async {
                ftp.resume_transfer(offset_usize)
                    .await
                    .map_err(|error| context.map_error(error, Channel::Control, "REST"))?;
                let result = match command {
                    DataCommand::Retr(path) => ftp.retr_as_stream(path).await,
                    DataCommand::Stor(path) => ftp.put_with_stream(path).await,
                    DataCommand::Appe(path) => ftp.append_with_stream(path).await,
                    DataCommand::Listing(line) => ftp
                        .custom_data_command(line, &[Status::AboutToSend, Status::AlreadyOpen])
                        .await
                        .map(|(_, transfer)| transfer),
                };
                result.map_err(|error| context.map_error(error, Channel::Data, &line))
            })
            .await;
        match opened {
            Ok(mut transfer) => {
                if let AsyncDataStream::Ssl(stream) = transfer.get_mut() {
                    stream.open_records_on_read();
                }
                Ok(transfer)
            }
            Err(error) => Err(context.explain_data_failure(ftp, error, &line).await),
        }
    }

    /// Runs a listing command and returns the raw bytes the server sent.
    pub(crate) async fn read_listing(&mut self, line: String) -> Result<Vec<u8>, FtpError> {
        let command = DataCommand::Listing(line.clone());
        let mut transfer = self.open_data(&command, 0).await?;
        let mut bytes = Vec::new();
        let mut buffer = vec![0_u8; 64 * 1024];
        let read_what = format!("reading the data connection of {line}");
        loop {
            let read = self
                .context
                .bounded(&read_what, async {
                    transfer
                        .read(&mut buffer)
                        .await
                        .map_err(|source| FtpError::Network {
                            host: self.context.host.clone(),
                            channel: Channel::Data,
                            operation: line.clone(),
                            source,
                        })
                })
                .await;
            match read {
                Ok(0) => break,
                Ok(count) => {
                    bytes.extend_from_slice(buffer.get(..count).unwrap_or_default());
                    if bytes.len() > MAX_LISTING_BYTES {
                        let error = FtpError::Protocol {
                            host: self.context.host.clone(),
                            operation: line.clone(),
                            message: format!(
                                "the listing is longer than {MAX_LISTING_BYTES} bytes"
                            ),
                        };
                        return Err(self.abandon(transfer, error, &line).await);
                    }
                }
                Err(error) => return Err(self.abandon(transfer, error, &line).await),
            }
        }
        let context = &self.context;
        context
            .bounded(&format!("waiting for the final reply to {line}"), async {
                transfer
                    .finish()
                    .await
                    .map_err(|error| context.map_error(error, Channel::Data, &line))
            })
            .await?;
        Ok(bytes)
    }

    /// Closes a failed transfer's data connection and returns the most telling error.
    ///
    /// After a local failure (the file or writer, not the network) the control connection is
    /// still up, and the replies to the transfer and its `ABOR` are read here, so that the
    /// session's next command gets its own reply.
    pub(crate) async fn abandon(
        &mut self,
        transfer: Transfer,
        error: FtpError,
        command: &str,
    ) -> FtpError {
        let local = matches!(error, FtpError::Stream { .. } | FtpError::Io { .. });
        let error = self
            .context
            .abandon_transfer(&mut self.ftp, transfer, error, command)
            .await;
        if local && let Err(reconnect_error) = self.recover_after_abort().await {
            debug!(%reconnect_error, "reconnect after a local failure failed");
        }
        error
    }

    /// Deletes a partial upload, logging instead of failing, because the caller is already
    /// returning the error that made the upload fail.
    pub(crate) async fn discard_partial(&mut self, remote_path: &str) {
        let result = tokio::time::timeout(
            CLEANUP_TIMEOUT.min(self.context.io_timeout),
            self.ftp.rm(remote_path),
        )
        .await;
        match result {
            Ok(Ok(())) => debug!(remote_path, "deleted partial upload"),
            Ok(Err(error)) => {
                warn!(remote_path, %error, "failed to delete partial upload; delete it by hand");
            }
            Err(_) => {
                warn!(
                    remote_path,
                    "timed out deleting partial upload; delete it by hand"
                );
            }
        }
    }
}

/// Returns the delay before retry number `attempt` (1-based): 0.5 s doubled per attempt up to
/// 30 s, then scaled by a random factor from 0.5 to 1.5 so that clients do not retry in step.
pub(crate) fn backoff_delay(attempt: u32) -> Duration {
    let base_ms = 500_u64.saturating_mul(1_u64 << attempt.saturating_sub(1).min(6));
    let capped_ms = base_ms.min(30_000);
    let random = std::collections::hash_map::RandomState::new().hash_one(attempt);
    let factor_per_mille = 500 + random % 1001;
    Duration::from_millis(capped_ms * factor_per_mille / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_cap() {
        for attempt in 1..=12 {
            let delay = backoff_delay(attempt);
            let base = (500_u64 << (attempt - 1).min(6)).min(30_000);
            assert!(
                delay >= Duration::from_millis(base / 2),
                "attempt {attempt}: {delay:?}"
            );
            assert!(
                delay <= Duration::from_millis(base * 3 / 2),
                "attempt {attempt}: {delay:?}"
            );
        }
    }
}
