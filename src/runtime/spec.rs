//! OCI runtime spec generation: a Container spec plus its image config become
//! the `config.json` runc runs. Pure apart from reading the image's own files
//! (through [`Rootfs`]), so every rule here is unit-tested.
//!
//! Semantics follow Kubernetes: `command` replaces the image entrypoint and
//! `args` its cmd; image env is merged under env files, which are merged under
//! manifest env. Defaults follow containerd and Docker: their capability set,
//! masked and read-only paths, no-new-privileges, the standard /proc, /dev,
//! /dev/pts, /dev/shm, /dev/mqueue and /sys mounts, a device allow-list, and
//! a default seccomp profile.

use std::path::PathBuf;

use oci_spec::runtime::Spec;
use serde::Deserialize;
use serde_json::{json, Value};

use super::rootfs::{Rootfs, RootfsError};
use super::seccomp;
use super::user::{resolve_user, UserError};
use crate::manifest::vocabulary::Capability;
use crate::manifest::ContainerSpec;

/// Docker's and containerd's default capabilities.
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
    // Names every block device of the host (and, through it, their
    // sysfs attributes): nothing a container needs to see.
    "/sys/dev/block",
];

const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error(
        "no command to run: the image has no entrypoint or cmd and the manifest sets no command"
    )]
    NoCommand,
    #[error(transparent)]
    User(#[from] UserError),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error("capability {0:?} is not one berth knows")]
    UnknownCapability(String),
    #[error(
        "the container's environment has {count} entries (image config, env files, manifest), \
         over the bound of {limit} (raise it with --max-env-entries)"
    )]
    TooManyEnv { count: usize, limit: usize },
    #[error("the generated runtime spec is invalid: {0}")]
    Invalid(String),
}

/// The parts of an image config that shape the process.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageConfig {
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
}

impl ImageConfig {
    /// Reads the `config` object of an OCI image config document. Labels and
    /// everything else are ignored: image content never becomes berth settings.
    pub fn from_image_config_json(bytes: &[u8]) -> Result<Self, SpecError> {
        #[derive(Deserialize)]
        struct Outer {
            #[serde(default)]
            config: Option<ImageConfig>,
        }
        let outer: Outer = serde_json::from_slice(bytes)
            .map_err(|e| SpecError::Invalid(format!("image config: {e}")))?;
        Ok(outer.config.unwrap_or_default())
    }
}

/// How the container is networked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkNamespace {
    /// The host's namespace.
    Host,
    /// A fresh namespace (loopback only).
    New,
    /// A pinned namespace at this path.
    Path(PathBuf),
}

/// A mount with its host side resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolvedMount {
    Bind {
        source: PathBuf,
        target: String,
        read_only: bool,
        options: Vec<String>,
    },
    Tmpfs {
        target: String,
        read_only: bool,
        options: Vec<String>,
    },
}

/// A host device to expose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostDevice {
    pub container_path: String,
    /// `c` or `b`.
    pub kind: char,
    pub major: i64,
    pub minor: i64,
    pub permissions: String,
    pub file_mode: u32,
}

/// Berth-managed files bind-mounted over the image's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcFiles {
    pub hosts: PathBuf,
    pub resolv_conf: PathBuf,
    pub hostname: PathBuf,
}

pub struct SpecInput<'a> {
    pub container: &'a ContainerSpec,
    pub image: &'a ImageConfig,
    pub rootfs: &'a Rootfs,
    pub hostname: String,
    /// Variables from env files, in file order (manifest env wins over them).
    pub env_file_vars: Vec<(String, String)>,
    pub mounts: Vec<ResolvedMount>,
    pub devices: Vec<HostDevice>,
    pub etc: Option<EtcFiles>,
    pub network: NetworkNamespace,
    pub cgroups_path: String,
    /// The caller's hard RLIMIT_NOFILE; runc refuses a container above it.
    pub nofile_hard: u64,
    /// A seccomp profile read from the manifest's path (OCI format).
    pub seccomp_profile: Option<Value>,
    /// Extra environment set by berth (job index and the like).
    pub berth_env: Vec<(String, String)>,
    /// The capabilities berth itself may hand out ([`host_bounding_set`]).
    pub host_bounding: u64,
    /// Allocate a terminal for the process.
    pub terminal: bool,
    /// More environment variables than this is an error.
    pub max_env_entries: usize,
}

