//! A bridge network's own iptables rules, as root with the real CNI
//! plugins: one masquerade rule and two forwarding rules per network,
//! however many containers it has; no rule per container unless it
//! publishes ports; a missing rule is drift that apply repairs; the rules
//! go with the network.
//!
//! Every test has its own bridge and subnet (10.226.X.0/24).

mod common;

use common::host;
use common::prereq;
use common::site::{container_yaml, Site};

fn ready(test: &str) -> bool {
    prereq::require_apply(test)
        && prereq::require_networking(test)
        && prereq::require_binary("iptables-save", "iptables").is_some()
}

/// A site with a bridge network `net` on its own bridge and subnet, and
/// `spec` added to the network's spec.
fn site_with_network(prefix: &str, octet: u32, spec: &str) -> (Site, String, String) {
    let site = Site::new(prefix);
    let bridge = format!("b{}", site.tag);
    site.own_bridge(&bridge);
    let subnet = format!("10.226.{}.0/24", octet + std::process::id() % 100);
    site.write(
        "network.yaml",
        &format!(
            "apiVersion: berth/v1\nkind: Network\nmetadata: {{name: net}}\n\
             spec: {{bridge: {bridge}, subnet: {subnet}{spec}}}\n"
        ),
    );
    (site, bridge, subnet)
}

fn sleeper(site: &Site, name: &str, extra: &str) {
    site.write(
        &format!("{name}.yaml"),
        &container_yaml(
            name,
            &format!(
                "  command: [sleep, \"100000\"]\n  networks: [net]\n  stopSignal: SIGKILL\n{extra}"
            ),
        ),
    );
}

/// The rules whose comment names `bridge`, of one table and chain.
fn rules_in(bridge: &str, chain: &str) -> Vec<String> {
    host::network_rules_on(bridge)
        .into_iter()
        .filter(|rule| rule.starts_with(&format!("-A {chain} ")))
        .collect()
}

#[test]
fn a_bridge_network_has_its_rules_once_and_they_go_with_it() {
    let test = "a_bridge_network_has_its_rules_once_and_they_go_with_it";
    if !ready(test) {
        return;
    }
    let (site, bridge, subnet) = site_with_network("nw", 0, "");
    let names: Vec<String> = (0..3).map(|i| format!("c{i}-{}", site.tag)).collect();
    let port = 30_000 + std::process::id() % 10_000;
    for (i, name) in names.iter().enumerate() {
        let ports = if i == 0 {
            format!("  ports: [{{containerPort: 80, hostPort: {port}, hostIP: 127.0.0.1}}]\n")
        } else {
            String::new()
        };
        sleeper(&site, name, &ports);
    }
    site.apply(&["--parallel", "3"]);

    let masquerade = rules_in(&bridge, "POSTROUTING");
    assert_eq!(masquerade.len(), 1, "{masquerade:#?}");
    assert!(
        masquerade[0].contains(&format!("-s {subnet} ! -o {bridge}"))
            && masquerade[0].ends_with("-j MASQUERADE"),
        "{masquerade:#?}"
    );
    let forward = rules_in(&bridge, "FORWARD");
    assert_eq!(forward.len(), 2, "{forward:#?}");
    assert!(forward.iter().any(|r| r.contains(&format!("-i {bridge} "))));
    assert!(forward
        .iter()
        .any(|r| r.contains(&format!("-o {bridge} ")) && r.contains("DNAT")));
    // The bridge's address is pinned: a container leaving or joining must
    // not change it under the others' cached results.
    let assign_type =
        std::fs::read_to_string(format!("/sys/class/net/{bridge}/addr_assign_type")).unwrap();
    assert_eq!(assign_type.trim(), "3", "NET_ADDR_SET");
    // No rule of their own for containers without ports; portmap's for
    // the one that publishes.
    for name in &names[1..] {
        assert_eq!(host::iptables_rules_with(name), Vec::<String>::new());
    }
    let published = host::iptables_rules_with(&names[0]);
    assert!(
        published
            .iter()
            .any(|r| r.contains(&format!("--dports {port}"))),
        "{published:#?}"
    );
    // Containers reach each other across the bridge.
    let peer = site.sh(&names[2], "ip -o -4 addr show eth0");
    let peer_ip = peer
        .split_whitespace()
        .find(|w| w.starts_with("10.226."))
        .and_then(|cidr| cidr.split('/').next())
        .unwrap_or_else(|| panic!("no address: {peer}"))
        .to_string();
    site.sh(&names[1], &format!("ping -c 1 -W 5 {peer_ip}"));

    // A rule removed behind berth's back is drift, and apply puts it back
    // once.
    let rule = masquerade[0].strip_prefix("-A ").unwrap().to_string();
    let removed = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("iptables -w -t nat -D {rule}"))
        .status()
        .unwrap();
    assert!(removed.success());
    assert!(rules_in(&bridge, "POSTROUTING").is_empty());
    let (code, plan) = site.plan(&[]);
    assert_eq!(code, 2, "{plan}");
    assert!(plan.contains("iptables rules are missing"), "{plan}");
    site.apply(&[]);
    assert_eq!(rules_in(&bridge, "POSTROUTING").len(), 1);
    assert_eq!(host::network_rules_on(&bridge).len(), 3);

    let deleted = site.run_set("delete", &[]);
    assert!(deleted.status.success(), "{deleted:?}");
    assert_eq!(host::network_rules_on(&bridge), Vec::<String>::new());
    assert_eq!(host::iptables_rules_with(&subnet), Vec::<String>::new());
    for name in &names {
        assert_eq!(host::iptables_rules_with(name), Vec::<String>::new());
    }
}

#[test]
fn an_internal_network_only_forwards_between_its_containers() {
    let test = "an_internal_network_only_forwards_between_its_containers";
    if !ready(test) {
        return;
    }
    let (site, bridge, _) = site_with_network("ni", 100, ", internal: true");
    let name = format!("c-{}", site.tag);
    sleeper(&site, &name, "");
    site.apply(&[]);
    let rules = host::network_rules_on(&bridge);
    assert_eq!(rules.len(), 1, "{rules:#?}");
    assert!(
        rules[0].starts_with(&format!("-A FORWARD -i {bridge} -o {bridge} ")),
        "{rules:#?}"
    );
    let deleted = site.run_set("delete", &[]);
    assert!(deleted.status.success(), "{deleted:?}");
    assert_eq!(host::network_rules_on(&bridge), Vec::<String>::new());
}
