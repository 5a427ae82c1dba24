//! The identity gallery: embeddings become identity IDs that stay the same across frames,
//! cameras and restarts.
//!
//! An embedding is matched to the identity of the most similar stored exemplar. At or above
//! `threshold` it is that identity; below, a new identity is minted, tentative until it has
//! matched `confirm_frames` frames, and discarded if it never does. Everything is kept in one
//! SQLite file (see [`store`]); the in-memory [`FlatIndex`] is rebuilt from it at start and
//! whenever another process (`edgevit gallery ...`) changed it.

pub mod ann;
mod config;
pub mod fleet_merge;
pub mod index;
mod metric;
pub mod store;
mod summary;
mod thumbnails;

pub use config::GalleryConfig;
pub use index::FlatIndex;
pub use metric::Metric;
pub use store::ModelStamp;
pub use summary::{IdentitySummary, Sighting};
pub use thumbnails::Thumbnail;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use store::{Store, Tombstone};

/// Orders the changes of the galleries of one process (the capture loop's, and the MQTT
/// thread's that merges the fleet's identities): each change reloads what the other committed,
/// then commits, with nothing in between. Other processes are ordered by SQLite's own lock.
static WRITES: Mutex<()> = Mutex::new(());

fn writing() -> MutexGuard<'static, ()> {
    crate::sync::lock(&WRITES)
}

/// Milliseconds since 1970.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Why the gallery could not be used or changed.
#[derive(Debug, thiserror::Error)]
pub enum GalleryError {
    #[error(
        "gallery {path} does not exist (`edgevit run` creates it, or `edgevit gallery enroll`)"
    )]
    Missing { path: PathBuf },
    #[error("{path} is not an edgevit gallery ({why}); edgevit will not overwrite it: move it away or set `gallery.path` to another file")]
    Foreign { path: PathBuf, why: String },
    #[error("gallery {path} is damaged ({why}); edgevit will not replace it: keep a copy, then try `sqlite3 {path} .recover`, or move it away to start a new gallery")]
    Corrupt { path: PathBuf, why: String },
    #[error("gallery {path} was made with model {:?} ({}-number embeddings), the model in use is {:?} ({}-number embeddings): their embeddings cannot be compared; give this model its own gallery file", gallery.name, gallery.dim, model.name, model.dim)]
    ModelMismatch {
        path: PathBuf,
        gallery: ModelStamp,
        model: ModelStamp,
    },
    #[error("cannot create gallery {path}")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("gallery {path}")]
    Sql {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("no identity {0:?} in the gallery (give an id such as id-000042, or a name)")]
    NotFound(String),
    #[error("the name {name:?} is already {holder}'s")]
    NameTaken { name: String, holder: String },
    #[error("{0}")]
    Conflict(String),
    #[error("the embedding holds NaN or infinite values; it is not stored")]
    NonFinite,
    #[error("the embedding has {got} numbers, the gallery's have {expected}")]
    Dimension { expected: usize, got: usize },
}

/// A stored identity.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Identity {
    /// Its row in the gallery file.
    #[serde(skip)]
    pub key: i64,
    /// The id reported for it: `id-000042`, or `id-<device>-000042` on a board of a fleet.
    #[serde(rename = "id")]
    pub label: String,
    /// The device that minted it (empty on a board outside a fleet).
    pub origin: String,
    pub name: Option<String>,
    /// When its name last changed (or it was made), and on which device.
    pub updated_ms: i64,
    pub updated_by: String,
    pub confirmed: bool,
    /// Frames that matched it.
    pub hits: i64,
    pub created_ms: i64,
    pub last_seen_ms: i64,
    pub last_camera: Option<String>,
}

impl Identity {
    /// `id-000042`.
    pub fn id(&self) -> String {
        self.label.clone()
    }
}

/// What one embedding was matched to.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    /// `id-000042`.
    pub identity: String,
    pub name: Option<String>,
    /// Cosine similarity to the identity's closest exemplar; for a new identity, to the
    /// closest other identity (0 in an empty gallery): how far it was from being matched.
    pub similarity: f32,
    /// The embedding minted this identity.
    pub new: bool,
    pub confirmed: bool,
}

