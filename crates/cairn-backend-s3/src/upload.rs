//! Uploads: one `PUT` for a small object, a multipart upload for a large
//! one, the data writer that buffers a pack until its name is known, and
//! the removal of multipart uploads that a crash left unfinished.
//!
//! Every upload asks `HEAD` first and never replaces an object (see the
//! crate documentation for the `If-None-Match` condition and the race it
//! leaves on servers that ignore it). A multipart upload sends up to
//! `connections` parts at once, completes only when every part is stored,
//! and is aborted when anything fails, so no part outlives a failed write
//! (and if even the abort fails, prune's [`Inner::abort_stale_uploads`]
//! finds the upload later).

use crate::error::{self, Op};
use crate::{request_timeout, Inner};
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, StorageClass};
use bytes::Bytes;
use cairn_backend::{BackendError, DataWriter, ErrorKind, FileKind, Result};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::task::JoinSet;

/// Size of the parts of a multipart upload (larger for objects that would
/// need more than S3's 10,000 parts).
pub const PART_SIZE: usize = 16 << 20;

/// Objects of this size and larger are uploaded in parts. A default pack
/// (16 MiB and its header) stays below it and takes a single `PUT`.
pub const MULTIPART_THRESHOLD: u64 = 32 << 20;

/// S3's limit on the parts of one upload.
const MAX_PARTS: u64 = 10_000;

const CONTENT_TYPE: &str = "application/octet-stream";

/// The bytes of an object to upload.
pub(crate) enum Source {
    Memory(Bytes),
    /// An unlinked temporary file holding `len` bytes.
    File {
        file: File,
        len: u64,
    },
}

impl Source {
    fn len(&self) -> u64 {
        match self {
            Source::Memory(b) => b.len() as u64,
            Source::File { len, .. } => *len,
        }
    }

    /// `len` bytes from `offset`, read from the file where they are in one.
    fn part(&self, offset: u64, len: u64, op: &Op<'_>) -> Result<Bytes> {
        match self {
            Source::Memory(b) => Ok(b.slice(offset as usize..(offset + len) as usize)),
            Source::File { file, .. } => {
                let mut buf = vec![0; len as usize];
                file.read_exact_at(&mut buf, offset).map_err(|e| {
                    op.error(
                        ErrorKind::Permanent,
                        format!("reading the pack's temporary file: {e}"),
                    )
                })?;
                Ok(Bytes::from(buf))
            }
        }
    }
}

fn already_exists(op: &Op<'_>) -> BackendError {
    op.error(ErrorKind::AlreadyExists, "the object already exists")
}

impl Inner {
    /// Store `source` as the file `kind`/`name`, never replacing one.
    pub(crate) async fn upload(&self, kind: FileKind, name: &str, source: Source) -> Result<()> {
        let key = self.key(kind, name);
        if self.head(&key).await?.is_some() {
            return Err(already_exists(&self.op("PUT", &key)));
        }
        let class = match kind {
            FileKind::Data => self.storage_class.clone(),
            _ => None,
        };
        if source.len() >= MULTIPART_THRESHOLD {
            self.put_multipart(&key, source, class).await
        } else {
            let body = match source {
                Source::Memory(b) => b,
                Source::File { .. } => source.part(0, source.len(), &self.op("PUT", &key))?,
            };
            self.put(&key, body, class).await
        }
    }

    async fn put(&self, key: &str, body: Bytes, class: Option<StorageClass>) -> Result<()> {
        let op = self.op("PUT", key);
        let len = body.len() as u64;
        self.create_unless_exists(&op, len, |conditional| {
            let mut req = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .content_type(CONTENT_TYPE)
                .content_length(len as i64)
                .set_storage_class(class.clone())
                .body(ByteStream::from(body.clone()));
            if conditional {
                req = req.if_none_match("*");
            }
            req.send()
        })
        .await
    }

