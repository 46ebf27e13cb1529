//! Compose names to berth names. berth's names are DNS labels (lowercase
//! letters, digits and `-`, at most 63 characters); compose's may hold `_`
//! and `.`. A service `web` of project `shop` becomes `shop-web`, as compose
//! names its container `shop-web-1` (berth runs one container per service,
//! so no replica number).

use sha2::{Digest, Sha256};

/// The longest berth object name.
pub const MAX_NAME: usize = 63;

/// `raw` as a DNS label: lowercase, `_`, `.` and spaces as `-`, other
/// characters dropped, no leading, trailing or doubled `-`.
pub fn sanitize(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        let c = c.to_ascii_lowercase();
        let mapped = match c {
            'a'..='z' | '0'..='9' => Some(c),
            '-' | '_' | '.' | ' ' => Some('-'),
            _ => None,
        };
        if let Some(c) = mapped {
            if c == '-' && (out.is_empty() || out.ends_with('-')) {
                continue;
            }
            out.push(c);
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// A name at most [`MAX_NAME`] long: a longer one keeps its start and ends
/// in 8 hex digits of its sha256, so two long names stay apart.
pub fn fit(name: String) -> String {
    if name.len() <= MAX_NAME {
        return name;
    }
    let digest = Sha256::digest(name.as_bytes());
    let hex: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    let mut head = name[..MAX_NAME - 9].to_string();
    while head.ends_with('-') {
        head.pop();
    }
    format!("{head}-{hex}")
}

/// The berth name of a project's object: `PROJECT-LOCAL`.
pub fn scoped(project: &str, local: &str) -> String {
    fit(sanitize(&format!("{project}-{local}")))
}

/// A project name as compose normalizes a directory's name: lowercase,
/// only letters, digits, `-` and `_`, starting with a letter or digit.
pub fn project_from_dir(dir: &str) -> String {
    let lowered: String = dir
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    lowered
        .trim_start_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_dns_labels() {
        assert_eq!(sanitize("My_App.web"), "my-app-web");
        assert_eq!(sanitize("__x__y__"), "x-y");
        assert_eq!(sanitize("Ünïcode"), "ncode");
        assert_eq!(scoped("shop", "db_primary"), "shop-db-primary");
    }

    #[test]
    fn long_names_are_cut_with_a_hash_that_keeps_them_apart() {
        let a = scoped("project", &"a".repeat(80));
        let b = scoped("project", &format!("{}b", "a".repeat(79)));
        assert!(a.len() <= MAX_NAME && b.len() <= MAX_NAME);
        assert_ne!(a, b);
        assert!(a.starts_with("project-aaaa"));
    }

    #[test]
    fn project_names_come_from_directories_as_compose_makes_them() {
        assert_eq!(project_from_dir("My Shop!"), "myshop");
        assert_eq!(project_from_dir("_hidden-app"), "hidden-app");
    }
}
