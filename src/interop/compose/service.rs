//! `services:`: one Container per service, and the project's objects around them.

use std::collections::BTreeMap;

use crate::manifest::yaml::{Entry, Node, Pos, Value};
use crate::manifest::{
    Capabilities, ContainerSpec, Dependency, DependencyCondition, DependencySpec, Device,
    DeviceSpec, EnvVars, Kind, Manifest, Metadata, NetworkAttachment, NetworkAttachmentSpec,
    NetworkMode, Object, Privileged, PullPolicy, RestartPolicy, ScalarString, API_VERSION,
};

use super::health::{self, Dependency as ComposeDependency};
use super::networks::{self, Networks, Volumes};
use super::tree::{get, text, Ctx};
use super::{mounts, names, ports, resources, shell, ComposeError, Converted};

/// Labels berth sets on every object it converts, so `berth ps -l
/// compose.project=shop` finds a project's containers.
pub const PROJECT_LABEL: &str = "compose.project";
pub const SERVICE_LABEL: &str = "compose.service";

/// Top-level keys berth reads; `x-*` extensions are compose's own.
const TOP_LEVEL: [&str; 4] = ["services", "networks", "volumes", "name"];

/// Service keys with no berth equivalent, and what to say about them.
const UNSUPPORTED: &[(&str, &str)] = &[
    ("extra_hosts", "berth has no extra /etc/hosts entries (it lists the containers on shared networks); ignored"),
    ("links", "berth resolves services by name on shared networks; link aliases are not kept"),
    ("external_links", "berth resolves only containers of its own networks; ignored"),
    ("extends", "not resolved: merge the base service into this one by hand"),
    ("secrets", "berth has no secrets: bind-mount the file read-only instead"),
    ("configs", "berth has no configs: bind-mount the file read-only instead"),
    ("volumes_from", "berth mounts what each Container names: repeat the mounts instead"),
    ("init", "berth runs no init process inside the container; ignored"),
    ("dns", "berth gives containers the host's resolv.conf; ignored"),
    ("dns_search", "berth gives containers the host's resolv.conf; ignored"),
    ("dns_opt", "berth gives containers the host's resolv.conf; ignored"),
]
;

pub fn convert_project(
    ctx: &mut Ctx<'_>,
    root: &Node,
    profiles: &[String],
) -> Result<Vec<Converted>, ComposeError> {
    top_level_warnings(ctx, root);
    let services = get(root, "services")
        .filter(|s| matches!(&s.value, Value::Map(entries) if !entries.is_empty()))
        .ok_or_else(|| ctx.invalid(root.pos, "services", "the compose file has no services"))?;
    let mut networks = Networks::read(ctx, get(root, "networks"))?;
    let mut volumes = Volumes::read(ctx, get(root, "volumes"))?;
    let entries = ctx.entries(services, "services")?;
    let enabled: Vec<&Entry> = entries
        .iter()
        .filter(|entry| enabled(ctx, entry, profiles))
        .collect();
    let container_names = container_names(ctx, &enabled)?;
    let mut built = Vec::new();
    for entry in &enabled {
        let mut service = Service {
            ctx: &mut *ctx,
            key: &entry.key,
            field: format!("services.{}", entry.key),
            networks: &mut networks,
            volumes: &mut volumes,
        };
        built.push(service.convert(&entry.value, &container_names)?);
    }
    resolve_dependencies(ctx, &mut built, &container_names);
    let mut objects = networks.objects(ctx);
    objects.extend(volumes.objects(ctx));
    objects.extend(built.into_iter().map(|b| b.converted));
    Ok(objects)
}

fn top_level_warnings(ctx: &mut Ctx<'_>, root: &Node) {
    let Value::Map(entries) = &root.value else {
        return;
    };
    for entry in entries {
        let key = entry.key.as_str();
        if TOP_LEVEL.contains(&key) || key.starts_with("x-") || key == "version" {
            continue;
        }
        let message = match key {
            "secrets" | "configs" => {
                "berth has no secrets or configs: bind-mount the files read-only instead"
                    .to_string()
            }
            "include" => {
                "included compose files are not converted: convert each on its own".to_string()
            }
            other => format!("top-level {other} has no berth equivalent; ignored"),
        };
        ctx.warn(entry.key_pos, key, message);
    }
}

