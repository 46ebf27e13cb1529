//! Resolving a container user (`uid[:gid]` or `name[:group]`) against the
//! image's `/etc/passwd` and `/etc/group`, which are untrusted input.

use super::rootfs::Rootfs;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups the user is listed in.
    pub additional_gids: Vec<u32>,
    pub home: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UserError {
    #[error("user {0:?}: an id must fit in 32 bits")]
    IdTooLarge(String),
    #[error("user {name:?} is not in the image's /etc/passwd")]
    UnknownUser { name: String },
    #[error("group {name:?} is not in the image's /etc/group")]
    UnknownGroup { name: String },
    #[error("user {0:?} is empty")]
    Empty(String),
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

fn parse_id(text: &str, whole: &str) -> Result<Option<u32>, UserError> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse::<u32>()
            .map(Some)
            .map_err(|_| UserError::IdTooLarge(whole.to_string()))
    } else {
        Ok(None)
    }
}

fn passwd_entries(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.len() < 4 {
                return None;
            }
            Some(PasswdEntry {
                name: fields[0].to_string(),
                uid: fields[2].parse().ok()?,
                gid: fields[3].parse().ok()?,
                home: fields.get(5).map(|s| s.to_string()).unwrap_or_default(),
            })
        })
        .collect()
}

/// (name, gid, members) per line of /etc/group.
fn group_entries(text: &str) -> Vec<(String, u32, Vec<String>)> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.len() < 3 {
                return None;
            }
            let members = fields
                .get(3)
                .map(|m| {
                    m.split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            Some((fields[0].to_string(), fields[2].parse().ok()?, members))
        })
        .collect()
}

/// Resolves `user` (empty = root) the way Docker does: numeric ids need no
/// passwd entry; names must exist; the primary group defaults to the
/// passwd entry's; supplementary groups come from /etc/group membership.
pub fn resolve_user(user: &str, rootfs: Option<&Rootfs>) -> Result<ResolvedUser, UserError> {
    let user = user.trim();
    let (who, group) = match user.split_once(':') {
        Some((who, group)) => (who, Some(group)),
        None => (user, None),
    };
    if user.contains(':') && (who.is_empty() || group.is_some_and(str::is_empty)) {
        return Err(UserError::Empty(user.to_string()));
    }
    let passwd = rootfs
        .and_then(|r| r.read_small_file("/etc/passwd"))
        .map(|t| passwd_entries(&t))
        .unwrap_or_default();
    let groups = rootfs
        .and_then(|r| r.read_small_file("/etc/group"))
        .map(|t| group_entries(&t))
        .unwrap_or_default();

    let (uid, name, default_gid, home) = if who.is_empty() {
        (0, Some("root".to_string()), 0, Some("/root".to_string()))
    } else if let Some(uid) = parse_id(who, user)? {
        let entry = passwd.iter().find(|e| e.uid == uid);
        (
            uid,
            entry.map(|e| e.name.clone()),
            entry.map_or(0, |e| e.gid),
            entry.map(|e| e.home.clone()),
        )
    } else {
        let entry =
            passwd
                .iter()
                .find(|e| e.name == who)
                .ok_or_else(|| UserError::UnknownUser {
                    name: who.to_string(),
                })?;
        (
            entry.uid,
            Some(entry.name.clone()),
            entry.gid,
            Some(entry.home.clone()),
        )
    };
    let gid = match group {
        None => default_gid,
        Some(group) => match parse_id(group, user)? {
            Some(gid) => gid,
            None => groups
                .iter()
                .find(|(n, _, _)| n == group)
                .map(|(_, gid, _)| *gid)
                .ok_or_else(|| UserError::UnknownGroup {
                    name: group.to_string(),
                })?,
        },
    };
    let mut additional_gids: Vec<u32> = match &name {
        Some(name) if group.is_none() => groups
            .iter()
            .filter(|(_, g, members)| *g != gid && members.iter().any(|m| m == name))
            .map(|(_, g, _)| *g)
            .collect(),
        _ => Vec::new(),
    };
    additional_gids.sort_unstable();
    additional_gids.dedup();
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home: home.filter(|h| !h.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rootfs_with(passwd: &str, group: &str) -> (tempfile::TempDir, Rootfs) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/passwd"), passwd).unwrap();
        std::fs::write(dir.path().join("etc/group"), group).unwrap();
        let rootfs = Rootfs::open(dir.path()).unwrap();
        (dir, rootfs)
    }

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\napp:x:1000:\nstaff:x:50:app\n";

    #[test]
    fn names_resolve_through_the_image_files() {
        let (_dir, rootfs) = rootfs_with(PASSWD, GROUP);
        let user = resolve_user("app", Some(&rootfs)).unwrap();
        assert_eq!(
            (user.uid, user.gid, user.additional_gids.clone()),
            (1000, 1000, vec![50])
        );
        assert_eq!(user.home.as_deref(), Some("/home/app"));
        let with_group = resolve_user("app:staff", Some(&rootfs)).unwrap();
        assert_eq!((with_group.uid, with_group.gid), (1000, 50));
    }

    #[test]
    fn numeric_ids_need_no_entry_and_default_to_root() {
        let (_dir, rootfs) = rootfs_with(PASSWD, GROUP);
        assert_eq!(resolve_user("4242", Some(&rootfs)).unwrap().gid, 0);
        assert_eq!(resolve_user("4242:7", None).unwrap().gid, 7);
        assert_eq!(resolve_user("", None).unwrap().uid, 0);
    }

    #[test]
    fn ids_beyond_32_bits_are_refused_not_wrapped() {
        assert_eq!(
            resolve_user("4294967296", None),
            Err(UserError::IdTooLarge("4294967296".into()))
        );
        assert_eq!(
            resolve_user("0:99999999999", None),
            Err(UserError::IdTooLarge("0:99999999999".into()))
        );
    }

    #[test]
    fn unknown_names_are_errors() {
        let (_dir, rootfs) = rootfs_with(PASSWD, GROUP);
        assert!(matches!(
            resolve_user("nobody", Some(&rootfs)),
            Err(UserError::UnknownUser { .. })
        ));
        assert!(matches!(
            resolve_user("app:wheel", Some(&rootfs)),
            Err(UserError::UnknownGroup { .. })
        ));
    }
}
