//! Subnets in CIDR form, for Network specs and static-address checks.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// The network bridge-mode containers join when they name none.
pub const DEFAULT_NETWORK: &str = "default";
/// The built-in default network's subnet; declare a Network named `default` to change it.
pub const DEFAULT_SUBNET: &str = "10.88.0.0/16";

/// Ranges no container network may claim.
const SPECIAL_USE: &[(&str, &str)] = &[
    ("0.0.0.0/8", "this-host"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("fe80::/10", "link-local"),
    ("ff00::/8", "multicast"),
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "{input:?} is not a valid subnet: {reason} (expected ADDRESS/PREFIX such as 10.231.0.0/24)"
)]
pub struct CidrError {
    input: String,
    reason: &'static str,
}

/// An IPv4 or IPv6 network: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    pub address: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    fn max_prefix(address: IpAddr) -> u8 {
        if address.is_ipv4() {
            32
        } else {
            128
        }
    }

    fn to_bits(address: IpAddr) -> u128 {
        match address {
            IpAddr::V4(v4) => u128::from(u32::from(v4)),
            IpAddr::V6(v6) => u128::from(v6),
        }
    }

    fn mask(self) -> u128 {
        let width = u32::from(Self::max_prefix(self.address));
        let host_bits = width - u32::from(self.prefix);
        let all = if width == 128 {
            u128::MAX
        } else {
            (1u128 << width) - 1
        };
        if host_bits >= 128 {
            0
        } else {
            all & !((1u128 << host_bits) - 1)
        }
    }

    /// Whether `ip` lies inside this network.
    pub fn contains(self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.address.is_ipv4()
            && Self::to_bits(ip) & self.mask() == Self::to_bits(self.address) & self.mask()
    }

    /// Whether the two networks share any address.
    pub fn overlaps(self, other: Cidr) -> bool {
        self.contains(other.address) || other.contains(self.address)
    }

    /// The special-use range this network overlaps, and what it is for: a
    /// bridge that takes such an address breaks the host (loopback) or
    /// what the host reaches through it.
    pub fn special_use(self) -> Option<(Cidr, &'static str)> {
        SPECIAL_USE.iter().find_map(|(range, what)| {
            let range: Cidr = range.parse().ok()?;
            self.overlaps(range).then_some((range, *what))
        })
    }

    /// Whether `other` lies entirely inside this network.
    pub fn contains_net(self, other: Cidr) -> bool {
        other.prefix >= self.prefix && self.contains(other.address)
    }

    /// The network address itself (all host bits zero).
    pub fn is_network_address(self, ip: IpAddr) -> bool {
        self.contains(ip) && Self::to_bits(ip) & !self.mask() == 0 && self.host_bits() > 1
    }

    /// The IPv4 broadcast address (all host bits one).
    pub fn is_broadcast_address(self, ip: IpAddr) -> bool {
        let host_mask = !self.mask()
            & if ip.is_ipv4() {
                u128::from(u32::MAX)
            } else {
                u128::MAX
            };
        ip.is_ipv4()
            && self.contains(ip)
            && self.host_bits() > 1
            && Self::to_bits(ip) & host_mask == host_mask
    }

    fn host_bits(self) -> u32 {
        u32::from(Self::max_prefix(self.address) - self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let fail = |reason| CidrError {
            input: input.to_string(),
            reason,
        };
        let (address, prefix) = input
            .split_once('/')
            .ok_or_else(|| fail("the /PREFIX is missing"))?;
        let address: IpAddr = address
            .parse()
            .map_err(|_| fail("the address is not an IP address"))?;
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| fail("the prefix is not a number"))?;
        if prefix > Self::max_prefix(address) {
            return Err(fail("the prefix is longer than the address"));
        }
        let cidr = Cidr { address, prefix };
        if Self::to_bits(address)
            & !cidr.mask()
            & if address.is_ipv4() {
                u128::from(u32::MAX)
            } else {
                u128::MAX
            }
            != 0
        {
            return Err(fail("host bits are set (write the network address)"));
        }
        Ok(cidr)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(de::Error::custom)
    }
}

impl JsonSchema for Cidr {
    fn schema_name() -> Cow<'static, str> {
        "Cidr".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "title": "Subnet",
            "description": "An IPv4 or IPv6 network in CIDR form: the network address and a prefix length.",
            "type": "string",
            "pattern": "^[0-9a-fA-F.:]+/[0-9]{1,3}$",
            "examples": ["10.231.0.0/24", "fd00:b::/64"],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_use_ranges_are_named_and_ordinary_subnets_pass() {
        let named = |s: &str| {
            s.parse::<Cidr>()
                .unwrap()
                .special_use()
                .map(|(_, what)| what)
        };
        assert_eq!(named("127.0.0.0/8"), Some("loopback"));
        assert_eq!(named("127.1.0.0/16"), Some("loopback"));
        assert_eq!(named("0.0.0.0/0"), Some("this-host"));
        assert_eq!(named("169.254.10.0/24"), Some("link-local"));
        assert_eq!(named("239.1.0.0/16"), Some("multicast"));
        assert_eq!(named("fe80::/64"), Some("link-local"));
        assert_eq!(named("10.88.0.0/16"), None);
        assert_eq!(named("fd00:1::/64"), None);
    }

    fn cidr(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn membership_follows_the_prefix() {
        let net = cidr("10.231.0.0/24");
        assert!(net.contains(ip("10.231.0.7")));
        assert!(!net.contains(ip("10.231.1.7")));
        assert!(!net.contains(ip("fd00::1")));
        assert!(cidr("0.0.0.0/0").contains(ip("1.2.3.4")));
        assert!(cidr("fd00:b::/64").contains(ip("fd00:b::9")));
        assert!(!cidr("fd00:b::/64").contains(ip("fd00:c::9")));
    }

    #[test]
    fn network_and_broadcast_addresses_are_recognized() {
        let net = cidr("10.231.0.0/24");
        assert!(net.is_network_address(ip("10.231.0.0")));
        assert!(net.is_broadcast_address(ip("10.231.0.255")));
        assert!(!net.is_broadcast_address(ip("10.231.0.254")));
    }

    #[test]
    fn subranges_nest() {
        assert!(cidr("10.0.0.0/16").contains_net(cidr("10.0.5.0/24")));
        assert!(!cidr("10.0.5.0/24").contains_net(cidr("10.0.0.0/16")));
    }

    #[test]
    fn malformed_subnets_are_rejected() {
        for bad in [
            "10.0.0.0",
            "10.0.0.0/33",
            "10.0.0.1/24",
            "x/8",
            "10.0.0.0/x",
            "fd00::/129",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad:?} should be rejected");
        }
    }
}
