//! Orbit snapshot downloads: the LZ4 frame decoder that writes a sparse file, checked against a
//! plain decode of the same bytes, and the `Content-Range` values of resumed downloads.
#![no_main]

use std::io::{Read, Seek, SeekFrom};
use std::sync::OnceLock;

use brightbox_orbit::fuzzing::{decode_lz4_sparse, parse_content_range, unsatisfied_range_total};
use libfuzzer_sys::fuzz_target;

/// Returns the scratch file of this process, in memory where `/dev/shm` exists. Every input
/// reuses it.
fn scratch() -> &'static std::fs::File {
    static FILE: OnceLock<std::fs::File> = OnceLock::new();
    FILE.get_or_init(|| {
        let dir = if std::path::Path::new("/dev/shm").is_dir() {
            std::path::PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let path = dir.join(format!("brightbox-fuzz-orbit-{}", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .expect("create the scratch file");
        // The open handle keeps the file alive, so its name can go.
        let _ = std::fs::remove_file(&path);
        file
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = parse_content_range(data);
    if let Some(total) = unsatisfied_range_total(data) {
        assert!(std::str::from_utf8(data).is_ok_and(|text| text.contains(&total.to_string())));
    }

    // The first byte sets the size of the network chunks the frame arrives in.
    let (chunk_len, frame) = data
        .split_first()
        .map_or((1, data), |(b, rest)| (usize::from(*b) * 16 + 1, rest));
    let chunks: Vec<Vec<u8>> = frame.chunks(chunk_len).map(<[u8]>::to_vec).collect();

    let mut expected = Vec::new();
    let reference = lz4_flex::frame::FrameDecoder::new(frame).read_to_end(&mut expected);

    // The decoder writes from the file's current offset, as it does on a freshly created file,
    // and clones of a handle share that offset.
    let file = scratch();
    file.set_len(0).expect("truncate the scratch file");
    let mut handle = file.try_clone().expect("clone the scratch file handle");
    handle
        .seek(SeekFrom::Start(0))
        .expect("seek the scratch file");
    match (decode_lz4_sparse(chunks, handle), reference) {
        (Ok(length), Ok(_)) => {
            assert_eq!(length, expected.len() as u64, "decoded length");
            let mut written = Vec::new();
            let mut reader = file.try_clone().expect("clone the scratch file handle");
            reader
                .seek(SeekFrom::Start(0))
                .expect("seek the scratch file");
            reader
                .read_to_end(&mut written)
                .expect("read the scratch file");
            assert!(
                written == expected,
                "sparse output differs from a plain decode"
            );
        }
        (Err(_), Err(_)) => {}
        (sparse, plain) => panic!("sparse decode {sparse:?} but plain decode {plain:?}"),
    }
});
