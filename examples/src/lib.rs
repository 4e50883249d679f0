//! Helpers shared by the example programs: a small valid disk image to
//! upload when the user gives none, and the Brightbox CLI's table layout.

use std::error::Error;
use std::io::{self, Write};
use std::path::Path;

use brightbox_api::Image;

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

/// Formats images as the Brightbox CLI's `images list` table: id, owner,
/// type, created on, status, size in MB, and name with architecture.
pub fn image_table(images: &[Image]) -> String {
    let headers = [
        "id",
        "owner",
        "type",
        "created_on",
        "status",
        "size",
        "name",
    ];
    let rows: Vec<[String; 7]> = images.iter().map(image_row).collect();

    let mut widths = headers.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }

    let format_row = |cells: &[String]| {
        let mut line = String::new();
        for (cell, width) in cells.iter().zip(widths) {
            line.push(' ');
            line.push_str(&format!("{cell:<width$}"));
            line.push(' ');
        }
        line.trim_end().to_owned()
    };
    let rule = "-".repeat(widths.iter().map(|w| w + 2).sum());

    let mut table = String::new();
    table.push_str(&format_row(&headers.map(str::to_owned)));
    table.push('\n');
    table.push_str(&rule);
    table.push('\n');
    for row in &rows {
        table.push_str(&format_row(row));
        table.push('\n');
    }
    table.push_str(&rule);
    table.push('\n');
    table
}

fn image_row(image: &Image) -> [String; 7] {
    let kind = if image.official {
        "official".to_owned()
    } else {
        image
            .source_type
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default()
    };
    let created_on = image
        .created_at
        .map(|at| at.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    let size = image.disk_size.map(|mb| mb.to_string()).unwrap_or_default();
    let name = format!("{} ({})", image.name.as_deref().unwrap_or(""), image.arch);
    [
        image.id.to_string(),
        image.owner.clone().unwrap_or_default(),
        kind,
        created_on,
        image.status.to_string(),
        size,
        name,
    ]
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