/// How an enrolment was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enrolled {
    /// A new identity with the name.
    Created(String),
    /// The images matched an unnamed identity, which now has the name.
    Named(String),
    /// The name existed: the images were added to it.
    Added(String),
}

/// The gallery of one board, shared by all its cameras.
pub struct Gallery {
    store: Store,
    stamp: ModelStamp,
    config: GalleryConfig,
    /// This board's name in a fleet (the MQTT `device`); empty outside one.
    device: String,
    identities: BTreeMap<i64, Identity>,
    tombstones: BTreeMap<String, Tombstone>,
    index: FlatIndex,
    last_sweep_ms: i64,
}

impl Gallery {
    /// Opens (or creates) the gallery at `path` for `model`; a gallery of another model is
    /// refused.
    pub fn open(
        path: &Path,
        model: &ModelStamp,
        config: &GalleryConfig,
    ) -> Result<Self, GalleryError> {
        Self::open_with(path, Some(model), config)
    }

    /// Opens an existing gallery whatever its model (to list, rename, merge, forget; the
    /// MQTT thread of a fleet).
    pub fn open_existing(path: &Path, config: &GalleryConfig) -> Result<Self, GalleryError> {
        Self::open_with(path, None, config)
    }

    fn open_with(
        path: &Path,
        model: Option<&ModelStamp>,
        config: &GalleryConfig,
    ) -> Result<Self, GalleryError> {
        // Two threads of one process may both find the file absent and create it.
        let (store, stamp) = {
            let _writing = writing();
            Store::open(path, model)?
        };
        let mut gallery = Gallery {
            index: FlatIndex::with_metric(stamp.dim, config.metric)
                .searching(config.search_policy()),
            store,
            stamp,
            config: config.clone(),
            device: String::new(),
            identities: BTreeMap::new(),
            tombstones: BTreeMap::new(),
            last_sweep_ms: i64::MIN,
        };
        gallery.reload()?;
        Ok(gallery)
    }

    pub fn path(&self) -> &Path {
        self.store.path()
    }

    /// Makes this the gallery of board `device` in a fleet: the ids it mints name it
    /// (`id-<device>-000042`), so that two boards never mint the same id.
    pub fn set_device(&mut self, device: &str) {
        self.device = device.to_string();
    }

    pub fn device(&self) -> &str {
        &self.device
    }

    pub fn config(&self) -> &GalleryConfig {
        &self.config
    }

    pub fn model(&self) -> &ModelStamp {
        &self.stamp
    }

    pub fn identities(&self) -> impl Iterator<Item = &Identity> {
        self.identities.values()
    }

    pub fn exemplar_count(&self) -> usize {
        self.index.len()
    }

    /// The exemplars of an identity.
    pub fn exemplars(&self, identity: &str) -> Result<Vec<Vec<f32>>, GalleryError> {
        let key = self.find(identity)?;
        Ok(self.index.embeddings(key).map(<[f32]>::to_vec).collect())
    }

    /// The cameras that saw an identity: `(camera, sightings, last seen in ms)`.
    pub fn sightings(&self, identity: &str) -> Result<Vec<(String, i64, i64)>, GalleryError> {
        store::sightings(&self.store, self.find(identity)?)
    }

    fn reload(&mut self) -> Result<(), GalleryError> {
        let contents = self.store.load(self.stamp.dim)?;
        self.identities = contents
            .identities
            .into_iter()
            .map(|identity| (identity.key, identity))
            .collect();
        self.tombstones = contents
            .tombstones
            .into_iter()
            .map(|t| (t.label.clone(), t))
            .collect();
        self.index = FlatIndex::with_metric(self.stamp.dim, self.config.metric)
            .searching(self.config.search_policy());
        for exemplar in contents.exemplars {
            self.index
                .push(exemplar.identity, exemplar.row, &exemplar.embedding);
        }
        Ok(())
    }

