//! Opening, initialising and reading a repository.

use crate::error::{Error, Kind, Result};
use crate::index::{BlobLocation, Index};
use crate::parallel::parallel_map;
use cairn_backend::{Backend, ErrorKind as BackendKind, FileKind};
use cairn_format::chunker::Chunker;
use cairn_format::config::Config;
use cairn_format::crypto::{Cipher, KdfParams, MasterKey};
use cairn_format::index::IndexFile;
use cairn_format::keyfile::KeyFile;
use cairn_format::pack::{self, PackEntry, MAX_BLOB_LEN};
use cairn_format::snapshot::Snapshot;
use cairn_format::tree::Tree;
use cairn_format::{BlobKind, Id};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// How many files to fetch at once when loading indexes and snapshots.
const LOAD_THREADS: usize = 8;

/// Choices made when opening or creating a repository.
#[derive(Clone, Debug)]
pub struct OpenOptions {
    /// zstd level for new blobs; `None` stores them uncompressed.
    pub compression: Option<i32>,
    /// scrypt parameters for new key files.
    pub kdf: KdfParams,
    pub hostname: String,
    pub username: String,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            compression: Some(2),
            kdf: KdfParams::DEFAULT,
            hostname: String::new(),
            username: String::new(),
        }
    }
}

pub struct Repository {
    backend: Arc<dyn Backend>,
    key: MasterKey,
    cipher: Cipher,
    config: Config,
    chunker: Chunker,
    key_id: Id,
    options: OpenOptions,
    index: RwLock<Index>,
}

/// Which snapshots `latest` or a listing considers.
#[derive(Clone, Debug, Default)]
pub struct SnapshotFilter {
    pub hosts: Vec<String>,
    pub tags: Vec<String>,
    pub paths: Vec<String>,
}

impl SnapshotFilter {
    pub fn matches(&self, s: &Snapshot) -> bool {
        (self.hosts.is_empty() || self.hosts.contains(&s.hostname))
            && (self.tags.is_empty()
                || self
                    .tags
                    .iter()
                    .any(|t| t.split(',').all(|t| s.tags.iter().any(|x| x == t))))
            && (self.paths.is_empty() || self.paths.iter().all(|p| s.paths.contains(p)))
    }
}

fn missing_repository(backend: &dyn Backend) -> Error {
    Error::new(
        Kind::NoRepository,
        format!(
            "repository {} does not exist (create it with `cairn init`)",
            backend.location()
        ),
    )
}

impl Repository {
    /// Create a new repository with one key.
    pub fn init(
        backend: Arc<dyn Backend>,
        password: &[u8],
        options: OpenOptions,
    ) -> Result<Repository> {
        Self::init_with(
            backend,
            password,
            options,
            MasterKey::random(),
            Config::new(),
        )
    }

