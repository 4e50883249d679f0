//! End-to-end tests of the `brightbox` program against an emulator running
//! in the test process, reached through the BRIGHTBOX_* variables its binary
//! prints.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use brightbox_emulator::{Emulator, EmulatorConfig};
use brightbox_examples::write_sample_qcow2;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// An emulator on a runtime of its own, a scratch folder, and an empty HOME
/// so no `~/.brightbox/config` is read.
struct Fixture {
    emulator: Option<Emulator>,
    runtime: tokio::runtime::Runtime,
    scratch: tempfile::TempDir,
}

impl Fixture {
    fn start() -> Fixture {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let config = EmulatorConfig::default().registration_delay(Duration::from_millis(100));
        let emulator = runtime
            .block_on(Emulator::start_with(config))
            .expect("emulator starts");
        Fixture {
            emulator: Some(emulator),
            runtime,
            scratch: tempfile::tempdir().expect("scratch folder"),
        }
    }

    fn emulator(&self) -> &Emulator {
        self.emulator.as_ref().expect("emulator running")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.scratch.path().join(name)
    }

    /// Runs `brightbox` with no variables but HOME set to the scratch folder.
    fn bare_command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_brightbox"));
        command
            .env_clear()
            .env("HOME", self.scratch.path())
            .current_dir(self.scratch.path());
        command
    }

    /// Runs `brightbox` with the variables the emulator binary prints.
    fn run(&self, args: &[&str]) -> Output {
        let emulator = self.emulator();
        self.bare_command()
            .env("BRIGHTBOX_API_URL", emulator.api_url())
            .env("BRIGHTBOX_CLIENT_ID", emulator.client_id())
            .env("BRIGHTBOX_CLIENT_SECRET", emulator.client_secret())
            .env("BRIGHTBOX_ACCOUNT", emulator.account_id())
            .env("BRIGHTBOX_FTP_CA_FILE", emulator.ca_certificate_path())
            .env("BRIGHTBOX_POLL_INTERVAL_MS", "50")
            .args(args)
            .output()
            .expect("brightbox runs")
    }

    /// Runs a command that must succeed and returns its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "brightbox {args:?} failed with {:?}: {}",
            output.status.code(),
            stderr(&output)
        );
        String::from_utf8(output.stdout).expect("utf-8 stdout")
    }

    /// Runs a `--json` command that must succeed and parses its stdout.
    /// With `--json` and stderr not a terminal, a successful command writes
    /// nothing to stderr: no messages and no progress bars.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let output = self.run(&all);
        let errors = stderr(&output);
        assert!(
            output.status.success(),
            "brightbox {all:?} failed with {:?}: {errors}",
            output.status.code()
        );
        assert_eq!(errors, "", "brightbox {all:?} wrote to stderr");
        let stdout = String::from_utf8(output.stdout).expect("utf-8 stdout");
        serde_json::from_str(&stdout).unwrap_or_else(|error| {
            panic!("stdout of brightbox {all:?} is not one JSON document ({error}): {stdout}")
        })
    }

    fn image_count(&self) -> usize {
        self.json(&["images", "list"])
            .as_array()
            .expect("JSON array")
            .len()
    }

    /// Writes the sample qcow2 and uploads it; returns the path and the image.
    fn upload_sample(&self, name: &str) -> (PathBuf, Value) {
        let path = self.path(&format!("{name}.qcow2"));
        write_sample_qcow2(&path).expect("write sample");
        let path_text = path.to_str().expect("utf-8 path");
        let image = self.json(&[
            "images",
            "upload-and-register",
            path_text,
            "--name",
            name,
            "--description",
            "uploaded by the CLI test",
        ]);
        (path, image)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(emulator) = self.emulator.take() {
            self.runtime.block_on(emulator.shutdown());
        }
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn sha256_of(path: &Path) -> String {
    let bytes = std::fs::read(path).expect("read file");
    hex::encode(Sha256::digest(&bytes))
}

fn id_of(value: &Value) -> &str {
    value["id"].as_str().expect("id string")
}

#[test]
fn upload_list_show_and_download() {
    let fixture = Fixture::start();
    let (path, image) = fixture.upload_sample("cli-disk");
    let id = id_of(&image);
    assert!(id.starts_with("img-"), "{image}");
    assert_eq!(image["status"], "available");
    assert_eq!(image["name"], "cli-disk");
    assert_eq!(image["arch"], "x86_64");

    let table = fixture.ok(&["images", "list"]);
    let row = table
        .lines()
        .find(|line| line.contains(id))
        .unwrap_or_else(|| panic!("{id} missing from the table:\n{table}"));
    assert!(row.contains("available"), "{row}");
    assert!(row.contains("cli-disk (x86_64)"), "{row}");
    assert!(table.starts_with(" id "), "{table}");

    let listed = fixture.json(&["images", "list"]);
    let listed = listed.as_array().expect("array");
    let mine: Vec<&Value> = listed.iter().filter(|entry| id_of(entry) == id).collect();
    assert_eq!(mine.len(), 1, "{listed:?}");
    assert_eq!(mine[0]["status"], "available");
    assert!(listed.iter().any(|entry| id_of(entry) == "img-noble"));

    let only_mine = fixture.json(&["images", "list", "--mine"]);
    let ids: Vec<&str> = only_mine
        .as_array()
        .expect("array")
        .iter()
        .map(id_of)
        .collect();
    assert_eq!(ids, vec![id]);

    let details = fixture.ok(&["images", "show", id, "img-noble"]);
    assert!(details.contains(&format!("id: {id}")), "{details}");
    assert!(
        details.contains("description: uploaded by the CLI test"),
        "{details}"
    );
    assert!(details.contains("id: img-noble"), "{details}");

    let copy = fixture.path("copy.qcow2");
    let report = fixture.json(&["images", "download", id, copy.to_str().expect("utf-8")]);
    assert_eq!(report["sha256"], sha256_of(&path));
    assert_eq!(sha256_of(&copy), sha256_of(&path));
    assert_eq!(report["format"], "qcow2");

    let segmented = fixture.path("segmented.qcow2");
    let segmented_text = segmented.to_str().expect("utf-8");
    let report = fixture.json(&["images", "download", id, segmented_text, "--segments", "3"]);
    assert_eq!(report["sha256"], sha256_of(&path));
    assert_eq!(sha256_of(&segmented), sha256_of(&path));
}

#[test]
fn register_from_incoming_and_orbit_route() {
    let fixture = Fixture::start();
    let incoming = fixture.emulator().incoming_dir().join("placed.qcow2");
    write_sample_qcow2(&incoming).expect("write into incoming/");
    let registered = fixture.json(&[
        "images",
        "register",
        "--source",
        "placed.qcow2",
        "--arch",
        "i686",
        "--name",
        "Placed",
        "--wait",
    ]);
    assert_eq!(registered["status"], "available");
    assert_eq!(registered["arch"], "i686");
    assert_eq!(registered["name"], "Placed");

    let sample = fixture.path("orbit.qcow2");
    write_sample_qcow2(&sample).expect("write sample");
    let orbit_url = fixture.emulator().orbit_url();
    let staged = fixture.json(&[
        "images",
        "upload-and-register",
        sample.to_str().expect("utf-8"),
        "--route",
        "orbit",
        "--orbit-url",
        &orbit_url,
    ]);
    assert_eq!(staged["status"], "available");
    assert_eq!(staged["name"], "orbit.qcow2");

    let no_url = fixture.run(&[
        "images",
        "upload-and-register",
        sample.to_str().expect("utf-8"),
        "--route",
        "orbit",
    ]);
    assert_failure(&no_url, 5, &["--orbit-url", "BRIGHTBOX_ORBIT_URL"]);
}

#[test]
fn list_filters_and_latest() {
    let fixture = Fixture::start();
    // The emulator stamps created_at in whole seconds, so wait for the next
    // second. By name, "web-base-9" sorts after "web-base-10", which shows
    // that --latest goes by creation time.
    let (_, older) = fixture.upload_sample("web-base-9");
    std::thread::sleep(Duration::from_millis(1100));
    let (_, newer) = fixture.upload_sample("web-base-10");
    let older_time = older["created_at"].as_str().expect("created_at");
    let newer_time = newer["created_at"].as_str().expect("created_at");
    assert!(newer_time > older_time, "{older_time} then {newer_time}");

    let matched = fixture.json(&["images", "list", "--name", "web-base-*"]);
    assert_eq!(matched.as_array().expect("array").len(), 2, "{matched}");

    let latest = fixture.json(&["images", "list", "--name", "web-base-*", "--latest"]);
    let ids: Vec<&str> = latest
        .as_array()
        .expect("array")
        .iter()
        .map(id_of)
        .collect();
    assert_eq!(ids, vec![id_of(&newer)]);

    let official = fixture.json(&["images", "list", "--official"]);
    let official = official.as_array().expect("array");
    assert!(!official.is_empty());
    assert!(
        official.iter().all(|image| image["official"] == true),
        "{official:?}"
    );

    let none = fixture.json(&["images", "list", "--arch", "i686", "--mine"]);
    assert_eq!(none.as_array().expect("array").len(), 0, "{none}");
}

#[test]
fn server_create_and_snapshot() {
    let fixture = Fixture::start();
    let (_, image) = fixture.upload_sample("server-disk");
    let user_data = fixture.path("user-data.yaml");
    std::fs::write(&user_data, "#cloud-config\npackages: [nginx]\n").expect("write user data");

    let server = fixture.json(&[
        "servers",
        "create",
        id_of(&image),
        "--name",
        "web-1",
        "--user-data-file",
        user_data.to_str().expect("utf-8"),
        "--wait",
    ]);
    let server_id = id_of(&server);
    assert!(server_id.starts_with("srv-"), "{server}");
    assert_eq!(server["status"], "active");
    assert_eq!(server["name"], "web-1");

    let unwaited = fixture.json(&["servers", "create", id_of(&image), "--name", "web-2"]);
    assert_eq!(unwaited["status"], "creating");
    assert_eq!(unwaited["name"], "web-2");

    let table = fixture.ok(&["servers", "snapshot", server_id, "--wait"]);
    assert!(table.contains("snapshot"), "{table}");
    assert!(table.contains("available"), "{table}");

    let snapshot = fixture.json(&["servers", "snapshot", server_id, "--wait"]);
    assert_eq!(snapshot["status"], "available");
    assert_eq!(snapshot["source_type"], "snapshot");
    assert_eq!(snapshot["source"], server_id);
}

#[test]
fn accounts_list_and_password_reset() {
    let fixture = Fixture::start();
    let account = fixture.emulator().account_id().to_owned();

    let table = fixture.ok(&["accounts", "list"]);
    assert!(table.contains(&account), "{table}");
    assert!(table.contains("ram_free"), "{table}");
    let listed = fixture.json(&["accounts", "list"]);
    assert_eq!(listed[0]["id"], account.as_str());

    let output = fixture.run(&["accounts", "reset-ftp-password", &account]);
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8(output.stdout.clone()).expect("utf-8");
    let password = stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix("library_ftp_password: "))
        .unwrap_or_else(|| panic!("no password line:\n{stdout}"))
        .to_owned();
    assert!(password.len() >= 8, "{stdout}");
    assert!(
        stdout.contains(&format!("library_ftp_user: {account}")),
        "{stdout}"
    );
    assert!(stderr(&output).contains(&format!("Resetting ftp password for {account}")));

    // Trace logging must not reveal the new password.
    let traced = fixture
        .bare_command()
        .env("RUST_LOG", "trace")
        .env("BRIGHTBOX_API_URL", fixture.emulator().api_url())
        .env("BRIGHTBOX_CLIENT_ID", fixture.emulator().client_id())
        .env(
            "BRIGHTBOX_CLIENT_SECRET",
            fixture.emulator().client_secret(),
        )
        .args(["accounts", "reset-ftp-password", &account, "--json"])
        .output()
        .expect("brightbox runs");
    assert!(traced.status.success(), "{}", stderr(&traced));
    let document: Value = serde_json::from_slice(&traced.stdout).expect("one JSON document");
    let new_password = document["library_ftp_password"].as_str().expect("password");
    assert_ne!(new_password, password);
    let logs = stderr(&traced);
    assert!(!logs.is_empty(), "RUST_LOG=trace wrote no logs");
    assert!(!logs.contains(new_password), "password in logs:\n{logs}");
    assert!(
        !logs.contains(fixture.emulator().client_secret()),
        "client secret in logs"
    );
}

