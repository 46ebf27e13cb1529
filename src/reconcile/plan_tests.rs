//! Planner tests: every action and reason, ordering, dependency conditions,
//! pruning rules. Pure: no root, no files.

use std::path::PathBuf;

use super::desired::{Desired, DesiredObject, DesiredSpec};
use super::plan::*;
use crate::manifest::reference::ImageSource;
use crate::manifest::{
    ContainerSpec, Dependency, DependencyCondition, DependencySpec, Kind, NetworkAttachment,
    NetworkSpec, PullPolicy, RestartPolicy, VolumeSpec,
};
use crate::state::labels::Fingerprint;

const SOURCE: &str = "/srv/site";

fn fp(tag: &str) -> Fingerprint {
    let mut f = Fingerprint::default();
    f.insert("spec.image", tag.as_bytes());
    f
}

fn container(name: &str, tag: &str) -> DesiredObject {
    DesiredObject {
        kind: Kind::Container,
        name: name.into(),
        file: format!("{name}.yaml"),
        line: 1,
        base_dir: PathBuf::from(SOURCE),
        spec: DesiredSpec::Container(ContainerSpec {
            image: "busybox".into(),
            ..ContainerSpec::default()
        }),
        fingerprint: fp(tag),
        image: Some(ImageSource::parse("busybox").unwrap()),
    }
}

fn with_deps(mut object: DesiredObject, deps: &[(&str, DependencyCondition)]) -> DesiredObject {
    if let DesiredSpec::Container(spec) = &mut object.spec {
        spec.depends_on = deps
            .iter()
            .map(|(name, condition)| {
                Dependency::Detailed(DependencySpec {
                    name: name.to_string(),
                    condition: *condition,
                })
            })
            .collect();
    }
    object
}

fn on_network(mut object: DesiredObject, network: &str) -> DesiredObject {
    if let DesiredSpec::Container(spec) = &mut object.spec {
        spec.networks = vec![NetworkAttachment::Name(network.into())];
    }
    object
}

fn network(name: &str, tag: &str) -> DesiredObject {
    DesiredObject {
        kind: Kind::Network,
        name: name.into(),
        file: "net.yaml".into(),
        line: 1,
        base_dir: PathBuf::from(SOURCE),
        spec: DesiredSpec::Network(NetworkSpec::default()),
        fingerprint: fp(tag),
        image: None,
    }
}

fn volume(name: &str) -> DesiredObject {
    DesiredObject {
        kind: Kind::Volume,
        name: name.into(),
        file: "vol.yaml".into(),
        line: 1,
        base_dir: PathBuf::from(SOURCE),
        spec: DesiredSpec::Volume(VolumeSpec::default()),
        fingerprint: fp("v"),
        image: None,
    }
}

fn desired(objects: Vec<DesiredObject>) -> Desired {
    Desired {
        source: SOURCE.into(),
        tree: PathBuf::from(SOURCE),
        objects,
    }
}

fn running(name: &str, tag: &str) -> ActualContainer {
    ActualContainer {
        kind: Kind::Container,
        name: name.into(),
        source: Some(SOURCE.into()),
        fingerprint: Some(fp(tag)),
        observed: Observed::Running,
        healthy: None,
        failing_checks: 0,
        restart: RestartPolicy::Always,
        networks: vec!["default".into()],
        volumes: vec![],
        fault: None,
        running_for_ms: Some(60_000),
        last_exit: None,
        start_error: None,
    }
}

fn actual(containers: Vec<ActualContainer>) -> Actual {
    Actual {
        images: ["docker.io/library/busybox:latest".to_string()]
            .into_iter()
            .collect(),
        containers,
        networks: vec![],
        volumes: vec![],
        claims: vec![],
        unknown_owners: vec![],
        lost_shims: vec![],
        jobs: vec![],
    }
}

fn shared(name: &str, tag: &str) -> ActualShared {
    ActualShared {
        name: name.into(),
        source: Some(SOURCE.into()),
        fingerprint: Some(fp(tag)),
    }
}

fn summary(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .map(|a| format!("{:?} {:?} {}", a.verb, a.target, a.name))
        .collect()
}

#[test]
fn nothing_to_do_when_everything_matches() {
    let d = desired(vec![container("web", "a")]);
    let a = actual(vec![running("web", "a")]);
    assert!(plan(&d, &a, &PlanOptions::default()).is_empty());
}

