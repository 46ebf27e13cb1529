//! Finding manifest files and reading them: directories are walked
//! recursively (only `*.yaml`/`*.yml`, dot-files and dot-directories skipped),
//! `-` is standard input, and as root untrusted files are refused.

use std::collections::HashSet;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::diagnostic::Diagnostic;

/// Manifest files larger than this are refused: no real manifest set needs
/// more, and a runaway file should not stall a reconciler.
pub const MAX_FILE_BYTES: u64 = 4 << 20;

pub const STDIN_NAME: &str = "<stdin>";

/// How to treat the files found.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    /// Refuse files and directories that are not owned by root or that others
    /// can write (on by default when berth runs as root).
    pub require_trusted: bool,
}

impl LoadOptions {
    /// Trust is required when running as root, unless the user opted out.
    pub fn for_current_user(allow_untrusted: bool) -> Self {
        LoadOptions {
            require_trusted: !allow_untrusted && nix_euid_is_root(),
        }
    }
}

fn nix_euid_is_root() -> bool {
    // Reading our own effective uid from procfs keeps this module free of unsafe code.
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// A manifest file's text and where it came from.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The name shown in messages: the path as the user gave it, joined with
    /// the sub-path inside a directory, or `<stdin>`.
    pub display: String,
    /// The directory relative paths inside the manifest resolve against.
    pub base_dir: PathBuf,
    pub text: String,
}

/// Reads every manifest file named by `paths`. Problems with one file do not
/// stop the others from being read.
pub fn read_sources(paths: &[String], options: LoadOptions) -> (Vec<SourceFile>, Vec<Diagnostic>) {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    let mut visited_dirs = HashSet::new();
    for path in paths {
        if path == "-" {
            match read_stdin() {
                Ok(text) => files.push(SourceFile {
                    display: STDIN_NAME.into(),
                    base_dir: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
                    text,
                }),
                Err(message) => problems.push(Diagnostic::for_file(STDIN_NAME, message)),
            }
            continue;
        }
        collect(
            Path::new(path),
            true,
            options,
            &mut visited_dirs,
            &mut files,
            &mut problems,
        );
    }
    (files, problems)
}

fn collect(
    path: &Path,
    named_by_user: bool,
    options: LoadOptions,
    visited_dirs: &mut HashSet<(u64, u64)>,
    files: &mut Vec<SourceFile>,
    problems: &mut Vec<Diagnostic>,
) {
    let display = path.display().to_string();
    let metadata = match fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(error) => {
            problems.push(Diagnostic::for_file(
                display,
                format!("cannot read: {error}"),
            ));
            return;
        }
    };
    if options.require_trusted {
        if let Err(message) = check_trusted(&metadata, metadata.is_dir()) {
            problems.push(Diagnostic::for_file(display, message));
            return;
        }
    }
    if metadata.is_dir() {
        if !visited_dirs.insert((metadata.dev(), metadata.ino())) {
            return; // a symlink loop or a directory named twice
        }
        let mut entries = match fs::read_dir(path) {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .collect::<Vec<_>>(),
            Err(error) => {
                problems.push(Diagnostic::for_file(
                    display,
                    format!("cannot list directory: {error}"),
                ));
                return;
            }
        };
        entries.sort();
        for entry in entries {
            let name = entry
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name.starts_with('.') {
                continue;
            }
            let is_dir = fs::metadata(&entry).map(|m| m.is_dir()).unwrap_or(false);
            if is_dir || is_manifest_name(&name) {
                collect(&entry, false, options, visited_dirs, files, problems);
            }
        }
        return;
    }
    if !named_by_user && !is_manifest_name(&display) {
        return;
    }
    match read_file(path, &metadata) {
        Ok(text) => files.push(SourceFile {
            display,
            base_dir: absolute_parent(path),
            text,
        }),
        Err(message) => problems.push(Diagnostic::for_file(display, message)),
    }
}

fn is_manifest_name(name: &str) -> bool {
    name.ends_with(".yaml") || name.ends_with(".yml")
}

fn absolute_parent(path: &Path) -> PathBuf {
    let absolute = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    absolute
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf)
}

/// A manifest can ask for privileged containers and host mounts, so as root
/// only root-owned files that nobody else can write are read.
fn check_trusted(metadata: &fs::Metadata, is_dir: bool) -> Result<(), String> {
    let what = if is_dir { "directory" } else { "file" };
    let mode = metadata.permissions().mode() & 0o7777;
    let advice = "a manifest can ask for privileged containers and host mounts; fix the ownership and permissions or pass --allow-untrusted-manifests";
    if metadata.uid() != 0 {
        return Err(format!(
            "refusing untrusted manifest {what}: owned by uid {}, not root ({advice})",
            metadata.uid()
        ));
    }
    let sticky_dir = is_dir && mode & 0o1000 != 0;
    if mode & 0o022 != 0 && !sticky_dir {
        let who = if mode & 0o002 != 0 { "world" } else { "group" };
        return Err(format!(
            "refusing untrusted manifest {what}: it is {who}-writable (mode {mode:04o}) ({advice})"
        ));
    }
    Ok(())
}

fn read_file(path: &Path, metadata: &fs::Metadata) -> Result<String, String> {
    if !metadata.is_file() {
        return Err("not a regular file".into());
    }
    if metadata.len() > MAX_FILE_BYTES {
        return Err(too_large(metadata.len()));
    }
    let bytes = fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    decode(bytes)
}

fn read_stdin() -> Result<String, String> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read standard input: {e}"))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large(bytes.len() as u64));
    }
    decode(bytes)
}

fn too_large(len: u64) -> String {
    format!(
        "file is {:.1} MiB; manifest files are limited to {} MiB (split the set into several files)",
        len as f64 / f64::from(1 << 20),
        MAX_FILE_BYTES >> 20
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
    fn a_missing_path_is_a_problem_not_a_panic() {
        let (files, problems) =
            read_sources(&["/nonexistent/berth".into()], LoadOptions::default());
        assert!(files.is_empty());
        assert!(problems[0].message.contains("cannot read"), "{problems:?}");
    }

    #[test]
    fn trust_rules_refuse_writable_or_foreign_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.yaml");
        fs::write(&file, "a: 1").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o666)).unwrap();
        let metadata = fs::metadata(&file).unwrap();
        let verdict = check_trusted(&metadata, false);
        if metadata.uid() == 0 {
            assert!(verdict.unwrap_err().contains("world-writable"));
        } else {
            assert!(verdict.unwrap_err().contains("not root"));
        }
    }
}
