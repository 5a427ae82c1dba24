//! Several boards agreeing on who is who, through the MQTT broker they already use (no
//! coordinator of our own).
//!
//! Each board publishes, retained, one message per confirmed identity it minted (or renamed
//! last), and one per identity it forgot or merged (a tombstone), on
//! `<prefix>/gallery/<device>/<id>`: one board speaks for each id.
//! Every board subscribes to `<prefix>/gallery/#` and merges what the others publish:
//! - an unknown identity is stored with its id, name and exemplars, so the person is
//!   recognised with the same id here;
//! - an identity that matches one of ours (two boards minted the same person before they heard
//!   of each other) makes the two one, and the **older** id is kept; the merge is said (a
//!   tombstone), so every board follows it even where its own views do not decide it;
//! - a name change applies when it is newer than the name we have (last writer wins);
//! - a tombstone removes the identity (forgotten), or joins it to the one it was merged into.
//!
//! Retained messages make a board that starts, or comes back, learn the fleet's state at once.
//! Any broker or cluster (Mosquitto bridges, EMQX) carries them unchanged.

use super::index::FlatIndex;
use super::store::Tombstone;
use super::{now_ms, writing, Gallery, GalleryError, Identity};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

/// A digest of what a message would say: equal digests, the same message.
fn fingerprint(what: &impl Hash) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    what.hash(&mut hasher);
    hasher.finish()
}

/// Exemplars sent with an identity: enough to recognise the person on another board, few
/// enough to keep a message small (512 numbers each: 1.4 kB of base64 f16s).
const SHARED_EXEMPLARS: usize = 6;

/// Why [`Gallery::apply_remote`] ignores another model's identity.
pub const ANOTHER_MODEL: &str = "another model's identity";

/// The fleet messages' format: a board ignores messages of a later one (`format` absent: 1).
/// 2: the exemplars as f16s (`exemplars_f16`); a board still reads format 1's f32s.
pub const FLEET_FORMAT: u32 = 2;

fn first_format() -> u32 {
    1
}

/// One retained message on `<prefix>/gallery/<device>/<id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetIdentity {
    pub id: String,
    /// The device that minted it.
    pub origin: String,
    pub name: Option<String>,
    /// The model and embedding size the exemplars come from: other models' are ignored.
    pub model: String,
    pub dim: usize,
    pub created_ms: i64,
    /// When the name last changed, and where.
    pub updated_ms: i64,
    pub updated_by: String,
    /// Format 1: unit-length embeddings, each as base64 of little-endian f32s.
    #[serde(
        default,
        with = "base64_vectors",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub exemplars: Vec<Vec<f32>>,
    /// Format 2: the same as little-endian f16s, half the bytes (no match decision changed
    /// on real embeddings: docs/engineering/fleet.md).
    #[serde(
        default,
        with = "base64_f16_vectors",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub exemplars_f16: Vec<Vec<f32>>,
    /// A tombstone: the identity was forgotten (`merged_into` absent) or merged.
    #[serde(default)]
    pub removed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<String>,
    /// A merge's kept identity as the merging board holds it (its origin and creation time),
    /// so that a board that has not heard of it yet takes it over exactly, not as its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub into_origin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub into_created_ms: Option<i64>,
    /// Its best thumbnails, only from a board with `[gallery] fleet_thumbnails` on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thumbnails: Vec<super::thumbnails::SharedThumbnail>,
    /// [`FLEET_FORMAT`].
    #[serde(default = "first_format")]
    pub format: u32,
}

impl FleetIdentity {
    /// The exemplars, whichever encoding carried them.
    pub fn all_exemplars(&self) -> impl Iterator<Item = &Vec<f32>> {
        self.exemplars.iter().chain(&self.exemplars_f16)
    }
}

/// Where a merged identity went, as far as this board knows.
#[derive(PartialEq)]
enum Destination {
    /// Into one held here (its key).
    Held(i64),
    /// Into an id not heard of yet.
    Unheard(String),
    /// Into one that was forgotten since.
    Forgotten,
}

