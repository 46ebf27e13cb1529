//! Finding manifest files and reading them: directories are walked
//! recursively (only `*.yaml`/`*.yml`, dot-files and dot-directories skipped),
//! `-` is standard input, and as root untrusted files are refused.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::diagnostic::Diagnostic;
use super::trust::{DirChain, OpenError, Resolved, Resolver, TrustError, TrustPolicy};

/// Manifest files larger than this are refused: no real manifest set needs
/// more, and a runaway file should not stall a reconciler.
pub const MAX_FILE_BYTES: u64 = 4 << 20;

pub const STDIN_NAME: &str = "<stdin>";

/// What every refusal ends with.
pub const UNTRUSTED_ESCAPE: &str = "or pass --allow-untrusted-manifests";

/// How to treat the files found.
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    /// Who may own manifests, the files they name and every directory above
    /// them; `None` reads whatever is there. Required when berth runs as root.
    pub trust: Option<TrustPolicy>,
    /// The largest manifest file read (default [`MAX_FILE_BYTES`]).
    pub max_file_bytes: u64,
    /// Documents that passed the schema before, not checked again (see
    /// [`super::known_valid`]); `None` checks every one.
    pub known_valid: Option<&'static super::known_valid::KnownValid>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            trust: None,
            max_file_bytes: MAX_FILE_BYTES,
            known_valid: None,
        }
    }
}

impl LoadOptions {
    /// Trust is required when running as root, unless the user opted out;
    /// under sudo the invoking user (`SUDO_UID`) is trusted besides root.
    pub fn for_current_user(allow_untrusted: bool) -> Self {
        let sudo_uid = std::env::var("SUDO_UID").ok();
        Self::decide(
            allow_untrusted,
            nix::unistd::geteuid().is_root(),
            sudo_uid.as_deref(),
        )
    }

    /// [`for_current_user`](Self::for_current_user) with the process's
    /// root-ness and `SUDO_UID` passed in.
    pub fn decide(allow_untrusted: bool, running_as_root: bool, sudo_uid: Option<&str>) -> Self {
        LoadOptions {
            trust: (!allow_untrusted && running_as_root)
                .then(|| TrustPolicy::from_sudo_uid(sudo_uid)),
            ..LoadOptions::default()
        }
    }

    /// Requires files to pass `policy`.
    pub fn trusting(policy: TrustPolicy) -> Self {
        LoadOptions {
            trust: Some(policy),
            ..LoadOptions::default()
        }
    }

    pub fn require_trusted(&self) -> bool {
        self.trust.is_some()
    }
}

/// A manifest file's text and where it came from.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceFile {
    /// The name shown in messages: the path as the user gave it, joined with
    /// the sub-path inside a directory, or `<stdin>`.
    pub display: String,
    /// The directory relative paths inside the manifest resolve against (the
    /// physical directory that holds the file).
    pub base_dir: PathBuf,
    pub text: String,
}

/// Reads every manifest file named by `paths`. Problems with one file do not
/// stop the others from being read.
///
/// Each path is resolved from `/` one component at a time; with a trust
/// policy, every directory on the way and the file itself are checked on
/// their open descriptors and the file is read from the descriptor that was
/// checked (see [`super::trust`]). Inside a directory, a symlink is followed
/// only to a target that passes the same checks, and a symlink to a
/// directory that contains it (`/`, an ancestor, a directory being walked)
/// is an error naming the link.
pub fn read_sources(paths: &[String], options: LoadOptions) -> (Vec<SourceFile>, Vec<Diagnostic>) {
    let mut walk = Walk {
        resolver: Resolver::new(options.trust),
        max_file_bytes: options.max_file_bytes,
        visited_dirs: HashSet::new(),
        walking: Vec::new(),
        files: Vec::new(),
        problems: Vec::new(),
    };
    for path in paths {
        if path == "-" {
            match read_stdin(options.max_file_bytes) {
                Ok(text) => walk.files.push(SourceFile {
                    display: STDIN_NAME.into(),
                    base_dir: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
                    text,
                }),
                Err(message) => walk
                    .problems
                    .push(Diagnostic::for_file(STDIN_NAME, message)),
            }
            continue;
        }
        walk.named(path);
    }
    (walk.files, walk.problems)
}

