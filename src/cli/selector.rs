//! Label selectors (`-l app=web,tier!=db,canary`), as kubectl reads them:
//! comma-separated terms that must all hold. And the choice every verb that
//! takes names or a selector makes between the two.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::engine::{ContainerRecord, Engine};
use crate::manifest::names::ContainerId;

/// One term of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    /// `key=value` (or `key==value`): the label is there with that value.
    Equals { key: String, value: String },
    /// `key!=value`: the label is missing or has another value (kubectl's
    /// meaning).
    NotEquals { key: String, value: String },
    /// `key`: the label is there, whatever its value.
    Exists { key: String },
    /// `!key`: the label is not there.
    Missing { key: String },
}

impl Term {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Term::Equals { key, value } => labels.get(key) == Some(value),
            Term::NotEquals { key, value } => labels.get(key) != Some(value),
            Term::Exists { key } => labels.contains_key(key),
            Term::Missing { key } => !labels.contains_key(key),
        }
    }
}

/// A parsed selector; it keeps the text it was given, to name it in
/// messages as the user wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    text: String,
    terms: Vec<Term>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    #[error("empty selector: give terms such as app=web, tier!=db or canary")]
    Empty,
    #[error("selector term {term:?}: {why}")]
    Malformed { term: String, why: &'static str },
    #[error("label {text:?}: {why}")]
    Label { text: String, why: &'static str },
}

impl Selector {
    /// Whether a container with these labels is selected: every term holds.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.terms.iter().all(|term| term.matches(labels))
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Selector {
    type Err = SelectorError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.trim().is_empty() {
            return Err(SelectorError::Empty);
        }
        let terms = text
            .split(',')
            .map(parse_term)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Selector {
            text: text.to_string(),
            terms,
        })
    }
}

/// Characters that end a key or cannot be part of a value: a term with them
/// in the wrong place is a typo (`app=web=x`, `app!==web`), not a label.
fn is_operator(c: char) -> bool {
    matches!(c, '=' | '!')
}

fn check_key(term: &str, key: &str) -> Result<String, SelectorError> {
    let malformed = |why| SelectorError::Malformed {
        term: term.to_string(),
        why,
    };
    if key.is_empty() {
        return Err(malformed("the label key is empty"));
    }
    if key.chars().any(|c| c.is_whitespace() || is_operator(c)) {
        return Err(malformed(
            "a label key has no spaces, '=' or '!' (terms are key=value, key!=value, key or !key)",
        ));
    }
    Ok(key.to_string())
}

fn check_value(term: &str, value: &str) -> Result<String, SelectorError> {
    if value.chars().any(is_operator) {
        return Err(SelectorError::Malformed {
            term: term.to_string(),
            why: "the value has '=' or '!' in it (terms are key=value, key!=value, key or !key)",
        });
    }
    Ok(value.to_string())
}

fn parse_term(raw: &str) -> Result<Term, SelectorError> {
    let term = raw.trim();
    if term.is_empty() {
        return Err(SelectorError::Malformed {
            term: raw.to_string(),
            why: "an empty term (two commas, or one at an end)",
        });
    }
    if let Some((key, value)) = term.split_once("!=") {
        return Ok(Term::NotEquals {
            key: check_key(term, key.trim())?,
            value: check_value(term, value.trim())?,
        });
    }
    if let Some((key, value)) = term.split_once('=') {
        // kubectl takes `==` for `=` too.
        let value = value.strip_prefix('=').unwrap_or(value);
        return Ok(Term::Equals {
            key: check_key(term, key.trim())?,
            value: check_value(term, value.trim())?,
        });
    }
    if let Some(key) = term.strip_prefix('!') {
        return Ok(Term::Missing {
            key: check_key(term, key.trim())?,
        });
    }
    Ok(Term::Exists {
        key: check_key(term, term)?,
    })
}

/// `KEY=VALUE` (or `KEY`, an empty value, as docker takes it) for `berth
/// run --label`.
pub fn parse_label(text: &str) -> Result<(String, String), SelectorError> {
    let (key, value) = text.split_once('=').unwrap_or((text, ""));
    let bad = |why| SelectorError::Label {
        text: text.to_string(),
        why,
    };
    if key.is_empty() {
        return Err(bad("the key is empty (KEY=VALUE)"));
    }
    if key
        .chars()
        .any(|c| c.is_whitespace() || c == '!' || c == ',')
    {
        return Err(bad(
            "a key has no spaces, '!' or ',' (selectors could not name it)",
        ));
    }
    if value.contains([',', '=', '!']) {
        return Err(bad(
            "a value has no ',', '=' or '!' (selectors could not name it)",
        ));
    }
    Ok((key.to_string(), value.to_string()))
}

/// Why no container was picked.
#[derive(Debug, thiserror::Error)]
pub enum PickError {
    #[error("no container matches {0}")]
    NoMatch(Selector),
}

