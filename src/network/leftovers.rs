//! What the CNI plugins leave in iptables' `nat` table when their DEL
//! cannot clean up, and its removal.
//!
//! The bridge plugin masquerades a container's traffic through a chain of
//! its own, `CNI-` and 24 hex digits of sha512(network name + container id),
//! entered from `nat POSTROUTING` by one rule per address, each commented
//! `name: "NET" id: "ID"`. Its DEL learns those addresses from the
//! container's interface inside the netns: when the namespace is gone (a
//! reboot) or the address was removed from the interface, the DEL succeeds
//! and the rules and the chain stay for ever. portmap's chain is `CNI-DN-`
//! and the same hash (28 characters in all), entered from
//! `CNI-HOSTPORT-DNAT` by rules commented `dnat name: "NET" id: "ID"`; its
//! DEL needs no namespace, but one that failed half-way leaves them too.
//!
//! The parts: [`parse`] reads `iptables -S` output (pure); [`plan`] picks
//! what one attachment left from a listing (pure): the rules outside its own
//! chains whose comment names exactly that network and container (never an
//! address alone), then its chains, flushed and deleted; [`owners`] lists
//! every attachment the comments of a listing name (gc's candidates);
//! [`clean`] removes one attachment's leftovers through [`NatTables`], whose
//! real implementation [`HostIptables`] runs the `iptables` binaries the
//! plugins use (with `-w`, so it waits for the xtables lock).

use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha512};

/// The comment iptables keeps is at most 255 bytes; portmap cuts longer
/// ones to 253 and `...`.
const MAX_COMMENT: usize = 255;
/// iptables chain names have 28 characters at most.
const MAX_CHAIN: usize = 28;

/// Which iptables: IPv4 (`iptables`) or IPv6 (`ip6tables`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub const ALL: [Family; 2] = [Family::V4, Family::V6];

    pub fn binary(self) -> &'static str {
        match self {
            Family::V4 => "iptables",
            Family::V6 => "ip6tables",
        }
    }

    pub fn of(ip: IpAddr) -> Family {
        if ip.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }
}

/// One `-A CHAIN SPEC...` line of `iptables -S`, its words unquoted: what
/// `iptables -D CHAIN SPEC...` deletes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub chain: String,
    pub spec: Vec<String>,
}

impl Rule {
    /// The word after `flag`, if the rule has that flag.
    fn value(&self, flag: &str) -> Option<&str> {
        let at = self.spec.iter().position(|w| w == flag)?;
        self.spec.get(at + 1).map(String::as_str)
    }

    pub fn comment(&self) -> Option<&str> {
        self.value("--comment")
    }

    /// The chain or target the rule jumps to.
    pub fn target(&self) -> Option<&str> {
        self.value("-j")
    }

    /// The address after `flag` unless negated (`! -d 224.0.0.0/4`).
    fn address(&self, flag: &str) -> Option<IpAddr> {
        let at = self.spec.iter().position(|w| w == flag)?;
        if at > 0 && self.spec[at - 1] == "!" {
            return None;
        }
        let value = self.spec.get(at + 1)?;
        if flag == "--to-destination" {
            destination_address(value)
        } else {
            value.split('/').next()?.parse().ok()
        }
    }
}

/// The address of a DNAT destination: `10.0.0.2:80`, `[fd00::2]:80`, or
/// either without a port.
fn destination_address(value: &str) -> Option<IpAddr> {
    if let Some(rest) = value.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    value
        .parse()
        .ok()
        .or_else(|| value.split(':').next()?.parse().ok())
}

/// A parsed `iptables -t nat -S`: the chains it declares and its rules in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NatTable {
    pub chains: Vec<String>,
    pub rules: Vec<Rule>,
}

#[derive(Debug, thiserror::Error)]
pub enum LeftoverError {
    #[error("cannot run {binary}: {source}")]
    Spawn { binary: PathBuf, source: io::Error },
    #[error("{binary} {args} failed: {stderr}")]
    Failed {
        binary: PathBuf,
        args: String,
        stderr: String,
    },
    #[error("{binary} -S, line {line}: {reason}")]
    Parse {
        binary: String,
        line: usize,
        reason: &'static str,
    },
    #[error("network {network}: container {container}: {what} is still in the {family:?} nat table after its removal")]
    Stayed {
        network: String,
        container: String,
        family: Family,
        what: String,
    },
}

