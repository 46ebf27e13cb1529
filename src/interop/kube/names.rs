//! Values in Kubernetes' own spellings: quantities, whole seconds, label
//! keys and values, image references, host paths.

use std::path::{Component, Path, PathBuf};

use crate::manifest::quantity::Duration;

/// A byte count as a Kubernetes quantity: binary units when they divide it
/// (`32Mi`), else decimal ones (`100M`), else plain bytes. berth's own
/// spelling is not used because it writes `K`, which Kubernetes refuses.
pub fn bytes_quantity(bytes: u64) -> String {
    const UNITS: &[(&str, u64)] = &[
        ("Ti", 1 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
        ("T", 1_000_000_000_000),
        ("G", 1_000_000_000),
        ("M", 1_000_000),
        ("k", 1_000),
    ];
    for (unit, size) in UNITS {
        if bytes >= *size && bytes % size == 0 {
            return format!("{}{unit}", bytes / size);
        }
    }
    bytes.to_string()
}

/// A CPU count as a quantity: whole CPUs (`2`) or millicores (`250m`).
pub fn cpu_quantity(cpus: f64) -> String {
    let millis = (cpus * 1000.0).round().max(1.0) as u64;
    if millis % 1000 == 0 {
        (millis / 1000).to_string()
    } else {
        format!("{millis}m")
    }
}

/// The bytes a quantity such as `1Gi` or `500M` stands for, when it is one
/// of the plain forms (no exponent or fraction).
pub fn parse_quantity_bytes(text: &str) -> Option<u64> {
    let digits = text.chars().take_while(char::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    let number: u64 = number.parse().ok()?;
    let size: u64 = match unit {
        "" => 1,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        _ => return None,
    };
    number.checked_mul(size)
}

/// A tmpfs `size=` option (`64m`, `1g`, `65536`: binary units, as the
/// kernel reads them) in bytes.
pub fn tmpfs_size(text: &str) -> Option<u64> {
    let digits = text.chars().take_while(char::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    let number: u64 = number.parse().ok()?;
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        _ => return None,
    };
    number.checked_mul(1 << shift)
}

/// A duration in whole seconds for a field that takes them, rounded up
/// (at least `floor`), and whether that changed it.
pub fn whole_seconds(duration: Duration, floor: u64) -> (i64, bool) {
    let std = duration.as_std();
    let mut secs = std.as_secs();
    let exact = std.subsec_nanos() == 0;
    if !exact {
        secs += 1;
    }
    let rounded = secs.max(floor);
    (
        i64::try_from(rounded).unwrap_or(i64::MAX),
        !exact || rounded != std.as_secs(),
    )
}

/// Whether Kubernetes takes `key` as a label key: an optional DNS
/// subdomain prefix and `/`, then a name of at most 63 characters.
pub fn is_label_key(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            })
    });
    prefix_ok && !name.is_empty() && is_label_value(name)
}

/// Whether Kubernetes takes `value` as a label value: at most 63
/// characters, alphanumerics with `-`, `_` and `.` inside.
pub fn is_label_value(value: &str) -> bool {
    value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && value
            .chars()
            .next()
            .is_none_or(|c| c.is_ascii_alphanumeric())
        && value
            .chars()
            .last()
            .is_none_or(|c| c.is_ascii_alphanumeric())
}

/// Whether `name` is a DNS-1035 label, as a Service's name must be (a
/// berth name may start with a digit, a Service's may not).
pub fn is_dns1035_label(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
}

/// The local image sources berth reads from disk, which a cluster cannot.
const LOCAL_SOURCES: &[&str] = &["oci-layout:", "oci-archive:", "docker-archive:", "rootfs:"];