/// The process arguments, by Kubernetes' rules.
pub fn process_args(
    container: &ContainerSpec,
    image: &ImageConfig,
) -> Result<Vec<String>, SpecError> {
    let image_entrypoint = image.entrypoint.clone().unwrap_or_default();
    let image_cmd = image.cmd.clone().unwrap_or_default();
    let args = match (&container.command, &container.args) {
        (Some(command), Some(args)) => [command.clone(), args.clone()].concat(),
        (Some(command), None) => command.clone(),
        (None, Some(args)) => [image_entrypoint, args.clone()].concat(),
        (None, None) => [image_entrypoint, image_cmd].concat(),
    };
    if args.is_empty() {
        return Err(SpecError::NoCommand);
    }
    Ok(args)
}

/// Variables by name, later settings winning, in first-set order; linear in
/// the number of settings (a hostile image may bring 100k of them).
#[derive(Default)]
struct EnvBuilder {
    vars: Vec<(String, String)>,
    index: std::collections::HashMap<String, usize>,
}

impl EnvBuilder {
    fn set(&mut self, name: &str, value: &str) {
        match self.index.get(name) {
            Some(&slot) => self.vars[slot].1 = value.to_string(),
            None => {
                self.index.insert(name.to_string(), self.vars.len());
                self.vars.push((name.to_string(), value.to_string()));
            }
        }
    }

    fn set_default(&mut self, name: &str, value: &str) {
        if !self.index.contains_key(name) {
            self.set(name, value);
        }
    }
}

/// Image env, then env files, then manifest env, then berth's own; later
/// wins. More than `limit` variables is an error (a bomb, not a config).
pub fn process_env(input: &SpecInput<'_>, limit: usize) -> Result<Vec<String>, SpecError> {
    let mut env = EnvBuilder::default();
    let image = input.image.env.as_deref().unwrap_or_default();
    let manifest = input
        .container
        .env
        .as_ref()
        .map(|e| e.pairs())
        .unwrap_or_default();
    let count = image.len() + input.env_file_vars.len() + manifest.len() + input.berth_env.len();
    if count > limit {
        return Err(SpecError::TooManyEnv { count, limit });
    }
    for entry in image {
        let (name, value) = entry.split_once('=').unwrap_or((entry, ""));
        env.set(name, value);
    }
    for (name, value) in &input.env_file_vars {
        env.set(name, value);
    }
    for (name, value) in manifest {
        env.set(name, value);
    }
    for (name, value) in &input.berth_env {
        env.set(name, value);
    }
    let (name, value) = DEFAULT_PATH.split_once('=').unwrap_or(("PATH", ""));
    env.set_default(name, value);
    env.set_default("HOSTNAME", &input.hostname);
    Ok(env
        .vars
        .into_iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect())
}

fn full_capability_name(name: &str) -> Result<String, SpecError> {
    let upper = name.to_ascii_uppercase();
    if upper.strip_prefix("CAP_").unwrap_or(&upper) == "ALL" {
        return Ok("CAP_ALL".into());
    }
    Capability::parse(name)
        .map(Capability::oci_name)
        .ok_or_else(|| SpecError::UnknownCapability(name.to_string()))
}

/// This process's capability bounding set: what a privileged container can get.
pub fn host_bounding_set() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX)
}

