//! A plain FTP server on 127.0.0.1 that offers no TLS and records every command it receives.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// A running server; it stops accepting when dropped.
pub(crate) struct PlainFtpServer {
    /// The address clients connect to.
    pub(crate) address: SocketAddr,
    commands: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PlainFtpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PlainFtpServer {
    /// Starts a server that answers `AUTH` with `502`, as a server without TLS support does,
    /// and accepts any user and password.
    pub(crate) async fn start() -> PlainFtpServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the plain FTP server on 127.0.0.1");
        let address = listener.local_addr().expect("server address");
        let commands = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&commands);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let recorded = Arc::clone(&recorded);
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut lines = BufReader::new(read).lines();
                    if write.write_all(b"220 plain FTP only\r\n").await.is_err() {
                        return;
                    }
                    while let Ok(Some(line)) = lines.next_line().await {
                        if let Ok(mut commands) = recorded.lock() {
                            commands.push(line.clone());
                        }
                        let verb = line
                            .split(' ')
                            .next()
                            .unwrap_or_default()
                            .to_ascii_uppercase();
                        let reply: &[u8] = match verb.as_str() {
                            "AUTH" => b"502 AUTH not implemented\r\n",
                            "USER" => b"331 send the password\r\n",
                            "PASS" => b"230 logged in\r\n",
                            "QUIT" => b"221 bye\r\n",
                            _ => b"502 not implemented\r\n",
                        };
                        if write.write_all(reply).await.is_err() || verb == "QUIT" {
                            return;
                        }
                    }
                });
            }
        });
        PlainFtpServer {
            address,
            commands,
            task,
        }
    }

    /// Returns the command lines received so far, on every connection.
    pub(crate) fn commands(&self) -> Vec<String> {
        self.commands
            .lock()
            .map(|commands| commands.clone())
            .unwrap_or_default()
    }
}
