//! `berth-shim shim --dir DIR`: the per-container shim alone.
//!
//! `berth shim --dir DIR` runs the same code, but from the whole berth
//! binary, whose size every long-lived shim pays for: the dynamic loader
//! relocates berth's half a megabyte of `.data.rel.ro` into private pages,
//! and the code the shim runs is spread over more of berth's text. Linked
//! from the same library, this binary holds only what the shim reaches
//! (`berth::runtime::shim` and what it calls), so a shim here keeps about a
//! third of the memory resident. berth starts shims from it when it sits
//! beside the `berth` executable.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    match berth::runtime::shim::dir_from_args(&args) {
        Some(dir) => berth::cli::shim::run_shim(dir),
        None => {
            eprintln!("usage: berth-shim shim --dir DIR (berth starts it; not for use by hand)");
            ExitCode::from(2)
        }
    }
}
