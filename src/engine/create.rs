//! Creating a container: image, then snapshot and network side by side,
//! then the OCI bundle, then its shim.

use std::collections::BTreeMap;
use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::record::{ContainerRecord, Origin};
use super::rootfs::Base;
use super::{io_err, Engine, EngineError};
use crate::image::{ImageRecord, ImageSource, Progress};
use crate::manifest::names::{check_volume_name, ContainerId};
use crate::manifest::vocabulary::Signal;
use crate::manifest::{self, ContainerSpec, Device, MountType, NetworkMode, PullPolicy};
use crate::network::attach::{AttachRequest, NetworkRequest};
use crate::runtime::container_dir::{
    ContainerDir, HealthConfig, HealthProbe, LogConfig, RestartConfig, RestartPolicy, ShimConfig,
};
use crate::runtime::probe::{HttpProbe, TcpProbe};
use crate::runtime::rootfs::Rootfs;
use crate::runtime::runc::Runc;
use crate::runtime::spec::{
    self, HostDevice, ImageConfig, NetworkNamespace, ResolvedMount, SpecInput,
};
use crate::snapshot::Snapshotter;
use crate::state::atomic::write_atomic_volatile;
use crate::state::clock::unix_ms;
use crate::state::lock;
use crate::state::nofollow::create_dir_beneath;
use crate::state::records::read_referenced_file;

/// A request to create a container.
pub struct CreateRequest {
    pub id: ContainerId,
    pub spec: ContainerSpec,
    /// `spec.image`, parsed and resolved once by the caller (local paths
    /// absolute).
    pub image: ImageSource,
    /// How to find the image now: `spec.image_pull_policy`, except where the
    /// caller fetched it already (apply pulls an `Always` image once per
    /// pass, then creates with `IfNotPresent`).
    pub pull_policy: PullPolicy,
    /// Relative host paths (bind sources, env files, local images) resolve here.
    pub base_dir: PathBuf,
    pub origin: Origin,
    pub fingerprint: Option<crate::state::labels::Fingerprint>,
    /// Feed stdin through the container dir's fifo.
    pub stdin: bool,
    /// Extra environment set by berth.
    pub berth_env: Vec<(String, String)>,
    /// The log's rotation: `LogConfig::of(spec.logging)` for a manifest.
    pub log: LogConfig,
    /// Removed when it exits (`run --rm`): its writable layer is never synced.
    pub ephemeral: bool,
    /// Give it a terminal whose master runc sends to this socket.
    pub console_socket: Option<PathBuf>,
    /// Labels its record keeps, for `-l` selectors.
    pub labels: BTreeMap<String, String>,
}

impl Engine {
    /// Creates the container and starts its shim.
    pub fn create(
        &self,
        request: CreateRequest,
        progress: &dyn Progress,
    ) -> Result<ContainerRecord, EngineError> {
        self.create_with_stdin(request, progress)
            .map(|(record, _)| record)
    }

    /// [`Engine::create`], and for a container with `stdin` the write end
    /// of its stdin fifo, opened before the shim starts so the container
    /// never reads end-of-file before its feeder is there. Closing it (every
    /// copy) is end-of-file for the container, as closing a pipe is.
    pub fn create_with_stdin(
        &self,
        request: CreateRequest,
        progress: &dyn Progress,
    ) -> Result<(ContainerRecord, Option<fs::File>), EngineError> {
        let id = request.id.clone();
        if self.record_path(&id).exists() {
            return Err(EngineError::Exists(id.to_string()));
        }
        let image = self.ensure_base(id.as_str(), &request.image, request.pull_policy, progress)?;
        let record = ContainerRecord {
            id: id.clone(),
            image: image.name(),
            image_manifest: image.resolved(),
            spec: request.spec.clone(),
            origin: request.origin.clone(),
            created_unix_ms: unix_ms(),
            fingerprint: request.fingerprint.clone(),
            started_unix_ms: None,
            stopped: None,
            base_dir: Some(request.base_dir.clone()),
            labels: request.labels.clone(),
        };
        // The record comes first: whatever a crash leaves behind is then
        // findable, and `rm` cleans it up.
        // An ephemeral (`run --rm`) container's record need not survive a
        // power loss: there is nothing to restart or keep.
        self.rewrite_record(&record, request.ephemeral)?;
        match self.prepare_and_start(&record, &image, &request) {
            Ok(stdin) => Ok((self.mark_started(record, request.ephemeral), stdin)),
            Err(error) => Err(match self.remove(&id, true) {
                Ok(()) => error,
                // Both are the user's business: what failed, and what was
                // left behind because undoing it failed too.
                Err(cleanup) => EngineError::CleanupFailed {
                    id: id.to_string(),
                    error: Box::new(error),
                    cleanup: Box::new(cleanup),
                },
            }),
        }
    }

