//! `--tls`: rustls (ring provider) with a certificate chain and a private
//! key read from PEM files; HTTP/1.1 over ALPN.

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io::BufReader;
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
    let certs: Vec<CertificateDer<'static>> =
        rustls_pemfile::certs(&mut BufReader::new(&cert_pem[..]))
            .collect::<Result<_, _>>()
            .map_err(|e| format!("{}: not a PEM certificate: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{}: no certificate in it (PEM \"BEGIN CERTIFICATE\" expected)",
            cert.display()
        ));
    }
    let key_pem = read_pem(key, "key")?;
    let key: PrivateKeyDer<'static> =
        rustls_pemfile::private_key(&mut BufReader::new(&key_pem[..]))
            .map_err(|e| format!("{}: not a PEM private key: {e}", key.display()))?
            .ok_or_else(|| {
                format!(
                    "{}: no private key in it (PEM PKCS#8, PKCS#1 or SEC1 expected)",
                    key.display()
                )
            })?;
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
