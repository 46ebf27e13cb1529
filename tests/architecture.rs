//! The module map holds: arrows run down only (DESIGN.md, "Module map").
//!
//! Reads every source file under `src/`, finds which top-level modules it
//! names (`crate::x`, `use crate::{x, ..}`), and fails on each reference the
//! map forbids, naming the file and line. No root, no build of anything.

use std::fs;
use std::path::{Path, PathBuf};

/// (from, to, why): a module that must never name another.
const NEVER: &[(&str, &str, &str)] = &[
    ("manifest", "image", "the language knows no effects"),
    ("manifest", "snapshot", "the language knows no effects"),
    ("manifest", "runtime", "the language knows no effects"),
    ("manifest", "network", "the language knows no effects"),
    ("manifest", "engine", "the language knows no effects"),
    ("manifest", "reconcile", "the language knows no effects"),
    ("image", "reconcile", "subsystems do not call up"),
    ("snapshot", "reconcile", "subsystems do not call up"),
    ("runtime", "reconcile", "subsystems do not call up"),
    ("network", "reconcile", "subsystems do not call up"),
    ("image", "engine", "subsystems do not call up"),
    ("snapshot", "engine", "subsystems do not call up"),
    ("runtime", "engine", "subsystems do not call up"),
    ("network", "engine", "subsystems do not call up"),
    ("runtime", "image", "the engine composes them"),
    ("runtime", "snapshot", "the engine composes them"),
    ("runtime", "network", "the engine composes them"),
    ("network", "runtime", "the engine composes them"),
    ("network", "image", "the engine composes them"),
    ("network", "snapshot", "the engine composes them"),
    (
        "image",
        "snapshot",
        "unpacking is the engine's step after a pull",
    ),
    ("image", "runtime", "the engine composes them"),
    ("image", "network", "the engine composes them"),
    (
        "engine",
        "reconcile",
        "the engine knows nothing of the loop",
    ),
    ("engine", "cli", "no printing below the face"),
    ("reconcile", "cli", "no printing below the face"),
    ("state", "image", "the ground imports nothing above it"),
    ("state", "snapshot", "the ground imports nothing above it"),
    ("state", "runtime", "the ground imports nothing above it"),
    ("state", "network", "the ground imports nothing above it"),
    ("state", "engine", "the ground imports nothing above it"),
    ("state", "reconcile", "the ground imports nothing above it"),
    ("state", "manifest", "the ground imports nothing above it"),
    ("state", "watch", "the ground imports nothing above it"),
    ("state", "daemon", "the ground imports nothing above it"),
    ("manifest", "watch", "the language knows no effects"),
    ("manifest", "daemon", "the language knows no effects"),
    ("reconcile", "daemon", "the loop does not know who runs it"),
    ("reconcile", "watch", "the loop does not know who runs it"),
    ("engine", "daemon", "the engine knows nothing of the loop"),
    ("engine", "watch", "the engine knows nothing of the loop"),
    ("runtime", "daemon", "subsystems do not call up"),
    ("runtime", "watch", "subsystems do not call up"),
    (
        "watch",
        "daemon",
        "watching hands generations up; it runs nothing",
    ),
    (
        "watch",
        "reconcile",
        "watching hands generations up; it runs nothing",
    ),
    (
        "watch",
        "engine",
        "watching hands generations up; it runs nothing",
    ),
    ("daemon", "cli", "no printing below the face"),
    (
        "interop",
        "engine",
        "interop is pure: other tools' files and berth manifests in, the other side out",
    ),
    (
        "interop",
        "runtime",
        "interop is pure: other tools' files and berth manifests in, the other side out",
    ),
    (
        "interop",
        "network",
        "interop is pure: other tools' files and berth manifests in, the other side out",
    ),
    (
        "interop",
        "state",
        "interop is pure: other tools' files and berth manifests in, the other side out",
    ),
    (
        "interop",
        "image",
        "interop is pure: other tools' files and berth manifests in, the other side out",
    ),
    (
        "interop",
        "snapshot",
        "interop is pure: other tools' files and berth manifests in, the other side out",
    ),
    (
        "interop",
        "reconcile",
        "interop is pure: other tools' files and berth manifests in, the other side out",
    ),
    (
        "interop",
        "daemon",
        "interop is pure: other tools' files and berth manifests in, the other side out",
    ),
    (
        "interop",
        "watch",
        "interop is pure: other tools' files and berth manifests in, the other side out",
    ),
    ("interop", "cli", "no printing below the face"),
    (
        "manifest",
        "interop",
        "the language knows nothing of other tools",
    ),
    ("state", "interop", "the ground imports nothing above it"),
    ("engine", "interop", "the engine runs berth manifests only"),
    ("reconcile", "interop", "the loop runs berth manifests only"),
];

