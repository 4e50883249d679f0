//! Checks shared by the `api_json` and `api_json_structured` targets: every typed model of an
//! API response, error bodies and token responses, decoded from the same bytes.

use brightbox_api::fuzzing::{
    api_error, decode, decode_ftp_password_reset, decode_token_response, oauth_error,
};
use brightbox_api::{Account, Image, Server, ServerType, Volume, Zone};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Fields whose values are secrets and must not reach an error message or `Debug` output.
const SECRET_FIELDS: [&str; 4] = [
    "access_token",
    "refresh_token",
    "library_ftp_password",
    "client_secret",
];

/// Decodes `body` as `T` and, when that works, checks that encoding and decoding again gives
/// an equal value.
fn round_trip<T>(body: &[u8]) -> Option<T>
where
    T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug,
{
    let value: T = decode(body).ok()?;
    let encoded = serde_json::to_vec(&value).expect("a decoded model encodes");
    let again: T = match decode(&encoded) {
        Ok(again) => again,
        Err(error) => panic!(
            "{value:?} encodes to {} which does not decode: {error}",
            String::from_utf8_lossy(&encoded)
        ),
    };
    assert_eq!(
        value,
        again,
        "round trip through {}",
        String::from_utf8_lossy(&encoded)
    );
    Some(value)
}

/// Decodes `body` as a single object and as a list of `T`.
fn models<T>(body: &[u8], secrets: &[String])
where
    T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug,
{
    if let Some(value) = round_trip::<T>(body) {
        assert_no_secret(&format!("{value:?}"), secrets);
    }
    if let Some(values) = round_trip::<Vec<T>>(body) {
        assert_no_secret(&format!("{values:?}"), secrets);
    }
    if let Err(error) = decode::<T>(body) {
        assert_no_secret(&format!("{error} {error:?}"), secrets);
    }
}

/// Collects the values of secret fields that no other string in the document contains, so
/// that finding one in an output can only come from the secret field.
fn secrets_of(body: &[u8]) -> Vec<String> {
    let Ok(document) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    let mut secret = Vec::new();
    let mut other = Vec::new();
    collect_strings(&document, None, &mut secret, &mut other);
    secret.retain(|value: &String| {
        value.len() >= 8
            && !other
                .iter()
                .any(|text: &String| text.contains(value.as_str()))
            && !SECRET_FIELDS
                .iter()
                .any(|name| name.contains(value.as_str()))
    });
    secret
}

fn collect_strings(
    value: &Value,
    key: Option<&str>,
    secret: &mut Vec<String>,
    other: &mut Vec<String>,
) {
    match value {
        Value::String(text) if key.is_some_and(|key| SECRET_FIELDS.contains(&key)) => {
            secret.push(text.clone());
        }
        Value::String(text) => other.push(text.clone()),
        Value::Number(number) => other.push(number.to_string()),
        Value::Array(items) => items
            .iter()
            .for_each(|item| collect_strings(item, None, secret, other)),
        Value::Object(map) => map.iter().for_each(|(name, item)| {
            other.push(name.clone());
            collect_strings(item, Some(name), secret, other);
        }),
        Value::Bool(_) | Value::Null => {}
    }
}

fn assert_no_secret(output: &str, secrets: &[String]) {
    for secret in secrets {
        assert!(
            !output.contains(secret.as_str()),
            "secret {secret:?} in {output}"
        );
    }
}

/// Runs every decoder on `body` and checks round trips and that secrets stay out of outputs.
pub fn check(body: &[u8]) {
    let secrets = secrets_of(body);

    models::<Image>(body, &secrets);
    models::<Server>(body, &secrets);
    models::<Account>(body, &secrets);
    models::<Volume>(body, &secrets);
    models::<Zone>(body, &secrets);
    models::<ServerType>(body, &secrets);

    if let Err(error) = decode_token_response(body) {
        assert_no_secret(&format!("{error} {error:?}"), &secrets);
    }
    if let Err(error) = decode_ftp_password_reset(body) {
        assert_no_secret(&format!("{error} {error:?}"), &secrets);
    }

    for status in [400, 401, 403, 404, 409, 422, 429, 500, 503] {
        let error = api_error(status, body);
        let shown = format!("{error}");
        assert!(
            shown.contains(&status.to_string()),
            "{shown} does not name HTTP {status}"
        );
        let _ = format!("{error:?}");
    }
    let _ = oauth_error(body);
}
