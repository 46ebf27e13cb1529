//! The content store: blobs addressed by digest under `<root>/content`.
//!
//! A blob becomes visible only whole and verified: it is written to an ingest
//! file, hashed while written, fsynced, checked against the expected digest,
//! renamed into `blobs/sha256/<hex>`, and the directory is fsynced (the order
//! containerd's content writer commits in). A mismatch leaves nothing behind.
//! Ingest files are named by the expected digest, so an interrupted download
//! resumes where it stopped.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::digest::{Digest, HashingWriter};
use crate::manifest::quantity::ByteSize;
use crate::state::atomic::{fsync_dir, temp_path_for};
use crate::state::nofollow::{create_dir_beneath, open_beneath, planted_link, Open};

/// JSON documents (manifests, indexes, configs) larger than this are refused
/// rather than read into memory. Registries accept manifests of 4 MiB (the
/// distribution spec's floor); configs of images with long histories are
/// larger than manifests, so twice that.
pub const MAX_JSON_BLOB: u64 = 8 << 20;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("blob {expected} does not match its content: got {actual} ({size} bytes); nothing was stored")]
    DigestMismatch {
        expected: Digest,
        actual: Digest,
        size: u64,
    },
    #[error("blob {digest} has {actual} bytes, expected {expected}")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("blob {0} is not in the content store")]
    Missing(Digest),
    /// A JSON document over [`MAX_JSON_BLOB`]: `size` is what its
    /// descriptor or its file says, `None` when it was cut off mid-stream.
    #[error(
        "blob {digest} is {}, over the {} bound on a JSON document (manifest, index or config); nothing was stored",
        .size.map_or_else(|| "longer".to_string(), |s| format!("{s} bytes")),
        ByteSize(MAX_JSON_BLOB)
    )]
    TooLarge { digest: Digest, size: Option<u64> },
    /// The source sent more than the descriptor declared: stopped there,
    /// not read to the end.
    #[error("blob {digest} is longer than the {declared} bytes its descriptor declares; stopped reading, nothing was stored")]
    TooLong { digest: Digest, declared: u64 },
}

fn io_error<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Debug, Clone)]
pub struct ContentStore {
    dir: PathBuf,
}

