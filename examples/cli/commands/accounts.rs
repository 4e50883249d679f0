//! `brightbox accounts list` and `brightbox accounts reset-ftp-password`.

use brightbox_api::AccountId;
use brightbox_api::secrecy::ExposeSecret;
use brightbox_examples::{account_table, detail_view};

use super::{parse, with_session};
use crate::args::{AccountsCommand, GlobalOptions};
use crate::error::CliError;
use crate::output::{print_json, print_text};

/// Runs an `accounts` subcommand.
pub(crate) async fn run(global: &GlobalOptions, command: AccountsCommand) -> Result<(), CliError> {
    match command {
        AccountsCommand::List => list(global).await,
        AccountsCommand::ResetFtpPassword { account } => {
            let account: AccountId = parse(&account)?;
            reset_ftp_password(global, &account).await
        }
    }
}

async fn list(global: &GlobalOptions) -> Result<(), CliError> {
    let accounts = with_session(global, async |session| {
        session
            .api
            .accounts()
            .list()
            .await
            .map_err(CliError::api("listing the accounts"))
    })
    .await?;
    if global.json {
        print_json(&accounts)
    } else if accounts.is_empty() {
        eprintln!("No accounts are visible to these credentials.");
        Ok(())
    } else {
        print_text(&account_table(&accounts))
    }
}

/// Resets the password and prints it once, as the Brightbox CLI does. The
/// password goes to stdout only, never to a log.
async fn reset_ftp_password(global: &GlobalOptions, id: &AccountId) -> Result<(), CliError> {
    if !global.json {
        eprintln!("Resetting ftp password for {id}");
    }
    let (account, credentials) = with_session(global, async |session| {
        let accounts = session.api.accounts();
        let credentials = accounts
            .reset_ftp_password(id)
            .await
            .map_err(CliError::api(format!("resetting the FTP password of {id}")))?;
        let account = accounts
            .get(id)
            .await
            .map_err(CliError::api(format!("getting account {id}")))?;
        Ok((account, credentials))
    })
    .await?;

    let name = account.name.clone().unwrap_or_default();
    let password = credentials.password.expose_secret();
    if global.json {
        print_json(&serde_json::json!({
            "id": account.id,
            "name": name,
            "library_ftp_host": credentials.host,
            "library_ftp_user": credentials.user,
            "library_ftp_password": password,
        }))
    } else {
        print_text(&detail_view(&[
            ("id", account.id.to_string()),
            ("name", name),
            ("library_ftp_host", credentials.host.clone()),
            ("library_ftp_user", credentials.user.clone()),
            ("library_ftp_password", password.to_owned()),
        ]))
    }
}
