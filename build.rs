//! Puts the git commit berth is built from into `BERTH_COMMIT` for
//! `berth --version`: the short hash, with `-dirty` when tracked files
//! differ from it, or `unknown` when there is no git or no checkout (a
//! release tarball). git runs here, at build time, as the building user;
//! berth itself never runs git.
//!
//! It reruns only when HEAD or the branch it points at moves (a commit, a
//! checkout), never on an edit, so it forces no rebuilds: `-dirty` says
//! what the tree was when HEAD last moved, not at every later build.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let commit = match Checkout::find(&manifest_dir) {
        Some(checkout) => {
            for path in checkout.head_files() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
            checkout.describe()
        }
        None => "unknown".to_string(),
    };
    println!("cargo:rustc-env=BERTH_COMMIT={commit}");
}

/// The git checkout whose top level is berth's own directory (not a
/// repository that merely contains an unpacked tarball).
struct Checkout {
    top: PathBuf,
}

impl Checkout {
    fn find(manifest_dir: &Path) -> Option<Self> {
        let top = PathBuf::from(git(manifest_dir, &["rev-parse", "--show-toplevel"])?);
        let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        same(&top, manifest_dir).then_some(Checkout { top })
    }

    /// `abc1234`, or `abc1234-dirty` when a tracked file was changed.
    fn describe(&self) -> String {
        let Some(hash) = git(&self.top, &["rev-parse", "--short=7", "HEAD"]) else {
            return "unknown".to_string();
        };
        let dirty = git(
            &self.top,
            &["status", "--porcelain", "--untracked-files=no"],
        )
        .is_some_and(|changes| !changes.is_empty());
        if dirty {
            format!("{hash}-dirty")
        } else {
            hash
        }
    }

    /// The files that move when HEAD does: HEAD itself (a worktree's own,
    /// under `.git/worktrees/NAME`), the branch's ref and packed-refs. Only
    /// existing files: cargo reruns on every build for a missing one.
    fn head_files(&self) -> Vec<PathBuf> {
        let absolute = |path: String| {
            let path = PathBuf::from(path);
            if path.is_absolute() {
                path
            } else {
                self.top.join(path)
            }
        };
        let mut files = Vec::new();
        if let Some(git_dir) = git(&self.top, &["rev-parse", "--git-dir"]).map(absolute) {
            files.push(git_dir.join("HEAD"));
        }
        if let Some(common) = git(&self.top, &["rev-parse", "--git-common-dir"]).map(absolute) {
            if let Some(branch) = git(&self.top, &["symbolic-ref", "-q", "HEAD"]) {
                files.push(common.join(branch));
            }
            files.push(common.join("packed-refs"));
        }
        files.retain(|path| path.is_file());
        files
    }
}

/// git's trimmed output, or None when git is missing or fails. Optional
/// locks off: `git status` then never rewrites the index during a build.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_OPTIONAL_LOCKS", "0")
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    Some(String::from_utf8(output.stdout).ok()?.trim().to_string())
}
