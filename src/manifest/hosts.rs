//! Fleets from one repository: many hosts follow one manifest set, each
//! running the objects whose `metadata.hosts` selects it.
//!
//! A host is described by labels ([`HostLabels`]): those given with
//! `--host-label KEY=VALUE`, plus `hostname`, the machine's hostname unless
//! given. An object selects a host when its `metadata.hosts` is absent (every
//! host), when every pair of its `matchLabels` is one of the host's labels,
//! or when one of its hostname globs matches the host's `hostname`.
//!
//! [`select`] keeps the objects that select this host; what does not is
//! absent from this host's desired set, so pruning is per host by itself.
//! A kept object that refers to one left out (a network, a volume, a
//! dependency) is an error naming the reference, the object left out and why.

use std::collections::BTreeMap;
use std::fmt;

use super::diagnostic::{Diagnostic, PathSegment};
use super::types::HostSelector;
use super::validate::{self, LeftOut};
use super::{Located, ManifestSet};

/// The label every host has: its hostname, which hostname globs match.
pub const HOSTNAME_LABEL: &str = "hostname";

/// Where Linux keeps the hostname of this UTS namespace (what `uname -n`
/// and gethostname(2) return), read without unsafe code.
const HOSTNAME_FILE: &str = "/proc/sys/kernel/hostname";

/// The longest label key, label value or glob (a fully qualified hostname).
const MAX_LABEL: usize = 253;

/// A host's labels, `KEY=VALUE` each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostLabels(BTreeMap<String, String>);

impl HostLabels {
    /// Exactly these labels (no hostname is added).
    pub fn new(labels: impl IntoIterator<Item = (String, String)>) -> HostLabels {
        HostLabels(labels.into_iter().collect())
    }

    /// This machine's labels: `extra` (a later pair wins over an earlier one
    /// with the same key), and `hostname` from the kernel unless `extra`
    /// gives one. Without a readable hostname there is no `hostname` label,
    /// and hostname globs select nothing.
    pub fn of_this_host(extra: &[(String, String)]) -> HostLabels {
        HostLabels::with_hostname(machine_hostname(), extra)
    }

    fn with_hostname(hostname: Option<String>, extra: &[(String, String)]) -> HostLabels {
        let mut labels = BTreeMap::new();
        if let Some(hostname) = hostname {
            labels.insert(HOSTNAME_LABEL.to_string(), hostname);
        }
        labels.extend(extra.iter().cloned());
        HostLabels(labels)
    }

    /// Parses `KEY=VALUE` (clap's value parser for `--host-label`).
    pub fn parse_arg(s: &str) -> Result<(String, String), String> {
        let (key, value) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?} is not KEY=VALUE (such as role=edge)"))?;
        if let Some(problem) = label_key_problem(key).or_else(|| label_value_problem(value)) {
            return Err(problem);
        }
        Ok((key.to_string(), value.to_string()))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    pub fn hostname(&self) -> Option<&str> {
        self.get(HOSTNAME_LABEL)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// `hostname=web1, role=edge`.
impl fmt::Display for HostLabels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("no labels");
        }
        f.write_str(&pairs(&self.0))
    }
}

