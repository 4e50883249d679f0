//! Accounts: the `/1.0/accounts` endpoints and the library FTP credentials.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::client::{Call, Client, decode};
use crate::error::{Error, Result};
use crate::id::AccountId;

open_string_enum!(
    /// Billing and access status of an account.
    AccountStatus, Unknown {
        /// Created, not yet activated.
        Pending => "pending",
        /// In normal use.
        Active => "active",
        /// Payment is overdue.
        Overdue => "overdue",
        /// A warning was issued to the account.
        Warning => "warning",
        /// Use is suspended.
        Suspended => "suspended",
        /// Terminated by Brightbox.
        Terminated => "terminated",
        /// Closed by its owner.
        Closed => "closed",
        /// Deleted.
        Deleted => "deleted",
    }
);
lossless_from_str!(AccountStatus);

/// Account as returned by `GET /1.0/accounts/{id}`.
///
/// Decoding ignores fields this crate does not know, and optional fields may be `null` or absent. RAM figures
/// are in MB. The `library_ftp_password` field of the API is never kept here; see
/// [`Accounts::reset_ftp_password`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Account {
    /// Account id.
    pub id: AccountId,
    /// Display name.
    pub name: Option<String>,
    /// Billing and access status.
    pub status: AccountStatus,
    /// RAM limit across all servers, in MB.
    pub ram_limit: Option<u64>,
    /// RAM used by servers, in MB.
    pub ram_used: Option<u64>,
    /// Number of servers.
    pub servers_used: Option<u64>,
    /// Maximum number of cloud IPs.
    pub cloud_ips_limit: Option<u64>,
    /// Number of cloud IPs in use.
    pub cloud_ips_used: Option<u64>,
    /// Block storage limit, in MB.
    pub block_storage_limit: Option<u64>,
    /// Block storage in use, in MB.
    pub block_storage_used: Option<u64>,
    /// Library FTP host name, possibly with `:port`; absent since Brightbox retired the FTP service in 2023.
    pub library_ftp_host: Option<String>,
    /// Library FTP user name, normally the account id.
    pub library_ftp_user: Option<String>,
    /// Creation time.
    pub created_at: Option<DateTime<Utc>>,
    /// API URL of the account.
    pub url: Option<String>,
}

/// Library FTP login returned by [`Accounts::reset_ftp_password`].
///
/// `Debug` shows the host and user but not the password.
#[derive(Debug, Clone)]
pub struct LibraryFtpCredentials {
    /// Host exactly as the API sent `library_ftp_host`: either `name` or `name:port`.
    pub host: String,
    /// User name, normally the account id.
    pub user: String,
    /// Password, valid until the next reset.
    pub password: SecretString,
}

impl LibraryFtpCredentials {
    /// Creates credentials from their parts, for example to reach a local FTP server.
    pub fn new(
        host: impl Into<String>,
        user: impl Into<String>,
        password: impl Into<SecretString>,
    ) -> Self {
        Self {
            host: host.into(),
            user: user.into(),
            password: password.into(),
        }
    }
}

/// Fields of the reset response needed for the credentials.
#[derive(Deserialize)]
pub(crate) struct ResetFtpPasswordReply {
    library_ftp_host: String,
    library_ftp_user: String,
    library_ftp_password: String,
}

/// Endpoints under `/1.0/accounts`, from [`Client::accounts`].
#[derive(Debug, Clone, Copy)]
pub struct Accounts<'a> {
    client: &'a Client,
}

impl<'a> Accounts<'a> {
    pub(crate) fn new(client: &'a Client) -> Self {
        Self { client }
    }

    /// Lists the accounts the credentials can reach; an API client reaches exactly one.
    ///
    /// # Errors
    ///
    /// Authentication errors ([`Error::Unauthenticated`], [`Error::TwoFactorRequired`]), the status errors
    /// ([`Error::Forbidden`], [`Error::Server`], [`Error::RateLimited`] and others) after retries,
    /// [`Error::Transport`] and [`Error::Decode`].
    #[tracing::instrument(name = "brightbox_api.accounts.list", skip_all)]
    pub async fn list(&self) -> Result<Vec<Account>> {
        let call = Call::get("1.0/accounts".to_owned(), "account list".to_owned());
        self.client.call_json(&call).await
    }

