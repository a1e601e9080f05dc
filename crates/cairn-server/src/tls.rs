//! `--tls`: rustls (ring provider) with a certificate chain and a private
//! key read from PEM files; HTTP/1.1 over ALPN.

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

/// The lowest TLS version accepted (`--tls-min-ver`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMinVersion {
    V1_2,
    V1_3,
}

impl std::str::FromStr for TlsMinVersion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "1.2" => Ok(TlsMinVersion::V1_2),
            "1.3" => Ok(TlsMinVersion::V1_3),
            _ => Err(format!(
                "unsupported TLS minimum version {s:?}: use 1.2 or 1.3"
            )),
        }
    }
}

fn read_pem(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read the TLS {what} {}: {e}", path.display()))
}

pub fn acceptor(cert: &Path, key: &Path, min: TlsMinVersion) -> Result<TlsAcceptor, String> {
    let cert_pem = read_pem(cert, "certificate")?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: not a PEM certificate: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{}: no certificate in it (PEM \"BEGIN CERTIFICATE\" expected)",
            cert.display()
        ));
    }
    let key_pem = read_pem(key, "key")?;
    let key = match PrivateKeyDer::from_pem_slice(&key_pem) {
        Ok(k) => k,
        Err(pem::Error::NoItemsFound) => {
            return Err(format!(
                "{}: no private key in it (PEM PKCS#8, PKCS#1 or SEC1 expected)",
                key.display()
            ))
        }
        Err(e) => return Err(format!("{}: not a PEM private key: {e}", key.display())),
    };
    let versions: &[&rustls::SupportedProtocolVersion] = match min {
        TlsMinVersion::V1_2 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsMinVersion::V1_3 => &[&rustls::version::TLS13],
    };
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .map_err(|e| format!("TLS set-up: {e}"))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| format!("TLS certificate and key do not work together: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(cert: &Path, key: &Path) -> String {
        match acceptor(cert, key, TlsMinVersion::V1_2) {
            Ok(_) => panic!("{} / {} accepted", cert.display(), key.display()),
            Err(e) => e,
        }
    }

    #[test]
    fn reads_pem_certificate_and_key_and_names_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = cairn_tests::rest::tls_certificate(dir.path());
        assert!(acceptor(&cert, &key, TlsMinVersion::V1_3).is_ok());
        // Each file where the other is expected: nothing of the kind in it.
        let e = err(&key, &key);
        assert!(e.contains("no certificate in it"), "{e}");
        let e = err(&cert, &cert);
        assert!(e.contains("no private key in it"), "{e}");
        // A broken PEM section.
        let broken = dir.path().join("broken.pem");
        let text = std::fs::read_to_string(&cert).unwrap();
        std::fs::write(&broken, &text[..text.len() / 2]).unwrap();
        let e = err(&broken, &key);
        assert!(e.contains("not a PEM certificate"), "{e}");
        let e = err(&dir.path().join("missing.pem"), &key);
        assert!(e.contains("cannot read the TLS certificate"), "{e}");
    }
}
