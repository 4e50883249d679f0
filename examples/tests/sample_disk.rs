//! Checks the sample disk image with qemu-img, the reference qcow2 reader.

use std::process::Command;

use brightbox_examples::{SAMPLE_VIRTUAL_SIZE, write_sample_qcow2};

fn qemu_img(args: &[&str]) -> String {
    let output = Command::new("qemu-img")
        .args(args)
        .output()
        .expect("qemu-img runs; install the qemu-utils package");
    assert!(
        output.status.success(),
        "qemu-img {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn sample_qcow2_passes_qemu_img_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sample.qcow2");
    let len = write_sample_qcow2(&path).expect("write sample");
    assert_eq!(len, 6 * 65536);

    let path = path.to_str().expect("utf-8 path");
    qemu_img(&["check", path]);
    let info = qemu_img(&["info", "--output=json", path]);
    assert!(info.contains("\"format\": \"qcow2\""), "{info}");
    assert!(
        info.contains(&format!("\"virtual-size\": {SAMPLE_VIRTUAL_SIZE}")),
        "{info}"
    );
}

#[test]
fn sample_qcow2_holds_partition_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let qcow2 = dir.path().join("sample.qcow2");
    let raw = dir.path().join("sample.raw");
    write_sample_qcow2(&qcow2).expect("write sample");
    qemu_img(&[
        "convert",
        "-O",
        "raw",
        qcow2.to_str().expect("utf-8"),
        raw.to_str().expect("utf-8"),
    ]);

    let disk = std::fs::read(&raw).expect("read raw disk");
    assert_eq!(disk.len() as u64, SAMPLE_VIRTUAL_SIZE);
    assert_eq!(&disk[510..512], &[0x55, 0xaa], "MBR signature");
    let entry = &disk[446..462];
    assert_eq!(entry[4], 0x83, "Linux partition type");
    let start = u32::from_le_bytes(entry[8..12].try_into().expect("4 bytes"));
    let sectors = u32::from_le_bytes(entry[12..16].try_into().expect("4 bytes"));
    assert_eq!(start, 2048);
    assert_eq!(u64::from(start + sectors) * 512, SAMPLE_VIRTUAL_SIZE);
}
