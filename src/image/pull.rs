//! Registry pull (OCI distribution spec) with oci-client: anonymous, bearer
//! token and basic auth (from a docker `config.json`), blobs fetched in
//! parallel into resumable ingest files, every byte verified.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use futures_util::StreamExt;
use oci_client::client::{BlobResponse, ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::Client;
use serde::Deserialize;

use super::digest::Digest;
use super::limits::ImageLimits;
use super::oci::{self, Platform};
use super::record::{ImageRecord, LayerRecord};
use super::request_error;
use super::store::{StoreError, MAX_JSON_BLOB};
use super::{ImageError, Images};
use crate::image::{LayerUnpacker, Progress, ProgressEvent};
use crate::manifest::reference::Reference;

#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Registries (`host[:port]`) that may be reached over plain HTTP.
    pub insecure_registries: Vec<String>,
    /// A docker `config.json` with credentials; default `$DOCKER_CONFIG/config.json`
    /// or `~/.docker/config.json`.
    pub credentials_file: Option<PathBuf>,
    pub platform: Platform,
    /// Blobs fetched at once.
    pub parallel: usize,
    /// The bounds on the image's size (checked on the declared sizes before
    /// fetching, and by the unpacker while unpacking).
    pub limits: ImageLimits,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            insecure_registries: Vec::new(),
            credentials_file: None,
            platform: Platform::host(),
            parallel: 4,
            limits: ImageLimits::default(),
        }
    }
}

const MANIFEST_TYPES: [&str; 4] = [
    oci::OCI_INDEX,
    oci::OCI_MANIFEST,
    oci::DOCKER_LIST,
    oci::DOCKER_MANIFEST,
];

fn pull_error(reference: &Reference, message: impl std::fmt::Display) -> ImageError {
    ImageError::Pull {
        reference: reference.to_string(),
        message: message.to_string(),
    }
}

