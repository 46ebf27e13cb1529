//! Conflicts: what two writers would both take on this host (an object's
//! name, a published host port, a subnet, a bridge), found before anything
//! changes. Apply and plan refuse a set with conflicts, naming both places;
//! `berth run` refuses a name or port someone else holds.
//!
//! Pure: claims in, conflicts out. [`declared`] reads a manifest set's
//! claims (each at its field's `file:line:col`); observe reads the claims
//! of what exists from berth's records; [`find`] compares them.

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

use crate::manifest::diagnostic::PathSegment;
use crate::manifest::net::Cidr;
use crate::manifest::{
    Kind, Located, ManifestSet, NetworkDriver, NetworkMode, NetworkSpec, Object, PortMapping,
    Protocol,
};
use crate::network::conflist::{bridge_name, subnet, NetworkDef};

/// Who holds a claim: the one writer of its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// A manifest set, by its source id.
    Set(String),
    /// `berth run`.
    Run,
    /// No writer: berth's built-in `default` network (which a set may
    /// replace by declaring a Network named `default`).
    BuiltIn,
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Owner::Set(source) => write!(f, "manifest set {source}"),
            Owner::Run => f.write_str("berth run"),
            Owner::BuiltIn => f.write_str("built into berth"),
        }
    }
}

/// Whether two owners are the same writer: one manifest set. Two `berth
/// run` containers are two writers (a run never re-declares anything).
fn same_writer(a: &Owner, b: &Owner) -> bool {
    matches!((a, b), (Owner::Set(x), Owner::Set(y)) if x == y)
}

/// What only one writer may hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// The object's name among objects of its kind.
    Name,
    /// A published port; `ip` None (or unspecified) means every address.
    HostPort {
        ip: Option<IpAddr>,
        port: u16,
        protocol: Protocol,
    },
    /// A network's address range.
    Subnet(Cidr),
    /// A bridge network's Linux bridge.
    Bridge(String),
}

/// One object's hold on one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub resource: Resource,
    /// The object that holds it.
    pub kind: Kind,
    pub name: String,
    pub owner: Owner,
    /// Where it is asked for: `file:line[:col]`, or a command line
    /// (`berth run -p 8080:80`); None when nobody knows.
    pub place: Option<String>,
}

/// Two writers wanting one thing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conflict {
    /// Where the refused claim is asked for.
    pub place: String,
    /// What clashes, with whom, and the way out.
    pub message: String,
    /// Who holds the other claim (`manifest set S`, `berth run`).
    pub owner: String,
    /// Where the other claim is declared, when known.
    #[serde(rename = "ownerPlace", skip_serializing_if = "Option::is_none")]
    pub owner_place: Option<String>,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.place, self.message)
    }
}

/// Every conflict of `wanted` (what one writer asks for) among itself and
/// with `existing` (what the host holds), each pair once, in `wanted`'s
/// order. What the same manifest set holds already is its own to change.
pub fn find(wanted: &[Claim], existing: &[Claim]) -> Vec<Conflict> {
    let mut found = Vec::new();
    for (i, claim) in wanted.iter().enumerate() {
        for earlier in &wanted[..i] {
            let same_object = earlier.kind == claim.kind && earlier.name == claim.name;
            // Two objects of one set with one name are validation's to report.
            if !same_object && claim.resource != Resource::Name {
                found.extend(clash(claim, earlier));
            }
        }
        for held in existing {
            if !same_writer(&claim.owner, &held.owner) {
                found.extend(clash(claim, held));
            }
        }
    }
    found
}