    /// Create a repository with a given master key and config (used to share
    /// chunker parameters with another repository).
    pub fn init_with(
        backend: Arc<dyn Backend>,
        password: &[u8],
        options: OpenOptions,
        key: MasterKey,
        config: Config,
    ) -> Result<Repository> {
        match backend.stat(FileKind::Config, "config") {
            Ok(_) => {
                return Err(Error::new(
                    Kind::AlreadyInitialized,
                    format!("repository {} already exists", backend.location()),
                ))
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
        backend.create()?;
        let cipher = key.cipher();
        let kf = KeyFile::create(
            &key,
            password,
            options.kdf,
            &options.hostname,
            &options.username,
        )
        .map_err(|e| Error::format("new key", e))?;
        let kf_bytes = kf.to_bytes();
        let key_id = Id::sha256(&kf_bytes);
        backend.write(FileKind::Key, &key_id.to_hex(), &kf_bytes)?;
        // The config goes last: a repository without it does not exist, so a crash mid-init leaves nothing usable.
        match backend.write(FileKind::Config, "config", &config.seal(&cipher)) {
            Ok(()) => {}
            Err(e) if e.kind == BackendKind::AlreadyExists => {
                let _ = backend.remove(FileKind::Key, &key_id.to_hex());
                return Err(Error::new(
                    Kind::AlreadyInitialized,
                    format!("repository {} already exists", backend.location()),
                ));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(Self::assemble(backend, key, cipher, config, key_id, options))
    }

    /// A repository value from its parts; the chunker is derived here.
    fn assemble(
        backend: Arc<dyn Backend>,
        key: MasterKey,
        cipher: Cipher,
        config: Config,
        key_id: Id,
        options: OpenOptions,
    ) -> Repository {
        let chunker = Chunker::new(config.chunker, key.chunker_seed);
        Repository {
            backend,
            key,
            cipher,
            config,
            chunker,
            key_id,
            options,
            index: RwLock::new(Index::new()),
        }
    }

    /// Open an existing repository; tries every key file with the password.
    /// Does not load the index (see [`Repository::load_index`]).
    pub fn open(
        backend: Arc<dyn Backend>,
        password: &[u8],
        options: OpenOptions,
    ) -> Result<Repository> {
        let config_bytes = match backend.read(FileKind::Config, "config") {
            Ok(b) => b,
            Err(e) if e.is_not_found() => return Err(missing_repository(&*backend)),
            Err(e) => return Err(e.into()),
        };
        let keys = backend.list(FileKind::Key)?;
        if keys.is_empty() {
            return Err(Error::corrupt(
                format!("repository {}", backend.location()),
                "no key files in keys/",
            ));
        }
        let mut last_err = None;
        for k in &keys {
            let bytes = match backend.read(FileKind::Key, &k.name) {
                Ok(b) => b,
                Err(e) => {
                    last_err = Some(Error::from(e));
                    continue;
                }
            };
            let kf = match KeyFile::parse(&bytes) {
                Ok(kf) => kf,
                Err(e) => {
                    last_err = Some(Error::format(format!("key {}", &k.name[..8]), e));
                    continue;
                }
            };
            match kf.unlock(password) {
                Ok(key) => {
                    let cipher = key.cipher();
                    let config = Config::open(&cipher, &config_bytes)
                        .map_err(|e| Error::format("config", e))?;
                    let key_id = Id::from_hex(&k.name).unwrap_or_default();
                    return Ok(Self::assemble(backend, key, cipher, config, key_id, options));
                }
                Err(cairn_format::FormatError::Decrypt) => {}
                Err(e) => last_err = Some(Error::format(format!("key {}", &k.name[..8]), e)),
            }
        }
        match last_err {
            Some(e) if e.kind != Kind::Corrupt => Err(e),
            _ => Err(Error::new(
                Kind::WrongPassword,
                format!(
                    "wrong password: no key in {} opens with it",
                    backend.location()
                ),
            )),
        }
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }
    pub fn key(&self) -> &MasterKey {
        &self.key
    }
    pub fn key_id(&self) -> Id {
        self.key_id
    }
    pub fn cipher(&self) -> &Cipher {
        &self.cipher
    }
    pub fn config(&self) -> &Config {
        &self.config
    }
    pub fn chunker(&self) -> &Chunker {
        &self.chunker
    }
    pub fn options(&self) -> &OpenOptions {
        &self.options
    }
    pub fn location(&self) -> String {
        self.backend.location()
    }

    pub fn index(&self) -> RwLockReadGuard<'_, Index> {
        self.index.read().unwrap()
    }
    pub fn index_mut(&self) -> RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap()
    }

    /// Add a key file for another password.
    pub fn add_key(&self, password: &[u8], kdf: KdfParams) -> Result<Id> {
        let kf = KeyFile::create(
            &self.key,
            password,
            kdf,
            &self.options.hostname,
            &self.options.username,
        )
        .map_err(|e| Error::format("new key", e))?;
        let bytes = kf.to_bytes();
        let id = Id::sha256(&bytes);
        self.backend.write(FileKind::Key, &id.to_hex(), &bytes)?;
        Ok(id)
    }

    /// Store a file named by the SHA-256 of its bytes. Storing the same
    /// bytes twice is not an error.
    pub fn save_file(&self, kind: FileKind, bytes: &[u8]) -> Result<Id> {
        let id = Id::sha256(bytes);
        match self.backend.write(kind, &id.to_hex(), bytes) {
            Ok(()) => Ok(id),
            Err(e) if e.kind == BackendKind::AlreadyExists => Ok(id),
            Err(e) => Err(e.into()),
        }
    }

    /// Read a stored file and check that its bytes match its name.
    pub fn load_file(&self, kind: FileKind, id: &Id) -> Result<Vec<u8>> {
        let bytes = self.backend.read(kind, &id.to_hex())?;
        if Id::sha256(&bytes) != *id {
            return Err(Error::corrupt(
                format!("{kind}/{id}"),
                "contents do not match the file name (SHA-256 mismatch)",
            ));
        }
        Ok(bytes)
    }

    pub fn load_index_file(&self, id: &Id) -> Result<IndexFile> {
        let sealed = self.load_file(FileKind::Index, id)?;
        let plain = self
            .cipher
            .open(&sealed, 1 << 30)
            .map_err(|e| Error::format(format!("index {}", id.short()), e))?;
        IndexFile::decode(&plain).map_err(|e| Error::format(format!("index {}", id.short()), e))
    }

    pub fn save_index_file(&self, f: &IndexFile) -> Result<Id> {
        let sealed = self.cipher.seal(&f.encode(), Some(3));
        self.save_file(FileKind::Index, &sealed)
    }

    /// Read every index file into memory.
    pub fn load_index(&self) -> Result<()> {
        self.load_index_files(false).map(|_| ())
    }

    /// Read every index file that can be read into memory, and return the
    /// others with why (for `check`, which reports them and goes on).
    pub fn load_index_lenient(&self) -> Result<Vec<(Id, Error)>> {
        self.load_index_files(true)
    }

    fn load_index_files(&self, lenient: bool) -> Result<Vec<(Id, Error)>> {
        let files = self.backend.list(FileKind::Index)?;
        let ids: Vec<Id> = files.iter().filter_map(|f| Id::from_hex(&f.name)).collect();
        let mut index = Index::new();
        let mut bad = Vec::new();
        // Load in batches so that only a bounded number of decoded files is held at once.
        for batch in ids.chunks(64) {
            let loaded = parallel_map(batch, LOAD_THREADS, |id| {
                let r = self.load_index_file(id);
                if lenient {
                    Ok(r)
                } else {
                    r.map(Ok)
                }
            })?;
            for (id, f) in batch.iter().zip(loaded) {
                match f {
                    Ok(f) => f.packs.iter().for_each(|p| index.load_index_pack(p)),
                    Err(e) => bad.push((*id, e)),
                }
            }
        }
        index.finish_loading();
        *self.index.write().unwrap() = index;
        Ok(bad)
    }

    /// Read a pack's header (the list of its blobs) from the pack itself.
    pub fn read_pack_header(&self, pack: &Id, size: u64) -> Result<Vec<PackEntry>> {
        let what = || format!("pack {pack}");
        if size < 4 {
            return Err(Error::corrupt(what(), format!("only {size} bytes")));
        }
        // One read usually gets the whole header.
        let guess = size.min(64 * 1024);
        let tail =
            self.backend
                .read_range(FileKind::Data, &pack.to_hex(), size - guess, Some(guess))?;
        let hlen = pack::header_length(size, &tail[tail.len() - 4..])
            .map_err(|e| Error::format(what(), e))? as u64;
        let sealed = if hlen + 4 <= guess {
            tail[tail.len() - 4 - hlen as usize..tail.len() - 4].to_vec()
        } else {
            self.backend
                .read_range(FileKind::Data, &pack.to_hex(), size - 4 - hlen, Some(hlen))?
        };
        pack::parse_header(&self.cipher, &sealed, size).map_err(|e| Error::format(what(), e))
    }

    /// Index packs that are stored but in no index file (left by an
    /// interrupted backup), so their blobs are not uploaded again.
    /// Returns how many packs were recovered.
    pub fn recover_unindexed_packs(&self) -> Result<usize> {
        let listed = self.backend.list(FileKind::Data)?;
        let orphans: Vec<(Id, u64)> = {
            let index = self.index();
            listed
                .iter()
                .filter_map(|f| Id::from_hex(&f.name).map(|id| (id, f.size)))
                .filter(|(id, _)| !index.has_pack(id))
                .collect()
        };
        if orphans.is_empty() {
            return Ok(0);
        }
        let headers = parallel_map(&orphans, LOAD_THREADS, |(id, size)| {
            Ok::<_, Error>(self.read_pack_header(id, *size).ok())
        })?;
        let mut file = IndexFile::default();
        for ((id, _), h) in orphans.iter().zip(headers) {
            // An unreadable pack is left for `check` to report; it is simply not reused.
            if let Some(blobs) = h {
                file.packs
                    .push(cairn_format::index::IndexPack::live(*id, blobs));
            }
        }
        if file.packs.is_empty() {
            return Ok(0);
        }
        self.save_index_file(&file)?;
        let mut index = self.index_mut();
        for p in &file.packs {
            index.add_pack(p.id, &p.blobs);
        }
        index.compact();
        Ok(file.packs.len())
    }

    pub fn lookup(&self, id: &Id) -> Option<BlobLocation> {
        self.index().get(id)
    }

    /// Decrypt a blob read from its pack, and check it is the blob asked for.
    /// Open a blob read from `loc`: it must decrypt, have the indexed
    /// length and hash to its id.
    pub fn open_blob(&self, loc: &BlobLocation, sealed: &[u8]) -> Result<Vec<u8>> {
        let plain = self
            .cipher
            .open(sealed, (loc.raw_length as usize).min(MAX_BLOB_LEN))
            .map_err(|e| Error::format(blob_what(loc), e))?;
        self.check_plain(loc, &plain).map_err(|why| Error::corrupt(blob_what(loc), why))?;
        Ok(plain)
    }

    /// A decoded blob has the length the index gives and hashes to its id.
    fn check_plain(&self, loc: &BlobLocation, plain: &[u8]) -> std::result::Result<(), &'static str> {
        if plain.len() != loc.raw_length as usize {
            return Err("length differs from the index");
        }
        if self.key.blob_id(plain) != loc.id {
            return Err("contents do not match the blob id");
        }
        Ok(())
    }

    /// What [`Self::open_blob`] checks, without keeping the plaintext.
    /// `sealed` is decrypted in place.
    pub fn verify_blob(&self, loc: &BlobLocation, sealed: &mut [u8]) -> Result<()> {
        self.with_blob(loc, sealed, |_| ())
    }

    /// Open a blob in place (see [`Cipher::open_in_place`]), check it as
    /// [`Self::open_blob`] does and hand its plaintext to `f`. `f` must not
    /// open blobs itself.
    pub fn with_blob<R>(&self, loc: &BlobLocation, sealed: &mut [u8], f: impl FnOnce(&[u8]) -> R) -> Result<R> {
        let checked = self
            .cipher
            .open_in_place(sealed, (loc.raw_length as usize).min(MAX_BLOB_LEN), |plain| {
                self.check_plain(loc, plain).map(|()| f(plain))
            })
            .map_err(|e| Error::format(blob_what(loc), e))?;
        checked.map_err(|why| Error::corrupt(blob_what(loc), why))
    }

    pub fn read_blob_at(&self, loc: &BlobLocation) -> Result<Vec<u8>> {
        let sealed = self.backend.read_range(
            FileKind::Data,
            &loc.pack.to_hex(),
            loc.offset as u64,
            Some(loc.length as u64),
        )?;
        self.open_blob(loc, &sealed)
    }

    pub fn read_blob(&self, id: &Id) -> Result<Vec<u8>> {
        let loc = self.lookup(id).ok_or_else(|| {
            Error::corrupt(
                format!("blob {id}"),
                "not in any index (data lost? run `cairn check`)",
            )
        })?;
        self.read_blob_at(&loc)
    }

    pub fn load_tree(&self, id: &Id) -> Result<Tree> {
        let bytes = self.read_blob(id)?;
        Tree::from_bytes(&bytes).map_err(|e| Error::format(format!("tree {}", id.short()), e))
    }

    pub fn blob_id(&self, data: &[u8]) -> Id {
        self.key.blob_id(data)
    }

    pub fn save_snapshot(&self, s: &Snapshot) -> Result<Id> {
        self.save_file(FileKind::Snapshot, &s.seal(&self.cipher))
    }

    pub fn load_snapshot(&self, id: &Id) -> Result<Snapshot> {
        let bytes = self.load_file(FileKind::Snapshot, id)?;
        Snapshot::open(&self.cipher, &bytes)
            .map_err(|e| Error::format(format!("snapshot {}", id.short()), e))
    }

    /// All readable snapshots, oldest first, and the error for each snapshot
    /// file that could not be read. For listing and choosing snapshots;
    /// anything that decides what data is needed (prune) must use the strict
    /// [`Repository::list_snapshots`].
    pub fn list_snapshots_lenient(&self) -> Result<(Vec<(Id, Snapshot)>, Vec<Error>)> {
        let files = self.backend.list(FileKind::Snapshot)?;
        let ids: Vec<Id> = files.iter().filter_map(|f| Id::from_hex(&f.name)).collect();
        let loaded = parallel_map(&ids, LOAD_THREADS, |id| {
            Ok::<_, Error>(self.load_snapshot(id))
        })?;
        let mut good = Vec::new();
        let mut bad = Vec::new();
        for (id, r) in ids.into_iter().zip(loaded) {
            match r {
                Ok(s) => good.push((id, s)),
                Err(e)
                    if matches!(
                        e.kind,
                        Kind::Corrupt | Kind::Unsupported | Kind::Backend(BackendKind::NotFound)
                    ) =>
                {
                    bad.push(e)
                }
                Err(e) => return Err(e),
            }
        }
        good.sort_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(&b.0)));
        Ok((good, bad))
    }

    /// All snapshots, oldest first; any unreadable snapshot file is an error.
    pub fn list_snapshots(&self) -> Result<Vec<(Id, Snapshot)>> {
        let files = self.backend.list(FileKind::Snapshot)?;
        let ids: Vec<Id> = files.iter().filter_map(|f| Id::from_hex(&f.name)).collect();
        let snaps = parallel_map(&ids, LOAD_THREADS, |id| self.load_snapshot(id))?;
        let mut all: Vec<(Id, Snapshot)> = ids.into_iter().zip(snaps).collect();
        all.sort_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(&b.0)));
        Ok(all)
    }

    /// Resolve `latest`, a full id or a unique prefix of one.
    pub fn find_snapshot(&self, spec: &str, filter: &SnapshotFilter) -> Result<(Id, Snapshot)> {
        if spec == "latest" {
            let (all, _) = self.list_snapshots_lenient()?;
            return all
                .into_iter()
                .rev()
                .find(|(_, s)| filter.matches(s))
                .ok_or_else(|| {
                    Error::not_found(format!("no snapshot found in {}", self.location()))
                });
        }
        if spec.is_empty() || spec.len() > 64 || !spec.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::usage(format!(
                "invalid snapshot id {spec:?} (expected hex digits or `latest`)"
            )));
        }
        let spec = spec.to_ascii_lowercase();
        let files = self.backend.list(FileKind::Snapshot)?;
        let matches: Vec<&str> = files
            .iter()
            .map(|f| f.name.as_str())
            .filter(|n| n.starts_with(&spec))
            .collect();
        match matches.as_slice() {
            [] => Err(Error::not_found(format!(
                "no snapshot with id {spec} in {}",
                self.location()
            ))),
            [one] => {
                let id = Id::from_hex(one).expect("listed names are valid ids");
                Ok((id, self.load_snapshot(&id)?))
            }
            many => Err(Error::new(
                Kind::Ambiguous,
                format!(
                    "snapshot id prefix {spec} is ambiguous: it matches {} snapshots",
                    many.len()
                ),
            )),
        }
    }

    /// The blob kind an id is indexed as, if any.
    pub fn blob_kind(&self, id: &Id) -> Option<BlobKind> {
        self.lookup(id).map(|l| l.kind)
    }
}

/// How errors name a blob.
fn blob_what(loc: &BlobLocation) -> String {
    format!("{} blob {} in pack {}", loc.kind, loc.id.short(), loc.pack.short())
}
