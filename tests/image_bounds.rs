//! Size bounds on what berth reads from an image (README, "Security model",
//! Limits): a gzip bomb is refused as it crosses `--max-layer-size`, an
//! image as it crosses `--max-image-size`, and neither leaves anything in
//! the snapshot store; a registry cannot send more than a descriptor
//! declares, nor a JSON document larger than its bound.
//!
//! The bombs unpack onto a 32 MiB tmpfs `--root` ([`SmallRoot`]): a bomb
//! four times that size that was written out before being refused would
//! fail with "no space left" instead of the bound, so the bound's error is
//! itself the proof that the unpack stopped early.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use common::images::{self as img, BuiltImage, BuiltLayer, ImageSpec, LayerCompression};
use common::instance::Instance;
use common::prereq;
use common::registry::Registry;
use sha2::{Digest as _, Sha256};

/// Uncompressed size of the bomb's one file: four times the tmpfs.
const BOMB_SIZE: u64 = 128 << 20;
const SMALL_ROOT_OPTIONS: &str = "size=32m,mode=0700";
const SMALL_ROOT_BYTES: u64 = 32 << 20;

/// A gzip'd tar holding `name`, `size` zero bytes. The tar is compressed
/// and hashed as it is generated, so it never exists whole.
fn zero_file_layer(name: &str, size: u64) -> BuiltLayer {
    let mut header = tar::Header::new_gnu();
    header.set_path(name).expect("tar path");
    header.set_size(size);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut hash = Sha256::new();
    let mut put = |bytes: &[u8]| {
        hash.update(bytes);
        gzip.write_all(bytes).expect("gzip in memory");
    };
    put(header.as_bytes());
    let block = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        put(&block[..n]);
        left -= n as u64;
    }
    put(&block[..((512 - size % 512) % 512) as usize]);
    put(&[0u8; 1024]);
    let blob = gzip.finish().expect("gzip finish");
    let diff_id: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    BuiltLayer {
        digest: img::sha256_digest(&blob),
        diff_id: format!("sha256:{diff_id}"),
        blob,
        media_type: img::layer_media_type(LayerCompression::Gzip).to_string(),
    }
}

/// An OCI layout at `dir` holding one image of `layers`, tagged `1`.
fn write_layout(dir: &Path, layers: Vec<BuiltLayer>) -> BuiltImage {
    let image = img::assemble_image(&ImageSpec::default(), layers);
    img::write_oci_layout(dir, &[(&image, "1")]);
    image
}

/// An [`Instance`] whose `--root` is a 32 MiB tmpfs (unmounted on drop).
struct SmallRoot(Instance);

common::deref_to!(SmallRoot, 0: Instance);

impl SmallRoot {
    fn new() -> SmallRoot {
        let instance = Instance::new();
        let root = instance.root();
        fs::create_dir_all(&root).expect("create root");
        nix::mount::mount(
            Some("tmpfs"),
            &root,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some(SMALL_ROOT_OPTIONS),
        )
        .expect("mount a tmpfs as the root");
        SmallRoot(instance)
    }

    /// Bytes in use on the tmpfs.
    fn used(&self) -> u64 {
        let stat = nix::sys::statvfs::statvfs(&self.root()).expect("statvfs");
        (stat.blocks() - stat.blocks_free()) * stat.fragment_size()
    }

    /// Asserts that nothing of a refused image is left in the snapshot
    /// store: no committed layer, no temp dir of an unpack, no mount.
    fn assert_no_snapshot_leftovers(&self) {
        let snapshots = self.root().join("snapshots");
        assert_eq!(
            common::names_in(&snapshots.join("layers")),
            Vec::<String>::new()
        );
        assert_eq!(
            common::names_in(&snapshots.join("tmp")),
            Vec::<String>::new()
        );
        let mounts: Vec<PathBuf> = common::host::mounts_under(&self.root())
            .into_iter()
            .map(|(point, _)| point)
            .filter(|point| *point != self.root())
            .collect();
        assert_eq!(mounts, Vec::<PathBuf>::new());
        assert_eq!(
            common::names_in(&self.root().join("images")),
            Vec::<String>::new()
        );
    }
}

