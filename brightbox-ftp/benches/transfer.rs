//! Transfer benchmark: brightbox-ftp against curl and lftp on the same local vsftpd.
//!
//! `scripts/bench.sh` installs the tools, starts vsftpd and runs this binary. To run it by hand,
//! start vsftpd with `scripts/vsftpd.sh`, source its `env` file and run
//! `cargo bench -p brightbox-ftp --bench transfer`.
//!
//! Every transfer runs in its own child process under GNU `/usr/bin/time`, so wall time, CPU time
//! (user + system) and peak RSS are measured the same way for all three clients. For this crate the
//! child is this binary, started again with the `child` argument. Runs alternate between the
//! clients so that drift in machine load spreads over all of them.
//!
//! Environment:
//!
//! - `BRIGHTBOX_TEST_VSFTPD_ADDR`, `_USER`, `_PASSWORD`, `_CA`, `_ROOT`: the server, as written
//!   by `scripts/vsftpd.sh`. curl reads the password from a netrc file with mode 0600, and lftp
//!   reads it from `LFTP_PASSWORD`. It is never on a command line or in the output.
//! - `BENCH_SIZE_MIB` (default 2048): size of the random test file.
//! - `BENCH_RUNS` (default 3): runs per client and operation; the table shows medians.
//! - `BENCH_DIR` (default the system temporary directory): where the local files go. It needs
//!   room for two copies of the test file; the server's root needs room for one more.
//! - `BENCH_RSS_SIZES_MIB` (default `1024,4096`): sizes of sparse files uploaded once each by
//!   this crate to record peak RSS against file size. An empty value skips these uploads.
//! - `BENCH_TOOLS` (default `ours,ours-nohash,curl,lftp`): the clients to run. `ours-nohash` is
//!   this crate with the SHA-256 of uploads and downloads turned off, which does the same work
//!   as curl and lftp.

use std::collections::BTreeMap;
use std::error::Error;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

type BenchResult<T> = Result<T, Box<dyn Error>>;

/// Remote directory that vsftpd's test user can write to.
const REMOTE_DIR: &str = "incoming";
const MIB: u64 = 1024 * 1024;

fn main() {
    let arguments = std::env::args().skip(1).collect::<Vec<_>>();
    let outcome = if arguments.first().map(String::as_str) == Some("child") {
        child::run(arguments.get(1..).unwrap_or_default())
    } else if arguments.iter().any(|argument| argument == "--bench") {
        // `cargo bench` passes `--bench`.
        run_benchmark()
    } else {
        // `cargo test --all-targets` runs bench targets without `--bench`, usually in a debug
        // build; a multi-gigabyte run there would take minutes and measure nothing useful.
        eprintln!(
            "transfer benchmark skipped: run it with `cargo bench -p brightbox-ftp --bench transfer`"
        );
        Ok(())
    };
    if let Err(error) = outcome {
        eprintln!("transfer benchmark failed: {error}");
        let mut source = error.source();
        while let Some(cause) = source {
            eprintln!("  caused by: {cause}");
            source = cause.source();
        }
        std::process::exit(1);
    }
}

/// A client under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Tool {
    Ours,
    OursNoHash,
    Curl,
    Lftp,
}

impl Tool {
    fn label(self) -> &'static str {
        match self {
            Tool::Ours => "brightbox-ftp",
            Tool::OursNoHash => "brightbox-ftp, no SHA-256",
            Tool::Curl => "curl",
            Tool::Lftp => "lftp",
        }
    }

    /// Returns the label in a form that fits a remote file name.
    fn slug(self) -> &'static str {
        match self {
            Tool::Ours => "brightbox-ftp",
            Tool::OursNoHash => "brightbox-ftp-nohash",
            Tool::Curl => "curl",
            Tool::Lftp => "lftp",
        }
    }

    fn parse(value: &str) -> BenchResult<Tool> {
        match value.trim() {
            "ours" | "brightbox-ftp" => Ok(Tool::Ours),
            "ours-nohash" => Ok(Tool::OursNoHash),
            "curl" => Ok(Tool::Curl),
            "lftp" => Ok(Tool::Lftp),
            other => Err(format!(
                "unknown tool {other:?} in BENCH_TOOLS; use a comma-separated list of ours, ours-nohash, curl, lftp"
            )
            .into()),
        }
    }
}

/// A measured operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Operation {
    Upload,
    Download,
    /// Download over four parallel data connections (`pget -n 4` in lftp).
    Download4,
}

