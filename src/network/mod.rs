//! Networks: CNI configuration, pinned network namespaces, result cache.

/// The network bridge-mode containers join when they name none.
pub const DEFAULT_NETWORK: &str = "default";
/// The built-in default network's subnet; declare a Network named `default` to change it.
pub const DEFAULT_SUBNET: &str = "10.88.0.0/16";
/// The built-in default network's bridge interface.
pub const DEFAULT_BRIDGE: &str = "berth0";
