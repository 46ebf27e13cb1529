//! A manifest tree read whole, as one generation: every file's text at
//! one moment, with a digest that says whether anything changed and the
//! commit the tree was checked out at. Whether it is valid is the daemon's
//! question; reading never half-applies anything.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::git;
use crate::manifest::load::{read_sources, LoadOptions, SourceFile};
use crate::manifest::Diagnostic;
use crate::state::clock::unix_ms;

/// One reading of the watched tree.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// `sha256:` over every file's name, directory and text: equal digests,
    /// equal sets.
    pub digest: String,
    /// The commit the tree is checked out at, when it is a git checkout.
    pub revision: Option<String>,
    pub read_unix_ms: u64,
    pub files: Vec<SourceFile>,
    /// What could not be read (a missing directory, an untrusted file);
    /// a snapshot with problems is never applied.
    #[serde(skip)]
    pub problems: Vec<Diagnostic>,
}

/// What reading the tree gave.
#[derive(Debug)]
pub enum Reading {
    Read(Snapshot),
    /// git is changing the tree (it holds `index.lock`): read it again
    /// once git is done, rather than a half-checked-out tree.
    GitBusy,
}

/// Reads every manifest under `dir` (shown as `display`) as one snapshot.
/// A missing directory is a problem, never an empty set: a tree that
/// vanished must not mean "delete everything".
pub fn read(dir: &Path, display: &str, options: LoadOptions) -> Reading {
    if git::busy(dir) {
        return Reading::GitBusy;
    }
    let (files, mut problems) = if dir.is_dir() {
        read_sources(&[display.to_string()], options)
    } else {
        (Vec::new(), Vec::new())
    };
    if problems.is_empty() && !dir.is_dir() {
        problems.push(Diagnostic::for_file(
            display,
            "the watched directory does not exist (or is not a directory); the generation in force stays, nothing is deleted",
        ));
    }
    Reading::Read(Snapshot {
        digest: digest_of(&files),
        revision: git::revision(dir),
        read_unix_ms: unix_ms(),
        files,
        problems,
    })
}

fn digest_of(files: &[SourceFile]) -> String {
    let mut hash = Sha256::new();
    for file in files {
        for part in [
            file.display.as_bytes(),
            file.base_dir.as_os_str().as_encoded_bytes(),
            file.text.as_bytes(),
        ] {
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part);
        }
    }
    format!("sha256:{}", crate::state::hex::encode(&hash.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn snapshot(dir: &Path) -> Snapshot {
        match read(dir, &dir.display().to_string(), LoadOptions::default()) {
            Reading::Read(snapshot) => snapshot,
            Reading::GitBusy => panic!("no git here"),
        }
    }

    #[test]
    fn the_digest_follows_content_and_ignores_what_is_not_a_manifest() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("web.yaml"), "a: 1\n").unwrap();
        let first = snapshot(dir.path());
        assert!(first.problems.is_empty(), "{:?}", first.problems);
        for ignored in [
            "web.yaml.bak",
            "web.yaml~",
            ".#web.yaml",
            ".web.yaml.swp",
            "notes.txt",
        ] {
            fs::write(dir.path().join(ignored), "junk: [").unwrap();
        }
        fs::create_dir(dir.path().join(".git")).unwrap();
        assert_eq!(snapshot(dir.path()).digest, first.digest);
        fs::write(dir.path().join("web.yaml"), "a: 2\n").unwrap();
        assert_ne!(snapshot(dir.path()).digest, first.digest);
    }

    #[test]
    fn a_missing_directory_is_a_problem_not_an_empty_set() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone");
        let read = snapshot(&gone);
        assert!(read.files.is_empty());
        assert!(read.problems[0].message.contains("does not exist"));
    }

    #[test]
    fn a_tree_git_is_changing_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join(".git")).unwrap();
        fs::write(dir.path().join(".git/index.lock"), "").unwrap();
        let display = dir.path().display().to_string();
        assert!(matches!(
            read(dir.path(), &display, LoadOptions::default()),
            Reading::GitBusy
        ));
    }
}
