//! Helpers shared by the example programs: a small valid disk image to
//! upload when the user gives none, the Brightbox CLI's table layout, and
//! the connection to either the real API or an in-process emulator.

mod tables;

pub use tables::{account_table, detail_view, image_details, image_table, server_table, table};

use std::error::Error;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use brightbox_api::{AccountId, Client, WaitOptions};
use brightbox_emulator::Emulator;
use brightbox_library::Library;

const CLUSTER_BITS: u32 = 16;
const CLUSTER_SIZE: u64 = 1 << CLUSTER_BITS;
/// qcow2 flag on L1 and L2 entries: the cluster's refcount is exactly one.
const QCOW_OFLAG_COPIED: u64 = 1 << 63;
const SECTOR: u64 = 512;
/// First sector of the partition, 1 MiB in, as partitioning tools align it.
const PARTITION_START_SECTOR: u64 = 2048;

/// Virtual size of the sample image: 64 MiB.
pub const SAMPLE_VIRTUAL_SIZE: u64 = 64 << 20;

/// Writes a qcow2 (version 3) disk image to `path` and returns its length.
///
/// The guest disk is [`SAMPLE_VIRTUAL_SIZE`] bytes with an MBR partition
/// table holding one Linux partition from 1 MiB to the end. The file holds
/// six 64 KiB clusters: header, refcount table, refcount block, L1 table,
/// L2 table, and the data cluster with the MBR. `qemu-img check` accepts it.
///
/// # Errors
///
/// Returns the I/O error if the file cannot be created or written.
pub fn write_sample_qcow2(path: &Path) -> io::Result<u64> {
    let clusters = 6u64;
    let mut image = vec![0u8; (clusters * CLUSTER_SIZE) as usize];
    let refcount_table = CLUSTER_SIZE;
    let refcount_block = 2 * CLUSTER_SIZE;
    let l1_table = 3 * CLUSTER_SIZE;
    let l2_table = 4 * CLUSTER_SIZE;
    let data = 5 * CLUSTER_SIZE;

    let header: &mut [u8] = &mut image[..CLUSTER_SIZE as usize];
    put_u32(header, 0, 0x5146_49fb); // "QFI\xfb"
    put_u32(header, 4, 3); // version
    put_u32(header, 20, CLUSTER_BITS);
    put_u64(header, 24, SAMPLE_VIRTUAL_SIZE);
    put_u32(header, 36, 1); // L1 entries: one L2 table maps 512 MiB
    put_u64(header, 40, l1_table);
    put_u64(header, 48, refcount_table);
    put_u32(header, 56, 1); // refcount table clusters
    put_u32(header, 96, 4); // refcount order: 16-bit refcounts
    put_u32(header, 100, 104); // header length; the end-of-extensions marker follows as zeros

    put_u64(&mut image, refcount_table as usize, refcount_block);
    for cluster in 0..clusters {
        let offset = (refcount_block + 2 * cluster) as usize;
        image[offset..offset + 2].copy_from_slice(&1u16.to_be_bytes());
    }
    put_u64(&mut image, l1_table as usize, l2_table | QCOW_OFLAG_COPIED);
    put_u64(&mut image, l2_table as usize, data | QCOW_OFLAG_COPIED);
    write_mbr(&mut image[data as usize..(data + SECTOR) as usize]);

    let mut file = std::fs::File::create(path)?;
    file.write_all(&image)?;
    file.sync_all()?;
    Ok(image.len() as u64)
}

/// Fills a 512-byte sector with an MBR holding one Linux partition.
fn write_mbr(sector: &mut [u8]) {
    sector[440..444].copy_from_slice(&0x4242_4242u32.to_le_bytes()); // disk signature
    let entry = &mut sector[446..462];
    entry[0] = 0x00; // not bootable
    entry[1..4].copy_from_slice(&[0xfe, 0xff, 0xff]); // CHS unused: LBA only
    entry[4] = 0x83; // Linux
    entry[5..8].copy_from_slice(&[0xfe, 0xff, 0xff]);
    let sectors = SAMPLE_VIRTUAL_SIZE / SECTOR - PARTITION_START_SECTOR;
    entry[8..12].copy_from_slice(&(PARTITION_START_SECTOR as u32).to_le_bytes());
    entry[12..16].copy_from_slice(&(sectors as u32).to_le_bytes());
    sector[510] = 0x55;
    sector[511] = 0xaa;
}

fn put_u32(buffer: &mut [u8], offset: usize, value: u32) {
    buffer[offset..offset + 4].copy_from_slice(&value.to_be_bytes());
}

fn put_u64(buffer: &mut [u8], offset: usize, value: u64) {
    buffer[offset..offset + 8].copy_from_slice(&value.to_be_bytes());
}

/// Formats an error and its chain of sources as one line, skipping a
/// source whose text the previous message already contains.
pub fn error_chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        if !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        source = cause.source();
    }
    text
}

