//! Build OCI images in Rust, deterministically, with no network.
//!
//! Layers are tars built from [`Entry`] lists (kept in the caller's order, all
//! mtimes fixed), compressed with gzip, zstd or nothing. Images, OCI layouts,
//! oci-archives, docker-archives and multi-platform indexes are built from
//! them, byte-for-byte the same on every run. Digests are `sha256:` + lower hex.
//! [`hostile_tar`] writes raw tar headers so that names an extractor must
//! refuse (`../x`, `/etc/x`) survive into the archive.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub const MEDIA_TYPE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_TYPE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_TYPE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_TYPE_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MEDIA_TYPE_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MEDIA_TYPE_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The mtime of every tar entry (2023-11-14T22:13:20Z), so builds are reproducible.
pub const FIXED_MTIME: u64 = 1_700_000_000;
/// The `created` time written into image configs.
pub const FIXED_CREATED: &str = "2023-11-14T22:13:20Z";

/// One entry of a layer tar. Paths are relative to the rootfs; a leading `/`
/// is stripped. Entries are written in the order given (parents first is the
/// caller's job; [`busybox_layer`] does it).
#[derive(Clone, Debug)]
pub enum Entry {
    File {
        path: String,
        data: Vec<u8>,
        mode: u32,
        uid: u64,
        gid: u64,
    },
    /// A directory owned by 0:0.
    Dir {
        path: String,
        mode: u32,
    },
    /// A directory with an owner (e.g. `/home/app` 1000:1000).
    DirOwned {
        path: String,
        mode: u32,
        uid: u64,
        gid: u64,
    },
    Symlink {
        path: String,
        target: String,
    },
    Hardlink {
        path: String,
        target: String,
    },
    /// `etc/old` becomes the tar name `etc/.wh.old`.
    Whiteout {
        path: String,
    },
    /// `dir` becomes the tar name `dir/.wh..wh..opq`.
    Opaque {
        dir: String,
    },
    Fifo {
        path: String,
    },
    CharDevice {
        path: String,
        major: u32,
        minor: u32,
    },
}