impl Drop for SmallRoot {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.root(), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Asserts that `stderr` is the layer bound's error for `layer` of `image`
/// at 1 MiB, not what a full disk or a whole unpack would have said.
fn assert_layer_bound_error(stderr: &str, layer: &BuiltLayer, image: &str) {
    assert!(
        stderr.contains(&format!(
            "layer {} of {image} exceeds 1Mi uncompressed",
            layer.digest
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("--max-layer-size or BERTH_MAX_LAYER_SIZE"),
        "{stderr}"
    );
    assert!(!stderr.contains("No space left"), "{stderr}");
}

#[test]
fn a_gzip_bomb_is_refused_as_it_crosses_the_layer_bound_and_leaves_nothing() {
    if !prereq::require_root(
        "a_gzip_bomb_is_refused_as_it_crosses_the_layer_bound_and_leaves_nothing",
    ) {
        return;
    }
    let berth = SmallRoot::new();
    let bomb = zero_file_layer("zeros", BOMB_SIZE);
    assert!(bomb.blob.len() < 2 << 20, "{} bytes", bomb.blob.len());
    let layout = berth.path().join("bomb");
    write_layout(&layout, vec![bomb.clone()]);
    let source = format!("oci-layout:{}:1", layout.display());

    let stderr = berth.fails(&[
        "image",
        "import",
        &source,
        "--name",
        "example.com/bomb:1",
        "--max-layer-size",
        "1Mi",
    ]);
    assert_layer_bound_error(&stderr, &bomb, "example.com/bomb:1");
    berth.assert_no_snapshot_leftovers();
    // What stays is the content store: the compressed bomb and its two
    // documents, not any of its 128 MiB.
    let used = berth.used();
    assert!(used < 4 << 20, "{used} bytes left on the root");

    // The same store takes an ordinary image under the default bounds.
    img::write_oci_layout(
        &berth.path().join("busybox"),
        &[(img::busybox_image(), "1")],
    );
    let busybox = format!("oci-layout:{}:1", berth.path().join("busybox").display());
    berth.ok(&["image", "import", &busybox]);
    assert_eq!(
        common::names_in(&berth.root().join("snapshots/layers")).len(),
        1
    );
    assert!(berth.used() < SMALL_ROOT_BYTES);
}

#[test]
fn an_image_is_refused_as_its_layers_together_cross_the_image_bound() {
    if !prereq::require_root("an_image_is_refused_as_its_layers_together_cross_the_image_bound") {
        return;
    }
    let berth = SmallRoot::new();
    let layers = vec![
        zero_file_layer("a", 3 << 20),
        zero_file_layer("b", 3 << 20),
        zero_file_layer("c", 3 << 20),
    ];
    let layout = berth.path().join("three");
    write_layout(&layout, layers);
    let source = format!("oci-layout:{}:1", layout.display());
    let bounds = ["--max-layer-size", "4Mi", "--max-image-size", "5Mi"];

    let mut args = vec!["image", "import", &source, "--name", "three"];
    args.extend_from_slice(&bounds);
    let stderr = berth.fails(&args);
    assert!(
        stderr.contains("image docker.io/library/three:latest exceeds 5Mi uncompressed in all"),
        "{stderr}"
    );
    assert!(
        stderr.contains("--max-image-size or BERTH_MAX_IMAGE_SIZE"),
        "{stderr}"
    );
    // No half layer is left; a layer that finished before the bound was
    // crossed may stay, whole (gc removes it), but never all three.
    assert_eq!(
        common::names_in(&berth.root().join("snapshots/tmp")),
        Vec::<String>::new()
    );
    assert!(common::names_in(&berth.root().join("snapshots/layers")).len() < 3);
    assert_eq!(
        common::names_in(&berth.root().join("images")),
        Vec::<String>::new()
    );

    let mut args = vec!["image", "import", &source, "--name", "three"];
    args.extend_from_slice(&["--max-layer-size", "4Mi", "--max-image-size", "10Mi"]);
    berth.ok(&args);
}

/// Runs `berth ARGS` with `BERTH_MAX_LAYER_SIZE=1Mi`; expects exit code 1
/// and returns what it printed (both streams).
fn fails_with_env_bound(berth: &SmallRoot, args: &[&str]) -> String {
    let output = berth
        .command(args)
        .env("BERTH_MAX_LAYER_SIZE", "1Mi")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("berth runs");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(1), "{printed}");
    printed
}

#[test]
fn the_bound_comes_from_the_environment_and_reaches_run_and_apply_through_the_engine() {
    if !prereq::require_root(
        "the_bound_comes_from_the_environment_and_reaches_run_and_apply_through_the_engine",
    ) {
        return;
    }
    if prereq::require_binary("runc", "runc").is_none() {
        return;
    }
    let berth = SmallRoot::new();
    let bomb = zero_file_layer("zeros", BOMB_SIZE);
    let layout = berth.path().join("bomb");
    write_layout(&layout, vec![bomb.clone()]);
    let source = format!("oci-layout:{}:1", layout.display());

    let printed = fails_with_env_bound(&berth, &["run", "--rm", &source, "true"]);
    assert_layer_bound_error(&printed, &bomb, &source);
    berth.assert_no_snapshot_leftovers();

    let manifests = berth.path().join("manifests");
    fs::create_dir_all(&manifests).expect("manifest dir");
    fs::write(
        manifests.join("bomb.yaml"),
        format!(
            "apiVersion: berth/v1\nkind: Container\nmetadata:\n  name: {}\n\
             spec:\n  image: {source}\n  networkMode: none\n  command: [\"true\"]\n",
            berth.unique_name("bomb")
        ),
    )
    .expect("write manifest");
    let manifests = manifests.display().to_string();
    let printed = fails_with_env_bound(
        &berth,
        &[
            "apply",
            "--allow-untrusted-manifests",
            "-f",
            &manifests,
            "--timeout",
            "30s",
        ],
    );
    assert_layer_bound_error(&printed, &bomb, &source);
    berth.assert_no_snapshot_leftovers();
    assert_eq!(
        common::names_in(&berth.root().join("snapshots/containers")),
        Vec::<String>::new()
    );
}

#[test]
fn a_pull_of_a_bomb_is_refused_as_it_unpacks() {
    if !prereq::require_root("a_pull_of_a_bomb_is_refused_as_it_unpacks") {
        return;
    }
    if prereq::require_binary("skopeo", "skopeo").is_none() {
        return;
    }
    let Some(registry) = Registry::start() else {
        return;
    };
    let work = tempfile::tempdir().expect("tempdir");
    let bomb = zero_file_layer("zeros", BOMB_SIZE);
    write_layout(&work.path().join("bomb"), vec![bomb.clone()]);
    registry.push_oci_layout(&work.path().join("bomb"), "1", "bomb:1");

    let berth = SmallRoot::new();
    let reference = registry.reference("bomb:1");
    let stderr = berth.fails(&["image", "pull", &reference, "--max-layer-size", "1Mi"]);
    assert_layer_bound_error(&stderr, &bomb, &reference);
    berth.assert_no_snapshot_leftovers();
}

#[test]
fn a_layout_config_over_the_document_bound_is_refused_before_it_is_copied() {
    let berth = Instance::new();
    let spec = ImageSpec {
        labels: [("padding".to_string(), "x".repeat(9 << 20))].into(),
        ..ImageSpec::default()
    };
    let image = img::assemble_image(&spec, vec![zero_file_layer("small", 10)]);
    let layout = berth.path().join("fat");
    img::write_oci_layout(&layout, &[(&image, "1")]);

    let stderr = berth.fails(&[
        "image",
        "import",
        &format!("oci-layout:{}:1", layout.display()),
        "--no-unpack",
    ]);
    assert!(
        stderr.contains(&format!(
            "blob {} is {} bytes, over the 8Mi bound on a JSON document",
            image.config_digest,
            image.config.len()
        )),
        "{stderr}"
    );
    // Regression: the config used to be copied into the store whole, and
    // only then found too large to read.
    let blobs = common::names_in(&berth.root().join("content/blobs/sha256"));
    assert!(
        !blobs.contains(&img::digest_hex(&image.config_digest).to_string()),
        "{blobs:?}"
    );
}

// ---------------------------------------------------------------------------
// A registry that lies: serves documents from a table and, for one path,
// zeros without end. Plain HTTP/1.1 on loopback, one request per connection.

/// What the lying registry serves at a path.
#[derive(Clone)]
enum Served {
    Document {
        media_type: String,
        bytes: Vec<u8>,
    },
    /// Zeros until the client hangs up (or 256 MiB).
    Endless,
}

struct LyingRegistry {
    addr: String,
    /// Bytes of endless bodies sent before the client hung up.
    sent: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

const ENDLESS_CAP: u64 = 256 << 20;

impl LyingRegistry {
    fn start(routes: Vec<(String, Served)>) -> LyingRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("local addr").to_string();
        let sent = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let routes = Arc::new(routes);
        let (thread_sent, thread_stop) = (sent.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if thread_stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let (routes, sent) = (routes.clone(), thread_sent.clone());
                std::thread::spawn(move || serve(stream, &routes, &sent));
            }
        });
        LyingRegistry { addr, sent, stop }
    }

