//! Checks of a manifest set beyond the schema: names, references, cycles,
//! paths, addresses and ports. Each check reports every problem it finds.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::diagnostic::{did_you_mean, Diagnostic, PathSegment};
use super::load::UNTRUSTED_ESCAPE;
use super::net::Cidr;
use super::net::{DEFAULT_NETWORK, DEFAULT_SUBNET};
use super::trust::{check_path, Resolver, TrustPolicy};
use super::types::*;
use super::vocabulary::{is_signal, CAPABILITIES};
use super::{hosts, BrokenObject, Located};
use crate::manifest::reference::ImageSource;

/// Builds a field path: `path!["spec", "ports", 1]`.
macro_rules! path {
    ($($segment:expr),* $(,)?) => {
        Vec::<PathSegment>::from([$(PathSegment::from($segment)),*])
    };
}

impl From<&str> for PathSegment {
    fn from(key: &str) -> Self {
        PathSegment::Key(key.to_string())
    }
}

impl From<usize> for PathSegment {
    fn from(index: usize) -> Self {
        PathSegment::Index(index)
    }
}

fn extend(base: &[PathSegment], more: Vec<PathSegment>) -> Vec<PathSegment> {
    let mut p = base.to_vec();
    p.extend(more);
    p
}

/// An object of the set left out of the objects checked (another host runs
/// it): a reference to it is reported with `reason`, not as undefined.
#[derive(Debug, Clone)]
pub struct LeftOut {
    pub kind: Kind,
    pub name: String,
    /// The whole message for a reference to it, such as `Container "db"
    /// (db.yaml:3) does not select this host (...)`.
    pub reason: String,
}

/// Every problem in the set that the schema cannot see.
pub fn check_set(objects: &[Located], broken: &[BrokenObject]) -> Vec<Diagnostic> {
    check_with(objects, broken, &[])
}

/// The checks of [`check_set`] over the objects one host runs, the rest of
/// the (valid) set being `left_out`: what can fail here that passed for the
/// whole set is a reference to a left-out object.
pub fn check_host_set(objects: &[Located], left_out: &[LeftOut]) -> Vec<Diagnostic> {
    check_with(objects, &[], left_out)
}

fn check_with(
    objects: &[Located],
    broken: &[BrokenObject],
    left_out: &[LeftOut],
) -> Vec<Diagnostic> {
    let index = Index::new(objects, broken, left_out);
    let mut problems = Vec::new();
    check_duplicate_names(objects, &mut problems);
    for located in objects {
        problems.extend(hosts::selector_problems(located));
        match &located.object {
            Object::Container(manifest) => {
                check_workload(
                    located,
                    &manifest.spec,
                    &path!["spec"],
                    &index,
                    &mut problems,
                );
                check_restart(located, &manifest.spec.restart, &mut problems);
            }
            Object::Job(manifest) => {
                let template = manifest.spec.template.to_container_spec();
                check_workload(
                    located,
                    &template,
                    &path!["spec", "template"],
                    &index,
                    &mut problems,
                );
            }
            Object::Network(manifest) => check_network(located, &manifest.spec, &mut problems),
            Object::Volume(_) => {}
        }
    }
    check_host_ports(objects, &mut problems);
    check_network_overlaps(objects, &mut problems);
    check_dependency_cycles(objects, &index, &mut problems);
    problems
}

/// A workload's container spec and the field path it sits at: a
/// Container's `spec`, a Job's `spec.template`; None for other kinds.
fn workload_spec(located: &Located) -> Option<(ContainerSpec, Vec<PathSegment>)> {
    match &located.object {
        Object::Container(m) => Some((m.spec.clone(), path!["spec"])),
        Object::Job(m) => Some((
            m.spec.template.to_container_spec(),
            path!["spec", "template"],
        )),
        _ => None,
    }
}

/// The files a manifest set names on the host (env files, bind mount
/// sources, local images, seccomp profiles), each checked with every
/// directory above it as the manifests themselves are: whoever can change
/// one of them decides what a root-run container gets. Relative paths
/// resolve against the manifest's directory. A missing file passes here
/// (the directories above it were checked); its user reports it missing.
pub fn check_referenced_files(objects: &[Located], policy: TrustPolicy) -> Vec<Diagnostic> {
    let mut problems = Vec::new();
    for located in objects {
        let Some((spec, base)) = workload_spec(located) else {
            continue;
        };
        let mut refused: Vec<PathBuf> = Vec::new();
        for (field, what, path) in referenced_files(&spec, &located.base_dir) {
            if refused.iter().any(|r| path.starts_with(r)) {
                continue; // an image layout's index, once the layout was refused
            }
            match check_path(policy, &path) {
                Err(error) => {
                    refused.push(path.clone());
                    problems.push(located.problem(
                        &extend(&base, field),
                        format!(
                            "refusing untrusted {what} {}: {error}; {UNTRUSTED_ESCAPE}",
                            path.display()
                        ),
                    ));
                }
                Ok(found) if what == ROOTFS_DIR => {
                    if let Some(message) = rootfs_dir_problem(&path, found.as_ref()) {
                        problems.push(located.problem(&extend(&base, field), message));
                    }
                }
                Ok(_) => {}
            }
        }
    }
    problems
}

/// The local files a set names that do not exist: env files, bind mount
/// sources, image layouts and archives, `rootfs:` directories, seccomp
/// profiles. Not a problem of the manifests as text (a copy of a set may be
/// validated before its files are in place), so `validate` warns of them;
/// `apply` refuses them before it changes anything, as each would fail
/// halfway through.
pub fn check_missing_references(objects: &[Located]) -> Vec<Diagnostic> {
    let mut missing = Vec::new();
    // Many workloads name one image layout: look at each path once.
    let mut looked: std::collections::HashMap<PathBuf, bool> = std::collections::HashMap::new();
    for located in objects {
        let Some((spec, base)) = workload_spec(located) else {
            continue;
        };
        let mut absent: Vec<PathBuf> = Vec::new();
        for (field, what, path) in referenced_files(&spec, &located.base_dir) {
            if absent.iter().any(|a| path.starts_with(a)) {
                continue; // the index of a layout already reported missing
            }
            let is_absent = *looked
                .entry(path.clone())
                .or_insert_with(|| is_missing(&path));
            if is_absent {
                missing.push(located.problem(
                    &extend(&base, field),
                    format!("{what} {} does not exist", path.display()),
                ));
                absent.push(path);
            }
        }
    }
    missing
}

