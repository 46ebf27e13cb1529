//! No iptables rule left behind, as root with the real CNI plugins: the
//! bridge plugin's DEL skips its masquerade cleanup when the container's
//! namespace is gone (a reboot) or its address was removed inside it, and
//! berth removes what it left (the `nat POSTROUTING` jump, the `CNI-…`
//! chain, portmap's `CNI-DN-…` chain and its entry rule) after every DEL;
//! `berth gc` removes the leftovers of containers berth no longer knows on
//! its own networks, and nothing of another state root's containers.
//!
//! berth's own bridge networks masquerade with one rule per network
//! (`network::rules`), so these per-container rules come from an expert
//! plugin list that asks the bridge plugin to masquerade, as a user's list
//! may, and as attachments made before berth had network rules do.
//!
//! Every test has its own network name, subnet (10.238.X.0/24) and bridge,
//! and looks only at rules whose comment or chain names its own containers.

mod common;

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use berth::manifest::NetworkSpec;
use berth::network::leftovers::Owner;
use berth::network::store::{NetworkRecord, NetworkStore};
use common::host;
use common::instance::{self, Instance};
use common::prereq;
use common::site::{container_yaml, Site};
use serde_json::Value;

/// [`rules_of`] from `ip6tables-save`.
fn ip6_rules_of(network: &str, id: &str) -> Vec<String> {
    lines_of("ip6tables-save", network, id)
}

/// Every line of `iptables-save` (all tables) that belongs to container
/// `id` on `network`: rules whose comment names it, and its chains (by the
/// plugins' hashed names) with their rules.
fn rules_of(network: &str, id: &str) -> Vec<String> {
    lines_of("iptables-save", network, id)
}

fn lines_of(save: &str, network: &str, id: &str) -> Vec<String> {
    let owner = Owner::new(network, id);
    let chains = [owner.masquerade_chain(), owner.dnat_chain()];
    let comment = format!("id: \\\"{id}\\\"");
    let output = Command::new(save).output().expect("iptables-save runs");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| {
            (l.contains(&format!("name: \\\"{network}\\\"")) && l.contains(&comment))
                || chains.iter().any(|c| l.contains(c.as_str()))
        })
        .map(str::to_string)
        .collect()
}

/// The masquerade jumps (`-A POSTROUTING ... -j CNI-…`) of the container.
fn masquerade_jumps(network: &str, id: &str) -> Vec<String> {
    rules_of(network, id)
        .into_iter()
        .filter(|l| l.starts_with("-A POSTROUTING"))
        .collect()
}

/// The address a container's masquerade jump names (`-s IP/32`).
fn jump_source(network: &str, id: &str) -> String {
    let jumps = masquerade_jumps(network, id);
    let words: Vec<&str> = jumps
        .first()
        .map(|j| j.split(' ').collect())
        .unwrap_or_default();
    let at = words.iter().position(|w| *w == "-s");
    let source = at.and_then(|at| words.get(at + 1));
    source.map_or_else(|| panic!("no jump source: {jumps:#?}"), |s| s.to_string())
}

/// The firewall plugin's rules (filter `CNI-FORWARD`) for `address`
/// (`IP/32`): they carry no comment, only the address.
fn firewall_rules_of(address: &str) -> Vec<String> {
    let output = Command::new("iptables-save")
        .args(["-t", "filter"])
        .output()
        .expect("iptables-save runs");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| l.starts_with("-A CNI-FORWARD") && l.split(' ').any(|w| w == address))
        .map(str::to_string)
        .collect()
}

/// An expert plugin list whose bridge plugin masquerades each container
/// with a chain of its own, with portmap and the firewall plugin: what
/// berth generated before networks had their own rules.
fn masquerading_plugins(bridge: &str, subnet: &str, ipam_dir: &str) -> serde_json::Value {
    let default_route = if subnet.contains(':') {
        "::/0"
    } else {
        "0.0.0.0/0"
    };
    serde_json::json!([
        {
            "type": "bridge", "bridge": bridge, "isGateway": true, "ipMasq": true,
            "hairpinMode": true,
            "ipam": {
                "type": "host-local", "ranges": [[{"subnet": subnet}]],
                "routes": [{"dst": default_route}], "dataDir": ipam_dir,
            },
        },
        {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true},
        {"type": "firewall"},
    ])
}

