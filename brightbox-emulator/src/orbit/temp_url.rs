//! Swift temp URLs: an HMAC-SHA1 signature over the method, the expiry and the path,
//! keyed with the account's `X-Account-Meta-Temp-Url-Key`.

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

type HmacSha1 = Hmac<Sha1>;

/// The reason a temp URL does not authorise a request. Each reason becomes a 401.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TempUrlRejection {
    /// The account has no temp URL key, so no signature can match.
    NoKey,
    /// `temp_url_sig` or `temp_url_expires` is missing.
    MissingParameter(&'static str),
    /// `temp_url_expires` is not a whole number of seconds since the Unix epoch.
    InvalidExpires(String),
    /// The expiry time has passed.
    Expired {
        /// The `temp_url_expires` value.
        expires: i64,
        /// The current Unix time.
        now: i64,
    },
    /// Temp URLs authorise GET, HEAD and PUT only.
    MethodNotAllowed(String),
    /// The URL does not name an object.
    NotAnObject,
    /// No key signs this method, expiry and path to `temp_url_sig`.
    SignatureMismatch,
}

impl TempUrlRejection {
    /// Describes the rejection without repeating the signature.
    pub(crate) fn message(&self) -> String {
        match self {
            TempUrlRejection::NoKey => "the account has no temp URL key: set X-Account-Meta-Temp-Url-Key with POST on the account first".to_owned(),
            TempUrlRejection::MissingParameter(name) => {
                format!("the temp URL has no {name} query parameter: send both temp_url_sig and temp_url_expires")
            }
            TempUrlRejection::InvalidExpires(value) => format!(
                "temp_url_expires {value:?} is invalid: expected the expiry as whole seconds since the Unix epoch"
            ),
            TempUrlRejection::Expired { expires, now } => format!(
                "the temp URL expired at {expires} (now {now}): create a new one with a later temp_url_expires"
            ),
            TempUrlRejection::MethodNotAllowed(method) => format!(
                "a temp URL does not authorise {method}: temp URLs allow GET, HEAD and PUT"
            ),
            TempUrlRejection::NotAnObject => {
                "a temp URL must name an object: /v1/<account>/<container>/<object>".to_owned()
            }
            TempUrlRejection::SignatureMismatch => "temp_url_sig does not match: sign \"METHOD\\nexpires\\npath\" with HMAC-SHA1 and the account's current temp URL key".to_owned(),
        }
    }
}

/// Returns the lowercase hex HMAC-SHA1 of `"{method}\n{expires}\n{path}"` keyed with `key`,
/// which is the `temp_url_sig` of a Swift temp URL.
pub(crate) fn sign(key: &str, method: &str, expires: i64, path: &str) -> String {
    mac(key, method, expires, path)
        .map(|mac| hex::encode(mac.finalize().into_bytes()))
        .unwrap_or_default()
}

/// Returns the HMAC state after the signed text. HMAC takes keys of any length, so
/// `None` does not occur in practice.
fn mac(key: &str, method: &str, expires: i64, path: &str) -> Option<HmacSha1> {
    let mut mac = HmacSha1::new_from_slice(key.as_bytes()).ok()?;
    mac.update(format!("{method}\n{expires}\n{path}").as_bytes());
    Some(mac)
}

/// The parts of a request that a temp URL check reads.
#[derive(Debug)]
pub(crate) struct TempUrlRequest<'a> {
    pub(crate) method: &'a str,
    /// The request path as sent and percent-decoded; either may be the signed one.
    pub(crate) paths: [&'a str; 2],
    pub(crate) signature: Option<&'a str>,
    pub(crate) expires: Option<&'a str>,
    pub(crate) names_object: bool,
}