/// Whether nothing is at `path` (a dangling symlink counts as nothing); a
/// path that cannot be looked at (no permission) is left to its user.
fn is_missing(path: &Path) -> bool {
    matches!(std::fs::metadata(path), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
}

/// What [`referenced_files`] calls a `rootfs:DIR` image.
const ROOTFS_DIR: &str = "rootfs directory";

/// What is wrong with a trusted `rootfs:DIR` as found: it must exist and be
/// a directory (a symlink to one was followed, and its target checked).
fn rootfs_dir_problem(path: &Path, found: Option<&super::trust::Resolved>) -> Option<String> {
    match found {
        None => Some(format!("{ROOTFS_DIR} {} does not exist", path.display())),
        Some(resolved) if !resolved.metadata.is_dir() => Some(format!(
            "{ROOTFS_DIR} {} is not a directory",
            path.display()
        )),
        Some(_) => None,
    }
}

/// The binary log driver's program of every workload: it must exist, be an
/// executable regular file, and (with a policy) pass the trust rules, as
/// root runs it. Its path is absolute (`Logging::problems` refuses others).
pub fn check_log_programs(objects: &[Located], policy: Option<TrustPolicy>) -> Vec<Diagnostic> {
    let mut problems = Vec::new();
    for located in objects {
        let (logging, base) = match &located.object {
            Object::Container(m) => (m.spec.logging.as_ref(), path!["spec"]),
            Object::Job(m) => (m.spec.template.logging.as_ref(), path!["spec", "template"]),
            _ => continue,
        };
        let Some(logging) = logging.filter(|l| l.driver() == LogDriver::Binary) else {
            continue;
        };
        let Some(program) = logging.path.as_deref().filter(|p| p.starts_with('/')) else {
            continue;
        };
        if let Err(message) = check_log_program(policy, Path::new(program)) {
            problems.push(located.problem(&extend(&base, path!["logging", "path"]), message));
        }
    }
    problems
}

/// What is wrong with `path` as a log program, if anything (see
/// [`check_log_programs`]).
pub fn check_log_program(policy: Option<TrustPolicy>, path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let resolved = Resolver::new(policy).resolve(path).map_err(|error| {
        if error.is_not_found() {
            format!("log program {} does not exist", path.display())
        } else if policy.is_some() {
            format!(
                "refusing untrusted log program {}: {error}; {UNTRUSTED_ESCAPE}",
                path.display()
            )
        } else {
            format!("log program {}: {error}", path.display())
        }
    })?;
    if !resolved.metadata.is_file() {
        return Err(format!(
            "log program {} is not a regular file",
            path.display()
        ));
    }
    if resolved.metadata.permissions().mode() & 0o111 == 0 {
        return Err(format!("log program {} is not executable", path.display()));
    }
    Ok(())
}

/// (field, what it is, host path) of every host file `spec` names.
fn referenced_files(
    spec: &ContainerSpec,
    base_dir: &Path,
) -> Vec<(Vec<PathSegment>, &'static str, PathBuf)> {
    // `components` drops the `.` of `./site`, for messages.
    let join = |path: &Path| -> PathBuf { base_dir.join(path).components().collect() };
    let mut files = Vec::new();
    for (i, file) in spec.env_files.iter().enumerate() {
        if !file.is_empty() {
            files.push((path!["envFiles", i], "env file", join(Path::new(file))));
        }
    }
    for (i, mount) in spec.mounts.iter().enumerate() {
        match (mount.kind, mount.source.as_deref()) {
            (MountType::Bind, Some(source)) if !source.is_empty() => {
                files.push((
                    path!["mounts", i, "source"],
                    "bind mount source",
                    join(Path::new(source)),
                ));
            }
            _ => {}
        }
    }
    match ImageSource::parse(&spec.image) {
        Ok(ImageSource::OciLayout { path, .. }) => {
            let dir = join(&path);
            // The index is the one part of a layout that no digest verifies.
            let index = dir.join("index.json");
            files.push((path!["image"], "image layout", dir));
            files.push((path!["image"], "image index", index));
        }
        Ok(ImageSource::OciArchive { path, .. } | ImageSource::DockerArchive { path }) => {
            files.push((path!["image"], "image archive", join(&path)));
        }
        Ok(ImageSource::Rootfs { path }) => {
            files.push((path!["image"], ROOTFS_DIR, join(&path)));
        }
        Ok(ImageSource::Registry(_)) | Err(_) => {}
    }
    match spec.seccomp.as_deref() {
        None | Some("" | "default" | "unconfined") => {}
        Some(profile) => files.push((
            path!["seccomp"],
            "seccomp profile",
            join(Path::new(profile)),
        )),
    }
    files
}

/// Names of the set, per kind, for reference checks.
struct Index<'a> {
    networks: BTreeMap<&'a str, &'a NetworkSpec>,
    volumes: Vec<&'a str>,
    containers: BTreeMap<&'a str, &'a ContainerSpec>,
    jobs: BTreeMap<&'a str, &'a JobSpec>,
    /// Objects with schema problems: defined, but not checkable.
    broken: &'a [BrokenObject],
    /// Objects of the set that another host runs.
    left_out: &'a [LeftOut],
}