impl Operation {
    fn label(self) -> &'static str {
        match self {
            Operation::Upload => "upload",
            Operation::Download => "download",
            Operation::Download4 => "download, 4 segments",
        }
    }
}

/// One child process's measurements.
#[derive(Debug, Clone, Copy)]
struct Sample {
    wall: Duration,
    cpu_seconds: f64,
    peak_rss_kib: u64,
}

impl Sample {
    fn megabytes_per_second(&self, bytes: u64) -> f64 {
        bytes as f64 / 1e6 / self.wall.as_secs_f64()
    }
}

/// Server and run settings read from the environment.
struct Settings {
    address: String,
    host: String,
    port: String,
    user: String,
    password: String,
    ca_file: PathBuf,
    server_root: PathBuf,
    size_mib: u64,
    runs: usize,
    bench_dir: PathBuf,
    rss_sizes_mib: Vec<u64>,
    tools: Vec<Tool>,
}

fn required(name: &str) -> BenchResult<String> {
    std::env::var(name).map_err(|_| {
        format!("{name} is not set: run scripts/vsftpd.sh as root and source its env file").into()
    })
}

fn number_from_env(name: &str, default: u64) -> BenchResult<u64> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(text) => match text.trim().parse::<u64>() {
            Ok(value) if value > 0 => Ok(value),
            _ => Err(format!("{name}={text:?} is not a positive whole number").into()),
        },
    }
}

