//! A scripted explicit-FTPS server on 127.0.0.1 for fault tests.
//!
//! It speaks enough FTP for brightbox-ftp: `AUTH TLS`, `PBSZ`, `PROT`, `USER`, `PASS`, `TYPE`,
//! `FEAT`, `PASV`, `EPSV`, `LIST`, `NLST`, `MLSD`, `STOR`, `APPE`, `REST`, `RETR`, `SIZE`,
//! `RNFR`, `RNTO`, `DELE`, `ABOR`, `NOOP` and `QUIT`. Files live in memory. The [`Script`]
//! decides the replies that matter for a test: the address in the `227` reply, the advertised
//! data port, what the data connection does, the `SIZE` reply and the listing body.
//!
//! All passive transfers use one data listener that exists from start-up, so a fault proxy can be
//! put in front of it before the first transfer.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use suppaftp::tokio_rustls::TlsAcceptor;
use suppaftp::tokio_rustls::rustls;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use crate::common::TestPki;

/// User name the server accepts.
pub const USER: &str = "scripted-user";
/// Password the server accepts.
pub const PASSWORD: &str = "scripted-password-7f3a";

/// What the server does on a data connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataBehaviour {
    /// Transfers complete normally.
    Normal,
    /// The advertised passive port never completes a TCP handshake: its accept queue is full,
    /// so the kernel drops the client's SYN packets.
    NeverAccept,
    /// Sends this many bytes of a listing or download, then keeps the connection open without
    /// sending more.
    SendThenStall(usize),
    /// Reads this many bytes of an upload, then keeps the connection open without reading more.
    ReadThenStall(usize),
}

/// The reply to `SIZE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeReply {
    /// The stored length.
    Actual,
    /// The stored length plus this many bytes (negative for fewer).
    Offset(i64),
    /// The stored length plus `offset` for the first `replies` replies of the server, then the
    /// stored length.
    OffsetFirst {
        /// Bytes added to the stored length (negative for fewer).
        offset: i64,
        /// Number of `SIZE` replies that carry the offset.
        replies: usize,
    },
}

/// The server's behaviour; tests may change it between steps through
/// [`ScriptedServer::update`].
#[derive(Debug, Clone)]
pub struct Script {
    /// The four address numbers in the `227` reply.
    pub pasv_host: [u8; 4],
    /// Whether the server replies to `EPSV` with `229` rather than `502`.
    pub epsv: bool,
    /// The port advertised in `227` and `229` replies; `None` advertises the data listener.
    pub advertised_data_port: Option<u16>,
    /// What data connections do.
    pub data: DataBehaviour,
    /// The reply to `SIZE`.
    pub size: SizeReply,
    /// Lines of the `FEAT` reply, without the leading space.
    pub features: Vec<String>,
    /// Body of `LIST` and `MLSD` replies, sent as is.
    pub list_body: Vec<u8>,
    /// Time between the end of a listing or download on the data connection and its `226`.
    pub final_reply_delay: Duration,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            pasv_host: [127, 0, 0, 1],
            epsv: false,
            advertised_data_port: None,
            data: DataBehaviour::Normal,
            size: SizeReply::Actual,
            features: vec!["SIZE".into(), "UTF8".into(), "REST STREAM".into()],
            list_body: Vec::new(),
            final_reply_delay: Duration::ZERO,
        }
    }
}

/// State shared by all sessions of one server.
struct Shared {
    script: Mutex<Script>,
    files: Mutex<BTreeMap<String, Vec<u8>>>,
    commands: Mutex<Vec<String>>,
    size_replies: std::sync::atomic::AtomicUsize,
    data_listener: TcpListener,
    data_address: SocketAddr,
    black_hole_port: u16,
    acceptor: TlsAcceptor,
}