/// Reads `iptables -S` output: `-P`/`-N` lines declare chains, `-A` lines
/// are rules, `#` lines are comments; anything else is an error (a listing we do not understand is
/// no basis for deleting).
pub fn parse(text: &str) -> Result<NatTable, (usize, &'static str)> {
    let mut table = NatTable::default();
    for (index, line) in text.lines().enumerate() {
        let line_error = |reason| (index + 1, reason);
        // iptables-nft warns in comment lines (legacy tables present).
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = split_words(line).map_err(line_error)?.into_iter();
        let (Some(verb), Some(chain)) = (words.next(), words.next()) else {
            return Err(line_error("fewer than two words"));
        };
        match verb.as_str() {
            "-P" | "-N" => table.chains.push(chain),
            "-A" => table.rules.push(Rule {
                chain,
                spec: words.collect(),
            }),
            _ => return Err(line_error("neither -P, -N nor -A")),
        }
    }
    Ok(table)
}

/// Splits a line as iptables quotes it: words apart by spaces, a word in
/// double quotes may hold spaces, and `\"` and `\\` inside stand for
/// themselves.
fn split_words(line: &str) -> Result<Vec<String>, &'static str> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| *c == ' ').is_some() {}
        let Some(first) = chars.next() else {
            return Ok(words);
        };
        let mut word = String::new();
        if first == '"' {
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => word.push(chars.next().ok_or("a quote ends in a backslash")?),
                    Some(c) => word.push(c),
                    None => return Err("an unterminated quote"),
                }
            }
        } else {
            word.push(first);
            while let Some(c) = chars.next_if(|c| *c != ' ') {
                word.push(c);
            }
        }
        words.push(word);
    }
}

/// One container's attachment to one network, as the plugins name it in
/// their comments and chain names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Owner {
    pub network: String,
    pub container: String,
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "network {} container {}", self.network, self.container)
    }
}

impl Owner {
    pub fn new(network: &str, container: &str) -> Owner {
        Owner {
            network: network.to_string(),
            container: container.to_string(),
        }
    }

    fn hash_hex(&self) -> String {
        let mut hasher = Sha512::new();
        hasher.update(self.network.as_bytes());
        hasher.update(self.container.as_bytes());
        crate::state::hex::encode(&hasher.finalize())
    }

    fn chain_with_prefix(&self, prefix: &str) -> String {
        let mut name = format!("CNI-{prefix}{}", self.hash_hex());
        name.truncate(MAX_CHAIN);
        name
    }

    /// The bridge (and ptp) plugin's masquerade chain.
    pub fn masquerade_chain(&self) -> String {
        self.chain_with_prefix("")
    }

    /// portmap's DNAT chain.
    pub fn dnat_chain(&self) -> String {
        self.chain_with_prefix("DN-")
    }

    /// The SNAT chain portmap made before 0.7; its DEL still removes it.
    fn old_snat_chain(&self) -> String {
        self.chain_with_prefix("SN-")
    }

    fn chains(&self) -> [String; 3] {
        [
            self.masquerade_chain(),
            self.dnat_chain(),
            self.old_snat_chain(),
        ]
    }

    /// The comment with `prefix` (empty for the bridge, `dnat ` for
    /// portmap) as the plugin writes it, untruncated.
    fn comment(&self, prefix: &str) -> String {
        format!(
            "{prefix}name: \"{}\" id: \"{}\"",
            self.network, self.container
        )
    }

    /// Whether a rule's comment is this owner's, exactly. A comment cut to
    /// iptables' limit could be another container's whose id begins the
    /// same, so a cut one counts only on a rule that jumps to this owner's
    /// own chain.
    fn owns(&self, rule: &Rule) -> bool {
        let Some(comment) = rule.comment() else {
            return false;
        };
        let chains = self.chains();
        ["", "dnat "].iter().any(|prefix| {
            let full = self.comment(prefix);
            comment == full
                || (full.len() > MAX_COMMENT
                    && comment == cut_comment(&full)
                    && rule.target().is_some_and(|t| chains.iter().any(|c| c == t)))
        })
    }
}

/// portmap's cut: 253 bytes and `...` (valid names and ids are ASCII).
fn cut_comment(full: &str) -> String {
    format!("{}...", &full[..MAX_COMMENT - 2])
}

