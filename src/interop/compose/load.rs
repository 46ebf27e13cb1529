//! Finding and reading a compose project's files: the compose file (given,
//! or the first of compose's default names in a directory), the `.env`
//! beside it, and the override files compose would merge (berth does not).

use std::io::Read as _;
use std::path::{Path, PathBuf};

/// The names compose looks for in a directory, in its order.
pub const DEFAULT_FILES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

const OVERRIDE_FILES: [&str; 4] = [
    "compose.override.yaml",
    "compose.override.yml",
    "docker-compose.override.yaml",
    "docker-compose.override.yml",
];

/// Compose files and env files larger than this are refused.
pub const MAX_FILE: u64 = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{dir}: no compose file (looked for {})", DEFAULT_FILES.join(", "))]
    NotFound { dir: PathBuf },
    #[error("read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("read {path}: larger than {MAX_FILE} bytes")]
    TooLarge { path: PathBuf },
}

/// The compose file `path` names: itself, or in a directory the first of
/// [`DEFAULT_FILES`].
pub fn locate(path: &Path) -> Result<PathBuf, LoadError> {
    if !path.is_dir() {
        return Ok(path.to_path_buf());
    }
    DEFAULT_FILES
        .iter()
        .map(|name| path.join(name))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| LoadError::NotFound {
            dir: path.to_path_buf(),
        })
}

/// The texts of a compose project's files.
#[derive(Debug)]
pub struct ProjectFiles {
    pub text: String,
    pub dotenv: Option<String>,
    /// Override files beside the compose file, which compose would merge.
    pub overrides: Vec<PathBuf>,
}

pub fn read_input(file: &Path) -> Result<ProjectFiles, LoadError> {
    let text = read_bounded(file)?;
    let dir = file.parent().unwrap_or(Path::new("."));
    let dotenv_path = dir.join(".env");
    let dotenv = if dotenv_path.is_file() {
        Some(read_bounded(&dotenv_path)?)
    } else {
        None
    };
    let overrides = OVERRIDE_FILES
        .iter()
        .map(|name| dir.join(name))
        .filter(|p| p.is_file())
        .collect();
    Ok(ProjectFiles {
        text,
        dotenv,
        overrides,
    })
}

/// A text file of at most [`MAX_FILE`] bytes.
pub fn read_bounded(path: &Path) -> Result<String, LoadError> {
    let read_error = |source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut text = String::new();
    file.take(MAX_FILE + 1)
        .read_to_string(&mut text)
        .map_err(read_error)?;
    if text.len() as u64 > MAX_FILE {
        return Err(LoadError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    Ok(text)
}

/// A file the compose file names (an env file), or `None` when it cannot be read.
pub fn read_text(path: &Path) -> Option<String> {
    read_bounded(path).ok()
}
