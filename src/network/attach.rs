//! The high-level network API the runtime uses: put a container's pinned
//! namespace on its networks, take it off again, check, and sweep leftovers.
//!
//! Lifecycle: [`Networker::setup`] creates the pinned netns (with `lo` up)
//! and runs CNI ADD for each requested network on `eth0`, `eth1`, ...; on any
//! failure it DELs what it started and removes the netns, so a failed setup
//! leaves nothing. [`Networker::teardown`] DELs every cached attachment
//! (with an empty CNI_NETNS when the namespace is gone, as after a reboot),
//! removes the cache records and the netns; it is idempotent. After each
//! DEL it removes what the plugins left in iptables (a DEL without the
//! namespace, or without the address inside it, skips the masquerade
//! cleanup): a record goes only when its rules are gone too.
//! [`Networker::sweep_stale`] heals what crashes and reboots leave: cache
//! entries and namespaces of containers berth no longer knows, and host-local
//! reservations whose container id is not live (host-local has no GC).
//! [`Networker::sweep_rules`] removes iptables leftovers of unknown
//! containers on the networks it is given.
//!
//! Operations on one container are serialized by a flock at
//! `<state>/netns/<container>.lock`, which the CNI plugins they run inherit:
//! a plugin orphaned by a killed berth holds it until it exits.
//!
//! Published ports go on the container's first non-internal network only:
//! the same host port DNATed on two networks would conflict.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;

use nix::fcntl::{Flock, FlockArg};
use serde_json::{json, Map, Value};

use super::cache::{Cache, CacheError, Lost, Record};
use super::cni::{CniError, Invoker, RuntimeConf};
use super::conflist::bridge_name;
use super::conflist::{conflist, ConflistError, NetworkDef};
use super::is_valid_id;
use super::leftovers::{self, Family, HostIptables, LeftoverError, NatTables, Owner};
use super::link;
use super::netns::{KernelNamespaces, Namespaces, NetnsError};
use super::rules::{self, NetworkRules, RuleTables, RulesError};
use super::store::{NetworkStore, StoreError};
use crate::manifest::types::{PortMapping, Protocol};
use crate::manifest::NetworkDriver;
use crate::state::Layout;

/// One network a container joins.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkRequest {
    pub def: NetworkDef,
    /// A static address (host-local's `IP` CNI_ARG).
    pub ip: Option<IpAddr>,
    /// Extra names peers on this network use for the container.
    pub aliases: Vec<String>,
}

/// What [`Networker::setup`] does for one container.
#[derive(Debug, Clone, PartialEq)]
pub struct AttachRequest<'a> {
    /// The container id; also CNI_CONTAINERID, so unique per container.
    pub container: &'a str,
    /// In order: the first becomes eth0.
    pub networks: Vec<NetworkRequest>,
    /// Published on the first non-internal network.
    pub ports: Vec<PortMapping>,
}

/// A container's place on one network, from the ADD result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub network: String,
    pub ifname: String,
    pub ips: Vec<IpAddr>,
    pub mac: Option<String>,
    pub aliases: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("{0:?} is not a valid container id or network name (letters, digits, '_', '.', '-')")]
    BadId(String),
    #[error("cannot lock {path}: {source}")]
    Lock { path: PathBuf, source: io::Error },
    #[error("container {container} is already attached to networks; tear it down first")]
    AlreadyAttached { container: String },
    #[error("container {container}: network {network}: {source}")]
    Cni {
        container: String,
        network: String,
        source: Box<CniError>,
    },
    #[error("container {container}: network {network}: the ADD never finished")]
    Unfinished { container: String, network: String },
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Conflist(#[from] ConflistError),
    #[error("network {network} is in use by {}; remove those containers first", .containers.join(", "))]
    InUse {
        network: String,
        containers: Vec<String>,
    },
    #[error(transparent)]
    Store(Box<StoreError>),
    #[error("network {network}: cannot remove what it left on the host: {source}")]
    Release { network: String, source: io::Error },
    #[error("cannot sweep {path}: {source}")]
    Sweep { path: PathBuf, source: io::Error },
    #[error("container {container}: network {network}: cannot remove what the CNI plugins left in iptables: {source}")]
    Leftovers {
        container: String,
        network: String,
        source: Box<LeftoverError>,
    },
    #[error("cannot list the nat table: {0}")]
    NatListing(Box<LeftoverError>),
    #[error("network {network}: its iptables rules: {source}")]
    Rules {
        network: String,
        source: Box<RulesError>,
    },
    #[error("{source}{}", .cleanup.as_ref().map(|c| format!("; cleaning up also failed: {c}")).unwrap_or_default())]
    SetupFailed {
        source: Box<NetworkError>,
        cleanup: Option<Box<NetworkError>>,
    },
}

/// Per network: whether its CHECK passed.
pub type CheckOutcome = Vec<(String, Result<(), CheckFailure>)>;

/// Why an attachment failed its check.
#[derive(Debug, thiserror::Error)]
pub enum CheckFailure {
    #[error("CNI CHECK failed: {0}")]
    Cni(#[from] CniError),
    #[error("its iptables rules are missing ({})", .0.join("; "))]
    RulesMissing(Vec<String>),
}

/// berth's networking for containers; see the module docs.
#[derive(Debug, Clone)]
pub struct Networker {
    /// Where the result cache, IPAM data and pinned namespaces live.
    pub layout: Layout,
    /// Where CNI plugins are looked for (and CNI_PATH).
    pub plugin_path: Vec<PathBuf>,
    /// Creates, pins and removes network namespaces.
    pub namespaces: Arc<dyn Namespaces>,
    /// Where the plugins' iptables leftovers are found and removed.
    pub nat: Arc<dyn NatTables>,
    /// Where bridge networks' own rules go.
    pub rules: Arc<dyn RuleTables>,
    /// The [`NetworkRules::key`]s whose rules this process has seen on the
    /// host (or added), so that many containers on one network look once.
    pub rules_seen: Arc<Mutex<BTreeSet<String>>>,
}

/// An exclusive flock on a file: a container's (its networks) or the
/// host's rules lock; the file is recreated if a teardown unlinked it while
/// we waited.
struct FileLock {
    flock: Flock<File>,
    path: PathBuf,
}

impl FileLock {
    fn acquire(path: &Path) -> Result<FileLock, NetworkError> {
        let error = |source| NetworkError::Lock {
            path: path.to_path_buf(),
            source,
        };
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(error)?;
        }
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)
                .map_err(error)?;
            let flock = Flock::lock(file, FlockArg::LockExclusive)
                .map_err(|(_, errno)| error(io::Error::from(errno)))?;
            let held = flock.metadata().map_err(error)?;
            match fs::metadata(path) {
                Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => {
                    return Ok(FileLock {
                        flock,
                        path: path.to_path_buf(),
                    })
                }
                _ => continue,
            }
        }
    }

    /// An invoker whose plugins hold this lock too, for as long as they
    /// run: a plugin berth started keeps running when berth is killed, and
    /// another berth must not work on the container's networks until it
    /// is done (a DEL that ran before an orphaned ADD finished would leave
    /// the ADD's firewall rules, a DEL after a new ADD would release its
    /// address).
    fn invoker(&self, networker: &Networker) -> Invoker {
        networker.invoker().inheriting(self.flock.as_raw_fd())
    }

    /// Unlinks the lock file while still holding it, then releases it.
    fn release_and_remove(self) {
        let _ = fs::remove_file(&self.path);
        drop(self.flock);
    }
}

