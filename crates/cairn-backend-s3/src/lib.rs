//! The `s3:` backend: a repository in an S3 bucket — AWS S3, MinIO, Ceph
//! RGW, Garage, any server that speaks the S3 API — through the AWS SDK for
//! Rust over rustls.
//!
//! # Layout
//! The same as a local repository, below the key prefix (restic's `default`
//! layout, which restic uses on S3 too):
//! `<prefix>/config`, `<prefix>/keys/<name>`, `<prefix>/locks/<name>`,
//! `<prefix>/snapshots/<name>`, `<prefix>/index/<name>` and
//! `<prefix>/data/<first two hex chars>/<name>`. A local repository mirrored
//! into a bucket (`rclone sync`, `mc mirror`) opens as `s3:`, and a bucket
//! mirrored to a disk opens as a local repository.
//!
//! # Synchronous calls over an async SDK
//! The SDK is async; [`Backend`] is synchronous. Each backend owns one
//! multi-thread tokio runtime with two worker threads, which drive the
//! connections (hyper spawns a task per connection). Every method runs its
//! requests with `Runtime::block_on` on the caller's thread.
//!
//! **Rule: never call a method of this backend from inside an async
//! context** (a tokio task, or a future that another runtime is running):
//! tokio refuses to block a thread that drives a runtime, and panics.
//! cairn calls backends from plain threads (the saver's uploaders, the
//! restorer's readers, the main thread), where `block_on` is safe: the
//! caller blocks only itself, any number of threads may `block_on` the one
//! runtime at once (`Runtime` is `Sync`), and nothing the awaited futures
//! wait for ever needs the blocked caller. The runtime is shut down in the
//! background when the backend is dropped, so dropping it anywhere is safe.
//!
//! # Contracts (see [`Backend`])
//! - **No overwrite.** S3 has no general "create if absent": `write` asks
//!   `HEAD` first (`AlreadyExists` when the object is there), then sends
//!   the `PUT` with `If-None-Match: *`, which AWS, MinIO and recent Ceph
//!   honour (`412` → `AlreadyExists`); a server that answers `501` to the
//!   condition is remembered and asked without it from then on. On a server
//!   that ignores the condition, two writers of one name between the `HEAD`
//!   and the `PUT` both succeed, and the later object replaces the earlier.
//!   That race is harmless: every repository file but `config` is named by
//!   the SHA-256 of its bytes (the same name holds the same bytes), and
//!   `config` is written once, by `init`.
//! - **Atomic and durable.** A `PUT` is atomic on S3: an object is visible
//!   whole or not at all, and S3 answers only once it is stored durably.
//!   Objects from [`MULTIPART_THRESHOLD`] on are uploaded as a multipart
//!   upload in parts of [`PART_SIZE`] (several parts in flight), invisible
//!   until completed and aborted when a part fails. An upload that a crash
//!   left unfinished is aborted by [`Backend::remove_stale_temporaries`]
//!   (prune) once no part has been added to it for the grace period.
//! - **Streamed packs** ([`Backend::data_writer`]): a pack's name (its
//!   SHA-256) is known only at the end, and an S3 object needs its key when
//!   the upload starts, so the writer keeps the bytes in memory up to
//!   [`MULTIPART_THRESHOLD`] (a default pack is 16 MiB) and beyond that in
//!   an unlinked temporary file (nothing is left behind by a crash), and
//!   uploads on commit, from the file part by part.
//! - **Storage class** (`-o s3.storage-class`) applies to packs only, as in
//!   restic: the small files (index, snapshots, keys, locks, config) are
//!   read often and stay in the standard class.
//! - `read_range` is a ranged `GET`; the answer must hold exactly the bytes
//!   asked for (a range past the end is an error, never a short read).
//!   `stat` is a `HEAD`. `remove` is `DeleteObject`, which succeeds for a
//!   missing object. `list` pages through `ListObjectsV2` (1,000 keys a
//!   page) with continuation tokens, below `data/` for packs; keys that do
//!   not fit the layout are skipped.
//! - `create` creates the bucket when it does not exist (as `restic init`
//!   does); a bucket that exists and is ours is fine.
//! - Checksums: the SDK's flexible checksums are sent and checked only
//!   where S3 requires them (many S3-compatible servers reject the
//!   `aws-chunked` uploads they need); a `PUT` from memory is still
//!   protected in transit, since SigV4 signs the SHA-256 of its body, and
//!   cairn checks the SHA-256 of every file it reads.
//!
//! # Errors and retries
//! `404`/`NoSuchKey`/`NoSuchBucket` → `NotFound`; `401`, `403`
//! (`AccessDenied`, `InvalidAccessKeyId`, `SignatureDoesNotMatch`, expired
//! tokens) → `Denied`; `507` and quota errors → `NoSpace`; timeouts,
//! connection failures, `5xx`, `408`, `429` and `SlowDown` → `Transient`;
//! the rest → `Permanent`. Each message names the backend (endpoint,
//! bucket, prefix), the request and the object, and never a secret. The
//! SDK's own retries are off: cairn wraps every network backend in
//! [`cairn_backend::RetryBackend`], which also uploads a streamed pack
//! again when its `PUT` fails (the repeat's `HEAD` finds a pack whose
//! first `PUT` landed: `AlreadyExists`, same name, same bytes). Connecting times out after
//! [`CONNECT_TIMEOUT`], so an unreachable endpoint fails fast; a transfer
//! that stops moving bytes fails through the SDK's stalled-stream
//! protection (20 s without progress); and a request is abandoned after
//! [`REQUEST_TIMEOUT`] plus the time its bytes take at [`MIN_RATE`] (a
//! server that takes a request and never answers).
//!
//! # Credentials and region
//! Credentials come from [`S3Config::credentials`] when set, else from the
//! SDK's standard chain: `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` /
//! `AWS_SESSION_TOKEN`, the shared `config` and `credentials` files with
//! `AWS_PROFILE`, `credential_process`, web identity tokens, the ECS and
//! EC2 instance metadata services. The region: [`S3Config::region`], else
//! `AWS_DEFAULT_REGION`, `AWS_REGION`, the profile's region, else
//! `us-east-1`.