/// Whether compose `up` (with `--profile` for each of `profiles`) starts the
/// service; one it does not is left out, with a warning naming its profiles.
fn enabled(ctx: &mut Ctx<'_>, entry: &Entry, profiles: &[String]) -> bool {
    let Some(node) = get(&entry.value, "profiles") else {
        return true;
    };
    let field = format!("services.{}.profiles", entry.key);
    let listed = ctx.strings(node, &field).unwrap_or_default();
    if listed.iter().any(|p| profiles.contains(p) || p == "*") || profiles.iter().any(|p| p == "*")
    {
        return true;
    }
    ctx.warn(
        node.pos,
        &field,
        format!(
            "service {} is only in profiles {}: left out, as compose up leaves it (give --profile to convert it)",
            entry.key,
            listed.join(", ")
        ),
    );
    false
}

/// The berth name of each service's container: `container_name`, or
/// `PROJECT-SERVICE`.
fn container_names(
    ctx: &Ctx<'_>,
    services: &[&Entry],
) -> Result<BTreeMap<String, String>, ComposeError> {
    let mut names_by_service = BTreeMap::new();
    let mut taken: BTreeMap<String, &str> = BTreeMap::new();
    for entry in services {
        let name = match get(&entry.value, "container_name") {
            Some(node) => {
                let given = ctx.string(node, &format!("services.{}.container_name", entry.key))?;
                names::fit(names::sanitize(&given))
            }
            None => names::scoped(&ctx.project, &entry.key),
        };
        if let Some(other) = taken.insert(name.clone(), &entry.key) {
            return Err(ctx.invalid(
                entry.key_pos,
                &format!("services.{}", entry.key),
                format!("its berth name {name} is the same as service {other}'s: set container_name on one of them"),
            ));
        }
        names_by_service.insert(entry.key.clone(), name);
    }
    Ok(names_by_service)
}

/// A converted service before its dependencies are resolved.
struct Built {
    service: String,
    converted: Converted,
    dependencies: Vec<ComposeDependency>,
}

impl Built {
    fn spec(&self) -> &ContainerSpec {
        match &self.converted.object {
            Object::Container(c) => &c.spec,
            _ => unreachable!("services convert to Containers"),
        }
    }

    fn spec_mut(&mut self) -> &mut ContainerSpec {
        match &mut self.converted.object {
            Object::Container(c) => &mut c.spec,
            _ => unreachable!("services convert to Containers"),
        }
    }
}

/// Turns each `depends_on` into a berth dependency, now that every service's
/// health check and restart policy is known: berth refuses `healthy` on a
/// container without a check and `completed` on one that always restarts,
/// so those become `started`, with a warning.
fn resolve_dependencies(
    ctx: &mut Ctx<'_>,
    built: &mut [Built],
    container_names: &BTreeMap<String, String>,
) {
    let checks: BTreeMap<String, (bool, RestartPolicy)> = built
        .iter()
        .map(|b| {
            let spec = b.spec();
            (
                b.service.clone(),
                (spec.healthcheck.is_some(), spec.restart.policy),
            )
        })
        .collect();
    for b in built.iter_mut() {
        let mut resolved = Vec::new();
        for dependency in std::mem::take(&mut b.dependencies) {
            let Some(name) = container_names.get(&dependency.service) else {
                if dependency.required {
                    ctx.warn(dependency.pos, &dependency.field, format!("service {} is not converted (unknown, or in a profile left out); the dependency is dropped", dependency.service));
                }
                continue;
            };
            let (has_check, restart) = checks[&dependency.service];
            let condition = match dependency.condition {
                DependencyCondition::Healthy if !has_check => {
                    ctx.warn(dependency.pos, &dependency.field, format!("service {} has no healthcheck berth can run (the image's own is not read): waits until it started instead", dependency.service));
                    DependencyCondition::Started
                }
                DependencyCondition::Completed
                    if matches!(
                        restart,
                        RestartPolicy::Always | RestartPolicy::UnlessStopped
                    ) =>
                {
                    ctx.warn(dependency.pos, &dependency.field, format!("service {} restarts always, so berth would wait for its completion for ever: waits until it started instead", dependency.service));
                    DependencyCondition::Started
                }
                condition => condition,
            };
            resolved.push(match condition {
                DependencyCondition::Started => Dependency::Name(name.clone()),
                condition => Dependency::Detailed(DependencySpec {
                    name: name.clone(),
                    condition,
                }),
            });
        }
        b.spec_mut().depends_on = resolved;
    }
}

