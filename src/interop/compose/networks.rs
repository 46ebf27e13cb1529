//! Top-level `networks:` and `volumes:`: Network and Volume objects, and the
//! berth names services use to refer to them.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::manifest::net::Cidr;
use crate::manifest::yaml::{Node, Pos};
use crate::manifest::{
    Kind, Manifest, Metadata, NetworkDriver, NetworkSpec, Object, VolumeSpec, API_VERSION,
};

use super::names;
use super::tree::{get, text, Ctx};
use super::{ComposeError, Converted};

/// The network a service without `networks:` joins, as compose's `default`.
pub const DEFAULT: &str = "default";

struct Declared<S> {
    key: String,
    name: String,
    spec: S,
    labels: BTreeMap<String, String>,
    line: usize,
    used: bool,
}

/// The project's networks: declared ones, and `default` once a service uses it.
pub struct Networks {
    declared: Vec<Declared<NetworkSpec>>,
}

impl Networks {
    pub fn read(ctx: &mut Ctx<'_>, node: Option<&Node>) -> Result<Networks, ComposeError> {
        let mut declared = Vec::new();
        if let Some(node) = node {
            for entry in ctx.entries(node, "networks")? {
                let field = format!("networks.{}", entry.key);
                let (name, spec, labels) = network(ctx, &entry.key, &entry.value, &field)?;
                declared.push(Declared {
                    key: entry.key.clone(),
                    name,
                    spec,
                    labels,
                    line: entry.key_pos.line,
                    used: false,
                });
            }
        }
        Ok(Networks { declared })
    }

    /// The berth name of network `key`, marking it used; `default` exists
    /// without being declared, as in compose.
    pub fn reference(&mut self, ctx: &Ctx<'_>, key: &str, pos: Pos) -> Option<String> {
        if key == DEFAULT && !self.declared.iter().any(|d| d.key == DEFAULT) {
            self.declared.push(Declared {
                key: DEFAULT.into(),
                name: names::scoped(&ctx.project, DEFAULT),
                spec: NetworkSpec::default(),
                labels: BTreeMap::new(),
                line: pos.line,
                used: false,
            });
        }
        let declared = self.declared.iter_mut().find(|d| d.key == key)?;
        declared.used = true;
        Some(declared.name.clone())
    }

    /// The Network objects of the networks services use (compose creates no others).
    pub fn objects(self, ctx: &Ctx<'_>) -> Vec<Converted> {
        self.declared
            .into_iter()
            .filter(|d| d.used)
            .map(|d| Converted {
                object: Object::Network(Manifest {
                    api_version: API_VERSION.into(),
                    kind: Kind::Network,
                    metadata: metadata(ctx, d.name, d.labels),
                    spec: d.spec,
                }),
                from: format!("networks.{}", d.key),
                line: d.line,
            })
            .collect()
    }
}

fn metadata(ctx: &Ctx<'_>, name: String, mut labels: BTreeMap<String, String>) -> Metadata {
    labels.insert(super::service::PROJECT_LABEL.into(), ctx.project.clone());
    Metadata {
        name,
        labels,
        hosts: None,
    }
}

/// One network's berth name, spec and labels.
fn network(
    ctx: &mut Ctx<'_>,
    key: &str,
    node: &Node,
    field: &str,
) -> Result<(String, NetworkSpec, BTreeMap<String, String>), ComposeError> {
    let mut spec = NetworkSpec::default();
    let mut labels = BTreeMap::new();
    let mut name = None;
    let mut is_external = false;
    for entry in ctx.entries(node, field)? {
        let at = format!("{field}.{}", entry.key);
        let value = &entry.value;
        match entry.key.as_str() {
            "name" => name = Some(ctx.string(value, &at)?),
            "driver" => spec.driver = network_driver(ctx, value, &at)?,
            "driver_opts" => driver_opts(ctx, value, &at, &mut spec)?,
            "ipam" => ipam(ctx, value, &at, &mut spec)?,
            "internal" => spec.internal = ctx.boolean(value, &at)?,
            "labels" => labels = label_map(ctx, value, &at)?,
            "attachable" => {}
            "external" => {
                is_external = external(ctx, value, &at, &mut name)?;
                if is_external {
                    ctx.warn(
                        entry.key_pos,
                        &at,
                        "berth joins only networks its manifests declare: this network is declared as a berth Network in the set, not looked up",
                    );
                }
            }
            "enable_ipv6" if ctx.boolean(value, &at)? && !spec.subnet.is_some_and(|s| s.address.is_ipv6()) => {
                ctx.warn(entry.key_pos, &at, "berth gives a network one subnet: give an IPv6 subnet under ipam.config to have IPv6")
            }
            "enable_ipv6" | "enable_ipv4" => {}
            other => ctx.warn(
                entry.key_pos,
                &at,
                format!("network option {other} has no berth equivalent; ignored"),
            ),
        }
    }
    // Without ipam config berth picks the subnet (10.89.X.0/24 from the
    // network's name) and the bridge itself, as compose lets docker pick.
    Ok((berth_name(ctx, key, name, is_external), spec, labels))
}

