//! berth runs as root; every other local user may be an attacker. As the
//! unprivileged user `berthtest` (created if missing), with the path to
//! berth's directories open to everyone (only berth's own modes may
//! protect them), none of this works:
//! - reading a container's spec (`config.json` holds its env values),
//! - reaching unpacked layers or a container's writable layer, so a setuid
//!   file the container wrote cannot be run from the host,
//! - opening (and so flocking) the reconcile lock.
//!
//! Regression: `--root` and `--state` were created 0755 and config.json
//! 0644, so any user could read secrets and run a container's setuid-root
//! file as root from the host side.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::prereq;
use common::site::{container_yaml, Site};

const USER: &str = "berthtest";

fn ensure_user() {
    if Command::new("id")
        .arg(USER)
        .output()
        .unwrap()
        .status
        .success()
    {
        return;
    }
    let created = Command::new("useradd")
        .args(["--create-home", "--shell", "/usr/sbin/nologin", USER])
        .status()
        .expect("run useradd");
    // Another test may have created it meanwhile.
    assert!(
        created.success()
            || Command::new("id")
                .arg(USER)
                .output()
                .unwrap()
                .status
                .success(),
        "useradd {USER} failed"
    );
}

/// Runs `args` as the unprivileged user; whether it succeeded.
fn as_user(args: &[&str]) -> bool {
    Command::new("runuser")
        .args(["-u", USER, "--"])
        .args(args)
        .output()
        .expect("run runuser")
        .status
        .success()
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

#[test]
fn another_local_user_reaches_nothing_berth_keeps() {
    let test = "another_local_user_reaches_nothing_berth_keeps";
    if !prereq::require_apply(test) || prereq::require_binary("runuser", "util-linux").is_none() {
        return;
    }
    ensure_user();
    let site = Site::new("la");
    let name = format!("la-{}", site.tag);
    site.write(
        "web.yaml",
        &container_yaml(
            &name,
            "  networkMode: none\n  env: {API_TOKEN: s3cret}\n  command: [sh, -c, 'cp /bin/busybox /suid && chmod 4755 /suid && sleep 3600']\n",
        ),
    );
    site.apply(&[]);
    site.pid_of(&name);
    // Everything up to berth's directories is open to everyone.
    fs::set_permissions(site.path(), fs::Permissions::from_mode(0o755)).unwrap();

    let root = site.root();
    let state = site.state();
    let spec = state.join(format!("containers/{name}/bundle/config.json"));
    assert!(fs::read_to_string(&spec).unwrap().contains("s3cret"));
    let upper = root.join(format!("snapshots/containers/{name}/upper/suid"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !upper.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the container never wrote /suid"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_ne!(
        fs::metadata(&upper).unwrap().permissions().mode() & 0o4000,
        0
    );

    assert!(
        as_user(&["test", "-x", path(site.path())]),
        "the way there is open"
    );
    assert!(
        !as_user(&["cat", path(&spec)]),
        "the spec (with its env) is readable"
    );
    assert!(
        !as_user(&[path(&upper), "true"]),
        "the container's setuid file runs"
    );
    assert!(
        !as_user(&["ls", path(&root.join("snapshots/layers"))]),
        "layers are listable"
    );
    assert!(
        !as_user(&[
            "sh",
            "-c",
            &format!("exec 3<>{}", path(&state.join("reconcile.lock")))
        ]),
        "the reconcile lock can be opened"
    );
    // Root sees env names; values only when asked.
    let shown = site.inspect(&name).to_string();
    assert!(
        shown.contains("API_TOKEN") && !shown.contains("s3cret"),
        "{shown}"
    );
    let asked = site.ok(&["inspect", "--show-env", &name]);
    assert!(asked.contains("s3cret"), "{asked}");
    for dir in [&root, &state] {
        let mode = fs::metadata(dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", dir.display());
    }
}

/// Fails unless `dir`, where a planted link pointed, is still empty.
fn assert_empty(dir: &Path, what: &str) {
    let left: Vec<_> = fs::read_dir(dir).unwrap().flatten().collect();
    assert!(
        left.is_empty(),
        "{what}: written through the link: {left:?}"
    );
}

/// A symbolic link planted where berth keeps its own state is refused and
/// named, never followed: berth (root) would otherwise write where the
/// link points. Regression: a link in place of a container's state dir or
/// an events directory was followed.
#[test]
fn a_planted_link_in_berths_state_redirects_no_write() {
    let test = "a_planted_link_in_berths_state_redirects_no_write";
    if !prereq::require_apply(test) {
        return;
    }
    let site = Site::new("pl");
    let elsewhere = site.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    let untouched = |what: &str| assert_empty(&elsewhere, what);
    // A first apply creates berth's directories.
    let first = format!("pl-{}", site.tag);
    let yaml =
        |name: &str| container_yaml(name, "  networkMode: none\n  command: [sleep, '3600']\n");
    site.write("first.yaml", &yaml(&first));
    site.apply(&[]);

    // In place of a container's state directory.
    let name = format!("pl2-{}", site.tag);
    let planted = site.state().join(format!("containers/{name}"));
    std::os::unix::fs::symlink(&elsewhere, &planted).unwrap();
    let image = site.busybox();
    let run = ["run", "-d", "--name", &name, "--network", "none"];
    let error = site.fails(&[&run[..], &[&image, "true"]].concat());
    assert!(
        error.contains(&planted.display().to_string()) && error.contains("symbolic link"),
        "{error}"
    );
    untouched("container state dir");
    let _ = fs::remove_file(&planted);

    // In place of a volume's directory.
    let volume = format!("vol-{}", site.tag);
    let planted = site.root().join(format!("volumes/{volume}"));
    fs::create_dir_all(site.root().join("volumes")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &planted).unwrap();
    let mount = format!("{volume}:/data");
    let error = site.fails(&[&run[..], &["-v", &mount, &image, "true"]].concat());
    assert!(error.contains("symbolic link"), "{error}");
    untouched("volume dir");
    // The failed run's clean-up may have removed the link (never its target).
    let _ = fs::remove_file(&planted);

    // In place of the events directory (one of berth's own top-level
    // directories): refused on start, naming it, before anything is done.
    let events = site.root().join("events");
    if events.exists() {
        fs::remove_dir_all(&events).unwrap();
    }
    std::os::unix::fs::symlink(&elsewhere, &events).unwrap();
    site.remove("first.yaml");
    site.write("second.yaml", &yaml(&name));
    let output = site.apply_command(&["--prune"]).output().unwrap();
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{error}");
    assert!(
        error.contains(&events.display().to_string()) && error.contains("symbolic link"),
        "{error}"
    );
    untouched("events dir");
    fs::remove_file(&events).unwrap();
}

/// A setuid file that comes with an image keeps its bits inside the
/// container (images expect that), while on the host the unpacked copy
/// sits where no other user can reach it, so it never runs as root for one.
#[test]
fn an_images_setuid_file_works_inside_and_is_out_of_reach_outside() {
    let test = "an_images_setuid_file_works_inside_and_is_out_of_reach_outside";
    if !prereq::require_apply(test) || prereq::require_binary("runuser", "util-linux").is_none() {
        return;
    }
    ensure_user();
    use common::images::{self as img, Entry, ImageSpec, Layer};
    let instance = common::instance::Instance::new();
    let busybox = fs::read("/bin/busybox").unwrap();
    let spec = ImageSpec {
        layers: vec![
            img::busybox_layer(),
            Layer::gzip(vec![Entry::file_mode("usr/bin/suidbox", busybox, 0o4755)]),
        ],
        ..ImageSpec::busybox()
    };
    let layout = instance.path().join("images/suid");
    img::write_oci_layout(&layout, &[(&img::build_image(&spec), "latest")]);
    let image = format!("oci-layout:{}", layout.display());
    let mode = instance.ok(&[
        "run",
        "--rm",
        &image,
        "stat",
        "-c",
        "%a",
        "/usr/bin/suidbox",
    ]);
    assert_eq!(mode.trim(), "4755", "setuid bits inside the container");

    let found = Command::new("find")
        .arg(instance.root())
        .args(["-name", "suidbox", "-perm", "-4000"])
        .output()
        .unwrap();
    let unpacked = String::from_utf8_lossy(&found.stdout);
    let unpacked = unpacked.lines().next().expect("the unpacked setuid file");
    fs::set_permissions(instance.path(), fs::Permissions::from_mode(0o755)).unwrap();
    assert!(
        !as_user(&[unpacked, "true"]),
        "{unpacked} runs for another user"
    );
}

/// A link planted *inside* berth's stores (below the top-level directories
/// checked on every start) is refused and named where berth reaches it,
/// never followed: in place of an unpacked layer (an overlay lower dir the
/// kernel would resolve through the link) and of the content store's blob
/// directory.
#[test]
fn a_planted_link_inside_berths_stores_redirects_nothing() {
    let test = "a_planted_link_inside_berths_stores_redirects_nothing";
    if !prereq::require_apply(test) {
        return;
    }
    let site = Site::new("ps");
    let elsewhere = site.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    let untouched = |what: &str| assert_empty(&elsewhere, what);
    let image = site.busybox();
    let run = |name: &str| {
        site.run(&[
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "none",
            &image,
            "sleep",
            "3600",
        ])
    };
    let first = format!("ps1-{}", site.tag);
    let output = run(&first);
    assert!(output.status.success(), "{output:?}");

    // An unpacked layer swapped for a link to a directory of the same
    // shape: a new container must not get that directory as its rootfs.
    let layers = site.root().join("snapshots/layers");
    let layer = fs::read_dir(&layers)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("fs").is_dir())
        .expect("an unpacked layer");
    let moved = site.path().join("layer-moved");
    fs::rename(&layer, &moved).unwrap();
    fs::create_dir(elsewhere.join("fs")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &layer).unwrap();
    let second = format!("ps2-{}", site.tag);
    let output = run(&second);
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "ran on a planted layer: {output:?}"
    );
    assert!(
        error.contains(&layer.display().to_string()) && error.contains("symbolic link"),
        "{error}"
    );
    assert_empty(&elsewhere.join("fs"), "layer");
    fs::remove_file(&layer).unwrap();
    fs::rename(&moved, &layer).unwrap();
    fs::remove_dir(elsewhere.join("fs")).unwrap();
    let _ = site.run(&["rm", "-f", &second]);

    // The content store's blob directory swapped for a link.
    let blobs = site.root().join("content/blobs/sha256");
    let moved = site.path().join("blobs-moved");
    fs::rename(&blobs, &moved).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &blobs).unwrap();
    let output = site.run(&["image", "import", &image, "--name", "again"]);
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "imported through a link: {output:?}"
    );
    assert!(
        error.contains(&blobs.display().to_string()) && error.contains("symbolic link"),
        "{error}"
    );
    untouched("content store");
    fs::remove_file(&blobs).unwrap();
    fs::rename(&moved, &blobs).unwrap();
}

