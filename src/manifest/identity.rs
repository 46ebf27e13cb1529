//! Which manifest set a set is: its source id (what it owns, what pruning
//! may touch) and its tree (where relative paths in it are read from).

use std::path::{Path, PathBuf};

/// A manifest set's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetIdentity {
    /// `--source`, or the absolute paths given, comma-separated.
    pub source: String,
    /// The directory given, or the directory of the first file.
    pub tree: PathBuf,
}

impl SetIdentity {
    /// The identity of the set read from `files`, named `explicit` if given.
    pub fn of(explicit: Option<&str>, files: &[String]) -> Self {
        SetIdentity {
            source: source_id(explicit, files),
            tree: tree_of(files),
        }
    }
}

/// The source id of a manifest set: `--source`, or its absolute paths.
fn source_id(explicit: Option<&str>, files: &[String]) -> String {
    if let Some(source) = explicit {
        return source.to_string();
    }
    files
        .iter()
        .map(|f| absolute(f).display().to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// The manifest tree: the directory given, or the directory of the file.
fn tree_of(files: &[String]) -> PathBuf {
    let first = files.first().map(|f| absolute(f)).unwrap_or_default();
    if first.is_dir() {
        first
    } else {
        first.parent().map(Path::to_path_buf).unwrap_or_default()
    }
}

fn absolute(file: &str) -> PathBuf {
    std::fs::canonicalize(file).unwrap_or_else(|_| PathBuf::from(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_is_its_own_tree_and_a_file_lives_in_its_parent() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("web.yaml");
        std::fs::write(&file, "").unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let by_dir = SetIdentity::of(None, &[dir.path().display().to_string()]);
        assert_eq!(by_dir.tree, root);
        assert_eq!(by_dir.source, root.display().to_string());
        let by_file = SetIdentity::of(Some("site"), &[file.display().to_string()]);
        assert_eq!(by_file.tree, root);
        assert_eq!(by_file.source, "site");
    }
}
