//! The commit a manifest tree is checked out at, read from git's own files
//! (no `git` process: running git as root in a directory others may have
//! written to would obey its config, which can name programs to run), and
//! whether git is in the middle of changing the tree.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The most of one of git's small files berth reads.
const MAX_REF_FILE: u64 = 64 << 10;
/// How far up from the watched directory a `.git` is looked for.
const MAX_DEPTH: usize = 32;

/// The commit `dir` is checked out at, when it lies in a git checkout
/// (a repository, a worktree such as git-sync's, or a submodule).
pub fn revision(dir: &Path) -> Option<String> {
    let git_dir = git_dir_of(dir)?;
    let head = read_small(&git_dir.join("HEAD"))?;
    let head = head.trim();
    match head.strip_prefix("ref:") {
        None => commit_id(head),
        Some(name) => resolve_ref(&git_dir, name.trim()),
    }
}

/// Whether git is changing the checkout now (a checkout, pull, merge or
/// commit holds `index.lock`): the tree may be half written.
pub fn busy(dir: &Path) -> bool {
    git_dir_of(dir).is_some_and(|git_dir| git_dir.join("index.lock").exists())
}

/// The git directory of the checkout holding `dir`: `.git` itself, or
/// where a `.git` file (`gitdir: PATH`) of a worktree points.
fn git_dir_of(dir: &Path) -> Option<PathBuf> {
    let start = std::fs::canonicalize(dir).ok()?;
    for candidate in start.ancestors().take(MAX_DEPTH) {
        let dot_git = candidate.join(".git");
        let Ok(metadata) = std::fs::metadata(&dot_git) else {
            continue;
        };
        if metadata.is_dir() {
            return Some(dot_git);
        }
        let text = read_small(&dot_git)?;
        let pointed = text.trim().strip_prefix("gitdir:")?.trim();
        return Some(candidate.join(pointed));
    }
    None
}

/// `refs/heads/main` in the git directory, in the common directory of a
/// worktree, or in `packed-refs`.
fn resolve_ref(git_dir: &Path, name: &str) -> Option<String> {
    if name.split('/').any(|part| part == ".." || part.is_empty()) {
        return None;
    }
    let common = read_small(&git_dir.join("commondir"))
        .map(|text| git_dir.join(text.trim()))
        .unwrap_or_else(|| git_dir.to_path_buf());
    for dir in [git_dir, common.as_path()] {
        if let Some(id) = read_small(&dir.join(name)).and_then(|text| commit_id(text.trim())) {
            return Some(id);
        }
    }
    let packed = read_small(&common.join("packed-refs"))?;
    packed.lines().find_map(|line| {
        let (id, packed_name) = line.split_once(' ')?;
        (packed_name == name).then(|| commit_id(id)).flatten()
    })
}

/// `text` when it is a commit id (SHA-1 or SHA-256, in hex).
fn commit_id(text: &str) -> Option<String> {
    let hex = text.bytes().all(|b| b.is_ascii_hexdigit());
    (hex && (text.len() == 40 || text.len() == 64)).then(|| text.to_ascii_lowercase())
}

/// A small regular file's text; never blocks on a fifo, never reads much.
fn read_small(path: &Path) -> Option<String> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    file.take(MAX_REF_FILE).read_to_string(&mut text).ok()?;
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    const ID: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn a_branch_head_resolves_through_loose_and_packed_refs() {
        let repo = tempfile::tempdir().unwrap();
        let git = repo.path().join(".git");
        fs::create_dir_all(git.join("refs/heads")).unwrap();
        fs::create_dir_all(repo.path().join("hosts/web")).unwrap();
        fs::write(git.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        fs::write(
            git.join("packed-refs"),
            format!("# pack-refs\n{ID} refs/heads/main\n"),
        )
        .unwrap();
        assert_eq!(
            revision(&repo.path().join("hosts/web")).as_deref(),
            Some(ID)
        );
        let newer = ID.replace('0', "f");
        fs::write(git.join("refs/heads/main"), format!("{newer}\n")).unwrap();
        assert_eq!(revision(repo.path()), Some(newer));
        assert!(!busy(repo.path()));
        fs::write(git.join("index.lock"), "").unwrap();
        assert!(busy(repo.path()));
    }

    #[test]
    fn a_worktree_as_git_sync_makes_it_has_a_detached_head() {
        let top = tempfile::tempdir().unwrap();
        let meta = top.path().join("repo/.git/worktrees/rev-1");
        fs::create_dir_all(&meta).unwrap();
        fs::write(meta.join("HEAD"), format!("{ID}\n")).unwrap();
        let tree = top.path().join("rev-1");
        fs::create_dir_all(&tree).unwrap();
        fs::write(tree.join(".git"), format!("gitdir: {}\n", meta.display())).unwrap();
        assert_eq!(revision(&tree).as_deref(), Some(ID));
    }

    #[test]
    fn no_checkout_and_junk_give_no_revision() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(revision(dir.path()), None);
        fs::create_dir_all(dir.path().join(".git")).unwrap();
        fs::write(dir.path().join(".git/HEAD"), "ref: ../../etc/passwd").unwrap();
        assert_eq!(revision(dir.path()), None);
        fs::write(dir.path().join(".git/HEAD"), "not a commit").unwrap();
        assert_eq!(revision(dir.path()), None);
    }
}