/// What applying a message did (for logs and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Ignored(&'static str),
    Added(String),
    Renamed(String),
    /// One of ours was the same person, minted later: it now has the fleet's older id.
    Relabelled {
        from: String,
        to: String,
    },
    Removed(String),
    Merged {
        gone: String,
        into: String,
    },
}

impl Gallery {
    /// The messages this board publishes: its confirmed identities that it minted or last
    /// renamed, and its tombstones. Keyed by id; a tombstone replaces the identity's message.
    pub fn fleet_state(&self) -> Vec<FleetIdentity> {
        (self.fleet_changes(&HashMap::new()).into_iter())
            .map(|(message, _)| message)
            .collect()
    }

    /// The messages of [`Gallery::fleet_state`] whose content differs from what `published`
    /// (id -> fingerprint) says was sent, each with its new fingerprint. Only those are built:
    /// a look after one change costs a pass over the identities and exemplar ids, not the
    /// serialisation of every embedding (exemplar ids are never reused, so the ids say which
    /// embeddings a message would carry).
    pub fn fleet_changes(&self, published: &HashMap<String, u64>) -> Vec<(FleetIdentity, u64)> {
        let shared = self.index.rows_by_owner(SHARED_EXEMPLARS);
        let thumbnails = if self.config.fleet_thumbnails {
            self.store.thumbnail_ids().unwrap_or_default()
        } else {
            HashMap::new()
        };
        let mut out = Vec::new();
        let ours = (self.identities.values()).filter(|i| self.speaks_for(i));
        for identity in ours {
            let rows = shared.get(&identity.key).map_or(&[][..], Vec::as_slice);
            let pictures = thumbnails.get(&identity.key).map_or(&[][..], Vec::as_slice);
            let print = fingerprint(&(
                &identity.label,
                &identity.origin,
                &identity.name,
                identity.created_ms,
                identity.updated_ms,
                &identity.updated_by,
                rows.iter().map(|(row, _)| row).collect::<Vec<_>>(),
                pictures,
            ));
            if published.get(&identity.label) != Some(&print) {
                out.push((self.message(identity, rows), print));
            }
        }
        let by_label: HashMap<&str, &Identity> = (self.identities.values())
            .map(|i| (i.label.as_str(), i))
            .collect();
        for t in self.tombstones.values().filter(|t| t.by == self.device) {
            let into = t.merged_into.as_deref().and_then(|l| by_label.get(l));
            let into = into.map(|i| (i.origin.clone(), i.created_ms));
            let print = fingerprint(&(&t.label, &t.merged_into, t.ts_ms, &t.by, &into));
            if published.get(&t.label) == Some(&print) {
                continue;
            }
            out.push((self.tombstone_message(t, into), print));
        }
        out
    }

    /// Whether this board publishes `identity`: confirmed, and minted here and not renamed
    /// since, or last renamed here (one board per identity: the others hear the rename and
    /// yield).
    fn speaks_for(&self, identity: &Identity) -> bool {
        identity.confirmed && identity.updated_by == self.device
    }

    /// The ids [`Gallery::fleet_state`] speaks of (without building the messages): a retained
    /// message of ours about any other id is stale (expired, forgotten long ago, or now spoken
    /// for by the board that last renamed it) and is cleared.
    pub fn fleet_ids(&self) -> std::collections::HashSet<String> {
        let ours = (self.identities.values())
            .filter(|i| self.speaks_for(i))
            .map(|i| i.label.clone());
        let tombstones = (self.tombstones.values())
            .filter(|t| t.by == self.device)
            .map(|t| t.label.clone());
        ours.chain(tombstones).collect()
    }

    /// A tombstone's message; `into`: the kept identity's origin and creation time.
    fn tombstone_message(&self, t: &Tombstone, into: Option<(String, i64)>) -> FleetIdentity {
        let (into_origin, into_created_ms) = into.unzip();
        FleetIdentity {
            id: t.label.clone(),
            origin: String::new(),
            name: None,
            model: self.stamp.name.clone(),
            dim: self.stamp.dim,
            created_ms: 0,
            updated_ms: t.ts_ms,
            updated_by: t.by.clone(),
            exemplars: Vec::new(),
            exemplars_f16: Vec::new(),
            removed: true,
            merged_into: t.merged_into.clone(),
            into_origin,
            into_created_ms,
            thumbnails: Vec::new(),
            format: FLEET_FORMAT,
        }
    }