/// API and FTPS connection options shared by the example programs.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectOptions {
    /// API client id (cli-xxxxx). Without it the local emulator is started in this process.
    #[arg(long, env = "BRIGHTBOX_CLIENT_ID")]
    pub client_id: Option<String>,
    /// API client secret.
    #[arg(long, env = "BRIGHTBOX_CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: Option<String>,
    /// API base URL.
    #[arg(long, env = "BRIGHTBOX_API_URL", default_value = brightbox_api::DEFAULT_BASE_URL)]
    pub api_url: String,
    /// Account to work in (acc-xxxxx); defaults to the client's only account.
    #[arg(long, env = "BRIGHTBOX_ACCOUNT")]
    pub account_id: Option<AccountId>,
    /// PEM file with an extra CA to trust for the FTPS server.
    #[arg(long, env = "BRIGHTBOX_FTP_CA_FILE")]
    pub ftp_ca_file: Option<PathBuf>,
}

/// A [`Library`] and, when no API credentials were given, the emulator it
/// talks to. Call [`Connection::shutdown`] at the end.
#[derive(Debug)]
pub struct Connection {
    /// The library client.
    pub library: Library,
    /// The in-process emulator, when one was started.
    pub emulator: Option<Emulator>,
}

impl Connection {
    /// Stops the emulator, if one was started.
    pub async fn shutdown(self) {
        if let Some(emulator) = self.emulator {
            emulator.shutdown().await;
        }
    }
}

/// Connects to the API named by `options`, or starts the emulator when
/// `client_id` is unset.
///
/// # Errors
///
/// Returns an error when the secret is missing, the CA file cannot be read
/// or parsed, the API client cannot be built, or the emulator fails to start.
pub async fn connect(options: &ConnectOptions) -> Result<Connection, Box<dyn Error>> {
    let Some(client_id) = &options.client_id else {
        return start_emulator(options).await;
    };
    let secret = options
        .client_secret
        .clone()
        .ok_or("BRIGHTBOX_CLIENT_SECRET is not set; set it with BRIGHTBOX_CLIENT_ID")?;
    let api = Client::builder()
        .base_url(&options.api_url)
        .client_credentials(client_id.clone(), secret)
        .build()?;
    let mut builder = Library::builder(api);
    if let Some(account) = &options.account_id {
        builder = builder.account_id(account.clone());
    }
    if let Some(ca) = &options.ftp_ca_file {
        let pem = std::fs::read(ca).map_err(|error| {
            if error.kind() == io::ErrorKind::NotFound {
                format!(
                    "CA file {} (--ftp-ca-file or BRIGHTBOX_FTP_CA_FILE) does not exist; \
                     if an emulator printed this setting, it may have stopped: start it again \
                     and export the BRIGHTBOX_* lines it prints, or unset the BRIGHTBOX_* variables",
                    ca.display()
                )
            } else {
                format!("cannot read CA file {}: {error}", ca.display())
            }
        })?;
        builder = builder.add_root_certificate_pem(pem).map_err(|error| {
            format!("invalid CA file {}: {}", ca.display(), error_chain(&error))
        })?;
    }
    Ok(Connection {
        library: builder.build(),
        emulator: None,
    })
}

async fn start_emulator(options: &ConnectOptions) -> Result<Connection, Box<dyn Error>> {
    let ignored = [
        (
            "--api-url",
            options.api_url != brightbox_api::DEFAULT_BASE_URL,
        ),
        ("--account-id", options.account_id.is_some()),
        ("--ftp-ca-file", options.ftp_ca_file.is_some()),
    ];
    for (option, given) in ignored {
        if given {
            tracing::warn!("{option} is ignored without BRIGHTBOX_CLIENT_ID");
        }
    }
    let emulator = Emulator::start().await?;
    tracing::info!(
        api_url = emulator.api_url(),
        "no BRIGHTBOX_CLIENT_ID set: started the local emulator"
    );
    let api = Client::builder()
        .base_url(emulator.api_url())
        .client_credentials(emulator.client_id(), emulator.client_secret().to_owned())
        .build()?;
    // The emulator finishes images and servers in half a second, so poll often.
    let wait = WaitOptions::default()
        .interval(Duration::from_millis(200))
        .max_interval(Duration::from_secs(1));
    let library = Library::builder(api)
        .add_root_certificate_pem(emulator.ca_certificate_pem())?
        .wait_options(wait)
        .build();
    Ok(Connection {
        library,
        emulator: Some(emulator),
    })
}

/// Sends logs to stderr at the level `RUST_LOG` sets (default `warn`).
///
/// suppaftp logs each FTP command, `PASS` included, at trace level, so its
/// target stays off whatever `RUST_LOG` sets.
pub fn init_tracing() {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_owned());
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(format!("{filter},suppaftp=off"))
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,suppaftp=off")),
        )
        .with_writer(std::io::stderr)
        .init();
}
