//! From the SDK's errors to [`BackendError`]s: a kind that decides whether
//! a retry can help, and a one-line message that names the backend, the
//! request, the bucket and the object, with a hint where the usual cause is
//! known. Messages hold what the server said (its error code and message)
//! and never a secret: S3 signs requests, no secret travels in a URL or a
//! header, and servers do not echo secrets in their errors.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStreamError;
use cairn_backend::{BackendError, ErrorKind};

/// A request, for messages: `<location>: <verb> <key> in bucket <bucket>`.
pub(crate) struct Op<'a> {
    pub location: &'a str,
    pub bucket: &'a str,
    pub verb: &'a str,
    /// The object key, or "" for a request about the bucket.
    pub key: &'a str,
}

impl Op<'_> {
    fn describe(&self) -> String {
        if self.key.is_empty() {
            format!("{}: {} bucket {}", self.location, self.verb, self.bucket)
        } else {
            format!(
                "{}: {} {} in bucket {}",
                self.location, self.verb, self.key, self.bucket
            )
        }
    }

    pub fn error(&self, kind: ErrorKind, detail: impl std::fmt::Display) -> BackendError {
        BackendError::new(kind, format!("{}: {detail}", self.describe()))
    }

    /// A body that broke off while moving: worth retrying.
    pub fn transfer_error(&self, e: &ByteStreamError) -> BackendError {
        self.error(
            ErrorKind::Transient,
            format!("the transfer broke off: {}", chain(e)),
        )
    }

    /// Did the request fail because the bucket does not exist?
    pub fn is_missing_bucket<E: ProvideErrorMetadata>(
        &self,
        e: &SdkError<E, HttpResponse>,
    ) -> bool {
        code(e) == Some("NoSuchBucket")
    }

    pub fn sdk_error<E>(&self, e: &SdkError<E, HttpResponse>) -> BackendError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        match e {
            SdkError::ServiceError(_) | SdkError::ResponseError(_) => {
                let status = status(e);
                let code = code(e).filter(|c| !c.is_empty());
                let (kind, hint) = classify(status, code);
                let mut answer = match status {
                    Some(s) => format!("the server answered {s}"),
                    None => "the server's answer could not be read".to_string(),
                };
                if let Some(c) = code {
                    answer.push(' ');
                    answer.push_str(c);
                }
                if let Some(m) = e.message().map(str::trim).filter(|m| !m.is_empty()) {
                    let m: String = m.chars().take(200).collect();
                    answer.push_str(": ");
                    answer.push_str(&m);
                }
                if matches!(e, SdkError::ResponseError(_)) {
                    // A reply cut short: likely a broken connection.
                    let kind = if kind == ErrorKind::Permanent {
                        ErrorKind::Transient
                    } else {
                        kind
                    };
                    return self.error(kind, format!("{answer} ({})", chain(e)));
                }
                if status.is_some_and(|s| (200..300).contains(&s)) {
                    // A whole reply that the SDK cannot read: asking again
                    // gets the same.
                    return self.error(
                        ErrorKind::Permanent,
                        format!("{answer}, but the answer cannot be read ({})", chain(e)),
                    );
                }
                self.error(kind, format!("{answer}{hint}"))
            }
            SdkError::TimeoutError(_) => self.error(ErrorKind::Transient, "timed out"),
            _ => {
                // Dispatch and construction failures: no answer came.
                let text = chain(e);
                let lower = text.to_ascii_lowercase();
                if lower.contains("credentials") {
                    return self.error(
                        ErrorKind::Denied,
                        format!("{text} (no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile with AWS_PROFILE)"),
                    );
                }
                if lower.contains("certificate")
                    || lower.contains("unknownissuer")
                    || lower.contains("invalid peer")
                {
                    // An untrusted certificate stays untrusted on a retry.
                    return self.error(
                        ErrorKind::Permanent,
                        format!("{text} (a private CA? pass its certificate with --cacert)"),
                    );
                }
                let kind = match e {
                    SdkError::ConstructionFailure(_) => ErrorKind::Permanent,
                    _ => ErrorKind::Transient,
                };
                self.error(kind, text)
            }
        }
    }
}