/// A running scripted server; it stops when dropped.
pub struct ScriptedServer {
    /// The control address.
    pub address: SocketAddr,
    /// PEM of the CA that signed the server certificate.
    pub ca_pem: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
    // Connections that fill the accept queue of the black-hole listener.
    _black_hole: (TcpListener, Vec<TcpStream>),
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ScriptedServer {
    /// Starts a server on a free port of 127.0.0.1 that follows `script`.
    pub async fn start(script: Script) -> ScriptedServer {
        let pki = TestPki::new(&["localhost", "127.0.0.1"]);
        let certificate = CertificateDer::from_pem_slice(pki.leaf_pem.as_bytes())
            .expect("parse leaf certificate PEM");
        let key =
            PrivateKeyDer::from_pem_slice(pki.leaf_key_pem.as_bytes()).expect("parse leaf key PEM");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(vec![certificate], key)
            .expect("server certificate");
        let acceptor = TlsAcceptor::from(Arc::new(tls));

        let control = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind control port");
        let address = control.local_addr().expect("control address");
        let data_listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind data port");
        let data_address = data_listener.local_addr().expect("data address");
        let black_hole = black_hole_listener().await;
        let black_hole_port = black_hole
            .0
            .local_addr()
            .expect("black-hole address")
            .port();

        let shared = Arc::new(Shared {
            script: Mutex::new(script),
            files: Mutex::new(BTreeMap::new()),
            commands: Mutex::new(Vec::new()),
            size_replies: std::sync::atomic::AtomicUsize::new(0),
            data_listener,
            data_address,
            black_hole_port,
            acceptor,
        });

        let task = {
            let shared = Arc::clone(&shared);
            tokio::spawn(async move {
                loop {
                    let Ok((stream, _)) = control.accept().await else {
                        return;
                    };
                    let shared = Arc::clone(&shared);
                    tokio::spawn(async move {
                        // A session ends with an error when the client or a fault proxy drops
                        // the connection; the commands log shows how far it got.
                        let _ = Session::new(shared).run(stream).await;
                    });
                }
            })
        };

        ScriptedServer {
            address,
            ca_pem: pki.ca_pem,
            shared,
            task,
            _black_hole: black_hole,
        }
    }

    /// Returns the address of the passive data listener.
    pub fn data_address(&self) -> SocketAddr {
        self.shared.data_address
    }

    /// Advertises `port` in passive replies instead of the data listener's port.
    pub fn set_advertised_data_port(&self, port: u16) {
        self.update(|script| script.advertised_data_port = Some(port));
    }

    /// Changes the script for later commands.
    pub fn update(&self, change: impl FnOnce(&mut Script)) {
        change(&mut self.shared.script.lock().expect("script lock"));
    }

    /// Returns every command received so far, in order, with the `PASS` argument replaced.
    pub fn commands(&self) -> Vec<String> {
        self.shared.commands.lock().expect("commands lock").clone()
    }

    /// Returns the names of the stored files.
    pub fn file_names(&self) -> Vec<String> {
        self.shared
            .files
            .lock()
            .expect("files lock")
            .keys()
            .cloned()
            .collect()
    }

    /// Returns the content of a stored file.
    pub fn file(&self, path: &str) -> Option<Vec<u8>> {
        self.shared
            .files
            .lock()
            .expect("files lock")
            .get(path)
            .cloned()
    }

    /// Stores a file, as if a client had uploaded it.
    pub fn put_file(&self, path: &str, content: Vec<u8>) {
        self.shared
            .files
            .lock()
            .expect("files lock")
            .insert(path.to_owned(), content);
    }
}

/// Binds a listener with a backlog of zero and fills its accept queue, so that further
/// connection attempts get no SYN-ACK and time out on the client side.
async fn black_hole_listener() -> (TcpListener, Vec<TcpStream>) {
    let socket = TcpSocket::new_v4().expect("black-hole socket");
    socket
        .bind("127.0.0.1:0".parse().expect("address literal"))
        .expect("bind black-hole port");
    let listener = socket.listen(0).expect("listen with backlog 0");
    let address = listener.local_addr().expect("black-hole address");
    let mut fillers = Vec::new();
    // Linux queues backlog + 1 connections; two attempts fill the queue whatever the count.
    for _ in 0..2 {
        if let Ok(Ok(stream)) =
            tokio::time::timeout(Duration::from_millis(300), TcpStream::connect(address)).await
        {
            fillers.push(stream);
        }
    }
    (listener, fillers)
}

/// The control or data stream of a session, before or after the TLS upgrade.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// One client session.
struct Session {
    shared: Arc<Shared>,
    protect_data: bool,
    rename_from: Option<String>,
    restart_at: u64,
}

type SessionResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

impl Session {
    fn new(shared: Arc<Shared>) -> Session {
        Session {
            shared,
            protect_data: false,
            rename_from: None,
            restart_at: 0,
        }
    }

