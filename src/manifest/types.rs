//! The manifest language v1: the Rust types are the single source of truth for
//! reading (serde) and for the JSON schema (schemars). Doc comments become the
//! schema's descriptions, which editors show on hover.

use std::collections::BTreeMap;
use std::net::IpAddr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::cron::CronSchedule;
use super::net::Cidr;
use super::quantity::{ByteSize, Duration};

pub const API_VERSION: &str = "berth/v1";

/// The kind of a berth object.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum Kind {
    Container,
    Job,
    Network,
    Volume,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Container, Kind::Job, Kind::Network, Kind::Volume];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Container => "Container",
            Kind::Job => "Job",
            Kind::Network => "Network",
            Kind::Volume => "Volume",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One object of the manifest language: a YAML document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "{S}Object")]
pub struct Manifest<S: Default> {
    /// The version of the manifest language; always `berth/v1`.
    #[schemars(extend("const" = API_VERSION))]
    pub api_version: String,
    /// What this object is: Container, Job, Network or Volume.
    pub kind: Kind,
    /// The object's name and labels.
    pub metadata: Metadata,
    /// The desired state of the object.
    #[serde(default)]
    pub spec: S,
}

/// The object's identity, and the hosts that run it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// A DNS label (lowercase letters, digits and `-`, at most 63 characters), unique per kind across the manifest set.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,
    /// Free-form key/value labels for people and tools; berth does not interpret them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// The hosts that run this object, when many hosts follow one manifest set: `{matchLabels: {role: edge}}` (the host's labels, from `--host-label KEY=VALUE` plus `hostname`, must all match) or a list of hostname globs (`["web-*", "db1"]`; `*` any characters, `?` one). Without it, every host runs the object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<HostSelector>,
}

/// Which hosts run an object: a label selector or hostname globs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum HostSelector {
    /// Hosts whose labels include all of these.
    Labels(LabelSelector),
    /// Hosts whose hostname matches one of these globs (`*` any characters, `?` one; letter case is ignored).
    Hostnames(Vec<String>),
}

/// Hosts selected by their labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LabelSelector {
    /// Labels a host must all carry with exactly these values: those given with `--host-label KEY=VALUE`, and `hostname` (the machine's hostname unless given).
    pub match_labels: BTreeMap<String, String>,
}

