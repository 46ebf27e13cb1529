//! Networking end to end with the real CNI plugins (bridge, host-local,
//! portmap, firewall) as root.
//!
//! Everything stays on this host: each test makes its own bridge
//! (`bt<pid%1000><n>`), its own subnet (10.231.<n>.0/24, masquerading off),
//! temp root/state dirs and unique container ids, and a Drop guard tears all
//! of it down (children killed by pid, bridge deleted with `ip link del`).

mod common;

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use berth::manifest::types::{NetworkSpec, PortMapping, Protocol};
use berth::network::cache::Record;
use berth::network::cni::RuntimeConf;
use berth::network::{netns, AttachRequest, NetworkDef, NetworkRequest, Networker};
use common::instance::Instance;
use common::prereq;
use serde_json::{json, Map};

const PLUGIN_DIR: &str = "/usr/lib/cni";

fn prerequisites(test: &str) -> bool {
    if !prereq::require_root(test) || !prereq::require_busybox(test) {
        return false;
    }
    for tool in ["nsenter", "ip", "iptables-save"] {
        if prereq::require_binary(tool, "util-linux / iproute2 / iptables").is_none() {
            return false;
        }
    }
    prereq::require_cni(test)
}

/// One test's private world in an [`Instance`], torn down on drop.
struct Env {
    n: u8,
    instance: Instance,
    net: Networker,
    bridge: String,
    children: Vec<Child>,
    containers: Vec<String>,
}

impl Env {
    fn new(n: u8) -> Env {
        let instance = Instance::new();
        let mut net = Networker::new(&instance.layout());
        net.plugin_path = vec![PathBuf::from(PLUGIN_DIR)];
        let bridge = format!("bt{}{}", std::process::id() % 1000, n);
        instance.own_bridge(&bridge);
        Env {
            n,
            bridge,
            instance,
            net,
            children: Vec::new(),
            containers: Vec::new(),
        }
    }

    fn spec(&self) -> NetworkSpec {
        NetworkSpec {
            subnet: Some(format!("10.231.{}.0/24", self.n).parse().unwrap()),
            bridge: Some(self.bridge.clone()),
            ip_masq: false,
            ..NetworkSpec::default()
        }
    }

    fn def(&self, spec: NetworkSpec) -> NetworkDef {
        NetworkDef {
            name: format!("tnet{}", self.n),
            spec,
        }
    }

    fn gateway(&self) -> IpAddr {
        format!("10.231.{}.1", self.n).parse().unwrap()
    }

    fn container(&mut self, k: usize) -> String {
        let id = format!("nt{}-{}-{k}", std::process::id(), self.n);
        if !self.containers.contains(&id) {
            self.containers.push(id.clone());
        }
        id
    }

    fn setup(
        &mut self,
        k: usize,
        spec: NetworkSpec,
        ip: Option<IpAddr>,
        ports: Vec<PortMapping>,
    ) -> (String, PathBuf, Vec<IpAddr>) {
        let id = self.container(k);
        let req = AttachRequest {
            container: &id,
            networks: vec![NetworkRequest {
                def: self.def(spec),
                ip,
                aliases: vec![format!("alias{k}")],
            }],
            ports,
        };
        let (path, attachments) = self.net.setup(&req).unwrap();
        assert_eq!(attachments.len(), 1);
        assert_eq!(attachments[0].ifname, "eth0");
        assert!(attachments[0].mac.is_some());
        assert_eq!(self.net.attachments(&id), attachments);
        (id, path, attachments[0].ips.clone())
    }

    /// Everything berth or the plugins left for `container` on this host.
    fn leftovers(&self, container: &str) -> Vec<String> {
        let mut left = Vec::new();
        let links = run(Command::new("ip").args(["-o", "link", "show", "master", &self.bridge]));
        if !String::from_utf8_lossy(&links.stdout).trim().is_empty() {
            left.push(format!(
                "veths on {}: {}",
                self.bridge,
                String::from_utf8_lossy(&links.stdout)
            ));
        }
        let path = self.net.netns_path(container);
        if path.exists() {
            left.push(format!("netns file {}", path.display()));
        }
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
        if mountinfo.contains(&*self.instance.path().to_string_lossy()) {
            left.push(format!("mounts under {}", self.instance.path().display()));
        }
        for reservation in reservations(&self.net) {
            left.push(format!("host-local reservation {}", reservation.display()));
        }
        let cached = self.net.cache().load(container).unwrap();
        if !cached.is_empty() {
            left.push(format!("{} cached records", cached.len()));
        }
        let rules = run(&mut Command::new("iptables-save"));
        let rules = String::from_utf8_lossy(&rules.stdout);
        let subnet = format!("10.231.{}.", self.n);
        for line in rules
            .lines()
            .filter(|l| l.contains(container) || l.contains(&subnet))
        {
            left.push(format!("iptables: {line}"));
        }
        left
    }

