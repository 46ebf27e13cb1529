//! Corruption is contained, end to end as root: one record of each kind
//! that does not parse (a container record, a network record, a volume
//! record, a shim's status file, a CNI cache record) while other objects
//! exist. `ps`, `plan` and `apply` still work for the rest, the bad file is
//! named (and quarantined: moved aside to `<file>.corrupt-<unix-secs>`),
//! and the affected object ends in a sane state.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::host;
use common::prereq;
use common::site::Site;

/// A network of its own and one `sleep` container per name on it; with
/// `volume`, a Volume `data` that the first container mounts.
fn site(prefix: &str, names: &[&str], volume: bool) -> (Site, Vec<String>) {
    let site = Site::new(prefix);
    let tag = site.tag.clone();
    let bridge = format!("b{tag}");
    site.own_bridge(&bridge);
    site.write(
        "network.yaml",
        &format!(
            "apiVersion: berth/v1\nkind: Network\nmetadata: {{name: net}}\n\
             spec: {{bridge: {bridge}, subnet: {}0/24}}\n",
            subnet_prefix(prefix)
        ),
    );
    if volume {
        site.write(
            "volume.yaml",
            "apiVersion: berth/v1\nkind: Volume\nmetadata: {name: data}\nspec: {}\n",
        );
    }
    let names: Vec<String> = names.iter().map(|n| format!("{n}-{tag}")).collect();
    for (i, name) in names.iter().enumerate() {
        let mounts = if volume && i == 0 {
            "  mounts: [{type: volume, source: data, target: /data}]\n"
        } else {
            ""
        };
        site.write(
            &format!("{name}.yaml"),
            &format!(
                "apiVersion: berth/v1\nkind: Container\nmetadata: {{name: {name}}}\nspec:\n  \
                 image: oci-layout:../images/busybox\n  command: [sleep, \"100000\"]\n  \
                 networks: [net]\n  stopGracePeriod: 1s\n{mounts}"
            ),
        );
    }
    (site, names)
}

/// `10.253.X.` of the test: a range of its own per test (they run side by
/// side), the process id picking one in it.
fn subnet_prefix(test: &str) -> String {
    let base = match test {
        "cc" => 0,
        "cn" => 40,
        "cv" => 80,
        "cs" => 120,
        _ => 160,
    };
    format!("10.253.{}.", base + std::process::id() % 40)
}

/// Replaces `path` with `text`, as a torn write or a bad disk would.
fn corrupt(path: &Path, text: &str) {
    assert!(path.exists(), "{} exists", path.display());
    fs::write(path, text).unwrap();
}

/// The quarantined copies of `path` beside it.
fn quarantined(path: &Path) -> Vec<PathBuf> {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    common::names_in(path.parent().unwrap())
        .into_iter()
        .filter(|n| n.starts_with(&format!("{name}.corrupt-")))
        .map(|n| path.with_file_name(n))
        .collect()
}