/// Generates a Container-like spec type with every field a container template
/// has, plus the extra fields given, so that `ContainerSpec` and the Job
/// `template` share one definition.
macro_rules! container_fields {
    (
        $(#[$struct_meta:meta])*
        pub struct $name:ident {
            $( $(#[$extra_meta:meta])* pub $extra:ident : $extra_ty:ty, )*
        }
    ) => {
        $(#[$struct_meta])*
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields, rename_all = "camelCase")]
        pub struct $name {
            /// The image to run: a registry reference (`busybox`, `docker.io/library/busybox:1.36`, `registry:5000/app@sha256:...`) or a local source (`oci-layout:PATH[:TAG]`, `oci-archive:PATH`, `docker-archive:PATH`, relative to this file's directory), or `rootfs:DIR`, a plain root filesystem directory used as it is (never written; `command` is then required).
            #[schemars(length(min = 1))]
            pub image: String,
            /// When to fetch the image: Always, IfNotPresent (default) or Never.
            #[serde(default)]
            pub image_pull_policy: PullPolicy,
            /// Replaces the image's entrypoint.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub command: Option<Vec<String>>,
            /// Replaces the image's cmd (the arguments to the entrypoint).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub args: Option<Vec<String>>,
            /// Environment variables, as a map (`NAME: value`) or a list of `{name, value}`; merged over the image's.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub env: Option<EnvVars>,
            /// Files of `NAME=value` lines (relative to this file's directory) read into the environment; `env` wins over them.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            pub env_files: Vec<String>,
            /// The working directory inside the container (absolute); defaults to the image's.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub working_dir: Option<String>,
            /// The user to run as: `uid[:gid]` or a name from the image's /etc/passwd (`name[:group]`).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub user: Option<String>,
            /// The container's hostname; defaults to the object's name.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub hostname: Option<String>,
            /// Bind mounts, named volumes and tmpfs mounts.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            pub mounts: Vec<Mount>,
            /// Gives all capabilities and host devices and lifts the masked paths: the container can take over the host. `{hostDevices: false}` keeps the rest but only the default devices (`ctr run --privileged-without-host-devices`).
            #[serde(default)]
            pub privileged: Privileged,
            /// Capabilities to add to or drop from the default set (for example NET_ADMIN; `ALL` in drop removes every one).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub capabilities: Option<Capabilities>,
            /// Host devices to expose: `/dev/fuse`, `HOST:CONTAINER[:rwm]`, or `{path, containerPath, permissions}`.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            pub devices: Vec<Device>,
            /// Mounts the root filesystem read-only.
            #[serde(default)]
            pub read_only_rootfs: bool,
            /// Sets no_new_privs so that setuid binaries cannot gain privileges (default true).
            #[serde(default = "default_true")]
            pub no_new_privileges: bool,
            /// The seccomp profile: `default` (berth's allow-list), `unconfined`, or the path of a profile file.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub seccomp: Option<String>,
            /// Limits on memory, CPU and process count.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub resources: Option<Resources>,
            /// bridge (default: own network namespace on CNI networks), host (the host's network) or none (loopback only).
            #[serde(default)]
            pub network_mode: NetworkMode,
            /// The networks to join, by name or as `{name, ip, aliases}`; none in bridge mode means the built-in `default` network.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            pub networks: Vec<NetworkAttachment>,
            /// Ports published on the host.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            pub ports: Vec<PortMapping>,
            /// A command run inside the container to check its health.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub healthcheck: Option<Healthcheck>,
            /// Containers or jobs that must be started (or healthy, or completed) before this one starts.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            pub depends_on: Vec<Dependency>,
            /// The signal that asks the container to stop (default SIGTERM).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub stop_signal: Option<String>,
            /// How long to wait after the stop signal before SIGKILL (default 10s).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub stop_grace_period: Option<Duration>,
            /// How much of the container's output is kept: its log rotates at `maxSize`, keeping `maxFiles` files (default 10Mi x 5).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub logging: Option<Logging>,
            $( $(#[$extra_meta])* pub $extra: $extra_ty, )*
        }
    };
}

container_fields! {
    /// A long-running container.
    pub struct ContainerSpec {
        /// When to restart the container after it exits.
        #[serde(default)]
        pub restart: RestartSpec,
    }
}

container_fields! {
    /// The container a Job runs: the Container spec fields without `restart`.
    pub struct JobTemplate {}
}

impl JobTemplate {
    /// The same fields as a Container spec (restart left at its default), so
    /// one set of rules checks and fingerprints both.
    pub fn to_container_spec(&self) -> ContainerSpec {
        serde_json::to_value(self)
            .and_then(serde_json::from_value)
            .unwrap_or_default()
    }
}

fn default_true() -> bool {
    true
}

/// When to fetch an image.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum PullPolicy {
    /// Fetch on every apply.
    Always,
    /// Fetch only when the image is not in the store.
    #[default]
    IfNotPresent,
    /// Never fetch; the image must already be in the store.
    Never,
}

/// Environment variables: a map of names to values, or a list of `{name, value}`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum EnvVars {
    Map(BTreeMap<String, ScalarString>),
    List(Vec<EnvVar>),
}

impl EnvVars {
    /// The variables in the order they are written.
    pub fn pairs(&self) -> Vec<(&str, &str)> {
        match self {
            EnvVars::Map(map) => map
                .iter()
                .map(|(k, v)| (k.as_str(), v.0.as_str()))
                .collect(),
            EnvVars::List(list) => list
                .iter()
                .map(|var| (var.name.as_str(), var.value.0.as_str()))
                .collect(),
        }
    }
}

/// One environment variable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvVar {
    /// The variable's name.
    #[schemars(length(min = 1))]
    pub name: String,
    /// The variable's value.
    #[serde(default)]
    pub value: ScalarString,
}

/// A string, or a number or boolean taken as its text (so `PORT: 8080` works).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[schemars(with = "ScalarStringSchema")]
pub struct ScalarString(pub String);

#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum ScalarStringSchema {
    String(String),
    Number(f64),
    Bool(bool),
}

impl<'de> Deserialize<'de> for ScalarString {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            String(String),
            Int(i64),
            Uint(u64),
            Float(f64),
            Bool(bool),
        }
        Ok(ScalarString(match Raw::deserialize(deserializer)? {
            Raw::String(s) => s,
            Raw::Int(n) => n.to_string(),
            Raw::Uint(n) => n.to_string(),
            Raw::Float(n) => n.to_string(),
            Raw::Bool(b) => b.to_string(),
        }))
    }
}