/// A network name no other test uses, now or in a rerun.
fn network_name(prefix: &str) -> String {
    format!("{prefix}{}x{}", std::process::id(), instance::serial())
}

/// A subnet third octet no other test of this run uses.
fn third_octet() -> u32 {
    (std::process::id() % 200) + instance::serial() + 20
}

/// An [`Instance`] with a network of its own: its bridge, its subnet, and
/// the name it is given (two labs may share a name, as two state roots may).
struct Lab {
    instance: Instance,
    network: String,
    subnet_prefix: String,
}

common::deref_to!(Lab, instance: Instance);

impl Lab {
    fn new(network: &str) -> Lab {
        Lab::with_subnet(network, &format!("10.238.{}", third_octet()), ".0/24")
    }

    /// A lab on `PREFIX` + `SUFFIX` (an IPv6 one: `fd38:N:` + `:/64`).
    fn with_subnet(network: &str, subnet_prefix: &str, suffix: &str) -> Lab {
        let instance = Instance::with_busybox();
        let subnet_prefix = subnet_prefix.to_string();
        let bridge = instance.short_name("nr");
        instance.own_bridge(&bridge);
        let subnet = format!("{subnet_prefix}{suffix}");
        let ipam_dir = instance.root().join("cni/ipam");
        let spec: NetworkSpec = serde_json::from_value(serde_json::json!({
            "subnet": subnet,
            "bridge": bridge,
            "plugins": masquerading_plugins(&bridge, &subnet, &ipam_dir.to_string_lossy()),
        }))
        .unwrap();
        NetworkStore::new(instance.root().join("networks"))
            .put(&NetworkRecord {
                name: network.to_string(),
                spec,
                source: None,
                file: None,
                line: None,
                fingerprint: None,
            })
            .unwrap();
        Lab {
            instance,
            network: network.to_string(),
            subnet_prefix,
        }
    }

    /// Starts a sleeping container on the lab's network with `flags`.
    fn start_on_network(&self, hint: &str, flags: &[&str]) -> String {
        let name = self.unique_name(hint);
        let mut all = vec!["--net", self.network.as_str()];
        all.extend_from_slice(flags);
        self.start(&name, &all, &["sleep", "1000"]);
        name
    }

    fn rules_of(&self, id: &str) -> Vec<String> {
        rules_of(&self.network, id)
    }
}

/// What a reboot does to a container: its shim and processes die (killed
/// by the pids berth recorded) and its pinned namespace is gone; berth's
/// records stay.
fn reboot(instance: &Instance, name: &str) {
    let (shim, init) = running_pids(instance, name);
    for pid in [shim, init] {
        host::kill9(pid);
        assert!(
            host::wait_gone(pid, Duration::from_secs(10)),
            "{pid} survived SIGKILL"
        );
    }
    let pin = instance.state().join("netns").join(name);
    nix::mount::umount2(&pin, nix::mount::MntFlags::MNT_DETACH).unwrap();
    fs::remove_file(&pin).unwrap();
}

/// The shim's and the container's pids once the container runs (`run -d`
/// returns when the shim has started, which may be before runc has).
fn running_pids(instance: &Instance, name: &str) -> (u32, u32) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let inspect = instance.inspect(name);
        let status = &inspect["status"];
        if let (Some(shim), Some(init), "running") = (
            inspect["shimPid"].as_u64(),
            status["pid"].as_u64(),
            status["phase"].as_str().unwrap_or(""),
        ) {
            return (shim as u32, init as u32);
        }
        assert!(Instant::now() < deadline, "{name} never ran: {inspect}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn ready(test: &str) -> bool {
    prereq::require_networking(test)
        && prereq::require_binary("iptables-save", "iptables").is_some()
        && prereq::require_binary("nsenter", "util-linux").is_some()
}

/// A port for `-p` no other test picks (network_run uses 20000 and up).
fn host_port() -> String {
    (40_000 + std::process::id() % 20_000).to_string()
}