/// A failed request to the registry `remote` names, by its root cause
/// (see [`request_error::describe`]).
fn request_error(
    reference: &Reference,
    remote: &oci_client::Reference,
    error: &(dyn std::error::Error + 'static),
) -> ImageError {
    let host = request_error::host_of(remote.resolve_registry());
    pull_error(reference, request_error::describe(host, error))
}

/// A registry on the loopback interface is this host: plain HTTP is safe.
pub fn is_loopback_registry(registry: &str) -> bool {
    let host = registry
        .strip_prefix('[')
        .and_then(|rest| rest.split_once(']').map(|(h, _)| h))
        .unwrap_or_else(|| registry.rsplit_once(':').map_or(registry, |(h, _)| h));
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Pulls `reference`, stores it, unpacks it (with `unpacker`, when given)
/// and records it under its normalized name.
pub fn pull(
    images: &Images,
    reference: &Reference,
    options: &PullOptions,
    unpacker: Option<&dyn LayerUnpacker>,
    progress: &dyn Progress,
) -> Result<ImageRecord, ImageError> {
    // One crypto provider for the process; a second install is a harmless no-op.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| pull_error(reference, format!("start async runtime: {e}")))?;
    let _lock = images.shared_lock()?;
    let mut insecure = options.insecure_registries.clone();
    if is_loopback_registry(&reference.registry) {
        insecure.push(reference.registry.clone());
    }
    let client = Client::new(ClientConfig {
        protocol: ClientProtocol::HttpsExcept(insecure),
        ..ClientConfig::default()
    });
    let auth = credentials_for(&reference.registry, options.credentials_file.as_deref())?;
    let remote = oci_client::Reference::try_from(reference.to_string().as_str())
        .map_err(|e| pull_error(reference, e))?;

    let (target, target_media_type) =
        runtime.block_on(fetch_target(&client, &remote, &auth, reference, images))?;
    let store = &images.store;
    let resolved = oci::resolve(
        &target,
        &target_media_type,
        None,
        &options.platform,
        &mut |digest, media_type, size| {
            if !store.contains(digest) {
                let wanted = Wanted {
                    digest,
                    media_type,
                    size,
                };
                runtime.block_on(fetch_document(
                    &client, &remote, &auth, reference, &wanted, images,
                ))?;
            }
            Ok(store.read_json_blob(digest)?)
        },
    )?;
    // Before any layer is fetched: a layer declared larger than the bounds
    // allow costs no disk.
    options
        .limits
        .check_declared(&reference.to_string(), &resolved.layers)?;
    runtime.block_on(fetch_layers(
        &client,
        &remote,
        reference,
        &resolved.layers,
        images,
        options.parallel,
        progress,
    ))?;
    let record = resolved.into_record(reference.to_string(), reference.to_string());
    images.store_resolved(record, unpacker, &options.limits, progress)
}

/// Refuses a JSON document over [`MAX_JSON_BLOB`] or over its declared
/// size. oci-client reads a manifest whole before berth sees it, so for
/// manifests this bounds what is stored and parsed, not what was received.
fn check_document(
    reference: &Reference,
    digest: &Digest,
    len: usize,
    declared: Option<u64>,
) -> Result<(), ImageError> {
    let len = len as u64;
    if len > MAX_JSON_BLOB {
        return Err(pull_error(
            reference,
            StoreError::TooLarge {
                digest: digest.clone(),
                size: Some(len),
            },
        ));
    }
    match declared {
        Some(declared) if len > declared => Err(pull_error(
            reference,
            StoreError::TooLong {
                digest: digest.clone(),
                declared,
            },
        )),
        _ => Ok(()),
    }
}

/// Appends `chunk` to `bytes` unless that takes them past `bound`.
fn append_within(bytes: &mut Vec<u8>, chunk: &[u8], bound: u64) -> bool {
    if (bytes.len() + chunk.len()) as u64 > bound {
        return false;
    }
    bytes.extend_from_slice(chunk);
    true
}

/// Fetches what the reference names (an index or a manifest), verifies it
/// against the digest the registry reports and the reference's own digest.
async fn fetch_target(
    client: &Client,
    remote: &oci_client::Reference,
    auth: &RegistryAuth,
    reference: &Reference,
    images: &Images,
) -> Result<(Digest, String), ImageError> {
    let (bytes, reported) = client
        .pull_manifest_raw(remote, auth, &MANIFEST_TYPES)
        .await
        .map_err(|e| request_error(reference, remote, &e))?;
    let actual = Digest::of(&bytes);
    check_document(reference, &actual, bytes.len(), None)?;
    if let Some(wanted) = &reference.digest {
        if actual.to_string() != *wanted {
            return Err(pull_error(
                reference,
                format!("the registry served {actual}, not the requested {wanted}"),
            ));
        }
    }
    if !reported.is_empty() && reported != actual.to_string() {
        return Err(pull_error(
            reference,
            format!("the registry says the manifest is {reported}, but its content is {actual}"),
        ));
    }
    images.store.write_bytes(&bytes)?;
    let media_type =
        oci::declared_media_type(&bytes).unwrap_or_else(|| oci::OCI_MANIFEST.to_string());
    Ok((actual, media_type))
}

/// A document a descriptor names.
struct Wanted<'a> {
    digest: &'a Digest,
    media_type: &'a str,
    /// What the descriptor declares (at most [`MAX_JSON_BLOB`]: checked
    /// before the fetch).
    size: Option<u64>,
}

/// Fetches a platform manifest or a config by digest, verified and bounded.
async fn fetch_document(
    client: &Client,
    remote: &oci_client::Reference,
    auth: &RegistryAuth,
    reference: &Reference,
    wanted: &Wanted<'_>,
    images: &Images,
) -> Result<(), ImageError> {
    let digest = wanted.digest;
    let bytes = if MANIFEST_TYPES.contains(&wanted.media_type) {
        let by_digest = remote.clone_with_digest(digest.to_string());
        let bytes = client
            .pull_manifest_raw(&by_digest, auth, &MANIFEST_TYPES)
            .await
            .map_err(|e| request_error(reference, remote, &e))?
            .0
            .to_vec();
        check_document(reference, digest, bytes.len(), wanted.size)?;
        bytes
    } else {
        fetch_config(client, remote, reference, wanted).await?
    };
    if Digest::of(&bytes) != *digest {
        return Err(pull_error(
            reference,
            format!("blob {digest} does not match its content"),
        ));
    }
    images.store.write_bytes(&bytes)?;
    Ok(())
}

/// Streams a config into memory, stopping as soon as the registry sends
/// more than its descriptor declares (or than [`MAX_JSON_BLOB`]).
async fn fetch_config(
    client: &Client,
    remote: &oci_client::Reference,
    reference: &Reference,
    wanted: &Wanted<'_>,
) -> Result<Vec<u8>, ImageError> {
    let digest = wanted.digest;
    let bound = wanted.size.unwrap_or(MAX_JSON_BLOB).min(MAX_JSON_BLOB);
    let mut chunks = client
        .pull_blob_stream(remote, digest.to_string().as_str())
        .await
        .map_err(|e| request_error(reference, remote, &e))?
        .stream;
    let mut bytes = Vec::new();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| {
            let cause =
                request_error::describe(request_error::host_of(remote.resolve_registry()), &e);
            pull_error(reference, format!("fetching {digest}: {cause}"))
        })?;
        if !append_within(&mut bytes, &chunk, bound) {
            let refused = match wanted.size {
                Some(declared) => StoreError::TooLong {
                    digest: digest.clone(),
                    declared,
                },
                None => StoreError::TooLarge {
                    digest: digest.clone(),
                    size: None,
                },
            };
            return Err(pull_error(reference, refused));
        }
    }
    Ok(bytes)
}

