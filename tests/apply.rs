//! `berth apply` end to end, as root: the quickstart example converges,
//! a second apply touches nothing, a changed env var replaces exactly that
//! container, pruning deletes only what is no longer declared, and an
//! invalid set changes nothing.

mod common;

use std::fs;
use std::path::Path;

use common::prereq;
use common::site::Site;

/// A site holding a copy of the quickstart with its own subnet, bridge and
/// host port.
fn quickstart() -> Site {
    let site = Site::new("ap");
    let pid = std::process::id();
    let quickstart = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart");
    let bridge = format!("bap{}", pid % 100_000);
    site.own_bridge(&bridge);
    let third = 100 + pid % 100;
    for file in ["network.yaml", "web.yaml", "client.yaml", "site/index.html"] {
        let text = fs::read_to_string(quickstart.join(file))
            .unwrap()
            .replace("10.231.0.", &format!("10.242.{third}."))
            .replace("berth-qs0", &bridge)
            .replace("18080", &(30_000 + pid % 20_000).to_string())
            // The example's 2 s check timeout is for a quiet host; on a busy
            // 2-core one a `runc exec` of wget can take longer, the checks
            // fail, onUnhealthy restarts web and client never starts.
            .replace("timeout: 2s", "timeout: 30s");
        site.write(file, &text);
    }
    site
}

#[test]
fn apply_converges_is_idempotent_replaces_exactly_and_prunes() {
    if !prereq::require_apply("apply_converges_is_idempotent_replaces_exactly_and_prunes") {
        return;
    }
    let site = quickstart();
    let first = site.apply(&[]);
    assert!(first.contains("create Container web"), "{first}");
    assert!(first.contains("converged"), "{first}");
    assert!(
        !first.contains("replace"),
        "nothing is created twice: {first}"
    );
    let (web, client) = (site.pid_of("web"), site.pid_of("client"));
    assert!(web > 0 && client > 0);

    let second = site.apply(&[]);
    assert!(second.contains("nothing to do"), "{second}");
    assert_eq!(
        (site.pid_of("web"), site.pid_of("client")),
        (web, client),
        "the same processes"
    );

    let client_file = site.manifests.join("client.yaml");
    let text = fs::read_to_string(&client_file).unwrap();
    fs::write(
        &client_file,
        text.replace("TARGET:", "EXTRA: \"1\"\n    TARGET:"),
    )
    .unwrap();
    let third = site.apply(&[]);
    assert!(
        third.contains("replace Container client: spec.env changed"),
        "{third}"
    );
    assert!(!third.contains("Container web"), "web untouched: {third}");
    assert_eq!(site.pid_of("web"), web);

    fs::write(
        &client_file,
        "# yaml-language-server: $schema=../../schemas/berth.v1.schema.json\n{",
    )
    .unwrap();
    let invalid = site.apply_command(&[]).output().unwrap();
    assert_eq!(invalid.status.code(), Some(1));
    assert_eq!(site.pid_of("web"), web, "an invalid set changes nothing");

    fs::remove_file(&client_file).unwrap();
    let pruned = site.apply(&["--prune"]);
    assert!(
        pruned.contains("delete Container client: pruned"),
        "{pruned}"
    );
    assert!(!pruned.contains("Container web"), "{pruned}");
    let ps = site.ps();
    let names: Vec<&str> = ps.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(names, ["web"]);
}