impl Settings {
    fn from_env() -> BenchResult<Settings> {
        let address = required("BRIGHTBOX_TEST_VSFTPD_ADDR")?;
        let Some((host, port)) = address.rsplit_once(':') else {
            return Err(format!("BRIGHTBOX_TEST_VSFTPD_ADDR={address:?} is not host:port").into());
        };
        let rss_sizes_mib = match std::env::var("BENCH_RSS_SIZES_MIB") {
            Err(_) => vec![1024, 4096],
            Ok(text) => text
                .split(',')
                .filter(|part| !part.trim().is_empty())
                .map(|part| {
                    part.trim().parse::<u64>().map_err(|_| {
                        format!("BENCH_RSS_SIZES_MIB contains {part:?}, which is not a number")
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        };
        let tools = match std::env::var("BENCH_TOOLS") {
            Err(_) => vec![Tool::Ours, Tool::OursNoHash, Tool::Curl, Tool::Lftp],
            Ok(text) => text
                .split(',')
                .map(Tool::parse)
                .collect::<BenchResult<Vec<_>>>()?,
        };
        Ok(Settings {
            host: host.to_owned(),
            port: port.to_owned(),
            address: address.clone(),
            user: required("BRIGHTBOX_TEST_VSFTPD_USER")?,
            password: required("BRIGHTBOX_TEST_VSFTPD_PASSWORD")?,
            ca_file: required("BRIGHTBOX_TEST_VSFTPD_CA")?.into(),
            server_root: required("BRIGHTBOX_TEST_VSFTPD_ROOT")?.into(),
            size_mib: number_from_env("BENCH_SIZE_MIB", 2048)?,
            runs: usize::try_from(number_from_env("BENCH_RUNS", 3)?)?,
            bench_dir: std::env::var_os("BENCH_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(std::env::temp_dir),
            rss_sizes_mib,
            tools,
        })
    }

    fn url(&self, remote_path: &str) -> String {
        format!("ftp://{}/{remote_path}", self.address)
    }

    /// Returns the server-side path of `remote_path`, for size checks and clean-up.
    fn server_path(&self, remote_path: &str) -> PathBuf {
        self.server_root.join(remote_path)
    }
}

/// Local working directory and remote files, removed when dropped.
struct Workspace {
    dir: PathBuf,
    remote_files: Vec<PathBuf>,
}

impl Drop for Workspace {
    fn drop(&mut self) {
        for path in &self.remote_files {
            let _ = std::fs::remove_file(path);
        }
        if let Err(error) = std::fs::remove_dir_all(&self.dir) {
            eprintln!("cannot remove {}: {error}", self.dir.display());
        }
    }
}

fn run_benchmark() -> BenchResult<()> {
    let settings = Settings::from_env()?;
    let mut workspace = Workspace {
        dir: settings
            .bench_dir
            .join(format!("brightbox-bench-{}", std::process::id())),
        remote_files: Vec::new(),
    };
    std::fs::create_dir_all(&workspace.dir)?;
    let netrc = write_netrc(&settings, &workspace.dir)?;

    let size = settings.size_mib * MIB;
    let source = workspace.dir.join("source.img");
    eprintln!(
        "writing {} MiB from /dev/urandom to {}",
        settings.size_mib,
        source.display()
    );
    let source_sha = write_random_file(&source, size)?;
    let download = workspace.dir.join("download.img");

    let mut samples: BTreeMap<(Operation, Tool), Vec<Sample>> = BTreeMap::new();
    for run in 0..settings.runs {
        // Rotate the order each run so no client always goes first.
        let mut order = settings.tools.clone();
        let shift = run % order.len().max(1);
        order.rotate_left(shift);
        for tool in order {
            let name = format!("bench-{}-{}.img", tool.slug(), std::process::id());
            let remote_path = format!("{REMOTE_DIR}/{name}");
            let server_copy = settings.server_path(&remote_path);
            workspace.remote_files.push(server_copy.clone());

            let sample = measure(&upload_command(&settings, tool, &netrc, &source, &name)?)?;
            check_length(&server_copy, size)?;
            report(run, tool, Operation::Upload, size, sample);
            samples
                .entry((Operation::Upload, tool))
                .or_default()
                .push(sample);

            for operation in [Operation::Download, Operation::Download4] {
                let Some(command) =
                    download_command(&settings, tool, operation, &netrc, &remote_path, &download)?
                else {
                    continue;
                };
                let sample = measure(&command)?;
                check_length(&download, size)?;
                if run == 0 {
                    let sha = sha256_file(&download)?;
                    if sha != source_sha {
                        return Err(format!(
                            "{} {} returned different content: SHA-256 {sha}, expected {source_sha}",
                            tool.label(),
                            operation.label()
                        )
                        .into());
                    }
                }
                std::fs::remove_file(&download)?;
                report(run, tool, operation, size, sample);
                samples.entry((operation, tool)).or_default().push(sample);
            }
            std::fs::remove_file(&server_copy)?;
        }
    }
    std::fs::remove_file(&source)?;

    let mut rss_rows = Vec::new();
    if settings.tools.contains(&Tool::Ours) {
        for &size_mib in &settings.rss_sizes_mib {
            let sparse = workspace.dir.join(format!("sparse-{size_mib}.img"));
            std::fs::File::create(&sparse)?.set_len(size_mib * MIB)?;
            let name = format!("bench-sparse-{size_mib}-{}.img", std::process::id());
            let server_copy = settings.server_path(&format!("{REMOTE_DIR}/{name}"));
            workspace.remote_files.push(server_copy.clone());
            let sample = measure(&upload_command(
                &settings,
                Tool::Ours,
                &netrc,
                &sparse,
                &name,
            )?)?;
            check_length(&server_copy, size_mib * MIB)?;
            std::fs::remove_file(&server_copy)?;
            std::fs::remove_file(&sparse)?;
            eprintln!(
                "sparse upload {size_mib} MiB: {:.0} MB/s, peak RSS {:.1} MiB",
                sample.megabytes_per_second(size_mib * MIB),
                sample.peak_rss_kib as f64 / 1024.0
            );
            rss_rows.push((size_mib, sample));
        }
    }

    print_tables(&settings, size, &samples, &rss_rows);
    Ok(())
}

fn report(run: usize, tool: Tool, operation: Operation, size: u64, sample: Sample) {
    eprintln!(
        "run {}: {:<14} {:<22} {:>7.1} MB/s  {:>6.2} s wall  {:>6.2} s CPU  {:>7.1} MiB peak RSS",
        run + 1,
        tool.label(),
        operation.label(),
        sample.megabytes_per_second(size),
        sample.wall.as_secs_f64(),
        sample.cpu_seconds,
        sample.peak_rss_kib as f64 / 1024.0
    );
}

/// Writes a netrc file readable only by the owner, so curl gets the password without a
/// command-line argument.
fn write_netrc(settings: &Settings, dir: &Path) -> BenchResult<PathBuf> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join("netrc");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    writeln!(
        file,
        "machine {} login {} password {}",
        settings.host, settings.user, settings.password
    )?;
    Ok(path)
}

/// Fills `path` with `length` bytes from `/dev/urandom` and returns their SHA-256 in hex.
fn write_random_file(path: &Path, length: u64) -> BenchResult<String> {
    let mut random = std::fs::File::open("/dev/urandom")?;
    let mut output =
        std::io::BufWriter::with_capacity(8 * MIB as usize, std::fs::File::create(path)?);
    let mut hasher = Sha256::new();
    let mut buffer = vec![0_u8; 4 * MIB as usize];
    let mut left = length;
    while left > 0 {
        let take = usize::try_from(left.min(buffer.len() as u64))?;
        let chunk = buffer.get_mut(..take).unwrap_or_default();
        random.read_exact(chunk)?;
        hasher.update(&*chunk);
        output.write_all(chunk)?;
        left -= take as u64;
    }
    output.flush()?;
    Ok(hex::encode(hasher.finalize()))
}

fn sha256_file(path: &Path) -> BenchResult<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0_u8; 4 * MIB as usize];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(buffer.get(..read).unwrap_or_default());
    }
}

fn check_length(path: &Path, expected: u64) -> BenchResult<()> {
    let actual = std::fs::metadata(path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?
        .len();
    if actual != expected {
        return Err(format!(
            "{} has {actual} bytes after the transfer, expected {expected}",
            path.display()
        )
        .into());
    }
    Ok(())
}

/// A program and its arguments, plus environment variables that carry secrets.
struct Job {
    program: PathBuf,
    arguments: Vec<String>,
    environment: Vec<(String, String)>,
}

/// Returns the lftp settings shared by every lftp job: TLS on control and data, the test CA.
fn lftp_prelude(settings: &Settings) -> String {
    format!(
        "set ftp:ssl-force true; set ftp:ssl-protect-data true; set ssl:ca-file {ca}; \
         set net:max-retries 1; set net:timeout 60; set xfer:clobber on; \
         open -u {user} --env-password -p {port} ftp://{host}",
        ca = settings.ca_file.display(),
        user = settings.user,
        port = settings.port,
        host = settings.host,
    )
}

fn upload_command(
    settings: &Settings,
    tool: Tool,
    netrc: &Path,
    local: &Path,
    name: &str,
) -> BenchResult<Job> {
    let local_text = local.display().to_string();
    let job = match tool {
        Tool::Ours | Tool::OursNoHash => Job {
            program: std::env::current_exe()?,
            arguments: vec![
                "child".into(),
                "upload".into(),
                local_text,
                REMOTE_DIR.into(),
                name.into(),
            ],
            environment: child_environment(tool),
        },
        Tool::Curl => Job {
            program: "curl".into(),
            arguments: vec![
                "--silent".into(),
                "--show-error".into(),
                "--ssl-reqd".into(),
                "--cacert".into(),
                settings.ca_file.display().to_string(),
                "--netrc-file".into(),
                netrc.display().to_string(),
                "-T".into(),
                local_text,
                settings.url(&format!("{REMOTE_DIR}/{name}")),
            ],
            environment: Vec::new(),
        },
        Tool::Lftp => Job {
            program: "lftp".into(),
            arguments: vec![
                "-c".into(),
                format!(
                    "{}; put {local_text} -o {REMOTE_DIR}/{name}",
                    lftp_prelude(settings)
                ),
            ],
            environment: vec![("LFTP_PASSWORD".into(), settings.password.clone())],
        },
    };
    Ok(job)
}

/// Returns the environment of this crate's child process for `tool`.
fn child_environment(tool: Tool) -> Vec<(String, String)> {
    if tool == Tool::OursNoHash {
        vec![
            ("BENCH_UPLOAD_SHA256".into(), "0".into()),
            ("BENCH_DOWNLOAD_SHA256".into(), "0".into()),
        ]
    } else {
        Vec::new()
    }
}

/// Returns the download job, or `None` when `tool` has no such operation.
fn download_command(
    settings: &Settings,
    tool: Tool,
    operation: Operation,
    netrc: &Path,
    remote_path: &str,
    local: &Path,
) -> BenchResult<Option<Job>> {
    let local_text = local.display().to_string();
    let job = match (tool, operation) {
        (_, Operation::Upload) => None,
        (Tool::Ours | Tool::OursNoHash, Operation::Download | Operation::Download4) => {
            let segments = if operation == Operation::Download4 {
                4
            } else {
                1
            };
            Some(Job {
                program: std::env::current_exe()?,
                arguments: vec![
                    "child".into(),
                    "download".into(),
                    remote_path.into(),
                    local_text,
                    segments.to_string(),
                ],
                environment: child_environment(tool),
            })
        }
        (Tool::Curl, Operation::Download) => Some(Job {
            program: "curl".into(),
            arguments: vec![
                "--silent".into(),
                "--show-error".into(),
                "--ssl-reqd".into(),
                "--cacert".into(),
                settings.ca_file.display().to_string(),
                "--netrc-file".into(),
                netrc.display().to_string(),
                "-o".into(),
                local_text,
                settings.url(remote_path),
            ],
            environment: Vec::new(),
        }),
        (Tool::Curl, Operation::Download4) => None,
        (Tool::Lftp, Operation::Download | Operation::Download4) => {
            let get = if operation == Operation::Download4 {
                "pget -n 4"
            } else {
                "get"
            };
            Some(Job {
                program: "lftp".into(),
                arguments: vec![
                    "-c".into(),
                    format!(
                        "{}; {get} {remote_path} -o {local_text}",
                        lftp_prelude(settings)
                    ),
                ],
                environment: vec![("LFTP_PASSWORD".into(), settings.password.clone())],
            })
        }
    };
    Ok(job)
}

/// Runs `job` under `/usr/bin/time` and returns its wall time, CPU time and peak RSS.
fn measure(job: &Job) -> BenchResult<Sample> {
    let report = tempfile::NamedTempFile::new()?;
    let started = Instant::now();
    let output = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%U %S %M")
        .arg("-o")
        .arg(report.path())
        .arg(&job.program)
        .args(&job.arguments)
        .envs(job.environment.iter().map(|(key, value)| (key, value)))
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("cannot run /usr/bin/time (install GNU time): {error}"))?;
    let wall = started.elapsed();
    if !output.status.success() {
        return Err(format!(
            "{} exited with {}: {}",
            job.program.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )
        .into());
    }

    let text = std::fs::read_to_string(report.path())?;
    let fields = text
        .lines()
        .last()
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>();
    let [user, system, rss] = fields.as_slice() else {
        return Err(format!("unexpected /usr/bin/time output {text:?}").into());
    };
    Ok(Sample {
        wall,
        cpu_seconds: user.parse::<f64>()? + system.parse::<f64>()?,
        peak_rss_kib: rss.parse()?,
    })
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    match values.len() {
        0 => f64::NAN,
        length if length % 2 == 1 => values.get(middle).copied().unwrap_or(f64::NAN),
        _ => {
            let low = values.get(middle - 1).copied().unwrap_or(f64::NAN);
            let high = values.get(middle).copied().unwrap_or(f64::NAN);
            (low + high) / 2.0
        }
    }
}

/// Medians of one client's samples for one operation.
#[derive(Debug, Clone, Copy)]
struct Medians {
    megabytes_per_second: f64,
    cpu_seconds: f64,
    peak_rss_mib: f64,
}

fn medians(samples: &[Sample], size: u64) -> Medians {
    let mut speed = samples
        .iter()
        .map(|sample| sample.megabytes_per_second(size))
        .collect::<Vec<_>>();
    let mut cpu = samples.iter().map(|s| s.cpu_seconds).collect::<Vec<_>>();
    let mut rss = samples
        .iter()
        .map(|sample| sample.peak_rss_kib as f64 / 1024.0)
        .collect::<Vec<_>>();
    Medians {
        megabytes_per_second: median(&mut speed),
        cpu_seconds: median(&mut cpu),
        peak_rss_mib: median(&mut rss),
    }
}

fn print_tables(
    settings: &Settings,
    size: u64,
    samples: &BTreeMap<(Operation, Tool), Vec<Sample>>,
    rss_rows: &[(u64, Sample)],
) {
    println!();
    println!(
        "File: {} MiB of random data; {} run(s) per client; medians.",
        settings.size_mib, settings.runs
    );
    println!();
    println!("| operation | client | MB/s | CPU s (user+sys) | peak RSS MiB |");
    println!("|---|---|---:|---:|---:|");
    for ((operation, tool), list) in samples {
        let m = medians(list, size);
        println!(
            "| {} | {} | {:.0} | {:.2} | {:.1} |",
            operation.label(),
            tool.label(),
            m.megabytes_per_second,
            m.cpu_seconds,
            m.peak_rss_mib
        );
    }

    println!();
    println!(
        "Ratios, brightbox-ftp / the faster of curl and lftp (MB/s above 1 is faster; CPU and RSS below 1 use less):"
    );
    println!();
    println!("| operation | client | compared with | MB/s ratio | CPU ratio | RSS ratio |");
    println!("|---|---|---|---:|---:|---:|");
    let rows = [Operation::Upload, Operation::Download, Operation::Download4]
        .into_iter()
        .flat_map(|operation| [(operation, Tool::Ours), (operation, Tool::OursNoHash)]);
    for (operation, ours_tool) in rows {
        let Some(ours) = samples.get(&(operation, ours_tool)) else {
            continue;
        };
        let ours = medians(ours, size);
        let fastest = [Tool::Curl, Tool::Lftp]
            .into_iter()
            .filter_map(|tool| {
                samples
                    .get(&(operation, tool))
                    .map(|list| (tool, medians(list, size)))
            })
            .max_by(|a, b| {
                a.1.megabytes_per_second
                    .total_cmp(&b.1.megabytes_per_second)
            });
        let Some((tool, other)) = fastest else {
            continue;
        };
        println!(
            "| {} | {} | {} | {:.2} | {:.2} | {:.2} |",
            operation.label(),
            ours_tool.label(),
            tool.label(),
            ours.megabytes_per_second / other.megabytes_per_second,
            ours.cpu_seconds / other.cpu_seconds,
            ours.peak_rss_mib / other.peak_rss_mib
        );
    }

    if !rss_rows.is_empty() {
        println!();
        println!("Peak RSS of one brightbox-ftp upload of a sparse file:");
        println!();
        println!("| file size MiB | MB/s | CPU s | peak RSS MiB |");
        println!("|---:|---:|---:|---:|");
        for (size_mib, sample) in rss_rows {
            println!(
                "| {size_mib} | {:.0} | {:.2} | {:.1} |",
                sample.megabytes_per_second(size_mib * MIB),
                sample.cpu_seconds,
                sample.peak_rss_kib as f64 / 1024.0
            );
        }
    }
}

/// The transfer that runs in the child process for this crate.
mod child {
    use std::path::Path;

