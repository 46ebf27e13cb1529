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
