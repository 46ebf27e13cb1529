//! Image references, parsed and normalized the way docker and containerd do
//! (`busybox` -> `docker.io/library/busybox:latest`), and berth's local image
//! sources (`oci-layout:DIR[:TAG]`, `oci-archive:FILE[:TAG]`, `docker-archive:FILE`),
//! and a plain root filesystem directory (`rootfs:DIR`), which is no image at all.

use std::fmt;
use std::path::{Path, PathBuf};

pub const DEFAULT_REGISTRY: &str = "docker.io";
pub const DEFAULT_TAG: &str = "latest";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid image reference {input:?}: {reason}")]
pub struct ReferenceError {
    pub input: String,
    pub reason: String,
}

/// A normalized registry reference: `registry/repository[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

/// Where an image comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ImageSource {
    Registry(Reference),
    OciLayout {
        path: PathBuf,
        tag: Option<String>,
    },
    OciArchive {
        path: PathBuf,
        tag: Option<String>,
    },
    DockerArchive {
        path: PathBuf,
    },
    /// A directory that is the container's root filesystem as it is (the
    /// lower layer of its overlay): no layers, no image config.
    Rootfs {
        path: PathBuf,
    },
}

impl ImageSource {
    /// Parses an image as written in a manifest or on the command line.
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        let fail = |reason: &str| ReferenceError {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        if let Some(rest) = input.strip_prefix("oci-layout:") {
            let (path, tag) = split_path_and_tag(rest).map_err(|r| fail(&r))?;
            return Ok(ImageSource::OciLayout { path, tag });
        }
        if let Some(rest) = input.strip_prefix("oci-archive:") {
            let (path, tag) = split_path_and_tag(rest).map_err(|r| fail(&r))?;
            return Ok(ImageSource::OciArchive { path, tag });
        }
        if let Some(rest) = input.strip_prefix("docker-archive:") {
            if rest.is_empty() {
                return Err(fail("the archive path is empty"));
            }
            return Ok(ImageSource::DockerArchive {
                path: PathBuf::from(rest),
            });
        }
        if let Some(rest) = input.strip_prefix("rootfs:") {
            return parse_rootfs_dir(rest)
                .map(|path| ImageSource::Rootfs { path })
                .map_err(|r| fail(&r));
        }
        Reference::parse(input).map(ImageSource::Registry)
    }

    /// The directory of a `rootfs:DIR` source.
    pub fn rootfs_dir(&self) -> Option<&Path> {
        match self {
            ImageSource::Rootfs { path } => Some(path),
            _ => None,
        }
    }

    /// Resolves a relative local path against `base` (the manifest file's directory).
    pub fn resolve_relative_to(self, base: &Path) -> Self {
        // One image, one name: `a/../images/x` and `images/x` must agree.
        let join = |path: PathBuf| {
            let joined = if path.is_relative() {
                base.join(path)
            } else {
                path
            };
            std::fs::canonicalize(&joined).unwrap_or(joined)
        };
        match self {
            ImageSource::OciLayout { path, tag } => ImageSource::OciLayout {
                path: join(path),
                tag,
            },
            ImageSource::OciArchive { path, tag } => ImageSource::OciArchive {
                path: join(path),
                tag,
            },
            ImageSource::DockerArchive { path } => ImageSource::DockerArchive { path: join(path) },
            ImageSource::Rootfs { path } => ImageSource::Rootfs { path: join(path) },
            registry => registry,
        }
    }
}

/// `PATH[:TAG]`: the tag is what follows the last colon after the last slash,
/// when it is a valid tag; otherwise the whole string is the path.
fn split_path_and_tag(rest: &str) -> Result<(PathBuf, Option<String>), String> {
    if rest.is_empty() {
        return Err("the path is empty".into());
    }
    let last_segment_start = rest.rfind('/').map_or(0, |i| i + 1);
    if let Some(colon) = rest[last_segment_start..].rfind(':') {
        let split = last_segment_start + colon;
        let (path, tag) = (&rest[..split], &rest[split + 1..]);
        if is_valid_tag(tag) && !path.is_empty() {
            return Ok((PathBuf::from(path), Some(tag.to_string())));
        }
    }
    Ok((PathBuf::from(rest), None))
}