    /// Sends the request `send(conditional)` makes: with `If-None-Match: *`
    /// while the server takes it (412: the object exists), without once it
    /// answers 501 to it (then for every later request too).
    async fn create_unless_exists<T, E, F, Fut>(&self, op: &Op<'_>, len: u64, send: F) -> Result<()>
    where
        F: Fn(bool) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        loop {
            let conditional = self.conditional_put.load(Ordering::Relaxed);
            match self.timed(op, len, send(conditional)).await? {
                Ok(_) => return Ok(()),
                Err(e) => match error::status(&e) {
                    Some(412) => return Err(already_exists(op)),
                    Some(501) if conditional => {
                        self.conditional_put.store(false, Ordering::Relaxed)
                    }
                    _ => return Err(op.sdk_error(&e)),
                },
            }
        }
    }

    async fn put_multipart(
        &self,
        key: &str,
        source: Source,
        class: Option<StorageClass>,
    ) -> Result<()> {
        let op = self.op("CreateMultipartUpload", key);
        let req = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(CONTENT_TYPE)
            .set_storage_class(class);
        let created = self
            .timed(&op, 0, req.send())
            .await?
            .map_err(|e| op.sdk_error(&e))?;
        let upload_id = created
            .upload_id()
            .filter(|id| !id.is_empty())
            .ok_or_else(|| op.error(ErrorKind::Permanent, "the answer has no upload id"))?
            .to_string();
        let result = self.send_parts_and_complete(key, &upload_id, &source).await;
        if result.is_err() {
            // Frees the stored parts. Best effort: an upload left behind is
            // found by `abort_stale_uploads` (prune).
            let op = self.op("AbortMultipartUpload", key);
            let req = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(&upload_id);
            let _ = self.timed(&op, 0, req.send()).await;
        }
        result
    }

