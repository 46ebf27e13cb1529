//! Network spec -> CNI network configuration list (pure).
//!
//! Drivers:
//!
//! - `bridge`: the `bridge` plugin (hairpin on, `isGateway` unless internal,
//!   never `ipMasq`), then `portmap` for a container that publishes ports.
//!   Masquerading and forwarding are the network's own rules
//!   ([`super::rules`]), described in the list under
//!   [`super::rules::LIST_KEY`].
//! - `macvlan` / `ipvlan`: the plugin on `parent`, then `portmap` for a
//!   container that publishes ports.
//! - `plugins` (expert): the given plugin list, as is.
//!
//! Every generated list uses `host-local` IPAM with its `dataDir` under
//! berth's root, so reservations live next to the result cache that DEL needs
//! (and tests with their own root are isolated).
//!
//! `internal: true` means containers reach only each other: the bridge gets no
//! address (`isGateway: false`), IPAM installs no routes (so no default
//! route), and nothing is masqueraded. The host itself has no address on an
//! internal bridge, so ports published on an internal network are not
//! reachable either.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::rules::{NetworkRules, LIST_KEY};
use super::{CNI_VERSION, DEFAULT_BRIDGE, DEFAULT_NETWORK, DEFAULT_SUBNET};
use crate::manifest::net::Cidr;
use crate::manifest::types::{NetworkDriver, NetworkSpec};

/// A network by name with its spec.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkDef {
    pub name: String,
    pub spec: NetworkSpec,
}