async fn fetch_layers(
    client: &Client,
    remote: &oci_client::Reference,
    reference: &Reference,
    layers: &[LayerRecord],
    images: &Images,
    parallel: usize,
    progress: &dyn Progress,
) -> Result<(), ImageError> {
    let limit = Arc::new(tokio::sync::Semaphore::new(parallel.max(1)));
    let fetches = layers
        .iter()
        .filter(|l| !images.store.contains(&l.digest))
        .map(|layer| {
            let limit = limit.clone();
            async move {
                let _permit = limit
                    .acquire()
                    .await
                    .map_err(|e| pull_error(reference, e))?;
                fetch_layer(client, remote, reference, layer, images, progress).await
            }
        });
    for result in futures_util::future::join_all(fetches).await {
        result?;
    }
    Ok(())
}

/// Streams one layer into a resumable ingest file: after an interruption,
/// the next pull asks only for the bytes it does not have.
async fn fetch_layer(
    client: &Client,
    remote: &oci_client::Reference,
    reference: &Reference,
    layer: &LayerRecord,
    images: &Images,
    progress: &dyn Progress,
) -> Result<(), ImageError> {
    let mut ingest = images.store.start_ingest(&layer.digest, true)?;
    let digest_text = layer.digest.to_string();
    let offset = ingest.offset();
    let stream = if offset > 0 && offset < layer.size {
        match client
            .pull_blob_stream_partial(remote, digest_text.as_str(), offset, None)
            .await
        {
            Ok(BlobResponse::Partial(stream)) => stream,
            Ok(BlobResponse::Full(stream)) => {
                // The registry ignored the range: start over.
                ingest.abort();
                ingest = images.store.start_ingest(&layer.digest, true)?;
                stream
            }
            Err(e) => return Err(request_error(reference, remote, &e)),
        }
    } else {
        if offset > 0 {
            ingest.abort();
            ingest = images.store.start_ingest(&layer.digest, true)?;
        }
        client
            .pull_blob_stream(remote, digest_text.as_str())
            .await
            .map_err(|e| request_error(reference, remote, &e))?
    };
    let mut chunks = stream.stream;
    while let Some(chunk) = chunks.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => {
                ingest.suspend();
                let host = request_error::host_of(remote.resolve_registry());
                let cause = request_error::describe(host, &e);
                return Err(pull_error(
                    reference,
                    format!("fetching {}: {cause}", layer.digest),
                ));
            }
        };
        // A registry that sends more than the manifest declares is cut off
        // here, not after it has filled the disk.
        if let Err(e) = ingest.write_within(&chunk, layer.size) {
            ingest.abort();
            return Err(pull_error(reference, e));
        }
        progress.event(ProgressEvent::Fetch {
            digest: &layer.digest,
            done: ingest.offset(),
            total: layer.size,
        });
    }
    let size = ingest.commit(Some(layer.size))?;
    progress.event(ProgressEvent::Stored {
        digest: &layer.digest,
        size,
    });
    Ok(())
}