#[test]
fn destroy_removes_image() {
    let fixture = Fixture::start();
    let (_, image) = fixture.upload_sample("short-lived");
    let before = fixture.image_count();

    let stdout = fixture.ok(&["images", "destroy", id_of(&image)]);
    assert!(stdout.contains(id_of(&image)), "{stdout}");
    let remaining = fixture.json(&["images", "list"]);
    let remaining = remaining.as_array().expect("array");
    assert_eq!(remaining.len(), before - 1, "{remaining:?}");
    assert!(remaining.iter().all(|entry| id_of(entry) != id_of(&image)));

    let after_destroy = fixture.run(&["images", "show", id_of(&image)]);
    assert_failure(&after_destroy, 4, &[id_of(&image), "not found"]);
}

/// Asserts the exit code and that stderr is one `error:` line containing
/// every fragment.
fn assert_failure(output: &Output, code: i32, fragments: &[&str]) {
    let text = stderr(output);
    assert_eq!(output.status.code(), Some(code), "stderr: {text}");
    assert!(
        output.stdout.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    for fragment in fragments {
        assert!(
            text.contains(fragment),
            "{fragment:?} missing from stderr: {text}"
        );
    }
    // clap's usage errors add a usage block; every other failure ends with
    // its one error line.
    if code != 2 {
        let errors = text
            .lines()
            .filter(|line| line.starts_with("error: "))
            .count();
        assert_eq!(errors, 1, "stderr: {text}");
        let last = text.lines().last().unwrap_or_default();
        assert!(last.starts_with("error: "), "stderr: {text}");
    }
}

#[test]
fn bad_input_registers_nothing() {
    let fixture = Fixture::start();
    let before = fixture.image_count();
    let folder = fixture.scratch.path().to_str().expect("utf-8").to_owned();

    let missing = fixture.run(&["images", "upload-and-register", "nothere.qcow2"]);
    assert_failure(
        &missing,
        4,
        &[
            "error: image file nothere.qcow2 does not exist",
            "check the path",
        ],
    );
    assert_eq!(stderr(&missing).lines().count(), 1, "{}", stderr(&missing));

    let directory = fixture.run(&["images", "upload-and-register", &folder]);
    assert_failure(
        &directory,
        5,
        &[&folder, "not a regular file", "disk image file"],
    );

    let sample = fixture.path("sample.qcow2");
    write_sample_qcow2(&sample).expect("write sample");
    let sample = sample.to_str().expect("utf-8");
    let wrong_arch = fixture.run(&["images", "upload-and-register", sample, "--arch", "arm64"]);
    assert_failure(
        &wrong_arch,
        5,
        &["invalid --arch \"arm64\"", "x86_64, i686"],
    );

    let bad_id = fixture.run(&["images", "show", "img-!!"]);
    assert_failure(&bad_id, 5, &["\"img-!!\"", "e.g. \"img-3ikco\""]);

    let conflict = fixture.run(&[
        "images",
        "register",
        "--source",
        "disk.img",
        "--server",
        "srv-abcde",
    ]);
    assert_failure(
        &conflict,
        2,
        &["--source", "--server", "cannot be used with"],
    );

    let unknown = fixture.run(&["imagez", "list"]);
    assert_failure(&unknown, 2, &["'imagez'", "images"]);

    let segments = fixture.run(&[
        "images",
        "download",
        "img-noble",
        "out.img",
        "--segments",
        "99",
    ]);
    assert_failure(&segments, 5, &["--segments", "\"99\"", "from 1 to 16"]);

    let bad_status = fixture.run(&["images", "list", "--status", "ready"]);
    assert_failure(&bad_status, 5, &["\"ready\"", "available"]);

    let not_uploaded = fixture.run(&["images", "register", "--source", "missing.img"]);
    assert_failure(&not_uploaded, 5, &["\"missing.img\"", "upload it first"]);

    let bad_type = fixture.run(&["servers", "create", "img-noble", "--type", "99gb.nope"]);
    assert_failure(
        &bad_type,
        5,
        &["invalid --type \"99gb.nope\"", "known handles", "1gb.ssd"],
    );
    assert_eq!(
        stderr(&bad_type).matches("99gb.nope").count(),
        1,
        "the value is named more than once: {}",
        stderr(&bad_type)
    );

    let no_user_data = fixture.run(&[
        "servers",
        "create",
        "img-noble",
        "--user-data-file",
        "no-such-user-data",
    ]);
    assert_failure(&no_user_data, 4, &["no-such-user-data", "check the path"]);

    assert_eq!(
        fixture.image_count(),
        before,
        "bad input changed the image list"
    );
}

#[test]
fn unknown_image_exits_not_found() {
    let fixture = Fixture::start();
    let output = fixture.run(&["images", "show", "img-zzzzz"]);
    assert_failure(
        &output,
        4,
        &["img-zzzzz", "not found", "`brightbox images list`"],
    );

    // The emulator's official images have no file in images/.
    let target = fixture.path("official.img");
    let download = fixture.run(&[
        "images",
        "download",
        "img-noble",
        target.to_str().expect("utf-8"),
    ]);
    assert_failure(&download, 4, &["images/img-noble", "not found"]);
    assert!(!target.exists());
}

#[test]
fn wrong_secret_exits_authentication() {
    let fixture = Fixture::start();
    let output = fixture
        .bare_command()
        .env("BRIGHTBOX_API_URL", fixture.emulator().api_url())
        .env("BRIGHTBOX_CLIENT_ID", fixture.emulator().client_id())
        .env("BRIGHTBOX_CLIENT_SECRET", "not-the-secret")
        .args(["images", "list"])
        .output()
        .expect("brightbox runs");
    assert_failure(
        &output,
        3,
        &["authentication failed", "client id and secret"],
    );
    assert!(!stderr(&output).contains("not-the-secret"));
}

#[test]
fn no_credentials_uses_local_emulator() {
    let fixture = Fixture::start();
    let output = fixture
        .bare_command()
        .args(["images", "list", "--official"])
        .output()
        .expect("brightbox runs");
    let text = stderr(&output);
    assert!(output.status.success(), "{text}");
    let notes: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("no credentials set"))
        .collect();
    assert_eq!(notes.len(), 1, "{text}");
    assert!(notes[0].contains("brightbox-emulator"), "{text}");
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    assert!(stdout.contains("img-noble"), "{stdout}");
}

