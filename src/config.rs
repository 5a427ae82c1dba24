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