#[test]
fn missing_objects_are_created_and_images_pulled_first() {
    let d = desired(vec![
        on_network(container("web", "a"), "front"),
        network("front", "n"),
        volume("data"),
    ]);
    let mut a = actual(vec![]);
    a.images.clear();
    let actions = plan(&d, &a, &PlanOptions::default());
    assert_eq!(
        summary(&actions),
        [
            "Pull Image docker.io/library/busybox:latest",
            "Create Volume data",
            "Create Network front",
            "Create Container web"
        ]
    );
}

#[test]
fn never_pull_policy_does_not_pull_and_always_does() {
    let mut never = container("web", "a");
    if let DesiredSpec::Container(spec) = &mut never.spec {
        spec.image_pull_policy = PullPolicy::Never;
    }
    let mut a = actual(vec![running("web", "a")]);
    a.images.clear();
    assert!(plan(&desired(vec![never.clone()]), &a, &PlanOptions::default()).is_empty());
    if let DesiredSpec::Container(spec) = &mut never.spec {
        spec.image_pull_policy = PullPolicy::Always;
    }
    let actions = plan(
        &desired(vec![never]),
        &actual(vec![running("web", "a")]),
        &PlanOptions::default(),
    );
    assert_eq!(actions[0].reason, "imagePullPolicy is Always");
}

#[test]
fn always_pulls_once_per_pass_and_carries_its_policy() {
    let mut always = container("web", "a");
    if let DesiredSpec::Container(spec) = &mut always.spec {
        spec.image_pull_policy = PullPolicy::Always;
    }
    let wanted = desired(vec![always]);
    let current = actual(vec![running("web", "a")]);
    let first = plan(&wanted, &current, &PlanOptions::default());
    assert_eq!(
        summary(&first),
        ["Pull Image docker.io/library/busybox:latest"]
    );
    assert_eq!(first[0].pull_policy, Some(PullPolicy::Always));
    // Regression: apply planned again after each pull and pulled again, for
    // ever (thousands of pulls, no create). What this pass pulled is done.
    let mut options = PlanOptions::default();
    options.pulled.insert(first[0].name.clone());
    assert!(plan(&wanted, &current, &options).is_empty());
}

#[test]
fn a_missing_image_is_pulled_even_when_pulled_this_pass() {
    // A pull that stored nothing (removed meanwhile) must not be forgotten.
    let wanted = desired(vec![container("web", "a")]);
    let mut current = actual(vec![]);
    current.images.clear();
    let mut options = PlanOptions::default();
    options
        .pulled
        .insert("docker.io/library/busybox:latest".into());
    let actions = plan(&wanted, &current, &options);
    assert_eq!(actions[0].verb, Verb::Pull);
    assert_eq!(actions[0].pull_policy, Some(PullPolicy::IfNotPresent));
}

#[test]
fn a_changed_fingerprint_replaces_with_the_reason() {
    let mut changed = container("web", "a");
    changed.fingerprint.insert("envFile:app.env", b"2");
    let mut current = running("web", "a");
    let mut old = fp("a");
    old.insert("envFile:app.env", b"1");
    current.fingerprint = Some(old);
    let actions = plan(
        &desired(vec![changed]),
        &actual(vec![current, running("other", "x")]),
        &PlanOptions::default(),
    );
    assert_eq!(summary(&actions), ["Replace Container web"]);
    assert_eq!(actions[0].reason, "env file app.env changed");
}

