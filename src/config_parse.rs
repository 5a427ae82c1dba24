//! Helpers for the stage configuration sections, so that every error names the key at fault.
//!
//! Sections with a `kind` (source, backend, sink) are split by hand rather than with serde's
//! internally tagged enums, which buffer the section and lose the path of a bad key.

use serde::de::DeserializeOwned;

/// Removes and returns the `kind` of a `[section]`.
pub fn take_kind(section: &str, table: &mut toml::Table) -> Result<String, String> {
    match table.remove("kind") {
        Some(toml::Value::String(kind)) => Ok(kind),
        Some(other) => Err(format!("`{section}.kind` must be a string, got {other}")),
        None => Err(format!("`{section}` needs a `kind`")),
    }
}

/// The error for a `kind` that is none of `known`.
pub fn unknown_kind(section: &str, kind: &str, known: &[&str]) -> String {
    format!(
        "`{section}.kind`: unknown variant `{kind}`, expected one of {}",
        known
            .iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Deserialises the rest of a section, naming the failing key as `section.key`.
pub fn parse_section<T: DeserializeOwned>(section: &str, table: toml::Table) -> Result<T, String> {
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
        let path = e.path().to_string();
        let key = if path == "." {
            section.to_string()
        } else {
            format!("{section}.{path}")
        };
        format!("`{key}`: {}", e.into_inner())
    })
}

/// Deserialises a string that must not be empty (a device path, say).
pub fn non_empty<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let text = <String as serde::Deserialize>::deserialize(deserializer)?;
    if text.trim().is_empty() {
        return Err(serde::de::Error::custom("must not be empty"));
    }
    Ok(text)
}

/// serde's names of number types, in the words a configuration's reader uses.
pub fn plain_words(message: &str) -> String {
    const WORDS: [(&str, &str); 14] = [
        (
            "expected a nonzero u8",
            "expected a whole number of at least 1",
        ),
        (
            "expected a nonzero u16",
            "expected a whole number of at least 1",
        ),
        (
            "expected a nonzero u32",
            "expected a whole number of at least 1",
        ),
        (
            "expected a nonzero u64",
            "expected a whole number of at least 1",
        ),
        (
            "expected a nonzero usize",
            "expected a whole number of at least 1",
        ),
        ("expected usize", "expected a whole number (0 or more)"),
        ("expected u64", "expected a whole number (0 or more)"),
        ("expected u32", "expected a whole number (0 or more)"),
        ("expected u16", "expected a whole number (0 or more)"),
        ("expected u8", "expected a whole number (0 or more)"),
        ("expected i64", "expected a whole number"),
        ("expected i32", "expected a whole number"),
        ("expected f32", "expected a number"),
        ("expected f64", "expected a number"),
    ];
    let mut text = message.to_string();
    for (serde, plain) in WORDS {
        text = text.replace(serde, plain);
    }
    text
}

/// Where in `text` the key `path` (`source.camera[0].fps`, as errors name it) is: the span of
/// its value, or of the table when the key is not there. `unknown` names a key that the
/// message says is not allowed, to point at it instead of its table.
pub fn locate(text: &str, path: &str, unknown: Option<&str>) -> Option<std::ops::Range<usize>> {
    let document = toml_edit::ImDocument::parse(text).ok()?;
    let mut item = document.as_item();
    let mut span = None;
    let segments: Vec<&str> = path.split('.').filter(|s| !s.is_empty()).collect();
    for segment in segments {
        let (key, index) = match segment.split_once('[') {
            Some((key, rest)) => (key, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (segment, None),
        };
        let Some(next) = item.get(key) else { break };
        item = next;
        if let Some(found) = item.span() {
            span = Some(found);
        } else if let Some(table) = item.as_table_like() {
            span = table.key(key).and_then(|k| k.span()).or(span);
        }
        if let Some(index) = index {
            let Some(next) = item.get(index) else { break };
            item = next;
            span = item.span().or(span);
        }
    }
    // A key that is not allowed: point at the key itself.
    if let Some(key) = unknown {
        if let Some(found) = item.as_table_like().and_then(|t| t.key(key)?.span()) {
            span = Some(found);
        }
    }
    span
}

/// A message pointing at `span` of `text`, in the form of toml's own errors.
pub fn point_at(text: &str, span: std::ops::Range<usize>, message: &str) -> String {
    let start = span.start.min(text.len());
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let line_number = text[..start].matches('\n').count() + 1;
    let column = text[line_start..start].chars().count() + 1;
    let width = text[start..span.end.clamp(start, line_end)]
        .chars()
        .count()
        .max(1);
    let gutter = " ".repeat(line_number.to_string().len());
    format!(
        "TOML parse error at line {line_number}, column {column}\n{gutter} |\n{line_number} | {}\n{gutter} | {}{}\n{message}",
        &text[line_start..line_end],
        " ".repeat(column - 1),
        "^".repeat(width)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "[source]\nkind = \"v4l2\"\n\n[[source.camera]]\nid = \"a\"\nfps = \"x\"\n";

    #[test]
    fn keys_inside_sections_are_found() {
        let span = locate(TEXT, "source.camera[0].fps", None).expect("found");
        assert_eq!(&TEXT[span], "\"x\"");
        let span = locate(TEXT, "source", Some("kind")).expect("found");
        assert_eq!(&TEXT[span], "kind");
        let pointed = point_at(
            TEXT,
            locate(TEXT, "source.camera[0].fps", None).unwrap(),
            "m",
        );
        assert!(pointed.contains("line 6, column 7"), "{pointed}");
        assert!(pointed.contains("6 | fps = \"x\""), "{pointed}");
    }

    #[test]
    fn number_types_are_said_in_words() {
        assert_eq!(
            plain_words("invalid type: integer `-1`, expected usize"),
            "invalid type: integer `-1`, expected a whole number (0 or more)"
        );
    }
}