    /// Notes in the record that the container's shim started it. A failure
    /// to write is only logged: the container runs, and the note matters
    /// only after a reboot.
    fn mark_started(&self, mut record: ContainerRecord, volatile: bool) -> ContainerRecord {
        record.started_unix_ms = Some(unix_ms());
        if let Err(error) = self.rewrite_record(&record, volatile) {
            tracing::warn!(container = %record.id, %error, "cannot note that it started");
        }
        record
    }

    pub(super) fn prepare_and_start(
        &self,
        record: &ContainerRecord,
        image: &Base,
        request: &CreateRequest,
    ) -> Result<Option<fs::File>, EngineError> {
        let id = &record.id.to_string();
        let dir = self.dir(id);
        for path in [dir.dir.clone(), dir.bundle()] {
            create_dir_beneath(&self.paths.state, &path, 0o700)
                .map_err(io_err(id, "create", &path))?;
        }
        // Only the file driver writes there: with none or binary, no trace.
        let log_dir = if request.log.driver.is_file() {
            self.create_log_dir(id)?
        } else {
            self.log_dir(id)
        };
        let spec = &record.spec;
        // The network namespace (and its CNI attachments) comes up on a
        // second thread while the rootfs is prepared and mounted: the two
        // share nothing. Whichever fails, `create` removes both.
        let (network, mounted) = std::thread::scope(|scope| {
            let network = scope.spawn(|| self.setup_network(id, spec));
            let mounted = self.mount_rootfs(id, image, request.ephemeral, &dir);
            let network = network.join().unwrap_or_else(|_| {
                Err(EngineError::Invalid {
                    id: id.clone(),
                    message: "network setup panicked".into(),
                })
            });
            (network, mounted)
        });
        mounted?;
        let network = network?;
        let image_config = self.base_config(id, image, spec)?;
        let hostname = spec.hostname.clone().unwrap_or_else(|| id.clone());
        let hosts_guard = self.hosts_guard();
        // Read once, under the guard, for its own hosts file and its peers'.
        let members = match network {
            NetworkNamespace::Path(_) => self.membership(),
            _ => Default::default(),
        };
        let etc = self.write_etc_files(id, &dir, &hostname, &network, &members)?;
        if matches!(network, NetworkNamespace::Path(_)) {
            self.refresh_hosts_of_peers(&members, id);
        }
        drop(hosts_guard);
        let oci = self.build_spec(
            id,
            request,
            &image_config,
            &dir.rootfs(),
            Some(etc),
            network,
        )?;
        let config_path = dir.runtime_spec();
        let config = serde_json::to_vec_pretty(&oci)
            .map_err(|e| io_err(id, "encode", &config_path)(std::io::Error::other(e)))?;
        write_atomic_volatile(&config_path, &config).map_err(io_err(id, "write", &config_path))?;

        let mut shim = shim_config(
            id,
            spec,
            &dir,
            &self.runc,
            request.stdin,
            log_dir,
            request.log.clone(),
        );
        shim.console_socket = request.console_socket.clone();
        shim.events_log = Some(self.paths.events_log());
        // A `run --rm` container lives as long as the command: the runtime
        // may stay attached and clean up after it (no `runc delete`).
        shim.attached_runtime = request.ephemeral && request.console_socket.is_none();
        // A new container counts its restarts from zero: a status file a
        // removed container of the same name left behind is not its own
        // (a shim carries on the count of the status it finds).
        match fs::remove_file(dir.status()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(io_err(id, "remove", &dir.status())(e))
            }
            _ => {}
        }
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

    /// The process-shaping part of `image`'s config.
    pub(super) fn image_config(
        &self,
        id: &str,
        image: &ImageRecord,
    ) -> Result<ImageConfig, EngineError> {
        let config_bytes = self
            .images
            .store
            .read_json_blob(&image.config)
            .map_err(|e| EngineError::Image {
                image: image.name.clone(),
                source: Box::new(e.into()),
            })?;
        ImageConfig::from_image_config_json(&config_bytes).map_err(|source| EngineError::Spec {
            id: id.to_string(),
            source: Box::new(source),
        })
    }