/// The effective capability set: defaults (or, when privileged, every one
/// the host lets berth hand out), minus drops (`ALL` drops every one), plus adds.
pub fn capabilities(
    container: &ContainerSpec,
    host_bounding: u64,
) -> Result<Vec<String>, SpecError> {
    let all: Vec<String> = Capability::all()
        .filter(|c| host_bounding & (1u64 << c.bit()) != 0)
        .map(Capability::oci_name)
        .collect();
    let mut caps: Vec<String> = if container.privileged.is_privileged() {
        all.clone()
    } else {
        DEFAULT_CAPABILITIES.iter().map(|c| c.to_string()).collect()
    };
    if let Some(changes) = &container.capabilities {
        for drop in &changes.drop {
            let name = full_capability_name(drop)?;
            if name == "CAP_ALL" {
                caps.clear();
            } else {
                caps.retain(|c| *c != name);
            }
        }
        for add in &changes.add {
            let name = full_capability_name(add)?;
            if name == "CAP_ALL" {
                caps = all.clone();
            } else if !caps.contains(&name) {
                caps.push(name);
            }
        }
    }
    Ok(caps)
}

fn default_mounts(container: &ContainerSpec, network: &NetworkNamespace) -> Vec<Value> {
    let sys_options = if container.privileged.is_privileged() {
        json!(["nosuid", "noexec", "nodev"])
    } else {
        json!(["nosuid", "noexec", "nodev", "ro"])
    };
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
    ];
    // sysfs can only be mounted from a network namespace of our own; with the
    // host's, bind the host's /sys read-only instead (as Docker does).
    if *network == NetworkNamespace::Host {
        mounts.push(json!({"destination": "/sys", "type": "bind", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}));
    } else {
        mounts.push(json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": sys_options}));
    }
    mounts.push(json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}));
    mounts
}

/// A user mount's options: the kind's own, `ro` when asked, then the user's.
fn mount_options(base: &[&str], read_only: bool, extra: &[String]) -> Vec<String> {
    let mut options: Vec<String> = base.iter().map(|o| o.to_string()).collect();
    if read_only {
        options.push("ro".into());
    }
    options.extend(extra.iter().cloned());
    options
}

fn user_mounts(input: &SpecInput<'_>) -> Result<Vec<Value>, SpecError> {
    let mut mounts = Vec::new();
    for mount in &input.mounts {
        let entry = match mount {
            ResolvedMount::Bind {
                source,
                target,
                read_only,
                options,
            } => {
                input.rootfs.check_container_path("mount target", target)?;
                let options = mount_options(&["rbind", "nosuid", "nodev"], *read_only, options);
                json!({"destination": target, "type": "bind", "source": source, "options": options})
            }
            ResolvedMount::Tmpfs {
                target,
                read_only,
                options,
            } => {
                input.rootfs.check_container_path("mount target", target)?;
                let options = mount_options(&["nosuid", "nodev", "mode=1777"], *read_only, options);
                json!({"destination": target, "type": "tmpfs", "source": "tmpfs", "options": options})
            }
        };
        mounts.push(entry);
    }
    if let Some(etc) = &input.etc {
        for (target, source) in [
            ("/etc/hosts", &etc.hosts),
            ("/etc/resolv.conf", &etc.resolv_conf),
            ("/etc/hostname", &etc.hostname),
        ] {
            mounts.push(json!({"destination": target, "type": "bind", "source": source, "options": ["rbind", "nosuid", "nodev", "noexec", "ro"]}));
        }
    }
    Ok(mounts)
}

/// Containerd's default device cgroup rules: deny all, then allow the usual
/// character devices. Only privileged with host devices allows every device:
/// without them, a container with CAP_MKNOD must still not reach the host's
/// disks through a node it makes itself.
fn device_rules(input: &SpecInput<'_>) -> Vec<Value> {
    if input.container.privileged.host_devices() {
        return vec![json!({"allow": true, "access": "rwm"})];
    }
    let mut rules = vec![json!({"allow": false, "access": "rwm"})];
    for (major, minor) in [
        (1, 3),
        (1, 5),
        (1, 7),
        (1, 8),
        (1, 9),
        (5, 0),
        (5, 1),
        (5, 2),
        (136, -1),
        (10, 200),
    ] {
        let mut rule = json!({"allow": true, "type": "c", "major": major, "access": "rwm"});
        if minor >= 0 {
            rule["minor"] = json!(minor);
        }
        rules.push(rule);
    }
    for device in &input.devices {
        rules.push(json!({"allow": true, "type": device.kind.to_string(), "major": device.major, "minor": device.minor, "access": device.permissions}));
    }
    rules
}

