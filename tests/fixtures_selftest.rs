//! Proves the shared test fixtures in tests/common against real tools:
//! skopeo reads what images.rs writes, docker-registry serves what skopeo
//! pushes, and a busybox layer really runs under chroot.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use common::images::{self, Entry, ImageSpec, Layer, LayerCompression, RawEntry};
use common::prereq;
use common::registry::{self, Registry};
use serde_json::Value;

fn skopeo(args: &[&str]) -> Vec<u8> {
    let out = Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .output()
        .expect("run skopeo");
    assert!(
        out.status.success(),
        "skopeo {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn skopeo_json(args: &[&str]) -> Value {
    serde_json::from_slice(&skopeo(args)).expect("skopeo json")
}

fn small_image(arch: &str, variant: &str) -> images::BuiltImage {
    images::build_image(&ImageSpec {
        layers: vec![Layer::gzip(vec![
            Entry::dir("etc"),
            Entry::file("etc/arch", arch.as_bytes()),
        ])],
        architecture: arch.into(),
        variant: variant.into(),
        ..Default::default()
    })
}

fn tar_names(tar: &[u8]) -> Vec<(Vec<u8>, tar::EntryType, Option<Vec<u8>>)> {
    let mut a = tar::Archive::new(tar);
    a.entries()
        .expect("tar entries")
        .map(|e| {
            let e = e.expect("tar entry");
            let link = e.link_name_bytes().map(|l| l.into_owned());
            (e.path_bytes().into_owned(), e.header().entry_type(), link)
        })
        .collect()
}

#[test]
fn builds_are_deterministic_and_digests_match() {
    let spec = ImageSpec {
        layers: vec![Layer::gzip(vec![Entry::dir("a"), Entry::file("a/b", "x")])],
        labels: BTreeMap::from([("org.example".to_string(), "yes".to_string())]),
        user: "app".into(),
        ..Default::default()
    };
    let a = images::build_image(&spec);
    let b = images::build_image(&spec);
    assert_eq!(a.manifest_digest, b.manifest_digest);
    assert_eq!(a.manifest, b.manifest);
    assert!(a.manifest_digest.starts_with("sha256:"));
    assert_eq!(a.manifest_digest.len(), 7 + 64);
    assert_eq!(a.manifest_digest, images::sha256_digest(&a.manifest));
    assert_eq!(a.config_digest, images::sha256_digest(&a.config));
    let l = &a.layers[0];
    assert_eq!(l.digest, images::sha256_digest(&l.blob));
    assert_eq!(l.diff_id, images::sha256_digest(&l.tar()));
    assert_eq!(l.media_type, images::MEDIA_TYPE_LAYER_GZIP);
    let m: Value = serde_json::from_slice(&a.manifest).unwrap();
    assert_eq!(m["mediaType"], images::MEDIA_TYPE_MANIFEST);
    assert_eq!(m["config"]["mediaType"], images::MEDIA_TYPE_CONFIG);
    assert_eq!(m["layers"][0]["digest"], l.digest.as_str());
    let c: Value = serde_json::from_slice(&a.config).unwrap();
    assert_eq!(c["rootfs"]["diff_ids"][0], l.diff_id.as_str());
    assert_eq!(c["architecture"], "amd64");
    assert_eq!(c["config"]["Cmd"][0], "sh");
    assert_eq!(c["config"]["User"], "app");
    assert_eq!(c["config"]["Labels"]["org.example"], "yes");
    assert!(c["config"]["Env"][0].as_str().unwrap().starts_with("PATH="));
}

#[test]
fn every_entry_kind_lands_in_the_tar() {
    let layer = Layer {
        entries: vec![
            Entry::dir("etc"),
            Entry::File {
                path: "/etc/f".into(),
                data: b"hi".to_vec(),
                mode: 0o600,
                uid: 7,
                gid: 8,
            },
            Entry::symlink("etc/s", "/etc/f"),
            Entry::hardlink("etc/h", "etc/f"),
            Entry::whiteout("etc/old"),
            Entry::whiteout("gone"),
            Entry::opaque("var"),
            Entry::Fifo {
                path: "etc/fifo".into(),
            },
            Entry::CharDevice {
                path: "dev/null".into(),
                major: 1,
                minor: 3,
            },
        ],
        compression: LayerCompression::None,
    };
    let built = images::build_layer(&layer);
    assert_eq!(built.media_type, images::MEDIA_TYPE_LAYER_TAR);
    assert_eq!(built.digest, built.diff_id);
    let mut a = tar::Archive::new(&built.blob[..]);
    let mut seen = Vec::new();
    for e in a.entries().unwrap() {
        let e = e.unwrap();
        let h = e.header();
        seen.push(String::from_utf8(e.path_bytes().into_owned()).unwrap());
        assert_eq!(h.mtime().unwrap(), images::FIXED_MTIME);
        match seen.last().unwrap().as_str() {
            "etc/f" => {
                assert_eq!(
                    (h.mode().unwrap(), h.uid().unwrap(), h.gid().unwrap()),
                    (0o600, 7, 8)
                );
                assert_eq!(h.size().unwrap(), 2);
            }
            "etc/s" => assert_eq!(e.link_name_bytes().unwrap().as_ref(), b"/etc/f"),
            "etc/h" => {
                assert_eq!(h.entry_type(), tar::EntryType::Link);
                assert_eq!(e.link_name_bytes().unwrap().as_ref(), b"etc/f");
            }
            "etc/fifo" => assert_eq!(h.entry_type(), tar::EntryType::Fifo),
            "dev/null" => {
                assert_eq!(h.entry_type(), tar::EntryType::Char);
                assert_eq!(
                    (h.device_major().unwrap(), h.device_minor().unwrap()),
                    (Some(1), Some(3))
                );
            }
            _ => {}
        }
    }
    let names: Vec<&str> = seen.iter().map(|s| s.trim_end_matches('/')).collect();
    assert_eq!(
        names,
        [
            "etc",
            "etc/f",
            "etc/s",
            "etc/h",
            "etc/.wh.old",
            ".wh.gone",
            "var/.wh..wh..opq",
            "etc/fifo",
            "dev/null"
        ]
    );
}

#[test]
fn zstd_layer_is_real_zstd() {
    let layer = Layer {
        entries: vec![Entry::file("z", vec![b'z'; 100_000])],
        compression: LayerCompression::Zstd,
    };
    let built = images::build_layer(&layer);
    assert_eq!(built.media_type, images::MEDIA_TYPE_LAYER_ZSTD);
    assert!(
        built.blob.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]),
        "zstd magic"
    );
    assert_eq!(built.diff_id, images::sha256_digest(&built.tar()));
    // An independent decoder, when the zstd CLI is there.
    if let Some(zstd) = prereq::find_binary("zstd") {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l.tar.zst");
        std::fs::write(&p, &built.blob).unwrap();
        let out = Command::new(zstd).arg("-dc").arg(&p).output().unwrap();
        assert!(out.status.success());
        assert_eq!(images::sha256_digest(&out.stdout), built.diff_id);
    }
}

