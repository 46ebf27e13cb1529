//! Import from local sources: an OCI image layout directory, an OCI archive
//! (a tar of a layout) and a docker archive (`docker save`). Every blob is
//! verified against its digest on the way into the content store, and the
//! layers are unpacked (by the unpacker the caller passes) before the record
//! is written, so a bad layer is refused at import time.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use oci_spec::image::ImageIndex;
use serde::Deserialize;

use super::archive::{self, Member, MemberError};
use super::digest::Digest;
use super::limits::ImageLimits;
use super::oci::{self, Platform, ResolvedImage};
use super::record::{ImageRecord, LayerRecord};
use super::store::{ContentStore, StoreError, MAX_JSON_BLOB};
use super::{ImageError, Images};
use crate::image::{LayerUnpacker, Progress, ProgressEvent};
use crate::manifest::quantity::ByteSize;
use crate::manifest::reference::ImageSource;

#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The name to record, a reference normalized by the naming rule
    /// ([`image_name`](crate::manifest::reference::image_name)); defaults
    /// to the source itself (`oci-layout:/abs/dir:tag`).
    pub name: Option<String>,
    pub platform: Platform,
    /// The bounds on the image's size (checked on the declared sizes before
    /// copying, and by the unpacker while unpacking).
    pub limits: ImageLimits,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            name: None,
            platform: Platform::host(),
            limits: ImageLimits::default(),
        }
    }
}

fn source_error(source: &ImageSource, message: impl Into<String>) -> ImageError {
    ImageError::Source {
        source_name: source.to_string(),
        message: message.into(),
    }
}

/// Imports `source`, whose local path the caller has resolved (a relative
/// path is taken as the process sees it).
pub fn import(
    images: &Images,
    source: &ImageSource,
    options: &ImportOptions,
    unpacker: Option<&dyn LayerUnpacker>,
    progress: &dyn Progress,
) -> Result<ImageRecord, ImageError> {
    let _lock = images.shared_lock()?;
    let store = &images.store;
    // A name given is a reference, recorded as the naming rule spells it
    // (`mybusybox` is `docker.io/library/mybusybox:latest`), so that `run`
    // and manifests find it by the same rule; without one the image is
    // named by its source.
    let name = match &options.name {
        Some(name) => crate::manifest::reference::image_name(name)?,
        None => source.to_string(),
    };
    let limits = &options.limits;
    let resolved = match source {
        ImageSource::OciLayout { path, tag } => {
            let resolved = resolve_layout(
                store,
                source,
                path,
                tag.as_deref(),
                &options.platform,
                progress,
            )?;
            // Before the layers are copied: a layer declared larger than
            // the bounds allow costs no disk.
            limits.check_declared(&name, &resolved.layers)?;
            copy_layout_layers(store, path, &resolved.layers, progress)?;
            resolved
        }
        ImageSource::OciArchive { path, tag } => import_oci_archive(
            store,
            source,
            path,
            tag.as_deref(),
            &options.platform,
            progress,
        )?,
        ImageSource::DockerArchive { path } => {
            import_docker_archive(store, source, path, &options.platform, progress)?
        }
        ImageSource::Registry(_) => {
            return Err(source_error(
                source,
                "a registry reference is pulled, not imported (berth image pull)",
            ));
        }
        ImageSource::Rootfs { .. } => {
            return Err(source_error(
                source,
                "a rootfs directory is used as it is, not imported (berth run --rootfs DIR)",
            ));
        }
    };
    limits.check_declared(&name, &resolved.layers)?;
    images.store_resolved(
        resolved.into_record(name, source.to_string()),
        unpacker,
        limits,
        progress,
    )
}

/// What a layout blob holds, which decides how much of it may be read.
#[derive(Clone, Copy)]
enum BlobKind {
    /// A manifest, index or config: at most [`MAX_JSON_BLOB`].
    Document,
    /// A layer: bounded by its declared size (checked against the image's
    /// limits beforehand).
    Layer,
}

/// Reads `dir/blobs/sha256/<hex>` into the store, verified, reading no more
/// than its declared `size` (and for a document, than [`MAX_JSON_BLOB`]).
fn copy_layout_blob(
    store: &ContentStore,
    dir: &Path,
    digest: &Digest,
    size: Option<u64>,
    kind: BlobKind,
    progress: &dyn Progress,
) -> Result<(), ImageError> {
    if store.contains(digest) {
        return Ok(());
    }
    let path = dir.join("blobs/sha256").join(digest.hex());
    let file = File::open(&path).map_err(|source| ImageError::Io {
        op: "open blob",
        path: path.clone(),
        source,
    })?;
    let reader = BufReader::with_capacity(1 << 20, file);
    let stored = match kind {
        BlobKind::Document => store.write_json_blob(digest, size, reader)?,
        BlobKind::Layer => store.write_blob(digest, size, reader)?,
    };
    progress.event(ProgressEvent::Stored {
        digest,
        size: stored,
    });
    Ok(())
}

