//! rustls client configuration and certificate-error capture.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::config::FtpsConfig;
use crate::error::FtpError;

/// Loads the system's root certificates once per process, because reading them takes a few
/// milliseconds and they rarely change while a program runs.
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let loaded = rustls_native_certs::load_native_certs();
        for error in &loaded.errors {
            tracing::warn!(%error, "skipped unreadable system root certificates");
        }
        tracing::debug!(
            count = loaded.certs.len(),
            "loaded system root certificates"
        );
        loaded.certs
    })
}

/// A rustls configuration plus the slot where its verifier stores the last rejection.
pub(crate) struct TlsSetup {
    pub(crate) config: Arc<ClientConfig>,
    pub(crate) verifier: Arc<RecordingVerifier>,
}

/// Builds the client configuration for one FTPS session.
///
/// Each session gets its own configuration, so the recorded verification error belongs to that
/// session's handshakes only. The control and data connections share it, which is what lets data
/// connections resume the control connection's TLS session.
pub(crate) fn build(config: &FtpsConfig) -> Result<TlsSetup, FtpError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());

    let mut roots = RootCertStore::empty();
    if config.use_system_roots {
        let (added, ignored) = roots.add_parsable_certificates(system_roots().iter().cloned());
        tracing::trace!(added, ignored, "system roots added to the trust store");
    }
    for certificate in &config.extra_roots {
        roots
            .add(certificate.clone())
            .map_err(|source| FtpError::TrustAnchors {
                reason: format!("an added root certificate is not usable: {source}"),
                source: None,
            })?;
    }
    if roots.is_empty() {
        return Err(FtpError::TrustAnchors {
            reason: "no trusted root certificates: add the server's CA with \
                     FtpsConfig::add_root_certificate_pem or enable FtpsConfig::use_system_roots"
                .to_owned(),
            source: None,
        });
    }

    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|source| FtpError::TrustAnchors {
            reason: format!("rustls rejected the trust anchors: {source}"),
            source: Some(source),
        })?;
    let verifier = Arc::new(RecordingVerifier {
        inner: webpki,
        last_error: Mutex::new(None),
    });

    let mut client_config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|source| FtpError::TrustAnchors {
            reason: format!("the aws-lc-rs provider supports no safe TLS version: {source}"),
            source: None,
        })?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    if !config.tls_resumption {
        client_config.resumption = rustls::client::Resumption::disabled();
    }
    // Data connections take the TLS 1.3 traffic keys out of rustls to open records in place
    // (see `record.rs`); the keys stay inside this process.
    client_config.enable_secret_extraction = true;

    Ok(TlsSetup {
        config: Arc::new(client_config),
        verifier,
    })
}

/// The standard WebPKI verifier, wrapped so that a rejected certificate's typed error stays
/// available.
///
/// suppaftp reports TLS failures as text only. This wrapper keeps the [`rustls::Error`], so the
/// client can report that a certificate was not trusted and why. It accepts and rejects exactly
/// what the WebPKI verifier accepts and rejects.
#[derive(Debug)]
pub(crate) struct RecordingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    last_error: Mutex<Option<rustls::Error>>,
}

impl RecordingVerifier {
    /// Removes and returns the error of the last rejected certificate.
    pub(crate) fn take_error(&self) -> Option<rustls::Error> {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    fn record<T>(&self, result: Result<T, rustls::Error>) -> Result<T, rustls::Error> {
        if let Err(error) = &result {
            *self
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(error.clone());
        }
        result
    }
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.record(self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.record(self.inner.verify_tls12_signature(message, cert, dss))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.record(self.inner.verify_tls13_signature(message, cert, dss))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Describes a certificate rejection and the change that fixes it, as `(reason, fix)`.
pub(crate) fn describe_certificate_error(error: &rustls::Error) -> Option<(String, String)> {
    let rustls::Error::InvalidCertificate(certificate_error) = error else {
        return None;
    };
    let described = match certificate_error {
        CertificateError::UnknownIssuer => (
            "unknown issuer",
            "add its CA with FtpsConfig::add_root_certificate_pem",
        ),
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => (
            "the certificate is not valid for this host name",
            "connect with a host name or IP address listed in the certificate's subjectAltName",
        ),
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => (
            "the certificate has expired",
            "renew the server certificate, or check this machine's clock",
        ),
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => (
            "the certificate is not valid yet",
            "check this machine's clock and the certificate's notBefore date",
        ),
        CertificateError::Revoked => (
            "the certificate has been revoked",
            "install a new server certificate",
        ),
        _ => {
            return Some((
                format!("{certificate_error:?}"),
                "check the server's certificate chain; the server must send a leaf certificate \
                 (not a CA certificate) that chains to a trusted root"
                    .to_owned(),
            ));
        }
    };
    Some((described.0.to_owned(), described.1.to_owned()))
}