#[test]
fn hostile_tar_keeps_its_names() {
    let tar = images::hostile_tar(&[
        RawEntry::file("../x", "escape"),
        RawEntry::file("/etc/x", "absolute"),
        RawEntry::symlink("link", "../../../../etc"),
        RawEntry::hardlink("hard", "/etc/shadow"),
        RawEntry::dir("a/../../b"),
    ]);
    let got = tar_names(&tar);
    let names: Vec<&[u8]> = got.iter().map(|(n, _, _)| n.as_slice()).collect();
    assert_eq!(
        names,
        [&b"../x"[..], b"/etc/x", b"link", b"hard", b"a/../../b"]
    );
    assert_eq!(got[2].1, tar::EntryType::Symlink);
    assert_eq!(got[2].2.as_deref(), Some(&b"../../../../etc"[..]));
    assert_eq!(got[3].1, tar::EntryType::Link);
    assert_eq!(got[4].1, tar::EntryType::Directory);
    // And it goes into an image like any layer.
    let layer = images::layer_from_tar(&tar, LayerCompression::Gzip);
    assert_eq!(layer.tar(), tar);
    let img = images::assemble_image(&ImageSpec::default(), vec![layer]);
    assert_eq!(img.layers.len(), 1);
}

#[test]
fn oci_layout_reads_back_with_skopeo() {
    if !prereq::require_busybox("oci_layout_reads_back_with_skopeo")
        || prereq::require_binary("skopeo", "skopeo").is_none()
    {
        return;
    }
    let img = images::busybox_image();
    let other = small_image("amd64", "");
    let dir = tempfile::tempdir().unwrap();
    images::write_oci_layout(dir.path(), &[(img, "latest")]);
    // A second call adds a tag to the same layout.
    images::write_oci_layout(dir.path(), &[(&other, "small")]);
    let raw = skopeo(&[
        "inspect",
        "--raw",
        &format!("oci:{}:latest", dir.path().display()),
    ]);
    assert_eq!(images::sha256_digest(&raw), img.manifest_digest);
    assert_eq!(raw, img.manifest);
    let info = skopeo_json(&["inspect", &format!("oci:{}:small", dir.path().display())]);
    assert_eq!(info["Digest"], other.manifest_digest.as_str());
    let info = skopeo_json(&[
        "inspect",
        "--config",
        &format!("oci:{}:latest", dir.path().display()),
    ]);
    assert_eq!(info["config"]["Cmd"][0], "sh");
}