/// stdout and stderr of berth ARGS, and whether it succeeded.
fn run(site: &Site, args: &[&str]) -> (bool, String, String) {
    let output = site.run(args);
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `berth apply --timeout TIMEOUT` of the tree: whether it succeeded,
/// stdout, stderr.
fn apply(site: &Site, timeout: &str) -> (bool, String, String) {
    let output = site
        .set_command("apply", &["--timeout", timeout])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Regression: one corrupt container record made ps, plan and apply fail
/// for every container.
#[test]
fn a_corrupt_container_record_is_quarantined_and_its_container_recreated_once() {
    let test = "a_corrupt_container_record_is_quarantined_and_its_container_recreated_once";
    if !prereq::require_apply(test) {
        return;
    }
    let (site, names) = site("cc", &["torn", "fine"], false);
    let [torn, fine] = [&names[0], &names[1]];
    site.apply(&[]);
    let fine_pid = site.pid_of(fine);
    let torn_pid = site.pid_of(torn);
    let record = site.root().join(format!("containers/{torn}.json"));
    corrupt(&record, "{\"id\": \"tor");

    let (ok, out, err) = run(&site, &["ps", "-a"]);
    assert!(ok, "ps works: {err}");
    assert!(err.contains(&record.display().to_string()), "named: {err}");
    assert!(out.contains(fine), "{out}");
    // Still running, unknown to berth: listed, not leaked.
    let orphan = out.lines().find(|l| l.contains(torn.as_str())).unwrap();
    assert!(orphan.contains("unknown"), "{out}");
    assert!(!record.exists());
    let copies = quarantined(&record);
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert_eq!(fs::read_to_string(&copies[0]).unwrap(), "{\"id\": \"tor");

    let (code, plan) = site.plan(&[]);
    assert_eq!(code, 2, "{plan}");
    assert!(
        plan.lines()
            .any(|l| l.contains(torn.as_str()) && l.contains("create")),
        "{plan}"
    );
    let applied = site.apply(&[]);
    assert!(applied.contains("converged"), "{applied}");
    assert_ne!(site.pid_of(torn), torn_pid, "recreated");
    assert!(
        host::wait_gone(torn_pid, Duration::from_secs(10)),
        "the old one is gone, not doubled"
    );
    assert_eq!(site.pid_of(fine), fine_pid, "the rest untouched");
    site.assert_one_shim_and_runc_container_each(&names);
    assert_eq!(site.plan(&[]).0, 0);
}

/// Regression: one corrupt network record made ps, plan and apply fail.
#[test]
fn a_corrupt_network_record_is_quarantined_and_recorded_again() {
    let test = "a_corrupt_network_record_is_quarantined_and_recorded_again";
    if !prereq::require_apply(test) {
        return;
    }
    let (site, names) = site("cn", &["web"], false);
    site.apply(&[]);
    let pid = site.pid_of(&names[0]);
    let record = site.root().join("networks/net.json");
    corrupt(&record, "");

    let (ok, _, err) = run(&site, &["ps"]);
    assert!(ok, "ps works: {err}");
    assert!(err.contains(&record.display().to_string()), "named: {err}");
    assert_eq!(quarantined(&record).len(), 1);
    let (code, plan) = site.plan(&[]);
    assert_eq!(code, 2, "{plan}");
    assert!(
        plan.lines()
            .any(|l| l.contains("Network") && l.contains("net") && l.contains("create")),
        "{plan}"
    );
    let applied = site.apply(&[]);
    assert!(applied.contains("converged"), "{applied}");
    assert!(record.exists(), "recorded again");
    assert_eq!(site.pid_of(&names[0]), pid, "its container untouched");
    assert_eq!(site.plan(&[]).0, 0);
}

/// Regression: a corrupt volume.json turned the volume into one `berth run`
/// made, its owner lost without a word.
#[test]
fn a_corrupt_volume_record_keeps_the_data_and_the_owner_unknown() {
    let test = "a_corrupt_volume_record_keeps_the_data_and_the_owner_unknown";
    if !prereq::require_apply(test) {
        return;
    }
    let (site, names) = site("cv", &["user", "other"], true);
    site.apply(&[]);
    let other_pid = site.pid_of(&names[1]);
    let data = site.root().join("volumes/data/data/keep");
    fs::write(&data, "precious").unwrap();
    let record = site.root().join("volumes/data/volume.json");
    corrupt(&record, "{\"name\": \"da");

    let (ok, out, err) = run(&site, &["ps"]);
    assert!(ok, "ps works: {err}");
    assert!(err.contains(&record.display().to_string()), "named: {err}");
    assert!(out.contains("owner unknown"), "{out}");
    let copies = quarantined(&record);
    assert_eq!(copies.len(), 1, "{copies:?}");
    // A block waits out the deadline: a short one.
    let (ok, applied, err) = apply(&site, "5s");
    assert!(
        !ok,
        "a volume nobody may take over is not converged: {applied}"
    );
    let blocked = applied
        .lines()
        .chain(err.lines())
        .find(|l| l.contains("Volume data"))
        .unwrap_or_else(|| panic!("the volume is named: {applied}{err}"));
    assert!(
        blocked.contains(&copies[0].display().to_string()),
        "{blocked}"
    );
    assert_eq!(site.pid_of(&names[1]), other_pid, "the rest untouched");
    assert_eq!(fs::read_to_string(&data).unwrap(), "precious");
    let inspect = site.ok(&["volume", "inspect", "data"]);
    assert!(inspect.contains("quarantinedRecord"), "{inspect}");
    // Not taken over behind anyone's back, not pruned.
    assert!(!record.exists());
    site.run_set("delete", &["--volumes"]);
    assert_eq!(fs::read_to_string(&data).unwrap(), "precious");
}

/// Regression: a garbage status.json showed as "created" and apply waited
/// for it to start until its deadline, naming no file.
#[test]
fn a_garbage_status_file_is_unknown_named_and_repaired() {
    let test = "a_garbage_status_file_is_unknown_named_and_repaired";
    if !prereq::require_apply(test) {
        return;
    }
    let (site, names) = site("cs", &["garbled", "fine"], false);
    let [garbled, fine] = [&names[0], &names[1]];
    site.apply(&[]);
    let fine_pid = site.pid_of(fine);
    let garbled_pid = site.pid_of(garbled);
    let status = site
        .state()
        .join(format!("containers/{garbled}/status.json"));
    corrupt(&status, "\u{0}\u{0}garbage");

    let row = site
        .ps()
        .into_iter()
        .find(|c| c["id"] == garbled.as_str())
        .unwrap();
    assert_eq!(row["state"], "unknown", "{row}");
    let reason = row["reason"].as_str().unwrap_or_default();
    assert!(reason.contains(&status.display().to_string()), "{row}");
    let (ok, text, _) = run(&site, &["ps"]);
    assert!(ok && text.contains("corrupt status file"), "{text}");

    let started = std::time::Instant::now();
    let applied = site.apply(&[]);
    let line = applied
        .lines()
        .find(|l| l.contains(garbled.as_str()))
        .unwrap();
    assert!(
        line.starts_with(&format!(
            "repair Container {garbled}: drift: corrupt status file"
        )) && line.contains(&status.display().to_string())
            && line.ends_with("... ok"),
        "{applied}"
    );
    assert!(applied.contains("converged"), "{applied}");
    assert!(
        started.elapsed() < Duration::from_secs(50),
        "no wait for the deadline"
    );
    assert_ne!(site.pid_of(garbled), garbled_pid);
    assert!(host::wait_gone(garbled_pid, Duration::from_secs(10)));
    assert_eq!(site.pid_of(fine), fine_pid, "the rest untouched");
    site.assert_one_shim_and_runc_container_each(&names);
}

/// Regression: a truncated CNI cache record made the resync's CHECK fail,
/// the repair kill the container and fail its DEL, and `rm -f` fail too.
#[test]
fn a_truncated_cni_cache_record_is_rebuilt_so_nothing_is_killed_and_rm_works() {
    let test = "a_truncated_cni_cache_record_is_rebuilt_so_nothing_is_killed_and_rm_works";
    if !prereq::require_apply(test) {
        return;
    }
    let (site, names) = site("ci", &["cut", "fine"], false);
    let [cut, fine] = [&names[0], &names[1]];
    site.apply(&[]);
    let cut_pid = site.pid_of(cut);
    let fine_pid = site.pid_of(fine);
    let cached = site.root().join(format!("cni/results/{cut}/net.json"));
    let whole = fs::read(&cached).unwrap();
    corrupt(&cached, &String::from_utf8_lossy(&whole[..whole.len() / 2]));

    let (code, plan) = site.plan(&[]);
    assert_eq!(code, 0, "nothing to repair: {plan}");
    let applied = site.apply(&[]);
    assert!(!applied.contains(cut.as_str()), "{applied}");
    assert_eq!(site.pid_of(cut), cut_pid, "not killed");
    assert_eq!(site.pid_of(fine), fine_pid);
    assert_eq!(quarantined(&cached).len(), 1);
    let rebuilt: serde_json::Value = serde_json::from_slice(&fs::read(&cached).unwrap()).unwrap();
    assert_eq!(rebuilt["rebuilt"], true, "{rebuilt}");
    assert_eq!(rebuilt["runtime"]["ifname"], "eth0", "{rebuilt}");

    let (ok, _, err) = run(&site, &["rm", "-f", cut]);
    assert!(ok, "rm -f works: {err}");
    assert!(host::wait_gone(cut_pid, Duration::from_secs(10)));
    let address = rebuilt["result"]["ips"][0]["address"]
        .as_str()
        .and_then(|cidr| cidr.split('/').next())
        .expect("its address, from host-local's reservation")
        .to_string();
    assert_eq!(
        host::iptables_rules_with(&format!("{address}/")),
        Vec::<String>::new(),
        "its address's rules went with its DEL"
    );
    assert_eq!(site.pid_of(fine), fine_pid);
}
