//! `image save`: an image from the content store written as an archive
//! other tools read: an OCI archive (a tar of an OCI image layout, as
//! `skopeo copy ... oci-archive:F` and containerd's export write) or a
//! docker archive (as `docker save` writes).
//!
//! The archive holds the image for this host's platform: its manifest (not
//! a multi-platform index whose other manifests the store never fetched),
//! config and layers, streamed from the store. It is written to a temp file
//! beside the output and renamed into place whole, so a failed save leaves
//! nothing at the output path.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

use serde_json::json;
use sha2::{Digest as _, Sha256};

use super::compression::Compression;
use super::digest::{Digest, HashingWriter};
use super::oci;
use super::record::{ImageRecord, LayerRecord};
use super::{ImageError, Images};
use crate::manifest::reference::{ImageSource, Reference};
use crate::state::atomic::temp_path_for;

/// The archive formats `image save` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// A tar of an OCI image layout.
    OciArchive,
    /// `docker save`'s format: manifest.json, the config, plain layer tars.
    DockerArchive,
}

/// The containerd annotation naming an image in full; the OCI one
/// ([`oci::REF_NAME`]) holds its tag.
const CONTAINERD_IMAGE_NAME: &str = "io.containerd.image.name";

/// Writes the image `name` resolves to into `output` in `format`; returns
/// its record.
pub fn save(
    images: &Images,
    name: &str,
    format: ArchiveFormat,
    output: &Path,
) -> Result<ImageRecord, ImageError> {
    // Shared: no garbage collection removes a blob while it is copied.
    let _lock = images.shared_lock()?;
    let record = images.records.find(name)?;
    let temp = temp_path_for(output);
    let written = write_archive(images, &record, format, &temp)
        .and_then(|()| fs::rename(&temp, output).map_err(io_error("rename", output)));
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written.map(|()| record)
}

fn io_error<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ImageError + 'a {
    move |source| ImageError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

fn write_archive(
    images: &Images,
    record: &ImageRecord,
    format: ArchiveFormat,
    path: &Path,
) -> Result<(), ImageError> {
    let file = File::create(path).map_err(io_error("create", path))?;
    let mut archive = Archive {
        builder: tar::Builder::new(BufWriter::with_capacity(1 << 20, file)),
        path,
    };
    match format {
        ArchiveFormat::OciArchive => write_oci(images, record, &mut archive)?,
        ArchiveFormat::DockerArchive => write_docker(images, record, &mut archive, path)?,
    }
    let file = archive
        .builder
        .into_inner()
        .map_err(io_error("write", path))?
        .into_inner()
        .map_err(|e| io_error("write", path)(e.into_error()))?;
    file.sync_all().map_err(io_error("fsync", path))
}

/// A tar being written to `path`, with deterministic headers.
struct Archive<'a> {
    builder: tar::Builder<BufWriter<File>>,
    path: &'a Path,
}

impl Archive<'_> {
    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_size(size);
        header
    }

    fn dir(&mut self, name: &str) -> Result<(), ImageError> {
        let mut header = Self::header(tar::EntryType::Directory, 0o755, 0);
        self.builder
            .append_data(&mut header, name, io::empty())
            .map_err(io_error("write", self.path))
    }

    fn file(&mut self, name: &str, size: u64, data: impl Read) -> Result<(), ImageError> {
        let mut header = Self::header(tar::EntryType::Regular, 0o644, size);
        self.builder
            .append_data(&mut header, name, data)
            .map_err(io_error("write", self.path))
    }

    fn bytes(&mut self, name: &str, bytes: &[u8]) -> Result<(), ImageError> {
        self.file(name, bytes.len() as u64, bytes)
    }

    /// A blob of the store under `name`, streamed.
    fn blob(&mut self, images: &Images, name: &str, digest: &Digest) -> Result<(), ImageError> {
        let size = images.store.size(digest)?;
        let blob = images.store.open_blob(digest)?;
        self.file(name, size, blob.take(size))
    }
}

/// The reference a record's name is, when it is one (not a local source).
fn reference_of(record: &ImageRecord) -> Option<Reference> {
    match ImageSource::parse(&record.name) {
        Ok(ImageSource::Registry(reference)) => Some(reference),
        _ => None,
    }
}

/// The platform object of `os/architecture[/variant]`.
fn platform_json(platform: &str) -> serde_json::Value {
    let mut parts = platform.splitn(3, '/');
    let mut value = json!({
        "os": parts.next().unwrap_or_default(),
        "architecture": parts.next().unwrap_or_default(),
    });
    if let Some(variant) = parts.next() {
        value["variant"] = json!(variant);
    }
    value
}

/// index.json of an OCI layout holding the one manifest, named as
/// containerd names what it exports (full name, and the tag as the OCI ref
/// name) when the image has a reference for a name.
pub fn oci_index(
    record: &ImageRecord,
    manifest_media_type: &str,
    manifest_size: u64,
) -> serde_json::Value {
    let mut descriptor = json!({
        "mediaType": manifest_media_type,
        "digest": record.manifest.to_string(),
        "size": manifest_size,
        "platform": platform_json(&record.platform),
    });
    if let Some(reference) = reference_of(record) {
        let mut annotations = json!({ CONTAINERD_IMAGE_NAME: reference.to_string() });
        if let Some(tag) = &reference.tag {
            annotations[oci::REF_NAME] = json!(tag);
        }
        descriptor["annotations"] = annotations;
    }
    json!({
        "schemaVersion": 2,
        "mediaType": oci::OCI_INDEX,
        "manifests": [descriptor],
    })
}