/// `external: true` (or the old `external: {name: x}`, whose name it keeps).
fn external(
    ctx: &Ctx<'_>,
    node: &Node,
    field: &str,
    name: &mut Option<String>,
) -> Result<bool, ComposeError> {
    match get(node, "name") {
        Some(named) => {
            *name = Some(ctx.string(named, field)?);
            Ok(true)
        }
        None => ctx.boolean(node, field),
    }
}

/// `name:` as written, the key itself for an external object (compose
/// looks those up without the project prefix), else `PROJECT-KEY`.
fn berth_name(ctx: &Ctx<'_>, key: &str, name: Option<String>, is_external: bool) -> String {
    match name {
        Some(name) => names::fit(names::sanitize(&name)),
        None if is_external => names::fit(names::sanitize(key)),
        None => names::scoped(&ctx.project, key),
    }
}

fn network_driver(
    ctx: &mut Ctx<'_>,
    node: &Node,
    field: &str,
) -> Result<NetworkDriver, ComposeError> {
    let driver = ctx.string(node, field)?;
    Ok(match driver.as_str() {
        "bridge" => NetworkDriver::Bridge,
        "macvlan" => NetworkDriver::Macvlan,
        "ipvlan" => NetworkDriver::Ipvlan,
        other => {
            ctx.warn(
                node.pos,
                field,
                format!("berth has no {other} networks; a bridge network is used"),
            );
            NetworkDriver::Bridge
        }
    })
}

fn driver_opts(
    ctx: &mut Ctx<'_>,
    node: &Node,
    field: &str,
    spec: &mut NetworkSpec,
) -> Result<(), ComposeError> {
    for entry in ctx.entries(node, field)? {
        let at = format!("{field}.{}", entry.key);
        let value = ctx.string(&entry.value, &at)?;
        match entry.key.as_str() {
            "com.docker.network.bridge.name" if value.len() <= 15 => spec.bridge = Some(value),
            "com.docker.network.bridge.name" => ctx.warn(
                entry.key_pos,
                &at,
                format!("{value:?} is longer than 15 characters, which Linux allows a bridge; berth picks the bridge name"),
            ),
            "com.docker.network.driver.mtu" => {
                spec.mtu = Some(ctx.integer(&entry.value, &at)?.clamp(0, u32::MAX as i64) as u32)
            }
            "com.docker.network.bridge.enable_ip_masquerade" => {
                spec.ip_masq = ctx.boolean(&entry.value, &at)?
            }
            "parent" => spec.parent = Some(value),
            other => ctx.warn(
                entry.key_pos,
                &at,
                format!("driver option {other} has no berth equivalent; ignored"),
            ),
        }
    }
    Ok(())
}

fn ipam(
    ctx: &mut Ctx<'_>,
    node: &Node,
    field: &str,
    spec: &mut NetworkSpec,
) -> Result<(), ComposeError> {
    for entry in ctx.entries(node, field)? {
        let at = format!("{field}.{}", entry.key);
        match entry.key.as_str() {
            "driver" if text(&entry.value).as_deref() == Some("default") => {}
            "config" => {
                let configs = match &entry.value.value {
                    crate::manifest::yaml::Value::Seq(items) => items.as_slice(),
                    _ => return Err(ctx.invalid(entry.value.pos, &at, "expected a list")),
                };
                for (i, config) in configs.iter().enumerate() {
                    let at = format!("{at}[{i}]");
                    if i > 0 {
                        ctx.warn(
                            config.pos,
                            &at,
                            "berth gives a network one subnet: only the first ipam config is used",
                        );
                        continue;
                    }
                    ipam_config(ctx, config, &at, spec)?;
                }
            }
            other => ctx.warn(
                entry.key_pos,
                &at,
                format!("ipam {other} has no berth equivalent; berth's host-local IPAM is used"),
            ),
        }
    }
    Ok(())
}

fn ipam_config(
    ctx: &mut Ctx<'_>,
    node: &Node,
    field: &str,
    spec: &mut NetworkSpec,
) -> Result<(), ComposeError> {
    for entry in ctx.entries(node, field)? {
        let at = format!("{field}.{}", entry.key);
        match entry.key.as_str() {
            "subnet" => spec.subnet = Some(cidr(ctx, &entry.value, &at)?),
            "ip_range" => spec.ip_range = Some(cidr(ctx, &entry.value, &at)?),
            "gateway" => {
                let value = ctx.string(&entry.value, &at)?;
                spec.gateway =
                    Some(value.parse::<IpAddr>().map_err(|e| {
                        ctx.invalid(entry.value.pos, &at, format!("{value:?}: {e}"))
                    })?);
            }
            other => ctx.warn(
                entry.key_pos,
                &at,
                format!("{other} has no berth equivalent; ignored"),
            ),
        }
    }
    Ok(())
}

