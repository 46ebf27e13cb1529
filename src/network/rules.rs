//! A bridge network's own iptables rules: one set per network, installed
//! when its first container attaches and removed with the network, in place
//! of the rules the bridge plugin (`ipMasq`) and the firewall plugin add for
//! every container.
//!
//! Why: iptables with the nf_tables backend reads the whole rule set on
//! every call, and those plugins make about nine calls per container, so
//! each container on a bridge cost more than the one before (2.6 s each at
//! 250). A network's rules are a handful, whatever its size, and so the
//! CNI ADD of a container without published ports makes no iptables call.
//!
//! The rules, all with the comment `berth network NAME on BRIDGE`:
//!
//! - `nat POSTROUTING -s SUBNET ! -o BRIDGE -j MASQUERADE` when the network
//!   masquerades (`ipMasq`, never when internal), as docker does;
//! - `filter FORWARD -i BRIDGE -j ACCEPT` and `-o BRIDGE -m conntrack
//!   --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT`, inserted first as the
//!   firewall plugin does, so a host whose FORWARD policy is DROP still
//!   forwards the network's traffic, replies and published ports;
//! - for an internal network only `-i BRIDGE -o BRIDGE -j ACCEPT`:
//!   containers reach each other and nothing else.
//!
//! Published ports stay with the portmap plugin, which berth runs only for
//! a container that publishes ports on that network.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use super::conflist::{bridge_name, subnet, NetworkDef};
use super::leftovers::{Family, HostIptables};
use crate::manifest::NetworkDriver;

/// What a bridge network's rules are made from. It is kept in every
/// attachment's cached list (key [`LIST_KEY`]), so a CHECK or a later
/// release needs nothing else, even after the network's record changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRules {
    pub network: String,
    pub bridge: String,
    /// The subnet as `ADDRESS/PREFIX`.
    pub subnet: String,
    pub masquerade: bool,
    pub internal: bool,
}

/// The key of [`NetworkRules`] in a generated CNI list. The invoker passes
/// only `name` and `cniVersion` of the list on to plugins, so they never
/// see it.
pub const LIST_KEY: &str = "berthRules";

/// One rule: where it goes and its match and target, as `iptables -C`,
/// `-I`/`-A` and `-D` take them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub table: &'static str,
    pub chain: &'static str,
    /// Inserted first in the chain (FORWARD) rather than appended.
    pub first: bool,
    pub spec: Vec<String>,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "-t {} {} {}",
            self.table,
            self.chain,
            self.spec.join(" ")
        )
    }
}

impl NetworkRules {
    /// The rules of a bridge network berth builds the list for; None for
    /// other drivers and for expert plugin lists (they bring their own).
    pub fn of(def: &NetworkDef) -> Option<NetworkRules> {
        if def.spec.driver != NetworkDriver::Bridge || def.spec.plugins.is_some() {
            return None;
        }
        Some(NetworkRules {
            network: def.name.clone(),
            bridge: bridge_name(def),
            subnet: subnet(def).to_string(),
            masquerade: def.spec.ip_masq && !def.spec.internal,
            internal: def.spec.internal,
        })
    }

    /// The rules a cached CNI list says its network has, if any.
    pub fn in_list(list: &serde_json::Value) -> Option<NetworkRules> {
        serde_json::from_value(list.get(LIST_KEY)?.clone()).ok()
    }

    /// IPv4 or IPv6, by the subnet.
    pub fn family(&self) -> Family {
        let address = self.subnet.split('/').next().unwrap_or_default();
        match address.parse::<IpAddr>() {
            Ok(ip) => Family::of(ip),
            Err(_) => Family::V4,
        }
    }

    /// Names the set on the host: two networks with the same bridge and
    /// subnet have the same rules.
    pub fn key(&self) -> String {
        format!("{:?} {} {}", self.family(), self.bridge, self.subnet)
    }

    fn comment(&self) -> String {
        format!("berth network {} on {}", self.network, self.bridge)
    }

