//! Configuration from environment variables and from the Brightbox CLI config file.

mod common;

use std::collections::HashMap;
use std::io::Write;

use brightbox_api::{CliConfig, ClientBuilder, Error};
use common::*;
use serde_json::json;
use wiremock::matchers::{body_string_contains, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| map.get(name).cloned()
}

fn config_reason(error: &Error) -> String {
    match error {
        Error::Config { origin, reason, .. } => format!("{origin}: {reason}"),
        other => panic!("expected Error::Config, got {other:?}"),
    }
}

#[tokio::test]
async fn env_client_credentials_reach_the_api() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(header("authorization", BASIC_AUTH))
        .and(body_string_contains("grant_type=client_credentials"))
        .respond_with(token_response(TOKEN, 7200))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/1.0/images"))
        .and(query_param("account_id", "acc-43ks4"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let uri = server.uri();
    let builder = ClientBuilder::from_env_with(env(&[
        ("BRIGHTBOX_API_URL", uri.as_str()),
        ("BRIGHTBOX_CLIENT_ID", CLIENT_ID),
        ("BRIGHTBOX_CLIENT_SECRET", CLIENT_SECRET),
        ("BRIGHTBOX_ACCOUNT", "acc-43ks4"),
    ]))
    .expect("environment is complete");
    let client = builder.build().expect("client builds");

    assert_eq!(client.account_id().map(|a| a.as_str()), Some("acc-43ks4"));
    let images = client.images().list().await.expect("list succeeds");
    assert!(images.is_empty());
}

#[test]
fn env_user_credentials_default_to_cli_application() {
    let builder = ClientBuilder::from_env_with(env(&[
        ("BRIGHTBOX_USERNAME", "alex@example.com"),
        ("BRIGHTBOX_PASSWORD", "pw-123"),
    ]))
    .expect("environment is complete");

    assert!(builder.uses_password_grant());
    let client = builder.build().expect("client builds");
    assert_eq!(client.client_id(), "app-12345");
}

#[test]
fn env_user_credentials_with_own_application() {
    let client = ClientBuilder::from_env_with(env(&[
        ("BRIGHTBOX_USERNAME", "usr-kl435"),
        ("BRIGHTBOX_PASSWORD", "pw-123"),
        ("BRIGHTBOX_APP_ID", "app-own01"),
        ("BRIGHTBOX_APP_SECRET", "app-secret"),
    ]))
    .expect("environment is complete")
    .build()
    .expect("client builds");

    assert_eq!(client.client_id(), "app-own01");
}

#[test]
fn env_errors_name_the_variables() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[], "BRIGHTBOX_CLIENT_ID"),
        (
            &[("BRIGHTBOX_CLIENT_ID", "cli-abc12")],
            "BRIGHTBOX_CLIENT_SECRET",
        ),
        (
            &[("BRIGHTBOX_USERNAME", "alex@example.com")],
            "BRIGHTBOX_PASSWORD",
        ),
        (
            &[
                ("BRIGHTBOX_CLIENT_ID", "cli-abc12"),
                ("BRIGHTBOX_CLIENT_SECRET", "s"),
                ("BRIGHTBOX_USERNAME", "alex@example.com"),
            ],
            "both BRIGHTBOX_CLIENT_ID and BRIGHTBOX_USERNAME",
        ),
        (
            &[
                ("BRIGHTBOX_USERNAME", "alex@example.com"),
                ("BRIGHTBOX_PASSWORD", "pw"),
                ("BRIGHTBOX_APP_ID", "app-own01"),
            ],
            "BRIGHTBOX_APP_SECRET",
        ),
        (
            &[
                ("BRIGHTBOX_CLIENT_ID", "cli-abc12"),
                ("BRIGHTBOX_CLIENT_SECRET", "s"),
                ("BRIGHTBOX_ACCOUNT", "43ks4"),
            ],
            "BRIGHTBOX_ACCOUNT is not an account id",
        ),
        (
            &[
                ("BRIGHTBOX_CLIENT_ID", "  "),
                ("BRIGHTBOX_CLIENT_SECRET", "s"),
            ],
            "no credentials",
        ),
    ];
    for (vars, expected) in cases {
        let error = ClientBuilder::from_env_with(env(vars)).expect_err("environment is incomplete");
        let text = config_reason(&error);
        assert!(text.contains(expected), "{vars:?}: {text}");
        assert!(text.starts_with("environment"), "{text}");
    }
}

const CONFIG: &str = r#"
# Written by the Brightbox CLI
[core]
default_client = work

[work]
api_url = https://api.gb1.brightbox.com
client_id = cli-abc12
secret = "work-secret-value"
default_account = acc-43ks4

; a user login
[personal]
alias = me
api_url = https://api.gb1.brightbox.com
auth_url = https://api.gb1.brightbox.com
client_id = app-12345
secret = mocbuipbiaa6k6c
username = alex@example.com
"#;