#[test]
fn help_lists_exit_codes() {
    let fixture = Fixture::start();
    let output = fixture
        .bare_command()
        .arg("--help")
        .output()
        .expect("brightbox runs");
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).expect("utf-8");
    for fragment in [
        "Exit codes:",
        "3  authentication or permission",
        "(HTTP 403)",
        "4  not found",
        "local file (image, user data, CA certificate)",
        "5  invalid input",
        "--json",
    ] {
        assert!(
            help.contains(fragment),
            "{fragment:?} missing from --help:\n{help}"
        );
    }
}

#[test]
fn user_login_with_two_factor_code() {
    let fixture = Fixture::start();
    let user_login = |code: Option<&str>| {
        let mut command = fixture.bare_command();
        command
            .env("BRIGHTBOX_API_URL", fixture.emulator().api_url())
            .env("BRIGHTBOX_USERNAME", brightbox_emulator::USER_NAME)
            .env("BRIGHTBOX_PASSWORD", brightbox_emulator::USER_PASSWORD)
            .args(["accounts", "list", "--json"]);
        if let Some(code) = code {
            command.env("BRIGHTBOX_OTP", code);
        }
        command.output().expect("brightbox runs")
    };

    let accepted = user_login(Some(brightbox_emulator::USER_OTP_CODE));
    assert!(accepted.status.success(), "{}", stderr(&accepted));
    let accounts: Value = serde_json::from_slice(&accepted.stdout).expect("JSON");
    assert_eq!(accounts[0]["id"], fixture.emulator().account_id());

    let missing = user_login(None);
    assert_failure(&missing, 3, &["two-factor", "BRIGHTBOX_OTP"]);

    let rejected = user_login(Some("000000"));
    assert_failure(&rejected, 3, &["two-factor", "rejected"]);
    assert!(
        !stderr(&rejected).contains("000000"),
        "{}",
        stderr(&rejected)
    );
}

