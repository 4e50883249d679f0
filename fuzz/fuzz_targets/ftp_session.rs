//! A whole FTP session against a scripted server on 127.0.0.1: multi-line replies as suppaftp
//! reads them, `FEAT`, `SIZE`, `MDTM`, the `EPSV` and `PASV` replies and the listing that
//! follows, through the public `FtpsClient` API.
//!
//! The input contains the server's replies in the order the client sends its commands, separated by
//! NUL bytes: greeting, `USER`, `PASS`, `TYPE`, `FEAT`, `SIZE`, `MDTM`, the passive-mode text,
//! the listing's opening reply, the listing data and the listing's closing reply. The first byte
//! contains option flags. The passive-mode text loses its digits and gets `%p` replaced by the
//! address of this target's own data listener, so that the client connects nowhere else.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use brightbox_ftp::{FtpError, FtpsClient, FtpsConfig};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const PASSWORD: &str = "fuzz-Secret-pa55word";

/// Time limit of each reply. Replies that end mid-line leave the client waiting this long.
const IO_TIMEOUT: Duration = Duration::from_millis(50);

const GREETING: usize = 0;
const USER: usize = 1;
const PASS: usize = 2;
const TYPE: usize = 3;
const FEAT: usize = 4;
const SIZE: usize = 5;
const MDTM: usize = 6;
const PASSIVE: usize = 7;
const LIST_OPEN: usize = 8;
const LIST_DATA: usize = 9;
const LIST_DONE: usize = 10;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("build a tokio runtime")
    })
}

/// Returns whether the client stops reading after `reply`: its last line is `NNN text`.
fn ends_reply(reply: &[u8]) -> bool {
    let Some(body) = reply.strip_suffix(b"\n") else {
        return false;
    };
    let last = body.rsplit(|byte| *byte == b'\n').next().unwrap_or(body);
    last.len() >= 4 && last[..3].iter().all(u8::is_ascii_digit) && last[3] == b' '
}

/// Builds the `227` or `229` reply from the scripted text and the data listener's port.
fn passive_reply(template: &[u8], verb: &str, port: u16) -> Vec<u8> {
    let text: Vec<u8> = template
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_digit())
        .collect();
    let address = if verb == "EPSV" {
        format!("|||{port}|")
    } else {
        format!("127,0,0,1,{},{}", port >> 8, port & 0xff)
    };
    let code: &[u8] = if verb == "EPSV" { b"229 " } else { b"227 " };
    let mut reply = code.to_vec();
    let text = String::from_utf8_lossy(&text).replace("%p", &address);
    reply.extend_from_slice(text.as_bytes());
    if !reply.ends_with(b"\n") {
        reply.extend_from_slice(b"\r\n");
    }
    reply
}

/// Sends the scripted replies. Returns when the script runs out, a reply would leave the client
/// waiting for more lines, or the client disconnects.
async fn serve(control: TcpStream, data: TcpListener, sections: Vec<Vec<u8>>) -> Option<()> {
    let port = data.local_addr().ok()?.port();
    let (read, mut write) = control.into_split();
    let mut reader = BufReader::new(read);
    let section = |index: usize| sections.get(index).filter(|reply| !reply.is_empty());

    let greeting = section(GREETING)?;
    write.write_all(greeting).await.ok()?;
    if !ends_reply(greeting) {
        return None;
    }

    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let index = match verb.as_str() {
            "USER" => USER,
            "PASS" => PASS,
            "TYPE" => TYPE,
            "FEAT" => FEAT,
            "SIZE" => SIZE,
            "MDTM" => MDTM,
            "EPSV" | "PASV" => {
                let reply = passive_reply(section(PASSIVE)?, &verb, port);
                write.write_all(&reply).await.ok()?;
                continue;
            }
            "MLSD" | "LIST" | "NLST" => {
                let opening = section(LIST_OPEN)?;
                write.write_all(opening).await.ok()?;
                if !ends_reply(opening) {
                    return None;
                }
                let accepted = tokio::time::timeout(IO_TIMEOUT, data.accept()).await;
                if let Ok(Ok((mut stream, _))) = accepted {
                    let listing = sections.get(LIST_DATA).cloned().unwrap_or_default();
                    let _ = stream.write_all(&listing).await;
                    let _ = stream.shutdown().await;
                }
                LIST_DONE
            }
            "QUIT" => {
                let _ = write.write_all(b"221 Goodbye.\r\n").await;
                return Some(());
            }
            _ => {
                write
                    .write_all(b"502 Command not implemented.\r\n")
                    .await
                    .ok()?;
                continue;
            }
        };
        let reply = section(index)?;
        write.write_all(reply).await.ok()?;
        if !ends_reply(reply) {
            return None;
        }
    }
}

/// Checks that an error names no secret, and returns it for further use.
fn checked(error: FtpError) -> FtpError {
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains(PASSWORD), "password in error: {shown}");
    error
}

async fn session(flags: u8, sections: Vec<Vec<u8>>) {
    let control = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the control listener");
    let data = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the data listener");
    let port = control
        .local_addr()
        .expect("control listener address")
        .port();
    let script = sections.clone();
    let server = tokio::spawn(async move {
        if let Ok((stream, _)) = control.accept().await {
            serve(stream, data, script).await;
        }
    });

    let config = FtpsConfig::new("127.0.0.1", "fuzz", PASSWORD.to_owned())
        .port(port)
        .insecure_plain_ftp_sends_password_in_clear()
        .use_passive_address(flags & 1 != 0)
        .connect_timeout(IO_TIMEOUT)
        .io_timeout(IO_TIMEOUT)
        .final_reply_timeout(IO_TIMEOUT);
    assert!(!format!("{config:?}").contains(PASSWORD));

    if let Ok(mut client) = FtpsClient::connect(&config).await.map_err(checked) {
        assert!(!format!("{client:?}").contains(PASSWORD));
        // A server that sends more replies than it received commands shifts every later
        // reply to the next command, and no client can tell. So values are only checked to
        // come from the script, not from the reply the script meant for that command.
        let script = String::from_utf8_lossy(&sections.join(&b"\n"[..])).into_owned();
        if let Ok(size) = client.size("disk.img").await.map_err(checked) {
            assert!(script.contains(&size.to_string()), "size {size}");
        }
        if let Ok(time) = client.modified("disk.img").await.map_err(checked) {
            let digits = time.format("%Y%m%d%H%M%S").to_string();
            assert!(script.contains(&digits), "time {digits}");
        }
        if let Ok(entries) = client.list("incoming").await.map_err(checked) {
            for entry in entries {
                assert!(script.contains(entry.raw.as_str()), "raw {:?}", entry.raw);
            }
        }
        let _ = client.quit().await.map_err(checked);
    }
    server.abort();
}

fuzz_target!(|data: &[u8]| {
    let (flags, script) = data.split_first().map_or((0, data), |(b, rest)| (*b, rest));
    let sections: Vec<Vec<u8>> = script
        .split(|byte| *byte == 0)
        .map(<[u8]>::to_vec)
        .collect();
    runtime().block_on(session(flags, sections));
});