    fn reference(&self, repo_and_tag: &str) -> String {
        format!("{}/{repo_and_tag}", self.addr)
    }

    fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

impl Drop for LyingRegistry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(&self.addr);
    }
}

fn serve(mut stream: TcpStream, routes: &[(String, Served)], sent: &AtomicU64) {
    let mut request = Vec::new();
    let mut byte = [0u8; 1];
    while !request.ends_with(b"\r\n\r\n") && request.len() < 64 << 10 {
        match stream.read(&mut byte) {
            Ok(1) => request.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&request);
    let mut words = head.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let found = routes.iter().find(|(p, _)| p == path).map(|(_, s)| s);
    let _ = match (path, found) {
        ("/v2/", _) => respond(&mut stream, method, "200 OK", "application/json", b"{}"),
        (_, Some(Served::Document { media_type, bytes })) => {
            respond(&mut stream, method, "200 OK", media_type, bytes)
        }
        (_, Some(Served::Endless)) => stream_zeros(&mut stream, sent),
        (_, None) => respond(
            &mut stream,
            method,
            "404 Not Found",
            "application/json",
            b"{}",
        ),
    };
}

fn respond(
    stream: &mut TcpStream,
    method: &str,
    status: &str,
    media_type: &str,
    body: &[u8],
) -> std::io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {media_type}\r\nContent-Length: {}\r\n\
         Docker-Content-Digest: {}\r\nConnection: close\r\n\r\n",
        body.len(),
        img::sha256_digest(body)
    )?;
    if method != "HEAD" {
        stream.write_all(body)?;
    }
    stream.flush()
}