fn read_small(path: &Path) -> Result<Vec<u8>, ImageError> {
    let io_error = |source| ImageError::Io {
        op: "read",
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io_error)?;
    let mut bytes = Vec::new();
    file.take(MAX_JSON_BLOB + 1)
        .read_to_end(&mut bytes)
        .map_err(io_error)?;
    if bytes.len() as u64 > MAX_JSON_BLOB {
        return Err(ImageError::Invalid(format!(
            "{} is larger than the {} bound on a JSON document",
            path.display(),
            ByteSize(MAX_JSON_BLOB)
        )));
    }
    Ok(bytes)
}

fn check_layout_version(source: &ImageSource, bytes: &[u8]) -> Result<(), ImageError> {
    #[derive(Deserialize)]
    struct Layout {
        #[serde(rename = "imageLayoutVersion")]
        version: String,
    }
    let layout: Layout = serde_json::from_slice(bytes)
        .map_err(|e| source_error(source, format!("oci-layout file: {e}")))?;
    if !layout.version.starts_with("1.") {
        return Err(source_error(
            source,
            format!("unsupported image layout version {}", layout.version),
        ));
    }
    Ok(())
}

/// Picks the manifest (or index) a tag names in a layout's index.json:
/// its digest, media type and declared size.
fn select_from_index(
    source: &ImageSource,
    index_bytes: &[u8],
    tag: Option<&str>,
) -> Result<(Digest, String, u64), ImageError> {
    let index = ImageIndex::from_reader(index_bytes)
        .map_err(|e| source_error(source, format!("index.json: {e}")))?;
    let tag_of = |d: &oci_spec::image::Descriptor| {
        d.annotations()
            .as_ref()
            .and_then(|a| a.get(oci::REF_NAME))
            .cloned()
    };
    let tags: Vec<String> = index.manifests().iter().filter_map(tag_of).collect();
    let chosen = match tag {
        Some(tag) => index.manifests().iter().find(|d| {
            tag_of(d).is_some_and(|name| {
                name == tag || name.rsplit_once(':').is_some_and(|(_, t)| t == tag)
            })
        }),
        None if index.manifests().len() == 1 => index.manifests().first(),
        None => index
            .manifests()
            .iter()
            .find(|d| tag_of(d).as_deref() == Some("latest")),
    };
    let chosen = chosen.ok_or_else(|| {
        let wanted = tag.map_or_else(
            || "no tag was given and there is no single image".to_string(),
            |t| format!("no image is tagged {t:?}"),
        );
        source_error(
            source,
            format!(
                "{wanted} (tags: {})",
                if tags.is_empty() {
                    "none".to_string()
                } else {
                    tags.join(", ")
                }
            ),
        )
    })?;
    Ok((
        oci::descriptor_digest(chosen)?,
        chosen.media_type().to_string(),
        chosen.size(),
    ))
}

/// Resolves a layout's image for `platform`, copying its documents (not
/// its layers) into the store.
fn resolve_layout(
    store: &ContentStore,
    source: &ImageSource,
    dir: &Path,
    tag: Option<&str>,
    platform: &Platform,
    progress: &dyn Progress,
) -> Result<ResolvedImage, ImageError> {
    if !dir.join("oci-layout").is_file() {
        return Err(source_error(
            source,
            format!(
                "{} is not an OCI image layout (it has no oci-layout file)",
                dir.display()
            ),
        ));
    }
    check_layout_version(source, &read_small(&dir.join("oci-layout"))?)?;
    let (target, media_type, size) =
        select_from_index(source, &read_small(&dir.join("index.json"))?, tag)?;
    oci::resolve(
        &target,
        &media_type,
        Some(size),
        platform,
        &mut |digest, _, size| {
            copy_layout_blob(store, dir, digest, size, BlobKind::Document, progress)?;
            Ok(store.read_json_blob(digest)?)
        },
    )
}

/// Copies a layout's layers into the store, each no longer than declared.
fn copy_layout_layers(
    store: &ContentStore,
    dir: &Path,
    layers: &[LayerRecord],
    progress: &dyn Progress,
) -> Result<(), ImageError> {
    for layer in layers {
        let size = Some(layer.size);
        copy_layout_blob(store, dir, &layer.digest, size, BlobKind::Layer, progress)?;
    }
    Ok(())
}

/// What an archive member is, its name normalized ([`archive`]).
fn member_of(
    source: &ImageSource,
    entry: &tar::Entry<'_, impl Read>,
) -> Result<Member, ImageError> {
    let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
    let link = entry
        .link_name_bytes()
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
    Member::classify(&name, entry.header().entry_type(), link.as_deref())
        .map_err(|e| member_error(source, e))
}