    fn spawn_httpd(&mut self, netns: &Path, port: u16) -> PathBuf {
        let www = self.instance.path().join(format!("www{port}"));
        fs::create_dir_all(&www).unwrap();
        fs::write(www.join("index.html"), format!("hello from {port}\n")).unwrap();
        let child = Command::new("nsenter")
            .arg(format!("--net={}", netns.display()))
            .args(["/bin/busybox", "httpd", "-f", "-p"])
            .arg(port.to_string())
            .arg("-h")
            .arg(&www)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        self.children.push(child);
        std::thread::sleep(std::time::Duration::from_millis(300));
        www
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for id in &self.containers {
            if let Err(e) = self.net.teardown(id) {
                eprintln!("cleanup: teardown {id}: {e}");
            }
        }
        let _ = self.net.sweep_stale(&[]);
        // The instance, dropped next, deletes the bridge.
    }
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run command")
}

fn in_netns(netns: &Path, args: &[&str]) -> Output {
    run(Command::new("nsenter")
        .arg(format!("--net={}", netns.display()))
        .args(args))
}

fn ping(from: &Path, to: IpAddr) -> bool {
    in_netns(
        from,
        &["/bin/busybox", "ping", "-c1", "-W1", &to.to_string()],
    )
    .status
    .success()
}

/// busybox 1.35's `wget -T` segfaults on success, so `timeout` bounds it.
fn wget(url: &str) -> Option<String> {
    let out =
        run(Command::new("timeout").args(["5", "/bin/busybox", "wget", "-q", "-O", "-", url]));
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn wget_in(netns: &Path, url: &str) -> Option<String> {
    let out = in_netns(
        netns,
        &["timeout", "5", "/bin/busybox", "wget", "-q", "-O", "-", url],
    );
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// host-local's reservation files (one per address) under the root.
fn reservations(net: &Networker) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(networks) = fs::read_dir(net.ipam_dir()) else {
        return found;
    };
    for network in networks.flatten() {
        for entry in fs::read_dir(network.path()).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name != "lock" && !name.starts_with("last_reserved_ip") {
                found.push(entry.path());
            }
        }
    }
    found
}