fn pairs(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The kernel's hostname; None when it cannot be read or is empty.
fn machine_hostname() -> Option<String> {
    let text = std::fs::read_to_string(HOSTNAME_FILE).ok()?;
    let name = text.trim();
    (!name.is_empty()).then(|| name.to_string())
}

impl HostSelector {
    /// Whether a host with these labels runs the object.
    pub fn selects(&self, host: &HostLabels) -> bool {
        match self {
            HostSelector::Labels(selector) => selector
                .match_labels
                .iter()
                .all(|(key, value)| host.get(key) == Some(value.as_str())),
            HostSelector::Hostnames(globs) => host
                .hostname()
                .is_some_and(|name| globs.iter().any(|glob| glob_matches(glob, name))),
        }
    }

    /// The selector in a few words, for messages: `hosts.matchLabels
    /// role=db` or `hosts db-*, db1`.
    pub fn describe(&self) -> String {
        match self {
            HostSelector::Labels(selector) => {
                format!("hosts.matchLabels {}", pairs(&selector.match_labels))
            }
            HostSelector::Hostnames(globs) => format!("hosts {}", globs.join(", ")),
        }
    }
}

/// Whether an object with `hosts` runs on a host with these labels.
pub fn selects(hosts: Option<&HostSelector>, host: &HostLabels) -> bool {
    hosts.is_none_or(|selector| selector.selects(host))
}

/// Whether one host could run both objects: false only when their selectors
/// provably never select the same host (two matchLabels that want different
/// values of one key; hostname globs no name matches both of; a
/// `matchLabels` hostname no glob of the other matches). Two such objects
/// may publish the same host port or use overlapping subnets: no host ever
/// has both.
pub fn may_share_a_host(a: Option<&HostSelector>, b: Option<&HostSelector>) -> bool {
    let (Some(a), Some(b)) = (a, b) else {
        return true;
    };
    match (a, b) {
        (HostSelector::Labels(a), HostSelector::Labels(b)) => a
            .match_labels
            .iter()
            .all(|(key, value)| b.match_labels.get(key).is_none_or(|other| other == value)),
        (HostSelector::Hostnames(a), HostSelector::Hostnames(b)) => a
            .iter()
            .any(|x| b.iter().any(|y| globs_intersect(&tokens(x), &tokens(y)))),
        (HostSelector::Labels(labels), HostSelector::Hostnames(globs))
        | (HostSelector::Hostnames(globs), HostSelector::Labels(labels)) => {
            match labels.match_labels.get(HOSTNAME_LABEL) {
                Some(name) => globs.iter().any(|glob| glob_matches(glob, name)),
                None => true,
            }
        }
    }
}

/// The objects of a valid set that select `host`, as a set of their own.
/// A kept object that refers to one left out (`networks`, a volume mount,
/// `dependsOn`) is an error at the reference, saying which object does not
/// select this host and why.
pub fn select(set: ManifestSet, host: &HostLabels) -> Result<ManifestSet, Vec<Diagnostic>> {
    let (kept, left): (Vec<Located>, Vec<Located>) = set
        .objects
        .into_iter()
        .partition(|located| selects(located.object.metadata().hosts.as_ref(), host));
    if !left.is_empty() {
        let left_out: Vec<LeftOut> = left.iter().map(|l| left_out(l, host)).collect();
        let mut problems = validate::check_host_set(&kept, &left_out);
        if !problems.is_empty() {
            problems.sort();
            problems.dedup();
            return Err(problems);
        }
    }
    Ok(ManifestSet {
        objects: kept,
        files: set.files,
    })
}

/// `Container "db" (db.yaml:3) does not select this host (hosts.matchLabels
/// role=db; this host: hostname=web1, role=edge)`.
fn left_out(located: &Located, host: &HostLabels) -> LeftOut {
    let kind = located.object.kind();
    let name = located.object.name().to_string();
    let why = located
        .object
        .metadata()
        .hosts
        .as_ref()
        .map(HostSelector::describe)
        .unwrap_or_default();
    LeftOut {
        reason: format!(
            "{kind} {name:?} ({}:{}) does not select this host ({why}; this host: {host})",
            located.file,
            located.name_line()
        ),
        kind,
        name,
    }
}

/// What is wrong with an object's `metadata.hosts`: label keys and values
/// that no `--host-label` could give, globs that match no hostname, and an
/// empty selector (an empty list would select no host and an empty
/// matchLabels every host: both say what no `hosts` at all says better).
pub fn selector_problems(located: &Located) -> Vec<Diagnostic> {
    let Some(selector) = &located.object.metadata().hosts else {
        return Vec::new();
    };
    let at = |more: &[PathSegment]| {
        let mut path = vec![
            PathSegment::Key("metadata".into()),
            PathSegment::Key("hosts".into()),
        ];
        path.extend_from_slice(more);
        path
    };
    let mut problems = Vec::new();
    match selector {
        HostSelector::Labels(selector) => {
            let labels_at = |key: Option<&str>| {
                let mut more = vec![PathSegment::Key("matchLabels".into())];
                more.extend(key.map(|k| PathSegment::Key(k.to_string())));
                at(&more)
            };
            if selector.match_labels.is_empty() {
                problems.push(located.problem(
                    &labels_at(None),
                    "matchLabels is empty: leave out metadata.hosts to run the object on every host",
                ));
            }
            for (key, value) in &selector.match_labels {
                if let Some(message) = label_key_problem(key) {
                    problems.push(located.problem_at(&labels_at(Some(key)), true, message));
                }
                if let Some(message) = label_value_problem(value) {
                    problems.push(located.problem(&labels_at(Some(key)), message));
                }
            }
        }
        HostSelector::Hostnames(globs) => {
            if globs.is_empty() {
                problems.push(located.problem(
                    &at(&[]),
                    "the list is empty, so no host would run the object: list hostname globs, or leave out metadata.hosts to run it on every host",
                ));
            }
            for (i, glob) in globs.iter().enumerate() {
                if let Some(message) = glob_problem(glob) {
                    problems.push(located.problem(&at(&[PathSegment::Index(i)]), message));
                }
            }
        }
    }
    problems
}

fn is_label_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// Letters, digits, `-`, `_`, `.` and `/` (for prefixes such as
/// `example.com/zone`), starting and ending with a letter or digit.
fn label_key_problem(key: &str) -> Option<String> {
    if key.is_empty() {
        return Some("the label key is empty (expected KEY=VALUE, such as role=edge)".into());
    }
    let edges_ok = key.starts_with(|c: char| c.is_ascii_alphanumeric())
        && key.ends_with(|c: char| c.is_ascii_alphanumeric());
    let chars_ok = key.chars().all(|c| is_label_char(c) || c == '/');
    (key.len() > MAX_LABEL || !edges_ok || !chars_ok).then(|| {
        format!(
            "{key:?} is not a valid label key: use letters, digits, '-', '_', '.' and '/', starting and ending with a letter or digit (at most {MAX_LABEL} characters)"
        )
    })
}

/// Empty, or letters, digits, `-`, `_` and `.`, starting and ending with a
/// letter or digit.
fn label_value_problem(value: &str) -> Option<String> {
    if value.is_empty() {
        return None;
    }
    let edges_ok = value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value.ends_with(|c: char| c.is_ascii_alphanumeric());
    let chars_ok = value.chars().all(is_label_char);
    (value.len() > MAX_LABEL || !edges_ok || !chars_ok).then(|| {
        format!(
            "{value:?} is not a valid label value: use letters, digits, '-', '_' and '.', starting and ending with a letter or digit (at most {MAX_LABEL} characters), or nothing"
        )
    })
}

fn glob_problem(glob: &str) -> Option<String> {
    if glob.is_empty() {
        return Some("the glob is empty: it would match no hostname".into());
    }
    let chars_ok = glob
        .chars()
        .all(|c| is_label_char(c) || matches!(c, '*' | '?'));
    (glob.len() > MAX_LABEL || !chars_ok).then(|| {
        format!(
            "{glob:?} is not a hostname glob: use letters, digits, '-', '_', '.', '*' (any characters) and '?' (one character), at most {MAX_LABEL} characters"
        )
    })
}

/// One step of a glob: `*`, `?` or a character (lower-cased: hostnames
/// ignore letter case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    AnyRun,
    AnyOne,
    Char(char),
}