/// A body without a length: it ends when the connection does, which the
/// client must not wait for.
fn stream_zeros(stream: &mut TcpStream, sent: &AtomicU64) -> std::io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n"
    )?;
    let zeros = vec![0u8; 64 << 10];
    while sent.load(Ordering::Relaxed) < ENDLESS_CAP {
        stream.write_all(&zeros)?;
        sent.fetch_add(zeros.len() as u64, Ordering::Relaxed);
    }
    Ok(())
}

fn manifest_route(repo: &str, tag: &str, manifest: &[u8]) -> (String, Served) {
    (
        format!("/v2/{repo}/manifests/{tag}"),
        Served::Document {
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            bytes: manifest.to_vec(),
        },
    )
}

fn blob_route(repo: &str, digest: &str, served: Served) -> (String, Served) {
    (format!("/v2/{repo}/blobs/{digest}"), served)
}

/// An ordinary small image, as the lying registry's documents describe it.
fn small_image() -> BuiltImage {
    img::assemble_image(&ImageSpec::default(), vec![zero_file_layer("small", 4096)])
}

fn config_route(image: &BuiltImage) -> (String, Served) {
    blob_route(
        "lies",
        &image.config_digest,
        Served::Document {
            media_type: "application/vnd.oci.image.config.v1+json".into(),
            bytes: image.config.clone(),
        },
    )
}

