//! Connection settings for an FTPS session.

use std::net::IpAddr;
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use secrecy::SecretString;

use crate::error::FtpError;

/// Default control port for explicit FTPS.
pub const DEFAULT_PORT: u16 = 21;
/// Default time limit for opening a TCP connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time limit for each read, write or command reply without progress.
pub const DEFAULT_IO_TIMEOUT: Duration = Duration::from_secs(60);
/// Default time limit for the server's final reply after the data of a transfer is sent or read.
///
/// A server may verify or move a multi-gigabyte file before it replies `226`, so this limit is
/// longer than [`DEFAULT_IO_TIMEOUT`].
pub const DEFAULT_FINAL_REPLY_TIMEOUT: Duration = Duration::from_secs(300);
/// Default control port for implicit FTPS.
pub const DEFAULT_IMPLICIT_TLS_PORT: u16 = 990;

/// Settings for connecting to an explicit-FTPS server (`AUTH TLS` on the control port).
///
/// The client always upgrades the control connection to TLS before it sends the user name, and it
/// protects every data connection (`PROT P`). Plain FTP is not supported.
///
/// `Debug` output shows the user name but never the password.
#[derive(Clone)]
pub struct FtpsConfig {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) user: String,
    pub(crate) password: SecretString,
    pub(crate) extra_roots: Vec<CertificateDer<'static>>,
    pub(crate) use_system_roots: bool,
    pub(crate) connect_timeout: Duration,
    pub(crate) io_timeout: Duration,
    pub(crate) tls_resumption: bool,
    pub(crate) final_reply_timeout: Duration,
    pub(crate) use_passive_address: bool,
    pub(crate) implicit_tls: bool,
    pub(crate) plain_ftp: bool,
}

impl std::fmt::Debug for FtpsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FtpsConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &"[REDACTED]")
            .field("extra_roots", &self.extra_roots.len())
            .field("use_system_roots", &self.use_system_roots)
            .field("connect_timeout", &self.connect_timeout)
            .field("io_timeout", &self.io_timeout)
            .field("tls_resumption", &self.tls_resumption)
            .field("final_reply_timeout", &self.final_reply_timeout)
            .field("use_passive_address", &self.use_passive_address)
            .field("implicit_tls", &self.implicit_tls)
            .field("plain_ftp", &self.plain_ftp)
            .finish()
    }
}

impl FtpsConfig {
    /// Creates settings for `host` on port 21.
    ///
    /// `host` is a DNS name or an IP address without a port; an IPv6 address may be given with or
    /// without square brackets. Use [`FtpsConfig::from_host_port`] for a `host:port` string.
    /// The host is checked when [`crate::FtpsClient::connect`] runs.
    pub fn new(
        host: impl Into<String>,
        user: impl Into<String>,
        password: impl Into<SecretString>,
    ) -> Self {
        let host = host.into();
        let host = strip_brackets(&host).unwrap_or(&host).to_owned();
        Self {
            host,
            port: DEFAULT_PORT,
            user: user.into(),
            password: password.into(),
            extra_roots: Vec::new(),
            use_system_roots: true,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            io_timeout: DEFAULT_IO_TIMEOUT,
            tls_resumption: true,
            final_reply_timeout: DEFAULT_FINAL_REPLY_TIMEOUT,
            use_passive_address: false,
            implicit_tls: false,
            plain_ftp: false,
        }
    }

    /// Creates settings from `"name"`, `"name:port"`, `"192.0.2.1:2121"`, `"[2001:db8::1]:2121"`
    /// or a bare IPv6 address. Without a port, port 21 is used.
    ///
    /// # Errors
    ///
    /// Returns [`FtpError::InvalidHost`] naming the value when the host is empty, contains
    /// characters that are not valid in a host name, or the port is not a number from 1 to 65535.
    pub fn from_host_port(
        host_port: &str,
        user: impl Into<String>,
        password: impl Into<SecretString>,
    ) -> Result<Self, FtpError> {
        let (host, port) = parse_host_port(host_port)?;
        Ok(Self::new(host, user, password).port(port))
    }