/// Regression: after a reboot, `rm -f` ran the bridge plugin's DEL without
/// a namespace, which released the address but left the masquerade jump
/// and chain in the nat table for ever.
#[test]
fn rm_after_a_reboot_leaves_no_masquerade_or_portmap_rule() {
    if !ready("rm_after_a_reboot_leaves_no_masquerade_or_portmap_rule") {
        return;
    }
    let lab = Lab::new(&network_name("nrr"));
    let publish = format!("127.0.0.1:{}:80", host_port());
    let name = lab.start_on_network("rebooted", &["-p", &publish]);
    let before = lab.rules_of(&name);
    assert_eq!(
        masquerade_jumps(&lab.network, &name).len(),
        1,
        "{before:#?}"
    );
    assert!(
        before.iter().any(|l| l.contains("dnat name:")),
        "portmap's entry rule: {before:#?}"
    );

    reboot(&lab, &name);
    lab.ok(&["rm", "-f", &name]);
    assert_eq!(lab.rules_of(&name), Vec::<String>::new());
}

/// Regression: `apply` repaired a rebooted container under the same id
/// and left the jump for its old address beside the new one.
#[test]
fn apply_repairs_a_rebooted_container_without_its_old_rules() {
    if !ready("apply_repairs_a_rebooted_container_without_its_old_rules") {
        return;
    }
    let site = Site::new("nr");
    let bridge = format!("b{}", site.tag);
    site.own_bridge(&bridge);
    let network = format!("n{}", site.tag);
    let name = format!("c{}", site.tag);
    let subnet = format!("10.238.{}.0/24", third_octet());
    let plugins = masquerading_plugins(
        &bridge,
        &subnet,
        &site.root().join("cni/ipam").to_string_lossy(),
    );
    site.write(
        "net.yaml",
        &format!(
            "apiVersion: berth/v1\nkind: Network\nmetadata:\n  name: {network}\nspec:\n  driver: bridge\n  bridge: {bridge}\n  subnet: {subnet}\n  plugins: {plugins}\n"
        ),
    );
    site.write(
        "c.yaml",
        &container_yaml(
            &name,
            &format!(
                "  command: [sleep, \"1000\"]\n  networks: [{network}]\n  ports: [{{containerPort: 80, hostPort: {}}}]\n",
                host_port()
            ),
        ),
    );
    site.apply(&[]);
    let old = masquerade_jumps(&network, &name);
    assert_eq!(old.len(), 1, "{old:#?}");

    reboot(&site, &name);
    let applied = site.apply(&[]);
    assert!(
        applied.contains(&format!("repair Container {name}")),
        "{applied}"
    );
    site.pid_of(&name);
    let address = site.sh(&name, "ip -o -4 addr show eth0");
    let now = masquerade_jumps(&network, &name);
    assert_eq!(now.len(), 1, "only the new address's jump: {now:#?}");
    let ip = address
        .split_whitespace()
        .find(|w| w.starts_with("10.238."))
        .and_then(|cidr| cidr.split('/').next())
        .unwrap_or_else(|| panic!("no address: {address}"));
    assert!(now[0].contains(&format!("-s {ip}/32")), "{now:#?} vs {ip}");
    let dnat_entries = rules_of(&network, &name)
        .into_iter()
        .filter(|l| l.starts_with("-A CNI-HOSTPORT-DNAT"))
        .count();
    assert_eq!(dnat_entries, 1);
    site.ok(&["rm", "-f", &name]);
    assert_eq!(rules_of(&network, &name), Vec::<String>::new());
}

/// Regression: with the address flushed inside the namespace (the
/// situation of lifecycle's broken_network_plumbing test), the bridge
/// plugin's DEL found no address to unmasquerade and left its rules.
#[test]
fn a_container_whose_address_was_flushed_leaves_no_rule() {
    if !ready("a_container_whose_address_was_flushed_leaves_no_rule") {
        return;
    }
    let lab = Lab::new(&network_name("nrf"));
    let name = lab.start_on_network("flushed", &[]);
    assert_eq!(masquerade_jumps(&lab.network, &name).len(), 1);
    let pin = lab.state().join("netns").join(&name);
    let flushed = Command::new("nsenter")
        .arg(format!("--net={}", pin.display()))
        .args(["ip", "addr", "flush", "dev", "eth0"])
        .status()
        .unwrap();
    assert!(flushed.success());
    lab.ok(&["rm", "-f", &name]);
    assert_eq!(lab.rules_of(&name), Vec::<String>::new());
}