    /// An identity's message, with the exemplars at `rows` (gallery row, index position).
    fn message(&self, identity: &Identity, rows: &[(i64, usize)]) -> FleetIdentity {
        FleetIdentity {
            id: identity.label.clone(),
            origin: identity.origin.clone(),
            name: identity.name.clone(),
            model: self.stamp.name.clone(),
            dim: self.stamp.dim,
            created_ms: identity.created_ms,
            updated_ms: identity.updated_ms,
            updated_by: identity.updated_by.clone(),
            exemplars: Vec::new(),
            exemplars_f16: (rows.iter())
                .map(|(_, at)| self.index.embedding_at(*at).to_vec())
                .collect(),
            removed: false,
            merged_into: None,
            into_origin: None,
            into_created_ms: None,
            thumbnails: self.shared_thumbnails(identity.key),
            format: FLEET_FORMAT,
        }
    }

    /// Merges a message that board `from` published.
    pub fn apply_remote(
        &mut self,
        from: &str,
        message: &FleetIdentity,
    ) -> Result<Applied, GalleryError> {
        if from == self.device {
            return Ok(Applied::Ignored("our own message"));
        }
        if message.model != self.stamp.name || message.dim != self.stamp.dim {
            return Ok(Applied::Ignored(ANOTHER_MODEL));
        }
        let _writing = writing();
        self.refresh()?;
        let mine = self.find_label(&message.id);
        if message.removed {
            return self.apply_tombstone(message, mine);
        }
        if self.tombstones.contains_key(&message.id) {
            return Ok(Applied::Ignored("forgotten or merged here"));
        }
        let exemplars: Vec<&[f32]> = message
            .all_exemplars()
            .filter(|e| e.len() == self.stamp.dim && e.iter().all(|v| v.is_finite()))
            .map(Vec::as_slice)
            .collect();
        if let Some(key) = mine {
            return self.apply_update(key, message);
        }
        // Someone we already know under another id (two boards minted the same person before
        // they heard of each other)?
        let Some(key) = self.same_person(&exemplars, &message.origin) else {
            return self.add_remote(message, &exemplars);
        };
        let Some(ours) = self.identities.get(&key).cloned() else {
            return Ok(Applied::Ignored("gone meanwhile"));
        };
        if let (Some(a), Some(b)) = (&ours.name, &message.name) {
            if a != b {
                // Named apart by someone who knows them: two people who look alike.
                return Ok(Applied::Ignored("looks like one named otherwise here"));
            }
        }
        if (ours.created_ms, &ours.label) <= (message.created_ms, &message.id) {
            self.absorb(ours, message, &exemplars)
        } else {
            self.adopt(ours, message, &exemplars)
        }
    }

    /// Stores an identity heard of for the first time.
    fn add_remote(
        &mut self,
        message: &FleetIdentity,
        exemplars: &[&[f32]],
    ) -> Result<Applied, GalleryError> {
        let identity = self.store.write(|w| {
            let identity = Identity {
                key: w.next_id()?,
                label: message.id.clone(),
                origin: message.origin.clone(),
                name: message.name.clone(),
                updated_ms: message.updated_ms,
                updated_by: message.updated_by.clone(),
                confirmed: true,
                hits: 0,
                created_ms: message.created_ms,
                last_seen_ms: message.updated_ms.max(message.created_ms),
                last_camera: None,
            };
            w.insert_identity(&identity)?;
            Ok(identity)
        })?;
        self.identities.insert(identity.key, identity.clone());
        self.add_exemplars(identity.key, exemplars, message.created_ms)?;
        self.take_thumbnails(identity.key, message)?;
        Ok(Applied::Added(identity.label))
    }

