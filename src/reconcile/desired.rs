//! Desired state: the validated manifest set with defaults applied and a
//! fingerprint per object computed from its spec *and what configures it*:
//! the resolved image, its env files, the content of files and directories
//! inside the manifest tree that it bind-mounts read-only, and the networks
//! and volumes it joins. A read-write bind mount is data, the container's to
//! write: its source path is part of the spec, its content is not hashed
//! (else every write would make the next plan replace the container).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::manifest::net::DEFAULT_NETWORK;
use crate::manifest::reference::{ImageSource, ReferenceError};
use crate::manifest::{
    ContainerSpec, DependencyCondition, JobSpec, Kind, Located, Logging, ManifestSet, Mount,
    MountType, NetworkMode, NetworkSpec, Object, VolumeSpec,
};
use crate::state::labels::Fingerprint;
use crate::state::records::read_referenced_file;

/// Bind-mounted trees larger than this are fingerprinted by metadata only.
const MAX_HASHED_BYTES: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum DesiredError {
    #[error("{file}: {kind} {name}: {what} {path}: {source}")]
    Read {
        file: String,
        kind: Kind,
        name: String,
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}: {name}: {source}")]
    Image {
        file: String,
        name: String,
        source: ReferenceError,
    },
}

/// A workload's image, parsed once and resolved against its manifest's
/// directory.
fn resolve_image(located: &Located, image: &str) -> Result<ImageSource, DesiredError> {
    ImageSource::parse(image)
        .map(|source| source.resolve_relative_to(&located.base_dir))
        .map_err(|source| DesiredError::Image {
            file: located.file.clone(),
            name: located.object.name().to_string(),
            source,
        })
}

/// What a set's images resolve to, each looked up once however many
/// objects name it: resolving a local image canonicalizes its path, and
/// its digest comes from the image's record.
#[derive(Default)]
struct ImageMemo {
    sources: BTreeMap<(PathBuf, String), ImageSource>,
    digests: BTreeMap<String, Option<String>>,
}

impl ImageMemo {
    fn source(&mut self, located: &Located, image: &str) -> Result<ImageSource, DesiredError> {
        let key = (located.base_dir.clone(), image.to_string());
        if let Some(source) = self.sources.get(&key) {
            return Ok(source.clone());
        }
        let source = resolve_image(located, image)?;
        self.sources.insert(key, source.clone());
        Ok(source)
    }

