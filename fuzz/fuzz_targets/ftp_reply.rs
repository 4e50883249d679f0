//! Control-connection replies, single- and multi-line: code and text extraction, the mapping of
//! negative replies to error kinds, `MDTM` time parsing and the client's view of `FEAT`.
#![no_main]

use brightbox_ftp::fuzzing::{classify_reply, features, parse_mdtm_reply, reply_parts};
use libfuzzer_sys::fuzz_target;

const COMMANDS: [&str; 8] = [
    "RETR images/disk.img",
    "STOR incoming/disk.img",
    "SIZE disk.img",
    "MDTM disk.img",
    "DELE disk.img",
    "RNFR a/.x.part / RNTO a/x",
    "MKD incoming",
    "MLSD incoming",
];

fuzz_target!(|data: &[u8]| {
    let (code, message) = reply_parts(data);
    assert!(
        !message.contains(char::is_control),
        "message {message:?} contains a control character"
    );
    assert_eq!(
        message.trim(),
        message,
        "message {message:?} has outer whitespace"
    );
    if let Some(digits) = data.get(..3)
        && digits.iter().all(u8::is_ascii_digit)
    {
        let expected = digits
            .iter()
            .fold(0, |acc, d| acc * 10 + u32::from(d - b'0'));
        assert_eq!(code, expected, "code of {data:?}");
    }

    for command in COMMANDS {
        let kind = classify_reply(data, command);
        if !matches!(code, 550 | 553) {
            assert_eq!(kind, "other", "{code} to {command} is not a 550 or 553");
        }
    }

    if let Some(time) = parse_mdtm_reply(data) {
        assert!(message.contains(&time.format("%Y%m%d%H%M%S").to_string()));
    }

    // A FEAT reply body lists one feature per line: a name, then optional parameters.
    let text = String::from_utf8_lossy(data);
    let listed: Vec<(String, Option<String>)> = text
        .lines()
        .filter(|line| line.starts_with(' '))
        .map(|line| match line.trim().split_once(' ') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None => (line.trim().to_owned(), None),
        })
        .collect();
    let (epsv, mlsd, rest_stream) = features(listed.clone());
    let named = |wanted: &str| {
        listed
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case(wanted))
    };
    assert_eq!(epsv, named("EPSV"));
    assert_eq!(mlsd, named("MLSD"));
    if rest_stream {
        assert!(named("REST"));
    }
});
