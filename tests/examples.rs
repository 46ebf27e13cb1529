//! Every bundled example is a valid manifest set, and every example file uses
//! the schema modeline so editors can help the people who copy it.

use std::path::{Path, PathBuf};

use berth::manifest::{self, LoadOptions};

fn example_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("examples/ exists")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir() && p.file_name().is_some_and(|n| n != "images"))
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn every_example_validates() {
    let dirs = example_dirs();
    assert!(
        dirs.len() >= 4,
        "expected the quickstart, job, volume and privileged examples: {dirs:?}"
    );
    for dir in dirs {
        let result = manifest::load(&[dir.display().to_string()], LoadOptions::default());
        if let Err(problems) = result {
            let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
            panic!("{} is invalid:\n{}", dir.display(), lines.join("\n"));
        }
    }
}

#[test]
fn every_example_carries_the_schema_modeline() {
    for dir in example_dirs() {
        for entry in std::fs::read_dir(&dir).unwrap().filter_map(Result::ok) {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                let text = std::fs::read_to_string(&path).unwrap();
                assert!(
                    text.starts_with(
                        "# yaml-language-server: $schema=../../schemas/berth.v1.schema.json"
                    ),
                    "{} lacks the schema modeline",
                    path.display()
                );
            }
        }
    }
}