    /// Picks up changes that another process, or another connection, committed (a `gallery`
    /// command while we run; the fleet's merges); `true` when there were some.
    ///
    /// Incremental: the identities and tombstones are read again (a row each), the exemplars'
    /// ids and owners from the index on them, and only the embeddings of exemplars the index
    /// lacks (exemplar ids are never reused, so an id it has is the embedding it has).
    pub fn refresh(&mut self) -> Result<bool, GalleryError> {
        if !self.store.changed_elsewhere()? {
            return Ok(false);
        }
        self.identities = (self.store.identities()?.into_iter())
            .map(|identity| (identity.key, identity))
            .collect();
        self.tombstones = (self.store.tombstones()?.into_iter())
            .map(|t| (t.label.clone(), t))
            .collect();
        let stored: std::collections::HashMap<i64, i64> =
            self.store.exemplar_rows()?.into_iter().collect();
        let missing = self.index.sync_rows(&stored);
        for exemplar in self.store.exemplars(&missing, self.stamp.dim)? {
            self.index
                .push(exemplar.identity, exemplar.row, &exemplar.embedding);
        }
        log::debug!(
            "gallery {} was changed by another connection: {} exemplars read again of {}",
            self.path().display(),
            missing.len(),
            self.index.len()
        );
        Ok(true)
    }

    fn check(&self, embedding: &[f32]) -> Result<(), GalleryError> {
        if embedding.len() != self.stamp.dim {
            return Err(GalleryError::Dimension {
                expected: self.stamp.dim,
                got: embedding.len(),
            });
        }
        if !embedding.iter().all(|v| v.is_finite()) {
            return Err(GalleryError::NonFinite);
        }
        Ok(())
    }

    /// Matches one unit-length embedding seen by `camera` at `now_ms` (ms since 1970), and
    /// stores what it taught: a sighting, maybe an exemplar, maybe a new identity.
    pub fn observe(
        &mut self,
        embedding: &[f32],
        camera: &str,
        now_ms: i64,
    ) -> Result<Match, GalleryError> {
        self.check(embedding)?;
        let _writing = writing();
        self.refresh()?;
        self.sweep(now_ms)?;
        let hit = self.index.search(embedding);
        match hit {
            Some(hit) if hit.similarity >= self.config.match_at() => {
                self.seen(hit.identity, hit.similarity, embedding, camera, now_ms)
            }
            _ => {
                let similarity = hit.map_or(0.0, |h| h.similarity);
                let confirmed = self.config.confirm_frames <= 1;
                let identity = self.mint(None, confirmed, &[embedding], camera, now_ms)?;
                Ok(Match {
                    identity: identity.id(),
                    name: None,
                    similarity,
                    new: true,
                    confirmed,
                })
            }
        }
    }

    /// A frame matched `key`: count it, confirm it after enough frames, learn a new view.
    fn seen(
        &mut self,
        key: i64,
        similarity: f32,
        embedding: &[f32],
        camera: &str,
        now_ms: i64,
    ) -> Result<Match, GalleryError> {
        let Some(mut identity) = self.identities.get(&key).cloned() else {
            return Err(GalleryError::NotFound(format!("number {key}")));
        };
        identity.hits += 1;
        identity.last_seen_ms = now_ms;
        identity.last_camera = Some(camera.to_string());
        if !identity.confirmed && identity.hits >= i64::from(self.config.confirm_frames) {
            identity.confirmed = true;
        }
        let learn = similarity < self.config.learn_below();
        let row = self.store.write(|w| {
            w.update_identity(&identity)?;
            w.sighting(key, camera, now_ms)?;
            if learn {
                w.insert_exemplar(key, embedding, camera, now_ms).map(Some)
            } else {
                Ok(None)
            }
        })?;
        if let Some(row) = row {
            self.index.push(key, row, embedding);
            self.enforce_cap(key)?;
        }
        let result = Match {
            identity: identity.id(),
            name: identity.name.clone(),
            similarity,
            new: false,
            confirmed: identity.confirmed,
        };
        self.identities.insert(key, identity);
        Ok(result)
    }