struct Walk {
    resolver: Resolver,
    max_file_bytes: u64,
    /// Directories already walked: one named twice is read once.
    visited_dirs: HashSet<(u64, u64)>,
    /// The directories being walked now, outermost first.
    walking: Vec<(u64, u64)>,
    files: Vec<SourceFile>,
    problems: Vec<Diagnostic>,
}

impl Walk {
    /// A path the user named: symlinks on it are followed (their targets checked).
    fn named(&mut self, path: &str) {
        match self.resolver.resolve(Path::new(path)) {
            Ok(resolved) if resolved.metadata.is_dir() => {
                self.enter(Path::new(path), resolved);
            }
            Ok(resolved) => self.read(path.to_string(), &resolved),
            Err(error) => self.refuse(path, None, &error),
        }
    }

    fn enter(&mut self, display: &Path, resolved: Resolved) {
        let id = resolved.id();
        if !self.visited_dirs.insert(id) {
            return; // a directory named twice
        }
        let chain = match resolved.into_dir_chain() {
            Ok(chain) => chain,
            Err(error) => return self.refuse(&display.display().to_string(), None, &error),
        };
        self.walking.push(id);
        self.walk_dir(display, &chain);
        self.walking.pop();
    }

    fn walk_dir(&mut self, display: &Path, chain: &DirChain) {
        let names = match chain.list() {
            Ok(names) => names,
            Err(error) => {
                self.problems.push(Diagnostic::for_file(
                    display.display().to_string(),
                    format!("cannot list directory: {error}"),
                ));
                return;
            }
        };
        for name in names {
            let text = name.to_string_lossy();
            if text.starts_with('.') {
                continue;
            }
            let entry_display = display.join(&name);
            let shown = entry_display.display().to_string();
            let peek = match chain.peek(&name) {
                Ok(peek) => peek,
                Err(error) => {
                    self.problems
                        .push(Diagnostic::for_file(shown, format!("cannot read: {error}")));
                    continue;
                }
            };
            if !peek.leads_to_dir && !is_manifest_name(&text) {
                continue;
            }
            let link = peek.is_link.then(|| chain.link_target(&name)).flatten();
            let root = match self.resolver.root() {
                Ok(root) => root,
                Err(error) => return self.refuse(&shown, link.as_deref(), &error),
            };
            let resolved = match self
                .resolver
                .resolve_in(&root, chain.clone(), Path::new(&name))
            {
                Ok(resolved) => resolved,
                Err(error) => {
                    self.refuse(&shown, link.as_deref(), &error);
                    continue;
                }
            };
            if resolved.metadata.is_dir() {
                let id = resolved.id();
                if let Some(target) = &link {
                    if chain.contains(id) || self.walking.contains(&id) {
                        self.problems.push(Diagnostic::for_file(
                            shown,
                            format!(
                                "symlink to {} leads to {}, a directory that contains the link or is being walked: following it would loop (remove the link, or point it at a directory outside the manifest tree)",
                                target.display(),
                                resolved.path.display()
                            ),
                        ));
                        continue;
                    }
                }
                self.enter(&entry_display, resolved);
            } else if is_manifest_name(&text) {
                self.read(shown, &resolved);
            }
        }
    }

    fn read(&mut self, display: String, resolved: &Resolved) {
        let base_dir = resolved.parent.top().path.clone();
        let text = resolved
            .open_file(self.resolver.policy)
            .and_then(|file| file.read_bounded(self.max_file_bytes));
        match text {
            Ok(bytes) => match decode(bytes) {
                Ok(text) => self.files.push(SourceFile {
                    display,
                    base_dir,
                    text,
                }),
                Err(message) => self.problems.push(Diagnostic::for_file(display, message)),
            },
            Err(OpenError::Trust(error)) => self.refuse(&display, None, &error),
            Err(OpenError::TooLarge(len)) => self.problems.push(Diagnostic::for_file(
                display,
                too_large(len, self.max_file_bytes),
            )),
            Err(error) => self
                .problems
                .push(Diagnostic::for_file(display, error.to_string())),
        }
    }

