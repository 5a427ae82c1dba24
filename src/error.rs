//! Error reports: an error and its causes, each said once.
//!
//! Error types in this crate keep their own message apart from their cause (`#[source]`), so
//! that a cause is never printed twice; [`Report`] joins the chain for people to read.

use std::fmt;

/// Displays an error followed by each of its causes: `outer: inner: innermost`.
///
/// A cause whose text the message so far already ends with is left out, for third-party errors
/// that also embed their cause in their own message.
pub struct Report<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&chain(self.0))
    }
}

/// The text of [`Report`].
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    // Some decoders end their messages with a line break; a record's message is one line.
    let mut text = error.to_string().trim_end().to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let part = inner.to_string().trim_end().to_string();
        if !part.is_empty() && !text.ends_with(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read model manifest m/model.toml")]
    struct Outer {
        #[source]
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("wrapper: {0}")]
    struct Embedding(#[source] std::io::Error);

    #[test]
    fn each_cause_is_said_once() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let expected = format!("cannot read model manifest m/model.toml: {io}");
        assert_eq!(chain(&Outer { source: io }), expected);
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let text = chain(&Embedding(io));
        assert_eq!(text.matches("not found").count(), 1, "{text}");
    }
}