impl<'a> Index<'a> {
    fn new(objects: &'a [Located], broken: &'a [BrokenObject], left_out: &'a [LeftOut]) -> Self {
        let mut index = Index {
            networks: BTreeMap::new(),
            volumes: Vec::new(),
            containers: BTreeMap::new(),
            jobs: BTreeMap::new(),
            broken,
            left_out,
        };
        for located in objects {
            match &located.object {
                Object::Network(m) => {
                    index.networks.entry(&m.metadata.name).or_insert(&m.spec);
                }
                Object::Volume(m) => index.volumes.push(&m.metadata.name),
                Object::Container(m) => {
                    index.containers.entry(&m.metadata.name).or_insert(&m.spec);
                }
                Object::Job(m) => {
                    index.jobs.entry(&m.metadata.name).or_insert(&m.spec);
                }
            }
        }
        index
    }

    /// Whether a broken object of one of `kinds` has this name.
    fn is_broken(&self, kinds: &[Kind], name: &str) -> bool {
        self.broken
            .iter()
            .any(|b| b.name.as_deref() == Some(name) && b.kind.is_none_or(|k| kinds.contains(&k)))
    }

    /// Why a reference to `name`, an object of one of `kinds` that is not
    /// here, fails: left out of this host's objects, or not defined at all.
    fn missing(&self, kinds: &[Kind], what: &str, name: &str, known: Vec<&str>) -> String {
        match self
            .left_out
            .iter()
            .find(|l| l.name == name && kinds.contains(&l.kind))
        {
            Some(left_out) => left_out.reason.clone(),
            None => unknown_reference(what, name, known),
        }
    }

    /// The subnet of a network by name; the built-in default unless overridden.
    fn subnet_of(&self, network: &str) -> Option<Cidr> {
        match self.networks.get(network) {
            Some(spec) => spec.subnet,
            None if network == DEFAULT_NETWORK => DEFAULT_SUBNET.parse().ok(),
            None => None,
        }
    }

    fn network_names(&self) -> impl Iterator<Item = &str> {
        self.networks
            .keys()
            .copied()
            .chain(std::iter::once(DEFAULT_NETWORK))
    }

    fn workload_names(&self) -> impl Iterator<Item = &str> {
        self.containers.keys().chain(self.jobs.keys()).copied()
    }
}

fn check_duplicate_names(objects: &[Located], problems: &mut Vec<Diagnostic>) {
    let mut first_seen: HashMap<(Kind, &str), &Located> = HashMap::new();
    let name_path = path!["metadata", "name"];
    for located in objects {
        let key = (located.object.kind(), located.object.name());
        match first_seen.get(&key) {
            Some(first) => problems.push(located.problem(
                &name_path,
                format!(
                    "duplicate {} name {:?}: also defined at {}",
                    key.0,
                    key.1,
                    first.place(&name_path)
                ),
            )),
            None => {
                first_seen.insert(key, located);
            }
        }
    }
    for located in objects {
        if let Object::Job(job) = &located.object {
            if job.metadata.name.len() > MAX_JOB_NAME {
                problems.push(located.problem(
                    &name_path,
                    format!(
                        "a Job's name is at most {MAX_JOB_NAME} characters: its runs are containers named NAME-RUN-ATTEMPT, at most 63"
                    ),
                ));
            }
            if first_seen.contains_key(&(Kind::Container, job.metadata.name.as_str())) {
                problems.push(located.problem(
                    &name_path,
                    format!(
                        "a Container is also named {:?}: dependsOn could not tell them apart",
                        job.metadata.name
                    ),
                ));
            }
        }
    }
}

/// A Job's runs are containers `NAME-RUN-ATTEMPT`: room for two 7-digit numbers.
pub const MAX_JOB_NAME: usize = 47;

fn unknown_reference(kind: &str, name: &str, known: Vec<&str>) -> String {
    let mut message = format!("{kind} {name:?} is not defined in this manifest set");
    if let Some(suggestion) = did_you_mean(name, known.iter().copied()) {
        message.push_str(&format!(", did you mean {suggestion:?}?"));
    }
    message
}

/// Whether the spec names a command itself (a non-empty command or args).
fn gives_command(spec: &ContainerSpec) -> bool {
    let given = |c: &Option<Vec<String>>| c.as_ref().is_some_and(|c| !c.is_empty());
    given(&spec.command) || given(&spec.args)
}

/// The checks shared by Containers and Job templates.
fn check_workload(
    located: &Located,
    spec: &ContainerSpec,
    base: &[PathSegment],
    index: &Index<'_>,
    problems: &mut Vec<Diagnostic>,
) {
    let at = |more: Vec<PathSegment>| extend(base, more);
    // An empty image only comes from a document whose schema problems were already reported.
    if !spec.image.is_empty() {
        match ImageSource::parse(&spec.image) {
            Err(error) => problems.push(located.problem(&at(path!["image"]), error.to_string())),
            Ok(ImageSource::Rootfs { .. }) if !gives_command(spec) => problems.push(located.problem(
                &at(path!["image"]),
                "a rootfs: directory has no image config to take a command from: set command (or args)",
            )),
            Ok(_) => {}
        }
    }
    check_env(located, spec, base, problems);
    if let Some(dir) = &spec.working_dir {
        require_absolute(located, &at(path!["workingDir"]), dir, problems);
    }
    if let Some(user) = &spec.user {
        if let Err(message) = check_user(user) {
            problems.push(located.problem(&at(path!["user"]), message));
        }
    }
    if let Some(hostname) = &spec.hostname {
        if !is_hostname(hostname) {
            problems.push(located.problem(
                &at(path!["hostname"]),
                format!("{hostname:?} is not a valid hostname (labels of letters, digits and '-', at most 63 characters each)"),
            ));
        }
    }
    check_mounts(located, spec, base, index, problems);
    check_capabilities(located, spec, base, problems);
    for (i, device) in spec.devices.iter().enumerate() {
        if let Err(message) = check_device(device) {
            problems.push(located.problem(&at(path!["devices", i]), message));
        }
    }
    if let Some(signal) = &spec.stop_signal {
        if !is_signal(signal) {
            problems.push(located.problem(
                &at(path!["stopSignal"]),
                format!("{signal:?} is not a signal name such as SIGTERM, SIGINT or SIGQUIT"),
            ));
        }
    }
    if let Some(health) = &spec.healthcheck {
        check_healthcheck(located, health, &at(path!["healthcheck"]), problems);
    }
    if let Some(logging) = &spec.logging {
        for (field, message) in logging.problems() {
            problems.push(located.problem(&at(path!["logging", field]), message));
        }
    }
    check_networking(located, spec, base, index, problems);
    check_dependencies(located, spec, base, index, problems);
}

