//! Building the SDK client from an [`S3Config`]: the runtime, the HTTP
//! client (hyper over rustls with ring; the system's roots plus
//! `--cacert`), the region, the credentials, the endpoint and the bucket
//! lookup style, and the location string shown to users.

use crate::{S3Config, CONNECT_TIMEOUT};
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::config::{
    Credentials, RequestChecksumCalculation, ResponseChecksumValidation, SharedHttpClient,
};
use aws_sdk_s3::Client;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
use cairn_backend::{BackendError, ErrorKind, Result};
use tokio::runtime::Runtime;

/// Region when nothing names one (what the AWS tools assume).
pub const DEFAULT_REGION: &str = "us-east-1";

pub(crate) struct Built {
    pub runtime: Runtime,
    pub client: Client,
    pub location: String,
}

fn config_error(msg: impl Into<String>) -> BackendError {
    BackendError::new(ErrorKind::Permanent, msg)
}

/// An endpoint split into what the SDK needs.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// `scheme://host[:port]`, or None for AWS's endpoint of the region.
    pub url: Option<String>,
    /// True for AWS (no endpoint, or a host under amazonaws.com).
    pub aws: bool,
}

/// Check and normalise the configured endpoint. The generic AWS endpoint
/// (`s3.amazonaws.com`) becomes None, so the SDK picks the region's own.
pub(crate) fn parse_endpoint(endpoint: Option<&str>) -> Result<Endpoint> {
    let Some(raw) = endpoint.map(str::trim).filter(|e| !e.is_empty()) else {
        return Ok(Endpoint {
            url: None,
            aws: true,
        });
    };
    let bad = |why: &str| config_error(format!("invalid S3 endpoint {:?}: {why}", redact(raw)));
    let (scheme, rest) = raw
        .split_once("://")
        .ok_or_else(|| bad("it needs a scheme, http:// or https://"))?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(bad("the scheme must be http or https"));
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err(bad(
            "credentials do not belong in the URL: use AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        ));
    }
    if authority.is_empty() {
        return Err(bad("no host"));
    }
    if !path.trim_matches('/').is_empty() || authority.contains(['?', '#']) {
        return Err(bad(
            "only scheme, host and port belong to the endpoint (the bucket and prefix follow it in the location)",
        ));
    }
    let host = authority
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(authority, |(h, _)| h)
        .to_ascii_lowercase();
    let aws = host == "amazonaws.com" || host.ends_with(".amazonaws.com");
    if host == "s3.amazonaws.com" {
        return Ok(Endpoint { url: None, aws });
    }
    Ok(Endpoint {
        url: Some(format!("{scheme}://{authority}")),
        aws,
    })
}

/// An endpoint for messages, with anything before an '@' hidden.
fn redact(raw: &str) -> String {
    match (raw.find("://"), raw.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &raw[..s + 3], &raw[at..]),
        _ => raw.to_string(),
    }
}

/// `s3:<endpoint>/<bucket>[/<prefix>]`, as the user wrote it.
pub(crate) fn location(endpoint: &Endpoint, bucket: &str, prefix: &str) -> String {
    let host = endpoint.url.as_deref().unwrap_or("s3.amazonaws.com");
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        format!("s3:{host}/{bucket}")
    } else {
        format!("s3:{host}/{bucket}/{prefix}")
    }
}

/// Path-style (`host/bucket/key`) or virtual-host style (`bucket.host/key`).
pub(crate) fn path_style(cfg: Option<bool>, endpoint: &Endpoint) -> bool {
    cfg.unwrap_or(!endpoint.aws)
}

fn env_region() -> Option<String> {
    ["AWS_DEFAULT_REGION", "AWS_REGION"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .map(|r| r.trim().to_string())
        .find(|r| !r.is_empty())
}

/// The option, the environment, the profile, or [`DEFAULT_REGION`].
async fn resolve_region(cfg: &S3Config) -> String {
    if let Some(r) = cfg
        .region
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
    {
        return r.to_string();
    }
    if let Some(r) = env_region() {
        return r;
    }
    use aws_config::meta::region::ProvideRegion;
    let profile = aws_config::profile::ProfileFileRegionProvider::new();
    match profile.region().await {
        Some(r) if !r.as_ref().is_empty() => r.as_ref().to_string(),
        _ => DEFAULT_REGION.to_string(),
    }
}

/// The system's roots plus the `--cacert` files, each checked here (the
/// HTTP client would panic on a bad one at the first connection).
fn trust_store(cacert: &[std::path::PathBuf]) -> Result<TrustStore> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut store = TrustStore::default();
    for path in cacert {
        let what = || format!("--cacert {}", path.display());
        let pem = std::fs::read(path).map_err(|e| config_error(format!("{}: {e}", what())))?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| config_error(format!("{}: not PEM certificates: {e:?}", what())))?;
        if certs.is_empty() {
            return Err(config_error(format!("{}: no certificate in it", what())));
        }
        let mut roots = rustls::RootCertStore::empty();
        for c in certs {
            roots
                .add(c)
                .map_err(|e| config_error(format!("{}: unusable certificate: {e}", what())))?;
        }
        store = store.with_pem_certificate(pem);
    }
    Ok(store)
}