mod client;
mod error;
mod upload;

pub use upload::{MULTIPART_THRESHOLD, PART_SIZE};

use aws_sdk_s3::Client;
use cairn_backend::{valid_name, Backend, BackendError, ErrorKind, FileInfo, FileKind, Result};
use error::Op;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Runtime;

/// Connecting to the endpoint gives up after this long.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Requests in flight when [`S3Config::connections`] is 0.
pub const DEFAULT_CONNECTIONS: usize = 5;

/// A request may take this long, plus the time to move its bytes at
/// [`MIN_RATE`]; then it is abandoned as `Transient`. (The SDK's stalled-
/// stream protection catches a transfer that stops; this catches a server
/// that takes a request and never answers.)
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Bytes per second below which a transfer is given up (see [`REQUEST_TIMEOUT`]).
pub const MIN_RATE: u64 = 64 << 10;

/// Bytes assumed for a read whose size is not known in advance.
const UNKNOWN_SIZE: u64 = 64 << 20;

/// How long a request moving `bytes` may take.
pub(crate) fn request_timeout(bytes: u64) -> Duration {
    REQUEST_TIMEOUT + Duration::from_secs(bytes / MIN_RATE)
}

/// Where the repository is and how to reach it. The location registry
/// fills it from `s3:` locations and `-o s3.*` options.
#[derive(Clone, Debug, Default)]
pub struct S3Config {
    /// Endpoint URL with scheme, e.g. "http://127.0.0.1:9000" or
    /// "https://s3.amazonaws.com". None: AWS's default endpoint for the region.
    pub endpoint: Option<String>,
    pub bucket: String,
    /// Key prefix inside the bucket without leading or trailing '/', "" for the bucket root.
    pub prefix: String,
    /// -o s3.region; else AWS_DEFAULT_REGION / AWS_REGION / the profile's region; else "us-east-1".
    pub region: Option<String>,
    /// -o s3.storage-class: applied to data packs only (like restic).
    pub storage_class: Option<String>,
    /// -o s3.bucket-lookup: Some(true) path-style, Some(false) virtual-host
    /// style, None = auto (path-style for a custom endpoint that is not
    /// amazonaws.com, virtual-host for AWS).
    pub path_style: Option<bool>,
    /// Requests in flight (default 5 when 0).
    pub connections: usize,
    /// Extra CA certificates (PEM files) to trust for https endpoints (`--cacert`).
    pub cacert: Vec<PathBuf>,
    /// Credentials to use instead of the standard AWS chain (environment,
    /// profiles, instance metadata). None: the standard chain.
    pub credentials: Option<S3Credentials>,
}