    /// Stores a new identity with its first exemplars.
    fn mint(
        &mut self,
        name: Option<&str>,
        confirmed: bool,
        embeddings: &[&[f32]],
        camera: &str,
        now_ms: i64,
    ) -> Result<Identity, GalleryError> {
        let device = self.device.clone();
        let (identity, rows) = self.store.write(|w| {
            let key = w.next_id()?;
            let identity = Identity {
                key,
                label: if device.is_empty() {
                    format!("id-{key:06}")
                } else {
                    format!("id-{device}-{key:06}")
                },
                origin: device.clone(),
                updated_ms: now_ms,
                updated_by: device.clone(),
                name: name.map(str::to_string),
                confirmed,
                hits: 1,
                created_ms: now_ms,
                last_seen_ms: now_ms,
                last_camera: Some(camera.to_string()),
            };
            w.insert_identity(&identity)?;
            w.sighting(identity.key, camera, now_ms)?;
            let rows = embeddings
                .iter()
                .map(|e| w.insert_exemplar(identity.key, e, camera, now_ms))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((identity, rows))
        })?;
        for (row, embedding) in rows.into_iter().zip(embeddings) {
            self.index.push(identity.key, row, embedding);
        }
        self.identities.insert(identity.key, identity.clone());
        self.enforce_cap(identity.key)?;
        Ok(identity)
    }

    /// Drops the most redundant exemplars of `key` beyond `max_exemplars`.
    fn enforce_cap(&mut self, key: i64) -> Result<(), GalleryError> {
        while self.index.count(key) > self.config.max_exemplars {
            let Some(row) = self.index.most_redundant(key) else {
                break;
            };
            self.store.write(|w| w.delete_exemplar(row))?;
            self.index.remove_row(row);
        }
        Ok(())
    }

    /// Discards unconfirmed identities left unseen for `tentative_timeout_s`, and unnamed ones
    /// unseen for `expire_after_h`; at most once a second.
    fn sweep(&mut self, now_ms: i64) -> Result<(), GalleryError> {
        if now_ms.saturating_sub(self.last_sweep_ms) < 1000 {
            return Ok(());
        }
        self.last_sweep_ms = now_ms;
        let tentative_ms = (self.config.tentative_timeout_s as i64).saturating_mul(1000);
        let expire_ms = (self.config.expire_after_h as i64).saturating_mul(3_600_000);
        self.expire_tombstones(now_ms)?;
        let stale: Vec<i64> = self
            .identities
            .values()
            .filter(|i| {
                let unseen = now_ms.saturating_sub(i.last_seen_ms);
                (!i.confirmed && unseen > tentative_ms)
                    || (i.confirmed && i.name.is_none() && expire_ms > 0 && unseen > expire_ms)
            })
            .map(|i| i.key)
            .collect();
        if stale.is_empty() {
            return Ok(());
        }
        self.store
            .write(|w| stale.iter().try_for_each(|key| w.delete_identity(*key)))?;
        for key in stale {
            if let Some(identity) = self.identities.remove(&key) {
                log::debug!(
                    "gallery: {} discarded ({})",
                    identity.id(),
                    if identity.confirmed {
                        "expired"
                    } else {
                        "never confirmed"
                    }
                );
            }
            self.index.remove_identity(key);
        }
        Ok(())
    }

    /// Drops the tombstones older than `[gallery] tombstone_days`: the fleet has long heard
    /// of them (the board that made one then clears its retained message).
    fn expire_tombstones(&mut self, now_ms: i64) -> Result<(), GalleryError> {
        let days = self.config.tombstone_days as i64;
        if days == 0 {
            return Ok(());
        }
        let before = now_ms.saturating_sub(days.saturating_mul(86_400_000));
        if self.tombstones.values().all(|t| t.ts_ms >= before) {
            return Ok(());
        }
        self.store.write(|w| w.delete_tombstones_before(before))?;
        self.tombstones.retain(|_, t| t.ts_ms >= before);
        Ok(())
    }

    /// The identity named by an id (`id-000042`) or a name.
    pub fn find(&self, who: &str) -> Result<i64, GalleryError> {
        let ids = self.identities.values();
        ids.clone()
            .find(|i| i.label == who)
            .or_else(|| ids.clone().find(|i| i.name.as_deref() == Some(who)))
            .map(|i| i.key)
            .ok_or_else(|| GalleryError::NotFound(who.to_string()))
    }