fn cidr(ctx: &Ctx<'_>, node: &Node, field: &str) -> Result<Cidr, ComposeError> {
    let value = ctx.string(node, field)?;
    value
        .parse()
        .map_err(|e| ctx.invalid(node.pos, field, format!("{e}")))
}

/// Labels as a map (compose's list form `k=v` too).
pub fn label_map(
    ctx: &Ctx<'_>,
    node: &Node,
    field: &str,
) -> Result<BTreeMap<String, String>, ComposeError> {
    Ok(ctx
        .key_values(node, field)?
        .into_iter()
        .map(|(k, v, _)| (k, v.unwrap_or_default()))
        .collect())
}

/// The project's volumes: declared ones and the anonymous ones services use.
pub struct Volumes {
    declared: Vec<Declared<VolumeSpec>>,
}

impl Volumes {
    pub fn read(ctx: &mut Ctx<'_>, node: Option<&Node>) -> Result<Volumes, ComposeError> {
        let mut declared = Vec::new();
        if let Some(node) = node {
            for entry in ctx.entries(node, "volumes")? {
                let field = format!("volumes.{}", entry.key);
                let (name, spec) = volume(ctx, &entry.key, &entry.value, &field)?;
                declared.push(Declared {
                    key: entry.key.clone(),
                    name,
                    spec,
                    labels: BTreeMap::new(),
                    line: entry.key_pos.line,
                    used: true,
                });
            }
        }
        Ok(Volumes { declared })
    }

    /// The berth name of the declared volume `key`.
    pub fn reference(&self, key: &str) -> Option<String> {
        self.declared
            .iter()
            .find(|d| d.key == key)
            .map(|d| d.name.clone())
    }

    /// A Volume for an anonymous volume of `service` at `target`: compose
    /// keeps those across `up`, so a named berth Volume is the nearest.
    pub fn anonymous(&mut self, ctx: &Ctx<'_>, service: &str, target: &str, line: usize) -> String {
        let key = format!("{service}{}", target.replace('/', "-"));
        let name = names::scoped(&ctx.project, &key);
        if !self.declared.iter().any(|d| d.name == name) {
            self.declared.push(Declared {
                key: format!("(anonymous) {service}:{target}"),
                name: name.clone(),
                spec: VolumeSpec::default(),
                labels: BTreeMap::new(),
                line,
                used: true,
            });
        }
        name
    }

    pub fn objects(self, ctx: &Ctx<'_>) -> Vec<Converted> {
        self.declared
            .into_iter()
            .map(|d| Converted {
                object: Object::Volume(Manifest {
                    api_version: API_VERSION.into(),
                    kind: Kind::Volume,
                    metadata: metadata(ctx, d.name, d.labels),
                    spec: d.spec,
                }),
                from: format!("volumes.{}", d.key),
                line: d.line,
            })
            .collect()
    }
}

fn volume(
    ctx: &mut Ctx<'_>,
    key: &str,
    node: &Node,
    field: &str,
) -> Result<(String, VolumeSpec), ComposeError> {
    let mut spec = VolumeSpec::default();
    let mut name = None;
    let mut is_external = false;
    for entry in ctx.entries(node, field)? {
        let at = format!("{field}.{}", entry.key);
        let value = &entry.value;
        match entry.key.as_str() {
            "name" => name = Some(ctx.string(value, &at)?),
            "driver" if text(value).as_deref() == Some("local") => {}
            "driver" => ctx.warn(
                entry.key_pos,
                &at,
                "berth volumes are local directories under its root; the driver is ignored",
            ),
            "driver_opts" => ctx.warn(
                entry.key_pos,
                &at,
                "berth volumes are plain directories: driver options (nfs, bind devices, ...) are ignored; use a bind mount for a host path",
            ),
            "labels" => spec.labels = label_map(ctx, value, &at)?,
            "external" => {
                is_external = external(ctx, value, &at, &mut name)?;
                if is_external {
                    ctx.warn(
                        entry.key_pos,
                        &at,
                        "declared as a berth Volume in the set: berth adopts a volume `berth run -v` made, or creates it empty",
                    );
                }
            }
            other => ctx.warn(
                entry.key_pos,
                &at,
                format!("volume option {other} has no berth equivalent; ignored"),
            ),
        }
    }
    Ok((berth_name(ctx, key, name, is_external), spec))
}