/// A health check names exactly one kind of check, with timings above
/// zero, and an HTTP probe only what can go into a request unchanged.
fn check_healthcheck(
    located: &Located,
    health: &Healthcheck,
    base: &[PathSegment],
    problems: &mut Vec<Diagnostic>,
) {
    let at = |more: Vec<PathSegment>| extend(base, more);
    match health.kinds().as_slice() {
        [_] => {}
        // One that is written but was dropped for a problem of its own
        // (reported already) is not missing.
        [] if !["exec", "http", "tcp"]
            .iter()
            .any(|kind| located.node.contains(&at(path![*kind]))) =>
        {
            problems.push(located.problem(
                base,
                "a healthcheck needs one of exec, http or tcp, and has none",
            ))
        }
        [] => {}
        several => problems.push(located.problem(
            base,
            format!(
                "a healthcheck has exactly one of exec, http or tcp; this one has {}",
                several.join(" and ")
            ),
        )),
    }
    if health.interval.is_some_and(|d| d.0.is_zero()) {
        problems.push(located.problem(
            &at(path!["interval"]),
            "the interval must be longer than 0s",
        ));
    }
    if health.timeout.is_some_and(|d| d.0.is_zero()) {
        problems.push(located.problem(&at(path!["timeout"]), "the timeout must be longer than 0s"));
    }
    if let Some(http) = &health.http {
        for (field, message) in http_probe_problems(http) {
            problems.push(located.problem(&at(field), message));
        }
    }
}

/// What is wrong with an HTTP probe, by field path below `http`: what
/// would not survive being written into a request line or a header.
fn http_probe_problems(http: &HttpProbe) -> Vec<(Vec<PathSegment>, String)> {
    let mut found = Vec::new();
    if http.scheme == ProbeScheme::Https {
        found.push((
            path!["http", "scheme"],
            "https probes are not supported (berth's shim has no TLS client): use http, or a tcp probe of the https port".to_string(),
        ));
    }
    let visible = |text: &str| text.bytes().all(|b| b.is_ascii_graphic());
    if !http.path.starts_with('/') || !visible(&http.path) {
        found.push((
            path!["http", "path"],
            format!(
                "{:?} is not a request path: it starts with / and holds no spaces or control characters",
                http.path
            ),
        ));
    }
    if let Some(host) = http.host.as_deref().filter(|h| h.is_empty() || !visible(h)) {
        found.push((
            path!["http", "host"],
            format!("{host:?} is not a Host header value: no spaces or control characters"),
        ));
    }
    for (name, value) in &http.headers {
        if !is_header_name(name) {
            found.push((
                path!["http", "headers", name.as_str()],
                format!("{name:?} is not a header name (letters, digits and !#$%&'*+-.^_`|~)"),
            ));
        } else if value.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
            found.push((
                path!["http", "headers", name.as_str()],
                format!("the value of {name} holds a control character (a line break would end the header)"),
            ));
        }
    }
    found
}

/// An HTTP field name: a non-empty token (RFC 9110, section 5.6.2).
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn check_env(
    located: &Located,
    spec: &ContainerSpec,
    base: &[PathSegment],
    problems: &mut Vec<Diagnostic>,
) {
    let bad_name = |name: &str| name.is_empty() || name.contains('=') || name.contains('\0');
    match &spec.env {
        Some(EnvVars::Map(map)) => {
            for name in map.keys().filter(|n| bad_name(n)) {
                problems.push(located.problem_at(
                    &extend(base, path!["env", name.as_str()]),
                    true,
                    format!("{name:?} is not a valid variable name (it must be non-empty and hold no '=')"),
                ));
            }
        }
        Some(EnvVars::List(list)) => {
            let mut seen: HashMap<&str, usize> = HashMap::new();
            for (i, var) in list.iter().enumerate() {
                let at = extend(base, path!["env", i, "name"]);
                if bad_name(&var.name) {
                    problems.push(located.problem(
                        &at,
                        format!("{:?} is not a valid variable name (it must be non-empty and hold no '=')", var.name),
                    ));
                } else if let Some(first) = seen.insert(&var.name, i) {
                    problems.push(located.problem(
                        &at,
                        format!(
                            "variable {:?} is set twice (also at env[{first}])",
                            var.name
                        ),
                    ));
                }
            }
        }
        None => {}
    }
    for (i, file) in spec.env_files.iter().enumerate() {
        if file.is_empty() {
            problems
                .push(located.problem(&extend(base, path!["envFiles", i]), "the path is empty"));
        }
    }
}

fn require_absolute(
    located: &Located,
    at: &[PathSegment],
    path: &str,
    problems: &mut Vec<Diagnostic>,
) {
    if !path.starts_with('/') {
        problems.push(located.problem(
            at,
            format!("{path:?} must be an absolute path inside the container"),
        ));
    } else if path.split('/').any(|c| c == "..") {
        problems.push(located.problem(at, format!("{path:?} must not contain '..'")));
    }
}