/// The conflict between `claim` and another writer's (or another object's)
/// `held`, if they clash.
fn clash(claim: &Claim, held: &Claim) -> Option<Conflict> {
    let message = match (&claim.resource, &held.resource) {
        (Resource::Name, Resource::Name) => {
            let taken =
                claim.kind == held.kind && claim.name == held.name && held.owner != Owner::BuiltIn;
            taken.then(|| name_taken(claim, held))?
        }
        (
            Resource::HostPort { ip, port, protocol },
            Resource::HostPort {
                ip: held_ip,
                port: held_port,
                protocol: held_protocol,
            },
        ) => {
            let overlap =
                port == held_port && protocol == held_protocol && addresses_overlap(*ip, *held_ip);
            overlap.then(|| port_taken(claim, held, *ip, *port, *protocol))?
        }
        // Between networks of one name the name says it all.
        (Resource::Subnet(a), Resource::Subnet(b)) if claim.name != held.name => {
            let or_replace = if held.owner == Owner::BuiltIn {
                ", or declare a Network named default to replace the built-in one"
            } else {
                ""
            };
            a.overlaps(*b).then(|| {
                format!(
                    "subnet {a} of network {} overlaps subnet {b} of network {} ({}); give it a range of its own{or_replace}",
                    claim.name,
                    held.name,
                    whose(claim, held),
                )
            })?
        }
        (Resource::Bridge(a), Resource::Bridge(b)) if claim.name != held.name && a == b => {
            format!(
                "bridge {a} of network {} is also the bridge of network {} ({}); name another bridge",
                claim.name,
                held.name,
                whose(claim, held),
            )
        }
        _ => return None,
    };
    Some(Conflict {
        place: claim.place.clone().unwrap_or_else(|| claim.name.clone()),
        message,
        owner: held.owner.to_string(),
        owner_place: held.place.clone(),
    })
}

/// Whether two host addresses of one port and protocol collide: the
/// wildcard (no address, 0.0.0.0, ::) collides with every address.
fn addresses_overlap(a: Option<IpAddr>, b: Option<IpAddr>) -> bool {
    let wildcard = |ip: Option<IpAddr>| ip.is_none_or(|ip| ip.is_unspecified());
    wildcard(a) || wildcard(b) || a == b
}

/// `manifest set S, declared at F:L`, or `this manifest set, at F:L`.
fn whose(claim: &Claim, held: &Claim) -> String {
    let owner = if same_writer(&claim.owner, &held.owner) {
        "this manifest set".to_string()
    } else {
        held.owner.to_string()
    };
    match &held.place {
        Some(place) => format!("{owner}, declared at {place}"),
        None => owner,
    }
}

fn name_taken(claim: &Claim, held: &Claim) -> String {
    let kind = claim.kind.as_str().to_lowercase();
    let way_out = match &held.owner {
        Owner::Set(source) => format!(
            "use another name, or remove it from manifest set {source} and apply that set with --prune (or berth delete it)"
        ),
        _ => format!("use another name, or remove that one (berth rm -f {})", held.name),
    };
    format!(
        "{kind} {} already exists and belongs to {}; berth will not take it over: {way_out}",
        claim.name,
        whose(claim, held),
    )
}

fn port_taken(
    claim: &Claim,
    held: &Claim,
    ip: Option<IpAddr>,
    port: u16,
    protocol: Protocol,
) -> String {
    let protocol = match protocol {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
    };
    let on = ip
        .filter(|ip| !ip.is_unspecified())
        .map_or("every address".to_string(), |ip| ip.to_string());
    let holder = format!("{} {}", held.kind.as_str().to_lowercase(), held.name);
    let way_out = match &held.owner {
        Owner::Run => format!(
            "publish another host port, or remove {holder} (berth rm -f {})",
            held.name
        ),
        _ => "publish another host port (or hostIP)".to_string(),
    };
    format!(
        "host port {port}/{protocol} on {on} is already published by {holder} of {}; {way_out}",
        whose(claim, held),
    )
}

fn key(name: &str) -> PathSegment {
    PathSegment::Key(name.to_string())
}