/// An access key, its secret and maybe a session token. `Debug` shows the
/// access key id only.
#[derive(Clone, Default)]
pub struct S3Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"***")
            .field("session_token", &self.session_token.as_ref().map(|_| "***"))
            .finish()
    }
}

/// A repository in an S3 bucket; see the module documentation.
pub struct S3Backend {
    inner: Arc<Inner>,
}

/// What the backend and its data writers share.
pub(crate) struct Inner {
    /// `Some` until dropped; see [`Inner::drop`].
    runtime: Option<Runtime>,
    client: Client,
    bucket: String,
    /// "" or ends with '/'.
    key_prefix: String,
    storage_class: Option<aws_sdk_s3::types::StorageClass>,
    connections: usize,
    location: String,
    /// Cleared when the server answered `501 Not Implemented` to `If-None-Match`.
    conditional_put: AtomicBool,
}

impl S3Backend {
    /// A backend for `cfg`. Checks the configuration and builds the client;
    /// nothing is sent yet (an unreachable endpoint shows at the first
    /// request, within [`CONNECT_TIMEOUT`]).
    pub fn open(cfg: S3Config) -> Result<S3Backend> {
        let built = client::build(&cfg)?;
        let mut key_prefix = cfg.prefix.trim_matches('/').to_string();
        if !key_prefix.is_empty() {
            key_prefix.push('/');
        }
        let inner = Inner {
            runtime: Some(built.runtime),
            client: built.client,
            bucket: cfg.bucket.clone(),
            key_prefix,
            storage_class: cfg
                .storage_class
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(aws_sdk_s3::types::StorageClass::from),
            connections: if cfg.connections == 0 {
                DEFAULT_CONNECTIONS
            } else {
                cfg.connections
            },
            location: built.location,
            conditional_put: AtomicBool::new(true),
        };
        Ok(S3Backend {
            inner: Arc::new(inner),
        })
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.inner.bucket
    }

    /// The region requests are signed for (and buckets created in).
    pub fn region(&self) -> String {
        self.inner
            .client
            .config()
            .region()
            .map(|r| r.as_ref().to_string())
            .unwrap_or_default()
    }

    /// The object key of a file of `kind` named `name` (not checked).
    pub fn key_of(&self, kind: FileKind, name: &str) -> String {
        self.inner.key(kind, name)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // `Runtime`'s own drop blocks, which panics inside an async
        // context; shutting down in the background never does.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Inner {
    /// Runs `fut` to completion on the caller's thread (see the module
    /// documentation for why that is safe, and the one rule).
    pub(crate) fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.runtime
            .as_ref()
            .expect("the runtime lives as long as the backend")
            .block_on(fut)
    }

    /// Runs `fut` (a request moving `bytes`), giving up after
    /// [`request_timeout`]: the outer `Err` is the timeout.
    pub(crate) async fn timed<F: Future>(
        &self,
        op: &Op<'_>,
        bytes: u64,
        fut: F,
    ) -> Result<F::Output> {
        let limit = request_timeout(bytes);
        tokio::time::timeout(limit, fut)
            .await
            .map_err(|_| self.timeout_error(op, limit))
    }

    pub(crate) fn timeout_error(&self, op: &Op<'_>, limit: Duration) -> BackendError {
        op.error(
            ErrorKind::Transient,
            format!("no answer within {} s", limit.as_secs()),
        )
    }

    pub(crate) fn key(&self, kind: FileKind, name: &str) -> String {
        let p = &self.key_prefix;
        match kind {
            FileKind::Config => format!("{p}config"),
            FileKind::Data => format!("{p}data/{}/{name}", &name[..2.min(name.len())]),
            k => format!("{p}{}/{name}", k.dir()),
        }
    }

    /// The key prefix below which the files of `kind` are.
    fn dir_prefix(&self, kind: FileKind) -> String {
        format!("{}{}/", self.key_prefix, kind.dir())
    }

