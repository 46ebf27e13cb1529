//! Files a manifest names are read with a bound: an env file that is
//! `/dev/zero` (or any endless or huge file) is refused at once, naming
//! the file, instead of being read until memory runs out.

mod common;

use common::site::{container_yaml, Site};

#[test]
fn an_endless_env_file_is_refused_naming_it() {
    let site = Site::new("bi");
    let name = format!("bi-{}", site.tag);
    site.write(
        "web.yaml",
        &container_yaml(&name, "  networkMode: none\n  envFiles: [/dev/zero]\n"),
    );
    // plan builds the desired state (which reads env files) and needs no root.
    let output = site.run_set("plan", &[]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!output.status.success(), "{text}");
    assert!(text.contains("env file /dev/zero"), "{text}");
    assert!(text.contains("not a regular file"), "{text}");
}

/// The bound on env files is a documented default that a flag moves: a
/// 2 KiB env file is refused under `--max-env-file-size 1Ki`, naming the
/// file and the flag, and read under the default.
#[test]
fn the_env_file_bound_is_raised_and_lowered_by_a_flag() {
    if !common::prereq::require_apply("the_env_file_bound_is_raised_and_lowered_by_a_flag") {
        return;
    }
    let site = Site::new("be");
    let name = format!("be-{}", site.tag);
    let vars: String = (0..200).map(|n| format!("VAR{n:04}=value\n")).collect();
    assert!(vars.len() > 2048);
    site.write("app.env", &vars);
    site.write(
        "web.yaml",
        &container_yaml(
            &name,
            "  networkMode: none\n  envFiles: [app.env]\n  command: [sleep, '3600']\n",
        ),
    );
    let output = site
        .apply_command(&["--max-env-file-size", "1Ki"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{text}");
    assert!(
        text.contains("app.env") && text.contains("1024-byte bound"),
        "{text}"
    );
    site.apply(&[]);
    assert!(site.sh(&name, "echo $VAR0199").contains("value"));
}

/// A manifest over `--max-manifest-size` is refused naming the flag; the
/// default reads it.
#[test]
fn the_manifest_size_bound_is_a_flag() {
    let site = Site::new("bm");
    let name = format!("bm-{}", site.tag);
    let padding: String = (0..100)
        .map(|n| format!("# padding line {n:04} ......\n"))
        .collect();
    site.write(
        "web.yaml",
        &(container_yaml(&name, "  networkMode: none\n") + &padding),
    );
    let output = site.run_set("validate", &["--max-manifest-size", "1Ki"]);
    let text = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{text}");
    assert!(
        text.contains("web.yaml") && text.contains("--max-manifest-size"),
        "{text}"
    );
    let output = site.run_set("validate", &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// 100k environment variables in an image config are refused at once
/// over the default bound, naming the flag; the flag moves the bound both
/// ways. (Linear spec building is pinned by a unit test with 200k entries:
/// running 100k here would time runc, whose environment set-up is
/// quadratic in glibc's setenv, not berth.) Regression: spec building was
/// quadratic (minutes) and unbounded.
#[test]
fn a_huge_image_environment_is_refused_at_a_bound_a_flag_moves() {
    let test = "a_huge_image_environment_is_refused_at_a_bound_a_flag_moves";
    if !common::prereq::require_apply(test) {
        return;
    }
    use common::images::{self as img, ImageSpec};
    let instance = common::instance::Instance::with_busybox();
    let mut spec = ImageSpec::busybox();
    spec.env.extend((0..100_000).map(|n| format!("V{n}=1")));
    let layout = instance.path().join("images/manyenv");
    img::write_oci_layout(&layout, &[(&img::build_image(&spec), "latest")]);
    let image = format!("oci-layout:{}", layout.display());
    let error = instance.fails(&["run", "--rm", &image, "true"]);
    assert!(
        error.contains("100001 entries") && error.contains("--max-env-entries"),
        "{error}"
    );

    // busybox's config sets PATH and -e one more: 2 settings (the defaults
    // berth fills in, HOSTNAME here, are not counted).
    let busybox = instance.busybox();
    let run = |bound: &str| {
        instance.run(&[
            "--max-env-entries",
            bound,
            "run",
            "--rm",
            "-e",
            "X=1",
            &busybox,
            "sh",
            "-c",
            "echo $X",
        ])
    };
    let lowered = run("1");
    assert!(!lowered.status.success());
    assert!(String::from_utf8_lossy(&lowered.stderr).contains("over the bound of 1"));
    let enough = run("2");
    assert_eq!(String::from_utf8_lossy(&enough.stdout).trim(), "1");
}
