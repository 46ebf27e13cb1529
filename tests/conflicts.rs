//! One writer per name, and conflicts refused before anything changes, as
//! root with real runc and CNI plugins: two manifest sets in one state root
//! (the site's tree and a second tree beside it) publishing one host port,
//! declaring one Network name or overlapping subnets; `berth run` against
//! `berth apply` on one container name, both ways and racing; and `run`,
//! `rm` waiting for the reconcile lock a running apply holds.
//!
//! Each test has its own state root, names from its pid and a counter, its
//! own bridges (deleted on drop), subnets in 10.236/16 and 10.237/16 and a
//! host port from its pid; traffic never leaves the host.

mod common;

use std::fs;
use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::site::{container_yaml as container, Site};
use common::{cli, host, prereq};
use serde_json::Value;

/// A [`Site`] with a second manifest tree (`other/`, beside `manifests/`,
/// so `oci-layout:../images/busybox` resolves there too).
struct Sets {
    site: Site,
    other: PathBuf,
}

common::deref_to!(Sets, site: Site);

impl Sets {
    fn new(prefix: &str) -> Self {
        let site = Site::new(prefix);
        let other = site.path().join("other");
        fs::create_dir_all(&other).unwrap();
        Sets { site, other }
    }

    fn write_other(&self, relative: &str, text: &str) {
        fs::write(self.other.join(relative), text).unwrap();
    }

    /// `berth VERB --allow-untrusted-manifests -f OTHER EXTRA...`.
    fn run_other(&self, verb: &str, extra: &[&str]) -> Output {
        let other = self.other.display().to_string();
        let mut args = vec![verb, "--allow-untrusted-manifests", "-f", &other];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// The second set's apply, expected to be refused: its stderr.
    fn other_apply_refused(&self) -> String {
        let started = Instant::now();
        let output = self.run_other("apply", &["--timeout", "60s"]);
        // Refused at once, before its first pass changes anything: far
        // sooner than the timeout it would otherwise wait out (the bound
        // is wide for a busy machine; the refusal itself takes a second).
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the refusal came after {:?}, not at once",
            started.elapsed()
        );
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(
            output.status.code(),
            Some(1),
            "the second apply is refused:\n{}{stderr}",
            String::from_utf8_lossy(&output.stdout)
        );
        assert!(stderr.contains("nothing was changed"), "{stderr}");
        stderr
    }

    /// The second set's `plan -o json`: exit 1 and the conflicts it lists.
    fn other_plan_conflicts(&self) -> Vec<Value> {
        let output = self.run_other("plan", &["-o", "json"]);
        assert_eq!(output.status.code(), Some(1), "plan refuses: {output:?}");
        let json: Value = serde_json::from_slice(&output.stdout).expect("plan prints JSON");
        json["conflicts"].as_array().cloned().unwrap_or_default()
    }

    fn manifests_file(&self, name: &str) -> String {
        self.manifests.join(name).display().to_string()
    }

    fn other_file(&self, name: &str) -> String {
        self.other.join(name).display().to_string()
    }
}

fn network_yaml(name: &str, bridge: &str, subnet: &str) -> String {
    format!(
        "apiVersion: berth/v1\nkind: Network\nmetadata:\n  name: {name}\nspec:\n  bridge: {bridge}\n  subnet: {subnet}\n"
    )
}

/// A third octet of this test process's own.
fn octet() -> u32 {
    std::process::id() % 250
}