    /// The message's identity is `ours`, which is older: it is merged into ours, and the
    /// merge is said to the fleet. Each board matches on the views it holds, so the board
    /// that minted the other may not see the two as one; the merge, said, joins them
    /// everywhere alike.
    fn absorb(
        &mut self,
        ours: Identity,
        message: &FleetIdentity,
        exemplars: &[&[f32]],
    ) -> Result<Applied, GalleryError> {
        let mut kept = ours.clone();
        if ours.name.is_none() && message.name.is_some() {
            // The name travels with ours now, said by this board (a rename made here).
            kept.name = message.name.clone();
            kept.updated_ms = now_ms().max(message.updated_ms);
            kept.updated_by = self.device.clone();
        }
        self.keep_joined(kept, &message.id, &ours.label, message, exemplars)?;
        Ok(Applied::Merged {
            gone: message.id.clone(),
            into: ours.label,
        })
    }

    /// The message's identity is older than `ours`, the same person: ours takes its id,
    /// origin and creation time, and the change is said (a tombstone for our old id).
    fn adopt(
        &mut self,
        ours: Identity,
        message: &FleetIdentity,
        exemplars: &[&[f32]],
    ) -> Result<Applied, GalleryError> {
        // Our name is kept (and said by us) only where it was given here after theirs.
        let ours_named_later = ours.name.is_some()
            && ours.name != message.name
            && (message.name.is_none() || ours.updated_ms > message.updated_ms);
        let (name, updated_ms, updated_by) = if ours_named_later {
            (ours.name.clone(), ours.updated_ms, ours.updated_by.clone())
        } else {
            let name = message.name.clone().or_else(|| ours.name.clone());
            (name, message.updated_ms, message.updated_by.clone())
        };
        let relabelled = Identity {
            label: message.id.clone(),
            origin: message.origin.clone(),
            created_ms: message.created_ms,
            name,
            updated_ms,
            updated_by,
            confirmed: true,
            ..ours.clone()
        };
        self.keep_joined(relabelled, &ours.label, &message.id, message, exemplars)?;
        Ok(Applied::Relabelled {
            from: ours.label,
            to: message.id.clone(),
        })
    }

    /// Stores `kept`, the identity a remote one was joined with, with a tombstone said by
    /// this board ("`gone` merged into `into`"), and takes in the message's exemplars and
    /// thumbnails.
    fn keep_joined(
        &mut self,
        kept: Identity,
        gone: &str,
        into: &str,
        message: &FleetIdentity,
        exemplars: &[&[f32]],
    ) -> Result<(), GalleryError> {
        let tombstone = Tombstone {
            label: gone.to_string(),
            merged_into: Some(into.to_string()),
            ts_ms: now_ms(),
            by: self.device.clone(),
        };
        self.store.write(|w| {
            w.update_identity(&kept)?;
            w.tombstone(&tombstone)
        })?;
        let key = kept.key;
        self.tombstones.insert(tombstone.label.clone(), tombstone);
        self.identities.insert(key, kept);
        self.add_exemplars(key, exemplars, message.created_ms)?;
        self.take_thumbnails(key, message)
    }

    fn find_label(&self, label: &str) -> Option<i64> {
        self.identities
            .values()
            .find(|i| i.label == label)
            .map(|i| i.key)
    }

    /// A newer name from the fleet.
    fn apply_update(&mut self, key: i64, message: &FleetIdentity) -> Result<Applied, GalleryError> {
        let Some(mut identity) = self.identities.get(&key).cloned() else {
            return Ok(Applied::Ignored("gone meanwhile"));
        };
        if message.updated_ms <= identity.updated_ms || message.name == identity.name {
            return Ok(Applied::Ignored("nothing newer"));
        }
        identity.name = message.name.clone();
        identity.updated_ms = message.updated_ms;
        identity.updated_by = message.updated_by.clone();
        self.store.write(|w| w.update_identity(&identity))?;
        let label = identity.label.clone();
        self.identities.insert(key, identity);
        Ok(Applied::Renamed(label))
    }

