//! Networking through `berth run`, as root with the real CNI plugins: name
//! resolution, static IPs, published ports, internal networks, `none` and
//! `host` modes, and leak-free teardown. Every test has its own subnet and
//! bridge and sends traffic only between the host and namespaces it made.

mod common;

use std::fs;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use berth::manifest::NetworkSpec;
use berth::network::store::{NetworkRecord, NetworkStore};
use common::instance::{self, Instance};
use common::prereq;

/// An [`Instance`] with a busybox layout and one network (bridge and
/// subnet) of its own.
struct Net {
    instance: Instance,
    image: String,
    bridge: String,
    subnet_prefix: String,
    network: String,
}

common::deref_to!(Net, instance: Instance);

impl Net {
    /// host-local's reservations in `ipam` (a network's directory) from
    /// this test's subnet.
    fn reservations(&self, ipam: &std::path::Path) -> usize {
        fs::read_dir(ipam)
            .map(|d| {
                d.flatten()
                    .filter(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .starts_with(&self.subnet_prefix)
                    })
                    .count()
            })
            .unwrap_or(0)
    }

    /// A berth instance with one network of its own (`internal` optional).
    fn new(internal: bool) -> Self {
        let n = instance::serial();
        let pid = std::process::id();
        let instance = Instance::with_busybox();
        let third = (pid % 200) as u8 + n as u8 + 20;
        let subnet_prefix = format!("10.233.{third}");
        let bridge = format!("bq{}x{n}", pid % 100_000);
        instance.own_bridge(&bridge);
        let network = format!("net{n}");
        let spec: NetworkSpec = serde_json::from_value(serde_json::json!({
            "subnet": format!("{subnet_prefix}.0/24"),
            "bridge": bridge,
            "internal": internal,
        }))
        .unwrap();
        NetworkStore::new(instance.root().join("networks"))
            .put(&NetworkRecord {
                name: network.clone(),
                spec,
                source: None,
                file: None,
                line: None,
                fingerprint: None,
            })
            .unwrap();
        Net {
            image: instance.busybox(),
            instance,
            bridge,
            subnet_prefix,
            network,
        }
    }

    fn berth(&self, args: &[&str]) -> Output {
        self.instance.run(args)
    }

    /// Runs a command in a new container and returns its stdout.
    fn run(&self, hint: &str, flags: &[&str], command: &[&str]) -> String {
        let name = self.unique_name(hint);
        let mut args = vec!["run", "--rm", "--name", &name];
        args.extend_from_slice(flags);
        args.push(&self.image);
        args.extend_from_slice(command);
        self.ok(&args)
    }
}

fn ready(test: &str) -> bool {
    prereq::require_networking(test)
}

fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn containers_on_one_network_reach_each_other_by_name_and_alias() {
    if !ready("containers_on_one_network_reach_each_other_by_name_and_alias") {
        return;
    }
    let net = Net::new(false);
    let server = net.unique_name("web");
    net.start(
        &server,
        &["--net", &net.network],
        &[
            "sh",
            "-c",
            "echo hello > /tmp/index.html; busybox httpd -f -p 80 -h /tmp",
        ],
    );
    wait_until("the server", || {
        net.berth(&["inspect", &server]).status.success()
    });
    let got = net.run("client", &["--net", &net.network], &["sh", "-c", &format!("for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O - http://{server}/ && exit 0; sleep 0.3; done; exit 1")]);
    assert_eq!(got, "hello\n");
}

#[test]
fn a_published_port_is_reachable_from_the_host_and_shown_by_ps() {
    if !ready("a_published_port_is_reachable_from_the_host_and_shown_by_ps") {
        return;
    }
    let net = Net::new(false);
    let server = net.unique_name("published");
    let port = 20_000 + (std::process::id() % 20_000) as u16;
    let publish = format!("127.0.0.1:{port}:80");
    // The same number over UDP: no TCP publisher can hold it.
    let publish_udp = format!("{port}:53/udp");
    net.start(
        &server,
        &["--net", &net.network, "-p", &publish, "-p", &publish_udp],
        &[
            "sh",
            "-c",
            "echo published > /tmp/index.html; busybox httpd -f -p 80 -h /tmp",
        ],
    );
    let mut body = String::new();
    wait_until("the published port", || {
        let out = Command::new("busybox")
            .args([
                "wget",
                "-q",
                "-O",
                "-",
                &format!("http://127.0.0.1:{port}/"),
            ])
            .output();
        body = out
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        body == "published\n"
    });

    let table = net.ok(&["ps"]);
    let header = table.lines().next().unwrap_or_default();
    assert!(header.contains(" PORTS "), "{table}");
    let row = table
        .lines()
        .find(|l| l.contains(&server))
        .unwrap_or_else(|| panic!("{server} is listed: {table}"));
    assert!(
        row.contains(&format!("127.0.0.1:{port}->80/tcp,{port}->53/udp")),
        "{table}"
    );
    let ps: serde_json::Value = serde_json::from_str(&net.ok(&["ps", "-o", "json"])).unwrap();
    let listed = ps
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == server.as_str())
        .unwrap_or_else(|| panic!("{server} is listed: {ps}"));
    assert_eq!(
        listed["ports"],
        serde_json::json!([
            {"containerPort": 80, "hostPort": port, "protocol": "tcp", "hostIP": "127.0.0.1"},
            {"containerPort": 53, "hostPort": port, "protocol": "udp"},
        ]),
        "{listed}"
    );
}

