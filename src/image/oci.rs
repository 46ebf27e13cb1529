//! OCI and Docker image documents: media types, the host platform, and the
//! walk from what a name points to (an index or a manifest) to this host's
//! manifest, its config and its layers.

use std::fmt;

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};

use super::digest::{chain_ids, Digest};
use super::record::LayerRecord;
use super::store::{StoreError, MAX_JSON_BLOB};
use super::ImageError;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// The annotation OCI layouts use for a manifest's tag.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// An OS and CPU architecture, in Go's names (`linux/amd64`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// The platform this berth binary runs on.
    pub fn host() -> Self {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: None,
        }
    }

    fn matches(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        self.os == os
            && self.architecture == architecture
            && (self.variant.is_none() || self.variant.as_deref() == variant)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// An image resolved to one platform: everything a record needs.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    pub target: Digest,
    pub target_media_type: String,
    pub manifest: Digest,
    pub config: Digest,
    pub config_size: u64,
    pub platform: Platform,
    pub layers: Vec<LayerRecord>,
}

impl ResolvedImage {
    /// The record that names this image.
    pub fn into_record(self, name: String, source: String) -> super::record::ImageRecord {
        super::record::ImageRecord {
            name,
            source,
            target: self.target,
            target_media_type: self.target_media_type,
            manifest: self.manifest,
            config: self.config,
            platform: self.platform.to_string(),
            layers: self.layers,
            created: crate::state::clock::unix_secs(),
        }
    }
}

pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

/// Reads the `mediaType` a JSON document declares, if any.
pub fn declared_media_type(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
    }
    let probe: Probe = serde_json::from_slice(bytes).ok()?;
    probe
        .media_type
        .or_else(|| probe.manifests.map(|_| OCI_INDEX.to_string()))
}

pub fn descriptor_digest(descriptor: &Descriptor) -> Result<Digest, ImageError> {
    descriptor
        .digest()
        .to_string()
        .parse()
        .map_err(|e: super::digest::DigestError| ImageError::Invalid(e.to_string()))
}

/// Returns a document blob's bytes by digest, media type and the size its
/// descriptor declares (when there is one), verified. It refuses a blob
/// longer than the declared size or than [`MAX_JSON_BLOB`], and reads no
/// further where its source lets it stop (see `pull` for manifests).
pub type FetchBlob<'a> = dyn FnMut(&Digest, &str, Option<u64>) -> Result<Vec<u8>, ImageError> + 'a;

/// Refuses a document whose descriptor declares more than a JSON document
/// may hold, before anything of it is fetched.
fn check_document_size(digest: &Digest, size: Option<u64>) -> Result<(), ImageError> {
    match size {
        Some(size) if size > MAX_JSON_BLOB => Err(StoreError::TooLarge {
            digest: digest.clone(),
            size: Some(size),
        }
        .into()),
        _ => Ok(()),
    }
}

