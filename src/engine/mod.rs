//! The engine: containerd's `ctr run` flow composed once, for `apply` and
//! `run` alike. It drives the subsystems, which know nothing of each other:
//! ensure the image ([`crate::image`]), then the snapshot
//! ([`crate::snapshot`]) and the pinned network namespace
//! ([`crate::network`]) side by side, then the bundle and the shim
//! ([`crate::runtime`]). It also stops and removes containers, keeps their
//! records and `/etc/hosts`, builds the views `ps` and `inspect` show, and
//! collects garbage.
//!
//! Records live in `<root>/containers/<id>.json`, logs in
//! `<root>/logs/<id>/`; runtime files in `<state>/containers/<id>/`. One file per verb: [`create`], [`start`],
//! [`stop`], [`remove`], [`view`].

pub mod copy;
pub mod create;
pub mod gc;
pub mod hosts;
pub mod image;
pub mod logs;
pub mod lost;
pub mod network;
pub mod preflight;
pub mod record;
pub mod remove;
pub mod rootfs;
pub mod start;
pub mod stats;
pub mod stop;
pub mod view;
pub mod volume;

use std::path::{Path, PathBuf};

use crate::image::{ImageError, ImageLimits, Images};
use crate::manifest::names::NameError;
use crate::network::attach::{NetworkError, Networker};
use crate::network::store::NetworkStore;
use crate::runtime::container_dir::ContainerDir;
use crate::runtime::runc::{find_runtime, Runc, RuncError};
use crate::runtime::spec::SpecError;
use crate::snapshot::{OverlaySnapshotter, SnapshotError};
use crate::state::limits::InputLimits;
use crate::state::records::RecordError;
use crate::state::Layout;

/// What long operations report while they run (the engine passes it on).
pub use crate::image::Progress;
pub use create::CreateRequest;
pub use record::{ContainerRecord, Origin};
pub use start::Started;
pub use view::ContainerView;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("container {0:?} already exists")]
    Exists(String),
    #[error("no container {0:?} (see berth ps -a)")]
    NotFound(String),
    #[error("container {0:?} is running; stop it first or use --force")]
    Running(String),
    #[error(transparent)]
    InvalidName(#[from] NameError),
    #[error("no OCI runtime at {0} (given with --runtime)")]
    RuntimeNotFound(PathBuf),
    #[error(
        "no OCI runtime: runc is not installed (apt-get install runc) and --runtime was not given"
    )]
    NoRuntime,
    #[error("{}", image_failure(image, source))]
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
    #[error(transparent)]
    NetworkStore(Box<crate::network::store::StoreError>),
    #[error("make berth's directories {root} and {state} private (0700): {source}")]
    PrivateDirs {
        root: PathBuf,
        state: PathBuf,
        source: std::io::Error,
    },
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
    #[error("container {id}: {source}")]
    Cgroup {
        id: String,
        source: Box<crate::runtime::cgroup_stats::CgroupError>,
    },
    #[error("container {id}: {source}")]
    Proc {
        id: String,
        source: Box<crate::runtime::procfs::ProcError>,
    },
    #[error("container {id}: copy: {source}")]
    Copy {
        id: String,
        source: Box<crate::runtime::copy::CopyError>,
    },
    #[error("network {network}: {message}")]
    NetworkConflict { network: String, message: String },
    #[error(transparent)]
    Record(Box<RecordError>),
    #[error("{error}; removing what the failed create left failed too: {cleanup} (berth rm -f {id} tries again)")]
    CleanupFailed {
        id: String,
        error: Box<EngineError>,
        cleanup: Box<EngineError>,
    },
}

pub struct Engine {
    pub paths: Layout,
    pub images: Images,
    pub snapshots: OverlaySnapshotter,
    /// The OCI runtime: the runc driver, which the shims run too (their
    /// `shim.json` names its binary and root). Stop and remove drive it as
    /// an [`OciRuntime`](crate::runtime::oci::OciRuntime).
    pub runc: Runc,
    pub networker: Networker,
    pub networks: NetworkStore,
    /// The bounds every image this engine imports, pulls or unpacks works
    /// under (the CLI's `--max-layer-size` and `--max-image-size`).
    pub image_limits: ImageLimits,
    /// The bounds on files manifests name and on a container's environment
    /// (the CLI's `--max-env-file-size` and `--max-env-entries`).
    pub input_limits: InputLimits,
    /// The binary that runs shims (`BINARY shim --dir DIR`): `berth-shim`
    /// beside this executable when it is there, else this executable
    /// (`berth shim`); set by library users whose executable is not berth.
    pub shim_binary: PathBuf,
}

/// `image NAME: CAUSE`, or the cause alone when it already starts with the
/// name (a failed pull says `pull NAME: ...`): the name is said once.
fn image_failure(image: &str, source: &ImageError) -> String {
    match source {
        ImageError::Pull { reference, .. } if reference == image => source.to_string(),
        _ => format!("image {image}: {source}"),
    }
}

fn io_err<'a>(
    id: &'a str,
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> EngineError + 'a {
    move |source| EngineError::Io {
        id: id.to_string(),
        op,
        path: path.to_path_buf(),
        source,
    }
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

impl Engine {
    /// The engine over `paths`, driving the OCI runtime `runtime` (else
    /// runc from PATH); fails when there is none.
    pub fn open(paths: &Layout, runtime: Option<&Path>) -> Result<Self, EngineError> {
        let binary = find_runtime(runtime).ok_or_else(|| match runtime {
            Some(path) => EngineError::RuntimeNotFound(path.to_path_buf()),
            None => EngineError::NoRuntime,
        })?;
        Self::open_with_runtime(paths, &binary)
    }

    /// The engine for the read verbs (`ps`, `inspect`, `logs`, `plan`,
    /// `volume`): what they show comes from berth's records and the shims'
    /// status files, so they work where no OCI runtime is installed.
    pub fn open_for_reading(paths: &Layout, runtime: Option<&Path>) -> Result<Self, EngineError> {
        let binary = find_runtime(runtime)
            .or_else(|| runtime.map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("runc"));
        Self::open_with_runtime(paths, &binary)
    }

    fn open_with_runtime(paths: &Layout, binary: &Path) -> Result<Self, EngineError> {
        paths
            .make_private()
            .map_err(|source| EngineError::PrivateDirs {
                root: paths.root.clone(),
                state: paths.state.clone(),
                source,
            })?;
        let images = Images::open(paths).map_err(|source| EngineError::Store(Box::new(source)))?;
        let snapshots = OverlaySnapshotter::open(&paths.snapshots())
            .map_err(|source| EngineError::Store(Box::new(ImageError::Unpack(Box::new(source)))))?;
        Ok(Engine {
            paths: paths.clone(),
            images,
            snapshots,
            runc: Runc::new(binary, &paths.runc_root()),
            networker: Networker::new(paths),
            networks: NetworkStore::new(paths.network_records()),
            image_limits: ImageLimits::default(),
            input_limits: InputLimits::default(),
            shim_binary: default_shim_binary(),
        })
    }

    /// The engine with `limits` on every image it imports, pulls or unpacks.
    pub fn with_image_limits(mut self, limits: ImageLimits) -> Self {
        self.image_limits = limits;
        self
    }

    /// The engine with `limits` on what manifests name and containers get.
    pub fn with_input_limits(mut self, limits: InputLimits) -> Self {
        self.input_limits = limits;
        self
    }

    pub fn dir(&self, id: &str) -> ContainerDir {
        ContainerDir::new(&self.paths, id)
    }
}
