//! Make before break, as root: an apply that cannot get an image destroys
//! nothing. With the image record gone and the image's source unreachable
//! for a moment, apply fails, saying why, and every container of that image
//! keeps running (same pid); a real change to them waits for the image
//! instead of removing them first. Once the source is back, apply converges
//! without replacing what did not change.
//!
//! Regression: plan said "replace ... the image changed" although nothing
//! had, and apply removed each container, then failed to create it (3 of
//! 3 containers lost).

mod common;

use std::fs;

use common::prereq;
use common::site::{container_yaml, Site};

fn output_text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn an_unreachable_image_destroys_no_container() {
    let test = "an_unreachable_image_destroys_no_container";
    if !prereq::require_apply(test) {
        return;
    }
    let site = Site::new("mb");
    let names: Vec<String> = (0..3).map(|n| format!("mb{n}-{}", site.tag)).collect();
    let write_all = |env: &str| {
        for name in &names {
            site.write(
                &format!("{name}.yaml"),
                &container_yaml(
                    name,
                    &format!(
                        "  networkMode: none\n  env: {{MODE: {env}}}\n  command: [sleep, '3600']\n"
                    ),
                ),
            );
        }
    };
    write_all("one");
    site.apply(&[]);
    let pids: Vec<u32> = names.iter().map(|n| site.pid_of(n)).collect();

    // The image record is lost and the layout it came from is broken (a
    // layout that is missing altogether is refused before anything by the
    // check of local references; a broken one is found only on import).
    let records = site.root().join("images");
    fs::remove_dir_all(&records).unwrap();
    let layout = site.busybox_dir();
    let away = layout.with_extension("away");
    fs::rename(&layout, &away).unwrap();
    fs::create_dir(&layout).unwrap();
    fs::write(layout.join("oci-layout"), "not json").unwrap();
    fs::write(layout.join("index.json"), "not json").unwrap();

    let (_, plan) = site.plan(&[]);
    assert!(
        !plan.contains("replace"),
        "an unknown image is not a change:\n{plan}"
    );
    let output = site.apply_command(&[]).output().unwrap();
    assert!(!output.status.success(), "{}", output_text(&output));
    for (name, pid) in names.iter().zip(&pids) {
        assert_eq!(site.pid_of(name), *pid, "{name} was touched");
    }

    // A real change must wait for the image: the old containers stay.
    write_all("two");
    let output = site.apply_command(&[]).output().unwrap();
    let text = output_text(&output);
    assert!(!output.status.success(), "{text}");
    assert!(text.contains("left as it is"), "{text}");
    for (name, pid) in names.iter().zip(&pids) {
        assert_eq!(
            site.pid_of(name),
            *pid,
            "{name} was removed before its replacement was ready"
        );
    }

    // The source is back: the change goes through.
    fs::remove_dir_all(&layout).unwrap();
    fs::rename(&away, &layout).unwrap();
    site.apply(&[]);
    for (name, pid) in names.iter().zip(&pids) {
        assert_ne!(site.pid_of(name), *pid, "{name} was not replaced");
        assert!(site.sh(name, "echo $MODE").contains("two"));
    }
}

/// A replacement whose spec cannot be built (its user is not in the
/// image) is found out before the old container is removed.
#[test]
fn a_replacement_that_cannot_be_built_leaves_the_old_one_running() {
    let test = "a_replacement_that_cannot_be_built_leaves_the_old_one_running";
    if !prereq::require_apply(test) {
        return;
    }
    let site = Site::new("mu");
    let name = format!("mu-{}", site.tag);
    let body = "  networkMode: none\n  command: [sleep, '3600']\n";
    site.write("web.yaml", &container_yaml(&name, body));
    site.apply(&[]);
    let pid = site.pid_of(&name);
    site.write(
        "web.yaml",
        &container_yaml(&name, &format!("{body}  user: nosuchuser\n")),
    );
    let output = site.apply_command(&[]).output().unwrap();
    let text = output_text(&output);
    assert!(!output.status.success(), "{text}");
    assert!(
        text.contains("nosuchuser") && text.contains("left as it is"),
        "{text}"
    );
    assert_eq!(site.pid_of(&name), pid, "the old container was removed");
}

/// A container apply replaces (its spec changed) or prunes is stopped as
/// `berth stop` stops it: its stop signal first, and its grace period to
/// finish. Regression: apply killed it with SIGKILL at once, so a database
/// replaced for an env change never got to shut down cleanly.
#[test]
fn a_replaced_or_pruned_container_gets_its_stop_signal_and_grace_period() {
    let test = "a_replaced_or_pruned_container_gets_its_stop_signal_and_grace_period";
    if !prereq::require_apply(test) {
        return;
    }
    let site = Site::new("gs");
    let (name, volume) = (format!("gs-{}", site.tag), format!("gv-{}", site.tag));
    site.write(
        "vol.yaml",
        &format!("apiVersion: berth/v1\nkind: Volume\nmetadata:\n  name: {volume}\n"),
    );
    let write = |env: &str| {
        site.write(
            "db.yaml",
            &container_yaml(
                &name,
                &format!(
                    "  networkMode: none\n  stopGracePeriod: 30s\n  env: {{V: '{env}'}}\n  mounts: [{{type: volume, source: {volume}, target: /data}}]\n  command: [sh, -c, 'trap \"echo clean $V >> /data/shutdowns; exit 0\" TERM; while true; do sleep 0.1; done']\n"
                ),
            ),
        )
    };
    write("1");
    site.apply(&[]);
    site.pid_of(&name);
    write("2");
    site.apply(&[]);
    site.pid_of(&name);
    let shutdowns = site.root().join(format!("volumes/{volume}/data/shutdowns"));
    assert_eq!(
        fs::read_to_string(&shutdowns).unwrap_or_default(),
        "clean 1\n",
        "the replaced container shut down on its stop signal"
    );
    site.remove("db.yaml");
    site.apply(&["--prune"]);
    assert_eq!(
        fs::read_to_string(&shutdowns).unwrap_or_default(),
        "clean 1\nclean 2\n",
        "the pruned container shut down on its stop signal"
    );
}