/// `berth gc` removes the rules of a container berth lost (no record, no
/// cached attachment) on its own network, and leaves alone its live
/// container's rules and those of another state root's container on a
/// network of the same name.
#[test]
fn gc_removes_rules_of_an_unknown_container_and_spares_the_others() {
    if !ready("gc_removes_rules_of_an_unknown_container_and_spares_the_others") {
        return;
    }
    let network = network_name("nrg");
    let lab = Lab::new(&network);
    let other = Lab::new(&network);
    assert_ne!(lab.subnet_prefix, other.subnet_prefix);
    let publish = format!("127.0.0.1:{}:80", host_port());
    let lost = lab.start_on_network("lost", &["-p", &publish]);
    let kept = lab.start_on_network("kept", &[]);
    let theirs = other.start_on_network("theirs", &[]);
    assert!(!lab.rules_of(&lost).is_empty());
    let lost_ip = jump_source(&lab.network, &lost);
    let kept_ip = jump_source(&lab.network, &kept);
    assert_eq!(
        firewall_rules_of(&lost_ip).len(),
        2,
        "the firewall plugin's"
    );

    // Lost: its processes and namespace gone, and with them berth's record
    // and cached attachment (as a crash between removals could leave it).
    reboot(&lab, &lost);
    fs::remove_file(lab.root().join("containers").join(format!("{lost}.json"))).unwrap();
    fs::remove_dir_all(lab.root().join("cni/results").join(&lost)).unwrap();
    // Its runtime directory goes too (a reboot empties --state): a
    // directory left there would be an orphan whose leftovers gc keeps.
    let runtime_dir = lab.state().join("containers").join(&lost);
    let _ = nix::mount::umount2(
        &runtime_dir.join("bundle/rootfs"),
        nix::mount::MntFlags::MNT_DETACH,
    );
    fs::remove_dir_all(&runtime_dir).unwrap();

    let gc: Value = serde_json::from_str(&lab.ok(&["gc", "-o", "json"])).unwrap();
    let removed = gc["iptablesRulesRemoved"].as_u64().unwrap_or(0);
    assert!(removed >= 3, "the jump and its chain's rules: {gc}");
    assert_eq!(lab.rules_of(&lost), Vec::<String>::new());
    assert_eq!(firewall_rules_of(&lost_ip), Vec::<String>::new());
    assert_eq!(firewall_rules_of(&kept_ip).len(), 2, "live: kept");
    assert_eq!(masquerade_jumps(&network, &kept).len(), 1, "live: kept");
    assert_eq!(
        masquerade_jumps(&network, &theirs).len(),
        1,
        "other root: kept"
    );
    let again: Value = serde_json::from_str(&lab.ok(&["gc", "-o", "json"])).unwrap();
    assert_eq!(again["iptablesRulesRemoved"], 0, "{again}");
    let text = other.ok(&["gc"]);
    assert!(text.contains("0 leftover iptables rules"), "{text}");
    assert_eq!(masquerade_jumps(&network, &kept).len(), 1);
}

/// The bridge plugin masquerades an IPv6 network with ip6tables: its
/// leftovers there go too.
#[test]
fn an_ipv6_network_leaves_no_ip6tables_rule() {
    if !ready("an_ipv6_network_leaves_no_ip6tables_rule")
        || prereq::require_binary("ip6tables-save", "iptables").is_none()
    {
        return;
    }
    let prefix = format!("fd38:{:x}:", third_octet());
    let lab = Lab::with_subnet(&network_name("nr6"), &prefix, ":/64");
    let name = lab.start_on_network("six", &[]);
    let jumps = |rules: Vec<String>| {
        rules
            .into_iter()
            .filter(|l| l.starts_with("-A POSTROUTING"))
            .count()
    };
    assert_eq!(jumps(ip6_rules_of(&lab.network, &name)), 1);
    reboot(&lab, &name);
    lab.ok(&["rm", "-f", &name]);
    assert_eq!(ip6_rules_of(&lab.network, &name), Vec::<String>::new());
}
