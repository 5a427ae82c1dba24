//! What a fleet message must be before it reaches the gallery: small enough, well formed, of
//! our format, about the identity its topic names, and published in the lane of a board that
//! may speak of it. A broker ACL (docs/reid.md, "Each board in its own lane") keeps a board's
//! credentials to its own lane; this check keeps the lane and the payload honest with each
//! other, so that a board that may write only `gallery/a/#` cannot speak for board `b`.

use super::names;
use crate::gallery::fleet_merge::{FleetIdentity, FLEET_FORMAT};

/// The largest fleet message taken: 6 exemplars of 512 numbers are 17 kB of JSON, thumbnails
/// add tens of kB; a message far past that is not one of ours.
pub const MAX_MESSAGE: usize = 512 * 1024;
/// At most this many exemplars, of at most `MAX_DIM` numbers each.
const MAX_EXEMPLARS: usize = 16;
const MAX_DIM: usize = 4096;
/// Ids, names and board names longer than this are not ours.
const MAX_TEXT: usize = 256;

/// Why a message was ignored; its `reason` labels `edgevit_fleet_messages_ignored_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not JSON, or not a fleet message, or values no board sends (sizes, non-finite numbers).
    Malformed,
    /// Over [`MAX_MESSAGE`].
    Oversized,
    /// Published in the lane of a board that neither minted nor last changed the identity.
    Lane,
    /// The topic's last level is not the payload's id.
    Topic,
    /// A format this edgevit does not read.
    Format,
    /// Another model's identity (the gallery's own check).
    Model,
}

