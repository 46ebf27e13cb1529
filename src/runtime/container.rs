//! A container's life as berth drives it: create (image, snapshot, bundle,
//! shim), stop, remove, and the view `ps` and `inspect` show. Records live in
//! `<root>/containers/<id>.json`; runtime files in `<state>/containers/<id>/`.

use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::rootfs::Rootfs;
use super::runc::{find_runtime, Runc, RuncError};
use super::spec::{
    self, EtcFiles, HostDevice, ImageConfig, NetworkNamespace, ResolvedMount, SpecError, SpecInput,
};
use super::state::{
    unix_ms, ContainerDir, HealthConfig, LogConfig, Phase, RestartConfig, RestartPolicy,
    ShimConfig, Status,
};
use crate::image::import::{self, ImportOptions};
use crate::image::pull::{self, PullOptions};
use crate::image::{ImageError, ImageRecord, ImageSource, Images};
use crate::manifest::{self, ContainerSpec, Device, MountType, NetworkMode, PullPolicy};
use crate::network::attach::{AttachRequest, NetworkError, NetworkRequest, Networker};
use crate::network::store::NetworkStore;
use crate::snapshot::{Progress, SnapshotError, Snapshotter};
use crate::state::atomic::{remove_stale_temps, write_atomic_volatile, write_json_atomic};
use crate::state::{lock, Paths};

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("container {0:?} already exists")]
    Exists(String),
    #[error("no container {0:?} (see berth ps -a)")]
    NotFound(String),
    #[error("container {0:?} is running; stop it first or use --force")]
    Running(String),
    #[error("container name {0:?} must be a DNS label: lowercase letters, digits and '-', at most 63 characters")]
    InvalidName(String),
    #[error(
        "no OCI runtime: runc is not installed (apt-get install runc) and --runtime was not given"
    )]
    NoRuntime,
    #[error("image {image}: {source}")]
    Image {
        image: String,
        source: Box<ImageError>,
    },
    #[error("container {id}: {source}")]
    Spec { id: String, source: Box<SpecError> },
    #[error("container {id}: {source}")]
    Snapshot {
        id: String,
        source: Box<SnapshotError>,
    },
    #[error(transparent)]
    Runc(#[from] RuncError),
    /// The network error names the container itself.
    #[error("{source}")]
    Network {
        id: String,
        source: Box<NetworkError>,
    },
    #[error(transparent)]
    Store(Box<ImageError>),
    #[error("container {id}: {op} {path}: {source}")]
    Io {
        id: String,
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("container {id}: the shim did not start: {message}")]
    Shim { id: String, message: String },
    #[error("container {id}: {message}")]
    Invalid { id: String, message: String },
}

/// Who asked for a container, so that apply never prunes `berth run`'s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Origin {
    /// `berth run`.
    Run,
    /// A manifest set applied from `source`, declared in `file`.
    Manifest { source: String, file: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerRecord {
    pub id: String,
    pub image: String,
    pub image_manifest: String,
    pub spec: ContainerSpec,
    pub origin: Origin,
    pub created_unix_ms: u64,
    /// The desired-state fingerprint it was created from (manifests only).
    #[serde(default)]
    pub fingerprint: Option<crate::reconcile::fingerprint::Fingerprint>,
}

/// A request to create a container.
pub struct CreateRequest {
    pub id: String,
    pub spec: ContainerSpec,
    /// Relative host paths (bind sources, env files, local images) resolve here.
    pub base_dir: PathBuf,
    pub origin: Origin,
    pub fingerprint: Option<crate::reconcile::fingerprint::Fingerprint>,
    /// Feed stdin through the container dir's fifo.
    pub stdin: bool,
    /// Extra environment set by berth.
    pub berth_env: Vec<(String, String)>,
    pub log: LogConfig,
    /// Removed when it exits (`run --rm`): its writable layer is never synced.
    pub ephemeral: bool,
    /// Give it a terminal whose master runc sends to this socket.
    pub console_socket: Option<PathBuf>,
}

/// What `ps` and `inspect` show.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerView {
    pub id: String,
    pub image: String,
    pub origin: Origin,
    pub created_unix_ms: u64,
    /// created, running, restarting, exited, or unknown (no shim and no status).
    pub state: String,
    pub status: Option<Status>,
    /// Whether the shim process is alive.
    pub shim_alive: bool,
}

impl ContainerView {
    pub fn is_running(&self) -> bool {
        matches!(self.state.as_str(), "running" | "restarting" | "created")
    }
}

pub struct Runtime {
    pub paths: Paths,
    pub images: Images,
    pub runc: Runc,
    pub networker: Networker,
    pub networks: NetworkStore,
    /// The binary that runs shims (`BINARY shim --dir DIR`): `berth-shim`
    /// beside this executable when it is there, else this executable
    /// (`berth shim`); set by library users whose executable is not berth.
    pub shim_binary: PathBuf,
}

