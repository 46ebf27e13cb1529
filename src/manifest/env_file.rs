//! Env files (`envFrom` in a manifest, `env_file` in compose): `NAME=value`
//! lines, blank lines and `#` comments skipped, an optional `export `, one
//! pair of surrounding quotes taken off the value. One reading of them for
//! the engine (which gives them to containers) and for the exporters.

/// The variables of an env file's text, in order.
pub fn parse(text: &str) -> Vec<(String, String)> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<(String, String)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let line = line.strip_prefix("export ").unwrap_or(line);
    let (name, value) = line.split_once('=').unwrap_or((line, ""));
    let value = value.trim();
    let unquoted = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
        .unwrap_or(value);
    Some((name.trim().to_string(), unquoted.to_string()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn comments_export_and_quotes_are_read_as_the_engine_reads_them() {
        let text = "# a comment\n\nexport A=1\nB = \"two words\"\nC='x'\nD\nE=a=b\n";
        assert_eq!(
            super::parse(text),
            [
                ("A", "1"),
                ("B", "two words"),
                ("C", "x"),
                ("D", ""),
                ("E", "a=b")
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
    }
}
