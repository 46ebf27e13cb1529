//! The committed JSON schema is exactly what the Rust types generate.

use std::path::Path;

#[test]
fn committed_schema_matches_the_types() {
    let committed_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(berth::manifest::schema::SCHEMA_FILE);
    let committed = std::fs::read_to_string(&committed_path)
        .expect("schemas/berth.v1.schema.json is committed");
    let generated = berth::manifest::schema::generate_text();
    assert!(
        committed == generated,
        "{} is stale: run `cargo run -- schema > {}` and commit it",
        committed_path.display(),
        berth::manifest::schema::SCHEMA_FILE
    );
}

#[test]
fn the_schema_is_itself_a_valid_json_schema() {
    let schema = berth::manifest::schema::generate();
    assert!(
        jsonschema::meta::is_valid(&schema),
        "the generated schema fails the 2020-12 meta-schema"
    );
}
