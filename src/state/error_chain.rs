//! An error and its causes, each said once: berth's errors (and those of
//! the crates under them) often repeat their source's text in their own.

use std::error::Error;

/// Each error of the chain's own message, skipping one that an earlier
/// message already contains (many errors repeat their source's text).
pub fn messages(error: &(dyn Error + 'static)) -> Vec<String> {
    let mut messages: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(current) = next {
        let message = current.to_string();
        if !messages.iter().any(|m| m.contains(&message)) {
            messages.push(message);
        }
        next = current.source();
    }
    messages
}