/// The owner a plugin comment names, if it is whole (not cut) and in the
/// form the bridge and portmap plugins write.
pub fn owner_of(comment: &str) -> Option<Owner> {
    let rest = comment.strip_prefix("dnat ").unwrap_or(comment);
    let rest = rest.strip_prefix("name: \"")?;
    let (network, rest) = rest.split_once("\" id: \"")?;
    let container = rest.strip_suffix('"')?;
    let plain = |s: &str| !s.is_empty() && !s.contains(['"', '\\']);
    (plain(network) && plain(container)).then(|| Owner::new(network, container))
}

/// Every owner the comments of `table` name, once each.
pub fn owners(table: &NatTable) -> BTreeSet<Owner> {
    table
        .rules
        .iter()
        .filter_map(Rule::comment)
        .filter_map(owner_of)
        .collect()
}

/// What one attachment left in a table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removal {
    /// Rules in other chains (POSTROUTING, CNI-HOSTPORT-DNAT) that name the
    /// owner: deleted one by one, before the chains they jump to.
    pub rules: Vec<Rule>,
    /// The owner's own chains that exist: flushed, then deleted.
    pub chains: Vec<String>,
    /// The rules inside those chains (they go with the flush).
    pub chained: Vec<Rule>,
}

impl Removal {
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.chains.is_empty()
    }

    /// How many rules go, inside the chains or not.
    pub fn rule_count(&self) -> usize {
        self.rules.len() + self.chained.len()
    }

    /// The container's own addresses: the sources of its masquerade jumps
    /// and the destinations of its DNAT rules.
    pub fn own_addresses(&self) -> Vec<IpAddr> {
        let mut addresses: Vec<IpAddr> = self.jump_and_dnat_addresses().collect();
        addresses.sort();
        addresses.dedup();
        addresses
    }

    fn jump_and_dnat_addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        let jumps = self.rules.iter().filter_map(|r| r.address("-s"));
        let dnat = self
            .chained
            .iter()
            .filter_map(|r| r.address("--to-destination"));
        jumps.chain(dnat)
    }

    /// The addresses that say where the container was: the source of a
    /// masquerade jump, the destination of a DNAT rule, the subnet its
    /// masquerade chain accepts. What gc checks against the network's subnet
    /// before it removes anything.
    pub fn container_addresses(&self) -> Vec<IpAddr> {
        let accepted = self
            .chained
            .iter()
            .filter(|r| r.target() == Some("ACCEPT"))
            .filter_map(|r| r.address("-d"));
        self.jump_and_dnat_addresses().chain(accepted).collect()
    }
}

/// Picks what `owner` left in `table`. Pure.
///
/// The plugins hash the network name and container id run together, so
/// `net0`+`web` and `net`+`0web` share chain names: a chain whose rules, or
/// a rule jumping to it, name another owner in their comment is not this
/// owner's.
pub fn plan(table: &NatTable, owner: &Owner) -> Removal {
    let names_another = |chain: &str| {
        table.rules.iter().any(|r| {
            (r.chain == chain || r.target() == Some(chain))
                && r.comment()
                    .and_then(owner_of)
                    .is_some_and(|named| named != *owner)
        })
    };
    let chains: Vec<String> = table
        .chains
        .iter()
        .filter(|c| owner.chains().contains(c) && !names_another(c))
        .cloned()
        .collect();
    let is_own = |chain: &str| chains.iter().any(|c| c == chain);
    let (chained, outside): (Vec<&Rule>, Vec<&Rule>) =
        table.rules.iter().partition(|r| is_own(&r.chain));
    Removal {
        rules: outside
            .into_iter()
            .filter(|r| owner.owns(r))
            .cloned()
            .collect(),
        chained: chained.into_iter().cloned().collect(),
        chains,
    }
}

/// The host's nat tables, as far as removing leftovers needs them.
///
/// Contract: `list` returns None when the host has no such table (no
/// binary, or the kernel lacks the table); the two deletions report what
/// iptables refused, and [`clean`] decides whether that matters (a rule
/// someone else removed meanwhile does not).
pub trait NatTables: fmt::Debug + Send + Sync {
    fn list(&self, family: Family) -> Result<Option<NatTable>, LeftoverError>;
    fn delete_rule(&self, family: Family, rule: &Rule) -> Result<(), LeftoverError>;
    /// Flushes the chain, then deletes it.
    fn delete_chain(&self, family: Family, chain: &str) -> Result<(), LeftoverError>;
}

