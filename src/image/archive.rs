//! The members of an image archive (an OCI archive, a docker archive) as
//! the importer sees them, whoever wrote the archive.
//!
//! Producers differ in ways that do not matter: GNU tar over a layout
//! writes `./` before every name and a member for each directory
//! (`./blobs/sha256/`); skopeo writes directory members without `./`; the
//! order of the members is anyone's. So a name is read without `./`, empty
//! or `.` components, directories are skipped, and the importer never
//! depends on the order. What would matter if berth ever followed it is
//! refused: a name that is absolute or climbs out with `..` (anywhere in
//! the archive), and a link or device where berth reads a file. A link
//! berth does not read (skopeo's docker archives keep `ID/layer.tar` links
//! for old docker) is left alone, never followed.

use std::collections::BTreeMap;

use tar::EntryType;

/// Why a member refuses the archive.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemberError {
    #[error("member {name:?} has an absolute path")]
    Absolute { name: String },
    #[error("member {name:?} climbs out of the archive with ..")]
    Climbs { name: String },
    #[error("member {name:?} is a {kind}, not a regular file")]
    NotAFile { name: String, kind: &'static str },
    #[error("member {name:?} links to {target:?}, outside the archive")]
    LinkEscapes { name: String, target: String },
    #[error("member {name:?} is a link in a chain of more than {MAX_LINK_HOPS} links")]
    TooManyLinks { name: String },
}

/// How many links a docker archive's layer name may go through (docker
/// writes one: a repeated layer links to the first copy).
pub const MAX_LINK_HOPS: usize = 8;

/// What a member is, by its header's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Member {
    /// A regular file under its normalized name: the only kind berth reads.
    File(String),
    /// A symbolic or hard link: its normalized name and the normalized
    /// name of what it points to (`None` when that is outside the archive).
    Link {
        name: String,
        target: Option<String>,
        raw_target: String,
    },
    /// A directory or a header that carries no file (a pax global header).
    Skip,
    /// Anything else (a device, a fifo): refused where berth reads it.
    Other { name: String, kind: &'static str },
}

impl Member {
    /// Classifies a member by its raw name, header type and, for a link,
    /// its raw link name. Refuses an absolute or climbing name whatever
    /// the member is.
    pub fn classify(
        raw_name: &str,
        kind: EntryType,
        raw_link: Option<&str>,
    ) -> Result<Member, MemberError> {
        let name = normalize(raw_name)?;
        Ok(match kind {
            EntryType::Regular | EntryType::Continuous => Member::File(name),
            EntryType::Directory | EntryType::XGlobalHeader => Member::Skip,
            EntryType::Symlink | EntryType::Link => {
                let raw_target = raw_link.unwrap_or_default().to_string();
                // A symlink is relative to its directory; a hard link names
                // another member from the archive's root.
                let base = if kind == EntryType::Symlink {
                    name.rsplit_once('/').map_or("", |(dir, _)| dir)
                } else {
                    ""
                };
                let target = resolve_link(base, &raw_target);
                Member::Link {
                    name,
                    target,
                    raw_target,
                }
            }
            other => Member::Other {
                name,
                kind: kind_name(other),
            },
        })
    }

    /// The member as a file berth reads: its contents are what `name`
    /// holds. A link or a device where a file must be refuses the archive.
    pub fn into_file(self) -> Result<Option<String>, MemberError> {
        match self {
            Member::File(name) => Ok(Some(name)),
            Member::Skip => Ok(None),
            Member::Link { name, .. } => Err(MemberError::NotAFile { name, kind: "link" }),
            Member::Other { name, kind } => Err(MemberError::NotAFile { name, kind }),
        }
    }

    /// The member's normalized name, when it has one that matters.
    pub fn name(&self) -> Option<&str> {
        match self {
            Member::File(name) | Member::Link { name, .. } | Member::Other { name, .. } => {
                Some(name)
            }
            Member::Skip => None,
        }
    }
}

/// A member name relative to the archive's root, without `./`, empty or
/// `.` components and without a trailing `/`: `./blobs/sha256/` is
/// `blobs/sha256`. Also used for the names a docker archive's
/// `manifest.json` gives, which must meet the same rules.
pub fn normalize(raw: &str) -> Result<String, MemberError> {
    if raw.starts_with('/') {
        return Err(MemberError::Absolute {
            name: raw.to_string(),
        });
    }
    let mut parts = Vec::new();
    for component in raw.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                return Err(MemberError::Climbs {
                    name: raw.to_string(),
                })
            }
            part => parts.push(part),
        }
    }
    Ok(parts.join("/"))
}

/// The member a link at directory `base` pointing to `target` names, or
/// None when it is absolute or climbs above the archive's root.
fn resolve_link(base: &str, target: &str) -> Option<String> {
    if target.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
    for component in target.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    Some(parts.join("/"))
}