/// Modules that may write to the terminal: the face only.
const MAY_PRINT: &[&str] = &["cli", "main", "bin"];

fn source_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read src dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            source_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file under `src/` belongs to.
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).expect("file under src");
    let first = relative
        .components()
        .next()
        .expect("a path component")
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// The code of a line, without a trailing `//` comment (string contents are
/// rare enough in `use` lines that a plain cut is right here).
fn code_of(line: &str) -> &str {
    let trimmed = line.trim_start();
    if trimmed.starts_with("//") {
        return "";
    }
    line.split(" //").next().unwrap_or(line)
}

/// Top-level modules named on one line: `crate::x` and `crate::{x, y::z}`.
fn modules_named(code: &str) -> Vec<String> {
    let mut named = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            let inner = group.split('}').next().unwrap_or("");
            for item in inner.split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    named.push(name);
                }
            }
        } else {
            let name: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            named.push(name);
        }
        rest = after;
    }
    named
}

/// Every forbidden reference in the tree, as `file:line: from -> to (why)`.
fn violations(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    source_files(src, &mut files);
    files.sort();
    let mut found = Vec::new();
    for file in &files {
        let from = module_of(src, file);
        let text = fs::read_to_string(file).expect("read source file");
        // Multi-line `use crate::{\n a,\n b };` groups: join each group onto one line.
        let joined = join_use_groups(&text);
        for (number, line) in joined {
            let code = code_of(&line);
            for to in modules_named(code) {
                if let Some((_, _, why)) = NEVER.iter().find(|(f, t, _)| *f == from && *t == to) {
                    found.push(format!(
                        "{}:{number}: {from} -> {to} ({why})",
                        file.display()
                    ));
                }
            }
            if !MAY_PRINT.contains(&from.as_str()) && prints(code) {
                found.push(format!(
                    "{}:{number}: {from} prints (no printing below the face)",
                    file.display()
                ));
            }
        }
    }
    found
}

fn prints(code: &str) -> bool {
    ["println!(", "print!(", "eprintln!(", "eprint!("]
        .iter()
        .any(|m| code.contains(m))
}

/// Lines numbered from 1, with an open `crate::{` group joined to its close.
fn join_use_groups(text: &str) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (index, line) in text.lines().enumerate() {
        let code = code_of(line);
        match pending.take() {
            Some((start, mut acc)) => {
                acc.push(' ');
                acc.push_str(code.trim());
                if code.contains('}') {
                    lines.push((start, acc));
                } else {
                    pending = Some((start, acc));
                }
            }
            None if code.contains("crate::{") && !code.contains('}') => {
                pending = Some((index + 1, code.to_string()));
            }
            None => lines.push((index + 1, line.to_string())),
        }
    }
    lines.extend(pending);
    lines
}

#[test]
fn no_module_imports_against_the_module_map() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = violations(&src);
    assert!(
        found.is_empty(),
        "imports that run against DESIGN.md's module map:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_checker_sees_single_grouped_and_multiline_references() {
    assert_eq!(modules_named("use crate::image::Images;"), ["image"]);
    assert_eq!(
        modules_named("use crate::{engine::Engine, state::Paths};"),
        ["engine", "state"]
    );
    assert_eq!(
        modules_named("let x = crate::network::DEFAULT_BRIDGE;"),
        ["network"]
    );
    let joined = join_use_groups("use crate::{\n    snapshot::Mount,\n    image,\n};\n");
    assert_eq!(modules_named(&joined[0].1), ["snapshot", "image"]);
    assert!(
        modules_named("// crate::image in a comment").is_empty()
            || code_of("// crate::image").is_empty()
    );
    assert!(prints("    println!(\"x\");"));
}

#[test]
fn the_checker_catches_a_planted_violation() {
    let dir = tempfile::tempdir().expect("temp dir");
    let src = dir.path().join("src");
    fs::create_dir_all(src.join("image")).expect("mkdir");
    fs::write(
        src.join("image/mod.rs"),
        "use crate::snapshot::Mount;\nfn f() { println!(\"hi\"); }\n",
    )
    .expect("write");
    fs::write(src.join("state.rs"), "use crate::manifest::Kind;\n").expect("write");
    let found = violations(&src);
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(found[0].contains("image -> snapshot"), "{found:?}");
    assert!(found[1].contains("image prints"), "{found:?}");
    assert!(found[2].contains("state -> manifest"), "{found:?}");
}