/// Checks a temp URL against the account keys at Unix time `now`.
///
/// A HEAD request is also accepted with a signature made for GET or PUT, as Swift does.
pub(crate) fn verify(
    keys: &[String],
    request: &TempUrlRequest<'_>,
    now: i64,
) -> Result<(), TempUrlRejection> {
    let signature = request
        .signature
        .ok_or(TempUrlRejection::MissingParameter("temp_url_sig"))?;
    let expires_text = request
        .expires
        .ok_or(TempUrlRejection::MissingParameter("temp_url_expires"))?;
    let expires: i64 = expires_text
        .parse()
        .map_err(|_| TempUrlRejection::InvalidExpires(expires_text.to_owned()))?;
    let methods: &[&str] = match request.method {
        "GET" => &["GET"],
        "PUT" => &["PUT"],
        "HEAD" => &["HEAD", "GET", "PUT"],
        other => return Err(TempUrlRejection::MethodNotAllowed(other.to_owned())),
    };
    if !request.names_object {
        return Err(TempUrlRejection::NotAnObject);
    }
    if expires <= now {
        return Err(TempUrlRejection::Expired { expires, now });
    }
    if keys.is_empty() {
        return Err(TempUrlRejection::NoKey);
    }
    let Ok(signature_bytes) = hex::decode(signature.trim()) else {
        return Err(TempUrlRejection::SignatureMismatch);
    };
    let matches = keys.iter().any(|key| {
        methods.iter().any(|method| {
            request.paths.iter().any(|path| {
                mac(key, method, expires, path)
                    .is_some_and(|mac| mac.verify_slice(&signature_bytes).is_ok())
            })
        })
    });
    if matches {
        Ok(())
    } else {
        Err(TempUrlRejection::SignatureMismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = "/v1/acc-12345/images/img-abcde";

    fn request<'a>(method: &'a str, signature: &'a str, expires: &'a str) -> TempUrlRequest<'a> {
        TempUrlRequest {
            method,
            paths: [PATH, PATH],
            signature: Some(signature),
            expires: Some(expires),
            names_object: true,
        }
    }

    #[test]
    fn signature_matches_openssl() {
        // printf 'GET\n1700000000\n/v1/acc-12345/images/img-abcde' | openssl dgst -sha1 -hmac mykey
        assert_eq!(
            sign("mykey", "GET", 1_700_000_000, PATH),
            "1458109d74c2a2cd23558686b38d282180800477"
        );
    }

    #[test]
    fn valid_signature_is_accepted() {
        let keys = vec!["mykey".to_owned()];
        let signature = sign("mykey", "GET", 1_700_000_000, PATH);
        let accepted = verify(
            &keys,
            &request("GET", &signature, "1700000000"),
            1_699_999_000,
        );
        assert_eq!(accepted, Ok(()));
    }

    #[test]
    fn head_accepts_get_signature() {
        let keys = vec!["mykey".to_owned()];
        let signature = sign("mykey", "GET", 1_700_000_000, PATH);
        let head = verify(
            &keys,
            &request("HEAD", &signature, "1700000000"),
            1_699_999_000,
        );
        assert_eq!(head, Ok(()));
    }

    #[test]
    fn get_signature_does_not_authorise_put() {
        let keys = vec!["mykey".to_owned()];
        let signature = sign("mykey", "GET", 1_700_000_000, PATH);
        let put = verify(
            &keys,
            &request("PUT", &signature, "1700000000"),
            1_699_999_000,
        );
        assert_eq!(put, Err(TempUrlRejection::SignatureMismatch));
    }

    #[test]
    fn expired_url_is_rejected() {
        let keys = vec!["mykey".to_owned()];
        let signature = sign("mykey", "GET", 1_700_000_000, PATH);
        let late = verify(
            &keys,
            &request("GET", &signature, "1700000000"),
            1_700_000_000,
        );
        assert_eq!(
            late,
            Err(TempUrlRejection::Expired {
                expires: 1_700_000_000,
                now: 1_700_000_000
            })
        );
    }

    #[test]
    fn other_key_is_rejected() {
        let keys = vec!["otherkey".to_owned()];
        let signature = sign("mykey", "GET", 1_700_000_000, PATH);
        let rejected = verify(&keys, &request("GET", &signature, "1700000000"), 0);
        assert_eq!(rejected, Err(TempUrlRejection::SignatureMismatch));
    }

    #[test]
    fn second_key_is_accepted() {
        let keys = vec!["first".to_owned(), "second".to_owned()];
        let signature = sign("second", "PUT", 1_700_000_000, PATH);
        let accepted = verify(&keys, &request("PUT", &signature, "1700000000"), 0);
        assert_eq!(accepted, Ok(()));
    }

    #[test]
    fn bad_parameters_are_rejected() {
        let keys = vec!["mykey".to_owned()];
        assert_eq!(
            verify(&keys, &request("GET", "00", "soon"), 0),
            Err(TempUrlRejection::InvalidExpires("soon".to_owned()))
        );
        assert_eq!(
            verify(&keys, &request("DELETE", "00", "1700000000"), 0),
            Err(TempUrlRejection::MethodNotAllowed("DELETE".to_owned()))
        );
        assert_eq!(
            verify(&keys, &request("GET", "not-hex", "1700000000"), 0),
            Err(TempUrlRejection::SignatureMismatch)
        );
        assert_eq!(
            verify(&[], &request("GET", "00", "1700000000"), 0),
            Err(TempUrlRejection::NoKey)
        );
    }
}