fn origin_kind(site: &Site, name: &str) -> String {
    site.inspect(name)["record"]["origin"]["kind"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_host_port_two_sets_publish_is_refused_to_the_second_naming_both_places() {
    let test = "a_host_port_two_sets_publish_is_refused_to_the_second_naming_both_places";
    if !prereq::require_networking(test) {
        return;
    }
    let sets = Sets::new("cp");
    let tag = sets.tag.clone();
    let (bridge_a, bridge_b) = (format!("a{tag}"), format!("b{tag}"));
    sets.own_bridge(&bridge_a);
    sets.own_bridge(&bridge_b);
    let port = 41_000 + (std::process::id() % 9_000) as u16;
    let (first, second) = (format!("pa{tag}"), format!("pb{tag}"));
    let publish = format!(
        "  command: [sleep, \"1000\"]\n  networks: [net]\n  ports:\n    - {{containerPort: 80, hostPort: {port}}}\n"
    );
    sets.write(
        "net.yaml",
        &network_yaml("net", &bridge_a, &format!("10.236.{}.0/24", octet())),
    );
    sets.write("web.yaml", &container(&first, &publish));
    sets.apply(&[]);
    let pid = sets.pid_of(&first);
    let nat_rules = || -> Vec<String> {
        host::iptables_rules_with(&port.to_string())
            .into_iter()
            .filter(|rule| rule.contains("dport"))
            .collect()
    };
    let rules_before = nat_rules();
    assert!(!rules_before.is_empty(), "the first set's port is mapped");

    sets.write_other(
        "net.yaml",
        &network_yaml("net2", &bridge_b, &format!("10.237.{}.0/24", octet())),
    );
    sets.write_other(
        "web.yaml",
        &container(&second, &publish.replace("[net]", "[net2]")),
    );
    let refused = sets.other_apply_refused();
    // Where the second set asks for the port (line 10 of its file: the
    // ports entry), and where the first declared the container.
    let theirs = format!("{}:10:7: host port {port}/tcp", sets.other_file("web.yaml"));
    assert!(refused.contains(&theirs), "{refused}");
    let ours = format!(
        "published by container {first} of manifest set {}, declared at {}:4",
        fs::canonicalize(&sets.manifests).unwrap().display(),
        sets.manifests_file("web.yaml")
    );
    assert!(refused.contains(&ours), "{refused}");

    // Nothing changed: no container, network or NAT rule for the second;
    // the first runs on, the same process.
    assert!(sets.fails(&["inspect", &second]).contains("no container"));
    assert!(sets
        .fails(&["network", "inspect", "net2"])
        .contains("does not exist"));
    assert!(host::iptables_rules_with(&second).is_empty());
    assert_eq!(nat_rules(), rules_before);
    assert!(!host::link_exists(&bridge_b));
    assert_eq!(sets.pid_of(&first), pid);

    let conflicts = sets.other_plan_conflicts();
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert_eq!(
        conflicts[0]["ownerPlace"],
        format!("{}:4", sets.manifests_file("web.yaml"))
    );
}

#[test]
fn a_network_name_another_set_owns_is_refused_naming_the_owner() {
    if !prereq::require_apply("a_network_name_another_set_owns_is_refused_naming_the_owner") {
        return;
    }
    let sets = Sets::new("cn");
    let bridge = format!("n{}", sets.tag);
    sets.own_bridge(&bridge);
    let network = network_yaml("shared", &bridge, &format!("10.236.{}.0/24", octet()));
    sets.write("net.yaml", &network);
    sets.apply(&[]);
    // The same declaration in a second set: today shared, or taken over
    // when it differs; now the second set is refused.
    sets.write_other("net.yaml", &network);
    let refused = sets.other_apply_refused();
    let expected = format!(
        "{}:4:9: network shared already exists and belongs to manifest set {}, declared at {}:4",
        sets.other_file("net.yaml"),
        fs::canonicalize(&sets.manifests).unwrap().display(),
        sets.manifests_file("net.yaml")
    );
    assert!(refused.contains(&expected), "{refused}");
    let conflicts = sets.other_plan_conflicts();
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    let inspect: Value =
        serde_json::from_str(&sets.ok(&["network", "inspect", "shared", "-o", "json"])).unwrap();
    assert_eq!(
        inspect["network"]["source"],
        fs::canonicalize(&sets.manifests)
            .unwrap()
            .display()
            .to_string(),
        "the network is still the first set's: {inspect}"
    );
    let events = inspect["events"].as_array().map_or(0, Vec::len);
    assert_eq!(events, 1, "created once, never replaced: {inspect}");
}

#[test]
fn overlapping_subnets_of_two_sets_are_refused_naming_both_places() {
    if !prereq::require_apply("overlapping_subnets_of_two_sets_are_refused_naming_both_places") {
        return;
    }
    let sets = Sets::new("co");
    let (bridge_a, bridge_b) = (format!("a{}", sets.tag), format!("b{}", sets.tag));
    sets.own_bridge(&bridge_a);
    sets.own_bridge(&bridge_b);
    let wide = format!("10.236.{}.0/24", octet());
    let narrow = format!("10.236.{}.128/25", octet());
    sets.write("net.yaml", &network_yaml("wide", &bridge_a, &wide));
    sets.apply(&[]);
    sets.write_other("net.yaml", &network_yaml("narrow", &bridge_b, &narrow));
    let refused = sets.other_apply_refused();
    let expected = format!(
        "{}:7:11: subnet {narrow} of network narrow overlaps subnet {wide} of network wide (manifest set {}, declared at {}:4)",
        sets.other_file("net.yaml"),
        fs::canonicalize(&sets.manifests).unwrap().display(),
        sets.manifests_file("net.yaml")
    );
    assert!(refused.contains(&expected), "{refused}");
    assert!(sets
        .fails(&["network", "inspect", "narrow"])
        .contains("does not exist"));
    assert_eq!(sets.other_plan_conflicts().len(), 1);
}

#[test]
fn run_and_apply_never_take_a_name_over_from_each_other() {
    if !prereq::require_apply("run_and_apply_never_take_a_name_over_from_each_other") {
        return;
    }
    let site = Site::new("cw");
    let adhoc = site.unique_name("adhoc");
    let declared = site.unique_name("declared");
    site.start(&adhoc, &[], &["sleep", "1000"]);
    let adhoc_pid = site.pid_of(&adhoc);

    // apply of a set declaring the run container's name is refused.
    let body = "  command: [sleep, \"1000\"]\n  networkMode: none\n";
    site.write("adhoc.yaml", &container(&adhoc, body));
    let output = site
        .apply_command(&[])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let expected = format!(
        "{}:4:9: container {adhoc} already exists and belongs to berth run; berth will not take it over",
        site.manifests.join("adhoc.yaml").display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
    assert_eq!(site.pid_of(&adhoc), adhoc_pid, "the run container survives");
    assert_eq!(origin_kind(&site, &adhoc), "run");

    // The reverse: a name an applied set owns is refused to `berth run`.
    site.remove("adhoc.yaml");
    site.write("declared.yaml", &container(&declared, body));
    site.apply(&[]);
    let declared_pid = site.pid_of(&declared);
    let image = site.busybox();
    let refused = site.fails(&["run", "-d", "--name", &declared, &image, "sleep", "1"]);
    let expected = format!(
        "berth run --name {declared}: container {declared} already exists and belongs to manifest set {}, declared at {}:4",
        fs::canonicalize(&site.manifests).unwrap().display(),
        site.manifests.join("declared.yaml").display()
    );
    assert!(refused.contains(&expected), "{refused}");
    assert_eq!(site.pid_of(&declared), declared_pid);
    assert_eq!(origin_kind(&site, &declared), "manifest");
}

/// Regression: `berth run --name X` while an apply declaring X ran was
/// silently destroyed (26 of 26): apply had planned to create X before the
/// run's record existed, then removed "its" leftover. Now one of the two
/// is refused, whichever comes first, and the run container is never
/// removed by apply.
#[test]
fn a_run_racing_an_apply_for_one_name_is_never_destroyed() {
    if !prereq::require_apply("a_run_racing_an_apply_for_one_name_is_never_destroyed") {
        return;
    }
    let site = Site::new("cr");
    let contested = format!("z{}", site.tag);
    let body = "  command: [sleep, \"1000\"]\n  networkMode: none\n";
    // Containers planned before the contested one (the plan orders by
    // name), so apply is busy creating them when the run starts.
    for i in 0..4 {
        site.write(
            &format!("a{i}.yaml"),
            &container(&format!("a{i}{}", site.tag), body),
        );
    }
    site.write("z.yaml", &container(&contested, body));
    site.ok(&["image", "import", &site.busybox()]);

    let apply = site
        .apply_command(&[])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Start the run once apply holds the state root.
    let lock = site.state().join("reconcile.lock");
    let apply_pid = apply.id().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    while fs::read_to_string(&lock).unwrap_or_default().trim() != apply_pid {
        assert!(Instant::now() < deadline, "apply never took the lock");
        std::thread::sleep(Duration::from_millis(2));
    }
    let image = site.busybox();
    let run = site.run(&["run", "-d", "--name", &contested, &image, "sleep", "1000"]);
    let applied = apply.wait_with_output().unwrap();

    if run.status.success() {
        // The run came first: it must still be the run's, still running,
        // and the apply must have refused the name.
        assert_eq!(origin_kind(&site, &contested), "run");
        assert!(!applied.status.success(), "apply refused {contested}");
    } else {
        // Apply came first: the run was refused, naming the set.
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(stderr.contains("belongs to manifest set"), "{stderr}");
        assert_eq!(origin_kind(&site, &contested), "manifest");
        cli::succeeded("berth apply", &applied);
    }
    site.pid_of(&contested);
}

/// `rm` waits for the reconcile lock and gives up at `--lock-timeout`,
/// naming the holder; `run` waits, then goes on once it is free.
#[test]
fn run_and_rm_wait_for_the_reconcile_lock_and_give_up_naming_its_holder() {
    if !prereq::require_apply(
        "run_and_rm_wait_for_the_reconcile_lock_and_give_up_naming_its_holder",
    ) {
        return;
    }
    let site = Site::new("cl");
    let kept = site.unique_name("kept");
    let waiting = site.unique_name("waiting");
    site.start(&kept, &["--net", "none"], &["sleep", "1000"]);
    let pid = site.pid_of(&kept);

    // Held as an apply holds it: exclusively, with the holder's pid in it.
    let path = site.layout().reconcile_lock();
    let held =
        berth::state::lock::acquire(&path, berth::state::lock::Mode::Exclusive, false).unwrap();
    fs::write(&path, std::process::id().to_string()).unwrap();

    let refused = site.fails(&["--lock-timeout", "1s", "rm", "-f", &kept]);
    assert!(refused.contains("after 1s of waiting"), "{refused}");
    assert!(
        refused.contains(&format!("(pid {})", std::process::id())),
        "{refused}"
    );
    assert_eq!(
        site.pid_of(&kept),
        pid,
        "not removed while the lock is held"
    );

    let image = site.busybox();
    let mut run = site
        .command(&["run", "-d", "--name", &waiting, &image, "sleep", "1000"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        site.fails(&["inspect", &waiting]).contains("no container"),
        "run waits for the lock before it creates anything"
    );
    drop(held);
    let output = run.wait().unwrap();
    assert!(output.success(), "run goes on once the lock is free");
    site.pid_of(&waiting);
    site.ok(&["rm", "-f", &kept]);
}