    /// Sets the control port (default 21).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Adds every certificate in `pem` as a trust anchor, in addition to the system roots.
    ///
    /// Use this for a server whose certificate is signed by a private CA.
    ///
    /// # Errors
    ///
    /// Returns [`FtpError::InvalidCertificatePem`] when `pem` contains no `CERTIFICATE` block,
    /// when a block is not valid base64, or when a certificate cannot be used as a trust anchor.
    pub fn add_root_certificate_pem(mut self, pem: &[u8]) -> Result<Self, FtpError> {
        let mut found = Vec::new();
        for item in CertificateDer::pem_slice_iter(pem) {
            let certificate = item.map_err(|source| FtpError::InvalidCertificatePem {
                reason: format!("cannot parse PEM: {source}"),
                source: Some(Box::new(source)),
            })?;
            found.push(certificate);
        }
        if found.is_empty() {
            return Err(FtpError::InvalidCertificatePem {
                reason: "no `-----BEGIN CERTIFICATE-----` block found; pass the CA certificate \
                         in PEM format"
                    .to_owned(),
                source: None,
            });
        }

        // Parse each certificate now, so a bad one is reported here and not at connect time.
        let mut check = rustls::RootCertStore::empty();
        for (index, certificate) in found.iter().enumerate() {
            check
                .add(certificate.clone())
                .map_err(|source| FtpError::InvalidCertificatePem {
                    reason: format!(
                        "certificate {} of {} cannot be used as a trust anchor: {source}",
                        index + 1,
                        found.len()
                    ),
                    source: Some(Box::new(source)),
                })?;
        }

        self.extra_roots.extend(found);
        Ok(self)
    }

    /// Sets whether the operating system's root certificates are trusted (default `true`).
    ///
    /// With `false`, only certificates added by [`FtpsConfig::add_root_certificate_pem`] are
    /// trusted.
    pub fn use_system_roots(mut self, yes: bool) -> Self {
        self.use_system_roots = yes;
        self
    }

    /// Sets the time limit for opening each TCP connection, control or data (default 30 s).
    pub fn connect_timeout(mut self, duration: Duration) -> Self {
        self.connect_timeout = duration;
        self
    }

    /// Sets the stall time limit (default 60 s).
    ///
    /// The limit applies to each read or write on a data connection and to each command's reply,
    /// so a transfer of any size can take as long as it needs while it keeps moving data.
    pub fn io_timeout(mut self, duration: Duration) -> Self {
        self.io_timeout = duration;
        self
    }

    /// Sets whether data connections resume the control connection's TLS session (default `true`).
    ///
    /// Many servers, vsftpd with `require_ssl_reuse=YES` among them, reject data connections that
    /// do not resume the session. Turn this off only to diagnose a server that fails on resumption.
    pub fn tls_session_resumption(mut self, yes: bool) -> Self {
        self.tls_resumption = yes;
        self
    }

    /// Sets the time limit for the server's final reply after a transfer's data (default 5 min).
    ///
    /// The server sends `226` only after it has stored or sent the whole file, which for a large
    /// file can take longer than [`FtpsConfig::io_timeout`].
    pub fn final_reply_timeout(mut self, duration: Duration) -> Self {
        self.final_reply_timeout = duration;
        self
    }

    /// Sets whether passive data connections go to the address in the server's `227` reply
    /// (default `false`).
    ///
    /// By default the client connects to the control connection's peer address and takes only
    /// the port from the reply, because servers behind NAT often advertise a private address.
    /// `EPSV` replies carry no address, so this setting only matters when `PASV` is used.
    pub fn use_passive_address(mut self, yes: bool) -> Self {
        self.use_passive_address = yes;
        self
    }

    /// Sets whether the control connection starts with TLS at once (implicit FTPS, usually port
    /// 990) instead of upgrading with `AUTH TLS` (default `false`).
    ///
    /// This does not change the port; set it with [`FtpsConfig::port`], for example to
    /// [`DEFAULT_IMPLICIT_TLS_PORT`].
    pub fn implicit_tls(mut self, yes: bool) -> Self {
        self.implicit_tls = yes;
        self
    }