    /// A problem resolving or opening `display` (reached through the symlink
    /// `link` when it is one).
    fn refuse(&mut self, display: &str, link: Option<&Path>, error: &TrustError) {
        let through = link
            .map(|target| format!("symlink to {}: ", target.display()))
            .unwrap_or_default();
        let message = match error {
            TrustError::Untrusted { .. } => {
                format!("refusing untrusted manifest: {through}{error}; {UNTRUSTED_ESCAPE}")
            }
            TrustError::TooManyLinks { .. } => format!("{through}{error}"),
            TrustError::Io { .. } => format!("cannot read: {through}{error}"),
        };
        self.problems.push(Diagnostic::for_file(display, message));
    }
}

fn is_manifest_name(name: &str) -> bool {
    name.ends_with(".yaml") || name.ends_with(".yml")
}

fn read_stdin(limit: u64) -> Result<String, String> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read standard input: {e}"))?;
    if bytes.len() as u64 > limit {
        return Err(too_large(bytes.len() as u64, limit));
    }
    decode(bytes)
}

fn too_large(len: u64, limit: u64) -> String {
    let limit_text = if limit % (1 << 20) == 0 {
        format!("{} MiB", limit >> 20)
    } else {
        format!("{limit} bytes")
    };
    format!(
        "file is {:.1} MiB; manifest files are limited to {limit_text} (split the set into \
         several files, or raise the bound with --max-manifest-size)",
        len as f64 / f64::from(1 << 20),
    )
}

/// Manifests are UTF-8 text; anything else gets a message that says where it stops being text.
fn decode(bytes: Vec<u8>) -> Result<String, String> {
    String::from_utf8(bytes).map_err(|error| {
        let valid = &error.as_bytes()[..error.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
        format!(
            "not a UTF-8 text file: invalid byte at offset {} (line {line}); is this a binary file?",
            valid.len()
        )
    })
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    #[test]
    fn binary_junk_is_named_as_not_text() {
        let message = decode(vec![b'a', b'\n', 0xff, 0xfe]).unwrap_err();
        assert!(message.contains("not a UTF-8 text file"), "{message}");
        assert!(message.contains("line 2"), "{message}");
    }

    #[test]
    fn walking_skips_dot_entries_and_other_extensions() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join(".git")).unwrap();
        fs::create_dir_all(root.join("..data")).unwrap();
        fs::create_dir_all(root.join("sub")).unwrap();
        fs::write(root.join(".git/x.yaml"), "a: 1").unwrap();
        fs::write(root.join("..data/y.yaml"), "a: 1").unwrap();
        fs::write(root.join(".hidden.yaml"), "a: 1").unwrap();
        fs::write(root.join("notes.txt"), "a: 1").unwrap();
        fs::write(root.join("a.yaml"), "a: 1").unwrap();
        fs::write(root.join("sub/b.yml"), "b: 1").unwrap();
        let (files, problems) = read_sources(&[root.display().to_string()], LoadOptions::default());
        assert!(problems.is_empty(), "{problems:?}");
        let names: Vec<String> = files
            .iter()
            .map(|f| {
                Path::new(&f.display)
                    .strip_prefix(root)
                    .unwrap()
                    .display()
                    .to_string()
            })
            .collect();
        assert_eq!(names, ["a.yaml", "sub/b.yml"]);
    }

    #[test]
    fn trust_is_required_as_root_unless_allowed_and_trusts_the_sudo_user() {
        assert!(!LoadOptions::decide(false, false, None).require_trusted());
        assert!(!LoadOptions::decide(true, true, Some("1000")).require_trusted());
        let root_only = LoadOptions::decide(false, true, None).trust.unwrap();
        assert!(root_only.trusts_owner(0) && !root_only.trusts_owner(1000));
        let sudo = LoadOptions::decide(false, true, Some("1000"))
            .trust
            .unwrap();
        assert!(sudo.trusts_owner(0) && sudo.trusts_owner(1000) && !sudo.trusts_owner(1001));
        let junk = LoadOptions::decide(false, true, Some("alice"))
            .trust
            .unwrap();
        assert_eq!(junk, TrustPolicy::ROOT_ONLY);
    }

    #[test]
    fn a_missing_path_is_a_problem_not_a_panic() {
        let (files, problems) =
            read_sources(&["/nonexistent/berth".into()], LoadOptions::default());
        assert!(files.is_empty());
        assert!(problems[0].message.contains("cannot read"), "{problems:?}");
    }
}