impl Entry {
    /// A regular file, mode 0644, owned by 0:0.
    pub fn file(path: &str, data: impl Into<Vec<u8>>) -> Entry {
        Entry::File {
            path: path.into(),
            data: data.into(),
            mode: 0o644,
            uid: 0,
            gid: 0,
        }
    }
    /// A regular file with a mode, owned by 0:0.
    pub fn file_mode(path: &str, data: impl Into<Vec<u8>>, mode: u32) -> Entry {
        Entry::File {
            path: path.into(),
            data: data.into(),
            mode,
            uid: 0,
            gid: 0,
        }
    }
    /// A directory, mode 0755, owned by 0:0.
    pub fn dir(path: &str) -> Entry {
        Entry::Dir {
            path: path.into(),
            mode: 0o755,
        }
    }
    pub fn symlink(path: &str, target: &str) -> Entry {
        Entry::Symlink {
            path: path.into(),
            target: target.into(),
        }
    }
    pub fn hardlink(path: &str, target: &str) -> Entry {
        Entry::Hardlink {
            path: path.into(),
            target: target.into(),
        }
    }
    pub fn whiteout(path: &str) -> Entry {
        Entry::Whiteout { path: path.into() }
    }
    pub fn opaque(dir: &str) -> Entry {
        Entry::Opaque { dir: dir.into() }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerCompression {
    Gzip,
    Zstd,
    None,
}

#[derive(Clone, Debug)]
pub struct Layer {
    pub entries: Vec<Entry>,
    pub compression: LayerCompression,
}

impl Layer {
    /// A gzip layer with these entries.
    pub fn gzip(entries: Vec<Entry>) -> Layer {
        Layer {
            entries,
            compression: LayerCompression::Gzip,
        }
    }
}

#[derive(Clone, Debug)]
pub struct BuiltLayer {
    /// The blob as stored in a registry or layout (compressed or not).
    pub blob: Vec<u8>,
    /// `sha256:` of `blob`.
    pub digest: String,
    /// `sha256:` of the uncompressed tar.
    pub diff_id: String,
    pub media_type: String,
}

impl BuiltLayer {
    /// The uncompressed tar of this layer.
    pub fn tar(&self) -> Vec<u8> {
        decompress(&self.blob, &self.media_type)
    }
}

/// `sha256:` + lowercase hex of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(data))
}

/// Lowercase hex of the sha256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The hex part of a `sha256:...` digest.
pub fn digest_hex(digest: &str) -> &str {
    digest
        .strip_prefix("sha256:")
        .unwrap_or_else(|| panic!("not a sha256 digest: {digest}"))
}

fn rel(path: &str) -> &str {
    let p = path.trim_start_matches('/');
    assert!(!p.is_empty(), "empty path in layer entry");
    p
}

fn base_header(kind: tar::EntryType, mode: u32, uid: u64, gid: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(uid);
    h.set_gid(gid);
    h.set_mtime(FIXED_MTIME);
    h.set_size(0);
    h
}

/// The uncompressed tar for these entries, in the order given.
pub fn layer_tar(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        match e {
            Entry::File {
                path,
                data,
                mode,
                uid,
                gid,
            } => {
                let mut h = base_header(tar::EntryType::Regular, *mode, *uid, *gid);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, rel(path), &data[..])
                    .expect("append file");
            }
            Entry::Dir { path, mode } => {
                let mut h = base_header(tar::EntryType::Directory, *mode, 0, 0);
                b.append_data(&mut h, rel(path), &[][..])
                    .expect("append dir");
            }
            Entry::DirOwned {
                path,
                mode,
                uid,
                gid,
            } => {
                let mut h = base_header(tar::EntryType::Directory, *mode, *uid, *gid);
                b.append_data(&mut h, rel(path), &[][..])
                    .expect("append dir");
            }
            Entry::Symlink { path, target } => {
                let mut h = base_header(tar::EntryType::Symlink, 0o777, 0, 0);
                b.append_link(&mut h, rel(path), target)
                    .expect("append symlink");
            }
            Entry::Hardlink { path, target } => {
                let mut h = base_header(tar::EntryType::Link, 0o644, 0, 0);
                b.append_link(&mut h, rel(path), rel(target))
                    .expect("append hardlink");
            }
            Entry::Whiteout { path } => {
                let p = rel(path);
                let name = match p.rsplit_once('/') {
                    Some((dir, base)) => format!("{dir}/.wh.{base}"),
                    None => format!(".wh.{p}"),
                };
                let mut h = base_header(tar::EntryType::Regular, 0o644, 0, 0);
                b.append_data(&mut h, name, &[][..])
                    .expect("append whiteout");
            }
            Entry::Opaque { dir } => {
                let name = format!("{}/.wh..wh..opq", rel(dir).trim_end_matches('/'));
                let mut h = base_header(tar::EntryType::Regular, 0o644, 0, 0);
                b.append_data(&mut h, name, &[][..])
                    .expect("append opaque marker");
            }
            Entry::Fifo { path } => {
                let mut h = base_header(tar::EntryType::Fifo, 0o644, 0, 0);
                b.append_data(&mut h, rel(path), &[][..])
                    .expect("append fifo");
            }
            Entry::CharDevice { path, major, minor } => {
                let mut h = base_header(tar::EntryType::Char, 0o666, 0, 0);
                h.set_device_major(*major).expect("device major");
                h.set_device_minor(*minor).expect("device minor");
                b.append_data(&mut h, rel(path), &[][..])
                    .expect("append char device");
            }
        }
    }
    b.into_inner().expect("finish tar")
}