    fn label_of(&self, key: i64) -> String {
        self.identities
            .get(&key)
            .map_or_else(|| format!("number {key}"), |i| i.label.clone())
    }

    fn check_name_free(&self, name: &str, except: Option<i64>) -> Result<(), GalleryError> {
        match self
            .identities
            .values()
            .find(|i| i.name.as_deref() == Some(name) && Some(i.key) != except)
        {
            Some(holder) => Err(GalleryError::NameTaken {
                name: name.to_string(),
                holder: holder.id(),
            }),
            None => Ok(()),
        }
    }

    /// Enrols a named person from unit-length embeddings of their images.
    pub fn enroll(
        &mut self,
        name: &str,
        embeddings: &[Vec<f32>],
        now_ms: i64,
    ) -> Result<Enrolled, GalleryError> {
        if name.trim().is_empty() {
            return Err(GalleryError::Conflict("a name must not be empty".into()));
        }
        for embedding in embeddings {
            self.check(embedding)?;
        }
        let _writing = writing();
        self.refresh()?;
        let views: Vec<&[f32]> = embeddings.iter().map(Vec::as_slice).collect();
        if let Ok(key) = self.find(name) {
            if self.identities.get(&key).and_then(|i| i.name.as_deref()) == Some(name) {
                self.add_exemplars(key, &views, now_ms)?;
                return Ok(Enrolled::Added(self.label_of(key)));
            }
        }
        // The person may already be known, unnamed: most images matching one identity name it.
        let mut votes: BTreeMap<i64, usize> = BTreeMap::new();
        for view in &views {
            if let Some(hit) = self.index.search(view) {
                if hit.similarity >= self.config.match_at() {
                    *votes.entry(hit.identity).or_default() += 1;
                }
            }
        }
        let known = votes
            .into_iter()
            .filter(|(key, count)| {
                2 * count > views.len()
                    && self.identities.get(key).is_some_and(|i| i.name.is_none())
            })
            .map(|(key, _)| key)
            .next();
        if let Some(key) = known {
            if let Some(mut identity) = self.identities.get(&key).cloned() {
                identity.name = Some(name.to_string());
                identity.confirmed = true;
                identity.updated_ms = now_ms;
                identity.updated_by = self.device.clone();
                self.store.write(|w| w.update_identity(&identity))?;
                self.identities.insert(key, identity);
                self.add_exemplars(key, &views, now_ms)?;
                return Ok(Enrolled::Named(self.label_of(key)));
            }
        }
        let identity = self.mint(Some(name), true, &views, "enroll", now_ms)?;
        Ok(Enrolled::Created(identity.id()))
    }

    fn add_exemplars(
        &mut self,
        key: i64,
        views: &[&[f32]],
        now_ms: i64,
    ) -> Result<(), GalleryError> {
        let rows = self.store.write(|w| {
            views
                .iter()
                .map(|e| w.insert_exemplar(key, e, "enroll", now_ms))
                .collect::<Result<Vec<_>, _>>()
        })?;
        for (row, view) in rows.into_iter().zip(views) {
            self.index.push(key, row, view);
        }
        self.enforce_cap(key)
    }

    /// Gives an identity a name (it then never expires); returns its id.
    pub fn rename(&mut self, who: &str, name: &str) -> Result<String, GalleryError> {
        let _writing = writing();
        self.refresh()?;
        let key = self.find(who)?;
        if name.trim().is_empty() {
            return Err(GalleryError::Conflict("a name must not be empty".into()));
        }
        self.check_name_free(name, Some(key))?;
        let Some(mut identity) = self.identities.get(&key).cloned() else {
            return Err(GalleryError::NotFound(who.to_string()));
        };
        identity.name = Some(name.to_string());
        identity.confirmed = true;
        identity.updated_ms = now_ms();
        identity.updated_by = self.device.clone();
        let id = identity.label.clone();
        self.store.write(|w| w.update_identity(&identity))?;
        self.identities.insert(key, identity);
        Ok(id)
    }

