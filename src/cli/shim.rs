//! The shim's entry from `main` (both binaries): the shim's own error
//! reporting, no CLI set-up, so the small `berth-shim` links nothing more.

use std::path::Path;
use std::process::ExitCode;

pub fn run_shim(dir: &Path) -> ExitCode {
    match crate::runtime::shim::main(dir) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("berth shim: {error}");
            ExitCode::FAILURE
        }
    }
}