/// Compresses an uncompressed tar the way a layer blob of `compression` is.
pub fn compress(tar: &[u8], compression: LayerCompression) -> Vec<u8> {
    match compression {
        LayerCompression::None => tar.to_vec(),
        LayerCompression::Gzip => {
            // GzBuilder writes mtime 0 and no file name: deterministic.
            let mut enc = flate2::GzBuilder::new().write(Vec::new(), flate2::Compression::fast());
            enc.write_all(tar).expect("gzip");
            enc.finish().expect("gzip finish")
        }
        LayerCompression::Zstd => {
            ruzstd::encoding::compress_to_vec(tar, ruzstd::encoding::CompressionLevel::Fastest)
        }
    }
}

/// Undoes [`compress`] for a blob of this layer media type.
pub fn decompress(blob: &[u8], media_type: &str) -> Vec<u8> {
    let mut out = Vec::new();
    if media_type.ends_with("+gzip") || media_type.ends_with(".gzip") {
        flate2::read::GzDecoder::new(blob)
            .read_to_end(&mut out)
            .expect("gunzip layer");
    } else if media_type.ends_with("+zstd") {
        ruzstd::decoding::StreamingDecoder::new(blob)
            .expect("zstd frame")
            .read_to_end(&mut out)
            .expect("unzstd layer");
    } else {
        out = blob.to_vec();
    }
    out
}

pub fn layer_media_type(compression: LayerCompression) -> &'static str {
    match compression {
        LayerCompression::Gzip => MEDIA_TYPE_LAYER_GZIP,
        LayerCompression::Zstd => MEDIA_TYPE_LAYER_ZSTD,
        LayerCompression::None => MEDIA_TYPE_LAYER_TAR,
    }
}

/// A layer from an already-built (possibly hostile) uncompressed tar.
pub fn layer_from_tar(tar: &[u8], compression: LayerCompression) -> BuiltLayer {
    let blob = compress(tar, compression);
    BuiltLayer {
        digest: sha256_digest(&blob),
        diff_id: sha256_digest(tar),
        blob,
        media_type: layer_media_type(compression).to_string(),
    }
}

pub fn build_layer(layer: &Layer) -> BuiltLayer {
    layer_from_tar(&layer_tar(&layer.entries), layer.compression)
}

/// Applet names of the host's `/bin/busybox --list`, sorted, without `busybox`.
pub fn busybox_applets() -> Vec<String> {
    let out = Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .expect("run /bin/busybox --list (install busybox-static)");
    assert!(out.status.success(), "/bin/busybox --list failed");
    let mut names: Vec<String> = String::from_utf8(out.stdout)
        .expect("utf-8 applet list")
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty() && l != "busybox" && !l.contains('/'))
        .collect();
    names.sort();
    names.dedup();
    names
}

pub const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n\
app:x:1000:1000:app:/home/app:/bin/sh\n";
pub const GROUP: &str = "root:x:0:\nnobody:x:65534:\napp:x:1000:\n";

/// A small, working Linux rootfs from the host's `/bin/busybox` (static):
/// `/bin/busybox` plus a symlink `/bin/APPLET -> /bin/busybox` per applet
/// (so `/bin/sh` too), `/etc/passwd` (root, nobody 65534, app 1000),
/// `/etc/group`, `/tmp` 1777, `/root` 0700, `/proc` `/sys` `/dev` `/etc`,
/// `/var/www`, `/home/app` owned 1000:1000. Gzip-compressed.
/// Panics if `/bin/busybox` is missing (see `prereq::require_busybox`).
pub fn busybox_layer() -> Layer {
    let busybox = fs::read("/bin/busybox")
        .expect("read /bin/busybox: install the Debian package busybox-static (scripts/install-deps.sh does)");
    let mut entries = vec![
        Entry::dir("bin"),
        Entry::dir("dev"),
        Entry::dir("etc"),
        Entry::dir("home"),
        Entry::DirOwned {
            path: "home/app".into(),
            mode: 0o755,
            uid: 1000,
            gid: 1000,
        },
        Entry::dir("proc"),
        Entry::Dir {
            path: "root".into(),
            mode: 0o700,
        },
        Entry::dir("sys"),
        Entry::Dir {
            path: "tmp".into(),
            mode: 0o1777,
        },
        Entry::dir("var"),
        Entry::dir("var/www"),
        Entry::file_mode("bin/busybox", busybox, 0o755),
    ];
    for applet in busybox_applets() {
        entries.push(Entry::symlink(&format!("bin/{applet}"), "/bin/busybox"));
    }
    entries.push(Entry::file("etc/group", GROUP));
    entries.push(Entry::file("etc/passwd", PASSWD));
    Layer::gzip(entries)
}