    /// The OCI spec of `request`'s container over the rootfs at `rootfs`:
    /// reads its env files and seccomp profile, resolves its mounts and
    /// devices, and resolves its user in the rootfs.
    pub(super) fn build_spec(
        &self,
        id: &str,
        request: &CreateRequest,
        image_config: &ImageConfig,
        rootfs: &Path,
        etc: Option<spec::EtcFiles>,
        network: NetworkNamespace,
    ) -> Result<oci_spec::runtime::Spec, EngineError> {
        let spec = &request.spec;
        let rootfs = Rootfs::open(rootfs).map_err(|e| EngineError::Spec {
            id: id.to_string(),
            source: Box::new(e.into()),
        })?;
        let input = SpecInput {
            container: spec,
            image: image_config,
            rootfs: &rootfs,
            hostname: spec.hostname.clone().unwrap_or_else(|| id.to_string()),
            env_file_vars: read_env_files(
                id,
                &spec.env_files,
                &request.base_dir,
                self.input_limits.max_referenced_file,
            )?,
            mounts: self.resolve_mounts(id, spec, &request.base_dir)?,
            devices: resolve_devices(id, spec)?,
            etc,
            network,
            cgroups_path: self.paths.cgroup_path(id),
            nofile_hard: nofile_hard_limit(),
            seccomp_profile: read_seccomp_profile(
                id,
                spec,
                &request.base_dir,
                self.input_limits.max_referenced_file,
            )?,
            berth_env: request.berth_env.clone(),
            host_bounding: spec::host_bounding_set(),
            terminal: request.console_socket.is_some(),
            max_env_entries: self.input_limits.max_env_entries,
        };
        spec::generate(&input).map_err(|source| EngineError::Spec {
            id: id.to_string(),
            source: Box::new(source),
        })
    }

    /// Prepares the container's snapshot (once) and mounts it as the rootfs.
    pub(super) fn mount_rootfs(
        &self,
        id: &str,
        image: &Base,
        ephemeral: bool,
        dir: &ContainerDir,
    ) -> Result<(), EngineError> {
        let snapshot_err = |source| EngineError::Snapshot {
            id: id.to_string(),
            source: Box::new(source),
        };
        let snapshots = &self.snapshots;
        if snapshots.mounts(id).is_err() {
            self.prepare_snapshot_over(id, image, ephemeral)
                .map_err(snapshot_err)?;
        }
        let rootfs = dir.rootfs();
        // mount(2) follows a link in its target: the mount point is made
        // (or checked) without following one first.
        create_dir_beneath(&self.paths.state, &rootfs, 0o700)
            .map_err(io_err(id, "create", &rootfs))?;
        snapshots.unmount(&rootfs).map_err(snapshot_err)?;
        snapshots.mount(id, &rootfs).map_err(snapshot_err)?;
        tracing::debug!(container = %id, "rootfs mounted");
        Ok(())
    }