    /// Turns off TLS on the control and data connections, so the user name, the password and
    /// every file cross the network unencrypted.
    ///
    /// Use this only for a test server on a trusted network. The connection logs a warning each
    /// time it connects this way. Implicit TLS and root certificates are ignored.
    pub fn insecure_plain_ftp_sends_password_in_clear(mut self) -> Self {
        self.plain_ftp = true;
        self
    }

    /// Returns the host name or IP address, without port or brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Returns the control port.
    pub fn port_number(&self) -> u16 {
        self.port
    }

    /// Returns the user name.
    pub fn user(&self) -> &str {
        &self.user
    }
}

/// Returns the text between `[` and `]` when `value` is a bracketed IPv6 literal.
fn strip_brackets(value: &str) -> Option<&str> {
    value.strip_prefix('[')?.strip_suffix(']')
}

/// Splits `"name"`, `"name:port"`, `"[v6]:port"`, `"[v6]"` or a bare IPv6 address into host and
/// port, and checks both.
pub(crate) fn parse_host_port(value: &str) -> Result<(String, u16), FtpError> {
    let invalid = |reason: &str| FtpError::InvalidHost {
        value: value.to_owned(),
        reason: reason.to_owned(),
    };

    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(invalid(
            "the host is empty; give a host name or IP address, optionally followed by `:port`",
        ));
    }

    if trimmed.contains('/') {
        return Err(invalid(
            "a URL or path is not a host; drop any scheme such as `ftp://` and any path, and \
             give `name` or `name:port`",
        ));
    }

    let (host, port) = if let Some(rest) = trimmed.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return Err(invalid(
                "an IPv6 address opened with `[` has no closing `]`; write it as `[::1]:2121`",
            ));
        };
        if inside.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(invalid(
                "the text inside `[...]` is not an IPv6 address; write it as `[::1]:2121`",
            ));
        }
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(port) => Some(port),
                None => {
                    return Err(invalid(
                        "unexpected text after `]`; write the port as `[::1]:2121`",
                    ));
                }
            },
        };
        (inside, port)
    } else if trimmed.parse::<IpAddr>().is_ok() {
        // A bare IPv6 address such as `::1` contains colons that are not a port separator.
        (trimmed, None)
    } else {
        match trimmed.rsplit_once(':') {
            Some((host, port)) => {
                if host.contains(':') {
                    return Err(invalid(
                        "an IPv6 address with a port needs square brackets, as in `[::1]:2121`",
                    ));
                }
                (host, Some(port))
            }
            None => (trimmed, None),
        }
    };

    let port = match port {
        None => DEFAULT_PORT,
        Some(text) => match text.parse::<u16>() {
            Ok(0) | Err(_) => {
                return Err(invalid(
                    "the port must be a number from 1 to 65535, as in `ftp.example.com:2121`",
                ));
            }
            Ok(port) => port,
        },
    };

    check_host_name(host).map_err(|reason| invalid(&reason))?;
    Ok((host.to_owned(), port))
}

/// Checks that `host` is an IP address or a DNS name made of letters, digits, `-`, `_` and dots.
pub(crate) fn check_host_name(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err(
            "the host is empty; give a host name or IP address before the `:port`".to_owned(),
        );
    }
    if host.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    if host.len() > 253 {
        return Err("a host name is at most 253 characters long".to_owned());
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.';
    if let Some(bad) = host.chars().find(|c| !allowed(*c)) {
        return Err(format!(
            "the host contains {bad:?}; a host name has only letters, digits, `-`, `_` and dots, \
             and no scheme such as `ftp://`"
        ));
    }
    // One trailing dot marks a fully qualified name and is allowed.
    let labels = host.strip_suffix('.').unwrap_or(host);
    if labels.split('.').any(str::is_empty) {
        return Err("the host has an empty label (two dots in a row, or a leading dot)".to_owned());
    }
    Ok(())
}