/// One service being converted.
struct Service<'c, 'a> {
    ctx: &'c mut Ctx<'a>,
    key: &'c str,
    field: String,
    networks: &'c mut Networks,
    volumes: &'c mut Volumes,
}

impl Service<'_, '_> {
    fn at(&self, key: &str) -> String {
        format!("{}.{key}", self.field)
    }

    fn convert(
        &mut self,
        node: &Node,
        container_names: &BTreeMap<String, String>,
    ) -> Result<Built, ComposeError> {
        let entries = self.ctx.entries(node, &self.field)?;
        let image = self.image(node)?;
        let mut spec: ContainerSpec =
            serde_json::from_value(serde_json::json!({ "image": image })).unwrap_or_default();
        // compose's default restart policy is "no".
        spec.restart = health::policy(RestartPolicy::Never);
        self.command(node, &mut spec)?;
        let mut labels = BTreeMap::new();
        let mut dependencies = Vec::new();
        let mut network_mode = None;
        for entry in entries {
            let at = self.at(&entry.key);
            let value = &entry.value;
            match entry.key.as_str() {
                "image" | "build" | "command" | "entrypoint" | "container_name" | "profiles"
                | "expose" | "networks" => {}
                "environment" => spec.env = self.environment(value, &at)?,
                "env_file" => spec.env_files = self.env_files(value, &at)?,
                "ports" => spec.ports = ports::ports(self.ctx, value, &at)?,
                "volumes" => {
                    let mounts = mounts::volumes(self.ctx, value, &at, self.key, self.volumes)?;
                    spec.mounts.extend(mounts);
                }
                "tmpfs" => spec.mounts.extend(mounts::tmpfs(self.ctx, value, &at)?),
                "network_mode" => {
                    network_mode = Some((self.ctx.string(value, &at)?, value.pos, at))
                }
                "depends_on" => dependencies = health::depends_on(self.ctx, value, &at)?,
                "healthcheck" => spec.healthcheck = health::healthcheck(self.ctx, value, &at)?,
                "restart" => spec.restart = health::restart(self.ctx, value, &at)?,
                "user" => spec.user = Some(self.ctx.string(value, &at)?),
                "working_dir" => spec.working_dir = Some(self.ctx.string(value, &at)?),
                "hostname" => spec.hostname = Some(self.ctx.string(value, &at)?),
                "cap_add" => capabilities(&mut spec).add = self.ctx.strings(value, &at)?,
                "cap_drop" => capabilities(&mut spec).drop = self.ctx.strings(value, &at)?,
                "privileged" if self.ctx.boolean(value, &at)? => spec.privileged = Privileged::Full,
                "privileged" => {}
                "read_only" => spec.read_only_rootfs = self.ctx.boolean(value, &at)?,
                "devices" => spec.devices = devices(self.ctx, value, &at)?,
                // Later settings win over earlier ones, whichever form they take.
                "mem_limit" => {
                    resources::resources(&mut spec).memory =
                        Some(resources::memory(self.ctx, value, &at)?)
                }
                "cpus" => {
                    resources::resources(&mut spec).cpus = resources::cpus(self.ctx, value, &at)?
                }
                "pids_limit" => {
                    resources::resources(&mut spec).pids = resources::pids(self.ctx, value, &at)?
                }
                "deploy" => resources::deploy(self.ctx, value, &at, &mut spec)?,
                "labels" => labels = networks::label_map(self.ctx, value, &at)?,
                "stop_signal" => spec.stop_signal = Some(self.ctx.string(value, &at)?),
                "stop_grace_period" => {
                    spec.stop_grace_period = Some(self.ctx.duration(value, &at)?)
                }
                "logging" => spec.logging = resources::logging(self.ctx, value, &at)?,
                "pull_policy" => spec.image_pull_policy = pull_policy(self.ctx, value, &at)?,
                "security_opt" => security_opt(self.ctx, value, &at, &mut spec)?,
                "scale" if self.ctx.integer(value, &at)? == 1 => {}
                key if key.starts_with("x-") => {}
                key => {
                    let message = UNSUPPORTED
                        .iter()
                        .find(|(k, _)| *k == key)
                        .map(|(_, m)| m.to_string())
                        .unwrap_or_else(|| format!("{key} has no berth equivalent; ignored"));
                    self.ctx.warn(entry.key_pos, &at, message);
                }
            }
        }
        self.networks(node, network_mode, &mut spec)?;
        labels.insert(PROJECT_LABEL.into(), self.ctx.project.clone());
        labels.insert(SERVICE_LABEL.into(), self.key.to_string());
        let line = node_line(node);
        Ok(Built {
            service: self.key.to_string(),
            converted: Converted {
                object: Object::Container(Manifest {
                    api_version: API_VERSION.into(),
                    kind: Kind::Container,
                    metadata: Metadata {
                        name: container_names[self.key].clone(),
                        labels,
                        hosts: None,
                    },
                    spec,
                }),
                from: self.field.clone(),
                line,
            },
            dependencies,
        })
    }

