//! The pod a Container or a Job's template runs: its container (image,
//! command, environment, ports, resources, security, probes, mounts) and
//! what the pod around it adds (volumes, init containers that wait for
//! dependencies, host network, node selection).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, PodSpec, ResourceRequirements, SeccompProfile,
    SecurityContext,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::{env, names, network, probe, storage, KubeError, Output};
use crate::manifest::diagnostic::PathSegment;
use crate::manifest::{
    ContainerSpec, Dependency, DependencyCondition, HostSelector, Kind, Located, NetworkMode,
    Object, Privileged, Protocol,
};

/// The label every pod of a Container carries, selected by its Deployment
/// and its Service.
pub const CONTAINER_LABEL: &str = "berth/container";

/// A container template and where it is written: `spec` of a Container,
/// `spec.template` of a Job.
pub struct Template<'a> {
    pub located: &'a Located,
    pub name: String,
    pub spec: ContainerSpec,
    /// The object's labels that Kubernetes takes.
    pub labels: BTreeMap<String, String>,
    prefix: Vec<PathSegment>,
}

impl<'a> Template<'a> {
    pub fn new(
        located: &'a Located,
        spec: ContainerSpec,
        prefix: &[&str],
        labels: BTreeMap<String, String>,
    ) -> Self {
        Template {
            located,
            name: located.object.name().to_string(),
            spec,
            labels,
            prefix: prefix.iter().map(|k| PathSegment::from(*k)).collect(),
        }
    }

    /// The path of a field of the template.
    pub fn path(&self, rest: &[PathSegment]) -> Vec<PathSegment> {
        let mut path = self.prefix.clone();
        path.extend_from_slice(rest);
        path
    }

    fn field(&self, name: &str) -> Vec<PathSegment> {
        self.path(&[PathSegment::from(name)])
    }
}

/// A pod spec, and what the workload around it needs to know.
pub struct PodParts {
    pub spec: PodSpec,
    /// Labels the pod needs besides the object's: its internal networks.
    pub labels: BTreeMap<String, String>,
    pub has_claim: bool,
}

pub fn pod_spec(
    out: &mut Output,
    template: &Template,
    restart_policy: &str,
    indexed_job: bool,
) -> Result<PodParts, KubeError> {
    let mounts = storage::mounts(out, template);
    let environment = env::environment(out, template, indexed_job)?;
    let probes = probe::probes(out, template);
    let spec = &template.spec;
    let container = Container {
        name: template.name.clone(),
        image: Some(image(out, template)),
        image_pull_policy: Some(format!("{:?}", spec.image_pull_policy)),
        command: spec.command.clone(),
        args: spec.args.clone(),
        working_dir: spec.working_dir.clone(),
        env: (!environment.env.is_empty()).then_some(environment.env),
        env_from: (!environment.env_from.is_empty()).then_some(environment.env_from),
        ports: container_ports(template),
        resources: resources(out, template),
        security_context: Some(security_context(out, template)),
        volume_mounts: (!mounts.mounts.is_empty()).then_some(mounts.mounts),
        readiness_probe: probes.readiness,
        liveness_probe: probes.liveness,
        startup_probe: probes.startup,
        ..Container::default()
    };
    let init_containers = wait_for_dependencies(out, template);
    let labels = network::pod_labels(out, template);
    not_mapped(out, template);
    let pod = PodSpec {
        containers: vec![container],
        init_containers: (!init_containers.is_empty()).then_some(init_containers),
        volumes: (!mounts.volumes.is_empty()).then_some(mounts.volumes),
        restart_policy: Some(restart_policy.to_string()),
        host_network: (spec.network_mode == NetworkMode::Host).then_some(true),
        hostname: spec.hostname.clone(),
        termination_grace_period_seconds: spec
            .stop_grace_period
            .map(|grace| names::whole_seconds(grace, 0).0),
        node_selector: node_selector(out, template),
        ..PodSpec::default()
    };
    Ok(PodParts {
        spec: pod,
        labels,
        has_claim: mounts.has_claim,
    })
}