#[test]
fn oci_archive_reads_back_with_skopeo() {
    if !prereq::require_busybox("oci_archive_reads_back_with_skopeo")
        || prereq::require_binary("skopeo", "skopeo").is_none()
    {
        return;
    }
    let img = images::busybox_image();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("img.oci.tar");
    images::write_oci_archive(&path, &[(img, "latest")]);
    let info = skopeo_json(&["inspect", &format!("oci-archive:{}:latest", path.display())]);
    assert_eq!(info["Digest"], img.manifest_digest.as_str());
    assert_eq!(info["Architecture"], "amd64");
    assert_eq!(info["Os"], "linux");
    let layers: Vec<&str> = img.layers.iter().map(|l| l.digest.as_str()).collect();
    assert_eq!(info["Layers"], serde_json::json!(layers));
}

#[test]
fn docker_archive_reads_back_with_skopeo() {
    if !prereq::require_busybox("docker_archive_reads_back_with_skopeo")
        || prereq::require_binary("skopeo", "skopeo").is_none()
    {
        return;
    }
    let img = images::busybox_image();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("img.docker.tar");
    images::write_docker_archive(&path, img, "example.test/busybox:1.0");
    let info = skopeo_json(&["inspect", &format!("docker-archive:{}", path.display())]);
    assert_eq!(info["Architecture"], "amd64");
    // skopeo finds the image by its repo tag too.
    let tagged = skopeo_json(&[
        "inspect",
        &format!("docker-archive:{}:example.test/busybox:1.0", path.display()),
    ]);
    assert_eq!(tagged["Digest"], info["Digest"]);
    // manifest.json and repositories as `docker save` writes them.
    let files: BTreeMap<String, Vec<u8>> = {
        let data = std::fs::read(&path).unwrap();
        let mut a = tar::Archive::new(&data[..]);
        a.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let name = String::from_utf8(e.path_bytes().into_owned()).unwrap();
                let mut buf = Vec::new();
                std::io::Read::read_to_end(&mut e, &mut buf).unwrap();
                (name, buf)
            })
            .collect()
    };
    let manifest: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    let hex = images::digest_hex(&img.layers[0].diff_id);
    assert_eq!(
        manifest,
        serde_json::json!([{
            "Config": format!("{}.json", images::digest_hex(&img.config_digest)),
            "RepoTags": ["example.test/busybox:1.0"],
            "Layers": [format!("{hex}/layer.tar")],
        }])
    );
    let repositories: Value = serde_json::from_slice(&files["repositories"]).unwrap();
    assert_eq!(
        repositories,
        serde_json::json!({"example.test/busybox": {"1.0": hex}})
    );
    assert_eq!(
        images::sha256_digest(&files[&format!("{hex}/layer.tar")]),
        img.layers[0].diff_id
    );
    let diff_ids: Vec<&str> = img.layers.iter().map(|l| l.diff_id.as_str()).collect();
    assert_eq!(info["Layers"], serde_json::json!(diff_ids));
    let cfg = skopeo(&[
        "inspect",
        "--raw",
        "--config",
        &format!("docker-archive:{}", path.display()),
    ]);
    assert_eq!(images::sha256_digest(&cfg), img.config_digest);
}

#[test]
fn multi_platform_index_pushes_to_registry() {
    if !prereq::require_busybox("multi_platform_index_pushes_to_registry")
        || prereq::require_binary("skopeo", "skopeo").is_none()
    {
        return;
    }
    let Some(reg) = Registry::start() else { return };
    let amd64 = images::busybox_image();
    let arm64 = small_image("arm64", "v8");
    let dir = tempfile::tempdir().unwrap();
    let index_digest = images::write_oci_layout_index(dir.path(), &[amd64, &arm64], "multi");
    let raw = skopeo(&[
        "inspect",
        "--raw",
        &format!("oci:{}:multi", dir.path().display()),
    ]);
    assert_eq!(images::sha256_digest(&raw), index_digest);

    reg.push_oci_layout(dir.path(), "multi", "test/multi:v1");
    let (status, body) = registry::http_get(
        &reg.addr,
        "/v2/test/multi/manifests/v1",
        images::MEDIA_TYPE_INDEX,
    );
    assert_eq!(
        status,
        200,
        "{}\n{}",
        String::from_utf8_lossy(&body),
        reg.log()
    );
    assert_eq!(
        images::sha256_digest(&body),
        index_digest,
        "registry serves the index unchanged"
    );
    let index: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(index["mediaType"], images::MEDIA_TYPE_INDEX);
    let platforms: Vec<(String, String)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["platform"]["architecture"].as_str().unwrap().into(),
                m["digest"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        platforms,
        [
            ("amd64".to_string(), amd64.manifest_digest.clone()),
            ("arm64".to_string(), arm64.manifest_digest.clone())
        ]
    );
    assert_eq!(index["manifests"][1]["platform"]["variant"], "v8");

    let (status, body) = registry::http_get(
        &reg.addr,
        &format!("/v2/test/multi/manifests/{}", arm64.manifest_digest),
        images::MEDIA_TYPE_MANIFEST,
    );
    assert_eq!(status, 200);
    assert_eq!(body, arm64.manifest);
    let (status, body) = registry::http_get(
        &reg.addr,
        &format!("/v2/test/multi/blobs/{}", amd64.layers[0].digest),
        "*/*",
    );
    assert_eq!(status, 200);
    assert_eq!(images::sha256_digest(&body), amd64.layers[0].digest);
    let (status, _) = registry::http_get(
        &reg.addr,
        "/v2/test/multi/manifests/nope",
        images::MEDIA_TYPE_INDEX,
    );
    assert_eq!(status, 404);
}