/// Removes what `owner`'s attachment left in the tables of `families`:
/// returns how many rules went. A deletion iptables refuses is an error
/// only if what it should have deleted is still there afterwards.
pub fn clean(
    tables: &dyn NatTables,
    owner: &Owner,
    families: &[Family],
) -> Result<usize, LeftoverError> {
    let mut removed = 0;
    for &family in families {
        let Some(table) = tables.list(family)? else {
            continue;
        };
        removed += remove(tables, family, owner, &plan(&table, owner))?;
    }
    Ok(removed)
}

/// Carries out a [`Removal`] made from a listing of `family`'s table.
pub fn remove(
    tables: &dyn NatTables,
    family: Family,
    owner: &Owner,
    removal: &Removal,
) -> Result<usize, LeftoverError> {
    if removal.is_empty() {
        return Ok(0);
    }
    let mut refused = None;
    for rule in &removal.rules {
        if let Err(error) = tables.delete_rule(family, rule) {
            refused.get_or_insert(error);
        }
    }
    for chain in &removal.chains {
        if let Err(error) = tables.delete_chain(family, chain) {
            refused.get_or_insert(error);
        }
    }
    if let Some(error) = refused {
        tracing::debug!(%error, %owner, "iptables refused a deletion; checking what is left");
        let left = tables.list(family)?.unwrap_or_default();
        let remaining = plan(&left, owner);
        if let Some(what) = remaining
            .rules
            .first()
            .map(|r| format!("rule -A {} {}", r.chain, r.spec.join(" ")))
            .or_else(|| remaining.chains.first().map(|c| format!("chain {c}")))
        {
            tracing::warn!(%error, %owner, "iptables refused a deletion");
            return Err(LeftoverError::Stayed {
                network: owner.network.clone(),
                container: owner.container.clone(),
                family,
                what,
            });
        }
    }
    Ok(removal.rule_count())
}

/// The `iptables` and `ip6tables` binaries the CNI plugins use: the first
/// found on PATH, else in the sbin directories.
#[derive(Debug, Clone, Default)]
pub struct HostIptables;

impl HostIptables {
    pub(super) fn binary(family: Family) -> Option<PathBuf> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
            .map(|dir| dir.join(family.binary()))
            .find(|candidate| candidate.is_file())
    }

    fn run(binary: &Path, args: &[&str]) -> Result<Result<String, String>, LeftoverError> {
        let output = Command::new(binary)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| LeftoverError::Spawn {
                binary: binary.to_path_buf(),
                source,
            })?;
        Ok(if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).trim().to_string())
        })
    }

    fn change(family: Family, args: &[&str]) -> Result<(), LeftoverError> {
        let Some(binary) = Self::binary(family) else {
            return Ok(());
        };
        let mut full = vec!["-w", "-t", "nat"];
        full.extend_from_slice(args);
        Self::run(&binary, &full)?
            .map(drop)
            .map_err(|stderr| LeftoverError::Failed {
                binary,
                args: full.join(" "),
                stderr,
            })
    }
}

impl NatTables for HostIptables {
    fn list(&self, family: Family) -> Result<Option<NatTable>, LeftoverError> {
        let Some(binary) = Self::binary(family) else {
            return Ok(None);
        };
        match Self::run(&binary, &["-w", "-t", "nat", "-S"])? {
            Ok(text) => parse(&text)
                .map(Some)
                .map_err(|(line, reason)| LeftoverError::Parse {
                    binary: family.binary().to_string(),
                    line,
                    reason,
                }),
            // No nat table for this family in the kernel: nothing was put there.
            Err(stderr) => {
                tracing::debug!(%stderr, binary = %binary.display(), "no nat table to list");
                Ok(None)
            }
        }
    }

    fn delete_rule(&self, family: Family, rule: &Rule) -> Result<(), LeftoverError> {
        let mut args = vec!["-D", rule.chain.as_str()];
        args.extend(rule.spec.iter().map(String::as_str));
        Self::change(family, &args)
    }

    fn delete_chain(&self, family: Family, chain: &str) -> Result<(), LeftoverError> {
        Self::change(family, &["-F", chain])?;
        Self::change(family, &["-X", chain])
    }
}

/// In-memory nat tables for tests: deletions change the listing.
#[cfg(test)]
pub mod fake {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use super::*;