/// A bind mount, a named volume or a tmpfs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Mount {
    /// bind (a host path), volume (a Volume object by name) or tmpfs (memory).
    #[serde(rename = "type")]
    pub kind: MountType,
    /// The host path (bind; relative to this file's directory) or the Volume's name (volume); unused for tmpfs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The absolute path inside the container.
    pub target: String,
    /// Mount read-only.
    #[serde(default)]
    pub read_only: bool,
    /// Extra mount options, such as `size=64m` for tmpfs or `nosuid`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

/// The kind of a mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MountType {
    Bind,
    Volume,
    Tmpfs,
}

/// Capability changes relative to the default set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    /// Capabilities to add, such as NET_ADMIN (the CAP_ prefix is optional).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add: Vec<String>,
    /// Capabilities to drop; `ALL` drops every one before `add` is applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drop: Vec<String>,
}

/// How privileged a container is: `false` (the default), `true` (every capability and host device), or `{hostDevices: false}` (every capability, only the default devices).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, JsonSchema)]
#[schemars(with = "PrivilegedSchema")]
pub enum Privileged {
    /// The default capabilities, seccomp, masked paths and devices.
    #[default]
    Off,
    /// Every capability, no seccomp or masked paths, the host's /dev.
    Full,
    /// As [`Privileged::Full`] but with only the default devices.
    WithoutHostDevices,
}

impl Privileged {
    /// Whether the container gets every capability, no seccomp and no masked paths.
    pub fn is_privileged(self) -> bool {
        self != Privileged::Off
    }

    /// Whether the container sees (and may use) every host device.
    pub fn host_devices(self) -> bool {
        self == Privileged::Full
    }
}

/// The long form of `privileged`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PrivilegedSpec {
    /// Bind the host's /dev and allow every device (default true); false gives only the default devices.
    #[serde(default = "default_true")]
    pub host_devices: bool,
}

#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum PrivilegedSchema {
    Flag(bool),
    Detailed(PrivilegedSpec),
}

// The canonical form, `false`, `true` or `{"hostDevices": false}`: so `{}`
// and `{hostDevices: true}` fingerprint as `true` does, and `true` and
// `false` as they did when the field was a bool (no container is replaced
// by an upgrade).
impl Serialize for Privileged {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Privileged::Off => serializer.serialize_bool(false),
            Privileged::Full => serializer.serialize_bool(true),
            Privileged::WithoutHostDevices => PrivilegedSpec {
                host_devices: false,
            }
            .serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Privileged {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::Bool(false) => Ok(Privileged::Off),
            serde_json::Value::Bool(true) => Ok(Privileged::Full),
            value @ serde_json::Value::Object(_) => typed_inner::<PrivilegedSpec>(value)
                .map(|spec| match spec.host_devices {
                    true => Privileged::Full,
                    false => Privileged::WithoutHostDevices,
                })
                .map_err(D::Error::custom),
            _ => Err(D::Error::custom(
                "expected a boolean or a mapping {hostDevices}",
            )),
        }
    }
}

/// A host device: a path (`/dev/fuse`), `HOST:CONTAINER[:PERMISSIONS]`, or the long form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Device {
    Short(String),
    Long(DeviceSpec),
}

/// A host device in the long form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeviceSpec {
    /// The device's path on the host.
    pub path: String,
    /// The path inside the container (defaults to `path`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_path: Option<String>,
    /// Any of r (read), w (write), m (mknod); default rwm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[rwm]{1,3}$"))]
    pub permissions: Option<String>,
}

/// Resource limits, applied as cgroup limits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// The memory limit, such as 256Mi.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<ByteSize>,
    /// CPU time as a number of CPUs, such as 0.5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.001))]
    pub cpus: Option<f64>,
    /// The most processes and threads the container may have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub pids: Option<u32>,
}

/// Where the container's output goes (`driver`) and, with the default
/// driver `file`, how its log rotates: CRI-format files under berth's root.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Logging {
    /// Rotate the log file when the next line would take it past this size (default 10Mi, at least 4Ki).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<ByteSize>,
    /// How many log files to keep, the current one included (default 5, at most 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_files: Option<u32>,
    /// Where the output goes: file (berth's log files, the default), none (discarded) or binary (a program reads it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<LogDriver>,
    /// With driver binary: the program's absolute path; it reads stdout on fd 3 and stderr on fd 4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// With driver binary: the program's arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
}

