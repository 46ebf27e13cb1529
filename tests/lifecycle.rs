//! The reconciler's lifecycle verbs end to end, as root: `berth delete`
//! (volumes kept unless asked, objects others use left alone), `apply
//! --wait`, one reconciler per state root, a changed network replaced with
//! its containers, broken network plumbing repaired by the next pass, and
//! the records `ps`, `inspect` and `volume` show.

mod common;

use std::fs;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::host::link_exists;
use common::prereq;
use common::site::{container_yaml, Site};

/// A [`Site`] with a subnet third octet (10.246.x / 10.247.x) and a bridge
/// of its own, apart from every other test's.
struct Host {
    site: Site,
    third: u32,
    bridge: String,
}

common::deref_to!(Host, site: Site);

impl Host {
    fn new(n: u32) -> Self {
        let site = Site::new("lf");
        let bridge = format!("b{}", site.tag);
        site.own_bridge(&bridge);
        Host {
            site,
            third: (std::process::id() % 50) * 5 + n,
            bridge,
        }
    }

    /// `ps -a -o json` as (kind, name) pairs: containers, networks, volumes.
    fn objects(&self) -> Vec<(String, String)> {
        let ps: serde_json::Value =
            serde_json::from_str(&self.ok(&["ps", "-a", "-o", "json"])).unwrap();
        ps.as_array()
            .unwrap()
            .iter()
            .map(|o| {
                (
                    o["kind"].as_str().unwrap().to_string(),
                    o["id"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    fn network_yaml(&self, name: &str, second_octet: u32) -> String {
        format!(
            "apiVersion: berth/v1\nkind: Network\nmetadata:\n  name: {name}\nspec:\n  driver: bridge\n  bridge: {bridge}\n  subnet: 10.{second_octet}.{third}.0/24\n",
            bridge = self.bridge,
            third = self.third
        )
    }
}

fn succeeded(output: Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{}:\n{text}", output.status);
    text
}

fn failed(output: Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!output.status.success(), "expected a failure:\n{text}");
    text
}

fn ready(test: &str) -> bool {
    prereq::require_networking(test) && prereq::require_binary("nsenter", "util-linux").is_some()
}

#[test]
fn delete_removes_what_the_set_declares_keeps_volumes_and_spares_others() {
    if !ready("delete_removes_what_the_set_declares_keeps_volumes_and_spares_others") {
        return;
    }
    let host = Host::new(0);
    host.write("net.yaml", &host.network_yaml("lnet", 246));
    host.write(
        "vol.yaml",
        "apiVersion: berth/v1\nkind: Volume\nmetadata:\n  name: ldata\n",
    );
    host.write(
        "db.yaml",
        &container_yaml(
            "ldb",
            "  command: [sleep, \"1000\"]\n  networks: [lnet]\n  mounts:\n    - {type: volume, source: ldata, target: /data}\n",
        ),
    );
    host.write(
        "app.yaml",
        &container_yaml(
            "lapp",
            "  command: [sleep, \"1000\"]\n  networks: [lnet]\n  dependsOn: [ldb]\n",
        ),
    );
    host.apply(&[]);
    let mut objects = host.objects();
    objects.sort();
    assert_eq!(
        objects,
        [
            ("container".into(), "lapp".into()),
            ("container".into(), "ldb".into()),
            ("network".into(), "lnet".into()),
            ("volume".into(), "ldata".into()),
        ]
    );
    let inspect = host.inspect("lapp");
    assert_eq!(inspect["lastPlanReason"], "declared, does not exist");
    assert_eq!(inspect["events"][0]["verb"], "create");
    let volumes: serde_json::Value =
        serde_json::from_str(&host.ok(&["volume", "ls", "-o", "json"])).unwrap();
    assert_eq!(volumes[0]["name"], "ldata");
    assert_eq!(volumes[0]["usedBy"][0], "ldb");
    let volume: serde_json::Value =
        serde_json::from_str(&host.ok(&["volume", "inspect", "ldata"])).unwrap();
    assert_eq!(volume["usedBy"][0], "ldb");
    assert!(volume["record"]["file"]
        .as_str()
        .unwrap()
        .ends_with("/vol.yaml"));
    assert_eq!(volume["events"][0]["verb"], "create");
    let refused = failed(host.run(&["volume", "rm", "ldata"]));
    assert!(refused.contains("mounted by ldb"), "{refused}");

    // An ad-hoc container on the network keeps the network alive.
    host.ok(&[
        "run",
        "-d",
        "--name",
        "ladhoc",
        "--net",
        "lnet",
        &format!("oci-layout:{}", host.busybox_dir().display()),
        "sleep",
        "1000",
    ]);
    let first = failed(host.run_set("delete", &[]));
    let app = first.find("delete Container lapp").expect(&first);
    let db = first.find("delete Container ldb").expect(&first);
    assert!(app < db, "dependents go first: {first}");
    assert!(
        first.contains("left Network lnet: still used by ladhoc"),
        "{first}"
    );
    assert!(first.contains("kept volumes ldata"), "{first}");
    assert!(link_exists(&host.bridge));

    host.ok(&["rm", "-f", "ladhoc"]);
    let second = succeeded(host.run_set("delete", &[]));
    assert!(second.contains("delete Network lnet"), "{second}");
    assert!(
        !link_exists(&host.bridge),
        "the bridge goes with its network"
    );
    assert_eq!(
        host.objects(),
        [("volume".to_string(), "ldata".to_string())]
    );
    let third = succeeded(host.run_set("delete", &["--volumes", "-o", "json"]));
    let report: serde_json::Value = serde_json::from_str(&third).unwrap();
    assert_eq!(report["outcomes"][0]["name"], "ldata");
    assert!(host.objects().is_empty());
    assert!(!host.site.root().join("volumes/ldata").exists());
}

#[test]
fn apply_wait_waits_for_health_and_gives_up_on_the_dead() {
    if !ready("apply_wait_waits_for_health_and_gives_up_on_the_dead") {
        return;
    }
    let host = Host::new(1);
    host.write(
        "slow.yaml",
        &container_yaml(
            "lslow",
            "  command: [sh, -c, \"sleep 2; touch /tmp/ready; exec sleep 1000\"]\n  networkMode: none\n  healthcheck:\n    exec: [test, -f, /tmp/ready]\n    interval: 300ms\n",
        ),
    );
    let started = Instant::now();
    host.apply(&["--wait"]);
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_eq!(
        host.inspect("lslow")["status"]["health"]["state"],
        "healthy"
    );

    host.write(
        "dies.yaml",
        &container_yaml(
            "ldies",
            "  command: [sh, -c, \"exit 3\"]\n  networkMode: none\n  restart:\n    policy: never\n",
        ),
    );
    let started = Instant::now();
    let out = failed(host.run_set("apply", &["--wait", "--timeout", "60s"]));
    assert!(
        out.contains("ldies: it exited with code 3 and will not restart"),
        "{out}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "a dead container ends the wait"
    );
}

#[test]
fn a_second_reconciler_waits_then_fails_naming_the_lock() {
    if !ready("a_second_reconciler_waits_then_fails_naming_the_lock") {
        return;
    }
    let host = Host::new(2);
    host.write(
        "one.yaml",
        &container_yaml(
            "lone",
            "  command: [sleep, \"1000\"]\n  networkMode: none\n",
        ),
    );
    let lock = host.site.state().join("reconcile.lock");
    fs::create_dir_all(lock.parent().unwrap()).unwrap();
    // flock(2) locks belong to the open file: this test holds it as
    // another berth would.
    let file = fs::File::create(&lock).unwrap();
    let holder = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
        .map_err(|(_, e)| e)
        .unwrap();
    let out = failed(host.run_set("apply", &["--timeout", "1s"]));
    assert!(out.contains("waiting for another reconciler"), "{out}");
    assert!(out.contains("another reconciler still runs on"), "{out}");
    assert!(host.objects().is_empty(), "nothing was done: {out}");
    drop(holder);
    host.apply(&[]);
    host.pid_of("lone");
}

#[test]
fn a_changed_network_is_replaced_together_with_its_containers() {
    if !ready("a_changed_network_is_replaced_together_with_its_containers") {
        return;
    }
    let host = Host::new(3);
    host.write("net.yaml", &host.network_yaml("lrnet", 246));
    host.write(
        "c.yaml",
        &container_yaml("lrc", "  command: [sleep, \"1000\"]\n  networks: [lrnet]\n"),
    );
    host.apply(&[]);
    let old = format!("10.246.{}.", host.third);
    let new = format!("10.247.{}.", host.third);
    let addresses = |bridge: &str| {
        String::from_utf8_lossy(
            &Command::new("ip")
                .args(["-4", "-o", "addr", "show", "dev", bridge])
                .output()
                .unwrap()
                .stdout,
        )
        .into_owned()
    };
    assert!(addresses(&host.bridge).contains(&old));

    host.write("net.yaml", &host.network_yaml("lrnet", 247));
    let plan = host.run_set("plan", &[]);
    assert_eq!(plan.status.code(), Some(2));
    let plan = String::from_utf8_lossy(&plan.stdout).into_owned();
    assert!(
        plan.contains("leaves the network before it is replaced"),
        "{plan}"
    );
    let out = host.apply(&[]);
    let leave = out.find("delete Container lrc").expect(&out);
    let replace = out.find("replace Network lrnet").expect(&out);
    let back = out.find("create Container lrc").expect(&out);
    assert!(leave < replace && replace < back, "{out}");
    let network: serde_json::Value =
        serde_json::from_str(&host.ok(&["network", "inspect", "lrnet"])).unwrap();
    let ip = network["network"]["containers"][0]["ips"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert!(ip.starts_with(&new), "{ip} is on the new subnet");
    let now = addresses(&host.bridge);
    assert!(now.contains(&new) && !now.contains(&old), "{now}");
    assert_eq!(network["events"][1]["verb"], "replace");
}

#[test]
fn broken_network_plumbing_is_noticed_and_repaired() {
    if !ready("broken_network_plumbing_is_noticed_and_repaired") {
        return;
    }
    let host = Host::new(4);
    host.write("net.yaml", &host.network_yaml("lfnet", 246));
    for name in ["lcut", "lgone"] {
        host.write(
            &format!("{name}.yaml"),
            &container_yaml(name, "  command: [sleep, \"1000\"]\n  networks: [lfnet]\n"),
        );
    }
    host.apply(&[]);
    let (cut, gone) = (host.pid_of("lcut"), host.pid_of("lgone"));

    // Behind berth's back: lcut loses its address, lgone its pinned netns.
    let netns = host.site.state().join("netns");
    let flushed = Command::new("nsenter")
        .arg(format!("--net={}", netns.join("lcut").display()))
        .args(["ip", "addr", "flush", "dev", "eth0"])
        .status()
        .unwrap();
    assert!(flushed.success());
    let pinned = netns.join("lgone");
    assert!(Command::new("umount")
        .arg(&pinned)
        .status()
        .unwrap()
        .success());
    fs::remove_file(&pinned).unwrap();

    let plan = host.run_set("plan", &[]);
    assert_eq!(plan.status.code(), Some(2));
    let plan = String::from_utf8_lossy(&plan.stdout).into_owned();
    assert!(plan.contains("CNI CHECK of network lfnet failed"), "{plan}");
    assert!(plan.contains("its network namespace is gone"), "{plan}");
    let out = host.apply(&[]);
    assert!(
        out.contains("repair Container lcut: drift: CNI CHECK"),
        "{out}"
    );
    assert!(
        out.contains("repair Container lgone: drift: its network namespace is gone"),
        "{out}"
    );
    assert_ne!(host.pid_of("lcut"), cut);
    assert_ne!(host.pid_of("lgone"), gone);
    assert!(netns::is_pinned(&pinned));
    let again = host.run_set("plan", &[]);
    assert_eq!(again.status.code(), Some(0), "{again:?}");
    assert_eq!(
        host.inspect("lgone")["lastPlanReason"],
        "drift: its network namespace is gone"
    );
}

mod netns {
    /// Whether a network namespace is bind-mounted at `path`.
    pub fn is_pinned(path: &std::path::Path) -> bool {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .any(|l| l.split(' ').nth(4) == Some(&path.display().to_string()))
    }
}
