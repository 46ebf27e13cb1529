//! `berth export kubernetes` end to end: every example under examples/ and
//! sets written here (covering every mapping) are exported by the binary
//! and validated offline against the Kubernetes API's JSON schemas by
//! kubernetes-validate (PyPI, pinned in scripts/kube-validate-env.sh, which
//! installs it into a venv; scripts/test.sh exports its path as
//! BERTH_KUBE_VALIDATE). Needs no root.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The Kubernetes version the export's types are pinned to (k8s-openapi's
/// `v1_33` feature, Cargo.toml).
const KUBERNETES_VERSION: &str = "1.33.0";

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// kubernetes-validate's path, installing it when BERTH_KUBE_VALIDATE does
/// not name it. None (after a notice) when it cannot be had outside CI.
fn validator() -> Option<&'static PathBuf> {
    static TOOL: OnceLock<Option<PathBuf>> = OnceLock::new();
    TOOL.get_or_init(|| {
        if let Some(tool) = std::env::var_os("BERTH_KUBE_VALIDATE") {
            return runnable(PathBuf::from(tool));
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kube-validate-env.sh");
        let output = Command::new(&script)
            .stdin(Stdio::null())
            .output()
            .expect("run scripts/kube-validate-env.sh");
        if output.status.success() {
            let path = String::from_utf8_lossy(&output.stdout).trim().to_string();
            return runnable(PathBuf::from(path));
        }
        let why = String::from_utf8_lossy(&output.stderr);
        if in_ci() {
            panic!("kubernetes-validate could not be installed:\n{why}");
        }
        eprintln!("SKIP kube_export: kubernetes-validate could not be installed:\n{why}");
        None
    })
    .as_ref()
}

/// `tool` when it runs here (a venv made by another user may not: its
/// python can sit in a home this user cannot reach).
fn runnable(tool: PathBuf) -> Option<PathBuf> {
    let ran = Command::new(&tool)
        .arg("--version")
        .stdin(Stdio::null())
        .output();
    match ran {
        Ok(output) if output.status.success() => Some(tool),
        other => {
            let why = format!("{} --version failed: {other:?}", tool.display());
            if in_ci() {
                panic!("{why}");
            }
            eprintln!("SKIP kube_export: {why}");
            None
        }
    }
}

