//! Apply and delete carry out independent actions side by side, as root
//! with real runc and the CNI plugins: containers on one bridge come up
//! together and each one's `/etc/hosts` still names every peer; a failure in
//! one branch stops none of the others and is reported; a dependent starts
//! only after what it depends on; delete takes them all away again.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::site::{container_yaml as container, Site};
use common::{cli, prereq};
use serde_json::Value;

fn ready(test: &str) -> bool {
    prereq::require_apply(test)
}

fn apply_json(site: &Site, extra: &[&str]) -> (Option<i32>, Value) {
    let mut args = vec!["-o", "json", "--timeout", "90s"];
    args.extend_from_slice(extra);
    let output = site.run_set("apply", &args);
    let json = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "apply -o json prints JSON ({e}):\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code(), json)
}

/// `(verb, name)` of each outcome, in the order the report lists them.
fn outcomes(report: &Value) -> Vec<(String, String)> {
    report["outcomes"]
        .as_array()
        .expect("outcomes")
        .iter()
        .map(|o| {
            (
                o["verb"].as_str().unwrap_or_default().to_string(),
                o["name"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn containers_on_one_bridge_come_up_side_by_side_and_each_names_every_peer() {
    let test = "containers_on_one_bridge_come_up_side_by_side_and_each_names_every_peer";
    if !prereq::require_networking(test) {
        return;
    }
    let site = Site::new("pa");
    let bridge = format!("p{}", site.tag);
    site.own_bridge(&bridge);
    let third = std::process::id() % 250;
    site.write(
        "net.yaml",
        &format!(
            "apiVersion: berth/v1\nkind: Network\nmetadata:\n  name: pnet\nspec:\n  driver: bridge\n  bridge: {bridge}\n  subnet: 10.243.{third}.0/24\n"
        ),
    );
    let names: Vec<String> = (0..8).map(|i| format!("{}-{i}", site.tag)).collect();
    for name in &names {
        site.write(
            &format!("{name}.yaml"),
            &container(name, "  command: [sleep, \"1000\"]\n  networks: [pnet]\n"),
        );
    }
    let (planned, plan) = site.plan(&["-o", "json"]);
    assert_eq!(planned, 2, "changes planned: {plan}");
    let plan: Value = serde_json::from_str(&plan).expect("plan -o json");
    let planned_order: Vec<(String, String)> = outcomes(&serde_json::json!({ "outcomes": plan }));

    let (code, report) = apply_json(&site, &["--parallel", "8"]);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["converged"], true, "{report}");
    // The report keeps the plan's order, however the actions interleaved.
    assert_eq!(outcomes(&report), planned_order);

    for name in &names {
        let hosts = site.sh(name, "cat /etc/hosts");
        for peer in names.iter().filter(|peer| *peer != name) {
            assert!(
                hosts
                    .lines()
                    .any(|line| line.split_whitespace().any(|w| w == peer)),
                "{name}'s /etc/hosts names {peer}:\n{hosts}"
            );
        }
    }
    site.assert_one_shim_and_runc_container_each(&names);

    let deleted = site.run_set("delete", &["-o", "json", "--parallel", "8"]);
    let text = cli::succeeded("berth delete", &deleted);
    let report: Value = serde_json::from_str(&text).expect("delete -o json");
    let removed: BTreeSet<String> = outcomes(&report)
        .into_iter()
        .filter(|(verb, _)| verb == "delete")
        .map(|(_, name)| name)
        .collect();
    assert!(names.iter().all(|n| removed.contains(n)), "{report}");
    assert!(site.ps().is_empty(), "nothing is left: {:?}", site.ps());
}

#[test]
fn a_failure_in_one_parallel_branch_stops_none_of_the_others_and_is_reported() {
    let test = "a_failure_in_one_parallel_branch_stops_none_of_the_others_and_is_reported";
    if !ready(test) {
        return;
    }
    let site = Site::new("pf");
    let names: Vec<String> = (0..6).map(|i| format!("{}-{i}", site.tag)).collect();
    let broken = &names[2];
    for name in &names {
        let user = if name == broken {
            "  user: nosuchuser\n"
        } else {
            ""
        };
        site.write(
            &format!("{name}.yaml"),
            &container(
                name,
                &format!("  command: [sleep, \"1000\"]\n  networkMode: none\n{user}"),
            ),
        );
    }
    let (code, report) = apply_json(&site, &["--parallel", "6"]);
    assert_eq!(code, Some(1), "a failed action fails the apply: {report}");
    assert_eq!(report["converged"], false, "{report}");
    assert_eq!(report["failed"], serde_json::json!([broken]), "{report}");
    let failed: Vec<&Value> = report["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| !o["error"].is_null())
        .collect();
    assert_eq!(failed.len(), 1, "{report}");
    assert!(
        failed[0]["error"].as_str().unwrap().contains("nosuchuser"),
        "the error names its cause: {report}"
    );
    let others: BTreeSet<String> = names.iter().filter(|n| *n != broken).cloned().collect();
    let running = || -> BTreeSet<String> {
        site.ps()
            .iter()
            .filter(|c| c["state"] == "running")
            .map(|c| c["id"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    // Their shims may still be starting them when apply returns.
    let deadline = Instant::now() + Duration::from_secs(60);
    while running() != others && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(running(), others, "every other container runs");
}

#[test]
fn a_dependent_starts_only_after_what_it_depends_on() {
    let test = "a_dependent_starts_only_after_what_it_depends_on";
    if !ready(test) {
        return;
    }
    let site = Site::new("pd");
    let (first, second, free) = (
        format!("{}-a", site.tag),
        format!("{}-b", site.tag),
        format!("{}-c", site.tag),
    );
    let body = "  command: [sleep, \"1000\"]\n  networkMode: none\n";
    site.write("a.yaml", &container(&first, body));
    site.write(
        "b.yaml",
        &container(&second, &format!("{body}  dependsOn: [{first}]\n")),
    );
    site.write("c.yaml", &container(&free, body));
    let (code, report) = apply_json(&site, &["--parallel", "4"]);
    assert_eq!(code, Some(0), "{report}");
    let record_time = |name: &str, field: &str| -> u64 {
        let view: Value =
            serde_json::from_str(&site.ok(&["inspect", name])).expect("inspect prints JSON");
        find_number(&view, field).unwrap_or_else(|| panic!("{field} in {view}"))
    };
    // The dependent's create began (its record is written first) only
    // once its dependency's create had started it.
    assert!(
        record_time(&second, "createdUnixMs") >= record_time(&first, "startedUnixMs"),
        "{second} was created after {first} started"
    );
}

/// The first number called `field` anywhere in `value`.
fn find_number(value: &Value, field: &str) -> Option<u64> {
    match value {
        Value::Object(map) => map
            .get(field)
            .and_then(Value::as_u64)
            .or_else(|| map.values().find_map(|v| find_number(v, field))),
        Value::Array(items) => items.iter().find_map(|v| find_number(v, field)),
        _ => None,
    }
}