fn io_err<'a>(
    id: &'a str,
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> ContainerError + 'a {
    move |source| ContainerError::Io {
        id: id.to_string(),
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// The process group of a live (not zombie) process, from its stat file.
fn live_process_group(stat_path: &Path) -> Option<u32> {
    let stat = fs::read_to_string(stat_path).ok()?;
    // The fields after the parenthesised command name: state, ppid, pgrp.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    let state = fields.next()?;
    let group = fields.nth(1)?.parse().ok()?;
    (state != "Z" && state != "X").then_some(group)
}

/// `berth-shim` beside this executable, else this executable: both run a
/// shim given `shim --dir DIR`, but `berth-shim` holds only the shim's code
/// and so keeps a third of the memory resident per container.
fn default_shim_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("berth"));
    let small = exe.with_file_name("berth-shim");
    if small.is_file() {
        small
    } else {
        exe
    }
}

/// Whether a process with this pid exists (and is not a zombie we could see).
pub fn pid_alive(pid: u32) -> bool {
    live_process_group(Path::new(&format!("/proc/{pid}/stat"))).is_some()
}

/// The live processes in process group `pgid`.
pub fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse().ok()?;
            (live_process_group(&entry.path().join("stat"))? == pgid).then_some(pid)
        })
        .collect()
}

/// How long `remove` waits for a killed shim's runtime calls to finish.
const SHIM_GROUP_TIMEOUT: Duration = Duration::from_secs(10);

impl Runtime {
    pub fn open(paths: &Paths, runtime: Option<&Path>) -> Result<Self, ContainerError> {
        let binary = find_runtime(runtime).ok_or(ContainerError::NoRuntime)?;
        let images =
            Images::open(paths).map_err(|source| ContainerError::Store(Box::new(source)))?;
        Ok(Runtime {
            paths: paths.clone(),
            images,
            runc: Runc::new(&binary, &paths.state.join("runc")),
            networker: Networker::new(&paths.root, &paths.state),
            networks: NetworkStore::new(&paths.root),
            shim_binary: default_shim_binary(),
        })
    }

    fn record_path(&self, id: &str) -> PathBuf {
        self.paths
            .root
            .join("containers")
            .join(format!("{id}.json"))
    }

    pub fn dir(&self, id: &str) -> ContainerDir {
        ContainerDir::new(&self.paths.state, id)
    }