/// An error and its sources, each once: "dispatch failure: io error:
/// client error (Connect): tcp connect error: Connection refused (os error
/// 111)".
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !text.is_empty() && !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// The HTTP status of the answer, if one came.
pub(crate) fn status<E>(e: &SdkError<E, HttpResponse>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

/// The S3 error code of the answer (`NoSuchKey`, `AccessDenied`, ...).
pub(crate) fn code<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> Option<&str> {
    e.code()
}

/// The kind of an S3 error answer, and a hint for the message.
pub(crate) fn classify(status: Option<u16>, code: Option<&str>) -> (ErrorKind, &'static str) {
    use ErrorKind::*;
    match code {
        Some("NoSuchKey" | "NotFound") => return (NotFound, ""),
        Some("NoSuchBucket") => {
            return (
                NotFound,
                " (the bucket does not exist; `init` creates it)",
            )
        }
        Some("InvalidAccessKeyId" | "NotSignedUp") => return (
            Denied,
            " (the server does not know this access key: check AWS_ACCESS_KEY_ID or the profile's credentials)",
        ),
        Some("SignatureDoesNotMatch") => return (
            Denied,
            " (wrong secret key: check AWS_SECRET_ACCESS_KEY or the profile's credentials)",
        ),
        Some("ExpiredToken" | "TokenRefreshRequired" | "InvalidToken") => {
            return (
                Denied,
                " (the session token is invalid or expired: renew the credentials)",
            )
        }
        Some("AccessDenied" | "AllAccessDisabled" | "AccountProblem") => {
            return (
                Denied,
                " (the credentials lack permission for this bucket or object)",
            )
        }
        Some("RequestTimeTooSkewed") => {
            return (
                Permanent,
                " (this machine's clock is off: S3 refuses signatures more than 15 minutes old)",
            )
        }
        Some("PreconditionFailed") => return (AlreadyExists, ""),
        Some(
            "QuotaExceeded"
            | "XMinioStorageFull"
            | "XMinioAdminBucketQuotaExceeded"
            | "InsufficientStorage"
            | "StorageFull",
        ) => return (NoSpace, " (the store or the bucket's quota is full)"),
        Some(
            "SlowDown"
            | "InternalError"
            | "ServiceUnavailable"
            | "RequestTimeout"
            | "OperationAborted"
            | "ConditionalRequestConflict",
        ) => return (Transient, ""),
        Some(
            "PermanentRedirect"
            | "AuthorizationHeaderMalformed"
            | "IllegalLocationConstraintException",
        ) => {
            return (
                Permanent,
                " (the bucket is in another region: set it with -o s3.region=...)",
            )
        }
        Some("BucketAlreadyExists") => {
            return (
                Denied,
                " (another account owns a bucket of that name; bucket names are global on AWS)",
            )
        }
        _ => {}
    }
    match status {
        Some(404) => (NotFound, ""),
        Some(401 | 403) => (
            Denied,
            " (wrong credentials, or no permission for this bucket or object)",
        ),
        Some(412) => (AlreadyExists, ""),
        Some(507) => (NoSpace, " (the store is full)"),
        Some(408 | 429) => (Transient, ""),
        Some(500..=599) => (Transient, ""),
        Some(301 | 307) => (
            Permanent,
            " (redirected: the bucket is in another region, set -o s3.region=...; or check the bucket-lookup style)",
        ),
        _ => (Permanent, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::{classify, Op};
    use aws_sdk_s3::config::http::HttpResponse;
    use aws_sdk_s3::error::{ConnectorError, SdkError};
    use aws_sdk_s3::operation::put_object::PutObjectError;
    use cairn_backend::ErrorKind::*;
    use std::io;

    fn put() -> Op<'static> {
        Op {
            location: "s3:http://127.0.0.1:9/b",
            bucket: "b",
            verb: "PUT",
            key: "data/00/00",
        }
    }

    fn kind_of(e: SdkError<PutObjectError, HttpResponse>) -> cairn_backend::ErrorKind {
        put().sdk_error(&e).kind
    }

    /// A request that got no answer (the server restarted under it) is
    /// worth sending again; one that could not be built, or whose
    /// credentials or certificate are wrong, is not.
    #[test]
    fn requests_without_an_answer() {
        let io_error = |k: io::ErrorKind, m: &str| {
            SdkError::dispatch_failure(ConnectorError::io(Box::new(io::Error::new(k, m))))
        };
        let reset = io_error(
            io::ErrorKind::ConnectionReset,
            "connection error: Connection reset by peer (os error 104)",
        );
        let e = put().sdk_error(&reset);
        assert_eq!(e.kind, Transient, "{}", e.message);
        assert!(
            e.message.contains("Connection reset by peer"),
            "{}",
            e.message
        );
        assert!(
            e.message.contains("PUT data/00/00 in bucket b"),
            "{}",
            e.message
        );
        for e in [
            io_error(io::ErrorKind::ConnectionRefused, "tcp connect error"),
            io_error(io::ErrorKind::BrokenPipe, "broken pipe"),
            SdkError::dispatch_failure(ConnectorError::other(
                "connection closed before message completed".into(),
                None,
            )),
            SdkError::dispatch_failure(ConnectorError::timeout("read timed out".into())),
            SdkError::timeout_error("operation timed out"),
        ] {
            assert_eq!(kind_of(e), Transient);
        }
        assert_eq!(
            kind_of(SdkError::construction_failure("no bucket given")),
            Permanent
        );
        assert_eq!(
            kind_of(SdkError::dispatch_failure(ConnectorError::other(
                "invalid peer certificate: UnknownIssuer".into(),
                None,
            ))),
            Permanent
        );
        assert_eq!(
            kind_of(SdkError::construction_failure(
                "failed to load credentials from the provider chain"
            )),
            Denied
        );
    }

    #[test]
    fn kinds() {
        assert_eq!(classify(Some(404), None).0, NotFound);
        assert_eq!(classify(Some(404), Some("NoSuchBucket")).0, NotFound);
        assert_eq!(classify(Some(403), None).0, Denied);
        assert_eq!(classify(Some(403), Some("SignatureDoesNotMatch")).0, Denied);
        assert_eq!(classify(Some(403), Some("InvalidAccessKeyId")).0, Denied);
        assert_eq!(classify(Some(403), Some("NotSignedUp")).0, Denied);
        assert_eq!(classify(Some(403), Some("QuotaExceeded")).0, NoSpace);
        assert_eq!(classify(Some(507), None).0, NoSpace);
        assert_eq!(classify(Some(503), Some("SlowDown")).0, Transient);
        assert_eq!(classify(Some(500), None).0, Transient);
        assert_eq!(classify(Some(429), None).0, Transient);
        assert_eq!(classify(Some(412), None).0, AlreadyExists);
        assert_eq!(classify(Some(400), Some("InvalidArgument")).0, Permanent);
        assert_eq!(classify(Some(301), None).0, Permanent);
    }
}