#[derive(Clone, Debug)]
pub struct ImageSpec {
    pub layers: Vec<Layer>,
    pub architecture: String,
    pub os: String,
    /// Platform variant (e.g. "v8" for arm64); empty = none.
    pub variant: String,
    pub cmd: Vec<String>,
    pub entrypoint: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub labels: BTreeMap<String, String>,
}

impl Default for ImageSpec {
    fn default() -> Self {
        ImageSpec {
            layers: Vec::new(),
            architecture: "amd64".into(),
            os: "linux".into(),
            variant: String::new(),
            cmd: vec!["sh".into()],
            entrypoint: Vec::new(),
            env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
            working_dir: String::new(),
            user: String::new(),
            labels: BTreeMap::new(),
        }
    }
}

/// The default busybox image ([`ImageSpec::busybox`]), built once per test
/// binary and shared (building it compresses ~2 MB in a debug build).
pub fn busybox_image() -> &'static BuiltImage {
    static IMAGE: std::sync::OnceLock<BuiltImage> = std::sync::OnceLock::new();
    IMAGE.get_or_init(|| build_image(&ImageSpec::busybox()))
}

impl ImageSpec {
    /// The default spec with one [`busybox_layer`].
    pub fn busybox() -> ImageSpec {
        ImageSpec {
            layers: vec![busybox_layer()],
            ..Default::default()
        }
    }
}

#[derive(Clone, Debug)]
pub struct BuiltImage {
    pub manifest_digest: String,
    pub manifest: Vec<u8>,
    pub config: Vec<u8>,
    pub config_digest: String,
    pub layers: Vec<BuiltLayer>,
    /// From the spec, for index platforms.
    pub architecture: String,
    pub os: String,
    pub variant: String,
}

impl BuiltImage {
    /// The OCI platform object of this image.
    pub fn platform(&self) -> Value {
        let mut p = json!({"architecture": self.architecture, "os": self.os});
        if !self.variant.is_empty() {
            p["variant"] = json!(self.variant);
        }
        p
    }

    /// An OCI descriptor of this image's manifest (with its platform).
    pub fn descriptor(&self) -> Value {
        json!({
            "mediaType": MEDIA_TYPE_MANIFEST,
            "digest": self.manifest_digest,
            "size": self.manifest.len(),
            "platform": self.platform(),
        })
    }

    /// Every blob of the image (config, layers, manifest) by digest.
    pub fn blobs(&self) -> Vec<(&str, &[u8])> {
        let mut v: Vec<(&str, &[u8])> = vec![(&self.config_digest, &self.config)];
        for l in &self.layers {
            v.push((&l.digest, &l.blob));
        }
        v.push((&self.manifest_digest, &self.manifest));
        v
    }
}

pub fn build_image(spec: &ImageSpec) -> BuiltImage {
    assemble_image(spec, spec.layers.iter().map(build_layer).collect())
}