    /// Where an identity merged into `label` is now, following the merges known here
    /// (A into B, then B into C: C).
    fn destination(&self, label: &str) -> Destination {
        let mut label = label;
        // Merges keep the older id, so a chain cannot loop; the bound is for torn files.
        for _ in 0..64 {
            if let Some(key) = self.find_label(label) {
                return Destination::Held(key);
            }
            match self.tombstones.get(label) {
                Some(Tombstone {
                    merged_into: Some(next),
                    ..
                }) => label = next,
                Some(_) => return Destination::Forgotten,
                None => break,
            }
        }
        Destination::Unheard(label.to_string())
    }

    /// A forget or a merge made on another board. It is remembered here with that board's
    /// name on it (said by that board, not again by this one), also for an id not held yet:
    /// the identity's own message, heard after it, does not bring it back.
    fn apply_tombstone(
        &mut self,
        message: &FleetIdentity,
        mine: Option<i64>,
    ) -> Result<Applied, GalleryError> {
        let heard = Tombstone {
            label: message.id.clone(),
            merged_into: message.merged_into.clone(),
            ts_ms: message.updated_ms,
            by: message.updated_by.clone(),
        };
        let gone = mine.and_then(|key| self.identities.get(&key).cloned());
        let Some(gone) = gone else {
            if let Some(ours) = self.tombstones.get(&message.id) {
                return self.hand_over(ours.clone(), heard);
            }
            self.store.write(|w| w.tombstone(&heard))?;
            self.tombstones.insert(heard.label.clone(), heard);
            return Ok(Applied::Ignored("not here"));
        };
        let destination = match &message.merged_into {
            Some(label) => self.destination(label),
            None => Destination::Forgotten,
        };
        match destination {
            Destination::Held(key) if key == gone.key => Ok(Applied::Ignored("one already")),
            Destination::Held(key) => {
                let Some(keep) = self.identities.get(&key).cloned() else {
                    return Ok(Applied::Ignored("gone meanwhile"));
                };
                let into = self.join_as(keep, gone.clone(), heard)?;
                Ok(Applied::Merged {
                    gone: gone.label,
                    into,
                })
            }
            // Merged into one not heard of yet: it keeps its exemplars under that id.
            Destination::Unheard(label) => self.relabel_to_unheard(gone, label, message, heard),
            Destination::Forgotten => {
                let label = gone.label.clone();
                self.remove(gone.key, heard)?;
                Ok(Applied::Removed(label))
            }
        }
    }

    /// The same tombstone said by two boards: the board whose name sorts first keeps saying
    /// it, the other stops (every board applies the same rule, so one is left).
    fn hand_over(&mut self, ours: Tombstone, heard: Tombstone) -> Result<Applied, GalleryError> {
        // The same merge, or merges into two ids that are one here by now.
        let into = |t: &Tombstone| t.merged_into.as_deref().map(|l| self.destination(l));
        let same = ours.merged_into == heard.merged_into || into(&ours) == into(&heard);
        if !(same && ours.by == self.device && heard.by < ours.by) {
            return Ok(Applied::Ignored("known here"));
        }
        self.store.write(|w| w.tombstone(&heard))?;
        self.tombstones.insert(heard.label.clone(), heard);
        Ok(Applied::Ignored("said by another board"))
    }

    /// `gone` was merged into `label`, not heard of here yet: ours becomes it, with the kept
    /// identity's origin and creation time as the merging board said them (not as one of
    /// ours: this board does not speak for it, unless it named it).
    fn relabel_to_unheard(
        &mut self,
        gone: Identity,
        label: String,
        message: &FleetIdentity,
        heard: Tombstone,
    ) -> Result<Applied, GalleryError> {
        let direct = message.merged_into.as_deref() == Some(label.as_str());
        let origin = (message.into_origin.clone().filter(|_| direct))
            .unwrap_or_else(|| message.updated_by.clone());
        let created_ms = (message.into_created_ms.filter(|_| direct)).unwrap_or(gone.created_ms);
        let named_here = gone.name.is_some() && gone.updated_by == self.device;
        let relabelled = Identity {
            label: label.clone(),
            updated_by: if named_here {
                gone.updated_by.clone()
            } else {
                origin.clone()
            },
            origin,
            created_ms,
            ..gone.clone()
        };
        self.store.write(|w| {
            w.update_identity(&relabelled)?;
            w.tombstone(&heard)
        })?;
        self.tombstones.insert(heard.label.clone(), heard);
        self.identities.insert(gone.key, relabelled);
        Ok(Applied::Relabelled {
            from: gone.label,
            to: label,
        })
    }

