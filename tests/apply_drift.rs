//! Drift, end to end as root: what happens behind berth's back between two
//! applies. A container whose process and shim were SIGKILLed, and one whose
//! shim was SIGKILLed and whose runc container was deleted, are named by
//! `berth plan` as drift and repaired by `berth apply` (running again with
//! new processes, one shim each); a runc container deleted under a live shim
//! is restarted by the shim itself, and the reconciler leaves it alone; a
//! container whose shim was told to stop (as by an apply killed while it
//! removed it) is repaired instead of counted as running; a container whose
//! pinned network namespace was unmounted is repaired too.

mod common;

use std::time::Duration;

use common::host;
use common::prereq;
use common::site::Site;

/// A network of its own and one plain container per name (`sleep` as
/// PID 1 ignores SIGTERM: a stop takes the whole grace period).
fn site(prefix: &str, names: &[&str]) -> (Site, Vec<String>) {
    let site = Site::new(prefix);
    let tag = site.tag.clone();
    let bridge = format!("b{tag}");
    site.own_bridge(&bridge);
    let subnet = subnet_prefix(prefix);
    site.write(
        "network.yaml",
        &format!(
            "apiVersion: berth/v1\nkind: Network\nmetadata: {{name: net}}\n\
             spec: {{bridge: {bridge}, subnet: {subnet}0/24}}\n"
        ),
    );
    let names: Vec<String> = names.iter().map(|n| format!("{n}-{tag}")).collect();
    for name in &names {
        site.write(
            &format!("{name}.yaml"),
            &format!(
                "apiVersion: berth/v1\nkind: Container\nmetadata: {{name: {name}}}\nspec:\n  \
                 image: oci-layout:../images/busybox\n  command: [sleep, \"100000\"]\n  \
                 networks: [net]\n  stopGracePeriod: 3s\n  restart: {{policy: always}}\n"
            ),
        );
    }
    (site, names)
}

/// `10.X.Y.` of the test's subnet: a range of its own per test (they run
/// side by side), the process id picking one in it.
fn subnet_prefix(test: &str) -> String {
    let (second, base) = match test {
        "dr" => (243, 128),
        "ds" => (243, 168),
        "dn" => (244, 128),
        _ => (244, 168),
    };
    format!("10.{second}.{}.", base + std::process::id() % 40)
}

/// The plan lines that name `name`.
fn lines_naming<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.contains(name)).collect()
}