#[test]
fn a_static_ip_is_honoured_and_internal_networks_have_no_gateway() {
    if !ready("a_static_ip_is_honoured_and_internal_networks_have_no_gateway") {
        return;
    }
    let net = Net::new(true);
    let name = net.unique_name("static");
    let ip = format!("{}.77", net.subnet_prefix);
    // The CLI's --net takes names; a static address goes through the manifest form.
    let spec = serde_json::json!({"image": net.image, "networks": [{"name": net.network, "ip": ip}], "args": ["sh", "-c", "ip -4 addr show eth0; ip route"], "restart": {"policy": "never"}});
    let container: berth::manifest::ContainerSpec = serde_json::from_value(spec).unwrap();
    let paths = net.layout();
    let mut engine = berth::engine::Engine::open(&paths, None).unwrap();
    engine.shim_binary = env!("CARGO_BIN_EXE_berth").into();
    engine
        .create(
            berth::engine::CreateRequest {
                id: berth::manifest::names::ContainerId::parse(&name).unwrap(),
                image: berth::image::ImageSource::parse(&container.image)
                    .unwrap()
                    .resolve_relative_to(net.path()),
                pull_policy: container.image_pull_policy,
                spec: container,
                base_dir: net.path().to_path_buf(),
                origin: berth::engine::Origin::Run,
                fingerprint: None,
                stdin: false,
                berth_env: vec![],
                log: Default::default(),
                ephemeral: false,
                console_socket: None,
                labels: Default::default(),
            },
            &berth::image::NoProgress,
        )
        .unwrap();
    wait_until("exit", || {
        engine
            .dir(&name)
            .read_status()
            .ok()
            .flatten()
            .is_some_and(|s| s.phase == berth::runtime::container_dir::Phase::Exited)
    });
    let logs = net.ok(&["logs", &name]);
    assert!(logs.contains(&format!("inet {ip}/24")), "{logs}");
    assert!(
        !logs.contains("default via"),
        "internal: no default route: {logs}"
    );
}

#[test]
fn none_has_only_loopback_and_host_sees_the_hosts_interfaces() {
    if !ready("none_has_only_loopback_and_host_sees_the_hosts_interfaces") {
        return;
    }
    let net = Net::new(false);
    let none = net.run(
        "none",
        &["--net", "none"],
        &[
            "sh",
            "-c",
            "ls /sys/class/net; ip link show lo | grep -c UP",
        ],
    );
    assert_eq!(none, "lo\n1\n");
    let host = net.run("host", &["--net", "host"], &["ls", "/sys/class/net"]);
    let mut expected: Vec<String> = fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    expected.sort();
    let mut seen: Vec<String> = host.lines().map(str::to_string).collect();
    seen.sort();
    // Interfaces may come and go while parallel tests run; the host's own are there.
    assert!(
        seen.contains(&"lo".to_string()) && seen.len() > 1,
        "{seen:?} vs {expected:?}"
    );
}

#[test]
fn removing_a_container_leaves_no_veth_netns_reservation_or_cached_result() {
    if !ready("removing_a_container_leaves_no_veth_netns_reservation_or_cached_result") {
        return;
    }
    let net = Net::new(false);
    let name = net.unique_name("leak");
    net.start(&name, &["--net", &net.network], &["sleep", "1000"]);
    let root = net.root();
    let state = net.state();
    let ipam = root.join("cni/ipam").join(&net.network);
    let reservations = || net.reservations(&ipam);
    let veths = || {
        let out = Command::new("ip")
            .args(["-o", "link", "show", "master", &net.bridge])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).lines().count()
    };
    assert_eq!(reservations(), 1);
    assert_eq!(veths(), 1);
    assert!(state.join("netns").join(&name).exists());
    net.ok(&["rm", "-f", &name]);
    assert_eq!(reservations(), 0, "no IPAM reservation left");
    assert_eq!(veths(), 0, "no veth left on the bridge");
    assert!(
        !state.join("netns").join(&name).exists(),
        "no netns mount left"
    );
    assert!(!fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .contains(&format!("netns/{name}")));
    assert!(
        !root.join("cni/results").join(&name).exists(),
        "no cached result left"
    );
}

#[test]
fn a_network_in_use_cannot_be_removed_and_gc_sweeps_what_a_reboot_left() {
    if !ready("a_network_in_use_cannot_be_removed_and_gc_sweeps_what_a_reboot_left") {
        return;
    }
    let net = Net::new(false);
    let name = net.unique_name("user");
    net.start(&name, &["--net", &net.network], &["sleep", "1000"]);
    let refused = net.berth(&["network", "rm", &net.network]);
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains(&format!("in use by {name}")), "{message}");

    // A reboot: the engine state is gone, the container record too (as if
    // it had been removed while the host was down); the IPAM reservation and
    // cached result in the root remain until gc sweeps them.
    net.ok(&["stop", &name]);
    let state = net.state();
    let root = net.root();
    let _ = Command::new("umount")
        .args(["-l", &state.join("netns").join(&name).display().to_string()])
        .output();
    let _ = Command::new("umount")
        .args([
            "-l",
            &state
                .join("containers")
                .join(&name)
                .join("bundle/rootfs")
                .display()
                .to_string(),
        ])
        .output();
    fs::remove_dir_all(&state).unwrap();
    fs::remove_file(root.join("containers").join(format!("{name}.json"))).unwrap();
    let ipam = root.join("cni/ipam").join(&net.network);
    let reservations = || net.reservations(&ipam);
    assert_eq!(reservations(), 1);
    net.ok(&["gc"]);
    assert_eq!(reservations(), 0, "the stale reservation is swept");
    assert!(!root.join("cni/results").join(&name).exists());
    assert!(common::host::link_exists(&net.bridge));
    net.ok(&["network", "rm", &net.network]);
    assert!(
        !common::host::link_exists(&net.bridge),
        "network rm deletes its bridge"
    );
    assert!(!ipam.exists(), "network rm deletes its IPAM directory");
}