fn berth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("berth runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Exports `set` with `extra` flags, expecting success; (stdout, stderr).
fn export(set: &Path, extra: &[&str]) -> (String, String) {
    let set = set.display().to_string();
    let mut args = vec![
        "export",
        "kubernetes",
        "--allow-untrusted-manifests",
        "-f",
        &set,
    ];
    args.extend_from_slice(extra);
    let output = berth(&args);
    assert!(
        output.status.success(),
        "berth {args:?} failed:\n{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    (text(&output.stdout), text(&output.stderr))
}

/// Validates YAML files strictly (unknown fields are errors) against the
/// pinned Kubernetes version; panics with the validator's report.
fn assert_valid(tool: &Path, files: &[PathBuf]) {
    assert!(!files.is_empty(), "nothing to validate");
    let output = Command::new(tool)
        .args(["--strict", "--quiet", "-k", KUBERNETES_VERSION])
        .args(files)
        .stdin(Stdio::null())
        .output()
        .expect("run kubernetes-validate");
    assert!(
        output.status.success(),
        "kubernetes-validate refused the export:\n{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
}

/// Exports `set` as a stream and as one file per object (as Deployments and
/// with --pods) and validates all of it. Returns the stream and stderr.
fn export_and_validate(tool: &Path, set: &Path, scratch: &Path) -> (String, String) {
    let (stream, stderr) = export(set, &[]);
    let stream_file = scratch.join("stream.yaml");
    fs::write(&stream_file, &stream).expect("write stream");
    let dir = scratch.join("objects");
    export(set, &["-o", &dir.display().to_string()]);
    let pods_dir = scratch.join("pods");
    export(set, &["--pods", "-o", &pods_dir.display().to_string()]);
    let mut files = vec![stream_file];
    for dir in [&dir, &pods_dir] {
        let mut listed: Vec<PathBuf> = fs::read_dir(dir)
            .expect("list output dir")
            .map(|e| e.expect("entry").path())
            .collect();
        listed.sort();
        files.extend(listed);
    }
    assert_valid(tool, &files);
    (stream, stderr)
}

fn example_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut dirs: Vec<PathBuf> = fs::read_dir(&root)
        .expect("examples/ exists")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir() && p.file_name().is_some_and(|n| n != "images"))
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn every_example_exports_to_objects_the_kubernetes_schemas_accept() {
    let Some(tool) = validator() else { return };
    let dirs = example_dirs();
    assert!(dirs.len() >= 4, "{dirs:?}");
    for dir in dirs {
        let scratch = tempfile::tempdir().expect("temp dir");
        let (stream, _) = export_and_validate(tool, &dir, scratch.path());
        assert!(stream.starts_with("---\napiVersion: "), "{stream}");
    }
}

#[test]
fn the_quickstart_exports_deployments_a_service_and_warnings_with_lines() {
    let quickstart = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart");
    let (stream, stderr) = export(&quickstart, &[]);
    let kinds: Vec<&str> = stream
        .lines()
        .filter_map(|l| l.strip_prefix("kind: "))
        .collect();
    assert_eq!(kinds, ["Service", "Deployment", "Deployment"], "{stream}");
    assert!(stream.contains("name: wait-for-web"), "{stream}");
    let image_warning = stderr
        .lines()
        .find(|l| l.contains("push the image") && l.contains("web.yaml"))
        .unwrap_or_else(|| panic!("no image warning in:\n{stderr}"));
    assert!(
        image_warning.starts_with("warning: ")
            && image_warning.contains("web.yaml:15:10: spec.image"),
        "{image_warning}"
    );
    assert!(stderr.contains("exported 3 Kubernetes objects"), "{stderr}");
}

#[test]
fn one_file_per_object_is_named_by_kind_and_name() {
    let quickstart = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart");
    let scratch = tempfile::tempdir().expect("temp dir");
    let dir = scratch.path().join("out");
    let (stdout, _) = export(&quickstart, &["-o", &dir.display().to_string()]);
    assert!(stdout.is_empty(), "nothing on stdout with -o: {stdout}");
    let mut names: Vec<String> = fs::read_dir(&dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "deployment-client.yaml",
            "deployment-web.yaml",
            "service-web.yaml"
        ]
    );
    let service = fs::read_to_string(dir.join("service-web.yaml")).expect("read");
    assert!(
        service.starts_with("apiVersion: v1\nkind: Service\n"),
        "{service}"
    );
}

#[test]
fn an_invalid_set_exports_nothing_and_says_why() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let file = scratch.path().join("bad.yaml");
    fs::write(
        &file,
        "apiVersion: berth/v1\nkind: Container\nmetadata: {name: web}\nspec: {restart: {policy: sometimes}}\n",
    )
    .expect("write");
    let output = berth(&[
        "export",
        "kubernetes",
        "--allow-untrusted-manifests",
        "-f",
        &file.display().to_string(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stdout).is_empty());
    assert!(
        text(&output.stderr).contains("bad.yaml:4:"),
        "{}",
        text(&output.stderr)
    );
}

/// A set that touches every mapping: deployment and pod, service, volume
/// claim, tmpfs, bind mount, env and env files with a secret, the three
/// probe kinds with a start period and restart on unhealthy, dependencies,
/// resources, security context, an internal and an open network, an
/// Indexed Job, a CronJob, host selection.
const EVERY_MAPPING: &str = r#"
apiVersion: berth/v1
kind: Network
metadata: {name: backend, labels: {tier: data}}
spec: {internal: true, subnet: 10.77.0.0/24}
---
apiVersion: berth/v1
kind: Network
metadata: {name: front}
---
apiVersion: berth/v1
kind: Volume
metadata: {name: pgdata}
spec: {labels: {backup: daily}}
---
apiVersion: berth/v1
kind: Container
metadata: {name: db, labels: {app: shop, note: "free text"}}
spec:
  image: docker.io/library/postgres:16
  imagePullPolicy: Always
  user: "999:999"
  envFiles: [db.env]
  env: {PGDATA: /var/lib/postgresql/data/pg}
  mounts:
    - {type: volume, source: pgdata, target: /var/lib/postgresql/data}
    - {type: tmpfs, target: /run/postgresql, options: [size=16m, mode=1777]}
  networks: [{name: backend, ip: 10.77.0.10, aliases: [postgres]}]
  ports: [{containerPort: 5432, hostPort: 15432, hostIP: 127.0.0.1}]
  healthcheck:
    tcp: {port: 5432}
    interval: 5s
    timeout: 500ms
    startPeriod: 30s
    onUnhealthy: restart
  resources: {memory: 512Mi, cpus: 1.5, pids: 200}
  capabilities: {drop: [ALL], add: [CAP_CHOWN, SETUID, SETGID, DAC_OVERRIDE, FOWNER]}
  stopSignal: SIGINT
  stopGracePeriod: 30s
  logging: {maxSize: 20Mi, maxFiles: 3}
---
apiVersion: berth/v1
kind: Container
metadata: {name: api, hosts: {matchLabels: {role: app, hostname: node1}}}
spec:
  image: registry.example:5000/shop/api@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
  command: [/api]
  args: [--listen, ":8080"]
  workingDir: /srv
  hostname: api-host
  readOnlyRootfs: true
  seccomp: ./profiles/api.json
  env: [{name: MODE, value: prod}, {name: WORKERS, value: 4}]
  networks: [backend, front]
  ports: [{containerPort: 8080, hostPort: 80}, {containerPort: 9000, protocol: udp}]
  mounts:
    - {type: bind, source: ./conf, target: /etc/api, readOnly: true}
  healthcheck:
    http: {path: /healthz, port: 8080, headers: {X-Probe: berth}}
    interval: 10s
  dependsOn:
    - {name: db, condition: healthy}
    - {name: migrate, condition: completed}
  restart: {policy: never}
---
apiVersion: berth/v1
kind: Container
metadata: {name: tools, hosts: [edge-*]}
spec:
  image: oci-layout:./images/tools:v3
  privileged: {hostDevices: false}
  networkMode: host
  devices: [/dev/fuse]
  user: nobody
  healthcheck: {exec: [pgrep, tools]}
  restart: {policy: on-failure, maxRetries: 2, backoff: {initial: 1s}}
---
apiVersion: berth/v1
kind: Container
metadata: {name: sandbox}
spec:
  image: busybox:1.36
  networkMode: none
  seccomp: unconfined
  noNewPrivileges: false
  dependsOn: [tools]
---
apiVersion: berth/v1
kind: Job
metadata: {name: migrate, labels: {app: shop}}
spec:
  completions: 4
  parallelism: 2
  completionMode: Indexed
  backoffLimit: 3
  activeDeadline: 10m
  ttlAfterFinished: 1500ms
  restartPolicy: OnFailure
  backoff: {initial: 5s, max: 1m}
  template:
    image: docker.io/library/postgres:16
    command: [sh, -c, 'migrate --shard "$BERTH_JOB_INDEX"']
    envFiles: [db.env]
    networks: [backend]
    ports: [{containerPort: 7000}]
    dependsOn: [db]
---
apiVersion: berth/v1
kind: Job
metadata: {name: nightly}
spec:
  schedule: "@daily"
  concurrencyPolicy: Forbid
  historyLimit: 7
  template:
    image: docker.io/library/busybox:1.36
    command: [sh, -c, 'echo backup']
    mounts: [{type: volume, source: pgdata, target: /data, readOnly: true}]
"#;

/// The set above in a directory of its own, with its env file.
fn every_mapping_set(dir: &Path) -> PathBuf {
    let set = dir.join("set");
    fs::create_dir_all(set.join("conf")).expect("mkdir");
    fs::create_dir_all(set.join("profiles")).expect("mkdir");
    fs::write(
        set.join("profiles/api.json"),
        "{\"defaultAction\": \"SCMP_ACT_ALLOW\"}\n",
    )
    .expect("write profile");
    fs::write(set.join("all.yaml"), EVERY_MAPPING).expect("write set");
    fs::write(
        set.join("db.env"),
        "# postgres\nPOSTGRES_USER=shop\nPOSTGRES_PASSWORD=\"s3cret\"\nexport POSTGRES_DB=shop\n",
    )
    .expect("write env file");
    set
}

#[test]
fn a_set_with_every_mapping_exports_to_objects_the_kubernetes_schemas_accept() {
    let Some(tool) = validator() else { return };
    let scratch = tempfile::tempdir().expect("temp dir");
    let set = every_mapping_set(scratch.path());
    let (stream, stderr) = export_and_validate(tool, &set, scratch.path());
    let mut kinds: Vec<&str> = stream
        .lines()
        .filter_map(|l| l.strip_prefix("kind: "))
        .collect();
    kinds.sort();
    kinds.dedup();
    assert_eq!(
        kinds,
        [
            "ConfigMap",
            "CronJob",
            "Deployment",
            "Job",
            "NetworkPolicy",
            "PersistentVolumeClaim",
            "Secret",
            "Service"
        ],
        "{stream}"
    );
    // Every warning points at the manifest's text.
    for line in stderr.lines().filter(|l| l.starts_with("warning: ")) {
        assert!(
            line.contains("all.yaml:"),
            "a warning without its place: {line}"
        );
    }
    for needle in [
        "hostPath",
        "PersistentVolumeClaim asking for 1Gi",
        "POSTGRES_PASSWORD",
        "network front has no counterpart",
        "waiting for Job migrate",
        "hostname globs",
        "device plugin",
        "privileged container without the host's devices",
        "Localhost profile",
        "\"nobody\" is a name",
        "networkMode none",
        "tools publishes no TCP port",
        "ClusterIP Service db",
        "become annotations",
    ] {
        assert!(
            stderr.contains(needle),
            "no warning mentions {needle:?}:\n{stderr}"
        );
    }
}

/// The compose corpus (tests/fixtures/compose/), converted by `berth
/// convert compose` and then exported: what comes in from compose goes out
/// to Kubernetes as objects its schemas accept.
#[test]
fn every_compose_corpus_stack_converts_then_exports_to_objects_the_kubernetes_schemas_accept() {
    let Some(tool) = validator() else { return };
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/compose");
    let mut stacks: Vec<PathBuf> = fs::read_dir(&corpus)
        .expect("the compose corpus exists")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    stacks.sort();
    assert!(stacks.len() >= 10, "{stacks:?}");
    for stack in stacks {
        let scratch = tempfile::tempdir().expect("temp dir");
        let manifests = scratch.path().join("manifests");
        let converted = Command::new(env!("CARGO_BIN_EXE_berth"))
            .current_dir(&stack)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .args(["convert", "compose", ".", "-o"])
            .arg(&manifests)
            .stdin(Stdio::null())
            .output()
            .expect("berth convert runs");
        assert!(
            converted.status.success(),
            "convert {} failed:\n{}",
            stack.display(),
            text(&converted.stderr)
        );
        export_and_validate(tool, &manifests, scratch.path());
    }
}