fn check_user(user: &str) -> Result<(), String> {
    let (who, group) = match user.split_once(':') {
        Some((who, group)) => (who, Some(group)),
        None => (user, None),
    };
    for (part, what) in std::iter::once((who, "user")).chain(group.map(|g| (g, "group"))) {
        if part.is_empty() {
            return Err(format!(
                "{user:?}: the {what} is empty (expected uid[:gid] or name[:group])"
            ));
        }
        if part.bytes().all(|b| b.is_ascii_digit()) {
            if part.parse::<u32>().is_err() {
                return Err(format!(
                    "{user:?}: {what} id {part} does not fit in 32 bits"
                ));
            }
        } else if !is_account_name(part) {
            return Err(format!("{user:?}: {part:?} is not a valid {what} name"));
        }
    }
    Ok(())
}

fn is_account_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && name.len() <= 32
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '$'))
}

pub fn is_dns_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
}

fn is_hostname(name: &str) -> bool {
    name.len() <= 253 && name.split('.').all(is_dns_label)
}

fn check_mounts(
    located: &Located,
    spec: &ContainerSpec,
    base: &[PathSegment],
    index: &Index<'_>,
    problems: &mut Vec<Diagnostic>,
) {
    let mut targets: HashMap<&str, usize> = HashMap::new();
    for (i, mount) in spec.mounts.iter().enumerate() {
        let at = |field: &str| extend(base, path!["mounts", i, field]);
        require_absolute(located, &at("target"), &mount.target, problems);
        if let Some(first) = targets.insert(mount.target.trim_end_matches('/'), i) {
            problems.push(located.problem(
                &at("target"),
                format!(
                    "{:?} is already the target of mounts[{first}]",
                    mount.target
                ),
            ));
        }
        match (mount.kind, mount.source.as_deref()) {
            (MountType::Bind, None | Some("")) => {
                problems.push(located.problem(
                    &extend(base, path!["mounts", i]),
                    "a bind mount needs a source (a host path)",
                ));
            }
            (MountType::Volume, None | Some("")) => {
                problems.push(located.problem(
                    &extend(base, path!["mounts", i]),
                    "a volume mount needs a source (a Volume's name)",
                ));
            }
            (MountType::Volume, Some(name))
                if !index.volumes.contains(&name) && !index.is_broken(&[Kind::Volume], name) =>
            {
                problems.push(located.problem(
                    &at("source"),
                    index.missing(&[Kind::Volume], "Volume", name, index.volumes.clone()),
                ));
            }
            (MountType::Tmpfs, Some(_)) => {
                problems.push(located.problem(&at("source"), "a tmpfs mount takes no source"));
            }
            _ => {}
        }
    }
}

fn check_capabilities(
    located: &Located,
    spec: &ContainerSpec,
    base: &[PathSegment],
    problems: &mut Vec<Diagnostic>,
) {
    let Some(capabilities) = &spec.capabilities else {
        return;
    };
    for (field, list) in [("add", &capabilities.add), ("drop", &capabilities.drop)] {
        for (i, name) in list.iter().enumerate() {
            let upper = name.to_ascii_uppercase();
            let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
            if bare == "ALL" || CAPABILITIES.contains(&bare) {
                continue;
            }
            let mut message = format!("{name:?} is not a Linux capability");
            if let Some(suggestion) = did_you_mean(bare, CAPABILITIES.iter().copied()) {
                message.push_str(&format!(", did you mean {suggestion:?}?"));
            }
            problems.push(located.problem(&extend(base, path!["capabilities", field, i]), message));
        }
    }
}

fn check_device(device: &Device) -> Result<(), String> {
    let (host, container, permissions) = match device {
        Device::Short(text) => {
            let mut parts = text.splitn(3, ':');
            let host = parts.next().unwrap_or_default();
            (
                host.to_string(),
                parts.next().map(str::to_string),
                parts.next().map(str::to_string),
            )
        }
        Device::Long(spec) => (
            spec.path.clone(),
            spec.container_path.clone(),
            spec.permissions.clone(),
        ),
    };
    if !host.starts_with("/dev/") {
        return Err(format!("{host:?} is not a device path under /dev"));
    }
    if let Some(container) = container.filter(|c| !c.starts_with('/')) {
        return Err(format!("the container path {container:?} must be absolute"));
    }
    if let Some(permissions) = permissions {
        if permissions.is_empty() || !permissions.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
            return Err(format!(
                "permissions {permissions:?} must be made of r, w and m"
            ));
        }
    }
    Ok(())
}

fn check_networking(
    located: &Located,
    spec: &ContainerSpec,
    base: &[PathSegment],
    index: &Index<'_>,
    problems: &mut Vec<Diagnostic>,
) {
    let mode = spec.network_mode;
    if mode != NetworkMode::Bridge {
        let mode_name = if mode == NetworkMode::Host {
            "host"
        } else {
            "none"
        };
        if !spec.networks.is_empty() {
            problems.push(located.problem(
                &extend(base, path!["networks"]),
                format!("networks cannot be joined with networkMode {mode_name}"),
            ));
        }
        if !spec.ports.is_empty() {
            problems.push(located.problem(
                &extend(base, path!["ports"]),
                format!("ports are published only in bridge mode (with networkMode {mode_name} there is nothing to map)"),
            ));
        }
    }
    let mut joined: HashMap<&str, usize> = HashMap::new();
    for (i, attachment) in spec.networks.iter().enumerate() {
        let name = attachment.name();
        let name_path = match attachment {
            NetworkAttachment::Name(_) => extend(base, path!["networks", i]),
            NetworkAttachment::Detailed(_) => extend(base, path!["networks", i, "name"]),
        };
        if let Some(first) = joined.insert(name, i) {
            problems.push(located.problem(
                &name_path,
                format!("network {name:?} is already joined at networks[{first}]"),
            ));
        }
        if index.is_broken(&[Kind::Network], name) {
            continue;
        }
        if !index.networks.contains_key(name) && name != DEFAULT_NETWORK {
            problems.push(located.problem(
                &name_path,
                index.missing(
                    &[Kind::Network],
                    "Network",
                    name,
                    index.network_names().collect(),
                ),
            ));
            continue;
        }
        if let NetworkAttachment::Detailed(detail) = attachment {
            if let Some(ip) = detail.ip {
                if let Err(message) = check_static_ip(ip, name, index) {
                    problems
                        .push(located.problem(&extend(base, path!["networks", i, "ip"]), message));
                }
            }
            for (j, alias) in detail.aliases.iter().enumerate() {
                if !is_hostname(alias) {
                    problems.push(located.problem(
                        &extend(base, path!["networks", i, "aliases", j]),
                        format!("{alias:?} is not a valid host name"),
                    ));
                }
            }
        }
    }
    let mut published: HashMap<(u16, Protocol), usize> = HashMap::new();
    for (i, port) in spec.ports.iter().enumerate() {
        if let Some(first) = published.insert((port.container_port, port.protocol), i) {
            problems.push(located.problem(
                &extend(base, path!["ports", i, "containerPort"]),
                format!(
                    "container port {} is already published at ports[{first}]",
                    port.container_port
                ),
            ));
        }
    }
}