#[test]
fn config_file_sections() {
    let fixture = Fixture::start();
    let emulator = fixture.emulator();
    let folder = fixture.scratch.path().join(".brightbox");
    std::fs::create_dir_all(&folder).expect("config folder");
    let config = format!(
        "[core]\ndefault_client = emu\n\n[emu]\napi_url = {}\nclient_id = {}\nsecret = {}\n",
        emulator.api_url(),
        emulator.client_id(),
        emulator.client_secret()
    );
    std::fs::write(folder.join("config"), config).expect("write config");

    let from_home = fixture
        .bare_command()
        .args(["accounts", "list", "--json"])
        .output()
        .expect("brightbox runs");
    assert!(from_home.status.success(), "{}", stderr(&from_home));
    assert!(!stderr(&from_home).contains("no credentials set"));
    let accounts: Value = serde_json::from_slice(&from_home.stdout).expect("JSON");
    assert_eq!(accounts[0]["id"], emulator.account_id());

    let unknown = fixture
        .bare_command()
        .args(["accounts", "list", "--client", "staging"])
        .output()
        .expect("brightbox runs");
    assert_failure(&unknown, 3, &["staging"]);

    let missing = fixture
        .bare_command()
        .args(["accounts", "list", "--config", "no-such-config"])
        .output()
        .expect("brightbox runs");
    assert_failure(&missing, 3, &["no-such-config"]);
}