/// Where a container's output goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogDriver {
    /// CRI-format log files under berth's root, rotated by size (`berth logs` reads them).
    #[default]
    File,
    /// Discarded: nothing is written.
    None,
    /// A program the shim starts with each start of the container, reading its stdout on fd 3 and stderr on fd 4.
    Binary,
}

impl LogDriver {
    pub fn as_str(self) -> &'static str {
        match self {
            LogDriver::File => "file",
            LogDriver::None => "none",
            LogDriver::Binary => "binary",
        }
    }
}

impl Logging {
    /// kubelet's defaults: 10 MiB x 5 files.
    pub const DEFAULT_MAX_SIZE: ByteSize = ByteSize(10 << 20);
    pub const DEFAULT_MAX_FILES: u32 = 5;
    /// Smaller files would rotate on nearly every line.
    pub const MIN_MAX_SIZE: ByteSize = ByteSize(4 << 10);
    /// Every reader lists and opens them all.
    pub const MAX_MAX_FILES: u32 = 1000;

    pub fn max_size(&self) -> ByteSize {
        self.max_size.unwrap_or(Self::DEFAULT_MAX_SIZE)
    }

    pub fn max_files(&self) -> u32 {
        self.max_files.unwrap_or(Self::DEFAULT_MAX_FILES)
    }

    /// Every setting spelled out, defaults included: equal for all the
    /// ways of writing the same settings.
    pub fn resolved(&self) -> Logging {
        if self.driver() != LogDriver::File {
            // Nothing rotates, so the rotation settings mean nothing.
            return Logging {
                driver: Some(self.driver()),
                path: self.path.clone(),
                args: self.args.clone(),
                ..Logging::default()
            };
        }
        // No driver for `file`: settings from before drivers existed keep
        // their fingerprint.
        Logging {
            max_size: Some(self.max_size()),
            max_files: Some(self.max_files()),
            ..Logging::default()
        }
    }

    pub fn driver(&self) -> LogDriver {
        self.driver.unwrap_or_default()
    }

    /// What is wrong with the driver's settings: (field, message) pairs.
    fn driver_problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        let driver = self.driver();
        if driver != LogDriver::File {
            for (field, set) in [
                ("maxSize", self.max_size.is_some()),
                ("maxFiles", self.max_files.is_some()),
            ] {
                if set {
                    problems.push((
                        field,
                        format!("driver {} keeps no log files to rotate", driver.as_str()),
                    ));
                }
            }
        }
        if driver != LogDriver::Binary {
            if self.path.is_some() {
                problems.push(("path", "only driver binary runs a program".to_string()));
            }
            if !self.args.is_empty() {
                problems.push(("args", "only driver binary runs a program".to_string()));
            }
            return problems;
        }
        match self.path.as_deref() {
            None | Some("") => problems.push((
                "path",
                "driver binary needs the absolute path of the program to run".to_string(),
            )),
            Some(path) if !path.starts_with('/') => problems.push((
                "path",
                format!(
                    "{path:?} is not an absolute path: the log program's path must be absolute"
                ),
            )),
            Some(_) => {}
        }
        problems
    }

    /// What is wrong with the settings: (field, message) pairs.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = self.driver_problems();
        if self.max_size() < Self::MIN_MAX_SIZE {
            problems.push((
                "maxSize",
                format!(
                    "{} is too small: a log file must hold at least {}",
                    self.max_size(),
                    Self::MIN_MAX_SIZE
                ),
            ));
        }
        if !(1..=Self::MAX_MAX_FILES).contains(&self.max_files()) {
            problems.push((
                "maxFiles",
                format!(
                    "{} is not between 1 and {} (the current file counts)",
                    self.max_files(),
                    Self::MAX_MAX_FILES
                ),
            ));
        }
        problems
    }
}

/// How the container is networked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// Its own network namespace, attached to CNI networks.
    #[default]
    Bridge,
    /// The host's network namespace.
    Host,
    /// Its own network namespace with loopback only.
    None,
}

/// A network to join: its name, or `{name, ip, aliases}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum NetworkAttachment {
    Name(String),
    Detailed(NetworkAttachmentSpec),
}