    /// `image:` as written, its local path (berth's `oci-layout:PATH` and
    /// kin) rewritten for the manifests' directory; `build:` is warned.
    fn image(&mut self, node: &Node) -> Result<String, ComposeError> {
        let build = get(node, "build");
        let image = match get(node, "image") {
            Some(image) => self.ctx.string(image, &self.at("image"))?,
            None => {
                let Some(build) = build else {
                    return Err(self.ctx.invalid(
                        node.pos,
                        &self.field,
                        "a service needs image (or build)",
                    ));
                };
                let name = format!("{}-{}", self.ctx.project, self.key);
                self.ctx.warn(build.pos, &self.at("build"), format!("berth builds no images: build it, import it as {name} (berth image import ... --name {name}) and keep image: {name}"));
                return Ok(name);
            }
        };
        if let Some(build) = build {
            self.ctx.warn(
                build.pos,
                &self.at("build"),
                format!("berth builds no images; {image} is used as it is"),
            );
        }
        Ok(local_image(self.ctx, &image))
    }

    /// compose `entrypoint` is berth's `command`, compose `command` berth's
    /// `args`; the string forms split into words as compose splits them.
    fn command(&mut self, node: &Node, spec: &mut ContainerSpec) -> Result<(), ComposeError> {
        let words = |ctx: &Ctx<'_>,
                     key: &str,
                     field: String|
         -> Result<Option<Vec<String>>, ComposeError> {
            let Some(value) = get(node, key) else {
                return Ok(None);
            };
            match &value.value {
                Value::Null => Ok(None),
                Value::Seq(_) => ctx.strings(value, &field).map(Some),
                _ => {
                    let line = ctx.string(value, &field)?;
                    shell::split(&line)
                        .map(Some)
                        .map_err(|e| ctx.invalid(value.pos, &field, e))
                }
            }
        };
        let entrypoint = words(self.ctx, "entrypoint", self.at("entrypoint"))?;
        let command = words(self.ctx, "command", self.at("command"))?;
        match (entrypoint, command) {
            (Some(entrypoint), command) if entrypoint.is_empty() => match command {
                Some(command) => spec.command = Some(command),
                None => {
                    let pos = get(node, "entrypoint").map_or(node.pos, |n| n.pos);
                    self.ctx.warn(pos, &self.at("entrypoint"), "an empty entrypoint runs the image's cmd alone, which berth cannot say without a command; the image's entrypoint is kept");
                }
            },
            (entrypoint, command) => {
                spec.command = entrypoint;
                spec.args = command;
            }
        }
        Ok(())
    }

    /// `environment:` as a map; a bare `KEY` takes its value from the
    /// environment and `.env` now (and is left out when unset, as compose does).
    fn environment(&mut self, node: &Node, field: &str) -> Result<Option<EnvVars>, ComposeError> {
        let mut vars = BTreeMap::new();
        for (key, value, _) in self.ctx.key_values(node, field)? {
            let value = match value {
                Some(value) => Some(value),
                None => self.ctx.variables.get(&key).map(str::to_string),
            };
            if let Some(value) = value {
                vars.insert(key, ScalarString(value));
            }
        }
        Ok((!vars.is_empty()).then_some(EnvVars::Map(vars)))
    }