/// The image a cluster pulls; a local source (which a cluster cannot read)
/// gets a `localhost/` name and a warning.
fn image(out: &mut Output, template: &Template) -> String {
    let (reference, local) = names::image_reference(&template.spec.image);
    if local {
        out.warn(
            template.located,
            &template.field("image"),
            format!(
                "{} is read from this host's disk, which a cluster cannot do: the export names it {reference}; push the image to a registry the cluster pulls from and put its reference here",
                template.spec.image
            ),
        );
    }
    reference
}

/// The ports the container listens on, one per port and protocol.
fn container_ports(template: &Template) -> Option<Vec<ContainerPort>> {
    let ports: Vec<ContainerPort> = distinct_ports(&template.spec)
        .into_iter()
        .map(|(port, protocol)| ContainerPort {
            name: Some(port_name(port, protocol)),
            container_port: i32::from(port),
            protocol: Some(protocol_name(protocol).to_string()),
            ..ContainerPort::default()
        })
        .collect();
    (!ports.is_empty()).then_some(ports)
}

/// Each container port and protocol once: berth may publish one port on
/// several host ports, a pod lists it once.
pub fn distinct_ports(spec: &ContainerSpec) -> Vec<(u16, Protocol)> {
    let mut ports: Vec<(u16, Protocol)> = Vec::new();
    for mapping in &spec.ports {
        let key = (mapping.container_port, mapping.protocol);
        if !ports.contains(&key) {
            ports.push(key);
        }
    }
    ports
}

/// `tcp-8080`: an IANA service name (at most 15 characters, a letter in it).
pub fn port_name(port: u16, protocol: Protocol) -> String {
    format!("{}-{port}", protocol_name(protocol).to_ascii_lowercase())
}

pub fn protocol_name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Tcp => "TCP",
        Protocol::Udp => "UDP",
    }
}

/// Memory and CPU limits; Kubernetes requests the same when only limits
/// are given, which matches a berth container's guaranteed share.
fn resources(out: &mut Output, template: &Template) -> Option<ResourceRequirements> {
    let resources = template.spec.resources.as_ref()?;
    let mut limits = BTreeMap::new();
    if let Some(memory) = resources.memory {
        limits.insert(
            "memory".to_string(),
            Quantity(names::bytes_quantity(memory.0)),
        );
    }
    if let Some(cpus) = resources.cpus {
        limits.insert("cpu".to_string(), Quantity(names::cpu_quantity(cpus)));
    }
    if resources.pids.is_some() {
        out.warn(
            template.located,
            &template.path(&[PathSegment::from("resources"), PathSegment::from("pids")]),
            "a pod's process limit is the node's setting (kubelet podPidsLimit), not the pod's: left out",
        );
    }
    (!limits.is_empty()).then(|| ResourceRequirements {
        limits: Some(limits),
        ..ResourceRequirements::default()
    })
}

/// User, capabilities, privilege, read-only root and seccomp.
fn security_context(out: &mut Output, template: &Template) -> SecurityContext {
    let spec = &template.spec;
    let privileged = spec.privileged.is_privileged();
    if spec.privileged == Privileged::WithoutHostDevices {
        out.warn(
            template.located,
            &template.field("privileged"),
            "Kubernetes has no privileged container without the host's devices: privileged: true gives them",
        );
    }
    let (add, drop) = spec
        .capabilities
        .as_ref()
        .map(|caps| (capability_names(&caps.add), capability_names(&caps.drop)))
        .unwrap_or_default();
    // The API server refuses allowPrivilegeEscalation: false beside
    // privileged or CAP_SYS_ADMIN, both of which escalate anyway.
    let no_escalation =
        spec.no_new_privileges && !privileged && !add.iter().any(|c| c == "SYS_ADMIN");
    let (run_as_user, run_as_group) = user_ids(out, template);
    SecurityContext {
        privileged: privileged.then_some(true),
        capabilities: (!add.is_empty() || !drop.is_empty()).then(|| Capabilities {
            add: (!add.is_empty()).then_some(add),
            drop: (!drop.is_empty()).then_some(drop),
        }),
        read_only_root_filesystem: spec.read_only_rootfs.then_some(true),
        allow_privilege_escalation: no_escalation.then_some(false),
        run_as_user,
        run_as_group,
        seccomp_profile: (!privileged).then(|| seccomp(out, template)).flatten(),
        ..SecurityContext::default()
    }
}