impl NetworkAttachment {
    pub fn name(&self) -> &str {
        match self {
            NetworkAttachment::Name(name) => name,
            NetworkAttachment::Detailed(spec) => &spec.name,
        }
    }

    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            NetworkAttachment::Name(_) => None,
            NetworkAttachment::Detailed(spec) => spec.ip,
        }
    }
}

/// A network to join, with a static address and extra names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkAttachmentSpec {
    /// The Network object's name (or `default`).
    pub name: String,
    /// A static address inside the network's subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
    /// Extra names other containers on this network can use for this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
}

/// A port published on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PortMapping {
    /// The port the container listens on.
    #[schemars(range(min = 1, max = 65535))]
    pub container_port: u16,
    /// The port on the host (defaults to containerPort).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub host_port: Option<u16>,
    /// tcp (default) or udp.
    #[serde(default)]
    pub protocol: Protocol,
    /// The host address to publish on (default: all).
    #[serde(default, rename = "hostIP", skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<IpAddr>,
}

impl PortMapping {
    pub fn effective_host_port(&self) -> u16 {
        self.host_port.unwrap_or(self.container_port)
    }
}

/// A transport protocol.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

/// When and how fast to restart a container after it exits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RestartSpec {
    /// always (default), on-failure, never or unless-stopped.
    #[serde(default)]
    pub policy: RestartPolicy,
    /// With on-failure: how many restarts before giving up (default: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    /// The delay between restarts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Backoff>,
}

/// When to restart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Restart whenever it exits.
    #[default]
    Always,
    /// Restart when it exits with a non-zero code or is killed.
    OnFailure,
    /// Never restart.
    Never,
    /// Like always, but not after it was stopped on purpose.
    UnlessStopped,
}

/// Exponential restart backoff: starts at `initial`, doubles, capped at `max`,
/// and resets after `resetAfter` of running.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Backoff {
    /// The first delay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial: Option<Duration>,
    /// The longest delay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<Duration>,
    /// Running this long resets the delay to `initial`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_after: Option<Duration>,
}

/// A health check: a command run inside the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Healthcheck {
    /// The command and its arguments; exit 0 means healthy.
    #[schemars(length(min = 1))]
    pub exec: Vec<String>,
    /// How often to check (default 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    /// How long one check may take (default 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Failures in a row that make the container unhealthy (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub retries: Option<u32>,
    /// A grace period after start in which failures do not count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<Duration>,
    /// restart (restart the container when unhealthy) or none (default: only report it).
    #[serde(default)]
    pub on_unhealthy: OnUnhealthy,
}

impl Healthcheck {
    /// `retries` when the manifest gives none.
    pub const DEFAULT_RETRIES: u32 = 3;
}

/// What to do when a container becomes unhealthy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnUnhealthy {
    Restart,
    #[default]
    None,
}

/// A dependency: a name, or `{name, condition}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Dependency {
    Name(String),
    Detailed(DependencySpec),
}

impl Dependency {
    pub fn name(&self) -> &str {
        match self {
            Dependency::Name(name) => name,
            Dependency::Detailed(spec) => &spec.name,
        }
    }

    pub fn condition(&self) -> DependencyCondition {
        match self {
            Dependency::Name(_) => DependencyCondition::Started,
            Dependency::Detailed(spec) => spec.condition,
        }
    }
}

/// A dependency with a condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DependencySpec {
    /// The Container or Job this one waits for.
    pub name: String,
    /// started (default), healthy or completed.
    #[serde(default)]
    pub condition: DependencyCondition,
}

/// What a dependency must reach before its dependents start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DependencyCondition {
    /// Running.
    #[default]
    Started,
    /// Running and passing its health check.
    Healthy,
    /// Exited with code 0 (a Job finished successfully).
    Completed,
}