    #[derive(Debug, Default)]
    pub struct FakeTables {
        pub tables: Mutex<BTreeMap<Family, NatTable>>,
        /// Deletions that fail although they happen (as when a racing
        /// cleanup got there first).
        pub refuse_after_deleting: bool,
    }

    impl FakeTables {
        pub fn with(family: Family, text: &str) -> FakeTables {
            let fake = FakeTables::default();
            fake.tables
                .lock()
                .unwrap()
                .insert(family, parse(text).unwrap());
            fake
        }

        pub fn table(&self, family: Family) -> NatTable {
            self.tables.lock().unwrap()[&family].clone()
        }

        fn outcome(&self) -> Result<(), LeftoverError> {
            if self.refuse_after_deleting {
                Err(LeftoverError::Failed {
                    binary: "fake".into(),
                    args: String::new(),
                    stderr: "no such rule".into(),
                })
            } else {
                Ok(())
            }
        }
    }

    impl NatTables for FakeTables {
        fn list(&self, family: Family) -> Result<Option<NatTable>, LeftoverError> {
            Ok(self.tables.lock().unwrap().get(&family).cloned())
        }

        fn delete_rule(&self, family: Family, rule: &Rule) -> Result<(), LeftoverError> {
            let mut tables = self.tables.lock().unwrap();
            let table = tables.get_mut(&family).expect("listed family");
            if let Some(at) = table.rules.iter().position(|r| r == rule) {
                table.rules.remove(at);
            }
            self.outcome()
        }

