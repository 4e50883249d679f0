//! OAuth 2.0 client credentials grant and the access token cache.

use std::time::{Duration, SystemTime};

use reqwest::Method;
use reqwest::header::ACCEPT;
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use crate::client::{Inner, api_error, decode, header_string, otp_required};
use crate::error::{Error, Result, is_retryable_status};
use crate::retry::parse_retry_after;

/// Maximum margin by which a token is renewed before it expires.
const MAX_RENEWAL_MARGIN: Duration = Duration::from_secs(60);

/// Maximum token lifetime taken from `expires_in`. Larger values are clamped so that instant arithmetic cannot overflow.
const MAX_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);

/// Access token with the instant after which it is renewed before use.
pub(crate) struct CachedToken {
    access_token: SecretString,
    /// `None` when the token endpoint sent no `expires_in`; such a token is renewed only after a 401.
    renew_at: Option<Instant>,
}

impl CachedToken {
    fn is_fresh(&self, now: Instant) -> bool {
        self.renew_at.is_none_or(|renew_at| now < renew_at)
    }
}

/// Returns how long before expiry a token with this lifetime is renewed: 10 % of the lifetime, at most 60 s.
pub(crate) fn renewal_margin(lifetime: Duration) -> Duration {
    (lifetime / 10).min(MAX_RENEWAL_MARGIN)
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: Option<u64>,
}

/// OAuth 2.0 error body: `{"error": "...", "error_description": "..."}`.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct OAuthErrorBody {
    pub(crate) error: Option<String>,
    pub(crate) error_description: Option<String>,
}

impl OAuthErrorBody {
    /// Parses the body, or returns empty fields when it is not such a document.
    pub(crate) fn parse(body: &[u8]) -> Self {
        serde_json::from_slice(body).unwrap_or_default()
    }
}

impl Inner {
    /// Returns a valid access token, requesting a new one when none is cached or the cached one is due for renewal.
    ///
    /// The cache lock is held during the token request, so callers racing here send one request between them.
    pub(crate) async fn access_token(&self) -> Result<SecretString> {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| t.is_fresh(Instant::now())) {
            return Ok(token.access_token.clone());
        }

        let token = self.request_token().await?;
        let access_token = token.access_token.clone();
        *cached = Some(token);
        Ok(access_token)
    }

    /// Drops the cached token if it is still `rejected`, so that the next call requests a new one.
    ///
    /// A token already replaced by another task stays in place.
    pub(crate) async fn invalidate_token(&self, rejected: &SecretString) {
        let mut cached = self.token.lock().await;
        let same = cached
            .as_ref()
            .is_some_and(|t| t.access_token.expose_secret() == rejected.expose_secret());
        if same {
            *cached = None;
        }
    }

    /// Sends the client credentials grant to `{base}token`, retrying HTTP 429/502/503/504 and connection failures.
    async fn request_token(&self) -> Result<CachedToken> {
        let url = self
            .base_url
            .join("token")
            .map_err(|source| Error::InvalidBaseUrl {
                value: self.base_url.to_string(),
                reason: "cannot append the token path".to_owned(),
                source: Some(source),
            })?;
        let path = url.path().to_owned();
        let max_attempts = self.retry.max_attempts.max(1);
        let mut attempt = 0u32;

        loop {
            attempt += 1;
            let started = Instant::now();
            let sent = self
                .http
                .post(url.clone())
                .basic_auth(&self.client_id, Some(self.client_secret.expose_secret()))
                .header(ACCEPT, "application/json")
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await;
            let outcome = match sent {
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
                        source,
                    };
                    if error.is_retryable() && attempt < max_attempts {
                        let delay = self.retry.backoff(attempt);
                        tracing::info!(attempt, delay_ms = delay.as_millis() as u64, error = %error, "retrying the token request");
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    return Err(error);
                }
            };
            let request_id = header_string(&headers, "x-request-id");

            if (200..300).contains(&status) {
                let response: TokenResponse = decode(&Method::POST, &path, &body)?;
                let renew_at = response.expires_in.map(|seconds| {
                    let lifetime = Duration::from_secs(seconds).min(MAX_LIFETIME);
                    started + lifetime - renewal_margin(lifetime)
                });
                tracing::debug!(
                    client_id = %self.client_id,
                    expires_in = response.expires_in,
                    "obtained an access token"
                );
                return Ok(CachedToken {
                    access_token: SecretString::from(response.access_token),
                    renew_at,
                });
            }

            if status == 401 && otp_required(&headers) {
                return Err(Error::OtpRequired { request_id });
            }

            if matches!(status, 400 | 401 | 403) {
                let body = OAuthErrorBody::parse(&body);
                let error = Error::Auth {
                    status,
                    error: body.error.unwrap_or_else(|| "unknown_error".to_owned()),
                    description: body.error_description,
                    request_id,
                };
                tracing::warn!(client_id = %self.client_id, error = %error, "the token endpoint rejected the client credentials");
                return Err(error);
            }

            let retry_after = parse_retry_after(&headers, SystemTime::now());
            let error = api_error(
                &Method::POST,
                &path,
                status,
                request_id,
                &body,
                attempt,
                retry_after,
            );
            let retry_allowed = is_retryable_status(status)
                && attempt < max_attempts
                && retry_after.is_none_or(|delay| delay <= self.retry.max_retry_after);
            if !retry_allowed {
                return Err(Error::Api(Box::new(error)));
            }
            let delay = retry_after.unwrap_or_else(|| self.retry.backoff(attempt));
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