/// The claims a manifest set makes, each at its field's `file:line:col`.
pub fn declared(set: &ManifestSet, source: &str) -> Vec<Claim> {
    let owner = Owner::Set(source.to_string());
    let mut claims = Vec::new();
    for located in &set.objects {
        let object = &located.object;
        let claim = |resource, path: &[PathSegment]| Claim {
            resource,
            kind: object.kind(),
            name: object.name().to_string(),
            owner: owner.clone(),
            place: Some(located.place(path)),
        };
        let name_path = [key("metadata"), key("name")];
        claims.push(claim(Resource::Name, &name_path));
        match object {
            Object::Container(m) => {
                let base = [key("spec")];
                claims.extend(port_claims(
                    located,
                    &base,
                    m.spec.network_mode,
                    &m.spec.ports,
                    &owner,
                ));
            }
            Object::Job(m) => {
                let base = [key("spec"), key("template")];
                let template = &m.spec.template;
                claims.extend(port_claims(
                    located,
                    &base,
                    template.network_mode,
                    &template.ports,
                    &owner,
                ));
            }
            Object::Network(m) => {
                let field = |name: &str, set: bool| {
                    if set {
                        located.place(&[key("spec"), key(name)])
                    } else {
                        // Chosen by berth: point at the network itself.
                        located.place(&name_path)
                    }
                };
                let spec = &m.spec;
                let places = NetworkPlaces {
                    subnet: Some(field("subnet", spec.subnet.is_some())),
                    bridge: Some(field("bridge", spec.bridge.is_some())),
                };
                claims.extend(network_claims(object.name(), spec, &owner, places));
            }
            Object::Volume(_) => {}
        }
    }
    claims
}

/// The host ports a bridge-mode workload publishes (other modes publish none).
fn port_claims(
    located: &Located,
    base: &[PathSegment],
    mode: NetworkMode,
    ports: &[PortMapping],
    owner: &Owner,
) -> Vec<Claim> {
    if mode != NetworkMode::Bridge {
        return Vec::new();
    }
    ports
        .iter()
        .enumerate()
        .map(|(i, port)| {
            let mut path = base.to_vec();
            path.extend([key("ports"), PathSegment::Index(i)]);
            Claim {
                resource: host_port(port),
                kind: located.object.kind(),
                name: located.object.name().to_string(),
                owner: owner.clone(),
                place: Some(located.place(&path)),
            }
        })
        .collect()
}

/// The host port a mapping publishes.
pub fn host_port(port: &PortMapping) -> Resource {
    Resource::HostPort {
        ip: port.host_ip,
        port: port.effective_host_port(),
        protocol: port.protocol,
    }
}

/// The host ports of a container that exists: those of its spec, when it
/// is in bridge mode.
pub fn container_claims(
    name: &str,
    mode: NetworkMode,
    ports: &[PortMapping],
    owner: &Owner,
    place: Option<String>,
) -> Vec<Claim> {
    let claim = |resource| Claim {
        resource,
        kind: Kind::Container,
        name: name.to_string(),
        owner: owner.clone(),
        place: place.clone(),
    };
    let mut claims = vec![claim(Resource::Name)];
    if mode == NetworkMode::Bridge {
        claims.extend(ports.iter().map(|p| claim(host_port(p))));
    }
    claims
}

/// Where a network's subnet and bridge are declared.
#[derive(Debug, Clone, Default)]
pub struct NetworkPlaces {
    pub subnet: Option<String>,
    pub bridge: Option<String>,
}

/// The subnet and (bridge driver) the bridge a network takes, as berth
/// will configure them: declared, or chosen from its name. An expert
/// plugin list configures its own, which berth cannot know.
pub fn network_claims(
    name: &str,
    spec: &NetworkSpec,
    owner: &Owner,
    places: NetworkPlaces,
) -> Vec<Claim> {
    if spec.plugins.is_some() {
        return Vec::new();
    }
    let def = NetworkDef {
        name: name.to_string(),
        spec: spec.clone(),
    };
    let claim = |resource, place| Claim {
        resource,
        kind: Kind::Network,
        name: name.to_string(),
        owner: owner.clone(),
        place,
    };
    let mut claims = vec![claim(Resource::Subnet(subnet(&def)), places.subnet)];
    if spec.driver == NetworkDriver::Bridge {
        claims.push(claim(Resource::Bridge(bridge_name(&def)), places.bridge));
    }
    claims
}