/// Like [`build_image`] but with layers built elsewhere (e.g. from
/// [`hostile_tar`] via [`layer_from_tar`]); `spec.layers` is ignored.
pub fn assemble_image(spec: &ImageSpec, layers: Vec<BuiltLayer>) -> BuiltImage {
    let mut cfg = serde_json::Map::new();
    if !spec.env.is_empty() {
        cfg.insert("Env".into(), json!(spec.env));
    }
    if !spec.cmd.is_empty() {
        cfg.insert("Cmd".into(), json!(spec.cmd));
    }
    if !spec.entrypoint.is_empty() {
        cfg.insert("Entrypoint".into(), json!(spec.entrypoint));
    }
    if !spec.working_dir.is_empty() {
        cfg.insert("WorkingDir".into(), json!(spec.working_dir));
    }
    if !spec.user.is_empty() {
        cfg.insert("User".into(), json!(spec.user));
    }
    if !spec.labels.is_empty() {
        cfg.insert("Labels".into(), json!(spec.labels));
    }
    let mut config = json!({
        "created": FIXED_CREATED,
        "architecture": spec.architecture,
        "os": spec.os,
        "config": Value::Object(cfg),
        "rootfs": {
            "type": "layers",
            "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>(),
        },
        "history": layers.iter().map(|_| json!({"created": FIXED_CREATED, "created_by": "berth test fixture"})).collect::<Vec<_>>(),
    });
    if !spec.variant.is_empty() {
        config["variant"] = json!(spec.variant);
    }
    let config = serde_json::to_vec(&config).expect("config json");
    let config_digest = sha256_digest(&config);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_MANIFEST,
        "config": {"mediaType": MEDIA_TYPE_CONFIG, "digest": config_digest, "size": config.len()},
        "layers": layers.iter().map(|l| json!({
            "mediaType": l.media_type, "digest": l.digest, "size": l.blob.len(),
        })).collect::<Vec<_>>(),
    });
    let manifest = serde_json::to_vec(&manifest).expect("manifest json");
    BuiltImage {
        manifest_digest: sha256_digest(&manifest),
        manifest,
        config,
        config_digest,
        layers,
        architecture: spec.architecture.clone(),
        os: spec.os.clone(),
        variant: spec.variant.clone(),
    }
}

/// An OCI image index blob listing each image with its platform; returns
/// (index bytes, index digest).
pub fn build_index(platforms: &[&BuiltImage]) -> (Vec<u8>, String) {
    let index = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_INDEX,
        "manifests": platforms.iter().map(|i| i.descriptor()).collect::<Vec<_>>(),
    });
    let index = serde_json::to_vec(&index).expect("index json");
    let digest = sha256_digest(&index);
    (index, digest)
}

/// The files of an OCI layout: relative path -> contents, sorted.
type LayoutFiles = BTreeMap<String, Vec<u8>>;

fn add_blob(files: &mut LayoutFiles, digest: &str, data: &[u8]) {
    files.insert(
        format!("blobs/sha256/{}", digest_hex(digest)),
        data.to_vec(),
    );
}

fn index_json(manifests: Vec<Value>) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_INDEX,
        "manifests": manifests,
    }))
    .expect("index.json")
}

fn tagged(mut descriptor: Value, tag: &str) -> Value {
    descriptor["annotations"] = json!({ ANNOTATION_REF_NAME: tag });
    descriptor
}

fn layout_files(images: &[(&BuiltImage, &str)]) -> (LayoutFiles, Vec<Value>) {
    let mut files = LayoutFiles::new();
    let mut manifests = Vec::new();
    for (img, tag) in images {
        for (d, data) in img.blobs() {
            add_blob(&mut files, d, data);
        }
        manifests.push(tagged(img.descriptor(), tag));
    }
    (files, manifests)
}