    /// The name of a listed key below [`Inner::dir_prefix`], or None when
    /// the key does not fit the layout.
    fn name_in_listing(kind: FileKind, rest: &str) -> Option<&str> {
        let name = match kind {
            FileKind::Data => {
                let (shard, name) = rest.split_once('/')?;
                if shard.len() != 2 || !name.starts_with(shard) {
                    return None;
                }
                name
            }
            _ => rest,
        };
        valid_name(kind, name).then_some(name)
    }

    /// The kind and name of the repository file at `key`, or None for a
    /// key outside the repository's layout.
    pub(crate) fn parse_key<'k>(&self, key: &'k str) -> Option<(FileKind, &'k str)> {
        let rest = key.strip_prefix(self.key_prefix.as_str())?;
        if rest == "config" {
            return Some((FileKind::Config, rest));
        }
        let (dir, rest) = rest.split_once('/')?;
        let kind = FileKind::ALL
            .into_iter()
            .find(|k| *k != FileKind::Config && k.dir() == dir)?;
        Some((kind, Self::name_in_listing(kind, rest)?))
    }

    pub(crate) fn op<'a>(&'a self, verb: &'a str, key: &'a str) -> Op<'a> {
        Op {
            location: &self.location,
            bucket: &self.bucket,
            verb,
            key,
        }
    }

    pub(crate) fn check(kind: FileKind, name: &str) -> Result<()> {
        if valid_name(kind, name) {
            Ok(())
        } else {
            Err(BackendError::new(
                ErrorKind::Permanent,
                format!("invalid {kind} file name {name:?}"),
            ))
        }
    }

    /// The size of the object at `key`, or None when there is none.
    pub(crate) async fn head(&self, key: &str) -> Result<Option<u64>> {
        let op = self.op("HEAD", key);
        let req = self.client.head_object().bucket(&self.bucket).key(key);
        match self.timed(&op, 0, req.send()).await? {
            Ok(out) => Ok(Some(out.content_length().unwrap_or(0).max(0) as u64)),
            Err(e) => {
                let err = op.sdk_error(&e);
                if err.kind == ErrorKind::NotFound && !op.is_missing_bucket(&e) {
                    Ok(None)
                } else {
                    Err(err)
                }
            }
        }
    }

    async fn list_keys(&self, prefix: &str) -> Result<Vec<(String, u64)>> {
        let op = self.op("ListObjectsV2", prefix);
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let req = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_continuation_token(token.take());
            let page = self
                .timed(&op, 0, req.send())
                .await?
                .map_err(|e| op.sdk_error(&e))?;
            for obj in page.contents() {
                if let Some(key) = obj.key() {
                    out.push((key.to_string(), obj.size().unwrap_or(0).max(0) as u64));
                }
            }
            if page.is_truncated() != Some(true) {
                return Ok(out);
            }
            match page.next_continuation_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => {
                    return Err(op.error(
                        ErrorKind::Permanent,
                        "the server said the listing goes on but gave no continuation token",
                    ))
                }
            }
        }
    }

    async fn read_range(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        length: Option<u64>,
    ) -> Result<Vec<u8>> {
        let key = self.key(kind, name);
        if length == Some(0) {
            let size = self.stat_key(&key).await?;
            if offset > size {
                return Err(beyond_end(&self.op("HEAD", &key), offset, 0, size));
            }
            return Ok(Vec::new());
        }
        let range = match length {
            None if offset == 0 => None,
            None => Some(format!("bytes={offset}-")),
            Some(n) => Some(format!("bytes={offset}-{}", offset.saturating_add(n - 1))),
        };
        let verb = match &range {
            Some(r) => format!("GET ({r})"),
            None => "GET".to_string(),
        };
        let op = self.op(&verb, &key);
        let got = self
            .timed(
                &op,
                length.unwrap_or(UNKNOWN_SIZE),
                self.get(&op, &key, range.clone()),
            )
            .await??;
        let Some((mut buf, partial)) = got else {
            // 416: from exactly the end to the end is an empty read.
            let size = self.stat_key(&key).await?;
            if length.is_none() && offset == size {
                return Ok(Vec::new());
            }
            return Err(beyond_end(&op, offset, length.unwrap_or(0), size));
        };
        // A server may ignore Range and send the whole object.
        if range.is_some() && !partial {
            let size = buf.len() as u64;
            let end = length.map_or(Some(size), |n| offset.checked_add(n));
            match end {
                Some(end) if offset <= size && end <= size => {
                    buf.truncate(end as usize);
                    buf.drain(..offset as usize);
                }
                _ => return Err(beyond_end(&op, offset, length.unwrap_or(0), size)),
            }
        }
        if let Some(n) = length {
            if buf.len() as u64 != n {
                return Err(op.error(
                    ErrorKind::Permanent,
                    format!(
                        "got {} bytes of {n}: the range is beyond the end of the file (truncated?)",
                        buf.len()
                    ),
                ));
            }
        }
        Ok(buf)
    }

    /// A `GET` and its whole body, and whether the server answered with a
    /// part (`Content-Range`); None for `416 Range Not Satisfiable`.
    async fn get(
        &self,
        op: &Op<'_>,
        key: &str,
        range: Option<String>,
    ) -> Result<Option<(Vec<u8>, bool)>> {
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_range(range);
        let out = match req.send().await {
            Ok(out) => out,
            Err(e) if error::status(&e) == Some(416) => return Ok(None),
            Err(e) => return Err(op.sdk_error(&e)),
        };
        let partial = out.content_range().is_some();
        let expected = out.content_length().unwrap_or(0).max(0) as u64;
        let mut body = out.body;
        let mut buf = Vec::with_capacity(expected.min(1 << 30) as usize);
        while let Some(chunk) = body.try_next().await.map_err(|e| op.transfer_error(&e))? {
            buf.extend_from_slice(&chunk);
        }
        if buf.len() as u64 != expected {
            return Err(op.error(
                ErrorKind::Transient,
                format!("the answer ended after {} of {expected} bytes", buf.len()),
            ));
        }
        Ok(Some((buf, partial)))
    }

    async fn stat_key(&self, key: &str) -> Result<u64> {
        self.head(key).await?.ok_or_else(|| {
            self.op("HEAD", key)
                .error(ErrorKind::NotFound, "no such object")
        })
    }

    async fn create(&self) -> Result<()> {
        let op = self.op("HeadBucket", "");
        let req = self.client.head_bucket().bucket(&self.bucket);
        let e = match self.timed(&op, 0, req.send()).await? {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        if error::status(&e) != Some(404) {
            return Err(op.sdk_error(&e));
        }
        let op = self.op("CreateBucket", "");
        let mut req = self.client.create_bucket().bucket(&self.bucket);
        let region = self
            .client
            .config()
            .region()
            .map(|r| r.as_ref().to_string());
        if let Some(region) = region.filter(|r| r != "us-east-1") {
            req = req.create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(
                        region.as_str(),
                    ))
                    .build(),
            );
        }
        match self.timed(&op, 0, req.send()).await? {
            Ok(_) => Ok(()),
            Err(e) if error::code(&e) == Some("BucketAlreadyOwnedByYou") => Ok(()),
            Err(e) => Err(op.sdk_error(&e)),
        }
    }

    async fn remove(&self, key: &str) -> Result<()> {
        let op = self.op("DELETE", key);
        let req = self.client.delete_object().bucket(&self.bucket).key(key);
        match self.timed(&op, 0, req.send()).await? {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = op.sdk_error(&e);
                // Already gone (some servers answer 404 where S3 answers 204).
                if err.kind == ErrorKind::NotFound && !op.is_missing_bucket(&e) {
                    Ok(())
                } else {
                    Err(err)
                }
            }
        }
    }
}