    /// `env_file:` paths, rewritten for the manifests' directory. Files that
    /// use interpolation are warned about: compose expands `${...}` in them,
    /// berth reads values as written.
    fn env_files(&mut self, node: &Node, field: &str) -> Result<Vec<String>, ComposeError> {
        let items: Vec<&Node> = match &node.value {
            Value::Seq(items) => items.iter().collect(),
            _ => vec![node],
        };
        let mut files = Vec::new();
        for (i, item) in items.into_iter().enumerate() {
            let at = format!("{field}[{i}]");
            let (path, required, raw) = match &item.value {
                Value::Map(_) => {
                    let path = get(item, "path").ok_or_else(|| {
                        self.ctx
                            .invalid(item.pos, &at, "an env_file entry needs path")
                    })?;
                    let required = match get(item, "required") {
                        Some(r) => self.ctx.boolean(r, &format!("{at}.required"))?,
                        None => true,
                    };
                    let raw = get(item, "format").and_then(text).as_deref() == Some("raw");
                    (self.ctx.string(path, &format!("{at}.path"))?, required, raw)
                }
                _ => (self.ctx.string(item, &at)?, true, false),
            };
            match (self.ctx.read)(&self.ctx.absolute_host_path(&path)) {
                None if !required => continue,
                None => self.ctx.warn(
                    item.pos,
                    &at,
                    format!("env file {path} cannot be read; compose would refuse the project"),
                ),
                Some(content) if !raw => {
                    if let Some(line) = content
                        .lines()
                        .position(|l| !l.trim_start().starts_with('#') && l.contains('$'))
                    {
                        self.ctx.warn(item.pos, &at, format!("env file {path} line {}: compose expands $ variables in env files, berth reads the values as written", line + 1));
                    }
                }
                Some(_) => {}
            }
            files.push(self.ctx.host_path(&path));
        }
        Ok(files)
    }

    /// `networks:` and `network_mode:`. Every attachment gets the service's
    /// name as an alias, since other services reach it by that name.
    fn networks(
        &mut self,
        node: &Node,
        network_mode: Option<(String, Pos, String)>,
        spec: &mut ContainerSpec,
    ) -> Result<(), ComposeError> {
        if let Some((mode, pos, at)) = network_mode {
            match mode.as_str() {
                "host" => {
                    spec.network_mode = NetworkMode::Host;
                    return Ok(());
                }
                "none" => {
                    spec.network_mode = NetworkMode::None;
                    return Ok(());
                }
                "bridge" | "default" => {}
                other => self.ctx.warn(pos, &at, format!("network_mode {other}: berth shares no network namespace between containers; the service joins the project's default network instead")),
            }
        }
        let requested: Vec<(String, Option<&Node>, Pos)> = match get(node, "networks") {
            None => vec![(networks::DEFAULT.to_string(), None, node.pos)],
            Some(
                list @ Node {
                    value: Value::Seq(_),
                    ..
                },
            ) => self
                .ctx
                .strings(list, &self.at("networks"))?
                .into_iter()
                .map(|n| (n, None, list.pos))
                .collect(),
            Some(map) => self
                .ctx
                .entries(map, &self.at("networks"))?
                .iter()
                .map(|e| (e.key.clone(), Some(&e.value), e.key_pos))
                .collect(),
        };
        for (key, options, pos) in requested {
            let at = format!("{}.networks.{key}", self.field);
            let name = self
                .networks
                .reference(self.ctx, &key, pos)
                .ok_or_else(|| {
                    self.ctx.invalid(
                        pos,
                        &at,
                        format!("network {key:?} is not declared under the top-level networks:"),
                    )
                })?;
            let mut attachment = NetworkAttachmentSpec {
                name,
                ip: None,
                aliases: Vec::new(),
            };
            if names::sanitize(self.key) == self.key {
                attachment.aliases.push(self.key.to_string());
            } else {
                self.ctx.warn(
                    pos,
                    &at,
                    format!(
                        "service name {:?} is not a host name: other containers reach it as {}",
                        self.key,
                        names::sanitize(self.key)
                    ),
                );
                attachment.aliases.push(names::sanitize(self.key));
            }
            if let Some(options) = options {
                self.attachment_options(options, &at, &mut attachment)?;
            }
            spec.networks.push(NetworkAttachment::Detailed(attachment));
        }
        Ok(())
    }