    use brightbox_ftp::{DownloadOptions, FtpsClient, FtpsConfig, UploadOptions};

    use super::{BenchResult, required};

    /// Runs `upload LOCAL DIR NAME` or `download REMOTE_PATH LOCAL SEGMENTS`.
    pub(super) fn run(arguments: &[String]) -> BenchResult<()> {
        // With RUST_LOG set, the crate's tracing events go to stderr, for example to see how
        // long each step of a transfer takes. The bench itself never sets it.
        if std::env::var_os("RUST_LOG").is_some() {
            tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .with_writer(std::io::stderr)
                .with_ansi(false)
                .init();
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let config = config()?;
            let mut client = FtpsClient::connect(&config).await?;
            match arguments {
                [operation, local, dir, name] if operation == "upload" => {
                    // BENCH_UPLOAD_SHA256=0 measures an upload without hashing, by hand.
                    let hash =
                        std::env::var("BENCH_UPLOAD_SHA256").map_or(true, |value| value != "0");
                    let options = UploadOptions::new().sha256(hash);
                    let upload = client
                        .upload_file_with(Path::new(local), dir, name, &options)
                        .await?;
                    println!("uploaded {} bytes to {}", upload.bytes, upload.remote_path);
                }
                [operation, remote_path, local, segments] if operation == "download" => {
                    // BENCH_DOWNLOAD_SHA256=0 measures a download without hashing, and
                    // BENCH_DOWNLOAD_DIRECT=0 one through the page cache, by hand.
                    let hash =
                        std::env::var("BENCH_DOWNLOAD_SHA256").map_or(true, |value| value != "0");
                    let direct =
                        std::env::var("BENCH_DOWNLOAD_DIRECT").map_or(true, |value| value != "0");
                    let options = DownloadOptions::default()
                        .segments(segments.parse()?)
                        .sha256(hash)
                        .direct_io(direct);
                    let download = client
                        .download_file(remote_path, Path::new(local), &options)
                        .await?;
                    println!(
                        "downloaded {} bytes, SHA-256 {}",
                        download.bytes, download.sha256
                    );
                }
                other => {
                    return Err(format!("unknown child arguments {other:?}").into());
                }
            }
            client.quit().await?;
            Ok(())
        })
    }

    fn config() -> BenchResult<FtpsConfig> {
        let ca = std::fs::read(required("BRIGHTBOX_TEST_VSFTPD_CA")?)?;
        let config = FtpsConfig::from_host_port(
            &required("BRIGHTBOX_TEST_VSFTPD_ADDR")?,
            required("BRIGHTBOX_TEST_VSFTPD_USER")?,
            required("BRIGHTBOX_TEST_VSFTPD_PASSWORD")?,
        )?
        .add_root_certificate_pem(&ca)?;
        Ok(config)
    }
}