    fn script(&self) -> Script {
        self.shared.script.lock().expect("script lock").clone()
    }

    fn record(&self, line: &str) {
        let logged = if line.to_ascii_uppercase().starts_with("PASS ") {
            "PASS [hidden]".to_owned()
        } else {
            line.to_owned()
        };
        self.shared
            .commands
            .lock()
            .expect("commands lock")
            .push(logged);
    }

    async fn run(mut self, stream: TcpStream) -> SessionResult {
        let mut control: BufReader<Box<dyn Stream>> = BufReader::new(Box::new(stream));
        reply(&mut control, "220 scripted FTP server ready").await?;
        loop {
            let mut line = String::new();
            if control.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let line = line.trim_end_matches(['\r', '\n']).to_owned();
            self.record(&line);
            let (verb, argument) = match line.split_once(' ') {
                Some((verb, argument)) => (verb.to_ascii_uppercase(), argument.to_owned()),
                None => (line.to_ascii_uppercase(), String::new()),
            };

            match verb.as_str() {
                "AUTH" => {
                    reply(&mut control, "234 AUTH TLS accepted").await?;
                    let plain = control.into_inner();
                    let secure = self.shared.acceptor.accept(plain).await?;
                    control = BufReader::new(Box::new(secure));
                }
                "PBSZ" => reply(&mut control, "200 PBSZ=0").await?,
                "PROT" => {
                    self.protect_data = argument.eq_ignore_ascii_case("P");
                    reply(&mut control, "200 protection level set").await?;
                }
                "USER" => reply(&mut control, "331 password required").await?,
                "PASS" => {
                    if argument == PASSWORD {
                        reply(&mut control, "230 logged in").await?;
                    } else {
                        reply(&mut control, "530 login incorrect").await?;
                    }
                }
                "TYPE" => reply(&mut control, "200 type set").await?,
                "OPTS" => reply(&mut control, "200 OK").await?,
                "PWD" => reply(&mut control, "257 \"/\" is the current directory").await?,
                "CWD" => reply(&mut control, "250 directory changed").await?,
                "NOOP" => reply(&mut control, "200 NOOP ok").await?,
                "FEAT" => {
                    let mut text = String::from("211-Features:\r\n");
                    for feature in self.script().features {
                        text.push_str(&format!(" {feature}\r\n"));
                    }
                    text.push_str("211 End");
                    reply(&mut control, &text).await?;
                }
                "PASV" => {
                    let script = self.script();
                    let port = self.advertised_port(&script);
                    let [a, b, c, d] = script.pasv_host;
                    let text = format!(
                        "227 Entering Passive Mode ({a},{b},{c},{d},{},{})",
                        port / 256,
                        port % 256
                    );
                    reply(&mut control, &text).await?;
                }
                "EPSV" => {
                    let script = self.script();
                    if script.epsv {
                        let port = self.advertised_port(&script);
                        let text = format!("229 Entering Extended Passive Mode (|||{port}|)");
                        reply(&mut control, &text).await?;
                    } else {
                        reply(&mut control, "502 EPSV not implemented").await?;
                    }
                }
                "REST" => match argument.parse::<u64>() {
                    Ok(offset) => {
                        self.restart_at = offset;
                        reply(&mut control, &format!("350 restarting at {offset}")).await?;
                    }
                    Err(_) => reply(&mut control, "501 invalid REST offset").await?,
                },
                "SIZE" => {
                    let stored = self.stored_length(&argument);
                    let earlier_replies = self
                        .shared
                        .size_replies
                        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let size = match self.script().size {
                        SizeReply::OffsetFirst { offset, replies } if earlier_replies < replies => {
                            SizeReply::Offset(offset)
                        }
                        SizeReply::OffsetFirst { .. } => SizeReply::Actual,
                        other => other,
                    };
                    match (stored, size) {
                        (None, _) => reply(&mut control, "550 no such file").await?,
                        (Some(length), SizeReply::Actual) => {
                            reply(&mut control, &format!("213 {length}")).await?;
                        }
                        (
                            Some(length),
                            SizeReply::Offset(offset) | SizeReply::OffsetFirst { offset, .. },
                        ) => {
                            let reported = length.saturating_add_signed(offset);
                            reply(&mut control, &format!("213 {reported}")).await?;
                        }
                    }
                }
                "RNFR" => {
                    if self.stored_length(&argument).is_some() {
                        self.rename_from = Some(argument);
                        reply(&mut control, "350 ready for RNTO").await?;
                    } else {
                        reply(&mut control, "550 no such file").await?;
                    }
                }
                "RNTO" => {
                    let from = self.rename_from.take();
                    let text = if self.rename(from, argument) {
                        "250 renamed"
                    } else {
                        "503 RNFR first"
                    };
                    reply(&mut control, text).await?;
                }
                "DELE" => {
                    let removed = self.remove(&argument);
                    let text = if removed {
                        "250 deleted"
                    } else {
                        "550 no such file"
                    };
                    reply(&mut control, text).await?;
                }
                "ABOR" => reply(&mut control, "226 no transfer to abort").await?,
                "QUIT" => {
                    reply(&mut control, "221 goodbye").await?;
                    let _ = control.get_mut().shutdown().await;
                    return Ok(());
                }
                "LIST" | "MLSD" | "NLST" => {
                    let body = if verb == "NLST" {
                        self.name_list(&argument)
                    } else {
                        self.script().list_body
                    };
                    self.send_data(&mut control, body).await?;
                }
                "RETR" => {
                    let content = self.file(&argument);
                    match content {
                        Some(content) => {
                            let start = usize::try_from(self.restart_at)
                                .unwrap_or(usize::MAX)
                                .min(content.len());
                            self.restart_at = 0;
                            let body = content.get(start..).unwrap_or_default().to_vec();
                            self.send_data(&mut control, body).await?;
                        }
                        None => reply(&mut control, "550 no such file").await?,
                    }
                }
                "STOR" | "APPE" => {
                    let append = verb == "APPE" || self.restart_at > 0;
                    self.receive_data(&mut control, argument, append).await?;
                }
                _ => reply(&mut control, "502 command not implemented").await?,
            }
        }
    }