    /// Makes two identities one; the older id is kept. Returns it.
    pub fn merge(&mut self, a: &str, b: &str) -> Result<String, GalleryError> {
        let _writing = writing();
        self.refresh()?;
        let (ka, kb) = (self.find(a)?, self.find(b)?);
        if ka == kb {
            return Err(GalleryError::Conflict(format!(
                "{a:?} and {b:?} are the same identity"
            )));
        }
        let (Some(ia), Some(ib)) = (self.identities.get(&ka), self.identities.get(&kb)) else {
            return Err(GalleryError::NotFound(b.to_string()));
        };
        let (keep, gone) = if (ia.created_ms, &ia.label) <= (ib.created_ms, &ib.label) {
            (ia.clone(), ib.clone())
        } else {
            (ib.clone(), ia.clone())
        };
        self.join(keep, gone)
    }

    /// Makes `gone` part of `keep` (kept: its id, its creation time); returns `keep`'s id.
    fn join(&mut self, keep: Identity, gone: Identity) -> Result<String, GalleryError> {
        let tombstone = Tombstone {
            label: gone.label.clone(),
            merged_into: Some(keep.label.clone()),
            ts_ms: now_ms(),
            by: self.device.clone(),
        };
        self.join_as(keep, gone, tombstone)
    }

    /// [`Gallery::join`], leaving `tombstone` (a merge heard from the fleet keeps the
    /// merging board's name and time on it).
    fn join_as(
        &mut self,
        keep: Identity,
        gone: Identity,
        tombstone: Tombstone,
    ) -> Result<String, GalleryError> {
        if let (Some(x), Some(y)) = (&keep.name, &gone.name) {
            if x != y {
                return Err(GalleryError::Conflict(format!(
                    "{} is {x:?} and {} is {y:?}: rename one of them first",
                    keep.id(),
                    gone.id()
                )));
            }
        }
        let merged = Identity {
            name: keep.name.clone().or(gone.name.clone()),
            confirmed: keep.confirmed || gone.confirmed,
            hits: keep.hits + gone.hits,
            last_seen_ms: keep.last_seen_ms.max(gone.last_seen_ms),
            last_camera: if gone.last_seen_ms > keep.last_seen_ms {
                gone.last_camera.clone()
            } else {
                keep.last_camera.clone()
            },
            updated_ms: keep.updated_ms.max(gone.updated_ms),
            ..keep.clone()
        };
        let thumbnails = self.config.thumbnails;
        self.store.write(|w| {
            w.move_identity(gone.key, keep.key)?;
            w.trim_thumbnails(keep.key, thumbnails)?;
            w.delete_identity(gone.key)?;
            w.tombstone(&tombstone)?;
            w.update_identity(&merged)
        })?;
        self.tombstones.insert(tombstone.label.clone(), tombstone);
        self.index.reassign(gone.key, keep.key);
        self.identities.remove(&gone.key);
        self.identities.insert(keep.key, merged);
        self.enforce_cap(keep.key)?;
        Ok(keep.id())
    }

    /// Deletes an identity with its exemplars and sightings; returns its id.
    pub fn forget(&mut self, who: &str) -> Result<String, GalleryError> {
        let _writing = writing();
        self.refresh()?;
        let key = self.find(who)?;
        let tombstone = Tombstone {
            label: self.label_of(key),
            merged_into: None,
            ts_ms: now_ms(),
            by: self.device.clone(),
        };
        let label = tombstone.label.clone();
        self.remove(key, tombstone)?;
        Ok(label)
    }

    /// Deletes identity `key`, leaving `tombstone` for the fleet.
    fn remove(&mut self, key: i64, tombstone: Tombstone) -> Result<(), GalleryError> {
        self.store.write(|w| {
            w.delete_identity(key)?;
            w.tombstone(&tombstone)
        })?;
        self.identities.remove(&key);
        self.index.remove_identity(key);
        self.tombstones.insert(tombstone.label.clone(), tombstone);
        Ok(())
    }
}

/// Scales a vector to unit length; `None` when it has no length or holds NaN or infinity.
pub fn normalize(v: &[f32]) -> Option<Vec<f32>> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    (norm.is_finite() && norm > 0.0).then(|| v.iter().map(|x| x / norm).collect())
}

#[cfg(test)]
mod tests;