impl Networker {
    /// A networker over berth's layout, with the default plugin path.
    pub fn new(layout: &Layout) -> Networker {
        Networker {
            layout: layout.clone(),
            namespaces: Arc::new(KernelNamespaces),
            nat: Arc::new(HostIptables),
            rules: Arc::new(HostIptables),
            rules_seen: Arc::default(),
            plugin_path: super::DEFAULT_PLUGIN_PATH
                .iter()
                .map(PathBuf::from)
                .collect(),
        }
    }

    pub fn invoker(&self) -> Invoker {
        Invoker::new(self.plugin_path.clone())
    }

    pub fn cache(&self) -> Cache {
        Cache::new(self.layout.cni_results())
    }

    /// The container's cache records in attach order, a record that does
    /// not parse quarantined and rebuilt (see [`Networker::rebuild`]).
    pub fn records(&self, container: &str) -> Result<Vec<Record>, CacheError> {
        self.cache()
            .load_rebuilding(container, &|lost, others| self.rebuild(lost, others))
    }

    /// A cache record in place of one that was lost, from what else is
    /// known: the network's definition (its record, or the built-in
    /// default) gives the list DEL runs; the container's id and the
    /// layout give CNI_CONTAINERID and CNI_NETNS; host-local's reservation
    /// of the container on that network gives its interface and address
    /// (the result `/etc/hosts` and DEL's prevResult use), else the first
    /// interface no other record uses. DEL of the bridge and portmap
    /// plugins needs no more: they find what to remove by container id and
    /// interface.
    pub fn rebuild(&self, lost: &Lost, others: &[Record]) -> Result<Record, String> {
        let def = NetworkStore::new(self.layout.network_records())
            .get(&lost.network)
            .map_err(|e| e.to_string())?;
        // The ports it published are not known: DEL of portmap without
        // mappings is harmless, one left out would leave its rules.
        let conflist = self.conflist(&def).map_err(|e| e.to_string())?;
        let netns = self.netns_path(&lost.container);
        let reserved = self.reservation(&lost.container, &lost.network);
        let index = reserved
            .as_ref()
            .and_then(|(_, ifname)| ifname.strip_prefix("eth")?.parse().ok())
            .unwrap_or_else(|| {
                (0..)
                    .find(|i| !others.iter().any(|r| r.index == *i))
                    .unwrap_or(0)
            });
        let ifname = format!("eth{index}");
        let prefix = super::conflist::subnet(&def).prefix;
        let result = reserved.map(|(ip, _)| {
            json!({
                "cniVersion": super::CNI_VERSION,
                "interfaces": [{"name": ifname, "sandbox": netns.to_string_lossy()}],
                "ips": [{"address": format!("{ip}/{prefix}"), "interface": 0}],
            })
        });
        Ok(Record {
            container: lost.container.clone(),
            network: lost.network.clone(),
            index,
            aliases: Vec::new(),
            conflist,
            runtime: RuntimeConf {
                container_id: lost.container.clone(),
                netns: Some(netns),
                ifname,
                args: vec![("IgnoreUnknown".to_string(), "1".to_string())],
                capability_args: Map::new(),
            },
            result,
            partial: None,
            rebuilt: true,
        })
    }

    /// The address and interface host-local reserved for `container` on
    /// `network`: its files are named by the address and hold the
    /// container id and the interface, one a line.
    fn reservation(&self, container: &str, network: &str) -> Option<(IpAddr, String)> {
        let dir = self.ipam_dir().join(network);
        fs::read_dir(dir).ok()?.flatten().find_map(|entry| {
            let ip: IpAddr = entry.file_name().to_string_lossy().parse().ok()?;
            let content = fs::read_to_string(entry.path()).ok()?;
            let mut lines = content.lines().map(str::trim);
            if lines.next()? != container {
                return None;
            }
            Some((ip, lines.next().unwrap_or("eth0").to_string()))
        })
    }

    /// host-local's dataDir: `<root>/cni/ipam` (one subdirectory per network).
    pub fn ipam_dir(&self) -> PathBuf {
        self.layout.cni_ipam()
    }

    fn netns_dir(&self) -> PathBuf {
        self.layout.netns()
    }

    /// Where the container's namespace is pinned.
    pub fn netns_path(&self, container: &str) -> PathBuf {
        self.netns_dir().join(container)
    }

    fn lock(&self, container: &str) -> Result<FileLock, NetworkError> {
        if !is_valid_id(container) {
            return Err(NetworkError::BadId(container.to_string()));
        }
        FileLock::acquire(&self.netns_dir().join(format!("{container}.lock")))
    }

    /// The CNI list for `def` as berth runs it for a container that
    /// publishes ports on it.
    pub fn conflist(&self, def: &NetworkDef) -> Result<Value, ConflistError> {
        conflist(def, &self.ipam_dir(), true)
    }