        fn delete_chain(&self, family: Family, chain: &str) -> Result<(), LeftoverError> {
            let mut tables = self.tables.lock().unwrap();
            let table = tables.get_mut(&family).expect("listed family");
            table.rules.retain(|r| r.chain != chain);
            table.chains.retain(|c| c != chain);
            self.outcome()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakeTables;
    use super::*;

    /// `iptables -t nat -S` (iptables 1.8.9, nf_tables; CNI plugins 1.1.1)
    /// on a host after a reboot: berth's network `net0` with container
    /// `web-1` masqueraded and publishing 127.0.0.1:8080, `lfnet`/`lcut`
    /// whose chain the plugin emptied but could not delete, `web-10` whose
    /// id begins like `web-1`'s, and a rule of podman's network. The lines
    /// are the real ones with names and addresses changed.
    const LISTING: &str = r#"-P PREROUTING ACCEPT
-P INPUT ACCEPT
-P OUTPUT ACCEPT
-P POSTROUTING ACCEPT
-N CNI-667a8e150a24cffb32755494
-N CNI-DN-5b1e0f2c9e4bd1fd6e4b6
-N CNI-HOSTPORT-DNAT
-N CNI-HOSTPORT-MASQ
-N CNI-HOSTPORT-SETMARK
-N CNI-a2a7bb8c5d1c6ac7d8d4b2f0
-N CNI-ffd3c9e6b1dbe4f0a6c1d2e3
-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
-A OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
-A POSTROUTING -m comment --comment "CNI portfwd requiring masquerade" -j CNI-HOSTPORT-MASQ
-A POSTROUTING -s 10.246.104.2/32 -m comment --comment "name: \"lfnet\" id: \"lcut\"" -j CNI-667a8e150a24cffb32755494
-A POSTROUTING -s 10.233.109.2/32 -m comment --comment "name: \"net0\" id: \"web-1\"" -j CNI-a2a7bb8c5d1c6ac7d8d4b2f0
-A POSTROUTING -s 10.233.109.3/32 -m comment --comment "name: \"net0\" id: \"web-10\"" -j CNI-ffd3c9e6b1dbe4f0a6c1d2e3
-A POSTROUTING -s 10.88.0.4/32 -m comment --comment "name: \"podman\" id: \"0f1e2d3c\"" -j CNI-0f1e2d3c4b5a69788796a5b4
-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \"net0\" id: \"web-1\"" -m multiport --dports 8080 -j CNI-DN-5b1e0f2c9e4bd1fd6e4b6
-A CNI-a2a7bb8c5d1c6ac7d8d4b2f0 -d 10.233.109.0/24 -m comment --comment "name: \"net0\" id: \"web-1\"" -j ACCEPT
-A CNI-a2a7bb8c5d1c6ac7d8d4b2f0 ! -d 224.0.0.0/4 -m comment --comment "name: \"net0\" id: \"web-1\"" -j MASQUERADE
-A CNI-DN-5b1e0f2c9e4bd1fd6e4b6 -s 10.233.109.0/24 -d 127.0.0.1/32 -p tcp -m tcp --dport 8080 -j CNI-HOSTPORT-SETMARK
-A CNI-DN-5b1e0f2c9e4bd1fd6e4b6 -s 127.0.0.1/32 -d 127.0.0.1/32 -p tcp -m tcp --dport 8080 -j CNI-HOSTPORT-SETMARK
-A CNI-DN-5b1e0f2c9e4bd1fd6e4b6 -d 127.0.0.1/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.233.109.2:80
-A CNI-HOSTPORT-MASQ -m mark --mark 0x2000/0x2000 -j MASQUERADE
-A CNI-HOSTPORT-SETMARK -m comment --comment "CNI portfwd masquerade mark" -j MARK --set-xmark 0x2000/0x2000
"#;

    /// The listing with the chain names the plugins would really use for
    /// `net0`/`web-1` (the literal above holds placeholders, since the hash
    /// is what is under test).
    fn listing() -> String {
        let web = Owner::new("net0", "web-1");
        LISTING
            .replace("CNI-a2a7bb8c5d1c6ac7d8d4b2f0", &web.masquerade_chain())
            .replace("CNI-DN-5b1e0f2c9e4bd1fd6e4b6", &web.dnat_chain())
    }

    #[test]
    fn chain_names_are_the_plugins_sha512_of_network_and_container() {
        // Checked against chains the bridge plugin made on a real host.
        assert_eq!(
            Owner::new("lfnet", "lcut").masquerade_chain(),
            "CNI-667a8e150a24cffb32755494"
        );
        assert_eq!(
            Owner::new("net0", "user-6689-1").masquerade_chain(),
            "CNI-6e3e1cc4b8487139e20a0047"
        );
        let dnat = Owner::new("lfnet", "lcut").dnat_chain();
        assert_eq!(dnat.len(), 28);
        assert!(dnat.starts_with("CNI-DN-667a8e150a24cffb32755"), "{dnat}");
    }

    #[test]
    fn the_parser_reads_chains_rules_and_quoted_comments() {
        let table = parse(&listing()).unwrap();
        assert_eq!(table.chains.len(), 11);
        let lcut = &table.rules[3];
        assert_eq!(lcut.chain, "POSTROUTING");
        assert_eq!(
            lcut.spec,
            [
                "-s",
                "10.246.104.2/32",
                "-m",
                "comment",
                "--comment",
                "name: \"lfnet\" id: \"lcut\"",
                "-j",
                "CNI-667a8e150a24cffb32755494"
            ]
        );
        assert_eq!(lcut.target(), Some("CNI-667a8e150a24cffb32755494"));
        assert!(parse("-A POSTROUTING --comment \"open").is_err());
        assert!(parse("# Warning: iptables-legacy tables present\n-N X")
            .is_ok_and(|t| t.chains == ["X"]));
        assert!(parse("-X POSTROUTING").is_err());
    }

    #[test]
    fn plan_takes_the_owners_jumps_and_chains_and_nothing_of_a_similar_id() {
        let table = parse(&listing()).unwrap();
        let web = Owner::new("net0", "web-1");
        let removal = plan(&table, &web);
        let jumps: Vec<&str> = removal.rules.iter().map(|r| r.chain.as_str()).collect();
        assert_eq!(jumps, ["POSTROUTING", "CNI-HOSTPORT-DNAT"]);
        assert!(removal.rules[0]
            .spec
            .contains(&"10.233.109.2/32".to_string()));
        assert_eq!(removal.chains, [web.dnat_chain(), web.masquerade_chain()]);
        assert_eq!(removal.chained.len(), 5);
        assert_eq!(removal.rule_count(), 7);
        let expected: Vec<IpAddr> = ["10.233.109.2", "10.233.109.2", "10.233.109.0"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(removal.container_addresses(), expected);
    }

    #[test]
    fn an_empty_chain_and_its_jump_are_found_and_a_stranger_is_not() {
        let table = parse(&listing()).unwrap();
        let lcut = plan(&table, &Owner::new("lfnet", "lcut"));
        assert_eq!(lcut.rules.len(), 1);
        assert_eq!(lcut.chains, ["CNI-667a8e150a24cffb32755494"]);
        assert!(plan(&table, &Owner::new("net0", "web")).is_empty());
        // The same hash as net0/web-1, whose comments its chains carry.
        assert_eq!(
            Owner::new("net", "0web-1").masquerade_chain(),
            Owner::new("net0", "web-1").masquerade_chain()
        );
        assert!(plan(&table, &Owner::new("net", "0web-1")).is_empty());
    }

    #[test]
    fn owners_are_read_from_whole_comments_only() {
        let table = parse(&listing()).unwrap();
        let owners: Vec<String> = owners(&table).iter().map(Owner::to_string).collect();
        assert_eq!(
            owners,
            [
                "network lfnet container lcut",
                "network net0 container web-1",
                "network net0 container web-10",
                "network podman container 0f1e2d3c",
            ]
        );
        assert_eq!(owner_of("CNI portfwd masquerade mark"), None);
        assert_eq!(owner_of("name: \"a\" id: \"b..."), None);
        assert_eq!(
            owner_of("dnat name: \"a\" id: \"b\""),
            Some(Owner::new("a", "b"))
        );
    }

    #[test]
    fn a_cut_comment_counts_only_on_a_jump_to_the_owners_chain() {
        let long = "c".repeat(128);
        let owner = Owner::new(&"n".repeat(128), &long);
        let cut = cut_comment(&owner.comment("dnat "));
        assert_eq!(cut.len(), MAX_COMMENT + 1);
        let listing = format!(
            "-N {dn}\n-A CNI-HOSTPORT-DNAT -m comment --comment \"{cut}\" -j {dn}\n\
             -A CNI-HOSTPORT-DNAT -m comment --comment \"{cut}\" -j CNI-DN-other\n",
            dn = owner.dnat_chain(),
            cut = cut.replace('"', "\\\""),
        );
        let removal = plan(&parse(&listing).unwrap(), &owner);
        assert_eq!(removal.rules.len(), 1);
        assert_eq!(removal.rules[0].target(), Some(owner.dnat_chain().as_str()));
    }

    #[test]
    fn clean_removes_rules_then_chains_and_leaves_the_rest() {
        let tables = FakeTables::with(Family::V4, &listing());
        let web = Owner::new("net0", "web-1");
        assert_eq!(clean(&tables, &web, &Family::ALL).unwrap(), 7);
        let left = tables.table(Family::V4);
        assert!(plan(&left, &web).is_empty());
        assert_eq!(left.chains.len(), 9);
        assert_eq!(left.rules.len(), 8);
        assert_eq!(clean(&tables, &web, &Family::ALL).unwrap(), 0, "idempotent");
    }

    #[test]
    fn a_refused_deletion_of_what_is_gone_anyway_is_no_error() {
        let mut tables = FakeTables::with(Family::V4, &listing());
        tables.refuse_after_deleting = true;
        let web = Owner::new("net0", "web-1");
        assert_eq!(clean(&tables, &web, &[Family::V4]).unwrap(), 7);
    }

    /// A fake whose deletions do nothing: what stays is reported.
    #[derive(Debug)]
    struct Stubborn(NatTable);

    impl NatTables for Stubborn {
        fn list(&self, _: Family) -> Result<Option<NatTable>, LeftoverError> {
            Ok(Some(self.0.clone()))
        }
        fn delete_rule(&self, _: Family, _: &Rule) -> Result<(), LeftoverError> {
            Err(LeftoverError::Failed {
                binary: "fake".into(),
                args: "-D".into(),
                stderr: "resource busy".into(),
            })
        }
        fn delete_chain(&self, _: Family, _: &str) -> Result<(), LeftoverError> {
            Ok(())
        }
    }

    #[test]
    fn a_rule_that_stays_is_an_error_naming_it() {
        let tables = Stubborn(parse(&listing()).unwrap());
        let error = clean(&tables, &Owner::new("lfnet", "lcut"), &[Family::V4])
            .unwrap_err()
            .to_string();
        assert!(error.contains("container lcut"), "{error}");
        assert!(
            error.contains("-A POSTROUTING -s 10.246.104.2/32"),
            "{error}"
        );
    }

    #[test]
    fn dnat_destinations_of_both_families_are_read() {
        assert_eq!(
            destination_address("10.0.0.2:80"),
            Some("10.0.0.2".parse().unwrap())
        );
        assert_eq!(
            destination_address("[fd00::2]:80"),
            Some("fd00::2".parse().unwrap())
        );
        assert_eq!(
            destination_address("fd00::2"),
            Some("fd00::2".parse().unwrap())
        );
    }
}