#[test]
fn reasons_name_fields_files_networks_and_images() {
    let parts: Vec<String> = ["bind:./site", "image", "network:front", "spec.env"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(
        describe_changes(&parts),
        "read-only bind mount ./site changed; the image changed; network front changed; spec.env changed"
    );
}

#[test]
fn a_bind_part_only_the_old_fingerprint_has_replaces_nothing() {
    // A read-write bind mount is data: no longer hashed, so a record made
    // when it was still carries its part. That alone is no change.
    let mut current = running("web", "a");
    let mut old = fp("a");
    old.insert("bind:./data", b"what the container wrote");
    current.fingerprint = Some(old);
    let actions = plan(
        &desired(vec![container("web", "a")]),
        &actual(vec![current.clone()]),
        &PlanOptions::default(),
    );
    assert!(actions.is_empty(), "{:?}", summary(&actions));

    // A read-only one whose content changed is a change, named.
    let mut changed = container("web", "a");
    changed.fingerprint.insert("bind:./data", b"new config");
    let actions = plan(
        &desired(vec![changed]),
        &actual(vec![current]),
        &PlanOptions::default(),
    );
    assert_eq!(summary(&actions), ["Replace Container web"]);
    assert_eq!(actions[0].reason, "read-only bind mount ./data changed");
}

#[test]
fn drift_is_repaired_and_said() {
    let mut gone = running("web", "a");
    gone.observed = Observed::Missing;
    let mut killed = running("api", "a");
    killed.observed = Observed::Exited {
        code: None,
        stopped: false,
    };
    let d = desired(vec![container("web", "a"), container("api", "a")]);
    let actions = plan(&d, &actual(vec![gone, killed]), &PlanOptions::default());
    assert_eq!(
        summary(&actions),
        ["Repair Container api", "Repair Container web"]
    );
    assert!(
        actions[0].reason.starts_with("drift: it was killed"),
        "{}",
        actions[0].reason
    );
    assert!(actions[1].reason.starts_with("drift: it is gone"));
}

#[test]
fn broken_plumbing_of_a_live_container_is_repaired() {
    let mut cut_off = running("web", "a");
    cut_off.fault = Some("its network namespace is gone".into());
    let d = desired(vec![container("web", "a"), container("api", "a")]);
    let actions = plan(
        &d,
        &actual(vec![cut_off, running("api", "a")]),
        &PlanOptions::default(),
    );
    assert_eq!(summary(&actions), ["Repair Container web"]);
    assert_eq!(actions[0].reason, "drift: its network namespace is gone");
}

#[test]
fn containers_that_may_finish_are_left_alone_when_they_did() {
    let mut done = container("once", "a");
    if let DesiredSpec::Container(spec) = &mut done.spec {
        spec.restart.policy = RestartPolicy::Never;
    }
    let mut exited = running("once", "a");
    exited.observed = Observed::Exited {
        code: Some(0),
        stopped: false,
    };
    assert!(plan(
        &desired(vec![done]),
        &actual(vec![exited]),
        &PlanOptions::default()
    )
    .is_empty());
}

#[test]
fn dependencies_come_first_and_started_is_satisfied_in_the_same_pass() {
    let d = desired(vec![
        with_deps(
            container("web", "a"),
            &[("db", DependencyCondition::Started)],
        ),
        container("db", "a"),
    ]);
    let actions = plan(&d, &actual(vec![]), &PlanOptions::default());
    assert_eq!(
        summary(&actions),
        ["Create Container db", "Create Container web"]
    );
}

#[test]
fn healthy_and_completed_conditions_wait_for_a_later_pass() {
    let d = desired(vec![
        with_deps(
            container("web", "a"),
            &[("db", DependencyCondition::Healthy)],
        ),
        with_deps(
            container("app", "a"),
            &[("migrate", DependencyCondition::Completed)],
        ),
        container("db", "a"),
        container("migrate", "a"),
    ]);
    let actions = plan(&d, &actual(vec![]), &PlanOptions::default());
    let waits: Vec<&Action> = actions.iter().filter(|a| a.verb == Verb::Wait).collect();
    assert_eq!(waits.len(), 2, "{actions:?}");
    assert!(waits
        .iter()
        .any(|a| a.name == "web" && a.reason.starts_with("waiting for db to be healthy")));
    assert!(waits
        .iter()
        .any(|a| a.name == "app" && a.reason.starts_with("waiting for migrate to be completed")));

    let mut db = running("db", "a");
    db.healthy = Some(true);
    let mut migrate = running("migrate", "a");
    migrate.observed = Observed::Exited {
        code: Some(0),
        stopped: false,
    };
    migrate.restart = RestartPolicy::Never;
    let mut d2 = d.clone();
    if let Some(DesiredSpec::Container(spec)) = d2
        .objects
        .iter_mut()
        .find(|o| o.name == "migrate")
        .map(|o| &mut o.spec)
    {
        spec.restart.policy = RestartPolicy::Never;
    }
    let actions = plan(&d2, &actual(vec![db, migrate]), &PlanOptions::default());
    assert_eq!(
        summary(&actions),
        ["Create Container app", "Create Container web"]
    );
}

#[test]
fn a_failed_completion_keeps_waiting() {
    let d = desired(vec![with_deps(
        container("app", "a"),
        &[("migrate", DependencyCondition::Completed)],
    )]);
    let mut migrate = running("migrate", "a");
    migrate.kind = Kind::Job;
    migrate.observed = Observed::Exited {
        code: Some(1),
        stopped: false,
    };
    let actions = plan(&d, &actual(vec![migrate]), &PlanOptions::default());
    assert_eq!(actions[0].verb, Verb::Wait);
}

#[test]
fn containers_berth_did_not_create_here_are_never_taken_over() {
    let mut adhoc = running("web", "a");
    adhoc.source = None;
    let actions = plan(
        &desired(vec![container("web", "b")]),
        &actual(vec![adhoc]),
        &PlanOptions::default(),
    );
    assert_eq!(actions[0].verb, Verb::Blocked);
    assert!(
        actions[0].reason.contains("belongs to berth run"),
        "{}",
        actions[0].reason
    );
}

#[test]
fn prune_deletes_only_this_sources_undeclared_objects() {
    let mut other_source = running("theirs", "a");
    other_source.source = Some("/elsewhere".into());
    let mut adhoc = running("adhoc", "a");
    adhoc.source = None;
    let mut a = actual(vec![
        running("web", "a"),
        running("old", "a"),
        other_source,
        adhoc,
    ]);
    a.networks = vec![shared("gone-net", "n")];
    a.volumes = vec![shared("gone-vol", "v")];
    let d = desired(vec![container("web", "a")]);
    assert!(
        plan(&d, &a, &PlanOptions::default()).is_empty(),
        "no prune without --prune"
    );
    let actions = plan(
        &d,
        &a,
        &PlanOptions {
            prune: true,
            prune_volumes: false,
            ..PlanOptions::default()
        },
    );
    assert_eq!(
        summary(&actions),
        ["Delete Container old", "Delete Network gone-net"]
    );
    let with_volumes = plan(
        &d,
        &a,
        &PlanOptions {
            prune: true,
            prune_volumes: true,
            ..PlanOptions::default()
        },
    );
    assert_eq!(
        summary(&with_volumes).last().unwrap(),
        "Delete Volume gone-vol"
    );
    // The events log tells a prune from another deletion by its reason.
    for action in &with_volumes {
        assert_eq!(
            super::events::kind_of(action),
            Some(crate::state::events::EventKind::Pruned),
            "{action:?}"
        );
    }
}

#[test]
fn prune_refuses_a_network_still_in_use() {
    let mut adhoc = running("adhoc", "a");
    adhoc.source = None;
    adhoc.networks = vec!["gone-net".into()];
    let mut a = actual(vec![adhoc]);
    a.networks = vec![shared("gone-net", "n")];
    let actions = plan(
        &desired(vec![]),
        &a,
        &PlanOptions {
            prune: true,
            prune_volumes: false,
            ..PlanOptions::default()
        },
    );
    assert_eq!(actions[0].verb, Verb::Blocked);
    assert!(actions[0].reason.contains("still used by adhoc"));
}

#[test]
fn prune_deletes_in_reverse_order() {
    let a = actual(vec![running("a-first", "a"), running("b-second", "a")]);
    let actions = plan(
        &desired(vec![]),
        &a,
        &PlanOptions {
            prune: true,
            prune_volumes: false,
            ..PlanOptions::default()
        },
    );
    assert_eq!(
        summary(&actions),
        ["Delete Container b-second", "Delete Container a-first"]
    );
}

#[test]
fn a_changed_network_is_replaced_after_its_containers_leave_it() {
    let mut web = on_network(container("web", "a"), "front");
    web.fingerprint.insert("network:front", b"new");
    let d = desired(vec![web, network("front", "new")]);
    let mut current = running("web", "a");
    current.networks = vec!["front".into()];
    let mut old = fp("a");
    old.insert("network:front", b"old");
    current.fingerprint = Some(old);
    let mut a = actual(vec![current]);
    a.networks = vec![shared("front", "old")];
    let actions = plan(&d, &a, &PlanOptions::default());
    assert_eq!(
        summary(&actions),
        [
            "Delete Container web",
            "Replace Network front",
            "Create Container web"
        ]
    );
}

#[test]
fn a_changed_network_used_by_others_is_blocked() {
    let d = desired(vec![network("front", "new")]);
    let mut adhoc = running("adhoc", "a");
    adhoc.source = None;
    adhoc.networks = vec!["front".into()];
    let mut a = actual(vec![adhoc]);
    a.networks = vec![shared("front", "old")];
    let actions = plan(&d, &a, &PlanOptions::default());
    assert_eq!(actions[0].verb, Verb::Blocked);
    assert!(actions[0].reason.contains("adhoc"), "{}", actions[0].reason);
}

#[test]
fn a_network_or_volume_another_set_made_is_never_taken_over() {
    let d = desired(vec![network("front", "new"), volume("data")]);
    let mut a = actual(vec![]);
    let mut theirs = shared("front", "old");
    theirs.source = Some("/srv/other".into());
    a.networks = vec![theirs];
    let mut data = shared("data", "v");
    data.source = Some("/srv/other".into());
    a.volumes = vec![data];
    let actions = plan(&d, &a, &PlanOptions::default());
    assert_eq!(
        summary(&actions),
        ["Blocked Volume data", "Blocked Network front"]
    );
    assert!(
        actions[1]
            .reason
            .contains("belongs to manifest set /srv/other"),
        "{}",
        actions[1].reason
    );
}

/// Regression: a volume whose record was corrupt read as one `berth run`
/// made, which any set could then use as its own.
#[test]
fn a_volume_whose_owner_is_unknown_is_blocked_and_never_deleted() {
    let d = desired(vec![volume("data"), container("web", "a")]);
    let mut a = actual(vec![running("web", "a")]);
    let mut data = shared("data", "v");
    data.source = None;
    data.fingerprint = None;
    a.volumes = vec![data];
    a.unknown_owners = vec![("data".into(), "its record was corrupt".into())];
    let actions = plan(&d, &a, &PlanOptions::default());
    assert_eq!(summary(&actions), ["Blocked Volume data"]);
    assert_eq!(actions[0].reason, "its record was corrupt");
    let deleted = plan_delete(&d, &a, true);
    let volume = deleted.iter().find(|a| a.target == Target::Volume).unwrap();
    assert_eq!(volume.verb, Verb::Blocked);
    assert!(volume.reason.starts_with("its record was corrupt"));
}

#[test]
fn a_container_whose_state_cannot_be_told_is_repaired_saying_why() {
    let mut unreadable = running("web", "a");
    unreadable.observed = Observed::Missing;
    unreadable.fault = Some("corrupt status file /s/containers/web/status.json".into());
    let d = desired(vec![container("web", "a")]);
    let actions = plan(&d, &actual(vec![unreadable]), &PlanOptions::default());
    assert_eq!(summary(&actions), ["Repair Container web"]);
    assert_eq!(
        actions[0].reason,
        "drift: corrupt status file /s/containers/web/status.json"
    );
}

#[test]
fn the_plan_is_deterministic() {
    let d = desired(vec![
        container("c", "1"),
        container("a", "1"),
        container("b", "1"),
        network("n2", "x"),
        network("n1", "x"),
    ]);
    let first = plan(&d, &actual(vec![]), &PlanOptions::default());
    for _ in 0..5 {
        assert_eq!(plan(&d, &actual(vec![]), &PlanOptions::default()), first);
    }
    assert_eq!(
        summary(&first),
        [
            "Create Network n1",
            "Create Network n2",
            "Create Container a",
            "Create Container b",
            "Create Container c"
        ]
    );
}

#[test]
fn delete_removes_declared_objects_dependents_first_and_keeps_volumes() {
    let d = desired(vec![
        with_deps(
            on_network(container("app", "a"), "front"),
            &[("db", DependencyCondition::Started)],
        ),
        on_network(container("db", "a"), "front"),
        container("not-running", "a"),
        network("front", "n"),
        volume("data"),
    ]);
    let mut a = actual(vec![running("db", "a"), running("app", "a")]);
    for c in &mut a.containers {
        c.networks = vec!["front".into()];
        c.volumes = vec!["data".into()];
    }
    a.networks = vec![shared("front", "n")];
    a.volumes = vec![shared("data", "v")];
    assert_eq!(
        summary(&plan_delete(&d, &a, false)),
        [
            "Delete Container app",
            "Delete Container db",
            "Delete Network front"
        ]
    );
    assert_eq!(
        summary(&plan_delete(&d, &a, true)).last().unwrap(),
        "Delete Volume data"
    );
}

#[test]
fn delete_leaves_what_others_own_or_still_use() {
    let mut theirs = running("web", "a");
    theirs.source = Some("/elsewhere".into());
    let mut adhoc = running("adhoc", "a");
    adhoc.source = None;
    adhoc.networks = vec!["front".into()];
    let mut a = actual(vec![theirs, adhoc]);
    a.networks = vec![shared("front", "n")];
    let d = desired(vec![container("web", "a"), network("front", "n")]);
    let actions = plan_delete(&d, &a, true);
    assert_eq!(
        summary(&actions),
        ["Blocked Container web", "Blocked Network front"]
    );
    assert!(actions[0].reason.contains("manifest set /elsewhere"));
    assert!(actions[1].reason.contains("still used by adhoc"));
}

#[test]
fn a_container_still_starting_is_waited_for() {
    let mut starting = running("web", "a");
    starting.observed = Observed::Created;
    let actions = plan(
        &desired(vec![container("web", "a")]),
        &actual(vec![starting]),
        &PlanOptions::default(),
    );
    assert_eq!(summary(&actions), ["Wait Container web"]);
    assert_eq!(actions[0].reason, "starting");
    assert!(!actions[0].is_change());
}

/// Regression: with the image record missing or unreadable, the image's
/// fingerprint part was `unresolved:...`, so plan said "the image changed"
/// and apply removed every container of that image, then failed to create
/// them. Unknown is not changed: the image is fetched, nothing replaced.
#[test]
fn an_unknown_image_is_fetched_and_replaces_nothing() {
    let mut old = fp("a");
    old.insert("image", b"sha256:1111");
    let mut current = running("web", "a");
    current.fingerprint = Some(old.clone());
    let unknown = container("web", "a"); // no image part: unresolved now
    let mut nothing_in_store = actual(vec![current.clone()]);
    nothing_in_store.images.clear();
    let actions = plan(
        &desired(vec![unknown.clone()]),
        &nothing_in_store,
        &PlanOptions::default(),
    );
    assert_eq!(
        summary(&actions),
        ["Pull Image docker.io/library/busybox:latest"]
    );

    // Something else changed too: that is a replacement, and its reason
    // does not blame the image.
    let mut env_changed = unknown;
    env_changed.fingerprint.insert("spec.env", b"2");
    let actions = plan(
        &desired(vec![env_changed]),
        &actual(vec![current.clone()]),
        &PlanOptions::default(),
    );
    assert_eq!(summary(&actions), ["Replace Container web"]);
    assert!(
        !actions[0].reason.contains("image"),
        "{}",
        actions[0].reason
    );

    // Known and different: a real change.
    let mut new_image = container("web", "a");
    new_image.fingerprint.insert("image", b"sha256:2222");
    let actions = plan(
        &desired(vec![new_image]),
        &actual(vec![current]),
        &PlanOptions::default(),
    );
    assert_eq!(summary(&actions), ["Replace Container web"]);
}

/// Make before break, as the planner orders it: the image a replacement
/// needs is pulled before the replacement, which the executor then
/// prepares (image, snapshot, spec) before it removes the old container.
#[test]
fn a_replacement_comes_after_the_pull_of_its_image() {
    let mut old = fp("a");
    old.insert("image", b"sha256:1111");
    let mut current = running("web", "a");
    current.fingerprint = Some(old);
    let mut changed = container("web", "a");
    changed.fingerprint.insert("image", b"sha256:2222");
    if let DesiredSpec::Container(spec) = &mut changed.spec {
        spec.image_pull_policy = PullPolicy::Always;
    }
    let actions = plan(
        &desired(vec![changed]),
        &actual(vec![current]),
        &PlanOptions::default(),
    );
    assert_eq!(
        summary(&actions),
        [
            "Pull Image docker.io/library/busybox:latest",
            "Replace Container web"
        ]
    );
}