/// Capability names as Kubernetes writes them: without `CAP_`.
fn capability_names(names: &[String]) -> Vec<String> {
    names
        .iter()
        .map(|name| {
            let upper = name.to_ascii_uppercase();
            upper.strip_prefix("CAP_").unwrap_or(&upper).to_string()
        })
        .collect()
}

/// `uid[:gid]` as runAsUser and runAsGroup; a user name cannot be mapped,
/// since Kubernetes takes only numbers.
fn user_ids(out: &mut Output, template: &Template) -> (Option<i64>, Option<i64>) {
    let Some(user) = &template.spec.user else {
        return (None, None);
    };
    let (uid, gid) = match user.split_once(':') {
        Some((uid, gid)) => (uid, Some(gid)),
        None => (user.as_str(), None),
    };
    let Ok(uid) = uid.parse::<i64>() else {
        out.warn(
            template.located,
            &template.field("user"),
            format!("user {user:?} is a name: Kubernetes takes numeric ids (runAsUser, runAsGroup); look it up in the image's /etc/passwd and write uid:gid"),
        );
        return (None, None);
    };
    let gid = match gid.map(str::parse::<i64>) {
        Some(Ok(gid)) => Some(gid),
        Some(Err(_)) => {
            out.warn(
                template.located,
                &template.field("user"),
                format!("the group in {user:?} is a name: Kubernetes takes a numeric runAsGroup; left out"),
            );
            None
        }
        None => None,
    };
    (Some(uid), gid)
}

/// berth's default allow-list is closest to the runtime's default profile;
/// a profile file must be put on every node by hand.
fn seccomp(out: &mut Output, template: &Template) -> Option<SeccompProfile> {
    let profile = |kind: &str, file: Option<String>| SeccompProfile {
        type_: kind.to_string(),
        localhost_profile: file,
    };
    match template.spec.seccomp.as_deref() {
        None | Some("default") => Some(profile("RuntimeDefault", None)),
        Some("unconfined") => Some(profile("Unconfined", None)),
        Some(path) => {
            let file = std::path::Path::new(path)
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_else(|| path.to_string());
            out.warn(
                template.located,
                &template.field("seccomp"),
                format!("the seccomp profile {path} becomes a Localhost profile {file}: copy it into the kubelet's seccomp directory (/var/lib/kubelet/seccomp) on every node"),
            );
            Some(profile("Localhost", Some(file)))
        }
    }
}

/// An init container per dependency that a connection can wait for: a
/// Container with a TCP port, reached through its Service, which routes to
/// it only once it is ready (healthy, when it has a health check).
fn wait_for_dependencies(out: &mut Output, template: &Template) -> Vec<Container> {
    let mut waits = Vec::new();
    for (index, dependency) in template.spec.depends_on.iter().enumerate() {
        let path = template.path(&[PathSegment::from("dependsOn"), PathSegment::Index(index)]);
        let name = dependency.name();
        match wait_target(out, dependency) {
            Ok(port) => waits.push(wait_container(out, name, port)),
            Err(reason) => out.warn(template.located, &path, reason),
        }
    }
    waits
}