/// Writes `files` under `dir` and merges `manifests` into `dir/index.json`
/// (an existing entry with the same ref name is replaced), so several calls
/// can fill one layout.
fn write_layout_files(dir: &Path, files: &LayoutFiles, manifests: Vec<Value>) {
    fs::create_dir_all(dir.join("blobs/sha256")).expect("create layout dirs");
    for (rel, data) in files {
        fs::write(dir.join(rel), data).unwrap_or_else(|e| panic!("write {rel}: {e}"));
    }
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).expect("oci-layout");
    let mut all: Vec<Value> = match fs::read(dir.join("index.json")) {
        Ok(old) => serde_json::from_slice::<Value>(&old).expect("parse existing index.json")
            ["manifests"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    for m in manifests {
        let name = &m["annotations"][ANNOTATION_REF_NAME];
        all.retain(|o| &o["annotations"][ANNOTATION_REF_NAME] != name);
        all.push(m);
    }
    fs::write(dir.join("index.json"), index_json(all)).expect("index.json");
}

/// Writes (or adds to) an OCI image layout at `dir`: `oci-layout`,
/// `index.json` with an `org.opencontainers.image.ref.name` per image, and
/// `blobs/sha256/*`.
pub fn write_oci_layout(dir: &Path, images: &[(&BuiltImage, &str)]) {
    let (files, manifests) = layout_files(images);
    write_layout_files(dir, &files, manifests);
}

/// Writes (or adds to) an OCI layout at `dir` holding a multi-platform image:
/// an image index blob listing each image with its platform, and `index.json`
/// pointing at that index under `tag`. Returns the index digest.
pub fn write_oci_layout_index(dir: &Path, platforms: &[&BuiltImage], tag: &str) -> String {
    let (mut files, _) = layout_files(&platforms.iter().map(|i| (*i, "")).collect::<Vec<_>>());
    let (index, digest) = build_index(platforms);
    add_blob(&mut files, &digest, &index);
    let desc = json!({"mediaType": MEDIA_TYPE_INDEX, "digest": digest, "size": index.len()});
    write_layout_files(dir, &files, vec![tagged(desc, tag)]);
    digest
}

/// Appends an in-memory file or directory to a deterministic tar.
fn tar_append(b: &mut tar::Builder<Vec<u8>>, name: &str, data: Option<&[u8]>) {
    let mut h = match data {
        Some(d) => {
            let mut h = base_header(tar::EntryType::Regular, 0o644, 0, 0);
            h.set_size(d.len() as u64);
            h
        }
        None => base_header(tar::EntryType::Directory, 0o755, 0, 0),
    };
    b.append_data(&mut h, name, data.unwrap_or(&[]))
        .unwrap_or_else(|e| panic!("tar {name}: {e}"));
}

/// Writes an oci-archive (a tar of an OCI layout) of these images.
pub fn write_oci_archive(path: &Path, images: &[(&BuiltImage, &str)]) {
    let (mut files, manifests) = layout_files(images);
    files.insert(
        "oci-layout".into(),
        br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
    );
    files.insert("index.json".into(), index_json(manifests));
    let mut b = tar::Builder::new(Vec::new());
    tar_append(&mut b, "blobs", None);
    tar_append(&mut b, "blobs/sha256", None);
    for (name, data) in &files {
        tar_append(&mut b, name, Some(data));
    }
    fs::write(path, b.into_inner().expect("finish tar")).expect("write oci-archive");
}

/// Writes a `docker save` archive: `manifest.json`, the config as
/// `<hex>.json`, each layer uncompressed as `<diff_id hex>/layer.tar` (with
/// `VERSION` and legacy `json`), and the legacy `repositories` file.
pub fn write_docker_archive(path: &Path, image: &BuiltImage, repo_tag: &str) {
    let mut files = BTreeMap::<String, Vec<u8>>::new();
    let mut dirs = Vec::new();
    let config_name = format!("{}.json", digest_hex(&image.config_digest));
    files.insert(config_name.clone(), image.config.clone());
    let mut layer_names = Vec::new();
    let mut parent: Option<String> = None;
    for l in &image.layers {
        let id = digest_hex(&l.diff_id).to_string();
        dirs.push(id.clone());
        files.insert(format!("{id}/layer.tar"), l.tar());
        files.insert(format!("{id}/VERSION"), b"1.0".to_vec());
        let mut legacy = json!({"id": id, "created": FIXED_CREATED});
        if let Some(p) = &parent {
            legacy["parent"] = json!(p);
        }
        files.insert(format!("{id}/json"), serde_json::to_vec(&legacy).unwrap());
        layer_names.push(format!("{id}/layer.tar"));
        parent = Some(id);
    }
    let manifest = json!([{"Config": config_name, "RepoTags": [repo_tag], "Layers": layer_names}]);
    files.insert(
        "manifest.json".into(),
        serde_json::to_vec(&manifest).unwrap(),
    );
    // repo_tag is REPO[:TAG]; a ':' before the last '/' is a registry port.
    let (repo, tag) = match repo_tag.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, t),
        _ => (repo_tag, "latest"),
    };
    if let Some(top) = &parent {
        let repositories = json!({ repo: { tag: top } });
        files.insert(
            "repositories".into(),
            serde_json::to_vec(&repositories).unwrap(),
        );
    }
    let mut b = tar::Builder::new(Vec::new());
    dirs.sort();
    dirs.dedup();
    for d in &dirs {
        tar_append(&mut b, d, None);
    }
    for (name, data) in &files {
        tar_append(&mut b, name, Some(data));
    }
    fs::write(path, b.into_inner().expect("finish tar")).expect("write docker-archive");
}