    fn attachment_options(
        &mut self,
        node: &Node,
        field: &str,
        attachment: &mut NetworkAttachmentSpec,
    ) -> Result<(), ComposeError> {
        for entry in self.ctx.entries(node, field)? {
            let at = format!("{field}.{}", entry.key);
            match entry.key.as_str() {
                "aliases" => {
                    for alias in self.ctx.strings(&entry.value, &at)? {
                        if !attachment.aliases.contains(&alias) {
                            attachment.aliases.push(alias);
                        }
                    }
                }
                "ipv4_address" | "ipv6_address" => {
                    let text = self.ctx.string(&entry.value, &at)?;
                    let ip = text.parse().map_err(|_| {
                        self.ctx.invalid(
                            entry.value.pos,
                            &at,
                            format!("{text:?} is not an IP address"),
                        )
                    })?;
                    if attachment.ip.is_some() {
                        self.ctx.warn(
                            entry.key_pos,
                            &at,
                            "berth gives an attachment one static address; the first is kept",
                        );
                    } else {
                        attachment.ip = Some(ip);
                    }
                }
                other => self.ctx.warn(
                    entry.key_pos,
                    &at,
                    format!("{other} has no berth equivalent; ignored"),
                ),
            }
        }
        Ok(())
    }
}

/// The line a service starts on.
fn node_line(node: &Node) -> usize {
    node.pos.line
}

fn capabilities(spec: &mut ContainerSpec) -> &mut Capabilities {
    spec.capabilities.get_or_insert_with(Capabilities::default)
}

/// berth's local image sources (`oci-layout:PATH[:TAG]`, `oci-archive:`,
/// `docker-archive:`, `rootfs:`) name paths relative to the manifest, so a
/// relative one is rewritten; every other image is kept as written.
fn local_image(ctx: &Ctx<'_>, image: &str) -> String {
    for prefix in ["oci-layout:", "oci-archive:", "docker-archive:", "rootfs:"] {
        let Some(rest) = image.strip_prefix(prefix) else {
            continue;
        };
        if rest.starts_with('/') {
            return image.to_string();
        }
        // A tag follows the path's last `:` when no `/` comes after it.
        let (path, tag) = match rest.rsplit_once(':') {
            Some((path, tag)) if prefix == "oci-layout:" && !tag.contains('/') => (path, Some(tag)),
            _ => (rest, None),
        };
        let rebased = ctx.host_path(path);
        let rebased = rebased.strip_prefix("./").unwrap_or(&rebased).to_string();
        return match tag {
            Some(tag) => format!("{prefix}{rebased}:{tag}"),
            None => format!("{prefix}{rebased}"),
        };
    }
    image.to_string()
}

fn devices(ctx: &mut Ctx<'_>, node: &Node, field: &str) -> Result<Vec<Device>, ComposeError> {
    let Value::Seq(items) = &node.value else {
        return Err(ctx.invalid(node.pos, field, "expected a list"));
    };
    let mut devices = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("{field}[{i}]");
        match &item.value {
            Value::Map(_) => {
                let source = get(item, "source")
                    .ok_or_else(|| ctx.invalid(item.pos, &at, "a device needs source"))?;
                devices.push(Device::Long(DeviceSpec {
                    path: ctx.string(source, &format!("{at}.source"))?,
                    container_path: get(item, "target").and_then(text),
                    permissions: get(item, "permissions").and_then(text),
                }));
            }
            _ => {
                let text = ctx.string(item, &at)?;
                if !text.starts_with('/') {
                    ctx.warn(
                        item.pos,
                        &at,
                        format!("{text}: berth has no CDI devices; left out"),
                    );
                    continue;
                }
                devices.push(Device::Short(text));
            }
        }
    }
    Ok(devices)
}

fn pull_policy(ctx: &mut Ctx<'_>, node: &Node, field: &str) -> Result<PullPolicy, ComposeError> {
    let text = ctx.string(node, field)?;
    Ok(match text.as_str() {
        "always" => PullPolicy::Always,
        "never" => PullPolicy::Never,
        "missing" | "if_not_present" => PullPolicy::IfNotPresent,
        other => {
            ctx.warn(
                node.pos,
                field,
                format!("pull_policy {other} has no berth equivalent; IfNotPresent is used"),
            );
            PullPolicy::IfNotPresent
        }
    })
}

