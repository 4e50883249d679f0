//! OAuth 2.0 grants (client credentials, password, refresh token), two-factor codes and the access token cache.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::Method;
use reqwest::header::{ACCEPT, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;
use tracing::Instrument;

use crate::client::{Inner, api_error, decode, header_string, otp_required};
use crate::error::{Error, Result, is_retryable_status};
use crate::id::{AppId, ClientId};
use crate::retry::parse_retry_after;

/// Maximum margin by which a token is renewed before it expires.
const MAX_RENEWAL_MARGIN: Duration = Duration::from_secs(60);

/// Maximum token lifetime taken from `expires_in`. Larger values are clamped so that instant arithmetic cannot overflow.
const MAX_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);

/// Request header that carries a two-factor code to the token endpoint.
const OTP_REQUEST_HEADER: &str = "X-Brightbox-OTP";

/// Credentials the client authenticates with.
pub(crate) enum Grant {
    /// API client (`cli-…`) and secret; the token endpoint returns no refresh token.
    ClientCredentials {
        client_id: ClientId,
        secret: SecretString,
    },
    /// User login and password, sent with an OAuth application's id and secret.
    Password {
        username: String,
        password: SecretString,
        app_id: AppId,
        app_secret: SecretString,
    },
}

impl Grant {
    /// Returns the id sent as the HTTP Basic user name: the API client id or the application id.
    pub(crate) fn basic_user(&self) -> &str {
        match self {
            Grant::ClientCredentials { client_id, .. } => client_id.as_str(),
            Grant::Password { app_id, .. } => app_id.as_str(),
        }
    }

    fn basic_secret(&self) -> &SecretString {
        match self {
            Grant::ClientCredentials { secret, .. } => secret,
            Grant::Password { app_secret, .. } => app_secret,
        }
    }

    /// Returns the name of the grant type, as sent in `grant_type`.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Grant::ClientCredentials { .. } => "client_credentials",
            Grant::Password { .. } => "password",
        }
    }
}

type OtpFuture = Pin<Box<dyn Future<Output = Option<SecretString>> + Send>>;

/// Caller-supplied source of two-factor codes.
#[derive(Clone)]
pub(crate) struct OtpCallback(Arc<dyn Fn() -> OtpFuture + Send + Sync>);

impl OtpCallback {
    pub(crate) fn new(callback: Arc<dyn Fn() -> OtpFuture + Send + Sync>) -> Self {
        Self(callback)
    }
}

impl fmt::Debug for OtpCallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OtpCallback")
    }
}

/// Access token with the instant after which it is renewed, and the refresh token that came with it.
pub(crate) struct CachedToken {
    access_token: SecretString,
    /// `None` when the token endpoint sent no `expires_in`; such a token is renewed only after a 401.
    renew_at: Option<Instant>,
    /// Set when the API rejected the access token; the refresh token may still be good.
    rejected: bool,
    refresh_token: Option<SecretString>,
}

impl CachedToken {
    fn is_fresh(&self, now: Instant) -> bool {
        !self.rejected && self.renew_at.is_none_or(|renew_at| now < renew_at)
    }
}

/// Returns how long before expiry a token with this lifetime is renewed: 10 % of the lifetime, at most 60 s.
pub(crate) fn renewal_margin(lifetime: Duration) -> Duration {
    (lifetime / 10).min(MAX_RENEWAL_MARGIN)
}

#[derive(serde::Deserialize)]
pub(crate) struct TokenResponse {
    access_token: String,
    expires_in: Option<u64>,
    refresh_token: Option<String>,
}

/// `error` field of an OAuth 2.0 error body, used to spot `invalid_token`.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct OAuthErrorBody {
    pub(crate) error: Option<String>,
}

impl OAuthErrorBody {
    /// Parses the body, or returns empty fields when it is not such a document.
    pub(crate) fn parse(body: &[u8]) -> Self {
        serde_json::from_slice(body).unwrap_or_default()
    }
}

/// Form body of one token request.
enum TokenForm<'a> {
    Primary,
    Refresh(&'a SecretString),
}

