fn main() -> std::process::ExitCode {
    // The per-container shim is this same binary; `berth shim --dir DIR` goes
    // straight to it, skipping argument parsing and logging set-up, so each
    // long-lived shim touches (and keeps resident) as little code as possible.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let [_, verb, flag, dir] = args.as_slice() {
        if verb == "shim" && flag == "--dir" {
            return berth::runtime::shim::run_from_main(std::path::Path::new(dir));
        }
    }
    berth::cli::main()
}