fn beyond_end(op: &Op<'_>, offset: u64, length: u64, size: u64) -> BackendError {
    op.error(
        ErrorKind::Permanent,
        format!("range {offset}+{length} is beyond the end of the file ({size} bytes; truncated?)"),
    )
}

impl Backend for S3Backend {
    fn location(&self) -> String {
        self.inner.location.clone()
    }

    fn write_concurrency(&self) -> usize {
        self.inner.connections
    }

    fn create(&self) -> Result<()> {
        self.inner.block_on(self.inner.create())
    }

    fn list(&self, kind: FileKind) -> Result<Vec<FileInfo>> {
        let inner = &self.inner;
        if kind == FileKind::Config {
            let key = inner.key(kind, "config");
            return Ok(inner
                .block_on(inner.head(&key))?
                .map(|size| FileInfo {
                    name: "config".into(),
                    size,
                })
                .into_iter()
                .collect());
        }
        let prefix = inner.dir_prefix(kind);
        let keys = inner.block_on(inner.list_keys(&prefix))?;
        Ok(keys
            .into_iter()
            .filter_map(|(key, size)| {
                let name = Inner::name_in_listing(kind, &key[prefix.len()..])?;
                Some(FileInfo {
                    name: name.to_string(),
                    size,
                })
            })
            .collect())
    }