fn check_static_ip(ip: IpAddr, network: &str, index: &Index<'_>) -> Result<(), String> {
    let Some(subnet) = index.subnet_of(network) else {
        return Err(format!(
            "network {network:?} has no subnet, so a static IP cannot be checked or reserved; give the Network a subnet"
        ));
    };
    if !subnet.contains(ip) {
        return Err(format!(
            "{ip} is outside network {network:?}'s subnet {subnet}"
        ));
    }
    if subnet.is_network_address(ip) || subnet.is_broadcast_address(ip) {
        return Err(format!(
            "{ip} is the network or broadcast address of {subnet}"
        ));
    }
    let gateway = index.networks.get(network).and_then(|spec| spec.gateway);
    if gateway == Some(ip) {
        return Err(format!("{ip} is network {network:?}'s gateway"));
    }
    Ok(())
}

fn check_dependencies(
    located: &Located,
    spec: &ContainerSpec,
    base: &[PathSegment],
    index: &Index<'_>,
    problems: &mut Vec<Diagnostic>,
) {
    for (i, dependency) in spec.depends_on.iter().enumerate() {
        let name = dependency.name();
        let at = match dependency {
            Dependency::Name(_) => extend(base, path!["dependsOn", i]),
            Dependency::Detailed(_) => extend(base, path!["dependsOn", i, "name"]),
        };
        if name == located.object.name() && located.object.kind() != Kind::Network {
            problems.push(located.problem(&at, "an object cannot depend on itself"));
            continue;
        }
        let container = index.containers.get(name);
        let job = index.jobs.get(name);
        if container.is_none() && job.is_none() {
            if index.is_broken(&[Kind::Container, Kind::Job], name) {
                continue;
            }
            problems.push(located.problem(
                &at,
                index.missing(
                    &[Kind::Container, Kind::Job],
                    "Container or Job",
                    name,
                    index.workload_names().collect(),
                ),
            ));
            continue;
        }
        let condition_path = extend(base, path!["dependsOn", i, "condition"]);
        match dependency.condition() {
            DependencyCondition::Healthy => {
                let has_check = container.is_some_and(|c| c.healthcheck.is_some())
                    || job.is_some_and(|j| j.template.healthcheck.is_some());
                if !has_check {
                    problems.push(located.problem(
                        &condition_path,
                        format!(
                            "condition healthy needs a healthcheck on {name:?}, which has none"
                        ),
                    ));
                }
            }
            DependencyCondition::Completed => {
                if let Some(c) = container {
                    if matches!(
                        c.restart.policy,
                        RestartPolicy::Always | RestartPolicy::UnlessStopped
                    ) {
                        problems.push(located.problem(
                            &condition_path,
                            format!("condition completed can never be met: {name:?} restarts always; make it a Job or use restart policy on-failure or never"),
                        ));
                    }
                }
            }
            DependencyCondition::Started => {}
        }
    }
}

fn check_restart(located: &Located, restart: &RestartSpec, problems: &mut Vec<Diagnostic>) {
    if restart.max_retries.is_some() && restart.policy != RestartPolicy::OnFailure {
        problems.push(located.problem(
            &path!["spec", "restart", "maxRetries"],
            "maxRetries applies only to policy on-failure",
        ));
    }
    if let Some(backoff) = &restart.backoff {
        if let (Some(initial), Some(max)) = (backoff.initial, backoff.max) {
            if initial > max {
                problems.push(located.problem(
                    &path!["spec", "restart", "backoff", "initial"],
                    format!("the initial delay {initial} is longer than the max {max}"),
                ));
            }
        }
    }
}