impl Inner {
    /// Returns a valid access token, requesting a new one when none is cached or the cached one is due for renewal.
    ///
    /// The cache lock is held during the token request, so callers racing here send one request between them (and
    /// run the two-factor callback once).
    pub(crate) async fn access_token(&self) -> Result<SecretString> {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| t.is_fresh(Instant::now())) {
            return Ok(token.access_token.clone());
        }

        let refresh_token = cached.as_ref().and_then(|t| t.refresh_token.clone());
        let token = self.obtain_token(refresh_token).await?;
        let access_token = token.access_token.clone();
        *cached = Some(token);
        Ok(access_token)
    }

    /// Marks the cached token as rejected if it is still the token `rejected`, so that the next call renews it.
    ///
    /// A token already replaced by another task stays in place. The refresh token is kept for the renewal.
    pub(crate) async fn invalidate_token(&self, rejected: &SecretString) {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_mut()
            && token.access_token.expose_secret() == rejected.expose_secret()
        {
            token.rejected = true;
        }
    }

    /// Gets a new token with the refresh token when there is one. Without one, or when the server rejects it,
    /// it uses the configured grant and asks the two-factor callback for a code when the server requires one.
    async fn obtain_token(&self, refresh_token: Option<SecretString>) -> Result<CachedToken> {
        if let Some(refresh_token) = refresh_token {
            match self
                .token_request(TokenForm::Refresh(&refresh_token), None)
                .await
            {
                Ok(token) => return Ok(token),
                Err(Error::Unauthenticated(api)) => {
                    tracing::info!(
                        status = api.status,
                        error = api.oauth_error.as_deref(),
                        "the refresh token was rejected; falling back to the {} grant",
                        self.grant.kind()
                    );
                }
                Err(error) => return Err(error),
            }
        }

        match self.token_request(TokenForm::Primary, None).await {
            Err(Error::TwoFactorRequired { request_id, .. }) => {
                let Some(callback) = &self.otp else {
                    return Err(Error::TwoFactorRequired {
                        code_rejected: false,
                        request_id,
                    });
                };
                tracing::info!(
                    "the token endpoint requires a two-factor code; asking the callback"
                );
                let Some(code) = (callback.0)().await else {
                    return Err(Error::TwoFactorRequired {
                        code_rejected: false,
                        request_id,
                    });
                };
                match self.token_request(TokenForm::Primary, Some(&code)).await {
                    Err(Error::TwoFactorRequired { request_id, .. }) => {
                        Err(Error::TwoFactorRequired {
                            code_rejected: true,
                            request_id,
                        })
                    }
                    other => other,
                }
            }
            other => other,
        }
    }

    /// Sends one grant to the token endpoint, retrying HTTP 429/502/503/504 and connection failures.
    async fn token_request(
        &self,
        form: TokenForm<'_>,
        otp: Option<&SecretString>,
    ) -> Result<CachedToken> {
        let url = self.token_url.clone();
        let path = url.path().to_owned();
        let grant_type = match form {
            TokenForm::Primary => self.grant.kind(),
            TokenForm::Refresh(_) => "refresh_token",
        };
        let span = tracing::debug_span!(
            "brightbox_api.token",
            grant_type,
            request_id = tracing::field::Empty
        );
        self.token_attempts(&form, otp, url, path, grant_type)
            .instrument(span)
            .await
    }

    async fn token_attempts(
        &self,
        form: &TokenForm<'_>,
        otp: Option<&SecretString>,
        url: url::Url,
        path: String,
        grant_type: &'static str,
    ) -> Result<CachedToken> {
        let max_attempts = self.retry.max_attempts.max(1);
        let first_started = Instant::now();
        let mut attempt = 0u32;

        loop {
            attempt += 1;
            let started = Instant::now();
            let mut fields: Vec<(&str, &str)> = vec![("grant_type", grant_type)];
            match (form, &self.grant) {
                (TokenForm::Refresh(token), _) => {
                    fields.push(("refresh_token", token.expose_secret()));
                }
                (
                    TokenForm::Primary,
                    Grant::Password {
                        username, password, ..
                    },
                ) => {
                    fields.push(("username", username));
                    fields.push(("password", password.expose_secret()));
                }
                (TokenForm::Primary, Grant::ClientCredentials { .. }) => {}
            }
            let mut request = self
                .http
                .post(url.clone())
                .basic_auth(
                    self.grant.basic_user(),
                    Some(self.grant.basic_secret().expose_secret()),
                )
                .header(ACCEPT, "application/json")
                .form(&fields);
            if let Some(code) = otp {
                match HeaderValue::from_str(code.expose_secret().trim()) {
                    Ok(mut value) => {
                        value.set_sensitive(true);
                        request = request.header(OTP_REQUEST_HEADER, value);
                    }
                    Err(_) => {
                        return Err(Error::InvalidRequest {
                            field: "X-Brightbox-OTP",
                            value: "[two-factor code withheld]".to_owned(),
                            reason: "the two-factor code contains characters that cannot be sent in an HTTP header; return only the digits".to_owned(),
                        });
                    }
                }
            }

            let outcome = match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let headers = response.headers().clone();
                    response.bytes().await.map(|body| (status, headers, body))
                }
                Err(error) => Err(error),
            };
            let (status, headers, body) = match outcome {
                Ok(parts) => parts,
                Err(source) => {
                    let error = Error::Transport {
                        method: Method::POST,
                        path: path.clone(),
                        attempts: attempt,
                        elapsed: first_started.elapsed(),
                        source,
                    };
                    // Unlike other POSTs, a token request creates nothing that a repeat would duplicate, so
                    // any transport failure is retried. A request that carried a two-factor code is not,
                    // because the server may already have used up that code.
                    let repeatable = error.is_retryable() || otp.is_none();
                    if repeatable && attempt < max_attempts {
                        let delay = self.retry.backoff(attempt);
                        tracing::info!(attempt, delay_ms = delay.as_millis() as u64, error = %error, "retrying the token request");
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    return Err(error);
                }
            };
            let request_id = header_string(&headers, "x-request-id");
            if let Some(id) = &request_id {
                tracing::Span::current().record("request_id", id.as_str());
            }

            if (200..300).contains(&status) {
                let response: TokenResponse = decode(&Method::POST, &path, &body)?;
                let renew_at = response.expires_in.map(|seconds| {
                    let lifetime = Duration::from_secs(seconds).min(MAX_LIFETIME);
                    started + lifetime - renewal_margin(lifetime)
                });
                tracing::debug!(
                    identity = self.grant.basic_user(),
                    expires_in = response.expires_in,
                    refresh_token = response.refresh_token.is_some(),
                    "obtained an access token"
                );
                return Ok(CachedToken {
                    access_token: SecretString::from(response.access_token),
                    renew_at,
                    rejected: false,
                    refresh_token: response.refresh_token.map(SecretString::from),
                });
            }

            if status == 401 && otp_required(&headers) {
                return Err(Error::TwoFactorRequired {
                    code_rejected: false,
                    request_id,
                });
            }

            let retry_after = parse_retry_after(&headers, SystemTime::now());
            let mut api = api_error(
                &Method::POST,
                &path,
                status,
                request_id,
                &body,
                attempt,
                retry_after,
            );
            api.elapsed = first_started.elapsed();

            if matches!(status, 400 | 401 | 403) {
                let error = Error::Unauthenticated(Box::new(api));
                tracing::warn!(identity = self.grant.basic_user(), grant_type, error = %error, "the token endpoint rejected the credentials");
                return Err(error);
            }

            let retry_allowed = is_retryable_status(status)
                && attempt < max_attempts
                && retry_after.is_none_or(|delay| delay <= self.retry.max_retry_after);
            if !retry_allowed {
                return Err(Error::from_response("token", api));
            }
            let delay = self.retry.delay_before_retry(attempt, retry_after);
            tracing::info!(
                attempt,
                status,
                delay_ms = delay.as_millis() as u64,
                "retrying the token request"
            );
            tokio::time::sleep(delay).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margin_is_ten_percent_capped_at_a_minute() {
        assert_eq!(
            renewal_margin(Duration::from_secs(7200)),
            Duration::from_secs(60)
        );
        assert_eq!(
            renewal_margin(Duration::from_secs(300)),
            Duration::from_secs(30)
        );
        assert_eq!(
            renewal_margin(Duration::from_secs(3)),
            Duration::from_millis(300)
        );
        assert_eq!(renewal_margin(Duration::ZERO), Duration::ZERO);
    }
}