/// Walks from `target` (whose descriptor declares `target_size`, when
/// there is a descriptor) to the host platform's manifest and its layers.
/// `fetch` returns a blob's bytes, verified against its digest; no document
/// declared larger than [`MAX_JSON_BLOB`] is fetched.
pub fn resolve(
    target: &Digest,
    target_media_type: &str,
    target_size: Option<u64>,
    platform: &Platform,
    fetch: &mut FetchBlob<'_>,
) -> Result<ResolvedImage, ImageError> {
    check_document_size(target, target_size)?;
    let target_bytes = fetch(target, target_media_type, target_size)?;
    let media_type =
        declared_media_type(&target_bytes).unwrap_or_else(|| target_media_type.to_string());
    let (manifest_digest, manifest_bytes) = if is_index(&media_type) {
        let index = ImageIndex::from_reader(&target_bytes[..])
            .map_err(|e| ImageError::Invalid(format!("image index {target}: {e}")))?;
        let chosen = choose_platform(&index, platform, target)?;
        let digest = descriptor_digest(chosen)?;
        let size = Some(chosen.size());
        check_document_size(&digest, size)?;
        let bytes = fetch(&digest, chosen.media_type().as_ref(), size)?;
        (digest, bytes)
    } else {
        (target.clone(), target_bytes)
    };
    let manifest = ImageManifest::from_reader(&manifest_bytes[..])
        .map_err(|e| ImageError::Invalid(format!("image manifest {manifest_digest}: {e}")))?;
    let config_digest = descriptor_digest(manifest.config())?;
    let config_size = Some(manifest.config().size());
    check_document_size(&config_digest, config_size)?;
    let config_bytes = fetch(
        &config_digest,
        manifest.config().media_type().as_ref(),
        config_size,
    )?;
    let config = ImageConfiguration::from_reader(&config_bytes[..])
        .map_err(|e| ImageError::Invalid(format!("image config {config_digest}: {e}")))?;
    let resolved_platform = Platform {
        os: config.os().to_string(),
        architecture: config.architecture().to_string(),
        variant: config.variant().clone(),
    };
    let layers = layer_records(&manifest, &config, &manifest_digest)?;
    Ok(ResolvedImage {
        target: target.clone(),
        target_media_type: media_type,
        manifest: manifest_digest,
        config: config_digest,
        config_size: config_bytes.len() as u64,
        platform: resolved_platform,
        layers,
    })
}

fn choose_platform<'a>(
    index: &'a ImageIndex,
    platform: &Platform,
    target: &Digest,
) -> Result<&'a Descriptor, ImageError> {
    let chosen = index.manifests().iter().find(|descriptor| {
        descriptor.platform().as_ref().is_some_and(|p| {
            platform.matches(
                &p.os().to_string(),
                &p.architecture().to_string(),
                p.variant().as_deref(),
            )
        })
    });
    chosen.ok_or_else(|| {
        let available: Vec<String> = index
            .manifests()
            .iter()
            .filter_map(|d| d.platform().as_ref())
            .map(|p| format!("{}/{}", p.os(), p.architecture()))
            .collect();
        ImageError::NoPlatform {
            target: target.clone(),
            wanted: platform.to_string(),
            available,
        }
    })
}

fn layer_records(
    manifest: &ImageManifest,
    config: &ImageConfiguration,
    manifest_digest: &Digest,
) -> Result<Vec<LayerRecord>, ImageError> {
    let diff_ids: Vec<Digest> = config
        .rootfs()
        .diff_ids()
        .iter()
        .map(|d| {
            d.parse().map_err(|e: super::digest::DigestError| {
                ImageError::Invalid(format!("image config diff id: {e}"))
            })
        })
        .collect::<Result<_, _>>()?;
    if diff_ids.len() != manifest.layers().len() {
        return Err(ImageError::Invalid(format!(
            "manifest {manifest_digest} lists {} layers but its config has {} diff ids",
            manifest.layers().len(),
            diff_ids.len()
        )));
    }
    let chains = chain_ids(&diff_ids);
    manifest
        .layers()
        .iter()
        .zip(diff_ids)
        .zip(chains)
        .map(|((descriptor, diff_id), chain_id)| {
            let media_type = descriptor.media_type().to_string();
            if !is_layer_media_type(&media_type) {
                return Err(ImageError::Invalid(format!(
                    "layer {} has media type {media_type}, which berth cannot unpack",
                    descriptor.digest()
                )));
            }
            Ok(LayerRecord {
                digest: descriptor_digest(descriptor)?,
                media_type,
                size: descriptor.size(),
                diff_id,
                chain_id,
            })
        })
        .collect()
}

pub fn is_layer_media_type(media_type: &str) -> bool {
    matches!(
        media_type,
        OCI_LAYER_TAR
            | OCI_LAYER_GZIP
            | OCI_LAYER_ZSTD
            | DOCKER_LAYER_GZIP
            | "application/vnd.docker.image.rootfs.diff.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
    )
}
