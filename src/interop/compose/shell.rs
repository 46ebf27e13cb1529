//! Splits compose's string form of `command` and `entrypoint` into words, as
//! compose does (shell-like quoting, no expansion).

/// The words of `text`: whitespace separates, single quotes keep everything,
/// double quotes keep all but `\"`, `\\` and `\$` escapes, a backslash
/// outside quotes escapes the next character. `Err` names an unclosed quote.
pub fn split(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(format!("unclosed single quote in {text:?}")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err(format!("unclosed double quote in {text:?}")),
                        },
                        Some(c) => word.push(c),
                        None => return Err(format!("unclosed double quote in {text:?}")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(next) = chars.next() {
                    word.push(next);
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn words_split_on_whitespace_and_quotes_group() {
        assert_eq!(
            split("bundle exec  thin -p 3000").unwrap(),
            ["bundle", "exec", "thin", "-p", "3000"]
        );
        assert_eq!(
            split(r#"sh -c 'echo "hi there"' "a \"b\"" c\ d ''"#).unwrap(),
            ["sh", "-c", "echo \"hi there\"", "a \"b\"", "c d", ""]
        );
    }

    #[test]
    fn unclosed_quotes_are_errors() {
        assert!(split("sh -c 'oops").is_err());
        assert!(split("sh -c \"oops").is_err());
    }
}
