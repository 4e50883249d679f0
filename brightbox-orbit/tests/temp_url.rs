//! Temp URL signatures and expiry sizing.

mod common;

use std::time::{Duration, UNIX_EPOCH};

use brightbox_orbit::{OrbitClient, OrbitError, TempUrlMethod, redact_url, temp_url_expiry_for};
use hmac::{Hmac, KeyInit, Mac};
use secrecy::SecretString;
use sha1::Sha1;

fn orbit_client() -> OrbitClient {
    OrbitClient::builder()
        .storage_url(
            "https://orbit.example.test/v1/acc-12345/"
                .parse()
                .expect("url"),
        )
        .token(SecretString::from("unused-token"))
        .build()
        .expect("client")
}

/// Computes the Swift signature formula independently of the crate.
fn expected_signature(key: &str, method: &str, expires: u64, path: &str) -> String {
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(format!("{method}\n{expires}\n{path}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn query_value(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[test]
fn temp_url_matches_openssl_vector() {
    // printf 'GET\n1700000000\n/v1/acc-12345/images/img-abcde' | openssl dgst -sha1 -hmac mykey
    const OPENSSL_SIGNATURE: &str = "1458109d74c2a2cd23558686b38d282180800477";

    let url = orbit_client()
        .temp_url_at_unix(
            TempUrlMethod::Get,
            "images",
            "img-abcde",
            &SecretString::from("mykey"),
            1_700_000_000,
        )
        .expect("temp URL");
    assert_eq!(
        url.as_str(),
        format!(
            "https://orbit.example.test/v1/acc-12345/images/img-abcde?temp_url_sig={OPENSSL_SIGNATURE}&temp_url_expires=1700000000"
        )
    );
    assert_eq!(
        expected_signature(
            "mykey",
            "GET",
            1_700_000_000,
            "/v1/acc-12345/images/img-abcde"
        ),
        OPENSSL_SIGNATURE
    );
}

#[test]
fn temp_url_signs_each_method() {
    let client = orbit_client();
    let key = SecretString::from("another key with spaces");
    let expires = 1_765_000_000;
    for (method, name) in [
        (TempUrlMethod::Get, "GET"),
        (TempUrlMethod::Put, "PUT"),
        (TempUrlMethod::Head, "HEAD"),
    ] {
        let url = client
            .temp_url(
                method,
                "image-uploads",
                "build/disk 1.raw",
                &key,
                UNIX_EPOCH + Duration::from_secs(expires),
            )
            .expect("temp URL");
        let expected = expected_signature(
            "another key with spaces",
            name,
            expires,
            "/v1/acc-12345/image-uploads/build/disk 1.raw",
        );
        assert_eq!(query_value(&url, "temp_url_sig"), Some(expected), "{name}");
        assert_eq!(
            query_value(&url, "temp_url_expires"),
            Some(expires.to_string())
        );
        assert_eq!(url.path(), "/v1/acc-12345/image-uploads/build/disk%201.raw");
    }
}

#[test]
fn redacted_temp_url_drops_signature() {
    let url = orbit_client()
        .temp_url_at_unix(
            TempUrlMethod::Get,
            "images",
            "img-abcde",
            &SecretString::from("mykey"),
            1_700_000_000,
        )
        .expect("temp URL");
    let shown = redact_url(&url);
    assert_eq!(
        shown,
        "https://orbit.example.test/v1/acc-12345/images/img-abcde"
    );
}

#[test]
fn temp_url_rejects_bad_object_name() {
    let error = orbit_client()
        .temp_url_at_unix(
            TempUrlMethod::Get,
            "images",
            "../other",
            &SecretString::from("k"),
            1,
        )
        .expect_err("dot segment");
    assert!(
        matches!(error, OrbitError::InvalidName { kind: "object", .. }),
        "{error:?}"
    );
}

#[test]
fn expiry_sized_to_transfer() {
    let margin = Duration::from_secs(600);
    assert_eq!(temp_url_expiry_for(0, 1_000, margin), margin);
    assert_eq!(
        temp_url_expiry_for(1_000, 1_000, margin),
        Duration::from_secs(601)
    );
    assert_eq!(
        temp_url_expiry_for(1_001, 1_000, margin),
        Duration::from_secs(602)
    );
    assert_eq!(
        temp_url_expiry_for(5, 0, Duration::ZERO),
        Duration::from_secs(5)
    );
    assert_eq!(
        temp_url_expiry_for(u64::MAX, 1, Duration::MAX),
        Duration::MAX,
        "saturates instead of overflowing"
    );
}