/// `security_opt`: seccomp profiles and no-new-privileges carry over.
fn security_opt(
    ctx: &mut Ctx<'_>,
    node: &Node,
    field: &str,
    spec: &mut ContainerSpec,
) -> Result<(), ComposeError> {
    for option in ctx.strings(node, field)? {
        let (key, value) = option
            .split_once(['=', ':'])
            .map_or((option.as_str(), ""), |(k, v)| (k, v));
        match (key, value) {
            ("no-new-privileges", "" | "true") => spec.no_new_privileges = true,
            ("no-new-privileges", "false") => spec.no_new_privileges = false,
            ("seccomp", "unconfined") => spec.seccomp = Some("unconfined".into()),
            ("seccomp", path) if !path.is_empty() => spec.seccomp = Some(ctx.host_path(path)),
            _ => ctx.warn(
                node.pos,
                field,
                format!("{option} has no berth equivalent; ignored"),
            ),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::interop::compose::{convert, Conversion, Input};
    use crate::manifest::{MountType, Resources};

    fn input<'a>(text: &str, read: &'a dyn Fn(&Path) -> Option<String>) -> Input<'a> {
        Input {
            file: PathBuf::from("/srv/shop/compose.yaml"),
            display: "compose.yaml".into(),
            text: text.into(),
            dotenv: None,
            environment: [("HOME".to_string(), "/root".to_string())].into(),
            project_name: None,
            profiles: Vec::new(),
            out_dir: PathBuf::from("/srv/shop/berth"),
            overrides: Vec::new(),
            read,
        }
    }

    fn run(text: &str) -> Conversion {
        convert(&input(text, &|_| None)).unwrap()
    }

    fn container<'c>(conversion: &'c Conversion, name: &str) -> &'c ContainerSpec {
        conversion
            .objects
            .iter()
            .find_map(|c| match &c.object {
                Object::Container(m) if m.metadata.name == name => Some(&m.spec),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no container {name}: {conversion:?}"))
    }

    #[test]
    fn entrypoint_is_berths_command_and_command_its_args() {
        let done = run("services:\n  a:\n    image: alpine\n    entrypoint: /bin/sh -c\n    command: [\"echo hi\"]\n  b:\n    image: alpine\n    command: echo 'two words'\n  c:\n    image: alpine\n    entrypoint: []\n    command: [run]\n");
        let a = container(&done, "shop-a");
        assert_eq!(a.command.as_deref().unwrap(), ["/bin/sh", "-c"]);
        assert_eq!(a.args.as_deref().unwrap(), ["echo hi"]);
        let b = container(&done, "shop-b");
        assert_eq!(
            (b.command.as_ref(), b.args.as_deref().unwrap()),
            (None, &["echo".to_string(), "two words".to_string()][..])
        );
        assert_eq!(
            container(&done, "shop-c").command.as_deref().unwrap(),
            ["run"]
        );
    }

    #[test]
    fn environment_lists_and_maps_and_bare_keys_from_the_environment() {
        let done = run("services:\n  a:\n    image: alpine\n    environment: [A=1, HOME, UNSET, \"B=x=y\"]\n  b:\n    image: alpine\n    environment: {PORT: 8080, DEBUG: ~}\n");
        let a = container(&done, "shop-a").env.as_ref().unwrap().pairs();
        assert_eq!(a, [("A", "1"), ("B", "x=y"), ("HOME", "/root")]);
        let b = container(&done, "shop-b").env.as_ref().unwrap().pairs();
        assert_eq!(b, [("PORT", "8080")]);
    }

    #[test]
    fn services_join_the_project_default_network_by_their_name() {
        let done = run("services:\n  web:\n    image: nginx\n  host:\n    image: nginx\n    network_mode: host\n");
        let web = container(&done, "shop-web");
        assert_eq!(
            web.networks,
            [NetworkAttachment::Detailed(NetworkAttachmentSpec {
                name: "shop-default".into(),
                ip: None,
                aliases: vec!["web".into()],
            })]
        );
        assert_eq!(
            container(&done, "shop-host").network_mode,
            NetworkMode::Host
        );
        let networks: Vec<&str> = done
            .objects
            .iter()
            .filter(|c| c.object.kind() == Kind::Network)
            .map(|c| c.object.name())
            .collect();
        assert_eq!(networks, ["shop-default"]);
    }

    #[test]
    fn paths_follow_the_output_directory() {
        let done = run("services:\n  a:\n    image: oci-layout:./images/app:v2\n    volumes: [./conf:/conf]\n    env_file: [./app.env]\n");
        let a = container(&done, "shop-a");
        assert_eq!(a.image, "oci-layout:../images/app:v2");
        assert_eq!(a.mounts[0].kind, MountType::Bind);
        assert_eq!(a.mounts[0].source.as_deref(), Some("../conf"));
        assert_eq!(a.env_files, ["../app.env"]);
        assert_eq!(
            done.warnings.len(),
            1,
            "the env file cannot be read: {:?}",
            done.warnings
        );
    }

    #[test]
    fn dependencies_berth_cannot_wait_for_become_started_with_a_warning() {
        let done = run("services:\n  db:\n    image: postgres\n    restart: always\n  app:\n    image: app\n    depends_on:\n      db: {condition: service_healthy}\n  job:\n    image: app\n    depends_on:\n      db: {condition: service_completed_successfully}\n      app: {condition: service_started}\n      gone: {condition: service_started, required: false}\n");
        assert_eq!(
            container(&done, "shop-app").depends_on,
            [Dependency::Name("shop-db".into())]
        );
        assert_eq!(
            container(&done, "shop-job").depends_on,
            [
                Dependency::Name("shop-db".into()),
                Dependency::Name("shop-app".into())
            ]
        );
        let fields: Vec<&str> = done.warnings.iter().map(|w| w.field.as_str()).collect();
        assert_eq!(
            fields,
            ["services.app.depends_on.db", "services.job.depends_on.db"]
        );
        assert_eq!(done.warnings[0].line, 8);
    }

    #[test]
    fn limits_capabilities_and_flags_carry_over() {
        let done = run("services:\n  a:\n    image: alpine\n    mem_limit: 1g\n    cpus: 1.5\n    pids_limit: -1\n    cap_add: [NET_ADMIN]\n    cap_drop: [ALL]\n    privileged: true\n    read_only: true\n    user: 1000:1000\n    working_dir: /app\n    hostname: box\n    stop_signal: SIGQUIT\n    stop_grace_period: 1m\n    labels: [tier=web]\n    devices: [/dev/fuse]\n    container_name: Custom_Box\n");
        let a = container(&done, "custom-box");
        assert_eq!(
            a.resources,
            Some(Resources {
                memory: Some(crate::manifest::quantity::ByteSize(1 << 30)),
                cpus: Some(1.5),
                pids: None,
            })
        );
        let caps = a.capabilities.as_ref().unwrap();
        assert_eq!(
            (caps.add.as_slice(), caps.drop.as_slice()),
            (&["NET_ADMIN".to_string()][..], &["ALL".to_string()][..])
        );
        assert_eq!(a.privileged, Privileged::Full);
        assert!(a.read_only_rootfs);
        assert_eq!(a.user.as_deref(), Some("1000:1000"));
        assert_eq!(a.working_dir.as_deref(), Some("/app"));
        assert_eq!(a.hostname.as_deref(), Some("box"));
        assert_eq!(a.stop_signal.as_deref(), Some("SIGQUIT"));
        assert_eq!(a.stop_grace_period.unwrap().to_string(), "1m");
        assert_eq!(a.devices, [Device::Short("/dev/fuse".into())]);
        assert_eq!(a.restart.policy, RestartPolicy::Never, "compose's default");
        let Object::Container(manifest) = &done.objects[1].object else {
            panic!("{done:?}")
        };
        assert_eq!(manifest.metadata.labels["tier"], "web");
        assert_eq!(manifest.metadata.labels[SERVICE_LABEL], "a");
        assert!(done.warnings.is_empty(), "{:?}", done.warnings);
    }

    #[test]
    fn interpolation_errors_name_the_variable_and_the_line() {
        let text =
            "services:\n  a:\n    image: alpine\n    environment:\n      KEY: ${SECRET:?missing}\n";
        let error = convert(&input(text, &|_| None)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "compose.yaml:5:12: required variable SECRET is not set or empty: missing"
        );
        let bad = "services:\n  a:\n    image: \"alpine:$\"\n";
        let error = convert(&input(bad, &|_| None)).unwrap_err().to_string();
        assert!(error.starts_with("compose.yaml:3:12: "), "{error}");
    }

    #[test]
    fn unset_variables_are_warned_where_they_are_used() {
        let done = run("services:\n  a:\n    image: \"alpine:${TAG}\"\n");
        assert_eq!(container(&done, "shop-a").image, "alpine:");
        assert_eq!(
            done.warnings[0].to_string(),
            "compose.yaml:3:12: interpolation: variable TAG is not set; using an empty string"
        );
    }

    #[test]
    fn names_that_collide_are_refused() {
        let text = "services:\n  a_b:\n    image: x\n  a-b:\n    image: x\n";
        let error = convert(&input(text, &|_| None)).unwrap_err().to_string();
        assert!(error.contains("same as service a_b's"), "{error}");
    }
}
