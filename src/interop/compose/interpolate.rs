//! Compose's variable interpolation, done on the YAML tree before any field
//! is read as a type (as compose does): `${VAR}`, `$VAR`, `${VAR:-default}`,
//! `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`, `${VAR:+other}`,
//! `${VAR+other}` and `$$` for a literal `$`. Values come from the process
//! environment, then from the `.env` file beside the compose file (the
//! environment wins, as in compose).

use std::collections::BTreeMap;

/// Where variables come from: the process environment first, then `.env`.
#[derive(Debug, Clone, Default)]
pub struct Variables {
    pub environment: BTreeMap<String, String>,
    pub dotenv: BTreeMap<String, String>,
}

impl Variables {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.environment
            .get(name)
            .or_else(|| self.dotenv.get(name))
            .map(String::as_str)
    }
}

/// Why a string could not be interpolated; the caller adds file and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterpolationProblem {
    /// The variable at fault, when one is.
    pub variable: Option<String>,
    pub message: String,
}

/// A string after interpolation, with the variables it used that were not set
/// (compose warns about each and uses an empty string).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interpolated {
    pub text: String,
    pub unset: Vec<String>,
}

pub fn interpolate(text: &str, vars: &Variables) -> Result<Interpolated, InterpolationProblem> {
    let mut unset = Vec::new();
    let text = expand(text, vars, &mut unset)?;
    Ok(Interpolated { text, unset })
}

fn invalid(message: String) -> InterpolationProblem {
    InterpolationProblem {
        variable: None,
        message,
    }
}