/// A batch workload: runs a container to completion, possibly many times.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JobSpec {
    /// The container each run starts.
    pub template: JobTemplate,
    /// How many successful runs complete the job (default 1).
    #[serde(default = "one")]
    #[schemars(range(min = 1))]
    pub completions: u32,
    /// How many runs at once (default 1).
    #[serde(default = "one")]
    #[schemars(range(min = 1))]
    pub parallelism: u32,
    /// NonIndexed (default) or Indexed (each run gets BERTH_JOB_INDEX 0..completions-1).
    #[serde(default)]
    pub completion_mode: CompletionMode,
    /// Failed runs allowed before the job fails (default 6).
    #[serde(default = "six")]
    pub backoff_limit: u32,
    /// The longest the whole job may run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_deadline: Option<Duration>,
    /// Remove the finished job's containers after this long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_after_finished: Option<Duration>,
    /// Never (default: a failed run is replaced by a new container) or OnFailure (restart the same container).
    #[serde(default)]
    pub restart_policy: JobRestartPolicy,
    /// Run on a cron schedule (`*/15 * * * *`) instead of once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<CronSchedule>,
    /// With a schedule, what to do when a run is due while the last one still runs: Allow (default), Forbid or Replace.
    #[serde(default)]
    pub concurrency_policy: ConcurrencyPolicy,
    /// The wait before a failed run is retried: `initial` (default 10s), doubled after each failure up to `max` (default 6m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<JobBackoff>,
    /// Finished runs of this Job kept in its record's history (default 3).
    #[serde(default = "three")]
    #[schemars(range(max = 100))]
    pub history_limit: u32,
}

/// How long a Job waits before it retries a failed run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JobBackoff {
    /// The wait after the first failure (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial: Option<Duration>,
    /// The longest wait (default 6m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<Duration>,
}

fn three() -> u32 {
    3
}

fn one() -> u32 {
    1
}

fn six() -> u32 {
    6
}

/// How job runs are counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum CompletionMode {
    #[default]
    NonIndexed,
    Indexed,
}

/// What happens to a failed job run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum JobRestartPolicy {
    #[default]
    Never,
    OnFailure,
}

/// Overlapping runs of a scheduled job.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ConcurrencyPolicy {
    #[default]
    Allow,
    Forbid,
    Replace,
}

/// A network containers can join.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetworkSpec {
    /// bridge (default), macvlan or ipvlan.
    #[serde(default)]
    pub driver: NetworkDriver,
    /// The IPv4 or IPv6 subnet in CIDR form, such as 10.231.0.0/24 (chosen by berth when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<Cidr>,
    /// The gateway address inside the subnet (default: its first address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    /// Allocate container addresses only from this range inside the subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<Cidr>,
    /// The bridge interface's name (bridge driver; at most 15 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 15))]
    pub bridge: Option<String>,
    /// Masquerade traffic leaving the subnet (default true).
    #[serde(default = "default_true")]
    pub ip_masq: bool,
    /// No route out of the network: containers reach only each other.
    #[serde(default)]
    pub internal: bool,
    /// The MTU of container interfaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 68, max = 65535))]
    pub mtu: Option<u32>,
    /// The host interface macvlan or ipvlan networks attach to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// For experts: a raw CNI plugin list used as is instead of the generated one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugins: Option<Vec<serde_json::Map<String, serde_json::Value>>>,
}

impl Default for NetworkSpec {
    fn default() -> Self {
        NetworkSpec {
            driver: NetworkDriver::default(),
            subnet: None,
            gateway: None,
            ip_range: None,
            bridge: None,
            ip_masq: true,
            internal: false,
            mtu: None,
            parent: None,
            plugins: None,
        }
    }
}

/// How a network is built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NetworkDriver {
    #[default]
    Bridge,
    Macvlan,
    Ipvlan,
}

/// A named volume: a directory under berth's root that holds user data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VolumeSpec {
    /// local (default): a directory under berth's root.
    #[serde(default)]
    pub driver: VolumeDriver,
    /// Labels recorded with the volume.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// Where a volume's data lives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum VolumeDriver {
    #[default]
    Local,
}

pub type ContainerManifest = Manifest<ContainerSpec>;
pub type JobManifest = Manifest<JobSpec>;
pub type NetworkManifest = Manifest<NetworkSpec>;
pub type VolumeManifest = Manifest<VolumeSpec>;

/// A typed manifest object.
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    Container(ContainerManifest),
    Job(JobManifest),
    Network(NetworkManifest),
    Volume(VolumeManifest),
}

impl Object {
    pub fn kind(&self) -> Kind {
        match self {
            Object::Container(_) => Kind::Container,
            Object::Job(_) => Kind::Job,
            Object::Network(_) => Kind::Network,
            Object::Volume(_) => Kind::Volume,
        }
    }

    pub fn name(&self) -> &str {
        &self.metadata().name
    }

