//! A spooled publish: the topic and the payload in one spool entry.
//!
//! Framed by length: a marker byte (NUL; 1 for a retained publish, such as a snapshot), the
//! topic's length (u32, little-endian), the topic, then the payload. Earlier versions wrote the topic, a newline and the payload; such entries are
//! still read (a topic never starts with NUL, so the marker tells the two apart), but a topic
//! holding a newline would have been cut there, which the length prevents.

/// Marks the length-framed form; the second, a publish to retain.
const MARKER: u8 = 0;
const RETAINED: u8 = 1;
const HEADER: usize = 1 + 4;

/// The bytes of one spool entry for `payload`, serialised as JSON, under `topic`.
pub fn encode(topic: &str, payload: &impl serde::Serialize) -> Result<Vec<u8>, serde_json::Error> {
    let mut entry = header(MARKER, topic, 256);
    serde_json::to_writer(&mut entry, payload)?;
    Ok(entry)
}

/// The bytes of one spool entry publishing `payload` as it is, retained (a JPEG snapshot).
pub fn encode_retained(topic: &str, payload: &[u8]) -> Vec<u8> {
    let mut entry = header(RETAINED, topic, payload.len());
    entry.extend_from_slice(payload);
    entry
}

fn header(marker: u8, topic: &str, room: usize) -> Vec<u8> {
    let mut entry = Vec::with_capacity(HEADER + topic.len() + room);
    entry.push(marker);
    // A topic is at most MQTT's 65,535 bytes (names.rs); a u32 holds any `str` a spool takes.
    entry.extend_from_slice(&(topic.len() as u32).to_le_bytes());
    entry.extend_from_slice(topic.as_bytes());
    entry
}

/// Why an entry cannot be read back as a publish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("the entry is cut short: its topic length says {0} bytes, {1} are left")]
    Truncated(usize, usize),
    #[error("the entry has no topic (an old entry without a newline)")]
    NoTopic,
    #[error("the topic is not valid UTF-8")]
    NotUtf8,
}

/// A spool entry read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded<'a> {
    pub topic: &'a str,
    pub payload: &'a [u8],
    pub retain: bool,
}

/// A spool entry, in any of its forms, with whether it is to be retained.
pub fn decode_entry(entry: &[u8]) -> Result<Decoded<'_>, DecodeError> {
    let retain = entry.first() == Some(&RETAINED);
    let (topic, payload) = match entry.split_first() {
        Some((&MARKER | &RETAINED, rest)) => {
            let Some((len, rest)) = rest.split_first_chunk::<4>() else {
                return Err(DecodeError::Truncated(4, rest.len()));
            };
            let len = u32::from_le_bytes(*len) as usize;
            if len > rest.len() {
                return Err(DecodeError::Truncated(len, rest.len()));
            }
            rest.split_at(len)
        }
        _ => {
            let split = entry
                .iter()
                .position(|&b| b == b'\n')
                .ok_or(DecodeError::NoTopic)?;
            (&entry[..split], &entry[split + 1..])
        }
    };
    let topic = std::str::from_utf8(topic).map_err(|_| DecodeError::NotUtf8)?;
    Ok(Decoded {
        topic,
        payload,
        retain,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The topic and the payload of an entry.
    fn decode(entry: &[u8]) -> Result<(&str, &[u8]), DecodeError> {
        decode_entry(entry).map(|d| (d.topic, d.payload))
    }

    #[test]
    fn a_topic_with_a_newline_survives_the_round_trip() {
        let entry = encode("edgevit/door/cam\nA/result", &serde_json::json!({"seq": 1})).unwrap();
        let (topic, payload) = decode(&entry).unwrap();
        assert_eq!(topic, "edgevit/door/cam\nA/result");
        assert_eq!(payload, br#"{"seq":1}"#);
    }

    #[test]
    fn a_retained_entry_keeps_its_bytes_and_says_so() {
        let jpeg = [0xff, 0xd8, 0x00, 0x0a, 0xff, 0xd9];
        let entry = encode_retained("edgevit/door/door/snapshot/face", &jpeg);
        let decoded = decode_entry(&entry).unwrap();
        assert_eq!(decoded.topic, "edgevit/door/door/snapshot/face");
        assert_eq!(decoded.payload, jpeg);
        assert!(decoded.retain);
        let json = encode("t", &serde_json::json!({})).unwrap();
        assert!(!decode_entry(&json).unwrap().retain);
    }

    #[test]
    fn entries_of_earlier_versions_are_read() {
        let (topic, payload) = decode(b"edgevit/door/cam0/result\n{\"seq\":1}\n").unwrap();
        assert_eq!(topic, "edgevit/door/cam0/result");
        assert_eq!(payload, b"{\"seq\":1}\n");
        assert_eq!(decode(b"no topic"), Err(DecodeError::NoTopic));
    }

    proptest::proptest! {
        /// Any topic (newlines, NUL, anything) comes back whole; any bytes decode or say why.
        #[test]
        fn any_topic_round_trips_and_any_bytes_decode_or_fail(
            topic in ".*",
            seq in 0u64..1000,
            noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
        ) {
            let entry = encode(&topic, &serde_json::json!({ "seq": seq })).unwrap();
            let (back, payload) = decode(&entry).unwrap();
            proptest::prop_assert_eq!(back, topic.as_str());
            let value: serde_json::Value = serde_json::from_slice(payload).unwrap();
            proptest::prop_assert_eq!(value["seq"].as_u64(), Some(seq));
            let _ = decode(&noise);
        }
    }

    #[test]
    fn damaged_entries_say_why() {
        assert!(matches!(decode(&[0, 1]), Err(DecodeError::Truncated(..))));
        assert!(matches!(
            decode(&[0, 200, 0, 0, 0, b'a']),
            Err(DecodeError::Truncated(200, 1))
        ));
        assert_eq!(decode(&[0, 1, 0, 0, 0, 0xff]), Err(DecodeError::NotUtf8));
        assert_eq!(decode(b"\xff\n{}"), Err(DecodeError::NotUtf8));
    }
}
