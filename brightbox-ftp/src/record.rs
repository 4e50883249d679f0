//! The TLS stream of control and data connections, with a lighter read path for downloads.
//!
//! rustls' buffered connection copies every received record twice: from its socket buffer into
//! a plaintext queue, and from there into the caller's buffer. On a 1 GiB download from vsftpd
//! those copies took about a quarter of the client's CPU time in `perf` profiles. After the
//! handshake of a data connection this stream can take the TLS 1.3 traffic keys out of rustls
//! and open the records itself. It then reads up to 256 KiB from the socket in one call, decrypts
//! each record in place and copies its plaintext once, into the caller's buffer.
//!
//! The switch happens at the first read of a data connection that has not sent anything, after
//! rustls has decrypted the first application data record. Records that came before it, such as
//! TLS 1.3 session tickets, went through rustls and are stored for the next data connection. A
//! connection that is not TLS 1.3, or that the caller writes to first (an upload), stays on
//! rustls for its whole life. Control connections never switch.

use std::fmt;
use std::io::{self, Read};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use rustls::crypto::cipher::{
    InboundOpaqueMessage, MessageDecrypter, MessageEncrypter, OutboundChunks, OutboundPlainMessage,
};
use rustls::{
    ClientConfig, ConnectionTrafficSecrets, ContentType, ProtocolVersion, SupportedCipherSuite,
};
use rustls_pki_types::ServerName;
use suppaftp::tokio::{AsyncTlsConnector, TokioTlsStream};
use suppaftp::tokio_rustls::{TlsConnector, client};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tracing::debug;

/// Length of a TLS record header: type, version and length.
const HEADER_LEN: usize = 5;

/// Largest encrypted record body TLS 1.3 allows: 2^14 bytes of plaintext plus 256.
const MAX_CIPHERTEXT_LEN: usize = 16_384 + 256;

/// Size of the buffer that socket reads fill once the stream opens records itself.
const RECEIVE_BUFFER: usize = 256 * 1024;

/// Largest plaintext put in one record the stream encrypts.
const MAX_PLAINTEXT_LEN: usize = 16_384;

/// Opens the TLS connections of one FTP session.
pub(crate) struct Connector {
    inner: TlsConnector,
}

impl Connector {
    pub(crate) fn new(config: Arc<ClientConfig>) -> Self {
        Self {
            inner: TlsConnector::from(config),
        }
    }
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector").finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl AsyncTlsConnector for Connector {
    type Stream = TlsStream;

    async fn connect(&self, domain: &str, stream: TcpStream) -> suppaftp::FtpResult<TlsStream> {
        let name = ServerName::try_from(domain.to_owned())
            .map_err(|error| suppaftp::FtpError::SecureError(error.to_string()))?;
        let tcp = Arc::new(stream);
        let stream = self
            .inner
            .connect(name, Framed::new(Arc::clone(&tcp)))
            .await
            .map_err(|error| suppaftp::FtpError::SecureError(error.to_string()))?;
        Ok(TlsStream {
            tcp,
            state: State::Rustls(Box::new(stream)),
            open_records: false,
            written: false,
        })
    }
}

/// A TLS connection to the FTP server.
pub(crate) struct TlsStream {
    /// The socket, shared with the layer that reads and writes it.
    tcp: Arc<TcpStream>,
    state: State,
    /// Whether the stream may take the keys out of rustls at its first read.
    open_records: bool,
    /// Whether anything was written, which keeps the stream on rustls.
    written: bool,
}

enum State {
    Rustls(Box<client::TlsStream<Framed>>),
    Records(Box<Records>),
    /// rustls did not hand over the keys; every later call fails.
    Failed,
}

impl fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Rustls(_) => "rustls",
            State::Records(_) => "records",
            State::Failed => "failed",
        };
        f.debug_struct("TlsStream")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