    async fn send_parts_and_complete(
        &self,
        key: &str,
        upload_id: &str,
        source: &Source,
    ) -> Result<()> {
        let len = source.len();
        let part_size = (PART_SIZE as u64).max(len.div_ceil(MAX_PARTS));
        let count = len.div_ceil(part_size);
        let mut parts = Vec::with_capacity(count as usize);
        let mut tasks = JoinSet::new();
        let mut next = 0;
        // Up to `connections` parts in flight; the first failure ends the
        // upload (dropping the JoinSet cancels the parts still running).
        while next < count || !tasks.is_empty() {
            while next < count && tasks.len() < self.connections {
                let number = next as i32 + 1;
                let offset = next * part_size;
                let n = part_size.min(len - offset);
                let body = source.part(offset, n, &self.op("UploadPart", key))?;
                let req = self
                    .client
                    .upload_part()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(upload_id)
                    .part_number(number)
                    .content_length(n as i64)
                    .body(ByteStream::from(body));
                let limit = request_timeout(n);
                tasks.spawn(async move {
                    let answer = tokio::time::timeout(limit, req.send()).await;
                    (number, answer)
                });
                next += 1;
            }
            let Some(joined) = tasks.join_next().await else {
                break;
            };
            let (number, answer) = joined.map_err(|e| {
                self.op("UploadPart", key)
                    .error(ErrorKind::Permanent, format!("the part upload failed: {e}"))
            })?;
            let verb = format!("UploadPart {number} of {count}");
            let op = self.op(&verb, key);
            let out = match answer {
                Err(_) => return Err(self.timeout_error(&op, request_timeout(part_size))),
                Ok(Err(e)) => return Err(op.sdk_error(&e)),
                Ok(Ok(out)) => out,
            };
            let etag = out
                .e_tag()
                .ok_or_else(|| op.error(ErrorKind::Permanent, "the answer has no ETag"))?;
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .e_tag(etag)
                    .build(),
            );
        }
        parts.sort_by_key(|p| p.part_number());
        let completed = CompletedMultipartUpload::builder()
            .set_parts(Some(parts))
            .build();
        let op = self.op("CompleteMultipartUpload", key);
        // Completing may take the server a while: it assembles the parts.
        self.create_unless_exists(&op, len, |conditional| {
            let mut req = self
                .client
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .multipart_upload(completed.clone());
            if conditional {
                req = req.if_none_match("*");
            }
            req.send()
        })
        .await
    }

    /// Abort the multipart uploads of repository files to which nothing
    /// has been added for `older_than`: what writers that crashed or were
    /// killed mid-upload left. Returns how many were aborted. A server that
    /// cannot list uploads (`501`) has none to abort.
    pub(crate) async fn abort_stale_uploads(&self, older_than: Duration) -> Result<usize> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs() as i64;
        let cutoff = now.saturating_sub(older_than.as_secs().min(i64::MAX as u64) as i64);
        let op = self.op("ListMultipartUploads", &self.key_prefix);
        let mut removed = 0;
        let (mut key_marker, mut id_marker) = (None::<String>, None::<String>);
        loop {
            let req = self
                .client
                .list_multipart_uploads()
                .bucket(&self.bucket)
                .prefix(&self.key_prefix)
                .set_key_marker(key_marker.take())
                .set_upload_id_marker(id_marker.take());
            let page = match self.timed(&op, 0, req.send()).await? {
                Ok(page) => page,
                Err(e) if error::status(&e) == Some(501) => return Ok(removed),
                Err(e) => return Err(op.sdk_error(&e)),
            };
            for upload in page.uploads() {
                let (Some(key), Some(id)) = (upload.key(), upload.upload_id()) else {
                    continue;
                };
                let Some(started) = upload.initiated().map(|t| t.secs()) else {
                    continue;
                };
                if self.parse_key(key).is_none() || !stale(started, None, cutoff) {
                    continue;
                }
                // A running upload keeps adding parts: its newest part counts.
                if !stale(started, self.newest_part(key, id).await?, cutoff) {
                    continue;
                }
                let op = self.op("AbortMultipartUpload", key);
                let req = self
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(id);
                match self.timed(&op, 0, req.send()).await? {
                    Ok(_) => removed += 1,
                    // Finished or aborted meanwhile.
                    Err(e) if error::status(&e) == Some(404) => {}
                    Err(e) => return Err(op.sdk_error(&e)),
                }
            }
            if page.is_truncated() != Some(true) {
                return Ok(removed);
            }
            key_marker = page.next_key_marker().map(str::to_string);
            id_marker = page.next_upload_id_marker().map(str::to_string);
            if key_marker.is_none() && id_marker.is_none() {
                return Ok(removed);
            }
        }
    }

    /// When the newest part of an upload was stored (seconds since the
    /// epoch); None for an upload without parts, or whose parts cannot be
    /// listed; the far future for one that is gone.
    async fn newest_part(&self, key: &str, upload_id: &str) -> Result<Option<i64>> {
        let op = self.op("ListParts", key);
        let mut newest = None;
        let mut marker = None::<String>;
        loop {
            let req = self
                .client
                .list_parts()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .set_part_number_marker(marker.take());
            let page = match self.timed(&op, 0, req.send()).await? {
                Ok(page) => page,
                // Finished or aborted meanwhile: not ours to abort.
                Err(e) if error::status(&e) == Some(404) => return Ok(Some(i64::MAX)),
                Err(e) => {
                    let err = op.sdk_error(&e);
                    if err.kind == ErrorKind::Transient {
                        return Err(err);
                    }
                    // Parts that cannot be listed (no permission, or an
                    // answer the SDK cannot read, as moto's): the upload's
                    // start decides alone.
                    return Ok(newest);
                }
            };
            for p in page.parts() {
                if let Some(t) = p.last_modified().map(|t| t.secs()) {
                    newest = newest.max(Some(t));
                }
            }
            if page.is_truncated() != Some(true) {
                return Ok(newest);
            }
            marker = page.next_part_number_marker().map(str::to_string);
            if marker.is_none() {
                return Ok(newest);
            }
        }
    }
}

