//! A converted object as the JSON value of its YAML document, without the
//! fields that only repeat berth's defaults, so the manifests read like
//! ones written by hand.

use serde_json::{json, Map, Value};

use crate::manifest::{ContainerSpec, NetworkSpec, Object};

/// Whether `value` is the default of `key` inside a spec's lists and
/// mappings, dropped wherever it appears: each key is used in one place
/// only (`protocol` in ports, `readOnly` in mounts, `onUnhealthy` in
/// healthcheck).
fn is_nested_default(key: &str, value: &Value) -> bool {
    match key {
        "protocol" => value == "tcp",
        "readOnly" => value == false,
        "onUnhealthy" => value == "none",
        _ => false,
    }
}

/// Spec fields kept even at their default: what a reader of a converted
/// service wants to see stated.
const ALWAYS_SHOWN: [&str; 3] = ["image", "restart", "driver"];

pub fn document(object: &Object) -> Value {
    let (mut value, defaults) = match object {
        Object::Container(c) => (
            to_value(c),
            spec_defaults::<ContainerSpec>(json!({"image": ""})),
        ),
        Object::Job(j) => (to_value(j), Value::Null),
        Object::Network(n) => (to_value(n), spec_defaults::<NetworkSpec>(json!({}))),
        Object::Volume(v) => (to_value(v), Value::Null),
    };
    if let (Some(Value::Object(spec)), Value::Object(defaults)) = (value.get_mut("spec"), &defaults)
    {
        prune(spec, defaults);
    }
    value
}

fn to_value(value: &impl serde::Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// A spec as serde reads a minimal document: every default spelled out.
fn spec_defaults<S: serde::de::DeserializeOwned + serde::Serialize>(minimal: Value) -> Value {
    serde_json::from_value::<S>(minimal)
        .map(|spec| to_value(&spec))
        .unwrap_or(Value::Null)
}

fn prune(spec: &mut Map<String, Value>, defaults: &Map<String, Value>) {
    spec.retain(|key, value| {
        ALWAYS_SHOWN.contains(&key.as_str()) || defaults.get(key) != Some(value)
    });
    for value in spec.values_mut() {
        prune_nested(value);
    }
}

fn prune_nested(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|key, value| !is_nested_default(key, value));
            map.values_mut().for_each(prune_nested);
        }
        Value::Array(items) => items.iter_mut().for_each(prune_nested),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Kind, Manifest, Metadata, API_VERSION};

    #[test]
    fn defaults_are_left_out_and_what_was_set_stays() {
        let mut spec: ContainerSpec = serde_json::from_value(json!({"image": "redis:7"})).unwrap();
        spec.read_only_rootfs = true;
        let object = Object::Container(Manifest {
            api_version: API_VERSION.into(),
            kind: Kind::Container,
            metadata: Metadata {
                name: "shop-cache".into(),
                ..Metadata::default()
            },
            spec,
        });
        let value = document(&object);
        let spec = value["spec"].as_object().unwrap();
        assert_eq!(spec["image"], "redis:7");
        assert_eq!(spec["readOnlyRootfs"], true);
        assert!(spec.contains_key("restart"));
        for default in [
            "imagePullPolicy",
            "privileged",
            "noNewPrivileges",
            "networkMode",
        ] {
            assert!(!spec.contains_key(default), "{default}: {value}");
        }
    }

    #[test]
    fn nested_defaults_are_left_out() {
        let mut value = json!({"ports": [{"containerPort": 80, "protocol": "tcp"}, {"containerPort": 53, "protocol": "udp"}], "mounts": [{"readOnly": false}, {"readOnly": true}]});
        prune_nested(&mut value);
        assert_eq!(
            value,
            json!({"ports": [{"containerPort": 80}, {"containerPort": 53, "protocol": "udp"}], "mounts": [{}, {"readOnly": true}]})
        );
    }
}