fn write_oci(
    images: &Images,
    record: &ImageRecord,
    archive: &mut Archive<'_>,
) -> Result<(), ImageError> {
    let manifest = images.store.read_json_blob(&record.manifest)?;
    let media_type =
        oci::declared_media_type(&manifest).unwrap_or_else(|| oci::OCI_MANIFEST.to_string());
    let index = oci_index(record, &media_type, manifest.len() as u64);
    // The layout's two small files first: a reader that streams finds
    // what to resolve before the blobs.
    archive.bytes("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    archive.bytes("index.json", &to_json(&index)?)?;
    archive.dir("blobs/")?;
    archive.dir("blobs/sha256/")?;
    let mut written = std::collections::BTreeSet::new();
    let blobs = [&record.manifest, &record.config]
        .into_iter()
        .chain(record.layers.iter().map(|l| &l.digest));
    for digest in blobs {
        if written.insert(digest.clone()) {
            archive.blob(images, &format!("blobs/sha256/{}", digest.hex()), digest)?;
        }
    }
    Ok(())
}

fn to_json(value: &serde_json::Value) -> Result<Vec<u8>, ImageError> {
    serde_json::to_vec(value).map_err(|e| ImageError::Invalid(e.to_string()))
}

/// manifest.json of a docker archive: the config, the repo tags, and the
/// layer tars bottom first.
pub fn docker_manifest(record: &ImageRecord) -> serde_json::Value {
    let repo_tags: Vec<String> = reference_of(record)
        .filter(|reference| reference.tag.is_some() && reference.digest.is_none())
        .map(|reference| reference.to_string())
        .into_iter()
        .collect();
    json!([{
        "Config": format!("{}.json", record.config.hex()),
        "RepoTags": repo_tags,
        "Layers": record
            .layers
            .iter()
            .map(|l| format!("{}.tar", l.diff_id.hex()))
            .collect::<Vec<_>>(),
    }])
}

fn write_docker(
    images: &Images,
    record: &ImageRecord,
    archive: &mut Archive<'_>,
    path: &Path,
) -> Result<(), ImageError> {
    archive.blob(
        images,
        &format!("{}.json", record.config.hex()),
        &record.config,
    )?;
    let mut written = std::collections::BTreeSet::new();
    for layer in &record.layers {
        if !written.insert(layer.diff_id.clone()) {
            continue; // a repeated layer is one file, named twice
        }
        let name = format!("{}.tar", layer.diff_id.hex());
        let compression = Compression::from_media_type(&layer.media_type).ok_or_else(|| {
            ImageError::Invalid(format!(
                "layer {} has media type {}, which berth cannot write as a plain tar",
                layer.digest, layer.media_type
            ))
        })?;
        if compression == Compression::None {
            archive.blob(images, &name, &layer.digest)?;
            continue;
        }
        // docker archives hold plain tars, and a tar member's size comes
        // before its data: decompress into a temp file first.
        let (plain, size) = decompress_to_temp(images, layer, compression, path)?;
        archive.file(&name, size, (&plain.file).take(size))?;
    }
    archive.bytes("manifest.json", &to_json(&docker_manifest(record))?)?;
    Ok(())
}

/// A temp file, open for reading, removed when dropped.
struct TempFile {
    path: PathBuf,
    file: File,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Decompresses a layer blob into a temp file beside `near`, checking that
/// what comes out is the layer's diff id (docker load checks it too).
fn decompress_to_temp(
    images: &Images,
    layer: &LayerRecord,
    compression: Compression,
    near: &Path,
) -> Result<(TempFile, u64), ImageError> {
    let path = temp_path_for(&near.with_extension("layer"));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(io_error("create", &path))?;
    let mut temp = TempFile { path, file };
    let (size, diff_id) = {
        let mut writer = HashingWriter {
            inner: BufWriter::with_capacity(1 << 20, &temp.file),
            hasher: Sha256::new(),
            count: 0,
        };
        let blob = images.store.open_blob(&layer.digest)?;
        io::copy(&mut compression.decoder(blob), &mut writer).map_err(|source| ImageError::Io {
            op: "decompress layer",
            path: images.store.blob_path(&layer.digest),
            source,
        })?;
        writer
            .inner
            .flush()
            .map_err(io_error("write", &temp.path))?;
        (writer.count, Digest::from_hasher(writer.hasher))
    };
    if diff_id != layer.diff_id {
        return Err(ImageError::Invalid(format!(
            "layer {} decompresses to {diff_id}, not the diff id {} its config names",
            layer.digest, layer.diff_id
        )));
    }
    temp.file.rewind().map_err(io_error("rewind", &temp.path))?;
    Ok((temp, size))
}