    pub fn metadata(&self) -> &Metadata {
        match self {
            Object::Container(m) => &m.metadata,
            Object::Job(m) => &m.metadata,
            Object::Network(m) => &m.metadata,
            Object::Volume(m) => &m.metadata,
        }
    }
}

/// Deserializes a value that is either a plain string (the short form) or a
/// mapping (the long form), keeping the long form's own error messages, which
/// serde's untagged enums would replace with "did not match any variant".
fn short_or_long<'de, D, Short, Long, T>(
    deserializer: D,
    expected: &str,
    short: Short,
    long: Long,
) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    Short: FnOnce(String) -> T,
    Long: FnOnce(serde_json::Value) -> Result<T, String>,
{
    use serde::de::Error;
    match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::String(text) => Ok(short(text)),
        value @ serde_json::Value::Object(_) => long(value).map_err(D::Error::custom),
        _ => Err(D::Error::custom(format!("expected {expected}"))),
    }
}

/// Types a JSON value, naming the inner field at fault in the message.
fn typed_inner<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if path == "." {
            inner.to_string()
        } else {
            format!("{path}: {inner}")
        }
    })
}

impl<'de> Deserialize<'de> for NetworkAttachment {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        short_or_long(
            deserializer,
            "a network name or a mapping {name, ip, aliases}",
            NetworkAttachment::Name,
            |value| typed_inner(value).map(NetworkAttachment::Detailed),
        )
    }
}

impl<'de> Deserialize<'de> for Dependency {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        short_or_long(
            deserializer,
            "a name or a mapping {name, condition}",
            Dependency::Name,
            |value| typed_inner(value).map(Dependency::Detailed),
        )
    }
}

impl<'de> Deserialize<'de> for HostSelector {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match serde_json::Value::deserialize(deserializer)? {
            value @ serde_json::Value::Object(_) => typed_inner(value)
                .map(HostSelector::Labels)
                .map_err(D::Error::custom),
            value @ serde_json::Value::Array(_) => typed_inner(value)
                .map(HostSelector::Hostnames)
                .map_err(D::Error::custom),
            _ => Err(D::Error::custom(
                "expected a mapping {matchLabels} or a list of hostname globs",
            )),
        }
    }
}

impl<'de> Deserialize<'de> for Device {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        short_or_long(
            deserializer,
            "a device path or a mapping {path, containerPath, permissions}",
            Device::Short,
            |value| typed_inner(value).map(Device::Long),
        )
    }
}

impl<'de> Deserialize<'de> for EnvVars {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match serde_json::Value::deserialize(deserializer)? {
            value @ serde_json::Value::Object(_) => typed_inner(value)
                .map(EnvVars::Map)
                .map_err(D::Error::custom),
            value @ serde_json::Value::Array(_) => typed_inner(value)
                .map(EnvVars::List)
                .map_err(D::Error::custom),
            _ => Err(D::Error::custom(
                "expected a mapping of names to values or a list of {name, value}",
            )),
        }
    }
}

#[cfg(test)]
mod privileged_tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn privileged_reads_every_form_and_writes_the_canonical_one() {
        let read = |value| serde_json::from_value::<Privileged>(value).unwrap();
        assert_eq!(read(json!(false)), Privileged::Off);
        assert_eq!(read(json!(true)), Privileged::Full);
        assert_eq!(read(json!({})), Privileged::Full);
        assert_eq!(read(json!({"hostDevices": true})), Privileged::Full);
        let bare = read(json!({"hostDevices": false}));
        assert_eq!(bare, Privileged::WithoutHostDevices);
        assert!(bare.is_privileged() && !bare.host_devices());

        let write = |p: Privileged| serde_json::to_value(p).unwrap();
        assert_eq!(write(Privileged::Off), json!(false));
        assert_eq!(write(Privileged::Full), json!(true));
        assert_eq!(write(bare), json!({"hostDevices": false}));
        assert_eq!(
            read(write(bare)),
            bare,
            "a Job template's round trip keeps it"
        );
    }

    #[test]
    fn privileged_refuses_other_values_naming_the_field() {
        let error = |value| {
            serde_json::from_value::<Privileged>(value)
                .unwrap_err()
                .to_string()
        };
        assert!(error(json!({"hostDevices": 3})).contains("hostDevices"));
        assert!(error(json!({"hostDevice": false})).contains("unknown field"));
        assert!(error(json!("yes")).contains("expected a boolean or a mapping"));
    }
}