/// Characters a `rootfs:` directory may not contain: overlayfs takes its
/// lower directory in a mount option string, where `:` separates layers and
/// `,` options (and a backslash escapes them).
pub const ROOTFS_FORBIDDEN_CHARS: [char; 4] = [':', ',', '\\', '\n'];

/// `DIR` of `rootfs:DIR`: no tag, and nothing overlayfs could misread.
fn parse_rootfs_dir(rest: &str) -> Result<PathBuf, String> {
    if rest.is_empty() {
        return Err("the rootfs directory is empty".into());
    }
    if rest.contains(ROOTFS_FORBIDDEN_CHARS) {
        return Err("a rootfs directory may not contain ':', ',', '\\' or a newline (overlayfs mount options cannot carry them)".into());
    }
    Ok(PathBuf::from(rest))
}

impl Reference {
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        let fail = |reason: String| ReferenceError {
            input: input.to_string(),
            reason,
        };
        if input.is_empty() {
            return Err(fail("it is empty".into()));
        }
        if input.len() > 4096 {
            return Err(fail("it is longer than 4096 characters".into()));
        }
        let (name_and_tag, digest) = match input.split_once('@') {
            Some((name, digest)) => {
                validate_digest(digest).map_err(fail)?;
                (name, Some(digest.to_string()))
            }
            None => (input, None),
        };
        let last_segment_start = name_and_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_and_tag[last_segment_start..].rfind(':') {
            Some(colon) => {
                let split = last_segment_start + colon;
                let tag = &name_and_tag[split + 1..];
                if !is_valid_tag(tag) {
                    return Err(fail(format!(
                        "tag {tag:?} must be 1-128 of [A-Za-z0-9_.-] and not start with . or -"
                    )));
                }
                (&name_and_tag[..split], Some(tag.to_string()))
            }
            None => (name_and_tag, None),
        };
        let (registry, repository) = split_registry(name);
        if registry.is_empty() {
            return Err(fail("the registry host is empty".into()));
        }
        if repository.is_empty() {
            return Err(fail("the repository name is empty".into()));
        }
        if repository.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(fail("repository names must be lowercase".into()));
        }
        for component in repository.split('/') {
            if !is_valid_path_component(component) {
                return Err(fail(format!(
                    "repository component {component:?} must be lowercase letters and digits separated by ., _, __ or -"
                )));
            }
        }
        let repository = if registry == DEFAULT_REGISTRY && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository.to_string()
        };
        let tag = match (&tag, &digest) {
            (None, None) => Some(DEFAULT_TAG.to_string()),
            _ => tag,
        };
        Ok(Reference {
            registry: registry.to_string(),
            repository,
            tag,
            digest,
        })
    }
}

/// berth's one naming rule for images: the name an image is recorded and
/// looked up under. A registry reference is normalized as docker and
/// containerd do (`busybox` -> `docker.io/library/busybox:latest`); a local
/// source names itself (`oci-layout:/abs/dir:tag`); anything else (a name
/// no rule reads) stays as it is, so that it can still be looked up.
pub fn canonical_name(name: &str) -> String {
    ImageSource::parse(name).map_or_else(|_| name.to_string(), |source| source.to_string())
}

/// A name given to an image by `image import --name` or `image tag`: a
/// registry reference without a digest (a digest is what the image is,
/// not a name for it), normalized by [`canonical_name`]'s rule.
pub fn image_name(input: &str) -> Result<String, ReferenceError> {
    let reference = Reference::parse(input)?;
    if reference.digest.is_some() {
        return Err(ReferenceError {
            input: input.to_string(),
            reason: "a name takes a tag, not a digest".into(),
        });
    }
    Ok(reference.to_string())
}

