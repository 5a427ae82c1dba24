//! Thumbnails: each identity's best crops as small JPEGs in the gallery file, so that a user
//! can see who an unnamed id is (`edgevit gallery show`) before naming it. Bounded per identity
//! (`[gallery] thumbnails`): a new crop is kept only when it is better than the worst kept one,
//! and it is only encoded then. They stay on the board: fleet sync does not carry them.

use super::fleet_merge::FleetIdentity;
use super::store::{Store, Writer};
use super::{Gallery, GalleryError};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rusqlite::params;
use serde::{Deserialize, Serialize};

/// A thumbnail in a fleet message (`[gallery] fleet_thumbnails`): the JPEG in base64.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharedThumbnail {
    pub jpeg: String,
    pub quality: f32,
}

/// A shared thumbnail larger than this is not taken (a few kB is what edgevit makes).
const LARGEST_SHARED: usize = 64 * 1024;

/// The thumbnail table (schema version 2).
pub(super) const SCHEMA: &str = "
CREATE TABLE thumbnail (
    id INTEGER PRIMARY KEY,
    identity INTEGER NOT NULL REFERENCES identity(id) ON DELETE CASCADE,
    jpeg BLOB NOT NULL,
    quality REAL NOT NULL,
    camera TEXT NOT NULL,
    ts_ms INTEGER NOT NULL
);
CREATE INDEX thumbnail_identity ON thumbnail(identity);
";

/// One kept crop.
#[derive(Debug, Clone, PartialEq)]
pub struct Thumbnail {
    pub jpeg: Vec<u8>,
    /// How good the crop was (its smaller side in pixels): the best are kept.
    pub quality: f32,
    pub camera: String,
    pub ts_ms: i64,
}

impl Store {
    /// How many thumbnails `identity` has, and the quality of its worst.
    fn thumbnail_floor(&self, identity: i64) -> rusqlite::Result<(usize, f32)> {
        self.connection.query_row(
            "SELECT count(*), coalesce(min(quality), 0) FROM thumbnail WHERE identity = ?1",
            [identity],
            |r| Ok((r.get::<_, i64>(0)? as usize, r.get::<_, f64>(1)? as f32)),
        )
    }

    /// Each identity's thumbnails as (row id, time), in the order a message carries them.
    pub(super) fn thumbnail_ids(
        &self,
    ) -> rusqlite::Result<std::collections::HashMap<i64, Vec<(i64, i64)>>> {
        let mut statement = self
            .connection
            .prepare("SELECT identity, id, ts_ms FROM thumbnail ORDER BY quality DESC, id DESC")?;
        let mut out: std::collections::HashMap<i64, Vec<(i64, i64)>> = Default::default();
        let rows = statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        for row in rows {
            let (identity, id, ts) = row?;
            out.entry(identity).or_default().push((id, ts));
        }
        Ok(out)
    }

    fn thumbnails(&self, identity: i64) -> rusqlite::Result<Vec<Thumbnail>> {
        let mut statement = self.connection.prepare(
            "SELECT jpeg, quality, camera, ts_ms FROM thumbnail WHERE identity = ?1
             ORDER BY quality DESC, id DESC",
        )?;
        let rows = statement.query_map([identity], |r| {
            Ok(Thumbnail {
                jpeg: r.get(0)?,
                quality: r.get::<_, f64>(1)? as f32,
                camera: r.get(2)?,
                ts_ms: r.get(3)?,
            })
        })?;
        rows.collect()
    }
}

impl Writer<'_> {
    /// Stores a thumbnail, then keeps only the best `keep` of the identity's.
    fn keep_thumbnail(
        &self,
        identity: i64,
        thumbnail: &Thumbnail,
        keep: usize,
    ) -> rusqlite::Result<()> {
        self.tx.execute(
            "INSERT INTO thumbnail (identity, jpeg, quality, camera, ts_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                identity,
                thumbnail.jpeg,
                f64::from(thumbnail.quality),
                thumbnail.camera,
                thumbnail.ts_ms
            ],
        )?;
        self.trim_thumbnails(identity, keep)
    }

    /// Keeps only the best `keep` thumbnails of `identity` (after a new one, or a merge).
    pub(super) fn trim_thumbnails(&self, identity: i64, keep: usize) -> rusqlite::Result<()> {
        self.tx.execute(
            "DELETE FROM thumbnail WHERE identity = ?1 AND id NOT IN
             (SELECT id FROM thumbnail WHERE identity = ?1 ORDER BY quality DESC, id DESC LIMIT ?2)",
            params![identity, keep as i64],
        )?;
        Ok(())
    }
}