    /// The identity here, not minted by `origin`, that most of `exemplars` match, and most of
    /// whose exemplars match them back, each by `fleet_margin` more than `threshold` asks.
    /// Both ways: an identity here that once took in a view of someone else (a match at the
    /// threshold) has that person's message match it one way only, and a join said to the
    /// fleet would make the two people one on every board.
    fn same_person(&self, exemplars: &[&[f32]], origin: &str) -> Option<i64> {
        let join_at = self.config.fleet_join_at();
        let mut votes: std::collections::BTreeMap<i64, usize> = Default::default();
        let candidates = self.candidates(origin);
        for exemplar in exemplars {
            if let Some(hit) = candidates.best(exemplar) {
                if hit.similarity >= join_at {
                    *votes.entry(hit.identity).or_default() += 1;
                }
            }
        }
        let key = votes
            .into_iter()
            .filter(|(_, n)| 2 * n > exemplars.len())
            .max_by_key(|(_, n)| *n)
            .map(|(key, _)| key)?;
        let mut theirs = FlatIndex::with_metric(self.stamp.dim, self.config.metric);
        for (row, exemplar) in exemplars.iter().enumerate() {
            theirs.push(0, row as i64, exemplar);
        }
        let ours: Vec<&[f32]> = self.index.embeddings(key).collect();
        let back = (ours.iter())
            .filter(|e| theirs.best(e).is_some_and(|hit| hit.similarity >= join_at))
            .count();
        (2 * back > ours.len()).then_some(key)
    }

    /// The exemplars of identities that `origin` did not mint (its own it knows already).
    fn candidates(&self, origin: &str) -> FlatIndex {
        let mut index = FlatIndex::with_metric(self.stamp.dim, self.config.metric);
        let mut row = 0;
        for identity in self.identities.values().filter(|i| i.origin != origin) {
            for embedding in self.index.embeddings(identity.key) {
                row += 1;
                index.push(identity.key, row, embedding);
            }
        }
        index
    }
}

/// Embeddings as base64 strings of little-endian f32s: a third of the size of JSON numbers,
/// and exact.
mod base64_vectors {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(vectors: &[Vec<f32>], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            vectors
                .iter()
                .map(|v| STANDARD.encode(crate::gallery::index::to_blob(v))),
        )
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<f32>>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|text| {
                let bytes = STANDARD.decode(text).map_err(serde::de::Error::custom)?;
                crate::gallery::index::from_blob(&bytes, bytes.len() / 4)
                    .filter(|_| bytes.len() % 4 == 0)
                    .ok_or_else(|| serde::de::Error::custom("not a whole number of f32s"))
            })
            .collect()
    }
}

/// Embeddings as base64 strings of little-endian f16s (IEEE half precision: 11 significant
/// bits, about 3e-4 relative error on each number).
mod base64_f16_vectors {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use half::f16;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(vectors: &[Vec<f32>], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(vectors.iter().map(|v| {
            let bytes: Vec<u8> = (v.iter())
                .flat_map(|x| f16::from_f32(*x).to_le_bytes())
                .collect();
            STANDARD.encode(bytes)
        }))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<f32>>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|text| {
                let bytes = STANDARD.decode(text).map_err(serde::de::Error::custom)?;
                if bytes.len() % 2 != 0 {
                    return Err(serde::de::Error::custom("not a whole number of f16s"));
                }
                Ok((bytes.chunks_exact(2))
                    .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
                    .collect())
            })
            .collect()
    }
}