/// Asserts that the registry was cut off long before its endless body ended
/// (what the kernel's socket buffers took counts too, hence the margin).
fn assert_cut_off(registry: &LyingRegistry) {
    let sent = registry.sent();
    assert!(
        sent < ENDLESS_CAP / 4,
        "the registry sent {sent} bytes before berth hung up"
    );
}

#[test]
fn a_registry_sending_more_of_a_layer_than_declared_is_cut_off() {
    let image = small_image();
    let layer = &image.layers[0];
    let registry = LyingRegistry::start(vec![
        manifest_route("lies", "1", &image.manifest),
        config_route(&image),
        blob_route("lies", &layer.digest, Served::Endless),
    ]);
    let berth = Instance::new();
    let reference = registry.reference("lies:1");

    let stderr = berth.fails(&["image", "pull", &reference, "--no-unpack"]);
    assert!(
        stderr.contains(&format!(
            "blob {} is longer than the {} bytes its descriptor declares",
            layer.digest,
            layer.blob.len()
        )),
        "{stderr}"
    );
    assert_cut_off(&registry);
    assert_eq!(
        common::names_in(&berth.root().join("content/ingest")),
        Vec::<String>::new()
    );
    assert!(
        !common::names_in(&berth.root().join("content/blobs/sha256"))
            .contains(&img::digest_hex(&layer.digest).to_string())
    );
}

#[test]
fn a_registry_sending_more_of_a_config_than_declared_is_cut_off() {
    let image = small_image();
    let registry = LyingRegistry::start(vec![
        manifest_route("lies", "1", &image.manifest),
        blob_route("lies", &image.config_digest, Served::Endless),
    ]);
    let berth = Instance::new();

    let stderr = berth.fails(&[
        "image",
        "pull",
        &registry.reference("lies:1"),
        "--no-unpack",
    ]);
    assert!(
        stderr.contains(&format!(
            "blob {} is longer than the {} bytes its descriptor declares",
            image.config_digest,
            image.config.len()
        )),
        "{stderr}"
    );
    assert_cut_off(&registry);
}

#[test]
fn a_manifest_over_the_document_bound_is_refused_and_not_stored() {
    let image = small_image();
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&image.manifest).expect("manifest json");
    manifest["annotations"] = serde_json::json!({"padding": "x".repeat(9 << 20)});
    let manifest = serde_json::to_vec(&manifest).expect("manifest json");
    let registry = LyingRegistry::start(vec![manifest_route("lies", "1", &manifest)]);
    let berth = Instance::new();

    let stderr = berth.fails(&[
        "image",
        "pull",
        &registry.reference("lies:1"),
        "--no-unpack",
    ]);
    assert!(
        stderr.contains(&format!(
            "blob {} is {} bytes, over the 8Mi bound on a JSON document",
            img::sha256_digest(&manifest),
            manifest.len()
        )),
        "{stderr}"
    );
    assert_eq!(
        common::names_in(&berth.root().join("content/blobs/sha256")),
        Vec::<String>::new()
    );
}