#[test]
fn cli_config_selects_default_named_and_alias() {
    let config = CliConfig::parse(CONFIG, "config").expect("config parses");

    assert_eq!(config.default_client(), Some("work"));
    assert_eq!(config.sections().len(), 2);
    let default = config.section(None).expect("default section exists");
    assert_eq!(default.name, "work");
    assert_eq!(default.client_id.as_deref(), Some("cli-abc12"));
    assert_eq!(default.default_account.as_deref(), Some("acc-43ks4"));
    assert!(!default.is_user_login());

    let personal = config.section(Some("me")).expect("alias resolves");
    assert_eq!(personal.name, "personal");
    assert_eq!(personal.username.as_deref(), Some("alex@example.com"));
    assert!(personal.is_user_login());
    assert_eq!(personal.line, 13);

    let debug = format!("{default:?} {personal:?}");
    assert!(!debug.contains("work-secret-value"), "{debug}");
    assert!(!debug.contains("mocbuipbiaa6k6c"), "{debug}");
}

#[test]
fn cli_config_selection_errors_list_sections() {
    let config = CliConfig::parse(CONFIG, "config").expect("config parses");
    let error = config
        .section(Some("missing"))
        .expect_err("no such section");
    let text = config_reason(&error);
    assert!(text.contains("\"missing\""), "{text}");
    assert!(text.contains("work, personal"), "{text}");

    let without_default = CONFIG.replace("default_client = work", "");
    let config = CliConfig::parse(&without_default, "config").expect("config parses");
    let error = config.section(None).expect_err("ambiguous");
    assert!(config_reason(&error).contains("default_client"), "{error}");

    let config = CliConfig::parse("[core]\n", "empty").expect("config parses");
    let error = config.section(None).expect_err("no client section");
    assert!(
        config_reason(&error).contains("no client section"),
        "{error}"
    );
}

#[test]
fn cli_config_malformed_line_names_line() {
    let error = CliConfig::parse(
        "[work]\nclient_id cli-abc12\n",
        "/home/alex/.brightbox/config",
    )
    .expect_err("line has no =");
    let text = config_reason(&error);
    assert!(
        text.contains("/home/alex/.brightbox/config, line 2"),
        "{text}"
    );

    let error = CliConfig::parse("[work\n", "cfg").expect_err("header is not closed");
    assert!(config_reason(&error).contains("line 1"), "{error}");
}

#[test]
fn cli_config_api_client_section_needs_secret() {
    let config = CliConfig::parse("[work]\nclient_id = cli-abc12\n", "cfg").expect("parses");
    let section = config.section(None).expect("only section");
    let error = config.builder_for(section).expect_err("secret is missing");
    let text = config_reason(&error);
    assert!(text.contains("missing `secret`"), "{text}");
    assert!(text.contains("section [work] (line 1)"), "{text}");
}

#[test]
fn cli_config_missing_file_is_config_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("config");
    let error = ClientBuilder::from_cli_config(Some(&path), None).expect_err("no file");

    assert!(
        matches!(
            &error,
            Error::Config {
                source: Some(_),
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn cli_config_api_client_reaches_the_api() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(header("authorization", BASIC_AUTH))
        .respond_with(token_response(TOKEN, 7200))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/1.0/account"))
        .and(query_param("account_id", "acc-43ks4"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture(ACCOUNT_JSON)))
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    write!(
        file,
        "[core]\ndefault_client = test\n\n[test]\napi_url = {}\nclient_id = {CLIENT_ID}\nsecret = {CLIENT_SECRET}\ndefault_account = acc-43ks4\n",
        server.uri()
    )
    .expect("config written");

    let client = ClientBuilder::from_cli_config(Some(file.path()), None)
        .expect("config is complete")
        .no_timeout()
        .build()
        .expect("client builds");
    let account = client.accounts().current().await.expect("account fetched");

    assert_eq!(account.id, "acc-43ks4");
}

#[tokio::test]
async fn cli_config_user_section_needs_password() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=password"))
        .and(body_string_contains("username=alex%40example.com"))
        .and(body_string_contains("password=from-prompt"))
        .respond_with(token_response(TOKEN, 7200))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/1.0/accounts"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(1)
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let text = format!(
        "[me]\napi_url = {}\nusername = alex@example.com\n",
        server.uri()
    );
    let config = CliConfig::parse(&text, "cfg").expect("parses");
    let builder = config
        .builder_for(config.section(None).expect("only section"))
        .expect("section is complete");

    let error = builder.clone().build().expect_err("no password yet");
    assert!(
        matches!(
            error,
            Error::MissingCredentials {
                missing: "password"
            }
        ),
        "{error:?}"
    );

    let client = builder
        .password("from-prompt")
        .build()
        .expect("client builds");
    assert_eq!(client.client_id(), "app-12345");
    client.accounts().list().await.expect("list succeeds");
}