fn check_network(located: &Located, spec: &NetworkSpec, problems: &mut Vec<Diagnostic>) {
    let at = |field: &str| path!["spec", field];
    if let Some((range, what)) = spec.subnet.and_then(|subnet| subnet.special_use()) {
        problems.push(located.problem(
            &at("subnet"),
            format!(
                "{} overlaps {range}, the {what} range; a container network needs addresses of its own (a private range such as 10.231.0.0/24)",
                spec.subnet.map(|s| s.to_string()).unwrap_or_default()
            ),
        ));
    }
    if let Some(gateway) = spec.gateway {
        match spec.subnet {
            None => problems.push(located.problem(&at("gateway"), "a gateway needs a subnet")),
            Some(subnet) if !subnet.contains(gateway) => problems.push(located.problem(
                &at("gateway"),
                format!("{gateway} is outside the subnet {subnet}"),
            )),
            Some(subnet)
                if subnet.is_network_address(gateway) || subnet.is_broadcast_address(gateway) =>
            {
                problems.push(located.problem(
                    &at("gateway"),
                    format!("{gateway} is the network or broadcast address of {subnet}"),
                ))
            }
            _ => {}
        }
    }
    if let Some(range) = spec.ip_range {
        match spec.subnet {
            None => problems.push(located.problem(&at("ipRange"), "an ipRange needs a subnet")),
            Some(subnet) if !subnet.contains_net(range) => problems.push(located.problem(
                &at("ipRange"),
                format!("{range} is not inside the subnet {subnet}"),
            )),
            _ => {}
        }
    }
    match spec.driver {
        NetworkDriver::Bridge => {
            if spec.parent.is_some() {
                problems.push(located.problem(
                    &at("parent"),
                    "parent applies only to the macvlan and ipvlan drivers",
                ));
            }
            if let Some(bridge) = &spec.bridge {
                if !is_interface_name(bridge) {
                    problems.push(located.problem(
                        &at("bridge"),
                        format!("{bridge:?} is not a valid interface name (1-15 characters, no '/', ':' or spaces)"),
                    ));
                }
            }
        }
        NetworkDriver::Macvlan | NetworkDriver::Ipvlan => {
            if spec.parent.is_none() && spec.plugins.is_none() {
                problems.push(located.problem(
                    &at("driver"),
                    "the macvlan and ipvlan drivers need a parent interface",
                ));
            }
            if spec.bridge.is_some() {
                problems.push(
                    located.problem(&at("bridge"), "bridge applies only to the bridge driver"),
                );
            }
        }
    }
    if let Some(plugins) = &spec.plugins {
        if plugins.is_empty() {
            problems.push(located.problem(&at("plugins"), "the plugin list is empty"));
        }
        for (i, plugin) in plugins.iter().enumerate() {
            let plugin_type = plugin
                .get("type")
                .and_then(|t| t.as_str())
                .unwrap_or_default();
            if plugin_type.is_empty() {
                problems.push(located.problem(
                    &path!["spec", "plugins", i],
                    "every CNI plugin needs a \"type\" (the plugin's binary name)",
                ));
            }
        }
    }
}

fn is_interface_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace())
}

/// Two containers publishing the same host port (same protocol, overlapping
/// host address) cannot both start, unless no host runs both (their
/// `metadata.hosts` never select one host).
fn check_host_ports(objects: &[Located], problems: &mut Vec<Diagnostic>) {
    /// A host port published earlier in the set, and where.
    struct Published<'a> {
        port: u16,
        protocol: Protocol,
        host_ip: Option<IpAddr>,
        place: String,
        hosts: Option<&'a HostSelector>,
    }
    let mut seen: Vec<Published<'_>> = Vec::new();
    for located in objects {
        let hosts = located.object.metadata().hosts.as_ref();
        let (ports, base) = match &located.object {
            Object::Container(m) => (&m.spec.ports, path!["spec"]),
            Object::Job(m) => (&m.spec.template.ports, path!["spec", "template"]),
            _ => continue,
        };
        for (i, port) in ports.iter().enumerate() {
            let host_port = port.effective_host_port();
            let at = extend(&base, path!["ports", i]);
            let clash = seen.iter().find(|earlier| {
                earlier.port == host_port
                    && earlier.protocol == port.protocol
                    && (earlier.host_ip.is_none()
                        || port.host_ip.is_none()
                        || earlier.host_ip == port.host_ip)
                    && hosts::may_share_a_host(hosts, earlier.hosts)
            });
            if let Some(earlier) = clash {
                problems.push(located.problem(
                    &at,
                    format!(
                        "host port {host_port}/{} is already published at {}",
                        if port.protocol == Protocol::Tcp {
                            "tcp"
                        } else {
                            "udp"
                        },
                        earlier.place
                    ),
                ));
            }
            seen.push(Published {
                port: host_port,
                protocol: port.protocol,
                host_ip: port.host_ip,
                place: located.place(&at),
                hosts,
            });
        }
    }
}

/// Overlapping subnets or a shared bridge would make two networks fight
/// over routes, unless no host runs both.
fn check_network_overlaps(objects: &[Located], problems: &mut Vec<Diagnostic>) {
    let networks: Vec<(&Located, &NetworkManifest)> = objects
        .iter()
        .filter_map(|l| match &l.object {
            Object::Network(m) => Some((l, m)),
            _ => None,
        })
        .collect();
    for (i, (located, manifest)) in networks.iter().enumerate() {
        for (other_located, other) in &networks[..i] {
            if other.metadata.name == manifest.metadata.name {
                continue; // reported as a duplicate name
            }
            if !hosts::may_share_a_host(
                manifest.metadata.hosts.as_ref(),
                other.metadata.hosts.as_ref(),
            ) {
                continue;
            }
            if let (Some(a), Some(b)) = (manifest.spec.subnet, other.spec.subnet) {
                if a.contains_net(b) || b.contains_net(a) {
                    problems.push(located.problem(
                        &path!["spec", "subnet"],
                        format!(
                            "subnet {a} overlaps network {:?}'s subnet {b} (at {})",
                            other.metadata.name,
                            other_located.place(&path!["spec", "subnet"])
                        ),
                    ));
                }
            }
            if manifest.spec.bridge.is_some() && manifest.spec.bridge == other.spec.bridge {
                problems.push(located.problem(
                    &path!["spec", "bridge"],
                    format!(
                        "bridge {:?} is also used by network {:?}",
                        manifest.spec.bridge.as_deref().unwrap_or_default(),
                        other.metadata.name
                    ),
                ));
            }
        }
    }
}