/// The TCP port to wait on for `dependency`, or why there is none.
fn wait_target(out: &Output, dependency: &Dependency) -> Result<u16, String> {
    let name = dependency.name();
    if out.find(name, Kind::Container).is_none() {
        return Err(format!(
            "waiting for Job {name} has no counterpart in a pod: the pod starts at once (apply {name} first and `kubectl wait --for=condition=complete job/{name}`)"
        ));
    }
    if dependency.condition() == DependencyCondition::Completed {
        return Err(format!(
            "waiting for {name} to complete has no counterpart in a pod: the pod starts at once"
        ));
    }
    let port = out
        .find(name, Kind::Container)
        .and_then(|l| match &l.object {
            Object::Container(c) => distinct_ports(&c.spec)
                .into_iter()
                .find(|(_, protocol)| *protocol == Protocol::Tcp)
                .map(|(port, _)| port),
            _ => None,
        });
    port.ok_or_else(|| {
        format!("{name} publishes no TCP port, so no Service reaches it and an init container has nothing to wait on: the pod starts without waiting")
    })
}

fn wait_container(out: &Output, name: &str, port: u16) -> Container {
    let container_name = format!("wait-for-{name}");
    let container_name = if container_name.len() <= 63 {
        container_name
    } else {
        format!("wait-{}", &name[..name.len().min(58)])
    };
    // `nc` without -z: Debian's busybox lacks it, and a connection closed
    // at once (stdin is empty) says as much.
    let script = format!(
        "until nc -w 2 {name} {port} </dev/null >/dev/null 2>&1; do echo waiting for {name}:{port}; sleep 2; done"
    );
    Container {
        name: container_name,
        image: Some(out.options.wait_image.clone()),
        command: Some(vec!["sh".to_string(), "-c".to_string(), script]),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            run_as_non_root: Some(true),
            run_as_user: Some(65534),
            ..SecurityContext::default()
        }),
        ..Container::default()
    }
}

/// `metadata.hosts` as a nodeSelector: a host's labels are a node's
/// labels, and `hostname` is `kubernetes.io/hostname`. Hostname globs have
/// no counterpart.
fn node_selector(out: &mut Output, template: &Template) -> Option<BTreeMap<String, String>> {
    let hosts = template.located.object.metadata().hosts.as_ref()?;
    let path = [PathSegment::from("metadata"), PathSegment::from("hosts")];
    match hosts {
        HostSelector::Labels(selector) => Some(
            selector
                .match_labels
                .iter()
                .map(|(key, value)| {
                    let key = if key == "hostname" {
                        "kubernetes.io/hostname".to_string()
                    } else {
                        key.clone()
                    };
                    (key, value.clone())
                })
                .collect(),
        ),
        HostSelector::Hostnames(globs) => {
            out.warn(
                template.located,
                &path,
                format!(
                    "hostname globs ({}) have no counterpart in a nodeSelector: label the nodes and select them with matchLabels",
                    globs.join(", ")
                ),
            );
            None
        }
    }
}

/// Fields with no counterpart in a pod: each a warning.
fn not_mapped(out: &mut Output, template: &Template) {
    let spec = &template.spec;
    for (index, _) in spec.devices.iter().enumerate() {
        out.warn(
            template.located,
            &template.path(&[PathSegment::from("devices"), PathSegment::Index(index)]),
            "host devices reach a pod through a device plugin, not the pod spec: left out",
        );
    }
    if spec.network_mode == NetworkMode::None {
        out.warn(
            template.located,
            &template.field("networkMode"),
            "networkMode none has no counterpart: the pod joins the cluster network (a NetworkPolicy that allows nothing comes closest)",
        );
    }
    if let Some(signal) = &spec.stop_signal {
        let plain = signal.trim_start_matches("SIG");
        if !plain.eq_ignore_ascii_case("TERM") && signal != "15" {
            out.warn(
                template.located,
                &template.field("stopSignal"),
                format!("Kubernetes stops containers with SIGTERM (or the image's STOPSIGNAL): {signal} is left out"),
            );
        }
    }
    if spec.logging.is_some() {
        out.warn(
            template.located,
            &template.field("logging"),
            "the node's kubelet rotates container logs (containerLogMaxSize, containerLogMaxFiles): left out",
        );
    }
}
