//! A Network may not take over what the host needs: a loopback, link-local
//! or multicast subnet is refused by validation (with file and line), and
//! a bridge subnet holding the host's default gateway is refused at apply
//! with the route named, before any bridge exists.
//!
//! Regression: the bridge took such an address and the host lost its
//! uplink (or its loopback).

mod common;

use common::prereq;
use common::site::Site;

fn network_yaml(name: &str, subnet: &str, bridge: &str) -> String {
    format!(
        "apiVersion: berth/v1\nkind: Network\nmetadata:\n  name: {name}\nspec:\n  subnet: {subnet}\n  bridge: {bridge}\n"
    )
}

#[test]
fn a_loopback_or_link_local_subnet_is_refused_naming_the_field() {
    let site = Site::new("hn");
    site.write("lo.yaml", &network_yaml("lo", "127.0.0.0/8", "bhnlo"));
    site.write("ll.yaml", &network_yaml("ll", "169.254.0.0/16", "bhnll"));
    let output = site.run_set("validate", &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let text = format!("{stdout}{stderr}");
    assert!(!output.status.success(), "{text}");
    assert!(text.contains("lo.yaml:6:11: spec.subnet"), "{text}");
    assert!(text.contains("the loopback range"), "{text}");
    assert!(text.contains("the link-local range"), "{text}");
}

/// The host's IPv4 default gateway, from `ip route`.
fn default_gateway() -> Option<String> {
    let out = std::process::Command::new("ip")
        .args(["-4", "route", "show", "default"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut words = text.split_whitespace();
    words.find(|w| *w == "via")?;
    words.next().map(str::to_string)
}

#[test]
fn a_bridge_subnet_holding_the_default_gateway_is_refused_at_apply() {
    let test = "a_bridge_subnet_holding_the_default_gateway_is_refused_at_apply";
    if !prereq::require_apply(test) {
        return;
    }
    let Some(gateway) = default_gateway() else {
        panic!("{test}: this host has no IPv4 default route to test against");
    };
    let site = Site::new("hg");
    let bridge = format!("bhg{}", site.tag);
    let bridge = &bridge[..bridge.len().min(15)];
    site.own_bridge(bridge);
    site.write(
        "up.yaml",
        &network_yaml("uplink", &format!("{gateway}/32"), bridge),
    );
    let output = site.apply_command(&[]).output().expect("berth runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!output.status.success(), "{text}");
    assert!(
        text.contains(&format!("default gateway {gateway}")),
        "{text}"
    );
    assert!(!common::host::link_exists(bridge), "no bridge was made");
}