    /// Adds what is missing of a network's own rules, once per process:
    /// under a process-wide mutex and a flock on `<root>/cni/rules.lock`,
    /// so containers attaching side by side (or two berths) add them once.
    pub fn ensure_rules(&self, rules: &NetworkRules) -> Result<(), NetworkError> {
        let key = rules.key();
        let mut seen = self.seen_rules();
        if seen.contains(&key) {
            return Ok(());
        }
        let _host_lock = self.rules_lock()?;
        let added = rules::ensure(self.rules.as_ref(), rules).map_err(rules_error(rules))?;
        if added > 0 {
            tracing::info!(network = %rules.network, added, "added the network's iptables rules");
        }
        seen.insert(key);
        Ok(())
    }

    /// What is missing of a network's own rules; nothing when this process
    /// has seen them all already.
    fn missing_rules(&self, rules: &NetworkRules) -> Result<Vec<String>, NetworkError> {
        let key = rules.key();
        let mut seen = self.seen_rules();
        if seen.contains(&key) {
            return Ok(Vec::new());
        }
        let missing = rules::missing(self.rules.as_ref(), rules).map_err(rules_error(rules))?;
        if missing.is_empty() {
            seen.insert(key);
        }
        Ok(missing.iter().map(ToString::to_string).collect())
    }

    /// `<root>/cni/rules.lock`: two berths never add or remove a network's
    /// rules at once.
    fn rules_lock(&self) -> Result<FileLock, NetworkError> {
        FileLock::acquire(&self.layout.cni_ipam().with_file_name("rules.lock"))
    }

    /// Makes the next check or attach look at the host's rules again.
    pub fn forget_rules_seen(&self) {
        self.seen_rules().clear();
    }