    fn digest(&mut self, images: &dyn ImageResolver, name: &str) -> Option<String> {
        self.digests
            .entry(name.to_string())
            .or_insert_with(|| images.manifest_digest(name))
            .clone()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum DesiredSpec {
    Container(ContainerSpec),
    Job(JobSpec),
    Network(NetworkSpec),
    Volume(VolumeSpec),
}

#[derive(Debug, Clone, PartialEq)]
pub struct DesiredObject {
    pub kind: Kind,
    pub name: String,
    /// The manifest file that declared it.
    pub file: String,
    /// The line of its `metadata.name` in that file (kept in its record,
    /// so that a conflict with it names where it is declared).
    pub line: usize,
    pub base_dir: PathBuf,
    pub spec: DesiredSpec,
    pub fingerprint: Fingerprint,
    /// A workload's image, parsed once and resolved against the manifest's
    /// directory: what the plan pulls and the engine creates from.
    pub image: Option<ImageSource>,
    /// Its `metadata.labels`, which its containers' records keep (for
    /// `-l` selectors).
    pub labels: BTreeMap<String, String>,
}

impl DesiredObject {
    /// The container spec of a Container (or a Job's template), if any.
    pub fn container_spec(&self) -> Option<&ContainerSpec> {
        match &self.spec {
            DesiredSpec::Container(spec) => Some(spec),
            _ => None,
        }
    }

    /// `(name, condition)` of each dependency.
    pub fn dependencies(&self) -> Vec<(String, DependencyCondition)> {
        let deps = match &self.spec {
            DesiredSpec::Container(spec) => &spec.depends_on,
            DesiredSpec::Job(spec) => &spec.template.depends_on,
            _ => return Vec::new(),
        };
        deps.iter()
            .map(|d| (d.name().to_string(), d.condition()))
            .collect()
    }

    /// Names of the networks a container joins (bridge mode: `default` when none).
    pub fn networks(&self) -> Vec<String> {
        let (mode, networks) = match &self.spec {
            DesiredSpec::Container(spec) => (spec.network_mode, &spec.networks),
            DesiredSpec::Job(spec) => (spec.template.network_mode, &spec.template.networks),
            _ => return Vec::new(),
        };
        if mode != NetworkMode::Bridge {
            return Vec::new();
        }
        if networks.is_empty() {
            return vec![DEFAULT_NETWORK.to_string()];
        }
        networks.iter().map(|n| n.name().to_string()).collect()
    }

    /// The image as the store names it (local paths made absolute).
    pub fn image_name(&self) -> Option<String> {
        self.image.as_ref().map(ImageSource::to_string)
    }
}

/// Tells the desired-state builder which manifest digest an image name
/// resolves to now (None when it is not in the store yet).
pub trait ImageResolver {
    fn manifest_digest(&self, image_name: &str) -> Option<String>;
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Desired {
    /// The manifest set's identity: pruning touches only objects from it.
    pub source: String,
    /// The manifest tree's root: read-only bind mounts below it are fingerprinted by content.
    pub tree: PathBuf,
    pub objects: Vec<DesiredObject>,
}

impl Desired {
    /// The object `kind`/`name`. [`build`] sorts the objects by kind and
    /// name, so a search finds it in log time (the planner asks once per
    /// object and per observed container); a hand-built, unsorted set
    /// still finds it by a scan.
    pub fn get(&self, kind: Kind, name: &str) -> Option<&DesiredObject> {
        match self
            .objects
            .binary_search_by(|o| (o.kind, o.name.as_str()).cmp(&(kind, name)))
        {
            Ok(index) => Some(&self.objects[index]),
            Err(_) => self
                .objects
                .iter()
                .find(|o| o.kind == kind && o.name == name),
        }
    }
}

/// Builds the desired state of a validated set.
pub fn build(
    set: &ManifestSet,
    source: &str,
    tree: &Path,
    images: &dyn ImageResolver,
) -> Result<Desired, DesiredError> {
    let mut objects = Vec::new();
    // Networks and volumes first: containers fold their fingerprints in.
    let mut shared: BTreeMap<(Kind, String), String> = BTreeMap::new();
    for located in &set.objects {
        let (kind, spec, fingerprint) = match &located.object {
            Object::Network(m) => {
                let mut f = Fingerprint::default();
                f.insert_fields("spec", &m.spec);
                (Kind::Network, DesiredSpec::Network(m.spec.clone()), f)
            }
            Object::Volume(m) => {
                let mut f = Fingerprint::default();
                f.insert_fields("spec", &m.spec);
                (Kind::Volume, DesiredSpec::Volume(m.spec.clone()), f)
            }
            _ => continue,
        };
        shared.insert(
            (kind, located.object.name().to_string()),
            fingerprint.hash(),
        );
        objects.push(DesiredObject {
            kind,
            name: located.object.name().to_string(),
            file: located.file.clone(),
            line: located.name_line(),
            base_dir: located.base_dir.clone(),
            spec,
            fingerprint,
            image: None,
            labels: BTreeMap::new(),
        });
    }
    let mut memo = ImageMemo::default();
    for located in &set.objects {
        let object = match &located.object {
            Object::Container(m) => {
                let mut object = DesiredObject {
                    kind: Kind::Container,
                    name: m.metadata.name.clone(),
                    file: located.file.clone(),
                    line: located.name_line(),
                    base_dir: located.base_dir.clone(),
                    spec: DesiredSpec::Container(m.spec.clone()),
                    fingerprint: Fingerprint::default(),
                    image: Some(memo.source(located, &m.spec.image)?),
                    labels: m.metadata.labels.clone(),
                };
                object
                    .fingerprint
                    .insert_fields("spec", &fingerprinted(&m.spec));
                insert_labels(&mut object.fingerprint, &m.metadata.labels);
                object
            }
            Object::Job(m) => {
                let mut object = DesiredObject {
                    kind: Kind::Job,
                    name: m.metadata.name.clone(),
                    file: located.file.clone(),
                    line: located.name_line(),
                    base_dir: located.base_dir.clone(),
                    spec: DesiredSpec::Job(m.spec.clone()),
                    fingerprint: Fingerprint::default(),
                    image: Some(memo.source(located, &m.spec.template.image)?),
                    labels: m.metadata.labels.clone(),
                };
                let mut spec = m.spec.clone();
                spec.template.logging = canonical_logging(spec.template.logging.as_ref());
                object.fingerprint.insert_fields("spec", &spec);
                object
            }
            _ => continue,
        };
        objects.push(fingerprint_references(
            object, tree, &shared, images, &mut memo,
        )?);
    }
    objects.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    Ok(Desired {
        source: source.to_string(),
        tree: tree.to_path_buf(),
        objects,
    })
}

/// A Container's labels are part of what it is (its record keeps them,
/// selectors read them there), so changing them replaces it, as docker
/// compose does. No labels add no part, so a container without labels keeps
/// the fingerprint it had before labels were recorded.
fn insert_labels(fingerprint: &mut Fingerprint, labels: &BTreeMap<String, String>) {
    if !labels.is_empty() {
        fingerprint.insert_fields("metadata.labels", labels);
    }
}

/// A container spec as it is fingerprinted: its logging settings by what
/// they mean (see [`canonical_logging`]).
fn fingerprinted(spec: &ContainerSpec) -> ContainerSpec {
    let mut spec = spec.clone();
    spec.logging = canonical_logging(spec.logging.as_ref());
    spec
}

/// Logging settings spelled out, or none when they are the defaults: so
/// `logging: {maxFiles: 5}`, `maxSize: 10485760` and no `logging` at all
/// fingerprint alike (and a container from before `logging` existed is not
/// replaced), while any real change of rotation is a config change.
fn canonical_logging(logging: Option<&Logging>) -> Option<Logging> {
    let resolved = logging.cloned().unwrap_or_default().resolved();
    (resolved != Logging::default().resolved()).then_some(resolved)
}

/// Folds what a workload refers to into its fingerprint.
/// The fingerprint part of a workload's resolved image digest.
pub const IMAGE_PART: &str = "image";

fn fingerprint_references(
    mut object: DesiredObject,
    tree: &Path,
    shared: &BTreeMap<(Kind, String), String>,
    images: &dyn ImageResolver,
    memo: &mut ImageMemo,
) -> Result<DesiredObject, DesiredError> {
    let spec = match &object.spec {
        DesiredSpec::Container(spec) => spec.clone(),
        DesiredSpec::Job(job) => job.template.to_container_spec(),
        _ => return Ok(object),
    };
    // An image whose record is missing or unreadable is unknown, not
    // changed: it gets no part, and the planner compares nothing for it
    // (the pull that brings it back plans again with its digest).
    // A `rootfs:DIR` is no stored image: its part is the directory's
    // identity (device, inode, newest top-level mtime), or none while it
    // cannot be read (unknown, as a missing image record is).
    let resolved = match object.image.as_ref().and_then(ImageSource::rootfs_dir) {
        Some(dir) => crate::engine::rootfs::identity(dir).ok(),
        None => object.image_name().and_then(|i| memo.digest(images, &i)),
    };
    if let Some(resolved) = resolved {
        object.fingerprint.insert(IMAGE_PART, resolved.as_bytes());
    }
    let read_error = |what, path: &Path, source| DesiredError::Read {
        file: object.file.clone(),
        kind: object.kind,
        name: object.name.clone(),
        what,
        path: path.to_path_buf(),
        source,
    };
    for file in &spec.env_files {
        let path = object.base_dir.join(file);
        // Hashed here under the hashing bound; the engine parses it under
        // the (configurable) bound on env files when it creates.
        let bytes = read_referenced_file(&path, MAX_HASHED_BYTES)
            .map_err(|e| read_error("env file", &path, e))?;
        object.fingerprint.insert(format!("envFile:{file}"), &bytes);
    }
    for mount in spec.mounts.iter().filter(|m| is_configuration(m)) {
        let source = mount.source.clone().unwrap_or_default();
        let path = object.base_dir.join(&source);
        // Only files kept with the manifests (in git) are content: host
        // paths elsewhere are the host's business.
        let inside = fs::canonicalize(&path)
            .map(|p| p.starts_with(tree))
            .unwrap_or(false);
        if inside {
            let mut budget = MAX_HASHED_BYTES;
            let digest = hash_tree(&path, &mut budget)
                .map_err(|e| read_error("bind mount source", &path, e))?;
            object
                .fingerprint
                .insert(format!("bind:{source}"), digest.as_bytes());
        }
    }
    for network in object.networks() {
        if let Some(hash) = shared.get(&(Kind::Network, network.clone())) {
            object
                .fingerprint
                .insert(format!("network:{network}"), hash.as_bytes());
        }
    }
    for mount in spec.mounts.iter().filter(|m| m.kind == MountType::Volume) {
        let name = mount.source.clone().unwrap_or_default();
        if let Some(hash) = shared.get(&(Kind::Volume, name.clone())) {
            object
                .fingerprint
                .insert(format!("volume:{name}"), hash.as_bytes());
        }
    }
    Ok(object)
}

/// Whether a mount brings configuration (a read-only bind mount) rather
/// than data the container writes.
fn is_configuration(mount: &Mount) -> bool {
    mount.kind == MountType::Bind && is_read_only(mount)
}

/// Whether a mount ends up read-only: `readOnly: true` adds `ro` before
/// the options, and the last of `ro` and `rw` wins, as the runtime applies
/// them in order.
fn is_read_only(mount: &Mount) -> bool {
    mount
        .options
        .iter()
        .fold(mount.read_only, |read_only, option| match option.as_str() {
            "ro" => true,
            "rw" => false,
            _ => read_only,
        })
}

/// A digest of a file's content, or of a directory's names, modes and
/// contents (metadata only once the byte budget is spent).
fn hash_tree(path: &Path, budget: &mut u64) -> std::io::Result<String> {
    use std::os::unix::fs::PermissionsExt;
    let metadata = fs::symlink_metadata(path)?;
    if metadata.is_file() {
        if metadata.len() <= *budget {
            *budget -= metadata.len();
            return Ok(crate::state::labels::sha256_hex(&fs::read(path)?));
        }
        return Ok(format!(
            "size:{}:mtime:{:?}",
            metadata.len(),
            metadata.modified().ok()
        ));
    }
    if metadata.file_type().is_symlink() {
        return Ok(format!("link:{}", fs::read_link(path)?.display()));
    }
    if !metadata.is_dir() {
        return Ok(format!("special:{:o}", metadata.permissions().mode()));
    }
    let mut entries: Vec<_> = fs::read_dir(path)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    let mut text = String::new();
    for entry in entries {
        let name = entry
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mode = fs::symlink_metadata(&entry)
            .map(|m| m.permissions().mode())
            .unwrap_or(0);
        text.push_str(&format!("{name} {mode:o} {}\n", hash_tree(&entry, budget)?));
    }
    Ok(crate::state::labels::sha256_hex(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{load, LoadOptions};

    struct NoImages;
    impl ImageResolver for NoImages {
        fn manifest_digest(&self, _: &str) -> Option<String> {
            None
        }
    }

    fn desired(dir: &Path) -> Desired {
        let set = load(&[dir.display().to_string()], LoadOptions::default()).expect("valid set");
        build(&set, "test", &fs::canonicalize(dir).unwrap(), &NoImages).expect("desired")
    }

    fn hash_of(d: &Desired, name: &str) -> Fingerprint {
        d.get(Kind::Container, name).unwrap().fingerprint.clone()
    }

    const WEB: &str = "apiVersion: berth/v1\nkind: Container\nmetadata: {name: web}\nspec:\n  image: busybox\n  envFiles: [app.env]\n  mounts:\n  - {type: bind, source: ./site, target: /srv, readOnly: true}\n  - {type: bind, source: ./data, target: /data}\n  networks: [front]\n";
    const NET: &str = "apiVersion: berth/v1\nkind: Network\nmetadata: {name: front}\nspec: {subnet: 10.231.0.0/24}\n";

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("web.yaml"), WEB).unwrap();
        fs::write(dir.path().join("net.yaml"), NET).unwrap();
        fs::write(dir.path().join("app.env"), "A=1\n").unwrap();
        fs::create_dir_all(dir.path().join("site")).unwrap();
        fs::write(dir.path().join("site/index.html"), "hello").unwrap();
        fs::create_dir_all(dir.path().join("data")).unwrap();
        dir
    }

    #[test]
    fn labels_are_kept_and_fingerprinted_only_when_there_are_some() {
        let dir = tree();
        let before = desired(dir.path());
        assert!(before
            .get(Kind::Container, "web")
            .unwrap()
            .labels
            .is_empty());
        let labelled = WEB.replace(
            "metadata: {name: web}",
            "metadata: {name: web, labels: {app: web}}",
        );
        fs::write(dir.path().join("web.yaml"), labelled).unwrap();
        let after = desired(dir.path());
        let web = after.get(Kind::Container, "web").unwrap();
        assert_eq!(web.labels.get("app").map(String::as_str), Some("web"));
        // A label changes the container (docker compose replaces it too);
        // no labels add no part, so unlabelled containers keep their hash.
        assert_eq!(
            web.fingerprint.changed_parts(&hash_of(&before, "web")),
            ["metadata.labels.app"]
        );
    }

    #[test]
    fn editing_an_env_file_changes_only_its_part() {
        let dir = tree();
        let before = hash_of(&desired(dir.path()), "web");
        fs::write(dir.path().join("app.env"), "A=2\n").unwrap();
        let after = hash_of(&desired(dir.path()), "web");
        assert_eq!(after.changed_parts(&before), ["envFile:app.env"]);
    }

    #[test]
    fn editing_a_file_in_a_read_only_bind_mount_of_the_tree_changes_the_hash() {
        let dir = tree();
        let before = hash_of(&desired(dir.path()), "web");
        fs::write(dir.path().join("site/index.html"), "changed").unwrap();
        let after = hash_of(&desired(dir.path()), "web");
        assert_eq!(after.changed_parts(&before), ["bind:./site"]);
    }

    #[test]
    fn what_the_container_writes_into_a_read_write_bind_mount_changes_nothing() {
        // Regression: a writable bind dir in the tree was hashed, so each
        // write made the next plan replace the container (9 times in one
        // `apply --wait`).
        let dir = tree();
        let before = hash_of(&desired(dir.path()), "web");
        fs::write(dir.path().join("data/db"), "written by the container").unwrap();
        fs::create_dir_all(dir.path().join("data/cache")).unwrap();
        let after = hash_of(&desired(dir.path()), "web");
        assert!(after.changed_parts(&before).is_empty());
        assert!(!after.parts.contains_key("bind:./data"));
    }

    #[test]
    fn a_bind_mount_is_read_only_by_its_flag_or_its_last_ro_or_rw_option() {
        let mount = |read_only: bool, options: &[&str]| Mount {
            kind: MountType::Bind,
            source: Some("./x".into()),
            target: "/x".into(),
            read_only,
            options: options.iter().map(|o| o.to_string()).collect(),
        };
        assert!(is_read_only(&mount(true, &[])));
        assert!(is_read_only(&mount(false, &["nosuid", "ro"])));
        assert!(!is_read_only(&mount(false, &[])));
        assert!(!is_read_only(&mount(true, &["rw"])));
        assert!(is_configuration(&mount(true, &[])));
        let mut volume = mount(true, &[]);
        volume.kind = MountType::Volume;
        assert!(!is_configuration(&volume));
    }

    #[test]
    fn changing_a_health_probe_changes_the_healthcheck_part() {
        let dir = tree();
        let probe =
            |path: &str| format!("{WEB}  healthcheck:\n    http: {{path: {path}, port: 8080}}\n");
        fs::write(dir.path().join("web.yaml"), probe("/healthz")).unwrap();
        let before = hash_of(&desired(dir.path()), "web");
        fs::write(dir.path().join("web.yaml"), probe("/ready")).unwrap();
        let after = hash_of(&desired(dir.path()), "web");
        assert_eq!(after.changed_parts(&before), ["spec.healthcheck"]);
        let tcp = format!("{WEB}  healthcheck:\n    tcp: {{port: 8080}}\n");
        fs::write(dir.path().join("web.yaml"), tcp).unwrap();
        let as_tcp = hash_of(&desired(dir.path()), "web");
        assert_eq!(as_tcp.changed_parts(&after), ["spec.healthcheck"]);
    }

    #[test]
    fn an_exec_healthcheck_is_fingerprinted_as_before_probes_existed() {
        // Containers applied before http and tcp existed must not be
        // replaced on upgrade: their spec serializes to the same JSON.
        let exec = crate::manifest::Healthcheck {
            exec: Some(vec!["true".into()]),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&exec).unwrap(),
            serde_json::json!({"exec": ["true"], "onUnhealthy": "none"})
        );
    }

    #[test]
    fn changing_a_joined_network_changes_its_containers() {
        let dir = tree();
        let before = hash_of(&desired(dir.path()), "web");
        fs::write(
            dir.path().join("net.yaml"),
            NET.replace("10.231.0.0/24", "10.232.0.0/24"),
        )
        .unwrap();
        let after = hash_of(&desired(dir.path()), "web");
        assert_eq!(after.changed_parts(&before), ["network:front"]);
    }

    #[test]
    fn choosing_other_hosts_changes_no_fingerprint() {
        // A host that still runs an object after its metadata.hosts changed
        // must not replace it: only what configures an object counts.
        let dir = tree();
        let before = desired(dir.path());
        let hosts = |text: &str, selector: &str| {
            text.replacen(
                "metadata: {name: ",
                &format!("metadata: {{hosts: {selector}, name: "),
                1,
            )
        };
        fs::write(dir.path().join("web.yaml"), hosts(WEB, "[\"web-*\"]")).unwrap();
        fs::write(
            dir.path().join("net.yaml"),
            hosts(NET, "{matchLabels: {role: edge}}"),
        )
        .unwrap();
        let after = desired(dir.path());
        assert!(hash_of(&after, "web")
            .changed_parts(&hash_of(&before, "web"))
            .is_empty());
        let network = |d: &Desired| d.get(Kind::Network, "front").unwrap().fingerprint.clone();
        assert_eq!(network(&after), network(&before));
        assert_eq!(hash_of(&after, "web"), hash_of(&before, "web"));
    }

    #[test]
    fn writing_a_default_explicitly_changes_nothing() {
        let dir = tree();
        let before = hash_of(&desired(dir.path()), "web");
        fs::write(
            dir.path().join("web.yaml"),
            format!("{WEB}  imagePullPolicy: IfNotPresent\n  restart: {{policy: always}}\n"),
        )
        .unwrap();
        let after = hash_of(&desired(dir.path()), "web");
        assert!(
            after.changed_parts(&before).is_empty(),
            "{:?}",
            after.changed_parts(&before)
        );
    }

    #[test]
    fn logging_settings_are_fingerprinted_by_what_they_mean() {
        let dir = tree();
        let web = |logging: &str| {
            fs::write(dir.path().join("web.yaml"), format!("{WEB}{logging}")).unwrap();
            hash_of(&desired(dir.path()), "web")
        };
        let none = web("");
        for default in [
            "  logging: {}\n",
            "  logging: {maxSize: 10Mi, maxFiles: 5}\n",
            "  logging: {maxSize: 10485760}\n",
        ] {
            assert!(web(default).changed_parts(&none).is_empty(), "{default}");
        }
        let small = web("  logging: {maxSize: 64Ki}\n");
        assert_eq!(small.changed_parts(&none), ["spec.logging"]);
        let more = web("  logging: {maxSize: 64Ki, maxFiles: 9}\n");
        assert_eq!(more.changed_parts(&small), ["spec.logging"]);
        assert!(web("  logging: {maxSize: 65536}\n")
            .changed_parts(&small)
            .is_empty());
    }

    #[test]
    fn privileged_is_fingerprinted_by_what_it_means_and_as_the_bool_was() {
        let dir = tree();
        let web = |privileged: &str| {
            fs::write(dir.path().join("web.yaml"), format!("{WEB}{privileged}")).unwrap();
            hash_of(&desired(dir.path()), "web")
        };
        // A fingerprint from before `privileged` took a mapping: the bool's text.
        let part = |web: &Fingerprint| web.parts["spec.privileged"].clone();
        assert_eq!(part(&web("")), crate::state::labels::sha256_hex(b"false"));
        let full = web("  privileged: true\n");
        assert_eq!(part(&full), crate::state::labels::sha256_hex(b"true"));
        for same in ["  privileged: {}\n", "  privileged: {hostDevices: true}\n"] {
            assert!(web(same).changed_parts(&full).is_empty(), "{same}");
        }
        let bare = web("  privileged: {hostDevices: false}\n");
        assert_eq!(bare.changed_parts(&full), ["spec.privileged"]);
    }

    #[test]
    fn the_log_driver_is_fingerprinted_and_file_hashes_as_before() {
        let dir = tree();
        let web = |logging: &str| {
            fs::write(dir.path().join("web.yaml"), format!("{WEB}{logging}")).unwrap();
            hash_of(&desired(dir.path()), "web")
        };
        // The default driver spelled out is no change: a container applied
        // before drivers existed is not replaced.
        let none = web("");
        assert!(web("  logging: {driver: file}\n")
            .changed_parts(&none)
            .is_empty());
        let small = web("  logging: {maxSize: 64Ki}\n");
        assert!(web("  logging: {driver: file, maxSize: 64Ki}\n")
            .changed_parts(&small)
            .is_empty());
        let discard = web("  logging: {driver: none}\n");
        assert_eq!(discard.changed_parts(&none), ["spec.logging"]);
        let program = web("  logging: {driver: binary, path: /bin/sh}\n");
        assert_eq!(program.changed_parts(&discard), ["spec.logging"]);
        let with_args = web("  logging: {driver: binary, path: /bin/sh, args: [-c, exit]}\n");
        assert_eq!(with_args.changed_parts(&program), ["spec.logging"]);
    }

    #[test]
    fn a_resolved_image_digest_is_part_of_the_hash() {
        struct Fixed(&'static str);
        impl ImageResolver for Fixed {
            fn manifest_digest(&self, _: &str) -> Option<String> {
                Some(self.0.to_string())
            }
        }
        let dir = tree();
        let set = load(&[dir.path().display().to_string()], LoadOptions::default()).unwrap();
        let tree = fs::canonicalize(dir.path()).unwrap();
        let a = build(&set, "t", &tree, &Fixed("sha256:a")).unwrap();
        let b = build(&set, "t", &tree, &Fixed("sha256:b")).unwrap();
        assert_eq!(
            hash_of(&b, "web").changed_parts(&hash_of(&a, "web")),
            ["image"]
        );
    }
}