/// The first component is a registry host when it looks like one (has a dot or
/// a port, or is `localhost`), as docker decides it.
fn split_registry(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            let registry = if first == "index.docker.io" {
                DEFAULT_REGISTRY
            } else {
                first
            };
            (registry, rest)
        }
        _ => (DEFAULT_REGISTRY, name),
    }
}

fn is_valid_tag(tag: &str) -> bool {
    let mut chars = tag.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric() || c == '_')
        && tag.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn is_valid_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let dashes_only = separator.bytes().all(|b| b == b'-');
        if !(separator == "." || separator == "_" || separator == "__" || dashes_only) {
            return false;
        }
    }
    true
}

fn validate_digest(digest: &str) -> Result<(), String> {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err(format!("digest {digest:?} must be ALGORITHM:HEX"));
    };
    let expected_len = match algorithm {
        "sha256" => 64,
        "sha512" => 128,
        _ => {
            return Err(format!(
                "digest algorithm {algorithm:?} is not sha256 or sha512"
            ))
        }
    };
    if hex.len() != expected_len
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(format!(
            "{algorithm} digest must be {expected_len} lowercase hex characters"
        ));
    }
    Ok(())
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl fmt::Display for ImageSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let with_tag =
            |f: &mut fmt::Formatter<'_>, scheme: &str, path: &Path, tag: &Option<String>| {
                write!(f, "{scheme}:{}", path.display())?;
                match tag {
                    Some(tag) => write!(f, ":{tag}"),
                    None => Ok(()),
                }
            };
        match self {
            ImageSource::Registry(reference) => reference.fmt(f),
            ImageSource::OciLayout { path, tag } => with_tag(f, "oci-layout", path, tag),
            ImageSource::OciArchive { path, tag } => with_tag(f, "oci-archive", path, tag),
            ImageSource::DockerArchive { path } => write!(f, "docker-archive:{}", path.display()),
            ImageSource::Rootfs { path } => write!(f, "rootfs:{}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalized(input: &str) -> String {
        Reference::parse(input).unwrap().to_string()
    }

    #[test]
    fn short_names_normalize_to_docker_hub_library_latest() {
        assert_eq!(normalized("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(normalized("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(normalized("user/app"), "docker.io/user/app:latest");
        assert_eq!(
            normalized("docker.io/library/busybox:1.36"),
            "docker.io/library/busybox:1.36"
        );
        assert_eq!(
            normalized("index.docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
    }

    #[test]
    fn canonical_names_follow_one_rule_for_references_and_local_sources() {
        assert_eq!(
            canonical_name("mybusybox"),
            "docker.io/library/mybusybox:latest"
        );
        assert_eq!(
            canonical_name("docker.io/library/mybusybox:latest"),
            "docker.io/library/mybusybox:latest"
        );
        assert_eq!(canonical_name("user/app:v1"), "docker.io/user/app:v1");
        assert_eq!(
            canonical_name("oci-layout:/srv/img:v2"),
            "oci-layout:/srv/img:v2"
        );
        // A name no rule reads is looked up as it is.
        assert_eq!(canonical_name("Not A Name"), "Not A Name");
    }

    #[test]
    fn a_name_given_to_an_image_is_a_normalized_reference_without_a_digest() {
        assert_eq!(
            image_name("mybusybox").unwrap(),
            "docker.io/library/mybusybox:latest"
        );
        assert_eq!(
            image_name("localhost:5000/app:1").unwrap(),
            "localhost:5000/app:1"
        );
        let digest = format!("sha256:{}", "a".repeat(64));
        let error = image_name(&format!("app@{digest}")).unwrap_err();
        assert!(error.to_string().contains("not a digest"), "{error}");
        assert!(image_name("MyBusybox").is_err());
    }

    #[test]
    fn registry_hosts_are_recognized_by_dot_port_or_localhost() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let reference = Reference::parse(&format!("registry:5000/app@{digest}")).unwrap();
        assert_eq!(reference.registry, "registry:5000");
        assert_eq!(reference.repository, "app");
        assert_eq!(reference.tag, None);
        assert_eq!(reference.digest.as_deref(), Some(digest.as_str()));
        assert_eq!(
            Reference::parse("localhost/app").unwrap().registry,
            "localhost"
        );
        assert_eq!(
            Reference::parse("ghcr.io/org/team/app:v1")
                .unwrap()
                .repository,
            "org/team/app"
        );
        assert_eq!(
            Reference::parse("127.0.0.1:5000/x:1")
                .unwrap()
                .tag
                .as_deref(),
            Some("1")
        );
    }

    #[test]
    fn tag_and_digest_together_keep_both() {
        let digest = format!("sha256:{}", "0".repeat(64));
        let reference = Reference::parse(&format!("busybox:1.36@{digest}")).unwrap();
        assert_eq!(reference.tag.as_deref(), Some("1.36"));
        assert_eq!(reference.digest.as_deref(), Some(digest.as_str()));
    }

    #[test]
    fn invalid_references_are_rejected_with_a_reason() {
        for (bad, reason) in [
            ("", "empty"),
            ("BusyBox", "lowercase"),
            ("busybox:", "tag"),
            ("busybox:-x", "tag"),
            ("busybox@sha256:abc", "64"),
            ("busybox@md5:abc", "algorithm"),
            ("a//b", "component"),
            ("app-/x", "component"),
            ("/busybox", "component"),
        ] {
            let error = Reference::parse(bad).unwrap_err().to_string();
            assert!(error.contains(reason), "{bad:?}: {error}");
        }
    }

    #[test]
    fn local_sources_split_path_and_tag() {
        assert_eq!(
            ImageSource::parse("oci-layout:../images/busybox:v2").unwrap(),
            ImageSource::OciLayout {
                path: "../images/busybox".into(),
                tag: Some("v2".into())
            }
        );
        assert_eq!(
            ImageSource::parse("oci-layout:/srv/img").unwrap(),
            ImageSource::OciLayout {
                path: "/srv/img".into(),
                tag: None
            }
        );
        assert_eq!(
            ImageSource::parse("oci-archive:app.tar").unwrap(),
            ImageSource::OciArchive {
                path: "app.tar".into(),
                tag: None
            }
        );
        assert_eq!(
            ImageSource::parse("docker-archive:./save.tar").unwrap(),
            ImageSource::DockerArchive {
                path: "./save.tar".into()
            }
        );
        assert!(ImageSource::parse("oci-layout:").is_err());
    }

    #[test]
    fn relative_local_paths_resolve_against_the_manifest_directory() {
        let source = ImageSource::parse("oci-layout:img")
            .unwrap()
            .resolve_relative_to(Path::new("/srv/site"));
        assert_eq!(source.to_string(), "oci-layout:/srv/site/img");
        let absolute = ImageSource::parse("oci-archive:/a.tar")
            .unwrap()
            .resolve_relative_to(Path::new("/x"));
        assert_eq!(absolute.to_string(), "oci-archive:/a.tar");
    }

    #[test]
    fn rootfs_directories_parse_resolve_and_print_as_rootfs() {
        let source = ImageSource::parse("rootfs:trees/alpine").unwrap();
        assert_eq!(source.rootfs_dir(), Some(Path::new("trees/alpine")));
        let resolved = source.resolve_relative_to(Path::new("/srv/site"));
        assert_eq!(resolved.to_string(), "rootfs:/srv/site/trees/alpine");
        assert_eq!(ImageSource::parse("busybox").unwrap().rootfs_dir(), None);
    }

    #[test]
    fn rootfs_directories_overlayfs_cannot_name_are_refused() {
        for (bad, reason) in [
            ("rootfs:", "empty"),
            ("rootfs:/srv/a:b", "may not contain"),
            ("rootfs:/srv/a,b", "may not contain"),
        ] {
            let error = ImageSource::parse(bad).unwrap_err().to_string();
            assert!(error.contains(reason), "{bad:?}: {error}");
        }
    }
}
