//! Networks: CNI configuration, pinned network namespaces, result cache.
//!
//! The parts, from pure to effectful:
//!
//! - [`conflist`]: a Network spec becomes a CNI network configuration list
//!   (pure, unit-tested).
//! - [`cni`]: berth's own CNI invoker: runs plugin binaries with the CNI
//!   environment, chains ADD through a list, DEL in reverse, CHECK.
//! - [`netns`]: network namespaces pinned by a bind mount under the state dir,
//!   so they outlive the process that made them.
//! - [`cache`]: every ADD's inputs and result, written before (started) and
//!   after (added) the ADD, so a later DEL always has what it needs.
//! - [`leftovers`]: the iptables rules and chains a CNI DEL could not
//!   remove (its namespace or address was gone), found by the plugins'
//!   comments and chain names, and removed.
//! - [`rules`]: a bridge network's own iptables rules (masquerade and
//!   forwarding), one set per network instead of per container.
//! - [`attach`]: the high-level [`Networker`]: setup, teardown, check, sweep.
//!
//! Layout: `<root>/cni/results/<container>/<network>.json` (the cache),
//! `<root>/cni/ipam/<network>/` (host-local reservations), and
//! `<state>/netns/<container>` (the pinned namespace) with its lock
//! `<state>/netns/<container>.lock`.

pub mod attach;
pub mod cache;
pub mod cni;
pub mod conflist;
pub mod leftovers;
pub mod link;
pub mod netns;
pub mod rules;
pub mod store;

pub use attach::{hosts_file, AttachRequest, Attachment, NetworkError, NetworkRequest, Networker};
pub use cni::{CniError, Invoker};
pub use conflist::NetworkDef;

pub use crate::manifest::net::{DEFAULT_NETWORK, DEFAULT_SUBNET};

/// The built-in default network's bridge interface.
pub const DEFAULT_BRIDGE: &str = "berth0";
/// Where CNI plugins are looked for when nothing else is configured.
pub const DEFAULT_PLUGIN_PATH: &[&str] = &["/usr/lib/cni", "/opt/cni/bin"];
/// The CNI spec version of the lists berth generates.
pub const CNI_VERSION: &str = "1.0.0";

/// Whether `id` is usable as a container id or network name in CNI and in
/// berth's file names: 1-128 of letters, digits, `_`, `.` and `-`, starting
/// with a letter or digit, not ending in `.lock` or `.json`.
pub fn is_valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && id.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && !id.ends_with(".lock")
        && !id.ends_with(".json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_file_and_cni_safe() {
        assert!(is_valid_id("web-1"));
        assert!(is_valid_id("a_b.c"));
        assert!(!is_valid_id(""));
        assert!(!is_valid_id("-x"));
        assert!(!is_valid_id("../x"));
        assert!(!is_valid_id("a/b"));
        assert!(!is_valid_id("x.lock"));
    }
}