/// A claim on an object's name, for what exists (networks, volumes).
pub fn name_claim(kind: Kind, name: &str, owner: &Owner, place: Option<String>) -> Claim {
    Claim {
        resource: Resource::Name,
        kind,
        name: name.to_string(),
        owner: owner.clone(),
        place,
    }
}

/// `file:line`, `file`, or nothing, as a record keeps it.
pub fn record_place(file: Option<&str>, line: Option<usize>) -> Option<String> {
    match (file, line) {
        (Some(file), Some(line)) => Some(format!("{file}:{line}")),
        (Some(file), None) => Some(file.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{load, LoadOptions};

    fn set_owner(source: &str) -> Owner {
        Owner::Set(source.into())
    }

    fn port(name: &str, owner: Owner, ip: Option<&str>, number: u16, place: &str) -> Claim {
        Claim {
            resource: Resource::HostPort {
                ip: ip.map(|ip| ip.parse().unwrap()),
                port: number,
                protocol: Protocol::Tcp,
            },
            kind: Kind::Container,
            name: name.into(),
            owner,
            place: Some(place.into()),
        }
    }

    fn network(name: &str, owner: Owner, subnet: &str, bridge: &str, place: &str) -> Vec<Claim> {
        let spec = NetworkSpec {
            subnet: Some(subnet.parse().unwrap()),
            bridge: Some(bridge.into()),
            ..NetworkSpec::default()
        };
        let places = NetworkPlaces {
            subnet: Some(format!("{place}:subnet")),
            bridge: Some(format!("{place}:bridge")),
        };
        network_claims(name, &spec, &owner, places)
    }

    #[test]
    fn a_host_port_another_set_publishes_is_named_with_both_places() {
        let wanted = [port("b", set_owner("/b"), None, 8080, "b.yaml:9:9")];
        let existing = [port("a", set_owner("/a"), None, 8080, "a.yaml:4")];
        let found = find(&wanted, &existing);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].place, "b.yaml:9:9");
        assert_eq!(found[0].owner_place.as_deref(), Some("a.yaml:4"));
        let text = found[0].to_string();
        assert!(
            text.contains("host port 8080/tcp on every address is already published by container a of manifest set /a, declared at a.yaml:4"),
            "{text}"
        );
    }

    #[test]
    fn the_wildcard_address_clashes_with_a_specific_one_and_two_specific_ones_do_not() {
        let specific = port("a", Owner::Run, Some("127.0.0.1"), 80, "-p");
        let other = port("b", set_owner("/b"), Some("192.0.2.1"), 80, "b.yaml:1");
        let wildcard = port("c", set_owner("/c"), Some("0.0.0.0"), 80, "c.yaml:1");
        let same = port("d", set_owner("/d"), Some("127.0.0.1"), 80, "d.yaml:1");
        assert!(find(
            std::slice::from_ref(&other),
            std::slice::from_ref(&specific)
        )
        .is_empty());
        assert_eq!(find(&[wildcard], std::slice::from_ref(&specific)).len(), 1);
        assert_eq!(find(&[same], std::slice::from_ref(&specific)).len(), 1);
        let mut udp = other;
        udp.resource = Resource::HostPort {
            ip: None,
            port: 80,
            protocol: Protocol::Udp,
        };
        assert!(find(&[udp], &[specific]).is_empty(), "udp is not tcp");
    }

    #[test]
    fn what_the_same_set_holds_is_its_own_but_two_runs_are_two_writers() {
        let mine = port("a", set_owner("/a"), None, 80, "a.yaml:9");
        assert!(find(std::slice::from_ref(&mine), std::slice::from_ref(&mine)).is_empty());
        let run = port("r1", Owner::Run, None, 80, "berth run -p 80:80");
        let other_run = port("r2", Owner::Run, None, 80, "berth run -p 80:80");
        let found = find(&[run], &[other_run]);
        assert_eq!(found.len(), 1);
        assert!(found[0].message.contains("berth rm -f r2"), "{found:?}");
    }

    #[test]
    fn two_objects_of_one_set_on_one_port_clash_once() {
        let wanted = [
            port("a", set_owner("/s"), None, 80, "a.yaml:9"),
            port("b", set_owner("/s"), None, 80, "b.yaml:9"),
        ];
        let found = find(&wanted, &[]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].place, "b.yaml:9");
        assert!(
            found[0]
                .message
                .contains("of this manifest set, declared at a.yaml:9"),
            "{found:?}"
        );
    }

    #[test]
    fn a_name_another_writer_holds_is_refused_naming_the_owner() {
        let wanted = [name_claim(
            Kind::Network,
            "front",
            &set_owner("/b"),
            Some("b/net.yaml:4:9".into()),
        )];
        let existing = [name_claim(
            Kind::Network,
            "front",
            &set_owner("/a"),
            Some("a/net.yaml:4".into()),
        )];
        let found = find(&wanted, &existing);
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].to_string(),
            "b/net.yaml:4:9: network front already exists and belongs to manifest set /a, declared at a/net.yaml:4; berth will not take it over: use another name, or remove it from manifest set /a and apply that set with --prune (or berth delete it)"
        );
        let run = [name_claim(Kind::Container, "web", &Owner::Run, None)];
        let found = find(
            &[name_claim(
                Kind::Container,
                "web",
                &set_owner("/b"),
                Some("w.yaml:4:9".into()),
            )],
            &run,
        );
        assert!(
            found[0].message.contains("belongs to berth run"),
            "{found:?}"
        );
        assert!(found[0].message.contains("berth rm -f web"), "{found:?}");
    }

    #[test]
    fn a_name_of_another_kind_or_the_built_in_default_is_free() {
        let wanted = [name_claim(Kind::Volume, "data", &set_owner("/b"), None)];
        let existing = [name_claim(Kind::Container, "data", &Owner::Run, None)];
        assert!(find(&wanted, &existing).is_empty());
        let default = [name_claim(Kind::Network, "default", &Owner::BuiltIn, None)];
        let mine = [name_claim(Kind::Network, "default", &set_owner("/b"), None)];
        assert!(find(&mine, &default).is_empty());
    }

    #[test]
    fn overlapping_subnets_and_a_shared_bridge_are_conflicts() {
        let existing = network("na", set_owner("/a"), "10.1.0.0/16", "br-a", "a.yaml:3");
        let wanted = network("nb", set_owner("/b"), "10.1.2.0/24", "br-a", "b.yaml:3");
        let found = find(&wanted, &existing);
        let messages: Vec<&str> = found.iter().map(|c| c.message.as_str()).collect();
        assert_eq!(found.len(), 2, "{messages:?}");
        assert_eq!(found[0].place, "b.yaml:3:subnet");
        assert!(messages[0].contains("subnet 10.1.2.0/24 of network nb overlaps subnet 10.1.0.0/16 of network na (manifest set /a, declared at a.yaml:3:subnet)"), "{messages:?}");
        assert!(
            messages[1].contains("bridge br-a of network nb is also the bridge of network na"),
            "{messages:?}"
        );
        let apart = network("nc", set_owner("/b"), "10.2.0.0/24", "br-c", "c.yaml:3");
        assert!(find(&apart, &existing).is_empty());
    }

    #[test]
    fn a_network_of_the_same_name_clashes_by_name_only() {
        let mut existing = network("front", set_owner("/a"), "10.1.0.0/24", "br0", "a.yaml:3");
        existing.push(name_claim(Kind::Network, "front", &set_owner("/a"), None));
        let mut wanted = network("front", set_owner("/b"), "10.1.0.0/24", "br0", "b.yaml:3");
        wanted.push(name_claim(Kind::Network, "front", &set_owner("/b"), None));
        let found = find(&wanted, &existing);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].message.starts_with("network front already exists"));
    }

    #[test]
    fn a_subnet_inside_the_built_in_default_is_a_conflict_unless_the_set_replaces_default() {
        let builtin = NetworkSpec {
            subnet: Some("10.88.0.0/16".parse().unwrap()),
            bridge: Some("berth0".into()),
            ..NetworkSpec::default()
        };
        let default = network_claims(
            "default",
            &builtin,
            &Owner::BuiltIn,
            NetworkPlaces::default(),
        );
        let wanted = network(
            "inner",
            set_owner("/b"),
            "10.88.7.0/24",
            "br-in",
            "b.yaml:3",
        );
        let found = find(&wanted, &default);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].message.contains(
                "of network default (built into berth); give it a range of its own, or declare a Network named default"
            ),
            "{found:?}"
        );
        let replacement = network(
            "default",
            set_owner("/b"),
            "10.88.0.0/24",
            "berth0",
            "b.yaml:3",
        );
        assert!(find(&replacement, &default).is_empty());
    }

    #[test]
    fn an_expert_plugin_list_claims_no_subnet_or_bridge() {
        let spec = NetworkSpec {
            plugins: Some(vec![serde_json::Map::new()]),
            ..NetworkSpec::default()
        };
        assert!(network_claims("x", &spec, &Owner::Run, NetworkPlaces::default()).is_empty());
    }

    #[test]
    fn a_set_declares_its_names_ports_subnets_and_bridges_at_their_lines() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("web.yaml"),
            "apiVersion: berth/v1\nkind: Container\nmetadata:\n  name: web\nspec:\n  image: busybox\n  ports:\n    - {containerPort: 80, hostPort: 8080}\n---\napiVersion: berth/v1\nkind: Network\nmetadata:\n  name: front\nspec:\n  subnet: 10.231.0.0/24\n---\napiVersion: berth/v1\nkind: Container\nmetadata:\n  name: quiet\nspec:\n  image: busybox\n  networkMode: none\n",
        )
        .unwrap();
        let set = load(&[dir.path().display().to_string()], LoadOptions::default()).unwrap();
        let claims = declared(&set, "/s");
        let at = |resource: &Resource| {
            claims
                .iter()
                .find(|c| &c.resource == resource)
                .and_then(|c| c.place.clone())
                .unwrap_or_else(|| panic!("no claim on {resource:?}: {claims:?}"))
        };
        let file = dir.path().join("web.yaml").display().to_string();
        let web_port = Resource::HostPort {
            ip: None,
            port: 8080,
            protocol: Protocol::Tcp,
        };
        assert_eq!(at(&web_port), format!("{file}:8:7"));
        assert_eq!(
            at(&Resource::Subnet("10.231.0.0/24".parse().unwrap())),
            format!("{file}:15:11")
        );
        // A bridge berth names itself is declared where the network is.
        assert!(at(&Resource::Bridge(bridge_name(&NetworkDef {
            name: "front".into(),
            spec: NetworkSpec::default(),
        })))
        .starts_with(&format!("{file}:13:")));
        let ports = claims
            .iter()
            .filter(|c| matches!(c.resource, Resource::HostPort { .. }))
            .count();
        assert_eq!(ports, 1, "networkMode none publishes nothing");
        let names = claims
            .iter()
            .filter(|c| c.resource == Resource::Name)
            .count();
        assert_eq!(names, 3);
    }
}