/// One raw tar entry for [`hostile_tar`]: the name and link bytes go into the
/// header as they are (at most 100 bytes each), so `../x`, `/etc/x` and
/// links pointing anywhere survive.
#[derive(Clone, Debug)]
pub struct RawEntry {
    pub name: Vec<u8>,
    /// Tar typeflag: b'0' file, b'1' hardlink, b'2' symlink, b'5' directory, ...
    pub kind: u8,
    pub link: Vec<u8>,
    pub data: Vec<u8>,
}

impl RawEntry {
    pub fn file(name: &str, data: impl Into<Vec<u8>>) -> RawEntry {
        RawEntry {
            name: name.into(),
            kind: b'0',
            link: Vec::new(),
            data: data.into(),
        }
    }
    pub fn dir(name: &str) -> RawEntry {
        RawEntry {
            name: name.into(),
            kind: b'5',
            link: Vec::new(),
            data: Vec::new(),
        }
    }
    pub fn symlink(name: &str, target: &str) -> RawEntry {
        RawEntry {
            name: name.into(),
            kind: b'2',
            link: target.into(),
            data: Vec::new(),
        }
    }
    pub fn hardlink(name: &str, target: &str) -> RawEntry {
        RawEntry {
            name: name.into(),
            kind: b'1',
            link: target.into(),
            data: Vec::new(),
        }
    }
}

/// An uncompressed tar written header by header, bypassing every path check
/// of the tar crate. Feed it to [`layer_from_tar`] to make a layer of it.
pub fn hostile_tar(entries: &[RawEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        assert!(e.name.len() <= 100, "raw tar name longer than 100 bytes");
        assert!(
            e.link.len() <= 100,
            "raw tar link name longer than 100 bytes"
        );
        let mut h = tar::Header::new_gnu();
        {
            let gnu = h.as_gnu_mut().expect("gnu header");
            gnu.name[..e.name.len()].copy_from_slice(&e.name);
            gnu.linkname[..e.link.len()].copy_from_slice(&e.link);
        }
        h.set_entry_type(tar::EntryType::new(e.kind));
        h.set_mode(if e.kind == b'5' { 0o755 } else { 0o644 });
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(FIXED_MTIME);
        h.set_size(e.data.len() as u64);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(&e.data);
        let pad = (512 - e.data.len() % 512) % 512;
        out.extend(std::iter::repeat_n(0u8, pad));
    }
    out.extend(std::iter::repeat_n(0u8, 1024));
    out
}