impl TlsStream {
    /// Lets a data connection open records itself from its first read on.
    pub(crate) fn open_records_on_read(&mut self) {
        self.open_records = true;
    }

    /// Reports whether the stream opens records itself.
    #[cfg(test)]
    pub(crate) fn opens_records(&self) -> bool {
        matches!(self.state, State::Records(_))
    }

    /// Takes the traffic keys out of rustls when the connection allows it, after a read that
    /// returned plaintext.
    fn switch_after_read(&mut self) -> io::Result<()> {
        let State::Rustls(stream) = &mut self.state else {
            return Ok(());
        };
        let (framed, connection) = stream.get_mut();
        let suite = match connection.negotiated_cipher_suite() {
            Some(SupportedCipherSuite::Tls13(suite))
                if connection.protocol_version() == Some(ProtocolVersion::TLSv1_3) =>
            {
                suite
            }
            _ => {
                // TLS 1.2 keeps the rustls path, so there is no reason to check again.
                self.open_records = false;
                return Ok(());
            }
        };

        // The reads stop at record ends, so rustls contains no part of a later record.
        if !framed.at_record_boundary() || connection.wants_write() {
            return Ok(());
        }

        // The read that returned plaintext may have gone on to the server's close_notify or to
        // an error. rustls keeps those, so the stream stays on rustls to report them.
        match connection.process_new_packets() {
            Ok(state) if !state.peer_has_closed() => {}
            _ => {
                self.open_records = false;
                return Ok(());
            }
        }

        let State::Rustls(stream) = std::mem::replace(&mut self.state, State::Failed) else {
            return Ok(());
        };
        let (_, mut connection) = stream.into_inner();
        let mut leftover = Vec::new();
        match connection.reader().read_to_end(&mut leftover) {
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
            Err(error) => return Err(error),
        }
        let secrets = connection
            .dangerous_extract_secrets()
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))?;
        let (rx_seq, rx) = secrets.rx;
        let (tx_seq, tx) = secrets.tx;
        let (rx_key, rx_iv) = split_secrets(rx)?;
        let (tx_key, tx_iv) = split_secrets(tx)?;
        debug!(
            leftover = leftover.len(),
            "opening TLS records in place from here on"
        );
        self.state = State::Records(Box::new(Records {
            tcp: Arc::clone(&self.tcp),
            decrypter: suite.aead_alg.decrypter(rx_key, rx_iv),
            encrypter: suite.aead_alg.encrypter(tx_key, tx_iv),
            rx_seq,
            tx_seq,
            buffer: vec![0; RECEIVE_BUFFER + HEADER_LEN + MAX_CIPHERTEXT_LEN],
            start: 0,
            end: 0,
            plain_start: 0,
            plain_end: 0,
            leftover,
            leftover_pos: 0,
            peer_closed: false,
            outgoing: Vec::new(),
            outgoing_pos: 0,
            close_sent: false,
        }));
        Ok(())
    }
}

fn split_secrets(
    secrets: ConnectionTrafficSecrets,
) -> io::Result<(rustls::crypto::cipher::AeadKey, rustls::crypto::cipher::Iv)> {
    match secrets {
        ConnectionTrafficSecrets::Aes128Gcm { key, iv }
        | ConnectionTrafficSecrets::Aes256Gcm { key, iv }
        | ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => Ok((key, iv)),
        _ => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "rustls handed over keys of an unknown AEAD",
        )),
    }
}

impl AsyncRead for TlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match &mut this.state {
            State::Rustls(stream) => {
                let before = buf.filled().len();
                ready!(Pin::new(stream.as_mut()).poll_read(cx, buf))?;
                if this.open_records && !this.written && buf.filled().len() > before {
                    this.switch_after_read()?;
                }
                Poll::Ready(Ok(()))
            }
            State::Records(records) => records.poll_read(cx, buf),
            State::Failed => Poll::Ready(Err(switch_failed())),
        }
    }
}