    fn stat(&self, kind: FileKind, name: &str) -> Result<u64> {
        Inner::check(kind, name)?;
        let key = self.inner.key(kind, name);
        self.inner.block_on(self.inner.stat_key(&key))
    }

    fn read_range(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        length: Option<u64>,
    ) -> Result<Vec<u8>> {
        Inner::check(kind, name)?;
        self.inner
            .block_on(self.inner.read_range(kind, name, offset, length))
    }

    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        Inner::check(kind, name)?;
        let source = upload::Source::Memory(bytes::Bytes::copy_from_slice(data));
        self.inner.block_on(self.inner.upload(kind, name, source))
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        Inner::check(kind, name)?;
        let key = self.inner.key(kind, name);
        self.inner.block_on(self.inner.remove(&key))
    }

    fn data_writer(&self) -> Result<Option<Box<dyn cairn_backend::DataWriter>>> {
        Ok(Some(Box::new(upload::S3DataWriter::new(Arc::clone(
            &self.inner,
        )))))
    }

    fn remove_stale_temporaries(&self, older_than: Duration) -> Result<usize> {
        self.inner
            .block_on(self.inner.abort_stale_uploads(older_than))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(prefix: &str) -> S3Backend {
        S3Backend::open(S3Config {
            endpoint: Some("http://127.0.0.1:1".into()),
            bucket: "b".into(),
            prefix: prefix.into(),
            credentials: Some(S3Credentials {
                access_key_id: "AK".into(),
                secret_access_key: "very-secret".into(),
                session_token: None,
            }),
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn keys_follow_the_local_layout() {
        let n = "ab".repeat(32);
        let b = backend("");
        assert_eq!(b.key_of(FileKind::Config, "config"), "config");
        assert_eq!(b.key_of(FileKind::Key, &n), format!("keys/{n}"));
        assert_eq!(b.key_of(FileKind::Data, &n), format!("data/ab/{n}"));
        let b = backend("/a/b/");
        assert_eq!(b.key_of(FileKind::Config, "config"), "a/b/config");
        assert_eq!(
            b.key_of(FileKind::Snapshot, &n),
            format!("a/b/snapshots/{n}")
        );
        assert_eq!(b.key_of(FileKind::Data, &n), format!("a/b/data/ab/{n}"));
        assert_eq!(b.inner.dir_prefix(FileKind::Data), "a/b/data/");
    }

    #[test]
    fn listings_skip_keys_outside_the_layout() {
        let n = "ab".repeat(32);
        let f = Inner::name_in_listing;
        assert_eq!(f(FileKind::Data, &format!("ab/{n}")), Some(n.as_str()));
        assert_eq!(f(FileKind::Data, &format!("cd/{n}")), None);
        assert_eq!(f(FileKind::Data, &n), None);
        assert_eq!(f(FileKind::Data, &format!("ab/x/{n}")), None);
        assert_eq!(f(FileKind::Index, &n), Some(n.as_str()));
        assert_eq!(f(FileKind::Index, &format!("{n}.tmp")), None);
        assert_eq!(f(FileKind::Index, &format!("x/{n}")), None);
    }

    #[test]
    fn credentials_debug_hides_the_secret() {
        let b = backend("");
        let c = S3Credentials {
            access_key_id: "AK".into(),
            secret_access_key: "very-secret".into(),
            session_token: Some("tok-secret".into()),
        };
        let d = format!("{c:?}");
        assert!(d.contains("AK") && !d.contains("secret\"") && !d.contains("very-secret"));
        assert!(!d.contains("tok-secret"));
        assert!(!b.location().contains("secret"));
    }

    #[test]
    fn connection_refused_is_transient_and_named() {
        let b = backend("p");
        let e = b.stat(FileKind::Config, "config").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Transient, "{}", e.message);
        assert!(
            e.message.contains("s3:http://127.0.0.1:1/b/p"),
            "{}",
            e.message
        );
        assert!(e.message.contains("p/config"), "{}", e.message);
    }
}
