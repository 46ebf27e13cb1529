//! Host paths in a compose file are relative to the compose file's
//! directory; in berth manifests, to the manifest's. These rewrite one into
//! the other lexically (no file system access: files in, manifests out).

use std::path::{Component, Path, PathBuf};

/// `path` with `.` and `..` resolved lexically (`..` at `/` stays `/`).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// `target` written relative to `base` (both absolute): `./x`, `../y/x`, or
/// `.` for `base` itself.
pub fn relative(target: &Path, base: &Path) -> String {
    let target = normalize(target);
    let base = normalize(base);
    let t: Vec<_> = target.components().collect();
    let b: Vec<_> = base.components().collect();
    let common = t.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut parts: Vec<String> = vec!["..".to_string(); b.len() - common];
    parts.extend(
        t[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    match parts.first().map(String::as_str) {
        None => ".".to_string(),
        Some("..") => parts.join("/"),
        Some(_) => format!("./{}", parts.join("/")),
    }
}

/// A compose host path (absolute, `~/...`, or relative to `compose_dir`)
/// rewritten for a manifest in `out_dir`: absolute stays absolute, the rest
/// becomes relative to `out_dir`.
pub fn rebase(path: &str, compose_dir: &Path, out_dir: &Path, home: Option<&str>) -> String {
    if path.starts_with('/') {
        return path.to_string();
    }
    if let (Some(rest), Some(home)) = (path.strip_prefix('~'), home) {
        if rest.is_empty() || rest.starts_with('/') {
            return format!("{home}{rest}");
        }
    }
    relative(&compose_dir.join(path), out_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_follow_the_manifest_directory() {
        let compose = Path::new("/srv/app");
        assert_eq!(
            rebase(
                "./conf/nginx.conf",
                compose,
                Path::new("/srv/app/berth"),
                None
            ),
            "../conf/nginx.conf"
        );
        assert_eq!(rebase("data", compose, compose, None), "./data");
        assert_eq!(rebase(".", compose, compose, None), ".");
        assert_eq!(
            rebase("../shared", compose, Path::new("/srv/out"), None),
            "../shared"
        );
        assert_eq!(rebase("/etc/x", compose, Path::new("/o"), None), "/etc/x");
        assert_eq!(
            rebase("~/certs", compose, Path::new("/o"), Some("/root")),
            "/root/certs"
        );
    }
}