fn resources(container: &ContainerSpec, devices: Vec<Value>) -> Value {
    let mut resources = json!({"devices": devices});
    if let Some(limits) = &container.resources {
        if let Some(memory) = limits.memory {
            resources["memory"] = json!({"limit": memory.0});
        }
        if let Some(cpus) = limits.cpus {
            let period: u64 = 100_000;
            resources["cpu"] =
                json!({"quota": (cpus * period as f64).round() as i64, "period": period});
        }
        if let Some(pids) = limits.pids {
            resources["pids"] = json!({"limit": pids});
        }
    }
    resources
}

/// Generates the runtime spec.
pub fn generate(input: &SpecInput<'_>) -> Result<Spec, SpecError> {
    input.rootfs.check_special_dirs()?;
    let container = input.container;
    let args = process_args(container, input.image)?;
    let user_text = container
        .user
        .clone()
        .or_else(|| input.image.user.clone())
        .unwrap_or_default();
    let user = resolve_user(&user_text, Some(input.rootfs))?;
    let cwd = container
        .working_dir
        .clone()
        .or_else(|| input.image.working_dir.clone().filter(|w| !w.is_empty()))
        .unwrap_or_else(|| "/".to_string());
    input
        .rootfs
        .check_container_path("working directory", &cwd)?;
    let caps = capabilities(container, input.host_bounding)?;
    let nofile = input.nofile_hard.min(1_048_576);

    let mut process = json!({
        "terminal": input.terminal,
        "user": {"uid": user.uid, "gid": user.gid},
        "args": args,
        "env": process_env(input, input.max_env_entries)?,
        "cwd": cwd,
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": nofile, "soft": nofile}],
        "noNewPrivileges": container.no_new_privileges,
    });
    if !user.additional_gids.is_empty() {
        process["user"]["additionalGids"] = json!(user.additional_gids);
    }

    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    match &input.network {
        NetworkNamespace::Host => {}
        NetworkNamespace::New => namespaces.push(json!({"type": "network"})),
        NetworkNamespace::Path(path) => namespaces.push(json!({"type": "network", "path": path})),
    }

    let mut linux = json!({
        "namespaces": namespaces,
        "cgroupsPath": input.cgroups_path,
        "resources": resources(container, device_rules(input)),
    });
    if !container.privileged.is_privileged() {
        linux["maskedPaths"] = json!(MASKED_PATHS);
        linux["readonlyPaths"] = json!(READONLY_PATHS);
    }
    let devices: Vec<Value> = input
        .devices
        .iter()
        .map(|d| json!({"path": d.container_path, "type": d.kind.to_string(), "major": d.major, "minor": d.minor, "fileMode": d.file_mode, "uid": 0, "gid": 0}))
        .collect();
    if !devices.is_empty() {
        linux["devices"] = json!(devices);
    }
    let seccomp = match container.seccomp.as_deref() {
        Some("unconfined") => None,
        _ if container.privileged.is_privileged() && container.seccomp.is_none() => None,
        None | Some("default") => Some(seccomp::default_profile(&caps)),
        Some(_) => input.seccomp_profile.clone(),
    };
    if let Some(profile) = seccomp {
        linux["seccomp"] = profile;
    }

    let mut mounts = default_mounts(container, &input.network);
    mounts.extend(user_mounts(input)?);
    if container.privileged.host_devices() {
        // Host devices: the host's /dev replaces the minimal tmpfs.
        mounts.retain(|m| m["destination"] != "/dev");
        mounts.insert(1, json!({"destination": "/dev", "type": "bind", "source": "/dev", "options": ["rbind", "nosuid"]}));
    }

    let spec = json!({
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": "rootfs", "readonly": container.read_only_rootfs},
        "hostname": input.hostname,
        "mounts": mounts,
        "linux": linux,
    });
    serde_json::from_value(spec).map_err(|e| SpecError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Capabilities;
    use crate::state::limits::MAX_ENV_ENTRIES;

    fn container(yaml_json: Value) -> ContainerSpec {
        let mut base = json!({"image": "busybox"});
        if let (Some(base), Some(extra)) = (base.as_object_mut(), yaml_json.as_object()) {
            base.extend(extra.clone());
        }
        serde_json::from_value(base).unwrap()
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        rootfs: Rootfs,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("etc/group"), "root:x:0:\napp:x:1000:\n").unwrap();
        let rootfs = Rootfs::open(dir.path()).unwrap();
        Fixture { _dir: dir, rootfs }
    }

    fn input<'a>(
        container: &'a ContainerSpec,
        image: &'a ImageConfig,
        rootfs: &'a Rootfs,
    ) -> SpecInput<'a> {
        SpecInput {
            container,
            image,
            rootfs,
            hostname: "web".into(),
            env_file_vars: vec![],
            mounts: vec![],
            devices: vec![],
            etc: None,
            network: NetworkNamespace::New,
            cgroups_path: "/berth/web".into(),
            nofile_hard: 4096,
            seccomp_profile: None,
            berth_env: vec![],
            host_bounding: u64::MAX,
            terminal: false,
            max_env_entries: MAX_ENV_ENTRIES,
        }
    }

    fn spec_json(spec: &Spec) -> Value {
        serde_json::to_value(spec).unwrap()
    }

    fn image() -> ImageConfig {
        ImageConfig {
            entrypoint: Some(vec!["/entry".into()]),
            cmd: Some(vec!["serve".into(), "--port=80".into()]),
            env: Some(vec![
                "PATH=/bin".into(),
                "MODE=image".into(),
                "KEEP=1".into(),
            ]),
            working_dir: Some("/srv".into()),
            user: None,
        }
    }

    #[test]
    fn command_and_args_follow_kubernetes() {
        let image = image();
        let args = |c: Value| process_args(&container(c), &image).unwrap();
        assert_eq!(args(json!({})), ["/entry", "serve", "--port=80"]);
        assert_eq!(args(json!({"args": ["x"]})), ["/entry", "x"]);
        assert_eq!(args(json!({"command": ["/bin/sh"]})), ["/bin/sh"]);
        assert_eq!(
            args(json!({"command": ["/bin/sh"], "args": ["-c", "true"]})),
            ["/bin/sh", "-c", "true"]
        );
        assert!(matches!(
            process_args(&container(json!({})), &ImageConfig::default()),
            Err(SpecError::NoCommand)
        ));
    }

    #[test]
    fn manifest_env_wins_over_env_files_which_win_over_the_image() {
        let f = fixture();
        let image = image();
        let c = container(json!({"env": {"MODE": "manifest"}}));
        let mut i = input(&c, &image, &f.rootfs);
        i.env_file_vars = vec![
            ("MODE".into(), "file".into()),
            ("FROM_FILE".into(), "yes".into()),
        ];
        let env = process_env(&i, MAX_ENV_ENTRIES).unwrap();
        assert!(env.contains(&"MODE=manifest".to_string()), "{env:?}");
        assert!(env.contains(&"FROM_FILE=yes".to_string()));
        assert!(env.contains(&"KEEP=1".to_string()));
        assert!(env.contains(&"PATH=/bin".to_string()));
        assert!(env.contains(&"HOSTNAME=web".to_string()));
    }

    /// Regression: each variable was looked up by a scan of those before
    /// it, so 100k entries in a hostile image config took minutes. The
    /// count is far past what a quadratic build finishes in a test run.
    #[test]
    fn env_building_is_linear_and_bounded() {
        let f = fixture();
        let mut image = image();
        image.env = Some((0..200_000).map(|n| format!("VAR{n}={n}")).collect());
        let c = container(json!({"env": {"VAR7": "manifest"}}));
        let i = input(&c, &image, &f.rootfs);
        let env = process_env(&i, usize::MAX).unwrap();
        assert_eq!(env.len(), 200_000 + 2);
        assert_eq!(env[7], "VAR7=manifest");
        let error = process_env(&i, MAX_ENV_ENTRIES).unwrap_err();
        assert!(error.to_string().contains("200001 entries"), "{error}");
        assert!(error.to_string().contains("bound of 65536"), "{error}");
    }

    #[test]
    fn default_capabilities_are_dockers_and_privileged_gets_all() {
        let caps = capabilities(&container(json!({})), u64::MAX).unwrap();
        assert_eq!(caps.len(), 14);
        assert!(!caps.contains(&"CAP_SYS_ADMIN".to_string()));
        let privileged = capabilities(&container(json!({"privileged": true})), u64::MAX).unwrap();
        let bounded = capabilities(&container(json!({"privileged": true})), !(1 << 24)).unwrap();
        assert!(
            !bounded.contains(&"CAP_SYS_RESOURCE".to_string()),
            "only what the host bounding set allows"
        );
        assert_eq!(
            privileged.len(),
            crate::manifest::vocabulary::CAPABILITIES.len()
        );
        let mut c = container(json!({}));
        c.capabilities = Some(Capabilities {
            add: vec!["net_admin".into()],
            drop: vec!["ALL".into()],
        });
        assert_eq!(capabilities(&c, u64::MAX).unwrap(), ["CAP_NET_ADMIN"]);
    }

    #[test]
    fn secure_defaults_are_in_the_spec() {
        let f = fixture();
        let image = image();
        let c = container(json!({}));
        let spec = spec_json(&generate(&input(&c, &image, &f.rootfs)).unwrap());
        assert_eq!(spec["process"]["noNewPrivileges"], true);
        assert_eq!(spec["process"]["cwd"], "/srv");
        assert!(spec["linux"]["maskedPaths"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "/proc/kcore"));
        assert!(spec["linux"]["maskedPaths"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "/sys/dev/block"));
        assert!(spec["linux"]["readonlyPaths"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "/proc/sys"));
        assert_eq!(spec["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(spec["linux"]["resources"]["devices"][0]["allow"], false);
        let destinations: Vec<&str> = spec["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["destination"].as_str().unwrap())
            .collect();
        for wanted in [
            "/proc",
            "/dev",
            "/dev/pts",
            "/dev/shm",
            "/dev/mqueue",
            "/sys",
        ] {
            assert!(
                destinations.contains(&wanted),
                "{wanted} in {destinations:?}"
            );
        }
        assert_eq!(
            spec["process"]["rlimits"][0]["hard"], 4096,
            "never above the host's hard limit"
        );
    }

    #[test]
    fn privileged_lifts_masks_and_seccomp_and_binds_host_dev() {
        let f = fixture();
        let image = image();
        let c = container(json!({"privileged": true}));
        let spec = spec_json(&generate(&input(&c, &image, &f.rootfs)).unwrap());
        assert!(spec["linux"].get("maskedPaths").is_none());
        assert!(spec["linux"].get("seccomp").is_none());
        assert_eq!(spec["linux"]["resources"]["devices"][0]["allow"], true);
        let dev = spec["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/dev")
            .unwrap();
        assert_eq!(dev["source"], "/dev");
    }

    /// A spec with its capability sets sorted (the OCI types hold them in
    /// hash sets, so their order differs from one spec to the next).
    fn with_sorted_caps(mut spec: Value) -> Value {
        for set in ["bounding", "effective", "permitted"] {
            if let Some(caps) = spec["process"]["capabilities"][set].as_array_mut() {
                caps.sort_by_key(|c| c.to_string());
            }
        }
        spec
    }

    /// The `/dev` mount of a spec.
    fn dev_mount(spec: &Value) -> Value {
        spec["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/dev")
            .cloned()
            .unwrap()
    }

    #[test]
    fn privileged_without_host_devices_is_privileged_with_the_default_devices() {
        let f = fixture();
        let image = image();
        let full = container(json!({"privileged": true}));
        let bare = container(json!({"privileged": {"hostDevices": false}}));
        let full_spec = with_sorted_caps(spec_json(
            &generate(&input(&full, &image, &f.rootfs)).unwrap(),
        ));
        let spec = with_sorted_caps(spec_json(
            &generate(&input(&bare, &image, &f.rootfs)).unwrap(),
        ));

        assert_eq!(
            spec["process"]["capabilities"], full_spec["process"]["capabilities"],
            "every capability, as privileged"
        );
        assert!(spec["linux"].get("seccomp").is_none(), "no seccomp");
        assert!(
            spec["linux"].get("maskedPaths").is_none(),
            "no masked paths"
        );
        assert!(spec["linux"].get("readonlyPaths").is_none());
        let sys = spec["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/sys")
            .unwrap();
        assert!(
            !sys["options"].as_array().unwrap().contains(&json!("ro")),
            "sysfs writable, as privileged: {sys}"
        );

        assert_eq!(dev_mount(&spec)["type"], "tmpfs", "no host /dev");
        let unprivileged = container(json!({}));
        let default_spec = spec_json(&generate(&input(&unprivileged, &image, &f.rootfs)).unwrap());
        assert_eq!(
            spec["linux"]["resources"]["devices"], default_spec["linux"]["resources"]["devices"],
            "the default device rules: deny all, then the usual character devices"
        );
        assert_eq!(spec["linux"]["resources"]["devices"][0]["allow"], false);
    }

    #[test]
    fn privileged_forms_that_mean_true_build_the_same_spec() {
        let f = fixture();
        let image = image();
        let spec_of = |privileged: Value| {
            let c = container(json!({ "privileged": privileged }));
            with_sorted_caps(spec_json(&generate(&input(&c, &image, &f.rootfs)).unwrap()))
        };
        let full = spec_of(json!(true));
        assert_eq!(spec_of(json!({"hostDevices": true})), full);
        assert_eq!(spec_of(json!({})), full);
        assert_eq!(dev_mount(&full)["source"], "/dev");
    }

    #[test]
    fn unconfined_seccomp_and_resources_map_to_the_spec() {
        let f = fixture();
        let image = image();
        let c = container(
            json!({"seccomp": "unconfined", "resources": {"memory": "64Mi", "cpus": 0.5, "pids": 100}, "readOnlyRootfs": true}),
        );
        let spec = spec_json(&generate(&input(&c, &image, &f.rootfs)).unwrap());
        assert!(spec["linux"].get("seccomp").is_none());
        assert_eq!(spec["linux"]["resources"]["memory"]["limit"], 64 << 20);
        assert_eq!(spec["linux"]["resources"]["cpu"]["quota"], 50_000);
        assert_eq!(spec["linux"]["resources"]["pids"]["limit"], 100);
        assert_eq!(spec["root"]["readonly"], true);
    }

    #[test]
    fn users_resolve_by_name_in_the_image() {
        let f = fixture();
        let image = image();
        let c = container(json!({"user": "app"}));
        let spec = spec_json(&generate(&input(&c, &image, &f.rootfs)).unwrap());
        assert_eq!(spec["process"]["user"]["uid"], 1000);
        assert_eq!(spec["process"]["user"]["gid"], 1000);
        let wide = container(json!({"user": "99999999999"}));
        assert!(matches!(
            generate(&input(&wide, &image, &f.rootfs)),
            Err(SpecError::User(UserError::IdTooLarge(_)))
        ));
    }

    #[test]
    fn network_modes_shape_the_namespaces() {
        let f = fixture();
        let image = image();
        let c = container(json!({}));
        let mut i = input(&c, &image, &f.rootfs);
        i.network = NetworkNamespace::Host;
        let host = spec_json(&generate(&i).unwrap());
        assert!(!host["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["type"] == "network"));
        i.network = NetworkNamespace::Path("/run/berth/netns/web".into());
        let pinned = spec_json(&generate(&i).unwrap());
        let net = pinned["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["type"] == "network")
            .cloned()
            .unwrap();
        assert_eq!(net["path"], "/run/berth/netns/web");
    }

    #[test]
    fn image_labels_and_symlinked_proc_never_reach_the_runtime() {
        let f = fixture();
        std::os::unix::fs::symlink("/", f._dir.path().join("proc")).unwrap();
        let image = image();
        let c = container(json!({}));
        assert!(matches!(
            generate(&input(&c, &image, &f.rootfs)),
            Err(SpecError::Rootfs(RootfsError::SymlinkedSpecialDir { .. }))
        ));
    }
}