#[test]
fn secret_flag_not_in_error() {
    let fixture = Fixture::start();
    let output = fixture
        .bare_command()
        .args([
            "--client-id",
            "cli-abcde",
            "--client-secret",
            "very-secret-value",
            "--api-url",
            fixture.emulator().api_url(),
            "images",
            "list",
        ])
        .output()
        .expect("brightbox runs");
    assert_failure(&output, 3, &["authentication failed"]);
    assert!(!stderr(&output).contains("very-secret-value"));
}

#[test]
fn trace_logs_omit_ftp_login() {
    let fixture = Fixture::start();
    let sample = fixture.path("traced.qcow2");
    write_sample_qcow2(&sample).expect("write sample");

    let emulator = fixture.emulator();
    let output = fixture
        .bare_command()
        .env("RUST_LOG", "trace")
        .env("BRIGHTBOX_API_URL", emulator.api_url())
        .env("BRIGHTBOX_CLIENT_ID", emulator.client_id())
        .env("BRIGHTBOX_CLIENT_SECRET", emulator.client_secret())
        .env("BRIGHTBOX_FTP_CA_FILE", emulator.ca_certificate_path())
        .env("BRIGHTBOX_POLL_INTERVAL_MS", "50")
        .args([
            "images",
            "upload-and-register",
            sample.to_str().expect("utf-8"),
        ])
        .args(["--json"])
        .output()
        .expect("brightbox runs");

    let logs = stderr(&output);
    assert!(output.status.success(), "{logs}");
    assert!(
        logs.contains("TRACE"),
        "RUST_LOG=trace wrote no trace events"
    );
    assert!(!logs.contains("PASS "), "FTP login in logs:\n{logs}");
    assert!(
        !logs.contains(emulator.client_secret()),
        "client secret in logs"
    );

    let image: Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    assert_eq!(image["status"], "available");
}

