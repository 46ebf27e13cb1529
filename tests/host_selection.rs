//! Fleets from one repository: each host runs the objects whose
//! `metadata.hosts` selects it. `plan --host-label` shows what a host with
//! those labels would run, `apply` runs only that, and pruning is per host:
//! an object that stops selecting the host is absent from its desired set,
//! so `--prune` removes it there.

mod common;

use common::prereq;
use common::site::{container_yaml, Site};

/// Three containers: one for role=edge, one for role=db, one for every host.
fn fleet_site() -> (Site, [String; 3]) {
    let site = Site::new("hs");
    let tag = &site.tag;
    let names = [
        format!("edge-{tag}"),
        format!("db-{tag}"),
        format!("all-{tag}"),
    ];
    let sleeper = "  command: [sleep, \"100000\"]\n  stopGracePeriod: 1s\n  networkMode: none\n";
    let with_hosts = |name: &str, hosts: &str| {
        container_yaml(name, sleeper).replacen(
            &format!("  name: {name}\n"),
            &format!("  name: {name}\n  hosts: {hosts}\n"),
            1,
        )
    };
    site.write(
        "edge.yaml",
        &with_hosts(&names[0], "{matchLabels: {role: edge}}"),
    );
    site.write("db.yaml", &with_hosts(&names[1], "[\"db?\"]"));
    site.write("all.yaml", &container_yaml(&names[2], sleeper));
    (site, names)
}

/// `berth plan -o json EXTRA...`: "VERB NAME" of each action, sorted.
fn planned(site: &Site, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["-o", "json"];
    args.extend_from_slice(extra);
    let (_, text) = site.plan(&args);
    let actions: serde_json::Value = serde_json::from_str(&text).expect("plan prints JSON");
    let mut summary: Vec<String> = actions
        .as_array()
        .expect("a list of actions")
        .iter()
        .filter(|a| a["target"] == "Container")
        .map(|a| {
            format!(
                "{} {}",
                a["verb"].as_str().unwrap(),
                a["name"].as_str().unwrap()
            )
        })
        .collect();
    summary.sort();
    summary
}

fn running(site: &Site) -> Vec<String> {
    let mut names: Vec<String> = site
        .ps()
        .iter()
        .map(|c| c["id"].as_str().unwrap_or_default().to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn each_host_plans_applies_and_prunes_only_what_selects_it() {
    let test = "each_host_plans_applies_and_prunes_only_what_selects_it";
    if !prereq::require_apply(test) {
        return;
    }
    let (site, names) = fleet_site();
    let [edge, db, all] = &names;
    let edge_host = ["--host-label", "role=edge", "--host-label", "hostname=web1"];
    let db_host = ["--host-label", "role=db", "--host-label", "hostname=db1"];

    assert_eq!(
        planned(&site, &edge_host),
        [format!("create {all}"), format!("create {edge}")]
    );
    assert_eq!(
        planned(&site, &db_host),
        [format!("create {all}"), format!("create {db}")],
        "plan shows what another host would run"
    );

    let applied = site.apply(&edge_host);
    assert!(applied.contains("converged"), "{applied}");
    let mut expected = vec![all.clone(), edge.clone()];
    expected.sort();
    assert_eq!(running(&site), expected);
    let all_pid = site.pid_of(all);

    // The same state root now plays the db host: with --prune the edge
    // container, which does not select it, goes; the db one comes; the
    // one for every host is left alone.
    let (code, plan) = site.plan(&[&db_host[..], &["--prune"]].concat());
    assert_eq!(code, 2, "{plan}");
    assert!(
        plan.contains(edge.as_str()) && plan.contains("delete"),
        "{plan}"
    );
    let switched = site.apply(&[&db_host[..], &["--prune"]].concat());
    assert!(
        switched.contains(&format!("delete Container {edge}: pruned")),
        "{switched}"
    );
    assert!(!switched.contains(all.as_str()), "{switched}");
    let mut expected = vec![all.clone(), db.clone()];
    expected.sort();
    assert_eq!(running(&site), expected);
    assert_eq!(site.pid_of(all), all_pid, "{all} kept its process");

    let again = site.apply(&[&db_host[..], &["--prune"]].concat());
    assert!(again.contains("nothing to do"), "{again}");
}

#[test]
fn a_reference_to_an_object_this_host_does_not_run_is_refused_at_the_reference() {
    let site = Site::new("hr");
    site.write(
        "web.yaml",
        &container_yaml("web", "  dependsOn: [db]\n  networkMode: none\n"),
    );
    site.write(
        "db.yaml",
        &container_yaml("db", "  networkMode: none\n").replacen(
            "  name: db\n",
            "  name: db\n  hosts: {matchLabels: {role: db}}\n",
            1,
        ),
    );
    let output = site.run_set(
        "plan",
        &["--host-label", "role=edge", "--host-label", "hostname=web1"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let web = site.manifests.join("web.yaml");
    let db = site.manifests.join("db.yaml");
    assert!(
        stderr.contains(&format!(
            "{}:7:15: spec.dependsOn[0]: Container \"db\" ({}:4) does not select this host (hosts.matchLabels role=db; this host: hostname=web1, role=edge)",
            web.display(),
            db.display()
        )),
        "{stderr}"
    );

    // The whole set is valid: validate checks every host's objects, and
    // with host labels checks the set as that host sees it.
    let output = site.run_set("validate", &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let output = site.run_set("validate", &["--host-label", "role=edge"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("does not select this host"), "{stdout}");
    let output = site.run_set(
        "validate",
        &["--host-label", "role=db", "--host-label", "hostname=db1"],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("this host (hostname=db1, role=db) runs 2 of 2 objects"),
        "{stdout}"
    );

    let output = site.run_set("plan", &["--host-label", "role"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "a usage error: {stderr}");
    assert!(stderr.contains("\"role\" is not KEY=VALUE"), "{stderr}");
}