impl Refusal {
    /// Every reason, in the order of [`Refusal::index`].
    pub const ALL: [Refusal; 6] = [
        Refusal::Malformed,
        Refusal::Oversized,
        Refusal::Lane,
        Refusal::Topic,
        Refusal::Format,
        Refusal::Model,
    ];

    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Malformed => "malformed",
            Refusal::Oversized => "oversized",
            Refusal::Lane => "lane",
            Refusal::Topic => "topic",
            Refusal::Format => "format",
            Refusal::Model => "model",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// The message published on `<prefix>/gallery/<lane>/<id_level>`, or why it is refused.
pub fn check(lane: &str, id_level: &str, payload: &[u8]) -> Result<FleetIdentity, Refusal> {
    if payload.len() > MAX_MESSAGE {
        return Err(Refusal::Oversized);
    }
    let message: FleetIdentity = serde_json::from_slice(payload).map_err(|_| Refusal::Malformed)?;
    if !(1..=FLEET_FORMAT).contains(&message.format) {
        return Err(Refusal::Format);
    }
    let texts = [
        &message.id,
        &message.origin,
        &message.updated_by,
        &message.model,
    ];
    let text_ok = |t: &str| t.len() <= MAX_TEXT && !t.chars().any(char::is_control);
    if message.id.is_empty()
        || !texts.iter().all(|t| text_ok(t))
        || ![&message.name, &message.merged_into, &message.into_origin]
            .iter()
            .all(|t| t.as_deref().is_none_or(text_ok))
        || message.dim == 0
        || message.dim > MAX_DIM
        || message.all_exemplars().count() > MAX_EXEMPLARS
        || (message.all_exemplars())
            .any(|e| e.len() != message.dim || !e.iter().all(|v| v.is_finite()))
    {
        return Err(Refusal::Malformed);
    }
    if names::level(&message.id) != id_level {
        return Err(Refusal::Topic);
    }
    // A board publishes what it minted, what it last renamed, and its tombstones (whose
    // `updated_by` is the board that removed them).
    let speaks_for = |board: &str| !board.is_empty() && names::level(board) == lane;
    if !(speaks_for(&message.origin) || speaks_for(&message.updated_by)) {
        return Err(Refusal::Lane);
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn message() -> FleetIdentity {
        FleetIdentity {
            id: "id-a-000001".into(),
            origin: "a".into(),
            name: Some("alice".into()),
            model: "m".into(),
            dim: 4,
            created_ms: 1,
            updated_ms: 2,
            updated_by: "b".into(),
            exemplars: vec![vec![0.5; 4]],
            exemplars_f16: Vec::new(),
            removed: false,
            merged_into: None,
            into_origin: None,
            into_created_ms: None,
            thumbnails: Vec::new(),
            format: FLEET_FORMAT,
        }
    }

    fn bytes(m: &FleetIdentity) -> Vec<u8> {
        serde_json::to_vec(m).unwrap()
    }

    #[test]
    fn a_board_speaks_for_what_it_minted_or_renamed_only() {
        let m = message();
        // Minted by a, renamed by b: both lanes may carry it; c's may not.
        assert_eq!(check("a", "id-a-000001", &bytes(&m)), Ok(m.clone()));
        assert!(check("b", "id-a-000001", &bytes(&m)).is_ok());
        assert_eq!(check("c", "id-a-000001", &bytes(&m)), Err(Refusal::Lane));
        // A tombstone is spoken for by the board that removed it.
        let gone = FleetIdentity {
            origin: String::new(),
            updated_by: "c".into(),
            removed: true,
            exemplars: Vec::new(),
            exemplars_f16: Vec::new(),
            ..m.clone()
        };
        assert!(check("c", "id-a-000001", &bytes(&gone)).is_ok());
        assert_eq!(check("a", "id-a-000001", &bytes(&gone)), Err(Refusal::Lane));
        // The topic names the identity the payload is about.
        assert_eq!(check("a", "id-a-000002", &bytes(&m)), Err(Refusal::Topic));
    }

    #[test]
    fn bad_messages_are_refused_with_their_reason() {
        let m = message();
        let cases: Vec<(Vec<u8>, Refusal)> = vec![
            (b"not json".to_vec(), Refusal::Malformed),
            (b"{}".to_vec(), Refusal::Malformed),
            (vec![b' '; MAX_MESSAGE + 1], Refusal::Oversized),
            (
                bytes(&FleetIdentity {
                    format: FLEET_FORMAT + 1,
                    ..m.clone()
                }),
                Refusal::Format,
            ),
            (
                bytes(&FleetIdentity {
                    exemplars: vec![vec![0.5; 3]],
                    ..m.clone()
                }),
                Refusal::Malformed,
            ),
            (
                bytes(&FleetIdentity {
                    exemplars_f16: vec![vec![0.5; 5]],
                    ..m.clone()
                }),
                Refusal::Malformed,
            ),
            (
                bytes(&FleetIdentity {
                    exemplars: vec![vec![0.5; 4]; MAX_EXEMPLARS + 1],
                    ..m.clone()
                }),
                Refusal::Malformed,
            ),
            (
                bytes(&FleetIdentity {
                    name: Some("x\u{7}".into()),
                    ..m.clone()
                }),
                Refusal::Malformed,
            ),
            (
                bytes(&FleetIdentity {
                    id: String::new(),
                    ..m.clone()
                }),
                Refusal::Malformed,
            ),
        ];
        for (payload, refusal) in cases {
            assert_eq!(
                check("a", "id-a-000001", &payload).map(|_| ()),
                Err(refusal),
                "{}",
                String::from_utf8_lossy(&payload[..payload.len().min(80)])
            );
        }
        // A message without `format` is the first format (boards from before it existed),
        // whose f32 exemplars are still read.
        let mut old: serde_json::Value = serde_json::from_slice(&bytes(&m)).unwrap();
        old.as_object_mut().unwrap().remove("format");
        let read = check("a", "id-a-000001", &serde_json::to_vec(&old).unwrap()).unwrap();
        assert_eq!(read.all_exemplars().collect::<Vec<_>>(), [&vec![0.5; 4]]);
        // Format 2's f16 exemplars come back within f16's precision.
        let v: Vec<f32> = (0..4).map(|i| 0.1 + i as f32 / 7.0).collect();
        let f16s = FleetIdentity {
            exemplars: Vec::new(),
            exemplars_f16: vec![v.clone()],
            ..m.clone()
        };
        let read = check("a", "id-a-000001", &bytes(&f16s)).unwrap();
        let got = read.all_exemplars().next().unwrap();
        assert!(got
            .iter()
            .zip(&v)
            .all(|(a, b)| (a - b).abs() <= b.abs() / 1024.0));
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 512,
            failure_persistence: None,
            rng_algorithm: proptest::test_runner::RngAlgorithm::ChaCha,
            rng_seed: proptest::test_runner::RngSeed::Fixed(36),
            ..ProptestConfig::default()
        })]

        /// Any bytes: a refusal or a message, never a panic; what passes is within the limits.
        #[test]
        fn any_bytes_are_refused_or_within_the_limits(
            payload in proptest::collection::vec(any::<u8>(), 0..2048),
            lane in "[a-c]",
        ) {
            if let Ok(m) = check(&lane, "x", &payload) {
                prop_assert!(m.all_exemplars().count() <= MAX_EXEMPLARS && m.dim <= MAX_DIM);
            }
        }

        /// A real message with one byte changed: a refusal or a message that still keeps every
        /// rule (lane, topic, sizes).
        #[test]
        fn a_message_with_a_byte_changed_keeps_the_rules(at in 0usize..400, byte in any::<u8>()) {
            let mut payload = bytes(&message());
            let i = at % payload.len();
            payload[i] = byte;
            if let Ok(m) = check("a", "id-a-000001", &payload) {
                prop_assert_eq!(names::level(&m.id), "id-a-000001");
                prop_assert!(names::level(&m.origin) == "a" || names::level(&m.updated_by) == "a");
                prop_assert!(m.all_exemplars().all(|e| e.len() == m.dim));
            }
        }
    }
}
