//! berth as installed: shell completions that complete, man pages that
//! render, and `scripts/install.sh` putting every file where the shells and
//! man look for it (into a temp DESTDIR, from the binaries this test run
//! already built).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::prereq;

fn berth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("berth runs")
}

fn stdout_of(what: &str, output: &Output) -> String {
    common::cli::succeeded(what, output)
}

/// What bash's completion for berth offers for the words typed so far (the
/// last one being completed), with the script from `berth completion bash`
/// loaded as bash-completion would load it.
fn bash_offers(words: &[&str]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("berth.bash");
    let text = stdout_of("berth completion bash", &berth(&["completion", "bash"]));
    std::fs::write(&script, text).unwrap();
    let words_array: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let current = words.len() - 1;
    let program = format!(
        "set -e\n\
         source '{script}'\n\
         complete -p berth >/dev/null\n\
         COMP_WORDS=({words})\n\
         COMP_CWORD={current}\n\
         COMP_LINE='{line}'\n\
         COMP_POINT=${{#COMP_LINE}}\n\
         _berth berth '{cur}' '{prev}'\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        script = script.display(),
        words = words_array.join(" "),
        line = words.join(" "),
        cur = words[current],
        prev = words[current - 1],
    );
    let output = Command::new("bash")
        .arg("-c")
        .arg(&program)
        .stdin(Stdio::null())
        .output()
        .expect("bash runs");
    stdout_of("bash completion", &output)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completes_a_verb_from_its_prefix() {
    let offers = bash_offers(&["berth", "ap"]);
    assert_eq!(offers, vec!["apply"], "berth ap<TAB>");
}

#[test]
fn bash_completes_the_image_subcommands() {
    let offers = bash_offers(&["berth", "image", ""]);
    for sub in ["import", "pull", "ls"] {
        assert!(
            offers.iter().any(|o| o == sub),
            "berth image <TAB> lacks {sub}: {offers:?}"
        );
    }
    assert!(
        !offers.iter().any(|o| o == "apply"),
        "berth image <TAB> offers top-level verbs: {offers:?}"
    );
}

#[test]
fn zsh_and_fish_scripts_name_the_subcommands() {
    for shell in ["zsh", "fish"] {
        let text = stdout_of(
            &format!("berth completion {shell}"),
            &berth(&["completion", shell]),
        );
        for verb in ["apply", "pull", "import", "completion"] {
            assert!(text.contains(verb), "{shell} completion lacks {verb}");
        }
    }
    let zsh = stdout_of("berth completion zsh", &berth(&["completion", "zsh"]));
    assert!(
        zsh.starts_with("#compdef berth"),
        "zsh needs its #compdef line"
    );
}

#[test]
fn an_unknown_shell_is_refused() {
    let output = berth(&["completion", "tcsh"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("tcsh"));
}

/// `man -l PAGE` formatted as plain text (no pager, no terminal).
fn render(page: &Path) -> Option<String> {
    prereq::require_binary("man", "man-db")?;
    let output = Command::new("man")
        .arg("-l")
        .arg(page)
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .env("MANWIDTH", "100")
        .stdin(Stdio::null())
        .output()
        .expect("man runs");
    Some(stdout_of(&format!("man -l {}", page.display()), &output))
}

#[test]
fn man_dir_writes_a_page_per_verb_that_man_renders() {
    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("man1");
    stdout_of(
        "berth man --dir",
        &berth(&["man", "--dir", pages.to_str().unwrap()]),
    );
    for page in [
        "berth.1",
        "berth-apply.1",
        "berth-image-pull.1",
        "berth-man.1",
    ] {
        assert!(pages.join(page).is_file(), "no {page}");
    }
    assert!(
        !pages.join("berth-shim.1").exists(),
        "the hidden shim verb is not for people"
    );
    let Some(text) = render(&pages.join("berth.1")) else {
        return;
    };
    assert!(text.contains("NAME"), "{text}");
    assert!(text.contains("declarative container runner"), "{text}");
    assert!(text.contains("apply"), "{text}");
    let Some(pull) = render(&pages.join("berth-image-pull.1")) else {
        return;
    };
    assert!(pull.contains("--insecure-registry"), "{pull}");
}

#[test]
fn man_without_dir_prints_the_main_page() {
    let text = stdout_of("berth man", &berth(&["man"]));
    assert!(text.contains(".TH berth 1"), "{text}");
}

/// The directory cargo built this test's binaries into (target/debug).
fn built_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_berth"))
        .parent()
        .expect("the binary has a directory")
        .to_path_buf()
}

#[test]
fn install_sh_stages_binaries_man_pages_and_completions_under_destdir() {
    let built = built_dir();
    let Some(profile_dir) = built.file_name().and_then(|n| n.to_str()) else {
        panic!("odd target dir {}", built.display());
    };
    // Only the dev profile's output is in debug/; this run built it.
    assert_eq!(profile_dir, "debug", "tests run from {}", built.display());
    let target = built.parent().expect("target dir");
    let destdir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install.sh");
    let output = Command::new("bash")
        .arg(&script)
        .arg("--no-build")
        .arg("/opt/berth")
        .env("DESTDIR", destdir.path())
        .env("BERTH_INSTALL_PROFILE", "dev")
        .env("CARGO_TARGET_DIR", target)
        .stdin(Stdio::null())
        .output()
        .expect("install.sh runs");
    stdout_of("scripts/install.sh --no-build", &output);
    let prefix = destdir.path().join("opt/berth");
    for file in [
        "bin/berth",
        "bin/berth-shim",
        "share/man/man1/berth.1",
        "share/man/man1/berth-run.1",
        "share/bash-completion/completions/berth",
        "share/zsh/site-functions/_berth",
        "share/fish/vendor_completions.d/berth.fish",
    ] {
        assert!(
            prefix.join(file).is_file(),
            "install.sh did not install {file}"
        );
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(prefix.join("bin/berth"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755, "bin/berth mode {mode:o}");
    let installed = Command::new(prefix.join("bin/berth"))
        .arg("--version")
        .output()
        .expect("the installed berth runs");
    assert!(stdout_of("installed berth --version", &installed).starts_with("berth "));
    assert!(
        !destdir.path().join("usr/local").exists(),
        "PREFIX was not honoured"
    );
}
