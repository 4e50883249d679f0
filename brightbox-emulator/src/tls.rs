//! Certificates for the FTPS server: a throwaway CA and a server certificate it signs.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use tempfile::TempDir;

use crate::EmulatorError;

const CA_FILE: &str = "ca.pem";
const CHAIN_FILE: &str = "server-chain.pem";
const KEY_FILE: &str = "server-key.pem";

/// The CA and server certificate, with the files libunftp loads.
///
/// The files live in a private folder (mode 0700 on Unix) outside the FTP root: a
/// temporary folder removed when this value is dropped, or the state folder's `tls/`.
pub(crate) struct TlsMaterial {
    pub(crate) ca_pem: String,
    pub(crate) ca_path: PathBuf,
    pub(crate) chain_path: PathBuf,
    pub(crate) key_path: PathBuf,
    _dir: Option<TempDir>,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("ca_path", &self.ca_path)
            .field("chain_path", &self.chain_path)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

/// Generates a CA and a server certificate for `127.0.0.1` and `localhost`, and writes
/// the server chain, the server key and the CA certificate into a new private folder.
pub(crate) fn generate() -> Result<TlsMaterial, EmulatorError> {
    let dir = tempfile::Builder::new()
        .prefix("brightbox-emulator-tls-")
        .tempdir()
        .map_err(|source| EmulatorError::TempDir { source })?;
    crate::restrict_to_owner(dir.path())?;
    let mut material = generate_into(dir.path())?;
    material._dir = Some(dir);
    Ok(material)
}

/// Loads the CA certificate, the server chain and the server key from `dir`, or
/// generates and writes them there when `dir` has no CA certificate yet.
///
/// The CA certificate is written last, so its presence means the other two files were
/// written before it.
pub(crate) fn load_or_generate(dir: &Path) -> Result<TlsMaterial, EmulatorError> {
    let ca_path = dir.join(CA_FILE);
    let ca_pem = match std::fs::read_to_string(&ca_path) {
        Ok(pem) => pem,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return generate_into(dir);
        }
        Err(source) => {
            return Err(EmulatorError::TlsFile {
                path: ca_path,
                source,
            });
        }
    };
    let chain_path = dir.join(CHAIN_FILE);
    let key_path = dir.join(KEY_FILE);
    for path in [&chain_path, &key_path] {
        if let Err(source) = std::fs::metadata(path) {
            return Err(EmulatorError::TlsFile {
                path: path.clone(),
                source,
            });
        }
    }
    Ok(TlsMaterial {
        ca_pem,
        ca_path,
        chain_path,
        key_path,
        _dir: None,
    })
}

/// Generates the certificates and writes their files into the existing folder `dir`.
fn generate_into(dir: &Path) -> Result<TlsMaterial, EmulatorError> {
    let ca_key = KeyPair::generate().map_err(|source| EmulatorError::Certificate {
        item: "CA key",
        source,
    })?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(|source| {
        EmulatorError::Certificate {
            item: "CA certificate",
            source,
        }
    })?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.distinguished_name = distinguished_name("Brightbox emulator test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .map_err(|source| EmulatorError::Certificate {
            item: "CA certificate",
            source,
        })?;
    let issuer = Issuer::new(ca_params, ca_key);

    // rustls rejects a CA certificate as an end-entity certificate, so the server
    // certificate is a separate leaf with `IsCa::ExplicitNoCa`.
    let server_key = KeyPair::generate().map_err(|source| EmulatorError::Certificate {
        item: "server key",
        source,
    })?;
    let mut server_params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).map_err(
            |source| EmulatorError::Certificate {
                item: "server certificate",
                source,
            },
        )?;
    server_params.is_ca = IsCa::ExplicitNoCa;
    server_params.distinguished_name = distinguished_name("localhost");
    server_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server_params.use_authority_key_identifier_extension = true;
    let server_cert = server_params
        .signed_by(&server_key, &issuer)
        .map_err(|source| EmulatorError::Certificate {
            item: "server certificate",
            source,
        })?;

    let ca_pem = ca_cert.pem();
    let ca_path = dir.join(CA_FILE);
    let chain_path = dir.join(CHAIN_FILE);
    let key_path = dir.join(KEY_FILE);
    write_file(&key_path, server_key.serialize_pem().as_bytes())?;
    write_file(
        &chain_path,
        format!("{}{}", server_cert.pem(), ca_pem).as_bytes(),
    )?;
    write_file(&ca_path, ca_pem.as_bytes())?;

    Ok(TlsMaterial {
        ca_pem,
        ca_path,
        chain_path,
        key_path,
        _dir: None,
    })
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name.push(DnType::OrganizationName, "brightbox-emulator");
    name
}

/// Writes a file readable only by its owner on Unix, through a temporary name.
fn write_file(path: &Path, contents: &[u8]) -> Result<(), EmulatorError> {
    crate::state::write_atomically(path, contents).map_err(|source| EmulatorError::TlsFile {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_writes_chain_key_and_ca() {
        let material = generate().expect("certificates are generated");

        let chain = std::fs::read_to_string(&material.chain_path).expect("chain file is readable");
        assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2);
        assert!(chain.ends_with(&material.ca_pem));

        let key = std::fs::read_to_string(&material.key_path).expect("key file is readable");
        assert!(key.contains("PRIVATE KEY"));

        let ca = std::fs::read_to_string(&material.ca_path).expect("CA file is readable");
        assert_eq!(ca, material.ca_pem);
    }

    #[cfg(unix)]
    #[test]
    fn folder_is_private() {
        use std::os::unix::fs::PermissionsExt;

        let material = generate().expect("certificates are generated");
        let folder = material.key_path.parent().expect("the key has a folder");
        let mode = std::fs::metadata(folder)
            .expect("folder exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[cfg(unix)]
    #[test]
    fn key_file_is_private() {
        use std::os::unix::fs::PermissionsExt;

        let material = generate().expect("certificates are generated");
        let mode = std::fs::metadata(&material.key_path)
            .expect("key file exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