fn wait_for_no_veths(bridge: &str) {
    for _ in 0..100 {
        let links = run(Command::new("ip").args(["-o", "link", "show", "master", bridge]));
        if String::from_utf8_lossy(&links.stdout).trim().is_empty() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("veths stay on {bridge} after their namespaces are gone");
}

fn test_port(n: u8) -> u16 {
    20000 + (std::process::id() % 2000) as u16 * 10 + u16::from(n)
}

#[test]
fn two_containers_on_one_network_reach_each_other() {
    if !prerequisites("two_containers_on_one_network_reach_each_other") {
        return;
    }
    let mut env = Env::new(1);
    let (_a, ns_a, ips_a) = env.setup(1, env.spec(), None, vec![]);
    let (_b, ns_b, ips_b) = env.setup(2, env.spec(), None, vec![]);
    assert_ne!(ips_a, ips_b);
    assert!(ping(&ns_a, ips_b[0]), "a cannot ping b at {}", ips_b[0]);
    assert!(ping(&ns_b, ips_a[0]), "b cannot ping a at {}", ips_a[0]);
    // lo is up in the pinned namespace.
    assert!(ping(&ns_a, "127.0.0.1".parse().unwrap()));
    env.spawn_httpd(&ns_a, 80);
    let body = wget_in(&ns_b, &format!("http://{}:80/index.html", ips_a[0]));
    assert_eq!(body.as_deref(), Some("hello from 80\n"));
}

#[test]
fn static_ip_is_honoured() {
    if !prerequisites("static_ip_is_honoured") {
        return;
    }
    let mut env = Env::new(2);
    let wanted: IpAddr = "10.231.2.77".parse().unwrap();
    let (_id, ns, ips) = env.setup(1, env.spec(), Some(wanted), vec![]);
    assert_eq!(ips, [wanted]);
    let addr = in_netns(&ns, &["ip", "-4", "-o", "addr", "show", "dev", "eth0"]);
    assert!(
        String::from_utf8_lossy(&addr.stdout).contains("10.231.2.77/24"),
        "{}",
        String::from_utf8_lossy(&addr.stdout)
    );
}

#[test]
fn published_port_is_reachable_from_the_host() {
    if !prerequisites("published_port_is_reachable_from_the_host") {
        return;
    }
    let mut env = Env::new(3);
    let on_gateway = test_port(3);
    let on_localhost = on_gateway + 1000;
    let ports = vec![
        PortMapping {
            container_port: 80,
            host_port: Some(on_gateway),
            protocol: Protocol::Tcp,
            host_ip: Some(env.gateway()),
        },
        PortMapping {
            container_port: 80,
            host_port: Some(on_localhost),
            protocol: Protocol::Tcp,
            host_ip: Some("127.0.0.1".parse().unwrap()),
        },
    ];
    let (_id, ns, _ips) = env.setup(1, env.spec(), None, ports);
    env.spawn_httpd(&ns, 80);
    let via_gateway = wget(&format!("http://{}:{on_gateway}/index.html", env.gateway()));
    assert_eq!(via_gateway.as_deref(), Some("hello from 80\n"));
    let via_localhost = wget(&format!("http://127.0.0.1:{on_localhost}/index.html"));
    assert_eq!(via_localhost.as_deref(), Some("hello from 80\n"));
}

#[test]
fn internal_network_has_no_default_route() {
    if !prerequisites("internal_network_has_no_default_route") {
        return;
    }
    let mut env = Env::new(4);
    let spec = NetworkSpec {
        internal: true,
        ..env.spec()
    };
    let (_a, ns_a, _) = env.setup(1, spec.clone(), None, vec![]);
    let (_b, _ns_b, ips_b) = env.setup(2, spec, None, vec![]);
    let routes = in_netns(&ns_a, &["ip", "route", "show"]);
    let routes = String::from_utf8_lossy(&routes.stdout);
    assert!(!routes.contains("default"), "{routes}");
    assert!(routes.contains("10.231.4.0/24"), "{routes}");
    assert!(
        ping(&ns_a, ips_b[0]),
        "containers on an internal network reach each other"
    );
    let bridge_addrs =
        run(Command::new("ip").args(["-4", "-o", "addr", "show", "dev", &env.bridge]));
    assert!(String::from_utf8_lossy(&bridge_addrs.stdout)
        .trim()
        .is_empty());
}

#[test]
fn teardown_leaves_nothing_and_is_idempotent() {
    if !prerequisites("teardown_leaves_nothing_and_is_idempotent") {
        return;
    }
    let mut env = Env::new(5);
    let port = test_port(5);
    let ports = vec![PortMapping {
        container_port: 80,
        host_port: Some(port),
        protocol: Protocol::Tcp,
        host_ip: Some(env.gateway()),
    }];
    let (id, ns, _) = env.setup(1, env.spec(), None, ports);
    let (plain, _, _) = env.setup(2, env.spec(), None, vec![]);
    assert!(netns::is_mounted(&ns));
    assert_eq!(reservations(&env.net).len(), 2);
    let checks = env.net.check(&plain).unwrap();
    assert_eq!(checks.len(), 1);
    assert!(checks[0].1.is_ok(), "{:?}", checks[0].1);
    // With ports too: berth skips portmap's CHECK for IPv4-only containers
    // (containernetworking/plugins#819 would fail it).
    let checks = env.net.check(&id).unwrap();
    assert!(checks[0].1.is_ok(), "{:?}", checks[0].1);
    env.net.teardown(&plain).unwrap();
    env.net.teardown(&id).unwrap();
    assert_eq!(env.leftovers(&id), Vec::<String>::new());
    assert_eq!(env.leftovers(&plain), Vec::<String>::new());
    env.net.teardown(&id).unwrap();
    assert!(env.net.attachments(&id).is_empty());
}

#[test]
fn crash_between_add_start_and_result_is_cleaned_up() {
    if !prerequisites("crash_between_add_start_and_result_is_cleaned_up") {
        return;
    }
    let mut env = Env::new(6);
    let id = env.container(1);
    let def = env.def(env.spec());
    let ns = env.net.netns_path(&id);
    netns::create(&ns).unwrap();
    let mut caps = Map::new();
    caps.insert(
        "portMappings".into(),
        json!([{"hostPort": test_port(6), "containerPort": 80, "protocol": "tcp", "hostIP": env.gateway().to_string()}]),
    );
    let record = Record {
        container: id.clone(),
        network: def.name.clone(),
        index: 0,
        aliases: vec![],
        conflist: env.net.conflist(&def).unwrap(),
        runtime: RuntimeConf {
            container_id: id.clone(),
            netns: Some(ns.clone()),
            ifname: "eth0".into(),
            args: vec![("IgnoreUnknown".into(), "1".into())],
            capability_args: caps,
        },
        result: None,
        partial: None,
        rebuilt: false,
    };
    // The started marker, then the ADD recording partial results as setup
    // does, "killed" after the last plugin but before the final record.
    let cache = env.net.cache();
    cache.write(&record).unwrap();
    let mut partial = record.clone();
    env.net
        .invoker()
        .add_with(&record.conflist, &record.runtime, |result| {
            partial.partial = Some(result.clone());
            cache.write(&partial).map_err(Into::into)
        })
        .unwrap();
    let cached = cache.load(&id).unwrap();
    assert!(cached[0].result.is_none() && cached[0].partial.is_some());
    assert_eq!(reservations(&env.net).len(), 1);
    assert_eq!(
        env.net.sweep_stale(std::slice::from_ref(&id)).unwrap(),
        0,
        "live: untouched"
    );
    assert!(env.net.sweep_stale(&[]).unwrap() >= 1);
    assert_eq!(env.leftovers(&id), Vec::<String>::new());
}

#[test]
fn reboot_leftovers_are_swept() {
    if !prerequisites("reboot_leftovers_are_swept") {
        return;
    }
    let mut env = Env::new(7);
    let (kept, kept_ns, _) = env.setup(1, env.spec(), None, vec![]);
    // A reservation whose container berth has no record of at all (as if
    // the root's cache were lost), written the way host-local writes it.
    let lost = env.container(2);
    let net_dir = reservations(&env.net)[0].parent().unwrap().to_path_buf();
    fs::write(net_dir.join("10.231.7.99"), format!("{lost}\r\neth0")).unwrap();
    assert_eq!(reservations(&env.net).len(), 2);
    // "Reboot": every namespace and the whole state dir vanish; the root
    // (cache, reservations) stays.
    netns::remove(&kept_ns).unwrap();
    fs::remove_dir_all(&env.net.layout.state).unwrap();
    // The kernel destroys an unreferenced namespace (and its veths)
    // asynchronously; after a real reboot they are simply gone.
    wait_for_no_veths(&env.bridge);
    let removed = env.net.sweep_stale(&[]).unwrap();
    assert_eq!(
        removed, 2,
        "one cached container torn down, one orphan reservation"
    );
    env.net.teardown(&kept).unwrap();
    assert_eq!(env.leftovers(&kept), Vec::<String>::new());
    assert_eq!(env.leftovers(&lost), Vec::<String>::new());
}

#[test]
fn fifty_setup_teardown_cycles_leave_no_reservations() {
    if !prerequisites("fifty_setup_teardown_cycles_leave_no_reservations") {
        return;
    }
    let mut env = Env::new(8);
    for cycle in 0..50 {
        let (id, _, ips) = env.setup(cycle, env.spec(), None, vec![]);
        assert_eq!(ips.len(), 1);
        env.net.teardown(&id).unwrap();
    }
    assert_eq!(reservations(&env.net), Vec::<PathBuf>::new());
    let links = run(Command::new("ip").args(["-o", "link", "show", "master", &env.bridge]));
    assert!(String::from_utf8_lossy(&links.stdout).trim().is_empty());
}

#[test]
fn failed_setup_rolls_back_every_network() {
    if !prerequisites("failed_setup_rolls_back_every_network") {
        return;
    }
    let mut env = Env::new(9);
    let id = env.container(1);
    let broken = NetworkDef {
        name: "tbroken9".into(),
        spec: NetworkSpec {
            driver: berth::manifest::types::NetworkDriver::Macvlan,
            parent: Some("nosuchif9".into()),
            subnet: Some("10.231.109.0/24".parse().unwrap()),
            ..NetworkSpec::default()
        },
    };
    let req = AttachRequest {
        container: &id,
        networks: vec![
            NetworkRequest {
                def: env.def(env.spec()),
                ip: None,
                aliases: vec![],
            },
            NetworkRequest {
                def: broken,
                ip: None,
                aliases: vec![],
            },
        ],
        ports: vec![],
    };
    let error = env.net.setup(&req).unwrap_err().to_string();
    assert!(
        error.contains("tbroken9") && error.contains("macvlan"),
        "{error}"
    );
    assert!(!error.contains("cleaning up also failed"), "{error}");
    assert_eq!(env.leftovers(&id), Vec::<String>::new());
}