impl Gallery {
    /// Offers a crop of `who` of `quality` seen at `camera`: kept when the identity has fewer
    /// than `[gallery] thumbnails` or a worse one. `jpeg` makes the thumbnail, only when it is
    /// kept (`None`: it could not be made, nothing is kept). Whether it was kept.
    pub fn offer_thumbnail(
        &mut self,
        who: &str,
        quality: f32,
        camera: &str,
        now_ms: i64,
        jpeg: impl FnOnce() -> Option<Vec<u8>>,
    ) -> Result<bool, GalleryError> {
        let keep = self.config.thumbnails;
        if keep == 0 {
            return Ok(false);
        }
        let key = self.find(who)?;
        let (count, worst) = self
            .store
            .thumbnail_floor(key)
            .map_err(|e| self.sql_error(e))?;
        if count >= keep && quality <= worst {
            return Ok(false);
        }
        let Some(jpeg) = jpeg() else {
            return Ok(false);
        };
        let thumbnail = Thumbnail {
            jpeg,
            quality,
            camera: camera.to_string(),
            ts_ms: now_ms,
        };
        let _writing = super::writing();
        self.store
            .write(|w| w.keep_thumbnail(key, &thumbnail, keep))?;
        Ok(true)
    }

    /// How many thumbnails an identity (by id or name) has, without reading them.
    pub fn thumbnail_count(&self, who: &str) -> Result<usize, GalleryError> {
        let key = self.find(who)?;
        let (count, _) = (self.store.thumbnail_floor(key)).map_err(|e| self.sql_error(e))?;
        Ok(count)
    }

    /// The thumbnails of an identity (by id or name), best first.
    pub fn thumbnails(&self, who: &str) -> Result<Vec<Thumbnail>, GalleryError> {
        let key = self.find(who)?;
        self.store.thumbnails(key).map_err(|e| self.sql_error(e))
    }

    /// What a fleet message carries of an identity's thumbnails: none unless
    /// `fleet_thumbnails` is on (or when they cannot be read: the identity still travels).
    pub(super) fn shared_thumbnails(&self, key: i64) -> Vec<SharedThumbnail> {
        if !self.config.fleet_thumbnails {
            return Vec::new();
        }
        let thumbnails = self.store.thumbnails(key).unwrap_or_default();
        thumbnails
            .iter()
            .map(|t| SharedThumbnail {
                jpeg: STANDARD.encode(&t.jpeg),
                quality: t.quality,
            })
            .collect()
    }

    /// Keeps another board's thumbnails of an identity, when `fleet_thumbnails` is on here
    /// too; damaged or oversized ones are skipped.
    pub(super) fn take_thumbnails(
        &mut self,
        key: i64,
        message: &FleetIdentity,
    ) -> Result<(), GalleryError> {
        let keep = self.config.thumbnails;
        if !self.config.fleet_thumbnails || keep == 0 {
            return Ok(());
        }
        let taken: Vec<Thumbnail> = message
            .thumbnails
            .iter()
            .filter_map(|shared| {
                let jpeg = STANDARD.decode(&shared.jpeg).ok()?;
                (jpeg.len() <= LARGEST_SHARED && shared.quality.is_finite()).then(|| Thumbnail {
                    jpeg,
                    quality: shared.quality,
                    camera: format!("fleet:{}", message.origin),
                    ts_ms: message.updated_ms,
                })
            })
            .collect();
        self.store.write(|w| {
            for thumbnail in &taken {
                w.keep_thumbnail(key, thumbnail, keep)?;
            }
            Ok(())
        })
    }

    fn sql_error(&self, source: rusqlite::Error) -> GalleryError {
        GalleryError::Sql {
            path: self.path().to_path_buf(),
            source,
        }
    }
}