fn tokens(glob: &str) -> Vec<Token> {
    glob.chars()
        .map(|c| match c {
            '*' => Token::AnyRun,
            '?' => Token::AnyOne,
            c => Token::Char(c.to_ascii_lowercase()),
        })
        .collect()
}

/// Whether `glob` matches all of `name`, ignoring ASCII letter case.
pub fn glob_matches(glob: &str, name: &str) -> bool {
    let literal: Vec<Token> = name
        .chars()
        .map(|c| Token::Char(c.to_ascii_lowercase()))
        .collect();
    globs_intersect(&tokens(glob), &literal)
}

/// Whether some name matches both globs: a search over pairs of positions
/// (one in each glob), stepping both over one common character, or past a
/// `*` that matches nothing more. A literal name is a glob without `*`/`?`.
fn globs_intersect(a: &[Token], b: &[Token]) -> bool {
    let mut seen = vec![false; (a.len() + 1) * (b.len() + 1)];
    let mut todo = vec![(0usize, 0usize)];
    while let Some((i, j)) = todo.pop() {
        let cell = i * (b.len() + 1) + j;
        if seen[cell] {
            continue;
        }
        seen[cell] = true;
        if i == a.len() && j == b.len() {
            return true;
        }
        if a.get(i) == Some(&Token::AnyRun) {
            todo.push((i + 1, j));
        }
        if b.get(j) == Some(&Token::AnyRun) {
            todo.push((i, j + 1));
        }
        if let (Some(x), Some(y)) = (a.get(i), b.get(j)) {
            let same_char = match (x, y) {
                (Token::Char(x), Token::Char(y)) => x == y,
                _ => true,
            };
            if same_char {
                let next = |t: &Token, at: usize| if *t == Token::AnyRun { at } else { at + 1 };
                todo.push((next(x, i), next(y, j)));
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::LoadOptions;

    fn host(labels: &[(&str, &str)]) -> HostLabels {
        HostLabels::new(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    fn labels(pairs: &[(&str, &str)]) -> HostSelector {
        HostSelector::Labels(crate::manifest::LabelSelector {
            match_labels: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        })
    }

    fn globs(globs: &[&str]) -> HostSelector {
        HostSelector::Hostnames(globs.iter().map(|g| g.to_string()).collect())
    }

    /// A set read from `files` (name, text) in a temp dir; its dir too.
    fn set_of(files: &[(&str, &str)]) -> (ManifestSet, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let set =
            crate::manifest::load(&[dir.path().display().to_string()], LoadOptions::default())
                .unwrap_or_else(|problems| panic!("valid set: {problems:?}"));
        (set, dir)
    }

    fn names(set: &ManifestSet) -> Vec<&str> {
        set.objects.iter().map(|l| l.object.name()).collect()
    }

    fn problems_of(files: &[(&str, &str)]) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        crate::manifest::load(&[dir.path().display().to_string()], LoadOptions::default())
            .map(|_| Vec::new())
            .unwrap_or_else(|problems| {
                problems
                    .iter()
                    .map(|p| format!("{}:{}: {}: {}", p.line, p.column, p.path, p.message))
                    .collect()
            })
    }

    const EDGE: &str = "apiVersion: berth/v1\nkind: Container\nmetadata:\n  name: proxy\n  hosts: {matchLabels: {role: edge}}\nspec: {image: busybox}\n";
    const DB: &str = "apiVersion: berth/v1\nkind: Container\nmetadata:\n  name: db\n  hosts: {matchLabels: {role: db}}\nspec: {image: busybox}\n";
    const WEB: &str = "apiVersion: berth/v1\nkind: Container\nmetadata:\n  name: web\n  hosts: [\"web-*\", db1]\nspec: {image: busybox}\n";
    const EVERYWHERE: &str =
        "apiVersion: berth/v1\nkind: Container\nmetadata:\n  name: agent\nspec: {image: busybox}\n";

    #[test]
    fn match_labels_select_hosts_that_carry_every_pair() {
        let selector = labels(&[("role", "edge"), ("zone", "a")]);
        assert!(selector.selects(&host(&[("role", "edge"), ("zone", "a"), ("x", "y")])));
        assert!(!selector.selects(&host(&[("role", "edge")])));
        assert!(!selector.selects(&host(&[("role", "edge"), ("zone", "b")])));
        assert!(!selector.selects(&host(&[])));
    }

    #[test]
    fn hostname_globs_match_the_hostname_label_ignoring_case() {
        let selector = globs(&["web-*", "db?"]);
        assert!(selector.selects(&host(&[("hostname", "web-1")])));
        assert!(selector.selects(&host(&[("hostname", "WEB-eu.example.com")])));
        assert!(selector.selects(&host(&[("hostname", "db1")])));
        assert!(!selector.selects(&host(&[("hostname", "db12")])));
        assert!(!selector.selects(&host(&[("hostname", "web")])));
        assert!(
            !selector.selects(&host(&[("role", "web-1")])),
            "only the hostname counts"
        );
        assert!(glob_matches("*", ""));
        assert!(glob_matches("a*b*c", "aXXbYbc"));
        assert!(!glob_matches("a*b*c", "aXXbYbcd"));
    }

    #[test]
    fn no_hosts_field_selects_every_host_and_select_keeps_only_what_selects() {
        let (set, _dir) = set_of(&[
            ("edge.yaml", EDGE),
            ("db.yaml", DB),
            ("web.yaml", WEB),
            ("agent.yaml", EVERYWHERE),
        ]);
        let kept = |labels: &[(&str, &str)]| {
            let mut names: Vec<String> = names(&select(set.clone(), &host(labels)).unwrap())
                .into_iter()
                .map(str::to_string)
                .collect();
            names.sort();
            names
        };
        assert_eq!(
            kept(&[("hostname", "web-3"), ("role", "edge")]),
            ["agent", "proxy", "web"]
        );
        assert_eq!(
            kept(&[("hostname", "db1"), ("role", "db")]),
            ["agent", "db", "web"]
        );
        assert_eq!(kept(&[("hostname", "other")]), ["agent"]);
        assert_eq!(kept(&[]), ["agent"]);
    }

    #[test]
    fn a_reference_to_an_object_another_host_runs_names_it_and_why() {
        let app = "apiVersion: berth/v1\nkind: Container\nmetadata:\n  name: app\n  hosts: {matchLabels: {role: edge}}\nspec:\n  image: busybox\n  dependsOn: [db]\n  networks: [back]\n  mounts:\n  - {type: volume, source: data, target: /data}\n";
        let net =
            "apiVersion: berth/v1\nkind: Network\nmetadata:\n  name: back\n  hosts: [\"db*\"]\n";
        let vol =
            "apiVersion: berth/v1\nkind: Volume\nmetadata:\n  name: data\n  hosts: [\"db*\"]\n";
        let (set, dir) = set_of(&[
            ("app.yaml", app),
            ("db.yaml", DB),
            ("net.yaml", net),
            ("vol.yaml", vol),
        ]);
        let problems = select(set, &host(&[("hostname", "web1"), ("role", "edge")])).unwrap_err();
        let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
        let file = |name: &str| dir.path().join(name).display().to_string();
        let this_host = "this host: hostname=web1, role=edge";
        assert_eq!(
            shown,
            [
                format!(
                    "{}:8:15: spec.dependsOn[0]: Container \"db\" ({}:4) does not select this host (hosts.matchLabels role=db; {this_host})",
                    file("app.yaml"),
                    file("db.yaml")
                ),
                format!(
                    "{}:9:14: spec.networks[0]: Network \"back\" ({}:4) does not select this host (hosts db*; {this_host})",
                    file("app.yaml"),
                    file("net.yaml")
                ),
                format!(
                    "{}:11:28: spec.mounts[0].source: Volume \"data\" ({}:4) does not select this host (hosts db*; {this_host})",
                    file("app.yaml"),
                    file("vol.yaml")
                ),
            ],
        );
    }

    #[test]
    fn host_labels_parse_as_key_equals_value_with_clear_refusals() {
        assert_eq!(
            HostLabels::parse_arg("role=edge"),
            Ok(("role".into(), "edge".into()))
        );
        assert_eq!(
            HostLabels::parse_arg("zone="),
            Ok(("zone".into(), String::new()))
        );
        assert_eq!(
            HostLabels::parse_arg("example.com/rack=r-1.2"),
            Ok(("example.com/rack".into(), "r-1.2".into()))
        );
        assert_eq!(
            HostLabels::parse_arg("role").unwrap_err(),
            "\"role\" is not KEY=VALUE (such as role=edge)"
        );
        assert!(HostLabels::parse_arg("=edge")
            .unwrap_err()
            .contains("the label key is empty"));
        assert!(HostLabels::parse_arg("ro le=edge")
            .unwrap_err()
            .contains("not a valid label key"));
        assert!(HostLabels::parse_arg("role=a b")
            .unwrap_err()
            .contains("not a valid label value"));
    }

    #[test]
    fn the_hostname_label_comes_from_the_kernel_unless_given() {
        let given = [("role".to_string(), "edge".to_string())];
        let labels = HostLabels::with_hostname(Some("web1".into()), &given);
        assert_eq!(labels.to_string(), "hostname=web1, role=edge");
        let given = [("hostname".to_string(), "db1".to_string())];
        assert_eq!(
            HostLabels::with_hostname(Some("web1".into()), &given).hostname(),
            Some("db1")
        );
        assert_eq!(
            HostLabels::of_this_host(&[]).hostname(),
            machine_hostname().as_deref()
        );
        assert!(machine_hostname().is_some(), "Linux has {HOSTNAME_FILE}");
    }

    #[test]
    fn empty_selectors_and_bad_labels_or_globs_are_refused_where_they_are() {
        let doc = |hosts: &str| {
            format!(
                "apiVersion: berth/v1\nkind: Volume\nmetadata:\n  name: data\n  hosts: {hosts}\n"
            )
        };
        assert_eq!(
            problems_of(&[("v.yaml", &doc("[]"))]),
            ["5:10: metadata.hosts: the list is empty, so no host would run the object: list hostname globs, or leave out metadata.hosts to run it on every host"]
        );
        assert_eq!(
            problems_of(&[("v.yaml", &doc("{matchLabels: {}}"))]),
            ["5:24: metadata.hosts.matchLabels: matchLabels is empty: leave out metadata.hosts to run the object on every host"]
        );
        let bad = problems_of(&[("v.yaml", &doc("{matchLabels: {\"-x\": \"a b\"}}"))]);
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert!(
            bad[0].contains("metadata.hosts.matchLabels.-x: \"-x\" is not a valid label key"),
            "{bad:?}"
        );
        assert!(
            bad[1].contains("\"a b\" is not a valid label value"),
            "{bad:?}"
        );
        let bad = problems_of(&[("v.yaml", &doc("[\"web[12]\", \"\"]"))]);
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert!(
            bad[0].contains("metadata.hosts[0]: \"web[12]\" is not a hostname glob"),
            "{bad:?}"
        );
        assert!(
            bad[1].contains("metadata.hosts[1]: the glob is empty"),
            "{bad:?}"
        );
        let bad = problems_of(&[("v.yaml", &doc("{matchLabel: {role: db}}"))]);
        assert!(
            bad.iter()
                .any(|p| p.contains("did you mean \"matchLabels\"")),
            "{bad:?}"
        );
        let bad = problems_of(&[("v.yaml", &doc("web1"))]);
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert!(
            bad[0].contains("metadata.hosts: expected a list or a mapping, found a string"),
            "{bad:?}"
        );
    }

    #[test]
    fn selectors_that_never_share_a_host_are_told_apart() {
        let edge = labels(&[("role", "edge")]);
        let db = labels(&[("role", "db")]);
        let zone = labels(&[("zone", "a")]);
        assert!(!may_share_a_host(Some(&edge), Some(&db)));
        assert!(may_share_a_host(Some(&edge), Some(&zone)));
        assert!(may_share_a_host(Some(&edge), None));
        assert!(!may_share_a_host(
            Some(&globs(&["web-*"])),
            Some(&globs(&["db*"]))
        ));
        assert!(may_share_a_host(
            Some(&globs(&["web-*"])),
            Some(&globs(&["*-1"]))
        ));
        assert!(may_share_a_host(
            Some(&globs(&["w?b"])),
            Some(&globs(&["*b"]))
        ));
        assert!(!may_share_a_host(
            Some(&globs(&["w?b"])),
            Some(&globs(&["*bc"]))
        ));
        let named = labels(&[("hostname", "db1")]);
        assert!(may_share_a_host(Some(&named), Some(&globs(&["db*"]))));
        assert!(!may_share_a_host(Some(&named), Some(&globs(&["web-*"]))));
        assert!(may_share_a_host(Some(&edge), Some(&globs(&["web-*"]))));
    }

    #[test]
    fn objects_no_host_runs_together_may_publish_one_port() {
        let web = |name: &str, hosts: &str| {
            format!("apiVersion: berth/v1\nkind: Container\nmetadata:\n  name: {name}\n  hosts: {hosts}\nspec:\n  image: busybox\n  ports: [{{containerPort: 80, hostPort: 8080}}]\n")
        };
        assert!(problems_of(&[
            ("a.yaml", &web("a", "[web-a]")),
            ("b.yaml", &web("b", "[web-b]"))
        ])
        .is_empty());
        let clash = problems_of(&[
            ("a.yaml", &web("a", "[web-*]")),
            ("b.yaml", &web("b", "[web-b]")),
        ]);
        assert_eq!(clash.len(), 1, "{clash:?}");
        assert!(
            clash[0].contains("host port 8080/tcp is already published"),
            "{clash:?}"
        );
    }
}