/// Reports each dependency cycle once, at the dependsOn entry that closes it.
fn check_dependency_cycles(objects: &[Located], index: &Index<'_>, problems: &mut Vec<Diagnostic>) {
    let mut edges: BTreeMap<&str, Vec<(usize, &str)>> = BTreeMap::new();
    let mut owners: BTreeMap<&str, (&Located, Vec<PathSegment>)> = BTreeMap::new();
    for located in objects {
        let (deps, base) = match &located.object {
            Object::Container(m) => (&m.spec.depends_on, path!["spec"]),
            Object::Job(m) => (&m.spec.template.depends_on, path!["spec", "template"]),
            _ => continue,
        };
        let name = located.object.name();
        owners.entry(name).or_insert((located, base));
        let targets = deps
            .iter()
            .enumerate()
            .map(|(i, d)| (i, d.name()))
            .filter(|(_, target)| {
                *target != name
                    && (index.containers.contains_key(target) || index.jobs.contains_key(target))
            });
        edges.entry(name).or_default().extend(targets);
    }
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    let mut marks: HashMap<&str, Mark> = HashMap::new();
    for start in edges.keys().copied().collect::<Vec<_>>() {
        if marks.contains_key(start) {
            continue;
        }
        // Iterative depth-first search; `stack` holds (node, next edge index).
        let mut stack: Vec<(&str, usize)> = vec![(start, 0)];
        marks.insert(start, Mark::Visiting);
        while let Some((node, next)) = stack.last().copied() {
            let outgoing = edges.get(node).map(Vec::as_slice).unwrap_or_default();
            let Some(&(dep_index, target)) = outgoing.get(next) else {
                marks.insert(node, Mark::Done);
                stack.pop();
                continue;
            };
            if let Some(top) = stack.last_mut() {
                top.1 += 1;
            }
            match marks.get(target) {
                None => {
                    marks.insert(target, Mark::Visiting);
                    stack.push((target, 0));
                }
                Some(Mark::Visiting) => {
                    let from = stack.iter().position(|(n, _)| *n == target).unwrap_or(0);
                    let mut cycle: Vec<&str> = stack[from..].iter().map(|(n, _)| *n).collect();
                    cycle.push(target);
                    if let Some((located, base)) = owners.get(node) {
                        problems.push(located.problem(
                            &extend(base, path!["dependsOn", dep_index]),
                            format!("dependency cycle: {}", cycle.join(" -> ")),
                        ));
                    }
                }
                Some(Mark::Done) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_accept_ids_and_names_and_refuse_wide_ids() {
        assert!(check_user("1000").is_ok());
        assert!(check_user("1000:1000").is_ok());
        assert!(check_user("app:staff").is_ok());
        assert!(check_user("4294967296").unwrap_err().contains("32 bits"));
        assert!(check_user("1000:").is_err());
        assert!(check_user("bad name").is_err());
    }

    #[test]
    fn signals_accept_names_with_or_without_sig_and_numbers() {
        for ok in ["SIGTERM", "term", "QUIT", "9", "SIGRTMIN+3"] {
            assert!(is_signal(ok), "{ok}");
        }
        for bad in ["SIGNOPE", "0", "99", ""] {
            assert!(!is_signal(bad), "{bad}");
        }
    }

    /// The problems `load_sources` finds in one Container whose spec ends
    /// with `healthcheck` (indented by two spaces), as `LINE:COL: PATH: message`.
    fn healthcheck_problems(healthcheck: &str) -> Vec<String> {
        let source = crate::manifest::SourceFile {
            display: "web.yaml".into(),
            base_dir: PathBuf::from("/"),
            text: format!(
                "apiVersion: berth/v1\nkind: Container\nmetadata:\n  name: web\nspec:\n  image: busybox\n  healthcheck:\n{healthcheck}"
            ),
        };
        match crate::manifest::load_sources(&[source], Vec::new(), "web.yaml", Default::default()) {
            Ok(_) => Vec::new(),
            Err(problems) => problems
                .iter()
                .map(|p| p.to_string().trim_start_matches("web.yaml:").to_string())
                .collect(),
        }
    }

    #[test]
    fn a_healthcheck_takes_exactly_one_of_exec_http_or_tcp() {
        assert!(healthcheck_problems("    exec: [\"true\"]\n").is_empty());
        assert!(healthcheck_problems("    http: {path: /ok, port: 80}\n").is_empty());
        assert!(healthcheck_problems("    tcp: {port: 5432}\n").is_empty());
        assert_eq!(
            healthcheck_problems("    exec: [\"true\"]\n    tcp: {port: 80}\n"),
            ["8:5: spec.healthcheck: a healthcheck has exactly one of exec, http or tcp; this one has exec and tcp"]
        );
        assert_eq!(
            healthcheck_problems("    interval: 5s\n"),
            ["8:5: spec.healthcheck: a healthcheck needs one of exec, http or tcp, and has none"]
        );
    }

    #[test]
    fn an_http_probe_refuses_https_and_what_would_break_the_request() {
        let problems = healthcheck_problems(
            "    http:\n      path: \"/a b\"\n      port: 80\n      scheme: https\n      headers:\n        \"X Bad\": v\n        X-Ok: \"a\\r\\nInjected: 1\"\n",
        );
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(problems[0]
            .starts_with("9:13: spec.healthcheck.http.path: \"/a b\" is not a request path"));
        assert!(problems[1]
            .starts_with("11:15: spec.healthcheck.http.scheme: https probes are not supported"));
        assert!(problems[2].starts_with(
            "13:18: spec.healthcheck.http.headers.X Bad: \"X Bad\" is not a header name"
        ));
        assert!(problems[3].starts_with("14:15: spec.healthcheck.http.headers.X-Ok: the value of X-Ok holds a control character"));
    }

    #[test]
    fn probe_ports_start_at_1() {
        let problems = healthcheck_problems("    tcp: {port: 0}\n");
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert!(
            problems[0].contains("spec.healthcheck.tcp.port"),
            "{problems:#?}"
        );
    }

    #[test]
    fn devices_need_dev_paths_and_rwm_permissions() {
        assert!(check_device(&Device::Short("/dev/fuse".into())).is_ok());
        assert!(check_device(&Device::Short("/dev/sda:/dev/xvda:r".into())).is_ok());
        assert!(check_device(&Device::Short("/etc/passwd".into())).is_err());
        assert!(check_device(&Device::Short("/dev/sda:/dev/xvda:rx".into())).is_err());
    }
}