    /// The rule sets this process has seen on the host (a panic elsewhere
    /// while holding them leaves them usable: they are only a memo).
    fn seen_rules(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.rules_seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Removes a network's own rules from the host.
    fn remove_rules(&self, rules: &NetworkRules) -> Result<(), NetworkError> {
        let mut seen = self.seen_rules();
        seen.remove(&rules.key());
        let _host_lock = self.rules_lock()?;
        let removed = rules::remove(self.rules.as_ref(), rules).map_err(rules_error(rules))?;
        if removed > 0 {
            tracing::info!(network = %rules.network, removed, "removed the network's iptables rules");
        }
        Ok(())
    }

    /// Creates the pinned netns and attaches it to every requested network.
    /// On failure nothing is left behind (or the error says what was).
    pub fn setup(&self, req: &AttachRequest) -> Result<(PathBuf, Vec<Attachment>), NetworkError> {
        let lock = self.lock(req.container)?;
        for network in &req.networks {
            if !is_valid_id(&network.def.name) {
                return Err(NetworkError::BadId(network.def.name.clone()));
            }
        }
        if !self.records(req.container)?.is_empty() {
            return Err(NetworkError::AlreadyAttached {
                container: req.container.to_string(),
            });
        }
        let path = self.netns_path(req.container);
        // A namespace without cache records is a leftover: start afresh.
        self.namespaces.remove(&path)?;
        self.namespaces.create(&path)?;
        match self.attach_all(req, &path, &lock) {
            Ok(attachments) => {
                drop(lock);
                Ok((path, attachments))
            }
            Err(source) => {
                let cleanup = self
                    .teardown_locked(req.container, &lock)
                    .err()
                    .map(Box::new);
                drop(lock);
                Err(NetworkError::SetupFailed {
                    source: Box::new(source),
                    cleanup,
                })
            }
        }
    }

    fn attach_all(
        &self,
        req: &AttachRequest,
        netns: &Path,
        lock: &FileLock,
    ) -> Result<Vec<Attachment>, NetworkError> {
        let cache = self.cache();
        let invoker = lock.invoker(self);
        let ports_on = req.networks.iter().position(|n| !n.def.spec.internal);
        let mut attachments = Vec::new();
        for (index, network) in req.networks.iter().enumerate() {
            let publishes = ports_on == Some(index) && !req.ports.is_empty();
            let list = conflist(&network.def, &self.ipam_dir(), publishes)?;
            let rules = NetworkRules::in_list(&list);
            if let Some(rules) = &rules {
                self.ensure_rules(rules)?;
            }
            let mut args = vec![("IgnoreUnknown".to_string(), "1".to_string())];
            let mut capability_args = Map::new();
            if let Some(ip) = network.ip {
                args.push(("IP".into(), ip.to_string()));
                capability_args.insert("ips".into(), json!([ip.to_string()]));
            }
            if publishes {
                capability_args.insert("portMappings".into(), port_mappings(&req.ports));
            }
            let runtime = RuntimeConf {
                container_id: req.container.to_string(),
                netns: Some(netns.to_path_buf()),
                ifname: format!("eth{index}"),
                args,
                capability_args,
            };
            let record = Record {
                container: req.container.to_string(),
                network: network.def.name.clone(),
                index,
                aliases: network.aliases.clone(),
                conflist: list,
                runtime,
                result: None,
                partial: None,
                rebuilt: false,
            };
            let record = add_recorded(&cache, &invoker, record)?;
            if let Some(rules) = &rules {
                // The first ADD made the bridge; keep its address from now on.
                if let Err(error) = super::link::pin_bridge_address(&rules.bridge) {
                    tracing::warn!(%error, bridge = %rules.bridge, "could not pin the bridge's address");
                }
            }
            attachments.push(attachment(&record));
        }
        Ok(attachments)
    }

    /// DELs every cached attachment, removes the records and the netns.
    /// Idempotent; works when the netns is already gone.
    pub fn teardown(&self, container: &str) -> Result<(), NetworkError> {
        let lock = self.lock(container)?;
        let outcome = self.teardown_locked(container, &lock);
        if outcome.is_ok() {
            lock.release_and_remove();
        }
        outcome
    }

    fn teardown_locked(&self, container: &str, lock: &FileLock) -> Result<(), NetworkError> {
        let cache = self.cache();
        let invoker = lock.invoker(self);
        let mut first_error = None;
        for record in self.records(container)?.iter().rev() {
            let mut runtime = record.runtime.clone();
            runtime.netns = runtime.netns.filter(|p| self.namespaces.is_mounted(p));
            let mut outcome = self.del_and_clean(&invoker, record, &runtime);
            // iptables (nf_tables) sometimes refuses a chain deletion with
            // EBUSY for a moment after the rule using it went away; DEL is
            // idempotent, so try again briefly before reporting.
            for _ in 0..3 {
                if outcome.is_ok() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(200));
                outcome = self.del_and_clean(&invoker, record, &runtime);
            }
            match outcome {
                Ok(()) => cache.remove(container, &record.network)?,
                // No plugin of this ADD ever succeeded, and its DEL fails
                // too (macvlan whose parent is gone fails both): retrying
                // would fail forever. Drop the record; removing the netns
                // removes any interface, and sweep_stale frees host-local
                // reservations of containers that are not live.
                Err(error) if record.prev_result().is_none() => {
                    tracing::warn!(%error, %container, network = %record.network,
                        "DEL of an ADD that never succeeded failed; dropping its record");
                    // The failed plugin may have masqueraded before it failed.
                    if let Err(error) = self.remove_leftover_rules(record) {
                        tracing::warn!(%error, %container, "leftover iptables rules stay");
                    }
                    cache.remove(container, &record.network)?;
                }
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        match first_error {
            // Keep the namespace so a retried DEL can still clean inside it.
            Some(error) => Err(error),
            None => {
                // With no record to DEL, a directory may still hold the
                // temp file of a first record a crash never renamed.
                cache.remove_leftovers(container);
                Ok(self.namespaces.remove(&self.netns_path(container))?)
            }
        }
    }

    /// One attachment's DEL, then the removal of what it left in iptables.
    fn del_and_clean(
        &self,
        invoker: &Invoker,
        record: &Record,
        runtime: &RuntimeConf,
    ) -> Result<(), NetworkError> {
        invoker
            .del(&record.conflist, runtime, record.prev_result())
            .map_err(|source| NetworkError::Cni {
                container: record.container.clone(),
                network: record.network.clone(),
                source: Box::new(source),
            })?;
        self.remove_leftover_rules(record).map(drop)
    }

    /// Removes the iptables rules and chains the plugins of `record`'s
    /// attachment left, in the families of its addresses (both when its
    /// ADD never finished). Returns how many rules went.
    fn remove_leftover_rules(&self, record: &Record) -> Result<usize, NetworkError> {
        if !may_leave_rules(&record.conflist) {
            // Listing the nat table costs more the more rules it holds:
            // skip it where nothing can be left.
            return Ok(0);
        }
        // The plugins name their rules by the list's name, which berth
        // makes the network's name (an expert list says so too).
        let network = record.conflist["name"].as_str().unwrap_or(&record.network);
        let owner = Owner::new(network, &record.runtime.container_id);
        leftovers::clean(self.nat.as_ref(), &owner, &families(record.prev_result()))
            .inspect(|&removed| {
                if removed > 0 {
                    tracing::info!(%owner, removed, "removed iptables rules the CNI DEL left");
                }
            })
            .map_err(|source| NetworkError::Leftovers {
                container: record.container.clone(),
                network: record.network.clone(),
                source: Box::new(source),
            })
    }

    /// Whether the container is attached to networks but its pinned
    /// namespace is gone (unmounted or removed behind berth's back).
    pub fn pin_lost(&self, container: &str) -> bool {
        self.records(container)
            .is_ok_and(|records| !records.is_empty())
            && !self.namespaces.is_mounted(&self.netns_path(container))
    }

    /// Pins the container's namespace again from `pid`, a process living in
    /// it, if its pin is gone. Without the namespace a DEL cannot clean
    /// inside it: the bridge plugin then releases the address but leaves
    /// its masquerade rules.
    pub fn repin(&self, container: &str, pid: u32) -> Result<(), NetworkError> {
        let _lock = self.lock(container)?;
        let path = self.netns_path(container);
        if !self.namespaces.is_mounted(&path) {
            self.namespaces.pin_from_process(pid, &path)?;
        }
        Ok(())
    }

    /// CHECK for each cached attachment.
    pub fn check(&self, container: &str) -> Result<CheckOutcome, NetworkError> {
        let lock = self.lock(container)?;
        let invoker = lock.invoker(self);
        let mut outcomes = Vec::new();
        for record in self.records(container)? {
            if record.rebuilt {
                // Its result was pieced together, not what ADD returned:
                // a CHECK against it would fail a healthy attachment.
                tracing::debug!(%container, network = %record.network, "rebuilt record: no CHECK");
                continue;
            }
            let mut outcome = match &record.result {
                Some(result) => invoker
                    .check(&record.conflist, &record.runtime, result)
                    .map_err(CheckFailure::from),
                None => Err(CniError::BadList("the ADD never finished".into()).into()),
            };
            if let (Ok(()), Some(rules)) = (&outcome, NetworkRules::in_list(&record.conflist)) {
                let missing = self.missing_rules(&rules)?;
                if !missing.is_empty() {
                    outcome = Err(CheckFailure::RulesMissing(missing));
                }
            }
            outcomes.push((record.network, outcome));
        }
        Ok(outcomes)
    }

    /// The container's attachments, from the cache (finished ADDs only).
    pub fn attachments(&self, container: &str) -> Vec<Attachment> {
        self.records(container)
            .unwrap_or_default()
            .iter()
            .filter(|r| r.result.is_some())
            .map(attachment)
            .collect()
    }

    /// Every container attached to `network`, with its attachment.
    pub fn members(&self, network: &str) -> Vec<(String, Attachment)> {
        let mut members = Vec::new();
        for container in self.cache().containers().unwrap_or_default() {
            for attachment in self.attachments(&container) {
                if attachment.network == network {
                    members.push((container.clone(), attachment));
                }
            }
        }
        members
    }

    /// Removes what a network leaves on the host after its last container
    /// is gone: its bridge (unless a network in `keep` uses the same one)
    /// and host-local's directory. Refuses while containers are attached.
    pub fn release_network(
        &self,
        def: &NetworkDef,
        keep: &[NetworkDef],
    ) -> Result<(), NetworkError> {
        let users: Vec<String> = self
            .members(&def.name)
            .into_iter()
            .map(|(c, _)| c)
            .collect();
        if !users.is_empty() {
            return Err(NetworkError::InUse {
                network: def.name.clone(),
                containers: users,
            });
        }
        if def.spec.driver == NetworkDriver::Bridge {
            let bridge = bridge_name(def);
            let shared = keep.iter().any(|other| {
                other.name != def.name
                    && other.spec.driver == NetworkDriver::Bridge
                    && bridge_name(other) == bridge
            });
            if !shared {
                link::delete_bridge(&bridge).map_err(|source| NetworkError::Release {
                    network: def.name.clone(),
                    source,
                })?;
            }
        }
        if let Some(rules) = NetworkRules::of(def) {
            self.remove_rules(&rules)?;
        }
        let ipam = self.ipam_dir().join(&def.name);
        match fs::remove_dir_all(&ipam) {
            Err(source) if source.kind() != io::ErrorKind::NotFound => Err(NetworkError::Release {
                network: def.name.clone(),
                source,
            }),
            _ => Ok(()),
        }
    }

    /// Deletes a recorded network: refused while containers are attached;
    /// its bridge and IPAM directory go first, then its record, so a crash
    /// in between leaves a record the next delete finishes.
    pub fn delete_network(&self, store: &NetworkStore, name: &str) -> Result<(), NetworkError> {
        let store_error = |e: StoreError| NetworkError::Store(Box::new(e));
        let def = store.get(name).map_err(store_error)?;
        let others: Vec<NetworkDef> = store
            .list()
            .map_err(store_error)?
            .into_iter()
            .map(|r| NetworkDef {
                name: r.name,
                spec: r.spec,
            })
            .collect();
        self.release_network(&def, &others)?;
        store.remove(name).map_err(store_error)
    }

    /// Removes what containers not in `live` left behind: their cache
    /// entries (torn down with DEL), pinned namespaces, and host-local
    /// reservations. Returns how many things it removed. The caller must
    /// make sure no setup for a container outside `live` runs meanwhile
    /// (berth's reconciler holds the root lock).
    pub fn sweep_stale(&self, live: &[String]) -> Result<usize, NetworkError> {
        let live: BTreeSet<&str> = live.iter().map(String::as_str).collect();
        let mut removed = 0;
        let mut first_error = None;
        for container in self.cache().containers()? {
            if live.contains(container.as_str()) {
                continue;
            }
            match self.teardown(&container) {
                Ok(()) => removed += 1,
                Err(error) => {
                    tracing::warn!(%error, %container, "sweep: teardown");
                    first_error.get_or_insert(error);
                }
            }
        }
        let cached: BTreeSet<String> = self.cache().containers()?.into_iter().collect();
        for entry in read_dir_or_empty(&self.netns_dir())? {
            let name = entry.file_name().to_string_lossy().into_owned();
            let id = name.strip_suffix(".lock").unwrap_or(&name);
            if live.contains(id) || cached.contains(id) || !is_valid_id(id) {
                continue;
            }
            if name.ends_with(".lock") {
                if let Ok(lock) = self.lock(id) {
                    lock.release_and_remove();
                }
            } else {
                let _lock = self.lock(id)?;
                self.namespaces.remove(&entry.path())?;
                removed += 1;
            }
        }
        removed += self.sweep_ipam(&live, &cached)?;
        first_error.map_or(Ok(removed), Err)
    }

    /// Removes the iptables rules and chains the CNI plugins left for
    /// containers that are neither in `live` nor in the result cache, on
    /// `networks` only: rules of other CNI users (podman, containerd) and
    /// of other berth state roots are never touched. Since another state
    /// root may use the same network name, an attachment's rules go only
    /// when the addresses they name (the masqueraded source, the DNAT
    /// destination, the accepted subnet) lie in that network's subnet.
    /// A network with an expert plugin list counts only when it declares
    /// its subnet: otherwise its addresses are the list's business. Returns how many rules went; the caller makes
    /// sure no setup outside `live` runs meanwhile, as for [`Self::sweep_stale`].
    pub fn sweep_rules(
        &self,
        live: &[String],
        networks: &[NetworkDef],
    ) -> Result<usize, NetworkError> {
        let live: BTreeSet<&str> = live.iter().map(String::as_str).collect();
        let held = self.cached_addresses()?;
        let mut removed = 0;
        let mut first_error = None;
        for family in Family::ALL {
            let table = self
                .nat
                .list(family)
                .map_err(|source| NetworkError::NatListing(Box::new(source)))?;
            let Some(table) = table else { continue };
            for owner in leftovers::owners(&table) {
                let Some(def) = networks.iter().find(|d| {
                    d.name == owner.network && (d.spec.plugins.is_none() || d.spec.subnet.is_some())
                }) else {
                    continue;
                };
                if live.contains(owner.container.as_str()) || !is_valid_id(&owner.container) {
                    continue;
                }
                match self.sweep_owner_rules(family, &table, &owner, def, &held) {
                    Ok(count) => removed += count,
                    Err(error) => {
                        tracing::warn!(%error, %owner, "sweep: iptables leftovers");
                        first_error.get_or_insert(error);
                    }
                }
            }
        }
        first_error.map_or(Ok(removed), Err)
    }

    /// One unknown attachment's leftovers in `table` (a listing of
    /// `family`), under the container's lock: its nat rules and chains,
    /// then the firewall plugin's rules for its addresses, unless a cached
    /// attachment (`held`) has that address now.
    fn sweep_owner_rules(
        &self,
        family: Family,
        table: &leftovers::NatTable,
        owner: &Owner,
        def: &NetworkDef,
        held: &BTreeSet<IpAddr>,
    ) -> Result<usize, NetworkError> {
        // Decided from the listing alone, before any lock: another state
        // root's container (same network name, another subnet) must not
        // even get a lock file here.
        let removal = leftovers::plan(table, owner);
        let addresses = removal.container_addresses();
        let subnet = super::conflist::subnet(def);
        if addresses.is_empty() || !addresses.iter().all(|a| subnet.contains(*a)) {
            tracing::debug!(%owner, ?addresses, %subnet,
                "sweep: rules outside the network's subnet belong to another state root");
            return Ok(0);
        }
        let lock = self.lock(&owner.container)?;
        // Read after the listing: an ADD writes its cache record before
        // any plugin runs, so rules of a container being set up right now
        // belong to a cached container here.
        let cached = !self.cache().load(&owner.container)?.is_empty();
        let pinned = self
            .namespaces
            .is_mounted(&self.netns_path(&owner.container));
        if cached || pinned {
            return Ok(0);
        }
        let removed =
            leftovers::remove(self.nat.as_ref(), family, owner, &removal).map_err(|source| {
                NetworkError::Leftovers {
                    container: owner.container.clone(),
                    network: owner.network.clone(),
                    source: Box::new(source),
                }
            })?;
        let firewall = removal
            .own_addresses()
            .into_iter()
            .filter(|address| !held.contains(address))
            .flat_map(rules::firewall_plugin_rules)
            .collect();
        let unfirewalled =
            rules::remove_each(self.rules.as_ref(), family, &owner.network, firewall).map_err(
                |source| NetworkError::Rules {
                    network: owner.network.clone(),
                    source: Box::new(source),
                },
            )?;
        lock.release_and_remove();
        Ok(removed + unfirewalled)
    }

    /// Every address a cached attachment has: what gc must not take from
    /// a live container.
    fn cached_addresses(&self) -> Result<BTreeSet<IpAddr>, NetworkError> {
        let mut addresses = BTreeSet::new();
        for container in self.cache().containers()? {
            for record in self.cache().load(&container)? {
                addresses.extend(result_addresses(record.prev_result()));
            }
        }
        Ok(addresses)
    }

    /// host-local keeps one file per reserved address (named by the
    /// address, holding the container id and ifname) under
    /// `<dataDir>/<network>/`, guarded by the flock `<dataDir>/<network>/lock`.
    fn sweep_ipam(
        &self,
        live: &BTreeSet<&str>,
        cached: &BTreeSet<String>,
    ) -> Result<usize, NetworkError> {
        let mut removed = 0;
        for network in read_dir_or_empty(&self.ipam_dir())? {
            let dir = network.path();
            if !dir.is_dir() {
                continue;
            }
            let sweep_error = |source| NetworkError::Sweep {
                path: dir.clone(),
                source,
            };
            let lock_file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(dir.join("lock"))
                .map_err(sweep_error)?;
            let _flock = Flock::lock(lock_file, FlockArg::LockExclusive)
                .map_err(|(_, errno)| sweep_error(io::Error::from(errno)))?;
            for entry in read_dir_or_empty(&dir)? {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name == "lock" || name.starts_with("last_reserved_ip") {
                    continue;
                }
                let Ok(content) = fs::read_to_string(entry.path()) else {
                    continue;
                };
                let owner = content.lines().next().unwrap_or("").trim();
                if owner.is_empty() || live.contains(owner) || cached.contains(owner) {
                    continue;
                }
                fs::remove_file(entry.path()).map_err(sweep_error)?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// The address families a CNI result has addresses in; both when there is
/// no result (an ADD that never finished may have set up either).
/// The error of a network's own rules.
fn rules_error(rules: &NetworkRules) -> impl FnOnce(RulesError) -> NetworkError + '_ {
    |source| NetworkError::Rules {
        network: rules.network.clone(),
        source: Box::new(source),
    }
}

/// Whether a DEL of `list` may leave iptables rules behind: false only
/// when every plugin is one that makes none (a bridge or ptp plugin that
/// does not masquerade, macvlan, ipvlan, IPAM and tuning plugins).
fn may_leave_rules(list: &Value) -> bool {
    let plugins = list["plugins"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    !plugins.iter().all(|plugin| {
        let masquerades = plugin["ipMasq"].as_bool().unwrap_or(false);
        match plugin["type"].as_str() {
            Some("bridge" | "ptp") => !masquerades,
            Some(
                "macvlan" | "ipvlan" | "host-local" | "static" | "dhcp" | "tuning" | "loopback",
            ) => true,
            _ => false,
        }
    })
}

fn families(result: Option<&Value>) -> Vec<Family> {
    let Some(result) = result else {
        return Family::ALL.to_vec();
    };
    let mut families: Vec<Family> = result_addresses(Some(result))
        .into_iter()
        .map(Family::of)
        .collect();
    families.sort();
    families.dedup();
    families
}

/// The addresses of a CNI result (`ips[].address`, without the prefix).
fn result_addresses(result: Option<&Value>) -> Vec<IpAddr> {
    result
        .and_then(|r| r["ips"].as_array())
        .into_iter()
        .flatten()
        .filter_map(|ip| ip["address"].as_str())
        .filter_map(|cidr| cidr.split('/').next()?.parse().ok())
        .collect()
}

/// Runs one network's ADD under the cache protocol: the started record
/// (no result) is written first, each plugin's result is recorded as the
/// partial result as the chain goes, and the full record last.
pub fn add_recorded(
    cache: &Cache,
    invoker: &Invoker,
    mut record: Record,
) -> Result<Record, NetworkError> {
    record.result = None;
    record.partial = None;
    cache.write(&record)?;
    let cni_error = |source| NetworkError::Cni {
        container: record.container.clone(),
        network: record.network.clone(),
        source: Box::new(source),
    };
    let mut partial = record.clone();
    let result = invoker
        .add_with(&record.conflist, &record.runtime, |result| {
            partial.partial = Some(result.clone());
            cache.write(&partial).map_err(Into::into)
        })
        .map_err(cni_error)?;
    record.result = Some(result);
    cache.write(&record)?;
    Ok(record)
}

fn read_dir_or_empty(dir: &Path) -> Result<Vec<fs::DirEntry>, NetworkError> {
    match fs::read_dir(dir) {
        Ok(entries) => Ok(entries.filter_map(Result::ok).collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(NetworkError::Sweep {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// The `portMappings` capability argument.
pub fn port_mappings(ports: &[PortMapping]) -> Value {
    let entries: Vec<Value> = ports
        .iter()
        .map(|p| {
            let mut entry = json!({
                "hostPort": p.effective_host_port(),
                "containerPort": p.container_port,
                "protocol": match p.protocol { Protocol::Tcp => "tcp", Protocol::Udp => "udp" },
            });
            if let Some(host_ip) = p.host_ip {
                entry["hostIP"] = json!(host_ip.to_string());
            }
            entry
        })
        .collect();
    Value::Array(entries)
}

/// The attachment a cached record describes: the addresses on the
/// container-side interface named `ifname`.
pub fn attachment(record: &Record) -> Attachment {
    let ifname = &record.runtime.ifname;
    let result = record.result.clone().unwrap_or(Value::Null);
    let interfaces = result["interfaces"].as_array().cloned().unwrap_or_default();
    let index = interfaces.iter().position(|i| {
        i["name"].as_str() == Some(ifname.as_str())
            && i["sandbox"].as_str().is_some_and(|s| !s.is_empty())
    });
    let ips = result["ips"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|ip| match (ip["interface"].as_u64(), index) {
            (Some(i), Some(own)) => i as usize == own,
            _ => true,
        })
        .filter_map(|ip| ip["address"].as_str())
        .filter_map(|cidr| cidr.split('/').next()?.parse().ok())
        .collect();
    let mac = index
        .and_then(|i| interfaces[i]["mac"].as_str())
        .map(str::to_string);
    Attachment {
        network: record.network.clone(),
        ifname: ifname.clone(),
        ips,
        mac,
        aliases: record.aliases.clone(),
    }
}

/// `/etc/hosts` for a container: the localhost lines, the container's own
/// name on each of its addresses (loopback-ish 127.0.1.1 when it has none),
/// and every peer by name and alias.
pub fn hosts_file(
    hostname: &str,
    own: &[Attachment],
    peers: &[(String, Vec<String>, IpAddr)],
) -> String {
    let mut out = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    let own_ips: Vec<IpAddr> = own.iter().flat_map(|a| a.ips.iter().copied()).collect();
    if own_ips.is_empty() {
        out.push_str(&format!("127.0.1.1\t{hostname}\n"));
    }
    for ip in own_ips {
        out.push_str(&format!("{ip}\t{hostname}\n"));
    }
    for (name, aliases, ip) in peers {
        let mut names = vec![name.as_str()];
        names.extend(aliases.iter().map(String::as_str).filter(|a| *a != name));
        out.push_str(&format!("{ip}\t{}\n", names.join(" ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::leftovers::fake::FakeTables;
    use crate::network::netns::fake::FakeNamespaces;
    use crate::network::rules::fake::FakeRuleTables;

    /// A networker whose namespaces are a list and whose plugin path is
    /// empty: no root, no plugin ever runs.
    fn networker(dir: &Path) -> (Networker, Arc<FakeNamespaces>) {
        let namespaces = Arc::new(FakeNamespaces::default());
        let mut networker = Networker::new(&Layout::new(&dir.join("root"), &dir.join("state")));
        networker.plugin_path = vec![dir.join("no-plugins")];
        networker.namespaces = namespaces.clone();
        networker.nat = Arc::new(FakeTables::default());
        networker.rules = Arc::new(FakeRuleTables::default());
        (networker, namespaces)
    }

    #[test]
    fn a_container_without_networks_gets_a_pinned_namespace_that_teardown_removes() {
        let dir = tempfile::tempdir().unwrap();
        let (net, namespaces) = networker(dir.path());
        let request = AttachRequest {
            container: "web",
            networks: Vec::new(),
            ports: Vec::new(),
        };
        let (path, attachments) = net.setup(&request).unwrap();
        assert!(attachments.is_empty());
        assert_eq!(namespaces.pinned(), std::slice::from_ref(&path));
        assert_eq!(path, net.netns_path("web"));
        net.teardown("web").unwrap();
        assert!(namespaces.pinned().is_empty());
    }

    #[test]
    fn a_failed_attach_leaves_no_namespace_and_no_cache_record() {
        let dir = tempfile::tempdir().unwrap();
        let (net, namespaces) = networker(dir.path());
        let request = AttachRequest {
            container: "web",
            networks: vec![NetworkRequest {
                def: NetworkDef::builtin_default(),
                ip: None,
                aliases: Vec::new(),
            }],
            ports: Vec::new(),
        };
        let error = net.setup(&request).unwrap_err().to_string();
        assert!(
            error.contains("bridge"),
            "the missing plugin is named: {error}"
        );
        assert!(namespaces.pinned().is_empty(), "rolled back");
        assert!(net.cache().load("web").unwrap().is_empty());
    }

    #[test]
    fn attachment_takes_the_sandbox_interface_addresses() {
        let record = Record {
            container: "c".into(),
            network: "n".into(),
            index: 0,
            aliases: vec!["db".into()],
            conflist: json!({}),
            runtime: RuntimeConf {
                ifname: "eth0".into(),
                ..RuntimeConf::default()
            },
            rebuilt: false,
            result: Some(json!({
                "cniVersion": "1.0.0",
                "interfaces": [
                    {"name": "br0", "mac": "aa:aa:aa:aa:aa:aa"},
                    {"name": "veth1", "mac": "bb:bb:bb:bb:bb:bb"},
                    {"name": "eth0", "mac": "cc:cc:cc:cc:cc:cc", "sandbox": "/run/x"}
                ],
                "ips": [{"address": "10.1.0.5/24", "gateway": "10.1.0.1", "interface": 2}]
            })),
            partial: None,
        };
        let a = attachment(&record);
        assert_eq!(a.ips, ["10.1.0.5".parse::<IpAddr>().unwrap()]);
        assert_eq!(a.mac.as_deref(), Some("cc:cc:cc:cc:cc:cc"));
        assert_eq!(a.ifname, "eth0");
        assert_eq!(a.aliases, ["db"]);
    }

    /// Regression: a kill while the first ("started") record was being
    /// written left its temp file, and teardown (finding no record to DEL)
    /// left the directory, which the container's next life inherited.
    #[test]
    fn teardown_removes_a_cache_directory_holding_only_an_interrupted_write() {
        let dir = tempfile::tempdir().unwrap();
        let net = Networker::new(&Layout::new(
            &dir.path().join("root"),
            &dir.path().join("state"),
        ));
        let crashed = net.cache().dir().join("web");
        fs::create_dir_all(&crashed).unwrap();
        fs::write(crashed.join(".front.json.tmp-1-0"), "{").unwrap();
        net.teardown("web").unwrap();
        assert!(net.cache().containers().unwrap().is_empty());
    }

    /// A masquerade jump and chain as the bridge plugin makes them.
    fn masquerade(network: &str, id: &str, ip: &str, subnet: &str) -> String {
        let owner = Owner::new(network, id);
        let comment = format!("\"name: \\\"{network}\\\" id: \\\"{id}\\\"\"");
        let chain = owner.masquerade_chain();
        format!(
            "-N {chain}\n-A POSTROUTING -s {ip}/32 -m comment --comment {comment} -j {chain}\n\
             -A {chain} -d {subnet} -m comment --comment {comment} -j ACCEPT\n\
             -A {chain} ! -d 224.0.0.0/4 -m comment --comment {comment} -j MASQUERADE\n"
        )
    }

    #[test]
    fn sweep_rules_removes_only_unknown_containers_on_own_networks_in_their_subnet() {
        let dir = tempfile::tempdir().unwrap();
        let (mut net, _) = networker(dir.path());
        let listing = [
            masquerade("net0", "gone", "10.233.109.2", "10.233.109.0/24"),
            masquerade("net0", "live", "10.233.109.3", "10.233.109.0/24"),
            masquerade("net0", "cached", "10.233.109.4", "10.233.109.0/24"),
            // Another state root's net0, on its own subnet.
            masquerade("net0", "elsewhere", "10.233.110.2", "10.233.110.0/24"),
            masquerade("podman", "theirs", "10.88.0.2", "10.88.0.0/16"),
        ]
        .concat();
        let tables = Arc::new(FakeTables::with(Family::V4, &listing));
        net.nat = tables.clone();
        // The firewall plugin's rules for gone's address and for cached's.
        let firewall = Arc::new(FakeRuleTables::default());
        for address in ["10.233.109.2", "10.233.109.4"] {
            for rule in rules::firewall_plugin_rules(address.parse().unwrap()) {
                firewall.rules.lock().unwrap().push((Family::V4, rule));
            }
        }
        net.rules = firewall.clone();
        let record = Record {
            container: "cached".into(),
            network: "net0".into(),
            index: 0,
            aliases: vec![],
            conflist: json!({"name": "net0"}),
            runtime: RuntimeConf {
                container_id: "cached".into(),
                ifname: "eth0".into(),
                ..RuntimeConf::default()
            },
            result: Some(json!({"ips": [{"address": "10.233.109.4/24"}]})),
            partial: None,
            rebuilt: false,
        };
        net.cache().write(&record).unwrap();
        let net0 = NetworkDef {
            name: "net0".into(),
            spec: serde_json::from_value(json!({"subnet": "10.233.109.0/24"})).unwrap(),
        };
        let removed = net.sweep_rules(&["live".to_string()], &[net0]).unwrap();
        assert_eq!(
            removed, 5,
            "the jump, the two rules of its chain and the firewall plugin's two"
        );
        let left = leftovers::owners(&tables.table(Family::V4));
        let left: Vec<&str> = left.iter().map(|o| o.container.as_str()).collect();
        assert_eq!(left, ["cached", "elsewhere", "live", "theirs"]);
        let firewall_left: Vec<String> = firewall
            .rules
            .lock()
            .unwrap()
            .iter()
            .map(|(_, rule)| rule.spec.join(" "))
            .collect();
        assert_eq!(
            firewall_left,
            [
                "-d 10.233.109.4/32 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
                "-s 10.233.109.4/32 -j ACCEPT"
            ],
            "the cached container's address keeps its rules"
        );
    }

    #[test]
    fn only_lists_of_rule_free_plugins_skip_the_leftover_listing() {
        let list = |plugins: Value| json!({"name": "n", "plugins": plugins});
        assert!(!may_leave_rules(&list(
            json!([{"type": "bridge", "ipMasq": false}])
        )));
        assert!(!may_leave_rules(&list(
            json!([{"type": "macvlan"}, {"type": "tuning"}])
        )));
        assert!(may_leave_rules(&list(
            json!([{"type": "bridge", "ipMasq": true}])
        )));
        assert!(may_leave_rules(&list(
            json!([{"type": "bridge"}, {"type": "portmap"}])
        )));
        assert!(may_leave_rules(&list(
            json!([{"type": "bridge"}, {"type": "firewall"}])
        )));
        assert!(may_leave_rules(&list(json!([{"type": "my-own"}]))));
    }

    #[test]
    fn families_follow_the_result_addresses() {
        let v6 = json!({"ips": [{"address": "fd00::2/64"}]});
        assert_eq!(families(Some(&v6)), [Family::V6]);
        let both = json!({"ips": [{"address": "fd00::2/64"}, {"address": "10.0.0.2/24"}]});
        assert_eq!(families(Some(&both)), [Family::V4, Family::V6]);
        assert_eq!(families(None), Family::ALL);
    }

    #[test]
    fn port_mappings_default_host_port_and_keep_host_ip() {
        let ports = vec![
            PortMapping {
                container_port: 80,
                host_port: None,
                protocol: Protocol::Tcp,
                host_ip: None,
            },
            PortMapping {
                container_port: 53,
                host_port: Some(5353),
                protocol: Protocol::Udp,
                host_ip: Some("127.0.0.1".parse().unwrap()),
            },
        ];
        assert_eq!(
            port_mappings(&ports),
            json!([
                {"hostPort": 80, "containerPort": 80, "protocol": "tcp"},
                {"hostPort": 5353, "containerPort": 53, "protocol": "udp", "hostIP": "127.0.0.1"}
            ])
        );
    }

    #[test]
    fn hosts_file_names_self_and_peers_with_aliases() {
        let own = vec![Attachment {
            network: "n".into(),
            ifname: "eth0".into(),
            ips: vec!["10.1.0.5".parse().unwrap()],
            mac: None,
            aliases: vec![],
        }];
        let peers = vec![(
            "db".to_string(),
            vec!["postgres".to_string(), "db".to_string()],
            "10.1.0.6".parse().unwrap(),
        )];
        let hosts = hosts_file("web", &own, &peers);
        assert_eq!(
            hosts,
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
             10.1.0.5\tweb\n10.1.0.6\tdb postgres\n"
        );
        assert!(hosts_file("solo", &[], &[]).contains("127.0.1.1\tsolo\n"));
    }
}