/// Is an upload started at `started`, whose newest part was stored at
/// `newest_part`, untouched since `cutoff` (all in seconds since the epoch)?
fn stale(started: i64, newest_part: Option<i64>, cutoff: i64) -> bool {
    started <= cutoff && newest_part.is_none_or(|t| t <= cutoff)
}

/// A pack being written: in memory up to [`MULTIPART_THRESHOLD`], then in
/// an unlinked temporary file (in `$TMPDIR`), uploaded on commit. Nothing
/// reaches the bucket before the commit, so a writer dropped without one
/// leaves no trace.
pub(crate) struct S3DataWriter {
    inner: Arc<Inner>,
    buf: Vec<u8>,
    file: Option<File>,
    len: u64,
}

impl S3DataWriter {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        S3DataWriter {
            inner,
            buf: Vec::new(),
            file: None,
            len: 0,
        }
    }
}

impl DataWriter for S3DataWriter {
    fn write_all(&mut self, data: &[u8]) -> Result<()> {
        let spill = |e: std::io::Error| {
            BackendError::io(
                e,
                format!(
                    "{}: buffering a pack in a temporary file",
                    self.inner.location
                ),
            )
        };
        if self.file.is_none() && (self.buf.len() + data.len()) as u64 > MULTIPART_THRESHOLD {
            let mut f = tempfile::tempfile().map_err(spill)?;
            f.write_all(&self.buf).map_err(spill)?;
            self.buf = Vec::new();
            self.file = Some(f);
        }
        match &mut self.file {
            Some(f) => f.write_all(data).map_err(spill)?,
            None => self.buf.extend_from_slice(data),
        }
        self.len += data.len() as u64;
        Ok(())
    }