    fn advertised_port(&self, script: &Script) -> u16 {
        if script.data == DataBehaviour::NeverAccept {
            return self.shared.black_hole_port;
        }
        script
            .advertised_data_port
            .unwrap_or(self.shared.data_address.port())
    }

    fn remove(&self, path: &str) -> bool {
        self.shared
            .files
            .lock()
            .expect("files lock")
            .remove(path)
            .is_some()
    }

    fn file(&self, path: &str) -> Option<Vec<u8>> {
        self.shared
            .files
            .lock()
            .expect("files lock")
            .get(path)
            .cloned()
    }

    /// Moves the file `from` to `to`; returns `false` when there is no such file.
    fn rename(&self, from: Option<String>, to: String) -> bool {
        let mut files = self.shared.files.lock().expect("files lock");
        match from.and_then(|from| files.remove(&from)) {
            Some(content) => {
                files.insert(to, content);
                true
            }
            None => false,
        }
    }

    fn stored_length(&self, path: &str) -> Option<u64> {
        self.shared
            .files
            .lock()
            .expect("files lock")
            .get(path)
            .map(|content| content.len() as u64)
    }

    /// Returns `NLST` output: one stored path per line, those under `dir` when it is given.
    fn name_list(&self, dir: &str) -> Vec<u8> {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{}/", dir.trim_end_matches('/'))
        };
        let files = self.shared.files.lock().expect("files lock");
        let mut body = String::new();
        for path in files.keys().filter(|path| path.starts_with(&prefix)) {
            body.push_str(path);
            body.push_str("\r\n");
        }
        body.into_bytes()
    }

