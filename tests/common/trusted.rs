//! A directory the trust rules accept: root-owned, 0755, under /var/lib
//! (/tmp is world-writable, so nothing under it is trusted), unique per
//! test process and call; unmounted below and removed on drop.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub struct TrustedDir(PathBuf);

impl TrustedDir {
    /// `/var/lib/berth-HINT-test-PID-N`.
    pub fn new(hint: &str) -> TrustedDir {
        let path = PathBuf::from(format!(
            "/var/lib/berth-{hint}-test-{}-{}",
            std::process::id(),
            super::instance::serial()
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        TrustedDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TrustedDir {
    fn drop(&mut self) {
        super::host::unmount_all_under(&self.0);
        let _ = fs::remove_dir_all(&self.0);
    }
}