#[test]
fn registries_run_side_by_side() {
    let Some(a) = Registry::start() else { return };
    let Some(b) = Registry::start() else { return };
    assert_ne!(a.addr, b.addr);
    assert_eq!(registry::http_get(&a.addr, "/v2/", "*/*").0, 200);
    assert_eq!(registry::http_get(&b.addr, "/v2/", "*/*").0, 200);
    let addr = a.addr.clone();
    drop(a);
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "registry stopped on drop"
    );
}

#[test]
fn htpasswd_registry_requires_credentials() {
    if prereq::require_binary("skopeo", "skopeo").is_none() {
        return;
    }
    let Some(reg) = Registry::start_with_htpasswd("berth", "s3cret") else {
        return;
    };
    assert_eq!(registry::http_get(&reg.addr, "/v2/", "*/*").0, 401);
    assert_eq!(
        registry::http_get_auth(&reg.addr, "/v2/", "*/*", Some(("berth", "wrong"))).0,
        401
    );
    assert_eq!(reg.get("/v2/", "*/*").0, 200);
    let img = small_image("amd64", "");
    let dir = tempfile::tempdir().unwrap();
    images::write_oci_layout(dir.path(), &[(&img, "latest")]);
    reg.push_oci_layout(dir.path(), "latest", "private/small:latest");
    let (status, body) = reg.get(
        "/v2/private/small/manifests/latest",
        images::MEDIA_TYPE_MANIFEST,
    );
    assert_eq!(status, 200);
    assert_eq!(body, img.manifest);
    assert_eq!(
        registry::http_get(
            &reg.addr,
            "/v2/private/small/manifests/latest",
            images::MEDIA_TYPE_MANIFEST
        )
        .0,
        401
    );
}

#[test]
fn base64_matches_rfc4648() {
    for (i, o) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(registry::base64(i.as_bytes()), o);
    }
}

fn untar(layer: &images::BuiltLayer, dir: &Path) {
    let archive = dir.with_extension("tar.gz");
    std::fs::write(&archive, &layer.blob).unwrap();
    let out = Command::new("tar")
        .args(["--numeric-owner", "-xzpf"])
        .arg(&archive)
        .arg("-C")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tar -x: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn busybox_layer_runs_under_chroot() {
    if !prereq::require_root("busybox_layer_runs_under_chroot")
        || !prereq::require_busybox("busybox_layer_runs_under_chroot")
        || prereq::require_binary("tar", "tar").is_none()
    {
        return;
    }
    let Some(chroot) = prereq::require_binary("chroot", "coreutils") else {
        return;
    };
    let img = images::busybox_image();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("rootfs");
    std::fs::create_dir(&root).unwrap();
    untar(&img.layers[0], &root);

    let status = Command::new(&chroot)
        .arg(&root)
        .args(["/bin/busybox", "true"])
        .status()
        .unwrap();
    assert!(status.success(), "chroot ROOT /bin/busybox true");
    let out = Command::new(&chroot)
        .arg(&root)
        .args([
            "/bin/sh",
            "-c",
            "id -u app && id -u nobody && ls /bin | grep -c . && test -k /tmp && echo ok",
        ])
        .env_clear()
        .env("PATH", "/bin")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "1000");
    assert_eq!(lines[1], "65534");
    assert!(
        lines[2].parse::<usize>().unwrap() > 100,
        "applet symlinks in /bin"
    );
    assert_eq!(lines[3], "ok");

    let home = std::fs::metadata(root.join("home/app")).unwrap();
    assert_eq!((home.uid(), home.gid()), (1000, 1000));
    assert_eq!(
        std::fs::metadata(root.join("tmp")).unwrap().mode() & 0o7777,
        0o1777
    );
    assert_eq!(
        std::fs::metadata(root.join("root")).unwrap().mode() & 0o7777,
        0o700
    );
    for d in ["proc", "sys", "dev", "etc", "var/www"] {
        assert!(root.join(d).is_dir(), "{d}");
    }
}
