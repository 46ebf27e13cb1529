//! Labels every record carries so that the reconciler can recognise what it
//! made, while the subsystems that store them know nothing of it.
//!
//! The fingerprint is change detection: a hash per component (each
//! top-level spec field, the resolved image, every referenced file, every
//! network and volume it joins). The object hash is the hash of all parts;
//! comparing parts says *what* changed, for the plan's reasons.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Component name (`spec.env`, `image`, `envFile:app.env`, `bind:./site`,
    /// `network:front`) to the hex sha256 of its content.
    pub parts: BTreeMap<String, String>,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    super::hex::encode(&Sha256::digest(bytes))
}

impl Fingerprint {
    pub fn insert(&mut self, part: impl Into<String>, content: &[u8]) {
        self.parts.insert(part.into(), sha256_hex(content));
    }

    /// Adds one part per top-level field of a serializable spec, so that a
    /// change names the field. Defaults are applied by the types already, so
    /// writing a default explicitly changes nothing.
    pub fn insert_fields(&mut self, prefix: &str, value: &impl Serialize) {
        let json = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
        match json {
            serde_json::Value::Object(map) => {
                for (field, value) in map {
                    // serde_json's map is sorted, so this text is canonical.
                    self.insert(format!("{prefix}.{field}"), value.to_string().as_bytes());
                }
            }
            other => self.insert(prefix, other.to_string().as_bytes()),
        }
    }

    /// The object's hash: of every part, in order.
    pub fn hash(&self) -> String {
        let mut text = String::new();
        for (part, hash) in &self.parts {
            text.push_str(part);
            text.push('=');
            text.push_str(hash);
            text.push('\n');
        }
        sha256_hex(text.as_bytes())
    }

    /// The parts that differ from `old` (changed, added or removed), sorted.
    pub fn changed_parts(&self, old: &Fingerprint) -> Vec<String> {
        let mut changed: Vec<String> = self
            .parts
            .iter()
            .filter(|(part, hash)| old.parts.get(*part) != Some(*hash))
            .map(|(part, _)| part.clone())
            .collect();
        changed.extend(
            old.parts
                .keys()
                .filter(|part| !self.parts.contains_key(*part))
                .cloned(),
        );
        changed.sort();
        changed.dedup();
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_parts_name_what_changed_was_added_or_removed() {
        let mut old = Fingerprint::default();
        old.insert("spec.env", b"a");
        old.insert("spec.image", b"x");
        old.insert("envFile:old.env", b"1");
        let mut new = old.clone();
        new.insert("spec.env", b"b");
        new.parts.remove("envFile:old.env");
        new.insert("envFile:new.env", b"2");
        assert_eq!(
            new.changed_parts(&old),
            ["envFile:new.env", "envFile:old.env", "spec.env"]
        );
        assert_ne!(new.hash(), old.hash());
        assert_eq!(old.clone().hash(), old.hash());
    }

    #[test]
    fn fields_are_fingerprinted_one_by_one() {
        let mut a = Fingerprint::default();
        a.insert_fields(
            "spec",
            &serde_json::json!({"env": {"A": "1"}, "command": ["x"]}),
        );
        let mut b = Fingerprint::default();
        b.insert_fields(
            "spec",
            &serde_json::json!({"env": {"A": "2"}, "command": ["x"]}),
        );
        assert_eq!(b.changed_parts(&a), ["spec.env"]);
    }
}
