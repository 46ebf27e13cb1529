//! Networking through `berth apply`, as root with the real CNI plugins: by
//! name and alias, a static IP, a published port, an internal network
//! without a gateway, `none` and `host`; then `berth delete` leaves no veth,
//! bridge, pinned netns, IPAM reservation or cached result behind. The test
//! uses its own subnets and bridges and sends traffic only between the host
//! and the namespaces it made.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::host::link_exists;
use common::site::{container_yaml as container, Site};
use common::{cli, prereq};

/// A [`Site`] with two bridges, two subnets and a host port of its own.
struct Net {
    site: Site,
    bridges: [String; 2],
    subnets: [String; 2],
    port: u16,
}

common::deref_to!(Net, site: Site);

impl Net {
    fn new() -> Self {
        let site = Site::new("na");
        let bridges = [format!("a{}", site.tag), format!("i{}", site.tag)];
        for bridge in &bridges {
            site.own_bridge(bridge);
        }
        let pid = std::process::id();
        let third = pid % 250;
        Net {
            site,
            bridges,
            subnets: [format!("10.248.{third}"), format!("10.249.{third}")],
            port: 50_000 + (pid % 10_000) as u16,
        }
    }

    fn with_set(&self, verb: &str, extra: &[&str]) {
        cli::succeeded(&format!("berth {verb}"), &self.run_set(verb, extra));
    }

    /// The container's output once it contains `marker`.
    fn logs_with(&self, name: &str, marker: &str) -> String {
        eventually(&format!("{marker:?} in the logs of {name}"), || {
            let logs = self.ok(&["logs", name]);
            logs.contains(marker).then_some(logs)
        })
    }
}

fn eventually<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn ready(test: &str) -> bool {
    prereq::require_networking(test)
        && prereq::require_binary("busybox", "busybox-static").is_some()
}

#[test]
fn networks_from_manifests_resolve_publish_isolate_and_leave_nothing() {
    if !ready("networks_from_manifests_resolve_publish_isolate_and_leave_nothing") {
        return;
    }
    let site = Net::new();
    let [front, back] = &site.subnets;
    site.write(
        "networks.yaml",
        &format!(
            "apiVersion: berth/v1\nkind: Network\nmetadata:\n  name: afront\nspec:\n  driver: bridge\n  bridge: {}\n  subnet: {front}.0/24\n---\napiVersion: berth/v1\nkind: Network\nmetadata:\n  name: aback\nspec:\n  driver: bridge\n  bridge: {}\n  subnet: {back}.0/24\n  internal: true\n",
            site.bridges[0], site.bridges[1]
        ),
    );
    site.write(
        "web.yaml",
        &container(
            "aweb",
            &format!(
                "  command: [sh, -c, \"echo hello > /tmp/index.html; exec busybox httpd -f -p 80 -h /tmp\"]\n  networks:\n    - name: afront\n      ip: {front}.77\n      aliases: [www]\n  ports:\n    - containerPort: 80\n      hostPort: {}\n      hostIP: 127.0.0.1\n",
                site.port
            ),
        ),
    );
    site.write(
        "client.yaml",
        &container(
            "aclient",
            "  command: [sleep, \"1000\"]\n  networks: [afront]\n",
        ),
    );
    site.write(
        "inner.yaml",
        &container(
            "ainner",
            "  command: [sh, -c, \"ip route; echo routes-done; exec sleep 1000\"]\n  networks: [aback]\n",
        ),
    );
    site.write(
        "modes.yaml",
        &format!(
            "{}---\n{}",
            container(
                "anone",
                "  command: [sh, -c, \"ls /sys/class/net; echo none-done; exec sleep 1000\"]\n  networkMode: none\n"
            ),
            // Started side by side with the others, it may run before the
            // first attachment creates the bridge: it waits for it (60 s).
            container(
                "ahost",
                &format!(
                    "  command: [sh, -c, \"for i in $(seq 600); do [ -e /sys/class/net/{bridge} ] && break; sleep 0.1; done; ls /sys/class/net; echo host-done; exec sleep 1000\"]\n  networkMode: host\n",
                    bridge = site.bridges[0]
                )
            )
        ),
    );
    site.with_set("apply", &["--wait", "--timeout", "60s"]);

    // By name and by alias, from another container on the network.
    for target in ["aweb", "www"] {
        let got = site.ok(&[
            "exec",
            "aclient",
            "--",
            "sh",
            "-c",
            &format!("for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O - http://{target}/ && exit 0; sleep 0.3; done; exit 1"),
        ]);
        assert_eq!(got, "hello\n", "{target}");
    }
    // The static address, in the container and in `network inspect`.
    let addr = site.ok(&["exec", "aweb", "--", "ip", "-4", "addr", "show", "eth0"]);
    assert!(addr.contains(&format!("inet {front}.77/24")), "{addr}");
    let network: serde_json::Value =
        serde_json::from_str(&site.ok(&["network", "inspect", "afront"])).unwrap();
    let members = network["network"]["containers"].as_array().unwrap();
    assert!(members
        .iter()
        .any(|m| m["container"] == "aweb" && m["ips"][0] == format!("{front}.77")));
    // The published port, from the host.
    let url = format!("http://127.0.0.1:{}/", site.port);
    eventually("the published port", || {
        let out = Command::new("busybox")
            .args(["wget", "-q", "-O", "-", &url])
            .output()
            .ok()?;
        (out.stdout == b"hello\n").then_some(())
    });
    // Internal: no default route. none: loopback only. host: the host's links.
    let routes = site.logs_with("ainner", "routes-done");
    assert!(routes.contains(&format!("{back}.0/24")), "{routes}");
    assert!(!routes.contains("default"), "{routes}");
    assert_eq!(site.logs_with("anone", "none-done"), "lo\nnone-done\n");
    let host = site.logs_with("ahost", "host-done");
    assert!(
        host.lines().any(|l| l == "lo") && host.lines().any(|l| l == site.bridges[0]),
        "{host}"
    );

    // Delete: nothing the networks held is left.
    let root = site.root();
    let state = site.state();
    site.with_set("delete", &[]);
    for bridge in &site.bridges {
        assert!(!link_exists(bridge), "bridge {bridge} is gone");
    }
    let pinned: Vec<String> = entries(&state.join("netns"))
        .into_iter()
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    assert_eq!(pinned, Vec::<String>::new(), "no pinned netns");
    assert_eq!(
        entries(&root.join("cni/ipam")),
        Vec::<String>::new(),
        "no IPAM state"
    );
    assert_eq!(
        entries(&root.join("cni/results")),
        Vec::<String>::new(),
        "no cached results"
    );
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&site.path().display().to_string()),
        "no mount under the test's root or state: {mounts}"
    );
}