impl AsyncWrite for TlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.written = true;
        match &mut this.state {
            State::Rustls(stream) => Pin::new(stream.as_mut()).poll_write(cx, data),
            State::Records(records) => records.poll_write(cx, data),
            State::Failed => Poll::Ready(Err(switch_failed())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().state {
            State::Rustls(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
            State::Records(records) => records.poll_flush(cx),
            State::Failed => Poll::Ready(Err(switch_failed())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().state {
            State::Rustls(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
            State::Records(records) => records.poll_shutdown(cx),
            State::Failed => Poll::Ready(Err(switch_failed())),
        }
    }
}

fn switch_failed() -> io::Error {
    io::Error::other("the TLS stream failed while taking over the record layer")
}

impl TokioTlsStream for TlsStream {
    type InnerStream = Self;

    fn tcp_stream(self) -> suppaftp::FtpResult<TcpStream> {
        let TlsStream { tcp, state, .. } = self;
        drop(state);
        Arc::try_unwrap(tcp).map_err(|_| {
            suppaftp::FtpError::ConnectionError(io::Error::other(
                "the TCP stream is still shared by the TLS layer",
            ))
        })
    }

    fn get_ref(&self) -> &TcpStream {
        &self.tcp
    }

    fn mut_ref(&mut self) -> &mut Self {
        self
    }
}

/// A TCP stream whose reads end at TLS record boundaries.
///
/// rustls reads as much as the buffer it offers allows. Ending each read at the end of the
/// current record means that, once a record with plaintext is decrypted, rustls contains no byte of
/// the next one, so the keys can be taken out without losing data.
pub(crate) struct Framed {
    tcp: Arc<TcpStream>,
    header: [u8; HEADER_LEN],
    header_len: usize,
    body_left: usize,
}

impl Framed {
    fn new(tcp: Arc<TcpStream>) -> Self {
        Self {
            tcp,
            header: [0; HEADER_LEN],
            header_len: 0,
            body_left: 0,
        }
    }

    fn at_record_boundary(&self) -> bool {
        self.header_len == 0 && self.body_left == 0
    }
}

impl AsyncRead for Framed {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let want = if this.body_left > 0 {
            this.body_left
        } else {
            HEADER_LEN - this.header_len
        };
        let room = want.min(buf.remaining());
        let mut limited = ReadBuf::new(buf.initialize_unfilled_to(room));
        ready!(poll_read_shared(&this.tcp, cx, &mut limited))?;
        let read = limited.filled().len();
        if this.body_left > 0 {
            this.body_left -= read;
        } else {
            let end = this.header_len + read;
            if let (Some(target), Some(source)) = (
                this.header.get_mut(this.header_len..end),
                limited.filled().get(..read),
            ) {
                target.copy_from_slice(source);
            }
            this.header_len = end;
            if this.header_len == HEADER_LEN {
                this.body_left = usize::from(u16::from_be_bytes([this.header[3], this.header[4]]));
                this.header_len = 0;
            }
        }
        buf.advance(read);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Framed {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        poll_write_shared(&self.tcp, cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.tcp.poll_write_ready(cx))?;
            match self.tcp.try_write_vectored(bufs) {
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                other => return Poll::Ready(other),
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(shutdown_write(&self.tcp))
    }
}

/// Reads from a shared socket into `buf`.
fn poll_read_shared(
    tcp: &TcpStream,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<io::Result<()>> {
    loop {
        ready!(tcp.poll_read_ready(cx))?;
        match tcp.try_read(buf.initialize_unfilled()) {
            Ok(read) => {
                buf.advance(read);
                return Poll::Ready(Ok(()));
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
            Err(error) => return Poll::Ready(Err(error)),
        }
    }
}

/// Writes `data` to a shared socket.
fn poll_write_shared(
    tcp: &TcpStream,
    cx: &mut Context<'_>,
    data: &[u8],
) -> Poll<io::Result<usize>> {
    loop {
        ready!(tcp.poll_write_ready(cx))?;
        match tcp.try_write(data) {
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
            other => return Poll::Ready(other),
        }
    }
}

/// Closes the sending side of a shared socket, as `AsyncWrite::poll_shutdown` does for a
/// `TcpStream`.
fn shutdown_write(tcp: &TcpStream) -> io::Result<()> {
    socket2::SockRef::from(tcp).shutdown(std::net::Shutdown::Write)
}

/// A TLS 1.3 record layer over the keys taken out of rustls.
struct Records {
    tcp: Arc<TcpStream>,
    decrypter: Box<dyn MessageDecrypter>,
    encrypter: Box<dyn MessageEncrypter>,
    rx_seq: u64,
    tx_seq: u64,
    /// Received bytes; `start..end` is not opened yet.
    buffer: Vec<u8>,
    start: usize,
    end: usize,
    /// Opened plaintext in `buffer` that the caller has not read yet.
    plain_start: usize,
    plain_end: usize,
    /// Plaintext that rustls had decrypted before the switch.
    leftover: Vec<u8>,
    leftover_pos: usize,
    /// Whether the server sent `close_notify`.
    peer_closed: bool,
    /// Encrypted records waiting for the socket; `outgoing_pos..` is not sent yet.
    outgoing: Vec<u8>,
    outgoing_pos: usize,
    close_sent: bool,
}

impl Records {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            if self.leftover_pos < self.leftover.len() {
                let source = self.leftover.get(self.leftover_pos..).unwrap_or_default();
                self.leftover_pos += copy_into(source, buf);
                return Poll::Ready(Ok(()));
            }
            if self.plain_start < self.plain_end {
                let source = self
                    .buffer
                    .get(self.plain_start..self.plain_end)
                    .unwrap_or_default();
                self.plain_start += copy_into(source, buf);
                return Poll::Ready(Ok(()));
            }
            if self.peer_closed || buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            if self.open_next_record()? {
                continue;
            }
            // Not a whole record in the buffer: move the partial one to the front if the rest
            // of the buffer could not hold a full record, then read more.
            if self.start == self.end {
                self.start = 0;
                self.end = 0;
            } else if self.buffer.len() - self.end < HEADER_LEN + MAX_CIPHERTEXT_LEN {
                self.buffer.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            let mut target = ReadBuf::new(self.buffer.get_mut(self.end..).unwrap_or_default());
            ready!(poll_read_shared(&self.tcp, cx, &mut target))?;
            let read = target.filled().len();
            if read == 0 {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    if self.end > self.start {
                        "the connection closed in the middle of a TLS record"
                    } else {
                        "the peer closed the connection without sending TLS close_notify"
                    },
                )));
            }
            self.end += read;
        }
    }

    /// Opens the record at `start` when it is complete, and returns whether it did.
    fn open_next_record(&mut self) -> io::Result<bool> {
        let available = self.end - self.start;
        let Some(header) = self.buffer.get(self.start..self.start + HEADER_LEN) else {
            return Ok(false);
        };
        if available < HEADER_LEN {
            return Ok(false);
        }
        let typ = header[0];
        let length = usize::from(u16::from_be_bytes([header[3], header[4]]));
        if length > MAX_CIPHERTEXT_LEN {
            return Err(invalid(format!(
                "a TLS record of {length} bytes is longer than TLS 1.3 allows"
            )));
        }
        if available < HEADER_LEN + length {
            return Ok(false);
        }
        let body_start = self.start + HEADER_LEN;
        let body_end = body_start + length;
        self.start = body_end;
        match ContentType::from(typ) {
            ContentType::ApplicationData => {}
            // A compatibility change_cipher_spec carries no data.
            ContentType::ChangeCipherSpec => return Ok(true),
            other => {
                return Err(invalid(format!(
                    "an unencrypted TLS record of type {other:?} after the handshake"
                )));
            }
        }
        let base = self.buffer.as_ptr() as usize;
        let body = self
            .buffer
            .get_mut(body_start..body_end)
            .unwrap_or_default();
        let message =
            InboundOpaqueMessage::new(ContentType::ApplicationData, ProtocolVersion::TLSv1_2, body);
        let plain = self
            .decrypter
            .decrypt(message, self.rx_seq)
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))?;
        self.rx_seq += 1;
        let offset = plain.payload.as_ptr() as usize - base;
        let payload_len = plain.payload.len();
        match plain.typ {
            ContentType::ApplicationData => {
                self.plain_start = offset;
                self.plain_end = offset + payload_len;
            }
            ContentType::Handshake => {
                // Session tickets after the switch cannot reach rustls' store; the tickets sent
                // before the first data record already did. A key update cannot be followed
                // without the traffic secret.
                if plain.payload.first() == Some(&24) {
                    return Err(invalid(
                        "the server updated its TLS keys, which this record layer cannot follow"
                            .to_owned(),
                    ));
                }
                debug!("ignoring a TLS handshake message after the handshake");
            }
            ContentType::Alert => match plain.payload {
                [_, 0] => self.peer_closed = true,
                [level, description] => {
                    return Err(invalid(format!(
                        "the server sent TLS alert {description} (level {level})"
                    )));
                }
                _ => return Err(invalid("a malformed TLS alert".to_owned())),
            },
            other => {
                return Err(invalid(format!(
                    "an encrypted TLS record of type {other:?} after the handshake"
                )));
            }
        }
        Ok(true)
    }

    /// Sends the contents of `outgoing`, and returns `Pending` only when the socket is not writable.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.outgoing_pos < self.outgoing.len() {
            let pending = self.outgoing.get(self.outgoing_pos..).unwrap_or_default();
            let sent = ready!(poll_write_shared(&self.tcp, cx, pending))?;
            if sent == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.outgoing_pos += sent;
        }
        self.outgoing.clear();
        self.outgoing_pos = 0;
        Poll::Ready(Ok(()))
    }

    fn seal(&mut self, typ: ContentType, data: &[u8]) -> io::Result<()> {
        let message = OutboundPlainMessage {
            typ,
            version: ProtocolVersion::TLSv1_2,
            payload: OutboundChunks::from(data),
        };
        let sealed = self
            .encrypter
            .encrypt(message, self.tx_seq)
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))?;
        self.tx_seq += 1;
        self.outgoing.extend_from_slice(&sealed.encode());
        Ok(())
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        if self.close_sent {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "write after TLS close_notify",
            )));
        }
        ready!(self.poll_send(cx))?;
        let count = data.len().min(MAX_PLAINTEXT_LEN);
        if count == 0 {
            return Poll::Ready(Ok(0));
        }
        self.seal(
            ContentType::ApplicationData,
            data.get(..count).unwrap_or_default(),
        )?;
        // The record is queued; a socket that is not writable now is retried by the next call.
        if let Poll::Ready(Err(error)) = self.poll_send(cx) {
            return Poll::Ready(Err(error));
        }
        Poll::Ready(Ok(count))
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_send(cx)
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.close_sent {
            ready!(self.poll_send(cx))?;
            // close_notify: warning level (1), description 0.
            self.seal(ContentType::Alert, &[1, 0])?;
            self.close_sent = true;
        }
        ready!(self.poll_send(cx))?;
        Poll::Ready(shutdown_write(&self.tcp))
    }
}