/// The daemon's socket answers status and streams events, and its record
/// keeps the manifests' text: with every directory on the way opened (an
/// administrator's chmod), the socket's own mode and the daemon's record
/// directory still keep another user out.
#[test]
fn another_local_user_cannot_reach_the_daemon() {
    let test = "another_local_user_cannot_reach_the_daemon";
    if !prereq::require_apply(test) || prereq::require_binary("runuser", "util-linux").is_none() {
        return;
    }
    ensure_user();
    let site = Site::new("ld");
    let name = format!("ld-{}", site.tag);
    site.write(
        "web.yaml",
        &container_yaml(
            &name,
            "  networkMode: none\n  env: {API_TOKEN: s3cret}\n  command: [sleep, '3600']\n",
        ),
    );
    let manifests = path(&site.manifests).to_string();
    let mut daemon = site
        .command(&[
            "daemon",
            "--allow-untrusted-manifests",
            "--resync",
            "1h",
            "--watch",
            &manifests,
        ])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("berth daemon starts");
    let socket = site.state().join("daemon.sock");
    let record = site.root().join("daemon/generation.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !(socket.exists() && record.exists()) {
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon never listened"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(fs::read_to_string(&record).unwrap().contains("s3cret"));
    fs::set_permissions(site.path(), fs::Permissions::from_mode(0o755)).unwrap();
    for dir in [site.root(), site.state()] {
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o711)).unwrap();
    }
    assert_eq!(
        fs::metadata(&socket).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let connect = "import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b'{\"get\":\"status\"}\\n'); sys.exit(0 if s.recv(10) else 1)";
    assert!(
        Command::new("python3")
            .args(["-c", connect, path(&socket)])
            .status()
            .unwrap()
            .success(),
        "root is answered"
    );
    assert!(
        !as_user(&["python3", "-c", connect, path(&socket)]),
        "another user reached the daemon's socket"
    );
    assert!(
        !as_user(&["cat", path(&record)]),
        "another user read the daemon's record of the manifests"
    );
    common::host::signal(daemon.id(), libc::SIGTERM);
    assert!(
        daemon.wait().unwrap().success(),
        "SIGTERM ends the daemon with 0"
    );
}