    /// The rules, in the order they are added.
    pub fn rules(&self) -> Vec<Rule> {
        let words = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();
        let commented = |spec: String| {
            let mut spec = words(&spec);
            let target = spec.split_off(spec.len() - 2);
            spec.extend(["-m", "comment", "--comment"].map(str::to_string));
            spec.push(self.comment());
            spec.extend(target);
            spec
        };
        let bridge = &self.bridge;
        let forward = |spec: String| Rule {
            table: "filter",
            chain: "FORWARD",
            first: true,
            spec: commented(spec),
        };
        if self.internal {
            return vec![forward(format!("-i {bridge} -o {bridge} -j ACCEPT"))];
        }
        let mut rules = vec![
            forward(format!("-i {bridge} -j ACCEPT")),
            forward(format!(
                "-o {bridge} -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT"
            )),
        ];
        if self.masquerade {
            rules.push(Rule {
                table: "nat",
                chain: "POSTROUTING",
                first: false,
                spec: commented(format!("-s {} ! -o {bridge} -j MASQUERADE", self.subnet)),
            });
        }
        rules
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("{0} is not installed; bridge networks need it (apt-get install iptables)")]
    NoBinary(&'static str),
    #[error("cannot run {binary}: {source}")]
    Spawn {
        binary: PathBuf,
        source: std::io::Error,
    },
    #[error("{binary} {args} failed: {stderr}")]
    Failed {
        binary: PathBuf,
        args: String,
        stderr: String,
    },
    #[error("network {network}: rule {rule} is still there after {tries} deletions")]
    Stayed {
        network: String,
        rule: String,
        tries: usize,
    },
}

/// The host's iptables as far as a network's own rules need it.
pub trait RuleTables: fmt::Debug + Send + Sync {
    fn exists(&self, family: Family, rule: &Rule) -> Result<bool, RulesError>;
    fn add(&self, family: Family, rule: &Rule) -> Result<(), RulesError>;
    fn delete(&self, family: Family, rule: &Rule) -> Result<(), RulesError>;
}

/// The rules of `rules` that are not on the host.
pub fn missing(tables: &dyn RuleTables, rules: &NetworkRules) -> Result<Vec<Rule>, RulesError> {
    let family = rules.family();
    let mut missing = Vec::new();
    for rule in rules.rules() {
        if !tables.exists(family, &rule)? {
            missing.push(rule);
        }
    }
    Ok(missing)
}

/// Adds what is missing of `rules`; says how many it added.
pub fn ensure(tables: &dyn RuleTables, rules: &NetworkRules) -> Result<usize, RulesError> {
    let family = rules.family();
    let missing = missing(tables, rules)?;
    for rule in &missing {
        tables.add(family, rule)?;
    }
    Ok(missing.len())
}

/// Removes `rules` from the host, copies too (two berths that raced on an
/// empty host may both have added them); says how many it removed.
pub fn remove(tables: &dyn RuleTables, rules: &NetworkRules) -> Result<usize, RulesError> {
    remove_each(tables, rules.family(), &rules.network, rules.rules())
}

/// Removes every copy of each of `rules` (of `family`, network `network`
/// in errors); says how many went.
pub fn remove_each(
    tables: &dyn RuleTables,
    family: Family,
    network: &str,
    rules: Vec<Rule>,
) -> Result<usize, RulesError> {
    // Far more than two racing berths can add; a bound, not a retry count.
    const TRIES: usize = 16;
    let mut removed = 0;
    for rule in rules {
        let mut tries = 0;
        while tables.exists(family, &rule)? {
            if tries == TRIES {
                return Err(RulesError::Stayed {
                    network: network.to_string(),
                    rule: rule.to_string(),
                    tries,
                });
            }
            tables.delete(family, &rule)?;
            tries += 1;
            removed += 1;
        }
    }
    Ok(removed)
}

/// The rules the CNI firewall plugin (iptables backend) adds for one
/// container address, in filter `CNI-FORWARD`: replies to the address, and
/// all it sends. They carry no comment; a DEL with the attachment's result
/// removes them, and gc removes them for an attachment berth lost.
pub fn firewall_plugin_rules(address: IpAddr) -> Vec<Rule> {
    let host = match address {
        IpAddr::V4(_) => format!("{address}/32"),
        IpAddr::V6(_) => format!("{address}/128"),
    };
    let rule = |spec: String| Rule {
        table: "filter",
        chain: "CNI-FORWARD",
        first: false,
        spec: spec.split(' ').map(str::to_string).collect(),
    };
    vec![
        rule(format!(
            "-d {host} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
        )),
        rule(format!("-s {host} -j ACCEPT")),
    ]
}

impl HostIptables {
    fn rule_command(family: Family, action: &str, rule: &Rule) -> Result<Command, RulesError> {
        let binary = HostIptables::binary(family).ok_or(RulesError::NoBinary(family.binary()))?;
        let mut command = Command::new(binary);
        command
            .args(["-w", "-t", rule.table, action, rule.chain])
            .args(if action == "-I" { &["1"][..] } else { &[] })
            .args(&rule.spec)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        Ok(command)
    }