    /// Accepts the next data connection, replies `150` and upgrades it to TLS when `PROT P`
    /// is in effect.
    async fn open_data(
        &self,
        control: &mut BufReader<Box<dyn Stream>>,
    ) -> Result<Box<dyn Stream>, Box<dyn std::error::Error + Send + Sync>> {
        let accepted =
            tokio::time::timeout(Duration::from_secs(10), self.shared.data_listener.accept()).await;
        let Ok(Ok((tcp, _))) = accepted else {
            reply(control, "425 no data connection").await?;
            return Err("no data connection within 10 s".into());
        };
        reply(control, "150 opening data connection").await?;
        if self.protect_data {
            let secure = self.shared.acceptor.accept(tcp).await?;
            Ok(Box::new(secure))
        } else {
            Ok(Box::new(tcp))
        }
    }

    async fn send_data(
        &mut self,
        control: &mut BufReader<Box<dyn Stream>>,
        body: Vec<u8>,
    ) -> SessionResult {
        let behaviour = self.script().data;
        let mut data = self.open_data(control).await?;
        if let DataBehaviour::SendThenStall(limit) = behaviour {
            let mut stalled = body.clone();
            stalled.resize(limit.max(body.len()), b'x');
            stalled.truncate(limit);
            data.write_all(&stalled).await?;
            data.flush().await?;
            // Keep the connection open until the client gives up and closes the session.
            wait_for_close(self, control).await;
            return Ok(());
        }
        data.write_all(&body).await?;
        data.shutdown().await?;
        drop(data);
        tokio::time::sleep(self.script().final_reply_delay).await;
        reply(control, "226 transfer complete").await
    }

    async fn receive_data(
        &mut self,
        control: &mut BufReader<Box<dyn Stream>>,
        path: String,
        append: bool,
    ) -> SessionResult {
        let behaviour = self.script().data;
        let restart_at = std::mem::take(&mut self.restart_at);
        let mut data = self.open_data(control).await?;
        let mut received = Vec::new();
        if let DataBehaviour::ReadThenStall(limit) = behaviour {
            let mut buffer = vec![0_u8; limit];
            data.read_exact(&mut buffer).await?;
            wait_for_close(self, control).await;
            return Ok(());
        }
        // A read error (for example a reset) ends the upload with what arrived, as a real server
        // would store it, and the session then reports the failure.
        let outcome = data.read_to_end(&mut received).await;
        {
            let mut files = self.shared.files.lock().expect("files lock");
            let entry = files.entry(path).or_default();
            if append {
                let keep = usize::try_from(restart_at).unwrap_or(usize::MAX);
                if restart_at > 0 {
                    entry.truncate(keep);
                }
                entry.extend_from_slice(&received);
            } else {
                *entry = received;
            }
        }
        match outcome {
            Ok(_) => {
                let _ = data.shutdown().await;
                drop(data);
                reply(control, "226 transfer complete").await
            }
            Err(error) => {
                drop(data);
                reply(control, "426 data connection failed").await?;
                Err(error.into())
            }
        }
    }
}

/// Keeps a stalled data connection open until the control connection closes or sends a
/// command. A command ends the transfer: `426`, and for `ABOR` also `226`.
async fn wait_for_close(session: &Session, control: &mut BufReader<Box<dyn Stream>>) {
    let mut line = String::new();
    match control.read_line(&mut line).await {
        Ok(0) | Err(_) => {}
        Ok(_) => {
            let line = line.trim_end_matches(['\r', '\n']);
            session.record(line);
            let _ = reply(control, "426 transfer aborted").await;
            if line.eq_ignore_ascii_case("ABOR") {
                let _ = reply(control, "226 ABOR successful").await;
            }
        }
    }
}

async fn reply(control: &mut BufReader<Box<dyn Stream>>, text: &str) -> SessionResult {
    let stream = control.get_mut();
    stream.write_all(text.as_bytes()).await?;
    stream.write_all(b"\r\n").await?;
    stream.flush().await?;
    Ok(())
}