#[derive(Deserialize, Default)]
struct DockerConfig {
    #[serde(default)]
    auths: std::collections::HashMap<String, DockerAuth>,
}

#[derive(Deserialize, Default)]
struct DockerAuth {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

fn default_credentials_file() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker/config.json"))
}

/// Basic credentials for `registry` from a docker `config.json`, or anonymous.
pub fn credentials_for(registry: &str, file: Option<&Path>) -> Result<RegistryAuth, ImageError> {
    let path = match file {
        Some(path) => path.to_path_buf(),
        None => match default_credentials_file() {
            Some(path) if path.is_file() => path,
            _ => return Ok(RegistryAuth::Anonymous),
        },
    };
    let bytes = std::fs::read(&path).map_err(|source| ImageError::Io {
        op: "read credentials",
        path: path.clone(),
        source,
    })?;
    let config: DockerConfig = serde_json::from_slice(&bytes)
        .map_err(|e| ImageError::Invalid(format!("credentials file {}: {e}", path.display())))?;
    let mut keys = vec![
        registry.to_string(),
        format!("https://{registry}"),
        format!("http://{registry}"),
    ];
    if registry == crate::manifest::reference::DEFAULT_REGISTRY {
        keys.extend(
            [
                "https://index.docker.io/v1/",
                "index.docker.io",
                "registry-1.docker.io",
            ]
            .map(String::from),
        );
    }
    let Some(entry) = keys.iter().find_map(|k| config.auths.get(k)) else {
        return Ok(RegistryAuth::Anonymous);
    };
    if let (Some(user), Some(password)) = (&entry.username, &entry.password) {
        return Ok(RegistryAuth::Basic(user.clone(), password.clone()));
    }
    let Some(encoded) = &entry.auth else {
        return Ok(RegistryAuth::Anonymous);
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|e| {
            ImageError::Invalid(format!(
                "credentials file {}: auth for {registry}: {e}",
                path.display()
            ))
        })?;
    let text = String::from_utf8(decoded).map_err(|_| {
        ImageError::Invalid(format!(
            "credentials file {}: auth for {registry} is not text",
            path.display()
        ))
    })?;
    let (user, password) = text.split_once(':').ok_or_else(|| {
        ImageError::Invalid(format!(
            "credentials file {}: auth for {registry} is not user:password",
            path.display()
        ))
    })?;
    Ok(RegistryAuth::Basic(user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries_are_recognized() {
        for yes in [
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
            "localhost",
        ] {
            assert!(is_loopback_registry(yes), "{yes}");
        }
        for no in ["docker.io", "10.0.0.1:5000", "registry.local"] {
            assert!(!is_loopback_registry(no), "{no}");
        }
    }

    #[test]
    fn credentials_come_from_docker_config_auth_fields() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.json");
        let encoded = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
        std::fs::write(
            &file,
            format!(r#"{{"auths": {{"reg.example:5000": {{"auth": "{encoded}"}}}}}}"#),
        )
        .unwrap();
        match credentials_for("reg.example:5000", Some(&file)).unwrap() {
            RegistryAuth::Basic(user, password) => {
                assert_eq!((user.as_str(), password.as_str()), ("alice", "s3cret"))
            }
            other => panic!("expected basic auth, got {other:?}"),
        }
        assert!(matches!(
            credentials_for("other:5000", Some(&file)).unwrap(),
            RegistryAuth::Anonymous
        ));
    }
}