fn http_client(cfg: &S3Config) -> Result<SharedHttpClient> {
    let ctx = TlsContext::builder()
        .with_trust_store(trust_store(&cfg.cacert)?)
        .build()
        .map_err(|e| config_error(format!("setting up TLS: {e}")))?;
    Ok(aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .tls_context(ctx)
        .build_https())
}

pub(crate) fn build(cfg: &S3Config) -> Result<Built> {
    if cfg.bucket.is_empty() {
        return Err(config_error("no S3 bucket given"));
    }
    if cfg.bucket.contains('/') {
        return Err(config_error(format!(
            "invalid S3 bucket name {:?}: no '/' allowed",
            cfg.bucket
        )));
    }
    let endpoint = parse_endpoint(cfg.endpoint.as_deref())?;
    let location = location(&endpoint, &cfg.bucket, &cfg.prefix);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("cairn-s3")
        .enable_all()
        .build()
        .map_err(|e| config_error(format!("{location}: starting the I/O runtime: {e}")))?;
    let http = http_client(cfg)?;
    let region = runtime.block_on(resolve_region(cfg));
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region))
        .http_client(http)
        .retry_config(RetryConfig::disabled())
        .timeout_config(timeouts);
    if let Some(c) = &cfg.credentials {
        loader = loader.credentials_provider(Credentials::new(
            &c.access_key_id,
            &c.secret_access_key,
            c.session_token.clone(),
            None,
            "cairn",
        ));
    }
    let shared = runtime.block_on(loader.load());
    let mut s3 = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(path_style(cfg.path_style, &endpoint))
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
    if let Some(url) = &endpoint.url {
        s3 = s3.endpoint_url(url);
    }
    Ok(Built {
        runtime,
        client: Client::from_conf(s3.build()),
        location,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let e = parse_endpoint(Some("http://127.0.0.1:9000")).unwrap();
        assert_eq!(e.url.as_deref(), Some("http://127.0.0.1:9000"));
        assert!(!e.aws);
        assert!(path_style(None, &e));
        assert!(!path_style(Some(false), &e));
        let e = parse_endpoint(Some("HTTPS://minio.example:9000/")).unwrap();
        assert_eq!(e.url.as_deref(), Some("https://minio.example:9000"));
        let e = parse_endpoint(Some("https://s3.amazonaws.com")).unwrap();
        assert_eq!(
            e,
            Endpoint {
                url: None,
                aws: true
            }
        );
        assert!(!path_style(None, &e));
        let e = parse_endpoint(Some("https://s3.eu-west-1.amazonaws.com")).unwrap();
        assert!(e.aws && e.url.is_some());
        assert_eq!(parse_endpoint(None).unwrap().url, None);
        assert!(parse_endpoint(Some("127.0.0.1:9000")).is_err());
        assert!(parse_endpoint(Some("ftp://h")).is_err());
        assert!(parse_endpoint(Some("http://h/bucket")).is_err());
        let err = parse_endpoint(Some("http://ak:secret@h")).unwrap_err();
        assert!(!err.message.contains("secret"), "{}", err.message);
    }

    #[test]
    fn locations() {
        let e = parse_endpoint(Some("http://127.0.0.1:9000")).unwrap();
        assert_eq!(location(&e, "b", "a/b"), "s3:http://127.0.0.1:9000/b/a/b");
        assert_eq!(location(&e, "b", ""), "s3:http://127.0.0.1:9000/b");
        let aws = parse_endpoint(None).unwrap();
        assert_eq!(location(&aws, "b", "p"), "s3:s3.amazonaws.com/b/p");
    }

    #[test]
    fn bad_cacert_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ca.pem");
        std::fs::write(&p, "not a certificate").unwrap();
        assert!(trust_store(std::slice::from_ref(&p)).is_err());
        std::fs::write(
            &p,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        assert!(trust_store(std::slice::from_ref(&p)).is_err());
        assert!(trust_store(&[dir.path().join("missing.pem")]).is_err());
    }
}