impl ContentStore {
    /// Opens (creating if needed) the store under `root/content`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let dir = dir.to_path_buf();
        fs::create_dir_all(&dir).map_err(io_error("create directory", &dir))?;
        for sub in ["blobs/sha256", "ingest"] {
            let path = dir.join(sub);
            create_dir_beneath(&dir, &path, 0o700).map_err(io_error("create directory", &path))?;
        }
        Ok(ContentStore { dir })
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join("blobs/sha256").join(digest.hex())
    }

    fn ingest_path(&self, digest: &Digest) -> PathBuf {
        self.dir
            .join("ingest")
            .join(format!("{}.partial", digest.hex()))
    }

    pub fn contains(&self, digest: &Digest) -> bool {
        fs::symlink_metadata(self.blob_path(digest)).is_ok_and(|m| m.is_file())
    }

    pub fn size(&self, digest: &Digest) -> Result<u64, StoreError> {
        let path = self.blob_path(digest);
        match fs::symlink_metadata(&path) {
            Ok(metadata) if metadata.is_file() => Ok(metadata.len()),
            Ok(_) => Err(io_error("stat", &path)(planted_link(&path))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(StoreError::Missing(digest.clone()))
            }
            Err(e) => Err(io_error("stat", &path)(e)),
        }
    }

    pub fn open_blob(&self, digest: &Digest) -> Result<File, StoreError> {
        let path = self.blob_path(digest);
        open_beneath(&self.dir, &path, Open::Read).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::Missing(digest.clone()),
            _ => io_error("open", &path)(e),
        })
    }

    /// Reads a small blob (a manifest, index or config) whole.
    pub fn read_json_blob(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        let size = self.size(digest)?;
        if size > MAX_JSON_BLOB {
            return Err(StoreError::TooLarge {
                digest: digest.clone(),
                size: Some(size),
            });
        }
        let path = self.blob_path(digest);
        let mut bytes = Vec::with_capacity(size as usize);
        self.open_blob(digest)?
            .take(MAX_JSON_BLOB)
            .read_to_end(&mut bytes)
            .map_err(io_error("read", &path))?;
        Ok(bytes)
    }

    /// Stores `bytes`, returning their digest.
    pub fn write_bytes(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
        let digest = Digest::of(bytes);
        if !self.contains(&digest) {
            self.write_blob(&digest, Some(bytes.len() as u64), bytes)?;
        }
        Ok(digest)
    }

    /// Copies `reader` into the store as `expected`, verifying digest (and
    /// size when known) before anything becomes visible. With a size, no
    /// more than one byte beyond it is ever read: a source that goes on is
    /// [`StoreError::TooLong`], not a full disk.
    pub fn write_blob(
        &self,
        expected: &Digest,
        size: Option<u64>,
        reader: impl Read,
    ) -> Result<u64, StoreError> {
        self.write_blob_within(expected, size, u64::MAX, reader)
    }

    /// [`ContentStore::write_blob`] for a JSON document (manifest, index,
    /// config): one whose declared size is over [`MAX_JSON_BLOB`] is refused
    /// before anything is read, and one without a declared size is cut off
    /// just past the bound.
    pub fn write_json_blob(
        &self,
        expected: &Digest,
        size: Option<u64>,
        reader: impl Read,
    ) -> Result<u64, StoreError> {
        if let Some(size) = size.filter(|size| *size > MAX_JSON_BLOB) {
            return Err(StoreError::TooLarge {
                digest: expected.clone(),
                size: Some(size),
            });
        }
        self.write_blob_within(expected, size, MAX_JSON_BLOB, reader)
    }

    /// Copies at most `min(size, max)` bytes (and the one that shows there
    /// are more) of `reader` into a verified blob.
    fn write_blob_within(
        &self,
        expected: &Digest,
        size: Option<u64>,
        max: u64,
        reader: impl Read,
    ) -> Result<u64, StoreError> {
        if self.contains(expected) {
            return self.size(expected);
        }
        let bound = size.map_or(max, |size| size.min(max));
        let mut ingest = self.start_ingest(expected, false)?;
        let mut reader = reader.take(bound.saturating_add(1));
        let copied = io::copy(&mut reader, &mut ingest.writer);
        match copied {
            Err(source) => {
                let path = ingest.path.clone();
                ingest.abort();
                Err(StoreError::Io {
                    op: "write",
                    path,
                    source,
                })
            }
            Ok(_) if ingest.offset() > bound => {
                ingest.abort();
                Err(match size {
                    Some(declared) if declared <= max => StoreError::TooLong {
                        digest: expected.clone(),
                        declared,
                    },
                    _ => StoreError::TooLarge {
                        digest: expected.clone(),
                        size: None,
                    },
                })
            }
            Ok(_) => ingest.commit(size),
        }
    }

    /// Stores a blob whose digest is not known in advance (docker archives
    /// name layers by path); returns the digest it was stored under.
    pub fn write_unknown(&self, reader: impl Read) -> Result<(Digest, u64), StoreError> {
        let temp = temp_path_for(&self.dir.join("ingest").join("unknown"));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(io_error("create", &temp))?;
        let mut writer = HashingWriter {
            inner: file,
            hasher: Sha256::new(),
            count: 0,
        };
        let mut reader = reader;
        let result = (|| {
            io::copy(&mut reader, &mut writer).map_err(io_error("write", &temp))?;
            writer.inner.sync_all().map_err(io_error("fsync", &temp))?;
            let size = writer.count;
            let digest = Digest::from_hasher(writer.hasher.clone());
            let target = self.blob_path(&digest);
            fs::rename(&temp, &target).map_err(io_error("rename", &target))?;
            let blobs = self.dir.join("blobs/sha256");
            fsync_dir(&blobs).map_err(io_error("fsync", &blobs))?;
            Ok((digest, size))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result
    }

    /// Begins writing `expected`. With `resume`, an earlier partial ingest is
    /// kept (and rehashed) so that only the rest needs fetching; see
    /// [`Ingest::offset`].
    pub fn start_ingest(&self, expected: &Digest, resume: bool) -> Result<Ingest, StoreError> {
        let path = if resume {
            self.ingest_path(expected)
        } else {
            temp_path_for(&self.ingest_path(expected))
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(!resume)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(io_error("create", &path))?;
        let mut hasher = Sha256::new();
        let mut offset = 0;
        if resume {
            offset = io::copy(
                &mut (&mut file).take(u64::MAX),
                &mut HasherSink(&mut hasher),
            )
            .map_err(io_error("read", &path))?;
            file.seek(SeekFrom::End(0))
                .map_err(io_error("seek", &path))?;
        }
        Ok(Ingest {
            store: self.clone(),
            expected: expected.clone(),
            path,
            writer: HashingWriter {
                inner: file,
                hasher,
                count: offset,
            },
        })
    }

    pub fn delete(&self, digest: &Digest) -> Result<(), StoreError> {
        let path = self.blob_path(digest);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error("remove", &path)(e)),
        }
    }

    /// Every stored blob, with its size.
    pub fn list(&self) -> Result<Vec<(Digest, u64)>, StoreError> {
        let dir = self.dir.join("blobs/sha256");
        let mut blobs = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_error("list", &dir))? {
            let entry = entry.map_err(io_error("list", &dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Ok(digest) = Digest::from_hex(&name) {
                let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                blobs.push((digest, size));
            }
        }
        blobs.sort();
        Ok(blobs)
    }

    /// Removes leftover ingest files (call only while no ingest can run).
    pub fn clean_ingests(&self) -> Result<u64, StoreError> {
        let dir = self.dir.join("ingest");
        let mut removed = 0;
        for entry in fs::read_dir(&dir)
            .map_err(io_error("list", &dir))?
            .flatten()
        {
            if fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

struct HasherSink<'a>(&'a mut Sha256);

impl Write for HasherSink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A blob being written; visible in the store only after [`Ingest::commit`].
pub struct Ingest {
    store: ContentStore,
    expected: Digest,
    path: PathBuf,
    pub writer: HashingWriter<File>,
}

impl Ingest {
    /// Bytes already present (from an interrupted earlier ingest).
    pub fn offset(&self) -> u64 {
        self.writer.count
    }

    /// Appends `chunk`, unless it would take the blob past the `declared`
    /// size of its descriptor: then nothing of it is written and the
    /// caller aborts, so a source that never stops costs no more than the
    /// declared size.
    pub fn write_within(&mut self, chunk: &[u8], declared: u64) -> Result<(), StoreError> {
        if self.offset().saturating_add(chunk.len() as u64) > declared {
            return Err(StoreError::TooLong {
                digest: self.expected.clone(),
                declared,
            });
        }
        self.writer
            .write_all(chunk)
            .map_err(io_error("write", &self.path))
    }

    /// Verifies and publishes the blob.
    pub fn commit(self, expected_size: Option<u64>) -> Result<u64, StoreError> {
        let Ingest {
            store,
            expected,
            path,
            writer,
        } = self;
        let size = writer.count;
        let actual = Digest::from_hasher(writer.hasher);
        let file = writer.inner;
        let check = (|| {
            if let Some(expected_size) = expected_size.filter(|s| *s != size) {
                return Err(StoreError::SizeMismatch {
                    digest: expected.clone(),
                    expected: expected_size,
                    actual: size,
                });
            }
            if actual != expected {
                return Err(StoreError::DigestMismatch {
                    expected: expected.clone(),
                    actual: actual.clone(),
                    size,
                });
            }
            file.sync_all().map_err(io_error("fsync", &path))?;
            let target = store.blob_path(&expected);
            fs::rename(&path, &target).map_err(io_error("rename", &target))?;
            let blobs = store.dir.join("blobs/sha256");
            fsync_dir(&blobs).map_err(io_error("fsync", &blobs))
        })();
        if check.is_err() {
            let _ = fs::remove_file(&path);
        }
        check.map(|()| size)
    }

    /// Drops the partial data.
    pub fn abort(self) {
        let _ = fs::remove_file(&self.path);
    }

    /// Keeps the partial data for a later resume.
    pub fn suspend(self) {
        let _ = self.writer.inner.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verified_blobs_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let digest = store.write_bytes(b"hello").unwrap();
        assert_eq!(digest, Digest::of(b"hello"));
        assert_eq!(store.read_json_blob(&digest).unwrap(), b"hello");
        assert_eq!(store.list().unwrap(), vec![(digest, 5)]);
    }

    #[test]
    fn a_digest_mismatch_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let claimed = Digest::of(b"what the manifest says");
        let error = store
            .write_blob(&claimed, None, &b"what the server sent"[..])
            .unwrap_err();
        assert!(
            matches!(error, StoreError::DigestMismatch { .. }),
            "{error}"
        );
        assert!(!store.contains(&claimed));
        assert!(store.list().unwrap().is_empty());
        assert_eq!(fs::read_dir(dir.path().join("ingest")).unwrap().count(), 0);
    }

    #[test]
    fn a_size_mismatch_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let digest = Digest::of(b"abc");
        assert!(matches!(
            store.write_blob(&digest, Some(4), &b"abc"[..]),
            Err(StoreError::SizeMismatch { .. })
        ));
        assert!(!store.contains(&digest));
    }

    /// Counts what is read from `inner`.
    struct Counting<R> {
        inner: R,
        read: u64,
    }

    impl<R: Read> Read for Counting<R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.read += n as u64;
            Ok(n)
        }
    }

    fn endless() -> Counting<io::Repeat> {
        Counting {
            inner: io::repeat(0),
            read: 0,
        }
    }

    fn ingest_files(dir: &Path) -> usize {
        fs::read_dir(dir.join("ingest")).unwrap().count()
    }

    #[test]
    fn a_blob_with_a_declared_size_is_read_no_further_than_that() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let digest = Digest::of(b"a small layer");
        let mut source = endless();
        // Regression: the whole source used to be copied before the size
        // was compared, so a source that never ended filled the disk.
        let error = store
            .write_blob(&digest, Some(1000), &mut source)
            .unwrap_err();
        assert!(
            matches!(error, StoreError::TooLong { declared: 1000, .. }),
            "{error}"
        );
        assert_eq!(source.read, 1001);
        assert!(!store.contains(&digest));
        assert_eq!(ingest_files(dir.path()), 0);
    }

    #[test]
    fn a_json_document_declared_over_the_bound_is_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let digest = Digest::of(b"a config");
        let mut source = endless();
        let error = store
            .write_json_blob(&digest, Some(MAX_JSON_BLOB + 1), &mut source)
            .unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains(&digest.to_string()) && message.contains("8Mi"),
            "{message}"
        );
        assert_eq!(source.read, 0);
    }

    #[test]
    fn a_json_document_of_unknown_size_is_cut_off_past_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let digest = Digest::of(b"a manifest");
        let mut source = endless();
        let error = store
            .write_json_blob(&digest, None, &mut source)
            .unwrap_err();
        assert!(
            matches!(error, StoreError::TooLarge { size: None, .. }),
            "{error}"
        );
        assert_eq!(source.read, MAX_JSON_BLOB + 1);
        assert_eq!(ingest_files(dir.path()), 0);
    }

    #[test]
    fn an_ingest_refuses_the_chunk_that_would_pass_the_declared_size() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let digest = Digest::of(b"0123456789");
        let mut ingest = store.start_ingest(&digest, true).unwrap();
        ingest.write_within(b"0123", 10).unwrap();
        ingest.write_within(b"456789", 10).unwrap();
        let error = ingest.write_within(b"x", 10).unwrap_err();
        assert!(
            matches!(&error, StoreError::TooLong { declared: 10, digest: d } if *d == digest),
            "{error}"
        );
        assert_eq!(
            ingest.offset(),
            10,
            "nothing of the refused chunk is written"
        );
        assert_eq!(ingest.commit(Some(10)).unwrap(), 10);
    }

    #[test]
    fn an_interrupted_ingest_resumes_from_its_offset() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let data = b"0123456789".repeat(1000);
        let digest = Digest::of(&data);
        let mut first = store.start_ingest(&digest, true).unwrap();
        first.writer.write_all(&data[..4000]).unwrap();
        first.suspend();
        let mut second = store.start_ingest(&digest, true).unwrap();
        assert_eq!(second.offset(), 4000);
        second.writer.write_all(&data[4000..]).unwrap();
        assert_eq!(
            second.commit(Some(data.len() as u64)).unwrap(),
            data.len() as u64
        );
        assert!(store.contains(&digest));
    }
}