    /// Runs `iptables ACTION RULE`: its exit code, or why it could not
    /// run. A missing binary is `Ok(None)`.
    fn run_rule(family: Family, action: &str, rule: &Rule) -> Result<Option<i32>, RulesError> {
        let mut command = match Self::rule_command(family, action, rule) {
            Ok(command) => command,
            Err(RulesError::NoBinary(_)) => return Ok(None),
            Err(error) => return Err(error),
        };
        let binary = PathBuf::from(command.get_program());
        let output = command.output().map_err(|source| RulesError::Spawn {
            binary: binary.clone(),
            source,
        })?;
        match output.status.code() {
            Some(code @ (0 | 1)) if action == "-C" => Ok(Some(code)),
            Some(0) => Ok(Some(0)),
            _ => Err(RulesError::Failed {
                binary,
                args: format!("{action} {rule}"),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            }),
        }
    }

    fn change_rule(family: Family, action: &str, rule: &Rule) -> Result<(), RulesError> {
        match Self::run_rule(family, action, rule)? {
            Some(_) => Ok(()),
            None => Err(RulesError::NoBinary(family.binary())),
        }
    }
}

impl RuleTables for HostIptables {
    fn exists(&self, family: Family, rule: &Rule) -> Result<bool, RulesError> {
        // iptables -C: 0 when the rule is there, 1 when it is not; any
        // other status is a failure to look (no such table or match).
        // Without iptables no rule can be there (adding one says why).
        Ok(Self::run_rule(family, "-C", rule)? == Some(0))
    }

    fn add(&self, family: Family, rule: &Rule) -> Result<(), RulesError> {
        Self::change_rule(family, if rule.first { "-I" } else { "-A" }, rule)
    }

    fn delete(&self, family: Family, rule: &Rule) -> Result<(), RulesError> {
        Self::change_rule(family, "-D", rule)
    }
}

/// In-memory tables for tests.
#[cfg(test)]
pub mod fake {
    use std::sync::Mutex;

    use super::*;

    #[derive(Debug, Default)]
    pub struct FakeRuleTables {
        pub rules: Mutex<Vec<(Family, Rule)>>,
        /// Every call, as `exists`/`add`/`delete` and the rule.
        pub calls: Mutex<Vec<String>>,
        /// Deletions that do nothing (a rule iptables will not remove).
        pub stuck: bool,
    }

    impl FakeRuleTables {
        pub fn count(&self) -> usize {
            self.rules.lock().unwrap().len()
        }
        fn log(&self, call: &str, rule: &Rule) {
            self.calls.lock().unwrap().push(format!("{call} {rule}"));
        }
    }