    /// Starts the shim and waits until it has detached and recorded its pid.
    pub fn start_shim(&self, id: &str) -> Result<(), EngineError> {
        let dir = self.dir(id);
        // The shim inherits the lock and holds it until it exits, even if
        // we are killed before it has written its pid (see remove).
        let shim_lock = lock::acquire_for_child(&dir.shim_lock()).map_err(|e| match e {
            lock::LockError::Busy { .. } => EngineError::Shim {
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
        if !output.status.success() || dir.read_shim_process().is_none() {
            return Err(EngineError::Shim {
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
    pub(super) fn setup_network(
        &self,
        id: &str,
        spec: &ContainerSpec,
    ) -> Result<NetworkNamespace, EngineError> {
        let requests = match spec.network_mode {
            NetworkMode::Host => return Ok(NetworkNamespace::Host),
            NetworkMode::None => Vec::new(),
            NetworkMode::Bridge => {
                let joined: Vec<(String, Option<std::net::IpAddr>, Vec<String>)> =
                    if spec.networks.is_empty() {
                        vec![(
                            crate::manifest::net::DEFAULT_NETWORK.to_string(),
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
                        let def = self.networks.get(&name).map_err(|e| EngineError::Invalid {
                            id: id.to_string(),
                            message: e.to_string(),
                        })?;
                        Ok(NetworkRequest { def, ip, aliases })
                    })
                    .collect::<Result<_, EngineError>>()?
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
            .map_err(|e| EngineError::Network {
                id: id.to_string(),
                source: Box::new(e),
            })?;
        Ok(NetworkNamespace::Path(path))
    }

    pub(super) fn resolve_mounts(
        &self,
        id: &str,
        spec: &ContainerSpec,
        base_dir: &Path,
    ) -> Result<Vec<ResolvedMount>, EngineError> {
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
                        return Err(EngineError::Invalid {
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
                    check_volume_name(&source)?;
                    let path = self.volume_dir(&source);
                    self.volumes().create_data_dir(&source).map_err(io_err(
                        id,
                        "create volume",
                        &path,
                    ))?;
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
}

fn shim_config(
    id: &str,
    spec: &ContainerSpec,
    dir: &ContainerDir,
    runc: &Runc,
    stdin: bool,
    log_dir: PathBuf,
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
            check: health_probe(h),
            interval_ms: ms(h.interval, 30_000),
            timeout_ms: ms(h.timeout, 30_000),
            retries: h
                .retries
                .unwrap_or(crate::manifest::Healthcheck::DEFAULT_RETRIES),
            start_period_ms: ms(h.start_period, 0),
            restart_on_unhealthy: h.on_unhealthy == manifest::OnUnhealthy::Restart,
        }),
        stop_signal: spec
            .stop_signal
            .as_deref()
            .and_then(Signal::parse)
            .unwrap_or(Signal::TERM)
            .number(),
        stop_grace_ms: ms(spec.stop_grace_period, 10_000),
        log_dir,
        log,
        stdin,
        console_socket: None,
        attached_runtime: false,
        events_log: None,
    }
}

/// What the shim checks for a valid `healthcheck` (exactly one of exec,
/// http, tcp; validation saw to it, so an empty one is an exec of nothing,
/// which fails as a check rather than here).
fn health_probe(health: &manifest::Healthcheck) -> HealthProbe {
    if let Some(http) = &health.http {
        return HealthProbe::Http(HttpProbe {
            port: http.port,
            path: http.path.clone(),
            host: http.host.clone(),
            headers: http
                .headers
                .iter()
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect(),
        });
    }
    if let Some(tcp) = &health.tcp {
        return HealthProbe::Tcp(TcpProbe { port: tcp.port });
    }
    HealthProbe::Exec(health.exec.clone().unwrap_or_default())
}

/// Restart backoff defaults: Docker's 100 ms start (not kubelet's 10 s, which
/// makes a transient failure cost ten seconds), doubling up to kubelet's 5
/// minutes, reset after 10 minutes of running as kubelet does.
pub const DEFAULT_BACKOFF_INITIAL_MS: u64 = 100;

pub const DEFAULT_BACKOFF_MAX_MS: u64 = 300_000;

pub const DEFAULT_BACKOFF_RESET_MS: u64 = 600_000;

fn read_env_files(
    id: &str,
    files: &[String],
    base_dir: &Path,
    limit: u64,
) -> Result<Vec<(String, String)>, EngineError> {
    let mut vars = Vec::new();
    for file in files {
        let path = base_dir.join(file);
        let bytes =
            read_referenced_file(&path, limit).map_err(io_err(id, "read env file", &path))?;
        let text = String::from_utf8(bytes)
            .map_err(|e| io_err(id, "read env file", &path)(std::io::Error::other(e)))?;
        vars.extend(crate::manifest::env_file::parse(&text));
    }
    Ok(vars)
}

fn resolve_devices(id: &str, spec: &ContainerSpec) -> Result<Vec<HostDevice>, EngineError> {
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
            return Err(EngineError::Invalid {
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
    limit: u64,
) -> Result<Option<serde_json::Value>, EngineError> {
    match spec.seccomp.as_deref() {
        None | Some("default") | Some("unconfined") => Ok(None),
        Some(path) => {
            let path = base_dir.join(path);
            let bytes = read_referenced_file(&path, limit).map_err(io_err(
                id,
                "read seccomp profile",
                &path,
            ))?;
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| EngineError::Invalid {
                    id: id.to_string(),
                    message: format!("seccomp profile {}: {e}", path.display()),
                })
        }
    }
}

fn make_fifo(id: &str, path: &Path) -> Result<(), EngineError> {
    let _ = fs::remove_file(path);
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .map_err(|e| io_err(id, "mkfifo", path)(std::io::Error::from(e)))
}

/// The caller's hard RLIMIT_NOFILE.
fn nofile_hard_limit() -> u64 {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(1024, |(_, hard)| hard)
}