    /// Fetches one account.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the account does not exist or is not reachable, and the errors of
    /// [`Accounts::list`].
    #[tracing::instrument(name = "brightbox_api.accounts.get", skip_all, fields(account_id = %id))]
    pub async fn get(&self, id: &AccountId) -> Result<Account> {
        let call = Call::get(format!("1.0/accounts/{id}"), format!("account {id}"));
        self.client.call_json(&call).await
    }

    /// Fetches the account the credentials act on (`GET /1.0/account`): the API client's account, or the one
    /// selected with [`ClientBuilder::account_id`](crate::ClientBuilder::account_id).
    ///
    /// # Errors
    ///
    /// The errors of [`Accounts::list`].
    #[tracing::instrument(name = "brightbox_api.accounts.current", skip_all)]
    pub async fn current(&self) -> Result<Account> {
        let call = Call::get("1.0/account".to_owned(), "current account".to_owned());
        self.client.call_json(&call).await
    }

    /// Sets a new random library FTP password and returns the login (`POST /1.0/accounts/{id}/reset_ftp_password`).
    ///
    /// Each call invalidates the previous password, so share the result instead of calling this per upload. The
    /// request is resent only when the connection could not be opened or the server returned 429.
    ///
    /// # Errors
    ///
    /// - [`Error::FtpServiceRetired`] when the API returns 410 Gone, which Brightbox does since it retired the
    ///   library FTP service in 2023. Register images with [`ImageSource::HttpUrl`](crate::ImageSource::HttpUrl)
    ///   instead.
    /// - [`Error::Decode`] when the response lacks `library_ftp_host`, `library_ftp_user` or
    ///   `library_ftp_password`.
    /// - [`Error::NotFound`] and the errors of [`Accounts::list`].
    #[tracing::instrument(name = "brightbox_api.accounts.reset_ftp_password", skip_all, fields(account_id = %id))]
    pub async fn reset_ftp_password(&self, id: &AccountId) -> Result<LibraryFtpCredentials> {
        let call = Call::post(
            format!("1.0/accounts/{id}/reset_ftp_password"),
            format!("account {id}"),
            None,
        );
        self.reset(&call, Some(id)).await
    }

    /// Resets the library FTP password of the current account (`POST /1.0/account/reset_ftp_password`).
    ///
    /// # Errors
    ///
    /// The errors of [`Accounts::reset_ftp_password`].
    #[tracing::instrument(name = "brightbox_api.accounts.reset_ftp_password_current", skip_all)]
    pub async fn reset_ftp_password_current(&self) -> Result<LibraryFtpCredentials> {
        let call = Call::post(
            "1.0/account/reset_ftp_password".to_owned(),
            "current account".to_owned(),
            None,
        );
        self.reset(&call, None).await
    }

    async fn reset(&self, call: &Call, id: Option<&AccountId>) -> Result<LibraryFtpCredentials> {
        let reply = match self.client.execute(call).await {
            Ok(reply) => reply,
            Err(Error::Gone(api)) => {
                tracing::warn!(
                    account_id = id.map(AccountId::as_str),
                    request_id = api.request_id.as_deref(),
                    "reset_ftp_password returned 410 Gone: the library FTP service is retired"
                );
                return Err(Error::FtpServiceRetired {
                    account: id.cloned(),
                    api,
                });
            }
            Err(error) => return Err(error),
        };

        let fields: ResetFtpPasswordReply = decode(&call.method, &reply.path, &reply.body)?;
        tracing::info!(host = %fields.library_ftp_host, user = %fields.library_ftp_user, "reset the library FTP password");
        Ok(LibraryFtpCredentials {
            host: fields.library_ftp_host,
            user: fields.library_ftp_user,
            password: SecretString::from(fields.library_ftp_password),
        })
    }
}