/// The names of the containers a verb that changes them acts on: those
/// named, checked but not looked up (each is looked up as it is acted on,
/// so that `rm a b` removes `a` even when `b` is not there, as it always
/// did), or those whose labels match, by name. Taken under the state lock,
/// so that no apply adds or removes a match meanwhile.
pub fn chosen_ids(
    engine: &Engine,
    names: &[String],
    selector: Option<&Selector>,
) -> anyhow::Result<Vec<ContainerId>> {
    match selector {
        None => names
            .iter()
            .map(|name| Ok(ContainerId::parse(name)?))
            .collect(),
        Some(_) => Ok(pick(engine, names, selector)?
            .into_iter()
            .map(|record| record.id)
            .collect()),
    }
}

/// The containers a verb acts on: those named (in the order given), or
/// those whose labels match the selector (by name). Clap refuses both at
/// once (as kubectl does) and neither where names are required.
pub fn pick(
    engine: &Engine,
    names: &[String],
    selector: Option<&Selector>,
) -> anyhow::Result<Vec<ContainerRecord>> {
    let Some(selector) = selector else {
        return names
            .iter()
            .map(|name| Ok(engine.record(&ContainerId::parse(name)?)?))
            .collect();
    };
    let chosen: Vec<ContainerRecord> = engine
        .records()?
        .into_iter()
        .filter(|record| selector.matches(&record.labels))
        .collect();
    if chosen.is_empty() {
        return Err(PickError::NoMatch(selector.clone()).into());
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn selects(selector: &str, pairs: &[(&str, &str)]) -> bool {
        selector
            .parse::<Selector>()
            .expect("the selector parses")
            .matches(&labels(pairs))
    }

    #[test]
    fn equals_needs_the_label_with_that_value() {
        assert!(selects("app=web", &[("app", "web"), ("tier", "front")]));
        assert!(selects("app==web", &[("app", "web")]));
        assert!(!selects("app=web", &[("app", "db")]));
        assert!(!selects("app=web", &[]));
        assert!(selects("app=", &[("app", "")]));
    }

    #[test]
    fn not_equals_holds_for_another_value_or_no_label_as_in_kubectl() {
        assert!(selects("app!=web", &[("app", "db")]));
        assert!(selects("app!=web", &[]));
        assert!(!selects("app!=web", &[("app", "web")]));
    }

    #[test]
    fn a_bare_key_needs_the_label_and_a_negated_one_its_absence() {
        assert!(selects("canary", &[("canary", "")]));
        assert!(selects("canary", &[("canary", "yes")]));
        assert!(!selects("canary", &[("app", "web")]));
        assert!(selects("!canary", &[("app", "web")]));
        assert!(!selects("!canary", &[("canary", "1")]));
    }

    #[test]
    fn terms_and_together_and_spaces_around_them_are_ignored() {
        let web_front = [("app", "web"), ("tier", "front")];
        assert!(selects("app=web,tier=front", &web_front));
        assert!(selects(" app = web , tier ", &web_front));
        assert!(!selects("app=web,tier=back", &web_front));
        assert!(!selects("app=web,!tier", &web_front));
    }

    fn error(selector: &str) -> String {
        selector
            .parse::<Selector>()
            .expect_err("the selector is refused")
            .to_string()
    }

    #[test]
    fn a_malformed_term_is_refused_naming_it() {
        assert_eq!(
            error("app=web,,tier=x"),
            "selector term \"\": an empty term (two commas, or one at an end)"
        );
        assert_eq!(
            error("=web"),
            "selector term \"=web\": the label key is empty"
        );
        assert!(error("app=web=x").starts_with("selector term \"app=web=x\": the value"));
        assert!(error("app!==web").starts_with("selector term \"app!==web\""));
        assert!(error("a b").starts_with("selector term \"a b\": a label key"));
        assert!(error("!").starts_with("selector term \"!\": the label key is empty"));
        assert!(error("app=web,").contains("an empty term"));
        assert_eq!(
            error("  "),
            "empty selector: give terms such as app=web, tier!=db or canary"
        );
    }

    #[test]
    fn a_selector_is_shown_as_it_was_written() {
        let selector: Selector = "app=web, tier!=db".parse().unwrap();
        assert_eq!(selector.to_string(), "app=web, tier!=db");
        assert_eq!(
            PickError::NoMatch(selector).to_string(),
            "no container matches app=web, tier!=db"
        );
    }

    #[test]
    fn run_labels_take_key_value_or_a_bare_key() {
        assert_eq!(parse_label("app=web"), Ok(("app".into(), "web".into())));
        assert!(parse_label("a=b=c").is_err());
        assert_eq!(parse_label("canary"), Ok(("canary".into(), String::new())));
        assert!(parse_label("=web").is_err());
        assert!(parse_label("app=a,b").is_err());
        assert!(parse_label("a!b=c").is_err());
    }
}