    impl RuleTables for FakeRuleTables {
        fn exists(&self, family: Family, rule: &Rule) -> Result<bool, RulesError> {
            self.log("exists", rule);
            let rules = self.rules.lock().unwrap();
            Ok(rules.iter().any(|(f, r)| *f == family && r == rule))
        }
        fn add(&self, family: Family, rule: &Rule) -> Result<(), RulesError> {
            self.log("add", rule);
            self.rules.lock().unwrap().push((family, rule.clone()));
            Ok(())
        }
        fn delete(&self, family: Family, rule: &Rule) -> Result<(), RulesError> {
            self.log("delete", rule);
            if self.stuck {
                return Ok(());
            }
            let mut rules = self.rules.lock().unwrap();
            if let Some(at) = rules.iter().position(|(f, r)| *f == family && r == rule) {
                rules.remove(at);
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakeRuleTables;
    use super::*;
    use crate::manifest::NetworkSpec;

    fn def(name: &str, spec: serde_json::Value) -> NetworkDef {
        NetworkDef {
            name: name.into(),
            spec: serde_json::from_value::<NetworkSpec>(spec).unwrap(),
        }
    }

    fn lines(rules: &NetworkRules) -> Vec<String> {
        rules.rules().iter().map(Rule::to_string).collect()
    }

    #[test]
    fn a_bridge_network_forwards_and_masquerades_its_subnet_once() {
        let rules = NetworkRules::of(&def(
            "web",
            serde_json::json!({"subnet": "10.7.0.0/24", "bridge": "br-web"}),
        ))
        .unwrap();
        let c = "-m comment --comment berth network web on br-web";
        assert_eq!(
            lines(&rules),
            [
                format!("-t filter FORWARD -i br-web {c} -j ACCEPT"),
                format!(
                    "-t filter FORWARD -o br-web -m conntrack --ctstate RELATED,ESTABLISHED,DNAT {c} -j ACCEPT"
                ),
                format!("-t nat POSTROUTING -s 10.7.0.0/24 ! -o br-web {c} -j MASQUERADE"),
            ]
        );
        assert_eq!(rules.family(), Family::V4);
        // The comment is one argument, as iptables wants it.
        let spec = &rules.rules()[0].spec;
        assert!(spec.contains(&"berth network web on br-web".to_string()));
        assert!(rules.rules()[0].first && !rules.rules()[2].first);
    }

    #[test]
    fn internal_networks_only_forward_between_their_containers() {
        let rules = NetworkRules::of(&def(
            "back",
            serde_json::json!({"subnet": "fd00:7::/64", "bridge": "br-b", "internal": true}),
        ))
        .unwrap();
        assert_eq!(
            lines(&rules),
            ["-t filter FORWARD -i br-b -o br-b -m comment --comment berth network back on br-b -j ACCEPT"]
        );
        assert_eq!(rules.family(), Family::V6);
    }

    #[test]
    fn without_ip_masq_nothing_is_masqueraded() {
        let rules = NetworkRules::of(&def(
            "flat",
            serde_json::json!({"subnet": "10.7.1.0/24", "ipMasq": false}),
        ))
        .unwrap();
        assert!(rules.rules().iter().all(|r| r.table == "filter"));
    }

    #[test]
    fn expert_lists_and_other_drivers_bring_their_own_rules() {
        let expert = def("x", serde_json::json!({"plugins": [{"type": "bridge"}]}));
        assert_eq!(NetworkRules::of(&expert), None);
        let macvlan = def(
            "m",
            serde_json::json!({"driver": "macvlan", "parent": "eth0"}),
        );
        assert_eq!(NetworkRules::of(&macvlan), None);
    }

    #[test]
    fn ensure_adds_only_what_is_missing_and_remove_takes_copies_too() {
        let tables = FakeRuleTables::default();
        let rules =
            NetworkRules::of(&def("web", serde_json::json!({"subnet": "10.7.0.0/24"}))).unwrap();
        assert_eq!(ensure(&tables, &rules).unwrap(), 3);
        assert_eq!(ensure(&tables, &rules).unwrap(), 0);
        assert_eq!(tables.count(), 3);
        // Another berth raced: a copy of one rule.
        tables.add(Family::V4, &rules.rules()[2]).unwrap();
        assert_eq!(missing(&tables, &rules).unwrap(), Vec::<Rule>::new());
        assert_eq!(remove(&tables, &rules).unwrap(), 4);
        assert_eq!(tables.count(), 0);
        assert_eq!(missing(&tables, &rules).unwrap().len(), 3);
    }

    #[test]
    fn a_rule_that_will_not_go_is_an_error_not_a_hang() {
        let tables = FakeRuleTables {
            stuck: true,
            ..FakeRuleTables::default()
        };
        let rules =
            NetworkRules::of(&def("web", serde_json::json!({"subnet": "10.7.0.0/24"}))).unwrap();
        ensure(&tables, &rules).unwrap();
        let error = remove(&tables, &rules).unwrap_err().to_string();
        assert!(
            error.contains("network web: rule -t filter FORWARD"),
            "{error}"
        );
    }

    #[test]
    fn the_rules_travel_in_the_list_and_come_back() {
        let rules =
            NetworkRules::of(&def("web", serde_json::json!({"subnet": "10.7.0.0/24"}))).unwrap();
        let list = serde_json::json!({"name": "web", LIST_KEY: rules});
        assert_eq!(NetworkRules::in_list(&list), Some(rules));
        assert_eq!(
            NetworkRules::in_list(&serde_json::json!({"name": "old"})),
            None
        );
    }
}