fn member_error(source: &ImageSource, error: MemberError) -> ImageError {
    source_error(source, error.to_string())
}

/// The members of an OCI archive berth reads; the rest is ignored.
fn is_oci_layout_file(name: &str) -> bool {
    name == "index.json" || name == "oci-layout" || name.starts_with("blobs/sha256/")
}

fn open_archive(
    source: &ImageSource,
    path: &Path,
) -> Result<tar::Archive<BufReader<File>>, ImageError> {
    let file = File::open(path)
        .map_err(|e| source_error(source, format!("cannot open {}: {e}", path.display())))?;
    Ok(tar::Archive::new(BufReader::with_capacity(1 << 20, file)))
}

fn archive_error(source: &ImageSource, e: std::io::Error) -> ImageError {
    source_error(source, format!("reading the archive: {e}"))
}

fn read_entry_small(source: &ImageSource, entry: &mut impl Read) -> Result<Vec<u8>, ImageError> {
    let mut bytes = Vec::new();
    entry
        .take(MAX_JSON_BLOB + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| archive_error(source, e))?;
    if bytes.len() as u64 > MAX_JSON_BLOB {
        return Err(source_error(
            source,
            format!(
                "a JSON file in the archive is larger than the {} bound on a JSON document",
                ByteSize(MAX_JSON_BLOB)
            ),
        ));
    }
    Ok(bytes)
}