fn expand(
    text: &str,
    vars: &Variables,
    unset: &mut Vec<String>,
) -> Result<String, InterpolationProblem> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('{') {
            let close = matching_brace(inner).ok_or_else(|| {
                invalid(format!(
                    "unclosed \"${{\" in {text:?} (write $$ for a literal dollar sign)"
                ))
            })?;
            out.push_str(&expand_braced(&inner[..close], vars, unset)?);
            rest = &inner[close + 1..];
        } else {
            let name = leading_name(after);
            if name.is_empty() {
                return Err(invalid(format!(
                    "a \"$\" that starts no variable in {text:?} (write $$ for a literal dollar sign)"
                )));
            }
            out.push_str(&lookup(name, vars, unset));
            rest = &after[name.len()..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The index of the `}` that closes a `${` whose body starts `inner`,
/// stepping over nested `${...}` and `$$`.
fn matching_brace(inner: &str) -> Option<usize> {
    let bytes = inner.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'$') => i += 1,
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// A variable name: a letter or `_`, then letters, digits and `_`.
fn leading_name(text: &str) -> &str {
    let end = text
        .char_indices()
        .find(|&(i, c)| !(c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
        .map_or(text.len(), |(i, _)| i);
    &text[..end]
}

fn lookup(name: &str, vars: &Variables, unset: &mut Vec<String>) -> String {
    match vars.get(name) {
        Some(value) => value.to_string(),
        None => {
            if !unset.iter().any(|u| u == name) {
                unset.push(name.to_string());
            }
            String::new()
        }
    }
}

/// The body of `${...}`: a name and an optional operator with its word.
fn expand_braced(
    body: &str,
    vars: &Variables,
    unset: &mut Vec<String>,
) -> Result<String, InterpolationProblem> {
    let name = leading_name(body);
    if name.is_empty() {
        return Err(invalid(format!("\"${{{body}}}\" names no variable")));
    }
    let operator = &body[name.len()..];
    let value = vars.get(name);
    let set_and_not_empty = value.is_some_and(|v| !v.is_empty());
    let missing = |word: &str, unset: &mut Vec<String>, nonempty: bool| {
        let detail = expand(word, vars, unset)?;
        let what = if nonempty {
            "is not set or empty"
        } else {
            "is not set"
        };
        Err(InterpolationProblem {
            variable: Some(name.to_string()),
            message: if detail.is_empty() {
                format!("required variable {name} {what}")
            } else {
                format!("required variable {name} {what}: {detail}")
            },
        })
    };
    if operator.is_empty() {
        return Ok(lookup(name, vars, unset));
    }
    if let Some(word) = operator.strip_prefix(":-") {
        return match value {
            Some(v) if !v.is_empty() => Ok(v.to_string()),
            _ => expand(word, vars, unset),
        };
    }
    if let Some(word) = operator.strip_prefix(":?") {
        return match value {
            Some(v) if set_and_not_empty => Ok(v.to_string()),
            _ => missing(word, unset, true),
        };
    }
    if let Some(word) = operator.strip_prefix(":+") {
        return if set_and_not_empty {
            expand(word, vars, unset)
        } else {
            Ok(String::new())
        };
    }
    if let Some(word) = operator.strip_prefix('-') {
        return match value {
            Some(v) => Ok(v.to_string()),
            None => expand(word, vars, unset),
        };
    }
    if let Some(word) = operator.strip_prefix('?') {
        return match value {
            Some(v) => Ok(v.to_string()),
            None => missing(word, unset, false),
        };
    }
    if let Some(word) = operator.strip_prefix('+') {
        return match value {
            Some(_) => expand(word, vars, unset),
            None => Ok(String::new()),
        };
    }
    Err(InterpolationProblem {
        variable: Some(name.to_string()),
        message: format!(
            "\"${{{body}}}\" is not a substitution compose knows (:-, -, :?, ?, :+, +)"
        ),
    })
}

/// A problem in a `.env` file, at its 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DotenvProblem {
    pub line: usize,
    pub problem: InterpolationProblem,
}

/// Reads a `.env` file as compose does: `NAME=value` lines, `#` comments,
/// an optional `export `, single-quoted values taken literally, double-quoted
/// and bare ones interpolated from the environment and the lines before.
pub fn parse_dotenv(
    text: &str,
    environment: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, DotenvProblem> {
    let mut vars = Variables {
        environment: environment.clone(),
        dotenv: BTreeMap::new(),
    };
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((name, value)) = line.split_once('=') else {
            // A bare NAME takes its value from the environment: nothing to add.
            continue;
        };
        let value = dotenv_value(value.trim(), &vars).map_err(|problem| DotenvProblem {
            line: index + 1,
            problem,
        })?;
        vars.dotenv.insert(name.trim().to_string(), value);
    }
    Ok(vars.dotenv)
}

fn dotenv_value(value: &str, vars: &Variables) -> Result<String, InterpolationProblem> {
    if let Some(quoted) = value.strip_prefix('\'') {
        return Ok(quoted.split('\'').next().unwrap_or("").to_string());
    }
    if let Some(quoted) = value.strip_prefix('"') {
        let mut body = String::new();
        let mut chars = quoted.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => match chars.next() {
                    Some('n') => body.push('\n'),
                    Some(other) => body.push(other),
                    None => body.push('\\'),
                },
                c => body.push(c),
            }
        }
        return interpolate(&body, vars).map(|i| i.text);
    }
    let bare = value.split(" #").next().unwrap_or(value).trim_end();
    interpolate(bare, vars).map(|i| i.text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Variables {
        let mut environment = BTreeMap::new();
        environment.insert("TAG".to_string(), "1.25".to_string());
        environment.insert("EMPTY".to_string(), String::new());
        environment.insert("PORT".to_string(), "8080".to_string());
        let mut dotenv = BTreeMap::new();
        dotenv.insert("PORT".to_string(), "9999".to_string());
        dotenv.insert("DB_USER".to_string(), "shop".to_string());
        Variables {
            environment,
            dotenv,
        }
    }

    fn text(template: &str) -> String {
        interpolate(template, &vars()).unwrap().text
    }

    #[test]
    fn braced_and_bare_variables_expand() {
        assert_eq!(text("nginx:${TAG}"), "nginx:1.25");
        assert_eq!(text("nginx:$TAG-alpine"), "nginx:1.25-alpine");
        assert_eq!(text("$DB_USER@db"), "shop@db");
    }

    #[test]
    fn the_environment_wins_over_dotenv() {
        assert_eq!(text("${PORT}"), "8080");
    }

    #[test]
    fn a_double_dollar_is_a_literal_dollar() {
        assert_eq!(text("echo $$HOME $${TAG}"), "echo $HOME ${TAG}");
    }

    #[test]
    fn colon_dash_defaults_when_unset_or_empty_and_dash_only_when_unset() {
        assert_eq!(text("${NOPE:-d}"), "d");
        assert_eq!(text("${EMPTY:-d}"), "d");
        assert_eq!(text("${NOPE-d}"), "d");
        assert_eq!(text("${EMPTY-d}"), "");
        assert_eq!(text("${TAG:-d}"), "1.25");
    }

    #[test]
    fn defaults_may_hold_variables() {
        assert_eq!(text("${NOPE:-${DB_USER}-x}"), "shop-x");
        assert_eq!(text("${NOPE:-a{b}"), "a{b");
    }

    #[test]
    fn plus_substitutes_only_when_set() {
        assert_eq!(text("${TAG:+set}"), "set");
        assert_eq!(text("${EMPTY:+set}"), "");
        assert_eq!(text("${EMPTY+set}"), "set");
        assert_eq!(text("${NOPE+set}"), "");
    }

    #[test]
    fn required_variables_fail_naming_the_variable_and_the_message() {
        let error = interpolate("${DB_PASSWORD:?set it in .env}", &vars()).unwrap_err();
        assert_eq!(error.variable.as_deref(), Some("DB_PASSWORD"));
        assert!(error.message.contains("DB_PASSWORD"), "{error:?}");
        assert!(error.message.contains("set it in .env"), "{error:?}");
        let empty = interpolate("${EMPTY:?}", &vars()).unwrap_err();
        assert!(empty.message.contains("not set or empty"), "{empty:?}");
        assert_eq!(text("${EMPTY?x}"), "");
        assert!(interpolate("${NOPE?x}", &vars()).is_err());
    }

    #[test]
    fn unset_variables_become_empty_and_are_reported_once() {
        let result = interpolate("$NOPE/${NOPE}/${OTHER}", &vars()).unwrap();
        assert_eq!(result.text, "//");
        assert_eq!(result.unset, vec!["NOPE".to_string(), "OTHER".to_string()]);
    }

    #[test]
    fn malformed_templates_are_errors() {
        for bad in ["${", "cost: 5$", "$1", "${}", "${TAG!x}", "${A:-${B}"] {
            assert!(interpolate(bad, &vars()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn dotenv_reads_quotes_comments_export_and_earlier_lines() {
        let mut environment = BTreeMap::new();
        environment.insert("HOST".to_string(), "db".to_string());
        let text =
            "# comment\nexport A=1\nB='lit $A'\nC=\"x\\\"y $A\"\nD=${HOST}:$A # trailing\n\nE\n";
        let parsed = parse_dotenv(text, &environment).unwrap();
        assert_eq!(parsed["A"], "1");
        assert_eq!(parsed["B"], "lit $A");
        assert_eq!(parsed["C"], "x\"y 1");
        assert_eq!(parsed["D"], "db:1");
        assert!(!parsed.contains_key("E"));
        let error = parse_dotenv("A=1\nB=${X:?needed}\n", &environment).unwrap_err();
        assert_eq!(error.line, 2);
        assert_eq!(error.problem.variable.as_deref(), Some("X"));
    }
}
