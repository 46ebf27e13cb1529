//! `imagePullPolicy: Always` through `berth apply`, as root, against a real
//! registry on loopback: one pull per apply pass, the container created on
//! the first, left alone on the second while the image is unchanged.
//!
//! Regression: apply planned again after every pull and the plan asked for
//! another pull each time (3,542 pulls in 8 s, the container never created).

mod common;

use serde_json::Value;

use common::registry::Registry;
use common::site::Site;
use common::{cli, prereq};

/// `berth apply -o json` of the site; its report.
fn apply_json(site: &Site) -> Value {
    let output = site
        .apply_command(&["-o", "json"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("berth runs");
    serde_json::from_str(&cli::succeeded("apply", &output)).expect("apply -o json prints JSON")
}

/// How many outcomes of `verb` on `target` the report holds.
fn count(report: &Value, verb: &str, target: &str) -> usize {
    report["outcomes"]
        .as_array()
        .expect("outcomes")
        .iter()
        .filter(|o| o["verb"] == verb && o["target"] == target)
        .count()
}

#[test]
fn always_pull_policy_converges_with_one_pull_per_apply() {
    let test = "always_pull_policy_converges_with_one_pull_per_apply";
    if !prereq::require_apply(test) {
        return;
    }
    let Some(registry) = Registry::start() else {
        return;
    };
    let site = Site::new("pa");
    registry.push_oci_layout(&site.busybox_dir(), "latest", "bb:1");
    let name = format!("pull-{}", site.tag);
    site.write(
        "web.yaml",
        &format!(
            "apiVersion: berth/v1\nkind: Container\nmetadata:\n  name: {name}\nspec:\n  image: {}\n  imagePullPolicy: Always\n  networkMode: none\n  command: [sleep, '3600']\n",
            registry.reference("bb:1")
        ),
    );

    // Manifest requests the registry served so far: a pull asks for the
    // manifest, so equal counts per apply mean equal numbers of pulls.
    let manifest_requests = || {
        registry
            .log()
            .lines()
            .filter(|l| l.contains(" /v2/bb/manifests/1 HTTP") && l.contains("oci-client"))
            .count()
    };
    let first = apply_json(&site);
    let after_first = manifest_requests();
    assert_eq!(first["converged"], true, "{first:#}");
    assert_eq!(count(&first, "pull", "Image"), 1, "{first:#}");
    assert_eq!(count(&first, "create", "Container"), 1, "{first:#}");
    let pid = site.pid_of(&name);

    // Unchanged image: one digest check, nothing replaced.
    let second = apply_json(&site);
    let in_second = manifest_requests() - after_first;
    assert!(in_second > 0, "the second apply checked the registry");
    // Regression: the create after the plan's pull pulled a second time.
    assert_eq!(
        after_first,
        in_second,
        "the apply that also created fetched more often than the one that only checked:\n{}",
        registry.log()
    );
    assert_eq!(second["converged"], true, "{second:#}");
    assert_eq!(count(&second, "pull", "Image"), 1, "{second:#}");
    assert_eq!(
        second["outcomes"].as_array().map(Vec::len),
        Some(1),
        "only the pull: {second:#}"
    );
    assert_eq!(site.pid_of(&name), pid, "the same process runs");
    assert_eq!(
        first["outcomes"][0]["pullPolicy"], "Always",
        "the pull carries its policy: {first:#}"
    );
}