/// The reference a cluster pulls for `image`: registry references as they
/// are, local sources as `localhost/NAME:TAG` (NAME the last component of
/// their path, TAG the layout's tag or `latest`; podman names images it
/// loads from disk this way). The second value says it was a local source.
pub fn image_reference(image: &str) -> (String, bool) {
    let Some(source) = LOCAL_SOURCES.iter().find(|s| image.starts_with(**s)) else {
        return (image.to_string(), false);
    };
    let rest = &image[source.len()..];
    let (path, tag) = match (*source, rest.rsplit_once(':')) {
        ("oci-layout:", Some((path, tag))) if !tag.contains('/') => (path, tag),
        _ => (rest, "latest"),
    };
    let file = Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let stem = file
        .trim_end_matches(".tar")
        .trim_end_matches(".tar.gz")
        .to_ascii_lowercase();
    let name: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name = if name.is_empty() { "image" } else { &name };
    (format!("localhost/{name}:{tag}"), true)
}

/// `source` resolved against `base_dir` without touching the disk, with
/// `.` and `..` taken away (hostPath refuses `..`).
pub fn host_path(base_dir: &Path, source: &str) -> String {
    let joined = base_dir.join(source);
    let mut out = PathBuf::from("/");
    for component in joined.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_quantities_use_units_kubernetes_reads() {
        assert_eq!(bytes_quantity(32 << 20), "32Mi");
        assert_eq!(bytes_quantity(100_000_000), "100M");
        assert_eq!(bytes_quantity(3_000), "3k", "never berth's `K`");
        assert_eq!(bytes_quantity(4097), "4097");
        assert_eq!(parse_quantity_bytes("1Gi"), Some(1 << 30));
        assert_eq!(parse_quantity_bytes("1 Gi"), None);
        assert_eq!(parse_quantity_bytes("1K"), None);
    }

    #[test]
    fn cpus_become_millicores_or_whole_cpus() {
        assert_eq!(cpu_quantity(0.25), "250m");
        assert_eq!(cpu_quantity(2.0), "2");
        assert_eq!(cpu_quantity(0.0001), "1m");
    }

    #[test]
    fn tmpfs_sizes_read_kernel_units() {
        assert_eq!(tmpfs_size("64m"), Some(64 << 20));
        assert_eq!(tmpfs_size("1G"), Some(1 << 30));
        assert_eq!(tmpfs_size("50%"), None);
    }

    #[test]
    fn durations_round_up_to_whole_seconds() {
        let ms = |n| Duration(std::time::Duration::from_millis(n));
        assert_eq!(whole_seconds(ms(5000), 1), (5, false));
        assert_eq!(whole_seconds(ms(500), 1), (1, true));
        assert_eq!(whole_seconds(ms(0), 1), (1, true));
        assert_eq!(whole_seconds(ms(0), 0), (0, false));
    }

    #[test]
    fn label_rules_follow_kubernetes() {
        assert!(is_label_key("app"));
        assert!(is_label_key("network.berth/quickstart"));
        assert!(!is_label_key("Bad_Prefix/x"));
        assert!(!is_label_key("with space"));
        assert!(is_label_value(""));
        assert!(is_label_value("v1.2_3-a"));
        assert!(!is_label_value("-a"));
        assert!(!is_label_value(&"a".repeat(64)));
    }

    #[test]
    fn local_images_become_localhost_references() {
        assert_eq!(
            image_reference("oci-layout:../images/busybox"),
            ("localhost/busybox:latest".to_string(), true)
        );
        assert_eq!(
            image_reference("oci-layout:/srv/img/App:v2"),
            ("localhost/app:v2".to_string(), true)
        );
        assert_eq!(
            image_reference("docker-archive:./x/tool.tar"),
            ("localhost/tool:latest".to_string(), true)
        );
        assert_eq!(
            image_reference("docker.io/library/busybox:1.36"),
            ("docker.io/library/busybox:1.36".to_string(), false)
        );
    }

    #[test]
    fn host_paths_are_absolute_without_dots() {
        let base = Path::new("/srv/site/app");
        assert_eq!(host_path(base, "./conf/a.txt"), "/srv/site/app/conf/a.txt");
        assert_eq!(host_path(base, "../data"), "/srv/site/data");
        assert_eq!(host_path(base, "/etc/ssl"), "/etc/ssl");
    }
}