impl NetworkDef {
    /// The built-in `default` network: bridge `berth0` on 10.88.0.0/16.
    pub fn builtin_default() -> NetworkDef {
        NetworkDef {
            name: DEFAULT_NETWORK.to_string(),
            spec: NetworkSpec {
                subnet: Some(DEFAULT_SUBNET.parse().expect("valid default subnet")),
                bridge: Some(DEFAULT_BRIDGE.to_string()),
                ..NetworkSpec::default()
            },
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConflistError {
    #[error("network {network}: the {driver} driver needs a parent interface")]
    NoParent {
        network: String,
        driver: &'static str,
    },
    #[error("network {network}: an expert plugin list is empty")]
    EmptyPlugins { network: String },
    #[error("network {network}: expert plugin {index} has no string \"type\"")]
    PluginType { network: String, index: usize },
    #[error("network {network}: {name:?} is not a valid network name")]
    BadName { network: String, name: String },
}

/// The bridge interface a bridge network uses: `spec.bridge`, `berth0` for
/// the default network, else `berth-` and 8 hex digits of the name's sha256
/// (14 characters; Linux allows 15).
pub fn bridge_name(def: &NetworkDef) -> String {
    if let Some(bridge) = &def.spec.bridge {
        return bridge.clone();
    }
    if def.name == DEFAULT_NETWORK {
        return DEFAULT_BRIDGE.to_string();
    }
    format!("berth-{}", &hash_hex(&def.name)[..8])
}

/// The subnet a network uses: `spec.subnet`, 10.88.0.0/16 for the default
/// network, else `10.89.X.0/24` with X from the name's hash. Collisions
/// between auto subnets are possible (256 choices); declare a subnet when
/// that matters.
pub fn subnet(def: &NetworkDef) -> Cidr {
    if let Some(subnet) = def.spec.subnet {
        return subnet;
    }
    if def.name == DEFAULT_NETWORK {
        return DEFAULT_SUBNET.parse().expect("valid default subnet");
    }
    let byte = u8::from_str_radix(&hash_hex(&def.name)[..2], 16).unwrap_or(0);
    Cidr {
        address: IpAddr::V4(Ipv4Addr::new(10, 89, byte, 0)),
        prefix: 24,
    }
}

fn hash_hex(s: &str) -> String {
    crate::state::hex::encode(&Sha256::digest(s.as_bytes()))
}

/// Builds the CNI network configuration list for `def`, with host-local
/// reservations under `ipam_data_dir`; with the portmap plugin when the
/// container `publishes` ports on this network.
pub fn conflist(
    def: &NetworkDef,
    ipam_data_dir: &Path,
    publishes: bool,
) -> Result<Value, ConflistError> {
    if !super::is_valid_id(&def.name) {
        return Err(ConflistError::BadName {
            network: def.name.clone(),
            name: def.name.clone(),
        });
    }
    let spec = &def.spec;
    let plugins: Vec<Value> = if let Some(expert) = &spec.plugins {
        if expert.is_empty() {
            return Err(ConflistError::EmptyPlugins {
                network: def.name.clone(),
            });
        }
        for (index, plugin) in expert.iter().enumerate() {
            if !matches!(plugin.get("type"), Some(Value::String(_))) {
                return Err(ConflistError::PluginType {
                    network: def.name.clone(),
                    index,
                });
            }
        }
        expert.iter().cloned().map(Value::Object).collect()
    } else {
        let ipam = host_local_ipam(def, ipam_data_dir);
        let mut main = Map::new();
        match spec.driver {
            NetworkDriver::Bridge => {
                main.insert("type".into(), json!("bridge"));
                main.insert("bridge".into(), json!(bridge_name(def)));
                main.insert("isGateway".into(), json!(!spec.internal));
                main.insert("ipMasq".into(), json!(false));
                main.insert("hairpinMode".into(), json!(true));
            }
            NetworkDriver::Macvlan | NetworkDriver::Ipvlan => {
                let (kind, mode) = if spec.driver == NetworkDriver::Macvlan {
                    ("macvlan", "bridge")
                } else {
                    ("ipvlan", "l2")
                };
                let parent = spec.parent.clone().ok_or(ConflistError::NoParent {
                    network: def.name.clone(),
                    driver: kind,
                })?;
                main.insert("type".into(), json!(kind));
                main.insert("master".into(), json!(parent));
                main.insert("mode".into(), json!(mode));
            }
        }
        if let Some(mtu) = spec.mtu {
            main.insert("mtu".into(), json!(mtu));
        }
        main.insert("ipam".into(), ipam);
        let mut plugins = vec![Value::Object(main)];
        if publishes {
            plugins.push(json!({
                "type": "portmap",
                "capabilities": {"portMappings": true},
                "snat": true
            }));
        }
        plugins
    };
    let mut list = json!({
        "cniVersion": CNI_VERSION,
        "name": def.name,
        "plugins": plugins,
    });
    if let Some(rules) = NetworkRules::of(def) {
        list[LIST_KEY] = json!(rules);
    }
    Ok(list)
}

fn host_local_ipam(def: &NetworkDef, data_dir: &Path) -> Value {
    let spec = &def.spec;
    let subnet = subnet(def);
    let mut range = Map::new();
    range.insert("subnet".into(), json!(subnet.to_string()));
    if let Some(gateway) = spec.gateway {
        range.insert("gateway".into(), json!(gateway.to_string()));
    }
    if let Some(ip_range) = spec.ip_range {
        let (first, last) = usable_bounds(subnet, ip_range);
        range.insert("rangeStart".into(), json!(first.to_string()));
        range.insert("rangeEnd".into(), json!(last.to_string()));
    }
    let routes = if spec.internal {
        json!([])
    } else if subnet.address.is_ipv4() {
        json!([{"dst": "0.0.0.0/0"}])
    } else {
        json!([{"dst": "::/0"}])
    };
    json!({
        "type": "host-local",
        "ranges": [[Value::Object(range)]],
        "routes": routes,
        "dataDir": data_dir.to_string_lossy(),
    })
}

fn bits(ip: IpAddr) -> (u128, u32) {
    match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    }
}

fn from_bits(value: u128, v4: bool) -> IpAddr {
    if v4 {
        IpAddr::V4(Ipv4Addr::from(value as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(value))
    }
}

/// The first and last address of `cidr`.
fn bounds(cidr: Cidr) -> (u128, u128) {
    let (value, width) = bits(cidr.address);
    let host_bits = width - u32::from(cidr.prefix);
    let host_mask = if host_bits >= 128 {
        u128::MAX
    } else {
        (1u128 << host_bits) - 1
    };
    (value & !host_mask, (value & !host_mask) | host_mask)
}

/// The first and last assignable address of `range` inside `subnet`: the
/// subnet's network address and (IPv4) broadcast address are skipped.
fn usable_bounds(subnet: Cidr, range: Cidr) -> (IpAddr, IpAddr) {
    let v4 = subnet.address.is_ipv4();
    let (net_first, net_last) = bounds(subnet);
    let (mut first, mut last) = bounds(range);
    if first == net_first && last > first {
        first += 1;
    }
    if v4 && last == net_last && last > first {
        last -= 1;
    }
    (from_bits(first, v4), from_bits(last, v4))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(name: &str, spec: NetworkSpec) -> NetworkDef {
        NetworkDef {
            name: name.into(),
            spec,
        }
    }

    fn cidr(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    fn plugin_types(list: &Value) -> Vec<&str> {
        list["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["type"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn default_network_is_berth0_on_10_88() {
        let list = conflist(&NetworkDef::builtin_default(), Path::new("/r/ipam"), true).unwrap();
        assert_eq!(list["cniVersion"], "1.0.0");
        assert_eq!(list["name"], "default");
        let bridge = &list["plugins"][0];
        assert_eq!(bridge["type"], "bridge");
        assert_eq!(bridge["bridge"], "berth0");
        assert_eq!(bridge["isGateway"], true);
        // The network's own rules masquerade, not one chain per container.
        assert_eq!(bridge["ipMasq"], false);
        assert_eq!(list[LIST_KEY]["masquerade"], true);
        assert_eq!(list[LIST_KEY]["bridge"], "berth0");
        assert_eq!(list[LIST_KEY]["subnet"], "10.88.0.0/16");
        assert_eq!(bridge["hairpinMode"], true);
        assert_eq!(bridge["ipam"]["type"], "host-local");
        assert_eq!(bridge["ipam"]["ranges"][0][0]["subnet"], "10.88.0.0/16");
        assert_eq!(bridge["ipam"]["routes"][0]["dst"], "0.0.0.0/0");
        assert_eq!(bridge["ipam"]["dataDir"], "/r/ipam");
        assert_eq!(list["plugins"][1]["type"], "portmap");
        assert_eq!(list["plugins"][1]["capabilities"]["portMappings"], true);
        assert_eq!(list["plugins"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn a_container_without_ports_runs_no_iptables_plugin() {
        let list = conflist(&NetworkDef::builtin_default(), Path::new("/r"), false).unwrap();
        assert_eq!(plugin_types(&list), ["bridge"]);
        assert_eq!(list["plugins"][0]["ipMasq"], false);
    }

    #[test]
    fn bridge_name_is_hashed_and_fits_ifnamsiz() {
        let name = bridge_name(&def("a-very-long-network-name", NetworkSpec::default()));
        assert!(name.starts_with("berth-"));
        assert_eq!(name.len(), 14);
        assert_eq!(
            name,
            bridge_name(&def("a-very-long-network-name", NetworkSpec::default()))
        );
        assert_ne!(name, bridge_name(&def("other", NetworkSpec::default())));
        let explicit = NetworkSpec {
            bridge: Some("br-x".into()),
            ..NetworkSpec::default()
        };
        assert_eq!(bridge_name(&def("n", explicit)), "br-x");
    }

    #[test]
    fn gateway_range_and_mtu_reach_the_config() {
        let spec = NetworkSpec {
            subnet: Some(cidr("10.231.0.0/24")),
            gateway: Some("10.231.0.254".parse().unwrap()),
            ip_range: Some(cidr("10.231.0.0/25")),
            mtu: Some(1400),
            ip_masq: false,
            ..NetworkSpec::default()
        };
        let list = conflist(&def("n", spec), Path::new("/d"), true).unwrap();
        let bridge = &list["plugins"][0];
        let range = &bridge["ipam"]["ranges"][0][0];
        assert_eq!(range["subnet"], "10.231.0.0/24");
        assert_eq!(range["gateway"], "10.231.0.254");
        assert_eq!(range["rangeStart"], "10.231.0.1");
        assert_eq!(range["rangeEnd"], "10.231.0.127");
        assert_eq!(bridge["mtu"], 1400);
        assert_eq!(list[LIST_KEY]["masquerade"], false);
        assert_eq!(bridge["isGateway"], true);
    }

    #[test]
    fn ip_range_at_the_top_skips_broadcast() {
        let (first, last) = usable_bounds(cidr("10.0.0.0/24"), cidr("10.0.0.128/25"));
        assert_eq!(first.to_string(), "10.0.0.128");
        assert_eq!(last.to_string(), "10.0.0.254");
    }

    #[test]
    fn internal_network_has_no_gateway_routes_or_masquerade() {
        let spec = NetworkSpec {
            subnet: Some(cidr("10.231.1.0/24")),
            internal: true,
            ip_masq: true,
            ..NetworkSpec::default()
        };
        let list = conflist(&def("int", spec), Path::new("/d"), true).unwrap();
        let bridge = &list["plugins"][0];
        assert_eq!(bridge["isGateway"], false);
        assert_eq!(bridge["ipMasq"], false);
        assert_eq!(list[LIST_KEY]["masquerade"], false);
        assert_eq!(list[LIST_KEY]["internal"], true);
        assert_eq!(bridge["ipam"]["routes"], json!([]));
    }

    #[test]
    fn ipv6_subnet_gets_a_v6_default_route() {
        let spec = NetworkSpec {
            subnet: Some(cidr("fd00:1::/64")),
            ..NetworkSpec::default()
        };
        let list = conflist(&def("v6", spec), Path::new("/d"), true).unwrap();
        assert_eq!(list["plugins"][0]["ipam"]["routes"][0]["dst"], "::/0");
    }

    #[test]
    fn macvlan_and_ipvlan_attach_to_parent_without_firewall() {
        for (driver, kind, mode) in [
            (NetworkDriver::Macvlan, "macvlan", "bridge"),
            (NetworkDriver::Ipvlan, "ipvlan", "l2"),
        ] {
            let spec = NetworkSpec {
                driver,
                parent: Some("eth9".into()),
                subnet: Some(cidr("192.168.50.0/24")),
                ..NetworkSpec::default()
            };
            let list = conflist(&def("lan", spec), Path::new("/d"), true).unwrap();
            let main = &list["plugins"][0];
            assert_eq!(main["type"], kind);
            assert_eq!(main["master"], "eth9");
            assert_eq!(main["mode"], mode);
            assert_eq!(main["ipam"]["type"], "host-local");
            assert!(main.get("bridge").is_none());
            assert_eq!(plugin_types(&list), [kind, "portmap"]);
        }
        let no_parent = NetworkSpec {
            driver: NetworkDriver::Macvlan,
            ..NetworkSpec::default()
        };
        assert!(matches!(
            conflist(&def("lan", no_parent), Path::new("/d"), true),
            Err(ConflistError::NoParent { .. })
        ));
    }

    #[test]
    fn expert_plugins_pass_through() {
        let plugin: Map<String, Value> =
            serde_json::from_value(json!({"type": "ptp", "ipam": {"type": "static"}})).unwrap();
        let spec = NetworkSpec {
            plugins: Some(vec![plugin.clone()]),
            ..NetworkSpec::default()
        };
        let list = conflist(&def("x", spec), Path::new("/d"), true).unwrap();
        assert_eq!(list["plugins"], json!([Value::Object(plugin)]));
        assert!(
            list.get(LIST_KEY).is_none(),
            "an expert list brings its own rules"
        );
        let bad = NetworkSpec {
            plugins: Some(vec![Map::new()]),
            ..NetworkSpec::default()
        };
        assert!(matches!(
            conflist(&def("x", bad), Path::new("/d"), true),
            Err(ConflistError::PluginType { index: 0, .. })
        ));
    }

    #[test]
    fn unset_subnet_is_derived_from_the_name() {
        let a = subnet(&def("alpha", NetworkSpec::default()));
        assert_eq!(a.prefix, 24);
        assert!(a.to_string().starts_with("10.89."));
        assert_eq!(a, subnet(&def("alpha", NetworkSpec::default())));
    }
}