    fn commit(self: Box<Self>, name: &str) -> Result<()> {
        Inner::check(FileKind::Data, name)?;
        let this = *self;
        let source = match this.file {
            Some(file) => Source::File {
                file,
                len: this.len,
            },
            None => Source::Memory(Bytes::from(this.buf)),
        };
        this.inner
            .block_on(this.inner.upload(FileKind::Data, name, source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{S3Backend, S3Config, S3Credentials};
    use aws_sdk_s3::types::StorageClass;
    use cairn_backend::conformance::name_of;
    use cairn_backend::Backend;
    use cairn_tests::s3::{S3Server, ACCESS_KEY, SECRET_KEY};

    /// Against moto, looking at what only the SDK shows: ETags, storage
    /// classes, unfinished multipart uploads.
    #[test]
    fn parts_storage_class_and_stale_uploads() {
        let dir = tempfile::tempdir().unwrap();
        let Some(server) = S3Server::moto(dir.path()) else {
            return;
        };
        let b = S3Backend::open(S3Config {
            endpoint: Some(server.endpoint()),
            bucket: "parts".into(),
            prefix: "p".into(),
            storage_class: Some("STANDARD_IA".into()),
            credentials: Some(S3Credentials {
                access_key_id: ACCESS_KEY.into(),
                secret_access_key: SECRET_KEY.into(),
                session_token: None,
            }),
            ..Default::default()
        })
        .unwrap();
        b.create().unwrap();
        let inner = &b.inner;
        let head = |key: &str| {
            inner
                .block_on(
                    inner
                        .client
                        .head_object()
                        .bucket(&inner.bucket)
                        .key(key)
                        .send(),
                )
                .unwrap()
        };

        // 40 MiB: three parts of 16, 16 and 8 MiB; packs in the storage class.
        let big: Vec<u8> = (0..40u32 << 20).map(|i| (i % 251) as u8).collect();
        let big_name = name_of(&big);
        b.write(FileKind::Data, &big_name, &big).unwrap();
        let h = head(&inner.key(FileKind::Data, &big_name));
        let etag = h.e_tag().unwrap().trim_matches('"').to_string();
        assert!(etag.ends_with("-3"), "a multipart ETag: {etag}");
        assert_eq!(h.storage_class(), Some(&StorageClass::StandardIa));
        assert!(b.read(FileKind::Data, &big_name).unwrap() == big);
        // Small files of other kinds stay in the standard class.
        let idx = b"index".to_vec();
        b.write(FileKind::Index, &name_of(&idx), &idx).unwrap();
        let h = head(&inner.key(FileKind::Index, &name_of(&idx)));
        assert!(
            matches!(h.storage_class(), None | Some(StorageClass::Standard)),
            "{:?}",
            h.storage_class()
        );
        // The condition alone, without the HEAD first (a race lost to
        // another writer), never replaces an object either.
        let idx_key = inner.key(FileKind::Index, &name_of(&idx));
        let e = inner
            .block_on(inner.put(&idx_key, Bytes::from_static(b"other"), None))
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::AlreadyExists, "{}", e.message);
        let big_key = inner.key(FileKind::Data, &big_name);
        let source = Source::Memory(Bytes::from(vec![1u8; 33 << 20]));
        let e = inner
            .block_on(inner.put_multipart(&big_key, source, None))
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::AlreadyExists, "{}", e.message);
        // (That upload was aborted: the count of stale uploads below would
        // include it otherwise.)
        assert_eq!(b.read(FileKind::Index, &name_of(&idx)).unwrap(), idx);
        assert!(b.read(FileKind::Data, &big_name).unwrap() == big);
        assert!(inner.conditional_put.load(Ordering::Relaxed));

        let small = b"small pack".to_vec();
        b.write(FileKind::Data, &name_of(&small), &small).unwrap();
        let h = head(&inner.key(FileKind::Data, &name_of(&small)));
        assert_eq!(h.storage_class(), Some(&StorageClass::StandardIa));

        // What a writer killed mid-upload leaves: an upload with a part,
        // never completed; and an upload of a key outside the layout.
        let start = |key: &str| {
            inner
                .block_on(
                    inner
                        .client
                        .create_multipart_upload()
                        .bucket(&inner.bucket)
                        .key(key)
                        .send(),
                )
                .unwrap()
                .upload_id()
                .unwrap()
                .to_string()
        };
        let left_key = inner.key(FileKind::Data, &name_of(b"left behind"));
        let id = start(&left_key);
        inner
            .block_on(
                inner
                    .client
                    .upload_part()
                    .bucket(&inner.bucket)
                    .key(&left_key)
                    .upload_id(&id)
                    .part_number(1)
                    .body(ByteStream::from_static(b"part"))
                    .send(),
            )
            .unwrap();
        start("p/notes.txt");
        // moto reports every upload as started in 2010 and answers ListParts
        // in a form the SDK cannot read, so here every upload is stale
        // (the ages are checked in `stale_means_untouched_since_the_cutoff`;
        // s3s-fs cannot list uploads at all).
        assert_eq!(
            b.remove_stale_temporaries(Duration::from_secs(3600))
                .unwrap(),
            1,
            "the stale upload of a repository file goes"
        );
        let listed = inner
            .block_on(
                inner
                    .client
                    .list_multipart_uploads()
                    .bucket(&inner.bucket)
                    .send(),
            )
            .unwrap();
        let keys: Vec<_> = listed.uploads().iter().filter_map(|u| u.key()).collect();
        assert_eq!(keys, ["p/notes.txt"], "other uploads are left alone");
        assert_eq!(b.remove_stale_temporaries(Duration::ZERO).unwrap(), 0);
    }

    #[test]
    fn stale_means_untouched_since_the_cutoff() {
        let cutoff = 1_000;
        assert!(stale(900, None, cutoff), "old, no parts");
        assert!(stale(900, Some(950), cutoff), "old, old parts");
        assert!(stale(1_000, Some(1_000), cutoff), "exactly at the cutoff");
        assert!(!stale(1_001, None, cutoff), "started recently");
        assert!(!stale(900, Some(1_001), cutoff), "a part added recently");
        assert!(!stale(900, Some(i64::MAX), cutoff), "gone meanwhile");
    }
}
