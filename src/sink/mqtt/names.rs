//! The names that end up in MQTT topics, checked in one place.
//!
//! A topic that the client or the broker refuses is not a transient error: rumqttc refuses a
//! wildcard in a topic as if its queue were full, Mosquitto drops the connection of a client
//! that publishes a control character, and a spooled result under such a topic would be retried
//! for ever. So names from the configuration (`sink.prefix`, `sink.device`, camera ids,
//! `sink.discovery.prefix`) are refused when the file is read, naming the key; a topic built at
//! run time is checked once more before it is published ([`check_topic`]), and one that fails
//! is set aside instead of blocking the spool.
//!
//! The rules are MQTT 3.1.1's (section 4.7) plus what Mosquitto enforces: valid UTF-8 (a
//! `String` is), no NUL, no wildcard (`+`, `#`) in a topic name, at most 65,535 bytes; and no
//! control characters (U+0001-U+001F, U+007F-U+009F), which the specification discourages and
//! Mosquitto refuses. `/` separates levels: a device or camera id is one level, so it may not
//! hold one; the prefix may have several levels, none of them empty. Topics starting with `$`
//! are the broker's own (`$SYS`): a prefix may not start with one.

/// MQTT's limit on a topic, in bytes (a two-byte length in the packet).
pub const MAX_TOPIC_BYTES: usize = 65_535;

/// Names of one level are kept well under the topic limit, so that a whole topic fits.
pub const MAX_LEVEL_BYTES: usize = 256;

/// Why a name cannot be part of a topic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("must not be empty")]
    Empty,
    #[error("{0:?} holds {1}, which MQTT topics cannot carry")]
    Forbidden(String, &'static str),
    #[error("{0:?} is {1} bytes long; at most {2} are allowed")]
    TooLong(String, usize, usize),
    #[error("{0:?} has an empty topic level (a leading, doubled or trailing `/`)")]
    EmptyLevel(String),
    #[error("{0:?} starts with `$`, which marks the broker's own topics ($SYS)")]
    Reserved(String),
}

/// What in `c` makes it unfit for any topic, if anything.
fn forbidden(c: char) -> Option<&'static str> {
    match c {
        '\0' => Some("a NUL character"),
        '\n' | '\r' => Some("a line break"),
        '+' | '#' => Some("an MQTT wildcard (`+` or `#`)"),
        c if c.is_control() => Some("a control character"),
        _ => None,
    }
}

/// A name that is one topic level: a device or a camera id.
pub fn check_level(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_LEVEL_BYTES {
        return Err(NameError::TooLong(name.into(), name.len(), MAX_LEVEL_BYTES));
    }
    for c in name.chars() {
        if c == '/' {
            return Err(NameError::Forbidden(
                name.into(),
                "`/`, which would add a topic level",
            ));
        }
        if let Some(what) = forbidden(c) {
            return Err(NameError::Forbidden(name.into(), what));
        }
    }
    Ok(())
}

/// A prefix: one or more levels (`edgevit`, `site/edgevit`); a trailing `/` is ignored.
pub fn check_prefix(prefix: &str) -> Result<(), NameError> {
    let trimmed = prefix.strip_suffix('/').unwrap_or(prefix);
    if trimmed.is_empty() {
        return Err(NameError::Empty);
    }
    if trimmed.starts_with('$') {
        return Err(NameError::Reserved(prefix.into()));
    }
    if trimmed.split('/').any(str::is_empty) {
        return Err(NameError::EmptyLevel(prefix.into()));
    }
    for level in trimmed.split('/') {
        check_level(level).map_err(|e| match e {
            NameError::Forbidden(_, what) => NameError::Forbidden(prefix.into(), what),
            NameError::TooLong(_, len, max) => NameError::TooLong(prefix.into(), len, max),
            other => other,
        })?;
    }
    Ok(())
}

/// A whole topic about to be published: what the client and the broker will accept.
pub fn check_topic(topic: &str) -> Result<(), NameError> {
    if topic.is_empty() {
        return Err(NameError::Empty);
    }
    if topic.len() > MAX_TOPIC_BYTES {
        return Err(NameError::TooLong(
            topic.chars().take(64).collect(),
            topic.len(),
            MAX_TOPIC_BYTES,
        ));
    }
    match topic.chars().find_map(forbidden) {
        Some(what) => Err(NameError::Forbidden(topic.into(), what)),
        None => Ok(()),
    }
}

/// A name from elsewhere than the configuration (one the checks above did not see) made into
/// one topic level: `/`, wildcards and control characters become `_`, an empty name `_`.
pub fn level(name: &str) -> String {
    if name.is_empty() {
        return "_".into();
    }
    name.chars()
        .map(|c| {
            if c == '/' || forbidden(c).is_some() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_refuse_what_breaks_a_topic() {
        for good in ["door", "cam0", "Küche-1", "a b", "x.y_z"] {
            assert_eq!(check_level(good), Ok(()), "{good:?}");
        }
        for (bad, what) in [
            ("door+1", "wildcard"),
            ("edge#vit", "wildcard"),
            ("cam\nA", "line break"),
            ("cam\rA", "line break"),
            ("a\0b", "NUL"),
            ("a\tb", "control"),
            ("a\u{7f}b", "control"),
            ("door/1", "`/`"),
        ] {
            let err = check_level(bad).unwrap_err().to_string();
            assert!(err.contains(what), "{bad:?}: {err}");
        }
        assert_eq!(check_level(""), Err(NameError::Empty));
        let long = "x".repeat(MAX_LEVEL_BYTES + 1);
        assert!(matches!(check_level(&long), Err(NameError::TooLong(..))));
    }

    #[test]
    fn prefixes_may_have_levels_but_no_empty_ones() {
        for good in ["edgevit", "edgevit/", "site/edgevit", "a/b/c"] {
            assert_eq!(check_prefix(good), Ok(()), "{good:?}");
        }
        assert_eq!(check_prefix(""), Err(NameError::Empty));
        assert_eq!(check_prefix("/"), Err(NameError::Empty));
        assert!(matches!(
            check_prefix("a//b"),
            Err(NameError::EmptyLevel(_))
        ));
        assert!(matches!(check_prefix("/a"), Err(NameError::EmptyLevel(_))));
        assert!(matches!(check_prefix("$SYS"), Err(NameError::Reserved(_))));
        let err = check_prefix("site/edge#vit").unwrap_err().to_string();
        assert!(
            err.contains("\"site/edge#vit\"") && err.contains("wildcard"),
            "{err}"
        );
    }

    #[test]
    fn topics_are_checked_whole() {
        assert_eq!(check_topic("edgevit/door/cam0/result"), Ok(()));
        assert!(check_topic("edgevit/door+1/cam0/result").is_err());
        assert!(check_topic("edgevit/door/cam\nA/result").is_err());
        assert!(check_topic("").is_err());
        let long = "x".repeat(MAX_TOPIC_BYTES + 1);
        assert!(matches!(check_topic(&long), Err(NameError::TooLong(..))));
        assert_eq!(check_topic(&"x".repeat(MAX_TOPIC_BYTES)), Ok(()));
    }

    #[test]
    fn levels_made_at_run_time_are_escaped() {
        assert_eq!(level("cam/1#"), "cam_1_");
        assert_eq!(level("cam\nA"), "cam_A");
        assert_eq!(level(""), "_");
        for name in ["a+b", "\0", "x\u{1b}y", "é/ü"] {
            assert_eq!(check_level(&level(name)), Ok(()), "{name:?}");
        }
    }
}
