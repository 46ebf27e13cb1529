fn main() -> std::process::ExitCode {
    // `berth shim --dir DIR` goes straight to the shim, skipping argument
    // parsing and logging set-up (`berth-shim` is the smaller home of the
    // same code; this path serves when it is not installed).
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(dir) = berth::runtime::shim::dir_from_args(&args) {
        return berth::cli::shim::run_shim(dir);
    }
    berth::cli::main()
}