fn import_oci_archive(
    store: &ContentStore,
    source: &ImageSource,
    path: &Path,
    tag: Option<&str>,
    platform: &Platform,
    progress: &dyn Progress,
) -> Result<ResolvedImage, ImageError> {
    // One pass, in whatever order the producer wrote: every blob goes into
    // the store (verified against its name) as it comes, and index.json is
    // read when it comes; the image is resolved from the store afterwards.
    let mut archive = open_archive(source, path)?;
    let mut index_bytes = None;
    let mut layout_bytes = None;
    for entry in archive.entries().map_err(|e| archive_error(source, e))? {
        let mut entry = entry.map_err(|e| archive_error(source, e))?;
        let member = member_of(source, &entry)?;
        if !member.name().is_some_and(is_oci_layout_file) {
            continue;
        }
        let Some(name) = member.into_file().map_err(|e| member_error(source, e))? else {
            continue;
        };
        if name == "index.json" {
            index_bytes = Some(read_entry_small(source, &mut entry)?);
        } else if name == "oci-layout" {
            layout_bytes = Some(read_entry_small(source, &mut entry)?);
        } else if let Some(hex) = name.strip_prefix("blobs/sha256/") {
            let digest = Digest::from_hex(hex).map_err(|e| source_error(source, e.to_string()))?;
            let size = entry.header().size().ok();
            if !store.contains(&digest) {
                let stored = store.write_blob(&digest, size, &mut entry)?;
                progress.event(ProgressEvent::Stored {
                    digest: &digest,
                    size: stored,
                });
            }
        }
    }
    let layout_bytes = layout_bytes
        .ok_or_else(|| source_error(source, "not an OCI archive: it has no oci-layout file"))?;
    check_layout_version(source, &layout_bytes)?;
    let index_bytes = index_bytes
        .ok_or_else(|| source_error(source, "not an OCI archive: it has no index.json"))?;
    let (target, media_type, size) = select_from_index(source, &index_bytes, tag)?;
    let resolved = oci::resolve(
        &target,
        &media_type,
        Some(size),
        platform,
        &mut |digest, _, _| match store.read_json_blob(digest) {
            Err(StoreError::Missing(_)) => Err(source_error(
                source,
                format!("the archive lacks blob {digest}"),
            )),
            read => Ok(read?),
        },
    )?;
    for layer in &resolved.layers {
        if !store.contains(&layer.digest) {
            return Err(source_error(
                source,
                format!("the archive lacks layer {}", layer.digest),
            ));
        }
    }
    Ok(resolved)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// A docker archive holds a `manifest.json` naming a config file and layer
/// tars; berth stores them as blobs and writes the OCI manifest docker never
/// kept, so the image is an ordinary OCI image from then on.
fn import_docker_archive(
    store: &ContentStore,
    source: &ImageSource,
    path: &Path,
    platform: &Platform,
    progress: &dyn Progress,
) -> Result<ResolvedImage, ImageError> {
    // First pass: manifest.json (first or last, as the producer wrote it)
    // and the links, which name a layer docker saved once already.
    let mut manifest_bytes = None;
    let mut links = BTreeMap::new();
    for entry in open_archive(source, path)?
        .entries()
        .map_err(|e| archive_error(source, e))?
    {
        let mut entry = entry.map_err(|e| archive_error(source, e))?;
        match member_of(source, &entry)? {
            Member::File(name) if name == "manifest.json" && manifest_bytes.is_none() => {
                manifest_bytes = Some(read_entry_small(source, &mut entry)?);
            }
            link @ Member::Link { .. } => {
                let name = link.name().unwrap_or_default().to_string();
                links.insert(name, link);
            }
            other if other.name() == Some("manifest.json") => {
                other.into_file().map_err(|e| member_error(source, e))?;
            }
            _ => {}
        }
    }
    let manifest_bytes = manifest_bytes
        .ok_or_else(|| source_error(source, "not a docker archive: it has no manifest.json"))?;
    let entries: Vec<DockerManifestEntry> = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| source_error(source, format!("manifest.json: {e}")))?;
    let wanted = entries
        .into_iter()
        .next()
        .ok_or_else(|| source_error(source, "manifest.json lists no image"))?;
    if let Some(tags) = &wanted.repo_tags {
        tracing::debug!(?tags, "docker archive tags");
    }
    // The file each name of manifest.json stands for, through links.
    let file_of = |name: &str| -> Result<String, ImageError> {
        let name = archive::normalize(name).map_err(|e| member_error(source, e))?;
        archive::follow_links(&links, &name).map_err(|e| member_error(source, e))
    };
    let config_file = file_of(&wanted.config)?;
    let layer_files = wanted
        .layers
        .iter()
        .map(|name| file_of(name))
        .collect::<Result<Vec<_>, _>>()?;

    // Second pass: store the config and every layer, hashing as they stream.
    let mut stored: BTreeMap<String, (Digest, u64, [u8; 4])> = BTreeMap::new();
    let mut config_bytes = None;
    for entry in open_archive(source, path)?
        .entries()
        .map_err(|e| archive_error(source, e))?
    {
        let mut entry = entry.map_err(|e| archive_error(source, e))?;
        let Member::File(name) = member_of(source, &entry)? else {
            continue;
        };
        if name == config_file && config_bytes.is_none() {
            config_bytes = Some(read_entry_small(source, &mut entry)?);
        } else if layer_files.contains(&name) && !stored.contains_key(&name) {
            let (digest, size, magic) = store_unknown(store, &mut entry)?;
            progress.event(ProgressEvent::Stored {
                digest: &digest,
                size,
            });
            stored.insert(name, (digest, size, magic));
        }
    }
    let config_bytes = config_bytes.ok_or_else(|| {
        source_error(
            source,
            format!("the archive lacks its config {}", wanted.config),
        )
    })?;
    let config_digest = store.write_bytes(&config_bytes)?;
    let mut layers = Vec::new();
    for (name, file) in wanted.layers.iter().zip(&layer_files) {
        let (digest, size, magic) = stored
            .get(file)
            .ok_or_else(|| source_error(source, format!("the archive lacks layer {name}")))?;
        let media_type = match crate::image::Compression::sniff(magic) {
            crate::image::Compression::Gzip => oci::OCI_LAYER_GZIP,
            crate::image::Compression::Zstd => oci::OCI_LAYER_ZSTD,
            crate::image::Compression::None => oci::OCI_LAYER_TAR,
        };
        layers.push(serde_json::json!({"mediaType": media_type, "digest": digest.to_string(), "size": size}));
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": oci::OCI_MANIFEST,
        "config": {"mediaType": oci::OCI_CONFIG, "digest": config_digest.to_string(), "size": config_bytes.len()},
        "layers": layers,
    });
    let manifest_bytes =
        serde_json::to_vec(&manifest).map_err(|e| ImageError::Invalid(e.to_string()))?;
    let manifest_digest = store.write_bytes(&manifest_bytes)?;
    oci::resolve(
        &manifest_digest,
        oci::OCI_MANIFEST,
        Some(manifest_bytes.len() as u64),
        platform,
        &mut |digest, _, _| Ok(store.read_json_blob(digest)?),
    )
}

/// Stores a layer whose digest is not known in advance; also returns its
/// first bytes, to tell its compression.
fn store_unknown(
    store: &ContentStore,
    reader: &mut impl Read,
) -> Result<(Digest, u64, [u8; 4]), ImageError> {
    let mut magic = [0u8; 4];
    let mut head = 0;
    while head < magic.len() {
        match reader.read(&mut magic[head..]) {
            Ok(0) => break,
            Ok(n) => head += n,
            Err(source) => {
                return Err(ImageError::Io {
                    op: "read layer",
                    path: PathBuf::from("<archive>"),
                    source,
                })
            }
        }
    }
    let (digest, size) = store.write_unknown((&magic[..head]).chain(reader))?;
    Ok((digest, size, magic))
}
