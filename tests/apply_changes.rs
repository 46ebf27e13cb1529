//! `berth apply` end to end, as root: files the manifests refer to are part
//! of the desired state. Changing a container's env file, or a config file
//! it bind-mounts from the manifest tree, makes `berth plan` name that file
//! (exit 2) and `berth apply` replace exactly that container, which then
//! sees the new content; the others keep running untouched.

mod common;

use common::prereq;
use common::site::Site;

/// Three containers: `app` reads an env file and bind-mounts a config file;
/// `peer` shares its network; `solo` has no network.
fn site() -> (Site, [String; 3]) {
    let site = Site::new("ch");
    let tag = &site.tag;
    let bridge = format!("b{tag}");
    site.own_bridge(&bridge);
    let third = std::process::id() % 120;
    site.write(
        "network.yaml",
        &format!(
            "apiVersion: berth/v1\nkind: Network\nmetadata: {{name: net}}\n\
             spec: {{bridge: {bridge}, subnet: 10.243.{third}.0/24}}\n"
        ),
    );
    let names = [
        format!("app-{tag}"),
        format!("peer-{tag}"),
        format!("solo-{tag}"),
    ];
    let container = |name: &str, extra: &str| {
        format!(
            "apiVersion: berth/v1\nkind: Container\nmetadata: {{name: {name}}}\nspec:\n  \
             image: oci-layout:../images/busybox\n  command: [sleep, \"100000\"]\n  \
             stopGracePeriod: 1s\n{extra}"
        )
    };
    site.write(
        "app.yaml",
        &container(
            &names[0],
            "  networks: [net]\n  envFiles: [./app.env]\n  mounts:\n    \
             - {type: bind, source: ./conf/app.conf, target: /etc/app.conf, readOnly: true}\n",
        ),
    );
    site.write("peer.yaml", &container(&names[1], "  networks: [net]\n"));
    site.write("solo.yaml", &container(&names[2], "  networkMode: none\n"));
    site.write(
        "app.env",
        "# kept in git beside the manifests\nGREETING=hello\n",
    );
    site.write("conf/app.conf", "level = 1\n");
    (site, names)
}

fn pids(site: &Site, names: &[String; 3]) -> [u32; 3] {
    [
        site.pid_of(&names[0]),
        site.pid_of(&names[1]),
        site.pid_of(&names[2]),
    ]
}

/// Changes `file`, then checks plan and apply name it and replace only `app`.
fn change_and_apply(site: &Site, names: &[String; 3], file: &str, text: &str, reason: &str) {
    let [app, peer, solo] = names;
    let before = pids(site, names);
    site.write(file, text);

    let (code, plan) = site.plan(&[]);
    assert_eq!(code, 2, "changes pending: {plan}");
    assert!(plan.contains(reason), "the plan names {file}: {plan}");
    assert!(
        plan.contains(app.as_str()) && plan.contains("replace"),
        "{plan}"
    );
    assert!(
        !plan.contains(peer.as_str()) && !plan.contains(solo.as_str()),
        "only {app} changes: {plan}"
    );

    let applied = site.apply(&[]);
    assert!(
        applied.contains(&format!("replace Container {app}: {reason} ... ok")),
        "{applied}"
    );
    assert!(
        !applied.contains(peer.as_str()) && !applied.contains(solo.as_str()),
        "only {app} is touched: {applied}"
    );
    assert!(applied.contains("converged"), "{applied}");
    let after = pids(site, names);
    assert_ne!(after[0], before[0], "{app} was replaced");
    assert_eq!(after[1..], before[1..], "the others keep their processes");
    let (code, plan) = site.plan(&[]);
    assert_eq!(code, 0, "converged: {plan}");
}

#[test]
fn a_changed_env_file_or_bind_mounted_file_replaces_exactly_its_container() {
    let test = "a_changed_env_file_or_bind_mounted_file_replaces_exactly_its_container";
    if !prereq::require_apply(test) {
        return;
    }
    let (site, names) = site();
    let app = &names[0];
    let first = site.apply(&[]);
    assert!(first.contains("converged"), "{first}");
    let show = "echo \"$GREETING\"; cat /etc/app.conf";
    pids(&site, &names);
    assert_eq!(site.sh(app, show), "hello\nlevel = 1\n");

    change_and_apply(
        &site,
        &names,
        "app.env",
        "# kept in git beside the manifests\nGREETING=bonjour\n",
        "env file ./app.env changed",
    );
    assert_eq!(site.sh(app, show), "bonjour\nlevel = 1\n");

    change_and_apply(
        &site,
        &names,
        "conf/app.conf",
        "level = 2\n",
        "read-only bind mount ./conf/app.conf changed",
    );
    assert_eq!(site.sh(app, show), "bonjour\nlevel = 2\n");

    let again = site.apply(&[]);
    assert!(again.contains("nothing to do"), "{again}");
}