/// Returns the path of an example program, which `cargo test` builds next to
/// the test binaries.
fn example_program(name: &str) -> PathBuf {
    let test_binary = std::env::current_exe().expect("test binary path");
    let profile_dir = test_binary
        .parent()
        .and_then(Path::parent)
        .expect("target profile folder");
    let program = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        program.is_file(),
        "{} is missing; `cargo build -p brightbox-examples --examples` builds it",
        program.display()
    );
    program
}

#[test]
fn upload_example_takes_ftps_unless_orbit_is_requested() {
    let fixture = Fixture::start();
    let emulator = fixture.emulator();
    let sample = fixture.path("route.qcow2");
    write_sample_qcow2(&sample).expect("write sample");
    let run = |extra: &[&str]| {
        Command::new(example_program("upload_and_register"))
            .env_clear()
            .env("HOME", fixture.scratch.path())
            .env("BRIGHTBOX_API_URL", emulator.api_url())
            .env("BRIGHTBOX_CLIENT_ID", emulator.client_id())
            .env("BRIGHTBOX_CLIENT_SECRET", emulator.client_secret())
            .env("BRIGHTBOX_ACCOUNT", emulator.account_id())
            .env("BRIGHTBOX_FTP_CA_FILE", emulator.ca_certificate_path())
            .env("BRIGHTBOX_ORBIT_URL", emulator.orbit_url())
            .arg(&sample)
            .args(extra)
            .output()
            .expect("upload_and_register runs")
    };

    // The exported Orbit URL alone does not select Orbit.
    let ftps = run(&["--name", "over-ftps"]);
    assert!(ftps.status.success(), "{}", stderr(&ftps));
    assert!(stderr(&ftps).contains("route: FTPS"), "{}", stderr(&ftps));
    assert!(!stderr(&ftps).contains("route: Orbit"), "{}", stderr(&ftps));
    assert!(
        String::from_utf8_lossy(&ftps.stdout).contains("over-ftps"),
        "{}",
        String::from_utf8_lossy(&ftps.stdout)
    );

    for flags in [&["--orbit"][..], &["--route", "orbit"][..]] {
        let mut args = vec!["--name", "over-orbit"];
        args.extend_from_slice(flags);
        let orbit = run(&args);
        assert!(orbit.status.success(), "{flags:?}: {}", stderr(&orbit));
        let expected = format!("route: Orbit at {}", emulator.orbit_url());
        assert!(stderr(&orbit).contains(&expected), "{}", stderr(&orbit));
        assert!(
            String::from_utf8_lossy(&orbit.stdout).contains("over-orbit"),
            "{}",
            String::from_utf8_lossy(&orbit.stdout)
        );
    }
}