/// Copies as much of `source` as fits into `buf` and returns the number of bytes copied.
fn copy_into(source: &[u8], buf: &mut ReadBuf<'_>) -> usize {
    let count = source.len().min(buf.remaining());
    buf.put_slice(source.get(..count).unwrap_or_default());
    count
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use rustls::{RootCertStore, ServerConfig};
    use suppaftp::tokio_rustls::TlsAcceptor;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A TLS server on 127.0.0.1 with a self-signed certificate for `localhost`, and a client
    /// configuration that trusts it.
    struct Pair {
        acceptor: TlsAcceptor,
        client: Arc<ClientConfig>,
    }

    fn pair(versions: &[&'static rustls::SupportedProtocolVersion]) -> Pair {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let key = rcgen::KeyPair::generate().expect("generate a key");
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .expect("certificate parameters")
            .self_signed(&key)
            .expect("self-sign");
        let cert_der = CertificateDer::from(cert.der().to_vec());
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let server = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(versions)
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert_der.clone()], key_der)
            .expect("server certificate");
        let mut roots = RootCertStore::empty();
        roots.add(cert_der).expect("trust the certificate");
        let mut client = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        client.enable_secret_extraction = true;
        Pair {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            client: Arc::new(client),
        }
    }

    /// Bytes that differ at every position, so a lost or repeated record shows.
    fn pattern(length: usize) -> Vec<u8> {
        (0..length)
            .map(|index| (index % 251) as u8 ^ (index / 251) as u8)
            .collect()
    }

    /// Starts a server that runs `serve` on its one TLS connection, and returns a data stream
    /// connected to it.
    async fn connect<F, Fut>(pair: &Pair, serve: F) -> (TlsStream, tokio::task::JoinHandle<()>)
    where
        F: FnOnce(suppaftp::tokio_rustls::server::TlsStream<TcpStream>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let acceptor = pair.acceptor.clone();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.expect("accept");
            let tls = acceptor.accept(tcp).await.expect("server handshake");
            serve(tls).await;
        });
        let tcp = TcpStream::connect(address).await.expect("connect");
        let stream = Connector::new(Arc::clone(&pair.client))
            .connect("localhost", tcp)
            .await
            .expect("client handshake");
        (stream, server)
    }

    async fn send_and_close(
        mut tls: suppaftp::tokio_rustls::server::TlsStream<TcpStream>,
        data: Vec<u8>,
    ) {
        // Writes of several sizes, so records end at many different offsets.
        let mut sent = 0;
        for size in [1, 700, 16_384, 40_000, 3].iter().cycle() {
            if sent == data.len() {
                break;
            }
            let end = (sent + size).min(data.len());
            tls.write_all(&data[sent..end]).await.expect("server write");
            sent = end;
        }
        tls.shutdown().await.expect("server close_notify");
    }

    #[tokio::test]
    async fn switched_download_keeps_every_byte() {
        let pair = pair(&[&rustls::version::TLS13]);
        let data = pattern(3 * 1024 * 1024 + 17);
        let expected = data.clone();
        let (mut stream, server) = connect(&pair, move |tls| send_and_close(tls, data)).await;
        stream.open_records_on_read();

        let mut received = Vec::new();
        stream
            .read_to_end(&mut received)
            .await
            .expect("read to close_notify");

        assert!(
            received == expected,
            "the received bytes differ from the sent ones"
        );
        assert!(
            stream.opens_records(),
            "the stream kept the rustls read path"
        );
        server.await.expect("server task");
    }

    #[tokio::test]
    async fn reads_with_small_buffers_keep_every_byte() {
        let pair = pair(&[&rustls::version::TLS13]);
        let data = pattern(200_000);
        let expected = data.clone();
        let (mut stream, server) = connect(&pair, move |tls| send_and_close(tls, data)).await;
        stream.open_records_on_read();

        let mut received = Vec::new();
        let mut buffer = [0_u8; 1000];
        loop {
            let read = stream.read(&mut buffer).await.expect("read");
            if read == 0 {
                break;
            }
            received.extend_from_slice(&buffer[..read]);
        }

        assert!(
            received == expected,
            "the received bytes differ from the sent ones"
        );
        assert!(stream.opens_records());
        server.await.expect("server task");
    }

    #[tokio::test]
    async fn connection_closed_without_close_notify_is_an_error() {
        let pair = pair(&[&rustls::version::TLS13]);
        let (mut stream, server) = connect(&pair, |mut tls| async move {
            tls.write_all(&pattern(100_000))
                .await
                .expect("server write");
            tls.flush().await.expect("server flush");
            // Close the socket without close_notify.
            let (tcp, _) = tls.into_inner();
            drop(tcp);
        })
        .await;
        stream.open_records_on_read();

        let mut received = Vec::new();
        let error = stream
            .read_to_end(&mut received)
            .await
            .expect_err("a cut stream must not look complete");

        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(received.len(), 100_000);
        server.await.expect("server task");
    }

    #[tokio::test]
    async fn altered_record_is_rejected() {
        let pair = pair(&[&rustls::version::TLS13]);
        let (mut stream, server) = connect(&pair, |mut tls| async move {
            tls.write_all(b"first record").await.expect("server write");
            tls.flush().await.expect("server flush");
            // An application data record whose tag cannot match.
            let mut forged = vec![23, 3, 3, 0, 40];
            forged.extend_from_slice(&[0x5a; 40]);
            let (tcp, _) = tls.get_mut();
            tcp.write_all(&forged)
                .await
                .expect("write the forged record");
            tcp.flush().await.expect("flush");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        })
        .await;
        stream.open_records_on_read();

        let mut buffer = [0_u8; 64];
        let read = stream.read(&mut buffer).await.expect("first read");
        assert_eq!(&buffer[..read], b"first record");
        let error = stream
            .read(&mut buffer)
            .await
            .expect_err("a forged record must fail");

        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        server.await.expect("server task");
    }

    #[tokio::test]
    async fn switched_writes_end_with_close_notify() {
        let pair = pair(&[&rustls::version::TLS13]);
        let (reply_tx, reply_rx) = tokio::sync::oneshot::channel();
        let (mut stream, server) = connect(&pair, |mut tls| async move {
            tls.write_all(b"ready").await.expect("server write");
            tls.flush().await.expect("server flush");
            let mut received = Vec::new();
            // rustls reports a close without close_notify as an error here.
            let closed = tls.read_to_end(&mut received).await;
            let _ = reply_tx.send((closed.map(|_| ()), received));
        })
        .await;
        stream.open_records_on_read();

        let mut buffer = [0_u8; 16];
        let read = stream.read(&mut buffer).await.expect("read");
        assert_eq!(&buffer[..read], b"ready");
        assert!(stream.opens_records());
        let message = pattern(50_000);
        stream.write_all(&message).await.expect("write");
        stream.shutdown().await.expect("close_notify");

        let (closed, received) = reply_rx.await.expect("server result");
        closed.expect("the server saw close_notify");
        assert!(received == message, "the server received other bytes");
        server.await.expect("server task");
    }

    #[tokio::test]
    async fn tls12_connection_stays_on_rustls() {
        let pair = pair(&[&rustls::version::TLS12]);
        let data = pattern(100_000);
        let expected = data.clone();
        let (mut stream, server) = connect(&pair, move |tls| send_and_close(tls, data)).await;
        stream.open_records_on_read();

        let mut received = Vec::new();
        stream.read_to_end(&mut received).await.expect("read");

        assert!(received == expected);
        assert!(!stream.opens_records());
        server.await.expect("server task");
    }

    #[tokio::test]
    async fn stream_without_permission_never_switches() {
        let pair = pair(&[&rustls::version::TLS13]);
        let data = pattern(100_000);
        let expected = data.clone();
        let (mut stream, server) = connect(&pair, move |tls| send_and_close(tls, data)).await;

        let mut received = Vec::new();
        stream.read_to_end(&mut received).await.expect("read");

        assert!(received == expected);
        assert!(!stream.opens_records());
        server.await.expect("server task");
    }
}