#[test]
fn killed_and_deleted_containers_are_named_as_drift_and_repaired() {
    let test = "killed_and_deleted_containers_are_named_as_drift_and_repaired";
    if !prereq::require_apply(test) {
        return;
    }
    let (site, names) = site("dr", &["killed", "deleted", "healed", "steady"]);
    let [killed, deleted, healed, steady] = [&names[0], &names[1], &names[2], &names[3]];
    site.apply(&[]);
    let before: Vec<u32> = names.iter().map(|n| site.pid_of(n)).collect();
    site.assert_one_shim_and_runc_container_each(&names);

    // Shim and container of `killed` SIGKILLed (the shim first, or it
    // would restart the container itself).
    let shim = site.shim_pid(killed);
    host::kill9(shim);
    assert!(host::wait_gone(shim, Duration::from_secs(5)));
    host::kill9(before[0]);
    assert!(host::wait_gone(before[0], Duration::from_secs(5)));
    // `deleted`: its shim SIGKILLed, its runc container deleted.
    let shim = site.shim_pid(deleted);
    host::kill9(shim);
    assert!(host::wait_gone(shim, Duration::from_secs(5)));
    host::runc_delete_force(&site.runc_root(), deleted);
    // `healed`: runc container deleted under a live shim, which restarts it.
    host::runc_delete_force(&site.runc_root(), healed);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while site.pid_of(healed) == before[2] {
        assert!(
            std::time::Instant::now() < deadline,
            "{healed} not restarted by its shim"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let healed_pid = site.pid_of(healed);

    let (code, plan) = site.plan(&[]);
    assert_eq!(code, 2, "{plan}");
    for name in [killed, deleted] {
        let lines = lines_naming(&plan, name);
        assert!(
            lines.len() == 1 && lines[0].contains("repair") && lines[0].contains("drift"),
            "{name} is named as drift: {plan}"
        );
    }
    for name in [healed, steady] {
        assert!(
            lines_naming(&plan, name).is_empty(),
            "{name} is fine: {plan}"
        );
    }

    let applied = site.apply(&[]);
    for name in [killed, deleted] {
        let lines = lines_naming(&applied, name);
        assert!(
            lines.len() == 1
                && lines[0].starts_with(&format!("repair Container {name}: drift"))
                && lines[0].ends_with("... ok"),
            "{name} is repaired: {applied}"
        );
    }
    for name in [healed, steady] {
        assert!(lines_naming(&applied, name).is_empty(), "{applied}");
    }
    assert!(applied.contains("converged"), "{applied}");
    let after: Vec<u32> = names.iter().map(|n| site.pid_of(n)).collect();
    assert_ne!(after[0], before[0], "{killed} runs a new process");
    assert_ne!(after[1], before[1], "{deleted} runs a new process");
    assert_eq!(after[2], healed_pid, "{healed} untouched by apply");
    assert_eq!(after[3], before[3], "{steady} untouched");
    site.assert_one_shim_and_runc_container_each(&names);
    let (code, plan) = site.plan(&[]);
    assert_eq!(code, 0, "{plan}");
}

/// Regression: the bridge plugin's DEL without a namespace releases the
/// address but leaves its masquerade rules, so removing a container whose
/// pinned namespace had been removed behind berth's back leaked them.
#[test]
fn a_container_whose_netns_pin_was_removed_is_removed_without_leaks() {
    let test = "a_container_whose_netns_pin_was_removed_is_removed_without_leaks";
    if !prereq::require_apply(test) {
        return;
    }
    let (site, names) = site("dm", &["unpinned"]);
    let name = &names[0];
    site.apply(&[]);
    site.pid_of(name);
    // The network masquerades with rules of its own, none per container.
    let bridge = format!("b{}", site.tag);
    assert_eq!(host::network_rules_on(&bridge).len(), 3);
    assert_eq!(host::iptables_rules_with(name), Vec::<String>::new());
    let netns = site.state().join("netns").join(name);
    nix::mount::umount2(&netns, nix::mount::MntFlags::MNT_DETACH).unwrap();
    std::fs::remove_file(&netns).unwrap();

    site.ok(&["rm", "-f", name]);
    assert_eq!(host::iptables_rules_with(name), Vec::<String>::new());
    let not_the_networks = |rules: Vec<String>| -> Vec<String> {
        rules
            .into_iter()
            .filter(|rule| !rule.contains("berth network"))
            .collect()
    };
    assert_eq!(
        not_the_networks(host::iptables_rules_with(&subnet_prefix("dm"))),
        Vec::<String>::new()
    );
    assert!(host::mounts_under(site.path()).is_empty());
    let ipam = site.root().join("cni/ipam/net");
    let reserved: Vec<_> = std::fs::read_dir(&ipam)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "lock" && !n.starts_with("last_reserved_ip"))
        .collect();
    assert!(reserved.is_empty(), "{reserved:?}");
}

/// Regression: an apply killed while it removed a container (pruned, then
/// declared again) had sent the shim SIGTERM; the next apply saw the
/// container still running through its grace period, said "nothing to do",
/// and the container then exited for good.
#[test]
fn a_container_being_stopped_behind_berths_back_is_repaired() {
    let test = "a_container_being_stopped_behind_berths_back_is_repaired";
    if !prereq::require_apply(test) {
        return;
    }
    let (site, names) = site("ds", &["stopping"]);
    let name = &names[0];
    site.apply(&[]);
    let pid = site.pid_of(name);
    let shim = site.shim_pid(name);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(shim as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while site.inspect(name)["status"]["stopped"] != true {
        assert!(
            std::time::Instant::now() < deadline,
            "the shim never stopped"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(host::alive(pid), "still in its grace period");

    let (code, plan) = site.plan(&[]);
    assert_eq!(code, 2, "a container on its way out is not running: {plan}");
    let applied = site.apply(&[]);
    assert!(
        applied.contains(&format!("repair Container {name}")),
        "{applied}"
    );
    let new_pid = site.pid_of(name);
    assert_ne!(new_pid, pid);
    assert!(host::wait_gone(shim, Duration::from_secs(5)));
    // Past the old grace period: the new container still runs.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(site.pid_of(name), new_pid);
    site.assert_one_shim_and_runc_container_each(&names);
}

/// A container whose pinned namespace was unmounted behind berth's back
/// is drift: apply re-creates it with a namespace of its own again.
#[test]
fn a_container_whose_pinned_netns_was_removed_is_repaired() {
    let test = "a_container_whose_pinned_netns_was_removed_is_repaired";
    if !prereq::require_apply(test) {
        return;
    }
    let (site, names) = site("dn", &["lost", "kept"]);
    let [lost, kept] = [&names[0], &names[1]];
    site.apply(&[]);
    let before: Vec<u32> = names.iter().map(|n| site.pid_of(n)).collect();
    let netns = site.state().join("netns").join(lost);
    nix::mount::umount2(&netns, nix::mount::MntFlags::MNT_DETACH).unwrap();
    std::fs::remove_file(&netns).unwrap();

    let (code, plan) = site.plan(&[]);
    assert_eq!(code, 2, "the lost namespace is drift: {plan}");
    let lines = lines_naming(&plan, lost);
    assert!(lines.len() == 1 && lines[0].contains("repair"), "{plan}");
    let applied = site.apply(&[]);
    assert!(
        applied.contains(&format!("repair Container {lost}")),
        "{applied}"
    );
    assert!(lines_naming(&applied, kept).is_empty(), "{applied}");
    let after: Vec<u32> = names.iter().map(|n| site.pid_of(n)).collect();
    assert_ne!(after[0], before[0]);
    assert_eq!(after[1], before[1]);
    assert!(
        host::mounts_under(&netns)
            .iter()
            .any(|(_, fstype)| fstype == "nsfs"),
        "the namespace is pinned again"
    );
    let address = site.sh(lost, "ip -o -4 addr show eth0");
    assert!(address.contains(&subnet_prefix("dn")), "{address}");
    assert_eq!(host::iptables_rules_with(lost), Vec::<String>::new());
    let bridge = format!("b{}", site.tag);
    let rules = host::network_rules_on(&bridge);
    assert_eq!(rules.len(), 3, "the network's rules, once: {rules:#?}");
    // It can restart again: its shim finds the namespace.
    host::kill9(after[0]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while site.pid_of(lost) == after[0] {
        assert!(std::time::Instant::now() < deadline, "{lost} not restarted");
        std::thread::sleep(Duration::from_millis(50));
    }
    site.assert_one_shim_and_runc_container_each(&names);
}