    pub fn record(&self, id: &str) -> Result<ContainerRecord, ContainerError> {
        let path = self.record_path(id);
        let bytes = fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ContainerError::NotFound(id.to_string()),
            _ => io_err(id, "read", &path)(e),
        })?;
        serde_json::from_slice(&bytes)
            .map_err(|e| io_err(id, "parse", &path)(std::io::Error::other(e)))
    }

    pub fn records(&self) -> Result<Vec<ContainerRecord>, ContainerError> {
        let dir = self.paths.root.join("containers");
        let mut records = Vec::new();
        let Ok(entries) = fs::read_dir(&dir) else {
            return Ok(records);
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_suffix(".json") {
                if !id.starts_with('.') {
                    records.push(self.record(id)?);
                }
            }
        }
        records.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(records)
    }

    /// Finds or fetches the image a container needs, by its pull policy.
    pub fn ensure_image(
        &self,
        image: &str,
        policy: PullPolicy,
        base_dir: &Path,
        progress: &dyn Progress,
    ) -> Result<ImageRecord, ContainerError> {
        let wrap = |source| ContainerError::Image {
            image: image.to_string(),
            source: Box::new(source),
        };
        let source = ImageSource::parse(image)
            .map_err(|e| wrap(e.into()))?
            .resolve_relative_to(base_dir);
        let name = source.to_string();
        if policy != PullPolicy::Always {
            if let Some(record) = self
                .images
                .records
                .get_exact(&name)
                .map_err(|e| wrap(e.into()))?
            {
                self.images.unpack(&record, progress).map_err(wrap)?;
                return Ok(record);
            }
            if policy == PullPolicy::Never {
                return Err(wrap(ImageError::Invalid(format!(
                    "{name} is not in the image store and imagePullPolicy is Never"
                ))));
            }
        }
        match &source {
            ImageSource::Registry(reference) => {
                pull::pull(&self.images, reference, &PullOptions::default(), progress).map_err(wrap)
            }
            _ => import::import(&self.images, &source, &ImportOptions::default(), progress)
                .map_err(wrap),
        }
    }

    /// Creates the container and starts its shim.
    pub fn create(
        &self,
        request: CreateRequest,
        progress: &dyn Progress,
    ) -> Result<ContainerRecord, ContainerError> {
        self.create_with_stdin(request, progress)
            .map(|(record, _)| record)
    }

    /// [`Runtime::create`], and for a container with `stdin` the write end
    /// of its stdin fifo, opened before the shim starts so the container
    /// never reads end-of-file before its feeder is there. Closing it (every
    /// copy) is end-of-file for the container, as closing a pipe is.
    pub fn create_with_stdin(
        &self,
        request: CreateRequest,
        progress: &dyn Progress,
    ) -> Result<(ContainerRecord, Option<fs::File>), ContainerError> {
        let id = request.id.clone();
        if !manifest::validate::is_dns_label(&id) || id.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(ContainerError::InvalidName(id));
        }
        if self.record_path(&id).exists() {
            return Err(ContainerError::Exists(id));
        }
        let image = self.ensure_image(
            &request.spec.image,
            request.spec.image_pull_policy,
            &request.base_dir,
            progress,
        )?;
        let record = ContainerRecord {
            id: id.clone(),
            image: image.name.clone(),
            image_manifest: image.manifest.to_string(),
            spec: request.spec.clone(),
            origin: request.origin.clone(),
            created_unix_ms: unix_ms(),
            fingerprint: request.fingerprint.clone(),
        };
        let records_dir = self.paths.root.join("containers");
        fs::create_dir_all(&records_dir).map_err(io_err(&id, "create", &records_dir))?;
        // A create killed while writing its record left a temp file.
        remove_stale_temps(&records_dir);
        // The record comes first: whatever a crash leaves behind is then
        // findable, and `rm` cleans it up.
        // An ephemeral (`run --rm`) container's record need not survive a
        // power loss: there is nothing to restart or keep.
        let record_path = self.record_path(&id);
        let written = if request.ephemeral {
            serde_json::to_vec_pretty(&record)
                .map_err(std::io::Error::other)
                .and_then(|bytes| write_atomic_volatile(&record_path, &bytes))
        } else {
            write_json_atomic(&record_path, &record)
        };
        written.map_err(io_err(&id, "write", &record_path))?;
        match self.prepare_and_start(&record, &image, &request) {
            Ok(stdin) => Ok((record, stdin)),
            Err(error) => {
                let _ = self.remove(&id, true);
                Err(error)
            }
        }
    }

    fn prepare_and_start(
        &self,
        record: &ContainerRecord,
        image: &ImageRecord,
        request: &CreateRequest,
    ) -> Result<Option<fs::File>, ContainerError> {
        let id = &record.id;
        let dir = self.dir(id);
        for path in [dir.dir.clone(), dir.bundle(), dir.logs()] {
            fs::create_dir_all(&path).map_err(io_err(id, "create", &path))?;
        }
        let spec = &record.spec;
        // The network namespace (and its CNI attachments) comes up on a
        // second thread while the rootfs is prepared and mounted: the two
        // share nothing. Whichever fails, `create` removes both.
        let (network, mounted) = std::thread::scope(|scope| {
            let network = scope.spawn(|| self.setup_network(id, spec));
            let mounted = self.mount_rootfs(id, image, request.ephemeral, &dir);
            let network = network.join().unwrap_or_else(|_| {
                Err(ContainerError::Invalid {
                    id: id.clone(),
                    message: "network setup panicked".into(),
                })
            });
            (network, mounted)
        });
        mounted?;
        let network = network?;
        let config_bytes = self
            .images
            .store
            .read_json_blob(&image.config)
            .map_err(|e| ContainerError::Image {
                image: image.name.clone(),
                source: Box::new(e.into()),
            })?;
        let image_config =
            ImageConfig::from_image_config_json(&config_bytes).map_err(|source| {
                ContainerError::Spec {
                    id: id.clone(),
                    source: Box::new(source),
                }
            })?;
        let rootfs = Rootfs::open(&dir.rootfs()).map_err(|e| ContainerError::Spec {
            id: id.clone(),
            source: Box::new(e.into()),
        })?;
        let hostname = spec.hostname.clone().unwrap_or_else(|| id.clone());
        let etc = self.write_etc_files(id, &dir, &hostname, &network)?;
        if matches!(network, NetworkNamespace::Path(_)) {
            self.refresh_hosts_of_peers(id);
        }
        let input = SpecInput {
            container: spec,
            image: &image_config,
            rootfs: &rootfs,
            hostname: hostname.clone(),
            env_file_vars: read_env_files(id, &spec.env_files, &request.base_dir)?,
            mounts: self.resolve_mounts(id, spec, &request.base_dir)?,
            devices: resolve_devices(id, spec)?,
            etc: Some(etc),
            network,
            cgroups_path: self.paths.cgroup_path(id),
            nofile_hard: nofile_hard_limit(),
            seccomp_profile: read_seccomp_profile(id, spec, &request.base_dir)?,
            berth_env: request.berth_env.clone(),
            host_bounding: spec::host_bounding_set(),
            terminal: request.console_socket.is_some(),
        };
        let oci = spec::generate(&input).map_err(|source| ContainerError::Spec {
            id: id.clone(),
            source: Box::new(source),
        })?;
        let config_path = dir.bundle().join("config.json");
        let config = serde_json::to_vec_pretty(&oci)
            .map_err(|e| io_err(id, "encode", &config_path)(std::io::Error::other(e)))?;
        write_atomic_volatile(&config_path, &config).map_err(io_err(id, "write", &config_path))?;

        let mut shim = shim_config(
            id,
            spec,
            &dir,
            &self.runc,
            request.stdin,
            request.log.clone(),
        );
        shim.console_socket = request.console_socket.clone();
        // A `run --rm` container lives as long as the command: the runtime
        // may stay attached and clean up after it (no `runc delete`).
        shim.attached_runtime = request.ephemeral && request.console_socket.is_none();
        let shim_json = serde_json::to_vec_pretty(&shim)
            .map_err(|e| io_err(id, "encode", &dir.shim_config())(std::io::Error::other(e)))?;
        write_atomic_volatile(&dir.shim_config(), &shim_json).map_err(io_err(
            id,
            "write",
            &dir.shim_config(),
        ))?;
        tracing::debug!(container = %id, "bundle written");
        let stdin = if request.stdin {
            make_fifo(id, &dir.stdin_fifo())?;
            // Read-write: a fifo's open never blocks that way on Linux.
            let writer = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(dir.stdin_fifo())
                .map_err(io_err(id, "open", &dir.stdin_fifo()))?;
            Some(writer)
        } else {
            None
        };
        self.start_shim(id)?;
        Ok(stdin)
    }

    /// Prepares the container's snapshot (once) and mounts it as the rootfs.
    fn mount_rootfs(
        &self,
        id: &str,
        image: &ImageRecord,
        ephemeral: bool,
        dir: &ContainerDir,
    ) -> Result<(), ContainerError> {
        let snapshot_err = |source| ContainerError::Snapshot {
            id: id.to_string(),
            source: Box::new(source),
        };
        let snapshots = &self.images.snapshots;
        if snapshots.mounts(id).is_err() {
            snapshots
                .prepare_with(id, &image.name, &image.chain_ids(), ephemeral)
                .map_err(snapshot_err)?;
        }
        snapshots.unmount(&dir.rootfs()).map_err(snapshot_err)?;
        snapshots.mount(id, &dir.rootfs()).map_err(snapshot_err)?;
        tracing::debug!(container = %id, "rootfs mounted");
        Ok(())
    }

    /// Starts the shim and waits until it has detached and recorded its pid.
    pub fn start_shim(&self, id: &str) -> Result<(), ContainerError> {
        let dir = self.dir(id);
        // The shim inherits the lock and holds it until it exits, even if
        // we are killed before it has written its pid (see remove).
        let shim_lock = lock::acquire_for_child(&dir.shim_lock()).map_err(|e| match e {
            lock::LockError::Busy { .. } => ContainerError::Shim {
                id: id.to_string(),
                message: "another shim still runs for this container".into(),
            },
            other => io_err(id, "lock", &dir.shim_lock())(std::io::Error::other(other)),
        })?;
        let _ = fs::remove_file(dir.shim_pid());
        let exe = &self.shim_binary;
        // Exactly `berth shim --dir DIR`: main() recognises it before any
        // other start-up work, which keeps the shim small.
        let mut command = Command::new(exe);
        command
            .arg("shim")
            .arg("--dir")
            .arg(&dir.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        lock::share_with_child(&mut command, shim_lock.as_raw_fd());
        let output = command
            .output()
            .map_err(io_err(id, "spawn shim for", &dir.dir))?;
        drop(shim_lock);
        tracing::debug!(container = %id, "shim detached");
        if !output.status.success() || dir.read_shim_pid().is_none() {
            return Err(ContainerError::Shim {
                id: id.to_string(),
                message: format!(
                    "{} {}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
            });
        }
        Ok(())
    }

    /// Creates the container's pinned network namespace and attaches it to
    /// its networks (none for `networkMode: none`: loopback only).
    fn setup_network(
        &self,
        id: &str,
        spec: &ContainerSpec,
    ) -> Result<NetworkNamespace, ContainerError> {
        let requests = match spec.network_mode {
            NetworkMode::Host => return Ok(NetworkNamespace::Host),
            NetworkMode::None => Vec::new(),
            NetworkMode::Bridge => {
                let joined: Vec<(String, Option<std::net::IpAddr>, Vec<String>)> =
                    if spec.networks.is_empty() {
                        vec![(
                            crate::network::DEFAULT_NETWORK.to_string(),
                            None,
                            Vec::new(),
                        )]
                    } else {
                        spec.networks
                            .iter()
                            .map(|n| match n {
                                manifest::NetworkAttachment::Name(name) => {
                                    (name.clone(), None, Vec::new())
                                }
                                manifest::NetworkAttachment::Detailed(d) => {
                                    (d.name.clone(), d.ip, d.aliases.clone())
                                }
                            })
                            .collect()
                    };
                joined
                    .into_iter()
                    .map(|(name, ip, aliases)| {
                        let def =
                            self.networks
                                .get(&name)
                                .map_err(|e| ContainerError::Invalid {
                                    id: id.to_string(),
                                    message: e.to_string(),
                                })?;
                        Ok(NetworkRequest { def, ip, aliases })
                    })
                    .collect::<Result<_, ContainerError>>()?
            }
        };
        let request = AttachRequest {
            container: id,
            networks: requests,
            ports: spec.ports.clone(),
        };
        let (path, _) = self
            .networker
            .setup(&request)
            .map_err(|e| ContainerError::Network {
                id: id.to_string(),
                source: Box::new(e),
            })?;
        Ok(NetworkNamespace::Path(path))
    }

    /// Containers sharing a network with `id`: (name, aliases, address).
    fn peers_of(&self, id: &str) -> Vec<(String, Vec<String>, std::net::IpAddr)> {
        let own = self.networker.attachments(id);
        let mut peers = Vec::new();
        for other in self.networker.cache().containers().unwrap_or_default() {
            if other == id {
                continue;
            }
            for attachment in self.networker.attachments(&other) {
                if own.iter().any(|mine| mine.network == attachment.network) {
                    for ip in &attachment.ips {
                        peers.push((other.clone(), attachment.aliases.clone(), *ip));
                    }
                }
            }
        }
        peers.sort();
        peers.dedup();
        peers
    }

    /// `/etc/hosts` for a container: itself, and every peer by name and alias.
    fn hosts_for(&self, id: &str, hostname: &str) -> String {
        crate::network::attach::hosts_file(
            hostname,
            &self.networker.attachments(id),
            &self.peers_of(id),
        )
    }

    /// Rewrites, in place (it is bind-mounted), the hosts file of every
    /// container that shares a network with `id`.
    pub fn refresh_hosts_of_peers(&self, id: &str) {
        let peers: std::collections::BTreeSet<String> = self
            .peers_of(id)
            .into_iter()
            .map(|(name, _, _)| name)
            .collect();
        for peer in peers {
            self.refresh_hosts(&peer);
        }
    }

    /// Rewrites one container's hosts file in place.
    fn refresh_hosts(&self, id: &str) {
        let hostname = self
            .record(id)
            .ok()
            .and_then(|r| r.spec.hostname)
            .unwrap_or_else(|| id.to_string());
        let content = self.hosts_for(id, &hostname);
        let path = self.dir(id).dir.join("etc/hosts");
        if path.exists() {
            let _ = fs::write(&path, content);
        }
    }

    fn write_etc_files(
        &self,
        id: &str,
        dir: &ContainerDir,
        hostname: &str,
        network: &NetworkNamespace,
    ) -> Result<EtcFiles, ContainerError> {
        let etc = dir.dir.join("etc");
        fs::create_dir_all(&etc).map_err(io_err(id, "create", &etc))?;
        let files = EtcFiles {
            hosts: etc.join("hosts"),
            resolv_conf: etc.join("resolv.conf"),
            hostname: etc.join("hostname"),
        };
        let hosts = if *network == NetworkNamespace::Host {
            fs::read_to_string("/etc/hosts").unwrap_or_default()
        } else {
            self.hosts_for(id, hostname)
        };
        let resolv = host_resolv_conf(*network == NetworkNamespace::Host);
        for (path, content) in [
            (&files.hosts, hosts),
            (&files.resolv_conf, resolv),
            (&files.hostname, format!("{hostname}\n")),
        ] {
            write_atomic_volatile(path, content.as_bytes()).map_err(io_err(id, "write", path))?;
        }
        Ok(files)
    }

    fn resolve_mounts(
        &self,
        id: &str,
        spec: &ContainerSpec,
        base_dir: &Path,
    ) -> Result<Vec<ResolvedMount>, ContainerError> {
        let mut mounts = Vec::new();
        for mount in &spec.mounts {
            let source = mount.source.clone().unwrap_or_default();
            match mount.kind {
                MountType::Bind => {
                    let path = if Path::new(&source).is_absolute() {
                        PathBuf::from(&source)
                    } else {
                        base_dir.join(&source)
                    };
                    if !path.exists() {
                        return Err(ContainerError::Invalid {
                            id: id.to_string(),
                            message: format!("bind mount source {} does not exist", path.display()),
                        });
                    }
                    mounts.push(ResolvedMount::Bind {
                        source: path,
                        target: mount.target.clone(),
                        read_only: mount.read_only,
                        options: mount.options.clone(),
                    });
                }
                MountType::Volume => {
                    let path = self.volume_dir(&source);
                    fs::create_dir_all(&path).map_err(io_err(id, "create volume", &path))?;
                    mounts.push(ResolvedMount::Bind {
                        source: path,
                        target: mount.target.clone(),
                        read_only: mount.read_only,
                        options: mount.options.clone(),
                    });
                }
                MountType::Tmpfs => mounts.push(ResolvedMount::Tmpfs {
                    target: mount.target.clone(),
                    read_only: mount.read_only,
                    options: mount.options.clone(),
                }),
            }
        }
        Ok(mounts)
    }

    /// A named volume's data directory.
    pub fn volume_dir(&self, name: &str) -> PathBuf {
        self.volumes().data_dir(name)
    }

    pub fn volumes(&self) -> super::volume::Volumes {
        super::volume::Volumes::new(&self.paths.root)
    }

    /// What berth knows of a container right now.
    pub fn view(&self, record: &ContainerRecord) -> ContainerView {
        let dir = self.dir(&record.id);
        let status = dir.read_status().ok().flatten();
        let shim_alive = dir.read_shim_pid().is_some_and(pid_alive);
        let state = match &status {
            Some(status) if !shim_alive && status.phase != Phase::Exited => "unknown".to_string(),
            Some(status) => match status.phase {
                Phase::Created => "created",
                Phase::Running => "running",
                Phase::Restarting => "restarting",
                Phase::Exited => "exited",
            }
            .to_string(),
            None if shim_alive => "created".to_string(),
            None => "unknown".to_string(),
        };
        ContainerView {
            id: record.id.clone(),
            image: record.image.clone(),
            origin: record.origin.clone(),
            created_unix_ms: record.created_unix_ms,
            state,
            status,
            shim_alive,
        }
    }

    /// Asks the shim to stop the container (stop signal, then SIGKILL after
    /// the grace period) and waits for it to be gone.
    pub fn stop(&self, id: &str, timeout: Option<Duration>) -> Result<(), ContainerError> {
        let record = self.record(id)?;
        let dir = self.dir(id);
        let grace = record
            .spec
            .stop_grace_period
            .map_or(Duration::from_secs(10), |d| d.as_std());
        let Some(shim_pid) = dir.read_shim_pid().filter(|pid| pid_alive(*pid)) else {
            return Ok(());
        };
        let pid = nix::unistd::Pid::from_raw(shim_pid as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + timeout.unwrap_or(grace + Duration::from_secs(5));
        while pid_alive(shim_pid) {
            if Instant::now() > deadline {
                self.kill_then_wait_for_shim(id, shim_pid);
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// Pins the container's network namespace again from its init when the
    /// pin was removed behind berth's back and the container still runs, so
    /// that teardown's DEL can clean inside it.
    fn repin_lost_netns(&self, id: &str) {
        if !self.networker.pin_lost(id) {
            return;
        }
        let init = self
            .runc
            .state(id)
            .ok()
            .flatten()
            .filter(|state| state.pid > 0 && state.status != "stopped");
        if let Some(state) = init {
            if let Err(error) = self.networker.repin(id, state.pid as u32) {
                tracing::warn!(container = %id, %error, "cannot pin the network namespace again");
            }
        }
    }

    /// Waits until a shim we killed, and the runtime calls it had in flight,
    /// are gone. The shim leads its own process group (it called setsid);
    /// a SIGKILL ends the shim alone: a `runc create` it started runs on,
    /// writes `init.pid` into the directory being removed and creates the
    /// container after our `runc delete` (whereupon the next shim's create
    /// fails for good: "container with given ID already exists"). The
    /// container's processes are not in the group (runc's init calls setsid);
    /// a health check's `runc exec` ends once the container is killed.
    fn wait_for_shim_group(&self, id: &str, shim: u32) {
        let started = Instant::now();
        let mut container_killed = false;
        while !group_members(shim).is_empty() {
            if !container_killed && started.elapsed() > Duration::from_millis(500) {
                let _ = self.runc.kill(id, 9);
                container_killed = true;
            }
            if started.elapsed() > SHIM_GROUP_TIMEOUT {
                tracing::warn!(container = %id, shim, "runtime calls of the killed shim still run");
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until no process holds the container's shim lock, killing the
    /// shim `shim.pid` names as it appears; returns the lock, held. A shim
    /// holds the lock from the moment `start_shim` spawns it: this finds
    /// one whose spawner was killed before it wrote its pid, which would
    /// otherwise go on to run a second container under this id beside the
    /// next one (the one it loses to then fails to create for ever).
    fn kill_unrecorded_shims(&self, id: &str, dir: &ContainerDir) -> Option<lock::Lock> {
        if !dir.dir.exists() {
            return None;
        }
        let deadline = Instant::now() + SHIM_GROUP_TIMEOUT;
        loop {
            match lock::acquire(&dir.shim_lock(), lock::Mode::Exclusive, false) {
                Ok(held) => return Some(held),
                Err(lock::LockError::Busy { .. }) => {}
                Err(error) => {
                    tracing::warn!(container = %id, %error, "cannot check for a shim");
                    return None;
                }
            }
            if let Some(pid) = dir.read_shim_pid().filter(|pid| pid_alive(*pid)) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
                self.wait_for_shim_group(id, pid);
                let _ = self.runc.delete_force(id);
            }
            if Instant::now() > deadline {
                tracing::warn!(container = %id, "a process still holds the shim lock");
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Past the grace period: SIGKILL the container (again every 100 ms,
    /// for one the runtime was still starting) and let the shim record the
    /// exit, delete the runtime's container and exit. The shim itself is
    /// killed only if it does not finish within [`SHIM_FINISH_TIMEOUT`]:
    /// killed while it runs the runtime, it would orphan that process (a
    /// `runc run` could then create the container after `remove` took its
    /// rootfs away).
    fn kill_then_wait_for_shim(&self, id: &str, shim_pid: u32) {
        let mut next_kill = Instant::now();
        await_shim(shim_pid, || {
            if Instant::now() >= next_kill {
                let _ = self.runc.kill(id, 9);
                next_kill = Instant::now() + Duration::from_millis(100);
            }
        });
    }

    /// Removes the container: its runtime state, mount, snapshot and record.
    pub fn remove(&self, id: &str, force: bool) -> Result<(), ContainerError> {
        let dir = self.dir(id);
        self.repin_lost_netns(id);
        // The shim before it is stopped: what it has in flight may outlive it.
        let live_shim = dir.read_shim_pid().filter(|pid| pid_alive(*pid));
        if let Ok(record) = self.record(id) {
            if self.view(&record).is_running() {
                if !force {
                    return Err(ContainerError::Running(id.to_string()));
                }
                self.stop(id, Some(Duration::from_secs(0)))?;
            }
        } else if !dir.dir.exists() {
            return Err(ContainerError::NotFound(id.to_string()));
        }
        // A live shim that has recorded the final exit is deleting the
        // runtime's container (see `shim`): the network and the rootfs go
        // meanwhile, then we wait for it. Any other live shim is stuck: it
        // goes, with the runtime calls it had in flight, and the runtime's
        // container (its processes killed) before the rest.
        let shim = dir.read_shim_pid().filter(|pid| pid_alive(*pid));
        let exited = || {
            dir.read_status()
                .ok()
                .flatten()
                .is_some_and(|s| s.phase == Phase::Exited)
        };
        let finishing = shim.filter(|_| exited());
        let mut _no_second_shim = None;
        if finishing.is_none() {
            if let Some(pid) = shim {
                kill_shim(pid);
            }
            if let Some(pid) = live_shim.or(shim) {
                self.wait_for_shim_group(id, pid);
            }
            self.delete_runtime_container(id)?;
            _no_second_shim = self.kill_unrecorded_shims(id, &dir);
        }
        let peers: Vec<String> = self
            .peers_of(id)
            .into_iter()
            .map(|(name, _, _)| name)
            .collect();
        self.networker
            .teardown(id)
            .map_err(|e| ContainerError::Network {
                id: id.to_string(),
                source: Box::new(e),
            })?;
        for peer in peers {
            self.refresh_hosts(&peer);
        }
        let snapshots = &self.images.snapshots;
        snapshots
            .unmount(&dir.rootfs())
            .map_err(|source| ContainerError::Snapshot {
                id: id.to_string(),
                source: Box::new(source),
            })?;
        match snapshots.remove(id) {
            Ok(()) | Err(SnapshotError::NotFound(_)) => {}
            Err(source) => {
                return Err(ContainerError::Snapshot {
                    id: id.to_string(),
                    source: Box::new(source),
                })
            }
        }
        tracing::debug!(container = %id, "snapshot removed");
        if let Some(pid) = finishing {
            await_shim(pid, || {});
            // The pid file named the finishing shim; a shim spawned later by
            // a killed berth may not have written its pid yet.
            _no_second_shim = self.kill_unrecorded_shims(id, &dir);
            self.delete_runtime_container(id)?;
        }
        if dir.dir.exists() {
            fs::remove_dir_all(&dir.dir).map_err(io_err(id, "remove", &dir.dir))?;
        }
        // The record goes last: until then `rm` finds whatever is left.
        let record = self.record_path(id);
        match fs::remove_file(&record) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(io_err(id, "remove", &record)(e));
            }
            _ => {}
        }
        remove_stale_temps(&self.paths.root.join("containers"));
        Ok(())
    }

    /// `runtime delete --force`, unless the runtime holds nothing of this id
    /// (a shim that finished has deleted it).
    fn delete_runtime_container(&self, id: &str) -> Result<(), ContainerError> {
        if self.runc.may_have(id) {
            self.runc.delete_force(id)?;
        }
        Ok(())
    }
}

/// How long `stop` and `remove` wait for a shim to finish (record the exit,
/// delete the runtime's container: normally milliseconds) before they kill it.
const SHIM_FINISH_TIMEOUT: Duration = Duration::from_secs(5);

/// Waits for the shim `pid` to exit, calling `tick` between looks; kills it
/// if it has not exited within [`SHIM_FINISH_TIMEOUT`].
fn await_shim(pid: u32, mut tick: impl FnMut()) {
    let give_up = Instant::now() + SHIM_FINISH_TIMEOUT;
    while pid_alive(pid) {
        if Instant::now() > give_up {
            kill_shim(pid);
            return;
        }
        tick();
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn kill_shim(pid: u32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
}

fn shim_config(
    id: &str,
    spec: &ContainerSpec,
    dir: &ContainerDir,
    runc: &Runc,
    stdin: bool,
    log: LogConfig,
) -> ShimConfig {
    let backoff = spec.restart.backoff.clone().unwrap_or_default();
    let ms = |d: Option<manifest::quantity::Duration>, default: u64| {
        d.map_or(default, |d| d.as_std().as_millis() as u64)
    };
    ShimConfig {
        id: id.to_string(),
        bundle: dir.bundle(),
        runtime: runc.binary.clone(),
        runtime_root: runc.root.clone(),
        restart: RestartConfig {
            policy: match spec.restart.policy {
                manifest::RestartPolicy::Always => RestartPolicy::Always,
                manifest::RestartPolicy::OnFailure => RestartPolicy::OnFailure,
                manifest::RestartPolicy::Never => RestartPolicy::Never,
                manifest::RestartPolicy::UnlessStopped => RestartPolicy::UnlessStopped,
            },
            max_retries: spec.restart.max_retries,
            initial_ms: ms(backoff.initial, DEFAULT_BACKOFF_INITIAL_MS),
            max_ms: ms(backoff.max, DEFAULT_BACKOFF_MAX_MS),
            reset_after_ms: ms(backoff.reset_after, DEFAULT_BACKOFF_RESET_MS),
        },
        healthcheck: spec.healthcheck.as_ref().map(|h| HealthConfig {
            exec: h.exec.clone(),
            interval_ms: ms(h.interval, 30_000),
            timeout_ms: ms(h.timeout, 30_000),
            retries: h.retries.unwrap_or(3),
            start_period_ms: ms(h.start_period, 0),
            restart_on_unhealthy: h.on_unhealthy == manifest::OnUnhealthy::Restart,
        }),
        stop_signal: spec.stop_signal.as_deref().map_or(15, signal_number),
        stop_grace_ms: ms(spec.stop_grace_period, 10_000),
        log,
        stdin,
        console_socket: None,
        attached_runtime: false,
    }
}

/// Restart backoff defaults: Docker's 100 ms start (not kubelet's 10 s, which
/// makes a transient failure cost ten seconds), doubling up to kubelet's 5
/// minutes, reset after 10 minutes of running as kubelet does.
pub const DEFAULT_BACKOFF_INITIAL_MS: u64 = 100;
pub const DEFAULT_BACKOFF_MAX_MS: u64 = 300_000;
pub const DEFAULT_BACKOFF_RESET_MS: u64 = 600_000;

/// A signal by name (`SIGTERM`, `term`) or number.
pub fn signal_number(name: &str) -> i32 {
    if let Ok(n) = name.parse() {
        return n;
    }
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    manifest::validate::SIGNALS
        .iter()
        .position(|s| *s == bare)
        .map_or(15, |i| i as i32 + 1)
}

fn read_env_files(
    id: &str,
    files: &[String],
    base_dir: &Path,
) -> Result<Vec<(String, String)>, ContainerError> {
    let mut vars = Vec::new();
    for file in files {
        let path = base_dir.join(file);
        let text = fs::read_to_string(&path).map_err(io_err(id, "read env file", &path))?;
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let line = line.strip_prefix("export ").unwrap_or(line);
            let (name, value) = line.split_once('=').unwrap_or((line, ""));
            let value = value.trim();
            let unquoted = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(value);
            vars.push((name.trim().to_string(), unquoted.to_string()));
        }
    }
    Ok(vars)
}

fn resolve_devices(id: &str, spec: &ContainerSpec) -> Result<Vec<HostDevice>, ContainerError> {
    use std::os::unix::fs::MetadataExt;
    let mut devices = Vec::new();
    for device in &spec.devices {
        let (host, container, permissions) = match device {
            Device::Short(text) => {
                let mut parts = text.splitn(3, ':');
                let host = parts.next().unwrap_or_default().to_string();
                let container = parts
                    .next()
                    .map(str::to_string)
                    .unwrap_or_else(|| host.clone());
                (host, container, parts.next().unwrap_or("rwm").to_string())
            }
            Device::Long(d) => (
                d.path.clone(),
                d.container_path.clone().unwrap_or_else(|| d.path.clone()),
                d.permissions.clone().unwrap_or_else(|| "rwm".into()),
            ),
        };
        let metadata = fs::metadata(&host).map_err(io_err(id, "stat device", Path::new(&host)))?;
        let kind = if metadata.file_type().is_char_device() {
            'c'
        } else if metadata.file_type().is_block_device() {
            'b'
        } else {
            return Err(ContainerError::Invalid {
                id: id.to_string(),
                message: format!("{host} is not a device"),
            });
        };
        let rdev = metadata.rdev();
        devices.push(HostDevice {
            container_path: container,
            kind,
            major: nix::sys::stat::major(rdev) as i64,
            minor: nix::sys::stat::minor(rdev) as i64,
            permissions,
            file_mode: metadata.mode() & 0o777,
        });
    }
    Ok(devices)
}

fn read_seccomp_profile(
    id: &str,
    spec: &ContainerSpec,
    base_dir: &Path,
) -> Result<Option<serde_json::Value>, ContainerError> {
    match spec.seccomp.as_deref() {
        None | Some("default") | Some("unconfined") => Ok(None),
        Some(path) => {
            let path = base_dir.join(path);
            let bytes = fs::read(&path).map_err(io_err(id, "read seccomp profile", &path))?;
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| ContainerError::Invalid {
                    id: id.to_string(),
                    message: format!("seccomp profile {}: {e}", path.display()),
                })
        }
    }
}

fn make_fifo(id: &str, path: &Path) -> Result<(), ContainerError> {
    let _ = fs::remove_file(path);
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .map_err(|e| io_err(id, "mkfifo", path)(std::io::Error::from(e)))
}

/// The caller's hard RLIMIT_NOFILE.
fn nofile_hard_limit() -> u64 {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(1024, |(_, hard)| hard)
}

/// The host's resolv.conf without loopback nameservers (they would point at
/// the container itself), unless the container shares the host's network.
pub fn host_resolv_conf(host_network: bool) -> String {
    let text = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    if host_network {
        return text;
    }
    text.lines()
        .filter(|line| {
            let mut words = line.split_whitespace();
            !(words.next() == Some("nameserver")
                && words.next().is_some_and(|ip| {
                    ip.parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
                }))
        })
        .map(|line| format!("{line}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt;

    use super::*;

    #[test]
    fn group_members_are_the_live_processes_of_the_group() {
        let mut leader = Command::new("sleep")
            .arg("10")
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = leader.id();
        assert!(pid_alive(pgid));
        assert_eq!(group_members(pgid), [pgid]);
        leader.kill().unwrap();
        // Not reaped yet: a zombie is not a member.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !group_members(pgid).is_empty() {
            assert!(Instant::now() < deadline, "killed leader still counted");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(!pid_alive(pgid));
        leader.wait().unwrap();
    }
}