/// Follows links (name -> what it points to) from `name` to a name that is
/// no link, through at most [`MAX_LINK_HOPS`].
pub fn follow_links(links: &BTreeMap<String, Member>, name: &str) -> Result<String, MemberError> {
    let mut current = name.to_string();
    for _ in 0..=MAX_LINK_HOPS {
        match links.get(&current) {
            None => return Ok(current),
            Some(Member::Link {
                target: Some(target),
                ..
            }) => current = target.clone(),
            Some(Member::Link {
                name, raw_target, ..
            }) => {
                return Err(MemberError::LinkEscapes {
                    name: name.clone(),
                    target: raw_target.clone(),
                })
            }
            Some(other) => return other.clone().into_file().map(|_| current),
        }
    }
    Err(MemberError::TooManyLinks {
        name: name.to_string(),
    })
}

fn kind_name(kind: EntryType) -> &'static str {
    match kind {
        EntryType::Char => "character device",
        EntryType::Block => "block device",
        EntryType::Fifo => "fifo",
        EntryType::GNUSparse => "sparse file",
        _ => "special member",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(raw: &str) -> Result<Member, MemberError> {
        Member::classify(raw, EntryType::Regular, None)
    }

    #[test]
    fn names_lose_dot_slash_empty_components_and_trailing_slashes() {
        assert_eq!(
            file("./blobs/sha256/abc"),
            Ok(Member::File("blobs/sha256/abc".into()))
        );
        assert_eq!(file("index.json"), Ok(Member::File("index.json".into())));
        assert_eq!(
            file(".//blobs/./sha256//abc"),
            Ok(Member::File("blobs/sha256/abc".into()))
        );
        assert_eq!(normalize("./blobs/sha256/"), Ok("blobs/sha256".into()));
        assert_eq!(normalize("./"), Ok(String::new()));
    }

    #[test]
    fn directory_members_are_skipped_whatever_their_spelling() {
        // Regression: GNU tar's `./blobs/sha256/` was read as a blob named
        // "" and refused the archive with `invalid digest "sha256:"`.
        for raw in [
            "./",
            "./blobs/",
            "./blobs/sha256/",
            "blobs/sha256",
            "blobs/",
        ] {
            assert_eq!(
                Member::classify(raw, EntryType::Directory, None),
                Ok(Member::Skip),
                "{raw}"
            );
        }
    }

    #[test]
    fn absolute_and_climbing_names_refuse_the_archive_whatever_the_member() {
        for kind in [EntryType::Regular, EntryType::Directory, EntryType::Symlink] {
            assert!(matches!(
                Member::classify("/blobs/sha256/abc", kind, Some("x")),
                Err(MemberError::Absolute { .. })
            ));
            assert!(matches!(
                Member::classify("../index.json", kind, Some("x")),
                Err(MemberError::Climbs { .. })
            ));
            assert!(matches!(
                Member::classify("blobs/../../etc/passwd", kind, Some("x")),
                Err(MemberError::Climbs { .. })
            ));
        }
    }

    #[test]
    fn a_link_or_device_where_a_file_is_read_is_refused() {
        let link =
            Member::classify("blobs/sha256/abc", EntryType::Symlink, Some("/etc/shadow")).unwrap();
        assert_eq!(
            link.into_file(),
            Err(MemberError::NotAFile {
                name: "blobs/sha256/abc".into(),
                kind: "link"
            })
        );
        let hard = Member::classify("index.json", EntryType::Link, Some("oci-layout")).unwrap();
        assert!(hard.into_file().is_err());
        let fifo = Member::classify("./index.json", EntryType::Fifo, None).unwrap();
        assert_eq!(
            fifo.into_file(),
            Err(MemberError::NotAFile {
                name: "index.json".into(),
                kind: "fifo"
            })
        );
    }

    fn links(entries: &[(&str, EntryType, &str)]) -> BTreeMap<String, Member> {
        entries
            .iter()
            .map(|(name, kind, target)| {
                let member = Member::classify(name, *kind, Some(target)).unwrap();
                (member.name().unwrap().to_string(), member)
            })
            .collect()
    }

    #[test]
    fn links_resolve_within_the_archive_relative_to_their_directory() {
        // What docker save writes for a repeated layer, and skopeo for old docker.
        let links = links(&[
            ("b/layer.tar", EntryType::Symlink, "../a/layer.tar"),
            ("c/layer.tar", EntryType::Link, "b/layer.tar"),
        ]);
        assert_eq!(
            follow_links(&links, "b/layer.tar"),
            Ok("a/layer.tar".into())
        );
        assert_eq!(
            follow_links(&links, "c/layer.tar"),
            Ok("a/layer.tar".into())
        );
        assert_eq!(
            follow_links(&links, "a/layer.tar"),
            Ok("a/layer.tar".into())
        );
    }

    #[test]
    fn links_out_of_the_archive_or_in_a_loop_are_refused() {
        let links = links(&[
            ("up/layer.tar", EntryType::Symlink, "../../etc/shadow"),
            ("abs/layer.tar", EntryType::Symlink, "/etc/shadow"),
            ("x", EntryType::Symlink, "y"),
            ("y", EntryType::Symlink, "x"),
        ]);
        for name in ["up/layer.tar", "abs/layer.tar"] {
            assert!(
                matches!(
                    follow_links(&links, name),
                    Err(MemberError::LinkEscapes { .. })
                ),
                "{name}"
            );
        }
        assert!(matches!(
            follow_links(&links, "x"),
            Err(MemberError::TooManyLinks { .. })
        ));
    }
}