#[test]
fn stale_emulator_environment_names_the_fix() {
    let fixture = Fixture::start();
    let gone_ca = fixture.path("stopped-emulator/ca.pem");
    let gone_ca_text = gone_ca.to_str().expect("utf-8");
    let with_gone_ca = |args: &[&str]| {
        let emulator = fixture.emulator();
        fixture
            .bare_command()
            .env("BRIGHTBOX_API_URL", emulator.api_url())
            .env("BRIGHTBOX_CLIENT_ID", emulator.client_id())
            .env("BRIGHTBOX_CLIENT_SECRET", emulator.client_secret())
            .env("BRIGHTBOX_FTP_CA_FILE", gone_ca_text)
            .args(args)
            .output()
            .expect("brightbox runs")
    };

    // Commands without FTPS do not read the CA file.
    let listed = with_gone_ca(&["images", "list", "--official", "--json"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let accounts = with_gone_ca(&["accounts", "list"]);
    assert!(accounts.status.success(), "{}", stderr(&accounts));

    let sample = fixture.path("stale.qcow2");
    write_sample_qcow2(&sample).expect("write sample");
    let upload = with_gone_ca(&[
        "images",
        "upload-and-register",
        sample.to_str().expect("utf-8"),
    ]);
    assert_failure(
        &upload,
        4,
        &[
            gone_ca_text,
            "BRIGHTBOX_FTP_CA_FILE",
            "does not exist",
            "start it again",
            "unset the BRIGHTBOX_* variables",
        ],
    );

    // An API port nobody listens on: the fix names the variable and the emulator.
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let dead_api = fixture
        .bare_command()
        .env(
            "BRIGHTBOX_API_URL",
            format!("http://127.0.0.1:{closed_port}/"),
        )
        .env("BRIGHTBOX_CLIENT_ID", fixture.emulator().client_id())
        .env(
            "BRIGHTBOX_CLIENT_SECRET",
            fixture.emulator().client_secret(),
        )
        .args(["images", "list"])
        .output()
        .expect("brightbox runs");
    assert_failure(
        &dead_api,
        1,
        &[
            "connection failed",
            "BRIGHTBOX_API_URL",
            "start it again",
            "unset the BRIGHTBOX_* variables",
        ],
    );
}

#[test]
fn unknown_ids_and_permission_exit_codes() {
    let fixture = Fixture::start();
    let create = fixture.run(&["servers", "create", "img-zzzzz"]);
    assert_failure(
        &create,
        4,
        &["image img-zzzzz does not exist", "`brightbox images list`"],
    );
    assert!(!stderr(&create).contains("GET /1.0"), "{}", stderr(&create));

    let snapshot = fixture.run(&["servers", "snapshot", "srv-zzzzz"]);
    assert_failure(
        &snapshot,
        4,
        &["server srv-zzzzz does not exist", "check the server id"],
    );
    assert!(
        !stderr(&snapshot).contains("GET /1.0"),
        "{}",
        stderr(&snapshot)
    );

    // img-noble belongs to the emulator's Brightbox account, so deleting it is refused.
    let forbidden = fixture.run(&["images", "destroy", "img-noble"]);
    assert_failure(&forbidden, 3, &["destroying image img-noble", "forbidden"]);
}

#[test]
fn fixes_name_command_line_options() {
    let fixture = Fixture::start();
    let (path, image) = fixture.upload_sample("fix-names");
    let id = id_of(&image);
    let target = fixture.path("exists.img");
    std::fs::write(&target, b"old contents").expect("write target");
    let target_text = target.to_str().expect("utf-8");

    for segments in ["1", "2"] {
        let exists = fixture.run(&[
            "images",
            "download",
            id,
            target_text,
            "--segments",
            segments,
        ]);
        assert_failure(&exists, 5, &[target_text, "the file exists", "--overwrite"]);
        assert!(!stderr(&exists).contains("DownloadImageOptions"));
        assert_eq!(std::fs::read(&target).expect("read"), b"old contents");

        let replaced = fixture.json(&[
            "images",
            "download",
            id,
            target_text,
            "--segments",
            segments,
            "--overwrite",
        ]);
        assert_eq!(replaced["sha256"], sha256_of(&path));
        assert_eq!(sha256_of(&target), sha256_of(&path));
        std::fs::write(&target, b"old contents").expect("write target");
    }

    let bad_name = fixture.run(&[
        "images",
        "upload-and-register",
        path.to_str().expect("utf-8"),
        "--remote-name",
        "bad name",
    ]);
    assert_failure(&bad_name, 5, &["\"bad name\"", "--remote-name"]);
    assert!(!stderr(&bad_name).contains("ImageSpec"));

    let no_ca = fixture
        .bare_command()
        .env("BRIGHTBOX_API_URL", fixture.emulator().api_url())
        .env("BRIGHTBOX_CLIENT_ID", fixture.emulator().client_id())
        .env(
            "BRIGHTBOX_CLIENT_SECRET",
            fixture.emulator().client_secret(),
        )
        .args([
            "images",
            "upload-and-register",
            path.to_str().expect("utf-8"),
            "--name",
            "no-ca",
        ])
        .output()
        .expect("brightbox runs");
    assert_failure(&no_ca, 1, &["not trusted", "--ftp-ca-file"]);
    assert!(!stderr(&no_ca).contains("FtpsConfig"), "{}", stderr(&no_ca));
}

#[test]
fn empty_list_says_so() {
    let fixture = Fixture::start();
    let table = fixture.run(&["images", "list", "--name", "no-such-image-*"]);
    assert!(table.status.success(), "{}", stderr(&table));
    assert!(table.stdout.is_empty(), "{:?}", table.stdout);
    assert_eq!(stderr(&table).trim(), "No images match.");

    let json = fixture.json(&["images", "list", "--name", "no-such-image-*"]);
    assert_eq!(json, Value::Array(Vec::new()));
}

#[test]
fn snapshot_example_runs_twice() {
    let fixture = Fixture::start();
    let run = |extra: &[&str]| {
        Command::new(example_program("snapshot_and_download"))
            .env_clear()
            .env("HOME", fixture.scratch.path())
            .current_dir(fixture.scratch.path())
            .args(extra)
            .output()
            .expect("snapshot_and_download runs")
    };
    let mut written = Vec::new();
    for _ in 0..2 {
        let output = run(&[]);
        assert!(output.status.success(), "{}", stderr(&output));
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let line = stdout
            .lines()
            .find(|line| line.contains("sha256"))
            .unwrap_or_else(|| panic!("no download line: {stdout}"));
        let path = PathBuf::from(line.split(": ").next().expect("path"));
        assert!(path.is_file(), "{}", path.display());
        assert!(
            stderr(&output).contains(&format!("to {}", path.display())),
            "{}",
            stderr(&output)
        );
        written.push(path);
    }
    assert_ne!(written[0], written[1]);
    assert!(!fixture.path("snapshot.img").exists());
    for path in &written {
        let folder = path.parent().expect("folder");
        std::fs::remove_dir_all(folder).expect("remove the example's folder");
    }

    let output = fixture.path("chosen.img");
    std::fs::write(&output, b"keep").expect("write output");
    let refused = run(&["--output", output.to_str().expect("utf-8")]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("--overwrite"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(std::fs::read(&output).expect("read"), b"keep");
}

#[test]
fn retired_ftp_names_cli_alternatives() {
    let fixture = Fixture::start();
    fixture.emulator().faults().ftp_retired(true);
    let sample = fixture.path("retired.qcow2");
    write_sample_qcow2(&sample).expect("write sample");
    let output = fixture.run(&[
        "images",
        "upload-and-register",
        sample.to_str().expect("utf-8"),
    ]);
    let text = stderr(&output);
    assert_ne!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("retired in 2023"), "{text}");
    assert!(text.contains("--route orbit"), "{text}");
    assert!(
        text.contains("`brightbox images register --http-url URL`"),
        "{text}"
    );
    assert!(!text.contains("ImageSource"), "{text}");
}
